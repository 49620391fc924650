/*
 * bank-service: the participant of the bank-transfer TCC example. One
 * binary plays any bank, chosen by --name; the example runs it twice (bank-a
 * and bank-b), as separate processes, each with its own database on one
 * MariaDB:
 *
 *   bank-service --name NAME --database DB
 *                (--mysql-socket PATH | --mysql-host H [--mysql-port P])
 *                [--mysql-user U] [--listen ADDR] [--port-file FILE]
 *                [--threads N] [--chaos SEED:RATE] [--quiet]
 *
 * It owns the accounts of its bank, in MariaDB: at start it creates DB,
 *
 *   accounts(id VARCHAR(64) PRIMARY KEY, balance BIGINT, trading_balance
 *            BIGINT)
 *
 * and the branch barrier table (barrier.h) if they are missing. Money is
 * moved with frozen balances (DESIGN.md, "TCC with frozen balances"), but
 * only money going out is frozen:
 *
 *                  a debit (amount < 0)          a credit (amount >= 0)
 *   TransTry       trading_balance += amount,    nothing; only checks the
 *                  only while balance +          account exists
 *                  trading_balance + amount >= 0
 *   TransConfirm   balance += amount,            balance += amount
 *                  trading_balance -= amount
 *   TransCancel    trading_balance -= amount     nothing
 *
 * A refused try is a business failure: "insufficient funds" or "no such
 * account". Why credits freeze nothing: DESIGN's rule applied to a credit
 * too puts the pending money in trading_balance, where the check counts it
 * as funds, so a debit could spend money that may still be cancelled
 * (balance 0; try +50; try -50 passes; cancel the +50; confirm the -50:
 * balance -50). Here trading_balance only ever holds pending debits, so
 *
 *   trading_balance <= 0  and  balance >= balance + trading_balance >= 0
 *
 * always hold: a debit's check sees confirmed money less what is already
 * promised away, never money still coming in, and a user never sees money
 * that may still be taken back. The price: money on its way in can only
 * be spent once its confirm ran.
 *
 * Each runs behind the barrier (barrier_run, in the same local transaction
 * as its SQL, if any) and answers with barrier_fill_reply, so a duplicate does
 * nothing, a cancel before its try undoes nothing and makes the late try a
 * no-op. The branch comes from the dtm-* metadata; the op from the method
 * (a dtm-op that names another op is refused). Payload, one line:
 *
 *   account=ID amount=N      ID: 1..64 of [A-Za-z0-9_.-]; N: a signed
 *                            64-bit decimal (negative takes money out)
 *
 * Two methods outside any transaction, for setup and checks:
 *
 *   /bank.v1.Bank/Seed      "account=ID balance=N": create the account or
 *                           set its balance (trading_balance left alone)
 *   /bank.v1.Bank/Accounts  every account, one line each, ordered by id:
 *                           "account=ID balance=N trading_balance=M\n"
 *
 * --chaos SEED:RATE (RATE in [0,1]) injects faults into the three Trans
 * methods: the n-th such call (in arrival order) draws from a hash of
 * (SEED, n); with probability RATE it gets one of, in equal shares,
 *   after   run normally, then answer UNAVAILABLE (the TM retries: the op is
 *           delivered again, the barrier must make it a no-op);
 *   before  answer UNAVAILABLE without doing anything;
 *   sleep   sleep 5..50 ms, then run normally.
 * The sequence of faults is fixed by SEED; which call gets which depends on
 * arrival order.
 *
 * Threads: handlers run on the SDK's worker threads (--threads, 4); each
 * worker has its own MariaDB connection, opened on its first call and again
 * after the connection broke. Every Trans call prints one line to stdout
 * (unless --quiet), stamped with the time of day to the microsecond so the
 * lines of both banks merge into the order the calls happened.
 */
#include <errmsg.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <mysql.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "trellis_participant.h"

#define ID_MAX 64
#define SQL_MAX 512
#define MAX_CONNS 256

/* ---- command line ---------------------------------------------------- */

