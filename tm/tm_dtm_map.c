/*
 * tm_dtm_map: DTM's requests as trellis.v1 requests (see tm_dtm_map.h).
 * Owns nothing beyond the tm_dtm_req_t it fills; every refusal names the
 * DTM field, so a DTM user reads the words of the request they sent.
 */
#include "tm_dtm_map.h"

#include "tm_dtm_workflow.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A msg step's action naming a topic, as DTM writes it. */
#define DTM_TOPIC_PREFIX "topic://"

int tm_dtm_refuse(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

int tm_dtm_has(const char *s)
{
    return s && *s;
}

static int oom(char *err, size_t errlen)
{
    return tm_dtm_refuse(TM_INVALID, err, errlen,
                         "out of memory mapping a DTM "
                         "request");
}

void tm_dtm_req_init(tm_dtm_req_t *q)
{
    memset(q, 0, sizeof(*q));
    trellis__v1__begin_request__init(&q->begin);
    trellis__v1__submit_request__init(&q->submit);
    trellis__v1__prepare_message_request__init(&q->message);
    trellis__v1__abort_request__init(&q->abort);
    trellis__v1__register_branch_request__init(&q->reg);
    trellis__v1__trans_options__init(&q->options);
    trellis__v1__start_workflow_request__init(&q->start);
    trellis__v1__record_step_request__init(&q->record);
}

void tm_dtm_req_free(tm_dtm_req_t *q)
{
    for (size_t i = 0; i < q->n_deps_arrays; i++)
        free(q->deps[i]);
    free(q->deps);
    free(q->headers);
    free(q->header_ptrs);
    free(q->saga_steps);
    free(q->saga_ptrs);
    free(q->msg_steps);
    free(q->msg_ptrs);
    tm_json_free(q->steps_json);
    tm_json_free(q->custom_json);
    free(q->input);
    memset(q, 0, sizeof(*q));
}

const char *tm_dtm_status_name(tm_tx_status_t s)
{
    /* DTM spells one of them differently; the others are trellisd's. */
    return s == TM_TX_SUCCEEDED ? "succeed" : tm_tx_status_name(s);
}

/* ---- targets -------------------------------------------------------------
 * DTM targets are URLs (http://, https://, or a gRPC resolver's scheme such
 * as discovery:// or etcd://) or gRPC's host:port/package.Service/Method.
 * trellisd calls only the last; a scheme is refused as unsupported, naming
 * it, before the target syntax is checked (tm_validate). */

int tm_dtm_check_scheme(const char *target, const char *what, char *err,
                        size_t errlen)
{
    const char *sep = target ? strstr(target, "://") : NULL;
    if (!sep)
        return 0;
    int n = (int)(sep - target);
    if (n > 16)
        n = 16;
    return tm_dtm_refuse(
        TM_DTM_UNSUPPORTED, err, errlen,
        "%s is a URL with scheme %.*s://: trellisd's DTM service "
        "calls only gRPC targets host:port/package.Service/Method "
        "(no HTTP branches, no resolver schemes)",
        what, n, target);
}

/* ---- options ------------------------------------------------------------- */

static int seconds_to_ms(int64_t s, const char *name, const tm_limits_t *l,
                         uint32_t *out, char *err, size_t errlen)
{
    int64_t max_s = l->max_option_ms / 1000;
    if (s < 0)
        return tm_dtm_refuse(
            TM_INVALID, err, errlen,
            "TransOptions.%s is %" PRId64 "; seconds, 0 or more", name, s);
    if (s > max_s)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "TransOptions.%s is %" PRId64
                             " s; at most %" PRId64 " s allowed",
                             name, s, max_s);
    *out = (uint32_t)(s * 1000);
    return 0;
}

static int by_key(const void *a, const void *b)
{
    const Trellis__V1__Header *x = *(Trellis__V1__Header *const *)a;
    const Trellis__V1__Header *y = *(Trellis__V1__Header *const *)b;
    return strcmp(x->key, y->key);
}

