/*
 * test_store_mysql_schema.c: the MySQL store's schema upgrades against a
 * real MariaDB, each from a database as an older trellisd left it:
 *   - version 1 (no generation, no origin, no recorded results, no pivot,
 *     no result_size) is upgraded at open to the current version and
 *     keeps its rows;
 *   - version 2 (ops without recorded results) keeps its rows and takes
 *     recorded results;
 *   - version 3 (no subscription table) is upgraded by two nodes starting
 *     at once and takes subscriptions;
 *   - version 4 (no branch pivot, no op result_size) is upgraded by two
 *     nodes at once, one meeting the other's upgrade halfway; old rows
 *     read back with neither, and both are kept once written;
 *   - version 5 (no trans_by_status index) is upgraded by two nodes at
 *     once and pages a List by status in creation order.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list_pages.h"
#include "store_mysql_fixture.h"
#include "topics_check_store.h"

/* A database of schema version 1 (no generation, no origin; no recorded
 * results; no pivot, no result_size) is upgraded at open, to version 6,
 * and keeps its rows. */
static void test_schema_upgrade_from_version_1(void **state)
{
    (void)state;
    tm_store_t *a = smy_must_open("st_upgrade", "node-a", 5000);
    tm_trans_t *tx = smy_saga("up-1", 1000);
    assert_int_equal(smy_write_now(a, tx, 1), TM_WRITE_DONE);
    tm_store_close(a);
    assert_int_equal(harness_mariadb_exec(
                         smy_db(), "ALTER TABLE st_upgrade.trellis_trans DROP"
                                   " COLUMN generation, DROP COLUMN origin;"
                                   " ALTER TABLE st_upgrade.trellis_op DROP"
                                   " COLUMN recorded, DROP COLUMN result,"
                                   " DROP COLUMN result_size;"
                                   " ALTER TABLE st_upgrade.trellis_branch"
                                   " DROP COLUMN pivot;"
                                   " UPDATE st_upgrade.trellis_meta SET v='1'"
                                   " WHERE k='schema'"),
                     0);
    a = smy_must_open("st_upgrade", "node-a", 5000);
    char err[256];
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(a, "up-1", &got, err, sizeof err), 1);
    assert_int_equal(got->generation, 0);
    got->status = TM_TX_SUCCEEDED;
    got->finished_ms = 1200;
    assert_int_equal(smy_write_now(a, got, 0), TM_WRITE_DONE);
    tm_store_close(a);
    MYSQL *c = smy_root_session();
    char version[32];
    assert_string_equal(smy_schema_version(c, "st_upgrade", version), "6");
    mysql_close(c);
    tm_trans_free(got);
    tm_trans_free(tx);
}

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
    MYSQL *c = smy_root_session();
    for (size_t i = 0; i < sizeof schema_2_sql / sizeof *schema_2_sql; i++)
        smy_run_sql(c, schema_2_sql[i]);
    tm_store_t *a = smy_must_open("st_upgrade2", "node-a", 5000);
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
    smy_assert_no_result(op);
    /* the upgraded table takes a recorded result */
    static const uint8_t bytes[] = {0xff, 0, 'x'};
    smy_record(&got->branches[0].ops[TM_SLOT_ROLLBACK], bytes, sizeof bytes);
    assert_int_equal(smy_write_now(a, got, 0), TM_WRITE_DONE);
    tm_trans_free(got);
    tm_store_close(a);
    char version[32];
    assert_string_equal(smy_schema_version(c, "st_upgrade2", version), "6");

    /* reopened: the rows as written */
    a = smy_must_open("st_upgrade2", "node-a", 5000);
    assert_int_equal(tm_store_get(a, "old-1", &got, err, sizeof err), 1);
    smy_assert_no_result(&got->branches[0].ops[TM_SLOT_FORWARD]);
    smy_assert_result(&got->branches[0].ops[TM_SLOT_ROLLBACK], bytes,
                      sizeof bytes);
    tm_trans_free(got);
    tm_store_close(a);
    mysql_close(c);
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
    j->s = smy_open_node(open_database, j->node, 5000, j->err, sizeof j->err);
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
    tm_store_t *a = smy_must_open("st_upgrade3", "node-a", 5000);
    tm_trans_t *tx = smy_saga("up3-1", 1000);
    assert_int_equal(smy_write_now(a, tx, 1), TM_WRITE_DONE);
    tm_store_close(a);
    MYSQL *c = smy_root_session();
    smy_run_sql(c, "DROP TABLE st_upgrade3.trellis_subscription");
    smy_run_sql(c, "ALTER TABLE st_upgrade3.trellis_branch DROP COLUMN pivot");
    smy_run_sql(c,
                "ALTER TABLE st_upgrade3.trellis_op DROP COLUMN result_size");
    smy_run_sql(c,
                "UPDATE st_upgrade3.trellis_meta SET v='3' WHERE k='schema'");
    open_job_t jobs[2] = {{.node = "node-a"}, {.node = "node-b"}};
    open_database = "st_upgrade3";
    open_two_at_once(jobs);
    char version[32], err[256], text[256];
    assert_string_equal(smy_schema_version(c, "st_upgrade3", version), "6");
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
 * (to 5, then 6) by two nodes that start at once, one of them finding the
 * branch column another node's upgrade already added; the old rows read back
 * with no pivot and a result_size of 0, and both columns keep what is
 * written. */
