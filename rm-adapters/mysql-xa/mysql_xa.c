/*
 * mysql_xa.c: the MySQL/MariaDB XA resource-manager adapter (see
 * trellis/mysql_xa.h).
 *
 * This file owns the XA statements around a participant's business SQL,
 * the phase-2 XA COMMIT / XA ROLLBACK with their idempotence rules, and the
 * recovery sweep. The barrier row and its checks are barrier.c's building
 * blocks, run inside the XA branch instead of a local transaction.
 *
 *   prepare:  XA START xid
 *             INSERT IGNORE barrier row (op "prepare", reason "prepare")
 *               0 rows: reason "rollback" -> ROLLED_BACK (its rollback came
 *                       first), "prepare" -> DUPLICATE (an earlier prepare
 *                       committed); this attempt is ended and rolled back
 *             fn(conn); XA END xid; XA PREPARE xid; reconnect (below)
 *             XA START answering XAER_DUPID: the xid is prepared (listed by
 *             XA RECOVER) -> DUPLICATE, else another connection is running
 *             the same prepare right now -> ERROR (retry).
 *   commit:   XA COMMIT xid, then one read of the barrier row "prepare"
 *             (reason "prepare"): the commit is reported only when that
 *             row, written inside the branch, is visibly committed (below)
 *   rollback: XA ROLLBACK xid, then one autocommit statement inserting the
 *             barrier rows "rollback" and "prepare" (both reason
 *             "rollback"), so that a prepare arriving later rolls itself
 *             back; a prepare in flight on another connection holds the
 *             "prepare" row's lock, so this statement waits for it, at most
 *             XA_LOCK_WAIT_S (then -1: the TM retries, and its next XA
 *             ROLLBACK finds the branch prepared). The bound is the
 *             session's innodb_lock_wait_timeout, saved and set before the
 *             statement and restored after it (also when it failed).
 *
 * What MariaDB 10.11 does, measured (tests/integration/test_xa.c), and
 * what follows from it:
 *   - after XA PREPARE the session stays attached to the prepared branch:
 *     every other statement on it fails (XAER_RMFAIL), and XA COMMIT /
 *     ROLLBACK of that xid from any other connection answers XAER_NOTA
 *     while XA RECOVER lists it. Only a disconnect detaches it (a prepared
 *     branch survives its client since 10.5). So a prepare ends by
 *     reconnecting the caller's MYSQL in place (mariadb_reconnect: same
 *     parameters, a new session). COM_RESET_CONNECTION and COM_CHANGE_USER
 *     were tried instead: both discard the branch's changes while XA
 *     RECOVER still lists the xid and XA COMMIT answers OK (data lost), so
 *     they are not used;
 *   - hence "XAER_NOTA is success" needs care: a NOTA for an xid that XA
 *     RECOVER still lists means "prepared, but attached to a live
 *     session" (the preparer has not disconnected yet): -1, retry. Only a
 *     NOTA for an unlisted xid is success (already committed or rolled
 *     back, or never prepared);
 *   - and "XA COMMIT answered OK" is not proof either. A session ending
 *     with a prepared branch first hands the xid to the recovered list
 *     (THD::cleanup, trans_xa_detach: XA RECOVER lists it from then on),
 *     and only later, after it has left the process list, detaches the
 *     InnoDB transaction (free_connection, ha_close_connection). An XA
 *     COMMIT from another connection in between finds the xid, finds no
 *     InnoDB transaction to commit, ignores that (the engines' commit by
 *     xid result is dropped), deletes the xid and answers OK: the branch
 *     stays prepared inside InnoDB, invisible, holding its locks, and
 *     unlisted until the server restarts (InnoDB recovery then lists it
 *     again). Seen in 0.1-15 % of commits sent right after a preparer's
 *     disconnect (test_xa.c, test_commit_racing_disconnect). So a commit
 *     is confirmed by reading the prepare's barrier row: visible means
 *     committed; invisible means -1, retried (after a restart of the
 *     server the retry commits it). An XA ROLLBACK that meets the same
 *     window answers OK too, but its barrier insert then waits on the
 *     dropped branch's "prepare" row and times out, so it is retried as
 *     well (3 in 300 in the same race; after a restart they were listed
 *     again and rolled back);
 *   - a connection lost before XA PREPARE: the server rolls the branch back.
 *
 * Invariants:
 *   - every function leaves conn outside any transaction (a failed branch
 *     is ended and rolled back; a prepared one is left behind by the
 *     reconnect);
 *   - an xid is prepared only while its barrier "prepare" row (inside the
 *     branch) has reason "prepare"; once a rollback committed its rows, no
 *     prepare of that xid gets past its INSERT IGNORE;
 *   - the xid's gtrid is "gid-branch_id" of [A-Za-z0-9_.:-] with no '-'
 *     in the branch id, so it needs no quoting and the sweep splits it
 *     back at its last '-'; its bqual is the TM cluster id (same charset)
 *     with formatID TRELLIS_MYXA_FORMAT_ID, or empty with formatID 1 (legacy:
 * the branch came without a cluster id);
 *   - phase 2 tries the branch's own form first and, on XAER_NOTA, the
 *     legacy form when XA RECOVER lists it (one more XA RECOVER for an
 *     unknown xid); it never tries another cluster's form;
 *   - a commit is reported only when the branch's barrier row "prepare"
 *     with reason "prepare" is visible to a plain read on conn, so the
 *     commit needs the prepare's table and barrier id, and barrier rows
 *     must be kept longer than the TM retries a commit.
 *
 * Round trips (measured in the test): prepare 4 + the business SQL + a
 * reconnect (handshake, SET NAMES) + 1-2 process-list polls (8 statements
 * with a one-statement handler); commit 2 (XA COMMIT and the barrier row
 * read; 3 when the xid is unknown: XA RECOVER tells "gone" from
 * "attached"); rollback 4 (XA ROLLBACK, setting the lock wait, the insert,
 * restoring it; 5 when unknown); a cluster-form xid that is
 * unknown costs one more XA RECOVER (the legacy form). One connection runs
 * ~800 prepare+commit pairs/s, about half of what XA without the reconnect
 * does on this machine.
 *
 * Limits, chosen and named: the rollback's lock wait is bounded through the
 * session variable innodb_lock_wait_timeout, the same statements on MariaDB
 * and MySQL (MariaDB's one-statement SET STATEMENT ... FOR does not exist
 * on MySQL), at the cost of two round trips per rollback; the session's
 * own value is kept in the user variable @trellis_xa_lock_wait meanwhile
 * (NULL again after). A connection lost in between takes its session
 * with it; a failed restore answers -1 and leaves the session at
 * XA_LOCK_WAIT_S.
 * The sweep resolves the listed xids of its trellisd's cluster (bqual = the
 * cluster id), whichever database prepared them, and treats a gid trellisd
 * does not know as never committed; a legacy xid (no cluster id) only when
 * trellisd knows the gid as finished, so legacy orphans of unknown gids are
 * the operator's. A legacy xid whose gid collides with one of this
 * cluster's is taken for this cluster's. A late prepare after the sweep rolled
 * back an orphan prepares again (the sweep writes no barrier rows); the next
 * sweep rolls it back. The sweep counts an XA COMMIT or ROLLBACK that
 * answered OK (it knows no barrier table to confirm it by); the window
 * above only opens while the preparer's session is closing, and the sweep
 * resolves branches of finished transactions. A branch the server lost in
 * that window (answered OK, still prepared inside InnoDB) cannot be
 * finished until the server restarts: its commit is retried until then.
 * The adapter's own prepare waits until its old session has left the
 * process list, which leaves only the last part of that window (the
 * InnoDB detach, microseconds later; never hit in 6000 tries, half of them
 * under load).
 */
