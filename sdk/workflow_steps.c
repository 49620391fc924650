/*
 * workflow_steps.c — the steps a workflow function takes (trellis_wf_saga,
 * _tcc, _xa, _local) and its hooks.
 *
 * Step n (branch id "%02u" of n) meets the progress trellisd handed to
 * the run at branch n, completion listeners and branch events not counted:
 *   - none there: a new step — RegisterBranch (its ops — the forward op's
 *     target too, which trellisd keeps for the comparison — and payload),
 *     then the forward op (the participant's, or the local action), then
 *     RecordStep with an OK or ABORTED answer; another answer is returned
 *     as it is, unrecorded, and the function is expected to retry;
 *   - the same step there, recorded: its recorded result, byte for byte,
 *     and nothing is called;
 *   - the same step, registered but not recorded: the forward op again
 *     (behind the participant's barrier that is safe), then RecordStep;
 *   - another step there (mode, targets, payload) or the hooks: a replay
 *     mismatch. It sticks: this and every later step return
 *     FAILED_PRECONDITION, and the run's decision is never sent.
 * In a phase-2 re-run (workflow_resume.c) nothing new runs: a step with
 * no record returns FAILED_PRECONDITION, and the local step being undone
 * gets its undo called with its recorded result when the run reaches it.
 *
 * A step with bad arguments (a malformed target) registers nothing, uses
 * up no branch id, and marks the run as having an unrecorded step, so it
 * cannot commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workflow_impl.h"

/* What a step asks for. */
typedef struct {
    const tr_ap_kind_t *kind; /* NULL: a local step */
    const char *forward;      /* remote: the forward op's target */
    trellis_branch_op_t ops[3];
    size_t n_ops; /* registered: a remote step's forward op (its target
                     kept, never called) and the phase-2 ops */
    const void *payload;
    size_t len;
    trellis_wf_local_fn run; /* local */
    trellis_wf_undo_fn undo;
    void *arg;
} wf_step_t;

static trellis_mode_t step_mode(const wf_step_t *s)
{
    return s->kind != NULL ? s->kind->mode : TRELLIS_MODE_LOCAL;
}

static int is_forward_op(Trellis__V1__OpKind op)
{
    return op == TRELLIS__V1__OP_KIND__OP_ACTION ||
           op == TRELLIS__V1__OP_KIND__OP_TRY ||
           op == TRELLIS__V1__OP_KIND__OP_PREPARE ||
           op == TRELLIS__V1__OP_KIND__OP_RESUME;
}

static const Trellis__V1__Op *forward_of(const Trellis__V1__Branch *b)
{
    for (size_t i = 0; i < b->n_ops; i++)
        if (is_forward_op(b->ops[i]->op))
            return b->ops[i];
    return NULL;
}

const Trellis__V1__Branch *tr_wf_branch(const Trellis__V1__Transaction *t,
                                        const char *id)
{
    for (size_t i = 0; i < t->n_branches; i++)
        if (strcmp(t->branches[i]->branch_id, id) == 0)
            return t->branches[i];
    return NULL;
}

/* Branch n of the progress, completion and branch listeners' events left
 * out: trellisd appends the former right after the head, the latter after
 * each branch they report, outside the steps' numbering. */
static const Trellis__V1__Branch *step_branch(const Trellis__V1__Transaction *t,
                                              size_t n)
{
    size_t pos = 0;
    for (size_t i = 0; i < t->n_branches; i++) {
        if ((int)t->branches[i]->mode == TRELLIS_MODE_EVENT ||
            (int)t->branches[i]->mode == TRELLIS_MODE_BRANCH_EVENT)
            continue;
        if (pos++ == n)
            return t->branches[i];
    }
    return NULL;
}

/* ---- matching a recorded branch -------------------------------------- */

/* The target of b's op of kind op; NULL when it has none (or an empty
 * one: a local step's action, a registration that did not name it). */
static const char *recorded_target(const Trellis__V1__Branch *b, int op)
{
    for (size_t i = 0; i < b->n_ops; i++)
        if ((int)b->ops[i]->op == op && b->ops[i]->target[0] != '\0')
            return b->ops[i]->target;
    return NULL;
}

static const char *asked_target(const wf_step_t *s, int op)
{
    for (size_t i = 0; i < s->n_ops; i++)
        if ((int)s->ops[i].op == op)
            return s->ops[i].target;
    return NULL;
}

