/*
 * event: what a completion listener reads — the CompletionEvent its call
 * carries (trellis_participant.h, trellis_completion_event_parse).
 */
#include <stdio.h>
#include <string.h>

#include "trellis/trellis_participant.h"
#include "trellis/v1/tm.pb-c.h"

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

trellis_rc_t trellis_completion_event_parse(const uint8_t *payload, size_t len,
                                            trellis_completion_event_t *ev,
                                            char *err, size_t errlen)
{
    memset(ev, 0, sizeof(*ev));
    Trellis__V1__CompletionEvent *m =
        trellis__v1__completion_event__unpack(NULL, len, payload);
    if (m == NULL || m->gid == NULL || *m->gid == '\0') {
        if (m)
            trellis__v1__completion_event__free_unpacked(m, NULL);
        snprintf(err, errlen, "%zu bytes are not a completion event", len);
        return TRELLIS_INVALID_ARGUMENT;
    }
    copy_text(ev->gid, sizeof(ev->gid), m->gid);
    copy_text(ev->reason, sizeof(ev->reason), m->reason);
    ev->status = (trellis_trans_status_t)m->status;
    ev->created_ms = m->created_ms;
    ev->finished_ms = m->finished_ms;
    trellis__v1__completion_event__free_unpacked(m, NULL);
    return TRELLIS_OK;
}
