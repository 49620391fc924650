/*
 * tm_config: parsing of trellisd's flags and config file (see
 * tm_config.h). A table of flags drives parsing of both and --help, so the
 * three never disagree; a config file key is a flag name without "--".
 */
#include <stdio.h>

#include "tm_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trellis/trellis_version.h"
#include "trellis_fnv.h"

/* F_ALLOW: a tm_allowlist_t; F_CONFIG: the --config file (command line
 * only). */
typedef enum { F_STRING, F_U32, F_INT, F_LEVEL, F_ALLOW, F_CONFIG } flag_kind_t;

typedef struct {
    const char *name;
    flag_kind_t kind;
    size_t offset; /* into tm_config_t */
    size_t size;   /* for strings */
    unsigned long min, max;
    const char *help;
} flag_t;

#define CFG_OFF(field) offsetof(tm_config_t, field)

static const flag_t flags[] = {
    {"--listen", F_STRING, CFG_OFF(listen), 256, 0, 0,
     "address to serve the TM API on (default 127.0.0.1:7400; port 0 picks "
     "a free one)"},
    {"--data-dir", F_STRING, CFG_OFF(data_dir), 1024, 0, 0,
     "directory of the embedded store, created if missing (default "
     "./trellis-data)"},
    {"--port-file", F_STRING, CFG_OFF(port_file), 1024, 0, 0,
     "write the bound port here once serving (for scripts and tests)"},
    {"--threads", F_INT, CFG_OFF(threads), 0, 0, 256,
     "completion-queue threads (default: one per core but one, at least one)"},
    {"--retry-interval-ms", F_U32, CFG_OFF(engine.retry_interval_ms), 0, 1,
     3600000, "default retry interval after ONGOING; backoff base (1000)"},
    {"--request-timeout-ms", F_U32, CFG_OFF(engine.request_timeout_ms), 0, 1,
     3600000, "default deadline of each branch call (3000)"},
    {"--resume-timeout-ms", F_U32, CFG_OFF(engine.resume_timeout_ms), 0, 1,
     3600000,
     "deadline of a call of a workflow service (a resume, a local step's "
     "undo, the hooks), which runs the workflow function again; at least "
     "the request timeout (60000)"},
    {"--max-backoff-ms", F_U32, CFG_OFF(engine.max_backoff_ms), 0, 1, 86400000,
     "cap of the exponential backoff after unknown results (60000)"},
    {"--timeout-ms", F_U32, CFG_OFF(engine.prepared_timeout_ms), 0, 1, 86400000,
     "default timeout of a begun (prepared) transaction before it is rolled "
     "back (60000)"},
    {"--retry-limit", F_U32, CFG_OFF(engine.retry_limit), 0, 0, 1000000,
     "default unknown results of a forward op before rollback (0: no limit)"},
    {"--max-steps", F_U32, CFG_OFF(engine.limits.max_branches), 0, 1, 10000,
     "most branches (steps and registered) per transaction (100)"},
    {"--max-payload", F_U32, CFG_OFF(engine.limits.max_payload), 0, 0,
     16u << 20, "most bytes of one branch payload (65536)"},
    {"--max-result", F_U32, CFG_OFF(engine.limits.max_result), 0, 0, 16u << 20,
     "most bytes of a workflow step's recorded result (65536)"},
    {"--max-action-log", F_U32, CFG_OFF(engine.max_action_log), 0, 0,
     TM_ACTION_LOG_MAX,
     "the compensation log: most bytes of a saga action's reply kept with "
     "the step and handed to its compensate as metadata "
     "trellis-action-result-bin; a longer reply is kept cut, and the "
     "compensate also gets trellis-action-result-size, the full size; 0 "
     "keeps none. Above 4096 the participants' gRPC servers must accept "
     "larger headers than gRPC's default 8 KiB (libtrellis's accept "
     "64 KiB) (4096)"},
    {"--log-level", F_LEVEL, CFG_OFF(log_level), 0, 0, 0,
     "debug, info, warn or error (info)"},
    {"--store", F_STRING, CFG_OFF(store), 16, 0, 0,
     "storage engine: sqlite (embedded, under --data-dir) or mysql (shared "
     "by many trellisd nodes) (sqlite)"},
    {"--mysql-host", F_STRING, CFG_OFF(mysql_host), 256, 0, 0,
     "MySQL/MariaDB host of the mysql store (127.0.0.1)"},
    {"--mysql-port", F_U32, CFG_OFF(mysql_port), 0, 1, 65535,
     "MySQL/MariaDB TCP port (3306)"},
    {"--mysql-socket", F_STRING, CFG_OFF(mysql_socket), 1024, 0, 0,
     "MySQL/MariaDB unix socket; used instead of host and port when set"},
    {"--mysql-user", F_STRING, CFG_OFF(mysql_user), 128, 0, 0,
     "MySQL/MariaDB user (root)"},
    {"--mysql-password", F_STRING, CFG_OFF(mysql_password), 256, 0, 0,
     "MySQL/MariaDB password (default: $TRELLIS_MYSQL_PASSWORD, else none)"},
    {"--mysql-database", F_STRING, CFG_OFF(mysql_database), 128, 0, 0,
     "database of the mysql store, created if missing (trellis)"},
    {"--node-id", F_STRING, CFG_OFF(node_id), 64, 0, 0,
     "this node's name in the mysql store's owner column; give each node a "
     "stable, unique one so a restarted node takes its work back at once "
     "(default: host name and process id)"},
    {"--cluster-id", F_STRING, CFG_OFF(cluster_id), TM_CLUSTER_ID_MAX + 1, 0, 0,
     "identity of this TM cluster (every trellisd sharing one store), sent "
     "to participants as metadata trellis-cluster-id and put into XA XIDs, "
     "so that an XA recovery sweep resolves only its own cluster's "
     "branches: 1..64 of A-Z a-z 0-9 _ . : - (default: sqlite store, a "
     "random id kept in <data-dir>/cluster-id; mysql store, derived from "
     "--mysql-host/-port/-socket and --mysql-database, so set it when nodes "
     "name the store differently)"},
    {"--lease-ms", F_U32, CFG_OFF(lease_ms), 0, 500, 3600000,
     "mysql store: how long a node's claim on a transaction lasts without "
     "renewal; another node takes over after it (10000)"},
    {"--retention-s", F_U32, CFG_OFF(retention_s), 0, 0, 3650u * 86400u,
     "keep finished transactions this many seconds, then delete them in "
     "small batches; 0 keeps them forever (604800 = 7 days)"},
    /* config file, security and limits */
    {"--config", F_CONFIG, CFG_OFF(config_file), 1024, 0, 0,
     "read settings from FILE first: one `name = value` per line, name a "
     "flag without the leading --, # comments; flags given on the command "
     "line override the file"},
    {"--allow-targets", F_ALLOW, CFG_OFF(engine.limits.allow), 0, 0, 0,
     "comma-separated host:port patterns of the participants trellisd may "
     "call, * matching any run of characters within the host or the port "
     "(e.g. *.payments.svc:50051,10.1.2.*:*); a Submit or RegisterBranch "
     "naming any other target is refused PERMISSION_DENIED "
     "(default " TM_ALLOW_DEFAULT ", loopback only)"},
    {"--max-message-bytes", F_U32, CFG_OFF(max_message_bytes), 0, 0, 1u << 30,
     "largest gRPC message trellisd receives; a larger request is refused "
     "RESOURCE_EXHAUSTED by gRPC (0: max-steps x (max-payload + 1 KiB) + "
     "1 MiB, about 7.7 MB with the defaults)"},
    {"--max-inflight", F_U32, CFG_OFF(engine.max_inflight), 0, 1, 100000000,
     "most unfinished transactions in memory; a Begin or Submit that would "
     "create one more is refused RESOURCE_EXHAUSTED, requests for existing "
     "ones are still served (1000000)"},
    {"--max-waiters", F_U32, CFG_OFF(engine.max_waiters), 0, 1, 100000000,
     "most requests waiting for a result (wait_result) at once, over all "
     "transactions (64 per transaction); more are refused "
     "RESOURCE_EXHAUSTED; a waiter whose client cancels, disconnects or "
     "passes its deadline is dropped at once (100000)"},
    {"--shutdown-grace-ms", F_U32, CFG_OFF(shutdown_grace_ms), 0, 0, 3600000,
     "on SIGTERM/SIGINT: refuse new transactions (UNAVAILABLE), keep "
     "driving the live ones and wait up to this long for them to finish, "
     "then flush storage and exit; what is left resumes at the next start "
     "(10000)"},
    {"--tls-cert", F_STRING, CFG_OFF(tls_cert), 1024, 0, 0,
     "serve the TM API over TLS with this certificate chain (PEM file; "
     "needs --tls-key; default: plaintext)"},
    {"--tls-key", F_STRING, CFG_OFF(tls_key), 1024, 0, 0,
     "private key (PEM file) of --tls-cert"},
    {"--tls-client-ca", F_STRING, CFG_OFF(tls_client_ca), 1024, 0, 0,
     "mutual TLS: require every client to present a certificate signed by "
     "this CA (PEM file) and refuse the connection otherwise"},
    {"--participant-tls-ca", F_STRING, CFG_OFF(part_tls_ca), 1024, 0, 0,
     "call participants over TLS, verifying their certificates against this "
     "CA (PEM file; default: plaintext)"},
    {"--participant-tls-cert", F_STRING, CFG_OFF(part_tls_cert), 1024, 0, 0,
     "mutual TLS to participants: present this certificate chain (PEM "
     "file; needs --participant-tls-key and --participant-tls-ca)"},
    {"--participant-tls-key", F_STRING, CFG_OFF(part_tls_key), 1024, 0, 0,
     "private key (PEM file) of --participant-tls-cert"},
    {"--participant-tls-server-name", F_STRING, CFG_OFF(part_tls_server_name),
     256, 0, 0,
     "name the participants' certificates must carry instead of the "
     "target's host (for certificates issued to one service name)"},
    /* observability */
    {"--metrics-listen", F_STRING, CFG_OFF(metrics_listen), 256, 0, 0,
     "serve Prometheus metrics over HTTP at http://ADDR/metrics, e.g. "
     "127.0.0.1:9464 (port 0 picks a free one; default: off)"},
    {"--http-listen", F_STRING, CFG_OFF(http_listen), 256, 0, 0,
     "serve the web console and its JSON API at http://ADDR/, e.g. "
     "127.0.0.1:7480 (port 0 picks a free one; default: off)"},
    {"--http-token-file", F_STRING, CFG_OFF(http_token_file), 1024, 0, 0,
     "allow the console's operator actions (retry now, force stop) to "
     "requests bearing the token in this file (Authorization: Bearer; "
     "default: the console is read-only)"},
    {"--http-allow-hosts", F_STRING, CFG_OFF(http_allow_hosts), 1024, 0, 0,
     "host names (comma-separated) the console answers to besides IP "
     "addresses and localhost, e.g. trellis.internal (a request naming "
     "another Host is refused: a guard against DNS rebinding)"},
    {"--log-format", F_STRING, CFG_OFF(log_format), 16, 0, 0,
     "log lines as kv (key=value) or json (kv)"},
};

