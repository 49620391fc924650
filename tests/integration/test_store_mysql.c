/*
 * test_store_mysql.c: the MySQL storage engine through tm_store.h, against
 * a real MariaDB, without trellisd around it — the rules the engine and
 * the other nodes rely on:
 *   - what is written comes back after a reopen, finished ops read back as
 *     skipped, and a node reloads only the unfinished transactions it owns;
 *   - a write of a transaction another node owns is refused (LOST) and
 *     changes nothing; an insert of a stored gid is refused (EXISTS);
 *   - a second live process with the same node id is refused; a schema
 *     version trellisd does not know is refused with a clear message;
 *   - a transaction whose owner stopped renewing is claimed by another node
 *     (adopt hook) with its state, exactly once;
 *   - retention deletes old finished transactions and nothing else;
 *   - issue 12 item 3: every claim moves the row's generation, and a copy
 *     loaded under an older claim cannot write (ownership A -> B -> A);
 *   - issue 12 item 11: one transaction is read in one snapshot (a group
 *     committed between its reads is seen whole or not at all), and a
 *     schema of version 1 is upgraded in place;
 *   - issue 12 item 8: the payload bound comes from max_allowed_packet, and
 *     a write the server refuses for its size fails alone (FAILED) instead
 *     of jamming every later write;
 *   - an op's recorded result (any bytes, 60 KiB too) comes back byte for
 *     byte, and a database of schema version 2 (ops without recorded
 *     results) is upgraded in place and keeps its rows;
 *   - topics: the contract of tests/common/topics_check.h (created once,
 *     ordered by topic, age, target byte for byte, removed once) and the
 *     column widths, shared by every node and kept across a reopen; a
 *     database of schema version 3 is upgraded to 5 by two nodes starting
 *     at once;
 *   - a database of schema version 4 (no branch pivot, no op result_size)
 *     is upgraded to 5 by two nodes starting at once, one of them meeting
 *     the other's upgrade halfway (a column already there); the old rows
 *     read back with neither, and both are kept once written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mysql.h>
#include <pthread.h>

#include "harness.h"
#include "tm_store.h"
#include "topics_check_store.h"

static harness_t *h;
static harness_mariadb_t *db;

static int start_db(void **state)
{
    (void)state;
    h = harness_new("store_mysql");
    db = h ? harness_mariadb_start(h, "db") : NULL;
    return db ? 0 : -1;
}

static int stop_db(void **state)
{
    (void)state;
    harness_free(h, 1);
    return 0;
}

static tm_store_t *open_node(const char *database, const char *node,
                             uint32_t lease_ms, char *err, size_t errlen)
{
    tm_store_config_t cfg;
    tm_store_config_default(&cfg);
    cfg.kind = TM_STORE_MYSQL;
    cfg.mysql_socket = harness_mariadb_socket(db);
    cfg.mysql_database = database;
    cfg.node_id = node;
    cfg.lease_ms = lease_ms;
    cfg.retention_ms = 0;
    tm_store_t *s = NULL;
    if (tm_store_open(&cfg, &s, err, errlen) != 0)
        return NULL;
    return s;
}

static tm_store_t *must_open(const char *database, const char *node,
                             uint32_t lease_ms)
{
    char err[512];
    tm_store_t *s = open_node(database, node, lease_ms, err, sizeof err);
    if (!s)
        fail_msg("open %s/%s: %s", database, node, err);
    return s;
}

static tm_trans_t *saga(const char *gid, int64_t created)
{
    tm_trans_t *tx = tm_trans_new(gid, TM_TX_SUBMITTED, created);
    tx->submit_hash = 7;
    for (int i = 0; i < 2; i++) {
        tm_branch_t *b = tm_trans_add_branch(tx);
        b->branch_id = tm_strdup(i ? "02" : "01");
        b->mode = TM_MODE_SAGA;
        b->payload = (uint8_t *)tm_strdup("p\001y");
        b->payload_len = 3;
        b->ops[TM_SLOT_FORWARD].kind = TM_KIND_ACTION;
        b->ops[TM_SLOT_FORWARD].target = tm_strdup("h:1/p.S/A");
        b->ops[TM_SLOT_ROLLBACK].kind = TM_KIND_COMPENSATE;
        b->ops[TM_SLOT_ROLLBACK].target = tm_strdup("h:1/p.S/C");
    }
    return tx;
}

static tm_write_result_t last_result;
static int n_done;

static void note(void *arg, tm_write_result_t r)
{
    (void)arg;
    last_result = r;
    n_done++;
}

/* Queue one write and wait for its commit; returns its result. */
static tm_write_result_t write_now(tm_store_t *s, tm_trans_t *tx, int insert)
{
    tm_write_t *w = tm_write_capture_all(tx, insert);
    assert_non_null(w);
    int before = n_done;
    tm_store_queue(s, w, note, NULL);
    tm_store_flush(s);
    assert_int_equal(n_done, before + 1);
    return last_result;
}

static void take(tm_trans_t *tx, void *arg)
{
    (*(int *)arg)++;
    tm_trans_free(tx);
}

