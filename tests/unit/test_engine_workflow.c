/*
 * Unit tests of a workflow's life in the engine core (tm_engine_workflow.c
 * and the plan's workflow rules), on the hand-stepped fake env
 * (tests/common/fake_env.h): every answer waits for its write, a
 * re-run gets the durable progress back, a result is recorded once, the
 * timeout resumes the workflow through the service (with backoff, never
 * dropped), a refused resume stops it until RetryNow, and the phase-2
 * order of local steps and hooks after the decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_env.h"
#include "tm_engine.h"
#include "tm_validate.h"

#define RESUME "127.0.0.1:1/trellis.v1.Workflow/Resume"
#define ACTION "127.0.0.1:1/t.P/Action"
#define COMPENSATE "127.0.0.1:1/t.P/Compensate"
#define CONFIRM "127.0.0.1:1/t.P/Confirm"
#define CANCEL "127.0.0.1:1/t.P/Cancel"

enum {
    ST_OK = 0,
    ST_FAILED_PRECONDITION = 9,
    ST_ABORTED = 10,
    ST_UNAVAILABLE = 14
};

#define TIMEOUT_MS 500

/* ---- requests ---- */

static fenv_rpc_t *send_start(const char *gid, const char *input)
{
    Trellis__V1__StartWorkflowRequest r =
        TRELLIS__V1__START_WORKFLOW_REQUEST__INIT;
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.timeout_to_fail_ms = TIMEOUT_MS;
    r.gid = (char *)gid;
    r.name = "transfer";
    r.input.data = (uint8_t *)input;
    r.input.len = strlen(input);
    r.resume_target = RESUME;
    r.options = &o;
    return fenv_send(ENGINE_CALL_START_WORKFLOW, &r.base);
}

/* Register step id of mode with its rollback-side op (and confirm for
 * TCC). */
static fenv_rpc_t *send_step(const char *gid, const char *id,
                             Trellis__V1__BranchMode mode)
{
    Trellis__V1__RegisterBranchRequest r =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    Trellis__V1__BranchOp ops[2] = {TRELLIS__V1__BRANCH_OP__INIT,
                                    TRELLIS__V1__BRANCH_OP__INIT};
    Trellis__V1__BranchOp *op_ptrs[2] = {&ops[0], &ops[1]};
    r.gid = (char *)gid;
    r.branch_id = (char *)id;
    r.mode = mode;
    r.ops = op_ptrs;
    if (mode == TRELLIS__V1__BRANCH_MODE__MODE_TCC) {
        ops[0].op = TRELLIS__V1__OP_KIND__OP_CONFIRM;
        ops[0].target = CONFIRM;
        ops[1].op = TRELLIS__V1__OP_KIND__OP_CANCEL;
        ops[1].target = CANCEL;
        r.n_ops = 2;
    } else if (mode == TRELLIS__V1__BRANCH_MODE__MODE_HOOKS) {
        ops[0].op = TRELLIS__V1__OP_KIND__OP_COMMIT;
        ops[0].target = RESUME;
        ops[1].op = TRELLIS__V1__OP_KIND__OP_ROLLBACK;
        ops[1].target = RESUME;
        r.n_ops = 2;
    } else {
        ops[0].op = TRELLIS__V1__OP_KIND__OP_COMPENSATE;
        ops[0].target =
            mode == TRELLIS__V1__BRANCH_MODE__MODE_LOCAL ? RESUME : COMPENSATE;
        r.n_ops = 1;
    }
    return fenv_send(ENGINE_CALL_REGISTER, &r.base);
}

static fenv_rpc_t *send_record(const char *gid, const char *id, uint32_t code,
                               const char *result)
{
    Trellis__V1__RecordStepRequest r = TRELLIS__V1__RECORD_STEP_REQUEST__INIT;
    r.gid = (char *)gid;
    r.branch_id = (char *)id;
    r.code = code;
    r.result.data = (uint8_t *)result;
    r.result.len = strlen(result);
    r.message = code ? "no funds" : "";
    return fenv_send(ENGINE_CALL_RECORD_STEP, &r.base);
}

