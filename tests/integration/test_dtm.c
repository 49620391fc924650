/*
 * test_dtm.c: trellisd's DTM service (dtmgimp.Dtm) driven by an
 * independent client, exactly as DTM's SDKs send their requests.
 *
 * The client is tests/dtm/dtm_client.py: Python's grpcio with stubs that
 * grpc_tools.protoc generates from proto/dtm/dtmgimp.proto at build time —
 * nothing of Trellis's own C code. This driver starts trellisd and
 * trellis-testpart with the harness, runs the client once per
 * application step (harness_run; its output goes to the scratch
 * directory's dtm-client.log), and checks the outcome with what a user
 * relies on: the transaction's final state (through trellis.v1's Query),
 * and at the participant what each op did (trellis-testpart's journal and
 * barrier: applied, undone, confirmed, dup) and which gid, trans type,
 * branch id and op it was called with.
 *
 * Themes: a saga, a failing saga (compensated), a concurrent saga with
 * its order map, a message with a back-check (committed, not committed,
 * submitted), topics, TCC (confirmed, cancelled), bad input (refused,
 * nothing stored); and kill -9 of trellisd in the middle of each kind, made
 * exact by holding a call at the participant (itest_crash_while_held),
 * with every effect checked to have happened exactly once.
 *
 * Timing: messages are back-checked after TimeoutToFail, whose unit in
 * DTM's API is the second: those tests take a second or two each.
 */
#include <stdio.h>
#include <string.h>

#include "itest_dtm.h"

static char query_target[128]; /* testpart's QueryPrepared */

static itest_t *start(void **state, const char *name)
{
    itest_t *t = itest_start(state, name, NULL);
    snprintf(query_target, sizeof query_target,
             "%s/trellis.test.Part/QueryPrepared",
             harness_server_addr(t->part));
    return t;
}

/* A saga step for the client: ACTION|COMPENSATE|PAYLOAD at testpart. */
static const char *step(itest_t *t, char *buf, size_t len, const char *payload)
{
    snprintf(buf, len, "%s|%s|%s", t->action, t->compensate, payload);
    return buf;
}

static void part_state(itest_t *t, const char *gid, harness_part_state_t *ps)
{
    assert_int_equal(harness_part_state(harness_server_addr(t->part), gid, ps),
                     0);
}

/* Branches 01..n of gid: the action took effect exactly once (a resend
 * after a crash answered as a duplicate) and was never undone. */
static void assert_actions_once(itest_t *t, const char *gid, int n)
{
    for (int i = 1; i <= n; i++) {
        char b[16];
        snprintf(b, sizeof b, "%02d", i);
        assert_int_equal(idtm_count(t, gid, b, "action", "applied"), 1);
        assert_int_equal(idtm_count(t, gid, b, "compensate", NULL), 0);
    }
}

/* ---- sagas --------------------------------------------------------------- */

static void test_saga(void **state)
{
    itest_t *t = start(state, "dtm_saga");
    char s1[256], s2[256], s3[256];
    idtm_run(t, "OK", "--wait", "--header", "x-tenant=blue", "saga", "dtm-saga",
             step(t, s1, sizeof s1, "ok"), step(t, s2, sizeof s2, "ok"),
             step(t, s3, sizeof s3, "ok"), NULL);
    idtm_assert_final(t, "dtm-saga", TRELLIS_TRANS_SUCCEEDED);
    assert_actions_once(t, "dtm-saga", 3);
    /* What a DTM participant reads: DTM's trans type, branch ids and op. */
    harness_part_state_t ps;
    part_state(t, "dtm-saga", &ps);
    const harness_part_call_t *c = harness_part_find(&ps, "02", "action", 0);
    assert_non_null(c);
    assert_string_equal(c->trans_type, "saga");
    assert_string_equal(c->dtm_op, "action");
    assert_string_equal(c->gid, "dtm-saga");
    harness_part_state_free(&ps);
    /* The SDK retrying its Submit (WaitResult aside, the same request):
     * the same saga, nothing runs twice. */
    idtm_run(t, "OK", "--header", "x-tenant=blue", "saga", "dtm-saga", s1, s2,
             s3, NULL);
    assert_actions_once(t, "dtm-saga", 3);
    /* Other content under the same gid is refused. */
    idtm_run(t, "ALREADY_EXISTS", "saga", "dtm-saga", s1, NULL);
    /* A saga that succeeded cannot be aborted: DTM's ErrFailure. */
    idtm_run(t, "ABORTED", "--words=cannot be aborted", "abort", "dtm-saga",
             "saga", NULL);
    itest_pass(state);
}

