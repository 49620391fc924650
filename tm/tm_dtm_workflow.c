/*
 * tm_dtm_workflow: DTM's workflow requests as Trellis workflow requests,
 * the progresses DTM's SDK reads back, and DTM's callback (see
 * tm_dtm_workflow.h). Owns nothing beyond what it returns; every refusal
 * names the DTM field.
 */
#include "tm_dtm_workflow.h"

#include <stdlib.h>
#include <string.h>

#include "dtm/wf.pb-c.h"

/* The separator of a progress's Trellis branch id, BranchID ":" op:
 * DTM's ops have none, so the last one splits the id back. */
#define PROGRESS_SEP ':'

/* ---- base64 -------------------------------------------------------------- */

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* The 4 characters at s as 1 to 3 bytes into out; returns how many, or
 * -1. Padding ('=') is allowed in the last group only (last). */
static int b64_group(const char *s, int last, uint8_t *out)
{
    int v[4], pad = 0;
    for (int i = 0; i < 4; i++) {
        if (s[i] == '=' && last && i >= 2 && (i == 3 || s[3] == '=')) {
            v[i] = 0;
            pad++;
        } else if ((v[i] = b64_value(s[i])) < 0) {
            return -1;
        }
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    out[0] = (uint8_t)(w >> 16);
    out[1] = (uint8_t)(w >> 8);
    out[2] = (uint8_t)w;
    return 3 - pad;
}

int tm_dtm_base64_decode(const char *text, size_t n, uint8_t **out,
                         size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (n % 4 != 0)
        return -1;
    uint8_t *buf = malloc(n / 4 * 3 + 1);
    if (!buf)
        return -2;
    size_t len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int got = b64_group(text + i, i + 4 == n, buf + len);
        if (got < 0) {
            free(buf);
            return -1;
        }
        len += (size_t)got;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* ---- PrepareWorkflow ----------------------------------------------------- */

/* CustomedData {"name": N, "data": base64 or null} into q->start's name
 * and input (q->input owns the bytes; the name stays in doc). */
static int map_custom(const tm_json_t *doc, tm_dtm_req_t *q, char *err,
                      size_t errlen)
{
    if (doc->type != TM_JSON_OBJECT)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "CustomedData is %s; a workflow's is an object "
                             "{\"name\", \"data\"}",
                             tm_json_type_name(doc->type));
    for (size_t i = 0; i < doc->n_items; i++) {
        const tm_json_t *m = &doc->items[i];
        int ok = (strcmp(m->key, "name") == 0 && m->type == TM_JSON_STRING) ||
                 (strcmp(m->key, "data") == 0 &&
                  (m->type == TM_JSON_STRING || m->type == TM_JSON_NULL));
        if (!ok)
            return tm_dtm_refuse(TM_INVALID, err, errlen,
                                 "CustomedData has \"%s\" (%s); a workflow's "
                                 "has name (a string) and data (base64 or "
                                 "null)",
                                 m->key, tm_json_type_name(m->type));
    }
    const tm_json_t *name = tm_json_get(doc, "name");
    const tm_json_t *data = tm_json_get(doc, "data");
    if (!name || !*name->str)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "CustomedData.name is missing or empty: the "
                             "workflow's name (dtm-op of its callback)");
    q->start.name = name->str;
    if (!data || data->type == TM_JSON_NULL)
        return 0;
    int rc = tm_dtm_base64_decode(data->str, strlen(data->str), &q->input,
                                  &q->start.input.len);
    if (rc == -2)
        return tm_dtm_refuse(TM_INVALID, err, errlen, "out of memory");
    if (rc != 0)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "CustomedData.data is not base64 (a Go []byte "
                             "marshalled to JSON)");
    q->start.input.data = q->input;
    return 0;
}

/* Steps, BinPayloads: a workflow has none (its steps run in the SDK). */
static int refuse_steps(const Dtmgimp__DtmRequest *r, char *err, size_t errlen)
{
    const char *field = !tm_dtm_no_steps(r->steps) ? "Steps"
                        : r->n_binpayloads         ? "BinPayloads"
                                                   : NULL;
    if (!field)
        return 0;
    return tm_dtm_refuse(TM_INVALID, err, errlen,
                         "%s is given to a workflow, which has none (its "
                         "steps are recorded with RegisterBranch)",
                         field);
}

