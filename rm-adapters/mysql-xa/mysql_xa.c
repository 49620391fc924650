/*
 * mysql_xa.c: the MySQL/MariaDB XA resource-manager adapter (see
 * trellis/mysql_xa.h): its design notes (below) and the building blocks
 * its other files share (mysql_xa_impl.h: messages, xids, the XA
 * statement, XA RECOVER lookups, the checks of every entry point).
 *
 * The adapter puts the XA statements around a participant's business SQL
 * (phase 1, mysql_xa_prepare.c), runs the phase-2 XA COMMIT / XA ROLLBACK
 * with their idempotence rules (mysql_xa_phase2.c), and the recovery sweep
 * (mysql_xa_recover.c); a file per concern, as each is long enough to be
 * read alone. The barrier row and its checks are barrier.c's building
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
 *     disconnect (test_xa_crash.c, test_commit_racing_disconnect). So a commit
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
#include "mysql_xa_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages ----------------------------------------------------------- */

void myxa_say(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || msglen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

void myxa_say_db(char *msg, size_t msglen, MYSQL *conn, const char *what,
                 const char *xid)
{
    myxa_say(msg, msglen, "xa: %s %s: %s (%u)", what, xid, mysql_error(conn),
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
int myxa_check_part(const char *name, const char *v, int may_dash, char *err,
                    size_t errlen)
{
    if (!v || !*v) {
        myxa_say(err, errlen, "xa: %s is empty", name);
        return -1;
    }
    for (size_t i = 0; v[i]; i++) {
        if (!xid_char_ok(v[i]) || (v[i] == '-' && !may_dash)) {
            myxa_say(
                err, errlen,
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
    if (myxa_check_part("gid", gid, 1, err, errlen) != 0 ||
        myxa_check_part("branch_id", branch_id, 0, err, errlen) != 0)
        return -1;
    size_t n = strlen(gid) + 1 + strlen(branch_id);
    if (n > TRELLIS_MYXA_XID_MAX) {
        myxa_say(
            err, errlen,
            "xa: xid \"%.64s-%.32s\" would be %zu bytes; MySQL's limit is %d",
            gid, branch_id, n, TRELLIS_MYXA_XID_MAX);
        return -1;
    }
    if (!out || outlen <= n) {
        myxa_say(err, errlen, "xa: xid buffer of %zu bytes is too small",
                 outlen);
        return -1;
    }
    snprintf(out, outlen, "%s-%s", gid, branch_id);
    return 0;
}

/* x for gtrid and cluster (NULL or "": the legacy form); both checked. */
void myxa_xid_set(myxa_xid_t *x, const char *gtrid, const char *cluster)
{
    snprintf(x->gtrid, sizeof x->gtrid, "%s", gtrid);
    snprintf(x->bqual, sizeof x->bqual, "%s", cluster ? cluster : "");
    snprintf(x->show, sizeof x->show, "%s%s%s", x->gtrid,
             x->bqual[0] ? "@" : "", x->bqual);
}

/* ---- statements --------------------------------------------------------- */

/* "XA <verb> 'gtrid'[, 'bqual', format]"; our charset needs no escaping. */
int myxa_sql(MYSQL *conn, const char *verb, const myxa_xid_t *x)
{
    char sql[64 + 2 * TRELLIS_MYXA_XID_MAX];
    int n = x->bqual[0]
                ? snprintf(sql, sizeof sql, "XA %s '%s', '%s', %ld", verb,
                           x->gtrid, x->bqual, (long)TRELLIS_MYXA_FORMAT_ID)
                : snprintf(sql, sizeof sql, "XA %s '%s'", verb, x->gtrid);
    return mysql_real_query(conn, sql, (unsigned long)n) == 0 ? 0 : -1;
}

int myxa_in_trans(MYSQL *conn)
{
    unsigned st = 0;
    if (mariadb_get_infov(conn, MARIADB_CONNECTION_SERVER_STATUS, &st) != 0)
        return 0;
    return (st & SERVER_STATUS_IN_TRANS) != 0;
}

/* An XA RECOVER row (formatID, gtrid_length, bqual_length, data) as an
 * xid of ours: 0 and *x filled, or -1 if it is not of either form. */
int myxa_xid_of_row(MYSQL_ROW row, const unsigned long *len, myxa_xid_t *x)
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
    if (q > 0 && myxa_check_part("cluster id", bqual, 1, NULL, 0) != 0)
        return -1;
    myxa_xid_set(x, gtrid, bqual);
    return 0;
}

/* Does XA RECOVER list x? 1, 0, or -1 (error in conn). */
int myxa_xid_listed(MYSQL *conn, const myxa_xid_t *x)
{
    if (mysql_query(conn, "XA RECOVER") != 0)
        return -1;
    MYSQL_RES *r = mysql_store_result(conn);
    if (!r)
        return -1;
    int found = 0;
    MYSQL_ROW row;
    myxa_xid_t got;
    while (!found && (row = mysql_fetch_row(r)))
        found = myxa_xid_of_row(row, mysql_fetch_lengths(r), &got) == 0 &&
                strcmp(got.gtrid, x->gtrid) == 0 &&
                strcmp(got.bqual, x->bqual) == 0;
    mysql_free_result(r);
    return found;
}

/* The branch b with op set to op (b->op must be op, empty or NULL), with
 * its values checked. 0, or -1 with msg. */
static int branch_for(const trellis_barrier_branch_t *b, const char *op,
                      trellis_barrier_branch_t *out, char *msg, size_t msglen)
{
    if (!b) {
        myxa_say(msg, msglen, "xa: no branch");
        return -1;
    }
    if (b->op && *b->op && strcmp(b->op, op) != 0) {
        myxa_say(msg, msglen, "xa: op is \"%.45s\" where \"%s\" was expected",
                 b->op, op);
        return -1;
    }
    *out = *b;
    out->op = op;
    return trellis_barrier_check_branch(out, msg, msglen);
}

/* The checks every entry point makes: conn, table, branch, xid, no open
 * transaction. Fills *nb (op set), *table and xid. 0, or -1 with msg. */
int myxa_setup(MYSQL *conn, const char **table,
               const trellis_barrier_branch_t *b, const char *op,
               trellis_barrier_branch_t *nb, myxa_xid_t *xid, char *msg,
               size_t msglen)
{
    if (!conn) {
        myxa_say(msg, msglen, "xa: no connection");
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
         myxa_check_part("cluster id", nb->cluster_id, 1, msg, msglen) != 0))
        return -1;
    if (nb->cluster_id && strlen(nb->cluster_id) > TRELLIS_MYXA_XID_MAX) {
        myxa_say(msg, msglen,
                 "xa: cluster id \"%.64s...\" is longer than %d bytes",
                 nb->cluster_id, TRELLIS_MYXA_XID_MAX);
        return -1;
    }
    myxa_xid_set(xid, gtrid, nb->cluster_id);
    if (myxa_in_trans(conn)) {
        myxa_say(msg, msglen,
                 "xa: a transaction is already open on the connection");
        return -1;
    }
    return 0;
}
