/*
 * tm_engine_workflow: the workflow requests of the engine core —
 * StartWorkflow, which opens a workflow or hands its recorded progress
 * back to a re-run, and RecordStep, which stores one step's result before
 * the function goes on. The rest of a workflow's life uses the requests
 * every transaction has (RegisterBranch before a step runs, Submit or
 * Abort for the decision) and the plan's workflow rules (tm_plan.h):
 * resume instead of rollback at the timeout, a step recorded as failed
 * rolled back on commit, hooks last.
 *
 * A workflow is a prepared transaction whose branch 0 is its head
 * (tm_kind_workflow.c, built by tm_request_add_workflow_head). A repeated
 * StartWorkflow with the same name, input and target is a re-run — the
 * function's own initiator running again, or the service trellisd
 * resumed — and is answered with the durable state: status and every
 * branch with its recorded result.
 *
 * DTM's workflows (through the DTM service, tm_dtm_workflow.h) use the
 * same requests with a head of their own kind (tm_kind_dtm_workflow.c)
 * and one more: RecordProgress, which registers a step and records its
 * result in one write, since DTM's SDK tells the TM of a step only once
 * it ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_engine_impl.h"
#include "tm_exit.h"
#include "tm_log.h"
#include "tm_request.h"

static tm_live_t *new_workflow(tm_engine_t *e,
                               const Trellis__V1__StartWorkflowRequest *r,
                               tm_mode_t head_mode)
{
    tm_live_t *l = tm_live_new(e, r->gid, TM_TX_PREPARED, tm_engine_wall(e),
                               tm_engine_mono(e));
    if (!l || tm_options_from_proto(&l->tx.opts, r->options) != 0)
        tm_exit_oom("workflow");
    if (!l->tx.opts.timeout_to_fail_ms)
        l->tx.opts.timeout_to_fail_ms = e->cfg.prepared_timeout_ms;
    if (tm_request_add_workflow_head(&l->tx, r, head_mode) != 0 ||
        tm_request_add_listeners(&l->tx, r->options) != 0)
        tm_exit_oom("workflow head");
    tm_engine_fit(l);
    return l;
}

static int same_workflow(const tm_trans_t *tx, const tm_trans_t *fresh)
{
    return tm_plan_is_workflow(tx) &&
           tm_request_same_head(&tx->branches[0], &fresh->branches[0]);
}

static void answer_progress(tm_engine_t *e, tm_rpc_t *rpc, const tm_trans_t *tx,
                            int created)
{
    tm_answer_t a = {.code = TM_CODE_OK,
                     .kind = TM_ANSWER_START_WORKFLOW,
                     .gid = tx->gid,
                     .status = tx->status,
                     .trans = tx,
                     .created = created};
    tm_engine_answer(e, rpc, &a);
}

static void fail_other_workflow(tm_engine_t *e, tm_rpc_t *rpc,
                                const tm_trans_t *tx)
{
    tm_engine_fail(e, rpc, TM_CODE_ALREADY_EXISTS,
                   "gid %s already exists (status %s) and is not this "
                   "workflow: %s",
                   tx->gid, tm_tx_status_name(tx->status),
                   tm_plan_is_workflow(tx)
                       ? "its name, input or resume target differ"
                       : "it is a transaction of another mode");
}

static void start_existing(tm_live_t *l, const tm_engine_req_t *rq,
                           const void *arg)
{
    const tm_trans_t *fresh = arg;
    if (same_workflow(&l->tx, fresh))
        answer_progress(l->eng, rq->rpc, &l->tx, 0);
    else
        fail_other_workflow(l->eng, rq->rpc, &l->tx);
}

void tm_engine_start_workflow_stored(tm_engine_t *e, tm_rpc_t *rpc,
                                     const tm_trans_t *fresh)
{
    tm_trans_t *tx = tm_engine_read_stored(e, rpc, fresh->gid);
    if (!tx)
        return;
    if (!same_workflow(tx, fresh))
        fail_other_workflow(e, rpc, tx);
    else if (!tm_tx_is_final(tx->status))
        tm_engine_fail_moved(e, rpc, tx->gid);
    else
        answer_progress(e, rpc, tx, 0);
    tm_trans_free(tx);
}

int tm_engine_start_workflow(tm_engine_t *e, const tm_engine_req_t *rq,
                             const Trellis__V1__StartWorkflowRequest *r)
{
    return tm_engine_start_workflow_as(e, rq, r, TM_MODE_WORKFLOW);
}

int tm_engine_start_workflow_as(tm_engine_t *e, const tm_engine_req_t *rq,
                                const Trellis__V1__StartWorkflowRequest *r,
                                tm_mode_t head_mode)
{
    char err[512];
    if (tm_engine_refuse_if_store_failing(e, rq->rpc))
        return 0;
    tm_live_t *fresh = new_workflow(e, r, head_mode);
    tm_engine_take_trace(e, rq->rpc, &fresh->tx);
    int again = 0;
    tm_live_t *l = NULL;
    tm_found_t f =
        tm_engine_find_or_insert(e, r->gid, &l, fresh, err, sizeof(err));
    if (f == FOUND_NONE) {
        pthread_mutex_lock(&fresh->mu);
        char trace[64];
        tm_log(TM_LOG_INFO, "event=workflow_started gid=%s%s name=%s", r->gid,
               tm_trace_log_field(fresh->tx.opts.traceparent, trace,
                                  sizeof(trace)),
               r->name);
        tm_engine_persist(fresh, 1, rq->rpc, TM_ANSWER_START_WORKFLOW);
        tm_engine_arm_timeout(fresh);
        pthread_mutex_unlock(&fresh->mu);
    } else if (f == FOUND_LIVE) {
        again = tm_engine_act_on_live(l, rq, start_existing, &fresh->tx);
    } else if (f == FOUND_STORED || f == FOUND_ELSEWHERE) {
        tm_engine_start_workflow_stored(e, rq->rpc, &fresh->tx);
    } else if (f == FOUND_FULL || f == FOUND_CLOSED) {
        tm_engine_fail_not_admitted(e, rq->rpc, f);
    } else {
        tm_engine_fail_storage(e, rq->rpc, err);
    }
    tm_live_unref(fresh);
    return again;
}

/* ---- RecordStep --------------------------------------------------------- */

