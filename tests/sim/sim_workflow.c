/*
 * sim_workflow: the simulator's workflow service (see sim.h) — a business
 * service that runs workflow functions against the engine the way the
 * SDK does (sdk/workflow_run.c, workflow_steps.c, workflow_resume.c).
 *
 * Each workflow of a seed is a deterministic function chosen at setup: up
 * to SIM_WF_MAX_STEPS steps, each TCC, saga or local; a step whose
 * forward op answers ABORTED, after which the function goes on or rolls
 * back there; an end in commit or rollback; hooks or none. A run is
 * StartWorkflow, then per step RegisterBranch (its phase-2 ops; a local
 * step's and the hooks' target the service's Resume) → the forward op (a
 * call of the simulated participant, behind its barrier, over a network
 * that delays and loses; a local action behind the service's own
 * barrier) → RecordStep (OK or ABORTED only), then the hooks'
 * RegisterBranch and Submit or Abort. A step of unknown outcome is called
 * again, or the function gives up: it returns "retry" (the run ends), or,
 * in some workflows, rollback (Abort with that step unrecorded: trellisd
 * undoes it too). A run that meets progress in the StartWorkflow answer
 * replays it: a recorded step returns its record, a registered one
 * without a record is called again, then it goes on.
 *
 * The service is one process: between two requests of any run it may die
 * (kill -9, at the seed's rate), every run with it, and stays down a
 * while (trellisd's calls get UNAVAILABLE). Nothing restarts a run but
 * trellisd's resume: Resume starts a new run (FAILED_PRECONDITION while
 * one of that gid runs) and is answered OK once the run decided; now and
 * then it answers ABORTED (a replay mismatch, say) and the workflow stops
 * until the operator's RetryNow. A local step's compensation and the
 * hooks come through Resume too, and are applied once in effect, behind
 * the service's barrier.
 *
 *
 * The operator, the notes of what the front and the operator saw and the
 * checks of what it all came to are in sim_workflow_check.c; the state of
 * the workflows both files share is in sim_workflow_impl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_workflow_impl.h"

#define WF_NAME "sim.transfer"
/* The service's deadline for a forward call it makes. */
#define SVC_CALL_MS 50

/* A forward call of the service on its way. */
typedef struct {
    wf_t *w;
    uint64_t serial, token;
    int step;
    int status;
} svc_call_t;

static void run_trace(sim_t *s, const wf_t *w, const char *what,
                      const char *more)
{
    sim_trace(s, "wf %s run %u: %s%s", w->gid, w->run.number, what, more);
}

/* A participant's or the service's answer, for the trace. */
static const char *status_name(int st)
{
    switch (st) {
    case ST_OK:
        return "OK";
    case ST_DEADLINE:
        return "no answer";
    case ST_FAILED_PRECONDITION:
        return "FAILED_PRECONDITION";
    case ST_ABORTED:
        return "ABORTED";
    default:
        return "UNAVAILABLE";
    }
}

/* ---- the seed's workflows --------------------------------------------- */

static void wf_describe(const wf_t *w, char *out, size_t len)
{
    size_t n = 0;
    for (int k = 0; k < w->n_steps && n < len; k++)
        n += (size_t)snprintf(out + n, len - n, "%s%s%s%s", k ? "," : "",
                              kind_name(w->steps[k].kind),
                              w->steps[k].fails ? "!" : "",
                              w->steps[k].stops ? "stop" : "");
    if (n < len)
        snprintf(out + n, len - n, " -> %s%s",
                 w->commit ? "commit" : "rollback", w->hooks ? ", hooks" : "");
}

