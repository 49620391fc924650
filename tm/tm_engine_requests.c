/*
 * tm_engine_requests: what each request does to a transaction — on its
 * live copy (under its lock, once every write of it is durable: see
 * tm_wait_settle), or from the store when it is not in memory.
 *
 * A new transaction costs no read: Begin and Submit insert their copy into
 * the table under the table's lock (two requests for one new gid cannot
 * both create it), and the insert's write finds out whether the gid was
 * stored before (TM_WRITE_EXISTS); the request is then answered from the
 * store. Requests that act on a transaction not in memory read the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_engine_impl.h"
#include "tm_exit.h"
#include "tm_kind.h"
#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_request.h"

/* May a new transaction enter memory now? Under the table's lock. */
static int admit(void *engine, size_t count)
{
    tm_engine_t *e = engine;
    if (atomic_load(&e->draining))
        return FOUND_CLOSED;
    if (count >= e->cfg.max_inflight)
        return FOUND_FULL;
    return 0;
}

/* Answer a request for a new gid that admit refused. */
void tm_engine_fail_not_admitted(tm_engine_t *e, tm_rpc_t *rpc, tm_found_t f)
{
    if (f == FOUND_CLOSED)
        tm_engine_fail(e, rpc, TM_CODE_UNAVAILABLE,
                       "trellisd is shutting down: it takes no new "
                       "transactions; send this one to another node or retry "
                       "after the restart");
    else
        tm_engine_fail(e, rpc, TM_CODE_RESOURCE_EXHAUSTED,
                       "trellisd already drives %u unfinished transactions, "
                       "its max-inflight setting; retry later",
                       e->cfg.max_inflight);
}

/* Look gid up in memory. With create != NULL and the gid not in memory,
 * insert create (see the top of this file). Without create, look in the
 * store too (outside the table's lock). */
tm_found_t tm_engine_find_or_insert(tm_engine_t *e, const char *gid,
                                    tm_live_t **live, tm_live_t *create,
                                    char *err, size_t errlen)
{
    int rc = tm_live_find_or_insert(&e->live, gid, create, admit, e, live);
    if (rc == 1)
        return FOUND_LIVE;
    if (rc < 0)
        return (tm_found_t)-rc;
    if (create)
        return FOUND_NONE;
    tm_tx_status_t st;
    uint64_t h;
    int stored = e->env.store_peek(e->env.store, gid, &st, &h, err, errlen);
    if (stored == 1)
        return tm_tx_is_final(st) ? FOUND_STORED : FOUND_ELSEWHERE;
    return stored < 0 ? FOUND_ERROR : FOUND_NONE;
}

/* Answer a request that needs the transaction in memory when it is not. */
void tm_engine_fail_not_live(tm_engine_t *e, tm_rpc_t *rpc, tm_found_t f,
                             const char *gid, const char *err, const char *what)
{
    if (f == FOUND_STORED)
        tm_engine_fail(e, rpc, TM_CODE_FAILED_PRECONDITION,
                       "transaction %s is finished; %s", gid, what);
    else if (f == FOUND_ELSEWHERE)
        tm_engine_fail_moved(e, rpc, gid);
    else if (f == FOUND_NONE)
        tm_engine_fail(e, rpc, TM_CODE_NOT_FOUND, "no transaction with gid %s",
                       gid);
    else
        tm_engine_fail_storage(e, rpc, err);
}

/* Run act on l once it is settled; returns TM_ENGINE_AGAIN when l left
 * memory meanwhile. Drops the caller's reference to l. While this node's
 * lease is not sure (after a pause, or the database away) another node
 * may have claimed l and stored more than this copy holds, so the copy
 * answers nothing — not even a refusal or a repeat — until the lease
 * thread has confirmed or dropped it: UNAVAILABLE, as for a transaction
 * another node drives. */
int tm_engine_act_on_live(tm_live_t *l, const tm_engine_req_t *rq,
                          tm_on_live_fn act, const void *r)
{
    pthread_mutex_lock(&l->mu);
    tm_settle_t st = tm_wait_settle(l, rq);
    if (st == TM_LIVE_SETTLED && !l->eng->env.store_lease_ok(l->eng->env.store))
        tm_engine_fail_moved(l->eng, rq->rpc, l->tx.gid);
    else if (st == TM_LIVE_SETTLED)
        act(l, rq, r);
    pthread_mutex_unlock(&l->mu);
    tm_live_unref(l);
    return st == TM_LIVE_GONE ? TM_ENGINE_AGAIN : 0;
}

