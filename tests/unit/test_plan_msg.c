/*
 * Unit tests of messages on the in-memory model alone: how
 * tm_request_add_message lays a PrepareMessage out (head, one delivery
 * per target or subscriber, dependencies), its content hash, and tm_plan's
 * message rules (tm_plan.h, "Messages"): a prepared message is
 * back-checked, not rolled back, at its timeout; the back-check's answers;
 * steps only go forward, whatever they answer; a timeout after the
 * decision rolls nothing back.
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
static tm_limits_t limits;

static tm_run_t *fit(const tm_trans_t *tx)
{
    assert_int_equal(tm_run_fit(&run, tx->n_branches), 0);
    return &run;
}

static int setup(void **state)
{
    (void)state;
    tm_limits_default(&limits);
    return 0;
}

static int clear_run(void **state)
{
    (void)state;
    tm_run_clear(&run);
    return 0;
}

/* ---- a PrepareMessageRequest to build from ------------------------------ */

typedef struct {
    Trellis__V1__PrepareMessageRequest r;
    Trellis__V1__MessageStep steps[4];
    Trellis__V1__MessageStep *ptrs[4];
    uint32_t deps[4][2];
} msg_req_t;

static void req_init(msg_req_t *m)
{
    memset(m, 0, sizeof(*m));
    trellis__v1__prepare_message_request__init(&m->r);
    m->r.gid = "m1";
    m->r.query_prepared = "h:1/order.Order/QueryPrepared";
    m->r.steps = m->ptrs;
}

static size_t req_step(msg_req_t *m, const char *target, const char *topic)
{
    size_t i = m->r.n_steps++;
    trellis__v1__message_step__init(&m->steps[i]);
    m->steps[i].target = (char *)(target ? target : "");
    m->steps[i].topic = (char *)(topic ? topic : "");
    m->steps[i].payload.data = (uint8_t *)"pay";
    m->steps[i].payload.len = 3;
    m->ptrs[i] = &m->steps[i];
    return i;
}

static void req_dep(msg_req_t *m, size_t step, uint32_t on)
{
    Trellis__V1__MessageStep *s = &m->steps[step];
    m->deps[step][s->n_depends_on++] = on;
    s->depends_on = m->deps[step];
}

static const char *const two_subscribers[] = {"h:2/ship.Ship/Notify",
                                              "h:3/mail.Mail/Notify"};

/* Step 1 names topic "shipped" with two subscribers; the others targets. */
static tm_trans_t *build(const msg_req_t *m)
{
    tm_step_targets_t subs[4] = {{0}};
    for (size_t i = 0; i < m->r.n_steps; i++)
        if (*m->steps[i].topic)
            subs[i] = (tm_step_targets_t){two_subscribers, 2};
    char err[256];
    tm_trans_t *tx = tm_trans_new(m->r.gid, TM_TX_PREPARED, 1000);
    tx->opts.timeout_to_fail_ms = 500;
    assert_int_equal(
        tm_request_add_message(tx, &m->r, subs, &limits, err, sizeof(err)), 0);
    fit(tx);
    return tx;
}

/* A chain: stock (target), shipped (topic: 2 subscribers), audit. */
static tm_trans_t *chain(void)
{
    msg_req_t m;
    req_init(&m);
    req_step(&m, "h:1/stock.Stock/Reserve", NULL);
    req_step(&m, NULL, "shipped");
    req_step(&m, "h:4/audit.Audit/Log", NULL);
    return build(&m);
}

static void assert_deps(const tm_branch_t *b, size_t n, const uint32_t *want)
{
    assert_int_equal(b->n_deps, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b->deps[i], want[i]);
}

