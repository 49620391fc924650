/*
 * test_idempotent.c: a gid names one transaction. Submitting the same
 * content again is safe (same answer, nothing runs twice); different
 * content under a used gid is refused with ALREADY_EXISTS and changes
 * nothing; an unknown gid is NOT_FOUND.
 */
#include "itest.h"

#include <stdio.h>
#include <string.h>

static const char *const PAYLOADS[] = {"ok", "ok", "ok"};

static trellis_rc_t submit_rc(itest_t *t, const trellis_saga_t *s,
                              trellis_trans_status_t *st)
{
    char err[512];
    return trellis_saga_submit(t->client, s, st, NULL, 0, err, sizeof err);
}

static void test_resubmit_same_content(void **state)
{
    itest_t *t = itest_start(state, "idem_same", NULL);
    trellis_saga_t *s = itest_saga(t, "same", PAYLOADS, 3, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_status_t st = 0;
    assert_int_equal(submit_rc(t, s, &st), TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);

    trellis_trans_info_t *info = itest_query(t, "same");
    harness_part_state_t ps;
    char j[256];
    itest_part_state(t, "same", &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j), "A0 A1 A2");
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_resubmit_failed(void **state)
{
    itest_t *t = itest_start(state, "idem_failed", NULL);
    const char *payloads[] = {"ok", "fail"};
    trellis_saga_t *s = itest_saga(t, "failed", payloads, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_FAILED);
    trellis_trans_status_t st = 0;
    assert_int_equal(submit_rc(t, s, &st), TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    trellis_saga_free(s);

    trellis_trans_info_t *info = itest_query(t, "failed");
    harness_part_state_t ps;
    char j[256];
    itest_part_state(t, "failed", &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j),
                        "A0 A1:fail C1 C0");
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* An initiator that lost the answer of a submit (no wait) retries it with
 * wait_result: it gets the final outcome, and the saga runs once. */
static void test_resubmit_while_running(void **state)
{
    itest_t *t = itest_start(state, "idem_running", NULL);
    const char *payloads[] = {"slow:300", "slow:300"};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_t *first = itest_saga(t, "running", payloads, 2, &o);
    trellis_saga_t *again = itest_saga(t, "running", payloads, 2, NULL);
    trellis_trans_status_t st = 0;
    assert_int_equal(submit_rc(t, first, &st), TRELLIS_OK);
    assert_int_equal(submit_rc(t, again, &st), TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(first);
    trellis_saga_free(again);

    trellis_trans_info_t *info = itest_query(t, "running");
    harness_part_state_t ps;
    char j[256];
    itest_part_state(t, "running", &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j), "A0 A1");
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_different_content_refused(void **state)
{
    itest_t *t = itest_start(state, "idem_different", NULL);
    trellis_saga_t *s = itest_saga(t, "taken", PAYLOADS, 3, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);

    const char *other_payload[] = {"ok", "ok", "slow:1"};
    const char *fewer_steps[] = {"ok", "ok"};
    trellis_saga_t *d1 = itest_saga(t, "taken", other_payload, 3, NULL);
    trellis_saga_t *d2 = itest_saga(t, "taken", fewer_steps, 2, NULL);
    trellis_trans_status_t st = 0;
    assert_int_equal(submit_rc(t, d1, &st), TRELLIS_ALREADY_EXISTS);
    assert_int_equal(submit_rc(t, d2, &st), TRELLIS_ALREADY_EXISTS);
    trellis_saga_free(d1);
    trellis_saga_free(d2);

    /* The stored transaction is the first one, untouched. */
    trellis_trans_info_t *info = itest_query(t, "taken");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(info->n_branches, 3);
    assert_memory_equal(info->branches[2].payload, "ok", 2);
    harness_part_state_t ps;
    itest_part_state(t, "taken", &ps);
    assert_int_equal(ps.n_calls, 3);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_unknown_gid(void **state)
{
    itest_t *t = itest_start(state, "idem_unknown", NULL);
    char err[512] = "";
    trellis_trans_info_t *info = NULL;
    assert_int_equal(
        trellis_query(t->client, "never-submitted", &info, err, sizeof err),
        TRELLIS_NOT_FOUND);
    assert_null(info);
    assert_true(strlen(err) > 0);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_resubmit_same_content, itest_teardown),
        cmocka_unit_test_teardown(test_resubmit_failed, itest_teardown),
        cmocka_unit_test_teardown(test_resubmit_while_running, itest_teardown),
        cmocka_unit_test_teardown(test_different_content_refused,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_unknown_gid, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
