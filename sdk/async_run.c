/*
 * async_run.c — whole TCC and XA transactions run asynchronously
 * (trellis_async_tcc_run, trellis_async_xa_run): a Begin that registers
 * every branch at once (BeginRequest.branches: one call and one durable
 * write instead of 1 + n), then each forward op in order, then Submit, or
 * Abort after the first failure; one callback at the end. A trellisd
 * that predates the Begin's branches answers that it holds none: the run
 * then registers each branch just before its forward op, as the blocking
 * helpers do.
 *
 * A run is a small state machine over the asynchronous steps of
 * ap_trans.c (the same steps as the blocking helpers): each step's
 * callback starts the next one, so no thread waits anywhere. The run owns
 * copies of everything it was given (targets, payloads, gid and branch
 * headers in its tr_ap_t) and frees them after its callback ran.
 *
 * Invariant: at most one step of a run is in flight, so its state is
 * touched by one callback at a time and needs no lock.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RUN_MAX_BRANCHES 64 /* trellisd's own limit is of the same order */

typedef struct {
    char *forward, *commit, *rollback;
    uint8_t *payload;
    size_t payload_len;
} run_branch_t;

typedef struct {
    tr_ap_t ap;
    run_branch_t *branches;
    tr_ap_branch_t *views; /* the branches as the Begin and forward ops take
                              them, pointing into branches[] */
    size_t n, next;
    int registered_by_begin; /* else register each before its forward op */
    int failed;              /* a forward op or register failed: */
    trellis_rc_t failed_rc;  /* the first failure, reported at the end */
    char *failed_msg;        /* its message (NULL: out of memory for it) */
    int failed_branch;
    trellis_async_cb cb;
    void *user;
} run_t;

static void run_free(run_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->branches[i].forward);
        free(r->branches[i].commit);
        free(r->branches[i].rollback);
        free(r->branches[i].payload);
    }
    free(r->branches);
    free(r->views);
    free(r->failed_msg);
    tr_ap_clear(&r->ap);
    free(r);
}

/* Copy branch b into r's i-th slot; -1 when out of memory. */
static int branch_copy(run_branch_t *dst, const trellis_async_branch_t *b)
{
    dst->forward = tr_strdup0(b->forward_target);
    dst->commit = tr_strdup0(b->commit_target);
    dst->rollback = tr_strdup0(b->rollback_target);
    dst->payload = malloc(b->payload_len > 0 ? b->payload_len : 1);
    if (dst->payload != NULL && b->payload_len > 0)
        memcpy(dst->payload, b->payload, b->payload_len);
    dst->payload_len = b->payload_len;
    return dst->forward && dst->commit && dst->rollback && dst->payload ? 0
                                                                        : -1;
}

/* ---- the end --------------------------------------------------------- */

/* Hand the outcome to the user, then free the run. */
static void run_finish(run_t *r, const trellis_async_result_t *last)
{
    trellis_async_result_t res = *last;
    res.gid = r->ap.gid;
    res.branch = r->failed_branch;
    if (r->failed) {
        res.rc = r->failed_rc;
        res.message = r->failed_msg != NULL ? r->failed_msg
                                            : "a branch failed (out of "
                                              "memory for its message)";
        res.reason = "";
        /* status: what the Abort answered, when it was answered */
        if (last->rc != TRELLIS_OK)
            res.status = TRELLIS_TRANS_UNSPECIFIED;
    }
    res.reply = NULL;
    res.reply_len = 0;
    r->cb(&res, r->user);
    run_free(r);
}

static void run_aborted(const trellis_async_result_t *res, void *arg)
{
    run_finish(arg, res);
}

static void run_submitted(const trellis_async_result_t *res, void *arg)
{
    run_t *r = arg;
    if (res->rc != TRELLIS_OK)
        r->failed_branch = -1;
    run_finish(r, res);
}

/* Remember the first failure; roll back what may have been registered. */
static void run_fail(run_t *r, const trellis_async_result_t *res, int branch)
{
    r->failed = 1;
    r->failed_rc = res->rc;
    r->failed_msg = tr_strdup0(res->message);
    r->failed_branch = branch;
    tr_ap_abort_async(&r->ap, res->message, run_aborted, r);
}

/* ---- the steps ------------------------------------------------------- */

static void run_next_branch(run_t *r);

static void run_branch_done(const trellis_async_result_t *res, void *arg)
{
    run_t *r = arg;
    if (res->rc != TRELLIS_OK) {
        run_fail(r, res, (int)r->next - 1);
        return;
    }
    run_next_branch(r);
}

static void run_next_branch(run_t *r)
{
    if (r->next == r->n) {
        tr_ap_submit_async(&r->ap, run_submitted, r);
        return;
    }
    size_t i = r->next++;
    if (r->registered_by_begin) {
        tr_ap_forward_async(&r->ap, &r->views[i], run_branch_done, r);
        return;
    }
    const run_branch_t *b = &r->branches[i];
    tr_ap_call_branch_async(&r->ap, b->forward, b->commit, b->rollback,
                            b->payload, b->payload_len, run_branch_done, r);
}

