/*
 * test_metrics.c: trellisd's Prometheus endpoint (--metrics-listen) as a
 * scraper sees it, over real HTTP, against a real trellisd and
 * trellis-testpart: after a known workload — sagas that succeed, fail
 * and retry, a TCC transaction confirmed and one aborted — the counters
 * by mode and outcome are exact, nothing is left in flight, the branch-call
 * histograms count exactly the calls Query reports, the store histograms
 * are consistent; after kill -9 and restart the recovered transaction is
 * counted; other paths and methods are refused.
 *
 * The port is read from trellisd's ready line ("metrics=127.0.0.1:PORT"),
 * since the test asks for port 0; the HTTP client is the harness's
 * (harness_http: one request per connection, HTTP/1.0, read to EOF).
 */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const metrics_args[] = {"--metrics-listen", "127.0.0.1:0",
                                           NULL};

/* ---- HTTP ------------------------------------------------------------------
 */

static int metrics_port(itest_t *t)
{
    int port = harness_ready_port(harness_server_proc(t->tm), "metrics");
    if (port <= 0)
        fail_msg("trellisd's ready line names no metrics address");
    return port;
}

/* Send request (a whole HTTP/1.0 request); the status code, *body the
 * answer's body (the caller's). */
static int http_raw(int port, const char *request, char **body)
{
    int code = harness_http(port, request, strlen(request), NULL, body);
    assert_true(code > 0);
    return code;
}

/* GET /metrics; the exposition, the caller's (free). */
static char *scrape(itest_t *t)
{
    char *body = NULL;
    int code = http_raw(metrics_port(t),
                        "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", &body);
    if (code != 200)
        fail_msg("GET /metrics: HTTP %d: %s", code, body);
    return body;
}

/* ---- the exposition
 * ---------------------------------------------------------- */

/* The value of the series written exactly as series ("name{labels}");
 * fails the test when it is missing. */
static double value_of(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, series, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    fail_msg("no series %s in:\n%s", series, text);
    return -1;
}

static double finished(const char *text, const char *mode, const char *outcome)
{
    char s[160];
    snprintf(s, sizeof s,
             "trellis_transactions_finished_total{mode=\"%s\",outcome=\"%s\"}",
             mode, outcome);
    return value_of(text, s);
}

static double calls(const char *text, const char *op, const char *result)
{
    char s[160];
    snprintf(s, sizeof s, "trellis_branch_calls_total{op=\"%s\",result=\"%s\"}",
             op, result);
    return value_of(text, s);
}

static double call_hist_count(const char *text, const char *op)
{
    char s[160];
    snprintf(s, sizeof s,
             "trellis_branch_call_duration_seconds_count{op=\"%s\"}", op);
    return value_of(text, s);
}

/* Every "# TYPE name" has its "# HELP name" right before it, and every
 * sample line belongs to a declared family starting with trellis_. */
static void assert_well_formed(const char *text)
{
    char family[128] = "";
    int types = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (strncmp(p, "# HELP ", 7) == 0) {
            size_t n = strcspn(p + 7, " ");
            assert_true(n < sizeof family);
            memcpy(family, p + 7, n);
            family[n] = '\0';
            assert_int_equal(strncmp(family, "trellis_", 8), 0);
            char want[160];
            snprintf(want, sizeof want, "# TYPE %s ", family);
            assert_int_equal(strncmp(nl + 1, want, strlen(want)), 0);
            types++;
        } else if (p[0] != '#') {
            assert_true(family[0] != '\0');
            assert_int_equal(strncmp(p, family, strlen(family)), 0);
        }
        p = nl + 1;
    }
    assert_true(types >= 10);
}

/* A histogram's buckets never decrease and its +Inf bucket is its count. */
static void assert_histogram(const char *text, const char *name,
                             const char *labels)
{
    char prefix[200], series[240];
    snprintf(prefix, sizeof prefix, "%s_bucket{%s", name, labels);
    double last = 0;
    int buckets = 0;
    for (const char *p = text; (p = strstr(p, prefix)); p++) {
        const char *sp = strchr(p, ' ');
        double v = strtod(sp + 1, NULL);
        assert_true(v >= last);
        last = v;
        buckets++;
    }
    assert_true(buckets >= 5);
    const char *l = strstr(prefix, "{") + 1;
    size_t ll = strlen(l);
    if (ll) /* labels without the trailing comma */
        snprintf(series, sizeof series, "%s_count{%.*s}", name, (int)ll - 1, l);
    else
        snprintf(series, sizeof series, "%s_count", name);
    assert_true(value_of(text, series) == last);
}