static void wf_define(sim_t *s, wf_t *w, int id)
{
    w->id = id;
    snprintf(w->gid, sizeof(w->gid), "w%d", id);
    w->n_steps = (int)sim_between(s, 1, SIM_WF_MAX_STEPS);
    for (int k = 0; k < w->n_steps; k++) {
        wf_step_t *st = &w->steps[k];
        st->kind = (step_kind_t)(sim_rand(s) % 3);
        st->fails = sim_chance(s, 15);
        st->stops = st->fails && sim_chance(s, 50);
        char id_[16];
        step_id(k, id_, sizeof(id_));
        sim_branch_add(s, w->gid, id_)->business_failure = st->fails;
    }
    w->commit = sim_chance(s, 75);
    w->hooks = sim_chance(s, 50);
    int t = (int)(sim_rand(s) % 4); /* trellisd's 400 ms, short, long */
    w->timeout_ms = t == 0   ? 0
                    : t == 1 ? (uint32_t)sim_between(s, 100, 300)
                             : (uint32_t)sim_between(s, 800, 1500);
    w->wait = sim_chance(s, 30);
    /* Not with hooks: a run that rolled back on an unknown outcome may
     * have registered them, and a re-run that goes past the step would
     * meet them where its next step belongs (a replay mismatch). */
    w->unknown_rolls = !w->hooks && sim_chance(s, 30);
    w->patience_ms =
        sim_chance(s, 20) ? sim_between(s, 1, 20) : RUN_PATIENCE_MS;
    sim_schedule(s, sim_between(s, 0, 600), SIM_EV_SERVICE, w, 0);
}

void sim_wf_setup(sim_t *s)
{
    sim_svc_t *v = fkit_must(calloc(1, sizeof(*v)));
    s->svc = v;
    v->n = sim_chance(s, 70) ? (size_t)sim_between(s, 1, 3) : 0;
    v->deathly = (unsigned)sim_between(s, 0, 8);
    v->wfs = fkit_must(calloc(v->n ? v->n : 1, sizeof(*v->wfs)));
    for (size_t i = 0; i < v->n; i++)
        wf_define(s, &v->wfs[i], (int)i);
}

size_t sim_wf_count(const sim_t *s)
{
    return s->svc ? s->svc->n : 0;
}

const char *sim_wf_gid(const sim_t *s, int wf)
{
    if (wf < 0 || (size_t)wf >= sim_wf_count(s))
        return "?";
    return s->svc->wfs[wf].gid;
}

static wf_t *wf_find(sim_t *s, const char *gid)
{
    for (size_t i = 0; i < s->svc->n; i++)
        if (strcmp(s->svc->wfs[i].gid, gid) == 0)
            return &s->svc->wfs[i];
    return NULL;
}

void sim_wf_free(sim_t *s)
{
    if (!s->svc)
        return;
    for (size_t i = 0; i < s->svc->n; i++) {
        free(s->svc->wfs[i].run.bytes);
        free(s->svc->wfs[i].retry_bytes);
    }
    free(s->svc->wfs);
    free(s->svc);
    s->svc = NULL;
}

/* ---- the service: up, down, dead -------------------------------------- */

static int svc_down(const sim_t *s)
{
    return s->now < s->svc->down_until;
}

static void answer_call(sim_t *s, sim_call_t *c, int status, int64_t in_ms)
{
    c->status = status;
    sim_schedule(s, in_ms, SIM_EV_REPLY, c, 0);
}

/* The run is over: trellisd's Resume (if it waits on this run) hears
 * OK when it decided, UNAVAILABLE otherwise. */
static void run_end(sim_t *s, wf_t *w, int decided, const char *why)
{
    wf_run_t *r = &w->run;
    run_trace(s, w, "ends: ", why);
    if (r->resume)
        answer_call(s, r->resume, decided ? ST_OK : ST_UNAVAILABLE,
                    sim_between(s, 0, 5));
    r->resume = NULL;
    r->serial = 0;
    r->call = 0;
}

/* kill -9 (at the seed's rate, while faults are on): every run stops
 * where it is. 1 when it died. */
static int svc_dies(sim_t *s)
{
    sim_svc_t *v = s->svc;
    if (s->quiet || !sim_chance(s, v->deathly))
        return 0;
    v->down_until = s->now + sim_between(s, 5, 300);
    sim_trace(s, "service dies, down until %lld", (long long)v->down_until);
    for (size_t i = 0; i < v->n; i++)
        if (v->wfs[i].run.serial)
            run_end(s, &v->wfs[i], 0, "the service died");
    return 1;
}

/* ---- a run's requests -------------------------------------------------- */

static void poll_in(sim_t *s, wf_t *w, int64_t lo, int64_t hi)
{
    sim_schedule(s, sim_between(s, lo, hi), SIM_EV_SERVICE, w, w->run.serial);
}