static void test_failing_saga(void **state)
{
    itest_t *t = start(state, "dtm_saga_fail");
    char s1[256], s2[256], s3[256];
    /* WaitResult: DTM answers a failed saga with ABORTED (ErrFailure). */
    idtm_run(t, "ABORTED", "--words=failed", "--wait", "saga", "dtm-fail",
             step(t, s1, sizeof s1, "ok"), step(t, s2, sizeof s2, "ok"),
             step(t, s3, sizeof s3, "fail"), NULL);
    idtm_assert_final(t, "dtm-fail", TRELLIS_TRANS_FAILED);
    assert_int_equal(idtm_count(t, "dtm-fail", "01", "compensate", "undone"),
                     1);
    assert_int_equal(idtm_count(t, "dtm-fail", "02", "compensate", "undone"),
                     1);
    /* As DTM: the failed step is compensated too (its action may have left
     * effects); behind the barrier that changes nothing. */
    assert_int_equal(idtm_count(t, "dtm-fail", "03", "compensate", "empty"), 1);
    harness_part_state_t ps;
    part_state(t, "dtm-fail", &ps);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    /* Aborting what failed already changes nothing and is OK (DTM refuses
     * any Abort of a saga: docs/dtm-compat.md). */
    idtm_run(t, "OK", "abort", "dtm-fail", "saga", NULL);
    itest_pass(state);
}

/* Step 2 waits for steps 0 and 1, which run at once: both are held at the
 * participant together before step 2 is called. */
static void test_concurrent_saga(void **state)
{
    itest_t *t = start(state, "dtm_saga_concurrent");
    char s1[256], s2[256], s3[256];
    idtm_run(t, "OK", "--custom={\"concurrent\":true,\"orders\":{\"2\":[0,1]}}",
             "saga", "dtm-conc", step(t, s1, sizeof s1, "hold"),
             step(t, s2, sizeof s2, "hold"), step(t, s3, sizeof s3, "ok"),
             NULL);
    itest_control(harness_server_addr(t->part), NULL, 0, "wait-held %s 2 %d",
                  "dtm-conc", ITEST_FINAL_TIMEOUT_MS);
    assert_int_equal(idtm_count(t, "dtm-conc", "03", "action", NULL), 0);
    itest_control(harness_server_addr(t->part), NULL, 0, "release dtm-conc");
    idtm_assert_final(t, "dtm-conc", TRELLIS_TRANS_SUCCEEDED);
    assert_actions_once(t, "dtm-conc", 3);
    harness_part_state_t ps;
    part_state(t, "dtm-conc", &ps);
    const harness_part_call_t *last = harness_part_find(&ps, "03", "action", 0);
    for (int i = 0; i < 2; i++) {
        const harness_part_call_t *pre =
            harness_part_find(&ps, i ? "02" : "01", "action", 0);
        assert_true(last->seq > pre->seq && last->start_ms >= pre->end_ms);
    }
    harness_part_state_free(&ps);
    itest_pass(state);
}

/* ---- messages ------------------------------------------------------------ */

static const char *msg_step(itest_t *t, char *buf, size_t len,
                            const char *payload)
{
    snprintf(buf, len, "%s|%s", t->action, payload);
    return buf;
}

static int commit_local(itest_t *t, const char *gid)
{
    char cmd[96], reply[128];
    snprintf(cmd, sizeof cmd, "commit %s", gid);
    return harness_part_cmd(harness_server_addr(t->part), cmd, reply,
                            sizeof reply);
}

