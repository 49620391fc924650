/*
 * requests.c — the initiator's TM requests (NewGid, Begin, RegisterBranch,
 * Submit, Abort), checked, built and packed, and what their replies say.
 *
 * Why a file of its own: the blocking calls (client.c, saga.c, ...) and
 * the asynchronous ones (async_tm.c) send the same requests and read the
 * same replies. Both go through here, so an argument refused, a field
 * filled or a reply read is the same fact on either path. A request is
 * packed at once into bytes it owns (tr_tm_req_t): nothing of the caller's
 * is borrowed after the builder returns, which is what lets an
 * asynchronous call outlive its caller's buffers.
 *
 * Pure functions over their arguments; thread safe.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trellis/v1/tm.pb-c.h"

const char *const tr_tm_method_names[TR_TM_N_METHODS] = {
    [TR_TM_NEW_GID] = "/trellis.v1.TM/NewGid",
    [TR_TM_BEGIN] = "/trellis.v1.TM/Begin",
    [TR_TM_REGISTER_BRANCH] = "/trellis.v1.TM/RegisterBranch",
    [TR_TM_SUBMIT] = "/trellis.v1.TM/Submit",
    [TR_TM_ABORT] = "/trellis.v1.TM/Abort",
    [TR_TM_QUERY] = "/trellis.v1.TM/Query",
    [TR_TM_LIST] = "/trellis.v1.TM/List",
};

/* Protobuf-c wants char *; the strings are only read while packing. */
static char *pb_str(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

/* ---- packing --------------------------------------------------------- */

void tr_tm_req_init(tr_tm_req_t *r)
{
    memset(r, 0, sizeof *r);
    r->method = -1;
}

void tr_tm_req_clear(tr_tm_req_t *r)
{
    free(r->buf);
    for (size_t i = 0; i < r->n_md; i++)
        free(r->md_values[i]);
    tr_tm_req_init(r);
}

trellis_rc_t tr_tm_req_set_md(tr_tm_req_t *r, const tr_request_md_t *md,
                              char *err, size_t errlen)
{
    for (size_t i = 0; md != NULL && i < md->n && i < 2; i++) {
        r->md_values[i] = strdup(md->values[i]);
        if (r->md_values[i] == NULL)
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "out of memory for the request's metadata");
        r->md_keys[i] = md->keys[i];
        r->n_md = i + 1;
    }
    return TRELLIS_OK;
}

