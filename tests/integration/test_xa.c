/*
 * test_xa.c: the MySQL/MariaDB XA adapter (rm-adapters/mysql-xa) against a
 * real MariaDB, one server per run of this file, one database per test:
 * prepare then commit or rollback (visibility to other connections),
 * repeated phase 2, a rollback before or during its prepare, a connection
 * lost before the prepare, a participant gone after it (closed, and a
 * process killed with SIGKILL), commits racing the preparer's disconnect
 * (every reported commit checked; the branches the server dropped are
 * committed after a restart), the recovery sweep against a real trellisd
 * (with an in-process participant built on the SDK and this adapter), the
 * xid rules, and round trips per op (bounded) and ops/s (printed, not
 * asserted).
 *
 * Business SQL: add to accounts row 1 and log the change in effects(gid);
 * tests count effects by reading those tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mysql.h>

#include "harness.h"
#include "itest_mysql.h"
#include "trellis/trellis.h"
#include "trellis/trellis_participant.h"
#include "trellis/trellis_xa.h"
#include "trellis/mysql_xa.h"

/* ---- the server and the database of a test ---------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return imy_start("xa");
}

static int group_teardown(void **state)
{
    (void)state;
    return imy_finish();
}

/* A fresh database `name` with accounts (id 1: balance 100), an effects
 * log and the default barrier table; returns a connection to it. */
static MYSQL *setup_db(const char *name)
{
    return imy_setup_db(name, "balance BIGINT NOT NULL", "1, 100");
}

static long long effects(MYSQL *c, const char *gid)
{
    return imy_int(c, "SELECT COUNT(*) FROM effects WHERE gid = '%s'", gid);
}

/* XA RECOVER rows whose gtrid is gtrid, whatever their bqual and format
 * (the adapter's legacy form, or its cluster form with the TM cluster's
 * id in the bqual). */
static int recovered(MYSQL *c, const char *gtrid)
{
    if (mysql_query(c, "XA RECOVER") != 0)
        fail_msg("XA RECOVER: %s", mysql_error(c));
    MYSQL_RES *r = mysql_store_result(c);
    assert_non_null(r);
    int n = 0;
    size_t len = strlen(gtrid);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r)))
        n += row[1] && row[3] && strtoul(row[1], NULL, 10) == len &&
             strncmp(row[3], gtrid, len) == 0;
    mysql_free_result(r);
    return n;
}

/* XA RECOVER rows of the cluster form (format TRELLIS_MYXA_FORMAT_ID) whose
 * gtrid is gtrid and whose bqual is cluster. */
static int recovered_in(MYSQL *c, const char *gtrid, const char *cluster)
{
    char data[2 * TRELLIS_MYXA_XID_MAX + 1], fmt[32];
    snprintf(data, sizeof data, "%s%s", gtrid, cluster);
    snprintf(fmt, sizeof fmt, "%ld", (long)TRELLIS_MYXA_FORMAT_ID);
    if (mysql_query(c, "XA RECOVER") != 0)
        fail_msg("XA RECOVER: %s", mysql_error(c));
    MYSQL_RES *r = mysql_store_result(c);
    assert_non_null(r);
    int n = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r)))
        n += row[0] && strcmp(row[0], fmt) == 0 && row[1] &&
             strtoul(row[1], NULL, 10) == strlen(gtrid) && row[3] &&
             strcmp(row[3], data) == 0;
    mysql_free_result(r);
    return n;
}

static long long xa_count(MYSQL *c)
{
    if (mysql_query(c, "XA RECOVER") != 0)
        fail_msg("XA RECOVER: %s", mysql_error(c));
    MYSQL_RES *r = mysql_store_result(c);
    assert_non_null(r);
    long long n = (long long)mysql_num_rows(r);
    mysql_free_result(r);
    return n;
}

/* Every adapter call leaves the connection in autocommit, no transaction
 * open, and usable. */
static void assert_clean(MYSQL *c)
{
    imy_assert_clean(c);
    assert_int_equal(imy_int(c, "SELECT 1"), 1);
}

/* ---- the business SQL -------------------------------------------------- */

typedef struct {
    const char *gid;
    long long amount;
    atomic_int calls;
    atomic_int inside; /* set while the handler sleeps */
    int sleep_ms;      /* after its SQL */
    MYSQL *killer;     /* KILL CONNECTION the handler's own connection */
    trellis_barrier_business_rc_t after; /* answered after the SQL */
    int log_only; /* only the effects row: branches do not queue on the
                     account row's lock */
} add_t;

static trellis_barrier_business_rc_t add_fn(MYSQL *c, void *u, char *msg,
                                            size_t msglen)
{
    add_t *a = u;
    char sql[256];
    atomic_fetch_add(&a->calls, 1);
    snprintf(sql, sizeof sql,
             "UPDATE accounts SET balance = balance + %lld WHERE id = 1",
             a->amount);
    if (!a->log_only && mysql_query(c, sql) != 0)
        goto err;
    snprintf(sql, sizeof sql,
             "INSERT INTO effects (gid, delta) VALUES ('%s', %lld)", a->gid,
             a->amount);
    if (mysql_query(c, sql) != 0)
        goto err;
    if (a->killer) {
        snprintf(sql, sizeof sql, "KILL CONNECTION %lu", mysql_thread_id(c));
        if (mysql_query(a->killer, sql) != 0)
            goto err;
    }
    if (a->sleep_ms) {
        atomic_store(&a->inside, 1);
        harness_sleep_ms(a->sleep_ms);
    }
    if (a->after != TRELLIS_BARRIER_BUSINESS_OK)
        snprintf(msg, msglen, "injected %s",
                 a->after == TRELLIS_BARRIER_BUSINESS_FAIL ? "failure"
                                                           : "error");
    return a->after;
err:
    snprintf(msg, msglen, "%s", mysql_error(c));
    return TRELLIS_BARRIER_BUSINESS_ERROR;
}

static trellis_barrier_branch_t branch(const char *gid, const char *op)
{
    trellis_barrier_branch_t b = {.trans_type = "xa",
                                  .gid = gid,
                                  .branch_id = "01",
                                  .op = op,
                                  .barrier_id = NULL};
    return b;
}

static trellis_myxa_outcome_t prepare(MYSQL *c, add_t *a, char *msg,
                                      size_t msglen)
{
    trellis_barrier_branch_t b = branch(a->gid, "prepare");
    return trellis_myxa_prepare_branch(c, NULL, &b, add_fn, a, msg, msglen);
}

