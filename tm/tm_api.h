/*
 * tm_api: the gRPC half of trellisd's services — everything between the
 * bytes tm_server hands over and the engine's entry points. One generic
 * handler decodes any request by its type's descriptor, validates it,
 * and calls the method's action; the engine's answers (tm_answer_t) come
 * back through the front this file provides and leave as protobuf
 * replies. The engine itself knows neither gRPC nor protobuf replies.
 *
 * Methods: trellis.v1.TM (NewGid, Begin, RegisterBranch, Submit, Abort,
 * Query, List, and the operator methods of tm_admin.h),
 * grpc.health.v1.Health/Check, and DTM's dtmgimp.Dtm (tm_api_dtm.h).
 *
 * Threads: handlers run on completion-queue threads and do not block but
 * for a read of the store; the front may be called from any thread.
 */
#ifndef TM_API_H
#define TM_API_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "tm_engine.h"
#include "tm_server.h"

/* One method: its full name, its request type, a check of the decoded
 * request (NULL: none; returns 0, TM_DENIED for PERMISSION_DENIED, or -1
 * for INVALID_ARGUMENT, with err filled) and its action (answers through
 * the engine's front or directly with tm_server_reply; returns 0, or
 * TM_ENGINE_AGAIN to be handled again from the top). reply (NULL: the
 * trellis.v1 reply of the answer's kind, its code as is) turns every
 * engine answer to a call of this method into the reply on the wire: a
 * service with replies of its own (dtmgimp.Dtm, tm_api_dtm.h) sets it. */
typedef struct {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    int (*validate)(const ProtobufCMessage *m, const tm_engine_config_t *cfg,
                    char *err, size_t errlen);
    int (*act)(tm_engine_t *e, const tm_engine_req_t *rq,
               const ProtobufCMessage *m);
    void (*reply)(tm_rpc_t *rpc, const tm_answer_t *a);
} tm_api_method_t;

/* The engine's front over tm_server (answers become protobuf replies). */
void tm_api_front(tm_engine_front_t *out);

/* Register every method of trellisd's services on srv, served by eng
 * (which must outlive srv). Call once, before tm_server_start. */
int tm_api_add_methods(tm_server_t *srv, tm_engine_t *eng, char *err,
                       size_t errlen);

#endif /* TM_API_H */
