/*
 * tm_plan: the transaction engine's decision rules, as pure functions of
 * the in-memory model. No locks, no I/O, no clocks of its own: the caller
 * passes the time. The live engine (tm_engine*.c) calls these under the
 * transaction's lock, and the unit tests call them directly.
 *
 * The rules (docs/architecture.md has the prose):
 *  - SUBMITTED: a TM-driven forward op is ready once every branch it
 *    depends on has its forward op SUCCEEDED. Commit-side ops (confirm,
 *    commit) are ready once every forward op of the transaction succeeded:
 *    that is the commit decision. All done -> SUCCEEDED.
 *  - ABORTING: a branch "may have run" when it is initiator-driven, or when
 *    all its prerequisites' forward ops SUCCEEDED before the rollback
 *    decision (the TM may have called it: a step is called only after its
 * prerequisites' success was durable). Such a branch's rollback-side op is
 * ready once its own forward op is not on the wire and every branch that
 * depends on it is settled (rolled back, or never ran): compensation walks the
 * graph backwards. All settled -> FAILED.
 *  - A forward op's business failure (ABORTED), its retry limit, the
 *    transaction's timeout, or an abort move SUBMITTED/PREPARED to ABORTING.
 *  - ONGOING is retried at the fixed interval; unknown results with capped
 *    exponential backoff. Phase-2 ops are retried until they succeed.
 *
 * Workflows (a transaction whose branch 0 is a workflow head, tm_kind.h):
 *  - Each step is registered (initiator-driven) before it runs and its
 *    forward op's result recorded (SUCCEEDED, or FAILED: a business
 *    failure the function went on from) before the function goes on.
 *  - PREPARED past the timeout: no rollback; the head's resume is called
 *    (run->resume_due), with backoff, until the workflow decides. ABORTED
 *    from it stops the resume (op FAILED, reason "workflow stopped: ...")
 *    until an operator restarts it (tm_plan_restart_resume).
 *  - SUBMITTED: a step recorded FAILED is rolled back, never committed;
 *    every other branch commits. A runs_last branch (the hooks) goes only
 *    after every other branch's phase 2 is done, on either side.
 *
 * Completion listeners (tm_kind_event.c: runs_last and after_outcome):
 *  - Their notify runs last, on either side, after every other branch
 *    (the hooks included) is done; retried until it succeeds.
 *  - The outcome is known once every other branch is done
 *    (tm_plan_outcome_known: waiters are answered then); the transaction
 *    becomes final only once every listener was told.
 *
 * Branch listeners (tm_kind_branch_event.c: after_outcome, reports_branch):
 *  - One event per (listener, branch), depending on the branch it
 *    reports. Its notify (the side the transaction takes) is ready once
 *    that branch is settled: committing, its forward op final and its
 *    commit-phase op done or absent, once the commit is decided (a
 *    submitted message's deliveries at once); rolling back, its forward
 *    op off the wire and its rollback-side op done, absent or never to
 *    run. It waits for nothing else: not for hooks or listeners, which
 *    do not wait for it either, and a rollback's walk back through the
 *    graph ignores it as a dependent. Outcome and waiters never wait for
 *    it; the transaction is final only once every event was told.
 *
 * Messages (branch 0 is a message head, tm_kind_msg_check.c):
 *  - PREPARED until the initiator's Submit (its local transaction
 *    committed) or Abort (it did not). Past the timeout: no rollback; the
 *    head's back-check is called (run->resume_due), with backoff. OK
 *    moves it to SUBMITTED (delivered), ABORTED rolls it back (nothing to
 *    undo: FAILED at once); answers after a decision change nothing.
 *  - Steps (forward_only kinds) are called in order or along depends_on
 *    until each succeeds: ABORTED is retried with backoff and alerted,
 *    the retry limit only alerts, and a timeout after the decision rolls
 *    nothing back.
 *
 * Pivot (a saga step marked pivot, SagaStep.pivot; at most one):
 *  - Every other step is before it (the pivot depends on it, through
 *    depends_on or the chain, transitively) or after it (it depends on
 *    the pivot); branches registered before Submit are before. Submit
 *    refuses a step that is neither, and a compensate after the pivot
 *    (tm_validate.c). Before the pivot is called, a failure rolls back as
 *    any other.
 *  - Once every prerequisite of the pivot succeeded (durable: the pivot
 *    is called only after that), the saga's fate is the pivot's own
 *    definite answer (tm_plan_pivot_decides): the timeout rolls nothing
 *    back, and the pivot's unknown results are retried past the retry
 *    limit (alerted at it), because it may already have taken effect.
 *    Only ABORTED from the pivot rolls back: the steps before it and the
 *    pivot's own compensate, as today.
 *  - Once the pivot's forward op succeeded (tm_plan_past_pivot), every
 *    remaining forward op is forward-only, as a message's steps: ABORTED
 *    is a participant bug (alerted, retried with backoff, never a
 *    rollback), the retry limit only alerts, the timeout and Abort roll
 *    nothing back. Only an operator's ForceStop ends it otherwise.
 */
#ifndef TM_PLAN_H
#define TM_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "tm_run.h"
#include "tm_trans.h"

typedef enum {
    TM_RESULT_OK = 0,      /* gRPC OK */
    TM_RESULT_FAILURE = 1, /* ABORTED: business failure */
    TM_RESULT_ONGOING = 2, /* FAILED_PRECONDITION: still in progress */
    TM_RESULT_UNKNOWN = 3, /* anything else, or no answer by the deadline */
} tm_result_t;

/* Map a gRPC status code to a result per the participant protocol. */
tm_result_t tm_plan_classify(int grpc_status);