#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

_Static_assert((int)F_STRING == (int)TM_CONFIG_STRING &&
                   (int)F_U32 == (int)TM_CONFIG_U32 &&
                   (int)F_INT == (int)TM_CONFIG_INT &&
                   (int)F_LEVEL == (int)TM_CONFIG_LEVEL &&
                   (int)F_ALLOW == (int)TM_CONFIG_ALLOW &&
                   (int)F_CONFIG == (int)TM_CONFIG_FILE,
               "flag kinds are numbered as tm_config_kind_t");

size_t tm_config_flag_count(void)
{
    return N_FLAGS;
}

void tm_config_flag(size_t i, tm_config_flag_t *out)
{
    const flag_t *f = &flags[i];
    *out = (tm_config_flag_t){
        f->name, (tm_config_kind_t)f->kind, f->offset, f->size, f->min, f->max,
        f->help};
}

void tm_config_default(tm_config_t *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "127.0.0.1:7400");
    snprintf(c->data_dir, sizeof(c->data_dir), "./trellis-data");
    c->log_level = TM_LOG_INFO;
    tm_engine_config_default(&c->engine);
    snprintf(c->store, sizeof(c->store), "sqlite");
    snprintf(c->mysql_host, sizeof(c->mysql_host), "127.0.0.1");
    c->mysql_port = 3306;
    snprintf(c->mysql_user, sizeof(c->mysql_user), "root");
    snprintf(c->mysql_database, sizeof(c->mysql_database), "trellis");
    c->lease_ms = 10000;
    c->retention_s = 7 * 86400;
    c->shutdown_grace_ms = 10000;
}

