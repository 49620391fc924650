/*
 * test_event.c: completion listeners end to end (TransOptions.listeners,
 * tm/tm_kind_event.c), with a second trellis-testpart as the listener
 * (its Notify method, scripted by --notify-script, journaling each
 * event's status): a saga that succeeds and one that fails, a message,
 * each telling every listener exactly once in effect with the right
 * status; trellisd killed -9 while a notify is held at the listener,
 * after which the restarted trellisd tells it again (a duplicate behind
 * the listener's barrier, never a second effect); a listener down for a
 * while, told once it is back; trellisctl status showing the listeners.
 * Branch listeners (TransOptions.branch_listeners): one event per step
 * with the step's statuses, on success and on a failing saga with its
 * compensations; killed -9 while one is held, exactly one effect.
 * Batching listeners (TransOptions.listener_batch): events that end while
 * a call is out go together in the next; killed -9 with a batch held and
 * an event waiting, each event takes effect exactly once.
 */
#include "itest.h"

#include <stdio.h>
#include <string.h>

#include "trellis/trellis_msg.h"

/* TransOptions.listener_batch of the sagas run_saga_with submits. */
static uint32_t listener_batch;

typedef struct {
    harness_server_t *srv;
    char target[128]; /* ".../trellis.test.Part/Notify" */
} listener_t;

static void listener_start(itest_t *t, listener_t *l, const char *name,
                           const char *script)
{
    const char *args[] = {"--notify-script", script, NULL};
    l->srv = harness_testpart_start(t->h, name, args);
    assert_non_null(l->srv);
    snprintf(l->target, sizeof l->target, "%s/trellis.test.Part/Notify",
             harness_server_addr(l->srv));
}

/* Submit a saga of the scripts with the listeners and branch listeners;
 * its status. */
static trellis_trans_status_t
run_saga_with(itest_t *t, const char *gid, const char *const *scripts, size_t n,
              const char *const *listeners, size_t n_listeners,
              const char *const *branch_listeners, size_t n_branch_listeners)
{
    trellis_options_t o = itest_options();
    o.listeners = listeners;
    o.n_listeners = n_listeners;
    o.branch_listeners = branch_listeners;
    o.n_branch_listeners = n_branch_listeners;
    o.listener_batch = listener_batch;
    trellis_saga_t *s = itest_saga(t, gid, scripts, n, &o);
    trellis_trans_status_t st = itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    return st;
}

static trellis_trans_status_t run_saga(itest_t *t, const char *gid,
                                       const char *const *scripts, size_t n,
                                       const char *const *listeners,
                                       size_t n_listeners)
{
    return run_saga_with(t, gid, scripts, n, listeners, n_listeners, NULL, 0);
}

/* The listener's calls for gid's event branch: exactly one took effect,
 * with status want, and every other one was a retry (no effect) or a
 * duplicate. Returns how many calls came. */
static int assert_told_once_as(listener_t *l, const char *gid,
                               const char *branch, const char *want,
                               const char *trans_type)
{
    harness_part_state_t ps;
    assert_int_equal(harness_part_state(harness_server_addr(l->srv), gid, &ps),
                     0);
    int applied = harness_part_count(&ps, branch, "notify", "applied");
    int calls = harness_part_count(&ps, branch, "notify", NULL);
    int dups = harness_part_count(&ps, branch, "notify", "dup");
    int none = harness_part_count(&ps, branch, "notify", "none");
    if (applied != 1 || applied + dups + none != calls) {
        harness_part_state_dump(&ps);
        fail_msg("%s %s: %d applied of %d calls", gid, branch, applied, calls);
    }
    for (size_t i = 0; i < ps.n_calls; i++) {
        const harness_part_call_t *c = &ps.calls[i];
        if (strcmp(c->branch, branch) != 0)
            continue;
        assert_string_equal(c->event_status, want);
        assert_string_equal(c->dtm_op,
                            listener_batch ? "notify_batch" : "notify");
        assert_string_equal(c->trans_type, trans_type);
    }
    harness_part_state_free(&ps);
    return calls;
}

static int assert_told_once(listener_t *l, const char *gid, const char *branch,
                            const char *want)
{
    return assert_told_once_as(l, gid, branch, want, "event");
}

/* A branch listener's event for branch: told once, saying want ("F,P,S":
 * forward and phase-2 status, side; testpart.c). */