#include "trellis/mysql_xa.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Server error numbers (mysqld_error.h). */
#define ER_XAER_NOTA 1397
#define ER_XAER_DUPID 1440
#define ER_LOCK_WAIT_TIMEOUT 1205

/* How long a rollback waits for a prepare in flight (seconds); below the
 * TM's default request deadline (3 s), so the answer still reaches it. */
#define XA_LOCK_WAIT_S 2

/* How long a prepare waits for its old session to end (ms). */
#define DETACH_WAIT_MS 1000
#define SQL_MAX 4096

/* ---- messages ----------------------------------------------------------- */

static void say(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || msglen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

static void say_db(char *msg, size_t msglen, MYSQL *conn, const char *what,
                   const char *xid)
{
    say(msg, msglen, "xa: %s %s: %s (%u)", what, xid, mysql_error(conn),
        mysql_errno(conn));
}

/* ---- xids --------------------------------------------------------------- */

static int xid_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
           c == '-';
}

/* A part of an xid: non-empty, our charset; '-' only when may_dash. */
static int check_part(const char *name, const char *v, int may_dash, char *err,
                      size_t errlen)
{
    if (!v || !*v) {
        say(err, errlen, "xa: %s is empty", name);
        return -1;
    }
    for (size_t i = 0; v[i]; i++) {
        if (!xid_char_ok(v[i]) || (v[i] == '-' && !may_dash)) {
            say(err, errlen,
                "xa: %s \"%.64s\" has a character outside [A-Za-z0-9_.:%s] "
                "at %zu%s",
                name, v, may_dash ? "-" : "", i,
                v[i] == '-' ? " (a '-' would make gid-branch_id ambiguous)"
                            : "");
            return -1;
        }
    }
    return 0;
}

