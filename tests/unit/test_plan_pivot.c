/*
 * Unit tests of the pivot's planning rules on the in-memory model alone
 * (tm_plan.h, "Pivot"): before the pivot is called a failure or the
 * timeout rolls back as ever; once its prerequisites succeeded only the
 * pivot's own ABORTED rolls back (its unknown results outlive the retry
 * limit, the timeout is ignored); once it succeeded every later step only
 * goes forward (ABORTED and the retry limit alert and retry, nothing is
 * compensated) — in a chain, in a graph, and after registered branches.
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
#include "tm_request.h"

static const tm_retry_policy_t policy = {100, 1000, 3};

static tm_run_t run;

static int clear_run(void **state)
{
    (void)state;
    tm_run_clear(&run);
    return 0;
}

/* ---- a saga to plan ------------------------------------------------------ */

static Trellis__V1__SagaStep steps[6];
static Trellis__V1__SagaStep *ptrs[6];
static uint32_t deps[6][3];

/* n steps with compensates (none after the pivot), a chain unless
 * concurrent; the pivot at index pivot. */
static Trellis__V1__SubmitRequest saga_req(size_t n, int concurrent, int pivot)
{
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    for (size_t i = 0; i < n; i++) {
        Trellis__V1__SagaStep s = TRELLIS__V1__SAGA_STEP__INIT;
        s.action = "h:1/p.S/A";
        s.compensate = (int)i <= pivot ? "h:1/p.S/C" : "";
        s.pivot = (int)i == pivot;
        steps[i] = s;
        ptrs[i] = &steps[i];
    }
    r.gid = "g";
    r.steps = ptrs;
    r.n_steps = n;
    r.concurrent = concurrent;
    return r;
}

static void dep(size_t i, uint32_t on)
{
    Trellis__V1__SagaStep *s = &steps[i];
    deps[i][s->n_depends_on++] = on;
    s->depends_on = deps[i];
}

/* Validated (as trellisd does first) and built into tx. */
static void add_steps(tm_trans_t *tx, const Trellis__V1__SubmitRequest *r)
{
    tm_limits_t l;
    tm_limits_default(&l);
    char err[512];
    assert_int_equal(tm_allow_parse(&l.allow, "h:*", err, sizeof(err)), 0);
    if (tm_validate_submit(r, &l, err, sizeof(err)) != 0)
        fail_msg("refused: %s", err);
    assert_int_equal(tm_request_add_steps(tx, r, &l, err, sizeof(err)), 0);
    assert_int_equal(tm_run_fit(&run, tx->n_branches), 0);
}

static tm_trans_t *submitted(const Trellis__V1__SubmitRequest *r)
{
    tm_trans_t *tx = tm_trans_new("g", TM_TX_SUBMITTED, 1000);
    tx->opts.timeout_to_fail_ms = 500;
    tm_run_clear(&run); /* a fresh transaction: no marks of the last one */
    add_steps(tx, r);
    return tx;
}

/* ---- driving it ---------------------------------------------------------- */

/* The ops ready now, as "b.s" text ("0.0 1.2"), in plan order. */
static const char *ready_text(const tm_trans_t *tx, char *buf, size_t len)
{
    tm_op_ref_t refs[16];
    size_t n = tm_plan_ready(tx, &run, refs, 16);
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%u.%d", i ? " " : "",
                                refs[i].branch, (int)refs[i].slot);
    return buf;
}

static void assert_ready(const tm_trans_t *tx, const char *want)
{
    char buf[128];
    assert_string_equal(ready_text(tx, buf, sizeof(buf)), want);
}

/* Call op (b, slot) and fold in result: what the engine does. */
static tm_effect_t answer(tm_trans_t *tx, size_t b, tm_slot_t slot,
                          tm_result_t result)
{
    tm_op_t *op = &tx->branches[b].ops[slot];
    tm_op_note_attempt(op, 2000);
    return tm_plan_apply_result(tx, &run, b, slot, result,
                                result == TM_RESULT_FAILURE ? "no stock"
                                                            : "unavailable",
                                &policy, 2000);
}

static tm_effect_t ok(tm_trans_t *tx, size_t b)
{
    return answer(tx, b, TM_SLOT_FORWARD, TM_RESULT_OK);
}

/* ---- chains -------------------------------------------------------------- */

