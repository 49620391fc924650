/*
 * itest.c: the integration tests' shared fixture and assertions (see
 * itest.h).
 */
#include "itest.h"

#include "grpc/health/v1/health.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TM_ARGS 32

static void fixture_free(itest_t *t, int passed)
{
    if (!t)
        return;
    trellis_client_free(t->client);
    harness_free(t->h, passed);
    free(t);
}

static harness_server_t *start_tm(itest_t *t, const char *const *extra)
{
    char rim[16], rtm[16];
    const char *argv[MAX_TM_ARGS + 1];
    size_t n = 0;
    snprintf(rim, sizeof rim, "%d", ITEST_RETRY_INTERVAL_MS);
    snprintf(rtm, sizeof rtm, "%d", ITEST_REQUEST_TIMEOUT_MS);
    argv[n++] = "--retry-interval-ms";
    argv[n++] = rim;
    argv[n++] = "--request-timeout-ms";
    argv[n++] = rtm;
    for (size_t i = 0; extra && extra[i]; i++) {
        assert_true(n < MAX_TM_ARGS);
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    return harness_tm_start(t->h, "trellisd", argv);
}

itest_t *itest_start(void **state, const char *name,
                     const char *const *extra_tm_args)
{
    itest_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    *state = t;
    t->h = harness_new(name);
    assert_non_null(t->h);
    t->tm = start_tm(t, extra_tm_args);
    assert_non_null(t->tm);
    t->part = harness_testpart_start(t->h, "testpart", NULL);
    assert_non_null(t->part);
    snprintf(t->action, sizeof t->action, "%s/trellis.test.Part/Action",
             harness_server_addr(t->part));
    snprintf(t->compensate, sizeof t->compensate,
             "%s/trellis.test.Part/Compensate", harness_server_addr(t->part));
    itest_reconnect(t);
    return t;
}

void itest_reconnect(itest_t *t)
{
    char err[256];
    trellis_client_free(t->client);
    t->client = NULL;
    trellis_rc_t rc = trellis_client_new(harness_server_addr(t->tm), 30000,
                                         &t->client, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_client_new: rc %d: %s", rc, err);
}

void itest_crash_while_held(itest_t *t, const char *gid, int n)
{
    const char *part = harness_server_addr(t->part);
    itest_control(part, NULL, 0, "wait-held %s %d %d", gid, n,
                  ITEST_FINAL_TIMEOUT_MS);
    assert_int_equal(harness_server_kill(t->tm), 0);
    itest_control(part, NULL, 0, "release %s", gid);
    assert_int_equal(harness_server_restart(t->tm), 0);
    itest_reconnect(t);
}

void itest_pass(void **state)
{
    itest_t *t = *state;
    trellis_client_free(t->client);
    t->client = NULL;
    int bad = harness_stop_all(t->h);
    if (bad)
        fail_msg("%d process(es) of the test ended badly", bad);
    fixture_free(t, 1);
    *state = NULL;
}

int itest_teardown(void **state)
{
    fixture_free(*state, 0);
    *state = NULL;
    return 0;
}

trellis_options_t itest_options(void)
{
    trellis_options_t o;
    memset(&o, 0, sizeof o);
    o.wait_result = 1;
    o.retry_interval_ms = ITEST_RETRY_INTERVAL_MS;
    o.request_timeout_ms = ITEST_REQUEST_TIMEOUT_MS;
    return o;
}

trellis_saga_t *itest_saga(itest_t *t, const char *gid,
                           const char *const *payloads, size_t n,
                           const trellis_options_t *o)
{
    char err[256];
    trellis_saga_t *s = NULL;
    trellis_rc_t rc = trellis_saga_new(gid, &s, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_saga_new(%s): rc %d: %s", gid, rc, err);
    for (size_t i = 0; i < n; i++) {
        int idx =
            trellis_saga_add_step(s, t->action, t->compensate, payloads[i],
                                  strlen(payloads[i]), err, sizeof err);
        if (idx != (int)i)
            fail_msg("trellis_saga_add_step %zu: %d: %s", i, idx, err);
    }
    trellis_options_t def = itest_options();
    trellis_saga_set_options(s, o ? o : &def);
    return s;
}

trellis_trans_status_t itest_submit(itest_t *t, const trellis_saga_t *s,
                                    char *reason, size_t reasonlen)
{
    char err[512], why[512];
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc = trellis_saga_submit(t->client, s, &st, why, sizeof why,
                                          err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_saga_submit: rc %d: %s", rc, err);
    if (reason)
        snprintf(reason, reasonlen, "%s", why);
    return st;
}

trellis_trans_info_t *itest_query(itest_t *t, const char *gid)
{
    char err[512];
    trellis_trans_info_t *info = NULL;
    trellis_rc_t rc = trellis_query(t->client, gid, &info, err, sizeof err);
    if (rc != TRELLIS_OK)
        fail_msg("trellis_query(%s): rc %d: %s", gid, rc, err);
    assert_non_null(info);
    return info;
}

/* Status of gid, or -1 while trellisd does not answer (e.g. restarting). */
static int try_status(itest_t *t, const char *gid, char *err, size_t errlen)
{
    trellis_trans_info_t *info = NULL;
    trellis_rc_t rc = trellis_query(t->client, gid, &info, err, errlen);
    if (rc == TRELLIS_UNAVAILABLE || rc == TRELLIS_DEADLINE_EXCEEDED)
        return -1;
    if (rc != TRELLIS_OK)
        fail_msg("trellis_query(%s): rc %d: %s", gid, rc, err);
    int st = info->status;
    trellis_trans_info_free(info);
    return st;
}

trellis_trans_info_t *itest_wait_final(itest_t *t, const char *gid)
{
    int64_t deadline = harness_mono_ms() + ITEST_FINAL_TIMEOUT_MS;
    char err[512] = "";
    for (;;) {
        int st = try_status(t, gid, err, sizeof err);
        if (st == TRELLIS_TRANS_SUCCEEDED || st == TRELLIS_TRANS_FAILED)
            return itest_query(t, gid);
        if (harness_mono_ms() > deadline)
            fail_msg(
                "%s still %s after %d ms (%s)", gid,
                st < 0 ? "unreachable"
                       : trellis_trans_status_name((trellis_trans_status_t)st),
                ITEST_FINAL_TIMEOUT_MS, err);
        harness_sleep_ms(20);
    }
}

const trellis_op_info_t *itest_op(const trellis_branch_info_t *b,
                                  trellis_op_t op)
{
    for (size_t i = 0; i < b->n_ops; i++)
        if (b->ops[i].op == op)
            return &b->ops[i];
    fail_msg("branch %s has no %s op", b->branch_id, trellis_op_name(op));
    return NULL;
}

void itest_part_state(itest_t *t, const char *gid, harness_part_state_t *s)
{
    assert_int_equal(harness_part_state(harness_server_addr(t->part), gid, s),
                     0);
}

void itest_wait_calls(itest_t *t, const char *gid, size_t n)
{
    int64_t deadline = harness_mono_ms() + ITEST_FINAL_TIMEOUT_MS;
    for (;;) {
        harness_part_state_t s;
        itest_part_state(t, gid, &s);
        size_t have = s.n_calls;
        harness_part_state_free(&s);
        if (have >= n)
            return;
        if (harness_mono_ms() > deadline)
            fail_msg("%s: %zu participant calls, want %zu", gid, have, n);
        harness_sleep_ms(20);
    }
}

int itest_step_of(const trellis_trans_info_t *info, const char *branch_id)
{
    for (size_t i = 0; i < info->n_branches; i++)
        if (!strcmp(info->branches[i].branch_id, branch_id))
            return (int)i;
    return -1;
}

static char op_letter(const char *op)
{
    static const char *const names[] = {"action", "compensate", "try",
                                        "confirm", "cancel"};
    static const char letters[] = "ACTFX";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(op, names[i]))
            return letters[i];
    return '?';
}

char *itest_journal(const trellis_trans_info_t *info,
                    const harness_part_state_t *s, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->n_calls && used < len; i++) {
        const harness_part_call_t *c = &s->calls[i];
        int ok = !strcmp(c->answer, "ok");
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%c%d%s%s", i ? " " : "",
                             op_letter(c->op), itest_step_of(info, c->branch),
                             ok ? "" : ":", ok ? "" : c->answer);
    }
    return buf;
}

static int call_matches(const trellis_trans_info_t *info,
                        const harness_part_call_t *c, int step, const char *op,
                        const char *effect)
{
    return itest_step_of(info, c->branch) == step && !strcmp(c->op, op) &&
           (!effect || !strcmp(c->effect, effect));
}

const harness_part_call_t *itest_call(const trellis_trans_info_t *info,
                                      const harness_part_state_t *s, int step,
                                      const char *op, const char *effect)
{
    for (size_t i = 0; i < s->n_calls; i++)
        if (call_matches(info, &s->calls[i], step, op, effect))
            return &s->calls[i];
    return NULL;
}

int itest_count(const trellis_trans_info_t *info, const harness_part_state_t *s,
                int step, const char *op, const char *effect)
{
    int n = 0;
    for (size_t i = 0; i < s->n_calls; i++)
        n += call_matches(info, &s->calls[i], step, op, effect);
    return n;
}

void itest_control(const char *addr, char *reply, size_t len, const char *fmt,
                   ...)
{
    char cmd[4096], got[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (harness_part_cmd(addr, cmd, got, sizeof got) != 0)
        fail_msg("%s: %s: %s", addr, cmd, got);
    if (reply)
        snprintf(reply, len, "%s", got);
}

trellis_rc_t itest_health(itest_t *t, const char *service, int *status)
{
    Grpc__Health__V1__HealthCheckRequest req =
        GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    uint8_t buf[256];
    size_t len = grpc__health__v1__health_check_request__get_packed_size(&req);
    assert_true(len <= sizeof buf);
    grpc__health__v1__health_check_request__pack(&req, buf);

    uint8_t *reply = NULL;
    size_t reply_len = 0;
    char err[256];
    trellis_rc_t rc = trellis_call_unary(
        harness_server_addr(t->tm), "/grpc.health.v1.Health/Check", buf, len,
        NULL, NULL, 0, 5000, &reply, &reply_len, err, sizeof err);
    *status = -1;
    if (rc == TRELLIS_OK) {
        Grpc__Health__V1__HealthCheckResponse *r =
            grpc__health__v1__health_check_response__unpack(NULL, reply_len,
                                                            reply);
        assert_non_null(r);
        *status = (int)r->status;
        grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    }
    free(reply);
    return rc;
}

/* ---- trellisctl ---------------------------------------------------------- */

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

int itest_ctl(itest_t *t, const char *name, const char *const *args, char *out,
              size_t outlen)
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
