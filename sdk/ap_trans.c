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

trellis_rc_t tr_ap_check_targets(const tr_ap_kind_t *k,
                                 const char *forward_target,
                                 const char *commit_target,
                                 const char *rollback_target, char *err,
                                 size_t errlen)
{
    ap_target_t unused;
    return targets_check(k, forward_target, commit_target, rollback_target,
                         &unused, err, errlen);
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

/* branch_id's phase-2 ops into ops[2]: *first of them, *n of them. A kind
 * without a commit-side op (saga) has only its rollback-side op. */
static void ap_ops(const tr_ap_t *a, const char *commit_target,
                   const char *rollback_target, trellis_branch_op_t ops[2],
                   const trellis_branch_op_t **first, size_t *n)
{
    ops[0] = (trellis_branch_op_t){a->kind->commit_op, commit_target};
    ops[1] = (trellis_branch_op_t){a->kind->rollback_op, rollback_target};
    int has_commit = a->kind->commit_name != NULL;
    *first = has_commit ? ops : ops + 1;
    *n = has_commit ? 2 : 1;
}

/* Register branch_id's phase-2 ops (and its payload, which trellisd sends
 * as their request). */
static trellis_rc_t ap_register(const tr_ap_t *a, const char *branch_id,
                                const char *commit_target,
                                const char *rollback_target,
                                const void *payload, size_t payload_len,
                                char *err, size_t errlen)
{
    trellis_branch_op_t ops[2];
    const trellis_branch_op_t *first;
    size_t n;
    ap_ops(a, commit_target, rollback_target, ops, &first, &n);
    return trellis_register_branch(a->client, a->gid, branch_id, a->kind->mode,
                                   first, n, payload, payload_len, err, errlen);
}

/* The metadata of a forward call: keys and values arrays (owned; the
 * strings borrowed from a, branch_id and cluster_id). */
typedef struct {
    const char **keys, **values;
    size_t n;
} ap_md_t;

static void ap_md_free(ap_md_t *md)
{
    free(md->keys);
    free(md->values);
}

/* branch_id's dtm-* metadata, a's branch headers, its trace context and
 * the TM cluster's id
 * (learned from trellisd's replies: the register just before the forward
 * call had one). trellisd sends the id with the phase-2 ops, so it goes
 * with the forward op too: an XA participant puts it into its XID. Not
 * sent when trellisd names none. */
static trellis_rc_t ap_md_build(const tr_ap_t *a, const char *branch_id,
                                const char *cluster_id, ap_md_t *md, char *err,
                                size_t errlen)
{
    md->n = N_DTM_MD + a->n_headers + (cluster_id[0] ? 1 : 0) +
            (a->traceparent ? 1 : 0) + (a->tracestate ? 1 : 0);
    md->keys = calloc(md->n, sizeof *md->keys);
    md->values = calloc(md->n, sizeof *md->values);
    if (md->keys == NULL || md->values == NULL) {
        ap_md_free(md);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for the metadata of branch %s's %s",
                       branch_id, a->kind->forward_op);
    }
    static const char *const dtm_keys[N_DTM_MD] = {"dtm-gid", "dtm-trans_type",
                                                   "dtm-branch_id", "dtm-op"};
    const char *dtm_values[N_DTM_MD] = {a->gid, a->kind->trans_type, branch_id,
                                        a->kind->forward_op};
    for (size_t i = 0; i < N_DTM_MD; i++) {
        md->keys[i] = dtm_keys[i];
        md->values[i] = dtm_values[i];
    }
    size_t n = N_DTM_MD;
    for (size_t i = 0; i < a->n_headers; i++, n++) {
        md->keys[n] = a->header_keys[i];
        md->values[n] = a->header_values[i];
    }
    if (cluster_id[0]) {
        md->keys[n] = TRELLIS_CLUSTER_ID_HEADER;
        md->values[n++] = cluster_id;
    }
    if (a->traceparent) {
        md->keys[n] = TRELLIS_TRACEPARENT_HEADER;
        md->values[n++] = a->traceparent;
    }
    if (a->tracestate) {
        md->keys[n] = TRELLIS_TRACESTATE_HEADER;
        md->values[n++] = a->tracestate;
    }
    return TRELLIS_OK;
}

