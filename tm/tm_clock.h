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

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Monotonic and wall clocks in milliseconds. */
int64_t tm_mono_ms(void);
int64_t tm_wall_ms(void);

/* Shift what tm_wall_ms reads by ms: for the clock-skew tests only
 * (trellisd-faults); nothing in trellisd calls it. */
void tm_wall_set_offset_ms(int64_t ms);

/* Initialise cv to time its waits by the monotonic clock, so that a step
 * of the wall clock (an NTP correction, an operator's date) neither cuts a
 * wait short nor stretches it. Every condition variable that is waited on
 * with a deadline from tm_clock_deadline_in must be made here. Returns
 * pthread_cond_init's result. */
int tm_cond_init_monotonic(pthread_cond_t *cv);

/* The CLOCK_MONOTONIC instant ms from now, as pthread_cond_timedwait on a
 * condition variable from tm_cond_init_monotonic wants its deadline. */
struct timespec tm_clock_deadline_in(int64_t ms);

#endif /* TM_CLOCK_H */
