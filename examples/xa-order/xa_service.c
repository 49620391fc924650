/*
 * xa_service.c — the participant scaffold of the xa-order example (see
 * xa_service.h): command line, one MariaDB connection per worker thread,
 * the Prepare/Commit/Rollback handlers over the XA adapter, the State
 * method, the fail_commits fault, and the log lines.
 *
 * What is deliberately not here: any business rule. A service supplies its
 * table and the SQL its Prepare runs (order_service.c, stock_service.c);
 * the adapter (rm-adapters/mysql-xa) owns XA START ... XA PREPARE, the
 * barrier row, and the idempotent phase 2.
 */
#include "xa_service.h"

#include <errmsg.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xa.h"

#define SQL_MAX 1024
#define MAX_CONNS 256
#define MAX_FAULTS 1024 /* (gid, branch) pairs with a fail_commits fault */

/* ---- command line ---------------------------------------------------- */

typedef struct {
    const char *listen, *port_file;
    const char *socket, *host, *user, *database;
    unsigned port;
    int threads, quiet;
} args_t;

static args_t A;
static const xa_service_def_t *DEF;

/* ---- the worker connections ------------------------------------------ */

/* Every connection any worker opened, so main can close them at exit
 * (workers have been joined by then). */
static struct {
    pthread_mutex_t mu;
    MYSQL *conns[MAX_CONNS];
} POOL = {.mu = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local MYSQL *worker_conn;

static void pool_put(MYSQL *m)
{
    pthread_mutex_lock(&POOL.mu);
    for (int i = 0; i < MAX_CONNS && m; i++)
        if (!POOL.conns[i]) {
            POOL.conns[i] = m;
            m = NULL;
        }
    pthread_mutex_unlock(&POOL.mu);
    if (m) /* more connections than slots: nobody will close it later */
        fprintf(stderr, "%s: connection pool full\n", DEF->name);
}

static void pool_drop(MYSQL *m)
{
    pthread_mutex_lock(&POOL.mu);
    for (int i = 0; i < MAX_CONNS; i++)
        if (POOL.conns[i] == m)
            POOL.conns[i] = NULL;
    pthread_mutex_unlock(&POOL.mu);
    mysql_close(m);
}

static void pool_close_all(void)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (POOL.conns[i]) {
            mysql_close(POOL.conns[i]);
            POOL.conns[i] = NULL;
        }
}

/* A new connection to database (NULL: none selected), READ COMMITTED and
 * CLIENT_FOUND_ROWS (affected rows = matched rows). The isolation level is
 * an init command, not a statement sent once: the adapter reconnects the
 * connection in place after every XA PREPARE (a prepared branch stays
 * attached to its session until it disconnects), and the new session runs
 * the init command again. NULL with err. */
