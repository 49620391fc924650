/*
 * fuzz_model: checks the TM fuzz targets run on a transaction model built
 * from untrusted requests. Each states an invariant that trellisd relies on
 * later, away from the request (start_call parses every stored target, the
 * store writes branch ids and payloads, Query packs the model), so a
 * request that validation lets through but that breaks one of them fails
 * here, at the request, instead of in a branch call much later.
 *
 * A broken invariant fails through fz_require (fuzz_input.h).
 */
#ifndef FUZZ_MODEL_H
#define FUZZ_MODEL_H

#include "fuzz_input.h"
#include "tm_trans.h"
#include "tm_validate.h"

/* The time the targets pass for "now": any fixed value keeps runs
 * reproducible. */
#define FZ_NOW_MS 1700000000000LL

/* trellisd's default limits (what tm_config_default gives the engine). */
tm_limits_t fz_default_limits(void);

/* Every branch of tx: a valid unique id, dependencies on earlier branches
 * only, a payload within lim, a forward op, targets that parse and that
 * lim's allowlist admits; headers and branches within lim. */
void fz_model_check(const tm_trans_t *tx, const tm_limits_t *lim);

/* The branches a submit's steps became, from index base on, have exactly
 * the prerequisites tm_request.h promises: a step's depends_on (offset by
 * base); else the step before it unless concurrent; else, for a root, the
 * last branch before base. */
void fz_model_check_steps(const tm_trans_t *tx,
                          const Trellis__V1__SubmitRequest *r, size_t base);

/* What Query and List answer for tx: to protobuf, packed, unpacked again
 * (the SDK's side) and compared, everything freed. */
void fz_model_reply(const tm_trans_t *tx);

#endif /* FUZZ_MODEL_H */