static void test_failure_before_the_pivot_rolls_back(void **state)
{
    (void)state;
    Trellis__V1__SubmitRequest r = saga_req(3, 0, 1);
    tm_trans_t *tx = submitted(&r);
    assert_int_equal(tm_plan_pivot_index(tx), 1);
    assert_false(tm_plan_pivot_decides(tx));
    ok(tx, 0);
    tm_effect_t e = answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_true(e.changed);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_false(tm_plan_past_pivot(tx));
    /* the pivot's own compensate first, then the step before it */
    assert_ready(tx, "1.2");
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_ready(tx, "0.2");
    answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_int_equal(tm_plan_outcome(tx, &run), TM_TX_FAILED);
    tm_trans_free(tx);

    /* The first step fails: the pivot never runs, nothing after it. */
    r = saga_req(3, 0, 1);
    tx = submitted(&r);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_ready(tx, "0.2");
    tm_trans_free(tx);
}

static void test_timeout_and_retry_limit_before_the_pivot(void **state)
{
    (void)state;
    /* Step 0 is still running: the timeout rolls back. */
    Trellis__V1__SubmitRequest r = saga_req(3, 0, 1);
    tm_trans_t *tx = submitted(&r);
    assert_int_equal(tm_plan_on_timeout(tx, 3000), 1);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    tm_trans_free(tx);

    /* Step 0's retry limit: rolls back. */
    r = saga_req(3, 0, 1);
    tx = submitted(&r);
    for (int i = 0; i < 3; i++)
        answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_UNKNOWN);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    tm_trans_free(tx);
}

static void test_the_pivots_answer_decides(void **state)
{
    (void)state;
    Trellis__V1__SubmitRequest r = saga_req(3, 0, 1);
    tm_trans_t *tx = submitted(&r);
    ok(tx, 0);
    assert_true(tm_plan_pivot_decides(tx));
    assert_false(tm_plan_past_pivot(tx));
    assert_ready(tx, "1.0");
    /* Unknown past the retry limit: retried, alerted, never failed. */
    for (int i = 0; i < 5; i++) {
        tm_effect_t e = answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_UNKNOWN);
        assert_true(e.retry_in_ms > 0);
        assert_int_equal(e.alert, i >= 2);
    }
    assert_int_equal(tx->branches[1].ops[TM_SLOT_FORWARD].status,
                     TM_OP_PENDING);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    /* The timeout rolls nothing back. */
    assert_int_equal(tm_plan_on_timeout(tx, 3000), 0);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    /* ABORTED from the pivot itself does. */
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_ready(tx, "1.2");
    tm_trans_free(tx);
}

