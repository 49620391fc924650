/*
 * tm_caller: the TM's asynchronous unary calls to participants.
 *
 * A call is one batch (send metadata + message + close, receive metadata +
 * message + status) started on one of the server's completion queues; its
 * completion runs `done` on that queue's thread. No thread waits for a
 * participant, so thousands of calls in flight cost only their memory.
 *
 * Channels are cached per host:port, and each method is registered once
 * per channel (grpc_channel_register_call), so a call costs no string
 * parsing in gRPC. All calls to one host:port share one HTTP/2 connection.
 *
 * Threads: tm_caller_start may be called from any thread.
 */
#ifndef TM_CALLER_H
#define TM_CALLER_H

#include <stddef.h>
#include <stdint.h>

#include "tm_call.h"
#include "tm_server.h"

typedef struct tm_caller tm_caller_t;

/* *out, its channels and cached targets live until the process exits,
 * like the server whose queues the calls complete on (tm_server_new: no
 * teardown while calls may be in flight). */
int tm_caller_new(tm_server_t *server, size_t max_message, tm_caller_t **out,
                  char *err, size_t errlen);

/* Call participants over TLS with creds (the caller takes them over)
 * instead of plaintext; server_name (copied; NULL or "": the target's host)
 * is the name their certificates must carry. Call before the first
 * tm_caller_start. */
void tm_caller_set_credentials(tm_caller_t *c, grpc_channel_credentials *creds,
                               const char *server_name);

/* Send TM_CLUSTER_ID_KEY: id (copied) with every call, after the call's
 * own metadata. Call before the first tm_caller_start. */
void tm_caller_set_cluster_id(tm_caller_t *c, const char *id);

/* Asked before each call is started: non-zero refuses the start (with err
 * filled), and tm_caller_start returns -1 as for a call gRPC cannot start
 * — the engine's path for a call that could not be sent. Made for
 * trellisd-faults (tests/faults), which refuses the calls of one method on
 * command: no real target makes gRPC refuse a start (a bad or unresolvable
 * one gets a call that fails), so only this reaches that path. fn runs on
 * the thread of tm_caller_start and must not block; user must outlive c.
 * NULL: no gate. Set before the first tm_caller_start. */
typedef int (*tm_caller_gate_fn)(void *user, const char *host_port,
                                 const char *method, char *err, size_t errlen);
void tm_caller_set_start_gate(tm_caller_t *c, tm_caller_gate_fn fn, void *user);

/* Start a call of method ("/package.Service/Method") on host_port with the
 * payload (copied) and metadata (copied; binary values by their length,
 * tm_call.h), due within timeout_ms. Returns 0 and later runs done(arg,
 * status, message, reply, reply_len) exactly once, reply the response
 * message's bytes (borrowed for the callback); or returns -1 with err
 * filled and never runs done. */
int tm_caller_start(tm_caller_t *c, const char *host_port, const char *method,
                    const uint8_t *payload, size_t len, const tm_md_t *md,
                    size_t n_md, uint32_t timeout_ms, tm_call_done_fn done,
                    void *arg, char *err, size_t errlen);

/* Calls started and not yet completed. */
long tm_caller_inflight(tm_caller_t *c);

#endif /* TM_CALLER_H */
