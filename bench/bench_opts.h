/*
 * bench_opts: trellis-bench's flags - what each one sets, their defaults
 * and bounds, the usage text, and the check that the mode is known.
 * Apart from bench_main.c so that the run's steps read on their own.
 */
#ifndef BENCH_OPTS_H
#define BENCH_OPTS_H

#include <stdint.h>

#include "bench_scale.h"

typedef struct {
    const char *mode, *store, *tm, *part_impl;
    int concurrency, tm_threads, part_threads, client_threads, channels;
    int nodes;
    int bank_threads, accounts, db_flush; /* tcc2, xa2, hybrid3 */
    int wf_threads, wf_park;              /* wf2 */
    uint32_t wf_timeout_ms, wf_retry_ms;
    int msg_wait; /* msg2 */
    int tm_pid;
    double duration_s, warmup_s;
    uint64_t hold;
    int listeners;      /* saga2: completion listeners per saga */
    int listener_batch; /* saga2: their TransOptions.listener_batch */
    uint32_t hold_retry_ms;
    bench_scale_opts_t scale; /* scale: its --scale-* flags */
} bench_opts_t;

/* Fill *o from argv (defaults first). 0: run; 1: --help was printed (exit
 * 0); -1: a flag was wrong, what is wrong printed (exit 2). */
int bench_opts_parse(int argc, char **argv, bench_opts_t *o);

#endif /* BENCH_OPTS_H */
