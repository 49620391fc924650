/*
 * test_obs.c: unit tests of trellisd's observability modules — tm_log's
 * JSON form of a key=value line (types, quoting, escapes, levels) read
 * back from a file put in place of stderr, and tm_metrics' exposition
 * (bucket placement, cumulative buckets, sums in seconds, transaction
 * modes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_trans.h"

/* ---- tm_log
 * ------------------------------------------------------------------ */

/* Run tm_log calls with stderr redirected to a temp file; the file's text
 * into out. */
typedef struct {
    int saved;
    FILE *tmp;
} capture_t;

static void capture_start(capture_t *c)
{
    fflush(stderr);
    c->tmp = tmpfile();
    assert_non_null(c->tmp);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->tmp), STDERR_FILENO) >= 0);
}

static void capture_end(capture_t *c, char *out, size_t len)
{
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    rewind(c->tmp);
    size_t n = fread(out, 1, len - 1, c->tmp);
    out[n] = '\0';
    fclose(c->tmp);
}

/* The line without its "{"ts":<ms>," head, which changes every run. */
static const char *after_ts(const char *line)
{
    assert_int_equal(strncmp(line, "{\"ts\":", 6), 0);
    const char *comma = strchr(line, ',');
    assert_non_null(comma);
    return comma + 1;
}

static void test_log_json_types(void **state)
{
    (void)state;
    char out[4096], q[64];
    capture_t c;
    tm_log_set_level(TM_LOG_INFO);
    tm_log_set_format(TM_LOG_JSON);
    capture_start(&c);
    tm_log(TM_LOG_INFO,
           "event=x gid=123 branch=01 n=42 neg=-3 f=1.5 lead=007 bad=1. "
           "q=\"%s\" word",
           tm_log_quote("a \"b\" c\\d\nend", q, sizeof q));
    capture_end(&c, out, sizeof out);
    assert_string_equal(
        after_ts(out),
        "\"level\":\"info\",\"event\":\"x\",\"gid\":\"123\",\"branch\":\"01\","
        "\"n\":42,\"neg\":-3,\"f\":1.5,\"lead\":\"007\",\"bad\":\"1.\","
        "\"q\":\"a \\\"b\\\" c\\\\d\\nend\",\"text\":\"word\"}\n");
    tm_log_set_format(TM_LOG_KV);
}

static void test_log_kv_and_levels(void **state)
{
    (void)state;
    char out[4096];
    capture_t c;
    tm_log_set_format(TM_LOG_KV);
    tm_log_set_level(TM_LOG_WARN);
    assert_int_equal(tm_log_get_level(), TM_LOG_WARN);
    capture_start(&c);
    tm_log(TM_LOG_INFO, "event=hidden gid=g1");
    tm_log(TM_LOG_WARN, "event=shown gid=g2 branch=03");
    capture_end(&c, out, sizeof out);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, " level=warn event=shown gid=g2 branch=03\n"));
    assert_int_equal(strncmp(out, "ts=", 3), 0);
    tm_log_set_level(TM_LOG_INFO);

    tm_log_level_t l;
    assert_int_equal(tm_log_parse_level("debug", &l), 0);
    assert_int_equal(l, TM_LOG_DEBUG);
    assert_int_equal(tm_log_parse_level("loud", &l), -1);
    tm_log_format_t f;
    assert_int_equal(tm_log_parse_format("json", &f), 0);
    assert_int_equal(f, TM_LOG_JSON);
    assert_int_equal(tm_log_parse_format("xml", &f), -1);
    assert_string_equal(tm_log_level_name(TM_LOG_ERROR), "error");
}

static void test_log_quote_truncates(void **state)
{
    (void)state;
    char q[8];
    /* Never split an escape: 7 bytes of room hold `a\"b\"` and stop. */
    assert_string_equal(tm_log_quote("a\"b\"cdef", q, sizeof q), "a\\\"b\\\"");
    assert_string_equal(tm_log_quote(NULL, q, sizeof q), "");
}

/* ---- tm_metrics
 * ---------------------------------------------------------------- */

static double value_of(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, series, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    fail_msg("no series %s", series);
    return -1;
}

