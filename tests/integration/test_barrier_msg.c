/*
 * test_barrier_msg.c: the barrier of 2-phase messages (barrier/barrier_msg.c)
 * against a real MariaDB, one server per run of this file, one database per
 * test: the local transaction and the back-check in either order, business
 * failures, the back-check racing a local transaction that is held open
 * (committing, rolling back, timing out), repeated answers, the
 * participant handler, and misuse (a second local transaction, an
 * auto-reconnecting connection); the message builder's checks and
 * trellis_msg_do_and_submit when trellisd cannot be reached.
 *
 * The business SQL logs one row into `effects` per run; the tests count
 * those rows to see what committed. The races are deterministic: the local
 * transaction's callback blocks until released, and the back-check is
 * seen waiting on its row lock in INFORMATION_SCHEMA.INNODB_TRX before the
 * release.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>

#include "itest_barrier.h"
#include "itest_mysql.h"
#include "trellis/barrier_msg.h"
#include "trellis/trellis_msg.h"

static int group_setup(void **state)
{
    (void)state;
    return imy_start("barrier_msg");
}

static int group_teardown(void **state)
{
    (void)state;
    imy_finish();
    return 0;
}

/* ---- the business SQL --------------------------------------------------- */

/* One local transaction's business: log (gid, 1) into effects, then
 * optionally block until released, then answer `after`. */
typedef struct {
    const char *gid;
    trellis_barrier_business_rc_t after;
    int calls;
    int hold; /* block after the insert until released */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int held, released;
} biz_t;

static void biz_init(biz_t *b, const char *gid)
{
    memset(b, 0, sizeof *b);
    b->gid = gid;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
}

