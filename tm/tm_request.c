/*
 * tm_request: initiators' requests applied to the model (see
 * tm_request.h).
 */
#include "tm_request.h"

#include "tm_kind.h"
#include "tm_plan.h"
#include "trellis_fnv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy_bytes(uint8_t **dst, size_t *dst_len, const uint8_t *src,
                      size_t len)
{
    *dst_len = len;
    *dst = NULL;
    if (!len)
        return 0;
    *dst = malloc(len);
    if (!*dst)
        return -1;
    memcpy(*dst, src, len);
    return 0;
}

static int set_deps(tm_branch_t *b, const uint32_t *deps, size_t n)
{
    b->n_deps = n;
    if (!n)
        return 0;
    b->deps = malloc(n * sizeof(*deps));
    if (!b->deps)
        return -1;
    memcpy(b->deps, deps, n * sizeof(*deps));
    return 0;
}

static int set_op(tm_op_t *op, tm_op_kind_t kind, const char *target)
{
    op->kind = kind;
    op->status = TM_OP_PENDING;
    op->target = target && *target ? tm_strdup(target) : NULL;
    return target && *target && !op->target ? -1 : 0;
}

int tm_request_find_branch(const tm_trans_t *tx, const char *branch_id)
{
    for (size_t i = 0; i < tx->n_branches; i++)
        if (strcmp(tx->branches[i].branch_id, branch_id) == 0)
            return (int)i;
    return -1;
}

static int is_listener(const tm_branch_t *b)
{
    const tm_kind_t *k = tm_kind_find(b->mode);
    return k && k->place == TM_PLACE_LISTENER;
}

/* One past the last branch that is not a completion listener: where the
 * chain of registered branches and steps goes on from. Listeners stand
 * apart (no prerequisites, nothing depends on them), wherever they were
 * appended. */
static size_t chain_end(const tm_trans_t *tx)
{
    size_t n = tx->n_branches;
    while (n > 0 && is_listener(&tx->branches[n - 1]))
        n--;
    return n;
}

/* How many branches are not listeners: steps are numbered after them. */
static size_t count_chained(const tm_trans_t *tx)
{
    size_t n = 0;
    for (size_t i = 0; i < tx->n_branches; i++)
        n += !is_listener(&tx->branches[i]);
    return n;
}

/* A branch a branch listener is told about: not a listener's own, not a
 * workflow's or a message's head (made by the TM, never a participant's
 * branch). */
static int reported(const tm_branch_t *b)
{
    const tm_kind_t *k = tm_kind_find(b->mode);
    return k && k->place != TM_PLACE_LISTENER && k->place != TM_PLACE_HEAD &&
           !k->checks;
}

/* Branch listener j's event for branch r: "ev-<r's id>-<j+1>", depending
 * on r alone, its notify on both sides. */
static int add_branch_event(tm_trans_t *tx, size_t r, size_t j)
{
    const tm_kind_t *k = tm_kind_find(TM_MODE_BRANCH_EVENT);
    const char *target = tx->opts.branch_listeners[j];
    char id[TM_BRANCH_ID_MAX + 16];
    uint32_t dep = (uint32_t)r;
    snprintf(id, sizeof(id), "ev-%s-%zu", tx->branches[r].branch_id, j + 1);
    tm_branch_t *b = tm_trans_add_branch(tx);
    if (!b)
        return -1;
    b->mode = k->mode;
    return !(b->branch_id = tm_strdup(id)) || set_deps(b, &dep, 1) != 0 ||
                   set_op(&b->ops[TM_SLOT_COMMIT], k->ops[TM_SLOT_COMMIT],
                          target) != 0 ||
                   set_op(&b->ops[TM_SLOT_ROLLBACK], k->ops[TM_SLOT_ROLLBACK],
                          target) != 0
               ? -1
               : 0;
}