static fenv_rpc_t *send_decide(const char *gid, int commit)
{
    if (commit) {
        Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
        r.gid = (char *)gid;
        return fenv_send(ENGINE_CALL_SUBMIT, &r.base);
    }
    Trellis__V1__AbortRequest r = TRELLIS__V1__ABORT_REQUEST__INIT;
    r.gid = (char *)gid;
    r.reason = "business failure";
    return fenv_send(ENGINE_CALL_ABORT, &r.base);
}

static fenv_rpc_t *send_retry_now(const char *gid)
{
    Trellis__V1__RetryNowRequest r = TRELLIS__V1__RETRY_NOW_REQUEST__INIT;
    r.gid = (char *)gid;
    return fenv_send(ENGINE_CALL_RETRY_NOW, &r.base);
}

/* A request that writes: unanswered until its write commits, then
 * answered OK with status. */
static void durably_as(fenv_rpc_t *r, tm_tx_status_t status)
{
    fenv_assert_unanswered(r); /* write-ahead */
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(r, TM_CODE_OK, status);
}

static void durably(fenv_rpc_t *r)
{
    durably_as(r, TM_TX_PREPARED);
}

/* A started workflow with a saga step 01 and a TCC step 02, both
 * recorded OK. */
static void start_two_steps(const char *gid)
{
    fenv_rpc_t *s = send_start(gid, "from=a to=b amount=30");
    durably(s);
    assert_int_equal(s->created, 1);
    assert_int_equal(s->n_branches, 1); /* the head */
    durably(send_step(gid, "01", TRELLIS__V1__BRANCH_MODE__MODE_SAGA));
    durably(send_record(gid, "01", ST_OK, "booking=7"));
    durably(send_step(gid, "02", TRELLIS__V1__BRANCH_MODE__MODE_TCC));
    durably(send_record(gid, "02", ST_OK, ""));
}

/* ---- tests ---- */

/* A re-run is answered with the durable progress, results included; a
 * result is recorded once; a different one is refused, nothing stored. */
static void test_rerun_gets_progress_and_records_once(void **state)
{
    (void)state;
    start_two_steps("w1");
    fenv_rpc_t *again = send_start("w1", "from=a to=b amount=30");
    fenv_assert_answer(again, TM_CODE_OK, TM_TX_PREPARED); /* no write */
    assert_int_equal(again->created, 0);
    assert_int_equal(again->n_branches, 3);
    assert_int_equal(again->op_status[1][TM_SLOT_FORWARD], TM_OP_SUCCEEDED);

    fenv_assert_answer(send_record("w1", "01", ST_OK, "booking=7"), TM_CODE_OK,
                       TM_TX_PREPARED);
    assert_int_equal(fenv_queued(), 0);
    fenv_rpc_t *other = send_record("w1", "01", ST_ABORTED, "");
    fenv_assert_answer(other, TM_CODE_ALREADY_EXISTS, 0);
    assert_non_null(strstr(other->message, "already has a different"));
    fenv_assert_answer(send_start("w1", "other input"), TM_CODE_ALREADY_EXISTS,
                       0);
    fenv_assert_answer(send_record("w1", "09", ST_OK, ""), TM_CODE_NOT_FOUND,
                       0);
    fenv_assert_answer(send_record("w1", "00", ST_OK, ""),
                       TM_CODE_FAILED_PRECONDITION, 0);
    assert_int_equal(fenv_queued(), 0);

    durably_as(send_decide("w1", 1), TM_TX_SUBMITTED); /* confirm of 02 */
    assert_int_equal(fenv_calls_started(), 1);
    fenv_assert_call(0, "w1", "02", "confirm");
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query("w1");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
    fenv_assert_answer(send_record("w1", "02", ST_ABORTED, ""),
                       TM_CODE_FAILED_PRECONDITION, 0);
}

/* Submit waits for every registered step's result, and finishes in its
 * own write when nothing is left to call; a local step belongs to
 * workflows only. */
