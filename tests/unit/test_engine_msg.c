/*
 * Unit tests of a message's life in the engine core (tm_engine_msg.c and
 * the plan's message rules), on the hand-stepped fake env
 * (tests/common/fake_env.h): every answer waits for its write; Submit
 * delivers the steps in order; the timeout back-checks a message the
 * initiator left prepared and delivers or drops it by the answer; a step
 * that answers ABORTED is retried, never rolled back; repeats and
 * mismatches of PrepareMessage and Submit.
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

#define CHECK "127.0.0.1:1/order.Order/QueryPrepared"
#define STOCK "127.0.0.1:2/stock.Stock/Reserve"
#define SHIP "127.0.0.1:3/ship.Ship/Notify"

enum { ST_OK = 0, ST_ABORTED = 10, ST_UNAVAILABLE = 14 };

#define TIMEOUT_MS 500

/* ---- requests ---- */

typedef struct {
    Trellis__V1__PrepareMessageRequest r;
    Trellis__V1__TransOptions o;
    Trellis__V1__MessageStep s[2];
    Trellis__V1__MessageStep *p[2];
} msg_t;

/* Two steps in a chain: reserve stock, then notify shipping. */
static Trellis__V1__PrepareMessageRequest *message(msg_t *m, const char *gid)
{
    trellis__v1__prepare_message_request__init(&m->r);
    trellis__v1__trans_options__init(&m->o);
    m->o.timeout_to_fail_ms = TIMEOUT_MS;
    const char *targets[2] = {STOCK, SHIP};
    for (int i = 0; i < 2; i++) {
        trellis__v1__message_step__init(&m->s[i]);
        m->s[i].target = (char *)targets[i];
        m->s[i].payload.data = (uint8_t *)"order=1";
        m->s[i].payload.len = 7;
        m->p[i] = &m->s[i];
    }
    m->r.gid = (char *)gid;
    m->r.steps = m->p;
    m->r.n_steps = 2;
    m->r.query_prepared = CHECK;
    m->r.options = &m->o;
    return &m->r;
}

static fenv_rpc_t *send_prepare(const char *gid)
{
    msg_t m;
    return fenv_send(ENGINE_CALL_PREPARE_MESSAGE, &message(&m, gid)->base);
}

static fenv_rpc_t *send_submit(const char *gid)
{
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = (char *)gid;
    return fenv_send(ENGINE_CALL_SUBMIT, &r.base);
}

static fenv_rpc_t *send_abort(const char *gid)
{
    Trellis__V1__AbortRequest r = TRELLIS__V1__ABORT_REQUEST__INIT;
    r.gid = (char *)gid;
    r.reason = "local transaction rolled back";
    return fenv_send(ENGINE_CALL_ABORT, &r.base);
}

static void durably_as(fenv_rpc_t *r, tm_tx_status_t status)
{
    fenv_assert_unanswered(r); /* write-ahead */
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(r, TM_CODE_OK, status);
}

static tm_tx_status_t queried(const char *gid)
{
    fenv_rpc_t *q = fenv_send_query(gid);
    assert_int_equal(q->code, TM_CODE_OK);
    return q->status;
}

/* Deliver the two steps: each call starts only after the one before
 * succeeded durably; the last result ends the message. */
static void deliver_both(const char *gid, size_t first_call)
{
    assert_int_equal(fenv_calls_started(), first_call + 1);
    fenv_assert_call(first_call, gid, "01", "action");
    fenv_answer_call(first_call, ST_OK);
    fenv_commit_next(TM_WRITE_DONE);
    assert_int_equal(fenv_calls_started(), first_call + 2);
    fenv_assert_call(first_call + 1, gid, "02", "action");
    fenv_answer_call(first_call + 1, ST_OK);
    fenv_commit_next(TM_WRITE_DONE);
    assert_int_equal(queried(gid), TM_TX_SUCCEEDED);
}

/* ---- tests ---- */

static void test_submit_delivers_in_order(void **state)
{
    (void)state;
    durably_as(send_prepare("m1"), TM_TX_PREPARED);
    assert_int_equal(fenv_calls_started(), 0); /* the initiator decides */
    /* The same PrepareMessage again (a lost answer): its status. */
    fenv_assert_answer(send_prepare("m1"), TM_CODE_OK, TM_TX_PREPARED);
    durably_as(send_submit("m1"), TM_TX_SUBMITTED);
    deliver_both("m1", 0);
    /* A late repeat of the Submit is told the outcome. */
    fenv_assert_answer(send_submit("m1"), TM_CODE_OK, TM_TX_SUCCEEDED);
}

