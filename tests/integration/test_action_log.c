/*
 * test_action_log.c: the compensation log (issue 16) end to end against
 * real trellisd and trellis-testpart: a saga action's reply bytes are
 * stored with the step and handed to its compensate as metadata
 * trellis-action-result-bin (testpart journals what its SDK context read);
 * exactly the bytes, also when trellisd was killed after the action's
 * success and before the compensate; a reply longer than --max-action-log
 * is stored cut, the compensate is told the full size
 * (trellis-action-result-size), and Query and trellisctl status show both
 * sizes. Run on both stores (integration_action_log, _mysql).
 */
#include "itest.h"

#include <stdio.h>
#include <string.h>

#define BOOKING "booking=42"

/* bytes in lower-case hex, as testpart journals a log, into buf[len]. */
static const char *hex_of(const char *bytes, size_t n, char *buf, size_t len)
{
    assert_true(2 * n < len);
    for (size_t i = 0; i < n; i++)
        snprintf(buf + 2 * i, 3, "%02x", (unsigned char)bytes[i]);
    buf[2 * n] = '\0';
    return buf;
}

/* Submit gid's two steps (payloads: testpart scripts) and wait for the
 * outcome, which must be FAILED (step 2 fails). */
static void run_failing_trip(itest_t *t, const char *gid,
                             const char *const *payloads)
{
    trellis_saga_t *s = itest_saga(t, gid, payloads, 2, NULL);
    char reason[256];
    assert_int_equal(itest_submit(t, s, reason, sizeof reason),
                     TRELLIS_TRANS_FAILED);
    trellis_saga_free(s);
}

/* Step 0's compensate received exactly want[want_len] (cut_from: the full
 * size the size key said, -1 when none), once or more, and every call of
 * it the same; no other call carried a log. */
static void assert_compensate_log(itest_t *t, const char *gid, const char *want,
                                  size_t want_len, int64_t cut_from)
{
    trellis_trans_info_t *info = itest_wait_final(t, gid);
    harness_part_state_t ps;
    itest_part_state(t, gid, &ps);
    char hex[2 * 256 + 1];
    hex_of(want, want_len, hex, sizeof hex);
    int seen = 0;
    for (size_t i = 0; i < ps.n_calls; i++) {
        const harness_part_call_t *c = &ps.calls[i];
        int step0_undo = itest_step_of(info, c->branch) == 0 &&
                         strcmp(c->op, "compensate") == 0;
        if (!step0_undo) {
            assert_int_equal(c->log_len, -1);
            continue;
        }
        seen++;
        if (c->log_len != (int64_t)want_len || strcmp(c->log_hex, hex) != 0 ||
            c->log_size != cut_from) {
            harness_part_state_dump(&ps);
            fail_msg("%s: step 0's compensate got log %s (%lld bytes, size "
                     "%lld), want %s (%zu, %lld)",
                     gid, c->log_hex, (long long)c->log_len,
                     (long long)c->log_size, hex, want_len,
                     (long long)cut_from);
        }
    }
    assert_true(seen >= 1);
    assert_int_equal(itest_count(info, &ps, 0, "compensate", "undone"), 1);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
}

/* Query shows step 0's log: its bytes and the reply's full size. */
static void assert_query_log(itest_t *t, const char *gid, const char *want,
                             size_t want_len, uint64_t full)
{
    trellis_trans_info_t *info = itest_query(t, gid);
    const trellis_op_info_t *a =
        itest_op(&info->branches[0], TRELLIS_OP_ACTION);
    assert_int_equal(a->recorded, 0);
    assert_int_equal(a->result_len, want_len);
    assert_memory_equal(a->result, want, want_len);
    assert_int_equal(a->result_size, full);
    const trellis_op_info_t *b =
        itest_op(&info->branches[1], TRELLIS_OP_ACTION);
    assert_int_equal(b->result_len, 0); /* it failed: nothing kept */
    assert_int_equal(b->result_size, 0);
    trellis_trans_info_free(info);
}

static void assert_has(const char *out, const char *what)
{
    if (!strstr(out, what))
        fail_msg("expected \"%s\" in:\n%s", what, out);
}

/* Step 1's action replies "booking=42", step 2 fails: step 1's compensate
 * receives exactly those bytes; trellisctl status shows the log's size. */
