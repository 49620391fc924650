/*
 * tm_metrics: trellisd's counters, gauges and histograms, and their
 * Prometheus text exposition.
 *
 * Every metric is a process-wide C11 atomic: recording one is a few
 * relaxed atomic adds, never a lock, so the engine, the store thread and
 * the queue threads record from wherever the event happens. Histograms
 * have fixed buckets chosen here; an observation increments one bucket
 * (non-cumulative) and the sum; the exposition adds the buckets up. A
 * scrape reads each atomic on its own, so a scrape that races with
 * recording may see an observation in a bucket but not yet in the sum;
 * `_count` is the sum of the buckets read, so it always equals the `+Inf`
 * bucket.
 *
 * Names start with trellis_ (the list is in README.md, "Metrics"). Who
 * records what:
 *   the engine core   transactions finished (mode, outcome: tm_engine.c),
 *                     in flight (tm_live.c), waiters (tm_waiters.c),
 *                     branch calls by op kind and result, retries
 *                     (tm_engine_calls.c), recovered (tm_engine_recover.c);
 *   tm_store_*.c      one tm_metrics_store_commit per group commit;
 *   lease handling    tm_metrics_takeovers_add;
 *   tm_store.c        tm_metrics_purged_add (retention, both engines).
 *
 * Threads: every function may be called from any thread at any time.
 */
#ifndef TM_METRICS_H
#define TM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "tm_trans.h"

/* Result of one branch call, as tm_plan classifies it (tm_result_t), plus
 * calls that could not even be started. */
typedef enum {
    TM_METRICS_CALL_OK = 0,
    TM_METRICS_CALL_FAILURE = 1, /* business failure (ABORTED) */
    TM_METRICS_CALL_ONGOING = 2,
    TM_METRICS_CALL_UNKNOWN = 3, /* any other status, or no answer */
    TM_METRICS_CALL_RESULTS = 4,
} tm_metrics_call_result_t;

/* Monotonic microseconds, for timing what is recorded here. */
uint64_t tm_metrics_now_us(void);

/* A transaction reached its final status (call once, when the final state
 * is committed). The mode label is the branches' mode when they all share
 * one, "hybrid" when they mix, "none" when there are no branches. */
void tm_metrics_trans_finished(const tm_trans_t *tx);

/* Transactions in memory (unfinished): +1 when one enters the engine's
 * map, -1 when it leaves. */
void tm_metrics_in_flight_add(int64_t delta);

/* Requests waiting (wait_result) for a transaction's result: +1 when one
 * is kept, -1 when it is answered or dropped (its client went away). */
void tm_metrics_waiters_add(int64_t delta);

/* One branch call of op kind `kind` ended with `result` after `micros`. */
void tm_metrics_branch_call(tm_op_kind_t kind, tm_metrics_call_result_t result,
                            uint64_t micros);

/* A branch op is called again after an attempt without a final answer. */
void tm_metrics_retry(tm_op_kind_t kind);

/* One group commit of the store: its duration and how many writes it held.
 * Called by the storage engines on their commit thread. */
void tm_metrics_store_commit(uint64_t micros, uint64_t batch);

/* Unfinished transactions loaded from storage at start. */
void tm_metrics_recovered_add(uint64_t n);

/* Transactions this node claimed from another node (lease takeover). */
void tm_metrics_takeovers_add(uint64_t n);

/* Finished transactions deleted by retention. */
void tm_metrics_purged_add(uint64_t n);

/* Operator actions that went through (trellisctl retry-now, force-stop). */
void tm_metrics_retry_now(void);
void tm_metrics_force_stopped(void);
/* A workflow's resume was refused and it waits for an operator. */
/* An op answered in a way an operator should see (tm_effect_t.alert:
 * phase2_not_succeeding in the log). */
void tm_metrics_op_alert(int op_kind);
/* A call started to a batching completion listener with events in it. */
void tm_metrics_listener_batch(size_t events);
void tm_metrics_workflow_stopped(void);

/* Storage health (tm_store.c): a failed group commit, the health state
 * (1 healthy), and a request refused because storage was failing. */
void tm_metrics_store_failure(void);
void tm_metrics_store_healthy(int healthy);
void tm_metrics_refused_unhealthy(void);

/* A request's trace context header that trellisd did not keep (tm_trace.h):
 * parent 1 for a traceparent, 0 for a tracestate. */
void tm_metrics_trace_dropped(int parent);

/* The Prometheus text exposition (format 0.0.4) of every metric. Returns
 * a NUL-terminated string owned by the caller (free), with its length in
 * *len; or NULL when out of memory. */
char *tm_metrics_render(size_t *len);

/* Zero every metric. For unit tests only: not atomic as a whole. */
void tm_metrics_reset(void);

#endif /* TM_METRICS_H */