static int map_headers(const Dtmgimp__DtmTransOptions *o, tm_dtm_req_t *q,
                       char *err, size_t errlen)
{
    size_t n = o->n_branchheaders;
    if (!n)
        return 0;
    q->headers = calloc(n, sizeof(*q->headers));
    q->header_ptrs = calloc(n, sizeof(*q->header_ptrs));
    if (!q->headers || !q->header_ptrs)
        return oom(err, errlen);
    for (size_t i = 0; i < n; i++) {
        trellis__v1__header__init(&q->headers[i]);
        q->headers[i].key = o->branchheaders[i]->key;
        q->headers[i].value = o->branchheaders[i]->value;
        q->header_ptrs[i] = &q->headers[i];
    }
    qsort(q->header_ptrs, n, sizeof(*q->header_ptrs), by_key);
    for (size_t i = 1; i < n; i++)
        if (strcmp(q->header_ptrs[i - 1]->key, q->header_ptrs[i]->key) == 0)
            return tm_dtm_refuse(
                TM_INVALID, err, errlen,
                "TransOptions.BranchHeaders names \"%s\" twice",
                q->header_ptrs[i]->key);
    q->options.branch_headers = q->header_ptrs;
    q->options.n_branch_headers = n;
    return 0;
}

/* r's TransOptions into q->options (absent: every default). */
int tm_dtm_map_options(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                       tm_dtm_req_t *q, char *err, size_t errlen)
{
    const Dtmgimp__DtmTransOptions *o = r->transoptions;
    if (!o)
        return 0;
    Trellis__V1__TransOptions *t = &q->options;
    t->wait_result = o->waitresult;
    if (seconds_to_ms(o->timeouttofail, "TimeoutToFail", l,
                      &t->timeout_to_fail_ms, err, errlen) != 0 ||
        seconds_to_ms(o->retryinterval, "RetryInterval", l,
                      &t->retry_interval_ms, err, errlen) != 0 ||
        seconds_to_ms(o->requesttimeout, "RequestTimeout", l,
                      &t->request_timeout_ms, err, errlen) != 0)
        return TM_INVALID;
    if (o->retrylimit < 0 || o->retrylimit > (int64_t)UINT32_MAX)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "TransOptions.RetryLimit is %" PRId64
                             "; 0 (no limit) to %" PRIu32,
                             o->retrylimit, UINT32_MAX);
    t->retry_limit = (uint32_t)o->retrylimit;
    return map_headers(o, q, err, errlen);
}

/* ---- CustomedData: {"concurrent": bool, "orders": {...}, "delay": n} ----- */

typedef struct {
    int concurrent;
    const tm_json_t *orders; /* NULL: none */
    tm_json_t *doc;          /* owned */
} custom_t;

static int parse_custom(const char *text, custom_t *c, char *err, size_t errlen)
{
    char why[200];
    memset(c, 0, sizeof(*c));
    if (!tm_dtm_has(text))
        return 0;
    if (tm_json_parse(text, strlen(text), &c->doc, why, sizeof(why)) != 0)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "CustomedData is not JSON: %s", why);
    if (c->doc->type != TM_JSON_OBJECT)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "CustomedData is %s; a JSON object expected",
                             tm_json_type_name(c->doc->type));
    for (size_t i = 0; i < c->doc->n_items; i++) {
        const tm_json_t *m = &c->doc->items[i];
        if (strcmp(m->key, "concurrent") == 0 && m->type == TM_JSON_BOOL) {
            c->concurrent = m->boolean;
        } else if (strcmp(m->key, "orders") == 0 &&
                   (m->type == TM_JSON_OBJECT || m->type == TM_JSON_NULL)) {
            c->orders = m->type == TM_JSON_OBJECT ? m : NULL;
        } else if (strcmp(m->key, "delay") == 0 && m->type == TM_JSON_NUMBER) {
            if (!m->is_integer || m->integer != 0)
                return tm_dtm_refuse(
                    TM_DTM_UNSUPPORTED, err, errlen,
                    "CustomedData.delay: delayed messages are not "
                    "supported by trellisd");
        } else {
            return tm_dtm_refuse(
                TM_INVALID, err, errlen,
                "CustomedData has \"%s\" (%s); known are "
                "concurrent (a boolean), orders (an object) and "
                "delay (0)",
                m->key, tm_json_type_name(m->type));
        }
    }
    return 0;
}

