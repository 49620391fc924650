/*
 * example_driver.c — the drivers' shared scaffolding (see
 * example_driver.h): checks and result lines, the processes started with
 * the harness, the services' log lines, and the TM's view.
 */
#include "example_driver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- checks ---------------------------------------------------------- */

int example_expect(example_check_t *ck, int cond, const char *fmt, ...)
{
    if (cond)
        return 1;
    va_list ap;
    char line[512];
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("   CHECK FAILED: %s\n", line);
    atomic_fetch_add(&ck->failed, 1);
    return 0;
}

void example_result(const char *ex, const char *scenario, int failed)
{
    printf("example=%s scenario=%s result=%s\n", ex, scenario,
           failed ? "FAIL" : "ok");
    fflush(stdout);
}

/* ---- scenarios ------------------------------------------------------- */

static int scenario_usage(const char *program, const example_scenario_t *sc,
                          size_t n)
{
    fprintf(stderr, "usage: %s [--scenario NAME]\n  NAME:", program);
    for (size_t s = 0; s < n; s++)
        fprintf(stderr, " %s", sc[s].name);
    fprintf(stderr, "\n");
    return -1;
}

int example_scenario_arg(const char *program, int argc, char **argv,
                         const example_scenario_t *sc, size_t n,
                         const char **only)
{
    *only = "";
    if (argc == 1)
        return 0;
    if (argc != 3 || strcmp(argv[1], "--scenario") != 0)
        return scenario_usage(program, sc, n);
    for (size_t s = 0; s < n; s++)
        if (!strcmp(argv[2], sc[s].name)) {
            *only = argv[2];
            return 0;
        }
    return scenario_usage(program, sc, n);
}

/* One scenario, its header, its time and its result line. 1 if failed. */
static int run_one(const char *ex, const example_scenario_t *sc, void *env)
{
    example_check_t ck = {0};
    printf("\n== scenario %s: %s\n", sc->name, sc->story);
    int64_t t0 = harness_mono_ms();
    sc->run(env, &ck);
    int failed = atomic_load(&ck.failed);
    printf("   (%lld ms)\n", (long long)(harness_mono_ms() - t0));
    example_result(ex, sc->name, failed);
    return failed != 0;
}

int example_run_scenarios(const char *ex, const example_scenario_t *sc,
                          size_t n, const char *only, void *env, int ready)
{
    int failed = 0;
    if (!ready) {
        printf("example-%s: could not start; no scenario ran\n", ex);
        failed = 1;
    }
    for (size_t s = 0; s < n; s++) {
        if (*only && strcmp(only, sc[s].name))
            continue;
        if (ready)
            failed |= run_one(ex, &sc[s], env);
        else
            example_result(ex, sc[s].name, 1);
    }
    return failed;
}

/* ---- processes ------------------------------------------------------- */

int example_procs_open(example_procs_t *p, const char *program)
{
    p->program = program;
    if (!(p->h = harness_new(program)))
        return -1;
    printf("scratch dir %s (logs of every process)\n", harness_dir(p->h));
    return 0;
}

const char *example_start_mariadb(example_procs_t *p)
{
    if (!(p->db = harness_mariadb_start(p->h, "mariadb")))
        return NULL;
    printf("started MariaDB (socket %s)\n", harness_mariadb_socket(p->db));
    return harness_mariadb_socket(p->db);
}

static void remember(example_procs_t *p, harness_server_t *s, const char *name)
{
    if (p->n_started >= EXAMPLE_MAX_STARTED) {
        /* cannot happen with the examples' fixed process lists */
        fprintf(stderr, "%s: too many processes\n", p->program);
        abort();
    }
    p->started_name[p->n_started] = name;
    p->started[p->n_started++] = s;
}

harness_server_t *example_start_tm(example_procs_t *p, const char *const *args,
                                   char *addr, size_t addrlen)
{
    harness_server_t *s = harness_tm_start(p->h, "trellisd", args);
    if (!s)
        return NULL;
    remember(p, s, "trellisd");
    snprintf(addr, addrlen, "%s", harness_server_addr(s));
    printf("started trellisd at %s (data dir %s)\n", addr,
           harness_server_data_dir(s));
    return s;
}

void example_service_bin(const char *bin, char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(buf, len, "%s/%s", self, bin) < (int)len &&
                access(buf, X_OK) == 0)
                return;
        }
    }
    snprintf(buf, len, "%s/bin/%s", harness_build_dir(), bin);
}

