/*
 * Unit tests of the store codec (tm/tm_store_codec.c), the row -> model
 * decoding both storage engines share: rows as MySQL gives them (every
 * value as text) and as SQLite gives them (integers as integers), NULL
 * against empty values, the unsigned 64-bit columns, the options blob,
 * list columns, an op's recorded result (bytes with NUL and 0xff; NULL and
 * empty both read as none), and the checks on rows this code did not
 * write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tm_store_codec.h"

/* A value as MySQL gives it: bytes (text for integers too); NULL: SQL
 * NULL. */
static tm_store_codec_col_t txt(const char *s)
{
    return (tm_store_codec_col_t){.p = s, .len = s ? strlen(s) : 0};
}

/* An integer as SQLite gives it. */
static tm_store_codec_col_t num(int64_t v)
{
    return (tm_store_codec_col_t){.i = v, .is_int = 1};
}

static void trans_from_text_row(void **state)
{
    (void)state;
    tm_store_codec_col_t c[] = {
        txt("gid-1"),
        txt("2"),
        txt("1000"),
        txt("1005"),
        txt("0"),
        txt("why"),
        txt("18446744073709551615"),
        txt(""),  /* options: empty blob */
        txt("7"), /* generation */
    };
    tm_trans_t *tx = NULL;
    char err[256] = "";
    assert_int_equal(tm_store_codec_trans(c, 9, &tx, err, sizeof(err)), 0);
    assert_string_equal(tx->gid, "gid-1");
    assert_int_equal(tx->status, TM_TX_SUBMITTED);
    assert_int_equal(tx->created_ms, 1000);
    assert_int_equal(tx->updated_ms, 1005);
    assert_int_equal(tx->finished_ms, 0);
    assert_string_equal(tx->reason, "why");
    assert_true(tx->submit_hash == UINT64_MAX);
    assert_int_equal(tx->generation, 7);
    assert_int_equal(tx->n_branches, 0);
    tm_trans_free(tx);
}

static void trans_from_int_row(void **state)
{
    (void)state;
    tm_store_codec_col_t c[] = {
        txt("g"), num(TM_TX_FAILED), num(10), num(20),
        num(30),  txt(NULL),         num(-1), txt(NULL),
    };
    tm_trans_t *tx = NULL;
    char err[256] = "";
    assert_int_equal(tm_store_codec_trans(c, 8, &tx, err, sizeof(err)), 0);
    assert_int_equal(tx->status, TM_TX_FAILED);
    assert_int_equal(tx->finished_ms, 30);
    assert_null(tx->reason);                    /* NULL stays NULL */
    assert_true(tx->submit_hash == UINT64_MAX); /* same bits */
    assert_int_equal(tx->generation, 0);        /* no such column */
    tm_trans_free(tx);
}

static void trans_empty_reason_and_long_gid(void **state)
{
    (void)state;
    char gid[100];
    memset(gid, 'a', sizeof(gid));
    /* Bytes without a NUL after them, longer than any gid. */
    tm_store_codec_col_t c[8] = {{.p = gid, .len = sizeof(gid)},
                                 num(1),
                                 num(1),
                                 num(1),
                                 num(0),
                                 txt(""),
                                 num(0),
                                 txt(NULL)};
    tm_trans_t *tx = NULL;
    char err[256] = "";
    assert_int_equal(tm_store_codec_trans(c, 8, &tx, err, sizeof(err)), 0);
    assert_int_equal(strlen(tx->gid), TM_GID_MAX);
    assert_non_null(tx->reason); /* empty is not NULL */
    assert_string_equal(tx->reason, "");
    tm_trans_free(tx);
}

static void trans_options_blob(void **state)
{
    (void)state;
    Trellis__V1__TransOptions m = TRELLIS__V1__TRANS_OPTIONS__INIT;
    m.retry_interval_ms = 77;
    m.retry_limit = 3;
    size_t len = trellis__v1__trans_options__get_packed_size(&m);
    uint8_t *blob = malloc(len);
    trellis__v1__trans_options__pack(&m, blob);
    tm_store_codec_col_t c[8] = {
        txt("g"), num(2),    num(1), num(1),
        num(0),   txt(NULL), num(0), {.p = (const char *)blob, .len = len}};
    tm_trans_t *tx = NULL;
    char err[256] = "";
    assert_int_equal(tm_store_codec_trans(c, 8, &tx, err, sizeof(err)), 0);
    assert_int_equal(tx->opts.retry_interval_ms, 77);
    assert_int_equal(tx->opts.retry_limit, 3);
    tm_trans_free(tx);
    free(blob);

    /* A blob that does not decode leaves the defaults. */
    c[7] = txt("\xff\xff\xff");
    assert_int_equal(tm_store_codec_trans(c, 8, &tx, err, sizeof(err)), 0);
    assert_int_equal(tx->opts.retry_interval_ms, 0);
    tm_trans_free(tx);
}

