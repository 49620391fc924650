/*
 * sim_world: the simulated world around the engine (see sim.h) —
 * participants behind a perfect branch barrier, initiators that run sagas
 * and TCC transactions (sending duplicates, giving up on slow answers,
 * vanishing before they submit), crashes and restarts of the engine, and
 * the checks made once everything has settled. The workflow service is
 * sim_workflow.c's, the message initiator sim_msg.c's; they share the
 * participants and the way requests are sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_call.h"
#include "sim_impl.h"
#include "tm_log.h"
#include "tm_validate.h"

/* How long an initiator waits for an answer before it sends again. */
#define CLIENT_PATIENCE_MS 300

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- participants -------------------------------------------------------- */

sim_branch_t *sim_branch_find(sim_t *s, const char *gid, const char *branch)
{
    for (size_t i = 0; i < s->n_branches; i++)
        if (strcmp(s->branches[i].gid, gid) == 0 &&
            strcmp(s->branches[i].branch, branch) == 0)
            return &s->branches[i];
    return NULL;
}

sim_branch_t *sim_branch_add(sim_t *s, const char *gid, const char *branch)
{
    if (s->n_branches == s->cap_branches) {
        s->cap_branches = s->cap_branches ? s->cap_branches * 2 : 32;
        s->branches =
            must(realloc(s->branches, s->cap_branches * sizeof(*s->branches)));
    }
    sim_branch_t *b = &s->branches[s->n_branches++];
    memset(b, 0, sizeof(*b));
    snprintf(b->gid, sizeof(b->gid), "%s", gid);
    snprintf(b->branch, sizeof(b->branch), "%s", branch);
    return b;
}

static int is_forward(const char *op)
{
    return !strcmp(op, "action") || !strcmp(op, "try");
}

static int is_rollback(const char *op)
{
    return !strcmp(op, "compensate") || !strcmp(op, "cancel");
}

/* The forward op behind the barrier: a duplicate does nothing; a late one
 * whose row its rollback put there is blocked (the barrier's HANGING,
 * answered ABORTED: the transaction rolls back anyway). */
static int barrier_forward(sim_t *s, sim_branch_t *b, const char *op)
{
    if (b->business_failure)
        return ST_ABORTED; /* its local transaction rolled back */
    if (b->bug_aborts) {   /* a participant bug, fixed after a while */
        b->bug_aborts--;
        sim_trace(s, "bug %s/%s %s: ABORTED", b->gid, b->branch, op);
        return ST_ABORTED;
    }
    if (b->fwd_row && b->rb_row && !b->fwd_effect) {
        sim_trace(s, "blocked %s/%s %s: rolled back before", b->gid, b->branch,
                  op);
        return ST_ABORTED;
    }
    if (!b->fwd_row) {
        b->fwd_row = b->fwd_effect = 1;
        sim_trace(s, "effect %s/%s %s", b->gid, b->branch, op);
    }
    return ST_OK;
}

/* The op behind the barrier: its own row first (a duplicate does
 * nothing); a rollback also inserts its forward op's row (when that is
 * new, the forward op never ran: nothing to undo, and a late forward op
 * finds its row and does nothing). Each phase-2 op's first row is
 * stamped (the hooks must come after). Returns the status to answer. */
int sim_barrier_apply(sim_t *s, sim_branch_t *b, const char *op)
{
    if (is_forward(op))
        return barrier_forward(s, b, op);
    if (is_rollback(op)) {
        if (b->cm_row)
            sim_fail(s, "%s/%s: %s after its confirm", b->gid, b->branch, op);
        if (b->rb_row)
            return ST_OK;
        b->rb_row = 1;
        b->p2_stamp = ++s->stamps;
        if (b->fwd_row) {
            b->rb_undo = b->fwd_effect;
            sim_trace(s, "effect %s/%s %s undoes", b->gid, b->branch, op);
        } else {
            b->fwd_row = 1; /* empty compensation; blocks a late forward */
            sim_trace(s, "effect %s/%s %s (empty)", b->gid, b->branch, op);
        }
        return ST_OK;
    }
    if (b->rb_row)
        sim_fail(s, "%s/%s: %s after its cancel", b->gid, b->branch, op);
    if (!b->cm_row) {
        b->cm_row = b->cm_effect = 1;
        b->p2_stamp = ++s->stamps;
        sim_trace(s, "effect %s/%s %s", b->gid, b->branch, op);
    }
    return ST_OK;
}

