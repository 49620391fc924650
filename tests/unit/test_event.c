/*
 * Unit tests of completion listeners (tm_kind_event.c) in the pure parts:
 * tm_request appends one event branch per listener outside the chain of
 * registered branches and steps; tm_validate admits listeners through
 * the allowlist and bounds their number; tm_plan runs their notify last,
 * on either side, knows the outcome before they are told and makes the
 * transaction final only after; tm_event packs the same CompletionEvent
 * from the same model. Branch listeners (tm_kind_branch_event.c):
 * tm_request appends one event per (listener, branch) where the branch is
 * made (Submit's steps, RegisterBranch, a message's deliveries), outside
 * the chain; tm_validate bounds both kinds of listener together; tm_plan
 * makes an event ready once the branch it reports is settled, on commit
 * and on rollback, never delaying the outcome and without deadlock
 * against hooks or completion listeners; tm_event packs the same
 * BranchEvent from the same model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tm_event.h"
#include "tm_plan.h"
#include "tm_request.h"
#include "tm_validate.h"

static const tm_retry_policy_t policy = {100, 1000, 0};
static tm_run_t run;

static tm_run_t *fit(const tm_trans_t *tx)
{
    assert_int_equal(tm_run_fit(&run, tx->n_branches), 0);
    return &run;
}

static int clear_run(void **state)
{
    (void)state;
    tm_run_clear(&run);
    return 0;
}

static char *listener_targets[] = {"h:1/p.L/Notify", "h:2/p.L/Notify"};

static Trellis__V1__TransOptions listening(size_t n)
{
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.n_listeners = n;
    o.listeners = listener_targets;
    return o;
}

static char *targets[] = {"h:1/p.B/Notify", "h:2/p.B/Notify"};

/* Options with n branch listeners and n_listeners completion listeners. */
static Trellis__V1__TransOptions options(size_t n, size_t n_listeners)
{
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.n_branch_listeners = n;
    o.branch_listeners = targets;
    o.n_listeners = n_listeners;
    o.listeners = listener_targets;
    return o;
}

/* A new transaction whose options name n branch listeners and
 * n_listeners listeners (kept in tx->opts, as trellisd keeps them). */
static tm_trans_t *tx_with(const char *gid, tm_tx_status_t status, size_t n,
                           size_t n_listeners)
{
    tm_trans_t *tx = tm_trans_new(gid, status, 1000);
    Trellis__V1__TransOptions o = options(n, n_listeners);
    assert_int_equal(tm_options_from_proto(&tx->opts, &o), 0);
    return tx;
}

/* A submitted saga of two chained steps with compensates, n branch
 * listeners and n_listeners listeners, built as trellisd builds it:
 * options, steps (with their events), listeners. */
static tm_trans_t *saga_with_branch_listeners(size_t n, size_t n_listeners)
{
    tm_trans_t *tx = tx_with("g1", TM_TX_SUBMITTED, n, n_listeners);
    Trellis__V1__TransOptions o = options(n, n_listeners);
    Trellis__V1__SagaStep st[2] = {TRELLIS__V1__SAGA_STEP__INIT,
                                   TRELLIS__V1__SAGA_STEP__INIT};
    Trellis__V1__SagaStep *steps[2] = {&st[0], &st[1]};
    for (int i = 0; i < 2; i++) {
        st[i].action = "h:1/p.S/A";
        st[i].compensate = "h:1/p.S/C";
    }
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = "g1";
    r.n_steps = 2;
    r.steps = steps;
    tm_limits_t lim;
    tm_limits_default(&lim);
    char err[256];
    assert_int_equal(tm_request_add_steps(tx, &r, &lim, err, sizeof(err)), 0);
    assert_int_equal(tm_request_add_listeners(tx, &o), 0);
    return tx;
}

/* A submitted saga of two chained steps with compensates, and n
 * listeners. */
static tm_trans_t *saga_with_listeners(size_t n)
{
    return saga_with_branch_listeners(0, n);
}

