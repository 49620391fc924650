/*
 * test_pivot.c: sagas with a pivot step against a real trellisd and
 * trellis-testpart (tm_plan.h, "Pivot"). A failure before the pivot is
 * rolled back (compensations ran); a failure after it is retried until
 * it succeeds and nothing is ever compensated; Abort after it is refused
 * naming the pivot; trellisd killed with SIGKILL right after the pivot's
 * success was durable restarts still forward only; a saga whose steps are
 * not all before or after the pivot is refused at Submit. Run on both
 * stores (integration_pivot, integration_pivot_mysql).
 */
#include "itest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A chain of n steps on the test participant, step i running script
 * payloads[i]; the pivot at index pivot, compensates only up to it. */
static trellis_saga_t *pivot_saga(itest_t *t, const char *gid,
                                  const char *const *payloads, int n, int pivot,
                                  int wait)
{
    char err[256];
    trellis_saga_t *s = NULL;
    assert_int_equal(trellis_saga_new(gid, &s, err, sizeof err), TRELLIS_OK);
    for (int i = 0; i < n; i++)
        if (trellis_saga_add_step(s, t->action, i <= pivot ? t->compensate : "",
                                  payloads[i], strlen(payloads[i]), err,
                                  sizeof err) != i)
            fail_msg("add_step %d: %s", i, err);
    if (trellis_saga_set_pivot(s, pivot, err, sizeof err) != TRELLIS_OK)
        fail_msg("set_pivot: %s", err);
    trellis_options_t o = itest_options();
    o.wait_result = wait;
    trellis_saga_set_options(s, &o);
    return s;
}

static trellis_trans_status_t submit(itest_t *t, const char *gid,
                                     const char *const *payloads, int n,
                                     int pivot, int wait)
{
    trellis_saga_t *s = pivot_saga(t, gid, payloads, n, pivot, wait);
    trellis_trans_status_t st = itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    return st;
}

/* The saga ended SUCCEEDED, each action applied once, and no compensate
 * was ever called. */
static void assert_forward_only_success(itest_t *t, const char *gid, int n)
{
    trellis_trans_info_t *info = itest_wait_final(t, gid);
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    harness_part_state_t ps;
    itest_part_state(t, gid, &ps);
    for (int i = 0; i < n; i++) {
        assert_int_equal(itest_count(info, &ps, i, "action", "applied"), 1);
        assert_int_equal(itest_count(info, &ps, i, "compensate", NULL), 0);
    }
    assert_int_equal(ps.n_net, (size_t)n);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
}

