/*
 * test_console_browser.c: the web console in a real browser. Headless
 * Chromium (harness_browser_*) loads the pages from a real trellisd
 * holding transactions of every mode and status — sagas that succeeded
 * and were compensated, a TCC transaction, an XA branch, a workflow
 * (trellis-wfsvc: saga, local and TCC steps), a message, one
 * begun and left prepared, one held unfinished at the test participant,
 * one held while it rolls back (aborting), one force-stopped through the
 * API — and the test reads what the page shows
 * after its scripts ran: the rows and their statuses, filters and pages,
 * each op's result, the timeline chart's SVG (one marker per attempt, the
 * decision, the end), the refresh of an unfinished one, the operator
 * actions. The second test sends markup, quotes and control characters
 * through payloads, a participant's error message, an initiator's abort
 * reason and an operator's force-stop reason, and checks they are text in
 * the DOM and never elements. Screenshots go to
 * ${build}/console-screenshots/.
 *
 * Without any chromium the program exits 77, which ctest reports as
 * skipped (SKIP_RETURN_CODE); CI installs chromium, so it runs there. A
 * TRELLIS_CHROMIUM naming no executable is a failure, not a skip.
 */
#include "itest_console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SKIP_CODE 77

/* ---- the page ------------------------------------------------------------ */

static char *page(itest_t *t, const char *name, const char *path)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", icon_port(t), path);
    char *dom = NULL;
    if (harness_browser_dom(t->h, name, url, &dom) != 0)
        fail_msg("the browser could not load %s", url);
    return dom;
}

static void assert_has(const char *dom, const char *text)
{
    if (!strstr(dom, text))
        fail_msg("expected %s in the page:\n%s", text, dom);
}

static void assert_lacks(const char *dom, const char *text)
{
    if (strstr(dom, text))
        fail_msg("did not expect %s in the page:\n%s", text, dom);
}

static int count_of(const char *dom, const char *text)
{
    int n = 0;
    for (const char *p = dom; (p = strstr(p, text)); p++)
        n++;
    return n;
}

static void assert_row(const char *dom, const char *gid, const char *status)
{
    char want[256];
    snprintf(want, sizeof want,
             "<tr class=\"tx\" data-gid=\"%s\" data-status=\"%s\">", gid,
             status);
    assert_has(dom, want);
}

static void assert_op(const char *dom, const char *branch, const char *op,
                      const char *status)
{
    char want[256];
    snprintf(want, sizeof want,
             "<tr class=\"op\" data-branch=\"%s\" data-op=\"%s\" "
             "data-status=\"%s\">",
             branch, op, status);
    assert_has(dom, want);
}

