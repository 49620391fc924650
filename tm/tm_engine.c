/*
 * tm_engine: the core's writes, planning and timers (see tm_engine.h for
 * the rules it keeps, tm_engine_impl.h for how the core is split).
 *
 * A change to a live transaction is made under its lock and handed to the
 * store as one captured write with a ticket saying whom to answer; the
 * ticket's callback (on_write_done, on the store's callback thread) is
 * where the engine learns the change is durable, answers, and plans again.
 * A write the store refuses (the row is another node's, was stored first,
 * is final, or cannot be stored) makes this copy forget the transaction.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_engine_impl.h"
#include "tm_exit.h"
#include "tm_kind.h"
#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_trace.h"

/* One queued write: who to wake and whom to answer when it commits. */
struct tm_ticket {
    tm_ticket_t *next; /* in the live's list of writes held back */
    tm_live_t *live;
    tm_rpc_t *rpc;
    tm_answer_kind_t ack;  /* TM_ACK_NONE: nobody to answer */
    tm_tx_status_t status; /* status to report in the ack */
    int insert;            /* the write that creates the row */
};

void tm_engine_config_default(tm_engine_config_t *c)
{
    tm_limits_default(&c->limits);
    c->retry_interval_ms = 1000;
    c->request_timeout_ms = 3000;
    c->resume_timeout_ms = 60000;
    c->max_backoff_ms = 60000;
    c->prepared_timeout_ms = 60000;
    c->retry_limit = 0;
    c->max_inflight = 1000000;
    c->max_waiters = 100000;
    c->max_action_log = TM_ACTION_LOG_DEFAULT;
}

/* ---- answers ------------------------------------------------------------ */

void tm_engine_answer(tm_engine_t *e, tm_rpc_t *rpc, const tm_answer_t *a)
{
    e->front.answer(e->front.user, rpc, a);
}

void tm_engine_fail(tm_engine_t *e, tm_rpc_t *rpc, tm_code_t code,
                    const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tm_answer_t a = {.code = code, .message = msg};
    tm_engine_answer(e, rpc, &a);
}

void tm_engine_answer_status(tm_engine_t *e, tm_rpc_t *rpc,
                             tm_answer_kind_t kind, const char *gid,
                             tm_tx_status_t status, const char *reason)
{
    tm_answer_t a = {.code = TM_CODE_OK,
                     .kind = kind,
                     .gid = gid,
                     .status = status,
                     .reason = reason};
    tm_engine_answer(e, rpc, &a);
}

void tm_engine_answer_begin(tm_engine_t *e, tm_rpc_t *rpc, const tm_trans_t *tx)
{
    uint32_t registered = 0;
    for (size_t i = 0; i < tx->n_branches; i++)
        registered += tx->branches[i].initiator_driven ? 1 : 0;
    tm_answer_t a = {.code = TM_CODE_OK,
                     .kind = TM_ANSWER_BEGIN,
                     .gid = tx->gid,
                     .status = tx->status,
                     .registered = registered};
    tm_engine_answer(e, rpc, &a);
}

void tm_engine_fail_moved(tm_engine_t *e, tm_rpc_t *rpc, const char *gid)
{
    tm_engine_fail(e, rpc, TM_CODE_UNAVAILABLE,
                   "transaction %s is driven by another trellisd node (this "
                   "node's lease on it ran out, or that node stored it "
                   "first); send requests for it to that node",
                   gid);
}

void tm_engine_fail_storage(tm_engine_t *e, tm_rpc_t *rpc, const char *err)
{
    tm_engine_fail(e, rpc, TM_CODE_UNAVAILABLE, "storage unavailable: %s", err);
}

void tm_engine_fail_write(tm_engine_t *e, tm_rpc_t *rpc, const char *gid)
{
    tm_engine_fail(e, rpc, TM_CODE_INTERNAL,
                   "the store refused to record transaction %s (the database "
                   "rejects the write; trellisd's log says why); nothing of "
                   "this request was stored",
                   gid);
}

