/*
 * bench_scale: trellis-bench --mode scale, the cost of trellisd as its
 * store grows (issue 19, "Cost as work grows"), on either store:
 *
 *   1. Query (by gid) and List (one page of the default size: no filter,
 *      status FAILED, status SUBMITTED) latencies, p50 and p99 over many
 *      calls, on a small store (seed transactions: enough that every page
 *      measured is full);
 *   2. the store filled to --scale-finished finished transactions
 *      (bench_fill: through the store's own write API, trellisd stopped);
 *   3. the same latencies again, and their ratios to step 1's;
 *   4. retention: trellisd restarted with every loaded transaction past
 *      --retention-s while a saga2 load runs; finished transactions deleted
 *      per second (trellis_store_purged_total) against sagas created per
 *      second, in the same window;
 *   5. recovery: --scale-unfinished unfinished sagas loaded (their first
 *      step the participant's Hold, which answers ONGOING), trellisd
 *      started to drive them, killed (SIGKILL) and started again: seconds
 *      from the restart to its ready line (everything loaded), and until
 *      every one of them has been called again.
 *
 * It ends with a RESULT line. Speed goals are in the output only.
 * Threads: the main thread only.
 */
#ifndef BENCH_SCALE_H
#define BENCH_SCALE_H

#include <stdint.h>

#include "bench_env.h"

typedef struct {
    const char *store; /* "sqlite" or "mysql" */
    uint64_t finished, unfinished;
    int calls; /* latency samples per figure */
    /* the saga2 load of the retention step */
    int concurrency, channels, client_threads;
    double duration_s, warmup_s;
} bench_scale_opts_t;

void bench_scale_defaults(bench_scale_opts_t *o);

/* A --scale-* flag into o: 1 when k is one (*rc 0, or -1 after a
 * message), else 0. */
int bench_scale_opt(bench_scale_opts_t *o, const char *k, const char *v,
                    int *rc);

/* Run the mode: starts (with eo, whose tm_args it sets) and stops its
 * own processes. Returns the process exit code. */
int bench_scale_main(const bench_scale_opts_t *o, bench_env_opts_t *eo);

#endif /* BENCH_SCALE_H */
