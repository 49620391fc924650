/*
 * participant.c — trellis_participant_t: a gRPC server on the C core that
 * routes unary calls by full method name to branch handlers.
 *
 * Threads and queues. Each of the n_threads workers owns one completion
 * queue and is the only thread that waits on it. A call is accepted,
 * read, handled and answered on the worker whose queue it arrived on, so
 * a call's state is touched by one thread only and needs no lock.
 *
 * One outstanding request per queue, re-armed when the handler returns.
 * A worker that is running a handler therefore has no request out, and
 * the server hands new calls to idle workers or keeps them in its own
 * pending queue until a worker asks again. Keeping several requests out
 * per queue would let new calls be bound to a queue whose worker is
 * blocked in a handler (a participant that sleeps past the caller's
 * deadline, a slow database), and they would wait behind it while other
 * workers sit idle. The price is a worker that does not accept while it
 * waits for a call's request message, which arrives with the headers.
 *
 * Per call: new-call event → RECV_MESSAGE batch → handler (on the worker)
 * → one batch of SEND_INITIAL_METADATA, SEND_MESSAGE (OK replies only),
 * SEND_STATUS_FROM_SERVER and RECV_CLOSE_ON_SERVER → unref. A batch that
 * completes with success == 0 (the client gave up, the server is stopping)
 * ends the call there; a call whose deadline passed before its handler ran
 * is answered without running the handler. The handler's branch context
 * (the dtm-* fields and the other, user headers) is copied out of the
 * call's metadata before the handler runs and freed when it returns.
 *
 * Invariants: live_calls counts calls accepted and not yet unref'd; every
 * grpc_call gets exactly one unref, after its last batch completed; every
 * tag on a worker's queue is a tag_t (a server_call_t or the shutdown tag);
 * a worker re-arms its request only while it still counts a live call, so
 * the server cannot be destroyed under grpc_server_request_call.
 *
 * Stopping (the order gRPC 1.51 survives under load): stop re-arming;
 * grpc_server_shutdown_and_notify; grpc_server_cancel_all_calls; wait for
 * the shutdown tag and for live_calls == 0; grpc_server_destroy; then shut
 * down each queue, let its worker drain it to GRPC_QUEUE_SHUTDOWN, join the
 * worker, destroy the queue. grpc_shutdown is not called (see unary.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "internal.h"
#include "trellis/trellis_participant.h"

#define DEFAULT_THREADS 4
#define MAX_THREADS 256

typedef enum { TAG_CALL, TAG_SHUTDOWN } tag_kind_t;

/* First member of everything put on a worker's queue as a tag. */
typedef struct {
    tag_kind_t kind;
} tag_t;

typedef enum {
    CALL_REQUESTED, /* waiting in grpc_server_request_call */
    CALL_RECEIVING, /* RECV_MESSAGE batch started */
    CALL_REPLYING,  /* reply batch started */
} call_phase_t;

typedef struct worker worker_t;

typedef struct {
    tag_t tag;
    call_phase_t phase;
    worker_t *worker;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    grpc_slice status_details;
    int cancelled;
} server_call_t;

struct worker {
    trellis_participant_t *p;
    grpc_completion_queue *cq;
    pthread_t thread;
    int running; /* thread started and not joined */
};

typedef struct {
    char *method;
    trellis_handler_fn fn;
    void *user;
} handler_t;

typedef enum { P_NEW, P_RUNNING, P_STOPPED } p_state_t;

struct trellis_participant {
    int n_threads;
    handler_t *handlers; /* fixed once started: read without a lock */
    size_t n_handlers, cap_handlers;

    grpc_server *server;
    grpc_server_credentials *creds; /* TLS (owned); NULL: plaintext */
    worker_t *workers;
    tag_t shutdown_tag;
    atomic_int stopping; /* workers stop re-arming requests */

    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t changed;
    p_state_t state;
    int shutdown_done; /* the shutdown tag arrived */
    size_t live_calls;
};

/* ---- construction and handlers -------------------------------------- */

