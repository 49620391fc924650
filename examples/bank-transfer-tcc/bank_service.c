/*
 * bank-service: the participant of the bank-transfer TCC example. One
 * binary plays any bank, chosen by --name; the example runs it twice (bank-a
 * and bank-b), as separate processes, each with its own database on one
 * MariaDB:
 *
 *   bank-service --name NAME --database DB
 *                (--mysql-socket PATH | --mysql-host H [--mysql-port P])
 *                [--mysql-user U] [--listen ADDR] [--port-file FILE]
 *                [--threads N] [--chaos SEED:RATE]
 *                [--seed-token-file FILE] [--quiet]
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
 * Each runs behind the barrier (trellis_barrier_run, in the same local
 * transaction as its SQL, if any) and answers with trellis_barrier_fill_reply,
 * so a duplicate does nothing, a cancel before its try undoes nothing and makes
 * the late try a no-op. The branch comes from the dtm-* metadata; the op from
 * the method (a dtm-op that names another op is refused). Payload, one line:
 *
 *   account=ID amount=N      ID: 1..64 of [A-Za-z0-9_.-]; N: a signed
 *                            decimal, |N| <= BANK_AMOUNT_MAX (10^12;
 *                            negative takes money out)
 *
 * Bounds: a try with an amount past BANK_AMOUNT_MAX is refused (a
 * business failure naming the field; its cancel then does nothing, as
 * nothing was frozen), and so is a credit's try that would take the balance
 * past BANK_BALANCE_MAX (10^15), so a confirm can never overflow BIGINT
 * (with both bounds it would take some 9 million credits pending at once
 * on one account; a confirm that overflowed would be retried for ever).
 *
 * Two methods outside any transaction, for setup and checks:
 *
 *   /bank.v1.Bank/Seed      "account=ID balance=N token=T": create the
 *                           account or set its balance, 0..BANK_BALANCE_MAX
 *                           (trading_balance left alone); refused while
 *                           the account has money frozen (trading_balance
 *                           != 0: a debit in flight would then confirm
 *                           against a balance that no longer covers it).
 *                           Served only with --seed-token-file, whose
 *                           first line (16..64 of [A-Za-z0-9_.-]) T must
 *                           match: whoever merely reaches the port cannot
 *                           set balances. Without the flag, Seed is not
 *                           served at all (UNIMPLEMENTED).
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
 * after the connection broke (example_service.h, which also owns the flags
 * the MariaDB services share, the schema step and serving). Every Trans call
 * prints one line to stdout (unless --quiet), stamped with the time of day to
 * the microsecond so the lines of both banks merge into the order the calls
 * happened.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <mysql.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trellis/barrier.h"
#include "example_service.h"
#include "trellis/trellis_participant.h"

#define ID_MAX EXAMPLE_SERVICE_ID_MAX
#define BANK_AMOUNT_MAX 1000000000000LL     /* 10^12, either way */
#define BANK_BALANCE_MAX 1000000000000000LL /* 10^15 */
#define TOKEN_MIN 16

/* ---- command line: the bank's own flags ------------------------------ */

/* The rest of the command line is example_service.h's. */
static struct {
    const char *name;
    int chaos; /* --chaos given */
    uint64_t chaos_seed;
    double chaos_rate;
    const char *seed_token_file; /* --seed-token-file; NULL: no Seed */
    char seed_token[ID_MAX + 1]; /* its first line */
} A;

/* ---- payloads -------------------------------------------------------- */

typedef struct {
    char account[ID_MAX + 1];
    long long amount;
    char token[ID_MAX + 1]; /* Seed only; "" when not given */
} entry_t;

/* 1 if v is outside [min, max], with a message naming the field. */
static int out_of_range(const char *name, long long v, long long min,
                        long long max, char *err, size_t errlen)
{
    if (v >= min && v <= max)
        return 0;
    snprintf(err, errlen, "%s %lld is out of range: it must be in [%lld, %lld]",
             name, v, min, max);
    return 1;
}

/* Parse "account=ID <num_key>=N" (fields in any order, nothing else; with
 * with_token also "token=T") into e, N in [min, max]. Returns 0, or -1
 * with err, which names the field out of range. The id charset keeps it
 * safe to quote the id into SQL as it is. */
