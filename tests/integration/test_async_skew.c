/*
 * test_async_skew.c: trellis_async_tcc_run against trellisd versions
 * that answer its Begin differently. The run sends every branch with its
 * Begin (BeginRequest.branches) and reads BeginReply.branches_registered:
 *   - all of them: the tries follow at once, nothing else is registered;
 *   - 0, as a trellisd that predates the field answers (it ignores the
 *     branches): each branch is registered, under the id it had in the
 *     Begin, before its try — the order that keeps a try from ever running
 *     unregistered;
 *   - any other count: the run trusts nothing, tries nothing and aborts.
 *
 * The "trellisd" here is a stand-in served in this process by
 * libtrellis's participant server (raw handlers for /trellis.v1.TM/...),
 * which answers Begin with the count the test sets and journals every
 * call it gets; the try is served by it too. No real trellisd runs.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "trellis/trellis_async.h"
#include "trellis/trellis_participant.h"
#include "trellis/v1/tm.pb-c.h"

/* The stand-in: what Begin answers, and the journal of calls. */
typedef struct {
    pthread_mutex_t mu;
    uint32_t begin_answers; /* BeginReply.branches_registered */
    char journal[512];
    int done;
    trellis_rc_t rc;
    int branch;
    char msg[256];
} fake_tm_t;

static void note(fake_tm_t *f, const char *fmt, const char *arg)
{
    char entry[64];
    snprintf(entry, sizeof entry, fmt, arg);
    pthread_mutex_lock(&f->mu);
    size_t len = strlen(f->journal);
    snprintf(f->journal + len, sizeof f->journal - len, "%s%s", len ? " " : "",
             entry);
    pthread_mutex_unlock(&f->mu);
}

/* Pack m into the reply's body. */
static void reply_with(trellis_reply_t *reply, const ProtobufCMessage *m)
{
    reply->body_len = protobuf_c_message_get_packed_size(m);
    reply->body = malloc(reply->body_len ? reply->body_len : 1);
    assert_non_null(reply->body);
    protobuf_c_message_pack(m, reply->body);
}

static void on_begin(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                     size_t len, trellis_reply_t *reply, void *user)
{
    (void)ctx;
    fake_tm_t *f = user;
    Trellis__V1__BeginRequest *r =
        trellis__v1__begin_request__unpack(NULL, len, payload);
    assert_non_null(r);
    char n[16];
    snprintf(n, sizeof n, "%zu", r->n_branches);
    note(f, "Begin:%s", n);
    for (size_t i = 0; i < r->n_branches; i++)
        note(f, "=%s", r->branches[i]->branch_id);
    Trellis__V1__BeginReply a = TRELLIS__V1__BEGIN_REPLY__INIT;
    a.gid = r->gid;
    a.status = TRELLIS__V1__TRANS_STATUS__TRANS_PREPARED;
    a.branches_registered = f->begin_answers;
    reply_with(reply, &a.base);
    trellis__v1__begin_request__free_unpacked(r, NULL);
}

static void on_register(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                        size_t len, trellis_reply_t *reply, void *user)
{
    (void)ctx;
    Trellis__V1__RegisterBranchRequest *r =
        trellis__v1__register_branch_request__unpack(NULL, len, payload);
    assert_non_null(r);
    note(user, "Register:%s", r->branch_id);
    trellis__v1__register_branch_request__free_unpacked(r, NULL);
    Trellis__V1__RegisterBranchReply a =
        TRELLIS__V1__REGISTER_BRANCH_REPLY__INIT;
    reply_with(reply, &a.base);
}

static void on_submit(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t len, trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)payload;
    (void)len;
    note(user, "Submit%s", "");
    Trellis__V1__SubmitReply a = TRELLIS__V1__SUBMIT_REPLY__INIT;
    a.status = TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED;
    reply_with(reply, &a.base);
}

static void on_abort(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                     size_t len, trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)payload;
    (void)len;
    note(user, "Abort%s", "");
    Trellis__V1__AbortReply a = TRELLIS__V1__ABORT_REPLY__INIT;
    a.status = TRELLIS__V1__TRANS_STATUS__TRANS_FAILED;
    reply_with(reply, &a.base);
}

