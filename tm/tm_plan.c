/*
 * tm_plan: the engine's decision rules as pure functions (see tm_plan.h).
 */
#include "tm_plan.h"

#include "tm_kind.h"
#include "tm_validate.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* gRPC status codes this file needs, by number, to stay free of gRPC. */
enum { ST_OK = 0, ST_FAILED_PRECONDITION = 9, ST_ABORTED = 10 };

tm_result_t tm_plan_classify(int grpc_status)
{
    switch (grpc_status) {
    case ST_OK:
        return TM_RESULT_OK;
    case ST_ABORTED:
        return TM_RESULT_FAILURE;
    case ST_FAILED_PRECONDITION:
        return TM_RESULT_ONGOING;
    default:
        return TM_RESULT_UNKNOWN;
    }
}

uint32_t tm_plan_backoff_ms(uint32_t base_ms, uint32_t streak, uint32_t cap_ms)
{
    if (base_ms == 0)
        base_ms = 1;
    uint64_t d = base_ms;
    for (uint32_t i = 1; i < streak && d < cap_ms; i++)
        d *= 2;
    return d > cap_ms ? cap_ms : (uint32_t)d;
}

static int op_idle(const tm_run_t *run, size_t b, int slot)
{
    const tm_op_run_t *o = tm_run_op(run, b, slot);
    return !o->inflight && !o->waiting_retry;
}

static int forward_inflight(const tm_run_t *run, size_t b)
{
    return tm_run_op(run, b, TM_SLOT_FORWARD)->inflight;
}

static int forward_succeeded(const tm_branch_t *b)
{
    return b->ops[TM_SLOT_FORWARD].kind == TM_KIND_NONE ||
           b->ops[TM_SLOT_FORWARD].status == TM_OP_SUCCEEDED;
}

/* A workflow went on past a step whose forward op it recorded as a
 * business failure: on commit that step is rolled back, never committed.
 * Only a workflow's recorded steps can be FAILED while initiator-driven
 * (other initiators' ops are marked done at Submit). */
static int failed_by_record(const tm_branch_t *b)
{
    return b->initiator_driven &&
           b->ops[TM_SLOT_FORWARD].status == TM_OP_FAILED;
}

static int runs_last(const tm_branch_t *b)
{
    const tm_kind_t *k = tm_kind_find(b->mode);
    return k && k->runs_last;
}

static int after_outcome(const tm_branch_t *b)
{
    const tm_kind_t *k = tm_kind_find(b->mode);
    return k && k->after_outcome;
}

static int reports_branch(const tm_branch_t *b)
{
    const tm_kind_t *k = tm_kind_find(b->mode);
    return k && k->reports_branch;
}

static int deps_succeeded(const tm_trans_t *tx, const tm_branch_t *b)
{
    for (size_t d = 0; d < b->n_deps; d++)
        if (!forward_succeeded(&tx->branches[b->deps[d]]))
            return 0;
    return 1;
}

/* Every prerequisite succeeded while the transaction was still going
 * forward, so the TM may have called this branch. */
static int deps_succeeded_in_time(const tm_trans_t *tx, const tm_branch_t *b)
{
    for (size_t d = 0; d < b->n_deps; d++) {
        const tm_branch_t *dep = &tx->branches[b->deps[d]];
        if (!forward_succeeded(dep) || dep->ops[TM_SLOT_FORWARD].late)
            return 0;
    }
    return 1;
}

int tm_plan_forward_done(const tm_trans_t *tx)
{
    for (size_t i = 0; i < tx->n_branches; i++)
        if (!forward_succeeded(&tx->branches[i]) &&
            !failed_by_record(&tx->branches[i]))
            return 0;
    return 1;
}

/* The op a committing transaction runs for branch b in phase 2: the
 * commit-side op, or the rollback-side op of a step recorded as failed. */
static tm_slot_t commit_phase_slot(const tm_branch_t *b)
{
    return failed_by_record(b) ? TM_SLOT_ROLLBACK : TM_SLOT_COMMIT;
}

static int after_outcome(const tm_branch_t *b);

/* Every branch but `but` has its commit-phase op done (or has none);
 * after_outcome branches (listeners) only count unless skip_after: a
 * runs_last branch never waits for them, nor they for each other. */
