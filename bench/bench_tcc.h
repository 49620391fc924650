/*
 * bench_tcc: the tcc2 workload of trellis-bench - 2-branch bank transfers
 * through the TCC helper (trellis_tcc.h) and the branch barrier, against
 * two bank-service processes (examples/bank-transfer-tcc) over one
 * throwaway MariaDB.
 *
 * One transfer: trellis_tcc_begin (wait_result), call_branch TransTry at
 * bank-a (amount -1, with its confirm and cancel), call_branch TransTry at
 * bank-b (+1), trellis_tcc_submit; it counts as a success when the submit
 * answers SUCCEEDED. That is 8 gRPC calls: Begin, 2 x RegisterBranch,
 * 2 x TransTry, Submit, and trellisd's 2 x TransConfirm; and 4 MariaDB
 * transactions (each with its barrier row). Accounts are drawn at random
 * from `accounts` per bank, each seeded with a balance no run can spend.
 *
 * The load is bench_ap's (`concurrency` threads, one transfer after the
 * other, counted inside the window) with bench_tcc_transfer as its op and
 * the bench_tcc_env_t as its user.
 *
 * Threads: bench_tcc_env_start only from the main thread (the harness is
 * not thread-safe); bench_tcc_transfer from any load thread.
 */
#ifndef BENCH_TCC_H
#define BENCH_TCC_H

#include <stdint.h>

#include "bench_ap.h"
#include "bench_ap_env.h"

typedef struct {
    bench_ap_env_t ap;      /* svc[0] bank-a, svc[1] bank-b */
    int accounts;           /* per bank */
    char target[2][3][192]; /* [bank][try, confirm, cancel] */
} bench_tcc_env_t;

/* Start MariaDB (with innodb_flush_log_at_trx_commit = db_flush) and the
 * two banks in h's scratch dir (bank-service with --threads bank_threads
 * --quiet) and seed `accounts` accounts per bank. Returns 0, or -1 after
 * printing why. They are stopped with h. */
int bench_tcc_env_start(bench_tcc_env_t *t, harness_t *h, int bank_threads,
                        int accounts, int db_flush);

/* One transfer, a bench_ap_op_fn; env is the bench_tcc_env_t. Gids are
 * made here ("c<pid>-<thread>-<n>"), so a transfer costs no NewGid call. */
int bench_tcc_transfer(bench_ap_worker_t *w, uint64_t n, const void *env);

#endif /* BENCH_TCC_H */
