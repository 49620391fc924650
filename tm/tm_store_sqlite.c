/*
 * tm_store_sqlite: the embedded storage engine (SQLite, WAL, synchronous
 * FULL) with one store thread doing group commit. See tm_store.h for the
 * contract and docs/architecture.md for the schema.
 *
 * Connections: the writer, used only by the store thread; a reader guarded
 * by a mutex for peeks, queries, lists and recovery (in WAL mode it sees
 * the last committed state and never blocks the writer); the
 * checkpointer's; and the topics connection (tm_store_sqlite_topics.c).
 */
#include "tm_exit.h"
#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_store_codec.h"
#include "tm_store_impl.h"
#include "tm_store_sqlite_topics.h"
#include "tm_timer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHEMA_VERSION "5"

/* WAL frames (pages) after which the checkpointer runs, and after which it
 * insists (RESTART: waits for the writer) so the WAL cannot grow forever. */
#define CHECKPOINT_FRAMES 4000
#define CHECKPOINT_FORCE_FRAMES 50000

enum {
    ST_INSERT_TRANS,
    ST_UPDATE_TRANS,
    ST_UPSERT_BRANCH,
    ST_UPSERT_OP,
    ST_BEGIN,
    ST_COMMIT,
    N_WRITE_STMTS
};

typedef struct {
    sqlite3 *wdb;
    sqlite3 *rdb;
    sqlite3_stmt *wst[N_WRITE_STMTS];
    pthread_mutex_t rmu;
    sqlite3_stmt *peek; /* on rdb, under rmu: the hot read of every Submit */
    /* On rdb, under rmu: a whole transaction's three reads (Query, and
     * every transaction loaded at start: preparing them per read was half
     * of a start with 100,000 unfinished ones). */
    sqlite3_stmt *get_trans, *get_branches, *get_ops;
    /* On rdb, under rmu: the read transaction around those three, so they
     * see one commit's state (each statement alone would take its own
     * snapshot, and a commit in between would tear the transaction). */
    sqlite3_stmt *rd_begin, *rd_commit;

    /* The checkpointer copies the WAL into the database on its own
     * connection, off the commit path. */
    sqlite3 *cdb;
    pthread_mutex_t cmu;
    pthread_cond_t ccv;
    int wal_frames; /* frames in the WAL after the last commit; under cmu */
    int closing;    /* under cmu */
    pthread_t ckpt_thread;

    sq_topics_t topics;
} sq_store_t;

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS trans("
    " gid TEXT PRIMARY KEY, status INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " finished_ms INTEGER NOT NULL DEFAULT 0, reason TEXT,"
    " submit_hash INTEGER NOT NULL DEFAULT 0, options BLOB) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS trans_by_created ON trans(created_ms, gid);"
    "CREATE INDEX IF NOT EXISTS trans_by_status ON trans(status, created_ms,"
    " gid);"
    "CREATE TABLE IF NOT EXISTS branch("
    " gid TEXT NOT NULL, idx INTEGER NOT NULL, branch_id TEXT NOT NULL,"
    " mode INTEGER NOT NULL, initiator_driven INTEGER NOT NULL,"
    " payload BLOB, depends_on TEXT NOT NULL,"
    " kind0 INTEGER NOT NULL, target0 TEXT, kind1 INTEGER NOT NULL,"
    " target1 TEXT, kind2 INTEGER NOT NULL, target2 TEXT,"
    " pivot INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(gid, idx)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS op("
    " gid TEXT NOT NULL, idx INTEGER NOT NULL, slot INTEGER NOT NULL,"
    " status INTEGER NOT NULL, attempts INTEGER NOT NULL, last_error TEXT,"
    " attempt_ms TEXT, finished_ms INTEGER NOT NULL,"
    " late INTEGER NOT NULL DEFAULT 0,"
    " recorded INTEGER NOT NULL DEFAULT 0, result BLOB,"
    " result_size INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(gid, idx, slot)) WITHOUT ROWID;" SQ_SUBSCRIPTION_TABLE_SQL;

/* What upgrades schema version v to v + 1 (index v - 1), each one
 * transaction with the new version: a crash leaves the old version
 * without the change. 1 -> 2: an op's recorded result (workflow steps).
 * 2 -> 3: the subscription table (topics). 3 -> 4: a branch's pivot flag
 * and an op's result_size (the full size of a reply whose first bytes
 * result keeps: issue 16's compensation log). 4 -> 5: the index a List by
 * status pages through (trans_by_status: one page costs the same however
 * many transactions of other statuses there are), which also serves the
 * load of unfinished ones at start, in place of the partial index
 * trans_unfinished. */
static const char *const upgrade_sql[] = {
    "BEGIN IMMEDIATE;"
    "ALTER TABLE op ADD COLUMN recorded INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE op ADD COLUMN result BLOB;"
    "UPDATE meta SET value='2' WHERE key='schema' AND value='1';"
    "COMMIT;",
    "BEGIN IMMEDIATE;" SQ_SUBSCRIPTION_TABLE_SQL
    "UPDATE meta SET value='3' WHERE key='schema' AND value='2';"
    "COMMIT;",
    "BEGIN IMMEDIATE;"
    "ALTER TABLE branch ADD COLUMN pivot INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE op ADD COLUMN result_size INTEGER NOT NULL DEFAULT 0;"
    "UPDATE meta SET value='4' WHERE key='schema' AND value='3';"
    "COMMIT;",
    "BEGIN IMMEDIATE;"
    "CREATE INDEX IF NOT EXISTS trans_by_status ON trans(status, created_ms,"
    " gid);"
    "DROP INDEX IF EXISTS trans_unfinished;"
    "UPDATE meta SET value='5' WHERE key='schema' AND value='4';"
    "COMMIT;",
};

static const char *write_sql[N_WRITE_STMTS] = {
    [ST_INSERT_TRANS] =
        "INSERT OR IGNORE INTO trans(gid,status,created_ms,updated_ms,"
        "finished_ms,"
        "reason,submit_hash,options) VALUES(?,?,?,?,?,?,?,?)",
    [ST_UPDATE_TRANS] = "UPDATE trans SET status=?2, updated_ms=?3,"
                        " finished_ms=?4, reason=?5, submit_hash=?6"
                        " WHERE gid=?1 AND " TM_STORE_SQL_UNFINISHED,
    [ST_UPSERT_BRANCH] = "INSERT OR REPLACE INTO branch(gid,idx,branch_id,"
                         "mode,initiator_driven,payload,depends_on,kind0,"
                         "target0,kind1,target1,kind2,target2,pivot)"
                         " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_UPSERT_OP] = "INSERT OR REPLACE INTO op(gid,idx,slot,status,"
                     "attempts,last_error,attempt_ms,finished_ms,late,"
                     "recorded,result,result_size)"
                     " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
};

/* ---- applying writes (store thread) ------------------------------------- */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

static int apply_header(sq_store_t *s, const tm_write_t *w)
{
    sqlite3_stmt *st = s->wst[w->insert ? ST_INSERT_TRANS : ST_UPDATE_TRANS];
    sqlite3_bind_text(st, 1, w->gid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, w->status);
    if (w->insert) {
        sqlite3_bind_int64(st, 3, w->created_ms);
        sqlite3_bind_int64(st, 4, w->updated_ms);
        sqlite3_bind_int64(st, 5, w->finished_ms);
        bind_text_or_null(st, 6, w->reason);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)w->submit_hash);
        sqlite3_bind_blob(st, 8, w->options, (int)w->options_len,
                          SQLITE_STATIC);
    } else {
        sqlite3_bind_int64(st, 3, w->updated_ms);
        sqlite3_bind_int64(st, 4, w->finished_ms);
        bind_text_or_null(st, 5, w->reason);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)w->submit_hash);
    }
    return step_reset(st);
}

