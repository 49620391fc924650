/*
 * tm_http_api: the console's JSON API (see tm_http_api.h). Owns the
 * routes, the HTTP parameters and their checks, the bearer token check,
 * the wait for an in-process call's reply and the mapping of gRPC codes
 * to HTTP ones. The facts are the gRPC methods' (tm_api.c, tm_admin.c);
 * their JSON form is tm_trans_json's.
 */
#include "tm_http_api.h"

#include <errno.h>
#include <grpc/status.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_clock.h"
#include "tm_json_out.h"
#include "tm_trans.h"
#include "tm_trans_json.h"
#include "trellis/v1/tm.pb-c.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define TX_PREFIX "/api/transactions"

/* ---- answers ------------------------------------------------------------ */

static void answer_json(tm_http_answer_t *ans, unsigned code, tm_json_out_t *j)
{
    size_t len = 0;
    char *body = tm_json_out_take(j, &len);
    tm_http_answer_take(ans, code, JSON_TYPE, body, len);
}

/* {"error": message} with code. */
static void answer_error(tm_http_answer_t *ans, unsigned code,
                         const char *message)
{
    tm_json_out_t j;
    tm_json_out_init(&j);
    tm_json_out_obj_begin(&j);
    tm_json_out_kv_str(&j, "error", message);
    tm_json_out_obj_end(&j);
    answer_json(ans, code, &j);
}

static void answer_method_not_allowed(tm_http_answer_t *ans, const char *allow)
{
    char msg[128];
    snprintf(msg, sizeof msg, "this path takes %s only", allow);
    answer_error(ans, 405, msg);
    ans->hdr_name = "Allow";
    ans->hdr_value = allow;
}

static unsigned http_code_of(int grpc_status)
{
    switch (grpc_status) {
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
        return 400;
    case GRPC_STATUS_PERMISSION_DENIED:
        return 403;
    case GRPC_STATUS_NOT_FOUND:
        return 404;
    case GRPC_STATUS_ALREADY_EXISTS:
    case GRPC_STATUS_FAILED_PRECONDITION:
        return 409;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return 429;
    case GRPC_STATUS_UNAVAILABLE:
        return 503;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return 504;
    default:
        return 500;
    }
}

/* ---- in-process calls ---------------------------------------------------- */

/* One call's reply, shared by the waiting request and the call's done
 * function; the last of the two to let go frees it (the request may stop
 * waiting after TM_HTTP_API_WAIT_MS). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int done;
    int status;
    char *message;
    uint8_t *reply;
    size_t len;
} local_call_t;

static void call_release(local_call_t *c)
{
    pthread_mutex_lock(&c->mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->message);
    free(c->reply);
    free(c);
}

static void on_call_done(void *user, int status, const char *message,
                         const uint8_t *reply, size_t len)
{
    local_call_t *c = user;
    pthread_mutex_lock(&c->mu);
    c->status = status;
    c->message = strdup(message ? message : "");
    c->reply = malloc(len ? len : 1);
    if (c->reply && len)
        memcpy(c->reply, reply, len);
    c->len = len;
    if (!c->message || !c->reply)
        c->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
    c->done = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    call_release(c);
}

/* Call method with the request message req and wait for its reply: the
 * reply unpacked as reply_desc (the caller frees it with
 * protobuf_c_message_free_unpacked), or NULL with *ans filled (the
 * method's error, or why there is no reply). */
static ProtobufCMessage *call_method(const tm_http_api_t *api,
                                     const char *method,
                                     const ProtobufCMessage *req,
                                     const ProtobufCMessageDescriptor *desc,
                                     tm_http_answer_t *ans)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *bytes = malloc(len ? len : 1);
    local_call_t *c = calloc(1, sizeof *c);
    if (!bytes || !c) {
        free(bytes);
        free(c);
        answer_error(ans, 500, "out of memory");
        return NULL;
    }
    protobuf_c_message_pack(req, bytes);
    pthread_mutex_init(&c->mu, NULL);
    tm_cond_init_monotonic(&c->cv);
    c->refs = 2;
    char err[320];
    int rc = tm_server_call_local(api->srv, method, bytes, len, on_call_done, c,
                                  err, sizeof err);
    free(bytes);
    if (rc != 0) {
        c->refs = 1;
        call_release(c);
        answer_error(ans, 500, err);
        return NULL;
    }
    struct timespec deadline = tm_clock_deadline_in(TM_HTTP_API_WAIT_MS);
    pthread_mutex_lock(&c->mu);
    while (!c->done &&
           pthread_cond_timedwait(&c->cv, &c->mu, &deadline) != ETIMEDOUT)
        ;
    int done = c->done;
    pthread_mutex_unlock(&c->mu);
    ProtobufCMessage *out = NULL;
    if (!done)
        answer_error(ans, 504, "trellisd did not answer in time");
    else if (c->status != GRPC_STATUS_OK)
        answer_error(ans, http_code_of(c->status), c->message);
    else if (!(out = protobuf_c_message_unpack(desc, NULL, c->len, c->reply)))
        answer_error(ans, 500, "the reply does not decode");
    call_release(c);
    return out;
}

