/*
 * tcc.c — the TCC initiator helper (trellis_tcc.h): begin a transaction,
 * then per branch register its confirm and cancel with trellisd before
 * calling its try on the participant, then submit or abort.
 *
 * The work is ap_trans.c's, shared with the XA helper: registering before
 * the try, so trellisd can always cancel what may have run; branch ids
 * "01", "02", ... never reused; targets checked before anything is sent.
 * This file supplies TCC's names (mode tcc, op try, confirm/cancel) and
 * the public entry points' argument checks.
 *
 * Not thread safe: one thread at a time per trellis_tcc_t. The client is
 * borrowed and is itself thread safe.
 */
#include <stdlib.h>

#include "internal.h"
#include "trellis/trellis_async.h"
#include "trellis/trellis_tcc.h"

struct trellis_tcc {
    tr_ap_t ap;
};

void trellis_tcc_free(trellis_tcc_t *t)
{
    if (t == NULL)
        return;
    tr_ap_clear(&t->ap);
    free(t);
}

trellis_rc_t trellis_tcc_begin(trellis_client_t *c, const char *gid,
                               const trellis_options_t *o, trellis_tcc_t **out,
                               char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (out == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "out must not be NULL");
    *out = NULL;
    trellis_tcc_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a TCC transaction");
    trellis_rc_t rc =
        tr_ap_begin(&t->ap, &tr_ap_kind_tcc, c, gid, o, err, errlen);
    if (rc != TRELLIS_OK) {
        free(t);
        return rc;
    }
    *out = t;
    return TRELLIS_OK;
}

const char *trellis_tcc_gid(const trellis_tcc_t *t)
{
    return t != NULL ? t->ap.gid : NULL;
}

trellis_rc_t trellis_tcc_call_branch(trellis_tcc_t *t, const char *try_target,
                                     const char *confirm_target,
                                     const char *cancel_target,
                                     const void *payload, size_t payload_len,
                                     uint8_t **reply, size_t *reply_len,
                                     char *err, size_t errlen)
{
    tr_err_clear(err, errlen);
    if (reply != NULL)
        *reply = NULL;
    if (reply_len != NULL)
        *reply_len = 0;
    if (t == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "tcc is NULL");
    return tr_ap_call_branch(&t->ap, try_target, confirm_target, cancel_target,
                             payload, payload_len, reply, reply_len, err,
                             errlen);
}

trellis_rc_t trellis_tcc_submit(trellis_tcc_t *t,
                                trellis_trans_status_t *status, char *reason,
                                size_t reasonlen, char *err, size_t errlen)
{
    if (t == NULL) {
        tr_err_clear(reason, reasonlen);
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "tcc is NULL");
    }
    return tr_ap_submit(&t->ap, status, reason, reasonlen, err, errlen);
}

trellis_rc_t trellis_tcc_abort(trellis_tcc_t *t, const char *reason,
                               trellis_trans_status_t *status, char *err,
                               size_t errlen)
{
    if (t == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "tcc is NULL");
    return tr_ap_abort(&t->ap, reason, status, err, errlen);
}

/* ---- asynchronous (trellis_async.h) ---------------------------------- */

/* The helper's tr_ap_t, for the shared steps (NULL for NULL). */
static tr_ap_t *ap_of(trellis_tcc_t *t)
{
    return t != NULL ? &t->ap : NULL;
}

trellis_rc_t trellis_async_tcc_begin(trellis_client_t *c, const char *gid,
                                     const trellis_options_t *o,
                                     trellis_tcc_t **out, trellis_async_cb cb,
                                     void *user)
{
    if (out == NULL)
        return TRELLIS_INVALID_ARGUMENT;
    tr_ap_t *a = NULL;
    trellis_rc_t rc =
        tr_ap_api_begin(sizeof **out, &tr_ap_kind_tcc, c, gid, o, &a, cb, user);
    /* the tr_ap_t is the struct's first member */
    *out = (trellis_tcc_t *)a;
    return rc;
}

trellis_rc_t trellis_async_tcc_call_branch(
    trellis_tcc_t *t, const char *try_target, const char *confirm_target,
    const char *cancel_target, const void *payload, size_t payload_len,
    trellis_async_cb cb, void *user)
{
    return tr_ap_api_call_branch(ap_of(t), try_target, confirm_target,
                                 cancel_target, payload, payload_len, cb, user);
}

trellis_rc_t trellis_async_tcc_submit(trellis_tcc_t *t, trellis_async_cb cb,
                                      void *user)
{
    return tr_ap_api_submit(ap_of(t), cb, user);
}

trellis_rc_t trellis_async_tcc_abort(trellis_tcc_t *t, const char *reason,
                                     trellis_async_cb cb, void *user)
{
    return tr_ap_api_abort(ap_of(t), reason, cb, user);
}