static int apply_branch(sq_store_t *s, const char *gid, const tm_w_branch_t *b)
{
    sqlite3_stmt *st = s->wst[ST_UPSERT_BRANCH];
    sqlite3_bind_text(st, 1, gid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)b->idx);
    sqlite3_bind_text(st, 3, b->branch_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, b->mode);
    sqlite3_bind_int(st, 5, b->initiator_driven);
    sqlite3_bind_blob(st, 6, b->payload ? (const void *)b->payload : "",
                      (int)b->payload_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, b->deps, -1, SQLITE_STATIC);
    for (int k = 0; k < TM_SLOTS; k++) {
        sqlite3_bind_int(st, 8 + 2 * k, b->kind[k]);
        bind_text_or_null(st, 9 + 2 * k, b->target[k]);
    }
    sqlite3_bind_int(st, 14, b->pivot);
    return step_reset(st);
}

static int apply_op(sq_store_t *s, const char *gid, const tm_w_op_t *o)
{
    sqlite3_stmt *st = s->wst[ST_UPSERT_OP];
    sqlite3_bind_text(st, 1, gid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)o->branch);
    sqlite3_bind_int(st, 3, o->slot);
    sqlite3_bind_int(st, 4, o->status);
    sqlite3_bind_int64(st, 5, o->attempts);
    bind_text_or_null(st, 6, o->last_error);
    sqlite3_bind_text(st, 7, o->attempt_ms, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, o->finished_ms);
    sqlite3_bind_int(st, 9, o->late);
    sqlite3_bind_int(st, 10, o->recorded);
    if (o->result)
        sqlite3_bind_blob(st, 11, o->result, (int)o->result_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 11);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)o->result_size);
    return step_reset(st);
}

