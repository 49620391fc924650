/*
 * Unit tests of tm_json_out, the writer behind the console's JSON API: commas
 * and nesting come out right, and any bytes a participant sends — quotes,
 * HTML, control characters, every kind of malformed UTF-8 — become an
 * ASCII JSON string that decodes to the text (with U+FFFD for what is not
 * UTF-8), never to markup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tm_json_out.h"

/* One string value written alone; the caller frees. */
static char *string_of(const void *bytes, size_t len)
{
    tm_json_out_t j;
    tm_json_out_init(&j);
    tm_json_out_arr_begin(&j);
    tm_json_out_bytes(&j, bytes, len);
    tm_json_out_arr_end(&j);
    char *out = tm_json_out_take(&j, NULL);
    assert_non_null(out);
    return out;
}

static void assert_string_gives(const char *bytes, size_t len, const char *want)
{
    char *got = string_of(bytes, len);
    assert_string_equal(got, want);
    for (const char *p = got; *p; p++) /* ASCII, printable */
        assert_true(*p >= 0x20 && *p < 0x7f);
    free(got);
}

static void test_nesting_and_commas(void **state)
{
    (void)state;
    tm_json_out_t j;
    tm_json_out_init(&j);
    tm_json_out_obj_begin(&j);
    tm_json_out_kv_str(&j, "gid", "g1");
    tm_json_out_kv_int(&j, "n", -5);
    tm_json_out_key(&j, "list");
    tm_json_out_arr_begin(&j);
    tm_json_out_uint(&j, 18446744073709551615u);
    tm_json_out_bool(&j, 1);
    tm_json_out_obj_begin(&j);
    tm_json_out_obj_end(&j);
    tm_json_out_arr_begin(&j);
    tm_json_out_arr_end(&j);
    tm_json_out_arr_end(&j);
    tm_json_out_kv_bool(&j, "ok", 0);
    tm_json_out_obj_end(&j);
    size_t len = 0;
    char *out = tm_json_out_take(&j, &len);
    assert_non_null(out);
    assert_string_equal(out, "{\"gid\":\"g1\",\"n\":-5,\"list\":"
                             "[18446744073709551615,true,{},[]],"
                             "\"ok\":false}");
    assert_int_equal(len, strlen(out));
    free(out);
}

static void test_misuse_is_reported(void **state)
{
    (void)state;
    tm_json_out_t j;
    tm_json_out_init(&j); /* unbalanced */
    tm_json_out_obj_begin(&j);
    assert_null(tm_json_out_take(&j, NULL));
    tm_json_out_init(&j); /* a key without its value */
    tm_json_out_obj_begin(&j);
    tm_json_out_key(&j, "k");
    tm_json_out_obj_end(&j);
    assert_null(tm_json_out_take(&j, NULL));
    tm_json_out_init(&j); /* a key outside an object */
    tm_json_out_key(&j, "k");
    assert_null(tm_json_out_take(&j, NULL));
    tm_json_out_init(&j); /* too deep */
    for (int i = 0; i <= TM_JSON_OUT_MAX_DEPTH; i++)
        tm_json_out_arr_begin(&j);
    for (int i = 0; i <= TM_JSON_OUT_MAX_DEPTH; i++)
        tm_json_out_arr_end(&j);
    assert_null(tm_json_out_take(&j, NULL));
    tm_json_out_init(&j); /* closing what was never opened */
    tm_json_out_arr_end(&j);
    assert_null(tm_json_out_take(&j, NULL));
}

static void test_json_and_html_characters(void **state)
{
    (void)state;
    const char *s = "<script>alert(\"x\")</script> & 'q' \\";
    assert_string_gives(s, strlen(s),
                        "[\"\\u003cscript\\u003ealert(\\\"x\\\")"
                        "\\u003c/script\\u003e \\u0026 \\u0027q\\u0027 "
                        "\\\\\"]");
}

static void test_control_characters(void **state)
{
    (void)state;
    const char s[] = "a\nb\rc\td\x01\x1f\x7f\0e";
    assert_string_gives(s, sizeof s - 1,
                        "[\"a\\nb\\rc\\td\\u0001\\u001f\\u007f\\u0000e\"]");
}

static void test_valid_utf8_kept(void **state)
{
    (void)state;
    /* é (2 bytes), € (3), U+1F600 (4), and the line separators. */
    const char *s = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8";
    assert_string_gives(s, strlen(s),
                        "[\"\\u00e9\\u20ac\\ud83d\\ude00\\u2028\"]");
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    const char *r = "\\ufffd";
    char want[256];
    struct {
        const char *bytes;
        int replacements;
    } cases[] = {
        {"\x80", 1},             /* stray continuation byte */
        {"\xff", 1},             /* never in UTF-8 */
        {"\xc0\xaf", 2},         /* overlong '/' */
        {"\xe0\x80\xaf", 3},     /* overlong, 3 bytes */
        {"\xed\xa0\x80", 3},     /* a surrogate */
        {"\xf4\x90\x80\x80", 4}, /* past U+10FFFF */
        {"\xe2\x82", 2},         /* cut short */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = 0;
        n += (size_t)snprintf(want + n, sizeof want - n, "[\"x");
        for (int k = 0; k < cases[i].replacements; k++)
            n += (size_t)snprintf(want + n, sizeof want - n, "%s", r);
        snprintf(want + n, sizeof want - n, "y\"]");
        char in[16];
        snprintf(in, sizeof in, "x%sy", cases[i].bytes);
        assert_string_gives(in, strlen(in), want);
    }
}

static void test_null_string_is_empty(void **state)
{
    (void)state;
    tm_json_out_t j;
    tm_json_out_init(&j);
    tm_json_out_obj_begin(&j);
    tm_json_out_kv_str(&j, "reason", NULL);
    tm_json_out_obj_end(&j);
    char *out = tm_json_out_take(&j, NULL);
    assert_string_equal(out, "{\"reason\":\"\"}");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting_and_commas),
        cmocka_unit_test(test_misuse_is_reported),
        cmocka_unit_test(test_json_and_html_characters),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_valid_utf8_kept),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_null_string_is_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