static int parse_entry(const uint8_t *p, size_t len, const char *num_key,
                       long long min, long long max, int with_token, entry_t *e,
                       char *err, size_t errlen)
{
    char text[256], *save = NULL;
    int have_acct = 0, have_num = 0;
    e->token[0] = '\0';
    size_t klen = strlen(num_key);
    if (len >= sizeof text) {
        snprintf(err, errlen, "payload too long");
        return -1;
    }
    memcpy(text, p, len);
    text[len] = '\0';
    for (char *f = strtok_r(text, " \n", &save); f;
         f = strtok_r(NULL, " \n", &save)) {
        if (!strncmp(f, "account=", 8) &&
            example_service_valid_id(f + 8, strlen(f + 8))) {
            snprintf(e->account, sizeof e->account, "%s", f + 8);
            have_acct = 1;
        } else if (!strncmp(f, num_key, klen) && f[klen] == '=') {
            char *end;
            errno = 0;
            e->amount = strtoll(f + klen + 1, &end, 10);
            have_num = !errno && end != f + klen + 1 && !*end;
            if (!have_num)
                break;
        } else if (with_token && !strncmp(f, "token=", 6) &&
                   strlen(f + 6) <= ID_MAX) {
            snprintf(e->token, sizeof e->token, "%s", f + 6);
        } else {
            have_acct = 0;
            break;
        }
    }
    if (have_acct && have_num &&
        out_of_range(num_key, e->amount, min, max, err, errlen))
        return -1;
    if (have_acct && have_num)
        return 0;
    snprintf(err, errlen,
             "bad payload: want \"account=ID %s=N%s\" (ID 1..64 of "
             "[A-Za-z0-9_.-], N an integer in [%lld, %lld])",
             num_key, with_token ? " token=T" : "", min, max);
    return -1;
}

/* ---- the business SQL, run by trellis_barrier_run
 * ---------------------------- */

/* One integer column of account id (the first row of `sql`, a printf
 * format taking the id) into *out: 1 found, 0 no such account, -1 error
 * in msg. */
static int account_column(MYSQL *conn, const char *sql, const char *id,
                          long long *out, char *msg, size_t msglen)
{
    if (example_service_exec(conn, msg, msglen, sql, id) != 0)
        return -1;
    MYSQL_RES *r = mysql_store_result(conn);
    if (!r) {
        snprintf(msg, msglen, "%s", mysql_error(conn));
        return -1;
    }
    MYSQL_ROW row = mysql_fetch_row(r);
    int found = row && row[0];
    if (found)
        *out = strtoll(row[0], NULL, 10);
    mysql_free_result(r);
    return found;
}

/* A debit freezes its amount while the funds (balance less the debits
 * already frozen) cover it; a credit only checks the account exists. */
static trellis_barrier_business_rc_t biz_try(MYSQL *conn, void *user, char *msg,
                                             size_t msglen)
{
    const entry_t *e = user;
    if (out_of_range("amount", e->amount, -BANK_AMOUNT_MAX, BANK_AMOUNT_MAX,
                     msg, msglen))
        return TRELLIS_BARRIER_BUSINESS_FAIL;
    if (e->amount < 0) {
        if (example_service_exec(
                conn, msg, msglen,
                "UPDATE accounts SET trading_balance = trading_balance + "
                "%lld WHERE id = '%s' AND balance + trading_balance + %lld "
                ">= 0",
                e->amount, e->account, e->amount) != 0)
            return TRELLIS_BARRIER_BUSINESS_ERROR;
        if (mysql_affected_rows(conn) == 1)
            return TRELLIS_BARRIER_BUSINESS_OK;
    }
    long long balance = 0;
    int exists =
        account_column(conn, "SELECT balance FROM accounts WHERE id = '%s'",
                       e->account, &balance, msg, msglen);
    if (exists < 0)
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    if (exists && e->amount >= 0 && balance <= BANK_BALANCE_MAX - e->amount)
        return TRELLIS_BARRIER_BUSINESS_OK;
    if (exists && e->amount >= 0)
        snprintf(msg, msglen, "amount %lld would take the balance past %lld",
                 e->amount, BANK_BALANCE_MAX);
    else
        snprintf(msg, msglen, "%s",
                 exists ? "insufficient funds" : "no such account");
    return TRELLIS_BARRIER_BUSINESS_FAIL;
}