/* Retry policy in force for one transaction (trellisd's defaults merged
 * with the transaction's options). */
typedef struct {
    uint32_t retry_interval_ms;
    uint32_t max_backoff_ms;
    uint32_t retry_limit; /* 0: unlimited */
} tm_retry_policy_t;

/* Delay before the next try after `streak` consecutive unknown results
 * (streak >= 1): base, 2*base, 4*base, ... capped at cap_ms. */
uint32_t tm_plan_backoff_ms(uint32_t base_ms, uint32_t streak, uint32_t cap_ms);

typedef struct {
    int changed;         /* state changed: persist before acting on it */
    int64_t retry_in_ms; /* >= 0: call this op again after so long */
    int alert;           /* a phase-2 op misbehaves: an operator should know */
} tm_effect_t;

/* Fold the result of one call of op (branch, slot) into the model, and its
 * backoff streak and dirty mark into run (fitted to tx). msg is the
 * participant's status message (may be NULL). */
tm_effect_t tm_plan_apply_result(tm_trans_t *tx, tm_run_t *run, size_t branch,
                                 tm_slot_t slot, tm_result_t result,
                                 const char *msg,
                                 const tm_retry_policy_t *policy,
                                 int64_t now_ms);

typedef struct {
    uint32_t branch;
    tm_slot_t slot;
} tm_op_ref_t;

/* The ops to call now (not on the wire, not waiting for a retry timer:
 * run, fitted to tx, says). Writes at most max refs into out and returns
 * how many. */
size_t tm_plan_ready(const tm_trans_t *tx, const tm_run_t *run,
                     tm_op_ref_t *out, size_t max);

/* TM_TX_SUCCEEDED or TM_TX_FAILED when the transaction is done, else 0
 * (a rollback is not done while a forward op is on the wire). */
tm_tx_status_t tm_plan_outcome(const tm_trans_t *tx, const tm_run_t *run);

/* The outcome the waiters are told: as tm_plan_outcome, but without
 * waiting for after_outcome branches (completion listeners); the status
 * itself when it is final. A transaction can have its outcome known and
 * still be SUBMITTED or ABORTING while its listeners are told: it
 * becomes final (tm_plan_outcome) only after them. Judged from the
 * model, so from durable state when the engine plans. */
tm_tx_status_t tm_plan_outcome_known(const tm_trans_t *tx, const tm_run_t *run);

/* Branch i's forward op may have run: it is initiator-driven, or its
 * prerequisites all succeeded before any rollback decision (durable
 * state only). */
int tm_plan_may_have_run(const tm_trans_t *tx, size_t i);

/* The phase-2 slot branch b runs on a side: committing, its commit-side
 * op (the rollback-side one for a workflow step recorded as failed);
 * else its rollback-side op. */
tm_slot_t tm_plan_side_slot(const tm_branch_t *b, int committing);

/* Every forward op of the transaction succeeded. */
int tm_plan_forward_done(const tm_trans_t *tx);

/* Decide to roll back (from PREPARED or SUBMITTED). Returns 1 if the status
 * changed, 0 if it was already rolling back or finished. */
int tm_plan_start_rollback(tm_trans_t *tx, const char *reason, int64_t now_ms);

/* The transaction's timeout passed: roll back if it is prepared, or
 * submitted with forward ops unfinished and not yet in its pivot's hands
 * (tm_plan_pivot_decides). Returns 1 if the status changed. */
int tm_plan_on_timeout(tm_trans_t *tx, int64_t now_ms);

/* 1 when tx is a workflow (branch 0 is a head whose kind resumes). */
int tm_plan_is_workflow(const tm_trans_t *tx);

/* 1 when tx is a message (branch 0 is a head whose kind checks). */
int tm_plan_is_message(const tm_trans_t *tx);

/* The timeout of tx passed and tx is a prepared workflow or message: mark
 * its head's op (the resume, the back-check) due in run and return 1 (the
 * caller drives it); 0 for any other transaction (the caller then calls
 * tm_plan_on_timeout). */
int tm_plan_timeout_resumes(const tm_trans_t *tx, tm_run_t *run);

/* Operator: a prepared workflow whose resume stopped (FAILED) or waits
 * for a retry (or a message whose back-check waits) is called now,
 * backoff reset. Returns 1 when it changed
 * run (and tx: the op is PENDING again, dirty if it was FAILED). */
int tm_plan_restart_resume(tm_trans_t *tx, tm_run_t *run);

/* A workflow may be submitted only once every step has a recorded result:
 * the index of the first registered step without one, or -1. */
int tm_plan_unrecorded_step(const tm_trans_t *tx);

/* The index of the pivot branch, or -1 when the transaction has none. */
int tm_plan_pivot_index(const tm_trans_t *tx);

/* The pivot's forward op succeeded (in time): the transaction only goes
 * forward from here. 0 when there is no pivot. */
int tm_plan_past_pivot(const tm_trans_t *tx);

/* A submitted transaction whose pivot's prerequisites all succeeded: only
 * the pivot's own ABORTED can roll it back (no timeout, no retry limit).
 * Past the pivot too. */
int tm_plan_pivot_decides(const tm_trans_t *tx);

/* Move to the final status; ops that will never be called become SKIPPED. */
void tm_plan_finish(tm_trans_t *tx, tm_tx_status_t final, int64_t now_ms);

/* The initiator submitted: its own forward ops are done (marked dirty in
 * run). */
void tm_plan_mark_initiator_ops_done(tm_trans_t *tx, tm_run_t *run,
                                     int64_t now_ms);

#endif /* TM_PLAN_H */
