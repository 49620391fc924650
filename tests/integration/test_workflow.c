/*
 * test_workflow.c: workflows (trellis_workflow.h) against a real trellisd
 * and trellis-testpart, with the workflow service hosted by the test
 * process itself (itest_workflow.h). Success of saga, TCC and local
 * steps; a business failure in the last step rolling back everything
 * before it (local undo included); replay of recorded results byte for
 * byte without calling again; a replay mismatch stopping the workflow in
 * trellisd; trellisd resuming a workflow that asked to retry; a step with
 * an unknown outcome run again by the next run; hooks on commit and
 * rollback. One gid running once per process and bad input at the raw
 * RPCs are in test_workflow_input.c.
 *
 * Testpart journal letters (itest_journal): A action, C compensate, T try,
 * F confirm, X cancel, followed by the step's number (1 for branch "01");
 * ":answer" when not ok.
 */
#include "itest_workflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- success and failure --------------------------------------------- */

static void test_success(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_success", NULL);
    trellis_options_t o = opts(60000);
    const char *in = "ok|ok|ok|ok";
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("transfer", "wf-ok", in, strlen(in), &o, &st,
                              reason, sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);

    harness_part_state_t ps;
    assert_string_equal(journal("wf-ok", &ps, j, sizeof j), "A1 A2 T4 F4");
    assert_int_equal(ps.n_net, 3);
    harness_part_state_free(&ps);
    assert_int_equal(atomic_load(&W.local_runs), 1);
    assert_int_equal(atomic_load(&W.undo_runs), 0);

    trellis_trans_info_t *info = itest_query(X->t, "wf-ok");
    assert_int_equal(info->n_branches, 5);
    static const trellis_mode_t modes[] = {
        TRELLIS_MODE_WORKFLOW, TRELLIS_MODE_SAGA, TRELLIS_MODE_SAGA,
        TRELLIS_MODE_LOCAL, TRELLIS_MODE_TCC};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(info->branches[i].mode, modes[i]);
    const trellis_op_info_t *local =
        itest_op(branch(info, "03"), TRELLIS_OP_ACTION);
    assert_true(local->recorded);
    assert_int_equal(local->result_len, sizeof LOCAL_RESULT);
    assert_memory_equal(local->result, LOCAL_RESULT, sizeof LOCAL_RESULT);
    assert_true(itest_op(branch(info, "04"), TRELLIS_OP_TRY)->recorded);
    trellis_trans_info_free(info);

    /* Done: executing again runs nothing and reports the outcome. */
    int runs = atomic_load(&W.runs);
    rc = execute("transfer", "wf-ok", in, strlen(in), &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(atomic_load(&W.runs), runs);
    /* The same gid with other input is another workflow. */
    rc = execute("transfer", "wf-ok", "ok|ok|ok|", 9, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_ALREADY_EXISTS);
    wft_pass(state);
}

/* A workflow with a completion listener (the test participant's Notify):
 * trellisd appends it right after the head, and the function's steps
 * still meet their own branches on every run; the listener is told
 * SUCCEEDED once, after the commit. */
static void test_listener(void **state)
{
    char err[512], reason[512], target[128];
    wft_start(state, "wf_listener", NULL);
    snprintf(target, sizeof target, "%s/trellis.test.Part/Notify",
             harness_server_addr(X->t->part));
    const char *listeners[] = {target};
    trellis_options_t o = opts(60000);
    o.listeners = listeners;
    o.n_listeners = 1;
    const char *in = "ok|ok|ok|ok";
    trellis_trans_status_t st;
    for (int run = 0; run < 2; run++) { /* the second replays */
        trellis_rc_t rc = execute("transfer", "wf-listen", in, strlen(in), &o,
                                  &st, reason, sizeof reason, err, sizeof err);
        assert_int_equal(rc, TRELLIS_OK);
        assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    }
    trellis_trans_info_t *info = itest_wait_final(X->t, "wf-listen");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(info->n_branches, 6);
    const trellis_branch_info_t *ev = branch(info, "ev1");
    assert_int_equal(ev->mode, TRELLIS_MODE_EVENT);
    assert_int_equal(ev->ops[0].status, TRELLIS_OP_SUCCEEDED);
    trellis_trans_info_free(info);
    harness_part_state_t ps;
    itest_part_state(X->t, "wf-listen", &ps);
    assert_int_equal(harness_part_count(&ps, "ev1", "notify", "applied"), 1);
    harness_part_state_free(&ps);
    wft_pass(state);
}

/* The tcc try of step 04 fails for business reasons: the function rolls
 * back, and trellisd undoes 04, the local 03 (through Resume, with its
 * recorded result), 02 and 01, in that order. */
static void test_failure_rolls_back(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_failure", NULL);
    trellis_options_t o = opts(60000);
    const char *in = "ok|ok|ok|fail";
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("transfer", "wf-fail", in, strlen(in), &o, &st,
                              reason, sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    assert_non_null(strstr(reason, "try fail"));

    harness_part_state_t ps;
    journal("wf-fail", &ps, j, sizeof j);
    assert_int_equal(ps.n_net, 0);
    assert_int_equal(harness_part_count(&ps, "01", "compensate", "undone"), 1);
    assert_int_equal(harness_part_count(&ps, "02", "compensate", "undone"), 1);
    assert_int_equal(harness_part_count(&ps, NULL, "confirm", NULL), 0);
    const harness_part_call_t *c02 =
        harness_part_find(&ps, "02", "compensate", 0);
    const harness_part_call_t *c01 =
        harness_part_find(&ps, "01", "compensate", 0);
    assert_non_null(c02);
    assert_non_null(c01);
    assert_true(c02->seq < c01->seq);

    assert_int_equal(atomic_load(&W.undo_runs), 1);
    pthread_mutex_lock(&W.mu);
    assert_false(W.undo_seen_null);
    assert_int_equal(W.undo_seen_len, sizeof LOCAL_RESULT);
    assert_memory_equal(W.undo_seen, LOCAL_RESULT, sizeof LOCAL_RESULT);
    assert_true(W.undo_ms <= c02->start_ms);
    pthread_mutex_unlock(&W.mu);
    harness_part_state_free(&ps);

    trellis_trans_info_t *info = itest_query(X->t, "wf-fail");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    const trellis_op_info_t *try4 =
        itest_op(branch(info, "04"), TRELLIS_OP_TRY);
    assert_true(try4->recorded);
    assert_int_equal(try4->status, TRELLIS_OP_FAILED);
    assert_int_equal(
        itest_op(branch(info, "03"), TRELLIS_OP_COMPENSATE)->status,
        TRELLIS_OP_SUCCEEDED);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            itest_op(branch(info, i ? "02" : "01"), TRELLIS_OP_COMPENSATE)
                ->status,
            TRELLIS_OP_SUCCEEDED);
    trellis_trans_info_free(info);

    /* A local step that fails: recorded ABORTED, replayed as such. */
    in = "ok|ok|fail|ok";
    rc = execute("transfer", "wf-fail-local", in, strlen(in), &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    assert_string_equal(reason, "local: refused");
    info = itest_query(X->t, "wf-fail-local");
    const trellis_op_info_t *a3 =
        itest_op(branch(info, "03"), TRELLIS_OP_ACTION);
    assert_int_equal(a3->status, TRELLIS_OP_FAILED);
    assert_string_equal(a3->last_error, "local: refused");
    assert_int_equal(info->n_branches, 4); /* 04 never asked for */
    trellis_trans_info_free(info);
    /* Its undo still runs (the action may have left effects), with no
     * result: it recorded none. */
    assert_int_equal(atomic_load(&W.undo_runs), 2);
    pthread_mutex_lock(&W.mu);
    assert_true(W.undo_seen_null);
    assert_int_equal(W.undo_seen_len, 0);
    pthread_mutex_unlock(&W.mu);
    wft_pass(state);
}

/* ---- replay ---------------------------------------------------------- */

/* Run 1 records step 01 (bytes with a NUL) and the local step, then
 * retries; run 2 gets both results back byte for byte, calling neither. */
static void test_replay_bytes(void **state)
{
    char err[512], reason[512];
    wft_start(state, "wf_replay", NULL);
    trellis_options_t o = opts(60000); /* no resume in between */
    atomic_store(&W.retries_left, 1);
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("bytes", "wf-bytes", "in", 2, &o, &st, reason,
                              sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    assert_non_null(strstr(err, "will be resumed by trellisd: not yet"));
    assert_int_equal(st, TRELLIS_TRANS_PREPARED);
    assert_int_equal(atomic_load(&W.bytes_calls), 1);
    assert_int_equal(atomic_load(&W.local_runs), 1);

    rc = execute("bytes", "wf-bytes", "in", 2, &o, &st, reason, sizeof reason,
                 err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(atomic_load(&W.runs), 2);
    assert_int_equal(atomic_load(&W.bytes_calls), 1);
    assert_int_equal(atomic_load(&W.local_runs), 1);
    pthread_mutex_lock(&W.mu);
    for (int run = 0; run < 2; run++) {
        assert_int_equal(W.reply_lens[run], sizeof BYTES_REPLY);
        assert_memory_equal(W.replies[run], BYTES_REPLY, sizeof BYTES_REPLY);
    }
    pthread_mutex_unlock(&W.mu);

    trellis_trans_info_t *info = itest_query(X->t, "wf-bytes");
    const trellis_op_info_t *a1 =
        itest_op(branch(info, "01"), TRELLIS_OP_ACTION);
    assert_true(a1->recorded);
    assert_int_equal(a1->result_len, sizeof BYTES_REPLY);
    assert_memory_equal(a1->result, BYTES_REPLY, sizeof BYTES_REPLY);
    trellis_trans_info_free(info);
    wft_pass(state);
}

/* Run 1 records a saga at step 01 and retries; run 2 asks for a tcc step
 * there: execute says so, and trellisd's resume is answered ABORTED and
 * stops. */
static void assert_out_has(const char *out, const char *want)
{
    if (!strstr(out, want))
        fail_msg("trellisctl output lacks \"%s\":\n%s", want, out);
}

static uint32_t resume_attempts(const char *gid, trellis_op_status_t *st)
{
    trellis_trans_info_t *info = itest_query(X->t, gid);
    const trellis_op_info_t *head =
        itest_op(branch(info, "00"), TRELLIS_OP_RESUME);
    uint32_t n = head->attempts;
    *st = head->status;
    trellis_trans_info_free(info);
    return n;
}

/* wf-shift is stopped: trellisctl status says so and shows the recorded
 * step; `trellisctl retry-now` resumes it once more (the service still
 * refuses: stopped again); `trellisctl abort` rolls its step back. */
static void operator_restarts_then_aborts(int64_t deadline)
{
    char out[8192];
    const char *status[] = {"status", "wf-shift", NULL};
    assert_int_equal(itest_ctl(X->t, "ctl-status", status, out, sizeof out), 0);
    assert_out_has(out, "workflow  shifty (input 0 bytes)");
    assert_out_has(out, "stopped: the workflow service refused");
    assert_out_has(out, "recorded result: ok, 0 bytes");

    trellis_op_status_t st;
    uint32_t before = resume_attempts("wf-shift", &st);
    const char *retry[] = {"retry-now", "wf-shift", NULL};
    assert_int_equal(itest_ctl(X->t, "ctl-retry", retry, out, sizeof out), 0);
    while (resume_attempts("wf-shift", &st) == before ||
           st != TRELLIS_OP_FAILED) {
        if (harness_mono_ms() > deadline)
            fail_msg("retry-now did not resume wf-shift once more");
        harness_sleep_ms(20);
    }

    const char *abort_[] = {"abort", "wf-shift", NULL};
    assert_int_equal(itest_ctl(X->t, "ctl-abort", abort_, out, sizeof out), 0);
    trellis_trans_info_t *info = itest_wait_final(X->t, "wf-shift");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    trellis_trans_info_free(info);
    char j[256];
    harness_part_state_t ps;
    journal("wf-shift", &ps, j, sizeof j);
    assert_int_equal(harness_part_count(&ps, NULL, "compensate", "undone"), 1);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
}

static void test_replay_mismatch(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_mismatch", NULL);
    trellis_options_t o = opts(300);
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("shifty", "wf-shift", "", 0, &o, &st, reason,
                              sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    atomic_store(&W.shifty_tcc, 1);
    int64_t deadline = harness_mono_ms() + ITEST_FINAL_TIMEOUT_MS;
    do { /* trellisd may be resuming it right now */
        rc = execute("shifty", "wf-shift", "", 0, &o, &st, reason,
                     sizeof reason, err, sizeof err);
        if (rc == TRELLIS_FAILED_PRECONDITION && strstr(err, "running"))
            harness_sleep_ms(20);
        else
            break;
    } while (harness_mono_ms() < deadline);
    assert_int_equal(rc, TRELLIS_FAILED_PRECONDITION);
    assert_int_equal(st, TRELLIS_TRANS_PREPARED);
    assert_non_null(strstr(err, "replay mismatch"));
    assert_non_null(strstr(err, "step 01: recorded saga action "));
    assert_non_null(strstr(err, ", but the function now asks for tcc try "));

    /* trellisd resumes after the timeout; the service answers ABORTED and
     * the workflow waits for an operator. */
    trellis_trans_info_t *info = NULL;
    for (;;) {
        info = itest_query(X->t, "wf-shift");
        const trellis_op_info_t *head =
            itest_op(branch(info, "00"), TRELLIS_OP_RESUME);
        if (head->status == TRELLIS_OP_FAILED)
            break;
        if (harness_mono_ms() > deadline)
            fail_msg("the resume of wf-shift did not stop: %s", info->reason);
        trellis_trans_info_free(info);
        harness_sleep_ms(20);
    }
    fprintf(stderr, "reason: %s\n", info->reason);
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_true(strncmp(info->reason, "workflow stopped: ", 18) == 0);
    assert_non_null(strstr(info->reason, "replay mismatch"));
    trellis_trans_info_free(info);

    /* Stopped: execute says so without running the function. */
    int runs = atomic_load(&W.runs);
    rc = execute("shifty", "wf-shift", "", 0, &o, &st, reason, sizeof reason,
                 err, sizeof err);
    assert_int_equal(rc, TRELLIS_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "stopped"));
    assert_int_equal(atomic_load(&W.runs), runs);

    harness_part_state_t ps;
    assert_string_equal(journal("wf-shift", &ps, j, sizeof j), "A1");
    harness_part_state_free(&ps);

    operator_restarts_then_aborts(deadline);

    /* A commit that leaves a recorded step out is a mismatch too. */
    o = opts(60000);
    rc = execute("shrink", "wf-shrink", "", 0, &o, &st, reason, sizeof reason,
                 err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    atomic_store(&W.shrink, 1);
    rc = execute("shrink", "wf-shrink", "", 0, &o, &st, reason, sizeof reason,
                 err, sizeof err);
    assert_int_equal(rc, TRELLIS_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "step 02: recorded saga action "));
    assert_non_null(strstr(err, "commits after step 01"));
    assert_int_equal(st, TRELLIS_TRANS_PREPARED);
    wft_pass(state);
}

/* The first run retries; trellisd resumes the workflow after its 300 ms
 * timeout, and the second run (in the service) commits it. */
static void test_resumed_by_trellisd(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_resume", NULL);
    trellis_options_t o = opts(300);
    atomic_store(&W.retries_left, 1);
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("flaky", "wf-flaky", "x", 1, &o, &st, reason,
                              sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    assert_non_null(strstr(err, "first run: try again"));

    trellis_trans_info_t *info = itest_wait_final(X->t, "wf-flaky");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    const trellis_op_info_t *head =
        itest_op(branch(info, "00"), TRELLIS_OP_RESUME);
    assert_true(head->attempts >= 1);
    trellis_trans_info_free(info);
    assert_true(atomic_load(&W.runs) >= 2);
    harness_part_state_t ps;
    assert_string_equal(journal("wf-flaky", &ps, j, sizeof j), "A1");
    harness_part_state_free(&ps);
    wft_pass(state);
}

/* A forward op whose outcome is unknown is not recorded: the function
 * retries (or commits, which counts as a retry), and the next run calls
 * the op again and records what it answers then. A business failure is
 * recorded, and rolled back even when the function commits. */
static void test_unknown_outcome_runs_again(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_unknown", NULL);
    trellis_options_t o = opts(60000);
    const char *in = "unavail:1|ok|ok|ok";
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("transfer", "wf-unk", in, strlen(in), &o, &st,
                              reason, sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    rc = execute("transfer", "wf-unk", in, strlen(in), &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    harness_part_state_t ps;
    assert_string_equal(journal("wf-unk", &ps, j, sizeof j),
                        "A1:unavail A1 A2 T4 F4");
    harness_part_state_free(&ps);

    rc = execute("careless", "wf-careless", "unavail:1", 9, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    assert_non_null(strstr(err, "outcome is unknown"));
    rc = execute("careless", "wf-careless", "unavail:1", 9, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_string_equal(journal("wf-careless", &ps, j, sizeof j),
                        "A1:unavail A1");
    harness_part_state_free(&ps);

    /* A step recorded ABORTED in a workflow that commits anyway is rolled
     * back by trellisd, the rest committed. */
    rc = execute("careless", "wf-careless-f", "fail", 4, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_string_equal(journal("wf-careless-f", &ps, j, sizeof j),
                        "A1:fail C1");
    harness_part_state_free(&ps);
    wft_pass(state);
}

/* ---- hooks ----------------------------------------------------------- */

static void test_hooks(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_hooks", NULL);
    trellis_options_t o = opts(60000);
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("hooked", "wf-hook-c", "commit", 6, &o, &st,
                              reason, sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(atomic_load(&W.on_commit), 1);
    assert_int_equal(atomic_load(&W.on_finish), 1);
    assert_int_equal(atomic_load(&W.on_rollback), 0);
    harness_part_state_t ps;
    assert_string_equal(journal("wf-hook-c", &ps, j, sizeof j), "A1 T2 F2");
    const harness_part_call_t *f = harness_part_find(&ps, "02", "confirm", 0);
    pthread_mutex_lock(&W.mu);
    assert_true(W.hook_ms >= f->end_ms);
    pthread_mutex_unlock(&W.mu);
    harness_part_state_free(&ps);
    trellis_trans_info_t *info = itest_query(X->t, "wf-hook-c");
    const trellis_branch_info_t *h = branch(info, "hooks");
    assert_int_equal(h->mode, TRELLIS_MODE_HOOKS);
    assert_int_equal(itest_op(h, TRELLIS_OP_COMMIT)->status,
                     TRELLIS_OP_SUCCEEDED);
    assert_int_equal(itest_op(h, TRELLIS_OP_COMMIT)->attempts, 1);
    trellis_trans_info_free(info);

    rc = execute("hooked", "wf-hook-r", "rollback", 8, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    assert_string_equal(reason, "changed my mind");
    assert_int_equal(atomic_load(&W.on_commit), 1);
    assert_int_equal(atomic_load(&W.on_rollback), 1);
    assert_int_equal(atomic_load(&W.on_finish), 2);
    journal("wf-hook-r", &ps, j, sizeof j);
    assert_int_equal(ps.n_net, 0);
    const harness_part_call_t *c =
        harness_part_find(&ps, "01", "compensate", 0);
    assert_non_null(c);
    pthread_mutex_lock(&W.mu);
    assert_true(W.hook_ms >= c->end_ms);
    pthread_mutex_unlock(&W.mu);
    harness_part_state_free(&ps);
    wft_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_success, wft_teardown),
        cmocka_unit_test_teardown(test_listener, wft_teardown),
        cmocka_unit_test_teardown(test_failure_rolls_back, wft_teardown),
        cmocka_unit_test_teardown(test_replay_bytes, wft_teardown),
        cmocka_unit_test_teardown(test_replay_mismatch, wft_teardown),
        cmocka_unit_test_teardown(test_resumed_by_trellisd, wft_teardown),
        cmocka_unit_test_teardown(test_unknown_outcome_runs_again,
                                  wft_teardown),
        cmocka_unit_test_teardown(test_hooks, wft_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