static size_t ready(const tm_trans_t *tx, tm_op_ref_t *out)
{
    return tm_plan_ready(tx, fit(tx), out, 32);
}

static void answer(tm_trans_t *tx, size_t b, tm_slot_t s, tm_result_t r,
                   int64_t now)
{
    tm_plan_apply_result(tx, fit(tx), b, s, r, "msg", &policy, now);
}

/* Exactly one op is ready, branch b's in slot s. */
static void assert_only_ready(const tm_trans_t *tx, uint32_t b, tm_slot_t s)
{
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), 1);
    assert_int_equal(r[0].branch, b);
    assert_int_equal(r[0].slot, s);
}

static void test_listeners_appended_as_event_branches(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_listeners(2);
    assert_int_equal(tx->n_branches, 4);
    for (size_t i = 2; i < 4; i++) {
        const tm_branch_t *b = &tx->branches[i];
        assert_int_equal(b->mode, TM_MODE_EVENT);
        assert_string_equal(b->branch_id, i == 2 ? "ev1" : "ev2");
        assert_int_equal(b->n_deps, 0);
        assert_int_equal(b->initiator_driven, 0);
        assert_int_equal(b->ops[TM_SLOT_FORWARD].kind, TM_KIND_NONE);
        assert_int_equal(b->ops[TM_SLOT_COMMIT].kind, TM_KIND_NOTIFY);
        assert_int_equal(b->ops[TM_SLOT_ROLLBACK].kind, TM_KIND_NOTIFY);
        assert_string_equal(b->ops[TM_SLOT_COMMIT].target,
                            listener_targets[i - 2]);
    }
    tm_trans_free(tx);
}

/* RegisterBranch of a TCC branch id with a confirm, as trellisd applies
 * it. */
static void register_tcc(tm_trans_t *tx, const char *id)
{
    Trellis__V1__BranchOp op = TRELLIS__V1__BRANCH_OP__INIT;
    op.op = TRELLIS__V1__OP_KIND__OP_CONFIRM;
    op.target = "h:1/p.T/Confirm";
    Trellis__V1__BranchOp *ops[1] = {&op};
    Trellis__V1__RegisterBranchRequest rb =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    rb.gid = tx->gid;
    rb.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    rb.n_ops = 1;
    rb.ops = ops;
    rb.branch_id = (char *)id;
    assert_int_equal(tm_request_add_registered(tx, &rb), 0);
}

/* Submit with one saga step. */
static void submit_one_step(tm_trans_t *tx)
{
    Trellis__V1__SagaStep st = TRELLIS__V1__SAGA_STEP__INIT;
    st.action = "h:1/p.S/A";
    Trellis__V1__SagaStep *steps[1] = {&st};
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.n_steps = 1;
    r.steps = steps;
    tm_limits_t lim;
    tm_limits_default(&lim);
    char err[256];
    assert_int_equal(tm_request_add_steps(tx, &r, &lim, err, sizeof(err)), 0);
}

/* Begin with a listener, then RegisterBranch and Submit's steps: the
 * chain goes from registered branch to step past the listener, and the
 * steps are numbered as if it were not there. */
static void test_registered_chain_skips_listeners(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g2", TM_TX_PREPARED, 1000);
    Trellis__V1__TransOptions o = listening(1);
    assert_int_equal(tm_request_add_listeners(tx, &o), 0);
    register_tcc(tx, "b1");
    assert_int_equal(tx->branches[1].n_deps, 0); /* not after ev1 */
    register_tcc(tx, "b2");
    assert_int_equal(tx->branches[2].n_deps, 1);
    assert_int_equal(tx->branches[2].deps[0], 1);
    submit_one_step(tx);
    assert_string_equal(tx->branches[3].branch_id, "03");
    assert_int_equal(tx->branches[3].n_deps, 1);
    assert_int_equal(tx->branches[3].deps[0], 2);
    tm_trans_free(tx);
}

