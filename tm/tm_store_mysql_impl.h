/*
 * tm_store_mysql_impl: what the files of the MySQL/MariaDB engine share —
 * the engine's state (my_store_t), the SQL text buffer, and the functions
 * one file of the engine calls in another. Only tm_store_mysql*.c include
 * this file; everything here carries the engine's prefix my_ (libmariadb
 * exports none of that name).
 *
 * The engine, file by file:
 *  - tm_store_mysql.c: settings, open and close, the function table;
 *  - tm_store_mysql_conn.c: the SQL text buffer, sessions, running SQL,
 *    the schema (create, upgrade), the node lock, the packet limit;
 *  - tm_store_mysql_write.c: group commit on the writer (store thread);
 *  - tm_store_mysql_batch.c: a group's statements in one round trip, when
 *    nothing of it is refused (store thread);
 *  - tm_store_mysql_bulk.c: the same bet as prepared statements with array
 *    binding, where the server has MariaDB's bulk execution (store thread);
 *  - tm_store_mysql_read.c: the readers (peek, get, list, load unfinished);
 *  - tm_store_mysql_topics.c: subscriptions, on the readers;
 *  - tm_store_mysql_lease.c: the lease thread (renewals, claims, retention)
 *    and the release of leases at shutdown.
 * Row -> model decoding is tm_store_codec.c's, shared with SQLite.
 *
 * Connections and their threads: wdb is the store thread's only (and
 * open's, before the thread starts); ldb the lease thread's only (and
 * open's); each reader is used under its own mutex (my_reader_take).
 */
#ifndef TM_STORE_MYSQL_IMPL_H
#define TM_STORE_MYSQL_IMPL_H

#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tm_store_impl.h"

#define N_READERS 4
/* Send what a group has built once its SQL passes this size (or a quarter
 * of the server's max_allowed_packet, if that is smaller). */
#define FLUSH_BYTES (4u << 20)
/* Room a statement keeps below max_allowed_packet for its SQL around the
 * row values, and what a branch payload may take of the rest (it goes in
 * hex: two bytes a byte) — the bound tm_store_max_payload reports. */
#define PACKET_SLACK (64u << 10)

/* The database's clock in ms: every time that decides ownership. */
#define DB_NOW "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"

/* ---- SQL text buffer (tm_store_mysql_conn.c) -------------------------- */

/* SQL text under construction. Owns p (free it); {0} is an empty buffer.
 * Values go in as hex literals: no escaping, no character-set surprises.
 * Out of memory while building SQL ends the process (exit 71). */
typedef struct {
    char *p;
    size_t len, cap;
} my_sql_t;

