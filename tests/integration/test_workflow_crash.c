/*
 * test_workflow_crash.c: issue 14's crash tests of workflows. A workflow
 * service (trellis-wfsvc, harness/wfsvc.c) runs a four-step workflow —
 * saga 01, tcc 02, local 03, saga 04 on trellis-testpart, then commit or
 * rollback — and is killed (kill -9), or trellisd is, or both, at a point
 * the test holds the process at; after the restart every step's effect
 * must have happened exactly once (in testpart's barrier, duplicates only
 * as "dup"; the local step's in wfsvc's file barrier), or been rolled back
 * exactly once, and Query must show the one outcome.
 *
 *   a. the service killed at every step boundary K = 1..5 (5: before the
 *      decision), held there through its Control method, for a committing
 *      and for a rolling-back workflow; trellisd's resume runs the
 *      function again in the restarted service;
 *   b. the service killed in the middle of each remote step (its forward
 *      call held at testpart; released once the service is dead, so the
 *      effect happens and its answer is lost): the re-run calls it again,
 *      a duplicate; once with the step then failing for business reasons;
 *   c. trellisd (trellisd-faults) killed at every recorded step: its commit
 *      groups are held and let through one by one — the insert, then
 *      RegisterBranch and RecordStep of each step — until step K's
 *      RecordStep is held (never durable); once more with that group
 *      committed but its answer held (lose-answer: durable, never
 *      answered); and once more when the group after it is held (the
 *      record committed and answered); K = 1..4, for a commit and for a
 *      rollback;
 *   d. both at once: the service held at every boundary K = 1..5 and
 *      trellisd killed, then both restarted (either one first), for a
 *      commit and for a rollback.
 *
 * Timing: the service's workflows resume after 400 ms and trellisd's
 * backoff is capped at 200 ms, so each of the 48 workflows recovers in
 * well under a second (the whole test takes about 10 s). In
 * (c) the workflows' timeout is 60 s instead: every resume attempt is a
 * commit group of its own, and none may come between the groups the test
 * counts. The restarted trellisd-faults then reads a wall clock moved on
 * by 120 s per restart (TRELLIS_FAULT_WALL_OFFSET_MS), so it finds the
 * workflow past its timeout and resumes it at once.
 */
#include "itest_fault.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_STEPS 4
#define TCC_STEP 2
#define LOCAL_STEP 3
#define FAST_TIMEOUT_MS 400
#define SLOW_TIMEOUT_MS 60000
#define CLOCK_STEP_MS 120000

/* ---- the fixture ----------------------------------------------------- */

typedef struct {
    itest_t *t;
    harness_server_t *svc; /* trellis-wfsvc, owned by t->h */
    char local_dir[PATH_MAX];
    int clock_moves; /* restarts of trellisd-faults with a later clock */
} fx_t;

static fx_t F;

/* The itest fixture (on trellisd-faults when faulty) and trellis-wfsvc,
 * whose workflows resume after timeout_ms. */
static void fx_start(void **state, const char *name, int faulty,
                     unsigned timeout_ms)
{
    static const char *const tm_args[] = {"--max-backoff-ms", "200", NULL};
    char bin[PATH_MAX], to[16];
    memset(&F, 0, sizeof F);
    F.t = faulty ? itest_start_faulty(state, name, tm_args)
                 : itest_start(state, name, tm_args);
    assert_non_null(
        harness_path(F.t->h, "wfsvc.local", F.local_dir, sizeof F.local_dir));
    snprintf(bin, sizeof bin, "%s/bin/trellis-wfsvc", harness_build_dir());
    snprintf(to, sizeof to, "%u", timeout_ms);
    const char *const args[] = {"--tm",
                                harness_server_addr(F.t->tm),
                                "--part",
                                harness_server_addr(F.t->part),
                                "--timeout-ms",
                                to,
                                "--local-dir",
                                F.local_dir,
                                NULL};
    F.svc = harness_server_start(F.t->h, "wfsvc", bin, args);
    assert_non_null(F.svc);
}

static void env_clear(void)
{
    itest_fault_env_clear();
    unsetenv("TRELLIS_FAULT_WALL_OFFSET_MS");
}