static void test_failure_before_the_pivot_rolls_back(void **state)
{
    itest_t *t = itest_start(state, "pivot_before", NULL);
    const char *payloads[] = {"ok", "fail", "ok", "ok"};
    assert_int_equal(submit(t, "pv-before", payloads, 4, 2, 1),
                     TRELLIS_TRANS_FAILED);
    trellis_trans_info_t *info = itest_query(t, "pv-before");
    harness_part_state_t ps;
    itest_part_state(t, "pv-before", &ps);
    char j[256];
    assert_string_equal(itest_journal(info, &ps, j, sizeof j),
                        "A0 A1:fail C1 C0"); /* the pivot never ran */
    assert_int_equal(itest_count(info, &ps, 1, "compensate", "empty"), 1);
    assert_int_equal(itest_count(info, &ps, 0, "compensate", "undone"), 1);
    assert_int_equal(ps.n_net, 0);
    assert_true(info->branches[2].pivot);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_failure_after_the_pivot_is_retried(void **state)
{
    itest_t *t = itest_start(state, "pivot_after", NULL);
    const char *payloads[] = {"ok", "ok", "fail:2", "ok"};
    assert_int_equal(submit(t, "pv-after", payloads, 4, 1, 1),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_forward_only_success(t, "pv-after", 4);
    trellis_trans_info_t *info = itest_query(t, "pv-after");
    harness_part_state_t ps;
    itest_part_state(t, "pv-after", &ps);
    assert_int_equal(itest_count(info, &ps, 2, "action", NULL), 3);
    assert_true(info->branches[1].pivot && !info->branches[2].pivot);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    /* trellisctl status says where it stands */
    char out[16384];
    assert_int_equal(itest_ctl(t, "status-pivot",
                               (const char *[]){"status", "pv-after", NULL},
                               out, sizeof out),
                     0);
    if (!strstr(out, "past the pivot: forward only") ||
        !strstr(out, "branch 02 (saga, pivot)"))
        fail_msg("trellisctl status:\n%s", out);
    itest_pass(state);
}

static void test_abort_after_the_pivot_is_refused(void **state)
{
    itest_t *t = itest_start(state, "pivot_abort", NULL);
    const char *payloads[] = {"ok", "ok", "hold"};
    submit(t, "pv-abort", payloads, 3, 1, 0);
    itest_control(harness_server_addr(t->part), NULL, 0,
                  "wait-held pv-abort 1 %d", ITEST_FINAL_TIMEOUT_MS);
    char err[512];
    trellis_trans_status_t st = 0;
    trellis_rc_t rc = trellis_abort(t->client, "pv-abort", "too late", 0, &st,
                                    err, sizeof err);
    assert_int_equal(rc, TRELLIS_FAILED_PRECONDITION);
    if (!strstr(err, "past its pivot (step 02"))
        fail_msg("abort answered: %s", err);
    itest_control(harness_server_addr(t->part), NULL, 0, "release pv-abort");
    assert_forward_only_success(t, "pv-abort", 3);
    itest_pass(state);
}

/* trellisd dies right after the pivot's success is durable: step 2's
 * call is on the wire (it starts only after that write committed). After
 * the restart the saga still only goes forward: step 3 answers ABORTED
 * twice and is retried, nothing is compensated. */
static void test_crash_right_after_the_pivot(void **state)
{
    itest_t *t = itest_start(state, "pivot_crash", NULL);
    const char *payloads[] = {"ok", "ok", "hold", "fail:2"};
    submit(t, "pv-crash", payloads, 4, 1, 0);
    itest_control(harness_server_addr(t->part), NULL, 0,
                  "wait-held pv-crash 1 %d", ITEST_FINAL_TIMEOUT_MS);
    assert_int_equal(harness_server_kill(t->tm), 0);
    itest_control(harness_server_addr(t->part), NULL, 0, "release pv-crash");
    assert_int_equal(harness_server_restart(t->tm), 0);
    itest_reconnect(t);
    assert_forward_only_success(t, "pv-crash", 4);
    trellis_trans_info_t *info = itest_query(t, "pv-crash");
    harness_part_state_t ps;
    itest_part_state(t, "pv-crash", &ps);
    assert_int_equal(itest_count(info, &ps, 3, "action", NULL),
                     3); /* 2 ABORTED */
    assert_int_equal(itest_count(info, &ps, 2, "action", "dup"), 1);
    assert_true(info->branches[1].pivot);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* Concurrent steps nobody orders against the pivot: refused, nothing
 * stored. */
static void test_ambiguous_graph_is_refused(void **state)
{
    itest_t *t = itest_start(state, "pivot_refused", NULL);
    const char *payloads[] = {"ok", "ok"};
    trellis_saga_t *s = pivot_saga(t, "pv-refused", payloads, 2, 0, 1);
    trellis_saga_set_concurrent(s, 1);
    char err[512];
    trellis_trans_status_t st = 0;
    trellis_rc_t rc =
        trellis_saga_submit(t->client, s, &st, NULL, 0, err, sizeof err);
    trellis_saga_free(s);
    assert_int_equal(rc, TRELLIS_INVALID_ARGUMENT);
    if (!strstr(err, "neither before nor after the pivot"))
        fail_msg("submit answered: %s", err);
    char gerr[256];
    trellis_trans_info_t *info = NULL;
    assert_int_equal(
        trellis_query(t->client, "pv-refused", &info, gerr, sizeof gerr),
        TRELLIS_NOT_FOUND);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_failure_before_the_pivot_rolls_back,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_failure_after_the_pivot_is_retried,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_abort_after_the_pivot_is_refused,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_crash_right_after_the_pivot,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_ambiguous_graph_is_refused,
                                  itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