typedef struct {
    const char *name, *listen, *port_file;
    const char *socket, *host, *user, *database;
    unsigned port;
    int threads, quiet;
    int chaos; /* --chaos given */
    uint64_t chaos_seed;
    double chaos_rate;
} args_t;

static args_t A;

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
    for (int i = 0; i < MAX_CONNS; i++)
        if (!POOL.conns[i]) {
            POOL.conns[i] = m;
            m = NULL;
            break;
        }
    pthread_mutex_unlock(&POOL.mu);
    if (m) /* more connections than slots: nobody will close it later */
        fprintf(stderr, "bank-service %s: connection pool full\n", A.name);
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

/* A new connection to A.database (NULL: none selected), READ COMMITTED
 * (no gap locks between the barrier inserts of concurrent ops) and
 * CLIENT_FOUND_ROWS (affected rows = matched rows). NULL with err. */
static MYSQL *db_connect(const char *database, char *err, size_t errlen)
{
    MYSQL *m = mysql_init(NULL);
    unsigned timeout = 5;
    if (!m) {
        snprintf(err, errlen, "mysql_init: out of memory");
        return NULL;
    }
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (!mysql_real_connect(m, A.host, A.user, NULL, database, A.port, A.socket,
                            CLIENT_FOUND_ROWS) ||
        mysql_query(m, "SET SESSION TRANSACTION ISOLATION LEVEL "
                       "READ COMMITTED") != 0) {
        snprintf(err, errlen, "connect to MariaDB: %s", mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

/* This worker's connection, opened on first use. NULL with err. */
static MYSQL *conn_get(char *err, size_t errlen)
{
    if (!worker_conn && (worker_conn = db_connect(A.database, err, errlen)))
        pool_put(worker_conn);
    return worker_conn;
}

/* After an error: if the connection itself broke (a client-side error),
 * close it so the next call opens a new one. */
static void conn_check(void)
{
    unsigned e = worker_conn ? mysql_errno(worker_conn) : 0;
    if (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR) {
        pool_drop(worker_conn);
        worker_conn = NULL;
    }
}

/* ---- payloads -------------------------------------------------------- */

typedef struct {
    char account[ID_MAX + 1];
    long long amount;
} entry_t;

static int valid_id(const char *s, size_t n)
{
    if (n == 0 || n > ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_.-",
                    s[i]) ||
            s[i] == '\0')
            return 0;
    return 1;
}

/* Parse "account=ID <num_key>=N" (fields in any order, nothing else) into
 * e. Returns 0, or -1 with err. The id charset keeps it safe to quote the
 * id into SQL as it is. */
static int parse_entry(const uint8_t *p, size_t len, const char *num_key,
                       entry_t *e, char *err, size_t errlen)
{
    char text[256], *save = NULL;
    int have_acct = 0, have_num = 0;
    size_t klen = strlen(num_key);
    if (len >= sizeof text) {
        snprintf(err, errlen, "payload too long");
        return -1;
    }
    memcpy(text, p, len);
    text[len] = '\0';
    for (char *f = strtok_r(text, " \n", &save); f;
         f = strtok_r(NULL, " \n", &save)) {
        if (!strncmp(f, "account=", 8) && valid_id(f + 8, strlen(f + 8))) {
            snprintf(e->account, sizeof e->account, "%s", f + 8);
            have_acct = 1;
        } else if (!strncmp(f, num_key, klen) && f[klen] == '=') {
            char *end;
            errno = 0;
            e->amount = strtoll(f + klen + 1, &end, 10);
            have_num = !errno && end != f + klen + 1 && !*end;
            if (!have_num)
                break;
        } else {
            have_acct = 0;
            break;
        }
    }
    if (have_acct && have_num)
        return 0;
    snprintf(err, errlen,
             "bad payload: want \"account=ID %s=N\" (ID 1..64 of "
             "[A-Za-z0-9_.-], N a signed integer)",
             num_key);
    return -1;
}

/* ---- the business SQL, run by barrier_run ---------------------------- */

/* Run one statement; on error write it to msg. 0 or -1. */
static int exec(MYSQL *conn, char *msg, size_t msglen, const char *fmt, ...)
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

/* 1 if the account exists, 0 if not, -1 on error. */
static int account_exists(MYSQL *conn, const char *id, char *msg, size_t msglen)
{
    if (exec(conn, msg, msglen, "SELECT 1 FROM accounts WHERE id = '%s'", id) !=
        0)
        return -1;
    MYSQL_RES *r = mysql_store_result(conn);
    if (!r) {
        snprintf(msg, msglen, "%s", mysql_error(conn));
        return -1;
    }
    int n = (int)mysql_num_rows(r);
    mysql_free_result(r);
    return n > 0;
}

/* A debit freezes its amount while the funds (balance less the debits
 * already frozen) cover it; a credit only checks the account exists. */
static barrier_business_rc_t biz_try(MYSQL *conn, void *user, char *msg,
                                     size_t msglen)
{
    const entry_t *e = user;
    if (e->amount < 0) {
        if (exec(conn, msg, msglen,
                 "UPDATE accounts SET trading_balance = trading_balance + "
                 "%lld WHERE id = '%s' AND balance + trading_balance + %lld "
                 ">= 0",
                 e->amount, e->account, e->amount) != 0)
            return BARRIER_BUSINESS_ERROR;
        if (mysql_affected_rows(conn) == 1)
            return BARRIER_BUSINESS_OK;
    }
    int exists = account_exists(conn, e->account, msg, msglen);
    if (exists < 0)
        return BARRIER_BUSINESS_ERROR;
    if (exists && e->amount >= 0)
        return BARRIER_BUSINESS_OK;
    snprintf(msg, msglen, "%s",
             exists ? "insufficient funds" : "no such account");
    return BARRIER_BUSINESS_FAIL;
}

/* Confirm and cancel must not fail for business reasons: a missing account
 * here is a bug (the try found it), reported as an error the TM retries. */
static barrier_business_rc_t update_one(MYSQL *conn, const entry_t *e,
                                        char *msg, size_t msglen,
                                        const char *set)
{
    if (exec(conn, msg, msglen, "UPDATE accounts SET %s WHERE id = '%s'", set,
             e->account) != 0)
        return BARRIER_BUSINESS_ERROR;
    if (mysql_affected_rows(conn) == 1)
        return BARRIER_BUSINESS_OK;
    snprintf(msg, msglen, "no such account %s", e->account);
    return BARRIER_BUSINESS_ERROR;
}

/* A debit moves its frozen amount out; a credit adds its amount, which
 * only now becomes spendable. */
static barrier_business_rc_t biz_confirm(MYSQL *conn, void *user, char *msg,
                                         size_t msglen)
{
    const entry_t *e = user;
    char set[128];
    if (e->amount < 0)
        snprintf(set, sizeof set,
                 "balance = balance + %lld, trading_balance = "
                 "trading_balance - %lld",
                 e->amount, e->amount);
    else
        snprintf(set, sizeof set, "balance = balance + %lld", e->amount);
    return update_one(conn, e, msg, msglen, set);
}

/* A debit releases what its try froze; a credit's try froze nothing, so
 * there is nothing to undo (the barrier still records the cancel, and
 * blocks a try that comes after it). */
static barrier_business_rc_t biz_cancel(MYSQL *conn, void *user, char *msg,
                                        size_t msglen)
{
    const entry_t *e = user;
    char set[96];
    if (e->amount >= 0)
        return BARRIER_BUSINESS_OK;
    snprintf(set, sizeof set, "trading_balance = trading_balance - %lld",
             e->amount);
    return update_one(conn, e, msg, msglen, set);
}

/* ---- chaos ----------------------------------------------------------- */

typedef enum { CHAOS_NONE, CHAOS_AFTER, CHAOS_BEFORE, CHAOS_SLEEP } chaos_t;

static atomic_uint_fast64_t chaos_calls;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The fault for the next Trans call, and how long to sleep for CHAOS_SLEEP. */
static chaos_t chaos_draw(int *sleep_ms)
{
    if (!A.chaos)
        return CHAOS_NONE;
    uint64_t n = atomic_fetch_add(&chaos_calls, 1);
    uint64_t h = splitmix64(A.chaos_seed ^ splitmix64(n));
    double u = (double)(h >> 11) / 9007199254740992.0; /* [0,1) */
    if (u >= A.chaos_rate)
        return CHAOS_NONE;
    uint64_t k = splitmix64(h);
    *sleep_ms = 5 + (int)(k % 46);
    return (chaos_t)(CHAOS_AFTER + (k >> 8) % 3);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- Trans handlers -------------------------------------------------- */

typedef struct {
    const char *method; /* last part of the method name */
    const char *op;     /* the barrier op */
    barrier_business_fn fn;
} trans_op_t;

static const trans_op_t TRANS_OPS[] = {
    {"TransTry", "try", biz_try},
    {"TransConfirm", "confirm", biz_confirm},
    {"TransCancel", "cancel", biz_cancel},
};

static const char *outcome_name(barrier_outcome_t o)
{
    switch (o) {
    case BARRIER_DONE:
        return "done";
    case BARRIER_SKIPPED_DUPLICATE:
        return "duplicate: nothing to do";
    case BARRIER_SKIPPED_EMPTY:
        return "empty: its try never ran";
    case BARRIER_SKIPPED_HANGING:
        return "hanging: cancelled before it came";
    case BARRIER_BUSINESS_FAILURE:
        return "refused";
    case BARRIER_ERROR:
        return "error";
    }
    return "?";
}

static void say(const trellis_branch_ctx_t *ctx, const trans_op_t *op,
                const entry_t *e, const char *fmt, ...)
{
    if (A.quiet)
        return;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    struct timespec ts;
    struct tm tm;
    char hms[16];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    printf("%s.%06ld %s: %s gid=%s branch=%s account=%s amount=%lld -> %s\n",
           hms, ts.tv_nsec / 1000, A.name, op->method, ctx->gid, ctx->branch_id,
           e ? e->account : "-", e ? e->amount : 0, what);
}

/* Fill reply as an error (UNAVAILABLE: the TM retries) or a failure. */
static void answer(trellis_reply_t *reply, trellis_reply_code_t code,
                   const char *fmt, ...)
{
    va_list ap;
    reply->code = code;
    va_start(ap, fmt);
    vsnprintf(reply->message, sizeof reply->message, fmt, ap);
    va_end(ap);
}

/* The branch this call is about, or -1 with reply filled. */
static int branch_of(const trellis_branch_ctx_t *ctx, const trans_op_t *op,
                     barrier_branch_t *b, trellis_reply_t *reply)
{
    *b = barrier_branch_from_ctx(ctx);
    if (!*ctx->gid || !*ctx->branch_id) {
        answer(reply, TRELLIS_REPLY_FAILURE,
               "missing dtm-gid / dtm-branch_id metadata");
        return -1;
    }
    if (*ctx->op && strcmp(ctx->op, op->op) != 0) {
        answer(reply, TRELLIS_REPLY_FAILURE, "dtm-op %s sent to %s", ctx->op,
               op->method);
        return -1;
    }
    b->op = op->op;
    if (!*ctx->trans_type)
        b->trans_type = "tcc";
    return 0;
}

static void run_op(const trellis_branch_ctx_t *ctx, const trans_op_t *op,
                   entry_t *e, trellis_reply_t *reply)
{
    char msg[256] = "";
    barrier_branch_t b;
    if (branch_of(ctx, op, &b, reply) != 0) {
        say(ctx, op, e, "rejected: %s", reply->message);
        return;
    }
    MYSQL *conn = conn_get(msg, sizeof msg);
    if (!conn) {
        answer(reply, TRELLIS_REPLY_ERROR, "%s", msg);
        say(ctx, op, e, "error: %s", msg);
        return;
    }
    int nap = 0;
    chaos_t chaos = chaos_draw(&nap);
    if (chaos == CHAOS_BEFORE) {
        answer(reply, TRELLIS_REPLY_ERROR, "chaos: unavailable (did nothing)");
        say(ctx, op, e, "chaos: UNAVAILABLE before doing anything");
        return;
    }
    if (chaos == CHAOS_SLEEP)
        sleep_ms(nap);
    barrier_outcome_t out = barrier_run(conn, BARRIER_DEFAULT_TABLE, &b, op->fn,
                                        e, msg, sizeof msg);
    if (out == BARRIER_ERROR)
        conn_check();
    barrier_fill_reply(out, msg, reply);
    if (chaos == CHAOS_AFTER && reply->code == TRELLIS_REPLY_SUCCESS) {
        answer(reply, TRELLIS_REPLY_ERROR, "chaos: unavailable (after %s)",
               outcome_name(out));
        say(ctx, op, e, "%s, then chaos: UNAVAILABLE", outcome_name(out));
        return;
    }
    int show_msg = *msg && (out == BARRIER_DONE || out == BARRIER_ERROR ||
                            out == BARRIER_BUSINESS_FAILURE);
    say(ctx, op, e, "%s%s%s%s", outcome_name(out), show_msg ? ": " : "",
        show_msg ? msg : "",
        chaos == CHAOS_SLEEP ? " (chaos: slept first)" : "");
}

static void handle_trans(const trellis_branch_ctx_t *ctx,
                         const uint8_t *payload, size_t payload_len,
                         trellis_reply_t *reply, void *user)
{
    const trans_op_t *op = user;
    entry_t e;
    char err[200];
    if (parse_entry(payload, payload_len, "amount", &e, err, sizeof err) != 0) {
        answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        say(ctx, op, NULL, "rejected: %s", err);
        return;
    }
    run_op(ctx, op, &e, reply);
}

/* ---- Seed and Accounts ----------------------------------------------- */

static void handle_seed(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                        size_t payload_len, trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)user;
    entry_t e;
    char err[256];
    MYSQL *conn;
    if (parse_entry(payload, payload_len, "balance", &e, err, sizeof err) !=
        0) {
        answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        return;
    }
    if (!(conn = conn_get(err, sizeof err)) ||
        exec(conn, err, sizeof err,
             "INSERT INTO accounts (id, balance, trading_balance) VALUES "
             "('%s', %lld, 0) ON DUPLICATE KEY UPDATE balance = %lld",
             e.account, e.amount, e.amount) != 0) {
        conn_check();
        answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        return;
    }
    if (!A.quiet)
        printf("%s: Seed account=%s balance=%lld\n", A.name, e.account,
               e.amount);
}

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

static void handle_accounts(const trellis_branch_ctx_t *ctx,
                            const uint8_t *payload, size_t payload_len,
                            trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)payload, (void)payload_len, (void)user;
    char err[256], line[200];
    MYSQL *conn = conn_get(err, sizeof err);
    MYSQL_RES *r = NULL;
    if (!conn ||
        exec(conn, err, sizeof err,
             "SELECT id, balance, trading_balance FROM accounts "
             "ORDER BY id") != 0 ||
        !(r = mysql_store_result(conn))) {
        if (conn && !r && !*err)
            snprintf(err, sizeof err, "%s", mysql_error(conn));
        conn_check();
        answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        return;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r))) {
        snprintf(line, sizeof line,
                 "account=%s balance=%s trading_balance=%s\n", row[0], row[1],
                 row[2]);
        if (buf_add(&buf, &len, &cap, line) != 0)
            break;
    }
    mysql_free_result(r);
    reply->body = (uint8_t *)buf;
    reply->body_len = len;
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

