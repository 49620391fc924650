/*
 * part_core: the no-op participant on the raw gRPC C core (see part.h).
 *
 * Every method is registered with GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
 * so a call arrives with its request message and is answered with one
 * batch (initial metadata, reply message when OK, status, close) - two
 * completions per call, the least the C core allows. Each worker thread owns
 * one completion queue and keeps ARMED_PER_METHOD requests outstanding per
 * method on it; a request is re-armed the moment its call arrives, before
 * the reply goes out, so the server never runs short of requests.
 *
 * Invariant: every pcall_t is either waiting for its new-call event
 * (replying == 0) or for its reply batch (replying == 1); it is freed, and
 * its call unref'd, when the reply batch completes. There is no graceful
 * stop: the process is only ever ended with SIGTERM/SIGKILL by the bench,
 * and the handlers hold no state that would need flushing.
 */
#include "part.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARMED_PER_METHOD 128

typedef struct {
    grpc_completion_queue *cq;
    pthread_t thread;
} worker_t;

typedef struct {
    part_method_t m;
    worker_t *w;
    int replying;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *payload;
    grpc_byte_buffer *reply;
    grpc_slice details;
    int cancelled;
    grpc_op ops[4];
} pcall_t;

static grpc_server *server;
static void *handles[PART_N_METHODS];

static void release(pcall_t *c)
{
    if (c->call)
        grpc_call_unref(c->call);
    grpc_metadata_array_destroy(&c->md);
    if (c->payload)
        grpc_byte_buffer_destroy(c->payload);
    if (c->reply)
        grpc_byte_buffer_destroy(c->reply);
    free(c);
}

/* Ask for the next call of method m on w's queue. */
static int arm(worker_t *w, part_method_t m)
{
    pcall_t *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->m = m;
    c->w = w;
    grpc_metadata_array_init(&c->md);
    grpc_call_error e = grpc_server_request_registered_call(
        server, handles[m], &c->call, &c->deadline, &c->md, &c->payload, w->cq,
        w->cq, c);
    if (e != GRPC_CALL_OK) {
        release(c);
        return -1;
    }
    return 0;
}

static grpc_byte_buffer *reply_body(part_method_t m)
{
    char text[256];
    size_t n = m == PART_STATS ? part_stats_text(text, sizeof(text)) : 0;
    grpc_slice s = grpc_slice_from_copied_buffer(text, n);
    grpc_byte_buffer *b = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return b;
}

/* Answer the call in c with one batch. */
static void reply(pcall_t *c)
{
    const part_method_info_t *mi = &part_methods[c->m];
    atomic_fetch_add(&part_calls[c->m], 1);
    c->replying = 1;
    memset(c->ops, 0, sizeof(c->ops));
    grpc_op *op = c->ops;
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    op++;
    if (mi->status == GRPC_STATUS_OK) {
        c->reply = reply_body(c->m);
        op->op = GRPC_OP_SEND_MESSAGE;
        op->data.send_message.send_message = c->reply;
        op++;
    }
    op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op->data.send_status_from_server.status = mi->status;
    if (mi->details[0]) {
        c->details = grpc_slice_from_static_string(mi->details);
        op->data.send_status_from_server.status_details = &c->details;
    }
    op++;
    op->op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op->data.recv_close_on_server.cancelled = &c->cancelled;
    op++;
    if (grpc_call_start_batch(c->call, c->ops, (size_t)(op - c->ops), c,
                              NULL) != GRPC_CALL_OK)
        release(c);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(
            w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        pcall_t *c = ev.tag;
        if (c->replying || !ev.success) {
            release(c);
            continue;
        }
        if (arm(w, c->m) != 0)
            fprintf(stderr, "trellis-bench-part: could not re-arm %s\n",
                    part_methods[c->m].name);
        reply(c);
    }
    return NULL;
}

static int start_workers(worker_t *ws, int n)
{
    for (int i = 0; i < n; i++)
        for (int m = 0; m < PART_N_METHODS; m++)
            for (int k = 0; k < (m == PART_STATS ? 2 : ARMED_PER_METHOD); k++)
                if (arm(&ws[i], (part_method_t)m) != 0)
                    return -1;
    for (int i = 0; i < n; i++)
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
            return -1;
    return 0;
}

int part_core_serve(const char *addr, int n_threads, int *port)
{
    worker_t *ws = calloc((size_t)n_threads, sizeof(*ws));
    if (!ws)
        return -1;
    server = grpc_server_create(NULL, NULL);
    for (int m = 0; m < PART_N_METHODS; m++)
        handles[m] = grpc_server_register_method(
            server, part_methods[m].name, NULL,
            GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    for (int i = 0; i < n_threads; i++) {
        ws[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(server, ws[i].cq, NULL);
    }
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    *port = grpc_server_add_http2_port(server, addr, creds);
    grpc_server_credentials_release(creds);
    if (*port == 0) {
        fprintf(stderr, "trellis-bench-part: cannot listen on %s\n", addr);
        return -1;
    }
    grpc_server_start(server);
    if (start_workers(ws, n_threads) != 0) {
        fprintf(stderr, "trellis-bench-part: cannot start workers\n");
        return -1;
    }
    return 0; /* ws lives as long as the process */
}