static MYSQL *db_connect(const char *database, char *err, size_t errlen)
{
    MYSQL *m = mysql_init(NULL);
    unsigned timeout = 5;
    if (!m) {
        snprintf(err, errlen, "mysql_init: out of memory");
        return NULL;
    }
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(m, MYSQL_INIT_COMMAND,
                  "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    if (!mysql_real_connect(m, A.host, A.user, NULL, database, A.port, A.socket,
                            CLIENT_FOUND_ROWS)) {
        snprintf(err, errlen, "connect to MariaDB: %s", mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

MYSQL *xa_service_conn(char *err, size_t errlen)
{
    if (!worker_conn && (worker_conn = db_connect(A.database, err, errlen)))
        pool_put(worker_conn);
    return worker_conn;
}

void xa_service_conn_check(void)
{
    unsigned e = worker_conn ? mysql_errno(worker_conn) : 0;
    if (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR) {
        pool_drop(worker_conn);
        worker_conn = NULL;
    }
}

int xa_service_exec(MYSQL *conn, char *msg, size_t msglen, const char *fmt, ...)
{
    char sql[SQL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (mysql_query(conn, sql) == 0)
        return 0;
    snprintf(msg, msglen, "%s", mysql_error(conn));
    return -1;
}

void xa_service_answer(trellis_reply_t *reply, trellis_reply_code_t code,
                       const char *fmt, ...)
{
    va_list ap;
    reply->code = code;
    va_start(ap, fmt);
    vsnprintf(reply->message, sizeof reply->message, fmt, ap);
    va_end(ap);
}

/* ---- payloads -------------------------------------------------------- */

int xa_service_valid_id(const char *s, size_t n)
{
    if (n == 0 || n > XA_SERVICE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' ||
            !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_.-",
                    s[i]))
            return 0;
    return 1;
}

/* A decimal in [min, max] into *out; 0 or -1. */
static int parse_num(const char *s, long long min, long long max,
                     long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* One "key=value" field into it; 0, or -1 for an unknown or bad field. */
static int parse_field(const char *f, xa_item_t *it, int *seen)
{
    const char *eq = strchr(f, '=');
    long long n;
    if (!eq)
        return -1;
    size_t klen = (size_t)(eq - f);
    const char *v = eq + 1;
    if (klen == 5 && !strncmp(f, "order", 5) &&
        xa_service_valid_id(v, strlen(v))) {
        snprintf(it->order, sizeof it->order, "%s", v);
        *seen |= 1;
    } else if (klen == 3 && !strncmp(f, "sku", 3) &&
               xa_service_valid_id(v, strlen(v))) {
        snprintf(it->sku, sizeof it->sku, "%s", v);
        *seen |= 2;
    } else if (klen == 3 && !strncmp(f, "qty", 3) &&
               parse_num(v, 1, 1000000, &n) == 0) {
        it->qty = n;
        *seen |= 4;
    } else if (klen == 12 && !strncmp(f, "fail_commits", 12) &&
               parse_num(v, 0, 1000, &n) == 0) {
        it->fail_commits = (int)n;
    } else {
        return -1;
    }
    return 0;
}

/* Parse "order=ID sku=SKU qty=N [fail_commits=K]" (any order). The id
 * charset keeps it safe to quote ids into SQL as they are. 0 or -1. */
static int parse_item(const uint8_t *p, size_t len, xa_item_t *it, char *err,
                      size_t errlen)
{
    char text[512], *save = NULL;
    int seen = 0, bad = len >= sizeof text;
    memset(it, 0, sizeof *it);
    if (!bad) {
        memcpy(text, p, len);
        text[len] = '\0';
        for (char *f = strtok_r(text, " \n", &save); f && !bad;
             f = strtok_r(NULL, " \n", &save))
            bad = parse_field(f, it, &seen) != 0;
    }
    if (!bad && seen == 7)
        return 0;
    snprintf(err, errlen,
             "bad payload: want \"order=ID sku=SKU qty=N "
             "[fail_commits=K]\" (ID, SKU 1..64 of [A-Za-z0-9_.-], N "
             "1..1000000)");
    return -1;
}

/* ---- the fail_commits fault ------------------------------------------ */

static struct {
    pthread_mutex_t mu;
    struct {
        char key[160]; /* "gid/branch" */
        int seen;      /* Commit calls so far */
    } slot[MAX_FAULTS];
    int n;
} FAULTS = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* 1 if this Commit call of (gid, branch) is one of the first `limit`:
 * answer UNAVAILABLE without doing anything. */
static int commit_fault(const trellis_branch_ctx_t *ctx, int limit)
{
    char key[160];
    int hit = 0, i;
    if (limit <= 0)
        return 0;
    snprintf(key, sizeof key, "%s/%s", ctx->gid, ctx->branch_id);
    pthread_mutex_lock(&FAULTS.mu);
    for (i = 0; i < FAULTS.n && strcmp(FAULTS.slot[i].key, key); i++)
        ;
    if (i == FAULTS.n && FAULTS.n < MAX_FAULTS)
        snprintf(FAULTS.slot[FAULTS.n++].key, sizeof FAULTS.slot[0].key, "%s",
                 key);
    if (i < FAULTS.n)
        hit = ++FAULTS.slot[i].seen <= limit;
    pthread_mutex_unlock(&FAULTS.mu);
    return hit;
}

/* ---- XA handlers ----------------------------------------------------- */

typedef enum { OP_PREPARE, OP_COMMIT, OP_ROLLBACK } xa_op_t;

typedef struct {
    const char *method; /* last part of the method name */
    const char *op;     /* dtm-op / barrier op */
    xa_op_t kind;
} op_def_t;

static const op_def_t OPS[] = {
    {"Prepare", "prepare", OP_PREPARE},
    {"Commit", "commit", OP_COMMIT},
    {"Rollback", "rollback", OP_ROLLBACK},
};

static const char *outcome_name(xa_outcome_t o)
{
    switch (o) {
    case XA_PREPARED:
        return "prepared";
    case XA_SKIPPED_DUPLICATE:
        return "duplicate: nothing to do";
    case XA_SKIPPED_ROLLED_BACK:
        return "rolled back before it came: nothing prepared";
    case XA_BUSINESS_FAILURE:
        return "refused";
    case XA_ERROR:
        return "error";
    }
    return "?";
}

static void say(const trellis_branch_ctx_t *ctx, const op_def_t *op,
                const xa_item_t *it, const char *fmt, ...)
{
    if (A.quiet)
        return;
    char what[400], hms[16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    printf("%s.%06ld %s: %s gid=%s branch=%s order=%s sku=%s qty=%lld -> %s\n",
           hms, ts.tv_nsec / 1000, DEF->name, op->method, ctx->gid,
           ctx->branch_id, it ? it->order : "-", it ? it->sku : "-",
           it ? it->qty : 0, what);
}

/* The branch this call is about, or -1 with reply filled. */
static int branch_of(const trellis_branch_ctx_t *ctx, const op_def_t *op,
                     barrier_branch_t *b, trellis_reply_t *reply)
{
    *b = barrier_branch_from_ctx(ctx);
    if (!*ctx->gid || !*ctx->branch_id) {
        xa_service_answer(reply, TRELLIS_REPLY_FAILURE,
                          "missing dtm-gid / dtm-branch_id metadata");
        return -1;
    }
    if (*ctx->op && strcmp(ctx->op, op->op) != 0) {
        xa_service_answer(reply, TRELLIS_REPLY_FAILURE, "dtm-op %s sent to %s",
                          ctx->op, op->method);
        return -1;
    }
    b->op = op->op;
    if (!*ctx->trans_type)
        b->trans_type = "xa";
    return 0;
}

static void run_prepare(MYSQL *conn, const trellis_branch_ctx_t *ctx,
                        const op_def_t *op, const barrier_branch_t *b,
                        xa_item_t *it, trellis_reply_t *reply)
{
    char msg[256] = "";
    xa_outcome_t out = xa_prepare_branch(conn, BARRIER_DEFAULT_TABLE, b,
                                         DEF->prepare_sql, it, msg, sizeof msg);
    if (out == XA_ERROR)
        xa_service_conn_check();
    xa_fill_reply(out, msg, reply);
    int show = *msg && (out == XA_ERROR || out == XA_BUSINESS_FAILURE);
    say(ctx, op, it, "%s%s%s", outcome_name(out), show ? ": " : "",
        show ? msg : "");
}

static void run_phase2(MYSQL *conn, const trellis_branch_ctx_t *ctx,
                       const op_def_t *op, const barrier_branch_t *b,
                       const xa_item_t *it, trellis_reply_t *reply)
{
    char msg[256] = "";
    if (op->kind == OP_COMMIT && commit_fault(ctx, it->fail_commits)) {
        xa_service_answer(reply, TRELLIS_REPLY_ERROR,
                          "fault: unavailable (fail_commits=%d)",
                          it->fail_commits);
        say(ctx, op, it, "fault: UNAVAILABLE before doing anything");
        return;
    }
    int rc =
        op->kind == OP_COMMIT
            ? xa_commit_branch(conn, BARRIER_DEFAULT_TABLE, b, msg, sizeof msg)
            : xa_rollback_branch(conn, BARRIER_DEFAULT_TABLE, b, msg,
                                 sizeof msg);
    if (rc == 0) {
        say(ctx, op, it, "%s%s%s",
            op->kind == OP_COMMIT ? "committed" : "rolled back",
            *msg ? ": " : "", msg);
        return;
    }
    xa_service_conn_check();
    xa_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", msg);
    say(ctx, op, it, "error: %s", msg);
}

static void handle_xa(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t payload_len, trellis_reply_t *reply, void *user)
{
    const op_def_t *op = user;
    xa_item_t it;
    barrier_branch_t b;
    char err[256] = "";
    if (parse_item(payload, payload_len, &it, err, sizeof err) != 0) {
        xa_service_answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        say(ctx, op, NULL, "rejected: %s", err);
        return;
    }
    if (branch_of(ctx, op, &b, reply) != 0) {
        say(ctx, op, &it, "rejected: %s", reply->message);
        return;
    }
    MYSQL *conn = xa_service_conn(err, sizeof err);
    if (!conn) {
        xa_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        say(ctx, op, &it, "error: %s", err);
    } else if (op->kind == OP_PREPARE) {
        run_prepare(conn, ctx, op, &b, &it, reply);
    } else {
        run_phase2(conn, ctx, op, &b, &it, reply);
    }
}

/* ---- State ----------------------------------------------------------- */

/* Append to a malloc'd buffer. 0 or -1. */
static int buf_add(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t ncap = (*len + n + 1) * 2;
        char *p = realloc(*buf, ncap);
        if (!p)
            return -1;
        *buf = p;
        *cap = ncap;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return 0;
}

/* Every row of r as "col=value col=value\n" into a malloc'd buffer. */
static char *rows_text(MYSQL_RES *r, size_t *len)
{
    char *buf = NULL, field[160];
    size_t cap = 0;
    unsigned n = mysql_num_fields(r);
    MYSQL_FIELD *f = mysql_fetch_fields(r);
    MYSQL_ROW row;
    *len = 0;
    while ((row = mysql_fetch_row(r))) {
        for (unsigned i = 0; i < n; i++) {
            snprintf(field, sizeof field, "%s%s=%s", i ? " " : "", f[i].name,
                     row[i] ? row[i] : "NULL");
            if (buf_add(&buf, len, &cap, field) != 0)
                return buf;
        }
        if (buf_add(&buf, len, &cap, "\n") != 0)
            return buf;
    }
    return buf;
}

static void handle_state(const trellis_branch_ctx_t *ctx,
                         const uint8_t *payload, size_t payload_len,
                         trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)payload, (void)payload_len, (void)user;
    char err[256] = "";
    MYSQL *conn = xa_service_conn(err, sizeof err);
    MYSQL_RES *r = NULL;
    if (!conn ||
        xa_service_exec(conn, err, sizeof err, "%s", DEF->state_query) != 0 ||
        !(r = mysql_store_result(conn))) {
        if (conn && !*err)
            snprintf(err, sizeof err, "%s", mysql_error(conn));
        xa_service_conn_check();
        xa_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        return;
    }
    reply->body = (uint8_t *)rows_text(r, &reply->body_len);
    mysql_free_result(r);
}

/* ---- start ----------------------------------------------------------- */

static int valid_db_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_",
                    s[i]))
            return 0;
    return 1;
}