static void test_listeners_validated(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    char err[512];
    assert_int_equal(tm_allow_parse(&l.allow, "h:*", err, sizeof(err)), 0);
    Trellis__V1__TransOptions o = listening(2);
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    char *denied[] = {"other:9/p.L/Notify"};
    o.listeners = denied;
    o.n_listeners = 1;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), TM_DENIED);
    assert_non_null(strstr(err, "options.listeners[0]"));
    char *bad[] = {"not a target"};
    o.listeners = bad;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), TM_INVALID);
    char *many[TM_LISTENERS_MAX + 1];
    for (size_t i = 0; i <= TM_LISTENERS_MAX; i++)
        many[i] = listener_targets[0];
    o.listeners = many;
    o.n_listeners = TM_LISTENERS_MAX + 1;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), TM_INVALID);
    assert_non_null(strstr(err, "at most 8"));
    o.n_listeners = TM_LISTENERS_MAX;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
}

/* Success: the listeners' commit-side notify goes after both steps, the
 * outcome is known before they are told, final only after both. */
static void test_commit_notifies_last_outcome_known_first(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_listeners(2);
    tm_op_ref_t r[32];
    assert_only_ready(tx, 0, TM_SLOT_FORWARD);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    assert_only_ready(tx, 1, TM_SLOT_FORWARD);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), 0);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_OK, 3000);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), TM_TX_SUCCEEDED);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    assert_int_equal(ready(tx, r), 2); /* both listeners, together */
    assert_int_equal(r[0].branch, 2);
    assert_int_equal(r[0].slot, TM_SLOT_COMMIT);
    assert_int_equal(r[1].branch, 3);
    answer(tx, 2, TM_SLOT_COMMIT, TM_RESULT_OK, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    answer(tx, 3, TM_SLOT_COMMIT, TM_RESULT_UNKNOWN, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0); /* retried */
    answer(tx, 3, TM_SLOT_COMMIT, TM_RESULT_OK, 5000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_SUCCEEDED);
    tm_trans_free(tx);
}

/* Failure: every compensate first, then the rollback-side notify. */
static void test_rollback_notifies_after_every_compensate(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_listeners(1);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE, 2500);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_only_ready(tx, 1, TM_SLOT_ROLLBACK);
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK, 3000);
    assert_only_ready(tx, 0, TM_SLOT_ROLLBACK);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), 0);
    answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_OK, 3500);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), TM_TX_FAILED);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    assert_only_ready(tx, 2, TM_SLOT_ROLLBACK);
    answer(tx, 2, TM_SLOT_ROLLBACK, TM_RESULT_OK, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_trans_free(tx);
}

/* A workflow's hooks (runs_last) and a listener: the hooks first, the
 * listener after them; neither waits for the other forever. */
static void test_hooks_then_listener(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g3", TM_TX_SUBMITTED, 1000);
    tm_branch_t *h = tm_trans_add_branch(tx);
    h->branch_id = tm_strdup("hooks");
    h->mode = TM_MODE_HOOKS;
    h->ops[TM_SLOT_COMMIT].kind = TM_KIND_COMMIT;
    h->ops[TM_SLOT_COMMIT].target = tm_strdup("h:1/p.W/Resume");
    h->ops[TM_SLOT_ROLLBACK].kind = TM_KIND_ROLLBACK;
    h->ops[TM_SLOT_ROLLBACK].target = tm_strdup("h:1/p.W/Resume");
    h->ops[TM_SLOT_COMMIT].status = TM_OP_PENDING;
    h->ops[TM_SLOT_ROLLBACK].status = TM_OP_PENDING;
    Trellis__V1__TransOptions o = listening(1);
    assert_int_equal(tm_request_add_listeners(tx, &o), 0);
    assert_only_ready(tx, 0, TM_SLOT_COMMIT);
    answer(tx, 0, TM_SLOT_COMMIT, TM_RESULT_OK, 2000);
    assert_only_ready(tx, 1, TM_SLOT_COMMIT);
    tm_trans_free(tx);
}

/* The event's bytes depend only on the durable model: a listener's own
 * tries do not move finished_ms. */