/* The common path of a request on a transaction in memory: refuse it
 * while the store fails to commit (refuse_failing), find gid, act on its
 * copy. Returns 0 or TM_ENGINE_AGAIN when it handled the request, or -1
 * when gid is not in memory: *f and err say where it is, and the caller
 * answers. */
int tm_engine_act_if_live(tm_engine_t *e, const tm_engine_req_t *rq,
                          const char *gid, int refuse_failing,
                          tm_on_live_fn act, const void *arg, tm_found_t *f,
                          char *err, size_t errlen)
{
    if (refuse_failing && tm_engine_refuse_if_store_failing(e, rq->rpc))
        return 0;
    tm_live_t *l = NULL;
    *f = tm_engine_find_or_insert(e, gid, &l, NULL, err, errlen);
    if (*f == FOUND_LIVE)
        return tm_engine_act_on_live(l, rq, act, arg);
    return -1;
}

/* Read gid from the store for an answer; NULL when it failed (answered
 * INTERNAL). The caller frees it. */
tm_trans_t *tm_engine_read_stored(tm_engine_t *e, tm_rpc_t *rpc,
                                  const char *gid)
{
    char err[256];
    tm_trans_t *tx = NULL;
    int found = e->env.store_get(e->env.store, gid, &tx, err, sizeof(err));
    if (found <= 0) {
        tm_engine_fail(e, rpc, TM_CODE_INTERNAL, "%s",
                       found < 0 ? err : "transaction vanished");
        return NULL;
    }
    return tx;
}

/* ---- Submit ------------------------------------------------------------- */

static int wants_wait(const Trellis__V1__SubmitRequest *r)
{
    return r->options && r->options->wait_result;
}

static void fail_not_submittable(tm_engine_t *e, tm_rpc_t *rpc,
                                 const tm_trans_t *tx)
{
    tm_engine_fail(e, rpc, TM_CODE_FAILED_PRECONDITION,
                   "transaction %s is %s (%s); it can no longer be submitted",
                   tx->gid, tm_tx_status_name(tx->status),
                   tx->reason ? tx->reason : "no reason recorded");
}

static void fail_submitted_differently(tm_engine_t *e, tm_rpc_t *rpc,
                                       const tm_trans_t *tx)
{
    tm_engine_fail(e, rpc, TM_CODE_ALREADY_EXISTS,
                   "gid %s was already submitted with different content "
                   "(status %s)",
                   tx->gid, tm_tx_status_name(tx->status));
}

/* A workflow decides to commit only with every step's result recorded
 * (an unrecorded step may or may not have run: committing it could
 * confirm a try that never froze anything), and takes no saga steps.
 * Returns 1 when it answered. */
static int refuse_workflow_submit(tm_live_t *l, tm_rpc_t *rpc,
                                  const Trellis__V1__SubmitRequest *r)
{
    const tm_trans_t *tx = &l->tx;
    if (!tm_plan_is_workflow(tx))
        return 0;
    int step = tm_plan_unrecorded_step(tx);
    if (r->n_steps > 0)
        tm_engine_fail(l->eng, rpc, TM_CODE_INVALID_ARGUMENT,
                       "transaction %s is a workflow: its steps are "
                       "registered and recorded as they run, not submitted",
                       tx->gid);
    else if (step >= 0)
        tm_engine_fail(l->eng, rpc, TM_CODE_FAILED_PRECONDITION,
                       "workflow %s cannot be submitted: step %s has no "
                       "recorded result (run the step again, or abort)",
                       tx->gid, tx->branches[step].branch_id);
    else
        return 0;
    return 1;
}

/* A commit that leaves nothing to call (a workflow or initiator-driven
 * transaction whose branches have no commit-side op: saga steps) is
 * finished in the decision's own write, as tm_engine_persist_change
 * finishes after an op's result: one durable write instead of SUBMITTED
 * and then SUCCEEDED in a second one after it. */
static void finish_if_done(tm_trans_t *tx, tm_run_t *run, int64_t now)
{
    tm_tx_status_t outcome = tm_plan_outcome(tx, run);
    if (outcome)
        tm_plan_finish(tx, outcome, now);
}

