/*
 * Unit tests of the embedded store: what the engine writes comes back
 * after a reopen (the restart case), unfinished transactions are found for
 * recovery, writes commit in queue order, and list pages through by time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tm_store.h"

static char dir[512];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/test-data/unit-store-%d", TRELLIS_BUILD_DIR,
             (int)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    return system(cmd);
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static tm_trans_t *two_step_saga(const char *gid, int64_t created)
{
    tm_trans_t *tx = tm_trans_new(gid, TM_TX_SUBMITTED, created);
    tx->submit_hash = 42;
    tx->opts.retry_interval_ms = 77;
    for (int i = 0; i < 2; i++) {
        tm_branch_t *b = tm_trans_add_branch(tx);
        b->branch_id = tm_strdup(i ? "02" : "01");
        b->mode = TM_MODE_SAGA;
        b->payload = (uint8_t *)tm_strdup("pay");
        b->payload_len = 3;
        if (i) {
            b->deps = malloc(sizeof(uint32_t));
            b->deps[0] = 0;
            b->n_deps = 1;
        }
        b->ops[TM_SLOT_FORWARD].kind = TM_KIND_ACTION;
        b->ops[TM_SLOT_FORWARD].status = TM_OP_PENDING;
        b->ops[TM_SLOT_FORWARD].target = tm_strdup("h:1/p.S/A");
        b->ops[TM_SLOT_ROLLBACK].kind = TM_KIND_COMPENSATE;
        b->ops[TM_SLOT_ROLLBACK].status = TM_OP_PENDING;
        b->ops[TM_SLOT_ROLLBACK].target = tm_strdup("h:1/p.S/C");
    }
    return tx;
}

/* The embedded engine under the test's directory. */
static int open_store(tm_store_t **s, char *err, size_t errlen)
{
    tm_store_config_t cfg;
    tm_store_config_default(&cfg);
    cfg.data_dir = dir;
    return tm_store_open(&cfg, s, err, errlen);
}

static int order[8];
static int n_order;

static void note_done(void *arg, tm_write_result_t result)
{
    assert_int_equal(result, TM_WRITE_DONE);
    order[n_order++] = (int)(intptr_t)arg;
}

static void count_loaded(tm_trans_t *tx, void *arg)
{
    (*(int *)arg)++;
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    assert_int_equal(tx->n_branches, 2);
    tm_trans_free(tx);
}

