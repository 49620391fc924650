/*
 * bench_xa: the xa2 workload of trellis-bench - 2-branch XA orders through
 * the XA helper (trellis_xa.h) and the MySQL XA adapter, against the
 * order-service and stock-service processes of examples/xa-order over one
 * throwaway MariaDB.
 *
 * One order: trellis_xa_begin (wait_result), call_branch Prepare at
 * order-service (insert the order row), call_branch Prepare at
 * stock-service (deduct 1 from a SKU drawn at random), trellis_xa_submit;
 * it counts as a success when the submit answers SUCCEEDED. That is 8 gRPC
 * calls: Begin, 2 x RegisterBranch, 2 x Prepare, Submit, and trellisd's
 * 2 x Commit; and per branch an XA transaction (XA START, barrier row and
 * SQL, XA END, XA PREPARE, then XA COMMIT). A prepared stock row stays
 * locked until its commit, so SKUs are spread (`skus`, each seeded with
 * stock no run can use up): with one SKU the orders would queue on its
 * row lock for a whole TM round trip each.
 *
 * The load: `concurrency` threads, each running one order after the other
 * with the blocking SDK calls (as bench_tcc; the loop is the same shape,
 * kept separate so each workload file reads on its own). A run lasts
 * warmup_s + duration_s and counts only orders that end inside the window.
 *
 * Threads: bench_xa_env_start only from the main thread (the harness is
 * not thread-safe); a run starts its own threads.
 */
#ifndef BENCH_XA_H
#define BENCH_XA_H

#include <stdint.h>

#include "bench_load.h"

typedef struct harness harness_t;
typedef struct harness_server harness_server_t;
typedef struct harness_mariadb harness_mariadb_t;

typedef struct {
    harness_mariadb_t *db;
    harness_server_t *svc[2]; /* order-service, stock-service */
    char svc_addr[2][128];
    int svc_pid[2], db_pid; /* db_pid 0 when unknown */
    int skus;
} bench_xa_env_t;

/* Start MariaDB (innodb_flush_log_at_trx_commit = db_flush) and both
 * services in h's scratch dir (--threads svc_threads --quiet) and seed
 * `skus` SKUs. Returns 0, or -1 after printing why. They stop with h. */
int bench_xa_env_start(bench_xa_env_t *t, harness_t *h, int svc_threads,
                       int skus, int db_flush);

typedef struct {
    const char *tm_addr;
    const bench_xa_env_t *env;
    int concurrency;
    double warmup_s, duration_s;
    uint32_t call_timeout_ms; /* 0: 30 s */
} bench_xa_spec_t;

typedef struct bench_xa_load bench_xa_load_t;

/* Start the run's threads; NULL with err. */
bench_xa_load_t *bench_xa_start(const bench_xa_spec_t *spec, char *err,
                                size_t errlen);
int64_t bench_xa_window_start_ns(const bench_xa_load_t *l);
int64_t bench_xa_window_end_ns(const bench_xa_load_t *l);
/* Wait for the threads, fill *out (rate = orders/s), release. */
void bench_xa_finish(bench_xa_load_t *l, bench_load_result_t *out);

/* CPU seconds so far of the services and MariaDB (-1 when unknown). */
typedef struct {
    double svc[2], db;
} bench_xa_cpu_t;

void bench_xa_snap(const bench_xa_env_t *t, bench_xa_cpu_t *s);
/* Print the services' and MariaDB's cores and us per order between a and
 * b, over secs seconds and n_ops orders. Returns the cores they used. */
double bench_xa_print_cpu(const bench_xa_cpu_t *a, const bench_xa_cpu_t *b,
                          double secs, uint64_t n_ops);

#endif /* BENCH_XA_H */
