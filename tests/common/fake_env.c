/*
 * fake_env: the hand-stepped environment of the engine's unit tests (see
 * fake_env.h) — its store, caller, timers, clock and front, and the
 * delivery of requests as tm_api makes it. The parts the simulator's
 * fakes share come from fake_kit.
 */
#include "fake_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_kit.h"

/* ---- the fake world ------------------------------------------------------ */

typedef struct {
    char gid[TM_GID_MAX + 1];
    tm_write_t **writes; /* committed, in order */
    size_t n;
} row_t;

typedef struct {
    char gid[TM_GID_MAX + 1];
    char branch[16];
    char op[16];
    uint8_t *log; /* the compensation log it was sent (owned), or NULL */
    size_t log_len;
    char log_size[24]; /* its full size, when sent; else "" */
    uint8_t *payload;  /* the request bytes it was sent (owned), or NULL */
    size_t payload_len;
    tm_call_done_fn done;
    void *arg;
    int answered;
} call_t;

typedef struct {
    tm_engine_t *e;
    int64_t now;
    fkit_queue_t queue; /* queued, not committed */
    row_t rows[16];
    size_t n_rows;
    call_t calls[64];
    size_t n_calls;
    fkit_timers_t timers; /* armed */
    fenv_rpc_t *rpcs;
    unsigned refuse_calls;  /* the next so many calls cannot be started */
    int lease_lapsed;       /* the store's lease_ok answers 0 */
    fkit_topics_t topics;   /* the store's subscriptions */
    unsigned refuse_topics; /* the next so many topics calls fail */
    tm_engine_env_t env;    /* what the engine was given */
} world_t;

static world_t W;

tm_engine_t *fenv_engine(void)
{
    return W.e;
}

int64_t fenv_now(void)
{
    return W.now;
}

/* ---- the store ---- */

static row_t *row_find(const char *gid)
{
    for (size_t i = 0; i < W.n_rows; i++)
        if (strcmp(W.rows[i].gid, gid) == 0)
            return &W.rows[i];
    return NULL;
}

void fenv_store_write(tm_write_t *w)
{
    row_t *r = row_find(w->gid);
    if (!r) {
        assert_true(W.n_rows < sizeof(W.rows) / sizeof(W.rows[0]));
        r = &W.rows[W.n_rows++];
        snprintf(r->gid, sizeof(r->gid), "%s", w->gid);
    }
    r->writes = realloc(r->writes, (r->n + 1) * sizeof(*r->writes));
    assert_non_null(r->writes);
    r->writes[r->n++] = w;
}

static void fake_queue(void *self, tm_write_t *w, tm_store_done_fn done,
                       void *arg)
{
    (void)self;
    fkit_queue_push(&W.queue, w, done, arg);
}

size_t fenv_queued(void)
{
    return W.queue.n;
}

const tm_write_t *fenv_next_write(void)
{
    assert_non_null(W.queue.head);
    return W.queue.head;
}

void fenv_commit_next(tm_write_result_t result)
{
    tm_write_t *w = fkit_queue_pop(&W.queue);
    assert_non_null(w);
    w->result = result;
    tm_store_done_fn done = w->done;
    void *arg = w->arg;
    if (result == TM_WRITE_DONE)
        fenv_store_write(w);
    else
        tm_write_free(w);
    done(arg, result);
}

void fenv_commit_all(void)
{
    while (W.queue.head)
        fenv_commit_next(TM_WRITE_DONE);
}

static int fake_get(void *self, const char *gid, tm_trans_t **out, char *err,
                    size_t errlen)
{
    (void)self;
    (void)err;
    (void)errlen;
    const row_t *r = row_find(gid);
    if (!r)
        return 0;
    *out = fkit_row_read(gid, r->writes, r->n);
    return 1;
}

static int fake_peek(void *self, const char *gid, tm_tx_status_t *status,
                     uint64_t *submit_hash, char *err, size_t errlen)
{
    (void)self;
    (void)err;
    (void)errlen;
    const row_t *r = row_find(gid);
    if (!r)
        return 0;
    const tm_write_t *last = r->writes[r->n - 1];
    *status = (tm_tx_status_t)last->status;
    *submit_hash = last->submit_hash;
    return 1;
}

static long fake_load(void *self, tm_store_each_fn fn, void *arg, char *err,
                      size_t errlen)
{
    (void)self;
    (void)fn;
    (void)arg;
    (void)err;
    (void)errlen;
    return 0;
}

static int fake_healthy(void *self, char *why, size_t len)
{
    (void)self;
    (void)why;
    (void)len;
    return 1;
}

static int fake_lease_ok(void *self)
{
    (void)self;
    return !W.lease_lapsed;
}

