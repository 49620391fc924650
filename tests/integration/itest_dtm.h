/*
 * itest_dtm: what the tests of trellisd's DTM service share (test_dtm.c,
 * test_dtm_xa.c, test_dtm_workflow.c): running the independent DTM client
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

/* expect IDTM_DIED: the client must die on purpose (a workflow run with
 * --die-after-record or --die-before-record exits IDTM_DIED_EXIT). */
#define IDTM_DIED "DIED"
#define IDTM_DIED_EXIT 3

/* The same command started in the background (its output in
 * dtm-client-bg.log); owned by t's harness. Wait for it with
 * harness_proc_wait. */
harness_proc_t *idtm_spawn(itest_t *t, const char *expect, ...);

/* Start the client's serve mode (trellis-dtm-wfsvc): a DTM workflow
 * service whose workflow.Workflow/Execute trellisd calls back; each call's
 * metadata is appended to the journal file, whose path is written to
 * journal[len]. Owned by t's harness. */
harness_server_t *idtm_workflow_service_start(itest_t *t, char *journal,
                                              size_t len);

/* Calls of (branch, op) of gid at t's testpart with effect (NULL: any). */
int idtm_count(itest_t *t, const char *gid, const char *branch, const char *op,
               const char *effect);

/* Wait until gid is final, and fail unless it ended want. */
void idtm_assert_final(itest_t *t, const char *gid,
                       trellis_trans_status_t want);

#endif /* TRELLIS_ITEST_DTM_H */
