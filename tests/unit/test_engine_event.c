/*
 * Unit tests of completion listeners (tm_kind_event.c) in the engine core,
 * on the hand-stepped fake env (tests/common/fake_env.h): a Submit that
 * waits is answered once the outcome is durable, before any listener is
 * told; each listener's notify is sent the packed CompletionEvent (the
 * status of the side taken, the reason, the times) with dtm-op "notify"
 * and its own branch id, retried until it answers OK, and only then is
 * the transaction final; a copy reloaded from the store sends the same
 * bytes again. Batching listeners (listener_batch, tm_batch.c): events
 * that come while a call is out go together in the next call, capped at
 * the batch size; a failed batch is retried event by event. Branch
 * listeners (tm_kind_branch_event.c): each step's
 * BranchEvent once the step is settled, the waiter not waiting for them,
 * retried and reloaded with the same bytes.
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
#include "tm_log.h"

#define ACT "127.0.0.1:1/p.S/Act"
#define UNDO "127.0.0.1:1/p.S/Undo"
#define LISTEN "127.0.0.1:2/p.L/Notify"
#define BLISTEN "127.0.0.1:3/p.B/Notify"

enum { ST_OK = 0, ST_ABORTED = 10, ST_UNAVAILABLE = 14 };

/* TransOptions.listener_batch of the sagas send_saga_with sends. */
static uint32_t batch_size;

static int reset_batch(void **state)
{
    batch_size = 0;
    return fenv_setup_local(state);
}

/* Two chained steps with compensates, n listeners, n_branch branch
 * listeners, wait_result. */
static fenv_rpc_t *send_saga_with(const char *gid, size_t n_listeners,
                                  size_t n_branch)
{
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    Trellis__V1__SagaStep s[2], *p[2] = {&s[0], &s[1]};
    for (int i = 0; i < 2; i++) {
        trellis__v1__saga_step__init(&s[i]);
        s[i].action = ACT;
        s[i].compensate = UNDO;
    }
    char *listeners[2] = {LISTEN, LISTEN};
    o.wait_result = 1;
    char *branch_listeners[1] = {BLISTEN};
    o.n_listeners = n_listeners;
    o.listeners = listeners;
    o.n_branch_listeners = n_branch;
    o.branch_listeners = branch_listeners;
    o.listener_batch = batch_size;
    r.gid = (char *)gid;
    r.steps = p;
    r.n_steps = 2;
    r.options = &o;
    return fenv_send(ENGINE_CALL_SUBMIT, &r.base);
}

static fenv_rpc_t *send_saga(const char *gid, size_t n_listeners)
{
    return send_saga_with(gid, n_listeners, 0);
}

/* Call i's request, as a branch listener reads it. The caller frees it. */
static Trellis__V1__BranchEvent *branch_event_of(size_t i)
{
    size_t len;
    const uint8_t *b = fenv_call_payload(i, &len);
    Trellis__V1__BranchEvent *ev =
        trellis__v1__branch_event__unpack(NULL, len, b);
    assert_non_null(ev);
    return ev;
}

/* Call i's request, as a listener reads it. The caller frees it. */
static Trellis__V1__CompletionEvent *event_of(size_t i)
{
    size_t len;
    const uint8_t *b = fenv_call_payload(i, &len);
    Trellis__V1__CompletionEvent *ev =
        trellis__v1__completion_event__unpack(NULL, len, b);
    assert_non_null(ev);
    return ev;
}

