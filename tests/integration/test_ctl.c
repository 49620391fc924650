/*
 * test_ctl.c: trellisctl as an operator runs it — the built binary as a
 * process against a real trellisd and trellis-testpart: status of a
 * succeeded and a failed saga (readable and --json), list filtered by
 * status, abort of a begun transaction, an unknown gid (exit 1) and a bad
 * command (exit 2); retry-now making a backed-off op run at once with its
 * backoff reset; force-stop of a transaction stuck in compensation (no
 * call after it, still ended after kill -9 and restart) and of one with a
 * call on the wire (its late result ignored); list filtered by age and
 * status and paged (--limit, --page-token, --all); log-level changing what
 * trellisd logs, and --log-format json lines.
 *
 * Each run goes through harness_run, which writes the child's stdout and
 * stderr to one log in the scratch dir (one log per run, unique names);
 * the checks read that log without its harness header line. Trade-off:
 * the test sees what the operator sees on the terminal, not which stream a
 * line went to.
 */
#include "itest.h"
#include "trellis/trellis_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_has(const char *out, const char *want)
{
    if (!strstr(out, want))
        fail_msg("output lacks \"%s\":\n%s", want, out);
}

/* Minimal JSON check: one object, braces and brackets balanced outside
 * strings, nothing after the closing brace but a newline. */
static void assert_json_object(const char *s)
{
    int depth = 0, in_str = 0;
    assert_int_equal(s[0], '{');
    for (const char *p = s; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_str = 0;
            continue;
        }
        if (*p == '"')
            in_str = 1;
        else if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']')
            depth--;
        assert_true(depth >= 0);
        if (depth == 0 && p != s)
            assert_string_equal(p + 1, "\n");
        if (depth == 0)
            return;
    }
    fail_msg("unbalanced JSON: %s", s);
}

static void run_saga(itest_t *t, const char *gid, const char *script,
                     trellis_trans_status_t want)
{
    const char *payloads[] = {"ok", script};
    trellis_saga_t *s = itest_saga(t, gid, payloads, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), want);
    trellis_saga_free(s);
}

static void test_status_and_list(void **state)
{
    itest_t *t = itest_start(state, "ctl_status", NULL);
    run_saga(t, "ctl-ok", "ok", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "ctl-fail", "fail", TRELLIS_TRANS_FAILED);
    char out[16384];

    assert_int_equal(itest_ctl(t, "status-ok",
                               (const char *[]){"status", "ctl-ok", NULL}, out,
                               sizeof out),
                     0);
    assert_has(out, "ctl-ok");
    assert_has(out, "status    succeeded");
    assert_has(out, "action     succeeded");

    assert_int_equal(
        itest_ctl(t, "status-fail-json",
                  (const char *[]){"--json", "status", "ctl-fail", NULL}, out,
                  sizeof out),
        0);
    assert_json_object(out);
    assert_has(out, "\"gid\":\"ctl-fail\"");
    assert_has(out, "\"status\":\"failed\"");
    assert_has(out, "\"kind\":\"compensate\"");
    assert_has(out, "\"status\":\"succeeded\""); /* step 0's action */

    assert_int_equal(
        itest_ctl(t, "status-ok-json",
                  (const char *[]){"status", "ctl-ok", "--json", NULL}, out,
                  sizeof out),
        0);
    assert_json_object(out);
    assert_has(out, "{\"gid\":\"ctl-ok\",\"status\":\"succeeded\"");

    assert_int_equal(
        itest_ctl(t, "list-failed",
                  (const char *[]){"list", "--status", "failed", NULL}, out,
                  sizeof out),
        0);
    assert_has(out, "ctl-fail");
    assert_null(strstr(out, "ctl-ok"));

    assert_int_equal(
        itest_ctl(t, "list-json",
                  (const char *[]){"--json", "list", "--limit", "1", NULL}, out,
                  sizeof out),
        0);
    assert_json_object(out);
    assert_has(out, "\"gid\":\"ctl-ok\"");
    assert_null(strstr(out, "ctl-fail"));
    assert_null(strstr(out, "\"next_page_token\":\"\"")); /* more to come */
    itest_pass(state);
}

