/*
 * tm_dtm_map: DTM's requests (package dtmgimp, proto/dtm/dtmgimp.proto)
 * translated into the trellis.v1 requests the engine already serves, and
 * checked whole on the way, so that a DTM request that cannot be mapped is
 * refused before anything is stored. Pure functions: no state, no I/O;
 * the gRPC half is tm_api_dtm.c, the side-by-side behaviour is
 * docs/dtm-compat.md.
 *
 *   DTM                               trellis.v1
 *   Submit   saga (Steps)             Submit with steps (concurrent and
 *                                     depends_on from CustomedData)
 *   Submit   msg with Steps           PrepareMessage, submit set
 *   Submit   msg/tcc/xa, no Steps      Submit(gid), no steps
 *   Prepare  tcc, xa                  Begin
 *   Prepare  msg                      PrepareMessage (QueryPrepared)
 *   Abort    any                      Abort (RollbackReason as reason)
 *   RegisterBranch tcc (confirm,      RegisterBranch, mode TCC
 *            cancel), xa (url)        RegisterBranch, mode XA (commit and
 *                                     rollback at url)
 *
 * Workflows (tm_dtm_workflow.h): PrepareWorkflow becomes StartWorkflow
 * with a DTM head, RegisterBranch of a workflow one recorded progress
 * (register and record in one), Submit with ReqExtra's status Submit or
 * Abort; Prepare of a workflow is refused TM_DTM_UNSUPPORTED.
 *
 * TransOptions: WaitResult as is; TimeoutToFail, RetryInterval,
 * RequestTimeout (seconds) as *_ms; RetryLimit; BranchHeaders sorted by
 * key (a Go client sends a map in random order, and the submit hash that
 * makes a repeated Submit idempotent must not depend on it).
 *
 * Threads: any; every function works on its arguments only.
 */
#ifndef TM_DTM_MAP_H
#define TM_DTM_MAP_H

#include <stddef.h>

#include "dtm/dtmgimp.pb-c.h"
#include "tm_json.h"
#include "tm_trans.h"
#include "tm_validate.h"
#include "trellis/v1/tm.pb-c.h"

/* What the mapping returns besides 0, TM_INVALID and TM_DENIED
 * (tm_validate.h): a well-formed DTM request that trellisd does not serve
 * (an HTTP target, a delayed message): err names what. Answered
 * UNIMPLEMENTED. */
#define TM_DTM_UNSUPPORTED (-3)

/* Which trellis.v1 request a DTM request became. */
typedef enum {
    TM_DTM_TO_BEGIN,
    TM_DTM_TO_SUBMIT,
    TM_DTM_TO_MESSAGE,
    TM_DTM_TO_ABORT,
    TM_DTM_TO_REGISTER,
    TM_DTM_TO_START_WORKFLOW, /* start, as a DTM workflow's head */
    TM_DTM_TO_PROGRESS,       /* reg and record, in one write */
} tm_dtm_to_t;

/* One translated request: `to` says which member is filled. It owns every
 * pointer inside it (freed by tm_dtm_req_free), except strings borrowed
 * from the DTM request it was made from, which must outlive it. */
typedef struct {
    tm_dtm_to_t to;
    Trellis__V1__BeginRequest begin;
    Trellis__V1__SubmitRequest submit;
    Trellis__V1__PrepareMessageRequest message;
    Trellis__V1__AbortRequest abort;
    Trellis__V1__RegisterBranchRequest reg;
    Trellis__V1__StartWorkflowRequest start;
    Trellis__V1__RecordStepRequest record;
    /* storage behind the members above */
    Trellis__V1__TransOptions options;
    Trellis__V1__Header *headers;
    Trellis__V1__Header **header_ptrs;
    Trellis__V1__SagaStep *saga_steps;
    Trellis__V1__SagaStep **saga_ptrs;
    Trellis__V1__MessageStep *msg_steps;
    Trellis__V1__MessageStep **msg_ptrs;
    uint32_t **deps; /* one array per step, or NULL */
    size_t n_deps_arrays;
    Trellis__V1__BranchOp ops[2];
    Trellis__V1__BranchOp *op_ptrs[2];
    tm_json_t *steps_json;  /* the parsed Steps: step targets point in */
    tm_json_t *custom_json; /* a workflow's parsed CustomedData */
    uint8_t *input;         /* a workflow's input, decoded from base64 */
    char progress_id[TM_BRANCH_ID_MAX + 1]; /* a progress's branch id */
} tm_dtm_req_t;