/* Print text wrapped at width columns, continuation lines indented. */
static void print_wrapped(FILE *out, const char *text, int indent, int width)
{
    int col = indent;
    const char *p = text;
    while (*p) {
        size_t w = strcspn(p, " ");
        if (col > indent && col + 1 + (int)w > width) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)w, p);
        col += (int)w;
        p += w;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

void tm_config_usage(FILE *out)
{
    fprintf(out, "usage: trellisd [--config FILE] [flags]\n\n"
                 "Trellis transaction manager: runs Saga, TCC and XA global "
                 "transactions over gRPC\nwith durable state in an embedded "
                 "store.\n\nEvery flag can also be set in the --config file "
                 "as `name = value` (the flag\nwithout its --); flags on the "
                 "command line override the file.\n\nflags:\n");
    for (size_t i = 0; i < N_FLAGS; i++) {
        fprintf(out, "  %s\n%*s", flags[i].name, 6, "");
        print_wrapped(out, flags[i].help, 6, 78);
    }
    fprintf(out, "  --help\n      print this and exit\n");
    fprintf(out, "  --version\n      print trellisd's version and exit\n");
}

static const flag_t *find_flag(const char *name, size_t len)
{
    for (size_t k = 0; k < N_FLAGS; k++)
        if (strlen(flags[k].name) == len &&
            strncmp(flags[k].name, name, len) == 0)
            return &flags[k];
    return NULL;
}

