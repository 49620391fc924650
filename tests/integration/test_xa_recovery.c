/*
 * test_xa_recovery.c: the recovery sweep of the MySQL/MariaDB XA adapter
 * (trellis_myxa_recover) against a real trellisd and MariaDB (one server
 * per run of this file, one database per test), with an in-process
 * participant built on the SDK and the adapter: end to end through
 * trellisd (cluster-form and legacy xids), orphans of finished
 * transactions resolved, unknown and foreign xids left alone, trellisd
 * unreachable; and two TM clusters sharing one MariaDB, whose sweeps
 * leave each other's branches alone. The shared database and adapter
 * calls are itest_xa.h's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "harness.h"
#include "itest_mysql.h"
#include "itest_xa.h"
#include "trellis/mysql_xa.h"
#include "trellis/trellis.h"
#include "trellis/trellis_participant.h"
#include "trellis/trellis_xa.h"

/* ---- the server of this file --------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return imy_start("xa-recovery");
}

static int group_teardown(void **state)
{
    (void)state;
    return imy_finish();
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

/* ---- the recovery sweep against trellisd --------------------------------- */

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
    ixa_add_t a = {.gid = ctx->gid, .amount = 10, .log_only = 1};
    trellis_myxa_outcome_t o = trellis_myxa_prepare_branch(
        c, NULL, &b, ixa_add_fn, &a, msg, sizeof msg);
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
    MYSQL *c = ixa_setup_db("recovery");
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
    assert_int_equal(ixa_recovered(c, "e2e-old-ok-01"), 1);
    assert_int_equal(finish(&r, "e2e-ok", 1), TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(finish(&r, "e2e-no", 0), TRELLIS_TRANS_FAILED);
    assert_int_equal(finish(&r, "e2e-old-ok", 1), TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(finish(&r, "e2e-old-no", 0), TRELLIS_TRANS_FAILED);
    assert_int_equal(ixa_effects(c, "e2e-ok"), 1);
    assert_int_equal(ixa_effects(c, "e2e-no"), 0);
    assert_int_equal(ixa_effects(c, "e2e-old-ok"), 1);
    assert_int_equal(ixa_effects(c, "e2e-old-no"), 0);
    assert_int_equal(ixa_count(c), 0);

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
    ixa_add_t a = {.gid = "unknown", .amount = 10, .log_only = 1};
    trellis_barrier_branch_t ub = ixa_branch("unknown", "prepare");
    ub.cluster_id = cluster;
    assert_int_equal(trellis_myxa_prepare_branch(p, NULL, &ub, ixa_add_fn, &a,
                                                 msg, sizeof msg),
                     TRELLIS_MYXA_PREPARED);
    ixa_add_t ua = {.gid = "unknown-old", .amount = 10, .log_only = 1};
    assert_int_equal(IXA_PREPARE(p, &ua), TRELLIS_MYXA_PREPARED);
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
    assert_int_equal(ixa_count(c), 8);

    /* trellisd unreachable: an error, nothing resolved. */
    trellis_client_t *dead = NULL;
    assert_int_equal(
        trellis_client_new("127.0.0.1:1", 500, &dead, err, sizeof err), 0);
    unsigned com = 9, rb = 9;
    assert_int_equal(trellis_myxa_recover(c, dead, &com, &rb, err, sizeof err),
                     -1);
    printf("[ recover ] trellisd down: %s\n", err);
    assert_int_equal(com + rb, 0);
    assert_int_equal(ixa_count(c), 8);
    trellis_client_free(dead);

    assert_int_equal(
        trellis_myxa_recover(c, r.client, &com, &rb, err, sizeof err), 0);
    printf("[ recover ] committed %u, rolled back %u\n", com, rb);
    assert_int_equal(com, 1);
    assert_int_equal(rb, 3);
    assert_int_equal(ixa_recovered(c, "orph-ok-01"), 0);
    assert_int_equal(ixa_recovered(c, "orph-no-01"), 0);
    assert_int_equal(ixa_recovered(c, "orph-old-01"), 0);
    assert_int_equal(ixa_recovered(c, "unknown-01"), 0);
    assert_int_equal(ixa_recovered(c, "unknown-old-01"), 1); /* left alone */
    assert_int_equal(ixa_recovered(c, "pending-01"), 1);
    assert_int_equal(ixa_count(c),
                     4); /* pending, unknown-old, foreign, nodash */
    assert_int_equal(ixa_effects(c, "orph-ok"), 1);
    assert_int_equal(ixa_effects(c, "orph-no"), 0);
    assert_int_equal(ixa_effects(c, "orph-old"), 0);
    assert_int_equal(ixa_effects(c, "unknown"), 0);
    assert_int_equal(
        trellis_myxa_recover(c, r.client, &com, &rb, err, sizeof err), 0);
    assert_int_equal(com + rb, 0);

    /* Clean up: trellisd rolls the pending one back; the rest by hand. */
    atomic_store(&pt.lost, 0);
    assert_int_equal(finish(&r, "pending", 0), TRELLIS_TRANS_FAILED);
    imy_exec(c, "XA ROLLBACK 'foreign-01', 'bq'");
    imy_exec(c, "XA ROLLBACK 'nodash'");
    imy_exec(c, "XA ROLLBACK 'unknown-old-01'");
    assert_int_equal(ixa_count(c), 0);
    assert_int_equal(ixa_effects(c, "pending"), 0);
    assert_int_equal(imy_balance(c), 100);
    assert_int_equal(ixa_effects(c, "e2e-ok") + ixa_effects(c, "e2e-old-ok") +
                         ixa_effects(c, "orph-ok"),
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
    MYSQL *ca = ixa_setup_db("clustera");
    MYSQL *cb = ixa_setup_db("clusterb");
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
    assert_int_equal(ixa_recovered(cb, "orph-b-01"), 1);

    /* A: prepared, held undecided; its XID names A's cluster. */
    trellis_xa_t *xa = xa_held(&a, "held-a");
    assert_int_equal(ixa_recovered(ca, "held-a-01"), 1);
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
    if (ixa_recovered(ca, "held-a-01") != 1)
        fail_msg("TM B's sweep rolled back TM A's prepared branch held-a-01 "
                 "(B committed %u, rolled back %u; A's branch must survive)",
                 com, rb);
    assert_int_equal(ixa_recovered(cb, "orph-b-01"), 0);
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
    assert_int_equal(ixa_recovered(ca, "held-a-01"), 0);
    assert_int_equal(ixa_effects(ca, "held-a"), 1);
    assert_int_equal(ixa_effects(cb, "orph-b"), 0);
    assert_int_equal(ixa_count(ca), 0);

    trellis_participant_free(a.part);
    trellis_participant_free(b.part);
    trellis_client_free(a.client);
    trellis_client_free(b.client);
    mysql_close(ca);
    mysql_close(cb);
    imy_pass();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recovery, imy_test_setup,
                                        imy_test_teardown),
        cmocka_unit_test_setup_teardown(test_xa_sweep_leaves_other_cluster,
                                        imy_test_setup, imy_test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