int tm_request_add_branch_events(tm_trans_t *tx, size_t from)
{
    size_t base = tx->n_branches;
    for (size_t r = from; r < base; r++)
        for (size_t j = 0;
             reported(&tx->branches[r]) && j < tx->opts.n_branch_listeners; j++)
            if (add_branch_event(tx, r, j) != 0) {
                tm_trans_truncate(tx, base);
                return -1;
            }
    return 0;
}

/* The prerequisites of step i (see tm_request_add_steps); anchor is
 * chain_end before the steps were added. */
static size_t step_deps(const Trellis__V1__SubmitRequest *r, size_t i,
                        size_t base, size_t anchor, uint32_t *out, size_t max)
{
    const Trellis__V1__SagaStep *s = r->steps[i];
    size_t n = 0;
    if (s->n_depends_on) {
        for (size_t d = 0; d < s->n_depends_on && n < max; d++)
            out[n++] = (uint32_t)(base + s->depends_on[d]);
    } else if (!r->concurrent && i > 0) {
        out[n++] = (uint32_t)(base + i - 1);
    } else if (anchor > 0) {
        out[n++] = (uint32_t)(anchor - 1);
    }
    return n;
}

static int add_step(tm_trans_t *tx, const Trellis__V1__SubmitRequest *r,
                    size_t i, size_t base, size_t anchor, const char *id)
{
    const Trellis__V1__SagaStep *s = r->steps[i];
    tm_branch_t *b = tm_trans_add_branch(tx);
    if (!b)
        return -1;
    const tm_kind_t *k = tm_kind_find(TM_MODE_SAGA); /* a SagaStep's kind */
    b->mode = k->mode;
    b->pivot = s->pivot;
    /* Room for every depends_on entry: validation bounds their number by
     * the step's index (up to --max-steps), not by any fixed size. */
    size_t cap = s->n_depends_on ? s->n_depends_on : 1;
    if (!(b->deps = malloc(cap * sizeof(*b->deps))))
        return -1;
    b->n_deps = step_deps(r, i, base, anchor, b->deps, cap);
    if (!(b->branch_id = tm_strdup(id)) ||
        copy_bytes(&b->payload, &b->payload_len, s->payload.data,
                   s->payload.len) != 0 ||
        set_op(&b->ops[TM_SLOT_FORWARD], k->ops[TM_SLOT_FORWARD], s->action) !=
            0)
        return -1;
    if (s->compensate && *s->compensate)
        return set_op(&b->ops[TM_SLOT_ROLLBACK], k->ops[TM_SLOT_ROLLBACK],
                      s->compensate);
    return 0;
}

int tm_request_add_steps(tm_trans_t *tx, const Trellis__V1__SubmitRequest *r,
                         const tm_limits_t *lim, char *err, size_t errlen)
{
    size_t base = tx->n_branches;
    size_t anchor = chain_end(tx), numbered = count_chained(tx);
    if (base + r->n_steps > lim->max_branches) {
        snprintf(err, errlen,
                 "%zu registered branches and %zu steps exceed the limit of "
                 "%u branches per transaction",
                 base, r->n_steps, lim->max_branches);
        return -1;
    }
    for (size_t i = 0; i < r->n_steps; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%02zu", numbered + i + 1);
        if (tm_request_find_branch(tx, id) >= 0) {
            snprintf(err, errlen,
                     "step %zu would get branch id %s, which a registered "
                     "branch already uses",
                     i, id);
            tm_trans_truncate(tx, base);
            return -1;
        }
        if (add_step(tx, r, i, base, anchor, id) != 0) {
            snprintf(err, errlen, "out of memory adding saga steps");
            tm_trans_truncate(tx, base);
            return -1;
        }
    }
    if (tm_request_add_branch_events(tx, base) != 0) {
        snprintf(err, errlen, "out of memory adding branch events");
        tm_trans_truncate(tx, base);
        return -1;
    }
    return 0;
}