/* The refusal (EXISTS or FINAL) an earlier write of this group met for
 * w's copy (same gid, same generation: a copy loaded under a newer claim
 * is judged on its own), or DONE when none did. */
static tm_write_result_t gid_refused(const tm_write_t *group,
                                     const tm_write_t *w)
{
    for (const tm_write_t *p = group; p != w; p = p->next)
        if ((p->result == TM_WRITE_EXISTS || p->result == TM_WRITE_FINAL) &&
            p->generation == w->generation && strcmp(p->gid, w->gid) == 0)
            return p->result;
    return TM_WRITE_DONE;
}

/* Apply one write of group. An insert of a gid that is stored already
 * (the engine does not read before inserting) changes nothing and is
 * refused EXISTS; an update of a row whose stored status is final changes
 * nothing and is refused FINAL (the update filters on it: a second fence
 * behind the engine's own checks). Every later write of a refused gid in
 * the group is refused the same way. */
static int apply_write(sq_store_t *s, const tm_write_t *group, tm_write_t *w,
                       int *refusals)
{
    tm_write_result_t earlier = *refusals ? gid_refused(group, w) : 0;
    if (earlier != TM_WRITE_DONE) {
        w->result = earlier;
        return 0;
    }
    int rc = apply_header(s, w);
    if (rc == 0 && sqlite3_changes(s->wdb) == 0) {
        w->result = w->insert ? TM_WRITE_EXISTS : TM_WRITE_FINAL;
        (*refusals)++;
        return 0;
    }
    for (size_t i = 0; rc == 0 && i < w->n_branches; i++)
        rc = apply_branch(s, w->gid, &w->branches[i]);
    for (size_t i = 0; rc == 0 && i < w->n_ops; i++)
        rc = apply_op(s, w->gid, &w->ops[i]);
    return rc;
}

/* A statement of the group failed: roll back what it applied, reset the
 * results, and say why (the store thread retries the whole group). */
static int group_failed(sq_store_t *s, tm_write_t *group, const char *what,
                        int rc, char *err, size_t errlen)
{
    snprintf(err, errlen, "sqlite %s: %s (%d)", what, sqlite3_errmsg(s->wdb),
             rc);
    if (!sqlite3_get_autocommit(s->wdb))
        sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
    for (tm_write_t *w = group; w; w = w->next)
        w->result = TM_WRITE_DONE;
    return -1;
}

/* Apply and commit a group (store thread). On a failure (disk full, I/O
 * error) nothing of it stays: it is rolled back and the store thread
 * applies it again. */
static int sq_commit_group(tm_store_t *store, tm_write_t *group, int attempt,
                           char *err, size_t errlen)
{
    (void)attempt;
    sq_store_t *s = store->impl;
    uint64_t t0 = tm_metrics_now_us(), n = 0;
    int refusals = 0;
    int rc = step_reset(s->wst[ST_BEGIN]);
    if (rc != 0)
        return group_failed(s, group, "begin", rc, err, errlen);
    for (tm_write_t *w = group; w; w = w->next, n++) {
        rc = apply_write(s, group, w, &refusals);
        if (rc != 0)
            return group_failed(s, group, "write", rc, err, errlen);
    }
    rc = step_reset(s->wst[ST_COMMIT]);
    if (rc != 0)
        return group_failed(s, group, "commit", rc, err, errlen);
    tm_metrics_store_commit(tm_metrics_now_us() - t0, n);
    return 0;
}

