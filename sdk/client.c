/*
 * client.c — trellis_client_t: the initiator's connection to trellisd and
 * the TM service's RPCs (NewGid, Begin, RegisterBranch, Submit, Abort,
 * Query, List).
 *
 * A client owns a channel slot (channel.c) for trellisd's address: one
 * channel, connected lazily by gRPC on the first call, with every TM method
 * registered on it, and replaced if it gets stuck after trellisd restarts.
 * Calls from many threads share it; each call runs on a completion queue
 * of its own (see unary.c). trellis_client_free must not race with calls
 * still running on the same client.
 *
 * Every RPC is: build the protobuf request (borrowing the caller's strings),
 * pack it, tr_unary_call, unpack the reply, copy out what the caller asked
 * for. Replies that do not parse are TRELLIS_INTERNAL: they mean trellisd
 * and this SDK disagree about trellis.v1.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trellis/v1/tm.pb-c.h"
#include "trellis_wire.h"

typedef enum {
    TM_NEW_GID,
    TM_BEGIN,
    TM_REGISTER_BRANCH,
    TM_SUBMIT,
    TM_ABORT,
    TM_QUERY,
    TM_LIST,
    TM_N_METHODS
} tm_method_t;

/* Static: grpc_channel_register_call keeps the pointers. In the order of
 * tm_method_t, which indexes tr_chan_t.registered. */
static const char *const tm_method_names[TM_N_METHODS] = {
    [TM_NEW_GID] = "/trellis.v1.TM/NewGid",
    [TM_BEGIN] = "/trellis.v1.TM/Begin",
    [TM_REGISTER_BRANCH] = "/trellis.v1.TM/RegisterBranch",
    [TM_SUBMIT] = "/trellis.v1.TM/Submit",
    [TM_ABORT] = "/trellis.v1.TM/Abort",
    [TM_QUERY] = "/trellis.v1.TM/Query",
    [TM_LIST] = "/trellis.v1.TM/List",
};

_Static_assert(TM_N_METHODS <= TR_CHAN_MAX_METHODS,
               "tr_chan_t has no room for every TM method");

struct trellis_client {
    uint32_t call_timeout_ms;
    tr_chan_slot_t slot;
    pthread_mutex_t id_lock; /* guards the two below */
    int cluster_id_known;    /* a reply came from trellisd */
    char cluster_id[TRELLIS_CLUSTER_ID_MAX + 1]; /* as it named it */
};

/* ---- construction ---------------------------------------------------- */

trellis_rc_t trellis_client_new(const char *target, uint32_t call_timeout_ms,
                                trellis_client_t **out, char *err,
                                size_t errlen)
{
    return trellis_client_new_tls(target, call_timeout_ms, NULL, out, err,
                                  errlen);
}

trellis_rc_t trellis_client_new_tls(const char *target,
                                    uint32_t call_timeout_ms,
                                    const trellis_tls_t *tls,
                                    trellis_client_t **out, char *err,
                                    size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    if (target == NULL || target[0] == '\0')
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "trellisd target is empty; expected host:port");
    tr_grpc_init_once();
    grpc_channel_credentials *creds = NULL;
    char *server_name = NULL;
    if (tls != NULL) {
        trellis_rc_t rc = tr_tls_channel_creds(tls, &creds, err, errlen);
        if (rc != TRELLIS_OK)
            return rc;
        if (tls->server_name != NULL && tls->server_name[0] != '\0')
            server_name = strdup(tls->server_name);
    }

    trellis_client_t *c = calloc(1, sizeof *c);
    if (c == NULL || tr_chan_slot_init(&c->slot, target, tm_method_names,
                                       TM_N_METHODS) != TRELLIS_OK) {
        free(c);
        if (creds != NULL)
            grpc_channel_credentials_release(creds);
        free(server_name);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a client");
    }
    if (creds != NULL)
        tr_chan_slot_set_tls(&c->slot, creds, server_name);
    pthread_mutex_init(&c->id_lock, NULL);
    c->call_timeout_ms =
        call_timeout_ms != 0 ? call_timeout_ms : TR_DEFAULT_TIMEOUT_MS;
    *out = c;
    return TRELLIS_OK;
}

