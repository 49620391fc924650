/*
 * tcc.c — the TCC initiator helper (trellis_tcc.h): begin a transaction,
 * then per branch register its confirm and cancel with trellisd before
 * calling its try on the participant, then submit or abort.
 *
 * Order matters and is the point of this file: a branch is registered
 * *before* its try is sent, so whatever happens to the initiator after
 * that (a crash, a lost reply, a timeout) trellisd knows the branch and
 * will cancel it on rollback. A cancel for a try that never arrived is an
 * empty compensation that the participant's barrier turns into a no-op.
 *
 * Invariants:
 *   - branch ids are "01", "02", ... in the order RegisterBranch was sent;
 *     an id is used up once sent, even if trellisd refused it, so one id
 *     never names two different branches;
 *   - every target is checked before anything is sent: a malformed one is
 *     INVALID_ARGUMENT and registers nothing;
 *   - the tcc owns copies of its gid and branch headers (the options'
 *     header arrays are only borrowed for the call that passes them).
 *
 * Not thread safe: one thread at a time per trellis_tcc_t. The client is
 * borrowed and is itself thread safe.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trellis_tcc.h"

/* The same bounds trellisd puts on a target's two halves. */
#define HOSTPORT_MAX 255
#define METHOD_MAX 255

/* dtm-gid, dtm-trans_type, dtm-branch_id, dtm-op. */
#define N_DTM_MD 4

struct trellis_tcc {
    trellis_client_t *client; /* borrowed */
    char *gid;
    int wait_result;
    uint32_t request_timeout_ms; /* deadline of each try; 0: SDK default */
    size_t n_headers;
    char **header_keys, **header_values;
    unsigned next_branch; /* branches sent to RegisterBranch so far */
};

/* ---- targets --------------------------------------------------------- */

/* A target split into the two arguments of trellis_call_unary. */
typedef struct {
    char host_port[HOSTPORT_MAX + 1]; /* "host:port" */
    char method[METHOD_MAX + 1];      /* "/package.Service/Method" */
} tcc_target_t;

static int is_identifier(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* "package.Service": at least two identifiers joined by dots. */
static int is_qualified_service(const char *s, size_t n)
{
    size_t start = 0, parts = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (!is_identifier(s + start, i - start))
                return 0;
            parts++;
            start = i + 1;
        }
    }
    return parts >= 2;
}

/* A host name, an IPv4 address or "[IPv6]". */
static int is_host(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] == '[')
        return n > 2 && s[n - 1] == ']' &&
               strspn(s + 1, "0123456789abcdefABCDEF:.") == n - 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '.'))
            return 0;
    }
    return s[0] != '-' && s[0] != '.';
}

static int is_port(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return 0;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* Split "host:port/package.Service/Method" into *out; the rules are
 * trellisd's (tm_parse_target), so a target that passes here is not
 * refused there for its shape. */
static trellis_rc_t target_parse(const char *target, const char *what,
                                 tcc_target_t *out, char *err, size_t errlen)
{
    if (target == NULL || target[0] == '\0')
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s target is empty; expected "
                       "host:port/package.Service/Method",
                       what);
    const char *slash = strchr(target, '/');
    const char *last = strrchr(target, '/');
    const char *colon = NULL;
    if (slash != NULL)
        for (const char *p = slash; p > target && colon == NULL; p--)
            if (p[-1] == ':')
                colon = p - 1;
    if (slash == NULL || slash == last || colon == NULL ||
        !is_host(target, (size_t)(colon - target)) ||
        !is_port(colon + 1, (size_t)(slash - colon - 1)) ||
        !is_qualified_service(slash + 1, (size_t)(last - slash - 1)) ||
        !is_identifier(last + 1, strlen(last + 1)))
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s target \"%.200s\" is not of the form "
                       "host:port/package.Service/Method",
                       what, target);
    if ((size_t)(slash - target) > HOSTPORT_MAX || strlen(slash) > METHOD_MAX)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s target \"%.200s...\" is too long", what, target);
    snprintf(out->host_port, sizeof out->host_port, "%.*s",
             (int)(slash - target), target);
    snprintf(out->method, sizeof out->method, "%s", slash);
    return TRELLIS_OK;
}

/* All three targets well formed; *try_to is the try's, split. */
static trellis_rc_t targets_check(const char *try_target,
                                  const char *confirm_target,
                                  const char *cancel_target,
                                  tcc_target_t *try_to, char *err,
                                  size_t errlen)
{
    tcc_target_t unused;
    trellis_rc_t rc = target_parse(try_target, "try", try_to, err, errlen);
    if (rc == TRELLIS_OK)
        rc = target_parse(confirm_target, "confirm", &unused, err, errlen);
    if (rc == TRELLIS_OK)
        rc = target_parse(cancel_target, "cancel", &unused, err, errlen);
    return rc;
}

/* ---- construction ---------------------------------------------------- */

static void tcc_headers_clear(trellis_tcc_t *t)
{
    for (size_t i = 0; i < t->n_headers; i++) {
        free(t->header_keys[i]);
        free(t->header_values[i]);
    }
    free(t->header_keys);
    free(t->header_values);
    t->header_keys = t->header_values = NULL;
    t->n_headers = 0;
}

void trellis_tcc_free(trellis_tcc_t *t)
{
    if (t == NULL)
        return;
    tcc_headers_clear(t);
    free(t->gid);
    free(t);
}

/* Deep copy of o's branch headers; -1 when out of memory (what was copied
 * stays in t for tcc_headers_clear). */