static int others_committed(const tm_trans_t *tx, size_t but, int skip_after)
{
    for (size_t i = 0; i < tx->n_branches; i++) {
        const tm_branch_t *b = &tx->branches[i];
        const tm_op_t *op = &b->ops[commit_phase_slot(b)];
        if (i != but && op->kind != TM_KIND_NONE &&
            op->status != TM_OP_SUCCEEDED && !(skip_after && after_outcome(b)))
            return 0;
    }
    return 1;
}

/* Whether the branch's forward op may have run, judged only from state that
 * is durable whenever the engine plans (see tm_plan.h). */
static int may_have_run(const tm_trans_t *tx, const tm_branch_t *b)
{
    if (b->initiator_driven || reports_branch(b))
        return 1; /* a branch event is told on either side, always */
    return deps_succeeded_in_time(tx, b);
}

int tm_plan_may_have_run(const tm_trans_t *tx, size_t i)
{
    assert(i < tx->n_branches);
    return may_have_run(tx, &tx->branches[i]);
}

tm_slot_t tm_plan_side_slot(const tm_branch_t *b, int committing)
{
    return committing ? commit_phase_slot(b) : TM_SLOT_ROLLBACK;
}

static int depends_on(const tm_branch_t *b, size_t i)
{
    for (size_t d = 0; d < b->n_deps; d++)
        if (b->deps[d] == i)
            return 1;
    return 0;
}

/* j depends on i and is not after_outcome: a branch event depends on the
 * branch it reports but waits for it, never the other way round. */
static int blocks(const tm_branch_t *j, size_t i)
{
    return depends_on(j, i) && !after_outcome(j);
}

/* settled[i]: branch i and everything that depends on it are rolled back
 * or never ran, and none of their forward ops is on the wire. Dependents
 * always have larger indexes, so one backwards pass computes it. */
static void compute_settled(const tm_trans_t *tx, const tm_run_t *run,
                            unsigned char *settled)
{
    for (size_t k = tx->n_branches; k-- > 0;) {
        const tm_branch_t *b = &tx->branches[k];
        const tm_op_t *rb = &b->ops[TM_SLOT_ROLLBACK];
        int own = !forward_inflight(run, k) &&
                  (!may_have_run(tx, b) || rb->kind == TM_KIND_NONE ||
                   rb->status == TM_OP_SUCCEEDED);
        for (size_t j = k + 1; own && j < tx->n_branches; j++)
            if (blocks(&tx->branches[j], k) && !settled[j])
                own = 0;
        settled[k] = (unsigned char)own;
    }
}

static int dependents_settled(const tm_trans_t *tx, size_t i,
                              const unsigned char *settled)
{
    for (size_t j = i + 1; j < tx->n_branches; j++)
        if (blocks(&tx->branches[j], i) && !settled[j])
            return 0;
    return 1;
}

/* Branch r is settled on the side the transaction takes: committing, its
 * forward op final and its commit-phase op done or absent (a message's
 * deliveries, never undone once it is submitted, need not wait for the
 * others); rolling back, its forward op off the wire and its
 * rollback-side op done, absent, or never to run. Judged from durable
 * state only, as the rest of the plan. */
static int branch_settled(const tm_trans_t *tx, const tm_run_t *run, size_t r)
{
    const tm_branch_t *b = &tx->branches[r];
    if (tx->status == TM_TX_SUBMITTED) {
        const tm_op_t *cm = &b->ops[commit_phase_slot(b)];
        return (forward_succeeded(b) || failed_by_record(b)) &&
               (tm_plan_forward_done(tx) || tm_plan_is_message(tx)) &&
               (cm->kind == TM_KIND_NONE || cm->status == TM_OP_SUCCEEDED);
    }
    const tm_op_t *rb = &b->ops[TM_SLOT_ROLLBACK];
    return tx->status == TM_TX_ABORTING && !forward_inflight(run, r) &&
           (!may_have_run(tx, b) || rb->kind == TM_KIND_NONE ||
            rb->status == TM_OP_SUCCEEDED);
}

/* A branch event waits for the branch it reports; any other branch is
 * not held back here. */
static int report_due(const tm_trans_t *tx, const tm_run_t *run,
                      const tm_branch_t *b)
{
    return !reports_branch(b) ||
           (b->n_deps == 1 && branch_settled(tx, run, b->deps[0]));
}

/* Every branch but `but` is settled, after_outcome ones aside (see
 * others_committed). */
