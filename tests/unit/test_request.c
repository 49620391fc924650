/*
 * Unit tests of tm_request: how Submit's steps and RegisterBranch become
 * branches (ids, dependencies, ops, the pivot) and what counts as the
 * same Submit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tm_request.h"

static Trellis__V1__SagaStep steps[4];
static Trellis__V1__SagaStep *step_ptrs[4];

static Trellis__V1__SubmitRequest submit_of(size_t n, int concurrent)
{
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    for (size_t i = 0; i < n; i++) {
        Trellis__V1__SagaStep s = TRELLIS__V1__SAGA_STEP__INIT;
        s.action = "h:1/p.S/A";
        s.compensate = i == 1 ? "" : "h:1/p.S/C";
        steps[i] = s;
        step_ptrs[i] = &steps[i];
    }
    r.gid = "g";
    r.steps = step_ptrs;
    r.n_steps = n;
    r.concurrent = concurrent;
    return r;
}

static void assert_deps(const tm_branch_t *b, size_t n, const uint32_t *want)
{
    assert_int_equal(b->n_deps, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b->deps[i], want[i]);
}

static void test_steps_form_a_chain_by_default(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    char err[256];
    tm_trans_t *tx = tm_trans_new("g", TM_TX_SUBMITTED, 0);
    Trellis__V1__SubmitRequest r = submit_of(3, 0);
    assert_int_equal(tm_request_add_steps(tx, &r, &l, err, sizeof err), 0);
    assert_int_equal(tx->n_branches, 3);
    assert_string_equal(tx->branches[0].branch_id, "01");
    assert_string_equal(tx->branches[2].branch_id, "03");
    assert_deps(&tx->branches[0], 0, NULL);
    assert_deps(&tx->branches[1], 1, (uint32_t[]){0});
    assert_deps(&tx->branches[2], 1, (uint32_t[]){1});
    assert_int_equal(tx->branches[0].ops[TM_SLOT_FORWARD].kind, TM_KIND_ACTION);
    assert_int_equal(tx->branches[1].ops[TM_SLOT_ROLLBACK].kind, TM_KIND_NONE);
    assert_false(tx->branches[0].initiator_driven);
    tm_trans_free(tx);
}

static void test_concurrent_and_explicit_dependencies(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    char err[256];
    tm_trans_t *tx = tm_trans_new("g", TM_TX_SUBMITTED, 0);
    Trellis__V1__SubmitRequest r = submit_of(3, 1);
    uint32_t d2[] = {0, 1};
    steps[2].depends_on = d2;
    steps[2].n_depends_on = 2;
    assert_int_equal(tm_request_add_steps(tx, &r, &l, err, sizeof err), 0);
    assert_deps(&tx->branches[0], 0, NULL);
    assert_deps(&tx->branches[1], 0, NULL);
    assert_deps(&tx->branches[2], 2, (uint32_t[]){0, 1});
    tm_trans_free(tx);
}

static Trellis__V1__RegisterBranchRequest register_of(const char *id,
                                                      const char *payload)
{
    static Trellis__V1__BranchOp confirm = TRELLIS__V1__BRANCH_OP__INIT;
    static Trellis__V1__BranchOp cancel = TRELLIS__V1__BRANCH_OP__INIT;
    static Trellis__V1__BranchOp *ops[] = {&confirm, &cancel};
    confirm.op = TRELLIS__V1__OP_KIND__OP_CONFIRM;
    confirm.target = "h:1/b.B/Confirm";
    cancel.op = TRELLIS__V1__OP_KIND__OP_CANCEL;
    cancel.target = "h:1/b.B/Cancel";
    Trellis__V1__RegisterBranchRequest r =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    r.gid = "g";
    r.branch_id = (char *)id;
    r.mode = TRELLIS__V1__BRANCH_MODE__MODE_TCC;
    r.ops = ops;
    r.n_ops = 2;
    r.payload.data = (uint8_t *)payload;
    r.payload.len = strlen(payload);
    return r;
}

static void test_registered_then_steps(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    char err[256];
    tm_trans_t *tx = tm_trans_new("g", TM_TX_PREPARED, 0);
    Trellis__V1__RegisterBranchRequest a = register_of("a", "x");
    Trellis__V1__RegisterBranchRequest b = register_of("b", "y");
    assert_int_equal(tm_request_add_registered(tx, &a), 0);
    assert_int_equal(tm_request_add_registered(tx, &b), 0);
    const tm_branch_t *rb = &tx->branches[1];
    assert_true(rb->initiator_driven);
    assert_int_equal(rb->ops[TM_SLOT_FORWARD].kind, TM_KIND_TRY);
    assert_null(rb->ops[TM_SLOT_FORWARD].target);
    assert_int_equal(rb->ops[TM_SLOT_COMMIT].kind, TM_KIND_CONFIRM);
    assert_string_equal(rb->ops[TM_SLOT_ROLLBACK].target, "h:1/b.B/Cancel");
    assert_deps(rb, 1, (uint32_t[]){0});
    assert_true(tm_request_same_registration(rb, &b));
    Trellis__V1__RegisterBranchRequest b2 = register_of("b", "other");
    assert_false(tm_request_same_registration(rb, &b2));
    b.n_ops = 1; /* a repeat that leaves the cancel out is not the same */
    assert_false(tm_request_same_registration(rb, &b));
    b.n_ops = 2;
    assert_int_equal(tm_request_find_branch(tx, "b"), 1);
    assert_int_equal(tm_request_find_branch(tx, "zz"), -1);

    Trellis__V1__SubmitRequest r = submit_of(2, 0);
    assert_int_equal(tm_request_add_steps(tx, &r, &l, err, sizeof err), 0);
    assert_string_equal(tx->branches[2].branch_id, "03");
    assert_deps(&tx->branches[2], 1, (uint32_t[]){1}); /* after "b" */
    assert_deps(&tx->branches[3], 1, (uint32_t[]){2});
    tm_trans_free(tx);
}

