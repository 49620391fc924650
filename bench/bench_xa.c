/*
 * bench_xa: the xa2 workload (see bench_xa.h).
 *
 * Each load thread owns its counters and its latency array; nothing is
 * shared on the hot path but the (thread-safe) trellis client and the
 * SDK's cached channels to the services. Gids are made here
 * ("x<pid>-<thread>-<n>"), so an order costs no NewGid call, and the gid is
 * also the order's id (unique per run without coordination).
 */
#include "bench_xa.h"

#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_sys.h"
#include "harness.h"
#include "trellis.h"
#include "trellis_xa.h"

#define DEFAULT_TIMEOUT_MS 30000
#define SEED_STOCK "1000000000000"

/* ---- processes -------------------------------------------------------- */

static const char *const SVC_NAME[2] = {"order-service", "stock-service"};
static const char *const SVC_GRPC[2] = {"xaorder.v1.Order", "xaorder.v1.Stock"};
static const char *const SVC_DB[2] = {"xa_orders", "xa_stock"};

/* The service binary next to this one. */
static void svc_binary(int i, char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = 0;
    snprintf(buf, len, "%s/%s", dirname(self), SVC_NAME[i]);
}

static int read_pid_file(harness_t *h, const char *leaf)
{
    char path[PATH_MAX];
    int pid = 0;
    FILE *f =
        harness_path(h, leaf, path, sizeof(path)) ? fopen(path, "r") : NULL;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

static int start_svc(bench_xa_env_t *t, harness_t *h, int i,
                     const char *threads)
{
    char bin[PATH_MAX];
    svc_binary(i, bin, sizeof(bin));
    const char *args[] = {"--database",     SVC_DB[i],
                          "--mysql-socket", harness_mariadb_socket(t->db),
                          "--threads",      threads,
                          "--quiet",        NULL};
    t->svc[i] = harness_server_start(h, SVC_NAME[i], bin, args);
    if (!t->svc[i])
        return -1;
    snprintf(t->svc_addr[i], sizeof(t->svc_addr[i]), "%s",
             harness_server_addr(t->svc[i]));
    t->svc_pid[i] = harness_proc_pid(harness_server_proc(t->svc[i]));
    return 0;
}

/* SKUs s0..s<n-1> in one statement (the sequence engine makes the rows). */
static int seed_skus(bench_xa_env_t *t)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO xa_stock.stock (sku, qty) SELECT CONCAT('s', "
             "seq), " SEED_STOCK
             " FROM xa_stock.seq_0_to_%d ON DUPLICATE KEY UPDATE "
             "qty = VALUES(qty)",
             t->skus - 1);
    if (harness_mariadb_exec(t->db, sql) != 0) {
        fprintf(stderr, "trellis-bench: seeding xa_stock failed\n");
        return -1;
    }
    return 0;
}

