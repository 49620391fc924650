/*
 * sim_workflow_check: the workflow service seen from outside — the
 * operator who sends RetryNow to a stopped workflow, the notes of what the
 * front and the operator saw answered (a StartWorkflow's progress, a
 * ForceStop, a final Query) — and the checks of what the service's runs
 * (sim_workflow.c) came to.
 *
 * The checks, once everything settled (sim_wf_check): every workflow
 * the service started ends, and as its function decided (either way once
 * it rolled back on an unknown outcome, unless that Abort was answered);
 * what the service
 * saw acknowledged (StartWorkflow, a registration, a record, Submit,
 * Abort) is never lost, also not from a later run's progress; a recorded
 * step's result is what the function's step answers; committed: every
 * step recorded OK has its forward effect once and its confirm (TCC), no
 * undo, every step recorded ABORTED is rolled back, never confirmed;
 * failed: every forward effect undone, nothing confirmed; no phase-2 op
 * of the service before the decision is stored; the hooks of the outcome
 * ran at least once, after every other phase-2 op, and never the other
 * outcome's.
 */
#include <stdlib.h>
#include <string.h>

#include "sim_workflow_impl.h"

/* ---- the operator ------------------------------------------------------ */

/* A stopped workflow waits for the operator, who looks at it now and then
 * (trellisctl status) and sends RetryNow while it is stopped, until it
 * ends. */
void sim_wf_operator_look(sim_t *s, wf_t *w)
{
    tm_trans_t *tx = sim_store_read(s, w->gid);
    int final = tx && tm_tx_is_final(tx->status);
    int stopped = tx && tx->status == TM_TX_PREPARED &&
                  tx->branches[0].ops[TM_SLOT_FORWARD].status == TM_OP_FAILED;
    tm_trans_free(tx);
    if (final) {
        w->watched = 0;
        return;
    }
    sim_rpc_t *q = w->retry;
    int waiting = q && !q->answered && s->now < q->deadline_ms &&
                  q->gen == s->nodes[q->node].gen;
    if (stopped && !waiting) {
        Trellis__V1__RetryNowRequest m = TRELLIS__V1__RETRY_NOW_REQUEST__INIT;
        m.gid = w->gid;
        sim_pack(&m.base, &w->retry_bytes, &w->retry_len);
        sim_trace(s, "operator retry-now %s", w->gid);
        w->retry = sim_send(s, client_of(s, w), SIM_M_RETRY_NOW,
                            (int)(sim_rand(s) % (uint64_t)s->n_nodes),
                            RUN_PATIENCE_MS, w->retry_bytes, w->retry_len);
    }
    sim_schedule(s, sim_between(s, 50, 200), SIM_EV_STOPPED, w, 0);
}

void sim_wf_operator_watch(sim_t *s, wf_t *w)
{
    if (w->watched)
        return;
    w->watched = 1;
    sim_schedule(s, sim_between(s, 50, 400), SIM_EV_STOPPED, w, 0);
}

/* ---- what the front and the operator saw -------------------------------- */

static wf_t *wf_of(sim_t *s, const sim_rpc_t *r)
{
    int wf = r->client - (int)s->n_clients;
    return wf >= 0 && (size_t)wf < sim_wf_count(s) ? &s->svc->wfs[wf] : NULL;
}

void sim_wf_note_sent(sim_t *s, sim_rpc_t *r)
{
    const wf_t *w = wf_of(s, r);
    if (w)
        r->acked = w->acked;
}

/* A StartWorkflow answer shows whatever the service had seen acknowledged
 * when the request reached trellisd (any answer: of a run, of a dead
 * one, of the network's late copy). */
static void check_progress(sim_t *s, const wf_t *w, const sim_rpc_t *r)
{
    const sim_progress_t *p = &r->progress;
    if (r->acked.started && p->created)
        sim_fail(s, "%s: StartWorkflow created it again", w->gid);
    for (int k = 0; k < w->n_steps; k++) {
        int had = r->acked.steps[k], got = p->steps[k];
        if ((had == SIM_SEEN_REGISTERED && got == SIM_SEEN_NONE) ||
            (had > SIM_SEEN_REGISTERED && got != had))
            sim_fail(s,
                     "%s: StartWorkflow's progress shows step %02d as %d, "
                     "after it was acknowledged as %d",
                     w->gid, k + 1, got, had);
    }
}