static void too_few_columns(void **state)
{
    (void)state;
    tm_store_codec_col_t c[TM_STORE_CODEC_MAX_COLS] = {{0}};
    tm_trans_t *tx = NULL;
    char err[256] = "";
    assert_int_equal(tm_store_codec_trans(c, 7, &tx, err, sizeof(err)), -1);
    assert_null(tx);
    assert_non_null(strstr(err, "7 columns"));
    tx = tm_trans_new("g", TM_TX_SUBMITTED, 1);
    tm_branch_t *b = NULL;
    err[0] = '\0';
    assert_int_equal(tm_store_codec_branch(tx, c, 11, &b, err, sizeof(err)),
                     -1);
    assert_true(err[0]);
    err[0] = '\0';
    assert_int_equal(tm_store_codec_op(tx, c, 7, err, sizeof(err)), -1);
    assert_true(err[0]);
    tm_trans_free(tx);
}

/* A branch row: idx, branch_id, mode, initiator_driven, payload, deps,
 * then kind and target of each slot, then pivot. */
static void branch_row(tm_store_codec_col_t *c, const char *idx,
                       const char *deps)
{
    static const char payload[] = {'p', '\0', 'q'};
    tm_store_codec_col_t row[] = {
        txt(idx),
        txt("01"),
        txt("1"),
        txt("0"),
        {.p = payload, .len = sizeof(payload)},
        txt(deps),
        txt("1"),
        txt("h:1/A"),
        txt("0"),
        txt(NULL),
        txt("2"),
        txt("h:1/C"),
        txt(strcmp(idx, "1") == 0 ? "1" : "0"),
    };
    memcpy(c, row, sizeof(row));
}

/* Decode the branch row idx (deps as stored) into tx: the codec's result,
 * err[len] filled on -1. */
static int add_branch(tm_trans_t *tx, const char *idx, const char *deps,
                      char *err, size_t len)
{
    tm_store_codec_col_t c[TM_STORE_CODEC_MAX_COLS];
    tm_branch_t *b = NULL;
    branch_row(c, idx, deps);
    return tm_store_codec_branch(tx, c, TM_STORE_CODEC_BRANCH_NCOLS, &b, err,
                                 len);
}

static void branches(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g", TM_TX_SUBMITTED, 1);
    char err[256] = "";
    assert_int_equal(add_branch(tx, "0", "", err, sizeof(err)), 0);
    assert_int_equal(add_branch(tx, "1", "0", err, sizeof(err)), 0);
    assert_int_equal(tx->n_branches, 2);
    const tm_branch_t *b = &tx->branches[1];
    assert_string_equal(b->branch_id, "01");
    assert_int_equal(b->mode, TM_MODE_SAGA);
    assert_int_equal(b->payload_len, 3);
    assert_memory_equal(b->payload, "p\0q", 3);
    assert_int_equal(b->n_deps, 1);
    assert_int_equal(b->deps[0], 0);
    assert_int_equal(tx->branches[0].n_deps, 0);
    assert_int_equal(b->pivot, 1); /* branch_row marks branch 1 the pivot */
    assert_int_equal(tx->branches[0].pivot, 0);
    assert_int_equal(b->ops[TM_SLOT_FORWARD].kind, TM_KIND_ACTION);
    assert_string_equal(b->ops[TM_SLOT_FORWARD].target, "h:1/A");
    assert_int_equal(b->ops[TM_SLOT_COMMIT].kind, TM_KIND_NONE);
    assert_null(b->ops[TM_SLOT_COMMIT].target);
    for (int k = 0; k < TM_SLOTS; k++)
        assert_int_equal(b->ops[k].status, TM_OP_PENDING);

    /* A gap in the indexes: rows this code did not write. */
    assert_int_equal(add_branch(tx, "3", "", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "branch row 3"));
    assert_int_equal(tx->n_branches, 2);
    tm_trans_free(tx);
}

