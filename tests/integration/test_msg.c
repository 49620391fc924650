/*
 * test_msg.c: 2-phase messages end to end — an initiator (trellis-msgsvc,
 * harness/msgsvc.c: an order service over MariaDB that prepares a message,
 * runs its local transaction with the message's barrier row, then submits
 * or aborts it, and answers the back-check), a real trellisd and
 * trellis-testpart subscribers. What a user relies on:
 *
 *   a. success: steps delivered in order, each exactly once; concurrent
 *      steps in flight together; a topic's two subscribers get one
 *      delivery each; a subscriber that was down (answering UNAVAILABLE,
 *      or its process stopped) gets it once back; a step answering
 *      ABORTED is retried, never rolled back, and Query and trellisctl
 *      show the error on its op;
 *   b. the local transaction rolls back: the message is aborted, FAILED,
 *      nothing delivered;
 *   c. the initiator killed (kill -9) at each point 1..5 of its run, held
 *      there first: the message is delivered exactly when its orders row
 *      committed (nothing stored at all at point 1; at point 3 the open
 *      local transaction dies with the connection, the message is dropped
 *      and a late commit of it is impossible);
 *   d. trellisd (trellisd-faults) killed at every commit group of a
 *      message — before the decision is durable, after it, after each
 *      delivery's result, before the final write — committed or with its
 *      answer lost, and with a delivery in flight: every step once,
 *      SUCCEEDED (or, when the initiator never got its prepare answered,
 *      never delivered and never committed);
 *   e. the race: the back-check arrives while the local transaction holds
 *      its row (seen waiting in msgsvc and in INNODB_TRX), then the
 *      transaction commits (delivered once) or rolls back (dropped).
 *
 * Invariant checked after each: the orders row exists iff the message
 * SUCCEEDED, and then each delivery took effect exactly once at testpart
 * (repeats only as "dup"); otherwise testpart never saw the gid.
 *
 * Timing: msgsvc's messages are back-checked 400 ms after their creation
 * (per send overrides below) and trellisd's backoff is capped at 200 ms.
 * In (d) the messages wait 60 s instead, so no back-check comes between
 * the commit groups the test counts; the restarted trellisd-faults reads a
 * wall clock moved on by 120 s per restart (TRELLIS_FAULT_WALL_OFFSET_MS)
 * and back-checks a prepared message at once.
 */
#include "itest_fault.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "trellis/barrier_msg.h"
#include "trellis/trellis_msg.h"

#define FAST_TIMEOUT_MS 400
#define SLOW_TIMEOUT_MS 60000
#define CLOCK_STEP_MS 120000
#define WAIT_MS 20000

/* ---- the fixture ----------------------------------------------------- */

typedef struct {
    itest_t *t;
    harness_server_t *svc; /* trellis-msgsvc, owned by t->h */
    harness_server_t *sub; /* a second testpart (subscriber), or NULL */
    MYSQL *db;             /* the orders database */
    char database[128];
    char sub_action[128];
    int clock_moves; /* restarts of trellisd-faults with a later clock */
} fx_t;

static fx_t F;

/* The itest fixture (on trellisd-faults when faulty), the orders database
 * on the process's shared MariaDB, and trellis-msgsvc over it. */
static void fx_start(void **state, const char *name, int faulty,
                     unsigned timeout_ms)
{
    static const char *const tm_args[] = {"--max-backoff-ms", "200", NULL};
    char bin[PATH_MAX], to[16];
    memset(&F, 0, sizeof F);
    F.t = faulty ? itest_start_faulty(state, name, tm_args)
                 : itest_start(state, name, tm_args);
    harness_mariadb_t *m = harness_shared_mariadb();
    assert_non_null(m);
    harness_tm_store_database(F.t->h, "orders", F.database, sizeof F.database);
    snprintf(bin, sizeof bin, "%s/bin/trellis-msgsvc", harness_build_dir());
    snprintf(to, sizeof to, "%u", timeout_ms);
    const char *const args[] = {"--tm",
                                harness_server_addr(F.t->tm),
                                "--mysql-socket",
                                harness_mariadb_socket(m),
                                "--mysql-database",
                                F.database,
                                "--timeout-ms",
                                to,
                                NULL};
    F.svc = harness_server_start(F.t->h, "msgsvc", bin, args);
    assert_non_null(F.svc);
    F.db = mysql_init(NULL);
    assert_non_null(F.db);
    if (!mysql_real_connect(F.db, NULL, "root", NULL, F.database, 0,
                            harness_mariadb_socket(m), 0))
        fail_msg("connect to %s: %s", F.database, mysql_error(F.db));
}

