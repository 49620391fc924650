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
 * Threads: the harness is used from the main thread only; the storm's
 * initiator threads and the sampler use the (thread-safe) SDK only.
 */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_driver.h"
#include "harness.h"
#include "trellis/trellis.h"
#include "trellis/trellis_tcc.h"

#define EX "bank-transfer-tcc"
#define ADDR_MAX 128
#define TARGET_MAX 256
#define GID_MAX 64
#define RETRY_INTERVAL_MS 50
#define REQUEST_TIMEOUT_MS 2000
#define STR_(x) #x
#define STR(x) STR_(x)
#define CALL_TIMEOUT_MS 20000
#define FINAL_TIMEOUT_MS 30000
#define MAX_ACCOUNTS 64
#define STORM_ACCOUNTS 4      /* per bank */
#define STORM_MAX_AMOUNT 60   /* amounts 1..60 */
#define STORM_MAX_HOLD_MS 100 /* a mind changer holds its tries 0..100 ms */
#define STORM_CHAOS_RATE "0.1"

enum { BANK_A, BANK_B, N_BANKS };

/* The start balance of storm accounts s-a<i> and s-b<i>: three per bank
 * start empty or nearly, so their debits are refused unless money came in
 * and keep racing the credits still pending to them (a pending credit must
 * never make a debit pass); one is rich and keeps money flowing. With the
 * old rule, where a pending credit counted as funds, this overdrew an
 * account in 34 of 36 runs tried (it depends on timing, not only on the
 * seed). */
static const long long STORM_START[STORM_ACCOUNTS] = {0, 0, 30, 1000};

static const struct {
    const char *name;     /* bank-service --name */
    const char *database; /* its database */
} BANKS[N_BANKS] = {{"bank-a", "bank_a"}, {"bank-b", "bank_b"}};

typedef struct {
    example_procs_t procs; /* what setup started, MariaDB included */
    char tm[ADDR_MAX];
    char bank[N_BANKS][ADDR_MAX];
    char log[N_BANKS][PATH_MAX];
    harness_server_t *bank_srv[N_BANKS];
    trellis_client_t *client;
    char seed_token[40];            /* the banks' Seed token */
    char seed_token_file[PATH_MAX]; /* and the file they read it from */
    /* command line */
    int transfers, threads;
    uint64_t seed;
} env_t;

/* ---- processes ------------------------------------------------------- */

static int start_tm(env_t *env)
{
    const char *args[] = {"--retry-interval-ms",
                          STR(RETRY_INTERVAL_MS),
                          "--request-timeout-ms",
                          STR(REQUEST_TIMEOUT_MS),
                          "--max-backoff-ms",
                          "500",
                          NULL};
    return example_start_tm(&env->procs, args, env->tm, sizeof env->tm) ? 0
                                                                        : -1;
}

/* Start bank-service for bank b as process `name`, with chaos if not
 * NULL. Returns the server or NULL. */
static harness_server_t *start_bank(env_t *env, int b, const char *name,
                                    const char *chaos)
{
    const char *args[] = {"--name",
                          name,
                          "--database",
                          BANKS[b].database,
                          "--mysql-socket",
                          harness_mariadb_socket(env->procs.db),
                          "--threads",
                          "8",
                          "--seed-token-file",
                          env->seed_token_file,
                          chaos ? "--chaos" : NULL,
                          chaos,
                          NULL};
    harness_server_t *s =
        example_start_service(&env->procs, name, "bank-service", args);
    if (!s)
        return NULL;
    printf("started bank-service --name %s at %s (database %s%s%s)\n", name,
           harness_server_addr(s), BANKS[b].database, chaos ? ", chaos " : "",
           chaos ? chaos : "");
    return s;
}

static int setup(env_t *env)
{
    if (example_procs_open(&env->procs, "example-" EX) != 0 ||
        example_seed_token(&env->procs, env->seed_token, sizeof env->seed_token,
                           env->seed_token_file,
                           sizeof env->seed_token_file) != 0 ||
        !example_start_mariadb(&env->procs))
        return -1;
    if (start_tm(env) != 0)
        return -1;
    for (int b = 0; b < N_BANKS; b++) {
        harness_server_t *s = start_bank(env, b, BANKS[b].name, NULL);
        if (!s)
            return -1;
        env->bank_srv[b] = s;
        snprintf(env->bank[b], sizeof env->bank[b], "%s",
                 harness_server_addr(s));
        snprintf(env->log[b], sizeof env->log[b], "%s",
                 harness_proc_log(harness_server_proc(s)));
    }
    return example_client_new("example-" EX, env->tm, CALL_TIMEOUT_MS,
                              &env->client);
}

/* ---- the banks ------------------------------------------------------- */

typedef struct {
    char id[72];
    long long balance, trading;
} account_t;

typedef struct {
    size_t n;
    account_t a[MAX_ACCOUNTS];
} accounts_t;

/* Call /bank.v1.Bank/<method> at addr with payload; the reply as a
 * malloc'd C string in *text (may be NULL). 0, or -1 with err. */
static int bank_call(const char *addr, const char *method, const char *payload,
                     char **text, char *err, size_t errlen)
{
    char full[64];
    snprintf(full, sizeof full, "/bank.v1.Bank/%s", method);
    return example_call_text(addr, full, payload, text, err, errlen);
}

