/*
 * xa.c — the XA initiator helper (trellis_xa.h): begin a transaction, then
 * per branch register its commit and rollback with trellisd before calling
 * its prepare on the participant, then submit or abort.
 *
 * The work is ap_trans.c's, shared with the TCC helper: registering before
 * the prepare, so trellisd can always roll back a branch that may be
 * prepared (an XA branch holds its row locks until phase 2, so leaving one
 * unknown to the TM would block the participant's database); branch ids
 * "01", "02", ... never reused (the participant's XID is gid-branch_id);
 * targets checked before anything is sent. This file supplies XA's names
 * (mode xa, op prepare, commit/rollback) and the public entry points'
 * argument checks.
 *
 * Not thread safe: one thread at a time per trellis_xa_t. The client is
 * borrowed and is itself thread safe.
 */
#include <stdlib.h>

#include "internal.h"
#include "trellis/trellis_async.h"
#include "trellis/trellis_xa.h"

struct trellis_xa {
    tr_ap_t ap;
};

void trellis_xa_free(trellis_xa_t *x)
{
    if (x == NULL)
        return;
    tr_ap_clear(&x->ap);
    free(x);
}

trellis_rc_t trellis_xa_begin(trellis_client_t *c, const char *gid,
                              const trellis_options_t *o, trellis_xa_t **out,
                              char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    trellis_xa_t *x = calloc(1, sizeof *x);
    if (x == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for an XA transaction");
    trellis_rc_t rc =
        tr_ap_begin(&x->ap, &tr_ap_kind_xa, c, gid, o, err, errlen);
    if (rc != TRELLIS_OK) {
        free(x);
        return rc;
    }
    *out = x;
    return TRELLIS_OK;
}

const char *trellis_xa_gid(const trellis_xa_t *x)
{
    return x != NULL ? x->ap.gid : NULL;
}

trellis_rc_t trellis_xa_call_branch(trellis_xa_t *x, const char *prepare_target,
                                    const char *commit_target,
                                    const char *rollback_target,
                                    const void *payload, size_t payload_len,
                                    uint8_t **reply, size_t *reply_len,
                                    char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (reply != NULL)
        *reply = NULL;
    if (reply_len != NULL)
        *reply_len = 0;
    if (x == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "xa is NULL");
    return tr_ap_call_branch(&x->ap, prepare_target, commit_target,
                             rollback_target, payload, payload_len, reply,
                             reply_len, err, errlen);
}

trellis_rc_t trellis_xa_submit(trellis_xa_t *x, trellis_trans_status_t *status,
                               char *reason, size_t reasonlen, char *err,
                               size_t errlen)
{
    if (x == NULL) {
        tr_err_clear(reason, reasonlen);
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "xa is NULL");
    }
    return tr_ap_submit(&x->ap, status, reason, reasonlen, err, errlen);
}

trellis_rc_t trellis_xa_abort(trellis_xa_t *x, const char *reason,
                              trellis_trans_status_t *status, char *err,
                              size_t errlen)
{
    if (x == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "xa is NULL");
    return tr_ap_abort(&x->ap, reason, status, err, errlen);
}

/* ---- asynchronous (trellis_async.h) ---------------------------------- */

/* The helper's tr_ap_t, for the shared steps (NULL for NULL). */
static tr_ap_t *ap_of(trellis_xa_t *x)
{
    return x != NULL ? &x->ap : NULL;
}

trellis_rc_t trellis_async_xa_begin(trellis_client_t *c, const char *gid,
                                    const trellis_options_t *o,
                                    trellis_xa_t **out, trellis_async_cb cb,
                                    void *user)
{
    if (out == NULL)
        return TRELLIS_INVALID_ARGUMENT;
    tr_ap_t *a = NULL;
    trellis_rc_t rc =
        tr_ap_api_begin(sizeof **out, &tr_ap_kind_xa, c, gid, o, &a, cb, user);
    /* the tr_ap_t is the struct's first member */
    *out = (trellis_xa_t *)a;
    return rc;
}

trellis_rc_t trellis_async_xa_call_branch(
    trellis_xa_t *x, const char *prepare_target, const char *commit_target,
    const char *rollback_target, const void *payload, size_t payload_len,
    trellis_async_cb cb, void *user)
{
    return tr_ap_api_call_branch(ap_of(x), prepare_target, commit_target,
                                 rollback_target, payload, payload_len, cb,
                                 user);
}

trellis_rc_t trellis_async_xa_submit(trellis_xa_t *x, trellis_async_cb cb,
                                     void *user)
{
    return tr_ap_api_submit(ap_of(x), cb, user);
}

trellis_rc_t trellis_async_xa_abort(trellis_xa_t *x, const char *reason,
                                    trellis_async_cb cb, void *user)
{
    return tr_ap_api_abort(ap_of(x), reason, cb, user);
}
