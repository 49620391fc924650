/*
 * tm_validate: input checks for the TM's requests (see tm_validate.h).
 */
#include "tm_validate.h"

#include "tm_kind.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_trans.h"
#include "tm_call.h"
#include "tm_trace.h"

void tm_limits_default(tm_limits_t *l)
{
    l->max_branches = 100;
    l->max_payload = 64 * 1024;
    l->max_result = 64 * 1024;
    l->max_headers = 16;
    l->max_option_ms = 24u * 3600u * 1000u;
    char err[64];
    if (tm_allow_parse(&l->allow, TM_ALLOW_DEFAULT, err, sizeof(err)) != 0)
        l->allow.n = 0; /* cannot happen; an empty list refuses everything */
}

static int fail(char *err, size_t errlen, const char *fmt, const char *a,
                const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

static int is_id_char(int c)
{
    return isalnum(c) || c == '_' || c == '.' || c == ':' || c == '-';
}

static int validate_id(const char *id, const char *what, size_t max, char *err,
                       size_t errlen)
{
    if (!id || !*id)
        return fail(err, errlen, "%s is empty%s", what, "");
    size_t n = strlen(id);
    if (n > max) {
        snprintf(err, errlen, "%s is %zu characters long; at most %zu allowed",
                 what, n, max);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_id_char((unsigned char)id[i])) {
            snprintf(err, errlen,
                     "%s has character 0x%02x at offset %zu; allowed are "
                     "letters, digits and _ . : -",
                     what, (unsigned char)id[i], i);
            return -1;
        }
    }
    return 0;
}

int tm_validate_gid(const char *gid, char *err, size_t errlen)
{
    return validate_id(gid, "gid", TM_GID_MAX, err, errlen);
}

int tm_validate_branch_id(const char *id, char *err, size_t errlen)
{
    return validate_id(id, "branch_id", TM_BRANCH_ID_MAX, err, errlen);
}

int tm_parse_target(const char *target, const char *what, tm_target_t *out,
                    char *err, size_t errlen)
{
    switch (trellis_target_parse(target, out)) {
    case TRELLIS_TARGET_OK:
        return 0;
    case TRELLIS_TARGET_EMPTY:
        return fail(err, errlen, "%s is empty%s", what, "");
    case TRELLIS_TARGET_TOO_LONG:
        return fail(err, errlen, "%s is too long (%.200s)", what, target);
    case TRELLIS_TARGET_BAD_SHAPE:
        break;
    }
    return fail(err, errlen,
                "%s \"%.200s\" is not of the form "
                "host:port/package.Service/Method",
                what, target);
}

/* target is well formed; refuse it unless the allowlist admits its
 * host:port. */
static int check_allowed(const char *target, const char *what,
                         const tm_limits_t *l, char *err, size_t errlen)
{
    tm_target_t t;
    if (tm_parse_target(target, what, &t, err, errlen) != 0)
        return TM_INVALID;
    if (tm_allow_match(&l->allow, t.host_port))
        return 0;
    snprintf(err, errlen,
             "%s %.255s is not allowed: %.255s matches no pattern of "
             "trellisd's allow-targets setting (%.600s)",
             what, target, t.host_port, l->allow.text);
    return TM_DENIED;
}

static int validate_header(const Trellis__V1__Header *h, size_t i, char *err,
                           size_t errlen)
{
    const char *k = h->key ? h->key : "";
    size_t n = strlen(k);
    int ok = n > 0 && n <= TM_HEADER_KEY_MAX;
    for (size_t j = 0; ok && j < n; j++) {
        unsigned char c = (unsigned char)k[j];
        ok = islower(c) || isdigit(c) || c == '-' || c == '_' || c == '.';
    }
    if (!ok) {
        snprintf(err, errlen,
                 "options.branch_headers[%zu].key \"%.64s\" must be 1..%d "
                 "characters of a-z 0-9 - _ .",
                 i, k, TM_HEADER_KEY_MAX);
        return -1;
    }
    if (strncmp(k, "grpc-", 5) == 0 || strncmp(k, "dtm-", 4) == 0 ||
        strcmp(k, "trellis-cluster-id") == 0 ||
        strcmp(k, TM_ACTION_LOG_KEY) == 0 ||
        strcmp(k, TM_ACTION_LOG_SIZE_KEY) == 0 || strcmp(k, "te") == 0 ||
        strcmp(k, "content-type") == 0) {
        snprintf(err, errlen,
                 "options.branch_headers[%zu].key \"%s\" is reserved", i, k);
        return -1;
    }
    if (strcmp(k, TM_TRACEPARENT_KEY) == 0 ||
        strcmp(k, TM_TRACESTATE_KEY) == 0) {
        snprintf(err, errlen,
                 "options.branch_headers[%zu].key \"%s\" is reserved: "
                 "trellisd forwards the trace context of the request's own "
                 "%s metadata",
                 i, k, k);
        return -1;
    }
    const char *v = h->value ? h->value : "";
    size_t vn = strlen(v);
    ok = vn <= TM_HEADER_VALUE_MAX;
    for (size_t j = 0; ok && j < vn; j++)
        ok = v[j] >= 0x20 && v[j] < 0x7f;
    if (!ok) {
        snprintf(err, errlen,
                 "options.branch_headers[%zu].value must be at most %d "
                 "printable ASCII characters",
                 i, TM_HEADER_VALUE_MAX);
        return -1;
    }
    return 0;
}

