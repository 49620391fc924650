/*
 * tm_trans: construction, freeing and protobuf conversion of the in-memory
 * transaction model (see tm_trans.h).
 */
#include "tm_trans.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tm_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int tm_set_string(char **slot, const char *s)
{
    char *copy = NULL;
    if (s) {
        copy = tm_strdup(s);
        if (!copy)
            return -1;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

tm_trans_t *tm_trans_new(const char *gid, tm_tx_status_t status, int64_t now_ms)
{
    tm_trans_t *tx = calloc(1, sizeof(*tx));
    if (!tx)
        return NULL;
    snprintf(tx->gid, sizeof(tx->gid), "%s", gid);
    tx->status = status;
    tx->created_ms = now_ms;
    tx->updated_ms = now_ms;
    return tx;
}

static void op_clear(tm_op_t *op)
{
    free(op->target);
    free(op->last_error);
    free(op->attempt_ms);
    free(op->result);
}

static void branch_clear(tm_branch_t *b)
{
    free(b->branch_id);
    free(b->payload);
    free(b->deps);
    for (int s = 0; s < TM_SLOTS; s++)
        op_clear(&b->ops[s]);
}

void tm_options_clear(tm_options_t *o)
{
    for (size_t i = 0; i < o->n_headers; i++) {
        free(o->header_keys[i]);
        free(o->header_values[i]);
    }
    free(o->header_keys);
    free(o->header_values);
    for (size_t i = 0; i < o->n_branch_listeners; i++)
        free(o->branch_listeners[i]);
    free(o->branch_listeners);
    free(o->traceparent);
    free(o->tracestate);
    memset(o, 0, sizeof(*o));
}

void tm_trans_clear(tm_trans_t *tx)
{
    for (size_t i = 0; i < tx->n_branches; i++)
        branch_clear(&tx->branches[i]);
    free(tx->branches);
    free(tx->reason);
    tm_options_clear(&tx->opts);
    tx->branches = NULL;
    tx->reason = NULL;
    tx->n_branches = tx->cap_branches = 0;
}

void tm_trans_free(tm_trans_t *tx)
{
    if (!tx)
        return;
    tm_trans_clear(tx);
    free(tx);
}

tm_branch_t *tm_trans_add_branch(tm_trans_t *tx)
{
    if (tx->n_branches == tx->cap_branches) {
        size_t cap = tx->cap_branches ? tx->cap_branches * 2 : 2;
        tm_branch_t *b = realloc(tx->branches, cap * sizeof(*b));
        if (!b)
            return NULL;
        tx->branches = b;
        tx->cap_branches = cap;
    }
    tm_branch_t *b = &tx->branches[tx->n_branches++];
    memset(b, 0, sizeof(*b));
    return b;
}

void tm_trans_truncate(tm_trans_t *tx, size_t n)
{
    while (tx->n_branches > n)
        branch_clear(&tx->branches[--tx->n_branches]);
}

void tm_op_note_attempt(tm_op_t *op, int64_t now_ms)
{
    op->attempts++;
    if (op->n_attempt_ms >= TM_ATTEMPT_TIMES_KEPT)
        return;
    int64_t *times =
        realloc(op->attempt_ms, (op->n_attempt_ms + 1) * sizeof(*times));
    if (!times)
        return; /* the count is kept; the time is only diagnostics */
    times[op->n_attempt_ms++] = now_ms;
    op->attempt_ms = times;
}

static int copy_headers(tm_options_t *o, size_t n, const char *const *keys,
                        const char *const *values)
{
    if (n == 0)
        return 0;
    o->header_keys = calloc(n, sizeof(char *));
    o->header_values = calloc(n, sizeof(char *));
    if (!o->header_keys || !o->header_values)
        return -1;
    o->n_headers = n;
    for (size_t i = 0; i < n; i++) {
        o->header_keys[i] = tm_strdup(keys[i]);
        o->header_values[i] = tm_strdup(values[i]);
        if (!o->header_keys[i] || !o->header_values[i])
            return -1;
    }
    return 0;
}

/* A deep copy of the branch listeners' targets into o. */
static int copy_branch_listeners(tm_options_t *o, size_t n,
                                 const char *const *targets)
{
    o->n_branch_listeners = 0;
    o->branch_listeners = NULL;
    if (!n)
        return 0;
    if (!(o->branch_listeners = calloc(n, sizeof(char *))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        o->n_branch_listeners = i + 1;
        if (!(o->branch_listeners[i] = tm_strdup(targets[i])))
            return -1;
    }
    return 0;
}

int tm_options_from_proto(tm_options_t *o, const Trellis__V1__TransOptions *m)
{
    memset(o, 0, sizeof(*o));
    if (!m)
        return 0;
    o->timeout_to_fail_ms = m->timeout_to_fail_ms;
    o->retry_interval_ms = m->retry_interval_ms;
    o->request_timeout_ms = m->request_timeout_ms;
    o->retry_limit = m->retry_limit;
    o->listener_batch = m->listener_batch;
    size_t n = m->n_branch_headers;
    const char **keys = calloc(n ? n : 1, sizeof(char *));
    const char **values = calloc(n ? n : 1, sizeof(char *));
    int rc = (keys && values) ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        keys[i] = m->branch_headers[i]->key;
        values[i] = m->branch_headers[i]->value;
    }
    if (rc == 0)
        rc = copy_headers(o, n, keys, values);
    if (rc == 0)
        rc = copy_branch_listeners(o, m->n_branch_listeners,
                                   (const char *const *)m->branch_listeners);
    if (rc == 0)
        rc = tm_options_set_trace(o, m->traceparent, m->tracestate);
    free(keys);
    free(values);
    if (rc != 0)
        tm_options_clear(o);
    return rc;
}

int tm_options_set_trace(tm_options_t *o, const char *traceparent,
                         const char *tracestate)
{
    free(o->traceparent);
    free(o->tracestate);
    o->traceparent = o->tracestate = NULL;
    if (!traceparent || !*traceparent)
        return 0;
    if (!(o->traceparent = tm_strdup(traceparent)))
        return -1;
    if (tracestate && *tracestate && !(o->tracestate = tm_strdup(tracestate)))
        return -1;
    return 0;
}

int tm_options_copy(tm_options_t *dst, const tm_options_t *src)
{
    *dst = *src;
    dst->header_keys = dst->header_values = NULL;
    dst->n_headers = 0;
    dst->branch_listeners = NULL;
    dst->n_branch_listeners = 0;
    dst->traceparent = dst->tracestate = NULL;
    if (copy_headers(dst, src->n_headers, (const char *const *)src->header_keys,
                     (const char *const *)src->header_values) != 0 ||
        copy_branch_listeners(dst, src->n_branch_listeners,
                              (const char *const *)src->branch_listeners) !=
            0 ||
        tm_options_set_trace(dst, src->traceparent, src->tracestate) != 0) {
        tm_options_clear(dst);
        return -1;
    }
    return 0;
}

Trellis__V1__TransOptions *tm_options_to_proto(const tm_options_t *o)
{
    Trellis__V1__TransOptions *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    trellis__v1__trans_options__init(m);
    m->timeout_to_fail_ms = o->timeout_to_fail_ms;
    m->retry_interval_ms = o->retry_interval_ms;
    m->request_timeout_ms = o->request_timeout_ms;
    m->retry_limit = o->retry_limit;
    m->listener_batch = o->listener_batch;
    if (o->traceparent)
        m->traceparent = o->traceparent;
    if (o->tracestate)
        m->tracestate = o->tracestate;
    if (o->n_headers) {
        m->branch_headers = calloc(o->n_headers, sizeof(*m->branch_headers));
        if (!m->branch_headers)
            return m;
        for (size_t i = 0; i < o->n_headers; i++) {
            Trellis__V1__Header *h = calloc(1, sizeof(*h));
            if (!h)
                break;
            trellis__v1__header__init(h);
            h->key = o->header_keys[i];
            h->value = o->header_values[i];
            m->branch_headers[m->n_branch_headers++] = h;
        }
    }
    if (o->n_branch_listeners &&
        (m->branch_listeners = calloc(o->n_branch_listeners, sizeof(char *)))) {
        m->n_branch_listeners = o->n_branch_listeners;
        for (size_t i = 0; i < o->n_branch_listeners; i++)
            m->branch_listeners[i] = o->branch_listeners[i];
    }
    return m;
}

/* The strings of the tree borrow from the model; only the containers are
 * ours, so freeing never touches the model. */
void tm_options_proto_free(Trellis__V1__TransOptions *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_branch_headers; i++)
        free(m->branch_headers[i]);
    free(m->branch_headers);
    free(m->branch_listeners);
    free(m);
}

static char *borrow(const char *s)
{
    return (char *)(s ? s : "");
}

static Trellis__V1__Op *op_to_proto(const tm_op_t *op)
{
    Trellis__V1__Op *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    trellis__v1__op__init(m);
    m->op = (Trellis__V1__OpKind)op->kind;
    m->target = borrow(op->target);
    m->status = (Trellis__V1__OpStatus)op->status;
    m->attempts = op->attempts;
    m->last_error = borrow(op->last_error);
    m->n_attempt_ms = op->n_attempt_ms;
    m->attempt_ms = op->attempt_ms;
    m->finished_ms = op->finished_ms;
    m->recorded = op->recorded;
    m->result.data = op->result;
    m->result.len = op->result_len;
    m->result_size = op->result_size;
    return m;
}

static Trellis__V1__Branch *branch_to_proto(const tm_branch_t *b)
{
    Trellis__V1__Branch *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    trellis__v1__branch__init(m);
    m->branch_id = borrow(b->branch_id);
    m->mode = (Trellis__V1__BranchMode)b->mode;
    m->initiator_driven = b->initiator_driven;
    m->pivot = b->pivot;
    m->payload.data = b->payload;
    m->payload.len = b->payload_len;
    m->n_depends_on = b->n_deps;
    m->depends_on = b->deps;
    m->ops = calloc(TM_SLOTS, sizeof(*m->ops));
    if (!m->ops)
        return m;
    for (int s = 0; s < TM_SLOTS; s++) {
        if (b->ops[s].kind == TM_KIND_NONE)
            continue;
        Trellis__V1__Op *op = op_to_proto(&b->ops[s]);
        if (op)
            m->ops[m->n_ops++] = op;
    }
    return m;
}

Trellis__V1__Transaction *tm_trans_to_proto(const tm_trans_t *tx,
                                            int with_branches)
{
    Trellis__V1__Transaction *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    trellis__v1__transaction__init(m);
    m->gid = (char *)tx->gid;
    m->status = (Trellis__V1__TransStatus)tx->status;
    m->created_ms = tx->created_ms;
    m->updated_ms = tx->updated_ms;
    m->finished_ms = tx->finished_ms;
    m->reason = borrow(tx->reason);
    m->options = tm_options_to_proto(&tx->opts);
    if (!with_branches || tx->n_branches == 0)
        return m;
    m->branches = calloc(tx->n_branches, sizeof(*m->branches));
    if (!m->branches)
        return m;
    for (size_t i = 0; i < tx->n_branches; i++) {
        Trellis__V1__Branch *b = branch_to_proto(&tx->branches[i]);
        if (b)
            m->branches[m->n_branches++] = b;
    }
    return m;
}

void tm_trans_proto_free(Trellis__V1__Transaction *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_branches; i++) {
        Trellis__V1__Branch *b = m->branches[i];
        for (size_t j = 0; j < b->n_ops; j++)
            free(b->ops[j]);
        free(b->ops);
        free(b);
    }
    free(m->branches);
    tm_options_proto_free(m->options);
    free(m);
}

const char *tm_tx_status_name(tm_tx_status_t s)
{
    switch (s) {
    case TM_TX_PREPARED:
        return "prepared";
    case TM_TX_SUBMITTED:
        return "submitted";
    case TM_TX_ABORTING:
        return "aborting";
    case TM_TX_SUCCEEDED:
        return "succeeded";
    case TM_TX_FAILED:
        return "failed";
    }
    return "unknown";
}

const char *tm_op_kind_name(tm_op_kind_t k)
{
    static const char *names[] = {"none",    "action",         "compensate",
                                  "try",     "confirm",        "cancel",
                                  "prepare", "commit",         "rollback",
                                  "resume",  "query_prepared", "notify"};
    if ((int)k < 0 || (size_t)k >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[k];
}

int tm_tx_is_final(tm_tx_status_t s)
{
    return s == TM_TX_SUCCEEDED || s == TM_TX_FAILED;
}