static int same_record(const tm_op_t *op,
                       const Trellis__V1__RecordStepRequest *r)
{
    tm_op_status_t st = r->code == 0 ? TM_OP_SUCCEEDED : TM_OP_FAILED;
    const char *msg = r->message ? r->message : "";
    const char *had = op->last_error ? op->last_error : "";
    return op->status == st && op->result_len == r->result.len &&
           (r->result.len == 0 ||
            memcmp(op->result, r->result.data, r->result.len) == 0) &&
           strcmp(msg, had) == 0;
}

static void store_record(tm_op_t *op, const Trellis__V1__RecordStepRequest *r,
                         int64_t now_ms)
{
    op->recorded = 1;
    op->status = r->code == 0 ? TM_OP_SUCCEEDED : TM_OP_FAILED;
    op->finished_ms = now_ms;
    if (r->result.len) {
        op->result = malloc(r->result.len);
        if (!op->result)
            tm_exit_oom("step result");
        memcpy(op->result, r->result.data, r->result.len);
        op->result_len = r->result.len;
    }
    if (r->message && *r->message && tm_set_string(&op->last_error, r->message))
        tm_exit_oom("step result");
}

/* Why branch b of tx cannot take a result (NULL: it can). */
static const char *unrecordable(const tm_trans_t *tx, int b)
{
    const tm_branch_t *br = &tx->branches[b];
    const tm_op_t *fw = &br->ops[TM_SLOT_FORWARD];
    if (!tm_plan_is_workflow(tx))
        return "the transaction is not a workflow";
    if (b == 0 || fw->kind == TM_KIND_NONE || !br->initiator_driven)
        return "the branch is not a step (a workflow's head and its hooks "
               "have no result)";
    return NULL;
}

static void record_on(tm_live_t *l, const tm_engine_req_t *rq, const void *arg)
{
    const Trellis__V1__RecordStepRequest *r = arg;
    tm_engine_t *e = l->eng;
    tm_trans_t *tx = &l->tx;
    int b = tm_request_find_branch(tx, r->branch_id);
    const char *why = b >= 0 ? unrecordable(tx, b) : NULL;
    if (b < 0) {
        tm_engine_fail(e, rq->rpc, TM_CODE_NOT_FOUND,
                       "%s has no branch %s: register the step before "
                       "recording its result",
                       tx->gid, r->branch_id);
        return;
    }
    if (why) {
        tm_engine_fail(e, rq->rpc, TM_CODE_FAILED_PRECONDITION,
                       "branch %s of %s takes no result: %s", r->branch_id,
                       tx->gid, why);
        return;
    }
    tm_op_t *fw = &tx->branches[b].ops[TM_SLOT_FORWARD];
    if (fw->recorded) {
        if (same_record(fw, r))
            tm_engine_answer_status(e, rq->rpc, TM_ANSWER_RECORD_STEP, tx->gid,
                                    tx->status, NULL);
        else
            tm_engine_fail(e, rq->rpc, TM_CODE_ALREADY_EXISTS,
                           "step %s of %s already has a different recorded "
                           "result (%s, %zu bytes); a result is recorded once",
                           r->branch_id, tx->gid,
                           fw->status == TM_OP_SUCCEEDED ? "OK" : "ABORTED",
                           fw->result_len);
        return;
    }
    if (tx->status != TM_TX_PREPARED) {
        tm_engine_fail(e, rq->rpc, TM_CODE_FAILED_PRECONDITION,
                       "workflow %s is %s; results are recorded only before "
                       "it decides",
                       tx->gid, tm_tx_status_name(tx->status));
        return;
    }
    int64_t now = tm_engine_wall(e);
    store_record(fw, r, now);
    tm_run_op(&l->run, (size_t)b, TM_SLOT_FORWARD)->dirty = 1;
    tx->updated_ms = now;
    tm_engine_persist(l, 0, rq->rpc, TM_ANSWER_RECORD_STEP);
}