/* Called by SQLite on the store thread after each commit. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    sq_store_t *s = arg;
    pthread_mutex_lock(&s->cmu);
    s->wal_frames = frames;
    if (frames >= CHECKPOINT_FRAMES)
        pthread_cond_signal(&s->ccv);
    pthread_mutex_unlock(&s->cmu);
    return SQLITE_OK;
}

static void *checkpoint_thread_main(void *arg)
{
    sq_store_t *s = arg;
    pthread_setname_np(pthread_self(), "tm-checkpoint");
    pthread_mutex_lock(&s->cmu);
    for (;;) {
        while (s->wal_frames < CHECKPOINT_FRAMES && !s->closing)
            pthread_cond_wait(&s->ccv, &s->cmu);
        if (s->closing)
            break;
        int mode = s->wal_frames >= CHECKPOINT_FORCE_FRAMES
                       ? SQLITE_CHECKPOINT_RESTART
                       : SQLITE_CHECKPOINT_PASSIVE;
        s->wal_frames = 0;
        pthread_mutex_unlock(&s->cmu);
        sqlite3_wal_checkpoint_v2(s->cdb, NULL, mode, NULL, NULL);
        pthread_mutex_lock(&s->cmu);
    }
    pthread_mutex_unlock(&s->cmu);
    return NULL;
}

/* ---- open / close ------------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s (in: %.60s)", msg ? msg : "?", sql);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* cache_kib: the connection's page cache (the writer's matters most: it
 * keeps the B-tree pages of transactions in flight hot). */
static int open_db(const char *path, sqlite3 **db, int cache_kib, char *err,
                   size_t errlen)
{
    int rc = sqlite3_open_v2(
        path, db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        return -1;
    }
    sqlite3_busy_timeout(*db, 5000);
    char pragmas[160];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
             " PRAGMA foreign_keys=OFF; PRAGMA cache_size=-%d;",
             cache_kib);
    return exec_sql(*db, pragmas, err, errlen);
}

/* The stored schema version in out[len] ("" when none is stored yet).
 * Returns 0, or -1 with err. */
static int read_schema_version(sqlite3 *db, char *out, size_t len, char *err,
                               size_t errlen)
{
    sqlite3_stmt *st;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema'", -1,
                           &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        snprintf(out, len, "%s", v && *v ? v : "(empty)");
    } else if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Upgrade a database of schema version from in place to from + 1 (see
 * upgrade_sql); version[len] then holds the version stored. Returns 0, or
 * -1 with err (nothing changed). */
static int upgrade_schema(sqlite3 *db, int from, char *version, size_t len,
                          char *err, size_t errlen)
{
    char why[256];
    if (exec_sql(db, upgrade_sql[from - 1], why, sizeof(why)) != 0) {
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        snprintf(err, errlen, "upgrading the store schema from version %d: %s",
                 from, why);
        return -1;
    }
    tm_log(TM_LOG_INFO, "event=store_schema_upgraded from=%d to=%d", from,
           from + 1);
    return read_schema_version(db, version, len, err, errlen);
}

/* Upgrade an older schema, one version at a time; refuse one this code
 * does not know, and store the version of a new database. Returns 0, or
 * -1 with err. */
static int check_schema_version(sqlite3 *db, char *err, size_t errlen)
{
    char version[64];
    if (read_schema_version(db, version, sizeof(version), err, errlen) != 0)
        return -1;
    for (int from = 1; from < atoi(SCHEMA_VERSION); from++)
        if (tm_store_schema_is(version, from) &&
            upgrade_schema(db, from, version, sizeof(version), err, errlen))
            return -1;
    if (version[0] && strcmp(version, SCHEMA_VERSION) != 0) {
        snprintf(err, errlen,
                 "store schema version %s is not the one this trellisd "
                 "knows (%s)",
                 version, SCHEMA_VERSION);
        return -1;
    }
    return exec_sql(db,
                    "INSERT OR IGNORE INTO meta(key,value) VALUES('schema',"
                    "'" SCHEMA_VERSION "')",
                    err, errlen);
}

