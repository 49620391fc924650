/*
 * tm_server: the gRPC front end (see tm_server.h). Owns the grpc_server,
 * the completion queues with their threads, and the lifetime of every
 * incoming call (tm_rpc_t): requested -> handled -> replied -> freed.
 *
 * An accepted call has two references: the handler's (dropped when the
 * reply batch completes, or by tm_server_drop) and its close watch's (a
 * GRPC_OP_RECV_CLOSE_ON_SERVER batch started before the handler runs,
 * dropped when it completes: the call is over, answered or cancelled).
 * The last one frees the rpc, so neither completion can see it freed.
 *
 * An in-process call (tm_server_call_local, the console's API) is an rpc
 * without a grpc_call: one reference (the handler's), no close watch, no
 * deadline; its reply is packed for the caller's done function instead of
 * a batch, and it is freed right after.
 */
#include "tm_server.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_log.h"
#include "trellis_wire.h"

/* Requests kept outstanding per method per queue: calls that arrive while
 * a handler runs are accepted without waiting for a re-arm. */
#define REQUESTS_PER_METHOD 16
/* trellis.v1.TM, its operator and workflow/message methods, health and
 * dtmgimp.Dtm come to 26; room for more. */
#define MAX_METHODS 48
#define UNREGISTERED (-1)

typedef struct {
    char *name;
    const ProtobufCMessageDescriptor *req_desc; /* NULL: not checked */
    tm_method_fn fn;
    void *user;
    void *handle;
} method_t;

typedef enum { RPC_WAITING, RPC_REPLYING } rpc_phase_t;

/* Who to tell when the client cancels a call (tm_server_watch_cancel). */
typedef struct {
    pthread_mutex_t mu; /* a leaf lock: nothing is taken while holding it */
    int closed;         /* the close batch completed: no watch any more */
    tm_rpc_cancel_fn fn;
    void *user;
    char key[TM_SERVER_CANCEL_KEY_MAX + 1];
} cancel_watch_t;

struct tm_rpc {
    tm_tag_t tag;       /* the request, then the reply */
    tm_tag_t close_tag; /* the close watch */
    tm_server_t *srv;
    int method;
    int cq;
    rpc_phase_t phase;
    atomic_int refs;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_call_details details;
    grpc_byte_buffer *send;
    grpc_slice status_details;
    int cancelled; /* set by gRPC when the close batch completes */
    cancel_watch_t watch;
    tm_local_done_fn local_done; /* an in-process call: its reply goes here */
    void *local_user;
};

typedef struct {
    tm_tag_t tag;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} shutdown_tag_t;

struct tm_server {
    grpc_server *server;
    int n_cqs;
    grpc_completion_queue **cqs;
    pthread_t *threads;
    method_t methods[MAX_METHODS];
    int n_methods;
    atomic_int stopping;
    atomic_long live_calls;
    atomic_uint next_cq;
    shutdown_tag_t shutdown;
    grpc_server_credentials *creds; /* NULL: plaintext */
    grpc_metadata reply_md;         /* the cluster id, on every reply */
    size_t n_reply_md;
};

static void rpc_on_done(tm_tag_t *tag, int ok);
static void close_on_done(tm_tag_t *tag, int ok);

static void rpc_free(tm_rpc_t *rpc)
{
    if (rpc->call)
        grpc_call_unref(rpc->call);
    grpc_metadata_array_destroy(&rpc->md);
    if (rpc->method == UNREGISTERED)
        grpc_call_details_destroy(&rpc->details);
    if (rpc->payload)
        grpc_byte_buffer_destroy(rpc->payload);
    if (rpc->send)
        grpc_byte_buffer_destroy(rpc->send);
    grpc_slice_unref(rpc->status_details);
    pthread_mutex_destroy(&rpc->watch.mu);
    free(rpc);
}

/* Drop one reference (the handler's or the close watch's). */
static void rpc_release(tm_rpc_t *rpc)
{
    if (atomic_fetch_sub(&rpc->refs, 1) == 1)
        rpc_free(rpc);
}

/* The handler is done with rpc: replied (the batch completed or could not
 * start) or dropped. */