/* Confirm and cancel must not fail for business reasons: a missing account
 * here is a bug (the try found it), reported as an error the TM retries. */
static trellis_barrier_business_rc_t update_one(MYSQL *conn, const entry_t *e,
                                                char *msg, size_t msglen,
                                                const char *set)
{
    if (example_service_exec(conn, msg, msglen,
                             "UPDATE accounts SET %s WHERE id = '%s'", set,
                             e->account) != 0)
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    if (mysql_affected_rows(conn) == 1)
        return TRELLIS_BARRIER_BUSINESS_OK;
    snprintf(msg, msglen, "no such account %s", e->account);
    return TRELLIS_BARRIER_BUSINESS_ERROR;
}

/* A debit moves its frozen amount out; a credit adds its amount, which
 * only now becomes spendable. */
static trellis_barrier_business_rc_t biz_confirm(MYSQL *conn, void *user,
                                                 char *msg, size_t msglen)
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
static trellis_barrier_business_rc_t biz_cancel(MYSQL *conn, void *user,
                                                char *msg, size_t msglen)
{
    const entry_t *e = user;
    char set[96];
    if (e->amount >= 0 || e->amount < -BANK_AMOUNT_MAX)
        return TRELLIS_BARRIER_BUSINESS_OK; /* nothing frozen (a try refuses
                                               those) */
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
    trellis_barrier_business_fn fn;
} trans_op_t;

static const trans_op_t TRANS_OPS[] = {
    {"TransTry", "try", biz_try},
    {"TransConfirm", "confirm", biz_confirm},
    {"TransCancel", "cancel", biz_cancel},
};

static const char *outcome_name(trellis_barrier_outcome_t o)
{
    switch (o) {
    case TRELLIS_BARRIER_DONE:
        return "done";
    case TRELLIS_BARRIER_SKIPPED_DUPLICATE:
        return "duplicate: nothing to do";
    case TRELLIS_BARRIER_SKIPPED_EMPTY:
        return "empty: its try never ran";
    case TRELLIS_BARRIER_SKIPPED_HANGING:
        return "hanging: cancelled before it came";
    case TRELLIS_BARRIER_BUSINESS_FAILURE:
        return "refused";
    case TRELLIS_BARRIER_ERROR:
        return "error";
    }
    return "?";
}

static void say(const trellis_branch_ctx_t *ctx, const trans_op_t *op,
                const entry_t *e, const char *fmt, ...)
{
    if (example_service_opts()->quiet)
        return;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char stamp[32];
    example_service_stamp(stamp, sizeof stamp);
    printf("%s %s: %s gid=%s branch=%s account=%s amount=%lld -> %s\n", stamp,
           A.name, op->method, ctx->gid, ctx->branch_id, e ? e->account : "-",
           e ? e->amount : 0, what);
}

/* The branch this call is about, or -1 with reply filled. */
static int branch_of(const trellis_branch_ctx_t *ctx, const trans_op_t *op,
                     trellis_barrier_branch_t *b, trellis_reply_t *reply)
{
    return example_service_branch(ctx, op->method, op->op, "tcc", b, reply);
}

