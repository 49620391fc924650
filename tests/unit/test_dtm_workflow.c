/*
 * Unit tests of DTM's workflows as Trellis workflow requests
 * (tm_dtm_workflow.c): PrepareWorkflow, RegisterBranch of a progress and
 * the closing Submit exactly as DTM's Go SDK (client/workflow) sends
 * them, each refusal with the DTM field named, the progresses DTM's SDK
 * reads back, and the callback trellisd sends to resume a workflow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dtm/wf.pb-c.h"
#include "tm_dtm_map.h"
#include "tm_dtm_workflow.h"

static char err[512];
static tm_limits_t lim;

#define CALLBACK "127.0.0.1:7002/workflow.Workflow/Execute"
/* What the Go SDK's newWorkflow puts in CustomData: json.Marshal of
 * {"name": name, "data": []byte}, keys sorted, the bytes in base64. */
#define CUSTOM_HELLO "{\"data\":\"aGVsbG8=\",\"name\":\"transfer\"}"

static void assert_words(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("message \"%s\" does not mention \"%s\"", err, needle);
}

typedef struct {
    Dtmgimp__DtmRequest r;
    Dtmgimp__DtmTransOptions o;
    Dtmgimp__DtmRequest__ReqExtraEntry x[4];
    Dtmgimp__DtmRequest__ReqExtraEntry *xp[4];
} req_t;

/* A workflow request as the SDK's GetDtmRequest builds it. */
static void req_init(req_t *q, const char *custom)
{
    memset(q, 0, sizeof(*q));
    dtmgimp__dtm_request__init(&q->r);
    dtmgimp__dtm_trans_options__init(&q->o);
    q->r.gid = "wf1";
    q->r.transtype = "workflow";
    q->r.transoptions = &q->o;
    q->r.customeddata = (char *)custom;
    q->r.queryprepared = CALLBACK;
    q->r.steps = "null";
    q->r.reqextra = q->xp;
}

static void add_extra(req_t *q, const char *key, const char *value)
{
    size_t i = q->r.n_reqextra++;
    dtmgimp__dtm_request__req_extra_entry__init(&q->x[i]);
    q->x[i].key = (char *)key;
    q->x[i].value = (char *)value;
    q->xp[i] = &q->x[i];
}

static int prepare(req_t *q, tm_dtm_req_t *m)
{
    return tm_dtm_map_prepare_workflow(&q->r, &lim, m, err, sizeof(err));
}

/* ---- PrepareWorkflow ----------------------------------------------------- */

static void test_prepare_workflow(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, CUSTOM_HELLO);
    q.o.timeouttofail = 5;
    q.o.waitresult = 1;
    assert_int_equal(prepare(&q, &m), 0);
    assert_int_equal(m.to, TM_DTM_TO_START_WORKFLOW);
    assert_string_equal(m.start.gid, "wf1");
    assert_string_equal(m.start.name, "transfer");
    assert_int_equal(m.start.input.len, 5);
    assert_memory_equal(m.start.input.data, "hello", 5);
    assert_string_equal(m.start.resume_target, CALLBACK);
    assert_int_equal(m.start.options->timeout_to_fail_ms, 5000);
    assert_false(m.start.options->wait_result);
    tm_dtm_req_free(&m);
    /* A nil []byte marshals as null: no input. */
    req_init(&q, "{\"name\":\"transfer\",\"data\":null}");
    assert_int_equal(prepare(&q, &m), 0);
    assert_int_equal(m.start.input.len, 0);
    tm_dtm_req_free(&m);
}