static void test_layout_of_a_chain_with_a_topic(void **state)
{
    (void)state;
    tm_trans_t *tx = chain();
    assert_int_equal(tx->n_branches, 5);
    assert_int_equal(tm_plan_is_message(tx), 1);
    assert_int_equal(tm_plan_is_workflow(tx), 0);
    const tm_branch_t *head = &tx->branches[0];
    assert_string_equal(head->branch_id, "00");
    assert_int_equal(head->mode, TM_MODE_MSG_CHECK);
    assert_int_equal(head->initiator_driven, 1);
    assert_int_equal(head->ops[TM_SLOT_FORWARD].kind, TM_KIND_QUERY_PREPARED);
    assert_string_equal(head->ops[TM_SLOT_FORWARD].target,
                        "h:1/order.Order/QueryPrepared");
    const char *want_targets[] = {
        "h:1/stock.Stock/Reserve", "h:2/ship.Ship/Notify",
        "h:3/mail.Mail/Notify", "h:4/audit.Audit/Log"};
    for (size_t i = 1; i < 5; i++) {
        const tm_branch_t *b = &tx->branches[i];
        char id[8];
        snprintf(id, sizeof(id), "%02zu", i);
        assert_string_equal(b->branch_id, id);
        assert_int_equal(b->mode, TM_MODE_MSG);
        assert_int_equal(b->initiator_driven, 0);
        assert_int_equal(b->ops[TM_SLOT_FORWARD].kind, TM_KIND_ACTION);
        assert_string_equal(b->ops[TM_SLOT_FORWARD].target,
                            want_targets[i - 1]);
        assert_int_equal(b->ops[TM_SLOT_ROLLBACK].kind, TM_KIND_NONE);
        assert_int_equal(b->payload_len, 3);
    }
    assert_deps(&tx->branches[1], 0, NULL);
    assert_deps(&tx->branches[2], 1, (uint32_t[]){1});
    assert_deps(&tx->branches[3], 1, (uint32_t[]){1});
    assert_deps(&tx->branches[4], 2, (uint32_t[]){2, 3});
    tm_trans_free(tx);
}

static void test_layout_concurrent_and_depends_on(void **state)
{
    (void)state;
    msg_req_t m;
    req_init(&m);
    m.r.concurrent = 1;
    req_step(&m, NULL, "shipped");
    req_step(&m, "h:1/a.A/Go", NULL);
    req_step(&m, "h:1/b.B/Go", NULL);
    req_dep(&m, 2, 0);
    tm_trans_t *tx = build(&m);
    assert_int_equal(tx->n_branches, 5);
    assert_deps(&tx->branches[1], 0, NULL);
    assert_deps(&tx->branches[2], 0, NULL);
    assert_deps(&tx->branches[3], 0, NULL); /* concurrent: no order */
    assert_deps(&tx->branches[4], 2, (uint32_t[]){1, 2});
    tm_trans_free(tx);
}

