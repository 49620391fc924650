/*
 * wft_scenarios.c: the scenarios of example-workflow-transfer and what
 * they check — each transfer's outcome in trellisd, the money (moved
 * exactly once, or not at all, and never lost), the ledger entries and
 * the workflow service's rows, that no step's forward op ran twice, and
 * that nothing is left prepared in MariaDB. See workflow_transfer.h;
 * workflow_transfer.c tells the story of each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workflow_transfer.h"

/* What the branches are, by position (release 1's order). */
static const char *const BRANCH_NAMES[] = {
    "head: the function", "debit alice@bank-a", "ledger entry",
    "transfers row (local)", "credit at bank-b"};
#define N_BRANCH_NAMES (sizeof BRANCH_NAMES / sizeof BRANCH_NAMES[0])

/* ---- what trellisd says -------------------------------------------------- */

/* The final state of gid, which must be want; the TM's view and the
 * services' lines printed. The info (caller frees) or NULL. */
static trellis_trans_info_t *expect_final(const wft_env_t *env, const char *gid,
                                          trellis_trans_status_t want,
                                          example_check_t *ck)
{
    example_view_t v = {env->client, BRANCH_NAMES, N_BRANCH_NAMES, env->log,
                        N_SVC};
    return example_expect_final(&v, gid, want, FINAL_TIMEOUT_MS, ck);
}

/* Branch i's op of kind op in info, which must have status want. */
static void expect_op(const trellis_trans_info_t *info, size_t i,
                      trellis_op_t op, trellis_op_status_t want,
                      example_check_t *ck)
{
    const trellis_op_info_t *o = info && i < info->n_branches
                                     ? example_find_op(&info->branches[i], op)
                                     : NULL;
    example_expect(ck, o && o->status == want, "branch %02zu's %s should be %s",
                   i, trellis_op_name(op), trellis_op_status_name(want));
}

/* ---- money, ledger, rows ------------------------------------------------- */

typedef struct {
    long long alice, alice_frozen, bob, bob_frozen;
} money_t;

static int read_account(const wft_env_t *env, int svc, const char *id,
                        long long *balance, long long *frozen,
                        example_check_t *ck)
{
    return example_sql_number(env->conn, balance, ck,
                              "SELECT balance FROM %s.accounts WHERE id = '%s'",
                              WFT_SVC[svc].database, id) ||
                   example_sql_number(env->conn, frozen, ck,
                                      "SELECT trading_balance FROM %s.accounts "
                                      "WHERE id = '%s'",
                                      WFT_SVC[svc].database, id)
               ? -1
               : 0;
}

static int read_money(const wft_env_t *env, money_t *m, example_check_t *ck)
{
    return read_account(env, SVC_BANK_A, "alice", &m->alice, &m->alice_frozen,
                        ck) ||
                   read_account(env, SVC_BANK_B, "bob", &m->bob, &m->bob_frozen,
                                ck)
               ? -1
               : 0;
}

/* moved went from alice to bob since `before`, exactly; nothing frozen;
 * no money made or lost. */
static void check_money(const wft_env_t *env, const money_t *before,
                        long long moved, example_check_t *ck)
{
    money_t m;
    if (read_money(env, &m, ck) != 0)
        return;
    printf("   alice@bank-a: balance=%lld trading_balance=%lld; bob@bank-b: "
           "balance=%lld trading_balance=%lld\n",
           m.alice, m.alice_frozen, m.bob, m.bob_frozen);
    example_expect(
        ck, m.alice == before->alice - moved && m.bob == before->bob + moved,
        "%lld should have moved from alice (%lld -> %lld) to bob "
        "(%lld -> %lld)",
        moved, before->alice, m.alice, before->bob, m.bob);
    example_expect(ck, m.alice_frozen == 0 && m.bob_frozen == 0,
                   "nothing should be left frozen");
    example_expect(ck, m.alice + m.bob == before->alice + before->bob,
                   "money should be conserved");
}