static void fx_pass(void **state)
{
    env_clear();
    itest_pass(state);
}

static int fx_teardown(void **state)
{
    env_clear();
    return itest_teardown(state);
}

/* ---- commands -------------------------------------------------------- */

/* One Control command to wfsvc or testpart (itest_control). */
#define svc_cmd(reply, len, ...)                                               \
    itest_control(harness_server_addr(F.svc), reply, len, __VA_ARGS__)
#define part_cmd(...)                                                          \
    itest_control(harness_server_addr(F.t->part), NULL, 0, __VA_ARGS__)

/* "saga:S1|tcc:S2|local|saga:S4|end:commit" (or end:rollback). */
static const char *input(char *buf, size_t len, const char *s1, const char *s2,
                         const char *s4, int commit)
{
    snprintf(buf, len, "saga:%s|tcc:%s|local|saga:%s|end:%s", s1, s2, s4,
             commit ? "commit" : "rollback");
    return buf;
}

/* Start gid in the service, held before step k; wait until it is held. */
static void start_held(const char *gid, int k, const char *in)
{
    char reply[256], want[16];
    svc_cmd(NULL, 0, "start %s %d %s", gid, k, in);
    svc_cmd(reply, sizeof reply, "wait-held %s %d", gid,
            ITEST_FINAL_TIMEOUT_MS);
    snprintf(want, sizeof want, "ok at=%d", k);
    assert_string_equal(reply, want);
}

static void svc_crash_restart(void)
{
    assert_int_equal(harness_server_kill(F.svc), 0);
    assert_int_equal(harness_server_restart(F.svc), 0);
}

/* Restart the killed trellisd-faults with its wall clock moved on past
 * every workflow's timeout (see the top comment). */
static void tm_restart_later(void)
{
    char offset[32];
    snprintf(offset, sizeof offset, "%d", ++F.clock_moves * CLOCK_STEP_MS);
    setenv("TRELLIS_FAULT_WALL_OFFSET_MS", offset, 1);
    assert_int_equal(harness_server_restart(F.t->tm), 0);
}

/* ---- what the participants saw --------------------------------------- */

/* What one workflow must end with. */
typedef struct {
    int commit; /* end:commit (SUCCEEDED unless a step failed), else FAILED */
    int failed; /* the step whose forward op answers ABORTED; 0: none */
    int resent; /* the step whose forward op ran again; 0: each ran once */
} expect_t;

static const char *fwd_op(int k)
{
    return k == TCC_STEP ? "try" : "action";
}

static const char *undo_op(int k)
{
    return k == TCC_STEP ? "cancel" : "compensate";
}

/* Calls of (branch of step k, op); the successful ones took effect once
 * as `effect` and were "dup" otherwise (none may succeed when effect is
 * NULL). */
static int once(const harness_part_state_t *ps, int k, const char *op,
                const char *effect)
{
    char br[8];
    int calls = 0, ok = 0, hit = 0, dup = 0;
    snprintf(br, sizeof br, "%02d", k);
    for (size_t i = 0; i < ps->n_calls; i++) {
        const harness_part_call_t *c = &ps->calls[i];
        if (strcmp(c->branch, br) || strcmp(c->op, op))
            continue;
        calls++;
        ok += !strcmp(c->answer, "ok");
        hit += effect && !strcmp(c->effect, effect);
        dup += !strcmp(c->effect, "dup");
    }
    if (effect ? hit != 1 || ok != hit + dup : ok != 0) {
        harness_part_state_dump(ps);
        fail_msg("step %d's %s: %d calls, %d ok, %d %s, %d dup", k, op, calls,
                 ok, hit, effect ? effect : "-", dup);
    }
    return calls;
}

static int first_seq(const harness_part_state_t *ps, int k, const char *op)
{
    const harness_part_call_t *c = NULL;
    char br[8];
    snprintf(br, sizeof br, "%02d", k);
    for (int n = 0; (c = harness_part_find(ps, br, op, n)); n++)
        if (!strcmp(c->answer, "ok"))
            return (int)c->seq;
    fail_msg("step %d's %s never succeeded", k, op);
    return -1;
}

