/*
 * test_allow.c: the target allowlist (tm/tm_allow.c) — the default admits
 * loopback only, wildcards stay within the host or the port, hosts ignore
 * case, bad patterns are refused at parse time, and the submit/register
 * checks answer TM_DENIED naming the target and the setting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tm_allow.h"
#include "tm_validate.h"

static char err[1024];

static tm_allowlist_t parsed(const char *spec)
{
    tm_allowlist_t a;
    if (tm_allow_parse(&a, spec, err, sizeof(err)) != 0)
        fail_msg("tm_allow_parse(\"%s\"): %s", spec, err);
    return a;
}

static void test_default_is_loopback_only(void **state)
{
    (void)state;
    tm_allowlist_t a = parsed(TM_ALLOW_DEFAULT);
    assert_int_equal(a.n, 3);
    assert_true(tm_allow_match(&a, "127.0.0.1:7400"));
    assert_true(tm_allow_match(&a, "localhost:1"));
    assert_true(tm_allow_match(&a, "LOCALHOST:65535"));
    assert_true(tm_allow_match(&a, "[::1]:50051"));
    assert_false(tm_allow_match(&a, "10.0.0.1:7400"));
    assert_false(tm_allow_match(&a, "127.0.0.2:7400"));
    assert_false(tm_allow_match(&a, "127.0.0.1.evil.example:80"));
    assert_false(tm_allow_match(&a, "localhost.evil.example:80"));
    assert_false(tm_allow_match(&a, "evil127.0.0.1:80"));
    assert_false(tm_allow_match(&a, "[::2]:80"));
    assert_false(tm_allow_match(&a, "127.1:80")); /* text, not addresses */
}

static void test_wildcards_stay_in_their_part(void **state)
{
    (void)state;
    assert_true(tm_allow_match_pattern("*.payments.svc:50051",
                                       "api.payments.svc:50051"));
    assert_true(tm_allow_match_pattern("*.payments.svc:50051",
                                       "a.b.payments.svc:50051"));
    assert_false(
        tm_allow_match_pattern("*.payments.svc:50051", "payments.svc:50051"));
    assert_false(tm_allow_match_pattern("*.payments.svc:50051",
                                        "api.payments.svc:50052"));
    assert_false(tm_allow_match_pattern("*.payments.svc:50051",
                                        "api.payments.svc.evil:50051"));
    /* A host wildcard never eats the port separator. */
    assert_false(tm_allow_match_pattern("*:80", "host:8080"));
    assert_true(tm_allow_match_pattern("*:80", "host:80"));
    assert_true(tm_allow_match_pattern("10.1.*.*:7*", "10.1.2.3:7400"));
    assert_false(tm_allow_match_pattern("10.1.*.*:7*", "10.2.2.3:7400"));
    assert_false(tm_allow_match_pattern("10.1.*.*:7*", "10.1.2.3:8400"));
    assert_true(tm_allow_match_pattern("*:*", "anything.example:1"));
    assert_true(tm_allow_match_pattern("[fd00::*]:*", "[fd00::17]:9000"));
    assert_false(tm_allow_match_pattern("[fd00::*]:*", "[fd01::17]:9000"));
    assert_true(tm_allow_match_pattern("Svc.Example:1", "svc.EXAMPLE:1"));
    assert_false(tm_allow_match_pattern("svc:1", "svc"));
    assert_false(tm_allow_match_pattern("svc", "svc:1"));
    assert_false(tm_allow_match_pattern(NULL, "svc:1"));
}

static void test_parse_lists_and_refusals(void **state)
{
    (void)state;
    tm_allowlist_t a = parsed(" a.example:1 , b.example:* ");
    assert_int_equal(a.n, 2);
    assert_string_equal(a.patterns[0], "a.example:1");
    assert_string_equal(a.patterns[1], "b.example:*");
    assert_true(tm_allow_match(&a, "b.example:9"));
    assert_false(tm_allow_match(&a, "a.example:2"));

    const char *bad[] = {
        "",                    /* empty list */
        "a.example:1,",        /* empty pattern */
        "a.example",           /* no port */
        ":80",                 /* no host */
        "a.example:",          /* empty port */
        "a.example:8x",        /* port not digits */
        "a example:80",        /* space in host */
        "http://a.example:80", /* a URL */
        "[::1:80",             /* unclosed bracket */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tm_allowlist_t b = a;
        err[0] = '\0';
        if (tm_allow_parse(&b, bad[i], err, sizeof(err)) == 0)
            fail_msg("pattern list \"%s\" was accepted", bad[i]);
        assert_true(strlen(err) > 0);
        assert_int_equal(b.n, a.n); /* unchanged on failure */
    }
    char many[2048] = "";
    for (int i = 0; i <= TM_ALLOW_MAX; i++)
        strcat(many, i ? ",h:1" : "h:1");
    tm_allowlist_t c;
    assert_int_equal(tm_allow_parse(&c, many, err, sizeof(err)), -1);
}

static void test_validation_denies_outside_targets(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    Trellis__V1__SagaStep s0 = TRELLIS__V1__SAGA_STEP__INIT;
    s0.action = "127.0.0.1:7401/p.S/A";
    s0.compensate = "10.9.9.9:7401/p.S/C";
    Trellis__V1__SagaStep *steps[] = {&s0};
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = "g1";
    r.steps = steps;
    r.n_steps = 1;
    assert_int_equal(tm_validate_submit(&r, &l, err, sizeof(err)), TM_DENIED);
    assert_non_null(strstr(err, "steps[0].compensate"));
    assert_non_null(strstr(err, "10.9.9.9:7401"));
    assert_non_null(strstr(err, "allow-targets"));
    s0.compensate = "localhost:7401/p.S/C";
    assert_int_equal(tm_validate_submit(&r, &l, err, sizeof(err)), 0);
    s0.compensate = "bad target";
    assert_int_equal(tm_validate_submit(&r, &l, err, sizeof(err)), TM_INVALID);

    Trellis__V1__BranchOp cancel = TRELLIS__V1__BRANCH_OP__INIT;
    cancel.op = TRELLIS__V1__OP_KIND__OP_CANCEL;
    cancel.target = "bank.internal:9/bank.v1.Bank/Cancel";
    Trellis__V1__BranchOp *ops[] = {&cancel};
    Trellis__V1__RegisterBranchRequest rb =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    rb.gid = "g";
    rb.branch_id = "01";
    rb.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    rb.ops = ops;
    rb.n_ops = 1;
    assert_int_equal(tm_validate_register(&rb, &l, err, sizeof(err)),
                     TM_DENIED);
    assert_non_null(strstr(err, "ops[0].target"));
    assert_non_null(strstr(err, "bank.internal:9"));
    l.allow = parsed("*.internal:*");
    assert_int_equal(tm_validate_register(&rb, &l, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_loopback_only),
        cmocka_unit_test(test_wildcards_stay_in_their_part),
        cmocka_unit_test(test_parse_lists_and_refusals),
        cmocka_unit_test(test_validation_denies_outside_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
