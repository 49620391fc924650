/*
 * test_tcc.c: TCC transactions through a real trellisd and trellis-testpart
 * with the SDK's initiator helper (trellis_tcc.h): success (tries, then
 * every confirm), a try's business failure (every registered branch
 * cancelled in reverse order, the failed one included), an initiator
 * killed before submit (the timeout cancels), trellisd killed while
 * confirming (the restarted TM confirms each branch exactly once in
 * effect), phase-2 ops retried until they succeed, misuse of the helper,
 * and the try's metadata and reply at an SDK participant.
 *
 * The testpart journal's letters (itest_journal): T try, F confirm,
 * X cancel, followed by the branch's index (0 for "01").
 */
#include "itest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis_participant.h"
#include "trellis/trellis_tcc.h"

/* The testpart's TCC targets. */
typedef struct {
    char try_[96], confirm[96], cancel[96];
} targets_t;

static void targets_at(const char *addr, const char *service, targets_t *tg)
{
    snprintf(tg->try_, sizeof tg->try_, "%s/%s/Try", addr, service);
    snprintf(tg->confirm, sizeof tg->confirm, "%s/%s/Confirm", addr, service);
    snprintf(tg->cancel, sizeof tg->cancel, "%s/%s/Cancel", addr, service);
}

static void part_targets(itest_t *t, targets_t *tg)
{
    targets_at(harness_server_addr(t->part), "trellis.test.Part", tg);
}