int tm_engine_refuse_if_store_failing(tm_engine_t *e, tm_rpc_t *rpc)
{
    char why[256];
    if (e->env.store_healthy(e->env.store, why, sizeof(why)))
        return 0;
    tm_metrics_refused_unhealthy();
    tm_engine_fail(e, rpc, TM_CODE_UNAVAILABLE,
                   "the %s store fails to commit (%s); trellisd takes no new "
                   "work until it recovers — retry later",
                   e->env.store_kind_name(e->env.store), why);
    return 1;
}

/* ---- policy ------------------------------------------------------------- */

tm_retry_policy_t tm_engine_policy_of(const tm_live_t *l)
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

uint32_t tm_engine_request_timeout_of(const tm_live_t *l, const tm_branch_t *br)
{
    const tm_kind_t *k = tm_kind_find(br->mode);
    uint32_t t = l->tx.opts.request_timeout_ms ? l->tx.opts.request_timeout_ms
                                               : l->eng->cfg.request_timeout_ms;
    /* A workflow's own kinds call the workflow service, which runs the
     * whole function again: it gets the longer deadline. */
    if (k && (k->resumes || k->place == TM_PLACE_WORKFLOW) &&
        t < l->eng->cfg.resume_timeout_ms)
        t = l->eng->cfg.resume_timeout_ms;
    return t;
}

void tm_engine_log_rollback_decision(const tm_live_t *l)
{
    char q[TM_REASON_MAX + 64], trace[64];
    tm_log(TM_LOG_INFO, "event=rollback gid=%s%s reason=\"%s\"", l->tx.gid,
           tm_trace_log_field(l->tx.opts.traceparent, trace, sizeof(trace)),
           tm_log_quote(l->tx.reason, q, sizeof(q)));
}

void tm_engine_take_trace(tm_engine_t *e, const tm_rpc_t *rpc, tm_trans_t *tx)
{
    if (!e->front.trace)
        return;
    tm_trace_t t;
    e->front.trace(e->front.user, rpc, &t);
    if (tm_options_set_trace(&tx->opts, t.traceparent, t.tracestate) != 0)
        tm_exit_oom("trace context");
}

void tm_engine_log_created(const tm_live_t *l)
{
    char trace[64];
    tm_log(TM_LOG_DEBUG, "event=created gid=%s%s status=%s", l->tx.gid,
           tm_trace_log_field(l->tx.opts.traceparent, trace, sizeof(trace)),
           tm_tx_status_name(l->tx.status));
}

/* ---- timers ------------------------------------------------------------- */

void tm_engine_disarm_timer(tm_live_t *l, tm_timer_node_t *node)
{
    if (l->eng->env.timer_disarm(l->eng->env.timers, node))
        tm_live_unref(l); /* never the last: the caller holds one */
}

void tm_engine_arm_timer(tm_live_t *l, tm_timer_node_t *node, int64_t in_ms)
{
    if (l->eng->env.timer_arm(l->eng->env.timers, node,
                              tm_engine_mono(l->eng) + in_ms))
        tm_live_ref(l);
}

static tm_timer_node_t *retry_timer(tm_live_t *l, uint32_t b, tm_slot_t s)
{
    assert(b < l->fitted);
    return &l->retry_timers[b][s];
}

void tm_engine_arm_retry(tm_live_t *l, uint32_t b, tm_slot_t s, int64_t in_ms)
{
    tm_run_op(&l->run, b, s)->waiting_retry = 1;
    tm_engine_arm_timer(l, retry_timer(l, b, s), in_ms);
}

void tm_engine_disarm_retry(tm_live_t *l, uint32_t b, tm_slot_t s)
{
    tm_engine_disarm_timer(l, retry_timer(l, b, s));
    tm_run_op(&l->run, b, s)->waiting_retry = 0;
}

void tm_engine_disarm_all_timers(tm_live_t *l)
{
    tm_engine_disarm_timer(l, &l->timeout);
    tm_engine_disarm_timer(l, &l->lease_wait);
    for (size_t i = 0; i < l->tx.n_branches; i++)
        for (int k = 0; k < TM_SLOTS; k++)
            tm_engine_disarm_timer(l, retry_timer(l, (uint32_t)i, k));
}