/* The targets of one list of listeners, each one the allowlist admits. */
static int validate_targets(char **targets, size_t n, const char *field,
                            const tm_limits_t *l, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof(what), "options.%s[%zu]", field, i);
        int rc = check_allowed(targets[i], what, l, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Completion and branch listeners: a few targets together (each
 * branch listener multiplies the branches), each one allowed. */
static int validate_listeners(const Trellis__V1__TransOptions *o,
                              const tm_limits_t *l, char *err, size_t errlen)
{
    if (o->n_listeners + o->n_branch_listeners > TM_LISTENERS_MAX) {
        snprintf(err, errlen,
                 "options.listeners has %zu entries and "
                 "options.branch_listeners %zu; at most %d allowed together",
                 o->n_listeners, o->n_branch_listeners, TM_LISTENERS_MAX);
        return TM_INVALID;
    }
    if (o->listener_batch > TM_LISTENER_BATCH_MAX) {
        snprintf(err, errlen,
                 "options.listener_batch is %u; at most %d allowed",
                 o->listener_batch, TM_LISTENER_BATCH_MAX);
        return TM_INVALID;
    }
    int rc = validate_targets(o->listeners, o->n_listeners, "listeners", l, err,
                              errlen);
    return rc ? rc
              : validate_targets(o->branch_listeners, o->n_branch_listeners,
                                 "branch_listeners", l, err, errlen);
}

/* The trace context fields are trellisd's to fill (tm_trace.h). */
static int validate_no_trace(const Trellis__V1__TransOptions *o, char *err,
                             size_t errlen)
{
    const char *field = o->traceparent && *o->traceparent ? "traceparent"
                        : o->tracestate && *o->tracestate ? "tracestate"
                                                          : NULL;
    if (!field)
        return 0;
    snprintf(err, errlen,
             "options.%s is set by trellisd from the request's %s metadata "
             "(W3C trace context); send it as request metadata, not in the "
             "message",
             field, field);
    return -1;
}

int tm_validate_options(const Trellis__V1__TransOptions *o,
                        const tm_limits_t *l, char *err, size_t errlen)
{
    if (!o)
        return 0;
    if (validate_no_trace(o, err, errlen) != 0)
        return -1;
    const struct {
        const char *name;
        uint32_t v;
    } ms[] = {{"timeout_to_fail_ms", o->timeout_to_fail_ms},
              {"retry_interval_ms", o->retry_interval_ms},
              {"request_timeout_ms", o->request_timeout_ms}};
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        if (ms[i].v > l->max_option_ms) {
            snprintf(err, errlen, "options.%s is %u; at most %u allowed",
                     ms[i].name, ms[i].v, l->max_option_ms);
            return -1;
        }
    }
    if (o->n_branch_headers > l->max_headers) {
        snprintf(err, errlen,
                 "options.branch_headers has %zu entries; at "
                 "most %u allowed",
                 o->n_branch_headers, l->max_headers);
        return -1;
    }
    for (size_t i = 0; i < o->n_branch_headers; i++)
        if (validate_header(o->branch_headers[i], i, err, errlen) != 0)
            return -1;
    return validate_listeners(o, l, err, errlen);
}

/* Branch i of a Begin: its own gid empty or the Begin's, a registration
 * as RegisterBranch takes it, of a kind that may stand in a transaction
 * Begin makes (not a workflow's), its id not used by an earlier one. */
