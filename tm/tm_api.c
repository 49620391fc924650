/*
 * tm_api: the gRPC half of trellisd's services (see tm_api.h): one generic
 * handler for every method, each method's check and action, and the
 * engine's answers turned into protobuf replies.
 */
#include "tm_api.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "tm_admin.h"
#include "tm_api_dtm.h"
#include "tm_api_msg.h"
#include "tm_api_workflow.h"
#include "tm_exit.h"
#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_trace.h"
#include "trellis/v1/tm.pb-c.h"

/* ---- the front: answers as protobuf replies ----------------------------- */

static void reply_list(tm_rpc_t *rpc, const tm_answer_t *a)
{
    Trellis__V1__ListReply lr = TRELLIS__V1__LIST_REPLY__INIT;
    char token[TM_GID_MAX + 32] = "";
    size_t n = a->n_items;
    lr.transactions = calloc(n ? n : 1, sizeof(*lr.transactions));
    if (!lr.transactions)
        tm_exit_oom("list");
    for (size_t i = 0; i < n; i++) {
        lr.transactions[i] = tm_trans_to_proto(a->items[i], 0);
        if (!lr.transactions[i])
            tm_exit_oom("list");
    }
    lr.n_transactions = n;
    if (a->more) /* the next page starts after the last item */
        snprintf(token, sizeof(token), "%" PRId64 ":%s",
                 a->items[n - 1]->created_ms, a->items[n - 1]->gid);
    lr.next_page_token = token;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &lr.base);
    for (size_t i = 0; i < n; i++)
        tm_trans_proto_free(lr.transactions[i]);
    free(lr.transactions);
}

static void reply_query(tm_rpc_t *rpc, const tm_answer_t *a)
{
    Trellis__V1__QueryReply q = TRELLIS__V1__QUERY_REPLY__INIT;
    q.trans = tm_trans_to_proto(a->trans, 1);
    if (!q.trans)
        tm_exit_oom("query");
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &q.base);
    tm_trans_proto_free(q.trans);
}

