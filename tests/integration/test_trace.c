/*
 * test_trace.c: W3C trace context end to end against real trellisd and
 * trellis-testpart (which journals the traceparent and tracestate each
 * call carried, read through the SDK's branch context). The initiator
 * sets them in trellis_options_t; libtrellis sends them as request
 * metadata; trellisd keeps them with the transaction and hands them,
 * unchanged, to every branch call: a saga's actions and compensations,
 * TCC's try (sent by the SDK's helper) and confirm; also after kill -9
 * and restart of trellisd (the held compensate sent again), and after a
 * takeover by another node. A malformed traceparent is not forwarded and
 * the transaction still succeeds; an oversize tracestate is dropped and
 * the traceparent still goes; the SDK refuses a value gRPC cannot carry;
 * a branch header may not claim the keys. trellisd logs trace_id= with
 * the gid. Run on both stores (integration_trace, _mysql).
 */
#include "itest_cluster.h"
#include "trellis/trellis_tcc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define TRACE_ID "0af7651916cd43dd8448eb211c80319c"
#define STATE "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"
#define OTHER "00-11111111111111111111111111111111-2222222222222222-00"

static int started_on_mysql; /* the _mysql twin: the takeover ran already */

static trellis_options_t traced(const char *parent, const char *state)
{
    trellis_options_t o = itest_options();
    o.traceparent = parent;
    o.tracestate = state;
    return o;
}

/* Submit gid's saga on t's client with o; returns its status. */
static trellis_trans_status_t submit_traced(itest_t *t, const char *gid,
                                            const char *const *payloads,
                                            size_t n,
                                            const trellis_options_t *o)
{
    trellis_saga_t *s = itest_saga(t, gid, payloads, n, o);
    trellis_trans_status_t st = itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    return st;
}

/* Every call of gid the participant saw carried exactly parent and state
 * ("" for none). Returns how many calls of op (NULL: any) there were. */
static int assert_all_calls(itest_t *t, const char *gid, const char *parent,
                            const char *state, const char *op)
{
    harness_part_state_t ps;
    itest_part_state(t, gid, &ps);
    assert_true(ps.n_calls > 0);
    int n = 0;
    for (size_t i = 0; i < ps.n_calls; i++) {
        const harness_part_call_t *c = &ps.calls[i];
        if (strcmp(c->traceparent, parent) || strcmp(c->tracestate, state)) {
            harness_part_state_dump(&ps);
            fail_msg("%s: %s of %s carried traceparent \"%s\" tracestate "
                     "\"%s\", want \"%s\" \"%s\"",
                     gid, c->op, c->branch, c->traceparent, c->tracestate,
                     parent, state);
        }
        n += !op || strcmp(c->op, op) == 0;
    }
    harness_part_state_free(&ps);
    return n;
}

/* Lines of trellisd's log holding both needles. */
static int tm_log_count(itest_t *t, const char *needle, const char *needle2)
{
    return log_count(t->tm, needle, needle2);
}

/* A saga's actions and its rollback's compensations all carry the
 * initiator's trace context; trellisd's rollback line names the trace. */
