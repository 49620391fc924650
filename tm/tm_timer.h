/*
 * tm_timer: one thread that fires callbacks at given times.
 *
 * Timers are intrusive nodes kept in a binary min-heap ordered by due time:
 * arming, re-arming and disarming are O(log n), and the thread sleeps until
 * the earliest due time, so a hundred thousand waiting transactions cost no
 * scanning per tick. Each node remembers its heap index, which is what makes
 * disarming a node in the middle of the heap cheap.
 *
 * Threads: arm/disarm may be called from any thread. Callbacks run on the
 * timer thread with no timer lock held; a callback may arm timers again.
 * A disarm that races with the firing of the same node either removes it
 * (returns 1: the callback will not run) or finds it already taken out for
 * firing (returns 0: the callback runs or has run) — the owner must handle
 * both, which the engine does by reference counting.
 */
#ifndef TM_TIMER_H
#define TM_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "tm_clock.h" /* due times are on the monotonic clock */

typedef struct tm_timer_node tm_timer_node_t;
typedef void (*tm_timer_fn)(tm_timer_node_t *node);

struct tm_timer_node {
    int64_t due_ms;    /* monotonic milliseconds */
    size_t heap_index; /* position + 1 in the heap; 0 when not armed */
    tm_timer_fn fn;
    void *owner;  /* for the callback's use */
    uint32_t tag; /* for the callback's use */
};

typedef struct tm_timers tm_timers_t;

/* Start the timer thread. *out is the caller's: tm_timers_stop. Returns 0,
 * or -1 with err filled. */
int tm_timers_start(tm_timers_t **out, char *err, size_t errlen);
/* Stop the thread; armed nodes are dropped without firing. */
void tm_timers_stop(tm_timers_t *t);

/* Arm (or re-arm) node to fire at due_ms (monotonic). Returns 1 when the
 * node was not armed before, 0 when it was re-armed. */
int tm_timer_arm(tm_timers_t *t, tm_timer_node_t *node, int64_t due_ms);
/* Returns 1 if node was armed and is now disarmed, 0 otherwise. */
int tm_timer_disarm(tm_timers_t *t, tm_timer_node_t *node);
/* Nodes currently armed. */
size_t tm_timers_count(tm_timers_t *t);

#endif /* TM_TIMER_H */
