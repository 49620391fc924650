/*
 * workflow_run.c — one run of a workflow function and what frames it: the
 * TM calls of a workflow (StartWorkflow, Query, RecordStep), setting up a
 * run over the progress trellisd handed back, and the forward run that
 * execute and trellisd's resume share.
 *
 * A forward run is: StartWorkflow, which opens the workflow or hands back
 * its durable progress; if trellisd has the decision already, repeat it
 * (Submit and Abort are idempotent) and report; if it stopped the
 * workflow for the operator, say so; else run the function, whose steps
 * replay or run (workflow_steps.c), then act on its return: commit →
 * register the hooks branch, Submit; rollback → the hooks, Abort; retry →
 * nothing: trellisd resumes the workflow after its timeout.
 *
 * A commit is sent only when every step of the run has a recorded result
 * and every recorded step was reached (trellisd refuses it otherwise; this
 * file says why first).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workflow_impl.h"

/* Protobuf-c wants char *; the strings are only read while packing. */
static char *pb_str(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

/* ---- TM calls -------------------------------------------------------- */

/* The transaction is a workflow: branch 0 its head, with the resume op;
 * *target its resume target. */
static int progress_head(const Trellis__V1__Transaction *t, const char **target)
{
    if (t == NULL || t->n_branches == 0)
        return -1;
    const Trellis__V1__Branch *h = t->branches[0];
    if (h->mode != TRELLIS__V1__BRANCH_MODE__MODE_WORKFLOW ||
        strcmp(h->branch_id, WF_HEAD_ID) != 0)
        return -1;
    for (size_t i = 0; i < h->n_ops; i++) {
        if (h->ops[i]->op == TRELLIS__V1__OP_KIND__OP_RESUME) {
            if (target != NULL)
                *target = h->ops[i]->target;
            return 0;
        }
    }
    return -1;
}

static trellis_rc_t not_a_workflow(const char *gid, const char *rpc, char *err,
                                   size_t errlen)
{
    return tr_errf(TRELLIS_INTERNAL, err, errlen,
                   "trellisd's %s reply for %s holds no workflow (no head "
                   "branch " WF_HEAD_ID " with a resume op)",
                   rpc, gid);
}

static trellis_rc_t start_workflow(trellis_workflows_t *w, const char *gid,
                                   const char *name, const void *input,
                                   size_t len, const char *target,
                                   const trellis_options_t *o,
                                   Trellis__V1__StartWorkflowReply **out,
                                   char *err, size_t errlen)
{
    *out = NULL;
    tr_pb_options_t *opts = NULL;
    Trellis__V1__StartWorkflowRequest req =
        TRELLIS__V1__START_WORKFLOW_REQUEST__INIT;
    req.gid = pb_str(gid);
    req.name = pb_str(name);
    req.input.data = (uint8_t *)input;
    req.input.len = len;
    req.resume_target = pb_str(target);
    if (o != NULL) {
        if ((opts = tr_pb_options_new(o)) == NULL)
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "out of memory for the options of %s", gid);
        req.options = tr_pb_options_get(opts);
    }
    ProtobufCMessage *rep = NULL;
    tr_request_md_t md = tr_pb_options_md(opts);
    trellis_rc_t rc = tr_client_call_md(
        w->client, "/trellis.v1.TM/StartWorkflow", &req.base, &md,
        &trellis__v1__start_workflow_reply__descriptor, &rep, err, errlen);
    tr_pb_options_free(opts);
    if (rc != TRELLIS_OK)
        return rc;
    *out = (Trellis__V1__StartWorkflowReply *)rep;
    if (progress_head((*out)->trans, NULL) != 0) {
        protobuf_c_message_free_unpacked(rep, NULL);
        *out = NULL;
        return not_a_workflow(gid, "StartWorkflow", err, errlen);
    }
    return TRELLIS_OK;
}

trellis_rc_t tr_wf_query(trellis_workflows_t *w, const char *gid,
                         Trellis__V1__QueryReply **out, char *err,
                         size_t errlen)
{
    Trellis__V1__QueryRequest req = TRELLIS__V1__QUERY_REQUEST__INIT;
    req.gid = pb_str(gid);
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc = tr_client_call(
        w->client, "/trellis.v1.TM/Query", &req.base,
        &trellis__v1__query_reply__descriptor, &rep, err, errlen);
    *out = (Trellis__V1__QueryReply *)rep;
    if (rc == TRELLIS_OK && progress_head((*out)->trans, NULL) != 0) {
        protobuf_c_message_free_unpacked(rep, NULL);
        *out = NULL;
        return not_a_workflow(gid, "Query", err, errlen);
    }
    return rc;
}

trellis_rc_t tr_wf_record(trellis_wf_t *wf, const char *branch_id,
                          trellis_rc_t code, const uint8_t *result,
                          size_t result_len, const char *message, char *err,
                          size_t errlen)
{
    Trellis__V1__RecordStepRequest req = TRELLIS__V1__RECORD_STEP_REQUEST__INIT;
    req.gid = pb_str(wf->gid);
    req.branch_id = pb_str(branch_id);
    req.code = (uint32_t)code;
    req.result.data = (uint8_t *)result;
    req.result.len = result_len;
    req.message = pb_str(message);
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc = tr_client_call(
        wf->w->client, "/trellis.v1.TM/RecordStep", &req.base,
        &trellis__v1__record_step_reply__descriptor, &rep, err, errlen);
    if (rep != NULL)
        protobuf_c_message_free_unpacked(rep, NULL);
    return rc;
}