static int validate_begin_branch(const Trellis__V1__BeginRequest *r, size_t i,
                                 const tm_limits_t *l, char *err, size_t errlen)
{
    const Trellis__V1__RegisterBranchRequest *b = r->branches[i];
    if (b->gid[0] && strcmp(b->gid, r->gid) != 0) {
        snprintf(err, errlen,
                 "branches[%zu].gid is %.128s; leave it empty or give the "
                 "Begin's gid",
                 i, b->gid);
        return TM_INVALID;
    }
    Trellis__V1__RegisterBranchRequest same_gid = *b;
    same_gid.gid = r->gid;
    char why[480];
    int rc = tm_validate_register(&same_gid, l, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "branches[%zu]: %s", i, why);
        return rc;
    }
    const tm_kind_t *kind = tm_kind_find((tm_mode_t)b->mode);
    if (kind->place != TM_PLACE_ANY) {
        snprintf(err, errlen,
                 "branches[%zu]: a %s branch belongs to a workflow, and "
                 "Begin makes none (StartWorkflow does)",
                 i, kind->name);
        return TM_INVALID;
    }
    for (size_t j = 0; j < i; j++)
        if (strcmp(r->branches[j]->branch_id, b->branch_id) == 0) {
            snprintf(err, errlen, "branches[%zu] and branches[%zu] are both %s",
                     j, i, b->branch_id);
            return TM_INVALID;
        }
    return 0;
}

int tm_validate_begin(const Trellis__V1__BeginRequest *r, const tm_limits_t *l,
                      char *err, size_t errlen)
{
    if (tm_validate_gid(r->gid, err, errlen) != 0)
        return -1;
    if (r->n_branches > l->max_branches) {
        snprintf(err, errlen, "%zu branches; at most %u per transaction",
                 r->n_branches, l->max_branches);
        return TM_INVALID;
    }
    for (size_t i = 0; i < r->n_branches; i++) {
        int rc = validate_begin_branch(r, i, l, err, errlen);
        if (rc != 0)
            return rc;
    }
    return tm_validate_options(r->options, l, err, errlen);
}

static int validate_payload(size_t len, const char *what, const tm_limits_t *l,
                            char *err, size_t errlen)
{
    if (len > l->max_payload) {
        snprintf(err, errlen, "%s is %zu bytes; at most %u allowed%s%s", what,
                 len, l->max_payload, l->payload_bound[0] ? ": " : "",
                 l->payload_bound);
        return -1;
    }
    return 0;
}

static int validate_depends_on(const uint32_t *deps, size_t n, size_t i,
                               char *err, size_t errlen)
{
    for (size_t d = 0; d < n; d++) {
        if (deps[d] >= i) {
            snprintf(err, errlen,
                     "steps[%zu].depends_on[%zu] is %u; a step may only "
                     "depend on an earlier step",
                     i, d, deps[d]);
            return -1;
        }
        for (size_t e = 0; e < d; e++) {
            if (deps[e] == deps[d]) {
                snprintf(err, errlen,
                         "steps[%zu].depends_on lists step %u twice", i,
                         deps[d]);
                return -1;
            }
        }
    }
    return 0;
}

static int validate_step(const Trellis__V1__SagaStep *s, size_t i,
                         const tm_limits_t *l, char *err, size_t errlen)
{
    char what[64];
    snprintf(what, sizeof(what), "steps[%zu].action", i);
    int rc = check_allowed(s->action, what, l, err, errlen);
    if (rc != 0)
        return rc;
    if (s->compensate && *s->compensate) {
        snprintf(what, sizeof(what), "steps[%zu].compensate", i);
        rc = check_allowed(s->compensate, what, l, err, errlen);
        if (rc != 0)
            return rc;
    }
    snprintf(what, sizeof(what), "steps[%zu].payload", i);
    if (validate_payload(s->payload.len, what, l, err, errlen) != 0)
        return -1;
    return validate_depends_on(s->depends_on, s->n_depends_on, i, err, errlen);
}

/* ---- the pivot (tm_plan.h, "Pivot") ------------------------------------ */

/* Step i's prerequisites among the steps, as tm_request_add_steps builds
 * them: its depends_on, or the step before it unless concurrent (a root
 * depends only on registered branches, which come before every step).
 * step_prereqs says how many, step_prereq gives the k-th. */
static size_t step_prereq(const Trellis__V1__SubmitRequest *r, size_t i,
                          size_t k)
{
    const Trellis__V1__SagaStep *s = r->steps[i];
    if (s->n_depends_on)
        return s->depends_on[k];
    return i - 1; /* the chain: only asked when step_prereqs says 1 */
}

