/*
 * tm_api_dtm: dtmgimp.Dtm on the wire (see tm_api_dtm.h): each method's
 * action translates its request (tm_dtm_map.c) and hands the trellis.v1
 * request to the engine; each method's reply turns the engine's answer
 * into DTM's reply and result code. Owns no state: a parked request is
 * redone from its DTM bytes, translated again the same way.
 */
#include "tm_api_dtm.h"

#include <stdio.h>

#include "dtm/dtmgimp.pb-c.h"
#include "tm_dtm_map.h"
#include "tm_dtm_workflow.h"
#include "tm_exit.h"

/* ---- replies --------------------------------------------------------------
 * DTM's result codes (its SDKs read them): OK success; ABORTED failure
 * (ErrFailure: the transaction failed, or its state refuses the request);
 * FAILED_PRECONDITION would read as ErrOngoing ("try again later"), so an
 * engine refusal for the transaction's state goes out as ABORTED. Every
 * other code passes as the engine gave it, with its message. */

static grpc_status_code dtm_code(tm_code_t c)
{
    return c == TM_CODE_FAILED_PRECONDITION ? GRPC_STATUS_ABORTED
                                            : (grpc_status_code)c;
}

static void reply_empty(tm_rpc_t *rpc)
{
    Dtmgimp__Empty e = DTMGIMP__EMPTY__INIT;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &e.base);
}

/* An answer that is not OK; 1 when it was one (and is now replied). */
static int reply_refusal(tm_rpc_t *rpc, const tm_answer_t *a)
{
    if (a->code == TM_CODE_OK)
        return 0;
    tm_server_reply(rpc, dtm_code(a->code), a->message, NULL);
    return 1;
}

/* Submit (of a saga, a decision, a message): a transaction that failed or
 * is rolling back is ABORTED with its reason, as DTM answers a Submit with
 * WaitResult whose transaction failed, or a Submit of one that did. */
static void reply_submit(tm_rpc_t *rpc, const tm_answer_t *a)
{
    if (reply_refusal(rpc, a))
        return;
    if (a->kind == TM_ANSWER_ABORT) { /* a workflow's Submit of "failed" */
        reply_empty(rpc);
        return;
    }
    if (a->status == TM_TX_FAILED || a->status == TM_TX_ABORTING) {
        char msg[1400];
        snprintf(msg, sizeof(msg), "transaction %s is %s: %s", a->gid,
                 tm_dtm_status_name(a->status),
                 a->reason && *a->reason ? a->reason : "no reason given");
        tm_server_reply(rpc, GRPC_STATUS_ABORTED, msg, NULL);
        return;
    }
    reply_empty(rpc);
}

/* Prepare: OK while the transaction is prepared (a repeat too); once it is
 * decided, or the gid holds another transaction, DTM's "cannot prepare"
 * (ABORTED). */
static void reply_prepare(tm_rpc_t *rpc, const tm_answer_t *a)
{
    if (a->code == TM_CODE_ALREADY_EXISTS) { /* the gid is another's now */
        tm_server_reply(rpc, GRPC_STATUS_ABORTED, a->message, NULL);
        return;
    }
    if (reply_refusal(rpc, a))
        return;
    if (a->status != TM_TX_PREPARED) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "transaction %s is %s already: it cannot be prepared",
                 a->gid ? a->gid : "", tm_dtm_status_name(a->status));
        tm_server_reply(rpc, GRPC_STATUS_ABORTED, msg, NULL);
        return;
    }
    reply_empty(rpc);
}

/* Abort, RegisterBranch and the topic methods: Empty. */
static void reply_done(tm_rpc_t *rpc, const tm_answer_t *a)
{
    if (!reply_refusal(rpc, a))
        reply_empty(rpc);
}

