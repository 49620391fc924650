/*
 * itest: the fixture the integration tests share — one harness, one
 * trellisd, one trellis-testpart and one SDK client per test — and the
 * assertions they repeat (submit, query, wait for the outcome, read the
 * participant's journal as a compact string).
 *
 * Use with cmocka: register each test with
 *   cmocka_unit_test_teardown(test_fn, itest_teardown)
 * start it with itest_start(state, ...), end it with itest_pass(state).
 * A failed assertion leaves the test before itest_pass; the teardown then
 * kills the processes and keeps the scratch dir for its logs.
 *
 * The functions here assert (cmocka) on failure instead of returning
 * errors. Not thread-safe: call from the test's thread.
 */
#ifndef TRELLIS_ITEST_H
#define TRELLIS_ITEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"
#include "trellis/trellis.h"

/* Fast retries so the suite is quick; trellisd gets the same defaults. */
#define ITEST_RETRY_INTERVAL_MS 50
#define ITEST_REQUEST_TIMEOUT_MS 500
#define ITEST_FINAL_TIMEOUT_MS 20000

typedef struct {
    harness_t *h;
    harness_server_t *tm;
    harness_server_t *part;
    trellis_client_t *client;
    char action[96];     /* "127.0.0.1:P/trellis.test.Part/Action" */
    char compensate[96]; /* "127.0.0.1:P/trellis.test.Part/Compensate" */
} itest_t;

/* Start the fixture named name (scratch dir <name>-<pid>), with trellisd
 * getting extra_tm_args (NULL-terminated, may be NULL) after the fast
 * defaults. Stores it in *state. */
itest_t *itest_start(void **state, const char *name,
                     const char *const *extra_tm_args);

/* Run `trellisctl --tm <the fixture's trellisd> args...` (args
 * NULL-terminated) as name, through the harness; returns its exit code and
 * what it wrote (stdout and stderr) in out[outlen]. */
int itest_ctl(itest_t *t, const char *name, const char *const *args, char *out,
              size_t outlen);

/* A new SDK client to the fixture's trellisd (after its restart), as an
 * initiator process would connect again; the old one is freed. */
void itest_reconnect(itest_t *t);

/* The crash point made exact: once the participant holds n calls of gid
 * (its script says "hold"), trellisd gets kill -9 while they are in
 * flight; the calls are released (their effects happen, their answers go
 * to the dead process), trellisd restarts on its port and data, and the
 * client connects again. */
void itest_crash_while_held(itest_t *t, const char *gid, int n);

/* The test passed: stop everything, assert that trellisd and the
 * participant exited 0 on SIGTERM and none died on its own, and remove the
 * scratch dir. */
void itest_pass(void **state);

/* cmocka teardown: after a failure, stop everything, keep the scratch. */
int itest_teardown(void **state);

/* Options with wait_result set and the fast retry settings. */
trellis_options_t itest_options(void);

/* A saga of n steps on the test participant: step i gets payload
 * payloads[i] (a testpart script), action and compensate targets. Options
 * from itest_options() unless o is not NULL. The caller frees it. */
trellis_saga_t *itest_saga(itest_t *t, const char *gid,
                           const char *const *payloads, size_t n,
                           const trellis_options_t *o);

/* Submit; asserts rc OK and returns the status (final with wait_result).
 * reason (may be NULL) gets why it failed. */
trellis_trans_status_t itest_submit(itest_t *t, const trellis_saga_t *s,
                                    char *reason, size_t reasonlen);

/* Query; asserts rc OK. The caller frees with trellis_trans_info_free. */
trellis_trans_info_t *itest_query(itest_t *t, const char *gid);

/* Query until the status is SUCCEEDED or FAILED (asserts it gets there in
 * ITEST_FINAL_TIMEOUT_MS). */
trellis_trans_info_t *itest_wait_final(itest_t *t, const char *gid);

/* The branch's op of kind op (asserts it exists). */
const trellis_op_info_t *itest_op(const trellis_branch_info_t *b,
                                  trellis_op_t op);

/* The participant's journal and net state for gid (asserts success). */
void itest_part_state(itest_t *t, const char *gid, harness_part_state_t *s);

/* Poll the participant until gid's journal has at least n calls. */
void itest_wait_calls(itest_t *t, const char *gid, size_t n);

/* The step index (0..) of branch_id in info, or -1. */
int itest_step_of(const trellis_trans_info_t *info, const char *branch_id);

/* gid's journal as "A0 A1 A2:fail C2 C1 C0": op letter (A action,
 * C compensate, T try, F confirm, X cancel), step index, and ":answer"
 * when the answer was not ok. Written to buf[len]; returns buf. */
char *itest_journal(const trellis_trans_info_t *info,
                    const harness_part_state_t *s, char *buf, size_t len);

/* The first call of step's op with the given effect (NULL: any), or NULL. */
const harness_part_call_t *itest_call(const trellis_trans_info_t *info,
                                      const harness_part_state_t *s, int step,
                                      const char *op, const char *effect);

/* Calls of step's op with the given effect (NULL: any). */
int itest_count(const trellis_trans_info_t *info, const harness_part_state_t *s,
                int step, const char *op, const char *effect);

/* Send one Control command (printf format) to the server at addr —
 * trellis-testpart, or a test service with its Control method (wfsvc,
 * msgsvc) — through harness_part_cmd; the test fails unless it answers
 * "ok". Its reply line goes to reply[len] (may be NULL). */
void itest_control(const char *addr, char *reply, size_t len, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* grpc.health.v1.Health/Check of service on t's trellisd: the rc, and in
 * *status the serving status when OK (1 SERVING, 2 NOT_SERVING), else -1. */
trellis_rc_t itest_health(itest_t *t, const char *service, int *status);

#endif /* TRELLIS_ITEST_H */
