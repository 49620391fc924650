/*
 * bench_count: how the loads of initiator-driven transactions (bench_ap's
 * threads, bench_async's callbacks) count what ended: inside the counting
 * window or not, succeeded or not, with the latencies of the successes in
 * the window; and the pseudo-random numbers their ops draw from.
 *
 * Plain data: one owner at a time (a worker thread, or the holder of a
 * lock).
 */
#ifndef BENCH_COUNT_H
#define BENCH_COUNT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t ok, failed;             /* ended inside the window */
    uint64_t total_ok, total_failed; /* ended at all */
    uint32_t *lat_us;                /* successes in the window; malloc'd */
    size_t n_lat, cap_lat;
} bench_count_t;

/* One transaction that ran from start to end (ns, monotonic), counted
 * against the window [win_start, win_end). A latency that finds no memory
 * is dropped; the counts still hold. */
void bench_count_add(bench_count_t *c, int ok, int64_t start, int64_t end,
                     int64_t win_start, int64_t win_end);

/* Release the latencies. */
void bench_count_clear(bench_count_t *c);

/* The next number of the splitmix64 sequence in *state. */
uint64_t bench_rand_next(uint64_t *state);

#endif /* BENCH_COUNT_H */
