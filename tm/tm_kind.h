/*
 * tm_kind: the interface every kind of branch implements, and the table
 * they are registered in. A kind says what its ops are — the forward op
 * (called in phase 1), the commit-side and the rollback-side op (phase 2)
 * — where a branch of it may stand (any transaction, a workflow, a
 * workflow's head), how it behaves in a workflow, and the number it is
 * stored and sent under (trellis.v1.BranchMode). The engine, the plan, the
 * stores and the metrics know kinds only through this table, never by
 * name; a transaction whose branches are of several kinds is a hybrid.
 *
 * Adding a kind: a file tm_kind_<name>.c that defines one tm_kind_t (and
 * says in its top comment what its ops mean for participants), its
 * BranchMode number in proto/trellis/v1/tm.proto and tm_mode_t, and one
 * line in tm_kinds.c. docs/architecture.md ("Adding a kind") has the rest.
 *
 * Everything here is constant after start: any thread, no locks.
 */
#ifndef TM_KIND_H
#define TM_KIND_H

#include <stddef.h>

#include "tm_trans.h"

/* Where a branch of the kind may stand. */
typedef enum {
    /* In any transaction, registered with RegisterBranch (a saga step also
     * as one of Submit's steps, which the TM calls itself). */
    TM_PLACE_ANY = 0,
    /* Registered only in a workflow (a transaction whose branch 0 is a
     * workflow head). */
    TM_PLACE_WORKFLOW = 1,
    /* Branch 0 of a workflow, made by StartWorkflow; never registered. */
    TM_PLACE_HEAD = 2,
    /* Only in a message, made by PrepareMessage; never registered. */
    TM_PLACE_MESSAGE = 3,
    /* Appended by the TM for each of the options' listeners when the
     * transaction is created; never registered. */
    TM_PLACE_LISTENER = 4,
} tm_place_t;

typedef struct {
    tm_mode_t mode;   /* its trellis.v1.BranchMode; stored with the branch */
    const char *name; /* the metrics label; the dtm-trans_type too unless: */
    const char *trans_type; /* NULL, or the dtm-trans_type participants see */
    /* The op kind of each slot (TM_SLOT_FORWARD, _COMMIT, _ROLLBACK);
     * TM_KIND_NONE: the kind has no op there. */
    tm_op_kind_t ops[TM_SLOTS];
    tm_place_t place;
    /* 1: the forward op is a workflow's resume: called once a prepared
     * transaction's timeout passed, instead of rolling it back, and again
     * with backoff until the workflow decides (tm_plan.h, "Workflows"). */
    int resumes;
    /* 1: the phase-2 ops wait until every other branch is done (committed
     * or rolled back): a workflow's hooks. Such a branch depends on none. */
    int runs_last;
    /* 1: the forward op is a message's back-check: called once a prepared
     * message's timeout passed, instead of rolling it back; OK decides to
     * deliver, ABORTED drops the message (tm_plan.h, "Messages"). */
    int checks;
    /* 1: the forward op only goes forward: a business failure does not
     * roll the transaction back but is retried with backoff and alerted (a
     * participant bug), its retry limit only alerts, and a timeout after
     * the decision rolls nothing back. It has no phase-2 op. */
    int forward_only;
    /* 1: the transaction's outcome does not wait for it: waiters are
     * answered once every other branch is done (tm_plan_outcome_known),
     * though the transaction becomes final only after it. With
     * runs_last: a completion listener. */
    int after_outcome;
    /* 1: its phase-2 ops are sent a CompletionEvent built at call time
     * (tm_engine_calls.c), not the branch's stored payload. */
    int event_payload;
    /* 1: a branch listener's event: the branch depends on exactly one
     * branch, the one it reports, and its notify is ready only once that
     * branch is settled (tm_plan.h, "Branch listeners"); it is sent a
     * BranchEvent instead of a CompletionEvent. With after_outcome. */
    int reports_branch;
    /* 1: the resume is DTM's workflow callback (tm_dtm_workflow.h): the
     * head's stored ResumeRequest is sent as workflow.WorkflowData (its
     * input) with dtm-op the workflow's name, as DTM's server calls a
     * DTM workflow service back. With resumes. */
    int dtm_callback;
} tm_kind_t;

/* The kind stored as mode, or NULL for a number no kind has. */
const tm_kind_t *tm_kind_find(tm_mode_t mode);

/* The kind's name, or "unknown". */
const char *tm_kind_name(tm_mode_t mode);

/* The dtm-trans_type a participant sees for a branch of the kind: its
 * trans_type, else its name. */
const char *tm_kind_trans_type(tm_mode_t mode);

/* Which of k's slots holds op kind op: 0 with *slot set, or -1 when k has
 * no such op. */
int tm_kind_slot_of(const tm_kind_t *k, tm_op_kind_t op, tm_slot_t *slot);

/* The registered kinds, in registration order: i < tm_kind_count(). */
size_t tm_kind_count(void);
const tm_kind_t *tm_kind_at(size_t i);

/* Room for every kind's index in per-kind arrays (metrics). */
#define TM_KINDS_MAX 12

/* "saga (1), tcc (2), ... or hooks (6)": the kinds for an error message. */
const char *tm_kind_list_text(void);

#endif /* TM_KIND_H */
