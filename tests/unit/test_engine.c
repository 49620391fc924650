/*
 * Unit tests of the engine core (tm_engine.h, library trellis_tm_core)
 * against a fake environment stepped by hand, one event at a time: the
 * orderings of issue 13 — EXISTS and LOST refusals, late results, timeouts
 * racing submits — plus retries and duplicates while a write is pending.
 *
 * The fake environment (a store that commits when told, calls answered
 * when told, timers fired when told, a clock that is a variable, a front
 * that records answers) is tests/common/fake_env.h; this file holds the
 * requests the tests send and the tests themselves. Each test opens a
 * fresh world and ends with nothing in flight (fenv_close checks it).
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
#include "tm_log.h"
#include "tm_request.h"
#include "tm_store_impl.h"
#include "tm_validate.h"
#include "topics_check.h"

#define ACTION "127.0.0.1:1/t.P/Action"
#define COMPENSATE "127.0.0.1:1/t.P/Compensate"
#define CONFIRM "127.0.0.1:1/t.P/Confirm"
#define CANCEL "127.0.0.1:1/t.P/Cancel"

/* gRPC status codes the fake participants answer with. */
enum { ST_OK = 0, ST_ABORTED = 10, ST_UNAVAILABLE = 14 };

/* ---- requests the tests send --------------------------------------------- */

/* A saga Submit's content; what a test varies. */
typedef struct {
    int n_steps; /* 0: submit a begun transaction */
    int concurrent;
    int wait;
    int no_compensate;
    uint32_t timeout_ms;
    uint32_t retry_interval_ms;
    uint32_t retry_limit;
    const char *payload; /* NULL: "p" */
} saga_t;

/* Fill r (and the arrays it points to) from s. */
static void build_submit(Trellis__V1__SubmitRequest *r,
                         Trellis__V1__TransOptions *o,
                         Trellis__V1__SagaStep *st, Trellis__V1__SagaStep **sp,
                         const char *gid, const saga_t *s)
{
    const char *payload = s->payload ? s->payload : "p";
    trellis__v1__submit_request__init(r);
    trellis__v1__trans_options__init(o);
    for (int i = 0; i < s->n_steps; i++) {
        trellis__v1__saga_step__init(&st[i]);
        st[i].action = ACTION;
        st[i].compensate = s->no_compensate ? "" : COMPENSATE;
        st[i].payload.data = (uint8_t *)payload;
        st[i].payload.len = strlen(payload);
        sp[i] = &st[i];
    }
    o->wait_result = s->wait;
    o->timeout_to_fail_ms = s->timeout_ms;
    o->retry_interval_ms = s->retry_interval_ms;
    o->retry_limit = s->retry_limit;
    r->gid = (char *)gid;
    r->n_steps = (size_t)s->n_steps;
    r->steps = sp;
    r->concurrent = s->concurrent;
    r->options = o;
}

static fenv_rpc_t *send_submit(const char *gid, const saga_t *s)
{
    Trellis__V1__SubmitRequest r;
    Trellis__V1__TransOptions o;
    Trellis__V1__SagaStep st[FENV_MAX_BR], *sp[FENV_MAX_BR];
    assert_true(s->n_steps <= FENV_MAX_BR);
    build_submit(&r, &o, st, sp, gid, s);
    return fenv_send(ENGINE_CALL_SUBMIT, &r.base);
}

static fenv_rpc_t *send_begin(const char *gid, uint32_t timeout_ms)
{
    Trellis__V1__BeginRequest r = TRELLIS__V1__BEGIN_REQUEST__INIT;
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.timeout_to_fail_ms = timeout_ms;
    r.gid = (char *)gid;
    r.options = &o;
    return fenv_send(ENGINE_CALL_BEGIN, &r.base);
}