void sim_note_start(sim_t *s, const char *gid, const char *branch,
                    const char *op)
{
    sim_branch_t *b = sim_branch_find(s, gid, branch);
    if (b && is_forward(op))
        b->forward_starts++;
}

void sim_note_unknown(sim_t *s, const char *gid, const char *branch,
                      const char *op)
{
    sim_branch_t *b = sim_branch_find(s, gid, branch);
    if (b && is_forward(op))
        b->unknown_forward++;
}

sim_fate_t sim_call_fate(sim_t *s)
{
    int roll = s->quiet ? 100 : (int)(sim_rand(s) % 100);
    int f = (int)s->flaky; /* this seed's share of calls that go wrong */
    if (roll < f * 4 / 10)
        return SIM_FATE_UNAVAILABLE;
    if (roll < f * 7 / 10)
        return SIM_FATE_ONGOING;
    return roll < f ? SIM_FATE_LOST : SIM_FATE_ANSWERED;
}

int sim_call_op(sim_t *s, sim_fate_t fate, sim_branch_t *b, const char *op)
{
    if (fate == SIM_FATE_UNAVAILABLE)
        return ST_UNAVAILABLE;
    if (fate == SIM_FATE_ONGOING)
        return ST_FAILED_PRECONDITION;
    int status = sim_barrier_apply(s, b, op);
    return fate == SIM_FATE_LOST ? ST_DEADLINE : status;
}

/* The reply of a saga action the participant did ("a:GID/BRANCH"), the
 * bytes trellisd keeps as its compensation log, into out[len]. */
static void action_reply(const sim_call_t *c, char *out, size_t len)
{
    snprintf(out, len, "a:%s/%s", c->gid, c->branch);
}

/* The compensation log a rollback-side op carries, if any, is exactly its
 * step's action reply (action_reply), or a workflow step's recorded
 * result ("r" and the step's id, sim_workflow.c): never another step's,
 * never cut (they are short), and the same after any crash or takeover. */
static void check_action_log(sim_t *s, const sim_call_t *c)
{
    char want[128], recorded[48];
    if (c->log_len < 0)
        return;
    if (is_forward(c->op) || !strcmp(c->op, "confirm") ||
        !strcmp(c->op, "commit"))
        sim_fail(s, "%s/%s: %s was sent a compensation log", c->gid, c->branch,
                 c->op);
    action_reply(c, want, sizeof(want));
    snprintf(recorded, sizeof(recorded), "r%s", c->branch);
    size_t n = (size_t)c->log_len;
    if (!(n == strlen(want) && !memcmp(c->log, want, n)) &&
        !(n == strlen(recorded) && !memcmp(c->log, recorded, n)))
        sim_fail(s, "%s/%s: %s got the log \"%.*s\", want \"%s\"", c->gid,
                 c->branch, c->op, (int)n, c->log, want);
}

/* A call reaches its participant: it answers, or fails before or after
 * doing its work, as the seed says (only while faults are on). */
void sim_call_arrive(sim_t *s, sim_call_t *c)
{
    check_action_log(s, c);
    if (c->service) {
        sim_wf_serve(s, c);
        return;
    }
    if (!strcmp(c->op, "query_prepared")) {
        sim_msg_serve(s, c);
        return;
    }
    if (!sim_msg_note_delivery(s, c) && !is_forward(c->op) &&
        sim_store_status(s, c->gid) == TM_TX_PREPARED)
        sim_fail(s, "%s/%s: %s called before the decision was stored", c->gid,
                 c->branch, c->op);
    sim_branch_t *b = sim_branch_find(s, c->gid, c->branch);
    if (!b)
        b = sim_branch_add(s, c->gid, c->branch);
    int64_t reply_in = sim_between(s, 0, 5);
    sim_fate_t fate = sim_call_fate(s);
    c->status = sim_call_op(s, fate, b, c->op);
    if (fate == SIM_FATE_LOST)
        reply_in = c->timeout_ms;
    if (c->status == ST_UNAVAILABLE || c->status == ST_DEADLINE)
        sim_note_unknown(s, c->gid, c->branch, c->op);
    sim_schedule(s, reply_in, SIM_EV_REPLY, c, 0);
}

/* The answer reaches the engine that called, if it still lives (once it
 * runs again, if it is stopped). */