trellis_rc_t trellis_participant_new(int n_threads, trellis_participant_t **out,
                                     char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    if (n_threads < 0 || n_threads > MAX_THREADS)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "n_threads %d is outside 0..%d", n_threads, MAX_THREADS);
    tr_grpc_init_once();
    trellis_participant_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a participant");
    p->n_threads = n_threads != 0 ? n_threads : DEFAULT_THREADS;
    p->shutdown_tag.kind = TAG_SHUTDOWN;
    atomic_init(&p->stopping, 0);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    p->state = P_NEW;
    *out = p;
    return TRELLIS_OK;
}

static const handler_t *find_handler(const trellis_participant_t *p,
                                     grpc_slice method)
{
    for (size_t i = 0; i < p->n_handlers; i++)
        if (grpc_slice_str_cmp(method, p->handlers[i].method) == 0)
            return &p->handlers[i];
    return NULL;
}

trellis_rc_t trellis_participant_handle(trellis_participant_t *p,
                                        const char *method,
                                        trellis_handler_fn fn, void *user,
                                        char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (p == NULL || fn == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       p == NULL ? "participant" : "handler function");
    if (method == NULL || method[0] != '/' || strchr(method + 1, '/') == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "method \"%s\" is not a full method name "
                       "/package.Service/Method",
                       method != NULL ? method : "(null)");
    pthread_mutex_lock(&p->lock);
    p_state_t state = p->state;
    pthread_mutex_unlock(&p->lock);
    if (state != P_NEW)
        return tr_errf(TRELLIS_FAILED_PRECONDITION, err, errlen,
                       "cannot add handler for %s: handlers must be "
                       "registered before trellis_participant_start",
                       method);
    for (size_t i = 0; i < p->n_handlers; i++)
        if (strcmp(p->handlers[i].method, method) == 0)
            return tr_errf(TRELLIS_ALREADY_EXISTS, err, errlen,
                           "a handler for %s is already registered", method);
    if (p->n_handlers == p->cap_handlers) {
        size_t cap = p->cap_handlers != 0 ? p->cap_handlers * 2 : 8;
        handler_t *grown = realloc(p->handlers, cap * sizeof *grown);
        if (grown == NULL)
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "out of memory adding handler for %s", method);
        p->handlers = grown;
        p->cap_handlers = cap;
    }
    char *copy = strdup(method);
    if (copy == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory adding handler for %s", method);
    p->handlers[p->n_handlers++] = (handler_t){copy, fn, user};
    return TRELLIS_OK;
}

/* ---- live-call accounting -------------------------------------------- */

static void live_calls_add(trellis_participant_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->live_calls++;
    pthread_mutex_unlock(&p->lock);
}

