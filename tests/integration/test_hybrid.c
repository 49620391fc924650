/*
 * test_hybrid.c: hybrid transactions (trellis_gtx.h) through a real
 * trellisd and trellis-testpart: one TCC, one XA and one initiator-run saga
 * branch plus one TM-run saga step, all on the one testpart, each branch
 * scripted by its own payload. Success (forward ops in order, the TM-run
 * action, then confirm and commit); rollback started by each kind's
 * failure (every branch that may have run rolled back in reverse order);
 * abort; timeout; trellisd killed -9 in phase 1, at the decision and in
 * phase 2 (the right outcome, each effect exactly once).
 *
 * Journal letters (journal() below): T try, F confirm, X cancel,
 * P prepare, M commit, R rollback, A action, C compensate, followed by the
 * branch's index (0 for "01"), and ":answer" when the answer was not ok.
 */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis_gtx.h"

#define SVC "trellis.test.Part"

/* Phase-1 calls: kinds in call order ('T' TCC, 'X' XA, 'S' saga) with
 * their scripts, then the TM-run step's script (NULL: no step). */
typedef struct {
    const char *kinds;
    const char *scripts[3];
    const char *step;
} plan_t;

static void target(itest_t *t, const char *method, char *buf, size_t len)
{
    snprintf(buf, len, "%s/" SVC "/%s", harness_server_addr(t->part), method);
}