void sim_call_reply(sim_t *s, sim_call_t *c)
{
    sim_node_t *n = &s->nodes[c->node];
    if (c->gen != n->gen || !n->engine) {
        sim_bury(s, c->arg); /* the dead engine's call context */
        free(c);
        return;
    }
    if (sim_node_paused(s, c->node)) {
        sim_schedule(s, n->paused_until - s->now, SIM_EV_REPLY, c, 0);
        return;
    }
    sim_trace(s, "reply %s/%s/%s %d", c->gid, c->branch, c->op, c->status);
    char reply[128];
    action_reply(c, reply, sizeof(reply));
    int replies = c->status == 0 && !c->service && !strcmp(c->op, "action");
    c->done(c->arg, c->status, c->status ? "simulated" : NULL,
            replies ? (const uint8_t *)reply : NULL,
            replies ? strlen(reply) : 0);
    free(c);
}

/* ---- requests into the engine, as tm_api hands them over ----------------- */

static void dispatch(tm_rpc_t *rpc, const uint8_t *bytes, size_t len,
                     void *user);

static int act(sim_t *s, sim_rpc_t *r, const uint8_t *bytes, size_t len)
{
    char err[512];
    tm_engine_req_t rq = {(tm_rpc_t *)r, bytes, len, dispatch, s};
    int rc =
        engine_call(s->nodes[r->node].engine, (engine_call_method_t)r->method,
                    &rq, err, sizeof(err));
    if (rc < 0) {
        sim_fail(s, "the simulator sent an invalid request: %s", err);
        return 0;
    }
    return rc;
}

/* tm_engine_redo_fn: a parked request handled again. */
static void dispatch(tm_rpc_t *rpc, const uint8_t *bytes, size_t len,
                     void *user)
{
    sim_t *s = user;
    sim_rpc_t *r = (sim_rpc_t *)rpc;
    sim_node_t *n = &s->nodes[r->node];
    if (!n->engine || r->gen != n->gen)
        return;                        /* its process died */
    if (sim_node_paused(s, r->node)) { /* read once it runs again */
        sim_stray_t *d = must(malloc(sizeof(*d) + len));
        d->rpc = r;
        d->client = r->client;
        d->method = r->method;
        d->node = r->node;
        d->len = len;
        memcpy(d->bytes, bytes, len);
        sim_schedule(s, n->paused_until - s->now, SIM_EV_DELIVER, d, 0);
        return;
    }
    while (act(s, r, bytes, len) == TM_ENGINE_AGAIN) {
    }
}

int sim_node_paused(const sim_t *s, int node)
{
    return s->nodes[node].paused_until > s->now;
}

/* A new request record for client to node. */
static sim_rpc_t *new_rpc(sim_t *s, int client, int method, int node,
                          int64_t patience_ms)
{
    sim_rpc_t *r = must(calloc(1, sizeof(*r)));
    sim_bury(s, r); /* an engine may still answer it: freed with the run */
    r->node = node;
    r->gen = s->nodes[node].gen;
    r->deadline_ms = s->now + patience_ms;
    r->client = client;
    r->method = method;
    if (method == SIM_M_START_WORKFLOW)
        sim_wf_note_sent(s, r);
    return r;
}

const char *sim_method_name(int method)
{
    static const char *names[] = {
        "Begin",      "RegisterBranch", "Submit",   "Abort",
        "Query",      "ForceStop",      "RetryNow", "StartWorkflow",
        "RecordStep", "PrepareMessage"};
    return method >= 0 && (size_t)method < sizeof(names) / sizeof(names[0])
               ? names[method]
               : "?";
}

const char *sim_gid_of(const sim_t *s, int idx)
{
    if (idx >= 0 && (size_t)idx < s->n_clients)
        return s->clients[idx].gid;
    int wf = idx - (int)s->n_clients;
    if (wf < 0 || (size_t)wf < sim_wf_count(s))
        return sim_wf_gid(s, wf);
    return sim_msg_gid(s, wf - (int)sim_wf_count(s));
}

