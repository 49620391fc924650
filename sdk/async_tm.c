/*
 * async_tm.c — the public asynchronous calls of trellis_async.h that go
 * to trellisd (NewGid, Begin, RegisterBranch, Submit, Abort, a saga's
 * Submit) or to a participant (trellis_async_call_unary), and the plumbing
 * the TCC/XA steps (ap_trans.c) and runners (async_run.c) share.
 *
 * Each call: check that there is somewhere to report to, build the very
 * request the blocking call builds (requests.c), hand it to the client's
 * queue (async.c), and when it finishes read the reply as the blocking
 * call reads it and hand a trellis_async_result_t to the callback. What a
 * call needs after it returned (the gid, the callback) is copied into its
 * context, owned by the call and freed after the callback ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- setup ----------------------------------------------------------- */

trellis_rc_t trellis_async_start(trellis_client_t *c, trellis_async_mode_t mode,
                                 char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (c == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "client is NULL");
    if (tr_client_async(c) != NULL)
        return tr_errf(TRELLIS_FAILED_PRECONDITION, err, errlen,
                       "trellis_async_start was already called on this "
                       "client");
    tr_async_t *a = NULL;
    trellis_rc_t rc = tr_async_new(mode, &a, err, errlen);
    if (rc == TRELLIS_OK)
        tr_client_set_async(c, a);
    return rc;
}

int trellis_async_poll(trellis_client_t *c, uint32_t timeout_ms)
{
    return c != NULL ? tr_async_poll(tr_client_async(c), timeout_ms) : -1;
}

trellis_rc_t tr_async_usable(trellis_client_t *c, trellis_async_cb cb)
{
    if (c == NULL || cb == NULL)
        return TRELLIS_INVALID_ARGUMENT;
    if (tr_client_async(c) == NULL)
        return TRELLIS_FAILED_PRECONDITION;
    return TRELLIS_OK;
}

/* ---- one call's context ---------------------------------------------- */

typedef struct {
    trellis_client_t *c;
    int method; /* a tr_tm_method_t whose reply is read, or -1: raw reply */
    char *gid;  /* owned; NULL: "" */
    trellis_async_cb cb;
    void *user;
} call_ctx_t;

static call_ctx_t *ctx_new(trellis_client_t *c, int method, const char *gid,
                           trellis_async_cb cb, void *user)
{
    call_ctx_t *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    x->c = c;
    x->method = method;
    x->cb = cb;
    x->user = user;
    if (gid != NULL && (x->gid = strdup(gid)) == NULL) {
        free(x);
        return NULL;
    }
    return x;
}

static trellis_async_result_t result_init(const call_ctx_t *x)
{
    return (trellis_async_result_t){.message = "",
                                    .gid = x->gid != NULL ? x->gid : "",
                                    .reason = "",
                                    .branch = -1};
}

/* The continuation of every call made here. */
static void call_done(void *vctx, const tr_aop_result_t *r)
{
    call_ctx_t *x = vctx;
    if (r->cluster_id != NULL && x->method >= 0)
        tr_client_note_cluster_id(x->c, r->cluster_id);
    trellis_async_result_t res = result_init(x);
    res.rc = r->rc;
    res.message = r->err;
    tr_tm_reply_t rep;
    tr_tm_reply_init(&rep);
    char err[512];
    if (r->rc == TRELLIS_OK && x->method >= 0) {
        res.rc = tr_tm_reply_read(x->method, r->reply, r->reply_len, &rep, err,
                                  sizeof err);
        res.message = res.rc == TRELLIS_OK ? "" : err;
        res.status = rep.status;
        res.reason = rep.reason;
        res.branches_registered = rep.branches_registered;
        if (x->method == TR_TM_NEW_GID)
            res.gid = rep.gid;
    } else if (r->rc == TRELLIS_OK) {
        res.reply = r->reply;
        res.reply_len = r->reply_len;
    }
    x->cb(&res, x->user);
    tr_tm_reply_clear(&rep);
    free(x->gid);
    free(x);
}

/* Out of memory for the context itself: only the inline report is left. */
static void report_no_ctx(const char *gid, trellis_async_cb cb, void *user)
{
    trellis_async_result_t res = {.rc = TRELLIS_RESOURCE_EXHAUSTED,
                                  .message = "out of memory for an "
                                             "asynchronous call",
                                  .gid = gid != NULL ? gid : "",
                                  .reason = "",
                                  .branch = -1};
    cb(&res, user);
}

void tr_async_report(trellis_client_t *c, trellis_rc_t rc, const char *msg,
                     const char *gid, trellis_async_cb cb, void *user)
{
    call_ctx_t *x = ctx_new(c, -1, gid, cb, user);
    if (x == NULL)
        report_no_ctx(gid, cb, user);
    else
        tr_async_fail(tr_client_async(c), rc, msg, call_done, x);
}

void tr_async_tm_send(trellis_client_t *c, trellis_rc_t build_rc,
                      const char *build_err, tr_tm_req_t *req, const char *gid,
                      trellis_async_cb cb, void *user)
{
    call_ctx_t *x = ctx_new(c, req->method, gid, cb, user);
    if (x == NULL) {
        tr_tm_req_clear(req);
        report_no_ctx(gid, cb, user);
        return;
    }
    if (build_rc != TRELLIS_OK) {
        tr_async_fail(tr_client_async(c), build_rc, build_err, call_done, x);
    } else {
        tr_async_call_t call = {.slot = tr_client_slot(c),
                                .registered = req->method,
                                .method = req->name,
                                .req = req->buf,
                                .req_len = req->len,
                                .md_keys = req->md_keys,
                                .md_values =
                                    (const char *const *)req->md_values,
                                .n_md = req->n_md,
                                .timeout_ms = tr_client_timeout_ms(c),
                                .want_cluster_id = 1};
        tr_async_call(tr_client_async(c), &call, call_done, x);
    }
    tr_tm_req_clear(req);
}