/* A second trellis-testpart, "sub". */
static void fx_start_sub(void)
{
    F.sub = harness_testpart_start(F.t->h, "sub", NULL);
    assert_non_null(F.sub);
    snprintf(F.sub_action, sizeof F.sub_action, "%s/trellis.test.Part/Action",
             harness_server_addr(F.sub));
}

static void fx_env_clear(void)
{
    itest_fault_env_clear();
    unsetenv("TRELLIS_FAULT_WALL_OFFSET_MS");
}

static void fx_close_db(void)
{
    if (F.db)
        mysql_close(F.db);
    F.db = NULL;
}

static void fx_pass(void **state)
{
    fx_env_clear();
    fx_close_db();
    itest_pass(state);
}

static int fx_teardown(void **state)
{
    fx_env_clear();
    fx_close_db();
    return itest_teardown(state);
}

/* ---- commands -------------------------------------------------------- */

#define svc_cmd(reply, len, ...)                                               \
    itest_control(harness_server_addr(F.svc), reply, len, __VA_ARGS__)
#define part_cmd(...)                                                          \
    itest_control(harness_server_addr(F.t->part), NULL, 0, __VA_ARGS__)

/* "ADDR/trellis.test.Part/Action@SCRIPT": a step at the test participant. */
static const char *step(char *buf, size_t len, const char *script)
{
    snprintf(buf, len, "%s@%s", F.t->action, script);
    return buf;
}

/* Start gid held before point k (0: never); wait until it is held. */
static void send_held(const char *gid, int k, const char *verdict,
                      const char *steps)
{
    char reply[64], want[16];
    svc_cmd(NULL, 0, "send %s %d %s %s", gid, k, verdict, steps);
    if (k == 0)
        return;
    svc_cmd(reply, sizeof reply, "wait-held %s %d", gid, WAIT_MS);
    snprintf(want, sizeof want, "ok at=%d", k);
    assert_string_equal(reply, want);
}

/* msgsvc's result line for gid's run ("prepare=0 local=... submit=0"). */
static void wait_done(const char *gid, char *result, size_t len)
{
    svc_cmd(result, len, "wait-done %s %d", gid, WAIT_MS);
}

/* Send gid (no hold) and wait until msgsvc's run of it ended: the message
 * is stored and decided. */
static void send_done(const char *gid, const char *verdict, const char *steps)
{
    char result[160];
    send_held(gid, 0, verdict, steps);
    wait_done(gid, result, sizeof result);
}

static void svc_crash_restart(void)
{
    assert_int_equal(harness_server_kill(F.svc), 0);
    assert_int_equal(harness_server_restart(F.svc), 0);
}

/* ---- what happened --------------------------------------------------- */

static long long orders_of(const char *gid)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM orders WHERE gid = '%s'",
             gid);
    if (mysql_query(F.db, sql) != 0)
        fail_msg("%s: %s", sql, mysql_error(F.db));
    MYSQL_RES *r = mysql_store_result(F.db);
    assert_non_null(r);
    MYSQL_ROW row = mysql_fetch_row(r);
    long long n = row && row[0] ? atoll(row[0]) : 0;
    mysql_free_result(r);
    return n;
}

/* Query's rc for gid (NOT_FOUND when nothing is stored). */
static trellis_rc_t query_rc(const char *gid)
{
    char err[256];
    trellis_trans_info_t *info = NULL;
    trellis_rc_t rc = trellis_query(F.t->client, gid, &info, err, sizeof err);
    trellis_trans_info_free(info);
    return rc;
}

/* Each delivery branch of gid at the participant at addr took effect once:
 * one "applied", the other successful calls "dup", and no undo op. Returns
 * how many branches it saw. */
