/*
 * tm_store_sqlite_topics: what the SQLite engine's two files share about
 * topics — the subscription table's DDL (the schema and the 2 -> 3 upgrade
 * both create it), the topics connection, and the three engine ops. Only
 * tm_store_sqlite*.c include this file.
 *
 * Threads: subscriptions are read and written on a connection of their
 * own under its mutex, never on the store thread's writer, so a
 * subscribe from any thread waits for at most one group commit (busy
 * timeout) and the store thread waits for at most one subscribe; neither
 * holds anything the other needs while it waits.
 */
#ifndef TM_STORE_SQLITE_TOPICS_H
#define TM_STORE_SQLITE_TOPICS_H

#include <pthread.h>
#include <sqlite3.h>

#include "tm_store_impl.h"

/* The subscription table (schema version 3). */
#define SQ_SUBSCRIPTION_TABLE_SQL                                              \
    "CREATE TABLE IF NOT EXISTS subscription("                                 \
    " topic TEXT NOT NULL, target TEXT NOT NULL, remark TEXT NOT NULL,"        \
    " created_ms INTEGER NOT NULL,"                                            \
    " PRIMARY KEY(topic, target)) WITHOUT ROWID;"

/* The topics connection: opened by tm_store_sqlite_open with the same
 * settings as the writer (WAL, synchronous FULL, busy timeout), used only
 * under mu. */
typedef struct {
    sqlite3 *db;
    pthread_mutex_t mu;
} sq_topics_t;

/* The topics connection of an open SQLite store (tm_store_sqlite.c). */
sq_topics_t *sq_store_topics(tm_store_t *store);

/* The engine ops (tm_store_impl.h), any thread. */
int sq_subscribe(tm_store_t *store, const char *topic, const char *target,
                 const char *remark, int64_t now_ms, char *err, size_t errlen);
int sq_unsubscribe(tm_store_t *store, const char *topic, const char *target,
                   char *err, size_t errlen);
int sq_subscriptions(tm_store_t *store, const char *topic,
                     tm_subscription_t **out, size_t *n, char *err,
                     size_t errlen);

#endif /* TM_STORE_SQLITE_TOPICS_H */
