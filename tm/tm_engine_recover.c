/*
 * tm_engine_recover: transactions that enter memory from the store — every
 * unfinished one at start, one claimed from a node whose lease ran out (or
 * from this node after its own lease lapsed), one reloaded after the store
 * refused a change to it — and the re-confirmation of everything in memory
 * after a lease lapse.
 *
 * The fencing rule (docs/architecture.md): a row loaded under a claim
 * replaces any copy in memory, which may be stale; the old copy stops
 * acting at once and its queued writes are refused by the store (the claim
 * moved the row's generation).
 */
#include <stdlib.h>

#include "tm_engine_impl.h"
#include "tm_exit.h"
#include "tm_log.h"
#include "tm_metrics.h"

/* tm_store_load_unfinished's callback: into the table, driven later by
 * tm_engine_resume_all. */
static void adopt_loaded(tm_trans_t *tx, void *arg)
{
    tm_engine_t *e = arg;
    tm_live_t *l = tm_live_adopt(e, tx);
    if (!l)
        tm_exit_oom("recovery");
    char trace[64];
    tm_log(TM_LOG_DEBUG, "event=loaded gid=%s%s status=%s", l->tx.gid,
           tm_trace_log_field(l->tx.opts.traceparent, trace, sizeof(trace)),
           tm_tx_status_name(l->tx.status));
    tm_live_insert(&e->live, l); /* the table takes the creation reference */
}

/* An older copy of a transaction that was just loaded from the store
 * (claimed, or reloaded): retire it, so only the loaded row is acted on.
 * It stops acting — timers disarmed, late results and its queued writes
 * ignored (the store refuses them: the claim moved the fence) — and its
 * waiters move to fresh, which nobody else sees yet. Returns 1 when it
 * took old out of the table (the caller drops the table's reference). */
static int retire_stale_copy(tm_live_t *old, tm_live_t *fresh)
{
    pthread_mutex_lock(&old->mu);
    int unmapped = 0;
    if (!old->finalized) {
        old->lost = 1;
        old->finalized = 1;
        tm_engine_disarm_all_timers(old);
        tm_wait_move(old, fresh);
        unmapped = tm_live_remove(&old->eng->live, old);
    }
    tm_parked_t *parked = tm_wait_take_parked_if_settled(old);
    pthread_mutex_unlock(&old->mu);
    tm_wait_run_parked(parked); /* they find fresh once it is in the table */
    return unmapped;
}

/* Put a transaction just read from the store into memory, in place of any
 * copy there, and drive it; the waiters of from (a copy already out of
 * the table, or NULL) move to it. Takes ownership of tx. */
static void install_loaded(tm_engine_t *e, tm_trans_t *tx, const char *why,
                           tm_live_t *from)
{
    tm_live_t *l = tm_live_adopt(e, tx);
    if (!l)
        tm_exit_oom("takeover");
    if (from) { /* l is not visible to anyone yet */
        pthread_mutex_lock(&from->mu);
        tm_wait_move(from, l);
        pthread_mutex_unlock(&from->mu);
    }
    for (;;) {
        tm_live_t *had = NULL;
        if (tm_live_find_or_insert(&e->live, l->tx.gid, l, NULL, NULL, &had) ==
            0)
            break; /* in: the table holds a reference, we keep ours */
        if (retire_stale_copy(had, l))
            tm_live_unref(had); /* the table's */
        tm_live_unref(had);
    }
    char trace[64];
    tm_log(TM_LOG_INFO, "event=%s gid=%s%s status=%s", why, l->tx.gid,
           tm_trace_log_field(l->tx.opts.traceparent, trace, sizeof(trace)),
           tm_tx_status_name(l->tx.status));
    pthread_mutex_lock(&l->mu);
    tm_engine_arm_timeout(l);
    tm_engine_drive(l);
    pthread_mutex_unlock(&l->mu);
    tm_live_unref(l);
}

/* Store hook: a transaction claimed from a node whose lease ran out — or
 * from this node itself after its own lease lapsed. Any copy in memory is
 * stale (another node may have moved the row meanwhile): the loaded row
 * replaces it. */
static void adopt_claimed(tm_trans_t *tx, void *arg)
{
    install_loaded(arg, tx, "takeover", NULL);
}

void tm_engine_reload_from_store(tm_engine_t *e, tm_live_t *old)
{
    const char *gid = old->tx.gid;
    char err[256] = "not stored";
    tm_trans_t *tx = NULL;
    int found = e->env.store_get(e->env.store, gid, &tx, err, sizeof(err));
    if (found == 1 && !tm_tx_is_final(tx->status)) {
        install_loaded(e, tx, "reloaded", old);
        return;
    }
    /* Nothing to drive: the waiters hear what the store holds. */
    pthread_mutex_lock(&old->mu);
    tm_waiter_t *w = tm_wait_take(old);
    pthread_mutex_unlock(&old->mu);
    tm_wait_answer_stored(e, w, gid, found == 1 ? tx : NULL, err);
    if (found == 1)
        tm_trans_free(tx);
    else
        tm_log(TM_LOG_ERROR,
               "event=reload_failed gid=%s error=\"%s\" msg=\"a restart "
               "drives it on from the store\"",
               gid, err);
}

/* Store hook: this node's leases may have run out, so another node may
 * have taken some transactions over. Confirm each with a write (it is
 * refused for a transaction another node owns now); until its write
 * commits, a transaction plans nothing. */
static void recheck_after_lapse(void *arg)
{
    tm_engine_t *e = arg;
    size_t n;
    tm_live_t **all = tm_live_snapshot(&e->live, &n);
    tm_log(TM_LOG_WARN,
           "event=lease_lapsed transactions=%zu msg=\"re-confirming "
           "ownership before acting\"",
           n);
    for (size_t i = 0; i < n; i++) {
        tm_live_t *l = all[i];
        pthread_mutex_lock(&l->mu);
        if (!l->finalized)
            tm_engine_persist(l, 0, NULL, TM_ACK_NONE);
        pthread_mutex_unlock(&l->mu);
        tm_live_unref(l);
    }
    free(all);
}

long tm_engine_load(tm_engine_t *e, char *err, size_t errlen)
{
    long n = e->env.store_load_unfinished(e->env.store, adopt_loaded, e, err,
                                          errlen);
    if (n > 0)
        tm_metrics_recovered_add((uint64_t)n);
    return n;
}

void tm_engine_resume_all(tm_engine_t *e)
{
    /* Snapshot the table first: driving may finish (and remove) entries. */
    size_t n;
    tm_live_t **all = tm_live_snapshot(&e->live, &n);
    for (size_t i = 0; i < n; i++) {
        tm_live_t *l = all[i];
        pthread_mutex_lock(&l->mu);
        tm_engine_arm_timeout(l);
        tm_engine_drive(l);
        pthread_mutex_unlock(&l->mu);
        tm_live_unref(l);
    }
    free(all);
    if (n)
        tm_log(TM_LOG_INFO, "event=recovered transactions=%zu", n);
    tm_store_owner_hooks_t hooks = {adopt_claimed, recheck_after_lapse, e};
    e->env.store_start_ownership(e->env.store, &hooks);
}
