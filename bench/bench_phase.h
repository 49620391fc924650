/*
 * bench_phase: one measured phase of trellis-bench - the CPU readings at
 * the edges of the counting window, the phase's line and where the CPU
 * went - for the loads whose transactions involve the workload's own
 * services (tcc2, xa2, hybrid3, wf2, msg2): bench_ap's threads or
 * bench_async's callbacks.
 *
 * Threads: from the main thread only (it sleeps until the window's edges
 * while the load runs on its own threads).
 */
#ifndef BENCH_PHASE_H
#define BENCH_PHASE_H

#include "bench_ap.h"
#include "bench_ap_env.h"
#include "bench_async.h"
#include "bench_env.h"
#include "bench_load.h"

/* More CPU than this used by other processes during a phase gets a warning:
 * the figures then say more about the neighbours than about Trellis. */
#define BENCH_OTHERS_WARN_CORES 0.25

typedef struct {
    bench_load_result_t r;
    bench_cpu_snap_t a, b; /* at the window's edges */
} bench_phase_t;

/* What a phase prints: the phase line's name and unit, the op of the
 * per-op CPU figures, and who the services are (NULL: MariaDB only). */
typedef struct {
    const char *name, *unit, *op, *svcs;
} bench_labels_t;

/* The warning when processes that are not part of the run used more
 * than BENCH_OTHERS_WARN_CORES during a phase. */
void bench_phase_warn(double others);

/* The phase's line and where the CPU went; returns the "others" cores
 * (bench_env_print_cpu) without judging them. */
double bench_phase_print_cpu(const bench_env_t *env, const char *name,
                             const char *unit, const bench_phase_t *p,
                             const char *op, int threads);

/* A timed run of bench_ap's threads (spec), CPU read at the window's
 * edges, with svcs' CPU too (NULL when the services are this process).
 * 0, or -1 after printing why. */
int bench_phase_ap(const bench_env_t *env, const bench_ap_spec_t *spec,
                   const bench_ap_env_t *svcs, const bench_labels_t *lb,
                   bench_phase_t *p);

/* The same for bench_async's load. */
int bench_phase_async(const bench_env_t *env, const bench_async_spec_t *spec,
                      const bench_ap_env_t *svcs, const bench_labels_t *lb,
                      bench_phase_t *p);

#endif /* BENCH_PHASE_H */
