/*
 * test_concurrent.c: sagas with declared dependencies. The participant's
 * journal times show that a step starts only after its prerequisites
 * answered, that independent steps overlap, and that a rollback walks the
 * dependency graph backwards.
 */
#include "itest.h"

#include <stdio.h>
#include <string.h>

#define SLOW "slow:300"

/* Diamond 0 -> {1, 2} -> 3 with the given payloads. */
static trellis_saga_t *diamond(itest_t *t, const char *gid,
                               const char *const *payloads)
{
    char err[256];
    trellis_saga_t *s = itest_saga(t, gid, payloads, 4, NULL);
    static const int deps[][2] = {{1, 0}, {2, 0}, {3, 1}, {3, 2}};
    for (size_t i = 0; i < 4; i++)
        if (trellis_saga_add_dependency(s, deps[i][0], deps[i][1], err,
                                        sizeof err) != TRELLIS_OK)
            fail_msg("add_dependency: %s", err);
    return s;
}

static const harness_part_call_t *first_ok(const trellis_trans_info_t *info,
                                           const harness_part_state_t *ps,
                                           int step, const char *op)
{
    const harness_part_call_t *c = itest_call(info, ps, step, op, NULL);
    if (!c || strcmp(c->answer, "ok") != 0) {
        harness_part_state_dump(ps);
        fail_msg("step %d: no successful first %s", step, op);
    }
    return c;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static void test_diamond_success(void **state)
{
    itest_t *t = itest_start(state, "concurrent_diamond", NULL);
    const char *payloads[] = {"ok", SLOW, SLOW, "ok"};
    trellis_saga_t *s = diamond(t, "diamond-ok", payloads);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);

    trellis_trans_info_t *info = itest_query(t, "diamond-ok");
    assert_int_equal(info->n_branches, 4);
    assert_int_equal(info->branches[3].n_depends_on, 2);
    harness_part_state_t ps;
    itest_part_state(t, "diamond-ok", &ps);
    assert_int_equal(ps.n_calls, 4);
    const harness_part_call_t *a0 = first_ok(info, &ps, 0, "action");
    const harness_part_call_t *a1 = first_ok(info, &ps, 1, "action");
    const harness_part_call_t *a2 = first_ok(info, &ps, 2, "action");
    const harness_part_call_t *a3 = first_ok(info, &ps, 3, "action");
    assert_true(a1->start_ms >= a0->end_ms);
    assert_true(a2->start_ms >= a0->end_ms);
    assert_true(a3->start_ms >= max64(a1->end_ms, a2->end_ms));
    /* 1 and 2 ran at the same time: each started before the other ended. */
    assert_true(a1->start_ms < a2->end_ms);
    assert_true(a2->start_ms < a1->end_ms);
    assert_int_equal(ps.n_net, 4);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_diamond_rollback(void **state)
{
    itest_t *t = itest_start(state, "concurrent_rollback", NULL);
    const char *slow_both = SLOW ";compensate=" SLOW;
    const char *payloads[] = {"ok", slow_both, slow_both, "fail"};
    trellis_saga_t *s = diamond(t, "diamond-fail", payloads);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_FAILED);
    trellis_saga_free(s);

    trellis_trans_info_t *info = itest_query(t, "diamond-fail");
    harness_part_state_t ps;
    itest_part_state(t, "diamond-fail", &ps);
    assert_int_equal(itest_count(info, &ps, 3, "action", NULL), 1);
    const harness_part_call_t *c0 = first_ok(info, &ps, 0, "compensate");
    const harness_part_call_t *c1 = first_ok(info, &ps, 1, "compensate");
    const harness_part_call_t *c2 = first_ok(info, &ps, 2, "compensate");
    const harness_part_call_t *c3 = first_ok(info, &ps, 3, "compensate");
    assert_string_equal(c3->effect, "empty");
    /* Backwards: 3, then 1 and 2 (together), then 0. */
    assert_true(c1->start_ms >= c3->end_ms);
    assert_true(c2->start_ms >= c3->end_ms);
    assert_true(c0->start_ms >= max64(c1->end_ms, c2->end_ms));
    assert_true(c1->start_ms < c2->end_ms && c2->start_ms < c1->end_ms);
    for (int i = 0; i < 4; i++)
        assert_int_equal(itest_count(info, &ps, i, "compensate", NULL), 1);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* Concurrent with no dependencies: every step starts at once. */
static void test_all_at_once(void **state)
{
    itest_t *t = itest_start(state, "concurrent_no_deps", NULL);
    const char *payloads[] = {SLOW, SLOW, SLOW};
    trellis_saga_t *s = itest_saga(t, "all-at-once", payloads, 3, NULL);
    trellis_saga_set_concurrent(s, 1);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);

    trellis_trans_info_t *info = itest_query(t, "all-at-once");
    harness_part_state_t ps;
    itest_part_state(t, "all-at-once", &ps);
    assert_int_equal(ps.n_calls, 3);
    int64_t first_end = ps.calls[0].end_ms, last_start = 0;
    for (size_t i = 0; i < ps.n_calls; i++) {
        first_end =
            ps.calls[i].end_ms < first_end ? ps.calls[i].end_ms : first_end;
        last_start = max64(last_start, ps.calls[i].start_ms);
    }
    assert_true(last_start < first_end);
    assert_int_equal(ps.n_net, 3);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* Many sagas in flight at once: each ends as its script says and every
 * effect happens once. Every 5th saga fails at its last step. */
#define MANY 60

static void test_many_sagas(void **state)
{
    itest_t *t = itest_start(state, "concurrent_many", NULL);
    const char *ok[] = {"slow:20", "slow:20", "slow:20"};
    const char *bad[] = {"slow:20", "slow:20", "fail"};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    for (int i = 0; i < MANY; i++) {
        char gid[32];
        snprintf(gid, sizeof gid, "many-%d", i);
        trellis_saga_t *s = itest_saga(t, gid, i % 5 ? ok : bad, 3, &o);
        itest_submit(t, s, NULL, 0);
        trellis_saga_free(s);
    }
    for (int i = 0; i < MANY; i++) {
        char gid[32];
        snprintf(gid, sizeof gid, "many-%d", i);
        trellis_trans_info_t *info = itest_wait_final(t, gid);
        harness_part_state_t ps;
        itest_part_state(t, gid, &ps);
        assert_int_equal(info->status, i % 5 ? TRELLIS_TRANS_SUCCEEDED
                                             : TRELLIS_TRANS_FAILED);
        assert_int_equal(ps.n_net, i % 5 ? 3 : 0);
        for (int step = 0; step < 3; step++) {
            int applied = itest_count(info, &ps, step, "action", "applied");
            assert_int_equal(applied, i % 5 || step < 2 ? 1 : 0);
            assert_int_equal(itest_count(info, &ps, step, "compensate", NULL),
                             i % 5 ? 0 : 1);
        }
        harness_part_state_free(&ps);
        trellis_trans_info_free(info);
    }
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_diamond_success, itest_teardown),
        cmocka_unit_test_teardown(test_diamond_rollback, itest_teardown),
        cmocka_unit_test_teardown(test_all_at_once, itest_teardown),
        cmocka_unit_test_teardown(test_many_sagas, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
