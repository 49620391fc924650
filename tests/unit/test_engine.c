/*
 * Unit tests of the engine core (tm_engine.h, library trellis_tm_core)
 * against a fake environment stepped by hand, one event at a time: the
 * orderings of issue 13 — EXISTS and LOST refusals, late results, timeouts
 * racing submits — plus retries and duplicates while a write is pending.
 *
 * The fakes (no threads, nothing happens unless the test says so):
 *  - the store keeps queued writes until the test commits the oldest with
 *    the result it chooses (commit_next); a DONE write joins its gid's
 *    stored row, which store_get/peek read back as the real stores do;
 *  - the caller records started calls until the test answers one;
 *  - the timers record armed nodes until the test fires one (the clock
 *    moves to its due time first);
 *  - the clock is a variable (monotonic and wall alike);
 *  - the front records the answers of each request object (rpc_t).
 *
 * Ownership: every write, call context and request is freed by the end of
 * each test (teardown checks that nothing is left queued, on the wire or
 * armed, and that every request was answered exactly once), so the
 * sanitizer build's LeakSanitizer stays clean.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine_call.h"
#include "tm_engine.h"
#include "tm_log.h"
#include "tm_request.h"
#include "tm_store_impl.h"
#include "tm_validate.h"

#define ACTION "127.0.0.1:1/t.P/Action"
#define COMPENSATE "127.0.0.1:1/t.P/Compensate"
#define CONFIRM "127.0.0.1:1/t.P/Confirm"
#define CANCEL "127.0.0.1:1/t.P/Cancel"

/* gRPC status codes the fake participants answer with. */
enum { ST_OK = 0, ST_ABORTED = 10, ST_UNAVAILABLE = 14 };

/* ---- the fake world ------------------------------------------------------ */

enum {
    M_BEGIN = ENGINE_CALL_BEGIN,
    M_REGISTER = ENGINE_CALL_REGISTER,
    M_SUBMIT = ENGINE_CALL_SUBMIT,
    M_ABORT = ENGINE_CALL_ABORT,
    M_QUERY = ENGINE_CALL_QUERY,
    M_FORCE_STOP = ENGINE_CALL_FORCE_STOP
};

#define MAX_BR 4

/* One request and everything the front was told about it. */
typedef struct rpc {
    struct rpc *next_all; /* every request of the test, freed at teardown */
    int method;
    uint8_t *bytes;
    size_t len;
    int answers; /* answered or dropped, counted: must end at 1 */
    tm_code_t code;
    tm_tx_status_t status; /* the answer's, or the queried transaction's */
    char message[1024];
    char reason[512];
    /* Query: the transaction's branches, per slot. */
    size_t n_branches;
    uint32_t attempts[MAX_BR][TM_SLOTS];
    tm_op_status_t op_status[MAX_BR][TM_SLOTS];
} rpc_t;

typedef struct {
    char gid[TM_GID_MAX + 1];
    tm_write_t **writes; /* committed, in order */
    size_t n;
} row_t;

typedef struct {
    char gid[TM_GID_MAX + 1];
    char branch[16];
    char op[16];
    tm_call_done_fn done;
    void *arg;
    int answered;
} call_t;

typedef struct {
    tm_engine_t *e;
    int64_t now;
    tm_write_t *head, *tail; /* queued, not committed */
    size_t queued;
    size_t commits; /* writes committed DONE */
    row_t rows[16];
    size_t n_rows;
    call_t calls[64];
    size_t n_calls;
    tm_timer_node_t *timers[64]; /* armed */
    size_t n_timers;
    rpc_t *rpcs;
    unsigned refuse_calls; /* the next so many calls cannot be started */
} world_t;

static world_t W;

/* ---- the store ---- */

static row_t *row_find(const char *gid)
{
    for (size_t i = 0; i < W.n_rows; i++)
        if (strcmp(W.rows[i].gid, gid) == 0)
            return &W.rows[i];
    return NULL;
}

static void row_keep(tm_write_t *w)
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
    w->done = done;
    w->arg = arg;
    w->next = NULL;
    if (W.tail)
        W.tail->next = w;
    else
        W.head = w;
    W.tail = w;
    W.queued++;
}

/* The oldest queued write (for a look before it commits). */
static const tm_write_t *next_write(void)
{
    assert_non_null(W.head);
    return W.head;
}

/* Commit the oldest queued write with result, then run its callback (as
 * the store thread does); writes the callback queues wait their turn. */
static void commit_next(tm_write_result_t result)
{
    tm_write_t *w = W.head;
    assert_non_null(w);
    W.head = w->next;
    if (!W.head)
        W.tail = NULL;
    W.queued--;
    w->next = NULL;
    w->result = result;
    tm_store_done_fn done = w->done;
    void *arg = w->arg;
    if (result == TM_WRITE_DONE) {
        row_keep(w);
        W.commits++;
    } else {
        tm_write_free(w);
    }
    done(arg, result);
}

/* Commit every queued write DONE, including those their callbacks queue. */
static void commit_all(void)
{
    while (W.head)
        commit_next(TM_WRITE_DONE);
}