/* Create the database, the service's table and the barrier table. */
static int create_schema(char *err, size_t errlen)
{
    MYSQL *m = db_connect(NULL, err, errlen);
    if (!m)
        return -1;
    int rc = -1;
    if (xa_service_exec(m, err, errlen, "CREATE DATABASE IF NOT EXISTS `%s`",
                        A.database) == 0 &&
        mysql_select_db(m, A.database) == 0 &&
        xa_service_exec(m, err, errlen, "%s", DEF->table_ddl) == 0 &&
        barrier_create_table(m, BARRIER_DEFAULT_TABLE, err, errlen) == 0)
        rc = 0;
    else if (!*err)
        snprintf(err, errlen, "%s", mysql_error(m));
    mysql_close(m);
    return rc;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: %s [--database DB]\n"
            "         (--mysql-socket PATH | --mysql-host H [--mysql-port P])\n"
            "         [--mysql-user U] [--listen ADDR] [--port-file FILE]\n"
            "         [--threads N] [--quiet]\n",
            DEF->name);
    return 2;
}

/* One "--flag value" pair. 0 or -1. */
static int set_arg(const char *k, const char *v)
{
    const struct {
        const char *flag;
        const char **dst;
    } str[] = {
        {"--listen", &A.listen},       {"--port-file", &A.port_file},
        {"--mysql-socket", &A.socket}, {"--mysql-host", &A.host},
        {"--mysql-user", &A.user},     {"--database", &A.database},
    };
    for (size_t i = 0; i < sizeof str / sizeof str[0]; i++)
        if (!strcmp(k, str[i].flag)) {
            *str[i].dst = v;
            return 0;
        }
    if (!strcmp(k, "--mysql-port"))
        return (A.port = (unsigned)atoi(v)) > 0 ? 0 : -1;
    if (!strcmp(k, "--threads"))
        return (A.threads = atoi(v)) > 0 && A.threads <= MAX_CONNS ? 0 : -1;
    return -1;
}

