/*
 * bench_phase: one measured phase of trellis-bench (see bench_phase.h):
 * sleep to the window's start, read every process's CPU, sleep to its
 * end, read again, then print the phase and where the CPU went. The load
 * itself (threads or callbacks) is bench_ap's or bench_async's.
 */
#include "bench_phase.h"

#include <stdio.h>

void bench_phase_warn(double others)
{
    if (others > BENCH_OTHERS_WARN_CORES)
        printf("       WARNING: other processes used %.2f cores meanwhile; "
               "these figures are disturbed\n",
               others);
    fflush(stdout);
}

double bench_phase_print_cpu(const bench_env_t *env, const char *name,
                             const char *unit, const bench_phase_t *p,
                             const char *op, int threads)
{
    const bench_load_result_t *r = &p->r;
    printf("%-6s %.0f %s  p50_ms=%.3f p99_ms=%.3f max_ms=%.3f  ok=%llu "
           "failed=%llu (window %.1fs)\n",
           name, r->rate, unit, r->p50_ms, r->p99_ms, r->max_ms,
           (unsigned long long)r->ok, (unsigned long long)r->failed,
           r->window_s);
    if (r->first_error[0])
        printf("       first failure: %s\n", r->first_error);
    return bench_env_print_cpu(env, &p->a, &p->b, r->ok, op, threads);
}

/* Readings at the window's edges [start, end) of every process. */
static void measure(const bench_env_t *env, const bench_ap_env_t *svcs,
                    int64_t start, int64_t end, bench_phase_t *p,
                    bench_ap_cpu_t *ca, bench_ap_cpu_t *cb)
{
    bench_sleep_until_ns(start);
    bench_env_snap(env, &p->a);
    if (svcs)
        bench_ap_snap(svcs, ca);
    bench_sleep_until_ns(end);
    bench_env_snap(env, &p->b);
    if (svcs)
        bench_ap_snap(svcs, cb);
}

/* The phase's lines; the services are part of the run, so only the rest
 * counts as disturbing it. */
static void report(const bench_env_t *env, const bench_ap_env_t *svcs,
                   const bench_labels_t *lb, const bench_phase_t *p,
                   const bench_ap_cpu_t *ca, const bench_ap_cpu_t *cb)
{
    double others =
        bench_phase_print_cpu(env, lb->name, lb->unit, p, lb->op, 1);
    if (!svcs) {
        bench_phase_warn(others);
        return;
    }
    double cores =
        bench_ap_print_cpu(svcs, ca, cb, p->r.window_s, p->r.ok, lb->op);
    if (lb->svcs)
        printf("       (%s and MariaDB are %.2f of the \"others\" "
               "cores above)\n",
               lb->svcs, cores);
    else
        printf("       (MariaDB is %.2f of the \"others\" cores above)\n",
               cores);
    bench_phase_warn(others - cores);
}

int bench_phase_ap(const bench_env_t *env, const bench_ap_spec_t *spec,
                   const bench_ap_env_t *svcs, const bench_labels_t *lb,
                   bench_phase_t *p)
{
    char err[256];
    bench_ap_cpu_t ca, cb;
    bench_ap_load_t *l = bench_ap_start(spec, err, sizeof(err));
    if (!l) {
        fprintf(stderr, "trellis-bench: %s\n", err);
        return -1;
    }
    measure(env, svcs, bench_ap_window_start_ns(l), bench_ap_window_end_ns(l),
            p, &ca, &cb);
    bench_ap_finish(l, &p->r);
    report(env, svcs, lb, p, &ca, &cb);
    return 0;
}

int bench_phase_async(const bench_env_t *env, const bench_async_spec_t *spec,
                      const bench_ap_env_t *svcs, const bench_labels_t *lb,
                      bench_phase_t *p)
{
    char err[256];
    bench_ap_cpu_t ca, cb;
    bench_async_load_t *l = bench_async_start(spec, err, sizeof(err));
    if (!l) {
        fprintf(stderr, "trellis-bench: %s\n", err);
        return -1;
    }
    measure(env, svcs, bench_async_window_start_ns(l),
            bench_async_window_end_ns(l), p, &ca, &cb);
    bench_async_finish(l, &p->r);
    report(env, svcs, lb, p, &ca, &cb);
    return 0;
}
