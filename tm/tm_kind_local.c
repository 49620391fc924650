/*
 * tm_kind_local: a workflow's local step — code that runs inside the
 * workflow service itself (its own database, say), with a rollback
 * function of its own. The service runs the action and records its result
 * (RecordStep), as for a remote step. The rollback-side op is the
 * compensation, whose target is the workflow service's Resume method and
 * whose payload is the workflow's ResumeRequest: trellisd calls it with
 * dtm-op "compensate" and the step's dtm-branch_id, and the service runs
 * the function again (every step replaying) to reach the step's rollback
 * function, then runs it. Like every compensation it is retried until it
 * succeeds, so it must be idempotent (the example keeps it behind the
 * barrier). There is no commit-side op: a local action is final once it
 * ran, unless rolled back.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_local = {
    .mode = TM_MODE_LOCAL,
    .name = "local",
    .ops = {TM_KIND_ACTION, TM_KIND_NONE, TM_KIND_COMPENSATE},
    .place = TM_PLACE_WORKFLOW,
};
