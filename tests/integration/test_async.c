/*
 * test_async.c: the asynchronous initiator API (trellis_async.h) against a
 * real trellisd (trellisd-faults where a call must be held) and
 * trellis-testpart: many sagas and TCC transfers in flight from one
 * thread, callbacks that start the next step of their transaction,
 * trellisd killed with calls in flight, the client freed with calls in
 * flight (in both modes), the trace context, and misuse. Every test
 * counts the callbacks of each call it started: each must run exactly
 * once.
 *
 * Calls are held deterministically: with trellisd-faults' "hold" the
 * first commit group stops before it is applied, so every Begin stays
 * unanswered, and "live-calls" tells when trellisd has them all.
 */
#include "itest.h"
#include "itest_fault.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis_async.h"

#define MAX_CALLS 512

/* The callbacks of one test: per call, how many ran and what the first
 * one said. Guarded by lock (thread mode runs them on the client's
 * thread). */
typedef struct {
    pthread_mutex_t lock;
    int n;    /* calls started */
    int done; /* callbacks run */
    int calls[MAX_CALLS];
    trellis_rc_t rc[MAX_CALLS];
    trellis_trans_status_t status[MAX_CALLS];
    int branch[MAX_CALLS];
    char msg[MAX_CALLS][128];
} tally_t;

typedef struct {
    tally_t *t;
    int i;
} tag_t;

