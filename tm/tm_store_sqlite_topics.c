/*
 * tm_store_sqlite_topics: the SQLite engine's subscriptions (see
 * tm_store.h, "topics") in the subscription table, on the topics
 * connection under its mutex (tm_store_sqlite_topics.h says why that
 * cannot deadlock with the store thread).
 *
 * Each subscribe or unsubscribe is one BEGIN IMMEDIATE ... COMMIT on that
 * connection (synchronous FULL, as the writer): durable when it returns.
 * IMMEDIATE takes the write lock at BEGIN, so a group commit in between
 * makes it wait (busy timeout) rather than fail on a stale snapshot.
 */
#include "tm_store_sqlite_topics.h"

#include <stdio.h>
#include <stdlib.h>

static int topics_error(sq_topics_t *t, const char *what, char *err,
                        size_t errlen)
{
    snprintf(err, errlen, "sqlite %s: %s", what, sqlite3_errmsg(t->db));
    return -1;
}

/* Step st (prepared and bound on t->db) in a transaction of its own and
 * commit. Returns the rows it changed, or -1 with err (rolled back). */
static int write_one(sq_topics_t *t, sqlite3_stmt *st, const char *what,
                     char *err, size_t errlen)
{
    if (sqlite3_exec(t->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return topics_error(t, what, err, errlen);
    int changed = -1;
    if (sqlite3_step(st) == SQLITE_DONE)
        changed = sqlite3_changes(t->db);
    else
        topics_error(t, what, err, errlen);
    if (changed >= 0 &&
        sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        changed = topics_error(t, what, err, errlen);
    if (!sqlite3_get_autocommit(t->db))
        sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
    return changed;
}

/* Prepare sql on t->db and bind the texts v[0..n) to ?1..?n. Returns the
 * statement, or NULL with err. */
static sqlite3_stmt *prepare_texts(sq_topics_t *t, const char *sql,
                                   const char *const *v, int n, char *err,
                                   size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) != SQLITE_OK) {
        topics_error(t, "prepare", err, errlen);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
    return st;
}

int sq_subscribe(tm_store_t *store, const char *topic, const char *target,
                 const char *remark, int64_t now_ms, char *err, size_t errlen)
{
    sq_topics_t *t = sq_store_topics(store);
    const char *v[] = {topic, target, remark};
    pthread_mutex_lock(&t->mu);
    sqlite3_stmt *st = prepare_texts(
        t,
        "INSERT OR IGNORE INTO subscription(topic,target,remark,created_ms)"
        " VALUES(?1,?2,?3,?4)",
        v, 3, err, errlen);
    int rc = -1;
    if (st) {
        sqlite3_bind_int64(st, 4, now_ms);
        rc = write_one(t, st, "subscribe", err, errlen);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int sq_unsubscribe(tm_store_t *store, const char *topic, const char *target,
                   char *err, size_t errlen)
{
    sq_topics_t *t = sq_store_topics(store);
    const char *v[] = {topic, target};
    pthread_mutex_lock(&t->mu);
    sqlite3_stmt *st = prepare_texts(
        t, "DELETE FROM subscription WHERE topic=?1 AND target=?2", v, 2, err,
        errlen);
    int rc = st ? write_one(t, st, "unsubscribe", err, errlen) : -1;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* Every row of st into *out, *n. Returns 0, or -1 with err (the rows read
 * so far stay in *out for the caller to free). */
static int collect(sq_topics_t *t, sqlite3_stmt *st, tm_subscription_t **out,
                   size_t *n, char *err, size_t errlen)
{
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (tm_store_subscription_add(out, n, &cap,
                                      (const char *)sqlite3_column_text(st, 0),
                                      (const char *)sqlite3_column_text(st, 1),
                                      (const char *)sqlite3_column_text(st, 2),
                                      sqlite3_column_int64(st, 3)) != 0) {
            snprintf(err, errlen, "out of memory listing subscriptions");
            return -1;
        }
    }
    return rc == SQLITE_DONE ? 0
                             : topics_error(t, "subscriptions", err, errlen);
}

int sq_subscriptions(tm_store_t *store, const char *topic,
                     tm_subscription_t **out, size_t *n, char *err,
                     size_t errlen)
{
    sq_topics_t *t = sq_store_topics(store);
    const char *sql =
        topic ? "SELECT topic, target, remark, created_ms FROM subscription"
                " WHERE topic=?1 ORDER BY topic, created_ms, target"
              : "SELECT topic, target, remark, created_ms FROM subscription"
                " ORDER BY topic, created_ms, target";
    pthread_mutex_lock(&t->mu);
    sqlite3_stmt *st =
        prepare_texts(t, sql, &topic, topic ? 1 : 0, err, errlen);
    int rc = st ? collect(t, st, out, n, err, errlen) : -1;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&t->mu);
    if (rc != 0) {
        tm_subscriptions_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
