/*
 * itest_dtm: what the tests of trellisd's DTM service share (test_dtm.c,
 * test_dtm_xa.c): running the independent DTM client
 * (tests/dtm/dtm_client.py) against a test's trellisd, and reading the
 * outcome as a user relies on it — the final state through trellis.v1's
 * Query, each op's effect at trellis-testpart by DTM's branch ids.
 *
 * The helpers assert (cmocka) on failure, like itest's.
 */
#ifndef TRELLIS_ITEST_DTM_H
#define TRELLIS_ITEST_DTM_H

#include "itest.h"

/* Run the DTM client against t's trellisd (its output is appended to
 * dtm-client.log in the scratch directory): expect is the gRPC code name
 * the command must end with ("OK", "ABORTED", ...); the rest, up to a
 * NULL, its options and command (tests/dtm/dtm_client.py). Fails the test
 * otherwise. */
void idtm_run(itest_t *t, const char *expect, ...);

/* Calls of (branch, op) of gid at t's testpart with effect (NULL: any). */
int idtm_count(itest_t *t, const char *gid, const char *branch, const char *op,
               const char *effect);

/* Wait until gid is final, and fail unless it ended want. */
void idtm_assert_final(itest_t *t, const char *gid,
                       trellis_trans_status_t want);

#endif /* TRELLIS_ITEST_DTM_H */
