/*
 * test_workflow.c: workflows (trellis_workflow.h) against a real trellisd
 * and trellis-testpart, with the workflow service hosted by the test
 * process itself (a trellis_participant serving /trellis.v1.Workflow/Resume
 * and a small participant, trellis.test.Bytes, whose action answers bytes
 * holding a NUL). Success of saga, TCC and local steps; a business
 * failure in the last step rolling back everything before it (local undo
 * included); replay of recorded results byte for byte without calling
 * again; a replay mismatch stopping the workflow in trellisd; trellisd
 * resuming a workflow that asked to retry; a step with an unknown outcome
 * run again by the next run; hooks on commit and rollback;
 * one gid running once per process; and bad input at the raw RPCs.
 *
 * Testpart journal letters (itest_journal): A action, C compensate, T try,
 * F confirm, X cancel, followed by the step's number (1 for branch "01");
 * ":answer" when not ok.
 */
#include "itest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis_participant.h"
#include "trellis/trellis_workflow.h"
#include "trellis/v1/tm.pb-c.h"

#define PART "trellis.test.Part"
#define BYTES_METHOD "/trellis.test.Bytes/Action"
#define BYTES_UNDO_METHOD "/trellis.test.Bytes/Compensate"
/* What trellis.test.Bytes/Action answers: 8 bytes, a NUL among them. */
static const uint8_t BYTES_REPLY[] = {'o', 'k', 0, 1, 0xff, 'e', 'n', 'd'};
/* What the local step's action returns. */
static const uint8_t LOCAL_RESULT[] = {'l', 'o', 'c', 'a', 'l', 0, 'r', '!'};

/* What the functions, steps and hooks saw; they run on the test's thread
 * (execute) and on the participant's workers (trellisd's Resume). */
static struct {
    atomic_int runs;         /* function runs, any function */
    atomic_int bytes_calls;  /* trellis.test.Bytes/Action */
    atomic_int local_runs;   /* local action */
    atomic_int undo_runs;    /* local undo */
    atomic_int retries_left; /* flaky, bytes: runs that return RETRY */
    atomic_int shifty_tcc;   /* shifty asks for a tcc step, not a saga */
    atomic_int shrink;       /* shrink takes one step, not two */
    atomic_int slow_entered; /* slow is running */
    atomic_int slow_release; /* slow may return */
    atomic_int on_commit, on_rollback, on_finish;
    pthread_mutex_t mu; /* guards the rest */
    char bad[256];      /* the first failed EXPECT, off the test's thread */
    uint8_t undo_seen[32];
    size_t undo_seen_len;
    int undo_seen_null;
    int64_t undo_ms, hook_ms;
    uint8_t replies[4][32]; /* bytes: the reply of each run's step 01 */
    size_t reply_lens[4];
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* cmocka's asserts may only fail on the test's thread; code that also
 * runs on the participant's workers notes a failure here instead, and the
 * test checks it when it passes. */
#define EXPECT(cond) expect_at((cond), #cond, __LINE__)

static int expect_at(int ok, const char *what, int line)
{
    if (ok)
        return 1;
    pthread_mutex_lock(&W.mu);
    if (W.bad[0] == '\0')
        snprintf(W.bad, sizeof W.bad, "line %d: %s", line, what);
    pthread_mutex_unlock(&W.mu);
    return 0;
}

static void w_reset(void)
{
    atomic_store(&W.runs, 0);
    atomic_store(&W.bytes_calls, 0);
    atomic_store(&W.local_runs, 0);
    atomic_store(&W.undo_runs, 0);
    atomic_store(&W.retries_left, 0);
    atomic_store(&W.shifty_tcc, 0);
    atomic_store(&W.shrink, 0);
    atomic_store(&W.slow_entered, 0);
    atomic_store(&W.slow_release, 0);
    atomic_store(&W.on_commit, 0);
    atomic_store(&W.on_rollback, 0);
    atomic_store(&W.on_finish, 0);
    pthread_mutex_lock(&W.mu);
    W.undo_seen_len = 0;
    W.undo_seen_null = 0;
    W.undo_ms = W.hook_ms = 0;
    memset(W.reply_lens, 0, sizeof W.reply_lens);
    W.bad[0] = '\0';
    pthread_mutex_unlock(&W.mu);
}

/* ---- the fixture ----------------------------------------------------- */

typedef struct {
    itest_t *t;
    trellis_participant_t *p;
    trellis_workflows_t *w;
    char addr[64]; /* the workflow service, "127.0.0.1:P" */
    char action[128], compensate[128], try_[128], confirm[128], cancel[128];
    char bytes[128], bytes_undo[128];
} wft_t;

static wft_t *X; /* the running test's */

static int wf_transfer(trellis_wf_t *, const uint8_t *, size_t,
                       trellis_wf_err_t *);
static int wf_bytes(trellis_wf_t *, const uint8_t *, size_t,
                    trellis_wf_err_t *);
static int wf_shifty(trellis_wf_t *, const uint8_t *, size_t,
                     trellis_wf_err_t *);
static int wf_flaky(trellis_wf_t *, const uint8_t *, size_t,
                    trellis_wf_err_t *);
static int wf_hooked(trellis_wf_t *, const uint8_t *, size_t,
                     trellis_wf_err_t *);
static int wf_slow(trellis_wf_t *, const uint8_t *, size_t, trellis_wf_err_t *);
static int wf_shrink(trellis_wf_t *, const uint8_t *, size_t,
                     trellis_wf_err_t *);
static int wf_careless(trellis_wf_t *, const uint8_t *, size_t,
                       trellis_wf_err_t *);

static void bytes_action(const trellis_branch_ctx_t *ctx,
                         const uint8_t *payload, size_t len,
                         trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)payload, (void)len, (void)user;
    atomic_fetch_add(&W.bytes_calls, 1);
    reply->body = malloc(sizeof BYTES_REPLY);
    memcpy(reply->body, BYTES_REPLY, sizeof BYTES_REPLY);
    reply->body_len = sizeof BYTES_REPLY;
}