harness_server_t *example_start_service(example_procs_t *p, const char *name,
                                        const char *bin,
                                        const char *const *args)
{
    char path[PATH_MAX];
    example_service_bin(bin, path, sizeof path);
    harness_server_t *s = harness_server_start(p->h, name, path, args);
    if (s)
        remember(p, s, name);
    return s;
}

/* Stop process i; 0 if it exited 0, else -1 with why and its log tail. */
static int stop_one(const example_procs_t *p, int i)
{
    harness_proc_t *proc = harness_server_proc(p->started[i]);
    int st = harness_proc_stop(proc, 5000);
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (st != -1 && WIFEXITED(st))
        printf("%s: %s exited with status %d\n", p->program, p->started_name[i],
               WEXITSTATUS(st));
    else if (st != -1 && WIFSIGNALED(st))
        printf("%s: %s was killed by signal %d\n", p->program,
               p->started_name[i], WTERMSIG(st));
    else
        printf("%s: %s had already exited\n", p->program, p->started_name[i]);
    harness_proc_log_tail(proc, 30);
    return -1;
}

int example_procs_stop(example_procs_t *p)
{
    int rc = 0;
    for (int i = p->n_started - 1; i >= 0; i--)
        if (stop_one(p, i) != 0)
            rc = -1;
    if (p->db)
        harness_mariadb_stop(p->db);
    return rc;
}

