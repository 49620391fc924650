/*
 * tm_call: the shape of one branch call, shared by the engine (which asks
 * for calls) and tm_caller (which makes them over gRPC), so that the engine
 * needs no gRPC to be built: metadata entries and the completion callback.
 */
#ifndef TM_CALL_H
#define TM_CALL_H

/* status: a gRPC status code (tm_engine.h's tm_code_t numbers); message:
 * the status details (borrowed for the callback). */
typedef void (*tm_call_done_fn)(void *arg, int status, const char *message);

typedef struct {
    const char *key; /* borrowed until the call is started */
    const char *value;
} tm_md_t;

#endif /* TM_CALL_H */
