/*
 * tm_kind_dtm_workflow: the head of a workflow that an application written
 * with DTM's workflow SDK opened through trellisd's DTM service
 * (PrepareWorkflow of dtmgimp.Dtm, tm_api_dtm.c). It is a workflow head
 * like tm_kind_workflow's — stored the same way (branch 0, id 00, its
 * payload the trellis.v1.ResumeRequest with the name and input), resumed
 * instead of rolled back once a prepared one times out, stopped for an
 * operator on ABORTED — and differs only in the call: DTM's server calls
 * the workflow service's workflow.Workflow/Execute (the target the SDK
 * gave as QueryPrepared) with a workflow.WorkflowData holding the input,
 * dtm-trans_type "workflow", dtm-branch_id 00 and dtm-op the workflow's
 * name, and so does trellisd (dtm_callback; tm_dtm_workflow.h packs it).
 * The service runs the workflow function again: every step DTM's SDK
 * recorded (RegisterBranch, a local step here: tm_dtm_workflow.h) replays,
 * and the SDK ends it with Submit. DTM's SDK runs every phase-2 op
 * itself before it submits, so such a workflow has no op for trellisd to
 * call besides this one.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_dtm_workflow = {
    .mode = TM_MODE_DTM_WORKFLOW,
    .name = "dtm_workflow",
    .trans_type = "workflow",
    .ops = {TM_KIND_RESUME, TM_KIND_NONE, TM_KIND_NONE},
    .place = TM_PLACE_HEAD,
    .resumes = 1,
    .dtm_callback = 1,
};
