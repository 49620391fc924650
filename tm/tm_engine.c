/*
 * tm_engine: live transactions, their locks, references and events (see
 * tm_engine.h for the rules it keeps).
 *
 * Lock order: a transaction's lock, then the map lock. The map lock is
 * never held while taking a transaction's lock.
 */
#include "tm_engine.h"

#include <grpc/grpc.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_plan.h"
#include "tm_request.h"

typedef enum { WAIT_SUBMIT, WAIT_ABORT } wait_kind_t;

typedef struct waiter {
    struct waiter *next;
    tm_rpc_t *rpc;
    wait_kind_t kind;
} waiter_t;

/* A request that arrived while the transaction's last change was not yet
 * durable: its bytes are kept and it is handled again, from the top, once
 * every pending write has committed (or the copy left memory). So every
 * answer reflects durable state only, and a duplicate waits behind the
 * write of the request it repeats. */
typedef struct parked {
    struct parked *next;
    tm_rpc_t *rpc;
    tm_method_fn fn;
    size_t len;
    uint8_t bytes[];
} parked_t;

/* At most this many requests park on one transaction; more are refused
 * with RESOURCE_EXHAUSTED (a client retrying in a tight loop). */
#define MAX_PARKED_PER_TX 64

typedef struct live live_t;
struct live {
    tm_trans_t tx;
    pthread_mutex_t mu;
    atomic_int refs;
    int pending_writes;
    int finalized;
    int lost; /* another node drives it now: forgotten here */
    /* Its insert is not committed yet: any other write waits in held (in
     * order) until it is, because an insert may still be refused (the gid
     * was stored before) and then no write of this copy may reach the
     * stored row. */
    int inserting;
    struct ticket *held, *held_tail;
    tm_timer_node_t timeout;
    /* Monotonic time this node created it (0: loaded from the store); the
     * timeout of a transaction created here runs on this clock, so a step
     * of the wall clock cannot fire it early or late. */
    int64_t born_mono;
    tm_timer_node_t lease_wait; /* drive again once the lease is valid */
    waiter_t *waiters;
    unsigned n_waiters;
    parked_t *parked, *parked_tail;
    unsigned n_parked;
    live_t *hnext;
    tm_engine_t *eng;
};

typedef enum {
    ACK_NONE,
    ACK_BEGIN,
    ACK_REGISTER,
    ACK_SUBMIT,
    ACK_ABORT,
    ACK_FORCE_STOP,
} ack_kind_t;

/* One queued write: who to wake and whom to answer when it commits. */
typedef struct ticket ticket_t;
struct ticket {
    ticket_t *next; /* in the live's list of writes held back */
    live_t *live;
    tm_rpc_t *rpc;
    ack_kind_t ack;
    tm_tx_status_t status; /* status to report in the ack */
    int insert;            /* the write that creates the row */
};

typedef struct {
    live_t *live;
    uint32_t branch;
    tm_slot_t slot;
    uint64_t started_us; /* for the latency metric */
} call_ctx_t;

struct tm_engine {
    tm_engine_config_t cfg;
    tm_store_t *store;
    tm_timers_t *timers;
    tm_caller_t *caller;
    pthread_mutex_t map_mu;
    live_t **buckets;
    size_t n_buckets;
    size_t count;
    atomic_uint gid_counter;
    uint32_t node_tag;
    /* Graceful stop: once set, no new transaction is admitted; idle_cv is
     * signalled (under map_mu) when the last live one leaves memory. */
    atomic_int draining;
    pthread_cond_t idle_cv;
    atomic_uint n_waiters; /* requests waiting for a result, all lives */
};

/* Requests waiting (wait_result) for one transaction's result. */
#define MAX_WAITERS_PER_TX 64

void tm_engine_config_default(tm_engine_config_t *c)
{
    tm_limits_default(&c->limits);
    c->retry_interval_ms = 1000;
    c->request_timeout_ms = 3000;
    c->max_backoff_ms = 60000;
    c->prepared_timeout_ms = 60000;
    c->retry_limit = 0;
    c->max_inflight = 1000000;
    c->max_waiters = 100000;
}

/* ---- references and the map ------------------------------------------ */

static void live_ref(live_t *l)
{
    atomic_fetch_add(&l->refs, 1);
}