void fenv_set_lease_ok(int ok)
{
    W.lease_lapsed = !ok;
}

/* A topics call the test made fail (fenv_refuse_topics): 1 with err. */
static int topics_refused(char *err, size_t errlen)
{
    if (!W.refuse_topics)
        return 0;
    W.refuse_topics--;
    snprintf(err, errlen, "fake: the store refuses topics");
    return 1;
}

static int fake_subscribe(void *self, const char *topic, const char *target,
                          const char *remark, int64_t now_ms, char *err,
                          size_t errlen)
{
    (void)self;
    if (topics_refused(err, errlen))
        return -1;
    return fkit_topics_subscribe(&W.topics, topic, target, remark, now_ms);
}

static int fake_unsubscribe(void *self, const char *topic, const char *target,
                            char *err, size_t errlen)
{
    (void)self;
    if (topics_refused(err, errlen))
        return -1;
    return fkit_topics_unsubscribe(&W.topics, topic, target);
}

static int fake_subscriptions(void *self, const char *topic,
                              tm_subscription_t **out, size_t *n, char *err,
                              size_t errlen)
{
    (void)self;
    *out = NULL;
    *n = 0;
    if (topics_refused(err, errlen))
        return -1;
    fkit_topics_list(&W.topics, topic, out, n);
    return 0;
}

void fenv_refuse_topics(unsigned n)
{
    W.refuse_topics = n;
}

const tm_engine_env_t *fenv_env(void)
{
    return &W.env;
}

static const char *fake_kind(void *self)
{
    (void)self;
    return "fake";
}

static void fake_ownership(void *self, const tm_store_owner_hooks_t *h)
{
    (void)self;
    (void)h;
}

/* ---- calls ---- */

/* Keep the compensation log metadata the call carried (tm_call.h). */
static void record_action_log(call_t *c, const tm_md_t *md, size_t n_md)
{
    const tm_md_t *log = fkit_md_find(md, n_md, TM_ACTION_LOG_KEY);
    if (log) {
        assert_true(log->value_len > 0); /* binary, never a C string */
        c->log = fkit_must(malloc(log->value_len));
        memcpy(c->log, log->value, log->value_len);
        c->log_len = log->value_len;
    }
    snprintf(c->log_size, sizeof(c->log_size), "%s",
             fkit_md_value(md, n_md, TM_ACTION_LOG_SIZE_KEY));
}

static int fake_call(void *self, const char *host_port, const char *method,
                     const uint8_t *payload, size_t len, const tm_md_t *md,
                     size_t n_md, uint32_t timeout_ms, tm_call_done_fn done,
                     void *arg, char *err, size_t errlen)
{
    (void)self;
    (void)host_port;
    (void)method;
    (void)timeout_ms;
    if (W.refuse_calls) { /* no channel: the engine applies it as UNKNOWN */
        W.refuse_calls--;
        snprintf(err, errlen, "fake: no channel");
        return -1;
    }
    assert_true(W.n_calls < sizeof(W.calls) / sizeof(W.calls[0]));
    call_t *c = &W.calls[W.n_calls++];
    memset(c, 0, sizeof(*c));
    snprintf(c->gid, sizeof(c->gid), "%s", fkit_md_value(md, n_md, "dtm-gid"));
    snprintf(c->branch, sizeof(c->branch), "%s",
             fkit_md_value(md, n_md, "dtm-branch_id"));
    snprintf(c->op, sizeof(c->op), "%s", fkit_md_value(md, n_md, "dtm-op"));
    record_action_log(c, md, n_md);
    if (len) {
        c->payload = fkit_must(malloc(len));
        memcpy(c->payload, payload, len);
        c->payload_len = len;
    }
    c->done = done;
    c->arg = arg;
    return 0;
}

size_t fenv_calls_started(void)
{
    return W.n_calls;
}

size_t fenv_calls_open(void)
{
    size_t n = 0;
    for (size_t i = 0; i < W.n_calls; i++)
        n += !W.calls[i].answered;
    return n;
}

void fenv_answer_call_with(size_t i, int status, const void *reply, size_t len)
{
    assert_true(i < W.n_calls);
    call_t *c = &W.calls[i];
    assert_false(c->answered);
    c->answered = 1;
    tm_call_done_fn done = c->done;
    void *arg = c->arg;
    done(arg, status, status ? "fake participant says no" : NULL, reply, len);
}

void fenv_answer_call(size_t i, int status)
{
    fenv_answer_call_with(i, status, NULL, 0);
}

const uint8_t *fenv_call_payload(size_t i, size_t *len)
{
    assert_true(i < W.n_calls);
    *len = W.calls[i].payload_len;
    return W.calls[i].payload;
}