static size_t step_prereqs(const Trellis__V1__SubmitRequest *r, size_t i)
{
    const Trellis__V1__SagaStep *s = r->steps[i];
    if (s->n_depends_on)
        return s->n_depends_on;
    return !r->concurrent && i > 0 ? 1 : 0;
}

/* side[i]: 1 when step i is before the pivot p (p depends on it,
 * transitively), 2 when after (it depends on p), 0 when neither. Steps
 * depend only on earlier ones, so one pass each way decides it. */
static void pivot_sides(const Trellis__V1__SubmitRequest *r, size_t p,
                        unsigned char *side)
{
    enum { BEFORE = 1, AFTER = 2, MARK = 3 };
    side[p] = MARK;
    for (size_t i = p + 1; i-- > 0;) {
        if (side[i] == 0)
            continue;
        for (size_t k = 0; k < step_prereqs(r, i); k++)
            side[step_prereq(r, i, k)] = BEFORE;
    }
    for (size_t i = p + 1; i < r->n_steps; i++)
        for (size_t k = 0; k < step_prereqs(r, i) && !side[i]; k++)
            if (side[step_prereq(r, i, k)] >= AFTER)
                side[i] = AFTER;
    side[p] = 0;
}

/* The index of the one pivot step, -1 when none; -2 with err when two
 * steps are marked. */
static int find_pivot(const Trellis__V1__SubmitRequest *r, char *err,
                      size_t errlen)
{
    int p = -1;
    for (size_t i = 0; i < r->n_steps; i++) {
        if (!r->steps[i]->pivot)
            continue;
        if (p >= 0) {
            snprintf(err, errlen,
                     "steps[%d] and steps[%zu] are both marked pivot; a "
                     "transaction has at most one pivot step",
                     p, i);
            return -2;
        }
        p = (int)i;
    }
    return p;
}

static int pivot_side_error(const Trellis__V1__SubmitRequest *r, size_t i,
                            int p, int side, char *err, size_t errlen)
{
    if (side == 0) {
        snprintf(err, errlen,
                 "steps[%zu] is neither before nor after the pivot "
                 "steps[%d]: neither depends on the other (depends_on, or "
                 "the chain order), so whether it may be rolled back is "
                 "ambiguous; make the pivot depend on it, or it on the pivot",
                 i, p);
        return TM_INVALID;
    }
    if (side == 2 && r->steps[i]->compensate && *r->steps[i]->compensate) {
        snprintf(err, errlen,
                 "steps[%zu] comes after the pivot steps[%d] and has a "
                 "compensate; once the pivot succeeded the saga never rolls "
                 "back, so it would never be called: leave it empty",
                 i, p);
        return TM_INVALID;
    }
    return 0;
}

/* At most one pivot; every other step before it or after it; no
 * compensate after it. */
static int validate_pivot(const Trellis__V1__SubmitRequest *r, char *err,
                          size_t errlen)
{
    int p = find_pivot(r, err, errlen);
    if (p == -2)
        return TM_INVALID;
    if (p < 0)
        return 0;
    unsigned char *side = calloc(r->n_steps, 1);
    if (!side) {
        snprintf(err, errlen, "out of memory checking the pivot");
        return TM_INVALID;
    }
    pivot_sides(r, (size_t)p, side);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->n_steps; i++)
        if (i != (size_t)p)
            rc = pivot_side_error(r, i, p, side[i], err, errlen);
    free(side);
    return rc;
}