static trellis_tcc_t *tcc_begin(itest_t *t, const char *gid,
                                const trellis_options_t *o)
{
    char err[256];
    trellis_tcc_t *tcc = NULL;
    trellis_rc_t rc =
        trellis_tcc_begin(t->client, gid, o, &tcc, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_tcc_begin(%s): rc %d: %s", gid, rc, err);
    assert_string_equal(trellis_tcc_gid(tcc), gid);
    return tcc;
}

/* One branch on the testpart with payload (a testpart script); the try's
 * rc, its message in err. */
static trellis_rc_t call(itest_t *t, trellis_tcc_t *tcc, const char *payload,
                         char *err, size_t errlen)
{
    targets_t tg;
    part_targets(t, &tg);
    return trellis_tcc_call_branch(tcc, tg.try_, tg.confirm, tg.cancel, payload,
                                   strlen(payload), NULL, NULL, err, errlen);
}

static void call_ok(itest_t *t, trellis_tcc_t *tcc, const char *payload)
{
    char err[256];
    trellis_rc_t rc = call(t, tcc, payload, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("try with \"%s\": rc %d: %s", payload, rc, err);
}

static trellis_trans_status_t submit(trellis_tcc_t *tcc)
{
    char err[256], reason[256];
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc =
        trellis_tcc_submit(tcc, &st, reason, sizeof reason, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_tcc_submit: rc %d: %s", rc, err);
    return st;
}

static trellis_trans_status_t abort_with(trellis_tcc_t *tcc, const char *why)
{
    char err[256];
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc = trellis_tcc_abort(tcc, why, &st, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_tcc_abort: rc %d: %s", rc, err);
    return st;
}

static void journal(itest_t *t, const trellis_trans_info_t *info,
                    harness_part_state_t *ps, char *buf, size_t len)
{
    itest_part_state(t, info->gid, ps);
    itest_journal(info, ps, buf, len);
    fprintf(stderr, "%s: %s\n", info->gid, buf);
}

/* Every branch is an initiator-driven TCC branch whose ops have these
 * statuses. */
static void assert_ops(const trellis_trans_info_t *info, size_t n_branches,
                       trellis_op_status_t confirm, trellis_op_status_t cancel)
{
    assert_int_equal(info->n_branches, n_branches);
    for (size_t i = 0; i < n_branches; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        char want[24];
        snprintf(want, sizeof want, "%02zu", i + 1);
        assert_string_equal(b->branch_id, want);
        assert_int_equal(b->mode, TRELLIS_MODE_TCC);
        assert_true(b->initiator_driven);
        assert_int_equal(itest_op(b, TRELLIS_OP_CONFIRM)->status, confirm);
        assert_int_equal(itest_op(b, TRELLIS_OP_CANCEL)->status, cancel);
    }
}

/* Branch i's cancel started after branch i+1's cancel answered ok. */
static void assert_cancels_backwards(const trellis_trans_info_t *info,
                                     const harness_part_state_t *ps, int n)
{
    for (int i = 0; i + 1 < n; i++) {
        const harness_part_call_t *later =
            itest_call(info, ps, i + 1, "cancel", "undone");
        if (!later)
            later = itest_call(info, ps, i + 1, "cancel", "empty");
        const harness_part_call_t *first =
            itest_call(info, ps, i, "cancel", NULL);
        assert_non_null(later);
        assert_non_null(first);
        assert_true(first->start_ms >= later->end_ms);
        assert_true(first->seq > later->seq);
    }
}

/* ---- 1. success ------------------------------------------------------ */

static void test_success(void **state)
{
    itest_t *t = itest_start(state, "tcc_success", NULL);
    trellis_options_t o = itest_options();
    trellis_tcc_t *tcc = tcc_begin(t, "tcc-ok", &o);
    call_ok(t, tcc, "#branch-1");
    call_ok(t, tcc, "#branch-2");
    assert_int_equal(submit(tcc), TRELLIS_TRANS_SUCCEEDED);
    trellis_tcc_free(tcc);

    trellis_trans_info_t *info = itest_query(t, "tcc-ok");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    assert_ops(info, 2, TRELLIS_OP_SUCCEEDED, TRELLIS_OP_SKIPPED);
    harness_part_state_t ps;
    char j[256];
    journal(t, info, &ps, j, sizeof j);
    assert_true(!strcmp(j, "T0 T1 F0 F1") || !strcmp(j, "T0 T1 F1 F0"));
    for (int i = 0; i < 2; i++) {
        const harness_part_call_t *tr = itest_call(info, &ps, i, "try", NULL);
        assert_string_equal(tr->dtm_op, "try");
        assert_string_equal(tr->trans_type, "tcc");
        assert_string_equal(tr->effect, "applied");
        const harness_part_call_t *f =
            itest_call(info, &ps, i, "confirm", NULL);
        assert_string_equal(f->dtm_op, "confirm");
        assert_string_equal(f->trans_type, "tcc");
        assert_string_equal(f->effect, "confirmed");
        assert_int_equal(f->len, strlen("#branch-1")); /* the payload */
    }
    assert_int_equal(ps.n_net, 2);
    for (size_t i = 0; i < ps.n_net; i++)
        assert_true(ps.net[i].confirmed);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- 2. a try refuses ------------------------------------------------ */

static void test_try_fails(void **state)
{
    itest_t *t = itest_start(state, "tcc_try_fails", NULL);
    trellis_options_t o = itest_options();
    trellis_tcc_t *tcc = tcc_begin(t, "tcc-fail", &o);
    call_ok(t, tcc, "#branch-1");
    char err[256], why[320];
    assert_int_equal(call(t, tcc, "fail", err, sizeof err), TRELLIS_ABORTED);
    assert_non_null(strstr(err, "try fail")); /* the participant's words */
    snprintf(why, sizeof why, "branch 02 refused: %s", err);
    assert_int_equal(abort_with(tcc, why), TRELLIS_TRANS_FAILED);
    trellis_tcc_free(tcc);

    trellis_trans_info_t *info = itest_query(t, "tcc-fail");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_non_null(strstr(info->reason, "branch 02 refused"));
    assert_ops(info, 2, TRELLIS_OP_SKIPPED, TRELLIS_OP_SUCCEEDED);
    harness_part_state_t ps;
    char j[256];
    journal(t, info, &ps, j, sizeof j);
    assert_string_equal(j, "T0 T1:fail X1 X0");
    /* The failed try changed nothing: its cancel is an empty one. */
    assert_int_equal(itest_count(info, &ps, 1, "cancel", "empty"), 1);
    assert_int_equal(itest_count(info, &ps, 0, "cancel", "undone"), 1);
    assert_cancels_backwards(info, &ps, 2);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- 3. the initiator vanishes before submit --------------------------- */

static harness_proc_t *spawn_initiator(itest_t *t, const char *gid,
                                       const char *timeout_ms)
{
    targets_t tg;
    part_targets(t, &tg);
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/bin/tcc-initiator", harness_build_dir());
    const char *argv[] = {bin,          "--tm",      harness_server_addr(t->tm),
                          "--gid",      gid,         "--try",
                          tg.try_,      "--confirm", tg.confirm,
                          "--cancel",   tg.cancel,   "--payload",
                          "#branch-1",  "--payload", "#branch-2",
                          "--branches", "2",         "--timeout-ms",
                          timeout_ms,   "--then",    "sleep",
                          NULL};
    harness_proc_t *p = harness_spawn(t->h, "tcc-initiator", argv);
    assert_non_null(p);
    return p;
}

static void test_initiator_killed(void **state)
{
    itest_t *t = itest_start(state, "tcc_initiator_killed", NULL);
    int64_t start = harness_mono_ms();
    harness_proc_t *ini = spawn_initiator(t, "tcc-vanish", "500");
    itest_wait_calls(t, "tcc-vanish", 2);        /* both tries answered */
    assert_int_equal(harness_proc_kill(ini), 0); /* still sleeping: kill -9 */

    trellis_trans_info_t *info = itest_wait_final(t, "tcc-vanish");
    int64_t took = harness_mono_ms() - start;
    fprintf(stderr, "rolled back %lld ms after the initiator started\n",
            (long long)took);
    assert_true(took < 10000);
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_non_null(strstr(info->reason, "timeout"));
    assert_ops(info, 2, TRELLIS_OP_SKIPPED, TRELLIS_OP_SUCCEEDED);
    harness_part_state_t ps;
    char j[256];
    journal(t, info, &ps, j, sizeof j);
    assert_string_equal(j, "T0 T1 X1 X0");
    for (int i = 0; i < 2; i++)
        assert_int_equal(itest_count(info, &ps, i, "cancel", "undone"), 1);
    assert_cancels_backwards(info, &ps, 2);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- 4. trellisd dies while confirming -------------------------------- */

static void crash_and_restart(itest_t *t)
{
    assert_int_equal(harness_server_crash_restart(t->tm), 0);
    itest_reconnect(t);
}

typedef struct {
    itest_t *t;
    const char *gid, *op;
} op_wait_t;

static int op_seen(void *arg)
{
    op_wait_t *w = arg;
    harness_part_state_t ps;
    if (harness_part_state(harness_server_addr(w->t->part), w->gid, &ps))
        return 0;
    int n = harness_part_count(&ps, NULL, w->op, NULL);
    harness_part_state_free(&ps);
    return n > 0;
}

static void test_tm_killed_confirming(void **state)
{
    itest_t *t = itest_start(state, "tcc_tm_killed", NULL);
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_tcc_t *tcc = tcc_begin(t, "tcc-crash", &o);
    call_ok(t, tcc, "confirm=unavail:3");
    call_ok(t, tcc, "confirm=unavail:3");
    assert_int_equal(submit(tcc), TRELLIS_TRANS_SUBMITTED);
    trellis_tcc_free(tcc); /* it borrows the client we replace */

    op_wait_t w = {t, "tcc-crash", "confirm"};
    assert_true(harness_poll(op_seen, &w, ITEST_FINAL_TIMEOUT_MS, 5));
    /* Confirming, and no confirm has taken effect yet: kill -9 now. */
    harness_part_state_t before;
    itest_part_state(t, "tcc-crash", &before);
    assert_int_equal(harness_part_count(&before, NULL, "confirm", "confirmed"),
                     0);
    harness_part_state_free(&before);
    crash_and_restart(t);

    trellis_trans_info_t *info = itest_wait_final(t, "tcc-crash");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    assert_ops(info, 2, TRELLIS_OP_SUCCEEDED, TRELLIS_OP_SKIPPED);
    harness_part_state_t ps;
    char j[512];
    journal(t, info, &ps, j, sizeof j);
    assert_int_equal(strncmp(j, "T0 T1 F", 7), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(itest_count(info, &ps, i, "try", "applied"), 1);
        assert_int_equal(itest_count(info, &ps, i, "confirm", "confirmed"), 1);
        assert_int_equal(itest_count(info, &ps, i, "confirm", "orphan"), 0);
        assert_int_equal(itest_count(info, &ps, i, "cancel", NULL), 0);
    }
    assert_int_equal(ps.n_net, 2);
    for (size_t i = 0; i < ps.n_net; i++)
        assert_true(ps.net[i].confirmed);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* kill -9 while the transaction is prepared (tries done, not submitted):
 * after the restart the initiator's submit still confirms every branch
 * exactly once. */
static void test_tm_killed_while_prepared(void **state)
{
    itest_t *t = itest_start(state, "tcc_tm_killed_prepared", NULL);
    trellis_options_t o = itest_options();
    o.timeout_to_fail_ms = 20000;
    trellis_tcc_t *tcc = tcc_begin(t, "tcc-prepared", &o);
    call_ok(t, tcc, "");
    call_ok(t, tcc, "");
    trellis_tcc_free(tcc);
    crash_and_restart(t);

    trellis_trans_info_t *info = itest_query(t, "tcc-prepared");
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_int_equal(info->n_branches, 2);
    trellis_trans_info_free(info);
    char err[256];
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc = trellis_submit(t->client, "tcc-prepared", 1, &st, NULL, 0,
                                     err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("submit after restart: rc %d: %s", rc, err);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);

    info = itest_query(t, "tcc-prepared");
    assert_ops(info, 2, TRELLIS_OP_SUCCEEDED, TRELLIS_OP_SKIPPED);
    harness_part_state_t ps;
    itest_part_state(t, "tcc-prepared", &ps);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(itest_count(info, &ps, i, "confirm", "confirmed"), 1);
        assert_int_equal(itest_count(info, &ps, i, "cancel", NULL), 0);
    }
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* kill -9 while cancelling: the restarted TM finishes the rollback,
 * still backwards, each cancel taking effect once. */
static void test_tm_killed_cancelling(void **state)
{
    itest_t *t = itest_start(state, "tcc_tm_killed_cancel", NULL);
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_tcc_t *tcc = tcc_begin(t, "tcc-cancel-crash", &o);
    call_ok(t, tcc, "");
    call_ok(t, tcc, "cancel=unavail:3");
    abort_with(tcc, "changed my mind");
    trellis_tcc_free(tcc);

    op_wait_t w = {t, "tcc-cancel-crash", "cancel"};
    assert_true(harness_poll(op_seen, &w, ITEST_FINAL_TIMEOUT_MS, 5));
    crash_and_restart(t);

    trellis_trans_info_t *info = itest_wait_final(t, "tcc-cancel-crash");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_non_null(strstr(info->reason, "changed my mind"));
    assert_ops(info, 2, TRELLIS_OP_SKIPPED, TRELLIS_OP_SUCCEEDED);
    harness_part_state_t ps;
    itest_part_state(t, "tcc-cancel-crash", &ps);
    for (int i = 0; i < 2; i++)
        assert_int_equal(itest_count(info, &ps, i, "cancel", "undone"), 1);
    assert_cancels_backwards(info, &ps, 2);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- 5. phase-2 retries ------------------------------------------------ */

/* Branch i's op was called 3 times (two not-yet answers, then ok) and
 * took effect once; trellisd counted the attempts. */
static void assert_three_attempts(const trellis_trans_info_t *info,
                                  const harness_part_state_t *ps, int i,
                                  const char *op, trellis_op_t kind,
                                  const char *effect, const char *not_yet)
{
    assert_int_equal(itest_count(info, ps, i, op, NULL), 3);
    assert_int_equal(itest_count(info, ps, i, op, effect), 1);
    const harness_part_call_t *c = itest_call(info, ps, i, op, NULL);
    assert_string_equal(c->answer, not_yet);
    assert_int_equal(itest_op(&info->branches[i], kind)->attempts, 3);
}

static void test_confirm_retried(void **state)
{
    itest_t *t = itest_start(state, "tcc_confirm_retried", NULL);
    trellis_options_t o = itest_options();
    trellis_tcc_t *tcc = tcc_begin(t, "tcc-confirm-retry", &o);
    call_ok(t, tcc, "confirm=ongoing:2");
    call_ok(t, tcc, "confirm=unavail:2");
    assert_int_equal(submit(tcc), TRELLIS_TRANS_SUCCEEDED);
    trellis_tcc_free(tcc);

    trellis_trans_info_t *info = itest_query(t, "tcc-confirm-retry");
    assert_ops(info, 2, TRELLIS_OP_SUCCEEDED, TRELLIS_OP_SKIPPED);
    harness_part_state_t ps;
    char j[512];
    journal(t, info, &ps, j, sizeof j);
    assert_three_attempts(info, &ps, 0, "confirm", TRELLIS_OP_CONFIRM,
                          "confirmed", "ongoing");
    assert_three_attempts(info, &ps, 1, "confirm", TRELLIS_OP_CONFIRM,
                          "confirmed", "unavail");
    assert_int_equal(harness_part_count(&ps, NULL, "cancel", NULL), 0);
    assert_int_equal(ps.n_net, 2);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_cancel_retried(void **state)
{
    itest_t *t = itest_start(state, "tcc_cancel_retried", NULL);
    trellis_options_t o = itest_options();
    trellis_tcc_t *tcc = tcc_begin(t, "tcc-cancel-retry", &o);
    call_ok(t, tcc, "cancel=unavail:2");
    call_ok(t, tcc, "cancel=ongoing:2");
    assert_int_equal(abort_with(tcc, "changed my mind"), TRELLIS_TRANS_FAILED);
    trellis_tcc_free(tcc);

    trellis_trans_info_t *info = itest_query(t, "tcc-cancel-retry");
    assert_non_null(strstr(info->reason, "changed my mind"));
    assert_ops(info, 2, TRELLIS_OP_SKIPPED, TRELLIS_OP_SUCCEEDED);
    harness_part_state_t ps;
    char j[512];
    journal(t, info, &ps, j, sizeof j);
    assert_string_equal(j, "T0 T1 X1:ongoing X1:ongoing X1 X0:unavail "
                           "X0:unavail X0");
    assert_three_attempts(info, &ps, 1, "cancel", TRELLIS_OP_CANCEL, "undone",
                          "ongoing");
    assert_three_attempts(info, &ps, 0, "cancel", TRELLIS_OP_CANCEL, "undone",
                          "unavail");
    assert_cancels_backwards(info, &ps, 2);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- 6. misuse ------------------------------------------------------- */

static void assert_refused_target(itest_t *t, trellis_tcc_t *tcc,
                                  const char *try_, const char *confirm,
                                  const char *cancel)
{
    char err[256];
    trellis_rc_t rc = trellis_tcc_call_branch(tcc, try_, confirm, cancel, "", 0,
                                              NULL, NULL, err, sizeof err);
    if (rc != TRELLIS_INVALID_ARGUMENT)
        fail_msg("targets %s | %s | %s: rc %d (%s), want INVALID_ARGUMENT",
                 try_ ? try_ : "(null)", confirm ? confirm : "(null)",
                 cancel ? cancel : "(null)", rc, err);
    assert_non_null(strstr(err, "target"));
    (void)t;
}

static void refuse_malformed_targets(itest_t *t, trellis_tcc_t *tcc)
{
    targets_t tg;
    part_targets(t, &tg);
    char port0[128];
    snprintf(port0, sizeof port0, "127.0.0.1:0/trellis.test.Part/Try");
    const char *bad[] = {
        "",
        "trellis.test.Part/Try",                     /* no host:port */
        "127.0.0.1/trellis.test.Part/Try",           /* no port */
        port0,                                       /* port 0 */
        "127.0.0.1:70000/trellis.test.Part/Try",     /* port too big */
        "127.0.0.1:5000/Part/Try",                   /* no package */
        "127.0.0.1:5000/trellis.test.Part/",         /* no method */
        "127.0.0.1:5000/trellis.test.Part",          /* one slash */
        "127.0.0.1:5000/trellis..Part/Try",          /* empty package part */
        "127.0.0.1:5000/trellis.test.Part/Try/More", /* method with '/' */
        "bad host:5000/trellis.test.Part/Try",       /* space in host */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_refused_target(t, tcc, bad[i], tg.confirm, tg.cancel);
        assert_refused_target(t, tcc, tg.try_, bad[i], tg.cancel);
        assert_refused_target(t, tcc, tg.try_, tg.confirm, bad[i]);
    }
    assert_refused_target(t, tcc, NULL, tg.confirm, tg.cancel);
    assert_refused_target(t, tcc, tg.try_, tg.confirm, NULL);
}

static void test_bad_use(void **state)
{
    itest_t *t = itest_start(state, "tcc_bad_use", NULL);
    char err[256];
    trellis_options_t o = itest_options();
    trellis_tcc_t *tcc = NULL;
    assert_int_equal(
        trellis_tcc_begin(t->client, "x", &o, NULL, err, sizeof err),
        TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(
        trellis_tcc_begin(t->client, "bad gid!", &o, &tcc, err, sizeof err),
        TRELLIS_INVALID_ARGUMENT);
    assert_null(tcc);

    tcc = tcc_begin(t, "tcc-misuse", &o);
    refuse_malformed_targets(t, tcc);
    trellis_trans_info_t *info = itest_query(t, "tcc-misuse");
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_int_equal(info->n_branches, 0);
    trellis_trans_info_free(info);
    harness_part_state_t ps;
    itest_part_state(t, "tcc-misuse", &ps);
    assert_int_equal(ps.n_calls, 0);
    harness_part_state_free(&ps);

    /* Refused calls used no branch id: the first real branch is 01. */
    call_ok(t, tcc, "#branch-1");
    assert_int_equal(abort_with(tcc, "bad use"), TRELLIS_TRANS_FAILED);
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    assert_int_equal(trellis_tcc_submit(tcc, &st, NULL, 0, err, sizeof err),
                     TRELLIS_FAILED_PRECONDITION);
    /* A branch after the abort is refused by trellisd; its try is not sent. */
    assert_int_equal(call(t, tcc, "#late", err, sizeof err),
                     TRELLIS_FAILED_PRECONDITION);
    trellis_tcc_free(tcc);

    info = itest_query(t, "tcc-misuse");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    assert_ops(info, 1, TRELLIS_OP_SKIPPED, TRELLIS_OP_SUCCEEDED);
    char j[256];
    journal(t, info, &ps, j, sizeof j);
    assert_string_equal(j, "T0 X0");
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);

    assert_int_equal(trellis_tcc_submit(NULL, &st, NULL, 0, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_null(trellis_tcc_gid(NULL));
    trellis_tcc_free(NULL);
    itest_pass(state);
}

/* ---- 7. the try's metadata, headers and reply -------------------------- */

#define REC_MAX 8

typedef struct {
    char branch_id[40], trans_type[16], op[16], gid[72], tenant[32];
} rec_call_t;

typedef struct {
    pthread_mutex_t mu;
    size_t n;
    rec_call_t calls[REC_MAX];
} recorder_t;

static void record_handler(const trellis_branch_ctx_t *ctx,
                           const uint8_t *payload, size_t payload_len,
                           trellis_reply_t *reply, void *user)
{
    (void)payload;
    (void)payload_len;
    recorder_t *r = user;
    const char *tenant = trellis_branch_ctx_header(ctx, "x-tenant");
    pthread_mutex_lock(&r->mu);
    if (r->n < REC_MAX) {
        rec_call_t *c = &r->calls[r->n++];
        snprintf(c->gid, sizeof c->gid, "%s", ctx->gid);
        snprintf(c->trans_type, sizeof c->trans_type, "%s", ctx->trans_type);
        snprintf(c->branch_id, sizeof c->branch_id, "%s", ctx->branch_id);
        snprintf(c->op, sizeof c->op, "%s", ctx->op);
        snprintf(c->tenant, sizeof c->tenant, "%s", tenant ? tenant : "(none)");
    }
    pthread_mutex_unlock(&r->mu);
    reply->code = TRELLIS_REPLY_SUCCESS;
    if ((reply->body = malloc(4)) != NULL) {
        memcpy(reply->body, "pong", 4);
        reply->body_len = 4;
    }
}

static trellis_participant_t *start_recorder(recorder_t *r, char *addr,
                                             size_t addrlen)
{
    char err[256];
    trellis_participant_t *p = NULL;
    int port = 0;
    assert_int_equal(trellis_participant_new(2, &p, err, sizeof err),
                     TRELLIS_OK);
    const char *methods[] = {"/trellis.test.Rec/Try",
                             "/trellis.test.Rec/Confirm",
                             "/trellis.test.Rec/Cancel"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(trellis_participant_handle(
                             p, methods[i], record_handler, r, err, sizeof err),
                         TRELLIS_OK);
    if (trellis_participant_start(p, "127.0.0.1:0", &port, err, sizeof err))
        fail_msg("trellis_participant_start: %s", err);
    snprintf(addr, addrlen, "127.0.0.1:%d", port);
    return p;
}

static void assert_rec(const rec_call_t *c, const char *op)
{
    assert_string_equal(c->gid, "tcc-meta");
    assert_string_equal(c->trans_type, "tcc");
    assert_string_equal(c->branch_id, "01");
    assert_string_equal(c->op, op);
    assert_string_equal(c->tenant, "blue");
}

static void test_try_metadata(void **state)
{
    itest_t *t = itest_start(state, "tcc_metadata", NULL);
    recorder_t r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    char addr[64], err[256];
    trellis_participant_t *p = start_recorder(&r, addr, sizeof addr);
    targets_t tg;
    targets_at(addr, "trellis.test.Rec", &tg);

    static const char *const keys[] = {"x-tenant"};
    static const char *const values[] = {"blue"};
    trellis_options_t o = itest_options();
    o.n_headers = 1;
    o.header_keys = keys;
    o.header_values = values;
    trellis_tcc_t *tcc = tcc_begin(t, "tcc-meta", &o);
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    assert_int_equal(trellis_tcc_call_branch(tcc, tg.try_, tg.confirm,
                                             tg.cancel, "x", 1, &reply,
                                             &reply_len, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(reply_len, 4);
    assert_memory_equal(reply, "pong", 4);
    free(reply);
    assert_int_equal(submit(tcc), TRELLIS_TRANS_SUCCEEDED);
    trellis_tcc_free(tcc);

    pthread_mutex_lock(&r.mu);
    assert_int_equal(r.n, 2);
    assert_rec(&r.calls[0], "try");
    assert_rec(&r.calls[1], "confirm");
    pthread_mutex_unlock(&r.mu);
    trellis_participant_free(p);
    pthread_mutex_destroy(&r.mu);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_success, itest_teardown),
        cmocka_unit_test_teardown(test_try_fails, itest_teardown),
        cmocka_unit_test_teardown(test_initiator_killed, itest_teardown),
        cmocka_unit_test_teardown(test_tm_killed_confirming, itest_teardown),
        cmocka_unit_test_teardown(test_tm_killed_while_prepared,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_tm_killed_cancelling, itest_teardown),
        cmocka_unit_test_teardown(test_confirm_retried, itest_teardown),
        cmocka_unit_test_teardown(test_cancel_retried, itest_teardown),
        cmocka_unit_test_teardown(test_bad_use, itest_teardown),
        cmocka_unit_test_teardown(test_try_metadata, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