static int prepare_writes(sq_store_t *s, char *err, size_t errlen)
{
    for (int i = 0; i < N_WRITE_STMTS; i++) {
        if (sqlite3_prepare_v2(s->wdb, write_sql[i], -1, &s->wst[i], NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "sqlite prepare: %s", sqlite3_errmsg(s->wdb));
            return -1;
        }
    }
    return 0;
}

static void close_dbs(sq_store_t *s)
{
    for (int i = 0; i < N_WRITE_STMTS; i++)
        sqlite3_finalize(s->wst[i]);
    sqlite3_finalize(s->peek);
    sqlite3_finalize(s->get_trans);
    sqlite3_finalize(s->get_branches);
    sqlite3_finalize(s->get_ops);
    sqlite3_finalize(s->rd_begin);
    sqlite3_finalize(s->rd_commit);
    sqlite3_close(s->topics.db);
    sqlite3_close(s->cdb);
    sqlite3_close(s->wdb);
    sqlite3_close(s->rdb);
}

static const tm_store_ops_t sq_ops;

/* The reader's statements kept prepared. 0, or -1 (rdb's error says). */
static int prepare_reads(sq_store_t *s)
{
    static const char *const sql[6] = {
        "SELECT status, submit_hash FROM trans WHERE gid=?",
        "SELECT " TM_STORE_CODEC_TRANS_COLUMNS " FROM trans WHERE gid=?",
        "SELECT " TM_STORE_CODEC_BRANCH_COLUMNS
        " FROM branch WHERE gid=? ORDER BY idx",
        "SELECT " TM_STORE_CODEC_OP_COLUMNS " FROM op WHERE gid=?",
        "BEGIN",
        "COMMIT"};
    sqlite3_stmt **st[6] = {&s->peek,    &s->get_trans, &s->get_branches,
                            &s->get_ops, &s->rd_begin,  &s->rd_commit};
    for (int i = 0; i < 6; i++)
        if (sqlite3_prepare_v3(s->rdb, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               st[i], NULL) != SQLITE_OK)
            return -1;
    return 0;
}

int tm_store_sqlite_open(tm_store_t *store, const tm_store_config_t *cfg,
                         char *err, size_t errlen)
{
    const char *dir = cfg->data_dir;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data dir %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    sq_store_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/trellis.db", dir);
    if (open_db(path, &s->wdb, 16384, err, errlen) != 0 ||
        exec_sql(s->wdb, schema_sql, err, errlen) != 0 ||
        check_schema_version(s->wdb, err, errlen) != 0 ||
        prepare_writes(s, err, errlen) != 0 ||
        open_db(path, &s->rdb, 8192, err, errlen) != 0)
        goto fail;
    if (prepare_reads(s) != 0) {
        snprintf(err, errlen, "sqlite prepare: %s", sqlite3_errmsg(s->rdb));
        goto fail;
    }
    if (open_db(path, &s->cdb, 2048, err, errlen) != 0 ||
        open_db(path, &s->topics.db, 256, err, errlen) != 0 ||
        exec_sql(s->wdb, "PRAGMA wal_autocheckpoint=0", err, errlen) != 0 ||
        exec_sql(s->topics.db, "PRAGMA wal_autocheckpoint=0", err, errlen) != 0)
        goto fail;
    sqlite3_wal_hook(s->wdb, on_wal_commit, s);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_mutex_init(&s->topics.mu, NULL);
    pthread_mutex_init(&s->cmu, NULL);
    pthread_cond_init(&s->ccv, NULL);
    if (pthread_create(&s->ckpt_thread, NULL, checkpoint_thread_main, s) != 0) {
        /* Not recoverable in a process that already has threads. */
        tm_exit_os_error("cannot start the checkpoint thread");
    }
    store->ops = &sq_ops;
    store->kind_name = "sqlite";
    store->impl = s;
    return 0;
fail:
    close_dbs(s);
    free(s);
    return -1;
}

static void sq_close(tm_store_t *store)
{
    sq_store_t *s = store->impl;
    pthread_mutex_lock(&s->cmu);
    s->closing = 1;
    pthread_cond_signal(&s->ccv);
    pthread_mutex_unlock(&s->cmu);
    pthread_join(s->ckpt_thread, NULL);
    close_dbs(s);
    pthread_mutex_destroy(&s->rmu);
    pthread_mutex_destroy(&s->topics.mu);
    pthread_mutex_destroy(&s->cmu);
    pthread_cond_destroy(&s->ccv);
    free(s);
}