static int deliveries_once(const char *addr, const char *gid)
{
    harness_part_state_t ps;
    assert_int_equal(harness_part_state(addr, gid, &ps), 0);
    int branches = 0;
    for (size_t i = 0; i < ps.n_calls; i++) {
        const harness_part_call_t *c = &ps.calls[i];
        if (strcmp(c->op, "action") != 0 || strcmp(c->trans_type, "msg") != 0)
            fail_msg("%s: a %s call (%s) on a message", gid, c->op,
                     c->trans_type);
        if (harness_part_find(&ps, c->branch, "action", 0) != c)
            continue; /* counted at its first call */
        branches++;
        int applied = harness_part_count(&ps, c->branch, "action", "applied");
        int dup = harness_part_count(&ps, c->branch, "action", "dup");
        int ok = 0;
        for (size_t j = 0; j < ps.n_calls; j++)
            ok += !strcmp(ps.calls[j].branch, c->branch) &&
                  !strcmp(ps.calls[j].answer, "ok");
        if (applied != 1 || ok != applied + dup) {
            harness_part_state_dump(&ps);
            fail_msg("%s: delivery %s applied %d times (%d ok, %d dup)", gid,
                     c->branch, applied, ok, dup);
        }
    }
    assert_int_equal(ps.n_net, branches);
    harness_part_state_free(&ps);
    return branches;
}

static size_t calls_of(const char *addr, const char *gid)
{
    harness_part_state_t ps;
    assert_int_equal(harness_part_state(addr, gid, &ps), 0);
    size_t n = ps.n_calls;
    harness_part_state_free(&ps);
    return n;
}

/* gid SUCCEEDED with its orders row and n deliveries (branches after
 * the head). */
static void assert_succeeded(const char *gid, int n)
{
    trellis_trans_info_t *info = itest_wait_final(F.t, gid);
    if (info->status != TRELLIS_TRANS_SUCCEEDED)
        fail_msg("%s: %s (%s)", gid, trellis_trans_status_name(info->status),
                 info->reason);
    assert_int_equal(info->n_branches, 1 + n);
    trellis_trans_info_free(info);
    assert_int_equal(orders_of(gid), 1);
}

/* gid SUCCEEDED with its orders row, each of its n deliveries at testpart
 * once. */
static void assert_delivered(const char *gid, int n)
{
    assert_succeeded(gid, n);
    assert_int_equal(deliveries_once(harness_server_addr(F.t->part), gid), n);
}

/* gid FAILED (dropped) without an orders row; nothing was delivered. */
static void assert_dropped(const char *gid)
{
    trellis_trans_info_t *info = itest_wait_final(F.t, gid);
    if (info->status != TRELLIS_TRANS_FAILED)
        fail_msg("%s: %s, want failed", gid,
                 trellis_trans_status_name(info->status));
    for (size_t b = 1; b < info->n_branches; b++)
        assert_int_equal(info->branches[b].ops[0].status, TRELLIS_OP_SKIPPED);
    trellis_trans_info_free(info);
    assert_int_equal(orders_of(gid), 0);
    assert_int_equal(calls_of(harness_server_addr(F.t->part), gid), 0);
}

/* Nothing of gid anywhere: not stored, no orders row, no delivery. */
static void assert_nothing(const char *gid)
{
    assert_int_equal(query_rc(gid), TRELLIS_NOT_FOUND);
    assert_int_equal(orders_of(gid), 0);
    assert_int_equal(calls_of(harness_server_addr(F.t->part), gid), 0);
}

/* ---- a. success ------------------------------------------------------ */

static void test_delivered_in_order(void **state)
{
    char s1[160], s2[160], s3[160], steps[512], result[128];
    fx_start(state, "msg_order", 0, SLOW_TIMEOUT_MS);
    snprintf(steps, sizeof steps, "%s %s %s", step(s1, sizeof s1, "ok"),
             step(s2, sizeof s2, "slow:50"), step(s3, sizeof s3, "ok"));
    send_held("a-order", 0, "COMMIT", steps);
    wait_done("a-order", result, sizeof result);
    assert_string_equal(result, "ok prepare=0 local=committed submit=0");
    assert_delivered("a-order", 3);
    /* In order: each delivery starts after the one before was answered. */
    harness_part_state_t ps;
    itest_part_state(F.t, "a-order", &ps);
    const harness_part_call_t *c1 = harness_part_find(&ps, "01", "action", 0);
    const harness_part_call_t *c2 = harness_part_find(&ps, "02", "action", 0);
    const harness_part_call_t *c3 = harness_part_find(&ps, "03", "action", 0);
    assert_true(c1 && c2 && c3);
    assert_true(c1->end_ms <= c2->start_ms && c2->end_ms <= c3->start_ms);
    assert_int_equal(ps.n_calls, 3);
    harness_part_state_free(&ps);
    /* The initiator submitted it: the back-check was never called. */
    trellis_trans_info_t *info = itest_query(F.t, "a-order");
    assert_int_equal(info->branches[0].mode, TRELLIS_MODE_MSG_CHECK);
    assert_int_equal(info->branches[0].ops[0].attempts, 0);
    assert_int_equal(info->branches[0].ops[0].status, TRELLIS_OP_SUCCEEDED);
    trellis_trans_info_free(info);
    fx_pass(state);
}

