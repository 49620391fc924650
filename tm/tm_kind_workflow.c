/*
 * tm_kind_workflow: a workflow's head, branch 0 of every workflow (made by
 * StartWorkflow, never registered). Its payload is the
 * trellis.v1.ResumeRequest (gid, the function's name, its input) and its
 * one op is the resume: a call of the workflow service's
 * trellis.v1.Workflow/Resume, which runs the function again from the top,
 * every recorded step replaying its recorded result.
 *
 * The head changes what a timeout means. A prepared transaction that
 * times out is rolled back; a prepared workflow is resumed instead — its
 * function decides, not the clock — and the resume is called again with
 * backoff (and at the fixed interval while the service answers
 * FAILED_PRECONDITION: it is running the workflow now) until the workflow
 * has decided through Submit or Abort. An ABORTED answer means the
 * function cannot go on (it asked for another step than the recorded
 * one, or the service does not know the name): the resume stops, the
 * transaction stays prepared with the service's words as its reason, and
 * an operator decides (RetryNow, Abort, ForceStop). The head has no
 * phase-2 op: it commits and rolls back with nothing to undo.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_workflow = {
    .mode = TM_MODE_WORKFLOW,
    .name = "workflow",
    .ops = {TM_KIND_RESUME, TM_KIND_NONE, TM_KIND_NONE},
    .place = TM_PLACE_HEAD,
    .resumes = 1,
};
