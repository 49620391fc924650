/*
 * event: what a completion listener reads — the CompletionEvent its call
 * carries (trellis_participant.h, trellis_completion_event_parse) — and
 * what a branch listener reads, the BranchEvent
 * (trellis_branch_event_parse).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis_participant.h"
#include "trellis/v1/tm.pb-c.h"

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* One decoded event into *ev; 0, or -1 when it lacks a gid. */
static int event_from(const Trellis__V1__CompletionEvent *m,
                      trellis_completion_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (m->gid == NULL || *m->gid == '\0')
        return -1;
    copy_text(ev->gid, sizeof(ev->gid), m->gid);
    copy_text(ev->branch_id, sizeof(ev->branch_id), m->branch_id);
    copy_text(ev->reason, sizeof(ev->reason), m->reason);
    ev->status = (trellis_trans_status_t)m->status;
    ev->created_ms = m->created_ms;
    ev->finished_ms = m->finished_ms;
    return 0;
}

trellis_rc_t trellis_completion_event_parse(const uint8_t *payload, size_t len,
                                            trellis_completion_event_t *ev,
                                            char *err, size_t errlen)
{
    memset(ev, 0, sizeof(*ev));
    Trellis__V1__CompletionEvent *m =
        trellis__v1__completion_event__unpack(NULL, len, payload);
    int bad = m == NULL || event_from(m, ev) != 0;
    if (m)
        trellis__v1__completion_event__free_unpacked(m, NULL);
    if (bad) {
        snprintf(err, errlen, "%zu bytes are not a completion event", len);
        return TRELLIS_INVALID_ARGUMENT;
    }
    return TRELLIS_OK;
}

trellis_rc_t
trellis_completion_event_batch_parse(const uint8_t *payload, size_t len,
                                     trellis_completion_event_t **events,
                                     size_t *n, char *err, size_t errlen)
{
    *events = NULL;
    *n = 0;
    Trellis__V1__CompletionEventBatch *m =
        trellis__v1__completion_event_batch__unpack(NULL, len, payload);
    if (m == NULL || m->n_events == 0) {
        if (m)
            trellis__v1__completion_event_batch__free_unpacked(m, NULL);
        snprintf(err, errlen, "%zu bytes are not a completion event batch",
                 len);
        return TRELLIS_INVALID_ARGUMENT;
    }
    trellis_completion_event_t *out = calloc(m->n_events, sizeof(*out));
    trellis_rc_t rc = out ? TRELLIS_OK : TRELLIS_RESOURCE_EXHAUSTED;
    if (!out)
        snprintf(err, errlen, "out of memory for %zu events", m->n_events);
    for (size_t i = 0; rc == TRELLIS_OK && i < m->n_events; i++) {
        if (event_from(m->events[i], &out[i]) != 0 ||
            out[i].branch_id[0] == '\0') {
            snprintf(err, errlen, "event %zu of the batch has no %s", i,
                     out[i].gid[0] ? "branch id" : "gid");
            rc = TRELLIS_INVALID_ARGUMENT;
        }
    }
    if (rc == TRELLIS_OK) {
        *events = out;
        *n = m->n_events;
    } else {
        free(out);
    }
    trellis__v1__completion_event_batch__free_unpacked(m, NULL);
    return rc;
}

trellis_rc_t trellis_branch_event_parse(const uint8_t *payload, size_t len,
                                        trellis_branch_event_t *ev, char *err,
                                        size_t errlen)
{
    memset(ev, 0, sizeof(*ev));
    Trellis__V1__BranchEvent *m =
        trellis__v1__branch_event__unpack(NULL, len, payload);
    if (m == NULL || m->gid == NULL || *m->gid == '\0' ||
        m->branch_id == NULL || *m->branch_id == '\0') {
        if (m)
            trellis__v1__branch_event__free_unpacked(m, NULL);
        snprintf(err, errlen, "%zu bytes are not a branch event", len);
        return TRELLIS_INVALID_ARGUMENT;
    }
    copy_text(ev->gid, sizeof(ev->gid), m->gid);
    copy_text(ev->branch_id, sizeof(ev->branch_id), m->branch_id);
    copy_text(ev->last_error, sizeof(ev->last_error), m->last_error);
    ev->mode = (trellis_mode_t)m->mode;
    ev->forward_status = (int)m->forward_status;
    ev->phase2_op = (int)m->phase2_op;
    ev->phase2_status = (int)m->phase2_status;
    ev->committed = m->committed ? 1 : 0;
    ev->finished_ms = m->finished_ms;
    trellis__v1__branch_event__free_unpacked(m, NULL);
    return TRELLIS_OK;
}
