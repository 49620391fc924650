/*
 * oo_scenarios.c: the scenarios of example-order-outbox and what they
 * check — each message's outcome in trellisd (status, reason, its
 * back-check and deliveries), and in MariaDB the order row, the stock
 * (moved exactly once for a delivered order, not at all otherwise) and
 * the shipments (one per delivered order). See order_outbox.h;
 * order_outbox.c tells the story of each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order_outbox.h"

/* What the branches are, by position. */
static const char *const BRANCH_NAMES[] = {
    "head: the back-check at order-service", "reserve at stock-service",
    "topic " TOPIC ": shipping-service"};
#define N_BRANCH_NAMES (sizeof BRANCH_NAMES / sizeof BRANCH_NAMES[0])
#define BRANCH_RESERVE 1
#define BRANCH_SHIP 2

/* ---- what trellisd says -------------------------------------------------- */

/* The first op of branch i of info, or NULL. */
static const trellis_op_info_t *op_of(const trellis_trans_info_t *info,
                                      size_t i)
{
    return info && i < info->n_branches && info->branches[i].n_ops > 0
               ? &info->branches[i].ops[0]
               : NULL;
}

/* The final state of gid, which must be want; the TM's view and the
 * services' lines printed. The info (caller frees) or NULL. */
static trellis_trans_info_t *expect_final(const oo_env_t *env, const char *gid,
                                          trellis_trans_status_t want,
                                          example_check_t *ck)
{
    example_view_t v = {env->client, BRANCH_NAMES, N_BRANCH_NAMES, env->log,
                        N_SVC};
    trellis_trans_info_t *info =
        example_expect_final(&v, gid, want, FINAL_TIMEOUT_MS, ck);
    example_expect(ck, !info || info->n_branches == N_BRANCH_NAMES,
                   "%s should have %zu branches (the head, stock, one "
                   "subscriber)",
                   gid, N_BRANCH_NAMES);
    return info;
}

/* Both deliveries of info SUCCEEDED (delivered) or were never made. */
static void expect_deliveries(const trellis_trans_info_t *info, int delivered,
                              example_check_t *ck)
{
    for (size_t i = BRANCH_RESERVE; info && i <= BRANCH_SHIP; i++) {
        const trellis_op_info_t *o = op_of(info, i);
        if (delivered)
            example_expect(ck, o && o->status == TRELLIS_OP_SUCCEEDED,
                           "delivery %zu should have SUCCEEDED", i);
        else
            example_expect(ck, o && o->status != TRELLIS_OP_SUCCEEDED,
                           "delivery %zu should not have been made", i);
    }
}

/* ---- what MariaDB says --------------------------------------------------- */

typedef struct {
    long long orders, quantity, reserved, shipments;
} facts_t;

/* Order gid's rows, the stock of ITEM, gid's shipments. 0 or -1. */
static int read_facts(const oo_env_t *env, const char *gid, facts_t *f,
                      example_check_t *ck)
{
    return example_sql_number(env->conn, &f->orders, ck,
                              "SELECT COUNT(*) FROM %s.orders WHERE order_id = "
                              "'%s'",
                              OO_SVC[SVC_ORDER].database, gid) ||
                   example_sql_number(
                       env->conn, &f->quantity, ck,
                       "SELECT quantity FROM %s.stock WHERE item = "
                       "'%s'",
                       OO_SVC[SVC_STOCK].database, ITEM) ||
                   example_sql_number(
                       env->conn, &f->reserved, ck,
                       "SELECT reserved FROM %s.stock WHERE item = "
                       "'%s'",
                       OO_SVC[SVC_STOCK].database, ITEM) ||
                   example_sql_number(env->conn, &f->shipments, ck,
                                      "SELECT COUNT(*) FROM %s.shipments WHERE "
                                      "order_id = '%s'",
                                      OO_SVC[SVC_SHIPPING].database, gid)
               ? -1
               : 0;
}

/* What order gid (qty) left, once final, against the stock `before` it:
 * with `placed`, its order row, qty reserved once and one shipment, each
 * delivery done once in the services' logs; without, none of that. */
static void check_left(const oo_env_t *env, const char *gid, long long qty,
                       const facts_t *before, int placed, example_check_t *ck)
{
    facts_t f;
    if (read_facts(env, gid, &f, ck) != 0)
        return;
    long long moved = placed ? qty : 0;
    printf("   MariaDB: order rows %lld; %s quantity %lld (was %lld), "
           "reserved %lld (was %lld); shipments %lld\n",
           f.orders, ITEM, f.quantity, before->quantity, f.reserved,
           before->reserved, f.shipments);
    example_expect(ck, f.orders == placed, "want %d order row(s) for %s",
                   placed, gid);
    example_expect(ck,
                   f.quantity == before->quantity - moved &&
                       f.reserved == before->reserved + moved,
                   "%lld %s should have been reserved", moved, ITEM);
    example_expect(ck, f.shipments == placed, "want %d shipment(s) for %s",
                   placed, gid);
    int reserves = example_count_said(&env->log[SVC_STOCK], 1, gid, "-> done");
    int ships = example_count_said(&env->log[SVC_SHIPPING], 1, gid, "-> done");
    example_expect(ck, reserves == placed && ships == placed,
                   "the deliveries should have taken effect %d time(s), "
                   "took Reserve %d, Ship %d",
                   placed, reserves, ships);
}