/* ---- one run --------------------------------------------------------- */

/* The forward calls' settings from the workflow's stored options. */
static int ap_from_options(trellis_wf_t *wf,
                           const Trellis__V1__TransOptions *po)
{
    trellis_options_t o;
    memset(&o, 0, sizeof o);
    const char **keys = NULL, **values = NULL;
    if (po != NULL) {
        o.request_timeout_ms = po->request_timeout_ms;
        o.n_headers = po->n_branch_headers;
        if (o.n_headers > 0) {
            keys = calloc(o.n_headers, sizeof *keys);
            values = calloc(o.n_headers, sizeof *values);
            if (keys == NULL || values == NULL) {
                free(keys);
                free(values);
                return -1;
            }
            for (size_t i = 0; i < o.n_headers; i++) {
                keys[i] = po->branch_headers[i]->key;
                values[i] = po->branch_headers[i]->value;
            }
        }
        o.header_keys = keys;
        o.header_values = values;
    }
    int rc = tr_ap_init(&wf->ap, &tr_ap_kind_saga, wf->w->client, wf->gid, &o);
    free(keys);
    free(values);
    return rc;
}

trellis_rc_t tr_wf_init(trellis_wf_t *wf, trellis_workflows_t *w,
                        const wf_entry_t *e, const char *gid, const void *input,
                        size_t len, const Trellis__V1__Transaction *progress,
                        wf_run_mode_t mode, char *err, size_t errlen)
{
    const char *target = NULL;
    if (progress_head(progress, &target) != 0)
        return not_a_workflow(gid, "progress", err, errlen);
    wf->w = w;
    wf->entry = *e;
    wf->gid = gid;
    wf->mode = mode;
    wf->progress = progress;
    Trellis__V1__ResumeRequest rq = TRELLIS__V1__RESUME_REQUEST__INIT;
    rq.gid = pb_str(gid);
    rq.name = pb_str(e->name);
    rq.input.data = (uint8_t *)input;
    rq.input.len = len;
    wf->resume_req_len = trellis__v1__resume_request__get_packed_size(&rq);
    wf->resume_req = malloc(wf->resume_req_len ? wf->resume_req_len : 1);
    wf->resume_target = strdup(target);
    if (wf->resume_req == NULL || wf->resume_target == NULL ||
        ap_from_options(wf, progress->options) != 0) {
        tr_wf_clear(wf);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a run of workflow %s", gid);
    }
    trellis__v1__resume_request__pack(&rq, wf->resume_req);
    return TRELLIS_OK;
}

void tr_wf_clear(trellis_wf_t *wf)
{
    free(wf->resume_req);
    free(wf->resume_target);
    free(wf->hooks);
    tr_ap_clear(&wf->ap);
    memset(wf, 0, sizeof *wf);
}

trellis_wf_result_t tr_wf_call(trellis_wf_t *wf, const void *input, size_t len,
                               trellis_wf_err_t *e)
{
    static const uint8_t empty[1];
    memset(e, 0, sizeof *e);
    int r = wf->entry.fn(wf, input != NULL ? input : empty, len, e);
    e->message[sizeof e->message - 1] = '\0';
    return r == TRELLIS_WF_COMMIT || r == TRELLIS_WF_ROLLBACK
               ? (trellis_wf_result_t)r
               : TRELLIS_WF_RETRY;
}

/* ---- the decision ---------------------------------------------------- */

static trellis_rc_t mismatch(const trellis_wf_t *wf, int *stopped, char *err,
                             size_t errlen)
{
    *stopped = 1;
    return tr_errf(TRELLIS_FAILED_PRECONDITION, err, errlen,
                   "replay mismatch in workflow %s: %s", wf->gid, wf->why);
}