static void live_calls_remove(trellis_participant_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->live_calls--;
    if (p->live_calls == 0)
        pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

static void note_shutdown_done(trellis_participant_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->shutdown_done = 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

/* ---- one call -------------------------------------------------------- */

static void server_call_free(server_call_t *sc)
{
    grpc_call_details_destroy(&sc->details);
    grpc_metadata_array_destroy(&sc->request_md);
    if (sc->recv_buf != NULL)
        grpc_byte_buffer_destroy(sc->recv_buf);
    if (sc->send_buf != NULL)
        grpc_byte_buffer_destroy(sc->send_buf);
    grpc_slice_unref(sc->status_details);
    free(sc);
}

/* The call's last batch completed (or none could start): release it. */
static void call_finish(server_call_t *sc)
{
    trellis_participant_t *p = sc->worker->p;
    grpc_call_unref(sc->call);
    server_call_free(sc);
    live_calls_remove(p);
}

/* Ask the server for the next call on this worker's queue. */
static grpc_call_error request_next_call(worker_t *w)
{
    server_call_t *sc = calloc(1, sizeof *sc);
    if (sc == NULL)
        return GRPC_CALL_ERROR;
    sc->tag.kind = TAG_CALL;
    sc->phase = CALL_REQUESTED;
    sc->worker = w;
    sc->status_details = grpc_empty_slice();
    grpc_call_details_init(&sc->details);
    grpc_metadata_array_init(&sc->request_md);
    grpc_call_error ce =
        grpc_server_request_call(w->p->server, &sc->call, &sc->details,
                                 &sc->request_md, w->cq, w->cq, sc);
    if (ce != GRPC_CALL_OK)
        server_call_free(sc);
    return ce;
}

/* Called only while the worker holds a live call: that keeps the stopper
 * from destroying the server under grpc_server_request_call (it waits for
 * live_calls == 0), and a request made after shutdown began just fails. */
static void rearm_unless_stopping(worker_t *w)
{
    if (atomic_load(&w->p->stopping))
        return;
    grpc_call_error ce = request_next_call(w);
    if (ce != GRPC_CALL_OK)
        gpr_log(GPR_ERROR,
                "trellis participant: worker lost its call request "
                "(grpc_server_request_call: %s); it accepts no more calls",
                grpc_call_error_to_string(ce));
}

static void on_new_call(server_call_t *sc, int ok)
{
    if (!ok) { /* the server is shutting down: no call came with it */
        if (sc->call != NULL)
            grpc_call_unref(sc->call);
        server_call_free(sc);
        return;
    }
    live_calls_add(sc->worker->p);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &sc->recv_buf;
    sc->phase = CALL_RECEIVING;
    if (grpc_call_start_batch(sc->call, &op, 1, sc, NULL) != GRPC_CALL_OK) {
        rearm_unless_stopping(sc->worker);
        call_finish(sc);
    }
}

/* A NUL-terminated copy of a metadata value, or NULL when out of memory. */
static char *slice_strdup(grpc_slice s)
{
    size_t n = GRPC_SLICE_LENGTH(s);
    char *out = malloc(n + 1);
    if (out != NULL) {
        memcpy(out, GRPC_SLICE_START_PTR(s), n);
        out[n] = '\0';
    }
    return out;
}

/* The branch context from the call's metadata; strings are malloc'd
 * (or the static "" when absent) and freed by ctx_release. The header
 * arrays have room for every metadata entry; hdr_keys[i] and
 * hdr_values[i] for i < ctx.n_headers are owned. */
typedef struct {
    trellis_branch_ctx_t ctx;
    char *owned[6]; /* gid, trans_type, branch_id, op, method, action log */
    char **hdr_keys;
    char **hdr_values;
} ctx_storage_t;

static const char *ctx_take(ctx_storage_t *cs, int slot, grpc_slice value)
{
    free(cs->owned[slot]);
    cs->owned[slot] = slice_strdup(value);
    return cs->owned[slot] != NULL ? cs->owned[slot] : "";
}

static int slice_has_prefix(grpc_slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return GRPC_SLICE_LENGTH(s) >= n &&
           memcmp(GRPC_SLICE_START_PTR(s), prefix, n) == 0;
}

static int slice_has_suffix(grpc_slice s, const char *suffix)
{
    size_t n = strlen(suffix), len = GRPC_SLICE_LENGTH(s);
    return len >= n &&
           memcmp(GRPC_SLICE_START_PTR(s) + len - n, suffix, n) == 0;
}

/* A key the context lists as a header: not ours (dtm-), not gRPC's
 * (grpc-, pseudo-headers), not binary. */
static int is_user_header(grpc_slice key)
{
    return !slice_has_prefix(key, "dtm-") && !slice_has_prefix(key, "grpc-") &&
           !slice_has_prefix(key, ":") && !slice_has_suffix(key, "-bin");
}

/* Copy the user headers of md into cs. Out of memory drops the header
 * that did not fit (all of them if the arrays did not): the handler
 * still runs, as it does when a dtm-* value cannot be copied. */
static void ctx_take_headers(ctx_storage_t *cs, const grpc_metadata_array *md)
{
    if (md->count == 0)
        return;
    cs->hdr_keys = calloc(md->count, sizeof *cs->hdr_keys);
    cs->hdr_values = calloc(md->count, sizeof *cs->hdr_values);
    if (cs->hdr_keys == NULL || cs->hdr_values == NULL)
        return;
    size_t n = 0;
    for (size_t i = 0; i < md->count; i++) {
        if (!is_user_header(md->metadata[i].key))
            continue;
        char *k = slice_strdup(md->metadata[i].key);
        char *v = slice_strdup(md->metadata[i].value);
        if (k == NULL || v == NULL) {
            free(k);
            free(v);
            continue;
        }
        cs->hdr_keys[n] = k;
        cs->hdr_values[n] = v;
        n++;
    }
    cs->ctx.n_headers = n;
    cs->ctx.header_keys = (const char *const *)cs->hdr_keys;
    cs->ctx.header_values = (const char *const *)cs->hdr_values;
}

/* The compensation log's bytes, as received (gRPC decoded the binary
 * value); kept in cs->owned[5]. Out of memory leaves none. */
static void ctx_take_action_result(ctx_storage_t *cs, grpc_slice value)
{
    size_t n = GRPC_SLICE_LENGTH(value);
    free(cs->owned[5]);
    cs->owned[5] = n ? malloc(n) : NULL;
    cs->ctx.action_result = (const uint8_t *)cs->owned[5];
    cs->ctx.action_result_len = cs->owned[5] ? n : 0;
    if (cs->owned[5])
        memcpy(cs->owned[5], GRPC_SLICE_START_PTR(value), n);
}

/* A decimal metadata value; 0 when it is not one. */
static uint64_t slice_u64(grpc_slice s)
{
    uint64_t v = 0;
    size_t n = GRPC_SLICE_LENGTH(s);
    const uint8_t *p = GRPC_SLICE_START_PTR(s);
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || i >= 19)
            return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v;
}

static void ctx_build(ctx_storage_t *cs, const server_call_t *sc)
{
    memset(cs, 0, sizeof *cs);
    cs->ctx.gid = cs->ctx.trans_type = cs->ctx.branch_id = cs->ctx.op = "";
    const grpc_metadata_array *md = &sc->request_md;
    for (size_t i = 0; i < md->count; i++) {
        grpc_slice k = md->metadata[i].key, v = md->metadata[i].value;
        if (grpc_slice_str_cmp(k, "dtm-gid") == 0)
            cs->ctx.gid = ctx_take(cs, 0, v);
        else if (grpc_slice_str_cmp(k, "dtm-trans_type") == 0)
            cs->ctx.trans_type = ctx_take(cs, 1, v);
        else if (grpc_slice_str_cmp(k, "dtm-branch_id") == 0)
            cs->ctx.branch_id = ctx_take(cs, 2, v);
        else if (grpc_slice_str_cmp(k, "dtm-op") == 0)
            cs->ctx.op = ctx_take(cs, 3, v);
        else if (grpc_slice_str_cmp(k, TRELLIS_ACTION_RESULT_HEADER) == 0)
            ctx_take_action_result(cs, v);
        else if (grpc_slice_str_cmp(k, TRELLIS_ACTION_RESULT_SIZE_HEADER) == 0)
            cs->ctx.action_result_size = slice_u64(v);
    }
    if (cs->ctx.action_result_size < cs->ctx.action_result_len)
        cs->ctx.action_result_size = cs->ctx.action_result_len;
    cs->ctx.method = ctx_take(cs, 4, sc->details.method);
    ctx_take_headers(cs, md);
}

static void ctx_release(ctx_storage_t *cs)
{
    for (size_t i = 0; i < sizeof cs->owned / sizeof cs->owned[0]; i++)
        free(cs->owned[i]);
    for (size_t i = 0; i < cs->ctx.n_headers; i++) {
        free(cs->hdr_keys[i]);
        free(cs->hdr_values[i]);
    }
    free(cs->hdr_keys);
    free(cs->hdr_values);
}

const char *trellis_branch_ctx_header(const trellis_branch_ctx_t *ctx,
                                      const char *key)
{
    if (ctx == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < ctx->n_headers; i++)
        if (strcasecmp(ctx->header_keys[i], key) == 0)
            return ctx->header_values[i];
    return NULL;
}

const uint8_t *trellis_branch_ctx_action_result(const trellis_branch_ctx_t *ctx,
                                                size_t *len)
{
    if (ctx == NULL || ctx->action_result_len == 0) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = ctx->action_result_len;
    return ctx->action_result;
}

int trellis_branch_ctx_action_result_cut(const trellis_branch_ctx_t *ctx,
                                         uint64_t *full_size)
{
    uint64_t len = ctx ? ctx->action_result_len : 0;
    uint64_t full =
        ctx && ctx->action_result_size > len ? ctx->action_result_size : len;
    if (full_size)
        *full_size = full;
    return full > len;
}

static grpc_status_code reply_status(trellis_reply_code_t code)
{
    switch (code) {
    case TRELLIS_REPLY_SUCCESS:
        return GRPC_STATUS_OK;
    case TRELLIS_REPLY_FAILURE:
        return GRPC_STATUS_ABORTED;
    case TRELLIS_REPLY_ONGOING:
        return GRPC_STATUS_FAILED_PRECONDITION;
    case TRELLIS_REPLY_ERROR:
        return GRPC_STATUS_UNAVAILABLE;
    }
    return GRPC_STATUS_UNKNOWN;
}

/* What we answer: a status, its details, and an optional body. */
typedef struct {
    grpc_status_code status;
    char details[1100];
    uint8_t *body; /* malloc'd by the handler; we free it */
    size_t body_len;
} answer_t;

static int deadline_passed(const server_call_t *sc)
{
    gpr_timespec d = sc->details.deadline;
    return gpr_time_cmp(gpr_now(d.clock_type), d) > 0;
}

/* Run the handler for the received call (or say why there is none). */
static void produce_answer(server_call_t *sc, answer_t *a)
{
    memset(a, 0, sizeof *a);
    const handler_t *h = find_handler(sc->worker->p, sc->details.method);
    if (h == NULL) {
        a->status = GRPC_STATUS_UNIMPLEMENTED;
        snprintf(a->details, sizeof a->details,
                 "no handler for method %.*s on this participant",
                 (int)GRPC_SLICE_LENGTH(sc->details.method),
                 (const char *)GRPC_SLICE_START_PTR(sc->details.method));
        return;
    }
    if (deadline_passed(sc)) { /* the caller gave up; it reads no answer */
        a->status = GRPC_STATUS_DEADLINE_EXCEEDED;
        snprintf(a->details, sizeof a->details,
                 "deadline passed before the handler ran");
        return;
    }

    /* A unary call always carries one message, even an empty one; none
     * means the caller went away (cancelled) or is not speaking unary:
     * running the handler on an empty payload would act on nothing. */
    if (sc->recv_buf == NULL) {
        a->status = GRPC_STATUS_INVALID_ARGUMENT;
        snprintf(a->details, sizeof a->details,
                 "no request message (the caller sent none or gave up)");
        return;
    }
    grpc_slice payload;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, sc->recv_buf)) {
        a->status = GRPC_STATUS_INTERNAL;
        snprintf(a->details, sizeof a->details,
                 "cannot read the request message (decompression failed)");
        return;
    }
    payload = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);

    ctx_storage_t cs;
    ctx_build(&cs, sc);
    trellis_reply_t reply;
    memset(&reply, 0, sizeof reply);
    size_t len = GRPC_SLICE_LENGTH(payload);
    const uint8_t *data =
        len > 0 ? GRPC_SLICE_START_PTR(payload) : (const uint8_t *)"";
    h->fn(&cs.ctx, data, len, &reply, h->user);
    ctx_release(&cs);
    grpc_slice_unref(payload);

    a->status = reply_status(reply.code);
    size_t mlen = strnlen(reply.message, sizeof reply.message);
    if (a->status == GRPC_STATUS_UNKNOWN)
        snprintf(a->details, sizeof a->details,
                 "handler for %s returned unknown reply code %d: %.*s",
                 h->method, (int)reply.code, (int)mlen, reply.message);
    else
        snprintf(a->details, sizeof a->details, "%.*s", (int)mlen,
                 reply.message);
    a->body = reply.body;
    a->body_len = reply.body != NULL ? reply.body_len : 0;
}

