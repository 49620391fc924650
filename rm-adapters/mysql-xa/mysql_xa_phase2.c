/*
 * mysql_xa_phase2.c: phase 2 of the XA adapter — trellis_myxa_commit_branch
 * and trellis_myxa_rollback_branch, with their idempotence rules.
 *
 * It owns XA COMMIT / XA ROLLBACK (the branch's own xid form, then the
 * legacy one), the reading of XAER_NOTA, the commit's confirmation by the
 * prepare's barrier row, and the rollback's barrier rows that stop a late
 * prepare, inserted under a bounded lock wait; why stands at the top of
 * mysql_xa.c.
 */
#include "mysql_xa_impl.h"

#include <stdio.h>
#include <string.h>

/* How long a rollback waits for a prepare in flight (seconds); below the
 * TM's default request deadline (3 s), so the answer still reaches it. */
#define XA_LOCK_WAIT_S 2
#define SQL_MAX 4096

/* After XAER_NOTA for xid: 0 if XA RECOVER does not list it (no longer
 * prepared, or never), -1 if it is prepared but still attached to a live
 * session (or XA RECOVER failed). A session that ends keeps its prepared
 * xid listed throughout (the recovered flag is set before the session's
 * is cleared), so one look is enough; what "not listed" does not prove
 * (that a commit happened) prepare_row_committed decides. */
static int nota_means_gone(MYSQL *conn, const myxa_xid_t *xid, char *msg,
                           size_t msglen)
{
    int listed = myxa_xid_listed(conn, xid);
    if (listed < 0) {
        myxa_say_db(msg, msglen, conn, "recover (after XAER_NOTA)", xid->show);
        return -1;
    }
    if (listed) {
        myxa_say(msg, msglen,
                 "xa: %s is prepared but still attached to a live session "
                 "(its preparer has not disconnected yet); retry",
                 xid->show);
        return -1;
    }
    return 0;
}

/* With autocommit off, a statement of ours opened a transaction: end it,
 * so that conn is left outside any transaction. 0, or -1. */
static int end_implicit_trans(MYSQL *conn)
{
    return myxa_in_trans(conn) && mysql_query(conn, "COMMIT") != 0 ? -1 : 0;
}

/* Is the prepare's barrier row of b (reason "prepare") visible to a plain
 * read? 1, 0, or -1 (error in conn). Written inside the XA branch, it is
 * visible once the branch committed, and never before. */
static int prepare_row_visible(MYSQL *conn, const char *table,
                               const trellis_barrier_branch_t *b)
{
    const char *bid =
        b->barrier_id ? b->barrier_id : TRELLIS_BARRIER_DEFAULT_ID;
    const char *v[] = {b->gid, b->branch_id, bid};
    char esc[3][2 * 128 + 1];
    for (int i = 0; i < 3; i++)
        mysql_real_escape_string(conn, esc[i], v[i], strlen(v[i]));
    char sql[SQL_MAX];
    int n = snprintf(sql, sizeof sql,
                     "SELECT COUNT(*) FROM `%s` WHERE gid = '%s' AND "
                     "branch_id = '%s' AND op = 'prepare' AND barrier_id = "
                     "'%s' AND reason = 'prepare'",
                     table, esc[0], esc[1], esc[2]);
    if (n < 0 || (size_t)n >= sizeof sql ||
        mysql_real_query(conn, sql, (unsigned long)n) != 0)
        return -1;
    MYSQL_RES *r = mysql_store_result(conn);
    if (!r)
        return -1;
    MYSQL_ROW row = mysql_fetch_row(r);
    int visible = row && row[0] && strcmp(row[0], "1") == 0;
    mysql_free_result(r);
    return end_implicit_trans(conn) == 0 ? visible : -1;
}

/* The last word on a commit: answered_ok tells whether XA COMMIT answered
 * OK (else it met XAER_NOTA with the xid unlisted). Either way the commit
 * happened only if the prepare's barrier row is visible: 0. Not visible:
 * -1, the TM retries. After an OK that means the server dropped the xid
 * without committing it (the top of mysql_xa.c); after a NOTA, that it did
 * so for an earlier commit, or that the prepare never succeeded (a commit
 * does not follow one). */
static int prepare_row_committed(MYSQL *conn, const char *table,
                                 const trellis_barrier_branch_t *b,
                                 const myxa_xid_t *xid, int answered_ok,
                                 char *msg, size_t msglen)
{
    int visible = prepare_row_visible(conn, table, b);
    if (visible < 0) {
        myxa_say_db(msg, msglen, conn, "commit check", xid->show);
        return -1;
    }
    if (!visible && answered_ok) {
        myxa_say(
            msg, msglen,
            "xa: XA COMMIT %s answered OK but the branch is not committed "
            "(its barrier row is not visible): the server dropped the xid "
            "while the preparer's session was closing, and the branch "
            "stays prepared inside InnoDB until the server restarts; retry",
            xid->show);
        return -1;
    }
    if (!visible) {
        myxa_say(msg, msglen,
                 "xa: %s is neither prepared nor visibly committed (a server "
                 "that dropped it while its preparer's session was closing "
                 "lists it again once restarted); retry",
                 xid->show);
        return -1;
    }
    if (!answered_ok)
        myxa_say(msg, msglen,
                 "duplicate: %s is not prepared (already committed)",
                 xid->show);
    return 0;
}

