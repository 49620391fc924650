/*
 * mysql_xa_prepare.c: phase 1 of the XA adapter (trellis_myxa_prepare_branch)
 * and the participant's reply for its outcome (trellis_myxa_fill_reply).
 *
 * It owns XA START, the barrier row and the business SQL inside the
 * branch, XA END and XA PREPARE, and the reconnect that leaves the
 * prepared branch behind; why each step is as it is stands at the top of
 * mysql_xa.c.
 */
#include "mysql_xa_impl.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* How long a prepare waits for its old session to end (ms). */
#define DETACH_WAIT_MS 1000

/* End and roll back the branch being built; errors ignored (on a lost
 * connection the server has already rolled it back). Returns out. */
static trellis_myxa_outcome_t abandon(MYSQL *conn, const myxa_xid_t *xid,
                                      trellis_myxa_outcome_t out)
{
    myxa_sql(conn, "END", xid);
    myxa_sql(conn, "ROLLBACK", xid);
    return out;
}

/* XA START failed: a duplicate if the xid is prepared already. */
static trellis_myxa_outcome_t start_failed(MYSQL *conn, const myxa_xid_t *xid,
                                           char *msg, size_t msglen)
{
    if (mysql_errno(conn) != ER_XAER_DUPID) {
        myxa_say_db(msg, msglen, conn, "start", xid->show);
        return TRELLIS_MYXA_ERROR;
    }
    int listed = myxa_xid_listed(conn, xid);
    if (listed < 0) {
        myxa_say_db(msg, msglen, conn, "recover (after XAER_DUPID)", xid->show);
        return TRELLIS_MYXA_ERROR;
    }
    if (listed) {
        myxa_say(msg, msglen, "duplicate: %s is already prepared", xid->show);
        return TRELLIS_MYXA_SKIPPED_DUPLICATE;
    }
    myxa_say(msg, msglen,
             "xa: a prepare of %s is running on another connection; retry",
             xid->show);
    return TRELLIS_MYXA_ERROR;
}