/* Parse a decimal index in [0, n) from the whole of s. */
static int parse_index(const char *s, size_t n, size_t *out)
{
    size_t v = 0;
    if (!*s || (s[0] == '0' && s[1]))
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > n)
            return -1;
        v = v * 10 + (size_t)(*s - '0');
    }
    if (v >= n)
        return -1;
    *out = v;
    return 0;
}

/* orders {"k": [j, ...]}: step k waits for steps j (each j < k), into the
 * steps' depends_on. */
static int map_orders(const custom_t *c, tm_dtm_req_t *q, size_t n_steps,
                      Trellis__V1__SagaStep *steps, char *err, size_t errlen)
{
    if (!c->orders)
        return 0;
    for (size_t i = 0; i < c->orders->n_items; i++) {
        const tm_json_t *m = &c->orders->items[i];
        size_t k;
        if (parse_index(m->key, n_steps, &k) != 0)
            return tm_dtm_refuse(
                TM_INVALID, err, errlen,
                "CustomedData.orders has key \"%s\"; keys are step "
                "indexes 0..%zu",
                m->key, n_steps ? n_steps - 1 : 0);
        if (m->type != TM_JSON_ARRAY)
            return tm_dtm_refuse(
                TM_INVALID, err, errlen,
                "CustomedData.orders[\"%s\"] is %s; an array of "
                "step indexes expected",
                m->key, tm_json_type_name(m->type));
        if (steps[k].n_depends_on)
            return tm_dtm_refuse(TM_INVALID, err, errlen,
                                 "CustomedData.orders names step %zu twice", k);
        uint32_t *d = calloc(m->n_items ? m->n_items : 1, sizeof(*d));
        if (!d)
            return oom(err, errlen);
        q->deps[q->n_deps_arrays++] = d;
        for (size_t j = 0; j < m->n_items; j++) {
            const tm_json_t *v = &m->items[j];
            if (v->type != TM_JSON_NUMBER || !v->is_integer || v->integer < 0 ||
                (uint64_t)v->integer >= k)
                return tm_dtm_refuse(
                    TM_INVALID, err, errlen,
                    "CustomedData.orders[\"%s\"][%zu] must be the "
                    "index of an earlier step (0..%zu)",
                    m->key, j, k ? k - 1 : 0);
            d[j] = (uint32_t)v->integer;
        }
        steps[k].depends_on = d;
        steps[k].n_depends_on = m->n_items;
    }
    return 0;
}

/* ---- Steps: [{"action": T, "compensate": T}, ...] ------------------------ */

/* 1 when Steps holds no step: "", "null" (a Go client's nil slice) or
 * "[]" around optional whitespace. */