static void test_concurrent_steps(void **state)
{
    char s[3][160], steps[600];
    fx_start(state, "msg_concurrent", 0, SLOW_TIMEOUT_MS);
    snprintf(steps, sizeof steps, "concurrent %s %s %s",
             step(s[0], sizeof s[0], "hold"), step(s[1], sizeof s[1], "hold"),
             step(s[2], sizeof s[2], "hold"));
    send_held("a-conc", 0, "COMMIT", steps);
    /* All three are on the wire at once: none waits for another. */
    part_cmd("wait-held a-conc 3 %d", WAIT_MS);
    part_cmd("release a-conc");
    assert_delivered("a-conc", 3);
    fx_pass(state);
}

/* Subscribe target to topic through the SDK; asserts it is new. */
static void subscribe(const char *topic, const char *target)
{
    char err[256];
    int created = -1;
    trellis_rc_t rc = trellis_subscribe(F.t->client, topic, target, "test",
                                        &created, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("subscribe %s %s: rc %d: %s", topic, target, rc, err);
    assert_int_equal(created, 1);
}

/* Query until gid's delivery to F.sub was attempted n times. */
static int sub_attempted(void *arg)
{
    const char *gid = arg;
    trellis_trans_info_t *info = itest_query(F.t, gid);
    int hit = 0;
    for (size_t b = 1; b < info->n_branches; b++) {
        const trellis_op_info_t *op = &info->branches[b].ops[0];
        hit |= op->target && !strcmp(op->target, F.sub_action) &&
               op->attempts >= 2 && op->status == TRELLIS_OP_PENDING &&
               op->last_error && op->last_error[0];
    }
    trellis_trans_info_free(info);
    return hit;
}

static void test_topic_subscribers(void **state)
{
    fx_start(state, "msg_topic", 0, SLOW_TIMEOUT_MS);
    fx_start_sub();
    subscribe("orders.paid", F.t->action);
    subscribe("orders.paid", F.sub_action);

    /* Both subscribers get one delivery each. */
    const char *part = harness_server_addr(F.t->part);
    send_done("a-topic", "COMMIT", "topic:orders.paid@ok");
    assert_succeeded("a-topic", 2);
    assert_int_equal(deliveries_once(part, "a-topic"), 1);
    assert_int_equal(deliveries_once(harness_server_addr(F.sub), "a-topic"), 1);

    /* Subscribers answering UNAVAILABLE a while get it once they can. */
    send_done("a-unavail", "COMMIT", "topic:orders.paid@unavail:3");
    assert_succeeded("a-unavail", 2);
    assert_int_equal(deliveries_once(part, "a-unavail"), 1);
    assert_int_equal(deliveries_once(harness_server_addr(F.sub), "a-unavail"),
                     1);
    assert_int_equal(calls_of(harness_server_addr(F.sub), "a-unavail"), 4);

    /* A subscriber whose process is down: retried until it is back. */
    assert_int_equal(harness_proc_stop(harness_server_proc(F.sub), 5000), 0);
    send_done("a-down", "COMMIT", "topic:orders.paid@ok");
    assert_true(harness_poll(sub_attempted, "a-down", WAIT_MS, 20));
    trellis_trans_info_t *info = itest_query(F.t, "a-down");
    assert_int_equal(info->status, TRELLIS_TRANS_SUBMITTED);
    trellis_trans_info_free(info);
    assert_int_equal(deliveries_once(part, "a-down"), 1);
    assert_int_equal(harness_server_restart(F.sub), 0);
    assert_succeeded("a-down", 2);
    assert_int_equal(deliveries_once(part, "a-down"), 1);
    assert_int_equal(deliveries_once(harness_server_addr(F.sub), "a-down"), 1);
    fx_pass(state);
}

static void test_aborted_step_retried(void **state)
{
    char s1[160], out[8192];
    fx_start(state, "msg_aborted", 0, SLOW_TIMEOUT_MS);
    send_done("a-abrt", "COMMIT", step(s1, sizeof s1, "fail:2"));
    assert_delivered("a-abrt", 1);
    /* Retried, never rolled back: two ABORTED answers, then the effect. */
    harness_part_state_t ps;
    itest_part_state(F.t, "a-abrt", &ps);
    assert_int_equal(ps.n_calls, 3);
    assert_string_equal(ps.calls[0].answer, "fail");
    assert_string_equal(ps.calls[1].answer, "fail");
    assert_string_equal(ps.calls[2].effect, "applied");
    assert_int_equal(harness_part_count(&ps, NULL, "compensate", NULL), 0);
    harness_part_state_free(&ps);
    /* Query and trellisctl show the error on the op. */
    trellis_trans_info_t *info = itest_query(F.t, "a-abrt");
    const trellis_op_info_t *op = &info->branches[1].ops[0];
    assert_int_equal(op->attempts, 3);
    assert_non_null(strstr(op->last_error, "participant answered ABORTED"));
    trellis_trans_info_free(info);
    const char *const args[] = {"status", "a-abrt", NULL};
    assert_int_equal(itest_ctl(F.t, "ctl-status", args, out, sizeof out), 0);
    if (!strstr(out, "last error: participant answered ABORTED") ||
        !strstr(out, "attempts 3"))
        fail_msg("trellisctl status:\n%s", out);
    /* It was alerted. */
    char log[PATH_MAX];
    assert_non_null(harness_path(F.t->h, "trellisd.log", log, sizeof log));
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    int alerted = 0;
    char line[2048];
    while (fgets(line, sizeof line, f))
        alerted |= strstr(line, "event=phase2_not_succeeding") &&
                   strstr(line, "gid=a-abrt");
    fclose(f);
    assert_true(alerted);
    fx_pass(state);
}

/* ---- b. the local transaction rolls back ----------------------------- */

static void test_local_rollback(void **state)
{
    char s1[160], result[160];
    fx_start(state, "msg_rollback", 0, SLOW_TIMEOUT_MS);
    send_held("b-rb", 0, "ROLLBACK", step(s1, sizeof s1, "ok"));
    wait_done("b-rb", result, sizeof result);
    assert_string_equal(result, "ok prepare=0 local=business-failure abort=0");
    assert_dropped("b-rb");
    trellis_trans_info_t *info = itest_query(F.t, "b-rb");
    /* Dropped by the initiator's Abort: the back-check was never asked. */
    assert_int_equal(info->branches[0].ops[0].status, TRELLIS_OP_SKIPPED);
    assert_int_equal(info->branches[0].ops[0].attempts, 0);
    trellis_trans_info_free(info);
    fx_pass(state);
}

/* ---- c. the initiator killed at each point --------------------------- */

/* The business SQL of a late local transaction: the order's row. */
static trellis_barrier_business_rc_t late_order(MYSQL *c, void *user, char *msg,
                                                size_t msglen)
{
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO orders (gid) VALUES ('%s')",
             (const char *)user);
    if (mysql_query(c, sql) == 0)
        return TRELLIS_BARRIER_BUSINESS_OK;
    snprintf(msg, msglen, "orders: %s", mysql_error(c));
    return TRELLIS_BARRIER_BUSINESS_ERROR;
}