const uint8_t *fenv_call_action_log(size_t i, size_t *len,
                                    const char **full_size)
{
    assert_true(i < W.n_calls);
    *len = W.calls[i].log_len;
    if (full_size)
        *full_size = W.calls[i].log_size;
    return W.calls[i].log;
}

void fenv_assert_call(size_t i, const char *gid, const char *branch,
                      const char *op)
{
    assert_true(i < W.n_calls);
    assert_string_equal(W.calls[i].gid, gid);
    assert_string_equal(W.calls[i].branch, branch);
    assert_string_equal(W.calls[i].op, op);
}

void fenv_refuse_calls(unsigned n)
{
    W.refuse_calls = n;
}

/* ---- timers and clock ---- */

static int fake_arm(void *self, tm_timer_node_t *node, int64_t due_ms)
{
    (void)self;
    return fkit_timers_arm(&W.timers, node, due_ms, 0, 0);
}

static int fake_disarm(void *self, tm_timer_node_t *node)
{
    (void)self;
    return fkit_timers_disarm(&W.timers, node);
}

size_t fenv_timers_armed(void)
{
    return W.timers.n;
}

int64_t fenv_timer_due(size_t i)
{
    assert_true(i < W.timers.n);
    return W.timers.nodes[i]->due_ms;
}

/* The armed timer due first (first 1) or last (first 0). */
static int timer_at_end(int first)
{
    assert_true(W.timers.n >= 1);
    size_t pick = 0;
    for (size_t i = 1; i < W.timers.n; i++) {
        int64_t d = W.timers.nodes[i]->due_ms, p = W.timers.nodes[pick]->due_ms;
        if (first ? d < p : d > p)
            pick = i;
    }
    return (int)pick;
}

int fenv_timer_first(void)
{
    return timer_at_end(1);
}

int fenv_timer_last(void)
{
    return timer_at_end(0);
}

int fenv_timer_at(int64_t due_ms)
{
    for (size_t i = 0; i < W.timers.n; i++)
        if (W.timers.nodes[i]->due_ms == due_ms)
            return (int)i;
    return -1;
}

void fenv_fire_timer(int i)
{
    assert_true(i >= 0 && (size_t)i < W.timers.n);
    tm_timer_node_t *node = W.timers.nodes[i];
    fkit_timers_remove_at(&W.timers, (size_t)i);
    if (node->due_ms > W.now)
        W.now = node->due_ms;
    node->fn(node);
}

static int64_t fake_clock(void *self)
{
    (void)self;
    return W.now;
}

/* ---- the front ---- */

static void front_answer(void *user, tm_rpc_t *rpc, const tm_answer_t *a)
{
    (void)user;
    fenv_rpc_t *r = (fenv_rpc_t *)rpc;
    r->answers++;
    r->code = a->code;
    snprintf(r->message, sizeof(r->message), "%s",
             a->message ? a->message : "");
    if (a->code != TM_CODE_OK)
        return;
    r->status = a->status;
    snprintf(r->reason, sizeof(r->reason), "%s", a->reason ? a->reason : "");
    if (a->kind != TM_ANSWER_QUERY && a->kind != TM_ANSWER_START_WORKFLOW)
        return;
    r->created = a->created;
    const tm_trans_t *tx = a->trans;
    r->status = tx->status;
    snprintf(r->reason, sizeof(r->reason), "%s", tx->reason ? tx->reason : "");
    r->n_branches = tx->n_branches;
    for (size_t b = 0; b < tx->n_branches && b < FENV_MAX_BR; b++)
        for (int s = 0; s < TM_SLOTS; s++) {
            r->attempts[b][s] = tx->branches[b].ops[s].attempts;
            r->op_status[b][s] = tx->branches[b].ops[s].status;
        }
}

static void front_drop(void *user, tm_rpc_t *rpc)
{
    (void)user;
    ((fenv_rpc_t *)rpc)->answers++;
}

static int front_expired(void *user, const tm_rpc_t *rpc)
{
    (void)user;
    (void)rpc;
    return 0;
}

/* ---- requests, as tm_api hands them to the engine ---- */

static void dispatch(tm_rpc_t *rpc, const uint8_t *bytes, size_t len,
                     void *user);

/* Decode, validate and hand over one request; TM_ENGINE_AGAIN or 0. */
static int act(fenv_rpc_t *r, const uint8_t *bytes, size_t len)
{
    char err[512];
    tm_engine_req_t rq = {(tm_rpc_t *)r, bytes, len, dispatch, NULL};
    int rc = engine_call(W.e, r->method, &rq, err, sizeof(err));
    if (rc < 0)
        fail_msg("the test sent a request the engine refuses: %s", err);
    return rc;
}

