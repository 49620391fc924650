/*
 * Unit tests of trellis_wire (proto/trellis_wire.c), issue 12 item 14: a
 * string with an embedded NUL is found on the wire bytes, at any depth,
 * and named by its path; bytes fields and unknown fields may hold NULs;
 * malformed input is reported as such and never read past its end; and
 * libtrellis refuses such a reply (tr_reply_unpack).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h" /* libtrellis: tr_reply_unpack */
#include "trellis/v1/tm.pb-c.h"
#include "trellis_wire.h"

static char err[256];

/* Pack m into a malloc'd buffer; its length in *len. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    protobuf_c_message_pack(m, b);
    return b;
}

/* Replace the byte after the first "@" in b with 0 (the strings of the
 * tests mark where their NUL goes with '@'). */
static void plant_nul(uint8_t *b, size_t len)
{
    uint8_t *at = memchr(b, '@', len);
    assert_non_null(at);
    *at = 0;
}

static int check(const ProtobufCMessageDescriptor *d, const uint8_t *b,
                 size_t len)
{
    return trellis_wire_check_strings(d, b, len, err, sizeof err);
}

static void assert_nul_at(int rc, const char *path)
{
    char want[128];
    assert_int_equal(rc, TRELLIS_WIRE_NUL);
    snprintf(want, sizeof want, "field %s contains a NUL byte", path);
    if (!strstr(err, want))
        fail_msg("message \"%s\" does not say \"%s\"", err, want);
}

/* The reproduction of the issue: gid "a\0b", as raw bytes. */
static void test_item14_gid_with_nul(void **state)
{
    (void)state;
    static const uint8_t raw[] = {0x0a, 3, 'a', 0, 'b'};
    assert_nul_at(
        check(&trellis__v1__begin_request__descriptor, raw, sizeof raw), "gid");
    assert_non_null(strstr(err, "at byte 1 of 3"));
    /* protobuf-c itself accepts it and hands out "a". */
    Trellis__V1__BeginRequest *r =
        trellis__v1__begin_request__unpack(NULL, sizeof raw, raw);
    assert_non_null(r);
    assert_string_equal(r->gid, "a");
    trellis__v1__begin_request__free_unpacked(r, NULL);

    static const uint8_t clean[] = {0x0a, 3, 'a', 'x', 'b'};
    assert_int_equal(
        check(&trellis__v1__begin_request__descriptor, clean, sizeof clean),
        TRELLIS_WIRE_OK);
    assert_string_equal(err, "");
}

static void test_nested_and_repeated_paths(void **state)
{
    (void)state;
    Trellis__V1__SagaStep s[3];
    Trellis__V1__SagaStep *sp[3];
    for (int i = 0; i < 3; i++) {
        trellis__v1__saga_step__init(&s[i]);
        s[i].action = "h:1/p.S/A";
        s[i].compensate = "h:1/p.S/C";
        sp[i] = &s[i];
    }
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = "g1";
    r.n_steps = 3;
    r.steps = sp;
    size_t len;
    uint8_t *b = pack(&r.base, &len);
    assert_int_equal(check(&trellis__v1__submit_request__descriptor, b, len),
                     TRELLIS_WIRE_OK);
    free(b);

    s[2].action = "h:1/p.S/@";
    b = pack(&r.base, &len);
    plant_nul(b, len);
    assert_nul_at(check(&trellis__v1__submit_request__descriptor, b, len),
                  "steps[2].action");
    free(b);
    s[2].action = "h:1/p.S/A";

    Trellis__V1__Header h[2] = {TRELLIS__V1__HEADER__INIT,
                                TRELLIS__V1__HEADER__INIT};
    Trellis__V1__Header *hp[2] = {&h[0], &h[1]};
    h[0].key = "k0", h[0].value = "v0";
    h[1].key = "k1", h[1].value = "v@";
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.n_branch_headers = 2;
    o.branch_headers = hp;
    r.options = &o;
    b = pack(&r.base, &len);
    plant_nul(b, len);
    assert_nul_at(check(&trellis__v1__submit_request__descriptor, b, len),
                  "options.branch_headers[1].value");
    free(b);
}

static void test_register_and_replies(void **state)
{
    (void)state;
    Trellis__V1__BranchOp op[2] = {TRELLIS__V1__BRANCH_OP__INIT,
                                   TRELLIS__V1__BRANCH_OP__INIT};
    Trellis__V1__BranchOp *opp[2] = {&op[0], &op[1]};
    op[0].target = "h:1/p.S/C@";
    op[1].target = "h:1/p.S/X";
    Trellis__V1__RegisterBranchRequest r =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    r.gid = "g";
    r.branch_id = "01";
    r.n_ops = 2;
    r.ops = opp;
    size_t len;
    uint8_t *b = pack(&r.base, &len);
    plant_nul(b, len);
    assert_nul_at(
        check(&trellis__v1__register_branch_request__descriptor, b, len),
        "ops[0].target");
    free(b);

    /* A reply, four levels deep. */
    Trellis__V1__Op o[2] = {TRELLIS__V1__OP__INIT, TRELLIS__V1__OP__INIT};
    Trellis__V1__Op *opt[2] = {&o[0], &o[1]};
    o[0].last_error = "fine";
    o[1].last_error = "bad@";
    Trellis__V1__Branch br = TRELLIS__V1__BRANCH__INIT;
    Trellis__V1__Branch *brp = &br;
    br.branch_id = "01";
    br.n_ops = 2;
    br.ops = opt;
    Trellis__V1__Transaction t = TRELLIS__V1__TRANSACTION__INIT;
    t.gid = "g";
    t.n_branches = 1;
    t.branches = &brp;
    Trellis__V1__QueryReply q = TRELLIS__V1__QUERY_REPLY__INIT;
    q.trans = &t;
    b = pack(&q.base, &len);
    plant_nul(b, len);
    assert_nul_at(check(&trellis__v1__query_reply__descriptor, b, len),
                  "trans.branches[0].ops[1].last_error");
    free(b);
}