sim_rpc_t *sim_send(sim_t *s, int client, int method, int node,
                    int64_t patience_ms, const uint8_t *bytes, size_t len)
{
    sim_rpc_t *r = new_rpc(s, client, method, node, patience_ms);
    sim_trace(s, "send %s %s to node %d", sim_method_name(method),
              sim_gid_of(s, client), node);
    dispatch((tm_rpc_t *)r, bytes, len, s);
    if (!s->quiet && sim_chance(s, 10)) { /* the network repeats it later */
        sim_stray_t *d = must(malloc(sizeof(*d) + len));
        d->rpc = NULL;
        d->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
        d->client = client;
        d->method = method;
        d->len = len;
        memcpy(d->bytes, bytes, len);
        sim_schedule(s, sim_between(s, 1, 800), SIM_EV_STRAY, d, 0);
    }
    return r;
}

/* Send the client's current request (again); the answer is looked at on
 * the client's next step. */
static void send_request(sim_t *s, sim_client_t *c)
{
    c->rpc = sim_send(s, c->id, c->method, c->node, c->patience_ms, c->bytes,
                      c->len);
}

void sim_stray_arrive(sim_t *s, sim_stray_t *d)
{
    sim_rpc_t *r = d->rpc;
    if (!r)
        r = new_rpc(s, d->client, d->method, d->node, CLIENT_PATIENCE_MS);
    sim_trace(s, "%s %s %s node %d", d->rpc ? "deliver" : "stray",
              sim_method_name(d->method), sim_gid_of(s, d->client), d->node);
    dispatch((tm_rpc_t *)r, d->bytes, d->len, s);
    free(d);
}

void sim_pack(const ProtobufCMessage *m, uint8_t **bytes, size_t *len)
{
    free(*bytes);
    *len = protobuf_c_message_get_packed_size(m);
    *bytes = must(malloc(*len ? *len : 1));
    protobuf_c_message_pack(m, *bytes);
}

static void set_request(sim_client_t *c, int method, const ProtobufCMessage *m)
{
    sim_pack(m, &c->bytes, &c->len);
    c->method = method;
}

/* ---- the operator -------------------------------------------------------- */

/* trellisctl status (Query) or force-stop of target's transaction. */
void sim_operator(sim_t *s, int target, int force_stop)
{
    int node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
    const char *gid = sim_gid_of(s, target);
    sim_rpc_t *r =
        new_rpc(s, target, force_stop ? SIM_M_FORCE_STOP : SIM_M_QUERY, node,
                CLIENT_PATIENCE_MS);
    sim_trace(s, "operator %s %s", force_stop ? "force-stop" : "query", gid);
    if (!force_stop) {
        dispatch((tm_rpc_t *)r, (const uint8_t *)gid, strlen(gid) + 1, s);
        return;
    }
    Trellis__V1__ForceStopRequest m = TRELLIS__V1__FORCE_STOP_REQUEST__INIT;
    m.gid = (char *)gid;
    m.reason = "simulated operator";
    size_t len = protobuf_c_message_get_packed_size(&m.base);
    uint8_t *bytes = must(malloc(len ? len : 1));
    protobuf_c_message_pack(&m.base, bytes);
    sim_bury(s, bytes); /* a parked copy may outlive this call */
    dispatch((tm_rpc_t *)r, bytes, len, s);
    if (sim_chance(s, 70)) /* and then looks at what it did */
        sim_schedule(s, sim_between(s, 0, 5), SIM_EV_OPERATOR, NULL,
                     (uint64_t)target << 1);
}

/* What the operator learnt: a final status from Query is the outcome; a
 * ForceStop answered OK stopped the transaction for good. */
void sim_operator_answer(sim_t *s, const sim_rpc_t *r)
{
    if (r->code != TM_CODE_OK || r->client < 0 ||
        (r->method != SIM_M_FORCE_STOP && r->method != SIM_M_QUERY))
        return;
    if ((size_t)r->client >= s->n_clients) {
        sim_wf_operator_answer(s, r->client - (int)s->n_clients, r);
        return;
    }
    sim_client_t *c = &s->clients[r->client];
    if (r->method == SIM_M_FORCE_STOP)
        c->force_stopped = 1;
    if (r->method == SIM_M_QUERY && tm_tx_is_final(r->status) &&
        !c->queried_final)
        c->queried_final = (int)r->status;
}

/* ---- initiators ---------------------------------------------------------- */

