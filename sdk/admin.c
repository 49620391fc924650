/*
 * admin.c — the operator RPCs of trellis_admin.h: RetryNow, ForceStop,
 * SetLogLevel. Each is one tr_client_call (client.c) on the client's
 * channel, so they share its connection and its transport security; the
 * methods are called by name, as operators call them rarely.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "trellis/v1/tm.pb-c.h"
#include "trellis/trellis_admin.h"

trellis_rc_t trellis_retry_now(trellis_client_t *c, const char *gid,
                               uint32_t *ops_called,
                               trellis_trans_status_t *status, char *err,
                               size_t errlen)
{
    tr_err_clear(err, errlen);
    if (gid == NULL || gid[0] == '\0')
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gid is empty");
    Trellis__V1__RetryNowRequest req = TRELLIS__V1__RETRY_NOW_REQUEST__INIT;
    req.gid = (char *)gid;
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc = tr_client_call(c, "/trellis.v1.TM/RetryNow", &req.base,
                                     &trellis__v1__retry_now_reply__descriptor,
                                     &rep, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    Trellis__V1__RetryNowReply *r = (Trellis__V1__RetryNowReply *)rep;
    if (ops_called)
        *ops_called = r->ops_called;
    if (status)
        *status = (trellis_trans_status_t)r->status;
    protobuf_c_message_free_unpacked(rep, NULL);
    return TRELLIS_OK;
}

trellis_rc_t trellis_force_stop(trellis_client_t *c, const char *gid,
                                const char *reason,
                                trellis_trans_status_t *status,
                                char *stored_reason, size_t reasonlen,
                                char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (gid == NULL || gid[0] == '\0')
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gid is empty");
    if (reason == NULL || reason[0] == '\0')
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "a reason is required");
    Trellis__V1__ForceStopRequest req = TRELLIS__V1__FORCE_STOP_REQUEST__INIT;
    req.gid = (char *)gid;
    req.reason = (char *)reason;
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc = tr_client_call(c, "/trellis.v1.TM/ForceStop", &req.base,
                                     &trellis__v1__force_stop_reply__descriptor,
                                     &rep, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    Trellis__V1__ForceStopReply *r = (Trellis__V1__ForceStopReply *)rep;
    if (status)
        *status = (trellis_trans_status_t)r->status;
    tr_copy_out(stored_reason, reasonlen, r->reason);
    protobuf_c_message_free_unpacked(rep, NULL);
    return TRELLIS_OK;
}

trellis_rc_t trellis_set_log_level(trellis_client_t *c, const char *level,
                                   char *now, size_t nowlen, char *before,
                                   size_t beforelen, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    Trellis__V1__SetLogLevelRequest req =
        TRELLIS__V1__SET_LOG_LEVEL_REQUEST__INIT;
    req.level = (char *)(level ? level : "");
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc = tr_client_call(
        c, "/trellis.v1.TM/SetLogLevel", &req.base,
        &trellis__v1__set_log_level_reply__descriptor, &rep, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    Trellis__V1__SetLogLevelReply *r = (Trellis__V1__SetLogLevelReply *)rep;
    tr_copy_out(now, nowlen, r->level);
    tr_copy_out(before, beforelen, r->previous);
    protobuf_c_message_free_unpacked(rep, NULL);
    return TRELLIS_OK;
}