/* Each maps r into *q (which it initialises; free it with tm_dtm_req_free
 * whatever the result) and checks the result as the trellis.v1 request
 * would be checked (tm_validate.h, with l). Returns 0, or TM_INVALID,
 * TM_DENIED or TM_DTM_UNSUPPORTED with err naming the DTM field (Steps[1]
 * .action, TransOptions.TimeoutToFail, ...) and what is wrong. */
int tm_dtm_map_submit(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                      tm_dtm_req_t *q, char *err, size_t errlen);
int tm_dtm_map_prepare(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                       tm_dtm_req_t *q, char *err, size_t errlen);
int tm_dtm_map_abort(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                     tm_dtm_req_t *q, char *err, size_t errlen);
int tm_dtm_map_register(const Dtmgimp__DtmBranchRequest *r,
                        const tm_limits_t *l, tm_dtm_req_t *q, char *err,
                        size_t errlen);

void tm_dtm_req_free(tm_dtm_req_t *q);
/* An empty request (what each map function starts from). */
void tm_dtm_req_init(tm_dtm_req_t *q);

/* Topics. Subscribe: Topic, URL (a gRPC target, allowed) and Remark into
 * *out, checked as trellis.v1's Subscribe. Unsubscribe: Topic and URL.
 * DeleteTopic: the Topic only (checked). Strings in *out are borrowed from
 * r. Same returns as above. */
int tm_dtm_map_subscribe(const Dtmgimp__DtmTopicRequest *r,
                         const tm_limits_t *l,
                         Trellis__V1__SubscribeRequest *out, char *err,
                         size_t errlen);
int tm_dtm_map_unsubscribe(const Dtmgimp__DtmTopicRequest *r,
                           Trellis__V1__UnsubscribeRequest *out, char *err,
                           size_t errlen);
int tm_dtm_check_delete_topic(const Dtmgimp__DtmTopicRequest *r, char *err,
                              size_t errlen);

/* DTM's name of a transaction status: prepared, submitted, aborting,
 * succeed, failed (static storage). */
const char *tm_dtm_status_name(tm_tx_status_t s);

/* ---- shared with tm_dtm_workflow.c -------------------------------------- */

/* Format err and return code. */
int tm_dtm_refuse(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 1 for a non-empty string. */
int tm_dtm_has(const char *s);
/* A target that is a URL (scheme://) is refused TM_DTM_UNSUPPORTED,
 * naming what; 0 otherwise (its syntax is tm_validate's). */
int tm_dtm_check_scheme(const char *target, const char *what, char *err,
                        size_t errlen);
/* r's TransOptions into q->options (seconds to ms, headers sorted). */
int tm_dtm_map_options(const Dtmgimp__DtmRequest *r, const tm_limits_t *l,
                       tm_dtm_req_t *q, char *err, size_t errlen);
/* 1 when Steps holds no step ("", "null", "[]"). */
int tm_dtm_no_steps(const char *s);
/* Data[key] of a branch request, or NULL (borrowed from r). */
const char *tm_dtm_data_value(const Dtmgimp__DtmBranchRequest *r,
                              const char *key);
/* Every Data key is one of allowed (NULL-terminated), none twice; words
 * says which for the message. */
int tm_dtm_check_data_keys(const Dtmgimp__DtmBranchRequest *r,
                           const char *const *allowed, const char *words,
                           char *err, size_t errlen);

#endif /* TM_DTM_MAP_H */