static void test_timeout_checks_and_delivers(void **state)
{
    (void)state;
    durably_as(send_prepare("m2"), TM_TX_PREPARED);
    fenv_fire_timer(fenv_timer_last());
    assert_int_equal(fenv_calls_started(), 1);
    fenv_assert_call(0, "m2", "00", "query_prepared");
    fenv_answer_call(0, ST_UNAVAILABLE); /* asked again, with backoff */
    fenv_commit_next(TM_WRITE_DONE);     /* its attempt */
    assert_int_equal(queried("m2"), TM_TX_PREPARED);
    fenv_fire_timer(0);
    assert_int_equal(fenv_calls_started(), 2);
    fenv_answer_call(1, ST_OK); /* committed */
    fenv_commit_next(TM_WRITE_DONE);
    assert_int_equal(queried("m2"), TM_TX_SUBMITTED);
    deliver_both("m2", 2);
    /* The initiator's Submit, late: the message was delivered. */
    fenv_assert_answer(send_submit("m2"), TM_CODE_OK, TM_TX_SUCCEEDED);
}

static void test_timeout_checks_and_drops(void **state)
{
    (void)state;
    durably_as(send_prepare("m3"), TM_TX_PREPARED);
    fenv_fire_timer(fenv_timer_last());
    fenv_assert_call(0, "m3", "00", "query_prepared");
    fenv_answer_call(0, ST_ABORTED); /* not committed, and never will be */
    while (fenv_queued())
        fenv_commit_next(TM_WRITE_DONE);
    fenv_rpc_t *q = fenv_send_query("m3");
    assert_int_equal(q->status, TM_TX_FAILED);
    assert_non_null(strstr(q->reason, "did not commit"));
    assert_int_equal(q->op_status[1][TM_SLOT_FORWARD], TM_OP_SKIPPED);
    assert_int_equal(fenv_calls_started(), 1); /* nothing delivered */
}

static void test_abort_drops_a_prepared_message(void **state)
{
    (void)state;
    durably_as(send_prepare("m4"), TM_TX_PREPARED);
    fenv_rpc_t *a = send_abort("m4");
    while (fenv_queued())
        fenv_commit_next(TM_WRITE_DONE);
    assert_int_equal(a->code, TM_CODE_OK);
    assert_int_equal(queried("m4"), TM_TX_FAILED);
    assert_int_equal(fenv_calls_started(), 0);
    /* Submit after the drop says so; it does not revive it. */
    fenv_assert_answer(send_submit("m4"), TM_CODE_OK, TM_TX_FAILED);
}

static void test_a_failing_step_is_retried_never_rolled_back(void **state)
{
    (void)state;
    durably_as(send_prepare("m5"), TM_TX_PREPARED);
    durably_as(send_submit("m5"), TM_TX_SUBMITTED);
    fenv_assert_call(0, "m5", "01", "action");
    fenv_answer_call(0, ST_ABORTED); /* a participant bug */
    fenv_commit_next(TM_WRITE_DONE); /* its attempt */
    assert_int_equal(queried("m5"), TM_TX_SUBMITTED);
    fenv_rpc_t *q = fenv_send_query("m5");
    assert_int_equal(q->op_status[1][TM_SLOT_FORWARD], TM_OP_PENDING);
    /* The transaction's timeout passes: still forward only. */
    fenv_fire_timer(fenv_timer_last());
    assert_int_equal(queried("m5"), TM_TX_SUBMITTED);
    assert_int_equal(fenv_queued(), 0);
    fenv_fire_timer(fenv_timer_last()); /* the step's retry */
    assert_int_equal(fenv_calls_started(), 2);
    fenv_assert_call(1, "m5", "01", "action");
    fenv_answer_call(1, ST_OK);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_answer_call(2, ST_OK);
    fenv_commit_next(TM_WRITE_DONE);
    assert_int_equal(queried("m5"), TM_TX_SUCCEEDED);
}

static void test_mismatches_are_refused(void **state)
{
    (void)state;
    durably_as(send_prepare("m6"), TM_TX_PREPARED);
    msg_t m;
    Trellis__V1__PrepareMessageRequest *r = message(&m, "m6");
    r->steps[1]->target = STOCK; /* other content, same gid */
    fenv_assert_answer(fenv_send(ENGINE_CALL_PREPARE_MESSAGE, &r->base),
                       TM_CODE_ALREADY_EXISTS, 0);
    Trellis__V1__SagaStep step = TRELLIS__V1__SAGA_STEP__INIT;
    step.action = STOCK;
    Trellis__V1__SagaStep *steps[] = {&step};
    Trellis__V1__SubmitRequest s = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    s.gid = "m6";
    s.steps = steps;
    s.n_steps = 1;
    fenv_assert_answer(fenv_send(ENGINE_CALL_SUBMIT, &s.base),
                       TM_CODE_INVALID_ARGUMENT, 0);
    assert_int_equal(fenv_queued(), 0); /* nothing stored */
    durably_as(send_submit("m6"), TM_TX_SUBMITTED);
    fenv_assert_answer(send_abort("m6"), TM_CODE_FAILED_PRECONDITION, 0);
    deliver_both("m6", 0);
}

static void test_sent_at_once_answers_when_delivered(void **state)
{
    (void)state;
    msg_t m;
    Trellis__V1__PrepareMessageRequest *r = message(&m, "m7");
    r->submit = 1;
    r->query_prepared = "";
    m.o.wait_result = 1;
    fenv_rpc_t *p = fenv_send(ENGINE_CALL_PREPARE_MESSAGE, &r->base);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_unanswered(p); /* waits for the outcome */
    deliver_both("m7", 0);
    fenv_assert_answer(p, TM_CODE_OK, TM_TX_SUCCEEDED);
}