/* ---- the workload
 * ------------------------------------------------------------ */

static void run_saga(itest_t *t, const char *gid, const char *step1,
                     const char *step2, trellis_trans_status_t want)
{
    const char *payloads[] = {step1, step2};
    trellis_saga_t *s = itest_saga(t, gid, payloads, step2 ? 2 : 1, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), want);
    trellis_saga_free(s);
}

/* A begun TCC transaction with one registered branch on the test
 * participant; then submit (confirm) or abort (cancel), waiting. */
static void run_tcc(itest_t *t, const char *gid, int commit)
{
    char err[256], confirm[96], cancel[96];
    trellis_options_t o = itest_options();
    assert_int_equal(trellis_begin(t->client, gid, &o, err, sizeof err),
                     TRELLIS_OK);
    snprintf(confirm, sizeof confirm, "%s/trellis.test.Part/Confirm",
             harness_server_addr(t->part));
    snprintf(cancel, sizeof cancel, "%s/trellis.test.Part/Cancel",
             harness_server_addr(t->part));
    trellis_branch_op_t ops[] = {{TRELLIS_OP_CONFIRM, confirm},
                                 {TRELLIS_OP_CANCEL, cancel}};
    assert_int_equal(trellis_register_branch(t->client, gid, "b1",
                                             TRELLIS_MODE_TCC, ops, 2, "", 0,
                                             err, sizeof err),
                     TRELLIS_OK);
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    if (commit)
        assert_int_equal(
            trellis_submit(t->client, gid, 1, &st, NULL, 0, err, sizeof err),
            TRELLIS_OK);
    else
        assert_int_equal(
            trellis_abort(t->client, gid, "test", 1, &st, err, sizeof err),
            TRELLIS_OK);
    assert_int_equal(st,
                     commit ? TRELLIS_TRANS_SUCCEEDED : TRELLIS_TRANS_FAILED);
}

/* Attempts of every op of kind op over the gids, from Query. */
static uint32_t attempts_of(itest_t *t, const char *const *gids,
                            trellis_op_t op)
{
    uint32_t n = 0;
    for (size_t g = 0; gids[g]; g++) {
        trellis_trans_info_t *info = itest_query(t, gids[g]);
        for (size_t b = 0; b < info->n_branches; b++)
            for (size_t o = 0; o < info->branches[b].n_ops; o++)
                if (info->branches[b].ops[o].op == op)
                    n += info->branches[b].ops[o].attempts;
        trellis_trans_info_free(info);
    }
    return n;
}

static int in_flight_zero(void *arg)
{
    char *text = scrape(arg);
    int zero = value_of(text, "trellis_transactions_in_flight") == 0;
    free(text);
    return zero;
}

