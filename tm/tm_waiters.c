/*
 * tm_waiters: the requests a live transaction keeps for later — waiters
 * (a Submit or Abort with wait_result, answered when the transaction ends)
 * and parked requests (any request that arrived while a write of the
 * transaction was pending, handled again from the top once it committed,
 * so every answer reflects durable state and a duplicate waits behind the
 * write of the request it repeats).
 *
 * Both are bounded, per transaction and (waiters) per node: past a bound a
 * request is refused RESOURCE_EXHAUSTED at once, so a client polling in a
 * tight loop cannot grow memory. A waiter whose client goes away is
 * dropped at once (the front's cancel watch), one whose deadline passed
 * at the latest when the next waiter arrives.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "tm_engine_impl.h"
#include "tm_log.h"
#include "tm_metrics.h"

/* Requests waiting (wait_result) for one transaction's result. */
#define MAX_WAITERS_PER_TX 64

/* At most this many requests park on one transaction; more are refused
 * with RESOURCE_EXHAUSTED (a client retrying in a tight loop). */
#define MAX_PARKED_PER_TX 64

struct tm_parked {
    tm_parked_t *next;
    tm_rpc_t *rpc;
    tm_engine_redo_fn redo;
    void *redo_user;
    size_t len;
    uint8_t bytes[];
};

/* ---- waiters ------------------------------------------------------------ */

/* n waiters of l are gone: out of its count, the node's and the metric. */
static void uncount_waiters(tm_live_t *l, unsigned n)
{
    assert(l->n_waiters >= n);
    l->n_waiters -= n;
    atomic_fetch_sub(&l->eng->n_waiters, n);
    tm_metrics_waiters_add(-(int64_t)n);
}

/* Answer (DEADLINE_EXCEEDED, which nobody reads any more) and drop every
 * waiter whose client deadline has passed. Its cancel watch normally
 * dropped it already (gRPC cancels a call at its deadline); this is the
 * fallback for a watch that fired while the waiter moved between copies
 * (on_waiter_cancelled). */
static void prune_expired(tm_live_t *l)
{
    tm_engine_t *e = l->eng;
    tm_waiter_t **p = &l->waiters;
    while (*p) {
        tm_waiter_t *w = *p;
        if (!e->front.expired(e->front.user, w->rpc)) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        tm_engine_fail(e, w->rpc, TM_CODE_DEADLINE_EXCEEDED,
                       "deadline passed while waiting for %s", l->tx.gid);
        free(w);
        uncount_waiters(l, 1);
    }
}

/* Take rpc's waiter off l, if it is there (its client cancelled).
 * Returns 1 when it was. */
static int unlink_waiter(tm_live_t *l, const tm_rpc_t *rpc)
{
    for (tm_waiter_t **p = &l->waiters; *p; p = &(*p)->next) {
        tm_waiter_t *w = *p;
        if (w->rpc != rpc)
            continue;
        *p = w->next;
        free(w);
        uncount_waiters(l, 1);
        return 1;
    }
    return 0;
}

/* The front's cancel watch (no lock held): the client of a waiting call
 * cancelled it, lost its connection or passed its deadline. Drop its
 * waiter now, without a reply, so dead calls do not hold the bounds. If
 * the waiter is not found, it was answered meanwhile (whoever answered it
 * owned rpc), or it was moving to a fresh copy of gid (a takeover or
 * reload retires the old copy): then it stays until it is answered or,
 * past its deadline, pruned by the next waiter. */
static void on_waiter_cancelled(tm_rpc_t *rpc, void *engine, const char *gid)
{
    tm_engine_t *e = engine;
    tm_live_t *l = tm_live_find(&e->live, gid);
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    int dropped = unlink_waiter(l, rpc);
    if (dropped)
        e->front.drop(e->front.user, rpc);
    pthread_mutex_unlock(&l->mu);
    tm_live_unref(l);
    if (dropped)
        tm_log(TM_LOG_DEBUG, "event=waiter_cancelled gid=%s", gid);
}

/* Refuse rpc past a bound: per transaction, then per node. Returns 1 when
 * it answered. Takes the node's count for rpc when it returns 0. */
static int refuse_over_bounds(tm_live_t *l, tm_rpc_t *rpc)
{
    tm_engine_t *e = l->eng;
    if (l->n_waiters >= MAX_WAITERS_PER_TX) {
        tm_engine_fail(e, rpc, TM_CODE_RESOURCE_EXHAUSTED,
                       "%u requests already wait for the result of %s; poll "
                       "with Query instead of waiting",
                       l->n_waiters, l->tx.gid);
        return 1;
    }
    if (atomic_fetch_add(&e->n_waiters, 1) >= e->cfg.max_waiters) {
        atomic_fetch_sub(&e->n_waiters, 1);
        tm_engine_fail(e, rpc, TM_CODE_RESOURCE_EXHAUSTED,
                       "trellisd already holds %u requests waiting for a "
                       "result, its limit; poll with Query instead of waiting",
                       e->cfg.max_waiters);
        return 1;
    }
    return 0;
}

