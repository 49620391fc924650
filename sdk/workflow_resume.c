/*
 * workflow_resume.c — the workflow service: /trellis.v1.Workflow/Resume,
 * which trellisd calls with a workflow's ResumeRequest (gid, name, input)
 * and the op in dtm-op:
 *
 *   resume      the workflow is undecided past its timeout: run it forward
 *               as execute does (no wait) — OK once Submit or Abort was
 *               accepted; ONGOING while it runs in this process; FAILURE
 *               (ABORTED) when it cannot go on (replay mismatch, stopped,
 *               name not registered here), which stops trellisd's resumes;
 *               ERROR otherwise (retried with backoff);
 *   compensate  undo the local step dtm-branch_id: run the function again
 *               in phase-2 mode (recorded steps replay, nothing new runs)
 *               and, when the run reaches that step, its undo with the
 *               recorded result; the undo's outcome is the answer;
 *   commit,     the hooks: the same re-run, collecting the hooks it adds,
 *   rollback    then on_commit (or on_rollback) and on_finish, in order.
 *
 * Phase-2 re-runs read the progress with Query (never StartWorkflow, which
 * could open a workflow for a stray call), check that the gid is this
 * workflow (name and input of its head) and that it decided the way the
 * op says, and change nothing in trellisd. Anything that is not an answer
 * of the function's own (a failed call, a step not reached) is ERROR:
 * phase-2 ops are retried until they succeed.
 *
 * The request is checked whole before use: a string holding a NUL byte
 * (trellis_wire.h) or bytes that are no ResumeRequest are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis_wire.h"
#include "workflow_impl.h"

static void answer(trellis_reply_t *reply, trellis_reply_code_t code,
                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void answer(trellis_reply_t *reply, trellis_reply_code_t code,
                   const char *fmt, ...)
{
    reply->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reply->message, sizeof reply->message, fmt, ap);
    va_end(ap);
}

/* The reply code for a forward run's rc. */
static trellis_reply_code_t forward_answer(trellis_rc_t rc, int stopped)
{
    if (rc == TRELLIS_OK)
        return TRELLIS_REPLY_SUCCESS;
    if (rc == TRELLIS_FAILED_PRECONDITION)
        return stopped ? TRELLIS_REPLY_FAILURE : TRELLIS_REPLY_ONGOING;
    return TRELLIS_REPLY_ERROR;
}

static void do_resume(trellis_workflows_t *w, const wf_entry_t *e,
                      const Trellis__V1__ResumeRequest *rq,
                      trellis_reply_t *reply)
{
    if (tr_wf_running_add(w, rq->gid) != 0) {
        answer(reply, TRELLIS_REPLY_ONGOING,
               "workflow %.100s is running in this service now", rq->gid);
        return;
    }
    char err[512];
    int stopped = 0;
    trellis_rc_t rc =
        tr_wf_forward(w, e, rq->gid, rq->input.data, rq->input.len, NULL, 0,
                      NULL, NULL, 0, &stopped, err, sizeof err);
    tr_wf_running_remove(w, rq->gid);
    answer(reply, forward_answer(rc, stopped), "%s", rc ? err : "");
}

/* ---- phase-2 re-runs ------------------------------------------------- */

/* t's head names the workflow of rq (its payload is its ResumeRequest). */
static int same_workflow(const Trellis__V1__Transaction *t,
                         const Trellis__V1__ResumeRequest *rq)
{
    const Trellis__V1__Branch *head = t->branches[0];
    Trellis__V1__ResumeRequest *h = trellis__v1__resume_request__unpack(
        NULL, head->payload.len, head->payload.data);
    int same = h != NULL && strcmp(h->gid, rq->gid) == 0 &&
               strcmp(h->name, rq->name) == 0 &&
               h->input.len == rq->input.len &&
               (rq->input.len == 0 ||
                memcmp(h->input.data, rq->input.data, rq->input.len) == 0);
    if (h != NULL)
        trellis__v1__resume_request__free_unpacked(h, NULL);
    return same;
}

/* The workflow decided as op expects: compensate after any decision,
 * commit hooks after a commit, rollback hooks after a rollback. */
