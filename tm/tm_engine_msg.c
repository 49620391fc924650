/*
 * tm_engine_msg: the message requests of the engine core — PrepareMessage,
 * which stores a 2-phase message (prepared, or decided at once), the
 * Submit of a prepared message, and the topic requests (Subscribe,
 * Unsubscribe, ListSubscriptions), which go straight to the store. The
 * rest of a message's life is the plan's (tm_plan.h, "Messages"): the
 * back-check at the timeout, delivery until every step succeeded.
 *
 * A step naming a topic is expanded when the message is stored, from the
 * subscriptions committed at that moment: a message is delivered to the
 * subscribers it was stored with, also after a restart or a takeover, and
 * a later subscriber does not get it. A message's submit_hash is the hash
 * of its PrepareMessage content, so a repeat (the initiator's retry after
 * a lost answer) is recognised whatever the subscriptions are now.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_engine_impl.h"
#include "tm_exit.h"
#include "tm_log.h"
#include "tm_request.h"

/* ---- topic lookups ------------------------------------------------------ */

/* The subscribers of every topic step of r, as tm_request_add_message
 * takes them. */
typedef struct {
    tm_step_targets_t *steps;
    tm_subscription_t **subs; /* per step: the store's answer */
    size_t *n_subs;
    const char **targets; /* every step's targets, one array */
    size_t n;
} msg_subscribers_t;

static void subscribers_free(msg_subscribers_t *m)
{
    for (size_t i = 0; m->subs && i < m->n; i++)
        tm_subscriptions_free(m->subs[i], m->n_subs[i]);
    free(m->subs);
    free(m->n_subs);
    free(m->steps);
    free(m->targets);
}

static size_t total_subscribers(const msg_subscribers_t *m)
{
    size_t total = 0;
    for (size_t i = 0; i < m->n; i++)
        total += m->n_subs[i];
    return total;
}

/* Point each topic step at its subscribers' targets. */
static int index_targets(msg_subscribers_t *m)
{
    size_t total = total_subscribers(m);
    m->targets = malloc((total ? total : 1) * sizeof(*m->targets));
    if (!m->targets)
        return -1;
    size_t at = 0;
    for (size_t i = 0; i < m->n; i++) {
        m->steps[i].targets = m->targets + at;
        m->steps[i].n = m->n_subs[i];
        for (size_t k = 0; k < m->n_subs[i]; k++)
            m->targets[at++] = m->subs[i][k].target;
    }
    return 0;
}

/* Read the subscribers of r's topic steps. 0, or -1 with err (the store
 * could not say). */
static int read_subscribers(tm_engine_t *e,
                            const Trellis__V1__PrepareMessageRequest *r,
                            msg_subscribers_t *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->n = r->n_steps;
    m->steps = calloc(m->n, sizeof(*m->steps));
    m->subs = calloc(m->n, sizeof(*m->subs));
    m->n_subs = calloc(m->n, sizeof(*m->n_subs));
    if (!m->steps || !m->subs || !m->n_subs)
        tm_exit_oom("message subscribers");
    for (size_t i = 0; i < m->n; i++) {
        const char *topic = r->steps[i]->topic;
        if (!topic || !*topic)
            continue;
        if (e->env.store_subscriptions(e->env.store, topic, &m->subs[i],
                                       &m->n_subs[i], err, errlen) != 0)
            return -1;
    }
    if (index_targets(m) != 0)
        tm_exit_oom("message subscribers");
    return 0;
}

/* A subscription was allowed when it was made; trellisd may have been
 * restarted with a narrower allow-targets since. The TM calls no target
 * the allowlist refuses now: the message is refused, naming the
 * subscription to remove. 0, or -1 with err. */
static int
check_subscribers_allowed(const tm_engine_t *e,
                          const Trellis__V1__PrepareMessageRequest *r,
                          const msg_subscribers_t *m, char *err, size_t errlen)
{
    for (size_t i = 0; i < m->n; i++)
        for (size_t k = 0; k < m->steps[i].n; k++) {
            const char *target = m->steps[i].targets[k];
            tm_target_t t;
            if (tm_parse_target(target, "subscriber", &t, err, errlen) == 0 &&
                tm_allow_match(&e->cfg.limits.allow, t.host_port))
                continue;
            snprintf(err, errlen,
                     "steps[%zu]: topic %s has subscriber %.255s, which "
                     "trellisd's allow-targets setting no longer allows "
                     "(unsubscribe it, or allow it)",
                     i, r->steps[i]->topic, target);
            return -1;
        }
    return 0;
}

