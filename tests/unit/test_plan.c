/*
 * Unit tests of tm_plan: the engine's state transitions, the order of
 * forward ops and compensations, and the retry/backoff schedule, on the
 * in-memory model alone (no gRPC, no storage).
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

/* The runtime marks of the transaction under test, as the engine keeps
 * them beside the model (tm_run.h); cleared before each test. */
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

static void add_saga_step(tm_trans_t *tx, const uint32_t *deps, size_t nd,
                          int with_compensate)
{
    size_t idx = tx->n_branches;
    tm_branch_t *b = tm_trans_add_branch(tx);
    char id[8];
    snprintf(id, sizeof(id), "%02zu", idx + 1);
    b->branch_id = tm_strdup(id);
    b->mode = TM_MODE_SAGA;
    b->ops[TM_SLOT_FORWARD].kind = TM_KIND_ACTION;
    b->ops[TM_SLOT_FORWARD].status = TM_OP_PENDING;
    b->ops[TM_SLOT_FORWARD].target = tm_strdup("h:1/p.S/A");
    if (with_compensate) {
        b->ops[TM_SLOT_ROLLBACK].kind = TM_KIND_COMPENSATE;
        b->ops[TM_SLOT_ROLLBACK].status = TM_OP_PENDING;
        b->ops[TM_SLOT_ROLLBACK].target = tm_strdup("h:1/p.S/C");
    }
    if (nd) {
        b->deps = malloc(nd * sizeof(uint32_t));
        memcpy(b->deps, deps, nd * sizeof(uint32_t));
        b->n_deps = nd;
    }
}

/* A chain of n steps, each after the one before. */
static tm_trans_t *chain_saga(size_t n)
{
    tm_trans_t *tx = tm_trans_new("g1", TM_TX_SUBMITTED, 1000);
    for (size_t i = 0; i < n; i++) {
        uint32_t prev = (uint32_t)(i - 1);
        add_saga_step(tx, &prev, i ? 1 : 0, 1);
    }
    return tx;
}

static void add_tcc_branch(tm_trans_t *tx)
{
    size_t idx = tx->n_branches;
    tm_branch_t *b = tm_trans_add_branch(tx);
    b->branch_id = tm_strdup(idx ? "b2" : "b1");
    b->mode = TM_MODE_TCC;
    b->initiator_driven = 1;
    b->ops[TM_SLOT_FORWARD].kind = TM_KIND_TRY;
    b->ops[TM_SLOT_FORWARD].status = TM_OP_PENDING;
    b->ops[TM_SLOT_COMMIT].kind = TM_KIND_CONFIRM;
    b->ops[TM_SLOT_COMMIT].status = TM_OP_PENDING;
    b->ops[TM_SLOT_ROLLBACK].kind = TM_KIND_CANCEL;
    b->ops[TM_SLOT_ROLLBACK].status = TM_OP_PENDING;
    if (idx) {
        b->deps = malloc(sizeof(uint32_t));
        b->deps[0] = (uint32_t)(idx - 1);
        b->n_deps = 1;
    }
}

static size_t ready(const tm_trans_t *tx, tm_op_ref_t *out)
{
    return tm_plan_ready(tx, fit(tx), out, 32);
}

static tm_effect_t answer(tm_trans_t *tx, size_t b, tm_slot_t s, tm_result_t r)
{
    return tm_plan_apply_result(tx, fit(tx), b, s, r, "msg", &policy, 2000);
}

static void test_classify_follows_protocol_table(void **state)
{
    (void)state;
    assert_int_equal(tm_plan_classify(0), TM_RESULT_OK);
    assert_int_equal(tm_plan_classify(10), TM_RESULT_FAILURE); /* ABORTED */
    assert_int_equal(tm_plan_classify(9),
                     TM_RESULT_ONGOING); /* FAILED_PRECONDITION */
    assert_int_equal(tm_plan_classify(14), TM_RESULT_UNKNOWN); /* UNAVAILABLE */
    assert_int_equal(tm_plan_classify(4), TM_RESULT_UNKNOWN);  /* DEADLINE */
    assert_int_equal(tm_plan_classify(2), TM_RESULT_UNKNOWN);  /* UNKNOWN */
}

