/*
 * tm_kind_event: a completion listener — a target named in the
 * transaction's options (TransOptions.listeners) to be told how it ended.
 * The TM appends one such branch per listener when it creates the
 * transaction (ids "ev1", "ev2", ...), so the event is stored from the
 * start: a crash neither loses nor invents it. It has no forward op; its
 * commit-side op "notify" tells the listener the transaction SUCCEEDED,
 * its rollback-side op "notify" that it FAILED. Either is called with a
 * CompletionEvent (gid, status, reason, created_ms, finished_ms) built at
 * call time from durable state, so every attempt sends the same bytes;
 * it waits until every other branch is done (runs_last) and is retried
 * until it answers OK: behind the barrier (dtm-branch_id the event's id)
 * the listener hears it exactly once in effect. Waiters do not wait for
 * it (after_outcome); the transaction is final only once all are told.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_event = {
    .mode = TM_MODE_EVENT,
    .name = "event",
    .ops = {TM_KIND_NONE, TM_KIND_NOTIFY, TM_KIND_NOTIFY},
    .place = TM_PLACE_LISTENER,
    .runs_last = 1,
    .after_outcome = 1,
    .event_payload = 1,
};