static void live_unref(live_t *l)
{
    if (atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    tm_trans_clear(&l->tx);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static uint64_t hash_gid(const char *gid)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = gid; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static void map_grow_locked(tm_engine_t *e)
{
    size_t n = e->n_buckets * 2;
    live_t **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* keep the longer chains */
    for (size_t i = 0; i < e->n_buckets; i++) {
        live_t *l = e->buckets[i];
        while (l) {
            live_t *next = l->hnext;
            size_t k = hash_gid(l->tx.gid) % n;
            l->hnext = b[k];
            b[k] = l;
            l = next;
        }
    }
    free(e->buckets);
    e->buckets = b;
    e->n_buckets = n;
}

static live_t *map_find_locked(tm_engine_t *e, const char *gid)
{
    for (live_t *l = e->buckets[hash_gid(gid) % e->n_buckets]; l; l = l->hnext)
        if (strcmp(l->tx.gid, gid) == 0)
            return l;
    return NULL;
}

/* The map's own reference is the one the live was created with. */
static void map_insert_locked(tm_engine_t *e, live_t *l)
{
    if (e->count >= e->n_buckets)
        map_grow_locked(e);
    size_t k = hash_gid(l->tx.gid) % e->n_buckets;
    l->hnext = e->buckets[k];
    e->buckets[k] = l;
    e->count++;
    tm_metrics_in_flight_add(1);
}

static void map_remove(tm_engine_t *e, live_t *l)
{
    pthread_mutex_lock(&e->map_mu);
    live_t **p = &e->buckets[hash_gid(l->tx.gid) % e->n_buckets];
    while (*p && *p != l)
        p = &(*p)->hnext;
    if (*p) {
        *p = l->hnext;
        e->count--;
        tm_metrics_in_flight_add(-1);
        if (e->count == 0)
            pthread_cond_broadcast(&e->idle_cv);
    }
    pthread_mutex_unlock(&e->map_mu);
}

/* A referenced live for gid, or NULL. */
static live_t *map_get(tm_engine_t *e, const char *gid)
{
    pthread_mutex_lock(&e->map_mu);
    live_t *l = map_find_locked(e, gid);
    if (l)
        live_ref(l);
    pthread_mutex_unlock(&e->map_mu);
    return l;
}

size_t tm_engine_live_count(tm_engine_t *e)
{
    pthread_mutex_lock(&e->map_mu);
    size_t n = e->count;
    pthread_mutex_unlock(&e->map_mu);
    return n;
}

unsigned tm_engine_waiters(tm_engine_t *e)
{
    return atomic_load(&e->n_waiters);
}

static live_t *live_new(tm_engine_t *e, const char *gid, tm_tx_status_t status)
{
    live_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    snprintf(l->tx.gid, sizeof(l->tx.gid), "%s", gid);
    l->tx.status = status;
    l->tx.created_ms = l->tx.updated_ms = tm_wall_ms();
    l->born_mono = tm_mono_ms();
    pthread_mutex_init(&l->mu, NULL);
    atomic_init(&l->refs, 1);
    l->eng = e;
    return l;
}

/* ---- replies ----------------------------------------------------------- */

static void reply_error(tm_rpc_t *rpc, grpc_status_code code, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));

static void reply_error(tm_rpc_t *rpc, grpc_status_code code, const char *fmt,
                        ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tm_server_reply(rpc, code, msg, NULL);
}

static void reply_submit(tm_rpc_t *rpc, const char *gid, tm_tx_status_t status,
                         const char *reason)
{
    Trellis__V1__SubmitReply r = TRELLIS__V1__SUBMIT_REPLY__INIT;
    r.gid = (char *)gid;
    r.status = (Trellis__V1__TransStatus)status;
    r.reason = (char *)(reason ? reason : "");
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
}

static void reply_abort(tm_rpc_t *rpc, tm_tx_status_t status)
{
    Trellis__V1__AbortReply r = TRELLIS__V1__ABORT_REPLY__INIT;
    r.status = (Trellis__V1__TransStatus)status;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
}

static void reply_begin(tm_rpc_t *rpc, const char *gid, tm_tx_status_t status)
{
    Trellis__V1__BeginReply r = TRELLIS__V1__BEGIN_REPLY__INIT;
    r.gid = (char *)gid;
    r.status = (Trellis__V1__TransStatus)status;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
}

static void reply_register(tm_rpc_t *rpc)
{
    Trellis__V1__RegisterBranchReply r =
        TRELLIS__V1__REGISTER_BRANCH_REPLY__INIT;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
}

static int is_final(tm_tx_status_t s)
{
    return s == TM_TX_SUCCEEDED || s == TM_TX_FAILED;
}

/* n waiters of l are gone: out of its count, the node's and the metric.
 * Lock held. */
static void uncount_waiters(live_t *l, unsigned n)
{
    l->n_waiters -= n;
    atomic_fetch_sub(&l->eng->n_waiters, n);
    tm_metrics_waiters_add(-(int64_t)n);
}

/* Answer (DEADLINE_EXCEEDED, which nobody reads any more) and drop every
 * waiter whose client deadline has passed. Its cancel watch normally
 * dropped it already (gRPC cancels a call at its deadline); this is the
 * fallback for a watch that fired while the waiter moved between copies
 * (on_waiter_cancelled). Lock held. */
static void prune_expired_waiters(live_t *l)
{
    waiter_t **p = &l->waiters;
    while (*p) {
        waiter_t *w = *p;
        if (!tm_server_rpc_expired(w->rpc)) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        reply_error(w->rpc, GRPC_STATUS_DEADLINE_EXCEEDED,
                    "deadline passed while waiting for %s", l->tx.gid);
        free(w);
        uncount_waiters(l, 1);
    }
}

static void on_waiter_cancelled(tm_rpc_t *rpc, void *engine, const char *gid);

/* Keep rpc to answer when the transaction ends. Bounded per transaction
 * and per node: past either bound it is refused RESOURCE_EXHAUSTED (the
 * client polls with Query instead). A waiter whose client cancels (or
 * goes away) is dropped at once by on_waiter_cancelled; one whose client
 * is already gone is not kept. Lock held. */
static void add_waiter(live_t *l, tm_rpc_t *rpc, wait_kind_t kind)
{
    tm_engine_t *e = l->eng;
    prune_expired_waiters(l);
    if (l->n_waiters >= MAX_WAITERS_PER_TX) {
        reply_error(rpc, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "%u requests already wait for the result of %s; poll "
                    "with Query instead of waiting",
                    l->n_waiters, l->tx.gid);
        return;
    }
    if (atomic_fetch_add(&e->n_waiters, 1) >= e->cfg.max_waiters) {
        atomic_fetch_sub(&e->n_waiters, 1);
        reply_error(rpc, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "trellisd already holds %u requests waiting for a "
                    "result, its limit; poll with Query instead of waiting",
                    e->cfg.max_waiters);
        return;
    }
    waiter_t *w = malloc(sizeof(*w));
    if (!w) {
        atomic_fetch_sub(&e->n_waiters, 1);
        reply_error(rpc, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "out of memory to wait for %s", l->tx.gid);
        return;
    }
    char err[128];
    int watch = tm_server_watch_cancel(rpc, on_waiter_cancelled, e, l->tx.gid,
                                       err, sizeof(err));
    if (watch != 0) {
        atomic_fetch_sub(&e->n_waiters, 1);
        free(w);
        if (watch == TM_SERVER_CALL_CLOSED)
            tm_server_drop(rpc); /* cancelled already: nobody listens */
        else
            reply_error(rpc, GRPC_STATUS_INTERNAL, "cannot wait: %s", err);
        return;
    }
    w->rpc = rpc;
    w->kind = kind;
    w->next = l->waiters;
    l->waiters = w;
    l->n_waiters++;
    tm_metrics_waiters_add(1);
}

/* Take rpc's waiter off l, if it is there (its client cancelled).
 * Returns 1 when it was. Lock held. */
static int unlink_waiter(live_t *l, const tm_rpc_t *rpc)
{
    for (waiter_t **p = &l->waiters; *p; p = &(*p)->next) {
        waiter_t *w = *p;
        if (w->rpc != rpc)
            continue;
        *p = w->next;
        free(w);
        uncount_waiters(l, 1);
        return 1;
    }
    return 0;
}

/* tm_server's cancel watch (a queue thread, no lock held): the client of a
 * waiting call cancelled it, lost its connection or passed its deadline.
 * Drop its waiter now, without a reply, so dead calls do not hold the
 * bounds. If the waiter is not found, it was answered meanwhile (whoever
 * answered it owned rpc), or it was moving to a fresh copy of gid (a
 * takeover or reload retires the old copy): then it stays until it is
 * answered or, past its deadline, pruned by the next waiter. */
static void on_waiter_cancelled(tm_rpc_t *rpc, void *engine, const char *gid)
{
    live_t *l = map_get(engine, gid);
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    int dropped = unlink_waiter(l, rpc);
    if (dropped)
        tm_server_drop(rpc);
    pthread_mutex_unlock(&l->mu);
    live_unref(l);
    if (dropped)
        tm_log(TM_LOG_DEBUG, "event=waiter_cancelled gid=%s", gid);
}

/* Take every waiter off the live (to answer them). Lock held. */
static waiter_t *take_waiters(live_t *l)
{
    waiter_t *w = l->waiters;
    uncount_waiters(l, l->n_waiters);
    l->waiters = NULL;
    return w;
}

static void answer_waiters(live_t *l)
{
    waiter_t *w = take_waiters(l);
    while (w) {
        waiter_t *next = w->next;
        if (w->kind == WAIT_SUBMIT)
            reply_submit(w->rpc, l->tx.gid, l->tx.status, l->tx.reason);
        else
            reply_abort(w->rpc, l->tx.status);
        free(w);
        w = next;
    }
}

static void reply_force_stop(tm_rpc_t *rpc, tm_tx_status_t status,
                             const char *reason);

static void send_ack(const ticket_t *t)
{
    live_t *l = t->live;
    switch (t->ack) {
    case ACK_NONE:
        break;
    case ACK_BEGIN:
        reply_begin(t->rpc, l->tx.gid, t->status);
        break;
    case ACK_REGISTER:
        reply_register(t->rpc);
        break;
    case ACK_SUBMIT:
        reply_submit(t->rpc, l->tx.gid, t->status, NULL);
        break;
    case ACK_ABORT:
        reply_abort(t->rpc, t->status);
        break;
    case ACK_FORCE_STOP:
        reply_force_stop(t->rpc, t->status, l->tx.reason);
        break;
    }
}

/* ---- requests parked until the transaction's writes are durable ------- */

/* What a handler needs to be run again later: its own arguments. */
typedef struct {
    tm_rpc_t *rpc;
    const uint8_t *req;
    size_t len;
    tm_method_fn fn;
} request_t;

/* Keep req to handle again once l has no write pending. Lock held. */
static void park_request(live_t *l, const request_t *req)
{
    if (l->n_parked >= MAX_PARKED_PER_TX) {
        reply_error(req->rpc, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "%u requests for %s already wait for its pending write; "
                    "retry later",
                    l->n_parked, l->tx.gid);
        return;
    }
    parked_t *p = malloc(sizeof(*p) + req->len);
    if (!p) {
        reply_error(req->rpc, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "out of memory to hold a request for %s", l->tx.gid);
        return;
    }
    p->next = NULL;
    p->rpc = req->rpc;
    p->fn = req->fn;
    p->len = req->len;
    if (req->len)
        memcpy(p->bytes, req->req, req->len);
    if (l->parked_tail)
        l->parked_tail->next = p;
    else
        l->parked = p;
    l->parked_tail = p;
    l->n_parked++;
}

/* The parked requests, once they may run: no write pending, or the copy
 * left memory (they then find the next copy, or the store). Lock held. */
static parked_t *take_parked_if_settled(live_t *l)
{
    if (!l->parked || (l->pending_writes > 0 && !l->finalized))
        return NULL;
    parked_t *p = l->parked;
    l->parked = l->parked_tail = NULL;
    l->n_parked = 0;
    return p;
}

/* Handle each parked request again, in arrival order. No lock held. */
static void run_parked(parked_t *p, tm_engine_t *e)
{
    while (p) {
        parked_t *next = p->next;
        p->fn(p->rpc, p->bytes, p->len, e);
        free(p);
        p = next;
    }
}

typedef enum { LIVE_SETTLED, LIVE_PARKED, LIVE_GONE } settle_t;

/* May rq act on l's state now? Not while a write of l is pending (its
 * change may still be refused, or lost with a crash): rq is parked and
 * handled again after the commit. Not once l left memory (finished, or
 * driven elsewhere, or replaced by a copy loaded from the store): the
 * caller handles rq again from the top, which finds the next copy or the
 * store. Lock held. */
static settle_t settle(live_t *l, const request_t *rq)
{
    if (l->finalized || l->lost)
        return LIVE_GONE;
    if (l->pending_writes > 0) {
        park_request(l, rq);
        return LIVE_PARKED;
    }
    return LIVE_SETTLED;
}

/* New work is refused at once while the store fails to commit: it could
 * not be made durable, and the client learns that now, not at its
 * deadline. Returns 1 when it answered. */
static int refuse_if_store_failing(tm_engine_t *e, tm_rpc_t *rpc)
{
    char why[256];
    if (tm_store_healthy(e->store, why, sizeof(why)))
        return 0;
    tm_metrics_refused_unhealthy();
    reply_error(rpc, GRPC_STATUS_UNAVAILABLE,
                "the %s store fails to commit (%s); trellisd takes no new "
                "work until it recovers — retry later",
                tm_store_kind_name(e->store), why);
    return 1;
}

/* ---- policy ------------------------------------------------------------ */

static tm_retry_policy_t policy_of(const live_t *l)
{
    const tm_engine_config_t *c = &l->eng->cfg;
    tm_retry_policy_t p;
    p.retry_interval_ms = l->tx.opts.retry_interval_ms
                              ? l->tx.opts.retry_interval_ms
                              : c->retry_interval_ms;
    p.max_backoff_ms = c->max_backoff_ms > p.retry_interval_ms
                           ? c->max_backoff_ms
                           : p.retry_interval_ms;
    p.retry_limit =
        l->tx.opts.retry_limit ? l->tx.opts.retry_limit : c->retry_limit;
    return p;
}

static uint32_t request_timeout_of(const live_t *l)
{
    return l->tx.opts.request_timeout_ms ? l->tx.opts.request_timeout_ms
                                         : l->eng->cfg.request_timeout_ms;
}

/* ---- persistence, planning, finishing ----------------------------------- */

static void drive(live_t *l);
static void on_write_done(void *arg, tm_write_result_t result);

static void fatal_oom(const char *what)
{
    tm_log(TM_LOG_ERROR,
           "event=oom what=\"%s\" msg=\"exiting; a restart "
           "recovers from storage\"",
           what);
    _exit(71);
}

/* Capture the live's unsaved changes now and queue them with ticket t. */
static void queue_write(live_t *l, ticket_t *t)
{
    tm_write_t *w = tm_write_capture(&l->tx, t->insert);
    if (!w)
        fatal_oom("storage write");
    live_ref(l);
    tm_store_queue(l->eng->store, w, on_write_done, t);
}

/* Queue the live's unsaved changes; when they commit, ack rpc (if any) and
 * plan again. While the live's insert is uncommitted, the write is held
 * and queued once the insert commits. Lock held. */
static void persist(live_t *l, int insert, tm_rpc_t *rpc, ack_kind_t ack)
{
    ticket_t *t = calloc(1, sizeof(*t));
    if (!t)
        fatal_oom("storage write");
    t->live = l;
    t->rpc = rpc;
    t->ack = ack;
    t->status = l->tx.status;
    t->insert = insert;
    l->pending_writes++;
    if (!insert && l->inserting) {
        if (l->held_tail)
            l->held_tail->next = t;
        else
            l->held = t;
        l->held_tail = t;
        return;
    }
    l->inserting |= insert;
    queue_write(l, t);
}

/* Persist a change; when it also ends the transaction, the final status
 * goes into the same write (one commit fewer per transaction). */
static void persist_change(live_t *l)
{
    tm_tx_status_t outcome =
        is_final(l->tx.status) ? 0 : tm_plan_outcome(&l->tx);
    if (outcome)
        tm_plan_finish(&l->tx, outcome, tm_wall_ms());
    persist(l, 0, NULL, ACK_NONE);
}

static void disarm_timer(live_t *l, tm_timer_node_t *node)
{
    if (tm_timer_disarm(l->eng->timers, node))
        live_unref(l); /* never the last: the caller holds one */
}

static void arm_timer(live_t *l, tm_timer_node_t *node, int64_t in_ms)
{
    if (tm_timer_arm(l->eng->timers, node, tm_mono_ms() + in_ms))
        live_ref(l);
}

/* Call op again after in_ms; the plan leaves it alone until then. */
static void arm_retry(live_t *l, tm_op_t *op, int64_t in_ms)
{
    op->waiting_retry = 1;
    arm_timer(l, &op->retry_timer, in_ms);
}

static void finalize(live_t *l)
{
    l->finalized = 1;
    disarm_timer(l, &l->timeout);
    tm_metrics_trans_finished(&l->tx); /* counted before anyone is told */
    answer_waiters(l);
    tm_log(TM_LOG_DEBUG, "event=finished gid=%s status=%s ms=%" PRId64,
           l->tx.gid, tm_tx_status_name(l->tx.status),
           l->tx.finished_ms - l->tx.created_ms);
    map_remove(l->eng, l);
    live_unref(l); /* the map's reference; the caller still holds one */
}

static void submit_stored(tm_engine_t *e, tm_rpc_t *rpc, const char *gid,
                          uint64_t h);

/* A read of the store failed (the database is away, say): worth a retry. */
static void reply_storage_error(tm_rpc_t *rpc, const char *err)
{
    reply_error(rpc, GRPC_STATUS_UNAVAILABLE, "storage unavailable: %s", err);
}

static void reply_moved(tm_rpc_t *rpc, const char *gid)
{
    reply_error(rpc, GRPC_STATUS_UNAVAILABLE,
                "transaction %s is driven by another trellisd node (this "
                "node's lease on it ran out, or that node stored it first); "
                "send requests for it to that node",
                gid);
}

/* The store refused a write for good (TM_WRITE_FAILED): nothing of it was
 * stored. */
static void reply_write_failed(tm_rpc_t *rpc, const char *gid)
{
    reply_error(rpc, GRPC_STATUS_INTERNAL,
                "the store refused to record transaction %s (the database "
                "rejects the write; trellisd's log says why); nothing of this "
                "request was stored",
                gid);
}

/* Answer the rpc of a write the store refused, from what the store holds.
 * Lock held. */
static void answer_refused(live_t *l, const ticket_t *t,
                           tm_write_result_t result)
{
    int stored_first = result == TM_WRITE_EXISTS || result == TM_WRITE_FINAL;
    if (t->ack == ACK_SUBMIT && stored_first)
        submit_stored(l->eng, t->rpc, l->tx.gid, l->tx.submit_hash);
    else if (t->ack == ACK_BEGIN && result == TM_WRITE_EXISTS)
        reply_error(t->rpc, GRPC_STATUS_ALREADY_EXISTS, "gid %s already exists",
                    l->tx.gid);
    else if (result == TM_WRITE_FINAL)
        reply_error(t->rpc, GRPC_STATUS_FAILED_PRECONDITION,
                    "transaction %s is finished", l->tx.gid);
    else if (result == TM_WRITE_FAILED)
        reply_write_failed(t->rpc, l->tx.gid);
    else
        reply_moved(t->rpc, l->tx.gid);
}

/* Disarm every timer of the live. Lock held. */
static void disarm_all_timers(live_t *l)
{
    disarm_timer(l, &l->timeout);
    disarm_timer(l, &l->lease_wait);
    for (size_t i = 0; i < l->tx.n_branches; i++)
        for (int k = 0; k < TM_SLOTS; k++)
            disarm_timer(l, &l->tx.branches[i].ops[k].retry_timer);
}

/* The store refused a write: another node owns the transaction (LOST),
 * its gid was stored before this request created it (EXISTS: a finished
 * transaction, or one another node drives), the stored row is final
 * (FINAL), or the database cannot store it (FAILED). Forget it here
 * without acting again — no calls, no timers, no writes — and answer
 * whoever waits on it. Calls still on the wire are ignored when they end.
 * Lock held. Returns 1 when it took the transaction out of the map: the
 * caller then drops the map's reference after unlocking. */
static int forget_lost(live_t *l, tm_write_result_t result)
{
    if (l->lost)
        return 0;
    l->lost = 1;
    if (result == TM_WRITE_LOST)
        tm_log(TM_LOG_WARN,
               "event=lost_ownership gid=%s msg=\"another trellisd node "
               "drives it now\"",
               l->tx.gid);
    else if (result == TM_WRITE_FAILED)
        tm_log(TM_LOG_ERROR,
               "event=write_refused gid=%s msg=\"the store cannot record "
               "this change; reloading the transaction from the store\"",
               l->tx.gid);
    else
        tm_log(TM_LOG_DEBUG, "event=already_stored gid=%s", l->tx.gid);
    waiter_t *w = take_waiters(l);
    int stored_first = result == TM_WRITE_EXISTS || result == TM_WRITE_FINAL;
    while (w) {
        waiter_t *next = w->next;
        if (stored_first && w->kind == WAIT_SUBMIT)
            submit_stored(l->eng, w->rpc, l->tx.gid, l->tx.submit_hash);
        else if (result == TM_WRITE_FAILED)
            reply_write_failed(w->rpc, l->tx.gid);
        else
            reply_moved(w->rpc, l->tx.gid);
        free(w);
        w = next;
    }
    disarm_all_timers(l);
    if (l->finalized)
        return 0;
    l->finalized = 1;
    map_remove(l->eng, l);
    return 1;
}

/* The live's insert committed (queue the writes held behind it, in order:
 * the first carries every change made meanwhile) or was refused (answer
 * their requests and drop them: the live is forgotten). Lock held. */
static void release_held(live_t *l, tm_write_result_t result)
{
    l->inserting = 0;
    ticket_t *t = l->held;
    l->held = l->held_tail = NULL;
    while (t) {
        ticket_t *next = t->next;
        t->next = NULL;
        if (result == TM_WRITE_DONE) {
            queue_write(l, t);
        } else {
            if (t->rpc)
                answer_refused(l, t, result);
            l->pending_writes--;
            free(t);
        }
        t = next;
    }
}

static void reload_from_store(tm_engine_t *e, const char *gid);

static void on_write_done(void *arg, tm_write_result_t result)
{
    ticket_t *t = arg;
    live_t *l = t->live;
    tm_engine_t *e = l->eng;
    pthread_mutex_lock(&l->mu);
    l->pending_writes--;
    if (t->insert)
        release_held(l, result);
    int unmapped = 0;
    if (result != TM_WRITE_DONE) {
        if (t->rpc)
            answer_refused(l, t, result);
        unmapped = forget_lost(l, result);
    } else if (t->rpc) {
        send_ack(t);
    }
    if (l->pending_writes == 0 && !l->finalized) {
        if (is_final(l->tx.status))
            finalize(l);
        else
            drive(l);
    }
    parked_t *parked = take_parked_if_settled(l);
    pthread_mutex_unlock(&l->mu);
    /* A change the database refuses for good leaves the stored row as it
     * was: drive the transaction on from that row, not from this copy. */
    if (unmapped && result == TM_WRITE_FAILED && !t->insert)
        reload_from_store(e, l->tx.gid);
    run_parked(parked, e);
    if (unmapped)
        live_unref(l); /* the map's */
    live_unref(l);
    free(t);
}

static void on_call_done(void *arg, int status, const char *message);
static void on_op_timer(tm_timer_node_t *node);

static void persist_change(live_t *l);
static void log_rollback_decision(const live_t *l);

/* A call that could not even be started (bad target, no channel): apply
 * it as an UNKNOWN result. Lock held. */
static void apply_unsent(live_t *l, uint32_t b, tm_slot_t slot, const char *err)
{
    tm_op_t *op = &l->tx.branches[b].ops[slot];
    tm_retry_policy_t p = policy_of(l);
    tm_tx_status_t before = l->tx.status;
    tm_effect_t eff = tm_plan_apply_result(&l->tx, b, slot, TM_RESULT_UNKNOWN,
                                           err, &p, tm_wall_ms());
    if (before != l->tx.status)
        log_rollback_decision(l);
    if (op->status == TM_OP_PENDING)
        op->dirty = 1; /* the attempt is stored, as for any unanswered one */
    persist_change(l);
    if (op->status == TM_OP_PENDING)
        arm_retry(l, op,
                  eff.retry_in_ms >= 0 ? eff.retry_in_ms : p.retry_interval_ms);
}

static void start_call(live_t *l, uint32_t b, tm_slot_t slot)
{
    tm_branch_t *br = &l->tx.branches[b];
    tm_op_t *op = &br->ops[slot];
    char err[256];
    tm_target_t target;
    op->retry_timer.fn = on_op_timer;
    op->retry_timer.owner = l;
    op->retry_timer.tag = b * TM_SLOTS + (uint32_t)slot;
    if (op->attempts > 0)
        tm_metrics_retry(op->kind);
    tm_op_note_attempt(op, tm_wall_ms());
    if (tm_parse_target(op->target, "target", &target, err, sizeof(err)) != 0) {
        /* Checked at submit; only a corrupted store gets here. */
        tm_set_string(&op->last_error, err);
        arm_retry(l, op, policy_of(l).max_backoff_ms);
        return;
    }
    tm_md_t md[4 + 16];
    size_t n = 0;
    md[n++] = (tm_md_t){"dtm-gid", l->tx.gid};
    md[n++] = (tm_md_t){"dtm-trans_type", tm_mode_name(br->mode)};
    md[n++] = (tm_md_t){"dtm-branch_id", br->branch_id};
    md[n++] = (tm_md_t){"dtm-op", tm_op_kind_name(op->kind)};
    for (size_t i = 0; i < l->tx.opts.n_headers && n < 20; i++)
        md[n++] =
            (tm_md_t){l->tx.opts.header_keys[i], l->tx.opts.header_values[i]};
    call_ctx_t *ctx = malloc(sizeof(*ctx));
    if (!ctx)
        fatal_oom("call context");
    ctx->live = l;
    ctx->branch = b;
    ctx->slot = slot;
    ctx->started_us = tm_metrics_now_us();
    op->inflight = 1;
    live_ref(l);
    if (tm_caller_start(l->eng->caller, target.host_port, target.method,
                        br->payload, br->payload_len, md, n,
                        request_timeout_of(l), on_call_done, ctx, err,
                        sizeof(err)) != 0) {
        /* Not sent: an attempt without an answer, like a call that timed
         * out, so it counts toward retry_limit. */
        op->inflight = 0;
        live_unref(l);
        free(ctx);
        apply_unsent(l, b, slot, err);
    }
}

static void stop_forward_retries(live_t *l)
{
    for (size_t i = 0; i < l->tx.n_branches; i++) {
        tm_op_t *op = &l->tx.branches[i].ops[TM_SLOT_FORWARD];
        disarm_timer(l, &op->retry_timer);
        op->waiting_retry = 0;
    }
}

static void on_lease_wait(tm_timer_node_t *node);

/* How long a transaction waits before trying again while this node's
 * leases are not surely valid (the store renews them in the background). */
#define LEASE_WAIT_MS 100

/* Plan on durable state and act: start ready calls, or finish. Lock held. */
static void drive(live_t *l)
{
    if (l->pending_writes > 0 || l->finalized || is_final(l->tx.status))
        return;
    if (!tm_store_lease_ok(l->eng->store)) {
        /* Another node may own it by now: act only once the lease is
         * confirmed (the store's lapsed hook re-checks with a write). */
        l->lease_wait.fn = on_lease_wait;
        l->lease_wait.owner = l;
        arm_timer(l, &l->lease_wait, LEASE_WAIT_MS);
        return;
    }
    if (l->tx.status == TM_TX_ABORTING)
        stop_forward_retries(l);
    size_t cap = l->tx.n_branches * TM_SLOTS;
    tm_op_ref_t small[48];
    tm_op_ref_t *refs = cap <= 48 ? small : malloc(cap * sizeof(*refs));
    if (!refs)
        fatal_oom("plan");
    size_t n = tm_plan_ready(&l->tx, refs, cap);
    for (size_t i = 0; i < n; i++)
        start_call(l, refs[i].branch, refs[i].slot);
    if (refs != small)
        free(refs);
    tm_tx_status_t outcome = tm_plan_outcome(&l->tx);
    if (outcome) {
        tm_plan_finish(&l->tx, outcome, tm_wall_ms());
        persist(l, 0, NULL, ACK_NONE);
    }
}

static void log_rollback_decision(const live_t *l)
{
    char q[TM_REASON_MAX + 64];
    tm_log(TM_LOG_INFO, "event=rollback gid=%s reason=\"%s\"", l->tx.gid,
           tm_log_quote(l->tx.reason, q, sizeof(q)));
}

/* One line per branch call at debug level. Lock held. */
static void log_call_result(const live_t *l, const tm_branch_t *br,
                            const tm_op_t *op, int status, const char *msg,
                            uint64_t micros)
{
    if (!tm_log_enabled(TM_LOG_DEBUG))
        return;
    char q[700];
    tm_log(TM_LOG_DEBUG,
           "event=call_result gid=%s branch=%s op=%s attempt=%u "
           "grpc_status=%d us=%" PRIu64 " op_status=%s error=\"%s\"",
           l->tx.gid, br->branch_id, tm_op_kind_name(op->kind), op->attempts,
           status, micros,
           op->status == TM_OP_SUCCEEDED ? "succeeded"
           : op->status == TM_OP_FAILED  ? "failed"
                                         : "pending",
           tm_log_quote(msg, q, sizeof(q)));
}

/* A call ended after the transaction was force-stopped: its result
 * changes nothing. Lock held. */
static void log_late_result(const live_t *l, const tm_branch_t *br,
                            const tm_op_t *op, int status)
{
    tm_log(TM_LOG_INFO,
           "event=late_result_ignored gid=%s branch=%s op=%s grpc_status=%d "
           "status=%s",
           l->tx.gid, br->branch_id, tm_op_kind_name(op->kind), status,
           tm_tx_status_name(l->tx.status));
}

static void on_call_done(void *arg, int status, const char *message)
{
    call_ctx_t *ctx = arg;
    live_t *l = ctx->live;
    pthread_mutex_lock(&l->mu);
    if (l->lost) { /* the node that owns it now calls again if needed */
        pthread_mutex_unlock(&l->mu);
        live_unref(l);
        free(ctx);
        return;
    }
    tm_branch_t *br = &l->tx.branches[ctx->branch];
    tm_op_t *op = &br->ops[ctx->slot];
    op->inflight = 0;
    char msg[600];
    tm_result_t result = tm_plan_classify(status);
    uint64_t micros = tm_metrics_now_us() - ctx->started_us;
    tm_metrics_branch_call(op->kind, (tm_metrics_call_result_t)result, micros);
    if (is_final(l->tx.status)) { /* force-stopped while on the wire */
        log_late_result(l, br, op, status);
        pthread_mutex_unlock(&l->mu);
        live_unref(l);
        free(ctx);
        return;
    }
    if (result == TM_RESULT_FAILURE) /* the participant's own words */
        snprintf(msg, sizeof(msg), "%s",
                 message && *message ? message : "ABORTED");
    else if (status != GRPC_STATUS_OK)
        snprintf(msg, sizeof(msg), "grpc status %d: %s", status,
                 message && *message ? message : "(no message)");
    else
        msg[0] = '\0';
    if (status == GRPC_STATUS_UNIMPLEMENTED && op->attempts == 1)
        tm_log(TM_LOG_WARN,
               "event=target_unimplemented gid=%s branch=%s op=%s target=%s "
               "msg=\"the participant has no such method; retrying\"",
               l->tx.gid, br->branch_id, tm_op_kind_name(op->kind),
               op->target ? op->target : "");
    tm_tx_status_t before = l->tx.status;
    tm_retry_policy_t p = policy_of(l);
    tm_effect_t eff = tm_plan_apply_result(
        &l->tx, ctx->branch, ctx->slot, result,
        status == GRPC_STATUS_OK ? NULL : msg, &p, tm_wall_ms());
    log_call_result(l, br, op, status, msg, micros);
    char q[700];
    if (eff.alert)
        tm_log(TM_LOG_WARN,
               "event=phase2_not_succeeding gid=%s branch=%s op=%s "
               "attempts=%u error=\"%s\"",
               l->tx.gid, br->branch_id, tm_op_kind_name(op->kind),
               op->attempts, tm_log_quote(op->last_error, q, sizeof(q)));
    if (before != l->tx.status)
        log_rollback_decision(l);
    if (!eff.changed && op->status == TM_OP_PENDING) {
        /* No answer yet: store the attempt anyway, so retry_limit counts
         * on from here after a restart or a takeover. */
        op->dirty = 1;
        eff.changed = 1;
    }
    if (eff.changed)
        persist_change(l);
    if (eff.retry_in_ms >= 0)
        arm_retry(l, op, eff.retry_in_ms);
    drive(l);
    pthread_mutex_unlock(&l->mu);
    live_unref(l);
    free(ctx);
}

static void on_lease_wait(tm_timer_node_t *node)
{
    live_t *l = node->owner;
    pthread_mutex_lock(&l->mu);
    drive(l);
    pthread_mutex_unlock(&l->mu);
    live_unref(l);
}

static void on_op_timer(tm_timer_node_t *node)
{
    live_t *l = node->owner;
    pthread_mutex_lock(&l->mu);
    uint32_t b = node->tag / TM_SLOTS, slot = node->tag % TM_SLOTS;
    if (b < l->tx.n_branches)
        l->tx.branches[b].ops[slot].waiting_retry = 0;
    drive(l); /* the op is idle again, so planning includes it */
    pthread_mutex_unlock(&l->mu);
    live_unref(l);
}

static void on_timeout(tm_timer_node_t *node)
{
    live_t *l = node->owner;
    pthread_mutex_lock(&l->mu);
    if (!l->finalized && tm_plan_on_timeout(&l->tx, tm_wall_ms())) {
        log_rollback_decision(l);
        persist_change(l);
    }
    pthread_mutex_unlock(&l->mu);
    live_unref(l);
}

/* The timeout counts from the transaction's creation. Created here: on
 * the monotonic clock. Loaded from the store (restart, takeover): from the
 * stored wall-clock created_ms, the only time the row carries, so clock
 * skew between nodes moves it — the rule is that it never fires later
 * than a full timeout after the load, and never before the stored
 * deadline by this node's clock. */
static void arm_timeout(live_t *l)
{
    uint32_t t = l->tx.opts.timeout_to_fail_ms;
    if (!t || is_final(l->tx.status) || l->tx.status == TM_TX_ABORTING)
        return;
    int64_t in_ms;
    if (l->born_mono) {
        in_ms = l->born_mono + t - tm_mono_ms();
    } else {
        in_ms = l->tx.created_ms + t - tm_wall_ms();
        if (in_ms > (int64_t)t)
            in_ms = t;
    }
    l->timeout.fn = on_timeout;
    l->timeout.owner = l;
    arm_timer(l, &l->timeout, in_ms > 0 ? in_ms : 0);
}

/* ---- decoding ----------------------------------------------------------- */

static int decode_failed(tm_rpc_t *rpc, const void *msg, const char *type,
                         size_t len)
{
    if (msg)
        return 0;
    reply_error(rpc, GRPC_STATUS_INVALID_ARGUMENT,
                "malformed request: %zu bytes that do not decode as %s", len,
                type);
    return 1;
}

/* rc from tm_validate: TM_DENIED (a target outside allow-targets) is
 * PERMISSION_DENIED, anything else non-zero INVALID_ARGUMENT. */
static int reply_if_invalid(tm_rpc_t *rpc, int rc, const char *err)
{
    if (rc == 0)
        return 0;
    tm_server_reply(rpc,
                    rc == TM_DENIED ? GRPC_STATUS_PERMISSION_DENIED
                                    : GRPC_STATUS_INVALID_ARGUMENT,
                    err, NULL);
    return 1;
}

/* ---- handlers ----------------------------------------------------------- */

static int wants_wait(const Trellis__V1__SubmitRequest *r)
{
    return r->options && r->options->wait_result;
}

/* Submit on a transaction that is already in memory. Lock held. */
static void submit_existing(live_t *l, tm_rpc_t *rpc,
                            const Trellis__V1__SubmitRequest *r, uint64_t h)
{
    tm_trans_t *tx = &l->tx;
    if (tx->status == TM_TX_PREPARED && tx->submit_hash == 0) {
        char err[512];
        if (tm_request_add_steps(tx, r, &l->eng->cfg.limits, err,
                                 sizeof(err)) != 0) {
            tm_server_reply(rpc, GRPC_STATUS_INVALID_ARGUMENT, err, NULL);
            return;
        }
        int64_t now = tm_wall_ms();
        tx->submit_hash = h;
        tx->status = TM_TX_SUBMITTED;
        tx->updated_ms = now;
        tm_plan_mark_initiator_ops_done(tx, now);
        if (wants_wait(r))
            add_waiter(l, rpc, WAIT_SUBMIT);
        persist(l, 0, wants_wait(r) ? NULL : rpc, ACK_SUBMIT);
        return;
    }
    if (tx->submit_hash == h) {
        if (wants_wait(r) && !is_final(tx->status))
            add_waiter(l, rpc, WAIT_SUBMIT);
        else
            reply_submit(rpc, tx->gid, tx->status, tx->reason);
        return;
    }
    if (tx->submit_hash == 0) {
        reply_error(rpc, GRPC_STATUS_FAILED_PRECONDITION,
                    "transaction %s is %s (%s); it can no longer be "
                    "submitted",
                    tx->gid, tm_tx_status_name(tx->status),
                    tx->reason ? tx->reason : "no reason recorded");
        return;
    }
    reply_error(rpc, GRPC_STATUS_ALREADY_EXISTS,
                "gid %s was already submitted with different content "
                "(status %s)",
                tx->gid, tm_tx_status_name(tx->status));
}

/* Submit for a gid that is only in the store (finished). */
static void submit_stored(tm_engine_t *e, tm_rpc_t *rpc, const char *gid,
                          uint64_t h)
{
    char err[256];
    tm_trans_t *tx = NULL;
    int found = tm_store_get(e->store, gid, &tx, err, sizeof(err));
    if (found <= 0) {
        reply_error(rpc, GRPC_STATUS_INTERNAL, "%s",
                    found < 0 ? err : "transaction vanished");
        return;
    }
    if (tx->submit_hash == h)
        reply_submit(rpc, gid, tx->status, tx->reason);
    else if (!is_final(tx->status))
        reply_moved(rpc, gid);
    else if (tx->submit_hash == 0)
        reply_error(rpc, GRPC_STATUS_FAILED_PRECONDITION,
                    "transaction %s is %s (%s); it can no longer be "
                    "submitted",
                    gid, tm_tx_status_name(tx->status),
                    tx->reason ? tx->reason : "no reason recorded");
    else
        reply_error(rpc, GRPC_STATUS_ALREADY_EXISTS,
                    "gid %s was already submitted with different content "
                    "(status %s)",
                    gid, tm_tx_status_name(tx->status));
    tm_trans_free(tx);
}

/* FOUND_ELSEWHERE: stored and unfinished, but not in this node's memory:
 * another node drives it (MySQL store only). */
/* FOUND_FULL / FOUND_CLOSED: a new gid that was not admitted (max-inflight
 * reached / shutting down); see admit_locked. */
typedef enum {
    FOUND_LIVE,
    FOUND_STORED,
    FOUND_ELSEWHERE,
    FOUND_NONE,
    FOUND_ERROR,
    FOUND_FULL,
    FOUND_CLOSED
} found_t;

/* May a new transaction enter memory now? Map lock held, so the count
 * cannot move between this check and the insert. */
static found_t admit_locked(tm_engine_t *e)
{
    if (atomic_load(&e->draining))
        return FOUND_CLOSED;
    if (e->count >= e->cfg.max_inflight)
        return FOUND_FULL;
    return FOUND_NONE;
}

/* Answer a request for a new gid that admit_locked refused. */
static void reply_not_admitted(tm_engine_t *e, tm_rpc_t *rpc, found_t f)
{
    if (f == FOUND_CLOSED)
        reply_error(rpc, GRPC_STATUS_UNAVAILABLE,
                    "trellisd is shutting down: it takes no new transactions; "
                    "send this one to another node or retry after the restart");
    else
        reply_error(rpc, GRPC_STATUS_RESOURCE_EXHAUSTED,
                    "trellisd already drives %u unfinished transactions, its "
                    "max-inflight setting; retry later",
                    e->cfg.max_inflight);
}

/* Look gid up in memory. With create != NULL and the gid not in memory,
 * insert *create into the map under the same lock (two requests for a new
 * gid cannot both create it) without reading the store: the insert's write
 * finds out whether the gid is stored already (TM_WRITE_EXISTS) and the
 * request is answered from the store then. So a new transaction costs no
 * read. Without create, look in the store too (outside the map lock). */
static found_t find_or_insert(tm_engine_t *e, const char *gid, live_t **live,
                              live_t *create, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->map_mu);
    live_t *l = map_find_locked(e, gid);
    if (l) {
        live_ref(l);
        pthread_mutex_unlock(&e->map_mu);
        *live = l;
        return FOUND_LIVE;
    }
    if (create) {
        found_t refused = admit_locked(e);
        if (refused == FOUND_NONE) {
            live_ref(create); /* the caller's; the map keeps the first */
            map_insert_locked(e, create);
        }
        pthread_mutex_unlock(&e->map_mu);
        return refused;
    }
    pthread_mutex_unlock(&e->map_mu);
    tm_tx_status_t st;
    uint64_t h;
    int rc = tm_store_peek(e->store, gid, &st, &h, err, errlen);
    if (rc == 1)
        return is_final(st) ? FOUND_STORED : FOUND_ELSEWHERE;
    return rc < 0 ? FOUND_ERROR : FOUND_NONE;
}