static void test_backoff_doubles_then_caps(void **state)
{
    (void)state;
    assert_int_equal(tm_plan_backoff_ms(100, 1, 1000), 100);
    assert_int_equal(tm_plan_backoff_ms(100, 2, 1000), 200);
    assert_int_equal(tm_plan_backoff_ms(100, 3, 1000), 400);
    assert_int_equal(tm_plan_backoff_ms(100, 4, 1000), 800);
    assert_int_equal(tm_plan_backoff_ms(100, 5, 1000), 1000);
    assert_int_equal(tm_plan_backoff_ms(100, 400, 1000), 1000);
    assert_int_equal(tm_plan_backoff_ms(3000000000u, 40, 4000000000u),
                     4000000000u);
}

static void test_chain_runs_in_order_and_succeeds(void **state)
{
    (void)state;
    tm_trans_t *tx = chain_saga(3);
    tm_op_ref_t r[32];
    for (size_t step = 0; step < 3; step++) {
        assert_int_equal(ready(tx, r), 1);
        assert_int_equal(r[0].branch, step);
        assert_int_equal(r[0].slot, TM_SLOT_FORWARD);
        assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
        tm_effect_t e = answer(tx, step, TM_SLOT_FORWARD, TM_RESULT_OK);
        assert_true(e.changed);
        assert_int_equal(tx->status, TM_TX_SUBMITTED);
    }
    assert_int_equal(ready(tx, r), 0);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_SUCCEEDED);
    tm_plan_finish(tx, TM_TX_SUCCEEDED, 3000);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(tx->branches[i].ops[TM_SLOT_ROLLBACK].status,
                         TM_OP_SKIPPED);
    tm_trans_free(tx);
}

/* A failure at step k compensates k, k-1, ..., 1 in exactly that order. */
static void check_failure_at(size_t n, size_t k)
{
    clear_run(NULL);
    tm_trans_t *tx = chain_saga(n);
    tm_op_ref_t r[32];
    for (size_t i = 0; i < k; i++)
        answer(tx, i, TM_SLOT_FORWARD, TM_RESULT_OK);
    tm_effect_t e = answer(tx, k, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_true(e.changed);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_non_null(strstr(tx->reason, "failed"));
    for (size_t c = k + 1; c-- > 0;) {
        assert_int_equal(ready(tx, r), 1);
        assert_int_equal(r[0].branch, c);
        assert_int_equal(r[0].slot, TM_SLOT_ROLLBACK);
        assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
        answer(tx, c, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    }
    assert_int_equal(ready(tx, r), 0);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_plan_finish(tx, TM_TX_FAILED, 3000);
    for (size_t i = k + 1; i < n; i++) {
        assert_int_equal(tx->branches[i].ops[TM_SLOT_FORWARD].status,
                         TM_OP_SKIPPED);
        assert_int_equal(tx->branches[i].ops[TM_SLOT_ROLLBACK].status,
                         TM_OP_SKIPPED);
    }
    tm_trans_free(tx);
}

static void test_failure_at_each_step_compensates_backwards(void **state)
{
    (void)state;
    for (size_t k = 0; k < 4; k++)
        check_failure_at(4, k);
}

/* 0 -> {1, 2} -> 3 */
static tm_trans_t *diamond(void)
{
    tm_trans_t *tx = tm_trans_new("g2", TM_TX_SUBMITTED, 1000);
    uint32_t d0[] = {0}, d12[] = {1, 2};
    add_saga_step(tx, NULL, 0, 1);
    add_saga_step(tx, d0, 1, 1);
    add_saga_step(tx, d0, 1, 1);
    add_saga_step(tx, d12, 2, 1);
    return tx;
}

static void test_diamond_runs_branches_concurrently(void **state)
{
    (void)state;
    tm_trans_t *tx = diamond();
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 1);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 2);
    assert_int_equal(r[0].branch, 1);
    assert_int_equal(r[1].branch, 2);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_OK);
    /* 3 waits for 2 as well */
    tm_run_op(fit(tx), 2, TM_SLOT_FORWARD)->inflight = 1;
    assert_int_equal(ready(tx, r), 0);
    tm_run_op(fit(tx), 2, TM_SLOT_FORWARD)->inflight = 0;
    answer(tx, 2, TM_SLOT_FORWARD, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 3);
    tm_trans_free(tx);
}

