/*
 * bench_scale: trellis-bench --mode scale (see bench_scale.h). Owns the
 * run's processes (through bench_env), the trellisd config file it
 * rewrites between restarts (retention off while latencies are measured,
 * on for the retention step; the metrics endpoint always), and the
 * figures it prints.
 *
 * Every figure is taken against trellisd over its public API (the SDK's
 * blocking Query and List, saga2's Submit), one call at a time for the
 * latencies so they time trellisd and its store, not a queue.
 */
#include "bench_scale.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_fill.h"
#include "bench_load.h"
#include "bench_phase.h"
#include "bench_saga.h"
#include "harness.h"
#include "trellis/trellis.h"

/* Finished transactions of the small store: enough that each page
 * measured is full there too (every 100th is FAILED, pages hold 100). */
#define SEED_MAX 10000
/* Loaded finished transactions were created this long ago, and the
 * retention step keeps RETENTION_S: all of them are due for deletion. */
#define OLD_MS (2LL * 86400 * 1000)
#define RETENTION_S 86400u
/* How long a start may take before the run gives up. */
#define READY_WAIT_MS 600000
/* trellisd's lease on the MySQL store: its default (tm_config.c). */
#define LEASE_MS_TEXT "10000"
/* Retry interval of the unfinished sagas: they stay parked. */
#define HOLD_RETRY_MS 600000u

enum { F_QUERY, F_LIST, F_LIST_FAILED, F_LIST_SUBMITTED, N_FIG };
static const char *const FIG_NAME[N_FIG] = {
    "query", "list", "list status=FAILED", "list status=SUBMITTED"};
static const trellis_trans_status_t FIG_STATUS[N_FIG] = {
    0, 0, TRELLIS_TRANS_FAILED, TRELLIS_TRANS_SUBMITTED};

typedef struct {
    double p50, p99;
} lat_t;

typedef struct {
    const bench_scale_opts_t *o;
    bench_env_t env;
    char config[PATH_MAX];
    bench_fill_spec_t done; /* the finished transactions ("f-<i>") */
    uint64_t stored;        /* how many of them are stored */
    uint64_t rng;
    lat_t small[N_FIG], big[N_FIG];
    double retention_dps, saga2_tps, recover_s, drive_s;
    int retention_ran_out;
} scale_t;

void bench_scale_defaults(bench_scale_opts_t *o)
{
    *o = (bench_scale_opts_t){.store = "sqlite",
                              .finished = 1000000,
                              .unfinished = 100000,
                              .calls = 2000,
                              .concurrency = 64,
                              .channels = 1,
                              .client_threads = 1,
                              .duration_s = 10,
                              .warmup_s = 1};
}

static int parse_count(const char *k, const char *v, double max, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || d < 0 || d > max) {
        fprintf(stderr,
                "trellis-bench: %s: \"%s\" is not a number from 0 "
                "to %g\n",
                k, v, max);
        return -1;
    }
    *out = d;
    return 0;
}

int bench_scale_opt(bench_scale_opts_t *o, const char *k, const char *v,
                    int *rc)
{
    double d = 0;
    if (strcmp(k, "--scale-finished") == 0) {
        if (!(*rc = parse_count(k, v, 1e9, &d)))
            o->finished = (uint64_t)d;
    } else if (strcmp(k, "--scale-unfinished") == 0) {
        if (!(*rc = parse_count(k, v, 1e8, &d)))
            o->unfinished = (uint64_t)d;
    } else if (strcmp(k, "--scale-calls") == 0) {
        if (!(*rc = parse_count(k, v, 1e7, &d)))
            o->calls = d >= 1 ? (int)d : 1;
    } else {
        return 0;
    }
    return 1;
}

/* ---- trellisd: config, stop, restart ---------------------------------- */

static int write_config(const scale_t *sc, unsigned retention_s)
{
    FILE *f = fopen(sc->config, "w");
    if (!f) {
        perror("trellis-bench: scale config");
        return -1;
    }
    fprintf(f,
            "# written by trellis-bench --mode scale\n"
            "retention-s = %u\nmetrics-listen = 127.0.0.1:0\n",
            retention_s);
    return fclose(f) == 0 ? 0 : -1;
}

