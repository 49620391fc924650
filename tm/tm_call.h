/*
 * tm_call: the shape of one branch call, shared by the engine (which asks
 * for calls) and tm_caller (which makes them over gRPC), so that the engine
 * needs no gRPC to be built: metadata entries and the completion callback.
 */
#ifndef TM_CALL_H
#define TM_CALL_H

#include <stddef.h>
#include <stdint.h>

/* status: a gRPC status code (tm_engine.h's tm_code_t numbers); message:
 * the status details; reply[reply_len]: the response message's bytes (NULL
 * with 0 when there was none: a failed call, or an empty reply). message
 * and reply are borrowed for the callback: copy what must outlive it. */
typedef void (*tm_call_done_fn)(void *arg, int status, const char *message,
                                const uint8_t *reply, size_t reply_len);

/* One metadata entry. value_len 0: value is a C string; otherwise value
 * holds value_len raw bytes (a binary value, whose key ends in "-bin"). */
typedef struct {
    const char *key; /* borrowed until the call is started */
    const char *value;
    size_t value_len;
} tm_md_t;

/* The compensation log (issue 16): a rollback-side op is sent the reply
 * bytes its branch's forward op answered with (kept with the op, at most
 * --max-action-log of them) under TM_ACTION_LOG_KEY, a binary key that a
 * participant written for DTM's protocol never reads; when they were cut,
 * TM_ACTION_LOG_SIZE_KEY says the reply's full size in decimal. Both are
 * reserved: no branch header may use them. */
#define TM_ACTION_LOG_KEY "trellis-action-result-bin"
#define TM_ACTION_LOG_SIZE_KEY "trellis-action-result-size"

#endif /* TM_CALL_H */