static void test_event_bytes_stable(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_listeners(1);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_OK, 3000);
    assert_int_equal(tm_event_finished_ms(tx), 3000);
    size_t n1, n2;
    uint8_t *a = tm_event_pack(tx, 2, TM_SLOT_COMMIT, &n1);
    answer(tx, 2, TM_SLOT_COMMIT, TM_RESULT_UNKNOWN, 9000);
    uint8_t *b = tm_event_pack(tx, 2, TM_SLOT_COMMIT, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    Trellis__V1__CompletionEvent *ev =
        trellis__v1__completion_event__unpack(NULL, n1, a);
    assert_non_null(ev);
    assert_string_equal(ev->gid, "g1");
    assert_string_equal(ev->branch_id, "ev1");
    assert_int_equal(ev->status, TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED);
    assert_int_equal(ev->created_ms, 1000);
    assert_int_equal(ev->finished_ms, 3000);
    trellis__v1__completion_event__free_unpacked(ev, NULL);
    free(a);
    free(b);
    tm_trans_free(tx);
}

/* A batch holds each event's own bytes, in order, and parses as
 * CompletionEventBatch: what a batching listener reads. */
static void test_event_batch_holds_each_event(void **state)
{
    (void)state;
    tm_trans_t *ok = saga_with_listeners(1), *bad = saga_with_listeners(1);
    snprintf(bad->gid, sizeof(bad->gid), "g2");
    tm_set_string(&bad->reason, "step 01 failed");
    const uint8_t *ev[2];
    size_t lens[2], len;
    uint8_t *a = tm_event_pack(ok, 2, TM_SLOT_COMMIT, &lens[0]);
    uint8_t *b = tm_event_pack(bad, 2, TM_SLOT_ROLLBACK, &lens[1]);
    ev[0] = a;
    ev[1] = b;
    uint8_t *batch = tm_event_batch_pack(ev, lens, 2, &len);
    assert_non_null(batch);
    Trellis__V1__CompletionEventBatch *m =
        trellis__v1__completion_event_batch__unpack(NULL, len, batch);
    assert_non_null(m);
    assert_int_equal(m->n_events, 2);
    assert_string_equal(m->events[0]->gid, "g1");
    assert_int_equal(m->events[0]->status,
                     TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED);
    assert_string_equal(m->events[1]->gid, "g2");
    assert_string_equal(m->events[1]->branch_id, "ev1");
    assert_string_equal(m->events[1]->reason, "step 01 failed");
    assert_int_equal(m->events[1]->status,
                     TRELLIS__V1__TRANS_STATUS__TRANS_FAILED);
    trellis__v1__completion_event_batch__free_unpacked(m, NULL);
    free(batch);
    free(a);
    free(b);
    tm_trans_free(ok);
    tm_trans_free(bad);
}

/* ---- branch listeners (tm_kind_branch_event.c) -------------------- */

/* Exactly these n branches have an op ready, in slot s. */
static void assert_ready(const tm_trans_t *tx, tm_slot_t s, size_t n,
                         const uint32_t *want)
{
    tm_op_ref_t r[32];
    assert_int_equal(ready(tx, r), n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r[i].branch, want[i]);
        assert_int_equal(r[i].slot, s);
    }
}

/* The BranchEvent event branch e is sent in slot s; the caller frees. */
static Trellis__V1__BranchEvent *branch_event_of(const tm_trans_t *tx, size_t e,
                                                 tm_slot_t s)
{
    size_t n;
    uint8_t *buf = tm_event_branch_pack(tx, e, s, &n);
    assert_non_null(buf);
    Trellis__V1__BranchEvent *m =
        trellis__v1__branch_event__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(m);
    return m;
}

