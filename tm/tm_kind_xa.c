/*
 * tm_kind_xa: an XA branch on the participant's MySQL. Its forward op is
 * the local prepare (XA START, the business SQL and the barrier row, XA
 * END, XA PREPARE), which the initiator has the participant run after
 * registering the branch. Phase 2 is XA COMMIT on the commit decision or
 * XA ROLLBACK on rollback, both called by the TM and retried until they
 * succeed (rm-adapters/mysql-xa answers them).
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_xa = {
    .mode = TM_MODE_XA,
    .name = "xa",
    .ops = {TM_KIND_PREPARE, TM_KIND_COMMIT, TM_KIND_ROLLBACK},
};
