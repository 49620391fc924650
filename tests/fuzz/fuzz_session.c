/*
 * fuzz_session: requests applied to one transaction, then tm_plan driven
 * with fuzzed participant results (see fuzz_session.h). The handlers here
 * follow tm_engine_requests.c's (begin, register_on,
 * submit_existing/new_submitted, abort_live, drive) minus locks, store and
 * calls; when those change, this file should follow.
 */
#include "fuzz_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_model.h"
#include "tm_config.h"
#include "tm_plan.h"
#include "tm_request.h"

#define MAX_RECORDS 16
#define MAX_ROUNDS 64

typedef struct {
    tm_limits_t lim;
    tm_engine_config_t cfg;
    tm_trans_t *tx; /* NULL until a Begin or a Submit created it */
    tm_run_t run;   /* its runtime marks, as the engine keeps them */
} session_t;

/* The runtime marks, fitted to the transaction's branches. */
static tm_run_t *fit(session_t *s)
{
    fz_require(tm_run_fit(&s->run, s->tx->n_branches) == 0, "out of memory");
    return &s->run;
}

static void session_init(session_t *s, uint8_t variant)
{
    tm_config_t c;
    tm_config_default(&c);
    s->cfg = c.engine;
    s->tx = NULL;
    memset(&s->run, 0, sizeof(s->run));
    if (variant % 3 == 1) { /* tight: the limit paths */
        s->cfg.limits.max_branches = 4;
        s->cfg.limits.max_payload = 16;
        s->cfg.limits.max_headers = 2;
    } else if (variant % 3 == 2) { /* --max-steps 300, allow-targets *:* */
        char err[256];
        s->cfg.limits.max_branches = 300;
        fz_require(
            tm_allow_parse(&s->cfg.limits.allow, "*:*", err, sizeof(err)) == 0,
            "allow-targets *:* refused");
    }
    s->lim = s->cfg.limits;
}

/* The request is for the session's transaction (another gid would be
 * another transaction, which the session does not follow). */
static int ours(const session_t *s, const char *gid)
{
    return s->tx && strcmp(s->tx->gid, gid) == 0;
}

static void on_begin(session_t *s, const uint8_t *m, size_t n)
{
    char err[512];
    Trellis__V1__BeginRequest *r =
        trellis__v1__begin_request__unpack(NULL, n, m);
    if (!r || s->tx || tm_validate_begin(r, &s->lim, err, sizeof(err)) != 0)
        goto out; /* a second Begin changes nothing, idempotent or not */
    s->tx = tm_trans_new(r->gid, TM_TX_PREPARED, FZ_NOW_MS);
    fz_require(s->tx && tm_options_from_proto(&s->tx->opts, r->options) == 0,
               "out of memory");
    if (!s->tx->opts.timeout_to_fail_ms)
        s->tx->opts.timeout_to_fail_ms = s->cfg.prepared_timeout_ms;
out:
    trellis__v1__begin_request__free_unpacked(r, NULL);
}

static void on_register(session_t *s, const uint8_t *m, size_t n)
{
    char err[512];
    Trellis__V1__RegisterBranchRequest *r =
        trellis__v1__register_branch_request__unpack(NULL, n, m);
    if (!r || tm_validate_register(r, &s->lim, err, sizeof(err)) != 0 ||
        !ours(s, r->gid))
        goto out;
    tm_trans_t *tx = s->tx;
    int existing = tm_request_find_branch(tx, r->branch_id);
    if (existing >= 0) { /* idempotent or ALREADY_EXISTS: no change */
        tm_request_same_registration(&tx->branches[existing], r);
        goto out;
    }
    if (tx->status != TM_TX_PREPARED || tx->n_branches >= s->lim.max_branches ||
        tm_request_misplaced(tx, r, err, sizeof(err)))
        goto out;
    fz_require(tm_request_add_registered(tx, r) == 0, "out of memory");
    fz_require(
        tm_request_same_registration(&tx->branches[tx->n_branches - 1], r),
        "a registration does not match itself");
out:
    trellis__v1__register_branch_request__free_unpacked(r, NULL);
}

static void submit_new(session_t *s, const Trellis__V1__SubmitRequest *r,
                       uint64_t h)
{
    char err[512];
    tm_trans_t *tx = tm_trans_new(r->gid, TM_TX_SUBMITTED, FZ_NOW_MS);
    fz_require(tx && tm_options_from_proto(&tx->opts, r->options) == 0,
               "out of memory");
    tx->submit_hash = h;
    if (tm_request_add_steps(tx, r, &s->lim, err, sizeof(err)) != 0) {
        tm_trans_free(tx);
        return;
    }
    fz_model_check_steps(tx, r, 0);
    s->tx = tx;
}