/* Submit on a transaction that is already in memory. */
static void submit_existing(tm_live_t *l, const tm_engine_req_t *rq,
                            const void *arg)
{
    const Trellis__V1__SubmitRequest *r = arg;
    tm_engine_t *e = l->eng;
    tm_trans_t *tx = &l->tx;
    uint64_t h = tm_request_submit_hash(r);
    if (tm_engine_submit_message(l, rq->rpc, r, wants_wait(r)))
        return;
    if (tx->status == TM_TX_PREPARED && tx->submit_hash == 0) {
        char err[512];
        if (refuse_workflow_submit(l, rq->rpc, r))
            return;
        if (tm_request_add_steps(tx, r, &e->cfg.limits, err, sizeof(err)) !=
            0) {
            tm_engine_fail(e, rq->rpc, TM_CODE_INVALID_ARGUMENT, "%s", err);
            return;
        }
        tm_engine_fit(l);
        int64_t now = tm_engine_wall(l->eng);
        tx->submit_hash = h;
        tx->status = TM_TX_SUBMITTED;
        tx->updated_ms = now;
        tm_plan_mark_initiator_ops_done(tx, &l->run, now);
        finish_if_done(tx, &l->run, now);
        if (wants_wait(r))
            tm_wait_add(l, rq->rpc, TM_WAIT_SUBMIT);
        tm_engine_persist(l, 0, wants_wait(r) ? NULL : rq->rpc,
                          TM_ANSWER_SUBMIT);
        return;
    }
    if (tx->submit_hash == h) {
        if (wants_wait(r) && !tm_tx_is_final(tx->status))
            tm_wait_add_or_answer(l, rq->rpc, TM_WAIT_SUBMIT);
        else
            tm_engine_answer_status(e, rq->rpc, TM_ANSWER_SUBMIT, tx->gid,
                                    tx->status, tx->reason);
        return;
    }
    if (tx->submit_hash == 0)
        fail_not_submittable(e, rq->rpc, tx);
    else
        fail_submitted_differently(e, rq->rpc, tx);
}

void tm_engine_submit_stored(tm_engine_t *e, tm_rpc_t *rpc, const char *gid,
                             uint64_t h, int wait)
{
    tm_trans_t *tx = tm_engine_read_stored(e, rpc, gid);
    if (!tx)
        return;
    if (tm_plan_is_message(tx) && tm_tx_is_final(tx->status))
        tm_engine_answer_status(e, rpc, TM_ANSWER_SUBMIT, gid, tx->status,
                                tx->reason); /* a message is submitted bare */
    else if (tm_plan_is_message(tx))
        tm_engine_fail_moved(e, rpc, gid);
    else if (tx->submit_hash == h && wait && !tm_tx_is_final(tx->status))
        tm_engine_fail_moved(e, rpc, gid); /* the result comes from there */
    else if (tx->submit_hash == h)
        tm_engine_answer_status(e, rpc, TM_ANSWER_SUBMIT, gid, tx->status,
                                tx->reason);
    else if (!tm_tx_is_final(tx->status))
        tm_engine_fail_moved(e, rpc, gid);
    else if (tx->submit_hash == 0)
        fail_not_submittable(e, rpc, tx);
    else
        fail_submitted_differently(e, rpc, tx);
    tm_trans_free(tx);
}

static tm_live_t *new_submitted(tm_engine_t *e,
                                const Trellis__V1__SubmitRequest *r, uint64_t h,
                                char *err, size_t errlen)
{
    tm_live_t *l = tm_live_new(e, r->gid, TM_TX_SUBMITTED, tm_engine_wall(e),
                               tm_engine_mono(e));
    if (!l || tm_options_from_proto(&l->tx.opts, r->options) != 0)
        tm_exit_oom("transaction");
    l->tx.submit_hash = h;
    if (tm_request_add_steps(&l->tx, r, &e->cfg.limits, err, errlen) != 0) {
        tm_live_unref(l);
        return NULL;
    }
    if (tm_request_add_listeners(&l->tx, r->options) != 0)
        tm_exit_oom("listeners");
    tm_engine_fit(l);
    return l;
}

/* A new gid: store and answer (now, or when final if the caller waits). */
static void submit_new(tm_live_t *l, tm_rpc_t *rpc,
                       const Trellis__V1__SubmitRequest *r)
{
    pthread_mutex_lock(&l->mu);
    tm_engine_log_created(l);
    if (wants_wait(r))
        tm_wait_add(l, rpc, TM_WAIT_SUBMIT);
    tm_engine_persist(l, 1, wants_wait(r) ? NULL : rpc, TM_ANSWER_SUBMIT);
    tm_engine_arm_timeout(l);
    pthread_mutex_unlock(&l->mu);
}

