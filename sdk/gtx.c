/*
 * gtx.c — the hybrid initiator helper (trellis_gtx.h): one begun
 * transaction whose initiator-driven branches are each of their own kind
 * (TCC, XA or saga), plus saga steps trellisd runs itself after submit.
 *
 * The initiator-driven part is ap_trans.c's, shared with the TCC and XA
 * helpers: register the branch's phase-2 ops first, then call its forward
 * op, so trellisd can roll back whatever may have run. This file switches
 * the tr_ap_t's kind per branch (TCC, XA, SAGA below), collects the
 * TM-run steps (copies) and sends them in the SubmitRequest, where
 * trellisd chains them after every registered branch (tm_request.c).
 * docs/hybrid.md states the rules.
 *
 * Every target is checked before anything is sent (INVALID_ARGUMENT).
 * Not thread safe: one thread at a time per trellis_gtx_t. The client is
 * borrowed and is itself thread safe.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trellis/v1/tm.pb-c.h"
#include "trellis/trellis_gtx.h"

/* A TM-run saga step, owned copies. */
typedef struct {
    char *action, *compensate; /* compensate "" when none */
    uint8_t *payload;
    size_t payload_len;
} gtx_step_t;

struct trellis_gtx {
    tr_ap_t ap;
    gtx_step_t *steps;
    size_t n_steps, cap_steps;
};

static const tr_ap_kind_t HYBRID_KIND = {
    .mode = TRELLIS_MODE_TCC, /* never registered: begin's label only */
    .trans_type = "tcc",
    .label = "hybrid",
    .forward_op = "try",
    .commit_name = "confirm",
    .rollback_name = "cancel",
    .commit_op = TRELLIS_OP_CONFIRM,
    .rollback_op = TRELLIS_OP_CANCEL,
};

/* ---- construction ---------------------------------------------------- */

static void step_clear(gtx_step_t *s)
{
    free(s->action);
    free(s->compensate);
    free(s->payload);
}

void trellis_gtx_free(trellis_gtx_t *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n_steps; i++)
        step_clear(&g->steps[i]);
    free(g->steps);
    tr_ap_clear(&g->ap);
    free(g);
}

trellis_rc_t trellis_gtx_begin(trellis_client_t *c, const char *gid,
                               const trellis_options_t *o, trellis_gtx_t **out,
                               char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    trellis_gtx_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a hybrid transaction");
    trellis_rc_t rc = tr_ap_begin(&g->ap, &HYBRID_KIND, c, gid, o, err, errlen);
    if (rc != TRELLIS_OK) {
        free(g);
        return rc;
    }
    *out = g;
    return TRELLIS_OK;
}

const char *trellis_gtx_gid(const trellis_gtx_t *g)
{
    return g != NULL ? g->ap.gid : NULL;
}

/* ---- initiator-driven branches --------------------------------------- */