void tm_wait_add(tm_live_t *l, tm_rpc_t *rpc, tm_wait_kind_t kind)
{
    tm_engine_t *e = l->eng;
    prune_expired(l);
    if (refuse_over_bounds(l, rpc))
        return;
    tm_waiter_t *w = malloc(sizeof(*w));
    if (!w) {
        atomic_fetch_sub(&e->n_waiters, 1);
        tm_engine_fail(e, rpc, TM_CODE_RESOURCE_EXHAUSTED,
                       "out of memory to wait for %s", l->tx.gid);
        return;
    }
    char err[128];
    int watch = e->front.watch_cancel(e->front.user, rpc, on_waiter_cancelled,
                                      e, l->tx.gid, err, sizeof(err));
    if (watch != 0) {
        atomic_fetch_sub(&e->n_waiters, 1);
        free(w);
        if (watch == TM_FRONT_CALL_CLOSED)
            e->front.drop(e->front.user, rpc); /* nobody listens */
        else
            tm_engine_fail(e, rpc, TM_CODE_INTERNAL, "cannot wait: %s", err);
        return;
    }
    w->rpc = rpc;
    w->kind = kind;
    w->next = l->waiters;
    l->waiters = w;
    l->n_waiters++;
    tm_metrics_waiters_add(1);
}

tm_waiter_t *tm_wait_take(tm_live_t *l)
{
    tm_waiter_t *w = l->waiters;
    uncount_waiters(l, l->n_waiters);
    l->waiters = NULL;
    return w;
}

static tm_answer_kind_t answer_kind(tm_wait_kind_t k)
{
    switch (k) {
    case TM_WAIT_SUBMIT:
        return TM_ANSWER_SUBMIT;
    case TM_WAIT_ABORT:
        return TM_ANSWER_ABORT;
    case TM_WAIT_PREPARE_MESSAGE:
        return TM_ANSWER_PREPARE_MESSAGE;
    }
    return TM_ANSWER_SUBMIT;
}

static void answer_all(tm_live_t *l, tm_tx_status_t status)
{
    tm_waiter_t *w = tm_wait_take(l);
    while (w) {
        tm_waiter_t *next = w->next;
        tm_engine_answer_status(l->eng, w->rpc, answer_kind(w->kind), l->tx.gid,
                                status, l->tx.reason);
        free(w);
        w = next;
    }
}

void tm_wait_answer_final(tm_live_t *l)
{
    answer_all(l, l->tx.status);
}

/* The model is durable only while no write is pending. */
static tm_tx_status_t durable_outcome(const tm_live_t *l)
{
    return l->pending_writes ? 0 : tm_plan_outcome_known(&l->tx, &l->run);
}

void tm_wait_answer_known(tm_live_t *l)
{
    tm_tx_status_t st = l->waiters ? durable_outcome(l) : 0;
    if (st)
        answer_all(l, st);
}

void tm_wait_add_or_answer(tm_live_t *l, tm_rpc_t *rpc, tm_wait_kind_t kind)
{
    tm_tx_status_t st = durable_outcome(l);
    if (st)
        tm_engine_answer_status(l->eng, rpc, answer_kind(kind), l->tx.gid, st,
                                l->tx.reason);
    else
        tm_wait_add(l, rpc, kind);
}

void tm_wait_move(tm_live_t *from, tm_live_t *to)
{
    while (from->waiters) {
        tm_waiter_t *w = from->waiters;
        from->waiters = w->next;
        w->next = to->waiters;
        to->waiters = w;
        to->n_waiters++;
    }
    from->n_waiters = 0;
}

void tm_wait_answer_stored(tm_engine_t *e, tm_waiter_t *w, const char *gid,
                           const tm_trans_t *tx, const char *err)
{
    while (w) {
        tm_waiter_t *next = w->next;
        if (tx)
            tm_engine_answer_status(e, w->rpc, answer_kind(w->kind), gid,
                                    tx->status, tx->reason);
        else
            tm_engine_fail_storage(e, w->rpc, err);
        free(w);
        w = next;
    }
}

/* ---- requests parked until the transaction's writes are durable --------- */

/* Keep rq to handle again once l has no write pending. */
static void park_request(tm_live_t *l, const tm_engine_req_t *rq)
{
    tm_engine_t *e = l->eng;
    if (l->n_parked >= MAX_PARKED_PER_TX) {
        tm_engine_fail(e, rq->rpc, TM_CODE_RESOURCE_EXHAUSTED,
                       "%u requests for %s already wait for its pending "
                       "write; retry later",
                       l->n_parked, l->tx.gid);
        return;
    }
    tm_parked_t *p = malloc(sizeof(*p) + rq->len);
    if (!p) {
        tm_engine_fail(e, rq->rpc, TM_CODE_RESOURCE_EXHAUSTED,
                       "out of memory to hold a request for %s", l->tx.gid);
        return;
    }
    p->next = NULL;
    p->rpc = rq->rpc;
    p->redo = rq->redo;
    p->redo_user = rq->redo_user;
    p->len = rq->len;
    if (rq->len)
        memcpy(p->bytes, rq->bytes, rq->len);
    if (l->parked_tail)
        l->parked_tail->next = p;
    else
        l->parked = p;
    l->parked_tail = p;
    l->n_parked++;
}

tm_settle_t tm_wait_settle(tm_live_t *l, const tm_engine_req_t *rq)
{
    if (l->finalized || l->lost)
        return TM_LIVE_GONE;
    if (l->pending_writes > 0) {
        park_request(l, rq);
        return TM_LIVE_PARKED;
    }
    return TM_LIVE_SETTLED;
}

tm_parked_t *tm_wait_take_parked_if_settled(tm_live_t *l)
{
    if (!l->parked || (l->pending_writes > 0 && !l->finalized))
        return NULL;
    tm_parked_t *p = l->parked;
    l->parked = l->parked_tail = NULL;
    l->n_parked = 0;
    return p;
}

void tm_wait_run_parked(tm_parked_t *p)
{
    while (p) {
        tm_parked_t *next = p->next;
        p->redo(p->rpc, p->bytes, p->len, p->redo_user);
        free(p);
        p = next;
    }
}