/* gid's ledger entries (committed) and the workflow service's rows. */
static void check_books(const wft_env_t *env, const char *gid, int ledger,
                        int booked, int cancelled, example_check_t *ck)
{
    long long n[3];
    const char *const sql[3] = {
        "SELECT COUNT(*) FROM %s.ledger WHERE transfer = '%s'",
        "SELECT COUNT(*) FROM %s.transfers WHERE transfer = '%s' AND "
        "state = 'booked'",
        "SELECT COUNT(*) FROM %s.transfers WHERE transfer = '%s' AND "
        "state = 'cancelled'"};
    for (int i = 0; i < 3; i++)
        if (example_sql_number(env->conn, &n[i], ck, sql[i],
                               WFT_SVC[i ? SVC_WORKFLOW : SVC_LEDGER].database,
                               gid) != 0)
            return;
    printf("   ledger entries: %lld; workflow-service rows: %lld booked, "
           "%lld cancelled\n",
           n[0], n[1], n[2]);
    example_expect(ck, n[0] == ledger && n[1] == booked && n[2] == cancelled,
                   "want %d ledger entries, %d booked and %d cancelled rows",
                   ledger, booked, cancelled);
}

/* Every step's forward op was called once, over every run of the
 * function: the runs after a kill replayed the recorded ones. */
static void check_each_step_ran_once(const wft_env_t *env, const char *gid,
                                     example_check_t *ck)
{
    static const struct {
        int svc;
        const char *needle, *what;
    } calls[] = {{SVC_BANK_A, "TransTry", "bank-a's TransTry"},
                 {SVC_LEDGER, "Prepare", "the ledger's Prepare"},
                 {SVC_WORKFLOW, "local book", "the local step's action"},
                 {SVC_BANK_B, "TransTry", "bank-b's TransTry"}};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        int n = example_count_said(&env->log[calls[i].svc], 1, gid,
                                   calls[i].needle);
        example_expect(ck, n == 1, "%s ran %d times for %s, want once",
                       calls[i].what, n, gid);
    }
}

static void check_nothing_prepared(const wft_env_t *env, example_check_t *ck)
{
    int n = wft_xa_prepared(env, ck);
    printf("   XA RECOVER: %d prepared XID(s)\n", n);
    example_expect(ck, n == 0, "nothing should be left prepared");
}

/* ---- driving the workflow service ---------------------------------------- */

/* Have the workflow service run workflow gid: AMOUNT from alice@bank-a
 * to `to`@bank-b, held before step `hold` (0: not held). 0 or -1. */
static int start_transfer(const wft_env_t *env, const char *gid, const char *to,
                          int hold, example_check_t *ck)
{
    char err[256], held[32] = "";
    if (hold)
        snprintf(held, sizeof held, " hold_before=%d", hold);
    return example_expect(ck,
                          wft_control(env, "Start", NULL, err, sizeof err,
                                      "gid=%s%s from=alice to=%s amount=%d",
                                      gid, held, to, AMOUNT) == 0,
                          "Start %s: %s", gid, err)
               ? 0
               : -1;
}

/* Wait until the run of gid holds before step k. 0 or -1. */
static int wait_held(const wft_env_t *env, const char *gid, int k,
                     example_check_t *ck)
{
    char want[32], err[256];
    int64_t deadline = harness_mono_ms() + FINAL_TIMEOUT_MS;
    snprintf(want, sizeof want, "state=held step=%d", k);
    for (;;) {
        char *text = NULL;
        int rc =
            wft_control(env, "Status", &text, err, sizeof err, "gid=%s", gid);
        int held = rc == 0 && !strcmp(text, want);
        if (held || rc != 0 || !strncmp(text, "state=done", 10) ||
            harness_mono_ms() > deadline) {
            example_expect(ck, held, "%s should hold before step %d: %s", gid,
                           k, rc ? err : text);
            free(text);
            return held ? 0 : -1;
        }
        free(text);
        harness_sleep_ms(10);
    }
}

/* Note the money, and have the workflow service run workflow gid (to
 * `to`, held before step `hold`, 0: not) up to the hold. 0 or -1. */
static int begin(const wft_env_t *env, const char *gid, const char *to,
                 int hold, money_t *before, example_check_t *ck)
{
    return read_money(env, before, ck) != 0 ||
                   start_transfer(env, gid, to, hold, ck) != 0 ||
                   (hold && wait_held(env, gid, hold, ck) != 0)
               ? -1
               : 0;
}

/* What a transfer leaves once final: `moved` went from alice to bob, the
 * ledger entries and rows of gid as given, every step's forward op called
 * once (`once`), nothing prepared. */
typedef struct {
    long long moved;
    int ledger, booked, cancelled, once;
} leaves_t;