/* The slot of a registered phase-2 op (validated: the kind has it). */
static tm_slot_t slot_of(const tm_kind_t *k, Trellis__V1__OpKind op)
{
    tm_slot_t slot = TM_SLOT_ROLLBACK;
    tm_kind_slot_of(k, (tm_op_kind_t)op, &slot);
    return slot;
}

int tm_request_add_registered(tm_trans_t *tx,
                              const Trellis__V1__RegisterBranchRequest *r)
{
    const tm_kind_t *k = tm_kind_find((tm_mode_t)r->mode);
    if (!k) /* validation refuses it first */
        return -1;
    size_t idx = tx->n_branches, anchor = chain_end(tx);
    uint32_t prev = (uint32_t)(anchor - 1);
    tm_branch_t *b = tm_trans_add_branch(tx);
    if (!b)
        return -1;
    b->mode = k->mode;
    b->initiator_driven = 1;
    int rc = !(b->branch_id = tm_strdup(r->branch_id)) ||
                     copy_bytes(&b->payload, &b->payload_len, r->payload.data,
                                r->payload.len) != 0 ||
                     set_deps(b, &prev, anchor && !k->runs_last ? 1 : 0) != 0
                 ? -1
                 : 0;
    set_op(&b->ops[TM_SLOT_FORWARD], k->ops[TM_SLOT_FORWARD], NULL);
    for (size_t i = 0; rc == 0 && i < r->n_ops; i++)
        rc = set_op(&b->ops[slot_of(k, r->ops[i]->op)],
                    (tm_op_kind_t)r->ops[i]->op, r->ops[i]->target);
    if (rc == 0)
        rc = tm_request_add_branch_events(tx, idx);
    if (rc != 0)
        tm_trans_truncate(tx, idx);
    return rc;
}

int tm_request_add_listeners(tm_trans_t *tx, const Trellis__V1__TransOptions *o)
{
    if (!o)
        return 0;
    const tm_kind_t *k = tm_kind_find(TM_MODE_EVENT);
    size_t base = tx->n_branches;
    for (size_t i = 0; i < o->n_listeners; i++) {
        char id[24];
        snprintf(id, sizeof(id), "ev%zu", i + 1);
        tm_branch_t *b = tm_trans_add_branch(tx);
        if (!b || !(b->branch_id = tm_strdup(id)) ||
            set_op(&b->ops[TM_SLOT_COMMIT], k->ops[TM_SLOT_COMMIT],
                   o->listeners[i]) != 0 ||
            set_op(&b->ops[TM_SLOT_ROLLBACK], k->ops[TM_SLOT_ROLLBACK],
                   o->listeners[i]) != 0) {
            tm_trans_truncate(tx, base);
            return -1;
        }
        b->mode = k->mode;
    }
    return 0;
}

#define HEAD_BRANCH_ID "00"

/* The request Resume is called with, packed into *out (malloc'd). */
static int pack_resume_request(const Trellis__V1__StartWorkflowRequest *r,
                               uint8_t **out, size_t *len)
{
    Trellis__V1__ResumeRequest m = TRELLIS__V1__RESUME_REQUEST__INIT;
    m.gid = r->gid;
    m.name = r->name;
    m.input = r->input;
    *len = trellis__v1__resume_request__get_packed_size(&m);
    *out = malloc(*len ? *len : 1);
    if (!*out)
        return -1;
    trellis__v1__resume_request__pack(&m, *out);
    return 0;
}

int tm_request_add_workflow_head(tm_trans_t *tx,
                                 const Trellis__V1__StartWorkflowRequest *r,
                                 tm_mode_t mode)
{
    size_t idx = tx->n_branches;
    tm_branch_t *head = tm_trans_add_branch(tx);
    if (!head)
        return -1;
    head->mode = mode;
    head->initiator_driven = 1;
    if (!(head->branch_id = tm_strdup(HEAD_BRANCH_ID)) ||
        set_op(&head->ops[TM_SLOT_FORWARD], TM_KIND_RESUME, r->resume_target) !=
            0 ||
        pack_resume_request(r, &head->payload, &head->payload_len) != 0) {
        tm_trans_truncate(tx, idx);
        return -1;
    }
    return 0;
}

