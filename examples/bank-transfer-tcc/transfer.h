/*
 * transfer.h: what the files of example-bank-transfer-tcc (the driver of
 * the bank-transfer TCC example; transfer.c says what it does) share.
 * Names are xfer_*; the constants are the example's own.
 *
 * The files, a concern each:
 *   transfer.c           — the scenario table, the command line, main;
 *   transfer_env.c       — the processes it starts and the banks' own
 *                          methods (Seed, Accounts): reading and checking
 *                          balances;
 *   transfer_tcc.c       — one TCC transfer through trellisd: begin, the
 *                          tries, the TM's view and the banks' lines;
 *   transfer_scenarios.c — the scenarios of one transfer or two;
 *   transfer_storm.c     — the storm: concurrent transfers against banks
 *                          with chaos, and its invariants.
 */
#ifndef TRANSFER_H
#define TRANSFER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "example_driver.h"
#include "harness.h"
#include "trellis/trellis.h"
#include "trellis/trellis_tcc.h"

#define EX "bank-transfer-tcc"
#define ADDR_MAX 128
#define GID_MAX 64
#define RETRY_INTERVAL_MS 50
#define REQUEST_TIMEOUT_MS 2000
#define CALL_TIMEOUT_MS 20000
#define FINAL_TIMEOUT_MS 30000
#define MAX_ACCOUNTS 64

enum { BANK_A, BANK_B, N_BANKS };

/* The two banks: bank-service --name, and its database. */
typedef struct {
    const char *name;
    const char *database;
} xfer_bank_t;

extern const xfer_bank_t XFER_BANKS[N_BANKS];

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
} xfer_env_t;

/* ---- processes and the banks (transfer_env.c) ---------------------------- */

/* Start MariaDB, trellisd and both banks; make the client. 0 or -1. */
int xfer_setup(xfer_env_t *env);

/* Start bank-service for bank b as process `name`, with chaos if not
 * NULL. Returns the server or NULL. */
harness_server_t *xfer_start_bank(xfer_env_t *env, int b, const char *name,
                                  const char *chaos);

typedef struct {
    char id[72];
    long long balance, trading;
} xfer_account_t;

typedef struct {
    size_t n;
    xfer_account_t a[MAX_ACCOUNTS];
} xfer_accounts_t;

/* Call /bank.v1.Bank/<method> at addr with payload; the reply as a
 * malloc'd C string in *text (may be NULL). 0, or -1 with err. */
int xfer_bank_call(const char *addr, const char *method, const char *payload,
                   char **text, char *err, size_t errlen);

/* Seed account at bank b with balance bal (the banks' token). 0 or -1. */
int xfer_seed(const xfer_env_t *env, int b, const char *account, long long bal);

/* Every account of the bank at addr into *out. 0 or -1 with err. */
int xfer_read_accounts(const char *addr, xfer_accounts_t *out, char *err,
                       size_t errlen);

/* Read and print one account into *out. 0, or -1 with a failed check. */
int xfer_show_account(const xfer_env_t *env, int b, const char *id,
                      xfer_account_t *out, example_check_t *ck);

/* Print and check one account: balance and trading_balance as wanted. */
void xfer_check_account(const xfer_env_t *env, int b, const char *id,
                        long long balance, long long trading,
                        example_check_t *ck);

/* ---- one TCC transfer (transfer_tcc.c) ----------------------------------- */

/* amount from account `from` at bank from_bank to `to` at to_bank (the
 * two may be the same bank). Branch 0 ("01") is the debit at from_bank,
 * branch 1 ("02") the credit at to_bank. */
typedef struct {
    int from_bank;
    const char *from;
    int to_bank;
    const char *to;
    long long amount;
} xfer_transfer_t;

enum { BR_DEBIT, BR_CREDIT, N_BRANCHES };

/* The bank of a transfer's branch br (BR_DEBIT or BR_CREDIT). */
int xfer_branch_bank(const xfer_transfer_t *t, int br);

/* The payload of a transfer's branch br. */
void xfer_branch_payload(const xfer_transfer_t *t, int br, char *buf,
                         size_t len);

/* Register branch br and call its try. The try's rc; err says why. */
trellis_rc_t xfer_call_try(const xfer_env_t *env, trellis_tcc_t *t,
                           const xfer_transfer_t *tr, int br, char *err,
                           size_t errlen);

/* Begin a new transaction (wait: submit and abort wait for the outcome);
 * NULL with a message printed. */
trellis_tcc_t *xfer_begin(const xfer_env_t *env, int wait, char *gid,
                          size_t gidlen);

/* Both tries, the debit first. Returns the first non-OK rc (err says
 * why), after which no further try is sent. */
trellis_rc_t xfer_both_tries(const xfer_env_t *env, trellis_tcc_t *t,
                             const xfer_transfer_t *tr, char *err,
                             size_t errlen);

/* Query until final or the deadline; the last answer (NULL on error). */
trellis_trans_info_t *xfer_query_final(const xfer_env_t *env, const char *gid,
                                       int64_t timeout_ms);

/* Report the TM's view and the banks' lines; the final info (or NULL). */
trellis_trans_info_t *xfer_report(const xfer_env_t *env, const char *gid,
                                  const xfer_transfer_t *tr);

/* ---- scenarios (transfer_scenarios.c, transfer_storm.c) ------------------ */

void xfer_scenario_transfer_ok(xfer_env_t *env, example_check_t *ck);
void xfer_scenario_insufficient(xfer_env_t *env, example_check_t *ck);
void xfer_scenario_receiver_down(xfer_env_t *env, example_check_t *ck);
void xfer_scenario_pending_credit(xfer_env_t *env, example_check_t *ck);
void xfer_scenario_item13(xfer_env_t *env, example_check_t *ck);
void xfer_scenario_storm(xfer_env_t *env, example_check_t *ck);

#endif /* TRANSFER_H */
