/*
 * libtrellis, participant side: serve branch handlers over gRPC.
 *
 * A participant registers one handler per full method name
 * ("/package.Service/Method") and starts a gRPC server. For each call the
 * handler receives the branch context that trellisd (or an initiator) sent
 * as metadata (dtm-gid, dtm-trans_type, dtm-branch_id, dtm-op), the
 * transaction's branch headers (the rest of the metadata) and the request
 * payload, and answers with one of four outcomes, which map to the
 * gRPC statuses trellisd reads:
 *
 *   TRELLIS_REPLY_SUCCESS  -> OK
 *   TRELLIS_REPLY_FAILURE  -> ABORTED             (business failure)
 *   TRELLIS_REPLY_ONGOING  -> FAILED_PRECONDITION (still in progress, retry)
 *   TRELLIS_REPLY_ERROR    -> UNAVAILABLE         (unknown; retried with
 * backoff)
 *
 * Threads: handlers run on the server's worker threads (n_threads, default
 * 4), so several handlers may run at once; a handler that blocks holds one
 * worker. Handlers must be registered before trellis_participant_start.
 */
#ifndef TRELLIS_PARTICIPANT_H
#define TRELLIS_PARTICIPANT_H

#include <stddef.h>
#include <stdint.h>

#include "trellis/trellis.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Borrowed for the duration of the handler call; empty strings when the
 * caller sent no such metadata.
 *
 * The headers are the call's other metadata: the transaction's
 * options.branch_headers, which trellisd sends with every branch call, the
 * W3C trace context of the request that created the transaction
 * (TRELLIS_TRACEPARENT_HEADER, TRELLIS_TRACESTATE_HEADER; trellis.h), and
 * whatever else the caller's gRPC stack added (such as user-agent). Every
 * request metadata entry whose key does not start with "dtm-", "grpc-" or ":"
 * and does not end in "-bin" is listed (trellis-action-result-size too), in the
 * order received (a key sent twice is listed twice); keys are lower-case, as
 * gRPC delivers them. The arrays and their strings belong to the library and
 * are valid only until the handler returns: copy what must outlive the call.
 * header_keys and header_values may be NULL when n_headers is 0. New fields are
 * only ever added at the end. */
typedef struct {
    const char *gid;
    const char *trans_type; /* "saga", "tcc", "xa" */
    const char *branch_id;
    const char *op;     /* "action", "compensate", "try", ... */
    const char *method; /* the full method name called */
    size_t n_headers;
    const char *const *header_keys;   /* header_keys[i] pairs with */
    const char *const *header_values; /* header_values[i] */
    /* The compensation log: on a rollback-side op called by trellisd (a
     * saga compensate), the reply bytes the branch's forward op answered
     * with, as trellisd kept them (metadata TRELLIS_ACTION_RESULT_HEADER);
     * NULL with 0 when the call carried none. action_result_size is the
     * reply's full size: more than action_result_len when trellisd kept
     * it cut (--max-action-log; metadata TRELLIS_ACTION_RESULT_SIZE_HEADER),
     * else equal. Read them through the functions below. */
    const uint8_t *action_result;
    size_t action_result_len;
    uint64_t action_result_size;
} trellis_branch_ctx_t;

/* The compensation log's metadata keys (trellisd --max-action-log): the
 * kept reply bytes as a binary value (gRPC's "-bin" keys, which a
 * participant written for DTM's protocol never reads), and, only when they
 * were cut, the reply's full size in decimal. */
#define TRELLIS_ACTION_RESULT_HEADER "trellis-action-result-bin"
#define TRELLIS_ACTION_RESULT_SIZE_HEADER "trellis-action-result-size"

/* The compensation log of this call: the bytes the branch's forward op
 * (the saga action) replied with, so an undo can name what the do created
 * (a booking number, a payment id). Returns them with *len (borrowed like
 * the context), or NULL with *len 0 when the call carried none: not a
 * rollback-side op, an action that replied nothing, trellisd run with
 * --max-action-log 0, or a caller that is not trellisd. */
const uint8_t *trellis_branch_ctx_action_result(const trellis_branch_ctx_t *ctx,
                                                size_t *len);

/* 1 when the log was cut (the action replied more than trellisd keeps),
 * with the reply's full size in *full_size (may be NULL); 0 otherwise,
 * *full_size then the log's own length. */
int trellis_branch_ctx_action_result_cut(const trellis_branch_ctx_t *ctx,
                                         uint64_t *full_size);

/* The value of the first header whose key equals key (ASCII case ignored),
 * or NULL when the call carried none. Borrowed like the context. The
 * dtm-* fields are not headers: read them from the context. */
const char *trellis_branch_ctx_header(const trellis_branch_ctx_t *ctx,
                                      const char *key);

/* ---- completion listeners ---------------------------------------------- */

/* What a completion listener (trellis_options_t.listeners) is told: the
 * request of its call (dtm-trans_type "event", dtm-op "notify",
 * dtm-branch_id "ev1", "ev2", ... — behind the barrier it takes effect
 * once). */
typedef struct {
    char gid[65];
    char branch_id[33]; /* the listener's branch: "ev1", "ev2", ... */
    trellis_trans_status_t status; /* TRELLIS_TRANS_SUCCEEDED or _FAILED */
    char reason[1025];             /* why it failed; "" when it succeeded */
    int64_t created_ms;            /* wall clock, ms since the epoch */
    int64_t finished_ms;           /* when the outcome was reached */
} trellis_completion_event_t;