static void test_events_appended_per_listener_and_step(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_branch_listeners(2, 1);
    static const char *ids[] = {"01",      "02",      "ev-01-1", "ev-01-2",
                                "ev-02-1", "ev-02-2", "ev1"};
    static const uint32_t reports[] = {0, 0, 0, 0, 1, 1};
    assert_int_equal(tx->n_branches, 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(tx->branches[i].branch_id, ids[i]);
    for (size_t i = 2; i < 6; i++) {
        const tm_branch_t *b = &tx->branches[i];
        assert_int_equal(b->mode, TM_MODE_BRANCH_EVENT);
        assert_int_equal(b->n_deps, 1);
        assert_int_equal(b->deps[0], reports[i]);
        assert_int_equal(b->ops[TM_SLOT_FORWARD].kind, TM_KIND_NONE);
        assert_int_equal(b->ops[TM_SLOT_COMMIT].kind, TM_KIND_NOTIFY);
        assert_string_equal(b->ops[TM_SLOT_ROLLBACK].target, targets[i % 2]);
    }
    assert_int_equal(tx->branches[1].deps[0], 0); /* the chain is intact */
    tm_trans_free(tx);
}

/* Begin with a branch listener: each registration gets its event at
 * once, the next registration depends on the registered branch, not the
 * event, and Submit's steps are numbered past the events. */
static void test_registered_gets_its_event(void **state)
{
    (void)state;
    tm_trans_t *tx = tx_with("g2", TM_TX_PREPARED, 1, 0);
    register_tcc(tx, "b1");
    register_tcc(tx, "b2");
    assert_int_equal(tx->n_branches, 4);
    assert_string_equal(tx->branches[1].branch_id, "ev-b1-1");
    assert_int_equal(tx->branches[1].deps[0], 0);
    assert_int_equal(tx->branches[2].deps[0], 0); /* b2 after b1 */
    assert_string_equal(tx->branches[3].branch_id, "ev-b2-1");
    submit_one_step(tx);
    assert_string_equal(tx->branches[4].branch_id, "03");
    assert_int_equal(tx->branches[4].deps[0], 2);
    assert_string_equal(tx->branches[5].branch_id, "ev-03-1");
    tm_trans_free(tx);
}

static void test_branch_listeners_validated(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    char err[512];
    assert_int_equal(tm_allow_parse(&l.allow, "h:*", err, sizeof(err)), 0);
    Trellis__V1__TransOptions o = options(2, 1);
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    char *denied[] = {"other:9/p.B/Notify"};
    o.branch_listeners = denied;
    o.n_branch_listeners = 1;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), TM_DENIED);
    assert_non_null(strstr(err, "options.branch_listeners[0]"));
    char *many[TM_LISTENERS_MAX];
    for (size_t i = 0; i < TM_LISTENERS_MAX; i++)
        many[i] = targets[0];
    o.branch_listeners = many;
    o.n_branch_listeners = TM_LISTENERS_MAX; /* + 1 listener: 9 */
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), TM_INVALID);
    assert_non_null(strstr(err, "at most 8 allowed together"));
    o.n_listeners = 0;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    o.listener_batch = TM_LISTENER_BATCH_MAX;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), 0);
    o.listener_batch = TM_LISTENER_BATCH_MAX + 1;
    assert_int_equal(tm_validate_options(&o, &l, err, sizeof(err)), TM_INVALID);
    assert_non_null(strstr(err, "options.listener_batch is 257"));
    Trellis__V1__RegisterBranchRequest rb =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    rb.gid = "g";
    rb.branch_id = "ev-01-1";
    rb.mode = TRELLIS__V1__BRANCH_MODE__MODE_SAGA;
    assert_int_equal(tm_validate_register(&rb, &l, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "\"ev-\""));
}

/* Commit: no event before the commit decision (a saga step could still
 * be compensated); then each step's event at once, with the completion
 * listener. The outcome is known before any is told, final after all. */
