/*
 * engine_call: one request into the engine core, as tm_api does it (see
 * engine_call.h): one generic decode by descriptor, the method's check,
 * its entry point.
 */
#include "engine_call.h"

#include <stdio.h>

#include "tm_validate.h"

typedef struct {
    const ProtobufCMessageDescriptor *desc;
    int (*check)(const ProtobufCMessage *m, const tm_limits_t *lim, char *err,
                 size_t errlen);
    int (*act)(tm_engine_t *e, const tm_engine_req_t *rq,
               const ProtobufCMessage *m);
} method_t;

static int check_begin(const ProtobufCMessage *m, const tm_limits_t *lim,
                       char *err, size_t errlen)
{
    return tm_validate_begin((const Trellis__V1__BeginRequest *)m, lim, err,
                             errlen);
}

static int act_begin(tm_engine_t *e, const tm_engine_req_t *rq,
                     const ProtobufCMessage *m)
{
    return tm_engine_begin(e, rq, (const Trellis__V1__BeginRequest *)m);
}

static int check_register(const ProtobufCMessage *m, const tm_limits_t *lim,
                          char *err, size_t errlen)
{
    return tm_validate_register((const Trellis__V1__RegisterBranchRequest *)m,
                                lim, err, errlen);
}

static int act_register(tm_engine_t *e, const tm_engine_req_t *rq,
                        const ProtobufCMessage *m)
{
    return tm_engine_register(e, rq,
                              (const Trellis__V1__RegisterBranchRequest *)m);
}

static int check_submit(const ProtobufCMessage *m, const tm_limits_t *lim,
                        char *err, size_t errlen)
{
    return tm_validate_submit((const Trellis__V1__SubmitRequest *)m, lim, err,
                              errlen);
}

static int act_submit(tm_engine_t *e, const tm_engine_req_t *rq,
                      const ProtobufCMessage *m)
{
    return tm_engine_submit(e, rq, (const Trellis__V1__SubmitRequest *)m);
}

static int check_abort(const ProtobufCMessage *m, const tm_limits_t *lim,
                       char *err, size_t errlen)
{
    (void)lim;
    return tm_validate_abort((const Trellis__V1__AbortRequest *)m, err, errlen);
}

static int act_abort(tm_engine_t *e, const tm_engine_req_t *rq,
                     const ProtobufCMessage *m)
{
    return tm_engine_abort(e, rq, (const Trellis__V1__AbortRequest *)m);
}

static int check_force_stop(const ProtobufCMessage *m, const tm_limits_t *lim,
                            char *err, size_t errlen)
{
    (void)lim;
    return tm_validate_force_stop((const Trellis__V1__ForceStopRequest *)m, err,
                                  errlen);
}

static int act_force_stop(tm_engine_t *e, const tm_engine_req_t *rq,
                          const ProtobufCMessage *m)
{
    const Trellis__V1__ForceStopRequest *r =
        (const Trellis__V1__ForceStopRequest *)m;
    return tm_engine_force_stop(e, rq, r->gid, r->reason);
}

static int check_retry_now(const ProtobufCMessage *m, const tm_limits_t *lim,
                           char *err, size_t errlen)
{
    (void)lim;
    return tm_validate_gid(((const Trellis__V1__RetryNowRequest *)m)->gid, err,
                           errlen);
}

static int act_retry_now(tm_engine_t *e, const tm_engine_req_t *rq,
                         const ProtobufCMessage *m)
{
    return tm_engine_retry_now(e, rq,
                               ((const Trellis__V1__RetryNowRequest *)m)->gid);
}

static int check_start_workflow(const ProtobufCMessage *m,
                                const tm_limits_t *lim, char *err,
                                size_t errlen)
{
    return tm_validate_start_workflow(
        (const Trellis__V1__StartWorkflowRequest *)m, lim, err, errlen);
}

static int act_start_workflow(tm_engine_t *e, const tm_engine_req_t *rq,
                              const ProtobufCMessage *m)
{
    return tm_engine_start_workflow(
        e, rq, (const Trellis__V1__StartWorkflowRequest *)m);
}

static int check_record_step(const ProtobufCMessage *m, const tm_limits_t *lim,
                             char *err, size_t errlen)
{
    return tm_validate_record_step((const Trellis__V1__RecordStepRequest *)m,
                                   lim, err, errlen);
}

static int act_record_step(tm_engine_t *e, const tm_engine_req_t *rq,
                           const ProtobufCMessage *m)
{
    return tm_engine_record_step(e, rq,
                                 (const Trellis__V1__RecordStepRequest *)m);
}

static int check_prepare_message(const ProtobufCMessage *m,
                                 const tm_limits_t *lim, char *err,
                                 size_t errlen)
{
    return tm_validate_prepare_message(
        (const Trellis__V1__PrepareMessageRequest *)m, lim, err, errlen);
}

static int act_prepare_message(tm_engine_t *e, const tm_engine_req_t *rq,
                               const ProtobufCMessage *m)
{
    return tm_engine_prepare_message(
        e, rq, (const Trellis__V1__PrepareMessageRequest *)m);
}

static const method_t methods[] = {
    [ENGINE_CALL_BEGIN] = {&trellis__v1__begin_request__descriptor, check_begin,
                           act_begin},
    [ENGINE_CALL_REGISTER] = {&trellis__v1__register_branch_request__descriptor,
                              check_register, act_register},
    [ENGINE_CALL_SUBMIT] = {&trellis__v1__submit_request__descriptor,
                            check_submit, act_submit},
    [ENGINE_CALL_ABORT] = {&trellis__v1__abort_request__descriptor, check_abort,
                           act_abort},
    [ENGINE_CALL_FORCE_STOP] = {&trellis__v1__force_stop_request__descriptor,
                                check_force_stop, act_force_stop},
    [ENGINE_CALL_RETRY_NOW] = {&trellis__v1__retry_now_request__descriptor,
                               check_retry_now, act_retry_now},
    [ENGINE_CALL_START_WORKFLOW] =
        {&trellis__v1__start_workflow_request__descriptor, check_start_workflow,
         act_start_workflow},
    [ENGINE_CALL_RECORD_STEP] = {&trellis__v1__record_step_request__descriptor,
                                 check_record_step, act_record_step},
    [ENGINE_CALL_PREPARE_MESSAGE] =
        {&trellis__v1__prepare_message_request__descriptor,
         check_prepare_message, act_prepare_message},
};

int engine_call(tm_engine_t *e, engine_call_method_t method,
                const tm_engine_req_t *rq, char *err, size_t errlen)
{
    if (method == ENGINE_CALL_QUERY) {
        tm_engine_query(e, rq->rpc, (const char *)rq->bytes);
        return 0;
    }
    const method_t *m = &methods[method];
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(m->desc, NULL, rq->len, rq->bytes);
    if (!msg) {
        snprintf(err, errlen, "%zu bytes do not decode as %s", rq->len,
                 m->desc->name);
        return -1;
    }
    int rc = m->check(msg, &tm_engine_config(e)->limits, err, errlen);
    if (rc == 0)
        rc = m->act(e, rq, msg);
    else
        rc = -1;
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}
