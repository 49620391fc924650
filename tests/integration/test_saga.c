/*
 * test_saga.c: TM-driven sagas end to end against real trellisd and
 * trellis-testpart: a chain that succeeds, and a business failure at each
 * step with the exact compensation order DESIGN promises (the failed step
 * included, later steps never called).
 */
#include "itest.h"

#include <stdio.h>
#include <string.h>

/* What every call the TM makes must carry (DTM's metadata keys). */
static void assert_metadata(const trellis_trans_info_t *info,
                            const harness_part_state_t *s)
{
    for (size_t i = 0; i < s->n_calls; i++) {
        const harness_part_call_t *c = &s->calls[i];
        assert_string_equal(c->gid, info->gid);
        assert_string_equal(c->dtm_op, c->op);
        assert_string_equal(c->trans_type, "saga");
        assert_true(itest_step_of(info, c->branch) >= 0);
    }
}

static void test_saga_success(void **state)
{
    itest_t *t = itest_start(state, "saga_success", NULL);
    const char *payloads[] = {"ok", "", "ok"};
    trellis_saga_t *s = itest_saga(t, "saga-ok", payloads, 3, NULL);
    char reason[256];
    assert_int_equal(itest_submit(t, s, reason, sizeof reason),
                     TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);

    trellis_trans_info_t *info = itest_query(t, "saga-ok");
    assert_string_equal(info->gid, "saga-ok");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(info->n_branches, 3);
    assert_true(info->finished_ms >= info->created_ms);
    for (size_t i = 0; i < 3; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        assert_int_equal(b->mode, TRELLIS_MODE_SAGA);
        assert_int_equal(b->payload_len, strlen(payloads[i]));
        assert_memory_equal(b->payload, payloads[i], b->payload_len);
        const trellis_op_info_t *a = itest_op(b, TRELLIS_OP_ACTION);
        assert_int_equal(a->status, TRELLIS_OP_SUCCEEDED);
        assert_int_equal(a->attempts, 1);
        assert_int_equal(a->n_attempt_ms, 1);
        assert_string_equal(a->target, t->action);
        const trellis_op_info_t *c = itest_op(b, TRELLIS_OP_COMPENSATE);
        assert_int_equal(c->attempts, 0);
        assert_int_not_equal(c->status, TRELLIS_OP_SUCCEEDED);
    }

    harness_part_state_t ps;
    char j[512];
    itest_part_state(t, "saga-ok", &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j), "A0 A1 A2");
    assert_metadata(info, &ps);
    /* A chain: each action starts after the one before it answered. */
    assert_true(ps.calls[1].start_ms >= ps.calls[0].end_ms);
    assert_true(ps.calls[2].start_ms >= ps.calls[1].end_ms);
    assert_int_equal(ps.n_net, 3);
    for (size_t i = 0; i < 3; i++)
        assert_true(harness_part_net_has(&ps, info->branches[i].branch_id));
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* "A0 A1 ... Ak-1:fail Ck-1 ... C0" for a failure at step k (1-based). */
static void expected_failure_journal(int k, char *buf, size_t len)
{
    size_t used = 0;
    for (int i = 0; i < k; i++)
        used += (size_t)snprintf(buf + used, len - used, "%sA%d%s",
                                 i ? " " : "", i, i == k - 1 ? ":fail" : "");
    for (int i = k - 1; i >= 0; i--)
        used += (size_t)snprintf(buf + used, len - used, " C%d", i);
}

static void assert_failure_ops(const trellis_trans_info_t *info, int k)
{
    for (int i = 0; i < 4; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        const trellis_op_info_t *a = itest_op(b, TRELLIS_OP_ACTION);
        const trellis_op_info_t *c = itest_op(b, TRELLIS_OP_COMPENSATE);
        if (i < k - 1)
            assert_int_equal(a->status, TRELLIS_OP_SUCCEEDED);
        else if (i == k - 1)
            assert_int_equal(a->status, TRELLIS_OP_FAILED);
        else
            assert_int_equal(a->status, TRELLIS_OP_SKIPPED);
        if (i < k) {
            assert_int_equal(c->status, TRELLIS_OP_SUCCEEDED);
            assert_int_equal(c->attempts, 1);
        } else {
            assert_int_equal(a->attempts, 0);
            assert_int_equal(c->attempts, 0);
            assert_int_not_equal(c->status, TRELLIS_OP_SUCCEEDED);
        }
    }
}

