/*
 * trellis/mysql_xa.h: the MySQL/MariaDB XA resource-manager adapter
 * (libmariadb; library trellis_mysql_xa, names trellis_myxa_* and
 * TRELLIS_MYXA_*), for participants. Not the SDK's XA initiator helper
 * (trellis/trellis_xa.h, trellis_xa_*), which drives a transaction's
 * branches from the initiator's side.
 *
 * A participant runs its business SQL as an XA branch with one call: XA
 * START xid -> the barrier row and the business SQL -> XA END -> XA PREPARE,
 * with xid = gtrid "gid-branch_id" (of a charset that needs no quoting, at
 * most 64 bytes: MySQL's gtrid limit), bqual = the TM cluster's id (the
 * branch's cluster_id: the trellis-cluster-id header trellisd and the SDK's
 * helpers send) and formatID TRELLIS_MYXA_FORMAT_ID; a branch without a cluster
 * id gets the legacy form (empty bqual, formatID 1), and phase 2 of a branch
 * with one also finds a legacy-form XID left by an older prepare. The
 * change then sits prepared in the
 * database, holding its row locks, until the TM calls the branch's phase-2 op:
 * XA COMMIT xid or XA ROLLBACK xid. Both are idempotent: an unknown XID after a
 * commit or a rollback is success. A rollback that arrives before the prepare
 * leaves a barrier row that makes the late prepare roll itself back (the
 * barrier's hanging rule), so no XID is prepared after its transaction was
 * rolled back.
 *
 * The recovery sweep lists prepared XIDs (XA RECOVER) and resolves those
 * of its trellisd's cluster whose global transaction trellisd has finished:
 * committed if it succeeded, rolled back if it failed or trellisd never
 * heard of it; so no XID stays prepared for ever. Another cluster's XIDs
 * are never touched, nor a legacy-form XID of a gid trellisd does not know
 * (it names no cluster, so it may be another TM's).
 *
 * Threads: a MYSQL connection is used by one thread at a time. XA needs the
 * connection to be outside any transaction; every call leaves it so.
 */
#ifndef TRELLIS_MYSQL_XA_H
#define TRELLIS_MYSQL_XA_H

#include <mysql.h>
#include <stddef.h>

#include "trellis/barrier.h"
#include "trellis/trellis.h"

#ifdef __cplusplus
extern "C" {
#endif

/* MySQL's limit on an XID's gtrid part (and on its bqual part). */
#define TRELLIS_MYXA_XID_MAX 64

/* The formatID of the cluster form of our XIDs ("TRLS"); the legacy form
 * (no cluster id) has format 1. */
#define TRELLIS_MYXA_FORMAT_ID 0x54524C53L

typedef enum {
    TRELLIS_MYXA_PREPARED = 0,      /* prepared: waiting for phase 2 */
    TRELLIS_MYXA_SKIPPED_DUPLICATE, /* already prepared (or already finished) */
    TRELLIS_MYXA_SKIPPED_ROLLED_BACK, /* its rollback came first: nothing
                                         prepared */
    TRELLIS_MYXA_BUSINESS_FAILURE, /* the business SQL refused: rolled back */
    TRELLIS_MYXA_ERROR, /* database error: rolled back if anything ran */
} trellis_myxa_outcome_t;

/* The xid "gid-branch_id" into out[outlen]; -1 (err filled) if it would be
 * longer than TRELLIS_MYXA_XID_MAX or has characters outside [A-Za-z0-9_.:-]
 * (the branch id without '-', so that the recovery sweep can split the xid at
 * its last '-'). */
int trellis_myxa_make_xid(const char *gid, const char *branch_id, char *out,
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
 * commands run again). Once this returns TRELLIS_MYXA_PREPARED any connection
 * can commit or roll the branch back. */
trellis_myxa_outcome_t trellis_myxa_prepare_branch(
    MYSQL *conn, const char *table, const trellis_barrier_branch_t *b,
    trellis_barrier_business_fn fn, void *user, char *msg, size_t msglen);

/* Phase 2 (b->op "commit" / "rollback"). 0 on success (including an XID
 * that is already gone), -1 on a database error or when the outcome is not
 * certain yet (the TM retries). A commit succeeds only once the barrier row
 * its prepare wrote inside the branch is visibly committed, so it takes the
 * prepare's table and barrier id: the server can answer XA COMMIT with OK
 * and not commit (a commit that meets the branch while the session that
 * prepared it is closing; see mysql_xa.c). */
int trellis_myxa_commit_branch(MYSQL *conn, const char *table,
                               const trellis_barrier_branch_t *b, char *msg,
                               size_t msglen);
int trellis_myxa_rollback_branch(MYSQL *conn, const char *table,
                                 const trellis_barrier_branch_t *b, char *msg,
                                 size_t msglen);

/* Answer for a participant handler: PREPARED and DUPLICATE are success,
 * ROLLED_BACK and BUSINESS_FAILURE a business failure, ERROR an error. */
void trellis_myxa_fill_reply(trellis_myxa_outcome_t outcome, const char *msg,
                             trellis_reply_t *reply);

/* One recovery pass over the prepared XIDs of conn's server: learn the
 * cluster id of trellisd (client; trellis_client_cluster_id), then for each
 * XID of that cluster ask trellisd about its gid: commit it if the
 * transaction succeeded, roll it back if it failed or is unknown, leave it
 * while unfinished. Legacy-form XIDs (no cluster id) are resolved only when
 * trellisd knows their gid as finished. XIDs of other clusters and other
 * applications are left alone. With a trellisd that names no cluster
 * (older), the legacy form counts as its own. Counts go to *committed and
 * *rolled_back (may be NULL). 0, or -1 with err (trellisd unreachable:
 * nothing is touched). */
int trellis_myxa_recover(MYSQL *conn, trellis_client_t *client,
                         unsigned *committed, unsigned *rolled_back, char *err,
                         size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_MYSQL_XA_H */