static void bytes_undo(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                       size_t len, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)payload, (void)len, (void)reply, (void)user;
}

static void check(trellis_rc_t rc, const char *what, const char *err)
{
    if (rc != TRELLIS_OK)
        fail_msg("%s: rc %d: %s", what, rc, err);
}

static void wft_start(void **state, const char *name,
                      const char *const *extra_tm_args)
{
    static const struct {
        const char *name;
        trellis_wf_fn fn;
    } fns[] = {{"transfer", wf_transfer}, {"bytes", wf_bytes},
               {"shifty", wf_shifty},     {"flaky", wf_flaky},
               {"hooked", wf_hooked},     {"slow", wf_slow},
               {"shrink", wf_shrink},     {"careless", wf_careless}};
    char err[256];
    w_reset();
    X = calloc(1, sizeof *X);
    assert_non_null(X);
    X->t = itest_start(state, name, extra_tm_args);
    const char *part = harness_server_addr(X->t->part);
    snprintf(X->action, sizeof X->action, "%s", X->t->action);
    snprintf(X->compensate, sizeof X->compensate, "%s", X->t->compensate);
    snprintf(X->try_, sizeof X->try_, "%s/" PART "/Try", part);
    snprintf(X->confirm, sizeof X->confirm, "%s/" PART "/Confirm", part);
    snprintf(X->cancel, sizeof X->cancel, "%s/" PART "/Cancel", part);
    check(trellis_participant_new(4, &X->p, err, sizeof err), "participant",
          err);
    check(trellis_workflows_new(X->t->client, &X->w, err, sizeof err),
          "registry", err);
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        check(trellis_workflows_register(X->w, fns[i].name, fns[i].fn, X, err,
                                         sizeof err),
              fns[i].name, err);
    check(trellis_workflows_serve(X->w, X->p, err, sizeof err), "serve", err);
    check(trellis_participant_handle(X->p, BYTES_METHOD, bytes_action, NULL,
                                     err, sizeof err),
          "bytes handler", err);
    check(trellis_participant_handle(X->p, BYTES_UNDO_METHOD, bytes_undo, NULL,
                                     err, sizeof err),
          "bytes undo handler", err);
    int port = 0;
    check(
        trellis_participant_start(X->p, "127.0.0.1:0", &port, err, sizeof err),
        "participant start", err);
    snprintf(X->addr, sizeof X->addr, "127.0.0.1:%d", port);
    snprintf(X->bytes, sizeof X->bytes, "%s%s", X->addr, BYTES_METHOD);
    snprintf(X->bytes_undo, sizeof X->bytes_undo, "%s%s", X->addr,
             BYTES_UNDO_METHOD);
    check(trellis_workflows_set_address(X->w, X->addr, err, sizeof err),
          "set address", err);
}

static void wft_free(void)
{
    if (X == NULL)
        return;
    trellis_participant_free(X->p); /* its handler uses the registry */
    trellis_workflows_free(X->w);
    free(X);
    X = NULL;
}

static void wft_pass(void **state)
{
    pthread_mutex_lock(&W.mu);
    if (W.bad[0] != '\0')
        fail_msg("a function, step or hook saw %s", W.bad);
    pthread_mutex_unlock(&W.mu);
    wft_free();
    itest_pass(state);
}

static int wft_teardown(void **state)
{
    wft_free();
    return itest_teardown(state);
}

/* ---- the workflow functions ------------------------------------------ */

/* A step's rc as the function's answer: ABORTED rolls back, anything
 * else retries; e gets err. */
static int give_up(trellis_rc_t rc, const char *err, trellis_wf_err_t *e)
{
    snprintf(e->message, sizeof e->message, "%s", err);
    return rc == TRELLIS_ABORTED ? TRELLIS_WF_ROLLBACK : TRELLIS_WF_RETRY;
}

static trellis_rc_t local_run(const trellis_wf_step_ctx_t *ctx, void *arg,
                              uint8_t **out, size_t *out_len, char *err,
                              size_t errlen)
{
    EXPECT(strcmp(ctx->op, "action") == 0);
    EXPECT(ctx->user == X);
    atomic_fetch_add(&W.local_runs, 1);
    if (arg != NULL && strcmp(arg, "fail") == 0) {
        snprintf(err, errlen, "local: refused");
        return TRELLIS_ABORTED;
    }
    *out = malloc(sizeof LOCAL_RESULT);
    memcpy(*out, LOCAL_RESULT, sizeof LOCAL_RESULT);
    *out_len = sizeof LOCAL_RESULT;
    return TRELLIS_OK;
}

