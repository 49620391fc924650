/*
 * Unit tests of tm_validate: what trellisd accepts from initiators, and
 * that each refusal's message names the field and the problem; a
 * Submit's pivot (at most one, every other step before or after it, no
 * compensate after it), in chains and graphs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tm_validate.h"

static char err[512];

static void assert_refused(int rc, const char *needle)
{
    assert_int_equal(rc, -1);
    if (!strstr(err, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", err, needle);
}

static void test_gid_charset_and_length(void **state)
{
    (void)state;
    assert_int_equal(tm_validate_gid("order-42_a.b:c", err, sizeof(err)), 0);
    assert_refused(tm_validate_gid("", err, sizeof(err)), "gid is empty");
    assert_refused(tm_validate_gid(NULL, err, sizeof(err)), "gid is empty");
    assert_refused(tm_validate_gid("bad gid", err, sizeof(err)), "0x20");
    assert_refused(tm_validate_gid("semi;colon", err, sizeof(err)), "0x3b");
    assert_refused(tm_validate_gid("caf\xc3\xa9", err, sizeof(err)), "0xc3");
    char long_gid[80];
    memset(long_gid, 'a', 65);
    long_gid[65] = '\0';
    assert_refused(tm_validate_gid(long_gid, err, sizeof(err)),
                   "65 characters");
    long_gid[64] = '\0';
    assert_int_equal(tm_validate_gid(long_gid, err, sizeof(err)), 0);
}

static void test_target_shapes(void **state)
{
    (void)state;
    tm_target_t t;
    assert_int_equal(tm_parse_target("127.0.0.1:7401/trip.v1.Flight/Book",
                                     "action", &t, err, sizeof(err)),
                     0);
    assert_string_equal(t.host_port, "127.0.0.1:7401");
    assert_string_equal(t.method, "/trip.v1.Flight/Book");
    assert_int_equal(
        tm_parse_target("svc.local:80/a.B/C", "x", &t, err, sizeof(err)), 0);
    assert_int_equal(
        tm_parse_target("[::1]:9000/p.S/M", "x", &t, err, sizeof(err)), 0);
    assert_string_equal(t.host_port, "[::1]:9000");

    const char *bad[] = {
        "",                          /* empty */
        "localhost/p.S/M",           /* no port */
        "localhost:0/p.S/M",         /* port 0 */
        "localhost:70000/p.S/M",     /* port too big */
        "localhost:80/S/M",          /* no package */
        "localhost:80/p.S",          /* no method */
        "localhost:80/p.S/M/extra",  /* extra part */
        "localhost:80/p..S/M",       /* empty identifier */
        "localhost:80/p.S/1M",       /* method not an identifier */
        "http://localhost:80/p.S/M", /* a URL */
        "local host:80/p.S/M",       /* space in host */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc =
            tm_parse_target(bad[i], "steps[0].action", NULL, err, sizeof(err));
        if (rc != -1)
            fail_msg("target \"%s\" was accepted", bad[i]);
        assert_non_null(strstr(err, "steps[0].action"));
    }
}

static Trellis__V1__SagaStep step(const char *action, const char *comp)
{
    Trellis__V1__SagaStep s = TRELLIS__V1__SAGA_STEP__INIT;
    s.action = (char *)action;
    s.compensate = (char *)comp;
    return s;
}

static void test_submit_checks_steps(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    l.max_branches = 3;
    l.max_payload = 8;
    assert_int_equal(tm_allow_parse(&l.allow, "h:*", err, sizeof(err)), 0);
    Trellis__V1__SagaStep s0 = step("h:1/p.S/A", "h:1/p.S/C");
    Trellis__V1__SagaStep s1 = step("h:1/p.S/A", "");
    Trellis__V1__SagaStep *steps[4] = {&s0, &s1, &s0, &s0};
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = "g1";
    r.steps = steps;
    r.n_steps = 2;
    assert_int_equal(tm_validate_submit(&r, &l, err, sizeof(err)), 0);

    r.n_steps = 4;
    assert_refused(tm_validate_submit(&r, &l, err, sizeof(err)),
                   "steps has 4 entries; at most 3");
    r.n_steps = 2;

    s1.payload.data = (uint8_t *)"123456789";
    s1.payload.len = 9;
    assert_refused(tm_validate_submit(&r, &l, err, sizeof(err)),
                   "steps[1].payload is 9 bytes; at most 8");
    s1.payload.len = 0;

    uint32_t self_dep = 1;
    s1.depends_on = &self_dep;
    s1.n_depends_on = 1;
    assert_refused(tm_validate_submit(&r, &l, err, sizeof(err)),
                   "only depend on an earlier step");
    uint32_t twice[] = {0, 0};
    s1.depends_on = twice;
    s1.n_depends_on = 2;
    assert_refused(tm_validate_submit(&r, &l, err, sizeof(err)), "twice");
    s1.n_depends_on = 0;

    s1.compensate = "nope";
    assert_refused(tm_validate_submit(&r, &l, err, sizeof(err)),
                   "steps[1].compensate");
    s1.compensate = "";

    r.gid = "";
    assert_refused(tm_validate_submit(&r, &l, err, sizeof(err)), "gid");
}