static void set_request(wf_t *w, int method, const ProtobufCMessage *m)
{
    sim_pack(m, &w->run.bytes, &w->run.len);
    w->run.method = method;
    w->run.tries = 0;
}

/* The service lives on to send the run's next request or call: 0 when
 * it died first (never before the run's first request). */
static int run_lives(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    if (r->sent > 0 && svc_dies(s))
        return 0;
    r->sent++;
    r->tries++;
    return 1;
}

/* Send the current request (again), unless the service dies first. */
static void run_send(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    if (!run_lives(s, w))
        return;
    r->rpc = sim_send(s, client_of(s, w), r->method, r->node, w->patience_ms,
                      r->bytes, r->len);
    poll_in(s, w, 1, 20);
}

static void send_start(sim_t *s, wf_t *w)
{
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.timeout_to_fail_ms = w->timeout_ms;
    Trellis__V1__StartWorkflowRequest m =
        TRELLIS__V1__START_WORKFLOW_REQUEST__INIT;
    m.gid = w->gid;
    m.name = WF_NAME;
    m.input.data = (uint8_t *)w->gid;
    m.input.len = strlen(w->gid);
    m.resume_target = SIM_TARGET_RESUME;
    m.options = &o;
    w->run.phase = RUN_START;
    set_request(w, SIM_M_START_WORKFLOW, &m.base);
    run_send(s, w);
}

/* RegisterBranch of id with mode and ops (kind, target pairs). */
static void send_register(sim_t *s, wf_t *w, const char *id, int mode,
                          const Trellis__V1__OpKind *kinds,
                          const char *const *targets, size_t n)
{
    Trellis__V1__BranchOp ops[3], *ptrs[3];
    for (size_t i = 0; i < n; i++) {
        trellis__v1__branch_op__init(&ops[i]);
        ops[i].op = kinds[i];
        ops[i].target = (char *)targets[i];
        ptrs[i] = &ops[i];
    }
    Trellis__V1__RegisterBranchRequest m =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    m.gid = w->gid;
    m.branch_id = (char *)id;
    m.mode = (Trellis__V1__BranchMode)mode;
    m.n_ops = n;
    m.ops = ptrs;
    set_request(w, SIM_M_REGISTER, &m.base);
    run_send(s, w);
}

/* The step's registration: its phase-2 ops, and a remote step's forward
 * op named (kept for the re-run's comparison, never called). */
static void register_step(sim_t *s, wf_t *w)
{
    static const Trellis__V1__OpKind tcc[] = {TRELLIS__V1__OP_KIND__OP_TRY,
                                              TRELLIS__V1__OP_KIND__OP_CONFIRM,
                                              TRELLIS__V1__OP_KIND__OP_CANCEL};
    static const char *const tcc_t[] = {SIM_TARGET_TRY, SIM_TARGET_CONFIRM,
                                        SIM_TARGET_CANCEL};
    static const Trellis__V1__OpKind saga[] = {
        TRELLIS__V1__OP_KIND__OP_ACTION, TRELLIS__V1__OP_KIND__OP_COMPENSATE};
    static const char *const saga_t[] = {SIM_TARGET_ACTION,
                                         SIM_TARGET_COMPENSATE};
    static const char *const local_t[] = {SIM_TARGET_RESUME};
    wf_run_t *r = &w->run;
    char id[16];
    step_id(r->step, id, sizeof(id));
    r->phase = RUN_REGISTER;
    switch (w->steps[r->step].kind) {
    case STEP_TCC:
        send_register(s, w, id, TRELLIS__V1__BRANCH_MODE__MODE_TCC, tcc, tcc_t,
                      3);
        break;
    case STEP_SAGA:
        send_register(s, w, id, TRELLIS__V1__BRANCH_MODE__MODE_SAGA, saga,
                      saga_t, 2);
        break;
    case STEP_LOCAL:
        send_register(s, w, id, TRELLIS__V1__BRANCH_MODE__MODE_LOCAL, &saga[1],
                      local_t, 1);
        break;
    }
}