int tm_engine_submit(tm_engine_t *e, const tm_engine_req_t *rq,
                     const Trellis__V1__SubmitRequest *r)
{
    char err[512];
    if (tm_engine_refuse_if_store_failing(e, rq->rpc))
        return 0;
    uint64_t h = tm_request_submit_hash(r);
    /* Built before the lookup, so a new gid costs one lookup; a saga with
     * no steps can only submit a begun transaction. */
    tm_live_t *fresh = NULL;
    if (r->n_steps > 0) {
        fresh = new_submitted(e, r, h, err, sizeof(err));
        if (!fresh) {
            tm_engine_fail(e, rq->rpc, TM_CODE_INVALID_ARGUMENT, "%s", err);
            return 0;
        }
        tm_engine_take_trace(e, rq->rpc, &fresh->tx);
    }
    int again = 0;
    tm_live_t *l = NULL;
    tm_found_t f =
        tm_engine_find_or_insert(e, r->gid, &l, fresh, err, sizeof(err));
    if (f == FOUND_NONE && fresh)
        submit_new(fresh, rq->rpc, r);
    else if (f == FOUND_NONE)
        tm_engine_fail(e, rq->rpc, TM_CODE_NOT_FOUND,
                       "no transaction with gid %s, and steps is empty: a "
                       "saga needs at least one step (or Begin the "
                       "transaction first)",
                       r->gid);
    else if (f == FOUND_LIVE)
        again = tm_engine_act_on_live(l, rq, submit_existing, r);
    else if (f == FOUND_STORED || f == FOUND_ELSEWHERE)
        tm_engine_submit_stored(e, rq->rpc, r->gid, h, wants_wait(r));
    else if (f == FOUND_ERROR)
        tm_engine_fail_storage(e, rq->rpc, err);
    else
        tm_engine_fail_not_admitted(e, rq->rpc, f);
    if (fresh)
        tm_live_unref(fresh);
    return again;
}

/* ---- Begin -------------------------------------------------------------- */

/* What begin_existing compares: the transaction the repeat would have
 * made, and the branches it names. */
typedef struct {
    const tm_trans_t *asked;
    const Trellis__V1__BeginRequest *r;
} begin_repeat_t;

/* Every branch the Begin names is registered in tx with the same content. */
static int has_begin_branches(const tm_trans_t *tx,
                              const Trellis__V1__BeginRequest *r)
{
    for (size_t i = 0; i < r->n_branches; i++) {
        int at = tm_request_find_branch(tx, r->branches[i]->branch_id);
        if (at < 0 ||
            !tm_request_same_registration(&tx->branches[at], r->branches[i]))
            return 0;
    }
    return 1;
}

/* Begin for a gid in memory: a repeat of the Begin that created it is
 * answered like it; anything else already exists. */
static void begin_existing(tm_live_t *l, const tm_engine_req_t *rq,
                           const void *arg)
{
    const begin_repeat_t *rep = arg;
    if (l->tx.status == TM_TX_PREPARED &&
        tm_request_same_options(&l->tx.opts, &rep->asked->opts) &&
        tm_request_same_listeners(&l->tx, rep->asked) &&
        has_begin_branches(&l->tx, rep->r))
        tm_engine_answer_begin(l->eng, rq->rpc, &l->tx);
    else
        tm_engine_fail(l->eng, rq->rpc, TM_CODE_ALREADY_EXISTS,
                       "gid %s already exists (status %s)", l->tx.gid,
                       tm_tx_status_name(l->tx.status));
}

/* The branches a Begin registers, added to its new transaction in order
 * as RegisterBranch adds them (validation checked each). Returns 0, or -1
 * when rpc was answered: they would pass the branch limit together with
 * the listeners' event branches. */
static int add_begin_branches(tm_engine_t *e, tm_rpc_t *rpc, tm_trans_t *tx,
                              const Trellis__V1__BeginRequest *r)
{
    for (size_t i = 0; i < r->n_branches; i++) {
        if (tx->n_branches >= e->cfg.limits.max_branches) {
            tm_engine_fail(e, rpc, TM_CODE_INVALID_ARGUMENT,
                           "branches[%zu]: transaction %s would have more "
                           "than %u branches, the limit (its listeners' "
                           "events count too)",
                           i, r->gid, e->cfg.limits.max_branches);
            return -1;
        }
        if (tm_request_add_registered(tx, r->branches[i]) != 0)
            tm_exit_oom("branch");
    }
    return 0;
}