static void submit_existing(session_t *s, const Trellis__V1__SubmitRequest *r,
                            uint64_t h)
{
    char err[512];
    tm_trans_t *tx = s->tx;
    if (tx->status != TM_TX_PREPARED || tx->submit_hash != 0)
        return; /* idempotent, ALREADY_EXISTS or FAILED_PRECONDITION */
    size_t before = tx->n_branches;
    if (tm_request_add_steps(tx, r, &s->lim, err, sizeof(err)) != 0) {
        fz_require(tx->n_branches == before,
                   "a refused submit left steps behind");
        return;
    }
    fz_model_check_steps(tx, r, before);
    tx->submit_hash = h;
    tx->status = TM_TX_SUBMITTED;
    tm_plan_mark_initiator_ops_done(tx, fit(s), FZ_NOW_MS);
}

static void on_submit(session_t *s, const uint8_t *m, size_t n)
{
    char err[512];
    Trellis__V1__SubmitRequest *r =
        trellis__v1__submit_request__unpack(NULL, n, m);
    if (!r || tm_validate_submit(r, &s->lim, err, sizeof(err)) != 0)
        goto out;
    uint64_t h = tm_request_submit_hash(r);
    if (!s->tx && r->n_steps > 0)
        submit_new(s, r, h);
    else if (ours(s, r->gid))
        submit_existing(s, r, h);
out:
    trellis__v1__submit_request__free_unpacked(r, NULL);
}

void fz_session_abort_reason(tm_trans_t *tx, const Trellis__V1__AbortRequest *r)
{
    char reason[TM_REASON_MAX + 32];
    snprintf(reason, sizeof(reason), "aborted by the initiator: %s",
             r->reason && *r->reason ? r->reason : "no reason given");
    tm_plan_start_rollback(tx, reason, FZ_NOW_MS);
}

static void on_abort(session_t *s, const uint8_t *m, size_t n)
{
    char err[512];
    Trellis__V1__AbortRequest *r =
        trellis__v1__abort_request__unpack(NULL, n, m);
    if (r && tm_validate_abort(r, err, sizeof(err)) == 0 && ours(s, r->gid) &&
        s->tx->status == TM_TX_PREPARED)
        fz_session_abort_reason(s->tx, r);
    trellis__v1__abort_request__free_unpacked(r, NULL);
}

/* ---- driving ------------------------------------------------------------ */

static tm_retry_policy_t policy_of(const session_t *s)
{
    const tm_options_t *o = &s->tx->opts;
    tm_retry_policy_t p;
    p.retry_interval_ms =
        o->retry_interval_ms ? o->retry_interval_ms : s->cfg.retry_interval_ms;
    p.max_backoff_ms = s->cfg.max_backoff_ms > p.retry_interval_ms
                           ? s->cfg.max_backoff_ms
                           : p.retry_interval_ms;
    p.retry_limit = o->retry_limit ? o->retry_limit : s->cfg.retry_limit;
    return p;
}

static tm_op_t *op_of(tm_trans_t *tx, tm_op_ref_t ref)
{
    fz_require(ref.branch < tx->n_branches && ref.slot < TM_SLOTS,
               "planned an op that does not exist");
    tm_op_t *op = &tx->branches[ref.branch].ops[ref.slot];
    fz_require(op->kind != TM_KIND_NONE && op->status == TM_OP_PENDING,
               "planned an unused slot or a settled op");
    return op;
}

/* The calls on the wire: planned, not answered yet. */
typedef struct {
    tm_op_ref_t *refs;
    size_t n, cap;
} wire_t;

static void put_on_wire(tm_trans_t *tx, tm_run_t *run, wire_t *w,
                        const tm_op_ref_t *refs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tm_op_t *op = op_of(tx, refs[i]);
        tm_op_run_t *mark = tm_run_op(run, refs[i].branch, refs[i].slot);
        fz_require(!mark->inflight, "planned an op that is on the wire");
        fz_require(refs[i].slot != TM_SLOT_FORWARD ||
                       !tx->branches[refs[i].branch].initiator_driven,
                   "planned the forward op of an initiator-driven branch");
        tm_op_note_attempt(op, FZ_NOW_MS);
        mark->inflight = 1;
        fz_require(w->n < w->cap, "more calls on the wire than ops");
        w->refs[w->n++] = refs[i];
    }
}

/* Answer the calls on the wire, each as its byte says; bit 7 keeps a call
 * on the wire for another round (a slow participant). */
