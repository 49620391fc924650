/*
 * tm_event: the CompletionEvent a completion listener is sent
 * (tm_kind_event.c), built from the model when its notify op is called.
 * Pure: the same durable model gives the same bytes, in memory or after a
 * restart from the store, so every attempt of one event is identical.
 */
#ifndef TM_EVENT_H
#define TM_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "tm_trans.h"

/* When the outcome was reached: the latest finished_ms of an op of a
 * branch that is not after_outcome (a listener's own tries do not move
 * it); created_ms when no such op finished (nothing ran). */
int64_t tm_event_finished_ms(const tm_trans_t *tx);

/* Pack the CompletionEvent of tx for the notify op in slot of its listener
 * branch e (TM_SLOT_COMMIT: SUCCEEDED, TM_SLOT_ROLLBACK: FAILED, with tx's
 * reason; branch_id e's id). Returns a malloc'ed buffer the caller frees,
 * with *len set, or NULL on out of memory. */
uint8_t *tm_event_pack(const tm_trans_t *tx, size_t e, tm_slot_t slot,
                       size_t *len);

/* Pack n packed CompletionEvents (events[i], lens[i] bytes; borrowed)
 * into one CompletionEventBatch, in that order. Returns a malloc'ed
 * buffer the caller frees, with *len set, or NULL on out of memory. */
uint8_t *tm_event_batch_pack(const uint8_t *const *events, const size_t *lens,
                             size_t n, size_t *len);

/* Pack the BranchEvent of branch event e (a reports_branch kind, its one
 * dependency the reported branch) for its notify in slot (TM_SLOT_COMMIT:
 * the transaction commits; TM_SLOT_ROLLBACK: it rolls back): the
 * reported branch's id, mode, forward status (PENDING that never ran
 * reads SKIPPED), its phase-2 op on that side and status (PENDING reads
 * SKIPPED: once settled it never runs), its forward op's last error and
 * its latest finish (else tx's created_ms). Only state that no longer
 * changes once the branch is settled, so every attempt is the same
 * bytes. Returns a malloc'ed buffer the caller frees, with *len set, or
 * NULL on out of memory. */
uint8_t *tm_event_branch_pack(const tm_trans_t *tx, size_t e, tm_slot_t slot,
                              size_t *len);

#endif /* TM_EVENT_H */
