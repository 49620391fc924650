/*
 * test_api.c: the TM's API as a user relies on it, end to end against a
 * real trellisd and trellis-testpart: health checking, List (filters,
 * paging, bounds), begin / register / submit and begin / register / abort
 * with their idempotence and state errors, the timeout of a begun
 * transaction whose initiator vanished, branch headers reaching a
 * participant written with the SDK (trellis_participant.h), and Query of a
 * finished transaction surviving a restart unchanged.
 */
#include "itest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "trellis/trellis_participant.h"

#define PART_ACTION "/trellis.test.Part/Action"

/* ---- health ---------------------------------------------------------- */

static void test_health(void **state)
{
    itest_t *t = itest_start(state, "api_health", NULL);
    const int serving =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    int st;
    assert_int_equal(itest_health(t, "", &st), TRELLIS_OK);
    assert_int_equal(st, serving);
    assert_int_equal(itest_health(t, "trellis.v1.TM", &st), TRELLIS_OK);
    assert_int_equal(st, serving);
    assert_int_equal(itest_health(t, "no.such.Service", &st),
                     TRELLIS_NOT_FOUND);
    itest_pass(state);
}

/* ---- list ------------------------------------------------------------ */

#define LIST_N 5

/* list-0 .. list-4, one step each; the odd ones fail. Returns each one's
 * created_ms in created[]. */
static void run_list_sagas(itest_t *t, int64_t *created)
{
    for (int i = 0; i < LIST_N; i++) {
        char gid[32];
        snprintf(gid, sizeof gid, "list-%d", i);
        const char *payload[] = {i % 2 ? "fail" : "ok"};
        trellis_saga_t *s = itest_saga(t, gid, payload, 1, NULL);
        assert_int_equal(itest_submit(t, s, NULL, 0),
                         i % 2 ? TRELLIS_TRANS_FAILED
                               : TRELLIS_TRANS_SUCCEEDED);
        trellis_saga_free(s);
        trellis_trans_info_t *info = itest_query(t, gid);
        created[i] = info->created_ms;
        trellis_trans_info_free(info);
        harness_sleep_ms(5); /* distinct created_ms, for the bounds */
    }
    for (int i = 1; i < LIST_N; i++)
        assert_true(created[i] > created[i - 1]);
}

/* Walk every page of f, appending "gid " to out; asserts each page holds
 * at most page_size items and the walk ends with an empty token. */
static void list_all(itest_t *t, trellis_list_filter_t f, char *out,
                     size_t outlen)
{
    char err[256], token[160] = "";
    size_t used = 0;
    out[0] = '\0';
    for (int pages = 0;; pages++) {
        assert_true(pages <= LIST_N + 1);
        f.page_token = token;
        trellis_list_page_t *p = NULL;
        trellis_rc_t rc = trellis_list(t->client, &f, &p, err, sizeof err);
        if (rc != TRELLIS_OK)
            fail_msg("trellis_list: rc %d: %s", rc, err);
        if (f.page_size)
            assert_true(p->n <= f.page_size);
        for (size_t i = 0; i < p->n; i++)
            used += (size_t)snprintf(out + used, outlen - used, "%s ",
                                     p->items[i].gid);
        assert_true(used < outlen);
        snprintf(token, sizeof token, "%s", p->next_page_token);
        trellis_list_page_free(p);
        if (token[0] == '\0')
            return;
    }
}

