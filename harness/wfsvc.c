/*
 * trellis-wfsvc: a workflow service for crash tests. It serves one
 * workflow function, "steps", whose input is a script of the steps to take,
 * and a Control method through which a test starts a workflow and holds
 * its function at a step boundary, so the test can kill -9 this process
 * (or trellisd) at a known point and check, after the restart, that every
 * step took effect exactly once. Test-only: built beside trellis-testpart,
 * never installed.
 *
 *   trellis-wfsvc --listen ADDR --port-file FILE --tm HOST:PORT
 *                 --part HOST:PORT [--timeout-ms N] [--threads N]
 *                 [--local-dir DIR]
 *
 * It serves trellis.v1.Workflow/Resume (trellis_workflows_serve) and names
 * 127.0.0.1:<bound port> as its resume address; the harness restarts a
 * server on the same port, so trellisd reaches the restarted process there.
 *
 * Input of "steps" (ASCII, no spaces): step *( "|" step ) "|" end, where
 *   step = "saga:" SCRIPT   Action, Compensate of the test participant
 *        | "tcc:" SCRIPT    Try, Confirm, Cancel of the test participant
 *        | "local"          a local step (below)
 *   end  = "end:commit" | "end:rollback"
 * SCRIPT is a trellis-testpart script (harness/testpart.c), the step's
 * payload, so a test makes a step fail or hold at the participant. The
 * function returns ROLLBACK at end:rollback or when a step answered
 * ABORTED, RETRY when a step's outcome is unknown, else COMMIT.
 *
 * A local step's effect happens once behind a barrier of symbolic links
 * under --local-dir (default "."), one per (gid, branch, op); symlink(2)
 * creates a name with its content atomically or fails EEXIST, so a kill
 * -9 never leaves half a row:
 *   GID.BRANCH.action   -> "applied" (the action ran) or "empty" (an undo
 *                          came first: a late action is blocked)
 *   GID.BRANCH.undo     -> "undone" or "empty"
 *   GID.BRANCH.blocked  -> an action arrived after the undo
 * The undo takes the action's name first, then its own, so a crash in
 * between leaves a state the repeated undo completes. Each op also appends
 * "local gid=G branch=B op=O effect=E" to DIR/local.journal, E one of
 * applied, dup, blocked, undone, empty (as trellis-testpart's journal).
 *
 * Control: /trellis.test.Part/Control (trellis-testpart's method, so
 * harness_part_cmd drives both); the payload is one command line, the
 * reply "ok ..." or "err ...":
 *   start GID HOLD_AT INPUT  run trellis_workflow_execute of "steps" for
 *                            GID on a thread of its own (no wait_result,
 *                            timeout_to_fail_ms from --timeout-ms); with
 *                            HOLD_AT = K > 0 that run blocks before step K
 *                            (K = steps + 1: before the decision) until
 *                            released; "ok started";
 *   wait-held GID MS         "ok at=K" once GID's run is held, or
 *                            "err timeout" after MS;
 *   release GID              the held run goes on; "ok released".
 * Holds live in memory only, and only the run "start" began is held:
 * trellisd's resumes and the phase-2 re-runs (a local undo) never are.
 *
 * Threads: the participant's --threads workers (default 8: a Resume holds
 * one while the function runs) and one thread per start (svc_holds.h: the
 * holds and the start threads); SIGTERM releases every hold and waits for
 * the start threads before freeing anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trellis/trellis_participant.h"
#include "trellis/trellis_workflow.h"
#include "svc_holds.h"
#include "trellis_portfile.h"

#define WF_NAME "steps"
#define MAX_STEPS 16
#define GID_MAX 80
#define PART_PREFIX "/trellis.test.Part/"
/* Deadline of the steps' forward calls, stored with each workflow: longer
 * than any hold a test keeps at the participant. */
#define FORWARD_TIMEOUT_MS 10000
#define TM_CALL_TIMEOUT_MS 30000

/* ---- the service's settings ------------------------------------------ */

typedef struct {
    const char *listen, *port_file, *tm, *part, *local_dir;
    int threads;
    unsigned timeout_ms;
} args_t;

typedef struct {
    args_t a;
    trellis_client_t *client;
    trellis_workflows_t *w;
    trellis_participant_t *p;
    char action[128], compensate[128], try_[128], confirm[128], cancel[128];
} svc_t;

/* ---- holds (svc_holds.h) ------------------------------------------- */

/* The gid whose run this thread's start began; NULL on other threads. */
static _Thread_local const char *tl_started;

/* Boundary k of gid's run: block while the test holds it there. Only the
 * run "start" began is held. */
static void hold_point(const char *gid, int k)
{
    if (tl_started && !strcmp(tl_started, gid))
        svc_hold_point(gid, k);
}