/* The first op kind whose target differs between b and s, or 0. */
static int differing_op(const Trellis__V1__Branch *b, const wf_step_t *s)
{
    for (int op = TRELLIS_OP_ACTION; op <= TRELLIS_OP_RESUME; op++) {
        const char *r = recorded_target(b, op), *a = asked_target(s, op);
        if ((r == NULL) != (a == NULL) || (r != NULL && strcmp(r, a) != 0))
            return op;
    }
    return 0;
}

static int matches(const char *id, const Trellis__V1__Branch *b,
                   const wf_step_t *s)
{
    return strcmp(b->branch_id, id) == 0 && (int)b->mode == (int)step_mode(s) &&
           differing_op(b, s) == 0 && b->payload.len == s->len &&
           (s->len == 0 || memcmp(b->payload.data, s->payload, s->len) == 0);
}

/* ---- mismatch messages ----------------------------------------------- */

/* Appends to a bounded buffer, truncating. */
typedef struct {
    char *buf;
    size_t len, used;
} text_t;

static void put(text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(text_t *t, const char *fmt, ...)
{
    if (t->used >= t->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->used += (size_t)n;
}

/* "saga action T" / "local step": a branch by its mode and forward op. */
static void put_branch(text_t *t, int mode, const char *forward)
{
    put(t, "%s ", trellis_mode_name((trellis_mode_t)mode));
    if (mode == TRELLIS_MODE_LOCAL || forward == NULL)
        put(t, "step");
    else
        put(t, "%s %.100s",
            mode == TRELLIS_MODE_TCC  ? "try"
            : mode == TRELLIS_MODE_XA ? "prepare"
                                      : "action",
            forward);
}

/* "compensate T" or "no compensate". */
static void put_op(text_t *t, int op, const char *target)
{
    if (target == NULL)
        put(t, "no %s", trellis_op_name((trellis_op_t)op));
    else
        put(t, "%s %.100s", trellis_op_name((trellis_op_t)op), target);
}

/* Set the run's mismatch for step id (b: the branch recorded there): what
 * was recorded, and what the function asks for instead. */
static void set_mismatch(trellis_wf_t *wf, const char *id,
                         const Trellis__V1__Branch *b, const wf_step_t *s)
{
    text_t t = {wf->why, sizeof wf->why, 0};
    const Trellis__V1__Op *fw = forward_of(b);
    const char *rec_fw = fw != NULL && fw->target[0] ? fw->target : NULL;
    int op = differing_op(b, s);
    wf->mismatch = 1;
    put(&t, "step %s: ", id);
    if (strcmp(b->branch_id, WF_HOOKS_ID) == 0) {
        put(&t,
            "the recorded run decided after step %02u (its hooks are "
            "registered)",
            wf->n_steps - 1);
    } else if (strcmp(b->branch_id, id) != 0) {
        put(&t, "branch %.40s is recorded there", b->branch_id);
    } else if ((int)b->mode != (int)step_mode(s) ||
               (op != 0 && is_forward_op((Trellis__V1__OpKind)op))) {
        put(&t, "recorded ");
        put_branch(&t, b->mode, rec_fw);
    } else if (op != 0) {
        put(&t, "recorded ");
        put_branch(&t, b->mode, rec_fw);
        put(&t, " with ");
        put_op(&t, op, recorded_target(b, op));
        put(&t, ", but the function now asks for ");
        put_op(&t, op, asked_target(s, op));
        return;
    } else {
        put(&t,
            "recorded with a %zu-byte payload, but the function now "
            "asks for it with another %zu-byte payload",
            b->payload.len, s->len);
        return;
    }
    put(&t, ", but the function now asks for ");
    put_branch(&t, step_mode(s), s->forward);
}

/* ---- running a step -------------------------------------------------- */

/* The reply out[len] to the caller, who may not want it. */
static void hand_out(uint8_t *out, size_t len, uint8_t **reply,
                     size_t *reply_len)
{
    if (reply != NULL && reply_len != NULL) {
        *reply = out;
        *reply_len = len;
    } else {
        free(out);
    }
}

/* Call the local step's undo, once, with the recorded result. */
static void run_undo(trellis_wf_t *wf, const char *id, const wf_step_t *s,
                     const Trellis__V1__Op *fw)
{
    wf->undo_reached = 1;
    wf->undo_rc = TRELLIS_OK;
    if (s->undo == NULL)
        return;
    int ok = fw != NULL && fw->recorded &&
             fw->status != TRELLIS__V1__OP_STATUS__OP_FAILED;
    trellis_wf_step_ctx_t ctx = {wf->gid, id, "compensate", wf->entry.user};
    wf->undo_err[0] = '\0';
    wf->undo_rc =
        s->undo(&ctx, s->arg, ok ? fw->result.data : NULL,
                ok ? fw->result.len : 0, wf->undo_err, sizeof wf->undo_err);
    wf->undo_err[sizeof wf->undo_err - 1] = '\0';
}

/* The recorded result of a step, as the forward op gave it. */
static trellis_rc_t replay(const Trellis__V1__Op *fw, const char *id,
                           uint8_t **reply, size_t *reply_len, char *err,
                           size_t errlen)
{
    if (fw->status == TRELLIS__V1__OP_STATUS__OP_FAILED)
        return tr_errf(TRELLIS_ABORTED, err, errlen, "%s", fw->last_error);
    uint8_t *copy = NULL;
    if (fw->result.len > 0) {
        if ((copy = malloc(fw->result.len)) == NULL)
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "out of memory for step %s's recorded result", id);
        memcpy(copy, fw->result.data, fw->result.len);
    }
    hand_out(copy, fw->result.len, reply, reply_len);
    return TRELLIS_OK;
}

static trellis_rc_t register_step(trellis_wf_t *wf, const char *id,
                                  const wf_step_t *s, char *err, size_t errlen)
{
    return trellis_register_branch(wf->w->client, wf->gid, id, step_mode(s),
                                   s->ops, s->n_ops, s->payload, s->len, err,
                                   errlen);
}

/* The forward op: the participant's, or the local action. */
static trellis_rc_t call_forward(trellis_wf_t *wf, const char *id,
                                 const wf_step_t *s, uint8_t **out,
                                 size_t *out_len, char *msg, size_t msglen)
{
    if (s->kind != NULL) {
        wf->ap.kind = s->kind;
        return tr_ap_forward(&wf->ap, id, s->forward, s->payload, s->len, out,
                             out_len, msg, msglen);
    }
    trellis_wf_step_ctx_t ctx = {wf->gid, id, "action", wf->entry.user};
    trellis_rc_t rc = s->run(&ctx, s->arg, out, out_len, msg, msglen);
    msg[msglen - 1] = '\0';
    if (rc != TRELLIS_OK) {
        free(*out);
        *out = NULL;
        *out_len = 0;
    }
    return rc;
}

/* Call the forward op and record an OK or ABORTED answer. */
static trellis_rc_t run_and_record(trellis_wf_t *wf, const char *id,
                                   const wf_step_t *s, uint8_t **reply,
                                   size_t *reply_len, char *err, size_t errlen)
{
    char msg[WF_MSG_MAX + 1] = "";
    uint8_t *out = NULL;
    size_t out_len = 0;
    trellis_rc_t rc = call_forward(wf, id, s, &out, &out_len, msg, sizeof msg);
    if (rc != TRELLIS_OK && rc != TRELLIS_ABORTED) {
        wf->unrecorded = 1;
        return tr_errf(rc, err, errlen, "%s", msg);
    }
    char why[512];
    trellis_rc_t rrc =
        tr_wf_record(wf, id, rc, out, out_len, rc == TRELLIS_ABORTED ? msg : "",
                     why, sizeof why);
    if (rrc != TRELLIS_OK) {
        wf->unrecorded = 1;
        free(out);
        return tr_errf(rrc, err, errlen,
                       "step %s: its result could not be recorded: %s", id,
                       why);
    }
    hand_out(out, out_len, reply, reply_len);
    return rc == TRELLIS_OK ? TRELLIS_OK : tr_errf(rc, err, errlen, "%s", msg);
}

/* Arguments a step must have; INVALID_ARGUMENT otherwise. */
static trellis_rc_t check_step(const wf_step_t *s, char *err, size_t errlen)
{
    if (s->payload == NULL && s->len > 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "payload is NULL but its length is %zu", s->len);
    if (s->kind == NULL)
        return s->run != NULL ? TRELLIS_OK
                              : tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                                        "a local step needs a function");
    trellis_rc_t rc = TRELLIS_OK;
    for (size_t i = 0; rc == TRELLIS_OK && i < s->n_ops; i++)
        rc = tr_ap_check_target(s->ops[i].target, trellis_op_name(s->ops[i].op),
                                err, errlen);
    return rc;
}