void tr_async_unary_send(trellis_client_t *c, const tr_async_unary_t *u,
                         trellis_async_cb cb, void *user)
{
    call_ctx_t *x = ctx_new(c, -1, u->gid, cb, user);
    if (x == NULL) {
        report_no_ctx(u->gid, cb, user);
        return;
    }
    int own = 0;
    tr_chan_slot_t *slot = tr_unary_slot(u->host_port, &own);
    if (slot == NULL) {
        tr_async_fail(tr_client_async(c), TRELLIS_RESOURCE_EXHAUSTED,
                      "out of memory for a channel", call_done, x);
        return;
    }
    tr_async_call_t call = {.slot = slot,
                            .own_slot = own,
                            .registered = -1,
                            .method = u->method,
                            .req = u->req,
                            .req_len = u->req_len,
                            .md_keys = u->md_keys,
                            .md_values = u->md_values,
                            .n_md = u->n_md,
                            .timeout_ms = u->timeout_ms};
    tr_async_call(tr_client_async(c), &call, call_done, x);
}

/* ---- the public calls ------------------------------------------------ */

/* Send a request built with rc (see tr_async_tm_send) if c and cb can be
 * reported to; else release it and return why. */
static trellis_rc_t send_built(trellis_client_t *c, trellis_rc_t rc,
                               const char *err, tr_tm_req_t *req,
                               const char *gid, trellis_async_cb cb, void *user)
{
    trellis_rc_t usable = tr_async_usable(c, cb);
    if (usable != TRELLIS_OK) {
        tr_tm_req_clear(req);
        return usable;
    }
    tr_async_tm_send(c, rc, err, req, gid, cb, user);
    return TRELLIS_OK;
}

trellis_rc_t trellis_async_new_gid(trellis_client_t *c, trellis_async_cb cb,
                                   void *user)
{
    char err[512];
    tr_tm_req_t req;
    trellis_rc_t rc = tr_tm_new_gid_req(&req, err, sizeof err);
    return send_built(c, rc, err, &req, NULL, cb, user);
}

trellis_rc_t trellis_async_begin(trellis_client_t *c, const char *gid,
                                 const trellis_options_t *o,
                                 trellis_async_cb cb, void *user)
{
    char err[512];
    tr_tm_req_t req;
    trellis_rc_t rc = tr_tm_begin_req(gid, o, &req, err, sizeof err);
    return send_built(c, rc, err, &req, gid, cb, user);
}

trellis_rc_t trellis_async_register_branch(
    trellis_client_t *c, const char *gid, const char *branch_id,
    trellis_mode_t mode, const trellis_branch_op_t *ops, size_t n_ops,
    const void *payload, size_t payload_len, trellis_async_cb cb, void *user)
{
    char err[512];
    tr_tm_req_t req;
    trellis_rc_t rc =
        tr_tm_register_req(gid, branch_id, mode, ops, n_ops, payload,
                           payload_len, &req, err, sizeof err);
    return send_built(c, rc, err, &req, gid, cb, user);
}

trellis_rc_t trellis_async_submit(trellis_client_t *c, const char *gid,
                                  int wait, trellis_async_cb cb, void *user)
{
    char err[512];
    tr_tm_req_t req;
    trellis_rc_t rc = tr_tm_submit_req(gid, wait, &req, err, sizeof err);
    return send_built(c, rc, err, &req, gid, cb, user);
}

trellis_rc_t trellis_async_abort(trellis_client_t *c, const char *gid,
                                 const char *reason, int wait,
                                 trellis_async_cb cb, void *user)
{
    char err[512];
    tr_tm_req_t req;
    trellis_rc_t rc = tr_tm_abort_req(gid, reason, wait, &req, err, sizeof err);
    return send_built(c, rc, err, &req, gid, cb, user);
}

trellis_rc_t trellis_async_saga_submit(trellis_client_t *c,
                                       const trellis_saga_t *s,
                                       trellis_async_cb cb, void *user)
{
    char err[512];
    tr_tm_req_t req;
    trellis_rc_t rc = tr_saga_submit_req(s, &req, err, sizeof err);
    return send_built(c, rc, err, &req, tr_saga_gid(s), cb, user);
}

trellis_rc_t trellis_async_call_unary(trellis_client_t *c, const char *target,
                                      const char *method, const void *req,
                                      size_t req_len,
                                      const char *const *md_keys,
                                      const char *const *md_values, size_t n_md,
                                      uint32_t timeout_ms, trellis_async_cb cb,
                                      void *user)
{
    trellis_rc_t rc = tr_async_usable(c, cb);
    if (rc != TRELLIS_OK)
        return rc;
    char err[512];
    rc = tr_unary_args_check(target, method, req, req_len, err, sizeof err);
    if (rc != TRELLIS_OK) {
        tr_async_report(c, rc, err, NULL, cb, user);
        return TRELLIS_OK;
    }
    tr_async_unary_t u = {.host_port = target,
                          .method = method,
                          .req = req,
                          .req_len = req_len,
                          .md_keys = md_keys,
                          .md_values = md_values,
                          .n_md = n_md,
                          .timeout_ms = timeout_ms};
    tr_async_unary_send(c, &u, cb, user);
    return TRELLIS_OK;
}