static int tcc_headers_copy(trellis_tcc_t *t, const trellis_options_t *o)
{
    if (o->n_headers == 0 || o->header_keys == NULL || o->header_values == NULL)
        return 0;
    t->header_keys = calloc(o->n_headers, sizeof *t->header_keys);
    t->header_values = calloc(o->n_headers, sizeof *t->header_values);
    if (t->header_keys == NULL || t->header_values == NULL)
        return -1;
    for (size_t i = 0; i < o->n_headers; i++) {
        t->n_headers = i + 1;
        t->header_keys[i] = tr_strdup0(o->header_keys[i]);
        t->header_values[i] = tr_strdup0(o->header_values[i]);
        if (t->header_keys[i] == NULL || t->header_values[i] == NULL)
            return -1;
    }
    return 0;
}

/* A tcc for gid with o's settings, not yet begun; NULL when out of memory. */
static trellis_tcc_t *tcc_new(trellis_client_t *c, const char *gid,
                              const trellis_options_t *o)
{
    trellis_tcc_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->client = c;
    t->gid = strdup(gid);
    if (t->gid == NULL || (o != NULL && tcc_headers_copy(t, o) != 0)) {
        trellis_tcc_free(t);
        return NULL;
    }
    if (o != NULL) {
        t->wait_result = o->wait_result != 0;
        t->request_timeout_ms = o->request_timeout_ms;
    }
    return t;
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
    if (c == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "client is NULL");
    if (gid == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "gid is NULL; use trellis_new_gid for a fresh one");
    trellis_tcc_t *t = tcc_new(c, gid, o);
    if (t == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for TCC transaction %s", gid);
    trellis_rc_t rc = trellis_begin(c, gid, o, err, errlen);
    if (rc != TRELLIS_OK) {
        trellis_tcc_free(t);
        return rc;
    }
    *out = t;
    return TRELLIS_OK;
}

const char *trellis_tcc_gid(const trellis_tcc_t *t)
{
    return t != NULL ? t->gid : NULL;
}

/* ---- branches -------------------------------------------------------- */

/* Register branch_id's confirm and cancel (and its payload, which trellisd
 * sends as their request). */
static trellis_rc_t tcc_register(trellis_tcc_t *t, const char *branch_id,
                                 const char *confirm_target,
                                 const char *cancel_target, const void *payload,
                                 size_t payload_len, char *err, size_t errlen)
{
    const trellis_branch_op_t ops[2] = {
        {TRELLIS_OP_CONFIRM, confirm_target},
        {TRELLIS_OP_CANCEL, cancel_target},
    };
    return trellis_register_branch(t->client, t->gid, branch_id,
                                   TRELLIS_MODE_TCC, ops, 2, payload,
                                   payload_len, err, errlen);
}

/* Call branch_id's try with the dtm- metadata and the branch headers. */
static trellis_rc_t tcc_try(const trellis_tcc_t *t, const char *branch_id,
                            const tcc_target_t *target, const void *payload,
                            size_t payload_len, uint8_t **reply,
                            size_t *reply_len, char *err, size_t errlen)
{
    size_t n_md = N_DTM_MD + t->n_headers;
    const char **keys = calloc(n_md, sizeof *keys);
    const char **values = calloc(n_md, sizeof *values);
    if (keys == NULL || values == NULL) {
        free(keys);
        free(values);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for the metadata of branch %s's try",
                       branch_id);
    }
    static const char *const dtm_keys[N_DTM_MD] = {"dtm-gid", "dtm-trans_type",
                                                   "dtm-branch_id", "dtm-op"};
    const char *dtm_values[N_DTM_MD] = {t->gid, "tcc", branch_id, "try"};
    for (size_t i = 0; i < N_DTM_MD; i++) {
        keys[i] = dtm_keys[i];
        values[i] = dtm_values[i];
    }
    for (size_t i = 0; i < t->n_headers; i++) {
        keys[N_DTM_MD + i] = t->header_keys[i];
        values[N_DTM_MD + i] = t->header_values[i];
    }
    trellis_rc_t rc = trellis_call_unary(
        target->host_port, target->method, payload, payload_len, keys, values,
        n_md, t->request_timeout_ms, reply, reply_len, err, errlen);
    free(keys);
    free(values);
    return rc;
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
    if (payload == NULL && payload_len > 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "payload is NULL but payload_len is %zu", payload_len);
    tcc_target_t try_to;
    trellis_rc_t rc = targets_check(try_target, confirm_target, cancel_target,
                                    &try_to, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;

    char branch_id[16];
    snprintf(branch_id, sizeof branch_id, "%02u", ++t->next_branch);
    rc = tcc_register(t, branch_id, confirm_target, cancel_target, payload,
                      payload_len, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;

    uint8_t *got = NULL;
    size_t got_len = 0;
    rc = tcc_try(t, branch_id, &try_to, payload, payload_len, &got, &got_len,
                 err, errlen);
    if (reply != NULL && reply_len != NULL) {
        *reply = got;
        *reply_len = got_len;
    } else {
        free(got);
    }
    return rc;
}

/* ---- decision -------------------------------------------------------- */

trellis_rc_t trellis_tcc_submit(trellis_tcc_t *t,
                                trellis_trans_status_t *status, char *reason,
                                size_t reasonlen, char *err, size_t errlen)
{
    if (t == NULL) {
        tr_err_clear(reason, reasonlen);
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "tcc is NULL");
    }
    return trellis_submit(t->client, t->gid, t->wait_result, status, reason,
                          reasonlen, err, errlen);
}

trellis_rc_t trellis_tcc_abort(trellis_tcc_t *t, const char *reason,
                               trellis_trans_status_t *status, char *err,
                               size_t errlen)
{
    if (t == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen, "tcc is NULL");
    return trellis_abort(t->client, t->gid, reason, t->wait_result, status, err,
                         errlen);
}