static void test_round_trip_and_reload(void **state)
{
    (void)state;
    tm_store_t *a = must_open("st_round", "node-a", 5000);
    tm_trans_t *done = saga("rt-done", 1000);
    tm_trans_t *open = saga("rt-open", 2000);
    assert_int_equal(write_now(a, done, 1), TM_WRITE_DONE);
    assert_int_equal(write_now(a, open, 1), TM_WRITE_DONE);
    tm_op_t *op = &done->branches[0].ops[TM_SLOT_FORWARD];
    op->status = TM_OP_SUCCEEDED;
    tm_op_note_attempt(op, 1500);
    op->last_error = tm_strdup("grpc status 14: \"down\"");
    done->status = TM_TX_SUCCEEDED;
    done->finished_ms = 1600;
    assert_int_equal(write_now(a, done, 0), TM_WRITE_DONE);
    tm_store_close(a);

    a = must_open("st_round", "node-a", 5000);
    char err[256];
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(a, "rt-done", &got, err, sizeof err), 1);
    assert_int_equal(got->status, TM_TX_SUCCEEDED);
    assert_int_equal(got->submit_hash, 7);
    assert_int_equal(got->n_branches, 2);
    assert_memory_equal(got->branches[1].payload, "p\001y", 3);
    const tm_op_t *g = &got->branches[0].ops[TM_SLOT_FORWARD];
    assert_int_equal(g->status, TM_OP_SUCCEEDED);
    assert_int_equal(g->attempts, 1);
    assert_string_equal(g->last_error, "grpc status 14: \"down\"");
    assert_int_equal(got->branches[1].ops[TM_SLOT_FORWARD].status,
                     TM_OP_SKIPPED);
    tm_trans_free(got);
    int loaded = 0;
    assert_int_equal(
        tm_store_load_unfinished(a, take, &loaded, err, sizeof err), 1);
    assert_int_equal(loaded, 1);
    /* Another node owns none of them. */
    tm_store_t *b = must_open("st_round", "node-b", 5000);
    loaded = 0;
    assert_int_equal(
        tm_store_load_unfinished(b, take, &loaded, err, sizeof err), 0);
    tm_store_close(b);
    tm_store_close(a);
    tm_trans_free(done);
    tm_trans_free(open);
}

static void test_fenced_writes(void **state)
{
    (void)state;
    tm_store_t *a = must_open("st_fence", "node-a", 5000);
    tm_store_t *b = must_open("st_fence", "node-b", 5000);
    tm_trans_t *tx = saga("fence-1", 1000);
    assert_int_equal(write_now(a, tx, 1), TM_WRITE_DONE);
    /* b's copy: an insert of the same gid, then an update */
    tm_trans_t *copy = saga("fence-1", 1000);
    assert_int_equal(write_now(b, copy, 1), TM_WRITE_EXISTS);
    copy->status = TM_TX_FAILED;
    copy->finished_ms = 1200;
    assert_int_equal(write_now(b, copy, 0), TM_WRITE_LOST);
    char err[256];
    tm_tx_status_t st;
    uint64_t hash;
    assert_int_equal(tm_store_peek(a, "fence-1", &st, &hash, err, sizeof err),
                     1);
    assert_int_equal(st, TM_TX_SUBMITTED);
    /* the owner's own update goes through */
    tx->status = TM_TX_SUCCEEDED;
    tx->finished_ms = 1300;
    assert_int_equal(write_now(a, tx, 0), TM_WRITE_DONE);
    /* a finished gid inserted again, by its own former owner: EXISTS */
    tm_trans_t *again = saga("fence-1", 5000);
    assert_int_equal(write_now(a, again, 1), TM_WRITE_EXISTS);
    tm_store_stats_t stats;
    tm_store_stats(b, &stats);
    assert_int_equal(stats.lost, 1);
    tm_store_close(b);
    tm_store_close(a);
    tm_trans_free(tx);
    tm_trans_free(copy);
    tm_trans_free(again);
}

static void test_refusals_at_open(void **state)
{
    (void)state;
    char err[512];
    tm_store_t *a = must_open("st_refuse", "node-a", 5000);
    assert_null(open_node("st_refuse", "node-a", 5000, err, sizeof err));
    assert_non_null(strstr(err, "in use by another live trellisd"));
    tm_store_close(a);
    /* once the first closed, the id is free again */
    a = must_open("st_refuse", "node-a", 5000);
    tm_store_close(a);
    assert_int_equal(
        harness_mariadb_exec(db, "UPDATE st_refuse.trellis_meta SET v='99'"
                                 " WHERE k='schema'"),
        0);
    assert_null(open_node("st_refuse", "node-a", 5000, err, sizeof err));
    assert_non_null(strstr(err, "schema version 99"));
}

typedef struct {
    int adopted;
    char gid[72];
    tm_tx_status_t status;
    size_t branches;
} adopt_seen_t;

static void adopt(tm_trans_t *tx, void *arg)
{
    adopt_seen_t *seen = arg;
    seen->adopted++;
    snprintf(seen->gid, sizeof seen->gid, "%s", tx->gid);
    seen->status = tx->status;
    seen->branches = tx->n_branches;
    tm_trans_free(tx);
}

static void lapsed(void *arg)
{
    (void)arg;
}

static int adopted_once(void *arg)
{
    return ((adopt_seen_t *)arg)->adopted > 0;
}

