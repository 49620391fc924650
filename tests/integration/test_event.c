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
 */
#include "itest.h"

#include <stdio.h>
#include <string.h>

#include "trellis/trellis_msg.h"

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

/* Submit a saga of the scripts with the listeners; its status. */
static trellis_trans_status_t run_saga(itest_t *t, const char *gid,
                                       const char *const *scripts, size_t n,
                                       const char *const *listeners,
                                       size_t n_listeners)
{
    trellis_options_t o = itest_options();
    o.listeners = listeners;
    o.n_listeners = n_listeners;
    trellis_saga_t *s = itest_saga(t, gid, scripts, n, &o);
    trellis_trans_status_t st = itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    return st;
}

/* The listener's calls for gid's event branch: exactly one took effect,
 * with status want, and every other one was a retry (no effect) or a
 * duplicate. Returns how many calls came. */
static int assert_told_once(listener_t *l, const char *gid, const char *branch,
                            const char *want)
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
        assert_string_equal(c->dtm_op, "notify");
        assert_string_equal(c->trans_type, "event");
    }
    harness_part_state_free(&ps);
    return calls;
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
 * every step was delivered. */
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
    trellis_msg_set_options(m, &o);
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    assert_int_equal(
        trellis_msg_send(t->client, m, 1, &st, NULL, 0, err, sizeof err),
        TRELLIS_OK);
    trellis_msg_free(m);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_final(t, "ev-msg", TRELLIS_TRANS_SUCCEEDED);
    assert_told_once(&l, "ev-msg", "ev1", "SUCCEEDED");
    itest_pass(state);
}

/* The listener holds the notify; trellisd is killed -9 meanwhile. The
 * held call then takes effect (its answer lost); the restarted trellisd
 * tells the listener again, which sees a duplicate. The waiter heard the
 * outcome before any of this. */
static void test_crash_while_telling(void **state)
{
    itest_t *t = itest_start(state, "event_crash", NULL);
    listener_t l;
    listener_start(t, &l, "listener", "hold");
    const char *one[] = {l.target};
    const char *ok[] = {""};
    assert_int_equal(run_saga(t, "ev-crash", ok, 1, one, 1),
                     TRELLIS_TRANS_SUCCEEDED);
    itest_control(harness_server_addr(l.srv), NULL, 0, "wait-held %s 1 %d",
                  "ev-crash", ITEST_FINAL_TIMEOUT_MS);
    trellis_trans_info_t *info = itest_query(t, "ev-crash");
    assert_int_equal(info->status, TRELLIS_TRANS_SUBMITTED); /* telling */
    trellis_trans_info_free(info);
    assert_int_equal(harness_server_kill(t->tm), 0);
    itest_control(harness_server_addr(l.srv), NULL, 0, "release %s",
                  "ev-crash");
    assert_int_equal(harness_server_restart(t->tm), 0);
    itest_reconnect(t);
    assert_final(t, "ev-crash", TRELLIS_TRANS_SUCCEEDED);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_saga_success_and_failure,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_message_tells_listener, itest_teardown),
        cmocka_unit_test_teardown(test_crash_while_telling, itest_teardown),
        cmocka_unit_test_teardown(test_listener_down_then_back, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