int tm_request_same_head(const tm_branch_t *a, const tm_branch_t *b)
{
    const char *ta = a->ops[TM_SLOT_FORWARD].target;
    const char *tb = b->ops[TM_SLOT_FORWARD].target;
    return a->mode == b->mode && a->payload_len == b->payload_len &&
           memcmp(a->payload, b->payload, a->payload_len) == 0 && ta && tb &&
           strcmp(ta, tb) == 0;
}

int tm_request_misplaced(const tm_trans_t *tx,
                         const Trellis__V1__RegisterBranchRequest *r, char *why,
                         size_t len)
{
    const tm_kind_t *k = tm_kind_find((tm_mode_t)r->mode);
    int workflow = tm_plan_is_workflow(tx);
    size_t end = chain_end(tx); /* listeners stand apart */
    const tm_kind_t *last =
        end ? tm_kind_find(tx->branches[end - 1].mode) : NULL;
    if (tm_plan_is_message(tx))
        snprintf(why, len,
                 "transaction %s is a message: its steps are given to "
                 "PrepareMessage, nothing is registered",
                 tx->gid);
    else if (k && k->place != TM_PLACE_ANY && !workflow)
        snprintf(why, len,
                 "a %s branch belongs to a workflow, and transaction %s is "
                 "not one (StartWorkflow makes workflows)",
                 k->name, tx->gid);
    else if (workflow && last && last->runs_last)
        snprintf(why, len,
                 "workflow %s has registered its hooks; no branch can "
                 "follow them",
                 tx->gid);
    else
        return 0;
    return 1;
}

int tm_request_same_registration(const tm_branch_t *b,
                                 const Trellis__V1__RegisterBranchRequest *r)
{
    const tm_kind_t *k = tm_kind_find(b->mode);
    if (!k || b->mode != (tm_mode_t)r->mode ||
        b->payload_len != r->payload.len ||
        (r->payload.len &&
         memcmp(b->payload, r->payload.data, r->payload.len) != 0))
        return 0;
    /* Every slot's target as the request gives it (NULL: not named) must
     * be the stored one: a repeat that names fewer ops is not the same. */
    const char *want[TM_SLOTS] = {NULL, NULL, NULL};
    for (size_t i = 0; i < r->n_ops; i++)
        want[slot_of(k, r->ops[i]->op)] =
            r->ops[i]->target && *r->ops[i]->target ? r->ops[i]->target : NULL;
    for (int s = 0; s < TM_SLOTS; s++) {
        const char *had = b->ops[s].target;
        if ((had == NULL) != (want[s] == NULL) ||
            (had && strcmp(had, want[s]) != 0))
            return 0;
    }
    return 1;
}

int tm_request_same_options(const tm_options_t *a, const tm_options_t *b)
{
    if (a->timeout_to_fail_ms != b->timeout_to_fail_ms ||
        a->retry_interval_ms != b->retry_interval_ms ||
        a->request_timeout_ms != b->request_timeout_ms ||
        a->retry_limit != b->retry_limit || a->n_headers != b->n_headers ||
        a->n_branch_listeners != b->n_branch_listeners ||
        a->listener_batch != b->listener_batch)
        return 0;
    for (size_t i = 0; i < a->n_branch_listeners; i++)
        if (strcmp(a->branch_listeners[i], b->branch_listeners[i]))
            return 0;
    for (size_t i = 0; i < a->n_headers; i++)
        if (strcmp(a->header_keys[i], b->header_keys[i]) ||
            strcmp(a->header_values[i], b->header_values[i]))
            return 0;
    return 1;
}

/* The target of the n-th completion listener branch of tx (from 0), or
 * NULL when it has fewer. */
