/*
 * barrier_msg.c: the barrier of a 2-phase message (see
 * trellis/barrier_msg.h) — the initiator's local transaction, the
 * back-check trellisd calls, its participant handler, and
 * trellis_msg_do_and_submit, the whole outbox in one call.
 *
 * This file owns the message's one barrier row, (gid, "00", "msg", "01"),
 * and the rule that decides a message: the first committed insert of that
 * row names the outcome ("msg": committed, "rollback": not committed).
 *
 *   local transaction            back-check
 *   START TRANSACTION            INSERT IGNORE row, reason "rollback"
 *   INSERT row, reason "msg"       1 row: nothing was committed -> NOT
 *     duplicate: TOO_LATE          0 rows: SELECT reason (shared lock)
 *   fn(conn)                         "msg" -> COMMITTED
 *   COMMIT                           "rollback" -> NOT_COMMITTED
 *
 * Invariants:
 *   - the local transaction never uses INSERT IGNORE: a row already there
 *     means the back-check answered "not committed" (or the gid's local
 *     transaction already ran), and committing then would deliver nothing
 *     for committed business SQL;
 *   - the back-check's insert is committed before it answers, so its
 *     "not committed" can never be overtaken by a later commit;
 *   - an uncommitted local row makes the back-check wait (InnoDB row
 *     lock), so its answer is the local transaction's outcome;
 *   - a lost connection during COMMIT is never reported as rolled back:
 *     do_and_submit then leaves the message to the back-check.
 *
 * Round trips: the local transaction adds 3 to the business SQL (START,
 * INSERT, COMMIT), as trellis_barrier_run does; the back-check costs 1
 * when it decides "not committed" itself, 2 otherwise (+1 COMMIT when the
 * connection has autocommit off).
 */
#include "trellis/barrier_msg.h"

#include <errmsg.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <string.h>

#include "barrier_impl.h"

#define MSG_TRANS_TYPE "msg"
#define MSG_BRANCH_ID "00"
#define MSG_OP "msg"
#define MSG_BARRIER_ID TRELLIS_BARRIER_DEFAULT_ID
#define MSG_NOT_COMMITTED "rollback" /* the back-check's reason */

/* The message's row as a branch whose op is the row's reason. */
static trellis_barrier_branch_t msg_branch(const char *gid, const char *reason)
{
    trellis_barrier_branch_t b = {
        .trans_type = MSG_TRANS_TYPE,
        .gid = gid,
        .branch_id = MSG_BRANCH_ID,
        .op = reason,
        .barrier_id = MSG_BARRIER_ID,
        .cluster_id = NULL,
    };
    return b;
}

/* conn, *table (NULL: the default) and gid usable. 0, or -1 with msg. */
static int check_args(MYSQL *conn, const char **table, const char *gid,
                      char *msg, size_t msglen)
{
    if (!conn) {
        tb_say(msg, msglen, "barrier: no connection");
        return -1;
    }
    if (!*table)
        *table = TRELLIS_BARRIER_DEFAULT_TABLE;
    trellis_barrier_branch_t b = msg_branch(gid, MSG_OP);
    if (trellis_barrier_check_table_name(*table, msg, msglen) != 0 ||
        trellis_barrier_check_branch(&b, msg, msglen) != 0)
        return -1;
    return 0;
}

/* A client-side error: the connection itself failed (lost, gone). */
static int conn_broken(MYSQL *conn)
{
    unsigned e = mysql_errno(conn);
    return e >= CR_MIN_ERROR && e <= CR_MAX_ERROR;
}

/* The message row's reason into reason[len]: 1 found, 0 none, -1 error
 * (in conn). */
static int read_reason(MYSQL *conn, const char *table, const char *gid,
                       char *reason, size_t len)
{
    trellis_barrier_branch_t b = msg_branch(gid, MSG_OP);
    return trellis_barrier_read_reason(conn, table, &b, MSG_BARRIER_ID, reason,
                                       len);
}

const char *trellis_barrier_msg_outcome_name(trellis_barrier_msg_outcome_t o)
{
    switch (o) {
    case TRELLIS_BARRIER_MSG_COMMITTED:
        return "committed";
    case TRELLIS_BARRIER_MSG_BUSINESS_FAILURE:
        return "business failure";
    case TRELLIS_BARRIER_MSG_TOO_LATE:
        return "too late";
    case TRELLIS_BARRIER_MSG_ERROR:
        return "error";
    case TRELLIS_BARRIER_MSG_COMMIT_UNKNOWN:
        return "commit unknown";
    }
    return "unknown";
}