/* ---- reads -------------------------------------------------------------- */

static int read_error(sq_store_t *s, char *err, size_t errlen)
{
    snprintf(err, errlen, "storage read failed: %s", sqlite3_errmsg(s->rdb));
    return -1;
}

static int sq_peek(tm_store_t *store, const char *gid, tm_tx_status_t *status,
                   uint64_t *submit_hash, char *err, size_t errlen)
{
    sq_store_t *s = store->impl;
    pthread_mutex_lock(&s->rmu);
    sqlite3_stmt *st = s->peek;
    int found = -1;
    sqlite3_bind_text(st, 1, gid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *status = (tm_tx_status_t)sqlite3_column_int(st, 0);
        *submit_hash = (uint64_t)sqlite3_column_int64(st, 1);
        found = 1;
    } else if (rc == SQLITE_DONE) {
        found = 0;
    } else {
        read_error(s, err, errlen);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->rmu);
    return found;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* The current row of st as the codec's columns (the values stay st's
 * until its next step); returns how many. */
static size_t row_cols(sqlite3_stmt *st, tm_store_codec_col_t *c)
{
    int n = sqlite3_column_count(st);
    if (n > TM_STORE_CODEC_MAX_COLS)
        n = TM_STORE_CODEC_MAX_COLS;
    for (int i = 0; i < n; i++) {
        c[i] = (tm_store_codec_col_t){0};
        int type = sqlite3_column_type(st, i);
        if (type == SQLITE_INTEGER) {
            c[i].is_int = 1;
            c[i].i = sqlite3_column_int64(st, i);
        } else if (type != SQLITE_NULL) {
            const void *p = sqlite3_column_blob(st, i);
            c[i].len = (size_t)sqlite3_column_bytes(st, i);
            c[i].p = p ? p : ""; /* an empty value is not NULL */
        }
    }
    return (size_t)n;
}

static int row_to_trans(sqlite3_stmt *st, tm_trans_t **tx, char *err,
                        size_t errlen)
{
    tm_store_codec_col_t c[TM_STORE_CODEC_MAX_COLS];
    return tm_store_codec_trans(c, row_cols(st, c), tx, err, errlen);
}

/* Bind gid to one of the reader's kept statements. */
static sqlite3_stmt *bound(sqlite3_stmt *st, const char *gid)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, gid, -1, SQLITE_STATIC);
    return st;
}

static int load_branches(sq_store_t *s, tm_trans_t *tx, char *err,
                         size_t errlen)
{
    sqlite3_stmt *st = bound(s->get_branches, tx->gid);
    tm_store_codec_col_t c[TM_STORE_CODEC_MAX_COLS];
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        tm_branch_t *b;
        rc = tm_store_codec_branch(tx, c, row_cols(st, c), &b, err, errlen);
    }
    sqlite3_reset(st);
    return rc;
}

static int load_ops(sq_store_t *s, tm_trans_t *tx, char *err, size_t errlen)
{
    sqlite3_stmt *st = bound(s->get_ops, tx->gid);
    tm_store_codec_col_t c[TM_STORE_CODEC_MAX_COLS];
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
        rc = tm_store_codec_op(tx, c, row_cols(st, c), err, errlen);
    sqlite3_reset(st);
    if (rc == 0)
        tm_store_codec_finish(tx);
    return rc;
}

static const char *trans_columns =
    "SELECT " TM_STORE_CODEC_TRANS_COLUMNS " FROM trans ";

/* get_locked's reads, inside its read transaction. */
static int get_in_snapshot(sq_store_t *s, const char *gid, tm_trans_t **out,
                           char *err, size_t errlen)
{
    sqlite3_stmt *st = bound(s->get_trans, gid);
    int rc = sqlite3_step(st);
    tm_trans_t *tx = NULL;
    int decoded = rc == SQLITE_ROW ? row_to_trans(st, &tx, err, errlen) : 0;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return read_error(s, err, errlen);
    if (decoded != 0)
        return -1;
    if (load_branches(s, tx, err, errlen) != 0 ||
        load_ops(s, tx, err, errlen) != 0) {
        tm_trans_free(tx);
        return -1;
    }
    *out = tx;
    return 1;
}

