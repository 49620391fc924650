/*
 * trellis-bench-part: the no-op participant trellis-bench drives. It
 * serves service trellis.bench.Noop, whose methods do no work at all:
 *
 *   Action, Compensate  answer OK (empty reply)   - saga steps
 *   Hold                answers FAILED_PRECONDITION, i.e. ONGOING, so the
 *                       TM keeps the saga and retries later - hold mode
 *   Echo                answers OK                - the gRPC ceiling
 *   Stats               answers OK with "action=N compensate=N hold=N
 *                       echo=N" (calls received so far)
 *
 * Two servers do the same thing: part_core.c on the raw gRPC C core
 * (registered methods, payload read with the call, one reply batch), and
 * part_sdk.c on libtrellis's trellis_participant.h, to measure what the
 * SDK participant costs. This header is what the two share with main.
 */
#ifndef BENCH_PART_H
#define BENCH_PART_H

#include <grpc/grpc.h>
#include <stdatomic.h>
#include <stddef.h>

typedef enum {
    PART_ACTION,
    PART_COMPENSATE,
    PART_HOLD,
    PART_ECHO,
    PART_STATS,
    PART_N_METHODS
} part_method_t;

typedef struct {
    const char *name;        /* full method name */
    grpc_status_code status; /* what it answers */
    const char *details;     /* status message, "" for none */
} part_method_info_t;

extern const part_method_info_t part_methods[PART_N_METHODS];

/* Calls received per method; updated by the servers, read by Stats. */
extern atomic_ullong part_calls[PART_N_METHODS];

/* The Stats reply text into buf[len]; returns its length. */
size_t part_stats_text(char *buf, size_t len);

/* Serve on addr with n_threads; the bound port into *port. Returns 0, or
 * -1 after printing why. The server then runs until the process exits. */
int part_core_serve(const char *addr, int n_threads, int *port);
int part_sdk_serve(const char *addr, int n_threads, int *port);

#endif /* BENCH_PART_H */