static int others_settled(const tm_trans_t *tx, size_t but,
                          const unsigned char *settled)
{
    for (size_t j = 0; j < tx->n_branches; j++)
        if (j != but && !settled[j] && !after_outcome(&tx->branches[j]))
            return 0;
    return 1;
}

static size_t push_ref(tm_op_ref_t *out, size_t n, size_t max, size_t branch,
                       tm_slot_t slot)
{
    if (n < max) {
        out[n].branch = (uint32_t)branch;
        out[n].slot = slot;
    }
    return n + 1;
}

static size_t ready_when_submitted(const tm_trans_t *tx, const tm_run_t *run,
                                   tm_op_ref_t *out, size_t max)
{
    size_t n = 0;
    int all_forward = tm_plan_forward_done(tx);
    for (size_t i = 0; i < tx->n_branches; i++) {
        const tm_branch_t *b = &tx->branches[i];
        const tm_op_t *fw = &b->ops[TM_SLOT_FORWARD];
        tm_slot_t s = commit_phase_slot(b);
        const tm_op_t *cm = &b->ops[s];
        if (fw->kind != TM_KIND_NONE && !b->initiator_driven &&
            fw->status == TM_OP_PENDING && op_idle(run, i, TM_SLOT_FORWARD) &&
            deps_succeeded(tx, b))
            n = push_ref(out, n, max, i, TM_SLOT_FORWARD);
        if ((all_forward || reports_branch(b)) && cm->kind != TM_KIND_NONE &&
            cm->status == TM_OP_PENDING && op_idle(run, i, s) &&
            (!runs_last(b) || others_committed(tx, i, 1)) &&
            report_due(tx, run, b))
            n = push_ref(out, n, max, i, s);
    }
    return n;
}

static size_t ready_when_aborting(const tm_trans_t *tx, const tm_run_t *run,
                                  tm_op_ref_t *out, size_t max)
{
    unsigned char small[64];
    unsigned char *settled =
        tx->n_branches <= sizeof(small) ? small : malloc(tx->n_branches);
    if (!settled)
        return 0; /* out of memory: plan again on the next event */
    compute_settled(tx, run, settled);
    size_t n = 0;
    for (size_t i = 0; i < tx->n_branches; i++) {
        const tm_branch_t *b = &tx->branches[i];
        const tm_op_t *rb = &b->ops[TM_SLOT_ROLLBACK];
        if (rb->kind != TM_KIND_NONE && rb->status == TM_OP_PENDING &&
            op_idle(run, i, TM_SLOT_ROLLBACK) && !forward_inflight(run, i) &&
            may_have_run(tx, b) && dependents_settled(tx, i, settled) &&
            (!runs_last(b) || others_settled(tx, i, settled)) &&
            report_due(tx, run, b))
            n = push_ref(out, n, max, i, TM_SLOT_ROLLBACK);
    }
    if (settled != small)
        free(settled);
    return n;
}

/* A workflow is resumed and a message back-checked when a prepared one
 * times out: its head's op is called instead of a rollback. */
static int head_acts_on_timeout(const tm_trans_t *tx)
{
    return tm_plan_is_workflow(tx) || tm_plan_is_message(tx);
}

size_t tm_plan_ready(const tm_trans_t *tx, const tm_run_t *run,
                     tm_op_ref_t *out, size_t max)
{
    assert(run->cap >= tx->n_branches);
    size_t n = 0;
    if (tx->status == TM_TX_SUBMITTED)
        n = ready_when_submitted(tx, run, out, max);
    else if (tx->status == TM_TX_ABORTING)
        n = ready_when_aborting(tx, run, out, max);
    else if (tx->status == TM_TX_PREPARED && run->resume_due &&
             head_acts_on_timeout(tx) &&
             tx->branches[0].ops[TM_SLOT_FORWARD].status == TM_OP_PENDING &&
             tx->branches[0].ops[TM_SLOT_FORWARD].target &&
             op_idle(run, 0, TM_SLOT_FORWARD))
        n = push_ref(out, n, max, 0, TM_SLOT_FORWARD);
    return n < max ? n : max;
}

/* Every branch is settled (compute_settled); after_outcome ones
 * (listeners) count only unless skip_after. */
