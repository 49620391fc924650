/*
 * tm_api_msg: PrepareMessage and the topic RPCs on the wire (see
 * tm_api_msg.h).
 */
#include "tm_api_msg.h"

#include <stdlib.h>

#include "tm_exit.h"
#include "tm_validate.h"
#include "trellis/v1/tm.pb-c.h"

static int validate_prepare(const ProtobufCMessage *m,
                            const tm_engine_config_t *cfg, char *err,
                            size_t errlen)
{
    return tm_validate_prepare_message(
        (const Trellis__V1__PrepareMessageRequest *)m, &cfg->limits, err,
        errlen);
}

static int act_prepare(tm_engine_t *e, const tm_engine_req_t *rq,
                       const ProtobufCMessage *m)
{
    return tm_engine_prepare_message(
        e, rq, (const Trellis__V1__PrepareMessageRequest *)m);
}

static int validate_subscribe(const ProtobufCMessage *m,
                              const tm_engine_config_t *cfg, char *err,
                              size_t errlen)
{
    return tm_validate_subscribe((const Trellis__V1__SubscribeRequest *)m,
                                 &cfg->limits, err, errlen);
}

static int act_subscribe(tm_engine_t *e, const tm_engine_req_t *rq,
                         const ProtobufCMessage *m)
{
    tm_engine_subscribe(e, rq->rpc, (const Trellis__V1__SubscribeRequest *)m);
    return 0;
}

static int validate_unsubscribe(const ProtobufCMessage *m,
                                const tm_engine_config_t *cfg, char *err,
                                size_t errlen)
{
    (void)cfg;
    return tm_validate_unsubscribe((const Trellis__V1__UnsubscribeRequest *)m,
                                   err, errlen);
}

static int act_unsubscribe(tm_engine_t *e, const tm_engine_req_t *rq,
                           const ProtobufCMessage *m)
{
    tm_engine_unsubscribe(e, rq->rpc,
                          (const Trellis__V1__UnsubscribeRequest *)m);
    return 0;
}

static int validate_list(const ProtobufCMessage *m,
                         const tm_engine_config_t *cfg, char *err,
                         size_t errlen)
{
    (void)cfg;
    return tm_validate_list_subscriptions(
        (const Trellis__V1__ListSubscriptionsRequest *)m, err, errlen);
}

static int act_list(tm_engine_t *e, const tm_engine_req_t *rq,
                    const ProtobufCMessage *m)
{
    tm_engine_list_subscriptions(
        e, rq->rpc, ((const Trellis__V1__ListSubscriptionsRequest *)m)->topic);
    return 0;
}

const tm_api_method_t tm_msg_methods[] = {
    {"/trellis.v1.TM/PrepareMessage",
     &trellis__v1__prepare_message_request__descriptor, validate_prepare,
     act_prepare, NULL},
    {"/trellis.v1.TM/Subscribe", &trellis__v1__subscribe_request__descriptor,
     validate_subscribe, act_subscribe, NULL},
    {"/trellis.v1.TM/Unsubscribe",
     &trellis__v1__unsubscribe_request__descriptor, validate_unsubscribe,
     act_unsubscribe, NULL},
    {"/trellis.v1.TM/ListSubscriptions",
     &trellis__v1__list_subscriptions_request__descriptor, validate_list,
     act_list, NULL},
};
const size_t tm_msg_n_methods =
    sizeof(tm_msg_methods) / sizeof(*tm_msg_methods);

static void reply_subscriptions(tm_rpc_t *rpc, const tm_answer_t *a)
{
    Trellis__V1__ListSubscriptionsReply r =
        TRELLIS__V1__LIST_SUBSCRIPTIONS_REPLY__INIT;
    Trellis__V1__Subscription *items =
        calloc(a->n_subs ? a->n_subs : 1, sizeof(*items));
    Trellis__V1__Subscription **ptrs =
        calloc(a->n_subs ? a->n_subs : 1, sizeof(*ptrs));
    if (!items || !ptrs)
        tm_exit_oom("subscriptions");
    for (size_t i = 0; i < a->n_subs; i++) {
        trellis__v1__subscription__init(&items[i]);
        items[i].topic = a->subs[i].topic;
        items[i].target = a->subs[i].target;
        items[i].remark = a->subs[i].remark;
        items[i].created_ms = a->subs[i].created_ms;
        ptrs[i] = &items[i];
    }
    r.n_subscriptions = a->n_subs;
    r.subscriptions = ptrs;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
    free(ptrs);
    free(items);
}

void tm_msg_reply(tm_rpc_t *rpc, const tm_answer_t *a)
{
    switch (a->kind) {
    case TM_ANSWER_PREPARE_MESSAGE: {
        Trellis__V1__PrepareMessageReply r =
            TRELLIS__V1__PREPARE_MESSAGE_REPLY__INIT;
        r.gid = (char *)a->gid;
        r.status = (Trellis__V1__TransStatus)a->status;
        r.reason = (char *)(a->reason ? a->reason : "");
        tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    case TM_ANSWER_SUBSCRIBE: {
        Trellis__V1__SubscribeReply r = TRELLIS__V1__SUBSCRIBE_REPLY__INIT;
        r.created = a->created;
        tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    case TM_ANSWER_UNSUBSCRIBE: {
        Trellis__V1__UnsubscribeReply r = TRELLIS__V1__UNSUBSCRIBE_REPLY__INIT;
        tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
        return;
    }
    default:
        reply_subscriptions(rpc, a);
        return;
    }
}