static harness_proc_t *tm_proc(scale_t *sc)
{
    return harness_server_proc(sc->env.tm_srv[0]);
}

/* Start the stopped (or killed) trellisd again; *secs (may be NULL): from
 * the start to its port file, written just before the ready line. */
static int restart_tm(scale_t *sc, double *secs)
{
    int64_t t0 = bench_mono_ns();
    if (harness_server_restart_within(sc->env.tm_srv[0], READY_WAIT_MS) != 0)
        return -1;
    if (secs)
        *secs = (double)(bench_mono_ns() - t0) / 1e9;
    sc->env.tm_pid[0] = harness_proc_pid(tm_proc(sc));
    return 0;
}

/* The store trellisd uses, for bench_fill (retention off: the loader
 * deletes nothing). db[len] holds the MySQL database's name. */
static void store_config(scale_t *sc, tm_store_config_t *c, char *db,
                         size_t len)
{
    tm_store_config_default(c);
    c->retention_ms = 0;
    if (strcmp(sc->o->store, "mysql") == 0) {
        c->kind = TM_STORE_MYSQL;
        c->mysql_socket =
            harness_mariadb_socket(harness_tm_store_db(sc->env.h));
        c->mysql_database =
            harness_tm_store_database(sc->env.h, "trellisd", db, len);
        c->node_id = "trellisd"; /* the harness's node id of "trellisd" */
        c->lease_ms = (uint32_t)atoi(LEASE_MS_TEXT);
    } else {
        c->data_dir = harness_server_data_dir(sc->env.tm_srv[0]);
    }
}

/* Stop trellisd, write spec's transactions, start it again. */
static int fill_stopped(scale_t *sc, const bench_fill_spec_t *spec,
                        const char *what, double *up_s)
{
    if (spec->n == 0)
        return 0;
    harness_proc_stop(tm_proc(sc), 30000);
    tm_store_config_t c;
    char db[128], err[512];
    store_config(sc, &c, db, sizeof(db));
    int64_t t0 = bench_mono_ns();
    if (bench_fill(&c, spec, err, sizeof(err)) != 0) {
        fprintf(stderr, "trellis-bench: filling the store: %s\n", err);
        return -1;
    }
    double s = (double)(bench_mono_ns() - t0) / 1e9;
    printf("fill   %llu %s transactions written in %.1f s (%.0f/s)\n",
           (unsigned long long)spec->n, what, s, (double)spec->n / s);
    double up;
    if (restart_tm(sc, &up) != 0)
        return -1;
    printf("       trellisd started again: ready after %.2f s\n", up);
    if (up_s)
        *up_s = up;
    fflush(stdout);
    return 0;
}

/* ---- Query and List latencies ----------------------------------------- */

static uint64_t next_rand(scale_t *sc)
{
    sc->rng ^= sc->rng << 13;
    sc->rng ^= sc->rng >> 7;
    sc->rng ^= sc->rng << 17;
    return sc->rng;
}

/* One call of figure fig. Returns 0, or -1 with err. */
static int one_call(scale_t *sc, trellis_client_t *c, int fig, char *err,
                    size_t errlen)
{
    trellis_rc_t rc;
    if (fig == F_QUERY) {
        char gid[TM_GID_MAX + 1];
        bench_fill_gid(&sc->done, next_rand(sc) % sc->stored, gid, sizeof(gid));
        trellis_trans_info_t *t = NULL;
        rc = trellis_query(c, gid, &t, err, errlen);
        trellis_trans_info_free(t);
    } else {
        trellis_list_filter_t f = {.status = FIG_STATUS[fig]};
        trellis_list_page_t *p = NULL;
        rc = trellis_list(c, &f, &p, err, errlen);
        trellis_list_page_free(p);
    }
    return rc == TRELLIS_OK ? 0 : -1;
}

