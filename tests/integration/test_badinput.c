/*
 * test_badinput.c: input trellisd must refuse with INVALID_ARGUMENT (and a
 * message) without storing anything — bad gids, a malformed protobuf, too
 * many steps, an oversize payload, malformed targets, dependencies on
 * later steps, a NUL inside a string field (issue 12 item 14) — and the
 * limits' boundaries, which it must accept; the branches a Begin
 * registers are checked alike. Requests
 * are built with protobuf-c and sent raw with trellis_call_unary, so the
 * TM's checks are tested whatever the SDK checks first; the SDK path is
 * tested too where it adds something.
 */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis_msg.h"
#include "trellis/v1/tm.pb-c.h"

#define MAX_STEPS 8
#define MAX_PAYLOAD 1024
#define SUBMIT "/trellis.v1.TM/Submit"

static const char *const TM_ARGS[] = {"--max-steps", "8", "--max-payload",
                                      "1024", NULL};

/* One raw step description. */
typedef struct {
    const char *action, *compensate, *payload;
    size_t payload_len; /* 0: strlen(payload) */
    int depends_on;     /* -1: none */
} raw_step_t;

static trellis_rc_t send_raw(itest_t *t, const char *method, const void *req,
                             size_t len, char *err, size_t errlen)
{
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    trellis_rc_t rc =
        trellis_call_unary(harness_server_addr(t->tm), method, req, len, NULL,
                           NULL, 0, 10000, &reply, &reply_len, err, errlen);
    free(reply);
    return rc;
}

/* Submit gid with steps through a hand-built SubmitRequest. */
static trellis_rc_t raw_submit(itest_t *t, const char *gid,
                               const raw_step_t *steps, size_t n, char *err,
                               size_t errlen)
{
    Trellis__V1__SagaStep *pb = calloc(n ? n : 1, sizeof *pb);
    Trellis__V1__SagaStep **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    uint32_t *deps = calloc(n ? n : 1, sizeof *deps);
    assert_true(pb && ptrs && deps);
    for (size_t i = 0; i < n; i++) {
        trellis__v1__saga_step__init(&pb[i]);
        pb[i].action = (char *)steps[i].action;
        pb[i].compensate = (char *)steps[i].compensate;
        pb[i].payload.data = (uint8_t *)steps[i].payload;
        pb[i].payload.len = steps[i].payload_len ? steps[i].payload_len
                                                 : strlen(steps[i].payload);
        if (steps[i].depends_on >= 0) {
            deps[i] = (uint32_t)steps[i].depends_on;
            pb[i].n_depends_on = 1;
            pb[i].depends_on = &deps[i];
        }
        ptrs[i] = &pb[i];
    }
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.wait_result = 1;
    o.retry_interval_ms = ITEST_RETRY_INTERVAL_MS;
    Trellis__V1__SubmitRequest req = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    req.gid = (char *)gid;
    req.n_steps = n;
    req.steps = ptrs;
    req.options = &o;
    req.concurrent = steps[0].depends_on >= 0;
    size_t len = trellis__v1__submit_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    trellis__v1__submit_request__pack(&req, buf);
    trellis_rc_t rc = send_raw(t, SUBMIT, buf, len, err, errlen);
    free(buf);
    free(pb);
    free(ptrs);
    free(deps);
    return rc;
}

static raw_step_t ok_step(itest_t *t)
{
    return (raw_step_t){t->action, t->compensate, "ok", 0, -1};
}

/* rc must be INVALID_ARGUMENT with a message, and gid must not exist. */
static void assert_refused(itest_t *t, const char *gid, trellis_rc_t rc,
                           const char *err)
{
    if (rc != TRELLIS_INVALID_ARGUMENT)
        fail_msg("gid '%s': rc %d (%s), want INVALID_ARGUMENT", gid, rc, err);
    assert_true(strlen(err) > 0);
    char qerr[512];
    trellis_trans_info_t *info = NULL;
    trellis_rc_t q = trellis_query(t->client, gid, &info, qerr, sizeof qerr);
    trellis_trans_info_free(info);
    if (q != TRELLIS_NOT_FOUND && q != TRELLIS_INVALID_ARGUMENT)
        fail_msg("after a refused submit, query '%s': rc %d", gid, q);
}