static void build_saga_submit(sim_t *s, sim_client_t *c)
{
    Trellis__V1__SagaStep steps[SIM_MAX_BRANCHES], *sp[SIM_MAX_BRANCHES];
    for (int i = 0; i < c->n_branches; i++) {
        trellis__v1__saga_step__init(&steps[i]);
        steps[i].action = SIM_TARGET_ACTION;
        steps[i].compensate = sim_chance(s, 80) ? SIM_TARGET_COMPENSATE : "";
        sp[i] = &steps[i];
        char id[16];
        snprintf(id, sizeof(id), "%02d", i + 1);
        sim_branch_add(s, c->gid, id)->business_failure = sim_chance(s, 12);
    }
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.wait_result = c->wait;
    if (sim_chance(s, 30))
        o.timeout_to_fail_ms = (uint32_t)sim_between(s, 50, 400);
    if (sim_chance(s, 30))
        o.retry_limit = c->retry_limit = (uint32_t)sim_between(s, 2, 6);
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = c->gid;
    r.n_steps = (size_t)c->n_branches;
    r.steps = sp;
    r.concurrent = c->concurrent;
    r.options = &o;
    set_request(c, SIM_M_SUBMIT, &r.base);
}

static void build_begin(sim_t *s, sim_client_t *c)
{
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    if (sim_chance(s, 50))
        o.timeout_to_fail_ms = (uint32_t)sim_between(s, 100, 500);
    Trellis__V1__BeginRequest r = TRELLIS__V1__BEGIN_REQUEST__INIT;
    r.gid = c->gid;
    r.options = &o;
    set_request(c, SIM_M_BEGIN, &r.base);
}

static void build_register(sim_t *s, sim_client_t *c)
{
    char id[16];
    snprintf(id, sizeof(id), "b%d", c->registered);
    Trellis__V1__BranchOp confirm = TRELLIS__V1__BRANCH_OP__INIT;
    confirm.op = TRELLIS__V1__OP_KIND__OP_CONFIRM;
    confirm.target = SIM_TARGET_CONFIRM;
    Trellis__V1__BranchOp cancel = TRELLIS__V1__BRANCH_OP__INIT;
    cancel.op = TRELLIS__V1__OP_KIND__OP_CANCEL;
    cancel.target = SIM_TARGET_CANCEL;
    Trellis__V1__BranchOp *ops[2] = {&confirm, &cancel};
    Trellis__V1__RegisterBranchRequest r =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    r.gid = c->gid;
    r.branch_id = id;
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    r.n_ops = 2;
    r.ops = ops;
    set_request(c, SIM_M_REGISTER, &r.base);
    if (!sim_branch_find(s, c->gid, id))
        sim_branch_add(s, c->gid, id)->business_failure = sim_chance(s, 12);
}

int sim_pack_decision(const char *gid, int commit, int wait, const char *reason,
                      uint8_t **bytes, size_t *len)
{
    if (commit) {
        Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
        o.wait_result = wait;
        Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
        r.gid = (char *)gid;
        r.options = &o;
        sim_pack(&r.base, bytes, len);
        return SIM_M_SUBMIT;
    }
    Trellis__V1__AbortRequest r = TRELLIS__V1__ABORT_REQUEST__INIT;
    r.gid = (char *)gid;
    r.reason = (char *)reason;
    r.wait_result = wait;
    sim_pack(&r.base, bytes, len);
    return SIM_M_ABORT;
}

static void build_submit_begun(sim_client_t *c)
{
    c->method = sim_pack_decision(c->gid, 1, c->wait, NULL, &c->bytes, &c->len);
}

static void build_abort(sim_client_t *c)
{
    c->method =
        sim_pack_decision(c->gid, 0, 0, "a try failed", &c->bytes, &c->len);
}

static void next_step_in(sim_t *s, sim_client_t *c, int64_t lo, int64_t hi)
{
    sim_schedule(s, sim_between(s, lo, hi), SIM_EV_CLIENT, c, 0);
}

/* The initiator calls its own try (TCC): behind the barrier, as the TM's
 * calls are. 1 when it succeeded. */
static int call_try(sim_t *s, sim_client_t *c)
{
    char id[16];
    snprintf(id, sizeof(id), "b%d", c->registered - 1);
    sim_branch_t *b = sim_branch_find(s, c->gid, id);
    return sim_barrier_apply(s, b, "try") == ST_OK;
}