static trellis_rc_t local_undo(const trellis_wf_step_ctx_t *ctx, void *arg,
                               const uint8_t *result, size_t result_len,
                               char *err, size_t errlen)
{
    (void)arg, (void)err, (void)errlen;
    trellis_branch_ctx_t b;
    trellis_wf_step_branch_ctx(ctx, &b);
    EXPECT(strcmp(b.trans_type, "local") == 0);
    EXPECT(strcmp(b.op, "compensate") == 0);
    EXPECT(strcmp(b.gid, ctx->gid) == 0);
    pthread_mutex_lock(&W.mu);
    W.undo_seen_null = result == NULL;
    W.undo_seen_len = result_len < sizeof W.undo_seen ? result_len : 0;
    if (result != NULL)
        memcpy(W.undo_seen, result, W.undo_seen_len);
    W.undo_ms = harness_now_ms();
    pthread_mutex_unlock(&W.mu);
    atomic_fetch_add(&W.undo_runs, 1);
    return TRELLIS_OK;
}

/* input "s1|s2|local|s4": saga s1, saga s2, local (ok or fail), tcc s4. */
static int wf_transfer(trellis_wf_t *wf, const uint8_t *in, size_t len,
                       trellis_wf_err_t *e)
{
    atomic_fetch_add(&W.runs, 1);
    wft_t *x = trellis_wf_user(wf);
    char buf[256], err[256], *s[4];
    if (!EXPECT(len < sizeof buf))
        return TRELLIS_WF_RETRY;
    memcpy(buf, in, len);
    buf[len] = '\0';
    s[0] = buf;
    for (int i = 1; i < 4; i++) {
        s[i] = strchr(s[i - 1], '|');
        if (!EXPECT(s[i] != NULL))
            return TRELLIS_WF_RETRY;
        *s[i]++ = '\0';
    }
    trellis_rc_t rc;
    for (int i = 0; i < 2; i++)
        if ((rc = trellis_wf_saga(wf, x->action, x->compensate, s[i],
                                  strlen(s[i]), NULL, NULL, err, sizeof err)))
            return give_up(rc, err, e);
    uint8_t *r = NULL;
    size_t rl = 0;
    rc = trellis_wf_local(wf, local_run, local_undo, s[2], &r, &rl, err,
                          sizeof err);
    free(r);
    if (rc != TRELLIS_OK)
        return give_up(rc, err, e);
    rc = trellis_wf_tcc(wf, x->try_, x->confirm, x->cancel, s[3], strlen(s[3]),
                        NULL, NULL, err, sizeof err);
    return rc ? give_up(rc, err, e) : TRELLIS_WF_COMMIT;
}

/* A saga step on trellis.test.Bytes and a local step; keeps each run's
 * reply; retries while retries_left. */
static int wf_bytes(trellis_wf_t *wf, const uint8_t *in, size_t len,
                    trellis_wf_err_t *e)
{
    (void)in, (void)len;
    int run = atomic_fetch_add(&W.runs, 1);
    wft_t *x = trellis_wf_user(wf);
    char err[256];
    uint8_t *r = NULL;
    size_t rl = 0;
    trellis_rc_t rc = trellis_wf_saga(wf, x->bytes, x->bytes_undo, "p", 1, &r,
                                      &rl, err, sizeof err);
    if (rc != TRELLIS_OK)
        return give_up(rc, err, e);
    if (run < 4 && rl <= sizeof W.replies[0]) {
        pthread_mutex_lock(&W.mu);
        memcpy(W.replies[run], r, rl);
        W.reply_lens[run] = rl;
        pthread_mutex_unlock(&W.mu);
    }
    free(r);
    rc = trellis_wf_local(wf, local_run, local_undo, NULL, &r, &rl, err,
                          sizeof err);
    int same = rc == TRELLIS_OK && rl == sizeof LOCAL_RESULT &&
               memcmp(r, LOCAL_RESULT, rl) == 0;
    free(r);
    if (!same)
        return give_up(rc ? rc : TRELLIS_UNKNOWN, "local result differs", e);
    if (atomic_fetch_sub(&W.retries_left, 1) > 0) {
        snprintf(e->message, sizeof e->message, "not yet");
        return TRELLIS_WF_RETRY;
    }
    return TRELLIS_WF_COMMIT;
}

/* A saga step, then RETRY — or, once shifty_tcc is set, a tcc step at the
 * same position, then COMMIT (which must be ignored). */
