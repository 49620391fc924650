/*
 * Unit tests of tm_trace (W3C trace context checks) and of where the
 * trace context lives in the model: what trellisd keeps from a request's
 * traceparent/tracestate metadata and what it drops, that the options
 * blob carries it through the store's packing, and that a request may
 * not set it in its message or its branch headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tm_trace.h"
#include "tm_trans.h"
#include "tm_validate.h"

/* The example of the W3C recommendation. */
#define PARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parent_ok(const char *s)
{
    return tm_trace_parent_valid(s, strlen(s));
}

static int state_ok(const char *s)
{
    return tm_trace_state_valid(s, strlen(s));
}

static void test_parent_version_00(void **state)
{
    (void)state;
    assert_true(parent_ok(PARENT));
    assert_true(
        parent_ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
    /* upper-case hex, all-zero ids, bad lengths and separators */
    assert_false(
        parent_ok("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
    assert_false(
        parent_ok("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
    assert_false(
        parent_ok("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
    assert_false(
        parent_ok("00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01"));
    assert_false(parent_ok(PARENT "-x")); /* version 00 is exactly 55 */
    assert_false(
        parent_ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"));
    assert_false(
        parent_ok("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01"));
    assert_false(
        parent_ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g"));
    assert_false(parent_ok(""));
    assert_false(parent_ok("hello"));
    assert_false(tm_trace_parent_valid(NULL, 0));
}

static void test_parent_versions(void **state)
{
    (void)state;
    /* a later version: version 00's fields, then "-" and more */
    assert_true(
        parent_ok("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    assert_true(parent_ok(
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-next"));
    assert_false(parent_ok(
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01what"));
    assert_false(
        parent_ok("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    assert_false(
        parent_ok("0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    char longer[TM_TRACEPARENT_MAX + 2];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    memcpy(longer, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
           56);
    assert_true(tm_trace_parent_valid(longer, TM_TRACEPARENT_MAX));
    assert_false(tm_trace_parent_valid(longer, TM_TRACEPARENT_MAX + 1));
}

/* Bytes from the wire: a NUL or a control byte inside is refused, not
 * read as the end of the string. */
static void test_parent_bytes(void **state)
{
    (void)state;
    char v[64];
    memcpy(v, PARENT, 55);
    v[20] = '\0';
    assert_false(tm_trace_parent_valid(v, 55));
    assert_false(tm_trace_parent_valid(PARENT "\0", 56));
    char later[] =
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-a\tb";
    assert_false(parent_ok(later));
}

static void test_state_members(void **state)
{
    (void)state;
    assert_true(state_ok("congo=t61rcWkgMzE"));
    assert_true(state_ok("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
    assert_true(state_ok("rojo=1 , congo=2"));
    assert_true(state_ok("a=1,,b=2"));
    assert_true(state_ok("")); /* empty members count for nothing */
    assert_true(state_ok(" , "));
    assert_true(state_ok("t0-_*/x@vendor_1=v a l"));
    assert_true(state_ok("0tenant@sys=1")); /* a tenant may start with 0-9 */
    assert_false(state_ok("0simple=1"));    /* a simple key may not */
    assert_false(state_ok("Rojo=1"));
    assert_false(state_ok("rojo"));
    assert_false(state_ok("rojo="));
    assert_false(state_ok("=1"));
    assert_false(state_ok("rojo=a=b"));
    assert_false(state_ok("rojo=1,rojo=2"));       /* a key twice */
    assert_false(state_ok("t@abcdefghijklmno=1")); /* system id over 14 */
    assert_false(state_ok("rojo=1\t,congo=2"));    /* gRPC sends no tab */
    assert_false(tm_trace_state_valid("rojo=1\0,congo=2", 15));
    assert_false(tm_trace_state_valid(NULL, 0));
}

static void test_state_bounds(void **state)
{
    (void)state;
    char s[2 * TM_TRACESTATE_MAX];
    size_t n = 0;
    for (int i = 0; i < TM_TRACESTATE_MEMBERS_MAX; i++)
        n += (size_t)snprintf(s + n, sizeof(s) - n, "%sk%d=v", i ? "," : "", i);
    assert_true(tm_trace_state_valid(s, n));
    snprintf(s + n, sizeof(s) - n, ",k99=v");
    assert_false(state_ok(s)); /* 33 members */
    /* 512 characters pass, 513 do not */
    memset(s, 'v', sizeof(s));
    memcpy(s, "a=", 2);
    s[TM_TRACESTATE_MAX] = '\0';
    assert_false(state_ok(s)); /* one value over 256 */
    n = 0;
    for (int i = 0; n < TM_TRACESTATE_MAX - 4; i++) {
        char m[8];
        int k = snprintf(m, sizeof(m), "%sa%d=", i ? "," : "", i);
        memcpy(s + n, m, (size_t)k);
        n += (size_t)k;
        size_t room = TM_TRACESTATE_MAX - n;
        size_t v = room > 40 ? 40 : room;
        memset(s + n, 'x', v);
        n += v;
    }
    assert_int_equal(n, TM_TRACESTATE_MAX);
    assert_true(tm_trace_state_valid(s, n));
    s[n] = 'x';
    assert_false(tm_trace_state_valid(s, n + 1));
}

static tm_trace_value_t val(const char *s)
{
    return (tm_trace_value_t){s, strlen(s)};
}

static void test_take(void **state)
{
    (void)state;
    tm_trace_t t;
    tm_trace_value_t p[2] = {val(PARENT), val(PARENT)};
    tm_trace_value_t st[2] = {val("rojo=1"), val("congo=2")};
    assert_int_equal(tm_trace_take(&t, NULL, 0, NULL, 0), 0);
    assert_string_equal(t.traceparent, "");
    assert_int_equal(tm_trace_take(&t, p, 1, st, 1), 0);
    assert_string_equal(t.traceparent, PARENT);
    assert_string_equal(t.tracestate, "rojo=1");
    /* repeated tracestate entries are joined, as W3C joins headers */
    assert_int_equal(tm_trace_take(&t, p, 1, st, 2), 0);
    assert_string_equal(t.tracestate, "rojo=1,congo=2");
    /* only empty members: nothing to hand on, nothing dropped */
    tm_trace_value_t blank = val(" ");
    assert_int_equal(tm_trace_take(&t, p, 1, &blank, 1), 0);
    assert_string_equal(t.tracestate, "");
}

static void test_take_drops(void **state)
{
    (void)state;
    tm_trace_t t;
    tm_trace_value_t good = val(PARENT), bad = val("00-xyz");
    tm_trace_value_t two[2] = {good, good};
    tm_trace_value_t st = val("rojo=1"), bad_st = val("Rojo=1");
    assert_int_equal(tm_trace_take(&t, &bad, 1, &st, 1),
                     TM_TRACE_DROPPED_PARENT | TM_TRACE_DROPPED_STATE);
    assert_string_equal(t.traceparent, "");
    assert_string_equal(t.tracestate, "");
    assert_int_equal(tm_trace_take(&t, two, 2, NULL, 0),
                     TM_TRACE_DROPPED_PARENT);
    assert_string_equal(t.traceparent, "");
    /* a bad tracestate leaves a good traceparent alone */
    assert_int_equal(tm_trace_take(&t, &good, 1, &bad_st, 1),
                     TM_TRACE_DROPPED_STATE);
    assert_string_equal(t.traceparent, PARENT);
    assert_string_equal(t.tracestate, "");
    /* a tracestate is kept only with a traceparent */
    assert_int_equal(tm_trace_take(&t, NULL, 0, &st, 1),
                     TM_TRACE_DROPPED_STATE);
    assert_string_equal(t.tracestate, "");
    /* entries that do not fit in 512 characters together */
    char big[300];
    memset(big, 'v', sizeof(big));
    memcpy(big, "a=", 2);
    big[200] = '\0';
    char big2[300];
    memcpy(big2, big, sizeof(big));
    big2[0] = 'b';
    char big3[300];
    memcpy(big3, big, sizeof(big));
    big3[0] = 'c';
    tm_trace_value_t three[3] = {val(big), val(big2), val(big3)};
    assert_int_equal(tm_trace_take(&t, &good, 1, three, 2), 0);
    assert_int_equal(strlen(t.tracestate), 401);
    assert_int_equal(tm_trace_take(&t, &good, 1, three, 3),
                     TM_TRACE_DROPPED_STATE);
    assert_string_equal(t.tracestate, "");
}

static void test_log_field(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(tm_trace_log_field(PARENT, buf, sizeof(buf)),
                        " trace_id=4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(tm_trace_log_field(NULL, buf, sizeof(buf)), "");
    assert_string_equal(tm_trace_log_field("", buf, sizeof(buf)), "");
}

/* The store keeps TransOptions packed: the trace context goes through it
 * whole, and a copy of the options carries it. */
static void test_options_blob(void **state)
{
    (void)state;
    tm_options_t o;
    memset(&o, 0, sizeof(o));
    assert_int_equal(tm_options_set_trace(&o, PARENT, "rojo=1"), 0);
    Trellis__V1__TransOptions *m = tm_options_to_proto(&o);
    assert_non_null(m);
    size_t n = trellis__v1__trans_options__get_packed_size(m);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    trellis__v1__trans_options__pack(m, buf);
    tm_options_proto_free(m);
    Trellis__V1__TransOptions *back =
        trellis__v1__trans_options__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(back);
    tm_options_t loaded, copy;
    assert_int_equal(tm_options_from_proto(&loaded, back), 0);
    trellis__v1__trans_options__free_unpacked(back, NULL);
    assert_string_equal(loaded.traceparent, PARENT);
    assert_string_equal(loaded.tracestate, "rojo=1");
    assert_int_equal(tm_options_copy(&copy, &loaded), 0);
    assert_string_equal(copy.traceparent, PARENT);
    assert_string_equal(copy.tracestate, "rojo=1");
    /* none: both NULL, and a tracestate never stands alone */
    assert_int_equal(tm_options_set_trace(&copy, "", "rojo=1"), 0);
    assert_null(copy.traceparent);
    assert_null(copy.tracestate);
    tm_options_clear(&o);
    tm_options_clear(&loaded);
    tm_options_clear(&copy);
}

/* A request may not set the trace context itself: neither in TransOptions
 * nor as a branch header. */
static void test_request_refused(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    char err[512];
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.traceparent = PARENT;
    assert_int_not_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "options.traceparent is set by trellisd"));
    o.traceparent = "";
    o.tracestate = "rojo=1";
    assert_int_not_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "options.tracestate"));
    o.tracestate = "";
    Trellis__V1__Header h = TRELLIS__V1__HEADER__INIT;
    Trellis__V1__Header *hp = &h;
    h.key = "traceparent";
    h.value = PARENT;
    o.n_branch_headers = 1;
    o.branch_headers = &hp;
    assert_int_not_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "is reserved"));
    h.key = "tracestate";
    assert_int_not_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    h.key = "x-trace";
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parent_version_00),
        cmocka_unit_test(test_parent_versions),
        cmocka_unit_test(test_parent_bytes),
        cmocka_unit_test(test_state_members),
        cmocka_unit_test(test_state_bounds),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_take_drops),
        cmocka_unit_test(test_log_field),
        cmocka_unit_test(test_options_blob),
        cmocka_unit_test(test_request_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