/* p50 and p99 of o->calls calls of figure fig (after a few untimed). */
static int time_figure(scale_t *sc, trellis_client_t *c, int fig, uint32_t *lat,
                       lat_t *out)
{
    char err[512];
    int n = sc->o->calls;
    for (int i = -20; i < n; i++) {
        int64_t t0 = bench_mono_ns();
        if (one_call(sc, c, fig, err, sizeof(err)) != 0) {
            fprintf(stderr, "trellis-bench: %s: %s\n", FIG_NAME[fig], err);
            return -1;
        }
        if (i >= 0)
            lat[i] = (uint32_t)((bench_mono_ns() - t0) / 1000);
    }
    bench_load_result_t r;
    bench_load_latencies(lat, (size_t)n, &r);
    out->p50 = r.p50_ms;
    out->p99 = r.p99_ms;
    return 0;
}

/* Every figure into out[], with where the CPU went meanwhile. */
static int measure(scale_t *sc, const char *label, lat_t out[N_FIG],
                   const lat_t *base)
{
    trellis_client_t *c;
    char err[512];
    if (trellis_client_new(sc->env.tm_addr, 30000, &c, err, sizeof(err)) !=
        TRELLIS_OK) {
        fprintf(stderr, "trellis-bench: %s\n", err);
        return -1;
    }
    uint32_t *lat = malloc((size_t)sc->o->calls * sizeof(*lat));
    bench_cpu_snap_t a, b;
    bench_env_snap(&sc->env, &a);
    int rc = lat ? 0 : -1;
    printf("%-6s with %llu finished transactions stored, %d calls each, "
           "one at a time:\n",
           label, (unsigned long long)sc->stored, sc->o->calls);
    for (int f = 0; rc == 0 && f < N_FIG; f++) {
        rc = time_figure(sc, c, f, lat, &out[f]);
        if (rc == 0 && base)
            printf("       %-22s p50 %7.3f ms  p99 %7.3f ms   x%.2f p50, "
                   "x%.2f p99\n",
                   FIG_NAME[f], out[f].p50, out[f].p99,
                   out[f].p50 / base[f].p50, out[f].p99 / base[f].p99);
        else if (rc == 0)
            printf("       %-22s p50 %7.3f ms  p99 %7.3f ms\n", FIG_NAME[f],
                   out[f].p50, out[f].p99);
    }
    bench_env_snap(&sc->env, &b);
    if (rc == 0)
        bench_env_print_cpu(&sc->env, &a, &b, (uint64_t)sc->o->calls * N_FIG,
                            "call", 0);
    fflush(stdout);
    free(lat);
    trellis_client_free(c);
    return rc;
}

/* ---- retention against saga2 ------------------------------------------ */

/* trellis_store_purged_total of the running trellisd, or -1. */
static double read_purged(scale_t *sc)
{
    int port = harness_ready_port(tm_proc(sc), "metrics");
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    char *body = NULL;
    double v = -1;
    if (port > 0 &&
        harness_http(port, req, sizeof(req) - 1, NULL, &body) == 200) {
        const char *at = strstr(body, "\ntrellis_store_purged_total ");
        if (at)
            v = strtod(at + strlen("\ntrellis_store_purged_total "), NULL);
    }
    free(body);
    return v;
}