/* ---- the local transaction ---------------------------------------------- */

/* The INSERT met the row: who left it? Ends the transaction. */
static trellis_barrier_msg_outcome_t row_was_there(MYSQL *conn,
                                                   const char *table,
                                                   const char *gid, char *msg,
                                                   size_t msglen)
{
    char reason[64] = "";
    int found = read_reason(conn, table, gid, reason, sizeof reason);
    if (found < 0)
        tb_say_db(msg, msglen, conn, "barrier: msg: read reason");
    tb_rollback_quietly(conn);
    if (found < 0)
        return TRELLIS_BARRIER_MSG_ERROR;
    if (found && strcmp(reason, MSG_NOT_COMMITTED) == 0) {
        tb_say(msg, msglen,
               "too late: the back-check already answered that message "
               "%.128s was not committed, and dropped it; rolled back",
               gid);
        return TRELLIS_BARRIER_MSG_TOO_LATE;
    }
    tb_say(msg, msglen,
           "barrier: msg: the local transaction of message %.128s already "
           "ran (reason \"%s\"); a gid is used once; rolled back",
           gid, reason);
    return TRELLIS_BARRIER_MSG_ERROR;
}

/* COMMIT; a lost connection leaves the outcome unknown. */
static trellis_barrier_msg_outcome_t commit_msg(MYSQL *conn, char *msg,
                                                size_t msglen)
{
    if (tb_run_text(conn, "COMMIT") == 0)
        return TRELLIS_BARRIER_MSG_COMMITTED;
    if (conn_broken(conn)) {
        tb_say_db(msg, msglen, conn,
                  "barrier: msg: the connection was lost during COMMIT; "
                  "it may have committed or not, the back-check decides");
        return TRELLIS_BARRIER_MSG_COMMIT_UNKNOWN;
    }
    tb_say_db(msg, msglen, conn, "barrier: msg: commit");
    tb_rollback_quietly(conn);
    return TRELLIS_BARRIER_MSG_ERROR;
}

trellis_barrier_msg_outcome_t
trellis_barrier_msg_run(MYSQL *conn, const char *table, const char *gid,
                        trellis_barrier_business_fn fn, void *user, char *msg,
                        size_t msglen)
{
    char scratch[256];
    msg = tb_msg_buf(msg, &msglen, scratch, sizeof scratch);
    if (!fn) {
        tb_say(msg, msglen, "barrier: msg: no business function");
        return TRELLIS_BARRIER_MSG_ERROR;
    }
    if (check_args(conn, &table, gid, msg, msglen) != 0 ||
        tb_begin(conn, msg, msglen) != 0)
        return TRELLIS_BARRIER_MSG_ERROR;
    unsigned long session = mysql_thread_id(conn);
    trellis_barrier_branch_t b = msg_branch(gid, MSG_OP);
    if (tb_insert_row(conn, table, &b, MSG_OP, MSG_BARRIER_ID, 0) < 0) {
        if (mysql_errno(conn) == ER_DUP_ENTRY)
            return row_was_there(conn, table, gid, msg, msglen);
        tb_say_db(msg, msglen, conn, "barrier: msg: insert");
        tb_rollback_quietly(conn);
        return TRELLIS_BARRIER_MSG_ERROR;
    }
    trellis_barrier_outcome_t out =
        tb_business(conn, fn, user, msg, msglen, session);
    if (out == TRELLIS_BARRIER_BUSINESS_FAILURE)
        return TRELLIS_BARRIER_MSG_BUSINESS_FAILURE;
    if (out != TRELLIS_BARRIER_DONE)
        return TRELLIS_BARRIER_MSG_ERROR;
    return commit_msg(conn, msg, msglen);
}

/* ---- the back-check ----------------------------------------------------- */

/* With autocommit off the statement opened a transaction: end it. 0, or
 * -1 with msg. */
static int end_statement(MYSQL *conn, const char *end, char *msg, size_t msglen)
{
    if (!(tb_server_status(conn) & SERVER_STATUS_IN_TRANS))
        return 0;
    if (tb_run_text(conn, end) == 0)
        return 0;
    tb_say_db(msg, msglen, conn, "barrier: query_prepared: end statement");
    return -1;
}

