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
 *   - retention deletes old finished transactions and nothing else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "tm_store.h"

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
    tm_write_t *w = tm_write_capture(tx, insert);
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
    op->dirty = 1;
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
        tm_store_queue(s, tm_write_capture(txs[i], 1), note, NULL);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_reload),
        cmocka_unit_test(test_fenced_writes),
        cmocka_unit_test(test_refusals_at_open),
        cmocka_unit_test(test_claim_after_lease_runs_out),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_large_group_in_pieces),
    };
    return cmocka_run_group_tests(tests, start_db, stop_db);
}
