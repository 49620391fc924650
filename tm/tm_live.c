/*
 * tm_live: the live-transaction table (see tm_live.h for the ownership and
 * lock rules). A chained hash by gid that doubles when the load passes 1;
 * a failed growth keeps the longer chains rather than failing the insert.
 */
#include "tm_live.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tm_clock.h"
#include "tm_exit.h"
#include "tm_metrics.h"
#include "trellis_fnv.h"

#define INITIAL_BUCKETS 4096

tm_live_t *tm_live_new(tm_engine_t *eng, const char *gid, tm_tx_status_t status,
                       int64_t wall_ms, int64_t mono_ms)
{
    tm_live_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    snprintf(l->tx.gid, sizeof(l->tx.gid), "%s", gid);
    l->tx.status = status;
    l->tx.created_ms = l->tx.updated_ms = wall_ms;
    l->born_mono = mono_ms;
    pthread_mutex_init(&l->mu, NULL);
    atomic_init(&l->refs, 1);
    l->eng = eng;
    return l;
}

tm_live_t *tm_live_adopt(tm_engine_t *eng, tm_trans_t *tx)
{
    tm_live_t *l = tm_live_new(eng, tx->gid, tx->status, 0, 0);
    if (!l)
        return NULL;
    if (tm_live_fit(l, tx->n_branches) != 0) {
        tm_live_unref(l);
        return NULL;
    }
    tm_run_mark_stored(&l->run, tx->n_branches);
    l->tx = *tx; /* take over every owned field */
    l->born_mono = 0;
    free(tx);
    return l;
}

/* The retry timers of the branches one growth adds, in one block. */
struct tm_timer_block {
    struct tm_timer_block *next;
    tm_timer_node_t nodes[];
};

int tm_live_fit(tm_live_t *l, size_t n)
{
    size_t had = l->fitted;
    if (n <= had)
        return 0;
    if (tm_run_fit(&l->run, n) != 0)
        return -1;
    size_t cap = l->run.cap;
    tm_timer_node_t **t = realloc(l->retry_timers, cap * sizeof(*t));
    if (!t)
        return -1;
    l->retry_timers = t;
    /* New nodes in a block of their own: the ones that may be armed stay
     * where they are. */
    struct tm_timer_block *b = calloc(
        1, sizeof(*b) + (cap - had) * TM_SLOTS * sizeof(tm_timer_node_t));
    if (!b)
        return -1;
    b->next = l->timer_blocks;
    l->timer_blocks = b;
    for (size_t i = had; i < cap; i++)
        t[i] = &b->nodes[(i - had) * TM_SLOTS];
    l->fitted = cap;
    return 0;
}

void tm_live_ref(tm_live_t *l)
{
    atomic_fetch_add(&l->refs, 1);
}

