/*
 * bench_ap_env: the processes behind the tcc2, xa2 and hybrid3 workloads
 * of trellis-bench - one throwaway MariaDB and two (hybrid3: three)
 * participant services that use it - and the CPU readings taken of them. Which
 * services, with which arguments and seed rows, is the workload's business
 * (bench_tcc.c, bench_xa.c); this module only starts, finds and reads them.
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

#define BENCH_AP_MAX_SVC 3

/* Slots 0 .. BENCH_AP_MAX_SVC-1; a slot never started has svc_name NULL
 * and is left out of the readings. */
typedef struct {
    harness_mariadb_t *db;
    harness_server_t *svc[BENCH_AP_MAX_SVC];
    const char *svc_name[BENCH_AP_MAX_SVC]; /* the workload's static strings */
    char svc_addr[BENCH_AP_MAX_SVC][128];
    int svc_pid[BENCH_AP_MAX_SVC], db_pid; /* pids 0 when unknown */
} bench_ap_env_t;

/* Clear e, start MariaDB in h's scratch dir and set its
 * innodb_flush_log_at_trx_commit to db_flush. Returns 0, or -1. */
int bench_ap_db_start(bench_ap_env_t *e, harness_t *h, int db_flush);

/* Start service i (0 .. BENCH_AP_MAX_SVC-1) as `name` from bin with args
 * (NULL-terminated) and note its name, address and pid in e. name must outlive
 * e. Returns 0, or -1 (the harness has printed why). */
int bench_ap_svc_start(bench_ap_env_t *e, harness_t *h, int i, const char *name,
                       const char *bin, const char *const *args);

/* CPU seconds so far of the started services and MariaDB (-1 when
 * unknown or not started). */
typedef struct {
    double svc[BENCH_AP_MAX_SVC], db;
} bench_ap_cpu_t;

void bench_ap_snap(const bench_ap_env_t *e, bench_ap_cpu_t *s);

/* Print the services' and MariaDB's cores and us per op between a and b,
 * over secs seconds and n_ops ops ("cpu cores (us per <op>): ..."). Returns
 * the cores they used. */
double bench_ap_print_cpu(const bench_ap_env_t *e, const bench_ap_cpu_t *a,
                          const bench_ap_cpu_t *b, double secs, uint64_t n_ops,
                          const char *op);

#endif /* BENCH_AP_ENV_H */