void trellis_client_free(trellis_client_t *c)
{
    if (c == NULL)
        return;
    tr_chan_slot_destroy(&c->slot);
    pthread_mutex_destroy(&c->id_lock);
    free(c);
}

/* ---- one TM call ----------------------------------------------------- */

/* Pack req, call method (m: its registered handle's index, or -1 to call
 * it by name), unpack the reply as reply_desc. On TRELLIS_OK *reply is the
 * caller's (protobuf_c_message_free_unpacked). */
static trellis_rc_t call_method(trellis_client_t *c, int m, const char *method,
                                const ProtobufCMessage *req,
                                const tr_request_md_t *md,
                                const ProtobufCMessageDescriptor *reply_desc,
                                ProtobufCMessage **reply, char *err,
                                size_t errlen)
{
    *reply = NULL;
    if (c == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "client is NULL");
    size_t req_len = protobuf_c_message_get_packed_size(req);
    uint8_t *req_buf = malloc(req_len > 0 ? req_len : 1);
    if (req_buf == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a %zu-byte request", req_len);
    protobuf_c_message_pack(req, req_buf);

    tr_chan_t *chan = tr_chan_acquire(&c->slot);
    if (chan == NULL) {
        free(req_buf);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a channel to %s", c->slot.target);
    }
    tr_unary_t u = {
        .channel = chan->channel,
        .registered = m >= 0 ? chan->registered[m] : NULL,
        .method = method,
        .target = c->slot.target,
        .req = req_buf,
        .req_len = req_len,
        .timeout_ms = c->call_timeout_ms,
    };
    if (md != NULL && md->n > 0) {
        u.md_keys = md->keys;
        u.md_values = md->values;
        u.n_md = md->n;
    }
    char cluster_id[TRELLIS_CLUSTER_ID_MAX + 1];
    int cluster_id_got = 0;
    u.cluster_id = cluster_id;
    u.cluster_id_got = &cluster_id_got;
    uint8_t *rep_buf = NULL;
    size_t rep_len = 0;
    trellis_rc_t rc = tr_unary_call(&u, &rep_buf, &rep_len, err, errlen);
    tr_chan_release(&c->slot, chan, rc);
    if (cluster_id_got) {
        pthread_mutex_lock(&c->id_lock);
        memcpy(c->cluster_id, cluster_id, sizeof c->cluster_id);
        c->cluster_id_known = 1;
        pthread_mutex_unlock(&c->id_lock);
    }
    free(req_buf);
    if (rc != TRELLIS_OK)
        return rc;

    rc = tr_reply_unpack(reply_desc, rep_buf, rep_len, method, reply, err,
                         errlen);
    free(rep_buf);
    return rc;
}

trellis_rc_t tr_reply_unpack(const ProtobufCMessageDescriptor *reply_desc,
                             const uint8_t *buf, size_t len, const char *method,
                             ProtobufCMessage **reply, char *err, size_t errlen)
{
    static const uint8_t empty[1];
    char why[256];
    *reply = NULL;
    int wire =
        trellis_wire_check_strings(reply_desc, buf, len, why, sizeof why);
    if (wire != TRELLIS_WIRE_OK)
        return tr_errf(
            TRELLIS_INTERNAL, err, errlen,
            "trellisd's reply to %s is refused: %s%s", method,
            wire == TRELLIS_WIRE_MALFORMED ? "it does not parse: " : "", why);
    *reply = protobuf_c_message_unpack(reply_desc, NULL, len,
                                       buf != NULL ? buf : empty);
    if (*reply == NULL)
        return tr_errf(TRELLIS_INTERNAL, err, errlen,
                       "trellisd's reply to %s (%zu bytes) does not parse "
                       "as %s",
                       method, len, reply_desc->name);
    return TRELLIS_OK;
}

static trellis_rc_t tm_call_md(trellis_client_t *c, tm_method_t m,
                               const ProtobufCMessage *req,
                               const tr_request_md_t *md,
                               const ProtobufCMessageDescriptor *reply_desc,
                               ProtobufCMessage **reply, char *err,
                               size_t errlen)
{
    return call_method(c, (int)m, tm_method_names[m], req, md, reply_desc,
                       reply, err, errlen);
}

static trellis_rc_t tm_call(trellis_client_t *c, tm_method_t m,
                            const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *reply_desc,
                            ProtobufCMessage **reply, char *err, size_t errlen)
{
    return tm_call_md(c, m, req, NULL, reply_desc, reply, err, errlen);
}

trellis_rc_t tr_client_call(trellis_client_t *c, const char *method,
                            const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *reply_desc,
                            ProtobufCMessage **reply, char *err, size_t errlen)
{
    return call_method(c, -1, method, req, NULL, reply_desc, reply, err,
                       errlen);
}

trellis_rc_t tr_client_call_md(trellis_client_t *c, const char *method,
                               const ProtobufCMessage *req,
                               const tr_request_md_t *md,
                               const ProtobufCMessageDescriptor *reply_desc,
                               ProtobufCMessage **reply, char *err,
                               size_t errlen)
{
    return call_method(c, -1, method, req, md, reply_desc, reply, err, errlen);
}

/* 1 and the id into out[outlen] if a reply named it, else 0. */
static int cluster_id_known(trellis_client_t *c, char *out, size_t outlen)
{
    pthread_mutex_lock(&c->id_lock);
    int known = c->cluster_id_known;
    if (known)
        snprintf(out, outlen, "%s", c->cluster_id);
    pthread_mutex_unlock(&c->id_lock);
    return known;
}

trellis_rc_t trellis_client_cluster_id(trellis_client_t *c, char *out,
                                       size_t outlen, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (c == NULL || out == NULL || outlen == 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "client and out must not be NULL");
    out[0] = '\0';
    if (cluster_id_known(c, out, outlen))
        return TRELLIS_OK;
    char gid[128];
    trellis_rc_t rc = trellis_new_gid(c, gid, sizeof gid, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    if (!cluster_id_known(c, out, outlen))
        return tr_errf(TRELLIS_INTERNAL, err, errlen,
                       "trellisd answered but its cluster id was not seen");
    return TRELLIS_OK;
}

/* Protobuf-c wants char *; the strings are only read while packing. */
static char *pb_str(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

/* ---- options --------------------------------------------------------- */

struct tr_pb_options {
    Trellis__V1__TransOptions msg;
    Trellis__V1__Header *headers;
    Trellis__V1__Header **header_ptrs;
    tr_request_md_t md; /* the trace context, sent as metadata */
};

/* The trace context of o as request metadata: trellisd takes it from
 * there, never from the message (it refuses TransOptions.traceparent). */
static void trace_md(tr_request_md_t *md, const trellis_options_t *o)
{
    md->n = 0;
    if (o->traceparent == NULL || o->traceparent[0] == '\0')
        return;
    md->keys[md->n] = TRELLIS_TRACEPARENT_HEADER;
    md->values[md->n++] = o->traceparent;
    if (o->tracestate == NULL || o->tracestate[0] == '\0')
        return;
    md->keys[md->n] = TRELLIS_TRACESTATE_HEADER;
    md->values[md->n++] = o->tracestate;
}

tr_request_md_t tr_pb_options_md(const tr_pb_options_t *p)
{
    tr_request_md_t none = {{NULL, NULL}, {NULL, NULL}, 0};
    return p != NULL ? p->md : none;
}

tr_pb_options_t *tr_pb_options_new(const trellis_options_t *o)
{
    tr_pb_options_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    Trellis__V1__TransOptions init = TRELLIS__V1__TRANS_OPTIONS__INIT;
    p->msg = init;
    if (o == NULL)
        return p;
    p->msg.wait_result = o->wait_result != 0;
    p->msg.timeout_to_fail_ms = o->timeout_to_fail_ms;
    p->msg.retry_interval_ms = o->retry_interval_ms;
    p->msg.request_timeout_ms = o->request_timeout_ms;
    p->msg.retry_limit = o->retry_limit;
    p->msg.listener_batch = o->listener_batch;
    trace_md(&p->md, o);
    if (o->n_listeners > 0 && o->listeners != NULL) {
        /* protobuf-c's field is not const; the message is only packed */
        p->msg.n_listeners = o->n_listeners;
        p->msg.listeners = (char **)o->listeners;
    }
    if (o->n_branch_listeners > 0 && o->branch_listeners != NULL) {
        p->msg.n_branch_listeners = o->n_branch_listeners;
        p->msg.branch_listeners = (char **)o->branch_listeners;
    }
    if (o->n_headers == 0 || o->header_keys == NULL || o->header_values == NULL)
        return p;
    p->headers = calloc(o->n_headers, sizeof *p->headers);
    p->header_ptrs = calloc(o->n_headers, sizeof *p->header_ptrs);
    if (p->headers == NULL || p->header_ptrs == NULL) {
        tr_pb_options_free(p);
        return NULL;
    }
    for (size_t i = 0; i < o->n_headers; i++) {
        Trellis__V1__Header h = TRELLIS__V1__HEADER__INIT;
        h.key = pb_str(o->header_keys[i]);
        h.value = pb_str(o->header_values[i]);
        p->headers[i] = h;
        p->header_ptrs[i] = &p->headers[i];
    }
    p->msg.n_branch_headers = o->n_headers;
    p->msg.branch_headers = p->header_ptrs;
    return p;
}

Trellis__V1__TransOptions *tr_pb_options_get(tr_pb_options_t *p)
{
    return &p->msg;
}

void tr_pb_options_free(tr_pb_options_t *p)
{
    if (p == NULL)
        return;
    free(p->headers);
    free(p->header_ptrs);
    free(p);
}

/* ---- NewGid ---------------------------------------------------------- */

trellis_rc_t trellis_new_gid(trellis_client_t *c, char *gid, size_t gidlen,
                             char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (gid == NULL || gidlen == 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "gid buffer is NULL or empty");
    gid[0] = '\0';
    Trellis__V1__NewGidRequest req = TRELLIS__V1__NEW_GID_REQUEST__INIT;
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc =
        tm_call(c, TM_NEW_GID, &req.base,
                &trellis__v1__new_gid_reply__descriptor, &rep, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    const char *got = ((Trellis__V1__NewGidReply *)rep)->gid;
    size_t n = strlen(got);
    if (n == 0)
        rc = tr_errf(TRELLIS_INTERNAL, err, errlen,
                     "trellisd answered NewGid with an empty gid");
    else if (n >= gidlen)
        rc = tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                     "gid buffer of %zu bytes is too small for the %zu-byte "
                     "gid trellisd chose",
                     gidlen, n);
    else
        memcpy(gid, got, n + 1);
    protobuf_c_message_free_unpacked(rep, NULL);
    return rc;
}

/* ---- Begin ----------------------------------------------------------- */

trellis_rc_t trellis_begin(trellis_client_t *c, const char *gid,
                           const trellis_options_t *o, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "gid is NULL; use trellis_new_gid for a fresh one");
    tr_pb_options_t *opts = NULL;
    Trellis__V1__BeginRequest req = TRELLIS__V1__BEGIN_REQUEST__INIT;
    req.gid = pb_str(gid);
    if (o != NULL) {
        opts = tr_pb_options_new(o);
        if (opts == NULL)
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "out of memory for transaction options");
        req.options = tr_pb_options_get(opts);
    }
    ProtobufCMessage *rep = NULL;
    tr_request_md_t md = tr_pb_options_md(opts);
    trellis_rc_t rc =
        tm_call_md(c, TM_BEGIN, &req.base, &md,
                   &trellis__v1__begin_reply__descriptor, &rep, err, errlen);
    tr_pb_options_free(opts);
    if (rep != NULL)
        protobuf_c_message_free_unpacked(rep, NULL);
    return rc;
}

/* ---- RegisterBranch -------------------------------------------------- */

/* The modes a branch may be registered in (a workflow's head is made by
 * StartWorkflow; trellisd refuses a local step or hooks outside a
 * workflow). */
static int mode_is_valid(trellis_mode_t m)
{
    return m == TRELLIS_MODE_SAGA || m == TRELLIS_MODE_TCC ||
           m == TRELLIS_MODE_XA || m == TRELLIS_MODE_LOCAL ||
           m == TRELLIS_MODE_HOOKS;
}

trellis_rc_t trellis_register_branch(trellis_client_t *c, const char *gid,
                                     const char *branch_id, trellis_mode_t mode,
                                     const trellis_branch_op_t *ops,
                                     size_t n_ops, const void *payload,
                                     size_t payload_len, char *err,
                                     size_t errlen)
{
    tr_err_clear(err, errlen);
    if (gid == NULL || branch_id == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       gid == NULL ? "gid" : "branch_id");
    if (!mode_is_valid(mode))
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "branch mode %d is not saga (1), tcc (2), xa (3), "
                       "local (5) or hooks (6)",
                       (int)mode);
    if (n_ops > 0 && ops == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%zu ops given but ops is NULL", n_ops);
    if (payload == NULL && payload_len > 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "payload is NULL but payload_len is %zu", payload_len);

    Trellis__V1__BranchOp *op_msgs = NULL;
    Trellis__V1__BranchOp **op_ptrs = NULL;
    if (n_ops > 0) {
        op_msgs = calloc(n_ops, sizeof *op_msgs);
        op_ptrs = calloc(n_ops, sizeof *op_ptrs);
        if (op_msgs == NULL || op_ptrs == NULL) {
            free(op_msgs);
            free(op_ptrs);
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "out of memory for %zu branch ops", n_ops);
        }
    }
    for (size_t i = 0; i < n_ops; i++) {
        Trellis__V1__BranchOp init = TRELLIS__V1__BRANCH_OP__INIT;
        op_msgs[i] = init;
        op_msgs[i].op = (Trellis__V1__OpKind)ops[i].op;
        op_msgs[i].target = pb_str(ops[i].target);
        op_ptrs[i] = &op_msgs[i];
    }

    Trellis__V1__RegisterBranchRequest req =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    req.gid = pb_str(gid);
    req.branch_id = pb_str(branch_id);
    req.mode = (Trellis__V1__BranchMode)mode;
    req.n_ops = n_ops;
    req.ops = op_ptrs;
    req.payload.len = payload_len;
    req.payload.data = (uint8_t *)payload;

    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc = tm_call(c, TM_REGISTER_BRANCH, &req.base,
                              &trellis__v1__register_branch_reply__descriptor,
                              &rep, err, errlen);
    free(op_msgs);
    free(op_ptrs);
    if (rep != NULL)
        protobuf_c_message_free_unpacked(rep, NULL);
    return rc;
}