int tm_engine_begin(tm_engine_t *e, const tm_engine_req_t *rq,
                    const Trellis__V1__BeginRequest *r)
{
    char err[512];
    if (tm_engine_refuse_if_store_failing(e, rq->rpc))
        return 0;
    tm_live_t *fresh = tm_live_new(e, r->gid, TM_TX_PREPARED, tm_engine_wall(e),
                                   tm_engine_mono(e));
    if (!fresh || tm_options_from_proto(&fresh->tx.opts, r->options) != 0)
        tm_exit_oom("transaction");
    if (!fresh->tx.opts.timeout_to_fail_ms)
        fresh->tx.opts.timeout_to_fail_ms = e->cfg.prepared_timeout_ms;
    if (tm_request_add_listeners(&fresh->tx, r->options) != 0)
        tm_exit_oom("listeners");
    if (add_begin_branches(e, rq->rpc, &fresh->tx, r) != 0) {
        tm_live_unref(fresh);
        return 0;
    }
    tm_engine_take_trace(e, rq->rpc, &fresh->tx);
    tm_engine_fit(fresh);
    int again = 0;
    tm_live_t *l = NULL;
    tm_found_t f =
        tm_engine_find_or_insert(e, r->gid, &l, fresh, err, sizeof(err));
    if (f == FOUND_NONE) {
        pthread_mutex_lock(&fresh->mu);
        tm_engine_log_created(fresh);
        tm_engine_persist(fresh, 1, rq->rpc, TM_ANSWER_BEGIN);
        tm_engine_arm_timeout(fresh);
        pthread_mutex_unlock(&fresh->mu);
    } else if (f == FOUND_LIVE) {
        begin_repeat_t rep = {.asked = &fresh->tx, .r = r};
        again = tm_engine_act_on_live(l, rq, begin_existing, &rep);
    } else if (f == FOUND_STORED || f == FOUND_ELSEWHERE) {
        tm_engine_fail(e, rq->rpc, TM_CODE_ALREADY_EXISTS,
                       "gid %s already exists and is %s", r->gid,
                       f == FOUND_STORED ? "finished"
                                         : "driven by another trellisd node");
    } else if (f == FOUND_FULL || f == FOUND_CLOSED) {
        tm_engine_fail_not_admitted(e, rq->rpc, f);
    } else {
        tm_engine_fail_storage(e, rq->rpc, err);
    }
    tm_live_unref(fresh);
    return again;
}

/* ---- RegisterBranch ----------------------------------------------------- */

/* A branch that may not stand here (tm_request_misplaced). Returns 1
 * when it answered. */
static int refuse_misplaced(tm_live_t *l, tm_rpc_t *rpc,
                            const Trellis__V1__RegisterBranchRequest *r)
{
    char why[256];
    if (!tm_request_misplaced(&l->tx, r, why, sizeof(why)))
        return 0;
    tm_engine_fail(l->eng, rpc, TM_CODE_FAILED_PRECONDITION, "%s", why);
    return 1;
}

static void register_on(tm_live_t *l, const tm_engine_req_t *rq,
                        const void *arg)
{
    const Trellis__V1__RegisterBranchRequest *r = arg;
    tm_engine_t *e = l->eng;
    tm_trans_t *tx = &l->tx;
    int existing = tm_request_find_branch(tx, r->branch_id);
    if (existing >= 0) {
        if (tm_request_same_registration(&tx->branches[existing], r))
            tm_engine_answer_status(e, rq->rpc, TM_ANSWER_REGISTER, tx->gid,
                                    tx->status, NULL);
        else
            tm_engine_fail(e, rq->rpc, TM_CODE_ALREADY_EXISTS,
                           "branch %s of %s is already registered with "
                           "different content",
                           r->branch_id, tx->gid);
        return;
    }
    if (tx->status != TM_TX_PREPARED) {
        tm_engine_fail(e, rq->rpc, TM_CODE_FAILED_PRECONDITION,
                       "transaction %s is %s; branches can only be registered "
                       "while it is prepared",
                       tx->gid, tm_tx_status_name(tx->status));
        return;
    }
    if (refuse_misplaced(l, rq->rpc, r))
        return;
    if (tx->n_branches >= e->cfg.limits.max_branches) {
        tm_engine_fail(e, rq->rpc, TM_CODE_INVALID_ARGUMENT,
                       "transaction %s already has %zu branches, the limit",
                       tx->gid, tx->n_branches);
        return;
    }
    if (tm_request_add_registered(tx, r) != 0)
        tm_exit_oom("branch");
    tm_engine_fit(l);
    tx->updated_ms = tm_engine_wall(l->eng);
    tm_engine_persist(l, 0, rq->rpc, TM_ANSWER_REGISTER);
}