static void ops_and_finish(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g", TM_TX_FAILED, 1);
    char err[256] = "";
    assert_int_equal(add_branch(tx, "0", "", err, sizeof(err)), 0);
    tm_store_codec_col_t op[] = {num(0),
                                 num(TM_SLOT_FORWARD),
                                 num(TM_OP_FAILED),
                                 num(3),
                                 txt("boom"),
                                 txt("100,200,300"),
                                 num(400),
                                 num(1),
                                 num(0),
                                 txt(NULL),
                                 num(0)};
    assert_int_equal(tm_store_codec_op(tx, op, 11, err, sizeof(err)), 0);
    const tm_op_t *o = &tx->branches[0].ops[TM_SLOT_FORWARD];
    assert_int_equal(o->status, TM_OP_FAILED);
    assert_int_equal(o->attempts, 3);
    assert_string_equal(o->last_error, "boom");
    assert_int_equal(o->n_attempt_ms, 3);
    assert_int_equal(o->attempt_ms[0], 100);
    assert_int_equal(o->attempt_ms[2], 300);
    assert_int_equal(o->finished_ms, 400);
    assert_int_equal(o->late, 1);
    assert_int_equal(o->recorded, 0);
    assert_null(o->result);
    assert_int_equal(o->result_len, 0);
    assert_int_equal(o->result_size, 0);

    /* Rows for a branch or a slot the transaction does not have. */
    op[0] = num(1);
    assert_int_equal(tm_store_codec_op(tx, op, 11, err, sizeof(err)), 0);
    op[0] = num(0);
    op[1] = num(TM_SLOTS);
    assert_int_equal(tm_store_codec_op(tx, op, 11, err, sizeof(err)), 0);

    /* Finished: the rollback op still pending was never called. */
    tm_store_codec_finish(tx);
    assert_int_equal(tx->branches[0].ops[TM_SLOT_ROLLBACK].status,
                     TM_OP_SKIPPED);
    assert_int_equal(tx->branches[0].ops[TM_SLOT_COMMIT].status,
                     TM_OP_PENDING); /* an unused slot stays as it was */
    tm_trans_free(tx);
}

/* An op row as MySQL gives it (every value as text), result as given. */
static void op_text_row(tm_store_codec_col_t *c, const char *recorded,
                        tm_store_codec_col_t result)
{
    tm_store_codec_col_t row[TM_STORE_CODEC_OP_NCOLS] = {
        txt("0"),
        txt("0"),
        txt("2"),
        txt("1"),
        txt(NULL),
        txt("50"),
        txt("60"),
        txt("0"),
        txt(recorded),
        result,
        txt("18446744073709551615")};
    memcpy(c, row, sizeof(row));
}

static void op_recorded_result(void **state)
{
    (void)state;
    tm_trans_t *tx = tm_trans_new("g", TM_TX_SUBMITTED, 1);
    char err[256] = "";
    assert_int_equal(add_branch(tx, "0", "", err, sizeof(err)), 0);
    static const char bytes[] = {'\0', 'r', '\xff', '\0', '\xfe', '\xff'};
    tm_store_codec_col_t c[TM_STORE_CODEC_OP_NCOLS];
    op_text_row(c, "1", (tm_store_codec_col_t){.p = bytes, .len = 6});
    assert_int_equal(
        tm_store_codec_op(tx, c, TM_STORE_CODEC_OP_NCOLS, err, sizeof(err)), 0);
    const tm_op_t *o = &tx->branches[0].ops[TM_SLOT_FORWARD];
    assert_int_equal(o->status, TM_OP_SUCCEEDED);
    assert_int_equal(o->recorded, 1);
    assert_int_equal(o->result_len, sizeof(bytes));
    assert_memory_equal(o->result, bytes, sizeof(bytes));
    assert_true(o->result_size == UINT64_MAX); /* MySQL's BIGINT UNSIGNED */

    /* A later row of the same op replaces the result: an empty value and
     * SQL NULL both read as none. */
    op_text_row(c, "0", txt(""));
    assert_int_equal(
        tm_store_codec_op(tx, c, TM_STORE_CODEC_OP_NCOLS, err, sizeof(err)), 0);
    assert_int_equal(o->recorded, 0);
    assert_null(o->result);
    assert_int_equal(o->result_len, 0);
    op_text_row(c, "1", txt(NULL));
    assert_int_equal(
        tm_store_codec_op(tx, c, TM_STORE_CODEC_OP_NCOLS, err, sizeof(err)), 0);
    assert_int_equal(o->recorded, 1);
    assert_null(o->result);

    /* A row of the columns before recorded and result (an old schema's):
     * too few. */
    err[0] = '\0';
    assert_int_equal(tm_store_codec_op(tx, c, 8, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "8 columns"));
    tm_trans_free(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trans_from_text_row),
        cmocka_unit_test(trans_from_int_row),
        cmocka_unit_test(trans_empty_reason_and_long_gid),
        cmocka_unit_test(trans_options_blob),
        cmocka_unit_test(too_few_columns),
        cmocka_unit_test(branches),
        cmocka_unit_test(ops_and_finish),
        cmocka_unit_test(op_recorded_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