static void test_abort_and_errors(void **state)
{
    itest_t *t = itest_start(state, "ctl_abort", NULL);
    trellis_options_t o = itest_options();
    char err[256], out[16384];
    assert_int_equal(trellis_begin(t->client, "ctl-begun", &o, err, sizeof err),
                     TRELLIS_OK);

    assert_int_equal(
        itest_ctl(t, "abort",
                  (const char *[]){"abort", "ctl-begun", "--reason",
                                   "operator said so", NULL},
                  out, sizeof out),
        0);
    if (!strstr(out, "ctl-begun failed") && !strstr(out, "ctl-begun aborting"))
        fail_msg("abort printed: %s", out);
    trellis_trans_info_free(itest_wait_final(t, "ctl-begun"));
    assert_int_equal(itest_ctl(t, "status-aborted",
                               (const char *[]){"status", "ctl-begun", NULL},
                               out, sizeof out),
                     0);
    assert_has(out, "status    failed");
    assert_has(out, "operator said so");

    assert_int_equal(itest_ctl(t, "status-unknown",
                               (const char *[]){"status", "no-such-gid", NULL},
                               out, sizeof out),
                     1);
    assert_has(out, "no-such-gid");

    assert_int_equal(itest_ctl(t, "bad-command",
                               (const char *[]){"frobnicate", NULL}, out,
                               sizeof out),
                     2);
    assert_has(out, "unknown command");
    assert_has(out, "usage: trellisctl");

    assert_int_equal(itest_ctl(t, "bad-flag",
                               (const char *[]){"list", "--bogus", NULL}, out,
                               sizeof out),
                     2);
    assert_int_equal(
        itest_ctl(t, "help", (const char *[]){"--help", NULL}, out, sizeof out),
        0);
    assert_has(out, "retry-now");
    assert_has(out, "force-stop GID --reason TEXT");
    assert_has(out, "log-level");
    assert_null(strstr(out, "coming"));
    itest_pass(state);
}

/* ---- helpers for the operator commands ---------------------------------- */

/* trellisd's log (stdout and stderr) so far, into out[outlen]. */
static void read_tm_log(itest_t *t, char *out, size_t outlen)
{
    const char *path = harness_proc_log(harness_server_proc(t->tm));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(out, 1, outlen - 1, f);
    out[got] = '\0';
    fclose(f);
}

/* Poll trellisd's log until it contains want (asserts within 10 s). */
static void wait_tm_log(itest_t *t, const char *want)
{
    static char log[1 << 20];
    int64_t deadline = harness_mono_ms() + 10000;
    for (;;) {
        read_tm_log(t, log, sizeof log);
        if (strstr(log, want))
            return;
        if (harness_mono_ms() > deadline)
            fail_msg("trellisd's log lacks \"%s\"", want);
        harness_sleep_ms(20);
    }
}

/* How many "event=ready" lines trellisd logged: one per start. */
static int ready_lines(itest_t *t)
{
    static char log[1 << 20];
    read_tm_log(t, log, sizeof log);
    int n = 0;
    for (const char *p = log; (p = strstr(p, "event=ready ")); p++)
        n++;
    return n;
}

/* Wait (10 s at most) for trellisd's ready line number nth (from 1) and
 * return its recovered=N: how many unfinished transactions that start
 * loaded and drove. The line comes just after the port file. */
static long ready_recovered(itest_t *t, int nth)
{
    static char log[1 << 20];
    int64_t deadline = harness_mono_ms() + 10000;
    while (ready_lines(t) < nth) {
        if (harness_mono_ms() > deadline)
            fail_msg("trellisd logged no ready line number %d", nth);
        harness_sleep_ms(20);
    }
    read_tm_log(t, log, sizeof log);
    const char *line = log;
    for (int i = 0; i < nth; i++)
        line = strstr(i ? line + 1 : line, "event=ready ");
    const char *r = strstr(line, " recovered=");
    if (!r || r > line + strcspn(line, "\n"))
        fail_msg("trellisd's ready line has no recovered=N");
    return strtol(r + strlen(" recovered="), NULL, 10);
}

static int tm_log_has(itest_t *t, const char *want)
{
    static char log[1 << 20];
    read_tm_log(t, log, sizeof log);
    return strstr(log, want) != NULL;
}