/* What the client does once its request was answered OK. */
static void advance(sim_t *s, sim_client_t *c)
{
    if (c->method == SIM_M_BEGIN || c->method == SIM_M_SUBMIT)
        c->acked = 1;
    if (c->tcc && c->method == SIM_M_SUBMIT)
        c->committed = 1;
    if (!c->tcc || c->method == SIM_M_SUBMIT || c->method == SIM_M_ABORT) {
        c->done = 1;
        /* A duplicate now and then, after the fact. */
        if (sim_chance(s, 25)) {
            c->done = 0;
            c->step = -1;
            next_step_in(s, c, 1, 200);
        }
        return;
    }
    if (c->method == SIM_M_REGISTER && !call_try(s, c))
        c->aborting = 1;
    if (c->vanish_at == c->registered) {
        sim_trace(s, "client %d vanishes", c->id);
        c->done = 1;
        return;
    }
    if (c->aborting)
        build_abort(c);
    else if (c->registered < c->n_branches) {
        build_register(s, c);
        c->registered++;
    } else {
        build_submit_begun(c);
    }
    c->rpc = NULL;
    next_step_in(s, c, 0, 20);
}

/* An answer the client cannot go on from: is it one the engine may give
 * (a transaction timed out, the store fails, a request waits too long)? */
static void on_refusal(sim_t *s, sim_client_t *c, int code)
{
    if (code == TM_CODE_UNAVAILABLE || code == TM_CODE_RESOURCE_EXHAUSTED ||
        code == TM_CODE_DEADLINE_EXCEEDED) {
        if (code == TM_CODE_UNAVAILABLE) /* maybe another node drives it */
            c->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
        next_step_in(s, c, 5, 30); /* send the same again */
        return;
    }
    if (code == TM_CODE_FAILED_PRECONDITION) { /* timed out meanwhile */
        c->done = 1;
        return;
    }
    if (code == TM_CODE_ALREADY_EXISTS && c->method == SIM_M_BEGIN) {
        c->done = 1; /* a Begin sent again after its transaction ended */
        return;
    }
    sim_fail(s, "client %d (%s) got code %d for method %d", c->id, c->gid, code,
             c->method);
}

void sim_client_step(sim_t *s, sim_client_t *c)
{
    if (c->done)
        return;
    if (c->step == -1) { /* the duplicate after an answer */
        c->step = 1;
        send_request(s, c);
        next_step_in(s, c, 1, 20);
        return;
    }
    if (c->step == 0) {
        c->step = 1;
        send_request(s, c);
        next_step_in(s, c, 1, 20);
        return;
    }
    sim_rpc_t *r = c->rpc;
    if (!r) {
        send_request(s, c);
        next_step_in(s, c, 1, 20);
        return;
    }
    if (!r->answered) {
        if (s->now >= r->deadline_ms || r->gen != s->nodes[r->node].gen) {
            c->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
            send_request(s, c); /* gave up waiting: send it again */
        }
        next_step_in(s, c, 5, 30);
        return;
    }
    if (r->code != TM_CODE_OK) {
        c->rpc = NULL;
        on_refusal(s, c, r->code);
        return;
    }
    advance(s, c);
}

/* ---- crashes ------------------------------------------------------------- */

void sim_crash(sim_t *s, sim_node_t *n)
{
    if (!n->engine)
        return;
    sim_trace(s, "node %d: crash", n->id);
    s->res->crashes++;
    /* The one attempt of a forward op whose write had not committed is
     * lost with the process: the retry limit may allow one call more. */
    for (size_t i = 0; i < s->n_branches; i++) {
        sim_branch_t *b = &s->branches[i];
        tm_trans_t *tx = b->forward_starts ? sim_store_read(s, b->gid) : NULL;
        if (b->forward_starts && (!tx || !tm_tx_is_final(tx->status)))
            b->crash_slack++;
        tm_trans_free(tx);
    }
    sim_bury(s, n->engine); /* its memory is lost with the process */
    n->engine = NULL;
    n->gen++;
    n->has_hooks = 0;
    n->ticking = 0;
    n->paused_until = 0;
    sim_store_crash(s, n);
    sim_timers_crash(s, n->id);
}