static const char *nth_listener(const tm_trans_t *tx, size_t n)
{
    for (size_t i = 0; i < tx->n_branches; i++)
        if (tx->branches[i].mode == TM_MODE_EVENT && n-- == 0)
            return tx->branches[i].ops[TM_SLOT_COMMIT].target;
    return NULL;
}

int tm_request_same_listeners(const tm_trans_t *a, const tm_trans_t *b)
{
    for (size_t n = 0;; n++) {
        const char *x = nth_listener(a, n), *y = nth_listener(b, n);
        if (!x || !y)
            return x == y;
        if (strcmp(x, y) != 0)
            return 0;
    }
}

/* Packing into a stack buffer when it fits; the rare larger message is
 * hashed from the heap, or — out of memory — by its size alone, which
 * only weakens the duplicate check for that request. */
static void hash_message(trellis_fnv_t *f, const ProtobufCMessage *m)
{
    uint8_t small[512];
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = n <= sizeof(small) ? small : malloc(n);
    if (!buf) {
        trellis_fnv_add(f, &n, sizeof(n));
        return;
    }
    protobuf_c_message_pack(m, buf);
    trellis_fnv_add(f, buf, n);
    if (buf != small)
        free(buf);
}

uint64_t tm_request_submit_hash(const Trellis__V1__SubmitRequest *r)
{
    trellis_fnv_t f;
    trellis_fnv_init(&f);
    for (size_t i = 0; i < r->n_steps; i++)
        hash_message(&f, &r->steps[i]->base);
    if (r->options) {
        Trellis__V1__TransOptions o = *r->options;
        o.wait_result = 0;
        hash_message(&f, &o.base);
    }
    uint8_t c = r->concurrent ? 1 : 0;
    trellis_fnv_add(&f, &c, 1);
    uint64_t h = trellis_fnv_final(&f);
    return h ? h : 1;
}

/* ---- messages ----------------------------------------------------------- */

static int add_message_head(tm_trans_t *tx,
                            const Trellis__V1__PrepareMessageRequest *r)
{
    tm_branch_t *head = tm_trans_add_branch(tx);
    if (!head)
        return -1;
    head->mode = TM_MODE_MSG_CHECK;
    head->initiator_driven = 1; /* the initiator decides; the TM only asks */
    if (!(head->branch_id = tm_strdup(HEAD_BRANCH_ID)))
        return -1;
    return set_op(&head->ops[TM_SLOT_FORWARD], TM_KIND_QUERY_PREPARED,
                  r->query_prepared);
}

/* Step i's prerequisites as branch indexes: every branch of each step it
 * depends on; without depends_on, every branch of the step before it
 * unless concurrent. first[j] and count[j] say where step j's branches
 * are. */
static int set_message_deps(tm_branch_t *b,
                            const Trellis__V1__PrepareMessageRequest *r,
                            size_t i, const size_t *first, const size_t *count)
{
    const Trellis__V1__MessageStep *s = r->steps[i];
    size_t n = 0;
    if (s->n_depends_on)
        for (size_t d = 0; d < s->n_depends_on; d++)
            n += count[s->depends_on[d]];
    else if (!r->concurrent && i > 0)
        n = count[i - 1];
    if (!n)
        return 0;
    if (!(b->deps = malloc(n * sizeof(*b->deps))))
        return -1;
    for (size_t d = 0; d < s->n_depends_on; d++)
        for (size_t k = 0; k < count[s->depends_on[d]]; k++)
            b->deps[b->n_deps++] = (uint32_t)(first[s->depends_on[d]] + k);
    for (size_t k = 0; !s->n_depends_on && k < n; k++)
        b->deps[b->n_deps++] = (uint32_t)(first[i - 1] + k);
    return 0;
}