static void handler_done(tm_rpc_t *rpc)
{
    atomic_fetch_sub(&rpc->srv->live_calls, 1);
    rpc_release(rpc);
}

static void arm_request(tm_server_t *s, int method, int cq)
{
    if (atomic_load(&s->stopping))
        return;
    tm_rpc_t *rpc = calloc(1, sizeof(*rpc));
    if (!rpc) {
        tm_log(TM_LOG_ERROR, "event=oom what=\"incoming call slot\"");
        return;
    }
    rpc->tag.on_done = rpc_on_done;
    rpc->close_tag.on_done = close_on_done;
    atomic_init(&rpc->refs, 1);
    pthread_mutex_init(&rpc->watch.mu, NULL);
    rpc->srv = s;
    rpc->method = method;
    rpc->cq = cq;
    rpc->status_details = grpc_empty_slice();
    grpc_metadata_array_init(&rpc->md);
    grpc_call_error e;
    grpc_completion_queue *q = s->cqs[cq];
    if (method == UNREGISTERED) {
        grpc_call_details_init(&rpc->details);
        e = grpc_server_request_call(s->server, &rpc->call, &rpc->details,
                                     &rpc->md, q, q, &rpc->tag);
    } else {
        e = grpc_server_request_registered_call(
            s->server, s->methods[method].handle, &rpc->call, &rpc->deadline,
            &rpc->md, &rpc->payload, q, q, &rpc->tag);
    }
    if (e != GRPC_CALL_OK) {
        rpc_free(rpc);
        if (!atomic_load(&s->stopping))
            tm_log(TM_LOG_ERROR, "event=request_call_failed code=%d", e);
    }
}

