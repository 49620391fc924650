/*
 * test_dtm_workflow.c: DTM workflows through trellisd's DTM service,
 * driven exactly as DTM's workflow SDK (client/workflow) drives a DTM
 * server, by the independent client (tests/dtm/dtm_client.py, Python's
 * grpcio; see test_dtm.c).
 *
 * The client runs a workflow function whose steps call trellis-testpart
 * (each STEP argument is the step's script): PrepareWorkflow, the
 * recorded progresses replayed, each step's action called by the client
 * and its result recorded (RegisterBranch), the rollbacks of a failed
 * workflow called and recorded, then Submit with ReqExtra's status. The
 * same script in serve mode (trellis-dtm-wfsvc) is the workflow service
 * trellisd calls back — workflow.Workflow/Execute with the workflow's
 * name as dtm-op, branch 00 — when a workflow outlives its TimeoutToFail:
 * it runs the function again from its WorkflowData.
 *
 * Themes: a workflow that commits (a re-run afterwards calls nothing), a
 * workflow that fails (its earlier steps rolled back once); the service
 * dying mid-workflow (after a step's progress is recorded, and between
 * a step's answer and its record) and trellisd resuming it through the
 * callback, every recorded step replayed without a call; kill -9 of
 * trellisd while a step is held at the participant, in the first run and
 * in the run its callback started. Every effect is
 * checked to have happened exactly once (testpart's barrier).
 *
 * Timing: a resume waits for TimeoutToFail, whose unit in DTM's API is
 * the second: those tests take a second or two each.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest_dtm.h"

typedef struct {
    itest_t *t;
    harness_server_t *svc;
    char journal[512];
    char callback[160];
    const char *part;
} wf_test_t;

static void start(void **state, const char *name, wf_test_t *w)
{
    w->t = itest_start(state, name, NULL);
    w->svc = idtm_workflow_service_start(w->t, w->journal, sizeof w->journal);
    snprintf(w->callback, sizeof w->callback,
             "--callback=%s/workflow.Workflow/Execute",
             harness_server_addr(w->svc));
    w->part = harness_server_addr(w->t->part);
}

/* Calls of (branch, op) of gid at testpart with effect (NULL: any). */
static int calls(wf_test_t *w, const char *gid, const char *branch,
                 const char *op, const char *effect)
{
    return idtm_count(w->t, gid, branch, op, effect);
}

/* The service's journal holds a line with every one of words (up to a
 * NULL). */
static int journal_has(wf_test_t *w, const char *first, ...)
{
    FILE *f = fopen(w->journal, "r");
    char line[512];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) {
        va_list ap;
        va_start(ap, first);
        found = 1;
        for (const char *s = first; s && found; s = va_arg(ap, const char *))
            found = strstr(line, s) != NULL;
        va_end(ap);
    }
    if (f)
        fclose(f);
    return found;
}

static void test_workflow_commits(void **state)
{
    wf_test_t w;
    start(state, "dtm_wf_commit", &w);
    idtm_run(w.t, "OK", w.callback, "workflow", "dtm-wf1", "transfer", w.part,
             "ok", "ok", NULL);
    idtm_assert_final(w.t, "dtm-wf1", TRELLIS_TRANS_SUCCEEDED);
    for (int i = 1; i <= 2; i++) {
        const char *b = i == 1 ? "01" : "02";
        assert_int_equal(calls(&w, "dtm-wf1", b, "action", "applied"), 1);
        assert_int_equal(calls(&w, "dtm-wf1", b, "action", NULL), 1);
    }
    /* The progresses, as trellis.v1 shows them: a DTM head, one local
     * step per recorded op. */
    trellis_trans_info_t *info = itest_query(w.t, "dtm-wf1");
    assert_int_equal(info->n_branches, 3);
    assert_int_equal(info->branches[0].mode, TRELLIS_MODE_DTM_WORKFLOW);
    assert_string_equal(info->branches[1].branch_id, "01:action");
    assert_string_equal(info->branches[2].branch_id, "02:action");
    trellis_trans_info_free(info);
    /* Run again (the SDK's Execute of a finished gid): nothing is called,
     * nothing recorded. */
    idtm_run(w.t, "OK", w.callback, "workflow", "dtm-wf1", "transfer", w.part,
             "ok", "ok", NULL);
    assert_int_equal(calls(&w, "dtm-wf1", "01", "action", NULL), 1);
    /* The same gid as another workflow: refused, nothing changes. */
    idtm_run(w.t, "ALREADY_EXISTS", w.callback, "workflow", "dtm-wf1",
             "payment", w.part, "ok", NULL);
    assert_false(journal_has(&w, "gid=dtm-wf1", NULL));
    itest_pass(state);
}

