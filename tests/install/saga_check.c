/*
 * saga_check: a program built OUTSIDE the Trellis tree against an
 * installed SDK (tests/install/run.sh builds it once with pkg-config and
 * once with find_package(Trellis), shared and static), as a user's
 * service would be. It is both sides of a saga: it serves the steps itself
 * (trellis_participant.h) and submits sagas to the installed trellisd
 * given on its command line, then checks what a user relies on:
 *
 *   - a 2-step saga succeeds: both actions ran once, nothing compensated;
 *   - a saga whose second action fails (ABORTED) ends failed and both
 *     called steps are compensated, the failed one included;
 *   - Query reads the outcome back; the library and the headers it was
 *     compiled with are the same version.
 *
 * Usage: saga_check TM_HOST:PORT NAME. Prints what it checks; exit 0 when
 * every check held, 1 otherwise. Owns its participant and client for the
 * length of main.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis.h"
#include "trellis/trellis_participant.h"

#define SERVICE "/trellis.install.Check/"

/* One served method: how often it was called (written by the
 * participant's worker threads, under mu) and whether it answers with a
 * business failure. */
typedef struct {
    pthread_mutex_t *mu;
    int calls;
    int fails;
} method_t;

static void on_call(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                    size_t len, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)payload, (void)len;
    method_t *m = user;
    pthread_mutex_lock(m->mu);
    m->calls++;
    pthread_mutex_unlock(m->mu);
    if (m->fails) {
        reply->code = TRELLIS_REPLY_FAILURE;
        snprintf(reply->message, sizeof(reply->message), "no seats left");
    }
}

/* The three methods the sagas call. */
typedef struct {
    pthread_mutex_t mu;
    method_t reserve, release, fail;
} calls_t;

static int failures;

static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failures++;
}

static void snapshot(calls_t *c, int *reserve, int *release, int *fail)
{
    pthread_mutex_lock(&c->mu);
    *reserve = c->reserve.calls;
    *release = c->release.calls;
    *fail = c->fail.calls;
    pthread_mutex_unlock(&c->mu);
}

/* Serve the three methods on a free port of 127.0.0.1; the port. */
static int serve(calls_t *calls, trellis_participant_t **out)
{
    char err[512];
    int port = 0;
    trellis_participant_t *p = NULL;
    if (trellis_participant_new(2, &p, err, sizeof(err)) != TRELLIS_OK ||
        trellis_participant_handle(p, SERVICE "Reserve", on_call,
                                   &calls->reserve, err,
                                   sizeof(err)) != TRELLIS_OK ||
        trellis_participant_handle(p, SERVICE "Release", on_call,
                                   &calls->release, err,
                                   sizeof(err)) != TRELLIS_OK ||
        trellis_participant_handle(p, SERVICE "Fail", on_call, &calls->fail,
                                   err, sizeof(err)) != TRELLIS_OK ||
        trellis_participant_start(p, "127.0.0.1:0", &port, err, sizeof(err)) !=
            TRELLIS_OK) {
        fprintf(stderr, "saga_check: participant: %s\n", err);
        trellis_participant_free(p);
        return -1;
    }
    *out = p;
    return port;
}

/* Submit gid's saga: a Reserve step, then `second` (Reserve or Fail),
 * each compensated by Release, waiting for the outcome. */
static trellis_trans_status_t run_saga(trellis_client_t *c, int port,
                                       const char *gid, const char *second)
{
    char act1[128], act2[128], comp[128], err[512], reason[256] = "";
    snprintf(act1, sizeof(act1), "127.0.0.1:%d" SERVICE "Reserve", port);
    snprintf(act2, sizeof(act2), "127.0.0.1:%d" SERVICE "%s", port, second);
    snprintf(comp, sizeof(comp), "127.0.0.1:%d" SERVICE "Release", port);
    trellis_saga_t *s = NULL;
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_options_t o = {.wait_result = 1};
    if (trellis_saga_new(gid, &s, err, sizeof(err)) != TRELLIS_OK ||
        trellis_saga_add_step(s, act1, comp, "1", 1, err, sizeof(err)) < 0 ||
        trellis_saga_add_step(s, act2, comp, "2", 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "saga_check: saga %s: %s\n", gid, err);
        trellis_saga_free(s);
        return st;
    }
    trellis_saga_set_options(s, &o);
    if (trellis_saga_submit(c, s, &st, reason, sizeof(reason), err,
                            sizeof(err)) != TRELLIS_OK)
        fprintf(stderr, "saga_check: submit %s: %s\n", gid, err);
    printf("saga %s: %s%s%s\n", gid, trellis_trans_status_name(st),
           reason[0] ? ": " : "", reason);
    trellis_saga_free(s);
    return st;
}

static trellis_trans_status_t queried_status(trellis_client_t *c,
                                             const char *gid)
{
    char err[512];
    trellis_trans_info_t *info = NULL;
    if (trellis_query(c, gid, &info, err, sizeof(err)) != TRELLIS_OK) {
        fprintf(stderr, "saga_check: query %s: %s\n", gid, err);
        return TRELLIS_TRANS_UNSPECIFIED;
    }
    trellis_trans_status_t st = info->status;
    trellis_trans_info_free(info);
    return st;
}

static void run_checks(trellis_client_t *c, int port, calls_t *calls,
                       const char *name)
{
    char gid_ok[96], gid_fail[96];
    int reserve, release, fail;
    snprintf(gid_ok, sizeof(gid_ok), "install-%s-ok", name);
    snprintf(gid_fail, sizeof(gid_fail), "install-%s-fail", name);

    check(run_saga(c, port, gid_ok, "Reserve") == TRELLIS_TRANS_SUCCEEDED,
          "the 2-step saga succeeded");
    snapshot(calls, &reserve, &release, &fail);
    check(reserve == 2 && release == 0, "both actions ran once, none undone");

    check(run_saga(c, port, gid_fail, "Fail") == TRELLIS_TRANS_FAILED,
          "the saga whose second action failed ended failed");
    snapshot(calls, &reserve, &release, &fail);
    check(reserve == 3 && fail == 1 && release == 2,
          "both called steps were compensated");

    check(queried_status(c, gid_ok) == TRELLIS_TRANS_SUCCEEDED &&
              queried_status(c, gid_fail) == TRELLIS_TRANS_FAILED,
          "Query reads both outcomes back");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: saga_check TM_HOST:PORT NAME\n");
        return 2;
    }
    printf("libtrellis %s, headers %s\n", trellis_version(),
           TRELLIS_VERSION_STRING);
    check(strcmp(trellis_version(), TRELLIS_VERSION_STRING) == 0,
          "library and headers are one version");

    calls_t calls = {.mu = PTHREAD_MUTEX_INITIALIZER};
    calls.reserve.mu = calls.release.mu = calls.fail.mu = &calls.mu;
    calls.fail.fails = 1;
    trellis_participant_t *p = NULL;
    int port = serve(&calls, &p);
    if (port < 0)
        return 1;
    char err[512];
    trellis_client_t *c = NULL;
    if (trellis_client_new(argv[1], 0, &c, err, sizeof(err)) != TRELLIS_OK) {
        fprintf(stderr, "saga_check: client: %s\n", err);
        trellis_participant_free(p);
        return 1;
    }
    run_checks(c, port, &calls, argv[2]);
    trellis_client_free(c);
    trellis_participant_free(p);
    printf("%s\n", failures ? "saga_check: FAILED" : "saga_check: passed");
    return failures ? 1 : 0;
}