static grpc_byte_buffer *pack_reply(const ProtobufCMessage *reply)
{
    size_t size = reply ? protobuf_c_message_get_packed_size(reply) : 0;
    grpc_slice slice = grpc_slice_malloc(size);
    if (size)
        protobuf_c_message_pack(reply, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

/* Nobody is to be told of a cancel any more (rpc is being finished). */
static void forget_cancel_watch(tm_rpc_t *rpc)
{
    pthread_mutex_lock(&rpc->watch.mu);
    rpc->watch.fn = NULL;
    pthread_mutex_unlock(&rpc->watch.mu);
}

/* The reply of an in-process call: packed into a buffer for its done
 * function instead of a batch on a gRPC call. */
static void reply_local(tm_rpc_t *rpc, grpc_status_code status,
                        const char *message, const ProtobufCMessage *reply)
{
    size_t size = status == GRPC_STATUS_OK && reply
                      ? protobuf_c_message_get_packed_size(reply)
                      : 0;
    uint8_t *bytes = malloc(size ? size : 1);
    if (!bytes) {
        rpc->local_done(rpc->local_user, GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "out of memory packing the reply", NULL, 0);
    } else {
        if (size)
            protobuf_c_message_pack(reply, bytes);
        rpc->local_done(rpc->local_user, (int)status, message ? message : "",
                        bytes, size);
        free(bytes);
    }
    handler_done(rpc);
}

void tm_server_reply(tm_rpc_t *rpc, grpc_status_code status,
                     const char *message, const ProtobufCMessage *reply)
{
    forget_cancel_watch(rpc);
    if (rpc->local_done) {
        reply_local(rpc, status, message, reply);
        return;
    }
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    size_t n = 0;
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = rpc->srv->n_reply_md;
    ops[n++].data.send_initial_metadata.metadata = &rpc->srv->reply_md;
    if (status == GRPC_STATUS_OK) {
        rpc->send = pack_reply(reply);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = rpc->send;
    }
    grpc_slice_unref(rpc->status_details);
    rpc->status_details = grpc_slice_from_copied_string(message ? message : "");
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = status;
    ops[n++].data.send_status_from_server.status_details = &rpc->status_details;
    rpc->phase = RPC_REPLYING;
    if (grpc_call_start_batch(rpc->call, ops, n, &rpc->tag, NULL) !=
        GRPC_CALL_OK)
        handler_done(rpc);
}

void tm_server_drop(tm_rpc_t *rpc)
{
    forget_cancel_watch(rpc);
    if (rpc->local_done)
        rpc->local_done(rpc->local_user, GRPC_STATUS_CANCELLED,
                        "dropped without an answer", NULL, 0);
    handler_done(rpc);
}

int tm_server_watch_cancel(tm_rpc_t *rpc, tm_rpc_cancel_fn fn, void *user,
                           const char *key, char *err, size_t errlen)
{
    size_t n = strlen(key);
    if (n > TM_SERVER_CANCEL_KEY_MAX) {
        snprintf(err, errlen, "cancel key of %zu bytes (at most %d)", n,
                 TM_SERVER_CANCEL_KEY_MAX);
        return -1;
    }
    pthread_mutex_lock(&rpc->watch.mu);
    int closed = rpc->watch.closed;
    if (!closed) {
        rpc->watch.fn = fn;
        rpc->watch.user = user;
        memcpy(rpc->watch.key, key, n + 1);
    }
    pthread_mutex_unlock(&rpc->watch.mu);
    return closed ? TM_SERVER_CALL_CLOSED : 0;
}

/* Learn when the call ends, answered or not: a client that cancels, or
 * whose connection or deadline goes, completes this batch at once with
 * cancelled set. Takes the close watch's reference. */
static void start_close_watch(tm_rpc_t *rpc)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &rpc->cancelled;
    atomic_fetch_add(&rpc->refs, 1);
    if (grpc_call_start_batch(rpc->call, &op, 1, &rpc->close_tag, NULL) ==
        GRPC_CALL_OK)
        return;
    rpc->watch.closed = 1; /* no handler has seen rpc yet */
    rpc_release(rpc);
}

/* The call is over. If its client cancelled it (or went away, or the
 * batch failed: no reply can reach it either) while a watch was set, tell
 * the watcher once. The handler's side of rpc is still finished exactly
 * once by whoever holds it (the watcher drops it, or a reply that won the
 * race goes to a dead call); the close watch's reference keeps rpc alive
 * until the watcher returns. */
static void close_on_done(tm_tag_t *tag, int ok)
{
    tm_rpc_t *rpc = (tm_rpc_t *)((char *)tag - offsetof(tm_rpc_t, close_tag));
    pthread_mutex_lock(&rpc->watch.mu);
    rpc->watch.closed = 1;
    tm_rpc_cancel_fn fn = rpc->watch.fn;
    void *user = rpc->watch.user;
    rpc->watch.fn = NULL;
    pthread_mutex_unlock(&rpc->watch.mu);
    if (fn && (rpc->cancelled || !ok))
        fn(rpc, user, rpc->watch.key);
    rpc_release(rpc);
}

static void answer_unregistered(tm_rpc_t *rpc)
{
    char msg[320];
    char *method = grpc_slice_to_c_string(rpc->details.method);
    snprintf(msg, sizeof(msg), "trellisd has no method %.256s", method);
    gpr_free(method);
    tm_server_reply(rpc, GRPC_STATUS_UNIMPLEMENTED, msg, NULL);
}

/* Check the request's bytes against the method's type (no NUL inside a
 * string, a walkable message), then hand them to its handler. */
static void run_method(tm_rpc_t *rpc, const method_t *m, const uint8_t *req,
                       size_t len)
{
    char why[320], msg[400];
    int wire = m->req_desc ? trellis_wire_check_strings(m->req_desc, req, len,
                                                        why, sizeof(why))
                           : TRELLIS_WIRE_OK;
    if (wire == TRELLIS_WIRE_OK) {
        m->fn(rpc, req, len, m->user);
        return;
    }
    if (wire == TRELLIS_WIRE_MALFORMED)
        snprintf(msg, sizeof(msg), "malformed request: %s", why);
    else
        snprintf(msg, sizeof(msg), "%s", why);
    tm_server_reply(rpc, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL);
}

static void dispatch(tm_rpc_t *rpc)
{
    if (rpc->method == UNREGISTERED) {
        answer_unregistered(rpc);
        return;
    }
    const method_t *m = &rpc->srv->methods[rpc->method];
    if (!rpc->payload) {
        m->fn(rpc, (const uint8_t *)"", 0, m->user);
        return;
    }
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, rpc->payload)) {
        tm_server_reply(rpc, GRPC_STATUS_INVALID_ARGUMENT,
                        "cannot read the request message", NULL);
        return;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    run_method(rpc, m, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
    grpc_slice_unref(all);
}

int tm_server_call_local(tm_server_t *s, const char *method, const uint8_t *req,
                         size_t len, tm_local_done_fn done, void *user,
                         char *err, size_t errlen)
{
    int found = -1;
    for (int i = 0; i < s->n_methods && found < 0; i++)
        if (strcmp(s->methods[i].name, method) == 0)
            found = i;
    if (found < 0) {
        snprintf(err, errlen, "trellisd has no method %.256s", method);
        return -1;
    }
    tm_rpc_t *rpc = calloc(1, sizeof(*rpc));
    if (!rpc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    atomic_init(&rpc->refs, 1); /* the handler's: no close watch */
    pthread_mutex_init(&rpc->watch.mu, NULL);
    rpc->srv = s;
    rpc->method = found;
    rpc->deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    rpc->status_details = grpc_empty_slice();
    grpc_metadata_array_init(&rpc->md);
    rpc->local_done = done;
    rpc->local_user = user;
    atomic_fetch_add(&s->live_calls, 1);
    run_method(rpc, &s->methods[found], len ? req : (const uint8_t *)"", len);
    return 0;
}

static void rpc_on_done(tm_tag_t *tag, int ok)
{
    tm_rpc_t *rpc = (tm_rpc_t *)tag;
    tm_server_t *s = rpc->srv;
    if (rpc->phase == RPC_REPLYING) {
        handler_done(rpc);
        return;
    }
    if (!ok) { /* server shutting down: no call */
        rpc_free(rpc);
        return;
    }
    atomic_fetch_add(&s->live_calls, 1);
    arm_request(s, rpc->method, rpc->cq);
    start_close_watch(rpc);
    dispatch(rpc);
}

static void shutdown_on_done(tm_tag_t *tag, int ok)
{
    (void)ok;
    shutdown_tag_t *t = (shutdown_tag_t *)tag;
    pthread_mutex_lock(&t->mu);
    t->done = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void *cq_thread_main(void *arg)
{
    grpc_completion_queue *cq = arg;
    pthread_setname_np(pthread_self(), "tm-cq");
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            tm_tag_t *tag = ev.tag;
            tag->on_done(tag, ev.success);
        }
    }
    return NULL;
}

/* One completion-queue thread per core but one, at least one: the store
 * thread and its callback thread need a core too. On the two-core box a
 * second completion-queue thread cost trellisd 10-15 % more CPU per saga
 * and per TCC transfer (more wake-ups and lock hand-offs) and gained no
 * throughput. */
static int default_cq_threads(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 1 ? (int)cores - 1 : 1;
}

int tm_server_new(int n_threads, size_t max_message, tm_server_t **out,
                  char *err, size_t errlen)
{
    if (n_threads <= 0)
        n_threads = default_cq_threads();
    tm_server_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    grpc_arg args[2];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)max_message;
    /* Two trellisd must never share a port. */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_ALLOW_REUSEPORT;
    args[1].value.integer = 0;
    grpc_channel_args cargs = {2, args};
    s->server = grpc_server_create(&cargs, NULL);
    s->n_cqs = n_threads;
    s->cqs = calloc((size_t)n_threads, sizeof(*s->cqs));
    s->threads = calloc((size_t)n_threads, sizeof(*s->threads));
    if (!s->server || !s->cqs || !s->threads) {
        snprintf(err, errlen, "out of memory");
        free(s->cqs);
        free(s->threads);
        free(s);
        return -1;
    }
    for (int i = 0; i < n_threads; i++) {
        s->cqs[i] = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, s->cqs[i], NULL);
    }
    s->shutdown.tag.on_done = shutdown_on_done;
    pthread_mutex_init(&s->shutdown.mu, NULL);
    pthread_cond_init(&s->shutdown.cv, NULL);
    *out = s;
    return 0;
}

