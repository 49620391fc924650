/*
 * hybrid_random.c: the random scenario of example-hybrid-order — many
 * orders with random refusals and duplicate deliveries while a chaos
 * thread kills trellisd and the services (kill -9) and brings them back;
 * then every transaction must be final, every order's effects must match
 * its outcome, and money must be conserved. See hybrid_order.h.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hybrid_order.h"

/* ---- random -------------------------------------------------------------- */

enum { K_OK, K_PAYMENT, K_ORDER, K_SHIP_INIT, K_SHIP_TM, N_KINDS };

/* The chaos thread forks the processes it restarts, and the harness makes
 * each child die with the thread that forked it (PR_SET_PDEATHSIG): so the
 * thread lives, parked, until main has stopped every process. */
typedef struct {
    hyb_env_t *env;
    pthread_t th;
    int running;
    atomic_int stop, parked, quit;
    unsigned seed;
    int kills[N_SVC + 1]; /* [N_SVC]: trellisd */
    int failed_restarts;
} chaos_t;

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

/* Kill -9 one process (trellisd or a service) at a random moment, bring it
 * back on its port 50..250 ms later; again until told to stop. */
static void *chaos_main(void *arg)
{
    chaos_t *c = arg;
    while (!atomic_load(&c->stop)) {
        harness_sleep_ms(100 + rnd(&c->seed) % 300);
        if (atomic_load(&c->stop))
            break;
        int v = (int)(rnd(&c->seed) % (N_SVC + 2));
        v = v > N_SVC ? N_SVC : v; /* trellisd twice as often */
        harness_server_t *s = v == N_SVC ? c->env->tm_srv : c->env->svc_srv[v];
        harness_server_kill(s);
        c->kills[v]++;
        harness_sleep_ms(50 + rnd(&c->seed) % 200);
        if (harness_server_restart(s) != 0)
            c->failed_restarts++;
    }
    atomic_store(&c->parked, 1);
    while (!atomic_load(&c->quit))
        harness_sleep_ms(10);
    return NULL;
}

static chaos_t CHAOS;

/* After every process was stopped: let the chaos thread end. */
void hyb_chaos_quit(void)
{
    if (!CHAOS.running)
        return;
    atomic_store(&CHAOS.quit, 1);
    pthread_join(CHAOS.th, NULL);
    CHAOS.running = 0;
}

static void random_order(int i, int kind, unsigned *s, hyb_order_t *o)
{
    snprintf(o->order, sizeof o->order, "r%d-%03d", (int)getpid(), i);
    o->customer = kind == K_PAYMENT ? "bob" : "alice";
    o->carrier = kind == K_SHIP_INIT || kind == K_SHIP_TM ? "none" : "post";
    o->tm_run = kind == K_SHIP_TM || (kind == K_OK && rnd(s) % 2);
    if (kind == K_ORDER)
        snprintf(o->order, sizeof o->order, "%s", EXISTING_ORDER);
}

/* After the end: deliver each finished branch's ops again (the forward op,
 * then the phase-2 op of the outcome). */
static void redeliver_final(const hyb_env_t *env, const hyb_order_t *o,
                            const hyb_outcome_t *out, int succeeded)
{
    for (int br = 0; br < N_BR; br++) {
        if (!out->fwd_ok[br] || (br == BR_SHIP && o->tm_run))
            continue;
        hyb_redeliver(env, o, out->gid, br, HYB_BR[br].fwd, HYB_BR[br].fwd_op);
        if (succeeded && HYB_BR[br].commit)
            hyb_redeliver(env, o, out->gid, br, HYB_BR[br].commit,
                          HYB_BR[br].commit_op);
        else if (!succeeded)
            hyb_redeliver(env, o, out->gid, br, HYB_BR[br].rollback,
                          HYB_BR[br].rb_op);
    }
}

/* The outcome of out per the TM: 1 succeeded, 0 failed or never begun, -1
 * not final (a failed check). */
static int final_of(const hyb_env_t *env, const hyb_outcome_t *out,
                    example_check_t *ck)
{
    int nf;
    if (!out->gid[0])
        return 0; /* no gid: nothing was ever sent */
    trellis_trans_info_t *info =
        hyb_query_final(env, out->gid, FINAL_TIMEOUT_MS, &nf);
    int r = info ? info->status == TRELLIS_TRANS_SUCCEEDED : -1;
    if (info && !example_is_final(info->status))
        r = -1;
    if (!info && nf && !out->begun)
        r = 0; /* begin never reached trellisd */
    if (r < 0 && info)
        hyb_print_report(env, info);
    trellis_trans_info_free(info);
    example_expect(ck, r >= 0, "%s should be succeeded or failed", out->gid);
    return r;
}

/* Per order: the row and the slot exist iff it succeeded; a refusal that
 * was meant never succeeds. */
static void check_order_effects(const char *state, const hyb_order_t *o,
                                const hyb_outcome_t *out, int ok,
                                example_check_t *ck)
{
    char line[160];
    example_expect(ck, out->kind == K_OK || !ok,
                   "%s (meant to be refused, kind %d) succeeded", out->gid,
                   out->kind);
    if (out->kind == K_ORDER)
        return; /* the order id is the existing order's */
    snprintf(line, sizeof line, "order=%.63s sku=book qty=1", o->order);
    example_expect(ck, hyb_has_line(state, line) == ok,
                   "%s: the order row should %sexist", out->gid,
                   ok ? "" : "not ");
    snprintf(line, sizeof line, " order=%.63s", o->order);
    example_expect(ck, hyb_has_line_ending(state, line) == ok,
                   "%s: the slot should %sbe held", out->gid, ok ? "" : "not ");
}