/* ---- parameters -----------------------------------------------------------
 */

#define DURATION_MAX_MS (100LL * 365 * 86400000) /* a century */

/* "500ms", "30s", "10m", "2h", "1d" (at most DURATION_MAX_MS) as ms; -1
 * when it is none of these. */
static int64_t parse_duration(const char *s)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *s < '0' || *s > '9' || errno)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (strcmp(end, units[i].unit) == 0)
            return v <= DURATION_MAX_MS / units[i].ms ? v * units[i].ms : -1;
    return -1;
}

static int parse_status(const char *s, Trellis__V1__TransStatus *out)
{
    for (int st = TM_TX_PREPARED; st <= TM_TX_FAILED; st++)
        if (strcmp(s, tm_tx_status_name((tm_tx_status_t)st)) == 0) {
            *out = (Trellis__V1__TransStatus)st;
            return 0;
        }
    return -1;
}

/* limit as 1..1000 in decimal digits. */
static int parse_limit(const char *s, uint32_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 4 || strspn(s, "0123456789") != n)
        return -1;
    long v = strtol(s, NULL, 10);
    if (v < 1 || v > 1000)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static const char *const list_params[] = {"status", "older_than", "newer_than",
                                          "limit",  "page_token", NULL};

/* The list's query arguments as a ListRequest; -1 with err (400). */
static int list_request_of(const tm_http_req_t *req,
                           Trellis__V1__ListRequest *r, char *err,
                           size_t errlen)
{
    const char *unknown = tm_http_unknown_query(req, list_params);
    const char *status = tm_http_query(req, "status");
    const char *older = tm_http_query(req, "older_than");
    const char *newer = tm_http_query(req, "newer_than");
    const char *limit = tm_http_query(req, "limit");
    const char *token = tm_http_query(req, "page_token");
    int64_t now = tm_wall_ms(), d;
    if (unknown) {
        snprintf(err, errlen,
                 "unknown parameter \"%.64s\"; known: status, older_than, "
                 "newer_than, limit, page_token",
                 unknown);
        return -1;
    }
    if (status && *status && parse_status(status, &r->status) != 0) {
        snprintf(err, errlen,
                 "status \"%.64s\" is not one of prepared, submitted, "
                 "aborting, succeeded, failed",
                 status);
        return -1;
    }
    if (older && *older) {
        if ((d = parse_duration(older)) < 0)
            goto bad_duration;
        r->created_before_ms = now - d;
    }
    if (newer && *newer) {
        if ((d = parse_duration(newer)) < 0)
            goto bad_duration;
        r->created_after_ms = now - d;
    }
    if (limit && *limit && parse_limit(limit, &r->page_size) != 0) {
        snprintf(err, errlen, "limit \"%.64s\" is not a number from 1 to 1000",
                 limit);
        return -1;
    }
    r->page_token = (char *)(token ? token : "");
    return 0;
bad_duration:
    snprintf(err, errlen,
             "older_than and newer_than take a duration such as 500ms, 30s, "
             "10m, 2h, 1d");
    return -1;
}

/* ---- reads ------------------------------------------------------------------
 */

