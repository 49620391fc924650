/*
 * tm_api_workflow: StartWorkflow and RecordStep on the wire (see
 * tm_api_workflow.h).
 */
#include "tm_api_workflow.h"

#include "tm_exit.h"
#include "tm_validate.h"
#include "trellis/v1/tm.pb-c.h"

static int validate_start(const ProtobufCMessage *m,
                          const tm_engine_config_t *cfg, char *err,
                          size_t errlen)
{
    return tm_validate_start_workflow(
        (const Trellis__V1__StartWorkflowRequest *)m, &cfg->limits, err,
        errlen);
}

static int act_start(tm_engine_t *e, const tm_engine_req_t *rq,
                     const ProtobufCMessage *m)
{
    return tm_engine_start_workflow(
        e, rq, (const Trellis__V1__StartWorkflowRequest *)m);
}

static int validate_record(const ProtobufCMessage *m,
                           const tm_engine_config_t *cfg, char *err,
                           size_t errlen)
{
    return tm_validate_record_step((const Trellis__V1__RecordStepRequest *)m,
                                   &cfg->limits, err, errlen);
}

static int act_record(tm_engine_t *e, const tm_engine_req_t *rq,
                      const ProtobufCMessage *m)
{
    return tm_engine_record_step(e, rq,
                                 (const Trellis__V1__RecordStepRequest *)m);
}

const tm_api_method_t tm_workflow_methods[] = {
    {"/trellis.v1.TM/StartWorkflow",
     &trellis__v1__start_workflow_request__descriptor, validate_start,
     act_start, NULL},
    {"/trellis.v1.TM/RecordStep", &trellis__v1__record_step_request__descriptor,
     validate_record, act_record, NULL},
};
const size_t tm_workflow_n_methods =
    sizeof(tm_workflow_methods) / sizeof(tm_workflow_methods[0]);

void tm_workflow_reply(tm_rpc_t *rpc, const tm_answer_t *a)
{
    if (a->kind == TM_ANSWER_RECORD_STEP) {
        Trellis__V1__RecordStepReply r = TRELLIS__V1__RECORD_STEP_REPLY__INIT;
        tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    Trellis__V1__StartWorkflowReply r = TRELLIS__V1__START_WORKFLOW_REPLY__INIT;
    r.trans = tm_trans_to_proto(a->trans, 1);
    if (!r.trans)
        tm_exit_oom("workflow progress");
    r.created = a->created;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
    tm_trans_proto_free(r.trans);
}
