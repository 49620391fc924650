/*
 * tm_store_impl: what the storage engines share and what tm_store.c needs
 * from them — the captured write, the engine function table, and the
 * helpers that turn model fields into column values and back. Only
 * tm_store*.c include this file.
 *
 * tm_store.c owns the queue and the store thread (group commit, callbacks
 * in queue order, flush, stats). An engine owns its connections, its SQL,
 * and whatever background work it needs (SQLite: WAL checkpoints; MySQL:
 * leases, claims and retention).
 */
#ifndef TM_STORE_IMPL_H
#define TM_STORE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "tm_store.h"

typedef struct {
    uint32_t branch;
    int slot;
    int status;
    uint32_t attempts;
    char *last_error;
    char *attempt_ms; /* comma-separated text */
    int64_t finished_ms;
    int late;
    int recorded;
    uint8_t *result; /* NULL when empty */
    size_t result_len;
    uint64_t result_size; /* tm_op_t.result_size */
} tm_w_op_t;

typedef struct {
    uint32_t idx;
    char *branch_id;
    int mode;
    int initiator_driven;
    uint8_t *payload;
    size_t payload_len;
    char *deps; /* comma-separated text */
    int pivot;
    int kind[TM_SLOTS];
    char *target[TM_SLOTS];
} tm_w_branch_t;

struct tm_write {
    tm_write_t *next;
    int insert;
    char gid[TM_GID_MAX + 1];
    int status;
    int64_t created_ms, updated_ms, finished_ms;
    char *reason;
    uint64_t submit_hash;
    uint64_t generation; /* the copy's claim (tm_trans_t.generation) */
    uint8_t *options;    /* packed TransOptions; inserts only */
    size_t options_len;
    tm_w_branch_t *branches;
    size_t n_branches;
    tm_w_op_t *ops;
    size_t n_ops;
    tm_write_result_t result; /* set by the engine's commit_group */
    tm_store_done_fn done;
    void *arg;
};

/* Free a write and everything it holds. */
void tm_write_free(tm_write_t *w);

/* tm_tx_is_final's rule in SQL, for a status column: what both engines'
 * statements use. The final statuses are those from TM_STORE_FIRST_FINAL
 * on (a literal, so the SQL text can hold it); the assertion ties that to
 * tm_tx_status_t. */
#define TM_STORE_FIRST_FINAL 4
_Static_assert(TM_TX_ABORTING < TM_STORE_FIRST_FINAL &&
                   TM_TX_SUCCEEDED == TM_STORE_FIRST_FINAL &&
                   TM_TX_FAILED == TM_STORE_FIRST_FINAL + 1,
               "TM_STORE_FIRST_FINAL must split tm_tx_status_t at final");
#define TM_STORE_SQL_TEXT_(x) #x
#define TM_STORE_SQL_TEXT(x) TM_STORE_SQL_TEXT_(x)
#define TM_STORE_SQL_UNFINISHED                                                \
    "status < " TM_STORE_SQL_TEXT(TM_STORE_FIRST_FINAL)
#define TM_STORE_SQL_FINAL "status >= " TM_STORE_SQL_TEXT(TM_STORE_FIRST_FINAL)

/* "1,2,3" <-> arrays. The strings are the caller's (free); the arrays too.
 * The split functions return NULL with *n = 0 for an empty text. */
char *tm_store_join_u32(const uint32_t *v, size_t n);
uint32_t *tm_store_split_u32(const char *text, size_t *n);
int64_t *tm_store_split_i64(const char *text, uint32_t *n);

/* 1 when the stored schema version text is the version v. The engines
 * upgrade one version at a time: for v from 1 below their own, if the
 * stored version is v, upgrade it to v + 1. */
int tm_store_schema_is(const char *version, int v);

/* Append a copy of a subscription's columns to the array *v of *n (room
 * for *cap; both grow), as the engines' reads collect rows; a NULL remark
 * is "". Returns 0, or -1 out of memory (*v, *n unchanged). */
int tm_store_subscription_add(tm_subscription_t **v, size_t *n, size_t *cap,
                              const char *topic, const char *target,
                              const char *remark, int64_t created_ms);

/* Ops still pending in a finished transaction were never called: the
 * engine does not write them, so a loaded transaction marks them here. */
void tm_store_mark_skipped_if_finished(tm_trans_t *tx);

/* Decode a stored options blob into tx->opts (ignored if it does not
 * decode: the defaults stay). */