static void test_commit_events_after_decision(void **state)
{
    (void)state;
    tm_trans_t *tx =
        saga_with_branch_listeners(1, 1); /* 01 02 ev-01-1 ev-02-1 ev1 */
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    assert_ready(tx, TM_SLOT_FORWARD, 1, (const uint32_t[]){1});
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_OK, 3000);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), TM_TX_SUCCEEDED);
    assert_ready(tx, TM_SLOT_COMMIT, 3, (const uint32_t[]){2, 3, 4});
    answer(tx, 2, TM_SLOT_COMMIT, TM_RESULT_OK, 4000);
    answer(tx, 4, TM_SLOT_COMMIT, TM_RESULT_OK, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0);
    answer(tx, 3, TM_SLOT_COMMIT, TM_RESULT_UNKNOWN, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), 0); /* retried */
    answer(tx, 3, TM_SLOT_COMMIT, TM_RESULT_OK, 5000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_SUCCEEDED);
    Trellis__V1__BranchEvent *m = branch_event_of(tx, 3, TM_SLOT_COMMIT);
    assert_string_equal(m->gid, "g1");
    assert_string_equal(m->branch_id, "02");
    assert_int_equal(m->mode, TRELLIS__V1__BRANCH_MODE__MODE_SAGA);
    assert_int_equal(m->forward_status, TRELLIS__V1__OP_STATUS__OP_SUCCEEDED);
    assert_int_equal(m->phase2_op, TRELLIS__V1__OP_KIND__OP_UNSPECIFIED);
    assert_int_equal(m->phase2_status,
                     TRELLIS__V1__OP_STATUS__OP_STATUS_UNSPECIFIED);
    assert_int_equal(m->finished_ms, 3000);
    assert_true(m->committed);
    trellis__v1__branch_event__free_unpacked(m, NULL);
    tm_trans_free(tx);
}

/* Rollback: each step's event once its compensate is done (02 first, as
 * compensation walks back), the events never holding a compensate back;
 * a step that never ran is reported SKIPPED at once. */
static void test_rollback_events_after_each_compensate(void **state)
{
    (void)state;
    tm_trans_t *tx =
        saga_with_branch_listeners(1, 1); /* 01 02 ev-01-1 ev-02-1 ev1 */
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE, 2500);
    assert_int_equal(tx->status, TM_TX_ABORTING);
    assert_ready(tx, TM_SLOT_ROLLBACK, 1, (const uint32_t[]){1});
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK, 3000);
    assert_ready(tx, TM_SLOT_ROLLBACK, 2, (const uint32_t[]){0, 3});
    answer(tx, 3, TM_SLOT_ROLLBACK, TM_RESULT_OK, 3100);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), 0);
    answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_OK, 3500);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), TM_TX_FAILED);
    assert_ready(tx, TM_SLOT_ROLLBACK, 2, (const uint32_t[]){2, 4});
    Trellis__V1__BranchEvent *m = branch_event_of(tx, 3, TM_SLOT_ROLLBACK);
    assert_string_equal(m->branch_id, "02");
    assert_int_equal(m->forward_status, TRELLIS__V1__OP_STATUS__OP_FAILED);
    assert_int_equal(m->phase2_op, TRELLIS__V1__OP_KIND__OP_COMPENSATE);
    assert_int_equal(m->phase2_status, TRELLIS__V1__OP_STATUS__OP_SUCCEEDED);
    assert_string_equal(m->last_error, "business failure: msg");
    assert_int_equal(m->finished_ms, 3000);
    assert_false(m->committed);
    trellis__v1__branch_event__free_unpacked(m, NULL);
    answer(tx, 2, TM_SLOT_ROLLBACK, TM_RESULT_OK, 4000);
    answer(tx, 4, TM_SLOT_ROLLBACK, TM_RESULT_OK, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_FAILED);
    tm_trans_free(tx);
}

/* The first step fails: the second never runs, and its event goes at
 * once, SKIPPED on both ops. */