int tm_dtm_map_prepare_workflow(const Dtmgimp__DtmRequest *r,
                                const tm_limits_t *l, tm_dtm_req_t *q,
                                char *err, size_t errlen)
{
    tm_dtm_req_init(q);
    char why[200];
    tm_json_t *doc = NULL;
    if (!r->transtype || strcmp(r->transtype, "workflow") != 0)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "TransType \"%s\": PrepareWorkflow opens a "
                             "\"workflow\"",
                             r->transtype ? r->transtype : "");
    int rc = tm_dtm_map_options(r, l, q, err, errlen);
    if (rc == 0)
        rc = refuse_steps(r, err, errlen);
    if (rc == 0 && !tm_dtm_has(r->queryprepared))
        rc = tm_dtm_refuse(TM_INVALID, err, errlen,
                           "QueryPrepared is empty: a workflow names the "
                           "callback trellisd calls to resume it "
                           "(host:port/workflow.Workflow/Execute)");
    if (rc == 0)
        rc =
            tm_dtm_check_scheme(r->queryprepared, "QueryPrepared", err, errlen);
    if (rc == 0 && !tm_dtm_has(r->customeddata))
        rc = tm_dtm_refuse(TM_INVALID, err, errlen,
                           "CustomedData is empty: a workflow's holds its "
                           "name and data");
    if (rc == 0 && tm_json_parse(r->customeddata, strlen(r->customeddata), &doc,
                                 why, sizeof(why)) != 0)
        rc = tm_dtm_refuse(TM_INVALID, err, errlen,
                           "CustomedData is not JSON: %s", why);
    if (rc == 0)
        rc = map_custom(doc, q, err, errlen);
    q->to = TM_DTM_TO_START_WORKFLOW;
    q->start.gid = r->gid;
    q->start.resume_target = r->queryprepared;
    q->options.wait_result = 0; /* nothing to wait for */
    q->start.options = &q->options;
    if (rc == 0)
        rc = tm_validate_start_workflow(&q->start, l, err, errlen);
    q->custom_json = doc; /* q->start.name points in; freed with q */
    return rc;
}

/* ---- Submit -------------------------------------------------------------- */

static const char *extra(const Dtmgimp__DtmRequest *r, const char *key)
{
    for (size_t i = 0; i < r->n_reqextra; i++)
        if (strcmp(r->reqextra[i]->key, key) == 0)
            return r->reqextra[i]->value;
    return NULL;
}

static int check_extra_keys(const Dtmgimp__DtmRequest *r, char *err,
                            size_t errlen)
{
    for (size_t i = 0; i < r->n_reqextra; i++) {
        const char *k = r->reqextra[i]->key;
        if (strcmp(k, "status") != 0 && strcmp(k, "rollback_reason") != 0 &&
            strcmp(k, "result") != 0)
            return tm_dtm_refuse(TM_INVALID, err, errlen,
                                 "ReqExtra has \"%s\"; a workflow's Submit "
                                 "has status, rollback_reason and result",
                                 k);
    }
    return 0;
}

int tm_dtm_map_workflow_end(const Dtmgimp__DtmRequest *r, tm_dtm_req_t *q,
                            char *err, size_t errlen)
{
    int rc = refuse_steps(r, err, errlen);
    if (rc == 0)
        rc = check_extra_keys(r, err, errlen);
    if (rc != 0)
        return rc;
    const char *status = extra(r, "status");
    const char *reason = extra(r, "rollback_reason");
    if (status && strcmp(status, "succeed") == 0) {
        q->to = TM_DTM_TO_SUBMIT;
        q->submit.gid = r->gid;
        q->submit.options = &q->options;
        return 0;
    }
    if (!status || strcmp(status, "failed") != 0)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "ReqExtra.status is \"%s\": a workflow ends "
                             "\"succeed\" or \"failed\"",
                             status ? status : "");
    if (!tm_dtm_has(reason))
        reason = r->rollbackreason;
    if (tm_dtm_has(reason) && strlen(reason) > TM_REASON_MAX)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "ReqExtra.rollback_reason is longer than %d "
                             "bytes",
                             TM_REASON_MAX);
    q->to = TM_DTM_TO_ABORT;
    q->abort.gid = r->gid;
    q->abort.reason = (char *)(reason ? reason : "");
    q->abort.wait_result = q->options.wait_result;
    return 0;
}

/* ---- RegisterBranch: one progress ---------------------------------------- */

/* An op name of DTM's SDK (action, commit, rollback, business, ...):
 * letters, digits and '_', so that the id splits back. */
static int is_op_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