/* The row was there before the back-check: read whose it is. */
static trellis_barrier_check_t read_answer(MYSQL *conn, const char *table,
                                           const char *gid, char *msg,
                                           size_t msglen)
{
    char reason[64] = "";
    int found = read_reason(conn, table, gid, reason, sizeof reason);
    if (found < 0) {
        tb_say_db(msg, msglen, conn, "barrier: query_prepared: read reason");
        tb_rollback_quietly(conn);
        return TRELLIS_BARRIER_CHECK_ERROR;
    }
    if (end_statement(conn, "ROLLBACK", msg, msglen) != 0)
        return TRELLIS_BARRIER_CHECK_ERROR;
    if (found && strcmp(reason, MSG_OP) == 0) {
        tb_say(msg, msglen, "committed");
        return TRELLIS_BARRIER_CHECK_COMMITTED;
    }
    if (found && strcmp(reason, MSG_NOT_COMMITTED) == 0) {
        tb_say(msg, msglen,
               "not committed: the local transaction never "
               "committed, and now never will");
        return TRELLIS_BARRIER_CHECK_NOT_COMMITTED;
    }
    tb_say(msg, msglen,
           found ? "barrier: query_prepared: the row has reason \"%s\""
                 : "barrier: query_prepared: the row vanished (purged?)%s",
           reason);
    return TRELLIS_BARRIER_CHECK_ERROR;
}

trellis_barrier_check_t trellis_barrier_query_prepared(MYSQL *conn,
                                                       const char *table,
                                                       const char *gid,
                                                       char *msg, size_t msglen)
{
    char scratch[256];
    msg = tb_msg_buf(msg, &msglen, scratch, sizeof scratch);
    if (check_args(conn, &table, gid, msg, msglen) != 0)
        return TRELLIS_BARRIER_CHECK_ERROR;
    if (tb_server_status(conn) & SERVER_STATUS_IN_TRANS) {
        /* Its insert would commit only with the caller's transaction. */
        tb_say(msg, msglen,
               "barrier: query_prepared: a transaction is already open on "
               "the connection");
        return TRELLIS_BARRIER_CHECK_ERROR;
    }
    trellis_barrier_branch_t b = msg_branch(gid, MSG_NOT_COMMITTED);
    long long n = tb_insert_row(conn, table, &b, MSG_OP, MSG_BARRIER_ID, 1);
    if (n < 0) {
        tb_say_db(msg, msglen, conn, "barrier: query_prepared: insert");
        tb_rollback_quietly(conn);
        return TRELLIS_BARRIER_CHECK_ERROR;
    }
    if (end_statement(conn, "COMMIT", msg, msglen) != 0) {
        tb_rollback_quietly(conn);
        return TRELLIS_BARRIER_CHECK_ERROR;
    }
    if (n == 1) {
        tb_say(msg, msglen,
               "not committed: the local transaction never "
               "committed, and now never will");
        return TRELLIS_BARRIER_CHECK_NOT_COMMITTED;
    }
    return read_answer(conn, table, gid, msg, msglen);
}

void trellis_barrier_query_prepared_reply(trellis_barrier_check_t answer,
                                          const char *msg,
                                          trellis_reply_t *reply)
{
    if (answer == TRELLIS_BARRIER_CHECK_COMMITTED)
        tb_reply(reply, TRELLIS_REPLY_SUCCESS, msg, "committed");
    else if (answer == TRELLIS_BARRIER_CHECK_NOT_COMMITTED)
        tb_reply(reply, TRELLIS_REPLY_FAILURE, msg, "not committed");
    else
        tb_reply(reply, TRELLIS_REPLY_ERROR, msg, "barrier error");
}

/* ---- the participant handler -------------------------------------------- */

/* ctx is a back-check of a message: 0, or -1 with reply filled (ERROR). */
static int check_ctx(const trellis_branch_ctx_t *ctx, trellis_reply_t *reply)
{
    const char *why = NULL;
    if (strcmp(ctx->trans_type, MSG_TRANS_TYPE) != 0)
        why = "dtm-trans_type is not \"msg\"";
    else if (strcmp(ctx->op, "query_prepared") != 0)
        why = "dtm-op is not \"query_prepared\"";
    else if (ctx->gid[0] == '\0')
        why = "dtm-gid is empty";
    if (!why)
        return 0;
    reply->code = TRELLIS_REPLY_ERROR;
    snprintf(reply->message, sizeof reply->message,
             "not a message back-check: %s", why);
    return -1;
}

