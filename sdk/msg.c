/*
 * msg.c — 2-phase messages (trellis_msg.h): the message builder, its
 * PrepareMessage (prepared, or decided at once with submit), the submit
 * and abort of a prepared message, and the topics RPCs (Subscribe,
 * Unsubscribe, ListSubscriptions).
 *
 * The builder owns copies of everything it is given, like the saga
 * builder (saga.c), and shares its option copies and dependency lists
 * (builder.c). Invariant: every prerequisite of step i is below i. A step
 * has a target or a topic, never both; trellisd expands topics.
 *
 * Every string from the caller is checked whole here (trellisd checks them
 * again): gids and topics by their character sets and lengths, targets by
 * the protocol's one parser (tr_ap_check_target), free text by its length.
 * The RPCs go through tr_client_call on the client's channel, called by
 * name (the channel's registered slots hold the saga and TCC path).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trellis/trellis_msg.h"
#include "trellis/v1/tm.pb-c.h"

typedef struct {
    char *target; /* "" for a topic step */
    char *topic;  /* "" for a target step */
    uint8_t *payload;
    size_t payload_len;
    uint32_t *depends_on;
    size_t n_depends_on;
} msg_step_t;

struct trellis_msg {
    char *gid;
    msg_step_t *steps;
    size_t n_steps, cap_steps;
    int concurrent;
    tr_owned_options_t options;
};

/* ---- string checks ----------------------------------------------------- */

/* 1..max bytes of letters, digits and the characters of extra. */
static trellis_rc_t check_id(const char *v, const char *what, size_t max,
                             const char *extra, char *err, size_t errlen)
{
    if (v == NULL || v[0] == '\0')
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is empty",
                       what);
    size_t n = strlen(v);
    if (n > max)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s is %zu bytes long; at most %zu allowed", what, n,
                       max);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || strchr(extra, ch) != NULL;
        if (!ok)
            return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                           "%s has character 0x%02x at offset %zu; allowed "
                           "are letters, digits and %s",
                           what, ch, i, extra);
    }
    return TRELLIS_OK;
}

static trellis_rc_t check_gid(const char *gid, char *err, size_t errlen)
{
    return check_id(gid, "gid", TRELLIS_MSG_GID_MAX, "_.:-", err, errlen);
}

static trellis_rc_t check_topic(const char *topic, char *err, size_t errlen)
{
    return check_id(topic, "topic", TRELLIS_TOPIC_MAX, "_.:-", err, errlen);
}

/* NULL or at most TRELLIS_MSG_TEXT_MAX bytes. */
static trellis_rc_t check_text(const char *v, const char *what, size_t max,
                               char *err, size_t errlen)
{
    size_t n = v != NULL ? strlen(v) : 0;
    if (n > max)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s is %zu bytes long; at most %zu allowed", what, n,
                       max);
    return TRELLIS_OK;
}

/* ---- construction ------------------------------------------------------ */

trellis_rc_t trellis_msg_new(const char *gid, trellis_msg_t **out, char *err,
                             size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    trellis_rc_t rc = check_gid(gid, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    trellis_msg_t *m = calloc(1, sizeof *m);
    if (m == NULL || (m->gid = strdup(gid)) == NULL) {
        free(m);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a message");
    }
    *out = m;
    return TRELLIS_OK;
}

static void step_clear(msg_step_t *st)
{
    free(st->target);
    free(st->topic);
    free(st->payload);
    free(st->depends_on);
}

void trellis_msg_free(trellis_msg_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_steps; i++)
        step_clear(&m->steps[i]);
    free(m->steps);
    tr_options_clear(&m->options.o);
    free(m->gid);
    free(m);
}

const char *trellis_msg_gid(const trellis_msg_t *m)
{
    return m != NULL ? m->gid : "";
}

/* ---- steps ------------------------------------------------------------- */

