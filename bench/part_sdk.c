/*
 * part_sdk: the no-op participant on libtrellis's trellis_participant.h
 * (see part.h), so the bench can compare the SDK's participant server with
 * the raw C core one (part_core.c) under the same load.
 */
#include "part.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis_participant.h"

static void handle(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                   size_t payload_len, trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)payload;
    (void)payload_len;
    part_method_t m = (part_method_t)(intptr_t)user;
    atomic_fetch_add(&part_calls[m], 1);
    if (m == PART_HOLD) {
        reply->code = TRELLIS_REPLY_ONGOING;
        return;
    }
    if (m == PART_STATS) {
        char text[256];
        size_t n = part_stats_text(text, sizeof(text));
        reply->body = malloc(n);
        if (reply->body) {
            memcpy(reply->body, text, n);
            reply->body_len = n;
        }
    }
}

int part_sdk_serve(const char *addr, int n_threads, int *port)
{
    char err[512];
    trellis_participant_t *p;
    if (trellis_participant_new(n_threads, &p, err, sizeof(err)) != 0)
        goto fail;
    for (int m = 0; m < PART_N_METHODS; m++)
        if (trellis_participant_handle(p, part_methods[m].name, handle,
                                       (void *)(intptr_t)m, err,
                                       sizeof(err)) != 0)
            goto fail;
    if (trellis_participant_start(p, addr, port, err, sizeof(err)) != 0)
        goto fail;
    return 0; /* p lives as long as the process */
fail:
    fprintf(stderr, "trellis-bench-part: %s\n", err);
    return -1;
}