/* The transaction gid with its branches and ops as one commit left them
 * (one read transaction), under rmu. Returns 1 with *out, 0 when not
 * stored, -1 with err. */
static int get_locked(sq_store_t *s, const char *gid, tm_trans_t **out,
                      char *err, size_t errlen)
{
    if (step_reset(s->rd_begin) != 0)
        return read_error(s, err, errlen);
    int rc = get_in_snapshot(s, gid, out, err, errlen);
    step_reset(s->rd_commit); /* read only: ends the snapshot */
    return rc;
}

static int sq_get(tm_store_t *store, const char *gid, tm_trans_t **out,
                  char *err, size_t errlen)
{
    sq_store_t *s = store->impl;
    pthread_mutex_lock(&s->rmu);
    int rc = get_locked(s, gid, out, err, errlen);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

static long sq_load_unfinished(tm_store_t *store, tm_store_each_fn fn,
                               void *arg, char *err, size_t errlen)
{
    sq_store_t *s = store->impl;
    /* Collect gids first, then load each: keeps one statement open at a
     * time on the reader. */
    pthread_mutex_lock(&s->rmu);
    sqlite3_stmt *st;
    long count = 0;
    if (sqlite3_prepare_v2(
            s->rdb,
            /* Named: left to itself the planner walks trans_by_created
             * (no sort), every finished row included. */
            "SELECT gid FROM trans INDEXED BY trans_by_status"
            " WHERE " TM_STORE_SQL_UNFINISHED " ORDER BY created_ms, gid",
            -1, &st, NULL) != SQLITE_OK) {
        read_error(s, err, errlen);
        pthread_mutex_unlock(&s->rmu);
        return -1;
    }
    size_t n = 0, cap = 0;
    char **gids = NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **g = realloc(gids, cap * sizeof(*g));
            if (!g)
                break;
            gids = g;
        }
        gids[n++] = tm_strdup(col_text(st, 0));
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        tm_trans_t *tx = NULL;
        int rc = count >= 0 ? get_locked(s, gids[i], &tx, err, errlen) : 1;
        if (count >= 0 && rc == 1) {
            fn(tx, arg);
            count++;
        } else if (count >= 0) {
            if (rc == 0) /* deleted since the gids were read */
                read_error(s, err, errlen);
            count = -1;
        }
        free(gids[i]);
    }
    free(gids);
    pthread_mutex_unlock(&s->rmu);
    return count;
}

static int bind_list_filter(sqlite3_stmt *st, const tm_store_filter_t *f)
{
    sqlite3_bind_int(st, 1, f->status);
    sqlite3_bind_int64(st, 2, f->created_after_ms);
    sqlite3_bind_int64(st, 3, f->created_before_ms);
    sqlite3_bind_int64(st, 4, f->after_created_ms);
    sqlite3_bind_text(st, 5, f->after_gid ? f->after_gid : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 6, f->after_gid ? 1 : 0);
    sqlite3_bind_int(st, 7, (int)f->limit);
    return 0;
}

/* The List statement for f into sql[len]: only the conditions f sets, so
 * SQLite pages through an index in (created_ms, gid) order - trans_by_status
 * for a status, trans_by_created otherwise - and stops after the page,
 * however many rows the filter skips. The parameters are bind_list_filter's
 * (?6 unused). */
static void list_sql(const tm_store_filter_t *f, char *sql, size_t len)
{
    snprintf(sql, len, "%s WHERE 1=1%s%s%s%s ORDER BY created_ms, gid LIMIT ?7",
             trans_columns, f->status ? " AND status = ?1" : "",
             f->created_after_ms ? " AND created_ms > ?2" : "",
             f->created_before_ms ? " AND created_ms < ?3" : "",
             f->after_gid ? " AND (created_ms, gid) > (?4, ?5)" : "");
}

