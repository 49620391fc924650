/*
 * Unit tests of DTM's requests as trellis.v1 requests (tm_dtm_map.c) and
 * of the JSON reader under them (tm_json.c): what each DTM request
 * becomes, exactly as DTM's SDKs send it, and that every request that
 * cannot be mapped is refused with the code and the words a DTM user
 * needs (the DTM field, what is wrong or unsupported).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tm_dtm_map.h"

static char err[512];
static tm_limits_t lim;

#define PART "127.0.0.1:7001/trellis.test.Part/"

static void assert_words(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", err, needle);
}

/* ---- tm_json ------------------------------------------------------------- */

static void test_json_values(void **state)
{
    (void)state;
    const char *text = " {\"a\": [1, -2, 3.5, true, false, null],"
                       " \"s\": \"x\\\"\\n\\u00e9\\ud83d\\ude00\", \"o\": {}} ";
    tm_json_t *j;
    assert_int_equal(tm_json_parse(text, strlen(text), &j, err, sizeof(err)),
                     0);
    const tm_json_t *a = tm_json_get(j, "a");
    assert_non_null(a);
    assert_int_equal(a->type, TM_JSON_ARRAY);
    assert_int_equal(a->n_items, 6);
    assert_true(a->items[1].is_integer);
    assert_int_equal(a->items[1].integer, -2);
    assert_false(a->items[2].is_integer);
    assert_int_equal(a->items[3].type, TM_JSON_BOOL);
    assert_true(a->items[3].boolean);
    assert_int_equal(a->items[5].type, TM_JSON_NULL);
    /* quote, newline, e-acute and an emoji (a surrogate pair) */
    assert_string_equal(tm_json_get(j, "s")->str,
                        "x\"\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(tm_json_get(j, "o")->type, TM_JSON_OBJECT);
    assert_null(tm_json_get(j, "missing"));
    tm_json_free(j);
}

static void test_json_refusals(void **state)
{
    (void)state;
    struct {
        const char *text;
        const char *words;
    } bad[] = {
        {"", "unexpected end"},
        {"[1,]", "unexpected character"},
        {"[1] 2", "goes on after"},
        {"{\"a\" 1}", "expected ':'"},
        {"{1: 2}", "member name"},
        {"\"open", "not closed"},
        {"\"a\\u0000b\"", "NUL"},
        {"\"a\\x\"", "unknown escape"},
        {"\"\\ud83d\"", "low half"},
        {"\"tab\there\"", "control character"},
        {"01", "goes on after"},
        {"1.", "after '.'"},
        {"tru", "unexpected character"},
        {"[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]", "deeper"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        tm_json_t *j = (tm_json_t *)1;
        assert_int_equal(tm_json_parse(bad[i].text, strlen(bad[i].text), &j,
                                       err, sizeof(err)),
                         -1);
        assert_null(j);
        assert_words(bad[i].words);
        assert_words("at byte");
    }
}

/* ---- requests as DTM's SDKs build them ----------------------------------- */

typedef struct {
    Dtmgimp__DtmRequest r;
    Dtmgimp__DtmTransOptions o;
    ProtobufCBinaryData payloads[8];
    Dtmgimp__DtmTransOptions__BranchHeadersEntry h[4];
    Dtmgimp__DtmTransOptions__BranchHeadersEntry *hp[4];
} req_t;

static void req_init(req_t *q, const char *type, const char *steps,
                     size_t n_payloads)
{
    memset(q, 0, sizeof(*q));
    dtmgimp__dtm_request__init(&q->r);
    dtmgimp__dtm_trans_options__init(&q->o);
    q->r.gid = "g1";
    q->r.transtype = (char *)type;
    q->r.steps = (char *)steps;
    q->r.transoptions = &q->o;
    for (size_t i = 0; i < n_payloads; i++) {
        q->payloads[i].data = (uint8_t *)"ok";
        q->payloads[i].len = 2;
    }
    q->r.binpayloads = q->payloads;
    q->r.n_binpayloads = n_payloads;
}

static const char *const TWO_STEPS =
    "[{\"action\":\"" PART "Action\",\"compensate\":\"" PART "Compensate\"},"
    "{\"action\":\"" PART "Action\",\"compensate\":\"\"}]";

static void test_saga_becomes_submit(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, "saga", TWO_STEPS, 2);
    q.o.waitresult = 1;
    q.o.timeouttofail = 30;
    q.o.retryinterval = 2;
    q.o.requesttimeout = 5;
    q.o.retrylimit = 4;
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.to, TM_DTM_TO_SUBMIT);
    assert_string_equal(m.submit.gid, "g1");
    assert_int_equal(m.submit.n_steps, 2);
    assert_false(m.submit.concurrent);
    assert_string_equal(m.submit.steps[0]->action, PART "Action");
    assert_string_equal(m.submit.steps[0]->compensate, PART "Compensate");
    assert_string_equal(m.submit.steps[1]->compensate, "");
    assert_int_equal(m.submit.steps[1]->payload.len, 2);
    assert_int_equal(m.submit.steps[1]->n_depends_on, 0);
    const Trellis__V1__TransOptions *o = m.submit.options;
    assert_true(o->wait_result);
    assert_int_equal(o->timeout_to_fail_ms, 30000);
    assert_int_equal(o->retry_interval_ms, 2000);
    assert_int_equal(o->request_timeout_ms, 5000);
    assert_int_equal(o->retry_limit, 4);
    tm_dtm_req_free(&m);
}