static trellis_gtx_t *gtx_begin(itest_t *t, const char *gid,
                                const trellis_options_t *o)
{
    char err[256];
    trellis_gtx_t *g = NULL;
    trellis_rc_t rc = trellis_gtx_begin(t->client, gid, o, &g, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_gtx_begin(%s): rc %d: %s", gid, rc, err);
    assert_string_equal(trellis_gtx_gid(g), gid);
    return g;
}

/* Call one branch of kind k with script s; its forward op's rc. */
static trellis_rc_t call_kind(itest_t *t, trellis_gtx_t *g, char k,
                              const char *s, char *err, size_t errlen)
{
    char a[128], b[128], c[128];
    size_t n = strlen(s);
    if (k == 'T') {
        target(t, "Try", a, sizeof a);
        target(t, "Confirm", b, sizeof b);
        target(t, "Cancel", c, sizeof c);
        return trellis_gtx_call_tcc(g, a, b, c, s, n, NULL, NULL, err, errlen);
    }
    if (k == 'X') {
        target(t, "Prepare", a, sizeof a);
        target(t, "Commit", b, sizeof b);
        target(t, "Rollback", c, sizeof c);
        return trellis_gtx_call_xa(g, a, b, c, s, n, NULL, NULL, err, errlen);
    }
    target(t, "Action", a, sizeof a);
    target(t, "Compensate", c, sizeof c);
    return trellis_gtx_call_saga(g, a, c, s, n, NULL, NULL, err, errlen);
}

static void add_step(itest_t *t, trellis_gtx_t *g, const char *s)
{
    char a[128], c[128], err[256];
    target(t, "Action", a, sizeof a);
    target(t, "Compensate", c, sizeof c);
    trellis_rc_t rc =
        trellis_gtx_add_step(g, a, c, s, strlen(s), err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_gtx_add_step: rc %d: %s", rc, err);
}

/* Phase 1 of p from call `from` on; returns the index of the first call
 * that did not answer OK (its rc in *rc), or the number of calls. */
static size_t phase1(itest_t *t, trellis_gtx_t *g, const plan_t *p, size_t from,
                     trellis_rc_t *rc)
{
    char err[256];
    *rc = TRELLIS_OK;
    for (size_t i = from; p->kinds[i] != '\0'; i++) {
        *rc = call_kind(t, g, p->kinds[i], p->scripts[i], err, sizeof err);
        if (*rc != TRELLIS_OK) {
            fprintf(stderr, "call %zu: rc %d: %s\n", i, *rc, err);
            return i;
        }
    }
    if (p->step != NULL)
        add_step(t, g, p->step);
    return strlen(p->kinds);
}

static trellis_trans_status_t submit(trellis_gtx_t *g)
{
    char err[256], reason[256];
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc =
        trellis_gtx_submit(g, &st, reason, sizeof reason, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_gtx_submit: rc %d: %s", rc, err);
    if (reason[0])
        fprintf(stderr, "submit: %s: %s\n", trellis_trans_status_name(st),
                reason);
    return st;
}

static trellis_trans_status_t abort_with(trellis_gtx_t *g, const char *why)
{
    char err[256];
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc = trellis_gtx_abort(g, why, &st, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_gtx_abort: rc %d: %s", rc, err);
    return st;
}

static char letter(const char *op)
{
    static const char *const names[] = {"try",     "confirm",   "cancel",
                                        "prepare", "commit",    "rollback",
                                        "action",  "compensate"};
    static const char letters[] = "TFXPMRAC";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(op, names[i]))
            return letters[i];
    return '?';
}

/* gid's journal in the letters above, into buf; ps is the caller's. */
static char *journal(itest_t *t, const char *gid, harness_part_state_t *ps,
                     char *buf, size_t len)
{
    itest_part_state(t, gid, ps);
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ps->n_calls && used < len; i++) {
        const harness_part_call_t *c = &ps->calls[i];
        int ok = !strcmp(c->answer, "ok");
        used += (size_t)snprintf(
            buf + used, len - used, "%s%c%d%s%s", i ? " " : "", letter(c->op),
            atoi(c->branch) - 1, ok ? "" : ":", ok ? "" : c->answer);
    }
    fprintf(stderr, "%s: %s\n", gid, buf);
    return buf;
}

/* The transaction is final with status st; its branches are in the modes
 * of kinds (then one TM-run saga step when step), each branch's ops as the
 * outcome says. */
static trellis_trans_info_t *assert_final(itest_t *t, const char *gid,
                                          trellis_trans_status_t st,
                                          const char *kinds, int step)
{
    trellis_trans_info_t *info = itest_wait_final(t, gid);
    assert_int_equal(info->status, st);
    size_t n = strlen(kinds);
    assert_int_equal(info->n_branches, n + (step ? 1 : 0));
    for (size_t i = 0; i < info->n_branches; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        char want[24];
        snprintf(want, sizeof want, "%02zu", i + 1);
        assert_string_equal(b->branch_id, want);
        assert_int_equal(b->initiator_driven, i < n);
        char k = i < n ? kinds[i] : 'S';
        assert_int_equal(b->mode, k == 'T'   ? TRELLIS_MODE_TCC
                                  : k == 'X' ? TRELLIS_MODE_XA
                                             : TRELLIS_MODE_SAGA);
    }
    return info;
}

/* Nothing confirmed or committed, nothing left in the net state. */
static void assert_rolled_back(const harness_part_state_t *ps)
{
    assert_int_equal(harness_part_count(ps, NULL, "confirm", NULL), 0);
    assert_int_equal(harness_part_count(ps, NULL, "commit", NULL), 0);
    assert_int_equal(ps->n_net, 0);
}

/* Every forward op applied once, every TCC/XA branch confirmed once, no
 * undo: the net state holds each branch exactly once. */
static void assert_committed(const harness_part_state_t *ps, const char *kinds,
                             int step)
{
    size_t n = strlen(kinds), total = n + (step ? 1 : 0);
    assert_int_equal(ps->n_net, total);
    for (size_t i = 0; i < total; i++) {
        char id[24];
        snprintf(id, sizeof id, "%02zu", i + 1);
        char k = i < n ? kinds[i] : 'S';
        const char *fwd = k == 'T' ? "try" : k == 'X' ? "prepare" : "action";
        assert_int_equal(harness_part_count(ps, id, fwd, "applied"), 1);
        assert_true(harness_part_net_has(ps, id));
        if (k == 'S')
            continue;
        const char *c2 = k == 'T' ? "confirm" : "commit";
        assert_int_equal(harness_part_count(ps, id, c2, "confirmed"), 1);
        assert_int_equal(harness_part_count(ps, id, c2, "orphan"), 0);
    }
    assert_int_equal(harness_part_count(ps, NULL, "cancel", NULL), 0);
    assert_int_equal(harness_part_count(ps, NULL, "rollback", NULL), 0);
    assert_int_equal(harness_part_count(ps, NULL, "compensate", NULL), 0);
    for (size_t i = 0; i < ps->n_net; i++) {
        size_t b = (size_t)atoi(ps->net[i].branch) - 1; /* "01" -> 0 */
        assert_int_equal(ps->net[i].confirmed,
                         b < n && kinds[b] != 'S' ? 1 : 0);
    }
}

/* ---- (a) success ----------------------------------------------------- */

static void test_success(void **state)
{
    itest_t *t = itest_start(state, "hy_success", NULL);
    trellis_options_t o = itest_options();
    trellis_gtx_t *g = gtx_begin(t, "hy-ok", &o);
    plan_t p = {"TXS", {"#tcc", "#xa", "#saga"}, "#step"};
    trellis_rc_t rc;
    assert_int_equal(phase1(t, g, &p, 0, &rc), 3);
    assert_int_equal(submit(g), TRELLIS_TRANS_SUCCEEDED);
    trellis_gtx_free(g);

    trellis_trans_info_t *info =
        assert_final(t, "hy-ok", TRELLIS_TRANS_SUCCEEDED, "TXS", 1);
    assert_int_equal(itest_op(&info->branches[0], TRELLIS_OP_CONFIRM)->status,
                     TRELLIS_OP_SUCCEEDED);
    assert_int_equal(itest_op(&info->branches[1], TRELLIS_OP_COMMIT)->status,
                     TRELLIS_OP_SUCCEEDED);
    harness_part_state_t ps;
    char j[256];
    journal(t, "hy-ok", &ps, j, sizeof j);
    assert_true(!strcmp(j, "T0 P1 A2 A3 F0 M1") ||
                !strcmp(j, "T0 P1 A2 A3 M1 F0"));
    static const char *const types[] = {"tcc", "xa", "saga", "saga"};
    static const char *const fwd[] = {"try", "prepare", "action", "action"};
    for (int i = 0; i < 4; i++) {
        const harness_part_call_t *c = &ps.calls[i];
        assert_string_equal(c->trans_type, types[i]);
        assert_string_equal(c->dtm_op, fwd[i]);
    }
    assert_committed(&ps, "TXS", 1);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- (b) rollback started by each kind's failure --------------------- */

/* Run p: the initiator aborts at the first refused call (which must be
 * call `fails`, or the step when fails is -1: the TM rolls back); the
 * journal must be want. */
static void run_rollback(void **state, const char *name, const char *gid,
                         const plan_t *p, int fails, const char *want)
{
    itest_t *t = itest_start(state, name, NULL);
    trellis_options_t o = itest_options();
    trellis_gtx_t *g = gtx_begin(t, gid, &o);
    trellis_rc_t rc;
    size_t stopped = phase1(t, g, p, 0, &rc);
    if (fails >= 0) {
        assert_int_equal(stopped, (size_t)fails);
        assert_int_equal(rc, TRELLIS_ABORTED);
        assert_int_equal(abort_with(g, "a branch refused"),
                         TRELLIS_TRANS_FAILED);
    } else {
        assert_int_equal(stopped, strlen(p->kinds));
        assert_int_equal(submit(g), TRELLIS_TRANS_FAILED);
    }
    trellis_gtx_free(g);

    size_t n_reg = fails >= 0 ? (size_t)fails + 1 : strlen(p->kinds);
    char kinds[4] = {0};
    memcpy(kinds, p->kinds, n_reg);
    trellis_trans_info_t *info =
        assert_final(t, gid, TRELLIS_TRANS_FAILED, kinds, fails < 0);
    harness_part_state_t ps;
    char j[256];
    journal(t, gid, &ps, j, sizeof j);
    assert_string_equal(j, want);
    assert_rolled_back(&ps);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_tcc_try_refused(void **state)
{
    plan_t p = {"XST", {"#xa", "#saga", "fail"}, "#step"};
    run_rollback(state, "hy_try_refused", "hy-try", &p, 2,
                 "P0 A1 T2:fail X2 C1 R0");
}

static void test_xa_prepare_refused(void **state)
{
    plan_t p = {"TSX", {"#tcc", "#saga", "fail"}, "#step"};
    run_rollback(state, "hy_prepare_refused", "hy-prepare", &p, 2,
                 "T0 A1 P2:fail R2 C1 X0");
}

static void test_saga_action_refused(void **state)
{
    plan_t p = {"TXS", {"#tcc", "#xa", "fail"}, "#step"};
    run_rollback(state, "hy_action_refused", "hy-action", &p, 2,
                 "T0 P1 A2:fail C2 R1 X0");
}

static void test_step_refused(void **state)
{
    plan_t p = {"TXS", {"#tcc", "#xa", "#saga"}, "fail"};
    run_rollback(state, "hy_step_refused", "hy-step", &p, -1,
                 "T0 P1 A2 A3:fail C3 C2 R1 X0");
}

/* ---- (c) abort, (d) timeout ------------------------------------------ */

static void test_abort(void **state)
{
    plan_t p = {"TXS", {"#tcc", "#xa", "#saga"}, "#step"};
    itest_t *t = itest_start(state, "hy_abort", NULL);
    trellis_options_t o = itest_options();
    trellis_gtx_t *g = gtx_begin(t, "hy-abort", &o);
    trellis_rc_t rc;
    assert_int_equal(phase1(t, g, &p, 0, &rc), 3);
    assert_int_equal(abort_with(g, "changed my mind"), TRELLIS_TRANS_FAILED);
    trellis_gtx_free(g);

    trellis_trans_info_t *info =
        assert_final(t, "hy-abort", TRELLIS_TRANS_FAILED, "TXS", 0);
    assert_non_null(strstr(info->reason, "changed my mind"));
    harness_part_state_t ps;
    char j[256];
    assert_string_equal(journal(t, "hy-abort", &ps, j, sizeof j),
                        "T0 P1 A2 C2 R1 X0");
    assert_rolled_back(&ps);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static void test_timeout(void **state)
{
    plan_t p = {"TXS", {"#tcc", "#xa", "#saga"}, "#step"};
    itest_t *t = itest_start(state, "hy_timeout", NULL);
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    o.timeout_to_fail_ms = 1500;
    trellis_gtx_t *g = gtx_begin(t, "hy-timeout", &o);
    trellis_rc_t rc;
    assert_int_equal(phase1(t, g, &p, 0, &rc), 3);
    trellis_gtx_free(g); /* the initiator vanishes: no submit, no abort */

    trellis_trans_info_t *info =
        assert_final(t, "hy-timeout", TRELLIS_TRANS_FAILED, "TXS", 0);
    harness_part_state_t ps;
    char j[256];
    assert_string_equal(journal(t, "hy-timeout", &ps, j, sizeof j),
                        "T0 P1 A2 C2 R1 X0");
    assert_rolled_back(&ps);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- (e) trellisd killed -9 ------------------------------------------ */

/* kill -9 and restart trellisd; the gtx keeps borrowing t->client, whose
 * channel reconnects: query until trellisd answers again. */
static void crash_and_restart(itest_t *t, const char *gid)
{
    assert_int_equal(harness_server_crash_restart(t->tm), 0);
    for (int i = 0; i < 200; i++) {
        trellis_trans_info_t *info = NULL;
        if (trellis_query(t->client, gid, &info, NULL, 0) == TRELLIS_OK) {
            trellis_trans_info_free(info);
            return;
        }
        harness_sleep_ms(50);
    }
    fail_msg("trellisd did not answer after the restart");
}

typedef struct {
    itest_t *t;
    const char *gid, *op;
} op_wait_t;

static int op_answered(void *arg)
{
    op_wait_t *w = arg;
    harness_part_state_t ps;
    if (harness_part_state(harness_server_addr(w->t->part), w->gid, &ps))
        return 0;
    int n = harness_part_count(&ps, NULL, w->op, NULL);
    harness_part_state_free(&ps);
    return n > 0;
}

/* The transaction ended SUCCEEDED with every effect exactly once. */
static void assert_success_once(itest_t *t, const char *gid)
{
    trellis_trans_info_t *info =
        assert_final(t, gid, TRELLIS_TRANS_SUCCEEDED, "TXS", 1);
    harness_part_state_t ps;
    char j[512];
    journal(t, gid, &ps, j, sizeof j);
    assert_committed(&ps, "TXS", 1);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
}

/* In phase 1, after two forward ops: the restarted TM still has the
 * begun transaction; the initiator continues and submits. */
static void test_crash_phase1(void **state)
{
    plan_t p = {"TXS", {"#tcc", "#xa", "#saga"}, "#step"};
    itest_t *t = itest_start(state, "hy_crash_phase1", NULL);
    trellis_options_t o = itest_options();
    o.timeout_to_fail_ms = 30000;
    trellis_gtx_t *g = gtx_begin(t, "hy-crash1", &o);
    char err[256];
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            call_kind(t, g, p.kinds[i], p.scripts[i], err, sizeof err),
            TRELLIS_OK);
    crash_and_restart(t, "hy-crash1");
    trellis_trans_info_t *info = itest_query(t, "hy-crash1");
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_int_equal(info->n_branches, 2);
    trellis_trans_info_free(info);
    trellis_rc_t rc;
    assert_int_equal(phase1(t, g, &p, 2, &rc), 3);
    assert_int_equal(submit(g), TRELLIS_TRANS_SUCCEEDED);
    trellis_gtx_free(g);
    assert_success_once(t, "hy-crash1");
    itest_pass(state);
}

/* Right after submit was acknowledged (SUBMITTED, durable), before any
 * phase-2 op: the step's action and the phase-2 ops are unavailable a few
 * times, so the kill lands there. */
static void test_crash_at_decision(void **state)
{
    plan_t p = {
        "TXS", {"confirm=unavail:3", "commit=unavail:3", "#saga"}, "unavail:3"};
    itest_t *t = itest_start(state, "hy_crash_decision", NULL);
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_gtx_t *g = gtx_begin(t, "hy-crash2", &o);
    trellis_rc_t rc;
    assert_int_equal(phase1(t, g, &p, 0, &rc), 3);
    assert_int_equal(submit(g), TRELLIS_TRANS_SUBMITTED);
    trellis_gtx_free(g);
    harness_part_state_t ps; /* the kill lands before phase 2 */
    itest_part_state(t, "hy-crash2", &ps);
    assert_int_equal(harness_part_count(&ps, NULL, "confirm", NULL), 0);
    assert_int_equal(harness_part_count(&ps, NULL, "commit", NULL), 0);
    harness_part_state_free(&ps);
    crash_and_restart(t, "hy-crash2");
    assert_success_once(t, "hy-crash2");
    itest_pass(state);
}

/* In phase 2, after the first commit-side op answered. */
static void test_crash_phase2(void **state)
{
    plan_t p = {
        "TXS", {"confirm=unavail:3", "commit=unavail:3", "#saga"}, "#step"};
    itest_t *t = itest_start(state, "hy_crash_phase2", NULL);
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_gtx_t *g = gtx_begin(t, "hy-crash3", &o);
    trellis_rc_t rc;
    assert_int_equal(phase1(t, g, &p, 0, &rc), 3);
    assert_int_equal(submit(g), TRELLIS_TRANS_SUBMITTED);
    trellis_gtx_free(g);
    op_wait_t w = {t, "hy-crash3", "confirm"};
    assert_true(harness_poll(op_answered, &w, ITEST_FINAL_TIMEOUT_MS, 5));
    crash_and_restart(t, "hy-crash3");
    assert_success_once(t, "hy-crash3");
    itest_pass(state);
}

/* ---- misuse ---------------------------------------------------------- */

/* Malformed targets are refused before anything is sent. */
static void test_bad_targets(void **state)
{
    itest_t *t = itest_start(state, "hy_bad_targets", NULL);
    trellis_options_t o = itest_options();
    trellis_gtx_t *g = gtx_begin(t, "hy-bad", &o);
    char ok[128], err[256];
    target(t, "Action", ok, sizeof ok);
    assert_int_equal(trellis_gtx_call_tcc(g, ok, "nope", ok, "", 0, NULL, NULL,
                                          err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(trellis_gtx_call_xa(g, ok, ok, NULL, "", 0, NULL, NULL,
                                         err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(trellis_gtx_call_saga(g, "x:1/a", ok, "", 0, NULL, NULL,
                                           err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(trellis_gtx_add_step(g, ok, "bad", "", 0, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    assert_int_equal(trellis_gtx_add_step(NULL, ok, ok, "", 0, err, sizeof err),
                     TRELLIS_INVALID_ARGUMENT);
    trellis_trans_info_t *info = itest_query(t, "hy-bad");
    assert_int_equal(info->n_branches, 0);
    trellis_trans_info_free(info);
    assert_int_equal(abort_with(g, "done"), TRELLIS_TRANS_FAILED);
    trellis_gtx_free(g);
    harness_part_state_t ps;
    itest_part_state(t, "hy-bad", &ps);
    assert_int_equal(ps.n_calls, 0);
    harness_part_state_free(&ps);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_success, itest_teardown),
        cmocka_unit_test_teardown(test_tcc_try_refused, itest_teardown),
        cmocka_unit_test_teardown(test_xa_prepare_refused, itest_teardown),
        cmocka_unit_test_teardown(test_saga_action_refused, itest_teardown),
        cmocka_unit_test_teardown(test_step_refused, itest_teardown),
        cmocka_unit_test_teardown(test_abort, itest_teardown),
        cmocka_unit_test_teardown(test_timeout, itest_teardown),
        cmocka_unit_test_teardown(test_crash_phase1, itest_teardown),
        cmocka_unit_test_teardown(test_crash_at_decision, itest_teardown),
        cmocka_unit_test_teardown(test_crash_phase2, itest_teardown),
        cmocka_unit_test_teardown(test_bad_targets, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