static void register_hooks(sim_t *s, wf_t *w)
{
    static const Trellis__V1__OpKind kinds[] = {
        TRELLIS__V1__OP_KIND__OP_COMMIT, TRELLIS__V1__OP_KIND__OP_ROLLBACK};
    static const char *const targets[] = {SIM_TARGET_RESUME, SIM_TARGET_RESUME};
    w->run.phase = RUN_HOOKS;
    send_register(s, w, WF_HOOKS_ID, TRELLIS__V1__BRANCH_MODE__MODE_HOOKS,
                  kinds, targets, 2);
}

static void send_record(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    char id[16], result[24];
    step_id(r->step, id, sizeof(id));
    snprintf(result, sizeof(result), "r%s", id);
    Trellis__V1__RecordStepRequest m = TRELLIS__V1__RECORD_STEP_REQUEST__INIT;
    m.gid = w->gid;
    m.branch_id = id;
    m.code = (uint32_t)r->result;
    if (r->result == ST_OK) {
        m.result.data = (uint8_t *)result;
        m.result.len = strlen(result);
    } else {
        m.message = "simulated business failure";
    }
    r->phase = RUN_RECORD;
    set_request(w, SIM_M_RECORD_STEP, &m.base);
    run_send(s, w);
}

/* Submit or Abort, as the function (or the progress) decided. */
static void send_decision(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    r->phase = RUN_DECIDE;
    r->method = sim_pack_decision(w->gid, !r->rollback, w->wait,
                                  "the workflow function rolled back",
                                  &r->bytes, &r->len);
    r->tries = 0;
    run_send(s, w);
}

/* ---- the function -------------------------------------------------------- */

static void take_step(sim_t *s, wf_t *w, int k);

/* The function returned: hooks (when it adds any and they are not
 * registered yet), then the decision. */
static void finish(sim_t *s, wf_t *w, int rollback)
{
    wf_run_t *r = &w->run;
    r->rollback = rollback;
    run_trace(s, w, "the function returns ", rollback ? "rollback" : "commit");
    if (w->hooks && !r->seen.hooks)
        register_hooks(s, w);
    else
        send_decision(s, w);
}

static void after_step(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    if (r->result == ST_ABORTED && w->steps[r->step].stops)
        finish(s, w, 1);
    else
        take_step(s, w, r->step + 1);
}

static void call_forward(sim_t *s, wf_t *w);

/* Step k: replayed from its record, called again when registered without
 * one, or registered and run. */
static void take_step(sim_t *s, wf_t *w, int k)
{
    wf_run_t *r = &w->run;
    r->step = k;
    if (k == w->n_steps) {
        finish(s, w, !w->commit);
        return;
    }
    char what[48];
    snprintf(what, sizeof(what), "step %02d (%s) ", k + 1,
             kind_name(w->steps[k].kind));
    int seen = r->seen.steps[k];
    if (seen == SIM_SEEN_OK || seen == SIM_SEEN_ABORTED) {
        if ((seen == SIM_SEEN_ABORTED) != w->steps[k].fails)
            sim_fail(s, "%s: step %02d was recorded %s, yet it answers %s",
                     w->gid, k + 1, seen == SIM_SEEN_OK ? "OK" : "ABORTED",
                     w->steps[k].fails ? "ABORTED" : "OK");
        r->result = seen == SIM_SEEN_OK ? ST_OK : ST_ABORTED;
        run_trace(s, w, what, "replays its record");
        after_step(s, w);
        return;
    }
    if (seen == SIM_SEEN_REGISTERED) {
        run_trace(s, w, what, "is registered, not recorded: runs it again");
        r->phase = RUN_FORWARD;
        r->tries = 0;
        call_forward(s, w);
        return;
    }
    register_step(s, w);
}

/* The step's forward op: the local action here, behind the service's
 * barrier; a remote one a call over the network. */