static int run_retention(scale_t *sc)
{
    const bench_scale_opts_t *o = sc->o;
    double up;
    harness_proc_stop(tm_proc(sc), 30000);
    if (write_config(sc, RETENTION_S) != 0 || restart_tm(sc, &up) != 0)
        return -1;
    printf("retain trellisd restarted with --retention-s %u (every loaded "
           "transaction is older): ready after %.2f s\n",
           RETENTION_S, up);
    bench_saga_t saga;
    bench_saga_init(&saga, sc->env.part_addr, "r");
    bench_conns_t conns;
    if (bench_conns_open(&conns, sc->env.tm_addr, (size_t)o->channels,
                         BENCH_SUBMIT_METHOD) != 0)
        return -1;
    bench_load_spec_t spec = {.conns = &conns,
                              .concurrency = o->concurrency,
                              .cq_threads = o->client_threads,
                              .warmup_s = o->warmup_s,
                              .duration_s = o->duration_s,
                              .make_request = bench_saga_make,
                              .check_reply = bench_saga_check,
                              .user = &saga};
    char err[256];
    bench_load_t *l = bench_load_start(&spec, err, sizeof(err));
    if (!l) {
        fprintf(stderr, "trellis-bench: %s\n", err);
        bench_conns_close(&conns);
        return -1;
    }
    bench_phase_t p;
    bench_sleep_until_ns(bench_load_window_start_ns(l));
    bench_env_snap(&sc->env, &p.a);
    double d0 = read_purged(sc);
    bench_sleep_until_ns(bench_load_window_end_ns(l));
    double d1 = read_purged(sc);
    bench_env_snap(&sc->env, &p.b);
    bench_load_finish(l, &p.r);
    bench_conns_close(&conns);
    if (d0 < 0 || d1 < 0) {
        fprintf(stderr, "trellis-bench: no trellis_store_purged_total\n");
        return -1;
    }
    sc->saga2_tps = p.r.rate;
    sc->retention_dps = p.r.window_s > 0 ? (d1 - d0) / p.r.window_s : 0;
    sc->retention_ran_out = d1 >= (double)sc->stored;
    bench_phase_warn(
        bench_phase_print_cpu(&sc->env, "saga2", "sagas/s", &p, "saga", 1));
    printf("       retention deleted %.0f finished transactions/s in the "
           "same window (%.0f deleted since the start); ratio %.2f\n",
           sc->retention_dps, d1,
           sc->saga2_tps > 0 ? sc->retention_dps / sc->saga2_tps : 0);
    if (sc->retention_ran_out)
        printf("       (retention ran out of work: its rate is a lower "
               "bound)\n");
    return p.r.ok > 0 ? 0 : -1;
}

/* ---- recovery ---------------------------------------------------------- */

/* Wait until the participant has answered n Hold calls in all; returns
 * the seconds since t0 (ns), or -1 after READY_WAIT_MS. */
static double wait_holds(scale_t *sc, unsigned long long n, int64_t t0)
{
    unsigned long long c[4] = {0};
    while (bench_mono_ns() - t0 < (int64_t)READY_WAIT_MS * 1000000) {
        if (bench_env_part_stats(&sc->env, c) == 0 && c[2] >= n)
            return (double)(bench_mono_ns() - t0) / 1e9;
        bench_sleep_until_ns(bench_mono_ns() + 20000000);
    }
    fprintf(stderr, "trellis-bench: %llu of %llu Hold calls\n", c[2], n);
    return -1;
}

static int run_recovery(scale_t *sc)
{
    uint64_t n = sc->o->unfinished;
    if (!n)
        return 0;
    bench_saga_t saga;
    bench_saga_init(&saga, sc->env.part_addr, "u");
    bench_saga_hold(&saga, HOLD_RETRY_MS);
    bench_fill_spec_t u = {.gid_prefix = "u-",
                           .n = n,
                           .created_ms = harness_now_ms(),
                           .action = saga.action,
                           .compensate = saga.compensate,
                           .first_action = saga.first,
                           .retry_interval_ms = HOLD_RETRY_MS};
    unsigned long long c[4] = {0};
    double up;
    if (bench_env_part_stats(&sc->env, c) != 0 ||
        fill_stopped(sc, &u, "unfinished", &up) != 0)
        return -1;
    int64_t t0 = bench_mono_ns();
    double first = wait_holds(sc, c[2] + n, t0);
    if (first < 0)
        return -1;
    sc->drive_s = up + first;
    printf("recover after a clean stop with %llu unfinished (never called "
           "yet): ready after %.2f s, every one called %.2f s after the "
           "start\n",
           (unsigned long long)n, up, sc->drive_s);
    /* Now each has an attempt stored: after the crash they wait for their
     * retry interval, so only the start itself is timed. */
    if (harness_server_kill(sc->env.tm_srv[0]) != 0 ||
        restart_tm(sc, &sc->recover_s) != 0)
        return -1;
    printf("recover after SIGKILL with %llu unfinished: ready (every one "
           "loaded and resumed) after %.2f s\n",
           (unsigned long long)n, sc->recover_s);
    fflush(stdout);
    return 0;
}

/* ---- the run ----------------------------------------------------------- */