static void test_msg_back_check(void **state)
{
    itest_t *t = start(state, "dtm_msg");
    char s1[256], s2[256];
    /* Committed, and the initiator never submits: the back-check (after
     * TimeoutToFail, 1 s) finds the commit and the message goes out. */
    idtm_run(t, "OK", "--timeout-to-fail", "1", "msg-prepare", "dtm-m1",
             query_target, msg_step(t, s1, sizeof s1, "ok"),
             msg_step(t, s2, sizeof s2, "ok"), NULL);
    assert_int_equal(commit_local(t, "dtm-m1"), 0);
    idtm_assert_final(t, "dtm-m1", TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(
        idtm_count(t, "dtm-m1", "00", "query_prepared", "committed"), 1);
    assert_actions_once(t, "dtm-m1", 2);
    harness_part_state_t ps;
    part_state(t, "dtm-m1", &ps);
    const harness_part_call_t *c = harness_part_find(&ps, "01", "action", 0);
    assert_string_equal(c->trans_type, "msg");
    assert_string_equal(c->dtm_op, "action");
    harness_part_state_free(&ps);

    /* Never committed: the back-check drops it, and its answer makes a
     * late commit impossible. */
    idtm_run(t, "OK", "--timeout-to-fail", "1", "msg-prepare", "dtm-m2",
             query_target, msg_step(t, s1, sizeof s1, "ok"), NULL);
    idtm_assert_final(t, "dtm-m2", TRELLIS_TRANS_FAILED);
    assert_int_equal(
        idtm_count(t, "dtm-m2", "00", "query_prepared", "rolledback"), 1);
    assert_int_equal(idtm_count(t, "dtm-m2", "01", "action", NULL), 0);
    assert_int_not_equal(commit_local(t, "dtm-m2"), 0);

    /* Committed and submitted, as DoAndSubmit does: delivered, never
     * back-checked; the submit repeated is the same message. */
    idtm_run(t, "OK", "--timeout-to-fail", "60", "msg-prepare", "dtm-m3",
             query_target, msg_step(t, s1, sizeof s1, "ok"), NULL);
    assert_int_equal(commit_local(t, "dtm-m3"), 0);
    idtm_run(t, "OK", "--timeout-to-fail", "60", "--wait", "msg-submit",
             "dtm-m3", query_target, s1, NULL);
    idtm_run(t, "OK", "--timeout-to-fail", "60", "msg-submit", "dtm-m3",
             query_target, s1, NULL);
    idtm_assert_final(t, "dtm-m3", TRELLIS_TRANS_SUCCEEDED);
    assert_actions_once(t, "dtm-m3", 1);
    assert_int_equal(idtm_count(t, "dtm-m3", "00", "query_prepared", NULL), 0);
    /* Abort after the message was decided: DTM's ErrFailure. */
    idtm_run(t, "ABORTED", "abort", "dtm-m3", "msg", NULL);
    itest_pass(state);
}

/* ---- TCC ----------------------------------------------------------------- */

static void test_tcc(void **state)
{
    itest_t *t = start(state, "dtm_tcc");
    const char *part = harness_server_addr(t->part);
    idtm_run(t, "OK", "tcc", "dtm-t1", part, "ok", "ok", NULL);
    idtm_assert_final(t, "dtm-t1", TRELLIS_TRANS_SUCCEEDED);
    for (int i = 0; i < 2; i++) {
        const char *b = i ? "02" : "01";
        assert_int_equal(idtm_count(t, "dtm-t1", b, "try", "applied"), 1);
        assert_int_equal(idtm_count(t, "dtm-t1", b, "confirm", "confirmed"), 1);
        assert_int_equal(idtm_count(t, "dtm-t1", b, "cancel", NULL), 0);
    }
    harness_part_state_t ps;
    part_state(t, "dtm-t1", &ps);
    const harness_part_call_t *c = harness_part_find(&ps, "02", "confirm", 0);
    assert_string_equal(c->trans_type, "tcc");
    assert_string_equal(c->dtm_op, "confirm");
    harness_part_state_free(&ps);

    /* Prepare again once it was decided: DTM's "cannot prepare". */
    idtm_run(t, "ABORTED", "raw", "Prepare",
             "{\"Gid\":\"dtm-t1\",\"TransType\":\"tcc\"}", NULL);

    /* The second try fails: the SDK aborts; both branches are cancelled
     * (the second's cancel finds no try to undo). */
    idtm_run(t, "ABORTED", "tcc", "dtm-t2", part, "ok", "fail", NULL);
    idtm_assert_final(t, "dtm-t2", TRELLIS_TRANS_FAILED);
    assert_int_equal(idtm_count(t, "dtm-t2", "01", "cancel", "undone"), 1);
    assert_int_equal(idtm_count(t, "dtm-t2", "02", "cancel", "empty"), 1);
    assert_int_equal(idtm_count(t, "dtm-t2", "01", "confirm", NULL), 0);
    itest_pass(state);
}

/* ---- bad input ----------------------------------------------------------- */

/* Nothing was stored for gid. */
static void assert_unknown(itest_t *t, const char *gid)
{
    char err[256];
    trellis_trans_info_t *info = NULL;
    trellis_rc_t rc = trellis_query(t->client, gid, &info, err, sizeof err);
    if (rc != TRELLIS_NOT_FOUND)
        fail_msg("%s: a refused request stored something (rc %d)", gid, rc);
}

static void test_bad_input(void **state)
{
    itest_t *t = start(state, "dtm_badinput");
    char ok_steps[256], json[1024];
    snprintf(ok_steps, sizeof ok_steps,
             "[{\\\"action\\\":\\\"%s\\\",\\\"compensate\\\":\\\"\\\"}]",
             t->action);
    const struct {
        const char *method, *code, *words, *fields;
    } bad[] = {
        {"Submit", "INVALID_ARGUMENT", "Steps is not JSON",
         "\"TransType\":\"saga\",\"Steps\":\"[{\\\"action\\\":\","
         "\"BinPayloads\":[\"\"]"},
        {"Submit", "INVALID_ARGUMENT", "BinPayloads has 2 entries and Steps 1",
         "\"TransType\":\"saga\",\"Steps\":\"%s\",\"BinPayloads\":[\"\",\"\"]"},
        {"Submit", "UNIMPLEMENTED", "scheme http://",
         "\"TransType\":\"saga\",\"Steps\":\"[{\\\"action\\\":"
         "\\\"http://shop/buy\\\"}]\",\"BinPayloads\":[\"\"]"},
        {"Submit", "INVALID_ARGUMENT", "TransType \"sagax\"",
         "\"TransType\":\"sagax\",\"Steps\":\"%s\",\"BinPayloads\":[\"\"]"},
        {"Submit", "PERMISSION_DENIED", "not allowed",
         "\"TransType\":\"saga\",\"Steps\":\"[{\\\"action\\\":"
         "\\\"10.9.9.9:80/a.B/C\\\"}]\",\"BinPayloads\":[\"\"]"},
        {"Submit", "INVALID_ARGUMENT", "NUL",
         "\"TransType\":\"saga\",\"Steps\":\"[{\\\"action\\\":"
         "\\\"a\\\\u0000b\\\"}]\",\"BinPayloads\":[\"\"]"},
        {"Submit", "INVALID_ARGUMENT", "TimeoutToFail is -5",
         "\"TransType\":\"saga\",\"Steps\":\"%s\",\"BinPayloads\":[\"\"],"
         "\"TransOptions\":{\"TimeoutToFail\":-5}"},
        {"Prepare", "INVALID_ARGUMENT", "QueryPrepared is empty",
         "\"TransType\":\"msg\",\"Steps\":\"[{\\\"action\\\":"
         "\\\"127.0.0.1:1/a.B/C\\\"}]\",\"BinPayloads\":[\"\"]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char gid[32], fields[700], words[96];
        snprintf(gid, sizeof gid, "dtm-bad-%zu", i);
        snprintf(fields, sizeof fields, bad[i].fields, ok_steps);
        snprintf(json, sizeof json, "{\"Gid\":\"%s\",%s}", gid, fields);
        snprintf(words, sizeof words, "--words=%s", bad[i].words);
        idtm_run(t, bad[i].code, words, "raw", bad[i].method, json, NULL);
        assert_unknown(t, gid);
    }
    /* A NUL inside the gid itself, refused before any mapping. */
    idtm_run(t, "INVALID_ARGUMENT", "--words=contains a NUL", "raw", "Submit",
             "{\"Gid\":\"dtm-nul\\u0000x\",\"TransType\":\"saga\"}", NULL);
    assert_unknown(t, "dtm-nul");
    /* A workflow without its callback (test_dtm_workflow.c has the
     * rest). */
    idtm_run(t, "INVALID_ARGUMENT", "--words=QueryPrepared", "raw",
             "PrepareWorkflow",
             "{\"Gid\":\"dtm-wf\",\"TransType\":\"workflow\"}", NULL);
    assert_unknown(t, "dtm-wf");
    /* RegisterBranch of a transaction nobody prepared. */
    idtm_run(t, "NOT_FOUND", "raw", "RegisterBranch",
             "{\"Gid\":\"dtm-none\",\"TransType\":\"tcc\",\"BranchID\":\"01\"}",
             NULL);
    itest_pass(state);
}

/* Topics: a message step to topic://NAME goes to every subscriber; the
 * topic methods keep the subscriptions. */
static void test_topics(void **state)
{
    itest_t *t = start(state, "dtm_topics");
    char s1[256];
    snprintf(s1, sizeof s1, "topic://orders|ok");
    idtm_run(t, "OK", "subscribe", "orders", t->action, "stock", NULL);
    idtm_run(t, "OK", "subscribe", "orders", t->action, "stock", NULL);
    idtm_run(t, "OK", "--wait", "msg-submit", "dtm-topic", "", s1, NULL);
    idtm_assert_final(t, "dtm-topic", TRELLIS_TRANS_SUCCEEDED);
    assert_actions_once(t, "dtm-topic", 1);
    idtm_run(t, "OK", "unsubscribe", "orders", t->action, NULL);
    idtm_run(t, "NOT_FOUND", "unsubscribe", "orders", t->action, NULL);
    /* Nobody subscribes: the message is refused, nothing stored. */
    idtm_run(t, "NOT_FOUND", "msg-submit", "dtm-topic-none", "", s1, NULL);
    assert_unknown(t, "dtm-topic-none");
    idtm_run(t, "OK", "subscribe", "orders", t->action, NULL);
    idtm_run(t, "OK", "delete-topic", "orders", NULL);
    idtm_run(t, "NOT_FOUND", "delete-topic", "orders", NULL);
    idtm_run(t, "UNIMPLEMENTED", "--words=scheme http://", "subscribe",
             "orders", "http://stock/notify", NULL);
    itest_pass(state);
}

/* ---- kill -9 in the middle of each kind ---------------------------------- */

static void test_crash_saga(void **state)
{
    itest_t *t = start(state, "dtm_crash_saga");
    char s1[256], s2[256], s3[256];
    idtm_run(t, "OK", "saga", "dtm-cs", step(t, s1, sizeof s1, "ok"),
             step(t, s2, sizeof s2, "hold"), step(t, s3, sizeof s3, "ok"),
             NULL);
    itest_crash_while_held(t, "dtm-cs", 1);
    idtm_assert_final(t, "dtm-cs", TRELLIS_TRANS_SUCCEEDED);
    assert_actions_once(t, "dtm-cs", 3);
    assert_true(idtm_count(t, "dtm-cs", "02", "action", "dup") >= 1);
    itest_pass(state);
}

static void test_crash_failing_saga(void **state)
{
    itest_t *t = start(state, "dtm_crash_saga_fail");
    char s1[256], s2[256], s3[256];
    idtm_run(t, "OK", "saga", "dtm-cf", step(t, s1, sizeof s1, "ok"),
             step(t, s2, sizeof s2, "compensate=hold"),
             step(t, s3, sizeof s3, "fail"), NULL);
    itest_crash_while_held(t, "dtm-cf", 1);
    idtm_assert_final(t, "dtm-cf", TRELLIS_TRANS_FAILED);
    assert_int_equal(idtm_count(t, "dtm-cf", "02", "compensate", "undone"), 1);
    assert_true(idtm_count(t, "dtm-cf", "02", "compensate", "dup") >= 1);
    assert_int_equal(idtm_count(t, "dtm-cf", "01", "compensate", "undone"), 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            idtm_count(t, "dtm-cf", i ? "02" : "01", "action", "applied"), 1);
    itest_pass(state);
}

static void test_crash_concurrent_saga(void **state)
{
    itest_t *t = start(state, "dtm_crash_concurrent");
    char s1[256], s2[256], s3[256];
    idtm_run(t, "OK", "--custom={\"concurrent\":true,\"orders\":{\"2\":[0,1]}}",
             "saga", "dtm-cc", step(t, s1, sizeof s1, "hold"),
             step(t, s2, sizeof s2, "hold"), step(t, s3, sizeof s3, "ok"),
             NULL);
    itest_crash_while_held(t, "dtm-cc", 2);
    idtm_assert_final(t, "dtm-cc", TRELLIS_TRANS_SUCCEEDED);
    assert_actions_once(t, "dtm-cc", 3);
    itest_pass(state);
}

static void test_crash_msg(void **state)
{
    itest_t *t = start(state, "dtm_crash_msg");
    char s1[256];
    /* trellisd dies while the delivery that the back-check started is in
     * flight. */
    idtm_run(t, "OK", "--timeout-to-fail", "1", "msg-prepare", "dtm-cm",
             query_target, msg_step(t, s1, sizeof s1, "hold"), NULL);
    assert_int_equal(commit_local(t, "dtm-cm"), 0);
    itest_crash_while_held(t, "dtm-cm", 1);
    idtm_assert_final(t, "dtm-cm", TRELLIS_TRANS_SUCCEEDED);
    assert_actions_once(t, "dtm-cm", 1);
    itest_pass(state);
}

static void test_crash_tcc(void **state)
{
    itest_t *t = start(state, "dtm_crash_tcc");
    /* trellisd dies while branch 01's confirm is in flight. */
    idtm_run(t, "OK", "tcc", "dtm-ct", harness_server_addr(t->part),
             "confirm=hold", "ok", NULL);
    itest_crash_while_held(t, "dtm-ct", 1);
    idtm_assert_final(t, "dtm-ct", TRELLIS_TRANS_SUCCEEDED);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            idtm_count(t, "dtm-ct", i ? "02" : "01", "confirm", "confirmed"),
            1);
    assert_true(idtm_count(t, "dtm-ct", "01", "confirm", "dup") >= 1);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_saga, itest_teardown),
        cmocka_unit_test_teardown(test_failing_saga, itest_teardown),
        cmocka_unit_test_teardown(test_concurrent_saga, itest_teardown),
        cmocka_unit_test_teardown(test_msg_back_check, itest_teardown),
        cmocka_unit_test_teardown(test_topics, itest_teardown),
        cmocka_unit_test_teardown(test_tcc, itest_teardown),
        cmocka_unit_test_teardown(test_bad_input, itest_teardown),
        cmocka_unit_test_teardown(test_crash_saga, itest_teardown),
        cmocka_unit_test_teardown(test_crash_failing_saga, itest_teardown),
        cmocka_unit_test_teardown(test_crash_concurrent_saga, itest_teardown),
        cmocka_unit_test_teardown(test_crash_msg, itest_teardown),
        cmocka_unit_test_teardown(test_crash_tcc, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
