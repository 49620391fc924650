/*
 * libtrellis, XA initiator helper.
 *
 * An XA transaction: begin; for each branch, register its commit and
 * rollback with trellisd and then call its prepare yourself and see the
 * reply (the participant runs its SQL as an XA branch and prepares it:
 * XA START, the SQL, XA END, XA PREPARE; trellis/mysql_xa.h); submit
 * when every prepare succeeded (trellisd calls every branch's commit: XA
 * COMMIT), or abort (trellisd calls every registered branch's rollback, in
 * reverse order: XA ROLLBACK, which also stops a prepare that has not
 * happened yet). If the initiator vanishes, the transaction's timeout rolls
 * it back.
 *
 * Threads: a trellis_xa_t is used by one thread at a time; the client it
 * borrows is thread safe, so many trellis_xa_t may share one client.
 * Ownership: *out is the caller's (trellis_xa_free); reply bytes are
 * malloc'd and the caller's (free); every string argument is borrowed for
 * the call only (the gid and the options' headers are copied).
 */
#ifndef TRELLIS_XA_H
#define TRELLIS_XA_H

#include "trellis/trellis.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trellis_xa trellis_xa_t;

/* Begin gid (copied) with options o (may be NULL; o->wait_result makes
 * submit/abort wait for the outcome; o->request_timeout_ms is also the
 * deadline of each prepare this helper sends). The client is borrowed and
 * must outlive the xa. */
trellis_rc_t trellis_xa_begin(trellis_client_t *c, const char *gid,
                              const trellis_options_t *o, trellis_xa_t **out,
                              char *err, size_t errlen);

/* Register a branch (id "01", "02", ... in call order; mode xa) with its
 * commit and rollback targets ("host:port/package.Service/Method"), then
 * call its prepare target with the payload and the branch metadata
 * (dtm-gid, dtm-trans_type=xa, dtm-branch_id, dtm-op=prepare, plus the
 * options' headers). Returns the prepare's status: TRELLIS_OK (prepared),
 * TRELLIS_ABORTED for a business refusal, or another code (unknown: the
 * branch may or may not be prepared; abort, and trellisd's rollback settles
 * it); err holds the participant's message. A target that is not
 * well formed is INVALID_ARGUMENT and nothing is sent. reply/reply_len may
 * be NULL. */
trellis_rc_t trellis_xa_call_branch(trellis_xa_t *x, const char *prepare_target,
                                    const char *commit_target,
                                    const char *rollback_target,
                                    const void *payload, size_t payload_len,
                                    uint8_t **reply, size_t *reply_len,
                                    char *err, size_t errlen);

/* Every prepare succeeded: commit. *status (may be NULL) as trellis_submit. */
trellis_rc_t trellis_xa_submit(trellis_xa_t *x, trellis_trans_status_t *status,
                               char *reason, size_t reasonlen, char *err,
                               size_t errlen);

/* Roll back with a reason. *status (may be NULL) as trellis_abort. */
trellis_rc_t trellis_xa_abort(trellis_xa_t *x, const char *reason,
                              trellis_trans_status_t *status, char *err,
                              size_t errlen);

/* The gid, owned by x (valid until trellis_xa_free); NULL for a NULL x. */
const char *trellis_xa_gid(const trellis_xa_t *x);

/* Release x (NULL is fine). Sends nothing: a transaction neither submitted
 * nor aborted is rolled back by its timeout. */
void trellis_xa_free(trellis_xa_t *x);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_XA_H */