static void test_metrics_histogram(void **state)
{
    (void)state;
    tm_metrics_reset();
    tm_metrics_branch_call(TM_KIND_ACTION, TM_METRICS_CALL_OK, 300);
    tm_metrics_branch_call(TM_KIND_ACTION, TM_METRICS_CALL_OK, 500);
    tm_metrics_branch_call(TM_KIND_ACTION, TM_METRICS_CALL_UNKNOWN, 20000000);
    tm_metrics_branch_call(TM_KIND_NONE, TM_METRICS_CALL_OK, 1); /* ignored */
    tm_metrics_retry(TM_KIND_ACTION);
    size_t len = 0;
    char *text = tm_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    const char *h = "trellis_branch_call_duration_seconds";
    char s[200];
    snprintf(s, sizeof s, "%s_bucket{op=\"action\",le=\"0.00025\"}", h);
    assert_true(value_of(text, s) == 0);
    snprintf(s, sizeof s, "%s_bucket{op=\"action\",le=\"0.0005\"}", h);
    assert_true(value_of(text, s) == 2); /* 300 us and 500 us (le is <=) */
    snprintf(s, sizeof s, "%s_bucket{op=\"action\",le=\"10\"}", h);
    assert_true(value_of(text, s) == 2);
    snprintf(s, sizeof s, "%s_bucket{op=\"action\",le=\"+Inf\"}", h);
    assert_true(value_of(text, s) == 3);
    snprintf(s, sizeof s, "%s_count{op=\"action\"}", h);
    assert_true(value_of(text, s) == 3);
    snprintf(s, sizeof s, "%s_sum{op=\"action\"}", h);
    assert_true(value_of(text, s) > 20.0007 && value_of(text, s) < 20.0009);
    assert_true(value_of(text, "trellis_branch_calls_total{op=\"action\","
                               "result=\"unknown\"}") == 1);
    assert_true(value_of(text, "trellis_branch_retries_total{op=\"action\"}") ==
                1);
    snprintf(s, sizeof s, "%s_count{op=\"compensate\"}", h);
    assert_true(value_of(text, s) == 0);
    free(text);
}

static void test_metrics_modes_and_store(void **state)
{
    (void)state;
    tm_metrics_reset();
    tm_trans_t *tx = tm_trans_new("g", TM_TX_SUCCEEDED, 1);
    assert_non_null(tx);
    tm_metrics_trans_finished(tx); /* no branches: "none" */
    tm_trans_add_branch(tx)->mode = TM_MODE_TCC;
    tm_metrics_trans_finished(tx);
    tm_trans_add_branch(tx)->mode = TM_MODE_XA;
    tx->status = TM_TX_FAILED;
    tm_metrics_trans_finished(tx);
    tm_trans_free(tx);
    tm_metrics_store_commit(150, 3);
    tm_metrics_store_commit(2000000, 1);
    tm_metrics_in_flight_add(2);
    tm_metrics_in_flight_add(-1);
    tm_metrics_waiters_add(3);
    tm_metrics_waiters_add(-1);
    tm_metrics_recovered_add(5);
    tm_metrics_takeovers_add(2);
    size_t len;
    char *text = tm_metrics_render(&len);
    const char *f = "trellis_transactions_finished_total";
    char s[200];
    snprintf(s, sizeof s, "%s{mode=\"none\",outcome=\"succeeded\"}", f);
    assert_true(value_of(text, s) == 1);
    snprintf(s, sizeof s, "%s{mode=\"tcc\",outcome=\"succeeded\"}", f);
    assert_true(value_of(text, s) == 1);
    snprintf(s, sizeof s, "%s{mode=\"hybrid\",outcome=\"failed\"}", f);
    assert_true(value_of(text, s) == 1);
    assert_true(value_of(text, "trellis_transactions_in_flight") == 1);
    assert_true(value_of(text, "trellis_waiters") == 2);
    assert_true(value_of(text, "trellis_store_commit_batch_size_sum") == 4);
    assert_true(value_of(text, "trellis_store_commit_batch_size_bucket{le="
                               "\"2\"}") == 1);
    assert_true(value_of(text, "trellis_store_commit_duration_seconds_bucket{"
                               "le=\"+Inf\"}") == 2);
    assert_true(value_of(text, "trellis_store_commit_duration_seconds_bucket{"
                               "le=\"1\"}") == 1);
    assert_true(value_of(text, "trellis_recovered_transactions_total") == 5);
    assert_true(value_of(text, "trellis_takeovers_total") == 2);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_json_types),
        cmocka_unit_test(test_log_kv_and_levels),
        cmocka_unit_test(test_log_quote_truncates),
        cmocka_unit_test(test_metrics_histogram),
        cmocka_unit_test(test_metrics_modes_and_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
