/*
 * transfer_env.c: the processes example-bank-transfer-tcc starts (a
 * throwaway MariaDB, trellisd, the two banks) and the banks' own methods
 * it calls (Seed, Accounts) to set and check balances. See transfer.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const xfer_bank_t XFER_BANKS[N_BANKS] = {{"bank-a", "bank_a"},
                                         {"bank-b", "bank_b"}};

/* ---- processes ----------------------------------------------------------- */

static int start_tm(xfer_env_t *env)
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
harness_server_t *xfer_start_bank(xfer_env_t *env, int b, const char *name,
                                  const char *chaos)
{
    const char *args[] = {"--name",
                          name,
                          "--database",
                          XFER_BANKS[b].database,
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
           harness_server_addr(s), XFER_BANKS[b].database,
           chaos ? ", chaos " : "", chaos ? chaos : "");
    return s;
}

int xfer_setup(xfer_env_t *env)
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
        harness_server_t *s = xfer_start_bank(env, b, XFER_BANKS[b].name, NULL);
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

/* ---- the banks ----------------------------------------------------------- */

/* Call /bank.v1.Bank/<method> at addr with payload; the reply as a
 * malloc'd C string in *text (may be NULL). 0, or -1 with err. */
int xfer_bank_call(const char *addr, const char *method, const char *payload,
                   char **text, char *err, size_t errlen)
{
    char full[64];
    snprintf(full, sizeof full, "/bank.v1.Bank/%s", method);
    return example_call_text(addr, full, payload, text, err, errlen);
}

int xfer_seed(const xfer_env_t *env, int b, const char *account, long long bal)
{
    char payload[128], err[256];
    snprintf(payload, sizeof payload, "account=%s balance=%lld token=%s",
             account, bal, env->seed_token);
    if (xfer_bank_call(env->bank[b], "Seed", payload, NULL, err, sizeof err) ==
        0)
        return 0;
    printf("   seed %s@%s: %s\n", account, XFER_BANKS[b].name, err);
    return -1;
}

/* Every account of the bank at addr into *out. 0 or -1 with err. */
int xfer_read_accounts(const char *addr, xfer_accounts_t *out, char *err,
                       size_t errlen)
{
    char *text = NULL, *save = NULL;
    out->n = 0;
    if (xfer_bank_call(addr, "Accounts", "", &text, err, errlen) != 0)
        return -1;
    for (char *l = strtok_r(text, "\n", &save); l && out->n < MAX_ACCOUNTS;
         l = strtok_r(NULL, "\n", &save)) {
        xfer_account_t *a = &out->a[out->n];
        if (sscanf(l, "account=%71s balance=%lld trading_balance=%lld", a->id,
                   &a->balance, &a->trading) == 3)
            out->n++;
    }
    free(text);
    return 0;
}

static const xfer_account_t *account_find(const xfer_accounts_t *s,
                                          const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->a[i].id, id))
            return &s->a[i];
    return NULL;
}

/* Read and print one account into *out. 0, or -1 with a failed check. */
int xfer_show_account(const xfer_env_t *env, int b, const char *id,
                      xfer_account_t *out, example_check_t *ck)
{
    xfer_accounts_t s;
    char err[256];
    if (!example_expect(
            ck, xfer_read_accounts(env->bank[b], &s, err, sizeof err) == 0,
            "Accounts at %s: %s", XFER_BANKS[b].name, err))
        return -1;
    const xfer_account_t *a = account_find(&s, id);
    if (!example_expect(ck, a != NULL, "%s@%s does not exist", id,
                        XFER_BANKS[b].name))
        return -1;
    printf("   %s@%s: balance=%lld trading_balance=%lld\n", id,
           XFER_BANKS[b].name, a->balance, a->trading);
    *out = *a;
    return 0;
}

/* Print and check one account: balance and trading_balance as wanted. */
void xfer_check_account(const xfer_env_t *env, int b, const char *id,
                        long long balance, long long trading,
                        example_check_t *ck)
{
    xfer_account_t a;
    if (xfer_show_account(env, b, id, &a, ck) != 0)
        return;
    example_expect(
        ck, a.balance == balance && a.trading == trading,
        "%s@%s has balance=%lld trading_balance=%lld, want %lld and %lld", id,
        XFER_BANKS[b].name, a.balance, a.trading, balance, trading);
}
