/*
 * itest_workflow: the workflow service the workflow integration tests
 * host (see itest_workflow.h) — its fixture, its functions and the calls
 * the tests make through it.
 */
#include "itest_workflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint8_t BYTES_REPLY[8] = {'o', 'k', 0, 1, 0xff, 'e', 'n', 'd'};
const uint8_t LOCAL_RESULT[8] = {'l', 'o', 'c', 'a', 'l', 0, 'r', '!'};

wft_seen_t W = {.mu = PTHREAD_MUTEX_INITIALIZER};

int expect_at(int ok, const char *what, int line)
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

wft_t *X;

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

void wft_start(void **state, const char *name, const char *const *extra_tm_args)
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

void wft_pass(void **state)
{
    pthread_mutex_lock(&W.mu);
    if (W.bad[0] != '\0')
        fail_msg("a function, step or hook saw %s", W.bad);
    pthread_mutex_unlock(&W.mu);
    wft_free();
    itest_pass(state);
}

int wft_teardown(void **state)
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
int wf_slow(trellis_wf_t *wf, const uint8_t *in, size_t len,
            trellis_wf_err_t *e)
{
    (void)wf, (void)in, (void)len, (void)e;
    atomic_store(&W.slow_entered, 1);
    while (!atomic_load(&W.slow_release))
        harness_sleep_ms(5);
    return TRELLIS_WF_COMMIT;
}

/* ---- helpers --------------------------------------------------------- */

trellis_rc_t execute(const char *name, const char *gid, const void *input,
                     size_t len, const trellis_options_t *o,
                     trellis_trans_status_t *st, char *reason, size_t reasonlen,
                     char *err, size_t errlen)
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
trellis_options_t opts(uint32_t timeout_ms)
{
    trellis_options_t o = itest_options();
    o.timeout_to_fail_ms = timeout_ms;
    o.request_timeout_ms = 5000;
    return o;
}

/* gid's testpart journal (itest_journal: "A1 A2 T4 F4", the number the
 * step's position, 1 for branch "01"); ps is the caller's. */
char *journal(const char *gid, harness_part_state_t *ps, char *buf, size_t len)
{
    trellis_trans_info_t *info = itest_query(X->t, gid);
    itest_part_state(X->t, gid, ps);
    itest_journal(info, ps, buf, len);
    trellis_trans_info_free(info);
    fprintf(stderr, "%s: %s\n", gid, buf);
    return buf;
}

const trellis_branch_info_t *branch(const trellis_trans_info_t *info,
                                    const char *id)
{
    for (size_t i = 0; i < info->n_branches; i++)
        if (!strcmp(info->branches[i].branch_id, id))
            return &info->branches[i];
    fail_msg("%s has no branch %s", info->gid, id);
    return NULL;
}
