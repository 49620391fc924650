/*
 * Unit tests of tm_plan's workflow rules (tm_plan.h, "Workflows") on the
 * in-memory model alone: a prepared workflow is resumed, not rolled back,
 * at its timeout; the resume's answers; a step recorded as failed is
 * rolled back on commit and never committed; the hooks go last on both
 * sides; an operator restarts a stopped workflow; a workflow with an
 * unrecorded step cannot be submitted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tm_plan.h"

static const tm_retry_policy_t policy = {100, 1000, 0};

static tm_run_t run;

static tm_run_t *fit(const tm_trans_t *tx)
{
    assert_int_equal(tm_run_fit(&run, tx->n_branches), 0);
    return &run;
}

static int clear_run(void **state)
{
    (void)state;
    tm_run_clear(&run);
    return 0;
}

static void set_op(tm_op_t *op, tm_op_kind_t kind, const char *target)
{
    op->kind = kind;
    op->status = TM_OP_PENDING;
    op->target = tm_strdup(target);
}

/* A registered branch of mode m with the given ops, chained after the
 * branch before it (hooks: after none), as tm_request_add_registered
 * builds it. */
static tm_branch_t *add_branch(tm_trans_t *tx, tm_mode_t m, tm_op_kind_t fw,
                               tm_op_kind_t cm, tm_op_kind_t rb)
{
    size_t idx = tx->n_branches;
    tm_branch_t *b = tm_trans_add_branch(tx);
    char id[8];
    snprintf(id, sizeof(id), "%02zu", idx);
    b->branch_id = tm_strdup(id);
    b->mode = m;
    b->initiator_driven = 1;
    if (fw)
        set_op(&b->ops[TM_SLOT_FORWARD], fw, NULL);
    if (cm)
        set_op(&b->ops[TM_SLOT_COMMIT], cm, "h:1/p.S/Commit");
    if (rb)
        set_op(&b->ops[TM_SLOT_ROLLBACK], rb, "h:1/p.S/Undo");
    if (idx && m != TM_MODE_HOOKS) {
        b->deps = malloc(sizeof(uint32_t));
        b->deps[0] = (uint32_t)(idx - 1);
        b->n_deps = 1;
    }
    return b;
}

/* A prepared workflow: its head, then a saga step, a TCC step and a local
 * step. */
static tm_trans_t *workflow(void)
{
    tm_trans_t *tx = tm_trans_new("wf", TM_TX_PREPARED, 1000);
    tx->opts.timeout_to_fail_ms = 500;
    tm_branch_t *head = add_branch(tx, TM_MODE_WORKFLOW, TM_KIND_RESUME, 0, 0);
    head->ops[TM_SLOT_FORWARD].target = tm_strdup("h:1/trellis.v1.Workflow/"
                                                  "Resume");
    add_branch(tx, TM_MODE_SAGA, TM_KIND_ACTION, 0, TM_KIND_COMPENSATE);
    add_branch(tx, TM_MODE_TCC, TM_KIND_TRY, TM_KIND_CONFIRM, TM_KIND_CANCEL);
    add_branch(tx, TM_MODE_LOCAL, TM_KIND_ACTION, 0, TM_KIND_COMPENSATE);
    fit(tx);
    return tx;
}

static void record(tm_trans_t *tx, size_t b, tm_op_status_t st)
{
    tm_op_t *fw = &tx->branches[b].ops[TM_SLOT_FORWARD];
    fw->recorded = 1;
    fw->status = st;
}

static size_t ready(const tm_trans_t *tx, tm_op_ref_t *out)
{
    return tm_plan_ready(tx, fit(tx), out, 32);
}

static tm_effect_t answer(tm_trans_t *tx, size_t b, tm_slot_t s, tm_result_t r)
{
    return tm_plan_apply_result(tx, fit(tx), b, s, r, "why", &policy, 2000);
}

static void submit(tm_trans_t *tx)
{
    tx->status = TM_TX_SUBMITTED;
    tm_plan_mark_initiator_ops_done(tx, fit(tx), 1500);
}

static void test_timeout_resumes_instead_of_rolling_back(void **state)
{
    (void)state;
    tm_trans_t *tx = workflow();
    tm_op_ref_t r[32];
    assert_int_equal(tm_plan_is_workflow(tx), 1);
    assert_int_equal(ready(tx, r), 0); /* running in its initiator */
    assert_int_equal(tm_plan_on_timeout(tx, 1500), 0);
    assert_int_equal(tx->status, TM_TX_PREPARED);
    assert_int_equal(tm_plan_timeout_resumes(tx, fit(tx)), 1);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 0);
    assert_int_equal(r[0].slot, TM_SLOT_FORWARD);
    tm_trans_free(tx);
}

static void test_plain_transaction_times_out_as_before(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("t", TM_TX_PREPARED, 1000);
    add_branch(tx, TM_MODE_TCC, TM_KIND_TRY, TM_KIND_CONFIRM, TM_KIND_CANCEL);
    assert_int_equal(tm_plan_is_workflow(tx), 0);
    assert_int_equal(tm_plan_timeout_resumes(tx, fit(tx)), 0);
    assert_int_equal(tm_plan_on_timeout(tx, 1500), 1);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    tm_trans_free(tx);
}