void *tm_server_rpc_user(const tm_rpc_t *rpc)
{
    if (rpc->method == UNREGISTERED)
        return NULL;
    return rpc->srv->methods[rpc->method].user;
}

int tm_server_rpc_expired(const tm_rpc_t *rpc)
{
    gpr_timespec now = gpr_now(rpc->deadline.clock_type);
    return gpr_time_cmp(rpc->deadline, now) < 0;
}

size_t tm_server_rpc_metadata(const tm_rpc_t *rpc, const char *key,
                              const char **values, size_t *lens, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < rpc->md.count; i++) {
        const grpc_metadata *m = &rpc->md.metadata[i];
        if (grpc_slice_str_cmp(m->key, key) != 0)
            continue;
        if (n < max) {
            values[n] = (const char *)GRPC_SLICE_START_PTR(m->value);
            lens[n] = GRPC_SLICE_LENGTH(m->value);
        }
        n++;
    }
    return n;
}

int tm_server_add_method(tm_server_t *s, const char *method,
                         const ProtobufCMessageDescriptor *req_desc,
                         tm_method_fn fn, void *user, char *err, size_t errlen)
{
    if (s->n_methods == MAX_METHODS) {
        snprintf(err, errlen, "too many methods");
        return -1;
    }
    method_t *m = &s->methods[s->n_methods];
    m->name = strdup(method);
    m->req_desc = req_desc;
    m->fn = fn;
    m->user = user;
    m->handle = grpc_server_register_method(
        s->server, m->name, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    if (!m->name || !m->handle) {
        snprintf(err, errlen, "cannot register method %s", method);
        free(m->name);
        return -1;
    }
    s->n_methods++;
    return 0;
}

void tm_server_set_credentials(tm_server_t *s, grpc_server_credentials *creds)
{
    if (s->creds)
        grpc_server_credentials_release(s->creds);
    s->creds = creds;
}

void tm_server_set_cluster_id(tm_server_t *s, const char *id)
{
    if (s->n_reply_md) {
        grpc_slice_unref(s->reply_md.value);
        s->n_reply_md = 0;
    }
    if (id && *id) {
        s->reply_md.key = grpc_slice_from_static_string(TM_CLUSTER_ID_KEY);
        s->reply_md.value = grpc_slice_from_copied_string(id);
        s->n_reply_md = 1;
    }
}

int tm_server_start(tm_server_t *s, const char *addr, int *port, char *err,
                    size_t errlen)
{
    grpc_server_credentials *creds =
        s->creds ? s->creds : grpc_insecure_server_credentials_create();
    s->creds = NULL;
    int bound = grpc_server_add_http2_port(s->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (bound == 0) {
        snprintf(err, errlen, "cannot listen on %s (in use or invalid)", addr);
        return -1;
    }
    grpc_server_start(s->server);
    for (int q = 0; q < s->n_cqs; q++) {
        for (int r = 0; r < REQUESTS_PER_METHOD; r++) {
            for (int m = 0; m < s->n_methods; m++)
                arm_request(s, m, q);
            if (r < 2)
                arm_request(s, UNREGISTERED, q);
        }
        pthread_create(&s->threads[q], NULL, cq_thread_main, s->cqs[q]);
    }
    *port = bound;
    return 0;
}

grpc_completion_queue *tm_server_next_cq(tm_server_t *s)
{
    unsigned i = atomic_fetch_add(&s->next_cq, 1);
    return s->cqs[i % (unsigned)s->n_cqs];
}

long tm_server_live_calls(tm_server_t *s)
{
    return atomic_load(&s->live_calls);
}

void tm_server_stop_accepting(tm_server_t *s)
{
    if (atomic_exchange(&s->stopping, 1))
        return;
    grpc_server_shutdown_and_notify(s->server, s->cqs[0], &s->shutdown.tag);
    grpc_server_cancel_all_calls(s->server);
    pthread_mutex_lock(&s->shutdown.mu);
    while (!s->shutdown.done)
        pthread_cond_wait(&s->shutdown.cv, &s->shutdown.mu);
    pthread_mutex_unlock(&s->shutdown.mu);
}