/* ---- PrepareMessage ----------------------------------------------------- */

static int wants_wait(const Trellis__V1__PrepareMessageRequest *r)
{
    return r->submit && r->options && r->options->wait_result;
}

/* The initiator's decision to deliver: from PREPARED to SUBMITTED, the
 * head's op done (the initiator answered the back-check's question). */
static void decide_to_deliver(tm_live_t *l)
{
    int64_t now = tm_engine_wall(l->eng);
    l->tx.status = TM_TX_SUBMITTED;
    l->tx.updated_ms = now;
    tm_plan_mark_initiator_ops_done(&l->tx, &l->run, now);
}

static tm_live_t *new_message(tm_engine_t *e,
                              const Trellis__V1__PrepareMessageRequest *r,
                              const tm_step_targets_t *subs, char *err,
                              size_t errlen)
{
    tm_live_t *l = tm_live_new(e, r->gid, TM_TX_PREPARED, tm_engine_wall(e),
                               tm_engine_mono(e));
    if (!l || tm_options_from_proto(&l->tx.opts, r->options) != 0)
        tm_exit_oom("message");
    if (!l->tx.opts.timeout_to_fail_ms)
        l->tx.opts.timeout_to_fail_ms = e->cfg.prepared_timeout_ms;
    l->tx.submit_hash = tm_request_message_hash(r);
    if (tm_request_add_message(&l->tx, r, subs, &e->cfg.limits, err, errlen) !=
        0) {
        tm_live_unref(l);
        return NULL;
    }
    if (tm_request_add_listeners(&l->tx, r->options) != 0)
        tm_exit_oom("listeners");
    tm_engine_fit(l);
    if (r->submit)
        decide_to_deliver(l);
    return l;
}

static void fail_other_message(tm_engine_t *e, tm_rpc_t *rpc,
                               const tm_trans_t *tx)
{
    tm_engine_fail(e, rpc, TM_CODE_ALREADY_EXISTS,
                   "gid %s already exists (status %s) and is not this "
                   "message: %s",
                   tx->gid, tm_tx_status_name(tx->status),
                   tm_plan_is_message(tx)
                       ? "its steps, back-check or options differ"
                       : "it is a transaction of another mode");
}

static int same_message(const tm_trans_t *tx, uint64_t h)
{
    return tm_plan_is_message(tx) && tx->submit_hash == h;
}

static void answer_message(tm_live_t *l, tm_rpc_t *rpc, int wait)
{
    if (wait && !tm_tx_is_final(l->tx.status))
        tm_wait_add_or_answer(l, rpc, TM_WAIT_PREPARE_MESSAGE);
    else
        tm_engine_answer_status(l->eng, rpc, TM_ANSWER_PREPARE_MESSAGE,
                                l->tx.gid, l->tx.status, l->tx.reason);
}

typedef struct {
    const Trellis__V1__PrepareMessageRequest *r;
    uint64_t hash;
} prepare_arg_t;

/* A repeat of the PrepareMessage that stored this message answers its
 * status; with submit, it also decides a message still prepared. */
static void prepare_existing(tm_live_t *l, const tm_engine_req_t *rq,
                             const void *arg)
{
    const prepare_arg_t *a = arg;
    if (!same_message(&l->tx, a->hash)) {
        fail_other_message(l->eng, rq->rpc, &l->tx);
        return;
    }
    if (a->r->submit && l->tx.status == TM_TX_PREPARED) {
        decide_to_deliver(l);
        if (wants_wait(a->r))
            tm_wait_add(l, rq->rpc, TM_WAIT_PREPARE_MESSAGE);
        tm_engine_persist(l, 0, wants_wait(a->r) ? NULL : rq->rpc,
                          TM_ANSWER_PREPARE_MESSAGE);
        return;
    }
    answer_message(l, rq->rpc, wants_wait(a->r));
}

void tm_engine_prepare_message_stored(tm_engine_t *e, tm_rpc_t *rpc,
                                      const char *gid, uint64_t h)
{
    tm_trans_t *tx = tm_engine_read_stored(e, rpc, gid);
    if (!tx)
        return;
    if (!same_message(tx, h))
        fail_other_message(e, rpc, tx);
    else if (!tm_tx_is_final(tx->status))
        tm_engine_fail_moved(e, rpc, gid);
    else
        tm_engine_answer_status(e, rpc, TM_ANSWER_PREPARE_MESSAGE, gid,
                                tx->status, tx->reason);
    tm_trans_free(tx);
}