static int seed(const env_t *env, int b, const char *account, long long bal)
{
    char payload[128], err[256];
    snprintf(payload, sizeof payload, "account=%s balance=%lld token=%s",
             account, bal, env->seed_token);
    if (bank_call(env->bank[b], "Seed", payload, NULL, err, sizeof err) == 0)
        return 0;
    printf("   seed %s@%s: %s\n", account, BANKS[b].name, err);
    return -1;
}

/* Every account of the bank at addr into *out. 0 or -1 with err. */
static int read_accounts(const char *addr, accounts_t *out, char *err,
                         size_t errlen)
{
    char *text = NULL, *save = NULL;
    out->n = 0;
    if (bank_call(addr, "Accounts", "", &text, err, errlen) != 0)
        return -1;
    for (char *l = strtok_r(text, "\n", &save); l && out->n < MAX_ACCOUNTS;
         l = strtok_r(NULL, "\n", &save)) {
        account_t *a = &out->a[out->n];
        if (sscanf(l, "account=%71s balance=%lld trading_balance=%lld", a->id,
                   &a->balance, &a->trading) == 3)
            out->n++;
    }
    free(text);
    return 0;
}

static const account_t *account_find(const accounts_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->a[i].id, id))
            return &s->a[i];
    return NULL;
}

/* Read and print one account into *out. 0, or -1 with a failed check. */
static int show_account(const env_t *env, int b, const char *id, account_t *out,
                        example_check_t *ck)
{
    accounts_t s;
    char err[256];
    if (!example_expect(ck,
                        read_accounts(env->bank[b], &s, err, sizeof err) == 0,
                        "Accounts at %s: %s", BANKS[b].name, err))
        return -1;
    const account_t *a = account_find(&s, id);
    if (!example_expect(ck, a != NULL, "%s@%s does not exist", id,
                        BANKS[b].name))
        return -1;
    printf("   %s@%s: balance=%lld trading_balance=%lld\n", id, BANKS[b].name,
           a->balance, a->trading);
    *out = *a;
    return 0;
}

/* Print and check one account: balance and trading_balance as wanted. */
static void check_account(const env_t *env, int b, const char *id,
                          long long balance, long long trading,
                          example_check_t *ck)
{
    account_t a;
    if (show_account(env, b, id, &a, ck) != 0)
        return;
    example_expect(
        ck, a.balance == balance && a.trading == trading,
        "%s@%s has balance=%lld trading_balance=%lld, want %lld and %lld", id,
        BANKS[b].name, a.balance, a.trading, balance, trading);
}

/* ---- TCC transfers --------------------------------------------------- */

/* amount from account `from` at bank from_bank to `to` at to_bank (the
 * two may be the same bank). Branch 0 ("01") is the debit at from_bank,
 * branch 1 ("02") the credit at to_bank. */
typedef struct {
    int from_bank;
    const char *from;
    int to_bank;
    const char *to;
    long long amount;
} transfer_t;

enum { BR_DEBIT, BR_CREDIT, N_BRANCHES };

/* "host:port/bank.v1.Bank/<method>" */
static const char *target(const char *addr, const char *method, char *buf,
                          size_t len)
{
    snprintf(buf, len, "%s/bank.v1.Bank/%s", addr, method);
    return buf;
}

/* The bank of a transfer's branch br (BR_DEBIT or BR_CREDIT). */
static int branch_bank(const transfer_t *t, int br)
{
    return br == BR_DEBIT ? t->from_bank : t->to_bank;
}

/* The payload of a transfer's branch br. */
static void branch_payload(const transfer_t *t, int br, char *buf, size_t len)
{
    snprintf(buf, len, "account=%s amount=%lld",
             br == BR_DEBIT ? t->from : t->to,
             br == BR_DEBIT ? -t->amount : t->amount);
}

static trellis_options_t trans_options(int wait)
{
    return (trellis_options_t){.wait_result = wait,
                               .retry_interval_ms = RETRY_INTERVAL_MS,
                               .request_timeout_ms = REQUEST_TIMEOUT_MS,
                               .timeout_to_fail_ms = FINAL_TIMEOUT_MS};
}

/* Register branch br and call its try. The try's rc; err says why. */
static trellis_rc_t call_try(const env_t *env, trellis_tcc_t *t,
                             const transfer_t *tr, int br, char *err,
                             size_t errlen)
{
    char try_t[TARGET_MAX], conf_t[TARGET_MAX], canc_t[TARGET_MAX], pl[128];
    int b = branch_bank(tr, br);
    branch_payload(tr, br, pl, sizeof pl);
    return trellis_tcc_call_branch(
        t, target(env->bank[b], "TransTry", try_t, sizeof try_t),
        target(env->bank[b], "TransConfirm", conf_t, sizeof conf_t),
        target(env->bank[b], "TransCancel", canc_t, sizeof canc_t), pl,
        strlen(pl), NULL, NULL, err, errlen);
}

/* Begin a new transaction; NULL with a message printed. */
static trellis_tcc_t *begin(const env_t *env, int wait, char *gid,
                            size_t gidlen)
{
    char err[256];
    trellis_tcc_t *t = NULL;
    trellis_options_t o = trans_options(wait);
    if (trellis_new_gid(env->client, gid, gidlen, err, sizeof err) !=
            TRELLIS_OK ||
        trellis_tcc_begin(env->client, gid, &o, &t, err, sizeof err) !=
            TRELLIS_OK) {
        printf("   begin: %s\n", err);
        return NULL;
    }
    return t;
}