static void test_never_run_reported_skipped(void **state)
{
    (void)state;
    tm_trans_t *tx =
        saga_with_branch_listeners(1, 0); /* 01 02 ev-01-1 ev-02-1 */
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_FAILURE, 2000);
    assert_ready(tx, TM_SLOT_ROLLBACK, 2, (const uint32_t[]){0, 3});
    Trellis__V1__BranchEvent *m = branch_event_of(tx, 3, TM_SLOT_ROLLBACK);
    assert_int_equal(m->forward_status, TRELLIS__V1__OP_STATUS__OP_SKIPPED);
    assert_int_equal(m->phase2_status, TRELLIS__V1__OP_STATUS__OP_SKIPPED);
    assert_int_equal(m->finished_ms, 1000); /* created_ms: nothing ran */
    trellis__v1__branch_event__free_unpacked(m, NULL);
    tm_trans_free(tx);
}

/* A committing transaction with a confirm, hooks (runs_last), a
 * completion listener and a branch listener: the confirm's event after
 * the confirm, the hooks after the confirm (not after its event), the
 * hooks' event and the listener after the hooks; it ends. */
static void test_hooks_listener_branch_listener_no_deadlock(void **state)
{
    (void)state;
    tm_trans_t *tx = tx_with("g3", TM_TX_SUBMITTED, 1, 1);
    Trellis__V1__TransOptions o = options(1, 1);
    tm_branch_t *c = tm_trans_add_branch(tx);
    c->branch_id = tm_strdup("c");
    c->mode = TM_MODE_TCC;
    c->initiator_driven = 1;
    c->ops[TM_SLOT_FORWARD] =
        (tm_op_t){.kind = TM_KIND_TRY, .status = TM_OP_SUCCEEDED};
    c->ops[TM_SLOT_COMMIT] = (tm_op_t){.kind = TM_KIND_CONFIRM,
                                       .status = TM_OP_PENDING,
                                       .target = tm_strdup("h:1/p.T/C")};
    tm_branch_t *h = tm_trans_add_branch(tx);
    h->branch_id = tm_strdup("hooks");
    h->mode = TM_MODE_HOOKS;
    h->ops[TM_SLOT_COMMIT] = (tm_op_t){.kind = TM_KIND_COMMIT,
                                       .status = TM_OP_PENDING,
                                       .target = tm_strdup("h:1/p.W/R")};
    assert_int_equal(tm_request_add_branch_events(tx, 0), 0);
    assert_int_equal(tm_request_add_listeners(tx, &o), 0);
    /* c hooks ev-c-1 ev-hooks-1 ev1 */
    assert_int_equal(tx->n_branches, 5);
    assert_ready(tx, TM_SLOT_COMMIT, 1, (const uint32_t[]){0});
    answer(tx, 0, TM_SLOT_COMMIT, TM_RESULT_OK, 2000);
    assert_ready(tx, TM_SLOT_COMMIT, 2, (const uint32_t[]){1, 2});
    answer(tx, 1, TM_SLOT_COMMIT, TM_RESULT_OK, 3000);
    assert_int_equal(tm_plan_outcome_known(tx, fit(tx)), TM_TX_SUCCEEDED);
    assert_ready(tx, TM_SLOT_COMMIT, 3, (const uint32_t[]){2, 3, 4});
    for (uint32_t b = 2; b < 5; b++)
        answer(tx, b, TM_SLOT_COMMIT, TM_RESULT_OK, 4000);
    assert_int_equal(tm_plan_outcome(tx, fit(tx)), TM_TX_SUCCEEDED);
    Trellis__V1__BranchEvent *m = branch_event_of(tx, 2, TM_SLOT_COMMIT);
    assert_int_equal(m->phase2_op, TRELLIS__V1__OP_KIND__OP_CONFIRM);
    assert_int_equal(m->phase2_status, TRELLIS__V1__OP_STATUS__OP_SUCCEEDED);
    assert_int_equal(m->finished_ms, 2000);
    trellis__v1__branch_event__free_unpacked(m, NULL);
    tm_trans_free(tx);
}

/* The bytes depend only on the durable model: the event's own tries, and
 * later work on other branches, do not change them. */