static void test_claim_after_lease_runs_out(void **state)
{
    (void)state;
    /* node a writes a transaction, then goes away without finishing it */
    tm_store_t *a = must_open("st_claim", "node-a", 1000);
    tm_trans_t *tx = saga("claim-1", 1000);
    assert_int_equal(write_now(a, tx, 1), TM_WRITE_DONE);
    assert_true(tm_store_lease_ok(a));
    tm_store_close(a);
    /* node b claims it once the lease ran out, with its state */
    tm_store_t *b = must_open("st_claim", "node-b", 1000);
    adopt_seen_t seen = {0};
    tm_store_owner_hooks_t hooks = {adopt, lapsed, &seen};
    tm_store_start_ownership(b, &hooks);
    assert_true(harness_poll(adopted_once, &seen, 10000, 50));
    assert_string_equal(seen.gid, "claim-1");
    assert_int_equal(seen.status, TM_TX_SUBMITTED);
    assert_int_equal(seen.branches, 2);
    harness_sleep_ms(1500); /* b keeps it: no second claim */
    assert_int_equal(seen.adopted, 1);
    /* a's old writes are refused now */
    a = must_open("st_claim", "node-a", 1000);
    tx->status = TM_TX_FAILED;
    assert_int_equal(write_now(a, tx, 0), TM_WRITE_LOST);
    tm_store_stats_t stats;
    tm_store_stats(b, &stats);
    assert_int_equal(stats.claimed, 1);
    tm_store_close(a);
    tm_store_close(b);
    tm_trans_free(tx);
}

static void test_retention(void **state)
{
    (void)state;
    tm_store_config_t cfg;
    tm_store_config_default(&cfg);
    cfg.kind = TM_STORE_MYSQL;
    cfg.mysql_socket = harness_mariadb_socket(db);
    cfg.mysql_database = "st_retain";
    cfg.node_id = "node-a";
    cfg.lease_ms = 1000;
    cfg.retention_ms = 60000;
    char err[512];
    tm_store_t *s = NULL;
    assert_int_equal(tm_store_open(&cfg, &s, err, sizeof err), 0);
    int64_t now = harness_now_ms();
    tm_trans_t *old_done = saga("old-done", now - 120000);
    tm_trans_t *old_open = saga("old-open", now - 120000);
    tm_trans_t *new_done = saga("new-done", now - 1000);
    assert_int_equal(write_now(s, old_done, 1), TM_WRITE_DONE);
    assert_int_equal(write_now(s, old_open, 1), TM_WRITE_DONE);
    assert_int_equal(write_now(s, new_done, 1), TM_WRITE_DONE);
    old_done->status = new_done->status = TM_TX_SUCCEEDED;
    old_done->finished_ms = now - 110000;
    new_done->finished_ms = now - 500;
    assert_int_equal(write_now(s, old_done, 0), TM_WRITE_DONE);
    assert_int_equal(write_now(s, new_done, 0), TM_WRITE_DONE);
    tm_tx_status_t st;
    uint64_t hash;
    int64_t deadline = harness_mono_ms() + 10000;
    while (tm_store_peek(s, "old-done", &st, &hash, err, sizeof err) == 1 &&
           harness_mono_ms() < deadline)
        harness_sleep_ms(100);
    assert_int_equal(tm_store_peek(s, "old-done", &st, &hash, err, sizeof err),
                     0);
    assert_int_equal(tm_store_peek(s, "old-open", &st, &hash, err, sizeof err),
                     1);
    assert_int_equal(tm_store_peek(s, "new-done", &st, &hash, err, sizeof err),
                     1);
    tm_trans_t *gone = NULL;
    assert_int_equal(tm_store_get(s, "old-done", &gone, err, sizeof err), 0);
    tm_store_close(s);
    tm_trans_free(old_done);
    tm_trans_free(old_open);
    tm_trans_free(new_done);
}

/* A group larger than the server's packet limit goes out in pieces. */
static void test_large_group_in_pieces(void **state)
{
    (void)state;
    assert_int_equal(
        harness_mariadb_exec(db, "SET GLOBAL max_allowed_packet = 65536"), 0);
    tm_store_t *s = must_open("st_large", "node-a", 5000);
    char reason[1001], payload[3000];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    memset(payload, 'p', sizeof payload);
    enum { N = 200 };
    tm_trans_t *txs[N];
    int before = n_done;
    for (int i = 0; i < N; i++) {
        char gid[32];
        snprintf(gid, sizeof gid, "large-%d", i);
        txs[i] = saga(gid, 1000 + i);
        txs[i]->reason = tm_strdup(reason);
        free(txs[i]->branches[0].payload);
        txs[i]->branches[0].payload = malloc(sizeof payload);
        memcpy(txs[i]->branches[0].payload, payload, sizeof payload);
        txs[i]->branches[0].payload_len = sizeof payload;
        tm_store_queue(s, tm_write_capture_all(txs[i], 1), note, NULL);
    }
    tm_store_flush(s);
    assert_int_equal(n_done, before + N);
    assert_int_equal(last_result, TM_WRITE_DONE);
    char err[256];
    for (int i = 0; i < N; i += 37) {
        tm_trans_t *got = NULL;
        assert_int_equal(tm_store_get(s, txs[i]->gid, &got, err, sizeof err),
                         1);
        assert_int_equal(got->branches[0].payload_len, sizeof payload);
        assert_string_equal(got->reason, reason);
        tm_trans_free(got);
    }
    tm_store_stats_t stats;
    tm_store_stats(s, &stats);
    tm_store_close(s);
    for (int i = 0; i < N; i++)
        tm_trans_free(txs[i]);
    assert_int_equal(
        harness_mariadb_exec(db, "SET GLOBAL max_allowed_packet = 16777216"),
        0);
    printf("%llu writes in %llu commits\n", (unsigned long long)stats.writes,
           (unsigned long long)stats.commits);
}

/* ---- issue 12 item 3: the fencing token -------------------------------- */

typedef struct {
    tm_trans_t *tx; /* the last adopted copy (ours) */
    int adopted;
} adopt_keep_t;