static int commit(MYSQL *c, const char *gid, char *msg, size_t msglen)
{
    trellis_barrier_branch_t b = branch(gid, "commit");
    int rc = trellis_myxa_commit_branch(c, NULL, &b, msg, msglen);
    assert_clean(c);
    return rc;
}

static int rollback(MYSQL *c, const char *gid, char *msg, size_t msglen)
{
    trellis_barrier_branch_t b = branch(gid, "rollback");
    int rc = trellis_myxa_rollback_branch(c, NULL, &b, msg, msglen);
    assert_clean(c);
    return rc;
}

#define PREPARE(c, a) prepare((c), (a), msg, sizeof msg)
#define COMMIT(c, gid) commit((c), (gid), msg, sizeof msg)
#define ROLLBACK(c, gid) rollback((c), (gid), msg, sizeof msg)

/* ---- 1. prepare, then commit or rollback -------------------------------- */

static void test_prepare_commit(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = setup_db("commit");
    MYSQL *p = imy_connect("commit"); /* the participant's */
    imy_exec(p, "SET @session_mark = 1");
    unsigned long tid = mysql_thread_id(p);

    add_t a = {.gid = "g1", .amount = 10};
    assert_int_equal(PREPARE(p, &a), TRELLIS_MYXA_PREPARED);
    assert_string_equal(msg, "");
    /* The participant's handle is a new session, usable at once. */
    assert_true(mysql_thread_id(p) != tid);
    assert_clean(p);
    assert_int_equal(imy_int(p, "SELECT @session_mark IS NULL"), 1);
    assert_int_equal(recovered(c, "g1-01"), 1);
    /* Invisible to others until the commit. */
    assert_int_equal(imy_balance(c), 100);
    assert_int_equal(effects(c, "g1"), 0);
    assert_int_equal(COMMIT(c, "g1"), 0);
    assert_int_equal(imy_balance(c), 110);
    assert_int_equal(effects(c, "g1"), 1);
    assert_int_equal(recovered(c, "g1-01"), 0);

    add_t b = {.gid = "g2", .amount = 10};
    assert_int_equal(PREPARE(p, &b), TRELLIS_MYXA_PREPARED);
    assert_int_equal(recovered(c, "g2-01"), 1);
    assert_int_equal(ROLLBACK(c, "g2"), 0);
    assert_int_equal(recovered(c, "g2-01"), 0);
    assert_int_equal(imy_balance(c), 110);
    assert_int_equal(effects(c, "g2"), 0);
    /* The rollback left its rows: rollback, and prepare by rollback. */
    assert_int_equal(imy_int(c, "SELECT COUNT(*) FROM trellis_barrier WHERE "
                                "gid = 'g2' AND reason = 'rollback'"),
                     2);
    assert_int_equal(xa_count(c), 0);

    trellis_reply_t r = {0};
    trellis_myxa_fill_reply(TRELLIS_MYXA_PREPARED, "", &r);
    assert_int_equal(r.code, TRELLIS_REPLY_SUCCESS);
    trellis_myxa_fill_reply(TRELLIS_MYXA_SKIPPED_DUPLICATE, NULL, &r);
    assert_int_equal(r.code, TRELLIS_REPLY_SUCCESS);
    trellis_myxa_fill_reply(TRELLIS_MYXA_SKIPPED_ROLLED_BACK, NULL, &r);
    assert_int_equal(r.code, TRELLIS_REPLY_FAILURE);
    trellis_myxa_fill_reply(TRELLIS_MYXA_BUSINESS_FAILURE, "no stock", &r);
    assert_int_equal(r.code, TRELLIS_REPLY_FAILURE);
    assert_string_equal(r.message, "no stock");
    trellis_myxa_fill_reply(TRELLIS_MYXA_ERROR, NULL, &r);
    assert_int_equal(r.code, TRELLIS_REPLY_ERROR);
    assert_true(r.message[0] != '\0');
    mysql_close(p);
    mysql_close(c);
    imy_pass();
}

/* ---- 2. repeated ops ------------------------------------------------------
 */

static void test_repeats(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = setup_db("repeats");
    MYSQL *p = imy_connect("repeats");

    add_t a = {.gid = "g1", .amount = 10};
    assert_int_equal(PREPARE(p, &a), TRELLIS_MYXA_PREPARED);
    assert_int_equal(COMMIT(c, "g1"), 0);
    assert_int_equal(COMMIT(c, "g1"), 0);
    printf("[ repeat ] second commit: %s\n", msg);
    assert_non_null(strstr(msg, "duplicate"));
    assert_int_equal(COMMIT(p, "g1"), 0);
    /* A prepare delivered again after the commit changes nothing. */
    assert_int_equal(PREPARE(p, &a), TRELLIS_MYXA_SKIPPED_DUPLICATE);
    assert_clean(p);
    assert_int_equal(a.calls, 1);
    assert_int_equal(imy_balance(c), 110);
    assert_int_equal(xa_count(c), 0);

    add_t b = {.gid = "g2", .amount = 10};
    assert_int_equal(PREPARE(p, &b), TRELLIS_MYXA_PREPARED);
    assert_int_equal(ROLLBACK(c, "g2"), 0);
    assert_int_equal(ROLLBACK(c, "g2"), 0);
    assert_int_equal(ROLLBACK(p, "g2"), 0);
    assert_int_equal(PREPARE(p, &b), TRELLIS_MYXA_SKIPPED_ROLLED_BACK);
    assert_clean(p);
    assert_int_equal(b.calls, 1);
    assert_int_equal(imy_balance(c), 110);

    /* A prepare delivered twice before phase 2: the second finds the xid
     * prepared (XAER_DUPID, listed), one commit applies it once. */
    add_t d = {.gid = "g3", .amount = 5};
    assert_int_equal(PREPARE(p, &d), TRELLIS_MYXA_PREPARED);
    assert_int_equal(PREPARE(p, &d), TRELLIS_MYXA_SKIPPED_DUPLICATE);
    printf("[ repeat ] prepare while prepared: %s\n", msg);
    assert_clean(p);
    assert_int_equal(d.calls, 1);
    assert_int_equal(COMMIT(c, "g3"), 0);
    assert_int_equal(COMMIT(c, "g3"), 0);
    assert_int_equal(imy_balance(c), 115);
    assert_int_equal(effects(c, "g3"), 1);
    assert_int_equal(xa_count(c), 0);
    mysql_close(p);
    mysql_close(c);
    imy_pass();
}

/* ---- 3. rollback before and during the prepare ----------------------------
 */