static void test_saga_calls_carry_trace(void **state)
{
    itest_t *t = itest_start(state, "trace_saga", NULL);
    trellis_options_t o = traced(PARENT, STATE);
    const char *ok[] = {"", ""};
    assert_int_equal(submit_traced(t, "trace-ok", ok, 2, &o),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(assert_all_calls(t, "trace-ok", PARENT, STATE, "action"),
                     2);
    /* sent again with another trace context: the same saga, unchanged */
    trellis_options_t again = traced(OTHER, "");
    assert_int_equal(submit_traced(t, "trace-ok", ok, 2, &again),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_all_calls(t, "trace-ok", PARENT, STATE, NULL);
    const char *failing[] = {"", "", "fail"};
    assert_int_equal(submit_traced(t, "trace-fail", failing, 3, &o),
                     TRELLIS_TRANS_FAILED);
    assert_int_equal(
        assert_all_calls(t, "trace-fail", PARENT, STATE, "compensate"), 3);
    assert_int_equal(
        tm_log_count(t, "event=rollback gid=trace-fail ", "trace_id=" TRACE_ID),
        1);
    /* without trace context nothing is invented */
    trellis_options_t plain = itest_options();
    assert_int_equal(submit_traced(t, "trace-none", ok, 2, &plain),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_all_calls(t, "trace-none", "", "", NULL);
    itest_pass(state);
}

/* The compensate is held at the participant, trellisd is killed -9, the
 * call released and trellisd restarted: the compensate it sends again,
 * from the stored transaction, carries the same trace context. */
static void test_trace_survives_restart(void **state)
{
    itest_t *t = itest_start(state, "trace_restart", NULL);
    trellis_options_t o = traced(PARENT, STATE);
    o.wait_result = 0;
    const char *payloads[] = {"ok;compensate=hold", "fail"};
    submit_traced(t, "trace-crash", payloads, 2, &o);
    itest_crash_while_held(t, "trace-crash", 1);
    trellis_trans_info_t *info = itest_wait_final(t, "trace-crash");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    harness_part_state_t ps;
    itest_part_state(t, "trace-crash", &ps);
    /* sent before the crash and again after it, answered as a duplicate */
    assert_int_equal(itest_count(info, &ps, 0, "compensate", "undone"), 1);
    assert_true(itest_count(info, &ps, 0, "compensate", "dup") >= 1);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    assert_true(
        assert_all_calls(t, "trace-crash", PARENT, STATE, "compensate") >= 2);
    itest_pass(state);
}

/* A malformed traceparent (upper-case hex) is not forwarded, nor the
 * tracestate with it; the transaction succeeds as without one, and
 * trellisd says so once in its log. An oversize tracestate is dropped
 * while the traceparent goes on. */
static void test_malformed_not_forwarded(void **state)
{
    itest_t *t = itest_start(state, "trace_malformed", NULL);
    const char *ok[] = {"", ""};
    trellis_options_t o = traced(
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", STATE);
    assert_int_equal(submit_traced(t, "trace-bad", ok, 2, &o),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_all_calls(t, "trace-bad", "", "", NULL);
    o.traceparent = "00-00000000000000000000000000000000-b7ad6b7169203331-01";
    assert_int_equal(submit_traced(t, "trace-zero", ok, 2, &o),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_all_calls(t, "trace-zero", "", "", NULL);
    assert_int_equal(
        tm_log_count(t, "event=trace_context_dropped", "header=traceparent"),
        1);
    char big[600];
    memset(big, 'v', sizeof big);
    memcpy(big, "big=", 4);
    big[513] = '\0'; /* one past trellisd's 512 */
    o = traced(PARENT, big);
    assert_int_equal(submit_traced(t, "trace-big", ok, 2, &o),
                     TRELLIS_TRANS_SUCCEEDED);
    assert_all_calls(t, "trace-big", PARENT, "", NULL);
    itest_pass(state);
}

/* What cannot be sent is refused before anything is stored: a value gRPC
 * cannot carry (the SDK's check), a branch header named traceparent
 * (trellisd's). */
static void test_refused_inputs(void **state)
{
    itest_t *t = itest_start(state, "trace_refused", NULL);
    const char *ok[] = {""};
    char err[512];
    trellis_options_t o = traced(PARENT, "rojo=\x01");
    trellis_saga_t *s = itest_saga(t, "trace-ctl", ok, 1, &o);
    assert_int_equal(
        trellis_saga_submit(t->client, s, NULL, NULL, 0, err, sizeof err),
        TRELLIS_INVALID_ARGUMENT);
    trellis_saga_free(s);
    const char *keys[] = {"traceparent"}, *values[] = {PARENT};
    o = itest_options();
    o.n_headers = 1;
    o.header_keys = keys;
    o.header_values = values;
    s = itest_saga(t, "trace-hdr", ok, 1, &o);
    assert_int_equal(
        trellis_saga_submit(t->client, s, NULL, NULL, 0, err, sizeof err),
        TRELLIS_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "is reserved"));
    trellis_saga_free(s);
    trellis_trans_info_t *info = NULL;
    assert_int_equal(
        trellis_query(t->client, "trace-ctl", &info, err, sizeof err),
        TRELLIS_NOT_FOUND);
    assert_int_equal(
        trellis_query(t->client, "trace-hdr", &info, err, sizeof err),
        TRELLIS_NOT_FOUND);
    itest_pass(state);
}

/* TCC: Begin carries the trace context; the SDK's helper sends it with
 * the try it calls itself, trellisd with the confirm. A repeated Begin
 * with another trace context changes nothing. */
static void test_tcc_begin_carries_trace(void **state)
{
    itest_t *t = itest_start(state, "trace_tcc", NULL);
    char try_t[96], confirm_t[96], cancel_t[96], err[512];
    const char *part = harness_server_addr(t->part);
    snprintf(try_t, sizeof try_t, "%s/trellis.test.Part/Try", part);
    snprintf(confirm_t, sizeof confirm_t, "%s/trellis.test.Part/Confirm", part);
    snprintf(cancel_t, sizeof cancel_t, "%s/trellis.test.Part/Cancel", part);
    trellis_options_t o = traced(PARENT, STATE);
    trellis_tcc_t *tcc = NULL;
    assert_int_equal(
        trellis_tcc_begin(t->client, "trace-tcc", &o, &tcc, err, sizeof err),
        TRELLIS_OK);
    trellis_options_t again = traced(OTHER, "");
    assert_int_equal(
        trellis_begin(t->client, "trace-tcc", &again, err, sizeof err),
        TRELLIS_OK);
    assert_int_equal(trellis_tcc_call_branch(tcc, try_t, confirm_t, cancel_t,
                                             "", 0, NULL, NULL, err,
                                             sizeof err),
                     TRELLIS_OK);
    trellis_trans_status_t st;
    assert_int_equal(trellis_tcc_submit(tcc, &st, NULL, 0, err, sizeof err),
                     TRELLIS_OK);
    trellis_tcc_free(tcc);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(assert_all_calls(t, "trace-tcc", PARENT, STATE, NULL), 2);
    itest_pass(state);
}

/* Node A holds the compensate and dies (kill -9); node B takes the
 * transaction over once A's lease ran out and sends the compensate again
 * with the trace context read from the store; B's takeover line names
 * the trace. */
static void test_trace_survives_takeover(void **state)
{
    if (started_on_mysql)
        skip(); /* the plain run has it, on MySQL too */
    itest_t *t = start_fixture(state, "trace_takeover");
    cluster_t c;
    cluster_start(&c, t, 2);
    trellis_options_t o = traced(PARENT, STATE);
    o.wait_result = 0;
    const char *payloads[] = {"ok;compensate=hold", "fail"};
    trellis_saga_t *s = itest_saga(t, "trace-moved", payloads, 2, &o);
    char err[512];
    assert_int_equal(
        trellis_saga_submit(c.client[0], s, NULL, NULL, 0, err, sizeof err),
        TRELLIS_OK);
    trellis_saga_free(s);
    part_cmd(t, "wait-held trace-moved 1 20000");
    assert_int_equal(harness_server_kill(c.node[0]), 0);
    part_cmd(t, "release trace-moved");
    wait_status(&c, 1, "trace-moved", TRELLIS_TRANS_FAILED);
    assert_true(log_count(c.node[1], "event=takeover gid=trace-moved ",
                          "trace_id=" TRACE_ID) >= 1);
    assert_true(
        assert_all_calls(t, "trace-moved", PARENT, STATE, "compensate") >= 2);
    cluster_free_clients(&c);
    itest_pass(state);
}

int main(void)
{
    const char *store = getenv("TRELLIS_TEST_STORE");
    started_on_mysql = store && strcmp(store, "mysql") == 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_saga_calls_carry_trace, itest_teardown),
        cmocka_unit_test_teardown(test_trace_survives_restart, itest_teardown),
        cmocka_unit_test_teardown(test_malformed_not_forwarded, itest_teardown),
        cmocka_unit_test_teardown(test_refused_inputs, itest_teardown),
        cmocka_unit_test_teardown(test_tcc_begin_carries_trace, itest_teardown),
        /* last: it moves the process to the MySQL store */
        cmocka_unit_test_teardown(test_trace_survives_takeover, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