static void prepare_new(tm_live_t *l, tm_rpc_t *rpc,
                        const Trellis__V1__PrepareMessageRequest *r)
{
    char trace[64];
    pthread_mutex_lock(&l->mu);
    tm_log(TM_LOG_INFO, "event=msg_%s gid=%s%s deliveries=%zu",
           r->submit ? "submitted" : "prepared", l->tx.gid,
           tm_trace_log_field(l->tx.opts.traceparent, trace, sizeof(trace)),
           l->tx.n_branches - 1);
    if (wants_wait(r))
        tm_wait_add(l, rpc, TM_WAIT_PREPARE_MESSAGE);
    tm_engine_persist(l, 1, wants_wait(r) ? NULL : rpc,
                      TM_ANSWER_PREPARE_MESSAGE);
    tm_engine_arm_timeout(l);
    pthread_mutex_unlock(&l->mu);
}

/* The message r describes, or NULL with the request answered (a topic
 * nobody subscribes to, a subscriber no longer allowed, too many
 * branches, the store unreadable). */
static tm_live_t *build_or_fail(tm_engine_t *e, tm_rpc_t *rpc,
                                const Trellis__V1__PrepareMessageRequest *r)
{
    char err[512];
    msg_subscribers_t subs;
    tm_live_t *fresh = NULL;
    if (read_subscribers(e, r, &subs, err, sizeof(err)) != 0)
        tm_engine_fail_storage(e, rpc, err);
    else if (check_subscribers_allowed(e, r, &subs, err, sizeof(err)) != 0)
        tm_engine_fail(e, rpc, TM_CODE_PERMISSION_DENIED, "%s", err);
    else if (!(fresh = new_message(e, r, subs.steps, err, sizeof(err))))
        tm_engine_fail(e, rpc,
                       strstr(err, "no subscriber") ? TM_CODE_NOT_FOUND
                                                    : TM_CODE_INVALID_ARGUMENT,
                       "%s", err);
    subscribers_free(&subs);
    return fresh;
}

int tm_engine_prepare_message(tm_engine_t *e, const tm_engine_req_t *rq,
                              const Trellis__V1__PrepareMessageRequest *r)
{
    char err[512];
    if (tm_engine_refuse_if_store_failing(e, rq->rpc))
        return 0;
    tm_live_t *fresh = build_or_fail(e, rq->rpc, r);
    if (!fresh)
        return 0;
    tm_engine_take_trace(e, rq->rpc, &fresh->tx);
    prepare_arg_t arg = {r, fresh->tx.submit_hash};
    int again = 0;
    tm_live_t *l = NULL;
    tm_found_t f =
        tm_engine_find_or_insert(e, r->gid, &l, fresh, err, sizeof(err));
    if (f == FOUND_NONE)
        prepare_new(fresh, rq->rpc, r);
    else if (f == FOUND_LIVE)
        again = tm_engine_act_on_live(l, rq, prepare_existing, &arg);
    else if (f == FOUND_STORED || f == FOUND_ELSEWHERE)
        tm_engine_prepare_message_stored(e, rq->rpc, r->gid, arg.hash);
    else if (f == FOUND_ERROR)
        tm_engine_fail_storage(e, rq->rpc, err);
    else
        tm_engine_fail_not_admitted(e, rq->rpc, f);
    tm_live_unref(fresh);
    return again;
}

/* ---- Submit of a message ------------------------------------------------ */

int tm_engine_submit_message(tm_live_t *l, tm_rpc_t *rpc,
                             const Trellis__V1__SubmitRequest *r, int wait)
{
    tm_trans_t *tx = &l->tx;
    if (!tm_plan_is_message(tx))
        return 0;
    if (r->n_steps > 0) {
        tm_engine_fail(l->eng, rpc, TM_CODE_INVALID_ARGUMENT,
                       "transaction %s is a message: its steps were given "
                       "to PrepareMessage; Submit it with none",
                       tx->gid);
        return 1;
    }
    if (tx->status != TM_TX_PREPARED) {
        /* Submitted already (a repeat, or the back-check found the
         * commit), or dropped: the answer says which. */
        if (wait && !tm_tx_is_final(tx->status))
            tm_wait_add_or_answer(l, rpc, TM_WAIT_SUBMIT);
        else
            tm_engine_answer_status(l->eng, rpc, TM_ANSWER_SUBMIT, tx->gid,
                                    tx->status, tx->reason);
        return 1;
    }
    decide_to_deliver(l);
    tm_log(TM_LOG_DEBUG, "event=msg_submitted gid=%s", tx->gid);
    if (wait)
        tm_wait_add(l, rpc, TM_WAIT_SUBMIT);
    tm_engine_persist(l, 0, wait ? NULL : rpc, TM_ANSWER_SUBMIT);
    return 1;
}

