/*
 * itest_workflow: what the workflow integration tests share
 * (test_workflow.c, test_workflow_input.c) — the workflow service hosted
 * by the test process itself (a trellis_participant serving
 * /trellis.v1.Workflow/Resume and a small participant, trellis.test.Bytes,
 * whose action answers bytes holding a NUL) against the fixture's trellisd
 * and trellis-testpart; the workflow functions it registers; what they saw
 * (W); and the calls the tests make through it.
 *
 * One test at a time: X is the running test's fixture, W what its
 * functions saw; both are reset by wft_start. The functions, steps and
 * hooks run on the test's thread (execute) and on the participant's
 * workers (trellisd's Resume), so W's counters are atomic and the rest is
 * under W.mu.
 *
 * The registered functions: "transfer" (saga, saga, local, tcc steps from
 * its input "s1|s2|local|s4"), "bytes" (a step on trellis.test.Bytes and a
 * local step, RETRY while W.retries_left), "shifty" (a saga step, then a
 * tcc step at its place once W.shifty_tcc), "flaky" (a saga step, RETRY
 * while W.retries_left), "hooked" (hooks, a saga and a tcc step; input
 * "commit" or "rollback"), "slow" (blocks until W.slow_release), "shrink"
 * (two steps, one once W.shrink) and "careless" (a saga step scripted by
 * its input, COMMIT whatever it answered).
 */
#ifndef ITEST_WORKFLOW_H
#define ITEST_WORKFLOW_H

#include "itest.h"

#include <pthread.h>
#include <stdatomic.h>

#include "trellis/trellis_participant.h"
#include "trellis/trellis_workflow.h"

#define PART "trellis.test.Part"
#define BYTES_METHOD "/trellis.test.Bytes/Action"
#define BYTES_UNDO_METHOD "/trellis.test.Bytes/Compensate"
/* What trellis.test.Bytes/Action answers: 8 bytes, a NUL among them. */
extern const uint8_t BYTES_REPLY[8];
/* What the local step's action returns. */
extern const uint8_t LOCAL_RESULT[8];

/* What the functions, steps and hooks saw; they run on the test's thread
 * (execute) and on the participant's workers (trellisd's Resume). */
typedef struct {
    atomic_int runs;         /* function runs, any function */
    atomic_int bytes_calls;  /* trellis.test.Bytes/Action */
    atomic_int local_runs;   /* local action */
    atomic_int undo_runs;    /* local undo */
    atomic_int retries_left; /* flaky, bytes: runs that return RETRY */
    atomic_int shifty_tcc;   /* shifty asks for a tcc step, not a saga */
    atomic_int shrink;       /* shrink takes one step, not two */
    atomic_int slow_entered; /* slow is running */
    atomic_int slow_release; /* slow may return */
    atomic_int on_commit, on_rollback, on_finish;
    pthread_mutex_t mu; /* guards the rest */
    char bad[256];      /* the first failed EXPECT, off the test's thread */
    uint8_t undo_seen[32];
    size_t undo_seen_len;
    int undo_seen_null;
    int64_t undo_ms, hook_ms;
    uint8_t replies[4][32]; /* bytes: the reply of each run's step 01 */
    size_t reply_lens[4];
} wft_seen_t;

extern wft_seen_t W;

/* cmocka's asserts may only fail on the test's thread; code that also
 * runs on the participant's workers notes a failure here instead, and the
 * test checks it when it passes (wft_pass). */
#define EXPECT(cond) expect_at((cond), #cond, __LINE__)

int expect_at(int ok, const char *what, int line);

/* ---- the fixture ----------------------------------------------------- */

typedef struct {
    itest_t *t;
    trellis_participant_t *p;
    trellis_workflows_t *w;
    char addr[64]; /* the workflow service, "127.0.0.1:P" */
    char action[128], compensate[128], try_[128], confirm[128], cancel[128];
    char bytes[128], bytes_undo[128];
} wft_t;

extern wft_t *X; /* the running test's */

/* Start the fixture (itest_start with extra_tm_args) and the workflow
 * service with every function registered; X is set, W reset. */
void wft_start(void **state, const char *name,
               const char *const *extra_tm_args);
/* Pass the test: fail if a function, step or hook noted a failure, then
 * free X and itest_pass. */
void wft_pass(void **state);
/* cmocka teardown: free X (if a test failed first), itest_teardown. */
int wft_teardown(void **state);

/* The function registered as "slow": blocks until W.slow_release, then
 * COMMIT with no step. */
int wf_slow(trellis_wf_t *wf, const uint8_t *in, size_t len,
            trellis_wf_err_t *e);

/* ---- helpers --------------------------------------------------------- */

/* trellis_workflow_execute on X's registry, logged to stderr. */
trellis_rc_t execute(const char *name, const char *gid, const void *input,
                     size_t len, const trellis_options_t *o,
                     trellis_trans_status_t *st, char *reason, size_t reasonlen,
                     char *err, size_t errlen);
/* Options: wait for the outcome, fast retries, resume after timeout_ms.
 * A call of the workflow service runs the function again, so its deadline
 * is generous: a hook answered late would run twice. */
trellis_options_t opts(uint32_t timeout_ms);
/* gid's testpart journal (itest_journal: "A1 A2 T4 F4", the number the
 * step's position, 1 for branch "01"); ps is the caller's. */
char *journal(const char *gid, harness_part_state_t *ps, char *buf, size_t len);
/* info's branch id; fails the test if there is none. */
const trellis_branch_info_t *branch(const trellis_trans_info_t *info,
                                    const char *id);

#endif
