/*
 * libtrellis, initiator side: talk to a trellisd transaction manager.
 *
 * A trellis_client_t holds one gRPC channel to trellisd. Every call blocks
 * until trellisd answers or the client's deadline passes. Calls on one
 * client may be made from many threads at once.
 *
 * Errors: every function that can fail returns a trellis_rc_t (0 = OK) and,
 * when err is not NULL, writes a NUL-terminated message into err[errlen].
 * A non-zero rc that came from trellisd is the gRPC status code it sent
 * (e.g. 3 INVALID_ARGUMENT, 5 NOT_FOUND, 6 ALREADY_EXISTS), and the message
 * is the one trellisd wrote.
 *
 * Ownership: pointers returned through out-parameters are the caller's and
 * are released with the matching *_free function named next to them.
 */
#ifndef TRELLIS_H
#define TRELLIS_H

#include <stddef.h>
#include <stdint.h>

#include "trellis/trellis_version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int trellis_rc_t;

/* gRPC status codes used as return codes (same numbers as grpc_status_code). */
enum {
    TRELLIS_OK = 0,
    TRELLIS_CANCELLED = 1,
    TRELLIS_UNKNOWN = 2,
    TRELLIS_INVALID_ARGUMENT = 3,
    TRELLIS_DEADLINE_EXCEEDED = 4,
    TRELLIS_NOT_FOUND = 5,
    TRELLIS_ALREADY_EXISTS = 6,
    TRELLIS_PERMISSION_DENIED = 7,
    TRELLIS_RESOURCE_EXHAUSTED = 8,
    TRELLIS_FAILED_PRECONDITION = 9,
    TRELLIS_ABORTED = 10,
    TRELLIS_INTERNAL = 13,
    TRELLIS_UNAVAILABLE = 14,
};

/* Transaction status, numbered as trellis.v1.TransStatus. */
typedef enum {
    TRELLIS_TRANS_UNSPECIFIED = 0,
    TRELLIS_TRANS_PREPARED = 1,
    TRELLIS_TRANS_SUBMITTED = 2,
    TRELLIS_TRANS_ABORTING = 3,
    TRELLIS_TRANS_SUCCEEDED = 4,
    TRELLIS_TRANS_FAILED = 5,
} trellis_trans_status_t;

/* Branch modes and ops, numbered as trellis.v1.BranchMode / OpKind. */
typedef enum {
    TRELLIS_MODE_SAGA = 1,
    TRELLIS_MODE_TCC = 2,
    TRELLIS_MODE_XA = 3,
    TRELLIS_MODE_WORKFLOW = 4,  /* a workflow's head (trellis_workflow.h) */
    TRELLIS_MODE_LOCAL = 5,     /* a workflow's local step */
    TRELLIS_MODE_HOOKS = 6,     /* a workflow's hooks, called last */
    TRELLIS_MODE_MSG = 7,       /* a message step: delivered, never undone */
    TRELLIS_MODE_MSG_CHECK = 8, /* a message's head: its back-check */
    TRELLIS_MODE_EVENT = 9,     /* a completion listener, told last */
    TRELLIS_MODE_BRANCH_EVENT = 10, /* a branch listener, told per branch */
    TRELLIS_MODE_DTM_WORKFLOW = 11, /* a DTM workflow's head (DTM service) */
} trellis_mode_t;

typedef enum {
    TRELLIS_OP_ACTION = 1,
    TRELLIS_OP_COMPENSATE = 2,
    TRELLIS_OP_TRY = 3,
    TRELLIS_OP_CONFIRM = 4,
    TRELLIS_OP_CANCEL = 5,
    TRELLIS_OP_PREPARE = 6,
    TRELLIS_OP_COMMIT = 7,
    TRELLIS_OP_ROLLBACK = 8,
    TRELLIS_OP_RESUME = 9, /* a workflow's head: run the function again */
    TRELLIS_OP_QUERY_PREPARED = 10, /* a message's back-check */
    TRELLIS_OP_NOTIFY = 11, /* a completion listener is told the outcome */
} trellis_op_t;

typedef enum {
    TRELLIS_OP_PENDING = 1,
    TRELLIS_OP_SUCCEEDED = 2,
    TRELLIS_OP_FAILED = 3,
    TRELLIS_OP_SKIPPED = 4,
} trellis_op_status_t;

/* The version of the library linked at run time ("0.1.0"), a static
 * string; compare TRELLIS_VERSION_STRING, the headers' version. */