static void test_after_the_pivot_only_forward(void **state)
{
    (void)state;
    Trellis__V1__SubmitRequest r = saga_req(4, 0, 1);
    tm_trans_t *tx = submitted(&r);
    ok(tx, 0);
    ok(tx, 1);
    assert_true(tm_plan_past_pivot(tx));
    assert_ready(tx, "2.0");
    /* ABORTED: a participant bug, retried with backoff, alerted. */
    tm_effect_t e = answer(tx, 2, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_true(e.alert);
    assert_true(e.retry_in_ms > 0);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    const tm_op_t *op = &tx->branches[2].ops[TM_SLOT_FORWARD];
    assert_int_equal(op->status, TM_OP_PENDING);
    assert_non_null(strstr(op->last_error, "after the pivot"));
    assert_non_null(strstr(op->last_error, "no stock"));
    /* the retry limit only alerts */
    for (int i = 0; i < 4; i++)
        answer(tx, 2, TM_SLOT_FORWARD, TM_RESULT_UNKNOWN);
    assert_int_equal(op->status, TM_OP_PENDING);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    /* the timeout rolls nothing back, and no rollback is started */
    assert_int_equal(tm_plan_on_timeout(tx, 3000), 0);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    /* succeeded at last: on to the next, then done, nothing compensated */
    ok(tx, 2);
    assert_ready(tx, "3.0");
    answer(tx, 3, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    ok(tx, 3);
    assert_int_equal(tm_plan_outcome(tx, &run), TM_TX_SUCCEEDED);
    for (size_t b = 0; b < tx->n_branches; b++)
        assert_int_equal(tx->branches[b].ops[TM_SLOT_ROLLBACK].attempts, 0);
    tm_trans_free(tx);
}

/* ---- graphs and registered branches ---------------------------------- */

/* 0 and 1 at once, the pivot 2 after both, 3 after the pivot, 4 after 3. */
static tm_trans_t *graph(void)
{
    Trellis__V1__SubmitRequest r = saga_req(5, 1, 2);
    dep(2, 0);
    dep(2, 1);
    dep(3, 2);
    dep(4, 3);
    return submitted(&r);
}

static void test_graph_before_and_after(void **state)
{
    (void)state;
    /* Before: 1 fails while 0 succeeded: 0 is compensated. */
    tm_trans_t *tx = graph();
    assert_ready(tx, "0.0 1.0");
    ok(tx, 0);
    assert_false(tm_plan_pivot_decides(tx));
    assert_int_equal(tm_plan_on_timeout(tx, 3000), 1); /* 1 still runs */
    tm_trans_free(tx);

    tx = graph();
    ok(tx, 0);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_ready(tx, "0.2 1.2");
    tm_trans_free(tx);

    /* After: both succeeded, then the pivot; 3 and 4 only go forward. */
    tx = graph();
    ok(tx, 0);
    ok(tx, 1);
    assert_true(tm_plan_pivot_decides(tx));
    assert_int_equal(tm_plan_on_timeout(tx, 3000), 0);
    ok(tx, 2);
    assert_ready(tx, "3.0");
    answer(tx, 3, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    ok(tx, 3);
    answer(tx, 4, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    ok(tx, 4);
    assert_int_equal(tm_plan_outcome(tx, &run), TM_TX_SUCCEEDED);
    tm_trans_free(tx);
}

/* A TCC branch registered before Submit is before every step: the pivot
 * (the first step) decides at once; its failure cancels the branch. */
static void test_registered_branches_are_before(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g", TM_TX_PREPARED, 1000);
    tx->opts.timeout_to_fail_ms = 500;
    Trellis__V1__BranchOp cancel = TRELLIS__V1__BRANCH_OP__INIT;
    cancel.op = TRELLIS__V1__OP_KIND__OP_CANCEL;
    cancel.target = "h:1/p.S/Cancel";
    Trellis__V1__BranchOp *ops[] = {&cancel};
    Trellis__V1__RegisterBranchRequest reg =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    reg.gid = "g";
    reg.branch_id = "t1";
    reg.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    reg.ops = ops;
    reg.n_ops = 1;
    assert_int_equal(tm_request_add_registered(tx, &reg), 0);
    Trellis__V1__SubmitRequest r = saga_req(2, 0, 0);
    add_steps(tx, &r);
    tx->status = TM_TX_SUBMITTED;
    tm_plan_mark_initiator_ops_done(tx, &run, 1500);
    assert_int_equal(tm_plan_pivot_index(tx), 1);
    assert_true(tm_plan_pivot_decides(tx));
    assert_int_equal(tm_plan_on_timeout(tx, 3000), 0);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_ready(tx, "1.2");
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK);
    assert_ready(tx, "0.2");
    tm_trans_free(tx);
}

/* No pivot: the rules are as they were (timeout after some success still
 * rolls back). */
static void test_no_pivot_changes_nothing(void **state)
{
    (void)state;
    Trellis__V1__SubmitRequest r = saga_req(3, 0, -1);
    for (size_t i = 0; i < 3; i++)
        steps[i].compensate = "h:1/p.S/C";
    tm_trans_t *tx = submitted(&r);
    assert_int_equal(tm_plan_pivot_index(tx), -1);
    ok(tx, 0);
    ok(tx, 1);
    assert_false(tm_plan_pivot_decides(tx));
    assert_false(tm_plan_past_pivot(tx));
    answer(tx, 2, TM_SLOT_FORWARD, TM_RESULT_FAILURE);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    tm_trans_free(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_failure_before_the_pivot_rolls_back,
                                  clear_run),
        cmocka_unit_test_teardown(test_timeout_and_retry_limit_before_the_pivot,
                                  clear_run),
        cmocka_unit_test_teardown(test_the_pivots_answer_decides, clear_run),
        cmocka_unit_test_teardown(test_after_the_pivot_only_forward, clear_run),
        cmocka_unit_test_teardown(test_graph_before_and_after, clear_run),
        cmocka_unit_test_teardown(test_registered_branches_are_before,
                                  clear_run),
        cmocka_unit_test_teardown(test_no_pivot_changes_nothing, clear_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
