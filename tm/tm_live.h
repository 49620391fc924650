/*
 * tm_live: the engine's live-transaction table — one record per unfinished
 * transaction in memory, found by gid, kept alive by reference counts.
 *
 * A record (tm_live_t) is the durable model (tx) plus what the engine keeps
 * beside it while it drives the transaction: its lock, pending and held
 * writes, timers, waiters and parked requests. The table owns the records'
 * lifetime: it holds the reference a record is created with; every other
 * holder (a lookup, a call on the wire, an armed timer, a queued write)
 * takes its own with tm_live_ref and drops it with tm_live_unref; the last
 * unref frees the record.
 *
 * Lock order: a record's lock, then the table's lock. The table's lock is
 * never held while taking a record's lock, nor across any I/O.
 *
 * Engine-internal: only the tm_engine*.c and tm_waiters.c files use it.
 */
#ifndef TM_LIVE_H
#define TM_LIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tm_run.h"
#include "tm_timer.h"
#include "tm_trans.h"

typedef struct tm_engine tm_engine_t;
typedef struct tm_waiter tm_waiter_t;
typedef struct tm_parked tm_parked_t;
typedef struct tm_ticket tm_ticket_t;

typedef struct tm_live tm_live_t;
struct tm_live {
    tm_trans_t tx; /* the model; changed only under mu */
    tm_run_t run;  /* its runtime marks (tm_run.h), fitted to tx */
    /* One retry timer per op slot: retry_timers[branch][slot], run.cap
     * branches of them (tm_engine_fit grows both together). The nodes sit
     * in blocks that never move, since an armed node is the timer list's:
     * a workflow's resume may wait for its retry while its function
     * registers more steps. Growing moves only the array of pointers. */
    tm_timer_node_t **retry_timers;
    struct tm_timer_block *timer_blocks; /* owned: the nodes, chained */
    size_t fitted; /* branches both run and retry_timers have room for */
    pthread_mutex_t mu;
    atomic_int refs;
    int pending_writes; /* queued or held writes not yet committed */
    int finalized;      /* left the table: final, lost or replaced */
    int lost; /* another node drives it now (or a fresher copy replaced it) */
    /* Its insert is not committed yet: any other write waits in held (in
     * order) until it is, because an insert may still be refused (the gid
     * was stored before) and then no write of this copy may reach the
     * stored row. */
    int inserting;
    tm_ticket_t *held, *held_tail;
    tm_timer_node_t timeout;
    /* Monotonic time this node created it (0: loaded from the store); the
     * timeout of a transaction created here runs on this clock, so a step
     * of the wall clock cannot fire it early or late. */
    int64_t born_mono;
    tm_timer_node_t lease_wait; /* drive again once the lease is valid */
    tm_waiter_t *waiters;
    unsigned n_waiters;
    tm_parked_t *parked, *parked_tail;
    unsigned n_parked;
    tm_live_t *hnext; /* the table's chain */
    tm_engine_t *eng;
};

/* A new record for gid with one reference (the caller's, which becomes
 * the table's if it is inserted), created at wall_ms (stored) and mono_ms
 * (this process's clock, for its timeout). NULL on out of memory. */
tm_live_t *tm_live_new(tm_engine_t *eng, const char *gid, tm_tx_status_t status,
                       int64_t wall_ms, int64_t mono_ms);
/* A record around a model read from the store (its fields are taken over
 * and tx itself freed; its runtime marks say every branch is stored).
 * NULL on out of memory (tx is then untouched). */
tm_live_t *tm_live_adopt(tm_engine_t *eng, tm_trans_t *tx);
void tm_live_ref(tm_live_t *l);

/* Room in l's runtime marks and retry timers for n branches (new ones
 * zeroed); call after adding branches to l->tx, before planning or
 * persisting. Armed retry timers stay where they are. Lock held. Returns
 * 0, or -1 on out of memory. */
int tm_live_fit(tm_live_t *l, size_t n);
void tm_live_unref(tm_live_t *l);

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t idle_cv; /* signalled when the count drops to 0 */
    tm_live_t **buckets;
    size_t n_buckets;
    size_t count;
} tm_live_table_t;

int tm_live_table_init(tm_live_table_t *t);
/* Frees the buckets; records still in it are left to the process exit. */
void tm_live_table_destroy(tm_live_table_t *t);

/* The record for gid with a reference the caller drops, or NULL. */
tm_live_t *tm_live_find(tm_live_table_t *t, const char *gid);

/* What tm_live_find_or_insert may be told by admit (under the table's
 * lock, so the count cannot move before the insert): 0 admits. */
typedef int (*tm_live_admit_fn)(void *user, size_t count);

/* The record for gid (referenced, into *found, returns 1); or, when there
 * is none and create is given, create inserted when admit(user, count)
 * returns 0 (returns 0; the table takes a reference of its own, the
 * caller keeps create's), else admit's non-zero answer is returned as
 * negative. Without create: returns 0 when gid is not in memory. */
int tm_live_find_or_insert(tm_live_table_t *t, const char *gid,
                           tm_live_t *create, tm_live_admit_fn admit,
                           void *user, tm_live_t **found);

/* Insert l (its gid not in the table; the table takes over the caller's
 * reference). */
void tm_live_insert(tm_live_table_t *t, tm_live_t *l);

/* Take l out (it stays alive while references remain); returns 1 when it
 * was in. The caller then drops the table's reference. */
int tm_live_remove(tm_live_table_t *t, tm_live_t *l);

/* Every record, each with a reference the caller drops; *n of them. The
 * array is the caller's (free). Exits the process on out of memory. */
tm_live_t **tm_live_snapshot(tm_live_table_t *t, size_t *n);

size_t tm_live_count(tm_live_table_t *t);

/* Block up to timeout_ms until the table is empty; returns the count. */
size_t tm_live_wait_empty(tm_live_table_t *t, uint32_t timeout_ms);

#endif /* TM_LIVE_H */