void trellis_barrier_query_prepared_handler(const trellis_branch_ctx_t *ctx,
                                            const uint8_t *payload,
                                            size_t payload_len,
                                            trellis_reply_t *reply, void *user)
{
    (void)payload;
    (void)payload_len;
    const trellis_barrier_conns_t *conns = user;
    char msg[512] = "";
    if (check_ctx(ctx, reply) != 0)
        return;
    if (!conns || !conns->borrow) {
        trellis_barrier_query_prepared_reply(
            TRELLIS_BARRIER_CHECK_ERROR,
            "barrier: the back-check handler has no connections", reply);
        return;
    }
    MYSQL *conn = conns->borrow(conns->user, msg, sizeof msg);
    if (!conn) {
        trellis_barrier_query_prepared_reply(TRELLIS_BARRIER_CHECK_ERROR, msg,
                                             reply);
        return;
    }
    trellis_barrier_check_t answer = trellis_barrier_query_prepared(
        conn, conns->table, ctx->gid, msg, sizeof msg);
    int broken = answer == TRELLIS_BARRIER_CHECK_ERROR && conn_broken(conn);
    if (conns->give_back)
        conns->give_back(conns->user, conn, broken);
    trellis_barrier_query_prepared_reply(answer, msg, reply);
}

/* ---- the whole outbox --------------------------------------------------- */

/* The rc do_and_submit returns for a local transaction that rolled back. */
static trellis_rc_t rolled_back_rc(trellis_barrier_msg_outcome_t o)
{
    if (o == TRELLIS_BARRIER_MSG_BUSINESS_FAILURE)
        return TRELLIS_ABORTED;
    if (o == TRELLIS_BARRIER_MSG_TOO_LATE)
        return TRELLIS_FAILED_PRECONDITION;
    return TRELLIS_UNAVAILABLE;
}

/* Abort the message after its local transaction rolled back (best effort),
 * and say so in msg after the local transaction's own message. */
static trellis_rc_t abort_rolled_back(trellis_client_t *c,
                                      const trellis_msg_t *m,
                                      trellis_barrier_msg_outcome_t o,
                                      char *msg, size_t msglen)
{
    char why[TRELLIS_MSG_TEXT_MAX + 1], err[256] = "";
    snprintf(why, sizeof why, "local transaction rolled back: %s", msg);
    trellis_rc_t arc = o == TRELLIS_BARRIER_MSG_TOO_LATE
                           ? TRELLIS_OK /* the back-check dropped it */
                           : trellis_msg_abort(c, m, why, err, sizeof err);
    if (arc != TRELLIS_OK)
        tb_say(msg, msglen,
               "%s; the abort failed too (%s), so the back-check will drop "
               "the message",
               why, err);
    else
        tb_say(msg, msglen, "%s; the message is dropped", why);
    return rolled_back_rc(o);
}

trellis_rc_t trellis_msg_do_and_submit(
    trellis_client_t *c, const trellis_msg_t *m, const char *query_prepared,
    MYSQL *conn, const char *table, trellis_barrier_business_fn fn, void *user,
    int wait, trellis_barrier_msg_outcome_t *local,
    trellis_trans_status_t *status, char *msg, size_t msglen)
{
    char scratch[512];
    msg = tb_msg_buf(msg, &msglen, scratch, sizeof scratch);
    if (local)
        *local = TRELLIS_BARRIER_MSG_ERROR;
    if (!conn || !fn) {
        tb_say(msg, msglen, "msg: no connection or no business function");
        return TRELLIS_INVALID_ARGUMENT;
    }
    trellis_rc_t rc = trellis_msg_prepare(c, m, query_prepared, msg, msglen);
    if (rc != TRELLIS_OK)
        return rc;
    const char *gid = trellis_msg_gid(m);
    trellis_barrier_msg_outcome_t o =
        trellis_barrier_msg_run(conn, table, gid, fn, user, msg, msglen);
    if (local)
        *local = o;
    if (o == TRELLIS_BARRIER_MSG_COMMIT_UNKNOWN)
        return TRELLIS_UNKNOWN; /* msg already says the back-check decides */
    if (o != TRELLIS_BARRIER_MSG_COMMITTED)
        return abort_rolled_back(c, m, o, msg, msglen);
    char err[512] = "";
    rc = trellis_msg_submit(c, m, wait, status, NULL, 0, err, sizeof err);
    if (rc != TRELLIS_OK)
        tb_say(msg, msglen,
               "committed, but the submit failed (%s); the message will "
               "still be delivered: the back-check finds the commit",
               err);
    return rc;
}
