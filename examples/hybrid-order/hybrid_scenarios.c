/*
 * hybrid_scenarios.c: the scenarios of example-hybrid-order that run one
 * order each: order-ok, and the refusals at each kind of branch
 * (payment-refused, order-refused, shipping-refused-initiator-run,
 * shipping-refused-tm-run), each of which must leave every service's
 * state exactly as before. See hybrid_order.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hybrid_order.h"

/* ---- scenarios ----------------------------------------------------------- */

static void order_id(const char *base, char *id, size_t len)
{
    snprintf(id, len, "%s-%d", base, (int)getpid());
}

void hyb_scenario_order_ok(hyb_env_t *env, example_check_t *ck)
{
    hyb_order_t o = {.customer = "alice", .carrier = "post"};
    hyb_outcome_t out = {0};
    char line[160];
    order_id("o-100", o.order, sizeof o.order);
    if (hyb_seed_all(env, ck) != 0)
        return;
    printf("   order %s: alice pays %d to shop, carrier post (initiator-run)\n",
           o.order, PRICE);
    hyb_run_order(env, &o, 0, &out);
    printf("   submit: rc %d %s %s\n", out.rc,
           out.rc ? out.err : trellis_trans_status_name(out.st), out.reason);
    example_expect(ck, out.at == AT_NONE && out.st == TRELLIS_TRANS_SUCCEEDED,
                   "every branch should succeed and submit say SUCCEEDED");
    trellis_trans_info_free(
        hyb_expect_final(env, out.gid, TRELLIS_TRANS_SUCCEEDED, ck));
    char *after = hyb_snapshot(env, ck);
    if (!after)
        return;
    printf("   state after:\n%s", after);
    snprintf(line, sizeof line, "order=%s sku=book qty=1", o.order);
    example_expect(ck, hyb_has_line(after, line), "the order row should exist");
    snprintf(line, sizeof line, "account=alice balance=%d trading_balance=0",
             RICH - PRICE);
    example_expect(ck, hyb_has_line(after, line), "alice should have paid");
    snprintf(line, sizeof line, "account=shop balance=%d trading_balance=0",
             PRICE);
    example_expect(ck, hyb_has_line(after, line),
                   "the shop should have been paid");
    snprintf(line, sizeof line, " order=%s", o.order);
    example_expect(ck, hyb_has_line_ending(after, line),
                   "a post slot should be held for the order");
    free(after);
}

/* A refusal scenario: o is run; branch `at` must refuse (rc ABORTED with
 * `why` in its message; at == AT_SUBMIT: submit says FAILED with `why` as
 * the reason); then the TM says FAILED, every branch called before is
 * rolled back and every service's state is exactly as before. */
static void expect_refused(hyb_env_t *env, const hyb_order_t *o, int at,
                           const char *why, example_check_t *ck)
{
    hyb_outcome_t out = {0};
    if (hyb_seed_all(env, ck) != 0)
        return;
    char *before = hyb_snapshot(env, ck);
    if (!before)
        return;
    hyb_run_order(env, o, 0, &out);
    printf("   stopped at %s: rc %d: %s; %s %s%s\n",
           out.at == AT_SUBMIT ? "submit"
           : out.at >= 0       ? HYB_BR[out.at].fwd
                               : "nothing",
           out.rc, out.err, trellis_trans_status_name(out.st),
           *out.reason ? "reason: " : "", out.reason);
    if (at == AT_SUBMIT)
        example_expect(ck,
                       out.at == AT_NONE && out.st == TRELLIS_TRANS_FAILED &&
                           strstr(out.reason, why),
                       "submit's wait should say FAILED because \"%s\"", why);
    else
        example_expect(ck,
                       out.at == at && out.rc == TRELLIS_ABORTED &&
                           strstr(out.err, why),
                       "branch %02d should refuse with \"%s\"", at + 1, why);
    trellis_trans_info_t *info =
        hyb_expect_final(env, out.gid, TRELLIS_TRANS_FAILED, ck);
    hyb_expect_rolled_back(info, at == AT_SUBMIT ? N_BR : at + 1, ck);
    trellis_trans_info_free(info);
    char *after = hyb_snapshot(env, ck);
    example_expect(ck, after && !strcmp(before, after),
                   "every service's state should be exactly as before");
    if (after && strcmp(before, after))
        printf("   before:\n%s   after:\n%s", before, after);
    free(before);
    free(after);
}

void hyb_scenario_payment_refused(hyb_env_t *env, example_check_t *ck)
{
    hyb_order_t o = {.customer = "bob", .carrier = "post"};
    order_id("o-200", o.order, sizeof o.order);
    printf("   order %s: bob has %d, the order costs %d\n", o.order, POOR,
           PRICE);
    expect_refused(env, &o, BR_DEBIT, "insufficient funds", ck);
}

void hyb_scenario_order_refused(hyb_env_t *env, example_check_t *ck)
{
    hyb_order_t o = {.customer = "alice", .carrier = "post"};
    snprintf(o.order, sizeof o.order, "%s", EXISTING_ORDER);
    printf("   order %s already exists\n", o.order);
    expect_refused(env, &o, BR_ORDER, "exists", ck);
}

void hyb_scenario_ship_initiator(hyb_env_t *env, example_check_t *ck)
{
    hyb_order_t o = {.customer = "alice", .carrier = "none"};
    order_id("o-300", o.order, sizeof o.order);
    printf("   order %s: carrier=none, Reserve called by the initiator\n",
           o.order);
    expect_refused(env, &o, BR_SHIP, "no carrier", ck);
}

void hyb_scenario_ship_tm(hyb_env_t *env, example_check_t *ck)
{
    hyb_order_t o = {.customer = "alice", .carrier = "full", .tm_run = 1};
    order_id("o-400", o.order, sizeof o.order);
    printf("   order %s: carrier full (no capacity), Reserve run by trellisd "
           "after submit\n",
           o.order);
    expect_refused(env, &o, AT_SUBMIT, "has no capacity", ck);
}