static void call_forward(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    if (!run_lives(s, w))
        return;
    char id[16];
    step_id(r->step, id, sizeof(id));
    sim_branch_t *b = sim_branch_find(s, w->gid, id);
    if (w->steps[r->step].kind == STEP_LOCAL) {
        r->result = sim_barrier_apply(s, b, "action");
        run_trace(s, w, "local action ", r->result ? "ABORTED" : "OK");
        send_record(s, w);
        return;
    }
    svc_call_t *c = fkit_must(calloc(1, sizeof(*c)));
    c->w = w;
    c->serial = r->serial;
    c->token = r->call = ++s->svc->calls;
    c->step = r->step;
    r->call_status = -1;
    r->call_deadline = s->now + SVC_CALL_MS;
    int slow = !s->quiet && sim_chance(s, 5); /* held up on the way */
    sim_schedule(s, slow ? sim_between(s, 50, 600) : sim_between(s, 0, 5),
                 SIM_EV_SVC_CALL, c, 0);
    run_trace(s, w, "calls the forward op of step ", id);
    poll_in(s, w, 1, 10);
}

/* ---- forward calls on the wire ----------------------------------------- */

static void svc_call_arrive(sim_t *s, svc_call_t *c)
{
    wf_t *w = c->w;
    char id[16];
    step_id(c->step, id, sizeof(id));
    sim_branch_t *b = sim_branch_find(s, w->gid, id);
    const char *op = w->steps[c->step].kind == STEP_TCC ? "try" : "action";
    sim_fate_t fate = sim_call_fate(s);
    c->status = sim_call_op(s, fate, b, op);
    sim_trace(s, "wf %s: %s of step %s arrives: %s", w->gid, op, id,
              status_name(c->status));
    if (fate == SIM_FATE_LOST) { /* the service's deadline says unknown */
        free(c);
        return;
    }
    sim_schedule(s, sim_between(s, 0, 5), SIM_EV_SVC_ANS, c, 0);
}

static void svc_call_reply(sim_t *s, svc_call_t *c)
{
    (void)s;
    wf_run_t *r = &c->w->run;
    if (r->serial == c->serial && r->call == c->token)
        r->call_status = c->status;
    free(c);
}

/* The forward call's answer, or none by the deadline: OK and ABORTED are
 * results to record; anything else is unknown, and the step is called
 * again (or the function gives up: trellisd resumes it later). */
static void forward_poll(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    if (r->call_status == ST_OK || r->call_status == ST_ABORTED) {
        r->result = r->call_status;
        r->call = 0;
        send_record(s, w);
        return;
    }
    if (r->call_status < 0 && s->now < r->call_deadline) {
        poll_in(s, w, 1, 10);
        return;
    }
    r->call = 0;
    int silent = r->call_status < 0; /* the call may still be on its way */
    if (s->quiet || (r->tries < 4 && sim_chance(s, silent ? 50 : 75))) {
        call_forward(s, w);
    } else if (w->unknown_rolls) {
        w->rolled_unknown = 1;
        run_trace(s, w, "gives up on a step of unknown outcome: ", "rollback");
        finish(s, w, 1);
    } else {
        run_end(s, w, 0, "gives up on a step of unknown outcome");
    }
}

/* ---- answers ----------------------------------------------------------- */

/* What the progress says to do: end (final), repeat the decision
 * (decided), stop (stopped for the operator), or run the function. */
static void on_started(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    w->acked.started = 1;
    r->seen = r->rpc->progress;
    tm_tx_status_t st = r->rpc->status;
    if (tm_tx_is_final(st)) {
        run_end(s, w, 1, "already ended");
    } else if (st == TM_TX_SUBMITTED || st == TM_TX_ABORTING) {
        r->rollback = st == TM_TX_ABORTING;
        run_trace(s, w, "decided before: ", "repeats the decision");
        send_decision(s, w);
    } else if (r->seen.stopped) {
        run_end(s, w, 0, "stopped for the operator");
    } else {
        take_step(s, w, 0);
    }
}

static void advance(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    switch (r->phase) {
    case RUN_START:
        on_started(s, w);
        break;
    case RUN_REGISTER:
        if (w->acked.steps[r->step] == SIM_SEEN_NONE)
            w->acked.steps[r->step] = SIM_SEEN_REGISTERED;
        r->phase = RUN_FORWARD;
        r->tries = 0;
        call_forward(s, w);
        break;
    case RUN_RECORD:
        w->acked.steps[r->step] =
            r->result == ST_OK ? SIM_SEEN_OK : SIM_SEEN_ABORTED;
        after_step(s, w);
        break;
    case RUN_HOOKS:
        send_decision(s, w);
        break;
    case RUN_DECIDE:
        w->decided = r->rollback ? 2 : 1;
        run_end(s, w, 1, r->rollback ? "aborted" : "submitted");
        break;
    case RUN_FORWARD:
        break;
    }
}