int trellis_myxa_make_xid(const char *gid, const char *branch_id, char *out,
                          size_t outlen, char *err, size_t errlen)
{
    if (check_part("gid", gid, 1, err, errlen) != 0 ||
        check_part("branch_id", branch_id, 0, err, errlen) != 0)
        return -1;
    size_t n = strlen(gid) + 1 + strlen(branch_id);
    if (n > TRELLIS_MYXA_XID_MAX) {
        say(err, errlen,
            "xa: xid \"%.64s-%.32s\" would be %zu bytes; MySQL's limit is %d",
            gid, branch_id, n, TRELLIS_MYXA_XID_MAX);
        return -1;
    }
    if (!out || outlen <= n) {
        say(err, errlen, "xa: xid buffer of %zu bytes is too small", outlen);
        return -1;
    }
    snprintf(out, outlen, "%s-%s", gid, branch_id);
    return 0;
}

/* The gid of an xid of our shape into gid[TRELLIS_MYXA_XID_MAX + 1]; -1 if the
 * xid is not ours. */
static int xid_gid(const char *xid, char *gid)
{
    const char *dash = strrchr(xid, '-');
    if (!dash || dash == xid || !dash[1] || strlen(xid) > TRELLIS_MYXA_XID_MAX)
        return -1;
    size_t n = (size_t)(dash - xid);
    memcpy(gid, xid, n);
    gid[n] = '\0';
    if (check_part("gid", gid, 1, NULL, 0) != 0 ||
        check_part("branch_id", dash + 1, 0, NULL, 0) != 0)
        return -1;
    return 0;
}

/* One XID: gtrid "gid-branch_id" and, in the cluster form, bqual = the TM
 * cluster's id with format TRELLIS_MYXA_FORMAT_ID; in the legacy form (no
 * cluster id) an empty bqual with format 1. */
typedef struct {
    char gtrid[TRELLIS_MYXA_XID_MAX + 1];
    char bqual[TRELLIS_MYXA_XID_MAX + 1]; /* "": the legacy form */
    char show[2 * TRELLIS_MYXA_XID_MAX +
              2]; /* for messages: gtrid or gtrid@bqual */
} xa_xid_t;

/* x for gtrid and cluster (NULL or "": the legacy form); both checked. */
static void xid_set(xa_xid_t *x, const char *gtrid, const char *cluster)
{
    snprintf(x->gtrid, sizeof x->gtrid, "%s", gtrid);
    snprintf(x->bqual, sizeof x->bqual, "%s", cluster ? cluster : "");
    snprintf(x->show, sizeof x->show, "%s%s%s", x->gtrid,
             x->bqual[0] ? "@" : "", x->bqual);
}

/* ---- statements --------------------------------------------------------- */

/* "XA <verb> 'gtrid'[, 'bqual', format]"; our charset needs no escaping. */
static int xa_sql(MYSQL *conn, const char *verb, const xa_xid_t *x)
{
    char sql[64 + 2 * TRELLIS_MYXA_XID_MAX];
    int n = x->bqual[0]
                ? snprintf(sql, sizeof sql, "XA %s '%s', '%s', %ld", verb,
                           x->gtrid, x->bqual, (long)TRELLIS_MYXA_FORMAT_ID)
                : snprintf(sql, sizeof sql, "XA %s '%s'", verb, x->gtrid);
    return mysql_real_query(conn, sql, (unsigned long)n) == 0 ? 0 : -1;
}

static int in_trans(MYSQL *conn)
{
    unsigned st = 0;
    if (mariadb_get_infov(conn, MARIADB_CONNECTION_SERVER_STATUS, &st) != 0)
        return 0;
    return (st & SERVER_STATUS_IN_TRANS) != 0;
}

/* An XA RECOVER row (formatID, gtrid_length, bqual_length, data) as an
 * xid of ours: 0 and *x filled, or -1 if it is not of either form. */
static int xid_of_row(MYSQL_ROW row, const unsigned long *len, xa_xid_t *x)
{
    if (!row[0] || !row[1] || !row[2] || !row[3])
        return -1;
    long format = strtol(row[0], NULL, 10);
    unsigned long g = strtoul(row[1], NULL, 10), q = strtoul(row[2], NULL, 10);
    if (g == 0 || g > TRELLIS_MYXA_XID_MAX || q > TRELLIS_MYXA_XID_MAX ||
        g + q != len[3] || memchr(row[3], '\0', len[3]))
        return -1;
    if (!(format == 1 && q == 0) &&
        !(format == TRELLIS_MYXA_FORMAT_ID && q > 0))
        return -1;
    char gtrid[TRELLIS_MYXA_XID_MAX + 1], bqual[TRELLIS_MYXA_XID_MAX + 1];
    memcpy(gtrid, row[3], g);
    gtrid[g] = '\0';
    memcpy(bqual, row[3] + g, q);
    bqual[q] = '\0';
    if (q > 0 && check_part("cluster id", bqual, 1, NULL, 0) != 0)
        return -1;
    xid_set(x, gtrid, bqual);
    return 0;
}