void sim_wf_note_progress(sim_t *s, sim_rpc_t *r, const tm_trans_t *tx,
                          int created)
{
    sim_progress_t *p = &r->progress;
    memset(p, 0, sizeof(*p));
    p->created = created;
    for (size_t i = 0; i < tx->n_branches; i++) {
        const tm_branch_t *b = &tx->branches[i];
        const tm_op_t *fw = &b->ops[TM_SLOT_FORWARD];
        int k = atoi(b->branch_id) - 1;
        if (i == 0)
            p->stopped = fw->status == TM_OP_FAILED;
        else if (strcmp(b->branch_id, WF_HOOKS_ID) == 0)
            p->hooks = 1;
        else if (k >= 0 && k < SIM_WF_MAX_STEPS)
            p->steps[k] = !fw->recorded                   ? SIM_SEEN_REGISTERED
                          : fw->status == TM_OP_SUCCEEDED ? SIM_SEEN_OK
                                                          : SIM_SEEN_ABORTED;
    }
    const wf_t *w = wf_of(s, r);
    if (w)
        check_progress(s, w, r);
}

void sim_wf_operator_answer(sim_t *s, int wf, const sim_rpc_t *r)
{
    if (wf < 0 || (size_t)wf >= sim_wf_count(s))
        return;
    wf_t *w = &s->svc->wfs[wf];
    if (r->method == SIM_M_FORCE_STOP)
        w->force_stopped = 1;
    if (r->method == SIM_M_QUERY && tm_tx_is_final(r->status) &&
        !w->queried_final)
        w->queried_final = (int)r->status;
}

/* ---- the checks -------------------------------------------------------- */

/* The outcome the function decides: rollback at a stopping step that
 * failed, else its end. */
static int commits(const wf_t *w)
{
    for (int k = 0; k < w->n_steps; k++)
        if (w->steps[k].fails && w->steps[k].stops)
            return 0;
    return w->commit;
}

static const tm_branch_t *stored_branch(const tm_trans_t *tx, const char *id)
{
    for (size_t i = 0; i < tx->n_branches; i++)
        if (strcmp(tx->branches[i].branch_id, id) == 0)
            return &tx->branches[i];
    return NULL;
}

/* Every registration and record the service saw acknowledged is stored. */
static void check_acked(sim_t *s, const wf_t *w, const tm_trans_t *tx)
{
    for (int k = 0; k < w->n_steps; k++) {
        char id[16];
        step_id(k, id, sizeof(id));
        const tm_branch_t *b = stored_branch(tx, id);
        const tm_op_t *fw = b ? &b->ops[TM_SLOT_FORWARD] : NULL;
        int want_ok = w->acked.steps[k] == SIM_SEEN_OK;
        if ((w->acked.steps[k] != SIM_SEEN_NONE && !b) ||
            (w->acked.steps[k] > SIM_SEEN_REGISTERED &&
             (!fw->recorded || (fw->status == TM_OP_SUCCEEDED) != want_ok)))
            sim_fail(s, "%s: step %s was acknowledged (%d) and is lost", w->gid,
                     id, w->acked.steps[k]);
    }
}

/* One step of an ended workflow against its participant's effects. */
static void check_step(sim_t *s, const wf_t *w, const tm_trans_t *tx,
                       const tm_branch_t *b)
{
    int k = atoi(b->branch_id) - 1;
    const sim_branch_t *p = sim_branch_find(s, tx->gid, b->branch_id);
    if (k < 0 || k >= w->n_steps || !p) {
        sim_fail(s, "%s has a branch %s its function never took", tx->gid,
                 b->branch_id);
        return;
    }
    const tm_op_t *fw = &b->ops[TM_SLOT_FORWARD];
    int ok = fw->recorded && fw->status == TM_OP_SUCCEEDED;
    if (fw->recorded && ok == w->steps[k].fails)
        sim_fail(s, "%s/%s recorded %s, yet its forward op answers %s", tx->gid,
                 b->branch_id, ok ? "OK" : "ABORTED", ok ? "ABORTED" : "OK");
    int tcc = w->steps[k].kind == STEP_TCC;
    int bad = tx->status == TM_TX_SUCCEEDED
                  ? (!fw->recorded || (ok ? !p->fwd_effect || p->rb_undo ||
                                                (tcc && !p->cm_effect)
                                          : p->cm_effect || !p->rb_row))
                  : p->cm_effect || (p->fwd_effect && !p->rb_undo);
    if (bad)
        sim_fail(s,
                 "%s %s but step %s (%s, recorded %d, %s) has forward=%d "
                 "undone=%d confirmed=%d rolled back=%d",
                 tx->gid, tm_tx_status_name(tx->status), b->branch_id,
                 kind_name(w->steps[k].kind), fw->recorded,
                 ok ? "OK" : "ABORTED", p->fwd_effect, p->rb_undo, p->cm_effect,
                 p->rb_row);
}