/* A late local transaction of gid (the initiator's, after the back-check
 * decided) meets the back-check's row: too late, nothing committed. */
static void assert_late_commit_impossible(const char *gid)
{
    char msg[256];
    trellis_barrier_msg_outcome_t o = trellis_barrier_msg_run(
        F.db, NULL, gid, late_order, (void *)gid, msg, sizeof msg);
    if (o != TRELLIS_BARRIER_MSG_TOO_LATE)
        fail_msg("%s: a late local transaction: %s (%s)", gid,
                 trellis_barrier_msg_outcome_name(o), msg);
    assert_int_equal(orders_of(gid), 0);
}

static void initiator_killed_at(const char *gid, int k, const char *verdict,
                                int delivered)
{
    char s1[160], s2[160], steps[400];
    snprintf(steps, sizeof steps, "%s %s", step(s1, sizeof s1, "ok"),
             step(s2, sizeof s2, "ok"));
    send_held(gid, k, verdict, steps);
    svc_crash_restart();
    if (k == 1)
        assert_nothing(gid);
    else if (delivered)
        assert_delivered(gid, 2);
    else
        assert_dropped(gid);
    if (k == 3)
        assert_late_commit_impossible(gid);
    fprintf(stderr, "%s: %s\n", gid,
            k == 1      ? "nothing"
            : delivered ? "delivered once"
                        : "dropped");
}