static void test_prepare_workflow_refused(void **state)
{
    (void)state;
    struct {
        const char *custom;
        const char *callback;
        const char *steps;
        const char *type;
        int code;
        const char *words;
    } bad[] = {
        {CUSTOM_HELLO, CALLBACK, "null", "saga", TM_INVALID, "TransType"},
        {CUSTOM_HELLO, "", "null", "workflow", TM_INVALID, "QueryPrepared"},
        {CUSTOM_HELLO, "http://app/workflow", "null", "workflow",
         TM_DTM_UNSUPPORTED, "QueryPrepared is a URL"},
        {"", CALLBACK, "null", "workflow", TM_INVALID, "CustomedData is empty"},
        {"{\"name\":", CALLBACK, "null", "workflow", TM_INVALID, "not JSON"},
        {"[1]", CALLBACK, "null", "workflow", TM_INVALID, "object"},
        {"{\"name\":\"t\",\"x\":1}", CALLBACK, "null", "workflow", TM_INVALID,
         "CustomedData has \"x\""},
        {"{\"data\":null}", CALLBACK, "null", "workflow", TM_INVALID,
         "CustomedData.name"},
        {"{\"name\":\"t\",\"data\":\"abc\"}", CALLBACK, "null", "workflow",
         TM_INVALID, "not base64"},
        {"{\"name\":\"my flow\"}", CALLBACK, "null", "workflow", TM_INVALID,
         "name has character 0x20"},
        {CUSTOM_HELLO, CALLBACK, "[{\"action\":\"x\"}]", "workflow", TM_INVALID,
         "Steps is given to a workflow"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        req_t q;
        tm_dtm_req_t m;
        req_init(&q, bad[i].custom);
        q.r.queryprepared = (char *)bad[i].callback;
        q.r.steps = (char *)bad[i].steps;
        q.r.transtype = (char *)bad[i].type;
        int rc = prepare(&q, &m);
        if (rc != bad[i].code)
            fail_msg("case %zu: %d, not %d (%s)", i, rc, bad[i].code, err);
        assert_words(bad[i].words);
        tm_dtm_req_free(&m);
    }
}

/* ---- Submit: the SDK's end of a workflow --------------------------------- */

static int submit(req_t *q, tm_dtm_req_t *m)
{
    return tm_dtm_map_submit(&q->r, &lim, m, err, sizeof(err));
}

static void test_workflow_end(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, CUSTOM_HELLO);
    add_extra(&q, "status", "succeed");
    add_extra(&q, "rollback_reason", "");
    assert_int_equal(submit(&q, &m), 0);
    assert_int_equal(m.to, TM_DTM_TO_SUBMIT);
    assert_string_equal(m.submit.gid, "wf1");
    assert_int_equal(m.submit.n_steps, 0);
    tm_dtm_req_free(&m);
    req_init(&q, CUSTOM_HELLO);
    add_extra(&q, "status", "failed");
    add_extra(&q, "rollback_reason", "insufficient balance");
    assert_int_equal(submit(&q, &m), 0);
    assert_int_equal(m.to, TM_DTM_TO_ABORT);
    assert_string_equal(m.abort.gid, "wf1");
    assert_string_equal(m.abort.reason, "insufficient balance");
    tm_dtm_req_free(&m);
    /* Abort of a workflow is an Abort, with RollbackReason. */
    req_init(&q, "");
    q.r.rollbackreason = "operator";
    assert_int_equal(tm_dtm_map_abort(&q.r, &lim, &m, err, sizeof(err)), 0);
    assert_int_equal(m.to, TM_DTM_TO_ABORT);
    assert_string_equal(m.abort.reason, "operator");
    tm_dtm_req_free(&m);
}

static void test_workflow_end_refused(void **state)
{
    (void)state;
    req_t q;
    tm_dtm_req_t m;
    req_init(&q, CUSTOM_HELLO);
    assert_int_equal(submit(&q, &m), TM_INVALID);
    assert_words("ReqExtra.status is \"\"");
    tm_dtm_req_free(&m);
    req_init(&q, CUSTOM_HELLO);
    add_extra(&q, "status", "prepared");
    assert_int_equal(submit(&q, &m), TM_INVALID);
    assert_words("\"succeed\" or \"failed\"");
    tm_dtm_req_free(&m);
    req_init(&q, CUSTOM_HELLO);
    add_extra(&q, "status", "succeed");
    add_extra(&q, "color", "red");
    assert_int_equal(submit(&q, &m), TM_INVALID);
    assert_words("ReqExtra has \"color\"");
    tm_dtm_req_free(&m);
    req_init(&q, CUSTOM_HELLO);
    add_extra(&q, "status", "succeed");
    q.r.steps = "[{\"action\":\"" CALLBACK "\"}]";
    assert_int_equal(submit(&q, &m), TM_INVALID);
    assert_words("Steps");
    tm_dtm_req_free(&m);
}

/* ---- RegisterBranch: one progress ---------------------------------------- */

typedef struct {
    Dtmgimp__DtmBranchRequest r;
    Dtmgimp__DtmBranchRequest__DataEntry d[3];
    Dtmgimp__DtmBranchRequest__DataEntry *dp[3];
} branch_t;

/* The SDK's registerBranch: Data {"status", "op"}, the result as
 * BusiPayload. */