/* ---- the local step's barrier ---------------------------------------- */

/* Take DIR/GID.BRANCH.OP with content value: 0 taken, 1 there already
 * (*have gets its content), -1 error. */
static int slot_take(const svc_t *s, const char *gid, const char *branch,
                     const char *op, const char *value, char *have,
                     size_t havelen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.%s.%s", s->a.local_dir, gid, branch, op);
    if (symlink(value, path) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    ssize_t n = readlink(path, have, havelen - 1);
    if (n < 0)
        return -1;
    have[n] = '\0';
    return 1;
}

/* One line to DIR/local.journal, in one write(2). */
static void local_journal(const svc_t *s, const trellis_wf_step_ctx_t *ctx,
                          const char *effect)
{
    char path[PATH_MAX], line[256];
    snprintf(path, sizeof path, "%s/local.journal", s->a.local_dir);
    int n =
        snprintf(line, sizeof line, "local gid=%s branch=%s op=%s effect=%s\n",
                 ctx->gid, ctx->branch_id, ctx->op, effect);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) != n)
        fprintf(stderr, "wfsvc: short write to %s\n", path);
    close(fd);
    printf("wfsvc: %s", line);
    fflush(stdout);
}

/* The local action: its result names the step, the same on every call. */
static trellis_rc_t local_run(const trellis_wf_step_ctx_t *ctx, void *arg,
                              uint8_t **out, size_t *out_len, char *err,
                              size_t errlen)
{
    (void)arg;
    const svc_t *s = ctx->user;
    char have[32];
    int r = slot_take(s, ctx->gid, ctx->branch_id, "action", "applied", have,
                      sizeof have);
    if (r < 0) {
        snprintf(err, errlen, "local action: %s", strerror(errno));
        return TRELLIS_UNAVAILABLE;
    }
    if (r == 1 && strcmp(have, "applied") != 0) {
        slot_take(s, ctx->gid, ctx->branch_id, "blocked", "blocked", have,
                  sizeof have);
        local_journal(s, ctx, "blocked");
        snprintf(err, errlen, "local action: blocked by its undo");
        return TRELLIS_ABORTED;
    }
    local_journal(s, ctx, r == 0 ? "applied" : "dup");
    char result[160];
    int n = snprintf(result, sizeof result, "local:%s/%s", ctx->gid,
                     ctx->branch_id);
    *out = (uint8_t *)strdup(result);
    *out_len = *out ? (size_t)n : 0;
    return *out ? TRELLIS_OK : TRELLIS_RESOURCE_EXHAUSTED;
}

/* The local undo: takes the action's name first ("empty" blocks a late
 * action), then its own. */
static trellis_rc_t local_undo(const trellis_wf_step_ctx_t *ctx, void *arg,
                               const uint8_t *result, size_t result_len,
                               char *err, size_t errlen)
{
    (void)arg, (void)result, (void)result_len;
    const svc_t *s = ctx->user;
    char origin[32] = "empty", have[32];
    int r = slot_take(s, ctx->gid, ctx->branch_id, "action", "empty", origin,
                      sizeof origin);
    const char *effect =
        r == 1 && !strcmp(origin, "applied") ? "undone" : "empty";
    int u = r < 0 ? -1
                  : slot_take(s, ctx->gid, ctx->branch_id, "undo", effect, have,
                              sizeof have);
    if (u < 0) {
        snprintf(err, errlen, "local undo: %s", strerror(errno));
        return TRELLIS_UNAVAILABLE;
    }
    local_journal(s, ctx, u == 0 ? effect : "dup");
    return TRELLIS_OK;
}

/* ---- the workflow function ------------------------------------------- */

typedef enum { STEP_SAGA, STEP_TCC, STEP_LOCAL } step_kind_t;

typedef struct {
    step_kind_t kind;
    const char *script; /* saga, tcc: into the input buffer */
    size_t len;
} step_t;

typedef struct {
    step_t steps[MAX_STEPS];
    int n;
    int commit; /* end:commit */
} plan_t;

/* One step's text (s[len]) into p; -1 when it is none. */
static int parse_step(const char *s, size_t len, plan_t *p)
{
    if (p->n == MAX_STEPS)
        return -1;
    step_t *st = &p->steps[p->n];
    if (len == 5 && !memcmp(s, "local", 5)) {
        *st = (step_t){STEP_LOCAL, NULL, 0};
    } else if (len >= 5 && !memcmp(s, "saga:", 5)) {
        *st = (step_t){STEP_SAGA, s + 5, len - 5};
    } else if (len >= 4 && !memcmp(s, "tcc:", 4)) {
        *st = (step_t){STEP_TCC, s + 4, len - 4};
    } else {
        return -1;
    }
    p->n++;
    return 0;
}

