/*
 * test_retry.c: how trellisd retries a branch op, seen in Query's
 * attempts/attempt_ms and in the participant's journal: ONGOING at a fixed
 * interval, unknown results (UNAVAILABLE, no answer by the deadline) with
 * capped exponential backoff, and retry_limit turning unknown results of a
 * forward op into a rollback.
 */
#include "itest.h"

#include <stdio.h>
#include <string.h>

/* One-step saga with payload and options o; returns the final status. */
static trellis_trans_status_t run_one(itest_t *t, const char *gid,
                                      const char *payload,
                                      const trellis_options_t *o)
{
    const char *payloads[] = {payload};
    trellis_saga_t *s = itest_saga(t, gid, payloads, 1, o);
    trellis_trans_status_t st = itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    return st;
}

static const trellis_op_info_t *action_of(const trellis_trans_info_t *info,
                                          size_t step)
{
    assert_true(step < info->n_branches);
    return itest_op(&info->branches[step], TRELLIS_OP_ACTION);
}

static void print_gaps(const trellis_op_info_t *op)
{
    fprintf(stderr, "attempt gaps (ms):");
    for (size_t i = 1; i < op->n_attempt_ms; i++)
        fprintf(stderr, " %lld",
                (long long)(op->attempt_ms[i] - op->attempt_ms[i - 1]));
    fprintf(stderr, "\n");
}

static int64_t gap(const trellis_op_info_t *op, size_t i)
{
    return op->attempt_ms[i + 1] - op->attempt_ms[i];
}

