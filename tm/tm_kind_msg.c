/*
 * tm_kind_msg: a step of a 2-phase message (seed 004, the outbox without a
 * broker). Its one op is the action, the delivery of the step's payload to
 * its target (a subscriber's target when the step named a topic). Once the
 * message is decided a step is delivered until it succeeds: a message is
 * the record of a local transaction that already committed, so nothing
 * can take it back. An ABORTED answer is therefore a participant bug — it
 * is retried with backoff, logged and counted as an alert, and shown by
 * trellisctl status — and neither a retry limit nor the transaction's
 * timeout rolls anything back. Behind the barrier each delivery takes
 * effect exactly once, however often it arrives.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_msg = {
    .mode = TM_MODE_MSG,
    .name = "msg",
    .ops = {TM_KIND_ACTION, TM_KIND_NONE, TM_KIND_NONE},
    .place = TM_PLACE_MESSAGE,
    .forward_only = 1,
};
