/*
 * bench_load: an asynchronous unary-call load generator on the gRPC C
 * core. It keeps exactly `concurrency` calls of one method in flight: each
 * completion immediately starts the next call from the thread that saw it,
 * so the load never waits on a blocked thread. A few completion-queue
 * threads (cq_threads) share the slots; each slot belongs to one thread
 * and one channel for its whole life, so a slot's state needs no lock.
 *
 * Two ways to end a run:
 *   - by time: calls run for warmup_s + duration_s; only calls that
 *     complete inside the measurement window [warmup, warmup + duration)
 *     are counted and timed;
 *   - by count (max_calls > 0): exactly max_calls calls are started and
 *     every one is counted.
 * Then no new call starts and the run waits for the calls still in flight
 * (each has a deadline, call_timeout_ms).
 *
 * Ownership: bench_conns_t owns its channels (bench_conns_close); a run
 * borrows them and must end before they are closed. The request buffer
 * that make_request returns is the run's and is destroyed after its call.
 */
#ifndef BENCH_LOAD_H
#define BENCH_LOAD_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>

/* Split a comma-separated target list ("host:port,host:port") into
 * out[0 .. max-1]; returns how many (0 when list is empty or an entry does
 * not fit). */
#define BENCH_MAX_TARGETS 8
#define BENCH_TARGET_LEN 128
size_t bench_split_targets(const char *list, char out[][BENCH_TARGET_LEN],
                           size_t max);

/* n channels over the targets of a comma-separated list, each with the
 * method registered. Channel i goes to target i % targets, and n is raised
 * to a multiple of the number of targets, so the slots (which take channel
 * j % n) spread evenly over them. n > 1 gives n separate TCP connections
 * (local subchannel pools). Returns 0, or -1 with a message. */
typedef struct {
    size_t n;
    grpc_channel **channels;
    void **methods; /* grpc_channel_register_call handles */
} bench_conns_t;

int bench_conns_open(bench_conns_t *c, const char *targets, size_t n,
                     const char *method);
void bench_conns_close(bench_conns_t *c);

/* Build the request of call number seq (0, 1, ... across the run) into
 * *out. Called from the completion-queue threads, concurrently. Returns 0,
 * or -1 to stop starting calls. */
typedef int (*bench_make_fn)(uint64_t seq, grpc_byte_buffer **out, void *user);

/* Judge an OK reply (bytes may be NULL when there was no message).
 * Returns 0 when it counts as a success, else -1 with err filled. */
typedef int (*bench_check_fn)(const uint8_t *bytes, size_t len, char *err,
                              size_t errlen, void *user);

typedef struct {
    const bench_conns_t *conns;
    int concurrency;
    int cq_threads;           /* 0: 1; never more than concurrency */
    double warmup_s;          /* by time */
    double duration_s;        /* by time */
    uint64_t max_calls;       /* > 0: by count instead */
    uint32_t call_timeout_ms; /* 0: 30 s */
    bench_make_fn make_request;
    bench_check_fn check_reply; /* NULL: any OK status is a success */
    void *user;
} bench_load_spec_t;

typedef struct {
    uint64_t ok;     /* successes counted (in the window when by time) */
    uint64_t failed; /* failures counted, same rule */
    uint64_t total_ok, total_failed; /* every call of the run */
    double window_s;                 /* length of the counting window */
    double rate;                     /* ok / window_s */
    double p50_ms, p99_ms, max_ms;
    char first_error[256]; /* "" when none failed */
} bench_load_result_t;

typedef struct bench_load bench_load_t;

/* Start the run's threads and first calls; returns NULL with err filled. */
bench_load_t *bench_load_start(const bench_load_spec_t *spec, char *err,
                               size_t errlen);

/* Monotonic clock (CLOCK_MONOTONIC, ns) of the counting window, so the
 * caller can sample CPU counters at its edges. Only for runs by time. */
int64_t bench_load_window_start_ns(const bench_load_t *l);
int64_t bench_load_window_end_ns(const bench_load_t *l);

/* Wait for the run to end, fill *out and release everything. */
void bench_load_finish(bench_load_t *l, bench_load_result_t *out);

/* Sort lat_us[n] (latencies in us) in place and fill out's p50_ms,
 * p99_ms (nearest rank) and max_ms from them; 0 when n is 0. Shared with
 * bench_ap, whose threads time their calls the same way. */
void bench_load_latencies(uint32_t *lat_us, size_t n, bench_load_result_t *out);

/* CLOCK_MONOTONIC in ns, and a sleep until such an instant. */
int64_t bench_mono_ns(void);
void bench_sleep_until_ns(int64_t t);

#endif /* BENCH_LOAD_H */