/* ---- the pivot ---------------------------------------------------------- */

static Trellis__V1__SagaStep pv_steps[6];
static Trellis__V1__SagaStep *pv_ptrs[6];
static uint32_t pv_deps[6][3];

/* n steps, each with a compensate, a chain unless concurrent; the pivot
 * at index pivot (-1: none). */
static Trellis__V1__SubmitRequest pivot_saga(size_t n, int concurrent,
                                             int pivot)
{
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    for (size_t i = 0; i < n; i++) {
        pv_steps[i] = step("h:1/p.S/A", "h:1/p.S/C");
        pv_steps[i].pivot = (int)i == pivot;
        pv_ptrs[i] = &pv_steps[i];
    }
    r.gid = "g1";
    r.steps = pv_ptrs;
    r.n_steps = n;
    r.concurrent = concurrent;
    return r;
}

static void pv_dep(size_t i, uint32_t on)
{
    Trellis__V1__SagaStep *s = &pv_steps[i];
    pv_deps[i][s->n_depends_on++] = on;
    s->depends_on = pv_deps[i];
}

static void no_compensate(size_t i)
{
    pv_steps[i].compensate = "";
}

static int check(const Trellis__V1__SubmitRequest *r)
{
    tm_limits_t l;
    tm_limits_default(&l);
    assert_int_equal(tm_allow_parse(&l.allow, "h:*", err, sizeof(err)), 0);
    return tm_validate_submit(r, &l, err, sizeof(err));
}

static void test_pivot_in_a_chain(void **state)
{
    (void)state;
    /* Before it: anything; after it: no compensate. */
    Trellis__V1__SubmitRequest r = pivot_saga(4, 0, 1);
    no_compensate(2);
    no_compensate(3);
    assert_int_equal(check(&r), 0);
    /* The pivot may keep its own compensate, and be first or last. */
    r = pivot_saga(3, 0, 2);
    assert_int_equal(check(&r), 0);
    r = pivot_saga(3, 0, 0);
    no_compensate(1);
    no_compensate(2);
    assert_int_equal(check(&r), 0);

    r = pivot_saga(3, 0, 1);
    no_compensate(2);
    pv_steps[2].pivot = 1;
    assert_refused(check(&r), "steps[1] and steps[2] are both marked pivot");

    r = pivot_saga(4, 0, 1);
    no_compensate(2);
    assert_refused(check(&r),
                   "steps[3] comes after the pivot steps[1] and has a "
                   "compensate");
}

static void test_pivot_in_a_graph(void **state)
{
    (void)state;
    /* 0 and 1 start at once, the pivot 2 waits for both, 3 and 4 follow
     * it (4 through 3): everything is before or after. */
    Trellis__V1__SubmitRequest r = pivot_saga(5, 1, 2);
    pv_dep(2, 0);
    pv_dep(2, 1);
    pv_dep(3, 2);
    pv_dep(4, 3);
    pv_dep(4, 0); /* after the pivot through 3, whatever else it waits for */
    no_compensate(3);
    no_compensate(4);
    assert_int_equal(check(&r), 0);

    /* A root nobody orders against the pivot. */
    r = pivot_saga(3, 1, 1);
    pv_dep(1, 0);
    assert_refused(check(&r), "steps[2] is neither before nor after the "
                              "pivot steps[1]");
    /* A side branch: 1 depends on 0 as the pivot 2 does, but the pivot
     * does not wait for it, nor it for the pivot. */
    r = pivot_saga(4, 1, 2);
    pv_dep(1, 0);
    pv_dep(2, 0);
    pv_dep(3, 2);
    no_compensate(3);
    assert_refused(check(&r), "steps[1] is neither before nor after");
    assert_non_null(strstr(err, "make the pivot depend on it"));
    /* Explicit depends_on mixed with the chain: 2 (no depends_on, a
     * chain) follows 1, which follows the pivot 0. */
    r = pivot_saga(3, 0, 0);
    pv_dep(1, 0);
    no_compensate(1);
    no_compensate(2);
    assert_int_equal(check(&r), 0);
    /* Concurrent without depends_on: every step a root, ambiguous. */
    r = pivot_saga(2, 1, 0);
    no_compensate(1);
    assert_refused(check(&r), "steps[1] is neither before nor after the "
                              "pivot steps[0]");
    /* The same steps as a chain are fine. */
    r = pivot_saga(2, 0, 0);
    no_compensate(1);
    assert_int_equal(check(&r), 0);
}