/* ---- topics ------------------------------------------------------------- */

void tm_engine_subscribe(tm_engine_t *e, tm_rpc_t *rpc,
                         const Trellis__V1__SubscribeRequest *r)
{
    char err[512];
    int rc = e->env.store_subscribe(e->env.store, r->topic, r->target,
                                    r->remark ? r->remark : "",
                                    tm_engine_wall(e), err, sizeof(err));
    if (rc < 0) {
        tm_engine_fail_storage(e, rpc, err);
        return;
    }
    if (rc == 1)
        tm_log(TM_LOG_INFO, "event=subscribed topic=%s target=%s", r->topic,
               r->target);
    tm_answer_t a = {
        .code = TM_CODE_OK, .kind = TM_ANSWER_SUBSCRIBE, .created = rc == 1};
    tm_engine_answer(e, rpc, &a);
}

void tm_engine_unsubscribe(tm_engine_t *e, tm_rpc_t *rpc,
                           const Trellis__V1__UnsubscribeRequest *r)
{
    char err[512];
    int rc = e->env.store_unsubscribe(e->env.store, r->topic, r->target, err,
                                      sizeof(err));
    if (rc < 0) {
        tm_engine_fail_storage(e, rpc, err);
        return;
    }
    if (rc == 0) {
        tm_engine_fail(e, rpc, TM_CODE_NOT_FOUND,
                       "%s is not subscribed to topic %s", r->target, r->topic);
        return;
    }
    tm_log(TM_LOG_INFO, "event=unsubscribed topic=%s target=%s", r->topic,
           r->target);
    tm_answer_t a = {.code = TM_CODE_OK, .kind = TM_ANSWER_UNSUBSCRIBE};
    tm_engine_answer(e, rpc, &a);
}

void tm_engine_list_subscriptions(tm_engine_t *e, tm_rpc_t *rpc,
                                  const char *topic)
{
    char err[512];
    tm_subscription_t *subs = NULL;
    size_t n = 0;
    if (e->env.store_subscriptions(e->env.store, topic, &subs, &n, err,
                                   sizeof(err)) != 0) {
        tm_engine_fail_storage(e, rpc, err);
        return;
    }
    tm_answer_t a = {.code = TM_CODE_OK,
                     .kind = TM_ANSWER_SUBSCRIPTIONS,
                     .subs = subs,
                     .n_subs = n};
    tm_engine_answer(e, rpc, &a);
    tm_subscriptions_free(subs, n);
}

void tm_engine_delete_topic(tm_engine_t *e, tm_rpc_t *rpc, const char *topic)
{
    char err[512];
    tm_subscription_t *subs = NULL;
    size_t n = 0;
    if (e->env.store_subscriptions(e->env.store, topic, &subs, &n, err,
                                   sizeof(err)) != 0) {
        tm_engine_fail_storage(e, rpc, err);
        return;
    }
    if (n == 0) {
        tm_engine_fail(e, rpc, TM_CODE_NOT_FOUND, "topic %s has no subscriber",
                       topic);
        return;
    }
    int rc = 1;
    for (size_t i = 0; i < n && rc >= 0; i++)
        rc = e->env.store_unsubscribe(e->env.store, topic, subs[i].target, err,
                                      sizeof(err));
    tm_subscriptions_free(subs, n);
    if (rc < 0) {
        tm_engine_fail_storage(e, rpc, err);
        return;
    }
    tm_log(TM_LOG_INFO, "event=topic_deleted topic=%s subscribers=%zu", topic,
           n);
    tm_answer_t a = {.code = TM_CODE_OK, .kind = TM_ANSWER_UNSUBSCRIBE};
    tm_engine_answer(e, rpc, &a);
}
