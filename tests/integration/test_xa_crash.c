/*
 * test_xa_crash.c: the MySQL/MariaDB XA adapter (rm-adapters/mysql-xa)
 * when the participant is gone after XA PREPARE, against a real MariaDB
 * (one server per run of this file, one database per test): its
 * connection closed, its process killed with SIGKILL, and commits racing
 * the preparer's disconnect (every reported commit checked; the branches
 * the server dropped are committed after a restart of the server). The
 * shared database and adapter calls are itest_xa.h's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mysql.h>

#include "harness.h"
#include "itest_mysql.h"
#include "itest_xa.h"
#include "trellis/mysql_xa.h"

/* ---- the server of this file --------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return imy_start("xa-crash");
}

static int group_teardown(void **state)
{
    (void)state;
    return imy_finish();
}

/* ---- participant gone after the prepare ---------------------------------- */

/* The barrier row the adapter's prepare writes inside the branch (its
 * commit reads it to confirm that the branch committed). */
#define PREPARE_ROW_SQL                                                        \
    "INSERT INTO " TRELLIS_BARRIER_DEFAULT_TABLE                               \
    " (trans_type, gid, branch_id, op, "                                       \
    "barrier_id, reason) VALUES ('xa', '%s', '01', 'prepare', '01', "          \
    "'prepare')"

/* XA START .. XA PREPARE by hand, with the adapter's barrier row: the
 * adapter's own prepare detaches, so this is a participant that died
 * before it could. With account 0 only the effects row (a branch left
 * prepared then holds no lock a later one waits for). */
static void raw_prepare_of(MYSQL *x, const char *gid, int account)
{
    imy_exec(x, "XA START '%s-01'", gid);
    if (account)
        imy_exec(x, "UPDATE accounts SET balance = balance + 10 WHERE id = 1");
    imy_exec(x, "INSERT INTO effects (gid, delta) VALUES ('%s', 10)", gid);
    imy_exec(x, PREPARE_ROW_SQL, gid);
    imy_exec(x, "XA END '%s-01'", gid);
    imy_exec(x, "XA PREPARE '%s-01'", gid);
}

static void raw_prepare(MYSQL *x, const char *gid)
{
    raw_prepare_of(x, gid, 1);
}

/* The adapter refused a commit because the server dropped the branch
 * without committing it (its preparer's session was closing; see the top
 * of mysql_xa.c): only a restart of the server brings it back. */
static int dropped_by_server(const char *msg)
{
    return strstr(msg, "answered OK but") ||
           strstr(msg, "neither prepared nor visibly committed");
}

/* Restart the server as an operator would, and reconnect *c to db. */
static void restart_server(MYSQL **c, const char *db)
{
    mysql_close(*c);
    imy_restart_server();
    *c = imy_connect(db);
}

/* Commit like the TM: retried until it succeeds; returns the attempts.
 * Every success is a commit the caller then checks. A branch the server
 * dropped is refused until the server restarts: restart it (*c is then a
 * new connection to db) and go on retrying. */
static int commit_retried(MYSQL **c, const char *db, const char *gid)
{
    char msg[256];
    for (int i = 1; i <= 200; i++) {
        if (ixa_commit(*c, gid, msg, sizeof msg) == 0)
            return i;
        if (dropped_by_server(msg)) {
            printf("[ killed ] %s: %s; restarting the server\n", gid, msg);
            restart_server(c, db);
            continue;
        }
        harness_sleep_ms(10);
    }
    fail_msg("commit %s never succeeded: %s", gid, msg);
    return 0;
}