/* ---- Submit ---------------------------------------------------------- */

trellis_rc_t tr_submit(trellis_client_t *c,
                       const Trellis__V1__SubmitRequest *req,
                       const tr_request_md_t *md,
                       trellis_trans_status_t *status, char *reason,
                       size_t reasonlen, char *err, size_t errlen)
{
    tr_copy_out(reason, reasonlen, "");
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc =
        tm_call_md(c, TM_SUBMIT, &req->base, md,
                   &trellis__v1__submit_reply__descriptor, &rep, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    const Trellis__V1__SubmitReply *r = (const Trellis__V1__SubmitReply *)rep;
    if (status != NULL)
        *status = (trellis_trans_status_t)r->status;
    tr_copy_out(reason, reasonlen, r->reason);
    protobuf_c_message_free_unpacked(rep, NULL);
    return TRELLIS_OK;
}

trellis_rc_t trellis_submit(trellis_client_t *c, const char *gid, int wait,
                            trellis_trans_status_t *status, char *reason,
                            size_t reasonlen, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gid is NULL");
    /* A begun transaction keeps its options; only wait_result counts. */
    Trellis__V1__TransOptions opts = TRELLIS__V1__TRANS_OPTIONS__INIT;
    opts.wait_result = wait != 0;
    Trellis__V1__SubmitRequest req = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    req.gid = pb_str(gid);
    req.options = &opts;
    return tr_submit(c, &req, NULL, status, reason, reasonlen, err, errlen);
}

/* ---- Abort ----------------------------------------------------------- */

trellis_rc_t trellis_abort(trellis_client_t *c, const char *gid,
                           const char *reason, int wait,
                           trellis_trans_status_t *status, char *err,
                           size_t errlen)
{
    tr_err_clear(err, errlen);
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gid is NULL");
    Trellis__V1__AbortRequest req = TRELLIS__V1__ABORT_REQUEST__INIT;
    req.gid = pb_str(gid);
    req.reason = pb_str(reason);
    req.wait_result = wait != 0;
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc =
        tm_call(c, TM_ABORT, &req.base, &trellis__v1__abort_reply__descriptor,
                &rep, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    if (status != NULL)
        *status =
            (trellis_trans_status_t)((Trellis__V1__AbortReply *)rep)->status;
    protobuf_c_message_free_unpacked(rep, NULL);
    return TRELLIS_OK;
}

/* ---- Query ----------------------------------------------------------- */

trellis_rc_t trellis_query(trellis_client_t *c, const char *gid,
                           trellis_trans_info_t **out, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gid is NULL");
    Trellis__V1__QueryRequest req = TRELLIS__V1__QUERY_REQUEST__INIT;
    req.gid = pb_str(gid);
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc =
        tm_call(c, TM_QUERY, &req.base, &trellis__v1__query_reply__descriptor,
                &rep, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    const Trellis__V1__QueryReply *r = (const Trellis__V1__QueryReply *)rep;
    trellis_trans_info_t *t = NULL;
    if (r->trans == NULL)
        rc = tr_errf(TRELLIS_INTERNAL, err, errlen,
                     "trellisd answered Query for %s without a transaction",
                     gid);
    else if ((t = calloc(1, sizeof *t)) == NULL)
        rc = tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                     "out of memory for a transaction");
    else
        rc = tr_trans_info_copy(r->trans, t, err, errlen);
    protobuf_c_message_free_unpacked(rep, NULL);
    if (rc != TRELLIS_OK) {
        free(t);
        return rc;
    }
    *out = t;
    return TRELLIS_OK;
}

/* ---- List ------------------------------------------------------------ */

static trellis_rc_t list_page_copy(const Trellis__V1__ListReply *r,
                                   trellis_list_page_t *p, char *err,
                                   size_t errlen)
{
    p->next_page_token = tr_strdup0(r->next_page_token);
    if (p->next_page_token == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a page token");
    if (r->n_transactions == 0)
        return TRELLIS_OK;
    p->items = calloc(r->n_transactions, sizeof *p->items);
    if (p->items == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for %zu transactions", r->n_transactions);
    for (size_t i = 0; i < r->n_transactions; i++) {
        trellis_rc_t rc =
            tr_trans_info_copy(r->transactions[i], &p->items[i], err, errlen);
        if (rc != TRELLIS_OK)
            return rc;
        p->n = i + 1;
    }
    return TRELLIS_OK;
}

trellis_rc_t trellis_list(trellis_client_t *c, const trellis_list_filter_t *f,
                          trellis_list_page_t **out, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    Trellis__V1__ListRequest req = TRELLIS__V1__LIST_REQUEST__INIT;
    if (f != NULL) {
        req.status = (Trellis__V1__TransStatus)f->status;
        req.created_after_ms = f->created_after_ms;
        req.created_before_ms = f->created_before_ms;
        req.page_size = f->page_size;
        req.page_token = pb_str(f->page_token);
    }
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc =
        tm_call(c, TM_LIST, &req.base, &trellis__v1__list_reply__descriptor,
                &rep, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    trellis_list_page_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        rc = tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                     "out of memory for a list page");
    else
        rc =
            list_page_copy((const Trellis__V1__ListReply *)rep, p, err, errlen);
    protobuf_c_message_free_unpacked(rep, NULL);
    if (rc != TRELLIS_OK) {
        trellis_list_page_free(p);
        return rc;
    }
    *out = p;
    return TRELLIS_OK;
}

void trellis_list_page_free(trellis_list_page_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        tr_trans_info_clear(&p->items[i]);
    free(p->items);
    free(p->next_page_token);
    free(p);
}