static void test_rollback_first(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = setup_db("rbfirst");
    MYSQL *p = imy_connect("rbfirst");

    assert_int_equal(ROLLBACK(c, "g1"), 0);
    add_t a = {.gid = "g1", .amount = 10};
    assert_int_equal(PREPARE(p, &a), TRELLIS_MYXA_SKIPPED_ROLLED_BACK);
    printf("[ rbfirst ] late prepare: %s\n", msg);
    assert_non_null(strstr(msg, "rolled back"));
    assert_clean(p);
    assert_int_equal(PREPARE(p, &a),
                     TRELLIS_MYXA_SKIPPED_ROLLED_BACK); /* stays so */
    assert_int_equal(a.calls, 0);
    assert_int_equal(xa_count(c), 0);
    assert_int_equal(imy_balance(c), 100);
    assert_int_equal(ROLLBACK(c, "g1"), 0);
    trellis_reply_t r = {0};
    trellis_myxa_fill_reply(TRELLIS_MYXA_SKIPPED_ROLLED_BACK, msg, &r);
    assert_int_equal(r.code, TRELLIS_REPLY_FAILURE);
    mysql_close(p);
    mysql_close(c);
    imy_pass();
}

typedef struct {
    MYSQL *c;
    add_t *a;
    trellis_myxa_outcome_t out;
    char msg[256];
} prep_thread_t;

static void *prep_thread(void *arg)
{
    prep_thread_t *t = arg;
    t->out = prepare(t->c, t->a, t->msg, sizeof t->msg);
    return NULL;
}

static void start_prep(pthread_t *th, prep_thread_t *t)
{
    assert_int_equal(pthread_create(th, NULL, prep_thread, t), 0);
    while (!atomic_load(&t->a->inside))
        harness_sleep_ms(5);
}

/* The lock wait test_rollback_during_prepare gives its session (s). */
#define SESSION_WAIT_S 7

/* The rollback put the session's own lock wait back, and left no user
 * variable behind. */
static void assert_session_lock_wait(MYSQL *c)
{
    assert_int_equal(imy_int(c, "SELECT @@SESSION.innodb_lock_wait_timeout"),
                     SESSION_WAIT_S);
    assert_int_equal(imy_int(c, "SELECT @trellis_xa_lock_wait IS NULL"), 1);
}

static void test_rollback_during_prepare(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = setup_db("rbduring");
    pthread_t th;

    /* The prepare goes on to XA PREPARE while the rollback waits: the
     * rollback gives up (the TM retries), and its retry finds the branch
     * prepared and rolls it back. Its wait is bounded (XA_LOCK_WAIT_S,
     * 2 s) whatever the session's own lock wait, which it restores. */
    imy_exec(c, "SET SESSION innodb_lock_wait_timeout = %d", SESSION_WAIT_S);
    add_t a = {.gid = "g1", .amount = 10, .sleep_ms = 800};
    prep_thread_t t = {.c = imy_connect("rbduring"), .a = &a};
    start_prep(&th, &t);
    int64_t t0 = harness_mono_ms();
    assert_int_equal(ROLLBACK(c, "g1"), -1);
    int64_t waited = harness_mono_ms() - t0;
    printf("[ rbduring ] rollback during prepare: %s (%lld ms)\n", msg,
           (long long)waited);
    assert_non_null(strstr(msg, "stayed locked 2 s"));
    assert_true(waited < SESSION_WAIT_S * 1000);
    assert_session_lock_wait(c);
    pthread_join(th, NULL);
    assert_int_equal(t.out, TRELLIS_MYXA_PREPARED);
    assert_int_equal(ROLLBACK(c, "g1"), 0);
    assert_session_lock_wait(c);
    assert_int_equal(recovered(c, "g1-01"), 0);
    assert_int_equal(imy_balance(c), 100);
    assert_int_equal(PREPARE(t.c, &a), TRELLIS_MYXA_SKIPPED_ROLLED_BACK);
    assert_int_equal(a.calls, 1);

    /* The prepare fails while the rollback waits: the rollback then
     * goes through, and a retried prepare rolls itself back. */
    add_t b = {.gid = "g2",
               .amount = 10,
               .sleep_ms = 300,
               .after = TRELLIS_BARRIER_BUSINESS_FAIL};
    prep_thread_t u = {.c = t.c, .a = &b};
    start_prep(&th, &u);
    assert_int_equal(ROLLBACK(c, "g2"), 0);
    pthread_join(th, NULL);
    assert_int_equal(u.out, TRELLIS_MYXA_BUSINESS_FAILURE);
    b.after = TRELLIS_BARRIER_BUSINESS_OK;
    b.sleep_ms = 0;
    assert_int_equal(PREPARE(t.c, &b), TRELLIS_MYXA_SKIPPED_ROLLED_BACK);
    assert_int_equal(b.calls, 1);

    /* The same prepare twice at once: the second is told to retry. */
    add_t d = {.gid = "g3", .amount = 10, .sleep_ms = 300};
    prep_thread_t v = {.c = t.c, .a = &d};
    start_prep(&th, &v);
    MYSQL *p2 = imy_connect("rbduring");
    add_t d2 = {.gid = "g3", .amount = 10};
    assert_int_equal(PREPARE(p2, &d2), TRELLIS_MYXA_ERROR);
    printf("[ rbduring ] concurrent prepare: %s\n", msg);
    assert_non_null(strstr(msg, "another connection"));
    assert_clean(p2);
    pthread_join(th, NULL);
    assert_int_equal(v.out, TRELLIS_MYXA_PREPARED);
    assert_int_equal(COMMIT(c, "g3"), 0);
    assert_int_equal(imy_balance(c), 110);
    assert_int_equal(effects(c, "g3"), 1);
    assert_int_equal(xa_count(c), 0);
    mysql_close(p2);
    mysql_close(t.c);
    mysql_close(c);
    imy_pass();
}

/* ---- 4. connection lost before the prepare --------------------------------
 */

typedef struct {
    MYSQL *c;
    unsigned long id;
} session_t;

/* The session has ended on the server (its branch rolled back, its xid
 * released). */
static int gone_pred(void *arg)
{
    session_t *s = arg;
    return imy_int(s->c,
                   "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                   "ID = %lu",
                   s->id) == 0;
}