static void progress_init(branch_t *b, const char *id, const char *op,
                          const char *status, const char *data)
{
    memset(b, 0, sizeof(*b));
    dtmgimp__dtm_branch_request__init(&b->r);
    b->r.gid = "wf1";
    b->r.transtype = "workflow";
    b->r.branchid = (char *)id;
    b->r.busipayload.data = (uint8_t *)data;
    b->r.busipayload.len = strlen(data);
    const char *k[] = {"status", "op"}, *v[] = {status, op};
    for (size_t i = 0; i < 2; i++) {
        dtmgimp__dtm_branch_request__data_entry__init(&b->d[i]);
        b->d[i].key = (char *)k[i];
        b->d[i].value = (char *)v[i];
        b->dp[i] = &b->d[i];
    }
    b->r.n_data = 2;
    b->r.data = b->dp;
}

static int progress(branch_t *b, tm_dtm_req_t *m)
{
    return tm_dtm_map_register(&b->r, &lim, m, err, sizeof(err));
}

static void test_progress(void **state)
{
    (void)state;
    branch_t b;
    tm_dtm_req_t m;
    progress_init(&b, "01", "action", "succeed", "reply");
    assert_int_equal(progress(&b, &m), 0);
    assert_int_equal(m.to, TM_DTM_TO_PROGRESS);
    assert_string_equal(m.reg.branch_id, "01:action");
    assert_int_equal(m.reg.mode, TRELLIS__V1__BRANCH_MODE__MODE_LOCAL);
    assert_int_equal(m.reg.n_ops, 0);
    assert_string_equal(m.record.branch_id, "01:action");
    assert_int_equal(m.record.code, 0);
    assert_memory_equal(m.record.result.data, "reply", 5);
    tm_dtm_req_free(&m);
    /* A business failure: ABORTED, the error message as the data. */
    progress_init(&b, "02", "action", "failed", "no money");
    assert_int_equal(progress(&b, &m), 0);
    assert_int_equal(m.record.code, 10);
    tm_dtm_req_free(&m);
    progress_init(&b, "01", "rollback", "succeed", "");
    assert_int_equal(progress(&b, &m), 0);
    assert_string_equal(m.reg.branch_id, "01:rollback");
    tm_dtm_req_free(&m);
}

