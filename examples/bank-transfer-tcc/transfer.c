/*
 * example-bank-transfer-tcc: the driver of the bank-transfer TCC example.
 * Two banks (bank-service, run as bank-a and bank-b, separate processes,
 * each with its own database on one MariaDB) hold accounts; a transfer of X
 * from a@bank-a to b@bank-b (or any way round, or within one bank) is one
 * TCC transaction, the debit first:
 *
 *   trellis_tcc_begin
 *   call_branch  01 bank-a TransTry "account=a amount=-X"  (confirm, cancel)
 *   call_branch  02 bank-b TransTry "account=b amount=X"   (confirm, cancel)
 *   submit (trellisd confirms both)  |  abort with a reason (it cancels)
 *
 * The debit's try freezes X; the credit's try freezes nothing and the money
 * only arrives with its confirm (bank_service.c says why).
 *
 *   example-bank-transfer-tcc [--scenario NAME] [--transfers N]
 *                             [--threads N] [--seed S]
 *
 * It owns the scenarios, their checks and every process it starts: with the
 * test harness, a throwaway MariaDB, trellisd and the two banks (scratch dir
 * ${build}/test-data/example-bank-transfer-tcc-<pid>, with every process's
 * log and the data dirs; removed when all passed, kept and printed
 * otherwise); all are stopped at the end.
 *
 * Scenarios (all by default, or one with --scenario):
 *   transfer-ok         30 from alice@bank-a to bob@bank-b: the money moves,
 *                       both trading_balances are back to 0;
 *   insufficient-funds  carol@bank-a has 10 and sends 50: her bank refuses
 *                       the try, the initiator aborts, nothing moves;
 *   receiver-down       both tries succeed, then bank-b is killed (SIGKILL)
 *                       before the submit; the submit is accepted, trellisd
 *                       keeps retrying bank-b's confirm; bank-b restarts on
 *                       the same port and the transaction ends SUCCEEDED
 *                       with the money arrived exactly once;
 *   pending-credit-not-spendable
 *                       xena@bank-a has 0; g1 (yuri@bank-b sends her 50)
 *                       is tried and left pending; g2 (xena sends 50 to
 *                       zoe@bank-b) must then be refused "insufficient
 *                       funds" by xena's bank, for g1 may still be
 *                       cancelled; g1 is cancelled; both end FAILED and no
 *                       money moved (xena 0, trading_balance 0). Were g2's
 *                       tries to pass, it is submitted after g1's cancel,
 *                       reproducing the hole (xena at -50);
 *   item13-amount-and-seed
 *                       a credit of ~9.2e18 to ivan@bank-b is refused at
 *                       its try naming the amount (its confirm would
 *                       overflow BIGINT for ever) and its cancel succeeds;
 *                       a Seed of judy@bank-a while 30 of hers are frozen
 *                       is refused (balance and frozen unchanged); a Seed
 *                       without the banks' seed token, or with a wrong
 *                       one, is refused;
 *   storm               N (200) random transfers both ways among 4 accounts
 *                       per bank (source and destination anywhere, maybe
 *                       the same bank; most accounts start empty or nearly
 *                       so debits race credits still pending), from
 *                       several initiator threads, against banks
 *                       started with --chaos (lost replies after commit,
 *                       refusals before, delays), plus duplicate deliveries
 *                       (a try, confirm or cancel sent again with the same
 *                       metadata), cancels sent before their try, and
 *                       initiators that change their minds (holding their
 *                       tries up to 100 ms first). After every
 *                       transaction is final: each is SUCCEEDED or FAILED
 *                       as its initiator decided, every balance equals the
 *                       start plus the SUCCEEDED transfers (money moved
 *                       exactly once), total money unchanged, every
 *                       trading_balance 0; and a sampler thread checked
 *                       balance >= 0, balance + trading_balance >= 0 and
 *                       trading_balance <= 0 (only debits are frozen) on
 *                       every account all along and at the end.
 * Each scenario ends with exactly one line
 *   example=bank-transfer-tcc scenario=<name> result=ok|FAIL
 * Exit status 1 if any failed or a process it started did not exit cleanly
 * when stopped, 2 on a usage error.
 *
 * Its files, a concern each, are listed in transfer.h.
 *
 * Threads: the harness is used from the main thread only; the storm's
 * initiator threads and the sampler use the (thread-safe) SDK only.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

/* ---- running scenarios --------------------------------------------------- */

