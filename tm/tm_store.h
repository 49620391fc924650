/*
 * tm_store: durable storage of transactions, behind a narrow interface.
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
 * The embedded engine is SQLite in WAL mode with synchronous=FULL, in the
 * file trellis.db under the data directory. A MySQL engine will implement
 * the same functions. If a commit fails the process exits: state in memory
 * would be ahead of storage, and restarting from storage is the safe path.
 *
 * Threads: every function may be called from any thread. Reads use their
 * own connection and see committed data only.
 */
#ifndef TM_STORE_H
#define TM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "tm_trans.h"

typedef struct tm_store tm_store_t;
typedef struct tm_write tm_write_t;

typedef void (*tm_store_done_fn)(void *arg);

/* Open (creating if needed) the store under dir and start its thread.
 * *out is the caller's: tm_store_close. Returns 0, or -1 with err. */
int tm_store_open(const char *dir, tm_store_t **out, char *err, size_t errlen);
/* Commit everything queued, stop the thread, close. */
void tm_store_close(tm_store_t *s);

/* Capture the transaction's unsaved changes: its header always, branches
 * not yet stored (with all their ops), and ops marked dirty. Clears those
 * marks. insert: the transaction row is new. Returns NULL on out of memory.
 * The write is owned by the caller until queued. */
tm_write_t *tm_write_capture(tm_trans_t *tx, int insert);

/* Queue w (ownership passes to the store); done(arg) runs on the store
 * thread after the commit that includes it. */
void tm_store_queue(tm_store_t *s, tm_write_t *w, tm_store_done_fn done,
                    void *arg);

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

/* Call fn once per unfinished transaction (prepared, submitted, aborting);
 * fn takes ownership of tx. Returns the count, or -1 on error. */
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

typedef struct {
    uint64_t commits;
    uint64_t writes;
    uint64_t max_batch;
} tm_store_stats_t;

void tm_store_stats(tm_store_t *s, tm_store_stats_t *out);

#endif /* TM_STORE_H */
