/*
 * ap_trans.c — initiator-driven ("AP-driven") branches, the part the TCC
 * helper (tcc.c) and the XA helper (xa.c) share: begin a transaction, then
 * per branch register its phase-2 ops with trellisd before calling its
 * forward op (TCC try, XA prepare) on the participant, then submit or
 * abort. The two modes differ only in names and numbers (tr_ap_kind_t;
 * the tables of TCC, XA and saga are here, for the hybrid helper and the
 * workflows too, which call forward ops through tr_ap_forward).
 *
 * Order matters and is the point of this file: a branch is registered
 * *before* its forward op is sent, so whatever happens to the initiator
 * after that (a crash, a lost reply, a timeout) trellisd knows the branch
 * and will roll it back. A rollback for a forward op that never arrived is
 * an empty compensation that the participant's barrier turns into a no-op
 * (and, for XA, that stops a late prepare).
 *
 * Invariants:
 *   - branch ids are "01", "02", ... in the order RegisterBranch was sent;
 *     an id is used up once sent, even if trellisd refused it, so one id
 *     never names two different branches;
 *   - every target is checked before anything is sent: a malformed one is
 *     INVALID_ARGUMENT and registers nothing;
 *   - a tr_ap_t owns copies of its gid and branch headers (the options'
 *     header arrays are only borrowed for the call that passes them).
 *
 * Not thread safe: one thread at a time per tr_ap_t. The client is
 * borrowed and is itself thread safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trellis_target.h"

/* dtm-gid, dtm-trans_type, dtm-branch_id, dtm-op. */
#define N_DTM_MD 4

/* ---- kinds ----------------------------------------------------------- */

const tr_ap_kind_t tr_ap_kind_tcc = {
    .mode = TRELLIS_MODE_TCC,
    .trans_type = "tcc",
    .label = "TCC",
    .forward_op = "try",
    .commit_name = "confirm",
    .rollback_name = "cancel",
    .commit_op = TRELLIS_OP_CONFIRM,
    .rollback_op = TRELLIS_OP_CANCEL,
};

const tr_ap_kind_t tr_ap_kind_xa = {
    .mode = TRELLIS_MODE_XA,
    .trans_type = "xa",
    .label = "XA",
    .forward_op = "prepare",
    .commit_name = "commit",
    .rollback_name = "rollback",
    .commit_op = TRELLIS_OP_COMMIT,
    .rollback_op = TRELLIS_OP_ROLLBACK,
};

/* No commit-side op: a saga branch is done once its action succeeded. */
const tr_ap_kind_t tr_ap_kind_saga = {
    .mode = TRELLIS_MODE_SAGA,
    .trans_type = "saga",
    .label = "saga",
    .forward_op = "action",
    .commit_name = NULL,
    .rollback_name = "compensate",
    .commit_op = 0,
    .rollback_op = TRELLIS_OP_COMPENSATE,
};

/* ---- targets --------------------------------------------------------- */

/* A target split into the two arguments of trellis_call_unary. */
typedef trellis_target_t ap_target_t;

/* Split "host:port/package.Service/Method" into *out, by the protocol's
 * one definition of a target (proto/trellis_target.c, which trellisd uses
 * too), so a target that passes here is not refused there for its shape. */
static trellis_rc_t target_parse(const char *target, const char *what,
                                 ap_target_t *out, char *err, size_t errlen)
{
    switch (trellis_target_parse(target, out)) {
    case TRELLIS_TARGET_OK:
        return TRELLIS_OK;
    case TRELLIS_TARGET_EMPTY:
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s target is empty; expected "
                       "host:port/package.Service/Method",
                       what);
    case TRELLIS_TARGET_TOO_LONG:
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s target \"%.200s...\" is too long", what, target);
    case TRELLIS_TARGET_BAD_SHAPE:
        break;
    }
    return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                   "%s target \"%.200s\" is not of the form "
                   "host:port/package.Service/Method",
                   what, target);
}

trellis_rc_t tr_ap_check_target(const char *target, const char *what, char *err,
                                size_t errlen)
{
    ap_target_t unused;
    return target_parse(target, what, &unused, err, errlen);
}

/* All three targets well formed; *forward_to is the forward op's, split. */
static trellis_rc_t
targets_check(const tr_ap_kind_t *k, const char *forward_target,
              const char *commit_target, const char *rollback_target,
              ap_target_t *forward_to, char *err, size_t errlen)
{
    ap_target_t unused;
    trellis_rc_t rc =
        target_parse(forward_target, k->forward_op, forward_to, err, errlen);
    if (rc == TRELLIS_OK && k->commit_name != NULL)
        rc = target_parse(commit_target, k->commit_name, &unused, err, errlen);
    if (rc == TRELLIS_OK)
        rc = target_parse(rollback_target, k->rollback_name, &unused, err,
                          errlen);
    return rc;
}