/* A stored row read back into the model, as a store's read decodes it. */
static void apply_write(tm_trans_t *tx, const tm_write_t *w)
{
    tx->status = (tm_tx_status_t)w->status;
    tx->updated_ms = w->updated_ms;
    tx->finished_ms = w->finished_ms;
    tx->submit_hash = w->submit_hash;
    tm_set_string(&tx->reason, w->reason);
    if (w->insert) {
        tx->created_ms = w->created_ms;
        tm_store_decode_options(tx, w->options, w->options_len);
    }
    for (size_t k = 0; k < w->n_branches; k++) {
        const tm_w_branch_t *wb = &w->branches[k];
        while (tx->n_branches <= wb->idx)
            assert_non_null(tm_trans_add_branch(tx));
        tm_branch_t *b = &tx->branches[wb->idx];
        b->branch_id = tm_strdup(wb->branch_id);
        b->mode = (tm_mode_t)wb->mode;
        b->initiator_driven = wb->initiator_driven;
        if (wb->payload_len) {
            b->payload = malloc(wb->payload_len);
            assert_non_null(b->payload);
            memcpy(b->payload, wb->payload, wb->payload_len);
        }
        b->payload_len = wb->payload_len;
        b->deps = tm_store_split_u32(wb->deps, &b->n_deps);
        for (int s = 0; s < TM_SLOTS; s++) {
            b->ops[s].kind = (tm_op_kind_t)wb->kind[s];
            b->ops[s].target = tm_strdup(wb->target[s]);
            b->ops[s].status = wb->kind[s] ? TM_OP_PENDING : 0;
        }
    }
    for (size_t k = 0; k < w->n_ops; k++) {
        const tm_w_op_t *o = &w->ops[k];
        tm_op_t *op = &tx->branches[o->branch].ops[o->slot];
        op->status = (tm_op_status_t)o->status;
        op->attempts = o->attempts;
        op->finished_ms = o->finished_ms;
        op->late = o->late;
        tm_set_string(&op->last_error, o->last_error);
        free(op->attempt_ms);
        op->attempt_ms = tm_store_split_i64(o->attempt_ms, &op->n_attempt_ms);
    }
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
    tm_trans_t *tx = tm_trans_new(gid, TM_TX_PREPARED, 0);
    assert_non_null(tx);
    for (size_t i = 0; i < r->n; i++)
        apply_write(tx, r->writes[i]);
    tm_store_mark_skipped_if_finished(tx);
    *out = tx;
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

static int fake_list(void *self, const tm_store_filter_t *f, tm_trans_t ***out,
                     size_t *n, char *err, size_t errlen)
{
    (void)self;
    (void)f;
    (void)err;
    (void)errlen;
    *out = NULL;
    *n = 0;
    return 0;
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
    return 1;
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

static const char *md_value(const tm_md_t *md, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(md[i].key, key) == 0)
            return md[i].value;
    return "";
}

static int fake_call(void *self, const char *host_port, const char *method,
                     const uint8_t *payload, size_t len, const tm_md_t *md,
                     size_t n_md, uint32_t timeout_ms, tm_call_done_fn done,
                     void *arg, char *err, size_t errlen)
{
    (void)self;
    (void)host_port;
    (void)method;
    (void)payload;
    (void)len;
    (void)timeout_ms;
    if (W.refuse_calls) { /* no channel: the engine applies it as UNKNOWN */
        W.refuse_calls--;
        snprintf(err, errlen, "fake: no channel");
        return -1;
    }
    assert_true(W.n_calls < sizeof(W.calls) / sizeof(W.calls[0]));
    call_t *c = &W.calls[W.n_calls++];
    memset(c, 0, sizeof(*c));
    snprintf(c->gid, sizeof(c->gid), "%s", md_value(md, n_md, "dtm-gid"));
    snprintf(c->branch, sizeof(c->branch), "%s",
             md_value(md, n_md, "dtm-branch_id"));
    snprintf(c->op, sizeof(c->op), "%s", md_value(md, n_md, "dtm-op"));
    c->done = done;
    c->arg = arg;
    return 0;
}

/* Calls started so far (answered or not). */
static size_t calls_started(void)
{
    return W.n_calls;
}

static size_t calls_open(void)
{
    size_t n = 0;
    for (size_t i = 0; i < W.n_calls; i++)
        n += !W.calls[i].answered;
    return n;
}

/* Answer call i (in start order) with a gRPC status. */
static void answer_call(size_t i, int status)
{
    assert_true(i < W.n_calls);
    call_t *c = &W.calls[i];
    assert_false(c->answered);
    c->answered = 1;
    tm_call_done_fn done = c->done;
    void *arg = c->arg;
    done(arg, status, status ? "fake participant says no" : NULL);
}

static void assert_call(size_t i, const char *gid, const char *branch,
                        const char *op)
{
    assert_true(i < W.n_calls);
    assert_string_equal(W.calls[i].gid, gid);
    assert_string_equal(W.calls[i].branch, branch);
    assert_string_equal(W.calls[i].op, op);
}

/* ---- timers and clock ---- */

static int fake_arm(void *self, tm_timer_node_t *node, int64_t due_ms)
{
    (void)self;
    node->due_ms = due_ms;
    if (node->heap_index)
        return 0;
    assert_true(W.n_timers < sizeof(W.timers) / sizeof(W.timers[0]));
    W.timers[W.n_timers++] = node;
    node->heap_index = W.n_timers;
    return 1;
}

static void timer_remove(size_t i)
{
    W.timers[i]->heap_index = 0;
    W.timers[i] = W.timers[--W.n_timers];
    if (i < W.n_timers)
        W.timers[i]->heap_index = i + 1;
}

static int fake_disarm(void *self, tm_timer_node_t *node)
{
    (void)self;
    if (!node->heap_index)
        return 0;
    timer_remove(node->heap_index - 1);
    return 1;
}

/* The armed timer due at due_ms, or -1. */
static int timer_at(int64_t due_ms)
{
    for (size_t i = 0; i < W.n_timers; i++)
        if (W.timers[i]->due_ms == due_ms)
            return (int)i;
    return -1;
}

/* Move the clock to timer i's due time and fire it. */
static void fire_timer(int i)
{
    assert_true(i >= 0 && (size_t)i < W.n_timers);
    tm_timer_node_t *node = W.timers[i];
    timer_remove((size_t)i);
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
    rpc_t *r = (rpc_t *)rpc;
    r->answers++;
    r->code = a->code;
    snprintf(r->message, sizeof(r->message), "%s",
             a->message ? a->message : "");
    if (a->code != TM_CODE_OK)
        return;
    r->status = a->status;
    snprintf(r->reason, sizeof(r->reason), "%s", a->reason ? a->reason : "");
    if (a->kind != TM_ANSWER_QUERY)
        return;
    const tm_trans_t *tx = a->trans;
    r->status = tx->status;
    snprintf(r->reason, sizeof(r->reason), "%s", tx->reason ? tx->reason : "");
    r->n_branches = tx->n_branches;
    for (size_t b = 0; b < tx->n_branches && b < MAX_BR; b++)
        for (int s = 0; s < TM_SLOTS; s++) {
            r->attempts[b][s] = tx->branches[b].ops[s].attempts;
            r->op_status[b][s] = tx->branches[b].ops[s].status;
        }
}

static void front_drop(void *user, tm_rpc_t *rpc)
{
    (void)user;
    ((rpc_t *)rpc)->answers++;
}

static int front_watch(void *user, tm_rpc_t *rpc, tm_engine_cancel_fn fn,
                       void *fn_user, const char *key, char *err, size_t errlen)
{
    (void)user;
    (void)rpc;
    (void)fn;
    (void)fn_user;
    (void)key;
    (void)err;
    (void)errlen;
    return 0;
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
static int act(rpc_t *r, const uint8_t *bytes, size_t len)
{
    char err[512];
    tm_engine_req_t rq = {(tm_rpc_t *)r, bytes, len, dispatch, NULL};
    int rc = engine_call(W.e, (engine_call_method_t)r->method, &rq, err,
                         sizeof(err));
    if (rc < 0)
        fail_msg("the test sent a request the engine refuses: %s", err);
    return rc;
}

/* tm_engine_redo_fn, and the first delivery of every request. */
static void dispatch(tm_rpc_t *rpc, const uint8_t *bytes, size_t len,
                     void *user)
{
    (void)user;
    while (act((rpc_t *)rpc, bytes, len) == TM_ENGINE_AGAIN) {
    }
}

static rpc_t *new_rpc(int method, const void *bytes, size_t len)
{
    rpc_t *r = calloc(1, sizeof(*r));
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

static rpc_t *send_msg(int method, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *bytes = malloc(len ? len : 1);
    assert_non_null(bytes);
    protobuf_c_message_pack(m, bytes);
    rpc_t *r = new_rpc(method, bytes, len);
    free(bytes);
    dispatch((tm_rpc_t *)r, r->bytes, r->len, NULL);
    return r;
}

/* A saga Submit's content; what a test varies. */
typedef struct {
    int n_steps; /* 0: submit a begun transaction */
    int concurrent;
    int wait;
    int no_compensate;
    uint32_t timeout_ms;
    uint32_t retry_interval_ms;
    uint32_t retry_limit;
    const char *payload; /* NULL: "p" */
} saga_t;

/* Fill r (and the arrays it points to) from s. */
static void build_submit(Trellis__V1__SubmitRequest *r,
                         Trellis__V1__TransOptions *o,
                         Trellis__V1__SagaStep *st, Trellis__V1__SagaStep **sp,
                         const char *gid, const saga_t *s)
{
    const char *payload = s->payload ? s->payload : "p";
    trellis__v1__submit_request__init(r);
    trellis__v1__trans_options__init(o);
    for (int i = 0; i < s->n_steps; i++) {
        trellis__v1__saga_step__init(&st[i]);
        st[i].action = ACTION;
        st[i].compensate = s->no_compensate ? "" : COMPENSATE;
        st[i].payload.data = (uint8_t *)payload;
        st[i].payload.len = strlen(payload);
        sp[i] = &st[i];
    }
    o->wait_result = s->wait;
    o->timeout_to_fail_ms = s->timeout_ms;
    o->retry_interval_ms = s->retry_interval_ms;
    o->retry_limit = s->retry_limit;
    r->gid = (char *)gid;
    r->n_steps = (size_t)s->n_steps;
    r->steps = sp;
    r->concurrent = s->concurrent;
    r->options = o;
}

static rpc_t *send_submit(const char *gid, const saga_t *s)
{
    Trellis__V1__SubmitRequest r;
    Trellis__V1__TransOptions o;
    Trellis__V1__SagaStep st[MAX_BR], *sp[MAX_BR];
    assert_true(s->n_steps <= MAX_BR);
    build_submit(&r, &o, st, sp, gid, s);
    return send_msg(M_SUBMIT, &r.base);
}

static rpc_t *send_begin(const char *gid, uint32_t timeout_ms)
{
    Trellis__V1__BeginRequest r = TRELLIS__V1__BEGIN_REQUEST__INIT;
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.timeout_to_fail_ms = timeout_ms;
    r.gid = (char *)gid;
    r.options = &o;
    return send_msg(M_BEGIN, &r.base);
}

/* A TCC branch the initiator tries itself; the TM confirms or cancels. */
static rpc_t *send_register_tcc(const char *gid, const char *branch)
{
    Trellis__V1__RegisterBranchRequest r =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    Trellis__V1__BranchOp ops[2] = {TRELLIS__V1__BRANCH_OP__INIT,
                                    TRELLIS__V1__BRANCH_OP__INIT};
    Trellis__V1__BranchOp *op_ptrs[2] = {&ops[0], &ops[1]};
    ops[0].op = TRELLIS__V1__OP_KIND__OP_CONFIRM;
    ops[0].target = CONFIRM;
    ops[1].op = TRELLIS__V1__OP_KIND__OP_CANCEL;
    ops[1].target = CANCEL;
    r.gid = (char *)gid;
    r.branch_id = (char *)branch;
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    r.n_ops = 2;
    r.ops = op_ptrs;
    return send_msg(M_REGISTER, &r.base);
}

static rpc_t *send_force_stop(const char *gid, const char *reason)
{
    Trellis__V1__ForceStopRequest r = TRELLIS__V1__FORCE_STOP_REQUEST__INIT;
    r.gid = (char *)gid;
    r.reason = (char *)reason;
    return send_msg(M_FORCE_STOP, &r.base);
}

static rpc_t *send_query(const char *gid)
{
    rpc_t *r = new_rpc(M_QUERY, gid, strlen(gid) + 1);
    dispatch((tm_rpc_t *)r, r->bytes, r->len, NULL);
    return r;
}

/* Answered exactly once, with code (and, for OK, status). */
static void assert_answer(const rpc_t *r, tm_code_t code, tm_tx_status_t status)
{
    assert_int_equal(r->answers, 1);
    assert_int_equal(r->code, code);
    if (code == TM_CODE_OK)
        assert_int_equal(r->status, status);
}

static void assert_unanswered(const rpc_t *r)
{
    assert_int_equal(r->answers, 0);
}

/* ---- fixture ---- */

static int setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof(W));
    W.now = 1000000; /* not 0: born_mono 0 would mean "loaded from store" */
    tm_engine_config_t cfg;
    tm_engine_config_default(&cfg);
    cfg.retry_interval_ms = 100;
    cfg.max_backoff_ms = 1000;
    tm_engine_env_t env = {
        .store = &W,
        .store_queue = fake_queue,
        .store_get = fake_get,
        .store_peek = fake_peek,
        .store_list = fake_list,
        .store_load_unfinished = fake_load,
        .store_healthy = fake_healthy,
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
    tm_engine_front_t front = {front_answer, front_drop, front_watch,
                               front_expired, &W};
    char err[256];
    assert_int_equal(tm_engine_new(&cfg, &env, &front, &W.e, err, sizeof(err)),
                     0);
    return 0;
}

/* Every test ends with nothing in flight: no write queued, no call on the
 * wire, no timer armed, no transaction in memory, every request answered
 * exactly once. Then everything is freed. */
static int teardown(void **state)
{
    (void)state;
    assert_null(W.head);
    assert_int_equal(calls_open(), 0);
    assert_int_equal(W.n_timers, 0);
    assert_int_equal(tm_engine_live_count(W.e), 0);
    assert_int_equal(tm_engine_waiters(W.e), 0);
    tm_engine_free(W.e);
    while (W.rpcs) {
        rpc_t *r = W.rpcs;
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
    return 0;
}

/* ---- 1. a new saga: answered once its insert commits -------------------- */

static void test_submit_answers_after_insert(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    rpc_t *sub = send_submit("g1", &s);
    /* Write-ahead: queued, not committed, so neither answered nor called. */
    assert_unanswered(sub);
    assert_int_equal(W.queued, 1);
    assert_true(next_write()->insert);
    assert_int_equal(next_write()->status, TM_TX_SUBMITTED);
    assert_int_equal(calls_started(), 0);

    commit_next(TM_WRITE_DONE);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(calls_started(), 1);
    assert_call(0, "g1", "01", "action");

    answer_call(0, ST_OK);
    assert_int_equal(next_write()->status, TM_TX_SUCCEEDED);
    commit_all();
    assert_int_equal(tm_engine_live_count(W.e), 0);
    rpc_t *q = send_query("g1");
    assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* ---- 2. EXISTS: the gid was stored before -------------------------------- */

/* Run gid's one-step saga s to SUCCEEDED, so its row is stored and final. */
static void run_to_success(const char *gid, const saga_t *s)
{
    size_t c = calls_started();
    rpc_t *sub = send_submit(gid, s);
    commit_next(TM_WRITE_DONE);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    answer_call(c, ST_OK);
    commit_all();
    assert_int_equal(tm_engine_live_count(W.e), 0);
}

/* A finished row: the same content again is answered with its stored
 * status; different content is ALREADY_EXISTS. Neither calls anything. */
static void test_exists_final_row(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    run_to_success("g2", &s);
    size_t called = calls_started();

    rpc_t *same = send_submit("g2", &s);
    assert_unanswered(same); /* a new insert, not yet refused */
    assert_true(next_write()->insert);
    commit_next(TM_WRITE_EXISTS);
    assert_answer(same, TM_CODE_OK, TM_TX_SUCCEEDED);

    saga_t other = {.n_steps = 1, .payload = "other"};
    rpc_t *diff = send_submit("g2", &other);
    assert_unanswered(diff);
    commit_next(TM_WRITE_EXISTS);
    assert_answer(diff, TM_CODE_ALREADY_EXISTS, 0);
    assert_non_null(strstr(diff->message, "different content"));

    assert_int_equal(calls_started(), called);
    assert_null(W.head);
    assert_int_equal(tm_engine_live_count(W.e), 0);
}

/* Plant gid's row as another node stored it: submitted with s, unfinished. */
static void plant_row(const char *gid, const saga_t *s)
{
    Trellis__V1__SubmitRequest r;
    Trellis__V1__TransOptions o;
    Trellis__V1__SagaStep st[MAX_BR], *sp[MAX_BR];
    build_submit(&r, &o, st, sp, gid, s);
    tm_trans_t *tx = tm_trans_new(gid, TM_TX_SUBMITTED, W.now - 10);
    assert_non_null(tx);
    assert_int_equal(tm_options_from_proto(&tx->opts, r.options), 0);
    tx->submit_hash = tm_request_submit_hash(&r);
    char err[256];
    assert_int_equal(tm_request_add_steps(tx, &r,
                                          &tm_engine_config(W.e)->limits, err,
                                          sizeof(err)),
                     0);
    tm_write_t *w = tm_write_capture_all(tx, 1);
    assert_non_null(w);
    row_keep(w);
    tm_trans_free(tx);
}

/* An unfinished row another node drives: the same content is answered
 * with the stored status; different content sends the client to that
 * node (UNAVAILABLE), not ALREADY_EXISTS, since only the owner knows. This
 * node calls nothing and keeps nothing. */
static void test_exists_unfinished_row(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2, .wait = 1};
    plant_row("g3", &s);

    rpc_t *same = send_submit("g3", &s); /* waits for the result */
    assert_unanswered(same);
    commit_next(TM_WRITE_EXISTS);
    /* another node drives it: the result comes from there, never a
     * status that is not final */
    assert_answer(same, TM_CODE_UNAVAILABLE, 0);

    saga_t other = {.n_steps = 1};
    rpc_t *diff = send_submit("g3", &other);
    commit_next(TM_WRITE_EXISTS);
    assert_answer(diff, TM_CODE_UNAVAILABLE, 0);
    assert_non_null(strstr(diff->message, "another trellisd node"));

    assert_int_equal(calls_started(), 0);
    assert_int_equal(W.n_timers, 0);
    assert_int_equal(tm_engine_live_count(W.e), 0);
}

/* Begin of a stored gid: ALREADY_EXISTS once its insert is refused. */
static void test_exists_begin(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    run_to_success("g4", &s);
    rpc_t *b = send_begin("g4", 0);
    assert_unanswered(b);
    assert_int_equal(W.n_timers, 1); /* its timeout, armed at once */
    commit_next(TM_WRITE_EXISTS);
    assert_answer(b, TM_CODE_ALREADY_EXISTS, 0);
    assert_int_equal(W.n_timers, 0); /* forgotten: its timeout is off */
}

/* ---- 3. LOST: another node drives it now --------------------------------- */

static void test_lost_forgets(void **state)
{
    (void)state;
    /* Two independent steps, so one call is still on the wire when the
     * write of the other's result is refused. */
    saga_t s = {.n_steps = 2, .concurrent = 1, .wait = 1};
    rpc_t *sub = send_submit("g5", &s);
    commit_next(TM_WRITE_DONE);
    assert_unanswered(sub); /* it waits for the result */
    assert_int_equal(calls_started(), 2);

    answer_call(0, ST_OK);
    assert_int_equal(W.queued, 1);
    commit_next(TM_WRITE_LOST);
    /* The waiter is sent to the node that owns it now. */
    assert_answer(sub, TM_CODE_UNAVAILABLE, 0);
    assert_non_null(strstr(sub->message, "another trellisd node"));
    assert_int_equal(tm_engine_live_count(W.e), 0);
    assert_int_equal(tm_engine_waiters(W.e), 0);

    /* The other call's result arrives: nothing follows from it. */
    answer_call(1, ST_OK);
    assert_int_equal(calls_started(), 2);
    assert_null(W.head);
    assert_int_equal(W.n_timers, 0);

    /* The store still says what the owner stored (here: the insert). */
    rpc_t *q = send_query("g5");
    assert_answer(q, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(q->op_status[0][TM_SLOT_FORWARD], TM_OP_PENDING);
}

/* A retry timer armed before the refusal must not fire a call after it. */
static void test_lost_disarms_retry(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    rpc_t *sub = send_submit("g6", &s);
    commit_next(TM_WRITE_DONE);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    answer_call(0, ST_UNAVAILABLE); /* a retry timer and the attempt's write */
    assert_int_equal(W.n_timers, 1);
    commit_next(TM_WRITE_LOST);
    assert_int_equal(W.n_timers, 0);
    assert_int_equal(calls_started(), 1);
    assert_int_equal(tm_engine_live_count(W.e), 0);
}

/* ---- 4. a duplicate while the insert is pending -------------------------- */

static void test_duplicate_waits_for_insert(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    rpc_t *first = send_submit("g7", &s);
    rpc_t *dup = send_submit("g7", &s);
    saga_t other = {.n_steps = 1, .payload = "other"};
    rpc_t *diff = send_submit("g7", &other);
    /* Durable answers only: nobody hears before the insert commits. */
    assert_unanswered(first);
    assert_unanswered(dup);
    assert_unanswered(diff);
    assert_int_equal(W.queued, 1);

    commit_next(TM_WRITE_DONE);
    assert_answer(first, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_answer(dup, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_answer(diff, TM_CODE_ALREADY_EXISTS, 0);
    assert_int_equal(calls_started(), 1); /* one saga, one call */
    assert_null(W.head);                  /* the duplicate wrote nothing */

    answer_call(0, ST_OK);
    commit_all();
}

/* The same, but the insert is refused EXISTS (the gid was stored before):
 * the parked duplicate is handled again from the top and answered from the
 * store too, and neither request starts a call. */
static void test_duplicate_waits_for_refused_insert(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    run_to_success("g8", &s);
    size_t called = calls_started();
    rpc_t *first = send_submit("g8", &s);
    rpc_t *dup = send_submit("g8", &s);
    assert_unanswered(first);
    assert_unanswered(dup);

    commit_next(TM_WRITE_EXISTS);
    assert_answer(first, TM_CODE_OK, TM_TX_SUCCEEDED);
    /* The first copy left memory, so the duplicate, handled again from
     * the top, makes a copy of its own; its insert is refused the same
     * way, and only then is it answered. */
    assert_unanswered(dup);
    assert_int_equal(W.queued, 1);
    assert_true(next_write()->insert);
    commit_next(TM_WRITE_EXISTS);
    assert_answer(dup, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_int_equal(calls_started(), called);
}

/* ---- 5. a late result after ForceStop ------------------------------------ */

static void test_force_stop_late_result(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2};
    rpc_t *sub = send_submit("g9", &s);
    commit_next(TM_WRITE_DONE);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(calls_started(), 1); /* step 1 on the wire */

    rpc_t *stop = send_force_stop("g9", "stuck");
    assert_unanswered(stop); /* not before the stop is durable */
    assert_int_equal(next_write()->status, TM_TX_FAILED);
    commit_next(TM_WRITE_DONE);
    assert_answer(stop, TM_CODE_OK, TM_TX_FAILED);
    assert_string_equal(stop->reason, TM_FORCE_STOP_PREFIX "stuck");
    assert_int_equal(tm_engine_live_count(W.e), 0);

    /* The action's success arrives now: no compensation, no step 2, no
     * write; the transaction stays FAILED with the operator's reason. */
    answer_call(0, ST_OK);
    assert_int_equal(calls_started(), 1);
    assert_null(W.head);
    assert_int_equal(W.n_timers, 0);
    rpc_t *q = send_query("g9");
    assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
    assert_string_equal(q->reason, TM_FORCE_STOP_PREFIX "stuck");
    assert_int_equal(q->op_status[0][TM_SLOT_FORWARD], TM_OP_SKIPPED);
    assert_int_equal(q->attempts[0][TM_SLOT_FORWARD], 1);

    /* A repeat of the stop is answered the same, from the store. */
    rpc_t *again = send_force_stop("g9", "stuck");
    assert_answer(again, TM_CODE_OK, TM_TX_FAILED);
}

/* The result arrives while the stop's write is still pending. */
static void test_force_stop_result_before_commit(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    rpc_t *sub = send_submit("g10", &s);
    commit_next(TM_WRITE_DONE);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    rpc_t *stop = send_force_stop("g10", "now");
    answer_call(0, ST_OK); /* would have made it SUCCEEDED */
    assert_int_equal(W.queued, 1);
    commit_next(TM_WRITE_DONE);
    assert_answer(stop, TM_CODE_OK, TM_TX_FAILED);
    assert_null(W.head);
    assert_int_equal(calls_started(), 1);
    rpc_t *q = send_query("g10");
    assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
}

/* ---- 6. the timeout racing Submit ---------------------------------------- */

#define TIMEOUT_MS 500

/* Begin with a timeout, committed; its timer is armed. */
static void begun(const char *gid)
{
    rpc_t *b = send_begin(gid, TIMEOUT_MS);
    commit_next(TM_WRITE_DONE);
    assert_answer(b, TM_CODE_OK, TM_TX_PREPARED);
    assert_int_equal(W.n_timers, 1);
}

/* The timeout fires while the Submit's write is pending: the durable state
 * is still PREPARED, and a prepared transaction is rolled back. The Submit
 * is answered SUBMITTED (what its write made durable); a waiter learns
 * the outcome, FAILED by timeout, and no action is ever called. */
static void test_timeout_while_submit_pending(void **state)
{
    (void)state;
    begun("g11");
    int64_t due = W.now + TIMEOUT_MS;
    saga_t s = {.n_steps = 1, .wait = 1};
    rpc_t *sub = send_submit("g11", &s);
    assert_int_equal(W.queued, 1);
    fire_timer(timer_at(due));
    commit_all();
    assert_int_equal(calls_started(), 1);
    assert_call(0, "g11", "01", "compensate"); /* may have run: undo */
    assert_unanswered(sub);
    answer_call(0, ST_OK);
    commit_all();
    assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    assert_non_null(strstr(sub->reason, "timeout"));
    assert_int_equal(calls_started(), 1); /* the action never ran */
}

/* The other order: Submit committed (its action on the wire), then the
 * timeout. The forward op is not done, so it is rolled back too: the
 * action's late success is compensated. */
static void test_timeout_after_submit_forward_pending(void **state)
{
    (void)state;
    begun("g12");
    int64_t due = W.now + TIMEOUT_MS;
    saga_t s = {.n_steps = 1};
    rpc_t *sub = send_submit("g12", &s);
    commit_next(TM_WRITE_DONE);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_call(0, "g12", "01", "action");
    fire_timer(timer_at(due));
    assert_int_equal(next_write()->status, TM_TX_ABORTING);
    commit_all();
    assert_int_equal(calls_started(), 1); /* no compensation while on wire */
    answer_call(0, ST_OK);
    commit_all();
    assert_int_equal(calls_started(), 2);
    assert_call(1, "g12", "01", "compensate");
    answer_call(1, ST_OK);
    commit_all();
    rpc_t *q = send_query("g12");
    assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
    assert_non_null(strstr(q->reason, "timeout"));
}

/* Submitted with every forward op done (the initiator tried its TCC
 * branch): the commit is decided and the timeout does not roll it back —
 * in both orders, Submit pending or committed when it fires. */
static void test_timeout_after_forward_done(void **state)
{
    (void)state;
    for (int order = 0; order < 2; order++) {
        const char *gid = order ? "g13b" : "g13a";
        size_t c = calls_started();
        begun(gid);
        int64_t due = W.now + TIMEOUT_MS;
        rpc_t *reg = send_register_tcc(gid, "b1");
        commit_next(TM_WRITE_DONE);
        assert_answer(reg, TM_CODE_OK, TM_TX_PREPARED);
        saga_t s = {.n_steps = 0};
        rpc_t *sub = send_submit(gid, &s);
        if (order == 1) /* committed first: the confirm is on the wire */
            commit_next(TM_WRITE_DONE);
        fire_timer(timer_at(due));
        commit_all();
        assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
        assert_int_equal(calls_started(), c + 1);
        assert_call(c, gid, "b1", "confirm");
        answer_call(c, ST_OK);
        commit_all();
        rpc_t *q = send_query(gid);
        assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
        assert_int_equal(W.n_timers, 0);
    }
}

/* The timeout first, then the Submit: refused, the transaction is already
 * rolling back; the registered branch is cancelled. */
static void test_timeout_before_submit(void **state)
{
    (void)state;
    begun("g14");
    int64_t due = W.now + TIMEOUT_MS;
    rpc_t *reg = send_register_tcc("g14", "b1");
    commit_next(TM_WRITE_DONE);
    assert_answer(reg, TM_CODE_OK, TM_TX_PREPARED);
    fire_timer(timer_at(due));
    saga_t s = {.n_steps = 0};
    rpc_t *sub = send_submit("g14", &s); /* parked behind the timeout */
    assert_unanswered(sub);
    commit_next(TM_WRITE_DONE);
    assert_answer(sub, TM_CODE_FAILED_PRECONDITION, 0);
    assert_non_null(strstr(sub->message, "timeout"));
    assert_int_equal(calls_started(), 1);
    assert_call(0, "g14", "b1", "cancel");
    answer_call(0, ST_OK);
    commit_all();
    rpc_t *q = send_query("g14");
    assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
}

/* ---- 7. retries ---------------------------------------------------------- */

static void test_retry_after_unavailable(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1, .retry_interval_ms = 100};
    rpc_t *sub = send_submit("g15", &s);
    commit_next(TM_WRITE_DONE);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);

    int64_t t0 = W.now;
    answer_call(0, ST_UNAVAILABLE);
    assert_int_equal(W.n_timers, 1);
    assert_int_equal(W.timers[0]->due_ms, t0 + 100); /* backoff base */
    commit_all();                                    /* the attempt is stored */
    assert_int_equal(calls_started(), 1);
    rpc_t *q1 = send_query("g15");
    assert_answer(q1, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(q1->attempts[0][TM_SLOT_FORWARD], 1);

    fire_timer(0);
    assert_int_equal(calls_started(), 2);
    assert_call(1, "g15", "01", "action");
    rpc_t *q2 = send_query("g15");
    assert_answer(q2, TM_CODE_OK, TM_TX_SUBMITTED);
    assert_int_equal(q2->attempts[0][TM_SLOT_FORWARD], 2);

    int64_t t1 = W.now;
    answer_call(1, ST_UNAVAILABLE);
    assert_int_equal(W.timers[0]->due_ms, t1 + 200); /* doubled */
    commit_all();
    fire_timer(0);
    assert_int_equal(calls_started(), 3);
    answer_call(2, ST_OK);
    commit_all();
    rpc_t *q3 = send_query("g15");
    assert_answer(q3, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_int_equal(q3->attempts[0][TM_SLOT_FORWARD], 3);
}

/* retry_limit: the last unknown result gives up and rolls back. */
static void test_retry_limit_rolls_back(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1, .retry_limit = 2, .wait = 1};
    rpc_t *sub = send_submit("g16", &s);
    commit_next(TM_WRITE_DONE);
    answer_call(0, ST_UNAVAILABLE);
    commit_all();
    fire_timer(0);
    answer_call(1, ST_UNAVAILABLE);
    assert_int_equal(next_write()->status, TM_TX_ABORTING);
    assert_int_equal(W.n_timers, 0);
    commit_all();
    assert_call(2, "g16", "01", "compensate");
    answer_call(2, ST_OK);
    commit_all();
    assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    assert_non_null(strstr(sub->reason, "2 attempts"));
}

/* ---- more orderings ------------------------------------------------------ */

/* A Query while a write is pending answers the durable state (the store),
 * not the copy in memory. */
static void test_query_durable_only(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1};
    rpc_t *sub = send_submit("g17", &s);
    rpc_t *q0 = send_query("g17"); /* the insert is not committed */
    assert_answer(q0, TM_CODE_NOT_FOUND, 0);
    commit_next(TM_WRITE_DONE);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUBMITTED);
    answer_call(0, ST_OK); /* SUCCEEDED, queued */
    rpc_t *q1 = send_query("g17");
    assert_answer(q1, TM_CODE_OK, TM_TX_SUBMITTED);
    commit_all();
    rpc_t *q2 = send_query("g17");
    assert_answer(q2, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* A business failure of step 2 compensates step 1 only (step 2 never ran
 * to completion), and the waiter learns FAILED with the participant's
 * reason. */
static void test_business_failure_compensates(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2, .wait = 1};
    rpc_t *sub = send_submit("g18", &s);
    commit_next(TM_WRITE_DONE);
    answer_call(0, ST_OK);
    commit_all();
    assert_call(1, "g18", "02", "action");
    answer_call(1, ST_ABORTED);
    commit_all();
    /* Backwards: 02's compensation first (it may have run), and 01's only
     * once 02 is settled. */
    assert_int_equal(calls_started(), 3);
    assert_call(2, "g18", "02", "compensate");
    assert_unanswered(sub);
    answer_call(2, ST_OK);
    commit_all();
    assert_int_equal(calls_started(), 4);
    assert_call(3, "g18", "01", "compensate");
    answer_call(3, ST_OK);
    commit_all();
    assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    assert_non_null(strstr(sub->reason, "branch 02 action failed"));
}

/* Write FAILED (the database refuses a change for good): the copy is
 * forgotten and the transaction reloaded from its stored row and driven
 * on from there — the action whose success was not stored is called again
 * (the barrier absorbs it), then step 2, and it succeeds. */
static void test_write_failed_reloads(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2, .wait = 1};
    rpc_t *sub = send_submit("g20", &s);
    commit_next(TM_WRITE_DONE);
    answer_call(0, ST_OK);
    commit_next(TM_WRITE_FAILED);
    assert_int_equal(sub->answers, 0); /* it waits for the reloaded copy */
    assert_int_equal(tm_engine_live_count(W.e), 1); /* the reloaded copy */
    assert_int_equal(calls_started(), 2);
    assert_call(1, "g20", "01", "action");
    answer_call(1, ST_OK);
    commit_all();
    assert_call(2, "g20", "02", "action");
    answer_call(2, ST_OK);
    commit_all();
    rpc_t *q = send_query("g20");
    assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUCCEEDED);
}

/* ---- two bugs these tests found (fixed in the same change) ---- */

/* A call that cannot be started (no channel) inside drive's loop is
 * applied at once as UNKNOWN; with retry_limit 1 that decides the
 * rollback, and with nothing to compensate the outcome FAILED, whose write
 * is queued. The loop used to go on to start the next ready op, the
 * action of step 02, from the plan made before: an action called after
 * the transaction was decided FAILED, and stored as never called (SKIPPED,
 * 0 attempts). It now stops once a write is pending. */
static void test_no_call_after_unsent_decides(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 2,
                .concurrent = 1,
                .no_compensate = 1,
                .retry_limit = 1,
                .wait = 1};
    rpc_t *sub = send_submit("g19", &s);
    W.refuse_calls = 1; /* step 01's action cannot be started */
    commit_next(TM_WRITE_DONE);
    assert_int_equal(next_write()->status, TM_TX_FAILED);
    int called = (int)calls_started();
    while (calls_open())
        answer_call(calls_started() - 1, ST_OK);
    commit_all();
    assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
    rpc_t *q = send_query("g19");
    assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
    /* Nothing is called once FAILED is decided... */
    assert_int_equal(called, 0);
    /* ...or, if it is, the store must not say it never was. */
    assert_int_equal(q->attempts[1][TM_SLOT_FORWARD], (uint32_t)called);
}

/* A change refused FAILED on a transaction whose insert committed: the
 * waiter of its Submit (wait_result) used to be answered INTERNAL "nothing
 * of this request was stored", while the transaction was stored, reloaded
 * and then succeeded. The waiter now moves to the reloaded copy (as on a
 * takeover) and hears the outcome. */
static void test_failed_write_keeps_waiter(void **state)
{
    (void)state;
    saga_t s = {.n_steps = 1, .wait = 1};
    rpc_t *sub = send_submit("g21", &s);
    commit_next(TM_WRITE_DONE);
    answer_call(0, ST_UNAVAILABLE); /* the attempt's write */
    commit_next(TM_WRITE_FAILED);
    int told_not_stored = sub->answers == 1 &&
                          strstr(sub->message, "nothing of this request") != 0;
    while (calls_open()) { /* the reloaded copy calls again */
        answer_call(calls_started() - 1, ST_OK);
        commit_all();
    }
    rpc_t *q = send_query("g21");
    assert_answer(q, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_false(told_not_stored);
    assert_answer(sub, TM_CODE_OK, TM_TX_SUCCEEDED);
}

int main(void)
{
    tm_log_set_level(TM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_submit_answers_after_insert),
        T(test_exists_final_row),
        T(test_exists_unfinished_row),
        T(test_exists_begin),
        T(test_lost_forgets),
        T(test_lost_disarms_retry),
        T(test_duplicate_waits_for_insert),
        T(test_duplicate_waits_for_refused_insert),
        T(test_force_stop_late_result),
        T(test_force_stop_result_before_commit),
        T(test_timeout_while_submit_pending),
        T(test_timeout_after_submit_forward_pending),
        T(test_timeout_after_forward_done),
        T(test_timeout_before_submit),
        T(test_retry_after_unavailable),
        T(test_retry_limit_rolls_back),
        T(test_query_durable_only),
        T(test_business_failure_compensates),
        T(test_write_failed_reloads),
        T(test_no_call_after_unsent_decides),
        T(test_failed_write_keeps_waiter),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
