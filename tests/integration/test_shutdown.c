/*
 * test_shutdown.c: SIGTERM as an operator sends it (a deploy, a node
 * drained by its orchestrator), with real processes.
 *
 *  - Under load (many 3-step sagas in flight against a slow participant,
 *    more than can finish in the grace period): once the stop began, new
 *    transactions are refused UNAVAILABLE "shutting down" while requests
 *    for existing ones are served; trellisd exits 0 after the grace period
 *    with some transactions unfinished; after the restart every accepted
 *    transaction succeeds, and every action took effect exactly once (the
 *    scripted participant counts effects), none compensated.
 *  - Light load within the grace period: everything finishes before the
 *    exit, so the restart recovers nothing.
 */
#include "itest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define N_SAGAS 100
#define MAX_GIDS (N_SAGAS + 64)

typedef struct {
    char gids[MAX_GIDS][32];
    size_t n;
} accepted_t;

/* Submit a 3-step saga (each action sleeps slow_ms) without waiting.
 * Returns the rc; err the message. */
static trellis_rc_t submit_slow(itest_t *t, const char *gid, int slow_ms,
                                char *err, size_t errlen)
{
    char payload[32];
    snprintf(payload, sizeof payload, "slow:%d", slow_ms);
    const char *p[] = {payload, payload, payload};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    /* Calls queue at the participant's 16 threads: no deadline should
     * expire while they wait (that would only add backoff to the test). */
    o.request_timeout_ms = 20000;
    trellis_saga_t *s = itest_saga(t, gid, p, 3, &o);
    trellis_trans_status_t st;
    trellis_rc_t rc =
        trellis_saga_submit(t->client, s, &st, NULL, 0, err, errlen);
    trellis_saga_free(s);
    return rc;
}

