/*
 * bench_fill: fills a trellisd store with many transactions quickly, for
 * trellis-bench --mode scale. It writes through the store's own write API
 * (tm_store_open, tm_write_capture_all, tm_store_queue: the rows trellisd
 * itself would write, in its real schema), many writes per group commit,
 * instead of running every transaction through trellisd.
 *
 * Each transaction is a 2-step saga of the shape saga2 submits (an action
 * and a compensation per step, the second step after the first). Finished
 * ones look like a saga2 that ran to its end: SUCCEEDED with both actions
 * called once, or - every 100th - FAILED with the first action refused and
 * nothing to compensate. Unfinished ones are SUBMITTED with no op called
 * yet: a restarted trellisd drives them from the start.
 *
 * The store must not be open elsewhere meanwhile (trellisd stopped): on
 * the MySQL store the loader takes trellisd's node id, so the unfinished
 * rows are that node's own when it starts again.
 *
 * Threads: one call at a time; it blocks until every row is durable.
 */
#ifndef BENCH_FILL_H
#define BENCH_FILL_H

#include <stddef.h>
#include <stdint.h>

#include "tm_store.h"

typedef struct {
    const char *gid_prefix; /* gids are <prefix><first + i> */
    uint64_t first, n;
    int finished;       /* 1: SUCCEEDED (every 100th FAILED); 0: SUBMITTED */
    int64_t created_ms; /* of the first; each next one 1 ms later */
    const char *action, *compensate; /* the steps' targets */
    const char *first_action;        /* step 1's action (NULL: action) */
    uint32_t retry_interval_ms;      /* 0: trellisd's default */
} bench_fill_spec_t;

/* Write spec's transactions into the store cfg names. Prints progress
 * lines on stdout every ~10 % of a large fill. Returns 0, or -1 with
 * err. */
int bench_fill(const tm_store_config_t *cfg, const bench_fill_spec_t *spec,
               char *err, size_t errlen);

/* The gid of transaction i of spec into buf[len]. */
void bench_fill_gid(const bench_fill_spec_t *spec, uint64_t i, char *buf,
                    size_t len);

#endif /* BENCH_FILL_H */