/* Start the reply batch; the answer's body is consumed. */
static grpc_call_error send_answer(server_call_t *sc, answer_t *a)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (a->status == GRPC_STATUS_OK) {
        grpc_slice body = grpc_slice_from_copied_buffer(
            a->body_len > 0 ? (const char *)a->body : "", a->body_len);
        sc->send_buf = grpc_raw_byte_buffer_create(&body, 1);
        grpc_slice_unref(body);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = sc->send_buf;
    }
    free(a->body);
    a->body = NULL;

    grpc_slice_unref(sc->status_details);
    sc->status_details = grpc_slice_from_copied_string(a->details);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = a->status;
    ops[n++].data.send_status_from_server.status_details =
        a->details[0] != '\0' ? &sc->status_details : NULL;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &sc->cancelled;
    sc->phase = CALL_REPLYING;
    return grpc_call_start_batch(sc->call, ops, n, sc, NULL);
}

static void on_request_received(server_call_t *sc, int ok)
{
    if (!ok) { /* cancelled before the request arrived: nobody to answer */
        rearm_unless_stopping(sc->worker);
        call_finish(sc);
        return;
    }
    answer_t a;
    produce_answer(sc, &a);
    rearm_unless_stopping(sc->worker);
    if (send_answer(sc, &a) != GRPC_CALL_OK)
        call_finish(sc);
}