static const char *log_of(itest_t *t)
{
    static char buf[1 << 20];
    FILE *f = fopen(harness_proc_log(harness_server_proc(t->tm)), "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The number after the last "key=" in the log, or -1. */
static long last_value(const char *log, const char *key)
{
    const char *p = NULL;
    for (const char *q = strstr(log, key); q; q = strstr(q + 1, key))
        p = q;
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Wait until trellisd's log holds n "event=ready" lines (the line follows
 * the port file the harness waits for), then the last recovered= count. */
static long recovered_at_ready(itest_t *t, int n)
{
    int64_t deadline = harness_mono_ms() + 10000;
    for (;;) {
        const char *log = log_of(t);
        int seen = 0;
        for (const char *q = strstr(log, "event=ready"); q;
             q = strstr(q + 1, "event=ready"))
            seen++;
        if (seen >= n)
            return last_value(log, "recovered=");
        if (harness_mono_ms() > deadline)
            fail_msg("trellisd logged %d ready lines, want %d", seen, n);
        harness_sleep_ms(20);
    }
}

/* Every accepted saga succeeded, each action applied exactly once, no
 * compensation ran. */
static void assert_all_exactly_once(itest_t *t, const accepted_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        trellis_trans_info_t *info = itest_wait_final(t, a->gids[i]);
        if (info->status != TRELLIS_TRANS_SUCCEEDED)
            fail_msg("%s ended %s: %s", a->gids[i],
                     trellis_trans_status_name(info->status), info->reason);
        harness_part_state_t s;
        itest_part_state(t, a->gids[i], &s);
        for (int step = 0; step < 3; step++) {
            int applied = itest_count(info, &s, step, "action", "applied");
            if (applied != 1) {
                harness_part_state_dump(&s);
                fail_msg("%s step %d: action applied %d times", a->gids[i],
                         step, applied);
            }
        }
        assert_int_equal(itest_count(info, &s, 0, "compensate", NULL) +
                             itest_count(info, &s, 1, "compensate", NULL) +
                             itest_count(info, &s, 2, "compensate", NULL),
                         0);
        assert_int_equal(s.n_net, 3);
        harness_part_state_free(&s);
        trellis_trans_info_free(info);
    }
}

static void test_sigterm_under_load_loses_nothing(void **state)
{
    /* 100 sagas x 3 actions x 250 ms on 16 participant threads: about
     * 4.7 s of work, more than the 2 s grace period. */
    const char *args[] = {"--shutdown-grace-ms", "2000", NULL};
    itest_t *t = itest_start(state, "shutdown-load", args);
    static accepted_t a;
    a.n = 0;
    char err[1024];
    for (int i = 0; i < N_SAGAS; i++) {
        snprintf(a.gids[a.n], sizeof a.gids[0], "load-%03d", i);
        trellis_rc_t rc = submit_slow(t, a.gids[a.n], 250, err, sizeof err);
        if (rc != TRELLIS_OK)
            fail_msg("submit %s: rc %d: %s", a.gids[a.n], rc, err);
        a.n++;
    }
    harness_proc_t *tm = harness_server_proc(t->tm);
    assert_int_equal(harness_proc_signal(tm, SIGTERM), 0);

    /* New work is refused once the stop began; until the signal is seen a
     * probe may still be accepted, and then it must finish like the rest. */
    trellis_rc_t rc = TRELLIS_OK;
    for (int i = 0; rc == TRELLIS_OK; i++) {
        assert_true(i < 64);
        snprintf(a.gids[a.n], sizeof a.gids[0], "probe-%02d", i);
        rc = submit_slow(t, a.gids[a.n], 1, err, sizeof err);
        if (rc == TRELLIS_OK)
            a.n++;
    }
    if (rc != TRELLIS_UNAVAILABLE || !strstr(err, "shutting down"))
        fail_msg("submit during the stop: rc %d (%s), want UNAVAILABLE "
                 "\"shutting down\"",
                 rc, err);
    trellis_options_t o = itest_options();
    rc = trellis_begin(t->client, "probe-begin", &o, err, sizeof err);
    if (rc != TRELLIS_UNAVAILABLE || !strstr(err, "shutting down"))
        fail_msg("begin during the stop: rc %d (%s)", rc, err);
    /* An existing transaction is still served. */
    trellis_trans_info_t *info = itest_query(t, "load-099");
    assert_int_equal(info->n_branches, 3);
    trellis_trans_info_free(info);

    int status = 0;
    assert_int_equal(harness_proc_wait(tm, 15000, &status), 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("trellisd ended with wait status 0x%x, want exit 0",
                 (unsigned)status);
    const char *log = log_of(t);
    long unfinished = last_value(log, "event=drained unfinished=");
    if (unfinished <= 0)
        fail_msg("trellisd left %ld unfinished: the load did not outlast "
                 "the grace period, so the restart path went untested",
                 unfinished);

    assert_int_equal(harness_server_restart(t->tm), 0);
    /* Some may still have finished between the drain and the exit. */
    long recovered = recovered_at_ready(t, 2);
    if (recovered < 1 || recovered > unfinished)
        fail_msg("recovered %ld after %ld were left unfinished", recovered,
                 unfinished);
    assert_all_exactly_once(t, &a);
    itest_pass(state);
}

static void test_sigterm_finishes_light_load(void **state)
{
    const char *args[] = {"--shutdown-grace-ms", "20000", NULL};
    itest_t *t = itest_start(state, "shutdown-light", args);
    static accepted_t a;
    a.n = 0;
    char err[1024];
    for (int i = 0; i < 5; i++) {
        snprintf(a.gids[a.n], sizeof a.gids[0], "light-%d", i);
        trellis_rc_t rc = submit_slow(t, a.gids[a.n], 200, err, sizeof err);
        if (rc != TRELLIS_OK)
            fail_msg("submit: rc %d: %s", rc, err);
        a.n++;
    }
    harness_proc_t *tm = harness_server_proc(t->tm);
    assert_int_equal(harness_proc_signal(tm, SIGTERM), 0);
    int status = 0;
    assert_int_equal(harness_proc_wait(tm, 25000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(last_value(log_of(t), "event=drained unfinished="), 0);

    assert_int_equal(harness_server_restart(t->tm), 0);
    assert_int_equal(recovered_at_ready(t, 2), 0);
    assert_all_exactly_once(t, &a);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sigterm_under_load_loses_nothing,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_sigterm_finishes_light_load,
                                  itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