static void test_list(void **state)
{
    itest_t *t = itest_start(state, "api_list", NULL);
    int64_t created[LIST_N];
    run_list_sagas(t, created);
    char got[512];

    trellis_list_filter_t f = {0};
    f.status = TRELLIS_TRANS_SUCCEEDED;
    list_all(t, f, got, sizeof got);
    assert_string_equal(got, "list-0 list-2 list-4 ");
    f.status = TRELLIS_TRANS_FAILED;
    list_all(t, f, got, sizeof got);
    assert_string_equal(got, "list-1 list-3 ");

    f = (trellis_list_filter_t){0};
    f.page_size = 2;
    list_all(t, f, got, sizeof got);
    assert_string_equal(got, "list-0 list-1 list-2 list-3 list-4 ");

    /* Bounds are exclusive: strictly after list-1, strictly before 4. */
    f.created_after_ms = created[1];
    f.created_before_ms = created[4];
    list_all(t, f, got, sizeof got);
    assert_string_equal(got, "list-2 list-3 ");
    f.created_before_ms = 0;
    f.status = TRELLIS_TRANS_SUCCEEDED;
    list_all(t, f, got, sizeof got);
    assert_string_equal(got, "list-2 list-4 ");

    char err[256];
    trellis_list_page_t *p = NULL;
    f = (trellis_list_filter_t){0};
    f.page_token = "bogus";
    assert_int_equal(trellis_list(t->client, &f, &p, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_null(p);
    assert_non_null(strstr(err, "page_token"));
    itest_pass(state);
}

/* ---- begin / register / submit / abort -------------------------------- */

static void begin(itest_t *t, const char *gid, const trellis_options_t *o)
{
    char err[256];
    trellis_rc_t rc = trellis_begin(t->client, gid, o, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_begin(%s): rc %d: %s", gid, rc, err);
}

/* Register an initiator-driven saga branch compensated on the testpart. */
static trellis_rc_t reg(itest_t *t, const char *gid, const char *branch_id,
                        const char *payload)
{
    char err[256];
    trellis_branch_op_t op = {TRELLIS_OP_COMPENSATE, t->compensate};
    return trellis_register_branch(t->client, gid, branch_id, TRELLIS_MODE_SAGA,
                                   &op, 1, payload, strlen(payload), err,
                                   sizeof err);
}

/* The initiator calls the branch's action itself, as trellisd would. */
static void call_action(itest_t *t, const char *gid, const char *branch_id,
                        const char *payload)
{
    const char *keys[] = {"dtm-gid", "dtm-trans_type", "dtm-branch_id",
                          "dtm-op"};
    const char *values[] = {gid, "saga", branch_id, "action"};
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    char err[256];
    trellis_rc_t rc = trellis_call_unary(
        harness_server_addr(t->part), PART_ACTION, payload, strlen(payload),
        keys, values, 4, 5000, &reply, &reply_len, err, sizeof err);
    free(reply);
    if (rc != TRELLIS_OK)
        fail_msg("action of %s/%s: rc %d: %s", gid, branch_id, rc, err);
}

/* Begin gid, register branches 01 and 02 and run their actions. */
static void begin_two_branches(itest_t *t, const char *gid,
                               const trellis_options_t *o)
{
    begin(t, gid, o);
    assert_int_equal(reg(t, gid, "01", "#branch-1"), TRELLIS_OK);
    call_action(t, gid, "01", "#branch-1");
    assert_int_equal(reg(t, gid, "02", "#branch-2"), TRELLIS_OK);
    call_action(t, gid, "02", "#branch-2");
}

static void assert_journal(itest_t *t, const char *gid, const char *want)
{
    trellis_trans_info_t *info = itest_query(t, gid);
    harness_part_state_t ps;
    char j[256];
    itest_part_state(t, gid, &ps);
    assert_string_equal(itest_journal(info, &ps, j, sizeof j), want);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
}

static void test_begin_register_submit(void **state)
{
    itest_t *t = itest_start(state, "api_submit", NULL);
    trellis_options_t o = itest_options();
    begin_two_branches(t, "reg-ok", &o);
    /* Same content again: idempotent; other content: refused. */
    assert_int_equal(reg(t, "reg-ok", "01", "#branch-1"), TRELLIS_OK);
    assert_int_equal(reg(t, "reg-ok", "01", "#other"), TRELLIS_ALREADY_EXISTS);

    char err[256], reason[256];
    trellis_trans_status_t st = 0;
    trellis_rc_t rc = trellis_submit(t->client, "reg-ok", 1, &st, reason,
                                     sizeof reason, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_submit: rc %d: %s", rc, err);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);

    assert_int_equal(reg(t, "reg-ok", "03", "#late"),
                     TRELLIS_FAILED_PRECONDITION);
    assert_int_equal(reg(t, "no-such-gid", "01", "#x"), TRELLIS_NOT_FOUND);

    trellis_trans_info_t *info = itest_query(t, "reg-ok");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(info->n_branches, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_true(info->branches[i].initiator_driven);
        assert_int_not_equal(
            itest_op(&info->branches[i], TRELLIS_OP_COMPENSATE)->status,
            TRELLIS_OP_SUCCEEDED);
    }
    trellis_trans_info_free(info);
    assert_journal(t, "reg-ok", "A0 A1"); /* no compensation */
    itest_pass(state);
}

static void test_begin_register_abort(void **state)
{
    itest_t *t = itest_start(state, "api_abort", NULL);
    trellis_options_t o = itest_options();
    begin_two_branches(t, "reg-abort", &o);

    char err[256];
    trellis_trans_status_t st = 0;
    assert_int_equal(trellis_abort(t->client, "reg-abort", "user cancelled", 1,
                                   &st, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    assert_journal(t, "reg-abort", "A0 A1 C1 C0");

    trellis_trans_info_t *info = itest_query(t, "reg-abort");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_non_null(strstr(info->reason, "user cancelled"));
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(
            itest_op(&info->branches[i], TRELLIS_OP_COMPENSATE)->status,
            TRELLIS_OP_SUCCEEDED);
    trellis_trans_info_free(info);

    st = 0;
    assert_int_equal(
        trellis_abort(t->client, "reg-abort", "again", 1, &st, err, sizeof err),
        TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    assert_int_equal(trellis_submit(t->client, "reg-abort", 1, &st, NULL, 0,
                                    err, sizeof err),
                     TRELLIS_FAILED_PRECONDITION);
    assert_journal(t, "reg-abort", "A0 A1 C1 C0"); /* nothing ran again */
    itest_pass(state);
}

/* The initiator begins, registers, and is never heard of again. */
static void test_prepared_timeout(void **state)
{
    itest_t *t = itest_start(state, "api_timeout", NULL);
    trellis_options_t o = itest_options();
    o.timeout_to_fail_ms = 300;
    int64_t start = harness_mono_ms();
    begin(t, "vanished", &o);
    assert_int_equal(reg(t, "vanished", "01", "#branch-1"), TRELLIS_OK);

    trellis_trans_info_t *info = itest_wait_final(t, "vanished");
    int64_t took = harness_mono_ms() - start;
    assert_true(took < 5000);
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_non_null(strstr(info->reason, "timeout"));
    assert_int_equal(
        itest_op(&info->branches[0], TRELLIS_OP_COMPENSATE)->status,
        TRELLIS_OP_SUCCEEDED);
    harness_part_state_t ps;
    itest_part_state(t, "vanished", &ps);
    assert_int_equal(itest_count(info, &ps, 0, "compensate", NULL), 1);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- branch headers at an SDK participant ----------------------------- */

#define REC_MAX 16

typedef struct {
    char gid[72], trans_type[16], branch_id[40], op[16], method[64];
    char tenant[32], trace[32]; /* "(none)" when absent */
    size_t n_headers;
    int reserved_key;  /* a listed key was dtm-, grpc-, ':' or -bin */
    int dtm_as_header; /* trellis_branch_ctx_header found dtm-gid */
    int dup_count;     /* keys equal to x-dup */
} rec_call_t;

typedef struct {
    pthread_mutex_t mu;
    size_t n;
    rec_call_t calls[REC_MAX];
} recorder_t;

static void copy_or_none(char *dst, size_t len, const char *v)
{
    snprintf(dst, len, "%s", v != NULL ? v : "(none)");
}

static int reserved_key(const char *k)
{
    size_t n = strlen(k);
    return !strncmp(k, "dtm-", 4) || !strncmp(k, "grpc-", 5) || k[0] == ':' ||
           (n >= 4 && !strcmp(k + n - 4, "-bin"));
}

static void rec_headers(rec_call_t *c, const trellis_branch_ctx_t *ctx)
{
    /* Keys are compared ignoring case. */
    copy_or_none(c->tenant, sizeof c->tenant,
                 trellis_branch_ctx_header(ctx, "X-Tenant"));
    copy_or_none(c->trace, sizeof c->trace,
                 trellis_branch_ctx_header(ctx, "x-trace"));
    c->n_headers = ctx->n_headers;
    c->dtm_as_header = trellis_branch_ctx_header(ctx, "dtm-gid") != NULL;
    for (size_t i = 0; i < ctx->n_headers; i++) {
        c->reserved_key |= reserved_key(ctx->header_keys[i]);
        c->dup_count += !strcmp(ctx->header_keys[i], "x-dup");
    }
}

static void record_handler(const trellis_branch_ctx_t *ctx,
                           const uint8_t *payload, size_t payload_len,
                           trellis_reply_t *reply, void *user)
{
    (void)payload;
    (void)payload_len;
    recorder_t *r = user;
    pthread_mutex_lock(&r->mu);
    if (r->n < REC_MAX) {
        rec_call_t *c = &r->calls[r->n++];
        snprintf(c->gid, sizeof c->gid, "%s", ctx->gid);
        snprintf(c->trans_type, sizeof c->trans_type, "%s", ctx->trans_type);
        snprintf(c->branch_id, sizeof c->branch_id, "%s", ctx->branch_id);
        snprintf(c->op, sizeof c->op, "%s", ctx->op);
        snprintf(c->method, sizeof c->method, "%s", ctx->method);
        rec_headers(c, ctx);
    }
    pthread_mutex_unlock(&r->mu);
    reply->code = TRELLIS_REPLY_SUCCESS;
}

static trellis_participant_t *start_recorder(recorder_t *r, char *addr,
                                             size_t addrlen)
{
    char err[256];
    trellis_participant_t *p = NULL;
    int port = 0;
    assert_int_equal(trellis_participant_new(2, &p, err, sizeof err),
                     TRELLIS_OK);
    const char *methods[] = {"/trellis.test.Hdr/Action",
                             "/trellis.test.Hdr/Compensate"};
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(trellis_participant_handle(
                             p, methods[i], record_handler, r, err, sizeof err),
                         TRELLIS_OK);
    if (trellis_participant_start(p, "127.0.0.1:0", &port, err, sizeof err))
        fail_msg("trellis_participant_start: %s", err);
    snprintf(addr, addrlen, "127.0.0.1:%d", port);
    return p;
}

static void submit_header_saga(itest_t *t, const char *addr)
{
    static const char *const keys[] = {"x-tenant", "x-trace"};
    static const char *const values[] = {"blue", "abc"};
    char err[256], action[96], comp[96];
    snprintf(action, sizeof action, "%s/trellis.test.Hdr/Action", addr);
    snprintf(comp, sizeof comp, "%s/trellis.test.Hdr/Compensate", addr);
    trellis_saga_t *s = NULL;
    assert_int_equal(trellis_saga_new("hdr", &s, err, sizeof err), TRELLIS_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            trellis_saga_add_step(s, action, comp, "x", 1, err, sizeof err), i);
    trellis_options_t o = itest_options();
    o.n_headers = 2;
    o.header_keys = keys;
    o.header_values = values;
    trellis_saga_set_options(s, &o);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);
}

static void assert_action_call(const rec_call_t *c, const char *branch_id)
{
    assert_string_equal(c->gid, "hdr");
    assert_string_equal(c->trans_type, "saga");
    assert_string_equal(c->branch_id, branch_id);
    assert_string_equal(c->op, "action");
    assert_string_equal(c->method, "/trellis.test.Hdr/Action");
    assert_string_equal(c->tenant, "blue");
    assert_string_equal(c->trace, "abc");
    assert_true(c->n_headers >= 2);
    assert_false(c->reserved_key);
    assert_false(c->dtm_as_header);
}

/* A direct call with a duplicated key, a binary key and a dtm- key: only
 * the plain keys are headers, each entry listed. */
static void direct_call_filters(const char *addr, recorder_t *r)
{
    const char *keys[] = {"dtm-gid", "x-dup", "x-dup", "trace-bin", "x-tenant"};
    const char *values[] = {"direct", "1", "2", "\x01\x02", "red"};
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    char err[256];
    assert_int_equal(trellis_call_unary(addr, "/trellis.test.Hdr/Action", "", 0,
                                        keys, values, 5, 5000, &reply,
                                        &reply_len, err, sizeof err),
                     TRELLIS_OK);
    free(reply);
    pthread_mutex_lock(&r->mu);
    assert_int_equal(r->n, 3);
    const rec_call_t *c = &r->calls[2];
    assert_string_equal(c->gid, "direct");
    assert_string_equal(c->tenant, "red");
    assert_string_equal(c->trace, "(none)");
    assert_int_equal(c->dup_count, 2);
    assert_false(c->reserved_key);
    assert_false(c->dtm_as_header);
    pthread_mutex_unlock(&r->mu);
}

static void test_branch_headers(void **state)
{
    itest_t *t = itest_start(state, "api_headers", NULL);
    recorder_t r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    char addr[64];
    trellis_participant_t *p = start_recorder(&r, addr, sizeof addr);

    submit_header_saga(t, addr);
    pthread_mutex_lock(&r.mu);
    assert_int_equal(r.n, 2); /* two actions, no compensation */
    assert_action_call(&r.calls[0], "01");
    assert_action_call(&r.calls[1], "02");
    pthread_mutex_unlock(&r.mu);
    direct_call_filters(addr, &r);

    trellis_participant_free(p);
    pthread_mutex_destroy(&r.mu);
    itest_pass(state);
}

/* ---- query after a restart -------------------------------------------- */

static void assert_same_op(const trellis_op_info_t *a,
                           const trellis_op_info_t *b)
{
    assert_int_equal(a->op, b->op);
    assert_string_equal(a->target, b->target);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->attempts, b->attempts);
    assert_string_equal(a->last_error, b->last_error);
    assert_int_equal(a->n_attempt_ms, b->n_attempt_ms);
    for (size_t i = 0; i < a->n_attempt_ms; i++)
        assert_int_equal(a->attempt_ms[i], b->attempt_ms[i]);
    assert_int_equal(a->finished_ms, b->finished_ms);
}

static void assert_same_branch(const trellis_branch_info_t *a,
                               const trellis_branch_info_t *b)
{
    assert_string_equal(a->branch_id, b->branch_id);
    assert_int_equal(a->mode, b->mode);
    assert_int_equal(a->initiator_driven, b->initiator_driven);
    assert_int_equal(a->n_depends_on, b->n_depends_on);
    for (size_t i = 0; i < a->n_depends_on; i++)
        assert_int_equal(a->depends_on[i], b->depends_on[i]);
    assert_int_equal(a->payload_len, b->payload_len);
    assert_memory_equal(a->payload, b->payload, a->payload_len);
    assert_int_equal(a->n_ops, b->n_ops);
    for (size_t i = 0; i < a->n_ops; i++)
        assert_same_op(&a->ops[i], &b->ops[i]);
}

static void assert_same_trans(const trellis_trans_info_t *a,
                              const trellis_trans_info_t *b)
{
    assert_string_equal(a->gid, b->gid);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->created_ms, b->created_ms);
    assert_int_equal(a->updated_ms, b->updated_ms);
    assert_int_equal(a->finished_ms, b->finished_ms);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->n_branches, b->n_branches);
    for (size_t i = 0; i < a->n_branches; i++)
        assert_same_branch(&a->branches[i], &b->branches[i]);
}

static void crash_and_restart(itest_t *t)
{
    assert_int_equal(harness_server_crash_restart(t->tm), 0);
    itest_reconnect(t);
}

static void test_query_after_restart(void **state)
{
    itest_t *t = itest_start(state, "api_restart", NULL);
    /* Retries on a forward op and on a compensation, then a failure. */
    const char *failed[] = {"compensate=unavail:1", "ongoing:2", "fail"};
    const char *ok[] = {"ongoing:1", "ok"};
    const char *gids[] = {"restart-failed", "restart-ok"};
    trellis_saga_t *s = itest_saga(t, gids[0], failed, 3, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_FAILED);
    trellis_saga_free(s);
    s = itest_saga(t, gids[1], ok, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);

    trellis_trans_info_t *before[2];
    for (int i = 0; i < 2; i++)
        before[i] = itest_wait_final(t, gids[i]);
    assert_int_equal(
        itest_op(&before[0]->branches[1], TRELLIS_OP_ACTION)->attempts, 3);
    assert_int_equal(
        itest_op(&before[0]->branches[0], TRELLIS_OP_COMPENSATE)->attempts, 2);
    crash_and_restart(t);
    for (int i = 0; i < 2; i++) {
        trellis_trans_info_t *after = itest_query(t, gids[i]);
        assert_same_trans(before[i], after);
        trellis_trans_info_free(after);
        trellis_trans_info_free(before[i]);
    }
    itest_pass(state);
}

/* ---- retention ------------------------------------------------------- */

static int gone_from_store(void *arg)
{
    itest_t *t = arg;
    char err[256];
    trellis_trans_info_t *info = NULL;
    trellis_rc_t rc =
        trellis_query(t->client, "ret-done", &info, err, sizeof err);
    trellis_trans_info_free(info);
    return rc == TRELLIS_NOT_FOUND;
}

/* With --retention-s 1, a finished transaction can be queried at first and
 * is deleted a little later; an unfinished one older than that stays. */
static void test_retention_deletes_finished_only(void **state)
{
    const char *args[] = {"--retention-s", "1", NULL};
    itest_t *t = itest_start(state, "api_retention", args);
    trellis_options_t o = itest_options();
    o.timeout_to_fail_ms = 600000;
    begin(t, "ret-open", &o);
    const char *ok[] = {"ok", "ok"};
    trellis_saga_t *s = itest_saga(t, "ret-done", ok, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);
    trellis_trans_info_t *info = itest_query(t, "ret-done");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_free(info);
    assert_true(harness_poll(gone_from_store, t, 15000, 100));
    info = itest_query(t, "ret-open");
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    trellis_trans_info_free(info);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_retention_deletes_finished_only,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_health, itest_teardown),
        cmocka_unit_test_teardown(test_list, itest_teardown),
        cmocka_unit_test_teardown(test_begin_register_submit, itest_teardown),
        cmocka_unit_test_teardown(test_begin_register_abort, itest_teardown),
        cmocka_unit_test_teardown(test_prepared_timeout, itest_teardown),
        cmocka_unit_test_teardown(test_branch_headers, itest_teardown),
        cmocka_unit_test_teardown(test_query_after_restart, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
