/*
 * bench_env: the processes a trellis-bench run talks to - trellisd (started
 * here with a fresh data dir in a scratch directory under the build tree,
 * or an already running one given by address; on the MySQL store one or
 * two nodes sharing one database on a MariaDB of the harness) and the
 * no-op participant trellis-bench-part (always started here) - and the CPU
 * and memory readings taken of them.
 *
 * Processes are started and stopped through the test harness, so they run
 * in their own process groups, log to <scratch>/<name>.log and never
 * outlive the bench. Threads: bench_env_start/stop only from the main
 * thread (the harness is not thread-safe); readings from any thread.
 */
#ifndef BENCH_ENV_H
#define BENCH_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "bench_sys.h"

typedef struct {
    const char *tm;        /* "host:port" of a running trellisd, or NULL */
    int tm_pid;            /* its pid when known (RSS, CPU), else 0 */
    int tm_threads;        /* trellisd --threads; 0: its default */
    const char *part_impl; /* "core" or "sdk" */
    int part_threads;
    int nodes; /* trellisd processes: 1, or 2 with TRELLIS_TEST_STORE=mysql
                  (the second on the first one's database); 0: 1 */
    /* More trellisd flags for every node started here (NULL-terminated,
     * at most 6; NULL: none), after the harness's own, so they win. A
     * --config file among them is read again at each restart: a run can
     * change settings between restarts by rewriting it (mode scale). */
    const char *const *tm_args;
} bench_env_opts_t;

#define BENCH_MAX_NODES 2

typedef struct harness harness_t;
typedef struct harness_server harness_server_t;

/* tm_addr is every node's address, comma-separated (what bench_conns_open
 * and bench_ap take); node_addr[i] and tm_pid[i] are node i's. */
typedef struct {
    harness_t *h;
    harness_server_t *tm_srv[BENCH_MAX_NODES], *part_srv; /* NULL when not
                                                             started here */
    int n_nodes;
    char tm_addr[BENCH_MAX_NODES * 128], part_addr[128];
    char node_addr[BENCH_MAX_NODES][128];
    int tm_pid[BENCH_MAX_NODES], part_pid; /* 0 when unknown */
    int store_pid; /* mariadbd of the MySQL store; 0 when none or unknown */
} bench_env_t;

/* The path of program `leaf` next to this binary into buf[len], unless
 * the environment variable env_var (may be NULL) names another: how the
 * participant and tcc2's and xa2's services are found. */
void bench_env_binary(const char *env_var, const char *leaf, char *buf,
                      size_t len);

/* An installed trellis-bench (not in the build tree's bin/) runs the
 * trellisd installed beside it (TRELLIS_TRELLISD) and keeps its scratch
 * under ${TMPDIR:-/tmp}/trellis-bench-<uid> (TRELLIS_BUILD_DIR); either
 * variable, when already set, wins. In the build tree, changes nothing.
 * Call first in main, before any process is started. */
void bench_env_locate(void);

/* Start what is needed. Returns 0, or -1 after printing why (anything
 * started is stopped again). */
int bench_env_start(bench_env_t *e, const bench_env_opts_t *o);

/* Stop what was started; the scratch directory is removed when passed,
 * kept (with the logs) otherwise. */
void bench_env_stop(bench_env_t *e, int passed);

/* Read a pid from the file <scratch>/leaf of h; 0 when there is none. */
int bench_env_pid_file(harness_t *h, const char *leaf);

/* The participant's call counters (action, compensate, hold, echo) via
 * its Stats method. Returns 0, or -1. */
int bench_env_part_stats(const bench_env_t *e, unsigned long long out[4]);

/* CPU readings at one instant. */
#define BENCH_MAX_THREADS 256
typedef struct {
    double client, part;               /* CPU seconds so far */
    double tm[BENCH_MAX_NODES], store; /* -1 when unknown or not running */
    uint64_t busy, total;              /* machine jiffies */
    size_t n_tm_threads[BENCH_MAX_NODES];
    bench_thread_cpu_t tm_threads[BENCH_MAX_NODES][BENCH_MAX_THREADS];
} bench_cpu_snap_t;

void bench_env_snap(const bench_env_t *e, bench_cpu_snap_t *s);

/* Print where the CPU went between a and b (cores used by the bench client,
 * the participant, each trellisd and the MySQL store's mariadbd, machine
 * busy share, CPU per op over n_ops operations, and each trellisd's busiest
 * threads when threads is non-zero). Returns the cores that other processes
 * on the machine used meanwhile. */
double bench_env_print_cpu(const bench_env_t *e, const bench_cpu_snap_t *a,
                           const bench_cpu_snap_t *b, uint64_t n_ops,
                           const char *op, int threads);

#endif /* BENCH_ENV_H */
