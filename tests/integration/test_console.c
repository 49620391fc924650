/*
 * test_console.c: the web console's JSON API (--http-listen) as a client
 * sees it, over real HTTP against a real trellisd and trellis-testpart:
 * the list's filters (status, age) and pages, one transaction whole, a
 * clear 400 for every bad parameter and 404 for an unknown gid, the
 * security headers; participant data that could be markup or is not UTF-8
 * comes back as escaped printable ASCII; writes are refused 403 without a
 * configured token, 401 without the right one, and work with it (retry
 * now, force stop, which Query then shows); a Host the console does not
 * answer to is refused (DNS rebinding); a token file that cannot be used
 * stops trellisd at start.
 */
#include "itest_console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const console_args[] = {"--http-listen", "127.0.0.1:0",
                                           NULL};

/* Assert that body holds text (a JSON fragment). */
static void assert_has(const char *body, const char *text)
{
    if (!strstr(body, text))
        fail_msg("expected %s in:\n%s", text, body);
}

static void assert_lacks(const char *body, const char *text)
{
    if (strstr(body, text))
        fail_msg("did not expect %s in:\n%s", text, body);
}

/* GET path, assert the code, return the body (the caller's). */
static char *get_expect(itest_t *t, const char *path, int code)
{
    char *body = NULL;
    int got = icon_get(t, path, &body, NULL);
    if (got != code)
        fail_msg("GET %s: HTTP %d (want %d): %s", path, got, code, body);
    return body;
}

/* The gids of a list answer, in order, as "g1 g2 ...". */
static void gids_of(const char *body, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = body; (p = strstr(p, "\"gid\":\"")); p++) {
        p += 7;
        size_t k = strcspn(p, "\"");
        n += (size_t)snprintf(out + n, len - n, "%s%.*s", n ? " " : "", (int)k,
                              p);
        assert_true(n < len);
    }
}

