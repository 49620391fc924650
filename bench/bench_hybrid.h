/*
 * bench_hybrid: the hybrid3 workload of trellis-bench - 3-branch hybrid
 * global transactions through the hybrid initiator (trellis_gtx.h), one
 * branch of each kind, against the services of examples/hybrid-order
 * (order-service, bank-service, shipping-service) over one throwaway
 * MariaDB.
 *
 * One transaction: trellis_gtx_begin (wait_result); call_xa Prepare at
 * order-service ("order=<gid> sku=book qty=1", the gid as the order id);
 * call_tcc TransTry at bank-service ("account=a<i> amount=-1", an account
 * drawn at random from `accounts`, each seeded with a balance no run can
 * spend); add_step Reserve at shipping-service ("order=<gid> carrier=C",
 * compensation Release), a saga step trellisd runs itself after submit;
 * trellis_gtx_submit. It counts as a success when the submit answers
 * SUCCEEDED. That is 9 gRPC calls: Begin, 2 x RegisterBranch, Prepare,
 * TransTry, Submit (carrying the step), and trellisd's Reserve, Commit and
 * TransConfirm; and 4 MariaDB transactions (the XA one, the try, the
 * confirm and the reserve, each with its barrier row).
 *
 * Shipping slots are never freed by a successful transaction, so the
 * carriers are seeded for more transactions than a run can make: thread t
 * takes its n-th slot from carrier k<t * blocks + n / SLOTS_PER_CARRIER>,
 * each with SLOTS_PER_CARRIER slots (Reserve scans a carrier's used slots,
 * so carriers stay small, and no two threads share one). blocks is set
 * from the run's length and a throughput bound far above what the box can
 * do (bench_hybrid.c); a thread that still ran out would fail visibly
 * ("carrier ... has no capacity").
 *
 * The load is bench_ap's (`concurrency` threads, one transaction after the
 * other, counted inside the window; the same as tcc2's and xa2's) with
 * bench_hybrid_txn as its op and the bench_hybrid_env_t as its user.
 *
 * Threads: bench_hybrid_env_start only from the main thread (the harness
 * is not thread-safe); bench_hybrid_txn from any load thread.
 */
#ifndef BENCH_HYBRID_H
#define BENCH_HYBRID_H

#include <stdint.h>

#include "bench_ap.h"
#include "bench_ap_env.h"

typedef struct {
    bench_ap_env_t ap; /* svc[0] order-, [1] bank-, [2] shipping-service */
    int accounts;
    int blocks;             /* carriers per load thread */
    uint64_t slots;         /* seeded in all */
    char target[3][3][192]; /* [service][forward, commit, rollback] */
} bench_hybrid_env_t;

/* Start MariaDB (innodb_flush_log_at_trx_commit = db_flush) and the three
 * services in h's scratch dir (--threads svc_threads --quiet), seed
 * `accounts` accounts and the shipping slots of `concurrency` threads
 * running for run_s seconds. Returns 0, or -1 after printing why. They
 * stop with h. */
int bench_hybrid_env_start(bench_hybrid_env_t *t, harness_t *h, int svc_threads,
                           int accounts, int concurrency, double run_s,
                           int db_flush);

/* One transaction, a bench_ap_op_fn; env is the bench_hybrid_env_t. Gids
 * are made here ("y<pid>-<thread>-<n>"), so a transaction costs no NewGid
 * call, and the gid is also the order id. */
int bench_hybrid_txn(bench_ap_worker_t *w, uint64_t n, const void *env);

#endif /* BENCH_HYBRID_H */