/* ---- driving the order service ------------------------------------------- */

/* Have the order service place order gid of qty ITEM, held at hold ("":
 * not held). 0 or -1. */
static int place(const oo_env_t *env, const char *gid, long long qty,
                 const char *hold, example_check_t *ck)
{
    char err[256], held[48] = "";
    if (*hold)
        snprintf(held, sizeof held, " hold=%s", hold);
    return example_expect(ck,
                          oo_order_call(env, "Place", NULL, err, sizeof err,
                                        "order=%s item=%s qty=%lld%s", gid,
                                        ITEM, qty, held) == 0,
                          "Place %s: %s", gid, err)
               ? 0
               : -1;
}

/* Poll the order service's Status of gid until it starts with want; the
 * last answer into text[len]. 0, or -1 with a failed check. */
static int wait_status(const oo_env_t *env, const char *gid, const char *want,
                       char *text, size_t len, example_check_t *ck)
{
    char err[256];
    int64_t deadline = harness_mono_ms() + FINAL_TIMEOUT_MS;
    for (;;) {
        char *t = NULL;
        int rc =
            oo_order_call(env, "Status", &t, err, sizeof err, "order=%s", gid);
        snprintf(text, len, "%s", rc ? err : t);
        free(t);
        int ok = rc == 0 && !strncmp(text, want, strlen(want));
        if (ok || rc != 0 || !strncmp(text, "state=done", 10) ||
            harness_mono_ms() > deadline)
            return example_expect(ck, ok, "%s should be %s...: %s", gid, want,
                                  text)
                       ? 0
                       : -1;
        harness_sleep_ms(10);
    }
}

/* Note the facts before, place gid and wait until it is `state` (held or
 * done); the order service's last Status into status[len]. 0 or -1. */
static int begin(const oo_env_t *env, const char *gid, long long qty,
                 const char *hold, const char *state, facts_t *before,
                 char *status, size_t len, example_check_t *ck)
{
    if (read_facts(env, gid, before, ck) != 0 ||
        place(env, gid, qty, hold, ck) != 0 ||
        wait_status(env, gid, state, status, len, ck) != 0)
        return -1;
    printf("   order-service: %s\n", status);
    return 0;
}

/* ---- success and a local rollback ---------------------------------------- */

void oo_scenario_success(void *arg, example_check_t *ck)
{
    oo_env_t *env = arg;
    const char *gid = "oo-success";
    char status[TEXT_MAX];
    facts_t before;
    if (begin(env, gid, 2, "", "state=done", &before, status, sizeof status,
              ck) != 0)
        return;
    example_expect(ck, strstr(status, "rc=0 local=committed") != NULL,
                   "the placement should have committed and submitted");
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_SUCCEEDED, ck);
    expect_deliveries(info, 1, ck);
    const trellis_op_info_t *qp = op_of(info, 0);
    example_expect(ck, qp && qp->attempts == 0,
                   "the Submit came in time: no back-check call");
    trellis_trans_info_free(info);
    check_left(env, gid, 2, &before, 1, ck);
}

void oo_scenario_rollback(void *arg, example_check_t *ck)
{
    oo_env_t *env = arg;
    const char *gid = "oo-rollback";
    char status[TEXT_MAX];
    facts_t before;
    if (begin(env, gid, 0, "", "state=done", &before, status, sizeof status,
              ck) != 0)
        return;
    example_expect(ck, strstr(status, "local=business failure") != NULL,
                   "the local transaction should have refused the order");
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_FAILED, ck);
    example_expect(ck,
                   info && strstr(info->reason, "quantity must be at least 1"),
                   "the reason should be the order service's refusal");
    expect_deliveries(info, 0, ck);
    trellis_trans_info_free(info);
    check_left(env, gid, 0, &before, 0, ck);
}

/* ---- kill -9 of the order service around its commit ---------------------- */

/* Place gid held at hold, kill -9 the order service there and start it
 * again on its port. The facts before into *before. 0 or -1. */
static int kill_held(oo_env_t *env, const char *gid, long long qty,
                     const char *hold, facts_t *before, example_check_t *ck)
{
    char status[TEXT_MAX];
    if (begin(env, gid, qty, hold, "state=held", before, status, sizeof status,
              ck) != 0)
        return -1;
    printf("   kill -9 the order service (held %s), start it again on %s; "
           "the back-check comes %d ms after the prepare\n",
           hold, env->svc[SVC_ORDER], MSG_TIMEOUT_MS);
    return example_expect(ck, oo_kill_and_restart(env, SVC_ORDER) == 0,
                          "kill -9 and restart of the order service")
               ? 0
               : -1;
}

/* The head's back-check was called and answered `answer` ("OK" or
 * "ABORTED") in the order service's log. */