/* label names the setting in messages: "--listen" or "FILE:3: listen". */
static int set_number(const flag_t *f, void *field, const char *v,
                      const char *label, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n < f->min || n > f->max) {
        snprintf(err, errlen,
                 "%s: \"%.200s\" is not a whole number from %lu to %lu", label,
                 v, f->min, f->max);
        return -1;
    }
    if (f->kind == F_U32)
        *(uint32_t *)field = (uint32_t)n;
    else
        *(int *)field = (int)n;
    return 0;
}

static int set_flag(tm_config_t *c, const flag_t *f, const char *v,
                    const char *label, char *err, size_t errlen)
{
    void *field = (char *)c + f->offset;
    char why[512];
    switch (f->kind) {
    case F_STRING:
    case F_CONFIG:
        if (strlen(v) >= f->size || !*v) {
            snprintf(err, errlen, "%s: value is empty or longer than %zu",
                     label, f->size - 1);
            return -1;
        }
        snprintf(field, f->size, "%s", v);
        return 0;
    case F_U32:
    case F_INT:
        return set_number(f, field, v, label, err, errlen);
    case F_LEVEL:
        if (tm_log_parse_level(v, field) != 0) {
            snprintf(err, errlen,
                     "%s: \"%.200s\" is not debug, info, warn or error", label,
                     v);
            return -1;
        }
        return 0;
    case F_ALLOW:
        if (tm_allow_parse(field, v, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s: %s", label, why);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* 0 if id is a well-formed cluster id, else -1 with err naming what. */
static int check_cluster_id(const char *id, const char *what, char *err,
                            size_t errlen)
{
    size_t n = strlen(id);
    int ok = n > 0 && n <= TM_CLUSTER_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = id[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == ':' ||
             ch == '-';
    }
    if (!ok)
        snprintf(err, errlen,
                 "%s: \"%.80s\" must be 1..%d characters of A-Z a-z 0-9 _ "
                 ". : -",
                 what, id, TM_CLUSTER_ID_MAX);
    return ok ? 0 : -1;
}

/* Settings that only make sense together. */
static int check_settings(const tm_config_t *c, char *err, size_t errlen)
{
    const char *bad = NULL;
    if (c->cluster_id[0] &&
        check_cluster_id(c->cluster_id, "--cluster-id", err, errlen) != 0)
        return -1;
    if (!c->tls_cert[0] != !c->tls_key[0])
        bad = "--tls-cert and --tls-key go together";
    else if (c->tls_client_ca[0] && !c->tls_cert[0])
        bad = "--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is "
              "TLS first)";
    else if (!c->part_tls_cert[0] != !c->part_tls_key[0])
        bad = "--participant-tls-cert and --participant-tls-key go together";
    else if (c->http_allow_hosts[0] && !c->http_listen[0])
        bad = "--http-allow-hosts needs --http-listen";
    else if (c->http_token_file[0] && !c->http_listen[0])
        bad = "--http-token-file needs --http-listen (it unlocks the "
              "console's operator actions)";
    else if ((c->part_tls_cert[0] || c->part_tls_server_name[0]) &&
             !c->part_tls_ca[0])
        bad = "--participant-tls-cert, -key and -server-name need "
              "--participant-tls-ca";
    if (bad)
        snprintf(err, errlen, "%s", bad);
    return bad ? -1 : 0;
}

/* ---- the config file ---------------------------------------------------- */

/* Longest value a file line may set (the longest setting is far shorter). */
#define VALUE_MAX 4096

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Trim p[*n] in place of the pointer and length. */
static const char *trim(const char *p, size_t *n)
{
    while (*n && is_blank(*p)) {
        p++;
        (*n)--;
    }
    while (*n && is_blank(p[*n - 1]))
        (*n)--;
    return p;
}

/* The length of line[n] before a comment: '#' at its start or after a
 * blank. */
static size_t uncommented(const char *line, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (line[i] == '#' && (i == 0 || is_blank(line[i - 1])))
            return i;
    return n;
}

typedef struct {
    const char *source;
    size_t line;
    size_t seen[sizeof(flags) / sizeof(flags[0])]; /* line set, 0: not */
} file_ctx_t;

static int file_error(const file_ctx_t *x, char *err, size_t errlen,
                      const char *what, const char *key, size_t key_len)
{
    if (key_len > 64)
        key_len = 64;
    snprintf(err, errlen, "%s:%zu: %.*s%s%s", x->source, x->line, (int)key_len,
             key ? key : "", key ? ": " : "", what);
    return -1;
}

/* One line, without its newline. */
static int parse_line(tm_config_t *c, file_ctx_t *x, const char *line, size_t n,
                      char *err, size_t errlen)
{
    if (memchr(line, '\0', n))
        return file_error(x, err, errlen, "the line holds a NUL byte", NULL, 0);
    n = uncommented(line, n);
    line = trim(line, &n);
    if (n == 0)
        return 0;
    const char *eq = memchr(line, '=', n);
    if (!eq)
        return file_error(x, err, errlen,
                          "expected `name = value` (or a # comment)", NULL, 0);
    size_t kn = (size_t)(eq - line), vn = n - kn - 1;
    const char *key = trim(line, &kn);
    const char *val = trim(eq + 1, &vn);
    char name[72];
    const flag_t *f = NULL;
    if (kn > 0 && kn + 2 < sizeof(name)) {
        snprintf(name, sizeof(name), "--%.*s", (int)kn, key);
        f = find_flag(name, kn + 2);
    }
    if (!f || f->kind == F_CONFIG)
        return file_error(x, err, errlen,
                          "unknown setting (see trellisd --help)",
                          kn ? key : "(empty name)", kn ? kn : 12);
    size_t k = (size_t)(f - flags);
    if (x->seen[k]) {
        char what[64];
        snprintf(what, sizeof(what), "set twice (first at line %zu)",
                 x->seen[k]);
        return file_error(x, err, errlen, what, key, kn);
    }
    x->seen[k] = x->line;
    if (vn >= VALUE_MAX)
        return file_error(x, err, errlen, "value is too long", key, kn);
    char value[VALUE_MAX], label[1200];
    memcpy(value, val, vn);
    value[vn] = '\0';
    snprintf(label, sizeof(label), "%.1024s:%zu: %.*s", x->source, x->line,
             (int)kn, key);
    return set_flag(c, f, value, label, err, errlen);
}

int tm_config_parse_text(tm_config_t *c, const char *text, size_t len,
                         const char *source, char *err, size_t errlen)
{
    file_ctx_t x;
    memset(&x, 0, sizeof(x));
    x.source = source ? source : "config";
    const char *p = text, *end = text ? text + len : text;
    while (p && p < end) {
        x.line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (parse_line(c, &x, p, (size_t)(stop - p), err, errlen) != 0)
            return -1;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* A config file larger than this is a mistake (a wrong path). */
#define CONFIG_FILE_MAX (1u << 20)

int tm_config_load_file(tm_config_t *c, const char *path, char *err,
                        size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read the config file: %s", path,
                 strerror(errno));
        return -1;
    }
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_FILE_MAX + 1, f) : 0;
    int bad = !buf || ferror(f) || n > CONFIG_FILE_MAX;
    fclose(f);
    int rc = -1;
    if (bad)
        snprintf(err, errlen, "%s: cannot read the config file (%s)", path,
                 !buf                  ? "out of memory"
                 : n > CONFIG_FILE_MAX ? "larger than 1 MiB"
                                       : "read error");
    else
        rc = tm_config_parse_text(c, buf, n, path, err, errlen);
    free(buf);
    return rc;
}

/* ---- the command line --------------------------------------------------- */

/* The flag of argv[*i] and its value (from "--x=v" or the next argument,
 * advancing *i); NULL with err filled when there is none. */
static const flag_t *next_flag(int argc, char **argv, int *i, const char **v,
                               char *err, size_t errlen)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
    const flag_t *f = find_flag(arg, name_len);
    if (!f) {
        snprintf(err, errlen, "unknown flag %s (see --help)", arg);
        return NULL;
    }
    *v = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (!*v) {
        snprintf(err, errlen, "%s needs a value", f->name);
        return NULL;
    }
    return f;
}

int tm_config_parse(tm_config_t *c, int argc, char **argv, char *err,
                    size_t errlen)
{
    /* First --help and the config file, then the flags over the file. */
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            tm_config_usage(stdout);
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("trellisd %s\n", TRELLIS_VERSION_STRING);
            return 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *v;
        const flag_t *f = next_flag(argc, argv, &i, &v, err, errlen);
        if (!f)
            return -1;
        if (f->kind == F_CONFIG) {
            if (set_flag(c, f, v, f->name, err, errlen) != 0)
                return -1;
            file = c->config_file;
        }
    }
    if (file && tm_config_load_file(c, file, err, errlen) != 0)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *v;
        const flag_t *f = next_flag(argc, argv, &i, &v, err, errlen);
        if (f->kind != F_CONFIG && set_flag(c, f, v, f->name, err, errlen))
            return -1;
    }
    return check_settings(c, err, errlen);
}

