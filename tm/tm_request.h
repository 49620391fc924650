/*
 * tm_request: what an initiator's request does to the model, as pure
 * functions (no locks, no I/O): the saga steps of a Submit become
 * TM-driven branches with their dependencies, a RegisterBranch becomes an
 * initiator-driven branch, and a Submit's content gets the hash that makes
 * resubmission idempotent. The engine calls these under the transaction's
 * lock; the unit tests call them directly.
 */
#ifndef TM_REQUEST_H
#define TM_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "tm_trans.h"
#include "tm_validate.h"

/* Append the submit's saga steps (validated) as TM-driven branches with
 * ids "%02u" by position. A step's prerequisites: its depends_on (offset
 * past the branches already there); or, without any, the step before it
 * unless r->concurrent; a root depends on the last branch already there
 * that is not a completion listener (the last registered one), so rollback
 * reaches registered branches after every step; then the steps' branch
 * listener events (tm_request_add_branch_events). Returns 0; or -1 with err and
 * the transaction unchanged (too many branches, a step id a registered branch
 * took, out of memory). */
int tm_request_add_steps(tm_trans_t *tx, const Trellis__V1__SubmitRequest *r,
                         const tm_limits_t *lim, char *err, size_t errlen);

/* Append a registered (initiator-driven) branch: the forward op the
 * initiator calls (action/try/prepare by mode, no target) and the phase-2
 * ops it names; it depends on the previously registered branch (never on
 * a listener's or a branch event), and its branch listener events follow
 * it. Returns 0,
 * or -1 on out of memory (the transaction unchanged). */
int tm_request_add_registered(tm_trans_t *tx,
                              const Trellis__V1__RegisterBranchRequest *r);

/* One completion-listener branch (tm_kind_event.c) per o->listeners
 * entry, appended with ids "ev1", "ev2", ...: no prerequisites, nothing
 * depends on them, never part of the chain of registered branches and
 * steps. o may be NULL (none). Called once, when the transaction is
 * created, so the events are stored with it. Returns 0, or -1 on out of
 * memory (nothing appended). */
int tm_request_add_listeners(tm_trans_t *tx,
                             const Trellis__V1__TransOptions *o);

/* One branch-listener event (tm_kind_branch_event.c) per entry of
 * tx->opts.branch_listeners for each branch from index `from` on that a
 * listener is told about (not a listener's, not a workflow's or a
 * message's head): id "ev-<its id>-<n>", n the listener's place from 1,
 * depending on the branch it reports only. tm_request_add_steps,
 * _add_registered and _add_message call it for the branches they make.
 * Returns 0, or -1 on out of memory (nothing appended). */
int tm_request_add_branch_events(tm_trans_t *tx, size_t from);

/* Index of the branch with this id, or -1. */
int tm_request_find_branch(const tm_trans_t *tx, const char *branch_id);

/* The registration matches branch b exactly (mode, payload, ops). */
/* Add a workflow's head to tx (which has no branch yet): branch 0, id
 * "00", mode (a kind that resumes: WORKFLOW, or DTM_WORKFLOW for the DTM
 * service's), initiator-driven, the packed ResumeRequest (gid, name,
 * input) as payload, its one op the resume at r's resume_target. Returns
 * 0, or -1 on out of memory (tx unchanged). */
int tm_request_add_workflow_head(tm_trans_t *tx,
                                 const Trellis__V1__StartWorkflowRequest *r,
                                 tm_mode_t mode);
/* 1 when two heads describe the same workflow (mode, payload, target). */
int tm_request_same_head(const tm_branch_t *a, const tm_branch_t *b);

/* 1 with why filled when r's branch may not be added to tx: a workflow's
 * own kind (local step, hooks) in a transaction that is not a workflow,
 * or any branch after a workflow's hooks. 0 when it may. */
int tm_request_misplaced(const tm_trans_t *tx,
                         const Trellis__V1__RegisterBranchRequest *r, char *why,
                         size_t len);

int tm_request_same_registration(const tm_branch_t *b,
                                 const Trellis__V1__RegisterBranchRequest *r);

/* The same options (for an idempotent Begin). */
int tm_request_same_options(const tm_options_t *a, const tm_options_t *b);

/* 1 when a and b name the same completion listeners (TransOptions
 * listeners: their event branches' targets), in the same order. */
int tm_request_same_listeners(const tm_trans_t *a, const tm_trans_t *b);

/* trellis_fnv (64-bit FNV-1a) over the packed steps, the options (less
 * wait_result) and the concurrent flag. Never 0 (0 means "never
 * submitted"). Stored with the transaction: its value for a given request
 * must not change between versions (test_request pins some). */
uint64_t tm_request_submit_hash(const Trellis__V1__SubmitRequest *r);

/* ---- messages ----------------------------------------------------------
 * A message is branch 0, its head (mode MSG_CHECK, id "00",
 * initiator-driven: the initiator's Submit or Abort decides; its op is
 * the back-check at query_prepared, none when the message was submitted
 * at once), then one TM-driven MSG branch per delivery, ids "01", "02",
 * ... in order: a step naming a target is one delivery, a step naming a
 * topic one per subscriber, in the order subs gives them. A delivery
 * depends on every delivery of each step its step depends on; without
 * depends_on, on every delivery of the step before (unless concurrent). */

/* The subscribers of a topic step, looked up by the caller. */
typedef struct {
    const char *const *targets;
    size_t n;
} tm_step_targets_t;

/* Append r's message to tx (which has no branch yet). subs has r->n_steps
 * entries (only those of topic steps are read). Returns 0, or -1 with err
 * and tx unchanged: a topic with no subscriber, more branches than the
 * limit, out of memory. */
int tm_request_add_message(tm_trans_t *tx,
                           const Trellis__V1__PrepareMessageRequest *r,
                           const tm_step_targets_t *subs,
                           const tm_limits_t *lim, char *err, size_t errlen);

/* The content hash of a PrepareMessage (steps, back-check, options less
 * wait_result, concurrent; not submit), stored as the transaction's
 * submit_hash: a repeat with the same content is the same message. Never
 * 0. Stored: it must not change between versions. */
uint64_t tm_request_message_hash(const Trellis__V1__PrepareMessageRequest *r);

#endif /* TM_REQUEST_H */