int bench_xa_env_start(bench_xa_env_t *t, harness_t *h, int svc_threads,
                       int skus, int db_flush)
{
    char threads[16], sql[96];
    memset(t, 0, sizeof(*t));
    t->skus = skus;
    snprintf(threads, sizeof(threads), "%d", svc_threads);
    if (!(t->db = harness_mariadb_start(h, "mariadb")))
        return -1;
    t->db_pid = read_pid_file(h, "mariadb.mariadb/mysqld.pid");
    snprintf(sql, sizeof(sql), "SET GLOBAL innodb_flush_log_at_trx_commit = %d",
             db_flush);
    if (harness_mariadb_exec(t->db, sql) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (start_svc(t, h, i, threads) != 0)
            return -1;
    return seed_skus(t);
}

/* ---- the load --------------------------------------------------------- */

typedef struct {
    bench_xa_load_t *load;
    int index;
    pthread_t thread;
    uint64_t rng;
    uint32_t *lat_us;
    size_t n_lat, cap_lat;
    uint64_t ok, failed, total_ok, total_failed;
    char first_error[256];
} xa_worker_t;

struct bench_xa_load {
    bench_xa_spec_t spec;
    trellis_client_t *client;
    char target[2][3][192]; /* [service][prepare, commit, rollback] */
    int64_t start_ns, win_start_ns, win_end_ns;
    xa_worker_t *workers;
    int n_workers;
};

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void note_error(xa_worker_t *w, const char *fmt, ...)
{
    if (w->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
    va_end(ap);
}

/* Both prepares of a begun order. 0, or -1 with the error noted. */
static int prepares(xa_worker_t *w, trellis_xa_t *x, const char *gid)
{
    bench_xa_load_t *l = w->load;
    char pl[128], err[256];
    uint64_t r = next_rand(&w->rng);
    snprintf(pl, sizeof(pl), "order=%s sku=s%d qty=1", gid,
             (int)(r % (uint64_t)l->spec.env->skus));
    for (int i = 0; i < 2; i++) {
        trellis_rc_t rc = trellis_xa_call_branch(
            x, l->target[i][0], l->target[i][1], l->target[i][2], pl,
            strlen(pl), NULL, NULL, err, sizeof(err));
        if (rc != TRELLIS_OK) {
            note_error(w, "prepare at %s: rc %d: %s", SVC_NAME[i], rc, err);
            return -1;
        }
    }
    return 0;
}

/* One order, start to end. 1 when it SUCCEEDED. */
static int order(xa_worker_t *w, uint64_t n)
{
    bench_xa_load_t *l = w->load;
    char gid[64], err[256], reason[256];
    trellis_xa_t *x = NULL;
    trellis_trans_status_t st = 0;
    trellis_options_t o = {.wait_result = 1};
    snprintf(gid, sizeof(gid), "x%d-%d-%llu", (int)getpid(), w->index,
             (unsigned long long)n);
    if (trellis_xa_begin(l->client, gid, &o, &x, err, sizeof(err)) !=
        TRELLIS_OK) {
        note_error(w, "begin: %s", err);
        return 0;
    }
    int ok = 0;
    if (prepares(w, x, gid) != 0)
        trellis_xa_abort(x, "a prepare failed", NULL, err, sizeof(err));
    else if (trellis_xa_submit(x, &st, reason, sizeof(reason), err,
                               sizeof(err)) != TRELLIS_OK)
        note_error(w, "submit: %s", err);
    else if (!(ok = st == TRELLIS_TRANS_SUCCEEDED))
        note_error(w, "submit answered %s: %s", trellis_trans_status_name(st),
                   reason);
    trellis_xa_free(x);
    return ok;
}

static void record(xa_worker_t *w, int ok, int64_t start, int64_t end)
{
    bench_xa_load_t *l = w->load;
    w->total_ok += ok;
    w->total_failed += !ok;
    if (end < l->win_start_ns || end >= l->win_end_ns)
        return;
    if (!ok) {
        w->failed++;
        return;
    }
    w->ok++;
    if (w->n_lat == w->cap_lat) {
        size_t cap = w->cap_lat ? w->cap_lat * 2 : 4096;
        uint32_t *p = realloc(w->lat_us, cap * sizeof(*p));
        if (!p)
            return;
        w->lat_us = p;
        w->cap_lat = cap;
    }
    w->lat_us[w->n_lat++] = (uint32_t)((end - start) / 1000);
}

static void *worker_main(void *arg)
{
    xa_worker_t *w = arg;
    for (uint64_t n = 0; bench_mono_ns() < w->load->win_end_ns; n++) {
        int64_t t0 = bench_mono_ns();
        int ok = order(w, n);
        record(w, ok, t0, bench_mono_ns());
    }
    return NULL;
}

static void set_targets(bench_xa_load_t *l)
{
    static const char *const method[3] = {"Prepare", "Commit", "Rollback"};
    for (int i = 0; i < 2; i++)
        for (int m = 0; m < 3; m++)
            snprintf(l->target[i][m], sizeof(l->target[i][m]), "%s/%s/%s",
                     l->spec.env->svc_addr[i], SVC_GRPC[i], method[m]);
}

bench_xa_load_t *bench_xa_start(const bench_xa_spec_t *spec, char *err,
                                size_t errlen)
{
    bench_xa_load_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->workers =
                    calloc((size_t)spec->concurrency, sizeof(*l->workers)))) {
        snprintf(err, errlen, "out of memory");
        free(l);
        return NULL;
    }
    l->spec = *spec;
    set_targets(l);
    if (trellis_client_new(spec->tm_addr,
                           spec->call_timeout_ms ? spec->call_timeout_ms
                                                 : DEFAULT_TIMEOUT_MS,
                           &l->client, err, errlen) != TRELLIS_OK) {
        free(l->workers);
        free(l);
        return NULL;
    }
    l->start_ns = bench_mono_ns();
    l->win_start_ns = l->start_ns + (int64_t)(spec->warmup_s * 1e9);
    l->win_end_ns = l->win_start_ns + (int64_t)(spec->duration_s * 1e9);
    for (int i = 0; i < spec->concurrency; i++) {
        xa_worker_t *w = &l->workers[i];
        w->load = l;
        w->index = i;
        w->rng = (uint64_t)l->start_ns ^ ((uint64_t)i << 40);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            break;
        l->n_workers++;
    }
    return l;
}