static void test_diamond_compensates_graph_backwards(void **state)
{
    (void)state;
    tm_trans_t *tx = diamond();
    tm_op_ref_t r[32];
    for (size_t i = 0; i < 3; i++)
        answer(tx, i, TM_SLOT_FORWARD, TM_RESULT_OK);
    answer(tx, 3, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 3);
    answer(tx, 3, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 2); /* 1 and 2 together */
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 2); /* 0 still waits for 2 */
    answer(tx, 2, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 0);
    answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_trans_free(tx);
}

static void test_rollback_waits_for_forward_on_the_wire(void **state)
{
    (void)state;
    tm_trans_t *tx = diamond();
    tm_op_ref_t r[32];
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK);
    tm_run_op(fit(tx), 2, TM_SLOT_FORWARD)->inflight = 1;
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    /* 1 may roll back; 0 must wait for 2, whose action is still out. */
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 1);
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 0);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    /* The late action succeeds after the decision: it is recorded and
     * compensated, never retried. */
    tm_run_op(fit(tx), 2, TM_SLOT_FORWARD)->inflight = 0;
    tm_effect_t e = answer(tx, 2, TM_SLOT_FORWARD, TM_RESULT_OK);
    assert_true(e.changed);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 2);
    tm_trans_free(tx);
}

static void test_ongoing_retries_at_fixed_interval(void **state)
{
    (void)state;
    tm_trans_t *tx = chain_saga(2);
    for (int i = 0; i < 3; i++) {
        tm_effect_t e = answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_ONGOING);
        assert_false(e.changed);
        assert_int_equal(e.retry_in_ms, 100);
    }
    assert_int_equal(tx->branches[0].ops[TM_SLOT_FORWARD].status,
                     TM_OP_PENDING);
    tm_trans_free(tx);
}

static void test_unknown_backs_off_and_retry_limit_rolls_back(void **state)
{
    (void)state;
    tm_trans_t *tx = chain_saga(2);
    tm_retry_policy_t p = {100, 1000, 3};
    tm_op_t *op = &tx->branches[0].ops[TM_SLOT_FORWARD];
    int64_t expect[] = {100, 200};
    for (int i = 0; i < 2; i++) {
        tm_op_note_attempt(op, 1000 + i);
        tm_effect_t e = tm_plan_apply_result(tx, fit(tx), 0, TM_SLOT_FORWARD,
                                             TM_RESULT_UNKNOWN, "down", &p, 0);
        assert_false(e.changed);
        assert_int_equal(e.retry_in_ms, expect[i]);
    }
    tm_op_note_attempt(op, 1002);
    tm_effect_t e = tm_plan_apply_result(tx, fit(tx), 0, TM_SLOT_FORWARD,
                                         TM_RESULT_UNKNOWN, "down", &p, 0);
    assert_true(e.changed);
    assert_int_equal(op->status, TM_OP_FAILED);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_non_null(strstr(tx->reason, "3 attempts"));
    tm_trans_free(tx);
}

static void test_phase2_failure_is_retried_with_alert(void **state)
{
    (void)state;
    tm_trans_t *tx = chain_saga(1);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    tm_effect_t e = answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_FAILURE);
    assert_true(e.alert);
    assert_false(e.changed);
    assert_int_equal(e.retry_in_ms, 100);
    e = answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_UNKNOWN);
    assert_int_equal(e.retry_in_ms, 200);
    e = answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_true(e.changed);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_trans_free(tx);
}

