/*
 * example-order-outbox: the driver of the order-outbox example, seed 004's
 * transactional message (the outbox without a broker) with seed 001's
 * topics. The order service creates an order row and, in the same local
 * transaction, the message that
 *
 *   01  reserves the stock   stock-service /stock.Stock/Reserve
 *   02  tells shipping       topic "order.created", to which
 *                            shipping-service's /shipping.Shipping/Ship
 *                            is subscribed (the driver subscribes it,
 *                            through the SDK, at start)
 *
 * — trellis_msg_do_and_submit: PrepareMessage, the local transaction with
 * the message's barrier row, Submit. trellisd delivers each step until it
 * succeeds, and each participant's barrier makes a delivery take effect
 * once. If the order service dies before its Submit, trellisd asks its
 * back-check once the message's timeout (2 s) has passed: committed →
 * delivered, not committed → dropped, for good.
 *
 *   example-order-outbox [--scenario NAME]
 *
 * It owns the scenarios, their checks and every process it starts: with
 * the test harness, a throwaway MariaDB, trellisd (SQLite store, or MySQL
 * with TRELLIS_TEST_STORE=mysql), stock-service, shipping-service and
 * order-service (scratch dir ${build}/test-data/example-order-outbox-
 * <pid>, logs of every process; removed when all passed). The driver
 * places each order through the order service's control method Place,
 * which can hold the placement inside the local transaction or after its
 * commit until the driver kills the service.
 *
 * Scenarios (all by default, or one with --scenario):
 *   success               order 2 widgets: the order row, 2 reserved, one
 *                         shipment; the message SUCCEEDED, each delivery
 *                         once;
 *   local-rollback        order 0 widgets: the local transaction refuses
 *                         it and rolls back, the message is aborted
 *                         (FAILED, the refusal as reason); no order row,
 *                         nothing reserved or shipped, nothing delivered;
 *   killed-after-commit   the order service is killed (kill -9) after its
 *                         COMMIT, before its Submit, and started again:
 *                         the back-check finds the commit, the message is
 *                         delivered — order row, reservation, shipment
 *                         once each;
 *   killed-before-commit  killed inside its local transaction, order row
 *                         inserted but not committed: the back-check finds
 *                         no commit, the message is dropped (FAILED, the
 *                         back-check's reason); no order row, nothing
 *                         reserved or shipped; running the local
 *                         transaction again for that gid is refused "too
 *                         late";
 *   subscriber-down       shipping-service is stopped, an order placed:
 *                         the stock is reserved, and trellisd keeps
 *                         retrying the shipment (its attempts grow, the
 *                         message stays SUBMITTED); once shipping is back
 *                         the message SUCCEEDED with exactly one shipment.
 * Every scenario checks the stock moved only for delivered orders, and
 * ends with exactly one line
 *   example=order-outbox scenario=<name> result=ok|FAIL
 * Exit status 1 if any failed or a process it started did not exit
 * cleanly when stopped, 2 on a usage error.
 *
 * Its files, a concern each, are listed in order_outbox.h.
 */
#include <stdio.h>

#include "order_outbox.h"

static const example_scenario_t SCENARIOS[] = {
    {"success", "an order of 2 widgets: reserved and shipped, once each",
     oo_scenario_success},
    {"local-rollback",
     "an order of 0 widgets: the local transaction rolls back, nothing is "
     "delivered",
     oo_scenario_rollback},
    {"killed-after-commit",
     "the order service dies after its commit, before its submit: the "
     "back-check delivers the message",
     oo_scenario_killed_after_commit},
    {"killed-before-commit",
     "the order service dies inside its local transaction: the back-check "
     "drops the message, a late commit is refused",
     oo_scenario_killed_before_commit},
    {"subscriber-down",
     "shipping is down when the order is placed: trellisd retries until it "
     "is back",
     oo_scenario_subscriber_down},
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])

int main(int argc, char **argv)
{
    oo_env_t env = {0};
    const char *only;
    if (example_scenario_arg("example-" EX, argc, argv, SCENARIOS, N_SCENARIOS,
                             &only) != 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ready = oo_setup(&env) == 0;
    int failed =
        example_run_scenarios(EX, SCENARIOS, N_SCENARIOS, only, &env, ready);
    trellis_client_free(env.client);
    if (env.procs.h) {
        failed |= oo_stop_started(&env) != 0;
        harness_free(env.procs.h, !failed);
    }
    return failed ? 1 : 0;
}