static void check_left(const wft_env_t *env, const char *gid,
                       const money_t *before, leaves_t want,
                       example_check_t *ck)
{
    check_money(env, before, want.moved, ck);
    check_books(env, gid, want.ledger, want.booked, want.cancelled, ck);
    if (want.once)
        check_each_step_ran_once(env, gid, ck);
    check_nothing_prepared(env, ck);
}

/* ---- success and a business failure -------------------------------------- */

void wft_scenario_success(void *arg, example_check_t *ck)
{
    wft_env_t *env = arg;
    const char *gid = "wf-success";
    money_t before;
    if (begin(env, gid, "bob", 0, &before, ck) != 0)
        return;
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_SUCCEEDED, ck);
    static const trellis_mode_t modes[] = {
        TRELLIS_MODE_WORKFLOW, TRELLIS_MODE_TCC, TRELLIS_MODE_XA,
        TRELLIS_MODE_LOCAL, TRELLIS_MODE_TCC};
    for (size_t i = 0; info && i < 5; i++)
        example_expect(
            ck, i < info->n_branches && info->branches[i].mode == modes[i],
            "branch %02zu should be %s", i, trellis_mode_name(modes[i]));
    expect_op(info, 1, TRELLIS_OP_CONFIRM, TRELLIS_OP_SUCCEEDED, ck);
    expect_op(info, 2, TRELLIS_OP_COMMIT, TRELLIS_OP_SUCCEEDED, ck);
    expect_op(info, 4, TRELLIS_OP_CONFIRM, TRELLIS_OP_SUCCEEDED, ck);
    trellis_trans_info_free(info);
    check_left(env, gid, &before, (leaves_t){AMOUNT, 1, 1, 0, 1}, ck);
}

/* bob's bank has no account "nobody": the last step is refused, and every
 * step before it is undone, the local one by the workflow service. */
void wft_scenario_failure_last(void *arg, example_check_t *ck)
{
    wft_env_t *env = arg;
    const char *gid = "wf-fail-last-step";
    money_t before;
    if (begin(env, gid, "nobody", 0, &before, ck) != 0)
        return;
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_FAILED, ck);
    example_expect(ck, info && strstr(info->reason, "no such account"),
                   "the reason should be bank-b's \"no such account\"");
    expect_op(info, 4, TRELLIS_OP_TRY, TRELLIS_OP_FAILED, ck);
    expect_op(info, 3, TRELLIS_OP_COMPENSATE, TRELLIS_OP_SUCCEEDED, ck);
    expect_op(info, 2, TRELLIS_OP_ROLLBACK, TRELLIS_OP_SUCCEEDED, ck);
    expect_op(info, 1, TRELLIS_OP_CANCEL, TRELLIS_OP_SUCCEEDED, ck);
    trellis_trans_info_free(info);
    check_left(env, gid, &before, (leaves_t){0, 0, 0, 1, 1}, ck);
}

/* ---- kill -9 of the workflow service after step k ------------------------ */

static void killed_after(wft_env_t *env, int k, example_check_t *ck)
{
    char gid[32];
    money_t before;
    snprintf(gid, sizeof gid, "wf-killed-after-%d", k);
    if (begin(env, gid, "bob", k + 1, &before, ck) != 0)
        return;
    printf("   step %d is recorded and the function holds before %s: kill -9 "
           "the workflow service, start it again on %s\n",
           k, k == 4 ? "its decision" : "the next step",
           env->svc[SVC_WORKFLOW]);
    int64_t t0 = harness_mono_ms();
    if (!example_expect(ck,
                        wft_kill_workflow_service(env) == 0 &&
                            wft_restart_workflow_service(env) == 0,
                        "kill -9 and restart of the workflow service"))
        return;
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_SUCCEEDED, ck);
    printf("   final %lld ms after the kill\n",
           (long long)(harness_mono_ms() - t0));
    trellis_trans_info_free(info);
    int runs = example_count_said(&env->log[SVC_WORKFLOW], 1, gid, "run gid=");
    example_expect(ck, runs >= 2,
                   "the function should have run again after the restart "
                   "(ran %d times)",
                   runs);
    check_left(env, gid, &before, (leaves_t){AMOUNT, 1, 1, 0, 1}, ck);
}

void wft_scenario_killed_1(void *arg, example_check_t *ck)
{
    wft_env_t *env = arg;
    killed_after(env, 1, ck);
}

void wft_scenario_killed_2(void *arg, example_check_t *ck)
{
    wft_env_t *env = arg;
    killed_after(env, 2, ck);
}

