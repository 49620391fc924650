/*
 * example-hybrid-order: the driver of the hybrid-order example. Creating an
 * order is one global transaction whose branches are of three kinds
 * (trellis_gtx, trellis/trellis_gtx.h), on three services (separate processes,
 * each with its own database on one MariaDB):
 *
 *   trellis_gtx_begin
 *   01 call_xa   order-service  Prepare "order=O sku=book qty=1"   (XA row)
 *   02 call_tcc  bank-service   TransTry "account=C amount=-30"   (freeze)
 *   03 call_tcc  bank-service   TransTry "account=shop amount=30" (credit)
 *   04 call_saga shipping-service Reserve "order=O carrier=K"  (initiator-run)
 *      or add_step (the same step, run by trellisd after submit)
 *   submit, waiting for the outcome | abort on the first refusal
 *
 *   example-hybrid-order [--scenario NAME] [--seed N] [--count N]
 *
 * It owns every process it starts (test harness: a throwaway MariaDB,
 * trellisd, order-service and bank-service reused from the other examples,
 * shipping-service from here; scratch dir
 * ${build}/test-data/example-hybrid-order-<pid>, removed when all passed).
 *
 * Scenarios (all by default, or one with --scenario):
 *   order-ok                       every branch commits: the order row, the
 *                                  money moved, the slot reserved;
 *   payment-refused                the TCC try finds too little money;
 *   order-refused                  the XA prepare finds the order id taken;
 *   shipping-refused-initiator-run call_saga's Reserve is refused;
 *   shipping-refused-tm-run        add_step's Reserve (run by trellisd after
 *                                  submit) is refused: submit's wait says
 *                                  FAILED with the reason;
 *     each refusal must leave every service's full state exactly as before;
 *   random                         --count (60) transactions with random
 *                                  refusals, duplicate deliveries and kill -9
 *                                  of trellisd and the services (each
 *                                  restarted on its port) from a second
 *                                  thread; then every transaction must be
 *                                  final and every invariant hold.
 * Every scenario ends with trellis_myxa_recover and an empty XA RECOVER, then
 * exactly one line "example=hybrid-order scenario=<s> result=ok|FAIL". Exit
 * status 1 if any failed, 2 on a usage error.
 *
 * Its files, a concern each, are listed in hybrid_order.h.
 *
 * Threads: the main thread, plus the chaos thread from `random` on: while
 * it kills and restarts it is the only user of the harness (the main
 * thread only reads the servers' stable addresses and the clock); then it
 * stays parked until every process was stopped, because the harness makes
 * a child die with the thread that forked it (PR_SET_PDEATHSIG).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hybrid_order.h"

/* ---- running scenarios --------------------------------------------------- */

typedef struct {
    const char *name, *story;
    void (*run)(hyb_env_t *env, example_check_t *ck);
    int may_recover; /* trellis_myxa_recover may legitimately resolve XIDs */
} scenario_t;

static const scenario_t SCENARIOS[] = {
    {"order-ok", "XA order row, TCC payment, saga shipment: all commit",
     hyb_scenario_order_ok, 0},
    {"payment-refused", "the TCC try finds too little money: all roll back",
     hyb_scenario_payment_refused, 0},
    {"order-refused", "the XA prepare finds the order id taken: all roll back",
     hyb_scenario_order_refused, 0},
    {"shipping-refused-initiator-run",
     "call_saga's Reserve is refused: the initiator aborts, all roll back",
     hyb_scenario_ship_initiator, 0},
    {"shipping-refused-tm-run",
     "the Reserve trellisd runs after submit is refused: trellisd rolls "
     "everything back",
     hyb_scenario_ship_tm, 0},
    {"random",
     "many orders, random refusals, duplicate deliveries, kill -9 of "
     "trellisd and the services",
     hyb_scenario_random, 1},
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])

static int run_scenario(hyb_env_t *env, const scenario_t *sc)
{
    example_check_t ck = {0};
    printf("\n== scenario %s: %s\n", sc->name, sc->story);
    int64_t t0 = harness_mono_ms();
    sc->run(env, &ck);
    hyb_check_nothing_prepared(env, sc->may_recover, &ck);
    printf("   (%lld ms)\n", (long long)(harness_mono_ms() - t0));
    example_result(EX, sc->name, ck.failed);
    return ck.failed ? -1 : 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: example-hybrid-order [--scenario order-ok|"
            "payment-refused|order-refused|\n"
            "         shipping-refused-initiator-run|"
            "shipping-refused-tm-run|random]\n"
            "         [--seed N] [--count N (1..%d)]\n",
            RANDOM_MAX);
    return 2;
}

static int parse_args(int argc, char **argv, hyb_env_t *env, const char **only)
{
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return -1;
        if (!strcmp(argv[i], "--scenario"))
            *only = argv[i + 1];
        else if (!strcmp(argv[i], "--seed"))
            env->seed = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--count"))
            env->count = atoi(argv[i + 1]);
        else
            return -1;
    }
    if (env->count < 1 || env->count > RANDOM_MAX)
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
    hyb_env_t env = {.seed = (unsigned)getpid(), .count = 60};
    const char *only = "";
    if (parse_args(argc, argv, &env, &only) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (mysql_library_init(0, NULL, NULL) != 0)
        return 1;
    int failed = 0;
    int ready = hyb_setup(&env) == 0;
    if (!ready)
        printf("example-" EX ": could not start; no scenario ran\n");
    for (size_t s = 0; s < N_SCENARIOS; s++) {
        if (*only && strcmp(only, SCENARIOS[s].name))
            continue;
        if (!ready)
            example_result(EX, SCENARIOS[s].name, 1);
        failed |= !ready || run_scenario(&env, &SCENARIOS[s]) != 0;
    }
    trellis_client_free(env.client);
    if (env.procs.h) {
        failed |= hyb_stop_started(&env) != 0;
        hyb_chaos_quit();
        harness_free(env.procs.h, !failed);
    }
    mysql_library_end();
    return failed ? 1 : 0;
}