static int all_settled(const tm_trans_t *tx, const tm_run_t *run,
                       int skip_after)
{
    unsigned char small[64];
    unsigned char *settled =
        tx->n_branches <= sizeof(small) ? small : malloc(tx->n_branches);
    if (!settled)
        return 0;
    compute_settled(tx, run, settled);
    int all = 1;
    for (size_t i = 0; all && i < tx->n_branches; i++)
        all = settled[i] || (skip_after && after_outcome(&tx->branches[i]));
    if (settled != small)
        free(settled);
    return all;
}

tm_tx_status_t tm_plan_outcome_known(const tm_trans_t *tx, const tm_run_t *run)
{
    assert(run->cap >= tx->n_branches);
    if (tm_tx_is_final(tx->status))
        return tx->status;
    if (tx->status == TM_TX_SUBMITTED)
        return tm_plan_forward_done(tx) &&
                       others_committed(tx, tx->n_branches, 1)
                   ? TM_TX_SUCCEEDED
                   : 0;
    if (tx->status == TM_TX_ABORTING)
        return all_settled(tx, run, 1) ? TM_TX_FAILED : 0;
    return 0;
}

tm_tx_status_t tm_plan_outcome(const tm_trans_t *tx, const tm_run_t *run)
{
    assert(run->cap >= tx->n_branches);
    if (tx->status == TM_TX_SUBMITTED) {
        if (!tm_plan_forward_done(tx))
            return 0;
        return others_committed(tx, tx->n_branches, 0) ? TM_TX_SUCCEEDED : 0;
    }
    if (tx->status == TM_TX_ABORTING)
        return all_settled(tx, run, 0) ? TM_TX_FAILED : 0;
    return 0;
}

int tm_plan_start_rollback(tm_trans_t *tx, const char *reason, int64_t now_ms)
{
    if (tx->status != TM_TX_PREPARED && tx->status != TM_TX_SUBMITTED)
        return 0;
    tx->status = TM_TX_ABORTING;
    tx->updated_ms = now_ms;
    tm_set_string(&tx->reason, reason);
    return 1;
}

int tm_plan_is_workflow(const tm_trans_t *tx)
{
    if (tx->n_branches == 0)
        return 0;
    const tm_kind_t *k = tm_kind_find(tx->branches[0].mode);
    return k && k->resumes;
}

int tm_plan_is_message(const tm_trans_t *tx)
{
    if (tx->n_branches == 0)
        return 0;
    const tm_kind_t *k = tm_kind_find(tx->branches[0].mode);
    return k && k->checks;
}

int tm_plan_timeout_resumes(const tm_trans_t *tx, tm_run_t *run)
{
    if (tx->status != TM_TX_PREPARED || !head_acts_on_timeout(tx))
        return 0;
    run->resume_due = 1;
    return 1;
}

static int is_forward_only(const tm_branch_t *b)
{
    const tm_kind_t *k = tm_kind_find(b->mode);
    return k && k->forward_only;
}

/* Every forward op not yet succeeded only goes forward: the decision
 * cannot be taken back. */
static int only_forward_only_left(const tm_trans_t *tx)
{
    for (size_t i = 0; i < tx->n_branches; i++)
        if (!forward_succeeded(&tx->branches[i]) &&
            !is_forward_only(&tx->branches[i]))
            return 0;
    return 1;
}

int tm_plan_pivot_index(const tm_trans_t *tx)
{
    for (size_t i = 0; i < tx->n_branches; i++)
        if (tx->branches[i].pivot)
            return (int)i;
    return -1;
}

int tm_plan_past_pivot(const tm_trans_t *tx)
{
    int p = tm_plan_pivot_index(tx);
    if (p < 0)
        return 0;
    const tm_op_t *fw = &tx->branches[p].ops[TM_SLOT_FORWARD];
    return fw->status == TM_OP_SUCCEEDED && !fw->late;
}

int tm_plan_pivot_decides(const tm_trans_t *tx)
{
    int p = tm_plan_pivot_index(tx);
    return p >= 0 && tx->status == TM_TX_SUBMITTED &&
           deps_succeeded(tx, &tx->branches[p]);
}

int tm_plan_on_timeout(tm_trans_t *tx, int64_t now_ms)
{
    if (tx->status == TM_TX_SUBMITTED &&
        (tm_plan_forward_done(tx) || only_forward_only_left(tx)))
        return 0; /* decided to commit: phase 2 has no timeout */
    if (tm_plan_pivot_decides(tx))
        return 0; /* the pivot's own answer decides, nothing else */
    if (tx->status == TM_TX_PREPARED && head_acts_on_timeout(tx))
        return 0; /* resumed or checked instead: tm_plan_timeout_resumes */
    char reason[96];
    snprintf(reason, sizeof(reason), "timeout: not done %u ms after it began",
             tx->opts.timeout_to_fail_ms);
    return tm_plan_start_rollback(tx, reason, now_ms);
}