/* A name nobody else runs under: host name and process id. */
static void default_node_id(char *buf, size_t len)
{
    char host[64] = "node";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, len, "%.40s-%ld", host, (long)getpid());
}

int tm_config_store(const tm_config_t *c, tm_store_config_t *out, char *err,
                    size_t errlen)
{
    static char node_id[64];
    tm_store_config_default(out);
    if (strcmp(c->store, "sqlite") == 0) {
        out->kind = TM_STORE_SQLITE;
    } else if (strcmp(c->store, "mysql") == 0) {
        out->kind = TM_STORE_MYSQL;
    } else {
        snprintf(err, errlen, "--store: \"%s\" is not sqlite or mysql",
                 c->store);
        return -1;
    }
    out->data_dir = c->data_dir;
    out->mysql_host = c->mysql_host;
    out->mysql_port = c->mysql_port;
    out->mysql_socket = c->mysql_socket[0] ? c->mysql_socket : NULL;
    out->mysql_user = c->mysql_user;
    const char *env_password = getenv("TRELLIS_MYSQL_PASSWORD");
    out->mysql_password = c->mysql_password[0] ? c->mysql_password
                          : env_password       ? env_password
                                               : NULL;
    out->mysql_database = c->mysql_database;
    if (c->node_id[0]) {
        out->node_id = c->node_id;
    } else {
        default_node_id(node_id, sizeof(node_id));
        out->node_id = node_id;
    }
    out->lease_ms = c->lease_ms;
    out->retention_ms = (uint64_t)c->retention_s * 1000;
    return 0;
}