static void answer_list(const tm_http_api_t *api, const tm_http_req_t *req,
                        tm_http_answer_t *ans)
{
    Trellis__V1__ListRequest r = TRELLIS__V1__LIST_REQUEST__INIT;
    char err[256];
    if (list_request_of(req, &r, err, sizeof err) != 0) {
        answer_error(ans, 400, err);
        return;
    }
    Trellis__V1__ListReply *lr = (Trellis__V1__ListReply *)call_method(
        api, "/trellis.v1.TM/List", &r.base,
        &trellis__v1__list_reply__descriptor, ans);
    if (!lr)
        return;
    tm_json_out_t j;
    tm_json_out_init(&j);
    tm_json_out_obj_begin(&j);
    tm_json_out_kv_int(&j, "now_ms", tm_wall_ms());
    tm_json_out_key(&j, "transactions");
    tm_json_out_arr_begin(&j);
    for (size_t i = 0; i < lr->n_transactions; i++)
        tm_trans_json(&j, lr->transactions[i], 0);
    tm_json_out_arr_end(&j);
    tm_json_out_kv_str(&j, "next_page_token", lr->next_page_token);
    tm_json_out_obj_end(&j);
    protobuf_c_message_free_unpacked(&lr->base, NULL);
    answer_json(ans, 200, &j);
}

static void answer_query(const tm_http_api_t *api, const char *gid,
                         tm_http_answer_t *ans)
{
    Trellis__V1__QueryRequest r = TRELLIS__V1__QUERY_REQUEST__INIT;
    r.gid = (char *)gid;
    Trellis__V1__QueryReply *qr = (Trellis__V1__QueryReply *)call_method(
        api, "/trellis.v1.TM/Query", &r.base,
        &trellis__v1__query_reply__descriptor, ans);
    if (!qr)
        return;
    tm_json_out_t j;
    tm_json_out_init(&j);
    tm_json_out_obj_begin(&j);
    tm_json_out_kv_int(&j, "now_ms", tm_wall_ms());
    tm_json_out_key(&j, "transaction");
    if (qr->trans) {
        tm_trans_json(&j, qr->trans, 1);
    } else { /* a Query reply always has one; say so rather than crash */
        tm_json_out_obj_begin(&j);
        tm_json_out_obj_end(&j);
    }
    tm_json_out_obj_end(&j);
    protobuf_c_message_free_unpacked(&qr->base, NULL);
    answer_json(ans, 200, &j);
}

static void answer_info(const tm_http_api_t *api, tm_http_answer_t *ans)
{
    tm_json_out_t j;
    tm_json_out_init(&j);
    tm_json_out_obj_begin(&j);
    tm_json_out_kv_bool(&j, "writes_enabled", api->token != NULL);
    tm_json_out_kv_int(&j, "now_ms", tm_wall_ms());
    tm_json_out_obj_end(&j);
    answer_json(ans, 200, &j);
}

/* ---- writes ---------------------------------------------------------------
 */

/* 1 when a and b (a of length alen) are equal; the time taken depends on
 * the lengths only, not on where they differ. */
static int same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)(a[i] ^ (blen ? b[i % blen] : 0));
    return diff == 0;
}

/* 1 when the request may write; otherwise *ans is the refusal. */
static int write_allowed(const tm_http_api_t *api, const tm_http_req_t *req,
                         tm_http_answer_t *ans)
{
    if (!api->token) {
        answer_error(ans, 403,
                     "the console is read-only: trellisd was started "
                     "without --http-token-file, so operator actions are "
                     "refused here (use trellisctl)");
        return 0;
    }
    const char *auth = tm_http_header(req, "Authorization");
    static const char scheme[] = "Bearer ";
    if (auth && strncmp(auth, scheme, sizeof scheme - 1) == 0) {
        const char *given = auth + sizeof scheme - 1;
        if (same_secret(api->token, api->token_len, given, strlen(given)))
            return 1;
    }
    answer_error(ans, 401,
                 auth ? "the bearer token is not the one configured"
                      : "operator actions need \"Authorization: Bearer "
                        "<token>\" (the token of --http-token-file)");
    ans->hdr_name = "WWW-Authenticate";
    ans->hdr_value = "Bearer realm=\"trellis\"";
    return 0;
}

static void answer_retry_now(const tm_http_api_t *api, const char *gid,
                             tm_http_answer_t *ans)
{
    Trellis__V1__RetryNowRequest r = TRELLIS__V1__RETRY_NOW_REQUEST__INIT;
    r.gid = (char *)gid;
    Trellis__V1__RetryNowReply *rr = (Trellis__V1__RetryNowReply *)call_method(
        api, "/trellis.v1.TM/RetryNow", &r.base,
        &trellis__v1__retry_now_reply__descriptor, ans);
    if (!rr)
        return;
    tm_json_out_t j;
    tm_json_out_init(&j);
    tm_json_out_obj_begin(&j);
    tm_json_out_kv_str(&j, "status",
                       tm_tx_status_name((tm_tx_status_t)rr->status));
    tm_json_out_kv_int(&j, "ops_called", rr->ops_called);
    tm_json_out_obj_end(&j);
    protobuf_c_message_free_unpacked(&rr->base, NULL);
    answer_json(ans, 200, &j);
}