static void dispatch(worker_t *w, void *tagp, int ok)
{
    tag_t *tag = tagp;
    if (tag->kind == TAG_SHUTDOWN) {
        note_shutdown_done(w->p);
        return;
    }
    server_call_t *sc = (server_call_t *)tag;
    switch (sc->phase) {
    case CALL_REQUESTED:
        on_new_call(sc, ok);
        break;
    case CALL_RECEIVING:
        on_request_received(sc, ok);
        break;
    case CALL_REPLYING:
        call_finish(sc); /* answered, or the client went away: done */
        break;
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            dispatch(w, ev.tag, ev.success);
    }
    return NULL;
}

/* ---- start and stop -------------------------------------------------- */

/* Wait for the shutdown tag on worker 0's queue: its worker reports it,
 * or, when no worker runs (start failed early), we take it ourselves. */
static void wait_for_shutdown_tag(trellis_participant_t *p)
{
    if (p->workers[0].running) {
        pthread_mutex_lock(&p->lock);
        while (!p->shutdown_done || p->live_calls > 0)
            pthread_cond_wait(&p->changed, &p->lock);
        pthread_mutex_unlock(&p->lock);
        return;
    }
    /* No worker ever ran, so no call was requested and none is live. */
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            p->workers[0].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_OP_COMPLETE && ev.tag == &p->shutdown_tag)
            break;
    }
}