/* The hooks of the outcome ran, after every step's phase-2 op. */
static void check_hooks(sim_t *s, const wf_t *w, const tm_trans_t *tx)
{
    int committed = tx->status == TM_TX_SUCCEEDED;
    if (committed ? !w->hook_commits || w->hook_rollbacks
                  : !w->hook_rollbacks || w->hook_commits)
        sim_fail(s, "%s %s, yet its hooks ran commit %u, rollback %u times",
                 tx->gid, tm_tx_status_name(tx->status), w->hook_commits,
                 w->hook_rollbacks);
    for (int k = 0; k < w->n_steps; k++) {
        char id[16];
        step_id(k, id, sizeof(id));
        const sim_branch_t *p = sim_branch_find(s, tx->gid, id);
        if (p && p->p2_stamp > w->first_hook)
            sim_fail(s, "%s: the hooks ran before the phase-2 op of step %s",
                     tx->gid, id);
    }
}

static int force_stopped(const tm_trans_t *tx)
{
    return tx->reason && strncmp(tx->reason, TM_FORCE_STOP_PREFIX,
                                 strlen(TM_FORCE_STOP_PREFIX)) == 0;
}

static void check_ended(sim_t *s, const wf_t *w, const tm_trans_t *tx)
{
    int committed = tx->status == TM_TX_SUCCEEDED;
    if ((committed != commits(w) && !w->rolled_unknown) ||
        (w->decided == 1 && !committed) || (w->decided == 2 && committed))
        sim_fail(s, "%s ended %s; its function %s, and %s was acknowledged",
                 tx->gid, tm_tx_status_name(tx->status),
                 commits(w) ? "commits" : "rolls back",
                 w->decided == 1   ? "Submit"
                 : w->decided == 2 ? "Abort"
                                   : "nothing");
    int hooks = 0;
    for (size_t i = 1; i < tx->n_branches; i++) {
        if (strcmp(tx->branches[i].branch_id, WF_HOOKS_ID) == 0)
            hooks = 1;
        else
            check_step(s, w, tx, &tx->branches[i]);
    }
    if (hooks)
        check_hooks(s, w, tx);
    else if (w->hook_commits || w->hook_rollbacks)
        sim_fail(s, "%s has no hooks registered, yet hooks ran", tx->gid);
}

static void check_one(sim_t *s, const wf_t *w)
{
    tm_trans_t *tx = sim_store_read(s, w->gid);
    if (!tx) {
        if (w->acked.started)
            sim_fail(s, "%s was acknowledged and is lost", w->gid);
        return;
    }
    s->res->acked += (unsigned)w->acked.started;
    if (!tm_tx_is_final(tx->status))
        sim_fail(s, "workflow %s did not end: %s (%s)", w->gid,
                 tm_tx_status_name(tx->status), tx->reason ? tx->reason : "");
    else if (w->queried_final && (int)tx->status != w->queried_final)
        sim_fail(s, "%s: a Query answered %s, yet it ended %s", w->gid,
                 tm_tx_status_name((tm_tx_status_t)w->queried_final),
                 tm_tx_status_name(tx->status));
    check_acked(s, w, tx);
    if (w->force_stopped && !force_stopped(tx))
        sim_fail(s, "%s: a ForceStop was answered OK, yet it ended %s (%s)",
                 w->gid, tm_tx_status_name(tx->status),
                 tx->reason ? tx->reason : "");
    if (tm_tx_is_final(tx->status) && !force_stopped(tx))
        check_ended(s, w, tx);
    tm_trans_free(tx);
}

void sim_wf_check(sim_t *s)
{
    for (size_t i = 0; i < sim_wf_count(s); i++)
        check_one(s, &s->svc->wfs[i]);
}
