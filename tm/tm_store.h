/*
 * tm_store: durable storage of transactions, behind a narrow interface with
 * two engines: SQLite (embedded, the default) and MySQL/MariaDB (shared by
 * many trellisd nodes).
 *
 * The engine never touches SQL. It captures what an event changed into a
 * tm_write_t (a self-contained copy: the transaction may change again while
 * the write waits) and queues it; a single store thread takes every write
 * queued so far, applies them all in one database transaction, commits
 * (one fsync for the whole group), and only then calls each write's done
 * callback, in queue order. That is both the write-ahead rule (nothing is
 * acted on before its commit) and group commit (concurrent transactions
 * share one commit).
 *
 * Writes commit in the order they were queued; when write N's callback runs,
 * every write queued before N is durable too.
 *
 * Ownership (MySQL engine): every unfinished transaction row names the node
 * that drives it and a lease time. A write of an existing transaction is
 * applied only while this node still owns it; otherwise its callback gets
 * TM_WRITE_LOST and nothing of it was stored. An insert of a gid that some
 * other node already stored gets TM_WRITE_EXISTS. The store renews this
 * node's leases in the background, claims transactions whose lease ran out
 * (handing them to the adopt hook), and calls the lapsed hook when this
 * node's own leases may have run out (a pause, or the database gone for
 * longer than the lease): the engine must then re-confirm each transaction
 * with a write before acting on it again. The SQLite engine has one owner
 * and never reports LOST or EXISTS.
 *
 * Failure, one rule for both engines: a group whose commit fails (disk
 * full, I/O error, database away) is rolled back and applied again with
 * backoff (every statement is idempotent), so a failure only delays
 * commits and loses nothing acknowledged. While commits fail the store is
 * unhealthy (tm_store_healthy): the engine refuses new work at once,
 * health says NOT_SERVING, a metric and a log line say why; the first
 * commit that succeeds makes it healthy again. A write that the database
 * refuses for good (it can never be stored) fails alone with
 * TM_WRITE_FAILED while the rest of its group commits.
 *
 * Final rows are never rewritten: an update of a transaction whose stored
 * status is already SUCCEEDED or FAILED changes nothing and comes back
 * TM_WRITE_FINAL (a stale copy; only a bug gets there), on both engines.
 *
 * Threads: every function may be called from any thread. Reads use their
 * own connections and see committed data only.
 */
#ifndef TM_STORE_H
#define TM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "tm_run.h"
#include "tm_trans.h"
#include "trellis_target.h"

typedef struct tm_store tm_store_t;
typedef struct tm_write tm_write_t;

typedef enum {
    TM_STORE_SQLITE = 1,
    TM_STORE_MYSQL = 2,
} tm_store_kind_t;

typedef struct {
    tm_store_kind_t kind;
    const char *data_dir; /* SQLite: directory of trellis.db */
    /* MySQL: where and as whom; socket wins over host:port when set. */
    const char *mysql_host;
    unsigned mysql_port;
    const char *mysql_socket;
    const char *mysql_user;
    const char *mysql_password;
    const char *mysql_database; /* created if missing */
    /* MySQL: this node's name in the owner column; unique among live
     * nodes (a second process with the same name is refused at start). */
    const char *node_id;
    uint32_t lease_ms; /* MySQL: how long an owner's claim lasts */
    /* Both: finished transactions older than this are deleted, in small
     * batches (0: keep forever). */
    uint64_t retention_ms;
} tm_store_config_t;

void tm_store_config_default(tm_store_config_t *c);

/* Open the configured engine (creating its schema if the database is empty,
 * refusing a schema version it does not know) and start its threads. *out
 * is the caller's: tm_store_close. Returns 0, or -1 with err. */
int tm_store_open(const tm_store_config_t *cfg, tm_store_t **out, char *err,
                  size_t errlen);
/* Commit everything queued, stop the threads, close. */
void tm_store_close(tm_store_t *s);

/* "sqlite" or "mysql". Static storage. */
const char *tm_store_kind_name(const tm_store_t *s);

/* Capture the transaction's unsaved changes, as its runtime marks (run,
 * fitted to tx) say: its header always, branches not yet stored (with all
 * their ops), and ops marked dirty. Marks those branches stored and clears
 * those dirty marks. insert: the transaction row is new. Returns NULL on
 * out of memory (marks unchanged but for what was captured). The write is
 * owned by the caller until queued. */
tm_write_t *tm_write_capture(const tm_trans_t *tx, tm_run_t *run, int insert);

/* A write of the transaction as it stands, for callers that keep no
 * runtime marks (tools, tests): every op that was called or decided (an
 * untouched op needs no row: it reads back pending, or skipped once the
 * transaction is final); with insert every branch, without none (they are
 * stored). NULL on out of memory. */
tm_write_t *tm_write_capture_all(const tm_trans_t *tx, int insert);

typedef enum {
    TM_WRITE_DONE = 0,   /* committed */
    TM_WRITE_LOST = 1,   /* another node owns the transaction; not stored */
    TM_WRITE_EXISTS = 2, /* insert of a gid another node stored first */
    TM_WRITE_FAILED = 3, /* refused for good by the database; not stored */
    TM_WRITE_FINAL = 4,  /* the stored row is final already; not stored */
} tm_write_result_t;

typedef void (*tm_store_done_fn)(void *arg, tm_write_result_t result);

/* Queue w (ownership passes to the store); done(arg, result) runs on the
 * store thread after the commit that includes it. */
void tm_store_queue(tm_store_t *s, tm_write_t *w, tm_store_done_fn done,
                    void *arg);

/* 1 while commits succeed; 0 while they fail, with why (what the last
 * failure said) copied into why[len] when why is not NULL. */