static int sq_list(tm_store_t *store, const tm_store_filter_t *f,
                   tm_trans_t ***out, size_t *n, char *err, size_t errlen)
{
    sq_store_t *s = store->impl;
    char sql[768];
    list_sql(f, sql, sizeof(sql));
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->rmu);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->rdb, sql, -1, &st, NULL) != SQLITE_OK) {
        read_error(s, err, errlen);
        pthread_mutex_unlock(&s->rmu);
        return -1;
    }
    bind_list_filter(st, f);
    tm_trans_t **items = calloc(f->limit ? f->limit : 1, sizeof(*items));
    int rc = items ? 0 : -1;
    if (!items)
        snprintf(err, errlen, "out of memory listing transactions");
    while (rc == 0 && *n < f->limit && sqlite3_step(st) == SQLITE_ROW) {
        rc = row_to_trans(st, &items[*n], err, errlen);
        if (rc == 0)
            (*n)++;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rmu);
    if (rc != 0) {
        for (size_t i = 0; i < *n; i++)
            tm_trans_free(items[i]);
        free(items);
        *n = 0;
        return -1;
    }
    *out = items;
    return 0;
}

/* ---- retention ---------------------------------------------------------- */

/* Finished transactions deleted per batch (one commit): small, so a
 * batch never holds the writer for long. */
#define PURGE_BATCH 500

/* Batches run back to back for at most this long per maintenance step;
 * while a backlog lasts the store thread comes back after twice the
 * step's time (tm_store.c), so retention takes at most a third of the
 * writer and stalls commits for about this long at a time. Measured on
 * the 2-core box (trellis-bench --mode scale): a batch takes 10-20 ms. */
#define PURGE_SLICE_MS 25

/* Delete up to PURGE_BATCH finished transactions older than cutoff (oldest
 * created first: created_ms <= finished_ms, so the created index bounds the
 * scan). Returns how many, or -1. */
static int purge_batch(tm_store_t *store, sq_store_t *s, int64_t cutoff)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "CREATE TEMP TABLE IF NOT EXISTS purge_gid(gid TEXT PRIMARY KEY);"
             "DELETE FROM purge_gid;"
             "INSERT INTO purge_gid SELECT gid FROM trans"
             " WHERE created_ms < %lld AND " TM_STORE_SQL_FINAL
             " AND finished_ms > 0"
             " AND finished_ms < %lld ORDER BY created_ms LIMIT %d;",
             (long long)cutoff, (long long)cutoff, PURGE_BATCH);
    char err[256];
    if (exec_sql(s->wdb, "BEGIN IMMEDIATE", err, sizeof(err)) != 0)
        return -1;
    int ok = exec_sql(s->wdb, sql, err, sizeof(err)) == 0;
    int purged = ok ? sqlite3_changes(s->wdb) : 0;
    ok = ok && exec_sql(s->wdb,
                        "DELETE FROM op WHERE gid IN (SELECT gid FROM"
                        " purge_gid);"
                        "DELETE FROM branch WHERE gid IN (SELECT gid FROM"
                        " purge_gid);"
                        "DELETE FROM trans WHERE gid IN (SELECT gid FROM"
                        " purge_gid);",
                        err, sizeof(err)) == 0;
    if (exec_sql(s->wdb, ok ? "COMMIT" : "ROLLBACK", err, sizeof(err)) != 0) {
        /* Deletes only: a failed purge loses nothing; try next time. */
        if (!sqlite3_get_autocommit(s->wdb))
            sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (!ok)
        return -1;
    if (purged > 0)
        tm_store_count(store, TM_STAT_PURGED, (uint64_t)purged);
    return purged;
}

/* Retention, on the store thread between groups: batches while they come
 * back full, within PURGE_SLICE_MS. Returns 1 when the last batch was
 * full (more are due: a backlog), else 0. */
static int sq_maintain(tm_store_t *store)
{
    sq_store_t *s = store->impl;
    if (!store->retention_ms)
        return 0;
    int64_t cutoff = tm_wall_ms() - (int64_t)store->retention_ms;
    int64_t started = tm_mono_ms();
    int n;
    while ((n = purge_batch(store, s, cutoff)) == PURGE_BATCH &&
           tm_mono_ms() - started < PURGE_SLICE_MS)
        ;
    return n == PURGE_BATCH;
}

sq_topics_t *sq_store_topics(tm_store_t *store)
{
    return &((sq_store_t *)store->impl)->topics;
}

static const tm_store_ops_t sq_ops = {
    .commit_group = sq_commit_group,
    .maintain = sq_maintain,
    .peek = sq_peek,
    .get = sq_get,
    .load_unfinished = sq_load_unfinished,
    .list = sq_list,
    .subscribe = sq_subscribe,
    .unsubscribe = sq_unsubscribe,
    .subscriptions = sq_subscriptions,
    .close = sq_close,
};