/* Act on the function's return r (see the file comment). */
static trellis_rc_t decide(trellis_wf_t *wf, trellis_wf_result_t r,
                           const trellis_wf_err_t *e, int wait,
                           trellis_trans_status_t *status, char *reason,
                           size_t reasonlen, int *stopped, char *err,
                           size_t errlen)
{
    trellis_client_t *c = wf->w->client;
    if (wf->mismatch)
        return mismatch(wf, stopped, err, errlen);
    if (r == TRELLIS_WF_COMMIT && wf->unrecorded)
        return tr_errf(TRELLIS_UNAVAILABLE, err, errlen,
                       "will be resumed by trellisd: workflow %s committed "
                       "after a step whose outcome is unknown",
                       wf->gid);
    if (r == TRELLIS_WF_COMMIT && tr_wf_check_all_reached(wf) != 0)
        return mismatch(wf, stopped, err, errlen);
    if (r == TRELLIS_WF_RETRY)
        return tr_errf(TRELLIS_UNAVAILABLE, err, errlen,
                       "will be resumed by trellisd: %s",
                       e->message[0] ? e->message
                                     : "the workflow function asked to retry");
    trellis_rc_t rc = tr_wf_register_hooks(wf, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    if (r == TRELLIS_WF_COMMIT)
        return trellis_submit(c, wf->gid, wait, status, reason, reasonlen, err,
                              errlen);
    const char *why =
        e->message[0] ? e->message : "the workflow function rolled back";
    rc = trellis_abort(c, wf->gid, why, wait, status, err, errlen);
    if (rc == TRELLIS_OK && reason != NULL && reasonlen > 0)
        snprintf(reason, reasonlen, "%s", why);
    return rc;
}

/* trellisd has the decision already: repeat it, which also waits for the
 * outcome when asked. */
static trellis_rc_t repeat_decision(trellis_client_t *c,
                                    const Trellis__V1__Transaction *t, int wait,
                                    trellis_trans_status_t *status,
                                    char *reason, size_t reasonlen, char *err,
                                    size_t errlen)
{
    if (t->status == TRELLIS__V1__TRANS_STATUS__TRANS_SUBMITTED)
        return trellis_submit(c, t->gid, wait, status, reason, reasonlen, err,
                              errlen);
    trellis_rc_t rc =
        trellis_abort(c, t->gid, t->reason, wait, status, err, errlen);
    if (rc == TRELLIS_OK && reason != NULL && reasonlen > 0)
        snprintf(reason, reasonlen, "%s", t->reason);
    return rc;
}

/* The progress says what to do without running: *done set when so. */
static trellis_rc_t without_running(trellis_workflows_t *w,
                                    const Trellis__V1__Transaction *t, int wait,
                                    trellis_trans_status_t *status,
                                    char *reason, size_t reasonlen,
                                    int *stopped, int *done, char *err,
                                    size_t errlen)
{
    *done = 1;
    switch (t->status) {
    case TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED:
    case TRELLIS__V1__TRANS_STATUS__TRANS_FAILED:
        *status = (trellis_trans_status_t)t->status;
        if (reason != NULL && reasonlen > 0)
            snprintf(reason, reasonlen, "%s", t->reason);
        return TRELLIS_OK;
    case TRELLIS__V1__TRANS_STATUS__TRANS_SUBMITTED:
    case TRELLIS__V1__TRANS_STATUS__TRANS_ABORTING:
        return repeat_decision(w->client, t, wait, status, reason, reasonlen,
                               err, errlen);
    case TRELLIS__V1__TRANS_STATUS__TRANS_PREPARED:
        break;
    default:
        return tr_errf(TRELLIS_INTERNAL, err, errlen,
                       "workflow %s has status %d", t->gid, (int)t->status);
    }
    const Trellis__V1__Branch *head = t->branches[0];
    for (size_t i = 0; i < head->n_ops; i++) {
        if (head->ops[i]->status == TRELLIS__V1__OP_STATUS__OP_FAILED) {
            *stopped = 1;
            return tr_errf(TRELLIS_FAILED_PRECONDITION, err, errlen,
                           "workflow %s is stopped for the operator (RetryNow "
                           "or ForceStop): %s",
                           t->gid, t->reason);
        }
    }
    *done = 0;
    return TRELLIS_OK;
}

trellis_rc_t tr_wf_forward(trellis_workflows_t *w, const wf_entry_t *e,
                           const char *gid, const void *input, size_t len,
                           const trellis_options_t *o, int wait,
                           trellis_trans_status_t *status, char *reason,
                           size_t reasonlen, int *stopped, char *err,
                           size_t errlen)
{
    trellis_trans_status_t st_unused;
    if (status == NULL)
        status = &st_unused;
    *status = TRELLIS_TRANS_PREPARED;
    *stopped = 0;
    char *target = tr_wf_resume_target(w);
    if (target == NULL)
        return tr_errf(TRELLIS_FAILED_PRECONDITION, err, errlen,
                       "no address for this workflow service: call "
                       "trellis_workflows_set_address first");
    Trellis__V1__StartWorkflowReply *rep = NULL;
    trellis_rc_t rc = start_workflow(w, gid, e->name, input, len, target, o,
                                     &rep, err, errlen);
    free(target);
    if (rc != TRELLIS_OK)
        return rc;
    int done = 0;
    rc = without_running(w, rep->trans, wait, status, reason, reasonlen,
                         stopped, &done, err, errlen);
    if (!done) {
        trellis_wf_t wf;
        memset(&wf, 0, sizeof wf);
        rc = tr_wf_init(&wf, w, e, gid, input, len, rep->trans, WF_RUN_FORWARD,
                        err, errlen);
        if (rc == TRELLIS_OK) {
            trellis_wf_err_t why;
            trellis_wf_result_t r = tr_wf_call(&wf, input, len, &why);
            rc = decide(&wf, r, &why, wait, status, reason, reasonlen, stopped,
                        err, errlen);
            tr_wf_clear(&wf);
        }
    }
    protobuf_c_message_free_unpacked(&rep->base, NULL);
    return rc;
}
