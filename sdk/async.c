/*
 * async.c — the engine under the asynchronous calls (trellis_async.h): a
 * client's completion queue, the thread or poll function that drives it,
 * and the calls in flight on it.
 *
 * A call (tr_aop_t) is the same six-op batch as a blocking call
 * (unary.c's tr_call_t), started on the shared queue with the op itself as
 * the tag. The driver takes each completion, reads the outcome with
 * tr_call_result — the very code the blocking calls use — and runs the
 * op's continuation.
 *
 * Invariants:
 *   - every op started gets its continuation run exactly once, on the
 *     driver, never inside the function that started it. A call that fails
 *     before anything is sent (out of memory, a refused start, the client
 *     being freed) is "deferred": it becomes a call on a lame channel,
 *     which gRPC fails at once through the same queue, and its stored
 *     outcome is handed on instead of the lame one. (The only exception:
 *     when not even that call can be made — gRPC out of memory — the
 *     continuation runs inline, the one way left to keep "exactly once".)
 *   - every op is on the in-flight list from its start until its
 *     continuation has begun; n_inflight counts it until its continuation
 *     has returned, so a continuation that starts a new op never lets the
 *     count touch zero in between. Closing waits for zero.
 *   - ops are started under the lock, and closing sets `closing` and
 *     cancels the listed ops under the same lock, so no op can slip past
 *     the cancel and run until its deadline: an op started after it is
 *     deferred with CANCELLED.
 * The lock guards the list, the count and `closing`; continuations run
 * without it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "internal.h"

#define POLL_BATCH_MAX 1024 /* completions one poll handles at most */
#define DEFERRED_METHOD "/trellis.async.v1.Deferred/Fail"
#define FREED_MESSAGE "the client was freed while the call was in flight"

typedef struct tr_aop tr_aop_t;

struct tr_aop {
    tr_async_t *a;
    tr_aop_t *prev, *next; /* in-flight list */
    tr_call_t call;
    tr_unary_t u; /* what tr_call_result reads: target, method, id */
    char *method; /* owned copy */
    tr_chan_slot_t *slot;
    int own_slot;
    tr_chan_t *chan; /* NULL when deferred */
    int deferred;    /* rc and err below are the outcome */
    trellis_rc_t rc;
    char err[512];
    char cluster_id[TRELLIS_CLUSTER_ID_MAX + 1];
    int cluster_id_got;
    tr_aop_done_fn done;
    void *ctx;
};

struct tr_async {
    trellis_async_mode_t mode;
    grpc_completion_queue *cq;
    grpc_channel *lame; /* fails every call at once: deferred outcomes */
    pthread_t thread;
    int has_thread;
    pthread_mutex_t lock;
    pthread_cond_t drained; /* n_inflight reached 0 while closing */
    tr_aop_t *head;
    size_t n_inflight;
    int closing;
};

/* ---- ops ------------------------------------------------------------- */

static tr_aop_t *aop_new(tr_async_t *a, tr_aop_done_fn done, void *ctx)
{
    tr_aop_t *op = calloc(1, sizeof *op);
    if (op == NULL)
        return NULL;
    op->a = a;
    op->done = done;
    op->ctx = ctx;
    tr_call_init(&op->call);
    return op;
}

/* Lock held. */
static void aop_link(tr_async_t *a, tr_aop_t *op)
{
    op->next = a->head;
    if (a->head != NULL)
        a->head->prev = op;
    a->head = op;
    a->n_inflight++;
}

/* Lock held. */
static void aop_unlink(tr_async_t *a, tr_aop_t *op)
{
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        a->head = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
}

/* Give back the channel and slot an op took; nothing when deferred. */
static void aop_release_channel(tr_aop_t *op, trellis_rc_t rc)
{
    if (op->chan != NULL)
        tr_chan_release(op->slot, op->chan, rc);
    op->chan = NULL;
    tr_unary_slot_done(op->slot, op->own_slot);
    op->slot = NULL;
    op->own_slot = 0;
}

static void aop_free(tr_aop_t *op)
{
    tr_call_clear(&op->call);
    free(op->method);
    free(op);
}

/* The count drops after the continuation returned (invariant above). */
static void aop_retire(tr_async_t *a)
{
    pthread_mutex_lock(&a->lock);
    if (--a->n_inflight == 0 && a->closing)
        pthread_cond_broadcast(&a->drained);
    pthread_mutex_unlock(&a->lock);
}

