/*
 * bench_sys: /proc readers for trellis-bench (see bench_sys.h). Each call
 * opens, reads and closes its file; nothing is cached, so a reading is
 * always current and two threads never share a buffer.
 */
#include "bench_sys.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int bench_sys_nproc(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void bench_sys_cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (v) {
            v += strspn(v + 1, " \t") + 1;
            snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
        }
        break;
    }
    fclose(f);
}

static void proc_path(char *buf, size_t len, int pid, const char *leaf)
{
    if (pid > 0)
        snprintf(buf, len, "/proc/%d/%s", pid, leaf);
    else
        snprintf(buf, len, "/proc/self/%s", leaf);
}

long bench_sys_rss_kb(int pid)
{
    char path[64], line[256];
    proc_path(path, sizeof(path), pid, "status");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* utime + stime of a /proc/.../stat file in seconds; comm (may be NULL)
 * receives the name between the parentheses. */
static double stat_cpu_s(const char *path, char *comm, size_t commlen)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open)
        return -1;
    if (comm)
        snprintf(comm, commlen, "%.*s", (int)(close - open - 1), open + 1);
    /* After ")": state is field 3, utime field 14, stime field 15. */
    unsigned long long ut = 0, st = 0;
    char *p = close + 2;
    for (int field = 3; field < 14 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || sscanf(p, "%llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double bench_sys_cpu_s(int pid)
{
    char path[64];
    proc_path(path, sizeof(path), pid, "stat");
    return stat_cpu_s(path, NULL, 0);
}

int bench_sys_machine_ticks(uint64_t *busy, uint64_t *total)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4)
        return -1;
    uint64_t sum = 0;
    for (int i = 0; i < 8; i++)
        sum += v[i];
    *total = sum;
    *busy = sum - v[3] - v[4]; /* idle and iowait */
    return 0;
}

/* 1 when /proc/pid's comm is comm and arg is one of its arguments. */
static int proc_matches(int pid, const char *comm, const char *arg)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int same = fgets(buf, sizeof(buf), f) &&
               strncmp(buf, comm, strlen(comm)) == 0 &&
               (buf[strlen(comm)] == '\n' || buf[strlen(comm)] == 0);
    fclose(f);
    if (!same)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    if (!(f = fopen(path, "r")))
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The arguments are NUL-separated. */
    for (size_t at = 0; at < n; at += strlen(buf + at) + 1)
        if (strcmp(buf + at, arg) == 0)
            return 1;
    return 0;
}

int bench_sys_find_pid(const char *comm, const char *arg)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        int pid = atoi(e->d_name);
        if (pid > 0 && proc_matches(pid, comm, arg))
            found = pid;
    }
    closedir(d);
    return found;
}

/* /proc/.../schedstat: "ns on CPU, ns waiting on a run queue, slices";
 * more precise than the clock ticks of stat, so it replaces them. */
static void read_schedstat(const char *path, bench_thread_cpu_t *t)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    unsigned long long run = 0, wait = 0;
    if (fscanf(f, "%llu %llu", &run, &wait) == 2) {
        t->cpu_s = (double)run / 1e9;
        t->wait_s = (double)wait / 1e9;
    }
    fclose(f);
}

size_t bench_sys_threads(int pid, bench_thread_cpu_t *out, size_t max)
{
    char path[64];
    proc_path(path, sizeof(path), pid, "task");
    DIR *d = opendir(path);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d)) != NULL) {
        int tid = atoi(e->d_name);
        if (tid <= 0)
            continue;
        char stat[128];
        snprintf(stat, sizeof(stat), "%s/%d/stat", path, tid);
        double s = stat_cpu_s(stat, out[n].comm, sizeof(out[n].comm));
        if (s < 0)
            continue;
        out[n].tid = tid;
        out[n].cpu_s = s;
        out[n].wait_s = 0;
        snprintf(stat, sizeof(stat), "%s/%d/schedstat", path, tid);
        read_schedstat(stat, &out[n]);
        n++;
    }
    closedir(d);
    return n;
}