/* Append a step with exactly one of target and topic (checked). */
static int add_step(trellis_msg_t *m, const char *target, const char *topic,
                    const void *payload, size_t payload_len, char *err,
                    size_t errlen)
{
    if (payload == NULL && payload_len > 0)
        return tr_errf(-1, err, errlen,
                       "message step %zu: payload is NULL but payload_len "
                       "is %zu",
                       m->n_steps, payload_len);
    if (m->n_steps >= (size_t)INT32_MAX)
        return tr_errf(-1, err, errlen, "message has too many steps");
    msg_step_t st = {0};
    st.target = tr_strdup0(target);
    st.topic = tr_strdup0(topic);
    if (payload_len > 0 && (st.payload = malloc(payload_len)) != NULL)
        memcpy(st.payload, payload, payload_len);
    st.payload_len = payload_len;
    if (st.target == NULL || st.topic == NULL ||
        (payload_len > 0 && st.payload == NULL) ||
        tr_reserve_one((void **)&m->steps, &m->cap_steps, m->n_steps,
                       sizeof *m->steps) != 0) {
        step_clear(&st);
        return tr_errf(-1, err, errlen,
                       "message step %zu: out of memory copying it",
                       m->n_steps);
    }
    m->steps[m->n_steps] = st;
    return (int)m->n_steps++;
}

int trellis_msg_add_step(trellis_msg_t *m, const char *target,
                         const void *payload, size_t payload_len, char *err,
                         size_t errlen)
{
    tr_err_clear(err, errlen);
    if (m == NULL)
        return tr_errf(-1, err, errlen, "message is NULL");
    if (tr_ap_check_target(target, "message step", err, errlen) != TRELLIS_OK)
        return -1;
    return add_step(m, target, NULL, payload, payload_len, err, errlen);
}

int trellis_msg_add_topic_step(trellis_msg_t *m, const char *topic,
                               const void *payload, size_t payload_len,
                               char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (m == NULL)
        return tr_errf(-1, err, errlen, "message is NULL");
    if (check_topic(topic, err, errlen) != TRELLIS_OK)
        return -1;
    return add_step(m, NULL, topic, payload, payload_len, err, errlen);
}

trellis_rc_t trellis_msg_add_dependency(trellis_msg_t *m, int step,
                                        int prerequisite, char *err,
                                        size_t errlen)
{
    tr_err_clear(err, errlen);
    if (m == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "message is NULL");
    trellis_rc_t rc =
        tr_deps_check(step, prerequisite, m->n_steps, "message", err, errlen);
    if (rc == TRELLIS_OK) {
        msg_step_t *st = &m->steps[step];
        rc = tr_deps_add(&st->depends_on, &st->n_depends_on, step, prerequisite,
                         err, errlen);
    }
    if (rc == TRELLIS_OK)
        m->concurrent = 1;
    return rc;
}

void trellis_msg_set_concurrent(trellis_msg_t *m, int concurrent)
{
    if (m != NULL)
        m->concurrent = concurrent != 0;
}

void trellis_msg_set_options(trellis_msg_t *m, const trellis_options_t *o)
{
    if (m != NULL)
        tr_owned_options_set(&m->options, o);
}

/* ---- PrepareMessage ---------------------------------------------------- */

/* The request's parts, borrowing the builder's memory. */
typedef struct {
    Trellis__V1__MessageStep *msgs;
    Trellis__V1__MessageStep **ptrs;
    tr_pb_options_t *opts;
} pb_msg_t;

static void pb_msg_free(pb_msg_t *p)
{
    free(p->msgs);
    free(p->ptrs);
    tr_pb_options_free(p->opts);
}

/* Options with wait_result as given; -1 when out of memory. */
static int pb_msg_build(const trellis_msg_t *m, int wait, pb_msg_t *out)
{
    *out = (pb_msg_t){0};
    trellis_options_t o = {0};
    if (m->options.has)
        o = m->options.o; /* shallow: the headers stay borrowed */
    o.wait_result = wait != 0;
    out->opts = tr_pb_options_new(&o);
    out->msgs = calloc(m->n_steps, sizeof *out->msgs);
    out->ptrs = calloc(m->n_steps, sizeof *out->ptrs);
    if (out->opts == NULL || out->msgs == NULL || out->ptrs == NULL)
        return -1;
    for (size_t i = 0; i < m->n_steps; i++) {
        const msg_step_t *st = &m->steps[i];
        Trellis__V1__MessageStep init = TRELLIS__V1__MESSAGE_STEP__INIT;
        Trellis__V1__MessageStep *p = &out->msgs[i];
        *p = init;
        p->target = st->target;
        p->topic = st->topic;
        p->payload.len = st->payload_len;
        p->payload.data = st->payload;
        p->n_depends_on = st->n_depends_on;
        p->depends_on = st->depends_on;
        out->ptrs[i] = p;
    }
    return 0;
}