/* A 4-step saga whose step k (1-based) fails for business reasons. */
static void run_failure_at(void **state, int k)
{
    char name[32], gid[32], reason[512], want[128], j[512];
    snprintf(name, sizeof name, "saga_fail_at_%d", k);
    snprintf(gid, sizeof gid, "saga-fail-%d", k);
    itest_t *t = itest_start(state, name, NULL);
    const char *payloads[4] = {"ok", "ok", "ok", "ok"};
    payloads[k - 1] = "fail";
    trellis_saga_t *s = itest_saga(t, gid, payloads, 4, NULL);
    assert_int_equal(itest_submit(t, s, reason, sizeof reason),
                     TRELLIS_TRANS_FAILED);
    assert_true(strlen(reason) > 0);
    trellis_saga_free(s);

    trellis_trans_info_t *info = itest_query(t, gid);
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_int_equal(info->n_branches, 4);
    assert_failure_ops(info, k);

    harness_part_state_t ps;
    itest_part_state(t, gid, &ps);
    expected_failure_journal(k, want, sizeof want);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j), want);
    /* The failed step's compensation is empty, the others undo. */
    assert_int_equal(itest_count(info, &ps, k - 1, "compensate", "empty"), 1);
    for (int i = 0; i < k - 1; i++)
        assert_int_equal(itest_count(info, &ps, i, "compensate", "undone"), 1);
    assert_int_equal(ps.n_net, 0);
    assert_metadata(info, &ps);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_fail_at_1(void **state)
{
    run_failure_at(state, 1);
}

static void test_fail_at_2(void **state)
{
    run_failure_at(state, 2);
}

static void test_fail_at_3(void **state)
{
    run_failure_at(state, 3);
}

static void test_fail_at_4(void **state)
{
    run_failure_at(state, 4);
}

/* A step without a compensate target is not compensated; the others are. */
static void test_step_without_compensate(void **state)
{
    itest_t *t = itest_start(state, "saga_no_compensate", NULL);
    char err[256], j[256];
    trellis_saga_t *s = NULL;
    assert_int_equal(trellis_saga_new("saga-nocomp", &s, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(trellis_saga_add_step(s, t->action, t->compensate, "ok", 2,
                                           err, sizeof err),
                     0);
    assert_int_equal(
        trellis_saga_add_step(s, t->action, NULL, "ok", 2, err, sizeof err), 1);
    assert_int_equal(trellis_saga_add_step(s, t->action, t->compensate, "fail",
                                           4, err, sizeof err),
                     2);
    trellis_options_t o = itest_options();
    trellis_saga_set_options(s, &o);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_FAILED);
    trellis_saga_free(s);

    trellis_trans_info_t *info = itest_query(t, "saga-nocomp");
    harness_part_state_t ps;
    itest_part_state(t, "saga-nocomp", &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j),
                        "A0 A1 A2:fail C2 C0");
    /* The step without undo keeps its effect: that is what it declared. */
    assert_int_equal(ps.n_net, 1);
    assert_true(harness_part_net_has(&ps, info->branches[1].branch_id));
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_saga_success, itest_teardown),
        cmocka_unit_test_teardown(test_fail_at_1, itest_teardown),
        cmocka_unit_test_teardown(test_fail_at_2, itest_teardown),
        cmocka_unit_test_teardown(test_fail_at_3, itest_teardown),
        cmocka_unit_test_teardown(test_fail_at_4, itest_teardown),
        cmocka_unit_test_teardown(test_step_without_compensate, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
