/*
 * tm_admin: trellisd's operator RPCs — the gRPC half of RetryNow and
 * ForceStop (what they do to a transaction is the engine's:
 * tm_engine_retry_now, tm_engine_force_stop) and SetLogLevel, which
 * concerns the process rather than a transaction.
 *
 * Threads: handlers run on completion-queue threads and do not block.
 */
#ifndef TM_ADMIN_H
#define TM_ADMIN_H

#include <stddef.h>

#include "tm_api.h"

/* The operator methods of trellis.v1.TM, for tm_api_add_methods. */
extern const tm_api_method_t tm_admin_methods[];
extern const size_t tm_admin_n_methods;

/* The reply of an engine answer of kind TM_ANSWER_RETRY_NOW or
 * TM_ANSWER_FORCE_STOP (code OK). */
void tm_admin_reply(tm_rpc_t *rpc, const tm_answer_t *a);

#endif /* TM_ADMIN_H */