/* ---- construction ---------------------------------------------------- */

void tr_ap_clear(tr_ap_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n_headers; i++) {
        free(a->header_keys[i]);
        free(a->header_values[i]);
    }
    free(a->header_keys);
    free(a->header_values);
    free(a->gid);
    free(a->traceparent);
    free(a->tracestate);
    memset(a, 0, sizeof *a);
}

/* Deep copy of o's branch headers; -1 when out of memory (what was copied
 * stays in a for tr_ap_clear). */
static int headers_copy(tr_ap_t *a, const trellis_options_t *o)
{
    if (o->n_headers == 0 || o->header_keys == NULL || o->header_values == NULL)
        return 0;
    a->header_keys = calloc(o->n_headers, sizeof *a->header_keys);
    a->header_values = calloc(o->n_headers, sizeof *a->header_values);
    if (a->header_keys == NULL || a->header_values == NULL)
        return -1;
    for (size_t i = 0; i < o->n_headers; i++) {
        a->n_headers = i + 1;
        a->header_keys[i] = tr_strdup0(o->header_keys[i]);
        a->header_values[i] = tr_strdup0(o->header_values[i]);
        if (a->header_keys[i] == NULL || a->header_values[i] == NULL)
            return -1;
    }
    return 0;
}

/* A copy of o's trace context (only a tracestate with a traceparent). */
static int trace_copy(tr_ap_t *a, const trellis_options_t *o)
{
    if (o->traceparent == NULL || o->traceparent[0] == '\0')
        return 0;
    a->traceparent = strdup(o->traceparent);
    if (o->tracestate != NULL && o->tracestate[0] != '\0')
        a->tracestate = strdup(o->tracestate);
    return a->traceparent == NULL ||
                   (o->tracestate != NULL && o->tracestate[0] != '\0' &&
                    a->tracestate == NULL)
               ? -1
               : 0;
}

int tr_ap_init(tr_ap_t *a, const tr_ap_kind_t *kind, trellis_client_t *c,
               const char *gid, const trellis_options_t *o)
{
    a->kind = kind;
    a->client = c;
    a->gid = strdup(gid);
    if (a->gid == NULL ||
        (o != NULL && (headers_copy(a, o) != 0 || trace_copy(a, o) != 0))) {
        tr_ap_clear(a);
        return -1;
    }
    if (o != NULL) {
        a->wait_result = o->wait_result != 0;
        a->request_timeout_ms = o->request_timeout_ms;
    }
    return 0;
}

trellis_rc_t tr_ap_begin(tr_ap_t *a, const tr_ap_kind_t *kind,
                         trellis_client_t *c, const char *gid,
                         const trellis_options_t *o, char *err, size_t errlen)
{
    if (c == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "client is NULL");
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "gid is NULL; use trellis_new_gid for a fresh one");
    if (tr_ap_init(a, kind, c, gid, o) != 0)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for %s transaction %s", kind->label, gid);
    trellis_rc_t rc = trellis_begin(c, gid, o, err, errlen);
    if (rc != TRELLIS_OK)
        tr_ap_clear(a);
    return rc;
}

/* ---- branches -------------------------------------------------------- */

/* Register branch_id's phase-2 ops (and its payload, which trellisd sends
 * as their request). A kind without a commit-side op (saga) registers only
 * its rollback-side op. */
static trellis_rc_t ap_register(const tr_ap_t *a, const char *branch_id,
                                const char *commit_target,
                                const char *rollback_target,
                                const void *payload, size_t payload_len,
                                char *err, size_t errlen)
{
    const trellis_branch_op_t ops[2] = {
        {a->kind->commit_op, commit_target},
        {a->kind->rollback_op, rollback_target},
    };
    int has_commit = a->kind->commit_name != NULL;
    return trellis_register_branch(
        a->client, a->gid, branch_id, a->kind->mode, has_commit ? ops : ops + 1,
        has_commit ? 2 : 1, payload, payload_len, err, errlen);
}

/* Call branch_id's forward op with the dtm- metadata, the branch headers
 * and the trace context. */