/* One step of the run (see the file comment). */
static trellis_rc_t step(trellis_wf_t *wf, const wf_step_t *s, uint8_t **reply,
                         size_t *reply_len, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (reply != NULL)
        *reply = NULL;
    if (reply_len != NULL)
        *reply_len = 0;
    if (wf == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "wf is NULL");
    trellis_rc_t rc = check_step(s, err, errlen);
    if (rc != TRELLIS_OK) {
        wf->unrecorded = 1;
        return rc;
    }
    char id[16];
    snprintf(id, sizeof id, "%02u", ++wf->n_steps);
    const Trellis__V1__Transaction *t = wf->progress;
    const Trellis__V1__Branch *b = step_branch(t, wf->n_steps);
    if (!wf->mismatch && b != NULL && !matches(id, b, s))
        set_mismatch(wf, id, b, s);
    if (wf->mismatch)
        return tr_errf(TRELLIS_FAILED_PRECONDITION, err, errlen,
                       "replay mismatch: %s", wf->why);
    const Trellis__V1__Op *fw = b != NULL ? forward_of(b) : NULL;
    if (wf->mode == WF_RUN_COMPENSATE && s->kind == NULL && b != NULL &&
        strcmp(id, wf->undo_id) == 0)
        run_undo(wf, id, s, fw);
    if (fw != NULL && fw->recorded)
        return replay(fw, id, reply, reply_len, err, errlen);
    if (wf->mode != WF_RUN_FORWARD) {
        wf->unrecorded = 1;
        return tr_errf(TRELLIS_FAILED_PRECONDITION, err, errlen,
                       "step %s has no recorded result and the workflow "
                       "has decided: it does not run",
                       id);
    }
    if (b == NULL && (rc = register_step(wf, id, s, err, errlen)) != 0) {
        wf->unrecorded = 1;
        return rc;
    }
    return run_and_record(wf, id, s, reply, reply_len, err, errlen);
}