/* Submit a saga of n steps without waiting for the outcome. */
static void submit_nowait(itest_t *t, const char *gid,
                          const char *const *payloads, size_t n,
                          trellis_options_t o)
{
    o.wait_result = 0;
    trellis_saga_t *s = itest_saga(t, gid, payloads, n, &o);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUBMITTED);
    trellis_saga_free(s);
}

/* Calls of gid's step 0 op so far, from the participant's journal. */
static int part_calls(itest_t *t, const char *gid, const char *op)
{
    harness_part_state_t s;
    itest_part_state(t, gid, &s);
    int n = harness_part_count(&s, "01", op, NULL);
    harness_part_state_free(&s);
    return n;
}

static void wait_part_calls(itest_t *t, const char *gid, const char *op, int n)
{
    int64_t deadline = harness_mono_ms() + ITEST_FINAL_TIMEOUT_MS;
    while (part_calls(t, gid, op) < n) {
        if (harness_mono_ms() > deadline)
            fail_msg("%s: fewer than %d %s calls", gid, n, op);
        harness_sleep_ms(20);
    }
}

/* ---- retry-now ------------------------------------------------------------
 */

/* An action answers UNAVAILABLE three times; with a 1.5 s retry interval
 * the third call would come 3 s after the second. retry-now right after
 * the second call makes it come at once, and resets the backoff: the
 * fourth call then follows 1.5 s after the third, not 6 s. */
static void test_retry_now(void **state)
{
    static const char *const debug[] = {"--log-level", "debug", NULL};
    itest_t *t = itest_start(state, "ctl_retry_now", debug);
    trellis_options_t o = itest_options();
    o.retry_interval_ms = 1500;
    const char *payloads[] = {"unavail:3"};
    submit_nowait(t, "ctl-retry", payloads, 1, o);
    /* trellisd has taken the second answer: it logs call_result holding
     * the transaction's lock and arms the retry timer before letting go,
     * and retry-now takes that lock, so it finds the op waiting. */
    wait_tm_log(t, "event=call_result gid=ctl-retry branch=01 op=action "
                   "attempt=2 ");
    char out[16384];
    assert_int_equal(itest_ctl(t, "retry-now",
                               (const char *[]){"retry-now", "ctl-retry", NULL},
                               out, sizeof out),
                     0);
    assert_has(out, "ctl-retry submitted: 1 op(s)");
    trellis_trans_info_free(itest_wait_final(t, "ctl-retry"));

    harness_part_state_t s;
    itest_part_state(t, "ctl-retry", &s);
    assert_int_equal(harness_part_count(&s, "01", "action", NULL), 4);
    const harness_part_call_t *c2 = harness_part_find(&s, "01", "action", 1);
    const harness_part_call_t *c3 = harness_part_find(&s, "01", "action", 2);
    const harness_part_call_t *c4 = harness_part_find(&s, "01", "action", 3);
    int64_t gap3 = c3->start_ms - c2->start_ms;
    int64_t gap4 = c4->start_ms - c3->start_ms;
    fprintf(stderr, "gaps: 2->3 %lld ms (due 3000), 3->4 %lld ms (due 1500)\n",
            (long long)gap3, (long long)gap4);
    assert_true(gap3 < 1500);
    assert_true(gap4 >= 1200 && gap4 < 3000);
    harness_part_state_free(&s);

    assert_int_equal(itest_ctl(t, "retry-now-finished",
                               (const char *[]){"retry-now", "ctl-retry", NULL},
                               out, sizeof out),
                     1);
    assert_has(out, "is finished; there is nothing to retry");
    assert_int_equal(
        itest_ctl(t, "retry-now-json",
                  (const char *[]){"--json", "retry-now", "no-such", NULL}, out,
                  sizeof out),
        1);
    assert_has(out, "no transaction with gid no-such");
    itest_pass(state);
}

/* ---- force-stop ------------------------------------------------------------
 */

static const char *const fast_backoff[] = {"--max-backoff-ms", "100", NULL};

/* Step 2 fails, so step 1 is compensated — and its compensation answers
 * ABORTED for ever: a transaction that can never finish. force-stop ends
 * it (failed, with the operator's reason, stored before the answer),
 * trellisd calls nothing more, and after a kill -9 and restart it is still
 * ended and nothing is called. */
