/*
 * tm_api_msg: the gRPC half of trellisd's message and topic RPCs —
 * PrepareMessage, Subscribe, Unsubscribe and ListSubscriptions (what they
 * do is the engine's: tm_engine_msg.c): their checks, and the engine's
 * answers as protobuf replies.
 *
 * Threads: handlers run on completion-queue threads and block only on the
 * store (the topic RPCs, and a message that names a topic).
 */
#ifndef TM_API_MSG_H
#define TM_API_MSG_H

#include <stddef.h>

#include "tm_api.h"

/* The message methods of trellis.v1.TM, for tm_api_add_methods. */
extern const tm_api_method_t tm_msg_methods[];
extern const size_t tm_msg_n_methods;

/* The reply of an engine answer of kind TM_ANSWER_PREPARE_MESSAGE,
 * TM_ANSWER_SUBSCRIBE, TM_ANSWER_UNSUBSCRIBE or TM_ANSWER_SUBSCRIPTIONS
 * (code OK). */
void tm_msg_reply(tm_rpc_t *rpc, const tm_answer_t *a);

#endif /* TM_API_MSG_H */
