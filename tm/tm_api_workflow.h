/*
 * tm_api_workflow: the gRPC half of trellisd's workflow RPCs,
 * StartWorkflow and RecordStep (what they do is the engine's:
 * tm_engine_workflow.c): their checks, and the engine's answers as
 * protobuf replies.
 *
 * Threads: handlers run on completion-queue threads and do not block.
 */
#ifndef TM_API_WORKFLOW_H
#define TM_API_WORKFLOW_H

#include <stddef.h>

#include "tm_api.h"

/* The workflow methods of trellis.v1.TM, for tm_api_add_methods. */
extern const tm_api_method_t tm_workflow_methods[];
extern const size_t tm_workflow_n_methods;

/* The reply of an engine answer of kind TM_ANSWER_START_WORKFLOW or
 * TM_ANSWER_RECORD_STEP (code OK). */
void tm_workflow_reply(tm_rpc_t *rpc, const tm_answer_t *a);

#endif /* TM_API_WORKFLOW_H */
