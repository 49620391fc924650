/*
 * bench_dtm: the request and reply judge of trellis-bench's dtm-saga2
 * mode — saga2's 2-step saga (Action and Compensate at the no-op
 * participant, WaitResult) sent through DTM's gRPC API
 * (/dtmgimp.Dtm/Submit) instead of trellis.v1.TM, exactly as DTM's Go SDK
 * packs it (Steps JSON, one empty BinPayloads entry per step). A
 * bench_make_fn / bench_check_fn pair for bench_load.
 */
#ifndef BENCH_DTM_H
#define BENCH_DTM_H

#include <stdint.h>

#include "bench_load.h"

#define BENCH_DTM_SUBMIT_METHOD "/dtmgimp.Dtm/Submit"

typedef struct {
    char steps[700];     /* the Steps JSON, the same for every saga */
    char gid_prefix[32]; /* "d-<pid>-" */
    uint64_t gid_base;   /* added to the call's seq: gids never repeat */
} bench_dtm_t;

/* The dtm-saga2 workload against the participant at part_addr. */
void bench_dtm_init(bench_dtm_t *d, const char *part_addr);

/* bench_make_fn: a packed DtmRequest (TransType saga, WaitResult), gid
 * "<prefix><gid_base + seq>". */
int bench_dtm_make(uint64_t seq, grpc_byte_buffer **out, void *dtm);

/* bench_check_fn: OK is a saga that succeeded (DTM's Submit with
 * WaitResult answers a failed one ABORTED, which the load counts as a
 * failure); the reply is an empty message. */
int bench_dtm_check(const uint8_t *bytes, size_t len, char *err, size_t errlen,
                    void *dtm);

#endif /* BENCH_DTM_H */