static void reply_ok(tm_rpc_t *rpc, const tm_answer_t *a)
{
    Trellis__V1__TransStatus status = (Trellis__V1__TransStatus)a->status;
    switch (a->kind) {
    case TM_ANSWER_BEGIN: {
        Trellis__V1__BeginReply r = TRELLIS__V1__BEGIN_REPLY__INIT;
        r.gid = (char *)a->gid;
        r.status = status;
        r.branches_registered = a->registered;
        tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    case TM_ANSWER_REGISTER: {
        Trellis__V1__RegisterBranchReply r =
            TRELLIS__V1__REGISTER_BRANCH_REPLY__INIT;
        tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    case TM_ANSWER_SUBMIT: {
        Trellis__V1__SubmitReply r = TRELLIS__V1__SUBMIT_REPLY__INIT;
        r.gid = (char *)a->gid;
        r.status = status;
        r.reason = (char *)(a->reason ? a->reason : "");
        tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    case TM_ANSWER_ABORT: {
        Trellis__V1__AbortReply r = TRELLIS__V1__ABORT_REPLY__INIT;
        r.status = status;
        tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    case TM_ANSWER_QUERY:
        reply_query(rpc, a);
        return;
    case TM_ANSWER_LIST:
        reply_list(rpc, a);
        return;
    case TM_ANSWER_RETRY_NOW:
    case TM_ANSWER_FORCE_STOP:
        tm_admin_reply(rpc, a);
        return;
    case TM_ANSWER_START_WORKFLOW:
    case TM_ANSWER_RECORD_STEP:
        tm_workflow_reply(rpc, a);
        return;
    case TM_ANSWER_PREPARE_MESSAGE:
    case TM_ANSWER_SUBSCRIBE:
    case TM_ANSWER_UNSUBSCRIBE:
    case TM_ANSWER_SUBSCRIPTIONS:
        tm_msg_reply(rpc, a);
        return;
    }
    tm_server_reply(rpc, GRPC_STATUS_INTERNAL, "unknown answer", NULL);
}

typedef struct {
    tm_engine_t *eng;
    const tm_api_method_t *method;
} binding_t;

static void front_answer(void *user, tm_rpc_t *rpc, const tm_answer_t *a)
{
    (void)user;
    const binding_t *b = tm_server_rpc_user(rpc);
    if (b && b->method->reply)
        b->method->reply(rpc, a);
    else if (a->code != TM_CODE_OK)
        tm_server_reply(rpc, (grpc_status_code)a->code, a->message, NULL);
    else
        reply_ok(rpc, a);
}

static void front_drop(void *user, tm_rpc_t *rpc)
{
    (void)user;
    tm_server_drop(rpc);
}

static int front_watch_cancel(void *user, tm_rpc_t *rpc, tm_engine_cancel_fn fn,
                              void *fn_user, const char *key, char *err,
                              size_t errlen)
{
    (void)user;
    int rc = tm_server_watch_cancel(rpc, fn, fn_user, key, err, errlen);
    return rc == TM_SERVER_CALL_CLOSED ? TM_FRONT_CALL_CLOSED : rc;
}

static int front_expired(void *user, const tm_rpc_t *rpc)
{
    (void)user;
    return tm_server_rpc_expired(rpc);
}

/* The first header of each kind that was dropped is logged, once per
 * process; the metric counts every one. */
static void note_trace_dropped(unsigned dropped)
{
    static atomic_int logged[2];
    for (int parent = 0; parent < 2; parent++) {
        unsigned bit =
            parent ? TM_TRACE_DROPPED_PARENT : TM_TRACE_DROPPED_STATE;
        if (!(dropped & bit))
            continue;
        tm_metrics_trace_dropped(parent);
        if (atomic_exchange(&logged[parent], 1))
            continue;
        tm_log(TM_LOG_WARN,
               "event=trace_context_dropped header=%s msg=\"a request's %s "
               "metadata is malformed (W3C trace context) and is not "
               "forwarded; logged once, "
               "trellis_trace_context_dropped_total counts each\"",
               parent ? TM_TRACEPARENT_KEY : TM_TRACESTATE_KEY,
               parent ? TM_TRACEPARENT_KEY : TM_TRACESTATE_KEY);
    }
}

/* Entries of one key read (more are refused whole). */
#define TRACE_ENTRIES_MAX 8

/* The metadata values of key into v[0..TRACE_ENTRIES_MAX); returns how
 * many the request had. */
static size_t trace_values(const tm_rpc_t *rpc, const char *key,
                           tm_trace_value_t *v)
{
    const char *values[TRACE_ENTRIES_MAX];
    size_t lens[TRACE_ENTRIES_MAX];
    size_t n =
        tm_server_rpc_metadata(rpc, key, values, lens, TRACE_ENTRIES_MAX);
    for (size_t i = 0; i < n && i < TRACE_ENTRIES_MAX; i++)
        v[i] = (tm_trace_value_t){values[i], lens[i]};
    return n;
}

static void front_trace(void *user, const tm_rpc_t *rpc, tm_trace_t *out)
{
    (void)user;
    tm_trace_value_t parents[TRACE_ENTRIES_MAX], states[TRACE_ENTRIES_MAX];
    size_t np = trace_values(rpc, TM_TRACEPARENT_KEY, parents);
    size_t ns = trace_values(rpc, TM_TRACESTATE_KEY, states);
    int too_many = ns > TRACE_ENTRIES_MAX; /* refused whole */
    unsigned dropped =
        tm_trace_take(out, parents, np > 1 ? 2 : np, states, too_many ? 0 : ns);
    note_trace_dropped(dropped | (too_many ? TM_TRACE_DROPPED_STATE : 0));
}

void tm_api_front(tm_engine_front_t *out)
{
    out->answer = front_answer;
    out->drop = front_drop;
    out->watch_cancel = front_watch_cancel;
    out->expired = front_expired;
    out->user = NULL;
    out->trace = front_trace;
}

/* ---- the generic handler ------------------------------------------------ */

/* One per method registered (tm_server_add_method's user, so the front
 * finds a call's method); trellisd serves one engine per process. */
#define MAX_BINDINGS 48
static binding_t bindings[MAX_BINDINGS];
static size_t n_bindings;

static void handle(tm_rpc_t *rpc, const uint8_t *req, size_t len, void *user)
{
    const binding_t *b = user;
    const tm_api_method_t *m = b->method;
    ProtobufCMessage *msg = protobuf_c_message_unpack(m->desc, NULL, len, req);
    if (!msg) {
        char why[256];
        snprintf(why, sizeof(why),
                 "malformed request: %zu bytes that do not decode as %s", len,
                 m->desc->name);
        tm_server_reply(rpc, GRPC_STATUS_INVALID_ARGUMENT, why, NULL);
        return;
    }
    char err[512];
    int rc = m->validate
                 ? m->validate(msg, tm_engine_config(b->eng), err, sizeof(err))
                 : 0;
    int again = 0;
    if (rc != 0) {
        tm_server_reply(rpc,
                        rc == TM_DENIED ? GRPC_STATUS_PERMISSION_DENIED
                                        : GRPC_STATUS_INVALID_ARGUMENT,
                        err, NULL);
    } else {
        tm_engine_req_t rq = {rpc, req, len, handle, user};
        again = m->act(b->eng, &rq, msg) == TM_ENGINE_AGAIN;
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    if (again) /* the copy it found left memory: look again */
        handle(rpc, req, len, user);
}

/* ---- trellis.v1.TM ------------------------------------------------------ */

static int validate_begin(const ProtobufCMessage *m,
                          const tm_engine_config_t *cfg, char *err,
                          size_t errlen)
{
    return tm_validate_begin((const Trellis__V1__BeginRequest *)m, &cfg->limits,
                             err, errlen);
}

static int act_begin(tm_engine_t *e, const tm_engine_req_t *rq,
                     const ProtobufCMessage *m)
{
    return tm_engine_begin(e, rq, (const Trellis__V1__BeginRequest *)m);
}

static int validate_register(const ProtobufCMessage *m,
                             const tm_engine_config_t *cfg, char *err,
                             size_t errlen)
{
    return tm_validate_register((const Trellis__V1__RegisterBranchRequest *)m,
                                &cfg->limits, err, errlen);
}

static int act_register(tm_engine_t *e, const tm_engine_req_t *rq,
                        const ProtobufCMessage *m)
{
    return tm_engine_register(e, rq,
                              (const Trellis__V1__RegisterBranchRequest *)m);
}

static int validate_submit(const ProtobufCMessage *m,
                           const tm_engine_config_t *cfg, char *err,
                           size_t errlen)
{
    return tm_validate_submit((const Trellis__V1__SubmitRequest *)m,
                              &cfg->limits, err, errlen);
}

static int act_submit(tm_engine_t *e, const tm_engine_req_t *rq,
                      const ProtobufCMessage *m)
{
    return tm_engine_submit(e, rq, (const Trellis__V1__SubmitRequest *)m);
}

static int validate_abort(const ProtobufCMessage *m,
                          const tm_engine_config_t *cfg, char *err,
                          size_t errlen)
{
    (void)cfg;
    return tm_validate_abort((const Trellis__V1__AbortRequest *)m, err, errlen);
}

static int act_abort(tm_engine_t *e, const tm_engine_req_t *rq,
                     const ProtobufCMessage *m)
{
    return tm_engine_abort(e, rq, (const Trellis__V1__AbortRequest *)m);
}

static int validate_query(const ProtobufCMessage *m,
                          const tm_engine_config_t *cfg, char *err,
                          size_t errlen)
{
    (void)cfg;
    return tm_validate_gid(((const Trellis__V1__QueryRequest *)m)->gid, err,
                           errlen);
}

static int act_query(tm_engine_t *e, const tm_engine_req_t *rq,
                     const ProtobufCMessage *m)
{
    tm_engine_query(e, rq->rpc, ((const Trellis__V1__QueryRequest *)m)->gid);
    return 0;
}

/* A page token is "<created_ms>:<gid>" of the last item of the page
 * before (reply_list). */
static int parse_page_token(const char *tok, tm_store_filter_t *f,
                            char *gid_buf, size_t gid_len)
{
    if (!tok || !*tok)
        return 0;
    char *colon = strchr(tok, ':');
    char *end;
    long long ms = strtoll(tok, &end, 10);
    if (!colon || end != colon || strlen(colon + 1) >= gid_len)
        return -1;
    snprintf(gid_buf, gid_len, "%s", colon + 1);
    f->after_created_ms = ms;
    f->after_gid = gid_buf;
    return 0;
}

#define LIST_PAGE_DEFAULT 100
#define LIST_PAGE_MAX 1000

static int validate_list(const ProtobufCMessage *m,
                         const tm_engine_config_t *cfg, char *err,
                         size_t errlen)
{
    (void)cfg;
    const Trellis__V1__ListRequest *r = (const Trellis__V1__ListRequest *)m;
    char gid_buf[TM_GID_MAX + 1];
    tm_store_filter_t f = {0};
    if ((int)r->status < 0 || (int)r->status > (int)TM_TX_FAILED) {
        snprintf(err, errlen, "status %d is not a transaction status",
                 (int)r->status);
        return -1;
    }
    if (r->page_size > LIST_PAGE_MAX) {
        snprintf(err, errlen, "page_size %u is over the limit of %d",
                 r->page_size, LIST_PAGE_MAX);
        return -1;
    }
    if (parse_page_token(r->page_token, &f, gid_buf, sizeof(gid_buf)) != 0) {
        snprintf(err, errlen, "page_token is not one this server handed out");
        return -1;
    }
    return 0;
}

static int act_list(tm_engine_t *e, const tm_engine_req_t *rq,
                    const ProtobufCMessage *m)
{
    const Trellis__V1__ListRequest *r = (const Trellis__V1__ListRequest *)m;
    char gid_buf[TM_GID_MAX + 1];
    tm_store_filter_t f = {0};
    f.status = (tm_tx_status_t)r->status;
    f.created_after_ms = r->created_after_ms;
    f.created_before_ms = r->created_before_ms;
    f.limit = r->page_size ? r->page_size : LIST_PAGE_DEFAULT;
    parse_page_token(r->page_token, &f, gid_buf, sizeof(gid_buf)); /* valid */
    tm_engine_list(e, rq->rpc, &f);
    return 0;
}

static int act_new_gid(tm_engine_t *e, const tm_engine_req_t *rq,
                       const ProtobufCMessage *m)
{
    (void)m;
    char gid[TM_GID_MAX + 1];
    tm_engine_new_gid(e, gid, sizeof(gid));
    Trellis__V1__NewGidReply g = TRELLIS__V1__NEW_GID_REPLY__INIT;
    g.gid = gid;
    tm_server_reply(rq->rpc, GRPC_STATUS_OK, NULL, &g.base);
    return 0;
}

/* ---- grpc.health.v1.Health ---------------------------------------------- */

/* SERVING, or NOT_SERVING once a graceful stop began or while the store
 * fails to commit, so load balancers move new work elsewhere. */
static int act_health(tm_engine_t *e, const tm_engine_req_t *rq,
                      const ProtobufCMessage *m)
{
    const Grpc__Health__V1__HealthCheckRequest *r =
        (const Grpc__Health__V1__HealthCheckRequest *)m;
    if (*r->service && strcmp(r->service, "trellis.v1.TM") != 0) {
        tm_server_reply(rq->rpc, GRPC_STATUS_NOT_FOUND, "unknown service",
                        NULL);
        return 0;
    }
    Grpc__Health__V1__HealthCheckResponse out =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    out.status =
        !tm_engine_serving(e)
            ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
            : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    tm_server_reply(rq->rpc, GRPC_STATUS_OK, NULL, &out.base);
    return 0;
}

static const tm_api_method_t tm_methods[] = {
    {"/trellis.v1.TM/NewGid", &trellis__v1__new_gid_request__descriptor, NULL,
     act_new_gid, NULL},
    {"/trellis.v1.TM/Begin", &trellis__v1__begin_request__descriptor,
     validate_begin, act_begin, NULL},
    {"/trellis.v1.TM/RegisterBranch",
     &trellis__v1__register_branch_request__descriptor, validate_register,
     act_register, NULL},
    {"/trellis.v1.TM/Submit", &trellis__v1__submit_request__descriptor,
     validate_submit, act_submit, NULL},
    {"/trellis.v1.TM/Abort", &trellis__v1__abort_request__descriptor,
     validate_abort, act_abort, NULL},
    {"/trellis.v1.TM/Query", &trellis__v1__query_request__descriptor,
     validate_query, act_query, NULL},
    {"/trellis.v1.TM/List", &trellis__v1__list_request__descriptor,
     validate_list, act_list, NULL},
    {"/grpc.health.v1.Health/Check",
     &grpc__health__v1__health_check_request__descriptor, NULL, act_health,
     NULL},
};

/* Register methods[0..n): the request type is given, so a string with a
 * NUL inside is refused before any handler runs (tm_server_add_method). */
static int add_all(tm_server_t *srv, tm_engine_t *eng,
                   const tm_api_method_t *methods, size_t n, char *err,
                   size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (n_bindings == MAX_BINDINGS) {
            snprintf(err, errlen, "more than %d methods", MAX_BINDINGS);
            return -1;
        }
        binding_t *b = &bindings[n_bindings++];
        b->eng = eng;
        b->method = &methods[i];
        if (tm_server_add_method(srv, methods[i].name, methods[i].desc, handle,
                                 b, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int tm_api_add_methods(tm_server_t *srv, tm_engine_t *eng, char *err,
                       size_t errlen)
{
    if (add_all(srv, eng, tm_methods, sizeof(tm_methods) / sizeof(*tm_methods),
                err, errlen) != 0)
        return -1;
    if (add_all(srv, eng, tm_workflow_methods, tm_workflow_n_methods, err,
                errlen) != 0 ||
        add_all(srv, eng, tm_msg_methods, tm_msg_n_methods, err, errlen) != 0 ||
        add_all(srv, eng, tm_dtm_methods, tm_dtm_n_methods, err, errlen) != 0)
        return -1;
    return add_all(srv, eng, tm_admin_methods, tm_admin_n_methods, err, errlen);
}