/* An answer the run cannot go on from: send again (another node, when
 * this one said the workflow moved), or give up — the function returns
 * "retry", and trellisd's resume brings it back. */
static void on_refusal(sim_t *s, wf_t *w, int code)
{
    wf_run_t *r = &w->run;
    r->rpc = NULL;
    if (code == TM_CODE_UNAVAILABLE || code == TM_CODE_RESOURCE_EXHAUSTED ||
        code == TM_CODE_DEADLINE_EXCEEDED) {
        if (code == TM_CODE_UNAVAILABLE)
            r->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
        if (!s->quiet && sim_chance(s, 10))
            run_end(s, w, 0, "gives up after a refusal");
        else
            poll_in(s, w, 5, 30);
        return;
    }
    if (code == TM_CODE_FAILED_PRECONDITION) { /* stopped or ended there */
        run_end(s, w, 0, "refused: failed precondition");
        return;
    }
    sim_fail(s, "%s: %s answered code %d", w->gid, sim_method_name(r->method),
             code);
}

/* A run's next step: look at the request in flight or the forward call. */
static void run_poll(sim_t *s, wf_t *w)
{
    wf_run_t *r = &w->run;
    if (r->resume && s->now >= r->resume_deadline) {
        answer_call(s, r->resume, ST_DEADLINE, 0); /* trellisd gave up */
        r->resume = NULL;
    }
    if (r->phase == RUN_FORWARD) {
        forward_poll(s, w);
        return;
    }
    sim_rpc_t *q = r->rpc;
    if (!q) {
        run_send(s, w);
    } else if (!q->answered) {
        if (s->now < q->deadline_ms && q->gen == s->nodes[q->node].gen) {
            poll_in(s, w, 5, 30);
            return;
        }
        r->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
        if (!s->quiet && r->tries > 3 && sim_chance(s, 30))
            run_end(s, w, 0, "gives up waiting");
        else
            run_send(s, w); /* gave up waiting: send it again */
    } else if (q->code != TM_CODE_OK) {
        on_refusal(s, w, q->code);
    } else {
        advance(s, w);
    }
}

/* A run for the user's request, or for trellisd's Resume (whose answer
 * may be lost). */
static void run_begin(sim_t *s, wf_t *w, sim_call_t *resume, int lost)
{
    wf_run_t *r = &w->run;
    uint8_t *bytes = r->bytes;
    memset(r, 0, sizeof(*r));
    r->bytes = bytes;
    r->serial = ++s->svc->serials;
    r->number = ++w->runs;
    r->resume = resume;
    r->resume_deadline = s->now + (resume ? resume->timeout_ms : 0);
    r->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
    run_trace(s, w, "starts",
              lost     ? " (trellisd's resume, whose answer is lost)"
              : resume ? " (trellisd's resume)"
                       : "");
    send_start(s, w);
}

/* The user's request reaches the service: the workflow's first run. */
static void launch(sim_t *s, wf_t *w)
{
    if (w->launched)
        return;
    if (svc_down(s)) { /* the user tries again later */
        sim_schedule(s, s->svc->down_until - s->now + sim_between(s, 0, 50),
                     SIM_EV_SERVICE, w, 0);
        return;
    }
    w->launched = 1;
    char what[128];
    wf_describe(w, what, sizeof(what));
    sim_trace(s, "wf %s: the service runs %s", w->gid, what);
    run_begin(s, w, NULL, 0);
}

void sim_wf_event(sim_t *s, sim_ev_kind_t kind, void *p, uint64_t n)
{
    if (kind == SIM_EV_STOPPED) {
        sim_wf_operator_look(s, p);
    } else if (kind == SIM_EV_SVC_CALL) {
        svc_call_arrive(s, p);
    } else if (kind == SIM_EV_SVC_ANS) {
        svc_call_reply(s, p);
    } else if (n == 0) {
        launch(s, p);
    } else if (n == ((wf_t *)p)->run.serial) {
        run_poll(s, p);
    }
}