static pid_t fork_preparer(const char *db, const char *gid, int *ready_fd)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        MYSQL *x = imy_try_connect(db);
        char sql[256];
        const char *steps[] = {"XA START '%s-01'",
                               "UPDATE accounts SET balance = balance + 10 "
                               "WHERE id = 1",
                               "INSERT INTO effects (gid, delta) VALUES "
                               "('%s', 10)",
                               PREPARE_ROW_SQL,
                               "XA END '%s-01'",
                               "XA PREPARE '%s-01'"};
        for (size_t i = 0; x && i < sizeof steps / sizeof *steps; i++) {
            snprintf(sql, sizeof sql, steps[i], gid);
            if (mysql_query(x, sql) != 0)
                _exit(1);
        }
        if (!x || write(fds[1], "p", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    *ready_fd = fds[0];
    return pid;
}

static void test_killed_after_prepare(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = ixa_setup_db("killed");

    /* The preparer's session still open: the xid is listed, but XA COMMIT
     * from elsewhere answers XAER_NOTA; the adapter does not take that for
     * success. */
    MYSQL *x = imy_connect("killed");
    raw_prepare(x, "g1");
    assert_int_equal(ixa_recovered(c, "g1-01"), 1);
    assert_int_equal(IXA_COMMIT(c, "g1"), -1);
    printf("[ killed ] commit while attached: %s\n", msg);
    assert_non_null(strstr(msg, "attached"));
    assert_int_equal(IXA_ROLLBACK(c, "g1"), -1);
    assert_int_equal(imy_balance(c), 100);
    mysql_close(x); /* the participant's connection closes */
    printf("[ killed ] commit after close: %d attempt(s)\n",
           commit_retried(&c, "killed", "g1"));
    assert_int_equal(imy_balance(c), 110);
    assert_int_equal(ixa_effects(c, "g1"), 1);

    /* A participant process killed with SIGKILL after XA PREPARE. */
    int fd;
    pid_t pid = fork_preparer("killed", "g2", &fd);
    char byte = 0;
    assert_int_equal(read(fd, &byte, 1), 1);
    close(fd);
    assert_int_equal(ixa_recovered(c, "g2-01"), 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(ixa_recovered(c, "g2-01"), 1); /* survived */
    assert_int_equal(imy_balance(c), 110);
    printf("[ killed ] commit after SIGKILL: %d attempt(s)\n",
           commit_retried(&c, "killed", "g2"));
    assert_int_equal(imy_balance(c), 120);
    assert_int_equal(ixa_effects(c, "g2"), 1);

    /* The adapter's prepare, then the participant closes for good. */
    MYSQL *p = imy_connect("killed");
    ixa_add_t a = {.gid = "g3", .amount = 10};
    assert_int_equal(IXA_PREPARE(p, &a), TRELLIS_MYXA_PREPARED);
    mysql_close(p);
    assert_int_equal(IXA_COMMIT(c, "g3"), 0);
    assert_int_equal(imy_balance(c), 130);
    assert_int_equal(ixa_count(c), 0);
    mysql_close(c);
    imy_pass();
}

/* Commit gid (just prepared by a session that has just closed) until the
 * adapter says how it ended: 1 committed (checked), 0 refused because the
 * server dropped the branch. Counts the tries that found it attached. */
static int commit_racing(MYSQL *c, const char *gid, int *attached)
{
    char msg[256];
    for (;;) {
        if (ixa_commit(c, gid, msg, sizeof msg) == 0) {
            assert_int_equal(ixa_effects(c, gid), 1);
            return 1;
        }
        if (dropped_by_server(msg)) {
            assert_int_equal(ixa_effects(c, gid), 0);
            return 0;
        }
        if (!strstr(msg, "attached"))
            fail_msg("commit %s: %s", gid, msg);
        (*attached)++;
    }
}

/* The TM's commit arriving while the preparer's session closes, many
 * times over. MariaDB sometimes answers such an XA COMMIT with OK without
 * committing (the top of mysql_xa.c): every commit the adapter reports must be
 * committed, and the branches it refuses commit once the server restarts.
 * (Whether this run meets the race is up to the scheduler; it is printed.)
 */
static void test_commit_racing_disconnect(void **state)
{
    (void)state;
    char msg[256];
    enum { TRIES = 300 };
    static char dropped[TRIES][16];
    int ndropped = 0, attached = 0;
    MYSQL *c = ixa_setup_db("racing");
    for (int i = 0; i < TRIES; i++) {
        char gid[16];
        snprintf(gid, sizeof gid, "r%d", i);
        MYSQL *x = imy_connect("racing");
        raw_prepare_of(x, gid, 0);
        mysql_close(x);
        if (!commit_racing(c, gid, &attached))
            snprintf(dropped[ndropped++], sizeof dropped[0], "%s", gid);
    }
    printf("[ racing ] %d commits right after the preparer's close: %d "
           "committed, %d refused (the server dropped them), %d tries found "
           "the branch still attached\n",
           TRIES, TRIES - ndropped, ndropped, attached);
    assert_int_equal(ixa_count(c), 0); /* dropped ones are unlisted too */
    if (ndropped > 0) {
        restart_server(&c, "racing");
        assert_int_equal(ixa_count(c), ndropped);
        for (int i = 0; i < ndropped; i++) {
            assert_int_equal(IXA_COMMIT(c, dropped[i]), 0);
            assert_int_equal(ixa_effects(c, dropped[i]), 1);
        }
    }
    assert_int_equal(ixa_count(c), 0);
    assert_int_equal(imy_int(c, "SELECT COUNT(*) FROM effects"), TRIES);
    mysql_close(c);
    imy_pass();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_killed_after_prepare,
                                        imy_test_setup, imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_commit_racing_disconnect,
                                        imy_test_setup, imy_test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
