/*
 * bench_ap: the load of the tcc2, xa2 and hybrid3 workloads of
 * trellis-bench - `concurrency` threads, each running one initiator-driven
 * transaction after the other with the blocking SDK calls. What one
 * transaction is (helper, branches, payloads) is the workload's op
 * (bench_tcc_transfer, bench_xa_order, bench_hybrid_txn); this module owns the
 * threads, the trellis client they share, the clock and the counting.
 *
 * Like bench_load, a run lasts warmup_s + duration_s and counts and times
 * only the transactions that end inside the window [warmup, warmup +
 * duration); a thread starts no new one after the window.
 *
 * Threads: bench_ap_start/finish from one thread; the op runs on the load
 * threads, concurrently, and may call the bench_ap_worker functions only
 * on the worker it was given. Each worker owns its counters and latencies;
 * nothing is shared on the hot path but the (thread-safe) trellis clients.
 *
 * Several trellisd nodes: tm_addr may list several targets; the run then
 * has one client per target and worker i uses target i % targets for
 * everything, so each transaction's requests reach the node that accepted
 * it (a node answers Register and Abort only for its own transactions).
 */
#ifndef BENCH_AP_H
#define BENCH_AP_H

#include <stddef.h>
#include <stdint.h>

#include "bench_load.h"

typedef struct trellis_client trellis_client_t;
typedef struct bench_ap_worker bench_ap_worker_t;

/* One transaction, start to end: thread w's n-th (n = 0, 1, ...). Returns
 * 1 when it succeeded, else 0 after noting why (bench_ap_note_error). user
 * is the spec's, shared read-only by all threads. */
typedef int (*bench_ap_op_fn)(bench_ap_worker_t *w, uint64_t n,
                              const void *user);

typedef struct {
    const char *tm_addr; /* "host:port", or several, comma-separated */
    int concurrency;
    double warmup_s, duration_s;
    uint32_t call_timeout_ms; /* 0: 30 s */
    bench_ap_op_fn op;
    const void *user; /* must outlive the run */
} bench_ap_spec_t;

typedef struct bench_ap_load bench_ap_load_t;

/* Start the run's threads; NULL with err. */
bench_ap_load_t *bench_ap_start(const bench_ap_spec_t *spec, char *err,
                                size_t errlen);
int64_t bench_ap_window_start_ns(const bench_ap_load_t *l);
int64_t bench_ap_window_end_ns(const bench_ap_load_t *l);
/* Wait for the threads, fill *out (rate = transactions/s), release. */
void bench_ap_finish(bench_ap_load_t *l, bench_load_result_t *out);

/* For the op, on w's thread: the thread's trellis client (owned by the
 * run; the same one for the whole run), the thread's index (0 ..
 * concurrency-1), a pseudo-random number from the thread's own sequence, and
 * the first error of the thread (later ones are dropped). */
trellis_client_t *bench_ap_client(const bench_ap_worker_t *w);
int bench_ap_index(const bench_ap_worker_t *w);
uint64_t bench_ap_rand(bench_ap_worker_t *w);
void bench_ap_note_error(bench_ap_worker_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* BENCH_AP_H */
