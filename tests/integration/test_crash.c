/*
 * test_crash.c: trellisd killed with SIGKILL at points of a saga and
 * restarted on the same port and data dir. The restarted TM must finish
 * every transaction it acknowledged, with the right outcome, and the
 * participant must see each effect exactly once (the journal counts them).
 */
#include "itest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Submit without waiting: the TM acknowledges once the saga is stored. */
static void submit_no_wait(itest_t *t, const char *gid,
                           const char *const *payloads, size_t n)
{
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_t *s = itest_saga(t, gid, payloads, n, &o);
    trellis_trans_status_t st = itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    assert_true(st == TRELLIS_TRANS_SUBMITTED || st == TRELLIS_TRANS_ABORTING ||
                st == TRELLIS_TRANS_SUCCEEDED || st == TRELLIS_TRANS_FAILED);
}

/* kill -9, restart on the same port and data dir, and connect a new
 * client, as an initiator process would after its server went away (the
 * old channel's next call may fail UNAVAILABLE). */
static void new_client(itest_t *t)
{
    itest_reconnect(t);
}

static void crash_and_restart(itest_t *t)
{
    assert_int_equal(harness_server_crash_restart(t->tm), 0);
    new_client(t);
}

/* The restarted TM sent step's op again, and the participant's barrier
 * answered it as a duplicate: the effect that happened during the crash
 * was neither lost nor repeated. */
static void assert_resent(itest_t *t, const char *gid, int step, const char *op)
{
    trellis_trans_info_t *info = itest_query(t, gid);
    harness_part_state_t ps;
    itest_part_state(t, gid, &ps);
    if (itest_count(info, &ps, step, op, "dup") < 1) {
        harness_part_state_dump(&ps);
        fail_msg("%s: step %d's %s was not sent again after the restart", gid,
                 step, op);
    }
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
}

typedef struct {
    itest_t *t;
    const char *gid;
    int step;
    const char *op;
    const char *effect; /* NULL: any answer */
    trellis_trans_info_t *info;
} call_wait_t;

static int call_seen(void *arg)
{
    call_wait_t *w = arg;
    harness_part_state_t ps;
    if (harness_part_state(harness_server_addr(w->t->part), w->gid, &ps))
        return 0;
    int n = itest_count(w->info, &ps, w->step, w->op, w->effect);
    harness_part_state_free(&ps);
    return n > 0;
}

/* Wait until the participant answered step's op (with effect). */
static void wait_call(itest_t *t, const char *gid, int step, const char *op,
                      const char *effect)
{
    call_wait_t w = {t, gid, step, op, effect, itest_query(t, gid)};
    int seen = harness_poll(call_seen, &w, ITEST_FINAL_TIMEOUT_MS, 10);
    trellis_trans_info_free(w.info);
    if (!seen)
        fail_msg("%s: no %s of step %d (%s)", gid, op, step,
                 effect ? effect : "any");
}

/* Each action of a succeeded saga took effect once; actions ran in order;
 * nothing was compensated. */
static void assert_succeeded_once(itest_t *t, const char *gid, int n)
{
    trellis_trans_info_t *info = itest_wait_final(t, gid);
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    harness_part_state_t ps;
    itest_part_state(t, gid, &ps);
    for (int i = 0; i < n; i++) {
        assert_int_equal(
            itest_op(&info->branches[i], TRELLIS_OP_ACTION)->status,
            TRELLIS_OP_SUCCEEDED);
        assert_int_equal(itest_count(info, &ps, i, "action", "applied"), 1);
        assert_int_equal(itest_count(info, &ps, i, "action", "blocked"), 0);
        assert_int_equal(itest_count(info, &ps, i, "compensate", NULL), 0);
        if (i > 0) {
            const harness_part_call_t *prev =
                itest_call(info, &ps, i - 1, "action", "applied");
            const harness_part_call_t *next =
                itest_call(info, &ps, i, "action", NULL);
            assert_true(next->start_ms >= prev->end_ms);
        }
    }
    assert_int_equal(ps.n_net, (size_t)n);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
}