void tm_engine_fit(tm_live_t *l)
{
    if (tm_live_fit(l, l->tx.n_branches) != 0)
        tm_exit_oom("runtime marks");
}

static void on_timeout(tm_timer_node_t *node)
{
    tm_live_t *l = node->owner;
    pthread_mutex_lock(&l->mu);
    if (l->finalized) {
        /* gone from this node's hands */
    } else if (tm_plan_timeout_resumes(&l->tx, &l->run)) {
        tm_log(TM_LOG_INFO, "event=%s gid=%s",
               tm_plan_is_message(&l->tx) ? "msg_check_due"
                                          : "workflow_resume_due",
               l->tx.gid);
        tm_engine_drive(l);
    } else if (tm_plan_on_timeout(&l->tx, tm_engine_wall(l->eng))) {
        tm_engine_log_rollback_decision(l);
        tm_engine_persist_change(l);
    } else if (tm_plan_pivot_decides(&l->tx)) {
        tm_log(TM_LOG_INFO,
               "event=timeout_ignored gid=%s reason=\"in its pivot's hands: "
               "only the pivot's own failure rolls it back\"",
               l->tx.gid);
    }
    pthread_mutex_unlock(&l->mu);
    tm_live_unref(l);
}

/* The timeout counts from the transaction's creation. Created here: on
 * the monotonic clock. Loaded from the store (restart, takeover): from the
 * stored wall-clock created_ms, the only time the row carries, so clock
 * skew between nodes moves it — the rule is that it never fires later
 * than a full timeout after the load, and never before the stored
 * deadline by this node's clock. */
void tm_engine_arm_timeout(tm_live_t *l)
{
    uint32_t t = l->tx.opts.timeout_to_fail_ms;
    if (!t || tm_tx_is_final(l->tx.status) || l->tx.status == TM_TX_ABORTING)
        return;
    int64_t in_ms;
    if (l->born_mono) {
        in_ms = l->born_mono + t - tm_engine_mono(l->eng);
    } else {
        in_ms = l->tx.created_ms + t - tm_engine_wall(l->eng);
        if (in_ms > (int64_t)t)
            in_ms = t;
    }
    l->timeout.fn = on_timeout;
    l->timeout.owner = l;
    tm_engine_arm_timer(l, &l->timeout, in_ms > 0 ? in_ms : 0);
}

/* ---- writes ------------------------------------------------------------- */

static void on_write_done(void *arg, tm_write_result_t result);

/* Capture the live's unsaved changes now and queue them with ticket t. */
static void queue_write(tm_live_t *l, tm_ticket_t *t)
{
    tm_write_t *w = tm_write_capture(&l->tx, &l->run, t->insert);
    if (!w)
        tm_exit_oom("storage write");
    tm_live_ref(l);
    l->eng->env.store_queue(l->eng->env.store, w, on_write_done, t);
}