/* Both tries, the debit first. Returns the first non-OK rc (err says
 * why), after which no further try is sent. */
static trellis_rc_t both_tries(const env_t *env, trellis_tcc_t *t,
                               const transfer_t *tr, char *err, size_t errlen)
{
    trellis_rc_t rc = TRELLIS_OK;
    for (int br = 0; br < N_BRANCHES && rc == TRELLIS_OK; br++)
        rc = call_try(env, t, tr, br, err, errlen);
    return rc;
}

/* Query until final or the deadline; the last answer (NULL on error). */
static trellis_trans_info_t *query_final(const env_t *env, const char *gid,
                                         int64_t timeout_ms)
{
    int64_t deadline = harness_mono_ms() + timeout_ms;
    char err[256];
    for (;;) {
        trellis_trans_info_t *info = NULL;
        if (trellis_query(env->client, gid, &info, err, sizeof err) !=
            TRELLIS_OK) {
            printf("   query %s: %s\n", gid, err);
            return NULL;
        }
        if (example_is_final(info->status) || harness_mono_ms() >= deadline)
            return info;
        trellis_trans_info_free(info);
        harness_sleep_ms(20);
    }
}

static void print_tm_report(const trellis_trans_info_t *info,
                            const transfer_t *tr)
{
    example_print_tm_status(info);
    for (size_t i = 0; i < info->n_branches; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        printf("   TM: branch %s (%s %s@%s):", b->branch_id,
               i == BR_DEBIT ? "debit" : "credit",
               i == BR_DEBIT ? tr->from : tr->to,
               i < N_BRANCHES ? BANKS[branch_bank(tr, (int)i)].name : "?");
        example_print_ops(b);
    }
}

/* ---- what the banks printed ----------------------------------------- */

/* The banks' lines about gid, merged in time order. */
static void print_said(const env_t *env, const char *gid)
{
    example_print_said(env->log, N_BANKS, gid, "banks");
}

/* Report the TM's view and the banks' lines; the final info (or NULL). */
static trellis_trans_info_t *report(const env_t *env, const char *gid,
                                    const transfer_t *tr)
{
    trellis_trans_info_t *info = query_final(env, gid, FINAL_TIMEOUT_MS);
    if (info)
        print_tm_report(info, tr);
    print_said(env, gid);
    return info;
}

/* ---- scenarios: one transfer each ----------------------------------- */

