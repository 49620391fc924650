/*
 * Unit tests of the embedded store: what the engine writes comes back
 * after a reopen (the restart case), unfinished transactions are found for
 * recovery, writes commit in queue order, and list pages through by time;
 * an op's recorded result (any bytes, 60 KiB too) comes back byte for
 * byte; a database of schema version 1 is upgraded at open and keeps its
 * rows, and a version this code does not know is refused. Topics: a
 * subscription is created once (a repeat keeps the first remark), listed
 * by topic, then age, then target, removed once, and survives a reopen;
 * a database of schema version 2 is upgraded to keep them. Schema 3 is
 * upgraded to 4 (a branch's pivot, an op's result_size), its rows read
 * back with neither, and both are kept once written. A read of a
 * transaction sees one commit, also while commits go on.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "tm_clock.h"
#include "list_pages.h"
#include "tm_store.h"
#include "topics_check_store.h"

static char dir[512];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/test-data/unit-store-%d", TRELLIS_BUILD_DIR,
             (int)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    return system(cmd);
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static tm_trans_t *two_step_saga(const char *gid, int64_t created)
{
    tm_trans_t *tx = tm_trans_new(gid, TM_TX_SUBMITTED, created);
    tx->submit_hash = 42;
    tx->opts.retry_interval_ms = 77;
    for (int i = 0; i < 2; i++) {
        tm_branch_t *b = tm_trans_add_branch(tx);
        b->branch_id = tm_strdup(i ? "02" : "01");
        b->mode = TM_MODE_SAGA;
        b->payload = (uint8_t *)tm_strdup("pay");
        b->payload_len = 3;
        if (i) {
            b->deps = malloc(sizeof(uint32_t));
            b->deps[0] = 0;
            b->n_deps = 1;
        }
        b->ops[TM_SLOT_FORWARD].kind = TM_KIND_ACTION;
        b->ops[TM_SLOT_FORWARD].status = TM_OP_PENDING;
        b->ops[TM_SLOT_FORWARD].target = tm_strdup("h:1/p.S/A");
        b->ops[TM_SLOT_ROLLBACK].kind = TM_KIND_COMPENSATE;
        b->ops[TM_SLOT_ROLLBACK].status = TM_OP_PENDING;
        b->ops[TM_SLOT_ROLLBACK].target = tm_strdup("h:1/p.S/C");
    }
    return tx;
}

/* The embedded engine under the test's directory. */
static int open_store(tm_store_t **s, char *err, size_t errlen)
{
    tm_store_config_t cfg;
    tm_store_config_default(&cfg);
    cfg.data_dir = dir;
    return tm_store_open(&cfg, s, err, errlen);
}

static int order[8];
static int n_order;

static void note_done(void *arg, tm_write_result_t result)
{
    assert_int_equal(result, TM_WRITE_DONE);
    order[n_order++] = (int)(intptr_t)arg;
}

static void count_loaded(tm_trans_t *tx, void *arg)
{
    (*(int *)arg)++;
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    assert_int_equal(tx->n_branches, 2);
    tm_trans_free(tx);
}