static void test_workload_counts(void **state)
{
    itest_t *t = itest_start(state, "metrics_workload", metrics_args);
    char *text = scrape(t);
    assert_well_formed(text);
    assert_true(finished(text, "saga", "succeeded") == 0);
    assert_true(value_of(text, "trellis_transactions_in_flight") == 0);
    free(text);

    run_saga(t, "m-ok1", "ok", "ok", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "m-ok2", "ok", "ok", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "m-ok3", "ok", "ok", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "m-fail1", "ok", "fail", TRELLIS_TRANS_FAILED);
    run_saga(t, "m-fail2", "ok", "fail", TRELLIS_TRANS_FAILED);
    run_saga(t, "m-retry", "unavail:2", NULL, TRELLIS_TRANS_SUCCEEDED);
    run_tcc(t, "m-tcc-ok", 1);
    run_tcc(t, "m-tcc-abort", 0);
    assert_true(harness_poll(in_flight_zero, t, 5000, 20));

    text = scrape(t);
    assert_well_formed(text);
    assert_true(finished(text, "saga", "succeeded") == 4);
    assert_true(finished(text, "saga", "failed") == 2);
    assert_true(finished(text, "tcc", "succeeded") == 1);
    assert_true(finished(text, "tcc", "failed") == 1);
    assert_true(finished(text, "xa", "succeeded") == 0);
    assert_true(finished(text, "hybrid", "failed") == 0);

    /* actions: 3x2 + 2x(ok, fail) + (2 unavailable, ok) */
    assert_true(calls(text, "action", "ok") == 9);
    assert_true(calls(text, "action", "failure") == 2);
    assert_true(calls(text, "action", "unknown") == 2);
    assert_true(calls(text, "compensate", "ok") == 4);
    assert_true(calls(text, "confirm", "ok") == 1);
    assert_true(calls(text, "cancel", "ok") == 1);
    assert_true(value_of(text, "trellis_branch_retries_total{op=\"action\"}") ==
                2);

    /* The histograms count exactly the calls Query reports. */
    static const char *const gids[] = {"m-ok1",    "m-ok2",       "m-ok3",
                                       "m-fail1",  "m-fail2",     "m-retry",
                                       "m-tcc-ok", "m-tcc-abort", NULL};
    assert_true(call_hist_count(text, "action") ==
                attempts_of(t, gids, TRELLIS_OP_ACTION));
    assert_true(call_hist_count(text, "action") == 13);
    assert_true(call_hist_count(text, "compensate") ==
                attempts_of(t, gids, TRELLIS_OP_COMPENSATE));
    assert_true(call_hist_count(text, "confirm") ==
                attempts_of(t, gids, TRELLIS_OP_CONFIRM));
    assert_true(call_hist_count(text, "cancel") ==
                attempts_of(t, gids, TRELLIS_OP_CANCEL));
    assert_true(call_hist_count(text, "try") == 0);
    assert_histogram(text, "trellis_branch_call_duration_seconds",
                     "op=\"action\",");
    assert_histogram(text, "trellis_branch_call_duration_seconds",
                     "op=\"compensate\",");

    /* Every transaction took at least two commits (insert, final). */
    assert_histogram(text, "trellis_store_commit_duration_seconds", "");
    assert_histogram(text, "trellis_store_commit_batch_size", "");
    double commits = value_of(text, "trellis_store_commit_batch_size_count");
    assert_true(commits >= 2);
    assert_true(value_of(text, "trellis_store_commit_duration_seconds_count") ==
                commits);
    assert_true(value_of(text, "trellis_store_commit_batch_size_sum") >= 16);
    assert_true(value_of(text, "trellis_recovered_transactions_total") == 0);
    assert_true(value_of(text, "trellis_takeovers_total") == 0);
    free(text);
    itest_pass(state);
}

/* A begun transaction survives kill -9: the restarted trellisd counts it
 * recovered and in flight; once aborted it is a failed "none"-mode one. */
static void test_recovered_and_http(void **state)
{
    itest_t *t = itest_start(state, "metrics_recovered", metrics_args);
    char err[256];
    trellis_options_t o = itest_options();
    assert_int_equal(trellis_begin(t->client, "m-begun", &o, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(harness_server_crash_restart(t->tm), 0);
    char *text = scrape(t);
    assert_true(value_of(text, "trellis_recovered_transactions_total") == 1);
    assert_true(value_of(text, "trellis_transactions_in_flight") == 1);
    free(text);

    /* The client's channel may still point at the killed process: the
     * first calls can meet UNAVAILABLE until it reconnects. */
    trellis_trans_status_t st;
    trellis_rc_t rc;
    int64_t deadline = harness_mono_ms() + 5000;
    while ((rc = trellis_abort(t->client, "m-begun", "test", 1, &st, err,
                               sizeof err)) == TRELLIS_UNAVAILABLE &&
           harness_mono_ms() < deadline)
        harness_sleep_ms(50);
    assert_int_equal(rc, TRELLIS_OK);
    assert_true(harness_poll(in_flight_zero, t, 5000, 20));
    text = scrape(t);
    assert_true(finished(text, "none", "failed") == 1);
    free(text);

    char *body = NULL;
    assert_int_equal(http_raw(metrics_port(t),
                              "GET /other HTTP/1.0\r\nHost: x\r\n\r\n", &body),
                     404);
    free(body);
    assert_int_equal(
        http_raw(metrics_port(t),
                 "POST /metrics HTTP/1.0\r\nHost: x\r\nContent-Length: 0"
                 "\r\n\r\n",
                 &body),
        405);
    free(body);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_workload_counts, itest_teardown),
        cmocka_unit_test_teardown(test_recovered_and_http, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