static int decided_for(const Trellis__V1__Transaction *t, const char *op)
{
    int committed = t->status == TRELLIS__V1__TRANS_STATUS__TRANS_SUBMITTED ||
                    t->status == TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED;
    int rolled_back = t->status == TRELLIS__V1__TRANS_STATUS__TRANS_ABORTING ||
                      t->status == TRELLIS__V1__TRANS_STATUS__TRANS_FAILED;
    if (strcmp(op, "commit") == 0)
        return committed;
    if (strcmp(op, "rollback") == 0)
        return rolled_back;
    return committed || rolled_back;
}

/* Run the hooks of the run's outcome, then on_finish, in order; the first
 * that fails is the answer. */
static void run_hooks(const trellis_wf_t *wf, int commit,
                      trellis_reply_t *reply)
{
    trellis_trans_status_t outcome =
        commit ? TRELLIS_TRANS_SUCCEEDED : TRELLIS_TRANS_FAILED;
    wf_hook_when_t first = commit ? WF_ON_COMMIT : WF_ON_ROLLBACK;
    static const char *const names[] = {"on_commit", "on_rollback",
                                        "on_finish"};
    for (int pass = 0; pass < 2; pass++) {
        wf_hook_when_t when = pass == 0 ? first : WF_ON_FINISH;
        for (size_t i = 0; i < wf->n_hooks; i++) {
            if (wf->hooks[i].when != when)
                continue;
            char err[256] = "";
            trellis_rc_t rc = wf->hooks[i].fn(
                wf->gid, outcome, wf->hooks[i].arg, err, sizeof err);
            err[sizeof err - 1] = '\0';
            if (rc != TRELLIS_OK) {
                answer(reply, TRELLIS_REPLY_ERROR, "%s hook %zu of %.80s: %s",
                       names[when], i, wf->gid, err);
                return;
            }
        }
    }
    answer(reply, TRELLIS_REPLY_SUCCESS, "%s", "");
}

/* The answer after a phase-2 re-run of wf. */
static void phase2_answer(const trellis_wf_t *wf, const char *op,
                          const char *branch_id, trellis_reply_t *reply)
{
    if (wf->mode == WF_RUN_HOOKS) {
        run_hooks(wf, strcmp(op, "commit") == 0, reply);
    } else if (!wf->undo_reached) {
        answer(reply, TRELLIS_REPLY_ERROR,
               "local step %.40s of %.80s was not reached by the function "
               "(%u steps)%s%.120s",
               branch_id, wf->gid, wf->n_steps,
               wf->mismatch ? ": replay mismatch: " : "",
               wf->mismatch ? wf->why : "");
    } else if (wf->undo_rc != TRELLIS_OK) {
        answer(reply, TRELLIS_REPLY_ERROR, "undo of step %.40s: %s", branch_id,
               wf->undo_err);
    } else {
        answer(reply, TRELLIS_REPLY_SUCCESS, "%s", "");
    }
}

/* A phase-2 op that must not run on t: answered, returns 1. */
static int refuse_phase2(const Trellis__V1__Transaction *t,
                         const Trellis__V1__ResumeRequest *rq,
                         const trellis_branch_ctx_t *ctx, int hooks,
                         trellis_reply_t *reply)
{
    const Trellis__V1__Branch *b = tr_wf_branch(t, ctx->branch_id);
    if (!same_workflow(t, rq))
        answer(reply, TRELLIS_REPLY_ERROR,
               "%.80s is not workflow %.80s with this input", rq->gid,
               rq->name);
    else if (!decided_for(t, ctx->op))
        answer(reply, TRELLIS_REPLY_ERROR,
               "workflow %.80s is %s; \"%s\" comes after the decision", rq->gid,
               trellis_trans_status_name((trellis_trans_status_t)t->status),
               ctx->op);
    else if (!hooks &&
             (b == NULL || b->mode != TRELLIS__V1__BRANCH_MODE__MODE_LOCAL))
        answer(reply, TRELLIS_REPLY_ERROR,
               "workflow %.80s has no local step %.40s", rq->gid,
               ctx->branch_id);
    else
        return 0;
    return 1;
}

