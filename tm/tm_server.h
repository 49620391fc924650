/*
 * tm_server: trellisd's gRPC front end on the gRPC C core.
 *
 * One completion queue per worker thread (a thread per core by default);
 * every queue keeps several requests outstanding for each registered
 * method, so the payload arrives with the new call and no extra batch is
 * needed. Methods not registered are answered UNIMPLEMENTED. The same
 * queues carry the TM's own outgoing branch calls (tm_caller), so one
 * thread per core serves both directions and no call ever needs a thread
 * of its own.
 *
 * Every completion carries a tm_tag_t whose on_done says what to do next.
 *
 * Threads: tm_server_reply (or tm_server_drop) may be called from any
 * thread, exactly once per rpc; after it the rpc must not be touched.
 * Handlers run on queue threads and must not block.
 *
 * Cancels: every accepted call has a GRPC_OP_RECV_CLOSE_ON_SERVER batch
 * started before its handler runs, so the server learns at once when a
 * client cancels, loses its connection or passes its deadline; a handler
 * that keeps an rpc for later (a waiter) asks to be told with
 * tm_server_watch_cancel.
 */
#ifndef TM_SERVER_H
#define TM_SERVER_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct tm_tag tm_tag_t;
struct tm_tag {
    void (*on_done)(tm_tag_t *tag, int ok);
};

typedef struct tm_server tm_server_t;
typedef struct tm_rpc tm_rpc_t;

/* A handler gets the request bytes (borrowed for the call) and must reply,
 * now or later, with tm_server_reply. */
typedef void (*tm_method_fn)(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                             void *user);

/* n_threads 0: one per core but one (at least one). max_message: largest
 * request accepted. *out lives until the process exits: trellisd leaves with
 * _exit after tm_server_stop_accepting, never tearing down queues that live
 * calls may still complete on (trellisd.c), so there is no destroy. */
int tm_server_new(int n_threads, size_t max_message, tm_server_t **out,
                  char *err, size_t errlen);

/* Register a method (full name, copied) before tm_server_start. With
 * req_desc (the request's type; NULL: none), a request whose bytes put a
 * NUL inside a string field is answered INVALID_ARGUMENT naming the field
 * (trellis_wire.h) and fn never sees it: protobuf-c would hand fn the
 * string cut at the NUL. Bytes the check cannot walk as that type are
 * answered INVALID_ARGUMENT "malformed request: ..." the same way. */
int tm_server_add_method(tm_server_t *s, const char *method,
                         const ProtobufCMessageDescriptor *req_desc,
                         tm_method_fn fn, void *user, char *err, size_t errlen);

/* Serve with creds (TLS; the server takes them over) instead of plaintext.
 * Call before tm_server_start. */
void tm_server_set_credentials(tm_server_t *s, grpc_server_credentials *creds);

/* The metadata key naming the TM cluster (--cluster-id) on every reply of
 * the TM API and on every call to a participant (tm_caller_set_cluster_id):
 * an XA participant puts it into its XIDs (rm-adapters/mysql-xa/xa.h). */
#define TM_CLUSTER_ID_KEY "trellis-cluster-id"

/* Send the initial metadata TM_CLUSTER_ID_KEY: id (copied; tm_caller.h)
 * with every reply, so that clients learn which TM cluster they talk to
 * (the XA helper and sweep use it). Call before tm_server_start. */
void tm_server_set_cluster_id(tm_server_t *s, const char *id);

/* Bind addr, start serving and the queue threads; *port gets the bound
 * port. */
int tm_server_start(tm_server_t *s, const char *addr, int *port, char *err,
                    size_t errlen);

/* A completion queue for an outgoing call (round robin over the workers). */
grpc_completion_queue *tm_server_next_cq(tm_server_t *s);

/* Send the reply: status (a grpc_status_code), a message for non-OK, and
 * for OK the reply message (packed here; may be NULL for an empty one). */