static void test_initiator_killed(void **state)
{
    char gid[32];
    fx_start(state, "msg_initiator", 0, FAST_TIMEOUT_MS);
    for (int k = 1; k <= 5; k++) {
        snprintf(gid, sizeof gid, "c-commit-%d", k);
        initiator_killed_at(gid, k, "COMMIT", k >= 4);
    }
    /* A rolling-back initiator: held before, inside and after its local
     * transaction (point 4 is only on the commit's path). */
    const int rollback_points[] = {2, 3, 5};
    for (size_t i = 0; i < 3; i++) {
        snprintf(gid, sizeof gid, "c-rollback-%d", rollback_points[i]);
        initiator_killed_at(gid, rollback_points[i], "ROLLBACK", 0);
    }
    fx_pass(state);
}

/* ---- d. trellisd killed at every commit group ------------------------ */

/* Restart the killed trellisd-faults with its wall clock moved on past
 * every message's timeout (see the top comment). */
static void tm_restart_later(void)
{
    char offset[32];
    snprintf(offset, sizeof offset, "%d", ++F.clock_moves * CLOCK_STEP_MS);
    setenv("TRELLIS_FAULT_WALL_OFFSET_MS", offset, 1);
    assert_int_equal(harness_server_restart(F.t->tm), 0);
}

/* Delivered iff committed, after msgsvc's run ended: its prepare was
 * answered (then the back-check or its submit decides: the orders row
 * committed, so delivered), or it was not (nothing ran: nothing stored,
 * or stored and dropped by the back-check). */
static void assert_one_outcome(const char *gid, int n)
{
    char result[160];
    wait_done(gid, result, sizeof result);
    if (!strncmp(result, "ok prepare=0 ", 13)) {
        assert_delivered(gid, n);
    } else if (query_rc(gid) == TRELLIS_NOT_FOUND) {
        assert_nothing(gid);
    } else {
        assert_dropped(gid);
    }
    fprintf(stderr, "%s: %s\n", gid, result + 3);
}

/* Hold trellisd's commit groups, send gid, and let them through one by
 * one until the n-th is held; its report into report[len]. */
static void hold_group(const char *gid, const char *steps, int n, char *report,
                       size_t len)
{
    itest_fault("hold", NULL, 0);
    svc_cmd(NULL, 0, "send %s 0 COMMIT timeout=%d %s", gid, SLOW_TIMEOUT_MS,
            steps);
    itest_fault_hold_nth(gid, n, report, len);
}

/* kill -9 trellisd while gid's group n is held (never durable), or when
 * unanswered, durable with its answer not sent; restart it. Returns 1 when
 * group n was the message's last (it writes "succeeded"). */
static int tm_killed_at_group(const char *gid, const char *steps, int n,
                              int unanswered)
{
    char report[1200];
    hold_group(gid, steps, n, report, sizeof report);
    fprintf(stderr, "%s: group %d held: %s\n", gid, n, report);
    if (unanswered)
        itest_fault_commit_unanswered(gid, report);
    int last = strstr(report, ":succeeded") != NULL;
    assert_int_equal(harness_server_kill(F.t->tm), 0);
    tm_restart_later();
    return last;
}

static void test_trellisd_killed_at_groups(void **state)
{
    char s1[160], s2[160], steps[400], gid[32];
    fx_start(state, "msg_tm_groups", 1, SLOW_TIMEOUT_MS);
    snprintf(steps, sizeof steps, "%s %s", step(s1, sizeof s1, "ok"),
             step(s2, sizeof s2, "ok"));
    int groups = 0;
    for (int n = 1, last = 0; !last; n++) {
        for (int unanswered = 0; unanswered <= 1; unanswered++) {
            snprintf(gid, sizeof gid, "d-%d-%s", n,
                     unanswered ? "lost" : "held");
            last = tm_killed_at_group(gid, steps, n, unanswered);
            assert_one_outcome(gid, 2);
        }
        groups = n;
        assert_true(n < 10);
    }
    /* insert, decision, and at least one write per delivery */
    assert_true(groups >= 3);
    fx_pass(state);
}