/* PrepareWorkflow: the workflow's status and recorded progresses. */
static void reply_progresses(tm_rpc_t *rpc, const tm_answer_t *a)
{
    tm_dtm_progresses_t p;
    if (reply_refusal(rpc, a))
        return;
    if (tm_dtm_progresses_build(a->trans, &p) != 0)
        tm_exit_oom("workflow progresses");
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &p.reply.base);
    tm_dtm_progresses_free(&p);
}

/* A request the mapping refused: its code, its message. */
static void refuse_mapped(tm_rpc_t *rpc, int rc, const char *err)
{
    grpc_status_code code = rc == TM_DENIED ? GRPC_STATUS_PERMISSION_DENIED
                            : rc == TM_DTM_UNSUPPORTED
                                ? GRPC_STATUS_UNIMPLEMENTED
                                : GRPC_STATUS_INVALID_ARGUMENT;
    tm_server_reply(rpc, code, err, NULL);
}

/* ---- actions ------------------------------------------------------------- */

/* Hand the translated request to the engine entry point it names. */
static int run_mapped(tm_engine_t *e, const tm_engine_req_t *rq,
                      const tm_dtm_req_t *q)
{
    switch (q->to) {
    case TM_DTM_TO_BEGIN:
        return tm_engine_begin(e, rq, &q->begin);
    case TM_DTM_TO_SUBMIT:
        return tm_engine_submit(e, rq, &q->submit);
    case TM_DTM_TO_MESSAGE:
        return tm_engine_prepare_message(e, rq, &q->message);
    case TM_DTM_TO_ABORT:
        return tm_engine_abort(e, rq, &q->abort);
    case TM_DTM_TO_REGISTER:
        return tm_engine_register(e, rq, &q->reg);
    case TM_DTM_TO_START_WORKFLOW:
        return tm_engine_start_workflow_as(e, rq, &q->start,
                                           TM_MODE_DTM_WORKFLOW);
    case TM_DTM_TO_PROGRESS:
        return tm_engine_record_progress(e, rq, &q->reg, &q->record);
    }
    tm_server_reply(rq->rpc, GRPC_STATUS_INTERNAL, "unmapped DTM request",
                    NULL);
    return 0;
}

typedef int (*map_fn)(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                      tm_dtm_req_t *q, char *err, size_t errlen);

static int act_mapped(tm_engine_t *e, const tm_engine_req_t *rq,
                      const ProtobufCMessage *m, map_fn map)
{
    char err[512];
    tm_dtm_req_t q;
    int again = 0;
    int rc = map((const Dtmgimp__DtmRequest *)m, &tm_engine_config(e)->limits,
                 &q, err, sizeof(err));
    if (rc != 0)
        refuse_mapped(rq->rpc, rc, err);
    else
        again = run_mapped(e, rq, &q);
    tm_dtm_req_free(&q);
    return again;
}

static int act_submit(tm_engine_t *e, const tm_engine_req_t *rq,
                      const ProtobufCMessage *m)
{
    return act_mapped(e, rq, m, tm_dtm_map_submit);
}

static int act_prepare(tm_engine_t *e, const tm_engine_req_t *rq,
                       const ProtobufCMessage *m)
{
    return act_mapped(e, rq, m, tm_dtm_map_prepare);
}

static int act_abort(tm_engine_t *e, const tm_engine_req_t *rq,
                     const ProtobufCMessage *m)
{
    return act_mapped(e, rq, m, tm_dtm_map_abort);
}

static int act_register(tm_engine_t *e, const tm_engine_req_t *rq,
                        const ProtobufCMessage *m)
{
    char err[512];
    tm_dtm_req_t q;
    int again = 0;
    int rc =
        tm_dtm_map_register((const Dtmgimp__DtmBranchRequest *)m,
                            &tm_engine_config(e)->limits, &q, err, sizeof(err));
    if (rc != 0)
        refuse_mapped(rq->rpc, rc, err);
    else
        again = run_mapped(e, rq, &q);
    tm_dtm_req_free(&q);
    return again;
}