/* Run op's continuation with its outcome, then free it. */
static void aop_finish(tr_aop_t *op, const uint8_t *reply, size_t reply_len)
{
    tr_aop_result_t r = {
        .rc = op->rc,
        .err = op->rc == TRELLIS_OK ? "" : op->err,
        .reply = reply,
        .reply_len = reply_len,
        .cluster_id = op->cluster_id_got ? op->cluster_id : NULL,
    };
    op->done(op->ctx, &r);
}

/* Lock held; op is linked. Turn op into a deferred failure: a call on the
 * lame channel carries it through the queue. */
static void aop_defer_locked(tr_async_t *a, tr_aop_t *op, trellis_rc_t rc,
                             const char *msg, int *inline_fallback)
{
    op->deferred = 1;
    op->rc = rc;
    snprintf(op->err, sizeof op->err, "%s", msg);
    aop_release_channel(op, rc);
    tr_call_clear(&op->call);
    tr_unary_t u = {.channel = a->lame,
                    .method = DEFERRED_METHOD,
                    .target = "",
                    .timeout_ms = TR_DEFAULT_TIMEOUT_MS};
    char ignored[64];
    *inline_fallback = tr_call_start(&op->call, &u, a->cq, op, ignored,
                                     sizeof ignored) != TRELLIS_OK;
    if (*inline_fallback)
        aop_unlink(a, op);
}

/* The inline fallback of the first invariant, outside the lock. */
static void aop_run_inline(tr_async_t *a, tr_aop_t *op)
{
    aop_finish(op, NULL, 0);
    aop_free(op);
    aop_retire(a);
}

/* Lock held. Start op's real call; not OK with op->err when it could not
 * start (nothing then comes to the queue for it). */
static trellis_rc_t aop_start_locked(tr_async_t *a, tr_aop_t *op,
                                     const tr_async_call_t *call)
{
    op->method = strdup(call->method);
    op->chan = op->method != NULL ? tr_chan_acquire(call->slot) : NULL;
    if (op->chan == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, op->err, sizeof op->err,
                       "out of memory for a call to %s%s", call->slot->target,
                       call->method);
    tr_unary_t u = {
        .channel = op->chan->channel,
        .registered = call->registered >= 0
                          ? op->chan->registered[call->registered]
                          : NULL,
        .method = op->method,
        .target = call->slot->target,
        .req = call->req,
        .req_len = call->req_len,
        .md_keys = call->md_keys,
        .md_values = call->md_values,
        .n_md = call->n_md,
        .timeout_ms = call->timeout_ms,
    };
    if (call->want_cluster_id) {
        u.cluster_id = op->cluster_id;
        u.cluster_id_got = &op->cluster_id_got;
    }
    op->u = u;
    op->u.req = NULL; /* copied by tr_call_start; not the op's to keep */
    op->u.md_keys = op->u.md_values = NULL;
    op->u.n_md = 0;
    return tr_call_start(&op->call, &u, a->cq, op, op->err, sizeof op->err);
}

void tr_async_call(tr_async_t *a, const tr_async_call_t *call,
                   tr_aop_done_fn done, void *ctx)
{
    tr_aop_t *op = aop_new(a, done, ctx);
    if (op == NULL) {
        tr_aop_result_t r = {.rc = TRELLIS_RESOURCE_EXHAUSTED,
                             .err = "out of memory for an asynchronous call"};
        tr_unary_slot_done(call->slot, call->own_slot);
        done(ctx, &r); /* the inline fallback: nothing to queue it with */
        return;
    }
    op->slot = call->slot;
    op->own_slot = call->own_slot;
    int fallback = 0;
    char why[sizeof op->err];
    pthread_mutex_lock(&a->lock);
    aop_link(a, op);
    trellis_rc_t rc =
        a->closing ? TRELLIS_CANCELLED : aop_start_locked(a, op, call);
    if (rc != TRELLIS_OK) {
        snprintf(why, sizeof why, "%s", a->closing ? FREED_MESSAGE : op->err);
        aop_defer_locked(a, op, rc, why, &fallback);
    }
    pthread_mutex_unlock(&a->lock);
    if (fallback)
        aop_run_inline(a, op);
}

void tr_async_fail(tr_async_t *a, trellis_rc_t rc, const char *err,
                   tr_aop_done_fn done, void *ctx)
{
    tr_aop_t *op = aop_new(a, done, ctx);
    if (op == NULL) {
        tr_aop_result_t r = {.rc = rc, .err = err};
        done(ctx, &r); /* the inline fallback: nothing to queue it with */
        return;
    }
    int fallback = 0;
    pthread_mutex_lock(&a->lock);
    aop_link(a, op);
    aop_defer_locked(a, op, rc, err, &fallback);
    pthread_mutex_unlock(&a->lock);
    if (fallback)
        aop_run_inline(a, op);
}