void tm_engine_persist(tm_live_t *l, int insert, tm_rpc_t *rpc,
                       tm_answer_kind_t ack)
{
    assert(!l->finalized);
    tm_ticket_t *t = calloc(1, sizeof(*t));
    if (!t)
        tm_exit_oom("storage write");
    t->live = l;
    t->rpc = rpc;
    t->ack = rpc ? ack : TM_ACK_NONE;
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

void tm_engine_persist_change(tm_live_t *l)
{
    tm_tx_status_t outcome =
        tm_tx_is_final(l->tx.status) ? 0 : tm_plan_outcome(&l->tx, &l->run);
    if (outcome)
        tm_plan_finish(&l->tx, outcome, tm_engine_wall(l->eng));
    tm_engine_persist(l, 0, NULL, TM_ACK_NONE);
}

/* The write of t committed: answer its request. */
static void send_ack(const tm_ticket_t *t)
{
    tm_live_t *l = t->live;
    tm_engine_t *e = l->eng;
    if (t->ack == TM_ACK_NONE)
        return;
    if (t->ack == TM_ANSWER_START_WORKFLOW) { /* the insert: progress is new */
        tm_answer_t a = {.code = TM_CODE_OK,
                         .kind = TM_ANSWER_START_WORKFLOW,
                         .gid = l->tx.gid,
                         .status = t->status,
                         .trans = &l->tx,
                         .created = 1};
        tm_engine_answer(e, t->rpc, &a);
        return;
    }
    if (t->ack == TM_ANSWER_RETRY_NOW) { /* a stopped workflow restarted */
        tm_answer_t a = {.code = TM_CODE_OK,
                         .kind = TM_ANSWER_RETRY_NOW,
                         .gid = l->tx.gid,
                         .status = t->status,
                         .ops_called = 1};
        tm_engine_answer(e, t->rpc, &a);
        return;
    }
    if (t->ack == TM_ANSWER_BEGIN) {
        tm_engine_answer_begin(e, t->rpc, &l->tx);
        return;
    }
    const char *reason = t->ack == TM_ANSWER_FORCE_STOP ? l->tx.reason : NULL;
    tm_engine_answer_status(e, t->rpc, t->ack, l->tx.gid, t->status, reason);
}

/* Answer the request of a write the store refused, from what the store
 * holds. */
static void answer_refused(tm_live_t *l, const tm_ticket_t *t,
                           tm_write_result_t result)
{
    tm_engine_t *e = l->eng;
    int stored_first = result == TM_WRITE_EXISTS || result == TM_WRITE_FINAL;
    if (t->ack == TM_ANSWER_SUBMIT && stored_first)
        tm_engine_submit_stored(e, t->rpc, l->tx.gid, l->tx.submit_hash, 0);
    else if (t->ack == TM_ANSWER_PREPARE_MESSAGE && stored_first)
        tm_engine_prepare_message_stored(e, t->rpc, l->tx.gid,
                                         l->tx.submit_hash);
    else if (t->ack == TM_ANSWER_START_WORKFLOW && stored_first)
        tm_engine_start_workflow_stored(e, t->rpc, &l->tx);
    else if (t->ack == TM_ANSWER_BEGIN && result == TM_WRITE_EXISTS)
        tm_engine_fail(e, t->rpc, TM_CODE_ALREADY_EXISTS,
                       "gid %s already exists", l->tx.gid);
    else if (result == TM_WRITE_FINAL)
        tm_engine_fail(e, t->rpc, TM_CODE_FAILED_PRECONDITION,
                       "transaction %s is finished", l->tx.gid);
    else if (result == TM_WRITE_FAILED)
        tm_engine_fail_write(e, t->rpc, l->tx.gid);
    else
        tm_engine_fail_moved(e, t->rpc, l->tx.gid);
}

static void log_forgotten(const tm_live_t *l, tm_write_result_t result)
{
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
}

/* The store refused a write: another node owns the transaction (LOST),
 * its gid was stored before this request created it (EXISTS: a finished
 * transaction, or one another node drives), the stored row is final
 * (FINAL), or the database cannot store it (FAILED). Forget it here
 * without acting again — no calls, no timers, no writes — and answer
 * whoever waits on it, unless keep_waiters: they then stay on l for the
 * copy reloaded from the store (their own requests were stored; only a
 * later change was refused). Calls still on the wire are ignored when
 * they end. Returns 1 when it took the transaction out of the table: the
 * caller then drops the table's reference after unlocking. */
static int forget_lost(tm_live_t *l, tm_write_result_t result, int keep_waiters)
{
    tm_engine_t *e = l->eng;
    if (l->lost)
        return 0;
    l->lost = 1;
    log_forgotten(l, result);
    tm_waiter_t *w = keep_waiters ? NULL : tm_wait_take(l);
    int stored_first = result == TM_WRITE_EXISTS || result == TM_WRITE_FINAL;
    while (w) {
        tm_waiter_t *next = w->next;
        if (stored_first && w->kind == TM_WAIT_SUBMIT)
            tm_engine_submit_stored(e, w->rpc, l->tx.gid, l->tx.submit_hash, 1);
        else if (stored_first && w->kind == TM_WAIT_PREPARE_MESSAGE)
            tm_engine_prepare_message_stored(e, w->rpc, l->tx.gid,
                                             l->tx.submit_hash);
        else if (result == TM_WRITE_FAILED)
            tm_engine_fail_write(e, w->rpc, l->tx.gid);
        else
            tm_engine_fail_moved(e, w->rpc, l->tx.gid);
        free(w);
        w = next;
    }
    tm_engine_disarm_all_timers(l);
    if (l->finalized)
        return 0;
    l->finalized = 1;
    return tm_live_remove(&e->live, l);
}

/* The live's insert committed (queue the writes held behind it, in order:
 * the first carries every change made meanwhile) or was refused (answer
 * their requests and drop them: the live is forgotten). */
static void release_held(tm_live_t *l, tm_write_result_t result)
{
    l->inserting = 0;
    tm_ticket_t *t = l->held;
    l->held = l->held_tail = NULL;
    while (t) {
        tm_ticket_t *next = t->next;
        t->next = NULL;
        if (result == TM_WRITE_DONE) {
            queue_write(l, t);
        } else {
            if (t->ack != TM_ACK_NONE)
                answer_refused(l, t, result);
            l->pending_writes--;
            free(t);
        }
        t = next;
    }
}

/* The final state committed: tell the waiters and leave memory. */
static void finalize(tm_live_t *l)
{
    l->finalized = 1;
    tm_engine_disarm_timer(l, &l->timeout);
    tm_metrics_trans_finished(&l->tx); /* counted before anyone is told */
    tm_wait_answer_final(l);
    char trace[64];
    tm_log(TM_LOG_DEBUG, "event=finished gid=%s%s status=%s ms=%" PRId64,
           l->tx.gid,
           tm_trace_log_field(l->tx.opts.traceparent, trace, sizeof(trace)),
           tm_tx_status_name(l->tx.status),
           l->tx.finished_ms - l->tx.created_ms);
    if (tm_live_remove(&l->eng->live, l))
        tm_live_unref(l); /* the table's; the caller still holds one */
}

static void on_write_done(void *arg, tm_write_result_t result)
{
    tm_ticket_t *t = arg;
    tm_live_t *l = t->live;
    tm_engine_t *e = l->eng;
    pthread_mutex_lock(&l->mu);
    assert(l->pending_writes > 0);
    l->pending_writes--;
    if (t->insert)
        release_held(l, result);
    int unmapped = 0;
    /* A change the database refuses for good leaves the stored row as it
     * was: the transaction goes on from that row, not from this copy. */
    int reload = result == TM_WRITE_FAILED && !t->insert;
    if (result != TM_WRITE_DONE) {
        if (t->ack != TM_ACK_NONE)
            answer_refused(l, t, result);
        unmapped = forget_lost(l, result, reload);
    } else {
        send_ack(t);
    }
    if (l->pending_writes == 0 && !l->finalized) {
        if (tm_tx_is_final(l->tx.status)) {
            finalize(l);
        } else {
            tm_wait_answer_known(l); /* listeners are told after */
            tm_engine_drive(l);
        }
    }
    tm_parked_t *parked = tm_wait_take_parked_if_settled(l);
    pthread_mutex_unlock(&l->mu);
    if (unmapped && reload)
        tm_engine_reload_from_store(e, l);
    tm_wait_run_parked(parked);
    if (unmapped)
        tm_live_unref(l); /* the table's */
    tm_live_unref(l);
    free(t);
}

/* ---- planning and acting ------------------------------------------------ */

/* How long a transaction waits before trying again while this node's
 * leases are not surely valid (the store renews them in the background). */
#define LEASE_WAIT_MS 100

static void on_lease_wait(tm_timer_node_t *node)
{
    tm_live_t *l = node->owner;
    pthread_mutex_lock(&l->mu);
    tm_engine_drive(l);
    pthread_mutex_unlock(&l->mu);
    tm_live_unref(l);
}

static void stop_forward_retries(tm_live_t *l)
{
    for (size_t i = 0; i < l->tx.n_branches; i++)
        tm_engine_disarm_retry(l, (uint32_t)i, TM_SLOT_FORWARD);
}

void tm_engine_drive(tm_live_t *l)
{
    if (l->pending_writes > 0 || l->finalized || tm_tx_is_final(l->tx.status))
        return;
    if (!l->eng->env.store_lease_ok(l->eng->env.store)) {
        /* Another node may own it by now: act only once the lease is
         * confirmed (the store's lapsed hook re-checks with a write). */
        l->lease_wait.fn = on_lease_wait;
        l->lease_wait.owner = l;
        tm_engine_arm_timer(l, &l->lease_wait, LEASE_WAIT_MS);
        return;
    }
    if (l->tx.status == TM_TX_ABORTING)
        stop_forward_retries(l);
    size_t cap = l->tx.n_branches * TM_SLOTS;
    tm_op_ref_t small[48];
    tm_op_ref_t *refs = cap <= 48 ? small : malloc(cap * sizeof(*refs));
    if (!refs)
        tm_exit_oom("plan");
    size_t n = tm_plan_ready(&l->tx, &l->run, refs, cap);
    /* A call that cannot even start is applied at once (as unanswered),
     * and that may decide the outcome (a retry limit, a rollback): its
     * write is then pending, and the rest of this plan is stale. Stop;
     * the commit of that write plans again from durable state. */
    for (size_t i = 0; i < n && l->pending_writes == 0; i++)
        tm_engine_start_call(l, refs[i].branch, refs[i].slot);
    if (refs != small)
        free(refs);
    if (l->pending_writes > 0)
        return;
    tm_tx_status_t outcome = tm_plan_outcome(&l->tx, &l->run);
    if (outcome) {
        tm_plan_finish(&l->tx, outcome, tm_engine_wall(l->eng));
        tm_engine_persist(l, 0, NULL, TM_ACK_NONE);
    }
}

/* ---- lifecycle ---------------------------------------------------------- */

int tm_engine_new(const tm_engine_config_t *cfg, const tm_engine_env_t *env,
                  const tm_engine_front_t *front, tm_engine_t **out, char *err,
                  size_t errlen)
{
    tm_engine_t *e = calloc(1, sizeof(*e));
    if (e)
        e->batch = tm_batch_new(env->call_start, env->caller);
    if (!e || !e->batch || tm_live_table_init(&e->live) != 0) {
        if (e)
            tm_batch_free(e->batch);
        free(e);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e->cfg = *cfg;
    e->env = *env;
    e->front = *front;
    e->node_tag = (uint32_t)getpid() ^ (uint32_t)tm_engine_wall(e);
    *out = e;
    return 0;
}

void tm_engine_free(tm_engine_t *e)
{
    if (!e)
        return;
    tm_live_table_destroy(&e->live); /* live ones are left to the exit */
    tm_batch_free(e->batch);
    free(e);
}

const tm_engine_config_t *tm_engine_config(const tm_engine_t *e)
{
    return &e->cfg;
}

size_t tm_engine_live_count(tm_engine_t *e)
{
    return tm_live_count(&e->live);
}

unsigned tm_engine_waiters(tm_engine_t *e)
{
    return atomic_load(&e->n_waiters);
}

void tm_engine_new_gid(tm_engine_t *e, char *out, size_t outlen)
{
    unsigned n = atomic_fetch_add(&e->gid_counter, 1);
    snprintf(out, outlen, "%" PRIx64 "-%06x-%x", tm_engine_wall(e),
             e->node_tag & 0xffffff, n);
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
    return !tm_engine_draining(e) &&
           e->env.store_healthy(e->env.store, NULL, 0);
}

size_t tm_engine_wait_idle(tm_engine_t *e, uint32_t timeout_ms)
{
    return tm_live_wait_empty(&e->live, timeout_ms);
}
