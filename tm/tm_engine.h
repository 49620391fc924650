/*
 * tm_engine: the live transaction engine of trellisd.
 *
 * It keeps every unfinished transaction in memory (a hash by gid), each
 * with its own lock, and moves it along on four kinds of event: a request
 * from an initiator, the result of a branch call, a timer (retry or
 * timeout), and the commit of a storage write. The decisions themselves are
 * tm_plan's; the engine adds what makes them safe to act on:
 *
 *  - Write-ahead: every change is captured and queued to the store, and
 *    nothing is called or answered on its strength until the write's
 *    commit callback runs. While any write of a transaction is in flight,
 *    the engine does not plan new calls for it; the last commit callback
 *    plans, so planning only ever sees durable state.
 *  - Reference counts: the hash, each call on the wire, each armed timer
 *    and each queued write hold a reference to the transaction, so none of
 *    them can see it freed.
 *  - Finished transactions leave memory once their final state committed;
 *    queries then read them from the store.
 *
 * Replies go through the reply function given at creation, so the engine
 * knows requests only as opaque rpc pointers.
 */
#ifndef TM_ENGINE_H
#define TM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "tm_caller.h"
#include "tm_store.h"
#include "tm_timer.h"
#include "tm_validate.h"

typedef struct {
    tm_limits_t limits;
    uint32_t retry_interval_ms;   /* default ONGOING interval, backoff base */
    uint32_t request_timeout_ms;  /* default deadline of a branch call */
    uint32_t max_backoff_ms;      /* cap of exponential backoff */
    uint32_t prepared_timeout_ms; /* default timeout of a begun transaction */
    uint32_t retry_limit;         /* default; 0: unlimited */
    uint32_t max_inflight; /* unfinished transactions in memory; a new one
                              beyond it is refused RESOURCE_EXHAUSTED */
    uint32_t max_waiters;  /* requests waiting for a result (wait_result),
                              over all transactions; more are refused
                              RESOURCE_EXHAUSTED (64 per transaction) */
} tm_engine_config_t;

void tm_engine_config_default(tm_engine_config_t *c);

typedef struct tm_engine tm_engine_t;

/* *out is the caller's: tm_engine_free. The engine borrows store, timers
 * and caller; they must outlive it. */
int tm_engine_new(const tm_engine_config_t *cfg, tm_store_t *store,
                  tm_timers_t *timers, tm_caller_t *caller, tm_engine_t **out,
                  char *err, size_t errlen);
void tm_engine_free(tm_engine_t *e);

/* Load every unfinished transaction from the store into memory (before
 * serving). Returns how many, or -1 with err. */
long tm_engine_load(tm_engine_t *e, char *err, size_t errlen);
/* Drive every loaded transaction on (once the queues run). */
void tm_engine_resume_all(tm_engine_t *e);

/* The gRPC method handlers: decode, validate, act, reply. */
void tm_engine_handle_new_gid(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                              void *engine);
void tm_engine_handle_begin(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                            void *engine);
void tm_engine_handle_register(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                               void *engine);
void tm_engine_handle_submit(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                             void *engine);
void tm_engine_handle_abort(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                            void *engine);
void tm_engine_handle_query(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                            void *engine);
void tm_engine_handle_list(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                           void *engine);
/* Operator RPCs (trellisctl). RetryNow: call every op that waits for a
 * retry now, backoff reset. ForceStop: mark an unfinished transaction
 * FAILED ("force-stopped by operator: <reason>"), answer once committed,
 * call nothing more and ignore late results. */
void tm_engine_handle_retry_now(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                                void *engine);
void tm_engine_handle_force_stop(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                                 void *engine);

/* Unfinished transactions in memory. */
size_t tm_engine_live_count(tm_engine_t *e);

/* Requests waiting (Submit or Abort with wait_result) for a result, on
 * every transaction. A waiter leaves when it is answered, when its client
 * cancels the call or goes away (at once: tm_server_watch_cancel), or once
 * its deadline passed. Any thread. */
unsigned tm_engine_waiters(tm_engine_t *e);

/* Graceful stop. After tm_engine_drain, a Begin or Submit that would create
 * a transaction is refused UNAVAILABLE ("shutting down"); requests for
 * transactions already known are served as before, and live ones keep
 * being driven. Any thread; there is no way back. */
void tm_engine_drain(tm_engine_t *e);
int tm_engine_draining(tm_engine_t *e);

/* 1 while new work is taken: not draining, and the store commits (while
 * it fails, Begin, Submit, RegisterBranch, Abort and ForceStop are refused
 * UNAVAILABLE at once, naming the store and its error). */
int tm_engine_serving(tm_engine_t *e);

/* Block up to timeout_ms until no unfinished transaction is left in
 * memory; returns how many are still there (0: idle). Any thread but a
 * completion-queue or store thread (they finish the transactions). */
size_t tm_engine_wait_idle(tm_engine_t *e, uint32_t timeout_ms);

#endif /* TM_ENGINE_H */
