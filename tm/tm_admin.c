/*
 * tm_admin: the SetLogLevel RPC (see tm_admin.h). The level itself is
 * tm_log's; this file only decodes, validates, applies and answers.
 */
#include "tm_admin.h"

#include <string.h>

#include "tm_log.h"
#include "trellis/v1/tm.pb-c.h"

static void reply_level(tm_rpc_t *rpc, tm_log_level_t now,
                        tm_log_level_t before)
{
    Trellis__V1__SetLogLevelReply r = TRELLIS__V1__SET_LOG_LEVEL_REPLY__INIT;
    r.level = (char *)tm_log_level_name(now);
    r.previous = (char *)tm_log_level_name(before);
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &r.base);
}

void tm_admin_handle_set_log_level(tm_rpc_t *rpc, const uint8_t *req,
                                   size_t len, void *user)
{
    (void)user;
    Trellis__V1__SetLogLevelRequest *r =
        trellis__v1__set_log_level_request__unpack(NULL, len, req);
    if (!r) {
        tm_server_reply(rpc, GRPC_STATUS_INVALID_ARGUMENT,
                        "malformed trellis.v1.SetLogLevelRequest", NULL);
        return;
    }
    tm_log_level_t before = tm_log_get_level(), now = before;
    if (r->level && *r->level && tm_log_parse_level(r->level, &now) != 0) {
        tm_server_reply(rpc, GRPC_STATUS_INVALID_ARGUMENT,
                        "level must be debug, info, warn or error", NULL);
    } else {
        if (now != before) {
            /* At warn, so the change is on record under every level
             * but error. */
            tm_log(TM_LOG_WARN, "event=log_level_changed from=%s to=%s",
                   tm_log_level_name(before), tm_log_level_name(now));
            tm_log_set_level(now);
        }
        reply_level(rpc, now, before);
    }
    trellis__v1__set_log_level_request__free_unpacked(r, NULL);
}