static void test_round_trip_survives_reopen(void **state)
{
    (void)state;
    char err[256];
    tm_store_t *s;
    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    tm_trans_t *a = two_step_saga("gid-a", 1000);
    tm_trans_t *b = two_step_saga("gid-b", 2000);
    tm_store_queue(s, tm_write_capture_all(a, 1), note_done, (void *)1);
    tm_store_queue(s, tm_write_capture_all(b, 1), note_done, (void *)2);
    /* a's first step succeeds: only that op and the header are written */
    tm_op_t *op = &a->branches[0].ops[TM_SLOT_FORWARD];
    op->status = TM_OP_SUCCEEDED;
    tm_op_note_attempt(op, 1500);
    tm_op_note_attempt(op, 1600);
    op->last_error = tm_strdup("grpc status 14: down");
    tm_store_queue(s, tm_write_capture_all(a, 0), note_done, (void *)3);
    /* b finishes */
    b->status = TM_TX_FAILED;
    b->reason = tm_strdup("branch 02 action failed: no cars");
    b->finished_ms = 2500;
    tm_store_queue(s, tm_write_capture_all(b, 0), note_done, (void *)4);
    tm_store_flush(s);
    assert_int_equal(n_order, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(order[i], i + 1);
    tm_store_close(s);

    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(s, "gid-a", &got, err, sizeof(err)), 1);
    assert_int_equal(got->status, TM_TX_SUBMITTED);
    assert_int_equal(got->submit_hash, 42);
    assert_int_equal(got->opts.retry_interval_ms, 77);
    assert_int_equal(got->n_branches, 2);
    assert_int_equal(got->branches[1].n_deps, 1);
    assert_int_equal(got->branches[1].deps[0], 0);
    assert_memory_equal(got->branches[0].payload, "pay", 3);
    const tm_op_t *g = &got->branches[0].ops[TM_SLOT_FORWARD];
    assert_int_equal(g->status, TM_OP_SUCCEEDED);
    assert_int_equal(g->attempts, 2);
    assert_int_equal(g->n_attempt_ms, 2);
    assert_int_equal(g->attempt_ms[1], 1600);
    assert_string_equal(g->last_error, "grpc status 14: down");
    assert_int_equal(got->branches[1].ops[TM_SLOT_FORWARD].status,
                     TM_OP_PENDING);
    const tm_op_t *comp = &got->branches[1].ops[TM_SLOT_ROLLBACK];
    assert_int_equal(comp->kind, TM_KIND_COMPENSATE);
    assert_string_equal(comp->target, "h:1/p.S/C");
    assert_int_equal(got->branches[1].ops[TM_SLOT_COMMIT].kind, TM_KIND_NONE);
    tm_trans_free(got);

    /* b finished: its never-called ops read back as SKIPPED */
    assert_int_equal(tm_store_get(s, "gid-b", &got, err, sizeof(err)), 1);
    assert_int_equal(got->status, TM_TX_FAILED);
    assert_string_equal(got->reason, "branch 02 action failed: no cars");
    assert_int_equal(got->branches[0].ops[TM_SLOT_FORWARD].status,
                     TM_OP_SKIPPED);
    assert_string_equal(got->branches[0].ops[TM_SLOT_FORWARD].target,
                        "h:1/p.S/A");
    tm_trans_free(got);

    tm_tx_status_t st;
    uint64_t h;
    assert_int_equal(tm_store_peek(s, "gid-b", &st, &h, err, sizeof(err)), 1);
    assert_int_equal(st, TM_TX_FAILED);
    assert_int_equal(tm_store_peek(s, "nope", &st, &h, err, sizeof(err)), 0);

    int loaded = 0;
    assert_int_equal(
        tm_store_load_unfinished(s, count_loaded, &loaded, err, sizeof(err)),
        1);
    assert_int_equal(loaded, 1);
    tm_store_close(s);
    tm_trans_free(a);
    tm_trans_free(b);
}

