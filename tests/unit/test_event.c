/*
 * Unit tests of completion listeners (tm_kind_event.c) in the pure parts:
 * tm_request appends one event branch per listener outside the chain of
 * registered branches and steps; tm_validate admits listeners through
 * the allowlist and bounds their number; tm_plan runs their notify last,
 * on either side, knows the outcome before they are told and makes the
 * transaction final only after; tm_event packs the same CompletionEvent
 * from the same model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tm_event.h"
#include "tm_plan.h"
#include "tm_request.h"
#include "tm_validate.h"

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

static char *listener_targets[] = {"h:1/p.L/Notify", "h:2/p.L/Notify"};

static Trellis__V1__TransOptions listening(size_t n)
{
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.n_listeners = n;
    o.listeners = listener_targets;
    return o;
}

/* A submitted saga of two chained steps with compensates, and n
 * listeners, built as trellisd builds it. */
static tm_trans_t *saga_with_listeners(size_t n)
{
    tm_trans_t *tx = tm_trans_new("g1", TM_TX_SUBMITTED, 1000);
    Trellis__V1__SagaStep st[2] = {TRELLIS__V1__SAGA_STEP__INIT,
                                   TRELLIS__V1__SAGA_STEP__INIT};
    Trellis__V1__SagaStep *steps[2] = {&st[0], &st[1]};
    for (int i = 0; i < 2; i++) {
        st[i].action = "h:1/p.S/A";
        st[i].compensate = "h:1/p.S/C";
    }
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = "g1";
    r.n_steps = 2;
    r.steps = steps;
    tm_limits_t lim;
    tm_limits_default(&lim);
    char err[256];
    assert_int_equal(tm_request_add_steps(tx, &r, &lim, err, sizeof(err)), 0);
    Trellis__V1__TransOptions o = listening(n);
    assert_int_equal(tm_request_add_listeners(tx, &o), 0);
    return tx;
}

static size_t ready(const tm_trans_t *tx, tm_op_ref_t *out)
{
    return tm_plan_ready(tx, fit(tx), out, 32);
}

static void answer(tm_trans_t *tx, size_t b, tm_slot_t s, tm_result_t r,
                   int64_t now)
{
    tm_plan_apply_result(tx, fit(tx), b, s, r, "msg", &policy, now);
}

/* Exactly one op is ready, branch b's in slot s. */
static void assert_only_ready(const tm_trans_t *tx, uint32_t b, tm_slot_t s)
{
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, b);
    assert_int_equal(r[0].slot, s);
}

static void test_listeners_appended_as_event_branches(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_listeners(2);
    assert_int_equal(tx->n_branches, 4);
    for (size_t i = 2; i < 4; i++) {
        const tm_branch_t *b = &tx->branches[i];
        assert_int_equal(b->mode, TM_MODE_EVENT);
        assert_string_equal(b->branch_id, i == 2 ? "ev1" : "ev2");
        assert_int_equal(b->n_deps, 0);
        assert_int_equal(b->initiator_driven, 0);
        assert_int_equal(b->ops[TM_SLOT_FORWARD].kind, TM_KIND_NONE);
        assert_int_equal(b->ops[TM_SLOT_COMMIT].kind, TM_KIND_NOTIFY);
        assert_int_equal(b->ops[TM_SLOT_ROLLBACK].kind, TM_KIND_NOTIFY);
        assert_string_equal(b->ops[TM_SLOT_COMMIT].target,
                            listener_targets[i - 2]);
    }
    tm_trans_free(tx);
}

/* Begin with a listener, then RegisterBranch and Submit's steps: the
 * chain goes from registered branch to step past the listener, and the
 * steps are numbered as if it were not there. */
static void test_registered_chain_skips_listeners(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g2", TM_TX_PREPARED, 1000);
    Trellis__V1__TransOptions o = listening(1);
    assert_int_equal(tm_request_add_listeners(tx, &o), 0);
    Trellis__V1__BranchOp op = TRELLIS__V1__BRANCH_OP__INIT;
    op.op = TRELLIS__V1__OP_KIND__OP_CONFIRM;
    op.target = "h:1/p.T/Confirm";
    Trellis__V1__BranchOp *ops[1] = {&op};
    Trellis__V1__RegisterBranchRequest rb =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    rb.gid = "g2";
    rb.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    rb.n_ops = 1;
    rb.ops = ops;
    rb.branch_id = "b1";
    assert_int_equal(tm_request_add_registered(tx, &rb), 0);
    assert_int_equal(tx->branches[1].n_deps, 0); /* not after ev1 */
    rb.branch_id = "b2";
    assert_int_equal(tm_request_add_registered(tx, &rb), 0);
    assert_int_equal(tx->branches[2].n_deps, 1);
    assert_int_equal(tx->branches[2].deps[0], 1);
    Trellis__V1__SagaStep st = TRELLIS__V1__SAGA_STEP__INIT;
    st.action = "h:1/p.S/A";
    Trellis__V1__SagaStep *steps[1] = {&st};
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.n_steps = 1;
    r.steps = steps;
    tm_limits_t lim;
    tm_limits_default(&lim);
    char err[256];
    assert_int_equal(tm_request_add_steps(tx, &r, &lim, err, sizeof(err)), 0);
    assert_string_equal(tx->branches[3].branch_id, "03");
    assert_int_equal(tx->branches[3].n_deps, 1);
    assert_int_equal(tx->branches[3].deps[0], 2);
    tm_trans_free(tx);
}