static void scenario_transfer_ok(env_t *env, example_check_t *ck)
{
    transfer_t tr = {BANK_A, "alice", BANK_B, "bob", 30};
    char gid[GID_MAX], err[256], reason[256] = "";
    trellis_trans_status_t st = 0;
    if (seed(env, BANK_A, "alice", 100) || seed(env, BANK_B, "bob", 20)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   alice@bank-a has 100, bob@bank-b has 20; alice sends 30\n");
    trellis_tcc_t *t = begin(env, 1, gid, sizeof gid);
    if (!example_expect(ck, t != NULL, "begin failed"))
        return;
    trellis_rc_t rc = both_tries(env, t, &tr, err, sizeof err);
    if (example_expect(ck, rc == TRELLIS_OK, "a try failed: rc %d: %s", rc,
                       err)) {
        rc = trellis_tcc_submit(t, &st, reason, sizeof reason, err, sizeof err);
        printf("   both tries succeeded; submitted: %s\n",
               rc ? err : trellis_trans_status_name(st));
    } else {
        trellis_tcc_abort(t, "a try failed", NULL, err, sizeof err);
    }
    trellis_tcc_free(t);
    trellis_trans_info_t *info = report(env, gid, &tr);
    example_expect(ck, info && info->status == TRELLIS_TRANS_SUCCEEDED,
                   "TM status should be succeeded");
    trellis_trans_info_free(info);
    check_account(env, BANK_A, "alice", 70, 0, ck);
    check_account(env, BANK_B, "bob", 50, 0, ck);
}

static void scenario_insufficient(env_t *env, example_check_t *ck)
{
    transfer_t tr = {BANK_A, "carol", BANK_B, "dave", 50};
    char gid[GID_MAX], err[256], why[300];
    trellis_trans_status_t st = 0;
    if (seed(env, BANK_A, "carol", 10) || seed(env, BANK_B, "dave", 0)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   carol@bank-a has 10, dave@bank-b has 0; carol sends 50\n");
    trellis_tcc_t *t = begin(env, 1, gid, sizeof gid);
    if (!example_expect(ck, t != NULL, "begin failed"))
        return;
    trellis_rc_t rc = both_tries(env, t, &tr, err, sizeof err);
    printf("   the try answered rc %d: %s\n", rc, rc ? err : "ok");
    example_expect(ck,
                   rc == TRELLIS_ABORTED && strstr(err, "insufficient funds"),
                   "bank-a's try should refuse with \"insufficient funds\"");
    snprintf(why, sizeof why, "transfer refused: %s", err);
    rc = trellis_tcc_abort(t, why, &st, err, sizeof err);
    printf("   aborted: %s\n", rc ? err : trellis_trans_status_name(st));
    trellis_tcc_free(t);
    trellis_trans_info_t *info = report(env, gid, &tr);
    example_expect(ck, info && info->status == TRELLIS_TRANS_FAILED,
                   "TM status should be failed");
    example_expect(ck,
                   info && info->reason && strstr(info->reason, "insufficient"),
                   "TM reason should name the refusal");
    example_expect(ck, info && info->n_branches == 1,
                   "only bank-a's branch should be registered");
    trellis_trans_info_free(info);
    check_account(env, BANK_A, "carol", 10, 0, ck);
    check_account(env, BANK_B, "dave", 0, 0, ck);
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
static void receiver_down_phase2(env_t *env, trellis_tcc_t *t, const char *gid,
                                 example_check_t *ck)
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
    trellis_trans_info_t *info = query_final(env, gid, 0);
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
    check_account(env, BANK_A, "erin", 70, 0, ck);
    example_expect(ck, harness_server_restart(env->bank_srv[BANK_B]) == 0,
                   "bank-b did not restart");
    printf("   bank-b restarted on the same port %s\n", env->bank[BANK_B]);
}

static void scenario_receiver_down(env_t *env, example_check_t *ck)
{
    transfer_t tr = {BANK_A, "erin", BANK_B, "frank", 30};
    char gid[GID_MAX], err[256];
    if (seed(env, BANK_A, "erin", 100) || seed(env, BANK_B, "frank", 0)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   erin@bank-a has 100, frank@bank-b has 0; erin sends 30\n");
    trellis_tcc_t *t = begin(env, 0, gid, sizeof gid);
    if (!example_expect(ck, t != NULL, "begin failed"))
        return;
    trellis_rc_t rc = both_tries(env, t, &tr, err, sizeof err);
    if (example_expect(ck, rc == TRELLIS_OK, "a try failed: rc %d: %s", rc,
                       err))
        receiver_down_phase2(env, t, gid, ck);
    else
        trellis_tcc_abort(t, "a try failed", NULL, err, sizeof err);
    trellis_tcc_free(t);
    int64_t t0 = harness_mono_ms();
    trellis_trans_info_t *info = report(env, gid, &tr);
    printf("   final %lld ms after the restart\n",
           (long long)(harness_mono_ms() - t0));
    const trellis_op_info_t *cb = branch_op(info, 1, TRELLIS_OP_CONFIRM);
    example_expect(ck, info && info->status == TRELLIS_TRANS_SUCCEEDED,
                   "TM status should be succeeded");
    example_expect(ck,
                   cb && cb->status == TRELLIS_OP_SUCCEEDED && cb->attempts > 1,
                   "bank-b's confirm should have succeeded after retries");
    trellis_trans_info_free(info);
    check_account(env, BANK_A, "erin", 70, 0, ck);
    check_account(env, BANK_B, "frank", 30, 0, ck);
}

/* ---- a pending credit is not money yet ------------------------------ */

/* xena@bank-a has 0. g1 (yuri@bank-b sends her 50) is tried and left
 * pending; g2 (xena sends those 50 on to zoe@bank-b) is tried while g1 is
 * pending: xena's bank must refuse it, since g1 may still be cancelled.
 * Then g1 is cancelled and g2 finished as its tries allow (submit if they
 * passed: the reproduction of the hole, where xena ends at -50; abort if
 * refused). Nobody's money moves. */
static void scenario_pending_credit(env_t *env, example_check_t *ck)
{
    transfer_t g1 = {BANK_B, "yuri", BANK_A, "xena", 50};
    transfer_t g2 = {BANK_A, "xena", BANK_B, "zoe", 50};
    char gid1[GID_MAX], gid2[GID_MAX], err[256], reason[256];
    trellis_trans_status_t st = 0;
    if (seed(env, BANK_A, "xena", 0) || seed(env, BANK_B, "yuri", 50) ||
        seed(env, BANK_B, "zoe", 0)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   xena@bank-a has 0, yuri@bank-b 50, zoe@bank-b 0\n");
    trellis_tcc_t *t1 = begin(env, 1, gid1, sizeof gid1);
    if (!example_expect(ck, t1 != NULL, "begin g1 failed"))
        return;
    trellis_rc_t rc = both_tries(env, t1, &g1, err, sizeof err);
    printf("   g1 %s (yuri sends xena 50): tries %s; left pending\n", gid1,
           rc ? err : "ok");
    example_expect(ck, rc == TRELLIS_OK, "g1's tries should pass: rc %d: %s",
                   rc, err);
    account_t x;
    if (show_account(env, BANK_A, "xena", &x, ck) == 0)
        example_expect(ck, x.balance == 0, "g1's credit is not confirmed yet");
    trellis_tcc_t *t2 = begin(env, 1, gid2, sizeof gid2);
    trellis_rc_t rc2 = TRELLIS_UNAVAILABLE;
    if (example_expect(ck, t2 != NULL, "begin g2 failed")) {
        rc2 = both_tries(env, t2, &g2, err, sizeof err);
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
    trellis_trans_info_t *i1 = report(env, gid1, &g1);
    trellis_trans_info_t *i2 = t2 ? report(env, gid2, &g2) : NULL;
    example_expect(ck, i1 && i1->status == TRELLIS_TRANS_FAILED,
                   "g1 should be failed");
    example_expect(ck, i2 && i2->status == TRELLIS_TRANS_FAILED,
                   "g2 should be failed");
    trellis_trans_info_free(i1);
    trellis_trans_info_free(i2);
    check_account(env, BANK_A, "xena", 0, 0, ck);
    check_account(env, BANK_B, "yuri", 50, 0, ck);
    check_account(env, BANK_B, "zoe", 0, 0, ck);
}

/* ---- item 13: bounded amounts, a guarded Seed ----------------------- */

/* The try of one branch of tr in a transaction of its own, then abort
 * (checked: the cancel must succeed, whatever the try said); the try's rc
 * and err. */
static trellis_rc_t lone_try(const env_t *env, const transfer_t *tr, int br,
                             char *err, size_t errlen, example_check_t *ck)
{
    char gid[GID_MAX], e2[256];
    trellis_trans_status_t st = 0;
    trellis_tcc_t *t = begin(env, 1, gid, sizeof gid);
    if (!t) {
        snprintf(err, errlen, "begin failed");
        return TRELLIS_UNAVAILABLE;
    }
    trellis_rc_t rc = call_try(env, t, tr, br, err, errlen);
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
static void scenario_item13(env_t *env, example_check_t *ck)
{
    char gid[GID_MAX], err[256];
    if (seed(env, BANK_B, "ivan", 100) || seed(env, BANK_A, "judy", 100)) {
        example_expect(ck, 0, "seeding failed");
        return;
    }
    printf("   ivan@bank-b has 100, judy@bank-a has 100\n");

    transfer_t huge = {BANK_A, "nobody", BANK_B, "ivan", 9223372036854775000LL};
    trellis_rc_t rc = lone_try(env, &huge, BR_CREDIT, err, sizeof err, ck);
    printf("   a credit of %lld to ivan: try %s\n", huge.amount,
           rc ? err : "passed");
    example_expect(ck, rc == TRELLIS_ABORTED && strstr(err, "amount"),
                   "a credit of %lld should be refused at its try, naming "
                   "the amount (its confirm would overflow for ever)",
                   huge.amount);
    transfer_t small = {BANK_A, "nobody", BANK_B, "ivan", 5};
    rc = lone_try(env, &small, BR_CREDIT, err, sizeof err, ck);
    example_expect(ck, rc == TRELLIS_OK, "a credit of 5 should pass: %s", err);
    check_account(env, BANK_B, "ivan", 100, 0, ck);

    /* judy's debit of 30 is frozen; a Seed of judy must be refused. */
    transfer_t d = {BANK_A, "judy", BANK_B, "ivan", 30};
    trellis_tcc_t *t = begin(env, 1, gid, sizeof gid);
    if (!example_expect(ck, t != NULL, "begin failed"))
        return;
    rc = call_try(env, t, &d, BR_DEBIT, err, sizeof err);
    example_expect(ck, rc == TRELLIS_OK, "judy's try should pass: %s", err);
    int seeded = seed(env, BANK_A, "judy", 0) == 0;
    example_expect(ck, !seeded,
                   "Seed of judy should be refused while 30 of hers are "
                   "frozen");
    check_account(env, BANK_A, "judy", 100, -30, ck);
    rc = trellis_tcc_abort(t, "item13: release judy", NULL, err, sizeof err);
    trellis_tcc_free(t);
    trellis_trans_info_free(report(env, gid, &d));
    check_account(env, BANK_A, "judy", 100, 0, ck);

    /* Whoever reaches the port without the token cannot seed. */
    int open =
        bank_call(env->bank[BANK_B], "Seed", "account=ivan balance=1000000",
                  NULL, err, sizeof err) == 0;
    printf("   Seed without the token: %s\n", open ? "accepted" : err);
    example_expect(ck, !open, "Seed without the seed token should be refused");
    open = bank_call(env->bank[BANK_B], "Seed",
                     "account=ivan balance=1000000 token=guess", NULL, err,
                     sizeof err) == 0;
    printf("   Seed with a wrong token: %s\n", open ? "accepted" : err);
    example_expect(ck, !open, "Seed with a wrong token should be refused");
    check_account(env, BANK_B, "ivan", 100, 0, ck);
}

/* ---- storm ----------------------------------------------------------- */

typedef enum {
    KIND_PLAIN,        /* tries, submit (abort if a try fails) */
    KIND_DUPLICATES,   /* plain, then every op delivered once more */
    KIND_CANCEL_FIRST, /* bank-a's cancel before its try, then abort */
    KIND_CHANGE_MIND,  /* both tries, then abort anyway */
} kind_t;

typedef struct {
    transfer_t tr;
    char from[16], to[16];
    kind_t kind;
    int hold_ms; /* KIND_CHANGE_MIND: how long to hold before aborting */
    char gid[GID_MAX];
    trellis_trans_status_t want; /* what the initiator decided; 0: unknown */
    trellis_trans_status_t got;  /* the TM's final word */
} storm_item_t;

typedef struct {
    env_t *env;
    const char *bank[N_BANKS]; /* the chaos instances */
    const char *log[N_BANKS];  /* and their logs */
    storm_item_t *items;
    int n;
    atomic_int next;
    atomic_int stop;
    atomic_long samples;
    atomic_int dup_sent, dup_failed;
    example_check_t *ck;
} storm_t;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Storm account k (0 .. N_BANKS * STORM_ACCOUNTS - 1): its bank and id. */
static int storm_account(int k, char *id, size_t len)
{
    int b = k / STORM_ACCOUNTS;
    snprintf(id, len, "s-%c%d", b == BANK_A ? 'a' : 'b', k % STORM_ACCOUNTS);
    return b;
}

/* Random source and destination among every storm account of both banks
 * (never the same account; maybe the same bank), so money flows both
 * ways. */
static void storm_plan(storm_t *s, uint64_t seed)
{
    const int n_acc = N_BANKS * STORM_ACCOUNTS;
    for (int i = 0; i < s->n; i++) {
        storm_item_t *it = &s->items[i];
        uint64_t r = mix(seed ^ mix((uint64_t)i));
        int from = (int)(r % (uint64_t)n_acc);
        int to = (from + 1 + (int)((r >> 8) % (uint64_t)(n_acc - 1))) % n_acc;
        it->tr.from_bank = storm_account(from, it->from, sizeof it->from);
        it->tr.to_bank = storm_account(to, it->to, sizeof it->to);
        it->tr.from = it->from;
        it->tr.to = it->to;
        it->tr.amount = 1 + (long long)((r >> 16) % STORM_MAX_AMOUNT);
        unsigned k = (unsigned)((r >> 32) % 10);
        it->kind = k < 2   ? KIND_DUPLICATES
                   : k < 3 ? KIND_CANCEL_FIRST
                   : k < 4 ? KIND_CHANGE_MIND
                           : KIND_PLAIN;
        it->hold_ms = (int)((r >> 40) % (STORM_MAX_HOLD_MS + 1));
    }
}

/* Send op (TransTry/TransConfirm/TransCancel) of branch br of it
 * directly, with the metadata trellisd would send. The rc. */
static trellis_rc_t send_op(storm_t *s, const storm_item_t *it, int br,
                            const char *method, const char *op)
{
    const char *keys[] = {"dtm-gid", "dtm-trans_type", "dtm-branch_id",
                          "dtm-op"};
    const char *vals[] = {it->gid, "tcc", br == BR_DEBIT ? "01" : "02", op};
    char full[64], pl[128], err[256];
    uint8_t *reply = NULL;
    size_t len = 0;
    snprintf(full, sizeof full, "/bank.v1.Bank/%s", method);
    branch_payload(&it->tr, br, pl, sizeof pl);
    trellis_rc_t rc = trellis_call_unary(s->bank[branch_bank(&it->tr, br)],
                                         full, pl, strlen(pl), keys, vals, 4,
                                         5000, &reply, &len, err, sizeof err);
    free(reply);
    return rc;
}

/* Deliver once more every op the TM delivered (same metadata): the
 * barrier must make each a no-op. The chaos may drop some. */
static void send_duplicates(storm_t *s, const storm_item_t *it, int n_branches,
                            int committed)
{
    for (int br = 0; br < n_branches; br++) {
        const char *m = committed ? "TransConfirm" : "TransCancel";
        const char *op = committed ? "confirm" : "cancel";
        int ok = send_op(s, it, br, "TransTry", "try") != TRELLIS_UNAVAILABLE;
        ok &= send_op(s, it, br, m, op) != TRELLIS_UNAVAILABLE;
        atomic_fetch_add(&s->dup_sent, 2);
        atomic_fetch_add(&s->dup_failed, !ok);
    }
}

/* Run transfer it as its kind says; records it->want. */
static void storm_one(storm_t *s, storm_item_t *it)
{
    char err[256], reason[256];
    trellis_trans_status_t st = 0;
    env_t tmp = *s->env; /* the chaos banks as targets */
    for (int b = 0; b < N_BANKS; b++)
        snprintf(tmp.bank[b], sizeof tmp.bank[b], "%s", s->bank[b]);
    trellis_tcc_t *t = begin(&tmp, 1, it->gid, sizeof it->gid);
    if (!t) {
        it->gid[0] = '\0';
        return;
    }
    if (it->kind == KIND_CANCEL_FIRST)
        send_op(s, it, BR_DEBIT, "TransCancel", "cancel");
    trellis_rc_t rc = both_tries(&tmp, t, &it->tr, err, sizeof err);
    int n_branches = rc == TRELLIS_OK ? 2 : 1; /* registered, at most */
    if (rc == TRELLIS_OK && it->kind != KIND_CHANGE_MIND &&
        it->kind != KIND_CANCEL_FIRST) {
        rc = trellis_tcc_submit(t, &st, reason, sizeof reason, err, sizeof err);
        it->want = TRELLIS_TRANS_SUCCEEDED;
    } else {
        if (rc == TRELLIS_OK && it->kind == KIND_CHANGE_MIND)
            harness_sleep_ms(it->hold_ms); /* its credit pending meanwhile */
        snprintf(reason, sizeof reason, "%s",
                 rc == TRELLIS_OK ? "initiator changed its mind" : err);
        rc = trellis_tcc_abort(t, reason, &st, err, sizeof err);
        it->want = TRELLIS_TRANS_FAILED;
    }
    if (rc != TRELLIS_OK)
        it->want = 0; /* the call failed: the TM decides (timeout) */
    trellis_tcc_free(t);
    if (it->kind == KIND_DUPLICATES && it->want)
        send_duplicates(s, it, n_branches, it->want == TRELLIS_TRANS_SUCCEEDED);
}

static void *storm_worker(void *arg)
{
    storm_t *s = arg;
    int i;
    while ((i = atomic_fetch_add(&s->next, 1)) < s->n)
        storm_one(s, &s->items[i]);
    return NULL;
}

/* Every account of both banks: balance >= 0, balance + trading >= 0, and
 * trading <= 0 (only pending debits are frozen). */
static void sample_once(storm_t *s, int final)
{
    for (int b = 0; b < N_BANKS; b++) {
        accounts_t a;
        char err[256];
        if (read_accounts(s->bank[b], &a, err, sizeof err) != 0)
            continue; /* Accounts is not part of the chaos; rare */
        for (size_t i = 0; i < a.n; i++) {
            const account_t *x = &a.a[i];
            example_expect(
                s->ck, x->balance >= 0 && x->balance + x->trading >= 0,
                "%s%s@%s: balance=%lld trading_balance=%lld: overdrawn",
                final ? "" : "during the storm: ", x->id, BANKS[b].name,
                x->balance, x->trading);
            example_expect(
                s->ck, x->trading <= 0,
                "%s%s@%s: trading_balance=%lld > 0: a credit was frozen",
                final ? "" : "during the storm: ", x->id, BANKS[b].name,
                x->trading);
        }
    }
    atomic_fetch_add(&s->samples, 1);
}

static void *storm_sampler(void *arg)
{
    storm_t *s = arg;
    while (!atomic_load(&s->stop)) {
        sample_once(s, 0);
        harness_sleep_ms(5);
    }
    return NULL;
}

/* Wait for every transaction to be final and check each against its
 * initiator's decision. */
static void storm_collect(storm_t *s)
{
    int n_ok = 0, n_failed = 0;
    for (int i = 0; i < s->n; i++) {
        storm_item_t *it = &s->items[i];
        if (!example_expect(s->ck, it->gid[0], "transfer %d never began", i))
            continue;
        trellis_trans_info_t *info =
            query_final(s->env, it->gid, FINAL_TIMEOUT_MS);
        it->got = info ? info->status : 0;
        n_ok += it->got == TRELLIS_TRANS_SUCCEEDED;
        n_failed += it->got == TRELLIS_TRANS_FAILED;
        example_expect(s->ck, example_is_final(it->got), "%s is %s, not final",
                       it->gid, trellis_trans_status_name(it->got));
        example_expect(s->ck, !it->want || it->got == it->want,
                       "%s is %s, its initiator decided %s", it->gid,
                       trellis_trans_status_name(it->got),
                       trellis_trans_status_name(it->want));
        trellis_trans_info_free(info);
    }
    printf("   %d transactions: %d succeeded, %d failed\n", s->n, n_ok,
           n_failed);
}

/* The expected balance of account id (s-a<i> or s-b<i>): the start plus
 * every SUCCEEDED transfer that touched it. */
static long long expected_balance(const storm_t *s, const char *id)
{
    long long v = STORM_START[atoi(id + 3) % STORM_ACCOUNTS];
    for (int i = 0; i < s->n; i++) {
        const storm_item_t *it = &s->items[i];
        if (it->got != TRELLIS_TRANS_SUCCEEDED)
            continue;
        v -= !strcmp(it->from, id) ? it->tr.amount : 0;
        v += !strcmp(it->to, id) ? it->tr.amount : 0;
    }
    return v;
}

static void storm_check_final(storm_t *s)
{
    long long total = 0;
    for (int b = 0; b < N_BANKS; b++) {
        accounts_t a;
        char err[256];
        if (!example_expect(s->ck,
                            read_accounts(s->bank[b], &a, err, sizeof err) == 0,
                            "Accounts at %s: %s", BANKS[b].name, err))
            return;
        for (size_t i = 0; i < a.n; i++) {
            const account_t *x = &a.a[i];
            if (strncmp(x->id, "s-", 2) != 0)
                continue;
            long long want = expected_balance(s, x->id);
            total += x->balance + x->trading;
            printf("   %s@%s: balance=%lld trading_balance=%lld (want %lld)\n",
                   x->id, BANKS[b].name, x->balance, x->trading, want);
            example_expect(
                s->ck, x->balance == want && x->trading == 0,
                "%s@%s: balance=%lld trading_balance=%lld, want %lld and 0",
                x->id, BANKS[b].name, x->balance, x->trading, want);
        }
    }
    long long start = 0;
    for (int i = 0; i < STORM_ACCOUNTS; i++)
        start += N_BANKS * STORM_START[i];
    printf("   total money: %lld (at the start %lld)\n", total, start);
    example_expect(s->ck, total == start, "total money changed: %lld, was %lld",
                   total, start);
    sample_once(s, 1);
}

/* How often the chaos banks saw each barrier outcome and fault, from
 * their logs: evidence that the storm exercised what it claims to. */
static void storm_print_effects(const storm_t *s)
{
    static const struct {
        const char *label, *needle;
    } what[] = {
        {"done", "-> done"},
        {"duplicate", "-> duplicate"},
        {"empty cancel", "-> empty"},
        {"hanging try", "-> hanging"},
        {"refused", "-> refused"},
        {"lost reply (chaos)", "then chaos: UNAVAILABLE"},
        {"unavailable (chaos)", "chaos: UNAVAILABLE before"},
        {"delayed (chaos)", "slept first"},
    };
    enum { N_WHAT = sizeof what / sizeof what[0] };
    int count[N_WHAT] = {0};
    char line[1024];
    for (int b = 0; b < N_BANKS; b++) {
        FILE *f = fopen(s->log[b], "r");
        while (f && fgets(line, sizeof line, f))
            for (int k = 0; k < N_WHAT; k++)
                count[k] += strstr(line, what[k].needle) != NULL;
        if (f)
            fclose(f);
    }
    printf("   the chaos banks saw:");
    for (int k = 0; k < N_WHAT; k++)
        printf("%s %s %d", k ? "," : "", what[k].label, count[k]);
    printf("\n");
}

static int storm_seed(const env_t *env, const char *bank[N_BANKS])
{
    char payload[128], err[256];
    for (int b = 0; b < N_BANKS; b++)
        for (int i = 0; i < STORM_ACCOUNTS; i++) {
            snprintf(
                payload, sizeof payload, "account=s-%c%d balance=%lld token=%s",
                b == BANK_A ? 'a' : 'b', i, STORM_START[i], env->seed_token);
            if (bank_call(bank[b], "Seed", payload, NULL, err, sizeof err)) {
                printf("   seed: %s\n", err);
                return -1;
            }
        }
    return 0;
}

/* Run the initiators and the sampler; wait for them. */
static void storm_run(storm_t *s)
{
    int n_threads = s->env->threads;
    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    pthread_t sampler;
    int64_t t0 = harness_mono_ms();
    if (!th || pthread_create(&sampler, NULL, storm_sampler, s) != 0) {
        example_expect(s->ck, 0, "cannot start threads");
        free(th);
        return;
    }
    int started = 0;
    for (; started < n_threads; started++)
        if (pthread_create(&th[started], NULL, storm_worker, s) != 0)
            break;
    if (started == 0)
        storm_worker(s);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    printf("   initiators done after %lld ms (%d duplicate deliveries sent)\n",
           (long long)(harness_mono_ms() - t0), atomic_load(&s->dup_sent));
    storm_collect(s);
    atomic_store(&s->stop, 1);
    pthread_join(sampler, NULL);
    printf("   sampler read both banks %ld times during the storm\n",
           atomic_load(&s->samples));
    free(th);
}

static void scenario_storm(env_t *env, example_check_t *ck)
{
    char chaos[2][64];
    harness_server_t *srv[N_BANKS];
    storm_t s = {.env = env, .n = env->transfers, .ck = ck};
    static const char *const names[N_BANKS] = {"bank-a-storm", "bank-b-storm"};
    for (int b = 0; b < N_BANKS; b++) {
        snprintf(chaos[b], sizeof chaos[b], "%" PRIu64 ":%s",
                 env->seed + (uint64_t)b, STORM_CHAOS_RATE);
        srv[b] = start_bank(env, b, names[b], chaos[b]);
        if (!example_expect(ck, srv[b] != NULL, "cannot start the chaos banks"))
            return;
        s.bank[b] = harness_server_addr(srv[b]);
        s.log[b] = harness_proc_log(harness_server_proc(srv[b]));
    }
    printf("   %d transfers from %d initiator threads, seed %" PRIu64
           ", both ways among s-a0..s-a%d@bank-a and s-b0..s-b%d@bank-b "
           "(each bank's start:",
           s.n, env->threads, env->seed, STORM_ACCOUNTS - 1,
           STORM_ACCOUNTS - 1);
    for (int i = 0; i < STORM_ACCOUNTS; i++)
        printf(" %lld", STORM_START[i]);
    printf(")\n");
    if (!(s.items = calloc((size_t)s.n, sizeof *s.items)) ||
        storm_seed(env, s.bank) != 0) {
        example_expect(ck, 0, "cannot set up the storm");
        free(s.items);
        return;
    }
    storm_plan(&s, env->seed);
    storm_run(&s);
    storm_print_effects(&s);
    storm_check_final(&s);
    free(s.items);
}

/* ---- running scenarios ----------------------------------------------- */

typedef struct {
    const char *name, *story;
    void (*run)(env_t *env, example_check_t *ck);
} scenario_t;

static const scenario_t SCENARIOS[] = {
    {"transfer-ok", "alice@bank-a sends 30 to bob@bank-b",
     scenario_transfer_ok},
    {"insufficient-funds",
     "carol@bank-a sends 50 but has 10: her bank refuses, nothing moves",
     scenario_insufficient},
    {"receiver-down",
     "bank-b dies after both tries; trellisd retries its confirm until it is "
     "back",
     scenario_receiver_down},
    {"pending-credit-not-spendable",
     "xena has 0 and 50 pending to come in; she may not send them on yet",
     scenario_pending_credit},
    {"item13-amount-and-seed",
     "a credit near the BIGINT limit, a Seed over frozen money, a Seed "
     "without the token: all refused",
     scenario_item13},
    {"storm",
     "concurrent transfers against banks with chaos, duplicate and "
     "out-of-order deliveries",
     scenario_storm},
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])

static int run_scenario(env_t *env, const scenario_t *sc)
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

static int parse_args(int argc, char **argv, env_t *env, const char **only)
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
    env_t env = {.transfers = 200, .threads = 8, .seed = 42};
    const char *only = "";
    if (parse_args(argc, argv, &env, &only) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    int failed = 0;
    if (setup(&env) != 0) {
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
