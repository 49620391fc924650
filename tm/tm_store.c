/*
 * tm_store: the part of storage both engines share (see tm_store.h): the
 * write queue, the store thread that commits a group at a time and then
 * runs the group's callbacks in queue order, flush, stats, and dispatch of
 * everything else to the configured engine.
 */
#include "tm_clock.h"
#include "tm_exit.h"
#include "tm_store_impl.h"
#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_timer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Most writes one commit takes: bounds the size of one database
 * transaction (and of a MySQL packet) under a burst. */
#define MAX_GROUP 1024

/* How often the store thread runs the engine's upkeep, between groups;
 * and, after an upkeep step that left work (a retention backlog), how
 * long the next one waits for each ms that step took: a backlog is
 * worked off in short slices between groups, on at most a third of the
 * store thread's time. */
#define MAINTAIN_EVERY_MS 1000
#define MAINTAIN_BACKLOG_PAUSE 2

void tm_store_config_default(tm_store_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->kind = TM_STORE_SQLITE;
    c->data_dir = "./trellis-data";
    c->mysql_host = "127.0.0.1";
    c->mysql_port = 3306;
    c->mysql_user = "root";
    c->mysql_database = "trellis";
    c->lease_ms = 10000;
    c->retention_ms = 7ull * 24 * 3600 * 1000;
}

void tm_store_count(tm_store_t *s, tm_store_stat_t which, uint64_t n)
{
    pthread_mutex_lock(&s->qmu);
    switch (which) {
    case TM_STAT_LOST:
        s->stats.lost += n;
        break;
    case TM_STAT_CLAIMED:
        s->stats.claimed += n;
        break;
    case TM_STAT_PURGED:
        s->stats.purged += n;
        tm_metrics_purged_add(n);
        break;
    case TM_STAT_RECONNECTS:
        s->stats.reconnects += n;
        break;
    }
    pthread_mutex_unlock(&s->qmu);
}

static void run_callbacks(tm_write_t *w)
{
    while (w) {
        tm_write_t *next = w->next;
        if (w->done)
            w->done(w->arg, w->result);
        tm_write_free(w);
        w = next;
    }
}

/* Detach up to MAX_GROUP writes from the head of the queue. qmu held. */
static tm_write_t *take_group(tm_store_t *s, uint64_t *n)
{
    tm_write_t *group = s->head, *last = s->head;
    *n = 1;
    while (last->next && *n < MAX_GROUP) {
        last = last->next;
        (*n)++;
    }
    s->head = last->next;
    if (!s->head)
        s->tail = NULL;
    last->next = NULL;
    return group;
}

/* Wait until a write is queued, the store stops, or the monotonic clock
 * reaches upkeep_at (ms). qmu held. */
static void wait_for_work(tm_store_t *s, int64_t upkeep_at)
{
    int64_t ms = upkeep_at - tm_mono_ms();
    if (ms <= 0)
        return;
    struct timespec until = tm_clock_deadline_in(ms);
    while (!s->head && !s->stopping) {
        if (pthread_cond_timedwait(&s->qcv, &s->qmu, &until) == ETIMEDOUT)
            break;
    }
}

/* Count n writes done (their callbacks ran): flush waits on this. */
static void note_done(tm_store_t *s, uint64_t n)
{
    pthread_mutex_lock(&s->qmu);
    s->done_seq += n;
    pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->qmu);
}

/* Hand a committed group to the callback thread (queue order kept). */
static void hand_to_callbacks(tm_store_t *s, tm_write_t *group)
{
    tm_write_t *last = group;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&s->qmu);
    if (s->cb_tail)
        s->cb_tail->next = group;
    else
        s->cb_head = group;
    s->cb_tail = last;
    pthread_cond_signal(&s->cbcv);
    pthread_mutex_unlock(&s->qmu);
}

/* The callback thread: runs the callbacks of committed groups in queue order
 * while the store thread already commits the next group. */