/* ---- the public steps ------------------------------------------------ */

/* A remote step: kind's forward op at forward, then the phase-2 ops. */
static trellis_rc_t remote(trellis_wf_t *wf, const tr_ap_kind_t *kind,
                           const char *forward, const char *commit,
                           const char *rollback, const void *payload,
                           size_t len, uint8_t **reply, size_t *reply_len,
                           char *err, size_t errlen)
{
    trellis_op_t fw = kind == &tr_ap_kind_tcc  ? TRELLIS_OP_TRY
                      : kind == &tr_ap_kind_xa ? TRELLIS_OP_PREPARE
                                               : TRELLIS_OP_ACTION;
    wf_step_t s = {.kind = kind,
                   .forward = forward,
                   .ops = {{fw, forward}},
                   .n_ops = 1,
                   .payload = payload,
                   .len = len};
    if (kind->commit_name != NULL)
        s.ops[s.n_ops++] = (trellis_branch_op_t){kind->commit_op, commit};
    if (kind->commit_name != NULL || (rollback != NULL && rollback[0]))
        s.ops[s.n_ops++] = (trellis_branch_op_t){kind->rollback_op, rollback};
    return step(wf, &s, reply, reply_len, err, errlen);
}

trellis_rc_t trellis_wf_saga(trellis_wf_t *wf, const char *action,
                             const char *compensate, const void *payload,
                             size_t len, uint8_t **reply, size_t *reply_len,
                             char *err, size_t errlen)
{
    return remote(wf, &tr_ap_kind_saga, action, NULL, compensate, payload, len,
                  reply, reply_len, err, errlen);
}

trellis_rc_t trellis_wf_tcc(trellis_wf_t *wf, const char *try_target,
                            const char *confirm, const char *cancel,
                            const void *payload, size_t len, uint8_t **reply,
                            size_t *reply_len, char *err, size_t errlen)
{
    return remote(wf, &tr_ap_kind_tcc, try_target, confirm, cancel, payload,
                  len, reply, reply_len, err, errlen);
}

trellis_rc_t trellis_wf_xa(trellis_wf_t *wf, const char *prepare,
                           const char *commit, const char *rollback,
                           const void *payload, size_t len, uint8_t **reply,
                           size_t *reply_len, char *err, size_t errlen)
{
    return remote(wf, &tr_ap_kind_xa, prepare, commit, rollback, payload, len,
                  reply, reply_len, err, errlen);
}