/* Phase 2 of a cluster-form xid met XAER_NOTA: if XA RECOVER lists the
 * branch in the legacy form (prepared by an adapter from before cluster
 * ids, or for a prepare that came without a cluster id: an initiator that
 * does not send it), switch *xid to that form and return 1; 0 when not
 * (or *xid is legacy already); -1 with msg when XA RECOVER failed. */
static int use_legacy(MYSQL *conn, myxa_xid_t *xid, char *msg, size_t msglen)
{
    if (!xid->bqual[0])
        return 0;
    myxa_xid_t legacy;
    myxa_xid_set(&legacy, xid->gtrid, NULL);
    int listed = myxa_xid_listed(conn, &legacy);
    if (listed < 0) {
        myxa_say_db(msg, msglen, conn, "recover (after XAER_NOTA)", xid->show);
        return -1;
    }
    if (listed)
        *xid = legacy;
    return listed;
}

/* XA <verb> xid, or its legacy form when only that one is prepared. 0 if
 * it ran; 1 if the xid is not known to the server (XAER_NOTA; *xid is the
 * form last tried); -1 with msg on an error. */
static int phase2_sql(MYSQL *conn, const char *verb, myxa_xid_t *xid, char *msg,
                      size_t msglen)
{
    for (int tries = 0; tries < 2; tries++) {
        if (myxa_sql(conn, verb, xid) == 0)
            return 0;
        if (mysql_errno(conn) != ER_XAER_NOTA) {
            myxa_say_db(msg, msglen, conn,
                        strcmp(verb, "COMMIT") ? "rollback" : "commit",
                        xid->show);
            return -1;
        }
        int legacy = tries == 0 ? use_legacy(conn, xid, msg, msglen) : 0;
        if (legacy <= 0)
            return legacy < 0 ? -1 : 1;
    }
    return 1;
}

/* What both phase-2 ops do first: the entry checks (op "commit" or
 * "rollback"; fills *table, *nb and *xid), XA <verb> (phase2_sql) and the
 * reading of an XAER_NOTA (nota_means_gone). 0 if XA <verb> ran, 1 if the
 * xid is not prepared (gone, or never), -1 with msg. */
static int run_phase2(MYSQL *conn, const char **table,
                      const trellis_barrier_branch_t *b, const char *op,
                      const char *verb, trellis_barrier_branch_t *nb,
                      myxa_xid_t *xid, char *msg, size_t msglen)
{
    if (myxa_setup(conn, table, b, op, nb, xid, msg, msglen) != 0)
        return -1;
    int rc = phase2_sql(conn, verb, xid, msg, msglen);
    if (rc < 0 || (rc > 0 && nota_means_gone(conn, xid, msg, msglen) != 0))
        return -1;
    return rc;
}

int trellis_myxa_commit_branch(MYSQL *conn, const char *table,
                               const trellis_barrier_branch_t *b, char *msg,
                               size_t msglen)
{
    myxa_xid_t xid;
    trellis_barrier_branch_t nb;
    int rc =
        run_phase2(conn, &table, b, "commit", "COMMIT", &nb, &xid, msg, msglen);
    if (rc < 0)
        return -1;
    return prepare_row_committed(conn, table, &nb, &xid, rc == 0, msg, msglen);
}

/* sql += 'v', escaped. */
static void append_quoted(char *sql, size_t *n, MYSQL *conn, const char *v)
{
    sql[(*n)++] = '\'';
    *n += mysql_real_escape_string(conn, sql + *n, v, strlen(v));
    sql[(*n)++] = '\'';
    sql[*n] = '\0';
}

static void append(char *sql, size_t *n, const char *text)
{
    size_t len = strlen(text);
    memcpy(sql + *n, text, len + 1);
    *n += len;
}

/* One barrier row's VALUES tuple: (trans_type, gid, branch_id, op,
 * barrier_id, reason = "rollback"). */
static void append_row(char *sql, size_t *n, MYSQL *conn,
                       const trellis_barrier_branch_t *b, const char *op,
                       const char *bid)
{
    const char *v[] = {b->trans_type, b->gid, b->branch_id, op, bid};
    append(sql, n, "(");
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        append_quoted(sql, n, conn, v[i]);
        append(sql, n, ", ");
    }
    append(sql, n, "'rollback')");
}