static void test_topic_without_subscribers_is_refused(void **state)
{
    (void)state;
    msg_req_t m;
    req_init(&m);
    req_step(&m, "h:1/a.A/Go", NULL);
    req_step(&m, NULL, "nobody");
    tm_step_targets_t subs[2] = {{0}};
    char err[256];
    tm_trans_t *tx = tm_trans_new("m1", TM_TX_PREPARED, 1000);
    assert_int_equal(
        tm_request_add_message(tx, &m.r, subs, &limits, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nobody"));
    assert_non_null(strstr(err, "no subscriber"));
    assert_int_equal(tx->n_branches, 0);
    tm_trans_free(tx);
}

static void test_too_many_deliveries_are_refused(void **state)
{
    (void)state;
    msg_req_t m;
    req_init(&m);
    req_step(&m, NULL, "shipped");
    req_step(&m, NULL, "shipped");
    tm_step_targets_t subs[2] = {{two_subscribers, 2}, {two_subscribers, 2}};
    tm_limits_t small = limits;
    small.max_branches = 4; /* head + 4 deliveries is 5 */
    char err[256];
    tm_trans_t *tx = tm_trans_new("m1", TM_TX_PREPARED, 1000);
    assert_int_equal(
        tm_request_add_message(tx, &m.r, subs, &small, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at most 4 branches"));
    assert_int_equal(tx->n_branches, 0);
    tm_trans_free(tx);
}

static void test_hash_is_the_content(void **state)
{
    (void)state;
    msg_req_t a, b;
    req_init(&a);
    req_step(&a, "h:1/a.A/Go", NULL);
    req_init(&b);
    req_step(&b, "h:1/a.A/Go", NULL);
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.wait_result = 1;
    b.r.options = &o;
    b.r.submit = 1; /* prepare-then-submit repeats a plain prepare */
    assert_true(tm_request_message_hash(&a.r) != 0);
    assert_true(tm_request_message_hash(&a.r) == tm_request_message_hash(&b.r));
    b.r.query_prepared = "h:1/order.Order/Other";
    assert_true(tm_request_message_hash(&a.r) != tm_request_message_hash(&b.r));
    b.r.query_prepared = a.r.query_prepared;
    b.steps[0].payload.len = 2;
    assert_true(tm_request_message_hash(&a.r) != tm_request_message_hash(&b.r));
}

/* ---- the plan ----------------------------------------------------------- */

static size_t ready(const tm_trans_t *tx, tm_op_ref_t *out)
{
    return tm_plan_ready(tx, fit(tx), out, 32);
}

static tm_effect_t answer(tm_trans_t *tx, size_t b, tm_result_t r)
{
    tx->branches[b].ops[TM_SLOT_FORWARD].attempts++;
    return tm_plan_apply_result(tx, fit(tx), b, TM_SLOT_FORWARD, r, "why",
                                &policy, 2000);
}

static void submit(tm_trans_t *tx)
{
    tx->status = TM_TX_SUBMITTED;
    tm_plan_mark_initiator_ops_done(tx, fit(tx), 1500);
}

static void test_prepared_message_is_checked_at_timeout(void **state)
{
    (void)state;
    tm_trans_t *tx = chain();
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 0); /* the initiator's to decide */
    assert_int_equal(tm_plan_on_timeout(tx, 1600), 0);
    assert_int_equal(tx->status, TM_TX_PREPARED);
    assert_int_equal(tm_plan_timeout_resumes(tx, fit(tx)), 1);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 0);
    assert_int_equal(r[0].slot, TM_SLOT_FORWARD);
    tm_trans_free(tx);
}

static void test_check_ok_delivers(void **state)
{
    (void)state;
    tm_trans_t *tx = chain();
    tm_plan_timeout_resumes(tx, fit(tx));
    tm_effect_t e = answer(tx, 0, TM_RESULT_OK);
    assert_int_equal(e.changed, 1);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    assert_int_equal(tx->branches[0].ops[TM_SLOT_FORWARD].status,
                     TM_OP_SUCCEEDED);
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 1); /* the chain's first step */
    assert_int_equal(r[0].branch, 1);
    tm_trans_free(tx);
}

static void test_check_failure_drops(void **state)
{
    (void)state;
    tm_trans_t *tx = chain();
    tm_plan_timeout_resumes(tx, fit(tx));
    tm_effect_t e = answer(tx, 0, TM_RESULT_FAILURE);
    assert_int_equal(e.changed, 1);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_non_null(strstr(tx->reason, "did not commit"));
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 0); /* nothing to undo */
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_plan_finish(tx, TM_TX_FAILED, 2100);
    for (size_t i = 1; i < tx->n_branches; i++)
        assert_int_equal(tx->branches[i].ops[TM_SLOT_FORWARD].status,
                         TM_OP_SKIPPED);
    tm_trans_free(tx);
}