static int wf_shifty(trellis_wf_t *wf, const uint8_t *in, size_t len,
                     trellis_wf_err_t *e)
{
    (void)in, (void)len;
    atomic_fetch_add(&W.runs, 1);
    wft_t *x = trellis_wf_user(wf);
    char err[256];
    if (!atomic_load(&W.shifty_tcc)) {
        trellis_rc_t rc = trellis_wf_saga(wf, x->action, x->compensate, "ok", 2,
                                          NULL, NULL, err, sizeof err);
        if (rc == TRELLIS_OK)
            snprintf(err, sizeof err, "the saga step is done");
        return give_up(TRELLIS_UNAVAILABLE, err, e);
    }
    trellis_rc_t rc = trellis_wf_tcc(wf, x->try_, x->confirm, x->cancel, "ok",
                                     2, NULL, NULL, err, sizeof err);
    EXPECT(rc == TRELLIS_FAILED_PRECONDITION);
    EXPECT(strstr(err, "replay mismatch") != NULL);
    /* Every later step fails the same way. */
    rc = trellis_wf_saga(wf, x->action, x->compensate, "ok", 2, NULL, NULL, err,
                         sizeof err);
    EXPECT(rc == TRELLIS_FAILED_PRECONDITION);
    return TRELLIS_WF_COMMIT;
}

/* Two saga steps then RETRY; once shrink is set, one step then COMMIT. */
static int wf_shrink(trellis_wf_t *wf, const uint8_t *in, size_t len,
                     trellis_wf_err_t *e)
{
    (void)in, (void)len;
    atomic_fetch_add(&W.runs, 1);
    wft_t *x = trellis_wf_user(wf);
    char err[256];
    int n = atomic_load(&W.shrink) ? 1 : 2;
    for (int i = 0; i < n; i++) {
        trellis_rc_t rc = trellis_wf_saga(wf, x->action, x->compensate, "ok", 2,
                                          NULL, NULL, err, sizeof err);
        if (rc != TRELLIS_OK)
            return give_up(rc, err, e);
    }
    return n == 1 ? TRELLIS_WF_COMMIT : give_up(TRELLIS_UNAVAILABLE, "2", e);
}

/* A saga step with input as its script; COMMIT whatever it answered. */
static int wf_careless(trellis_wf_t *wf, const uint8_t *in, size_t len,
                       trellis_wf_err_t *e)
{
    (void)e;
    atomic_fetch_add(&W.runs, 1);
    wft_t *x = trellis_wf_user(wf);
    char err[256];
    trellis_wf_saga(wf, x->action, x->compensate, in, len, NULL, NULL, err,
                    sizeof err);
    return TRELLIS_WF_COMMIT;
}

/* A saga step; RETRY while retries_left, then COMMIT. */
static int wf_flaky(trellis_wf_t *wf, const uint8_t *in, size_t len,
                    trellis_wf_err_t *e)
{
    (void)in, (void)len;
    atomic_fetch_add(&W.runs, 1);
    wft_t *x = trellis_wf_user(wf);
    char err[256];
    trellis_rc_t rc = trellis_wf_saga(wf, x->action, x->compensate, "ok", 2,
                                      NULL, NULL, err, sizeof err);
    if (rc != TRELLIS_OK)
        return give_up(rc, err, e);
    if (atomic_fetch_sub(&W.retries_left, 1) > 0)
        return give_up(TRELLIS_UNAVAILABLE, "first run: try again", e);
    return TRELLIS_WF_COMMIT;
}

static trellis_rc_t hook(const char *gid, trellis_trans_status_t outcome,
                         void *arg, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    atomic_int *counter = arg;
    EXPECT(gid != NULL && strncmp(gid, "wf-hook-", 8) == 0);
    if (counter == &W.on_commit)
        EXPECT(outcome == TRELLIS_TRANS_SUCCEEDED);
    if (counter == &W.on_rollback)
        EXPECT(outcome == TRELLIS_TRANS_FAILED);
    pthread_mutex_lock(&W.mu);
    W.hook_ms = harness_now_ms();
    pthread_mutex_unlock(&W.mu);
    atomic_fetch_add(counter, 1);
    return TRELLIS_OK;
}

/* A saga and a tcc step with hooks; input "commit" or "rollback". */
static int wf_hooked(trellis_wf_t *wf, const uint8_t *in, size_t len,
                     trellis_wf_err_t *e)
{
    atomic_fetch_add(&W.runs, 1);
    wft_t *x = trellis_wf_user(wf);
    char err[256];
    EXPECT(trellis_wf_on_commit(wf, hook, &W.on_commit) == 0);
    EXPECT(trellis_wf_on_rollback(wf, hook, &W.on_rollback) == 0);
    EXPECT(trellis_wf_on_finish(wf, hook, &W.on_finish) == 0);
    trellis_rc_t rc = trellis_wf_saga(wf, x->action, x->compensate, "ok", 2,
                                      NULL, NULL, err, sizeof err);
    if (rc == TRELLIS_OK)
        rc = trellis_wf_tcc(wf, x->try_, x->confirm, x->cancel, "ok", 2, NULL,
                            NULL, err, sizeof err);
    if (rc != TRELLIS_OK)
        return give_up(rc, err, e);
    if (len == 8 && memcmp(in, "rollback", 8) == 0) {
        snprintf(e->message, sizeof e->message, "changed my mind");
        return TRELLIS_WF_ROLLBACK;
    }
    return TRELLIS_WF_COMMIT;
}

