/*
 * tm_event: the CompletionEvent of a transaction (see tm_event.h).
 */
#include "tm_event.h"

#include <stdlib.h>
#include <string.h>

#include "tm_kind.h"
#include "tm_plan.h"
#include "trellis/v1/tm.pb-c.h"

int64_t tm_event_finished_ms(const tm_trans_t *tx)
{
    int64_t latest = 0;
    for (size_t i = 0; i < tx->n_branches; i++) {
        const tm_branch_t *b = &tx->branches[i];
        const tm_kind_t *k = tm_kind_find(b->mode);
        if (k && k->after_outcome)
            continue;
        for (int s = 0; s < TM_SLOTS; s++)
            if (b->ops[s].finished_ms > latest)
                latest = b->ops[s].finished_ms;
    }
    return latest ? latest : tx->created_ms;
}

uint8_t *tm_event_pack(const tm_trans_t *tx, size_t e, tm_slot_t slot,
                       size_t *len)
{
    Trellis__V1__CompletionEvent ev = TRELLIS__V1__COMPLETION_EVENT__INIT;
    ev.gid = (char *)tx->gid;
    ev.branch_id = e < tx->n_branches ? tx->branches[e].branch_id : "";
    ev.status = slot == TM_SLOT_COMMIT
                    ? TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED
                    : TRELLIS__V1__TRANS_STATUS__TRANS_FAILED;
    ev.reason = slot == TM_SLOT_COMMIT || !tx->reason ? "" : tx->reason;
    ev.created_ms = tx->created_ms;
    ev.finished_ms = tm_event_finished_ms(tx);
    *len = trellis__v1__completion_event__get_packed_size(&ev);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        trellis__v1__completion_event__pack(&ev, buf);
    return buf;
}

/* An op's status as the event tells it: PENDING, once its branch is
 * settled, means it will never run — except a forward op that may have
 * run and has no final answer (its branch rolled back around it). */
static Trellis__V1__OpStatus told_status(const tm_op_t *op, int may_have_run)
{
    if (op->kind == TM_KIND_NONE)
        return TRELLIS__V1__OP_STATUS__OP_STATUS_UNSPECIFIED;
    if (op->status == TM_OP_PENDING && !may_have_run)
        return TRELLIS__V1__OP_STATUS__OP_SKIPPED;
    return (Trellis__V1__OpStatus)op->status;
}

uint8_t *tm_event_branch_pack(const tm_trans_t *tx, size_t e, tm_slot_t slot,
                              size_t *len)
{
    const tm_branch_t *ev = &tx->branches[e];
    size_t r = ev->n_deps == 1 ? ev->deps[0] : e; /* e: a malformed row */
    const tm_branch_t *b = &tx->branches[r];
    int committing = slot == TM_SLOT_COMMIT;
    const tm_op_t *fw = &b->ops[TM_SLOT_FORWARD];
    const tm_op_t *p2 = &b->ops[tm_plan_side_slot(b, committing)];
    Trellis__V1__BranchEvent m = TRELLIS__V1__BRANCH_EVENT__INIT;
    m.gid = (char *)tx->gid;
    m.branch_id = b->branch_id;
    m.mode = (Trellis__V1__BranchMode)b->mode;
    m.forward_status = told_status(fw, tm_plan_may_have_run(tx, r));
    m.phase2_op = (Trellis__V1__OpKind)p2->kind;
    m.phase2_status = told_status(p2, 0);
    m.last_error = fw->last_error ? fw->last_error : "";
    m.finished_ms =
        fw->finished_ms > p2->finished_ms ? fw->finished_ms : p2->finished_ms;
    if (!m.finished_ms)
        m.finished_ms = tx->created_ms;
    m.committed = committing;
    *len = trellis__v1__branch_event__get_packed_size(&m);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        trellis__v1__branch_event__pack(&m, buf);
    return buf;
}

/* One varint: the bytes of v into out (at least 10), how many. */
static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        out[n++] = v ? (uint8_t)(byte | 0x80) : byte;
    } while (v);
    return n;
}

/* Field 1 of CompletionEventBatch, length-delimited: (1 << 3) | 2. */
#define BATCH_EVENTS_TAG 0x0a

uint8_t *tm_event_batch_pack(const uint8_t *const *events, const size_t *lens,
                             size_t n, size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 1 + 10 + lens[i];
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        buf[at++] = BATCH_EVENTS_TAG;
        at += put_varint(buf + at, lens[i]);
        memcpy(buf + at, events[i], lens[i]);
        at += lens[i];
    }
    *len = at;
    return buf;
}
