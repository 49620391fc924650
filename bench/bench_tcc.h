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
 * The load: `concurrency` threads, each running one transfer after the
 * other with the blocking SDK calls. Like bench_load, a run lasts warmup_s
 * + duration_s and counts only transfers that end inside the window.
 *
 * Threads: bench_tcc_env_start/stop only from the main thread (the harness
 * is not thread-safe); a run starts its own threads.
 */
#ifndef BENCH_TCC_H
#define BENCH_TCC_H

#include <stdint.h>

#include "bench_load.h"

typedef struct harness harness_t;
typedef struct harness_server harness_server_t;
typedef struct harness_mariadb harness_mariadb_t;

typedef struct {
    harness_mariadb_t *db;
    harness_server_t *bank[2];
    char bank_addr[2][128];
    int bank_pid[2], db_pid; /* db_pid 0 when unknown */
    int accounts;            /* per bank */
} bench_tcc_env_t;

/* Start MariaDB (with innodb_flush_log_at_trx_commit = db_flush) and the
 * two banks in h's scratch dir (bank-service with --threads bank_threads
 * --quiet) and seed `accounts` accounts per bank. Returns 0, or -1 after
 * printing why. They are stopped with h. */
int bench_tcc_env_start(bench_tcc_env_t *t, harness_t *h, int bank_threads,
                        int accounts, int db_flush);

typedef struct {
    const char *tm_addr;
    const bench_tcc_env_t *env;
    int concurrency;
    double warmup_s, duration_s;
    uint32_t call_timeout_ms; /* 0: 30 s */
} bench_tcc_spec_t;

typedef struct bench_tcc_load bench_tcc_load_t;

/* Start the run's threads; NULL with err. */
bench_tcc_load_t *bench_tcc_start(const bench_tcc_spec_t *spec, char *err,
                                  size_t errlen);
int64_t bench_tcc_window_start_ns(const bench_tcc_load_t *l);
int64_t bench_tcc_window_end_ns(const bench_tcc_load_t *l);
/* Wait for the threads, fill *out (rate = transfers/s), release. */
void bench_tcc_finish(bench_tcc_load_t *l, bench_load_result_t *out);

/* CPU seconds so far of the banks and MariaDB (-1 when unknown). */
typedef struct {
    double bank[2], db;
} bench_tcc_cpu_t;

void bench_tcc_snap(const bench_tcc_env_t *t, bench_tcc_cpu_t *s);
/* Print the banks' and MariaDB's cores and us per transfer between a and
 * b, over secs seconds and n_ops transfers. Returns the cores they used. */
double bench_tcc_print_cpu(const bench_tcc_cpu_t *a, const bench_tcc_cpu_t *b,
                           double secs, uint64_t n_ops);

#endif /* BENCH_TCC_H */
