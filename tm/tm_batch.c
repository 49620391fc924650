/*
 * tm_batch: completion events gathered into CompletionEventBatch calls per
 * listener (see tm_batch.h for the rules and the threading).
 */
#include "tm_batch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_engine.h"
#include "tm_event.h"
#include "tm_metrics.h"

/* One event: its bytes and whom to tell how its call ended. */
typedef struct batch_item {
    struct batch_item *next;
    uint8_t *event; /* owned */
    size_t len;
    uint32_t timeout_ms;
    tm_call_done_fn done;
    void *arg;
} batch_item_t;

/* One listener: where its calls go, how many events each may carry, how
 * many are on the wire and the events waiting, oldest first. */
typedef struct batch_queue {
    struct batch_queue *next;
    char *host_port; /* owned */
    char *method;    /* owned */
    uint32_t max;
    unsigned inflight;
    batch_item_t *head, *tail;
    size_t waiting;
} batch_queue_t;

/* One call on the wire: its listener and the events it carries. */
typedef struct {
    tm_batch_t *owner;
    batch_queue_t *queue;
    batch_item_t *items;
} batch_call_t;

struct tm_batch {
    pthread_mutex_t mu;
    tm_batch_start_fn start;
    void *caller;
    batch_queue_t *queues;
    size_t waiting, calls;
};

tm_batch_t *tm_batch_new(tm_batch_start_fn start, void *caller)
{
    tm_batch_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    b->start = start;
    b->caller = caller;
    return b;
}

static void free_items(batch_item_t *it)
{
    while (it) {
        batch_item_t *next = it->next;
        free(it->event);
        free(it);
        it = next;
    }
}

