/*
 * tm_batch: completion events for batching listeners
 * (TransOptions.listener_batch), gathered into CompletionEventBatch calls
 * so that a listener costs a fraction of a call per transaction under load.
 *
 * Per listener (its host:port, method and batch size) one call at a time
 * is on the wire (TM_BATCH_INFLIGHT). An event that finds none goes out at
 * once, alone — an idle system adds no delay; one that finds the call out
 * waits, and when that call ends the waiting ones (up to the batch size)
 * go in the next. So batches grow with the load by themselves, no timer
 * is needed, and an event waits at most about one call's round trip. The
 * waiters of a transaction are answered before its listeners are told
 * (tm_plan_outcome_known), so batching never delays an initiator.
 *
 * Each event keeps its own completion: the batch call's status is handed
 * to every event in it, and each is retried on its own by the engine (a
 * failed event may travel in another batch next time; the listener's
 * barrier, keyed by each event's gid and branch id, makes that safe).
 *
 * Threading: one mutex. While it is held only a batch call is started
 * (the caller's channel-cache lock, taken inside, is the one lock below
 * it) and no completion runs: the engine calls tm_batch_send under a
 * transaction's lock, and the completions, which take that lock, run
 * after the mutex is released. Queues are kept for the process's life,
 * one per (listener, batch size) ever used: a few, since listeners are
 * allowlisted targets.
 */
#ifndef TM_BATCH_H
#define TM_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "tm_call.h"

/* Calls on the wire per listener at most. One gathers the most per call
 * (2 measured about 1.1 events per call at saga2's load, 1 about 5.6). */
#define TM_BATCH_INFLIGHT 1

/* How a batch call is started: the engine env's call_start (tm_engine.h),
 * which copies payload and md before it returns. */
typedef int (*tm_batch_start_fn)(void *caller, const char *host_port,
                                 const char *method, const uint8_t *payload,
                                 size_t len, const tm_md_t *md, size_t n_md,
                                 uint32_t timeout_ms, tm_call_done_fn done,
                                 void *arg, char *err, size_t errlen);

typedef struct tm_batch tm_batch_t;

/* A batcher starting its calls with start(caller, ...). Returns NULL on
 * out of memory. The caller owns it: tm_batch_free. */
tm_batch_t *tm_batch_new(tm_batch_start_fn start, void *caller);

/* Free b. Nothing may be waiting or on the wire (every call ended). */
void tm_batch_free(tm_batch_t *b);

/* Send one packed CompletionEvent (event[len], copied) to host_port's
 * method in batches of at most max events, due within timeout_ms. Returns
 * 0, and done(arg, status, message, NULL, 0) runs exactly once later (on
 * the thread that ends the batch call, never inside this function), with
 * the status of the call that carried it; or returns -1 with err filled
 * when the call could not be started, and done never runs. */
int tm_batch_send(tm_batch_t *b, const char *host_port, const char *method,
                  uint32_t max, const uint8_t *event, size_t len,
                  uint32_t timeout_ms, tm_call_done_fn done, void *arg,
                  char *err, size_t errlen);

/* Events waiting for a call, and batch calls on the wire, over all
 * listeners (for tests and metrics). */
size_t tm_batch_waiting(tm_batch_t *b);
size_t tm_batch_calls(tm_batch_t *b);

#endif /* TM_BATCH_H */