/* Register and call one branch of the given kind. */
static trellis_rc_t gtx_call(trellis_gtx_t *g, const tr_ap_kind_t *kind,
                             const char *forward_target,
                             const char *commit_target,
                             const char *rollback_target, const void *payload,
                             size_t payload_len, uint8_t **reply,
                             size_t *reply_len, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (reply != NULL)
        *reply = NULL;
    if (reply_len != NULL)
        *reply_len = 0;
    if (g == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gtx is NULL");
    g->ap.kind = kind;
    return tr_ap_call_branch(&g->ap, forward_target, commit_target,
                             rollback_target, payload, payload_len, reply,
                             reply_len, err, errlen);
}

trellis_rc_t trellis_gtx_call_tcc(trellis_gtx_t *g, const char *try_target,
                                  const char *confirm_target,
                                  const char *cancel_target,
                                  const void *payload, size_t payload_len,
                                  uint8_t **reply, size_t *reply_len, char *err,
                                  size_t errlen)
{
    return gtx_call(g, &tr_ap_kind_tcc, try_target, confirm_target,
                    cancel_target, payload, payload_len, reply, reply_len, err,
                    errlen);
}

trellis_rc_t trellis_gtx_call_xa(trellis_gtx_t *g, const char *prepare_target,
                                 const char *commit_target,
                                 const char *rollback_target,
                                 const void *payload, size_t payload_len,
                                 uint8_t **reply, size_t *reply_len, char *err,
                                 size_t errlen)
{
    return gtx_call(g, &tr_ap_kind_xa, prepare_target, commit_target,
                    rollback_target, payload, payload_len, reply, reply_len,
                    err, errlen);
}

trellis_rc_t trellis_gtx_call_saga(trellis_gtx_t *g, const char *action_target,
                                   const char *compensate_target,
                                   const void *payload, size_t payload_len,
                                   uint8_t **reply, size_t *reply_len,
                                   char *err, size_t errlen)
{
    return gtx_call(g, &tr_ap_kind_saga, action_target, NULL, compensate_target,
                    payload, payload_len, reply, reply_len, err, errlen);
}

/* ---- TM-run steps ---------------------------------------------------- */

static int steps_reserve_one(trellis_gtx_t *g)
{
    if (g->n_steps < g->cap_steps)
        return 0;
    size_t cap = g->cap_steps ? 2 * g->cap_steps : 4;
    gtx_step_t *grown = realloc(g->steps, cap * sizeof *grown);
    if (grown == NULL)
        return -1;
    g->steps = grown;
    g->cap_steps = cap;
    return 0;
}

/* Copies of the step's fields into *st; -1 when out of memory. */
static int step_copy(gtx_step_t *st, const char *action, const char *compensate,
                     const void *payload, size_t payload_len)
{
    memset(st, 0, sizeof *st);
    st->action = strdup(action);
    st->compensate = tr_strdup0(compensate);
    st->payload_len = payload_len;
    if (payload_len > 0) {
        st->payload = malloc(payload_len);
        if (st->payload != NULL)
            memcpy(st->payload, payload, payload_len);
    }
    if (st->action == NULL || st->compensate == NULL ||
        (payload_len > 0 && st->payload == NULL)) {
        step_clear(st);
        return -1;
    }
    return 0;
}

trellis_rc_t trellis_gtx_add_step(trellis_gtx_t *g, const char *action_target,
                                  const char *compensate_target,
                                  const void *payload, size_t payload_len,
                                  char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (g == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gtx is NULL");
    if (payload == NULL && payload_len > 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "payload is NULL but payload_len is %zu", payload_len);
    trellis_rc_t rc = tr_ap_check_target(action_target, "action", err, errlen);
    if (rc == TRELLIS_OK && compensate_target != NULL &&
        compensate_target[0] != '\0')
        rc = tr_ap_check_target(compensate_target, "compensate", err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    if (steps_reserve_one(g) != 0 ||
        step_copy(&g->steps[g->n_steps], action_target, compensate_target,
                  payload, payload_len) != 0)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory adding a step to %s", g->ap.gid);
    g->n_steps++;
    return TRELLIS_OK;
}

/* ---- decision -------------------------------------------------------- */

/* Submit with the collected steps: a chain after every registered branch. */
static trellis_rc_t submit_with_steps(trellis_gtx_t *g,
                                      trellis_trans_status_t *status,
                                      char *reason, size_t reasonlen, char *err,
                                      size_t errlen)
{
    Trellis__V1__SagaStep *msgs = calloc(g->n_steps, sizeof *msgs);
    Trellis__V1__SagaStep **ptrs = calloc(g->n_steps, sizeof *ptrs);
    if (msgs == NULL || ptrs == NULL) {
        free(msgs);
        free(ptrs);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory submitting %s", g->ap.gid);
    }
    for (size_t i = 0; i < g->n_steps; i++) {
        Trellis__V1__SagaStep init = TRELLIS__V1__SAGA_STEP__INIT;
        msgs[i] = init;
        msgs[i].action = g->steps[i].action;
        msgs[i].compensate = g->steps[i].compensate;
        msgs[i].payload.len = g->steps[i].payload_len;
        msgs[i].payload.data = g->steps[i].payload;
        ptrs[i] = &msgs[i];
    }
    /* A begun transaction keeps its options; only wait_result counts. */
    Trellis__V1__TransOptions opts = TRELLIS__V1__TRANS_OPTIONS__INIT;
    opts.wait_result = g->ap.wait_result != 0;
    Trellis__V1__SubmitRequest req = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    req.gid = g->ap.gid;
    req.n_steps = g->n_steps;
    req.steps = ptrs;
    req.options = &opts;
    trellis_rc_t rc = tr_submit(g->ap.client, &req, NULL, status, reason,
                                reasonlen, err, errlen);
    free(msgs);
    free(ptrs);
    return rc;
}

trellis_rc_t trellis_gtx_submit(trellis_gtx_t *g,
                                trellis_trans_status_t *status, char *reason,
                                size_t reasonlen, char *err, size_t errlen)
{
    tr_err_clear(reason, reasonlen);
    tr_err_clear(err, errlen);
    if (g == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gtx is NULL");
    if (g->n_steps == 0)
        return tr_ap_submit(&g->ap, status, reason, reasonlen, err, errlen);
    return submit_with_steps(g, status, reason, reasonlen, err, errlen);
}

trellis_rc_t trellis_gtx_abort(trellis_gtx_t *g, const char *reason,
                               trellis_trans_status_t *status, char *err,
                               size_t errlen)
{
    if (g == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "gtx is NULL");
    return tr_ap_abort(&g->ap, reason, status, err, errlen);
}
