/*
 * transfer_tcc.c: one TCC transfer through trellisd for
 * example-bank-transfer-tcc — begin, the two branches' tries (the debit
 * first), and what is reported after: the TM's view of the transaction
 * and the banks' lines about it. See transfer.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

#define TARGET_MAX 256

/* ---- TCC transfers ------------------------------------------------------- */

/* "host:port/bank.v1.Bank/<method>" */
static const char *target(const char *addr, const char *method, char *buf,
                          size_t len)
{
    snprintf(buf, len, "%s/bank.v1.Bank/%s", addr, method);
    return buf;
}

/* The bank of a transfer's branch br (BR_DEBIT or BR_CREDIT). */
int xfer_branch_bank(const xfer_transfer_t *t, int br)
{
    return br == BR_DEBIT ? t->from_bank : t->to_bank;
}

/* The payload of a transfer's branch br. */
void xfer_branch_payload(const xfer_transfer_t *t, int br, char *buf,
                         size_t len)
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
trellis_rc_t xfer_call_try(const xfer_env_t *env, trellis_tcc_t *t,
                           const xfer_transfer_t *tr, int br, char *err,
                           size_t errlen)
{
    char try_t[TARGET_MAX], conf_t[TARGET_MAX], canc_t[TARGET_MAX], pl[128];
    int b = xfer_branch_bank(tr, br);
    xfer_branch_payload(tr, br, pl, sizeof pl);
    return trellis_tcc_call_branch(
        t, target(env->bank[b], "TransTry", try_t, sizeof try_t),
        target(env->bank[b], "TransConfirm", conf_t, sizeof conf_t),
        target(env->bank[b], "TransCancel", canc_t, sizeof canc_t), pl,
        strlen(pl), NULL, NULL, err, errlen);
}

/* Begin a new transaction; NULL with a message printed. */
trellis_tcc_t *xfer_begin(const xfer_env_t *env, int wait, char *gid,
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
trellis_rc_t xfer_both_tries(const xfer_env_t *env, trellis_tcc_t *t,
                             const xfer_transfer_t *tr, char *err,
                             size_t errlen)
{
    trellis_rc_t rc = TRELLIS_OK;
    for (int br = 0; br < N_BRANCHES && rc == TRELLIS_OK; br++)
        rc = xfer_call_try(env, t, tr, br, err, errlen);
    return rc;
}

/* Query until final or the deadline; the last answer (NULL on error). */
trellis_trans_info_t *xfer_query_final(const xfer_env_t *env, const char *gid,
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
                            const xfer_transfer_t *tr)
{
    example_print_tm_status(info);
    for (size_t i = 0; i < info->n_branches; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        printf("   TM: branch %s (%s %s@%s):", b->branch_id,
               i == BR_DEBIT ? "debit" : "credit",
               i == BR_DEBIT ? tr->from : tr->to,
               i < N_BRANCHES ? XFER_BANKS[xfer_branch_bank(tr, (int)i)].name
                              : "?");
        example_print_ops(b);
    }
}

/* ---- what the banks printed ---------------------------------------------- */

/* The banks' lines about gid, merged in time order. */
static void print_said(const xfer_env_t *env, const char *gid)
{
    example_print_said(env->log, N_BANKS, gid, "banks");
}

/* Report the TM's view and the banks' lines; the final info (or NULL). */
trellis_trans_info_t *xfer_report(const xfer_env_t *env, const char *gid,
                                  const xfer_transfer_t *tr)
{
    trellis_trans_info_t *info = xfer_query_final(env, gid, FINAL_TIMEOUT_MS);
    if (info)
        print_tm_report(info, tr);
    print_said(env, gid);
    return info;
}
