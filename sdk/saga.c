/*
 * saga.c — the saga builder: a TM-driven Saga assembled step by step in
 * memory and sent to trellisd in one Submit.
 *
 * The builder owns copies of everything it is given (gid, targets,
 * payloads, option strings), so callers may free their buffers as soon as
 * a builder call returns. It is a plain data structure: no locking, one
 * thread at a time. Invariant: every prerequisite of step i is an index
 * below i, so the declared order is acyclic by construction and trellisd
 * never sees a cycle from this SDK.
 *
 * trellis_saga_set_options returns void, so an allocation failure there is
 * remembered and reported by trellis_saga_submit rather than lost.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trellis/v1/tm.pb-c.h"

typedef struct {
    char *action;
    char *compensate; /* "" when the action needs no undo */
    uint8_t *payload;
    size_t payload_len;
    uint32_t *depends_on;
    size_t n_depends_on;
} saga_step_t;

struct trellis_saga {
    char *gid;
    saga_step_t *steps;
    size_t n_steps, cap_steps;
    int concurrent;
    int pivot; /* the pivot step's index + 1; 0: none */
    tr_owned_options_t options;
};

/* ---- construction ---------------------------------------------------- */

trellis_rc_t trellis_saga_new(const char *gid, trellis_saga_t **out, char *err,
                              size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "gid is NULL; use trellis_new_gid for a fresh one");
    trellis_saga_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->gid = strdup(gid)) == NULL) {
        free(s);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a saga");
    }
    *out = s;
    return TRELLIS_OK;
}

static void step_clear(saga_step_t *st)
{
    free(st->action);
    free(st->compensate);
    free(st->payload);
    free(st->depends_on);
}

void trellis_saga_free(trellis_saga_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_steps; i++)
        step_clear(&s->steps[i]);
    free(s->steps);
    tr_options_clear(&s->options.o);
    free(s->gid);
    free(s);
}

/* ---- steps ----------------------------------------------------------- */

/* A target must look like host:port/package.Service/Method: a host part,
 * then a '/' that starts the method. trellisd checks the rest (and its
 * allowlist); this catches the common slip of passing a bare method. */
static int target_looks_valid(const char *t)
{
    const char *slash = strchr(t, '/');
    return slash != NULL && slash != t && slash[1] != '\0';
}

static int steps_reserve_one(trellis_saga_t *s)
{
    return tr_reserve_one((void **)&s->steps, &s->cap_steps, s->n_steps,
                          sizeof *s->steps);
}

int trellis_saga_add_step(trellis_saga_t *s, const char *action,
                          const char *compensate, const void *payload,
                          size_t payload_len, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (s == NULL)
        return tr_errf(-1, err, errlen, "saga is NULL");
    if (action == NULL || !target_looks_valid(action))
        return tr_errf(-1, err, errlen,
                       "saga step %zu: action target \"%s\" is not "
                       "host:port/package.Service/Method",
                       s->n_steps, action != NULL ? action : "(null)");
    if (compensate != NULL && compensate[0] != '\0' &&
        !target_looks_valid(compensate))
        return tr_errf(-1, err, errlen,
                       "saga step %zu: compensate target \"%s\" is not "
                       "host:port/package.Service/Method",
                       s->n_steps, compensate);
    if (payload == NULL && payload_len > 0)
        return tr_errf(-1, err, errlen,
                       "saga step %zu: payload is NULL but payload_len is "
                       "%zu",
                       s->n_steps, payload_len);
    if (s->n_steps >= (size_t)INT32_MAX)
        return tr_errf(-1, err, errlen, "saga has too many steps");

    saga_step_t st = {0};
    st.action = strdup(action);
    st.compensate = tr_strdup0(compensate);
    if (payload_len > 0 && (st.payload = malloc(payload_len)) != NULL)
        memcpy(st.payload, payload, payload_len);
    st.payload_len = payload_len;
    if (st.action == NULL || st.compensate == NULL ||
        (payload_len > 0 && st.payload == NULL) || steps_reserve_one(s) != 0) {
        step_clear(&st);
        return tr_errf(-1, err, errlen,
                       "saga step %zu: out of memory copying it", s->n_steps);
    }
    s->steps[s->n_steps] = st;
    return (int)s->n_steps++;
}

