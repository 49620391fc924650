/*
 * engine_call: hand one request to the engine core the way trellisd's
 * gRPC half (tm/tm_api.c, tm/tm_admin.c) does — decode the bytes as the
 * method's request type, run the same checks, call the entry point — for
 * the tests that run the core without gRPC (tests/unit/test_engine.c, the
 * simulator in tests/sim). Query takes the gid as its bytes (NUL
 * included): it has no request to keep.
 */
#ifndef ENGINE_CALL_H
#define ENGINE_CALL_H

#include <stddef.h>

#include "tm_engine.h"

typedef enum {
    ENGINE_CALL_BEGIN,
    ENGINE_CALL_REGISTER,
    ENGINE_CALL_SUBMIT,
    ENGINE_CALL_ABORT,
    ENGINE_CALL_QUERY,
    ENGINE_CALL_FORCE_STOP,
    ENGINE_CALL_RETRY_NOW,
    ENGINE_CALL_START_WORKFLOW,
    ENGINE_CALL_RECORD_STEP,
    ENGINE_CALL_PREPARE_MESSAGE,
} engine_call_method_t;

/* Handle rq (its bytes and rpc) as method on e. Returns what the entry
 * point returned (0, or TM_ENGINE_AGAIN: handle it again from the top),
 * or -1 with err when the bytes do not decode or the checks refuse them
 * (nothing was answered: a test's own request was wrong). */
int engine_call(tm_engine_t *e, engine_call_method_t method,
                const tm_engine_req_t *rq, char *err, size_t errlen);

#endif /* ENGINE_CALL_H */
