/*
 * transfer_scenarios.c: the scenarios of example-bank-transfer-tcc that
 * run one transfer or two, each checking the TM's outcome and every
 * balance after: transfer-ok, insufficient-funds, receiver-down,
 * pending-credit-not-spendable, item13-amount-and-seed (transfer.c tells
 * their stories). See transfer.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

/* ---- scenarios: one transfer each ---------------------------------------- */

void xfer_scenario_transfer_ok(xfer_env_t *env, example_check_t *ck)
{
    xfer_transfer_t tr = {BANK_A, "alice", BANK_B, "bob", 30};
    char gid[GID_MAX], err[256], reason[256] = "";
    trellis_trans_status_t st = 0;
    if (xfer_seed(env, BANK_A, "alice", 100) ||
        xfer_seed(env, BANK_B, "bob", 20)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   alice@bank-a has 100, bob@bank-b has 20; alice sends 30\n");
    trellis_tcc_t *t = xfer_begin(env, 1, gid, sizeof gid);
    if (!example_expect(ck, t != NULL, "begin failed"))
        return;
    trellis_rc_t rc = xfer_both_tries(env, t, &tr, err, sizeof err);
    if (example_expect(ck, rc == TRELLIS_OK, "a try failed: rc %d: %s", rc,
                       err)) {
        rc = trellis_tcc_submit(t, &st, reason, sizeof reason, err, sizeof err);
        printf("   both tries succeeded; submitted: %s\n",
               rc ? err : trellis_trans_status_name(st));
    } else {
        trellis_tcc_abort(t, "a try failed", NULL, err, sizeof err);
    }
    trellis_tcc_free(t);
    trellis_trans_info_t *info = xfer_report(env, gid, &tr);
    example_expect(ck, info && info->status == TRELLIS_TRANS_SUCCEEDED,
                   "TM status should be succeeded");
    trellis_trans_info_free(info);
    xfer_check_account(env, BANK_A, "alice", 70, 0, ck);
    xfer_check_account(env, BANK_B, "bob", 50, 0, ck);
}

void xfer_scenario_insufficient(xfer_env_t *env, example_check_t *ck)
{
    xfer_transfer_t tr = {BANK_A, "carol", BANK_B, "dave", 50};
    char gid[GID_MAX], err[256], why[300];
    trellis_trans_status_t st = 0;
    if (xfer_seed(env, BANK_A, "carol", 10) ||
        xfer_seed(env, BANK_B, "dave", 0)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   carol@bank-a has 10, dave@bank-b has 0; carol sends 50\n");
    trellis_tcc_t *t = xfer_begin(env, 1, gid, sizeof gid);
    if (!example_expect(ck, t != NULL, "begin failed"))
        return;
    trellis_rc_t rc = xfer_both_tries(env, t, &tr, err, sizeof err);
    printf("   the try answered rc %d: %s\n", rc, rc ? err : "ok");
    example_expect(ck,
                   rc == TRELLIS_ABORTED && strstr(err, "insufficient funds"),
                   "bank-a's try should refuse with \"insufficient funds\"");
    snprintf(why, sizeof why, "transfer refused: %s", err);
    rc = trellis_tcc_abort(t, why, &st, err, sizeof err);
    printf("   aborted: %s\n", rc ? err : trellis_trans_status_name(st));
    trellis_tcc_free(t);
    trellis_trans_info_t *info = xfer_report(env, gid, &tr);
    example_expect(ck, info && info->status == TRELLIS_TRANS_FAILED,
                   "TM status should be failed");
    example_expect(ck,
                   info && info->reason && strstr(info->reason, "insufficient"),
                   "TM reason should name the refusal");
    example_expect(ck, info && info->n_branches == 1,
                   "only bank-a's branch should be registered");
    trellis_trans_info_free(info);
    xfer_check_account(env, BANK_A, "carol", 10, 0, ck);
    xfer_check_account(env, BANK_B, "dave", 0, 0, ck);
}

/* The op status and attempts of branch i's op in the TM's view. */
static const trellis_op_info_t *branch_op(const trellis_trans_info_t *info,
                                          size_t i, trellis_op_t op)
{
    return info && i < info->n_branches
               ? example_find_op(&info->branches[i], op)
               : NULL;
}

/* Kill bank-b, submit, watch the TM retry, restart bank-b. */
static void receiver_down_phase2(xfer_env_t *env, trellis_tcc_t *t,
                                 const char *gid, example_check_t *ck)
{
    char err[256], reason[256];
    trellis_trans_status_t st = 0;
    harness_server_kill(env->bank_srv[BANK_B]);
    printf("   bank-b killed (SIGKILL) after both tries\n");
    trellis_rc_t rc =
        trellis_tcc_submit(t, &st, reason, sizeof reason, err, sizeof err);
    printf("   submitted (no wait): %s\n",
           rc ? err : trellis_trans_status_name(st));
    example_expect(ck, rc == TRELLIS_OK, "submit should be accepted");
    harness_sleep_ms(1500);
    trellis_trans_info_t *info = xfer_query_final(env, gid, 0);
    const trellis_op_info_t *cb = branch_op(info, 1, TRELLIS_OP_CONFIRM);
    printf("   1.5 s later the TM says %s; bank-b's confirm: %u attempt(s), "
           "last error: %s\n",
           info ? trellis_trans_status_name(info->status) : "?",
           cb ? cb->attempts : 0, cb && cb->last_error ? cb->last_error : "");
    example_expect(
        ck, info && info->status == TRELLIS_TRANS_SUBMITTED,
        "while bank-b is down the transaction should stay submitted");
    example_expect(ck, cb && cb->status == TRELLIS_OP_PENDING,
                   "bank-b's confirm should still be pending");
    trellis_trans_info_free(info);
    xfer_check_account(env, BANK_A, "erin", 70, 0, ck);
    example_expect(ck, harness_server_restart(env->bank_srv[BANK_B]) == 0,
                   "bank-b did not restart");
    printf("   bank-b restarted on the same port %s\n", env->bank[BANK_B]);
}

void xfer_scenario_receiver_down(xfer_env_t *env, example_check_t *ck)
{
    xfer_transfer_t tr = {BANK_A, "erin", BANK_B, "frank", 30};
    char gid[GID_MAX], err[256];
    if (xfer_seed(env, BANK_A, "erin", 100) ||
        xfer_seed(env, BANK_B, "frank", 0)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   erin@bank-a has 100, frank@bank-b has 0; erin sends 30\n");
    trellis_tcc_t *t = xfer_begin(env, 0, gid, sizeof gid);
    if (!example_expect(ck, t != NULL, "begin failed"))
        return;
    trellis_rc_t rc = xfer_both_tries(env, t, &tr, err, sizeof err);
    if (example_expect(ck, rc == TRELLIS_OK, "a try failed: rc %d: %s", rc,
                       err))
        receiver_down_phase2(env, t, gid, ck);
    else
        trellis_tcc_abort(t, "a try failed", NULL, err, sizeof err);
    trellis_tcc_free(t);
    int64_t t0 = harness_mono_ms();
    trellis_trans_info_t *info = xfer_report(env, gid, &tr);
    printf("   final %lld ms after the restart\n",
           (long long)(harness_mono_ms() - t0));
    const trellis_op_info_t *cb = branch_op(info, 1, TRELLIS_OP_CONFIRM);
    example_expect(ck, info && info->status == TRELLIS_TRANS_SUCCEEDED,
                   "TM status should be succeeded");
    example_expect(ck,
                   cb && cb->status == TRELLIS_OP_SUCCEEDED && cb->attempts > 1,
                   "bank-b's confirm should have succeeded after retries");
    trellis_trans_info_free(info);
    xfer_check_account(env, BANK_A, "erin", 70, 0, ck);
    xfer_check_account(env, BANK_B, "frank", 30, 0, ck);
}

/* ---- a pending credit is not money yet ----------------------------------- */

/* xena@bank-a has 0. g1 (yuri@bank-b sends her 50) is tried and left
 * pending; g2 (xena sends those 50 on to zoe@bank-b) is tried while g1 is
 * pending: xena's bank must refuse it, since g1 may still be cancelled.
 * Then g1 is cancelled and g2 finished as its tries allow (submit if they
 * passed: the reproduction of the hole, where xena ends at -50; abort if
 * refused). Nobody's money moves. */
void xfer_scenario_pending_credit(xfer_env_t *env, example_check_t *ck)
{
    xfer_transfer_t g1 = {BANK_B, "yuri", BANK_A, "xena", 50};
    xfer_transfer_t g2 = {BANK_A, "xena", BANK_B, "zoe", 50};
    char gid1[GID_MAX], gid2[GID_MAX], err[256], reason[256];
    trellis_trans_status_t st = 0;
    if (xfer_seed(env, BANK_A, "xena", 0) ||
        xfer_seed(env, BANK_B, "yuri", 50) ||
        xfer_seed(env, BANK_B, "zoe", 0)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   xena@bank-a has 0, yuri@bank-b 50, zoe@bank-b 0\n");
    trellis_tcc_t *t1 = xfer_begin(env, 1, gid1, sizeof gid1);
    if (!example_expect(ck, t1 != NULL, "begin g1 failed"))
        return;
    trellis_rc_t rc = xfer_both_tries(env, t1, &g1, err, sizeof err);
    printf("   g1 %s (yuri sends xena 50): tries %s; left pending\n", gid1,
           rc ? err : "ok");
    example_expect(ck, rc == TRELLIS_OK, "g1's tries should pass: rc %d: %s",
                   rc, err);
    xfer_account_t x;
    if (xfer_show_account(env, BANK_A, "xena", &x, ck) == 0)
        example_expect(ck, x.balance == 0, "g1's credit is not confirmed yet");
    trellis_tcc_t *t2 = xfer_begin(env, 1, gid2, sizeof gid2);
    trellis_rc_t rc2 = TRELLIS_UNAVAILABLE;
    if (example_expect(ck, t2 != NULL, "begin g2 failed")) {
        rc2 = xfer_both_tries(env, t2, &g2, err, sizeof err);
        printf("   g2 %s (xena sends zoe 50) while g1 is pending: tries %s\n",
               gid2, rc2 ? err : "ok (xena spent money she does not have)");
        example_expect(
            ck, rc2 == TRELLIS_ABORTED && strstr(err, "insufficient funds"),
            "xena's bank should refuse g2's debit with \"insufficient "
            "funds\": the 50 of g1 are not hers yet");
    }
    rc = trellis_tcc_abort(t1, "initiator changed its mind", &st, err,
                           sizeof err);
    printf("   g1 aborted: %s\n", rc ? err : trellis_trans_status_name(st));
    trellis_tcc_free(t1);
    if (t2 && rc2 == TRELLIS_OK) {
        rc =
            trellis_tcc_submit(t2, &st, reason, sizeof reason, err, sizeof err);
        printf("   g2 submitted: %s\n",
               rc ? err : trellis_trans_status_name(st));
    } else if (t2) {
        rc = trellis_tcc_abort(t2, "xena's bank refused", &st, err, sizeof err);
        printf("   g2 aborted: %s\n", rc ? err : trellis_trans_status_name(st));
    }
    trellis_tcc_free(t2);
    trellis_trans_info_t *i1 = xfer_report(env, gid1, &g1);
    trellis_trans_info_t *i2 = t2 ? xfer_report(env, gid2, &g2) : NULL;
    example_expect(ck, i1 && i1->status == TRELLIS_TRANS_FAILED,
                   "g1 should be failed");
    example_expect(ck, i2 && i2->status == TRELLIS_TRANS_FAILED,
                   "g2 should be failed");
    trellis_trans_info_free(i1);
    trellis_trans_info_free(i2);
    xfer_check_account(env, BANK_A, "xena", 0, 0, ck);
    xfer_check_account(env, BANK_B, "yuri", 50, 0, ck);
    xfer_check_account(env, BANK_B, "zoe", 0, 0, ck);
}

/* ---- item 13: bounded amounts, a guarded Seed ---------------------------- */

/* The try of one branch of tr in a transaction of its own, then abort
 * (checked: the cancel must succeed, whatever the try said); the try's rc
 * and err. */
static trellis_rc_t lone_try(const xfer_env_t *env, const xfer_transfer_t *tr,
                             int br, char *err, size_t errlen,
                             example_check_t *ck)
{
    char gid[GID_MAX], e2[256];
    trellis_trans_status_t st = 0;
    trellis_tcc_t *t = xfer_begin(env, 1, gid, sizeof gid);
    if (!t) {
        snprintf(err, errlen, "begin failed");
        return TRELLIS_UNAVAILABLE;
    }
    trellis_rc_t rc = xfer_call_try(env, t, tr, br, err, errlen);
    trellis_rc_t arc =
        trellis_tcc_abort(t, "item13: one try only", &st, e2, sizeof e2);
    example_expect(ck, arc == TRELLIS_OK && st == TRELLIS_TRANS_FAILED,
                   "the abort should end failed at once: rc %d: %s", arc,
                   arc ? e2 : trellis_trans_status_name(st));
    trellis_tcc_free(t);
    return rc;
}

/* A credit near the BIGINT limit must be refused at its try (its confirm
 * would overflow and be retried for ever); Seed must not set a balance
 * while money of the account is frozen, nor work for a caller without the
 * bank's seed token. */
void xfer_scenario_item13(xfer_env_t *env, example_check_t *ck)
{
    char gid[GID_MAX], err[256];
    if (xfer_seed(env, BANK_B, "ivan", 100) ||
        xfer_seed(env, BANK_A, "judy", 100)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   ivan@bank-b has 100, judy@bank-a has 100\n");

    xfer_transfer_t huge = {BANK_A, "nobody", BANK_B, "ivan",
                            9223372036854775000LL};
    trellis_rc_t rc = lone_try(env, &huge, BR_CREDIT, err, sizeof err, ck);
    printf("   a credit of %lld to ivan: try %s\n", huge.amount,
           rc ? err : "passed");
    example_expect(ck, rc == TRELLIS_ABORTED && strstr(err, "amount"),
                   "a credit of %lld should be refused at its try, naming "
                   "the amount (its confirm would overflow for ever)",
                   huge.amount);
    xfer_transfer_t small = {BANK_A, "nobody", BANK_B, "ivan", 5};
    rc = lone_try(env, &small, BR_CREDIT, err, sizeof err, ck);
    example_expect(ck, rc == TRELLIS_OK, "a credit of 5 should pass: %s", err);
    xfer_check_account(env, BANK_B, "ivan", 100, 0, ck);

    /* judy's debit of 30 is frozen; a Seed of judy must be refused. */
    xfer_transfer_t d = {BANK_A, "judy", BANK_B, "ivan", 30};
    trellis_tcc_t *t = xfer_begin(env, 1, gid, sizeof gid);
    if (!example_expect(ck, t != NULL, "begin failed"))
        return;
    rc = xfer_call_try(env, t, &d, BR_DEBIT, err, sizeof err);
    example_expect(ck, rc == TRELLIS_OK, "judy's try should pass: %s", err);
    int seeded = xfer_seed(env, BANK_A, "judy", 0) == 0;
    example_expect(ck, !seeded,
                   "Seed of judy should be refused while 30 of hers are "
                   "frozen");
    xfer_check_account(env, BANK_A, "judy", 100, -30, ck);
    rc = trellis_tcc_abort(t, "item13: release judy", NULL, err, sizeof err);
    trellis_tcc_free(t);
    trellis_trans_info_free(xfer_report(env, gid, &d));
    xfer_check_account(env, BANK_A, "judy", 100, 0, ck);

    /* Whoever reaches the port without the token cannot seed. */
    int open = xfer_bank_call(env->bank[BANK_B], "Seed",
                              "account=ivan balance=1000000", NULL, err,
                              sizeof err) == 0;
    printf("   Seed without the token: %s\n", open ? "accepted" : err);
    example_expect(ck, !open, "Seed without the seed token should be refused");
    open = xfer_bank_call(env->bank[BANK_B], "Seed",
                          "account=ivan balance=1000000 token=guess", NULL, err,
                          sizeof err) == 0;
    printf("   Seed with a wrong token: %s\n", open ? "accepted" : err);
    example_expect(ck, !open, "Seed with a wrong token should be refused");
    xfer_check_account(env, BANK_B, "ivan", 100, 0, ck);
}