static live_t *new_submitted(tm_engine_t *e,
                             const Trellis__V1__SubmitRequest *r, uint64_t h,
                             char *err, size_t errlen)
{
    live_t *l = live_new(e, r->gid, TM_TX_SUBMITTED);
    if (!l || tm_options_from_proto(&l->tx.opts, r->options) != 0)
        fatal_oom("transaction");
    l->tx.submit_hash = h;
    if (tm_request_add_steps(&l->tx, r, &e->cfg.limits, err, errlen) != 0) {
        live_unref(l);
        return NULL;
    }
    return l;
}

/* A new gid: store and answer (now, or when final if the caller waits). */
static void submit_new(live_t *l, tm_rpc_t *rpc,
                       const Trellis__V1__SubmitRequest *r)
{
    pthread_mutex_lock(&l->mu);
    if (wants_wait(r))
        add_waiter(l, rpc, WAIT_SUBMIT);
    persist(l, 1, wants_wait(r) ? NULL : rpc, ACK_SUBMIT);
    arm_timeout(l);
    pthread_mutex_unlock(&l->mu);
}

void tm_engine_handle_submit(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                             void *engine)
{
    tm_engine_t *e = engine;
    request_t rq = {rpc, req, len, tm_engine_handle_submit};
    settle_t st = LIVE_SETTLED;
    char err[512];
    Trellis__V1__SubmitRequest *r =
        trellis__v1__submit_request__unpack(NULL, len, req);
    if (decode_failed(rpc, r, "trellis.v1.SubmitRequest", len))
        return;
    if (reply_if_invalid(
            rpc, tm_validate_submit(r, &e->cfg.limits, err, sizeof(err)), err))
        goto out;
    if (refuse_if_store_failing(e, rpc))
        goto out;
    uint64_t h = tm_request_submit_hash(r);
    /* Built before the lookup, so a new gid costs one lookup; a saga with
     * no steps can only submit a begun transaction. */
    live_t *fresh = NULL;
    if (r->n_steps > 0) {
        fresh = new_submitted(e, r, h, err, sizeof(err));
        if (reply_if_invalid(rpc, fresh ? 0 : -1, err))
            goto out;
    }
    live_t *l = NULL;
    found_t f = find_or_insert(e, r->gid, &l, fresh, err, sizeof(err));
    if (f == FOUND_NONE && fresh) {
        submit_new(fresh, rpc, r);
    } else if (f == FOUND_NONE) {
        reply_error(rpc, GRPC_STATUS_NOT_FOUND,
                    "no transaction with gid %s, and steps is empty: a saga "
                    "needs at least one step (or Begin the transaction first)",
                    r->gid);
    } else if (f == FOUND_LIVE) {
        pthread_mutex_lock(&l->mu);
        st = settle(l, &rq);
        if (st == LIVE_SETTLED)
            submit_existing(l, rpc, r, h);
        pthread_mutex_unlock(&l->mu);
        live_unref(l);
    }
    if (f == FOUND_STORED || f == FOUND_ELSEWHERE)
        submit_stored(e, rpc, r->gid, h);
    else if (f == FOUND_ERROR)
        reply_storage_error(rpc, err);
    else if (f == FOUND_FULL || f == FOUND_CLOSED)
        reply_not_admitted(e, rpc, f);
    if (fresh)
        live_unref(fresh);
out:
    trellis__v1__submit_request__free_unpacked(r, NULL);
    if (st == LIVE_GONE)
        tm_engine_handle_submit(rpc, req, len, engine);
}