/* Not marked dirty: storage derives SKIPPED for the pending ops of a
 * finished transaction, which saves writing them. */
static void finish_op(tm_op_t *op)
{
    if (op->kind != TM_KIND_NONE && op->status == TM_OP_PENDING)
        op->status = TM_OP_SKIPPED;
}

void tm_plan_finish(tm_trans_t *tx, tm_tx_status_t final, int64_t now_ms)
{
    tx->status = final;
    tx->finished_ms = now_ms;
    tx->updated_ms = now_ms;
    for (size_t i = 0; i < tx->n_branches; i++)
        for (int s = 0; s < TM_SLOTS; s++)
            finish_op(&tx->branches[i].ops[s]);
}

void tm_plan_mark_initiator_ops_done(tm_trans_t *tx, tm_run_t *run,
                                     int64_t now_ms)
{
    assert(run->cap >= tx->n_branches);
    for (size_t i = 0; i < tx->n_branches; i++) {
        tm_branch_t *b = &tx->branches[i];
        tm_op_t *fw = &b->ops[TM_SLOT_FORWARD];
        if (b->initiator_driven && fw->status == TM_OP_PENDING) {
            fw->status = TM_OP_SUCCEEDED;
            fw->finished_ms = now_ms;
            tm_run_op(run, i, TM_SLOT_FORWARD)->dirty = 1;
        }
    }
}

static void set_error(tm_op_t *op, const char *prefix, const char *msg)
{
    char buf[TM_REASON_MAX + 128];
    snprintf(buf, sizeof(buf), "%s%s", prefix, msg && *msg ? msg : "");
    tm_set_string(&op->last_error, buf);
}

static void op_succeeded(tm_op_t *op, tm_op_run_t *o, int64_t now_ms)
{
    op->status = TM_OP_SUCCEEDED;
    op->finished_ms = now_ms;
    o->unknown_streak = 0;
    o->dirty = 1;
}

/* Why an op that must succeed answering ABORTED is a participant bug, as
 * last_error says it. */
static const char why_phase2[] =
    "participant answered ABORTED to a phase-2 op: ";
static const char why_message[] =
    "participant answered ABORTED to a step that cannot fail (a message is "
    "delivered until it succeeds): ";
static const char why_past_pivot[] =
    "participant answered ABORTED to a step that cannot fail (it comes "
    "after the pivot, which succeeded: the saga only goes forward): ";

/* An op that must succeed — a phase-2 op, a forward-only op (a message
 * step), a saga step past its pivot — answered: it is retried until it
 * succeeds, whatever it says; a business failure is a participant bug
 * (why says so in last_error), alerted, as is the retry limit. */
static tm_effect_t must_succeed_result(tm_op_t *op, tm_op_run_t *o,
                                       tm_result_t result, const char *msg,
                                       const char *why,
                                       const tm_retry_policy_t *p,
                                       int64_t now_ms)
{
    tm_effect_t e = {0, -1, 0};
    switch (result) {
    case TM_RESULT_OK:
        op_succeeded(op, o, now_ms);
        e.changed = 1;
        return e;
    case TM_RESULT_ONGOING:
        set_error(op, "ongoing: ", msg);
        o->unknown_streak = 0;
        e.retry_in_ms = p->retry_interval_ms;
        return e;
    case TM_RESULT_FAILURE:
        set_error(op, why, msg);
        e.alert = 1;
        break;
    case TM_RESULT_UNKNOWN:
        set_error(op, "", msg);
        e.alert = p->retry_limit && op->attempts >= p->retry_limit;
        break;
    }
    o->unknown_streak++;
    e.retry_in_ms = tm_plan_backoff_ms(p->retry_interval_ms, o->unknown_streak,
                                       p->max_backoff_ms);
    return e;
}

/* A message's back-check answered. Only a prepared message is decided by
 * it; once the initiator's Submit or Abort came (even during the call)
 * the answer changes nothing. */