static void run_begun(const trellis_async_result_t *res, void *arg)
{
    run_t *r = arg;
    if (res->rc != TRELLIS_OK) {
        r->failed_branch = -1;
        run_finish(r, res); /* nothing was begun: nothing to abort */
        return;
    }
    if (res->branches_registered != 0 && res->branches_registered != r->n) {
        trellis_async_result_t odd = *res;
        odd.rc = TRELLIS_INTERNAL;
        odd.message = "trellisd's Begin answered that it holds a number of "
                      "branches other than the ones it was given";
        run_fail(r, &odd, -1);
        return;
    }
    r->registered_by_begin = res->branches_registered == r->n;
    /* A trellisd that ignored the Begin's branches never saw their ids:
     * each branch is registered under the same id it had there. */
    if (!r->registered_by_begin)
        r->ap.next_branch = 0;
    run_next_branch(r);
}

/* ---- start ----------------------------------------------------------- */

/* A run of n branches for gid, everything copied; NULL when out of memory
 * (msg says what). */
static run_t *run_new(const tr_ap_kind_t *kind, trellis_client_t *c,
                      const char *gid, const trellis_options_t *o,
                      const trellis_async_branch_t *branches, size_t n,
                      trellis_async_cb cb, void *user)
{
    run_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->cb = cb;
    r->user = user;
    r->failed_branch = -1;
    if (tr_ap_init(&r->ap, kind, c, gid, o) != 0 ||
        (r->branches = calloc(n, sizeof *r->branches)) == NULL ||
        (r->views = calloc(n, sizeof *r->views)) == NULL) {
        run_free(r);
        return NULL;
    }
    for (; r->n < n; r->n++) {
        run_branch_t *b = &r->branches[r->n];
        if (branch_copy(b, &branches[r->n]) != 0) {
            r->n++;
            run_free(r);
            return NULL;
        }
        r->views[r->n] = (tr_ap_branch_t){.forward_target = b->forward,
                                          .commit_target = b->commit,
                                          .rollback_target = b->rollback,
                                          .payload = b->payload,
                                          .payload_len = b->payload_len};
    }
    return r;
}

static const char *run_args_problem(const char *gid,
                                    const trellis_async_branch_t *branches,
                                    size_t n)
{
    if (gid == NULL)
        return "gid is NULL; use trellis_new_gid for a fresh one";
    if (n == 0 || branches == NULL)
        return "a transaction needs at least one branch";
    if (n > RUN_MAX_BRANCHES)
        return "too many branches for one run (at most 64)";
    for (size_t i = 0; i < n; i++)
        if (branches[i].payload == NULL && branches[i].payload_len > 0)
            return "a branch's payload is NULL but its payload_len is not 0";
    return NULL;
}

/* The index of the first branch with a malformed target (err says
 * which), or -1 when every target is well formed. */
static int run_bad_target(const run_t *r, char *err, size_t errlen)
{
    for (size_t i = 0; i < r->n; i++) {
        const run_branch_t *b = &r->branches[i];
        if (tr_ap_check_targets(r->ap.kind, b->forward, b->commit, b->rollback,
                                err, errlen) != TRELLIS_OK)
            return (int)i;
    }
    return -1;
}

/* A run refused before anything was sent: report it with its branch. */
static void run_refused(const trellis_async_result_t *res, void *arg)
{
    run_finish(arg, res);
}

static trellis_rc_t run_start(const tr_ap_kind_t *kind, trellis_client_t *c,
                              const char *gid, const trellis_options_t *o,
                              const trellis_async_branch_t *branches, size_t n,
                              trellis_async_cb cb, void *user)
{
    trellis_rc_t rc = tr_async_usable(c, cb);
    if (rc != TRELLIS_OK)
        return rc;
    const char *problem = run_args_problem(gid, branches, n);
    if (problem != NULL) {
        tr_async_report(c, TRELLIS_INVALID_ARGUMENT, problem, gid, cb, user);
        return TRELLIS_OK;
    }
    run_t *r = run_new(kind, c, gid, o, branches, n, cb, user);
    if (r == NULL) {
        tr_async_report(c, TRELLIS_RESOURCE_EXHAUSTED,
                        "out of memory for a transaction run", gid, cb, user);
        return TRELLIS_OK;
    }
    char err[512];
    int bad = run_bad_target(r, err, sizeof err);
    if (bad >= 0) {
        r->failed_branch = bad; /* nothing begun: nothing to abort */
        tr_async_report(c, TRELLIS_INVALID_ARGUMENT, err, gid, run_refused, r);
        return TRELLIS_OK;
    }
    tr_ap_begin_branches_async(&r->ap, o, r->views, r->n, run_begun, r);
    return TRELLIS_OK;
}

trellis_rc_t trellis_async_tcc_run(trellis_client_t *c, const char *gid,
                                   const trellis_options_t *o,
                                   const trellis_async_branch_t *branches,
                                   size_t n, trellis_async_cb cb, void *user)
{
    return run_start(&tr_ap_kind_tcc, c, gid, o, branches, n, cb, user);
}

trellis_rc_t trellis_async_xa_run(trellis_client_t *c, const char *gid,
                                  const trellis_options_t *o,
                                  const trellis_async_branch_t *branches,
                                  size_t n, trellis_async_cb cb, void *user)
{
    return run_start(&tr_ap_kind_xa, c, gid, o, branches, n, cb, user);
}