static trellis_rc_t ap_forward(const tr_ap_t *a, const char *branch_id,
                               const ap_target_t *target, const void *payload,
                               size_t payload_len, uint8_t **reply,
                               size_t *reply_len, char *err, size_t errlen)
{
    /* The TM cluster's id (learned from trellisd's replies: the register
     * just before this call had one) goes with the forward op, as
     * trellisd sends it with the phase-2 ops: an XA participant puts it
     * into its XID. Not sent when trellisd names none. */
    char cluster_id[TRELLIS_CLUSTER_ID_MAX + 1] = "";
    char ignored[8];
    trellis_client_cluster_id(a->client, cluster_id, sizeof cluster_id, ignored,
                              sizeof ignored);
    size_t n_md = N_DTM_MD + a->n_headers + (cluster_id[0] ? 1 : 0) +
                  (a->traceparent ? 1 : 0) + (a->tracestate ? 1 : 0);
    const char **keys = calloc(n_md, sizeof *keys);
    const char **values = calloc(n_md, sizeof *values);
    if (keys == NULL || values == NULL) {
        free(keys);
        free(values);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for the metadata of branch %s's %s",
                       branch_id, a->kind->forward_op);
    }
    static const char *const dtm_keys[N_DTM_MD] = {"dtm-gid", "dtm-trans_type",
                                                   "dtm-branch_id", "dtm-op"};
    const char *dtm_values[N_DTM_MD] = {a->gid, a->kind->trans_type, branch_id,
                                        a->kind->forward_op};
    for (size_t i = 0; i < N_DTM_MD; i++) {
        keys[i] = dtm_keys[i];
        values[i] = dtm_values[i];
    }
    size_t n = N_DTM_MD;
    for (size_t i = 0; i < a->n_headers; i++, n++) {
        keys[n] = a->header_keys[i];
        values[n] = a->header_values[i];
    }
    if (cluster_id[0]) {
        keys[n] = TRELLIS_CLUSTER_ID_HEADER;
        values[n++] = cluster_id;
    }
    if (a->traceparent) {
        keys[n] = TRELLIS_TRACEPARENT_HEADER;
        values[n++] = a->traceparent;
    }
    if (a->tracestate) {
        keys[n] = TRELLIS_TRACESTATE_HEADER;
        values[n++] = a->tracestate;
    }
    trellis_rc_t rc = trellis_call_unary(
        target->host_port, target->method, payload, payload_len, keys, values,
        n_md, a->request_timeout_ms, reply, reply_len, err, errlen);
    free(keys);
    free(values);
    return rc;
}

trellis_rc_t tr_ap_call_branch(tr_ap_t *a, const char *forward_target,
                               const char *commit_target,
                               const char *rollback_target, const void *payload,
                               size_t payload_len, uint8_t **reply,
                               size_t *reply_len, char *err, size_t errlen)
{
    if (reply != NULL)
        *reply = NULL;
    if (reply_len != NULL)
        *reply_len = 0;
    if (payload == NULL && payload_len > 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "payload is NULL but payload_len is %zu", payload_len);
    ap_target_t forward_to;
    trellis_rc_t rc = targets_check(a->kind, forward_target, commit_target,
                                    rollback_target, &forward_to, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;

    char branch_id[16];
    snprintf(branch_id, sizeof branch_id, "%02u", ++a->next_branch);
    rc = ap_register(a, branch_id, commit_target, rollback_target, payload,
                     payload_len, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;

    uint8_t *got = NULL;
    size_t got_len = 0;
    rc = ap_forward(a, branch_id, &forward_to, payload, payload_len, &got,
                    &got_len, err, errlen);
    if (reply != NULL && reply_len != NULL) {
        *reply = got;
        *reply_len = got_len;
    } else {
        free(got);
    }
    return rc;
}

trellis_rc_t tr_ap_forward(const tr_ap_t *a, const char *branch_id,
                           const char *forward_target, const void *payload,
                           size_t payload_len, uint8_t **reply,
                           size_t *reply_len, char *err, size_t errlen)
{
    *reply = NULL;
    *reply_len = 0;
    ap_target_t to;
    trellis_rc_t rc =
        target_parse(forward_target, a->kind->forward_op, &to, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    return ap_forward(a, branch_id, &to, payload, payload_len, reply, reply_len,
                      err, errlen);
}

/* ---- decision -------------------------------------------------------- */

trellis_rc_t tr_ap_submit(tr_ap_t *a, trellis_trans_status_t *status,
                          char *reason, size_t reasonlen, char *err,
                          size_t errlen)
{
    return trellis_submit(a->client, a->gid, a->wait_result, status, reason,
                          reasonlen, err, errlen);
}

trellis_rc_t tr_ap_abort(tr_ap_t *a, const char *reason,
                         trellis_trans_status_t *status, char *err,
                         size_t errlen)
{
    return trellis_abort(a->client, a->gid, reason, a->wait_result, status, err,
                         errlen);
}
