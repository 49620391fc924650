/*
 * itest_console: what the web console's tests share (test_console.c: the
 * JSON API; test_console_browser.c: the page in headless Chromium) — the
 * console's port, GET and POST on it, an operator token file, and
 * transactions made to be looked at (a saga left held at the test
 * participant, a TCC transaction, a message, strings a page must show as
 * text and never as markup).
 *
 * Asserts (cmocka) on failure. Not thread-safe: call from the test's
 * thread.
 */
#ifndef TRELLIS_ITEST_CONSOLE_H
#define TRELLIS_ITEST_CONSOLE_H

#include "itest.h"

/* A payload whose comment clause carries markup, quotes, a control
 * character and a byte that is not UTF-8; testpart's action succeeds. */
#define ICON_HOSTILE_PAYLOAD                                                   \
    "ok;#<script>alert(1)</script><b id=\"pwned\">bold</b>'\"&\x01\xff"
/* A script whose action fails with an error message of markup and
 * quotes (testpart's say:, %XX decoded). */
#define ICON_HOSTILE_FAIL                                                      \
    "fail;action=say:%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E%3Cscript%3E"     \
    "alert(3)%3C/script%3E%22q%27%01"
/* That error message as the participant sends it. */
#define ICON_HOSTILE_ERROR                                                     \
    "<img src=x onerror=alert(2)><script>alert(3)</script>\"q'\x01"

/* The console's port, from trellisd's ready line ("console=HOST:PORT"). */
int icon_port(itest_t *t);

/* GET path; the status code, *body (may be NULL: not wanted) the body and
 * *head (may be NULL) the headers, both the caller's. */
int icon_get(itest_t *t, const char *path, char **body, char **head);

/* POST path with body text (may hold any bytes, blen of them), and
 * "Authorization: Bearer token" unless token is NULL. Returns the code;
 * *out (may be NULL) the answer's body, the caller's. */
int icon_post(itest_t *t, const char *path, const char *token, const char *body,
              size_t blen, char **out);

/* Write a fresh random token (hex) to a file outside the scratch dir
 * (trellisd needs it before its fixture starts): path[len] names the file,
 * token[tlen] gets the token. Remove the file with unlink when done. */
void icon_token_file(char *path, size_t len, char *token, size_t tlen);

/* The request timeout of the held transactions' branch calls: long enough
 * that the one held call is never abandoned and tried again (each held
 * call takes one of the test participant's threads). */
#define ICON_HELD_TIMEOUT_MS 600000

/* A saga of one step scripted "hold" submitted without waiting: it stays
 * SUBMITTED with its action's one attempt held at the test participant
 * until itest_control(..., "release GID"). Waits until the call is
 * held. */
void icon_saga_held(itest_t *t, const char *gid);

/* A TCC transaction through the SDK's helper (try called by the
 * initiator, then submit): SUCCEEDED. */
void icon_tcc(itest_t *t, const char *gid);

/* A message of one step to the test participant, sent without a local
 * transaction (trellis_msg_send) and waited until final: SUCCEEDED. */
void icon_message(itest_t *t, const char *gid);

/* A workflow run by trellis-wfsvc (harness/wfsvc.c, started here on the
 * fixture's trellisd and test participant): a saga, a local and a TCC
 * step, then commit; waited until final: SUCCEEDED. */
void icon_workflow(itest_t *t, const char *gid);

/* A saga of two steps: the first with ICON_HOSTILE_PAYLOAD, the second
 * ICON_HOSTILE_FAIL; it rolls back: FAILED. */
void icon_saga_hostile(itest_t *t, const char *gid);

/* 1 when every byte of s is printable ASCII (a JSON answer of the API). */
int icon_is_printable_ascii(const char *s);

#endif /* TRELLIS_ITEST_CONSOLE_H */
