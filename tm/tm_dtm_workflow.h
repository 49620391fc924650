/*
 * tm_dtm_workflow: DTM's workflows (its Go SDK's client/workflow) on
 * Trellis's workflow engine. Pure functions: no state, no I/O; the
 * engine half is tm_engine_workflow.c, the gRPC half tm_api_dtm.c, the
 * behaviour side by side with DTM's docs/dtm-compat.md ("Workflows").
 *
 * DTM's SDK runs the whole workflow in the application — each step's
 * action, and at the end every commit or rollback op — and tells the TM
 * only what it must remember to replay a re-run:
 *
 *   DTM request                       Trellis
 *   PrepareWorkflow (Gid, TransType   StartWorkflow(gid, name, input,
 *     workflow, CustomedData          resume_target = QueryPrepared) with
 *     {"name", "data": base64},       a DTM head (tm_kind_dtm_workflow.c);
 *     QueryPrepared = the service's   a repeat answers the durable state:
 *     workflow.Workflow/Execute)      DtmTransaction + DtmProgress list
 *   RegisterBranch (BranchID, Data    one progress: a local step "B:OP"
 *     {"op", "status"}, BusiPayload)  with no op to call, its forward op
 *                                     recorded (succeed: OK, failed:
 *                                     ABORTED) with BusiPayload, in one
 *                                     write (tm_engine_record_progress)
 *   Submit (ReqExtra status succeed)  Submit(gid): nothing to call, the
 *                                     workflow succeeds in that write
 *   Submit (ReqExtra status failed,   Abort(gid, reason); nothing to call
 *     rollback_reason)                (the SDK ran the rollbacks)
 *
 * and when a prepared workflow outlives TimeoutToFail, trellisd calls the
 * service back as DTM's server does: QueryPrepared with a
 * workflow.WorkflowData{Data: input}, dtm-trans_type "workflow",
 * dtm-branch_id "00", dtm-op the workflow's name (tm_dtm_callback_pack).
 *
 * Threads: any; every function works on its arguments only.
 */
#ifndef TM_DTM_WORKFLOW_H
#define TM_DTM_WORKFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "dtm/dtmgimp.pb-c.h"
#include "tm_dtm_map.h"
#include "tm_trans.h"
#include "tm_validate.h"

/* PrepareWorkflow: r into q->start (q->to TM_DTM_TO_START_WORKFLOW; q is
 * initialised here, free it with tm_dtm_req_free whatever the result),
 * checked as StartWorkflow (tm_validate.h, with l). Returns 0, or
 * TM_INVALID, TM_DENIED or TM_DTM_UNSUPPORTED with err naming the DTM
 * field. */
int tm_dtm_map_prepare_workflow(const Dtmgimp__DtmRequest *r,
                                const tm_limits_t *l, tm_dtm_req_t *q,
                                char *err, size_t errlen);

/* Submit of a workflow (q initialised, options mapped, by the caller):
 * ReqExtra's status "succeed" into q->submit, "failed" into q->abort
 * with ReqExtra's rollback_reason (else RollbackReason). Not yet checked
 * as the trellis.v1 request (the caller does). Returns 0, or TM_INVALID
 * with err. */
int tm_dtm_map_workflow_end(const Dtmgimp__DtmRequest *r, tm_dtm_req_t *q,
                            char *err, size_t errlen);

/* RegisterBranch of a workflow (q initialised by the caller): one
 * progress into q->reg (a local step "BranchID:op", no op) and q->record
 * (OK for status succeed, ABORTED for failed; BusiPayload the result),
 * q->to TM_DTM_TO_PROGRESS. Not yet checked as the trellis.v1 requests.
 * Returns 0, or TM_INVALID with err. */
int tm_dtm_map_progress(const Dtmgimp__DtmBranchRequest *r, tm_dtm_req_t *q,
                        char *err, size_t errlen);

/* PrepareWorkflow's reply built from tx: its gid, DTM status name and
 * reason, and one DtmProgress per recorded step (BranchID and Op split
 * back from the step's id, Status succeed or failed, BinData its
 * result), in recording order. reply's strings and bytes are borrowed
 * from tx, which must outlive it; the arrays are owned. */
typedef struct {
    Dtmgimp__DtmProgressesReply reply;
    Dtmgimp__DtmTransaction trans;
    Dtmgimp__DtmProgress *progresses;
    Dtmgimp__DtmProgress **ptrs;
    char *ids; /* the BranchIDs, TM_BRANCH_ID_MAX + 1 bytes each */
} tm_dtm_progresses_t;

/* Returns 0, or -1 on out of memory (p freed). */
int tm_dtm_progresses_build(const tm_trans_t *tx, tm_dtm_progresses_t *p);
void tm_dtm_progresses_free(tm_dtm_progresses_t *p);

/* The call of a DTM workflow's resume, from its head's stored payload (a
 * trellis.v1.ResumeRequest): returns the packed workflow.WorkflowData
 * with the input as Data (*len set) and the workflow's name in *name,
 * both malloc'ed and the caller's to free; NULL (and *name NULL) on out
 * of memory or a payload that is not a ResumeRequest. */
uint8_t *tm_dtm_callback_pack(const uint8_t *payload, size_t payload_len,
                              char **name, size_t *len);

/* Decode standard padded base64 (what Go's encoding/json makes of a
 * []byte) of n characters into *out (malloc'ed, the caller's; *out_len
 * set; at least one byte allocated). Returns 0, -1 when text is not
 * base64, -2 on out of memory. */
int tm_dtm_base64_decode(const char *text, size_t n, uint8_t **out,
                         size_t *out_len);

#endif /* TM_DTM_WORKFLOW_H */