int example_seed_token(example_procs_t *p, char *token, size_t toklen,
                       char *path, size_t pathlen)
{
    unsigned char raw[16];
    if (toklen < 2 * sizeof raw + 1 ||
        !harness_path(p->h, "seed-token", path, pathlen))
        return -1;
    if (getentropy(raw, sizeof raw) != 0) {
        fprintf(stderr, "%s: getentropy: %s\n", p->program, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || fprintf(f, "%s\n", token) < 0 || fclose(f) != 0) {
        fprintf(stderr, "%s: write %s: %s\n", p->program, path,
                strerror(errno));
        if (!f && fd >= 0)
            close(fd);
        return -1;
    }
    return 0;
}

int example_client_new(const char *program, const char *tm, int timeout_ms,
                       trellis_client_t **out)
{
    char err[256];
    if (trellis_client_new(tm, timeout_ms, out, err, sizeof err) == TRELLIS_OK)
        return 0;
    fprintf(stderr, "%s: client for %s: %s\n", program, tm, err);
    return -1;
}

int example_call_text(const char *addr, const char *method, const char *payload,
                      char **text, char *err, size_t errlen)
{
    uint8_t *reply = NULL;
    size_t len = 0;
    if (trellis_call_unary(addr, method, payload, strlen(payload), NULL, NULL,
                           0, 5000, &reply, &len, err, errlen) != TRELLIS_OK) {
        free(reply);
        return -1;
    }
    if (text && (*text = malloc(len + 1))) {
        memcpy(*text, reply ? (const char *)reply : "", len);
        (*text)[len] = '\0';
    }
    free(reply);
    return text && !*text ? -1 : 0;
}

/* ---- MariaDB --------------------------------------------------------- */

MYSQL *example_connect_mariadb(const char *program, const char *socket)
{
    MYSQL *conn = mysql_init(NULL);
    if (conn &&
        mysql_real_connect(conn, NULL, "root", NULL, NULL, 0, socket, 0))
        return conn;
    fprintf(stderr, "%s: connect to MariaDB: %s\n", program,
            conn ? mysql_error(conn) : "out of memory");
    if (conn)
        mysql_close(conn);
    return NULL;
}

int example_sql_number(MYSQL *conn, long long *out, example_check_t *ck,
                       const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    MYSQL_RES *r = NULL;
    if (!example_expect(ck,
                        mysql_query(conn, sql) == 0 &&
                            (r = mysql_store_result(conn)) != NULL,
                        "%s: %s", sql, mysql_error(conn)))
        return -1;
    MYSQL_ROW row = mysql_fetch_row(r);
    *out = row && row[0] ? strtoll(row[0], NULL, 10) : 0;
    mysql_free_result(r);
    return 0;
}

/* ---- what the services printed --------------------------------------- */

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append the lines of log that mention "gid=<gid> " to lines[*n]. */
static void collect_said(const char *log, const char *gid, char **lines,
                         size_t *n)
{
    char want[96], buf[1024];
    FILE *f = *log ? fopen(log, "r") : NULL;
    if (!f)
        return;
    snprintf(want, sizeof want, "gid=%s ", gid);
    while (*n < EXAMPLE_MAX_SAID && fgets(buf, sizeof buf, f))
        if (strstr(buf, want) && (lines[*n] = strdup(buf)))
            (*n)++;
    fclose(f);
}

/* Every log's lines about gid, into lines; how many. */
static size_t collect_all(const char (*logs)[PATH_MAX], size_t n_logs,
                          const char *gid, char **lines)
{
    size_t n = 0;
    for (size_t i = 0; i < n_logs; i++)
        collect_said(logs[i], gid, lines, &n);
    return n;
}

void example_print_said(const char (*logs)[PATH_MAX], size_t n_logs,
                        const char *gid, const char *who)
{
    char *lines[EXAMPLE_MAX_SAID];
    size_t n = collect_all(logs, n_logs, gid, lines);
    if (n == 0)
        return;
    qsort(lines, n, sizeof lines[0], cmp_lines);
    printf("   the %s said, in time order:\n", who);
    for (size_t i = 0; i < n; i++) {
        printf("     %s", lines[i]);
        free(lines[i]);
    }
}

int example_count_said(const char (*logs)[PATH_MAX], size_t n_logs,
                       const char *gid, const char *needle)
{
    char *lines[EXAMPLE_MAX_SAID];
    size_t n = collect_all(logs, n_logs, gid, lines);
    int c = 0;
    for (size_t i = 0; i < n; i++) {
        c += strstr(lines[i], needle) != NULL;
        free(lines[i]);
    }
    return c;
}

/* ---- the TM's view --------------------------------------------------- */

int example_is_final(trellis_trans_status_t st)
{
    return st == TRELLIS_TRANS_SUCCEEDED || st == TRELLIS_TRANS_FAILED;
}

trellis_trans_info_t *example_query_final(trellis_client_t *c, const char *gid,
                                          int64_t timeout_ms)
{
    int64_t deadline = harness_mono_ms() + timeout_ms;
    char err[256];
    for (;;) {
        trellis_trans_info_t *info = NULL;
        trellis_rc_t rc = trellis_query(c, gid, &info, err, sizeof err);
        if (rc == TRELLIS_OK &&
            (example_is_final(info->status) || harness_mono_ms() >= deadline))
            return info;
        trellis_trans_info_free(info);
        if (harness_mono_ms() >= deadline) {
            printf("   query %s: %s\n", gid, rc ? err : "not final");
            return NULL;
        }
        harness_sleep_ms(20);
    }
}

const trellis_op_info_t *example_find_op(const trellis_branch_info_t *b,
                                         trellis_op_t op)
{
    for (size_t i = 0; i < b->n_ops; i++)
        if (b->ops[i].op == op)
            return &b->ops[i];
    return NULL;
}

void example_print_tm_status(const trellis_trans_info_t *info)
{
    printf("   TM: gid %s is %s%s%s\n", info->gid,
           trellis_trans_status_name(info->status),
           info->reason && *info->reason ? ", reason: " : "",
           info->reason ? info->reason : "");
}

void example_print_ops(const trellis_branch_info_t *b)
{
    for (size_t k = 0; k < b->n_ops; k++) {
        const trellis_op_info_t *o = &b->ops[k];
        printf("%s %s %s (%u attempt%s)", k ? ";" : "", trellis_op_name(o->op),
               trellis_op_status_name(o->status), o->attempts,
               o->attempts == 1 ? "" : "s");
    }
    printf("\n");
}

void example_print_branches(const trellis_trans_info_t *info,
                            const char *const *names, size_t n)
{
    example_print_tm_status(info);
    for (size_t i = 0; i < info->n_branches; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        printf("   TM: branch %s (%s, %s):", b->branch_id,
               trellis_mode_name(b->mode), i < n ? names[i] : "?");
        example_print_ops(b);
    }
}

trellis_trans_info_t *example_expect_final(const example_view_t *v,
                                           const char *gid,
                                           trellis_trans_status_t want,
                                           int64_t timeout_ms,
                                           example_check_t *ck)
{
    trellis_trans_info_t *info =
        example_query_final(v->client, gid, timeout_ms);
    if (info)
        example_print_branches(info, v->branch_names, v->n_branch_names);
    example_print_said(v->logs, v->n_logs, gid, "services");
    example_expect(ck, info && info->status == want, "%s should be %s", gid,
                   trellis_trans_status_name(want));
    return info;
}