/* tm_engine_redo_fn, and the first delivery of every request. */
static void dispatch(tm_rpc_t *rpc, const uint8_t *bytes, size_t len,
                     void *user)
{
    (void)user;
    while (act((fenv_rpc_t *)rpc, bytes, len) == TM_ENGINE_AGAIN) {
    }
}

static fenv_rpc_t *new_rpc(engine_call_method_t method, const void *bytes,
                           size_t len)
{
    fenv_rpc_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->method = method;
    r->bytes = malloc(len ? len : 1);
    assert_non_null(r->bytes);
    memcpy(r->bytes, bytes, len);
    r->len = len;
    r->next_all = W.rpcs;
    W.rpcs = r;
    return r;
}

fenv_rpc_t *fenv_send(engine_call_method_t method, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *bytes = malloc(len ? len : 1);
    assert_non_null(bytes);
    protobuf_c_message_pack(m, bytes);
    fenv_rpc_t *r = new_rpc(method, bytes, len);
    free(bytes);
    dispatch((tm_rpc_t *)r, r->bytes, r->len, NULL);
    return r;
}

fenv_rpc_t *fenv_send_query(const char *gid)
{
    fenv_rpc_t *r = new_rpc(ENGINE_CALL_QUERY, gid, strlen(gid) + 1);
    dispatch((tm_rpc_t *)r, r->bytes, r->len, NULL);
    return r;
}

void fenv_assert_answer(const fenv_rpc_t *r, tm_code_t code,
                        tm_tx_status_t status)
{
    assert_int_equal(r->answers, 1);
    assert_int_equal(r->code, code);
    if (code == TM_CODE_OK)
        assert_int_equal(r->status, status);
}

void fenv_assert_unanswered(const fenv_rpc_t *r)
{
    assert_int_equal(r->answers, 0);
}

/* ---- open and close ---- */

void fenv_open(const tm_engine_config_t *cfg)
{
    memset(&W, 0, sizeof(W));
    W.now = 1000000; /* not 0: born_mono 0 would mean "loaded from store" */
    W.env = (tm_engine_env_t){
        .store = &W,
        .store_queue = fake_queue,
        .store_get = fake_get,
        .store_peek = fake_peek,
        .store_list = fkit_store_list_none,
        .store_load_unfinished = fake_load,
        .store_healthy = fake_healthy,
        .store_subscribe = fake_subscribe,
        .store_unsubscribe = fake_unsubscribe,
        .store_subscriptions = fake_subscriptions,
        .store_lease_ok = fake_lease_ok,
        .store_kind_name = fake_kind,
        .store_start_ownership = fake_ownership,
        .caller = &W,
        .call_start = fake_call,
        .timers = &W,
        .timer_arm = fake_arm,
        .timer_disarm = fake_disarm,
        .clock = &W,
        .mono_ms = fake_clock,
        .wall_ms = fake_clock,
    };
    tm_engine_front_t front = {front_answer,  front_drop, fkit_front_watch_none,
                               front_expired, &W,         NULL};
    char err[256];
    assert_int_equal(tm_engine_new(cfg, &W.env, &front, &W.e, err, sizeof(err)),
                     0);
}

int fenv_setup_local(void **state)
{
    (void)state;
    tm_engine_config_t cfg;
    tm_engine_config_default(&cfg);
    cfg.retry_interval_ms = 100;
    cfg.max_backoff_ms = 1000;
    assert_int_equal(tm_allow_parse(&cfg.limits.allow, "127.0.0.1:*", NULL, 0),
                     0);
    fenv_open(&cfg);
    return 0;
}

int fenv_teardown(void **state)
{
    (void)state;
    fenv_close();
    return 0;
}

void fenv_close(void)
{
    assert_null(W.queue.head);
    assert_int_equal(fenv_calls_open(), 0);
    assert_int_equal(W.timers.n, 0);
    assert_int_equal(tm_engine_live_count(W.e), 0);
    assert_int_equal(tm_engine_waiters(W.e), 0);
    tm_engine_free(W.e);
    for (size_t i = 0; i < W.n_calls; i++) {
        free(W.calls[i].log);
        free(W.calls[i].payload);
    }
    while (W.rpcs) {
        fenv_rpc_t *r = W.rpcs;
        W.rpcs = r->next_all;
        assert_int_equal(r->answers, 1);
        free(r->bytes);
        free(r);
    }
    for (size_t i = 0; i < W.n_rows; i++) {
        for (size_t k = 0; k < W.rows[i].n; k++)
            tm_write_free(W.rows[i].writes[k]);
        free(W.rows[i].writes);
    }
    fkit_timers_free(&W.timers);
    fkit_topics_free(&W.topics);
}