const char *trellis_version(void);

/* Static names ("prepared", "saga", "compensate", ...); never NULL. */
const char *trellis_trans_status_name(trellis_trans_status_t s);
const char *trellis_mode_name(trellis_mode_t m);
const char *trellis_op_name(trellis_op_t op);
const char *trellis_op_status_name(trellis_op_status_t s);

/* ---- TLS ------------------------------------------------------------- */

/* TLS for a connection to trellisd (trellis_client_new_tls) or to
 * participants (trellis_call_unary_set_tls). Every field is a path of a PEM
 * file, or NULL. The struct and its strings are borrowed for the call that
 * takes them: the files are read then, not later (replace a renewed
 * certificate by making a new client). */
typedef struct {
    const char *ca_file;     /* roots the server's certificate must chain to;
                                NULL: gRPC's default roots */
    const char *cert_file;   /* own certificate chain, for mutual TLS; NULL:
                                none (then key_file NULL too) */
    const char *key_file;    /* private key of cert_file */
    const char *server_name; /* name the server's certificate must carry,
                                when not the target's host; NULL: the host */
} trellis_tls_t;

/* ---- client ---------------------------------------------------------- */

typedef struct trellis_client trellis_client_t;

/* Connect lazily to trellisd at target ("host:port"). call_timeout_ms bounds
 * every call (0: 30 s). *out is the caller's: trellis_client_free. */
trellis_rc_t trellis_client_new(const char *target, uint32_t call_timeout_ms,
                                trellis_client_t **out, char *err,
                                size_t errlen);

/* The same over TLS (tls NULL: plaintext, as trellis_client_new). A bad or
 * missing file is INVALID_ARGUMENT naming it; a server whose certificate
 * does not verify, or one that refuses ours (mutual TLS), makes every call
 * fail UNAVAILABLE with gRPC's reason in err. */
trellis_rc_t trellis_client_new_tls(const char *target,
                                    uint32_t call_timeout_ms,
                                    const trellis_tls_t *tls,
                                    trellis_client_t **out, char *err,
                                    size_t errlen);
void trellis_client_free(trellis_client_t *c);

/* The TM cluster's identity (trellisd --cluster-id): trellisd names it in
 * the metadata of every reply and of every call it makes to a participant,
 * under this key; the XA helper sends it with each prepare, and the XA
 * adapter puts it into its XIDs (trellis/mysql_xa.h). */
#define TRELLIS_CLUSTER_ID_HEADER "trellis-cluster-id"
#define TRELLIS_CLUSTER_ID_MAX 64

/* The cluster id of the trellisd c talks to, as its latest reply named it,
 * into out[outlen] (TRELLIS_CLUSTER_ID_MAX + 1 is enough); "" when
 * trellisd names none (a version before cluster ids). When no reply has
 * come yet, asks trellisd first (one NewGid call), so an unreachable
 * trellisd is an error. Thread safe. */
trellis_rc_t trellis_client_cluster_id(trellis_client_t *c, char *out,
                                       size_t outlen, char *err, size_t errlen);

/* A new unique gid from trellisd, copied into gid[gidlen] (64 is enough). */
trellis_rc_t trellis_new_gid(trellis_client_t *c, char *gid, size_t gidlen,
                             char *err, size_t errlen);