/* A TCC branch the initiator tries itself; the TM confirms or cancels. */
static fenv_rpc_t *send_register_tcc(const char *gid, const char *branch)
{
    Trellis__V1__RegisterBranchRequest r =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    Trellis__V1__BranchOp ops[2] = {TRELLIS__V1__BRANCH_OP__INIT,
                                    TRELLIS__V1__BRANCH_OP__INIT};
    Trellis__V1__BranchOp *op_ptrs[2] = {&ops[0], &ops[1]};
    ops[0].op = TRELLIS__V1__OP_KIND__OP_CONFIRM;
    ops[0].target = CONFIRM;
    ops[1].op = TRELLIS__V1__OP_KIND__OP_CANCEL;
    ops[1].target = CANCEL;
    r.gid = (char *)gid;
    r.branch_id = (char *)branch;
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    r.n_ops = 2;
    r.ops = op_ptrs;
    return fenv_send(ENGINE_CALL_REGISTER, &r.base);
}

static fenv_rpc_t *send_force_stop(const char *gid, const char *reason)
{
    Trellis__V1__ForceStopRequest r = TRELLIS__V1__FORCE_STOP_REQUEST__INIT;
    r.gid = (char *)gid;
    r.reason = (char *)reason;
    return fenv_send(ENGINE_CALL_FORCE_STOP, &r.base);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    (void)state;
    tm_engine_config_t cfg;
    tm_engine_config_default(&cfg);
    cfg.retry_interval_ms = 100;
    cfg.max_backoff_ms = 1000;
    fenv_open(&cfg);
    return 0;
}

/* Every test ends with nothing in flight (see fenv_close). */
static int teardown(void **state)
{
    (void)state;
    fenv_close();
    return 0;
}

/* ---- 1. a new saga: answered once its insert commits -------------------- */

