/*
 * bench_ap_env: the processes behind the tcc2 and xa2 workloads of
 * trellis-bench - one throwaway MariaDB and two participant services that
 * use it - and the CPU readings taken of them. Which services, with which
 * arguments and seed rows, is the workload's business (bench_tcc.c,
 * bench_xa.c); this module only starts, finds and reads them.
 *
 * Processes are started through the test harness and stop with it.
 * Threads: bench_ap_db_start and bench_ap_svc_start only from the main
 * thread (the harness is not thread-safe); readings from any thread.
 */
#ifndef BENCH_AP_ENV_H
#define BENCH_AP_ENV_H

#include <stddef.h>
#include <stdint.h>

typedef struct harness harness_t;
typedef struct harness_server harness_server_t;
typedef struct harness_mariadb harness_mariadb_t;

typedef struct {
    harness_mariadb_t *db;
    harness_server_t *svc[2];
    const char *svc_name[2]; /* the workload's static strings */
    char svc_addr[2][128];
    int svc_pid[2], db_pid; /* db_pid 0 when unknown */
} bench_ap_env_t;

/* Clear e, start MariaDB in h's scratch dir and set its
 * innodb_flush_log_at_trx_commit to db_flush. Returns 0, or -1. */
int bench_ap_db_start(bench_ap_env_t *e, harness_t *h, int db_flush);

/* Start service i (0 or 1) as `name` from bin with args (NULL-terminated)
 * and note its name, address and pid in e. name must outlive e. Returns 0,
 * or -1 (the harness has printed why). */
int bench_ap_svc_start(bench_ap_env_t *e, harness_t *h, int i, const char *name,
                       const char *bin, const char *const *args);

/* CPU seconds so far of the two services and MariaDB (-1 when unknown). */
typedef struct {
    double svc[2], db;
} bench_ap_cpu_t;

void bench_ap_snap(const bench_ap_env_t *e, bench_ap_cpu_t *s);

/* Print the services' and MariaDB's cores and us per op between a and b,
 * over secs seconds and n_ops ops ("cpu cores (us per <op>): ..."). Returns
 * the cores they used. */
double bench_ap_print_cpu(const bench_ap_env_t *e, const bench_ap_cpu_t *a,
                          const bench_ap_cpu_t *b, double secs, uint64_t n_ops,
                          const char *op);

#endif /* BENCH_AP_ENV_H */