void tm_live_unref(tm_live_t *l)
{
    int before = atomic_fetch_sub(&l->refs, 1);
    assert(before > 0);
    if (before != 1)
        return;
    /* Nobody can reach it any more: nothing may still wait on it. */
    assert(l->pending_writes == 0 && !l->held && !l->waiters && !l->parked);
    tm_trans_clear(&l->tx);
    tm_run_clear(&l->run);
    free(l->retry_timers);
    while (l->timer_blocks) {
        struct tm_timer_block *next = l->timer_blocks->next;
        free(l->timer_blocks);
        l->timer_blocks = next;
    }
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static uint64_t hash_gid(const char *gid)
{
    trellis_fnv_t f;
    trellis_fnv_init(&f);
    trellis_fnv_add_str(&f, gid);
    return trellis_fnv_final(&f);
}

int tm_live_table_init(tm_live_table_t *t)
{
    memset(t, 0, sizeof(*t));
    t->n_buckets = INITIAL_BUCKETS;
    t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
    if (!t->buckets)
        return -1;
    pthread_mutex_init(&t->mu, NULL);
    tm_cond_init_monotonic(&t->idle_cv);
    return 0;
}

void tm_live_table_destroy(tm_live_table_t *t)
{
    free(t->buckets);
    t->buckets = NULL;
    pthread_cond_destroy(&t->idle_cv);
    pthread_mutex_destroy(&t->mu);
}

static void grow_locked(tm_live_table_t *t)
{
    size_t n = t->n_buckets * 2;
    tm_live_t **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* keep the longer chains */
    for (size_t i = 0; i < t->n_buckets; i++) {
        tm_live_t *l = t->buckets[i];
        while (l) {
            tm_live_t *next = l->hnext;
            size_t k = hash_gid(l->tx.gid) % n;
            l->hnext = b[k];
            b[k] = l;
            l = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = n;
}

static tm_live_t *find_locked(tm_live_table_t *t, const char *gid)
{
    for (tm_live_t *l = t->buckets[hash_gid(gid) % t->n_buckets]; l;
         l = l->hnext)
        if (strcmp(l->tx.gid, gid) == 0)
            return l;
    return NULL;
}

static void insert_locked(tm_live_table_t *t, tm_live_t *l)
{
    assert(!find_locked(t, l->tx.gid));
    if (t->count >= t->n_buckets)
        grow_locked(t);
    size_t k = hash_gid(l->tx.gid) % t->n_buckets;
    l->hnext = t->buckets[k];
    t->buckets[k] = l;
    t->count++;
    tm_metrics_in_flight_add(1);
}

tm_live_t *tm_live_find(tm_live_table_t *t, const char *gid)
{
    pthread_mutex_lock(&t->mu);
    tm_live_t *l = find_locked(t, gid);
    if (l)
        tm_live_ref(l);
    pthread_mutex_unlock(&t->mu);
    return l;
}

int tm_live_find_or_insert(tm_live_table_t *t, const char *gid,
                           tm_live_t *create, tm_live_admit_fn admit,
                           void *user, tm_live_t **found)
{
    pthread_mutex_lock(&t->mu);
    tm_live_t *l = find_locked(t, gid);
    if (l) {
        tm_live_ref(l);
        pthread_mutex_unlock(&t->mu);
        *found = l;
        return 1;
    }
    int refused = 0;
    if (create) {
        refused = admit ? admit(user, t->count) : 0;
        if (!refused) {
            tm_live_ref(create); /* the table's; the caller keeps its own */
            insert_locked(t, create);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return refused ? -refused : 0;
}

void tm_live_insert(tm_live_table_t *t, tm_live_t *l)
{
    pthread_mutex_lock(&t->mu);
    insert_locked(t, l);
    pthread_mutex_unlock(&t->mu);
}

int tm_live_remove(tm_live_table_t *t, tm_live_t *l)
{
    pthread_mutex_lock(&t->mu);
    tm_live_t **p = &t->buckets[hash_gid(l->tx.gid) % t->n_buckets];
    while (*p && *p != l)
        p = &(*p)->hnext;
    int was_in = *p != NULL;
    if (was_in) {
        *p = l->hnext;
        t->count--;
        tm_metrics_in_flight_add(-1);
        if (t->count == 0)
            pthread_cond_broadcast(&t->idle_cv);
    }
    pthread_mutex_unlock(&t->mu);
    return was_in;
}

tm_live_t **tm_live_snapshot(tm_live_table_t *t, size_t *n)
{
    pthread_mutex_lock(&t->mu);
    *n = 0;
    tm_live_t **all = malloc((t->count ? t->count : 1) * sizeof(*all));
    if (!all)
        tm_exit_oom("snapshot");
    for (size_t b = 0; b < t->n_buckets; b++)
        for (tm_live_t *l = t->buckets[b]; l; l = l->hnext) {
            tm_live_ref(l);
            all[(*n)++] = l;
        }
    assert(*n == t->count);
    pthread_mutex_unlock(&t->mu);
    return all;
}

size_t tm_live_count(tm_live_table_t *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->count;
    pthread_mutex_unlock(&t->mu);
    return n;
}

size_t tm_live_wait_empty(tm_live_table_t *t, uint32_t timeout_ms)
{
    struct timespec until = tm_clock_deadline_in(timeout_ms);
    pthread_mutex_lock(&t->mu);
    while (t->count > 0 &&
           pthread_cond_timedwait(&t->idle_cv, &t->mu, &until) == 0) {
    }
    size_t left = t->count;
    pthread_mutex_unlock(&t->mu);
    return left;
}