/* Begin for a gid in memory: a repeat of the Begin that created it is
 * answered like it; anything else already exists. Lock held. */
static void begin_existing(live_t *l, tm_rpc_t *rpc, const tm_options_t *opts)
{
    if (l->tx.status == TM_TX_PREPARED &&
        tm_request_same_options(&l->tx.opts, opts))
        reply_begin(rpc, l->tx.gid, l->tx.status);
    else
        reply_error(rpc, GRPC_STATUS_ALREADY_EXISTS,
                    "gid %s already exists (status %s)", l->tx.gid,
                    tm_tx_status_name(l->tx.status));
}

void tm_engine_handle_begin(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                            void *engine)
{
    tm_engine_t *e = engine;
    request_t rq = {rpc, req, len, tm_engine_handle_begin};
    settle_t st = LIVE_SETTLED;
    char err[512];
    Trellis__V1__BeginRequest *r =
        trellis__v1__begin_request__unpack(NULL, len, req);
    if (decode_failed(rpc, r, "trellis.v1.BeginRequest", len))
        return;
    if (reply_if_invalid(
            rpc, tm_validate_begin(r, &e->cfg.limits, err, sizeof(err)), err))
        goto out;
    if (refuse_if_store_failing(e, rpc))
        goto out;
    live_t *fresh = live_new(e, r->gid, TM_TX_PREPARED);
    if (!fresh || tm_options_from_proto(&fresh->tx.opts, r->options) != 0)
        fatal_oom("transaction");
    if (!fresh->tx.opts.timeout_to_fail_ms)
        fresh->tx.opts.timeout_to_fail_ms = e->cfg.prepared_timeout_ms;
    live_t *l = NULL;
    found_t f = find_or_insert(e, r->gid, &l, fresh, err, sizeof(err));
    if (f == FOUND_NONE) {
        pthread_mutex_lock(&fresh->mu);
        persist(fresh, 1, rpc, ACK_BEGIN);
        arm_timeout(fresh);
        pthread_mutex_unlock(&fresh->mu);
    } else if (f == FOUND_LIVE) {
        pthread_mutex_lock(&l->mu);
        st = settle(l, &rq);
        if (st == LIVE_SETTLED)
            begin_existing(l, rpc, &fresh->tx.opts);
        pthread_mutex_unlock(&l->mu);
        live_unref(l);
    } else if (f == FOUND_STORED || f == FOUND_ELSEWHERE) {
        reply_error(rpc, GRPC_STATUS_ALREADY_EXISTS,
                    "gid %s already exists and is %s", r->gid,
                    f == FOUND_STORED ? "finished"
                                      : "driven by another trellisd node");
    } else if (f == FOUND_FULL || f == FOUND_CLOSED) {
        reply_not_admitted(e, rpc, f);
    } else {
        reply_storage_error(rpc, err);
    }
    live_unref(fresh);
out:
    trellis__v1__begin_request__free_unpacked(r, NULL);
    if (st == LIVE_GONE)
        tm_engine_handle_begin(rpc, req, len, engine);
}

