/*
 * tm_kind_hooks: a workflow's hooks — the functions the workflow asked to
 * run once its outcome is decided (on commit, on rollback, on finish).
 * The service registers this branch before it submits or aborts, when the
 * function registered any hook. Its ops target the workflow service's
 * Resume method with the workflow's ResumeRequest: dtm-op "commit" runs
 * the on-commit and on-finish hooks, dtm-op "rollback" the on-rollback and
 * on-finish ones, in the service, after it ran the function again to find
 * them. They wait until every other branch is committed or rolled back
 * (runs_last), so a hook sees the outcome complete, and are retried until
 * they succeed: hooks run at least once and must be idempotent.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_hooks = {
    .mode = TM_MODE_HOOKS,
    .name = "hooks",
    .ops = {TM_KIND_NONE, TM_KIND_COMMIT, TM_KIND_ROLLBACK},
    .place = TM_PLACE_WORKFLOW,
    .runs_last = 1,
};
