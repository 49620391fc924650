/*
 * bench_saga: the requests trellis-bench sends and how it judges the
 * replies - the 2-branch saga Submit of mode saga2 (waiting for the
 * result), the held saga of hold mode (first step answers ONGOING, no
 * wait) and the empty Echo of the gRPC ceiling. Each is a bench_make_fn /
 * bench_check_fn pair for bench_load.
 */
#ifndef BENCH_SAGA_H
#define BENCH_SAGA_H

#include <stdint.h>

#include "bench_load.h"

/* Full method names called by the bench. */
#define BENCH_SUBMIT_METHOD "/trellis.v1.TM/Submit"
#define BENCH_ECHO_METHOD "/trellis.bench.Noop/Echo"
#define BENCH_STATS_METHOD "/trellis.bench.Noop/Stats"

typedef struct {
    char action[256];     /* "host:port/trellis.bench.Noop/Action" */
    char compensate[256]; /* ".../Compensate" */
    char first[256];      /* first step's action: Action, or Hold */
    char gid_prefix[32];  /* "b-<pid>-" */
    uint64_t gid_base;    /* added to the call's seq: gids never repeat */
    int wait_result;
    uint32_t retry_interval_ms; /* 0: trellisd's default */
    char listener[256];         /* ".../Echo": a no-op completion listener */
    int n_listeners;            /* completion listeners per saga, 0..8 */
    uint32_t listener_batch;    /* their TransOptions.listener_batch */
} bench_saga_t;

/* A plain saga2 workload against the participant at part_addr: both steps
 * Action (with Compensate), wait_result. */
void bench_saga_init(bench_saga_t *s, const char *part_addr, const char *tag);

/* Give every saga of s n completion listeners (TransOptions.listeners),
 * each the participant's Echo method, a no-op, taking batches of up to
 * batch events (TransOptions.listener_batch; 0: one event per call). */
void bench_saga_listen(bench_saga_t *s, int n, uint32_t batch);

/* Turn s into the hold workload: first step Hold (ONGOING), no wait, and
 * a retry interval of retry_ms so held sagas stay in trellisd's memory. */
void bench_saga_hold(bench_saga_t *s, uint32_t retry_ms);

/* bench_make_fn: packed SubmitRequest, gid "<prefix><gid_base + seq>". */
int bench_saga_make(uint64_t seq, grpc_byte_buffer **out, void *saga);

/* bench_check_fn: SubmitReply status SUCCEEDED with wait_result, any
 * status but FAILED without. */
int bench_saga_check(const uint8_t *bytes, size_t len, char *err, size_t errlen,
                     void *saga);

/* bench_make_fn: an empty Echo request. */
int bench_echo_make(uint64_t seq, grpc_byte_buffer **out, void *unused);

#endif /* BENCH_SAGA_H */