static void test_submit_answers_after_insert(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    fenv_rpc_t *sub = send_submit("g1", &s);
    /* Write-ahead: queued, not committed, so neither answered nor called. */
    fenv_assert_unanswered(sub);
    assert_int_equal(fenv_queued(), 1);
    assert_true(fenv_next_write()->insert);
    assert_int_equal(fenv_next_write()->status, TM_TX_SUBMITTED);
    assert_int_equal(fenv_calls_started(), 0);

    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(fenv_calls_started(), 1);
    fenv_assert_call(0, "g1", "01", "action");

    fenv_answer_call(0, ST_OK);
    assert_int_equal(fenv_next_write()->status, TM_TX_SUCCEEDED);
    fenv_commit_all();
    assert_int_equal(tm_engine_live_count(fenv_engine()), 0);
    fenv_rpc_t *q = fenv_send_query("g1");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* ---- 2. EXISTS: the gid was stored before -------------------------------- */

/* Run gid's one-step saga s to SUCCEEDED, so its row is stored and final. */
static void run_to_success(const char *gid, const saga_t *s)
{
    size_t c = fenv_calls_started();
    fenv_rpc_t *sub = send_submit(gid, s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    fenv_answer_call(c, ST_OK);
    fenv_commit_all();
    assert_int_equal(tm_engine_live_count(fenv_engine()), 0);
}

/* A finished row: the same content again is answered with its stored
 * status; different content is ALREADY_EXISTS. Neither calls anything. */
static void test_exists_final_row(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    run_to_success("g2", &s);
    size_t called = fenv_calls_started();

    fenv_rpc_t *same = send_submit("g2", &s);
    fenv_assert_unanswered(same); /* a new insert, not yet refused */
    assert_true(fenv_next_write()->insert);
    fenv_commit_next(TM_WRITE_EXISTS);
    fenv_assert_answer(same, TM_CODE_OK, TM_TX_SUCCEEDED);

    saga_t other = {.n_steps = 1, .payload = "other"};
    fenv_rpc_t *diff = send_submit("g2", &other);
    fenv_assert_unanswered(diff);
    fenv_commit_next(TM_WRITE_EXISTS);
    fenv_assert_answer(diff, TM_CODE_ALREADY_EXISTS, 0);
    assert_non_null(strstr(diff->message, "different content"));

    assert_int_equal(fenv_calls_started(), called);
    assert_int_equal(fenv_queued(), 0);
    assert_int_equal(tm_engine_live_count(fenv_engine()), 0);
}

/* Plant gid's row as another node stored it: submitted with s, unfinished. */
static void plant_row(const char *gid, const saga_t *s)
{
    Trellis__V1__SubmitRequest r;
    Trellis__V1__TransOptions o;
    Trellis__V1__SagaStep st[FENV_MAX_BR], *sp[FENV_MAX_BR];
    build_submit(&r, &o, st, sp, gid, s);
    tm_trans_t *tx = tm_trans_new(gid, TM_TX_SUBMITTED, fenv_now() - 10);
    assert_non_null(tx);
    assert_int_equal(tm_options_from_proto(&tx->opts, r.options), 0);
    tx->submit_hash = tm_request_submit_hash(&r);
    char err[256];
    assert_int_equal(
        tm_request_add_steps(tx, &r, &tm_engine_config(fenv_engine())->limits,
                             err, sizeof(err)),
        0);
    tm_write_t *w = tm_write_capture_all(tx, 1);
    assert_non_null(w);
    fenv_store_write(w);
    tm_trans_free(tx);
}

/* An unfinished row another node drives: a Submit that waits for the
 * result, and one with different content, are sent to that node
 * (UNAVAILABLE), not answered with a status that is not final nor
 * ALREADY_EXISTS, since only the owner knows. This node calls nothing and
 * keeps nothing. */
static void test_exists_unfinished_row(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2, .wait = 1};
    plant_row("g3", &s);

    fenv_rpc_t *same = send_submit("g3", &s); /* waits for the result */
    fenv_assert_unanswered(same);
    fenv_commit_next(TM_WRITE_EXISTS);
    /* another node drives it: the result comes from there, never a
     * status that is not final */
    fenv_assert_answer(same, TM_CODE_UNAVAILABLE, 0);

    saga_t other = {.n_steps = 1};
    fenv_rpc_t *diff = send_submit("g3", &other);
    fenv_commit_next(TM_WRITE_EXISTS);
    fenv_assert_answer(diff, TM_CODE_UNAVAILABLE, 0);
    assert_non_null(strstr(diff->message, "another trellisd node"));

    assert_int_equal(fenv_calls_started(), 0);
    assert_int_equal(fenv_timers_armed(), 0);
    assert_int_equal(tm_engine_live_count(fenv_engine()), 0);
}

/* Begin of a stored gid: ALREADY_EXISTS once its insert is refused. */
static void test_exists_begin(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    run_to_success("g4", &s);
    fenv_rpc_t *b = send_begin("g4", 0);
    fenv_assert_unanswered(b);
    assert_int_equal(fenv_timers_armed(), 1); /* its timeout, armed at once */
    fenv_commit_next(TM_WRITE_EXISTS);
    fenv_assert_answer(b, TM_CODE_ALREADY_EXISTS, 0);
    assert_int_equal(fenv_timers_armed(),
                     0); /* forgotten: its timeout is off */
}

/* ---- 3. LOST: another node drives it now --------------------------------- */

static void test_lost_forgets(void **state)
{
    (void)state;
    /* Two independent steps, so one call is still on the wire when the
     * write of the other's result is refused. */
    saga_t s = {.n_steps = 2, .concurrent = 1, .wait = 1};
    fenv_rpc_t *sub = send_submit("g5", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_unanswered(sub); /* it waits for the result */
    assert_int_equal(fenv_calls_started(), 2);

    fenv_answer_call(0, ST_OK);
    assert_int_equal(fenv_queued(), 1);
    fenv_commit_next(TM_WRITE_LOST);
    /* The waiter is sent to the node that owns it now. */
    fenv_assert_answer(sub, TM_CODE_UNAVAILABLE, 0);
    assert_non_null(strstr(sub->message, "another trellisd node"));
    assert_int_equal(tm_engine_live_count(fenv_engine()), 0);
    assert_int_equal(tm_engine_waiters(fenv_engine()), 0);

    /* The other call's result arrives: nothing follows from it. */
    fenv_answer_call(1, ST_OK);
    assert_int_equal(fenv_calls_started(), 2);
    assert_int_equal(fenv_queued(), 0);
    assert_int_equal(fenv_timers_armed(), 0);

    /* The store still says what the owner stored (here: the insert). */
    fenv_rpc_t *q = fenv_send_query("g5");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(q->op_status[0][TM_SLOT_FORWARD], TM_OP_PENDING);
}

/* A retry timer armed before the refusal must not fire a call after it. */
static void test_lost_disarms_retry(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    fenv_rpc_t *sub = send_submit("g6", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    fenv_answer_call(
        0, ST_UNAVAILABLE); /* a retry timer and the attempt's write */
    assert_int_equal(fenv_timers_armed(), 1);
    fenv_commit_next(TM_WRITE_LOST);
    assert_int_equal(fenv_timers_armed(), 0);
    assert_int_equal(fenv_calls_started(), 1);
    assert_int_equal(tm_engine_live_count(fenv_engine()), 0);
}

/* ---- 4. a duplicate while the insert is pending -------------------------- */

static void test_duplicate_waits_for_insert(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    fenv_rpc_t *first = send_submit("g7", &s);
    fenv_rpc_t *dup = send_submit("g7", &s);
    saga_t other = {.n_steps = 1, .payload = "other"};
    fenv_rpc_t *diff = send_submit("g7", &other);
    /* Durable answers only: nobody hears before the insert commits. */
    fenv_assert_unanswered(first);
    fenv_assert_unanswered(dup);
    fenv_assert_unanswered(diff);
    assert_int_equal(fenv_queued(), 1);

    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(first, TM_CODE_OK, TM_TX_SUBMITTED);
    fenv_assert_answer(dup, TM_CODE_OK, TM_TX_SUBMITTED);
    fenv_assert_answer(diff, TM_CODE_ALREADY_EXISTS, 0);
    assert_int_equal(fenv_calls_started(), 1); /* one saga, one call */
    assert_int_equal(fenv_queued(), 0);        /* the duplicate wrote nothing */

    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
}

/* The same, but the insert is refused EXISTS (the gid was stored before):
 * the parked duplicate is handled again from the top and answered from the
 * store too, and neither request starts a call. */
static void test_duplicate_waits_for_refused_insert(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    run_to_success("g8", &s);
    size_t called = fenv_calls_started();
    fenv_rpc_t *first = send_submit("g8", &s);
    fenv_rpc_t *dup = send_submit("g8", &s);
    fenv_assert_unanswered(first);
    fenv_assert_unanswered(dup);

    fenv_commit_next(TM_WRITE_EXISTS);
    fenv_assert_answer(first, TM_CODE_OK, TM_TX_SUCCEEDED);
    /* The first copy left memory, so the duplicate, handled again from
     * the top, makes a copy of its own; its insert is refused the same
     * way, and only then is it answered. */
    fenv_assert_unanswered(dup);
    assert_int_equal(fenv_queued(), 1);
    assert_true(fenv_next_write()->insert);
    fenv_commit_next(TM_WRITE_EXISTS);
    fenv_assert_answer(dup, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_int_equal(fenv_calls_started(), called);
}

/* ---- 5. a late result after ForceStop ------------------------------------ */

static void test_force_stop_late_result(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2};
    fenv_rpc_t *sub = send_submit("g9", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(fenv_calls_started(), 1); /* step 1 on the wire */

    fenv_rpc_t *stop = send_force_stop("g9", "stuck");
    fenv_assert_unanswered(stop); /* not before the stop is durable */
    assert_int_equal(fenv_next_write()->status, TM_TX_FAILED);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(stop, TM_CODE_OK, TM_TX_FAILED);
    assert_string_equal(stop->reason, TM_FORCE_STOP_PREFIX "stuck");
    assert_int_equal(tm_engine_live_count(fenv_engine()), 0);

    /* The action's success arrives now: no compensation, no step 2, no
     * write; the transaction stays FAILED with the operator's reason. */
    fenv_answer_call(0, ST_OK);
    assert_int_equal(fenv_calls_started(), 1);
    assert_int_equal(fenv_queued(), 0);
    assert_int_equal(fenv_timers_armed(), 0);
    fenv_rpc_t *q = fenv_send_query("g9");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
    assert_string_equal(q->reason, TM_FORCE_STOP_PREFIX "stuck");
    assert_int_equal(q->op_status[0][TM_SLOT_FORWARD], TM_OP_SKIPPED);
    assert_int_equal(q->attempts[0][TM_SLOT_FORWARD], 1);

    /* A repeat of the stop is answered the same, from the store. */
    fenv_rpc_t *again = send_force_stop("g9", "stuck");
    fenv_assert_answer(again, TM_CODE_OK, TM_TX_FAILED);
}

/* The result arrives while the stop's write is still pending. */
static void test_force_stop_result_before_commit(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    fenv_rpc_t *sub = send_submit("g10", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    fenv_rpc_t *stop = send_force_stop("g10", "now");
    fenv_answer_call(0, ST_OK); /* would have made it SUCCEEDED */
    assert_int_equal(fenv_queued(), 1);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(stop, TM_CODE_OK, TM_TX_FAILED);
    assert_int_equal(fenv_queued(), 0);
    assert_int_equal(fenv_calls_started(), 1);
    fenv_rpc_t *q = fenv_send_query("g10");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
}

/* ---- 6. the timeout racing Submit ---------------------------------------- */

#define TIMEOUT_MS 500

/* Begin with a timeout, committed; its timer is armed. */
static void begun(const char *gid)
{
    fenv_rpc_t *b = send_begin(gid, TIMEOUT_MS);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(b, TM_CODE_OK, TM_TX_PREPARED);
    assert_int_equal(fenv_timers_armed(), 1);
}

/* The timeout fires while the Submit's write is pending: the durable state
 * is still PREPARED, and a prepared transaction is rolled back. The Submit
 * is answered SUBMITTED (what its write made durable); a waiter learns
 * the outcome, FAILED by timeout, and no action is ever called. */
static void test_timeout_while_submit_pending(void **state)
{
    (void)state;
    begun("g11");
    int64_t due = fenv_now() + TIMEOUT_MS;
    saga_t s = {.n_steps = 1, .wait = 1};
    fenv_rpc_t *sub = send_submit("g11", &s);
    assert_int_equal(fenv_queued(), 1);
    fenv_fire_timer(fenv_timer_at(due));
    fenv_commit_all();
    assert_int_equal(fenv_calls_started(), 1);
    fenv_assert_call(0, "g11", "01", "compensate"); /* may have run: undo */
    fenv_assert_unanswered(sub);
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    assert_non_null(strstr(sub->reason, "timeout"));
    assert_int_equal(fenv_calls_started(), 1); /* the action never ran */
}

/* The other order: Submit committed (its action on the wire), then the
 * timeout. The forward op is not done, so it is rolled back too: the
 * action's late success is compensated. */
static void test_timeout_after_submit_forward_pending(void **state)
{
    (void)state;
    begun("g12");
    int64_t due = fenv_now() + TIMEOUT_MS;
    saga_t s = {.n_steps = 1};
    fenv_rpc_t *sub = send_submit("g12", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    fenv_assert_call(0, "g12", "01", "action");
    fenv_fire_timer(fenv_timer_at(due));
    assert_int_equal(fenv_next_write()->status, TM_TX_ABORTING);
    fenv_commit_all();
    assert_int_equal(fenv_calls_started(),
                     1); /* no compensation while on wire */
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    assert_int_equal(fenv_calls_started(), 2);
    fenv_assert_call(1, "g12", "01", "compensate");
    fenv_answer_call(1, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query("g12");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
    assert_non_null(strstr(q->reason, "timeout"));
}

/* Submitted with every forward op done (the initiator tried its TCC
 * branch): the commit is decided and the timeout does not roll it back —
 * in both orders, Submit pending or committed when it fires. */
static void test_timeout_after_forward_done(void **state)
{
    (void)state;
    for (int order = 0; order < 2; order++) {
        const char *gid = order ? "g13b" : "g13a";
        size_t c = fenv_calls_started();
        begun(gid);
        int64_t due = fenv_now() + TIMEOUT_MS;
        fenv_rpc_t *reg = send_register_tcc(gid, "b1");
        fenv_commit_next(TM_WRITE_DONE);
        fenv_assert_answer(reg, TM_CODE_OK, TM_TX_PREPARED);
        saga_t s = {.n_steps = 0};
        fenv_rpc_t *sub = send_submit(gid, &s);
        if (order == 1) /* committed first: the confirm is on the wire */
            fenv_commit_next(TM_WRITE_DONE);
        fenv_fire_timer(fenv_timer_at(due));
        fenv_commit_all();
        fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
        assert_int_equal(fenv_calls_started(), c + 1);
        fenv_assert_call(c, gid, "b1", "confirm");
        fenv_answer_call(c, ST_OK);
        fenv_commit_all();
        fenv_rpc_t *q = fenv_send_query(gid);
        fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
        assert_int_equal(fenv_timers_armed(), 0);
    }
}

/* The timeout first, then the Submit: refused, the transaction is already
 * rolling back; the registered branch is cancelled. */
static void test_timeout_before_submit(void **state)
{
    (void)state;
    begun("g14");
    int64_t due = fenv_now() + TIMEOUT_MS;
    fenv_rpc_t *reg = send_register_tcc("g14", "b1");
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(reg, TM_CODE_OK, TM_TX_PREPARED);
    fenv_fire_timer(fenv_timer_at(due));
    saga_t s = {.n_steps = 0};
    fenv_rpc_t *sub = send_submit("g14", &s); /* parked behind the timeout */
    fenv_assert_unanswered(sub);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(sub, TM_CODE_FAILED_PRECONDITION, 0);
    assert_non_null(strstr(sub->message, "timeout"));
    assert_int_equal(fenv_calls_started(), 1);
    fenv_assert_call(0, "g14", "b1", "cancel");
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query("g14");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
}

/* ---- 7. retries ---------------------------------------------------------- */

static void test_retry_after_unavailable(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1, .retry_interval_ms = 100};
    fenv_rpc_t *sub = send_submit("g15", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);

    int64_t t0 = fenv_now();
    fenv_answer_call(0, ST_UNAVAILABLE);
    assert_int_equal(fenv_timers_armed(), 1);
    assert_int_equal(fenv_timer_due(0), t0 + 100); /* backoff base */
    fenv_commit_all();                             /* the attempt is stored */
    assert_int_equal(fenv_calls_started(), 1);
    fenv_rpc_t *q1 = fenv_send_query("g15");
    fenv_assert_answer(q1, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(q1->attempts[0][TM_SLOT_FORWARD], 1);

    fenv_fire_timer(0);
    assert_int_equal(fenv_calls_started(), 2);
    fenv_assert_call(1, "g15", "01", "action");
    fenv_rpc_t *q2 = fenv_send_query("g15");
    fenv_assert_answer(q2, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(q2->attempts[0][TM_SLOT_FORWARD], 2);

    int64_t t1 = fenv_now();
    fenv_answer_call(1, ST_UNAVAILABLE);
    assert_int_equal(fenv_timer_due(0), t1 + 200); /* doubled */
    fenv_commit_all();
    fenv_fire_timer(0);
    assert_int_equal(fenv_calls_started(), 3);
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q3 = fenv_send_query("g15");
    fenv_assert_answer(q3, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_int_equal(q3->attempts[0][TM_SLOT_FORWARD], 3);
}

/* retry_limit: the last unknown result gives up and rolls back. */
static void test_retry_limit_rolls_back(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1, .retry_limit = 2, .wait = 1};
    fenv_rpc_t *sub = send_submit("g16", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_answer_call(0, ST_UNAVAILABLE);
    fenv_commit_all();
    fenv_fire_timer(0);
    fenv_answer_call(1, ST_UNAVAILABLE);
    assert_int_equal(fenv_next_write()->status, TM_TX_ABORTING);
    assert_int_equal(fenv_timers_armed(), 0);
    fenv_commit_all();
    fenv_assert_call(2, "g16", "01", "compensate");
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    assert_non_null(strstr(sub->reason, "2 attempts"));
}

/* ---- more orderings ------------------------------------------------------ */

/* A Query while a write is pending answers the durable state (the store),
 * not the copy in memory. */
static void test_query_durable_only(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    fenv_rpc_t *sub = send_submit("g17", &s);
    fenv_rpc_t *q0 = fenv_send_query("g17"); /* the insert is not committed */
    fenv_assert_answer(q0, TM_CODE_NOT_FOUND, 0);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    fenv_answer_call(0, ST_OK); /* SUCCEEDED, queued */
    fenv_rpc_t *q1 = fenv_send_query("g17");
    fenv_assert_answer(q1, TM_CODE_OK, TM_TX_SUBMITTED);
    fenv_commit_all();
    fenv_rpc_t *q2 = fenv_send_query("g17");
    fenv_assert_answer(q2, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* A business failure of step 2 compensates step 1 only (step 2 never ran
 * to completion), and the waiter learns FAILED with the participant's
 * reason. */
static void test_business_failure_compensates(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2, .wait = 1};
    fenv_rpc_t *sub = send_submit("g18", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_answer_call(0, ST_OK);
    fenv_commit_all();
    fenv_assert_call(1, "g18", "02", "action");
    fenv_answer_call(1, ST_ABORTED);
    fenv_commit_all();
    /* Backwards: 02's compensation first (it may have run), and 01's only
     * once 02 is settled. */
    assert_int_equal(fenv_calls_started(), 3);
    fenv_assert_call(2, "g18", "02", "compensate");
    fenv_assert_unanswered(sub);
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    assert_int_equal(fenv_calls_started(), 4);
    fenv_assert_call(3, "g18", "01", "compensate");
    fenv_answer_call(3, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    assert_non_null(strstr(sub->reason, "branch 02 action failed"));
}

/* Write FAILED (the database refuses a change for good): the copy is
 * forgotten and the transaction reloaded from its stored row and driven
 * on from there — the action whose success was not stored is called again
 * (the barrier absorbs it), then step 2, and it succeeds. */
static void test_write_failed_reloads(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2, .wait = 1};
    fenv_rpc_t *sub = send_submit("g20", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_answer_call(0, ST_OK);
    fenv_commit_next(TM_WRITE_FAILED);
    assert_int_equal(sub->answers, 0); /* it waits for the reloaded copy */
    assert_int_equal(tm_engine_live_count(fenv_engine()),
                     1); /* the reloaded copy */
    assert_int_equal(fenv_calls_started(), 2);
    fenv_assert_call(1, "g20", "01", "action");
    fenv_answer_call(1, ST_OK);
    fenv_commit_all();
    fenv_assert_call(2, "g20", "02", "action");
    fenv_answer_call(2, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query("g20");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* ---- two bugs these tests found (fixed in the same change) ---- */

/* A call that cannot be started (no channel) inside drive's loop is
 * applied at once as UNKNOWN; with retry_limit 1 that decides the
 * rollback, and with nothing to compensate the outcome FAILED, whose write
 * is queued. The loop used to go on to start the next ready op, the
 * action of step 02, from the plan made before: an action called after
 * the transaction was decided FAILED, and stored as never called (SKIPPED,
 * 0 attempts). It now stops once a write is pending. */
static void test_no_call_after_unsent_decides(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2,
                .concurrent = 1,
                .no_compensate = 1,
                .retry_limit = 1,
                .wait = 1};
    fenv_rpc_t *sub = send_submit("g19", &s);
    fenv_refuse_calls(1); /* step 01's action cannot be started */
    fenv_commit_next(TM_WRITE_DONE);
    assert_int_equal(fenv_next_write()->status, TM_TX_FAILED);
    int called = (int)fenv_calls_started();
    while (fenv_calls_open())
        fenv_answer_call(fenv_calls_started() - 1, ST_OK);
    fenv_commit_all();
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    fenv_rpc_t *q = fenv_send_query("g19");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
    /* Nothing is called once FAILED is decided... */
    assert_int_equal(called, 0);
    /* ...or, if it is, the store must not say it never was. */
    assert_int_equal(q->attempts[1][TM_SLOT_FORWARD], (uint32_t)called);
}

/* A change refused FAILED on a transaction whose insert committed: the
 * waiter of its Submit (wait_result) used to be answered INTERNAL "nothing
 * of this request was stored", while the transaction was stored, reloaded
 * and then succeeded. The waiter now moves to the reloaded copy (as on a
 * takeover) and hears the outcome. */
static void test_failed_write_keeps_waiter(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1, .wait = 1};
    fenv_rpc_t *sub = send_submit("g21", &s);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_answer_call(0, ST_UNAVAILABLE); /* the attempt's write */
    fenv_commit_next(TM_WRITE_FAILED);
    int told_not_stored = sub->answers == 1 &&
                          strstr(sub->message, "nothing of this request") != 0;
    while (fenv_calls_open()) { /* the reloaded copy calls again */
        fenv_answer_call(fenv_calls_started() - 1, ST_OK);
        fenv_commit_all();
    }
    fenv_rpc_t *q = fenv_send_query("g21");
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_false(told_not_stored);
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* The fake store's topics keep the stores' contract (topics_check.h),
 * and a refused call fails alone, changing nothing. */
static void test_fake_topics(void **state)
{
    (void)state;
    const tm_engine_env_t *env = fenv_env();
    tcheck_contract(env);
    char before[1024], after[1024], err[256];
    tcheck_text(env, NULL, before, sizeof(before));
    fenv_refuse_topics(3);
    assert_int_equal(env->store_subscribe(env->store, "x", "h:1/p.S/A", "", 1,
                                          err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "refuses"));
    assert_int_equal(
        env->store_unsubscribe(env->store, "B", "h:1/p.S/A", err, sizeof(err)),
        -1);
    tm_subscription_t *v = NULL;
    size_t n = 0;
    assert_int_equal(
        env->store_subscriptions(env->store, NULL, &v, &n, err, sizeof(err)),
        -1);
    assert_null(v);
    assert_int_equal(n, 0);
    /* only the next three: the fourth call works, and nothing changed */
    assert_string_equal(tcheck_text(env, NULL, after, sizeof(after)), before);
}

int main(void)
{
    tm_log_set_level(TM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_submit_answers_after_insert),
        T(test_exists_final_row),
        T(test_exists_unfinished_row),
        T(test_exists_begin),
        T(test_lost_forgets),
        T(test_lost_disarms_retry),
        T(test_duplicate_waits_for_insert),
        T(test_duplicate_waits_for_refused_insert),
        T(test_force_stop_late_result),
        T(test_force_stop_result_before_commit),
        T(test_timeout_while_submit_pending),
        T(test_timeout_after_submit_forward_pending),
        T(test_timeout_after_forward_done),
        T(test_timeout_before_submit),
        T(test_retry_after_unavailable),
        T(test_retry_limit_rolls_back),
        T(test_query_durable_only),
        T(test_business_failure_compensates),
        T(test_write_failed_reloads),
        T(test_no_call_after_unsent_decides),
        T(test_failed_write_keeps_waiter),
        T(test_fake_topics),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
