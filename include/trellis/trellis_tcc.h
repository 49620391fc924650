/*
 * libtrellis, TCC initiator helper.
 *
 * A TCC transaction: begin; for each branch, register its confirm and
 * cancel with trellisd and then call its try yourself and see the reply;
 * submit when every try succeeded (trellisd confirms every branch), or
 * abort (trellisd cancels every branch that was registered, in reverse
 * order). If the initiator vanishes, the transaction's timeout cancels it.
 *
 * Threads: a trellis_tcc_t is used by one thread at a time.
 * Ownership: *out is the caller's (trellis_tcc_free); reply bytes are
 * malloc'd and the caller's (free).
 */
#ifndef TRELLIS_TCC_H
#define TRELLIS_TCC_H

#include "trellis/trellis.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trellis_tcc trellis_tcc_t;

/* Begin gid (copied) with options o (may be NULL; o->wait_result makes
 * submit/abort wait for the outcome). The client is borrowed and must
 * outlive the tcc. */
trellis_rc_t trellis_tcc_begin(trellis_client_t *c, const char *gid,
                               const trellis_options_t *o, trellis_tcc_t **out,
                               char *err, size_t errlen);

/* Register a branch (id "01", "02", ... in call order) with its confirm
 * and cancel targets ("host:port/package.Service/Method"), then call its
 * try target with the payload and the branch metadata (dtm-gid, dtm-
 * trans_type=tcc, dtm-branch_id, dtm-op=try). Returns the try's status:
 * TRELLIS_OK, TRELLIS_ABORTED for a business refusal, or another code;
 * err holds the participant's message. reply/reply_len may be NULL. */
trellis_rc_t trellis_tcc_call_branch(trellis_tcc_t *t, const char *try_target,
                                     const char *confirm_target,
                                     const char *cancel_target,
                                     const void *payload, size_t payload_len,
                                     uint8_t **reply, size_t *reply_len,
                                     char *err, size_t errlen);

/* Every try succeeded: commit. *status (may be NULL) as trellis_submit. */
trellis_rc_t trellis_tcc_submit(trellis_tcc_t *t,
                                trellis_trans_status_t *status, char *reason,
                                size_t reasonlen, char *err, size_t errlen);

/* Roll back with a reason. *status (may be NULL) as trellis_abort. */
trellis_rc_t trellis_tcc_abort(trellis_tcc_t *t, const char *reason,
                               trellis_trans_status_t *status, char *err,
                               size_t errlen);

const char *trellis_tcc_gid(const trellis_tcc_t *t);
void trellis_tcc_free(trellis_tcc_t *t);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_TCC_H */