/* Create the database, accounts and the barrier table if missing. */
static int create_schema(char *err, size_t errlen)
{
    MYSQL *m = db_connect(NULL, err, errlen);
    if (!m)
        return -1;
    int rc = -1;
    if (exec(m, err, errlen, "CREATE DATABASE IF NOT EXISTS `%s`",
             A.database) == 0 &&
        mysql_select_db(m, A.database) == 0 &&
        exec(m, err, errlen,
             "CREATE TABLE IF NOT EXISTS accounts ("
             "id VARCHAR(64) NOT NULL PRIMARY KEY, "
             "balance BIGINT NOT NULL DEFAULT 0, "
             "trading_balance BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB") == 0 &&
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
            "usage: bank-service --name NAME --database DB\n"
            "         (--mysql-socket PATH | --mysql-host H [--mysql-port P])\n"
            "         [--mysql-user U] [--listen ADDR] [--port-file FILE]\n"
            "         [--threads N] [--chaos SEED:RATE] [--quiet]\n");
    return 2;
}

static int parse_chaos(const char *v)
{
    char *end;
    errno = 0;
    A.chaos_seed = strtoull(v, &end, 10);
    if (errno || end == v || *end != ':')
        return -1;
    const char *r = end + 1;
    A.chaos_rate = strtod(r, &end);
    A.chaos = 1;
    return end != r && !*end && A.chaos_rate >= 0 && A.chaos_rate <= 1 ? 0 : -1;
}

