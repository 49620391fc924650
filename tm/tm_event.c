/*
 * tm_event: the CompletionEvent of a transaction (see tm_event.h).
 */
#include "tm_event.h"

#include <stdlib.h>

#include "tm_kind.h"
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

uint8_t *tm_event_pack(const tm_trans_t *tx, tm_slot_t slot, size_t *len)
{
    Trellis__V1__CompletionEvent ev = TRELLIS__V1__COMPLETION_EVENT__INIT;
    ev.gid = (char *)tx->gid;
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
