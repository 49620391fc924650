/*
 * example_service.c — the participant scaffold of the MariaDB examples
 * (see example_service.h): command line, one MariaDB connection per worker
 * thread, the schema, the port file, serving until a signal.
 *
 * Invariant: a worker's connection is in POOL from when it is opened until
 * it is dropped after breaking, so main can close every one at exit (the
 * workers have been joined by then).
 */
#include "example_service.h"

#include <errmsg.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trellis_portfile.h"

#define SQL_MAX 1024
#define MAX_CONNS 256

static example_service_opts_t A;
static const example_service_def_t *DEF;
static char LOG_NAME[128];

const example_service_opts_t *example_service_opts(void)
{
    return &A;
}

void example_service_set_log_name(const char *name)
{
    snprintf(LOG_NAME, sizeof LOG_NAME, "%s", name);
}

const char *example_service_log_name(void)
{
    return LOG_NAME;
}

/* ---- the worker connections ------------------------------------------ */

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
        fprintf(stderr, "%s: connection pool full\n", LOG_NAME);
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

/* A new connection to database (NULL: none selected); see the header for
 * its settings. NULL with err. */
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

MYSQL *example_service_conn(char *err, size_t errlen)
{
    if (!worker_conn && (worker_conn = db_connect(A.database, err, errlen)))
        pool_put(worker_conn);
    return worker_conn;
}

void example_service_conn_check(void)
{
    unsigned e = worker_conn ? mysql_errno(worker_conn) : 0;
    if (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR) {
        pool_drop(worker_conn);
        worker_conn = NULL;
    }
}

void example_service_conn_close(void)
{
    if (worker_conn)
        pool_drop(worker_conn);
    worker_conn = NULL;
}

int example_service_exec(MYSQL *conn, char *msg, size_t msglen, const char *fmt,
                         ...)
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

/* ---- small helpers for handlers --------------------------------------- */

void example_service_answer(trellis_reply_t *reply, trellis_reply_code_t code,
                            const char *fmt, ...)
{
    va_list ap;
    reply->code = code;
    va_start(ap, fmt);
    vsnprintf(reply->message, sizeof reply->message, fmt, ap);
    va_end(ap);
}

int example_service_valid_id(const char *s, size_t n)
{
    if (n == 0 || n > EXAMPLE_SERVICE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' ||
            !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_.-",
                    s[i]))
            return 0;
    return 1;
}

int example_service_branch(const trellis_branch_ctx_t *ctx, const char *method,
                           const char *op, const char *trans_type,
                           trellis_barrier_branch_t *b, trellis_reply_t *reply)
{
    *b = trellis_barrier_branch_from_ctx(ctx);
    if (!*ctx->gid || !*ctx->branch_id) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE,
                               "missing dtm-gid / dtm-branch_id metadata");
        return -1;
    }
    if (*ctx->op && strcmp(ctx->op, op) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE,
                               "dtm-op %s sent to %s", ctx->op, method);
        return -1;
    }
    b->op = op;
    if (!*ctx->trans_type)
        b->trans_type = trans_type;
    return 0;
}

int example_service_buf_add(char **buf, size_t *len, size_t *cap, const char *s)
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

void example_service_stamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    char hms[16];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%06ld", hms, ts.tv_nsec / 1000);
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
    if (example_service_exec(m, err, errlen,
                             "CREATE DATABASE IF NOT EXISTS `%s`",
                             A.database) == 0 &&
        mysql_select_db(m, A.database) == 0 &&
        example_service_exec(m, err, errlen, "%s", DEF->table_ddl) == 0 &&
        trellis_barrier_create_table(m, TRELLIS_BARRIER_DEFAULT_TABLE, err,
                                     errlen) == 0)
        rc = 0;
    else if (!*err)
        snprintf(err, errlen, "%s", mysql_error(m));
    mysql_close(m);
    return rc;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: %s\n"
            "         (--mysql-socket PATH | --mysql-host H [--mysql-port P])\n"
            "         [--mysql-user U] [--listen ADDR] [--port-file FILE]\n"
            "         %s\n",
            DEF->usage_head, DEF->usage_tail);
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
        return (A.threads = atoi(v)) > 0 &&
                       (!DEF->max_threads || A.threads <= DEF->max_threads)
                   ? 0
                   : -1;
    return DEF->set_flag ? DEF->set_flag(k, v) : -1;
}

static int parse_args(int argc, char **argv)
{
    A = (example_service_opts_t){.listen = "127.0.0.1:0",
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
    if (!A.database || !valid_db_name(A.database) || (!A.socket && !A.host))
        return -1;
    if (DEF->check_flags && DEF->check_flags() != 0)
        return -1;
    if (A.host && !A.port)
        A.port = 3306;
    return 0;
}

static int serve(trellis_participant_t *p)
{
    char err[256] = "";
    int port = 0;
    if (create_schema(err, sizeof err) != 0 ||
        DEF->add_handlers(p, err, sizeof err) != 0 ||
        trellis_participant_start(p, A.listen, &port, err, sizeof err) !=
            TRELLIS_OK)
        goto fail;
    if (A.port_file &&
        trellis_portfile_write(A.port_file, port, err, sizeof err) != 0)
        goto fail;
    DEF->ready(port);
    return 0;
fail:
    fprintf(stderr, "%s: %s\n", LOG_NAME, err);
    return -1;
}

/* Block SIGINT and SIGTERM in every thread (the workers inherit the mask)
 * so main can sigwait for them. */
static void block_stop_signals(sigset_t *stop)
{
    sigemptyset(stop);
    sigaddset(stop, SIGINT);
    sigaddset(stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, stop, NULL);
}

int example_service_main(int argc, char **argv,
                         const example_service_def_t *def)
{
    DEF = def;
    example_service_set_log_name(def->program);
    if (parse_args(argc, argv) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t stop;
    block_stop_signals(&stop);
    if (mysql_library_init(0, NULL, NULL) != 0) {
        fprintf(stderr, "%s: mysql_library_init failed\n", LOG_NAME);
        return 1;
    }
    trellis_participant_t *p = NULL;
    char err[256];
    int rc = -1;
    if (trellis_participant_new(A.threads, &p, err, sizeof err) != TRELLIS_OK)
        fprintf(stderr, "%s: %s\n", LOG_NAME, err);
    else if ((rc = serve(p)) == 0) {
        int sig;
        sigwait(&stop, &sig);
        printf("%s stopping (signal %d)\n", LOG_NAME, sig);
        if (DEF->stopping)
            DEF->stopping();
    }
    trellis_participant_free(p);
    pool_close_all();
    mysql_library_end();
    return rc == 0 ? 0 : 1;
}