static void expect_back_check(const oo_env_t *env, const char *gid,
                              const trellis_trans_info_t *info,
                              trellis_op_status_t want, const char *answer,
                              example_check_t *ck)
{
    const trellis_op_info_t *qp = op_of(info, 0);
    example_expect(ck, qp && qp->attempts >= 1 && qp->status == want,
                   "trellisd should have called the back-check");
    char needle[32];
    snprintf(needle, sizeof needle, "-> %s:", answer);
    example_expect(
        ck, example_count_said(&env->log[SVC_ORDER], 1, gid, needle) >= 1,
        "the order service's back-check should have answered %s", answer);
}

void oo_scenario_killed_after_commit(void *arg, example_check_t *ck)
{
    oo_env_t *env = arg;
    const char *gid = "oo-killed-after-commit";
    facts_t before;
    if (kill_held(env, gid, 3, "after-commit", &before, ck) != 0)
        return;
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_SUCCEEDED, ck);
    expect_back_check(env, gid, info, TRELLIS_OP_SUCCEEDED, "OK", ck);
    expect_deliveries(info, 1, ck);
    trellis_trans_info_free(info);
    check_left(env, gid, 3, &before, 1, ck);
}

/* Run gid's local transaction again, as a late commit would: refused. */
static void expect_late_commit_refused(const oo_env_t *env, const char *gid,
                                       long long qty, example_check_t *ck)
{
    char err[256], *text = NULL;
    int rc = oo_order_call(env, "CommitAgain", &text, err, sizeof err,
                           "order=%s item=%s qty=%lld", gid, ITEM, qty);
    printf("   a late commit of %s: %s\n", gid, rc ? err : text);
    example_expect(ck, rc == 0 && strstr(text, "local=too late") != NULL,
                   "a late commit should be refused too late");
    free(text);
}

void oo_scenario_killed_before_commit(void *arg, example_check_t *ck)
{
    oo_env_t *env = arg;
    const char *gid = "oo-killed-before-commit";
    facts_t before;
    if (kill_held(env, gid, 4, "before-commit", &before, ck) != 0)
        return;
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_FAILED, ck);
    example_expect(ck, info && strstr(info->reason, "back-check"),
                   "the reason should be the back-check's");
    expect_back_check(env, gid, info, TRELLIS_OP_FAILED, "ABORTED", ck);
    expect_deliveries(info, 0, ck);
    trellis_trans_info_free(info);
    expect_late_commit_refused(env, gid, 4, ck);
    check_left(env, gid, 4, &before, 0, ck);
}

/* ---- a subscriber down for a while --------------------------------------- */

/* Query gid until trellisd tried the shipment at least `attempts` times
 * while the message is still SUBMITTED; 0, or -1 with a failed check. */
static int wait_retried(const oo_env_t *env, const char *gid, uint32_t attempts,
                        example_check_t *ck)
{
    int64_t deadline = harness_mono_ms() + FINAL_TIMEOUT_MS;
    char err[256] = "";
    uint32_t seen = 0;
    while (harness_mono_ms() < deadline) {
        trellis_trans_info_t *info = NULL;
        if (trellis_query(env->client, gid, &info, err, sizeof err) ==
            TRELLIS_OK) {
            const trellis_op_info_t *o = op_of(info, BRANCH_SHIP);
            seen = o ? o->attempts : 0;
            if (seen >= attempts && info->status == TRELLIS_TRANS_SUBMITTED) {
                example_print_branches(info, BRANCH_NAMES, N_BRANCH_NAMES);
                printf("   last error: %s\n", o->last_error);
                trellis_trans_info_free(info);
                return 0;
            }
        }
        trellis_trans_info_free(info);
        harness_sleep_ms(20);
    }
    example_expect(ck, 0,
                   "trellisd should keep retrying the shipment of %s (%u "
                   "attempts seen) %s",
                   gid, seen, err);
    return -1;
}

void oo_scenario_subscriber_down(void *arg, example_check_t *ck)
{
    oo_env_t *env = arg;
    const char *gid = "oo-subscriber-down";
    char status[TEXT_MAX];
    facts_t before;
    if (!example_expect(ck, oo_stop_service(env, SVC_SHIPPING) == 0,
                        "stop shipping-service"))
        return;
    printf("   shipping-service is stopped\n");
    if (begin(env, gid, 1, "", "state=done", &before, status, sizeof status,
              ck) != 0 ||
        wait_retried(env, gid, 3, ck) != 0) {
        oo_start_again(env, SVC_SHIPPING);
        return;
    }
    printf("   start shipping-service again on %s\n", env->svc[SVC_SHIPPING]);
    if (!example_expect(ck, oo_start_again(env, SVC_SHIPPING) == 0,
                        "start shipping-service again"))
        return;
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_SUCCEEDED, ck);
    expect_deliveries(info, 1, ck);
    const trellis_op_info_t *ship = op_of(info, BRANCH_SHIP);
    example_expect(ck, ship && ship->attempts >= 4,
                   "the shipment should have been tried while shipping was "
                   "down and once more after");
    trellis_trans_info_free(info);
    check_left(env, gid, 1, &before, 1, ck);
}