/* Decode the request bytes a listener's handler is passed (payload, len)
 * into *ev. TRELLIS_OK, or TRELLIS_INVALID_ARGUMENT with err filled when the
 * bytes are not a CompletionEvent. */
trellis_rc_t trellis_completion_event_parse(const uint8_t *payload, size_t len,
                                            trellis_completion_event_t *ev,
                                            char *err, size_t errlen);

/* A batching listener (trellis_options_t.listener_batch) is called with
 * dtm-op "notify_batch" and no gid or branch id: the request holds the
 * events of one or more transactions. Decode them into *events (an array
 * of *n, malloc'ed, the caller frees it with free()). An OK answer stands
 * for every event in it; any other status has each sent again, perhaps in
 * another batch — so apply each behind the barrier under its own key
 * (gid, trans_type "event", branch_id, op "notify"). TRELLIS_OK, or
 * TRELLIS_INVALID_ARGUMENT with err filled (and *events NULL) when the
 * bytes are not a CompletionEventBatch or an event lacks its gid or
 * branch id. */
trellis_rc_t
trellis_completion_event_batch_parse(const uint8_t *payload, size_t len,
                                     trellis_completion_event_t **events,
                                     size_t *n, char *err, size_t errlen);

/* What a branch listener (trellis_options_t.branch_listeners) is told
 * about one branch once it is settled: the request of its call
 * (dtm-trans_type "branch_event", dtm-op "notify", dtm-branch_id
 * "ev-<branch id>-<n>" — behind the barrier it takes effect once). An op
 * status is a trellis.v1.OpStatus (1 pending: called, no final answer;
 * 2 succeeded; 3 failed; 4 skipped: never called), 0 when the branch has
 * no such op; an op kind a trellis_op_kind_t, 0 for none. */
typedef struct {
    char gid[65];
    char branch_id[33];
    trellis_mode_t mode;
    int forward_status;
    int phase2_op; /* the op of the side taken (confirm, compensate) */
    int phase2_status;
    int committed;         /* 1: the transaction commits; 0: it rolls back */
    char last_error[1153]; /* the forward op's last error; "" when none */
    int64_t finished_ms;   /* the branch's latest op finish */
} trellis_branch_event_t;

/* Decode a branch listener's request bytes into *ev: TRELLIS_OK, or
 * TRELLIS_INVALID_ARGUMENT with err filled when they are not a
 * BranchEvent. */
trellis_rc_t trellis_branch_event_parse(const uint8_t *payload, size_t len,
                                        trellis_branch_event_t *ev, char *err,
                                        size_t errlen);

typedef enum {
    TRELLIS_REPLY_SUCCESS = 0,
    TRELLIS_REPLY_FAILURE = 1,
    TRELLIS_REPLY_ONGOING = 2,
    TRELLIS_REPLY_ERROR = 3,
} trellis_reply_code_t;

/* What a handler answers. `body` (may be NULL) is malloc'd by the handler
 * and freed by the library after sending; `message` is copied (room for
 * what trellisd keeps of it: a reason of up to 1024 bytes). */
typedef struct {
    trellis_reply_code_t code;
    char message[1024];
    uint8_t *body;
    size_t body_len;
} trellis_reply_t;

/* reply is zeroed (code SUCCESS) before the call. */
typedef void (*trellis_handler_fn)(const trellis_branch_ctx_t *ctx,
                                   const uint8_t *payload, size_t payload_len,
                                   trellis_reply_t *reply, void *user);

typedef struct trellis_participant trellis_participant_t;

/* n_threads 0: 4. *out is the caller's: trellis_participant_free. */
trellis_rc_t trellis_participant_new(int n_threads, trellis_participant_t **out,
                                     char *err, size_t errlen);

/* Route calls of method (copied) to fn; user is passed through. */
trellis_rc_t trellis_participant_handle(trellis_participant_t *p,
                                        const char *method,
                                        trellis_handler_fn fn, void *user,
                                        char *err, size_t errlen);

/* TLS for the participant's server: paths of PEM files, borrowed for the
 * call (the files are read now). */
typedef struct trellis_participant_tls {
    const char *cert_file;      /* the server's certificate chain */
    const char *key_file;       /* its private key */
    const char *client_ca_file; /* NULL: callers need no certificate; else
                                   mutual TLS: every caller (trellisd, an
                                   initiator) must present a certificate
                                   signed by this CA, or cannot connect */
} trellis_participant_tls_t;

/* Serve over TLS instead of plaintext. Before trellis_participant_start;
 * FAILED_PRECONDITION after it. A missing or unusable file is
 * INVALID_ARGUMENT naming it. */
trellis_rc_t trellis_participant_set_tls(trellis_participant_t *p,
                                         const trellis_participant_tls_t *tls,
                                         char *err, size_t errlen);

/* Bind addr ("127.0.0.1:0" picks a free port) and start serving; the bound
 * port is written to *port. Unknown methods get UNIMPLEMENTED. */
trellis_rc_t trellis_participant_start(trellis_participant_t *p,
                                       const char *addr, int *port, char *err,
                                       size_t errlen);

/* Stop serving: in-flight calls are cancelled, workers joined. A handler
 * that is running is not interrupted: stop waits for it to return. Safe to
 * call once from any thread that is not a worker. */
void trellis_participant_stop(trellis_participant_t *p);

/* Stops if running, then releases everything. */
void trellis_participant_free(trellis_participant_t *p);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_PARTICIPANT_H */