static void test_round_trip_survives_reopen(void **state)
{
    (void)state;
    char err[256];
    tm_store_t *s;
    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    tm_trans_t *a = two_step_saga("gid-a", 1000);
    tm_trans_t *b = two_step_saga("gid-b", 2000);
    tm_store_queue(s, tm_write_capture_all(a, 1), note_done, (void *)1);
    tm_store_queue(s, tm_write_capture_all(b, 1), note_done, (void *)2);
    /* a's first step succeeds: only that op and the header are written */
    tm_op_t *op = &a->branches[0].ops[TM_SLOT_FORWARD];
    op->status = TM_OP_SUCCEEDED;
    tm_op_note_attempt(op, 1500);
    tm_op_note_attempt(op, 1600);
    op->last_error = tm_strdup("grpc status 14: down");
    tm_store_queue(s, tm_write_capture_all(a, 0), note_done, (void *)3);
    /* b finishes */
    b->status = TM_TX_FAILED;
    b->reason = tm_strdup("branch 02 action failed: no cars");
    b->finished_ms = 2500;
    tm_store_queue(s, tm_write_capture_all(b, 0), note_done, (void *)4);
    tm_store_flush(s);
    assert_int_equal(n_order, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(order[i], i + 1);
    tm_store_close(s);

    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    tm_trans_t *got = NULL;
    assert_int_equal(tm_store_get(s, "gid-a", &got, err, sizeof(err)), 1);
    assert_int_equal(got->status, TM_TX_SUBMITTED);
    assert_int_equal(got->submit_hash, 42);
    assert_int_equal(got->opts.retry_interval_ms, 77);
    assert_int_equal(got->n_branches, 2);
    assert_int_equal(got->branches[1].n_deps, 1);
    assert_int_equal(got->branches[1].deps[0], 0);
    assert_memory_equal(got->branches[0].payload, "pay", 3);
    const tm_op_t *g = &got->branches[0].ops[TM_SLOT_FORWARD];
    assert_int_equal(g->status, TM_OP_SUCCEEDED);
    assert_int_equal(g->attempts, 2);
    assert_int_equal(g->n_attempt_ms, 2);
    assert_int_equal(g->attempt_ms[1], 1600);
    assert_string_equal(g->last_error, "grpc status 14: down");
    assert_int_equal(got->branches[1].ops[TM_SLOT_FORWARD].status,
                     TM_OP_PENDING);
    const tm_op_t *comp = &got->branches[1].ops[TM_SLOT_ROLLBACK];
    assert_int_equal(comp->kind, TM_KIND_COMPENSATE);
    assert_string_equal(comp->target, "h:1/p.S/C");
    assert_int_equal(got->branches[1].ops[TM_SLOT_COMMIT].kind, TM_KIND_NONE);
    tm_trans_free(got);

    /* b finished: its never-called ops read back as SKIPPED */
    assert_int_equal(tm_store_get(s, "gid-b", &got, err, sizeof(err)), 1);
    assert_int_equal(got->status, TM_TX_FAILED);
    assert_string_equal(got->reason, "branch 02 action failed: no cars");
    assert_int_equal(got->branches[0].ops[TM_SLOT_FORWARD].status,
                     TM_OP_SKIPPED);
    assert_string_equal(got->branches[0].ops[TM_SLOT_FORWARD].target,
                        "h:1/p.S/A");
    tm_trans_free(got);

    tm_tx_status_t st;
    uint64_t h;
    assert_int_equal(tm_store_peek(s, "gid-b", &st, &h, err, sizeof(err)), 1);
    assert_int_equal(st, TM_TX_FAILED);
    assert_int_equal(tm_store_peek(s, "nope", &st, &h, err, sizeof(err)), 0);

    int loaded = 0;
    assert_int_equal(
        tm_store_load_unfinished(s, count_loaded, &loaded, err, sizeof(err)),
        1);
    assert_int_equal(loaded, 1);
    tm_store_close(s);
    tm_trans_free(a);
    tm_trans_free(b);
}

static void test_list_pages_by_creation_time(void **state)
{
    (void)state;
    char err[256];
    tm_store_t *s;
    assert_int_equal(open_store(&s, err, sizeof(err)), 0);
    for (int i = 0; i < 5; i++) {
        char gid[16];
        snprintf(gid, sizeof(gid), "L%d", i);
        tm_trans_t *tx = two_step_saga(gid, 10000 + i);
        if (i % 2)
            tx->status = TM_TX_SUCCEEDED;
        tm_store_queue(s, tm_write_capture_all(tx, 1), NULL, NULL);
        tm_trans_free(tx);
    }
    tm_store_flush(s);
    tm_store_filter_t f = {0};
    f.created_after_ms = 9999;
    f.limit = 2;
    tm_trans_t **items;
    size_t n;
    assert_int_equal(tm_store_list(s, &f, &items, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[0]->gid, "L0");
    assert_string_equal(items[1]->gid, "L1");
    f.after_created_ms = items[1]->created_ms;
    f.after_gid = "L1";
    for (size_t i = 0; i < n; i++)
        tm_trans_free(items[i]);
    free(items);
    assert_int_equal(tm_store_list(s, &f, &items, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(items[0]->gid, "L2");
    for (size_t i = 0; i < n; i++)
        tm_trans_free(items[i]);
    free(items);
    f.after_gid = NULL;
    f.status = TM_TX_SUCCEEDED;
    f.limit = 10;
    assert_int_equal(tm_store_list(s, &f, &items, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2); /* L1 and L3 */
    for (size_t i = 0; i < n; i++)
        tm_trans_free(items[i]);
    free(items);
    tm_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_survives_reopen,
                                        make_dir, NULL),
        cmocka_unit_test_setup_teardown(test_list_pages_by_creation_time,
                                        make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