void tm_store_decode_options(tm_trans_t *tx, const void *blob, size_t len);

typedef struct {
    /* Apply and commit a group of writes (linked by next), setting each
     * write's result. Returns 0 once the group is durable, or -1 with err
     * when nothing of it is stored (disk full, I/O error, database away):
     * the store thread then marks the store unhealthy, backs off and
     * applies the same group again (attempt counts the tries before this
     * one), so an engine must make a retried group idempotent. Store
     * thread only. */
    int (*commit_group)(tm_store_t *s, tm_write_t *group, int attempt,
                        char *err, size_t errlen);
    /* Background upkeep on the store thread between groups (SQLite:
     * retention): about once a second, or - while it returns 1, work
     * left - again after twice the time the step took, so a backlog goes
     * in short slices on at most a third of the thread. Returns 0 when
     * done for now. May be NULL. */
    int (*maintain)(tm_store_t *s);
    int (*peek)(tm_store_t *s, const char *gid, tm_tx_status_t *status,
                uint64_t *submit_hash, char *err, size_t errlen);
    int (*get)(tm_store_t *s, const char *gid, tm_trans_t **out, char *err,
               size_t errlen);
    long (*load_unfinished)(tm_store_t *s, tm_store_each_fn fn, void *arg,
                            char *err, size_t errlen);
    int (*list)(tm_store_t *s, const tm_store_filter_t *f, tm_trans_t ***out,
                size_t *n, char *err, size_t errlen);
    /* Ownership; NULL for an engine with a single owner. */
    /* Topics (tm_store.h); each its own committed transaction. */
    int (*subscribe)(tm_store_t *s, const char *topic, const char *target,
                     const char *remark, int64_t now_ms, char *err,
                     size_t errlen);
    int (*unsubscribe)(tm_store_t *s, const char *topic, const char *target,
                       char *err, size_t errlen);
    int (*subscriptions)(tm_store_t *s, const char *topic,
                         tm_subscription_t **out, size_t *n, char *err,
                         size_t errlen);
    void (*start_ownership)(tm_store_t *s, const tm_store_owner_hooks_t *h);
    int (*lease_ok)(tm_store_t *s);
    void (*release_leases)(tm_store_t *s);
    /* The largest branch payload the engine can store, why[len] saying
     * what bounds it. NULL: no bound below --max-payload's own. */
    uint32_t (*max_payload)(tm_store_t *s, char *why, size_t len);
    /* Stop background threads and free the engine (the store thread has
     * already stopped). */
    void (*close)(tm_store_t *s);
} tm_store_ops_t;

struct tm_store {
    const tm_store_ops_t *ops;
    const char *kind_name;
    void *impl;            /* the engine's own state */
    uint64_t retention_ms; /* copied from the config */

    pthread_mutex_t qmu;
    pthread_cond_t qcv;     /* work queued, or stopping */
    pthread_cond_t drained; /* a group's callbacks ran */
    tm_write_t *head, *tail;
    uint64_t queued_seq, done_seq;
    int stopping;
    pthread_t thread;
    tm_store_stats_t stats; /* under qmu */

    /* Committed writes waiting for the callback thread; under qmu. */
    tm_write_t *cb_head, *cb_tail;
    pthread_cond_t cbcv;
    int cb_stopping;
    pthread_t cb_thread;

    /* Health (under qmu): 0 while commits fail; why says what failed. */
    atomic_int healthy; /* read without qmu on every request */
    char why[256];
};

/* Engine constructors: fill s->ops, s->kind_name and s->impl. Return 0, or
 * -1 with err (nothing left to free). */
int tm_store_sqlite_open(tm_store_t *s, const tm_store_config_t *cfg, char *err,
                         size_t errlen);
int tm_store_mysql_open(tm_store_t *s, const tm_store_config_t *cfg, char *err,
                        size_t errlen);

/* Counters the engines bump (under qmu). */
typedef enum {
    TM_STAT_LOST,
    TM_STAT_CLAIMED,
    TM_STAT_PURGED,
    TM_STAT_RECONNECTS,
} tm_store_stat_t;
void tm_store_count(tm_store_t *s, tm_store_stat_t which, uint64_t n);

/* An engine that retries inside commit_group (reconnecting) reports each
 * failed attempt and the first success, so health and the refusal of new
 * work follow one rule for every engine. Any thread. */
void tm_store_note_failure(tm_store_t *s, const char *why);
void tm_store_note_success(tm_store_t *s);

#endif /* TM_STORE_IMPL_H */
