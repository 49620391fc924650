/*
 * test_ctl.c: trellisctl as an operator runs it — the built binary as a
 * process against a real trellisd and trellis-testpart: status of a
 * succeeded and a failed saga (readable and --json), list filtered by
 * status, abort of a begun transaction, an unknown gid (exit 1) and a bad
 * command (exit 2).
 *
 * Each run goes through harness_run, which writes the child's stdout and
 * stderr to one log in the scratch dir (one log per run, unique names);
 * the checks read that log without its harness header line. Trade-off:
 * the test sees what the operator sees on the terminal, not which stream a
 * line went to.
 */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_RUN_TIMEOUT_MS 30000

/* harness_run starts each log with one "=== harness ...: start ..." line;
 * drop it so out holds only what trellisctl wrote. */
static void strip_harness_header(char *out)
{
    if (strncmp(out, "=== harness", 11) != 0)
        return;
    char *nl = strchr(out, '\n');
    const char *rest = nl ? nl + 1 : out + strlen(out);
    memmove(out, rest, strlen(rest) + 1);
}

/* Run `trellisctl --tm <tm> args...` as name; returns its exit code and
 * its output (stdout and stderr) in out[outlen]. */
static int ctl_run(itest_t *t, const char *name, const char *const *args,
                   char *out, size_t outlen)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s/bin/trellisctl", harness_build_dir());
    const char *argv[16] = {bin, "--tm", harness_server_addr(t->tm)};
    size_t n = 3;
    for (; *args; args++) {
        assert_true(n + 1 < sizeof argv / sizeof argv[0]);
        argv[n++] = *args;
    }
    argv[n] = NULL;
    int code = harness_run(t->h, name, argv, CTL_RUN_TIMEOUT_MS);

    char leaf[96], path[1024];
    snprintf(leaf, sizeof leaf, "%s.log", name);
    assert_non_null(harness_path(t->h, leaf, path, sizeof path));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(out, 1, outlen - 1, f);
    out[got] = '\0';
    fclose(f);
    strip_harness_header(out);
    return code;
}

static void assert_has(const char *out, const char *want)
{
    if (!strstr(out, want))
        fail_msg("output lacks \"%s\":\n%s", want, out);
}

/* Minimal JSON check: one object, braces and brackets balanced outside
 * strings, nothing after the closing brace but a newline. */
static void assert_json_object(const char *s)
{
    int depth = 0, in_str = 0;
    assert_int_equal(s[0], '{');
    for (const char *p = s; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_str = 0;
            continue;
        }
        if (*p == '"')
            in_str = 1;
        else if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']')
            depth--;
        assert_true(depth >= 0);
        if (depth == 0 && p != s)
            assert_string_equal(p + 1, "\n");
        if (depth == 0)
            return;
    }
    fail_msg("unbalanced JSON: %s", s);
}

static void run_saga(itest_t *t, const char *gid, const char *script,
                     trellis_trans_status_t want)
{
    const char *payloads[] = {"ok", script};
    trellis_saga_t *s = itest_saga(t, gid, payloads, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), want);
    trellis_saga_free(s);
}

static void test_status_and_list(void **state)
{
    itest_t *t = itest_start(state, "ctl_status", NULL);
    run_saga(t, "ctl-ok", "ok", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "ctl-fail", "fail", TRELLIS_TRANS_FAILED);
    char out[16384];

    assert_int_equal(ctl_run(t, "status-ok",
                             (const char *[]){"status", "ctl-ok", NULL}, out,
                             sizeof out),
                     0);
    assert_has(out, "ctl-ok");
    assert_has(out, "status    succeeded");
    assert_has(out, "action     succeeded");

    assert_int_equal(
        ctl_run(t, "status-fail-json",
                (const char *[]){"--json", "status", "ctl-fail", NULL}, out,
                sizeof out),
        0);
    assert_json_object(out);
    assert_has(out, "\"gid\":\"ctl-fail\"");
    assert_has(out, "\"status\":\"failed\"");
    assert_has(out, "\"kind\":\"compensate\"");
    assert_has(out, "\"status\":\"succeeded\""); /* step 0's action */

    assert_int_equal(
        ctl_run(t, "status-ok-json",
                (const char *[]){"status", "ctl-ok", "--json", NULL}, out,
                sizeof out),
        0);
    assert_json_object(out);
    assert_has(out, "{\"gid\":\"ctl-ok\",\"status\":\"succeeded\"");

    assert_int_equal(
        ctl_run(t, "list-failed",
                (const char *[]){"list", "--status", "failed", NULL}, out,
                sizeof out),
        0);
    assert_has(out, "ctl-fail");
    assert_null(strstr(out, "ctl-ok"));

    assert_int_equal(
        ctl_run(t, "list-json",
                (const char *[]){"--json", "list", "--limit", "1", NULL}, out,
                sizeof out),
        0);
    assert_json_object(out);
    assert_has(out, "\"gid\":\"ctl-ok\"");
    assert_null(strstr(out, "ctl-fail"));
    assert_null(strstr(out, "\"next_page_token\":\"\"")); /* more to come */
    itest_pass(state);
}

static void test_abort_and_errors(void **state)
{
    itest_t *t = itest_start(state, "ctl_abort", NULL);
    trellis_options_t o = itest_options();
    char err[256], out[16384];
    assert_int_equal(trellis_begin(t->client, "ctl-begun", &o, err, sizeof err),
                     TRELLIS_OK);

    assert_int_equal(ctl_run(t, "abort",
                             (const char *[]){"abort", "ctl-begun", "--reason",
                                              "operator said so", NULL},
                             out, sizeof out),
                     0);
    if (!strstr(out, "ctl-begun failed") && !strstr(out, "ctl-begun aborting"))
        fail_msg("abort printed: %s", out);
    trellis_trans_info_free(itest_wait_final(t, "ctl-begun"));
    assert_int_equal(ctl_run(t, "status-aborted",
                             (const char *[]){"status", "ctl-begun", NULL}, out,
                             sizeof out),
                     0);
    assert_has(out, "status    failed");
    assert_has(out, "operator said so");

    assert_int_equal(ctl_run(t, "status-unknown",
                             (const char *[]){"status", "no-such-gid", NULL},
                             out, sizeof out),
                     1);
    assert_has(out, "no-such-gid");

    assert_int_equal(ctl_run(t, "bad-command",
                             (const char *[]){"frobnicate", NULL}, out,
                             sizeof out),
                     2);
    assert_has(out, "unknown command");
    assert_has(out, "usage: trellisctl");

    assert_int_equal(ctl_run(t, "bad-flag",
                             (const char *[]){"list", "--bogus", NULL}, out,
                             sizeof out),
                     2);
    assert_int_equal(
        ctl_run(t, "help", (const char *[]){"--help", NULL}, out, sizeof out),
        0);
    assert_has(out, "retry-now");
    assert_has(out, "coming");
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_status_and_list, itest_teardown),
        cmocka_unit_test_teardown(test_abort_and_errors, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