static void *callback_thread_main(void *arg)
{
    tm_store_t *s = arg;
    pthread_setname_np(pthread_self(), "tm-store-cb");
    pthread_mutex_lock(&s->qmu);
    for (;;) {
        while (!s->cb_head && !s->cb_stopping)
            pthread_cond_wait(&s->cbcv, &s->qmu);
        if (!s->cb_head)
            break;
        tm_write_t *batch = s->cb_head;
        s->cb_head = s->cb_tail = NULL;
        pthread_mutex_unlock(&s->qmu);
        uint64_t n = 0;
        for (tm_write_t *w = batch; w; w = w->next)
            n++;
        run_callbacks(batch);
        note_done(s, n);
        pthread_mutex_lock(&s->qmu);
    }
    pthread_mutex_unlock(&s->qmu);
    return NULL;
}

void tm_store_note_failure(tm_store_t *s, const char *why)
{
    char q[600];
    pthread_mutex_lock(&s->qmu);
    snprintf(s->why, sizeof(s->why), "%s", why);
    int was = atomic_exchange(&s->healthy, 0);
    pthread_mutex_unlock(&s->qmu);
    tm_metrics_store_failure();
    if (was) {
        tm_metrics_store_healthy(0);
        tm_log(TM_LOG_ERROR,
               "event=store_unhealthy store=%s err=\"%s\" msg=\"commits "
               "fail; retrying with backoff, refusing new work until one "
               "succeeds\"",
               s->kind_name, tm_log_quote(why, q, sizeof(q)));
    }
}

void tm_store_note_success(tm_store_t *s)
{
    if (atomic_load(&s->healthy))
        return; /* the common case: no lock on the commit path */
    if (!atomic_exchange(&s->healthy, 1)) {
        tm_metrics_store_healthy(1);
        tm_log(TM_LOG_WARN,
               "event=store_healthy store=%s msg=\"commits "
               "succeed again\"",
               s->kind_name);
    }
}