static void adopt_keep(tm_trans_t *tx, void *arg)
{
    adopt_keep_t *k = arg;
    tm_trans_free(k->tx);
    k->tx = tx;
    k->adopted++;
}

static int kept_one(void *arg)
{
    return ((adopt_keep_t *)arg)->adopted > 0;
}

/* A node claims database's expired transactions and hands back the copy
 * it loaded (the caller frees it; the store stays open in *out). */
static tm_trans_t *claim_copy(const char *database, const char *node,
                              tm_store_t **out)
{
    tm_store_t *s = must_open(database, node, 1000);
    adopt_keep_t *k = calloc(1, sizeof *k);
    tm_store_owner_hooks_t hooks = {adopt_keep, lapsed, k};
    tm_store_start_ownership(s, &hooks);
    assert_true(harness_poll(kept_one, k, 10000, 20));
    tm_store_close(s); /* stops the lease thread: no second claim */
    *out = must_open(database, node, 1000);
    tm_trans_t *tx = k->tx;
    free(k);
    return tx;
}

static void test_item3_generation_fences_a_b_a(void **state)
{
    (void)state;
    /* A stores X, then pauses past its lease (here: stops renewing). */
    tm_store_t *a = must_open("st_gen", "node-a", 1000);
    tm_trans_t *stale = saga("gen-1", 1000);
    assert_int_equal(write_now(a, stale, 1), TM_WRITE_DONE);
    tm_store_close(a);
    /* B claims X, moves it to ABORTING, and dies. */
    tm_store_t *b = NULL;
    tm_trans_t *bs = claim_copy("st_gen", "node-b", &b);
    assert_int_equal(bs->generation, 1);
    bs->status = TM_TX_ABORTING;
    bs->updated_ms = 2000;
    assert_int_equal(write_now(b, bs, 0), TM_WRITE_DONE);
    tm_store_close(b);
    /* A claims X back: the row it loads says ABORTING, generation 2. */
    tm_trans_t *fresh = claim_copy("st_gen", "node-a", &a);
    assert_int_equal(fresh->status, TM_TX_ABORTING);
    assert_int_equal(fresh->generation, 2);
    /* A's write from its old copy (the owner is A again) is refused ... */
    stale->status = TM_TX_SUCCEEDED;
    stale->finished_ms = 3000;
    assert_int_equal(write_now(a, stale, 0), TM_WRITE_LOST);
    char err[256];
    tm_tx_status_t st;
    uint64_t hash;
    assert_int_equal(tm_store_peek(a, "gen-1", &st, &hash, err, sizeof err), 1);
    assert_int_equal(st, TM_TX_ABORTING);
    /* ... and the copy loaded under the current claim writes. */
    fresh->status = TM_TX_FAILED;
    fresh->finished_ms = 3100;
    assert_int_equal(write_now(a, fresh, 0), TM_WRITE_DONE);
    assert_int_equal(tm_store_peek(a, "gen-1", &st, &hash, err, sizeof err), 1);
    assert_int_equal(st, TM_TX_FAILED);
    tm_store_close(a);
    tm_trans_free(stale);
    tm_trans_free(bs);
    tm_trans_free(fresh);
}

/* ---- issue 12 item 11: one snapshot per read ---------------------------- */

static MYSQL *root_session(void)
{
    MYSQL *c = mysql_init(NULL);
    if (!mysql_real_connect(c, NULL, "root", NULL, NULL, 0,
                            harness_mariadb_socket(db), 0))
        fail_msg("connect: %s", mysql_error(c));
    return c;
}

static void run_sql(MYSQL *c, const char *sql)
{
    if (mysql_query(c, sql) != 0)
        fail_msg("%s: %s", sql, mysql_error(c));
}

typedef struct {
    tm_store_t *s;
    tm_trans_t *got;
    int rc;
    char err[256];
} get_job_t;

static void *get_in_thread(void *arg)
{
    get_job_t *j = arg;
    j->rc = tm_store_get(j->s, "snap-1", &j->got, j->err, sizeof j->err);
    return NULL;
}

/* A read of the store waits for the lock on trellis_branch. */
static int read_waits_on_branch(void *arg)
{
    MYSQL *c = arg;
    run_sql(c, "SELECT COUNT(*) FROM information_schema.processlist"
               " WHERE state LIKE 'Waiting for table metadata lock%'"
               " AND info LIKE '%FROM trellis_branch%'");
    MYSQL_RES *res = mysql_store_result(c);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    int waiting = row && row[0] && atoi(row[0]) > 0;
    mysql_free_result(res);
    return waiting;
}