int tm_dtm_map_progress(const Dtmgimp__DtmBranchRequest *r, tm_dtm_req_t *q,
                        char *err, size_t errlen)
{
    static const char *const keys[] = {"status", "op", NULL};
    int rc = tm_dtm_check_data_keys(r, keys, "status and op", err, errlen);
    if (rc != 0)
        return rc;
    const char *status = tm_dtm_data_value(r, "status");
    const char *op = tm_dtm_data_value(r, "op");
    int failed = status && strcmp(status, "failed") == 0;
    if (!status || (!failed && strcmp(status, "succeed") != 0))
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "Data.status is \"%s\": a step's progress is "
                             "\"succeed\" or \"failed\"",
                             status ? status : "");
    if (!is_op_name(op))
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "Data.op is \"%s\": the op whose result this is "
                             "(action, commit, rollback, ...): letters, "
                             "digits and _",
                             op ? op : "");
    if (tm_dtm_has(r->op) && strcmp(r->op, op) != 0)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "Op is \"%s\" and Data.op \"%s\"", r->op, op);
    if (!tm_dtm_has(r->branchid) || strchr(r->branchid, PROGRESS_SEP))
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "BranchID is \"%s\": a workflow's branch ids "
                             "are 01, 02, ... (no '%c')",
                             r->branchid ? r->branchid : "", PROGRESS_SEP);
    size_t n = strlen(r->branchid) + 1 + strlen(op);
    if (n >= sizeof(q->progress_id))
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "BranchID and Data.op are %zu characters "
                             "together; at most %d",
                             n - 1, TM_BRANCH_ID_MAX - 1);
    memcpy(q->progress_id, r->branchid, strlen(r->branchid));
    q->progress_id[strlen(r->branchid)] = PROGRESS_SEP;
    memcpy(q->progress_id + strlen(r->branchid) + 1, op, strlen(op) + 1);
    q->to = TM_DTM_TO_PROGRESS;
    q->reg.gid = r->gid;
    q->reg.branch_id = q->progress_id;
    q->reg.mode = TRELLIS__V1__BRANCH_MODE__MODE_LOCAL;
    q->record.gid = r->gid;
    q->record.branch_id = q->progress_id;
    q->record.code = failed ? 10 : 0; /* ABORTED : OK */
    q->record.result = r->busipayload;
    return 0;
}

/* ---- PrepareWorkflow's reply --------------------------------------------- */

void tm_dtm_progresses_free(tm_dtm_progresses_t *p)
{
    free(p->progresses);
    free(p->ptrs);
    free(p->ids);
    memset(p, 0, sizeof(*p));
}

/* Progress i of p from step b: its id split back into BranchID and Op. */
static void fill_progress(tm_dtm_progresses_t *p, size_t i,
                          const tm_branch_t *b)
{
    Dtmgimp__DtmProgress *g = &p->progresses[i];
    const tm_op_t *fw = &b->ops[TM_SLOT_FORWARD];
    char *id = p->ids + i * (TM_BRANCH_ID_MAX + 1);
    const char *sep = strrchr(b->branch_id, PROGRESS_SEP);
    size_t n = sep ? (size_t)(sep - b->branch_id) : strlen(b->branch_id);
    dtmgimp__dtm_progress__init(g);
    memcpy(id, b->branch_id, n);
    id[n] = '\0';
    g->branchid = id;
    g->op = sep ? (char *)sep + 1 : "action";
    g->status = fw->status == TM_OP_SUCCEEDED ? "succeed" : "failed";
    g->bindata.data = fw->result;
    g->bindata.len = fw->result_len;
    p->ptrs[i] = g;
}

int tm_dtm_progresses_build(const tm_trans_t *tx, tm_dtm_progresses_t *p)
{
    memset(p, 0, sizeof(*p));
    dtmgimp__dtm_progresses_reply__init(&p->reply);
    dtmgimp__dtm_transaction__init(&p->trans);
    p->trans.gid = (char *)tx->gid;
    p->trans.status = (char *)tm_dtm_status_name(tx->status);
    p->trans.rollbackreason = tx->reason ? tx->reason : "";
    p->reply.transaction = &p->trans;
    size_t n = tx->n_branches ? tx->n_branches : 1;
    p->progresses = calloc(n, sizeof(*p->progresses));
    p->ptrs = calloc(n, sizeof(*p->ptrs));
    p->ids = calloc(n, TM_BRANCH_ID_MAX + 1);
    if (!p->progresses || !p->ptrs || !p->ids) {
        tm_dtm_progresses_free(p);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 1; i < tx->n_branches; i++)
        if (tx->branches[i].ops[TM_SLOT_FORWARD].recorded)
            fill_progress(p, k++, &tx->branches[i]);
    p->reply.progresses = p->ptrs;
    p->reply.n_progresses = k;
    return 0;
}

/* ---- the callback -------------------------------------------------------- */

uint8_t *tm_dtm_callback_pack(const uint8_t *payload, size_t payload_len,
                              char **name, size_t *len)
{
    *name = NULL;
    Trellis__V1__ResumeRequest *rr =
        trellis__v1__resume_request__unpack(NULL, payload_len, payload);
    if (!rr)
        return NULL;
    Workflow__WorkflowData wd = WORKFLOW__WORKFLOW_DATA__INIT;
    wd.data = rr->input;
    *len = workflow__workflow_data__get_packed_size(&wd);
    uint8_t *out = malloc(*len ? *len : 1);
    *name = tm_strdup(rr->name ? rr->name : "");
    if (out && *name)
        workflow__workflow_data__pack(&wd, out);
    trellis__v1__resume_request__free_unpacked(rr, NULL);
    if (!out || !*name) {
        free(out);
        free(*name);
        *name = NULL;
        return NULL;
    }
    return out;
}