void tm_server_reply(tm_rpc_t *rpc, grpc_status_code status,
                     const char *message, const ProtobufCMessage *reply);

/* Finish rpc without a reply, for a call whose client is gone (a cancel
 * watch fired): nothing is sent. Counts as the one tm_server_reply of
 * rpc; after it the rpc must not be touched. */
void tm_server_drop(tm_rpc_t *rpc);

/* Told that the client of rpc cancelled it, lost its connection or passed
 * its deadline, with the key given to tm_server_watch_cancel (borrowed for
 * the call). Runs on a queue thread with no lock of tm_server held; rpc
 * stays valid until fn returns, and fn (or whoever holds rpc) must still
 * finish it exactly once, with tm_server_drop or tm_server_reply. */
typedef void (*tm_rpc_cancel_fn)(tm_rpc_t *rpc, void *user, const char *key);

#define TM_SERVER_CANCEL_KEY_MAX 127
#define TM_SERVER_CALL_CLOSED 1

/* Run fn(rpc, user, key) once if rpc's client cancels it before rpc is
 * replied to or dropped (replying or dropping removes the watch; a later
 * watch replaces an earlier one). key (at most TM_SERVER_CANCEL_KEY_MAX
 * bytes) is copied; user must outlive rpc. Returns 0 when watching,
 * TM_SERVER_CALL_CLOSED when the call is already over (cancelled: nobody
 * reads a reply; the caller finishes rpc at once, with tm_server_drop),
 * or -1 with err when key is too long. Any thread; it takes only a lock
 * of its own, so it may be called under any other lock. */
int tm_server_watch_cancel(tm_rpc_t *rpc, tm_rpc_cancel_fn fn, void *user,
                           const char *key, char *err, size_t errlen);

/* The user pointer rpc's method was registered with
 * (tm_server_add_method; borrowed), or NULL for a method not registered.
 * Any thread. */
void *tm_server_rpc_user(const tm_rpc_t *rpc);

/* The values of request metadata key (lower case, as gRPC delivers keys)
 * that rpc carried, in order: the first max go to values[i] (borrowed: as
 * long as rpc) with lens[i] bytes (not NUL-terminated; the bytes as
 * received). Returns how many the request had, which may be more than
 * max. Any thread while rpc is held. */
size_t tm_server_rpc_metadata(const tm_rpc_t *rpc, const char *key,
                              const char **values, size_t *lens, size_t max);

/* 1 once the client's deadline for rpc has passed (nobody waits for the
 * answer any more); 0 without a deadline. */
int tm_server_rpc_expired(const tm_rpc_t *rpc);

/* The reply of an in-process call: status (a grpc_status_code), message
 * ("" for OK), and for OK the packed reply message (reply[len], borrowed
 * for the call; len 0 for an empty one). */
typedef void (*tm_local_done_fn)(void *user, int status, const char *message,
                                 const uint8_t *reply, size_t len);

/* Call method (a full name registered with tm_server_add_method) in
 * process, as if a client had sent req[len] — the same wire check, the same
 * handler, the same reply — for trellisd's own HTTP API (tm_http_api.c),
 * so its facts come from the very code gRPC clients reach. The handler
 * runs on the calling thread; done runs exactly once, on this thread before
 * the call returns or later on any thread (an answer after a write
 * commits). The call has no deadline and is never cancelled: the caller
 * waits for done. Returns 0, or -1 with err (no such method, out of memory;
 * done is then not called). */
int tm_server_call_local(tm_server_t *s, const char *method, const uint8_t *req,
                         size_t len, tm_local_done_fn done, void *user,
                         char *err, size_t errlen);

/* Stop accepting calls: shut the server down and cancel calls in flight.
 * Outgoing calls keep their queues (and threads) until the process exits. */
void tm_server_stop_accepting(tm_server_t *s);

/* Number of incoming calls accepted and not yet finished. */
long tm_server_live_calls(tm_server_t *s);

#endif /* TM_SERVER_H */