static void test_item11_get_reads_one_snapshot(void **state)
{
    (void)state;
    tm_store_t *a = must_open("st_snap", "node-a", 5000);
    tm_trans_t *tx = saga("snap-1", 1000);
    assert_int_equal(write_now(a, tx, 1), TM_WRITE_DONE);
    /* The read is held after its header, before its branches. */
    MYSQL *locker = root_session();
    run_sql(locker, "LOCK TABLES st_snap.trellis_branch WRITE");
    get_job_t job = {.s = a};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, get_in_thread, &job), 0);
    MYSQL *watcher = root_session();
    assert_true(harness_poll(read_waits_on_branch, watcher, 10000, 10));
    /* Meanwhile a change of header and op rows commits as one. */
    MYSQL *writer = root_session();
    run_sql(writer, "START TRANSACTION");
    run_sql(writer, "UPDATE st_snap.trellis_trans SET status = 4,"
                    " finished_ms = 1500 WHERE gid = 'snap-1'");
    run_sql(writer, "INSERT INTO st_snap.trellis_op (gid, idx, slot, status,"
                    " attempts, last_error, attempt_ms, finished_ms) VALUES"
                    " ('snap-1', 0, 0, 2, 99, NULL, '1400', 1400) ON"
                    " DUPLICATE KEY UPDATE status = 2, attempts = 99");
    run_sql(writer, "COMMIT");
    run_sql(locker, "UNLOCK TABLES");
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(job.rc, 1);
    /* All from before the change: the header and the ops agree. */
    assert_int_equal(job.got->status, TM_TX_SUBMITTED);
    const tm_op_t *op = &job.got->branches[0].ops[TM_SLOT_FORWARD];
    if (op->attempts == 99)
        fail_msg("read mixed two states: header %s, op attempts %u",
                 tm_tx_status_name(job.got->status), op->attempts);
    assert_int_equal(op->status, TM_OP_PENDING);
    tm_trans_free(job.got);
    /* The next read on that connection sees the change (no snapshot left
     * open). */
    tm_trans_t *after = NULL;
    char err[256];
    assert_int_equal(tm_store_get(a, "snap-1", &after, err, sizeof err), 1);
    assert_int_equal(after->status, TM_TX_SUCCEEDED);
    tm_trans_free(after);
    mysql_close(writer);
    mysql_close(watcher);
    mysql_close(locker);
    tm_store_close(a);
    tm_trans_free(tx);
}

/* The schema version stored in database, in out[32]. */
static const char *schema_version(MYSQL *c, const char *database, char *out)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT v FROM %s.trellis_meta WHERE k='schema'",
             database);
    run_sql(c, sql);
    MYSQL_RES *res = mysql_store_result(c);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    assert_non_null(row);
    snprintf(out, 32, "%s", row[0] ? row[0] : "");
    mysql_free_result(res);
    return out;
}

/* A database of schema version 1 (no generation, no origin; no recorded
 * results; no pivot, no result_size) is upgraded at open, to version 5,
 * and keeps its rows. */
static void test_schema_upgrade_from_version_1(void **state)
{
    (void)state;
    tm_store_t *a = must_open("st_upgrade", "node-a", 5000);
    tm_trans_t *tx = saga("up-1", 1000);
    assert_int_equal(write_now(a, tx, 1), TM_WRITE_DONE);
    tm_store_close(a);
    assert_int_equal(
        harness_mariadb_exec(db, "ALTER TABLE st_upgrade.trellis_trans DROP"
                                 " COLUMN generation, DROP COLUMN origin;"
                                 " ALTER TABLE st_upgrade.trellis_op DROP"
                                 " COLUMN recorded, DROP COLUMN result,"
                                 " DROP COLUMN result_size;"
                                 " ALTER TABLE st_upgrade.trellis_branch"
                                 " DROP COLUMN pivot;"
                                 " UPDATE st_upgrade.trellis_meta SET v='1'"
                                 " WHERE k='schema'"),
        0);
    a = must_open("st_upgrade", "node-a", 5000);
    char err[256];
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(a, "up-1", &got, err, sizeof err), 1);
    assert_int_equal(got->generation, 0);
    got->status = TM_TX_SUCCEEDED;
    got->finished_ms = 1200;
    assert_int_equal(write_now(a, got, 0), TM_WRITE_DONE);
    tm_store_close(a);
    MYSQL *c = root_session();
    char version[32];
    assert_string_equal(schema_version(c, "st_upgrade", version), "5");
    mysql_close(c);
    tm_trans_free(got);
    tm_trans_free(tx);
}

/* ---- recorded results (workflow steps) ---------------------------------- */

/* n bytes that hold every byte value, NUL and 0xff first (the caller's). */
static uint8_t *pattern(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i % 2 ? 0xff - i / 2 : i / 2);
    return p;
}

/* The op's result becomes a copy of bytes[len], recorded. */
static void record(tm_op_t *op, const uint8_t *bytes, size_t len)
{
    op->status = TM_OP_SUCCEEDED;
    op->recorded = 1;
    op->result = malloc(len);
    assert_non_null(op->result);
    memcpy(op->result, bytes, len);
    op->result_len = len;
}

static void assert_result(const tm_op_t *op, const uint8_t *bytes, size_t len)
{
    assert_int_equal(op->recorded, 1);
    assert_int_equal(op->result_len, len);
    assert_memory_equal(op->result, bytes, len);
}

static void assert_no_result(const tm_op_t *op)
{
    assert_int_equal(op->recorded, 0);
    assert_null(op->result);
    assert_int_equal(op->result_len, 0);
}

