/*
 * client.c — trellis_client_t: the initiator's connection to trellisd and
 * the TM service's RPCs (NewGid, Begin, RegisterBranch, Submit, Abort,
 * Query, List).
 *
 * A client owns a channel slot (channel.c) for trellisd's address: one
 * channel, connected lazily by gRPC on the first call, with every TM method
 * registered on it, and replaced if it gets stuck after trellisd restarts.
 * Calls from many threads share it; each blocking call runs on a
 * completion queue of its own (see unary.c). A client may also own an
 * asynchronous queue (async.c, after trellis_async_start); freeing the
 * client first ends the calls in flight on it and runs their callbacks.
 * trellis_client_free must not race with blocking calls still running on
 * the same client.
 *
 * Every blocking RPC is: build and pack the request (requests.c, shared
 * with the asynchronous calls), tr_unary_call, read the reply
 * (tr_tm_reply_read, shared too), copy out what the caller asked for.
 * Replies that do not parse are TRELLIS_INTERNAL: they mean trellisd and
 * this SDK disagree about trellis.v1.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trellis/v1/tm.pb-c.h"
#include "trellis_wire.h"

_Static_assert(TR_TM_N_METHODS <= TR_CHAN_MAX_METHODS,
               "tr_chan_t has no room for every TM method");

struct trellis_client {
    uint32_t call_timeout_ms;
    tr_chan_slot_t slot;
    tr_async_t *async;       /* the asynchronous calls' queue (async.c); NULL
                                until trellis_async_start */
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
    if (c == NULL || tr_chan_slot_init(&c->slot, target, tr_tm_method_names,
                                       TR_TM_N_METHODS) != TRELLIS_OK) {
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
    /* First: the calls in flight end (their callbacks run) while the
     * channel they use is still there. */
    tr_async_close(c->async);
    tr_chan_slot_destroy(&c->slot);
    pthread_mutex_destroy(&c->id_lock);
    free(c);
}

/* ---- one TM call ----------------------------------------------------- */

tr_async_t *tr_client_async(trellis_client_t *c)
{
    return c->async;
}

void tr_client_set_async(trellis_client_t *c, tr_async_t *a)
{
    c->async = a;
}

tr_chan_slot_t *tr_client_slot(trellis_client_t *c)
{
    return &c->slot;
}

uint32_t tr_client_timeout_ms(const trellis_client_t *c)
{
    return c->call_timeout_ms;
}

void tr_client_note_cluster_id(trellis_client_t *c, const char *id)
{
    pthread_mutex_lock(&c->id_lock);
    snprintf(c->cluster_id, sizeof c->cluster_id, "%s", id);
    c->cluster_id_known = 1;
    pthread_mutex_unlock(&c->id_lock);
}