int tm_dtm_no_steps(const char *s)
{
    char buf[8];
    size_t n = 0;
    if (!s)
        return 1;
    for (; *s && n < sizeof(buf) - 1; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            buf[n++] = *s;
    if (*s)
        return 0;
    buf[n] = '\0';
    return n == 0 || strcmp(buf, "null") == 0 || strcmp(buf, "[]") == 0;
}

/* Parse r->Steps into q->steps_json: an array of objects with string
 * values, keys only among allowed (NULL-terminated), one BinPayloads entry
 * per step. */
static int parse_steps(const Dtmgimp__DtmRequest *r, const char *const *allowed,
                       tm_dtm_req_t *q, char *err, size_t errlen)
{
    char why[200];
    if (tm_json_parse(r->steps, strlen(r->steps), &q->steps_json, why,
                      sizeof(why)) != 0)
        return tm_dtm_refuse(TM_INVALID, err, errlen, "Steps is not JSON: %s",
                             why);
    const tm_json_t *a = q->steps_json;
    if (a->type != TM_JSON_ARRAY)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "Steps is %s; a JSON array of steps expected",
                             tm_json_type_name(a->type));
    for (size_t i = 0; i < a->n_items; i++) {
        const tm_json_t *s = &a->items[i];
        if (s->type != TM_JSON_OBJECT)
            return tm_dtm_refuse(TM_INVALID, err, errlen,
                                 "Steps[%zu] is %s; an object expected", i,
                                 tm_json_type_name(s->type));
        for (size_t k = 0; k < s->n_items; k++) {
            const tm_json_t *m = &s->items[k];
            size_t w = 0;
            while (allowed[w] && strcmp(allowed[w], m->key) != 0)
                w++;
            if (!allowed[w])
                return tm_dtm_refuse(
                    TM_INVALID, err, errlen,
                    "Steps[%zu] has \"%s\"; a %s step has only %s%s", i, m->key,
                    r->transtype, allowed[0],
                    allowed[1] ? " and compensate" : "");
            if (m->type != TM_JSON_STRING)
                return tm_dtm_refuse(
                    TM_INVALID, err, errlen,
                    "Steps[%zu].%s is %s; a target string expected", i, m->key,
                    tm_json_type_name(m->type));
        }
    }
    if (r->n_binpayloads != a->n_items)
        return tm_dtm_refuse(
            TM_INVALID, err, errlen,
            "BinPayloads has %zu entries and Steps %zu: one payload "
            "per step",
            r->n_binpayloads, a->n_items);
    return 0;
}

static const char *step_target(const tm_json_t *step, const char *key)
{
    const tm_json_t *v = tm_json_get(step, key);
    return v ? v->str : "";
}

static int alloc_steps(tm_dtm_req_t *q, size_t n, int saga, char *err,
                       size_t errlen)
{
    size_t m = n ? n : 1;
    if (saga) {
        q->saga_steps = calloc(m, sizeof(*q->saga_steps));
        q->saga_ptrs = calloc(m, sizeof(*q->saga_ptrs));
        q->deps = calloc(m, sizeof(*q->deps));
        if (!q->saga_steps || !q->saga_ptrs || !q->deps)
            return oom(err, errlen);
    } else {
        q->msg_steps = calloc(m, sizeof(*q->msg_steps));
        q->msg_ptrs = calloc(m, sizeof(*q->msg_ptrs));
        if (!q->msg_steps || !q->msg_ptrs)
            return oom(err, errlen);
    }
    return 0;
}

static int map_saga(const Dtmgimp__DtmRequest *r, tm_dtm_req_t *q, char *err,
                    size_t errlen)
{
    static const char *const keys[] = {"action", "compensate", NULL};
    custom_t c;
    char what[48];
    int rc = parse_custom(r->customeddata, &c, err, errlen);
    if (rc == 0)
        rc = parse_steps(r, keys, q, err, errlen);
    size_t n = rc == 0 ? q->steps_json->n_items : 0;
    if (rc == 0 && n == 0)
        rc = tm_dtm_refuse(TM_INVALID, err, errlen,
                           "Steps is empty: a saga has at least one step");
    if (rc == 0)
        rc = alloc_steps(q, n, 1, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const tm_json_t *s = &q->steps_json->items[i];
        Trellis__V1__SagaStep *t = &q->saga_steps[i];
        trellis__v1__saga_step__init(t);
        t->action = (char *)step_target(s, "action");
        t->compensate = (char *)step_target(s, "compensate");
        t->payload = r->binpayloads[i];
        q->saga_ptrs[i] = t;
        snprintf(what, sizeof(what), "Steps[%zu].action", i);
        rc = tm_dtm_check_scheme(t->action, what, err, errlen);
        snprintf(what, sizeof(what), "Steps[%zu].compensate", i);
        if (rc == 0)
            rc = tm_dtm_check_scheme(t->compensate, what, err, errlen);
    }
    if (rc == 0)
        rc = map_orders(&c, q, n, q->saga_steps, err, errlen);
    tm_json_free(c.doc);
    if (rc != 0)
        return rc;
    q->to = TM_DTM_TO_SUBMIT;
    q->submit.steps = q->saga_ptrs;
    q->submit.n_steps = n;
    q->submit.concurrent = c.concurrent;
    return 0;
}