static void test_check_unsure_answers_ask_again(void **state)
{
    (void)state;
    tm_trans_t *tx = chain();
    tm_plan_timeout_resumes(tx, fit(tx));
    tm_effect_t e = answer(tx, 0, TM_RESULT_ONGOING);
    assert_int_equal(e.changed, 0);
    assert_int_equal(e.retry_in_ms, 100);
    e = answer(tx, 0, TM_RESULT_UNKNOWN);
    assert_int_equal(e.retry_in_ms, 100);
    assert_int_equal(e.alert, 0);
    e = answer(tx, 0, TM_RESULT_UNKNOWN);
    assert_int_equal(e.retry_in_ms, 200);
    assert_int_equal(e.alert, 1); /* three attempts: the retry limit */
    assert_int_equal(tx->status, TM_TX_PREPARED);
    assert_int_equal(tx->branches[0].ops[TM_SLOT_FORWARD].status,
                     TM_OP_PENDING);
    tm_trans_free(tx);
}

static void test_check_answer_after_the_decision_changes_nothing(void **state)
{
    (void)state;
    tm_trans_t *tx = chain();
    tm_plan_timeout_resumes(tx, fit(tx));
    submit(tx); /* the initiator's Submit came while the check was out */
    tm_effect_t e = answer(tx, 0, TM_RESULT_FAILURE);
    assert_int_equal(e.changed, 0);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    assert_int_equal(tx->branches[0].ops[TM_SLOT_FORWARD].status,
                     TM_OP_SUCCEEDED);
    tm_trans_free(tx);
}

static void test_steps_only_go_forward(void **state)
{
    (void)state;
    tm_trans_t *tx = chain();
    submit(tx);
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 1);
    tm_effect_t e = answer(tx, 1, TM_RESULT_FAILURE);
    assert_int_equal(tx->status, TM_TX_SUBMITTED); /* never rolled back */
    assert_int_equal(e.alert, 1);
    assert_true(e.retry_in_ms > 0);
    const tm_op_t *op = &tx->branches[1].ops[TM_SLOT_FORWARD];
    assert_int_equal(op->status, TM_OP_PENDING);
    assert_non_null(strstr(op->last_error, "ABORTED"));
    for (int i = 0; i < 5; i++) /* past the retry limit: still forward */
        e = answer(tx, 1, TM_RESULT_UNKNOWN);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    assert_int_equal(e.alert, 1);
    assert_int_equal(tm_plan_on_timeout(tx, 5000), 0);
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    e = answer(tx, 1, TM_RESULT_OK);
    assert_int_equal(e.changed, 1);
    assert_int_equal(ready(tx, r), 2); /* both subscribers of the topic */
    answer(tx, 2, TM_RESULT_OK);
    answer(tx, 3, TM_RESULT_OK);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, 4);
    answer(tx, 4, TM_RESULT_OK);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_SUCCEEDED);
    tm_trans_free(tx);
}

static void test_abort_of_a_prepared_message_drops_it(void **state)
{
    (void)state;
    tm_trans_t *tx = chain();
    assert_int_equal(tm_plan_start_rollback(tx, "local rollback", 1200), 1);
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 0);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_trans_free(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_layout_of_a_chain_with_a_topic,
                                  clear_run),
        cmocka_unit_test_teardown(test_layout_concurrent_and_depends_on,
                                  clear_run),
        cmocka_unit_test_teardown(test_topic_without_subscribers_is_refused,
                                  clear_run),
        cmocka_unit_test_teardown(test_too_many_deliveries_are_refused,
                                  clear_run),
        cmocka_unit_test(test_hash_is_the_content),
        cmocka_unit_test_teardown(test_prepared_message_is_checked_at_timeout,
                                  clear_run),
        cmocka_unit_test_teardown(test_check_ok_delivers, clear_run),
        cmocka_unit_test_teardown(test_check_failure_drops, clear_run),
        cmocka_unit_test_teardown(test_check_unsure_answers_ask_again,
                                  clear_run),
        cmocka_unit_test_teardown(
            test_check_answer_after_the_decision_changes_nothing, clear_run),
        cmocka_unit_test_teardown(test_steps_only_go_forward, clear_run),
        cmocka_unit_test_teardown(test_abort_of_a_prepared_message_drops_it,
                                  clear_run),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