typedef struct {
    const char *name, *story;
    void (*run)(xfer_env_t *env, example_check_t *ck);
} scenario_t;

static const scenario_t SCENARIOS[] = {
    {"transfer-ok", "alice@bank-a sends 30 to bob@bank-b",
     xfer_scenario_transfer_ok},
    {"insufficient-funds",
     "carol@bank-a sends 50 but has 10: her bank refuses, nothing moves",
     xfer_scenario_insufficient},
    {"receiver-down",
     "bank-b dies after both tries; trellisd retries its confirm until it is "
     "back",
     xfer_scenario_receiver_down},
    {"pending-credit-not-spendable",
     "xena has 0 and 50 pending to come in; she may not send them on yet",
     xfer_scenario_pending_credit},
    {"item13-amount-and-seed",
     "a credit near the BIGINT limit, a Seed over frozen money, a Seed "
     "without the token: all refused",
     xfer_scenario_item13},
    {"storm",
     "concurrent transfers against banks with chaos, duplicate and "
     "out-of-order deliveries",
     xfer_scenario_storm},
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])

static int run_scenario(xfer_env_t *env, const scenario_t *sc)
{
    example_check_t ck = {0};
    printf("\n== scenario %s: %s\n", sc->name, sc->story);
    int64_t t0 = harness_mono_ms();
    sc->run(env, &ck);
    int failed = atomic_load(&ck.failed);
    printf("   (%lld ms)\n", (long long)(harness_mono_ms() - t0));
    example_result(EX, sc->name, failed);
    return failed ? -1 : 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: example-bank-transfer-tcc [--scenario "
            "transfer-ok|insufficient-funds|receiver-down|"
            "pending-credit-not-spendable|item13-amount-and-seed|storm] "
            "[--transfers N] [--threads N] [--seed S]\n");
    return 2;
}

static int parse_args(int argc, char **argv, xfer_env_t *env, const char **only)
{
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        if (!strcmp(argv[i], "--scenario"))
            *only = v;
        else if (!strcmp(argv[i], "--transfers"))
            env->transfers = atoi(v);
        else if (!strcmp(argv[i], "--threads"))
            env->threads = atoi(v);
        else if (!strcmp(argv[i], "--seed"))
            env->seed = strtoull(v, NULL, 10);
        else
            return -1;
    }
    if (env->transfers <= 0 || env->threads <= 0 || env->threads > 256)
        return -1;
    if (!**only)
        return 0;
    for (size_t s = 0; s < N_SCENARIOS; s++)
        if (!strcmp(*only, SCENARIOS[s].name))
            return 0;
    return -1;
}

int main(int argc, char **argv)
{
    xfer_env_t env = {.transfers = 200, .threads = 8, .seed = 42};
    const char *only = "";
    if (parse_args(argc, argv, &env, &only) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    int failed = 0;
    if (xfer_setup(&env) != 0) {
        printf("example-" EX ": could not start; no scenario ran\n");
        for (size_t s = 0; s < N_SCENARIOS; s++)
            if (!*only || !strcmp(only, SCENARIOS[s].name))
                example_result(EX, SCENARIOS[s].name, 1);
        failed = 1;
    } else {
        for (size_t s = 0; s < N_SCENARIOS; s++)
            if (!*only || !strcmp(only, SCENARIOS[s].name))
                failed |= run_scenario(&env, &SCENARIOS[s]) != 0;
    }
    trellis_client_free(env.client);
    if (env.procs.h) {
        failed |= example_procs_stop(&env.procs) != 0;
        harness_free(env.procs.h, !failed);
    }
    return failed ? 1 : 0;
}