/* A message: Steps (actions only; "topic://NAME" names a topic), the
 * back-check, and submit (Submit) or not (Prepare). */
static int map_message(const Dtmgimp__DtmRequest *r, int submit,
                       tm_dtm_req_t *q, char *err, size_t errlen)
{
    static const char *const keys[] = {"action", NULL};
    custom_t c;
    char what[48];
    int rc = parse_custom(r->customeddata, &c, err, errlen);
    if (rc == 0 && (c.concurrent || c.orders))
        rc =
            tm_dtm_refuse(TM_DTM_UNSUPPORTED, err, errlen,
                          "CustomedData: concurrent and orders are a saga's; a "
                          "DTM message is delivered in order");
    tm_json_free(c.doc);
    if (rc == 0)
        rc = parse_steps(r, keys, q, err, errlen);
    size_t n = rc == 0 ? q->steps_json->n_items : 0;
    if (rc == 0)
        rc = alloc_steps(q, n, 0, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        Trellis__V1__MessageStep *t = &q->msg_steps[i];
        const char *action = step_target(&q->steps_json->items[i], "action");
        trellis__v1__message_step__init(t);
        if (strncmp(action, DTM_TOPIC_PREFIX, strlen(DTM_TOPIC_PREFIX)) == 0)
            t->topic = (char *)action + strlen(DTM_TOPIC_PREFIX);
        else
            t->target = (char *)action;
        t->payload = r->binpayloads[i];
        q->msg_ptrs[i] = t;
        snprintf(what, sizeof(what), "Steps[%zu].action", i);
        rc = tm_dtm_has(t->target)
                 ? tm_dtm_check_scheme(t->target, what, err, errlen)
                 : 0;
    }
    if (rc == 0 && !submit && !tm_dtm_has(r->queryprepared))
        rc = tm_dtm_refuse(
            TM_INVALID, err, errlen,
            "QueryPrepared is empty: a prepared message needs the "
            "back-check target trellisd calls when neither Submit "
            "nor Abort comes in time");
    if (rc == 0)
        rc =
            tm_dtm_check_scheme(r->queryprepared, "QueryPrepared", err, errlen);
    if (rc != 0)
        return rc;
    q->to = TM_DTM_TO_MESSAGE;
    q->message.gid = r->gid;
    q->message.steps = q->msg_ptrs;
    q->message.n_steps = n;
    q->message.query_prepared = r->queryprepared;
    q->message.options = &q->options;
    q->message.submit = submit;
    return 0;
}

/* ---- the requests -------------------------------------------------------- */

typedef enum {
    TT_SAGA,
    TT_MSG,
    TT_TCC,
    TT_XA,
    TT_WORKFLOW,
    TT_UNKNOWN
} trans_type_t;

static trans_type_t trans_type(const char *s)
{
    static const char *const names[] = {"saga", "msg", "tcc", "xa", "workflow"};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        if (s && strcmp(s, names[i]) == 0)
            return (trans_type_t)i;
    return TT_UNKNOWN;
}

static int unknown_type(const char *s, char *err, size_t errlen)
{
    return tm_dtm_refuse(TM_INVALID, err, errlen,
                         "TransType \"%s\" is not one of saga, msg, tcc, xa, "
                         "workflow",
                         s ? s : "");
}

/* Steps, BinPayloads, QueryPrepared and CustomedData belong to sagas and
 * messages: a tcc or xa request carrying any is refused rather
 * than silently dropped. */
