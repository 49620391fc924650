/*
 * xa: the MySQL/MariaDB XA resource-manager adapter (libmariadb).
 *
 * A participant runs its business SQL as an XA branch with one call: XA
 * START xid -> the barrier row and the business SQL -> XA END -> XA PREPARE,
 * with xid = "gid-branch_id" (of a charset that needs no quoting, at most
 * 64 bytes: MySQL's gtrid limit). The change then sits prepared in the
 * database, holding its row locks, until the TM calls the branch's phase-2 op:
 * XA COMMIT xid or XA ROLLBACK xid. Both are idempotent: an unknown XID after a
 * commit or a rollback is success. A rollback that arrives before the prepare
 * leaves a barrier row that makes the late prepare roll itself back (the
 * barrier's hanging rule), so no XID is prepared after its transaction was
 * rolled back.
 *
 * The recovery sweep lists prepared XIDs (XA RECOVER) and resolves those
 * whose global transaction trellisd has finished: committed if it
 * succeeded, rolled back if it failed; so no XID stays prepared for ever.
 *
 * Threads: a MYSQL connection is used by one thread at a time. XA needs the
 * connection to be outside any transaction; every call leaves it so.
 */
#ifndef XA_H
#define XA_H

#include <mysql.h>
#include <stddef.h>

#include "barrier.h"
#include "trellis.h"

/* MySQL's limit on an XID's gtrid part. */
#define XA_XID_MAX 64

typedef enum {
    XA_PREPARED = 0,        /* prepared: waiting for phase 2 */
    XA_SKIPPED_DUPLICATE,   /* already prepared (or already finished) */
    XA_SKIPPED_ROLLED_BACK, /* its rollback came first: nothing prepared */
    XA_BUSINESS_FAILURE,    /* the business SQL refused: rolled back */
    XA_ERROR,               /* database error: rolled back if anything ran */
} xa_outcome_t;

/* The xid "gid-branch_id" into out[outlen]; -1 (err filled) if it would be
 * longer than XA_XID_MAX or has characters outside [A-Za-z0-9_.:-] (the
 * branch id without '-', so that the recovery sweep can split the xid at
 * its last '-'). */
int xa_make_xid(const char *gid, const char *branch_id, char *out,
                size_t outlen, char *err, size_t errlen);

/* Run fn as the XA branch of b (b->op is "prepare"), with the barrier row
 * in barrier table `table` (NULL: the default), and prepare it. msg
 * explains failures.
 *
 * A prepared branch stays attached to its session on MariaDB (nothing else
 * runs on it, and no other connection can commit it) until the session
 * ends; so after XA PREPARE, conn is reconnected in place with the same
 * parameters (mariadb_reconnect): the handle stays valid, but it is a new
 * session, and session state (user variables, SET SESSION) is lost (init
 * commands run again). Once this returns XA_PREPARED any connection can
 * commit or roll the branch back. */
xa_outcome_t xa_prepare_branch(MYSQL *conn, const char *table,
                               const barrier_branch_t *b,
                               barrier_business_fn fn, void *user, char *msg,
                               size_t msglen);

/* Phase 2 (b->op "commit" / "rollback"). 0 on success (including an XID
 * that is already gone), -1 on a database error (the TM retries). */
int xa_commit_branch(MYSQL *conn, const char *table, const barrier_branch_t *b,
                     char *msg, size_t msglen);
int xa_rollback_branch(MYSQL *conn, const char *table,
                       const barrier_branch_t *b, char *msg, size_t msglen);

/* Answer for a participant handler: PREPARED and DUPLICATE are success,
 * ROLLED_BACK and BUSINESS_FAILURE a business failure, ERROR an error. */
void xa_fill_reply(xa_outcome_t outcome, const char *msg,
                   trellis_reply_t *reply);

/* One recovery pass over the prepared XIDs of conn's server whose xid looks
 * like ours: ask trellisd (client) about each gid; commit the ones whose
 * transaction succeeded, roll back the ones that failed, leave the rest.
 * Counts go to *committed and *rolled_back (may be NULL). 0, or -1 with
 * err. */
int xa_recover(MYSQL *conn, trellis_client_t *client, unsigned *committed,
               unsigned *rolled_back, char *err, size_t errlen);

#endif /* XA_H */
