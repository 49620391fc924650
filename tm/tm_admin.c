/*
 * tm_admin: the operator RPCs (see tm_admin.h). RetryNow and ForceStop are
 * decoded and checked here and carried out by the engine; SetLogLevel's
 * level is tm_log's, and this file only applies and answers it.
 */
#include "tm_admin.h"

#include <stdio.h>
#include <string.h>

#include "tm_log.h"
#include "trellis/v1/tm.pb-c.h"

void tm_admin_reply(tm_rpc_t *rpc, const tm_answer_t *a)
{
    Trellis__V1__TransStatus status = (Trellis__V1__TransStatus)a->status;
    if (a->kind == TM_ANSWER_RETRY_NOW) {
        Trellis__V1__RetryNowReply r = TRELLIS__V1__RETRY_NOW_REPLY__INIT;
        r.status = status;
        r.ops_called = a->ops_called;
        tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    Trellis__V1__ForceStopReply r = TRELLIS__V1__FORCE_STOP_REPLY__INIT;
    r.status = status;
    r.reason = (char *)(a->reason ? a->reason : "");
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
}

/* ---- RetryNow ----------------------------------------------------------- */

static int validate_retry_now(const ProtobufCMessage *m,
                              const tm_engine_config_t *cfg, char *err,
                              size_t errlen)
{
    (void)cfg;
    return tm_validate_gid(((const Trellis__V1__RetryNowRequest *)m)->gid, err,
                           errlen);
}

static int act_retry_now(tm_engine_t *e, const tm_engine_req_t *rq,
                         const ProtobufCMessage *m)
{
    return tm_engine_retry_now(e, rq,
                               ((const Trellis__V1__RetryNowRequest *)m)->gid);
}

/* ---- ForceStop ---------------------------------------------------------- */

static int validate_force_stop(const ProtobufCMessage *m,
                               const tm_engine_config_t *cfg, char *err,
                               size_t errlen)
{
    (void)cfg;
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

/* ---- SetLogLevel -------------------------------------------------------- */

static int validate_set_log_level(const ProtobufCMessage *m,
                                  const tm_engine_config_t *cfg, char *err,
                                  size_t errlen)
{
    (void)cfg;
    const Trellis__V1__SetLogLevelRequest *r =
        (const Trellis__V1__SetLogLevelRequest *)m;
    tm_log_level_t level;
    if (r->level && *r->level && tm_log_parse_level(r->level, &level) != 0) {
        snprintf(err, errlen, "level must be debug, info, warn or error");
        return -1;
    }
    return 0;
}

/* An empty level only reads it; otherwise the new level applies to every
 * line logged after the reply. */
static int act_set_log_level(tm_engine_t *e, const tm_engine_req_t *rq,
                             const ProtobufCMessage *m)
{
    (void)e;
    const Trellis__V1__SetLogLevelRequest *r =
        (const Trellis__V1__SetLogLevelRequest *)m;
    tm_log_level_t before = tm_log_get_level(), now = before;
    if (r->level && *r->level)
        tm_log_parse_level(r->level, &now); /* validated */
    if (now != before) {
        /* At warn, so the change is on record under every level but
         * error. */
        tm_log(TM_LOG_WARN, "event=log_level_changed from=%s to=%s",
               tm_log_level_name(before), tm_log_level_name(now));
        tm_log_set_level(now);
    }
    Trellis__V1__SetLogLevelReply reply =
        TRELLIS__V1__SET_LOG_LEVEL_REPLY__INIT;
    reply.level = (char *)tm_log_level_name(now);
    reply.previous = (char *)tm_log_level_name(before);
    tm_server_reply(rq->rpc, GRPC_STATUS_OK, NULL, &reply.base);
    return 0;
}

const tm_api_method_t tm_admin_methods[] = {
    {"/trellis.v1.TM/RetryNow", &trellis__v1__retry_now_request__descriptor,
     validate_retry_now, act_retry_now, NULL},
    {"/trellis.v1.TM/ForceStop", &trellis__v1__force_stop_request__descriptor,
     validate_force_stop, act_force_stop, NULL},
    {"/trellis.v1.TM/SetLogLevel",
     &trellis__v1__set_log_level_request__descriptor, validate_set_log_level,
     act_set_log_level, NULL},
};

const size_t tm_admin_n_methods =
    sizeof(tm_admin_methods) / sizeof(tm_admin_methods[0]);