int tm_engine_register(tm_engine_t *e, const tm_engine_req_t *rq,
                       const Trellis__V1__RegisterBranchRequest *r)
{
    char err[512];
    tm_found_t f;
    int rc = tm_engine_act_if_live(e, rq, r->gid, 1, register_on, r, &f, err,
                                   sizeof(err));
    if (rc >= 0)
        return rc;
    tm_engine_fail_not_live(
        e, rq->rpc, f, r->gid, err,
        "branches can only be registered while it is prepared");
    return 0;
}

/* ---- Abort -------------------------------------------------------------- */

static void abort_live(tm_live_t *l, const tm_engine_req_t *rq, const void *arg)
{
    const Trellis__V1__AbortRequest *r = arg;
    tm_engine_t *e = l->eng;
    tm_trans_t *tx = &l->tx;
    if (tx->status == TM_TX_SUBMITTED && tm_plan_past_pivot(tx)) {
        tm_engine_fail(e, rq->rpc, TM_CODE_FAILED_PRECONDITION,
                       "transaction %s is past its pivot (step %s "
                       "succeeded): it only goes forward and cannot be "
                       "aborted",
                       tx->gid,
                       tx->branches[tm_plan_pivot_index(tx)].branch_id);
        return;
    }
    if (tx->status == TM_TX_SUBMITTED || tx->status == TM_TX_SUCCEEDED) {
        tm_engine_fail(e, rq->rpc, TM_CODE_FAILED_PRECONDITION,
                       "transaction %s is %s; only a prepared transaction can "
                       "be aborted",
                       tx->gid, tm_tx_status_name(tx->status));
        return;
    }
    if (tx->status == TM_TX_PREPARED) {
        char reason[TM_REASON_MAX + 32];
        snprintf(reason, sizeof(reason), "aborted by the initiator: %s",
                 r->reason && *r->reason ? r->reason : "no reason given");
        tm_plan_start_rollback(tx, reason, tm_engine_wall(l->eng));
        tm_engine_log_rollback_decision(l);
        if (r->wait_result)
            tm_wait_add(l, rq->rpc, TM_WAIT_ABORT);
        tm_engine_persist(l, 0, r->wait_result ? NULL : rq->rpc,
                          TM_ANSWER_ABORT);
        return;
    }
    if (r->wait_result && !tm_tx_is_final(tx->status))
        tm_wait_add_or_answer(l, rq->rpc, TM_WAIT_ABORT);
    else
        tm_engine_answer_status(e, rq->rpc, TM_ANSWER_ABORT, tx->gid,
                                tx->status, NULL);
}

int tm_engine_abort(tm_engine_t *e, const tm_engine_req_t *rq,
                    const Trellis__V1__AbortRequest *r)
{
    char err[512];
    tm_found_t f;
    int rc = tm_engine_act_if_live(e, rq, r->gid, 1, abort_live, r, &f, err,
                                   sizeof(err));
    if (rc >= 0)
        return rc;
    if (f == FOUND_STORED) {
        tm_tx_status_t st_stored = 0;
        uint64_t h;
        e->env.store_peek(e->env.store, r->gid, &st_stored, &h, err,
                          sizeof(err));
        if (st_stored == TM_TX_FAILED)
            tm_engine_answer_status(e, rq->rpc, TM_ANSWER_ABORT, r->gid,
                                    st_stored, NULL);
        else
            tm_engine_fail_not_live(e, rq->rpc, f, r->gid, err,
                                    "it cannot be aborted");
        return 0;
    }
    tm_engine_fail_not_live(e, rq->rpc, f, r->gid, err, "");
    return 0;
}

/* ---- Query and List ----------------------------------------------------- */

static void answer_query(tm_engine_t *e, tm_rpc_t *rpc, const tm_trans_t *tx)
{
    tm_answer_t a = {.code = TM_CODE_OK, .kind = TM_ANSWER_QUERY, .trans = tx};
    tm_engine_answer(e, rpc, &a);
}

void tm_engine_query(tm_engine_t *e, tm_rpc_t *rpc, const char *gid)
{
    /* Durable state only: a copy with a write pending (or one that left
     * memory), or any copy while this node's lease is not sure (another
     * node may have claimed it and moved on), is answered from the
     * store. */
    tm_live_t *l = tm_live_find(&e->live, gid);
    if (l) {
        pthread_mutex_lock(&l->mu);
        int settled = !l->finalized && !l->lost && l->pending_writes == 0 &&
                      e->env.store_lease_ok(e->env.store);
        if (settled)
            answer_query(e, rpc, &l->tx);
        pthread_mutex_unlock(&l->mu);
        tm_live_unref(l);
        if (settled)
            return;
    }
    char err[512];
    tm_trans_t *tx = NULL;
    int found = e->env.store_get(e->env.store, gid, &tx, err, sizeof(err));
    if (found == 1) {
        answer_query(e, rpc, tx);
        tm_trans_free(tx);
    } else if (found == 0) {
        tm_engine_fail(e, rpc, TM_CODE_NOT_FOUND, "no transaction with gid %s",
                       gid);
    } else {
        tm_engine_fail_storage(e, rpc, err);
    }
}