static void test_workflow_rolls_back(void **state)
{
    wf_test_t w;
    start(state, "dtm_wf_rollback", &w);
    idtm_run(w.t, "ABORTED", w.callback, "workflow", "dtm-wf2", "transfer",
             w.part, "ok", "ok", "fail", NULL);
    trellis_trans_info_t *info = itest_wait_final(w.t, "dtm-wf2");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_non_null(strstr(info->reason, "aborted by the initiator"));
    trellis_trans_info_free(info);
    for (int i = 1; i <= 2; i++) {
        const char *b = i == 1 ? "01" : "02";
        assert_int_equal(calls(&w, "dtm-wf2", b, "action", "applied"), 1);
        assert_int_equal(calls(&w, "dtm-wf2", b, "compensate", "undone"), 1);
    }
    assert_int_equal(calls(&w, "dtm-wf2", "03", "action", "applied"), 0);
    assert_int_equal(calls(&w, "dtm-wf2", "03", "compensate", NULL), 0);
    /* A re-run reads back "failed" and calls nothing. */
    idtm_run(w.t, "ABORTED", "--words=rollback_reason", w.callback, "workflow",
             "dtm-wf2", "transfer", w.part, "ok", "ok", "fail", NULL);
    assert_int_equal(calls(&w, "dtm-wf2", "01", "compensate", NULL), 1);
    itest_pass(state);
}

/* The service dies right after step 01's progress is durable: trellisd
 * calls it back at TimeoutToFail, the re-run replays 01 without calling
 * it and runs 02. */
static void test_workflow_resumed(void **state)
{
    wf_test_t w;
    start(state, "dtm_wf_resume", &w);
    idtm_run(w.t, IDTM_DIED, w.callback, "--timeout-to-fail", "1",
             "--die-after-record", "1", "workflow", "dtm-wf3", "transfer",
             w.part, "ok", "ok", NULL);
    idtm_assert_final(w.t, "dtm-wf3", TRELLIS_TRANS_SUCCEEDED);
    assert_true(journal_has(&w, "gid=dtm-wf3", "trans_type=workflow",
                            "branch_id=00", "op=transfer", NULL));
    assert_int_equal(calls(&w, "dtm-wf3", "01", "action", NULL), 1);
    assert_int_equal(calls(&w, "dtm-wf3", "02", "action", "applied"), 1);
    itest_pass(state);
}

/* The service dies between step 02's answer and its record: the re-run
 * calls it again, and the participant's barrier answers the second call
 * as a duplicate. */
