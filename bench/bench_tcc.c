/*
 * bench_tcc: the tcc2 workload (see bench_tcc.h).
 *
 * Each load thread owns its counters and its latency array; nothing is
 * shared on the hot path but the (thread-safe) trellis client and the
 * SDK's cached channels to the banks. Gids are made here
 * ("c<pid>-<thread>-<n>"), so a transfer costs no NewGid call.
 */
#include "bench_tcc.h"

#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_sys.h"
#include "harness.h"
#include "trellis.h"
#include "trellis_tcc.h"

#define DEFAULT_TIMEOUT_MS 30000
#define SEED_BALANCE "1000000000000"

/* ---- processes -------------------------------------------------------- */

static const char *const BANK_NAME[2] = {"bank-a", "bank-b"};
static const char *const BANK_DB[2] = {"bank_a", "bank_b"};

/* bank-service next to this binary unless TRELLIS_BANK_SERVICE says. */
static void bank_binary(char *buf, size_t len)
{
    const char *env = getenv("TRELLIS_BANK_SERVICE");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = 0;
    snprintf(buf, len, "%s/bank-service", dirname(self));
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

static int start_bank(bench_tcc_env_t *t, harness_t *h, int b,
                      const char *threads)
{
    char bin[PATH_MAX];
    bank_binary(bin, sizeof(bin));
    const char *args[] = {"--name",         BANK_NAME[b],
                          "--database",     BANK_DB[b],
                          "--mysql-socket", harness_mariadb_socket(t->db),
                          "--threads",      threads,
                          "--quiet",        NULL};
    t->bank[b] = harness_server_start(h, BANK_NAME[b], bin, args);
    if (!t->bank[b])
        return -1;
    snprintf(t->bank_addr[b], sizeof(t->bank_addr[b]), "%s",
             harness_server_addr(t->bank[b]));
    t->bank_pid[b] = harness_proc_pid(harness_server_proc(t->bank[b]));
    return 0;
}

/* The accounts u0..u<n-1> in both banks, in one statement each (the
 * sequence engine makes the rows). */
static int seed_accounts(bench_tcc_env_t *t)
{
    char sql[512];
    for (int b = 0; b < 2; b++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO %s.accounts (id, balance, trading_balance) "
                 "SELECT CONCAT('u', seq), " SEED_BALANCE ", 0 FROM "
                 "%s.seq_0_to_%d ON DUPLICATE KEY UPDATE balance = "
                 "VALUES(balance)",
                 BANK_DB[b], BANK_DB[b], t->accounts - 1);
        if (harness_mariadb_exec(t->db, sql) != 0) {
            fprintf(stderr, "trellis-bench: seeding %s failed\n", BANK_DB[b]);
            return -1;
        }
    }
    return 0;
}

int bench_tcc_env_start(bench_tcc_env_t *t, harness_t *h, int bank_threads,
                        int accounts, int db_flush)
{
    char threads[16], sql[96];
    memset(t, 0, sizeof(*t));
    t->accounts = accounts;
    snprintf(threads, sizeof(threads), "%d", bank_threads);
    if (!(t->db = harness_mariadb_start(h, "mariadb")))
        return -1;
    t->db_pid = read_pid_file(h, "mariadb.mariadb/mysqld.pid");
    snprintf(sql, sizeof(sql), "SET GLOBAL innodb_flush_log_at_trx_commit = %d",
             db_flush);
    if (harness_mariadb_exec(t->db, sql) != 0)
        return -1;
    for (int b = 0; b < 2; b++)
        if (start_bank(t, h, b, threads) != 0)
            return -1;
    return seed_accounts(t);
}

/* ---- the load --------------------------------------------------------- */

typedef struct {
    bench_tcc_load_t *load;
    int index;
    pthread_t thread;
    uint64_t rng;
    uint32_t *lat_us;
    size_t n_lat, cap_lat;
    uint64_t ok, failed, total_ok, total_failed;
    char first_error[256];
} tcc_worker_t;