static void drain_queue(grpc_completion_queue *cq)
{
    while (
        grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
            .type != GRPC_QUEUE_SHUTDOWN) {
    }
}

/* The shutdown order of the file comment. Works for a started server and
 * for one whose start failed part-way (workers[i].running tells which
 * queues have a thread to drain them). */
static void server_teardown(trellis_participant_t *p)
{
    atomic_store(&p->stopping, 1);
    grpc_server_shutdown_and_notify(p->server, p->workers[0].cq,
                                    &p->shutdown_tag);
    grpc_server_cancel_all_calls(p->server);
    wait_for_shutdown_tag(p);
    grpc_server_destroy(p->server);
    p->server = NULL;
    for (int i = 0; i < p->n_threads; i++) {
        worker_t *w = &p->workers[i];
        grpc_completion_queue_shutdown(w->cq);
        if (w->running) {
            pthread_join(w->thread, NULL); /* it drains to QUEUE_SHUTDOWN */
            w->running = 0;
        } else {
            drain_queue(w->cq);
        }
        grpc_completion_queue_destroy(w->cq);
        w->cq = NULL;
    }
    free(p->workers);
    p->workers = NULL;
}

static grpc_server *server_create(void)
{
    /* Without SO_REUSEPORT a port already in use is an error instead of
     * two servers silently sharing it. Headers up to 64 KiB (gRPC's
     * default is 8 KiB), so that trellisd's compensation log fits at any
     * --max-action-log it allows (32 KiB, base64 on the wire). */
    grpc_arg arg[2];
    memset(arg, 0, sizeof arg);
    arg[0].type = GRPC_ARG_INTEGER;
    arg[0].key = GRPC_ARG_ALLOW_REUSEPORT;
    arg[0].value.integer = 0;
    arg[1].type = GRPC_ARG_INTEGER;
    arg[1].key = GRPC_ARG_MAX_METADATA_SIZE;
    arg[1].value.integer = 64 * 1024;
    grpc_channel_args args = {2, arg};
    return grpc_server_create(&args, NULL);
}