static void check_money(const char *state, int n_ok, example_check_t *ck)
{
    char line[3][96];
    snprintf(line[0], sizeof line[0],
             "account=alice balance=%d trading_balance=0", RICH - PRICE * n_ok);
    snprintf(line[1], sizeof line[1],
             "account=bob balance=%d trading_balance=0", POOR);
    snprintf(line[2], sizeof line[2],
             "account=shop balance=%d trading_balance=0", PRICE * n_ok);
    for (int i = 0; i < 3; i++)
        example_expect(ck, hyb_has_line(state, line[i]),
                       "bank should say \"%s\" (money conserved, nothing "
                       "frozen)",
                       line[i]);
}

static void print_random(int i, const hyb_order_t *o, const hyb_outcome_t *out)
{
    static const char *const kinds[N_KINDS] = {
        "ok", "payment-refused", "order-refused", "ship-refused-initiator",
        "ship-refused-tm"};
    printf("   #%02d %-22s %s gid=%s %s%s: rc %d %s -> %s\n", i,
           kinds[out->kind], o->tm_run ? "tm-run" : "initiator-run",
           out->gid[0] ? out->gid : "-",
           out->at == AT_NONE     ? "submitted"
           : out->at == AT_SUBMIT ? "stopped at submit"
                                  : "stopped at ",
           out->at >= 0 && out->at < N_BR ? HYB_BR[out->at].fwd : "", out->rc,
           out->rc ? out->err : "",
           out->st ? trellis_trans_status_name(out->st) : "unknown");
}

/* How many lines of the services' logs contain needle. */
static int count_logged(const hyb_env_t *env, const char *needle)
{
    char line[1024];
    int n = 0;
    for (int i = 0; i < N_SVC; i++) {
        FILE *f = fopen(env->log[i], "r");
        while (f && fgets(line, sizeof line, f))
            n += strstr(line, needle) != NULL;
        if (f)
            fclose(f);
    }
    return n;
}

static void run_random(hyb_env_t *env, hyb_order_t *orders, hyb_outcome_t *outs,
                       int *n_dup)
{
    unsigned s = env->seed;
    for (int i = 0; i < env->count; i++) {
        int r = (int)(rnd(&s) % 10);
        int kind = r < 5 ? K_OK : r - 5 < N_KINDS - 1 ? 1 + r - 5 : K_OK;
        random_order(i, kind, &s, &orders[i]);
        int dup = rnd(&s) % 3 == 0;
        *n_dup += dup;
        outs[i].kind = kind;
        hyb_run_order(env, &orders[i], dup, &outs[i]);
        print_random(i, &orders[i], &outs[i]);
    }
}

void hyb_scenario_random(hyb_env_t *env, example_check_t *ck)
{
    static hyb_order_t orders[RANDOM_MAX];
    static hyb_outcome_t outs[RANDOM_MAX];
    chaos_t *c = &CHAOS;
    int n_dup = 0, n_ok = 0, n_final = 0;
    if (hyb_seed_all(env, ck) != 0)
        return;
    printf("   %d orders, seed %u; kill -9 of trellisd and the services from "
           "a second thread\n",
           env->count, env->seed);
    c->env = env, c->seed = env->seed ^ 0x5bd1e995u;
    if (!example_expect(ck, pthread_create(&c->th, NULL, chaos_main, c) == 0,
                        "pthread_create"))
        return;
    c->running = 1;
    run_random(env, orders, outs, &n_dup);
    atomic_store(&c->stop, 1);
    while (!atomic_load(&c->parked))
        harness_sleep_ms(10);
    printf("   kills: trellisd %d, order %d, bank %d, shipping %d; failed "
           "restarts %d; immediate duplicates in %d orders\n",
           c->kills[N_SVC], c->kills[0], c->kills[1], c->kills[2],
           c->failed_restarts, n_dup);
    example_expect(ck, c->failed_restarts == 0, "a restart failed");
    int ok[RANDOM_MAX];
    for (int i = 0; i < env->count; i++) {
        ok[i] = final_of(env, &outs[i], ck);
        n_final += ok[i] >= 0;
        n_ok += ok[i] == 1;
    }
    for (int i = 0; i < env->count; i++)
        if (ok[i] >= 0 && rnd(&env->seed) % 3 == 0)
            redeliver_final(env, &orders[i], &outs[i], ok[i]);
    char *state = hyb_snapshot(env, ck);
    int dups = count_logged(env, "duplicate: nothing to do");
    printf("   %d/%d final, %d succeeded; the services recognised %d "
           "duplicate deliveries and %d late ones (after the rollback)\n",
           n_final, env->count, n_ok, dups,
           count_logged(env, "before it came"));
    example_expect(ck, dups > 0, "duplicates should have reached the services");
    if (!state)
        return;
    for (int i = 0; i < env->count; i++)
        if (ok[i] >= 0)
            check_order_effects(state, &orders[i], &outs[i], ok[i], ck);
    check_money(state, n_ok, ck);
    example_expect(ck, hyb_count_lines(state, " order=r") == n_ok,
                   "slots held should be %d", n_ok);
    free(state);
}
