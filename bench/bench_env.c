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
#include "trellis/trellis.h"

/* The harness names of the nodes: their logs, data dirs and node ids. */
static const char *const NODE_NAME[BENCH_MAX_NODES] = {"trellisd",
                                                       "trellisd-2"};

/* The directory this binary lies in, into buf[len]. */
static void own_dir(char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = 0;
    snprintf(buf, len, "%s", dirname(self));
}

void bench_env_binary(const char *env_var, const char *leaf, char *buf,
                      size_t len)
{
    const char *env = env_var ? getenv(env_var) : NULL;
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return;
    }
    char dir[PATH_MAX];
    own_dir(dir, sizeof(dir));
    snprintf(buf, len, "%s/%s", dir, leaf);
}

void bench_env_locate(void)
{
    char mine[PATH_MAX], built[PATH_MAX], built_real[PATH_MAX];
    own_dir(mine, sizeof(mine));
    snprintf(built, sizeof(built), "%s/bin", harness_build_dir());
    if (realpath(built, built_real) && strcmp(built_real, mine) == 0)
        return;
    char path[PATH_MAX];
    bench_env_binary(NULL, "trellisd", path, sizeof(path));
    setenv("TRELLIS_TRELLISD", path, 0);
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/trellis-bench-%ld",
             tmp && *tmp ? tmp : "/tmp", (long)getuid());
    setenv("TRELLIS_BUILD_DIR", path, 0);
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

/* Node i (0 or 1) of the trellisd processes started here. Node 0 is
 * harness_tm_start's usual trellisd (TRELLIS_TEST_STORE picks its store;
 * with mysql the harness gives it a database of its own and node id
 * trellisd). Node 1 shares that database under node id trellisd-2, with
 * the harness's 2 s lease, so the two are peers of one cluster. */
static int start_node(bench_env_t *e, const bench_env_opts_t *o, int i)
{
    const char *args[24];
    char threads[16], database[128];
    size_t n = 0;
    if (i > 0) {
        harness_mariadb_t *db = harness_tm_store_db(e->h);
        if (!db) {
            fprintf(stderr, "trellis-bench: a second trellisd needs the "
                            "MySQL store (--store mysql)\n");
            return -1;
        }
        const char *mysql[] = {"--store",
                               "mysql",
                               "--mysql-socket",
                               harness_mariadb_socket(db),
                               "--mysql-database",
                               harness_tm_store_database(e->h, NODE_NAME[0],
                                                         database,
                                                         sizeof(database)),
                               "--node-id",
                               NODE_NAME[i],
                               "--lease-ms",
                               "2000",
                               NULL};
        for (size_t j = 0; mysql[j]; j++)
            args[n++] = mysql[j];
    }
    snprintf(threads, sizeof(threads), "%d", o->tm_threads);
    if (o->tm_threads > 0) {
        args[n++] = "--threads";
        args[n++] = threads;
    }
    for (size_t j = 0; o->tm_args && o->tm_args[j] && j < 6; j++)
        args[n++] = o->tm_args[j];
    args[n] = NULL;
    e->tm_srv[i] = harness_tm_start(e->h, NODE_NAME[i], n ? args : NULL);
    if (!e->tm_srv[i])
        return -1;
    snprintf(e->node_addr[i], sizeof(e->node_addr[i]), "%s",
             harness_server_addr(e->tm_srv[i]));
    e->tm_pid[i] = harness_proc_pid(harness_server_proc(e->tm_srv[i]));
    e->n_nodes = i + 1;
    return 0;
}

static int start_tm(bench_env_t *e, const bench_env_opts_t *o)
{
    if (o->tm) {
        snprintf(e->node_addr[0], sizeof(e->node_addr[0]), "%s", o->tm);
        snprintf(e->tm_addr, sizeof(e->tm_addr), "%s", o->tm);
        e->tm_pid[0] = o->tm_pid;
        e->n_nodes = 1;
        return 0;
    }
    int nodes = o->nodes > 0 ? o->nodes : 1;
    if (nodes > BENCH_MAX_NODES) {
        fprintf(stderr, "trellis-bench: at most %d nodes\n", BENCH_MAX_NODES);
        return -1;
    }
    for (int i = 0; i < nodes; i++) {
        if (start_node(e, o, i) != 0)
            return -1;
        size_t at = strlen(e->tm_addr);
        snprintf(e->tm_addr + at, sizeof(e->tm_addr) - at, "%s%s", i ? "," : "",
                 e->node_addr[i]);
    }
    /* The harness's MariaDB for the MySQL store is shared by the process
     * and has no pid accessor: find it by the socket it was started on. */
    harness_mariadb_t *db = harness_tm_store_db(e->h);
    if (db) {
        char arg[256];
        snprintf(arg, sizeof(arg), "--socket=%s", harness_mariadb_socket(db));
        e->store_pid = bench_sys_find_pid("mariadbd", arg);
    }
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

int bench_env_pid_file(harness_t *h, const char *leaf)
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
    for (int i = 0; i < BENCH_MAX_NODES; i++) {
        int pid = i < e->n_nodes ? e->tm_pid[i] : 0;
        s->tm[i] = pid > 0 ? bench_sys_cpu_s(pid) : -1;
        if (pid > 0)
            s->n_tm_threads[i] =
                bench_sys_threads(pid, s->tm_threads[i], BENCH_MAX_THREADS);
    }
    s->store = e->store_pid > 0 ? bench_sys_cpu_s(e->store_pid) : -1;
    bench_sys_machine_ticks(&s->busy, &s->total);
}