static void test_recorded_results_round_trip(void **state)
{
    (void)state;
    tm_store_t *a = must_open("st_result", "node-a", 5000);
    tm_trans_t *tx = saga("res-1", 1000);
    assert_int_equal(write_now(a, tx, 1), TM_WRITE_DONE);
    static const uint8_t small[] = {0, 'o', 'k', 0xff, 0, '\'', 0xff};
    enum { BIG = 60 * 1024 };
    uint8_t *big = pattern(BIG);
    record(&tx->branches[0].ops[TM_SLOT_FORWARD], small, sizeof small);
    record(&tx->branches[1].ops[TM_SLOT_FORWARD], big, BIG);
    /* succeeded but not recorded: no result */
    tx->branches[0].ops[TM_SLOT_ROLLBACK].status = TM_OP_SUCCEEDED;
    assert_int_equal(write_now(a, tx, 0), TM_WRITE_DONE);
    tm_store_close(a);

    a = must_open("st_result", "node-a", 5000);
    char err[256];
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(a, "res-1", &got, err, sizeof err), 1);
    assert_result(&got->branches[0].ops[TM_SLOT_FORWARD], small, sizeof small);
    assert_result(&got->branches[1].ops[TM_SLOT_FORWARD], big, BIG);
    const tm_op_t *plain = &got->branches[0].ops[TM_SLOT_ROLLBACK];
    assert_int_equal(plain->status, TM_OP_SUCCEEDED);
    assert_no_result(plain);
    tm_trans_free(got);
    /* the load of unfinished transactions carries them too */
    adopt_keep_t k = {0};
    assert_int_equal(
        tm_store_load_unfinished(a, adopt_keep, &k, err, sizeof err), 1);
    assert_result(&k.tx->branches[1].ops[TM_SLOT_FORWARD], big, BIG);
    tm_trans_free(k.tx);
    tm_store_close(a);
    tm_trans_free(tx);
    free(big);
}

/* Schema version 2 as trellisd created it before ops had a recorded
 * result, and one transaction in it (owned by node-a): a saga step that
 * succeeded. */
static const char *const schema_2_sql[] = {
    "CREATE DATABASE st_upgrade2",
    "CREATE TABLE st_upgrade2.trellis_meta ("
    " k VARCHAR(64) NOT NULL PRIMARY KEY, v VARCHAR(255) NOT NULL"
    ") ENGINE=InnoDB",
    "CREATE TABLE st_upgrade2.trellis_trans ("
    " gid VARBINARY(64) NOT NULL PRIMARY KEY,"
    " status TINYINT NOT NULL,"
    " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
    " finished_ms BIGINT NOT NULL DEFAULT 0,"
    " reason BLOB NULL,"
    " submit_hash BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " options BLOB NULL,"
    " owner VARBINARY(64) NULL,"
    " lease_ms BIGINT NULL,"
    " generation BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " origin VARBINARY(64) NULL,"
    " KEY trans_by_created (created_ms, gid),"
    " KEY trans_by_lease (lease_ms)"
    ") ENGINE=InnoDB",
    "CREATE TABLE st_upgrade2.trellis_branch ("
    " gid VARBINARY(64) NOT NULL, idx INT NOT NULL,"
    " branch_id VARBINARY(64) NOT NULL,"
    " mode TINYINT NOT NULL, initiator_driven TINYINT NOT NULL,"
    " payload MEDIUMBLOB NULL, depends_on BLOB NOT NULL,"
    " kind0 TINYINT NOT NULL, target0 BLOB NULL,"
    " kind1 TINYINT NOT NULL, target1 BLOB NULL,"
    " kind2 TINYINT NOT NULL, target2 BLOB NULL,"
    " PRIMARY KEY (gid, idx)"
    ") ENGINE=InnoDB",
    "CREATE TABLE st_upgrade2.trellis_op ("
    " gid VARBINARY(64) NOT NULL, idx INT NOT NULL, slot TINYINT NOT NULL,"
    " status TINYINT NOT NULL, attempts INT UNSIGNED NOT NULL,"
    " last_error BLOB NULL, attempt_ms BLOB NULL,"
    " finished_ms BIGINT NOT NULL, late TINYINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (gid, idx, slot)"
    ") ENGINE=InnoDB",
    "INSERT INTO st_upgrade2.trellis_meta VALUES ('schema', '2')",
    "INSERT INTO st_upgrade2.trellis_trans (gid, status, created_ms,"
    " updated_ms, finished_ms, reason, submit_hash, options, owner, lease_ms,"
    " generation, origin) VALUES ('old-1', 2, 1000, 1100, 0, NULL, 9, NULL,"
    " 'node-a', NULL, 0, 'node-a')",
    "INSERT INTO st_upgrade2.trellis_branch VALUES ('old-1', 0, '01', 1, 0,"
    " X'00ff', '', 1, 'h:1/p.S/A', 0, NULL, 2, 'h:1/p.S/C')",
    "INSERT INTO st_upgrade2.trellis_op VALUES ('old-1', 0, 0, 2, 1, NULL,"
    " '1050', 1060, 0)",
};

static void test_schema_upgrade_from_version_2(void **state)
{
    (void)state;
    MYSQL *c = root_session();
    for (size_t i = 0; i < sizeof schema_2_sql / sizeof *schema_2_sql; i++)
        run_sql(c, schema_2_sql[i]);
    tm_store_t *a = must_open("st_upgrade2", "node-a", 5000);
    char err[256];
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(a, "old-1", &got, err, sizeof err), 1);
    assert_int_equal(got->status, TM_TX_SUBMITTED);
    assert_int_equal(got->submit_hash, 9);
    assert_memory_equal(got->branches[0].payload, "\x00\xff", 2);
    tm_op_t *op = &got->branches[0].ops[TM_SLOT_FORWARD];
    assert_int_equal(op->status, TM_OP_SUCCEEDED);
    assert_int_equal(op->attempts, 1);
    assert_int_equal(op->finished_ms, 1060);
    assert_no_result(op);
    /* the upgraded table takes a recorded result */
    static const uint8_t bytes[] = {0xff, 0, 'x'};
    record(&got->branches[0].ops[TM_SLOT_ROLLBACK], bytes, sizeof bytes);
    assert_int_equal(write_now(a, got, 0), TM_WRITE_DONE);
    tm_trans_free(got);
    tm_store_close(a);
    char version[32];
    assert_string_equal(schema_version(c, "st_upgrade2", version), "5");

    /* reopened: the rows as written */
    a = must_open("st_upgrade2", "node-a", 5000);
    assert_int_equal(tm_store_get(a, "old-1", &got, err, sizeof err), 1);
    assert_no_result(&got->branches[0].ops[TM_SLOT_FORWARD]);
    assert_result(&got->branches[0].ops[TM_SLOT_ROLLBACK], bytes, sizeof bytes);
    tm_trans_free(got);
    tm_store_close(a);
    mysql_close(c);
}

