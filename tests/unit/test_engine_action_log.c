/*
 * Unit tests of the compensation log (issue 16, tm_engine_calls.c) in the
 * engine core, on the hand-stepped fake env (tests/common/fake_env.h): a
 * saga action's reply is kept with its op in the write that stores its
 * success, and its compensate is sent exactly those bytes as metadata
 * trellis-action-result-bin — from the live copy, and from the stored row
 * after the copy was reloaded; a reply longer than max_action_log is kept
 * cut, its full size stored and sent as trellis-action-result-size;
 * max_action_log 0 keeps and sends nothing; a step without a compensate
 * keeps nothing; no other op is sent a log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_env.h"
#include "tm_engine.h"
#include "tm_log.h"
#include "tm_validate.h"

#define BOOK "127.0.0.1:1/trip.Flight/Book"
#define CANCEL "127.0.0.1:1/trip.Flight/Cancel"
#define PAY "127.0.0.1:2/trip.Pay/Charge"

enum { ST_OK = 0, ST_ABORTED = 10 };

#define BOOKING "booking=42"

/* ---- requests and checks ---- */

/* A chain of two steps: book (cancel), then pay, with or without a
 * compensate. */
static fenv_rpc_t *send_trip(const char *gid, int pay_compensates)
{
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    Trellis__V1__SagaStep s[2], *p[2] = {&s[0], &s[1]};
    for (int i = 0; i < 2; i++) {
        trellis__v1__saga_step__init(&s[i]);
        s[i].action = i == 0 ? BOOK : PAY;
        s[i].compensate = i == 0 || pay_compensates ? CANCEL : "";
    }
    o.wait_result = 1;
    r.gid = (char *)gid;
    r.steps = p;
    r.n_steps = 2;
    r.options = &o;
    return fenv_send(ENGINE_CALL_SUBMIT, &r.base);
}

/* The transaction as stored (the fake store's row, read back as the real
 * stores read theirs). The caller's: tm_trans_free. */
static tm_trans_t *stored(const char *gid)
{
    tm_trans_t *tx = NULL;
    char err[256];
    const tm_engine_env_t *env = fenv_env();
    assert_int_equal(env->store_get(env->store, gid, &tx, err, sizeof(err)), 1);
    assert_non_null(tx);
    return tx;
}

/* The log the op of b kept in the store: its bytes and full size. */
static void assert_stored_log(const char *gid, uint32_t b, const char *bytes,
                              uint64_t full)
{
    tm_trans_t *tx = stored(gid);
    const tm_op_t *fw = &tx->branches[b].ops[TM_SLOT_FORWARD];
    assert_int_equal(fw->status, TM_OP_SUCCEEDED);
    assert_int_equal(fw->recorded, 0);
    assert_int_equal(fw->result_len, strlen(bytes));
    if (*bytes)
        assert_memory_equal(fw->result, bytes, strlen(bytes));
    else
        assert_null(fw->result);
    assert_int_equal(fw->result_size, full);
    tm_trans_free(tx);
}

/* Call i was sent exactly bytes as its log ("" none) and full_size as the
 * size key ("" none). */
static void assert_call_log(size_t i, const char *bytes, const char *full_size)
{
    size_t len;
    const char *size;
    const uint8_t *log = fenv_call_action_log(i, &len, &size);
    assert_int_equal(len, strlen(bytes));
    if (*bytes)
        assert_memory_equal(log, bytes, len);
    else
        assert_null(log);
    assert_string_equal(size, full_size);
}

/* Book answers reply, pay fails: then the compensations run backwards
 * (pay's first when it has one). Returns the index of book's cancel. */
static size_t book_then_pay_fails(const char *gid, const char *reply,
                                  int pay_compensates)
{
    fenv_rpc_t *sub = send_trip(gid, pay_compensates);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_assert_call(0, gid, "01", "action");
    fenv_answer_call_with(0, ST_OK, reply, strlen(reply));
    fenv_commit_all();
    fenv_assert_call(1, gid, "02", "action");
    fenv_answer_call_with(1, ST_ABORTED, "refused", 7);
    fenv_commit_all();
    size_t i = 2;
    if (pay_compensates) {
        fenv_assert_call(i, gid, "02", "compensate");
        assert_call_log(i, "", ""); /* its action failed: no log */
        fenv_answer_call(i++, ST_OK);
        fenv_commit_all();
    }
    fenv_assert_call(i, gid, "01", "compensate");
    fenv_assert_unanswered(sub);
    return i;
}

static void finish_cancel(size_t i, const char *gid)
{
    fenv_answer_call(i, ST_OK);
    fenv_commit_all();
    fenv_rpc_t *q = fenv_send_query(gid);
    fenv_assert_answer(q, TM_CODE_OK, TM_TX_FAILED);
}

/* ---- fixture ---- */

static uint32_t max_log = TM_ACTION_LOG_DEFAULT;

static int setup(void **state)
{
    (void)state;
    tm_engine_config_t cfg;
    tm_engine_config_default(&cfg);
    assert_int_equal(cfg.max_action_log, 4096);
    cfg.retry_interval_ms = 100;
    cfg.max_backoff_ms = 1000;
    cfg.max_action_log = max_log;
    fenv_open(&cfg);
    return 0;
}

static int setup_max_16(void **state)
{
    max_log = 16;
    return setup(state);
}