void tm_engine_list(tm_engine_t *e, tm_rpc_t *rpc,
                    const tm_store_filter_t *filter)
{
    char err[512];
    tm_trans_t **items = NULL;
    size_t n = 0;
    if (e->env.store_list(e->env.store, filter, &items, &n, err, sizeof(err)) !=
        0) {
        tm_engine_fail_storage(e, rpc, err);
        return;
    }
    tm_answer_t a = {.code = TM_CODE_OK,
                     .kind = TM_ANSWER_LIST,
                     .items = items,
                     .n_items = n,
                     .more = n > 0 && n == filter->limit};
    tm_engine_answer(e, rpc, &a);
    for (size_t i = 0; i < n; i++)
        tm_trans_free(items[i]);
    free(items);
}

/* ---- operator requests (trellisctl retry-now, force-stop) --------------- */

/* Answer a request for a live transaction that has left this node's
 * control (finished meanwhile, or owned by another node). Returns 1 when
 * it answered. */
static int fail_if_gone(tm_live_t *l, tm_rpc_t *rpc, const char *what)
{
    if (l->lost) {
        tm_engine_fail_moved(l->eng, rpc, l->tx.gid);
        return 1;
    }
    if (!l->finalized && !tm_tx_is_final(l->tx.status))
        return 0;
    tm_engine_fail(l->eng, rpc, TM_CODE_FAILED_PRECONDITION,
                   "transaction %s is %s; %s", l->tx.gid,
                   tm_tx_status_name(l->tx.status), what);
    return 1;
}

/* Every op waiting for its retry timer: disarm it, reset the backoff, and
 * plan at once. Returns how many ops were waiting. A timer that fired just
 * before (its callback waiting for the lock) still runs later and at worst
 * starts one extra call, which participants absorb. */
static uint32_t retry_waiting_ops(tm_live_t *l)
{
    uint32_t n = 0;
    if (tm_plan_restart_resume(&l->tx, &l->run)) { /* a waiting resume */
        tm_engine_disarm_retry(l, 0, TM_SLOT_FORWARD);
        n++;
    }
    for (size_t i = 0; i < l->tx.n_branches; i++)
        for (int k = 0; k < TM_SLOTS; k++) {
            tm_op_run_t *mark = tm_run_op(&l->run, i, k);
            if (!mark->waiting_retry)
                continue;
            tm_engine_disarm_retry(l, (uint32_t)i, k);
            mark->unknown_streak = 0;
            n++;
        }
    if (n)
        tm_engine_drive(l);
    return n;
}

/* A workflow whose resume was refused (stopped for the operator): its
 * resume is pending again, and that is written before the answer (one op
 * called) and before the call, which the commit's planning starts.
 * Returns 1 when it took the request. */
static int restart_stopped_workflow(tm_live_t *l, tm_rpc_t *rpc)
{
    const tm_op_t *resume = &l->tx.branches[0].ops[TM_SLOT_FORWARD];
    if (!tm_plan_is_workflow(&l->tx) || l->tx.status != TM_TX_PREPARED ||
        resume->status != TM_OP_FAILED)
        return 0;
    tm_plan_restart_resume(&l->tx, &l->run);
    tm_metrics_retry_now();
    tm_log(TM_LOG_INFO, "event=workflow_restarted gid=%s", l->tx.gid);
    tm_engine_persist(l, 0, rpc, TM_ANSWER_RETRY_NOW);
    return 1;
}

static void retry_now_live(tm_live_t *l, const tm_engine_req_t *rq,
                           const void *arg)
{
    (void)arg;
    if (fail_if_gone(l, rq->rpc, "there is nothing to retry"))
        return;
    if (restart_stopped_workflow(l, rq->rpc))
        return;
    uint32_t n = retry_waiting_ops(l);
    tm_metrics_retry_now();
    tm_log(TM_LOG_INFO, "event=retry_now gid=%s status=%s ops_called=%u",
           l->tx.gid, tm_tx_status_name(l->tx.status), n);
    tm_answer_t a = {.code = TM_CODE_OK,
                     .kind = TM_ANSWER_RETRY_NOW,
                     .gid = l->tx.gid,
                     .status = l->tx.status,
                     .ops_called = n};
    tm_engine_answer(l->eng, rq->rpc, &a);
}