/* Per-transaction options; zero fields mean "trellisd's default". */
typedef struct {
    int wait_result;             /* submit/abort return the final outcome */
    uint32_t timeout_to_fail_ms; /* roll back if not done by then */
    uint32_t retry_interval_ms;  /* ONGOING retry interval; backoff base */
    uint32_t request_timeout_ms; /* deadline of each branch call */
    uint32_t retry_limit; /* forward op: unknown results before rollback */
    size_t n_headers;     /* extra metadata sent with every branch call */
    const char *const *header_keys; /* borrowed for the call that uses them */
    const char *const *header_values;
    /* Completion listeners (at most 8): targets told the outcome once it
     * is durable, each with a CompletionEvent (trellis_participant.h,
     * trellis_completion_event_parse), retried until it answers OK.
     * Borrowed for the call that uses them. */
    size_t n_listeners;
    const char *const *listeners;
    /* Branch listeners (at most 8 together with listeners): targets told
     * the outcome of every branch as soon as it is settled, each with a
     * BranchEvent (trellis_branch_event_parse), retried until it answers
     * OK. Borrowed for the call that uses them. */
    size_t n_branch_listeners;
    const char *const *branch_listeners;
    /* 0 or 1: each completion listener call carries one event. 2..256:
     * the listeners are batching ones — a call may carry the events of up
     * to this many transactions (trellis_completion_event_batch_parse),
     * which costs far less per transaction under load. */
    uint32_t listener_batch;
    /* W3C trace context (https://www.w3.org/TR/trace-context/) of the
     * request that creates the transaction: sent as the request metadata
     * "traceparent" and "tracestate" (not as branch headers) with Begin, a
     * saga's Submit, PrepareMessage and StartWorkflow. trellisd keeps a
     * valid one with the transaction and sends it unchanged with every
     * branch call, also after a restart or a takeover (a participant reads
     * it with trellis_branch_ctx_header). A malformed one is ignored by
     * trellisd: the transaction goes on without it. NULL or "": none;
     * tracestate is sent only with a traceparent. Borrowed for the call
     * that uses them (the saga and message builders copy them). */
    const char *traceparent;
    const char *tracestate;
} trellis_options_t;

/* The request metadata keys of trellis_options_t.traceparent/.tracestate,
 * under which participants receive them too. */
#define TRELLIS_TRACEPARENT_HEADER "traceparent"
#define TRELLIS_TRACESTATE_HEADER "tracestate"

/* ---- saga builder ---------------------------------------------------- */

typedef struct trellis_saga trellis_saga_t;

/* A saga for gid (copied). *out is the caller's: trellis_saga_free. */
trellis_rc_t trellis_saga_new(const char *gid, trellis_saga_t **out, char *err,
                              size_t errlen);
void trellis_saga_free(trellis_saga_t *s);

/* Append a step; targets are "host:port/package.Service/Method" (compensate
 * may be NULL or ""), payload is copied. Returns the step's index (>= 0), or
 * -1 with err filled. */
int trellis_saga_add_step(trellis_saga_t *s, const char *action,
                          const char *compensate, const void *payload,
                          size_t payload_len, char *err, size_t errlen);

/* Step `step` starts only after step `prerequisite` (an earlier index)
 * succeeded. Declaring any dependency makes the saga concurrent: steps with
 * no declared prerequisites then start at once. */
trellis_rc_t trellis_saga_add_dependency(trellis_saga_t *s, int step,
                                         int prerequisite, char *err,
                                         size_t errlen);
/* Make steps with no declared prerequisites start at once (default: each
 * step waits for the one before it). */
void trellis_saga_set_concurrent(trellis_saga_t *s, int concurrent);
/* Make step `step` the saga's pivot, its point of no return (at most one
 * per saga: another step is refused). Before the pivot succeeds a failure
 * rolls back as usual; once it succeeded the saga can no longer roll back:
 * every later step is retried until it succeeds (an ABORTED answer is
 * taken for a participant bug), and Abort or the timeout are refused.
 * Every other step must come before the pivot or after it (the chain, or
 * trellis_saga_add_dependency), and steps after it take no compensate:
 * trellisd refuses the saga at submit otherwise (INVALID_ARGUMENT). */
trellis_rc_t trellis_saga_set_pivot(trellis_saga_t *s, int step, char *err,
                                    size_t errlen);
/* Options are copied. */
void trellis_saga_set_options(trellis_saga_t *s, const trellis_options_t *o);

/* Submit. With options.wait_result, *status is the final outcome
 * (SUCCEEDED or FAILED) and reason[reasonlen] why it failed; otherwise
 * *status is SUBMITTED. status and reason may be NULL. */
trellis_rc_t trellis_saga_submit(trellis_client_t *c, const trellis_saga_t *s,
                                 trellis_trans_status_t *status, char *reason,
                                 size_t reasonlen, char *err, size_t errlen);

/* ---- begin / register / submit / abort ------------------------------- */

trellis_rc_t trellis_begin(trellis_client_t *c, const char *gid,
                           const trellis_options_t *o, char *err,
                           size_t errlen);

typedef struct {
    trellis_op_t op;
    const char *target;
} trellis_branch_op_t;

/* Record a branch and the ops trellisd will call for it in phase 2. */
trellis_rc_t trellis_register_branch(trellis_client_t *c, const char *gid,
                                     const char *branch_id, trellis_mode_t mode,
                                     const trellis_branch_op_t *ops,
                                     size_t n_ops, const void *payload,
                                     size_t payload_len, char *err,
                                     size_t errlen);

