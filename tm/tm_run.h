/*
 * tm_run: what is known of a transaction only while a process drives it,
 * kept beside its durable model (tm_trans_t) and never stored:
 *
 *  - per op: a call is on the wire (inflight), its retry timer is armed
 *    (waiting_retry), its streak of unknown results (for the backoff), and
 *    whether it changed since it was last handed to the store (dirty);
 *  - per branch: whether its row is stored, or on its way (stored).
 *
 * The decision rules (tm_plan) read and update it, the write capture
 * (tm_write_capture) reads and clears its marks, and the engine owns it —
 * one per live transaction, fitted to the model with tm_run_fit whenever
 * branches are added. A transaction loaded from the store starts with
 * tm_run_mark_stored: every branch stored, nothing dirty, nothing on the
 * wire.
 *
 * Not thread-safe: used under the transaction's lock.
 */
#ifndef TM_RUN_H
#define TM_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "tm_trans.h"

typedef struct {
    int inflight;
    int waiting_retry;
    uint32_t unknown_streak;
    int dirty;
} tm_op_run_t;

typedef struct {
    tm_op_run_t ops[TM_SLOTS];
    int stored;
} tm_branch_run_t;

typedef struct {
    tm_branch_run_t *branches; /* owned; cap entries, zeroed when added */
    size_t cap;
    /* A prepared workflow whose timeout passed: its head's resume is due
     * (tm_plan.h, "Workflows"). Not stored: a load re-arms the timeout,
     * which sets it again. */
    int resume_due;
} tm_run_t;

/* Room for n branches (new ones zeroed). Entries may move: no pointer into
 * the array may be kept across it. Returns 0, or -1 on out of memory. */
int tm_run_fit(tm_run_t *r, size_t n);

/* The first n branches are stored (a transaction read from the store). */
void tm_run_mark_stored(tm_run_t *r, size_t n);

/* Free the array. */
void tm_run_clear(tm_run_t *r);

/* The op (branch b, slot s); b must be below the fitted size. */
static inline tm_op_run_t *tm_run_op(const tm_run_t *r, size_t b, int s)
{
    return &r->branches[b].ops[s];
}

#endif /* TM_RUN_H */
