/*
 * barrier.c: the branch barrier over MySQL/MariaDB (see trellis/barrier.h).
 *
 * This file owns the barrier table's layout (DDL), the SQL trellis_barrier_run
 * sends around the handler's business SQL, the mapping from outcomes to
 * participant replies, and the retention purge.
 * It lends barrier_msg.c (a message's barrier) its statements and the
 * start and business part of a transaction, through barrier_impl.h.
 *
 * One trellis_barrier_run is one local transaction on the caller's connection:
 *
 *   START TRANSACTION
 *   INSERT IGNORE own row (op, reason = op)
 *     0 rows: a forward op reads the row's reason: its own op -> DUPLICATE,
 *             another op (the cancel/compensate that came first) ->
 *             HANGING; any other op -> DUPLICATE.
 *   cancel/compensate/rollback: INSERT IGNORE origin row (reason = op)
 *     1 row: the forward op never ran -> EMPTY (committed, so that a late
 *            forward op finds the row and hangs).
 *   fn(conn) -> OK: COMMIT -> DONE; FAIL/ERROR: ROLLBACK.
 *
 * Round trips (measured in tests/integration/test_barrier.c): 3 + the
 * business SQL for a forward or confirm op (START, INSERT, COMMIT), 4 +
 * business for a compensation (a second INSERT); skipped ops run no
 * business SQL and cost 3 (a duplicate confirm/cancel: START, INSERT,
 * ROLLBACK) or 4 (a forward op's duplicate or hanging reads the row's
 * reason; an empty compensation inserts two rows). Values are escaped with
 * mysql_real_escape_string (no round trip) rather than prepared statements
 * (prepare + execute + close per call: trellis_barrier_run holds no
 * per-connection state to cache them in). A NULL table means
 * TRELLIS_BARRIER_DEFAULT_TABLE.
 *
 * Key columns use utf8mb4_bin (case matters: "G1" and "g1" are two gids).
 * That collation pads with spaces, so values ending in a space are refused
 * rather than silently matched; values longer than their column are
 * refused too, as INSERT IGNORE would truncate them into another key.
 *
 * Invariants:
 *   - a compensating op's own row and its origin row are committed in the
 *     same transaction, so "own row present" implies "origin row present";
 *   - the own row is inserted before the origin row. A forward op and its
 *     compensation racing on two connections each wait at most on the other's
 *     uncommitted row and never on a gap the other must insert into: with
 *     the origin row first, the compensation's second insert ('cancel' sorts
 *     before 'try') lands in the gap the waiting forward op's duplicate
 *     check locks, and InnoDB reports a deadlock (measured: 56 of 300
 *     raced rounds; none in this order);
 *   - every path ends with COMMIT or ROLLBACK: the connection is returned
 *     with no transaction open (a lost connection has none on the server);
 *   - the barrier rows and the business SQL share one session: a
 *     connection with auto-reconnect on is refused, and a handler whose
 *     session changed (mysql_thread_id, compared after it returns) is an
 *     error, never a commit.
 *
 * Limits, chosen and named: rows purged by trellis_barrier_purge are forgotten,
 * so a forward op delivered after the retention period runs again; keep the
 * retention far above the TM's longest retry horizon. Three or more
 * transactions inserting the same key at once (e.g. a try racing two
 * duplicate cancels) can still meet an InnoDB deadlock; the victim gets
 * TRELLIS_BARRIER_ERROR with nothing done, and the TM's retry settles it.
 */
#include "trellis/barrier.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "barrier_impl.h"

/* Column sizes of the table (bytes are checked, a stricter bound than
 * VARCHAR's characters). */
#define COL_TRANS_TYPE 16
#define COL_KEY 128 /* gid, branch_id */
#define COL_OP 45   /* op, barrier_id, reason */

#define SQL_MAX 2048

/* ---- messages ----------------------------------------------------------- */