static void test_concurrent_saga_orders(void **state)
{
    (void)state;
    const char *three = "[{\"action\":\"" PART "Action\"},"
                        "{\"action\":\"" PART "Action\"},"
                        "{\"action\":\"" PART "Action\"}]";
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, "saga", three, 3);
    q.r.customeddata = "{\"concurrent\":true,\"orders\":{\"2\":[0,1]}}";
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_true(m.submit.concurrent);
    assert_int_equal(m.submit.steps[0]->n_depends_on, 0);
    assert_int_equal(m.submit.steps[1]->n_depends_on, 0);
    assert_int_equal(m.submit.steps[2]->n_depends_on, 2);
    assert_int_equal(m.submit.steps[2]->depends_on[0], 0);
    assert_int_equal(m.submit.steps[2]->depends_on[1], 1);
    tm_dtm_req_free(&m);

    struct {
        const char *custom;
        const char *words;
    } bad[] = {
        {"{\"concurrent\":true,\"orders\":{\"1\":[1]}}", "earlier step"},
        {"{\"concurrent\":true,\"orders\":{\"2\":[\"0\"]}}", "earlier step"},
        {"{\"concurrent\":true,\"orders\":{\"3\":[0]}}", "step indexes 0..2"},
        {"{\"concurrent\":true,\"orders\":{\"01\":[0]}}", "step indexes"},
        {"{\"concurrent\":true,\"orders\":{\"1\":0}}", "an array"},
        {"{\"concurrent\":\"yes\"}", "concurrent (a boolean)"},
        {"{\"branch\":1}", "\"branch\""},
        {"[1]", "a JSON object"},
        {"{", "CustomedData is not JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        q.r.customeddata = (char *)bad[i].custom;
        assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)),
                         TM_INVALID);
        assert_words(bad[i].words);
        tm_dtm_req_free(&m);
    }
}

static void test_saga_steps_refused(void **state)
{
    (void)state;
    struct {
        const char *steps;
        size_t n_payloads;
        int code;
        const char *words;
    } bad[] = {
        {TWO_STEPS, 1, TM_INVALID, "BinPayloads has 1 entries and Steps 2"},
        {"[{\"action\":", 1, TM_INVALID, "Steps is not JSON"},
        {"{}", 0, TM_INVALID, "a JSON array"},
        {"[\"" PART "Action\"]", 1, TM_INVALID, "Steps[0] is a string"},
        {"[{\"action\":\"" PART "A\",\"data\":\"x\"}]", 1, TM_INVALID,
         "Steps[0] has \"data\""},
        {"[{\"action\":5}]", 1, TM_INVALID, "Steps[0].action is a number"},
        {"[]", 0, TM_INVALID, "a saga has at least one step"},
        {"[{\"action\":\"http://shop/api/buy\"}]", 1, TM_DTM_UNSUPPORTED,
         "Steps[0].action is a URL with scheme http://"},
        {"[{\"action\":\"" PART "A\",\"compensate\":\"discovery:///x/a.B/C\"}]",
         1, TM_DTM_UNSUPPORTED,
         "Steps[0].compensate is a URL with scheme "
         "discovery://"},
        {"[{\"action\":\"10.9.9.9:80/a.B/C\"}]", 1, TM_DENIED, "not allowed"},
        {"[{\"action\":\"no-method\"}]", 1, TM_INVALID, "steps[0].action"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        req_t q;
        tm_dtm_req_t m;
        req_init(&q, "saga", bad[i].steps, bad[i].n_payloads);
        assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)),
                         bad[i].code);
        assert_words(bad[i].words);
        tm_dtm_req_free(&m);
    }
}