static void test_schema_upgrade_from_version_4(void **state)
{
    (void)state;
    tm_store_t *a = smy_must_open("st_upgrade4", "node-a", 5000);
    tm_trans_t *tx = smy_saga("up4-1", 1000);
    assert_int_equal(smy_write_now(a, tx, 1), TM_WRITE_DONE);
    tm_store_close(a);
    MYSQL *c = smy_root_session();
    smy_run_sql(c,
                "ALTER TABLE st_upgrade4.trellis_op DROP COLUMN result_size");
    smy_run_sql(c,
                "UPDATE st_upgrade4.trellis_meta SET v='4' WHERE k='schema'");
    open_job_t jobs[2] = {{.node = "node-a"}, {.node = "node-b"}};
    open_database = "st_upgrade4";
    open_two_at_once(jobs);
    char version[32], err[256];
    assert_string_equal(smy_schema_version(c, "st_upgrade4", version), "6");
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(jobs[1].s, "up4-1", &got, err, sizeof err),
                     1);
    assert_int_equal(got->branches[1].pivot, 0);
    assert_true(got->branches[0].ops[TM_SLOT_FORWARD].result_size == 0);
    tm_store_close(jobs[1].s);
    got->branches[0].ops[TM_SLOT_FORWARD].status = TM_OP_SUCCEEDED;
    got->branches[0].ops[TM_SLOT_FORWARD].result_size = 5000000000u;
    assert_int_equal(smy_write_now(jobs[0].s, got, 0), TM_WRITE_DONE);
    tm_trans_free(got);
    /* branch rows are written once: a pivot comes with a new one */
    tm_trans_t *fresh = smy_saga("up4-2", 2000);
    fresh->branches[1].pivot = 1;
    assert_int_equal(smy_write_now(jobs[0].s, fresh, 1), TM_WRITE_DONE);
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

/* How many columns the index name of database.trellis_trans has. */
static int index_columns(MYSQL *c, const char *database, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM information_schema.statistics"
             " WHERE table_schema='%s' AND table_name='trellis_trans'"
             " AND index_name='%s'",
             database, name);
    assert_int_equal(mysql_query(c, sql), 0);
    MYSQL_RES *res = mysql_store_result(c);
    assert_non_null(res);
    MYSQL_ROW row = mysql_fetch_row(res);
    int n = row && row[0] ? atoi(row[0]) : -1;
    mysql_free_result(res);
    return n;
}

/* A database of schema version 5 (no trans_by_status) is upgraded to 6
 * by two nodes at once; a List by status pages in creation order (ties
 * by gid) over the new index. */
static void test_schema_upgrade_from_version_5(void **state)
{
    (void)state;
    tm_store_t *a = smy_must_open("st_upgrade5", "node-a", 5000);
    static const char *const gids[] = {"u5-0", "u5-1", "u5-2",
                                       "u5-3", "u5-4", "u5-5"};
    for (int i = 0; i < 6; i++) {
        /* u5-1 and u5-2 created at once: the cursor's tie goes by gid */
        tm_trans_t *tx = smy_saga(gids[i], 3000 + i - (i == 2));
        if (i % 3) {
            tx->status = TM_TX_FAILED;
            tx->finished_ms = 4000;
        }
        assert_int_equal(smy_write_now(a, tx, 1), TM_WRITE_DONE);
        tm_trans_free(tx);
    }
    tm_store_close(a);
    MYSQL *c = smy_root_session();
    smy_run_sql(c, "ALTER TABLE st_upgrade5.trellis_trans"
                   " DROP INDEX trans_by_status");
    smy_run_sql(c,
                "UPDATE st_upgrade5.trellis_meta SET v='5' WHERE k='schema'");
    assert_int_equal(index_columns(c, "st_upgrade5", "trans_by_status"), 0);
    open_job_t jobs[2] = {{.node = "node-a"}, {.node = "node-b"}};
    open_database = "st_upgrade5";
    open_two_at_once(jobs);
    char version[32], got[256];
    assert_string_equal(smy_schema_version(c, "st_upgrade5", version), "6");
    assert_int_equal(index_columns(c, "st_upgrade5", "trans_by_status"), 3);
    tm_store_filter_t f = {.status = TM_TX_FAILED, .limit = 2};
    assert_string_equal(tcheck_list_pages(jobs[0].s, f, got, sizeof got),
                        "u5-1 u5-2 u5-4 u5-5");
    f.status = TM_TX_SUBMITTED;
    assert_string_equal(tcheck_list_pages(jobs[1].s, f, got, sizeof got),
                        "u5-0 u5-3");
    tm_store_close(jobs[0].s);
    tm_store_close(jobs[1].s);
    mysql_close(c);
}

static int start(void **state)
{
    (void)state;
    return smy_start("store_mysql_schema");
}

static int stop(void **state)
{
    (void)state;
    return smy_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_upgrade_from_version_1),
        cmocka_unit_test(test_schema_upgrade_from_version_2),
        cmocka_unit_test(test_schema_upgrade_from_version_3),
        cmocka_unit_test(test_schema_upgrade_from_version_4),
        cmocka_unit_test(test_schema_upgrade_from_version_5),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
