/*
 * tm_validate: checks of everything an initiator sends, before the engine
 * sees it. Pure functions: no state, no I/O, so they are unit tested alone.
 *
 * Each check returns 0 when the input is acceptable, or TM_INVALID (-1)
 * and writes a message that names the field and says what is wrong into
 * err[errlen]; trellisd sends that message back with INVALID_ARGUMENT.
 * The submit and register checks also hold every target (action,
 * compensate, confirm, cancel, commit, rollback) against the allowlist and
 * return TM_DENIED with a message naming the target and allow-targets.
 */
#ifndef TM_VALIDATE_H
#define TM_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "tm_allow.h"
#include "trellis/v1/tm.pb-c.h"
#include "trellis_target.h"

typedef struct {
    uint32_t max_branches;   /* per transaction (steps + registered) */
    uint32_t max_payload;    /* bytes per branch payload */
    uint32_t max_result;     /* bytes of a workflow step's recorded result */
    char payload_bound[160]; /* what lowered max_payload ("": the flag) */
    uint32_t max_headers;    /* branch headers per transaction */
    uint32_t max_option_ms;  /* upper bound of any *_ms option */
    tm_allowlist_t allow;    /* targets trellisd may call (allow-targets) */
} tm_limits_t;

/* What the checks return: 0 acceptable; TM_INVALID (INVALID_ARGUMENT) bad
 * input; TM_DENIED (PERMISSION_DENIED) a well-formed target that matches
 * no allow-targets pattern. err says which in either case. */
#define TM_INVALID (-1)
#define TM_DENIED (-2)

/* Completion listeners per transaction (TransOptions.listeners). */
#define TM_LISTENERS_MAX 8
/* Events in one batching listener's call at most (listener_batch). */
#define TM_LISTENER_BATCH_MAX 256

#define TM_BRANCH_ID_MAX 32
#define TM_HEADER_KEY_MAX 64
#define TM_HEADER_VALUE_MAX 256
#define TM_REASON_MAX 1024
#define TM_WORKFLOW_NAME_MAX 128
#define TM_TOPIC_MAX 64
#define TM_REMARK_MAX 256

/* A parsed target "host:port/package.Service/Method" (trellis_target.h). */
typedef trellis_target_t tm_target_t;

/* Sensible defaults for the limits above. */
void tm_limits_default(tm_limits_t *l);

/* gid: 1..64 characters of [A-Za-z0-9_.:-]. */
int tm_validate_gid(const char *gid, char *err, size_t errlen);
/* branch id: 1..32 characters of [A-Za-z0-9_.:-]. */
int tm_validate_branch_id(const char *id, char *err, size_t errlen);
/* Split and check a target; out may be NULL to only check. `what` names the
 * field in the message (e.g. "steps[2].action"). */
int tm_parse_target(const char *target, const char *what, tm_target_t *out,
                    char *err, size_t errlen);
int tm_validate_options(const Trellis__V1__TransOptions *o,
                        const tm_limits_t *l, char *err, size_t errlen);

/* Begin: gid, options, and the branches it registers (each as
 * RegisterBranch takes it, its gid empty or the Begin's, not a workflow's
 * kind, ids distinct, at most max_branches). */
int tm_validate_begin(const Trellis__V1__BeginRequest *r, const tm_limits_t *l,
                      char *err, size_t errlen);
/* Submit: gid, steps (targets allowed, payloads, depends_on on earlier
 * steps only) and options; and the pivot (tm_plan.h, "Pivot"): at most
 * one step marked, every other step before it (the pivot depends on it)
 * or after it (it depends on the pivot), by the prerequisites
 * tm_request_add_steps gives them, and no compensate after it. */
int tm_validate_submit(const Trellis__V1__SubmitRequest *r,
                       const tm_limits_t *l, char *err, size_t errlen);
int tm_validate_register(const Trellis__V1__RegisterBranchRequest *r,
                         const tm_limits_t *l, char *err, size_t errlen);
/* Workflows: StartWorkflow (gid, name, input, an allowed resume target,
 * options) and RecordStep (gid, branch id, code OK or ABORTED, a result
 * within max_result, a message within TM_REASON_MAX). */
int tm_validate_start_workflow(const Trellis__V1__StartWorkflowRequest *r,
                               const tm_limits_t *l, char *err, size_t errlen);
int tm_validate_record_step(const Trellis__V1__RecordStepRequest *r,
                            const tm_limits_t *l, char *err, size_t errlen);
/* Messages: every step names a target (allowed) or a topic (a valid
 * name), not both; the back-check target is allowed, and required unless
 * the message is submitted at once. */
int tm_validate_prepare_message(const Trellis__V1__PrepareMessageRequest *r,
                                const tm_limits_t *l, char *err, size_t errlen);
/* topic: 1..64 characters of [A-Za-z0-9_.:-]. */
int tm_validate_topic(const char *topic, char *err, size_t errlen);
int tm_validate_subscribe(const Trellis__V1__SubscribeRequest *r,
                          const tm_limits_t *l, char *err, size_t errlen);
int tm_validate_unsubscribe(const Trellis__V1__UnsubscribeRequest *r, char *err,
                            size_t errlen);
int tm_validate_list_subscriptions(
    const Trellis__V1__ListSubscriptionsRequest *r, char *err, size_t errlen);
int tm_validate_abort(const Trellis__V1__AbortRequest *r, char *err,
                      size_t errlen);
/* ForceStop: a gid, and a reason (required: the operator says why). */
int tm_validate_force_stop(const Trellis__V1__ForceStopRequest *r, char *err,
                           size_t errlen);

#endif /* TM_VALIDATE_H */