/* Bind addr with the participant's TLS credentials, or plaintext. */
static int add_port(trellis_participant_t *p, const char *addr)
{
    grpc_server_credentials *creds =
        p->creds != NULL ? p->creds : grpc_insecure_server_credentials_create();
    p->creds = NULL;
    int port = grpc_server_add_http2_port(p->server, addr, creds);
    grpc_server_credentials_release(creds);
    return port;
}

trellis_rc_t trellis_participant_set_tls(trellis_participant_t *p,
                                         const trellis_participant_tls_t *tls,
                                         char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (p == NULL || tls == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       p == NULL ? "participant" : "tls");
    pthread_mutex_lock(&p->lock);
    p_state_t state = p->state;
    pthread_mutex_unlock(&p->lock);
    if (state != P_NEW)
        return tr_errf(TRELLIS_FAILED_PRECONDITION, err, errlen,
                       "TLS must be set before trellis_participant_start");
    grpc_server_credentials *creds = NULL;
    trellis_rc_t rc = tr_tls_server_creds(tls, &creds, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    if (p->creds != NULL)
        grpc_server_credentials_release(p->creds);
    p->creds = creds;
    return TRELLIS_OK;
}

static trellis_rc_t start_workers(trellis_participant_t *p, char *err,
                                  size_t errlen)
{
    for (int i = 0; i < p->n_threads; i++) {
        worker_t *w = &p->workers[i];
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e != 0)
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "cannot start participant worker %d of %d: %s", i,
                           p->n_threads, strerror(e));
        w->running = 1;
    }
    for (int i = 0; i < p->n_threads; i++) {
        grpc_call_error ce = request_next_call(&p->workers[i]);
        if (ce != GRPC_CALL_OK)
            return tr_errf(TRELLIS_INTERNAL, err, errlen,
                           "grpc_server_request_call failed: %s",
                           grpc_call_error_to_string(ce));
    }
    return TRELLIS_OK;
}

trellis_rc_t trellis_participant_start(trellis_participant_t *p,
                                       const char *addr, int *port, char *err,
                                       size_t errlen)
{
    tr_err_clear(err, errlen);
    if (p == NULL || addr == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       p == NULL ? "participant" : "addr");
    pthread_mutex_lock(&p->lock);
    p_state_t state = p->state;
    pthread_mutex_unlock(&p->lock);
    if (state != P_NEW)
        return tr_errf(
            TRELLIS_FAILED_PRECONDITION, err, errlen,
            "participant was already started or stopped; create a new "
            "one to serve again");

    p->workers = calloc((size_t)p->n_threads, sizeof *p->workers);
    if (p->workers == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for %d workers", p->n_threads);
    p->server = server_create();
    for (int i = 0; i < p->n_threads; i++) {
        p->workers[i].p = p;
        p->workers[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(p->server, p->workers[i].cq,
                                              NULL);
    }

    trellis_rc_t rc = TRELLIS_OK;
    int bound = add_port(p, addr);
    if (bound == 0) {
        rc = tr_errf(TRELLIS_UNAVAILABLE, err, errlen,
                     "cannot listen on %s (address in use, or not "
                     "host:port?)",
                     addr);
    } else {
        grpc_server_start(p->server);
        rc = start_workers(p, err, errlen);
    }
    if (rc != TRELLIS_OK) {
        server_teardown(p);
        pthread_mutex_lock(&p->lock);
        p->state = P_STOPPED;
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    pthread_mutex_lock(&p->lock);
    p->state = P_RUNNING;
    pthread_mutex_unlock(&p->lock);
    if (port != NULL)
        *port = bound;
    return TRELLIS_OK;
}

void trellis_participant_stop(trellis_participant_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    int running = p->state == P_RUNNING;
    p->state = P_STOPPED;
    pthread_mutex_unlock(&p->lock);
    if (running)
        server_teardown(p);
}

void trellis_participant_free(trellis_participant_t *p)
{
    if (p == NULL)
        return;
    trellis_participant_stop(p);
    for (size_t i = 0; i < p->n_handlers; i++)
        free(p->handlers[i].method);
    free(p->handlers);
    if (p->creds != NULL) /* set but never started */
        grpc_server_credentials_release(p->creds);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