/* Transactions stored, of any status. */
static size_t stored(itest_t *t)
{
    char err[512];
    trellis_list_filter_t f;
    memset(&f, 0, sizeof f);
    f.page_size = 1000;
    trellis_list_page_t *page = NULL;
    trellis_rc_t rc = trellis_list(t->client, &f, &page, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_list: rc %d: %s", rc, err);
    size_t n = page->n;
    trellis_list_page_free(page);
    return n;
}

static void assert_accepted(itest_t *t, const char *gid, trellis_rc_t rc,
                            const char *err)
{
    if (rc != TRELLIS_OK)
        fail_msg("gid '%s': rc %d (%s), want OK", gid, rc, err);
    trellis_trans_info_t *info = itest_query(t, gid);
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_free(info);
}

static void test_bad_gids(void **state)
{
    itest_t *t = itest_start(state, "bad_gid", TM_ARGS);
    char long65[66], long64[65], err[512];
    memset(long65, 'a', 65);
    long65[65] = '\0';
    memset(long64, 'b', 64);
    long64[64] = '\0';
    const char *bad[] = {"",         long65,        "bad gid",  "bad/gid",
                         "bad\"gid", "gid\xc3\xa9", "tab\tgid", "semi;gid"};
    raw_step_t step = ok_step(t);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_refused(t, bad[i],
                       raw_submit(t, bad[i], &step, 1, err, sizeof err), err);
        /* Through the SDK's saga builder: refused by it or by trellisd. */
        trellis_saga_t *s = NULL;
        trellis_rc_t rc = trellis_saga_new(bad[i], &s, err, sizeof err);
        if (rc == TRELLIS_OK) {
            assert_int_equal(trellis_saga_add_step(s, t->action, NULL, "ok", 2,
                                                   err, sizeof err),
                             0);
            rc = trellis_saga_submit(t->client, s, NULL, NULL, 0, err,
                                     sizeof err);
        }
        trellis_saga_free(s);
        assert_refused(t, bad[i], rc, err);
    }
    assert_int_equal(stored(t), 0);
    /* The edges of what is allowed: 64 characters, all of [A-Za-z0-9_.:-]. */
    assert_accepted(t, long64, raw_submit(t, long64, &step, 1, err, sizeof err),
                    err);
    assert_accepted(t, "Az09_.:-",
                    raw_submit(t, "Az09_.:-", &step, 1, err, sizeof err), err);
    assert_int_equal(stored(t), 2);
    itest_pass(state);
}