static void test_connection_dropped(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = setup_db("dropped");

    /* Killed inside the business SQL. */
    MYSQL *victim = imy_connect("dropped");
    session_t vs = {.c = c, .id = mysql_thread_id(victim)};
    add_t a = {.gid = "g1", .amount = 10, .killer = imy_connect("dropped")};
    assert_int_equal(PREPARE(victim, &a), TRELLIS_MYXA_ERROR);
    printf("[ dropped ] killed mid-branch: %s\n", msg);
    mysql_close(victim);
    mysql_close(a.killer);
    /* KILL returns before the session has ended; until then its xid is
     * taken (the TM's retries would cover that window). */
    assert_true(harness_poll(gone_pred, &vs, 5000, 5));
    assert_int_equal(xa_count(c), 0);
    assert_int_equal(imy_balance(c), 100);
    assert_int_equal(effects(c, "g1"), 0);
    assert_int_equal(ROLLBACK(c, "g1"), 0);
    MYSQL *p = imy_connect("dropped");
    a.killer = NULL;
    assert_int_equal(PREPARE(p, &a), TRELLIS_MYXA_SKIPPED_ROLLED_BACK);

    /* Closed between XA START and XA PREPARE. */
    MYSQL *x = imy_connect("dropped");
    session_t xs = {.c = c, .id = mysql_thread_id(x)};
    imy_exec(x, "XA START 'g2-01'");
    imy_exec(x, "UPDATE accounts SET balance = balance + 10 WHERE id = 1");
    mysql_close(x);
    assert_true(harness_poll(gone_pred, &xs, 5000, 5));
    assert_int_equal(xa_count(c), 0);
    assert_int_equal(imy_balance(c), 100);
    assert_int_equal(ROLLBACK(c, "g2"), 0);
    mysql_close(p);
    mysql_close(c);
    imy_pass();
}