void my_sql_printf(my_sql_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* X'...' for bytes, NULL for a NULL pointer. */
void my_sql_hex(my_sql_t *b, const void *data, size_t len);
/* A NUL-terminated string as my_sql_hex (NULL stays NULL). */
void my_sql_str(my_sql_t *b, const char *s);
/* Empty the buffer, keeping its memory. */
void my_sql_reset(my_sql_t *b);

/* ---- the engine's state ----------------------------------------------- */

typedef struct {
    MYSQL *db; /* NULL until connected, and after a failure */
    pthread_mutex_t mu;
} my_reader_t;

/* The writer's prepared statements (tm_store_mysql_bulk.c). */
enum { MY_BULK_INSERT, MY_BULK_UPDATE, MY_BULK_BRANCH, MY_BULK_OP, MY_BULK_N };

typedef struct {
    tm_store_t *store;
    char host[256], socket[1024], user[128], password[256], database[128];
    char node_id[64];
    unsigned port;
    int64_t lease_ms;

    MYSQL *wdb; /* store thread only */
    my_sql_t wsql;
    size_t flush_bytes;  /* see FLUSH_BYTES */
    size_t packet_bytes; /* the server's max_allowed_packet (writer) */
    size_t oversize;     /* a statement this large was not sent (0: none) */
    /* Prepared on wdb for bulk execution (store thread only): NULL until
     * the first group of a session; bulk_state 0 unknown, 1 ready, -1 the
     * session keeps to SQL text. my_bulk_drop after wdb is closed. */
    MYSQL_STMT *bulk_stmt[MY_BULK_N];
    int bulk_state;
    my_reader_t readers[N_READERS];
    atomic_uint next_reader;
    MYSQL *ldb;                 /* lease thread (and open) only */
    unsigned long lock_session; /* server session that took the node lock */

    /* Monotonic ms until which every lease of this node is surely valid. */
    _Atomic int64_t valid_until;
    atomic_int released;

    pthread_mutex_t lmu;
    pthread_cond_t lcv;
    int stopping;      /* under lmu */
    int hooks_set;     /* under lmu */
    int lapse_pending; /* under lmu: a lapse before the hooks were set */
    tm_store_owner_hooks_t hooks;
    int lease_thread_started;
    pthread_t lease_thread;
    /* Retention (tm_store_mysql_purge.c): its thread, and its connection
     * (that thread's only). Stops with stopping, like the lease thread. */
    MYSQL *pdb;
    int purge_thread_started;
    pthread_t purge_thread;
} my_store_t;

/* ---- sessions and schema (tm_store_mysql_conn.c) ---------------------- */

/* Fill err with what failed on db (db may be NULL). */
void my_error(MYSQL *db, const char *what, char *err, size_t errlen);

/* A new session (the caller owns it: mysql_close): READ COMMITTED,
 * autocommit as given, multi-statements and found-rows. NULL with err. */
MYSQL *my_connect(my_store_t *m, int autocommit, char *err, size_t errlen);

/* Run sql (one or more statements), discarding results; affected rows of
 * each statement go into counts[0..max) when counts is not NULL. Returns
 * the number of statement results read, or -1 (the connection's error
 * tells why). */
int my_run(MYSQL *db, const char *sql, size_t len, uint64_t *counts, int max);
/* my_run of a NUL-terminated text: 0, or -1. */
int my_exec(MYSQL *db, const char *sql);

/* CREATE DATABASE IF NOT EXISTS on a session of its own. 0, or -1 with
 * err. */
int my_ensure_database(my_store_t *m, char *err, size_t errlen);
/* Create the schema on db, upgrading an older version first; refuses a
 * version this code does not know. 0, or -1 with err. */
int my_create_schema(my_store_t *m, MYSQL *db, char *err, size_t errlen);

/* The SQL expression naming this node's lock, appended to b. */
void my_node_lock_name(const my_store_t *m, my_sql_t *b);
/* Take the node lock on db, waiting up to wait_s for a dead predecessor's
 * session to go away. Returns 0, or -1 with err. */
int my_take_node_lock(my_store_t *m, MYSQL *db, int wait_s, char *err,
                      size_t errlen);

/* Size the writer's statements to the server's packet limit (on wdb). */
void my_read_packet_limit(my_store_t *m);

void my_sleep_ms(int64_t ms);

/* ---- group commit (tm_store_mysql_write.c), store thread -------------- */

int my_commit_group(tm_store_t *store, tm_write_t *group, int retry, char *err,
                    size_t errlen);
/* What the write-by-write path and the one-round-trip path share: running
 * the writer's SQL (refusing what exceeds the packet limit: m->oversize),
 * the head of the header INSERT and one row of it, and the branch and op
 * rows of the writes whose headers applied, appended to b (sending what is
 * built first when it grows large, if may_send; 0, or -1 when a send
 * failed). */
int my_writer_run(my_store_t *m, const my_sql_t *b, uint64_t *counts, int max);
extern const char *const my_trans_insert_head;
void my_append_insert_values(my_sql_t *b, const my_store_t *m,
                             const tm_write_t *w);
int my_append_rows(my_store_t *m, my_sql_t *b, tm_write_t *group, int may_send);

/* ---- a group in one round trip (tm_store_mysql_batch.c) --------------- */

/* Apply the n writes of group on the writer (not committed) in one round
 * trip of multi-row statements, betting that every header applies.
 * Returns 0 when it won (every write DONE; the caller commits), 1 when it
 * lost or the group does not fit one round trip (nothing of it applied;
 * take the write-by-write path), -1 on an error (the connection's error
 * tells why). */
int my_apply_group_at_once(my_store_t *m, tm_write_t *group, size_t n);
uint32_t my_max_payload(tm_store_t *store, char *why, size_t len);

/* ---- a group as bulk executions (tm_store_mysql_bulk.c) --------------- */

/* my_apply_group_at_once's bet with prepared statements and array
 * binding: 0 won, 1 lost or too large (write by write), 2 when the
 * session cannot run them (MySQL: take the SQL text at once), -1 on an
 * error. */
int my_apply_group_bulk(my_store_t *m, tm_write_t *group);
/* Free the writer's prepared statements; call after closing wdb (they
 * are then only freed), or before it. */
void my_bulk_drop(my_store_t *m);

/* ---- reads (tm_store_mysql_read.c), any thread ------------------------ */

/* A reader, locked for the caller until my_reader_give. */
my_reader_t *my_reader_take(my_store_t *m);
void my_reader_give(my_reader_t *r);
/* Send sql on the reader, connecting (again) if needed; one retry on a
 * fresh session covers a database restart. Returns 0, or -1 with err. */
int my_reader_send(my_store_t *m, my_reader_t *r, const char *sql, size_t len,
                   char *err, size_t errlen);

/* The first column of every row of the result on db, as owned strings
 * (free with my_free_gids); NULL with *n = 0 when there is no result. */
char **my_collect_gids(MYSQL *db, size_t *n);
void my_free_gids(char **gids, size_t n);

/* The reads of one transaction, in one round trip and one snapshot; then
 * reading their results once sent on db. my_read_get_results returns 1
 * with *out (the caller's), 0 when not found, -1 with err. */
void my_build_get_sql(my_sql_t *b, const char *gid);
int my_read_get_results(MYSQL *db, tm_trans_t **out, char *err, size_t errlen);

int my_peek(tm_store_t *store, const char *gid, tm_tx_status_t *status,
            uint64_t *submit_hash, char *err, size_t errlen);
int my_get(tm_store_t *store, const char *gid, tm_trans_t **out, char *err,
           size_t errlen);
long my_load_unfinished(tm_store_t *store, tm_store_each_fn fn, void *arg,
                        char *err, size_t errlen);
int my_list(tm_store_t *store, const tm_store_filter_t *f, tm_trans_t ***out,
            size_t *n, char *err, size_t errlen);

/* ---- topics (tm_store_mysql_topics.c), any thread -------------------- */

int my_subscribe(tm_store_t *store, const char *topic, const char *target,
                 const char *remark, int64_t now_ms, char *err, size_t errlen);
int my_unsubscribe(tm_store_t *store, const char *topic, const char *target,
                   char *err, size_t errlen);
int my_subscriptions(tm_store_t *store, const char *topic,
                     tm_subscription_t **out, size_t *n, char *err,
                     size_t errlen);

/* ---- leases (tm_store_mysql_lease.c) ---------------------------------- */

/* Extend this node's leases that end within half a lease, on ldb (the
 * lease thread's, or open's before it starts); *valid_until: until when
 * all of them surely last. Returns 0, or -1. */
int my_renew_leases(my_store_t *m, int64_t *valid_until);
/* Wait up to ms, or until m->stopping; returns 1 when stopping (the lease
 * and purge threads' sleep). */
int my_wait_stopping(my_store_t *m, int64_t ms);
/* The lease thread (arg: the my_store_t), until m->stopping. */
void *my_lease_thread_main(void *arg);

void my_start_ownership(tm_store_t *store, const tm_store_owner_hooks_t *h);
/* Append "(gid,gid,...)" (each quoted) to b. */
void my_sql_gid_list(my_sql_t *b, char **gids, size_t n);

/* ---- retention (tm_store_mysql_purge.c) -------------------------------- */

/* The purge thread (arg: the my_store_t), until m->stopping: deletes
 * finished transactions older than the store's retention_ms (started only
 * when it is not 0). */
void *my_purge_thread_main(void *arg);
int my_lease_ok(tm_store_t *store);
void my_release_leases(tm_store_t *store);

#endif /* TM_STORE_MYSQL_IMPL_H */
