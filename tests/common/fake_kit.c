/*
 * fake_kit: the shared parts of the fake engine environments (see
 * fake_kit.h): the write queue, rows read back into the model, the
 * subscriptions, the timer list, metadata lookup and the empty env
 * entries.
 */
#include "fake_kit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *fkit_must(void *p)
{
    if (!p) {
        fprintf(stderr, "fake env: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- the store's queue ---- */

void fkit_queue_push(fkit_queue_t *q, tm_write_t *w, tm_store_done_fn done,
                     void *arg)
{
    w->done = done;
    w->arg = arg;
    w->next = NULL;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->n++;
}

tm_write_t *fkit_queue_pop(fkit_queue_t *q)
{
    tm_write_t *w = q->head;
    if (!w)
        return NULL;
    q->head = w->next;
    if (!q->head)
        q->tail = NULL;
    q->n--;
    w->next = NULL;
    return w;
}

tm_write_t *fkit_queue_take_all(fkit_queue_t *q)
{
    tm_write_t *group = q->head;
    q->head = q->tail = NULL;
    q->n = 0;
    return group;
}

/* ---- stored rows ---- */

static void apply_header(tm_trans_t *tx, const tm_write_t *w)
{
    tx->status = (tm_tx_status_t)w->status;
    tx->updated_ms = w->updated_ms;
    tx->finished_ms = w->finished_ms;
    tx->submit_hash = w->submit_hash;
    tm_set_string(&tx->reason, w->reason);
    if (w->insert) {
        tx->created_ms = w->created_ms;
        tm_store_decode_options(tx, w->options, w->options_len);
    }
}

static void apply_branch(tm_trans_t *tx, const tm_w_branch_t *wb)
{
    while (tx->n_branches <= wb->idx)
        fkit_must(tm_trans_add_branch(tx));
    tm_branch_t *b = &tx->branches[wb->idx];
    b->branch_id = fkit_must(tm_strdup(wb->branch_id));
    b->mode = (tm_mode_t)wb->mode;
    b->initiator_driven = wb->initiator_driven;
    b->pivot = wb->pivot;
    if (wb->payload_len) {
        b->payload = fkit_must(malloc(wb->payload_len));
        memcpy(b->payload, wb->payload, wb->payload_len);
    }
    b->payload_len = wb->payload_len;
    b->deps = tm_store_split_u32(wb->deps, &b->n_deps);
    for (int k = 0; k < TM_SLOTS; k++) {
        b->ops[k].kind = (tm_op_kind_t)wb->kind[k];
        b->ops[k].target = tm_strdup(wb->target[k]);
        b->ops[k].status = wb->kind[k] ? TM_OP_PENDING : 0;
    }
}

static void apply_op(tm_trans_t *tx, const tm_w_op_t *o)
{
    tm_op_t *op = &tx->branches[o->branch].ops[o->slot];
    op->status = (tm_op_status_t)o->status;
    op->attempts = o->attempts;
    op->finished_ms = o->finished_ms;
    op->late = o->late;
    tm_set_string(&op->last_error, o->last_error);
    free(op->attempt_ms);
    op->attempt_ms = tm_store_split_i64(o->attempt_ms, &op->n_attempt_ms);
    op->recorded = o->recorded; /* a workflow step's result, as stored */
    op->result_size = o->result_size;
    free(op->result);
    op->result = NULL;
    op->result_len = o->result_len;
    if (o->result_len) {
        op->result = fkit_must(malloc(o->result_len));
        memcpy(op->result, o->result, o->result_len);
    }
}

tm_trans_t *fkit_row_read(const char *gid, tm_write_t *const *writes, size_t n)
{
    tm_trans_t *tx = fkit_must(tm_trans_new(gid, TM_TX_PREPARED, 0));
    for (size_t i = 0; i < n; i++) {
        const tm_write_t *w = writes[i];
        apply_header(tx, w);
        for (size_t k = 0; k < w->n_branches; k++)
            apply_branch(tx, &w->branches[k]);
        for (size_t k = 0; k < w->n_ops; k++)
            apply_op(tx, &w->ops[k]);
    }
    tm_store_mark_skipped_if_finished(tx);
    return tx;
}

/* ---- subscriptions ---- */

/* The stores' order: topic, then created_ms, then target. */
static int sub_cmp(const tm_subscription_t *a, const tm_subscription_t *b)
{
    int c = strcmp(a->topic, b->topic);
    if (c)
        return c;
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    return strcmp(a->target, b->target);
}

/* The position of (topic, target), or t->n. */
static size_t sub_find(const fkit_topics_t *t, const char *topic,
                       const char *target)
{
    size_t i = 0;
    while (i < t->n &&
           (strcmp(t->v[i].topic, topic) || strcmp(t->v[i].target, target)))
        i++;
    return i;
}

int fkit_topics_subscribe(fkit_topics_t *t, const char *topic,
                          const char *target, const char *remark,
                          int64_t now_ms)
{
    if (sub_find(t, topic, target) < t->n)
        return 0;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->v = fkit_must(realloc(t->v, t->cap * sizeof(*t->v)));
    }
    tm_subscription_t sub = {
        fkit_must(tm_strdup(topic)), fkit_must(tm_strdup(target)),
        fkit_must(tm_strdup(remark ? remark : "")), now_ms};
    size_t at = t->n;
    while (at > 0 && sub_cmp(&t->v[at - 1], &sub) > 0)
        at--;
    memmove(&t->v[at + 1], &t->v[at], (t->n - at) * sizeof(*t->v));
    t->v[at] = sub;
    t->n++;
    return 1;
}

int fkit_topics_unsubscribe(fkit_topics_t *t, const char *topic,
                            const char *target)
{
    size_t i = sub_find(t, topic, target);
    if (i == t->n)
        return 0;
    free(t->v[i].topic);
    free(t->v[i].target);
    free(t->v[i].remark);
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
    t->n--;
    return 1;
}

void fkit_topics_list(const fkit_topics_t *t, const char *topic,
                      tm_subscription_t **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < t->n; i++) {
        const tm_subscription_t *s = &t->v[i];
        if ((!topic || !*topic || !strcmp(s->topic, topic)) &&
            tm_store_subscription_add(out, n, &cap, s->topic, s->target,
                                      s->remark, s->created_ms) != 0)
            fkit_must(NULL);
    }
}

void fkit_topics_free(fkit_topics_t *t)
{
    tm_subscriptions_free(t->v, t->n);
    memset(t, 0, sizeof(*t));
}

/* ---- armed timers ---- */

int fkit_timers_arm(fkit_timers_t *t, tm_timer_node_t *node, int64_t due_ms,
                    uint64_t seq, int owner)
{
    node->due_ms = due_ms;
    if (node->heap_index) { /* re-armed: keeps its place, new due time */
        t->seqs[node->heap_index - 1] = seq;
        return 0;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->nodes = fkit_must(realloc(t->nodes, t->cap * sizeof(*t->nodes)));
        t->seqs = fkit_must(realloc(t->seqs, t->cap * sizeof(*t->seqs)));
        t->owners = fkit_must(realloc(t->owners, t->cap * sizeof(*t->owners)));
    }
    t->nodes[t->n] = node;
    t->seqs[t->n] = seq;
    t->owners[t->n] = owner;
    node->heap_index = ++t->n;
    return 1;
}

void fkit_timers_remove_at(fkit_timers_t *t, size_t i)
{
    t->nodes[i]->heap_index = 0;
    t->n--;
    if (i != t->n) {
        t->nodes[i] = t->nodes[t->n];
        t->seqs[i] = t->seqs[t->n];
        t->owners[i] = t->owners[t->n];
        t->nodes[i]->heap_index = i + 1;
    }
}

int fkit_timers_disarm(fkit_timers_t *t, tm_timer_node_t *node)
{
    if (!node->heap_index)
        return 0;
    fkit_timers_remove_at(t, node->heap_index - 1);
    return 1;
}

size_t fkit_timers_first(const fkit_timers_t *t)
{
    size_t best = t->n;
    for (size_t i = 0; i < t->n; i++) {
        int64_t d = t->nodes[i]->due_ms;
        if (best == t->n || d < t->nodes[best]->due_ms ||
            (d == t->nodes[best]->due_ms && t->seqs[i] < t->seqs[best]))
            best = i;
    }
    return best;
}

void fkit_timers_free(fkit_timers_t *t)
{
    free(t->nodes);
    free(t->seqs);
    free(t->owners);
    memset(t, 0, sizeof(*t));
}

/* ---- calls ---- */

const tm_md_t *fkit_md_find(const tm_md_t *md, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(md[i].key, key) == 0)
            return &md[i];
    return NULL;
}

const char *fkit_md_value(const tm_md_t *md, size_t n, const char *key)
{
    const tm_md_t *m = fkit_md_find(md, n, key);
    return m && !m->value_len ? m->value : "";
}

/* ---- empty entries ---- */

int fkit_store_list_none(void *self, const tm_store_filter_t *f,
                         tm_trans_t ***out, size_t *n, char *err, size_t errlen)
{
    (void)self;
    (void)f;
    (void)err;
    (void)errlen;
    *out = NULL;
    *n = 0;
    return 0;
}

int fkit_front_watch_none(void *user, tm_rpc_t *rpc, tm_engine_cancel_fn fn,
                          void *fn_user, const char *key, char *err,
                          size_t errlen)
{
    (void)user;
    (void)rpc;
    (void)fn;
    (void)fn_user;
    (void)key;
    (void)err;
    (void)errlen;
    return 0;
}
