/*
 * mysql_xa_impl: what the XA adapter's files share (library
 * trellis_mysql_xa; not installed, not API) — messages, the xid and its
 * checks, the XA statement, XA RECOVER lookups and the checks every entry
 * point makes. They live in mysql_xa.c, with the adapter's design notes.
 *
 * Who owns what:
 *   mysql_xa.c         — the design notes, the building blocks below,
 *                        trellis_myxa_make_xid;
 *   mysql_xa_prepare.c — phase 1 (trellis_myxa_prepare_branch) and the
 *                        participant's reply (trellis_myxa_fill_reply);
 *   mysql_xa_phase2.c  — XA COMMIT / XA ROLLBACK (trellis_myxa_commit_branch,
 *                        trellis_myxa_rollback_branch);
 *   mysql_xa_recover.c — the recovery sweep (trellis_myxa_recover).
 *
 * Names here start with `myxa_`, never `trellis_myxa_` (the public API).
 */
#ifndef MYSQL_XA_IMPL_H
#define MYSQL_XA_IMPL_H

#include <stddef.h>

#include "trellis/mysql_xa.h"

/* Server error numbers (mysqld_error.h). */
#define ER_XAER_NOTA 1397
#define ER_XAER_DUPID 1440
#define ER_LOCK_WAIT_TIMEOUT 1205

/* One XID: gtrid "gid-branch_id" and, in the cluster form, bqual = the TM
 * cluster's id with format TRELLIS_MYXA_FORMAT_ID; in the legacy form (no
 * cluster id) an empty bqual with format 1. */
typedef struct {
    char gtrid[TRELLIS_MYXA_XID_MAX + 1];
    char bqual[TRELLIS_MYXA_XID_MAX + 1]; /* "": the legacy form */
    char show[2 * TRELLIS_MYXA_XID_MAX +
              2]; /* for messages: gtrid or gtrid@bqual */
} myxa_xid_t;

/* ---- messages ---- */

/* printf into msg[msglen] (nothing when msg is NULL or msglen 0). */
void myxa_say(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "xa: <what> <xid>: <the connection's error> (<errno>)". */
void myxa_say_db(char *msg, size_t msglen, MYSQL *conn, const char *what,
                 const char *xid);

/* ---- xids ---- */

/* A part of an xid: non-empty, our charset; '-' only when may_dash. 0, or
 * -1 with err (may be NULL). */
int myxa_check_part(const char *name, const char *v, int may_dash, char *err,
                    size_t errlen);

/* x for gtrid and cluster (NULL or "": the legacy form); both checked. */
void myxa_xid_set(myxa_xid_t *x, const char *gtrid, const char *cluster);

/* An XA RECOVER row (formatID, gtrid_length, bqual_length, data) as an
 * xid of ours: 0 and *x filled, or -1 if it is not of either form. */
int myxa_xid_of_row(MYSQL_ROW row, const unsigned long *len, myxa_xid_t *x);

/* ---- statements ---- */

/* "XA <verb> 'gtrid'[, 'bqual', format]". 0, or -1 (error in conn). */
int myxa_sql(MYSQL *conn, const char *verb, const myxa_xid_t *x);

/* Does the server report a transaction open on conn? 1 or 0. */
int myxa_in_trans(MYSQL *conn);

/* Does XA RECOVER list x? 1, 0, or -1 (error in conn). */
int myxa_xid_listed(MYSQL *conn, const myxa_xid_t *x);

/* The checks every entry point makes: conn, table, branch, xid, no open
 * transaction. Fills *nb (op set), *table and xid. 0, or -1 with msg. */
int myxa_setup(MYSQL *conn, const char **table,
               const trellis_barrier_branch_t *b, const char *op,
               trellis_barrier_branch_t *nb, myxa_xid_t *xid, char *msg,
               size_t msglen);

#endif /* MYSQL_XA_IMPL_H */