static void test_progress_refused(void **state)
{
    (void)state;
    struct {
        const char *id, *op, *status;
        const char *words;
    } bad[] = {
        {"01", "action", "ok", "Data.status is \"ok\""},
        {"01", "", "succeed", "Data.op is \"\""},
        {"01", "a:b", "succeed", "Data.op is \"a:b\""},
        {"0:1", "action", "succeed", "BranchID is \"0:1\""},
        {"", "action", "succeed", "BranchID is \"\""},
        {"0123456789012345678901234567", "action", "succeed", "at most 31"},
        {"01 ", "action", "succeed", "branch_id has character 0x20"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        branch_t b;
        tm_dtm_req_t m;
        progress_init(&b, bad[i].id, bad[i].op, bad[i].status, "");
        if (progress(&b, &m) != TM_INVALID)
            fail_msg("case %zu accepted", i);
        assert_words(bad[i].words);
        tm_dtm_req_free(&m);
    }
    branch_t b;
    tm_dtm_req_t m;
    progress_init(&b, "01", "action", "succeed", "");
    b.d[1].key = "url";
    assert_int_equal(progress(&b, &m), TM_INVALID);
    assert_words("Data has \"url\"");
    tm_dtm_req_free(&m);
}

/* ---- what the SDK reads back, and the callback --------------------------- */

static void add_branch(tm_trans_t *tx, const char *id, int recorded,
                       tm_op_status_t st, const char *result)
{
    tm_branch_t *b = tm_trans_add_branch(tx);
    assert_non_null(b);
    b->branch_id = tm_strdup(id);
    b->mode = TM_MODE_LOCAL;
    b->ops[TM_SLOT_FORWARD].kind = TM_KIND_ACTION;
    b->ops[TM_SLOT_FORWARD].status = st;
    b->ops[TM_SLOT_FORWARD].recorded = recorded;
    if (result) {
        b->ops[TM_SLOT_FORWARD].result_len = strlen(result);
        b->ops[TM_SLOT_FORWARD].result = (uint8_t *)tm_strdup(result);
    }
}

static void test_progresses_reply(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("wf1", TM_TX_PREPARED, 1);
    assert_non_null(tx);
    add_branch(tx, "00", 0, TM_OP_PENDING, NULL); /* the head */
    tx->branches[0].mode = TM_MODE_DTM_WORKFLOW;
    add_branch(tx, "01:action", 1, TM_OP_SUCCEEDED, "r1");
    add_branch(tx, "02:action", 1, TM_OP_FAILED, "no money");
    add_branch(tx, "01:rollback", 1, TM_OP_SUCCEEDED, NULL);
    tm_dtm_progresses_t p;
    assert_int_equal(tm_dtm_progresses_build(tx, &p), 0);
    assert_string_equal(p.reply.transaction->gid, "wf1");
    assert_string_equal(p.reply.transaction->status, "prepared");
    assert_int_equal(p.reply.n_progresses, 3);
    const Dtmgimp__DtmProgress *g = p.reply.progresses[0];
    assert_string_equal(g->branchid, "01");
    assert_string_equal(g->op, "action");
    assert_string_equal(g->status, "succeed");
    assert_memory_equal(g->bindata.data, "r1", 2);
    g = p.reply.progresses[1];
    assert_string_equal(g->branchid, "02");
    assert_string_equal(g->status, "failed");
    assert_memory_equal(g->bindata.data, "no money", 8);
    g = p.reply.progresses[2];
    assert_string_equal(g->branchid, "01");
    assert_string_equal(g->op, "rollback");
    assert_int_equal(g->bindata.len, 0);
    /* It packs: the reply DTM's SDK reads. */
    uint8_t buf[512];
    assert_true(dtmgimp__dtm_progresses_reply__pack(&p.reply, buf) > 0);
    tm_dtm_progresses_free(&p);
    tx->status = TM_TX_SUCCEEDED;
    assert_int_equal(tm_dtm_progresses_build(tx, &p), 0);
    assert_string_equal(p.reply.transaction->status, "succeed");
    tm_dtm_progresses_free(&p);
    tm_trans_free(tx);
}

static void test_callback(void **state)
{
    (void)state;
    Trellis__V1__ResumeRequest rr = TRELLIS__V1__RESUME_REQUEST__INIT;
    rr.gid = "wf1";
    rr.name = "transfer";
    rr.input.data = (uint8_t *)"hello";
    rr.input.len = 5;
    uint8_t stored[128];
    size_t n = trellis__v1__resume_request__pack(&rr, stored);
    char *name;
    size_t len;
    uint8_t *out = tm_dtm_callback_pack(stored, n, &name, &len);
    assert_non_null(out);
    assert_string_equal(name, "transfer");
    Workflow__WorkflowData *wd =
        workflow__workflow_data__unpack(NULL, len, out);
    assert_non_null(wd);
    assert_int_equal(wd->data.len, 5);
    assert_memory_equal(wd->data.data, "hello", 5);
    workflow__workflow_data__free_unpacked(wd, NULL);
    free(out);
    free(name);
    /* Not a ResumeRequest (only a corrupted store holds one). */
    uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_null(tm_dtm_callback_pack(junk, sizeof(junk), &name, &len));
    assert_null(name);
}

static void test_base64(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } good[] = {
        {"", ""},        {"Zg==", "f"},         {"Zm8=", "fo"},
        {"Zm9v", "foo"}, {"aGVsbG8=", "hello"}, {"+/+/", "\xfb\xff\xbf"}};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        uint8_t *b;
        size_t n;
        assert_int_equal(
            tm_dtm_base64_decode(good[i].in, strlen(good[i].in), &b, &n), 0);
        assert_int_equal(n, strlen(good[i].out));
        assert_memory_equal(b, good[i].out, n);
        free(b);
    }
    const char *bad[] = {"Zm9", "Z===", "Zm9v!A==", "Zg==Zg==", "Z=g="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        uint8_t *b;
        size_t n;
        if (tm_dtm_base64_decode(bad[i], strlen(bad[i]), &b, &n) != -1)
            fail_msg("\"%s\" decoded", bad[i]);
        assert_null(b);
    }
}

int main(void)
{
    tm_limits_default(&lim);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepare_workflow),
        cmocka_unit_test(test_prepare_workflow_refused),
        cmocka_unit_test(test_workflow_end),
        cmocka_unit_test(test_workflow_end_refused),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_progress_refused),
        cmocka_unit_test(test_progresses_reply),
        cmocka_unit_test(test_callback),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
