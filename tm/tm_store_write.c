/*
 * tm_store_write: capturing a transaction's unsaved changes into a
 * self-contained tm_write_t, and the column-value helpers both storage
 * engines use (lists as comma-separated text, options as a packed
 * TransOptions blob, subscriptions read back, and the freeing of those
 * lists, which the engine core does for its env's store, fakes
 * included). No SQL here.
 */
#include "tm_store_impl.h"

#include <inttypes.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tm_store_decode_options(tm_trans_t *tx, const void *blob, size_t len)
{
    Trellis__V1__TransOptions *m =
        trellis__v1__trans_options__unpack(NULL, len, blob);
    if (!m)
        return;
    tm_options_from_proto(&tx->opts, m);
    trellis__v1__trans_options__free_unpacked(m, NULL);
}

/* ---- capture ------------------------------------------------------------ */

char *tm_store_join_u32(const uint32_t *v, size_t n)
{
    char *s = malloc(n * 11 + 1);
    if (!s)
        return NULL;
    size_t off = 0;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        off += (size_t)sprintf(s + off, i ? ",%u" : "%u", v[i]);
    return s;
}

static char *join_i64(const int64_t *v, size_t n)
{
    char *s = malloc(n * 21 + 1);
    if (!s)
        return NULL;
    size_t off = 0;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        off += (size_t)sprintf(s + off, i ? ",%" PRId64 : "%" PRId64, v[i]);
    return s;
}

void tm_write_free(tm_write_t *w)
{
    free(w->reason);
    free(w->options);
    for (size_t i = 0; i < w->n_branches; i++) {
        free(w->branches[i].branch_id);
        free(w->branches[i].payload);
        free(w->branches[i].deps);
        for (int k = 0; k < TM_SLOTS; k++)
            free(w->branches[i].target[k]);
    }
    free(w->branches);
    for (size_t i = 0; i < w->n_ops; i++) {
        free(w->ops[i].last_error);
        free(w->ops[i].attempt_ms);
        free(w->ops[i].result);
    }
    free(w->ops);
    free(w);
}

/* A copy of the op's recorded result in o (none when it is empty).
 * Returns 0, or -1 out of memory. */
static int capture_result(tm_w_op_t *o, const tm_op_t *op)
{
    if (!op->result || !op->result_len)
        return 0;
    o->result = malloc(op->result_len);
    if (!o->result)
        return -1;
    memcpy(o->result, op->result, op->result_len);
    o->result_len = op->result_len;
    return 0;
}

static int capture_op(tm_w_op_t *o, uint32_t branch, int slot,
                      const tm_op_t *op, tm_op_run_t *mark)
{
    o->branch = branch;
    o->slot = slot;
    o->status = op->status;
    o->attempts = op->attempts;
    o->finished_ms = op->finished_ms;
    o->late = op->late;
    o->recorded = op->recorded;
    o->result_size = op->result_size;
    o->last_error = tm_strdup(op->last_error);
    o->attempt_ms = join_i64(op->attempt_ms, op->n_attempt_ms);
    int rc = capture_result(o, op);
    mark->dirty = 0;
    if ((op->last_error && !o->last_error) || !o->attempt_ms)
        rc = -1;
    return rc;
}

static int capture_branch(tm_w_branch_t *wb, uint32_t idx, const tm_branch_t *b,
                          tm_branch_run_t *mark)
{
    wb->idx = idx;
    wb->mode = b->mode;
    wb->initiator_driven = b->initiator_driven;
    wb->pivot = b->pivot;
    wb->branch_id = tm_strdup(b->branch_id);
    wb->deps = tm_store_join_u32(b->deps, b->n_deps);
    wb->payload_len = b->payload_len;
    if (b->payload_len) {
        wb->payload = malloc(b->payload_len);
        if (wb->payload)
            memcpy(wb->payload, b->payload, b->payload_len);
    }
    int rc = 0;
    for (int k = 0; k < TM_SLOTS; k++) {
        wb->kind[k] = b->ops[k].kind;
        wb->target[k] = tm_strdup(b->ops[k].target);
        if (b->ops[k].target && !wb->target[k])
            rc = -1;
    }
    mark->stored = 1;
    if (!wb->branch_id || !wb->deps || (b->payload_len && !wb->payload))
        rc = -1;
    return rc;
}

static int capture_header(tm_write_t *w, const tm_trans_t *tx, int insert)
{
    w->insert = insert;
    memcpy(w->gid, tx->gid, sizeof(w->gid));
    w->status = tx->status;
    w->created_ms = tx->created_ms;
    w->updated_ms = tx->updated_ms;
    w->finished_ms = tx->finished_ms;
    w->submit_hash = tx->submit_hash;
    w->generation = tx->generation;
    w->reason = tm_strdup(tx->reason);
    if (tx->reason && !w->reason)
        return -1;
    if (!insert)
        return 0;
    Trellis__V1__TransOptions *m = tm_options_to_proto(&tx->opts);
    if (!m)
        return -1;
    w->options_len = trellis__v1__trans_options__get_packed_size(m);
    w->options = malloc(w->options_len ? w->options_len : 1);
    if (w->options)
        trellis__v1__trans_options__pack(m, w->options);
    tm_options_proto_free(m);
    return w->options ? 0 : -1;
}