int tm_store_healthy(tm_store_t *s, char *why, size_t len)
{
    if (atomic_load(&s->healthy))
        return 1;
    if (why && len) {
        pthread_mutex_lock(&s->qmu);
        snprintf(why, len, "%s", s->why);
        pthread_mutex_unlock(&s->qmu);
    }
    return 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Commit a group, retrying with capped backoff for as long as it takes:
 * a failed commit stored nothing, and every write's callback must see its
 * write durable. Store thread. */
static void commit_until_durable(tm_store_t *s, tm_write_t *group)
{
    int64_t backoff = 10;
    for (int attempt = 0;; attempt++) {
        char err[256] = "";
        if (s->ops->commit_group(s, group, attempt, err, sizeof(err)) == 0)
            break;
        tm_store_note_failure(s, err);
        tm_log(TM_LOG_WARN, "event=store_commit_retry store=%s attempt=%d",
               s->kind_name, attempt + 1);
        sleep_ms(backoff);
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
    tm_store_note_success(s);
}

/* Run the engine's upkeep (qmu held; released meanwhile) and return when
 * the next one is due (monotonic ms). */
static int64_t upkeep(tm_store_t *s)
{
    int64_t t0 = tm_mono_ms();
    int more = 0;
    if (s->ops->maintain) {
        pthread_mutex_unlock(&s->qmu);
        more = s->ops->maintain(s);
        pthread_mutex_lock(&s->qmu);
    }
    int64_t t1 = tm_mono_ms();
    return t1 +
           (more ? (t1 - t0 + 1) * MAINTAIN_BACKLOG_PAUSE : MAINTAIN_EVERY_MS);
}

/* Take what is queued, commit it as one group, then hand the group to the
 * callback thread, which runs its callbacks in queue order while this
 * thread commits the next group (its statements, fsync or round trips
 * overlap the callbacks, which start the next calls). */
static void *store_thread_main(void *arg)
{
    tm_store_t *s = arg;
    pthread_setname_np(pthread_self(), "tm-store");
    int64_t upkeep_at = tm_mono_ms() + MAINTAIN_EVERY_MS;
    pthread_mutex_lock(&s->qmu);
    for (;;) {
        wait_for_work(s, upkeep_at);
        if (!s->head && s->stopping)
            break;
        if (tm_mono_ms() >= upkeep_at)
            upkeep_at = upkeep(s);
        if (!s->head)
            continue;
        uint64_t n;
        tm_write_t *group = take_group(s, &n);
        pthread_mutex_unlock(&s->qmu);

        commit_until_durable(s, group);
        hand_to_callbacks(s, group);

        pthread_mutex_lock(&s->qmu);
        s->stats.commits++;
        s->stats.writes += n;
        if (n > s->stats.max_batch)
            s->stats.max_batch = n;
    }
    pthread_mutex_unlock(&s->qmu);
    return NULL;
}

int tm_store_open(const tm_store_config_t *cfg, tm_store_t **out, char *err,
                  size_t errlen)
{
    tm_store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->retention_ms = cfg->retention_ms;
    s->healthy = 1;
    pthread_mutex_init(&s->qmu, NULL);
    tm_cond_init_monotonic(&s->qcv);
    pthread_cond_init(&s->drained, NULL);
    pthread_cond_init(&s->cbcv, NULL);
    int rc = cfg->kind == TM_STORE_MYSQL
                 ? tm_store_mysql_open(s, cfg, err, errlen)
                 : tm_store_sqlite_open(s, cfg, err, errlen);
    if (rc != 0) {
        pthread_mutex_destroy(&s->qmu);
        pthread_cond_destroy(&s->qcv);
        pthread_cond_destroy(&s->drained);
        pthread_cond_destroy(&s->cbcv);
        free(s);
        return -1;
    }
    if (pthread_create(&s->cb_thread, NULL, callback_thread_main, s) != 0 ||
        pthread_create(&s->thread, NULL, store_thread_main, s) != 0) {
        /* Not recoverable in a process that already has threads. */
        tm_exit_os_error("cannot start the store thread");
    }
    *out = s;
    return 0;
}

void tm_store_close(tm_store_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->qmu);
    s->stopping = 1;
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->qmu);
    s->cb_stopping = 1;
    pthread_cond_signal(&s->cbcv);
    pthread_mutex_unlock(&s->qmu);
    pthread_join(s->cb_thread, NULL);
    s->ops->close(s);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    pthread_cond_destroy(&s->drained);
    pthread_cond_destroy(&s->cbcv);
    free(s);
}

const char *tm_store_kind_name(const tm_store_t *s)
{
    return s->kind_name;
}

void tm_store_queue(tm_store_t *s, tm_write_t *w, tm_store_done_fn done,
                    void *arg)
{
    w->done = done;
    w->arg = arg;
    w->next = NULL;
    w->result = TM_WRITE_DONE;
    pthread_mutex_lock(&s->qmu);
    if (s->tail)
        s->tail->next = w;
    else
        s->head = w;
    s->tail = w;
    s->queued_seq++;
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
}

void tm_store_flush(tm_store_t *s)
{
    pthread_mutex_lock(&s->qmu);
    uint64_t target = s->queued_seq;
    while (s->done_seq < target)
        pthread_cond_wait(&s->drained, &s->qmu);
    pthread_mutex_unlock(&s->qmu);
}

void tm_store_stats(tm_store_t *s, tm_store_stats_t *out)
{
    pthread_mutex_lock(&s->qmu);
    *out = s->stats;
    pthread_mutex_unlock(&s->qmu);
}

int tm_store_peek(tm_store_t *s, const char *gid, tm_tx_status_t *status,
                  uint64_t *submit_hash, char *err, size_t errlen)
{
    return s->ops->peek(s, gid, status, submit_hash, err, errlen);
}