/* The input into p (scripts point into in); -1 when it is not a plan. */
static int parse_plan(const char *in, size_t len, plan_t *p)
{
    memset(p, 0, sizeof *p);
    for (;;) {
        const char *bar = memchr(in, '|', len);
        size_t n = bar ? (size_t)(bar - in) : len;
        if (!bar) {
            p->commit = n == 10 && !memcmp(in, "end:commit", 10);
            return p->commit || (n == 12 && !memcmp(in, "end:rollback", 12))
                       ? 0
                       : -1;
        }
        if (parse_step(in, n, p) != 0)
            return -1;
        in += n + 1;
        len -= n + 1;
    }
}

static trellis_rc_t run_step(trellis_wf_t *wf, svc_t *s, const step_t *st,
                             char *err, size_t errlen)
{
    switch (st->kind) {
    case STEP_SAGA:
        return trellis_wf_saga(wf, s->action, s->compensate, st->script,
                               st->len, NULL, NULL, err, errlen);
    case STEP_TCC:
        return trellis_wf_tcc(wf, s->try_, s->confirm, s->cancel, st->script,
                              st->len, NULL, NULL, err, errlen);
    case STEP_LOCAL:
        break;
    }
    uint8_t *r = NULL;
    size_t rl = 0;
    trellis_rc_t rc =
        trellis_wf_local(wf, local_run, local_undo, NULL, &r, &rl, err, errlen);
    free(r);
    return rc;
}

static int wf_steps(trellis_wf_t *wf, const uint8_t *in, size_t len,
                    trellis_wf_err_t *e)
{
    svc_t *s = trellis_wf_user(wf);
    const char *gid = trellis_wf_gid(wf);
    plan_t p;
    char err[512];
    if (parse_plan((const char *)in, len, &p) != 0) {
        snprintf(e->message, sizeof e->message, "bad input %.*s", (int)len,
                 (const char *)in);
        return TRELLIS_WF_ROLLBACK;
    }
    for (int k = 1; k <= p.n; k++) {
        hold_point(gid, k);
        trellis_rc_t rc = run_step(wf, s, &p.steps[k - 1], err, sizeof err);
        if (rc != TRELLIS_OK) {
            snprintf(e->message, sizeof e->message, "step %d: %.400s", k, err);
            return rc == TRELLIS_ABORTED ? TRELLIS_WF_ROLLBACK
                                         : TRELLIS_WF_RETRY;
        }
    }
    hold_point(gid, p.n + 1);
    if (!p.commit)
        snprintf(e->message, sizeof e->message, "end:rollback");
    return p.commit ? TRELLIS_WF_COMMIT : TRELLIS_WF_ROLLBACK;
}

/* ---- start ----------------------------------------------------------- */

typedef struct {
    svc_t *s;
    char gid[GID_MAX];
    char *input;
} start_t;

static void *start_main(void *arg)
{
    start_t *st = arg;
    trellis_options_t o;
    memset(&o, 0, sizeof o);
    o.timeout_to_fail_ms = st->s->a.timeout_ms;
    o.request_timeout_ms = FORWARD_TIMEOUT_MS;
    tl_started = st->gid;
    char err[512] = "", reason[512] = "";
    trellis_trans_status_t status = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc = trellis_workflow_execute(
        st->s->w, WF_NAME, st->gid, st->input, strlen(st->input), &o, &status,
        reason, sizeof reason, err, sizeof err);
    printf("wfsvc: execute gid=%s rc=%d status=%s err=\"%s\" reason=\"%s\"\n",
           st->gid, rc, trellis_trans_status_name(status), err, reason);
    fflush(stdout);
    tl_started = NULL;
    free(st->input);
    free(st);
    return NULL;
}

/* "start GID HOLD_AT INPUT" (args after "start "). */
static void control_start(svc_t *s, const char *args, char *out, size_t len)
{
    char gid[GID_MAX];
    int hold_at, used = 0;
    if (sscanf(args, "%79s %d %n", gid, &hold_at, &used) != 2 || !used ||
        args[used] == '\0' || hold_at < 0) {
        snprintf(out, len, "err usage: start GID HOLD_AT INPUT\n");
        return;
    }
    start_t *st = calloc(1, sizeof *st);
    if (!st || !(st->input = strdup(args + used)) ||
        svc_hold_set(gid, hold_at) != 0) {
        if (st)
            free(st->input);
        free(st);
        snprintf(out, len, "err out of memory\n");
        return;
    }
    st->s = s;
    snprintf(st->gid, sizeof st->gid, "%s", gid);
    int ok = svc_run_spawn(start_main, st) == 0;
    if (!ok) {
        free(st->input);
        free(st);
    }
    snprintf(out, len, ok ? "ok started\n" : "err no thread\n");
}