static void test_crash_right_after_submit(void **state)
{
    itest_t *t = itest_start(state, "crash_after_submit", NULL);
    const char *payloads[] = {"slow:100", "slow:100", "slow:100"};
    submit_no_wait(t, "after-submit", payloads, 3);
    crash_and_restart(t);
    assert_succeeded_once(t, "after-submit", 3);
    itest_pass(state);
}

static void test_crash_between_actions(void **state)
{
    itest_t *t = itest_start(state, "crash_mid_saga", NULL);
    /* trellisd dies while step 1's action is in flight. */
    const char *payloads[] = {"ok", "hold", "ok"};
    submit_no_wait(t, "mid-saga", payloads, 3);
    itest_crash_while_held(t, "mid-saga", 1);
    assert_succeeded_once(t, "mid-saga", 3);
    assert_resent(t, "mid-saga", 1, "action");
    itest_pass(state);
}

static void test_crash_during_compensation(void **state)
{
    itest_t *t = itest_start(state, "crash_compensating", NULL);
    /* trellisd dies while step 1's compensation is in flight. */
    const char *payloads[] = {"ok", "compensate=hold", "fail"};
    submit_no_wait(t, "compensating", payloads, 3);
    itest_crash_while_held(t, "compensating", 1);
    assert_resent(t, "compensating", 1, "compensate");

    trellis_trans_info_t *info = itest_wait_final(t, "compensating");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    harness_part_state_t ps;
    itest_part_state(t, "compensating", &ps);
    assert_int_equal(itest_count(info, &ps, 2, "compensate", "empty"), 1);
    assert_int_equal(itest_count(info, &ps, 1, "compensate", "undone"), 1);
    assert_int_equal(itest_count(info, &ps, 0, "compensate", "undone"), 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(itest_count(info, &ps, i, "action", "applied"), 1);
    /* Still backwards: step 0 is compensated only after step 1 was. */
    const harness_part_call_t *c1 =
        itest_call(info, &ps, 1, "compensate", "undone");
    const harness_part_call_t *c0 =
        itest_call(info, &ps, 0, "compensate", NULL);
    assert_true(c0->start_ms >= c1->end_ms);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* Two crashes in one saga, and a saga submitted to the restarted TM. Both
 * crash points are exact: the first trellisd dies while step 1's action is
 * held at the participant; the restarted one recovers the saga and sends
 * that action again — held too (the gid is not released yet), so two calls
 * are held — and dies as well. Then both held calls go on (one applies, the
 * other is a duplicate) and the third trellisd sends it once more: one
 * effect, and the saga goes on to succeed. */
static void test_crash_twice(void **state)
{
    itest_t *t = itest_start(state, "crash_twice", NULL);
    const char *payloads[] = {"ok", "hold", "ok"};
    submit_no_wait(t, "twice", payloads, 3);
    itest_control(harness_server_addr(t->part), NULL, 0, "wait-held twice 1 %d",
                  ITEST_FINAL_TIMEOUT_MS);
    crash_and_restart(t);
    itest_crash_while_held(t, "twice", 2); /* the restarted TM sent it again */
    assert_succeeded_once(t, "twice", 3);
    trellis_trans_info_t *info = itest_query(t, "twice");
    harness_part_state_t ps;
    itest_part_state(t, "twice", &ps);
    if (itest_count(info, &ps, 1, "action", "dup") < 2) {
        harness_part_state_dump(&ps);
        fail_msg("twice: step 1's action was not sent again after each "
                 "restart");
    }
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);

    const char *more[] = {"ok", "ok"};
    trellis_saga_t *s = itest_saga(t, "after-restarts", more, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);
    itest_pass(state);
}

/* A crash while two independent steps of a diamond are in flight. */
static void test_crash_mid_diamond(void **state)
{
    itest_t *t = itest_start(state, "crash_mid_diamond", NULL);
    const char *payloads[] = {"ok", "hold", "hold", "ok"};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_t *s = itest_saga(t, "diamond", payloads, 4, &o);
    static const int deps[][2] = {{1, 0}, {2, 0}, {3, 1}, {3, 2}};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(
            trellis_saga_add_dependency(s, deps[i][0], deps[i][1], NULL, 0),
            TRELLIS_OK);
    itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    itest_crash_while_held(t, "diamond", 2); /* 1 and 2 are in flight */

    trellis_trans_info_t *info = itest_wait_final(t, "diamond");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    harness_part_state_t ps;
    itest_part_state(t, "diamond", &ps);
    for (int i = 0; i < 4; i++)
        assert_int_equal(itest_count(info, &ps, i, "action", "applied"), 1);
    const harness_part_call_t *a1 =
        itest_call(info, &ps, 1, "action", "applied");
    const harness_part_call_t *a2 =
        itest_call(info, &ps, 2, "action", "applied");
    const harness_part_call_t *a3 = itest_call(info, &ps, 3, "action", NULL);
    assert_true(a3->start_ms >= a1->end_ms && a3->start_ms >= a2->end_ms);
    assert_int_equal(ps.n_net, 4);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    assert_resent(t, "diamond", 1, "action");
    assert_resent(t, "diamond", 2, "action");
    itest_pass(state);
}

/* The transaction's timeout_to_fail_ms still holds after a crash: a step
 * that stays ONGOING is rolled back near the original deadline. */
static void test_crash_keeps_timeout(void **state)
{
    itest_t *t = itest_start(state, "crash_timeout", NULL);
    const char *payloads[] = {"ok", "ongoing:100000"};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    o.timeout_to_fail_ms = 1500;
    int64_t t0 = harness_mono_ms();
    trellis_saga_t *s = itest_saga(t, "timeout", payloads, 2, &o);
    itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    wait_call(t, "timeout", 1, "action", NULL);
    crash_and_restart(t);

    trellis_trans_info_t *info = itest_wait_final(t, "timeout");
    int64_t took = harness_mono_ms() - t0;
    fprintf(stderr, "rolled back after %lld ms\n", (long long)took);
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_true(took >= 1400);
    assert_true(took < 6000);
    harness_part_state_t ps;
    itest_part_state(t, "timeout", &ps);
    assert_int_equal(itest_count(info, &ps, 0, "compensate", "undone"), 1);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* Payloads are bytes: NULs and high bytes survive storage and recovery.
 * (The testpart script ignores everything after "#".) */
static void test_binary_payload_after_crash(void **state)
{
    itest_t *t = itest_start(state, "crash_binary_payload", NULL);
    static const char bin[] = "slow:50;#\0\x01\xff\xfe\0tail";
    const size_t len = sizeof bin - 1;
    char err[256];
    trellis_saga_t *s = NULL;
    assert_int_equal(trellis_saga_new("binary", &s, err, sizeof err),
                     TRELLIS_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(trellis_saga_add_step(s, t->action, t->compensate, bin,
                                               len, err, sizeof err),
                         i);
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_set_options(s, &o);
    itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    crash_and_restart(t);

    trellis_trans_info_t *info = itest_wait_final(t, "binary");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(info->branches[i].payload_len, len);
        assert_memory_equal(info->branches[i].payload, bin, len);
    }
    harness_part_state_t ps;
    itest_part_state(t, "binary", &ps);
    assert_true(ps.n_calls >= 2);
    for (size_t i = 0; i < ps.n_calls; i++)
        assert_int_equal(ps.calls[i].len, len);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_crash_right_after_submit,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_crash_between_actions, itest_teardown),
        cmocka_unit_test_teardown(test_crash_during_compensation,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_crash_twice, itest_teardown),
        cmocka_unit_test_teardown(test_crash_mid_diamond, itest_teardown),
        cmocka_unit_test_teardown(test_crash_keeps_timeout, itest_teardown),
        cmocka_unit_test_teardown(test_binary_payload_after_crash,
                                  itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