static int parse_args(int argc, char **argv)
{
    A = (args_t){.listen = "127.0.0.1:0",
                 .user = "root",
                 .threads = 4,
                 .database = DEF->default_db};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet"))
            A.quiet = 1;
        else if (i + 1 >= argc || set_arg(argv[i], argv[i + 1]) != 0)
            return -1;
        else
            i++;
    }
    if (!valid_db_name(A.database) || (!A.socket && !A.host))
        return -1;
    if (A.host && !A.port)
        A.port = 3306;
    return 0;
}

/* Write the port, then rename, so a reader never sees a partial file. */
static int write_port_file(const char *path, int port)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

static int add_handlers(trellis_participant_t *p, char *err, size_t errlen)
{
    char method[128];
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
        snprintf(method, sizeof method, "/%s/%s", DEF->service, OPS[i].method);
        if (trellis_participant_handle(p, method, handle_xa, (void *)&OPS[i],
                                       err, errlen) != TRELLIS_OK)
            return -1;
    }
    snprintf(method, sizeof method, "/%s/State", DEF->service);
    if (trellis_participant_handle(p, method, handle_state, NULL, err,
                                   errlen) != TRELLIS_OK)
        return -1;
    return DEF->add_handlers ? DEF->add_handlers(p, err, errlen) : 0;
}