static void on_try(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                   size_t len, trellis_reply_t *reply, void *user)
{
    (void)payload;
    (void)len;
    (void)reply;
    note(user, "Try:%s", ctx->branch_id);
}

static void run_done(const trellis_async_result_t *r, void *user)
{
    fake_tm_t *f = user;
    pthread_mutex_lock(&f->mu);
    f->rc = r->rc;
    f->branch = r->branch;
    snprintf(f->msg, sizeof f->msg, "%s", r->message);
    f->done++;
    pthread_mutex_unlock(&f->mu);
}

/* One 2-branch TCC run against a stand-in whose Begin answers `answers`;
 * the stand-in's journal goes to f. */
static void run_against(fake_tm_t *f, uint32_t answers)
{
    char err[256], addr[64], tgt[3][96];
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->begin_answers = answers;
    trellis_participant_t *p = NULL;
    assert_int_equal(trellis_participant_new(2, &p, err, sizeof err),
                     TRELLIS_OK);
    static const struct {
        const char *method;
        trellis_handler_fn fn;
    } routes[] = {{"/trellis.v1.TM/Begin", on_begin},
                  {"/trellis.v1.TM/RegisterBranch", on_register},
                  {"/trellis.v1.TM/Submit", on_submit},
                  {"/trellis.v1.TM/Abort", on_abort},
                  {"/fake.Bank/Try", on_try}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        assert_int_equal(trellis_participant_handle(p, routes[i].method,
                                                    routes[i].fn, f, err,
                                                    sizeof err),
                         TRELLIS_OK);
    int port = 0;
    assert_int_equal(
        trellis_participant_start(p, "127.0.0.1:0", &port, err, sizeof err),
        TRELLIS_OK);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    const char *ops[3] = {"Try", "Confirm", "Cancel"};
    for (int i = 0; i < 3; i++)
        snprintf(tgt[i], sizeof tgt[i], "%s/fake.Bank/%s", addr, ops[i]);
    trellis_client_t *c = NULL;
    assert_int_equal(trellis_client_new(addr, 10000, &c, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(
        trellis_async_start(c, TRELLIS_ASYNC_POLL, err, sizeof err),
        TRELLIS_OK);
    trellis_async_branch_t b[2] = {{tgt[0], tgt[1], tgt[2], "a", 1},
                                   {tgt[0], tgt[1], tgt[2], "b", 1}};
    trellis_options_t o = {.wait_result = 1};
    assert_int_equal(trellis_async_tcc_run(c, "skew-1", &o, b, 2, run_done, f),
                     TRELLIS_OK);
    for (int i = 0; i < 200 && f->done == 0; i++)
        assert_true(trellis_async_poll(c, 100) >= 0);
    assert_int_equal(f->done, 1);
    trellis_client_free(c);
    trellis_participant_free(p);
    pthread_mutex_destroy(&f->mu);
}

static void test_begin_took_the_branches(void **state)
{
    (void)state;
    fake_tm_t f;
    run_against(&f, 2);
    assert_int_equal(f.rc, TRELLIS_OK);
    assert_string_equal(f.journal, "Begin:2 =01 =02 Try:01 Try:02 Submit");
}

static void test_begin_ignored_the_branches(void **state)
{
    (void)state;
    fake_tm_t f;
    run_against(&f, 0);
    assert_int_equal(f.rc, TRELLIS_OK);
    assert_string_equal(f.journal, "Begin:2 =01 =02 Register:01 Try:01 "
                                   "Register:02 Try:02 Submit");
}

static void test_begin_answered_another_count(void **state)
{
    (void)state;
    fake_tm_t f;
    run_against(&f, 1);
    assert_int_equal(f.rc, TRELLIS_INTERNAL);
    assert_int_equal(f.branch, -1);
    assert_non_null(strstr(f.msg, "number of branches"));
    assert_string_equal(f.journal, "Begin:2 =01 =02 Abort");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_begin_took_the_branches),
        cmocka_unit_test(test_begin_ignored_the_branches),
        cmocka_unit_test(test_begin_answered_another_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