void sim_restart(sim_t *s, sim_node_t *n)
{
    if (n->engine)
        return;
    tm_engine_env_t env;
    tm_engine_front_t front;
    sim_env(n, &env, &front);
    char err[256];
    if (tm_engine_new(&s->cfg, &env, &front, &n->engine, err, sizeof(err)) !=
        0) {
        fprintf(stderr, "sim: %s\n", err);
        exit(2);
    }
    n->lease_until = s->now + SIM_LEASE_MS; /* taken at start */
    n->lapse_pending = 0;
    long loaded = tm_engine_load(n->engine, err, sizeof(err));
    sim_trace(s, "node %d: restart loaded=%ld", n->id, loaded);
    tm_engine_resume_all(n->engine);
    n->ticking = 1;
    sim_schedule(s, SIM_TICK_MS, SIM_EV_TICK, n, n->gen);
}

/* ---- the world at the start, and the checks at the end ------------------- */

#define GENERATION_MS 1500

void sim_world_setup(sim_t *s)
{
    tm_engine_config_default(&s->cfg);
    s->cfg.retry_interval_ms = 10;
    s->cfg.request_timeout_ms = 50;
    s->cfg.max_backoff_ms = 200;
    s->cfg.prepared_timeout_ms = 400;
    s->cfg.resume_timeout_ms = 300; /* a call of the workflow service */
    s->store.healthy = 1;
    s->n_nodes = sim_chance(s, 50) ? 2 : 1;
    for (int i = 0; i < s->n_nodes; i++) {
        s->nodes[i].sim = s;
        s->nodes[i].id = i;
    }
    s->flaky = (unsigned)sim_between(s, 5, 70);
    s->crashy = (unsigned)sim_between(s, 0, 6);
    s->n_clients = (size_t)sim_between(s, 2, 8);
    s->clients = must(calloc(s->n_clients, sizeof(*s->clients)));
    for (size_t i = 0; i < s->n_clients; i++) {
        sim_client_t *c = &s->clients[i];
        c->id = (int)i;
        snprintf(c->gid, sizeof(c->gid), "g%zu", i);
        c->tcc = sim_chance(s, 40);
        c->n_branches = (int)sim_between(s, 1, c->tcc ? 3 : SIM_MAX_BRANCHES);
        c->concurrent = sim_chance(s, 30);
        c->patience_ms =
            sim_chance(s, 30) ? sim_between(s, 1, 20) : CLIENT_PATIENCE_MS;
        c->wait = sim_chance(s, 40);
        c->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
        c->vanish_at = c->tcc && sim_chance(s, 20)
                           ? (int)sim_between(s, 0, c->n_branches)
                           : -1;
        if (c->tcc)
            build_begin(s, c);
        else
            build_saga_submit(s, c);
        next_step_in(s, c, 0, 600);
    }
    sim_wf_setup(s);
    sim_msg_setup(s);
    s->res->transactions =
        (unsigned)(s->n_clients + sim_wf_count(s) + sim_msg_count(s));
    int crashes = (int)sim_between(s, 0, 3);
    for (int i = 0; i < crashes; i++) {
        int64_t at = sim_between(s, 0, GENERATION_MS);
        uint64_t node = sim_rand(s) % (uint64_t)s->n_nodes;
        sim_schedule(s, at, SIM_EV_CRASH, NULL, node);
        sim_schedule(s, at + sim_between(s, 1, 80), SIM_EV_RESTART, NULL, node);
    }
    int pauses = s->n_nodes > 1 ? (int)sim_between(s, 0, 2) : 0;
    for (int i = 0; i < pauses; i++) /* SIGSTOP, often past the lease */
        sim_schedule(s, sim_between(s, 0, GENERATION_MS), SIM_EV_PAUSE, NULL,
                     (sim_rand(s) % (uint64_t)s->n_nodes) |
                         ((uint64_t)sim_between(s, 50, 2 * SIM_LEASE_MS) << 8));
    int ops = (int)sim_between(s, 0, 12);
    uint64_t targets = s->n_clients + sim_wf_count(s);
    for (int i = 0; i < ops; i++)
        sim_schedule(s, sim_between(s, 0, GENERATION_MS), SIM_EV_OPERATOR, NULL,
                     (sim_rand(s) % targets) << 1 |
                         (uint64_t)sim_chance(s, 15));
    int faults = (int)sim_between(s, 0, 2);
    for (int i = 0; i < faults; i++)
        sim_schedule(s, sim_between(s, 0, GENERATION_MS), SIM_EV_FAULT, NULL,
                     (uint64_t)sim_between(s, 1, 4));
    sim_schedule(s, GENERATION_MS, SIM_EV_QUIET, NULL, 0);
    for (int i = 0; i < s->n_nodes; i++)
        sim_restart(s, &s->nodes[i]);
}