static void subscribe(const char *topic, const char *target)
{
    const tm_engine_env_t *env = fenv_env();
    char err[256];
    assert_int_equal(env->store_subscribe(env->store, topic, target, "",
                                          fenv_now(), err, sizeof(err)),
                     1);
}

/* A topic step goes to every subscriber the store had when the message
 * was stored, each its own branch; a later subscriber does not get it. */
static void test_topic_goes_to_every_subscriber(void **state)
{
    (void)state;
    subscribe("order.created", SHIP);
    subscribe("order.created", "127.0.0.1:4/mail.Mail/Notify");
    msg_t m;
    Trellis__V1__PrepareMessageRequest *r = message(&m, "t1");
    m.s[1].target = "";
    m.s[1].topic = "order.created";
    durably_as(fenv_send(ENGINE_CALL_PREPARE_MESSAGE, &r->base),
               TM_TX_PREPARED);
    subscribe("order.created", "127.0.0.1:5/late.Late/Notify");
    durably_as(send_submit("t1"), TM_TX_SUBMITTED);
    fenv_assert_call(0, "t1", "01", "action");
    fenv_answer_call(0, ST_OK);
    fenv_commit_next(TM_WRITE_DONE);
    assert_int_equal(fenv_calls_started(), 3); /* both subscribers at once */
    fenv_assert_call(1, "t1", "02", "action");
    fenv_assert_call(2, "t1", "03", "action");
    fenv_answer_call(1, ST_OK);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_answer_call(2, ST_OK);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_rpc_t *q = fenv_send_query("t1");
    assert_int_equal(q->status, TM_TX_SUCCEEDED);
    assert_int_equal(q->n_branches, 4); /* head, stock, two subscribers */
    assert_int_equal(fenv_calls_started(), 3);
}

static void test_unknown_topic_or_unreadable_store_stores_nothing(void **state)
{
    (void)state;
    msg_t m;
    Trellis__V1__PrepareMessageRequest *r = message(&m, "t2");
    m.s[1].target = "";
    m.s[1].topic = "nobody.listens";
    fenv_rpc_t *p = fenv_send(ENGINE_CALL_PREPARE_MESSAGE, &r->base);
    fenv_assert_answer(p, TM_CODE_NOT_FOUND, 0);
    assert_non_null(strstr(p->message, "nobody.listens"));
    subscribe("nobody.listens", SHIP);
    fenv_refuse_topics(1);
    fenv_assert_answer(fenv_send(ENGINE_CALL_PREPARE_MESSAGE, &r->base),
                       TM_CODE_UNAVAILABLE, 0);
    assert_int_equal(fenv_queued(), 0);
    fenv_assert_answer(fenv_send_query("t2"), TM_CODE_NOT_FOUND, 0);
    durably_as(fenv_send(ENGINE_CALL_PREPARE_MESSAGE, &r->base),
               TM_TX_PREPARED);
    send_abort("t2");
    while (fenv_queued())
        fenv_commit_next(TM_WRITE_DONE);
    assert_int_equal(queried("t2"), TM_TX_FAILED);
}

/* A subscription made while its target was allowed (the store's table
 * as a narrower allow-targets finds it after a restart) is not called:
 * the message is refused, naming it, and nothing is stored. */
static void test_subscriber_no_longer_allowed_is_refused(void **state)
{
    (void)state;
    subscribe("order.created", SHIP);
    subscribe("order.created", "10.9.9.9:1/evil.Evil/Take");
    msg_t m;
    Trellis__V1__PrepareMessageRequest *r = message(&m, "t3");
    m.s[1].target = "";
    m.s[1].topic = "order.created";
    fenv_rpc_t *p = fenv_send(ENGINE_CALL_PREPARE_MESSAGE, &r->base);
    fenv_assert_answer(p, TM_CODE_PERMISSION_DENIED, 0);
    assert_non_null(strstr(p->message, "10.9.9.9:1/evil.Evil/Take"));
    assert_int_equal(fenv_queued(), 0);
    fenv_assert_answer(fenv_send_query("t3"), TM_CODE_NOT_FOUND, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_delivers_in_order,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_checks_and_delivers,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_checks_and_drops,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_abort_drops_a_prepared_message,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_failing_step_is_retried_never_rolled_back, fenv_setup_local,
            fenv_teardown),
        cmocka_unit_test_setup_teardown(test_mismatches_are_refused,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(
            test_sent_at_once_answers_when_delivered, fenv_setup_local,
            fenv_teardown),
        cmocka_unit_test_setup_teardown(test_topic_goes_to_every_subscriber,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(
            test_unknown_topic_or_unreadable_store_stores_nothing,
            fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(
            test_subscriber_no_longer_allowed_is_refused, fenv_setup_local,
            fenv_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