static void test_submit_needs_every_result(void **state)
{
    (void)state;
    durably(send_start("w2", "x"));
    durably(send_step("w2", "01", TRELLIS__V1__BRANCH_MODE__MODE_SAGA));
    fenv_rpc_t *sub = send_decide("w2", 1);
    fenv_assert_answer(sub, TM_CODE_FAILED_PRECONDITION, 0);
    assert_non_null(strstr(sub->message, "step 01 has no recorded result"));
    durably(send_record("w2", "01", ST_OK, ""));
    /* A saga step has nothing to confirm: decided and finished in one
     * write. */
    durably_as(send_decide("w2", 1), TM_TX_SUCCEEDED);
    assert_int_equal(fenv_queued(), 0);
    assert_int_equal(fenv_calls_started(), 0);
    fenv_assert_answer(fenv_send_query("w2"), TM_CODE_OK, TM_TX_SUCCEEDED);

    Trellis__V1__BeginRequest b = TRELLIS__V1__BEGIN_REQUEST__INIT;
    b.gid = "plain";
    durably(fenv_send(ENGINE_CALL_BEGIN, &b.base));
    fenv_rpc_t *local =
        send_step("plain", "01", TRELLIS__V1__BRANCH_MODE__MODE_LOCAL);
    fenv_assert_answer(local, TM_CODE_FAILED_PRECONDITION, 0);
    assert_non_null(strstr(local->message, "belongs to a workflow"));
    durably_as(send_decide("plain", 0), TM_TX_ABORTING);
    fenv_commit_all();
}

/* The timeout resumes, not rolls back: unknown answers back off and keep
 * trying; ABORTED stops it with the service's words; RetryNow resumes it
 * again, and the service's decision ends it. */
static void test_timeout_resumes_until_decided(void **state)
{
    (void)state;
    start_two_steps("w3");
    assert_int_equal(fenv_calls_started(), 0);
    fenv_fire_timer(fenv_timer_last());
    assert_int_equal(fenv_calls_started(), 1);
    fenv_assert_call(0, "w3", "00", "resume");
    fenv_assert_answer(fenv_send_query("w3"), TM_CODE_OK, TM_TX_PREPARED);

    fenv_answer_call(0, ST_UNAVAILABLE);      /* the service is down */
    fenv_commit_all();                        /* the attempt is stored */
    assert_int_equal(fenv_timers_armed(), 1); /* the retry, 100 ms */
    fenv_fire_timer(0);
    fenv_assert_call(1, "w3", "00", "resume");
    fenv_answer_call(1, ST_UNAVAILABLE);
    fenv_commit_all();
    int64_t before = fenv_now();
    fenv_fire_timer(0);
    assert_int_equal(fenv_now() - before, 200); /* backoff doubled */
    fenv_assert_call(2, "w3", "00", "resume");

    fenv_answer_call(2, ST_ABORTED); /* replay mismatch */
    fenv_commit_all();
    assert_int_equal(fenv_timers_armed(), 0); /* stopped: nothing more */
    fenv_rpc_t *q = fenv_send_query("w3");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_PREPARED);
    assert_non_null(strstr(q->reason, "workflow stopped: "));
    assert_int_equal(q->op_status[0][TM_SLOT_FORWARD], TM_OP_FAILED);

    fenv_rpc_t *rn = send_retry_now("w3");
    fenv_assert_unanswered(rn); /* the restart is written first */
    fenv_commit_all();
    fenv_assert_answer(rn, TM_CODE_OK, TM_TX_PREPARED);
    assert_int_equal(fenv_calls_started(), 4);
    fenv_assert_call(3, "w3", "00", "resume");
    /* the service re-runs the function and decides during the call */
    durably_as(send_decide("w3", 1), TM_TX_SUBMITTED);
    fenv_answer_call(3, ST_OK);
    fenv_assert_call(4, "w3", "02", "confirm");
    fenv_answer_call(4, ST_OK);
    fenv_commit_all();
    q = fenv_send_query("w3");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_string_equal(q->reason, "");
}

/* Abort: the local step is undone through the service, the TCC step
 * cancelled and the saga step compensated, in reverse order, and the
 * hooks' rollback goes last. */