static void test_options_limits_and_headers(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.retry_interval_ms = 100;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    o.request_timeout_ms = l.max_option_ms + 1;
    assert_refused(tm_validate_options(&o, &l, err, sizeof(err)),
                   "options.request_timeout_ms");
    o.request_timeout_ms = 0;

    Trellis__V1__Header h = TRELLIS__V1__HEADER__INIT;
    Trellis__V1__Header *hs[] = {&h};
    o.branch_headers = hs;
    o.n_branch_headers = 1;
    h.key = "x-tenant";
    h.value = "blue";
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    h.key = "dtm-gid";
    assert_refused(tm_validate_options(&o, &l, err, sizeof(err)), "reserved");
    h.key = "X-Upper";
    assert_refused(tm_validate_options(&o, &l, err, sizeof(err)),
                   "branch_headers[0].key");
    h.key = "ok";
    h.value = "line\nbreak";
    assert_refused(tm_validate_options(&o, &l, err, sizeof(err)), "printable");
}

static void test_register_checks_ops_against_mode(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    Trellis__V1__BranchOp confirm = TRELLIS__V1__BRANCH_OP__INIT;
    confirm.op = TRELLIS__V1__OP_KIND__OP_CONFIRM;
    confirm.target = "h:1/bank.v1.Bank/Confirm";
    assert_int_equal(tm_allow_parse(&l.allow, "h:*", err, sizeof(err)), 0);
    Trellis__V1__BranchOp *ops[] = {&confirm};
    Trellis__V1__RegisterBranchRequest r =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    r.gid = "g";
    r.branch_id = "b1";
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    r.ops = ops;
    r.n_ops = 1;
    assert_int_equal(tm_validate_register(&r, &l, err, sizeof(err)), 0);
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_SAGA;
    assert_refused(tm_validate_register(&r, &l, err, sizeof(err)),
                   "not an op of a saga branch");
    /* the forward op may be named (its target kept to be shown) */
    confirm.op = TRELLIS__V1__OP_KIND__OP_ACTION;
    assert_int_equal(tm_validate_register(&r, &l, err, sizeof(err)), 0);
    confirm.target = "elsewhere:1/bank.v1.Bank/Action";
    assert_int_equal(tm_validate_register(&r, &l, err, sizeof(err)), TM_DENIED);
    confirm.target = "h:1/bank.v1.Bank/Confirm";
    confirm.op = TRELLIS__V1__OP_KIND__OP_CONFIRM;
    r.mode = 99;
    assert_refused(tm_validate_register(&r, &l, err, sizeof(err)), "mode 99");
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_MSG;
    assert_refused(tm_validate_register(&r, &l, err, sizeof(err)),
                   "PrepareMessage makes");
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_MSG_CHECK;
    assert_refused(tm_validate_register(&r, &l, err, sizeof(err)),
                   "PrepareMessage makes");
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_WORKFLOW;
    assert_refused(tm_validate_register(&r, &l, err, sizeof(err)),
                   "workflow's head");
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    r.branch_id = "has space";
    assert_refused(tm_validate_register(&r, &l, err, sizeof(err)), "branch_id");
}

