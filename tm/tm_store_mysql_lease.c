/*
 * tm_store_mysql_lease: ownership on the MySQL engine — the lease thread,
 * on its own connection, keeps the node lock, renews this node's leases,
 * claims expired ones from other nodes (moving their generation, the
 * fencing token); and at shutdown the release of every lease of this
 * node. Times that decide ownership come from the database's clock, so
 * nodes never compare their own clocks. (Retention has a thread of its
 * own: tm_store_mysql_purge.c.)
 */
#include "tm_exit.h"
#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_store_mysql_impl.h"
#include "tm_timer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Transactions claimed per statement. */
#define CLAIM_BATCH 32
#define CLAIM_ROUNDS 16

/* ---- leases and claims (lease thread) ----------------------------------- */

/* The node lock is held by a session: if it is our own earlier one (a
 * connection we lost but the server kept), end it. Returns 0 when it was
 * ours, -1 when another process holds the lock. */
static int end_own_old_session(my_store_t *m)
{
    my_sql_t b = {0};
    my_sql_printf(&b, "SELECT IS_USED_LOCK(");
    my_node_lock_name(m, &b);
    my_sql_printf(&b, ")");
    int rc = mysql_real_query(m->ldb, b.p, (unsigned long)b.len);
    free(b.p);
    MYSQL_RES *res = rc == 0 ? mysql_store_result(m->ldb) : NULL;
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    unsigned long holder = row && row[0] ? strtoul(row[0], NULL, 10) : 0;
    mysql_free_result(res);
    if (!holder) /* free by now */
        return 0;
    if (holder != m->lock_session)
        return -1;
    char sql[64];
    snprintf(sql, sizeof(sql), "KILL %lu", holder);
    mysql_query(m->ldb, sql);
    tm_log(TM_LOG_INFO, "event=old_session_ended session=%lu", holder);
    return 0;
}

static int lease_connect(my_store_t *m)
{
    char q[512];
    if (m->ldb)
        return 0;
    char err[512];
    m->ldb = my_connect(m, 1, err, sizeof(err));
    if (!m->ldb) {
        tm_log(TM_LOG_ERROR, "event=store_unavailable conn=lease err=\"%s\"",
               tm_log_quote(err, q, sizeof(q)));
        return -1;
    }
    /* A restarted database dropped our node lock with the old session; a
     * server that has not noticed our old session died still holds it. */
    if (my_take_node_lock(m, m->ldb, 0, err, sizeof(err)) != 0 &&
        (end_own_old_session(m) != 0 ||
         my_take_node_lock(m, m->ldb, 5, err, sizeof(err)) != 0)) {
        tm_log(TM_LOG_ERROR,
               "event=node_lock_lost err=\"%s\" msg=\"another process took "
               "this node id while the database was away; exiting\"",
               tm_log_quote(err, q, sizeof(q)));
        _exit(TM_EXIT_NODE_LOCK_LOST);
    }
    tm_store_count(m->store, TM_STAT_RECONNECTS, 1);
    return 0;
}

static void lease_drop_connection(my_store_t *m, const char *what)
{
    char q[512];
    tm_log(TM_LOG_WARN, "event=store_lease_error what=%s err=\"%s (%u)\"", what,
           tm_log_quote(mysql_error(m->ldb), q, sizeof(q)),
           mysql_errno(m->ldb));
    mysql_close(m->ldb);
    m->ldb = NULL;
}

/* The renewal's UPDATE touches the rows this node's own group commits
 * write, so InnoDB may pick it as a deadlock victim: it is rolled back and
 * can be sent again at once (it is idempotent) rather than dropping the
 * connection and letting the lease run short until the next tick. */
enum { ER_LOCK_DEADLOCK_ = 1213, RENEW_DEADLOCK_TRIES = 3 };

static int run_retrying_deadlocks(MYSQL *db, const my_sql_t *b)
{
    for (int i = 0; i < RENEW_DEADLOCK_TRIES; i++) {
        if (my_run(db, b->p, b->len, NULL, 0) >= 0)
            return 0;
        if (mysql_errno(db) != ER_LOCK_DEADLOCK_)
            return -1;
    }
    return -1;
}

/* Every lease of this node that ends within half a lease is extended to a
 * full one, so after this statement all of them last at least half a lease
 * (less a safety margin) from when it was sent: *valid_until. Does not
 * publish it: the caller first deals with a lapse. Returns 0 or -1. */