/* A PNG of the page at path under ${build}/console-screenshots/name.png. */
static void screenshot(itest_t *t, const char *name, const char *path)
{
    char dir[1024], png[1200], url[512], run[160];
    snprintf(dir, sizeof dir, "%s/console-screenshots", harness_build_dir());
    mkdir(dir, 0755);
    snprintf(png, sizeof png, "%s/%s.png", dir, name);
    unlink(png);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", icon_port(t), path);
    snprintf(run, sizeof run, "shot-%s", name);
    assert_int_equal(
        harness_browser_screenshot(t->h, run, url, png, 1280, 1400), 0);
    FILE *f = fopen(png, "rb");
    assert_non_null(f);
    unsigned char magic[8] = {0};
    assert_int_equal(fread(magic, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(magic, "\x89PNG\r\n\x1a\n", 8);
}

/* ---- the transactions ------------------------------------------------------
 */

static void saga(itest_t *t, const char *gid, const char *step2,
                 trellis_trans_status_t want)
{
    const char *payloads[] = {"action=reply:booked-42", step2};
    trellis_saga_t *s = itest_saga(t, gid, payloads, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), want);
    trellis_saga_free(s);
}

static void begun(itest_t *t, const char *gid)
{
    char err[256];
    trellis_options_t o = itest_options();
    assert_int_equal(trellis_begin(t->client, gid, &o, err, sizeof err),
                     TRELLIS_OK);
}

/* A saga whose second step fails and whose first compensation is held at
 * the test participant: it stays ABORTING until released. */
static void aborting(itest_t *t, const char *gid)
{
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    o.request_timeout_ms = ICON_HELD_TIMEOUT_MS;
    const char *payloads[] = {"compensate=hold", "fail"};
    trellis_saga_t *s = itest_saga(t, gid, payloads, 2, &o);
    itest_submit(t, s, NULL, 0);
    trellis_saga_free(s);
    itest_control(harness_server_addr(t->part), NULL, 0, "wait-held %s 1 10000",
                  gid);
}

/* An XA branch registered by the initiator (its prepare is the
 * initiator's), committed on submit: the test participant answers the
 * commit. */
static void xa(itest_t *t, const char *gid)
{
    char err[256], commit[96], rollback[96];
    const char *part = harness_server_addr(t->part);
    snprintf(commit, sizeof commit, "%s/trellis.test.Part/Commit", part);
    snprintf(rollback, sizeof rollback, "%s/trellis.test.Part/Rollback", part);
    begun(t, gid);
    trellis_branch_op_t ops[] = {{TRELLIS_OP_COMMIT, commit},
                                 {TRELLIS_OP_ROLLBACK, rollback}};
    assert_int_equal(trellis_register_branch(t->client, gid, "01",
                                             TRELLIS_MODE_XA, ops, 2, "", 0,
                                             err, sizeof err),
                     TRELLIS_OK);
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    assert_int_equal(
        trellis_submit(t->client, gid, 1, &st, NULL, 0, err, sizeof err),
        TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
}

static void force_stop(itest_t *t, const char *gid, const char *token,
                       const char *reason)
{
    char path[256], *out = NULL;
    snprintf(path, sizeof path, "/api/transactions/%s/force-stop", gid);
    assert_int_equal(icon_post(t, path, token, reason, strlen(reason), &out),
                     200);
    free(out);
}

/* Attempts of every op of gid, as Query counts them (the chart draws one
 * marker per attempt). */
static int attempts_of(itest_t *t, const char *gid)
{
    trellis_trans_info_t *info = itest_query(t, gid);
    int n = 0;
    for (size_t b = 0; b < info->n_branches; b++)
        for (size_t o = 0; o < info->branches[b].n_ops; o++)
            n += (int)info->branches[b].ops[o].n_attempt_ms;
    trellis_trans_info_free(info);
    return n;
}

/* ---- the checks -----------------------------------------------------------
 */

static void check_list(itest_t *t)
{
    char *dom = page(t, "list", "/");
    assert_has(dom, "<span id=\"access\">operator actions enabled");
    assert_has(dom, "<p class=\"note\" id=\"count\">10 transactions on this "
                    "page</p>");
    assert_row(dom, "cb-saga-ok", "succeeded");
    assert_row(dom, "cb-saga-comp", "failed");
    assert_row(dom, "cb-tcc", "succeeded");
    assert_row(dom, "cb-msg", "succeeded");
    assert_row(dom, "cb-prepared", "prepared");
    assert_row(dom, "cb-held", "submitted");
    assert_row(dom, "cb-stopped", "failed");
    assert_row(dom, "cb-xa", "succeeded");
    assert_row(dom, "cb-aborting", "aborting");
    assert_row(dom, "cb-workflow", "succeeded");
    assert_has(dom, "<a href=\"/tx?gid=cb-held\" class=\"gid\">cb-held</a>");
    assert_has(dom, "force-stopped by operator: refund by hand");
    free(dom);

    dom = page(t, "list-failed", "/?status=failed");
    assert_has(dom, "<p class=\"note\" id=\"count\">2 transactions");
    assert_row(dom, "cb-saga-comp", "failed");
    assert_row(dom, "cb-stopped", "failed");
    assert_lacks(dom, "data-gid=\"cb-saga-ok\"");
    assert_has(dom, "<option value=\"failed\" selected=\"\">");
    free(dom);

    dom = page(t, "list-page", "/?limit=3");
    assert_has(dom, "<p class=\"note\" id=\"count\">3 transactions");
    assert_has(dom, "id=\"next-page\">next page</a>");
    free(dom);

    dom = page(t, "list-bad", "/?limit=0");
    assert_has(dom, "<p class=\"error\" id=\"error\">limit \"0\" is not a "
                    "number from 1 to 1000</p>");
    free(dom);
    screenshot(t, "list", "/");
}

/* The compensated saga: each op's status and result, the chart. */
static void check_compensated(itest_t *t)
{
    char *dom = page(t, "tx-comp", "/tx?gid=cb-saga-comp");
    assert_has(dom, "<span class=\"mono\" id=\"gid\">cb-saga-comp</span>");
    assert_has(dom, "<span class=\"status st-failed\">failed</span>");
    assert_op(dom, "01", "action", "succeeded");
    assert_op(dom, "02", "action", "failed");
    assert_op(dom, "01", "compensate", "succeeded");
    assert_has(dom, "testpart: action fail"); /* 02's last error */
    /* 01's action replied "booked-42": its compensation log. */
    assert_has(dom, "<pre class=\"bytes\">booked-42</pre>");
    assert_has(dom, "finished; not refreshed");
    assert_has(dom, "<svg class=\"timeline\" id=\"timeline\"");
    assert_int_equal(count_of(dom, "<circle class=\"attempt\""),
                     attempts_of(t, "cb-saga-comp"));
    assert_has(dom, "<g class=\"row\" data-branch=\"02\" data-op=\"action\">");
    assert_has(dom, "class=\"bar op-failed\"");
    assert_has(dom, "class=\"end op-failed\"");
    assert_has(dom, "<line class=\"mark decision\"");
    assert_has(dom, ">decision: rollback</text>");
    assert_has(dom, "<line class=\"mark finished\"");
    assert_has(dom, ">finished: failed</text>");
    assert_lacks(dom, "id=\"actions\""); /* nothing to act on */
    free(dom);
    screenshot(t, "saga-compensated", "/tx?gid=cb-saga-comp");
}

static void check_other_modes(itest_t *t)
{
    char *dom = page(t, "tx-ok", "/tx?gid=cb-saga-ok");
    assert_op(dom, "02", "action", "succeeded");
    assert_op(dom, "01", "compensate", "skipped");
    assert_has(dom, ">decision: commit</text>");
    assert_has(dom, ">finished: succeeded</text>");
    free(dom);

    dom = page(t, "tx-tcc", "/tx?gid=cb-tcc");
    assert_has(dom, "<h3>branch 01 (tcc, registered)</h3>");
    assert_op(dom, "01", "confirm", "succeeded");
    assert_op(dom, "01", "cancel", "skipped");
    assert_has(dom, ">decision: commit</text>");
    free(dom);
    screenshot(t, "tcc", "/tx?gid=cb-tcc");

    dom = page(t, "tx-msg", "/tx?gid=cb-msg");
    assert_has(dom, "(msg)</h3>");
    assert_has(dom, "data-op=\"action\" data-status=\"succeeded\">");
    assert_has(dom, ">finished: succeeded</text>");
    free(dom);
    screenshot(t, "message", "/tx?gid=cb-msg");

    dom = page(t, "tx-prepared", "/tx?gid=cb-prepared");
    assert_has(dom, "<span class=\"status st-prepared\">prepared</span>");
    assert_has(dom, "unfinished: refreshed every 2 s");
    free(dom);

    dom = page(t, "tx-xa", "/tx?gid=cb-xa");
    assert_has(dom, "<h3>branch 01 (xa, registered)</h3>");
    assert_op(dom, "01", "commit", "succeeded");
    assert_op(dom, "01", "rollback", "skipped");
    free(dom);

    dom = page(t, "tx-workflow", "/tx?gid=cb-workflow");
    assert_has(dom, "<h3>branch 00 (workflow, registered)</h3>");
    assert_op(dom, "00", "resume", "succeeded");
    assert_op(dom, "03", "try", "succeeded");
    assert_has(dom, "<h3>branch 02 (local, registered)</h3>");
    assert_op(dom, "01", "action", "succeeded");
    assert_op(dom, "03", "confirm", "succeeded");
    assert_has(dom, ">finished: succeeded</text>");
    free(dom);
    screenshot(t, "workflow", "/tx?gid=cb-workflow");

    dom = page(t, "tx-aborting", "/tx?gid=cb-aborting");
    assert_has(dom, "<span class=\"status st-aborting\">aborting</span>");
    assert_op(dom, "02", "action", "failed");
    assert_op(dom, "02", "compensate", "succeeded");
    assert_op(dom, "01", "compensate", "pending");
    assert_has(dom, ">decision: rollback</text>");
    assert_has(dom, "unfinished: refreshed every 2 s");
    free(dom);
    screenshot(t, "aborting", "/tx?gid=cb-aborting");

    dom = page(t, "tx-stopped", "/tx?gid=cb-stopped");
    assert_has(dom, "<span id=\"reason\">force-stopped by operator: refund "
                    "by hand</span>");
    assert_op(dom, "01", "action", "skipped");
    free(dom);

    dom = page(t, "tx-none", "/tx?gid=no-such");
    assert_has(dom, "<p class=\"error\" id=\"error\">no transaction with gid "
                    "no-such</p>");
    free(dom);
}

/* The held saga: unfinished, refreshed, its pending action on the chart,
 * and the operator's buttons (a token is configured). */
static void check_unfinished(itest_t *t)
{
    char *dom = page(t, "tx-held", "/tx?gid=cb-held");
    assert_has(dom, "<span class=\"status st-submitted\">submitted</span>");
    assert_has(dom, "unfinished: refreshed every 2 s");
    assert_op(dom, "01", "action", "pending");
    assert_has(dom, "class=\"bar op-pending\"");
    assert_int_equal(count_of(dom, "<circle class=\"attempt\""), 1);
    assert_lacks(dom, "class=\"mark finished\"");
    assert_has(dom, "<div class=\"actions\" id=\"actions\">");
    assert_has(dom, "<button type=\"button\" id=\"retry-now\">Retry now");
    assert_has(dom, "<button type=\"button\" id=\"force-stop\">Force stop");
    free(dom);
    screenshot(t, "unfinished", "/tx?gid=cb-held");
}

static void test_pages(void **state)
{
    char path[1024], token[128];
    icon_token_file(path, sizeof path, token, sizeof token);
    const char *args[] = {"--http-listen", "127.0.0.1:0", "--http-token-file",
                          path, NULL};
    itest_t *t = itest_start(state, "console-browser", args);
    unlink(path);
    saga(t, "cb-saga-ok", "", TRELLIS_TRANS_SUCCEEDED);
    saga(t, "cb-saga-comp", "fail", TRELLIS_TRANS_FAILED);
    icon_tcc(t, "cb-tcc");
    icon_message(t, "cb-msg");
    begun(t, "cb-prepared");
    icon_saga_held(t, "cb-held");
    icon_saga_held(t, "cb-stopped");
    force_stop(t, "cb-stopped", token, "refund by hand");
    xa(t, "cb-xa");
    aborting(t, "cb-aborting");
    icon_workflow(t, "cb-workflow");

    check_list(t);
    check_compensated(t);
    check_other_modes(t);
    check_unfinished(t);

    const char *part = harness_server_addr(t->part);
    itest_control(part, NULL, 0, "release cb-held");
    itest_control(part, NULL, 0, "release cb-stopped");
    itest_control(part, NULL, 0, "release cb-aborting");
    trellis_trans_info_free(itest_wait_final(t, "cb-held"));
    trellis_trans_info_free(itest_wait_final(t, "cb-aborting"));
    itest_pass(state);
}

/* ---- hostile strings ------------------------------------------------------
 */

/* No element that hostile text could have made. */
static void assert_no_injected_elements(const char *dom)
{
    assert_int_equal(count_of(dom, "<script"), 1); /* console.js */
    assert_lacks(dom, "<img");
    assert_lacks(dom, "<b ");
    assert_lacks(dom, "<b>");
    assert_lacks(dom, "<i>");
}

static void test_hostile_strings_are_text(void **state)
{
    char path[1024], token[128], err[256];
    icon_token_file(path, sizeof path, token, sizeof token);
    const char *args[] = {"--http-listen", "127.0.0.1:0", "--http-token-file",
                          path, NULL};
    itest_t *t = itest_start(state, "console-hostile-page", args);
    unlink(path);
    icon_saga_hostile(t, "cb-hostile");
    begun(t, "cb-aborted");
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    assert_int_equal(trellis_abort(t->client, "cb-aborted",
                                   "<img src=x onerror=alert(5)>", 1, &st, err,
                                   sizeof err),
                     TRELLIS_OK);
    icon_saga_held(t, "cb-stop-markup");
    force_stop(t, "cb-stop-markup", token, "<i>stopped</i><script>alert(6)");

    char *dom = page(t, "hostile-list", "/");
    assert_no_injected_elements(dom);
    assert_has(dom, "&lt;img src=x onerror=alert(5)&gt;");
    assert_has(dom, "force-stopped by operator: &lt;i&gt;stopped&lt;/i&gt;"
                    "&lt;script&gt;alert(6)");
    free(dom);

    dom = page(t, "hostile-tx", "/tx?gid=cb-hostile");
    assert_no_injected_elements(dom);
    /* The payload: markup as text, the control character kept, the byte
     * that is not UTF-8 shown as U+FFFD. */
    assert_has(dom, "<pre class=\"bytes\">ok;#&lt;script&gt;alert(1)&lt;/"
                    "script&gt;&lt;b id=\"pwned\"&gt;bold&lt;/b&gt;'\"&amp;"
                    "\x01\xef\xbf\xbd</pre>");
    /* The participant's error message, in 02's last-error cell. */
    assert_has(dom, "<td class=\"mono last-error\">business failure: "
                    "&lt;img src=x "
                    "onerror=alert(2)&gt;&lt;script&gt;alert(3)&lt;/"
                    "script&gt;\"q'\x01</td>");
    free(dom);
    screenshot(t, "hostile", "/tx?gid=cb-hostile");

    dom = page(t, "hostile-stop", "/tx?gid=cb-stop-markup");
    assert_no_injected_elements(dom);
    assert_has(dom, "<span id=\"reason\">force-stopped by operator: "
                    "&lt;i&gt;stopped&lt;/i&gt;&lt;script&gt;alert(6)</span>");
    free(dom);
    itest_control(harness_server_addr(t->part), NULL, 0,
                  "release cb-stop-markup");
    itest_pass(state);
}

int main(void)
{
    if (!harness_browser()) {
        const char *named = getenv("TRELLIS_CHROMIUM");
        if (named && *named) { /* asked for one that is not there: fail */
            printf("TRELLIS_CHROMIUM=%s is not an executable\n", named);
            return 1;
        }
        printf("SKIP: no chromium (install Debian's chromium, or set "
               "TRELLIS_CHROMIUM)\n");
        return SKIP_CODE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pages, itest_teardown),
        cmocka_unit_test_teardown(test_hostile_strings_are_text,
                                  itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