static void test_compensate_gets_action_reply(void **state)
{
    itest_t *t = itest_start(state, "action_log_reply", NULL);
    const char *payloads[] = {"action=reply:" BOOKING, "fail"};
    run_failing_trip(t, "log-reply", payloads);
    assert_compensate_log(t, "log-reply", BOOKING, strlen(BOOKING), -1);
    assert_query_log(t, "log-reply", BOOKING, strlen(BOOKING), strlen(BOOKING));
    char out[16384];
    assert_int_equal(itest_ctl(t, "status-log",
                               (const char *[]){"status", "log-reply", NULL},
                               out, sizeof out),
                     0);
    assert_has(out, "log 10 bytes\n");
    itest_pass(state);
}

/* trellisd is killed after step 1's success was stored and while step 2's
 * action is on the wire (held by testpart), then restarted: the
 * compensate still receives exactly the action's bytes, now read from the
 * store. */
static void test_compensate_gets_reply_after_restart(void **state)
{
    itest_t *t = itest_start(state, "action_log_restart", NULL);
    const char *payloads[] = {"action=reply:" BOOKING, "hold,fail"};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_t *s = itest_saga(t, "log-restart", payloads, 2, &o);
    itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    itest_control(harness_server_addr(t->part), NULL, 0,
                  "wait-held log-restart 1 %d", ITEST_FINAL_TIMEOUT_MS);
    assert_int_equal(harness_server_kill(t->tm), 0);
    itest_control(harness_server_addr(t->part), NULL, 0, "release log-restart");
    assert_int_equal(harness_server_restart(t->tm), 0);
    char err[256];
    trellis_client_free(t->client);
    t->client = NULL;
    if (trellis_client_new(harness_server_addr(t->tm), 30000, &t->client, err,
                           sizeof err) != TRELLIS_OK)
        fail_msg("trellis_client_new: %s", err);
    assert_compensate_log(t, "log-restart", BOOKING, strlen(BOOKING), -1);
    trellis_trans_info_t *info = itest_query(t, "log-restart");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    trellis_trans_info_free(info);
    assert_query_log(t, "log-restart", BOOKING, strlen(BOOKING),
                     strlen(BOOKING));
    itest_pass(state);
}

/* A reply longer than --max-action-log (16 here) is stored cut: the
 * compensate gets its first 16 bytes and the full size; Query and
 * trellisctl status show both sizes. */
static void test_oversize_reply_stored_cut(void **state)
{
    const char *args[] = {"--max-action-log", "16", NULL};
    itest_t *t = itest_start(state, "action_log_cut", args);
    const char *payloads[] = {"action=replyn:100", "fail"};
    run_failing_trip(t, "log-cut", payloads);
    const char *first = "0123456789012345";
    assert_compensate_log(t, "log-cut", first, 16, 100);
    assert_query_log(t, "log-cut", first, 16, 100);
    char out[16384];
    assert_int_equal(itest_ctl(t, "status-cut",
                               (const char *[]){"status", "log-cut", NULL}, out,
                               sizeof out),
                     0);
    assert_has(out, "log 16 bytes, cut from 100\n");
    assert_int_equal(
        itest_ctl(t, "status-cut-json",
                  (const char *[]){"--json", "status", "log-cut", NULL}, out,
                  sizeof out),
        0);
    assert_has(out, "\"log_bytes\":16,\"log_full_bytes\":100");
    itest_pass(state);
}

/* --max-action-log 0: nothing is kept, the compensate gets no log. */
static void test_max_zero_sends_none(void **state)
{
    const char *args[] = {"--max-action-log", "0", NULL};
    itest_t *t = itest_start(state, "action_log_none", args);
    const char *payloads[] = {"action=reply:" BOOKING, "fail"};
    run_failing_trip(t, "log-none", payloads);
    trellis_trans_info_t *info = itest_wait_final(t, "log-none");
    harness_part_state_t ps;
    itest_part_state(t, "log-none", &ps);
    for (size_t i = 0; i < ps.n_calls; i++)
        assert_int_equal(ps.calls[i].log_len, -1);
    assert_int_equal(itest_count(info, &ps, 0, "compensate", "undone"), 1);
    harness_part_state_free(&ps);
    const trellis_op_info_t *a =
        itest_op(&info->branches[0], TRELLIS_OP_ACTION);
    assert_int_equal(a->result_len, 0);
    assert_int_equal(a->result_size, 0);
    trellis_trans_info_free(info);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_compensate_gets_action_reply,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_compensate_gets_reply_after_restart,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_oversize_reply_stored_cut,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_max_zero_sends_none, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