/* Blocks until slow_release; then COMMIT with no step. */
static int wf_slow(trellis_wf_t *wf, const uint8_t *in, size_t len,
                   trellis_wf_err_t *e)
{
    (void)wf, (void)in, (void)len, (void)e;
    atomic_store(&W.slow_entered, 1);
    while (!atomic_load(&W.slow_release))
        harness_sleep_ms(5);
    return TRELLIS_WF_COMMIT;
}

/* ---- helpers --------------------------------------------------------- */

static trellis_rc_t execute(const char *name, const char *gid,
                            const void *input, size_t len,
                            const trellis_options_t *o,
                            trellis_trans_status_t *st, char *reason,
                            size_t reasonlen, char *err, size_t errlen)
{
    trellis_rc_t rc = trellis_workflow_execute(
        X->w, name, gid, input, len, o, st, reason, reasonlen, err, errlen);
    fprintf(stderr, "execute %s %s: rc %d status %s %s%s\n", name, gid, rc,
            trellis_trans_status_name(*st), err, reason ? reason : "");
    return rc;
}

/* Options: wait for the outcome, fast retries, resume after timeout_ms.
 * A call of the workflow service runs the function again, so its deadline
 * is generous: a hook answered late would run twice. */
static trellis_options_t opts(uint32_t timeout_ms)
{
    trellis_options_t o = itest_options();
    o.timeout_to_fail_ms = timeout_ms;
    o.request_timeout_ms = 5000;
    return o;
}

/* gid's testpart journal (itest_journal: "A1 A2 T4 F4", the number the
 * step's position, 1 for branch "01"); ps is the caller's. */
static char *journal(const char *gid, harness_part_state_t *ps, char *buf,
                     size_t len)
{
    trellis_trans_info_t *info = itest_query(X->t, gid);
    itest_part_state(X->t, gid, ps);
    itest_journal(info, ps, buf, len);
    trellis_trans_info_free(info);
    fprintf(stderr, "%s: %s\n", gid, buf);
    return buf;
}

static const trellis_branch_info_t *branch(const trellis_trans_info_t *info,
                                           const char *id)
{
    for (size_t i = 0; i < info->n_branches; i++)
        if (!strcmp(info->branches[i].branch_id, id))
            return &info->branches[i];
    fail_msg("%s has no branch %s", info->gid, id);
    return NULL;
}

/* ---- success and failure --------------------------------------------- */