/* The largest p50 ratio (or p99 with p99) of the list figures. */
static double list_ratio(const scale_t *sc, int p99)
{
    double worst = 0;
    for (int f = F_LIST; f < N_FIG; f++) {
        double r = p99 ? sc->big[f].p99 / sc->small[f].p99
                       : sc->big[f].p50 / sc->small[f].p50;
        worst = r > worst ? r : worst;
    }
    return worst;
}

static void print_result(const scale_t *sc)
{
    const lat_t *s = sc->small, *b = sc->big;
    printf("RESULT mode=scale store=%s finished=%llu unfinished=%llu "
           "query_ratio=%.2f list_ratio=%.2f query_p99_ratio=%.2f "
           "list_p99_ratio=%.2f query_p50_ms=%.3f list_p50_ms=%.3f "
           "retention_dps=%.0f saga2_tps=%.0f retention_ratio=%.2f "
           "recover_s=%.2f drive_s=%.2f\n",
           sc->o->store, (unsigned long long)sc->stored,
           (unsigned long long)sc->o->unfinished,
           b[F_QUERY].p50 / s[F_QUERY].p50, list_ratio(sc, 0),
           b[F_QUERY].p99 / s[F_QUERY].p99, list_ratio(sc, 1), b[F_QUERY].p50,
           b[F_LIST].p50, sc->retention_dps, sc->saga2_tps,
           sc->saga2_tps > 0 ? sc->retention_dps / sc->saga2_tps : 0,
           sc->recover_s, sc->drive_s);
}

static int run_steps(scale_t *sc)
{
    const bench_scale_opts_t *o = sc->o;
    uint64_t seed = o->finished < SEED_MAX ? o->finished : SEED_MAX;
    sc->done = (bench_fill_spec_t){.gid_prefix = "f-",
                                   .n = seed,
                                   .finished = 1,
                                   .created_ms = harness_now_ms() - OLD_MS,
                                   .action = "127.0.0.1:1/trellis.bench.Noop/"
                                             "Action",
                                   .compensate = "127.0.0.1:1/trellis.bench."
                                                 "Noop/Compensate"};
    if (seed == 0) {
        fprintf(stderr, "trellis-bench: --scale-finished must be > 0\n");
        return -1;
    }
    if (fill_stopped(sc, &sc->done, "finished", NULL) != 0)
        return -1;
    sc->stored = seed;
    if (measure(sc, "small", sc->small, NULL) != 0)
        return -1;
    bench_fill_spec_t rest = sc->done;
    rest.first = seed;
    rest.n = o->finished - seed;
    if (fill_stopped(sc, &rest, "finished", NULL) != 0)
        return -1;
    sc->stored = o->finished;
    if (measure(sc, "large", sc->big, sc->small) != 0)
        return -1;
    return run_retention(sc) == 0 && run_recovery(sc) == 0 ? 0 : -1;
}

int bench_scale_main(const bench_scale_opts_t *o, bench_env_opts_t *eo)
{
    scale_t *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return 1;
    sc->o = o;
    sc->rng = 0x9e3779b97f4a7c15ull;
    const char *tmp = getenv("TMPDIR");
    snprintf(sc->config, sizeof(sc->config), "%s/trellis-scale-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(sc->config);
    if (fd < 0 || close(fd) != 0 || write_config(sc, 0) != 0) {
        perror("trellis-bench: scale config");
        free(sc);
        return 1;
    }
    /* MySQL: the default lease (the harness's 2 s is for tests): it is
     * what renewals of many unfinished transactions are measured with. */
    const char *args[] = {"--config", sc->config, "--lease-ms", LEASE_MS_TEXT,
                          NULL};
    eo->tm_args = args;
    int ok = bench_env_start(&sc->env, eo) == 0;
    if (ok) {
        printf("trellisd at %s on the %s store; participant at %s\n",
               sc->env.tm_addr, o->store, sc->env.part_addr);
        ok = run_steps(sc) == 0;
        if (ok)
            print_result(sc);
        bench_env_stop(&sc->env, ok);
    }
    unlink(sc->config);
    free(sc);
    return ok ? 0 : 1;
}
