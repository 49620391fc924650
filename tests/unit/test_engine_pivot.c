/*
 * Unit tests of a saga with a pivot step in the engine core (tm_plan.h,
 * "Pivot"), on the hand-stepped fake env (tests/common/fake_env.h): a
 * failure before the pivot is rolled back; a failure after it is retried
 * until it succeeds and nothing is compensated; Abort after it is refused
 * naming the pivot; the timeout after it rolls nothing back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_env.h"
#include "tm_engine.h"
#include "tm_validate.h"

#define PAY "127.0.0.1:1/pay.Pay/Charge"
#define REFUND "127.0.0.1:1/pay.Pay/Refund"
#define SHIP "127.0.0.1:2/ship.Ship/Send"

enum { ST_OK = 0, ST_ABORTED = 10 };

#define TIMEOUT_MS 500

/* ---- requests ---- */

typedef struct {
    Trellis__V1__SubmitRequest r;
    Trellis__V1__TransOptions o;
    Trellis__V1__SagaStep s[3];
    Trellis__V1__SagaStep *p[3];
} saga_t;

/* A chain: charge (refund), the pivot charge (refund), then ship (no
 * compensate: it comes after the pivot). */
static fenv_rpc_t *send_saga(const char *gid)
{
    saga_t m;
    trellis__v1__submit_request__init(&m.r);
    trellis__v1__trans_options__init(&m.o);
    m.o.timeout_to_fail_ms = TIMEOUT_MS;
    for (int i = 0; i < 3; i++) {
        trellis__v1__saga_step__init(&m.s[i]);
        m.s[i].action = i < 2 ? PAY : SHIP;
        m.s[i].compensate = i < 2 ? REFUND : "";
        m.s[i].pivot = i == 1;
        m.p[i] = &m.s[i];
    }
    m.r.gid = (char *)gid;
    m.r.steps = m.p;
    m.r.n_steps = 3;
    m.r.options = &m.o;
    return fenv_send(ENGINE_CALL_SUBMIT, &m.r.base);
}

static fenv_rpc_t *send_abort(const char *gid)
{
    Trellis__V1__AbortRequest r = TRELLIS__V1__ABORT_REQUEST__INIT;
    r.gid = (char *)gid;
    r.reason = "changed my mind";
    return fenv_send(ENGINE_CALL_ABORT, &r.base);
}

static tm_tx_status_t queried(const char *gid)
{
    fenv_rpc_t *q = fenv_send_query(gid);
    assert_int_equal(q->code, TM_CODE_OK);
    return q->status;
}

/* Submitted durably; the first step's call is on the wire. */
static void submitted(const char *gid)
{
    fenv_rpc_t *r = send_saga(gid);
    fenv_assert_unanswered(r);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(r, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(fenv_calls_started(), 1);
    fenv_assert_call(0, gid, "01", "action");
}

/* Call i answers status, and its write commits. */
static void answer(size_t i, int status)
{
    fenv_answer_call(i, status);
    fenv_commit_next(TM_WRITE_DONE);
}

/* ---- tests ---- */

static void test_failure_before_the_pivot_rolls_back(void **state)
{
    (void)state;
    submitted("p1");
    answer(0, ST_OK);
    fenv_assert_call(1, "p1", "02", "action");
    answer(1, ST_ABORTED); /* the pivot itself fails: roll back */
    fenv_assert_call(2, "p1", "02", "compensate");
    answer(2, ST_OK);
    fenv_assert_call(3, "p1", "01", "compensate");
    answer(3, ST_OK);
    assert_int_equal(fenv_calls_started(), 4); /* step 03 never ran */
    assert_int_equal(queried("p1"), TM_TX_FAILED);
}

static void test_failure_after_the_pivot_is_retried(void **state)
{
    (void)state;
    submitted("p2");
    answer(0, ST_OK);
    answer(1, ST_OK); /* the pivot: forward only from here */
    fenv_assert_call(2, "p2", "03", "action");
    answer(2, ST_ABORTED); /* a participant bug: its attempt stored */
    fenv_rpc_t *q = fenv_send_query("p2");
    assert_int_equal(q->status, TM_TX_SUBMITTED);
    assert_int_equal(q->op_status[2][TM_SLOT_FORWARD], TM_OP_PENDING);
    /* Abort is refused, naming the pivot. */
    fenv_rpc_t *a = send_abort("p2");
    assert_int_equal(a->code, TM_CODE_FAILED_PRECONDITION);
    assert_non_null(strstr(a->message, "past its pivot (step 02"));
    assert_int_equal(fenv_queued(), 0);
    /* the retry, after the backoff: succeeds, nothing compensated */
    fenv_fire_timer(fenv_timer_first());
    assert_int_equal(fenv_calls_started(), 4);
    fenv_assert_call(3, "p2", "03", "action");
    answer(3, ST_ABORTED);
    fenv_fire_timer(fenv_timer_first());
    fenv_assert_call(4, "p2", "03", "action");
    answer(4, ST_OK);
    assert_int_equal(fenv_calls_started(), 5);
    assert_int_equal(queried("p2"), TM_TX_SUCCEEDED);
}

static void test_timeout_after_the_pivot_rolls_nothing_back(void **state)
{
    (void)state;
    submitted("p3");
    answer(0, ST_OK);
    answer(1, ST_OK);
    answer(2, ST_ABORTED);
    fenv_fire_timer(fenv_timer_last()); /* the transaction's timeout */
    assert_int_equal(fenv_queued(), 0);
    assert_int_equal(queried("p3"), TM_TX_SUBMITTED);
    fenv_fire_timer(0); /* the step's retry: the only timer left */
    fenv_assert_call(3, "p3", "03", "action");
    answer(3, ST_OK);
    assert_int_equal(queried("p3"), TM_TX_SUCCEEDED);
}

/* While the pivot's own call is unanswered, the timeout rolls nothing
 * back either: it may have taken effect. */
static void test_timeout_while_the_pivot_runs(void **state)
{
    (void)state;
    submitted("p4");
    answer(0, ST_OK);
    fenv_assert_call(1, "p4", "02", "action");
    fenv_fire_timer(fenv_timer_last());
    assert_int_equal(fenv_queued(), 0);
    assert_int_equal(queried("p4"), TM_TX_SUBMITTED);
    answer(1, ST_OK);
    answer(2, ST_OK);
    assert_int_equal(queried("p4"), TM_TX_SUCCEEDED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_failure_before_the_pivot_rolls_back, fenv_setup_local,
            fenv_teardown),
        cmocka_unit_test_setup_teardown(test_failure_after_the_pivot_is_retried,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(
            test_timeout_after_the_pivot_rolls_nothing_back, fenv_setup_local,
            fenv_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_while_the_pivot_runs,
                                        fenv_setup_local, fenv_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