static void test_success(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_success", NULL);
    trellis_options_t o = opts(60000);
    const char *in = "ok|ok|ok|ok";
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("transfer", "wf-ok", in, strlen(in), &o, &st,
                              reason, sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);

    harness_part_state_t ps;
    assert_string_equal(journal("wf-ok", &ps, j, sizeof j), "A1 A2 T4 F4");
    assert_int_equal(ps.n_net, 3);
    harness_part_state_free(&ps);
    assert_int_equal(atomic_load(&W.local_runs), 1);
    assert_int_equal(atomic_load(&W.undo_runs), 0);

    trellis_trans_info_t *info = itest_query(X->t, "wf-ok");
    assert_int_equal(info->n_branches, 5);
    static const trellis_mode_t modes[] = {
        TRELLIS_MODE_WORKFLOW, TRELLIS_MODE_SAGA, TRELLIS_MODE_SAGA,
        TRELLIS_MODE_LOCAL, TRELLIS_MODE_TCC};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(info->branches[i].mode, modes[i]);
    const trellis_op_info_t *local =
        itest_op(branch(info, "03"), TRELLIS_OP_ACTION);
    assert_true(local->recorded);
    assert_int_equal(local->result_len, sizeof LOCAL_RESULT);
    assert_memory_equal(local->result, LOCAL_RESULT, sizeof LOCAL_RESULT);
    assert_true(itest_op(branch(info, "04"), TRELLIS_OP_TRY)->recorded);
    trellis_trans_info_free(info);

    /* Done: executing again runs nothing and reports the outcome. */
    int runs = atomic_load(&W.runs);
    rc = execute("transfer", "wf-ok", in, strlen(in), &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(atomic_load(&W.runs), runs);
    /* The same gid with other input is another workflow. */
    rc = execute("transfer", "wf-ok", "ok|ok|ok|", 9, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_ALREADY_EXISTS);
    wft_pass(state);
}

/* The tcc try of step 04 fails for business reasons: the function rolls
 * back, and trellisd undoes 04, the local 03 (through Resume, with its
 * recorded result), 02 and 01, in that order. */
static void test_failure_rolls_back(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_failure", NULL);
    trellis_options_t o = opts(60000);
    const char *in = "ok|ok|ok|fail";
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("transfer", "wf-fail", in, strlen(in), &o, &st,
                              reason, sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    assert_non_null(strstr(reason, "try fail"));

    harness_part_state_t ps;
    journal("wf-fail", &ps, j, sizeof j);
    assert_int_equal(ps.n_net, 0);
    assert_int_equal(harness_part_count(&ps, "01", "compensate", "undone"), 1);
    assert_int_equal(harness_part_count(&ps, "02", "compensate", "undone"), 1);
    assert_int_equal(harness_part_count(&ps, NULL, "confirm", NULL), 0);
    const harness_part_call_t *c02 =
        harness_part_find(&ps, "02", "compensate", 0);
    const harness_part_call_t *c01 =
        harness_part_find(&ps, "01", "compensate", 0);
    assert_non_null(c02);
    assert_non_null(c01);
    assert_true(c02->seq < c01->seq);

    assert_int_equal(atomic_load(&W.undo_runs), 1);
    pthread_mutex_lock(&W.mu);
    assert_false(W.undo_seen_null);
    assert_int_equal(W.undo_seen_len, sizeof LOCAL_RESULT);
    assert_memory_equal(W.undo_seen, LOCAL_RESULT, sizeof LOCAL_RESULT);
    assert_true(W.undo_ms <= c02->start_ms);
    pthread_mutex_unlock(&W.mu);
    harness_part_state_free(&ps);

    trellis_trans_info_t *info = itest_query(X->t, "wf-fail");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    const trellis_op_info_t *try4 =
        itest_op(branch(info, "04"), TRELLIS_OP_TRY);
    assert_true(try4->recorded);
    assert_int_equal(try4->status, TRELLIS_OP_FAILED);
    assert_int_equal(
        itest_op(branch(info, "03"), TRELLIS_OP_COMPENSATE)->status,
        TRELLIS_OP_SUCCEEDED);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            itest_op(branch(info, i ? "02" : "01"), TRELLIS_OP_COMPENSATE)
                ->status,
            TRELLIS_OP_SUCCEEDED);
    trellis_trans_info_free(info);

    /* A local step that fails: recorded ABORTED, replayed as such. */
    in = "ok|ok|fail|ok";
    rc = execute("transfer", "wf-fail-local", in, strlen(in), &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    assert_string_equal(reason, "local: refused");
    info = itest_query(X->t, "wf-fail-local");
    const trellis_op_info_t *a3 =
        itest_op(branch(info, "03"), TRELLIS_OP_ACTION);
    assert_int_equal(a3->status, TRELLIS_OP_FAILED);
    assert_string_equal(a3->last_error, "local: refused");
    assert_int_equal(info->n_branches, 4); /* 04 never asked for */
    trellis_trans_info_free(info);
    /* Its undo still runs (the action may have left effects), with no
     * result: it recorded none. */
    assert_int_equal(atomic_load(&W.undo_runs), 2);
    pthread_mutex_lock(&W.mu);
    assert_true(W.undo_seen_null);
    assert_int_equal(W.undo_seen_len, 0);
    pthread_mutex_unlock(&W.mu);
    wft_pass(state);
}

/* ---- replay ---------------------------------------------------------- */

/* Run 1 records step 01 (bytes with a NUL) and the local step, then
 * retries; run 2 gets both results back byte for byte, calling neither. */
static void test_replay_bytes(void **state)
{
    char err[512], reason[512];
    wft_start(state, "wf_replay", NULL);
    trellis_options_t o = opts(60000); /* no resume in between */
    atomic_store(&W.retries_left, 1);
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("bytes", "wf-bytes", "in", 2, &o, &st, reason,
                              sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    assert_non_null(strstr(err, "will be resumed by trellisd: not yet"));
    assert_int_equal(st, TRELLIS_TRANS_PREPARED);
    assert_int_equal(atomic_load(&W.bytes_calls), 1);
    assert_int_equal(atomic_load(&W.local_runs), 1);

    rc = execute("bytes", "wf-bytes", "in", 2, &o, &st, reason, sizeof reason,
                 err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(atomic_load(&W.runs), 2);
    assert_int_equal(atomic_load(&W.bytes_calls), 1);
    assert_int_equal(atomic_load(&W.local_runs), 1);
    pthread_mutex_lock(&W.mu);
    for (int run = 0; run < 2; run++) {
        assert_int_equal(W.reply_lens[run], sizeof BYTES_REPLY);
        assert_memory_equal(W.replies[run], BYTES_REPLY, sizeof BYTES_REPLY);
    }
    pthread_mutex_unlock(&W.mu);

    trellis_trans_info_t *info = itest_query(X->t, "wf-bytes");
    const trellis_op_info_t *a1 =
        itest_op(branch(info, "01"), TRELLIS_OP_ACTION);
    assert_true(a1->recorded);
    assert_int_equal(a1->result_len, sizeof BYTES_REPLY);
    assert_memory_equal(a1->result, BYTES_REPLY, sizeof BYTES_REPLY);
    trellis_trans_info_free(info);
    wft_pass(state);
}

/* Run 1 records a saga at step 01 and retries; run 2 asks for a tcc step
 * there: execute says so, and trellisd's resume is answered ABORTED and
 * stops. */
static void assert_out_has(const char *out, const char *want)
{
    if (!strstr(out, want))
        fail_msg("trellisctl output lacks \"%s\":\n%s", want, out);
}

static uint32_t resume_attempts(const char *gid, trellis_op_status_t *st)
{
    trellis_trans_info_t *info = itest_query(X->t, gid);
    const trellis_op_info_t *head =
        itest_op(branch(info, "00"), TRELLIS_OP_RESUME);
    uint32_t n = head->attempts;
    *st = head->status;
    trellis_trans_info_free(info);
    return n;
}

/* wf-shift is stopped: trellisctl status says so and shows the recorded
 * step; `trellisctl retry-now` resumes it once more (the service still
 * refuses: stopped again); `trellisctl abort` rolls its step back. */
static void operator_restarts_then_aborts(int64_t deadline)
{
    char out[8192];
    const char *status[] = {"status", "wf-shift", NULL};
    assert_int_equal(itest_ctl(X->t, "ctl-status", status, out, sizeof out), 0);
    assert_out_has(out, "workflow  shifty (input 0 bytes)");
    assert_out_has(out, "stopped: the workflow service refused");
    assert_out_has(out, "recorded result: ok, 0 bytes");

    trellis_op_status_t st;
    uint32_t before = resume_attempts("wf-shift", &st);
    const char *retry[] = {"retry-now", "wf-shift", NULL};
    assert_int_equal(itest_ctl(X->t, "ctl-retry", retry, out, sizeof out), 0);
    while (resume_attempts("wf-shift", &st) == before ||
           st != TRELLIS_OP_FAILED) {
        if (harness_mono_ms() > deadline)
            fail_msg("retry-now did not resume wf-shift once more");
        harness_sleep_ms(20);
    }

    const char *abort_[] = {"abort", "wf-shift", NULL};
    assert_int_equal(itest_ctl(X->t, "ctl-abort", abort_, out, sizeof out), 0);
    trellis_trans_info_t *info = itest_wait_final(X->t, "wf-shift");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    trellis_trans_info_free(info);
    char j[256];
    harness_part_state_t ps;
    journal("wf-shift", &ps, j, sizeof j);
    assert_int_equal(harness_part_count(&ps, NULL, "compensate", "undone"), 1);
    assert_int_equal(ps.n_net, 0);
    harness_part_state_free(&ps);
}

static void test_replay_mismatch(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_mismatch", NULL);
    trellis_options_t o = opts(300);
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("shifty", "wf-shift", "", 0, &o, &st, reason,
                              sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    atomic_store(&W.shifty_tcc, 1);
    int64_t deadline = harness_mono_ms() + ITEST_FINAL_TIMEOUT_MS;
    do { /* trellisd may be resuming it right now */
        rc = execute("shifty", "wf-shift", "", 0, &o, &st, reason,
                     sizeof reason, err, sizeof err);
        if (rc == TRELLIS_FAILED_PRECONDITION && strstr(err, "running"))
            harness_sleep_ms(20);
        else
            break;
    } while (harness_mono_ms() < deadline);
    assert_int_equal(rc, TRELLIS_FAILED_PRECONDITION);
    assert_int_equal(st, TRELLIS_TRANS_PREPARED);
    assert_non_null(strstr(err, "replay mismatch"));
    assert_non_null(strstr(err, "step 01: recorded saga action "));
    assert_non_null(strstr(err, ", but the function now asks for tcc try "));

    /* trellisd resumes after the timeout; the service answers ABORTED and
     * the workflow waits for an operator. */
    trellis_trans_info_t *info = NULL;
    for (;;) {
        info = itest_query(X->t, "wf-shift");
        const trellis_op_info_t *head =
            itest_op(branch(info, "00"), TRELLIS_OP_RESUME);
        if (head->status == TRELLIS_OP_FAILED)
            break;
        if (harness_mono_ms() > deadline)
            fail_msg("the resume of wf-shift did not stop: %s", info->reason);
        trellis_trans_info_free(info);
        harness_sleep_ms(20);
    }
    fprintf(stderr, "reason: %s\n", info->reason);
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_true(strncmp(info->reason, "workflow stopped: ", 18) == 0);
    assert_non_null(strstr(info->reason, "replay mismatch"));
    trellis_trans_info_free(info);

    /* Stopped: execute says so without running the function. */
    int runs = atomic_load(&W.runs);
    rc = execute("shifty", "wf-shift", "", 0, &o, &st, reason, sizeof reason,
                 err, sizeof err);
    assert_int_equal(rc, TRELLIS_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "stopped"));
    assert_int_equal(atomic_load(&W.runs), runs);

    harness_part_state_t ps;
    assert_string_equal(journal("wf-shift", &ps, j, sizeof j), "A1");
    harness_part_state_free(&ps);

    operator_restarts_then_aborts(deadline);

    /* A commit that leaves a recorded step out is a mismatch too. */
    o = opts(60000);
    rc = execute("shrink", "wf-shrink", "", 0, &o, &st, reason, sizeof reason,
                 err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    atomic_store(&W.shrink, 1);
    rc = execute("shrink", "wf-shrink", "", 0, &o, &st, reason, sizeof reason,
                 err, sizeof err);
    assert_int_equal(rc, TRELLIS_FAILED_PRECONDITION);
    assert_non_null(strstr(err, "step 02: recorded saga action "));
    assert_non_null(strstr(err, "commits after step 01"));
    assert_int_equal(st, TRELLIS_TRANS_PREPARED);
    wft_pass(state);
}

/* The first run retries; trellisd resumes the workflow after its 300 ms
 * timeout, and the second run (in the service) commits it. */
static void test_resumed_by_trellisd(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_resume", NULL);
    trellis_options_t o = opts(300);
    atomic_store(&W.retries_left, 1);
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("flaky", "wf-flaky", "x", 1, &o, &st, reason,
                              sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    assert_non_null(strstr(err, "first run: try again"));

    trellis_trans_info_t *info = itest_wait_final(X->t, "wf-flaky");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    const trellis_op_info_t *head =
        itest_op(branch(info, "00"), TRELLIS_OP_RESUME);
    assert_true(head->attempts >= 1);
    trellis_trans_info_free(info);
    assert_true(atomic_load(&W.runs) >= 2);
    harness_part_state_t ps;
    assert_string_equal(journal("wf-flaky", &ps, j, sizeof j), "A1");
    harness_part_state_free(&ps);
    wft_pass(state);
}

/* A forward op whose outcome is unknown is not recorded: the function
 * retries (or commits, which counts as a retry), and the next run calls
 * the op again and records what it answers then. A business failure is
 * recorded, and rolled back even when the function commits. */
static void test_unknown_outcome_runs_again(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_unknown", NULL);
    trellis_options_t o = opts(60000);
    const char *in = "unavail:1|ok|ok|ok";
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("transfer", "wf-unk", in, strlen(in), &o, &st,
                              reason, sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    rc = execute("transfer", "wf-unk", in, strlen(in), &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    harness_part_state_t ps;
    assert_string_equal(journal("wf-unk", &ps, j, sizeof j),
                        "A1:unavail A1 A2 T4 F4");
    harness_part_state_free(&ps);

    rc = execute("careless", "wf-careless", "unavail:1", 9, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_UNAVAILABLE);
    assert_non_null(strstr(err, "outcome is unknown"));
    rc = execute("careless", "wf-careless", "unavail:1", 9, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_string_equal(journal("wf-careless", &ps, j, sizeof j),
                        "A1:unavail A1");
    harness_part_state_free(&ps);

    /* A step recorded ABORTED in a workflow that commits anyway is rolled
     * back by trellisd, the rest committed. */
    rc = execute("careless", "wf-careless-f", "fail", 4, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_string_equal(journal("wf-careless-f", &ps, j, sizeof j),
                        "A1:fail C1");
    harness_part_state_free(&ps);
    wft_pass(state);
}

/* ---- hooks ----------------------------------------------------------- */

static void test_hooks(void **state)
{
    char err[512], reason[512], j[256];
    wft_start(state, "wf_hooks", NULL);
    trellis_options_t o = opts(60000);
    trellis_trans_status_t st;
    trellis_rc_t rc = execute("hooked", "wf-hook-c", "commit", 6, &o, &st,
                              reason, sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(atomic_load(&W.on_commit), 1);
    assert_int_equal(atomic_load(&W.on_finish), 1);
    assert_int_equal(atomic_load(&W.on_rollback), 0);
    harness_part_state_t ps;
    assert_string_equal(journal("wf-hook-c", &ps, j, sizeof j), "A1 T2 F2");
    const harness_part_call_t *f = harness_part_find(&ps, "02", "confirm", 0);
    pthread_mutex_lock(&W.mu);
    assert_true(W.hook_ms >= f->end_ms);
    pthread_mutex_unlock(&W.mu);
    harness_part_state_free(&ps);
    trellis_trans_info_t *info = itest_query(X->t, "wf-hook-c");
    const trellis_branch_info_t *h = branch(info, "hooks");
    assert_int_equal(h->mode, TRELLIS_MODE_HOOKS);
    assert_int_equal(itest_op(h, TRELLIS_OP_COMMIT)->status,
                     TRELLIS_OP_SUCCEEDED);
    assert_int_equal(itest_op(h, TRELLIS_OP_COMMIT)->attempts, 1);
    trellis_trans_info_free(info);

    rc = execute("hooked", "wf-hook-r", "rollback", 8, &o, &st, reason,
                 sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    assert_string_equal(reason, "changed my mind");
    assert_int_equal(atomic_load(&W.on_commit), 1);
    assert_int_equal(atomic_load(&W.on_rollback), 1);
    assert_int_equal(atomic_load(&W.on_finish), 2);
    journal("wf-hook-r", &ps, j, sizeof j);
    assert_int_equal(ps.n_net, 0);
    const harness_part_call_t *c =
        harness_part_find(&ps, "01", "compensate", 0);
    assert_non_null(c);
    pthread_mutex_lock(&W.mu);
    assert_true(W.hook_ms >= c->end_ms);
    pthread_mutex_unlock(&W.mu);
    harness_part_state_free(&ps);
    wft_pass(state);
}

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
        cmocka_unit_test_teardown(test_success, wft_teardown),
        cmocka_unit_test_teardown(test_failure_rolls_back, wft_teardown),
        cmocka_unit_test_teardown(test_replay_bytes, wft_teardown),
        cmocka_unit_test_teardown(test_replay_mismatch, wft_teardown),
        cmocka_unit_test_teardown(test_resumed_by_trellisd, wft_teardown),
        cmocka_unit_test_teardown(test_unknown_outcome_runs_again,
                                  wft_teardown),
        cmocka_unit_test_teardown(test_hooks, wft_teardown),
        cmocka_unit_test_teardown(test_one_run_per_gid, wft_teardown),
        cmocka_unit_test_teardown(test_bad_input, wft_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