static void register_on(live_t *l, tm_rpc_t *rpc,
                        const Trellis__V1__RegisterBranchRequest *r)
{
    tm_trans_t *tx = &l->tx;
    int existing = tm_request_find_branch(tx, r->branch_id);
    if (existing >= 0) {
        if (tm_request_same_registration(&tx->branches[existing], r))
            reply_register(rpc);
        else
            reply_error(rpc, GRPC_STATUS_ALREADY_EXISTS,
                        "branch %s of %s is already registered with "
                        "different content",
                        r->branch_id, tx->gid);
        return;
    }
    if (tx->status != TM_TX_PREPARED) {
        reply_error(rpc, GRPC_STATUS_FAILED_PRECONDITION,
                    "transaction %s is %s; branches can only be registered "
                    "while it is prepared",
                    tx->gid, tm_tx_status_name(tx->status));
        return;
    }
    if (tx->n_branches >= l->eng->cfg.limits.max_branches) {
        reply_error(rpc, GRPC_STATUS_INVALID_ARGUMENT,
                    "transaction %s already has %zu branches, the limit",
                    tx->gid, tx->n_branches);
        return;
    }
    if (tm_request_add_registered(tx, r) != 0)
        fatal_oom("branch");
    tx->updated_ms = tm_wall_ms();
    persist(l, 0, rpc, ACK_REGISTER);
}

