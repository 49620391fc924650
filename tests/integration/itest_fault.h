/*
 * itest_fault: the fixture on trellisd-faults (tests/faults/tm_fault.h) and
 * the commands a test sends to it — hold a commit group, release it, fail
 * or lose the next ones, read a count. Shared by the tests of issue 12's
 * races (test_faults.c on one node, test_multinode.c on several).
 *
 * One faulty trellisd per test process at a time: its control socket path
 * is kept here. The helpers assert (cmocka) on failure.
 */
#ifndef TRELLIS_ITEST_FAULT_H
#define TRELLIS_ITEST_FAULT_H

#include "itest.h"

/* itest_start with trellisd-faults as the fixture's trellisd, its control
 * socket named after name. The environment keeps pointing at it
 * (TRELLIS_TRELLISD, TRELLIS_FAULT_SOCKET), so a restart of the fixture's
 * trellisd is faulty again; itest_fault_env_clear() before starting other
 * trellisd processes that must be plain. */
itest_t *itest_start_faulty(void **state, const char *name,
                            const char *const *extra_tm_args);

/* Unset what itest_start_faulty set: trellisd started afterwards are the
 * plain binary without a control socket. */
void itest_fault_env_clear(void);

/* Send cmd; asserts the reply starts with "ok". The reply (after "ok ")
 * is copied into reply[len] when reply is not NULL. */
void itest_fault(const char *cmd, char *reply, size_t len);

/* Send cmd and return the number its reply carries ("ok N"). */
long itest_fault_number(const char *cmd);

/* Until trellisd holds exactly n incoming calls not yet answered
 * ("live-calls"); the test fails when it does not get there. */
void itest_fault_wait_live_calls(long n);

/* After "hold" and whatever started gid: let gid's commit groups through
 * one by one until the n-th (from 1) is held; each must write gid, the
 * first insert it (gid:prepared:insert). The n-th's report ("gid:status",
 * see tm_fault.h) goes to report[len]. */
void itest_fault_hold_nth(const char *gid, int n, char *report, size_t len);

/* Let the held group commit and hold its answer instead (lose-answer):
 * durable, and whoever sent it never hears so. Asserts that the group held
 * then is want and that exactly one commit happened. */
void itest_fault_commit_unanswered(const char *gid, const char *want);

#endif /* TRELLIS_ITEST_FAULT_H */