static void biz_destroy(biz_t *b)
{
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

static trellis_barrier_business_rc_t biz(MYSQL *c, void *u, char *msg,
                                         size_t msglen)
{
    biz_t *b = u;
    b->calls++;
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO effects (gid, delta) VALUES ('%s', 1)", b->gid);
    if (mysql_query(c, sql) != 0) {
        snprintf(msg, msglen, "effects: %s", mysql_error(c));
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    }
    if (b->hold) {
        pthread_mutex_lock(&b->mu);
        b->held = 1;
        pthread_cond_broadcast(&b->cv);
        while (!b->released)
            pthread_cond_wait(&b->cv, &b->mu);
        pthread_mutex_unlock(&b->mu);
    }
    if (b->after == TRELLIS_BARRIER_BUSINESS_FAIL)
        snprintf(msg, msglen, "no funds");
    return b->after;
}

static long long effects(MYSQL *c, const char *gid)
{
    return imy_int(c, "SELECT COUNT(*) FROM effects WHERE gid = '%s'", gid);
}

static trellis_barrier_msg_outcome_t run_local(MYSQL *c, biz_t *b, char *msg,
                                               size_t msglen)
{
    trellis_barrier_msg_outcome_t o =
        trellis_barrier_msg_run(c, NULL, b->gid, biz, b, msg, msglen);
    if (o != TRELLIS_BARRIER_MSG_COMMIT_UNKNOWN)
        imy_assert_clean(c);
    return o;
}

static trellis_barrier_check_t check(MYSQL *c, const char *gid)
{
    char msg[256];
    trellis_barrier_check_t a =
        trellis_barrier_query_prepared(c, NULL, gid, msg, sizeof msg);
    imy_assert_clean(c);
    return a;
}

/* ---- 1. commit, then the back-check ------------------------------------- */

static void test_commit_then_check(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = ibr_setup_db("msg_commit");
    biz_t b;
    biz_init(&b, "m1");
    assert_int_equal(run_local(c, &b, msg, sizeof msg),
                     TRELLIS_BARRIER_MSG_COMMITTED);
    assert_int_equal(b.calls, 1);
    assert_int_equal(effects(c, "m1"), 1);
    assert_int_equal(imy_int(c,
                             "SELECT COUNT(*) FROM trellis_barrier WHERE gid = "
                             "'m1' AND branch_id = '00' AND op = 'msg' AND "
                             "barrier_id = '01' AND reason = 'msg'"),
                     1);
    for (int i = 0; i < 3; i++) /* the same answer every time */
        assert_int_equal(check(c, "m1"), TRELLIS_BARRIER_CHECK_COMMITTED);
    assert_int_equal(ibr_barrier_rows(c, "m1"), 1);

    trellis_reply_t r = {0};
    trellis_barrier_query_prepared_reply(TRELLIS_BARRIER_CHECK_COMMITTED, "",
                                         &r);
    assert_int_equal(r.code, TRELLIS_REPLY_SUCCESS);

    /* A gid's local transaction runs once: a second is an error, not
     * "too late", and does nothing. */
    assert_int_equal(run_local(c, &b, msg, sizeof msg),
                     TRELLIS_BARRIER_MSG_ERROR);
    assert_non_null(strstr(msg, "already ran"));
    assert_int_equal(b.calls, 1);
    assert_int_equal(effects(c, "m1"), 1);
    assert_int_equal(check(c, "m1"), TRELLIS_BARRIER_CHECK_COMMITTED);
    biz_destroy(&b);
    mysql_close(c);
    imy_pass();
}

/* ---- 2. the back-check first -------------------------------------------- */

static void test_check_first(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = ibr_setup_db("msg_check_first");
    assert_int_equal(check(c, "m2"), TRELLIS_BARRIER_CHECK_NOT_COMMITTED);
    assert_int_equal(check(c, "m2"), TRELLIS_BARRIER_CHECK_NOT_COMMITTED);

    biz_t b;
    biz_init(&b, "m2");
    assert_int_equal(run_local(c, &b, msg, sizeof msg),
                     TRELLIS_BARRIER_MSG_TOO_LATE);
    assert_non_null(strstr(msg, "too late"));
    assert_int_equal(b.calls, 0);
    assert_int_equal(effects(c, "m2"), 0);
    assert_int_equal(check(c, "m2"), TRELLIS_BARRIER_CHECK_NOT_COMMITTED);
    assert_int_equal(ibr_barrier_rows(c, "m2"), 1);

    trellis_reply_t r = {0};
    trellis_barrier_query_prepared_reply(TRELLIS_BARRIER_CHECK_NOT_COMMITTED,
                                         "not committed: x", &r);
    assert_int_equal(r.code, TRELLIS_REPLY_FAILURE);
    assert_string_equal(r.message, "not committed: x");
    trellis_barrier_query_prepared_reply(TRELLIS_BARRIER_CHECK_ERROR, NULL, &r);
    assert_int_equal(r.code, TRELLIS_REPLY_ERROR);
    biz_destroy(&b);
    mysql_close(c);
    imy_pass();
}

/* ---- 3. business failure
 * ----------------------------------------------------- */

static void test_business_failure(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = ibr_setup_db("msg_fail");
    biz_t b;
    biz_init(&b, "m3");
    b.after = TRELLIS_BARRIER_BUSINESS_FAIL;
    assert_int_equal(run_local(c, &b, msg, sizeof msg),
                     TRELLIS_BARRIER_MSG_BUSINESS_FAILURE);
    assert_string_equal(msg, "no funds");
    assert_int_equal(effects(c, "m3"), 0);
    assert_int_equal(ibr_barrier_rows(c, "m3"), 0);
    assert_int_equal(check(c, "m3"), TRELLIS_BARRIER_CHECK_NOT_COMMITTED);
    assert_int_equal(check(c, "m3"), TRELLIS_BARRIER_CHECK_NOT_COMMITTED);

    /* A business error rolls back the same way. */
    biz_t e;
    biz_init(&e, "m3e");
    e.after = TRELLIS_BARRIER_BUSINESS_ERROR;
    assert_int_equal(run_local(c, &e, msg, sizeof msg),
                     TRELLIS_BARRIER_MSG_ERROR);
    assert_int_equal(effects(c, "m3e"), 0);
    assert_int_equal(check(c, "m3e"), TRELLIS_BARRIER_CHECK_NOT_COMMITTED);
    biz_destroy(&b);
    biz_destroy(&e);
    mysql_close(c);
    imy_pass();
}

/* ---- 4. the back-check racing a held local transaction
 * ----------------------- */

typedef struct {
    MYSQL *c;
    biz_t *b;
    trellis_barrier_msg_outcome_t out;
    char msg[256];
} local_run_t;

static void *local_thread(void *arg)
{
    local_run_t *l = arg;
    l->out = trellis_barrier_msg_run(l->c, NULL, l->b->gid, biz, l->b, l->msg,
                                     sizeof l->msg);
    return NULL;
}

typedef struct {
    MYSQL *c;
    const char *gid;
    trellis_barrier_check_t answer;
    atomic_int done;
    char msg[256];
} check_run_t;

static void *check_thread(void *arg)
{
    check_run_t *k = arg;
    k->answer = trellis_barrier_query_prepared(k->c, NULL, k->gid, k->msg,
                                               sizeof k->msg);
    atomic_store(&k->done, 1);
    return NULL;
}

static void wait_held(biz_t *b)
{
    pthread_mutex_lock(&b->mu);
    while (!b->held)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

static void release(biz_t *b)
{
    pthread_mutex_lock(&b->mu);
    b->released = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Wait (at most 30 s) until session `id` waits on a row lock. InnoDB
 * refreshes INNODB_TRX only when it was not read for 100 ms: polled
 * faster, it would show the same snapshot for ever. */
static void wait_lock_wait(MYSQL *watch, unsigned long id)
{
    for (int i = 0; i < 200; i++) {
        if (imy_int(watch,
                    "SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                    "WHERE trx_mysql_thread_id = %lu AND trx_state = "
                    "'LOCK WAIT'",
                    id) == 1)
            return;
        usleep(150000);
    }
    if (mysql_query(watch, "SELECT trx_mysql_thread_id, trx_state, "
                           "IFNULL(trx_query, '') FROM "
                           "information_schema.INNODB_TRX") == 0) {
        MYSQL_RES *r = mysql_store_result(watch);
        MYSQL_ROW row;
        while (r && (row = mysql_fetch_row(r)))
            printf("trx: session %s %s %s\n", row[0], row[1], row[2]);
        mysql_free_result(r);
    }
    fail_msg("session %lu never waited on the message's row lock", id);
}

/* The local transaction holds its row; the back-check must wait for it,
 * then answer from its outcome (`after`). lock_wait_s > 0: the checker's
 * innodb_lock_wait_timeout, the release comes only after it answered. */
static void race(const char *db, const char *gid,
                 trellis_barrier_business_rc_t after, int lock_wait_s,
                 trellis_barrier_msg_outcome_t want_local,
                 trellis_barrier_check_t want_answer)
{
    MYSQL *watch = ibr_setup_db(db);
    biz_t b;
    biz_init(&b, gid);
    b.hold = 1;
    b.after = after;
    static local_run_t l;
    static check_run_t k;
    l = (local_run_t){.c = imy_connect(db), .b = &b};
    k = (check_run_t){.c = imy_connect(db), .gid = gid};
    if (lock_wait_s > 0)
        imy_exec(k.c, "SET SESSION innodb_lock_wait_timeout = %d", lock_wait_s);
    pthread_t lt, kt;
    assert_int_equal(pthread_create(&lt, NULL, local_thread, &l), 0);
    wait_held(&b); /* the row is inserted, the transaction open */
    assert_int_equal(pthread_create(&kt, NULL, check_thread, &k), 0);
    if (lock_wait_s > 0) {
        pthread_join(kt, NULL); /* it gives up while the row is held */
        assert_int_equal(k.answer, TRELLIS_BARRIER_CHECK_ERROR);
        assert_non_null(strstr(k.msg, "Lock wait timeout"));
        imy_assert_clean(k.c);
    } else {
        wait_lock_wait(watch, mysql_thread_id(k.c));
        assert_int_equal(atomic_load(&k.done), 0);
    }
    release(&b);
    pthread_join(lt, NULL);
    if (lock_wait_s == 0)
        pthread_join(kt, NULL);
    else
        k.answer =
            trellis_barrier_query_prepared(k.c, NULL, gid, k.msg, sizeof k.msg);
    assert_int_equal(l.out, want_local);
    assert_int_equal(k.answer, want_answer);
    imy_assert_clean(l.c);
    imy_assert_clean(k.c);
    long long committed = want_local == TRELLIS_BARRIER_MSG_COMMITTED;
    assert_int_equal(effects(watch, gid), committed);
    for (int i = 0; i < 3; i++)
        assert_int_equal(check(watch, gid), want_answer);
    /* Whatever the order, the answer and the commit agree, and a late
     * local transaction cannot change it. */
    biz_t again;
    biz_init(&again, gid);
    char msg[256];
    assert_true(run_local(watch, &again, msg, sizeof msg) !=
                TRELLIS_BARRIER_MSG_COMMITTED);
    assert_int_equal(again.calls, 0);
    assert_int_equal(effects(watch, gid), committed);
    biz_destroy(&again);
    biz_destroy(&b);
    mysql_close(l.c);
    mysql_close(k.c);
    mysql_close(watch);
}

static void test_race_commit(void **state)
{
    (void)state;
    race("msg_race_commit", "m4", TRELLIS_BARRIER_BUSINESS_OK, 0,
         TRELLIS_BARRIER_MSG_COMMITTED, TRELLIS_BARRIER_CHECK_COMMITTED);
    imy_pass();
}

static void test_race_rollback(void **state)
{
    (void)state;
    race("msg_race_rollback", "m5", TRELLIS_BARRIER_BUSINESS_FAIL, 0,
         TRELLIS_BARRIER_MSG_BUSINESS_FAILURE,
         TRELLIS_BARRIER_CHECK_NOT_COMMITTED);
    imy_pass();
}

/* A back-check that gives up on the lock is an error (trellisd asks
 * again); asked again after the commit it answers committed. */
static void test_race_lock_timeout(void **state)
{
    (void)state;
    race("msg_race_timeout", "m6", TRELLIS_BARRIER_BUSINESS_OK, 1,
         TRELLIS_BARRIER_MSG_COMMITTED, TRELLIS_BARRIER_CHECK_COMMITTED);
    imy_pass();
}

/* ---- 5. the participant handler ----------------------------------------- */

typedef struct {
    MYSQL *conn;
    int borrowed, given_back, broken;
} lender_t;

static MYSQL *lend(void *user, char *err, size_t errlen)
{
    lender_t *l = user;
    if (!l->conn) {
        snprintf(err, errlen, "no connection to lend");
        return NULL;
    }
    l->borrowed++;
    return l->conn;
}

static void take_back(void *user, MYSQL *conn, int broken)
{
    lender_t *l = user;
    assert_ptr_equal(conn, l->conn);
    l->given_back++;
    l->broken += broken;
}

static trellis_reply_t call_handler(const trellis_barrier_conns_t *conns,
                                    const char *type, const char *op,
                                    const char *gid)
{
    trellis_branch_ctx_t ctx = {.gid = gid,
                                .trans_type = type,
                                .branch_id = "00",
                                .op = op,
                                .method = "/example.v1.Orders/QueryPrepared"};
    trellis_reply_t r;
    memset(&r, 0, sizeof r);
    trellis_barrier_query_prepared_handler(&ctx, NULL, 0, &r, (void *)conns);
    return r;
}

static void test_handler(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = ibr_setup_db("msg_handler");
    lender_t l = {.conn = c};
    trellis_barrier_conns_t conns = {
        .borrow = lend, .give_back = take_back, .user = &l, .table = NULL};
    biz_t b;
    biz_init(&b, "h1");
    assert_int_equal(run_local(c, &b, msg, sizeof msg),
                     TRELLIS_BARRIER_MSG_COMMITTED);

    trellis_reply_t r = call_handler(&conns, "msg", "query_prepared", "h1");
    assert_int_equal(r.code, TRELLIS_REPLY_SUCCESS);
    r = call_handler(&conns, "msg", "query_prepared", "h2");
    assert_int_equal(r.code, TRELLIS_REPLY_FAILURE);
    assert_non_null(strstr(r.message, "not committed"));
    assert_int_equal(l.borrowed, 2);
    assert_int_equal(l.given_back, 2);
    assert_int_equal(l.broken, 0);

    /* Not a back-check: never ABORTED, and no connection borrowed. */
    r = call_handler(&conns, "saga", "query_prepared", "h3");
    assert_int_equal(r.code, TRELLIS_REPLY_ERROR);
    r = call_handler(&conns, "msg", "action", "h3");
    assert_int_equal(r.code, TRELLIS_REPLY_ERROR);
    r = call_handler(&conns, "msg", "query_prepared", "");
    assert_int_equal(r.code, TRELLIS_REPLY_ERROR);
    assert_int_equal(l.borrowed, 2);
    assert_int_equal(ibr_barrier_rows(c, "h3"), 0);

    /* No connection to lend: an error, asked again later. */
    l.conn = NULL;
    r = call_handler(&conns, "msg", "query_prepared", "h4");
    assert_int_equal(r.code, TRELLIS_REPLY_ERROR);
    assert_string_equal(r.message, "no connection to lend");
    biz_destroy(&b);
    mysql_close(c);
    imy_pass();
}

/* ---- 6. the connection's rules ------------------------------------------ */

static void test_connection_rules(void **state)
{
    (void)state;
    char msg[256];
    MYSQL *c = ibr_setup_db("msg_conn");
    biz_t b;
    biz_init(&b, "c1");

    /* Auto-reconnect: refused before anything runs. */
    my_bool on = 1;
    mysql_optionsv(c, MYSQL_OPT_RECONNECT, &on);
    assert_int_equal(
        trellis_barrier_msg_run(c, NULL, "c1", biz, &b, msg, sizeof msg),
        TRELLIS_BARRIER_MSG_ERROR);
    assert_non_null(strstr(msg, "auto-reconnect"));
    on = 0;
    mysql_optionsv(c, MYSQL_OPT_RECONNECT, &on);
    assert_int_equal(b.calls, 0);

    /* A transaction left open by the caller: both sides refuse it. */
    imy_exec(c, "START TRANSACTION");
    assert_int_equal(
        trellis_barrier_msg_run(c, NULL, "c1", biz, &b, msg, sizeof msg),
        TRELLIS_BARRIER_MSG_ERROR);
    assert_int_equal(
        trellis_barrier_query_prepared(c, NULL, "c1", msg, sizeof msg),
        TRELLIS_BARRIER_CHECK_ERROR);
    imy_exec(c, "ROLLBACK");

    /* Autocommit off: the back-check still commits its row at once. */
    imy_exec(c, "SET autocommit = 0");
    assert_int_equal(
        trellis_barrier_query_prepared(c, NULL, "c2", msg, sizeof msg),
        TRELLIS_BARRIER_CHECK_NOT_COMMITTED);
    imy_exec(c, "SET autocommit = 1");
    MYSQL *other = imy_connect("msg_conn");
    assert_int_equal(ibr_barrier_rows(other, "c2"), 1);

    /* Bad names are refused before any SQL. */
    assert_int_equal(
        trellis_barrier_query_prepared(c, "bad-name", "c3", msg, sizeof msg),
        TRELLIS_BARRIER_CHECK_ERROR);
    assert_int_equal(
        trellis_barrier_query_prepared(c, NULL, "c3 ", msg, sizeof msg),
        TRELLIS_BARRIER_CHECK_ERROR);
    assert_int_equal(ibr_barrier_rows(other, "c3"), 0);
    biz_destroy(&b);
    mysql_close(other);
    mysql_close(c);
    imy_pass();
}

/* ---- 7. the builder's checks and do_and_submit without trellisd --------- */

static void test_builder_and_no_tm(void **state)
{
    (void)state;
    char err[256], msg[512];
    trellis_msg_t *m = NULL;
    assert_int_equal(trellis_msg_new("bad gid", &m, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_null(m);
    char long_gid[TRELLIS_MSG_GID_MAX + 2];
    memset(long_gid, 'g', sizeof long_gid - 1);
    long_gid[sizeof long_gid - 1] = '\0';
    assert_int_equal(trellis_msg_new(long_gid, &m, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(trellis_msg_new("n1", &m, err, sizeof err), TRELLIS_OK);
    assert_string_equal(trellis_msg_gid(m), "n1");
    assert_int_equal(
        trellis_msg_add_step(m, "no-method", "x", 1, err, sizeof err), -1);
    assert_int_equal(
        trellis_msg_add_topic_step(m, "bad/topic", "x", 1, err, sizeof err),
        -1);
    assert_int_equal(trellis_msg_add_step(m, "127.0.0.1:1/a.v1.S/Deliver", "x",
                                          1, err, sizeof err),
                     0);
    assert_int_equal(trellis_msg_add_topic_step(m, "orders.created", NULL, 0,
                                                err, sizeof err),
                     1);
    assert_int_equal(trellis_msg_add_dependency(m, 1, 1, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(trellis_msg_add_dependency(m, 1, 0, err, sizeof err),
                     TRELLIS_OK);

    /* No trellisd: the prepare fails and nothing runs locally. */
    MYSQL *c = ibr_setup_db("msg_no_tm");
    trellis_client_t *tm = NULL;
    assert_int_equal(
        trellis_client_new("127.0.0.1:1", 2000, &tm, err, sizeof err),
        TRELLIS_OK);
    assert_int_equal(
        trellis_msg_prepare(tm, m, "not a target", err, sizeof err),
        TRELLIS_INVALID_ARGUMENT);
    biz_t b;
    biz_init(&b, "n1");
    trellis_barrier_msg_outcome_t local = TRELLIS_BARRIER_MSG_COMMITTED;
    trellis_rc_t rc = trellis_msg_do_and_submit(
        tm, m, "127.0.0.1:1/a.v1.S/QueryPrepared", c, NULL, biz, &b, 0, &local,
        NULL, msg, sizeof msg);
    assert_int_not_equal(rc, TRELLIS_OK);
    assert_int_equal(local, TRELLIS_BARRIER_MSG_ERROR);
    assert_int_equal(b.calls, 0);
    assert_int_equal(ibr_barrier_rows(c, "n1"), 0);
    biz_destroy(&b);
    trellis_client_free(tm);
    trellis_msg_free(m);
    mysql_close(c);
    imy_pass();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_then_check, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_check_first, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_business_failure, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_race_commit, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_race_rollback, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_race_lock_timeout, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_handler, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_connection_rules, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_builder_and_no_tm, imy_test_setup,
                                        imy_test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
