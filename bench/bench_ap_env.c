/*
 * bench_ap_env: MariaDB and the participant services of the tcc2, xa2 and
 * hybrid3 workloads (see bench_ap_env.h).
 */
#include "bench_ap_env.h"

#include <stdio.h>
#include <string.h>

#include "bench_env.h"
#include "bench_sys.h"
#include "harness.h"

/* ---- processes -------------------------------------------------------- */

int bench_ap_db_start(bench_ap_env_t *e, harness_t *h, int db_flush)
{
    char sql[96];
    memset(e, 0, sizeof(*e));
    if (!(e->db = harness_mariadb_start(h, "mariadb")))
        return -1;
    e->db_pid = bench_env_pid_file(h, "mariadb.mariadb/mysqld.pid");
    snprintf(sql, sizeof(sql), "SET GLOBAL innodb_flush_log_at_trx_commit = %d",
             db_flush);
    return harness_mariadb_exec(e->db, sql) != 0 ? -1 : 0;
}

int bench_ap_svc_start(bench_ap_env_t *e, harness_t *h, int i, const char *name,
                       const char *bin, const char *const *args)
{
    e->svc_name[i] = name;
    e->svc[i] = harness_server_start(h, name, bin, args);
    if (!e->svc[i])
        return -1;
    snprintf(e->svc_addr[i], sizeof(e->svc_addr[i]), "%s",
             harness_server_addr(e->svc[i]));
    e->svc_pid[i] = harness_proc_pid(harness_server_proc(e->svc[i]));
    return 0;
}

/* ---- CPU -------------------------------------------------------------- */

void bench_ap_snap(const bench_ap_env_t *e, bench_ap_cpu_t *s)
{
    for (int i = 0; i < BENCH_AP_MAX_SVC; i++)
        s->svc[i] = e->svc_pid[i] > 0 ? bench_sys_cpu_s(e->svc_pid[i]) : -1;
    s->db = e->db_pid > 0 ? bench_sys_cpu_s(e->db_pid) : -1;
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

double bench_ap_print_cpu(const bench_ap_env_t *e, const bench_ap_cpu_t *a,
                          const bench_ap_cpu_t *b, double secs, uint64_t n_ops,
                          const char *op)
{
    double cores = 0;
    printf("       cpu cores (us per %s):", op);
    for (int i = 0; i < BENCH_AP_MAX_SVC; i++)
        if (e->svc_name[i])
            cores +=
                print_one(e->svc_name[i], a->svc[i], b->svc[i], secs, n_ops);
    cores += print_one("mariadbd", a->db, b->db, secs, n_ops);
    printf("\n");
    return cores;
}