/* Call branch_id's forward op with the dtm- metadata and the branch
 * headers. */
static trellis_rc_t ap_forward(const tr_ap_t *a, const char *branch_id,
                               const ap_target_t *target, const void *payload,
                               size_t payload_len, uint8_t **reply,
                               size_t *reply_len, char *err, size_t errlen)
{
    char cluster_id[TRELLIS_CLUSTER_ID_MAX + 1] = "";
    char ignored[8];
    trellis_client_cluster_id(a->client, cluster_id, sizeof cluster_id, ignored,
                              sizeof ignored);
    ap_md_t md;
    trellis_rc_t rc = ap_md_build(a, branch_id, cluster_id, &md, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    rc = trellis_call_unary(
        target->host_port, target->method, payload, payload_len, md.keys,
        md.values, md.n, a->request_timeout_ms, reply, reply_len, err, errlen);
    ap_md_free(&md);
    return rc;
}

/* The next branch's id into id[len]; used up from here on (invariant). */
static void ap_next_branch_id(tr_ap_t *a, char *id, size_t len)
{
    snprintf(id, len, "%02u", ++a->next_branch);
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
    ap_next_branch_id(a, branch_id, sizeof branch_id);
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

/* ---- the same steps, asynchronously ----------------------------------
 * The same checks, ids, requests and metadata as above; each step reports
 * to its callback once (trellis_async.h). A step's context lives from the
 * register to the start of the forward call, which copies what it sends. */

void tr_ap_begin_async(tr_ap_t *a, const trellis_options_t *o,
                       trellis_async_cb cb, void *user)
{
    char err[512];
    tr_tm_req_t req;
    trellis_rc_t rc = tr_tm_begin_req(a->gid, o, &req, err, sizeof err);
    tr_async_tm_send(a->client, rc, err, &req, a->gid, cb, user);
}

typedef struct {
    tr_ap_t *a;
    char branch_id[16];
    ap_target_t to;
    uint8_t *payload;
    size_t payload_len;
    trellis_async_cb cb;
    void *user;
} ap_step_t;

/* Send branch_id's forward op to `to` with the payload (copied by the
 * send); cb runs once, also when the metadata could not be built. */
static void ap_forward_send(tr_ap_t *a, const char *branch_id,
                            const ap_target_t *to, const void *payload,
                            size_t payload_len, trellis_async_cb cb, void *user)
{
    char cluster_id[TRELLIS_CLUSTER_ID_MAX + 1], err[512];
    ap_md_t md = {0};
    tr_client_cluster_id_peek(a->client, cluster_id, sizeof cluster_id);
    trellis_rc_t rc =
        ap_md_build(a, branch_id, cluster_id, &md, err, sizeof err);
    if (rc != TRELLIS_OK) {
        tr_async_report(a->client, rc, err, a->gid, cb, user);
        return;
    }
    tr_async_unary_t u = {.host_port = to->host_port,
                          .method = to->method,
                          .req = payload,
                          .req_len = payload_len,
                          .md_keys = md.keys,
                          .md_values = md.values,
                          .n_md = md.n,
                          .timeout_ms = a->request_timeout_ms,
                          .gid = a->gid};
    tr_async_unary_send(a->client, &u, cb, user);
    ap_md_free(&md);
}

/* The register answered: on success, send the forward op. */
static void ap_step_registered(const trellis_async_result_t *r, void *arg)
{
    ap_step_t *st = arg;
    if (r->rc != TRELLIS_OK)
        st->cb(r, st->user);
    else
        ap_forward_send(st->a, st->branch_id, &st->to, st->payload,
                        st->payload_len, st->cb, st->user);
    free(st->payload);
    free(st);
}

/* Check, copy the payload, then register (ap_step_registered goes on). */
static trellis_rc_t ap_step_start(tr_ap_t *a, const char *forward_target,
                                  const char *commit_target,
                                  const char *rollback_target,
                                  const void *payload, size_t payload_len,
                                  ap_step_t *st, char *err, size_t errlen)
{
    if (payload == NULL && payload_len > 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "payload is NULL but payload_len is %zu", payload_len);
    trellis_rc_t rc = targets_check(a->kind, forward_target, commit_target,
                                    rollback_target, &st->to, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    st->payload = malloc(payload_len > 0 ? payload_len : 1);
    if (st->payload == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a %zu-byte payload", payload_len);
    if (payload_len > 0)
        memcpy(st->payload, payload, payload_len);
    st->payload_len = payload_len;
    ap_next_branch_id(a, st->branch_id, sizeof st->branch_id);
    trellis_branch_op_t ops[2];
    const trellis_branch_op_t *first;
    size_t n;
    ap_ops(a, commit_target, rollback_target, ops, &first, &n);
    tr_tm_req_t req;
    rc = tr_tm_register_req(a->gid, st->branch_id, a->kind->mode, first, n,
                            payload, payload_len, &req, err, errlen);
    tr_async_tm_send(a->client, rc, err, &req, a->gid, ap_step_registered, st);
    return TRELLIS_OK;
}

void tr_ap_call_branch_async(tr_ap_t *a, const char *forward_target,
                             const char *commit_target,
                             const char *rollback_target, const void *payload,
                             size_t payload_len, trellis_async_cb cb,
                             void *user)
{
    char err[512];
    ap_step_t *st = calloc(1, sizeof *st);
    trellis_rc_t rc = st == NULL
                          ? tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, sizeof err,
                                    "out of memory for a branch step")
                          : TRELLIS_OK;
    if (st != NULL) {
        st->a = a;
        st->cb = cb;
        st->user = user;
        rc = ap_step_start(a, forward_target, commit_target, rollback_target,
                           payload, payload_len, st, err, sizeof err);
    }
    if (rc == TRELLIS_OK)
        return;
    if (st != NULL)
        free(st->payload);
    free(st);
    tr_async_report(a->client, rc, err, a->gid, cb, user);
}

/* Check every branch's targets and make its registration: ids taken in
 * order, ops[2] per branch (ops must hold 2 * n). */
static trellis_rc_t ap_begin_regs(tr_ap_t *a, tr_ap_branch_t *b, size_t n,
                                  trellis_branch_op_t *ops,
                                  tr_branch_reg_t *regs, char *err,
                                  size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        ap_target_t unused;
        trellis_rc_t rc =
            targets_check(a->kind, b[i].forward_target, b[i].commit_target,
                          b[i].rollback_target, &unused, err, errlen);
        if (rc != TRELLIS_OK)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const trellis_branch_op_t *first;
        ap_next_branch_id(a, b[i].branch_id, sizeof b[i].branch_id);
        ap_ops(a, b[i].commit_target, b[i].rollback_target, &ops[2 * i], &first,
               &regs[i].n_ops);
        regs[i].branch_id = b[i].branch_id;
        regs[i].mode = a->kind->mode;
        regs[i].ops = first;
        regs[i].payload = b[i].payload;
        regs[i].payload_len = b[i].payload_len;
    }
    return TRELLIS_OK;
}

void tr_ap_begin_branches_async(tr_ap_t *a, const trellis_options_t *o,
                                tr_ap_branch_t *b, size_t n,
                                trellis_async_cb cb, void *user)
{
    char err[512];
    tr_tm_req_t req;
    tr_tm_req_init(&req);
    trellis_branch_op_t *ops = calloc(2 * n + 1, sizeof *ops);
    tr_branch_reg_t *regs = calloc(n + 1, sizeof *regs);
    trellis_rc_t rc = ops == NULL || regs == NULL
                          ? tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, sizeof err,
                                    "out of memory for %zu branches", n)
                          : ap_begin_regs(a, b, n, ops, regs, err, sizeof err);
    if (rc == TRELLIS_OK)
        rc = tr_tm_begin_with_req(a->gid, o, regs, n, &req, err, sizeof err);
    tr_async_tm_send(a->client, rc, err, &req, a->gid, cb, user);
    free(ops);
    free(regs);
}

void tr_ap_forward_async(tr_ap_t *a, const tr_ap_branch_t *b,
                         trellis_async_cb cb, void *user)
{
    char err[512];
    ap_target_t to;
    trellis_rc_t rc = target_parse(b->forward_target, a->kind->forward_op, &to,
                                   err, sizeof err);
    if (rc != TRELLIS_OK)
        tr_async_report(a->client, rc, err, a->gid, cb, user);
    else
        ap_forward_send(a, b->branch_id, &to, b->payload, b->payload_len, cb,
                        user);
}

void tr_ap_submit_async(tr_ap_t *a, trellis_async_cb cb, void *user)
{
    char err[512];
    tr_tm_req_t req;
    trellis_rc_t rc =
        tr_tm_submit_req(a->gid, a->wait_result, &req, err, sizeof err);
    tr_async_tm_send(a->client, rc, err, &req, a->gid, cb, user);
}

void tr_ap_abort_async(tr_ap_t *a, const char *reason, trellis_async_cb cb,
                       void *user)
{
    char err[512];
    tr_tm_req_t req;
    trellis_rc_t rc =
        tr_tm_abort_req(a->gid, reason, a->wait_result, &req, err, sizeof err);
    tr_async_tm_send(a->client, rc, err, &req, a->gid, cb, user);
}

/* ---- the public asynchronous steps' checks (tcc.c, xa.c) -------------- */

trellis_rc_t tr_ap_api_begin(size_t size, const tr_ap_kind_t *kind,
                             trellis_client_t *c, const char *gid,
                             const trellis_options_t *o, tr_ap_t **out,
                             trellis_async_cb cb, void *user)
{
    *out = NULL;
    trellis_rc_t rc = tr_async_usable(c, cb);
    if (rc != TRELLIS_OK)
        return rc;
    if (gid == NULL) {
        tr_async_report(c, TRELLIS_INVALID_ARGUMENT,
                        "gid is NULL; use trellis_new_gid for a fresh one", gid,
                        cb, user);
        return TRELLIS_OK;
    }
    tr_ap_t *a = calloc(1, size); /* a tr_ap_t starts the helper's struct */
    if (a == NULL || tr_ap_init(a, kind, c, gid, o) != 0) {
        free(a);
        char msg[96];
        snprintf(msg, sizeof msg, "out of memory for %s transaction",
                 kind->label);
        tr_async_report(c, TRELLIS_RESOURCE_EXHAUSTED, msg, gid, cb, user);
        return TRELLIS_OK;
    }
    *out = a;
    tr_ap_begin_async(a, o, cb, user);
    return TRELLIS_OK;
}

/* a (may be NULL) and cb can be reported to. */
static trellis_rc_t api_usable(const tr_ap_t *a, trellis_async_cb cb)
{
    return a == NULL ? TRELLIS_INVALID_ARGUMENT
                     : tr_async_usable(a->client, cb);
}

trellis_rc_t tr_ap_api_call_branch(tr_ap_t *a, const char *forward_target,
                                   const char *commit_target,
                                   const char *rollback_target,
                                   const void *payload, size_t payload_len,
                                   trellis_async_cb cb, void *user)
{
    trellis_rc_t rc = api_usable(a, cb);
    if (rc == TRELLIS_OK)
        tr_ap_call_branch_async(a, forward_target, commit_target,
                                rollback_target, payload, payload_len, cb,
                                user);
    return rc;
}

trellis_rc_t tr_ap_api_submit(tr_ap_t *a, trellis_async_cb cb, void *user)
{
    trellis_rc_t rc = api_usable(a, cb);
    if (rc == TRELLIS_OK)
        tr_ap_submit_async(a, cb, user);
    return rc;
}

trellis_rc_t tr_ap_api_abort(tr_ap_t *a, const char *reason,
                             trellis_async_cb cb, void *user)
{
    trellis_rc_t rc = api_usable(a, cb);
    if (rc == TRELLIS_OK)
        tr_ap_abort_async(a, reason, cb, user);
    return rc;
}