static void test_malformed_protobuf(void **state)
{
    itest_t *t = itest_start(state, "bad_protobuf", TM_ARGS);
    char err[512];
    /* Field 1 (gid) claiming 2^32 bytes; then bytes of no field at all. */
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff,
                                      0xff, 0x0f, 0x41, 0x42};
    static const uint8_t noise[] = {0xff, 0xfe, 0xfd, 0x00, 0x13, 0x37};
    assert_int_equal(
        send_raw(t, SUBMIT, garbage, sizeof garbage, err, sizeof err),
        TRELLIS_INVALID_ARGUMENT);
    assert_true(strlen(err) > 0);
    assert_int_equal(send_raw(t, SUBMIT, noise, sizeof noise, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(send_raw(t, "/trellis.v1.TM/Query", garbage,
                              sizeof garbage, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    /* An empty message is a valid SubmitRequest with an empty gid. */
    assert_int_equal(send_raw(t, SUBMIT, "", 0, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(stored(t), 0);
    itest_pass(state);
}

static void test_too_many_steps(void **state)
{
    itest_t *t = itest_start(state, "bad_steps", TM_ARGS);
    char err[512];
    raw_step_t steps[MAX_STEPS + 1];
    for (size_t i = 0; i < MAX_STEPS + 1; i++)
        steps[i] = ok_step(t);
    assert_refused(
        t, "nine-steps",
        raw_submit(t, "nine-steps", steps, MAX_STEPS + 1, err, sizeof err),
        err);
    assert_accepted(
        t, "eight-steps",
        raw_submit(t, "eight-steps", steps, MAX_STEPS, err, sizeof err), err);
    assert_int_equal(stored(t), 1);
    itest_pass(state);
}

/* A valid testpart script of exactly len bytes: "ok;#" and padding. */
static char *script_of_size(size_t len)
{
    char *p = malloc(len + 1);
    assert_non_null(p);
    memset(p, 'x', len);
    memcpy(p, "ok;#", 4);
    p[len] = '\0';
    return p;
}

static void test_oversize_payload(void **state)
{
    itest_t *t = itest_start(state, "bad_payload", TM_ARGS);
    char err[512];
    char *big = script_of_size(MAX_PAYLOAD + 1);
    char *edge = script_of_size(MAX_PAYLOAD);
    raw_step_t step = ok_step(t);
    step.payload = big;
    assert_refused(t, "too-big",
                   raw_submit(t, "too-big", &step, 1, err, sizeof err), err);
    step.payload = edge;
    assert_accepted(t, "just-fits",
                    raw_submit(t, "just-fits", &step, 1, err, sizeof err), err);
    free(big);
    free(edge);
    assert_int_equal(stored(t), 1);
    itest_pass(state);
}

static void test_bad_targets(void **state)
{
    itest_t *t = itest_start(state, "bad_target", TM_ARGS);
    char port[16], err[512];
    snprintf(port, sizeof port, "%d", harness_server_port(t->part));
    char no_method[96], no_port[96], no_package[96], bad_port[96];
    snprintf(no_method, sizeof no_method, "127.0.0.1:%s", port);
    snprintf(no_port, sizeof no_port, "127.0.0.1/trellis.test.Part/Action");
    snprintf(no_package, sizeof no_package, "127.0.0.1:%s/Action", port);
    snprintf(bad_port, sizeof bad_port, "127.0.0.1:http/trellis.test.Part/A");
    const char *bad[] = {"",
                         no_method,
                         no_port,
                         no_package,
                         bad_port,
                         "garbage",
                         "/trellis.test.Part/Action",
                         "127.0.0.1:1/trellis.test.Part/Ac tion"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char gid[32];
        raw_step_t step = ok_step(t);
        snprintf(gid, sizeof gid, "bad-action-%zu", i);
        step.action = bad[i];
        assert_refused(t, gid, raw_submit(t, gid, &step, 1, err, sizeof err),
                       err);
        if (!bad[i][0])
            continue; /* an empty compensate means "no undo": valid */
        snprintf(gid, sizeof gid, "bad-compensate-%zu", i);
        step = ok_step(t);
        step.compensate = bad[i];
        assert_refused(t, gid, raw_submit(t, gid, &step, 1, err, sizeof err),
                       err);
    }
    assert_int_equal(stored(t), 0);
    itest_pass(state);
}

static void test_bad_dependencies(void **state)
{
    itest_t *t = itest_start(state, "bad_depends", TM_ARGS);
    char err[512];
    raw_step_t steps[3] = {ok_step(t), ok_step(t), ok_step(t)};
    steps[1].depends_on = 1; /* itself */
    assert_refused(t, "dep-self",
                   raw_submit(t, "dep-self", steps, 3, err, sizeof err), err);
    steps[1].depends_on = 2; /* a later step */
    assert_refused(t, "dep-later",
                   raw_submit(t, "dep-later", steps, 3, err, sizeof err), err);
    steps[1].depends_on = 7; /* no such step */
    assert_refused(t, "dep-missing",
                   raw_submit(t, "dep-missing", steps, 3, err, sizeof err),
                   err);
    assert_int_equal(stored(t), 0);
    itest_pass(state);
}

/* ---- issue 12 item 14: an embedded NUL in a string field --------------- */

/* Pack m, turn its first '@' into a 0 byte, send it to method; rc and
 * err as trellisd answered. */
static trellis_rc_t send_with_nul(itest_t *t, const char *method,
                                  const ProtobufCMessage *m, char *err,
                                  size_t errlen)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    uint8_t *at = memchr(buf, '@', len);
    assert_non_null(at);
    *at = 0;
    trellis_rc_t rc = send_raw(t, method, buf, len, err, errlen);
    free(buf);
    return rc;
}

static void assert_nul_refused(trellis_rc_t rc, const char *err,
                               const char *field)
{
    char want[128];
    snprintf(want, sizeof want, "field %s contains a NUL byte", field);
    if (rc != TRELLIS_INVALID_ARGUMENT || !strstr(err, want))
        fail_msg("rc %d (%s), want INVALID_ARGUMENT saying \"%s\"", rc, err,
                 want);
}

static void test_item14_embedded_nul(void **state)
{
    itest_t *t = itest_start(state, "bad_nul", TM_ARGS);
    char err[512];
    Trellis__V1__SagaStep st = TRELLIS__V1__SAGA_STEP__INIT;
    Trellis__V1__SagaStep *stp = &st;
    st.action = (char *)t->action;
    st.compensate = (char *)t->compensate;
    st.payload.data = (uint8_t *)"ok";
    st.payload.len = 2;
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.wait_result = 1;
    o.retry_interval_ms = ITEST_RETRY_INTERVAL_MS;
    Trellis__V1__SubmitRequest sub = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    sub.gid = "a@b";
    sub.n_steps = 1;
    sub.steps = &stp;
    sub.options = &o;

    /* gid "a\0b" must not become the transaction "a". */
    assert_nul_refused(send_with_nul(t, SUBMIT, &sub.base, err, sizeof err),
                       err, "gid");
    Trellis__V1__BeginRequest beg = TRELLIS__V1__BEGIN_REQUEST__INIT;
    beg.gid = "a@c";
    assert_nul_refused(
        send_with_nul(t, "/trellis.v1.TM/Begin", &beg.base, err, sizeof err),
        err, "gid");
    assert_int_equal(stored(t), 0);

    /* Deeper fields name their path. */
    char action[256];
    snprintf(action, sizeof action, "%s@", t->action);
    sub.gid = "nul-action";
    st.action = action;
    assert_nul_refused(send_with_nul(t, SUBMIT, &sub.base, err, sizeof err),
                       err, "steps[0].action");
    st.action = (char *)t->action;
    Trellis__V1__Header h = TRELLIS__V1__HEADER__INIT;
    Trellis__V1__Header *hp = &h;
    h.key = "x-tenant";
    h.value = "acme@evil";
    o.n_branch_headers = 1;
    o.branch_headers = &hp;
    sub.gid = "nul-header";
    assert_nul_refused(send_with_nul(t, SUBMIT, &sub.base, err, sizeof err),
                       err, "options.branch_headers[0].value");
    o.n_branch_headers = 0;
    Trellis__V1__AbortRequest ab = TRELLIS__V1__ABORT_REQUEST__INIT;
    ab.gid = "nul-reason";
    ab.reason = "why@";
    assert_nul_refused(
        send_with_nul(t, "/trellis.v1.TM/Abort", &ab.base, err, sizeof err),
        err, "reason");
    Trellis__V1__SetLogLevelRequest ll =
        TRELLIS__V1__SET_LOG_LEVEL_REQUEST__INIT;
    ll.level = "debug@";
    assert_nul_refused(send_with_nul(t, "/trellis.v1.TM/SetLogLevel", &ll.base,
                                     err, sizeof err),
                       err, "level");
    assert_int_equal(stored(t), 0);

    /* The same requests without the NUL are fine. */
    sub.gid = "a-b";
    sub.n_steps = 1;
    size_t len = protobuf_c_message_get_packed_size(&sub.base);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    protobuf_c_message_pack(&sub.base, buf);
    assert_accepted(t, "a-b", send_raw(t, SUBMIT, buf, len, err, sizeof err),
                    err);
    free(buf);
    assert_int_equal(stored(t), 1);
    itest_pass(state);
}

/* ---- messages and topics ------------------------------------------------ */

#define PREPARE_MESSAGE "/trellis.v1.TM/PrepareMessage"
#define DENIED_TARGET "10.9.9.9:1/evil.Evil/Take"

static trellis_rc_t send_pb(itest_t *t, const char *method,
                            const ProtobufCMessage *m, char *err, size_t errlen)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    trellis_rc_t rc = send_raw(t, method, buf, len, err, errlen);
    free(buf);
    return rc;
}

static void assert_code_naming(trellis_rc_t rc, trellis_rc_t want,
                               const char *err, const char *names)
{
    if (rc != want || !strstr(err, names))
        fail_msg("rc %d (%s), want %d naming \"%s\"", rc, err, want, names);
}

/* A two-step message whose steps the caller points somewhere. */
typedef struct {
    Trellis__V1__PrepareMessageRequest r;
    Trellis__V1__MessageStep s[2];
    Trellis__V1__MessageStep *p[2];
} raw_msg_t;

static Trellis__V1__PrepareMessageRequest *raw_message(raw_msg_t *m, itest_t *t,
                                                       const char *gid)
{
    trellis__v1__prepare_message_request__init(&m->r);
    for (int i = 0; i < 2; i++) {
        trellis__v1__message_step__init(&m->s[i]);
        m->s[i].target = t->action;
        m->s[i].payload.data = (uint8_t *)"ok";
        m->s[i].payload.len = 2;
        m->p[i] = &m->s[i];
    }
    m->r.gid = (char *)gid;
    m->r.steps = m->p;
    m->r.n_steps = 2;
    m->r.query_prepared = t->action; /* any allowed target will do here */
    return &m->r;
}

/* Every message request that is wrong is refused with a message that
 * says why, and stores nothing; what a message cannot do once stored
 * (steps at Submit, a registered branch, Abort once submitted) is refused
 * and changes nothing. */
static void test_message_bad_input(void **state)
{
    itest_t *t = itest_start(state, "bad_msg", TM_ARGS);
    char err[512];
    raw_msg_t m;
    Trellis__V1__PrepareMessageRequest *r = raw_message(&m, t, "m-bad");

    m.s[1].topic = "order.created"; /* both a target and a topic */
    assert_code_naming(send_pb(t, PREPARE_MESSAGE, &r->base, err, sizeof err),
                       TRELLIS_INVALID_ARGUMENT, err, "steps[1] must name");
    m.s[1].target = "";
    m.s[1].topic = ""; /* neither */
    assert_code_naming(send_pb(t, PREPARE_MESSAGE, &r->base, err, sizeof err),
                       TRELLIS_INVALID_ARGUMENT, err, "names neither");
    m.s[1].topic = "nobody.listens";
    assert_code_naming(send_pb(t, PREPARE_MESSAGE, &r->base, err, sizeof err),
                       TRELLIS_NOT_FOUND, err, "nobody.listens");
    m.s[1].topic = "order@created";
    assert_nul_refused(
        send_with_nul(t, PREPARE_MESSAGE, &r->base, err, sizeof err), err,
        "steps[1].topic");
    m.s[1].topic = "";
    m.s[1].target = DENIED_TARGET;
    assert_code_naming(send_pb(t, PREPARE_MESSAGE, &r->base, err, sizeof err),
                       TRELLIS_PERMISSION_DENIED, err, "steps[1].target");
    m.s[1].target = t->action;
    r->query_prepared = DENIED_TARGET;
    assert_code_naming(send_pb(t, PREPARE_MESSAGE, &r->base, err, sizeof err),
                       TRELLIS_PERMISSION_DENIED, err, "query_prepared");
    r->query_prepared = "";
    assert_code_naming(send_pb(t, PREPARE_MESSAGE, &r->base, err, sizeof err),
                       TRELLIS_INVALID_ARGUMENT, err,
                       "query_prepared is empty");

    Trellis__V1__SubscribeRequest sb = TRELLIS__V1__SUBSCRIBE_REQUEST__INIT;
    sb.topic = "order.created";
    sb.target = DENIED_TARGET;
    assert_code_naming(
        send_pb(t, "/trellis.v1.TM/Subscribe", &sb.base, err, sizeof err),
        TRELLIS_PERMISSION_DENIED, err, DENIED_TARGET);
    sb.target = t->action;
    sb.topic = "bad@topic";
    assert_nul_refused(
        send_with_nul(t, "/trellis.v1.TM/Subscribe", &sb.base, err, sizeof err),
        err, "topic");
    trellis_subscription_list_t *subs = NULL;
    assert_int_equal(
        trellis_list_subscriptions(t->client, NULL, &subs, err, sizeof err),
        TRELLIS_OK);
    assert_int_equal(subs->n, 0);
    trellis_subscription_list_free(subs);
    assert_int_equal(stored(t), 0);

    /* Stored, then asked what a message cannot do. */
    r->query_prepared = t->action;
    assert_int_equal(send_pb(t, PREPARE_MESSAGE, &r->base, err, sizeof err),
                     TRELLIS_OK);
    Trellis__V1__SagaStep st = TRELLIS__V1__SAGA_STEP__INIT;
    Trellis__V1__SagaStep *stp = &st;
    st.action = t->action;
    Trellis__V1__SubmitRequest sub = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    sub.gid = "m-bad";
    sub.steps = &stp;
    sub.n_steps = 1;
    assert_code_naming(send_pb(t, SUBMIT, &sub.base, err, sizeof err),
                       TRELLIS_INVALID_ARGUMENT, err, "is a message");
    Trellis__V1__RegisterBranchRequest reg =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    reg.gid = "m-bad";
    reg.branch_id = "x1";
    reg.mode = TRELLIS__V1__BRANCH_MODE__MODE_SAGA;
    assert_code_naming(
        send_pb(t, "/trellis.v1.TM/RegisterBranch", &reg.base, err, sizeof err),
        TRELLIS_FAILED_PRECONDITION, err, "is a message");
    trellis_trans_info_t *info = itest_query(t, "m-bad");
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_int_equal(info->n_branches, 3); /* head and two deliveries */
    trellis_trans_info_free(info);
    trellis_trans_status_t status = 0;
    assert_int_equal(trellis_submit(t->client, "m-bad", 1, &status, NULL, 0,
                                    err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(status, TRELLIS_TRANS_SUCCEEDED);
    assert_code_naming(
        trellis_abort(t->client, "m-bad", "too late", 0, NULL, err, sizeof err),
        TRELLIS_FAILED_PRECONDITION, err, "cannot be aborted");
    itest_pass(state);
}

/* ---- a Begin that registers branches ----------------------------------- */

#define BEGIN "/trellis.v1.TM/Begin"

/* A Begin of gid with two TCC branches 01 and 02 on the testpart. */
typedef struct {
    Trellis__V1__BeginRequest r;
    Trellis__V1__RegisterBranchRequest b[MAX_STEPS + 1];
    Trellis__V1__RegisterBranchRequest *p[MAX_STEPS + 1];
    Trellis__V1__BranchOp ops[2];
    Trellis__V1__BranchOp *op_p[2];
    char ids[MAX_STEPS + 1][8];
} raw_begin_t;

static Trellis__V1__BeginRequest *raw_begin(raw_begin_t *m, itest_t *t,
                                            const char *gid)
{
    trellis__v1__begin_request__init(&m->r);
    for (int i = 0; i < 2; i++) {
        trellis__v1__branch_op__init(&m->ops[i]);
        m->ops[i].op = i == 0 ? TRELLIS__V1__OP_KIND__OP_CONFIRM
                              : TRELLIS__V1__OP_KIND__OP_CANCEL;
        m->ops[i].target = t->action; /* any allowed target will do here */
        m->op_p[i] = &m->ops[i];
    }
    for (int i = 0; i < MAX_STEPS + 1; i++) {
        trellis__v1__register_branch_request__init(&m->b[i]);
        snprintf(m->ids[i], sizeof m->ids[i], "%02d", i + 1);
        m->b[i].branch_id = m->ids[i];
        m->b[i].mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
        m->b[i].ops = m->op_p;
        m->b[i].n_ops = 2;
        m->p[i] = &m->b[i];
    }
    m->r.gid = (char *)gid;
    m->r.branches = m->p;
    m->r.n_branches = 2;
    return &m->r;
}

/* Begin sent raw; *registered gets the reply's branches_registered. */
static trellis_rc_t send_begin(itest_t *t, const Trellis__V1__BeginRequest *r,
                               uint32_t *registered, char *err, size_t errlen)
{
    size_t len = protobuf_c_message_get_packed_size(&r->base);
    uint8_t *buf = malloc(len ? len : 1), *reply = NULL;
    size_t reply_len = 0;
    assert_non_null(buf);
    protobuf_c_message_pack(&r->base, buf);
    trellis_rc_t rc =
        trellis_call_unary(harness_server_addr(t->tm), BEGIN, buf, len, NULL,
                           NULL, 0, 10000, &reply, &reply_len, err, errlen);
    free(buf);
    *registered = 0;
    if (rc == TRELLIS_OK) {
        Trellis__V1__BeginReply *br =
            trellis__v1__begin_reply__unpack(NULL, reply_len, reply);
        assert_non_null(br);
        *registered = br->branches_registered;
        trellis__v1__begin_reply__free_unpacked(br, NULL);
    }
    free(reply);
    return rc;
}

/* The branches of a Begin are checked as RegisterBranch checks them, and
 * as a set; a refused Begin stores nothing. A Begin that is taken answers
 * how many branches it registered; its repeat is answered alike, and a
 * "repeat" naming other branches is refused. */
static void test_begin_branches_bad_input(void **state)
{
    itest_t *t = itest_start(state, "bad_begin", TM_ARGS);
    char err[512];
    uint32_t n = 0;
    raw_begin_t m;
    Trellis__V1__BeginRequest *r = raw_begin(&m, t, "b-bad");

    m.b[1].gid = "someone-else";
    assert_code_naming(send_begin(t, r, &n, err, sizeof err),
                       TRELLIS_INVALID_ARGUMENT, err, "branches[1].gid");
    m.b[1].gid = "b-bad"; /* its own gid is fine; checked below */
    m.b[1].branch_id = "01";
    assert_code_naming(send_begin(t, r, &n, err, sizeof err),
                       TRELLIS_INVALID_ARGUMENT, err,
                       "branches[0] and branches[1] are both 01");
    m.b[1].branch_id = "ev-1";
    assert_code_naming(send_begin(t, r, &n, err, sizeof err),
                       TRELLIS_INVALID_ARGUMENT, err, "branches[1]: branch_id");
    m.b[1].branch_id = m.ids[1];
    m.b[1].mode = TRELLIS__V1__BRANCH_MODE__MODE_LOCAL;
    m.b[1].n_ops = 0; /* a local step has no phase-2 op */
    assert_code_naming(send_begin(t, r, &n, err, sizeof err),
                       TRELLIS_INVALID_ARGUMENT, err, "belongs to a workflow");
    m.b[1].mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    m.b[1].n_ops = 2;
    m.ops[1].target = DENIED_TARGET;
    assert_code_naming(send_begin(t, r, &n, err, sizeof err),
                       TRELLIS_PERMISSION_DENIED, err, "branches[0]: ops[1]");
    m.ops[1].target = t->action;
    r->n_branches = MAX_STEPS + 1;
    assert_code_naming(send_begin(t, r, &n, err, sizeof err),
                       TRELLIS_INVALID_ARGUMENT, err, "at most 8");
    r->n_branches = 2;
    m.b[0].branch_id = "a@b";
    assert_nul_refused(send_with_nul(t, BEGIN, &r->base, err, sizeof err), err,
                       "branches[0].branch_id");
    m.b[0].branch_id = m.ids[0];
    assert_int_equal(stored(t), 0);

    /* Taken: both branches registered with the one write. */
    assert_int_equal(send_begin(t, r, &n, err, sizeof err), TRELLIS_OK);
    assert_int_equal(n, 2);
    trellis_trans_info_t *info = itest_query(t, "b-bad");
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_int_equal(info->n_branches, 2);
    assert_string_equal(info->branches[1].branch_id, "02");
    assert_true(info->branches[1].initiator_driven);
    trellis_trans_info_free(info);
    assert_int_equal(send_begin(t, r, &n, err, sizeof err), TRELLIS_OK);
    assert_int_equal(n, 2);
    m.b[1].payload.data = (uint8_t *)"other";
    m.b[1].payload.len = 5;
    assert_code_naming(send_begin(t, r, &n, err, sizeof err),
                       TRELLIS_ALREADY_EXISTS, err, "b-bad");
    assert_int_equal(stored(t), 1);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_bad_gids, itest_teardown),
        cmocka_unit_test_teardown(test_malformed_protobuf, itest_teardown),
        cmocka_unit_test_teardown(test_too_many_steps, itest_teardown),
        cmocka_unit_test_teardown(test_oversize_payload, itest_teardown),
        cmocka_unit_test_teardown(test_bad_targets, itest_teardown),
        cmocka_unit_test_teardown(test_bad_dependencies, itest_teardown),
        cmocka_unit_test_teardown(test_item14_embedded_nul, itest_teardown),
        cmocka_unit_test_teardown(test_message_bad_input, itest_teardown),
        cmocka_unit_test_teardown(test_begin_branches_bad_input,
                                  itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
