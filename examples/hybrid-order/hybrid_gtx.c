/*
 * hybrid_gtx.c: one hybrid order of example-hybrid-order through
 * trellis_gtx — the XA order row, the two TCC payment branches and the
 * saga shipment (initiator-run, or a step trellisd runs), then submit or
 * abort; deliveries sent again as a duplicate would be; and the TM's view
 * of the transaction after. See hybrid_order.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hybrid_order.h"
#include "trellis/trellis_gtx.h"

#define TARGET_MAX 256
#define FAIL_TIMEOUT_MS 4000
#define BEGIN_RETRY_MS 3000

static const char *target(const hyb_env_t *env, int svc, const char *method,
                          char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s", env->svc[svc], HYB_SVC[svc].service, method);
    return buf;
}

/* ---- one hybrid order ---------------------------------------------------- */

static void payload_of(const hyb_order_t *o, int br, char *buf, size_t len)
{
    switch (br) {
    case BR_ORDER:
        snprintf(buf, len, "order=%s sku=book qty=1", o->order);
        break;
    case BR_DEBIT:
        snprintf(buf, len, "account=%s amount=-%d", o->customer, PRICE);
        break;
    case BR_CREDIT:
        snprintf(buf, len, "account=shop amount=%d", PRICE);
        break;
    default:
        snprintf(buf, len, "order=%s carrier=%s", o->order, o->carrier);
    }
}

/* Branch br's forward op through the gtx (add_step for a TM-run step). */
static trellis_rc_t call_branch(const hyb_env_t *env, trellis_gtx_t *g,
                                const hyb_order_t *o, int br, char *err,
                                size_t errlen)
{
    char f[TARGET_MAX], c[TARGET_MAX], r[TARGET_MAX], pl[160];
    int s = HYB_BR[br].svc;
    payload_of(o, br, pl, sizeof pl);
    target(env, s, HYB_BR[br].fwd, f, sizeof f);
    target(env, s, HYB_BR[br].rollback, r, sizeof r);
    if (HYB_BR[br].commit)
        target(env, s, HYB_BR[br].commit, c, sizeof c);
    if (br == BR_ORDER)
        return trellis_gtx_call_xa(g, f, c, r, pl, strlen(pl), NULL, NULL, err,
                                   errlen);
    if (br != BR_SHIP)
        return trellis_gtx_call_tcc(g, f, c, r, pl, strlen(pl), NULL, NULL, err,
                                    errlen);
    if (o->tm_run)
        return trellis_gtx_add_step(g, f, r, pl, strlen(pl), err, errlen);
    return trellis_gtx_call_saga(g, f, r, pl, strlen(pl), NULL, NULL, err,
                                 errlen);
}

/* Send branch br's op (a method of its service) again, with the metadata
 * of the first delivery. The rc. */
trellis_rc_t hyb_redeliver(const hyb_env_t *env, const hyb_order_t *o,
                           const char *gid, int br, const char *method,
                           const char *op)
{
    static const char *const keys[] = {"dtm-gid", "dtm-trans_type",
                                       "dtm-branch_id", "dtm-op"};
    char bid[16], pl[160], full[96], err[256];
    uint8_t *reply = NULL;
    size_t len = 0;
    snprintf(bid, sizeof bid, "%02d", br + 1);
    const char *vals[] = {gid, HYB_BR[br].type, bid, op};
    payload_of(o, br, pl, sizeof pl);
    snprintf(full, sizeof full, "/%s/%s", HYB_SVC[HYB_BR[br].svc].service,
             method);
    trellis_rc_t rc =
        trellis_call_unary(env->svc[HYB_BR[br].svc], full, pl, strlen(pl), keys,
                           vals, 4, 5000, &reply, &len, err, sizeof err);
    free(reply);
    return rc;
}

static trellis_gtx_t *begin(const hyb_env_t *env, hyb_outcome_t *out)
{
    trellis_gtx_t *g = NULL;
    trellis_options_t opt = {.wait_result = 1,
                             .retry_interval_ms = RETRY_INTERVAL_MS,
                             .request_timeout_ms = REQUEST_TIMEOUT_MS,
                             .timeout_to_fail_ms = FAIL_TIMEOUT_MS};
    int64_t deadline = harness_mono_ms() + BEGIN_RETRY_MS;
    do { /* trellisd may be restarting: a while, like a patient initiator */
        out->rc = trellis_new_gid(env->client, out->gid, sizeof out->gid,
                                  out->err, sizeof out->err);
        if (out->rc != TRELLIS_OK)
            harness_sleep_ms(20);
    } while (out->rc == TRELLIS_UNAVAILABLE && harness_mono_ms() < deadline);
    if (out->rc == TRELLIS_OK)
        out->rc = trellis_gtx_begin(env->client, out->gid, &opt, &g, out->err,
                                    sizeof out->err);
    out->begun = out->rc == TRELLIS_OK;
    return g;
}