trellis_rc_t trellis_saga_add_dependency(trellis_saga_t *s, int step,
                                         int prerequisite, char *err,
                                         size_t errlen)
{
    tr_err_clear(err, errlen);
    if (s == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "saga is NULL");
    trellis_rc_t rc =
        tr_deps_check(step, prerequisite, s->n_steps, "saga", err, errlen);
    if (rc == TRELLIS_OK) {
        saga_step_t *st = &s->steps[step];
        rc = tr_deps_add(&st->depends_on, &st->n_depends_on, step, prerequisite,
                         err, errlen);
    }
    if (rc == TRELLIS_OK)
        s->concurrent = 1;
    return rc;
}

void trellis_saga_set_concurrent(trellis_saga_t *s, int concurrent)
{
    if (s != NULL)
        s->concurrent = concurrent != 0;
}

trellis_rc_t trellis_saga_set_pivot(trellis_saga_t *s, int step, char *err,
                                    size_t errlen)
{
    tr_err_clear(err, errlen);
    if (s == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "saga is NULL");
    if (step < 0 || (size_t)step >= s->n_steps)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "saga pivot: step %d does not exist (the saga has %zu "
                       "steps)",
                       step, s->n_steps);
    if (s->pivot && s->pivot != step + 1)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "saga pivot: step %d is already the pivot; a saga has "
                       "at most one",
                       s->pivot - 1);
    s->pivot = step + 1;
    return TRELLIS_OK;
}

/* ---- options --------------------------------------------------------- */

void trellis_saga_set_options(trellis_saga_t *s, const trellis_options_t *o)
{
    if (s != NULL)
        tr_owned_options_set(&s->options, o);
}

/* ---- submit ---------------------------------------------------------- */

/* The protobuf steps, borrowing the builder's memory. */
typedef struct {
    Trellis__V1__SagaStep *msgs;
    Trellis__V1__SagaStep **ptrs;
} pb_steps_t;

static int pb_steps_build(const trellis_saga_t *s, pb_steps_t *out)
{
    out->msgs = NULL;
    out->ptrs = NULL;
    if (s->n_steps == 0)
        return 0;
    out->msgs = calloc(s->n_steps, sizeof *out->msgs);
    out->ptrs = calloc(s->n_steps, sizeof *out->ptrs);
    if (out->msgs == NULL || out->ptrs == NULL)
        return -1;
    for (size_t i = 0; i < s->n_steps; i++) {
        const saga_step_t *st = &s->steps[i];
        Trellis__V1__SagaStep init = TRELLIS__V1__SAGA_STEP__INIT;
        Trellis__V1__SagaStep *m = &out->msgs[i];
        *m = init;
        m->action = st->action;
        m->compensate = st->compensate;
        m->payload.len = st->payload_len;
        m->payload.data = st->payload;
        m->n_depends_on = st->n_depends_on;
        m->depends_on = st->depends_on;
        m->pivot = s->pivot == (int)i + 1;
        out->ptrs[i] = m;
    }
    return 0;
}

static void pb_steps_free(pb_steps_t *p)
{
    free(p->msgs);
    free(p->ptrs);
}

trellis_rc_t trellis_saga_submit(trellis_client_t *c, const trellis_saga_t *s,
                                 trellis_trans_status_t *status, char *reason,
                                 size_t reasonlen, char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (reason != NULL && reasonlen > 0)
        reason[0] = '\0';
    if (c == NULL || s == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "%s is NULL",
                       c == NULL ? "client" : "saga");
    if (s->options.oom)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "saga %s: out of memory copying its options", s->gid);
    if (s->n_steps == 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "saga %s has no steps", s->gid);

    pb_steps_t steps;
    tr_pb_options_t *opts =
        tr_pb_options_new(s->options.has ? &s->options.o : NULL);
    if (opts == NULL || pb_steps_build(s, &steps) != 0) {
        if (opts != NULL)
            pb_steps_free(&steps);
        tr_pb_options_free(opts);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "saga %s: out of memory building the request", s->gid);
    }
    Trellis__V1__SubmitRequest req = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    req.gid = s->gid;
    req.n_steps = s->n_steps;
    req.steps = steps.ptrs;
    req.concurrent = s->concurrent != 0;
    req.options = s->options.has ? tr_pb_options_get(opts) : NULL;

    tr_request_md_t md = tr_pb_options_md(opts);
    trellis_rc_t rc =
        tr_submit(c, &req, &md, status, reason, reasonlen, err, errlen);
    pb_steps_free(&steps);
    tr_pb_options_free(opts);
    return rc;
}