void wft_scenario_killed_3(void *arg, example_check_t *ck)
{
    wft_env_t *env = arg;
    killed_after(env, 3, ck);
}

void wft_scenario_killed_4(void *arg, example_check_t *ck)
{
    wft_env_t *env = arg;
    killed_after(env, 4, ck);
}

/* ---- a replay mismatch --------------------------------------------------- */

/* Query gid until trellisd stopped resuming it (its head's resume op
 * FAILED); the info, or NULL with a failed check. */
static trellis_trans_info_t *wait_stopped(const wft_env_t *env, const char *gid,
                                          example_check_t *ck)
{
    int64_t deadline = harness_mono_ms() + FINAL_TIMEOUT_MS;
    char err[256] = "";
    while (harness_mono_ms() < deadline) {
        trellis_trans_info_t *info = NULL;
        if (trellis_query(env->client, gid, &info, err, sizeof err) ==
                TRELLIS_OK &&
            info->n_branches > 0) {
            const trellis_op_info_t *resume =
                example_find_op(&info->branches[0], TRELLIS_OP_RESUME);
            if (resume && resume->status == TRELLIS_OP_FAILED)
                return info;
        }
        trellis_trans_info_free(info);
        harness_sleep_ms(20);
    }
    example_expect(ck, 0, "trellisd should have stopped %s: %s", gid,
                   *err ? err : "it did not");
    return NULL;
}

/* Release 2 runs the workflow release 1 began: trellisd stops it; the
 * operator aborts it, and everything is rolled back. */
static void stop_then_abort(wft_env_t *env, const char *gid,
                            harness_server_t *r2, const money_t *before,
                            example_check_t *ck)
{
    char r2_log[1][PATH_MAX];
    snprintf(r2_log[0], PATH_MAX, "%s",
             harness_proc_log(harness_server_proc(r2)));
    trellis_trans_info_t *info = wait_stopped(env, gid, ck);
    example_print_said(r2_log, 1, gid, "release 2");
    if (!info)
        return;
    example_print_branches(info, BRANCH_NAMES, N_BRANCH_NAMES);
    example_expect(ck, info->status == TRELLIS_TRANS_PREPARED,
                   "a stopped workflow stays PREPARED");
    example_expect(ck,
                   !strncmp(info->reason, "workflow stopped: ", 18) &&
                       strstr(info->reason, "replay mismatch") &&
                       strstr(info->reason, "step 01"),
                   "the reason should say the workflow stopped at a replay "
                   "mismatch in step 01");
    trellis_trans_info_free(info);
    char err[256];
    trellis_trans_status_t st = TRELLIS_TRANS_PREPARED;
    printf("   the operator aborts %s\n", gid);
    trellis_rc_t rc = trellis_abort(
        env->client, gid, "operator: release 2 cannot finish release 1's run",
        1, &st, err, sizeof err);
    example_expect(ck, rc == TRELLIS_OK && st == TRELLIS_TRANS_FAILED,
                   "abort: rc %d, %s: %s", rc, trellis_trans_status_name(st),
                   rc ? err : "");
    info = expect_final(env, gid, TRELLIS_TRANS_FAILED, ck);
    expect_op(info, 1, TRELLIS_OP_CANCEL, TRELLIS_OP_SUCCEEDED, ck);
    example_expect(ck, info && info->n_branches == 2,
                   "only the head and step 01 should be registered");
    trellis_trans_info_free(info);
    check_left(env, gid, before, (leaves_t){0, 0, 0, 0, 0}, ck);
}

void wft_scenario_mismatch(void *arg, example_check_t *ck)
{
    wft_env_t *env = arg;
    const char *gid = "wf-replay-mismatch";
    money_t before;
    if (begin(env, gid, "bob", 2, &before, ck) != 0)
        return;
    printf("   step 01 (the debit) is recorded: kill -9 the workflow service, "
           "start its release 2 (ledger entry first) on %s\n",
           env->svc[SVC_WORKFLOW]);
    if (!example_expect(ck, wft_kill_workflow_service(env) == 0,
                        "kill -9 of the workflow service"))
        return;
    harness_server_t *r2 = wft_start_release_2(env);
    if (example_expect(ck, r2 != NULL, "release 2 should start"))
        stop_then_abort(env, gid, r2, &before, ck);
    printf("   back to release 1\n");
    example_expect(ck,
                   (!r2 || wft_stop_release_2(r2) == 0) &&
                       wft_restart_workflow_service(env) == 0,
                   "release 1 should be back");
}