static void test_list_pages_by_creation_time(void **state)
{
    (void)state;
    char err[256];
    tm_store_t *s;
    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    for (int i = 0; i < 5; i++) {
        char gid[16];
        snprintf(gid, sizeof(gid), "L%d", i);
        tm_trans_t *tx = two_step_saga(gid, 10000 + i);
        if (i % 2)
            tx->status = TM_TX_SUCCEEDED;
        tm_store_queue(s, tm_write_capture_all(tx, 1), NULL, NULL);
        tm_trans_free(tx);
    }
    tm_store_flush(s);
    tm_store_filter_t f = {0};
    f.created_after_ms = 9999;
    f.limit = 2;
    tm_trans_t **items;
    size_t n;
    assert_int_equal(tm_store_list(s, &f, &items, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[0]->gid, "L0");
    assert_string_equal(items[1]->gid, "L1");
    f.after_created_ms = items[1]->created_ms;
    f.after_gid = "L1";
    for (size_t i = 0; i < n; i++)
        tm_trans_free(items[i]);
    free(items);
    assert_int_equal(tm_store_list(s, &f, &items, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[0]->gid, "L2");
    for (size_t i = 0; i < n; i++)
        tm_trans_free(items[i]);
    free(items);
    f.after_gid = NULL;
    f.status = TM_TX_SUCCEEDED;
    f.limit = 10;
    assert_int_equal(tm_store_list(s, &f, &items, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2); /* L1 and L3 */
    for (size_t i = 0; i < n; i++)
        tm_trans_free(items[i]);
    free(items);
    tm_store_close(s);
}

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

static void test_recorded_results_round_trip(void **state)
{
    (void)state;
    char err[256];
    tm_store_t *s;
    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    tm_trans_t *tx = two_step_saga("gid-rec", 3000);
    tm_store_queue(s, tm_write_capture_all(tx, 1), NULL, NULL);
    static const uint8_t small[] = {0, 'o', 'k', 0xff, 0, 0xfe, 0xff};
    enum { BIG = 60 * 1024 };
    uint8_t *big = pattern(BIG);
    record(&tx->branches[0].ops[TM_SLOT_FORWARD], small, sizeof(small));
    record(&tx->branches[1].ops[TM_SLOT_FORWARD], big, BIG);
    /* succeeded but not recorded: no result */
    tx->branches[0].ops[TM_SLOT_ROLLBACK].status = TM_OP_SUCCEEDED;
    tm_store_queue(s, tm_write_capture_all(tx, 0), NULL, NULL);
    tm_store_flush(s);
    tm_store_close(s);

    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(s, "gid-rec", &got, err, sizeof(err)), 1);
    assert_result(&got->branches[0].ops[TM_SLOT_FORWARD], small, sizeof(small));
    assert_result(&got->branches[1].ops[TM_SLOT_FORWARD], big, BIG);
    const tm_op_t *plain = &got->branches[0].ops[TM_SLOT_ROLLBACK];
    assert_int_equal(plain->status, TM_OP_SUCCEEDED);
    assert_int_equal(plain->recorded, 0);
    assert_null(plain->result);
    assert_int_equal(plain->result_len, 0);
    tm_trans_free(got);
    tm_store_close(s);
    tm_trans_free(tx);
    free(big);
}

/* ---- topics -------------------------------------------------------------- */

static void test_subscriptions(void **state)
{
    (void)state;
    char err[256], before[1024], after[1024];
    tm_store_t *s;
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    tm_engine_env_t env = tcheck_store_env(s);
    tcheck_contract(&env);
    tcheck_store_text(s, before, sizeof(before));
    assert_non_null(strstr(before, "orders h:2/p.S/B second 200\n"));
    tcheck_limits(&env);
    assert_string_equal(tcheck_store_text(s, after, sizeof(after)), before);
    tm_store_close(s);

    /* reopened: every subscription as it was */
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("reopen: %s", err);
    assert_string_equal(tcheck_store_text(s, after, sizeof(after)), before);
    tm_store_close(s);
}

/* Subscribers from several threads while the store thread commits
 * transactions: each thread's subscriptions all land, once. */
#define SUB_THREADS 4
#define SUBS_EACH 25

static void *subscriber_main(void *arg)
{
    tm_store_t *s = ((void **)arg)[0];
    int id = (int)(intptr_t)((void **)arg)[1];
    char target[64], err[256];
    intptr_t created = 0;
    for (int i = 0; i < SUBS_EACH; i++) {
        snprintf(target, sizeof(target), "h:%d/p.S/M%d", id, i);
        created +=
            tm_store_subscribe(s, "busy", target, "", i, err, sizeof(err)) == 1;
    }
    return (void *)created;
}

static void test_subscriptions_while_committing(void **state)
{
    (void)state;
    char err[256];
    tm_store_t *s;
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    pthread_t th[SUB_THREADS];
    void *args[SUB_THREADS][2];
    for (int i = 0; i < SUB_THREADS; i++) {
        args[i][0] = s;
        args[i][1] = (void *)(intptr_t)i;
        assert_int_equal(pthread_create(&th[i], NULL, subscriber_main, args[i]),
                         0);
    }
    for (int i = 0; i < 200; i++) {
        char gid[32];
        snprintf(gid, sizeof(gid), "busy-%d", i);
        tm_trans_t *tx = two_step_saga(gid, 1000 + i);
        tm_store_queue(s, tm_write_capture_all(tx, 1), NULL, NULL);
        tm_trans_free(tx);
    }
    intptr_t created = 0;
    for (int i = 0; i < SUB_THREADS; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        created += (intptr_t)rc;
    }
    tm_store_flush(s);
    assert_int_equal(created, SUB_THREADS * SUBS_EACH);
    tm_subscription_t *v;
    size_t n;
    assert_int_equal(
        tm_store_subscriptions(s, "busy", &v, &n, err, sizeof(err)), 0);
    assert_int_equal(n, SUB_THREADS * SUBS_EACH);
    for (size_t i = 1; i < n; i++) /* by age, then target */
        assert_true(v[i - 1].created_ms < v[i].created_ms ||
                    (v[i - 1].created_ms == v[i].created_ms &&
                     strcmp(v[i - 1].target, v[i].target) < 0));
    tm_subscriptions_free(v, n);
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(s, "busy-199", &got, err, sizeof(err)), 1);
    tm_trans_free(got);
    tm_store_close(s);
}

/* ---- schema upgrade ------------------------------------------------------ */

/* Schema version 1 as trellisd created it before ops had a recorded
 * result, and one transaction in it: a saga step that succeeded. */
static const char *schema_1_sql =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE trans("
    " gid TEXT PRIMARY KEY, status INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " finished_ms INTEGER NOT NULL DEFAULT 0, reason TEXT,"
    " submit_hash INTEGER NOT NULL DEFAULT 0, options BLOB) WITHOUT ROWID;"
    "CREATE INDEX trans_by_created ON trans(created_ms, gid);"
    "CREATE INDEX trans_unfinished ON trans(status) WHERE status < 4;"
    "CREATE TABLE branch("
    " gid TEXT NOT NULL, idx INTEGER NOT NULL, branch_id TEXT NOT NULL,"
    " mode INTEGER NOT NULL, initiator_driven INTEGER NOT NULL,"
    " payload BLOB, depends_on TEXT NOT NULL,"
    " kind0 INTEGER NOT NULL, target0 TEXT, kind1 INTEGER NOT NULL,"
    " target1 TEXT, kind2 INTEGER NOT NULL, target2 TEXT,"
    " PRIMARY KEY(gid, idx)) WITHOUT ROWID;"
    "CREATE TABLE op("
    " gid TEXT NOT NULL, idx INTEGER NOT NULL, slot INTEGER NOT NULL,"
    " status INTEGER NOT NULL, attempts INTEGER NOT NULL, last_error TEXT,"
    " attempt_ms TEXT, finished_ms INTEGER NOT NULL,"
    " late INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(gid, idx, slot)) WITHOUT ROWID;"
    "INSERT INTO meta VALUES('schema', '1');"
    "INSERT INTO trans VALUES('old-1', 2, 1000, 1100, 0, NULL, 9, NULL);"
    "INSERT INTO branch VALUES('old-1', 0, '01', 1, 0, X'00ff', '',"
    " 1, 'h:1/p.S/A', 0, NULL, 2, 'h:1/p.S/C');"
    "INSERT INTO op VALUES('old-1', 0, 0, 2, 1, NULL, '1050', 1060, 0);";

/* Run sql on the test's trellis.db (created if missing). */
static void sql_on_file(const char *sql)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/trellis.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

/* The first column of the first row of sql (with ?1 bound to arg when
 * not NULL) on the test's trellis.db, as text into out[32]. */
static const char *query_text(const char *sql, const char *arg, char *out)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/trellis.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, 32, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* The schema version stored in the test's trellis.db, in out[32]. */
static const char *stored_version(char *out)
{
    return query_text("SELECT value FROM meta WHERE key='schema'", NULL, out);
}

static void test_schema_upgrade_from_version_1(void **state)
{
    (void)state;
    sql_on_file(schema_1_sql);
    char err[256], version[32];
    tm_store_t *s;
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(s, "old-1", &got, err, sizeof(err)), 1);
    assert_int_equal(got->status, TM_TX_SUBMITTED);
    assert_int_equal(got->submit_hash, 9);
    assert_int_equal(got->branches[0].payload_len, 2);
    assert_memory_equal(got->branches[0].payload, "\x00\xff", 2);
    tm_op_t *op = &got->branches[0].ops[TM_SLOT_FORWARD];
    assert_int_equal(op->status, TM_OP_SUCCEEDED);
    assert_int_equal(op->attempts, 1);
    assert_int_equal(op->finished_ms, 1060);
    assert_int_equal(op->recorded, 0);
    assert_null(op->result);
    assert_int_equal(op->result_len, 0);
    /* the upgraded table takes a recorded result */
    static const uint8_t bytes[] = {0xff, 0, 'x'};
    tm_op_t *comp = &got->branches[0].ops[TM_SLOT_ROLLBACK];
    record(comp, bytes, sizeof(bytes));
    tm_store_queue(s, tm_write_capture_all(got, 0), NULL, NULL);
    tm_store_flush(s);
    tm_trans_free(got);
    tm_store_close(s);
    assert_string_equal(stored_version(version), "5");

    /* reopened: no second upgrade, the rows as written */
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("reopen: %s", err);
    assert_int_equal(tm_store_get(s, "old-1", &got, err, sizeof(err)), 1);
    assert_int_equal(got->branches[0].ops[TM_SLOT_FORWARD].recorded, 0);
    assert_result(&got->branches[0].ops[TM_SLOT_ROLLBACK], bytes,
                  sizeof(bytes));
    tm_trans_free(got);
    tm_store_close(s);

    /* a version this code does not know is refused */
    sql_on_file("UPDATE meta SET value='99' WHERE key='schema'");
    assert_int_not_equal(open_store(&s, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "schema version 99"));
}

/* Schema version 3 (topics, no pivot, no result_size) upgrades to 4:
 * the old rows read back with no pivot and a result_size of 0, and the
 * new columns keep what is written. */
static void test_schema_upgrade_from_version_3(void **state)
{
    (void)state;
    sql_on_file(schema_1_sql);
    sql_on_file("ALTER TABLE op ADD COLUMN recorded INTEGER NOT NULL"
                " DEFAULT 0;"
                "ALTER TABLE op ADD COLUMN result BLOB;"
                "CREATE TABLE subscription(topic TEXT NOT NULL,"
                " target TEXT NOT NULL, remark TEXT NOT NULL,"
                " created_ms INTEGER NOT NULL,"
                " PRIMARY KEY(topic, target)) WITHOUT ROWID;"
                "UPDATE meta SET value='3' WHERE key='schema';");
    char err[256], version[32];
    tm_store_t *s;
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    assert_string_equal(stored_version(version), "5");
    tm_trans_t *tx = NULL;
    assert_int_equal(tm_store_get(s, "old-1", &tx, err, sizeof(err)), 1);
    assert_int_equal(tx->branches[0].pivot, 0);
    assert_int_equal(tx->branches[0].ops[TM_SLOT_FORWARD].result_size, 0);
    tx->branches[0].ops[TM_SLOT_FORWARD].result_size = 5000000000u;
    tm_store_queue(s, tm_write_capture_all(tx, 0), NULL, NULL);
    /* branch rows are written once: a pivot comes with a new one */
    tm_trans_t *fresh = tm_trans_new("new-1", TM_TX_SUBMITTED, 2000);
    tm_branch_t *b = tm_trans_add_branch(fresh);
    b->branch_id = tm_strdup("01");
    b->mode = TM_MODE_SAGA;
    b->pivot = 1;
    b->ops[TM_SLOT_FORWARD].kind = TM_KIND_ACTION;
    b->ops[TM_SLOT_FORWARD].target = tm_strdup("h:1/p.S/A");
    tm_store_queue(s, tm_write_capture_all(fresh, 1), NULL, NULL);
    tm_store_flush(s);
    tm_trans_free(fresh);
    tm_trans_free(tx);
    tm_store_close(s);
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("reopen: %s", err);
    assert_int_equal(tm_store_get(s, "old-1", &tx, err, sizeof(err)), 1);
    assert_true(tx->branches[0].ops[TM_SLOT_FORWARD].result_size ==
                5000000000u);
    assert_int_equal(tx->branches[0].ops[TM_SLOT_FORWARD].status,
                     TM_OP_SUCCEEDED);
    tm_trans_free(tx);
    assert_int_equal(tm_store_get(s, "new-1", &tx, err, sizeof(err)), 1);
    assert_int_equal(tx->branches[0].pivot, 1);
    tm_trans_free(tx);
    tm_store_close(s);
    assert_string_equal(stored_version(version), "5");
}

/* Schema version 2 (a recorded result, no topics) upgrades to 3: the
 * rows stay, the subscription table is there, and the version says so. */
static void test_schema_upgrade_from_version_2(void **state)
{
    (void)state;
    sql_on_file(schema_1_sql);
    sql_on_file("ALTER TABLE op ADD COLUMN recorded INTEGER NOT NULL"
                " DEFAULT 0;"
                "ALTER TABLE op ADD COLUMN result BLOB;"
                "UPDATE meta SET value='2' WHERE key='schema';");
    char err[256], version[32], got[256];
    tm_store_t *s;
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    assert_string_equal(stored_version(version), "5");
    tm_trans_t *tx = NULL;
    assert_int_equal(tm_store_get(s, "old-1", &tx, err, sizeof(err)), 1);
    assert_int_equal(tx->submit_hash, 9);
    tm_trans_free(tx);
    assert_int_equal(
        tm_store_subscribe(s, "t", "h:1/p.S/A", "r", 5, err, sizeof(err)), 1);
    tm_store_close(s);
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("reopen: %s", err);
    assert_string_equal(tcheck_store_text(s, got, sizeof(got)),
                        "t h:1/p.S/A r 5\n");
    tm_store_close(s);
    assert_string_equal(stored_version(version), "5");
}

/* 1 when the test's trellis.db has an index named name, else 0. */
static int has_index(const char *name)
{
    char n[32];
    return atoi(query_text("SELECT COUNT(*) FROM sqlite_master"
                           " WHERE type='index' AND name=?1",
                           name, n));
}

static void count_unfinished(tm_trans_t *tx, void *arg)
{
    (*(int *)arg)++;
    tm_trans_free(tx);
}

/* Schema version 4 (the partial index trans_unfinished) upgrades to 5:
 * trans_by_status in its place; a List by status pages through it in
 * creation order (ties by gid), and the unfinished ones still load. */
static void test_schema_upgrade_from_version_4(void **state)
{
    (void)state;
    char err[256], version[32], got[256];
    tm_store_t *s;
    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    static const char *const gids[] = {"S0", "S1", "S2", "S3",
                                       "S4", "S5", "S6"};
    for (int i = 0; i < 7; i++) {
        /* S1 and S2 created at once: the cursor's tie goes by gid */
        tm_trans_t *tx = two_step_saga(gids[i], 500 + i - (i == 2));
        tx->status = i % 3 ? TM_TX_SUCCEEDED : TM_TX_SUBMITTED;
        tm_store_queue(s, tm_write_capture_all(tx, 1), NULL, NULL);
        tm_trans_free(tx);
    }
    tm_store_flush(s);
    tm_store_close(s);
    sql_on_file("DROP INDEX trans_by_status;"
                "CREATE INDEX trans_unfinished ON trans(status)"
                " WHERE status < 4;"
                "UPDATE meta SET value='4' WHERE key='schema';");
    if (open_store(&s, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    assert_string_equal(stored_version(version), "5");
    assert_int_equal(has_index("trans_by_status"), 1);
    assert_int_equal(has_index("trans_unfinished"), 0);
    tm_store_filter_t f = {.status = TM_TX_SUCCEEDED, .limit = 2};
    assert_string_equal(tcheck_list_pages(s, f, got, sizeof(got)),
                        "S1 S2 S4 S5");
    f.status = TM_TX_SUBMITTED;
    f.created_after_ms = 500;
    assert_string_equal(tcheck_list_pages(s, f, got, sizeof(got)), "S3 S6");
    f = (tm_store_filter_t){.limit = 3, .created_before_ms = 506};
    assert_string_equal(tcheck_list_pages(s, f, got, sizeof(got)),
                        "S0 S1 S2 S3 S4 S5");
    int loaded = 0;
    assert_int_equal(tm_store_load_unfinished(s, count_unfinished, &loaded, err,
                                              sizeof(err)),
                     3);
    assert_int_equal(loaded, 3);
    tm_store_close(s);
}

/* Retention works off a backlog of many batches, in slices between the
 * groups (which keep committing meanwhile), and deletes only finished
 * transactions past the retention. */
static void test_retention_backlog_between_groups(void **state)
{
    (void)state;
    tm_store_config_t cfg;
    tm_store_config_default(&cfg);
    cfg.data_dir = dir;
    cfg.retention_ms = 60000;
    char err[256], gid[32];
    tm_store_t *s;
    assert_int_equal(tm_store_open(&cfg, &s, err, sizeof(err)), 0);
    int64_t now = tm_wall_ms();
    for (int i = 0; i < 1700; i++) {
        snprintf(gid, sizeof(gid), "old-%04d", i);
        tm_trans_t *tx = two_step_saga(gid, now - 200000 + i);
        /* 1600 finished long ago; 100 never finished */
        tx->status = i < 1600 ? TM_TX_SUCCEEDED : TM_TX_SUBMITTED;
        tx->finished_ms = i < 1600 ? now - 100000 : 0;
        tm_store_queue(s, tm_write_capture_all(tx, 1), NULL, NULL);
        tm_trans_free(tx);
    }
    tm_store_flush(s);
    tm_store_stats_t st = {0};
    int64_t deadline = tm_mono_ms() + 60000;
    for (int i = 0; st.purged < 1600 && tm_mono_ms() < deadline; i++) {
        snprintf(gid, sizeof(gid), "new-%d", i); /* commits go on */
        tm_trans_t *tx = two_step_saga(gid, now);
        tx->status = TM_TX_SUCCEEDED;
        tx->finished_ms = now;
        tm_store_queue(s, tm_write_capture_all(tx, 1), NULL, NULL);
        tm_trans_free(tx);
        tm_store_flush(s);
        usleep(20000);
        tm_store_stats(s, &st);
    }
    assert_int_equal(st.purged, 1600);
    tm_store_filter_t f = {.status = TM_TX_SUBMITTED, .limit = 200};
    char got[4096];
    tcheck_list_pages(s, f, got, sizeof(got));
    assert_non_null(strstr(got, "old-1600 old-1601"));
    assert_non_null(strstr(got, "old-1699"));
    f = (tm_store_filter_t){.status = TM_TX_SUCCEEDED, .limit = 100};
    static char done[65536];
    tcheck_list_pages(s, f, done, sizeof(done));
    assert_int_equal(strncmp(done, "new-0", 5), 0);
    assert_null(strstr(done, "old-")); /* every finished old one deleted */
    tm_store_close(s);
}

/* ---- a read sees one commit ------------------------------------------ */

typedef struct {
    tm_store_t *s;
    atomic_int writing;
    long reads, torn;
    int64_t last_h, last_o; /* the last torn read's two values */
} torn_check_t;

/* Read "torn" until the writer is done; count the reads whose header and
 * op come from different commits (every write sets both to one value). */
static void *read_while_committing(void *arg)
{
    torn_check_t *c = arg;
    char err[256];
    while (atomic_load(&c->writing)) {
        tm_trans_t *got = NULL;
        if (tm_store_get(c->s, "torn", &got, err, sizeof(err)) != 1)
            continue;
        c->reads++;
        if (got->updated_ms != got->branches[0].ops[TM_SLOT_FORWARD].attempts) {
            c->torn++;
            c->last_h = got->updated_ms;
            c->last_o = got->branches[0].ops[TM_SLOT_FORWARD].attempts;
        }
        tm_trans_free(got);
    }
    return NULL;
}

/* Query reads a transaction's header, branches and ops in three
 * statements: they must see one commit, never the header of one and the
 * ops of the next (a Query once showed a stopped workflow's failed op
 * beside a header without the reason that same write set). */
static void test_get_sees_one_commit(void **state)
{
    (void)state;
    char err[256];
    tm_store_t *s;
    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    tm_trans_t *tx = two_step_saga("torn", 1000);
    tx->updated_ms = 0;
    tm_store_queue(s, tm_write_capture_all(tx, 1), NULL, NULL);
    tm_store_flush(s);
    torn_check_t c = {.s = s};
    atomic_store(&c.writing, 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, read_while_committing, &c), 0);
    for (int i = 1; i <= 3000; i++) {
        tx->updated_ms = i;
        tx->branches[0].ops[TM_SLOT_FORWARD].attempts = (uint32_t)i;
        tm_store_queue(s, tm_write_capture_all(tx, 0), NULL, NULL);
        if (i % 3 == 0)
            tm_store_flush(s); /* one commit at a time, many of them */
    }
    tm_store_flush(s);
    atomic_store(&c.writing, 0);
    pthread_join(th, NULL);
    fprintf(stderr,
            "%ld reads during 3000 writes, %ld torn (the last: header %lld, op "
            "%lld)\n",
            c.reads, c.torn, (long long)c.last_h, (long long)c.last_o);
    assert_true(c.reads > 0);
    assert_int_equal(c.torn, 0);
    tm_trans_free(tx);
    tm_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_survives_reopen,
                                        make_dir, NULL),
        cmocka_unit_test_setup_teardown(test_list_pages_by_creation_time,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_recorded_results_round_trip,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_schema_upgrade_from_version_1,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_schema_upgrade_from_version_2,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_schema_upgrade_from_version_3,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_schema_upgrade_from_version_4,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_get_sees_one_commit, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_retention_backlog_between_groups,
                                        make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_subscriptions, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_subscriptions_while_committing,
                                        make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
