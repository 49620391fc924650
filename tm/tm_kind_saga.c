/*
 * tm_kind_saga: a Saga step. Its forward op is the action; it has no
 * commit-side op (the action's effect is final once the saga succeeds);
 * its rollback-side op is the compensation, which undoes the action. The
 * TM calls actions itself (Submit's steps, in order or along declared
 * dependencies), or the initiator calls one and registers the step.
 *
 * On rollback every step whose action may have been called is
 * compensated, the failed one included: an action may leave effects
 * before it fails, and behind the barrier a compensation of an action
 * that changed nothing is a no-op. A step without a compensation is
 * simply not undone.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_saga = {
    .mode = TM_MODE_SAGA,
    .name = "saga",
    .ops = {TM_KIND_ACTION, TM_KIND_NONE, TM_KIND_COMPENSATE},
};