/* Does XA RECOVER list x? 1, 0, or -1 (error in conn). */
static int xid_listed(MYSQL *conn, const xa_xid_t *x)
{
    if (mysql_query(conn, "XA RECOVER") != 0)
        return -1;
    MYSQL_RES *r = mysql_store_result(conn);
    if (!r)
        return -1;
    int found = 0;
    MYSQL_ROW row;
    xa_xid_t got;
    while (!found && (row = mysql_fetch_row(r)))
        found = xid_of_row(row, mysql_fetch_lengths(r), &got) == 0 &&
                strcmp(got.gtrid, x->gtrid) == 0 &&
                strcmp(got.bqual, x->bqual) == 0;
    mysql_free_result(r);
    return found;
}

/* After XAER_NOTA for xid: 0 if XA RECOVER does not list it (no longer
 * prepared, or never), -1 if it is prepared but still attached to a live
 * session (or XA RECOVER failed). A session that ends keeps its prepared
 * xid listed throughout (the recovered flag is set before the session's
 * is cleared), so one look is enough; what "not listed" does not prove
 * (that a commit happened) prepare_row_committed decides. */
static int nota_means_gone(MYSQL *conn, const xa_xid_t *xid, char *msg,
                           size_t msglen)
{
    int listed = xid_listed(conn, xid);
    if (listed < 0) {
        say_db(msg, msglen, conn, "recover (after XAER_NOTA)", xid->show);
        return -1;
    }
    if (listed) {
        say(msg, msglen,
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
    return in_trans(conn) && mysql_query(conn, "COMMIT") != 0 ? -1 : 0;
}

/* End and roll back the branch being built; errors ignored (on a lost
 * connection the server has already rolled it back). Returns out. */
static trellis_myxa_outcome_t abandon(MYSQL *conn, const xa_xid_t *xid,
                                      trellis_myxa_outcome_t out)
{
    xa_sql(conn, "END", xid);
    xa_sql(conn, "ROLLBACK", xid);
    return out;
}

/* The branch b with op set to op (b->op must be op, empty or NULL), with
 * its values checked. 0, or -1 with msg. */
static int branch_for(const trellis_barrier_branch_t *b, const char *op,
                      trellis_barrier_branch_t *out, char *msg, size_t msglen)
{
    if (!b) {
        say(msg, msglen, "xa: no branch");
        return -1;
    }
    if (b->op && *b->op && strcmp(b->op, op) != 0) {
        say(msg, msglen, "xa: op is \"%.45s\" where \"%s\" was expected", b->op,
            op);
        return -1;
    }
    *out = *b;
    out->op = op;
    return trellis_barrier_check_branch(out, msg, msglen);
}

/* The checks every entry point makes: conn, table, branch, xid, no open
 * transaction. Fills *nb (op set), *table and xid. 0, or -1 with msg. */
static int setup(MYSQL *conn, const char **table,
                 const trellis_barrier_branch_t *b, const char *op,
                 trellis_barrier_branch_t *nb, xa_xid_t *xid, char *msg,
                 size_t msglen)
{
    if (!conn) {
        say(msg, msglen, "xa: no connection");
        return -1;
    }
    if (!*table)
        *table = TRELLIS_BARRIER_DEFAULT_TABLE;
    if (trellis_barrier_check_table_name(*table, msg, msglen) != 0 ||
        branch_for(b, op, nb, msg, msglen) != 0)
        return -1;
    char gtrid[TRELLIS_MYXA_XID_MAX + 1];
    if (trellis_myxa_make_xid(nb->gid, nb->branch_id, gtrid, sizeof gtrid, msg,
                              msglen) != 0 ||
        (nb->cluster_id && *nb->cluster_id &&
         check_part("cluster id", nb->cluster_id, 1, msg, msglen) != 0))
        return -1;
    if (nb->cluster_id && strlen(nb->cluster_id) > TRELLIS_MYXA_XID_MAX) {
        say(msg, msglen, "xa: cluster id \"%.64s...\" is longer than %d bytes",
            nb->cluster_id, TRELLIS_MYXA_XID_MAX);
        return -1;
    }
    xid_set(xid, gtrid, nb->cluster_id);
    if (in_trans(conn)) {
        say(msg, msglen, "xa: a transaction is already open on the connection");
        return -1;
    }
    return 0;
}

/* ---- prepare ------------------------------------------------------------ */

/* XA START failed: a duplicate if the xid is prepared already. */
static trellis_myxa_outcome_t start_failed(MYSQL *conn, const xa_xid_t *xid,
                                           char *msg, size_t msglen)
{
    if (mysql_errno(conn) != ER_XAER_DUPID) {
        say_db(msg, msglen, conn, "start", xid->show);
        return TRELLIS_MYXA_ERROR;
    }
    int listed = xid_listed(conn, xid);
    if (listed < 0) {
        say_db(msg, msglen, conn, "recover (after XAER_DUPID)", xid->show);
        return TRELLIS_MYXA_ERROR;
    }
    if (listed) {
        say(msg, msglen, "duplicate: %s is already prepared", xid->show);
        return TRELLIS_MYXA_SKIPPED_DUPLICATE;
    }
    say(msg, msglen,
        "xa: a prepare of %s is running on another connection; retry",
        xid->show);
    return TRELLIS_MYXA_ERROR;
}

/* The barrier row was there already: who put it there decides. */
static trellis_myxa_outcome_t
already_there(MYSQL *conn, const char *table, const trellis_barrier_branch_t *b,
              const char *bid, const xa_xid_t *xid, char *msg, size_t msglen)
{
    char reason[64] = "";
    int found =
        trellis_barrier_read_reason(conn, table, b, bid, reason, sizeof reason);
    if (found < 0) {
        say_db(msg, msglen, conn, "read barrier reason", xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    if (found == 0) {
        say(msg, msglen, "xa: barrier row of %s vanished (purged?); retry",
            xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    if (strcmp(reason, "prepare") == 0) {
        say(msg, msglen, "duplicate: %s was already prepared and committed",
            xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_SKIPPED_DUPLICATE);
    }
    say(msg, msglen,
        "rolled back: the rollback of %s came first; nothing prepared",
        xid->show);
    return abandon(conn, xid, TRELLIS_MYXA_SKIPPED_ROLLED_BACK);
}

/* Inside the started branch: barrier row, business SQL, XA END. Returns
 * TRELLIS_MYXA_PREPARED when the branch is ended and ready to prepare; any
 * other outcome has rolled it back. */
static trellis_myxa_outcome_t run_branch(MYSQL *conn, const char *table,
                                         const trellis_barrier_branch_t *b,
                                         const xa_xid_t *xid,
                                         trellis_barrier_business_fn fn,
                                         void *user, char *msg, size_t msglen)
{
    const char *bid =
        b->barrier_id ? b->barrier_id : TRELLIS_BARRIER_DEFAULT_ID;
    long long own = trellis_barrier_insert_row(conn, table, b, b->op, bid);
    if (own < 0) {
        say_db(msg, msglen, conn, "barrier insert", xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    if (own == 0)
        return already_there(conn, table, b, bid, xid, msg, msglen);

    trellis_barrier_business_rc_t rc = fn(conn, user, msg, msglen);
    if (trellis_barrier_drain_results(conn) != 0 &&
        rc == TRELLIS_BARRIER_BUSINESS_OK) {
        say_db(msg, msglen, conn, "a statement of the handler failed in",
               xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    if (rc != TRELLIS_BARRIER_BUSINESS_OK) {
        if (!*msg)
            say(msg, msglen, "%s",
                rc == TRELLIS_BARRIER_BUSINESS_FAIL ? "business failure"
                                                    : "business error");
        return abandon(conn, xid,
                       rc == TRELLIS_BARRIER_BUSINESS_FAIL
                           ? TRELLIS_MYXA_BUSINESS_FAILURE
                           : TRELLIS_MYXA_ERROR);
    }
    if (xa_sql(conn, "END", xid) != 0) {
        say_db(msg, msglen, conn, "end", xid->show);
        return abandon(conn, xid, TRELLIS_MYXA_ERROR);
    }
    return TRELLIS_MYXA_PREPARED;
}

/* Wait until the server has ended session `id`: its thread leaves the
 * process list only after its cleanup handed the prepared xid to the
 * recovered list, and InnoDB lets go of the branch microseconds later;
 * from then on any connection can commit it (the top of the file: a
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
 * the top of the file), returning once the old one has ended. If the
 * reconnect fails the socket is shut down anyway (mariadb_cancel), which
 * detaches the branch too; the caller then finds the handle disconnected.
 * 0, or -1 with msg. */
static int detach(MYSQL *conn, const xa_xid_t *xid, char *msg, size_t msglen)
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
        say(msg, msglen,
            "xa: %s prepared; the old session did not end within %d ms "
            "(a commit may be told to retry)",
            xid->show, DETACH_WAIT_MS);
        return -1;
    }
    say_db(msg, msglen, conn,
           "prepared; reconnect failed, connection closed:", xid->show);
    mariadb_cancel(conn);
    return -1;
}

static trellis_myxa_outcome_t prepare(MYSQL *conn, const xa_xid_t *xid,
                                      char *msg, size_t msglen)
{
    if (xa_sql(conn, "PREPARE", xid) != 0) {
        say_db(msg, msglen, conn, "prepare", xid->show);
        /* A failed XA PREPARE has rolled back or lost the branch; make
         * sure of the first. */
        xa_sql(conn, "ROLLBACK", xid);
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
    xa_xid_t xid;
    if (!msg || msglen == 0) {
        msg = scratch;
        msglen = sizeof scratch;
    }
    msg[0] = '\0';
    trellis_barrier_branch_t nb;
    if (!fn) {
        say(msg, msglen, "xa: no handler");
        return TRELLIS_MYXA_ERROR;
    }
    if (setup(conn, &table, b, "prepare", &nb, &xid, msg, msglen) != 0)
        return TRELLIS_MYXA_ERROR;
    if (xa_sql(conn, "START", &xid) != 0)
        return start_failed(conn, &xid, msg, msglen);
    trellis_myxa_outcome_t o =
        run_branch(conn, table, &nb, &xid, fn, user, msg, msglen);
    if (o != TRELLIS_MYXA_PREPARED)
        return o;
    return prepare(conn, &xid, msg, msglen);
}

/* ---- phase 2 ------------------------------------------------------------ */

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
 * without committing it (the top of the file); after a NOTA, that it did
 * so for an earlier commit, or that the prepare never succeeded (a commit
 * does not follow one). */
static int prepare_row_committed(MYSQL *conn, const char *table,
                                 const trellis_barrier_branch_t *b,
                                 const xa_xid_t *xid, int answered_ok,
                                 char *msg, size_t msglen)
{
    int visible = prepare_row_visible(conn, table, b);
    if (visible < 0) {
        say_db(msg, msglen, conn, "commit check", xid->show);
        return -1;
    }
    if (!visible && answered_ok) {
        say(msg, msglen,
            "xa: XA COMMIT %s answered OK but the branch is not committed "
            "(its barrier row is not visible): the server dropped the xid "
            "while the preparer's session was closing, and the branch "
            "stays prepared inside InnoDB until the server restarts; retry",
            xid->show);
        return -1;
    }
    if (!visible) {
        say(msg, msglen,
            "xa: %s is neither prepared nor visibly committed (a server "
            "that dropped it while its preparer's session was closing "
            "lists it again once restarted); retry",
            xid->show);
        return -1;
    }
    if (!answered_ok)
        say(msg, msglen, "duplicate: %s is not prepared (already committed)",
            xid->show);
    return 0;
}

/* Phase 2 of a cluster-form xid met XAER_NOTA: if XA RECOVER lists the
 * branch in the legacy form (prepared by an adapter from before cluster
 * ids, or for a prepare that came without a cluster id: an initiator that
 * does not send it), switch *xid to that form and return 1; 0 when not
 * (or *xid is legacy already); -1 with msg when XA RECOVER failed. */
static int use_legacy(MYSQL *conn, xa_xid_t *xid, char *msg, size_t msglen)
{
    if (!xid->bqual[0])
        return 0;
    xa_xid_t legacy;
    xid_set(&legacy, xid->gtrid, NULL);
    int listed = xid_listed(conn, &legacy);
    if (listed < 0) {
        say_db(msg, msglen, conn, "recover (after XAER_NOTA)", xid->show);
        return -1;
    }
    if (listed)
        *xid = legacy;
    return listed;
}

/* XA <verb> xid, or its legacy form when only that one is prepared. 0 if
 * it ran; 1 if the xid is not known to the server (XAER_NOTA; *xid is the
 * form last tried); -1 with msg on an error. */
static int phase2_sql(MYSQL *conn, const char *verb, xa_xid_t *xid, char *msg,
                      size_t msglen)
{
    for (int tries = 0; tries < 2; tries++) {
        if (xa_sql(conn, verb, xid) == 0)
            return 0;
        if (mysql_errno(conn) != ER_XAER_NOTA) {
            say_db(msg, msglen, conn,
                   strcmp(verb, "COMMIT") ? "rollback" : "commit", xid->show);
            return -1;
        }
        int legacy = tries == 0 ? use_legacy(conn, xid, msg, msglen) : 0;
        if (legacy <= 0)
            return legacy < 0 ? -1 : 1;
    }
    return 1;
}

int trellis_myxa_commit_branch(MYSQL *conn, const char *table,
                               const trellis_barrier_branch_t *b, char *msg,
                               size_t msglen)
{
    xa_xid_t xid;
    trellis_barrier_branch_t nb;
    if (setup(conn, &table, b, "commit", &nb, &xid, msg, msglen) != 0)
        return -1;
    int rc = phase2_sql(conn, "COMMIT", &xid, msg, msglen);
    if (rc < 0 || (rc > 0 && nota_means_gone(conn, &xid, msg, msglen) != 0))
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
                                const xa_xid_t *xid, char *msg, size_t msglen)
{
    if (mysql_real_query(conn, sql, (unsigned long)n) != 0) {
        if (mysql_errno(conn) == ER_LOCK_WAIT_TIMEOUT)
            say(msg, msglen,
                "xa: a prepare of %s is in flight, or the server dropped "
                "its branch unfinished (its barrier row stayed locked %d s); "
                "retry",
                xid->show, XA_LOCK_WAIT_S);
        else
            say_db(msg, msglen, conn, "rollback barrier insert", xid->show);
        if (in_trans(conn))
            mysql_query(conn, "ROLLBACK"); /* autocommit was off */
        return -1;
    }
    if (end_implicit_trans(conn) != 0) {
        /* autocommit was off */
        say_db(msg, msglen, conn, "rollback barrier commit", xid->show);
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
                              const xa_xid_t *xid, char *msg, size_t msglen)
{
    char sql[SQL_MAX];
    size_t n = rollback_rows_sql(conn, table, b, sql);
    if (set_lock_wait(conn) != 0) {
        say_db(msg, msglen, conn, "rollback: bound the lock wait of",
               xid->show);
        return -1;
    }
    int rc = insert_rollback_rows(conn, sql, n, xid, msg, msglen);
    if (restore_lock_wait(conn) != 0) {
        if (rc == 0)
            say_db(msg, msglen, conn,
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
    xa_xid_t xid;
    trellis_barrier_branch_t nb;
    if (setup(conn, &table, b, "rollback", &nb, &xid, msg, msglen) != 0)
        return -1;
    int rc = phase2_sql(conn, "ROLLBACK", &xid, msg, msglen);
    if (rc < 0 || (rc > 0 && nota_means_gone(conn, &xid, msg, msglen) != 0))
        return -1;
    return block_late_prepare(conn, table, &nb, &xid, msg, msglen);
}

/* ---- replies ------------------------------------------------------------ */

void trellis_myxa_fill_reply(trellis_myxa_outcome_t outcome, const char *msg,
                             trellis_reply_t *reply)
{
    const char *fallback = "";
    switch (outcome) {
    case TRELLIS_MYXA_PREPARED:
        reply->code = TRELLIS_REPLY_SUCCESS;
        break;
    case TRELLIS_MYXA_SKIPPED_DUPLICATE:
        reply->code = TRELLIS_REPLY_SUCCESS;
        fallback = "duplicate: already prepared";
        break;
    case TRELLIS_MYXA_SKIPPED_ROLLED_BACK:
        reply->code = TRELLIS_REPLY_FAILURE;
        fallback = "rolled back: the rollback came first";
        break;
    case TRELLIS_MYXA_BUSINESS_FAILURE:
        reply->code = TRELLIS_REPLY_FAILURE;
        fallback = "business failure";
        break;
    case TRELLIS_MYXA_ERROR:
    default:
        reply->code = TRELLIS_REPLY_ERROR;
        fallback = "xa error";
        break;
    }
    snprintf(reply->message, sizeof reply->message, "%s",
             msg && *msg ? msg : fallback);
}

/* ---- recovery ----------------------------------------------------------- */

/* A prepared xid the sweep may resolve. */
typedef struct {
    xa_xid_t xid;
    int own; /* 1: of this cluster; 0: the legacy form (no cluster id) */
} sweep_xid_t;

typedef struct {
    size_t n;
    sweep_xid_t *x;
} xid_list_t;

/* The xids XA RECOVER lists that this sweep may touch: the cluster form
 * with our cluster id (own), and the legacy form with a gtrid of our
 * shape. Every other row (another cluster's, another application's) is
 * left out. With cluster "" (a trellisd that names none) the legacy form
 * is the TM's own. */
static int list_ours(MYSQL *conn, const char *cluster, xid_list_t *l)
{
    if (mysql_query(conn, "XA RECOVER") != 0)
        return -1;
    MYSQL_RES *r = mysql_store_result(conn);
    if (!r)
        return -1;
    size_t rows = (size_t)mysql_num_rows(r);
    l->x = calloc(rows ? rows : 1, sizeof *l->x);
    if (!l->x) {
        mysql_free_result(r);
        return -1;
    }
    MYSQL_ROW row;
    char gid[TRELLIS_MYXA_XID_MAX + 1];
    while ((row = mysql_fetch_row(r))) {
        sweep_xid_t *s = &l->x[l->n];
        if (xid_of_row(row, mysql_fetch_lengths(r), &s->xid) != 0 ||
            xid_gid(s->xid.gtrid, gid) != 0)
            continue;
        if (s->xid.bqual[0] && strcmp(s->xid.bqual, cluster) != 0)
            continue; /* another TM cluster's */
        s->own = strcmp(s->xid.bqual, cluster) == 0;
        l->n++;
    }
    mysql_free_result(r);
    return 0;
}

/* What trellisd's view of gid asks for: "COMMIT", "ROLLBACK" or NULL
 * (leave it: unfinished, the TM will decide; or a legacy xid of a gid
 * trellisd does not know). -1 with err if trellisd could not say. */
static int decide(trellis_client_t *client, const char *gid, int own,
                  const char **verb, char *err, size_t errlen)
{
    trellis_trans_info_t *info = NULL;
    char qerr[256] = "";
    trellis_rc_t rc = trellis_query(client, gid, &info, qerr, sizeof qerr);
    *verb = NULL;
    if (rc == TRELLIS_NOT_FOUND) {
        /* Never registered with this cluster: nothing will ever commit it.
         * A legacy xid names no cluster: it may be another TM's. */
        *verb = own ? "ROLLBACK" : NULL;
        return 0;
    }
    if (rc != TRELLIS_OK) {
        say(err, errlen, "xa: recover: query %s: %s (%d)", gid, qerr, rc);
        return -1;
    }
    if (info->status == TRELLIS_TRANS_SUCCEEDED)
        *verb = "COMMIT";
    else if (info->status == TRELLIS_TRANS_FAILED)
        *verb = "ROLLBACK";
    trellis_trans_info_free(info);
    return 0;
}

/* Resolve one xid; counts what it did. 0, or -1 with err. */
static int resolve(MYSQL *conn, trellis_client_t *client, const sweep_xid_t *s,
                   unsigned *committed, unsigned *rolled_back, char *err,
                   size_t errlen)
{
    char gid[TRELLIS_MYXA_XID_MAX + 1];
    const char *verb;
    if (xid_gid(s->xid.gtrid, gid) != 0 ||
        decide(client, gid, s->own, &verb, err, errlen) != 0)
        return -1;
    if (!verb)
        return 0;
    if (xa_sql(conn, verb, &s->xid) != 0) {
        if (mysql_errno(conn) == ER_XAER_NOTA)
            return 0; /* attached to a live session, or just finished */
        say_db(err, errlen, conn,
               strcmp(verb, "COMMIT") ? "rollback" : "commit", s->xid.show);
        return -1;
    }
    (*(strcmp(verb, "COMMIT") == 0 ? committed : rolled_back))++;
    return 0;
}

int trellis_myxa_recover(MYSQL *conn, trellis_client_t *client,
                         unsigned *committed, unsigned *rolled_back, char *err,
                         size_t errlen)
{
    unsigned c = 0, r = 0;
    int rc = 0;
    xid_list_t l = {0};
    char cluster[TRELLIS_CLUSTER_ID_MAX + 1] = "", qerr[256] = "";
    if (!conn || !client) {
        say(err, errlen, "xa: recover: no connection or no client");
        rc = -1;
    } else if (in_trans(conn)) {
        say(err, errlen, "xa: a transaction is already open on the connection");
        rc = -1;
    } else if (trellis_client_cluster_id(client, cluster, sizeof cluster, qerr,
                                         sizeof qerr) != TRELLIS_OK) {
        say(err, errlen, "xa: recover: which TM cluster: %s", qerr);
        rc = -1;
    } else if (list_ours(conn, cluster, &l) != 0) {
        say(err, errlen, "xa: recover: %s (%u)", mysql_error(conn),
            mysql_errno(conn));
        rc = -1;
    }
    /* One failure does not stop the pass; the first one is reported. */
    char one[256];
    for (size_t i = 0; i < l.n; i++) {
        one[0] = '\0';
        if (resolve(conn, client, &l.x[i], &c, &r, one, sizeof one) != 0 &&
            rc == 0) {
            say(err, errlen, "%s", one);
            rc = -1;
        }
    }
    free(l.x);
    if (committed)
        *committed = c;
    if (rolled_back)
        *rolled_back = r;
    return rc;
}