static int refuse_step_fields(const Dtmgimp__DtmRequest *r, char *err,
                              size_t errlen)
{
    const char *field = !tm_dtm_no_steps(r->steps)     ? "Steps"
                        : r->n_binpayloads             ? "BinPayloads"
                        : tm_dtm_has(r->queryprepared) ? "QueryPrepared"
                        : tm_dtm_has(r->customeddata)  ? "CustomedData"
                                                       : NULL;
    if (!field)
        return 0;
    return tm_dtm_refuse(TM_INVALID, err, errlen,
                         "%s is given to a %s transaction, which has none (its "
                         "branches are registered with RegisterBranch)",
                         field, r->transtype);
}

/* Submit(gid) with no steps: a begun transaction (tcc, xa, workflow) or a
 * prepared message is decided. */
static void submit_decision(const Dtmgimp__DtmRequest *r, tm_dtm_req_t *q)
{
    q->to = TM_DTM_TO_SUBMIT;
    q->submit.gid = r->gid;
    q->submit.options = &q->options;
}

/* Check the trellis.v1 request q became, as that request would be. */
static int validate_mapped(tm_dtm_req_t *q, const tm_limits_t *l, char *err,
                           size_t errlen)
{
    switch (q->to) {
    case TM_DTM_TO_BEGIN:
        return tm_validate_begin(&q->begin, l, err, errlen);
    case TM_DTM_TO_SUBMIT:
        return tm_validate_submit(&q->submit, l, err, errlen);
    case TM_DTM_TO_MESSAGE:
        return tm_validate_prepare_message(&q->message, l, err, errlen);
    case TM_DTM_TO_ABORT:
        return tm_validate_abort(&q->abort, err, errlen);
    case TM_DTM_TO_REGISTER:
        return tm_validate_register(&q->reg, l, err, errlen);
    case TM_DTM_TO_START_WORKFLOW:
        return tm_validate_start_workflow(&q->start, l, err, errlen);
    case TM_DTM_TO_PROGRESS: {
        int rc = tm_validate_register(&q->reg, l, err, errlen);
        return rc != 0 ? rc
                       : tm_validate_record_step(&q->record, l, err, errlen);
    }
    }
    return tm_dtm_refuse(TM_INVALID, err, errlen, "unmapped request");
}

int tm_dtm_map_submit(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                      tm_dtm_req_t *q, char *err, size_t errlen)
{
    tm_dtm_req_init(q);
    trans_type_t tt = trans_type(r->transtype);
    int rc = tm_dtm_map_options(r, l, q, err, errlen);
    if (rc != 0)
        return rc;
    switch (tt) {
    case TT_SAGA:
        rc = map_saga(r, q, err, errlen);
        q->submit.gid = r->gid;
        q->submit.options = &q->options;
        break;
    case TT_MSG:
        if (tm_dtm_no_steps(r->steps) && !r->n_binpayloads)
            submit_decision(r, q);
        else
            rc = map_message(r, 1, q, err, errlen);
        break;
    case TT_TCC:
    case TT_XA:
        rc = refuse_step_fields(r, err, errlen);
        submit_decision(r, q);
        break;
    case TT_WORKFLOW:
        rc = tm_dtm_map_workflow_end(r, q, err, errlen);
        break;
    default:
        return unknown_type(r->transtype, err, errlen);
    }
    return rc != 0 ? rc : validate_mapped(q, l, err, errlen);
}

int tm_dtm_map_prepare(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                       tm_dtm_req_t *q, char *err, size_t errlen)
{
    tm_dtm_req_init(q);
    trans_type_t tt = trans_type(r->transtype);
    int rc = tm_dtm_map_options(r, l, q, err, errlen);
    if (rc != 0)
        return rc;
    switch (tt) {
    case TT_MSG:
        rc = map_message(r, 0, q, err, errlen);
        break;
    case TT_TCC:
    case TT_XA:
        rc = refuse_step_fields(r, err, errlen);
        q->to = TM_DTM_TO_BEGIN;
        q->begin.gid = r->gid;
        q->begin.options = &q->options;
        break;
    case TT_SAGA:
        return tm_dtm_refuse(
            TM_DTM_UNSUPPORTED, err, errlen,
            "Prepare of a saga: trellisd takes a saga whole, in "
            "one Submit with its Steps");
    case TT_WORKFLOW:
        return tm_dtm_refuse(TM_DTM_UNSUPPORTED, err, errlen,
                             "Prepare of a workflow: a DTM workflow is "
                             "opened with PrepareWorkflow");
    default:
        return unknown_type(r->transtype, err, errlen);
    }
    return rc != 0 ? rc : validate_mapped(q, l, err, errlen);
}