static void test_options(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, "saga", TWO_STEPS, 2);
    /* a Go map arrives in any order; the request must not depend on it */
    const char *keys[] = {"x-tenant", "authorization", "x-b"};
    for (size_t i = 0; i < 3; i++) {
        dtmgimp__dtm_trans_options__branch_headers_entry__init(&q.h[i]);
        q.h[i].key = (char *)keys[i];
        q.h[i].value = "v";
        q.hp[i] = &q.h[i];
    }
    q.o.branchheaders = q.hp;
    q.o.n_branchheaders = 3;
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.submit.options->n_branch_headers, 3);
    assert_string_equal(m.submit.options->branch_headers[0]->key,
                        "authorization");
    assert_string_equal(m.submit.options->branch_headers[2]->key, "x-tenant");
    tm_dtm_req_free(&m);

    q.h[2].key = "x-tenant";
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("names \"x-tenant\" twice");
    tm_dtm_req_free(&m);
    q.o.n_branchheaders = 0;

    q.o.timeouttofail = -1;
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("TransOptions.TimeoutToFail is -1");
    tm_dtm_req_free(&m);
    q.o.timeouttofail = 0;
    q.o.requesttimeout = 86401;
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("TransOptions.RequestTimeout is 86401 s; at most 86400 s");
    tm_dtm_req_free(&m);
    q.o.requesttimeout = 0;
    q.o.retrylimit = -3;
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("TransOptions.RetryLimit is -3");
    tm_dtm_req_free(&m);
}

