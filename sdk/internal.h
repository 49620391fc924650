/*
 * libtrellis internals shared by the SDK's .c files; not installed, not API.
 *
 * Names here start with `tr_` so they never collide with the public
 * `trellis_` API or with an application's own symbols in a static link.
 *
 * Who owns what:
 *   errors.c  — filling the caller's err buffer, status code names;
 *   channel.c — channels to one target, shared and replaced when stuck;
 *   unary.c   — the process-wide gRPC init, the per-target channel cache
 *               of trellis_call_unary, and the one blocking unary call
 *               that every client-side RPC goes through;
 *   requests.c — the initiator's TM requests built and packed, and their
 *               replies read: one code path for the blocking and the
 *               asynchronous calls;
 *   client.c  — trellis_client_t and the blocking TM RPCs;
 *   async.c   — the asynchronous calls' engine: a client's completion
 *               queue, its thread or poll function, calls in flight;
 *   async_tm.c — the public asynchronous TM calls (trellis_async.h) and
 *               the TCC/XA helpers' asynchronous steps over async.c;
 *   async_run.c — whole TCC/XA transactions run asynchronously;
 *   admin.c   — the operator RPCs (trellis_admin.h) over client.c;
 *   info.c    — deep copies of Query/List replies into the info structs;
 *   builder.c — what the saga and message builders share: option
 *               copies, growing step arrays, dependency lists;
 *   saga.c    — the saga builder and its Submit;
 *   msg.c     — the message builder, PrepareMessage, the topics RPCs;
 *   ap_trans.c — initiator-driven branches shared by the TCC and XA
 *               helpers: targets, branch ids, register-then-call;
 *   tcc.c, xa.c — the TCC and XA helpers, thin over ap_trans.c;
 *   gtx.c — the hybrid helper: TCC, XA and saga branches in one
 *               transaction over ap_trans.c, plus TM-run saga steps;
 *   workflow*.c — workflows (trellis_workflow.h); what they share is in
 *               workflow_impl.h;
 *   participant.c — the participant's gRPC server;
 *   tls.c — TLS credentials from PEM files, and trellis_call_unary's
 *               process-wide TLS setting.
 */
#ifndef TRELLIS_SDK_INTERNAL_H
#define TRELLIS_SDK_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "trellis/trellis.h"
#include "trellis/trellis_async.h"

/* Default deadline of a call when the caller passes 0. */
#define TR_DEFAULT_TIMEOUT_MS 30000u

/* ---- errors.c -------------------------------------------------------- */

/* printf into err[errlen] (NULL or 0 length: ignored); returns rc so error
 * paths read `return tr_errf(rc, err, errlen, "...")`. */