int my_renew_leases(my_store_t *m, int64_t *valid_until)
{
    if (atomic_load(&m->released) || lease_connect(m) != 0)
        return -1;
    my_sql_t b = {0};
    my_sql_printf(&b,
                  "SET @now = " DB_NOW "; UPDATE trellis_trans SET"
                  " lease_ms=@now+%" PRId64 " WHERE owner=",
                  m->lease_ms);
    my_sql_str(&b, m->node_id);
    my_sql_printf(&b, " AND lease_ms IS NOT NULL AND lease_ms < @now+%" PRId64,
                  m->lease_ms / 2);
    int64_t sent = tm_mono_ms();
    int rc = run_retrying_deadlocks(m->ldb, &b);
    free(b.p);
    if (rc != 0) {
        lease_drop_connection(m, "renew");
        return -1;
    }
    *valid_until = sent + m->lease_ms / 2 - m->lease_ms / 10;
    return 0;
}

/* Renew, and if the previous validity ran out before this renewal ended
 * (a pause, a slow or absent database), have the engine re-confirm what it
 * holds before the lease counts as valid again. */
static void renew_and_publish(my_store_t *m)
{
    int64_t next;
    if (my_renew_leases(m, &next) != 0)
        return;
    int64_t before = atomic_load(&m->valid_until);
    if (before != 0 && tm_mono_ms() >= before) {
        pthread_mutex_lock(&m->lmu);
        int hooks_set = m->hooks_set;
        if (!hooks_set)
            m->lapse_pending = 1;
        pthread_mutex_unlock(&m->lmu);
        if (hooks_set)
            m->hooks.lapsed(m->hooks.arg);
    }
    atomic_store(&m->valid_until, next);
}

int my_lease_ok(tm_store_t *store)
{
    const my_store_t *m = store->impl;
    return !atomic_load(&m->released) &&
           tm_mono_ms() < atomic_load(&m->valid_until);
}

/* Send a query on the lease connection and collect its gids. */
static char **lease_select_gids(my_store_t *m, const my_sql_t *b, size_t *n)
{
    *n = 0;
    if (mysql_real_query(m->ldb, b->p, (unsigned long)b->len) != 0)
        return NULL;
    return my_collect_gids(m->ldb, n);
}

void my_sql_gid_list(my_sql_t *b, char **gids, size_t n)
{
    my_sql_printf(b, "(");
    for (size_t i = 0; i < n; i++) {
        my_sql_printf(b, i ? "," : "");
        my_sql_str(b, gids[i]);
    }
    my_sql_printf(b, ")");
}

/* Claim up to CLAIM_BATCH transactions whose lease ran out (rows another
 * node is writing are skipped, not waited for). Returns how many, or -1. */
static long claim_batch(my_store_t *m, char ***claimed)
{
    *claimed = NULL;
    if (my_exec(m->ldb, "START TRANSACTION; SET @now = " DB_NOW) != 0)
        return -1;
    my_sql_t b = {0};
    my_sql_printf(&b,
                  "SELECT gid FROM trellis_trans WHERE lease_ms < @now"
                  " ORDER BY lease_ms LIMIT %d FOR UPDATE SKIP LOCKED",
                  CLAIM_BATCH);
    size_t n;
    char **gids = lease_select_gids(m, &b, &n);
    my_sql_reset(&b);
    int rc = gids ? 0 : -1;
    if (rc == 0 && n > 0) {
        my_sql_printf(&b, "UPDATE trellis_trans SET owner=");
        my_sql_str(&b, m->node_id);
        my_sql_printf(&b,
                      ", lease_ms=@now+%" PRId64
                      ", generation=generation+1 WHERE gid IN ",
                      m->lease_ms);
        my_sql_gid_list(&b, gids, n);
        rc = my_run(m->ldb, b.p, b.len, NULL, 0) < 0 ? -1 : 0;
    }
    free(b.p);
    if (rc == 0)
        rc = my_exec(m->ldb, "COMMIT");
    if (rc != 0) {
        my_free_gids(gids, n);
        return -1;
    }
    *claimed = gids;
    return (long)n;
}