static void test_branch_event_bytes_stable(void **state)
{
    (void)state;
    tm_trans_t *tx = saga_with_branch_listeners(1, 0);
    answer(tx, 0, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_FAILURE, 2500);
    answer(tx, 1, TM_SLOT_ROLLBACK, TM_RESULT_OK, 3000);
    size_t n1, n2;
    uint8_t *a = tm_event_branch_pack(tx, 3, TM_SLOT_ROLLBACK, &n1);
    answer(tx, 3, TM_SLOT_ROLLBACK, TM_RESULT_UNKNOWN, 9000);
    answer(tx, 0, TM_SLOT_ROLLBACK, TM_RESULT_OK, 9500);
    uint8_t *b = tm_event_branch_pack(tx, 3, TM_SLOT_ROLLBACK, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
    tm_trans_free(tx);
}

/* A submitted message of two chained deliveries: each delivery's event
 * goes as soon as it is delivered (it is never undone), not after the
 * last one; the head (the back-check) gets none. */
static void test_message_delivery_event_at_once(void **state)
{
    (void)state;
    Trellis__V1__MessageStep st[2] = {TRELLIS__V1__MESSAGE_STEP__INIT,
                                      TRELLIS__V1__MESSAGE_STEP__INIT};
    Trellis__V1__MessageStep *steps[2] = {&st[0], &st[1]};
    st[0].target = "h:1/a.A/Go";
    st[1].target = "h:1/b.B/Go";
    Trellis__V1__PrepareMessageRequest r =
        TRELLIS__V1__PREPARE_MESSAGE_REQUEST__INIT;
    r.gid = "m1";
    r.n_steps = 2;
    r.steps = steps;
    tm_limits_t lim;
    tm_limits_default(&lim);
    tm_step_targets_t subs[2] = {{0}};
    char err[256];
    tm_trans_t *tx = tx_with("m1", TM_TX_SUBMITTED, 1, 0);
    assert_int_equal(
        tm_request_add_message(tx, &r, subs, &lim, err, sizeof(err)), 0);
    /* 00 01 02 ev-01-1 ev-02-1 */
    assert_int_equal(tx->n_branches, 5);
    assert_string_equal(tx->branches[3].branch_id, "ev-01-1");
    assert_string_equal(tx->branches[4].branch_id, "ev-02-1");
    tx->branches[0].ops[TM_SLOT_FORWARD].status = TM_OP_SUCCEEDED;
    assert_ready(tx, TM_SLOT_FORWARD, 1, (const uint32_t[]){1});
    answer(tx, 1, TM_SLOT_FORWARD, TM_RESULT_OK, 2000);
    tm_op_ref_t got[32];
    assert_int_equal(ready(tx, got), 2);
    assert_int_equal(got[0].branch, 2);
    assert_int_equal(got[0].slot, TM_SLOT_FORWARD);
    assert_int_equal(got[1].branch, 3);
    assert_int_equal(got[1].slot, TM_SLOT_COMMIT);
    tm_trans_free(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_listeners_appended_as_event_branches, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_registered_chain_skips_listeners,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_listeners_validated, clear_run,
                                        clear_run),
        cmocka_unit_test_setup_teardown(
            test_commit_notifies_last_outcome_known_first, clear_run,
            clear_run),
        cmocka_unit_test_setup_teardown(
            test_rollback_notifies_after_every_compensate, clear_run,
            clear_run),
        cmocka_unit_test_setup_teardown(test_hooks_then_listener, clear_run,
                                        clear_run),
        cmocka_unit_test_setup_teardown(test_event_bytes_stable, clear_run,
                                        clear_run),
        cmocka_unit_test_setup_teardown(test_event_batch_holds_each_event,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_events_appended_per_listener_and_step, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_registered_gets_its_event,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_branch_listeners_validated,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_commit_events_after_decision,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_rollback_events_after_each_compensate, clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_never_run_reported_skipped,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(
            test_hooks_listener_branch_listener_no_deadlock, clear_run,
            clear_run),
        cmocka_unit_test_setup_teardown(test_branch_event_bytes_stable,
                                        clear_run, clear_run),
        cmocka_unit_test_setup_teardown(test_message_delivery_event_at_once,
                                        clear_run, clear_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