static tm_effect_t check_result(tm_trans_t *tx, tm_op_t *op, tm_op_run_t *o,
                                tm_result_t result, const char *msg,
                                const tm_retry_policy_t *p, int64_t now_ms)
{
    tm_effect_t e = {0, -1, 0};
    char reason[TM_REASON_MAX + 128];
    if (tx->status != TM_TX_PREPARED)
        return e;
    switch (result) {
    case TM_RESULT_OK: /* committed: deliver */
        op_succeeded(op, o, now_ms);
        tx->status = TM_TX_SUBMITTED;
        e.changed = 1;
        return e;
    case TM_RESULT_FAILURE: /* not committed, and now it never will */
        op->status = TM_OP_FAILED;
        op->finished_ms = now_ms;
        o->dirty = 1;
        set_error(op, "not committed: ", msg);
        snprintf(reason, sizeof(reason),
                 "back-check: the initiator's local transaction did not "
                 "commit%s%s",
                 msg && *msg ? ": " : "", msg && *msg ? msg : "");
        tm_plan_start_rollback(tx, reason, now_ms);
        e.changed = 1;
        return e;
    case TM_RESULT_ONGOING:
        set_error(op, "ongoing: ", msg);
        o->unknown_streak = 0;
        e.retry_in_ms = p->retry_interval_ms;
        return e;
    case TM_RESULT_UNKNOWN:
        set_error(op, "", msg);
        break;
    }
    o->unknown_streak++;
    e.retry_in_ms = tm_plan_backoff_ms(p->retry_interval_ms, o->unknown_streak,
                                       p->max_backoff_ms);
    e.alert = p->retry_limit && op->attempts >= p->retry_limit;
    return e;
}

static tm_effect_t forward_result(tm_trans_t *tx, size_t branch, tm_op_t *op,
                                  tm_op_run_t *o, tm_result_t result,
                                  const char *msg, const tm_retry_policy_t *p,
                                  int64_t now_ms)
{
    tm_effect_t e = {0, -1, 0};
    int deciding = tx->status == TM_TX_SUBMITTED;
    char reason[TM_REASON_MAX + 128];
    switch (result) {
    case TM_RESULT_OK:
        op_succeeded(op, o, now_ms);
        op->late = !deciding;
        e.changed = 1;
        break;
    case TM_RESULT_FAILURE:
        op->status = TM_OP_FAILED;
        op->finished_ms = now_ms;
        o->dirty = 1;
        set_error(op, "business failure: ", msg);
        snprintf(reason, sizeof(reason), "branch %s %s failed: %s",
                 tx->branches[branch].branch_id, tm_op_kind_name(op->kind),
                 msg && *msg ? msg : "ABORTED");
        tm_plan_start_rollback(tx, reason, now_ms);
        e.changed = 1;
        break;
    case TM_RESULT_ONGOING:
        set_error(op, "ongoing: ", msg);
        o->unknown_streak = 0;
        if (deciding)
            e.retry_in_ms = p->retry_interval_ms;
        break;
    case TM_RESULT_UNKNOWN:
        set_error(op, "", msg);
        o->unknown_streak++;
        if (!deciding)
            break;
        if (p->retry_limit && op->attempts >= p->retry_limit &&
            tx->branches[branch].pivot) {
            /* It may have taken effect: only its own answer decides. */
            e.alert = 1;
            e.retry_in_ms = tm_plan_backoff_ms(
                p->retry_interval_ms, o->unknown_streak, p->max_backoff_ms);
        } else if (p->retry_limit && op->attempts >= p->retry_limit) {
            op->status = TM_OP_FAILED;
            op->finished_ms = now_ms;
            o->dirty = 1;
            snprintf(reason, sizeof(reason),
                     "branch %s %s gave no answer in %u attempts: %s",
                     tx->branches[branch].branch_id, tm_op_kind_name(op->kind),
                     op->attempts, msg && *msg ? msg : "unknown");
            tm_plan_start_rollback(tx, reason, now_ms);
            e.changed = 1;
        } else {
            e.retry_in_ms = tm_plan_backoff_ms(
                p->retry_interval_ms, o->unknown_streak, p->max_backoff_ms);
        }
        break;
    }
    return e;
}

/* The workflow's resume answered. Only a prepared workflow is resumed;
 * once it decided (the service's Submit or Abort, which may come during
 * the very call) the answer changes nothing. */