static void test_workflow_resumed_unrecorded(void **state)
{
    wf_test_t w;
    start(state, "dtm_wf_unrecorded", &w);
    idtm_run(w.t, IDTM_DIED, w.callback, "--timeout-to-fail", "1",
             "--die-before-record", "2", "workflow", "dtm-wf4", "transfer",
             w.part, "ok", "ok", "ok", NULL);
    idtm_assert_final(w.t, "dtm-wf4", TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(calls(&w, "dtm-wf4", "01", "action", NULL), 1);
    assert_int_equal(calls(&w, "dtm-wf4", "02", "action", "applied"), 1);
    assert_true(calls(&w, "dtm-wf4", "02", "action", "dup") >= 1);
    assert_int_equal(calls(&w, "dtm-wf4", "03", "action", "applied"), 1);
    itest_pass(state);
}

/* A workflow that fails after the service was resumed: the re-run's
 * rollbacks run once, and the workflow fails. */
static void test_workflow_resumed_rolls_back(void **state)
{
    wf_test_t w;
    start(state, "dtm_wf_resume_fail", &w);
    idtm_run(w.t, IDTM_DIED, w.callback, "--timeout-to-fail", "1",
             "--die-after-record", "1", "workflow", "dtm-wf5", "transfer",
             w.part, "ok", "fail", NULL);
    idtm_assert_final(w.t, "dtm-wf5", TRELLIS_TRANS_FAILED);
    assert_int_equal(calls(&w, "dtm-wf5", "01", "action", NULL), 1);
    assert_int_equal(calls(&w, "dtm-wf5", "01", "compensate", "undone"), 1);
    assert_int_equal(calls(&w, "dtm-wf5", "02", "compensate", NULL), 0);
    itest_pass(state);
}

/* kill -9 of trellisd while step 02's action is held at the participant:
 * whether the client's own run or the callback after the restart
 * finishes it, every step takes effect once. */
static void test_crash_workflow(void **state)
{
    wf_test_t w;
    start(state, "dtm_wf_crash", &w);
    harness_proc_t *client =
        idtm_spawn(w.t, "ANY", w.callback, "--timeout-to-fail", "1", "workflow",
                   "dtm-wf6", "transfer", w.part, "ok", "hold", "ok", NULL);
    itest_crash_while_held(w.t, "dtm-wf6", 1);
    assert_int_equal(harness_proc_wait(client, ITEST_FINAL_TIMEOUT_MS, NULL),
                     0);
    idtm_assert_final(w.t, "dtm-wf6", TRELLIS_TRANS_SUCCEEDED);
    for (int i = 1; i <= 3; i++) {
        char b[8];
        snprintf(b, sizeof b, "%02d", i);
        assert_int_equal(calls(&w, "dtm-wf6", b, "action", "applied"), 1);
    }
    itest_pass(state);
}

/* kill -9 of trellisd while its callback is in flight: the resumed run
 * holds at step 02; after the restart trellisd calls the service back
 * again, and each step still takes effect once. */
static void test_crash_during_callback(void **state)
{
    wf_test_t w;
    start(state, "dtm_wf_crash_cb", &w);
    idtm_run(w.t, IDTM_DIED, w.callback, "--timeout-to-fail", "1",
             "--die-after-record", "1", "workflow", "dtm-wf10", "transfer",
             w.part, "ok", "hold", NULL);
    itest_crash_while_held(w.t, "dtm-wf10", 1);
    idtm_assert_final(w.t, "dtm-wf10", TRELLIS_TRANS_SUCCEEDED);
    assert_true(journal_has(&w, "gid=dtm-wf10", "op=transfer", NULL));
    assert_int_equal(calls(&w, "dtm-wf10", "01", "action", NULL), 1);
    assert_int_equal(calls(&w, "dtm-wf10", "02", "action", "applied"), 1);
    itest_pass(state);
}

static void test_bad_input(void **state)
{
    wf_test_t w;
    start(state, "dtm_wf_bad", &w);
    /* An HTTP callback (DTM's InitHTTP): refused, nothing stored. */
    idtm_run(w.t, "UNIMPLEMENTED", "--words=QueryPrepared is a URL",
             "--callback=http://app/api/workflow", "workflow", "dtm-wf7",
             "transfer", w.part, "ok", NULL);
    idtm_run(w.t, "NOT_FOUND", "abort", "dtm-wf7", "workflow", NULL);
    idtm_run(w.t, "INVALID_ARGUMENT", "--words=CustomedData", "raw",
             "PrepareWorkflow",
             "{\"Gid\":\"dtm-wf8\",\"TransType\":\"workflow\","
             "\"QueryPrepared\":\"127.0.0.1:1/workflow.Workflow/Execute\","
             "\"CustomedData\":\"{\\\"name\\\":\\\"t\\\",\\\"x\\\":1}\"}",
             NULL);
    idtm_run(w.t, "NOT_FOUND", "abort", "dtm-wf8", "workflow", NULL);
    /* A progress for a transaction that is not a DTM workflow. */
    idtm_run(w.t, "OK", "raw", "Prepare",
             "{\"Gid\":\"dtm-tcc\",\"TransType\":\"tcc\"}", NULL);
    idtm_run(w.t, "ABORTED", "--words=not a DTM workflow", "raw",
             "RegisterBranch",
             "{\"Gid\":\"dtm-tcc\",\"TransType\":\"workflow\","
             "\"BranchID\":\"01\",\"Data\":{\"status\":\"succeed\","
             "\"op\":\"action\"}}",
             NULL);
    idtm_run(w.t, "INVALID_ARGUMENT", "--words=Data.status", "raw",
             "RegisterBranch",
             "{\"Gid\":\"dtm-tcc\",\"TransType\":\"workflow\","
             "\"BranchID\":\"01\",\"Data\":{\"status\":\"done\","
             "\"op\":\"action\"}}",
             NULL);
    idtm_run(w.t, "UNIMPLEMENTED", "--words=PrepareWorkflow", "raw", "Prepare",
             "{\"Gid\":\"dtm-wf9\",\"TransType\":\"workflow\"}", NULL);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_workflow_commits, itest_teardown),
        cmocka_unit_test_teardown(test_workflow_rolls_back, itest_teardown),
        cmocka_unit_test_teardown(test_workflow_resumed, itest_teardown),
        cmocka_unit_test_teardown(test_workflow_resumed_unrecorded,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_workflow_resumed_rolls_back,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_crash_workflow, itest_teardown),
        cmocka_unit_test_teardown(test_crash_during_callback, itest_teardown),
        cmocka_unit_test_teardown(test_bad_input, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