/* Phase 1, then submit (all OK) or abort (the first refusal). dup: send
 * each OK'd TCC try and initiator-run Reserve a second time at once. */
void hyb_run_order(const hyb_env_t *env, const hyb_order_t *o, int dup,
                   hyb_outcome_t *out)
{
    memset(out->fwd_ok, 0, sizeof out->fwd_ok);
    out->at = AT_NONE, out->st = 0, out->reason[0] = out->err[0] = '\0';
    trellis_gtx_t *g = begin(env, out);
    if (!g) {
        out->at = BR_ORDER;
        return;
    }
    for (int br = 0; br < N_BR && out->at == AT_NONE; br++) {
        out->rc = call_branch(env, g, o, br, out->err, sizeof out->err);
        if (out->rc != TRELLIS_OK)
            out->at = br;
        out->fwd_ok[br] = out->rc == TRELLIS_OK;
        if (dup && out->rc == TRELLIS_OK && br != BR_ORDER &&
            !(br == BR_SHIP && o->tm_run))
            hyb_redeliver(env, o, out->gid, br, HYB_BR[br].fwd,
                          HYB_BR[br].fwd_op);
    }
    char why[TEXT_MAX + 32];
    if (out->at == AT_NONE) {
        out->rc =
            trellis_gtx_submit(g, &out->st, out->reason, sizeof out->reason,
                               out->err, sizeof out->err);
        if (out->rc != TRELLIS_OK)
            out->at = AT_SUBMIT;
    } else {
        char err[256];
        snprintf(why, sizeof why, "branch %02d refused: %s", out->at + 1,
                 out->err);
        if (trellis_gtx_abort(g, why, &out->st, err, sizeof err) != TRELLIS_OK)
            out->st = 0;
    }
    trellis_gtx_free(g);
}

/* ---- the TM's view ------------------------------------------------------- */

/* Query until final or the deadline; the last answer, or NULL (with
 * *notfound set when trellisd never heard of gid). */
trellis_trans_info_t *hyb_query_final(const hyb_env_t *env, const char *gid,
                                      int64_t timeout_ms, int *notfound)
{
    int64_t deadline = harness_mono_ms() + timeout_ms;
    char err[256];
    *notfound = 0;
    for (;;) {
        trellis_trans_info_t *info = NULL;
        trellis_rc_t rc =
            trellis_query(env->client, gid, &info, err, sizeof err);
        if (rc == TRELLIS_OK &&
            (example_is_final(info->status) || harness_mono_ms() >= deadline))
            return info;
        trellis_trans_info_free(info);
        *notfound = rc == TRELLIS_NOT_FOUND;
        if (harness_mono_ms() >= deadline) {
            printf("   query %s: %s\n", gid, rc ? err : "not final");
            return NULL;
        }
        harness_sleep_ms(20);
    }
}

void hyb_print_report(const hyb_env_t *env, const trellis_trans_info_t *info)
{
    static const char *const names[N_BR] = {"order XA", "debit TCC",
                                            "credit TCC", "shipping saga"};
    example_print_tm_status(info);
    for (size_t i = 0; i < info->n_branches; i++) {
        printf("   TM: branch %s (%s):", info->branches[i].branch_id,
               i < N_BR ? names[i] : "?");
        example_print_ops(&info->branches[i]);
    }
    example_print_said(env->log, N_SVC, info->gid, "services");
}

/* The final state of the transaction, which must be want; the TM's view
 * and the services' lines printed. The info (caller frees) or NULL. */
trellis_trans_info_t *hyb_expect_final(const hyb_env_t *env, const char *gid,
                                       trellis_trans_status_t want,
                                       example_check_t *ck)
{
    int nf;
    trellis_trans_info_t *info =
        hyb_query_final(env, gid, FINAL_TIMEOUT_MS, &nf);
    if (info)
        hyb_print_report(env, info);
    example_expect(ck, info && info->status == want, "TM status should be %s",
                   trellis_trans_status_name(want));
    return info;
}

/* Every branch before `upto` rolled back (op succeeded) in info. */
void hyb_expect_rolled_back(const trellis_trans_info_t *info, int upto,
                            example_check_t *ck)
{
    for (int br = 0; br < upto; br++) {
        trellis_op_t op = br == BR_ORDER  ? TRELLIS_OP_ROLLBACK
                          : br == BR_SHIP ? TRELLIS_OP_COMPENSATE
                                          : TRELLIS_OP_CANCEL;
        const trellis_op_info_t *oi =
            info && (size_t)br < info->n_branches
                ? example_find_op(&info->branches[br], op)
                : NULL;
        example_expect(ck, oi && oi->status == TRELLIS_OP_SUCCEEDED,
                       "branch %02d's %s should have succeeded", br + 1,
                       trellis_op_name(op));
    }
}
