/*
 * tm_clock: reading time, for everything in trellisd that needs it. The
 * monotonic clock times local waits, timers and timeouts of transactions
 * created here (a step of the wall clock cannot move them); the wall clock
 * is what is stored (created, updated, finished) and what lease-free
 * deadlines loaded from the store are measured against.
 *
 * Any thread.
 */
#ifndef TM_CLOCK_H
#define TM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic and wall clocks in milliseconds. */
int64_t tm_mono_ms(void);
int64_t tm_wall_ms(void);

/* Shift what tm_wall_ms reads by ms: for the clock-skew tests only
 * (trellisd-faults); nothing in trellisd calls it. */
void tm_wall_set_offset_ms(int64_t ms);

/* The CLOCK_REALTIME instant ms from now, as pthread_cond_timedwait
 * wants its deadline. */
struct timespec tm_clock_deadline_in(int64_t ms);

#endif /* TM_CLOCK_H */