void tb_say(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || msglen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

char *tb_msg_buf(char *msg, size_t *msglen, char *scratch, size_t scratchlen)
{
    if (!msg || *msglen == 0) {
        msg = scratch;
        *msglen = scratchlen;
    }
    msg[0] = '\0';
    return msg;
}

/* "what: <mysql error> (<errno>)" into msg. */
void tb_say_db(char *msg, size_t msglen, MYSQL *conn, const char *what)
{
    tb_say(msg, msglen, "%s: %s (%u)", what, mysql_error(conn),
           mysql_errno(conn));
}

/* ---- ops ---------------------------------------------------------------- */

/* The forward op a compensating op undoes, or NULL. */
static const char *origin_of(const char *op)
{
    if (strcmp(op, "cancel") == 0)
        return "try";
    if (strcmp(op, "compensate") == 0)
        return "action";
    if (strcmp(op, "rollback") == 0)
        return "prepare";
    return NULL;
}

/* 1 for an op that some compensating op names as its origin. */
static int is_forward(const char *op)
{
    return strcmp(op, "try") == 0 || strcmp(op, "action") == 0 ||
           strcmp(op, "prepare") == 0;
}

/* ---- input checks ------------------------------------------------------- */

int trellis_barrier_check_table_name(const char *table, char *err,
                                     size_t errlen)
{
    if (!table || !*table) {
        tb_say(err, errlen, "barrier table name is empty");
        return -1;
    }
    size_t n = strlen(table);
    if (n > 64) {
        tb_say(err, errlen, "barrier table name is longer than 64 characters");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = table[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '_';
        if (!ok) {
            tb_say(err, errlen,
                   "barrier table name \"%.64s\" has a character outside "
                   "[A-Za-z0-9_] at %zu",
                   table, i);
            return -1;
        }
    }
    return 0;
}

/* A value for a key column: 1..max bytes (0..max with may_be_empty) and
 * no trailing space (the _bin collation pads: "a" and "a " would be one
 * key). */
static int check_value(const char *name, const char *v, size_t max,
                       int may_be_empty, char *msg, size_t msglen)
{
    if (!v) {
        tb_say(msg, msglen, "barrier: %s is missing", name);
        return -1;
    }
    size_t n = strlen(v);
    if (n == 0 && !may_be_empty) {
        tb_say(msg, msglen, "barrier: %s is empty", name);
        return -1;
    }
    if (n > max) {
        tb_say(msg, msglen, "barrier: %s is longer than %zu bytes", name, max);
        return -1;
    }
    if (n > 0 && v[n - 1] == ' ') {
        tb_say(msg, msglen, "barrier: %s ends in a space", name);
        return -1;
    }
    return 0;
}

int trellis_barrier_check_branch(const trellis_barrier_branch_t *b, char *msg,
                                 size_t msglen)
{
    if (!b) {
        tb_say(msg, msglen, "barrier: no branch");
        return -1;
    }
    const char *bid =
        b->barrier_id ? b->barrier_id : TRELLIS_BARRIER_DEFAULT_ID;
    if (check_value("trans_type", b->trans_type, COL_TRANS_TYPE, 1, msg,
                    msglen) != 0 ||
        check_value("gid", b->gid, COL_KEY, 0, msg, msglen) != 0 ||
        check_value("branch_id", b->branch_id, COL_KEY, 0, msg, msglen) != 0)
        return -1;
    if (check_value("op", b->op, COL_OP, 0, msg, msglen) != 0 ||
        check_value("barrier_id", bid, COL_OP, 0, msg, msglen) != 0)
        return -1;
    return 0;
}

/* ---- SQL text ----------------------------------------------------------- */

typedef struct {
    char s[SQL_MAX];
    size_t n;
    int bad; /* overflow or an escaping error */
} sql_t;

static void sql_raw(sql_t *q, const char *text)
{
    size_t len = strlen(text);
    if (q->bad || q->n + len >= sizeof q->s) {
        q->bad = 1;
        return;
    }
    memcpy(q->s + q->n, text, len + 1);
    q->n += len;
}

/* 'v', escaped for conn's character set and sql_mode. */
static void sql_quoted(sql_t *q, MYSQL *conn, const char *v)
{
    size_t len = strlen(v);
    if (q->bad || q->n + 2 * len + 3 >= sizeof q->s) {
        q->bad = 1;
        return;
    }
    q->s[q->n++] = '\'';
    unsigned long w = mysql_real_escape_string(conn, q->s + q->n, v, len);
    if (w == (unsigned long)-1) {
        q->bad = 1;
        return;
    }
    q->n += w;
    q->s[q->n++] = '\'';
    q->s[q->n] = '\0';
}

/* WHERE clause naming one row of the unique key. */
static void sql_key(sql_t *q, MYSQL *conn, const trellis_barrier_branch_t *b,
                    const char *op, const char *barrier_id)
{
    sql_raw(q, " WHERE gid = ");
    sql_quoted(q, conn, b->gid);
    sql_raw(q, " AND branch_id = ");
    sql_quoted(q, conn, b->branch_id);
    sql_raw(q, " AND op = ");
    sql_quoted(q, conn, op);
    sql_raw(q, " AND barrier_id = ");
    sql_quoted(q, conn, barrier_id);
}

static int run_sql(MYSQL *conn, const sql_t *q)
{
    if (q->bad) {
        /* Unreachable with checked inputs; reported like a server error. */
        return -1;
    }
    return mysql_real_query(conn, q->s, q->n) == 0 ? 0 : -1;
}

int tb_run_text(MYSQL *conn, const char *text)
{
    return mysql_real_query(conn, text, strlen(text)) == 0 ? 0 : -1;
}

/* ---- table -------------------------------------------------------------- */

int trellis_barrier_create_table(MYSQL *conn, const char *table, char *err,
                                 size_t errlen)
{
    if (!table)
        table = TRELLIS_BARRIER_DEFAULT_TABLE;
    if (trellis_barrier_check_table_name(table, err, errlen) != 0)
        return -1;
    sql_t q = {.n = 0};
    sql_raw(&q, "CREATE TABLE IF NOT EXISTS `");
    sql_raw(&q, table);
    sql_raw(&q, "` ("
                "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
                " trans_type VARCHAR(16) NOT NULL DEFAULT '',"
                " gid VARCHAR(128) NOT NULL DEFAULT '',"
                " branch_id VARCHAR(128) NOT NULL DEFAULT '',"
                " op VARCHAR(45) NOT NULL DEFAULT '',"
                " barrier_id VARCHAR(45) NOT NULL DEFAULT '',"
                " reason VARCHAR(45) NOT NULL DEFAULT '',"
                " create_time DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
                " UNIQUE KEY uk_barrier (gid, branch_id, op, barrier_id),"
                " KEY ix_create_time (create_time)"
                ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
    if (run_sql(conn, &q) != 0) {
        tb_say_db(err, errlen, conn, "barrier: create table");
        return -1;
    }
    return 0;
}

/* ---- trellis_barrier_run
 * -------------------------------------------------------- */

unsigned tb_server_status(MYSQL *conn)
{
    unsigned st = 0;
    if (mariadb_get_infov(conn, MARIADB_CONNECTION_SERVER_STATUS, &st) != 0)
        return 0;
    return st;
}

/* A result the handler opened with mysql_use_result and did not free
 * cannot be read here: the COMMIT then fails and the connection stays
 * unusable until the handler's caller frees it. */
int trellis_barrier_drain_results(MYSQL *conn)
{
    for (;;) {
        MYSQL_RES *r = mysql_store_result(conn);
        if (r)
            mysql_free_result(r);
        int next = mysql_next_result(conn);
        if (next < 0)
            return 0;
        if (next > 0)
            return -1;
    }
}

/* ROLLBACK, ignoring failure: on a lost connection the server has already
 * rolled back. Keeps the error message already in msg. */
void tb_rollback_quietly(MYSQL *conn)
{
    tb_run_text(conn, "ROLLBACK");
}

/* A database error inside the transaction: report it, then roll back. */
static trellis_barrier_outcome_t fail_db(MYSQL *conn, const char *what,
                                         char *msg, size_t msglen)
{
    tb_say_db(msg, msglen, conn, what);
    tb_rollback_quietly(conn);
    return TRELLIS_BARRIER_ERROR;
}

long long tb_insert_row(MYSQL *conn, const char *table,
                        const trellis_barrier_branch_t *b, const char *op,
                        const char *barrier_id, int ignore)
{
    sql_t q = {.n = 0};
    sql_raw(&q, ignore ? "INSERT IGNORE INTO `" : "INSERT INTO `");
    sql_raw(&q, table);
    sql_raw(&q, "` (trans_type, gid, branch_id, op, barrier_id, reason) "
                "VALUES (");
    sql_quoted(&q, conn, b->trans_type);
    sql_raw(&q, ", ");
    sql_quoted(&q, conn, b->gid);
    sql_raw(&q, ", ");
    sql_quoted(&q, conn, b->branch_id);
    sql_raw(&q, ", ");
    sql_quoted(&q, conn, op);
    sql_raw(&q, ", ");
    sql_quoted(&q, conn, barrier_id);
    sql_raw(&q, ", ");
    sql_quoted(&q, conn, b->op);
    sql_raw(&q, ")");
    if (run_sql(conn, &q) != 0)
        return -1;
    my_ulonglong n = mysql_affected_rows(conn);
    return n == (my_ulonglong)-1 ? -1 : (long long)n;
}

long long trellis_barrier_insert_row(MYSQL *conn, const char *table,
                                     const trellis_barrier_branch_t *b,
                                     const char *op, const char *barrier_id)
{
    return tb_insert_row(conn, table, b, op, barrier_id, 1);
}

int trellis_barrier_read_reason(MYSQL *conn, const char *table,
                                const trellis_barrier_branch_t *b,
                                const char *barrier_id, char *out,
                                size_t outlen)
{
    sql_t q = {.n = 0};
    sql_raw(&q, "SELECT reason FROM `");
    sql_raw(&q, table);
    sql_raw(&q, "`");
    sql_key(&q, conn, b, b->op, barrier_id);
    sql_raw(&q, " LOCK IN SHARE MODE");
    if (run_sql(conn, &q) != 0)
        return -1;
    MYSQL_RES *r = mysql_store_result(conn);
    if (!r)
        return -1;
    MYSQL_ROW row = mysql_fetch_row(r);
    int found = row && row[0];
    if (found)
        snprintf(out, outlen, "%s", row[0]);
    mysql_free_result(r);
    return found;
}

/* The op's own row was already there: a duplicate, or for a forward op
 * the row its compensation left (hanging). Ends the transaction. */
static trellis_barrier_outcome_t
already_there(MYSQL *conn, const char *table, const trellis_barrier_branch_t *b,
              const char *barrier_id, char *msg, size_t msglen)
{
    trellis_barrier_outcome_t out = TRELLIS_BARRIER_SKIPPED_DUPLICATE;
    if (is_forward(b->op)) {
        char reason[COL_OP + 1] = "";
        int found = trellis_barrier_read_reason(conn, table, b, barrier_id,
                                                reason, sizeof reason);
        if (found < 0)
            return fail_db(conn, "barrier: read reason", msg, msglen);
        if (found == 0) {
            tb_say(msg, msglen, "barrier: row vanished (purged?); retry");
            tb_rollback_quietly(conn);
            return TRELLIS_BARRIER_ERROR;
        }
        if (strcmp(reason, b->op) != 0)
            out = TRELLIS_BARRIER_SKIPPED_HANGING;
    }
    if (tb_run_text(conn, "ROLLBACK") != 0) {
        tb_say_db(msg, msglen, conn, "barrier: rollback");
        return TRELLIS_BARRIER_ERROR;
    }
    tb_say(msg, msglen, "%s",
           out == TRELLIS_BARRIER_SKIPPED_HANGING
               ? "hanging: the transaction was already rolled back"
               : "duplicate: already done");
    return out;
}

/* COMMIT the rows inserted so far; `out` when that worked. */
static trellis_barrier_outcome_t
commit(MYSQL *conn, trellis_barrier_outcome_t out, char *msg, size_t msglen)
{
    if (tb_run_text(conn, "COMMIT") != 0)
        return fail_db(conn, "barrier: commit", msg, msglen);
    return out;
}

trellis_barrier_outcome_t tb_business(MYSQL *conn,
                                      trellis_barrier_business_fn fn,
                                      void *user, char *msg, size_t msglen,
                                      unsigned long session)
{
    trellis_barrier_business_rc_t rc = fn(conn, user, msg, msglen);
    int unseen_failure = trellis_barrier_drain_results(conn) != 0;
    if (mysql_thread_id(conn) != session) {
        /* The handler turned auto-reconnect on and the session was lost:
         * the barrier rows are gone with it, and whatever the handler ran
         * after the reconnect committed on its own. */
        tb_say(msg, msglen,
               "barrier: the connection reconnected during the handler "
               "(session %lu, now %lu): the barrier rows were lost; "
               "statements after the reconnect committed without them",
               session, mysql_thread_id(conn));
        tb_rollback_quietly(conn);
        return TRELLIS_BARRIER_ERROR;
    }
    if (unseen_failure && rc == TRELLIS_BARRIER_BUSINESS_OK)
        return fail_db(conn, "barrier: a statement of the handler failed", msg,
                       msglen);
    if (rc == TRELLIS_BARRIER_BUSINESS_OK) {
        if (!(tb_server_status(conn) & SERVER_STATUS_IN_TRANS)) {
            tb_say(msg, msglen,
                   "barrier: the handler ended the transaction (it must not "
                   "commit, roll back or run DDL)");
            tb_rollback_quietly(conn);
            return TRELLIS_BARRIER_ERROR;
        }
        return TRELLIS_BARRIER_DONE;
    }
    if (!*msg)
        tb_say(msg, msglen, "%s",
               rc == TRELLIS_BARRIER_BUSINESS_FAIL ? "business failure"
                                                   : "business error");
    tb_rollback_quietly(conn);
    return rc == TRELLIS_BARRIER_BUSINESS_FAIL
               ? TRELLIS_BARRIER_BUSINESS_FAILURE
               : TRELLIS_BARRIER_ERROR;
}

/* Run the handler inside the open transaction (begun on session) and
 * end it. */
static trellis_barrier_outcome_t
run_business(MYSQL *conn, trellis_barrier_business_fn fn, void *user, char *msg,
             size_t msglen, unsigned long session)
{
    trellis_barrier_outcome_t out =
        tb_business(conn, fn, user, msg, msglen, session);
    if (out != TRELLIS_BARRIER_DONE)
        return out;
    return commit(conn, TRELLIS_BARRIER_DONE, msg, msglen);
}

/* Auto-reconnect is refused: libmariadb will not reconnect the first
 * statement that meets a lost session inside a transaction, but it clears
 * its in-transaction flag doing so, and the next statement reconnects in
 * autocommit. A handler that retries after a lost connection would then
 * commit its business SQL on a new session while the barrier rows died
 * with the old one. 0, or -1 with msg. */
static int tb_check_no_reconnect(MYSQL *conn, char *msg, size_t msglen)
{
    my_bool on = 0;
    if (mysql_get_optionv(conn, MYSQL_OPT_RECONNECT, &on) != 0 || on) {
        tb_say(msg, msglen,
               "barrier: the connection has auto-reconnect on "
               "(MYSQL_OPT_RECONNECT): a reconnect inside the local "
               "transaction would commit business SQL without its barrier "
               "row; turn it off");
        return -1;
    }
    return 0;
}

int tb_begin(MYSQL *conn, char *msg, size_t msglen)
{
    if (tb_check_no_reconnect(conn, msg, msglen) != 0)
        return -1;
    if (tb_server_status(conn) & SERVER_STATUS_IN_TRANS) {
        /* START TRANSACTION would silently commit the caller's work. */
        tb_say(msg, msglen,
               "barrier: a transaction is already open on the "
               "connection");
        return -1;
    }
    if (tb_run_text(conn, "START TRANSACTION") != 0) {
        tb_say_db(msg, msglen, conn, "barrier: start transaction");
        return -1;
    }
    return 0;
}

static trellis_barrier_outcome_t
run_checked(MYSQL *conn, const char *table, const trellis_barrier_branch_t *b,
            const char *barrier_id, trellis_barrier_business_fn fn, void *user,
            char *msg, size_t msglen)
{
    if (tb_begin(conn, msg, msglen) != 0)
        return TRELLIS_BARRIER_ERROR;
    /* The session the barrier rows are written on, taken once the
     * transaction is open (a reconnect would change it). */
    unsigned long session = mysql_thread_id(conn);
    long long own =
        trellis_barrier_insert_row(conn, table, b, b->op, barrier_id);
    if (own < 0)
        return fail_db(conn, "barrier: insert", msg, msglen);
    if (own == 0)
        return already_there(conn, table, b, barrier_id, msg, msglen);

    const char *origin = origin_of(b->op);
    if (origin) {
        long long o =
            trellis_barrier_insert_row(conn, table, b, origin, barrier_id);
        if (o < 0)
            return fail_db(conn, "barrier: insert origin", msg, msglen);
        if (o == 1) {
            tb_say(msg, msglen, "empty compensation: %s never ran", origin);
            return commit(conn, TRELLIS_BARRIER_SKIPPED_EMPTY, msg, msglen);
        }
    }
    return run_business(conn, fn, user, msg, msglen, session);
}

trellis_barrier_outcome_t trellis_barrier_run(MYSQL *conn, const char *table,
                                              const trellis_barrier_branch_t *b,
                                              trellis_barrier_business_fn fn,
                                              void *user, char *msg,
                                              size_t msglen)
{
    char scratch[256];
    msg = tb_msg_buf(msg, &msglen, scratch, sizeof scratch);
    if (!conn || !fn) {
        tb_say(msg, msglen, "barrier: no connection or no handler");
        return TRELLIS_BARRIER_ERROR;
    }
    if (!table)
        table = TRELLIS_BARRIER_DEFAULT_TABLE;
    if (trellis_barrier_check_table_name(table, msg, msglen) != 0 ||
        trellis_barrier_check_branch(b, msg, msglen) != 0)
        return TRELLIS_BARRIER_ERROR;
    const char *bid =
        b->barrier_id ? b->barrier_id : TRELLIS_BARRIER_DEFAULT_ID;
    return run_checked(conn, table, b, bid, fn, user, msg, msglen);
}

trellis_barrier_branch_t
trellis_barrier_branch_from_ctx(const trellis_branch_ctx_t *ctx)
{
    trellis_barrier_branch_t b = {
        .trans_type = ctx->trans_type,
        .gid = ctx->gid,
        .branch_id = ctx->branch_id,
        .op = ctx->op,
        .barrier_id = NULL,
        .cluster_id = trellis_branch_ctx_header(ctx, TRELLIS_CLUSTER_ID_HEADER),
    };
    return b;
}

/* ---- replies ------------------------------------------------------------ */

void tb_reply(trellis_reply_t *reply, trellis_reply_code_t code,
              const char *msg, const char *fallback)
{
    reply->code = code;
    snprintf(reply->message, sizeof reply->message, "%s",
             msg && *msg ? msg : fallback);
}

/* What each outcome answers, indexed by trellis_barrier_outcome_t. */
static const struct {
    trellis_reply_code_t code;
    const char *fallback;
} outcome_replies[] = {
    [TRELLIS_BARRIER_DONE] = {TRELLIS_REPLY_SUCCESS, ""},
    [TRELLIS_BARRIER_SKIPPED_DUPLICATE] = {TRELLIS_REPLY_SUCCESS,
                                           "duplicate: already done"},
    [TRELLIS_BARRIER_SKIPPED_EMPTY] = {TRELLIS_REPLY_SUCCESS,
                                       "empty compensation"},
    [TRELLIS_BARRIER_SKIPPED_HANGING] =
        {TRELLIS_REPLY_FAILURE,
         "hanging: the transaction was already rolled back"},
    [TRELLIS_BARRIER_BUSINESS_FAILURE] = {TRELLIS_REPLY_FAILURE,
                                          "business failure"},
    [TRELLIS_BARRIER_ERROR] = {TRELLIS_REPLY_ERROR, "barrier error"},
};

void trellis_barrier_fill_reply(trellis_barrier_outcome_t outcome,
                                const char *msg, trellis_reply_t *reply)
{
    if ((unsigned)outcome > TRELLIS_BARRIER_ERROR)
        outcome = TRELLIS_BARRIER_ERROR;
    tb_reply(reply, outcome_replies[outcome].code, msg,
             outcome_replies[outcome].fallback);
}

/* ---- retention ---------------------------------------------------------- */

int trellis_barrier_purge(MYSQL *conn, const char *table, unsigned days,
                          unsigned batch, unsigned long long *deleted,
                          char *err, size_t errlen)
{
    unsigned long long total = 0;
    if (deleted)
        *deleted = 0;
    if (!table)
        table = TRELLIS_BARRIER_DEFAULT_TABLE;
    if (trellis_barrier_check_table_name(table, err, errlen) != 0)
        return -1;
    if (batch == 0) {
        tb_say(err, errlen, "barrier: purge batch must be at least 1");
        return -1;
    }
    if (tb_server_status(conn) & SERVER_STATUS_IN_TRANS) {
        tb_say(err, errlen,
               "barrier: a transaction is already open on the "
               "connection");
        return -1;
    }
    char sql[256];
    int n = snprintf(sql, sizeof sql,
                     "DELETE FROM `%s` WHERE create_time < NOW() - INTERVAL "
                     "%u DAY LIMIT %u",
                     table, days, batch);
    for (;;) {
        /* Each DELETE commits on its own (autocommit); with autocommit
         * off, the COMMIT below keeps every batch short. */
        if (mysql_real_query(conn, sql, (unsigned long)n) != 0) {
            tb_say_db(err, errlen, conn, "barrier: purge");
            tb_rollback_quietly(conn);
            return -1;
        }
        my_ulonglong got = mysql_affected_rows(conn);
        if ((tb_server_status(conn) & SERVER_STATUS_IN_TRANS) &&
            tb_run_text(conn, "COMMIT") != 0) {
            tb_say_db(err, errlen, conn, "barrier: purge commit");
            return -1;
        }
        total += got;
        if (deleted)
            *deleted = total;
        if (got < batch)
            return 0;
    }
}
