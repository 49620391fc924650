/*
 * libtrellis, hybrid initiator: one global transaction whose branches are
 * of different kinds, chosen per branch (docs/hybrid.md states the rules).
 *
 *   begin
 *   phase 1, in the order the initiator chooses:
 *     call_tcc   register confirm+cancel, then call the try
 *     call_xa    register commit+rollback, then call the prepare
 *     call_saga  register the compensation, then call the action
 *     add_step   a saga step trellisd runs itself after submit
 *   submit      every forward op so far succeeded: trellisd runs the added
 *               steps (in order), then confirms/commits every branch
 *   abort       roll back every branch that may have run, in reverse order
 *
 * A call_* returns the forward op's gRPC status (TRELLIS_OK, TRELLIS_ABORTED
 * for a business refusal, ...); on anything but OK the initiator should
 * abort. Branches called by the initiator get ids "01", "02", ... in call
 * order; steps added with add_step get the ids after those, in order.
 *
 * Threads: a trellis_gtx_t is used by one thread at a time; the client is
 * borrowed, thread safe, and must outlive it. Ownership: *out is the
 * caller's (trellis_gtx_free); reply bytes are malloc'd and the caller's.
 */
#ifndef TRELLIS_GTX_H
#define TRELLIS_GTX_H

#include "trellis/trellis.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trellis_gtx trellis_gtx_t;

trellis_rc_t trellis_gtx_begin(trellis_client_t *c, const char *gid,
                               const trellis_options_t *o, trellis_gtx_t **out,
                               char *err, size_t errlen);

trellis_rc_t trellis_gtx_call_tcc(trellis_gtx_t *g, const char *try_target,
                                  const char *confirm_target,
                                  const char *cancel_target,
                                  const void *payload, size_t payload_len,
                                  uint8_t **reply, size_t *reply_len, char *err,
                                  size_t errlen);

trellis_rc_t trellis_gtx_call_xa(trellis_gtx_t *g, const char *prepare_target,
                                 const char *commit_target,
                                 const char *rollback_target,
                                 const void *payload, size_t payload_len,
                                 uint8_t **reply, size_t *reply_len, char *err,
                                 size_t errlen);

/* An initiator-run saga step: compensate_target is registered first, then
 * the action is called (dtm-trans_type saga, dtm-op action). */
trellis_rc_t trellis_gtx_call_saga(trellis_gtx_t *g, const char *action_target,
                                   const char *compensate_target,
                                   const void *payload, size_t payload_len,
                                   uint8_t **reply, size_t *reply_len,
                                   char *err, size_t errlen);

/* A saga step trellisd runs after submit, after the steps added before it
 * (payload copied). Nothing is sent until submit. */
trellis_rc_t trellis_gtx_add_step(trellis_gtx_t *g, const char *action_target,
                                  const char *compensate_target,
                                  const void *payload, size_t payload_len,
                                  char *err, size_t errlen);

/* *status as trellis_submit (final when the options say wait_result). */
trellis_rc_t trellis_gtx_submit(trellis_gtx_t *g,
                                trellis_trans_status_t *status, char *reason,
                                size_t reasonlen, char *err, size_t errlen);

trellis_rc_t trellis_gtx_abort(trellis_gtx_t *g, const char *reason,
                               trellis_trans_status_t *status, char *err,
                               size_t errlen);

const char *trellis_gtx_gid(const trellis_gtx_t *g);
void trellis_gtx_free(trellis_gtx_t *g);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_GTX_H */