static void test_resume_answers(void **state)
{
    (void)state;
    tm_trans_t *tx = workflow();
    tm_plan_timeout_resumes(tx, fit(tx));
    tm_op_t *op = &tx->branches[0].ops[TM_SLOT_FORWARD];
    /* unknown: backoff, op still pending, never dropped */
    tm_effect_t e = answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_UNKNOWN);
    assert_int_equal(e.retry_in_ms, 100);
    e = answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_UNKNOWN);
    assert_int_equal(e.retry_in_ms, 200);
    assert_int_equal(op->status, TM_OP_PENDING);
    /* running in the service now: fixed interval */
    e = answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_ONGOING);
    assert_int_equal(e.retry_in_ms, 100);
    /* OK while still prepared: the service did not decide, try again */
    e = answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK);
    assert_true(e.retry_in_ms > 0);
    assert_int_equal(op->status, TM_OP_PENDING);
    assert_int_equal(tx->status, TM_TX_PREPARED);
    /* ABORTED: stopped for the operator, with the service's words */
    e = answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_int_equal(e.changed, 1);
    assert_int_equal(e.retry_in_ms, -1);
    assert_int_equal(op->status, TM_OP_FAILED);
    assert_int_equal(tx->status, TM_TX_PREPARED);
    assert_string_equal(tx->reason, "workflow stopped: why");
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 0);
    /* the operator restarts it: pending again, reason cleared, due */
    assert_int_equal(tm_plan_restart_resume(tx, fit(tx)), 1);
    assert_int_equal(op->status, TM_OP_PENDING);
    assert_null(tx->reason);
    assert_int_equal(ready(tx, r), 1);
    tm_trans_free(tx);
}

static void test_resume_answer_after_decision_changes_nothing(void **state)
{
    (void)state;
    tm_trans_t *tx = workflow();
    tm_plan_timeout_resumes(tx, fit(tx));
    for (size_t b = 1; b < 4; b++)
        record(tx, b, TM_OP_SUCCEEDED);
    submit(tx); /* the service decided during the resume call */
    tm_effect_t e = answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_UNKNOWN);
    assert_int_equal(e.changed, 0);
    assert_int_equal(e.retry_in_ms, -1);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    tm_trans_free(tx);
}

static void test_unrecorded_step_blocks_submit(void **state)
{
    (void)state;
    tm_trans_t *tx = workflow();
    record(tx, 1, TM_OP_SUCCEEDED);
    assert_int_equal(tm_plan_unrecorded_step(tx), 2);
    record(tx, 2, TM_OP_SUCCEEDED);
    record(tx, 3, TM_OP_SUCCEEDED);
    assert_int_equal(tm_plan_unrecorded_step(tx), -1);
    tm_trans_free(tx);
}

/* The function went on past a TCC try recorded ABORTED and committed: the
 * try is cancelled, never confirmed, and the workflow succeeds. */
static void test_failed_step_is_rolled_back_on_commit(void **state)
{
    (void)state;
    tm_trans_t *tx = workflow();
    record(tx, 1, TM_OP_SUCCEEDED);
    record(tx, 2, TM_OP_FAILED);
    record(tx, 3, TM_OP_SUCCEEDED);
    submit(tx);
    assert_int_equal(tm_plan_forward_done(tx), 1);
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 2);
    assert_int_equal(r[0].slot, TM_SLOT_ROLLBACK); /* cancel, not confirm */
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    answer(tx, 2, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 0);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_SUCCEEDED);
    tm_plan_finish(tx, TM_TX_SUCCEEDED, 3000);
    assert_int_equal(tx->branches[2].ops[TM_SLOT_COMMIT].status, TM_OP_SKIPPED);
    tm_trans_free(tx);
}

static void test_hooks_commit_last(void **state)
{
    (void)state;
    tm_trans_t *tx = workflow();
    for (size_t b = 1; b < 4; b++)
        record(tx, b, TM_OP_SUCCEEDED);
    add_branch(tx, TM_MODE_HOOKS, 0, TM_KIND_COMMIT, TM_KIND_ROLLBACK);
    submit(tx);
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 1); /* the confirm; the hooks wait */
    assert_int_equal(r[0].branch, 2);
    assert_int_equal(r[0].slot, TM_SLOT_COMMIT);
    answer(tx, 2, TM_SLOT_COMMIT, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 4);
    assert_int_equal(r[0].slot, TM_SLOT_COMMIT);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    answer(tx, 4, TM_SLOT_COMMIT, TM_RESULT_OK);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_SUCCEEDED);
    tm_trans_free(tx);
}

/* Abort: the local step, the TCC step and the saga step are undone in
 * reverse order, then the hooks' rollback. */
static void test_abort_undoes_in_reverse_then_hooks(void **state)
{
    (void)state;
    tm_trans_t *tx = workflow();
    record(tx, 1, TM_OP_SUCCEEDED);
    record(tx, 2, TM_OP_SUCCEEDED);
    record(tx, 3, TM_OP_FAILED);
    add_branch(tx, TM_MODE_HOOKS, 0, TM_KIND_COMMIT, TM_KIND_ROLLBACK);
    assert_int_equal(tm_plan_start_rollback(tx, "business failure", 1), 1);
    tm_op_ref_t r[32];
    for (size_t want = 3; want >= 1; want--) {
        assert_int_equal(ready(tx, r), 1);
        assert_int_equal(r[0].branch, want);
        assert_int_equal(r[0].slot, TM_SLOT_ROLLBACK);
        answer(tx, want, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    }
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 4);
    assert_int_equal(r[0].slot, TM_SLOT_ROLLBACK);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    answer(tx, 4, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_trans_free(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_timeout_resumes_instead_of_rolling_back, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_plain_transaction_times_out_as_before, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_resume_answers, clear_run,
                                        clear_run),
        cmocka_unit_test_setup_teardown(
            test_resume_answer_after_decision_changes_nothing, clear_run,
            clear_run),
        cmocka_unit_test_setup_teardown(test_unrecorded_step_blocks_submit,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_failed_step_is_rolled_back_on_commit, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_hooks_commit_last, clear_run,
                                        clear_run),
        cmocka_unit_test_setup_teardown(test_abort_undoes_in_reverse_then_hooks,
                                        clear_run, clear_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