static void test_listeners_validated(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    char err[512];
    assert_int_equal(tm_allow_parse(&l.allow, "h:*", err, sizeof(err)), 0);
    Trellis__V1__TransOptions o = listening(2);
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    char *denied[] = {"other:9/p.L/Notify"};
    o.listeners = denied;
    o.n_listeners = 1;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), TM_DENIED);
    assert_non_null(strstr(err, "options.listeners[0]"));
    char *bad[] = {"not a target"};
    o.listeners = bad;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), TM_INVALID);
    char *many[TM_LISTENERS_MAX + 1];
    for (size_t i = 0; i <= TM_LISTENERS_MAX; i++)
        many[i] = listener_targets[0];
    o.listeners = many;
    o.n_listeners = TM_LISTENERS_MAX + 1;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), TM_INVALID);
    assert_non_null(strstr(err, "at most 8"));
    o.n_listeners = TM_LISTENERS_MAX;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
}

/* Success: the listeners' commit-side notify goes after both steps, the
 * outcome is known before they are told, final only after both. */
static void test_commit_notifies_last_outcome_known_first(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_listeners(2);
    tm_op_ref_t r[32];
    assert_only_ready(tx, 0, TM_SLOT_FORWARD);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    assert_only_ready(tx, 1, TM_SLOT_FORWARD);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), 0);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_OK, 3000);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), TM_TX_SUCCEEDED);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    assert_int_equal(ready(tx, r), 2); /* both listeners, together */
    assert_int_equal(r[0].branch, 2);
    assert_int_equal(r[0].slot, TM_SLOT_COMMIT);
    assert_int_equal(r[1].branch, 3);
    answer(tx, 2, TM_SLOT_COMMIT, TM_RESULT_OK, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    answer(tx, 3, TM_SLOT_COMMIT, TM_RESULT_UNKNOWN, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0); /* retried */
    answer(tx, 3, TM_SLOT_COMMIT, TM_RESULT_OK, 5000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_SUCCEEDED);
    tm_trans_free(tx);
}

/* Failure: every compensate first, then the rollback-side notify. */
static void test_rollback_notifies_after_every_compensate(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_listeners(1);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE, 2500);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_only_ready(tx, 1, TM_SLOT_ROLLBACK);
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK, 3000);
    assert_only_ready(tx, 0, TM_SLOT_ROLLBACK);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), 0);
    answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_OK, 3500);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), TM_TX_FAILED);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    assert_only_ready(tx, 2, TM_SLOT_ROLLBACK);
    answer(tx, 2, TM_SLOT_ROLLBACK, TM_RESULT_OK, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_trans_free(tx);
}

/* A workflow's hooks (runs_last) and a listener: the hooks first, the
 * listener after them; neither waits for the other forever. */
static void test_hooks_then_listener(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g3", TM_TX_SUBMITTED, 1000);
    tm_branch_t *h = tm_trans_add_branch(tx);
    h->branch_id = tm_strdup("hooks");
    h->mode = TM_MODE_HOOKS;
    h->ops[TM_SLOT_COMMIT].kind = TM_KIND_COMMIT;
    h->ops[TM_SLOT_COMMIT].target = tm_strdup("h:1/p.W/Resume");
    h->ops[TM_SLOT_ROLLBACK].kind = TM_KIND_ROLLBACK;
    h->ops[TM_SLOT_ROLLBACK].target = tm_strdup("h:1/p.W/Resume");
    h->ops[TM_SLOT_COMMIT].status = TM_OP_PENDING;
    h->ops[TM_SLOT_ROLLBACK].status = TM_OP_PENDING;
    Trellis__V1__TransOptions o = listening(1);
    assert_int_equal(tm_request_add_listeners(tx, &o), 0);
    assert_only_ready(tx, 0, TM_SLOT_COMMIT);
    answer(tx, 0, TM_SLOT_COMMIT, TM_RESULT_OK, 2000);
    assert_only_ready(tx, 1, TM_SLOT_COMMIT);
    tm_trans_free(tx);
}

/* The event's bytes depend only on the durable model: a listener's own
 * tries do not move finished_ms. */
static void test_event_bytes_stable(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_listeners(1);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_OK, 3000);
    assert_int_equal(tm_event_finished_ms(tx), 3000);
    size_t n1, n2;
    uint8_t *a = tm_event_pack(tx, TM_SLOT_COMMIT, &n1);
    answer(tx, 2, TM_SLOT_COMMIT, TM_RESULT_UNKNOWN, 9000);
    uint8_t *b = tm_event_pack(tx, TM_SLOT_COMMIT, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    Trellis__V1__CompletionEvent *ev =
        trellis__v1__completion_event__unpack(NULL, n1, a);
    assert_non_null(ev);
    assert_string_equal(ev->gid, "g1");
    assert_int_equal(ev->status, TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED);
    assert_int_equal(ev->created_ms, 1000);
    assert_int_equal(ev->finished_ms, 3000);
    trellis__v1__completion_event__free_unpacked(ev, NULL);
    free(a);
    free(b);
    tm_trans_free(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_listeners_appended_as_event_branches, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_registered_chain_skips_listeners,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_listeners_validated, clear_run,
                                        clear_run),
        cmocka_unit_test_setup_teardown(
            test_commit_notifies_last_outcome_known_first, clear_run,
            clear_run),
        cmocka_unit_test_setup_teardown(
            test_rollback_notifies_after_every_compensate, clear_run,
            clear_run),
        cmocka_unit_test_setup_teardown(test_hooks_then_listener, clear_run,
                                        clear_run),
        cmocka_unit_test_setup_teardown(test_event_bytes_stable, clear_run,
                                        clear_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
