/*
 * itest_console.c: what the console's tests share (see itest_console.h).
 */
#include "itest_console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trellis/trellis_msg.h"
#include "trellis/trellis_tcc.h"

int icon_port(itest_t *t)
{
    int port = harness_ready_port(harness_server_proc(t->tm), "console");
    if (port <= 0)
        fail_msg("trellisd's ready line names no console address");
    return port;
}

int icon_get(itest_t *t, const char *path, char **body, char **head)
{
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_true(n > 0 && (size_t)n < sizeof req);
    int code = harness_http(icon_port(t), req, (size_t)n, head, body);
    assert_true(code > 0);
    return code;
}

int icon_post(itest_t *t, const char *path, const char *token, const char *body,
              size_t blen, char **out)
{
    char auth[1200] = "";
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    size_t cap = 4096 + blen;
    char *req = malloc(cap);
    assert_non_null(req);
    int n = snprintf(req, cap,
                     "POST %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%sContent-Type: "
                     "text/plain\r\nContent-Length: %zu\r\n\r\n",
                     path, auth, blen);
    assert_true(n > 0 && (size_t)n + blen < cap);
    memcpy(req + n, body, blen);
    int code = harness_http(icon_port(t), req, (size_t)n + blen, NULL, out);
    free(req);
    assert_true(code > 0);
    return code;
}

void icon_token_file(char *path, size_t len, char *token, size_t tlen)
{
    unsigned char raw[24];
    FILE *r = fopen("/dev/urandom", "rb");
    assert_non_null(r);
    assert_int_equal(fread(raw, 1, sizeof raw, r), sizeof raw);
    fclose(r);
    assert_true(tlen > 2 * sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(token + 2 * i, 3, "%02x", raw[i]);
    snprintf(path, len, "%s/test-data/token-file-%d", harness_build_dir(),
             (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", token); /* the newline is not part of it */
    fclose(f);
}

void icon_saga_held(itest_t *t, const char *gid)
{
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    o.request_timeout_ms = ICON_HELD_TIMEOUT_MS;
    const char *payloads[] = {"hold"};
    trellis_saga_t *s = itest_saga(t, gid, payloads, 1, &o);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUBMITTED);
    trellis_saga_free(s);
    itest_control(harness_server_addr(t->part), NULL, 0, "wait-held %s 1 10000",
                  gid);
}

void icon_tcc(itest_t *t, const char *gid)
{
    char err[256], try_t[96], confirm[96], cancel[96];
    const char *part = harness_server_addr(t->part);
    snprintf(try_t, sizeof try_t, "%s/trellis.test.Part/Try", part);
    snprintf(confirm, sizeof confirm, "%s/trellis.test.Part/Confirm", part);
    snprintf(cancel, sizeof cancel, "%s/trellis.test.Part/Cancel", part);
    trellis_options_t o = itest_options();
    trellis_tcc_t *tcc = NULL;
    assert_int_equal(
        trellis_tcc_begin(t->client, gid, &o, &tcc, err, sizeof err),
        TRELLIS_OK);
    assert_int_equal(trellis_tcc_call_branch(tcc, try_t, confirm, cancel, "", 0,
                                             NULL, NULL, err, sizeof err),
                     TRELLIS_OK);
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    assert_int_equal(trellis_tcc_submit(tcc, &st, NULL, 0, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    trellis_tcc_free(tcc);
}

void icon_message(itest_t *t, const char *gid)
{
    char err[256];
    trellis_msg_t *m = NULL;
    assert_int_equal(trellis_msg_new(gid, &m, err, sizeof err), TRELLIS_OK);
    assert_true(trellis_msg_add_step(m, t->action, "", 0, err, sizeof err) >=
                0);
    trellis_options_t o = itest_options();
    trellis_msg_set_options(m, &o);
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    assert_int_equal(
        trellis_msg_send(t->client, m, 1, &st, NULL, 0, err, sizeof err),
        TRELLIS_OK);
    trellis_msg_free(m);
    trellis_trans_info_free(itest_wait_final(t, gid));
}

typedef struct {
    itest_t *t;
    const char *gid;
} known_t;

/* 1 once trellisd knows the gid (a Query finds it). */
static int gid_known(void *arg)
{
    known_t *k = arg;
    char err[256];
    trellis_trans_info_t *info = NULL;
    trellis_rc_t rc =
        trellis_query(k->t->client, k->gid, &info, err, sizeof err);
    if (info)
        trellis_trans_info_free(info);
    return rc == TRELLIS_OK;
}

void icon_workflow(itest_t *t, const char *gid)
{
    char bin[1024], local[1024];
    snprintf(bin, sizeof bin, "%s/bin/trellis-wfsvc", harness_build_dir());
    assert_non_null(harness_path(t->h, "wfsvc.local", local, sizeof local));
    mkdir(local, 0755);
    const char *const args[] = {"--tm",        harness_server_addr(t->tm),
                                "--part",      harness_server_addr(t->part),
                                "--local-dir", local,
                                NULL};
    harness_server_t *svc = harness_server_start(t->h, "wfsvc", bin, args);
    assert_non_null(svc);
    itest_control(harness_server_addr(svc), NULL, 0,
                  "start %s 0 saga:ok|local|tcc:ok|end:commit", gid);
    /* wfsvc starts the run on a thread of its own. */
    known_t k = {t, gid};
    assert_true(harness_poll(gid_known, &k, ITEST_FINAL_TIMEOUT_MS, 20));
    trellis_trans_info_t *info = itest_wait_final(t, gid);
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_free(info);
}

void icon_saga_hostile(itest_t *t, const char *gid)
{
    const char *payloads[] = {ICON_HOSTILE_PAYLOAD, ICON_HOSTILE_FAIL};
    trellis_saga_t *s = itest_saga(t, gid, payloads, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_FAILED);
    trellis_saga_free(s);
}

int icon_is_printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}