int tm_store_healthy(tm_store_t *s, char *why, size_t len);

/* Block until everything queued before this call is committed. */
void tm_store_flush(tm_store_t *s);

/* Status and submit hash of a stored transaction. Returns 1 found, 0 not
 * found, -1 on error (err filled). */
int tm_store_peek(tm_store_t *s, const char *gid, tm_tx_status_t *status,
                  uint64_t *submit_hash, char *err, size_t errlen);

/* The whole stored transaction. Returns 1 with *out (the caller's:
 * tm_trans_free), 0 not found, -1 on error. */
int tm_store_get(tm_store_t *s, const char *gid, tm_trans_t **out, char *err,
                 size_t errlen);

/* Call fn once per unfinished transaction this node drives (all of them
 * for SQLite; for MySQL those whose owner is this node_id, left by its
 * previous run); fn takes ownership of tx. Returns the count, or -1. */
typedef void (*tm_store_each_fn)(tm_trans_t *tx, void *arg);
long tm_store_load_unfinished(tm_store_t *s, tm_store_each_fn fn, void *arg,
                              char *err, size_t errlen);

typedef struct {
    tm_tx_status_t status; /* 0: any */
    int64_t created_after_ms;
    int64_t created_before_ms;
    uint32_t limit;
    int64_t after_created_ms; /* keyset cursor: (created_ms, gid) > this */
    const char *after_gid;    /* NULL: from the start */
} tm_store_filter_t;

/* Up to f->limit transactions (without branches) ordered by (created_ms,
 * gid). *out is an array of *n transactions, the caller's: free each with
 * tm_trans_free and the array with free. Returns 0, or -1 on error. */
int tm_store_list(tm_store_t *s, const tm_store_filter_t *f, tm_trans_t ***out,
                  size_t *n, char *err, size_t errlen);

/* ---- topics ---------------------------------------------------------------
 * A subscription is a (topic, target) pair: a message step that names the
 * topic is delivered to every subscribed target. Subscriptions are shared
 * by every node of a MySQL store. Each call below is its own short
 * database transaction, committed (durable) before it returns; none goes
 * through the write queue. */

/* The longest topic, target and remark (bytes) a store keeps: both
 * engines refuse longer ones alike (the MySQL columns are this wide). */
#define TM_STORE_TOPIC_MAX 64
#define TM_STORE_TARGET_MAX                                                    \
    (TRELLIS_TARGET_HOSTPORT_MAX + TRELLIS_TARGET_METHOD_MAX)
#define TM_STORE_REMARK_MAX 256

typedef struct {
    char *topic;  /* owned */
    char *target; /* owned */
    char *remark; /* owned; never NULL ("" when none) */
    int64_t created_ms;
} tm_subscription_t;

/* Subscribe target to topic. Returns 1 created, 0 the pair was there
 * already (its remark unchanged), -1 on error (err filled): an empty or
 * too long topic or target, a too long remark (NULL: ""), or the
 * database's. Topics and targets compare byte for byte. */
int tm_store_subscribe(tm_store_t *s, const char *topic, const char *target,
                       const char *remark, int64_t now_ms, char *err,
                       size_t errlen);

/* Returns 1 removed, 0 no such subscription, -1 on error (the same
 * checks of topic and target as subscribe). */
int tm_store_unsubscribe(tm_store_t *s, const char *topic, const char *target,
                         char *err, size_t errlen);

/* The subscriptions of topic (NULL or "": of every topic), ordered by
 * topic, then created_ms, then target. *out is an array of *n, the
 * caller's: tm_subscriptions_free. Returns 0, or -1 on error. */
int tm_store_subscriptions(tm_store_t *s, const char *topic,
                           tm_subscription_t **out, size_t *n, char *err,
                           size_t errlen);

/* Frees the n subscriptions of v and v itself (NULL is fine). */
void tm_subscriptions_free(tm_subscription_t *v, size_t n);

/* ---- ownership (MySQL; harmless no-ops for SQLite) ---------------------- */

typedef struct {
    /* A transaction claimed from a node whose lease ran out; adopt takes
     * ownership of tx. Called on the store's lease thread. */
    void (*adopt)(tm_trans_t *tx, void *arg);
    /* This node's leases may have run out: before acting on any
     * transaction it holds, confirm ownership with a write. Called on the
     * lease thread before tm_store_lease_ok turns true again. */
    void (*lapsed)(void *arg);
    void *arg;
} tm_store_owner_hooks_t;

/* Set the hooks and start claiming expired transactions (call once the
 * engine can drive them). */
void tm_store_start_ownership(tm_store_t *s, const tm_store_owner_hooks_t *h);

/* The largest branch payload (bytes) this store can hold — MySQL: from
 * the server's max_allowed_packet read at open — with why[len] saying so;
 * UINT32_MAX (why "") when the engine sets no bound of its own. */
uint32_t tm_store_max_payload(tm_store_t *s, char *why, size_t len);

/* 1 while this node's leases are surely valid (always for SQLite): the
 * engine calls participants only then. */
int tm_store_lease_ok(tm_store_t *s);

/* Give up every lease this node holds so other nodes claim its unfinished
 * transactions at once (graceful shutdown; after tm_store_flush). */
void tm_store_release_leases(tm_store_t *s);

typedef struct {
    uint64_t commits;
    uint64_t writes;
    uint64_t max_batch;
    uint64_t lost;       /* writes refused: another node owned the tx */
    uint64_t claimed;    /* transactions taken over from other nodes */
    uint64_t purged;     /* finished transactions deleted by retention */
    uint64_t reconnects; /* database connections re-established */
} tm_store_stats_t;

void tm_store_stats(tm_store_t *s, tm_store_stats_t *out);

#endif /* TM_STORE_H */