static void handle_control(const trellis_branch_ctx_t *ctx,
                           const uint8_t *payload, size_t payload_len,
                           trellis_reply_t *reply, void *user)
{
    (void)ctx;
    char cmd[2048], out[160];
    snprintf(cmd, sizeof cmd, "%.*s", (int)payload_len, (const char *)payload);
    cmd[strcspn(cmd, "\n")] = '\0';
    if (!strncmp(cmd, "start ", 6))
        control_start(user, cmd + 6, out, sizeof out);
    else if (!svc_hold_control(cmd, out, sizeof out))
        snprintf(out, sizeof out, "err unknown command\n");
    reply->body = (uint8_t *)strdup(out);
    reply->body_len = reply->body ? strlen(out) : 0;
}

/* ---- main ------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr, "usage: trellis-wfsvc --listen ADDR --port-file FILE "
                    "--tm HOST:PORT --part HOST:PORT [--timeout-ms N] "
                    "[--threads N] [--local-dir DIR]\n");
    return 2;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.listen = "127.0.0.1:0",
                  .local_dir = ".",
                  .threads = 8,
                  .timeout_ms = 400};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--listen"))
            a->listen = v;
        else if (!strcmp(k, "--port-file"))
            a->port_file = v;
        else if (!strcmp(k, "--tm"))
            a->tm = v;
        else if (!strcmp(k, "--part"))
            a->part = v;
        else if (!strcmp(k, "--local-dir"))
            a->local_dir = v;
        else if (!strcmp(k, "--threads"))
            a->threads = atoi(v);
        else if (!strcmp(k, "--timeout-ms"))
            a->timeout_ms = (unsigned)strtoul(v, NULL, 10);
        else
            return -1;
    }
    return argc % 2 == 1 && a->tm && a->part && a->threads > 0 ? 0 : -1;
}

/* The participant's targets, the client, the registry. */
static int setup(svc_t *s, char *err, size_t errlen)
{
    snprintf(s->action, sizeof s->action, "%s" PART_PREFIX "Action", s->a.part);
    snprintf(s->compensate, sizeof s->compensate, "%s" PART_PREFIX "Compensate",
             s->a.part);
    snprintf(s->try_, sizeof s->try_, "%s" PART_PREFIX "Try", s->a.part);
    snprintf(s->confirm, sizeof s->confirm, "%s" PART_PREFIX "Confirm",
             s->a.part);
    snprintf(s->cancel, sizeof s->cancel, "%s" PART_PREFIX "Cancel", s->a.part);
    if (mkdir(s->a.local_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", s->a.local_dir, strerror(errno));
        return -1;
    }
    if (trellis_client_new(s->a.tm, TM_CALL_TIMEOUT_MS, &s->client, err,
                           errlen) != TRELLIS_OK ||
        trellis_workflows_new(s->client, &s->w, err, errlen) != TRELLIS_OK ||
        trellis_workflows_register(s->w, WF_NAME, wf_steps, s, err, errlen) !=
            TRELLIS_OK ||
        trellis_participant_new(s->a.threads, &s->p, err, errlen) !=
            TRELLIS_OK ||
        trellis_workflows_serve(s->w, s->p, err, errlen) != TRELLIS_OK)
        return -1;
    return trellis_participant_handle(s->p, PART_PREFIX "Control",
                                      handle_control, s, err,
                                      errlen) == TRELLIS_OK
               ? 0
               : -1;
}

/* Serve, name the resume address, write the port file. */
static int serve(svc_t *s, char *err, size_t errlen)
{
    int port = 0;
    char addr[64];
    if (trellis_participant_start(s->p, s->a.listen, &port, err, errlen) !=
        TRELLIS_OK)
        return -1;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    if (trellis_workflows_set_address(s->w, addr, err, errlen) != TRELLIS_OK)
        return -1;
    if (s->a.port_file &&
        trellis_portfile_write(s->a.port_file, port, err, errlen) != 0)
        return -1;
    printf("trellis-wfsvc ready listen=%s\n", addr);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    svc_t s;
    memset(&s, 0, sizeof s);
    if (parse_args(argc, argv, &s.a) != 0)
        return usage();
    /* Block the stop signals before gRPC starts threads; wait for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    char err[512] = "";
    int rc = setup(&s, err, sizeof err) == 0 && serve(&s, err, sizeof err) == 0
                 ? 0
                 : 1;
    if (rc != 0) {
        fprintf(stderr, "trellis-wfsvc: %s\n", err);
    } else {
        int sig;
        sigwait(&stop, &sig);
    }
    svc_holds_drain();
    trellis_participant_free(s.p); /* its handlers use the registry */
    trellis_workflows_free(s.w);
    trellis_client_free(s.client);
    return rc;
}