static void test_prepare_message_checks(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    l.max_branches = 3;
    assert_int_equal(tm_allow_parse(&l.allow, "h:*", err, sizeof(err)), 0);
    Trellis__V1__MessageStep s0 = TRELLIS__V1__MESSAGE_STEP__INIT;
    Trellis__V1__MessageStep s1 = TRELLIS__V1__MESSAGE_STEP__INIT;
    s0.target = "h:1/stock.Stock/Reserve";
    s1.topic = "order.created";
    Trellis__V1__MessageStep *steps[] = {&s0, &s1, &s1};
    Trellis__V1__PrepareMessageRequest r =
        TRELLIS__V1__PREPARE_MESSAGE_REQUEST__INIT;
    r.gid = "m1";
    r.steps = steps;
    r.n_steps = 2;
    r.query_prepared = "h:1/order.Order/QueryPrepared";
    assert_int_equal(tm_validate_prepare_message(&r, &l, err, sizeof(err)), 0);

    r.n_steps = 3; /* with the head: 4 branches */
    assert_refused(tm_validate_prepare_message(&r, &l, err, sizeof(err)),
                   "steps has 3 entries; at most 2");
    r.n_steps = 0;
    assert_refused(tm_validate_prepare_message(&r, &l, err, sizeof(err)),
                   "steps is empty");
    r.n_steps = 2;

    s1.target = "h:1/a.A/B";
    assert_refused(tm_validate_prepare_message(&r, &l, err, sizeof(err)),
                   "steps[1] must name either a target or a topic (it names "
                   "both)");
    s1.target = "";
    s1.topic = "";
    assert_refused(tm_validate_prepare_message(&r, &l, err, sizeof(err)),
                   "it names neither");
    s1.topic = "bad topic";
    assert_refused(tm_validate_prepare_message(&r, &l, err, sizeof(err)),
                   "steps[1].topic has character 0x20");
    s1.topic = "order.created";

    s0.target = "evil:1/x.X/Y";
    assert_int_equal(tm_validate_prepare_message(&r, &l, err, sizeof(err)),
                     TM_DENIED);
    assert_non_null(strstr(err, "steps[0].target"));
    s0.target = "h:1/stock.Stock/Reserve";

    r.query_prepared = "evil:1/order.Order/QueryPrepared";
    assert_int_equal(tm_validate_prepare_message(&r, &l, err, sizeof(err)),
                     TM_DENIED);
    assert_non_null(strstr(err, "query_prepared"));
    r.query_prepared = "";
    assert_refused(tm_validate_prepare_message(&r, &l, err, sizeof(err)),
                   "query_prepared is empty");
    r.submit = 1; /* sent at once: nothing to check back */
    assert_int_equal(tm_validate_prepare_message(&r, &l, err, sizeof(err)), 0);
}

static void test_topic_requests_checks(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    assert_int_equal(tm_allow_parse(&l.allow, "h:*", err, sizeof(err)), 0);
    Trellis__V1__SubscribeRequest s = TRELLIS__V1__SUBSCRIBE_REQUEST__INIT;
    s.topic = "order.created";
    s.target = "h:2/ship.Ship/OnOrder";
    assert_int_equal(tm_validate_subscribe(&s, &l, err, sizeof(err)), 0);
    s.target = "evil:2/ship.Ship/OnOrder";
    assert_int_equal(tm_validate_subscribe(&s, &l, err, sizeof(err)),
                     TM_DENIED);
    s.target = "not a target";
    assert_refused(tm_validate_subscribe(&s, &l, err, sizeof(err)), "target");
    s.target = "h:2/ship.Ship/OnOrder";
    s.topic = "";
    assert_refused(tm_validate_subscribe(&s, &l, err, sizeof(err)),
                   "topic is empty");
    s.topic = "t";
    char remark[300];
    memset(remark, 'r', sizeof(remark) - 1);
    remark[sizeof(remark) - 1] = 0;
    s.remark = remark;
    assert_refused(tm_validate_subscribe(&s, &l, err, sizeof(err)), "remark");

    Trellis__V1__UnsubscribeRequest u = TRELLIS__V1__UNSUBSCRIBE_REQUEST__INIT;
    u.topic = "t";
    u.target = "evil:2/ship.Ship/OnOrder"; /* allowed or not, it may go */
    assert_int_equal(tm_validate_unsubscribe(&u, err, sizeof(err)), 0);
    Trellis__V1__ListSubscriptionsRequest q =
        TRELLIS__V1__LIST_SUBSCRIPTIONS_REQUEST__INIT;
    assert_int_equal(tm_validate_list_subscriptions(&q, err, sizeof(err)), 0);
    q.topic = "a b";
    assert_refused(tm_validate_list_subscriptions(&q, err, sizeof(err)),
                   "topic");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gid_charset_and_length),
        cmocka_unit_test(test_target_shapes),
        cmocka_unit_test(test_submit_checks_steps),
        cmocka_unit_test(test_pivot_in_a_chain),
        cmocka_unit_test(test_pivot_in_a_graph),
        cmocka_unit_test(test_options_limits_and_headers),
        cmocka_unit_test(test_register_checks_ops_against_mode),
        cmocka_unit_test(test_prepare_message_checks),
        cmocka_unit_test(test_topic_requests_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