static int assert_branch_told(listener_t *l, const char *gid,
                              const char *branch, const char *want)
{
    return assert_told_once_as(l, gid, branch, want, "branch_event");
}

/* The transaction's final status once every listener was told. */
static void assert_final(itest_t *t, const char *gid,
                         trellis_trans_status_t want)
{
    trellis_trans_info_t *info = itest_wait_final(t, gid);
    assert_int_equal(info->status, want);
    trellis_trans_info_free(info);
}

static void test_saga_success_and_failure(void **state)
{
    itest_t *t = itest_start(state, "event_saga", NULL);
    listener_t l;
    listener_start(t, &l, "listener", "");
    const char *two[] = {l.target, l.target};
    const char *ok[] = {"", ""};
    assert_int_equal(run_saga(t, "ev-ok", ok, 2, two, 2),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_final(t, "ev-ok", TRELLIS_TRANS_SUCCEEDED);
    assert_told_once(&l, "ev-ok", "ev1", "SUCCEEDED");
    assert_told_once(&l, "ev-ok", "ev2", "SUCCEEDED");
    /* The steps were not disturbed: the saga's own participant saw two
     * actions, numbered 01 and 02 as without listeners. */
    harness_part_state_t ps;
    itest_part_state(t, "ev-ok", &ps);
    assert_int_equal(harness_part_count(&ps, "01", "action", "applied"), 1);
    assert_int_equal(harness_part_count(&ps, "02", "action", "applied"), 1);
    harness_part_state_free(&ps);

    const char *fails[] = {"", "fail"};
    assert_int_equal(run_saga(t, "ev-fail", fails, 2, two, 1),
                     TRELLIS_TRANS_FAILED);
    assert_final(t, "ev-fail", TRELLIS_TRANS_FAILED);
    assert_told_once(&l, "ev-fail", "ev1", "FAILED");

    char out[8192];
    assert_int_equal(itest_ctl(t, "status-ev",
                               (const char *[]){"status", "ev-ok", NULL}, out,
                               sizeof out),
                     0);
    if (!strstr(out, "listener  ") || !strstr(out, ": told (1 attempts)"))
        fail_msg("trellisctl status without its listeners:\n%s", out);
    itest_pass(state);
}

/* A message (no local transaction: sent decided) tells its listener once
 * every step was delivered, and its branch listener of the delivery. */
static void test_message_tells_listener(void **state)
{
    itest_t *t = itest_start(state, "event_msg", NULL);
    listener_t l;
    listener_start(t, &l, "listener", "");
    char err[256];
    trellis_msg_t *m = NULL;
    assert_int_equal(trellis_msg_new("ev-msg", &m, err, sizeof err),
                     TRELLIS_OK);
    assert_true(trellis_msg_add_step(m, t->action, "", 0, err, sizeof err) >=
                0);
    trellis_options_t o = itest_options();
    const char *one[] = {l.target};
    o.listeners = one;
    o.n_listeners = 1;
    o.branch_listeners = one;
    o.n_branch_listeners = 1;
    trellis_msg_set_options(m, &o);
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    assert_int_equal(
        trellis_msg_send(t->client, m, 1, &st, NULL, 0, err, sizeof err),
        TRELLIS_OK);
    trellis_msg_free(m);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_final(t, "ev-msg", TRELLIS_TRANS_SUCCEEDED);
    assert_told_once(&l, "ev-msg", "ev1", "SUCCEEDED");
    /* The delivery (branch 01; the message's head 00 is not reported) as
     * a branch event: delivered, no phase-2 op, committed. */
    assert_branch_told(&l, "ev-msg", "ev-01-1", "S,-,C");
    harness_part_state_t ps;
    assert_int_equal(
        harness_part_state(harness_server_addr(l.srv), "ev-msg", &ps), 0);
    assert_int_equal(harness_part_count(&ps, "ev-00-1", "notify", NULL), 0);
    harness_part_state_free(&ps);
    itest_pass(state);
}

/* A one-step saga gid whose listener (completion: 1; else a branch
 * listener) holds the notify; trellisd is killed -9 meanwhile, the held
 * call released (it takes effect, its answer lost) and trellisd
 * restarted; returns once the saga is final. The waiter heard the
 * outcome before any of this. */
static void crash_while_held(itest_t *t, listener_t *l, const char *gid,
                             int completion)
{
    listener_start(t, l, "listener", "hold");
    const char *one[] = {l->target};
    const char *ok[] = {""};
    assert_int_equal(run_saga_with(t, gid, ok, 1, completion ? one : NULL,
                                   completion ? 1 : 0, completion ? NULL : one,
                                   completion ? 0 : 1),
                     TRELLIS_TRANS_SUCCEEDED);
    itest_control(harness_server_addr(l->srv), NULL, 0, "wait-held %s 1 %d",
                  gid, ITEST_FINAL_TIMEOUT_MS);
    trellis_trans_info_t *info = itest_query(t, gid);
    assert_int_equal(info->status, TRELLIS_TRANS_SUBMITTED); /* telling */
    trellis_trans_info_free(info);
    assert_int_equal(harness_server_kill(t->tm), 0);
    itest_control(harness_server_addr(l->srv), NULL, 0, "release %s", gid);
    assert_int_equal(harness_server_restart(t->tm), 0);
    itest_reconnect(t);
    assert_final(t, gid, TRELLIS_TRANS_SUCCEEDED);
}

/* The listener holds the notify; trellisd is killed -9 meanwhile. The
 * held call then takes effect (its answer lost); the restarted trellisd
 * tells the listener again, which sees a duplicate. The waiter heard the
 * outcome before any of this. */
static void test_crash_while_telling(void **state)
{
    itest_t *t = itest_start(state, "event_crash", NULL);
    listener_t l;
    crash_while_held(t, &l, "ev-crash", 1);
    int calls = assert_told_once(&l, "ev-crash", "ev1", "SUCCEEDED");
    assert_true(calls >= 2); /* told again after the restart: a dup */
    itest_pass(state);
}

/* The listener answers UNAVAILABLE three times: told on the fourth call,
 * and only then is the transaction final. */
static void test_listener_down_then_back(void **state)
{
    itest_t *t = itest_start(state, "event_down", NULL);
    listener_t l;
    listener_start(t, &l, "listener", "unavail:3");
    const char *one[] = {l.target};
    const char *ok[] = {""};
    assert_int_equal(run_saga(t, "ev-down", ok, 1, one, 1),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_final(t, "ev-down", TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(assert_told_once(&l, "ev-down", "ev1", "SUCCEEDED"), 4);
    itest_pass(state);
}

/* A branch listener beside a completion listener: on success each step
 * is reported once, committed; on a failing saga the step that ran and
 * was compensated, the failed one (compensated too) and the one that
 * never ran (skipped), all on the rollback side. trellisctl status shows
 * them. */
static void test_branch_listener_saga(void **state)
{
    itest_t *t = itest_start(state, "event_branch", NULL);
    listener_t l;
    listener_start(t, &l, "listener", "");
    const char *one[] = {l.target};
    const char *ok[] = {"", ""};
    assert_int_equal(run_saga_with(t, "bev-ok", ok, 2, one, 1, one, 1),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_final(t, "bev-ok", TRELLIS_TRANS_SUCCEEDED);
    assert_branch_told(&l, "bev-ok", "ev-01-1", "S,-,C");
    assert_branch_told(&l, "bev-ok", "ev-02-1", "S,-,C");
    assert_told_once(&l, "bev-ok", "ev1", "SUCCEEDED");

    const char *fails[] = {"", "fail", ""};
    assert_int_equal(run_saga_with(t, "bev-fail", fails, 3, NULL, 0, one, 1),
                     TRELLIS_TRANS_FAILED);
    assert_final(t, "bev-fail", TRELLIS_TRANS_FAILED);
    assert_branch_told(&l, "bev-fail", "ev-01-1", "S,S,R");
    assert_branch_told(&l, "bev-fail", "ev-02-1", "F,S,R");
    assert_branch_told(&l, "bev-fail", "ev-03-1", "K,K,R");

    char out[8192];
    assert_int_equal(itest_ctl(t, "status-bev",
                               (const char *[]){"status", "bev-fail", NULL},
                               out, sizeof out),
                     0);
    if (!strstr(out, " about branch 03: told (1 attempts)"))
        fail_msg("trellisctl status without its branch events:\n%s", out);
    itest_pass(state);
}

/* The branch listener holds the step's event; trellisd is killed -9
 * meanwhile. The held call takes effect, its answer lost; the restarted
 * trellisd sends the event again, a duplicate: one effect. */
static void test_branch_listener_crash(void **state)
{
    itest_t *t = itest_start(state, "event_branch_crash", NULL);
    listener_t l;
    crash_while_held(t, &l, "bev-crash", 0);
    int calls = assert_branch_told(&l, "bev-crash", "ev-01-1", "S,-,C");
    assert_true(calls >= 2); /* sent again after the restart: a dup */
    itest_pass(state);
}

/* The batch (events in one call) the first call for gid's ev1 carried. */
static int batch_of(listener_t *l, const char *gid)
{
    harness_part_state_t ps;
    assert_int_equal(harness_part_state(harness_server_addr(l->srv), gid, &ps),
                     0);
    const harness_part_call_t *c = harness_part_find(&ps, "ev1", "notify", 0);
    assert_non_null(c);
    int n = c->batch;
    harness_part_state_free(&ps);
    return n;
}

static void release(listener_t *l, const char *gid)
{
    itest_control(harness_server_addr(l->srv), NULL, 0, "release %s", gid);
}

static void wait_held(listener_t *l, const char *gid)
{
    itest_control(harness_server_addr(l->srv), NULL, 0, "wait-held %s 1 %d",
                  gid, ITEST_FINAL_TIMEOUT_MS);
}

/* A batching listener (listener_batch 8) holds the call of the first
 * saga's event; two more sagas end meanwhile (their waiters answered) and
 * their events wait in trellisd, then go together in one call. Then the
 * crash: trellisd killed -9 while a batch is held and another event
 * waits; the held call takes effect, its answer lost; after the restart
 * every event is told exactly once in effect, the held one again as a
 * duplicate. */
static void test_batch_listener(void **state)
{
    itest_t *t = itest_start(state, "event_batch", NULL);
    listener_t l;
    listener_start(t, &l, "listener", "hold");
    listener_batch = 8;
    const char *one[] = {l.target};
    const char *ok[] = {""};
    assert_int_equal(run_saga(t, "bt-1", ok, 1, one, 1),
                     TRELLIS_TRANS_SUCCEEDED);
    wait_held(&l, "bt-1");
    assert_int_equal(run_saga(t, "bt-2", ok, 1, one, 1),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(run_saga(t, "bt-3", ok, 1, one, 1),
                     TRELLIS_TRANS_SUCCEEDED);
    release(&l, "bt-2");
    release(&l, "bt-3");
    release(&l, "bt-1");
    const char *gids[] = {"bt-1", "bt-2", "bt-3"};
    for (size_t i = 0; i < 3; i++) {
        assert_final(t, gids[i], TRELLIS_TRANS_SUCCEEDED);
        assert_int_equal(assert_told_once(&l, gids[i], "ev1", "SUCCEEDED"), 1);
        assert_int_equal(batch_of(&l, gids[i]), i == 0 ? 1 : 2);
    }

    assert_int_equal(run_saga(t, "bc-1", ok, 1, one, 1),
                     TRELLIS_TRANS_SUCCEEDED);
    wait_held(&l, "bc-1");
    assert_int_equal(run_saga(t, "bc-2", ok, 1, one, 1),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(harness_server_kill(t->tm), 0);
    release(&l, "bc-2");
    release(&l, "bc-1");
    assert_int_equal(harness_server_restart(t->tm), 0);
    itest_reconnect(t);
    assert_final(t, "bc-1", TRELLIS_TRANS_SUCCEEDED);
    assert_final(t, "bc-2", TRELLIS_TRANS_SUCCEEDED);
    assert_true(assert_told_once(&l, "bc-1", "ev1", "SUCCEEDED") >= 2);
    assert_told_once(&l, "bc-2", "ev1", "SUCCEEDED");
    listener_batch = 0;
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_saga_success_and_failure,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_message_tells_listener, itest_teardown),
        cmocka_unit_test_teardown(test_crash_while_telling, itest_teardown),
        cmocka_unit_test_teardown(test_listener_down_then_back, itest_teardown),
        cmocka_unit_test_teardown(test_branch_listener_saga, itest_teardown),
        cmocka_unit_test_teardown(test_branch_listener_crash, itest_teardown),
        cmocka_unit_test_teardown(test_batch_listener, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