trellis_rc_t tr_client_exec(trellis_client_t *c, const tr_tm_req_t *req,
                            uint8_t **reply, size_t *reply_len, char *err,
                            size_t errlen)
{
    *reply = NULL;
    *reply_len = 0;
    if (c == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "client is NULL");
    tr_chan_t *chan = tr_chan_acquire(&c->slot);
    if (chan == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a channel to %s", c->slot.target);
    char cluster_id[TRELLIS_CLUSTER_ID_MAX + 1];
    int cluster_id_got = 0;
    tr_unary_t u = {
        .channel = chan->channel,
        .registered = req->method >= 0 ? chan->registered[req->method] : NULL,
        .method = req->name,
        .target = c->slot.target,
        .req = req->buf,
        .req_len = req->len,
        .timeout_ms = c->call_timeout_ms,
        .md_keys = req->md_keys,
        .md_values = (const char *const *)req->md_values,
        .n_md = req->n_md,
        .cluster_id = cluster_id,
        .cluster_id_got = &cluster_id_got,
    };
    trellis_rc_t rc = tr_unary_call(&u, reply, reply_len, err, errlen);
    tr_chan_release(&c->slot, chan, rc);
    if (cluster_id_got)
        tr_client_note_cluster_id(c, cluster_id);
    return rc;
}

trellis_rc_t tr_tm_run(trellis_client_t *c, const tr_tm_req_t *req,
                       tr_tm_reply_t *out, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    tr_tm_reply_init(out);
    trellis_rc_t rc = tr_client_exec(c, req, &buf, &len, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_tm_reply_read(req->method, buf, len, out, err, errlen);
    free(buf);
    return rc;
}

/* Pack req, call method (m: its index in tr_tm_method_names, or -1 to
 * call it by name) with the request metadata md (NULL: none), unpack the
 * reply as reply_desc. On TRELLIS_OK *reply is the caller's
 * (protobuf_c_message_free_unpacked). */
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
    tr_tm_req_t packed;
    trellis_rc_t rc = tr_tm_pack(m, method, req, &packed, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_tm_req_set_md(&packed, md, err, errlen);
    uint8_t *rep_buf = NULL;
    size_t rep_len = 0;
    if (rc == TRELLIS_OK)
        rc = tr_client_exec(c, &packed, &rep_buf, &rep_len, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_reply_unpack(reply_desc, rep_buf, rep_len, packed.name, reply,
                             err, errlen);
    free(rep_buf);
    tr_tm_req_clear(&packed);
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

static trellis_rc_t tm_call(trellis_client_t *c, int m,
                            const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *reply_desc,
                            ProtobufCMessage **reply, char *err, size_t errlen)
{
    return call_method(c, m, tr_tm_method_names[m], req, NULL, reply_desc,
                       reply, err, errlen);
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

void tr_client_cluster_id_peek(trellis_client_t *c, char *out, size_t outlen)
{
    pthread_mutex_lock(&c->id_lock);
    snprintf(out, outlen, "%s", c->cluster_id_known ? c->cluster_id : "");
    pthread_mutex_unlock(&c->id_lock);
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

/* ---- NewGid, Begin, RegisterBranch, Submit, Abort --------------------- */

/* Send a request built by requests.c (released here) and read the reply
 * into *out (tr_tm_reply_clear after), unless building it failed (rc). */
static trellis_rc_t run_built(trellis_client_t *c, trellis_rc_t rc,
                              tr_tm_req_t *req, tr_tm_reply_t *out, char *err,
                              size_t errlen)
{
    tr_tm_reply_init(out);
    if (rc == TRELLIS_OK)
        rc = tr_tm_run(c, req, out, err, errlen);
    tr_tm_req_clear(req);
    return rc;
}

trellis_rc_t trellis_new_gid(trellis_client_t *c, char *gid, size_t gidlen,
                             char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (gid == NULL || gidlen == 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "gid buffer is NULL or empty");
    gid[0] = '\0';
    tr_tm_req_t req;
    tr_tm_reply_t rep;
    trellis_rc_t rc = run_built(c, tr_tm_new_gid_req(&req, err, errlen), &req,
                                &rep, err, errlen);
    size_t n = strlen(rep.gid);
    if (rc == TRELLIS_OK && n >= gidlen)
        rc = tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                     "gid buffer of %zu bytes is too small for the %zu-byte "
                     "gid trellisd chose",
                     gidlen, n);
    else if (rc == TRELLIS_OK)
        memcpy(gid, rep.gid, n + 1);
    tr_tm_reply_clear(&rep);
    return rc;
}

trellis_rc_t trellis_begin(trellis_client_t *c, const char *gid,
                           const trellis_options_t *o, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    tr_tm_req_t req;
    tr_tm_reply_t rep;
    trellis_rc_t rc = run_built(c, tr_tm_begin_req(gid, o, &req, err, errlen),
                                &req, &rep, err, errlen);
    tr_tm_reply_clear(&rep);
    return rc;
}

trellis_rc_t trellis_register_branch(trellis_client_t *c, const char *gid,
                                     const char *branch_id, trellis_mode_t mode,
                                     const trellis_branch_op_t *ops,
                                     size_t n_ops, const void *payload,
                                     size_t payload_len, char *err,
                                     size_t errlen)
{
    tr_err_clear(err, errlen);
    tr_tm_req_t req;
    tr_tm_reply_t rep;
    trellis_rc_t rc =
        run_built(c,
                  tr_tm_register_req(gid, branch_id, mode, ops, n_ops, payload,
                                     payload_len, &req, err, errlen),
                  &req, &rep, err, errlen);
    tr_tm_reply_clear(&rep);
    return rc;
}

trellis_rc_t tr_submit_run(trellis_client_t *c, const tr_tm_req_t *req,
                           trellis_trans_status_t *status, char *reason,
                           size_t reasonlen, char *err, size_t errlen)
{
    tr_copy_out(reason, reasonlen, "");
    tr_tm_reply_t rep;
    trellis_rc_t rc = tr_tm_run(c, req, &rep, err, errlen);
    if (rc == TRELLIS_OK) {
        if (status != NULL)
            *status = rep.status;
        tr_copy_out(reason, reasonlen, rep.reason);
    }
    tr_tm_reply_clear(&rep);
    return rc;
}

trellis_rc_t tr_submit(trellis_client_t *c,
                       const Trellis__V1__SubmitRequest *req,
                       const tr_request_md_t *md,
                       trellis_trans_status_t *status, char *reason,
                       size_t reasonlen, char *err, size_t errlen)
{
    tr_copy_out(reason, reasonlen, "");
    tr_tm_req_t packed;
    trellis_rc_t rc =
        tr_tm_pack(TR_TM_SUBMIT, NULL, &req->base, &packed, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_tm_req_set_md(&packed, md, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_submit_run(c, &packed, status, reason, reasonlen, err, errlen);
    tr_tm_req_clear(&packed);
    return rc;
}

trellis_rc_t trellis_submit(trellis_client_t *c, const char *gid, int wait,
                            trellis_trans_status_t *status, char *reason,
                            size_t reasonlen, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    tr_copy_out(reason, reasonlen, "");
    tr_tm_req_t req;
    trellis_rc_t rc = tr_tm_submit_req(gid, wait, &req, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_submit_run(c, &req, status, reason, reasonlen, err, errlen);
    tr_tm_req_clear(&req);
    return rc;
}

trellis_rc_t trellis_abort(trellis_client_t *c, const char *gid,
                           const char *reason, int wait,
                           trellis_trans_status_t *status, char *err,
                           size_t errlen)
{
    tr_err_clear(err, errlen);
    tr_tm_req_t req;
    tr_tm_reply_t rep;
    trellis_rc_t rc =
        run_built(c, tr_tm_abort_req(gid, reason, wait, &req, err, errlen),
                  &req, &rep, err, errlen);
    if (rc == TRELLIS_OK && status != NULL)
        *status = rep.status;
    tr_tm_reply_clear(&rep);
    return rc;
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
        tm_call(c, TR_TM_QUERY, &req.base,
                &trellis__v1__query_reply__descriptor, &rep, err, errlen);
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
        tm_call(c, TR_TM_LIST, &req.base, &trellis__v1__list_reply__descriptor,
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