/* A stored transaction's branches against the participants' effects. */
static void check_effects(sim_t *s, const tm_trans_t *tx)
{
    for (size_t i = 0; i < tx->n_branches; i++) {
        const tm_branch_t *b = &tx->branches[i];
        const sim_branch_t *p = sim_branch_find(s, tx->gid, b->branch_id);
        int fwd = p && p->fwd_effect, undone = p && p->rb_undo;
        int confirmed = p && p->cm_effect;
        int has_rb = b->ops[TM_SLOT_ROLLBACK].kind != TM_KIND_NONE;
        int has_cm = b->ops[TM_SLOT_COMMIT].kind != TM_KIND_NONE;
        if (tx->status == TM_TX_SUCCEEDED &&
            (!fwd || undone || (has_cm && !confirmed)))
            sim_fail(s,
                     "%s succeeded but branch %s has forward=%d undone=%d "
                     "confirmed=%d",
                     tx->gid, b->branch_id, fwd, undone, confirmed);
        if (tx->status == TM_TX_FAILED &&
            (confirmed || (fwd && has_rb && !undone)))
            sim_fail(s,
                     "%s failed but branch %s has forward=%d undone=%d "
                     "confirmed=%d",
                     tx->gid, b->branch_id, fwd, undone, confirmed);
    }
}

/* A saga's retry_limit bounds the unanswered calls of each forward op:
 * the engine stores every attempt before it starts the next, so a crash
 * loses one at most (the slack). Without that, a restart counts anew. */
static void check_retry_limit(sim_t *s, const sim_client_t *c,
                              const tm_trans_t *tx)
{
    if (!c->retry_limit)
        return;
    for (size_t i = 0; i < tx->n_branches; i++) {
        const sim_branch_t *b =
            sim_branch_find(s, tx->gid, tx->branches[i].branch_id);
        if (b && b->unknown_forward > c->retry_limit + b->crash_slack)
            sim_fail(s,
                     "%s/%s: %u unanswered forward calls with retry_limit %u "
                     "(%u crashes during its calls)",
                     tx->gid, b->branch, b->unknown_forward, c->retry_limit,
                     b->crash_slack);
    }
}

static int stored_has_branch(const tm_trans_t *tx, const char *branch)
{
    for (size_t i = 0; tx && i < tx->n_branches; i++)
        if (strcmp(tx->branches[i].branch_id, branch) == 0)
            return 1;
    return 0;
}

void sim_world_check(sim_t *s)
{
    for (size_t i = 0; i < s->n_clients; i++) {
        const sim_client_t *c = &s->clients[i];
        s->res->acked += (unsigned)c->acked;
        tm_trans_t *tx = sim_store_read(s, c->gid);
        if (c->acked && !tx)
            sim_fail(s, "%s was acknowledged and is lost", c->gid);
        if (tx && !tm_tx_is_final(tx->status))
            sim_fail(s, "%s did not end: %s", c->gid,
                     tm_tx_status_name(tx->status));
        if (tx && !c->force_stopped)
            check_effects(s, tx);
        if (tx && c->queried_final && (int)tx->status != c->queried_final)
            sim_fail(s, "%s: a Query answered %s, yet it ended %s", c->gid,
                     tm_tx_status_name((tm_tx_status_t)c->queried_final),
                     tm_tx_status_name(tx->status));
        if (tx && c->committed && !c->force_stopped &&
            tx->status != TM_TX_SUCCEEDED)
            sim_fail(s,
                     "%s: its Submit was answered OK (committed), yet it "
                     "ended %s",
                     c->gid, tm_tx_status_name(tx->status));
        if (tx)
            check_retry_limit(s, c, tx);
        tm_trans_free(tx);
    }
    for (size_t i = 0; i < s->n_branches; i++) {
        const sim_branch_t *b = &s->branches[i];
        if (!b->fwd_effect)
            continue;
        tm_trans_t *tx = sim_store_read(s, b->gid);
        if (!stored_has_branch(tx, b->branch))
            sim_fail(s, "%s/%s ran its forward op but is not recorded", b->gid,
                     b->branch);
        tm_trans_free(tx);
    }
    sim_wf_check(s);
    sim_msg_check(s);
}
