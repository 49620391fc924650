/*
 * bench_sys: what trellis-bench reads about the machine and its processes
 * from /proc — the CPU model and count, a process's resident memory, and
 * CPU time per process and per thread — so a run can say where the CPU
 * went and how big trellisd grew.
 *
 * Every function reads /proc afresh and keeps no state; all are safe from
 * any thread. pid 0 means this process.
 */
#ifndef BENCH_SYS_H
#define BENCH_SYS_H

#include <stddef.h>
#include <stdint.h>

/* Online CPUs. */
int bench_sys_nproc(void);

/* "model name" of the first CPU in /proc/cpuinfo into buf[len] ("unknown"
 * when there is none). */
void bench_sys_cpu_model(char *buf, size_t len);

/* VmRSS of pid in kB, or -1 when it cannot be read. */
long bench_sys_rss_kb(int pid);

/* User + system CPU seconds pid has used so far, or -1. */
double bench_sys_cpu_s(int pid);

/* Busy and total jiffies of the whole machine (first line of /proc/stat).
 * Returns 0, or -1. */
int bench_sys_machine_ticks(uint64_t *busy, uint64_t *total);

/* The pid of a process named comm (as in /proc/PID/comm) that has arg
 * among its command-line arguments, or 0 when there is none. */
int bench_sys_find_pid(const char *comm, const char *arg);

/* CPU seconds of one thread, and seconds it spent runnable but waiting
 * for a CPU (from schedstat; 0 when the kernel does not keep it). A thread
 * whose cpu + wait grows as fast as the clock never waits for work: it is
 * saturated. */
typedef struct {
    int tid;
    char comm[24];
    double cpu_s;
    double wait_s;
} bench_thread_cpu_t;

/* The threads of pid (at most max) into out; returns how many. */
size_t bench_sys_threads(int pid, bench_thread_cpu_t *out, size_t max);

#endif /* BENCH_SYS_H */
