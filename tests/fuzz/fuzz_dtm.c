/*
 * fuzz_dtm: libFuzzer target for DTM's requests (service dtmgimp.Dtm) as
 * trellisd translates them (tm_dtm_map.c), and for the JSON reader under
 * them (tm_json.c).
 *
 * Input: byte 0 picks a family — JSON text, Submit, Prepare, Abort
 * (DtmRequest), RegisterBranch (DtmBranchRequest), the topic methods
 * (DtmTopicRequest), PrepareWorkflow (DtmRequest) — and the rest is the JSON
 * text or the request as a gRPC frame carries it. A request first passes
 * tm_server's check before every handler (trellis_wire.h), as in
 * fuzz_tm_request.
 *
 * Invariants: a refusal always says why; a request the mapping accepts
 * becomes a trellis.v1 request whose bytes pass the same NUL check (no
 * string from the JSON carries a NUL) and whose submit hash is the same
 * when mapped twice (the idempotency of a repeated Submit rests on it);
 * JSON that parses has the shape the reader promises (keys only in
 * objects, no NUL inside strings); every allocation is freed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "fuzz_model.h"
#include "tm_dtm_map.h"
#include "tm_dtm_workflow.h"
#include "tm_request.h"
#include "trellis_wire.h"

static void require_shape(const tm_json_t *j, int depth)
{
    fz_require(depth <= TM_JSON_MAX_DEPTH + 1, "a tree deeper than allowed");
    if (j->type == TM_JSON_STRING)
        fz_require(j->str != NULL, "a string without its text");
    for (size_t i = 0; i < j->n_items; i++) {
        const tm_json_t *it = &j->items[i];
        fz_require((j->type == TM_JSON_OBJECT) == (it->key != NULL),
                   "a member name outside an object, or none inside");
        require_shape(it, depth + 1);
    }
}

static void json(const uint8_t *p, size_t n)
{
    char err[256] = "";
    tm_json_t *j = NULL;
    if (tm_json_parse((const char *)p, n, &j, err, sizeof(err)) != 0) {
        fz_require(j == NULL && err[0] != '\0', "a refusal without a message");
        return;
    }
    require_shape(j, 1);
    tm_json_free(j);
}

/* The mapped request, packed: its bytes pass the wire check. */
static void require_mapped_ok(const tm_dtm_req_t *q)
{
    const ProtobufCMessage *m = q->to == TM_DTM_TO_BEGIN     ? &q->begin.base
                                : q->to == TM_DTM_TO_SUBMIT  ? &q->submit.base
                                : q->to == TM_DTM_TO_MESSAGE ? &q->message.base
                                : q->to == TM_DTM_TO_ABORT   ? &q->abort.base
                                : q->to == TM_DTM_TO_START_WORKFLOW
                                    ? &q->start.base
                                    : &q->reg.base;
    fz_require_repack_checks(m);
    if (q->to == TM_DTM_TO_PROGRESS)
        fz_require_repack_checks(&q->record.base);
}

typedef int (*map_fn)(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                      tm_dtm_req_t *q, char *err, size_t errlen);

static void request(const uint8_t *p, size_t n, map_fn map)
{
    tm_limits_t lim = fz_default_limits();
    Dtmgimp__DtmRequest *r = dtmgimp__dtm_request__unpack(NULL, n, p);
    if (!r)
        return;
    char err[512] = "", err2[512] = "";
    tm_dtm_req_t q, q2;
    int rc = map(r, &lim, &q, err, sizeof(err));
    int rc2 = map(r, &lim, &q2, err2, sizeof(err2));
    fz_require(rc == rc2, "the same request mapped two ways");
    if (rc != 0) {
        fz_require(err[0] != '\0', "a refusal without a message");
    } else {
        require_mapped_ok(&q);
        if (q.to == TM_DTM_TO_SUBMIT)
            fz_require(tm_request_submit_hash(&q.submit) ==
                           tm_request_submit_hash(&q2.submit),
                       "a Submit that hashes two ways");
    }
    tm_dtm_req_free(&q);
    tm_dtm_req_free(&q2);
    dtmgimp__dtm_request__free_unpacked(r, NULL);
}

static void submit(const uint8_t *p, size_t n)
{
    request(p, n, tm_dtm_map_submit);
}

static void prepare(const uint8_t *p, size_t n)
{
    request(p, n, tm_dtm_map_prepare);
}

static void abort_(const uint8_t *p, size_t n)
{
    request(p, n, tm_dtm_map_abort);
}

static void prepare_workflow(const uint8_t *p, size_t n)
{
    request(p, n, tm_dtm_map_prepare_workflow);
}

static void register_branch(const uint8_t *p, size_t n)
{
    tm_limits_t lim = fz_default_limits();
    Dtmgimp__DtmBranchRequest *r =
        dtmgimp__dtm_branch_request__unpack(NULL, n, p);
    if (!r)
        return;
    char err[512] = "";
    tm_dtm_req_t q;
    int rc = tm_dtm_map_register(r, &lim, &q, err, sizeof(err));
    if (rc != 0)
        fz_require(err[0] != '\0', "a refusal without a message");
    else
        require_mapped_ok(&q);
    tm_dtm_req_free(&q);
    dtmgimp__dtm_branch_request__free_unpacked(r, NULL);
}

static void topic(const uint8_t *p, size_t n)
{
    tm_limits_t lim = fz_default_limits();
    Dtmgimp__DtmTopicRequest *r =
        dtmgimp__dtm_topic_request__unpack(NULL, n, p);
    if (!r)
        return;
    char err[512] = "";
    Trellis__V1__SubscribeRequest s;
    Trellis__V1__UnsubscribeRequest u;
    if (tm_dtm_map_subscribe(r, &lim, &s, err, sizeof(err)) != 0)
        fz_require(err[0] != '\0', "a refusal without a message");
    err[0] = '\0';
    if (tm_dtm_map_unsubscribe(r, &u, err, sizeof(err)) != 0)
        fz_require(err[0] != '\0', "a refusal without a message");
    err[0] = '\0';
    if (tm_dtm_check_delete_topic(r, err, sizeof(err)) != 0)
        fz_require(err[0] != '\0', "a refusal without a message");
    dtmgimp__dtm_topic_request__free_unpacked(r, NULL);
}

typedef void (*family_fn)(const uint8_t *p, size_t n);

static const family_fn families[] = {
    json, submit, prepare, abort_, register_branch, topic, prepare_workflow};
static const ProtobufCMessageDescriptor *const request_types[] = {
    NULL,
    &dtmgimp__dtm_request__descriptor,
    &dtmgimp__dtm_request__descriptor,
    &dtmgimp__dtm_request__descriptor,
    &dtmgimp__dtm_branch_request__descriptor,
    &dtmgimp__dtm_topic_request__descriptor,
    &dtmgimp__dtm_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    _Static_assert(sizeof(families) / sizeof(families[0]) ==
                       sizeof(request_types) / sizeof(request_types[0]),
                   "a request type for every family");
    size_t f = data[0] % (sizeof(families) / sizeof(families[0]));
    const ProtobufCMessageDescriptor *d = request_types[f];
    if (d) {
        char err[320] = "";
        int rc =
            trellis_wire_check_strings(d, data + 1, size - 1, err, sizeof(err));
        if (rc != TRELLIS_WIRE_OK)
            return 0;
    }
    families[f](data + 1, size - 1);
    return 0;
}