static trellis_rc_t check_not_null(trellis_client_t *c, const trellis_msg_t *m,
                                   char *err, size_t errlen)
{
    if (c == NULL || m == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       c == NULL ? "client" : "message");
    return TRELLIS_OK;
}

/* A message that can be sent: steps, options copied. */
static trellis_rc_t check_msg(trellis_client_t *c, const trellis_msg_t *m,
                              char *err, size_t errlen)
{
    trellis_rc_t rc = check_not_null(c, m, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    if (m->options.oom)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "message %s: out of memory copying its options", m->gid);
    if (m->n_steps == 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "message %s has no steps", m->gid);
    return TRELLIS_OK;
}

static trellis_rc_t prepare_message(trellis_client_t *c, const trellis_msg_t *m,
                                    const char *query_prepared, int submit,
                                    int wait, trellis_trans_status_t *status,
                                    char *reason, size_t reasonlen, char *err,
                                    size_t errlen)
{
    pb_msg_t parts;
    if (pb_msg_build(m, wait, &parts) != 0) {
        pb_msg_free(&parts);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "message %s: out of memory building the request",
                       m->gid);
    }
    Trellis__V1__PrepareMessageRequest req =
        TRELLIS__V1__PREPARE_MESSAGE_REQUEST__INIT;
    req.gid = m->gid;
    req.n_steps = m->n_steps;
    req.steps = parts.ptrs;
    req.query_prepared = (char *)(query_prepared != NULL ? query_prepared : "");
    req.options = tr_pb_options_get(parts.opts);
    req.concurrent = m->concurrent != 0;
    req.submit = submit != 0;
    ProtobufCMessage *rep = NULL;
    tr_request_md_t md = tr_pb_options_md(parts.opts);
    trellis_rc_t rc = tr_client_call_md(
        c, "/trellis.v1.TM/PrepareMessage", &req.base, &md,
        &trellis__v1__prepare_message_reply__descriptor, &rep, err, errlen);
    pb_msg_free(&parts);
    if (rc != TRELLIS_OK)
        return rc;
    const Trellis__V1__PrepareMessageReply *r =
        (const Trellis__V1__PrepareMessageReply *)rep;
    if (status != NULL)
        *status = (trellis_trans_status_t)r->status;
    tr_copy_out(reason, reasonlen, r->reason);
    protobuf_c_message_free_unpacked(rep, NULL);
    return TRELLIS_OK;
}