/* One "--flag value" pair. 0 or -1. */
static int set_arg(const char *k, const char *v)
{
    const struct {
        const char *flag;
        const char **dst;
    } str[] = {
        {"--name", &A.name},           {"--listen", &A.listen},
        {"--port-file", &A.port_file}, {"--mysql-socket", &A.socket},
        {"--mysql-host", &A.host},     {"--mysql-user", &A.user},
        {"--database", &A.database},
    };
    for (size_t i = 0; i < sizeof str / sizeof str[0]; i++)
        if (!strcmp(k, str[i].flag)) {
            *str[i].dst = v;
            return 0;
        }
    if (!strcmp(k, "--mysql-port"))
        return (A.port = (unsigned)atoi(v)) > 0 ? 0 : -1;
    if (!strcmp(k, "--threads"))
        return (A.threads = atoi(v)) > 0 ? 0 : -1;
    if (!strcmp(k, "--chaos"))
        return parse_chaos(v);
    return -1;
}

static int parse_args(int argc, char **argv)
{
    A = (args_t){.listen = "127.0.0.1:0", .user = "root", .threads = 4};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet"))
            A.quiet = 1;
        else if (i + 1 >= argc || set_arg(argv[i], argv[i + 1]) != 0)
            return -1;
        else
            i++;
    }
    if (!A.name || !A.database || !valid_db_name(A.database))
        return -1;
    if (!A.socket && !A.host)
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
    for (size_t i = 0; i < sizeof TRANS_OPS / sizeof TRANS_OPS[0]; i++) {
        char method[64];
        snprintf(method, sizeof method, "/bank.v1.Bank/%s",
                 TRANS_OPS[i].method);
        if (trellis_participant_handle(p, method, handle_trans,
                                       (void *)&TRANS_OPS[i], err,
                                       errlen) != TRELLIS_OK)
            return -1;
    }
    if (trellis_participant_handle(p, "/bank.v1.Bank/Seed", handle_seed, NULL,
                                   err, errlen) != TRELLIS_OK ||
        trellis_participant_handle(p, "/bank.v1.Bank/Accounts", handle_accounts,
                                   NULL, err, errlen) != TRELLIS_OK)
        return -1;
    return 0;
}

static int serve(trellis_participant_t *p)
{
    char err[256];
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
    printf("bank-service ready name=%s database=%s port=%d chaos=%s\n", A.name,
           A.database, port, A.chaos ? "on" : "off");
    return 0;
fail:
    fprintf(stderr, "bank-service %s: %s\n", A.name, err);
    return -1;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (mysql_library_init(0, NULL, NULL) != 0) {
        fprintf(stderr, "bank-service %s: mysql_library_init failed\n", A.name);
        return 1;
    }
    trellis_participant_t *p = NULL;
    char err[256];
    int rc = -1;
    if (trellis_participant_new(A.threads, &p, err, sizeof err) != TRELLIS_OK)
        fprintf(stderr, "bank-service %s: %s\n", A.name, err);
    else if ((rc = serve(p)) == 0) {
        int sig;
        sigwait(&stop, &sig);
        printf("bank-service %s stopping (signal %d)\n", A.name, sig);
    }
    trellis_participant_free(p);
    pool_close_all();
    mysql_library_end();
    return rc == 0 ? 0 : 1;
}