trellis_rc_t tr_errf(trellis_rc_t rc, char *err, size_t errlen, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* Clear err (when given) to "" so callers never read stale text. */
void tr_err_clear(char *err, size_t errlen);

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "status N" for others. The
 * result is static, or in a thread-local buffer for unknown codes. */
const char *tr_status_name(int code);

/* Copy src (NULL: "") into dst[dstlen], truncating; nothing when dst is
 * NULL or dstlen 0. For the caller's optional out buffers. */
void tr_copy_out(char *dst, size_t dstlen, const char *src);

/* strdup that maps NULL to "" (never returns NULL unless out of memory). */
char *tr_strdup0(const char *s);

/* ---- channel.c ------------------------------------------------------ */

#define TR_CHAN_MAX_METHODS 8

/* One gRPC channel and the handles of the methods registered on it. */
typedef struct {
    grpc_channel *channel;
    void *registered[TR_CHAN_MAX_METHODS]; /* in the slot's method order */
    int refs;                              /* guarded by the slot's lock */
} tr_chan_t;

/* The current channel to one target. Thread safe. */
typedef struct {
    pthread_mutex_t lock;
    char *target;
    const char *const *methods; /* static: gRPC keeps the pointers */
    size_t n_methods;
    tr_chan_t *current; /* NULL until first use, or after retiring one */
    grpc_channel_credentials *creds; /* TLS; NULL: plaintext */
    int creds_owned;   /* released with the slot (else borrowed) */
    char *server_name; /* TLS name override (owned), or NULL */
} tr_chan_slot_t;

/* methods (may be NULL, 0) are registered on every channel of the slot. */
trellis_rc_t tr_chan_slot_init(tr_chan_slot_t *s, const char *target,
                               const char *const *methods, size_t n_methods);

/* The slot's current channel, created on first use; NULL when out of
 * memory. Pair with tr_chan_release, passing the call's rc: an UNAVAILABLE
 * call on a channel stuck in TRANSIENT_FAILURE retires the channel. */
tr_chan_t *tr_chan_acquire(tr_chan_slot_t *s);
void tr_chan_release(tr_chan_slot_t *s, tr_chan_t *c, trellis_rc_t rc);

/* No call may hold a channel of the slot any more. */
void tr_chan_slot_destroy(tr_chan_slot_t *s);

/* Make the slot's channels TLS: it takes over creds and server_name
 * (malloc'd, may be NULL). Before the first tr_chan_acquire. */
void tr_chan_slot_set_tls(tr_chan_slot_t *s, grpc_channel_credentials *creds,
                          char *server_name);

/* ---- tls.c ------------------------------------------------------------ */

struct trellis_participant_tls;

/* Credentials from the PEM files of tls; *out is the caller's
 * (grpc_channel_credentials_release / grpc_server_credentials_release).
 * INVALID_ARGUMENT with err naming the file when one cannot be used. */
trellis_rc_t tr_tls_channel_creds(const trellis_tls_t *tls,
                                  grpc_channel_credentials **out, char *err,
                                  size_t errlen);
trellis_rc_t tr_tls_server_creds(const struct trellis_participant_tls *tls,
                                 grpc_server_credentials **out, char *err,
                                 size_t errlen);

/* Give a new call_unary cache slot the process-wide TLS setting of
 * trellis_call_unary_set_tls (borrowed credentials, copied name). */
void tr_tls_apply_call_settings(tr_chan_slot_t *s);

/* ---- unary.c --------------------------------------------------------- */

/* grpc_init() once per process. grpc_shutdown() is never called: other
 * libraries in the process may still use gRPC, and the channels in the
 * call_unary cache live as long as the process. */
void tr_grpc_init_once(void);

/* One blocking unary call. `registered` is a handle from
 * grpc_channel_register_call, or NULL to call `method` by name. Metadata
 * pairs are copied for the call. On TRELLIS_OK, *reply is malloc'd (NULL
 * when the reply message is empty) and *reply_len set. A non-OK status is
 * the rc, with the peer's status details (or a description) in err. */
typedef struct {
    grpc_channel *channel;
    void *registered;
    const char *method;
    const char *target; /* for error messages only */
    const void *req;
    size_t req_len;
    const char *const *md_keys;
    const char *const *md_values;
    size_t n_md;
    uint32_t timeout_ms; /* 0: TR_DEFAULT_TIMEOUT_MS */
    /* Not NULL: the reply's TRELLIS_CLUSTER_ID_HEADER into
     * cluster_id[TRELLIS_CLUSTER_ID_MAX + 1] ("" when absent), and
     * *cluster_id_got set to 1 when the server answered (the header came,
     * or the status is OK), else 0. */
    char *cluster_id;
    int *cluster_id_got;
} tr_unary_t;

trellis_rc_t tr_unary_call(const tr_unary_t *u, uint8_t **reply,
                           size_t *reply_len, char *err, size_t errlen);

/* One unary call on a completion queue someone else drives (async.c):
 * what it owns until its batch completes. tr_call_init before use;
 * tr_call_clear releases everything (and makes it as new again). */
typedef struct {
    grpc_call *call;
    grpc_metadata *send_md;
    size_t n_send_md;
    grpc_byte_buffer *send_buf;
    grpc_metadata_array recv_initial_md;
    grpc_metadata_array recv_trailing_md;
    grpc_byte_buffer *recv_buf;
    grpc_status_code status;
    grpc_slice details;
} tr_call_t;

void tr_call_init(tr_call_t *st);
void tr_call_clear(tr_call_t *st);

/* Copy u's metadata and request into st, create the call on cq and start
 * its batch with tag: on TRELLIS_OK exactly one event with tag comes to cq.
 * Otherwise no event comes (err says why; tr_call_clear st). The strings
 * of u need not outlive this call, except those tr_call_result reads. */
trellis_rc_t tr_call_start(tr_call_t *st, const tr_unary_t *u,
                           grpc_completion_queue *cq, void *tag, char *err,
                           size_t errlen);

/* Make a started call complete now with CANCELLED and the message why
 * (static or living as long as the call). Thread safe. */
void tr_call_cancel(tr_call_t *st, const char *why);

/* After tag came: the call's outcome as tr_unary_call returns it (u's
 * target, method and cluster id fields are read here). */
trellis_rc_t tr_call_result(tr_call_t *st, const tr_unary_t *u, uint8_t **reply,
                            size_t *reply_len, char *err, size_t errlen);

/* trellis_call_unary's channel slot for target: the cached one (*own 0),
 * or, when the cache is full, a new one of the caller's (*own 1). NULL
 * when out of memory. Hand it back with tr_unary_slot_done. */
tr_chan_slot_t *tr_unary_slot(const char *target, int *own);
void tr_unary_slot_done(tr_chan_slot_t *slot, int own);

/* trellis_call_unary's checks of its arguments: INVALID_ARGUMENT with err
 * saying which is wrong. */
trellis_rc_t tr_unary_args_check(const char *target, const char *method,
                                 const void *req, size_t req_len, char *err,
                                 size_t errlen);

/* ---- info.c ---------------------------------------------------------- */

struct Trellis__V1__Transaction;

/* Deep copy of a protobuf Transaction into *out (fields zeroed first).
 * TRELLIS_RESOURCE_EXHAUSTED when out of memory; *out is then released. */
trellis_rc_t tr_trans_info_copy(const struct Trellis__V1__Transaction *t,
                                trellis_trans_info_t *out, char *err,
                                size_t errlen);

/* Release what a trellis_trans_info_t points to, not the struct itself. */
void tr_trans_info_clear(trellis_trans_info_t *t);

/* ---- requests.c ---------------------------------------------------- */

struct ProtobufCMessage;
struct ProtobufCMessageDescriptor;
struct Trellis__V1__TransOptions;
struct Trellis__V1__SubmitRequest;

/* The TM methods registered on a client's channel, indexes of its
 * tr_chan_t.registered; tr_tm_method_names in this order. */
typedef enum {
    TR_TM_NEW_GID,
    TR_TM_BEGIN,
    TR_TM_REGISTER_BRANCH,
    TR_TM_SUBMIT,
    TR_TM_ABORT,
    TR_TM_QUERY,
    TR_TM_LIST,
    TR_TM_N_METHODS
} tr_tm_method_t;

/* Static: grpc_channel_register_call keeps the pointers. */
extern const char *const tr_tm_method_names[TR_TM_N_METHODS];

/* A packed TM request: method is a tr_tm_method_t, or -1 for a method
 * called by name (static name); buf (malloc'd) is owned; the request
 * metadata it is sent with (the trace context): static keys, owned
 * values. */
typedef struct {
    int method;
    const char *name;
    uint8_t *buf;
    size_t len;
    const char *md_keys[2];
    char *md_values[2];
    size_t n_md;
} tr_tm_req_t;

void tr_tm_req_init(tr_tm_req_t *r);
void tr_tm_req_clear(tr_tm_req_t *r);

/* Pack msg for method (name used only when method is -1) into *out. */
trellis_rc_t tr_tm_pack(int method, const char *name,
                        const struct ProtobufCMessage *msg, tr_tm_req_t *out,
                        char *err, size_t errlen);

/* The initiator's requests, their arguments checked (INVALID_ARGUMENT with
 * err naming what is wrong) and packed into *out (tr_tm_req_clear after,
 * also on failure). Nothing of the arguments is kept. */
trellis_rc_t tr_tm_new_gid_req(tr_tm_req_t *out, char *err, size_t errlen);
trellis_rc_t tr_tm_begin_req(const char *gid, const trellis_options_t *o,
                             tr_tm_req_t *out, char *err, size_t errlen);
/* One branch a Begin registers (tr_tm_begin_with_req); borrowed. */
typedef struct {
    const char *branch_id;
    trellis_mode_t mode;
    const trellis_branch_op_t *ops;
    size_t n_ops;
    const void *payload;
    size_t payload_len;
} tr_branch_reg_t;
/* Begin that registers branches[0..n) too (BeginRequest.branches), each
 * checked as tr_tm_register_req checks it. */
trellis_rc_t tr_tm_begin_with_req(const char *gid, const trellis_options_t *o,
                                  const tr_branch_reg_t *branches, size_t n,
                                  tr_tm_req_t *out, char *err, size_t errlen);
trellis_rc_t tr_tm_register_req(const char *gid, const char *branch_id,
                                trellis_mode_t mode,
                                const trellis_branch_op_t *ops, size_t n_ops,
                                const void *payload, size_t payload_len,
                                tr_tm_req_t *out, char *err, size_t errlen);
trellis_rc_t tr_tm_submit_req(const char *gid, int wait, tr_tm_req_t *out,
                              char *err, size_t errlen);
trellis_rc_t tr_tm_abort_req(const char *gid, const char *reason, int wait,
                             tr_tm_req_t *out, char *err, size_t errlen);

/* What a reply of the requests above says. The strings point into msg,
 * the unpacked reply, owned: tr_tm_reply_clear. */
typedef struct {
    trellis_trans_status_t status; /* Submit, Abort, Begin */
    uint32_t branches_registered;  /* Begin: initiator-driven branches held */
    const char *reason;            /* Submit; "" otherwise */
    const char *gid;               /* NewGid; "" otherwise */
    struct ProtobufCMessage *msg;
} tr_tm_reply_t;

void tr_tm_reply_init(tr_tm_reply_t *r);

/* Unpack buf[len], the reply to method, into *out (tr_tm_reply_clear
 * after). TRELLIS_INTERNAL when it does not parse. */
trellis_rc_t tr_tm_reply_read(int method, const uint8_t *buf, size_t len,
                              tr_tm_reply_t *out, char *err, size_t errlen);
void tr_tm_reply_clear(tr_tm_reply_t *r);

/* Protobuf options built from trellis_options_t; strings are borrowed from
 * the options, so it lives no longer than they do. */
typedef struct tr_pb_options tr_pb_options_t;
tr_pb_options_t *tr_pb_options_new(const trellis_options_t *o);
struct Trellis__V1__TransOptions *tr_pb_options_get(tr_pb_options_t *p);
void tr_pb_options_free(tr_pb_options_t *p);

/* The request metadata a request built with p carries: the options' trace
 * context (trellis_options_t.traceparent/.tracestate), none without it. */
typedef struct {
    const char *keys[2];
    const char *values[2];
    size_t n;
} tr_request_md_t;
/* The metadata of p (NULL: none), borrowed from the options. */
tr_request_md_t tr_pb_options_md(const tr_pb_options_t *p);

/* Give a packed request the metadata md (NULL or none: nothing); the
 * values are copied (the keys are static). RESOURCE_EXHAUSTED when out of
 * memory. */
trellis_rc_t tr_tm_req_set_md(tr_tm_req_t *r, const tr_request_md_t *md,
                              char *err, size_t errlen);

/* ---- client.c -------------------------------------------------------- */

/* Send a packed request (with its metadata) on the client's channel and
 * wait: the reply bytes (malloc'd, the caller's; NULL when empty) on
 * TRELLIS_OK. Notes the cluster id the reply names. */
trellis_rc_t tr_client_exec(trellis_client_t *c, const tr_tm_req_t *req,
                            uint8_t **reply, size_t *reply_len, char *err,
                            size_t errlen);

/* tr_client_exec, then tr_tm_reply_read: *out as there. */
trellis_rc_t tr_tm_run(trellis_client_t *c, const tr_tm_req_t *req,
                       tr_tm_reply_t *out, char *err, size_t errlen);

/* Send a packed Submit and copy status and reason out (both optional). */
trellis_rc_t tr_submit_run(trellis_client_t *c, const tr_tm_req_t *req,
                           trellis_trans_status_t *status, char *reason,
                           size_t reasonlen, char *err, size_t errlen);

/* Send a SubmitRequest with metadata md (NULL: none) and read status and
 * reason from the reply. */
trellis_rc_t tr_submit(trellis_client_t *c,
                       const struct Trellis__V1__SubmitRequest *req,
                       const tr_request_md_t *md,
                       trellis_trans_status_t *status, char *reason,
                       size_t reasonlen, char *err, size_t errlen);

/* Call a trellis.v1.TM method by its full name ("/trellis.v1.TM/...") on
 * the client's channel: pack req, unpack the reply as reply_desc. On
 * TRELLIS_OK *reply is the caller's (protobuf_c_message_free_unpacked).
 * For the rarely used operator RPCs (admin.c), which are not registered on
 * the channel. */
trellis_rc_t tr_client_call(trellis_client_t *c, const char *method,
                            const struct ProtobufCMessage *req,
                            const struct ProtobufCMessageDescriptor *reply_desc,
                            struct ProtobufCMessage **reply, char *err,
                            size_t errlen);
/* The same with request metadata md (NULL: none): a request that creates
 * a transaction, with its trace context. */
trellis_rc_t
tr_client_call_md(trellis_client_t *c, const char *method,
                  const struct ProtobufCMessage *req, const tr_request_md_t *md,
                  const struct ProtobufCMessageDescriptor *reply_desc,
                  struct ProtobufCMessage **reply, char *err, size_t errlen);

/* Decode buf[len], trellisd's reply to method, as reply_desc into *reply
 * (the caller's: protobuf_c_message_free_unpacked). TRELLIS_INTERNAL with
 * err when it does not parse (by protobuf-c or by the wire check), or
 * when a string field holds a NUL byte (trellis_wire.h: protobuf-c would
 * cut the string there); err names the field. buf may be NULL when len is 0. */
trellis_rc_t
tr_reply_unpack(const struct ProtobufCMessageDescriptor *reply_desc,
                const uint8_t *buf, size_t len, const char *method,
                struct ProtobufCMessage **reply, char *err, size_t errlen);

/* The client's parts, for async.c and async_tm.c. The slot lives as long
 * as the client; the async queue is NULL until trellis_async_start. */
struct tr_async;
struct tr_async *tr_client_async(trellis_client_t *c);
void tr_client_set_async(trellis_client_t *c, struct tr_async *a);
tr_chan_slot_t *tr_client_slot(trellis_client_t *c);
uint32_t tr_client_timeout_ms(const trellis_client_t *c);

/* A reply from trellisd named this cluster id ("" for none). Thread safe. */
void tr_client_note_cluster_id(trellis_client_t *c, const char *id);

/* The cluster id as the latest reply named it, into out[outlen]; "" when
 * no reply has come yet (never asks trellisd). Thread safe. */
void tr_client_cluster_id_peek(trellis_client_t *c, char *out, size_t outlen);

/* ---- async.c --------------------------------------------------------- */

/* A client's asynchronous machinery: one completion queue, driven by a
 * thread of its own or by trellis_async_poll, and the calls in flight on
 * it. Thread safe; see async.c for the rules it keeps. */
typedef struct tr_async tr_async_t;

/* What a finished call hands its continuation; the pointers are borrowed
 * for the continuation's run. */
typedef struct {
    trellis_rc_t rc;
    const char *err;      /* "" on OK */
    const uint8_t *reply; /* NULL when empty */
    size_t reply_len;
    const char *cluster_id; /* as the reply named it; NULL: no answer */
} tr_aop_result_t;

/* Runs on the queue's driver, exactly once per started call; it may start
 * further calls. */
typedef void (*tr_aop_done_fn)(void *ctx, const tr_aop_result_t *r);

/* A call to start. Everything is copied by tr_async_call, except slot,
 * which must live until done ran (the client's own, or the call_unary
 * cache's; own_slot: the call hands it to tr_unary_slot_done). */
typedef struct {
    tr_chan_slot_t *slot;
    int own_slot;
    int registered;     /* index into the slot's registered methods, or -1 */
    const char *method; /* "/package.Service/Method" */
    const void *req;
    size_t req_len;
    const char *const *md_keys;
    const char *const *md_values;
    size_t n_md;
    uint32_t timeout_ms; /* 0: TR_DEFAULT_TIMEOUT_MS */
    int want_cluster_id; /* read the reply's TRELLIS_CLUSTER_ID_HEADER */
} tr_async_call_t;

trellis_rc_t tr_async_new(trellis_async_mode_t mode, tr_async_t **out,
                          char *err, size_t errlen);

/* Start call; done(ctx, result) runs exactly once, on the driver, never
 * inside tr_async_call — also when the call cannot even start. */
void tr_async_call(tr_async_t *a, const tr_async_call_t *call,
                   tr_aop_done_fn done, void *ctx);

/* Hand rc and err (copied) to done through the queue, as the outcome of a
 * call that failed before anything was sent. */
void tr_async_fail(tr_async_t *a, trellis_rc_t rc, const char *err,
                   tr_aop_done_fn done, void *ctx);

/* trellis_async_poll: -1 when a's mode is not TRELLIS_ASYNC_POLL. */
int tr_async_poll(tr_async_t *a, uint32_t timeout_ms);

/* End every call in flight (CANCELLED unless it finished first) and run
 * its continuation, then release a. NULL is fine. */
void tr_async_close(tr_async_t *a);

/* ---- async_tm.c ------------------------------------------------------ */

/* TRELLIS_OK when c can take an asynchronous call reporting to cb; else
 * the rc the public call returns (and cb never runs). */
trellis_rc_t tr_async_usable(trellis_client_t *c, trellis_async_cb cb);

/* Hand rc and msg to cb through c's queue (result gid: gid, may be NULL). */
void tr_async_report(trellis_client_t *c, trellis_rc_t rc, const char *msg,
                     const char *gid, trellis_async_cb cb, void *user);

/* Send req (built by requests.c with build_rc; cleared here) to trellisd
 * on c's queue; cb gets what its reply says (status, reason; NewGid: the
 * gid) or the failure — build_rc and build_err when building failed. The
 * result's gid is gid (copied; NULL: ""). */
void tr_async_tm_send(trellis_client_t *c, trellis_rc_t build_rc,
                      const char *build_err, tr_tm_req_t *req, const char *gid,
                      trellis_async_cb cb, void *user);

/* A call to a participant; everything is copied by tr_async_unary_send. */
typedef struct {
    const char *host_port; /* "host:port" */
    const char *method;    /* "/package.Service/Method" */
    const void *req;
    size_t req_len;
    const char *const *md_keys;
    const char *const *md_values;
    size_t n_md;
    uint32_t timeout_ms; /* 0: TR_DEFAULT_TIMEOUT_MS */
    const char *gid;     /* the result's gid; NULL: "" */
} tr_async_unary_t;

/* Call u on c's queue (channels from trellis_call_unary's cache); cb gets
 * the reply bytes or the failure. */
void tr_async_unary_send(trellis_client_t *c, const tr_async_unary_t *u,
                         trellis_async_cb cb, void *user);

/* ---- saga.c ---------------------------------------------------------- */

/* The Submit of s, checked and packed (*out: tr_tm_req_clear after). */
trellis_rc_t tr_saga_submit_req(const trellis_saga_t *s, tr_tm_req_t *out,
                                char *err, size_t errlen);

/* s's gid (owned by s); NULL for a NULL s. */
const char *tr_saga_gid(const trellis_saga_t *s);

/* ---- builder.c ------------------------------------------------------ */

/* Release what o owns (its header arrays and strings) and zero it. */
void tr_options_clear(trellis_options_t *o);

/* *dst = a deep copy of o (header strings owned); -1 when out of memory
 * (dst then holds nothing). */
int tr_options_copy(trellis_options_t *dst, const trellis_options_t *o);

/* A builder's options: a deep copy, or none. set_options returns void, so
 * running out of memory there is remembered (oom) for the submit. */
typedef struct {
    int has;
    int oom;
    trellis_options_t o; /* header arrays and strings owned */
} tr_owned_options_t;

/* Replace *x with a copy of o (NULL: none). */
void tr_owned_options_set(tr_owned_options_t *x, const trellis_options_t *o);

/* Room for one more of n items of size bytes in *items (capacity *cap,
 * doubled when full); -1 when out of memory (*items unchanged). */
int tr_reserve_one(void **items, size_t *cap, size_t n, size_t size);

/* step exists among n_steps and prerequisite is an earlier step; else
 * INVALID_ARGUMENT, err naming the builder as what ("saga", "message"). */
trellis_rc_t tr_deps_check(int step, int prerequisite, size_t n_steps,
                           const char *what, char *err, size_t errlen);

/* Add a checked prerequisite to step's list (*deps, *n_deps); a repeat is
 * a no-op. RESOURCE_EXHAUSTED when out of memory. */
trellis_rc_t tr_deps_add(uint32_t **deps, size_t *n_deps, int step,
                         int prerequisite, char *err, size_t errlen);

/* ---- ap_trans.c ------------------------------------------------------ */

/* What tells an initiator-driven (AP-driven) mode apart: TCC and XA differ
 * only in these names and numbers. Static tables, never freed. A saga
 * branch (gtx.c) has no commit-side op: commit_name NULL, commit_op 0.
 * tr_ap_t.kind may be switched between branches (the hybrid helper does:
 * each branch is registered and called with the kind current then). */
typedef struct {
    trellis_mode_t mode;
    const char *trans_type; /* dtm-trans_type: "tcc", "xa" */
    const char *label;      /* in messages: "TCC", "XA" */
    const char *forward_op; /* dtm-op of the forward op: "try", "prepare" */
    const char *commit_name, *rollback_name; /* "confirm", "commit", ... */
    trellis_op_t commit_op, rollback_op;
} tr_ap_kind_t;

/* A begun transaction whose branches the initiator drives. Owns copies of
 * its gid and branch headers; the client is borrowed. One thread at a
 * time. Invariant: branch ids are "01", "02", ... in the order
 * RegisterBranch was sent; an id is used up once sent, even if trellisd
 * refused it, so one id never names two branches. */
typedef struct {
    const tr_ap_kind_t *kind;
    trellis_client_t *client;
    char *gid;
    int wait_result;
    uint32_t request_timeout_ms; /* deadline of each forward call; 0: default */
    size_t n_headers;
    char **header_keys, **header_values;
    unsigned next_branch; /* branches sent to RegisterBranch so far */
    /* The options' trace context (owned; NULL: none), sent with each
     * forward op as trellisd sends it with the phase-2 ops. */
    char *traceparent, *tracestate;
} tr_ap_t;

/* The kinds: static tables, never freed. */
extern const tr_ap_kind_t tr_ap_kind_tcc, tr_ap_kind_xa, tr_ap_kind_saga;

/* Fill *a (zeroed by the caller) for gid with o's settings (may be NULL):
 * copies of gid, the branch headers and the trace context, wait_result,
 * request timeout;
 * nothing is sent. -1 when out of memory (then *a holds nothing). */
int tr_ap_init(tr_ap_t *a, const tr_ap_kind_t *kind, trellis_client_t *c,
               const char *gid, const trellis_options_t *o);

/* Check c and gid, fill *a (zeroed by the caller) and send Begin. On
 * failure *a holds nothing (no tr_ap_clear needed). */
trellis_rc_t tr_ap_begin(tr_ap_t *a, const tr_ap_kind_t *kind,
                         trellis_client_t *c, const char *gid,
                         const trellis_options_t *o, char *err, size_t errlen);

/* Register the next branch with its phase-2 targets, then call its forward
 * target with the payload and the dtm-* metadata; the forward call's rc.
 * reply, reply_len: as trellis_tcc_call_branch (cleared first). */
trellis_rc_t tr_ap_call_branch(tr_ap_t *a, const char *forward_target,
                               const char *commit_target,
                               const char *rollback_target, const void *payload,
                               size_t payload_len, uint8_t **reply,
                               size_t *reply_len, char *err, size_t errlen);

/* Call branch_id's forward op (a->kind's dtm-trans_type and dtm-op) at
 * forward_target with the payload, the dtm-* metadata, a's branch headers
 * and the TM's cluster id; nothing is registered. The call's rc; *reply
 * (malloc'd, the caller's; NULL when empty) and *reply_len on OK. A
 * malformed target is INVALID_ARGUMENT and nothing is sent. */
trellis_rc_t tr_ap_forward(const tr_ap_t *a, const char *branch_id,
                           const char *forward_target, const void *payload,
                           size_t payload_len, uint8_t **reply,
                           size_t *reply_len, char *err, size_t errlen);

trellis_rc_t tr_ap_submit(tr_ap_t *a, trellis_trans_status_t *status,
                          char *reason, size_t reasonlen, char *err,
                          size_t errlen);
trellis_rc_t tr_ap_abort(tr_ap_t *a, const char *reason,
                         trellis_trans_status_t *status, char *err,
                         size_t errlen);

/* Release what *a owns (not a itself). */
void tr_ap_clear(tr_ap_t *a);

/* The steps above on the client's async queue (trellis_async.h): a begun
 * by tr_ap_init; cb runs exactly once per step; a must outlive it. */
void tr_ap_begin_async(tr_ap_t *a, const trellis_options_t *o,
                       trellis_async_cb cb, void *user);
void tr_ap_call_branch_async(tr_ap_t *a, const char *forward_target,
                             const char *commit_target,
                             const char *rollback_target, const void *payload,
                             size_t payload_len, trellis_async_cb cb,
                             void *user);
/* A branch's three targets well formed for kind k (a kind without a
 * commit-side op ignores commit_target); INVALID_ARGUMENT naming the one
 * that is not. */
trellis_rc_t tr_ap_check_targets(const tr_ap_kind_t *k,
                                 const char *forward_target,
                                 const char *commit_target,
                                 const char *rollback_target, char *err,
                                 size_t errlen);
/* A branch known before the Begin (the runners'): its targets and
 * payload, borrowed; branch_id filled by tr_ap_begin_branches_async. */
typedef struct {
    const char *forward_target, *commit_target, *rollback_target;
    const void *payload;
    size_t payload_len;
    char branch_id[16];
} tr_ap_branch_t;
/* Begin that registers b[0..n) too, each with the next branch id (filled
 * into b[i].branch_id, used up even if the Begin fails): every target is
 * checked first, and a malformed one sends nothing. cb's
 * branches_registered says whether trellisd took them (n) or predates
 * the field (0: register each before its forward op). */
void tr_ap_begin_branches_async(tr_ap_t *a, const trellis_options_t *o,
                                tr_ap_branch_t *b, size_t n,
                                trellis_async_cb cb, void *user);
/* Call b's forward op (registered already, under b->branch_id). */
void tr_ap_forward_async(tr_ap_t *a, const tr_ap_branch_t *b,
                         trellis_async_cb cb, void *user);
void tr_ap_submit_async(tr_ap_t *a, trellis_async_cb cb, void *user);
void tr_ap_abort_async(tr_ap_t *a, const char *reason, trellis_async_cb cb,
                       void *user);

/* The public asynchronous steps of the TCC and XA helpers, with their
 * checks: a NULL helper or cb, or a client without an async queue, is the
 * rc (cb never runs); everything else reaches cb. tr_ap_api_begin makes
 * the helper's struct of size bytes, whose first member is its tr_ap_t,
 * into *out (NULL when it could not, cb then says why). */
trellis_rc_t tr_ap_api_begin(size_t size, const tr_ap_kind_t *kind,
                             trellis_client_t *c, const char *gid,
                             const trellis_options_t *o, tr_ap_t **out,
                             trellis_async_cb cb, void *user);
trellis_rc_t tr_ap_api_call_branch(tr_ap_t *a, const char *forward_target,
                                   const char *commit_target,
                                   const char *rollback_target,
                                   const void *payload, size_t payload_len,
                                   trellis_async_cb cb, void *user);
trellis_rc_t tr_ap_api_submit(tr_ap_t *a, trellis_async_cb cb, void *user);
trellis_rc_t tr_ap_api_abort(tr_ap_t *a, const char *reason,
                             trellis_async_cb cb, void *user);

/* target is "host:port/package.Service/Method" by trellisd's rules; else
 * INVALID_ARGUMENT with err naming it as `what` ("action", ...). */
trellis_rc_t tr_ap_check_target(const char *target, const char *what, char *err,
                                size_t errlen);

#endif /* TRELLIS_SDK_INTERNAL_H */
