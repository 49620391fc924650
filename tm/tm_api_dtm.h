/*
 * tm_api_dtm: the gRPC half of DTM's service dtmgimp.Dtm, served beside
 * trellis.v1.TM on the same port, so applications written with DTM's SDKs
 * work with trellisd by changing the address they dial. Each request is
 * translated (tm_dtm_map.h) into the trellis.v1 request the engine already
 * serves, and the engine's answers go back as DTM replies: Empty for
 * Submit, Prepare, Abort, RegisterBranch and the topic methods, with
 * DTM's result codes — ABORTED for a transaction that failed or a request
 * its state refuses (DTM's ErrFailure; never FAILED_PRECONDITION, which a
 * DTM client reads as "ongoing"). What cannot be mapped is refused
 * UNIMPLEMENTED naming it; bad input INVALID_ARGUMENT; a target outside
 * the allowlist PERMISSION_DENIED. Nothing is stored for any of them.
 * docs/dtm-compat.md has the whole mapping side by side with DTM.
 *
 * Threads: as tm_api.h: handlers on completion-queue threads; replies
 * from any thread.
 */
#ifndef TM_API_DTM_H
#define TM_API_DTM_H

#include <stddef.h>

#include "tm_api.h"

/* The methods of dtmgimp.Dtm, for tm_api_add_methods. */
extern const tm_api_method_t tm_dtm_methods[];
extern const size_t tm_dtm_n_methods;

#endif /* TM_API_DTM_H */