static void test_force_stop(void **state)
{
    itest_t *t = itest_start(state, "ctl_force_stop", fast_backoff);
    const char *payloads[] = {"ok;compensate=fail", "fail"};
    submit_nowait(t, "ctl-stuck", payloads, 2, itest_options());
    wait_part_calls(t, "ctl-stuck", "compensate", 3);
    char out[16384];

    assert_int_equal(
        itest_ctl(t, "force-stop-no-reason",
                  (const char *[]){"force-stop", "ctl-stuck", NULL}, out,
                  sizeof out),
        2);
    assert_has(out, "--reason");
    assert_int_equal(
        itest_ctl(t, "force-stop",
                  (const char *[]){"force-stop", "ctl-stuck", "--reason",
                                   "refund done by hand", NULL},
                  out, sizeof out),
        0);
    assert_has(out, "ctl-stuck failed: force-stopped by operator: refund "
                    "done by hand");
    assert_has(out, "left unfinished");
    assert_has(out, "branch 01 compensate");

    /* No call after the answer: at most one was on the wire then. What is
     * checked is an absence, so this is an observation window, not a wait
     * for a state: 1 s is ~10 retries' worth at the 100 ms backoff the
     * calls came at until now, so a trellisd that kept calling shows
     * several more calls in it. */
    int calls = part_calls(t, "ctl-stuck", "compensate");
    harness_sleep_ms(1000);
    assert_true(part_calls(t, "ctl-stuck", "compensate") <= calls + 1);
    calls = part_calls(t, "ctl-stuck", "compensate");

    /* trellisd loads and drives what is unfinished before it serves (and
     * writes its port file), and says in its ready line how many: none,
     * so nothing of ctl-stuck is driven again. */
    int starts = ready_lines(t);
    assert_int_equal(harness_server_crash_restart(t->tm), 0);
    long recovered = ready_recovered(t, starts + 1);
    if (recovered != 0)
        fail_msg("the restarted trellisd loaded %ld unfinished "
                 "transaction(s); the force-stopped one must stay ended",
                 recovered);
    assert_int_equal(part_calls(t, "ctl-stuck", "compensate"), calls);
    assert_int_equal(itest_ctl(t, "status-after-restart",
                               (const char *[]){"status", "ctl-stuck", NULL},
                               out, sizeof out),
                     0);
    assert_has(out, "status    failed");
    assert_has(out, "reason    force-stopped by operator: refund done by hand");
    assert_has(out, "compensate skipped");
    assert_has(out, "last error: participant answered ABORTED");

    /* Again: the same answer. On a transaction that finished by itself: no. */
    assert_int_equal(
        itest_ctl(t, "force-stop-again",
                  (const char *[]){"--json", "force-stop", "ctl-stuck",
                                   "--reason", "again", NULL},
                  out, sizeof out),
        0);
    assert_json_object(out);
    assert_has(out, "\"reason\":\"force-stopped by operator: refund done by "
                    "hand\"");
    run_saga(t, "ctl-done", "ok", TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(itest_ctl(t, "force-stop-done",
                               (const char *[]){"force-stop", "ctl-done",
                                                "--reason", "x", NULL},
                               out, sizeof out),
                     1);
    assert_has(out, "already succeeded");
    itest_pass(state);
}

static int action_attempted(void *arg)
{
    itest_t *t = ((void **)arg)[0];
    trellis_trans_info_t *info = itest_query(t, ((void **)arg)[1]);
    int yes = info->n_branches > 0 && info->branches[0].ops[0].attempts > 0;
    trellis_trans_info_free(info);
    return yes;
}

/* Force-stop while the action is on the wire: its success, arriving
 * later, is ignored — the op stays skipped and the transaction failed. The
 * participant applied it, which the output lists for the operator. */
static void test_force_stop_late_result(void **state)
{
    itest_t *t = itest_start(state, "ctl_force_stop_late", NULL);
    trellis_options_t o = itest_options();
    o.request_timeout_ms = 5000;
    const char *payloads[] = {"hang:1500"};
    submit_nowait(t, "ctl-late", payloads, 1, o);
    void *args[] = {t, "ctl-late"};
    assert_true(harness_poll(action_attempted, args, 5000, 20));
    char out[16384];
    assert_int_equal(
        itest_ctl(t, "force-stop",
                  (const char *[]){"--json", "force-stop", "ctl-late",
                                   "--reason", "hangs", NULL},
                  out, sizeof out),
        0);
    assert_json_object(out);
    assert_has(out, "\"status\":\"failed\"");
    assert_has(out, "\"unfinished\":[{\"branch\":\"01\",\"op\":\"action\"");
    wait_part_calls(t, "ctl-late", "action", 1);
    wait_tm_log(t, "event=late_result_ignored gid=ctl-late branch=01 "
                   "op=action");
    trellis_trans_info_t *info = itest_query(t, "ctl-late");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_int_equal(info->branches[0].ops[0].status, TRELLIS_OP_SKIPPED);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- list: filters and paging ---------------------------------------------
 */

/* The offset of want in out (asserted present). */
static size_t pos_of(const char *out, const char *want)
{
    const char *p = strstr(out, want);
    if (!p)
        fail_msg("output lacks \"%s\":\n%s", want, out);
    return (size_t)(p - out);
}

/* 1 when gid (args: itest_t *, gid) was created more than 1.1 s ago by the
 * clock trellisd stamps created_ms with. */
static int created_over_1100_ms_ago(void *arg)
{
    itest_t *t = ((void **)arg)[0];
    trellis_trans_info_t *info = itest_query(t, ((void **)arg)[1]);
    int yes = harness_now_ms() - info->created_ms > 1100;
    trellis_trans_info_free(info);
    return yes;
}

static void test_list_filters(void **state)
{
    itest_t *t = itest_start(state, "ctl_list", NULL);
    run_saga(t, "l-a", "ok", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "l-b", "ok", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "l-c", "ok", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "l-d", "fail", TRELLIS_TRANS_FAILED);
    /* --older-than and --newer-than compare created times with trellisd's
     * wall clock: wait until l-d, by its stored stamp, is past 1 s old. */
    void *args[] = {t, "l-d"};
    if (!harness_poll(created_over_1100_ms_ago, args, 10000, 20))
        fail_msg("l-d never got 1.1 s old by its created_ms");
    run_saga(t, "l-e", "ok", TRELLIS_TRANS_SUCCEEDED);
    char out[16384], token[256];

    assert_int_equal(itest_ctl(t, "page1",
                               (const char *[]){"list", "--limit", "2", NULL},
                               out, sizeof out),
                     0);
    assert_true(pos_of(out, "l-a ") < pos_of(out, "l-b "));
    assert_null(strstr(out, "l-c"));
    const char *tok = out + pos_of(out, "next page: --page-token ") + 24;
    size_t tl = strcspn(tok, "\n");
    assert_true(tl > 0 && tl < sizeof token);
    memcpy(token, tok, tl);
    token[tl] = '\0';

    assert_int_equal(itest_ctl(t, "page2",
                               (const char *[]){"list", "--limit", "2",
                                                "--page-token", token, NULL},
                               out, sizeof out),
                     0);
    assert_true(pos_of(out, "l-c ") < pos_of(out, "l-d "));
    assert_null(strstr(out, "l-a"));
    assert_null(strstr(out, "l-e"));

    assert_int_equal(itest_ctl(t, "all-json",
                               (const char *[]){"--json", "list", "--all",
                                                "--limit", "2", NULL},
                               out, sizeof out),
                     0);
    assert_json_object(out);
    assert_true(pos_of(out, "\"l-a\"") < pos_of(out, "\"l-b\""));
    assert_true(pos_of(out, "\"l-b\"") < pos_of(out, "\"l-c\""));
    assert_true(pos_of(out, "\"l-c\"") < pos_of(out, "\"l-d\""));
    assert_true(pos_of(out, "\"l-d\"") < pos_of(out, "\"l-e\""));
    assert_has(out, "\"next_page_token\":\"\"}");

    assert_int_equal(
        itest_ctl(t, "older",
                  (const char *[]){"list", "--older-than", "1s", "--all", NULL},
                  out, sizeof out),
        0);
    pos_of(out, "l-a ");
    pos_of(out, "l-d ");
    assert_null(strstr(out, "l-e"));

    assert_int_equal(
        itest_ctl(t, "newer",
                  (const char *[]){"list", "--newer-than", "1s", NULL}, out,
                  sizeof out),
        0);
    pos_of(out, "l-e ");
    assert_null(strstr(out, "l-a"));
    assert_null(strstr(out, "l-d"));

    assert_int_equal(itest_ctl(t, "older-failed",
                               (const char *[]){"list", "--status", "failed",
                                                "--older-than", "1s", NULL},
                               out, sizeof out),
                     0);
    pos_of(out, "l-d ");
    assert_null(strstr(out, "l-a"));

    assert_int_equal(
        itest_ctl(t, "bad-duration",
                  (const char *[]){"list", "--older-than", "soon", NULL}, out,
                  sizeof out),
        2);
    itest_pass(state);
}

/* ---- log-level -------------------------------------------------------------
 */

/* At info, branch calls are not logged; after `log-level debug` each call
 * is one line naming gid and branch; after `log-level warn` even a
 * rollback (info) is not. */
static void test_log_level(void **state)
{
    itest_t *t = itest_start(state, "ctl_log_level", NULL);
    char out[16384];
    run_saga(t, "log-info", "ok", TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(itest_ctl(t, "level-read",
                               (const char *[]){"log-level", NULL}, out,
                               sizeof out),
                     0);
    assert_has(out, "log level info");
    assert_int_equal(itest_ctl(t, "level-debug",
                               (const char *[]){"log-level", "debug", NULL},
                               out, sizeof out),
                     0);
    assert_has(out, "log level debug (was info)");
    run_saga(t, "log-debug", "ok", TRELLIS_TRANS_SUCCEEDED);
    wait_tm_log(t, "event=call_result gid=log-debug branch=01 op=action");
    wait_tm_log(t, "event=call_result gid=log-debug branch=02 op=action");
    wait_tm_log(t, "event=finished gid=log-debug");
    /* Lines about log-info would have come before those. */
    assert_false(tm_log_has(t, "gid=log-info"));

    assert_int_equal(
        itest_ctl(t, "level-warn",
                  (const char *[]){"--json", "log-level", "warn", NULL}, out,
                  sizeof out),
        0);
    assert_has(out, "{\"level\":\"warn\",\"previous\":\"debug\"}");
    run_saga(t, "log-warn", "fail", TRELLIS_TRANS_FAILED);
    assert_int_equal(itest_ctl(t, "level-info",
                               (const char *[]){"log-level", "info", NULL}, out,
                               sizeof out),
                     0);
    wait_tm_log(t, "event=log_level_changed from=warn to=info");
    assert_false(tm_log_has(t, "gid=log-warn"));
    run_saga(t, "log-info2", "fail", TRELLIS_TRANS_FAILED);
    wait_tm_log(t, "event=rollback gid=log-info2 reason=\"branch 02 action "
                   "failed");

    assert_int_equal(itest_ctl(t, "level-bad",
                               (const char *[]){"log-level", "loud", NULL}, out,
                               sizeof out),
                     1);
    assert_has(out, "debug, info, warn or error");
    itest_pass(state);
}

/* Every line trellisd logs under --log-format json is one JSON object
 * (checked with the same minimal checker), gid and branch as strings. */
static void test_log_json(void **state)
{
    static const char *const json_args[] = {"--log-format", "json",
                                            "--log-level", "debug", NULL};
    itest_t *t = itest_start(state, "ctl_log_json", json_args);
    run_saga(t, "json-fail", "fail", TRELLIS_TRANS_FAILED);
    wait_tm_log(t, "\"event\":\"rollback\",\"gid\":\"json-fail\","
                   "\"reason\":\"branch 02 action failed");
    wait_tm_log(t, "\"event\":\"call_result\",\"gid\":\"json-fail\","
                   "\"branch\":\"01\",\"op\":\"action\",\"attempt\":1,");
    static char log[1 << 20];
    read_tm_log(t, log, sizeof log);
    int events = 0;
    for (char *line = log; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        char saved = nl[1];
        nl[1] = '\0';
        if (strstr(line, "\"event\":")) {
            assert_json_object(line);
            events++;
        }
        nl[1] = saved;
        line = nl + 1;
    }
    assert_true(events >= 6); /* ready, 3 call results, rollback, finished */
    itest_pass(state);
}

/* Topics through trellisctl, and what status says of a message at each
 * stage: prepared (waiting for the initiator), aborted (dropped, with the
 * initiator's reason), sent to a topic and delivered. */
static void test_messages_and_topics(void **state)
{
    itest_t *t = itest_start(state, "ctl_msg", NULL);
    char err[256], out[16384];
    const char *sub_args[] = {"subscribe", "order.created", t->action,
                              "--remark",  "shipping",      NULL};
    assert_int_equal(itest_ctl(t, "subscribe", sub_args, out, sizeof out), 0);
    assert_has(out, "subscribed");
    assert_int_equal(itest_ctl(t, "subscribe-again", sub_args, out, sizeof out),
                     0);
    assert_has(out, "already subscribed");
    assert_int_equal(itest_ctl(t, "topics", (const char *[]){"topics", NULL},
                               out, sizeof out),
                     0);
    assert_has(out, "order.created");
    assert_has(out, "shipping");

    trellis_msg_t *m = NULL;
    assert_int_equal(trellis_msg_new("ctl-msg", &m, err, sizeof err),
                     TRELLIS_OK);
    assert_true(trellis_msg_add_step(m, t->action, "ok", 2, err, sizeof err) >=
                0);
    assert_true(trellis_msg_add_topic_step(m, "order.created", "ok", 2, err,
                                           sizeof err) >= 0);
    trellis_options_t o = itest_options();
    trellis_msg_set_options(m, &o);
    assert_int_equal(
        trellis_msg_prepare(t->client, m, t->action, err, sizeof err),
        TRELLIS_OK);
    assert_int_equal(itest_ctl(t, "status-prepared",
                               (const char *[]){"status", "ctl-msg", NULL}, out,
                               sizeof out),
                     0);
    assert_has(out, "status    prepared");
    assert_has(out, "message   waiting for the initiator");
    assert_int_equal(
        trellis_msg_abort(t->client, m, "stock ran out", err, sizeof err),
        TRELLIS_OK);
    trellis_trans_info_free(itest_wait_final(t, "ctl-msg"));
    assert_int_equal(itest_ctl(t, "status-dropped",
                               (const char *[]){"status", "ctl-msg", NULL}, out,
                               sizeof out),
                     0);
    assert_has(out,
               "message   dropped: aborted by the initiator: stock ran out");
    trellis_msg_free(m);

    assert_int_equal(trellis_msg_new("ctl-sent", &m, err, sizeof err),
                     TRELLIS_OK);
    assert_true(trellis_msg_add_topic_step(m, "order.created", "ok", 2, err,
                                           sizeof err) >= 0);
    trellis_msg_set_options(m, &o);
    trellis_trans_status_t st = 0;
    assert_int_equal(
        trellis_msg_send(t->client, m, 1, &st, NULL, 0, err, sizeof err),
        TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    trellis_msg_free(m);
    assert_int_equal(itest_ctl(t, "status-sent",
                               (const char *[]){"status", "ctl-sent", NULL},
                               out, sizeof out),
                     0);
    assert_has(out, "status    succeeded");
    assert_has(out, "message   submitted by the initiator");

    assert_int_equal(itest_ctl(t, "unsubscribe",
                               (const char *[]){"unsubscribe", "order.created",
                                                t->action, NULL},
                               out, sizeof out),
                     0);
    assert_has(out, "unsubscribed");
    assert_int_equal(itest_ctl(t, "unsubscribe-again",
                               (const char *[]){"unsubscribe", "order.created",
                                                t->action, NULL},
                               out, sizeof out),
                     1);
    assert_has(out, "is not subscribed");
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_status_and_list, itest_teardown),
        cmocka_unit_test_teardown(test_abort_and_errors, itest_teardown),
        cmocka_unit_test_teardown(test_retry_now, itest_teardown),
        cmocka_unit_test_teardown(test_force_stop, itest_teardown),
        cmocka_unit_test_teardown(test_force_stop_late_result, itest_teardown),
        cmocka_unit_test_teardown(test_list_filters, itest_teardown),
        cmocka_unit_test_teardown(test_log_level, itest_teardown),
        cmocka_unit_test_teardown(test_log_json, itest_teardown),
        cmocka_unit_test_teardown(test_messages_and_topics, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