static void reply_not_live(tm_rpc_t *rpc, found_t f, const char *gid,
                           const char *err, const char *what)
{
    if (f == FOUND_STORED)
        reply_error(rpc, GRPC_STATUS_FAILED_PRECONDITION,
                    "transaction %s is finished; %s", gid, what);
    else if (f == FOUND_ELSEWHERE)
        reply_moved(rpc, gid);
    else if (f == FOUND_NONE)
        reply_error(rpc, GRPC_STATUS_NOT_FOUND, "no transaction with gid %s",
                    gid);
    else
        reply_storage_error(rpc, err);
}

void tm_engine_handle_register(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                               void *engine)
{
    tm_engine_t *e = engine;
    request_t rq = {rpc, req, len, tm_engine_handle_register};
    settle_t st = LIVE_SETTLED;
    char err[512];
    Trellis__V1__RegisterBranchRequest *r =
        trellis__v1__register_branch_request__unpack(NULL, len, req);
    if (decode_failed(rpc, r, "trellis.v1.RegisterBranchRequest", len))
        return;
    if (!reply_if_invalid(
            rpc, tm_validate_register(r, &e->cfg.limits, err, sizeof(err)),
            err) &&
        !refuse_if_store_failing(e, rpc)) {
        live_t *l = NULL;
        found_t f = find_or_insert(e, r->gid, &l, NULL, err, sizeof(err));
        if (f == FOUND_LIVE) {
            pthread_mutex_lock(&l->mu);
            st = settle(l, &rq);
            if (st == LIVE_SETTLED)
                register_on(l, rpc, r);
            pthread_mutex_unlock(&l->mu);
            live_unref(l);
        } else {
            reply_not_live(rpc, f, r->gid, err,
                           "branches can only be registered while it is "
                           "prepared");
        }
    }
    trellis__v1__register_branch_request__free_unpacked(r, NULL);
    if (st == LIVE_GONE)
        tm_engine_handle_register(rpc, req, len, engine);
}

static void abort_live(live_t *l, tm_rpc_t *rpc,
                       const Trellis__V1__AbortRequest *r)
{
    tm_trans_t *tx = &l->tx;
    if (tx->status == TM_TX_SUBMITTED || tx->status == TM_TX_SUCCEEDED) {
        reply_error(rpc, GRPC_STATUS_FAILED_PRECONDITION,
                    "transaction %s is %s; only a prepared transaction can "
                    "be aborted",
                    tx->gid, tm_tx_status_name(tx->status));
        return;
    }
    if (tx->status == TM_TX_PREPARED) {
        char reason[TM_REASON_MAX + 32];
        snprintf(reason, sizeof(reason), "aborted by the initiator: %s",
                 r->reason && *r->reason ? r->reason : "no reason given");
        tm_plan_start_rollback(tx, reason, tm_wall_ms());
        log_rollback_decision(l);
        if (r->wait_result)
            add_waiter(l, rpc, WAIT_ABORT);
        persist(l, 0, r->wait_result ? NULL : rpc, ACK_ABORT);
        return;
    }
    if (r->wait_result && !is_final(tx->status))
        add_waiter(l, rpc, WAIT_ABORT);
    else
        reply_abort(rpc, tx->status);
}

void tm_engine_handle_abort(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                            void *engine)
{
    tm_engine_t *e = engine;
    request_t rq = {rpc, req, len, tm_engine_handle_abort};
    settle_t st = LIVE_SETTLED;
    char err[512];
    Trellis__V1__AbortRequest *r =
        trellis__v1__abort_request__unpack(NULL, len, req);
    if (decode_failed(rpc, r, "trellis.v1.AbortRequest", len))
        return;
    if (!reply_if_invalid(rpc, tm_validate_abort(r, err, sizeof(err)), err) &&
        !refuse_if_store_failing(e, rpc)) {
        live_t *l = NULL;
        found_t f = find_or_insert(e, r->gid, &l, NULL, err, sizeof(err));
        if (f == FOUND_LIVE) {
            pthread_mutex_lock(&l->mu);
            st = settle(l, &rq);
            if (st == LIVE_SETTLED)
                abort_live(l, rpc, r);
            pthread_mutex_unlock(&l->mu);
            live_unref(l);
        } else if (f == FOUND_STORED) {
            tm_tx_status_t st_stored = 0;
            uint64_t h;
            tm_store_peek(e->store, r->gid, &st_stored, &h, err, sizeof(err));
            if (st_stored == TM_TX_FAILED)
                reply_abort(rpc, st_stored);
            else
                reply_not_live(rpc, f, r->gid, err, "it cannot be aborted");
        } else {
            reply_not_live(rpc, f, r->gid, err, "");
        }
    }
    trellis__v1__abort_request__free_unpacked(r, NULL);
    if (st == LIVE_GONE)
        tm_engine_handle_abort(rpc, req, len, engine);
}

static void reply_query(tm_rpc_t *rpc, const tm_trans_t *tx)
{
    Trellis__V1__QueryReply q = TRELLIS__V1__QUERY_REPLY__INIT;
    q.trans = tm_trans_to_proto(tx, 1);
    if (!q.trans)
        fatal_oom("query");
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &q.base);
    tm_trans_proto_free(q.trans);
}

void tm_engine_handle_query(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                            void *engine)
{
    tm_engine_t *e = engine;
    char err[512];
    Trellis__V1__QueryRequest *r =
        trellis__v1__query_request__unpack(NULL, len, req);
    if (decode_failed(rpc, r, "trellis.v1.QueryRequest", len))
        return;
    if (reply_if_invalid(rpc, tm_validate_gid(r->gid, err, sizeof(err)), err))
        goto out;
    /* Durable state only: a copy with a write pending (or one that left
     * memory) is answered from the store. */
    live_t *l = map_get(e, r->gid);
    if (l) {
        pthread_mutex_lock(&l->mu);
        int settled = !l->finalized && !l->lost && l->pending_writes == 0;
        if (settled)
            reply_query(rpc, &l->tx);
        pthread_mutex_unlock(&l->mu);
        live_unref(l);
        if (settled)
            goto out;
    }
    tm_trans_t *tx = NULL;
    int found = tm_store_get(e->store, r->gid, &tx, err, sizeof(err));
    if (found == 1) {
        reply_query(rpc, tx);
        tm_trans_free(tx);
    } else if (found == 0) {
        reply_error(rpc, GRPC_STATUS_NOT_FOUND, "no transaction with gid %s",
                    r->gid);
    } else {
        reply_storage_error(rpc, err);
    }
out:
    trellis__v1__query_request__free_unpacked(r, NULL);
}

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