/* Load each claimed transaction and hand it to the engine. */
static void adopt_claimed(my_store_t *m, char **gids, size_t n)
{
    char q[512];
    for (size_t i = 0; i < n; i++) {
        my_sql_t b = {0};
        my_build_get_sql(&b, gids[i]);
        tm_trans_t *tx = NULL;
        char err[512] = "";
        int rc = mysql_real_query(m->ldb, b.p, (unsigned long)b.len) == 0
                     ? my_read_get_results(m->ldb, &tx, err, sizeof(err))
                     : -1;
        if (rc < 0 && !err[0])
            my_error(m->ldb, "reading a claimed transaction", err, sizeof(err));
        free(b.p);
        if (rc == 1)
            m->hooks.adopt(tx, m->hooks.arg);
        else /* its lease runs out again and some node claims it then */
            tm_log(TM_LOG_WARN, "event=takeover_load_failed gid=%s err=\"%s\"",
                   gids[i], tm_log_quote(err, q, sizeof(q)));
    }
}

/* Claim batch after batch while batches come back full, pausing between
 * them so that other nodes claiming at the same time get their share. */
static void claim_expired(my_store_t *m)
{
    for (int round = 0; round < CLAIM_ROUNDS; round++) {
        if (round > 0)
            my_sleep_ms(5);
        char **gids;
        long n = claim_batch(m, &gids);
        if (n < 0) {
            lease_drop_connection(m, "claim");
            return;
        }
        if (n > 0) {
            tm_log(TM_LOG_INFO, "event=claimed transactions=%ld", n);
            tm_store_count(m->store, TM_STAT_CLAIMED, (uint64_t)n);
            tm_metrics_takeovers_add((uint64_t)n);
            adopt_claimed(m, gids, (size_t)n);
        }
        my_free_gids(gids, (size_t)n);
        if (n < CLAIM_BATCH)
            return;
    }
}

int my_wait_stopping(my_store_t *m, int64_t ms)
{
    struct timespec until = tm_clock_deadline_in(ms);
    pthread_mutex_lock(&m->lmu);
    while (!m->stopping &&
           pthread_cond_timedwait(&m->lcv, &m->lmu, &until) != ETIMEDOUT)
        ;
    int stopping = m->stopping;
    pthread_mutex_unlock(&m->lmu);
    return stopping;
}

void *my_lease_thread_main(void *arg)
{
    my_store_t *m = arg;
    pthread_setname_np(pthread_self(), "tm-lease");
    int64_t tick = m->lease_ms / 5;
    while (!my_wait_stopping(m, tick)) {
        if (atomic_load(&m->released))
            continue;
        renew_and_publish(m);
        pthread_mutex_lock(&m->lmu);
        int hooks_set = m->hooks_set;
        pthread_mutex_unlock(&m->lmu);
        if (hooks_set && m->ldb && my_lease_ok(m->store))
            claim_expired(m);
    }
    return NULL;
}

void my_start_ownership(tm_store_t *store, const tm_store_owner_hooks_t *h)
{
    my_store_t *m = store->impl;
    pthread_mutex_lock(&m->lmu);
    m->hooks = *h;
    m->hooks_set = 1;
    int pending = m->lapse_pending;
    m->lapse_pending = 0;
    pthread_mutex_unlock(&m->lmu);
    if (pending)
        h->lapsed(h->arg);
}

/* Graceful shutdown: expire every lease of this node now, so other nodes
 * claim its unfinished transactions at their next look. This node acts on
 * nothing afterwards (tm_store_lease_ok stays 0). */
void my_release_leases(tm_store_t *store)
{
    char q[512];
    my_store_t *m = store->impl;
    atomic_store(&m->released, 1);
    my_sql_t b = {0};
    my_sql_printf(&b, "UPDATE trellis_trans SET lease_ms=0 WHERE owner=");
    my_sql_str(&b, m->node_id);
    my_sql_printf(&b, " AND lease_ms IS NOT NULL");
    char err[512];
    my_reader_t *r = my_reader_take(m);
    if (my_reader_send(m, r, b.p, b.len, err, sizeof(err)) != 0)
        tm_log(TM_LOG_WARN, "event=release_leases_failed err=\"%s\"",
               tm_log_quote(err, q, sizeof(q)));
    else
        tm_log(TM_LOG_INFO, "event=leases_released transactions=%llu",
               (unsigned long long)mysql_affected_rows(r->db));
    my_reader_give(r);
    free(b.p);
}