/* ---- 5. participant gone after the prepare ---------------------------------
 */

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
        if (commit(*c, gid, msg, sizeof msg) == 0)
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
    MYSQL *c = setup_db("killed");

    /* The preparer's session still open: the xid is listed, but XA COMMIT
     * from elsewhere answers XAER_NOTA; the adapter does not take that for
     * success. */
    MYSQL *x = imy_connect("killed");
    raw_prepare(x, "g1");
    assert_int_equal(recovered(c, "g1-01"), 1);
    assert_int_equal(COMMIT(c, "g1"), -1);
    printf("[ killed ] commit while attached: %s\n", msg);
    assert_non_null(strstr(msg, "attached"));
    assert_int_equal(ROLLBACK(c, "g1"), -1);
    assert_int_equal(imy_balance(c), 100);
    mysql_close(x); /* the participant's connection closes */
    printf("[ killed ] commit after close: %d attempt(s)\n",
           commit_retried(&c, "killed", "g1"));
    assert_int_equal(imy_balance(c), 110);
    assert_int_equal(effects(c, "g1"), 1);

    /* A participant process killed with SIGKILL after XA PREPARE. */
    int fd;
    pid_t pid = fork_preparer("killed", "g2", &fd);
    char byte = 0;
    assert_int_equal(read(fd, &byte, 1), 1);
    close(fd);
    assert_int_equal(recovered(c, "g2-01"), 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(recovered(c, "g2-01"), 1); /* survived */
    assert_int_equal(imy_balance(c), 110);
    printf("[ killed ] commit after SIGKILL: %d attempt(s)\n",
           commit_retried(&c, "killed", "g2"));
    assert_int_equal(imy_balance(c), 120);
    assert_int_equal(effects(c, "g2"), 1);

    /* The adapter's prepare, then the participant closes for good. */
    MYSQL *p = imy_connect("killed");
    add_t a = {.gid = "g3", .amount = 10};
    assert_int_equal(PREPARE(p, &a), TRELLIS_MYXA_PREPARED);
    mysql_close(p);
    assert_int_equal(COMMIT(c, "g3"), 0);
    assert_int_equal(imy_balance(c), 130);
    assert_int_equal(xa_count(c), 0);
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
        if (commit(c, gid, msg, sizeof msg) == 0) {
            assert_int_equal(effects(c, gid), 1);
            return 1;
        }
        if (dropped_by_server(msg)) {
            assert_int_equal(effects(c, gid), 0);
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
    MYSQL *c = setup_db("racing");
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
    assert_int_equal(xa_count(c), 0); /* dropped ones are unlisted too */
    if (ndropped > 0) {
        restart_server(&c, "racing");
        assert_int_equal(xa_count(c), ndropped);
        for (int i = 0; i < ndropped; i++) {
            assert_int_equal(COMMIT(c, dropped[i]), 0);
            assert_int_equal(effects(c, dropped[i]), 1);
        }
    }
    assert_int_equal(xa_count(c), 0);
    assert_int_equal(imy_int(c, "SELECT COUNT(*) FROM effects"), TRIES);
    mysql_close(c);
    imy_pass();
}

/* ---- 6. the recovery sweep against trellisd --------------------------------
 */

#define SVC "/trellis.test.Xa/"

/* The in-process participant: Prepare/Commit/Rollback over this adapter,
 * one connection per call. With `lost` set, phase-2 calls are answered OK
 * and dropped: a participant whose commit or rollback was acknowledged but
 * never reached the database, which leaves orphaned prepared XIDs behind
 * a finished transaction. */
typedef struct {
    const char *db;
    atomic_int lost;
    atomic_int dropped;
} part_t;

static void part_answer(trellis_reply_t *reply, int ok, const char *msg)
{
    reply->code = ok ? TRELLIS_REPLY_SUCCESS : TRELLIS_REPLY_ERROR;
    snprintf(reply->message, sizeof reply->message, "%s", msg);
}

static void h_prepare(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t len, trellis_reply_t *reply, void *user)
{
    (void)payload;
    (void)len;
    part_t *pt = user;
    char msg[256] = "";
    MYSQL *c = imy_try_connect(pt->db);
    if (!c) {
        part_answer(reply, 0, "no database");
        return;
    }
    trellis_barrier_branch_t b = trellis_barrier_branch_from_ctx(ctx);
    add_t a = {.gid = ctx->gid, .amount = 10, .log_only = 1};
    trellis_myxa_outcome_t o =
        trellis_myxa_prepare_branch(c, NULL, &b, add_fn, &a, msg, sizeof msg);
    trellis_myxa_fill_reply(o, msg, reply);
    mysql_close(c);
}

static void h_phase2(const trellis_branch_ctx_t *ctx, trellis_reply_t *reply,
                     part_t *pt, int commit_it)
{
    char msg[256] = "";
    if (atomic_load(&pt->lost)) {
        atomic_fetch_add(&pt->dropped, 1);
        return; /* SUCCESS, nothing done */
    }
    MYSQL *c = imy_try_connect(pt->db);
    if (!c) {
        part_answer(reply, 0, "no database");
        return;
    }
    trellis_barrier_branch_t b = trellis_barrier_branch_from_ctx(ctx);
    int rc = commit_it
                 ? trellis_myxa_commit_branch(c, NULL, &b, msg, sizeof msg)
                 : trellis_myxa_rollback_branch(c, NULL, &b, msg, sizeof msg);
    part_answer(reply, rc == 0, msg);
    mysql_close(c);
}

static void h_commit(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                     size_t len, trellis_reply_t *reply, void *user)
{
    (void)payload;
    (void)len;
    h_phase2(ctx, reply, user, 1);
}

static void h_rollback(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                       size_t len, trellis_reply_t *reply, void *user)
{
    (void)payload;
    (void)len;
    h_phase2(ctx, reply, user, 0);
}

typedef struct {
    trellis_client_t *client;
    trellis_participant_t *part;
    char addr[64];
} rig_t;

/* Start trellisd `name` (its own data dir, or on the MySQL store its own
 * database: an independent TM cluster) and the participant pt. */
static void rig_start_named(rig_t *r, part_t *pt, const char *name)
{
    char err[256];
    const char *args[] = {"--retry-interval-ms", "50", "--request-timeout-ms",
                          "3000", NULL};
    harness_server_t *tm = harness_tm_start(imy_harness(), name, args);
    assert_non_null(tm);
    assert_int_equal(trellis_client_new(harness_server_addr(tm), 10000,
                                        &r->client, err, sizeof err),
                     0);
    assert_int_equal(trellis_participant_new(4, &r->part, err, sizeof err), 0);
    assert_int_equal(trellis_participant_handle(r->part, SVC "Prepare",
                                                h_prepare, pt, err, sizeof err),
                     0);
    assert_int_equal(trellis_participant_handle(r->part, SVC "Commit", h_commit,
                                                pt, err, sizeof err),
                     0);
    assert_int_equal(trellis_participant_handle(r->part, SVC "Rollback",
                                                h_rollback, pt, err,
                                                sizeof err),
                     0);
    int port = 0;
    assert_int_equal(trellis_participant_start(r->part, "127.0.0.1:0", &port,
                                               err, sizeof err),
                     0);
    snprintf(r->addr, sizeof r->addr, "127.0.0.1:%d", port);
}

static void rig_start(rig_t *r, part_t *pt)
{
    rig_start_named(r, pt, "trellisd");
}

/* Begin gid, register its XA branch 01, call its prepare (asserting it
 * prepared) with the TM cluster's id as the SDK's XA helper sends it, or
 * (legacy) without it, as an initiator from before cluster ids does. */
static void xa_branch_as(rig_t *r, const char *gid, int legacy)
{
    char err[256], commit_t[128], rollback_t[128];
    trellis_options_t o = {.retry_interval_ms = 50, .request_timeout_ms = 3000};
    assert_int_equal(trellis_begin(r->client, gid, &o, err, sizeof err), 0);
    snprintf(commit_t, sizeof commit_t, "%s" SVC "Commit", r->addr);
    snprintf(rollback_t, sizeof rollback_t, "%s" SVC "Rollback", r->addr);
    trellis_branch_op_t ops[] = {{TRELLIS_OP_COMMIT, commit_t},
                                 {TRELLIS_OP_ROLLBACK, rollback_t}};
    assert_int_equal(trellis_register_branch(r->client, gid, "01",
                                             TRELLIS_MODE_XA, ops, 2, "x", 1,
                                             err, sizeof err),
                     0);
    char cluster[TRELLIS_CLUSTER_ID_MAX + 1];
    assert_int_equal(trellis_client_cluster_id(r->client, cluster,
                                               sizeof cluster, err, sizeof err),
                     0);
    const char *keys[] = {"dtm-gid", "dtm-trans_type", "dtm-branch_id",
                          "dtm-op", TRELLIS_CLUSTER_ID_HEADER};
    const char *vals[] = {gid, "xa", "01", "prepare", cluster};
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    trellis_rc_t rc = trellis_call_unary(r->addr, SVC "Prepare", "x", 1, keys,
                                         vals, legacy ? 4 : 5, 5000, &reply,
                                         &reply_len, err, sizeof err);
    free(reply);
    if (rc != TRELLIS_OK)
        fail_msg("prepare %s: %d %s", gid, rc, err);
}

static void xa_branch(rig_t *r, const char *gid)
{
    xa_branch_as(r, gid, 0);
}

/* Submit or abort gid and wait for the outcome. */
static trellis_trans_status_t finish(rig_t *r, const char *gid, int submit)
{
    char err[256], reason[256];
    trellis_trans_status_t st = 0;
    trellis_rc_t rc =
        submit ? trellis_submit(r->client, gid, 1, &st, reason, sizeof reason,
                                err, sizeof err)
               : trellis_abort(r->client, gid, "test", 1, &st, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("%s %s: %d %s", submit ? "submit" : "abort", gid, rc, err);
    return st;
}

static void test_recovery(void **state)
{
    (void)state;
    char msg[256], err[256];
    MYSQL *c = setup_db("recovery");
    static part_t pt = {.db = "recovery"};
    rig_t r = {0};
    rig_start(&r, &pt);
    char cluster[TRELLIS_CLUSTER_ID_MAX + 1];
    assert_int_equal(trellis_client_cluster_id(r.client, cluster,
                                               sizeof cluster, err, sizeof err),
                     0);
    printf("[ recover ] trellisd's cluster id: %s\n", cluster);
    assert_true(strncmp(cluster, "sqlite-", 7) == 0 ||
                strncmp(cluster, "mysql-", 6) == 0);

    /* End to end: trellisd commits and rolls back through the adapter;
     * the XIDs carry the cluster id. Branches prepared without it (an
     * initiator from before cluster ids) are found in their legacy form
     * by trellisd's phase 2, which names the cluster. */
    xa_branch(&r, "e2e-ok");
    xa_branch(&r, "e2e-no");
    xa_branch_as(&r, "e2e-old-ok", 1);
    xa_branch_as(&r, "e2e-old-no", 1);
    assert_int_equal(recovered_in(c, "e2e-ok-01", cluster), 1);
    assert_int_equal(recovered_in(c, "e2e-old-ok-01", cluster), 0);
    assert_int_equal(recovered(c, "e2e-old-ok-01"), 1);
    assert_int_equal(finish(&r, "e2e-ok", 1), TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(finish(&r, "e2e-no", 0), TRELLIS_TRANS_FAILED);
    assert_int_equal(finish(&r, "e2e-old-ok", 1), TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(finish(&r, "e2e-old-no", 0), TRELLIS_TRANS_FAILED);
    assert_int_equal(effects(c, "e2e-ok"), 1);
    assert_int_equal(effects(c, "e2e-no"), 0);
    assert_int_equal(effects(c, "e2e-old-ok"), 1);
    assert_int_equal(effects(c, "e2e-old-no"), 0);
    assert_int_equal(xa_count(c), 0);

    /* Orphans: finished transactions whose phase 2 was lost. */
    atomic_store(&pt.lost, 1);
    xa_branch(&r, "orph-ok");
    xa_branch(&r, "orph-no");
    xa_branch(&r, "pending");        /* begun, prepared, undecided */
    xa_branch_as(&r, "orph-old", 1); /* legacy form */
    assert_int_equal(finish(&r, "orph-ok", 1), TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(finish(&r, "orph-no", 0), TRELLIS_TRANS_FAILED);
    assert_int_equal(finish(&r, "orph-old", 0), TRELLIS_TRANS_FAILED);
    assert_int_equal(atomic_load(&pt.dropped), 3);
    /* Gids trellisd never heard of: one of this cluster, one in the legacy
     * form (which may be another TM's); and xids that are not ours. */
    MYSQL *p = imy_connect("recovery");
    add_t a = {.gid = "unknown", .amount = 10, .log_only = 1};
    trellis_barrier_branch_t ub = branch("unknown", "prepare");
    ub.cluster_id = cluster;
    assert_int_equal(
        trellis_myxa_prepare_branch(p, NULL, &ub, add_fn, &a, msg, sizeof msg),
        TRELLIS_MYXA_PREPARED);
    add_t ua = {.gid = "unknown-old", .amount = 10, .log_only = 1};
    assert_int_equal(PREPARE(p, &ua), TRELLIS_MYXA_PREPARED);
    imy_exec(p, "XA START 'foreign-01', 'bq'");
    imy_exec(p, "INSERT INTO effects (gid, delta) VALUES ('foreign', 1)");
    imy_exec(p, "XA END 'foreign-01', 'bq'");
    imy_exec(p, "XA PREPARE 'foreign-01', 'bq'");
    mysql_close(p);
    p = imy_connect("recovery");
    imy_exec(p, "XA START 'nodash'");
    imy_exec(p, "INSERT INTO effects (gid, delta) VALUES ('nodash', 1)");
    imy_exec(p, "XA END 'nodash'");
    imy_exec(p, "XA PREPARE 'nodash'");
    mysql_close(p);
    assert_int_equal(xa_count(c), 8);

    /* trellisd unreachable: an error, nothing resolved. */
    trellis_client_t *dead = NULL;
    assert_int_equal(
        trellis_client_new("127.0.0.1:1", 500, &dead, err, sizeof err), 0);
    unsigned com = 9, rb = 9;
    assert_int_equal(trellis_myxa_recover(c, dead, &com, &rb, err, sizeof err),
                     -1);
    printf("[ recover ] trellisd down: %s\n", err);
    assert_int_equal(com + rb, 0);
    assert_int_equal(xa_count(c), 8);
    trellis_client_free(dead);

    assert_int_equal(
        trellis_myxa_recover(c, r.client, &com, &rb, err, sizeof err), 0);
    printf("[ recover ] committed %u, rolled back %u\n", com, rb);
    assert_int_equal(com, 1);
    assert_int_equal(rb, 3);
    assert_int_equal(recovered(c, "orph-ok-01"), 0);
    assert_int_equal(recovered(c, "orph-no-01"), 0);
    assert_int_equal(recovered(c, "orph-old-01"), 0);
    assert_int_equal(recovered(c, "unknown-01"), 0);
    assert_int_equal(recovered(c, "unknown-old-01"), 1); /* left alone */
    assert_int_equal(recovered(c, "pending-01"), 1);
    assert_int_equal(xa_count(c),
                     4); /* pending, unknown-old, foreign, nodash */
    assert_int_equal(effects(c, "orph-ok"), 1);
    assert_int_equal(effects(c, "orph-no"), 0);
    assert_int_equal(effects(c, "orph-old"), 0);
    assert_int_equal(effects(c, "unknown"), 0);
    assert_int_equal(
        trellis_myxa_recover(c, r.client, &com, &rb, err, sizeof err), 0);
    assert_int_equal(com + rb, 0);

    /* Clean up: trellisd rolls the pending one back; the rest by hand. */
    atomic_store(&pt.lost, 0);
    assert_int_equal(finish(&r, "pending", 0), TRELLIS_TRANS_FAILED);
    imy_exec(c, "XA ROLLBACK 'foreign-01', 'bq'");
    imy_exec(c, "XA ROLLBACK 'nodash'");
    imy_exec(c, "XA ROLLBACK 'unknown-old-01'");
    assert_int_equal(xa_count(c), 0);
    assert_int_equal(effects(c, "pending"), 0);
    assert_int_equal(imy_balance(c), 100);
    assert_int_equal(effects(c, "e2e-ok") + effects(c, "e2e-old-ok") +
                         effects(c, "orph-ok"),
                     3);
    trellis_participant_free(r.part);
    trellis_client_free(r.client);
    mysql_close(c);
    imy_pass();
}

/* Begin gid on r's trellisd with the SDK's XA helper and prepare its one
 * branch at r's participant; the transaction is left undecided. */
static trellis_xa_t *xa_held(rig_t *r, const char *gid)
{
    char err[256], p[128], cm[128], rb[128];
    trellis_options_t o = {
        .wait_result = 1, .retry_interval_ms = 50, .request_timeout_ms = 3000};
    trellis_xa_t *x = NULL;
    assert_int_equal(trellis_xa_begin(r->client, gid, &o, &x, err, sizeof err),
                     0);
    snprintf(p, sizeof p, "%s" SVC "Prepare", r->addr);
    snprintf(cm, sizeof cm, "%s" SVC "Commit", r->addr);
    snprintf(rb, sizeof rb, "%s" SVC "Rollback", r->addr);
    trellis_rc_t rc = trellis_xa_call_branch(x, p, cm, rb, "x", 1, NULL, NULL,
                                             err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("prepare %s: %d %s", gid, rc, err);
    return x;
}

/* Issue 12 item 10: two independent TM setups (two trellisd, two stores)
 * whose participants share one MariaDB. TM A's branch is prepared and not
 * yet decided while TM B's sweep runs: B must leave it alone (today it
 * asked B about A's gid, heard NOT_FOUND and rolled it back, and A's
 * commit then retried for ever). B's sweep still resolves B's own
 * orphan, and A then commits its branch. */
static void test_xa_sweep_leaves_other_cluster(void **state)
{
    (void)state;
    char err[256], reason[256];
    MYSQL *ca = setup_db("clustera");
    MYSQL *cb = setup_db("clusterb");
    static part_t pa = {.db = "clustera"}, pb = {.db = "clusterb"};
    rig_t a = {0}, b = {0};
    rig_start_named(&a, &pa, "tm-a");
    rig_start_named(&b, &pb, "tm-b");

    /* B: an orphan of its own (rolled back, its rollback lost). */
    trellis_xa_t *xb = xa_held(&b, "orph-b");
    atomic_store(&pb.lost, 1);
    trellis_trans_status_t st = 0;
    assert_int_equal(trellis_xa_abort(xb, "test", &st, err, sizeof err),
                     TRELLIS_OK);
    trellis_xa_free(xb);
    assert_int_equal(st, TRELLIS_TRANS_FAILED);
    assert_int_equal(recovered(cb, "orph-b-01"), 1);

    /* A: prepared, held undecided; its XID names A's cluster. */
    trellis_xa_t *xa = xa_held(&a, "held-a");
    assert_int_equal(recovered(ca, "held-a-01"), 1);
    char ida[TRELLIS_CLUSTER_ID_MAX + 1], idb[TRELLIS_CLUSTER_ID_MAX + 1];
    assert_int_equal(
        trellis_client_cluster_id(a.client, ida, sizeof ida, err, sizeof err),
        0);
    assert_int_equal(
        trellis_client_cluster_id(b.client, idb, sizeof idb, err, sizeof err),
        0);
    printf("[ clusters ] A %s, B %s\n", ida, idb);
    assert_string_not_equal(ida, idb);
    assert_int_equal(recovered_in(ca, "held-a-01", ida), 1);

    unsigned com = 9, rb = 9;
    assert_int_equal(
        trellis_myxa_recover(cb, b.client, &com, &rb, err, sizeof err), 0);
    printf("[ recover ] TM B's sweep: committed %u, rolled back %u\n", com, rb);
    if (recovered(ca, "held-a-01") != 1)
        fail_msg("TM B's sweep rolled back TM A's prepared branch held-a-01 "
                 "(B committed %u, rolled back %u; A's branch must survive)",
                 com, rb);
    assert_int_equal(recovered(cb, "orph-b-01"), 0);
    assert_int_equal(com, 0);
    assert_int_equal(rb, 1);

    /* A's own sweep leaves its undecided branch; A commits it. */
    assert_int_equal(
        trellis_myxa_recover(ca, a.client, &com, &rb, err, sizeof err), 0);
    assert_int_equal(com + rb, 0);
    assert_int_equal(
        trellis_xa_submit(xa, &st, reason, sizeof reason, err, sizeof err),
        TRELLIS_OK);
    trellis_xa_free(xa);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(recovered(ca, "held-a-01"), 0);
    assert_int_equal(effects(ca, "held-a"), 1);
    assert_int_equal(effects(cb, "orph-b"), 0);
    assert_int_equal(xa_count(ca), 0);

    trellis_participant_free(a.part);
    trellis_participant_free(b.part);
    trellis_client_free(a.client);
    trellis_client_free(b.client);
    mysql_close(ca);
    mysql_close(cb);
    imy_pass();
}

/* ---- 7. xids
 * ----------------------------------------------------------------- */

static void test_xid(void **state)
{
    (void)state;
    char xid[TRELLIS_MYXA_XID_MAX + 1], err[256], msg[256];
    assert_int_equal(
        trellis_myxa_make_xid("g1", "01", xid, sizeof xid, err, sizeof err), 0);
    assert_string_equal(xid, "g1-01");
    assert_int_equal(trellis_myxa_make_xid("a-b.c:D_9", "01", xid, sizeof xid,
                                           err, sizeof err),
                     0);
    assert_string_equal(xid, "a-b.c:D_9-01");

    char gid[80];
    memset(gid, 'g', sizeof gid);
    gid[61] = '\0'; /* 61 + "-01" = 64 */
    assert_int_equal(
        trellis_myxa_make_xid(gid, "01", xid, sizeof xid, err, sizeof err), 0);
    assert_int_equal(strlen(xid), TRELLIS_MYXA_XID_MAX);
    gid[61] = 'g';
    gid[62] = '\0';
    assert_int_equal(
        trellis_myxa_make_xid(gid, "01", xid, sizeof xid, err, sizeof err), -1);
    printf("[ xid ] %s\n", err);
    assert_non_null(strstr(err, "limit is 64"));

    const char *bad_gid[] = {"", "it's", "a b", "g;DROP", "é", "g\n"};
    for (size_t i = 0; i < sizeof bad_gid / sizeof *bad_gid; i++) {
        err[0] = '\0';
        assert_int_equal(trellis_myxa_make_xid(bad_gid[i], "01", xid,
                                               sizeof xid, err, sizeof err),
                         -1);
        assert_true(strstr(err, "character outside") || strstr(err, "empty"));
    }
    assert_int_equal(
        trellis_myxa_make_xid("g1", "0-1", xid, sizeof xid, err, sizeof err),
        -1);
    printf("[ xid ] %s\n", err);
    assert_non_null(strstr(err, "ambiguous"));
    assert_int_equal(
        trellis_myxa_make_xid("g1", NULL, xid, sizeof xid, err, sizeof err),
        -1);
    char small[4];
    assert_int_equal(
        trellis_myxa_make_xid("g1", "01", small, sizeof small, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "too small"));

    /* The entry points refuse them before touching the database. */
    MYSQL *c = setup_db("xid");
    add_t a = {.gid = "it's", .amount = 10};
    assert_int_equal(PREPARE(c, &a), TRELLIS_MYXA_ERROR);
    assert_non_null(strstr(msg, "character outside"));
    assert_int_equal(COMMIT(c, "a b"), -1);
    assert_int_equal(ROLLBACK(c, gid), -1);
    assert_non_null(strstr(msg, "limit"));
    trellis_barrier_branch_t b = branch("g1", "try");
    assert_int_equal(
        trellis_myxa_prepare_branch(c, NULL, &b, add_fn, &a, msg, sizeof msg),
        TRELLIS_MYXA_ERROR);
    assert_non_null(strstr(msg, "expected"));
    assert_int_equal(trellis_myxa_prepare_branch(c, "no-such", &b, add_fn, &a,
                                                 msg, sizeof msg),
                     TRELLIS_MYXA_ERROR);
    assert_non_null(strstr(msg, "table name"));
    /* An open transaction is neither used nor ended. */
    imy_exec(c, "START TRANSACTION");
    add_t d = {.gid = "g1", .amount = 10};
    assert_int_equal(PREPARE(c, &d), TRELLIS_MYXA_ERROR);
    assert_non_null(strstr(msg, "already open"));
    imy_exec(c, "ROLLBACK");
    assert_int_equal(a.calls + d.calls, 0);
    assert_int_equal(xa_count(c), 0);
    mysql_close(c);
    imy_pass();
}

/* ---- 8. cost, measured and bounded ------------------------------------- */

/* One row inserted: prepared branches hold no lock another one waits for. */
static trellis_barrier_business_rc_t log_row(MYSQL *c, void *u, char *msg,
                                             size_t msglen)
{
    (void)u;
    if (mysql_query(c, "INSERT INTO effects (gid, delta) VALUES ('c', 0)")) {
        snprintf(msg, msglen, "%s", mysql_error(c));
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    }
    return TRELLIS_BARRIER_BUSINESS_OK;
}

typedef enum { COST_PREPARE, COST_COMMIT, COST_ROLLBACK } cost_op_t;

/* Per op, averaged over n ops, from the server's global counters (the
 * monitor's own SHOW statements subtracted). */
typedef struct {
    double stmts;    /* statements (= round trips), the handler's included */
    double selects;  /* of which SELECTs (commit's barrier read, prepare's
                        process-list polls) */
    double connects; /* new sessions */
} cost_t;

static cost_t per_op(MYSQL *mon, MYSQL *p, const char *prefix, cost_op_t op,
                     int n)
{
    char gid[64], msg[256];
    long long q0 = imy_status(mon, "GLOBAL", "Questions");
    long long s0 = imy_status(mon, "GLOBAL", "Com_select");
    long long c0 = imy_status(mon, "GLOBAL", "Connections");
    for (int i = 0; i < n; i++) {
        snprintf(gid, sizeof gid, "%s-%d", prefix, i);
        trellis_barrier_branch_t b =
            branch(gid, op == COST_PREPARE  ? "prepare"
                        : op == COST_COMMIT ? "commit"
                                            : "rollback");
        int ok =
            op == COST_PREPARE
                ? trellis_myxa_prepare_branch(p, NULL, &b, log_row, NULL, msg,
                                              sizeof msg) ==
                      TRELLIS_MYXA_PREPARED
            : op == COST_COMMIT
                ? trellis_myxa_commit_branch(p, NULL, &b, msg, sizeof msg) == 0
                : trellis_myxa_rollback_branch(p, NULL, &b, msg, sizeof msg) ==
                      0;
        if (!ok)
            fail_msg("%s: %s", gid, msg);
    }
    /* Three SHOWs ran after q0 was read. */
    long long q = imy_status(mon, "GLOBAL", "Questions") - q0 - 3;
    long long s = imy_status(mon, "GLOBAL", "Com_select") - s0;
    long long k = imy_status(mon, "GLOBAL", "Connections") - c0;
    return (cost_t){(double)q / n, (double)s / n, (double)k / n};
}

static void test_cost(void **state)
{
    (void)state;
    char gid[64], msg[256];
    MYSQL *c = setup_db("cost");
    MYSQL *p = imy_connect("cost");
    int n = 200;
    /* Statements per op, the handler's one INSERT included, counted by the
     * server for all sessions (nothing else runs on it meanwhile). The
     * bounds are what xa.c's header promises and today's code sends. A
     * prepare: XA START, the barrier INSERT IGNORE, the handler's INSERT,
     * XA END, XA PREPARE, then the reconnect that detaches the prepared
     * branch (its handshake and SET NAMES count 2): 7, plus the polls of
     * the process list for the old session's end — timing-dependent, one
     * or two after the backoff's first 200 us; more than 3 on average
     * means the backoff broke. Exactly one new session per prepare. A
     * commit: XA COMMIT and the barrier row read (2; 3 for an unknown xid,
     * whose XA RECOVER tells "gone" from "attached"). A rollback: XA
     * ROLLBACK, the lock wait set, the barrier INSERT, the lock wait
     * restored (4; 5 unknown). Any extra statement per op adds 1 and
     * breaks its bound; fewer is an improvement (lower the bound). */
    printf("[ cost ] statements (round trips) per op, handler's 1 INSERT "
           "included:\n");
    cost_t prep = per_op(c, p, "rt", COST_PREPARE, n);
    imy_assert_cost("prepare", prep.stmts - prep.selects, 7);
    imy_assert_cost("its polls", prep.selects, 3);
    imy_assert_cost("reconnects", prep.connects, 1);
    imy_assert_cost("commit", per_op(c, p, "rt", COST_COMMIT, n).stmts, 2);
    imy_assert_cost("commit again", per_op(c, p, "rt", COST_COMMIT, n).stmts,
                    3);
    per_op(c, p, "rb", COST_PREPARE, n);
    imy_assert_cost("rollback", per_op(c, p, "rb", COST_ROLLBACK, n).stmts, 4);
    imy_assert_cost("rollback empty",
                    per_op(c, p, "rx", COST_ROLLBACK, n).stmts, 5);

    int ops = 1000;
    int64_t t0 = harness_mono_ms();
    for (int i = 0; i < ops; i++) {
        snprintf(gid, sizeof gid, "speed-%d", i);
        trellis_barrier_branch_t b = branch(gid, "prepare");
        assert_int_equal(trellis_myxa_prepare_branch(p, NULL, &b, log_row, NULL,
                                                     msg, sizeof msg),
                         TRELLIS_MYXA_PREPARED);
        b.op = "commit";
        assert_int_equal(
            trellis_myxa_commit_branch(p, NULL, &b, msg, sizeof msg), 0);
    }
    int64_t ms = harness_mono_ms() - t0;
    printf("[ cost ] 1 connection: %d prepare+commit in %lld ms: %.0f XA "
           "transactions/s\n",
           ops, (long long)ms, ms ? ops * 1000.0 / (double)ms : 0.0);
    assert_int_equal(xa_count(c), 0);
    mysql_close(p);
    mysql_close(c);
    imy_pass();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prepare_commit, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_repeats, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_first, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_during_prepare,
                                        imy_test_setup, imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_connection_dropped, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_killed_after_prepare,
                                        imy_test_setup, imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_commit_racing_disconnect,
                                        imy_test_setup, imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_recovery, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_xa_sweep_leaves_other_cluster,
                                        imy_test_setup, imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_xid, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_cost, imy_test_setup,
                                        imy_test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