int tm_engine_record_step(tm_engine_t *e, const tm_engine_req_t *rq,
                          const Trellis__V1__RecordStepRequest *r)
{
    char err[512];
    tm_found_t f;
    int rc = tm_engine_act_if_live(e, rq, r->gid, 1, record_on, r, &f, err,
                                   sizeof(err));
    if (rc >= 0)
        return rc;
    tm_engine_fail_not_live(e, rq->rpc, f, r->gid, err,
                            "results are recorded only before it decides");
    return 0;
}

/* ---- RecordProgress (DTM) ----------------------------------------------- */

typedef struct {
    const Trellis__V1__RegisterBranchRequest *reg;
    const Trellis__V1__RecordStepRequest *rec;
} progress_t;

/* Why tx takes no new progress (NULL: it does). */
static const char *no_progress(const tm_trans_t *tx, size_t max_branches)
{
    if (!tm_plan_is_workflow(tx) ||
        tx->branches[0].mode != TM_MODE_DTM_WORKFLOW)
        return "it is not a DTM workflow (PrepareWorkflow opens one)";
    if (tx->status != TM_TX_PREPARED)
        return "it has decided; progress is recorded only while it runs";
    if (tx->n_branches >= max_branches)
        return "it has as many branches as --max-steps allows";
    return NULL;
}

static void progress_on(tm_live_t *l, const tm_engine_req_t *rq,
                        const void *arg)
{
    const progress_t *p = arg;
    tm_engine_t *e = l->eng;
    tm_trans_t *tx = &l->tx;
    int b = tm_request_find_branch(tx, p->reg->branch_id);
    if (b >= 0) {
        if (tm_request_same_registration(&tx->branches[b], p->reg) &&
            same_record(&tx->branches[b].ops[TM_SLOT_FORWARD], p->rec))
            tm_engine_answer_status(e, rq->rpc, TM_ANSWER_REGISTER, tx->gid,
                                    tx->status, NULL);
        else
            tm_engine_fail(e, rq->rpc, TM_CODE_ALREADY_EXISTS,
                           "progress %s of %s is already recorded with "
                           "another status or data; a progress is recorded "
                           "once",
                           p->reg->branch_id, tx->gid);
        return;
    }
    const char *why = no_progress(tx, e->cfg.limits.max_branches);
    if (why) {
        tm_engine_fail(e, rq->rpc, TM_CODE_FAILED_PRECONDITION,
                       "transaction %s takes no progress %s: %s", tx->gid,
                       p->reg->branch_id, why);
        return;
    }
    if (tm_request_add_registered(tx, p->reg) != 0)
        tm_exit_oom("progress");
    tm_engine_fit(l);
    b = (int)tx->n_branches - 1;
    int64_t now = tm_engine_wall(e);
    store_record(&tx->branches[b].ops[TM_SLOT_FORWARD], p->rec, now);
    tm_run_op(&l->run, (size_t)b, TM_SLOT_FORWARD)->dirty = 1;
    tx->updated_ms = now;
    tm_engine_persist(l, 0, rq->rpc, TM_ANSWER_REGISTER);
}

int tm_engine_record_progress(tm_engine_t *e, const tm_engine_req_t *rq,
                              const Trellis__V1__RegisterBranchRequest *reg,
                              const Trellis__V1__RecordStepRequest *rec)
{
    char err[512];
    tm_found_t f;
    progress_t p = {reg, rec};
    int rc = tm_engine_act_if_live(e, rq, reg->gid, 1, progress_on, &p, &f, err,
                                   sizeof(err));
    if (rc >= 0)
        return rc;
    tm_engine_fail_not_live(e, rq->rpc, f, reg->gid, err,
                            "progress is recorded only while it runs");
    return 0;
}