static void test_abort_undoes_in_reverse_then_hooks(void **state)
{
    (void)state;
    start_two_steps("w4");
    durably(send_step("w4", "03", TRELLIS__V1__BRANCH_MODE__MODE_LOCAL));
    durably(send_record("w4", "03", ST_ABORTED, ""));
    durably(send_step("w4", "hooks", TRELLIS__V1__BRANCH_MODE__MODE_HOOKS));
    fenv_assert_answer(
        send_step("w4", "04", TRELLIS__V1__BRANCH_MODE__MODE_SAGA),
        TM_CODE_FAILED_PRECONDITION, 0); /* nothing after the hooks */
    durably_as(send_decide("w4", 0), TM_TX_ABORTING);
    const char *order[][2] = {{"03", "compensate"},
                              {"02", "cancel"},
                              {"01", "compensate"},
                              {"hooks", "rollback"}};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(fenv_calls_started(), i + 1);
        fenv_assert_call(i, "w4", order[i][0], order[i][1]);
        fenv_answer_call(i, ST_OK);
        fenv_commit_all();
    }
    fenv_assert_answer(fenv_send_query("w4"), TM_CODE_OK, TM_TX_FAILED);
}

/* A step recorded ABORTED that the function went on from: on commit it
 * is cancelled, never confirmed; the hooks commit last. */
static void test_commit_cancels_a_failed_step(void **state)
{
    (void)state;
    durably(send_start("w5", "x"));
    durably(send_step("w5", "01", TRELLIS__V1__BRANCH_MODE__MODE_TCC));
    durably(send_record("w5", "01", ST_ABORTED, ""));
    durably(send_step("w5", "02", TRELLIS__V1__BRANCH_MODE__MODE_TCC));
    durably(send_record("w5", "02", ST_OK, ""));
    durably(send_step("w5", "hooks", TRELLIS__V1__BRANCH_MODE__MODE_HOOKS));
    durably_as(send_decide("w5", 1), TM_TX_SUBMITTED);
    assert_int_equal(fenv_calls_started(), 2);
    fenv_assert_call(0, "w5", "01", "cancel");
    fenv_assert_call(1, "w5", "02", "confirm");
    fenv_answer_call(0, ST_OK);
    fenv_answer_call(1, ST_OK);
    fenv_commit_all();
    assert_int_equal(fenv_calls_started(), 3);
    fenv_assert_call(2, "w5", "hooks", "commit");
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query("w5");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_int_equal(q->op_status[1][TM_SLOT_COMMIT], TM_OP_SKIPPED);
}

/* --max-steps counts the head: with 3, a workflow takes two steps; the
 * third is refused with a message, nothing stored; a result over
 * --max-result is refused by the request's check. */
static void test_step_limit(void **state)
{
    (void)state;
    fenv_close();
    tm_engine_config_t cfg;
    tm_engine_config_default(&cfg);
    cfg.limits.max_branches = 3;
    cfg.limits.max_result = 4;
    assert_int_equal(tm_allow_parse(&cfg.limits.allow, "127.0.0.1:*", NULL, 0),
                     0);
    fenv_open(&cfg);
    durably(send_start("w6", "x"));
    durably(send_step("w6", "01", TRELLIS__V1__BRANCH_MODE__MODE_SAGA));
    durably(send_step("w6", "02", TRELLIS__V1__BRANCH_MODE__MODE_SAGA));
    fenv_rpc_t *third =
        send_step("w6", "03", TRELLIS__V1__BRANCH_MODE__MODE_SAGA);
    fenv_assert_answer(third, TM_CODE_INVALID_ARGUMENT, 0);
    assert_non_null(strstr(third->message, "the limit"));
    assert_int_equal(fenv_queued(), 0);
    /* tm_api refuses an oversize result before the engine sees it */
    Trellis__V1__RecordStepRequest big = TRELLIS__V1__RECORD_STEP_REQUEST__INIT;
    big.gid = "w6";
    big.branch_id = "01";
    big.result.data = (uint8_t *)"12345";
    big.result.len = 5;
    char err[256];
    assert_int_equal(
        tm_validate_record_step(&big, &cfg.limits, err, sizeof err),
        TM_INVALID);
    assert_non_null(strstr(err, "max-result"));
    durably_as(send_decide("w6", 0), TM_TX_ABORTING);
    for (size_t i = 0; i < 2; i++) {
        fenv_answer_call(i, ST_OK);
        fenv_commit_all();
    }
}