trellis_rc_t trellis_msg_prepare(trellis_client_t *c, const trellis_msg_t *m,
                                 const char *query_prepared, char *err,
                                 size_t errlen)
{
    tr_err_clear(err, errlen);
    trellis_rc_t rc = check_msg(c, m, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_ap_check_target(query_prepared, "query_prepared", err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    return prepare_message(c, m, query_prepared, 0, 0, NULL, NULL, 0, err,
                           errlen);
}

trellis_rc_t trellis_msg_send(trellis_client_t *c, const trellis_msg_t *m,
                              int wait, trellis_trans_status_t *status,
                              char *reason, size_t reasonlen, char *err,
                              size_t errlen)
{
    tr_err_clear(err, errlen);
    tr_copy_out(reason, reasonlen, "");
    trellis_rc_t rc = check_msg(c, m, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    return prepare_message(c, m, NULL, 1, wait, status, reason, reasonlen, err,
                           errlen);
}

/* ---- submit / abort ---------------------------------------------------- */

trellis_rc_t trellis_msg_submit(trellis_client_t *c, const trellis_msg_t *m,
                                int wait, trellis_trans_status_t *status,
                                char *reason, size_t reasonlen, char *err,
                                size_t errlen)
{
    tr_copy_out(reason, reasonlen, "");
    trellis_rc_t rc = check_not_null(c, m, err, errlen);
    return rc != TRELLIS_OK ? rc
                            : trellis_submit(c, m->gid, wait, status, reason,
                                             reasonlen, err, errlen);
}

trellis_rc_t trellis_msg_abort(trellis_client_t *c, const trellis_msg_t *m,
                               const char *reason, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    trellis_rc_t rc = check_not_null(c, m, err, errlen);
    if (rc == TRELLIS_OK)
        rc = check_text(reason, "abort reason", TRELLIS_MSG_TEXT_MAX, err,
                        errlen);
    if (rc != TRELLIS_OK)
        return rc;
    return trellis_abort(c, m->gid, reason, 0, NULL, err, errlen);
}

/* ---- topics ------------------------------------------------------------ */

trellis_rc_t trellis_subscribe(trellis_client_t *c, const char *topic,
                               const char *target, const char *remark,
                               int *created, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (created != NULL)
        *created = 0;
    trellis_rc_t rc = check_topic(topic, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_ap_check_target(target, "subscriber", err, errlen);
    if (rc == TRELLIS_OK)
        rc = check_text(remark, "remark", TRELLIS_REMARK_MAX, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    Trellis__V1__SubscribeRequest req = TRELLIS__V1__SUBSCRIBE_REQUEST__INIT;
    req.topic = (char *)topic;
    req.target = (char *)target;
    req.remark = (char *)(remark != NULL ? remark : "");
    ProtobufCMessage *rep = NULL;
    rc = tr_client_call(c, "/trellis.v1.TM/Subscribe", &req.base,
                        &trellis__v1__subscribe_reply__descriptor, &rep, err,
                        errlen);
    if (rc != TRELLIS_OK)
        return rc;
    if (created != NULL)
        *created = ((Trellis__V1__SubscribeReply *)rep)->created ? 1 : 0;
    protobuf_c_message_free_unpacked(rep, NULL);
    return TRELLIS_OK;
}

trellis_rc_t trellis_unsubscribe(trellis_client_t *c, const char *topic,
                                 const char *target, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    trellis_rc_t rc = check_topic(topic, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_ap_check_target(target, "subscriber", err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    Trellis__V1__UnsubscribeRequest req =
        TRELLIS__V1__UNSUBSCRIBE_REQUEST__INIT;
    req.topic = (char *)topic;
    req.target = (char *)target;
    ProtobufCMessage *rep = NULL;
    rc = tr_client_call(c, "/trellis.v1.TM/Unsubscribe", &req.base,
                        &trellis__v1__unsubscribe_reply__descriptor, &rep, err,
                        errlen);
    if (rep != NULL)
        protobuf_c_message_free_unpacked(rep, NULL);
    return rc;
}

void trellis_subscription_list_free(trellis_subscription_list_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].topic);
        free(l->items[i].target);
        free(l->items[i].remark);
    }
    free(l->items);
    free(l);
}

/* Deep copy of the reply into l (l->n counts what was copied, for
 * trellis_subscription_list_free). */
static trellis_rc_t
subscriptions_copy(const Trellis__V1__ListSubscriptionsReply *r,
                   trellis_subscription_list_t *l, char *err, size_t errlen)
{
    if (r->n_subscriptions == 0)
        return TRELLIS_OK;
    l->items = calloc(r->n_subscriptions, sizeof *l->items);
    if (l->items == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for %zu subscriptions",
                       r->n_subscriptions);
    for (size_t i = 0; i < r->n_subscriptions; i++) {
        const Trellis__V1__Subscription *s = r->subscriptions[i];
        trellis_subscription_t *d = &l->items[i];
        l->n = i + 1;
        d->topic = tr_strdup0(s->topic);
        d->target = tr_strdup0(s->target);
        d->remark = tr_strdup0(s->remark);
        d->created_ms = s->created_ms;
        if (d->topic == NULL || d->target == NULL || d->remark == NULL)
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "out of memory for a subscription");
    }
    return TRELLIS_OK;
}

trellis_rc_t trellis_list_subscriptions(trellis_client_t *c, const char *topic,
                                        trellis_subscription_list_t **out,
                                        char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    if (topic != NULL && topic[0] != '\0') {
        trellis_rc_t rc = check_topic(topic, err, errlen);
        if (rc != TRELLIS_OK)
            return rc;
    }
    Trellis__V1__ListSubscriptionsRequest req =
        TRELLIS__V1__LIST_SUBSCRIPTIONS_REQUEST__INIT;
    req.topic = (char *)(topic != NULL ? topic : "");
    ProtobufCMessage *rep = NULL;
    trellis_rc_t rc = tr_client_call(
        c, "/trellis.v1.TM/ListSubscriptions", &req.base,
        &trellis__v1__list_subscriptions_reply__descriptor, &rep, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    trellis_subscription_list_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        rc = tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                     "out of memory for a subscription list");
    else
        rc = subscriptions_copy(
            (const Trellis__V1__ListSubscriptionsReply *)rep, l, err, errlen);
    protobuf_c_message_free_unpacked(rep, NULL);
    if (rc != TRELLIS_OK) {
        trellis_subscription_list_free(l);
        return rc;
    }
    *out = l;
    return TRELLIS_OK;
}
