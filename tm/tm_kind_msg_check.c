/*
 * tm_kind_msg_check: a message's head, branch 0 ("00") of every message,
 * made by PrepareMessage and never registered. Its one op is the
 * back-check (query_prepared) at the target the initiator named: did the
 * initiator's local transaction commit? The initiator normally answers
 * that itself with Submit (it committed) or Abort (it did not), which
 * marks the op done without a call. Only when neither came before the
 * message's timeout does trellisd call it (dtm-trans_type "msg", dtm-op
 * "query_prepared", an empty request): OK means committed and the message
 * is delivered; ABORTED means not committed — and the participant's
 * barrier makes sure it never will — so the message is dropped (FAILED);
 * anything else is asked again with backoff. Answers that come after the
 * initiator decided change nothing.
 */
#include "tm_kind.h"

const tm_kind_t tm_kind_msg_check = {
    .mode = TM_MODE_MSG_CHECK,
    .name = "msg_check",
    .trans_type = "msg",
    .ops = {TM_KIND_QUERY_PREPARED, TM_KIND_NONE, TM_KIND_NONE},
    .place = TM_PLACE_HEAD,
    .checks = 1,
};