static int serve(trellis_participant_t *p)
{
    char err[256] = "";
    int port = 0;
    if (create_schema(err, sizeof err) != 0 ||
        add_handlers(p, err, sizeof err) != 0 ||
        trellis_participant_start(p, A.listen, &port, err, sizeof err) !=
            TRELLIS_OK)
        goto fail;
    if (A.port_file && write_port_file(A.port_file, port) != 0) {
        snprintf(err, sizeof err, "cannot write %s", A.port_file);
        goto fail;
    }
    printf("%s ready database=%s port=%d threads=%d\n", DEF->name, A.database,
           port, A.threads);
    return 0;
fail:
    fprintf(stderr, "%s: %s\n", DEF->name, err);
    return -1;
}

int xa_service_main(int argc, char **argv, const xa_service_def_t *def)
{
    DEF = def;
    if (parse_args(argc, argv) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (mysql_library_init(0, NULL, NULL) != 0) {
        fprintf(stderr, "%s: mysql_library_init failed\n", DEF->name);
        return 1;
    }
    trellis_participant_t *p = NULL;
    char err[256];
    int rc = -1;
    if (trellis_participant_new(A.threads, &p, err, sizeof err) != TRELLIS_OK)
        fprintf(stderr, "%s: %s\n", DEF->name, err);
    else if ((rc = serve(p)) == 0) {
        int sig;
        sigwait(&stop, &sig);
        printf("%s stopping (signal %d)\n", DEF->name, sig);
    }
    trellis_participant_free(p);
    pool_close_all();
    mysql_library_end();
    return rc == 0 ? 0 : 1;
}