/* Step k (remote) at testpart: forward op once (or resent), then its
 * phase 2 as the outcome says. */
static void check_remote(const harness_part_state_t *ps, int k,
                         const expect_t *e)
{
    int failed = k == e->failed;
    int calls = once(ps, k, fwd_op(k), failed ? NULL : "applied");
    if (k == e->resent ? calls < 2 : calls != 1) {
        harness_part_state_dump(ps);
        fail_msg("step %d's %s was called %d times", k, fwd_op(k), calls);
    }
    int succeeded = e->commit && !e->failed;
    if (k == TCC_STEP &&
        once(ps, k, "confirm", succeeded ? "confirmed" : NULL) && !succeeded)
        fail_msg("step %d was confirmed in a rollback", k);
    if (succeeded)
        assert_int_equal(once(ps, k, undo_op(k), NULL), 0);
    else
        once(ps, k, undo_op(k), failed ? "empty" : "undone");
}

/* The local step's name in the barrier: its content, or "" when absent. */
static const char *local_slot(const char *gid, const char *op, char *buf,
                              size_t len)
{
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s.%02d.%s", F.local_dir, gid, LOCAL_STEP,
             op);
    ssize_t n = readlink(path, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* Lines of wfsvc's local journal for gid's local step with op, effect. */
static int local_count(const char *gid, const char *op, const char *effect)
{
    char path[PATH_MAX + 32], line[256], want[200];
    snprintf(path, sizeof path, "%s/local.journal", F.local_dir);
    snprintf(want, sizeof want, "local gid=%s branch=%02d op=%s effect=%s\n",
             gid, LOCAL_STEP, op, effect);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += !strcmp(line, want);
    if (f)
        fclose(f);
    return n;
}

static void check_local(const char *gid, const expect_t *e)
{
    char buf[32];
    int undone = !(e->commit && !e->failed);
    assert_string_equal(local_slot(gid, "action", buf, sizeof buf), "applied");
    assert_string_equal(local_slot(gid, "undo", buf, sizeof buf),
                        undone ? "undone" : "");
    assert_string_equal(local_slot(gid, "blocked", buf, sizeof buf), "");
    assert_int_equal(local_count(gid, "action", "applied"), 1);
    int dups = local_count(gid, "action", "dup");
    assert_true(e->resent == LOCAL_STEP ? dups >= 1 : dups == 0);
    assert_int_equal(local_count(gid, "compensate", "undone"), undone);
    assert_int_equal(local_count(gid, "compensate", "empty"), 0);
}

/* gid ends as e says, every step's effect happened once (or was undone
 * once, in reverse order). */
static void check_once(const char *gid, const expect_t *e)
{
    trellis_trans_info_t *info = itest_wait_final(F.t, gid);
    int succeeded = e->commit && !e->failed;
    if (info->status !=
        (succeeded ? TRELLIS_TRANS_SUCCEEDED : TRELLIS_TRANS_FAILED))
        fail_msg("%s: %s (%s)", gid, trellis_trans_status_name(info->status),
                 info->reason);
    assert_int_equal(info->n_branches, 1 + N_STEPS);
    trellis_trans_info_free(info);
    harness_part_state_t ps;
    itest_part_state(F.t, gid, &ps);
    for (int k = 1; k <= N_STEPS; k++)
        if (k != LOCAL_STEP)
            check_remote(&ps, k, e);
    if (succeeded) {
        assert_int_equal(ps.n_net, N_STEPS - 1); /* the remote steps */
        assert_true(harness_part_net_has(&ps, "02"));
    } else { /* undone in reverse order: 04, 02, 01 */
        assert_int_equal(ps.n_net, 0);
        assert_true(first_seq(&ps, 4, "compensate") <
                    first_seq(&ps, 2, "cancel"));
        assert_true(first_seq(&ps, 2, "cancel") <
                    first_seq(&ps, 1, "compensate"));
    }
    harness_part_state_free(&ps);
    check_local(gid, e);
    fprintf(stderr, "%s: once\n", gid);
}

/* ---- a. the service killed at every step boundary -------------------- */

static void service_killed_at_boundaries(int commit)
{
    char in[256], gid[64];
    input(in, sizeof in, "ok", "ok", "ok", commit);
    for (int k = 1; k <= N_STEPS + 1; k++) {
        snprintf(gid, sizeof gid, "a-%s-%d", commit ? "c" : "r", k);
        start_held(gid, k, in);
        svc_crash_restart();
        check_once(gid, &(expect_t){.commit = commit});
    }
}

static void test_service_killed_at_boundaries(void **state)
{
    fx_start(state, "wfc_boundary", 0, FAST_TIMEOUT_MS);
    service_killed_at_boundaries(1);
    fx_pass(state);
}

static void test_service_killed_at_boundaries_rollback(void **state)
{
    fx_start(state, "wfc_boundary_rb", 0, FAST_TIMEOUT_MS);
    service_killed_at_boundaries(0);
    fx_pass(state);
}

/* ---- b. the service killed in the middle of a remote step ------------ */

typedef struct {
    int min_calls;
    const char *gid;
    int k;
} calls_wait_t;

/* Step k's forward op was answered at testpart (the journal has it). */
static int forward_answered(void *arg)
{
    const calls_wait_t *w = arg;
    harness_part_state_t ps;
    char br[8];
    if (harness_part_state(harness_server_addr(F.t->part), w->gid, &ps) != 0)
        return 0;
    snprintf(br, sizeof br, "%02d", w->k);
    int n = harness_part_count(&ps, br, fwd_op(w->k), NULL);
    harness_part_state_free(&ps);
    return n >= w->min_calls;
}

/* gid's step k holds at testpart (its script says so): kill the service
 * while the call is held, let the call go on (its effect happens, its
 * answer goes to the dead process), then restart the service. */
static void service_killed_mid_step(const char *gid, int k, const char *in)
{
    svc_cmd(NULL, 0, "start %s 0 %s", gid, in);
    part_cmd("wait-held %s 1 %d", gid, ITEST_FINAL_TIMEOUT_MS);
    assert_int_equal(harness_server_kill(F.svc), 0);
    part_cmd("release %s", gid);
    calls_wait_t w = {1, gid, k};
    assert_true(harness_poll(forward_answered, &w, ITEST_FINAL_TIMEOUT_MS, 10));
    assert_int_equal(harness_server_restart(F.svc), 0);
}

static void test_service_killed_mid_step(void **state)
{
    char in[256];
    fx_start(state, "wfc_mid_step", 0, FAST_TIMEOUT_MS);
    service_killed_mid_step("b-1", 1,
                            input(in, sizeof in, "hold", "ok", "ok", 1));
    check_once("b-1", &(expect_t){.commit = 1, .resent = 1});
    service_killed_mid_step("b-2", 2,
                            input(in, sizeof in, "ok", "hold", "ok", 1));
    check_once("b-2", &(expect_t){.commit = 1, .resent = 2});
    service_killed_mid_step("b-4", 4,
                            input(in, sizeof in, "ok", "ok", "hold", 0));
    check_once("b-4", &(expect_t){.commit = 0, .resent = 4});
    /* The held call fails for business reasons, and again in the re-run:
     * the workflow rolls back with step 04 never applied. */
    service_killed_mid_step("b-4f", 4,
                            input(in, sizeof in, "ok", "ok", "hold,fail", 1));
    check_once("b-4f", &(expect_t){.commit = 1, .failed = 4, .resent = 4});
    fx_pass(state);
}

/* ---- c. trellisd killed at every recorded step ----------------------- */

/* Hold trellisd's commit groups, start gid, and let its groups through
 * one by one until the n-th is held; its report into report[len]. Group 1
 * is the insert, 2k and 2k+1 step k's RegisterBranch and RecordStep. */
static void hold_group(const char *gid, const char *in, int n, char *report,
                       size_t len)
{
    itest_fault("hold", NULL, 0);
    svc_cmd(NULL, 0, "start %s 0 %s", gid, in);
    itest_fault_hold_nth(gid, n, report, len);
}

/* kill -9 trellisd while gid's group n is held: never durable, or (when
 * unanswered) durable with its answer not sent. */
static void tm_killed_at_group(const char *gid, const char *in, int n,
                               const char *status, int unanswered)
{
    char report[1200], want[96];
    hold_group(gid, in, n, report, sizeof report);
    snprintf(want, sizeof want, "%s:%s", gid, status);
    if (strcmp(report, want) != 0)
        fail_msg("%s: group %d is \"%s\", want \"%s\"", gid, n, report, want);
    if (unanswered)
        itest_fault_commit_unanswered(gid, want);
    assert_int_equal(harness_server_kill(F.t->tm), 0);
    tm_restart_later();
}

/* The restarted trellisd resumed gid itself: its resume op was called. */
static void assert_resumed(const char *gid)
{
    trellis_trans_info_t *info = itest_query(F.t, gid);
    assert_true(itest_op(&info->branches[0], TRELLIS_OP_RESUME)->attempts >= 1);
    trellis_trans_info_free(info);
}

static void trellisd_killed_at_records(int commit)
{
    char in[256], gid[64];
    const char *c = commit ? "c" : "r";
    input(in, sizeof in, "ok", "ok", "ok", commit);
    for (int k = 1; k <= N_STEPS; k++) {
        /* Step k's RecordStep held: its forward op runs again. */
        snprintf(gid, sizeof gid, "c-%s-%d-held", c, k);
        tm_killed_at_group(gid, in, 2 * k + 1, "prepared", 0);
        check_once(gid, &(expect_t){.commit = commit, .resent = k});
        assert_resumed(gid);
        /* Step k's RecordStep committed, its answer lost: the service's
         * call failed, but the re-run replays the record. */
        snprintf(gid, sizeof gid, "c-%s-%d-lost", c, k);
        tm_killed_at_group(gid, in, 2 * k + 1, "prepared", 1);
        check_once(gid, &(expect_t){.commit = commit});
        assert_resumed(gid);
        /* It committed and was answered; the next group (step k+1's
         * RegisterBranch, or the decision) is held: nothing runs twice. */
        snprintf(gid, sizeof gid, "c-%s-%d-after", c, k);
        tm_killed_at_group(gid, in, 2 * k + 2,
                           k < N_STEPS ? "prepared"
                           : commit    ? "submitted"
                                       : "aborting",
                           0);
        check_once(gid, &(expect_t){.commit = commit});
        assert_resumed(gid);
    }
}

static void test_trellisd_killed_at_records(void **state)
{
    fx_start(state, "wfc_tm_records", 1, SLOW_TIMEOUT_MS);
    trellisd_killed_at_records(1);
    trellisd_killed_at_records(0);
    fx_pass(state);
}

/* ---- d. both at once ------------------------------------------------- */

static void both_killed(const char *gid, int k, const char *in, int svc_first)
{
    start_held(gid, k, in);
    assert_int_equal(harness_server_kill(F.t->tm), 0);
    assert_int_equal(harness_server_kill(F.svc), 0);
    harness_server_t *first = svc_first ? F.svc : F.t->tm;
    harness_server_t *second = svc_first ? F.t->tm : F.svc;
    assert_int_equal(harness_server_restart(first), 0);
    assert_int_equal(harness_server_restart(second), 0);
}

/* Every boundary, for a commit and a rollback, restarting trellisd or the
 * service first in turn. */
static void test_both_killed(void **state)
{
    char in[256], gid[64];
    fx_start(state, "wfc_both", 0, FAST_TIMEOUT_MS);
    for (int commit = 1; commit >= 0; commit--) {
        input(in, sizeof in, "ok", "ok", "ok", commit);
        for (int k = 1; k <= N_STEPS + 1; k++) {
            snprintf(gid, sizeof gid, "d-%s-%d", commit ? "c" : "r", k);
            both_killed(gid, k, in, (k + commit) % 2);
            check_once(gid, &(expect_t){.commit = commit});
        }
    }
    fx_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_service_killed_at_boundaries,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_service_killed_at_boundaries_rollback,
                                  fx_teardown),
        cmocka_unit_test_teardown(test_service_killed_mid_step, fx_teardown),
        cmocka_unit_test_teardown(test_trellisd_killed_at_records, fx_teardown),
        cmocka_unit_test_teardown(test_both_killed, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