static void expect_list(itest_t *t, const char *query, const char *want)
{
    char path[512], got[1024];
    snprintf(path, sizeof path, "/api/transactions%s", query);
    char *body = get_expect(t, path, 200);
    gids_of(body, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("GET %s: gids \"%s\", want \"%s\"", path, got, want);
    free(body);
}

/* The value of "next_page_token" in body, into out. */
static void next_token(const char *body, char *out, size_t len)
{
    const char *p = strstr(body, "\"next_page_token\":\"");
    assert_non_null(p);
    p += strlen("\"next_page_token\":\"");
    size_t k = strcspn(p, "\"");
    assert_true(k < len);
    memcpy(out, p, k);
    out[k] = '\0';
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run a saga to its end, then wait for the wall clock's next millisecond:
 * the next one is created later (List orders by creation time, then gid,
 * and a fast box finishes a saga within one millisecond). */
static void run_saga(itest_t *t, const char *gid, const char *step2,
                     trellis_trans_status_t want)
{
    const char *payloads[] = {"", step2};
    trellis_saga_t *s = itest_saga(t, gid, payloads, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), want);
    trellis_saga_free(s);
    int64_t ended = wall_ms();
    while (wall_ms() <= ended)
        usleep(100);
}

static void test_list_filters_and_pages(void **state)
{
    itest_t *t = itest_start(state, "console-list", console_args);
    run_saga(t, "c-ok-1", "", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "c-fail-1", "fail", TRELLIS_TRANS_FAILED);
    run_saga(t, "c-ok-2", "", TRELLIS_TRANS_SUCCEEDED);
    run_saga(t, "c-fail-2", "fail", TRELLIS_TRANS_FAILED);
    run_saga(t, "c-ok-3", "", TRELLIS_TRANS_SUCCEEDED);
    const char *all = "c-ok-1 c-fail-1 c-ok-2 c-fail-2 c-ok-3";
    expect_list(t, "", all);
    expect_list(t, "?status=succeeded", "c-ok-1 c-ok-2 c-ok-3");
    expect_list(t, "?status=failed", "c-fail-1 c-fail-2");
    expect_list(t, "?status=prepared", "");
    expect_list(t, "?newer_than=1h", all);
    expect_list(t, "?older_than=1h", "");
    expect_list(t, "?status=failed&newer_than=1d", "c-fail-1 c-fail-2");

    /* Pages of two, oldest first, to the end. */
    char path[512], token[256];
    char *body = get_expect(t, "/api/transactions?limit=2", 200);
    char got[1024];
    gids_of(body, got, sizeof got);
    assert_string_equal(got, "c-ok-1 c-fail-1");
    next_token(body, token, sizeof token);
    assert_true(token[0] != '\0');
    free(body);
    snprintf(path, sizeof path, "?limit=2&page_token=%s", token);
    expect_list(t, path, "c-ok-2 c-fail-2");
    snprintf(path, sizeof path, "/api/transactions?limit=2&page_token=%s",
             token);
    body = get_expect(t, path, 200);
    next_token(body, token, sizeof token);
    free(body);
    snprintf(path, sizeof path, "/api/transactions?limit=2&page_token=%s",
             token);
    body = get_expect(t, path, 200);
    gids_of(body, got, sizeof got);
    assert_string_equal(got, "c-ok-3");
    assert_has(body, "\"next_page_token\":\"\"");
    free(body);

    /* One transaction, whole: the failed step and its compensations. */
    body = get_expect(t, "/api/transactions/c-fail-1", 200);
    assert_has(body, "\"gid\":\"c-fail-1\",\"status\":\"failed\"");
    assert_has(body, "\"branch_id\":\"01\",\"mode\":\"saga\"");
    assert_has(body, "\"kind\":\"action\"");
    assert_has(body, "\"kind\":\"compensate\"");
    assert_has(body, "\"status\":\"failed\",\"attempts\":1,\"last_error\":\"");
    assert_has(body, "\"attempt_ms\":[");
    assert_has(body, "\"payload\":\"fail\",\"payload_bytes\":4");
    free(body);
    itest_pass(state);
}

/* Each bad request gets its code and a message naming what is wrong. */
static void test_bad_requests(void **state)
{
    itest_t *t = itest_start(state, "console-bad", console_args);
    run_saga(t, "c-ok", "", TRELLIS_TRANS_SUCCEEDED);
    static const struct {
        const char *path;
        int code;
        const char *says;
    } cases[] = {
        {"/api/transactions?status=bogus", 400, "is not one of prepared"},
        {"/api/transactions?limit=0", 400, "from 1 to 1000"},
        {"/api/transactions?limit=1001", 400, "from 1 to 1000"},
        {"/api/transactions?limit=abc", 400, "from 1 to 1000"},
        {"/api/transactions?older_than=5x", 400, "such as 500ms"},
        {"/api/transactions?newer_than=-1s", 400, "such as 500ms"},
        {"/api/transactions?older_than=99999999999d", 400, "such as 500ms"},
        {"/api/transactions?colour=red", 400, "unknown parameter"},
        {"/api/transactions?page_token=nonsense", 400,
         "page_token is not one this server handed out"},
        {"/api/transactions/no-such-gid", 404,
         "no transaction with gid no-such-gid"},
        {"/api/transactions/c-ok%00x", 400, "gid has character 0x25"},
        {"/api/transactions/bad%20gid", 400, "gid has character 0x20"},
        {"/api/transactions/c-ok/explode", 404, "no such action"},
        {"/api/transactions/c-ok/retry-now", 405, "takes POST only"},
        {"/api/nothing", 404, "no such API path"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *body = get_expect(t, cases[i].path, cases[i].code);
        assert_has(body, "{\"error\":\"");
        assert_has(body, cases[i].says);
        free(body);
    }
    char *out = NULL;
    assert_int_equal(icon_post(t, "/api/transactions", NULL, "", 0, &out), 405);
    free(out);
    /* The gid's ':' may come percent-encoded. */
    run_saga(t, "c:colon", "", TRELLIS_TRANS_SUCCEEDED);
    free(get_expect(t, "/api/transactions/c%3Acolon", 200));
    itest_pass(state);
}

static void test_headers(void **state)
{
    itest_t *t = itest_start(state, "console-headers", console_args);
    const char *paths[] = {"/", "/console.js", "/api/transactions",
                           "/api/transactions/none"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        char *head = NULL, *body = NULL;
        icon_get(t, paths[i], &body, &head);
        assert_has(head, "X-Content-Type-Options: nosniff");
        assert_has(head, "Content-Security-Policy: default-src 'none'; "
                         "script-src 'self'");
        assert_lacks(head, "unsafe-inline");
        free(head);
        free(body);
    }
    char *head = NULL, *body = NULL;
    assert_int_equal(icon_get(t, "/", &body, &head), 200);
    assert_has(head, "Content-Type: text/html; charset=utf-8");
    assert_has(body, "<script src=\"/console.js\" defer></script>");
    assert_lacks(body, "<script>"); /* no inline script */
    free(head);
    free(body);
    assert_int_equal(icon_get(t, "/console.js", &body, &head), 200);
    assert_has(head, "Content-Type: text/javascript");
    assert_lacks(body, "innerHTML"); /* text only, by construction */
    free(head);
    free(body);
    itest_pass(state);
}

/* Participant data comes back as JSON that is printable ASCII: markup,
 * quotes and control characters escaped, bytes that are not UTF-8
 * replaced. */
static void test_hostile_strings_escaped(void **state)
{
    itest_t *t = itest_start(state, "console-hostile", console_args);
    icon_saga_hostile(t, "c-hostile");
    char *body = get_expect(t, "/api/transactions/c-hostile", 200);
    assert_true(icon_is_printable_ascii(body));
    assert_lacks(body, "<");
    assert_lacks(body, ">");
    assert_has(body, "#\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"
                     "\\u003cb id=\\\"pwned\\\"\\u003ebold\\u003c/b\\u003e"
                     "\\u0027\\\"\\u0026\\u0001\\ufffd");
    assert_has(body, "\\u003cimg src=x onerror=alert(2)\\u003e"
                     "\\u003cscript\\u003ealert(3)\\u003c/script\\u003e"
                     "\\\"q\\u0027\\u0001");
    free(body);
    body = get_expect(t, "/api/transactions?status=failed", 200);
    assert_true(icon_is_printable_ascii(body));
    assert_lacks(body, "<");
    free(body);
    itest_pass(state);
}

/* Without --http-token-file every write is 403, and nothing happens. */
static void test_read_only_refuses_writes(void **state)
{
    itest_t *t = itest_start(state, "console-ro", console_args);
    icon_saga_held(t, "c-held");
    char *out = NULL;
    assert_int_equal(icon_post(t, "/api/transactions/c-held/retry-now",
                               "anything", "", 0, &out),
                     403);
    assert_has(out, "read-only");
    assert_has(out, "--http-token-file");
    free(out);
    assert_int_equal(icon_post(t, "/api/transactions/c-held/force-stop", NULL,
                               "why", 3, &out),
                     403);
    free(out);
    char *body = get_expect(t, "/api/transactions/c-held", 200);
    assert_has(body, "\"status\":\"submitted\"");
    free(body);
    itest_control(harness_server_addr(t->part), NULL, 0, "release c-held");
    trellis_trans_info_free(itest_wait_final(t, "c-held"));
    itest_pass(state);
}

static void test_token_guards_writes(void **state)
{
    char path[1024], token[128], bad[128];
    icon_token_file(path, sizeof path, token, sizeof token);
    const char *args[] = {"--http-listen", "127.0.0.1:0", "--http-token-file",
                          path, NULL};
    itest_t *t = itest_start(state, "console-token", args);
    unlink(path); /* read at start only */
    icon_saga_held(t, "c-held");
    const char *retry = "/api/transactions/c-held/retry-now";
    const char *stop = "/api/transactions/c-held/force-stop";
    char *out = NULL;
    assert_int_equal(icon_post(t, retry, NULL, "", 0, &out), 401);
    assert_has(out, "Authorization: Bearer");
    free(out);
    snprintf(bad, sizeof bad, "%s", token);
    bad[0] = bad[0] == 'a' ? 'b' : 'a';
    assert_int_equal(icon_post(t, retry, bad, "", 0, &out), 401);
    assert_has(out, "not the one configured");
    free(out);
    assert_int_equal(icon_post(t, retry, token, "", 0, &out), 200);
    assert_has(out, "\"status\":\"submitted\",\"ops_called\":");
    free(out);
    /* Bad reasons are refused as the gRPC check says, nothing changes. */
    assert_int_equal(icon_post(t, stop, token, "a\0b", 3, &out), 400);
    assert_has(out, "NUL");
    free(out);
    assert_int_equal(icon_post(t, stop, token, "", 0, &out), 400);
    free(out);
    char *body = get_expect(t, "/api/transactions/c-held", 200);
    assert_has(body, "\"status\":\"submitted\"");
    free(body);
    const char *why = "<i>refund by hand</i>";
    assert_int_equal(icon_post(t, stop, token, why, strlen(why), &out), 200);
    assert_has(out, "\"status\":\"failed\",\"reason\":\"force-stopped by "
                    "operator: \\u003ci\\u003erefund by hand");
    free(out);
    body = get_expect(t, "/api/transactions/c-held", 200);
    assert_has(body, "\"status\":\"failed\",\"reason\":\"force-stopped by "
                     "operator: ");
    assert_has(body, "\"status\":\"skipped\"");
    free(body);
    /* Retry now of a finished one: the engine's refusal, 409. */
    assert_int_equal(icon_post(t, retry, token, "", 0, &out), 409);
    free(out);
    itest_control(harness_server_addr(t->part), NULL, 0, "release c-held");
    itest_pass(state);
}

/* The Host guard (DNS rebinding): IP literals, localhost and the names of
 * --http-allow-hosts are answered, other names refused 403. */
static void test_host_guard(void **state)
{
    const char *args[] = {"--http-listen", "127.0.0.1:0", "--http-allow-hosts",
                          "trellis.internal,console.example", NULL};
    itest_t *t = itest_start(state, "console-host", args);
    static const struct {
        const char *host;
        int code;
    } cases[] = {
        {"127.0.0.1:7480", 200},
        {"localhost", 200},
        {"[::1]:7480", 200},
        {"TRELLIS.internal:7480", 200},
        {"console.example", 200},
        {"evil.example:7480", 403},
        {"trellis.internal.evil", 403},
        {"internal", 403},
        {"127.0.0.1.evil.example", 403},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char req[256], *body = NULL;
        int n = snprintf(req, sizeof req,
                         "GET /api/info HTTP/1.0\r\nHost: %s\r\n\r\n",
                         cases[i].host);
        int code = harness_http(icon_port(t), req, (size_t)n, NULL, &body);
        if (code != cases[i].code)
            fail_msg("Host %s: HTTP %d, want %d: %s", cases[i].host, code,
                     cases[i].code, body);
        if (code == 403)
            assert_has(body, "--http-allow-hosts");
        free(body);
    }
    /* An HTTP/1.0 client may name no host at all (a browser always does). */
    const char *bare = "GET /api/info HTTP/1.0\r\n\r\n";
    char *body = NULL;
    assert_int_equal(
        harness_http(icon_port(t), bare, strlen(bare), NULL, &body), 200);
    free(body);
    itest_pass(state);
}

/* trellisd with a token file it cannot use does not start, and says why. */
static void expect_refused(harness_t *h, const char *name,
                           const char *const *args, const char *says)
{
    char bin[1024], log[1024], leaf[128];
    const char *env = getenv("TRELLIS_TRELLISD");
    snprintf(bin, sizeof bin, "%s/bin/trellisd", harness_build_dir());
    const char *argv[16] = {env && *env ? env : bin, "--listen", "127.0.0.1:0",
                            "--data-dir"};
    char data[1024];
    harness_path(h, name, data, sizeof data);
    size_t n = 4;
    argv[n++] = data;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    assert_int_equal(harness_run(h, name, argv, 20000), 1);
    snprintf(leaf, sizeof leaf, "%s.log", name);
    harness_path(h, leaf, log, sizeof log);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char text[8192];
    size_t got = fread(text, 1, sizeof text - 1, f);
    text[got] = '\0';
    fclose(f);
    assert_has(text, says);
}

static void test_unusable_token_file(void **state)
{
    (void)state;
    harness_t *h = harness_new("console-badtoken");
    assert_non_null(h);
    char empty[1024], short_f[1024];
    harness_path(h, "empty-token", empty, sizeof empty);
    harness_path(h, "short-token", short_f, sizeof short_f);
    FILE *f = fopen(empty, "w");
    fputs("\n", f);
    fclose(f);
    f = fopen(short_f, "w");
    fputs("abc\n", f);
    fclose(f);
    const char *missing[] = {"--http-listen", "127.0.0.1:0",
                             "--http-token-file", "/nonexistent/token", NULL};
    expect_refused(h, "tm-missing", missing, "cannot read --http-token-file");
    const char *is_empty[] = {"--http-listen", "127.0.0.1:0",
                              "--http-token-file", empty, NULL};
    expect_refused(h, "tm-empty", is_empty, "is empty");
    const char *is_short[] = {"--http-listen", "127.0.0.1:0",
                              "--http-token-file", short_f, NULL};
    expect_refused(h, "tm-short", is_short, "use at least 16");
    const char *alone[] = {"--http-token-file", short_f, NULL};
    expect_refused(h, "tm-alone", alone, "needs --http-listen");
    const char *bad_host[] = {"--http-listen", "127.0.0.1:0",
                              "--http-allow-hosts", "good.example,bad host!",
                              NULL};
    expect_refused(h, "tm-badhost", bad_host, "give host names");
    harness_free(h, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_list_filters_and_pages, itest_teardown),
        cmocka_unit_test_teardown(test_bad_requests, itest_teardown),
        cmocka_unit_test_teardown(test_headers, itest_teardown),
        cmocka_unit_test_teardown(test_hostile_strings_escaped, itest_teardown),
        cmocka_unit_test_teardown(test_read_only_refuses_writes,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_token_guards_writes, itest_teardown),
        cmocka_unit_test_teardown(test_host_guard, itest_teardown),
        cmocka_unit_test(test_unusable_token_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