int tm_engine_retry_now(tm_engine_t *e, const tm_engine_req_t *rq,
                        const char *gid)
{
    char err[512];
    tm_found_t f;
    int rc = tm_engine_act_if_live(e, rq, gid, 0, retry_now_live, NULL, &f, err,
                                   sizeof(err));
    if (rc >= 0)
        return rc;
    tm_engine_fail_not_live(e, rq->rpc, f, gid, err,
                            "there is nothing to retry");
    return 0;
}

static int is_force_stopped(const tm_trans_t *tx)
{
    return tx->status == TM_TX_FAILED && tx->reason &&
           strncmp(tx->reason, TM_FORCE_STOP_PREFIX,
                   sizeof(TM_FORCE_STOP_PREFIX) - 1) == 0;
}

/* Disarm every timer of the transaction; ops that were tried without a
 * final answer are marked dirty, so their attempts and last error are
 * stored with the final status (as SKIPPED) for the operator. */
static void stop_timers_keep_attempts(tm_live_t *l)
{
    tm_engine_disarm_timer(l, &l->timeout);
    for (size_t i = 0; i < l->tx.n_branches; i++)
        for (int k = 0; k < TM_SLOTS; k++) {
            const tm_op_t *op = &l->tx.branches[i].ops[k];
            tm_engine_disarm_retry(l, (uint32_t)i, k);
            if (op->kind != TM_KIND_NONE && op->status == TM_OP_PENDING &&
                op->attempts > 0)
                tm_run_op(&l->run, i, k)->dirty = 1;
        }
}

/* Mark the transaction FAILED with the operator's reason and answer once
 * that is committed. Nothing is called again: drive plans nothing for a
 * final transaction, and a late result is ignored. */
static void force_stop_live(tm_live_t *l, const tm_engine_req_t *rq,
                            const void *arg)
{
    const char *why = arg;
    tm_trans_t *tx = &l->tx;
    if (is_force_stopped(tx)) { /* settled: the stop is durable */
        tm_engine_answer_status(l->eng, rq->rpc, TM_ANSWER_FORCE_STOP, tx->gid,
                                tx->status, tx->reason);
        return;
    }
    if (fail_if_gone(l, rq->rpc,
                     "only an unfinished transaction can be force-stopped"))
        return;
    char reason[TM_REASON_MAX + sizeof(TM_FORCE_STOP_PREFIX)];
    char q[sizeof(reason) + 64];
    snprintf(reason, sizeof(reason), TM_FORCE_STOP_PREFIX "%s", why);
    tm_tx_status_t before = tx->status;
    stop_timers_keep_attempts(l);
    if (tm_set_string(&tx->reason, reason) != 0)
        tm_exit_oom("reason");
    tm_plan_finish(tx, TM_TX_FAILED, tm_engine_wall(l->eng));
    tm_metrics_force_stopped();
    tm_log(TM_LOG_WARN, "event=force_stopped gid=%s was=%s reason=\"%s\"",
           tx->gid, tm_tx_status_name(before),
           tm_log_quote(reason, q, sizeof(q)));
    tm_engine_persist(l, 0, rq->rpc, TM_ANSWER_FORCE_STOP);
}

/* ForceStop of a transaction only in the store: repeat the answer if it
 * was force-stopped, refuse otherwise. */
static void force_stop_stored(tm_engine_t *e, tm_rpc_t *rpc, const char *gid)
{
    tm_trans_t *tx = tm_engine_read_stored(e, rpc, gid);
    if (!tx)
        return;
    if (is_force_stopped(tx))
        tm_engine_answer_status(e, rpc, TM_ANSWER_FORCE_STOP, gid, tx->status,
                                tx->reason);
    else
        tm_engine_fail(e, rpc, TM_CODE_FAILED_PRECONDITION,
                       "transaction %s is already %s; only an unfinished "
                       "transaction can be force-stopped",
                       gid, tm_tx_status_name(tx->status));
    tm_trans_free(tx);
}

int tm_engine_force_stop(tm_engine_t *e, const tm_engine_req_t *rq,
                         const char *gid, const char *reason)
{
    char err[512];
    tm_found_t f;
    int rc = tm_engine_act_if_live(e, rq, gid, 1, force_stop_live, reason, &f,
                                   err, sizeof(err));
    if (rc >= 0)
        return rc;
    if (f == FOUND_STORED)
        force_stop_stored(e, rq->rpc, gid);
    else
        tm_engine_fail_not_live(e, rq->rpc, f, gid, err, "");
    return 0;
}
