/*
 * tm_kind_branch_event: one event of a branch listener — a target named
 * in TransOptions.branch_listeners, told how each branch of the
 * transaction ended. The TM appends one such branch per (branch listener,
 * reported branch) where the reported branch is made: with Submit's steps,
 * with a RegisterBranch, with a message's deliveries (tm_request.c), id
 * "ev-<reported id>-<n>", n the listener's place from 1. It depends on the
 * branch it reports and on nothing else; nothing depends on it. It has no
 * forward op; its notify (commit-side when the transaction commits,
 * rollback-side when it rolls back) is ready once the reported branch is
 * settled and is sent a BranchEvent (tm_event.c) built at call time from
 * durable state, retried until it answers OK, behind the barrier. Like a
 * completion listener it never delays the outcome nor its waiters
 * (after_outcome); unlike one it does not wait for every other branch.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_branch_event = {
    .mode = TM_MODE_BRANCH_EVENT,
    .name = "branch_event",
    .ops = {TM_KIND_NONE, TM_KIND_NOTIFY, TM_KIND_NOTIFY},
    .place = TM_PLACE_LISTENER,
    .after_outcome = 1,
    .event_payload = 1,
    .reports_branch = 1,
};