static void test_ongoing_then_ok(void **state)
{
    itest_t *t = itest_start(state, "retry_ongoing", NULL);
    trellis_options_t o = itest_options();
    o.retry_interval_ms = 100;
    assert_int_equal(run_one(t, "ongoing", "ongoing:3", &o),
                     TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_t *info = itest_query(t, "ongoing");
    const trellis_op_info_t *a = action_of(info, 0);
    print_gaps(a);
    assert_int_equal(a->status, TRELLIS_OP_SUCCEEDED);
    assert_int_equal(a->attempts, 4);
    assert_int_equal(a->n_attempt_ms, 4);
    /* A fixed interval: every gap near 100 ms, none doubling. */
    for (size_t i = 0; i < 3; i++) {
        assert_true(gap(a, i) >= 80);
        assert_true(gap(a, i) <= 350);
    }
    harness_part_state_t ps;
    char j[256];
    itest_part_state(t, "ongoing", &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j),
                        "A0:ongoing A0:ongoing A0:ongoing A0");
    assert_int_equal(itest_count(info, &ps, 0, "action", "applied"), 1);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_unavailable_backoff(void **state)
{
    const char *args[] = {"--max-backoff-ms", "10000", NULL};
    itest_t *t = itest_start(state, "retry_backoff", args);
    trellis_options_t o = itest_options();
    o.retry_interval_ms = 100;
    assert_int_equal(run_one(t, "unavail", "unavail:3", &o),
                     TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_t *info = itest_query(t, "unavail");
    const trellis_op_info_t *a = action_of(info, 0);
    print_gaps(a);
    assert_int_equal(a->status, TRELLIS_OP_SUCCEEDED);
    assert_int_equal(a->attempts, 4);
    assert_int_equal(a->n_attempt_ms, 4);
    /* Doubling from the 100 ms base: ~100, ~200, ~400 (a fixed interval
     * would fail the lower bounds, a tripling the upper ones). */
    for (size_t i = 0; i < 3; i++) {
        int64_t nominal = 100 << i;
        assert_true(gap(a, i) >= nominal * 4 / 5);
        assert_true(gap(a, i) <= nominal * 3 / 2 + 100);
    }
    harness_part_state_t ps;
    char j[256];
    itest_part_state(t, "unavail", &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j),
                        "A0:unavail A0:unavail A0:unavail A0");
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_backoff_is_capped(void **state)
{
    const char *args[] = {"--max-backoff-ms", "150", NULL};
    itest_t *t = itest_start(state, "retry_backoff_cap", args);
    trellis_options_t o = itest_options();
    assert_int_equal(run_one(t, "capped", "unavail:5", &o),
                     TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_t *info = itest_query(t, "capped");
    const trellis_op_info_t *a = action_of(info, 0);
    print_gaps(a);
    assert_int_equal(a->attempts, 6);
    /* 50, 100, then the 150 ms cap. */
    for (size_t i = 2; i < 5; i++) {
        assert_true(gap(a, i) >= 120);
        assert_true(gap(a, i) <= 300);
    }
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* The first call hangs past request_timeout_ms: the TM gives up on it,
 * retries, and the effect still happens once. */
static void test_hang_then_ok(void **state)
{
    itest_t *t = itest_start(state, "retry_hang", NULL);
    trellis_options_t o = itest_options();
    o.request_timeout_ms = 300;
    assert_int_equal(run_one(t, "hang", "hang:1500", &o),
                     TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_t *info = itest_query(t, "hang");
    const trellis_op_info_t *a = action_of(info, 0);
    print_gaps(a);
    assert_int_equal(a->attempts, 2);
    assert_true(gap(a, 0) >= 280);  /* not retried before the deadline */
    assert_true(gap(a, 0) < 1400);  /* nor waited for the hung call */
    itest_wait_calls(t, "hang", 2); /* the hung call answers late */
    harness_part_state_t ps;
    itest_part_state(t, "hang", &ps);
    assert_int_equal(itest_count(info, &ps, 0, "action", "applied"), 1);
    assert_int_equal(itest_count(info, &ps, 0, "action", "dup"), 1);
    assert_int_equal(ps.n_net, 1);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* retry_limit unknown results of a forward op roll the saga back. */
static void test_retry_limit_unavailable(void **state)
{
    itest_t *t = itest_start(state, "retry_limit_unavail", NULL);
    trellis_options_t o = itest_options();
    o.retry_limit = 3;
    const char *payloads[] = {"ok", "unavail:100"};
    trellis_saga_t *s = itest_saga(t, "limit-unavail", payloads, 2, &o);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_FAILED);
    trellis_saga_free(s);
    trellis_trans_info_t *info = itest_query(t, "limit-unavail");
    assert_int_equal(action_of(info, 1)->attempts, 3);
    assert_int_not_equal(action_of(info, 1)->status, TRELLIS_OP_SUCCEEDED);
    harness_part_state_t ps;
    char j[256];
    itest_part_state(t, "limit-unavail", &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j),
                        "A0 A1:unavail A1:unavail A1:unavail C1 C0");
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* Every call hangs past the deadline; after retry_limit the TM rolls back
 * while the calls are still running. The late actions must not leave an
 * effect behind (the barrier blocks or undoes them). */
static void test_retry_limit_hang(void **state)
{
    itest_t *t = itest_start(state, "retry_limit_hang", NULL);
    trellis_options_t o = itest_options();
    o.retry_limit = 2;
    o.request_timeout_ms = 200;
    assert_int_equal(run_one(t, "limit-hang", "hang:800:5", &o),
                     TRELLIS_TRANS_FAILED);
    trellis_trans_info_t *info = itest_query(t, "limit-hang");
    assert_int_equal(action_of(info, 0)->attempts, 2);
    const trellis_op_info_t *c =
        itest_op(&info->branches[0], TRELLIS_OP_COMPENSATE);
    assert_int_equal(c->status, TRELLIS_OP_SUCCEEDED);
    itest_wait_calls(t, "limit-hang", 3); /* 2 actions, 1 compensate */
    harness_part_state_t ps;
    itest_part_state(t, "limit-hang", &ps);
    assert_int_equal(itest_count(info, &ps, 0, "action", NULL), 2);
    assert_int_equal(itest_count(info, &ps, 0, "compensate", NULL), 1);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* A compensation that fails keeps being retried until it succeeds. */
static void test_compensate_retried(void **state)
{
    itest_t *t = itest_start(state, "retry_compensate", NULL);
    const char *payloads[] = {"compensate=unavail:2,fail:1,ongoing:1", "fail"};
    trellis_saga_t *s = itest_saga(t, "comp-retry", payloads, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_FAILED);
    trellis_saga_free(s);
    trellis_trans_info_t *info = itest_query(t, "comp-retry");
    const trellis_op_info_t *c =
        itest_op(&info->branches[0], TRELLIS_OP_COMPENSATE);
    assert_int_equal(c->status, TRELLIS_OP_SUCCEEDED);
    assert_int_equal(c->attempts, 5);
    harness_part_state_t ps;
    char j[256];
    itest_part_state(t, "comp-retry", &ps);
    assert_string_equal(
        itest_journal(info, &ps, j, sizeof j),
        "A0 A1:fail C1 C0:unavail C0:unavail C0:fail C0:ongoing C0");
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* A forward phase still not done at timeout_to_fail_ms rolls back. */
static void test_timeout_to_fail(void **state)
{
    itest_t *t = itest_start(state, "retry_timeout_to_fail", NULL);
    trellis_options_t o = itest_options();
    o.timeout_to_fail_ms = 500;
    int64_t t0 = harness_mono_ms();
    const char *payloads[] = {"ok", "ongoing:1000"};
    trellis_saga_t *s = itest_saga(t, "to-fail", payloads, 2, &o);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_FAILED);
    trellis_saga_free(s);
    int64_t took = harness_mono_ms() - t0;
    fprintf(stderr, "rolled back after %lld ms\n", (long long)took);
    assert_true(took >= 450);
    assert_true(took < 5000);
    trellis_trans_info_t *info = itest_query(t, "to-fail");
    assert_int_not_equal(action_of(info, 1)->status, TRELLIS_OP_SUCCEEDED);
    harness_part_state_t ps;
    itest_part_state(t, "to-fail", &ps);
    assert_int_equal(itest_count(info, &ps, 1, "compensate", "empty"), 1);
    assert_int_equal(itest_count(info, &ps, 0, "compensate", "undone"), 1);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ongoing_then_ok, itest_teardown),
        cmocka_unit_test_teardown(test_unavailable_backoff, itest_teardown),
        cmocka_unit_test_teardown(test_backoff_is_capped, itest_teardown),
        cmocka_unit_test_teardown(test_hang_then_ok, itest_teardown),
        cmocka_unit_test_teardown(test_retry_limit_unavailable, itest_teardown),
        cmocka_unit_test_teardown(test_retry_limit_hang, itest_teardown),
        cmocka_unit_test_teardown(test_compensate_retried, itest_teardown),
        cmocka_unit_test_teardown(test_timeout_to_fail, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