static const bench_thread_cpu_t *thread_before(const bench_thread_cpu_t *a,
                                               size_t n, int tid)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].tid == tid)
            return &a[i];
    return NULL;
}

static int by_cpu_desc(const void *x, const void *y)
{
    double a = ((const bench_thread_cpu_t *)x)->cpu_s;
    double b = ((const bench_thread_cpu_t *)y)->cpu_s;
    return (a < b) - (a > b);
}

/* Node i's threads that used CPU between a and b, busiest first. */
static void print_threads(const char *name, const bench_cpu_snap_t *a,
                          const bench_cpu_snap_t *b, int i, double secs)
{
    bench_thread_cpu_t d[BENCH_MAX_THREADS];
    size_t n = 0;
    for (size_t j = 0; j < b->n_tm_threads[i]; j++) {
        const bench_thread_cpu_t *was = thread_before(
            a->tm_threads[i], a->n_tm_threads[i], b->tm_threads[i][j].tid);
        d[n] = b->tm_threads[i][j];
        d[n].cpu_s -= was ? was->cpu_s : 0;
        d[n].wait_s -= was ? was->wait_s : 0;
        n += d[n].cpu_s > 0;
    }
    qsort(d, n, sizeof(d[0]), by_cpu_desc);
    printf("       %s threads (share of the window on CPU + waiting "
           "for a CPU):\n       ",
           name);
    for (size_t j = 0; j < n && j < 6; j++)
        printf(" %s/%d=%.2f+%.2f", d[j].comm, d[j].tid, d[j].cpu_s / secs,
               d[j].wait_s / secs);
    printf("%s\n", n ? "" : " (none used CPU)");
}

/* "name=X.XX cores (N us/op)" for one process, or "n/a". Returns the
 * cores, 0 for n/a. */
static double print_proc(const char *name, double a, double b, double secs,
                         uint64_t n_ops)
{
    if (a < 0 || b < 0) {
        printf(" %s=n/a", name);
        return 0;
    }
    double cpu = b - a;
    printf(" %s=%.2f", name, cpu / secs);
    if (n_ops)
        printf("(%.0fus)", cpu * 1e6 / (double)n_ops);
    return cpu / secs;
}

double bench_env_print_cpu(const bench_env_t *e, const bench_cpu_snap_t *a,
                           const bench_cpu_snap_t *b, uint64_t n_ops,
                           const char *op, int threads)
{
    uint64_t ticks = b->total - a->total;
    long hz = sysconf(_SC_CLK_TCK);
    int ncpu = bench_sys_nproc();
    double secs = ticks ? (double)ticks / (double)hz / ncpu : 1;
    double ours = 0;
    printf("       cpu cores (us per %s):", op);
    ours += print_proc("client", a->client, b->client, secs, n_ops);
    ours += print_proc("participant", a->part, b->part, secs, n_ops);
    for (int i = 0; i < e->n_nodes; i++)
        ours += print_proc(NODE_NAME[i], a->tm[i], b->tm[i], secs, n_ops);
    if (e->store_pid > 0)
        ours += print_proc("store-mariadbd", a->store, b->store, secs, n_ops);
    /* What the machine was busy with beyond these processes: other load on
     * the box makes the figures of this run suspect. */
    double busy = (double)(b->busy - a->busy) / (double)hz / secs;
    printf(" others=%.2f machine_busy=%.0f%%\n", busy - ours,
           ticks ? 100.0 * (double)(b->busy - a->busy) / (double)ticks : 0);
    for (int i = 0; threads && i < e->n_nodes; i++)
        if (b->n_tm_threads[i])
            print_threads(NODE_NAME[i], a, b, i, secs);
    return busy - ours;
}