/* The body is the reason: text without a NUL (a C string would cut it). */
static void answer_force_stop(const tm_http_api_t *api,
                              const tm_http_req_t *req, const char *gid,
                              tm_http_answer_t *ans)
{
    size_t len = 0;
    const uint8_t *body = tm_http_body(req, &len);
    if (memchr(body, '\0', len)) {
        answer_error(ans, 400,
                     "the reason (the request body) holds a NUL "
                     "byte");
        return;
    }
    char *reason = strndup((const char *)body, len);
    if (!reason) {
        answer_error(ans, 500, "out of memory");
        return;
    }
    Trellis__V1__ForceStopRequest r = TRELLIS__V1__FORCE_STOP_REQUEST__INIT;
    r.gid = (char *)gid;
    r.reason = reason;
    Trellis__V1__ForceStopReply *fr =
        (Trellis__V1__ForceStopReply *)call_method(
            api, "/trellis.v1.TM/ForceStop", &r.base,
            &trellis__v1__force_stop_reply__descriptor, ans);
    free(reason);
    if (!fr)
        return;
    tm_json_out_t j;
    tm_json_out_init(&j);
    tm_json_out_obj_begin(&j);
    tm_json_out_kv_str(&j, "status",
                       tm_tx_status_name((tm_tx_status_t)fr->status));
    tm_json_out_kv_str(&j, "reason", fr->reason);
    tm_json_out_obj_end(&j);
    protobuf_c_message_free_unpacked(&fr->base, NULL);
    answer_json(ans, 200, &j);
}

/* ---- routes ------------------------------------------------------------- */

/* POST /api/transactions/GID/ACTION. */
static void answer_action(const tm_http_api_t *api, const tm_http_req_t *req,
                          const char *gid, const char *action,
                          tm_http_answer_t *ans)
{
    int retry = strcmp(action, "retry-now") == 0;
    int stop = strcmp(action, "force-stop") == 0;
    if (!retry && !stop) {
        answer_error(ans, 404,
                     "no such action; there are retry-now and "
                     "force-stop");
        return;
    }
    if (strcmp(tm_http_method(req), "POST") != 0) {
        answer_method_not_allowed(ans, "POST");
        return;
    }
    if (!write_allowed(api, req, ans))
        return;
    if (retry)
        answer_retry_now(api, gid, ans);
    else
        answer_force_stop(api, req, gid, ans);
}

/* /api/transactions/REST: REST is "GID" or "GID/ACTION". */
static void answer_transaction(const tm_http_api_t *api,
                               const tm_http_req_t *req, const char *rest,
                               tm_http_answer_t *ans)
{
    char gid[TM_GID_MAX + 64];
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n >= sizeof gid) {
        answer_error(ans, 400, "gid too long");
        return;
    }
    memcpy(gid, rest, n);
    gid[n] = '\0';
    if (slash) {
        answer_action(api, req, gid, slash + 1, ans);
        return;
    }
    if (strcmp(tm_http_method(req), "GET") != 0) {
        answer_method_not_allowed(ans, "GET");
        return;
    }
    answer_query(api, gid, ans);
}

void tm_http_api_answer(const tm_http_api_t *api, const tm_http_req_t *req,
                        tm_http_answer_t *ans)
{
    const char *path = tm_http_path(req);
    int get = strcmp(tm_http_method(req), "GET") == 0;
    if (strcmp(path, "/api/info") == 0) {
        if (get)
            answer_info(api, ans);
        else
            answer_method_not_allowed(ans, "GET");
    } else if (strcmp(path, TX_PREFIX) == 0) {
        if (get)
            answer_list(api, req, ans);
        else
            answer_method_not_allowed(ans, "GET");
    } else if (strncmp(path, TX_PREFIX "/", sizeof TX_PREFIX) == 0) {
        answer_transaction(api, req, path + sizeof TX_PREFIX, ans);
    } else {
        answer_error(ans, 404,
                     "no such API path; see README, \"Web "
                     "console\"");
    }
}