/* ---- topics ------------------------------------------------------------- */

/* The contract on node a; node b sees the same subscriptions, and a
 * subscription b makes is a's too; all of it survives a reopen. */
static void test_subscriptions_shared_by_nodes(void **state)
{
    (void)state;
    tm_store_t *a = must_open("st_topics", "node-a", 5000);
    tm_store_t *b = must_open("st_topics", "node-b", 5000);
    tm_engine_env_t env = tcheck_store_env(a);
    tcheck_contract(&env);
    tcheck_limits(&env);
    char on_a[1024], on_b[1024], err[256];
    tcheck_store_text(a, on_a, sizeof on_a);
    assert_non_null(strstr(on_a, "orders h:2/p.S/B second 200\n"));
    assert_string_equal(tcheck_store_text(b, on_b, sizeof on_b), on_a);
    assert_int_equal(tm_store_subscribe(b, "orders", "h:2/p.S/B", "from b", 5,
                                        err, sizeof err),
                     0);
    assert_int_equal(
        tm_store_subscribe(b, "zz", "h:3/p.S/C", "from b", 5, err, sizeof err),
        1);
    assert_int_equal(
        tm_store_unsubscribe(a, "zz", "h:3/p.S/C", err, sizeof err), 1);
    assert_int_equal(
        tm_store_subscribe(b, "zz", "h:3/p.S/C", "again", 6, err, sizeof err),
        1);
    tcheck_store_text(a, on_a, sizeof on_a);
    assert_non_null(strstr(on_a, "zz h:3/p.S/C again 6\n"));
    tm_store_close(a);
    tm_store_close(b);
    a = must_open("st_topics", "node-a", 5000);
    assert_string_equal(tcheck_store_text(a, on_b, sizeof on_b), on_a);
    tm_store_close(a);
}

typedef struct {
    const char *node;
    tm_store_t *s;
    char err[512];
} open_job_t;

static const char *open_database = "st_upgrade3";

static void *open_in_thread(void *arg)
{
    open_job_t *j = arg;
    j->s = open_node(open_database, j->node, 5000, j->err, sizeof j->err);
    return NULL;
}

/* Open node-a and node-b on open_database at once (both must succeed). */
static void open_two_at_once(open_job_t *jobs)
{
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, open_in_thread, &jobs[i]),
                         0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        if (!jobs[i].s)
            fail_msg("open %s: %s", jobs[i].node, jobs[i].err);
}

/* A database of schema version 3 (no subscription table, no pivot, no
 * result_size) is upgraded to 5 by two nodes that start at once; it keeps
 * its rows and takes subscriptions. */
static void test_schema_upgrade_from_version_3(void **state)
{
    (void)state;
    tm_store_t *a = must_open("st_upgrade3", "node-a", 5000);
    tm_trans_t *tx = saga("up3-1", 1000);
    assert_int_equal(write_now(a, tx, 1), TM_WRITE_DONE);
    tm_store_close(a);
    MYSQL *c = root_session();
    run_sql(c, "DROP TABLE st_upgrade3.trellis_subscription");
    run_sql(c, "ALTER TABLE st_upgrade3.trellis_branch DROP COLUMN pivot");
    run_sql(c, "ALTER TABLE st_upgrade3.trellis_op DROP COLUMN result_size");
    run_sql(c, "UPDATE st_upgrade3.trellis_meta SET v='3' WHERE k='schema'");
    open_job_t jobs[2] = {{.node = "node-a"}, {.node = "node-b"}};
    open_database = "st_upgrade3";
    open_two_at_once(jobs);
    char version[32], err[256], text[256];
    assert_string_equal(schema_version(c, "st_upgrade3", version), "5");
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(jobs[1].s, "up3-1", &got, err, sizeof err),
                     1);
    assert_int_equal(got->submit_hash, 7);
    tm_trans_free(got);
    assert_int_equal(tm_store_subscribe(jobs[0].s, "t", "h:1/p.S/A", "r", 5,
                                        err, sizeof err),
                     1);
    assert_string_equal(tcheck_store_text(jobs[1].s, text, sizeof text),
                        "t h:1/p.S/A r 5\n");
    for (int i = 0; i < 2; i++)
        tm_store_close(jobs[i].s);
    mysql_close(c);
    tm_trans_free(tx);
}

/* A database of schema version 4 (no pivot, no result_size) is upgraded
 * to 5 by two nodes that start at once, one of them finding the branch
 * column another node's upgrade already added; the old rows read back
 * with no pivot and a result_size of 0, and both columns keep what is
 * written. */