static tm_effect_t resume_result(tm_trans_t *tx, tm_op_t *op, tm_op_run_t *o,
                                 tm_result_t result, const char *msg,
                                 const tm_retry_policy_t *p, int64_t now_ms)
{
    tm_effect_t e = {0, -1, 0};
    char reason[TM_REASON_MAX + 128];
    if (tx->status != TM_TX_PREPARED)
        return e;
    switch (result) {
    case TM_RESULT_FAILURE: /* the function cannot go on: an operator's */
        op->status = TM_OP_FAILED;
        op->finished_ms = now_ms;
        o->dirty = 1;
        set_error(op, "workflow stopped: ", msg);
        snprintf(reason, sizeof(reason), "workflow stopped: %s",
                 msg && *msg ? msg : "the workflow service answered ABORTED");
        tm_set_string(&tx->reason, reason); /* the engine logs and counts it */
        e.changed = 1;
        return e;
    case TM_RESULT_ONGOING: /* running in the service now */
        set_error(op, "ongoing: ", msg);
        o->unknown_streak = 0;
        e.retry_in_ms = p->retry_interval_ms;
        return e;
    case TM_RESULT_OK: /* answered, but nothing decided: try again */
        set_error(op, "",
                  "the workflow service answered OK but the "
                  "workflow has not decided");
        break;
    case TM_RESULT_UNKNOWN:
        set_error(op, "", msg);
        break;
    }
    o->unknown_streak++;
    e.retry_in_ms = tm_plan_backoff_ms(p->retry_interval_ms, o->unknown_streak,
                                       p->max_backoff_ms);
    e.alert = p->retry_limit && op->attempts >= p->retry_limit;
    return e;
}

int tm_plan_restart_resume(tm_trans_t *tx, tm_run_t *run)
{
    if (tx->status != TM_TX_PREPARED || !head_acts_on_timeout(tx))
        return 0;
    tm_op_t *op = &tx->branches[0].ops[TM_SLOT_FORWARD];
    tm_op_run_t *o = tm_run_op(run, 0, TM_SLOT_FORWARD);
    int stopped = op->status == TM_OP_FAILED;
    if (!stopped && !o->waiting_retry)
        return 0;
    op->status = TM_OP_PENDING;
    op->finished_ms = 0;
    o->unknown_streak = 0;
    o->dirty |= stopped;
    if (stopped)
        tm_set_string(&tx->reason, NULL);
    run->resume_due = 1;
    return 1;
}

int tm_plan_unrecorded_step(const tm_trans_t *tx)
{
    if (!tm_plan_is_workflow(tx))
        return -1;
    for (size_t i = 1; i < tx->n_branches; i++) {
        const tm_op_t *fw = &tx->branches[i].ops[TM_SLOT_FORWARD];
        if (fw->kind != TM_KIND_NONE && !fw->recorded)
            return (int)i;
    }
    return -1;
}

tm_effect_t tm_plan_apply_result(tm_trans_t *tx, tm_run_t *run, size_t branch,
                                 tm_slot_t slot, tm_result_t result,
                                 const char *msg,
                                 const tm_retry_policy_t *policy,
                                 int64_t now_ms)
{
    assert(branch < tx->n_branches && run->cap >= tx->n_branches);
    tm_op_t *op = &tx->branches[branch].ops[slot];
    tm_op_run_t *o = tm_run_op(run, branch, slot);
    tx->updated_ms = now_ms;
    if (slot == TM_SLOT_FORWARD && op->kind == TM_KIND_RESUME)
        return resume_result(tx, op, o, result, msg, policy, now_ms);
    if (slot == TM_SLOT_FORWARD && op->kind == TM_KIND_QUERY_PREPARED)
        return check_result(tx, op, o, result, msg, policy, now_ms);
    if (slot == TM_SLOT_FORWARD && is_forward_only(&tx->branches[branch]))
        return must_succeed_result(op, o, result, msg, why_message, policy,
                                   now_ms);
    if (slot == TM_SLOT_FORWARD && tm_plan_past_pivot(tx) &&
        !tx->branches[branch].pivot)
        return must_succeed_result(op, o, result, msg, why_past_pivot, policy,
                                   now_ms);
    if (slot == TM_SLOT_FORWARD)
        return forward_result(tx, branch, op, o, result, msg, policy, now_ms);
    return must_succeed_result(op, o, result, msg, why_phase2, policy, now_ms);
}