static int add_delivery(tm_trans_t *tx,
                        const Trellis__V1__PrepareMessageRequest *r, size_t i,
                        const char *target, const size_t *first,
                        const size_t *count)
{
    const Trellis__V1__MessageStep *s = r->steps[i];
    char id[16];
    snprintf(id, sizeof(id), "%02zu", tx->n_branches);
    tm_branch_t *b = tm_trans_add_branch(tx);
    if (!b)
        return -1;
    b->mode = TM_MODE_MSG;
    if (!(b->branch_id = tm_strdup(id)) ||
        copy_bytes(&b->payload, &b->payload_len, s->payload.data,
                   s->payload.len) != 0 ||
        set_message_deps(b, r, i, first, count) != 0)
        return -1;
    return set_op(&b->ops[TM_SLOT_FORWARD], TM_KIND_ACTION, target);
}

static size_t deliveries(const Trellis__V1__PrepareMessageRequest *r,
                         const tm_step_targets_t *subs, size_t i)
{
    return r->steps[i]->target && *r->steps[i]->target ? 1 : subs[i].n;
}

static int add_step_deliveries(tm_trans_t *tx,
                               const Trellis__V1__PrepareMessageRequest *r,
                               const tm_step_targets_t *subs, size_t i,
                               size_t *first, size_t *count)
{
    first[i] = tx->n_branches;
    count[i] = deliveries(r, subs, i);
    const char *target = r->steps[i]->target;
    if (target && *target)
        return add_delivery(tx, r, i, target, first, count);
    for (size_t k = 0; k < subs[i].n; k++)
        if (add_delivery(tx, r, i, subs[i].targets[k], first, count) != 0)
            return -1;
    return 0;
}

static int build_message(tm_trans_t *tx,
                         const Trellis__V1__PrepareMessageRequest *r,
                         const tm_step_targets_t *subs)
{
    size_t *first = calloc(r->n_steps, sizeof(*first));
    size_t *count = calloc(r->n_steps, sizeof(*count));
    int rc = first && count ? add_message_head(tx, r) : -1;
    for (size_t i = 0; rc == 0 && i < r->n_steps; i++)
        rc = add_step_deliveries(tx, r, subs, i, first, count);
    free(first);
    free(count);
    return rc;
}

int tm_request_add_message(tm_trans_t *tx,
                           const Trellis__V1__PrepareMessageRequest *r,
                           const tm_step_targets_t *subs,
                           const tm_limits_t *lim, char *err, size_t errlen)
{
    size_t n = 1;
    for (size_t i = 0; i < r->n_steps; i++) {
        if (deliveries(r, subs, i) == 0) {
            snprintf(err, errlen,
                     "steps[%zu] names topic %s, which has no subscriber", i,
                     r->steps[i]->topic);
            return -1;
        }
        n += deliveries(r, subs, i);
    }
    if (n > lim->max_branches) {
        snprintf(err, errlen,
                 "the message's %zu steps go to %zu targets with their "
                 "topics' subscribers; at most %u branches per transaction "
                 "(the back-check takes one)",
                 r->n_steps, n - 1, lim->max_branches);
        return -1;
    }
    size_t base = tx->n_branches;
    if (build_message(tx, r, subs) != 0 ||
        tm_request_add_branch_events(tx, base) != 0) {
        tm_trans_truncate(tx, base);
        snprintf(err, errlen, "out of memory building the message");
        return -1;
    }
    return 0;
}

uint64_t tm_request_message_hash(const Trellis__V1__PrepareMessageRequest *r)
{
    trellis_fnv_t f;
    trellis_fnv_init(&f);
    for (size_t i = 0; i < r->n_steps; i++)
        hash_message(&f, &r->steps[i]->base);
    const char *qp = r->query_prepared ? r->query_prepared : "";
    trellis_fnv_add(&f, qp, strlen(qp) + 1);
    if (r->options) {
        Trellis__V1__TransOptions o = *r->options;
        o.wait_result = 0;
        hash_message(&f, &o.base);
    }
    uint8_t c = r->concurrent ? 1 : 0;
    trellis_fnv_add(&f, &c, 1);
    uint64_t h = trellis_fnv_final(&f);
    return h ? h : 1;
}
