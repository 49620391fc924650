/*
 * test_workflow_input.c: workflows (trellis_workflow.h) against a real
 * trellisd, with the workflow service hosted by the test process itself
 * (itest_workflow.h), given what they must refuse. One gid runs once per
 * process (a second execute of a running gid), and the registry's misuse
 * (an unknown name, a name registered twice or malformed, a bad address);
 * bad input at the raw RPCs: Resume of an unknown name or one holding a
 * NUL, RecordStep of an unknown gid, over max-result or recorded twice
 * differently, Submit with a step unrecorded, a resume target trellisd
 * may not call, a local step outside a workflow.
 */
#include "itest_workflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/v1/tm.pb-c.h"

/* ---- one run per gid, misuse ----------------------------------------- */

static void *execute_slow(void *arg)
{
    (void)arg;
    char err[256];
    trellis_trans_status_t st;
    trellis_options_t o = opts(60000);
    trellis_rc_t rc = trellis_workflow_execute(
        X->w, "slow", "wf-slow", NULL, 0, &o, &st, NULL, 0, err, sizeof err);
    return (void *)(intptr_t)(rc == TRELLIS_OK &&
                              st == TRELLIS_TRANS_SUCCEEDED);
}

static int slow_entered(void *arg)
{
    (void)arg;
    return atomic_load(&W.slow_entered);
}

static void test_one_run_per_gid(void **state)
{
    char err[512];
    wft_start(state, "wf_once", NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, execute_slow, NULL), 0);
    assert_true(harness_poll(slow_entered, NULL, ITEST_FINAL_TIMEOUT_MS, 5));
    trellis_trans_status_t st;
    trellis_rc_t rc = trellis_workflow_execute(
        X->w, "slow", "wf-slow", NULL, 0, NULL, &st, NULL, 0, err, sizeof err);
    assert_int_equal(rc, TRELLIS_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "running in this process"));
    atomic_store(&W.slow_release, 1);
    void *ok = NULL;
    pthread_join(th, &ok);
    assert_true(ok != NULL);

    rc = trellis_workflow_execute(X->w, "nope", "wf-x", NULL, 0, NULL, &st,
                                  NULL, 0, err, sizeof err);
    assert_int_equal(rc, TRELLIS_NOT_FOUND);
    rc = trellis_workflows_register(X->w, "slow", wf_slow, NULL, err,
                                    sizeof err);
    assert_int_equal(rc, TRELLIS_ALREADY_EXISTS);
    rc = trellis_workflows_register(X->w, "bad name", wf_slow, NULL, err,
                                    sizeof err);
    assert_int_equal(rc, TRELLIS_INVALID_ARGUMENT);
    rc = trellis_workflows_set_address(X->w, "127.0.0.1", err, sizeof err);
    assert_int_equal(rc, TRELLIS_INVALID_ARGUMENT);
    wft_pass(state);
}

/* ---- bad input at the raw RPCs --------------------------------------- */

/* Pack m and call method at addr; the rc, err filled. */
static trellis_rc_t raw(const char *addr, const char *method,
                        const ProtobufCMessage *m, const char *const *keys,
                        const char *const *values, size_t n_md, char *err,
                        size_t errlen)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    trellis_rc_t rc =
        trellis_call_unary(addr, method, buf, len, keys, values, n_md, 5000,
                           &reply, &reply_len, err, errlen);
    fprintf(stderr, "%s: rc %d %s\n", method, rc, rc ? err : "");
    free(buf);
    free(reply);
    return rc;
}

static trellis_rc_t record(const char *gid, const char *id, uint32_t code,
                           const void *result, size_t len, char *err,
                           size_t errlen)
{
    Trellis__V1__RecordStepRequest r = TRELLIS__V1__RECORD_STEP_REQUEST__INIT;
    r.gid = (char *)gid;
    r.branch_id = (char *)id;
    r.code = code;
    r.result.data = (uint8_t *)result;
    r.result.len = len;
    return raw(harness_server_addr(X->t->tm), "/trellis.v1.TM/RecordStep",
               &r.base, NULL, NULL, 0, err, errlen);
}

static trellis_rc_t start_raw(const char *gid, const char *target, char *err,
                              size_t errlen)
{
    Trellis__V1__StartWorkflowRequest r =
        TRELLIS__V1__START_WORKFLOW_REQUEST__INIT;
    r.gid = (char *)gid;
    r.name = "raw";
    r.input.data = (uint8_t *)"x";
    r.input.len = 1;
    r.resume_target = (char *)target;
    return raw(harness_server_addr(X->t->tm), "/trellis.v1.TM/StartWorkflow",
               &r.base, NULL, NULL, 0, err, errlen);
}