/* The function goes on registering steps while trellisd waits to call
 * Resume again (the service answered UNAVAILABLE, or the call timed out,
 * with the function still running there): the branches outgrow their
 * room, and the armed retry timer must stay where the timer list has it.
 * It fires, and resumes (trellis-sim found it: seeds 16, 36, 64, ...). */
static void test_register_while_resume_waits(void **state)
{
    (void)state;
    start_two_steps("w6");
    fenv_fire_timer(fenv_timer_last());
    fenv_assert_call(0, "w6", "00", "resume");
    fenv_answer_call(0, ST_UNAVAILABLE);
    fenv_commit_all();
    assert_int_equal(fenv_timers_armed(), 1); /* the resume's retry */
    int64_t due = fenv_timer_due(0);
    durably(send_step("w6", "03", TRELLIS__V1__BRANCH_MODE__MODE_SAGA));
    durably(send_record("w6", "03", ST_OK, ""));
    durably(send_step("w6", "04", TRELLIS__V1__BRANCH_MODE__MODE_SAGA));
    assert_int_equal(fenv_timers_armed(), 1);
    assert_int_equal(fenv_timer_due(0), due);
    fenv_fire_timer(0);
    assert_int_equal(fenv_calls_started(), 2);
    fenv_assert_call(1, "w6", "00", "resume");
    durably(send_record("w6", "04", ST_OK, ""));
    durably_as(send_decide("w6", 1), TM_TX_SUBMITTED);
    fenv_answer_call(1, ST_OK);
    fenv_assert_call(2, "w6", "02", "confirm");
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(fenv_send_query("w6"), TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* A node whose lease ran out (paused past it: another node may have
 * claimed the workflow and stored more) answers nothing from its copy in
 * memory — neither a re-run's progress nor a refusal of a step it does
 * not know — but UNAVAILABLE, as for a workflow another node drives,
 * until the lease is confirmed again (trellis-sim found both: seed 20728,
 * a stale NOT_FOUND; a stale progress in an earlier version of it). */
static void test_copy_not_answered_without_the_lease(void **state)
{
    (void)state;
    start_two_steps("w7");
    fenv_set_lease_ok(0);
    fenv_rpc_t *stale = send_start("w7", "from=a to=b amount=30");
    fenv_assert_answer(stale, TM_CODE_UNAVAILABLE, 0);
    assert_non_null(strstr(stale->message, "another trellisd node"));
    fenv_assert_answer(send_record("w7", "03", ST_OK, ""), TM_CODE_UNAVAILABLE,
                       0);
    /* Another node claimed it and moved on: Query reads the store, not
     * the copy in memory. */
    tm_trans_t *moved = tm_trans_new("w7", TM_TX_ABORTING, fenv_now());
    assert_non_null(moved);
    tm_write_t *w = tm_write_capture_all(moved, 0);
    assert_non_null(w);
    fenv_store_write(w);
    tm_trans_free(moved);
    fenv_assert_answer(fenv_send_query("w7"), TM_CODE_OK, TM_TX_ABORTING);
    fenv_set_lease_ok(1);
    fenv_rpc_t *again = send_start("w7", "from=a to=b amount=30");
    fenv_assert_answer(again, TM_CODE_OK, TM_TX_PREPARED);
    assert_int_equal(again->n_branches, 3);
    durably_as(send_decide("w7", 1), TM_TX_SUBMITTED);
    fenv_assert_call(0, "w7", "02", "confirm");
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(fenv_send_query("w7"), TM_CODE_OK, TM_TX_SUCCEEDED);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fenv_setup_local, fenv_teardown)
    const struct CMUnitTest tests[] = {
        T(test_rerun_gets_progress_and_records_once),
        T(test_submit_needs_every_result),
        T(test_timeout_resumes_until_decided),
        T(test_abort_undoes_in_reverse_then_hooks),
        T(test_commit_cancels_a_failed_step),
        T(test_step_limit),
        T(test_register_while_resume_waits),
        T(test_copy_not_answered_without_the_lease),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
