/*
 * bench_tcc: the tcc2 workload of trellis-bench - 2-branch bank transfers
 * through the asynchronous TCC helper (trellis_async_tcc_run) and the
 * branch barrier, against two bank-service processes
 * (examples/bank-transfer-tcc) over one throwaway MariaDB; and the same
 * transfers without a TM, the baseline.
 *
 * One transfer: Begin (wait_result), register and TransTry at bank-a
 * (amount -1, with its confirm and cancel), register and TransTry at
 * bank-b (+1), Submit; it counts as a success when the submit answers
 * SUCCEEDED. That is 8 gRPC calls: Begin, 2 x RegisterBranch,
 * 2 x TransTry, Submit, and trellisd's 2 x TransConfirm; and 4 MariaDB
 * transactions (each with its barrier row). Accounts are drawn at random
 * from `accounts` per bank, each seeded with a balance no run can spend.
 *
 *
 * The baseline (bench_tcc_direct) does the same business work from the
 * same client with no TM: TransTry at bank-a, TransTry at bank-b, then
 * TransConfirm at each, called directly with the metadata trellisd would
 * send (so each op still runs behind its barrier): 4 gRPC calls and the
 * same 4 MariaDB transactions.
 *
 * The load is bench_async's (`concurrency` transfers in flight, counted
 * inside the window) with these ops and the bench_tcc_env_t as its user.
 *
 * Threads: bench_tcc_env_start only from the main thread (the harness is
 * not thread-safe); the ops on the load's client threads.
 */
#ifndef BENCH_TCC_H
#define BENCH_TCC_H

#include <stdint.h>

#include "bench_ap_env.h"
#include "bench_async.h"

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

/* One transfer through trellisd, a bench_async_op_fn; env is the
 * bench_tcc_env_t. Gids are made here ("c<pid>-<n>"), so a transfer costs
 * no NewGid call. */
void bench_tcc_transfer(bench_async_slot_t *s, uint64_t n, const void *env);

/* The same transfer without trellisd (gids "d<pid>-<n>"). */
void bench_tcc_direct(bench_async_slot_t *s, uint64_t n, const void *env);

#endif /* BENCH_TCC_H */