static void test_schema_upgrade_from_version_4(void **state)
{
    (void)state;
    tm_store_t *a = must_open("st_upgrade4", "node-a", 5000);
    tm_trans_t *tx = saga("up4-1", 1000);
    assert_int_equal(write_now(a, tx, 1), TM_WRITE_DONE);
    tm_store_close(a);
    MYSQL *c = root_session();
    run_sql(c, "ALTER TABLE st_upgrade4.trellis_op DROP COLUMN result_size");
    run_sql(c, "UPDATE st_upgrade4.trellis_meta SET v='4' WHERE k='schema'");
    open_job_t jobs[2] = {{.node = "node-a"}, {.node = "node-b"}};
    open_database = "st_upgrade4";
    open_two_at_once(jobs);
    char version[32], err[256];
    assert_string_equal(schema_version(c, "st_upgrade4", version), "5");
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(jobs[1].s, "up4-1", &got, err, sizeof err),
                     1);
    assert_int_equal(got->branches[1].pivot, 0);
    assert_true(got->branches[0].ops[TM_SLOT_FORWARD].result_size == 0);
    tm_store_close(jobs[1].s);
    got->branches[0].ops[TM_SLOT_FORWARD].status = TM_OP_SUCCEEDED;
    got->branches[0].ops[TM_SLOT_FORWARD].result_size = 5000000000u;
    assert_int_equal(write_now(jobs[0].s, got, 0), TM_WRITE_DONE);
    tm_trans_free(got);
    /* branch rows are written once: a pivot comes with a new one */
    tm_trans_t *fresh = saga("up4-2", 2000);
    fresh->branches[1].pivot = 1;
    assert_int_equal(write_now(jobs[0].s, fresh, 1), TM_WRITE_DONE);
    assert_int_equal(tm_store_get(jobs[0].s, "up4-1", &got, err, sizeof err),
                     1);
    assert_true(got->branches[0].ops[TM_SLOT_FORWARD].result_size ==
                5000000000u);
    tm_trans_free(got);
    assert_int_equal(tm_store_get(jobs[0].s, "up4-2", &got, err, sizeof err),
                     1);
    assert_int_equal(got->branches[0].pivot, 0);
    assert_int_equal(got->branches[1].pivot, 1);
    tm_trans_free(got);
    tm_store_close(jobs[0].s);
    mysql_close(c);
    tm_trans_free(fresh);
    tm_trans_free(tx);
}

/* ---- issue 12 item 8: payloads the server cannot take ------------------- */

static tm_write_result_t result_of[3];

static void note_into(void *arg, tm_write_result_t r)
{
    *(tm_write_result_t *)arg = r;
}

static void test_item8_oversize_write_fails_alone(void **state)
{
    (void)state;
    assert_int_equal(
        harness_mariadb_exec(db, "SET GLOBAL max_allowed_packet = 1048576"), 0);
    tm_store_t *s = must_open("st_oversize", "node-a", 5000);
    char why[200];
    uint32_t cap = tm_store_max_payload(s, why, sizeof why);
    printf("payload bound: %u (%s)\n", cap, why);
    assert_true(cap < 1048576 / 2);
    assert_non_null(strstr(why, "max_allowed_packet 1048576"));
    /* One group: a small write, one whose payload the server refuses
     * (hex: 1.4 MB in one row), another small one. */
    tm_trans_t *small = saga("os-small", 1000);
    tm_trans_t *huge = saga("os-huge", 1000);
    tm_trans_t *after = saga("os-after", 1000);
    free(huge->branches[0].payload);
    huge->branches[0].payload_len = 700 * 1024;
    huge->branches[0].payload = calloc(1, huge->branches[0].payload_len);
    tm_trans_t *txs[3] = {small, huge, after};
    for (int i = 0; i < 3; i++) {
        result_of[i] = TM_WRITE_DONE;
        tm_store_queue(s, tm_write_capture_all(txs[i], 1), note_into,
                       &result_of[i]);
    }
    tm_store_flush(s); /* before the fix: never returns (retried forever) */
    assert_int_equal(result_of[0], TM_WRITE_DONE);
    assert_int_equal(result_of[1], TM_WRITE_FAILED);
    assert_int_equal(result_of[2], TM_WRITE_DONE);
    char err[256];
    tm_tx_status_t st;
    uint64_t hash;
    assert_int_equal(tm_store_peek(s, "os-huge", &st, &hash, err, sizeof err),
                     0);
    assert_int_equal(tm_store_peek(s, "os-after", &st, &hash, err, sizeof err),
                     1);
    /* and the store goes on */
    small->status = TM_TX_SUCCEEDED;
    small->finished_ms = 1100;
    assert_int_equal(write_now(s, small, 0), TM_WRITE_DONE);
    assert_true(tm_store_healthy(s, NULL, 0));
    tm_store_close(s);
    for (int i = 0; i < 3; i++)
        tm_trans_free(txs[i]);
    assert_int_equal(
        harness_mariadb_exec(db, "SET GLOBAL max_allowed_packet = 16777216"),
        0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_reload),
        cmocka_unit_test(test_fenced_writes),
        cmocka_unit_test(test_refusals_at_open),
        cmocka_unit_test(test_claim_after_lease_runs_out),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_large_group_in_pieces),
        cmocka_unit_test(test_item3_generation_fences_a_b_a),
        cmocka_unit_test(test_item11_get_reads_one_snapshot),
        cmocka_unit_test(test_schema_upgrade_from_version_1),
        cmocka_unit_test(test_item8_oversize_write_fails_alone),
        cmocka_unit_test(test_recorded_results_round_trip),
        cmocka_unit_test(test_schema_upgrade_from_version_2),
        cmocka_unit_test(test_subscriptions_shared_by_nodes),
        cmocka_unit_test(test_schema_upgrade_from_version_3),
        cmocka_unit_test(test_schema_upgrade_from_version_4),
    };
    return cmocka_run_group_tests(tests, start_db, stop_db);
}