int64_t bench_xa_window_start_ns(const bench_xa_load_t *l)
{
    return l->win_start_ns;
}

int64_t bench_xa_window_end_ns(const bench_xa_load_t *l)
{
    return l->win_end_ns;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(const uint32_t *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)(q * (double)n + 0.999999);
    i = i ? i - 1 : 0;
    return v[i < n ? i : n - 1] / 1000.0;
}

/* Add worker w's counters to out and its latencies to all[*at..]. */
static void merge_worker(xa_worker_t *w, bench_load_result_t *out,
                         uint32_t *all, size_t *at)
{
    out->ok += w->ok;
    out->failed += w->failed;
    out->total_ok += w->total_ok;
    out->total_failed += w->total_failed;
    if (!out->first_error[0] && w->first_error[0])
        snprintf(out->first_error, sizeof(out->first_error), "%s",
                 w->first_error);
    if (all && w->n_lat)
        memcpy(all + *at, w->lat_us, w->n_lat * sizeof(*all));
    *at += all ? w->n_lat : 0;
    free(w->lat_us);
}

void bench_xa_finish(bench_xa_load_t *l, bench_load_result_t *out)
{
    size_t n = 0, at = 0;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < l->n_workers; i++) {
        pthread_join(l->workers[i].thread, NULL);
        n += l->workers[i].n_lat;
    }
    uint32_t *all = malloc((n ? n : 1) * sizeof(*all));
    for (int i = 0; i < l->n_workers; i++)
        merge_worker(&l->workers[i], out, all, &at);
    out->window_s = (double)(l->win_end_ns - l->win_start_ns) / 1e9;
    out->rate = out->window_s > 0 ? (double)out->ok / out->window_s : 0;
    if (all) {
        qsort(all, at, sizeof(*all), cmp_u32);
        out->p50_ms = percentile_ms(all, at, 0.50);
        out->p99_ms = percentile_ms(all, at, 0.99);
        out->max_ms = at ? all[at - 1] / 1000.0 : 0;
    }
    free(all);
    trellis_client_free(l->client);
    free(l->workers);
    free(l);
}

/* ---- CPU -------------------------------------------------------------- */

void bench_xa_snap(const bench_xa_env_t *t, bench_xa_cpu_t *s)
{
    for (int i = 0; i < 2; i++)
        s->svc[i] = t->svc_pid[i] > 0 ? bench_sys_cpu_s(t->svc_pid[i]) : -1;
    s->db = t->db_pid > 0 ? bench_sys_cpu_s(t->db_pid) : -1;
}

static double print_one(const char *name, double a, double b, double secs,
                        uint64_t n_ops)
{
    if (a < 0 || b < 0) {
        printf(" %s=n/a", name);
        return 0;
    }
    printf(" %s=%.2f(%.0fus)", name, (b - a) / secs,
           n_ops ? (b - a) * 1e6 / (double)n_ops : 0);
    return (b - a) / secs;
}

double bench_xa_print_cpu(const bench_xa_cpu_t *a, const bench_xa_cpu_t *b,
                          double secs, uint64_t n_ops)
{
    double cores = 0;
    printf("       cpu cores (us per order):");
    for (int i = 0; i < 2; i++)
        cores += print_one(SVC_NAME[i], a->svc[i], b->svc[i], secs, n_ops);
    cores += print_one("mariadbd", a->db, b->db, secs, n_ops);
    printf("\n");
    return cores;
}