static void run_op(const trellis_branch_ctx_t *ctx, const trans_op_t *op,
                   entry_t *e, trellis_reply_t *reply)
{
    char msg[256] = "";
    trellis_barrier_branch_t b;
    if (branch_of(ctx, op, &b, reply) != 0) {
        say(ctx, op, e, "rejected: %s", reply->message);
        return;
    }
    MYSQL *conn = example_service_conn(msg, sizeof msg);
    if (!conn) {
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", msg);
        say(ctx, op, e, "error: %s", msg);
        return;
    }
    int nap = 0;
    chaos_t chaos = chaos_draw(&nap);
    if (chaos == CHAOS_BEFORE) {
        example_service_answer(reply, TRELLIS_REPLY_ERROR,
                               "chaos: unavailable (did nothing)");
        say(ctx, op, e, "chaos: UNAVAILABLE before doing anything");
        return;
    }
    if (chaos == CHAOS_SLEEP)
        sleep_ms(nap);
    trellis_barrier_outcome_t out = trellis_barrier_run(
        conn, TRELLIS_BARRIER_DEFAULT_TABLE, &b, op->fn, e, msg, sizeof msg);
    if (out == TRELLIS_BARRIER_ERROR)
        example_service_conn_check();
    trellis_barrier_fill_reply(out, msg, reply);
    if (chaos == CHAOS_AFTER && reply->code == TRELLIS_REPLY_SUCCESS) {
        example_service_answer(reply, TRELLIS_REPLY_ERROR,
                               "chaos: unavailable (after %s)",
                               outcome_name(out));
        say(ctx, op, e, "%s, then chaos: UNAVAILABLE", outcome_name(out));
        return;
    }
    int show_msg =
        *msg && (out == TRELLIS_BARRIER_DONE || out == TRELLIS_BARRIER_ERROR ||
                 out == TRELLIS_BARRIER_BUSINESS_FAILURE);
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
    /* Any 64-bit amount parses: the try refuses one out of range, and
     * then its cancel must still succeed (a phase-2 op never gives up). */
    if (parse_entry(payload, payload_len, "amount", LLONG_MIN, LLONG_MAX, 0, &e,
                    err, sizeof err) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        say(ctx, op, NULL, "rejected: %s", err);
        return;
    }
    run_op(ctx, op, &e, reply);
}

/* ---- Seed and Accounts ----------------------------------------------- */

/* 1 if a and b are equal, in time independent of where they differ. */
static int token_equal(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char d = na != nb;
    for (size_t i = 0; i < na && i < nb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* Set e's balance in one local transaction, unless money of the account
 * is frozen (read FOR UPDATE, so a try cannot freeze in between). 0, 1
 * refused (why in err), or -1 error in err; the transaction is ended
 * either way. */
static int seed_balance(MYSQL *conn, const entry_t *e, char *err, size_t errlen)
{
    long long frozen = 0;
    if (example_service_exec(conn, err, errlen, "START TRANSACTION") != 0)
        return -1;
    int found = account_column(
        conn, "SELECT trading_balance FROM accounts WHERE id = '%s' FOR UPDATE",
        e->account, &frozen, err, errlen);
    if (found > 0 && frozen != 0) {
        snprintf(err, errlen,
                 "Seed refused: %lld of account %s is frozen by a transfer "
                 "in flight",
                 -frozen, e->account);
        mysql_query(conn, "ROLLBACK");
        return 1;
    }
    if (found < 0 ||
        example_service_exec(
            conn, err, errlen,
            "INSERT INTO accounts (id, balance, trading_balance) VALUES "
            "('%s', %lld, 0) ON DUPLICATE KEY UPDATE balance = %lld",
            e->account, e->amount, e->amount) != 0 ||
        example_service_exec(conn, err, errlen, "COMMIT") != 0) {
        mysql_query(conn, "ROLLBACK");
        return -1;
    }
    return 0;
}

static void handle_seed(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                        size_t payload_len, trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)user;
    entry_t e;
    char err[256];
    MYSQL *conn;
    if (parse_entry(payload, payload_len, "balance", 0, BANK_BALANCE_MAX, 1, &e,
                    err, sizeof err) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        return;
    }
    if (!token_equal(e.token, A.seed_token)) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE,
                               "Seed refused: %s seed token",
                               e.token[0] ? "wrong" : "no");
        return;
    }
    int rc = -1;
    if (!(conn = example_service_conn(err, sizeof err)) ||
        (rc = seed_balance(conn, &e, err, sizeof err)) != 0) {
        example_service_conn_check();
        example_service_answer(
            reply, rc == 1 ? TRELLIS_REPLY_FAILURE : TRELLIS_REPLY_ERROR, "%s",
            err);
        if (rc == 1 && !example_service_opts()->quiet)
            printf("%s: Seed account=%s refused: %s\n", A.name, e.account, err);
        return;
    }
    if (!example_service_opts()->quiet)
        printf("%s: Seed account=%s balance=%lld\n", A.name, e.account,
               e.amount);
}