int tm_validate_submit(const Trellis__V1__SubmitRequest *r,
                       const tm_limits_t *l, char *err, size_t errlen)
{
    if (tm_validate_gid(r->gid, err, errlen) != 0)
        return -1;
    if (r->n_steps > l->max_branches) {
        snprintf(err, errlen, "steps has %zu entries; at most %u allowed",
                 r->n_steps, l->max_branches);
        return -1;
    }
    for (size_t i = 0; i < r->n_steps; i++) {
        int rc = validate_step(r->steps[i], i, l, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (validate_pivot(r, err, errlen) != 0)
        return TM_INVALID;
    return tm_validate_options(r->options, l, err, errlen);
}

/* op is one of kind k's ops. A registration names the phase-2 ops the
 * TM will call, and may name the forward op too: the initiator calls that
 * one itself, and its target is kept only to be shown (and compared when
 * the registration is repeated, as a workflow's re-run does). */
static int op_fits_kind(const tm_kind_t *k, Trellis__V1__OpKind op)
{
    tm_slot_t slot;
    return tm_kind_slot_of(k, (tm_op_kind_t)op, &slot) == 0;
}

int tm_validate_register(const Trellis__V1__RegisterBranchRequest *r,
                         const tm_limits_t *l, char *err, size_t errlen)
{
    if (tm_validate_gid(r->gid, err, errlen) != 0 ||
        tm_validate_branch_id(r->branch_id, err, errlen) != 0)
        return -1;
    if (strncmp(r->branch_id, "ev-", 3) == 0) {
        snprintf(err, errlen,
                 "branch_id %s: ids starting with \"ev-\" are the TM's "
                 "(branch listeners' events)",
                 r->branch_id);
        return -1;
    }
    const tm_kind_t *kind = tm_kind_find((tm_mode_t)r->mode);
    if (!kind) {
        snprintf(err, errlen, "mode %d is not %s", (int)r->mode,
                 tm_kind_list_text());
        return -1;
    }
    if (kind->place == TM_PLACE_HEAD || kind->place == TM_PLACE_MESSAGE ||
        kind->place == TM_PLACE_LISTENER) {
        snprintf(err, errlen, "mode %d (%s) cannot be registered: %s",
                 (int)r->mode, kind->name,
                 kind->place == TM_PLACE_LISTENER
                     ? "name a completion listener in options.listeners"
                 : kind->place == TM_PLACE_MESSAGE || kind->checks
                     ? "PrepareMessage makes a message's branches"
                     : "it is a workflow's head, made by StartWorkflow");
        return -1;
    }
    for (size_t i = 0; i < r->n_ops; i++) {
        const Trellis__V1__BranchOp *op = r->ops[i];
        if (!op_fits_kind(kind, op->op)) {
            snprintf(err, errlen,
                     "ops[%zu].op %d is not an op of a "
                     "%s branch",
                     i, (int)op->op, kind->name);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (r->ops[j]->op == op->op) {
                snprintf(err, errlen, "ops lists op %d twice", (int)op->op);
                return -1;
            }
        }
        char what[48];
        snprintf(what, sizeof(what), "ops[%zu].target", i);
        int rc = check_allowed(op->target, what, l, err, errlen);
        if (rc != 0)
            return rc;
    }
    return validate_payload(r->payload.len, "payload", l, err, errlen);
}

int tm_validate_abort(const Trellis__V1__AbortRequest *r, char *err,
                      size_t errlen)
{
    if (tm_validate_gid(r->gid, err, errlen) != 0)
        return -1;
    if (r->reason && strlen(r->reason) > TM_REASON_MAX) {
        snprintf(err, errlen, "reason is longer than %d bytes", TM_REASON_MAX);
        return -1;
    }
    return 0;
}

int tm_validate_force_stop(const Trellis__V1__ForceStopRequest *r, char *err,
                           size_t errlen)
{
    if (tm_validate_gid(r->gid, err, errlen) != 0)
        return -1;
    if (!r->reason || !*r->reason) {
        snprintf(err, errlen,
                 "reason is required: say why the transaction is stopped");
        return -1;
    }
    if (strlen(r->reason) > TM_REASON_MAX) {
        snprintf(err, errlen, "reason is longer than %d bytes", TM_REASON_MAX);
        return -1;
    }
    return 0;
}

/* ---- workflows ---------------------------------------------------------- */

int tm_validate_start_workflow(const Trellis__V1__StartWorkflowRequest *r,
                               const tm_limits_t *l, char *err, size_t errlen)
{
    if (tm_validate_gid(r->gid, err, errlen) != 0 ||
        validate_id(r->name, "name", TM_WORKFLOW_NAME_MAX, err, errlen) != 0 ||
        validate_payload(r->input.len, "input", l, err, errlen) != 0)
        return TM_INVALID;
    int rc = check_allowed(r->resume_target, "resume_target", l, err, errlen);
    if (rc != 0)
        return rc;
    return tm_validate_options(r->options, l, err, errlen);
}

/* gRPC status codes a recorded step may carry: OK and ABORTED (a business
 * failure). Anything else is not a result: the step is run again. */
enum { CODE_OK = 0, CODE_ABORTED = 10 };

int tm_validate_record_step(const Trellis__V1__RecordStepRequest *r,
                            const tm_limits_t *l, char *err, size_t errlen)
{
    if (tm_validate_gid(r->gid, err, errlen) != 0 ||
        tm_validate_branch_id(r->branch_id, err, errlen) != 0)
        return TM_INVALID;
    if (r->code != CODE_OK && r->code != CODE_ABORTED) {
        snprintf(err, errlen,
                 "code %u is not a result: only OK (0) and ABORTED (10) are "
                 "recorded; a step that got any other answer is run again",
                 r->code);
        return TM_INVALID;
    }
    if (r->result.len > l->max_result) {
        snprintf(err, errlen,
                 "result is %zu bytes; at most %u allowed (max-result)",
                 r->result.len, l->max_result);
        return TM_INVALID;
    }
    if (r->message && strlen(r->message) > TM_REASON_MAX) {
        snprintf(err, errlen, "message is longer than %d bytes", TM_REASON_MAX);
        return TM_INVALID;
    }
    return 0;
}

/* ---- messages and topics ------------------------------------------------ */

int tm_validate_topic(const char *topic, char *err, size_t errlen)
{
    return validate_id(topic, "topic", TM_TOPIC_MAX, err, errlen);
}

static int has(const char *s)
{
    return s && *s;
}

static int validate_message_step(const Trellis__V1__MessageStep *s, size_t i,
                                 const tm_limits_t *l, char *err, size_t errlen)
{
    char what[64];
    if (has(s->target) == has(s->topic)) {
        snprintf(err, errlen,
                 "steps[%zu] must name either a target or a topic (%s)", i,
                 has(s->target) ? "it names both" : "it names neither");
        return TM_INVALID;
    }
    if (has(s->target)) {
        snprintf(what, sizeof(what), "steps[%zu].target", i);
        int rc = check_allowed(s->target, what, l, err, errlen);
        if (rc != 0)
            return rc;
    } else {
        char inner[256];
        if (tm_validate_topic(s->topic, inner, sizeof(inner)) != 0) {
            snprintf(err, errlen, "steps[%zu].%s", i, inner);
            return TM_INVALID;
        }
    }
    snprintf(what, sizeof(what), "steps[%zu].payload", i);
    if (validate_payload(s->payload.len, what, l, err, errlen) != 0)
        return TM_INVALID;
    return validate_depends_on(s->depends_on, s->n_depends_on, i, err, errlen);
}

int tm_validate_prepare_message(const Trellis__V1__PrepareMessageRequest *r,
                                const tm_limits_t *l, char *err, size_t errlen)
{
    if (tm_validate_gid(r->gid, err, errlen) != 0)
        return TM_INVALID;
    if (r->n_steps == 0)
        return fail(err, errlen,
                    "steps is empty: a message has at least one "
                    "step%s%s",
                    "", "");
    /* The head takes a branch too. */
    if (r->n_steps + 1 > l->max_branches) {
        snprintf(err, errlen, "steps has %zu entries; at most %u allowed",
                 r->n_steps, l->max_branches - 1);
        return TM_INVALID;
    }
    for (size_t i = 0; i < r->n_steps; i++) {
        int rc = validate_message_step(r->steps[i], i, l, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (has(r->query_prepared)) {
        int rc =
            check_allowed(r->query_prepared, "query_prepared", l, err, errlen);
        if (rc != 0)
            return rc;
    } else if (!r->submit) {
        return fail(err, errlen,
                    "query_prepared is empty: a prepared message needs the "
                    "back-check target trellisd calls when it is neither "
                    "submitted nor aborted in time%s%s",
                    "", "");
    }
    return tm_validate_options(r->options, l, err, errlen);
}

int tm_validate_subscribe(const Trellis__V1__SubscribeRequest *r,
                          const tm_limits_t *l, char *err, size_t errlen)
{
    if (tm_validate_topic(r->topic, err, errlen) != 0)
        return TM_INVALID;
    if (r->remark && strlen(r->remark) > TM_REMARK_MAX) {
        snprintf(err, errlen, "remark is longer than %d bytes", TM_REMARK_MAX);
        return TM_INVALID;
    }
    return check_allowed(r->target, "target", l, err, errlen);
}

int tm_validate_unsubscribe(const Trellis__V1__UnsubscribeRequest *r, char *err,
                            size_t errlen)
{
    if (tm_validate_topic(r->topic, err, errlen) != 0)
        return TM_INVALID;
    return tm_parse_target(r->target, "target", NULL, err, errlen);
}

int tm_validate_list_subscriptions(
    const Trellis__V1__ListSubscriptionsRequest *r, char *err, size_t errlen)
{
    if (!has(r->topic))
        return 0;
    return tm_validate_topic(r->topic, err, errlen);
}