/* ---- the driver ------------------------------------------------------ */

/* One completion: the op's outcome, its continuation, its end. */
static void aop_complete(tr_async_t *a, tr_aop_t *op)
{
    pthread_mutex_lock(&a->lock);
    aop_unlink(a, op);
    pthread_mutex_unlock(&a->lock);
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    if (!op->deferred) {
        op->rc = tr_call_result(&op->call, &op->u, &reply, &reply_len, op->err,
                                sizeof op->err);
        aop_release_channel(op, op->rc);
    }
    aop_finish(op, reply, reply_len);
    free(reply);
    aop_free(op);
    aop_retire(a);
}

/* Handle one event; 1 for a completion, 0 for a timeout, -1 at shutdown. */
static int drive_one(tr_async_t *a, gpr_timespec deadline)
{
    grpc_event ev = grpc_completion_queue_next(a->cq, deadline, NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
        return -1;
    if (ev.type != GRPC_OP_COMPLETE)
        return 0;
    aop_complete(a, ev.tag);
    return 1;
}

static void *driver_main(void *arg)
{
    tr_async_t *a = arg;
    while (drive_one(a, gpr_inf_future(GPR_CLOCK_REALTIME)) >= 0) {
    }
    return NULL;
}

int tr_async_poll(tr_async_t *a, uint32_t timeout_ms)
{
    if (a == NULL || a->mode != TRELLIS_ASYNC_POLL)
        return -1;
    gpr_timespec first =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
    int n = 0;
    if (drive_one(a, first) <= 0)
        return 0;
    for (n = 1; n < POLL_BATCH_MAX; n++)
        if (drive_one(a, gpr_inf_past(GPR_CLOCK_MONOTONIC)) <= 0)
            break;
    return n;
}

/* ---- life ------------------------------------------------------------ */

trellis_rc_t tr_async_new(trellis_async_mode_t mode, tr_async_t **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    if (mode != TRELLIS_ASYNC_THREAD && mode != TRELLIS_ASYNC_POLL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "async mode %d is not TRELLIS_ASYNC_THREAD (1) or "
                       "TRELLIS_ASYNC_POLL (2)",
                       (int)mode);
    tr_async_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for an async queue");
    a->mode = mode;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->drained, NULL);
    a->cq = grpc_completion_queue_create_for_next(NULL);
    a->lame = grpc_lame_client_channel_create("trellis-deferred",
                                              GRPC_STATUS_INTERNAL,
                                              "deferred outcome (never seen)");
    if (mode == TRELLIS_ASYNC_THREAD) {
        if (pthread_create(&a->thread, NULL, driver_main, a) != 0) {
            tr_async_close(a);
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "cannot start the async queue's thread");
        }
        a->has_thread = 1;
    }
    *out = a;
    return TRELLIS_OK;
}

/* Lock held: make every call in flight finish now. */
static void cancel_all_locked(tr_async_t *a)
{
    for (tr_aop_t *op = a->head; op != NULL; op = op->next)
        if (!op->deferred)
            tr_call_cancel(&op->call, FREED_MESSAGE);
}

/* Until nothing is in flight: the thread drives (we wait), or we drive. */
static void drain(tr_async_t *a)
{
    pthread_mutex_lock(&a->lock);
    while (a->n_inflight > 0) {
        if (a->has_thread) {
            pthread_cond_wait(&a->drained, &a->lock);
            continue;
        }
        pthread_mutex_unlock(&a->lock);
        drive_one(a, gpr_inf_future(GPR_CLOCK_REALTIME));
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
}

void tr_async_close(tr_async_t *a)
{
    if (a == NULL)
        return;
    /* From the driver's own thread the drain below would wait for itself
     * for ever: fail loudly instead (trellis_async.h forbids it). */
    if (a->has_thread && pthread_equal(pthread_self(), a->thread)) {
        fprintf(stderr, "libtrellis: trellis_client_free called from a "
                        "callback of the same client\n");
        abort();
    }
    pthread_mutex_lock(&a->lock);
    a->closing = 1;
    cancel_all_locked(a);
    pthread_mutex_unlock(&a->lock);
    drain(a);
    grpc_completion_queue_shutdown(a->cq);
    if (a->has_thread)
        pthread_join(a->thread, NULL);
    else
        while (drive_one(a, gpr_inf_future(GPR_CLOCK_REALTIME)) >= 0) {
        }
    grpc_completion_queue_destroy(a->cq);
    grpc_channel_destroy(a->lame);
    pthread_cond_destroy(&a->drained);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