static void handle_accounts(const trellis_branch_ctx_t *ctx,
                            const uint8_t *payload, size_t payload_len,
                            trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)payload, (void)payload_len, (void)user;
    char err[256], line[200];
    MYSQL *conn = example_service_conn(err, sizeof err);
    MYSQL_RES *r = NULL;
    if (!conn ||
        example_service_exec(
            conn, err, sizeof err,
            "SELECT id, balance, trading_balance FROM accounts "
            "ORDER BY id") != 0 ||
        !(r = mysql_store_result(conn))) {
        if (conn && !r && !*err)
            snprintf(err, sizeof err, "%s", mysql_error(conn));
        example_service_conn_check();
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        return;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r))) {
        snprintf(line, sizeof line,
                 "account=%s balance=%s trading_balance=%s\n", row[0], row[1],
                 row[2]);
        if (example_service_buf_add(&buf, &len, &cap, line) != 0)
            break;
    }
    mysql_free_result(r);
    reply->body = (uint8_t *)buf;
    reply->body_len = len;
}

/* ---- start ----------------------------------------------------------- */

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

/* The bank's own flags, --name and --chaos. 0 or -1. */
static int set_flag(const char *k, const char *v)
{
    if (!strcmp(k, "--name")) {
        A.name = v;
        return 0;
    }
    if (!strcmp(k, "--chaos"))
        return parse_chaos(v);
    if (!strcmp(k, "--seed-token-file")) {
        A.seed_token_file = v;
        return 0;
    }
    return -1;
}

/* The first line of --seed-token-file into A.seed_token. 0, or -1 with a
 * message on stderr. */
static int read_seed_token(void)
{
    FILE *f = fopen(A.seed_token_file, "r");
    char line[ID_MAX + 2] = "";
    if (!f) {
        fprintf(stderr, "bank-service: --seed-token-file %s: %s\n",
                A.seed_token_file, strerror(errno));
        return -1;
    }
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    size_t n = strcspn(line, "\n");
    if (n < TOKEN_MIN || !example_service_valid_id(line, n)) {
        fprintf(stderr,
                "bank-service: --seed-token-file %s: the first line must be "
                "%d..%d of [A-Za-z0-9_.-]\n",
                A.seed_token_file, TOKEN_MIN, ID_MAX);
        return -1;
    }
    memcpy(A.seed_token, line, n);
    A.seed_token[n] = '\0';
    return 0;
}

/* --name is required; it names the process in every message. */
static int check_flags(void)
{
    char log_name[128];
    if (!A.name || (A.seed_token_file && read_seed_token() != 0))
        return -1;
    snprintf(log_name, sizeof log_name, "bank-service %s", A.name);
    example_service_set_log_name(log_name);
    return 0;
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
    if ((A.seed_token_file &&
         trellis_participant_handle(p, "/bank.v1.Bank/Seed", handle_seed, NULL,
                                    err, errlen) != TRELLIS_OK) ||
        trellis_participant_handle(p, "/bank.v1.Bank/Accounts", handle_accounts,
                                   NULL, err, errlen) != TRELLIS_OK)
        return -1;
    return 0;
}

static void ready(int port)
{
    printf("bank-service ready name=%s database=%s port=%d chaos=%s seed=%s\n",
           A.name, example_service_opts()->database, port,
           A.chaos ? "on" : "off", A.seed_token_file ? "token" : "off");
}

static const example_service_def_t BANK = {
    .program = "bank-service",
    .usage_head = "bank-service --name NAME --database DB",
    .usage_tail = "[--threads N] [--chaos SEED:RATE] [--seed-token-file FILE] "
                  "[--quiet]",
    .table_ddl = "CREATE TABLE IF NOT EXISTS accounts ("
                 "id VARCHAR(64) NOT NULL PRIMARY KEY, "
                 "balance BIGINT NOT NULL DEFAULT 0, "
                 "trading_balance BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB",
    .set_flag = set_flag,
    .check_flags = check_flags,
    .add_handlers = add_handlers,
    .ready = ready,
};

int main(int argc, char **argv)
{
    return example_service_main(argc, argv, &BANK);
}