static void reply_list(tm_rpc_t *rpc, tm_trans_t **items, size_t n,
                       uint32_t limit)
{
    Trellis__V1__ListReply lr = TRELLIS__V1__LIST_REPLY__INIT;
    char token[TM_GID_MAX + 32] = "";
    lr.transactions = calloc(n ? n : 1, sizeof(*lr.transactions));
    if (!lr.transactions)
        fatal_oom("list");
    for (size_t i = 0; i < n; i++) {
        lr.transactions[i] = tm_trans_to_proto(items[i], 0);
        if (!lr.transactions[i])
            fatal_oom("list");
    }
    lr.n_transactions = n;
    if (n == limit && n > 0)
        snprintf(token, sizeof(token), "%" PRId64 ":%s",
                 items[n - 1]->created_ms, items[n - 1]->gid);
    lr.next_page_token = token;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &lr.base);
    for (size_t i = 0; i < n; i++)
        tm_trans_proto_free(lr.transactions[i]);
    free(lr.transactions);
}

void tm_engine_handle_list(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                           void *engine)
{
    tm_engine_t *e = engine;
    char err[512];
    char gid_buf[TM_GID_MAX + 1];
    Trellis__V1__ListRequest *r =
        trellis__v1__list_request__unpack(NULL, len, req);
    if (decode_failed(rpc, r, "trellis.v1.ListRequest", len))
        return;
    tm_store_filter_t f = {0};
    f.status = (tm_tx_status_t)r->status;
    f.created_after_ms = r->created_after_ms;
    f.created_before_ms = r->created_before_ms;
    f.limit = r->page_size ? r->page_size : 100;
    if ((int)r->status < 0 || (int)r->status > (int)TM_TX_FAILED) {
        reply_error(rpc, GRPC_STATUS_INVALID_ARGUMENT,
                    "status %d is not a transaction status", (int)r->status);
    } else if (f.limit > 1000) {
        reply_error(rpc, GRPC_STATUS_INVALID_ARGUMENT,
                    "page_size %u is over the limit of 1000", f.limit);
    } else if (parse_page_token(r->page_token, &f, gid_buf, sizeof(gid_buf)) !=
               0) {
        reply_error(rpc, GRPC_STATUS_INVALID_ARGUMENT,
                    "page_token is not one this server handed out");
    } else {
        tm_trans_t **items = NULL;
        size_t n = 0;
        if (tm_store_list(e->store, &f, &items, &n, err, sizeof(err)) != 0) {
            reply_storage_error(rpc, err);
        } else {
            reply_list(rpc, items, n, f.limit);
            for (size_t i = 0; i < n; i++)
                tm_trans_free(items[i]);
            free(items);
        }
    }
    trellis__v1__list_request__free_unpacked(r, NULL);
}

void tm_engine_handle_new_gid(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                              void *engine)
{
    tm_engine_t *e = engine;
    Trellis__V1__NewGidRequest *r =
        trellis__v1__new_gid_request__unpack(NULL, len, req);
    if (decode_failed(rpc, r, "trellis.v1.NewGidRequest", len))
        return;
    trellis__v1__new_gid_request__free_unpacked(r, NULL);
    char gid[TM_GID_MAX + 1];
    unsigned n = atomic_fetch_add(&e->gid_counter, 1);
    snprintf(gid, sizeof(gid), "%" PRIx64 "-%06x-%x", tm_wall_ms(),
             e->node_tag & 0xffffff, n);
    Trellis__V1__NewGidReply g = TRELLIS__V1__NEW_GID_REPLY__INIT;
    g.gid = gid;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &g.base);
}

/* ---- recovery ------------------------------------------------------------ */

static void adopt_loaded(tm_trans_t *tx, void *arg)
{
    tm_engine_t *e = arg;
    live_t *l = live_new(e, tx->gid, tx->status);
    if (!l)
        fatal_oom("recovery");
    l->tx = *tx; /* take over every owned field */
    l->born_mono = 0;
    free(tx);
    pthread_mutex_lock(&e->map_mu);
    map_insert_locked(e, l);
    pthread_mutex_unlock(&e->map_mu);
}

/* An older copy of a transaction that was just loaded from the store
 * (claimed, or reloaded): retire it, so only the loaded row is acted on.
 * It stops acting — timers disarmed, late results and its queued writes
 * ignored (the store refuses them: the claim moved the fence) — and its
 * waiters move to fresh, which nobody else sees yet. Returns 1 when it
 * took old out of the map (the caller drops the map's reference). */
static int retire_stale_copy(live_t *old, live_t *fresh)
{
    pthread_mutex_lock(&old->mu);
    int unmapped = 0;
    if (!old->finalized) {
        old->lost = 1;
        old->finalized = 1;
        disarm_all_timers(old);
        while (old->waiters) {
            waiter_t *w = old->waiters;
            old->waiters = w->next;
            w->next = fresh->waiters;
            fresh->waiters = w;
            fresh->n_waiters++;
        }
        old->n_waiters = 0;
        map_remove(old->eng, old);
        unmapped = 1;
    }
    parked_t *parked = take_parked_if_settled(old);
    pthread_mutex_unlock(&old->mu);
    run_parked(parked, old->eng); /* they find fresh once it is mapped */
    return unmapped;
}

/* Put a transaction just read from the store into memory, in place of any
 * copy there, and drive it. Takes ownership of tx. */
static void install_loaded(tm_engine_t *e, tm_trans_t *tx, const char *why)
{
    live_t *l = live_new(e, tx->gid, tx->status);
    if (!l)
        fatal_oom("takeover");
    l->tx = *tx; /* take over every owned field */
    l->born_mono = 0;
    free(tx);
    for (;;) {
        pthread_mutex_lock(&e->map_mu);
        live_t *had = map_find_locked(e, l->tx.gid);
        if (!had) {
            live_ref(l); /* ours below; the map keeps the first */
            map_insert_locked(e, l);
            pthread_mutex_unlock(&e->map_mu);
            break;
        }
        live_ref(had);
        pthread_mutex_unlock(&e->map_mu);
        if (retire_stale_copy(had, l))
            live_unref(had); /* the map's */
        live_unref(had);
    }
    tm_log(TM_LOG_INFO, "event=%s gid=%s status=%s", why, l->tx.gid,
           tm_tx_status_name(l->tx.status));
    pthread_mutex_lock(&l->mu);
    arm_timeout(l);
    drive(l);
    pthread_mutex_unlock(&l->mu);
    live_unref(l);
}

/* Store hook: a transaction claimed from a node whose lease ran out — or
 * from this node itself after its own lease lapsed. Any copy in memory is
 * stale (another node may have moved the row meanwhile): the loaded row
 * replaces it. */
static void adopt_claimed(tm_trans_t *tx, void *arg)
{
    install_loaded(arg, tx, "takeover");
}

/* Drive gid on from its stored row (a change to it was refused). */
static void reload_from_store(tm_engine_t *e, const char *gid)
{
    char err[256];
    tm_trans_t *tx = NULL;
    int found = tm_store_get(e->store, gid, &tx, err, sizeof(err));
    if (found == 1 && !is_final(tx->status)) {
        install_loaded(e, tx, "reloaded");
        return;
    }
    if (found == 1)
        tm_trans_free(tx);
    else
        tm_log(TM_LOG_ERROR,
               "event=reload_failed gid=%s error=\"%s\" msg=\"a restart "
               "drives it on from the store\"",
               gid, found < 0 ? err : "not stored");
}

/* Every live transaction, each with a reference the caller drops. */
static live_t **snapshot_live(tm_engine_t *e, size_t *n)
{
    pthread_mutex_lock(&e->map_mu);
    *n = 0;
    live_t **all = malloc((e->count ? e->count : 1) * sizeof(*all));
    if (!all)
        fatal_oom("snapshot");
    for (size_t b = 0; b < e->n_buckets; b++)
        for (live_t *l = e->buckets[b]; l; l = l->hnext) {
            live_ref(l);
            all[(*n)++] = l;
        }
    pthread_mutex_unlock(&e->map_mu);
    return all;
}

/* Store hook: this node's leases may have run out, so another node may
 * have taken some transactions over. Confirm each with a write (it is
 * refused for a transaction another node owns now); until its write
 * commits, a transaction plans nothing. */
static void recheck_after_lapse(void *arg)
{
    tm_engine_t *e = arg;
    size_t n;
    live_t **all = snapshot_live(e, &n);
    tm_log(TM_LOG_WARN,
           "event=lease_lapsed transactions=%zu msg=\"re-confirming "
           "ownership before acting\"",
           n);
    for (size_t i = 0; i < n; i++) {
        live_t *l = all[i];
        pthread_mutex_lock(&l->mu);
        if (!l->finalized)
            persist(l, 0, NULL, ACK_NONE);
        pthread_mutex_unlock(&l->mu);
        live_unref(l);
    }
    free(all);
}

long tm_engine_load(tm_engine_t *e, char *err, size_t errlen)
{
    long n = tm_store_load_unfinished(e->store, adopt_loaded, e, err, errlen);
    if (n > 0)
        tm_metrics_recovered_add((uint64_t)n);
    return n;
}

void tm_engine_resume_all(tm_engine_t *e)
{
    /* Snapshot the map first: driving may finish (and remove) entries. */
    size_t n;
    live_t **all = snapshot_live(e, &n);
    for (size_t i = 0; i < n; i++) {
        live_t *l = all[i];
        pthread_mutex_lock(&l->mu);
        arm_timeout(l);
        drive(l);
        pthread_mutex_unlock(&l->mu);
        live_unref(l);
    }
    free(all);
    if (n)
        tm_log(TM_LOG_INFO, "event=recovered transactions=%zu", n);
    tm_store_owner_hooks_t hooks = {adopt_claimed, recheck_after_lapse, e};
    tm_store_start_ownership(e->store, &hooks);
}

/* ---- lifecycle ----------------------------------------------------------- */

int tm_engine_new(const tm_engine_config_t *cfg, tm_store_t *store,
                  tm_timers_t *timers, tm_caller_t *caller, tm_engine_t **out,
                  char *err, size_t errlen)
{
    tm_engine_t *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e->cfg = *cfg;
    e->store = store;
    e->timers = timers;
    e->caller = caller;
    e->n_buckets = 4096;
    e->buckets = calloc(e->n_buckets, sizeof(*e->buckets));
    if (!e->buckets) {
        free(e);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&e->map_mu, NULL);
    pthread_cond_init(&e->idle_cv, NULL);
    e->node_tag = (uint32_t)getpid() ^ (uint32_t)tm_wall_ms();
    *out = e;
    return 0;
}