static void test_limits_and_id_collisions_change_nothing(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    l.max_branches = 3;
    char err[256];
    tm_trans_t *tx = tm_trans_new("g", TM_TX_PREPARED, 0);
    Trellis__V1__RegisterBranchRequest a = register_of("03", "x");
    assert_int_equal(tm_request_add_registered(tx, &a), 0);
    Trellis__V1__SubmitRequest r = submit_of(3, 0);
    assert_int_equal(tm_request_add_steps(tx, &r, &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "limit of 3"));
    assert_int_equal(tx->n_branches, 1);
    r = submit_of(2, 0); /* ids 02, 03: 03 is taken */
    assert_int_equal(tm_request_add_steps(tx, &r, &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "03"));
    assert_int_equal(tx->n_branches, 1);
    tm_trans_free(tx);
}

static void test_submit_hash_ignores_only_wait_result(void **state)
{
    (void)state;
    Trellis__V1__SubmitRequest r = submit_of(2, 0);
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    r.options = &o;
    uint64_t h = tm_request_submit_hash(&r);
    assert_int_not_equal(h, 0);
    o.wait_result = 1;
    assert_int_equal(tm_request_submit_hash(&r), h);
    o.retry_interval_ms = 5;
    assert_int_not_equal(tm_request_submit_hash(&r), h);
    o.retry_interval_ms = 0;
    steps[1].payload.data = (uint8_t *)"p";
    steps[1].payload.len = 1;
    assert_int_not_equal(tm_request_submit_hash(&r), h);
    steps[1].payload.len = 0;
    r.concurrent = 1;
    assert_int_not_equal(tm_request_submit_hash(&r), h);
}

/* A step marked pivot makes a pivot branch, and only that one; a pivot
 * changes the submit hash (another saga), no pivot leaves it as it was. */
static void test_pivot_is_stored_on_the_branch(void **state)
{
    (void)state;
    tm_limits_t l;
    tm_limits_default(&l);
    char err[256];
    tm_trans_t *tx = tm_trans_new("g", TM_TX_SUBMITTED, 0);
    Trellis__V1__SubmitRequest r = submit_of(3, 0);
    uint64_t plain = tm_request_submit_hash(&r);
    steps[1].pivot = 1;
    assert_int_equal(tm_request_add_steps(tx, &r, &l, err, sizeof err), 0);
    assert_int_equal(tx->branches[0].pivot, 0);
    assert_int_equal(tx->branches[1].pivot, 1);
    assert_int_equal(tx->branches[2].pivot, 0);
    Trellis__V1__Transaction *m = tm_trans_to_proto(tx, 1);
    assert_true(m->branches[1]->pivot && !m->branches[0]->pivot);
    tm_trans_proto_free(m);
    assert_true(tm_request_submit_hash(&r) != plain);
    steps[1].pivot = 0;
    assert_true(tm_request_submit_hash(&r) == plain);
    tm_trans_free(tx);
}

/* The submit hash is stored with the transaction (trans.submit_hash) and
 * compared when a Submit is repeated, maybe after an upgrade: its value
 * must never change. These were computed by the code before the FNV-1a
 * copies became trellis_fnv (proto/trellis_fnv.c). */
static void test_submit_hash_values_are_pinned(void **state)
{
    (void)state;
    Trellis__V1__SubmitRequest r = submit_of(2, 0);
    assert_true(tm_request_submit_hash(&r) == 0x9dfab89cafff7347ull);
    Trellis__V1__Header hd = TRELLIS__V1__HEADER__INIT;
    hd.key = "k";
    hd.value = "v";
    Trellis__V1__Header *hds[] = {&hd};
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.retry_interval_ms = 5;
    o.wait_result = 1;
    o.n_branch_headers = 1;
    o.branch_headers = hds;
    r.options = &o;
    r.concurrent = 1;
    assert_true(tm_request_submit_hash(&r) == 0x79db479fc15b4994ull);
    /* A step too big for the stack buffer is hashed from the heap. */
    static uint8_t big[1000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    steps[1].payload.data = big;
    steps[1].payload.len = sizeof big;
    assert_true(tm_request_submit_hash(&r) == 0x8ff675ab06bebe7full);
    steps[1].payload.data = NULL;
    steps[1].payload.len = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_form_a_chain_by_default),
        cmocka_unit_test(test_concurrent_and_explicit_dependencies),
        cmocka_unit_test(test_registered_then_steps),
        cmocka_unit_test(test_limits_and_id_collisions_change_nothing),
        cmocka_unit_test(test_submit_hash_ignores_only_wait_result),
        cmocka_unit_test(test_submit_hash_values_are_pinned),
        cmocka_unit_test(test_pivot_is_stored_on_the_branch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
