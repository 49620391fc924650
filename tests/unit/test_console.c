/*
 * Unit tests of tm_console's two checks: which Host headers the console
 * answers to (IP literals, localhost, --http-allow-hosts; a guard against
 * DNS rebinding), and the operator token file (trailing white space cut,
 * refused when empty, short, long or holding what a header cannot carry).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tm_console.h"

static void test_hosts(void **state)
{
    (void)state;
    const char *allow = "trellis.internal,ops.example";
    static const struct {
        const char *host;
        int ok;
    } cases[] = {
        {NULL, 1},
        {"127.0.0.1", 1},
        {"127.0.0.1:7480", 1},
        {"10.1.2.3:80", 1},
        {"[::1]:7480", 1},
        {"[2001:db8::1]", 1},
        {"localhost:7480", 1},
        {"LocalHost", 1},
        {"trellis.internal:7480", 1},
        {"OPS.example", 1},
        {"evil.example", 0},
        {"trellis.internal.evil.example", 0},
        {"internal", 0},
        {"ops.example.", 0},
        {"127.0.0.1.nip.io", 0},
        {"[::1", 0},
        {"::1", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (tm_console_host_allowed(cases[i].host, allow) != cases[i].ok)
            fail_msg("Host %s: want %s", cases[i].host ? cases[i].host : "-",
                     cases[i].ok ? "allowed" : "refused");
    assert_false(tm_console_host_allowed("trellis.internal", ""));
}

/* Write text to a temporary file; path[64] gets its name. */
static void token_file(char *path, const char *text, size_t len)
{
    snprintf(path, 64, "/tmp/trellis-token-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void expect_token(const char *text, size_t len, const char *want,
                         const char *says)
{
    char path[64], err[512] = "";
    char *token = NULL;
    token_file(path, text, len);
    int rc = tm_console_read_token(path, &token, err, sizeof err);
    unlink(path);
    if (want) {
        assert_int_equal(rc, 0);
        assert_string_equal(token, want);
        free(token);
    } else {
        assert_int_equal(rc, -1);
        if (!strstr(err, says))
            fail_msg("error \"%s\" does not say \"%s\"", err, says);
    }
}

static void test_token_file(void **state)
{
    (void)state;
    const char *good = "0123456789abcdef0123";
    expect_token("0123456789abcdef0123\n", 21, good, NULL);
    expect_token("0123456789abcdef0123\r\n \t", 24, good, NULL);
    expect_token("", 0, NULL, "is empty");
    expect_token("\n\n", 2, NULL, "is empty");
    expect_token("short\n", 6, NULL, "use at least 16");
    expect_token("0123456789 abcdef0123", 21, NULL, "character 0x20");
    expect_token("0123456789\x01"
                 "abcdef0123",
                 21, NULL, "character 0x01");
    expect_token("0123456789\0abcdef0123", 21, NULL, "character 0x00");
    char long_token[TM_CONSOLE_TOKEN_MAX + 2];
    memset(long_token, 'a', sizeof long_token);
    expect_token(long_token, sizeof long_token, NULL, "longer than");
    char path[64] = "/nonexistent/token", err[512];
    char *token = NULL;
    assert_int_equal(tm_console_read_token(path, &token, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot read"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_token_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
