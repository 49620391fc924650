/*
 * bench_env: starting, reading and stopping trellisd and the participant
 * for trellis-bench (see bench_env.h).
 */
#include "bench_env.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "trellis.h"

void bench_env_binary(const char *env_var, const char *leaf, char *buf,
                      size_t len)
{
    const char *env = env_var ? getenv(env_var) : NULL;
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = 0;
    snprintf(buf, len, "%s/%s", dirname(self), leaf);
}

static int start_part(bench_env_t *e, const bench_env_opts_t *o)
{
    char bin[PATH_MAX], threads[16];
    /* trellis-bench-part, unless TRELLIS_BENCH_PART names another. */
    bench_env_binary("TRELLIS_BENCH_PART", "trellis-bench-part", bin,
                     sizeof(bin));
    snprintf(threads, sizeof(threads), "%d", o->part_threads);
    const char *args[] = {"--impl", o->part_impl, "--threads", threads, NULL};
    e->part_srv = harness_server_start(e->h, "part", bin, args);
    if (!e->part_srv)
        return -1;
    snprintf(e->part_addr, sizeof(e->part_addr), "%s",
             harness_server_addr(e->part_srv));
    e->part_pid = harness_proc_pid(harness_server_proc(e->part_srv));
    return 0;
}

static int start_tm(bench_env_t *e, const bench_env_opts_t *o)
{
    if (o->tm) {
        snprintf(e->tm_addr, sizeof(e->tm_addr), "%s", o->tm);
        e->tm_pid = o->tm_pid;
        return 0;
    }
    char threads[16];
    snprintf(threads, sizeof(threads), "%d", o->tm_threads);
    const char *args[] = {"--threads", threads, NULL};
    e->tm_srv =
        harness_tm_start(e->h, "trellisd", o->tm_threads > 0 ? args : NULL);
    if (!e->tm_srv)
        return -1;
    snprintf(e->tm_addr, sizeof(e->tm_addr), "%s",
             harness_server_addr(e->tm_srv));
    e->tm_pid = harness_proc_pid(harness_server_proc(e->tm_srv));
    return 0;
}

int bench_env_start(bench_env_t *e, const bench_env_opts_t *o)
{
    memset(e, 0, sizeof(*e));
    e->h = harness_new("bench");
    if (!e->h)
        return -1;
    if (start_part(e, o) != 0 || start_tm(e, o) != 0) {
        bench_env_stop(e, 0);
        return -1;
    }
    return 0;
}

void bench_env_stop(bench_env_t *e, int passed)
{
    if (e->h)
        harness_free(e->h, passed);
    memset(e, 0, sizeof(*e));
}

int bench_env_part_stats(const bench_env_t *e, unsigned long long out[4])
{
    uint8_t *reply = NULL;
    size_t len = 0;
    char err[256];
    if (trellis_call_unary(e->part_addr, "/trellis.bench.Noop/Stats", "", 0,
                           NULL, NULL, 0, 5000, &reply, &len, err,
                           sizeof(err)) != TRELLIS_OK)
        return -1;
    char text[256];
    snprintf(text, sizeof(text), "%.*s", (int)len, reply ? (char *)reply : "");
    free(reply);
    int n = sscanf(text, "action=%llu compensate=%llu hold=%llu echo=%llu",
                   &out[0], &out[1], &out[2], &out[3]);
    return n == 4 ? 0 : -1;
}

void bench_env_snap(const bench_env_t *e, bench_cpu_snap_t *s)
{
    memset(s, 0, sizeof(*s));
    s->client = bench_sys_cpu_s(0);
    s->part = e->part_pid > 0 ? bench_sys_cpu_s(e->part_pid) : -1;
    s->tm = e->tm_pid > 0 ? bench_sys_cpu_s(e->tm_pid) : -1;
    bench_sys_machine_ticks(&s->busy, &s->total);
    if (e->tm_pid > 0)
        s->n_tm_threads =
            bench_sys_threads(e->tm_pid, s->tm_threads, BENCH_MAX_THREADS);
}

static const bench_thread_cpu_t *thread_before(const bench_cpu_snap_t *a,
                                               int tid)
{
    for (size_t i = 0; i < a->n_tm_threads; i++)
        if (a->tm_threads[i].tid == tid)
            return &a->tm_threads[i];
    return NULL;
}

static int by_cpu_desc(const void *x, const void *y)
{
    double a = ((const bench_thread_cpu_t *)x)->cpu_s;
    double b = ((const bench_thread_cpu_t *)y)->cpu_s;
    return (a < b) - (a > b);
}

/* trellisd's threads that used CPU between a and b, busiest first. */
static void print_threads(const bench_cpu_snap_t *a, const bench_cpu_snap_t *b,
                          double secs)
{
    bench_thread_cpu_t d[BENCH_MAX_THREADS];
    size_t n = 0;
    for (size_t i = 0; i < b->n_tm_threads; i++) {
        const bench_thread_cpu_t *was = thread_before(a, b->tm_threads[i].tid);
        d[n] = b->tm_threads[i];
        d[n].cpu_s -= was ? was->cpu_s : 0;
        d[n].wait_s -= was ? was->wait_s : 0;
        n += d[n].cpu_s > 0;
    }
    qsort(d, n, sizeof(d[0]), by_cpu_desc);
    printf("       trellisd threads (share of the window on CPU + waiting "
           "for a CPU):\n       ");
    for (size_t i = 0; i < n && i < 6; i++)
        printf(" %s/%d=%.2f+%.2f", d[i].comm, d[i].tid, d[i].cpu_s / secs,
               d[i].wait_s / secs);
    printf("%s\n", n ? "" : " (none used CPU)");
}

/* "name=X.XX cores (N us/op)" for one process, or "n/a". */
static void print_proc(const char *name, double a, double b, double secs,
                       uint64_t n_ops)
{
    if (a < 0 || b < 0) {
        printf(" %s=n/a", name);
        return;
    }
    double cpu = b - a;
    printf(" %s=%.2f", name, cpu / secs);
    if (n_ops)
        printf("(%.0fus)", cpu * 1e6 / (double)n_ops);
}

double bench_env_print_cpu(const bench_cpu_snap_t *a, const bench_cpu_snap_t *b,
                           uint64_t n_ops, const char *op, int threads)
{
    uint64_t ticks = b->total - a->total;
    long hz = sysconf(_SC_CLK_TCK);
    int ncpu = bench_sys_nproc();
    double secs = ticks ? (double)ticks / (double)hz / ncpu : 1;
    printf("       cpu cores (us per %s):", op);
    print_proc("client", a->client, b->client, secs, n_ops);
    print_proc("participant", a->part, b->part, secs, n_ops);
    print_proc("trellisd", a->tm, b->tm, secs, n_ops);
    /* What the machine was busy with beyond these three processes: other
     * load on the box makes the figures of this run suspect. */
    double busy = (double)(b->busy - a->busy) / (double)hz / secs;
    double ours = (b->client - a->client) + (b->part - a->part) +
                  (b->tm >= 0 ? b->tm - a->tm : 0);
    printf(" others=%.2f machine_busy=%.0f%%\n", busy - ours / secs,
           ticks ? 100.0 * (double)(b->busy - a->busy) / (double)ticks : 0);
    if (threads && b->n_tm_threads)
        print_threads(a, b, secs);
    return busy - ours / secs;
}