trellis_rc_t tr_tm_pack(int method, const char *name,
                        const ProtobufCMessage *msg, tr_tm_req_t *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->method = method;
    out->name = method >= 0 ? tr_tm_method_names[method] : name;
    out->len = protobuf_c_message_get_packed_size(msg);
    out->buf = malloc(out->len > 0 ? out->len : 1);
    if (out->buf == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a %zu-byte request", out->len);
    protobuf_c_message_pack(msg, out->buf);
    return TRELLIS_OK;
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

/* ---- the requests ---------------------------------------------------- */

trellis_rc_t tr_tm_new_gid_req(tr_tm_req_t *out, char *err, size_t errlen)
{
    tr_tm_req_init(out);
    Trellis__V1__NewGidRequest req = TRELLIS__V1__NEW_GID_REQUEST__INIT;
    return tr_tm_pack(TR_TM_NEW_GID, NULL, &req.base, out, err, errlen);
}

/* The modes a branch may be registered in (a workflow's head is made by
 * StartWorkflow; trellisd refuses a local step or hooks outside a
 * workflow). */
static int mode_is_valid(trellis_mode_t m)
{
    return m == TRELLIS_MODE_SAGA || m == TRELLIS_MODE_TCC ||
           m == TRELLIS_MODE_XA || m == TRELLIS_MODE_LOCAL ||
           m == TRELLIS_MODE_HOOKS;
}

static trellis_rc_t register_check(const char *gid, const char *branch_id,
                                   trellis_mode_t mode,
                                   const trellis_branch_op_t *ops, size_t n_ops,
                                   const void *payload, size_t payload_len,
                                   char *err, size_t errlen)
{
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
    return TRELLIS_OK;
}

/* A RegisterBranchRequest with the ops arrays it points to (owned). */
typedef struct {
    Trellis__V1__RegisterBranchRequest req;
    Trellis__V1__BranchOp *op_msgs;
    Trellis__V1__BranchOp **op_ptrs;
} reg_msg_t;

static void reg_msg_free(reg_msg_t *m)
{
    free(m->op_msgs);
    free(m->op_ptrs);
    m->op_msgs = NULL;
    m->op_ptrs = NULL;
}

/* Fill *m (zeroed by the caller) for b under gid (NULL: the field left
 * empty, as a Begin's branches may leave it); nothing is copied: m points
 * into b. RESOURCE_EXHAUSTED when out of memory (m holds nothing). */
static trellis_rc_t reg_msg_fill(reg_msg_t *m, const char *gid,
                                 const tr_branch_reg_t *b, char *err,
                                 size_t errlen)
{
    if (b->n_ops > 0) {
        m->op_msgs = calloc(b->n_ops, sizeof *m->op_msgs);
        m->op_ptrs = calloc(b->n_ops, sizeof *m->op_ptrs);
        if (m->op_msgs == NULL || m->op_ptrs == NULL) {
            reg_msg_free(m);
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "out of memory for %zu branch ops", b->n_ops);
        }
    }
    for (size_t i = 0; i < b->n_ops; i++) {
        Trellis__V1__BranchOp init = TRELLIS__V1__BRANCH_OP__INIT;
        m->op_msgs[i] = init;
        m->op_msgs[i].op = (Trellis__V1__OpKind)b->ops[i].op;
        m->op_msgs[i].target = pb_str(b->ops[i].target);
        m->op_ptrs[i] = &m->op_msgs[i];
    }
    Trellis__V1__RegisterBranchRequest init =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    m->req = init;
    m->req.gid = pb_str(gid);
    m->req.branch_id = pb_str(b->branch_id);
    m->req.mode = (Trellis__V1__BranchMode)b->mode;
    m->req.n_ops = b->n_ops;
    m->req.ops = m->op_ptrs;
    m->req.payload.len = b->payload_len;
    m->req.payload.data = (uint8_t *)b->payload;
    return TRELLIS_OK;
}

trellis_rc_t tr_tm_register_req(const char *gid, const char *branch_id,
                                trellis_mode_t mode,
                                const trellis_branch_op_t *ops, size_t n_ops,
                                const void *payload, size_t payload_len,
                                tr_tm_req_t *out, char *err, size_t errlen)
{
    tr_tm_req_init(out);
    trellis_rc_t rc = register_check(gid, branch_id, mode, ops, n_ops, payload,
                                     payload_len, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    const tr_branch_reg_t b = {branch_id, mode,    ops,
                               n_ops,     payload, payload_len};
    reg_msg_t m = {0};
    rc = reg_msg_fill(&m, gid, &b, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_tm_pack(TR_TM_REGISTER_BRANCH, NULL, &m.req.base, out, err,
                        errlen);
    reg_msg_free(&m);
    return rc;
}

static void begin_branches_free(reg_msg_t *msgs,
                                Trellis__V1__RegisterBranchRequest **ptrs,
                                size_t n)
{
    for (size_t i = 0; msgs != NULL && i < n; i++)
        reg_msg_free(&msgs[i]);
    free(msgs);
    free(ptrs);
}

/* The Begin's branches as messages: *msgs and *ptrs (begin_branches_free
 * after), each checked as a RegisterBranch is. */
static trellis_rc_t begin_branches_fill(
    const char *gid, const tr_branch_reg_t *b, size_t n, reg_msg_t **msgs,
    Trellis__V1__RegisterBranchRequest ***ptrs, char *err, size_t errlen)
{
    *msgs = NULL;
    *ptrs = NULL;
    if (n == 0)
        return TRELLIS_OK;
    if (b == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%zu branches given but branches is NULL", n);
    trellis_rc_t rc = TRELLIS_OK;
    for (size_t i = 0; rc == TRELLIS_OK && i < n; i++)
        rc =
            register_check(gid, b[i].branch_id, b[i].mode, b[i].ops, b[i].n_ops,
                           b[i].payload, b[i].payload_len, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    *msgs = calloc(n, sizeof **msgs);
    *ptrs = calloc(n, sizeof **ptrs);
    for (size_t i = 0; *msgs != NULL && *ptrs != NULL && i < n; i++) {
        rc = reg_msg_fill(&(*msgs)[i], NULL, &b[i], err, errlen);
        if (rc != TRELLIS_OK)
            break;
        (*ptrs)[i] = &(*msgs)[i].req;
    }
    if (*msgs == NULL || *ptrs == NULL)
        rc = tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                     "out of memory for %zu branches", n);
    if (rc != TRELLIS_OK) {
        begin_branches_free(*msgs, *ptrs, n);
        *msgs = NULL;
        *ptrs = NULL;
    }
    return rc;
}

trellis_rc_t tr_tm_begin_req(const char *gid, const trellis_options_t *o,
                             tr_tm_req_t *out, char *err, size_t errlen)
{
    return tr_tm_begin_with_req(gid, o, NULL, 0, out, err, errlen);
}

trellis_rc_t tr_tm_begin_with_req(const char *gid, const trellis_options_t *o,
                                  const tr_branch_reg_t *branches, size_t n,
                                  tr_tm_req_t *out, char *err, size_t errlen)
{
    tr_tm_req_init(out);
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "gid is NULL; use trellis_new_gid for a fresh one");
    reg_msg_t *msgs = NULL;
    Trellis__V1__RegisterBranchRequest **ptrs = NULL;
    trellis_rc_t rc =
        begin_branches_fill(gid, branches, n, &msgs, &ptrs, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    tr_pb_options_t *opts = NULL;
    Trellis__V1__BeginRequest req = TRELLIS__V1__BEGIN_REQUEST__INIT;
    req.gid = pb_str(gid);
    req.n_branches = n;
    req.branches = ptrs;
    if (o != NULL && (opts = tr_pb_options_new(o)) == NULL)
        rc = tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                     "out of memory for transaction options");
    if (opts != NULL)
        req.options = tr_pb_options_get(opts);
    if (rc == TRELLIS_OK)
        rc = tr_tm_pack(TR_TM_BEGIN, NULL, &req.base, out, err, errlen);
    tr_request_md_t md = tr_pb_options_md(opts);
    if (rc == TRELLIS_OK)
        rc = tr_tm_req_set_md(out, &md, err, errlen);
    tr_pb_options_free(opts);
    begin_branches_free(msgs, ptrs, n);
    return rc;
}

trellis_rc_t tr_tm_submit_req(const char *gid, int wait, tr_tm_req_t *out,
                              char *err, size_t errlen)
{
    tr_tm_req_init(out);
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gid is NULL");
    /* A begun transaction keeps its options; only wait_result counts. */
    Trellis__V1__TransOptions opts = TRELLIS__V1__TRANS_OPTIONS__INIT;
    opts.wait_result = wait != 0;
    Trellis__V1__SubmitRequest req = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    req.gid = pb_str(gid);
    req.options = &opts;
    return tr_tm_pack(TR_TM_SUBMIT, NULL, &req.base, out, err, errlen);
}

trellis_rc_t tr_tm_abort_req(const char *gid, const char *reason, int wait,
                             tr_tm_req_t *out, char *err, size_t errlen)
{
    tr_tm_req_init(out);
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gid is NULL");
    Trellis__V1__AbortRequest req = TRELLIS__V1__ABORT_REQUEST__INIT;
    req.gid = pb_str(gid);
    req.reason = pb_str(reason);
    req.wait_result = wait != 0;
    return tr_tm_pack(TR_TM_ABORT, NULL, &req.base, out, err, errlen);
}

/* ---- the replies ----------------------------------------------------- */

static const ProtobufCMessageDescriptor *reply_desc(int method)
{
    switch (method) {
    case TR_TM_NEW_GID:
        return &trellis__v1__new_gid_reply__descriptor;
    case TR_TM_BEGIN:
        return &trellis__v1__begin_reply__descriptor;
    case TR_TM_REGISTER_BRANCH:
        return &trellis__v1__register_branch_reply__descriptor;
    case TR_TM_SUBMIT:
        return &trellis__v1__submit_reply__descriptor;
    case TR_TM_ABORT:
        return &trellis__v1__abort_reply__descriptor;
    default:
        return NULL;
    }
}

/* The fields the caller may ask for, pointing into the unpacked msg. */
static trellis_rc_t reply_fields(int method, tr_tm_reply_t *out, char *err,
                                 size_t errlen)
{
    if (method == TR_TM_NEW_GID) {
        out->gid = ((const Trellis__V1__NewGidReply *)out->msg)->gid;
        if (out->gid[0] == '\0')
            return tr_errf(TRELLIS_INTERNAL, err, errlen,
                           "trellisd answered NewGid with an empty gid");
    } else if (method == TR_TM_SUBMIT) {
        const Trellis__V1__SubmitReply *r = (const void *)out->msg;
        out->status = (trellis_trans_status_t)r->status;
        out->reason = r->reason;
    } else if (method == TR_TM_ABORT) {
        const Trellis__V1__AbortReply *r = (const void *)out->msg;
        out->status = (trellis_trans_status_t)r->status;
    } else if (method == TR_TM_BEGIN) {
        const Trellis__V1__BeginReply *r = (const void *)out->msg;
        out->status = (trellis_trans_status_t)r->status;
        out->branches_registered = r->branches_registered;
    }
    return TRELLIS_OK;
}

void tr_tm_reply_init(tr_tm_reply_t *r)
{
    memset(r, 0, sizeof *r);
    r->reason = "";
    r->gid = "";
}

trellis_rc_t tr_tm_reply_read(int method, const uint8_t *buf, size_t len,
                              tr_tm_reply_t *out, char *err, size_t errlen)
{
    tr_tm_reply_init(out);
    const ProtobufCMessageDescriptor *desc = reply_desc(method);
    if (desc == NULL)
        return tr_errf(TRELLIS_INTERNAL, err, errlen,
                       "no reply reader for TM method %d", method);
    trellis_rc_t rc = tr_reply_unpack(
        desc, buf, len, tr_tm_method_names[method], &out->msg, err, errlen);
    if (rc == TRELLIS_OK)
        rc = reply_fields(method, out, err, errlen);
    if (rc != TRELLIS_OK)
        tr_tm_reply_clear(out);
    return rc;
}

void tr_tm_reply_clear(tr_tm_reply_t *r)
{
    if (r->msg != NULL)
        protobuf_c_message_free_unpacked(r->msg, NULL);
    tr_tm_reply_init(r);
}