static tally_t *tally_new(void)
{
    tally_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

static void tally_free(tally_t *t)
{
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* A tag for the next call. */
static tag_t *tally_tag(tally_t *t, tag_t *tags)
{
    assert_true(t->n < MAX_CALLS);
    tags[t->n] = (tag_t){t, t->n};
    return &tags[t->n++];
}

static void tally_cb(const trellis_async_result_t *r, void *user)
{
    tag_t *g = user;
    tally_t *t = g->t;
    pthread_mutex_lock(&t->lock);
    if (t->calls[g->i]++ == 0) {
        t->rc[g->i] = r->rc;
        t->status[g->i] = r->status;
        t->branch[g->i] = r->branch;
        snprintf(t->msg[g->i], sizeof t->msg[g->i], "%s", r->message);
    }
    t->done++;
    pthread_mutex_unlock(&t->lock);
}

static int tally_done(void *arg)
{
    tally_t *t = arg;
    pthread_mutex_lock(&t->lock);
    int all = t->done >= t->n;
    pthread_mutex_unlock(&t->lock);
    return all;
}

/* Thread mode: until every call's callback ran (the test fails instead of
 * hanging if they do not). */
static void tally_wait(tally_t *t)
{
    if (!harness_poll(tally_done, t, 60000, 2))
        fail_msg("%d of %d callbacks ran", t->done, t->n);
}

/* Poll mode: drive c until every call's callback ran. */
static void tally_poll(trellis_client_t *c, tally_t *t)
{
    int64_t give_up = harness_mono_ms() + 60000;
    while (!tally_done(t) && harness_mono_ms() < give_up)
        assert_true(trellis_async_poll(c, 100) >= 0);
    if (!tally_done(t))
        fail_msg("%d of %d callbacks ran", t->done, t->n);
}

/* Every call's callback ran exactly once. */
static void assert_once_each(const tally_t *t)
{
    for (int i = 0; i < t->n; i++)
        if (t->calls[i] != 1)
            fail_msg("call %d: %d callbacks", i, t->calls[i]);
    assert_int_equal(t->done, t->n);
}

static trellis_client_t *async_client(itest_t *t, trellis_async_mode_t mode)
{
    char err[256];
    trellis_client_t *c = NULL;
    assert_int_equal(trellis_client_new(harness_server_addr(t->tm), 30000, &c,
                                        err, sizeof err),
                     TRELLIS_OK);
    if (trellis_async_start(c, mode, err, sizeof err) != TRELLIS_OK)
        fail_msg("trellis_async_start: %s", err);
    return c;
}

/* The testpart's TCC targets. */
typedef struct {
    char try_[96], confirm[96], cancel[96];
} targets_t;

static void part_targets(itest_t *t, targets_t *tg)
{
    const char *a = harness_server_addr(t->part);
    snprintf(tg->try_, sizeof tg->try_, "%s/trellis.test.Part/Try", a);
    snprintf(tg->confirm, sizeof tg->confirm, "%s/trellis.test.Part/Confirm",
             a);
    snprintf(tg->cancel, sizeof tg->cancel, "%s/trellis.test.Part/Cancel", a);
}

/* A 2-branch TCC transfer on the testpart, the second try scripted. */
static void start_transfer(itest_t *t, trellis_client_t *c, const char *gid,
                           const char *second, tally_t *ta, tag_t *tags)
{
    targets_t tg;
    part_targets(t, &tg);
    trellis_async_branch_t b[2] = {
        {tg.try_, tg.confirm, tg.cancel, "", 0},
        {tg.try_, tg.confirm, tg.cancel, second, strlen(second)},
    };
    trellis_options_t o = itest_options();
    assert_int_equal(
        trellis_async_tcc_run(c, gid, &o, b, 2, tally_cb, tally_tag(ta, tags)),
        TRELLIS_OK);
}

/* ---- many in flight from one thread ----------------------------------- */

/* 200 sagas and 100 TCC transfers started at once from the test's thread
 * (poll mode: no other thread runs anything of ours), each saga builder
 * freed as soon as it was submitted; every one succeeds, once. */
static void test_one_thread_many_transactions(void **state)
{
    itest_t *t = itest_start(state, "async-many", NULL);
    trellis_client_t *c = async_client(t, TRELLIS_ASYNC_POLL);
    tally_t *ta = tally_new();
    static tag_t tags[MAX_CALLS];
    const char *steps[] = {"", ""};
    char gid[64];
    for (int i = 0; i < 200; i++) {
        snprintf(gid, sizeof gid, "as-%d", i);
        trellis_saga_t *s = itest_saga(t, gid, steps, 2, NULL);
        assert_int_equal(
            trellis_async_saga_submit(c, s, tally_cb, tally_tag(ta, tags)),
            TRELLIS_OK);
        trellis_saga_free(s);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(gid, sizeof gid, "at-%d", i);
        start_transfer(t, c, gid, "", ta, tags);
    }
    assert_int_equal(ta->done, 0); /* never inside the call that started */
    tally_poll(c, ta);
    trellis_client_free(c);
    assert_once_each(ta);
    for (int i = 0; i < ta->n; i++) {
        if (ta->rc[i] != TRELLIS_OK)
            fail_msg("call %d: rc %d: %s", i, ta->rc[i], ta->msg[i]);
        assert_int_equal(ta->status[i], TRELLIS_TRANS_SUCCEEDED);
    }
    trellis_trans_info_t *info = itest_query(t, "at-99");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(info->n_branches, 2);
    trellis_trans_info_free(info);
    tally_free(ta);
    itest_pass(state);
}

/* ---- callbacks that start the next step -------------------------------- */

/* One transfer driven step by step from its callbacks: begin, two
 * branches, then submit (or abort when a try failed). */
typedef struct {
    itest_t *t;
    trellis_tcc_t *tcc;
    const char *second; /* the second try's script */
    int step;           /* callbacks so far */
    char pending;       /* the step in flight: B, T, S or X */
    char trail[32];     /* "B T T S": what each callback was for */
    trellis_rc_t last_rc;
    trellis_trans_status_t status;
    int finished;
    int start_refused; /* a trellis_async_tcc_* call did not accept */
    pthread_mutex_t *lock;
} chain_t;

static void chain_cb(const trellis_async_result_t *r, void *user);

static void chain_next(chain_t *ch, const trellis_async_result_t *r)
{
    targets_t tg;
    part_targets(ch->t, &tg);
    trellis_rc_t rc = TRELLIS_OK;
    if (ch->step <= 2 && r->rc == TRELLIS_OK) {
        const char *pl = ch->step == 2 ? ch->second : "";
        ch->pending = 'T';
        rc = trellis_async_tcc_call_branch(ch->tcc, tg.try_, tg.confirm,
                                           tg.cancel, pl, strlen(pl), chain_cb,
                                           ch);
    } else if (ch->step == 3 && r->rc == TRELLIS_OK) {
        ch->pending = 'S';
        rc = trellis_async_tcc_submit(ch->tcc, chain_cb, ch);
    } else if (ch->step == 3) {
        ch->pending = 'X';
        rc = trellis_async_tcc_abort(ch->tcc, "a try failed", chain_cb, ch);
    } else {
        trellis_tcc_free(ch->tcc); /* in the last callback: allowed */
        ch->tcc = NULL;
        ch->status = r->status;
        ch->finished = 1;
    }
    if (rc != TRELLIS_OK) { /* cmocka must not fail off the test's thread */
        ch->start_refused = 1;
        ch->finished = 1;
    }
}

static void chain_cb(const trellis_async_result_t *r, void *user)
{
    chain_t *ch = user;
    pthread_mutex_lock(ch->lock);
    size_t n = strlen(ch->trail);
    if (n + 1 < sizeof ch->trail)
        ch->trail[n] = r->rc == TRELLIS_OK ? ch->pending : 'e';
    ch->step++;
    ch->last_rc = r->rc;
    chain_next(ch, r);
    pthread_mutex_unlock(ch->lock);
}

static int chains_finished(void *arg)
{
    chain_t *ch = arg;
    pthread_mutex_lock(ch[0].lock);
    int all = 1;
    for (int i = 0; i < 40; i++)
        all = all && ch[i].finished;
    pthread_mutex_unlock(ch[0].lock);
    return all;
}

/* 40 transfers on the client's thread, each step started by the callback
 * of the one before; every fourth one's second try is refused, and its
 * chain aborts. */
static void test_callbacks_start_calls(void **state)
{
    itest_t *t = itest_start(state, "async-chain", NULL);
    trellis_client_t *c = async_client(t, TRELLIS_ASYNC_THREAD);
    static chain_t ch[40];
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    trellis_options_t o = itest_options();
    char gid[64];
    pthread_mutex_lock(&lock);
    for (int i = 0; i < 40; i++) {
        ch[i] = (chain_t){.t = t, .lock = &lock, .pending = 'B'};
        ch[i].second = i % 4 == 3 ? "fail" : "";
        snprintf(gid, sizeof gid, "ac-%d", i);
        assert_int_equal(
            trellis_async_tcc_begin(c, gid, &o, &ch[i].tcc, chain_cb, &ch[i]),
            TRELLIS_OK);
        assert_non_null(ch[i].tcc);
    }
    pthread_mutex_unlock(&lock);
    if (!harness_poll(chains_finished, ch, 60000, 2))
        fail_msg("not every chain finished");
    trellis_client_free(c);
    for (int i = 0; i < 40; i++) {
        fprintf(stderr, "ac-%d: %s\n", i, ch[i].trail);
        assert_false(ch[i].start_refused);
        assert_int_equal(ch[i].step, 4);
        assert_string_equal(ch[i].trail, i % 4 == 3 ? "BTeX" : "BTTS");
        assert_int_equal(ch[i].status, i % 4 == 3 ? TRELLIS_TRANS_FAILED
                                                  : TRELLIS_TRANS_SUCCEEDED);
    }
    /* The refused transfer's registered branches were both cancelled. */
    trellis_trans_info_t *info = itest_query(t, "ac-3");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_int_equal(info->n_branches, 2);
    for (int b = 0; b < 2; b++)
        assert_int_equal(
            itest_op(&info->branches[b], TRELLIS_OP_CANCEL)->status,
            TRELLIS_OP_SUCCEEDED);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* A run whose second try is refused: the run aborts, and its callback
 * says which branch failed and how, and that the abort rolled it back. */
static void test_run_reports_the_failed_branch(void **state)
{
    itest_t *t = itest_start(state, "async-run-fail", NULL);
    trellis_client_t *c = async_client(t, TRELLIS_ASYNC_POLL);
    tally_t *ta = tally_new();
    static tag_t tags[4];
    start_transfer(t, c, "ar-1", "fail", ta, tags);
    tally_poll(c, ta);
    trellis_client_free(c);
    assert_once_each(ta);
    assert_int_equal(ta->rc[0], TRELLIS_ABORTED);
    assert_int_equal(ta->branch[0], 1);
    assert_int_equal(ta->status[0], TRELLIS_TRANS_FAILED);
    trellis_trans_info_t *info = itest_query(t, "ar-1");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    trellis_trans_info_free(info);
    tally_free(ta);
    itest_pass(state);
}

/* ---- trellisd killed, client freed ------------------------------------- */

/* 30 Begins and 10 transfers wait in a held trellisd; it is killed: every
 * callback runs once, with UNAVAILABLE. */
static void test_tm_killed_mid_flight(void **state)
{
    itest_t *t = itest_start_faulty(state, "async-killed", NULL);
    trellis_client_t *c = async_client(t, TRELLIS_ASYNC_THREAD);
    tally_t *ta = tally_new();
    static tag_t tags[64];
    trellis_options_t o = itest_options();
    char gid[64];
    itest_fault("hold", NULL, 0);
    for (int i = 0; i < 30; i++) {
        snprintf(gid, sizeof gid, "ak-%d", i);
        assert_int_equal(
            trellis_async_begin(c, gid, &o, tally_cb, tally_tag(ta, tags)),
            TRELLIS_OK);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(gid, sizeof gid, "akt-%d", i);
        start_transfer(t, c, gid, "", ta, tags);
    }
    itest_fault_wait_live_calls(40);
    assert_int_equal(ta->done, 0);
    assert_int_equal(harness_server_kill(t->tm), 0);
    tally_wait(ta);
    trellis_client_free(c);
    assert_once_each(ta);
    for (int i = 0; i < ta->n; i++)
        if (ta->rc[i] != TRELLIS_UNAVAILABLE)
            fail_msg("call %d: rc %d (%s), want UNAVAILABLE", i, ta->rc[i],
                     ta->msg[i]);
    for (int i = 30; i < 40; i++)
        assert_int_equal(ta->branch[i], -1); /* Begin failed: no branch */
    tally_free(ta);
    assert_int_equal(harness_server_restart(t->tm), 0);
    itest_pass(state);
}

/* ---- the Begin that registers every branch ---------------------------- */

/* A run's Begin carries its branches: one call and one durable write, and
 * no try before that write is durable. trellisd gets kill -9 while the
 * write is held (never durable) or once it is durable with its answer
 * lost. The run fails at its Begin either way, having sent no try; after
 * the restart the transaction is absent, or PREPARED with both branches
 * registered, and then its timeout cancels both (the cancels find no try
 * at the barrier: nothing to undo). */
static void begin_killed(void **state, const char *name, int durable)
{
    itest_t *t = itest_start_faulty(state, name, NULL);
    trellis_client_t *c = async_client(t, TRELLIS_ASYNC_THREAD);
    tally_t *ta = tally_new();
    static tag_t tags[4];
    char report[1200], gid[64], err[256], j[128];
    snprintf(gid, sizeof gid, "%s-1", name);
    targets_t tg;
    part_targets(t, &tg);
    trellis_async_branch_t b[2] = {{tg.try_, tg.confirm, tg.cancel, "", 0},
                                   {tg.try_, tg.confirm, tg.cancel, "", 0}};
    trellis_options_t o = itest_options();
    o.timeout_to_fail_ms = 500;
    itest_fault("hold", NULL, 0);
    assert_int_equal(
        trellis_async_tcc_run(c, gid, &o, b, 2, tally_cb, tally_tag(ta, tags)),
        TRELLIS_OK);
    itest_fault_hold_nth(gid, 1, report, sizeof report);
    if (durable)
        itest_fault_commit_unanswered(gid, report);
    assert_int_equal(harness_server_kill(t->tm), 0);
    tally_wait(ta);
    trellis_client_free(c);
    assert_int_equal(ta->rc[0], TRELLIS_UNAVAILABLE);
    assert_int_equal(ta->branch[0], -1);
    tally_free(ta);
    assert_int_equal(harness_server_restart(t->tm), 0);
    itest_reconnect(t);
    harness_part_state_t ps;
    trellis_trans_info_t *info = NULL;
    if (!durable) {
        assert_int_equal(trellis_query(t->client, gid, &info, err, sizeof err),
                         TRELLIS_NOT_FOUND);
        itest_part_state(t, gid, &ps);
        assert_int_equal(ps.n_calls, 0);
        harness_part_state_free(&ps);
        itest_pass(state);
        return;
    }
    info = itest_query(t, gid);
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_int_equal(info->n_branches, 2);
    for (int i = 0; i < 2; i++) {
        const trellis_branch_info_t *br = &info->branches[i];
        assert_string_equal(br->branch_id, i == 0 ? "01" : "02");
        assert_int_equal(br->mode, TRELLIS_MODE_TCC);
        assert_true(br->initiator_driven);
        assert_string_equal(itest_op(br, TRELLIS_OP_CONFIRM)->target,
                            tg.confirm);
        assert_string_equal(itest_op(br, TRELLIS_OP_CANCEL)->target, tg.cancel);
    }
    trellis_trans_info_free(info);
    info = itest_wait_final(t, gid);
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    itest_part_state(t, gid, &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j), "X1 X0");
    for (int i = 0; i < 2; i++)
        assert_int_equal(itest_count(info, &ps, i, "cancel", "undone"), 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_begin_with_branches_killed_before_durable(void **state)
{
    begin_killed(state, "async-bk-held", 0);
}

static void test_begin_with_branches_killed_unanswered(void **state)
{
    begin_killed(state, "async-bk-lost", 1);
}

/* The first callback to run starts one more Begin: during the free it
 * must fail at once (CANCELLED) and still be counted. */
static tag_t extra_tag;
static trellis_client_t *extra_client;
static trellis_rc_t extra_rc;

static void first_starts_more_cb(const trellis_async_result_t *r, void *user)
{
    tag_t *g = user;
    tally_cb(r, user);
    if (g->i == 0)
        extra_rc = trellis_async_begin(extra_client, "af-extra", NULL, tally_cb,
                                       &extra_tag);
}

/* 20 Begins wait in a held trellisd; the client is freed: each callback
 * runs once before the free returns, with CANCELLED. */
static void freed_in_flight(void **state, const char *name,
                            trellis_async_mode_t mode)
{
    itest_t *t = itest_start_faulty(state, name, NULL);
    trellis_client_t *c = async_client(t, mode);
    tally_t *ta = tally_new();
    static tag_t tags[32];
    char gid[64];
    itest_fault("hold", NULL, 0);
    for (int i = 0; i < 20; i++) {
        snprintf(gid, sizeof gid, "af-%d", i);
        assert_int_equal(trellis_async_begin(c, gid, NULL, first_starts_more_cb,
                                             tally_tag(ta, tags)),
                         TRELLIS_OK);
    }
    extra_client = c;
    extra_tag = (tag_t){ta, ta->n++};
    extra_rc = -1;
    itest_fault_wait_live_calls(20);
    trellis_client_free(c);
    assert_int_equal(extra_rc, TRELLIS_OK);
    assert_once_each(ta);
    for (int i = 0; i < ta->n; i++) {
        assert_int_equal(ta->rc[i], TRELLIS_CANCELLED);
        assert_non_null(strstr(ta->msg[i], "freed"));
    }
    tally_free(ta);
    itest_fault("release", NULL, 0);
    itest_pass(state);
}

static void test_freed_in_flight_thread(void **state)
{
    freed_in_flight(state, "async-freed-thread", TRELLIS_ASYNC_THREAD);
}

static void test_freed_in_flight_poll(void **state)
{
    freed_in_flight(state, "async-freed-poll", TRELLIS_ASYNC_POLL);
}

/* ---- the trace context ------------------------------------------------- */

#define PARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define STATE "congo=t61rcWkgMzE"

/* Every call of gid the participant saw carried PARENT and STATE; how many
 * there were. */
static size_t traced_calls(itest_t *t, const char *gid)
{
    harness_part_state_t ps;
    itest_part_state(t, gid, &ps);
    for (size_t i = 0; i < ps.n_calls; i++)
        if (strcmp(ps.calls[i].traceparent, PARENT) ||
            strcmp(ps.calls[i].tracestate, STATE))
            fail_msg("%s: %s of %s carried \"%s\" \"%s\"", gid, ps.calls[i].op,
                     ps.calls[i].branch, ps.calls[i].traceparent,
                     ps.calls[i].tracestate);
    size_t n = ps.n_calls;
    harness_part_state_free(&ps);
    return n;
}

/* The asynchronous Begin and saga Submit send the options' trace context
 * as the blocking ones do, and the run's tries carry it: every branch call
 * of either transaction has it. */
static void test_trace_context_goes_along(void **state)
{
    itest_t *t = itest_start(state, "async-trace", NULL);
    trellis_client_t *c = async_client(t, TRELLIS_ASYNC_POLL);
    tally_t *ta = tally_new();
    static tag_t tags[4];
    trellis_options_t o = itest_options();
    o.traceparent = PARENT;
    o.tracestate = STATE;
    const char *steps[] = {"", ""};
    trellis_saga_t *s = itest_saga(t, "atr-saga", steps, 2, &o);
    assert_int_equal(
        trellis_async_saga_submit(c, s, tally_cb, tally_tag(ta, tags)),
        TRELLIS_OK);
    trellis_saga_free(s);
    targets_t tg;
    part_targets(t, &tg);
    trellis_async_branch_t b[2] = {
        {tg.try_, tg.confirm, tg.cancel, "", 0},
        {tg.try_, tg.confirm, tg.cancel, "", 0},
    };
    assert_int_equal(trellis_async_tcc_run(c, "atr-tcc", &o, b, 2, tally_cb,
                                           tally_tag(ta, tags)),
                     TRELLIS_OK);
    tally_poll(c, ta);
    trellis_client_free(c);
    assert_once_each(ta);
    for (int i = 0; i < ta->n; i++)
        assert_int_equal(ta->status[i], TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(traced_calls(t, "atr-saga"), 2); /* two actions */
    assert_int_equal(traced_calls(t, "atr-tcc"), 4);  /* 2 tries, 2 confirms */
    tally_free(ta);
    itest_pass(state);
}

/* ---- misuse ------------------------------------------------------------ */

static void test_misuse(void **state)
{
    itest_t *t = itest_start(state, "async-misuse", NULL);
    char err[256];
    tally_t *ta = tally_new();
    static tag_t tags[8];
    /* no queue yet: nowhere to report, so the call says so itself */
    assert_int_equal(trellis_async_begin(t->client, "am-0", NULL, tally_cb,
                                         tally_tag(ta, tags)),
                     TRELLIS_FAILED_PRECONDITION);
    ta->n = 0;
    trellis_client_t *c = async_client(t, TRELLIS_ASYNC_POLL);
    assert_int_equal(
        trellis_async_start(c, TRELLIS_ASYNC_THREAD, err, sizeof err),
        TRELLIS_FAILED_PRECONDITION);
    assert_int_equal(trellis_async_begin(c, "am-1", NULL, NULL, NULL),
                     TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(trellis_async_poll(t->client, 0), -1);
    /* bad arguments reach the callback, later, never inline */
    assert_int_equal(
        trellis_async_begin(c, NULL, NULL, tally_cb, tally_tag(ta, tags)),
        TRELLIS_OK);
    targets_t tg;
    part_targets(t, &tg);
    trellis_async_branch_t bad = {"no-slash", tg.confirm, tg.cancel, "", 0};
    trellis_options_t o = itest_options();
    assert_int_equal(trellis_async_tcc_run(c, "am-2", &o, &bad, 1, tally_cb,
                                           tally_tag(ta, tags)),
                     TRELLIS_OK);
    assert_int_equal(trellis_async_call_unary(c, tg.try_, "NoSlash", NULL, 0,
                                              NULL, NULL, 0, 0, tally_cb,
                                              tally_tag(ta, tags)),
                     TRELLIS_OK);
    assert_int_equal(ta->done, 0);
    tally_poll(c, ta);
    trellis_client_free(c);
    assert_once_each(ta);
    assert_int_equal(ta->rc[0], TRELLIS_INVALID_ARGUMENT);
    assert_non_null(strstr(ta->msg[0], "gid is NULL"));
    /* the run checks every target before it sends anything: branch 0's
     * is refused, nothing was begun, so nothing needed an abort */
    assert_int_equal(ta->rc[1], TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(ta->branch[1], 0);
    assert_non_null(strstr(ta->msg[1], "no-slash"));
    assert_int_equal(ta->status[1], TRELLIS_TRANS_UNSPECIFIED);
    assert_int_equal(ta->rc[2], TRELLIS_INVALID_ARGUMENT);
    tally_free(ta);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_one_thread_many_transactions,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_callbacks_start_calls, itest_teardown),
        cmocka_unit_test_teardown(test_run_reports_the_failed_branch,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_tm_killed_mid_flight, itest_teardown),
        cmocka_unit_test_teardown(
            test_begin_with_branches_killed_before_durable, itest_teardown),
        cmocka_unit_test_teardown(test_begin_with_branches_killed_unanswered,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_freed_in_flight_thread, itest_teardown),
        cmocka_unit_test_teardown(test_freed_in_flight_poll, itest_teardown),
        cmocka_unit_test_teardown(test_trace_context_goes_along,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_misuse, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