/* ---- trellisd's calls of the service ----------------------------------- */

/* Resume: a new run, answered once it decided; refused while one runs. */
static void serve_resume(sim_t *s, wf_t *w, sim_call_t *c, sim_fate_t fate)
{
    if (w->run.serial || fate == SIM_FATE_ONGOING) {
        sim_trace(s, "service: resume %s: running now", w->gid);
        answer_call(s, c, ST_FAILED_PRECONDITION, sim_between(s, 0, 5));
        return;
    }
    if (!s->quiet && sim_chance(s, 3)) { /* a replay mismatch, say */
        sim_trace(s, "service: resume %s: ABORTED, stopped for the operator",
                  w->gid);
        answer_call(s, c, ST_ABORTED, sim_between(s, 0, 5));
        sim_wf_operator_watch(s, w);
        return;
    }
    int lost = fate == SIM_FATE_LOST; /* it runs, the answer is lost */
    run_begin(s, w, lost ? NULL : c, lost);
    if (lost)
        answer_call(s, c, ST_DEADLINE, c->timeout_ms);
}

/* A local step's compensation, behind the service's barrier. */
static void serve_undo(sim_t *s, wf_t *w, sim_call_t *c, sim_fate_t fate)
{
    sim_branch_t *b = sim_branch_find(s, w->gid, c->branch);
    int k = atoi(c->branch) - 1;
    if (!b || k < 0 || k >= w->n_steps || w->steps[k].kind != STEP_LOCAL) {
        sim_fail(s,
                 "%s: the service was asked to compensate %s, not a "
                 "local step",
                 w->gid, c->branch);
        answer_call(s, c, ST_ABORTED, 0);
        return;
    }
    int status = sim_call_op(s, fate, b, "compensate");
    sim_trace(s, "service: compensate %s/%s: %s", w->gid, c->branch,
              status_name(status));
    answer_call(s, c, status,
                fate == SIM_FATE_LOST ? c->timeout_ms : sim_between(s, 0, 5));
}

/* The hooks of the outcome (op "commit" or "rollback"): run again and
 * again, they must be idempotent; the first run is stamped. */
static void serve_hooks(sim_t *s, wf_t *w, sim_call_t *c, sim_fate_t fate)
{
    int ran = fate == SIM_FATE_LOST || fate == SIM_FATE_ANSWERED;
    if (ran && !w->first_hook)
        w->first_hook = ++s->stamps;
    if (ran && strcmp(c->op, "commit") == 0)
        w->hook_commits++;
    else if (ran)
        w->hook_rollbacks++;
    int status = !ran                        ? ST_FAILED_PRECONDITION
                 : fate == SIM_FATE_ANSWERED ? ST_OK
                                             : ST_DEADLINE;
    sim_trace(s, "service: hooks %s %s: %s", w->gid, c->op,
              status_name(status));
    answer_call(s, c, status,
                fate == SIM_FATE_LOST ? c->timeout_ms : sim_between(s, 0, 5));
}

void sim_wf_serve(sim_t *s, sim_call_t *c)
{
    wf_t *w = wf_find(s, c->gid);
    if (!w) {
        sim_fail(s, "the workflow service was called for %s", c->gid);
        answer_call(s, c, ST_ABORTED, 0);
        return;
    }
    sim_fate_t fate = svc_down(s) ? SIM_FATE_UNAVAILABLE : sim_call_fate(s);
    if (fate == SIM_FATE_UNAVAILABLE) {
        sim_trace(s, "service: %s %s/%s: unavailable", c->op, c->gid,
                  c->branch);
        answer_call(s, c, ST_UNAVAILABLE, sim_between(s, 0, 5));
        return;
    }
    if (strcmp(c->op, "resume") == 0) {
        serve_resume(s, w, c, fate);
        return;
    }
    if (sim_store_status(s, w->gid) == TM_TX_PREPARED)
        sim_fail(s,
                 "%s/%s: %s through the service before the decision was "
                 "stored",
                 w->gid, c->branch, c->op);
    if (strcmp(c->op, "compensate") == 0)
        serve_undo(s, w, c, fate);
    else
        serve_hooks(s, w, c, fate);
}