static void answer(session_t *s, wire_t *w, fz_in_t *in)
{
    size_t kept = 0;
    for (size_t i = 0; i < w->n; i++) {
        tm_op_ref_t ref = w->refs[i];
        uint8_t b = fz_u8(in);
        if ((b & 0x40) && s->tx->opts.timeout_to_fail_ms)
            tm_plan_on_timeout(s->tx, FZ_NOW_MS); /* the timer fired */
        if (b & 0x80) {
            w->refs[kept++] = ref;
            continue;
        }
        tm_result_t res = (tm_result_t)(b & 3);
        tm_run_op(fit(s), ref.branch, ref.slot)->inflight = 0;
        tm_retry_policy_t p = policy_of(s);
        tm_plan_apply_result(s->tx, fit(s), ref.branch, ref.slot, res,
                             res == TM_RESULT_OK ? NULL : "fuzzed refusal", &p,
                             FZ_NOW_MS);
    }
    w->n = kept;
}

/* One plan, as tm_engine.c's tm_engine_drive: start what is ready, then finish
 * if that is the outcome; then the answers. 0 when nothing more can happen
 * (finished, or prepared with nothing to do). */
static int drive_round(session_t *s, wire_t *w, fz_in_t *in)
{
    tm_trans_t *tx = s->tx;
    size_t cap = tx->n_branches * TM_SLOTS;
    tm_op_ref_t *refs = malloc((cap ? cap : 1) * sizeof(*refs));
    fz_require(refs != NULL, "out of memory");
    size_t n = tm_plan_ready(tx, fit(s), refs, cap);
    put_on_wire(tx, &s->run, w, refs, n);
    free(refs);
    tm_tx_status_t outcome = tm_plan_outcome(tx, &s->run);
    fz_require(!outcome || w->n == 0, "finished with calls on the wire");
    fz_require(w->n || outcome || tx->status == TM_TX_PREPARED,
               "planning stalled: nothing to call, nothing on the wire, "
               "no outcome");
    if (outcome) {
        tm_plan_finish(tx, outcome, FZ_NOW_MS);
        return 0;
    }
    size_t on_wire = w->n;
    answer(s, w, in);
    return on_wire > 0;
}

/* Atomicity: a commit-side op never runs in a failed transaction, a
 * rollback-side op never in a succeeded one, and nothing stays pending. */
static void check_final(const tm_trans_t *tx)
{
    for (size_t i = 0; i < tx->n_branches; i++) {
        const tm_branch_t *b = &tx->branches[i];
        for (int sl = 0; sl < TM_SLOTS; sl++)
            fz_require(b->ops[sl].kind == TM_KIND_NONE ||
                           b->ops[sl].status != TM_OP_PENDING,
                       "a finished transaction has a pending op");
        tm_op_status_t cm = b->ops[TM_SLOT_COMMIT].status;
        tm_op_status_t rb = b->ops[TM_SLOT_ROLLBACK].status;
        if (tx->status == TM_TX_FAILED)
            fz_require(b->ops[TM_SLOT_COMMIT].kind == TM_KIND_NONE ||
                           cm != TM_OP_SUCCEEDED,
                       "a failed transaction committed a branch");
        else
            fz_require(b->ops[TM_SLOT_ROLLBACK].kind == TM_KIND_NONE ||
                           rb != TM_OP_SUCCEEDED,
                       "a succeeded transaction rolled a branch back");
    }
}

static void drive(session_t *s, fz_in_t *in)
{
    if (s->tx->status == TM_TX_PREPARED && (fz_u8(in) & 1) &&
        s->tx->opts.timeout_to_fail_ms)
        tm_plan_on_timeout(s->tx, FZ_NOW_MS); /* the initiator vanished */
    wire_t w = {NULL, 0, s->tx->n_branches * TM_SLOTS};
    w.refs = malloc((w.cap ? w.cap : 1) * sizeof(*w.refs));
    fz_require(w.refs != NULL, "out of memory");
    for (int round = 0; round < MAX_ROUNDS && !tm_tx_is_final(s->tx->status);
         round++)
        if (!drive_round(s, &w, in))
            break;
    free(w.refs);
    if (tm_tx_is_final(s->tx->status))
        check_final(s->tx);
}

typedef void (*record_fn)(session_t *s, const uint8_t *m, size_t n);

void fz_session_run(fz_in_t *in)
{
    static const record_fn records[] = {on_begin, on_register, on_submit,
                                        on_abort};
    session_t s;
    session_init(&s, fz_u8(in));
    for (int i = 0; i < MAX_RECORDS && in->n; i++) {
        uint8_t kind = fz_u8(in) % 5;
        if (kind == 4)
            break;
        const uint8_t *m;
        size_t n = fz_chunk(in, &m);
        records[kind](&s, m, n);
        if (s.tx)
            fz_model_check(s.tx, &s.lim);
    }
    if (!s.tx)
        return;
    drive(&s, in);
    fz_model_check(s.tx, &s.lim);
    fz_model_reply(s.tx);
    tm_trans_free(s.tx);
    tm_run_clear(&s.run);
}