/* The barrier row was there already: who put it there decides. */
static trellis_myxa_outcome_t
already_there(MYSQL *conn, const char *table, const trellis_barrier_branch_t *b,
              const char *bid, const myxa_xid_t *xid, char *msg, size_t msglen)
{
    char reason[64] = "";
    int found =
        trellis_barrier_read_reason(conn, table, b, bid, reason, sizeof reason);
    if (found < 0) {
        myxa_say_db(msg, msglen, conn, "read barrier reason", xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    if (found == 0) {
        myxa_say(msg, msglen, "xa: barrier row of %s vanished (purged?); retry",
                 xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    if (strcmp(reason, "prepare") == 0) {
        myxa_say(msg, msglen,
                 "duplicate: %s was already prepared and committed", xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_SKIPPED_DUPLICATE);
    }
    myxa_say(msg, msglen,
             "rolled back: the rollback of %s came first; nothing prepared",
             xid->show);
    return abandon(conn, xid, TRELLIS_MYXA_SKIPPED_ROLLED_BACK);
}

/* Inside the started branch: barrier row, business SQL, XA END. Returns
 * TRELLIS_MYXA_PREPARED when the branch is ended and ready to prepare; any
 * other outcome has rolled it back. */
static trellis_myxa_outcome_t run_branch(MYSQL *conn, const char *table,
                                         const trellis_barrier_branch_t *b,
                                         const myxa_xid_t *xid,
                                         trellis_barrier_business_fn fn,
                                         void *user, char *msg, size_t msglen)
{
    const char *bid =
        b->barrier_id ? b->barrier_id : TRELLIS_BARRIER_DEFAULT_ID;
    long long own = trellis_barrier_insert_row(conn, table, b, b->op, bid);
    if (own < 0) {
        myxa_say_db(msg, msglen, conn, "barrier insert", xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    if (own == 0)
        return already_there(conn, table, b, bid, xid, msg, msglen);

    trellis_barrier_business_rc_t rc = fn(conn, user, msg, msglen);
    if (trellis_barrier_drain_results(conn) != 0 &&
        rc == TRELLIS_BARRIER_BUSINESS_OK) {
        myxa_say_db(msg, msglen, conn, "a statement of the handler failed in",
                    xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    if (rc != TRELLIS_BARRIER_BUSINESS_OK) {
        if (!*msg)
            myxa_say(msg, msglen, "%s",
                     rc == TRELLIS_BARRIER_BUSINESS_FAIL ? "business failure"
                                                         : "business error");
        return abandon(conn, xid,
                       rc == TRELLIS_BARRIER_BUSINESS_FAIL
                           ? TRELLIS_MYXA_BUSINESS_FAILURE
                           : TRELLIS_MYXA_ERROR);
    }
    if (myxa_sql(conn, "END", xid) != 0) {
        myxa_say_db(msg, msglen, conn, "end", xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    return TRELLIS_MYXA_PREPARED;
}

/* Wait until the server has ended session `id`: its thread leaves the
 * process list only after its cleanup handed the prepared xid to the
 * recovered list, and InnoDB lets go of the branch microseconds later;
 * from then on any connection can commit it (the top of mysql_xa.c: a
 * commit inside those microseconds is caught and retried). At most
 * DETACH_WAIT_MS. 0, or -1. */
static int wait_session_gone(MYSQL *conn, unsigned long id)
{
    char sql[96];
    int n = snprintf(sql, sizeof sql,
                     "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                     "WHERE ID = %lu",
                     id);
    /* The server usually ends the old session within a few hundred
     * microseconds: look after 200 us, then back off (doubling, at most
     * 2 ms), so a prepare costs one or two of these queries, not dozens. */
    long waited_us = 0;
    for (long delay_us = 200; waited_us <= DETACH_WAIT_MS * 1000L;
         delay_us = delay_us < 2000 ? delay_us * 2 : 2000) {
        nanosleep(&(struct timespec){.tv_nsec = delay_us * 1000}, NULL);
        waited_us += delay_us;
        if (mysql_real_query(conn, sql, (unsigned long)n) != 0)
            return -1;
        MYSQL_RES *r = mysql_store_result(conn);
        MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
        int gone = row && row[0] && strcmp(row[0], "0") == 0;
        mysql_free_result(r);
        if (!r || gone)
            return r ? 0 : -1;
    }
    return -1;
}

/* Leave the prepared branch behind: a new session on the same handle (see
 * the top of mysql_xa.c), returning once the old one has ended. If the
 * reconnect fails the socket is shut down anyway (mariadb_cancel), which
 * detaches the branch too; the caller then finds the handle disconnected.
 * 0, or -1 with msg. */
static int detach(MYSQL *conn, const myxa_xid_t *xid, char *msg, size_t msglen)
{
    unsigned long old_id = mysql_thread_id(conn);
    my_bool was = 0, on = 1;
    mysql_get_optionv(conn, MYSQL_OPT_RECONNECT, &was);
    mysql_optionsv(conn, MYSQL_OPT_RECONNECT, &on);
    /* mariadb_reconnect refuses while the server reported a transaction in
     * progress, so that an automatic reconnect never silently drops one;
     * this one is prepared and meant to outlive the session. */
    conn->server_status &= ~SERVER_STATUS_IN_TRANS;
    my_bool failed = mariadb_reconnect(conn);
    mysql_optionsv(conn, MYSQL_OPT_RECONNECT, &was);
    if (!failed) {
        if (wait_session_gone(conn, old_id) == 0)
            return 0;
        myxa_say(msg, msglen,
                 "xa: %s prepared; the old session did not end within %d ms "
                 "(a commit may be told to retry)",
                 xid->show, DETACH_WAIT_MS);
        return -1;
    }
    myxa_say_db(msg, msglen, conn,
                "prepared; reconnect failed, connection closed:", xid->show);
    mariadb_cancel(conn);
    return -1;
}

static trellis_myxa_outcome_t prepare(MYSQL *conn, const myxa_xid_t *xid,
                                      char *msg, size_t msglen)
{
    if (myxa_sql(conn, "PREPARE", xid) != 0) {
        myxa_say_db(msg, msglen, conn, "prepare", xid->show);
        /* A failed XA PREPARE has rolled back or lost the branch; make
         * sure of the first. */
        myxa_sql(conn, "ROLLBACK", xid);
        return TRELLIS_MYXA_ERROR;
    }
    detach(conn, xid, msg, msglen);
    return TRELLIS_MYXA_PREPARED;
}

trellis_myxa_outcome_t trellis_myxa_prepare_branch(
    MYSQL *conn, const char *table, const trellis_barrier_branch_t *b,
    trellis_barrier_business_fn fn, void *user, char *msg, size_t msglen)
{
    char scratch[256];
    myxa_xid_t xid;
    if (!msg || msglen == 0) {
        msg = scratch;
        msglen = sizeof scratch;
    }
    msg[0] = '\0';
    trellis_barrier_branch_t nb;
    if (!fn) {
        myxa_say(msg, msglen, "xa: no handler");
        return TRELLIS_MYXA_ERROR;
    }
    if (myxa_setup(conn, &table, b, "prepare", &nb, &xid, msg, msglen) != 0)
        return TRELLIS_MYXA_ERROR;
    if (myxa_sql(conn, "START", &xid) != 0)
        return start_failed(conn, &xid, msg, msglen);
    trellis_myxa_outcome_t o =
        run_branch(conn, table, &nb, &xid, fn, user, msg, msglen);
    if (o != TRELLIS_MYXA_PREPARED)
        return o;
    return prepare(conn, &xid, msg, msglen);
}

/* ---- replies ------------------------------------------------------------ */

/* Each outcome answers as the barrier outcome of the same meaning (one
 * mapping of outcomes to reply codes: trellis_barrier_fill_reply), in the
 * adapter's own words when msg is empty. */
void trellis_myxa_fill_reply(trellis_myxa_outcome_t outcome, const char *msg,
                             trellis_reply_t *reply)
{
    static const struct {
        trellis_barrier_outcome_t as;
        const char *fallback;
    } replies[] = {
        [TRELLIS_MYXA_PREPARED] = {TRELLIS_BARRIER_DONE, ""},
        [TRELLIS_MYXA_SKIPPED_DUPLICATE] = {TRELLIS_BARRIER_SKIPPED_DUPLICATE,
                                            "duplicate: already prepared"},
        [TRELLIS_MYXA_SKIPPED_ROLLED_BACK] =
            {TRELLIS_BARRIER_SKIPPED_HANGING,
             "rolled back: the rollback came first"},
        [TRELLIS_MYXA_BUSINESS_FAILURE] = {TRELLIS_BARRIER_BUSINESS_FAILURE,
                                           "business failure"},
        [TRELLIS_MYXA_ERROR] = {TRELLIS_BARRIER_ERROR, "xa error"},
    };
    size_t i = (size_t)outcome < sizeof replies / sizeof *replies
                   ? (size_t)outcome
                   : (size_t)TRELLIS_MYXA_ERROR;
    trellis_barrier_fill_reply(replies[i].as,
                               msg && *msg ? msg : replies[i].fallback, reply);
}