static void assert_same_bytes(size_t i, size_t j)
{
    size_t a_len, b_len;
    const uint8_t *a = fenv_call_payload(i, &a_len);
    const uint8_t *b = fenv_call_payload(j, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
}

/* Submit gid with n listeners and let both steps succeed: the waiter is
 * answered, listeners aside, and the first notify is call 2. */
static void both_steps_succeed(const char *gid, size_t n_listeners)
{
    fenv_rpc_t *sub = send_saga(gid, n_listeners);
    fenv_commit_all();
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    fenv_answer_call(1, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUCCEEDED);
    fenv_assert_call(2, gid, "ev1", "notify");
}

/* Both steps succeed: the waiter hears SUCCEEDED while the listener is
 * still to be told; an unanswered notify is retried with the same bytes;
 * final once it answered OK. */
static void test_waiter_first_then_listener_retried(void **state)
{
    (void)state;
    both_steps_succeed("e1", 1);
    assert_int_equal(fenv_calls_started(), 3);
    fenv_rpc_t *q = fenv_send_query("e1");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUBMITTED); /* telling */
    Trellis__V1__CompletionEvent *ev = event_of(2);
    assert_string_equal(ev->gid, "e1");
    assert_int_equal(ev->status, TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED);
    assert_string_equal(ev->reason, "");
    assert_true(ev->created_ms > 0 && ev->finished_ms >= ev->created_ms);
    trellis__v1__completion_event__free_unpacked(ev, NULL);
    fenv_answer_call(2, ST_UNAVAILABLE);
    fenv_commit_all();
    fenv_fire_timer(fenv_timer_first()); /* the retry */
    assert_int_equal(fenv_calls_started(), 4);
    fenv_assert_call(3, "e1", "ev1", "notify");
    assert_same_bytes(2, 3);
    fenv_answer_call(3, ST_OK);
    fenv_commit_all();
    q = fenv_send_query("e1");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* The second step fails: both compensates, then both listeners are told
 * FAILED with the reason. */
static void test_failure_told_after_compensation(void **state)
{
    (void)state;
    fenv_rpc_t *sub = send_saga("e2", 2);
    fenv_commit_all();
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    fenv_answer_call(1, ST_ABORTED);
    fenv_commit_all();
    fenv_assert_call(2, "e2", "02", "compensate");
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    fenv_assert_call(3, "e2", "01", "compensate");
    assert_int_equal(fenv_calls_started(), 4); /* listeners wait */
    fenv_assert_unanswered(sub);
    fenv_answer_call(3, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    assert_int_equal(fenv_calls_started(), 6);
    fenv_assert_call(4, "e2", "ev1", "notify");
    fenv_assert_call(5, "e2", "ev2", "notify");
    for (size_t i = 4; i < 6; i++) { /* the same event, each its own id */
        Trellis__V1__CompletionEvent *ev = event_of(i);
        assert_int_equal(ev->status, TRELLIS__V1__TRANS_STATUS__TRANS_FAILED);
        assert_non_null(strstr(ev->reason, "branch 02 action failed"));
        assert_string_equal(ev->branch_id, i == 4 ? "ev1" : "ev2");
        trellis__v1__completion_event__free_unpacked(ev, NULL);
    }
    fenv_answer_call(4, ST_OK);
    fenv_answer_call(5, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query("e2");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
}

/* The copy is reloaded from the store (a write refused for good) while a
 * listener is being told: the reloaded copy tells it again, with the same
 * bytes, as after a restart. */
static void test_reloaded_copy_sends_same_event(void **state)
{
    (void)state;
    both_steps_succeed("e3", 1);
    fenv_answer_call(2, ST_UNAVAILABLE);
    fenv_commit_next(TM_WRITE_FAILED); /* forgotten, reloaded */
    fenv_commit_all();
    while (fenv_calls_started() < 4 && fenv_timers_armed() > 0) {
        fenv_fire_timer(fenv_timer_first());
        fenv_commit_all();
    }
    assert_int_equal(fenv_calls_started(), 4);
    fenv_assert_call(3, "e3", "ev1", "notify");
    assert_same_bytes(2, 3);
    fenv_answer_call(3, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query("e3");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
}

static void assert_same_bytes(size_t i, size_t j);

/* A branch listener on a saga that succeeds: the waiter is answered, each
 * step's event goes once the commit is decided; an unanswered one is
 * retried, and again by a copy reloaded from the store, with the same
 * bytes; final once both answered OK. */
static void test_branch_events_on_success(void **state)
{
    (void)state;
    fenv_rpc_t *sub = send_saga_with("b1", 0, 1);
    fenv_commit_all();
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    assert_int_equal(fenv_calls_started(), 2); /* 01 may still be undone */
    fenv_answer_call(1, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_int_equal(fenv_calls_started(), 4);
    fenv_assert_call(2, "b1", "ev-01-1", "notify");
    fenv_assert_call(3, "b1", "ev-02-1", "notify");
    Trellis__V1__BranchEvent *ev = branch_event_of(3);
    assert_string_equal(ev->gid, "b1");
    assert_string_equal(ev->branch_id, "02");
    assert_int_equal(ev->forward_status, TRELLIS__V1__OP_STATUS__OP_SUCCEEDED);
    assert_true(ev->committed);
    assert_true(ev->finished_ms > 0);
    trellis__v1__branch_event__free_unpacked(ev, NULL);
    fenv_answer_call(3, ST_OK);
    fenv_answer_call(2, ST_UNAVAILABLE);
    fenv_commit_all();
    fenv_fire_timer(fenv_timer_first()); /* the retry */
    assert_int_equal(fenv_calls_started(), 5);
    fenv_assert_call(4, "b1", "ev-01-1", "notify");
    assert_same_bytes(2, 4);
    fenv_answer_call(4, ST_UNAVAILABLE);
    fenv_commit_next(TM_WRITE_FAILED); /* forgotten, reloaded */
    fenv_commit_all();
    while (fenv_calls_started() < 6 && fenv_timers_armed() > 0) {
        fenv_fire_timer(fenv_timer_first());
        fenv_commit_all();
    }
    assert_int_equal(fenv_calls_started(), 6);
    fenv_assert_call(5, "b1", "ev-01-1", "notify");
    assert_same_bytes(2, 5);
    fenv_answer_call(5, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query("b1");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* The second step fails: its event goes once its compensate is done,
 * beside the first step's compensate; the first's after that one; the
 * waiter hears FAILED without waiting for the events. */
static void test_branch_events_on_rollback(void **state)
{
    (void)state;
    fenv_rpc_t *sub = send_saga_with("b2", 0, 1);
    fenv_commit_all();
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    fenv_answer_call(1, ST_ABORTED);
    fenv_commit_all();
    fenv_assert_call(2, "b2", "02", "compensate");
    assert_int_equal(fenv_calls_started(), 3);
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    assert_int_equal(fenv_calls_started(), 5);
    fenv_assert_call(3, "b2", "01", "compensate");
    fenv_assert_call(4, "b2", "ev-02-1", "notify");
    Trellis__V1__BranchEvent *ev = branch_event_of(4);
    assert_string_equal(ev->branch_id, "02");
    assert_int_equal(ev->forward_status, TRELLIS__V1__OP_STATUS__OP_FAILED);
    assert_int_equal(ev->phase2_op, TRELLIS__V1__OP_KIND__OP_COMPENSATE);
    assert_int_equal(ev->phase2_status, TRELLIS__V1__OP_STATUS__OP_SUCCEEDED);
    assert_false(ev->committed);
    trellis__v1__branch_event__free_unpacked(ev, NULL);
    fenv_answer_call(3, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    assert_int_equal(fenv_calls_started(), 6);
    fenv_assert_call(5, "b2", "ev-01-1", "notify");
    fenv_answer_call(4, ST_OK);
    fenv_answer_call(5, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query("b2");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
}

/* A repeated Begin is the same Begin only with the same listeners and
 * listener_batch: one naming other listeners, none or another batch is
 * refused ALREADY_EXISTS, and the transaction keeps its own. */
static fenv_rpc_t *send_begin(const char *gid, const char *listener,
                              uint32_t batch)
{
    Trellis__V1__BeginRequest r = TRELLIS__V1__BEGIN_REQUEST__INIT;
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    char *listeners[1] = {(char *)listener};
    o.n_listeners = listener ? 1 : 0;
    o.listeners = listeners;
    o.listener_batch = batch;
    r.gid = (char *)gid;
    r.options = &o;
    return fenv_send(ENGINE_CALL_BEGIN, &r.base);
}

static void test_repeated_begin_compares_listeners(void **state)
{
    (void)state;
    fenv_rpc_t *b = send_begin("rb", LISTEN, 0);
    fenv_commit_all();
    fenv_assert_answer(b, TM_CODE_OK, TM_TX_PREPARED);
    fenv_assert_answer(send_begin("rb", LISTEN, 0), TM_CODE_OK, TM_TX_PREPARED);
    fenv_rpc_t *other = send_begin("rb", BLISTEN, 0);
    assert_int_equal(other->code, TM_CODE_ALREADY_EXISTS);
    fenv_rpc_t *none = send_begin("rb", NULL, 0);
    assert_int_equal(none->code, TM_CODE_ALREADY_EXISTS);
    fenv_rpc_t *batched = send_begin("rb", LISTEN, 8);
    assert_int_equal(batched->code, TM_CODE_ALREADY_EXISTS);
    fenv_fire_timer(fenv_timer_last()); /* its timeout: rolled back */
    fenv_commit_all();
    fenv_answer_call(0, ST_OK); /* its listener, told FAILED */
    fenv_commit_all();
    fenv_assert_call(0, "rb", "ev1", "notify");
}

/* ---- batching listeners (TransOptions.listener_batch, tm_batch.c) ---- */

/* Call i's request, as a batching listener reads it. The caller frees. */
static Trellis__V1__CompletionEventBatch *batch_of(size_t i)
{
    size_t len;
    const uint8_t *b = fenv_call_payload(i, &len);
    Trellis__V1__CompletionEventBatch *m =
        trellis__v1__completion_event_batch__unpack(NULL, len, b);
    assert_non_null(m);
    return m;
}

/* Call i is a batch (dtm-op "notify_batch", no gid or branch id) of
 * exactly the events of gids (n of them, in that order), each SUCCEEDED
 * and under branch id "ev1". */
static void assert_batch(size_t i, const char *const *gids, size_t n)
{
    fenv_assert_call(i, "", "", "notify_batch");
    Trellis__V1__CompletionEventBatch *m = batch_of(i);
    assert_int_equal(m->n_events, n);
    for (size_t k = 0; k < n; k++) {
        assert_string_equal(m->events[k]->gid, gids[k]);
        assert_string_equal(m->events[k]->branch_id, "ev1");
        assert_int_equal(m->events[k]->status,
                         TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED);
    }
    trellis__v1__completion_event_batch__free_unpacked(m, NULL);
}

/* Sagas gids[0..n) (one batching listener each) run both steps to
 * success, one after the other's steps; returns the calls started. */
static size_t run_sagas(const char *const *gids, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        size_t first = fenv_calls_started();
        fenv_rpc_t *sub = send_saga(gids[k], 1);
        fenv_commit_all();
        fenv_answer_call(first, ST_OK);
        fenv_commit_all();
        fenv_answer_call(first + 1, ST_OK);
        fenv_commit_all();
        fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUCCEEDED);
    }
    return fenv_calls_started();
}

static void assert_final(const char *gid)
{
    fenv_rpc_t *q = fenv_send_query(gid);
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* An idle listener gets the first event at once, alone; events that come
 * while that call is on the wire wait and then go together in one call;
 * its OK makes each transaction final. */
static void test_batch_gathers_while_a_call_is_out(void **state)
{
    (void)state;
    batch_size = 8;
    static const char *const first[] = {"b1"}, *const rest[] = {"b2", "b3"};
    run_sagas(first, 1);
    assert_int_equal(fenv_calls_started(), 3);
    assert_batch(2, first, 1);
    size_t started = run_sagas(rest, 2);
    assert_int_equal(started, 7); /* 3 + two steps each; no notify yet */
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    assert_final("b1");
    assert_int_equal(fenv_calls_started(), 8);
    assert_batch(7, rest, 2);
    fenv_answer_call(7, ST_OK);
    fenv_commit_all();
    assert_final("b2");
    assert_final("b3");
}

/* A batch that fails fails for each of its events, and each is retried
 * on its own timer: the retries gather again and one OK ends both. */
static void test_failed_batch_retries_each_event(void **state)
{
    (void)state;
    batch_size = 8;
    static const char *const a[] = {"f1"}, *const bc[] = {"f2", "f3"};
    run_sagas(a, 1);
    run_sagas(bc, 2);
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    fenv_answer_call(7, ST_UNAVAILABLE);
    fenv_commit_all();
    assert_int_equal(fenv_calls_started(), 8); /* both wait for a retry */
    fenv_rpc_t *q = fenv_send_query("f2");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUBMITTED);
    fenv_fire_timer(fenv_timer_first()); /* one event's retry: alone */
    assert_int_equal(fenv_calls_started(), 9);
    fenv_fire_timer(fenv_timer_first()); /* the other's: waits for it */
    assert_int_equal(fenv_calls_started(), 9);
    fenv_answer_call(8, ST_OK);
    fenv_commit_all();
    assert_int_equal(fenv_calls_started(), 10);
    fenv_answer_call(9, ST_OK);
    fenv_commit_all();
    assert_final("f2");
    assert_final("f3");
    Trellis__V1__CompletionEventBatch *m8 = batch_of(8), *m9 = batch_of(9);
    assert_int_equal(m8->n_events + m9->n_events, 2);
    assert_string_not_equal(m8->events[0]->gid, m9->events[0]->gid);
    trellis__v1__completion_event_batch__free_unpacked(m8, NULL);
    trellis__v1__completion_event_batch__free_unpacked(m9, NULL);
}

/* No call carries more events than listener_batch: three waiting events
 * with a batch of 2 go out as 2, then 1. */
static void test_batch_size_caps_a_call(void **state)
{
    (void)state;
    batch_size = 2;
    static const char *const a[] = {"c1"}, *const rest[] = {"c2", "c3", "c4"};
    run_sagas(a, 1);
    run_sagas(rest, 3);
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    static const char *const two[] = {"c2", "c3"}, *const one[] = {"c4"};
    assert_batch(9, two, 2);
    fenv_answer_call(9, ST_OK);
    fenv_commit_all();
    assert_batch(10, one, 1);
    fenv_answer_call(10, ST_OK);
    fenv_commit_all();
    assert_final("c4");
}

int main(void)
{
    tm_log_set_level(TM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_waiter_first_then_listener_retried,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_failure_told_after_compensation,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_reloaded_copy_sends_same_event,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_branch_events_on_success,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_branch_events_on_rollback,
                                        fenv_setup_local, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_repeated_begin_compares_listeners,
                                        reset_batch, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_batch_gathers_while_a_call_is_out,
                                        reset_batch, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_retries_each_event,
                                        reset_batch, fenv_teardown),
        cmocka_unit_test_setup_teardown(test_batch_size_caps_a_call,
                                        reset_batch, fenv_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
