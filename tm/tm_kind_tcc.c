/*
 * tm_kind_tcc: a TCC branch. Its forward op is the try, which the
 * initiator calls after registering the branch: it checks and reserves
 * (freezes) what the branch needs. Phase 2 is the confirm, which makes
 * the reservation final, once every forward op of the transaction
 * succeeded; or the cancel, which releases it, on rollback. Confirm and
 * cancel are retried until they succeed; the barrier makes a cancel
 * without its try (empty compensation) and a try after its cancel
 * (hanging) harmless.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_tcc = {
    .mode = TM_MODE_TCC,
    .name = "tcc",
    .ops = {TM_KIND_TRY, TM_KIND_CONFIRM, TM_KIND_CANCEL},
};