int tm_dtm_map_abort(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                     tm_dtm_req_t *q, char *err, size_t errlen)
{
    tm_dtm_req_init(q);
    trans_type_t tt = trans_type(r->transtype);
    if (tt == TT_UNKNOWN)
        return unknown_type(r->transtype, err, errlen);
    if (tm_dtm_has(r->rollbackreason) &&
        strlen(r->rollbackreason) > TM_REASON_MAX)
        return tm_dtm_refuse(TM_INVALID, err, errlen,
                             "RollbackReason is longer than %d bytes",
                             TM_REASON_MAX);
    q->to = TM_DTM_TO_ABORT;
    q->abort.gid = r->gid;
    q->abort.reason = r->rollbackreason;
    q->abort.wait_result = r->transoptions && r->transoptions->waitresult;
    return validate_mapped(q, l, err, errlen);
}

/* ---- RegisterBranch ------------------------------------------------------ */

const char *tm_dtm_data_value(const Dtmgimp__DtmBranchRequest *r,
                              const char *key)
{
    for (size_t i = 0; i < r->n_data; i++)
        if (strcmp(r->data[i]->key, key) == 0)
            return r->data[i]->value;
    return NULL;
}

/* Every Data key is one of allowed (NULL-terminated), each at most once. */
int tm_dtm_check_data_keys(const Dtmgimp__DtmBranchRequest *r,
                           const char *const *allowed, const char *words,
                           char *err, size_t errlen)
{
    for (size_t i = 0; i < r->n_data; i++) {
        size_t w = 0;
        while (allowed[w] && strcmp(allowed[w], r->data[i]->key) != 0)
            w++;
        if (!allowed[w])
            return tm_dtm_refuse(TM_INVALID, err, errlen,
                                 "Data has \"%s\"; a %s branch has %s",
                                 r->data[i]->key, r->transtype, words);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->data[j]->key, r->data[i]->key) == 0)
                return tm_dtm_refuse(TM_INVALID, err, errlen,
                                     "Data names \"%s\" twice",
                                     r->data[i]->key);
    }
    return 0;
}

/* Add op kind at target to q->reg (nothing for an empty target: DTM calls
 * no op there). */
static int add_op(tm_dtm_req_t *q, Trellis__V1__OpKind kind, const char *target,
                  const char *what, char *err, size_t errlen)
{
    if (!tm_dtm_has(target))
        return 0;
    int rc = tm_dtm_check_scheme(target, what, err, errlen);
    if (rc != 0)
        return rc;
    Trellis__V1__BranchOp *op = &q->ops[q->reg.n_ops];
    trellis__v1__branch_op__init(op);
    op->op = kind;
    op->target = (char *)target;
    q->op_ptrs[q->reg.n_ops++] = op;
    return 0;
}

static int map_tcc_branch(const Dtmgimp__DtmBranchRequest *r, tm_dtm_req_t *q,
                          char *err, size_t errlen)
{
    static const char *const keys[] = {"confirm", "cancel", NULL};
    int rc = tm_dtm_check_data_keys(r, keys, "confirm and cancel", err, errlen);
    if (rc == 0)
        rc = add_op(q, TRELLIS__V1__OP_KIND__OP_CONFIRM,
                    tm_dtm_data_value(r, "confirm"), "Data.confirm", err,
                    errlen);
    if (rc == 0)
        rc = add_op(q, TRELLIS__V1__OP_KIND__OP_CANCEL,
                    tm_dtm_data_value(r, "cancel"), "Data.cancel", err, errlen);
    q->reg.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    return rc;
}