/* The rollback's barrier rows, own row first (barrier.c's order), as one
 * INSERT IGNORE into sql[SQL_MAX]; returns its length. Values were checked
 * by trellis_barrier_check_branch (at most 128 bytes each), so SQL_MAX holds
 * them escaped. */
static size_t rollback_rows_sql(MYSQL *conn, const char *table,
                                const trellis_barrier_branch_t *b, char *sql)
{
    size_t n = 0;
    const char *bid =
        b->barrier_id ? b->barrier_id : TRELLIS_BARRIER_DEFAULT_ID;
    char head[200];
    snprintf(head, sizeof head,
             "INSERT IGNORE INTO `%s` (trans_type, gid, branch_id, op, "
             "barrier_id, reason) VALUES ",
             table);
    sql[0] = '\0';
    append(sql, &n, head);
    append_row(sql, &n, conn, b, "rollback", bid);
    append(sql, &n, ", ");
    append_row(sql, &n, conn, b, "prepare", bid);
    return n;
}

/* The session's own lock wait is kept in this user variable while the
 * rollback's insert runs with XA_LOCK_WAIT_S; the same statements on
 * MariaDB and MySQL (SET STATEMENT ... FOR is MariaDB's only). */
#define LOCK_WAIT_SAVED "@trellis_xa_lock_wait"

static int set_lock_wait(MYSQL *conn)
{
    char sql[160];
    int n = snprintf(sql, sizeof sql,
                     "SET " LOCK_WAIT_SAVED
                     " = @@SESSION.innodb_lock_wait_timeout, "
                     "SESSION innodb_lock_wait_timeout = %d",
                     XA_LOCK_WAIT_S);
    return mysql_real_query(conn, sql, (unsigned long)n) == 0 ? 0 : -1;
}

static int restore_lock_wait(MYSQL *conn)
{
    return mysql_query(conn,
                       "SET SESSION innodb_lock_wait_timeout = " LOCK_WAIT_SAVED
                       ", " LOCK_WAIT_SAVED " = NULL") == 0
               ? 0
               : -1;
}

/* Run the rollback's insert (set_lock_wait done) and, with autocommit off,
 * commit it; a failed one leaves no transaction open either. 0, or -1
 * with msg. */
static int insert_rollback_rows(MYSQL *conn, const char *sql, size_t n,
                                const myxa_xid_t *xid, char *msg, size_t msglen)
{
    if (mysql_real_query(conn, sql, (unsigned long)n) != 0) {
        if (mysql_errno(conn) == ER_LOCK_WAIT_TIMEOUT)
            myxa_say(
                msg, msglen,
                "xa: a prepare of %s is in flight, or the server dropped "
                "its branch unfinished (its barrier row stayed locked %d s); "
                "retry",
                xid->show, XA_LOCK_WAIT_S);
        else
            myxa_say_db(msg, msglen, conn, "rollback barrier insert",
                        xid->show);
        if (myxa_in_trans(conn))
            mysql_query(conn, "ROLLBACK"); /* autocommit was off */
        return -1;
    }
    if (end_implicit_trans(conn) != 0) {
        /* autocommit was off */
        myxa_say_db(msg, msglen, conn, "rollback barrier commit", xid->show);
        return -1;
    }
    return 0;
}

/* The rollback's barrier rows in one statement whose lock wait is at most
 * XA_LOCK_WAIT_S: the session's innodb_lock_wait_timeout is saved and set
 * first and restored after, also when the insert failed. A failed restore
 * answers -1 (the retry is idempotent). */
static int block_late_prepare(MYSQL *conn, const char *table,
                              const trellis_barrier_branch_t *b,
                              const myxa_xid_t *xid, char *msg, size_t msglen)
{
    char sql[SQL_MAX];
    size_t n = rollback_rows_sql(conn, table, b, sql);
    if (set_lock_wait(conn) != 0) {
        myxa_say_db(msg, msglen, conn, "rollback: bound the lock wait of",
                    xid->show);
        return -1;
    }
    int rc = insert_rollback_rows(conn, sql, n, xid, msg, msglen);
    if (restore_lock_wait(conn) != 0) {
        if (rc == 0)
            myxa_say_db(msg, msglen, conn,
                        "rollback: restore the session's lock wait after",
                        xid->show);
        return -1;
    }
    return rc;
}

int trellis_myxa_rollback_branch(MYSQL *conn, const char *table,
                                 const trellis_barrier_branch_t *b, char *msg,
                                 size_t msglen)
{
    myxa_xid_t xid;
    trellis_barrier_branch_t nb;
    if (run_phase2(conn, &table, b, "rollback", "ROLLBACK", &nb, &xid, msg,
                   msglen) < 0)
        return -1;
    return block_late_prepare(conn, table, &nb, &xid, msg, msglen);
}
