/*
 * bench_async: the load of the tcc2 and xa2 workloads of trellis-bench
 * through the SDK's asynchronous API (trellis_async.h) — K transactions
 * kept in flight by the callbacks of one client thread, with no thread per
 * transaction. What one transaction is (the TCC or XA run, or the same
 * business calls made directly without a TM) is the workload's op
 * (bench_tcc.c, bench_xa.c); this module owns the clients, the clock, the
 * counting and the refilling.
 *
 * Like bench_ap, a run lasts warmup_s + duration_s and counts and times
 * only the transactions that end inside the window [warmup, warmup +
 * duration); no transaction starts after the window.
 *
 * Threads: bench_async_start/finish from one thread (the main one). Ops
 * are started, and bench_async_done called, on the clients' threads (the
 * first ones from bench_async_start): one client per target of tm_addr,
 * transaction i on client i % targets, each client with one thread of its
 * own that runs its callbacks; the counters are per client, guarded by
 * nothing else than that thread (the start loop ends before any callback
 * can touch them: see bench_async.c).
 */
#ifndef BENCH_ASYNC_H
#define BENCH_ASYNC_H

#include <stddef.h>
#include <stdint.h>

#include "bench_load.h"
#include "trellis/trellis_async.h"

typedef struct bench_async_slot bench_async_slot_t;

/* Start transaction n (0, 1, ... across the run) for slot s, on the
 * client bench_async_client(s); its end must be reported exactly once with
 * bench_async_done(s, ...), from a callback (or inline on a failure to
 * start). user is the spec's, shared read-only. */
typedef void (*bench_async_op_fn)(bench_async_slot_t *s, uint64_t n,
                                  const void *user);

typedef struct {
    const char *tm_addr; /* "host:port", or several, comma-separated */
    int concurrency;     /* transactions in flight */
    double warmup_s, duration_s;
    uint32_t call_timeout_ms; /* 0: 30 s */
    bench_async_op_fn op;
    const void *user; /* must outlive the run */
} bench_async_spec_t;

typedef struct bench_async_load bench_async_load_t;

/* Open the clients and start `concurrency` transactions; NULL with err. */
bench_async_load_t *bench_async_start(const bench_async_spec_t *spec, char *err,
                                      size_t errlen);
int64_t bench_async_window_start_ns(const bench_async_load_t *l);
int64_t bench_async_window_end_ns(const bench_async_load_t *l);
/* Wait for the last transactions to end, fill *out, release. */
void bench_async_finish(bench_async_load_t *l, bench_load_result_t *out);

/* For the op: the slot's client, a pseudo-random number of its client's
 * sequence, and the end of its transaction (ok 1: it succeeded; else why,
 * printf-style, kept when it is the run's first failure). */
trellis_client_t *bench_async_client(const bench_async_slot_t *s);
uint64_t bench_async_rand(bench_async_slot_t *s);
void bench_async_done(bench_async_slot_t *s, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* End the slot's transaction with the outcome of a 2-branch run
 * (trellis_async_tcc_run, trellis_async_xa_run): ok when it answered
 * SUCCEEDED; a failure names the branch (names[branch]) and forward_op. */
void bench_async_end_run(bench_async_slot_t *s, const trellis_async_result_t *r,
                         const char *const names[2], const char *forward_op);

/* One client per target of the comma-separated tm_addr into clients[]
 * (at most BENCH_MAX_TARGETS; *n of them made, the caller frees them, also
 * on failure), each with its own callback thread (trellis_async_start)
 * when async. 0, or -1 with err. */
int bench_clients_open(const char *tm_addr, uint32_t timeout_ms, int async,
                       trellis_client_t **clients, size_t *n, char *err,
                       size_t errlen);

/* ---- a transaction's business calls without a TM (the baselines) ----- */

/* One call of a direct transaction: method at host_port with the payload
 * and the branch metadata (dtm-branch_id, dtm-op) a TM would send. */
typedef struct {
    const char *host_port, *method, *branch_id, *op;
    const char *payload;
} bench_direct_call_t;

#define BENCH_DIRECT_MAX 8

/* Make calls[0..n-1] one after the other through the slot's client
 * (trellis_async_call_unary), each with dtm-gid gid and dtm-trans_type
 * trans_type, and end the slot's transaction: ok once every call answered
 * OK, else at the first failure (the rest are not made). Everything is
 * copied. */
void bench_async_direct(bench_async_slot_t *s, const char *gid,
                        const char *trans_type,
                        const bench_direct_call_t *calls, size_t n);

#endif /* BENCH_ASYNC_H */