/* ---- the cluster id ----------------------------------------------------- */

#define CLUSTER_ID_FILE "cluster-id"

/* The sqlite store's id: read <data_dir>/cluster-id, or make it (written
 * to a temporary file, synced, renamed: a crash leaves no half id). */
static int sqlite_cluster_id(const char *data_dir, char *out, size_t outlen,
                             const char **how, char *err, size_t errlen)
{
    char path[1100], tmp[1110];
    snprintf(path, sizeof path, "%s/" CLUSTER_ID_FILE, data_dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[TM_CLUSTER_ID_MAX + 8] = "";
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (check_cluster_id(line, path, err, errlen) != 0)
            return -1;
        snprintf(out, outlen, "%s", line);
        *how = "file";
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char rnd[8];
    FILE *ur = fopen("/dev/urandom", "rb");
    size_t got = ur ? fread(rnd, 1, sizeof rnd, ur) : 0;
    if (ur)
        fclose(ur);
    if (got != sizeof rnd) {
        snprintf(err, errlen, "/dev/urandom: cannot read a cluster id");
        return -1;
    }
    char id[32] = "sqlite-";
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 7 + 2 * i, 3, "%02x", rnd[i]);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    int bad = !f || fprintf(f, "%s\n", id) < 0 || fflush(f) != 0 ||
              fsync(fileno(f)) != 0;
    if (f && fclose(f) != 0)
        bad = 1;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(out, outlen, "%s", id);
    *how = "file";
    return 0;
}

int tm_config_cluster_id(const tm_config_t *c, char *out, size_t outlen,
                         const char **how, char *err, size_t errlen)
{
    if (outlen < TM_CLUSTER_ID_MAX + 1) {
        snprintf(err, errlen, "cluster id buffer of %zu bytes is too small",
                 outlen);
        return -1;
    }
    if (c->cluster_id[0]) {
        if (check_cluster_id(c->cluster_id, "--cluster-id", err, errlen) != 0)
            return -1;
        snprintf(out, outlen, "%s", c->cluster_id);
        *how = "flag";
        return 0;
    }
    if (strcmp(c->store, "mysql") != 0)
        return sqlite_cluster_id(c->data_dir, out, outlen, how, err, errlen);
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)c->mysql_port);
    const char *parts[] = {c->mysql_socket[0] ? c->mysql_socket : c->mysql_host,
                           c->mysql_socket[0] ? "" : port, c->mysql_database};
    trellis_fnv_t f;
    trellis_fnv_init(&f);
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        trellis_fnv_add(&f, parts[i], strlen(parts[i]) + 1); /* with the NUL */
    snprintf(out, outlen, "mysql-%016llx",
             (unsigned long long)trellis_fnv_final(&f));
    *how = "store";
    return 0;
}