void tm_engine_free(tm_engine_t *e)
{
    if (!e)
        return;
    free(e->buckets); /* live transactions are left to the process exit */
    pthread_mutex_destroy(&e->map_mu);
    free(e);
}

/* ---- graceful stop ------------------------------------------------------ */

void tm_engine_drain(tm_engine_t *e)
{
    atomic_store(&e->draining, 1);
}

int tm_engine_draining(tm_engine_t *e)
{
    return atomic_load(&e->draining);
}

int tm_engine_serving(tm_engine_t *e)
{
    return !tm_engine_draining(e) && tm_store_healthy(e->store, NULL, 0);
}

size_t tm_engine_wait_idle(tm_engine_t *e, uint32_t timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->map_mu);
    while (e->count > 0 &&
           pthread_cond_timedwait(&e->idle_cv, &e->map_mu, &until) == 0) {
    }
    size_t left = e->count;
    pthread_mutex_unlock(&e->map_mu);
    return left;
}

/* ---- operator actions (trellisctl retry-now, force-stop) ----------------- */

#define FORCE_STOP_PREFIX "force-stopped by operator: "

static void reply_force_stop(tm_rpc_t *rpc, tm_tx_status_t status,
                             const char *reason)
{
    Trellis__V1__ForceStopReply r = TRELLIS__V1__FORCE_STOP_REPLY__INIT;
    r.status = (Trellis__V1__TransStatus)status;
    r.reason = (char *)(reason ? reason : "");
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
}

static void reply_retry_now(tm_rpc_t *rpc, tm_tx_status_t status,
                            uint32_t called)
{
    Trellis__V1__RetryNowReply r = TRELLIS__V1__RETRY_NOW_REPLY__INIT;
    r.status = (Trellis__V1__TransStatus)status;
    r.ops_called = called;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
}

/* Answer a request for a live transaction that has left this node's
 * control (finished meanwhile, or owned by another node). Lock held.
 * Returns 1 when it answered. */
static int reply_if_gone(live_t *l, tm_rpc_t *rpc, const char *what)
{
    if (l->lost) {
        reply_moved(rpc, l->tx.gid);
        return 1;
    }
    if (!l->finalized && !is_final(l->tx.status))
        return 0;
    reply_error(rpc, GRPC_STATUS_FAILED_PRECONDITION,
                "transaction %s is %s; %s", l->tx.gid,
                tm_tx_status_name(l->tx.status), what);
    return 1;
}

/* Every op waiting for its retry timer: disarm it, reset the backoff, and
 * plan at once. Lock held. Returns how many ops were waiting. A timer that
 * fired just before (its callback waiting for the lock) still runs later
 * and at worst starts one extra call, which participants absorb. */
static uint32_t retry_now_live(live_t *l)
{
    uint32_t n = 0;
    for (size_t i = 0; i < l->tx.n_branches; i++)
        for (int k = 0; k < TM_SLOTS; k++) {
            tm_op_t *op = &l->tx.branches[i].ops[k];
            if (!op->waiting_retry)
                continue;
            disarm_timer(l, &op->retry_timer);
            op->waiting_retry = 0;
            op->unknown_streak = 0;
            n++;
        }
    if (n)
        drive(l);
    return n;
}

void tm_engine_handle_retry_now(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                                void *engine)
{
    tm_engine_t *e = engine;
    request_t rq = {rpc, req, len, tm_engine_handle_retry_now};
    settle_t st = LIVE_SETTLED;
    char err[512];
    Trellis__V1__RetryNowRequest *r =
        trellis__v1__retry_now_request__unpack(NULL, len, req);
    if (decode_failed(rpc, r, "trellis.v1.RetryNowRequest", len))
        return;
    if (reply_if_invalid(rpc, tm_validate_gid(r->gid, err, sizeof(err)), err))
        goto out;
    live_t *l = NULL;
    found_t f = find_or_insert(e, r->gid, &l, NULL, err, sizeof(err));
    if (f != FOUND_LIVE) {
        reply_not_live(rpc, f, r->gid, err, "there is nothing to retry");
        goto out;
    }
    pthread_mutex_lock(&l->mu);
    st = settle(l, &rq);
    if (st == LIVE_SETTLED &&
        !reply_if_gone(l, rpc, "there is nothing to retry")) {
        uint32_t n = retry_now_live(l);
        tm_metrics_retry_now();
        tm_log(TM_LOG_INFO, "event=retry_now gid=%s status=%s ops_called=%u",
               l->tx.gid, tm_tx_status_name(l->tx.status), n);
        reply_retry_now(rpc, l->tx.status, n);
    }
    pthread_mutex_unlock(&l->mu);
    live_unref(l);
out:
    trellis__v1__retry_now_request__free_unpacked(r, NULL);
    if (st == LIVE_GONE)
        tm_engine_handle_retry_now(rpc, req, len, engine);
}

static int is_force_stopped(const tm_trans_t *tx)
{
    return tx->status == TM_TX_FAILED && tx->reason &&
           strncmp(tx->reason, FORCE_STOP_PREFIX,
                   sizeof(FORCE_STOP_PREFIX) - 1) == 0;
}

/* Disarm every timer of the transaction; ops that were tried without a
 * final answer are marked dirty, so their attempts and last error are
 * stored with the final status (as SKIPPED) for the operator. Lock held. */
static void stop_timers_keep_attempts(live_t *l)
{
    disarm_timer(l, &l->timeout);
    for (size_t i = 0; i < l->tx.n_branches; i++)
        for (int k = 0; k < TM_SLOTS; k++) {
            tm_op_t *op = &l->tx.branches[i].ops[k];
            disarm_timer(l, &op->retry_timer);
            op->waiting_retry = 0;
            if (op->kind != TM_KIND_NONE && op->status == TM_OP_PENDING &&
                op->attempts > 0)
                op->dirty = 1;
        }
}

/* Mark the transaction FAILED with the operator's reason and answer once
 * that is committed. Nothing is called again: drive() plans nothing for a
 * final transaction, and on_call_done ignores late results. Lock held. */
static void force_stop_live(live_t *l, tm_rpc_t *rpc, const char *why)
{
    tm_trans_t *tx = &l->tx;
    if (is_force_stopped(tx)) { /* settled: the stop is durable */
        reply_force_stop(rpc, tx->status, tx->reason);
        return;
    }
    if (reply_if_gone(l, rpc,
                      "only an unfinished transaction can be "
                      "force-stopped"))
        return;
    char reason[TM_REASON_MAX + sizeof(FORCE_STOP_PREFIX)];
    char q[sizeof(reason) + 64];
    snprintf(reason, sizeof(reason), FORCE_STOP_PREFIX "%s", why);
    tm_tx_status_t before = tx->status;
    stop_timers_keep_attempts(l);
    if (tm_set_string(&tx->reason, reason) != 0)
        fatal_oom("reason");
    tm_plan_finish(tx, TM_TX_FAILED, tm_wall_ms());
    tm_metrics_force_stopped();
    tm_log(TM_LOG_WARN, "event=force_stopped gid=%s was=%s reason=\"%s\"",
           tx->gid, tm_tx_status_name(before),
           tm_log_quote(reason, q, sizeof(q)));
    persist(l, 0, rpc, ACK_FORCE_STOP);
}

/* ForceStop of a transaction only in the store: repeat the answer if it
 * was force-stopped, refuse otherwise. */
static void force_stop_stored(tm_engine_t *e, tm_rpc_t *rpc, const char *gid)
{
    char err[512];
    tm_trans_t *tx = NULL;
    int found = tm_store_get(e->store, gid, &tx, err, sizeof(err));
    if (found <= 0) {
        reply_error(rpc, GRPC_STATUS_INTERNAL, "%s",
                    found < 0 ? err : "transaction vanished");
        return;
    }
    if (is_force_stopped(tx))
        reply_force_stop(rpc, tx->status, tx->reason);
    else
        reply_error(rpc, GRPC_STATUS_FAILED_PRECONDITION,
                    "transaction %s is already %s; only an unfinished "
                    "transaction can be force-stopped",
                    gid, tm_tx_status_name(tx->status));
    tm_trans_free(tx);
}

static int validate_force_stop(const Trellis__V1__ForceStopRequest *r,
                               char *err, size_t errlen)
{
    if (tm_validate_gid(r->gid, err, errlen) != 0)
        return -1;
    if (!r->reason || !*r->reason) {
        snprintf(err, errlen,
                 "reason is required: say why the transaction is stopped");
        return -1;
    }
    if (strlen(r->reason) > TM_REASON_MAX) {
        snprintf(err, errlen, "reason is longer than %d bytes", TM_REASON_MAX);
        return -1;
    }
    return 0;
}

void tm_engine_handle_force_stop(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                                 void *engine)
{
    tm_engine_t *e = engine;
    request_t rq = {rpc, req, len, tm_engine_handle_force_stop};
    settle_t st = LIVE_SETTLED;
    char err[512];
    Trellis__V1__ForceStopRequest *r =
        trellis__v1__force_stop_request__unpack(NULL, len, req);
    if (decode_failed(rpc, r, "trellis.v1.ForceStopRequest", len))
        return;
    if (reply_if_invalid(rpc, validate_force_stop(r, err, sizeof(err)), err))
        goto out;
    if (refuse_if_store_failing(e, rpc))
        goto out;
    live_t *l = NULL;
    found_t f = find_or_insert(e, r->gid, &l, NULL, err, sizeof(err));
    if (f == FOUND_LIVE) {
        pthread_mutex_lock(&l->mu);
        st = settle(l, &rq);
        if (st == LIVE_SETTLED)
            force_stop_live(l, rpc, r->reason);
        pthread_mutex_unlock(&l->mu);
        live_unref(l);
    } else if (f == FOUND_STORED) {
        force_stop_stored(e, rpc, r->gid);
    } else {
        reply_not_live(rpc, f, r->gid, err, "");
    }
out:
    trellis__v1__force_stop_request__free_unpacked(r, NULL);
    if (st == LIVE_GONE)
        tm_engine_handle_force_stop(rpc, req, len, engine);
}