static int act_new_gid(tm_engine_t *e, const tm_engine_req_t *rq,
                       const ProtobufCMessage *m)
{
    (void)m;
    char gid[TM_GID_MAX + 1];
    tm_engine_new_gid(e, gid, sizeof(gid));
    Dtmgimp__DtmGidReply g = DTMGIMP__DTM_GID_REPLY__INIT;
    g.gid = gid;
    tm_server_reply(rq->rpc, GRPC_STATUS_OK, NULL, &g.base);
    return 0;
}

static int act_prepare_workflow(tm_engine_t *e, const tm_engine_req_t *rq,
                                const ProtobufCMessage *m)
{
    return act_mapped(e, rq, m, tm_dtm_map_prepare_workflow);
}

static int act_subscribe(tm_engine_t *e, const tm_engine_req_t *rq,
                         const ProtobufCMessage *m)
{
    char err[512];
    Trellis__V1__SubscribeRequest s;
    int rc = tm_dtm_map_subscribe((const Dtmgimp__DtmTopicRequest *)m,
                                  &tm_engine_config(e)->limits, &s, err,
                                  sizeof(err));
    if (rc != 0)
        refuse_mapped(rq->rpc, rc, err);
    else
        tm_engine_subscribe(e, rq->rpc, &s);
    return 0;
}

static int act_unsubscribe(tm_engine_t *e, const tm_engine_req_t *rq,
                           const ProtobufCMessage *m)
{
    char err[512];
    Trellis__V1__UnsubscribeRequest u;
    int rc = tm_dtm_map_unsubscribe((const Dtmgimp__DtmTopicRequest *)m, &u,
                                    err, sizeof(err));
    if (rc != 0)
        refuse_mapped(rq->rpc, rc, err);
    else
        tm_engine_unsubscribe(e, rq->rpc, &u);
    return 0;
}

static int act_delete_topic(tm_engine_t *e, const tm_engine_req_t *rq,
                            const ProtobufCMessage *m)
{
    char err[512];
    const Dtmgimp__DtmTopicRequest *r = (const Dtmgimp__DtmTopicRequest *)m;
    int rc = tm_dtm_check_delete_topic(r, err, sizeof(err));
    if (rc != 0)
        refuse_mapped(rq->rpc, rc, err);
    else
        tm_engine_delete_topic(e, rq->rpc, r->topic);
    return 0;
}

const tm_api_method_t tm_dtm_methods[] = {
    {"/dtmgimp.Dtm/NewGid", &dtmgimp__empty__descriptor, NULL, act_new_gid,
     NULL},
    {"/dtmgimp.Dtm/Submit", &dtmgimp__dtm_request__descriptor, NULL, act_submit,
     reply_submit},
    {"/dtmgimp.Dtm/Prepare", &dtmgimp__dtm_request__descriptor, NULL,
     act_prepare, reply_prepare},
    {"/dtmgimp.Dtm/Abort", &dtmgimp__dtm_request__descriptor, NULL, act_abort,
     reply_done},
    {"/dtmgimp.Dtm/RegisterBranch", &dtmgimp__dtm_branch_request__descriptor,
     NULL, act_register, reply_done},
    {"/dtmgimp.Dtm/PrepareWorkflow", &dtmgimp__dtm_request__descriptor, NULL,
     act_prepare_workflow, reply_progresses},
    {"/dtmgimp.Dtm/Subscribe", &dtmgimp__dtm_topic_request__descriptor, NULL,
     act_subscribe, reply_done},
    {"/dtmgimp.Dtm/Unsubscribe", &dtmgimp__dtm_topic_request__descriptor, NULL,
     act_unsubscribe, reply_done},
    {"/dtmgimp.Dtm/DeleteTopic", &dtmgimp__dtm_topic_request__descriptor, NULL,
     act_delete_topic, reply_done},
};
const size_t tm_dtm_n_methods =
    sizeof(tm_dtm_methods) / sizeof(*tm_dtm_methods);
