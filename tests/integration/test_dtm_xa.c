/*
 * test_dtm_xa.c: XA through trellisd's DTM service, over the MySQL XA
 * adapter. The initiator is the independent DTM client
 * (tests/dtm/dtm_client.py "xa": Prepare, each branch's local transaction
 * called with dtm-op "action", Submit or Abort, as DTM's
 * XaGlobalTransaction); the participant is trellis-dtm-xasvc
 * (harness/dtm_xasvc.c), which works as DTM's XA participants do: its
 * local transaction registers the branch with dtmgimp.Dtm/RegisterBranch
 * (Data {"url"}) and is prepared on the shared MariaDB by the adapter;
 * trellisd then calls commit or rollback at that url.
 *
 * Checked as a user relies on it: the transaction's final state, the rows
 * the branches left in the business database (committed exactly once, or
 * none), and no XID left prepared — also when trellisd is killed -9 while
 * a commit is held at the participant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "itest_dtm.h"

typedef struct {
    harness_server_t *svc;
    MYSQL *db;
    char target[128]; /* the service's Transfer method */
} xa_fixture_t;

static xa_fixture_t X;

static itest_t *start(void **state, const char *name)
{
    itest_t *t = itest_start(state, name, NULL);
    harness_mariadb_t *m = harness_shared_mariadb();
    assert_non_null(m);
    char database[96], bin[512];
    harness_tm_store_database(t->h, "xabank", database, sizeof database);
    snprintf(bin, sizeof bin, "%s/bin/trellis-dtm-xasvc", harness_build_dir());
    const char *args[] = {"--tm",
                          harness_server_addr(t->tm),
                          "--mysql-socket",
                          harness_mariadb_socket(m),
                          "--mysql-database",
                          database,
                          NULL};
    X.svc = harness_server_start(t->h, "xasvc", bin, args);
    assert_non_null(X.svc);
    snprintf(X.target, sizeof X.target, "%s/trellis.test.XaBank/Transfer",
             harness_server_addr(X.svc));
    X.db = mysql_init(NULL);
    assert_non_null(X.db);
    if (!mysql_real_connect(X.db, NULL, "root", NULL, database, 0,
                            harness_mariadb_socket(m), 0))
        fail_msg("connect %s: %s", database, mysql_error(X.db));
    return t;
}

static void pass(void **state)
{
    mysql_close(X.db);
    X.db = NULL;
    itest_pass(state);
}

static int teardown(void **state)
{
    if (X.db)
        mysql_close(X.db);
    X.db = NULL;
    return itest_teardown(state);
}

static long long query_count(const char *sql)
{
    if (mysql_query(X.db, sql) != 0)
        fail_msg("%s: %s", sql, mysql_error(X.db));
    MYSQL_RES *r = mysql_store_result(X.db);
    assert_non_null(r);
    MYSQL_ROW row = mysql_fetch_row(r);
    long long n = row && row[0] ? atoll(row[0]) : -1;
    mysql_free_result(r);
    return n;
}

/* Committed effects rows of gid's branches. */
static long long effects(const char *gid)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM effects WHERE gid = '%s'",
             gid);
    return query_count(sql);
}

/* XIDs still prepared for gid (gtrid "gid-branch"). */
static int prepared(const char *gid)
{
    assert_int_equal(mysql_query(X.db, "XA RECOVER"), 0);
    MYSQL_RES *r = mysql_store_result(X.db);
    assert_non_null(r);
    int n = 0;
    size_t len = strlen(gid);
    for (MYSQL_ROW row; (row = mysql_fetch_row(r)) != NULL;)
        n += row[3] && strncmp(row[3], gid, len) == 0 && row[3][len] == '-';
    mysql_free_result(r);
    return n;
}

static void test_xa_commit(void **state)
{
    itest_t *t = start(state, "dtm_xa_commit");
    idtm_run(t, "OK", "xa", "dtm-x1", X.target, "ok", "ok", NULL);
    idtm_assert_final(t, "dtm-x1", TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(effects("dtm-x1"), 2);
    assert_int_equal(prepared("dtm-x1"), 0);
    pass(state);
}

/* Branch 02's business refuses: the SDK aborts, branch 01 (prepared) is
 * rolled back by trellisd, and nothing of either stays. */
static void test_xa_rollback(void **state)
{
    itest_t *t = start(state, "dtm_xa_rollback");
    idtm_run(t, "ABORTED", "--words=refused", "xa", "dtm-x2", X.target, "ok",
             "fail", NULL);
    idtm_assert_final(t, "dtm-x2", TRELLIS_TRANS_FAILED);
    assert_int_equal(effects("dtm-x2"), 0);
    assert_int_equal(prepared("dtm-x2"), 0);
    pass(state);
}

/* trellisd dies while branch 01's commit is held at the participant; the
 * restarted trellisd commits again, which the adapter answers as done:
 * both branches' rows exactly once, no XID left. */
static void test_xa_crash_in_commit(void **state)
{
    itest_t *t = start(state, "dtm_xa_crash");
    char reply[160];
    const char *svc = harness_server_addr(X.svc);
    assert_int_equal(harness_part_cmd(svc, "hold dtm-x3", reply, sizeof reply),
                     0);
    idtm_run(t, "OK", "xa", "dtm-x3", X.target, "ok", "ok", NULL);
    assert_int_equal(
        harness_part_cmd(svc, "wait-held dtm-x3 20000", reply, sizeof reply),
        0);
    assert_int_equal(harness_server_kill(t->tm), 0);
    assert_int_equal(
        harness_part_cmd(svc, "release dtm-x3", reply, sizeof reply), 0);
    assert_int_equal(harness_server_restart(t->tm), 0);
    itest_reconnect(t);
    idtm_assert_final(t, "dtm-x3", TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(effects("dtm-x3"), 2);
    assert_int_equal(prepared("dtm-x3"), 0);
    pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_xa_commit, teardown),
        cmocka_unit_test_teardown(test_xa_rollback, teardown),
        cmocka_unit_test_teardown(test_xa_crash_in_commit, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