/* trellisd killed while a delivery is on the wire (held at testpart):
 * released once trellisd is dead, its effect happens and its answer is
 * lost; the restarted trellisd delivers it again, a duplicate. */
static void test_trellisd_killed_mid_delivery(void **state)
{
    char s1[160], s2[160], steps[400];
    fx_start(state, "msg_tm_mid", 0, SLOW_TIMEOUT_MS);
    snprintf(steps, sizeof steps, "%s %s", step(s1, sizeof s1, "ok"),
             step(s2, sizeof s2, "hold"));
    send_held("d-mid", 0, "COMMIT", steps);
    part_cmd("wait-held d-mid 1 %d", WAIT_MS);
    assert_int_equal(harness_server_kill(F.t->tm), 0);
    part_cmd("release d-mid");
    itest_wait_calls(F.t, "d-mid", 2); /* the held call answered, too late */
    assert_int_equal(harness_server_restart(F.t->tm), 0);
    assert_delivered("d-mid", 2);
    harness_part_state_t ps;
    itest_part_state(F.t, "d-mid", &ps);
    assert_int_equal(harness_part_count(&ps, "02", "action", "dup"), 1);
    harness_part_state_free(&ps);
    fx_pass(state);
}

/* ---- e. the back-check racing a slow local commit -------------------- */

static int check_waiting(void *arg)
{
    const char *gid = arg;
    char reply[64];
    svc_cmd(reply, sizeof reply, "checks %s", gid);
    int arrived = 0, answered = 0;
    sscanf(reply, "ok arrived=%d answered=%d", &arrived, &answered);
    return arrived >= 1 && answered == 0;
}

static int lock_wait_seen(void *arg)
{
    (void)arg;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM information_schema.INNODB_TRX "
             "WHERE trx_state = 'LOCK WAIT'");
    if (mysql_query(F.db, sql) != 0)
        return 0;
    MYSQL_RES *r = mysql_store_result(F.db);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    int n = row && row[0] ? atoi(row[0]) : 0;
    mysql_free_result(r);
    return n > 0;
}

/* gid held at point 3 with a short timeout: trellisd's back-check arrives
 * and waits on the local transaction's row lock. */
static void race_to_the_row(const char *gid, const char *verdict)
{
    char s1[160], steps[256];
    snprintf(steps, sizeof steps, "timeout=300 %s", step(s1, sizeof s1, "ok"));
    send_held(gid, 3, verdict, steps);
    assert_true(harness_poll(check_waiting, (void *)gid, WAIT_MS, 10));
    /* MariaDB refreshes INNODB_TRX only when it went unread for 100 ms:
     * polled faster, it would show the state of the first read forever. */
    assert_true(harness_poll(lock_wait_seen, NULL, WAIT_MS, 150));
    trellis_trans_info_t *info = itest_query(F.t, gid);
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_true(info->branches[0].ops[0].attempts >= 1);
    assert_int_equal(info->branches[0].ops[0].status, TRELLIS_OP_PENDING);
    trellis_trans_info_free(info);
    svc_cmd(NULL, 0, "release %s", gid);
}

static void test_check_races_local_commit(void **state)
{
    char result[160];
    fx_start(state, "msg_race", 0, SLOW_TIMEOUT_MS);
    race_to_the_row("e-commit", "COMMIT");
    wait_done("e-commit", result, sizeof result);
    assert_string_equal(result, "ok prepare=0 local=committed submit=0");
    assert_delivered("e-commit", 1);

    race_to_the_row("e-rollback", "ROLLBACK");
    wait_done("e-rollback", result, sizeof result);
    assert_string_equal(result, "ok prepare=0 local=business-failure abort=0");
    assert_dropped("e-rollback");
    assert_late_commit_impossible("e-rollback");
    fx_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_delivered_in_order, fx_teardown),
        cmocka_unit_test_teardown(test_concurrent_steps, fx_teardown),
        cmocka_unit_test_teardown(test_topic_subscribers, fx_teardown),
        cmocka_unit_test_teardown(test_aborted_step_retried, fx_teardown),
        cmocka_unit_test_teardown(test_local_rollback, fx_teardown),
        cmocka_unit_test_teardown(test_initiator_killed, fx_teardown),
        cmocka_unit_test_teardown(test_trellisd_killed_at_groups, fx_teardown),
        cmocka_unit_test_teardown(test_trellisd_killed_mid_delivery,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_check_races_local_commit, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