trellis_rc_t trellis_wf_local(trellis_wf_t *wf, trellis_wf_local_fn run,
                              trellis_wf_undo_fn undo, void *arg,
                              uint8_t **reply, size_t *reply_len, char *err,
                              size_t errlen)
{
    wf_step_t s = {.run = run, .undo = undo, .arg = arg};
    if (wf != NULL) {
        s.payload = wf->resume_req;
        s.len = wf->resume_req_len;
        if (undo != NULL)
            s.ops[s.n_ops++] =
                (trellis_branch_op_t){TRELLIS_OP_COMPENSATE, wf->resume_target};
    }
    return step(wf, &s, reply, reply_len, err, errlen);
}

void trellis_wf_step_branch_ctx(const trellis_wf_step_ctx_t *ctx,
                                trellis_branch_ctx_t *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (ctx == NULL)
        return;
    out->gid = ctx->gid;
    out->trans_type = "local";
    out->branch_id = ctx->branch_id;
    out->op = ctx->op;
    out->method = "";
}

const char *trellis_wf_gid(const trellis_wf_t *wf)
{
    return wf != NULL ? wf->gid : NULL;
}

void *trellis_wf_user(const trellis_wf_t *wf)
{
    return wf != NULL ? wf->entry.user : NULL;
}

/* ---- the decision's checks ------------------------------------------- */

int tr_wf_check_all_reached(trellis_wf_t *wf)
{
    const Trellis__V1__Transaction *t = wf->progress;
    const Trellis__V1__Branch *b;
    for (size_t i = (size_t)wf->n_steps + 1; (b = step_branch(t, i)); i++) {
        if (strcmp(b->branch_id, WF_HOOKS_ID) == 0)
            continue;
        const Trellis__V1__Op *fw = forward_of(b);
        text_t txt = {wf->why, sizeof wf->why, 0};
        put(&txt, "step %.40s: recorded ", b->branch_id);
        put_branch(&txt, b->mode,
                   fw != NULL && fw->target[0] ? fw->target : NULL);
        put(&txt, ", but the function now commits after step %02u",
            wf->n_steps);
        wf->mismatch = 1;
        return -1;
    }
    return 0;
}

/* ---- hooks ----------------------------------------------------------- */

static trellis_rc_t add_hook(trellis_wf_t *wf, wf_hook_when_t when,
                             trellis_wf_hook_fn fn, void *arg)
{
    if (wf == NULL || fn == NULL)
        return TRELLIS_INVALID_ARGUMENT;
    if (wf->n_hooks == wf->cap_hooks) {
        size_t cap = wf->cap_hooks ? 2 * wf->cap_hooks : 4;
        wf_hook_t *grown = realloc(wf->hooks, cap * sizeof *grown);
        if (grown == NULL)
            return TRELLIS_RESOURCE_EXHAUSTED;
        wf->hooks = grown;
        wf->cap_hooks = cap;
    }
    wf->hooks[wf->n_hooks++] = (wf_hook_t){when, fn, arg};
    return TRELLIS_OK;
}

trellis_rc_t trellis_wf_on_commit(trellis_wf_t *wf, trellis_wf_hook_fn fn,
                                  void *arg)
{
    return add_hook(wf, WF_ON_COMMIT, fn, arg);
}

trellis_rc_t trellis_wf_on_rollback(trellis_wf_t *wf, trellis_wf_hook_fn fn,
                                    void *arg)
{
    return add_hook(wf, WF_ON_ROLLBACK, fn, arg);
}

trellis_rc_t trellis_wf_on_finish(trellis_wf_t *wf, trellis_wf_hook_fn fn,
                                  void *arg)
{
    return add_hook(wf, WF_ON_FINISH, fn, arg);
}

trellis_rc_t tr_wf_register_hooks(trellis_wf_t *wf, char *err, size_t errlen)
{
    if (wf->n_hooks == 0)
        return TRELLIS_OK;
    const trellis_branch_op_t ops[2] = {
        {TRELLIS_OP_COMMIT, wf->resume_target},
        {TRELLIS_OP_ROLLBACK, wf->resume_target},
    };
    return trellis_register_branch(wf->w->client, wf->gid, WF_HOOKS_ID,
                                   TRELLIS_MODE_HOOKS, ops, 2, wf->resume_req,
                                   wf->resume_req_len, err, errlen);
}