int tm_store_get(tm_store_t *s, const char *gid, tm_trans_t **out, char *err,
                 size_t errlen)
{
    return s->ops->get(s, gid, out, err, errlen);
}

long tm_store_load_unfinished(tm_store_t *s, tm_store_each_fn fn, void *arg,
                              char *err, size_t errlen)
{
    return s->ops->load_unfinished(s, fn, arg, err, errlen);
}

int tm_store_list(tm_store_t *s, const tm_store_filter_t *f, tm_trans_t ***out,
                  size_t *n, char *err, size_t errlen)
{
    return s->ops->list(s, f, out, n, err, errlen);
}

int tm_store_schema_is(const char *version, int v)
{
    char text[16];
    snprintf(text, sizeof(text), "%d", v);
    return strcmp(version, text) == 0;
}

static int no_topics(tm_store_t *s, char *err, size_t errlen)
{
    snprintf(err, errlen, "the %s store keeps no topics", s->kind_name);
    return -1;
}

/* 0 when text is 1..max bytes (0..max with empty_ok), or -1 with err
 * naming it. */
static int check_length(const char *what, const char *text, size_t max,
                        int empty_ok, char *err, size_t errlen)
{
    size_t len = text ? strlen(text) : 0;
    if ((len > 0 || empty_ok) && len <= max)
        return 0;
    snprintf(err, errlen, "subscription %s must be %s%zu bytes", what,
             empty_ok ? "at most " : "1..", max);
    return -1;
}

/* The checks both engines apply, so they refuse the same subscriptions. */
static int check_subscription(const char *topic, const char *target,
                              const char *remark, char *err, size_t errlen)
{
    if (check_length("topic", topic, TM_STORE_TOPIC_MAX, 0, err, errlen) ||
        check_length("target", target, TM_STORE_TARGET_MAX, 0, err, errlen) ||
        check_length("remark", remark, TM_STORE_REMARK_MAX, 1, err, errlen))
        return -1;
    return 0;
}

int tm_store_subscribe(tm_store_t *s, const char *topic, const char *target,
                       const char *remark, int64_t now_ms, char *err,
                       size_t errlen)
{
    if (!s->ops->subscribe)
        return no_topics(s, err, errlen);
    if (check_subscription(topic, target, remark, err, errlen) != 0)
        return -1;
    return s->ops->subscribe(s, topic, target, remark ? remark : "", now_ms,
                             err, errlen);
}

int tm_store_unsubscribe(tm_store_t *s, const char *topic, const char *target,
                         char *err, size_t errlen)
{
    if (!s->ops->unsubscribe)
        return no_topics(s, err, errlen);
    if (check_subscription(topic, target, NULL, err, errlen) != 0)
        return -1;
    return s->ops->unsubscribe(s, topic, target, err, errlen);
}

int tm_store_subscriptions(tm_store_t *s, const char *topic,
                           tm_subscription_t **out, size_t *n, char *err,
                           size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!s->ops->subscriptions)
        return no_topics(s, err, errlen);
    return s->ops->subscriptions(s, topic && *topic ? topic : NULL, out, n, err,
                                 errlen);
}

void tm_store_start_ownership(tm_store_t *s, const tm_store_owner_hooks_t *h)
{
    if (s->ops->start_ownership)
        s->ops->start_ownership(s, h);
}

uint32_t tm_store_max_payload(tm_store_t *s, char *why, size_t len)
{
    if (s->ops->max_payload)
        return s->ops->max_payload(s, why, len);
    snprintf(why, len, "%s", "");
    return UINT32_MAX;
}

int tm_store_lease_ok(tm_store_t *s)
{
    return s->ops->lease_ok ? s->ops->lease_ok(s) : 1;
}

void tm_store_release_leases(tm_store_t *s)
{
    if (s->ops->release_leases)
        s->ops->release_leases(s);
}
