/*
 * example-workflow-transfer: the driver of the workflow-transfer example,
 * seed 003's transfer (out of one bank, into another, rolled back on
 * failure) as a workflow: one C function in transfer-workflow-service
 * (transfer_flow.c) that takes four steps, each recorded in trellisd
 * before it goes on —
 *
 *   01 tcc    bank-a (bank-service)  TransTry "account=alice amount=-30"
 *   02 xa     ledger-service         Prepare "transfer=G from=alice to=bob
 *                                    amount=30"
 *   03 local  the workflow service's own "transfers" row, behind the
 *             barrier (its undo, through the service's Resume, marks it
 *             cancelled)
 *   04 tcc    bank-b (bank-service)  TransTry "account=bob amount=30"
 *
 * — then commits (trellisd confirms 01 and 04, commits 02) or, on a
 * business failure, rolls back (trellisd undoes every step before, in
 * reverse order). If the service dies, trellisd calls it back once the
 * workflow's timeout (1 s) passed, and the function runs again from the
 * top: recorded steps return their recorded results without being called.
 *
 *   example-workflow-transfer [--scenario NAME]
 *
 * It owns the scenarios, their checks and every process it starts: with
 * the test harness, a throwaway MariaDB, trellisd (SQLite store), bank-a
 * and bank-b (bank-service from the TCC example), ledger-service and the
 * workflow service (scratch dir ${build}/test-data/example-workflow-
 * transfer-<pid>, logs of every process; removed when all passed). The
 * driver starts each transfer through the workflow service's control
 * method Start, which can hold the function at a step boundary until the
 * driver kills the service.
 *
 * Scenarios (all by default, or one with --scenario):
 *   success                     30 from alice@bank-a to bob@bank-b: the
 *                               money moved, one ledger entry, one booked
 *                               row, the workflow SUCCEEDED;
 *   business-failure-last-step  to nobody@bank-b, an account that does not
 *                               exist: step 04 is refused, the function
 *                               rolls back; the freeze at bank-a is
 *                               cancelled, the ledger's XA branch rolled
 *                               back, the row cancelled; FAILED, no money
 *                               moved;
 *   killed-after-step-K         K = 1..4: the function holds after step K
 *                               (before step K+1, or before its decision),
 *                               the workflow service is killed (kill -9)
 *                               and started again on its port; trellisd
 *                               resumes the workflow there and it ends
 *                               SUCCEEDED, the money moved once, one ledger
 *                               entry, one row, and every step's forward
 *                               op called once over both processes;
 *   replay-mismatch             held after step 01, killed, and release 2
 *                               of the function (ledger entry before the
 *                               debit) started on the port: its re-run
 *                               asks for another step 01 than the one
 *                               recorded, so trellisd stops the workflow
 *                               (PREPARED, "workflow stopped: ... replay
 *                               mismatch ..."); the operator aborts it:
 *                               the debit's freeze is cancelled, nothing
 *                               moved; release 1 is started again.
 * Every scenario checks money is conserved and nothing is left frozen or
 * prepared (XA RECOVER), and ends with exactly one line
 *   example=workflow-transfer scenario=<name> result=ok|FAIL
 * Exit status 1 if any failed or a process it started did not exit
 * cleanly when stopped, 2 on a usage error.
 *
 * Its files, a concern each, are listed in workflow_transfer.h.
 */
#include <stdio.h>

#include "workflow_transfer.h"

static const example_scenario_t SCENARIOS[] = {
    {"success", "alice@bank-a sends 30 to bob@bank-b", wft_scenario_success},
    {"business-failure-last-step",
     "alice sends 30 to nobody@bank-b: the credit is refused, every step "
     "before it is undone",
     wft_scenario_failure_last},
    {"killed-after-step-1",
     "the workflow service dies after the debit; trellisd resumes it",
     wft_scenario_killed_1},
    {"killed-after-step-2",
     "the workflow service dies after the ledger entry; trellisd resumes it",
     wft_scenario_killed_2},
    {"killed-after-step-3",
     "the workflow service dies after its own row; trellisd resumes it",
     wft_scenario_killed_3},
    {"killed-after-step-4",
     "the workflow service dies after the credit, before deciding; "
     "trellisd resumes it",
     wft_scenario_killed_4},
    {"replay-mismatch",
     "release 2 of the function meets a workflow release 1 began: trellisd "
     "stops it, the operator aborts",
     wft_scenario_mismatch},
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])

int main(int argc, char **argv)
{
    wft_env_t env = {0};
    const char *only;
    if (example_scenario_arg("example-" EX, argc, argv, SCENARIOS, N_SCENARIOS,
                             &only) != 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ready = wft_setup(&env) == 0;
    int failed =
        example_run_scenarios(EX, SCENARIOS, N_SCENARIOS, only, &env, ready);
    trellis_client_free(env.client);
    if (env.procs.h) {
        failed |= wft_stop_started(&env) != 0;
        harness_free(env.procs.h, !failed);
    }
    return failed ? 1 : 0;
}
