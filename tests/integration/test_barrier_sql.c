/*
 * test_barrier_sql.c: the branch barrier's SQL surroundings (barrier/)
 * against a real MariaDB, one server per run of this file, one database
 * per test: its table (DDL, names, input checks, a custom table, the
 * purge) and the connection it runs on (an open transaction, handlers that
 * misbehave, a lost connection, and auto-reconnect: issue 12 item 12).
 * The barrier's rules are test_barrier.c's; what both share,
 * itest_barrier.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <errmsg.h>
#include <mysql.h>

#include "harness.h"
#include "itest_barrier.h"
#include "itest_mysql.h"
#include "trellis/barrier.h"

/* ---- the server of this file --------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return imy_start("barrier-sql");
}

static int group_teardown(void **state)
{
    (void)state;
    imy_finish();
    return 0;
}

/* ---- 1. table DDL, names, input checks ----------------------------------- */

static void test_table_and_names(void **state)
{
    (void)state;
    char msg[256], err[256];
    MYSQL *c = ibr_setup_db("names");
    ibr_acct_t t = {.amount = -10};

    /* Idempotent, with rows in the table too. */
    assert_int_equal(IBR_RUN(c, "tcc", "g1", "try", ibr_tcc_try, &t),
                     TRELLIS_BARRIER_DONE);
    assert_int_equal(trellis_barrier_create_table(
                         c, TRELLIS_BARRIER_DEFAULT_TABLE, err, sizeof err),
                     0);
    assert_int_equal(ibr_barrier_rows(c, "g1"), 1);
    /* NULL is the default table, as everywhere a table is taken. */
    assert_int_equal(trellis_barrier_create_table(c, NULL, err, sizeof err), 0);
    unsigned long long deleted = 1;
    assert_int_equal(
        trellis_barrier_purge(c, NULL, 1, 100, &deleted, err, sizeof err), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(ibr_barrier_rows(c, "g1"), 1);

    const char *bad[] = {"",   "a-b",      "x; DROP TABLE accounts",
                         "t`", "db.table", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_int_equal(
            trellis_barrier_check_table_name(bad[i], err, sizeof err), -1);
        assert_non_null(strstr(err, "table name"));
        assert_int_equal(
            trellis_barrier_create_table(c, bad[i], err, sizeof err), -1);
        trellis_barrier_branch_t b = ibr_branch("tcc", "g9", "try");
        assert_int_equal(trellis_barrier_run(c, bad[i], &b, ibr_tcc_try, &t,
                                             msg, sizeof msg),
                         TRELLIS_BARRIER_ERROR);
        assert_non_null(strstr(msg, "table name"));
    }
    char long_name[70];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_int_equal(
        trellis_barrier_check_table_name(long_name, err, sizeof err), -1);
    long_name[64] = '\0';
    assert_int_equal(
        trellis_barrier_check_table_name(long_name, err, sizeof err), 0);
    assert_int_equal(
        trellis_barrier_check_table_name("Barrier_2", err, sizeof err), 0);
    assert_int_equal(t.calls, 1);

    /* A custom table. */
    assert_int_equal(
        trellis_barrier_create_table(c, "my_barrier", err, sizeof err), 0);
    trellis_barrier_branch_t b = ibr_branch("tcc", "g2", "try");
    assert_int_equal(trellis_barrier_run(c, "my_barrier", &b, ibr_tcc_try, &t,
                                         msg, sizeof msg),
                     TRELLIS_BARRIER_DONE);
    assert_int_equal(trellis_barrier_run(c, "my_barrier", &b, ibr_tcc_try, &t,
                                         msg, sizeof msg),
                     TRELLIS_BARRIER_SKIPPED_DUPLICATE);
    assert_int_equal(
        imy_int(c, "SELECT COUNT(*) FROM my_barrier WHERE gid = 'g2'"), 1);
    assert_int_equal(ibr_barrier_rows(c, "g2"), 0);
    assert_int_equal(ibr_frozen(c), -20);

    /* Values: case matters; quotes are data; bad values are refused. */
    assert_int_equal(IBR_RUN(c, "tcc", "G1", "try", ibr_tcc_try, &t),
                     TRELLIS_BARRIER_DONE);
    assert_int_equal(IBR_RUN(c, "tcc", "it's", "try", ibr_tcc_try, &t),
                     TRELLIS_BARRIER_DONE);
    assert_int_equal(IBR_RUN(c, "tcc", "it's", "try", ibr_tcc_try, &t),
                     TRELLIS_BARRIER_SKIPPED_DUPLICATE);
    assert_int_equal(t.calls, 4);
    char long_gid[200];
    memset(long_gid, 'g', 129);
    long_gid[129] = '\0';
    assert_int_equal(IBR_RUN(c, "tcc", long_gid, "try", ibr_tcc_try, &t),
                     TRELLIS_BARRIER_ERROR);
    assert_non_null(strstr(msg, "gid is longer"));
    assert_int_equal(IBR_RUN(c, "tcc", "g5 ", "try", ibr_tcc_try, &t),
                     TRELLIS_BARRIER_ERROR);
    assert_int_equal(IBR_RUN(c, "tcc", "", "try", ibr_tcc_try, &t),
                     TRELLIS_BARRIER_ERROR);
    assert_int_equal(IBR_RUN(c, "tcc", "g5", "", ibr_tcc_try, &t),
                     TRELLIS_BARRIER_ERROR);
    assert_int_equal(t.calls, 4);

    /* barrier_id separates calls within one op. */
    trellis_barrier_branch_t b2 = ibr_branch("tcc", "g6", "try");
    b2.barrier_id = "02";
    assert_int_equal(
        trellis_barrier_run(c, NULL, &b2, ibr_tcc_try, &t, msg, sizeof msg),
        TRELLIS_BARRIER_DONE);
    assert_int_equal(IBR_RUN(c, "tcc", "g6", "try", ibr_tcc_try, &t),
                     TRELLIS_BARRIER_DONE);
    assert_int_equal(ibr_barrier_rows(c, "g6"), 2);

    /* From a participant's context. */
    trellis_branch_ctx_t ctx = {.gid = "g7",
                                .trans_type = "tcc",
                                .branch_id = "03",
                                .op = "try",
                                .method = "/x.Y/Try"};
    trellis_barrier_branch_t fc = trellis_barrier_branch_from_ctx(&ctx);
    assert_string_equal(fc.gid, "g7");
    assert_string_equal(fc.branch_id, "03");
    assert_string_equal(fc.op, "try");
    assert_string_equal(fc.trans_type, "tcc");
    assert_null(fc.barrier_id);
    mysql_close(c);
    imy_pass();
}

/* ---- 2. purge ------------------------------------------------------------ */

static void test_purge(void **state)
{
    (void)state;
    char err[256];
    MYSQL *c = ibr_setup_db("purge_t");
    for (int i = 0; i < 25; i++)
        imy_exec(c,
                 "INSERT INTO trellis_barrier (trans_type, gid, branch_id, op, "
                 "barrier_id, reason, create_time) VALUES ('tcc', 'old-%d', "
                 "'01', 'try', '01', 'try', NOW() - INTERVAL 10 DAY)",
                 i);
    for (int i = 0; i < 5; i++)
        imy_exec(c,
                 "INSERT INTO trellis_barrier (trans_type, gid, branch_id, op, "
                 "barrier_id, reason, create_time) VALUES ('tcc', 'new-%d', "
                 "'01', 'try', '01', 'try', NOW() - INTERVAL %d DAY + "
                 "INTERVAL 1 HOUR)", /* off the day boundary: no race with
                                        the clock between here and purge */
                 i, i);
    long long deletes0 = imy_int(c, "SELECT VARIABLE_VALUE FROM "
                                    "information_schema.SESSION_STATUS WHERE "
                                    "VARIABLE_NAME = 'COM_DELETE'");
    unsigned long long n = 99;
    assert_int_equal(trellis_barrier_purge(c, TRELLIS_BARRIER_DEFAULT_TABLE, 7,
                                           10, &n, err, sizeof err),
                     0);
    long long deletes = imy_int(c, "SELECT VARIABLE_VALUE FROM "
                                   "information_schema.SESSION_STATUS WHERE "
                                   "VARIABLE_NAME = 'COM_DELETE'") -
                        deletes0;
    assert_int_equal(n, 25);
    assert_int_equal(deletes, 3); /* 10 + 10 + 5 */
    assert_int_equal(imy_int(c, "SELECT COUNT(*) FROM trellis_barrier"), 5);
    assert_int_equal(
        imy_int(c,
                "SELECT COUNT(*) FROM trellis_barrier WHERE gid LIKE 'old%%'"),
        0);
    imy_assert_clean(c);

    /* An exact multiple of the batch needs one more, empty, DELETE. */
    assert_int_equal(trellis_barrier_purge(c, TRELLIS_BARRIER_DEFAULT_TABLE, 2,
                                           1, &n, err, sizeof err),
                     0);
    assert_int_equal(n, 2); /* 3 and 4 days old */
    assert_int_equal(trellis_barrier_purge(c, TRELLIS_BARRIER_DEFAULT_TABLE, 7,
                                           10, &n, err, sizeof err),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(imy_int(c, "SELECT COUNT(*) FROM trellis_barrier"), 3);

    assert_int_equal(
        trellis_barrier_purge(c, "bad-name", 7, 10, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "table name"));
    assert_int_equal(trellis_barrier_purge(c, TRELLIS_BARRIER_DEFAULT_TABLE, 7,
                                           0, &n, err, sizeof err),
                     -1);
    assert_int_equal(
        trellis_barrier_purge(c, "nope", 7, 10, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "doesn't exist"));
    imy_assert_clean(c);
    mysql_close(c);
    imy_pass();
}

/* ---- 3. connection hygiene ----------------------------------------------- */

/* A handler that misbehaves: runs the statements of u (a NULL-terminated
 * array), reads none of their results, ignores their errors and answers
 * OK. */
static trellis_barrier_business_rc_t misbehave(MYSQL *c, void *u, char *msg,
                                               size_t msglen)
{
    (void)msg;
    (void)msglen;
    for (const char **sql = u; *sql; sql++)
        mysql_query(c, *sql);
    return TRELLIS_BARRIER_BUSINESS_OK;
}

static const char *commits[] = {
    "UPDATE accounts SET balance = balance + 1 WHERE id = 1", "COMMIT", NULL};

static const char *leaves_result[] = {
    "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
    "SELECT balance FROM accounts", /* never read */
    NULL};

static const char *multi_fails[] = {
    "UPDATE accounts SET balance = balance + 1 WHERE id = 1; "
    "UPDATE nope SET x = 1",
    NULL};

typedef struct {
    MYSQL *killer;
    ibr_acct_t a;
} kill_t;

/* Run the business SQL, then have another connection kill this one. */
static trellis_barrier_business_rc_t killed(MYSQL *c, void *u, char *msg,
                                            size_t msglen)
{
    kill_t *k = u;
    trellis_barrier_business_rc_t rc = ibr_tcc_try(c, &k->a, msg, msglen);
    imy_exec(k->killer, "KILL CONNECTION %lu", mysql_thread_id(c));
    return rc;
}

static void test_connection_hygiene(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = ibr_setup_db("hygiene");
    ibr_acct_t t = {.amount = -10};
    trellis_barrier_branch_t b = ibr_branch("tcc", "g1", "try");

    /* The caller's open transaction is neither committed nor joined. */
    imy_exec(c, "START TRANSACTION");
    imy_exec(c, "UPDATE accounts SET balance = 0 WHERE id = 1");
    assert_int_equal(
        trellis_barrier_run(c, NULL, &b, ibr_tcc_try, &t, msg, sizeof msg),
        TRELLIS_BARRIER_ERROR);
    assert_non_null(strstr(msg, "already open"));
    imy_exec(c, "ROLLBACK");
    assert_int_equal(imy_balance(c), 100);
    assert_int_equal(t.calls, 0);

    /* A handler that commits is reported. */
    assert_int_equal(IBR_RUN(c, "tcc", "g2", "try", misbehave, commits),
                     TRELLIS_BARRIER_ERROR);
    assert_non_null(strstr(msg, "ended the transaction"));

    /* A handler that leaves a result unread: drained, committed. */
    long long before = imy_balance(c);
    assert_int_equal(IBR_RUN(c, "tcc", "g3", "try", misbehave, leaves_result),
                     TRELLIS_BARRIER_DONE);
    assert_int_equal(imy_balance(c), before + 1);
    assert_int_equal(ibr_barrier_rows(c, "g3"), 1);

    /* A multi-statement whose second statement failed unseen: rolled
     * back. */
    assert_int_equal(
        mysql_set_server_option(c, MYSQL_OPTION_MULTI_STATEMENTS_ON), 0);
    before = imy_balance(c);
    assert_int_equal(IBR_RUN(c, "tcc", "g8", "try", misbehave, multi_fails),
                     TRELLIS_BARRIER_ERROR);
    assert_non_null(strstr(msg, "a statement of the handler failed"));
    assert_int_equal(imy_balance(c), before);
    assert_int_equal(ibr_barrier_rows(c, "g8"), 0);
    assert_int_equal(
        mysql_set_server_option(c, MYSQL_OPTION_MULTI_STATEMENTS_OFF), 0);

    /* NULL msg is allowed. */
    trellis_barrier_branch_t b4 = ibr_branch("tcc", "g4", "try");
    assert_int_equal(
        trellis_barrier_run(c, NULL, &b4, ibr_tcc_try, &t, NULL, 0),
        TRELLIS_BARRIER_DONE);

    /* A lost connection: an error with the client's message, nothing
     * committed. */
    MYSQL *victim = imy_connect("hygiene");
    kill_t k = {.killer = imy_connect("hygiene"), .a = {.amount = -10}};
    long long frozen0 = ibr_frozen(c);
    trellis_barrier_branch_t b5 = ibr_branch("tcc", "g5", "try");
    assert_int_equal(
        trellis_barrier_run(victim, NULL, &b5, killed, &k, msg, sizeof msg),
        TRELLIS_BARRIER_ERROR);
    printf("[ lost ] %s\n", msg);
    assert_non_null(strstr(msg, "commit"));
    assert_true(mysql_errno(victim) == CR_SERVER_LOST ||
                mysql_errno(victim) == CR_SERVER_GONE_ERROR ||
                mysql_errno(victim) == 1927 /* ER_CONNECTION_KILLED */);
    assert_int_equal(ibr_frozen(c), frozen0);
    assert_int_equal(ibr_barrier_rows(c, "g5"), 0);
    mysql_close(victim);
    mysql_close(k.killer);

    trellis_reply_t r = {0};
    trellis_barrier_fill_reply(TRELLIS_BARRIER_DONE, "", &r);
    assert_int_equal(r.code, TRELLIS_REPLY_SUCCESS);
    assert_string_equal(r.message, "");
    trellis_barrier_fill_reply(TRELLIS_BARRIER_ERROR, NULL, &r);
    assert_int_equal(r.code, TRELLIS_REPLY_ERROR);
    assert_true(r.message[0] != '\0');
    mysql_close(c);
    imy_pass();
}

/* ---- 4. item 12: auto-reconnect ------------------------------------------
 *
 * With MYSQL_OPT_RECONNECT on, libmariadb refuses to reconnect the first
 * time a statement meets a lost session inside a transaction, but clears
 * its "in transaction" flag doing so, and the next statement reconnects
 * in autocommit: a handler that retries its statement on a lost
 * connection then commits the business effect on a fresh session, while
 * the barrier row died with the old one. */

typedef struct {
    MYSQL *killer;
    int calls;
    int set_reconnect; /* the handler itself turns auto-reconnect on */
} retry_t;

/* Lose the session, then retry the business UPDATE until it goes through
 * (at most 5 times), as a handler that "recovers" from a lost connection
 * would. */
static trellis_barrier_business_rc_t
retries_after_loss(MYSQL *c, void *u, char *msg, size_t msglen)
{
    retry_t *r = u;
    r->calls++;
    if (r->set_reconnect) {
        my_bool on = 1;
        mysql_optionsv(c, MYSQL_OPT_RECONNECT, &on);
    }
    imy_exec(r->killer, "KILL CONNECTION %lu", mysql_thread_id(c));
    for (int i = 0; i < 5; i++)
        if (mysql_query(c, "UPDATE accounts SET balance = balance - 10 "
                           "WHERE id = 1") == 0)
            return TRELLIS_BARRIER_BUSINESS_OK;
    snprintf(msg, msglen, "%s", mysql_error(c));
    return TRELLIS_BARRIER_BUSINESS_ERROR;
}

/* An effect on the balance with no barrier row for its gid is the fault
 * itself: say it in words. */
static void assert_no_orphan_effect(MYSQL *c, long long before, const char *gid)
{
    long long after = imy_balance(c), rows = ibr_barrier_rows(c, gid);
    if (after != before && rows == 0)
        fail_msg("business effect committed without its barrier row: "
                 "balance %lld -> %lld, %lld barrier rows for %s",
                 before, after, rows, gid);
}

static void test_item12_auto_reconnect(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = ibr_setup_db("reconnect");
    retry_t r = {.killer = imy_connect("reconnect")};

    /* A connection with auto-reconnect on is refused before anything
     * runs. */
    MYSQL *v = imy_connect("reconnect");
    my_bool on = 1;
    assert_int_equal(mysql_optionsv(v, MYSQL_OPT_RECONNECT, &on), 0);
    long long before = imy_balance(c);
    trellis_barrier_branch_t b = ibr_branch("tcc", "r1", "try");
    trellis_barrier_outcome_t o = trellis_barrier_run(
        v, NULL, &b, retries_after_loss, &r, msg, sizeof msg);
    printf("[ reconnect on ] outcome %d: %s\n", o, msg);
    assert_no_orphan_effect(c, before, "r1");
    assert_int_equal(o, TRELLIS_BARRIER_ERROR);
    assert_non_null(strstr(msg, "auto-reconnect"));
    assert_int_equal(r.calls, 0);
    assert_int_equal(imy_balance(c), before);
    assert_int_equal(ibr_barrier_rows(c, "r1"), 0);
    mysql_close(v);

    /* A handler that turns it on and reconnects: the new session is seen
     * by its thread id and reported as such (its autocommitted statement
     * cannot be taken back; the barrier says what happened). */
    v = imy_connect("reconnect");
    r = (retry_t){.killer = r.killer, .set_reconnect = 1};
    before = imy_balance(c);
    b = ibr_branch("tcc", "r2", "try");
    o = trellis_barrier_run(v, NULL, &b, retries_after_loss, &r, msg,
                            sizeof msg);
    printf("[ reconnected inside ] outcome %d: %s\n", o, msg);
    assert_int_equal(o, TRELLIS_BARRIER_ERROR);
    assert_int_equal(r.calls, 1);
    assert_non_null(strstr(msg, "reconnected"));
    assert_int_equal(ibr_barrier_rows(c, "r2"), 0);
    imy_assert_clean(v);
    mysql_close(v);

    mysql_close(r.killer);
    mysql_close(c);
    imy_pass();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table_and_names, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_purge, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_connection_hygiene, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_item12_auto_reconnect,
                                        imy_test_setup, imy_test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