static void test_timeout_rolls_back_unless_decided(void **state)
{
    (void)state;
    tm_trans_t *tx = chain_saga(2);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK);
    assert_int_equal(tm_plan_on_timeout(tx, 5000), 1);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_int_equal(tm_plan_on_timeout(tx, 5001), 0);
    tm_trans_free(tx);

    tx = chain_saga(1);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK);
    assert_int_equal(tm_plan_on_timeout(tx, 5000), 0); /* decided */
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    tm_trans_free(tx);

    tx = tm_trans_new("g3", TM_TX_PREPARED, 0);
    assert_int_equal(tm_plan_on_timeout(tx, 5000), 1);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    tm_trans_free(tx);
}

static void test_registered_branches_confirm_after_submit(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g4", TM_TX_PREPARED, 0);
    add_tcc_branch(tx);
    add_tcc_branch(tx);
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 0); /* prepared: the TM waits */
    tx->status = TM_TX_SUBMITTED;
    tm_plan_mark_initiator_ops_done(tx, fit(tx), 10);
    assert_int_equal(ready(tx, r), 2);
    assert_int_equal(r[0].slot, TM_SLOT_COMMIT);
    assert_int_equal(r[1].slot, TM_SLOT_COMMIT);
    answer(tx, 0, TM_SLOT_COMMIT, TM_RESULT_OK);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    answer(tx, 1, TM_SLOT_COMMIT, TM_RESULT_OK);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_SUCCEEDED);
    tm_trans_free(tx);
}

static void test_abort_cancels_registered_in_reverse(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g5", TM_TX_PREPARED, 0);
    add_tcc_branch(tx);
    add_tcc_branch(tx);
    tm_op_ref_t r[32];
    assert_int_equal(tm_plan_start_rollback(tx, "abort", 1), 1);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 1);
    assert_int_equal(r[0].slot, TM_SLOT_ROLLBACK);
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 0);
    answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_trans_free(tx);
}

static void test_commit_waits_for_every_forward_op(void **state)
{
    (void)state;
    /* A registered TCC branch and a TM-driven saga step after it: the
     * confirm must wait for the step, which may still fail. */
    tm_trans_t *tx = tm_trans_new("g6", TM_TX_PREPARED, 0);
    add_tcc_branch(tx);
    uint32_t dep = 0;
    add_saga_step(tx, &dep, 1, 1);
    tx->status = TM_TX_SUBMITTED;
    tm_plan_mark_initiator_ops_done(tx, fit(tx), 10);
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 1);
    assert_int_equal(r[0].slot, TM_SLOT_FORWARD);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_int_equal(ready(tx, r), 1); /* compensate the step, then cancel */
    assert_int_equal(r[0].branch, 1);
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 0);
    assert_int_equal(r[0].slot, TM_SLOT_ROLLBACK);
    tm_trans_free(tx);
}

static void test_step_without_compensation_is_skipped(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g7", TM_TX_SUBMITTED, 0);
    add_saga_step(tx, NULL, 0, 1);
    uint32_t dep = 0;
    add_saga_step(tx, &dep, 1, 0);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 0);
    tm_trans_free(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_classify_follows_protocol_table,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_backoff_doubles_then_caps,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_chain_runs_in_order_and_succeeds,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_failure_at_each_step_compensates_backwards, clear_run,
            clear_run),
        cmocka_unit_test_setup_teardown(test_diamond_runs_branches_concurrently,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_diamond_compensates_graph_backwards, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_rollback_waits_for_forward_on_the_wire, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_ongoing_retries_at_fixed_interval,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_unknown_backs_off_and_retry_limit_rolls_back, clear_run,
            clear_run),
        cmocka_unit_test_setup_teardown(
            test_phase2_failure_is_retried_with_alert, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_timeout_rolls_back_unless_decided,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_registered_branches_confirm_after_submit, clear_run,
            clear_run),
        cmocka_unit_test_setup_teardown(
            test_abort_cancels_registered_in_reverse, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_commit_waits_for_every_forward_op,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_step_without_compensation_is_skipped, clear_run, clear_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
