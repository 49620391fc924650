/*
 * bench_xa: the xa2 workload of trellis-bench - 2-branch XA orders through
 * the asynchronous XA helper (trellis_async_xa_run) and the MySQL XA
 * adapter, against the order-service and stock-service processes of
 * examples/xa-order over one throwaway MariaDB; and the same orders
 * without a TM, the baseline.
 *
 * One order: Begin (wait_result), register and Prepare at order-service
 * (insert the order row), register and Prepare at stock-service (deduct 1
 * from a SKU drawn at random), Submit;
 * it counts as a success when the submit answers SUCCEEDED. That is 8 gRPC
 * calls: Begin, 2 x RegisterBranch, 2 x Prepare, Submit, and trellisd's
 * 2 x Commit; and per branch an XA transaction (XA START, barrier row and
 * SQL, XA END, XA PREPARE, then XA COMMIT). A prepared stock row stays
 * locked until its commit, so SKUs are spread (`skus`, each seeded with
 * stock no run can use up): with one SKU the orders would queue on its
 * row lock for a whole TM round trip each.
 *
 *
 * The baseline (bench_xa_direct) does the same business work from the same
 * client with no TM: Prepare at order-service, Prepare at stock-service,
 * then Commit at each, called directly with the metadata trellisd would
 * send; the services run both phases through the MySQL XA adapter as
 * under a TM: 4 gRPC calls and the same two XA transactions.
 *
 * The load is bench_async's (`concurrency` orders in flight, counted
 * inside the window; the same as tcc2's) with these ops and the
 * bench_xa_env_t as its user.
 *
 * Threads: bench_xa_env_start only from the main thread (the harness is
 * not thread-safe); the ops on the load's client threads.
 */
#ifndef BENCH_XA_H
#define BENCH_XA_H

#include <stdint.h>

#include "bench_ap_env.h"
#include "bench_async.h"

typedef struct {
    bench_ap_env_t ap; /* svc[0] order-service, svc[1] stock-service */
    int skus;
    char target[2][3][192]; /* [service][prepare, commit, rollback] */
} bench_xa_env_t;

/* Start MariaDB (innodb_flush_log_at_trx_commit = db_flush) and both
 * services in h's scratch dir (--threads svc_threads --quiet) and seed
 * `skus` SKUs. Returns 0, or -1 after printing why. They stop with h. */
int bench_xa_env_start(bench_xa_env_t *t, harness_t *h, int svc_threads,
                       int skus, int db_flush);

/* One order through trellisd, a bench_async_op_fn; env is the
 * bench_xa_env_t. Gids are made here ("x<pid>-<n>"), so an order costs no
 * NewGid call, and the gid is also the order's id (unique per run without
 * coordination). */
void bench_xa_order(bench_async_slot_t *s, uint64_t n, const void *env);

/* The same order without trellisd (gids "y<pid>-<n>"). */
void bench_xa_direct(bench_async_slot_t *s, uint64_t n, const void *env);

#endif /* BENCH_XA_H */