/* Bytes fields and unknown fields may hold anything. */
static void test_bytes_and_unknown_fields(void **state)
{
    (void)state;
    static const uint8_t payload[] = {'x', 0, 'y'};
    Trellis__V1__RegisterBranchRequest r =
        TRELLIS__V1__REGISTER_BRANCH_REQUEST__INIT;
    r.gid = "g";
    r.branch_id = "01";
    r.payload.data = (uint8_t *)payload;
    r.payload.len = sizeof payload;
    size_t len;
    uint8_t *b = pack(&r.base, &len);
    assert_int_equal(
        check(&trellis__v1__register_branch_request__descriptor, b, len),
        TRELLIS_WIRE_OK);
    free(b);

    /* field 15 (unknown), length-delimited with a 0; then gid "ok";
     * then an unknown varint and fixed32 and fixed64. */
    static const uint8_t raw[] = {0x7a, 2,    0,    0, 0x0a, 2, 'o', 'k',  0x78,
                                  0x96, 0x01, 0x75, 1, 2,    3, 4,   0x71, 1,
                                  2,    3,    4,    5, 6,    7, 8};
    assert_int_equal(
        check(&trellis__v1__abort_request__descriptor, raw, sizeof raw),
        TRELLIS_WIRE_OK);
    assert_int_equal(check(&trellis__v1__abort_request__descriptor, NULL, 0),
                     TRELLIS_WIRE_OK);
}

static void test_malformed(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d =
        &trellis__v1__abort_request__descriptor;
    static const uint8_t past_end[] = {0x0a, 5, 'a', 'b'};
    assert_int_equal(check(d, past_end, sizeof past_end),
                     TRELLIS_WIRE_MALFORMED);
    assert_non_null(strstr(err, "runs past the end"));
    static const uint8_t gid_as_varint[] = {0x08, 1};
    assert_int_equal(check(d, gid_as_varint, sizeof gid_as_varint),
                     TRELLIS_WIRE_MALFORMED);
    assert_non_null(strstr(err, "gid"));
    static const uint8_t group[] = {0x7b, 0x7c};
    assert_int_equal(check(d, group, sizeof group), TRELLIS_WIRE_MALFORMED);
    static const uint8_t field_zero[] = {0x02, 0};
    assert_int_equal(check(d, field_zero, sizeof field_zero),
                     TRELLIS_WIRE_MALFORMED);
    static const uint8_t long_varint[] = {0x78, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(check(d, long_varint, sizeof long_varint),
                     TRELLIS_WIRE_MALFORMED);
    static const uint8_t cut_fixed[] = {0x75, 1, 2};
    assert_int_equal(check(d, cut_fixed, sizeof cut_fixed),
                     TRELLIS_WIRE_MALFORMED);
    /* A sub-message whose length passes its parent's end. */
    static const uint8_t sub_past[] = {0x12, 4, 0x0a, 9, 'a', 'b'};
    assert_int_equal(check(&trellis__v1__submit_request__descriptor, sub_past,
                           sizeof sub_past),
                     TRELLIS_WIRE_MALFORMED);
    /* protobuf-c reads a tag of field 0 written in two bytes (0x80 0x00)
     * as an unknown field; the walk does not, so the caller refuses it
     * (else a NUL after it would pass). */
    static const uint8_t tag0_then_nul[] = {0x80, 0x00, 0x00, 0x0a,
                                            3,    'a',  0,    'b'};
    assert_int_equal(check(d, tag0_then_nul, sizeof tag0_then_nul),
                     TRELLIS_WIRE_MALFORMED);
    /* err may be NULL. */
    assert_int_equal(
        trellis_wire_check_strings(d, past_end, sizeof past_end, NULL, 0),
        TRELLIS_WIRE_MALFORMED);
}

/* libtrellis refuses a reply of trellisd's that carries a NUL in a string
 * (it decodes every reply through tr_reply_unpack). */
static void test_item14_sdk_reply(void **state)
{
    (void)state;
    Trellis__V1__SubmitReply r = TRELLIS__V1__SUBMIT_REPLY__INIT;
    r.gid = "g";
    r.reason = "branch 01 failed@: x";
    size_t len;
    uint8_t *b = pack(&r.base, &len);
    ProtobufCMessage *m = NULL;
    assert_int_equal(tr_reply_unpack(&trellis__v1__submit_reply__descriptor, b,
                                     len, "/trellis.v1.TM/Submit", &m, err,
                                     sizeof err),
                     TRELLIS_OK);
    protobuf_c_message_free_unpacked(m, NULL);
    plant_nul(b, len);
    assert_int_equal(tr_reply_unpack(&trellis__v1__submit_reply__descriptor, b,
                                     len, "/trellis.v1.TM/Submit", &m, err,
                                     sizeof err),
                     TRELLIS_INTERNAL);
    assert_null(m);
    assert_non_null(strstr(err, "field reason contains a NUL byte"));
    free(b);
    assert_int_equal(tr_reply_unpack(&trellis__v1__submit_reply__descriptor,
                                     NULL, 0, "/x", &m, err, sizeof err),
                     TRELLIS_OK);
    protobuf_c_message_free_unpacked(m, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_item14_gid_with_nul),
        cmocka_unit_test(test_nested_and_repeated_paths),
        cmocka_unit_test(test_register_and_replies),
        cmocka_unit_test(test_bytes_and_unknown_fields),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_item14_sdk_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