/* Op s of branch i changed since it was last captured. */
static int op_dirty(const tm_trans_t *tx, const tm_run_t *run, size_t i, int s)
{
    return tx->branches[i].ops[s].kind != TM_KIND_NONE &&
           tm_run_op(run, i, s)->dirty;
}

static size_t count_changes(const tm_trans_t *tx, const tm_run_t *run,
                            size_t *n_branches)
{
    size_t ops = 0;
    *n_branches = 0;
    for (size_t i = 0; i < tx->n_branches; i++) {
        if (!run->branches[i].stored)
            (*n_branches)++;
        for (int s = 0; s < TM_SLOTS; s++)
            ops += (size_t)op_dirty(tx, run, i, s);
    }
    return ops;
}

tm_write_t *tm_write_capture(const tm_trans_t *tx, tm_run_t *run, int insert)
{
    assert(run->cap >= tx->n_branches);
    tm_write_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    size_t nb;
    size_t nops = count_changes(tx, run, &nb);
    w->branches = calloc(nb ? nb : 1, sizeof(*w->branches));
    w->ops = calloc(nops ? nops : 1, sizeof(*w->ops));
    int rc = (w->branches && w->ops) ? capture_header(w, tx, insert) : -1;
    for (size_t i = 0; rc == 0 && i < tx->n_branches; i++) {
        const tm_branch_t *b = &tx->branches[i];
        tm_branch_run_t *mark = &run->branches[i];
        if (!mark->stored)
            rc = capture_branch(&w->branches[w->n_branches++], (uint32_t)i, b,
                                mark);
        for (int s = 0; rc == 0 && s < TM_SLOTS; s++)
            if (op_dirty(tx, run, i, s))
                rc = capture_op(&w->ops[w->n_ops++], (uint32_t)i, s, &b->ops[s],
                                &mark->ops[s]);
    }
    if (rc != 0) {
        tm_write_free(w);
        return NULL;
    }
    return w;
}

tm_write_t *tm_write_capture_all(const tm_trans_t *tx, int insert)
{
    tm_run_t run = {0};
    if (tm_run_fit(&run, tx->n_branches) != 0)
        return NULL;
    if (!insert)
        tm_run_mark_stored(&run, tx->n_branches);
    for (size_t i = 0; i < tx->n_branches; i++)
        for (int s = 0; s < TM_SLOTS; s++) {
            const tm_op_t *op = &tx->branches[i].ops[s];
            tm_run_op(&run, i, s)->dirty =
                op->attempts > 0 || op->status > TM_OP_PENDING;
        }
    tm_write_t *w = tm_write_capture(tx, &run, insert);
    tm_run_clear(&run);
    return w;
}

/* ---- column helpers ----------------------------------------------------- */

uint32_t *tm_store_split_u32(const char *text, size_t *n)
{
    *n = 0;
    if (!text || !*text)
        return NULL;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    uint32_t *v = malloc(cap * sizeof(*v));
    if (!v)
        return NULL;
    const char *p = text;
    while (*p && *n < cap) {
        char *end;
        v[(*n)++] = (uint32_t)strtoul(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p != ',')
            break;
    }
    return v;
}

int64_t *tm_store_split_i64(const char *text, uint32_t *n)
{
    *n = 0;
    if (!text || !*text)
        return NULL;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    int64_t *v = malloc(cap * sizeof(*v));
    if (!v)
        return NULL;
    const char *p = text;
    while (*p && *n < cap) {
        char *end;
        v[(*n)++] = strtoll(p, &end, 10);
        if (*end != ',')
            break;
        p = end + 1;
    }
    return v;
}

/* Ops still pending in a finished transaction were never called: the
 * engine does not write them, so they are marked here. */
void tm_store_mark_skipped_if_finished(tm_trans_t *tx)
{
    if (!tm_tx_is_final(tx->status))
        return;
    for (size_t i = 0; i < tx->n_branches; i++)
        for (int k = 0; k < TM_SLOTS; k++) {
            tm_op_t *op = &tx->branches[i].ops[k];
            if (op->kind != TM_KIND_NONE && op->status == TM_OP_PENDING)
                op->status = TM_OP_SKIPPED;
        }
}

/* ---- subscriptions read back ------------------------------------------- */

int tm_store_subscription_add(tm_subscription_t **v, size_t *n, size_t *cap,
                              const char *topic, const char *target,
                              const char *remark, int64_t created_ms)
{
    if (*n == *cap) {
        size_t want = *cap ? *cap * 2 : 16;
        tm_subscription_t *grown = realloc(*v, want * sizeof(*grown));
        if (!grown)
            return -1;
        *v = grown;
        *cap = want;
    }
    tm_subscription_t sub = {tm_strdup(topic), tm_strdup(target),
                             tm_strdup(remark ? remark : ""), created_ms};
    if (!sub.topic || !sub.target || !sub.remark) {
        free(sub.topic);
        free(sub.target);
        free(sub.remark);
        return -1;
    }
    (*v)[(*n)++] = sub;
    return 0;
}

void tm_subscriptions_free(tm_subscription_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].topic);
        free(v[i].target);
        free(v[i].remark);
    }
    free(v);
}