struct bench_tcc_load {
    bench_tcc_spec_t spec;
    trellis_client_t *client;
    char target[2][3][192]; /* [bank][try, confirm, cancel] */
    int64_t start_ns, win_start_ns, win_end_ns;
    tcc_worker_t *workers;
    int n_workers;
};

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void note_error(tcc_worker_t *w, const char *fmt, ...)
{
    if (w->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
    va_end(ap);
}

/* The two tries of a begun transfer. 0, or -1 with the error noted. */
static int tries(tcc_worker_t *w, trellis_tcc_t *t)
{
    bench_tcc_load_t *l = w->load;
    char pl[64], err[256];
    uint64_t r = next_rand(&w->rng);
    int acct[2] = {(int)(r % (uint64_t)l->spec.env->accounts),
                   (int)((r >> 32) % (uint64_t)l->spec.env->accounts)};
    for (int b = 0; b < 2; b++) {
        snprintf(pl, sizeof(pl), "account=u%d amount=%d", acct[b],
                 b == 0 ? -1 : 1);
        trellis_rc_t rc = trellis_tcc_call_branch(
            t, l->target[b][0], l->target[b][1], l->target[b][2], pl,
            strlen(pl), NULL, NULL, err, sizeof(err));
        if (rc != TRELLIS_OK) {
            note_error(w, "try at %s: rc %d: %s", BANK_NAME[b], rc, err);
            return -1;
        }
    }
    return 0;
}

/* One transfer, start to end. 1 when it SUCCEEDED. */
static int transfer(tcc_worker_t *w, uint64_t n)
{
    bench_tcc_load_t *l = w->load;
    char gid[64], err[256], reason[256];
    trellis_tcc_t *t = NULL;
    trellis_trans_status_t st = 0;
    trellis_options_t o = {.wait_result = 1};
    snprintf(gid, sizeof(gid), "c%d-%d-%llu", (int)getpid(), w->index,
             (unsigned long long)n);
    if (trellis_tcc_begin(l->client, gid, &o, &t, err, sizeof(err)) !=
        TRELLIS_OK) {
        note_error(w, "begin: %s", err);
        return 0;
    }
    int ok = 0;
    if (tries(w, t) != 0)
        trellis_tcc_abort(t, "a try failed", NULL, err, sizeof(err));
    else if (trellis_tcc_submit(t, &st, reason, sizeof(reason), err,
                                sizeof(err)) != TRELLIS_OK)
        note_error(w, "submit: %s", err);
    else if (!(ok = st == TRELLIS_TRANS_SUCCEEDED))
        note_error(w, "submit answered %s: %s", trellis_trans_status_name(st),
                   reason);
    trellis_tcc_free(t);
    return ok;
}

static void record(tcc_worker_t *w, int ok, int64_t start, int64_t end)
{
    bench_tcc_load_t *l = w->load;
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
    tcc_worker_t *w = arg;
    for (uint64_t n = 0; bench_mono_ns() < w->load->win_end_ns; n++) {
        int64_t t0 = bench_mono_ns();
        int ok = transfer(w, n);
        record(w, ok, t0, bench_mono_ns());
    }
    return NULL;
}

static void set_targets(bench_tcc_load_t *l)
{
    static const char *const method[3] = {"TransTry", "TransConfirm",
                                          "TransCancel"};
    for (int b = 0; b < 2; b++)
        for (int m = 0; m < 3; m++)
            snprintf(l->target[b][m], sizeof(l->target[b][m]),
                     "%s/bank.v1.Bank/%s", l->spec.env->bank_addr[b],
                     method[m]);
}

bench_tcc_load_t *bench_tcc_start(const bench_tcc_spec_t *spec, char *err,
                                  size_t errlen)
{
    bench_tcc_load_t *l = calloc(1, sizeof(*l));
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
        tcc_worker_t *w = &l->workers[i];
        w->load = l;
        w->index = i;
        w->rng = (uint64_t)l->start_ns ^ ((uint64_t)i << 40);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            break;
        l->n_workers++;
    }
    return l;
}

int64_t bench_tcc_window_start_ns(const bench_tcc_load_t *l)
{
    return l->win_start_ns;
}

int64_t bench_tcc_window_end_ns(const bench_tcc_load_t *l)
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

void bench_tcc_finish(bench_tcc_load_t *l, bench_load_result_t *out)
{
    size_t n = 0, at = 0;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < l->n_workers; i++) {
        pthread_join(l->workers[i].thread, NULL);
        n += l->workers[i].n_lat;
    }
    uint32_t *all = malloc((n ? n : 1) * sizeof(*all));
    for (int i = 0; i < l->n_workers; i++) {
        tcc_worker_t *w = &l->workers[i];
        out->ok += w->ok;
        out->failed += w->failed;
        out->total_ok += w->total_ok;
        out->total_failed += w->total_failed;
        if (!out->first_error[0] && w->first_error[0])
            snprintf(out->first_error, sizeof(out->first_error), "%s",
                     w->first_error);
        if (all && w->n_lat)
            memcpy(all + at, w->lat_us, w->n_lat * sizeof(*all));
        at += all ? w->n_lat : 0;
        free(w->lat_us);
    }
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

void bench_tcc_snap(const bench_tcc_env_t *t, bench_tcc_cpu_t *s)
{
    for (int b = 0; b < 2; b++)
        s->bank[b] = t->bank_pid[b] > 0 ? bench_sys_cpu_s(t->bank_pid[b]) : -1;
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

double bench_tcc_print_cpu(const bench_tcc_cpu_t *a, const bench_tcc_cpu_t *b,
                           double secs, uint64_t n_ops)
{
    double cores = 0;
    printf("       cpu cores (us per transfer):");
    for (int i = 0; i < 2; i++)
        cores += print_one(BANK_NAME[i], a->bank[i], b->bank[i], secs, n_ops);
    cores += print_one("mariadbd", a->db, b->db, secs, n_ops);
    printf("\n");
    return cores;
}