static int map_xa_branch(const Dtmgimp__DtmBranchRequest *r, tm_dtm_req_t *q,
                         char *err, size_t errlen)
{
    static const char *const keys[] = {"url", NULL};
    const char *url = tm_dtm_data_value(r, "url");
    int rc = tm_dtm_check_data_keys(r, keys, "url only", err, errlen);
    if (rc == 0 && !tm_dtm_has(url))
        rc =
            tm_dtm_refuse(TM_INVALID, err, errlen,
                          "Data.url is empty: an xa branch names the target of "
                          "its commit and rollback");
    if (rc == 0)
        rc = add_op(q, TRELLIS__V1__OP_KIND__OP_COMMIT, url, "Data.url", err,
                    errlen);
    if (rc == 0)
        rc = add_op(q, TRELLIS__V1__OP_KIND__OP_ROLLBACK, url, "Data.url", err,
                    errlen);
    q->reg.mode = TRELLIS__V1__BRANCH_MODE__MODE_XA;
    return rc;
}

int tm_dtm_map_register(const Dtmgimp__DtmBranchRequest *r,
                        const tm_limits_t *l, tm_dtm_req_t *q, char *err,
                        size_t errlen)
{
    tm_dtm_req_init(q);
    int rc;
    switch (trans_type(r->transtype)) {
    case TT_TCC:
        rc = map_tcc_branch(r, q, err, errlen);
        break;
    case TT_XA:
        rc = map_xa_branch(r, q, err, errlen);
        break;
    case TT_SAGA:
    case TT_MSG:
        return tm_dtm_refuse(
            TM_INVALID, err, errlen,
            "RegisterBranch of a %s: its branches are its Steps, "
            "given to Submit or Prepare",
            r->transtype);
    case TT_WORKFLOW:
        rc = tm_dtm_map_progress(r, q, err, errlen);
        return rc != 0 ? rc : validate_mapped(q, l, err, errlen);
    default:
        return unknown_type(r->transtype, err, errlen);
    }
    if (rc != 0)
        return rc;
    q->to = TM_DTM_TO_REGISTER;
    q->reg.gid = r->gid;
    q->reg.branch_id = r->branchid;
    q->reg.payload = r->busipayload;
    q->reg.ops = q->op_ptrs;
    return validate_mapped(q, l, err, errlen);
}

/* ---- topics -------------------------------------------------------------- */

int tm_dtm_map_subscribe(const Dtmgimp__DtmTopicRequest *r,
                         const tm_limits_t *l,
                         Trellis__V1__SubscribeRequest *out, char *err,
                         size_t errlen)
{
    trellis__v1__subscribe_request__init(out);
    out->topic = r->topic;
    out->target = r->url;
    out->remark = r->remark;
    int rc = tm_dtm_check_scheme(r->url, "URL", err, errlen);
    return rc != 0 ? rc : tm_validate_subscribe(out, l, err, errlen);
}

int tm_dtm_map_unsubscribe(const Dtmgimp__DtmTopicRequest *r,
                           Trellis__V1__UnsubscribeRequest *out, char *err,
                           size_t errlen)
{
    trellis__v1__unsubscribe_request__init(out);
    out->topic = r->topic;
    out->target = r->url;
    int rc = tm_dtm_check_scheme(r->url, "URL", err, errlen);
    return rc != 0 ? rc : tm_validate_unsubscribe(out, err, errlen);
}

int tm_dtm_check_delete_topic(const Dtmgimp__DtmTopicRequest *r, char *err,
                              size_t errlen)
{
    if (tm_dtm_has(r->url) || tm_dtm_has(r->remark))
        return tm_dtm_refuse(
            TM_INVALID, err, errlen,
            "DeleteTopic takes the Topic only (URL and Remark are "
            "Subscribe's)");
    return tm_validate_topic(r->topic, err, errlen);
}