static void test_bad_input(void **state)
{
    static const char *const args[] = {"--allow-targets", "127.0.0.1:*", NULL};
    char err[1024], target[128];
    wft_start(state, "wf_badinput", args);
    trellis_client_t *c = X->t->client;
    snprintf(target, sizeof target, "%s/trellis.v1.Workflow/Resume", X->addr);

    /* Resume of a name this service does not know. */
    static const char *const keys[] = {"dtm-gid", "dtm-op"};
    static const char *const values[] = {"wf-u", "resume"};
    Trellis__V1__ResumeRequest rq = TRELLIS__V1__RESUME_REQUEST__INIT;
    rq.gid = "wf-u";
    rq.name = "nope";
    assert_int_equal(raw(X->addr, "/trellis.v1.Workflow/Resume", &rq.base, keys,
                         values, 2, err, sizeof err),
                     TRELLIS_ABORTED);
    assert_non_null(strstr(err, "not registered"));
    /* A name holding a NUL byte: refused whole, not cut at the NUL. */
    static const uint8_t nul_name[] = {0x0a, 4,   'w', 'f', '-', 'u', 0x12,
                                       5,    's', 'l', 'o', 0,   'w'};
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    assert_int_equal(trellis_call_unary(X->addr, "/trellis.v1.Workflow/Resume",
                                        nul_name, sizeof nul_name, keys, values,
                                        2, 5000, &reply, &reply_len, err,
                                        sizeof err),
                     TRELLIS_ABORTED);
    assert_non_null(strstr(err, "NUL"));

    /* RecordStep: unknown gid; a result over max-result. */
    assert_int_equal(record("wf-none", "01", 0, "a", 1, err, sizeof err),
                     TRELLIS_NOT_FOUND);
    size_t big = 65537;
    uint8_t *huge = calloc(1, big);
    assert_non_null(huge);
    assert_int_equal(record("wf-none", "01", 0, huge, big, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    free(huge);

    /* A step recorded twice: the same is fine, different is refused. */
    assert_int_equal(start_raw("wf-raw", target, err, sizeof err), TRELLIS_OK);
    trellis_branch_op_t comp = {TRELLIS_OP_COMPENSATE, X->compensate};
    assert_int_equal(trellis_register_branch(c, "wf-raw", "01",
                                             TRELLIS_MODE_SAGA, &comp, 1, "ok",
                                             2, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(record("wf-raw", "01", 0, "a", 1, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(record("wf-raw", "01", 0, "a", 1, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(record("wf-raw", "01", 0, "b", 1, err, sizeof err),
                     TRELLIS_ALREADY_EXISTS);
    /* A registered step without a result: no commit. */
    assert_int_equal(trellis_register_branch(c, "wf-raw", "02",
                                             TRELLIS_MODE_SAGA, &comp, 1, "ok",
                                             2, err, sizeof err),
                     TRELLIS_OK);
    trellis_trans_status_t st;
    assert_int_equal(
        trellis_submit(c, "wf-raw", 0, &st, NULL, 0, err, sizeof err),
        TRELLIS_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "02"));
    assert_int_equal(
        trellis_abort(c, "wf-raw", "test over", 1, &st, err, sizeof err),
        TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);

    /* A resume target trellisd may not call. */
    assert_int_equal(start_raw("wf-far",
                               "10.0.0.1:1/trellis.v1.Workflow/Resume", err,
                               sizeof err),
                     TRELLIS_PERMISSION_DENIED);

    /* A local step outside a workflow. */
    assert_int_equal(trellis_begin(c, "tx-plain", NULL, err, sizeof err),
                     TRELLIS_OK);
    trellis_branch_op_t local = {TRELLIS_OP_COMPENSATE, target};
    assert_int_equal(trellis_register_branch(c, "tx-plain", "01",
                                             TRELLIS_MODE_LOCAL, &local, 1, "x",
                                             1, err, sizeof err),
                     TRELLIS_FAILED_PRECONDITION);
    assert_int_equal(
        trellis_abort(c, "tx-plain", "test over", 1, &st, err, sizeof err),
        TRELLIS_OK);
    wft_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_one_run_per_gid, wft_teardown),
        cmocka_unit_test_teardown(test_bad_input, wft_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