/* Submit a begun transaction (no extra saga steps). wait as in options. */
trellis_rc_t trellis_submit(trellis_client_t *c, const char *gid, int wait,
                            trellis_trans_status_t *status, char *reason,
                            size_t reasonlen, char *err, size_t errlen);

trellis_rc_t trellis_abort(trellis_client_t *c, const char *gid,
                           const char *reason, int wait,
                           trellis_trans_status_t *status, char *err,
                           size_t errlen);

/* ---- query / list ---------------------------------------------------- */

typedef struct {
    trellis_op_t op;
    char *target;
    trellis_op_status_t status;
    uint32_t attempts;
    char *last_error;
    size_t n_attempt_ms;
    int64_t *attempt_ms; /* start time of each attempt (ms since epoch) */
    int64_t finished_ms;
    /* Workflows: the step's forward op has a recorded result (RecordStep),
     * result[result_len] its bytes (NULL when empty); the recorded
     * message of a business failure is in last_error. */
    int recorded;
    size_t result_len;
    uint8_t *result;
    /* A saga action's compensation log (trellisd --max-action-log): the
     * first bytes of its reply are in result[result_len] (recorded 0), and
     * result_size is the reply's full size, more than result_len when
     * trellisd kept it cut; 0 when no log was kept. */
    uint64_t result_size;
} trellis_op_info_t;

typedef struct {
    char *branch_id;
    trellis_mode_t mode;
    int initiator_driven;
    size_t n_depends_on;
    uint32_t *depends_on;
    size_t payload_len;
    uint8_t *payload;
    size_t n_ops;
    trellis_op_info_t *ops;
    /* The saga's pivot step (trellis_saga_set_pivot): once its action
     * succeeded the transaction only goes forward. */
    int pivot;
} trellis_branch_info_t;

typedef struct {
    char *gid;
    trellis_trans_status_t status;
    int64_t created_ms, updated_ms, finished_ms;
    char *reason;
    size_t n_branches;
    trellis_branch_info_t *branches;
} trellis_trans_info_t;

/* *out is the caller's: trellis_trans_info_free. NOT_FOUND for unknown gid. */
trellis_rc_t trellis_query(trellis_client_t *c, const char *gid,
                           trellis_trans_info_t **out, char *err,
                           size_t errlen);
void trellis_trans_info_free(trellis_trans_info_t *t);

typedef struct {
    trellis_trans_status_t status; /* 0: any */
    int64_t created_after_ms;      /* 0: no bound */
    int64_t created_before_ms;     /* 0: no bound */
    uint32_t page_size;            /* 0: 100 */
    const char *page_token;        /* NULL or "" for the first page */
} trellis_list_filter_t;

typedef struct {
    size_t n;
    trellis_trans_info_t *items; /* branches empty */
    char *next_page_token;       /* "" on the last page */
} trellis_list_page_t;

/* *out is the caller's: trellis_list_page_free. */
trellis_rc_t trellis_list(trellis_client_t *c, const trellis_list_filter_t *f,
                          trellis_list_page_t **out, char *err, size_t errlen);
void trellis_list_page_free(trellis_list_page_t *p);

/* ---- a plain unary call ---------------------------------------------- */

/* Call method ("/package.Service/Method") at target ("host:port") with the
 * request bytes and branch metadata pairs; used by initiators to call a
 * forward op themselves and by tools to read a service's state. On
 * TRELLIS_OK *reply (malloc'd, caller frees with free(); may be NULL when
 * the reply is empty) holds the reply bytes. A non-OK gRPC status is
 * returned as the rc with its message in err. timeout_ms 0: 30 s.
 * Thread safe; the connection to each target is cached and reused. */
trellis_rc_t trellis_call_unary(const char *target, const char *method,
                                const void *req, size_t req_len,
                                const char *const *md_keys,
                                const char *const *md_values, size_t n_md,
                                uint32_t timeout_ms, uint8_t **reply,
                                size_t *reply_len, char *err, size_t errlen);

/* Make trellis_call_unary (and so the TCC, XA and hybrid helpers' forward
 * calls) use TLS for every target it has not called yet; NULL: plaintext
 * again for new targets. Process-wide: call it at start, before the first
 * call. Thread safe. */
trellis_rc_t trellis_call_unary_set_tls(const trellis_tls_t *tls, char *err,
                                        size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_H */