static void test_unknown_trans_type(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, "bogus", "", 0);
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("TransType \"bogus\" is not one of saga, msg, tcc, xa");
    tm_dtm_req_free(&m);
    assert_int_equal(tm_dtm_map_prepare(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    tm_dtm_req_free(&m);
    assert_int_equal(tm_dtm_map_abort(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    tm_dtm_req_free(&m);
    req_init(&q, "saga", TWO_STEPS, 2);
    q.r.gid = "bad gid";
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("gid");
    tm_dtm_req_free(&m);
}

/* ---- messages ------------------------------------------------------------ */

static const char *const MSG_STEPS =
    "[{\"action\":\"" PART "Action\"},{\"action\":\"topic://orders\"}]";

static void test_msg_prepare_and_submit(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, "msg", MSG_STEPS, 2);
    q.r.queryprepared = PART "QueryPrepared";
    assert_int_equal(tm_dtm_map_prepare(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.to, TM_DTM_TO_MESSAGE);
    assert_false(m.message.submit);
    assert_string_equal(m.message.query_prepared, PART "QueryPrepared");
    assert_string_equal(m.message.steps[0]->target, PART "Action");
    assert_string_equal(m.message.steps[0]->topic, "");
    assert_string_equal(m.message.steps[1]->topic, "orders");
    tm_dtm_req_free(&m);

    /* The SDK's Submit sends the whole message again: decided at once (or
     * the prepared one with the same content is decided). */
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.to, TM_DTM_TO_MESSAGE);
    assert_true(m.message.submit);
    tm_dtm_req_free(&m);

    /* A Submit with no steps decides a prepared message by its gid. */
    req_init(&q, "msg", "null", 0);
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.to, TM_DTM_TO_SUBMIT);
    assert_int_equal(m.submit.n_steps, 0);
    tm_dtm_req_free(&m);
}

static void test_msg_refused(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, "msg", MSG_STEPS, 2);
    assert_int_equal(tm_dtm_map_prepare(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("QueryPrepared is empty");
    tm_dtm_req_free(&m);
    q.r.queryprepared = "https://shop/query";
    assert_int_equal(tm_dtm_map_prepare(&q.r, &lim, &m, err, sizeof(err)),
                     TM_DTM_UNSUPPORTED);
    assert_words("QueryPrepared is a URL with scheme https://");
    tm_dtm_req_free(&m);
    q.r.queryprepared = PART "QueryPrepared";
    q.r.customeddata = "{\"delay\":10}";
    assert_int_equal(tm_dtm_map_prepare(&q.r, &lim, &m, err, sizeof(err)),
                     TM_DTM_UNSUPPORTED);
    assert_words("delayed messages");
    tm_dtm_req_free(&m);
    q.r.customeddata = "";
    q.r.steps = "[{\"action\":\"" PART "Action\",\"compensate\":\"x\"}]";
    q.r.n_binpayloads = 1;
    assert_int_equal(tm_dtm_map_prepare(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("a msg step has only action");
    tm_dtm_req_free(&m);
}

/* ---- tcc and xa ---------------------------------------------------------- */

static void test_tcc_and_xa(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, "tcc", "null", 0);
    assert_int_equal(tm_dtm_map_prepare(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.to, TM_DTM_TO_BEGIN);
    assert_string_equal(m.begin.gid, "g1");
    tm_dtm_req_free(&m);
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.to, TM_DTM_TO_SUBMIT);
    assert_int_equal(m.submit.n_steps, 0);
    tm_dtm_req_free(&m);
    q.r.rollbackreason = "try failed";
    q.o.waitresult = 1;
    assert_int_equal(tm_dtm_map_abort(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_string_equal(m.abort.reason, "try failed");
    assert_true(m.abort.wait_result);
    tm_dtm_req_free(&m);
    req_init(&q, "xa", TWO_STEPS, 2);
    assert_int_equal(tm_dtm_map_submit(&q.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("Steps is given to a xa transaction");
    tm_dtm_req_free(&m);
    req_init(&q, "saga", "", 0);
    assert_int_equal(tm_dtm_map_prepare(&q.r, &lim, &m, err, sizeof(err)),
                     TM_DTM_UNSUPPORTED);
    tm_dtm_req_free(&m);
}

typedef struct {
    Dtmgimp__DtmBranchRequest r;
    Dtmgimp__DtmBranchRequest__DataEntry d[3];
    Dtmgimp__DtmBranchRequest__DataEntry *dp[3];
} branch_t;

static void branch_init(branch_t *b, const char *type, const char *k1,
                        const char *v1, const char *k2, const char *v2)
{
    memset(b, 0, sizeof(*b));
    dtmgimp__dtm_branch_request__init(&b->r);
    b->r.gid = "g1";
    b->r.transtype = (char *)type;
    b->r.branchid = "01";
    const char *k[] = {k1, k2}, *v[] = {v1, v2};
    for (size_t i = 0; i < 2 && k[i]; i++) {
        dtmgimp__dtm_branch_request__data_entry__init(&b->d[i]);
        b->d[i].key = (char *)k[i];
        b->d[i].value = (char *)v[i];
        b->dp[i] = &b->d[i];
        b->r.n_data++;
    }
    b->r.data = b->dp;
}

static void test_register_branch(void **state)
{
    (void)state;
    branch_t b;
    tm_dtm_req_t m;
    branch_init(&b, "tcc", "confirm", PART "Confirm", "cancel", PART "Cancel");
    assert_int_equal(tm_dtm_map_register(&b.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.to, TM_DTM_TO_REGISTER);
    assert_int_equal(m.reg.mode, TRELLIS__V1__BRANCH_MODE__MODE_TCC);
    assert_string_equal(m.reg.branch_id, "01");
    assert_int_equal(m.reg.n_ops, 2);
    assert_int_equal(m.reg.ops[0]->op, TRELLIS__V1__OP_KIND__OP_CONFIRM);
    assert_int_equal(m.reg.ops[1]->op, TRELLIS__V1__OP_KIND__OP_CANCEL);
    tm_dtm_req_free(&m);

    branch_init(&b, "xa", "url", PART "Phase2", NULL, NULL);
    assert_int_equal(tm_dtm_map_register(&b.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.reg.mode, TRELLIS__V1__BRANCH_MODE__MODE_XA);
    assert_int_equal(m.reg.n_ops, 2);
    assert_int_equal(m.reg.ops[0]->op, TRELLIS__V1__OP_KIND__OP_COMMIT);
    assert_string_equal(m.reg.ops[1]->target, PART "Phase2");
    tm_dtm_req_free(&m);

    branch_init(&b, "tcc", "confirm", PART "Confirm", "try", PART "Try");
    assert_int_equal(tm_dtm_map_register(&b.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("Data has \"try\"");
    tm_dtm_req_free(&m);
    branch_init(&b, "xa", NULL, NULL, NULL, NULL);
    assert_int_equal(tm_dtm_map_register(&b.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    assert_words("Data.url is empty");
    tm_dtm_req_free(&m);
    branch_init(&b, "tcc", "confirm", "http://bank/confirm", NULL, NULL);
    assert_int_equal(tm_dtm_map_register(&b.r, &lim, &m, err, sizeof(err)),
                     TM_DTM_UNSUPPORTED);
    assert_words("Data.confirm is a URL");
    tm_dtm_req_free(&m);
    branch_init(&b, "saga", NULL, NULL, NULL, NULL);
    assert_int_equal(tm_dtm_map_register(&b.r, &lim, &m, err, sizeof(err)),
                     TM_INVALID);
    tm_dtm_req_free(&m);
}

/* Prepare of a workflow: a DTM workflow opens with PrepareWorkflow
 * (tests/unit/test_dtm_workflow.c has the rest of workflows). */
static void test_workflow_prepare_refused(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, "workflow", "", 0);
    assert_int_equal(tm_dtm_map_prepare(&q.r, &lim, &m, err, sizeof(err)),
                     TM_DTM_UNSUPPORTED);
    assert_words("PrepareWorkflow");
    tm_dtm_req_free(&m);
}

static void test_topics(void **state)
{
    (void)state;
    Dtmgimp__DtmTopicRequest r = DTMGIMP__DTM_TOPIC_REQUEST__INIT;
    Trellis__V1__SubscribeRequest s;
    Trellis__V1__UnsubscribeRequest u;
    r.topic = "orders";
    r.url = PART "Action";
    r.remark = "stock";
    assert_int_equal(tm_dtm_map_subscribe(&r, &lim, &s, err, sizeof(err)), 0);
    assert_string_equal(s.target, PART "Action");
    assert_string_equal(s.remark, "stock");
    assert_int_equal(tm_dtm_map_unsubscribe(&r, &u, err, sizeof(err)), 0);
    assert_int_equal(tm_dtm_check_delete_topic(&r, err, sizeof(err)),
                     TM_INVALID);
    assert_words("the Topic only");
    r.url = "http://stock/notify";
    assert_int_equal(tm_dtm_map_subscribe(&r, &lim, &s, err, sizeof(err)),
                     TM_DTM_UNSUPPORTED);
    r.url = "";
    r.remark = "";
    assert_int_equal(tm_dtm_check_delete_topic(&r, err, sizeof(err)), 0);
    r.topic = "bad topic";
    assert_int_not_equal(tm_dtm_check_delete_topic(&r, err, sizeof(err)), 0);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(tm_dtm_status_name(TM_TX_PREPARED), "prepared");
    assert_string_equal(tm_dtm_status_name(TM_TX_SUBMITTED), "submitted");
    assert_string_equal(tm_dtm_status_name(TM_TX_ABORTING), "aborting");
    assert_string_equal(tm_dtm_status_name(TM_TX_SUCCEEDED), "succeed");
    assert_string_equal(tm_dtm_status_name(TM_TX_FAILED), "failed");
}

int main(void)
{
    tm_limits_default(&lim);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_json_refusals),
        cmocka_unit_test(test_saga_becomes_submit),
        cmocka_unit_test(test_concurrent_saga_orders),
        cmocka_unit_test(test_saga_steps_refused),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_unknown_trans_type),
        cmocka_unit_test(test_msg_prepare_and_submit),
        cmocka_unit_test(test_msg_refused),
        cmocka_unit_test(test_tcc_and_xa),
        cmocka_unit_test(test_register_branch),
        cmocka_unit_test(test_workflow_prepare_refused),
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