static void do_phase2(trellis_workflows_t *w, const wf_entry_t *e,
                      const Trellis__V1__ResumeRequest *rq,
                      const trellis_branch_ctx_t *ctx, trellis_reply_t *reply)
{
    char err[512];
    Trellis__V1__QueryReply *q = NULL;
    trellis_rc_t rc = tr_wf_query(w, rq->gid, &q, err, sizeof err);
    if (rc != TRELLIS_OK) {
        answer(reply, TRELLIS_REPLY_ERROR, "reading %.80s: %s", rq->gid, err);
        return;
    }
    int hooks = strcmp(ctx->op, "compensate") != 0;
    trellis_wf_t wf;
    memset(&wf, 0, sizeof wf);
    if (refuse_phase2(q->trans, rq, ctx, hooks, reply)) {
        /* answered */
    } else if (tr_wf_init(&wf, w, e, rq->gid, rq->input.data, rq->input.len,
                          q->trans, hooks ? WF_RUN_HOOKS : WF_RUN_COMPENSATE,
                          err, sizeof err) != TRELLIS_OK) {
        answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
    } else {
        wf.undo_id = ctx->branch_id;
        trellis_wf_err_t ignored;
        tr_wf_call(&wf, rq->input.data, rq->input.len, &ignored);
        phase2_answer(&wf, ctx->op, ctx->branch_id, reply);
        tr_wf_clear(&wf);
    }
    protobuf_c_message_free_unpacked(&q->base, NULL);
}

/* ---- the handler ----------------------------------------------------- */

/* The request, checked whole; NULL with reply filled when refused. */
static Trellis__V1__ResumeRequest *decode(const trellis_branch_ctx_t *ctx,
                                          const uint8_t *payload, size_t len,
                                          trellis_reply_t *reply)
{
    char why[200] = "";
    const ProtobufCMessageDescriptor *d =
        &trellis__v1__resume_request__descriptor;
    Trellis__V1__ResumeRequest *rq = NULL;
    if (trellis_wire_check_strings(d, payload, len, why, sizeof why) !=
            TRELLIS_WIRE_OK ||
        (rq = trellis__v1__resume_request__unpack(NULL, len, payload)) ==
            NULL) {
        answer(reply, TRELLIS_REPLY_FAILURE,
               "the request is not a usable trellis.v1.ResumeRequest%s%s",
               rq == NULL && why[0] ? ": " : "", why);
        return NULL;
    }
    if (rq->gid[0] == '\0' || rq->name[0] == '\0')
        answer(reply, TRELLIS_REPLY_FAILURE, "the request names no %s",
               rq->gid[0] ? "workflow" : "gid");
    else if (ctx->gid[0] != '\0' && strcmp(ctx->gid, rq->gid) != 0)
        answer(reply, TRELLIS_REPLY_FAILURE,
               "dtm-gid %.80s and the request's gid %.80s differ", ctx->gid,
               rq->gid);
    else
        return rq;
    trellis__v1__resume_request__free_unpacked(rq, NULL);
    return NULL;
}

static void on_resume(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t len, trellis_reply_t *reply, void *user)
{
    trellis_workflows_t *w = user;
    Trellis__V1__ResumeRequest *rq = decode(ctx, payload, len, reply);
    if (rq == NULL)
        return;
    wf_entry_t e;
    const char *op = ctx->op;
    if (tr_wf_lookup(w, rq->name, &e) != 0)
        answer(reply, TRELLIS_REPLY_FAILURE,
               "workflow %.100s is not registered in this service", rq->name);
    else if (strcmp(op, "resume") == 0)
        do_resume(w, &e, rq, reply);
    else if (strcmp(op, "compensate") == 0 || strcmp(op, "commit") == 0 ||
             strcmp(op, "rollback") == 0)
        do_phase2(w, &e, rq, ctx, reply);
    else
        answer(reply, TRELLIS_REPLY_FAILURE,
               "dtm-op \"%.40s\" is none of resume, compensate, commit, "
               "rollback",
               op);
    trellis__v1__resume_request__free_unpacked(rq, NULL);
}

trellis_rc_t trellis_workflows_serve(trellis_workflows_t *w,
                                     trellis_participant_t *p, char *err,
                                     size_t errlen)
{
    tr_err_clear(err, errlen);
    if (w == NULL || p == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       w == NULL ? "registry" : "participant");
    return trellis_participant_handle(p, WF_RESUME_METHOD, on_resume, w, err,
                                      errlen);
}