static int setup_max_0(void **state)
{
    max_log = 0;
    return setup(state);
}

static int teardown(void **state)
{
    (void)state;
    fenv_close();
    max_log = TM_ACTION_LOG_DEFAULT;
    return 0;
}

/* ---- tests ---- */

/* The action's reply is stored with its success, and the cancel gets
 * exactly those bytes, with no size key (nothing was cut). */
static void test_cancel_gets_reply(void **state)
{
    (void)state;
    size_t i = book_then_pay_fails("l1", BOOKING, 1);
    assert_stored_log("l1", 0, BOOKING, strlen(BOOKING));
    assert_call_log(i, BOOKING, "");
    assert_call_log(0, "", ""); /* the actions themselves get none */
    assert_call_log(1, "", "");
    finish_cancel(i, "l1");
}

/* Binary replies go through as they are (NUL bytes, high bytes). */
static void test_binary_reply(void **state)
{
    (void)state;
    static const char bin[] = {'\x00', '\xff', 'b', '\x00', '\x7f'};
    fenv_rpc_t *sub = send_trip("l2", 0);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_answer_call_with(0, ST_OK, bin, sizeof(bin));
    fenv_commit_all();
    fenv_answer_call(1, ST_ABORTED);
    fenv_commit_all();
    fenv_assert_call(2, "l2", "01", "compensate");
    size_t len;
    const uint8_t *log = fenv_call_action_log(2, &len, NULL);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(log, bin, sizeof(bin));
    fenv_assert_unanswered(sub);
    finish_cancel(2, "l2");
}

/* The copy is reloaded from the store (a write refused for good) after the
 * action's success was stored: the cancel gets the stored bytes, as after
 * a restart. */
static void test_reloaded_copy_sends_stored_log(void **state)
{
    (void)state;
    fenv_rpc_t *sub = send_trip("l3", 0);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_answer_call_with(0, ST_OK, BOOKING, strlen(BOOKING));
    fenv_commit_next(TM_WRITE_DONE); /* book's success and its log */
    fenv_answer_call(1, ST_ABORTED);
    fenv_commit_next(TM_WRITE_FAILED); /* the copy is forgotten, reloaded */
    assert_int_equal(tm_engine_live_count(fenv_engine()), 1);
    fenv_assert_call(2, "l3", "02", "action"); /* called again */
    fenv_answer_call(2, ST_ABORTED);
    fenv_commit_all();
    fenv_assert_call(3, "l3", "01", "compensate");
    assert_call_log(3, BOOKING, "");
    fenv_assert_unanswered(sub);
    finish_cancel(3, "l3");
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_FAILED);
}

/* A reply longer than max_action_log (16 here) is kept cut, with its full
 * size, and the cancel is told the full size. */
static void test_oversize_reply_cut(void **state)
{
    (void)state;
    const char *reply = "booking=42;seat=17C;fare=Y;meal=veg";
    size_t i = book_then_pay_fails("l4", reply, 0);
    char first[17];
    memcpy(first, reply, 16);
    first[16] = '\0';
    char full[24];
    snprintf(full, sizeof(full), "%zu", strlen(reply));
    assert_stored_log("l4", 0, first, strlen(reply));
    assert_call_log(i, first, full);
    finish_cancel(i, "l4");
}

/* A reply of exactly max_action_log bytes is not cut. */
static void test_reply_at_max_not_cut(void **state)
{
    (void)state;
    const char *reply = "0123456789abcdef"; /* 16 */
    size_t i = book_then_pay_fails("l5", reply, 0);
    assert_stored_log("l5", 0, reply, 16);
    assert_call_log(i, reply, "");
    finish_cancel(i, "l5");
}

/* max_action_log 0: nothing kept, nothing sent. */
static void test_max_zero_keeps_none(void **state)
{
    (void)state;
    size_t i = book_then_pay_fails("l6", BOOKING, 1);
    assert_stored_log("l6", 0, "", 0);
    assert_call_log(i, "", "");
    finish_cancel(i, "l6");
}

/* A step without a compensate keeps nothing of its reply; a saga that
 * succeeds sends no log anywhere. */
static void test_no_compensate_keeps_none(void **state)
{
    (void)state;
    fenv_rpc_t *sub = send_trip("l7", 0);
    fenv_commit_next(TM_WRITE_DONE);
    fenv_answer_call_with(0, ST_OK, BOOKING, strlen(BOOKING));
    fenv_commit_all();
    fenv_answer_call_with(1, ST_OK, "paid=7", 6);
    fenv_commit_all();
    fenv_assert_answer(sub, TM_CODE_OK, TM_TX_SUCCEEDED);
    assert_int_equal(fenv_calls_started(), 2);
    assert_stored_log("l7", 0, BOOKING, strlen(BOOKING));
    tm_trans_t *tx = stored("l7");
    assert_null(tx->branches[1].ops[TM_SLOT_FORWARD].result);
    assert_int_equal(tx->branches[1].ops[TM_SLOT_FORWARD].result_size, 0);
    tm_trans_free(tx);
}

int main(void)
{
    tm_log_set_level(TM_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cancel_gets_reply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_binary_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reloaded_copy_sends_stored_log,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversize_reply_cut, setup_max_16,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reply_at_max_not_cut, setup_max_16,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_max_zero_keeps_none, setup_max_0,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_compensate_keeps_none, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