void tm_batch_free(tm_batch_t *b)
{
    if (!b)
        return;
    for (batch_queue_t *q = b->queues, *next; q; q = next) {
        next = q->next;
        free_items(q->head);
        free(q->host_port);
        free(q->method);
        free(q);
    }
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* The queue of (host_port, method, max), added when missing; NULL on out
 * of memory. Under b->mu. */
static batch_queue_t *queue_of(tm_batch_t *b, const char *host_port,
                               const char *method, uint32_t max)
{
    for (batch_queue_t *q = b->queues; q; q = q->next)
        if (q->max == max && strcmp(q->host_port, host_port) == 0 &&
            strcmp(q->method, method) == 0)
            return q;
    batch_queue_t *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->host_port = strdup(host_port);
    q->method = strdup(method);
    if (!q->host_port || !q->method) {
        free(q->host_port);
        free(q->method);
        free(q);
        return NULL;
    }
    q->max = max;
    q->next = b->queues;
    b->queues = q;
    return q;
}

static void on_batch_done(void *arg, int status, const char *message,
                          const uint8_t *reply, size_t reply_len);

/* Start one call carrying items (a list): the batch message of their
 * events, under the listener protocol's batch metadata, due within the
 * longest of their timeouts. Returns 0, or -1 with err filled (items are
 * then still the caller's). Under b->mu. */
static int start_call(tm_batch_t *b, batch_queue_t *q, batch_item_t *items,
                      char *err, size_t errlen)
{
    size_t n = 0;
    uint32_t timeout_ms = 0;
    for (batch_item_t *it = items; it; it = it->next) {
        n++;
        if (it->timeout_ms > timeout_ms)
            timeout_ms = it->timeout_ms;
    }
    const uint8_t **events = malloc(n * sizeof(*events));
    size_t *lens = malloc(n * sizeof(*lens));
    batch_call_t *call = malloc(sizeof(*call));
    size_t len = 0;
    uint8_t *payload = NULL;
    if (events && lens && call) {
        size_t i = 0;
        for (batch_item_t *it = items; it; it = it->next, i++) {
            events[i] = it->event;
            lens[i] = it->len;
        }
        payload = tm_event_batch_pack(events, lens, n, &len);
    }
    free(events);
    free(lens);
    if (!payload) {
        free(call);
        snprintf(err, errlen, "out of memory for a listener's batch");
        return -1;
    }
    *call = (batch_call_t){b, q, items};
    const tm_md_t md[] = {{"dtm-trans_type", "event", 0},
                          {"dtm-op", "notify_batch", 0}};
    int rc = b->start(b->caller, q->host_port, q->method, payload, len, md, 2,
                      timeout_ms, on_batch_done, call, err, errlen);
    free(payload);
    if (rc != 0) {
        free(call);
        return -1;
    }
    q->inflight++;
    b->calls++;
    tm_metrics_listener_batch(n);
    return 0;
}

/* Take the oldest waiting events of q, at most q->max, as a list. Under
 * b->mu. */
static batch_item_t *take_waiting(tm_batch_t *b, batch_queue_t *q)
{
    batch_item_t *first = q->head, *last = q->head;
    size_t n = 1;
    while (n < q->max && last->next) {
        last = last->next;
        n++;
    }
    q->head = last->next;
    if (!q->head)
        q->tail = NULL;
    last->next = NULL;
    q->waiting -= n;
    b->waiting -= n;
    return first;
}

/* Tell every event of items how its call ended, and free them. No lock
 * held. */
static void complete_items(batch_item_t *items, int status, const char *msg)
{
    for (batch_item_t *it = items; it; it = it->next)
        it->done(it->arg, status, msg, NULL, 0);
    free_items(items);
}

int tm_batch_send(tm_batch_t *b, const char *host_port, const char *method,
                  uint32_t max, const uint8_t *event, size_t len,
                  uint32_t timeout_ms, tm_call_done_fn done, void *arg,
                  char *err, size_t errlen)
{
    batch_item_t *it = calloc(1, sizeof(*it));
    if (it)
        it->event = malloc(len ? len : 1);
    if (!it || !it->event) {
        free(it);
        snprintf(err, errlen, "out of memory for a listener's event");
        return -1;
    }
    memcpy(it->event, event, len);
    it->len = len;
    it->timeout_ms = timeout_ms;
    it->done = done;
    it->arg = arg;
    int rc = 0;
    pthread_mutex_lock(&b->mu);
    batch_queue_t *q = queue_of(b, host_port, method, max < 1 ? 1 : max);
    if (!q) {
        snprintf(err, errlen, "out of memory for a listener's queue");
        rc = -1;
    } else if (q->inflight < TM_BATCH_INFLIGHT) {
        rc = start_call(b, q, it, err, errlen);
    } else {
        if (q->tail)
            q->tail->next = it;
        else
            q->head = it;
        q->tail = it;
        q->waiting++;
        b->waiting++;
        it = NULL; /* the queue's now */
    }
    pthread_mutex_unlock(&b->mu);
    if (rc != 0)
        free_items(it);
    return rc;
}

/* A batch call ended: start the next batches of its listener while it
 * has room, then tell the events of the ended call — and those of any
 * batch that could not be started — outside the lock. */
static void on_batch_done(void *arg, int status, const char *message,
                          const uint8_t *reply, size_t reply_len)
{
    (void)reply;
    (void)reply_len;
    batch_call_t *call = arg;
    tm_batch_t *b = call->owner;
    batch_queue_t *q = call->queue;
    batch_item_t *unsent = NULL;
    char err[256] = "";
    pthread_mutex_lock(&b->mu);
    q->inflight--;
    b->calls--;
    while (q->head && q->inflight < TM_BATCH_INFLIGHT) {
        batch_item_t *next = take_waiting(b, q);
        if (start_call(b, q, next, err, sizeof(err)) != 0) {
            batch_item_t *last = next;
            while (last->next)
                last = last->next;
            last->next = unsent;
            unsent = next;
        }
    }
    pthread_mutex_unlock(&b->mu);
    complete_items(call->items, status, message);
    free(call);
    if (unsent)
        complete_items(unsent, TM_CODE_UNAVAILABLE, err);
}

size_t tm_batch_waiting(tm_batch_t *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->waiting;
    pthread_mutex_unlock(&b->mu);
    return n;
}

size_t tm_batch_calls(tm_batch_t *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->calls;
    pthread_mutex_unlock(&b->mu);
    return n;
}
