/*
 * bench_wf_resume: wf2's resume phase (see bench_wf_resume.h) - the
 * service process, the park, the crash, and reading trellisd's stamps.
 *
 * The figures come from Query, after the fact: trellisd stamps
 * finished_ms when it finishes a workflow, so the poll's own interval
 * (POLL_MS) adds nothing to them; it only decides when the phase ends.
 */
#include "bench_wf_resume.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_wfsvc.h"
#include "harness.h"
#include "trellis/trellis.h"

#define PARK_CALL_MS 90000
#define POLL_MS 50
/* How long after the timeout to wait for the last workflow: trellisd's
 * backoff after failed resumes is capped at 60 s by default. */
#define GIVE_UP_MS 120000

/* One parked workflow as Query last showed it. */
typedef struct {
    trellis_trans_status_t status; /* PREPARED.. until final */
    int64_t created_ms, finished_ms;
    uint32_t resumes;
} seen_t;

/* ---- the service ------------------------------------------------------ */

static harness_server_t *start_service(const bench_env_t *env,
                                       const bench_wf_resume_spec_t *spec)
{
    char bin[PATH_MAX], threads[16];
    bench_env_binary("TRELLIS_BENCH", "trellis-bench", bin, sizeof(bin));
    snprintf(threads, sizeof(threads), "%d", spec->threads);
    const char *args[] = {
        BENCH_WFSVC_FLAG, "--tm",      env->node_addr[0], "--part",
        env->part_addr,   "--threads", threads,           NULL};
    return harness_server_start(env->h, "wfsvc", bin, args);
}

/* Ask the service to park spec->n workflows "<prefix><i>". 0 when every
 * one is parked, else -1 with r->first_error. */
static int park(harness_server_t *svc, const bench_wf_resume_spec_t *spec,
                const char *prefix, bench_wf_resume_result_t *r)
{
    char req[160], err[256], text[512];
    uint8_t *reply = NULL;
    size_t len = 0;
    int failed = -1;
    snprintf(req, sizeof(req), "n=%d timeout_ms=%u retry_ms=%u prefix=%s",
             spec->n, spec->timeout_ms, spec->retry_ms, prefix);
    int64_t t0 = bench_mono_ns();
    trellis_rc_t rc = trellis_call_unary(
        harness_server_addr(svc), BENCH_WFSVC_PARK, req, strlen(req), NULL,
        NULL, 0, PARK_CALL_MS, &reply, &len, err, sizeof(err));
    r->park_ms = (double)(bench_mono_ns() - t0) / 1e6;
    if (rc != TRELLIS_OK) {
        snprintf(r->first_error, sizeof(r->first_error), "park: rc %d: %.200s",
                 rc, err);
        return -1;
    }
    snprintf(text, sizeof(text), "%.*s", (int)len, reply ? (char *)reply : "");
    free(reply);
    if (sscanf(text, "parked=%d failed=%d", &r->parked, &failed) != 2 ||
        failed != 0 || r->parked != spec->n) {
        snprintf(r->first_error, sizeof(r->first_error),
                 "park answered \"%.200s\"", text);
        return -1;
    }
    return 0;
}

/* kill -9 and restart on the same port; the wall clock of the kill into
 * *kill_ms. */
static int crash(harness_server_t *svc, int64_t *kill_ms,
                 bench_wf_resume_result_t *r)
{
    int64_t t0 = bench_mono_ns();
    *kill_ms = harness_now_ms();
    if (harness_server_kill(svc) != 0 || harness_server_restart(svc) != 0) {
        snprintf(r->first_error, sizeof(r->first_error),
                 "could not kill and restart the workflow service");
        return -1;
    }
    r->restart_ms = (double)(bench_mono_ns() - t0) / 1e6;
    return 0;
}

/* ---- reading trellisd ------------------------------------------------- */

static int is_final(trellis_trans_status_t s)
{
    return s == TRELLIS_TRANS_SUCCEEDED || s == TRELLIS_TRANS_FAILED;
}

/* The head's resume attempts. */
static uint32_t resumes_of(const trellis_trans_info_t *t)
{
    if (t->n_branches == 0)
        return 0;
    const trellis_branch_info_t *h = &t->branches[0];
    for (size_t i = 0; i < h->n_ops; i++)
        if (h->ops[i].op == TRELLIS_OP_RESUME)
            return h->ops[i].attempts;
    return 0;
}

/* Query every workflow not final yet; returns how many still are not. */
static int poll_once(trellis_client_t *c, const char *prefix, seen_t *seen,
                     int n, bench_wf_resume_result_t *r)
{
    int pending = 0;
    for (int i = 0; i < n; i++) {
        char gid[96], err[256];
        trellis_trans_info_t *t = NULL;
        if (is_final(seen[i].status))
            continue;
        snprintf(gid, sizeof(gid), "%s%d", prefix, i);
        if (trellis_query(c, gid, &t, err, sizeof(err)) != TRELLIS_OK) {
            if (!r->first_error[0])
                snprintf(r->first_error, sizeof(r->first_error),
                         "query %.60s: %.180s", gid, err);
            pending++;
            continue;
        }
        seen[i] =
            (seen_t){t->status, t->created_ms, t->finished_ms, resumes_of(t)};
        if (t->status == TRELLIS_TRANS_FAILED && !r->first_error[0])
            snprintf(r->first_error, sizeof(r->first_error), "%s FAILED: %s",
                     gid, t->reason ? t->reason : "");
        pending += !is_final(t->status);
        trellis_trans_info_free(t);
    }
    return pending;
}

/* Poll until every workflow is final or give_up (monotonic ns). */
static void wait_final(trellis_client_t *c, const char *prefix, seen_t *seen,
                       int n, int64_t give_up, bench_wf_resume_result_t *r)
{
    while (poll_once(c, prefix, seen, n, r) > 0 && bench_mono_ns() < give_up)
        bench_sleep_until_ns(bench_mono_ns() + POLL_MS * 1000000LL);
}

/* ---- figures ---------------------------------------------------------- */

static uint32_t us_from_ms(int64_t ms)
{
    return ms <= 0 ? 0 : (uint32_t)(ms * 1000);
}

static void summarize(const seen_t *seen, int n, int64_t kill_ms,
                      uint32_t timeout_ms, bench_wf_resume_result_t *r)
{
    uint32_t *after = calloc((size_t)n, sizeof(*after));
    uint32_t *due = calloc((size_t)n, sizeof(*due));
    size_t k = 0;
    uint64_t resumes = 0;
    r->age_min_ms = 1e18;
    r->age_max_ms = 0;
    for (int i = 0; i < n && after && due; i++) {
        const seen_t *s = &seen[i];
        double age = (double)(kill_ms - s->created_ms);
        r->age_min_ms = age < r->age_min_ms ? age : r->age_min_ms;
        r->age_max_ms = age > r->age_max_ms ? age : r->age_max_ms;
        if (s->status != TRELLIS_TRANS_SUCCEEDED) {
            r->other++;
            continue;
        }
        r->succeeded++;
        resumes += s->resumes;
        r->resumes_max =
            s->resumes > r->resumes_max ? s->resumes : r->resumes_max;
        after[k] = us_from_ms(s->finished_ms - kill_ms);
        due[k++] = us_from_ms(s->finished_ms - s->created_ms - timeout_ms);
    }
    r->resumes_mean = k ? (double)resumes / (double)k : 0;
    if (after && due) {
        bench_load_latencies(after, k, &r->after_kill);
        bench_load_latencies(due, k, &r->past_due);
    }
    free(after);
    free(due);
}

/* ---- the phase -------------------------------------------------------- */

int bench_wf_resume_run(const bench_env_t *env,
                        const bench_wf_resume_spec_t *spec,
                        bench_wf_resume_result_t *r)
{
    char prefix[32], err[256];
    int64_t kill_ms = 0;
    trellis_client_t *c = NULL;
    memset(r, 0, sizeof(*r));
    snprintf(prefix, sizeof(prefix), "r%d-", (int)getpid());
    seen_t *seen = calloc((size_t)spec->n, sizeof(*seen));
    harness_server_t *svc = seen ? start_service(env, spec) : NULL;
    if (!svc || park(svc, spec, prefix, r) != 0 || crash(svc, &kill_ms, r) != 0)
        goto out;
    if (trellis_client_new(env->node_addr[0], 10000, &c, err, sizeof(err)) !=
        TRELLIS_OK) {
        snprintf(r->first_error, sizeof(r->first_error), "client: %.200s", err);
        goto out;
    }
    wait_final(c, prefix, seen, spec->n,
               bench_mono_ns() +
                   (int64_t)(spec->timeout_ms + GIVE_UP_MS) * 1000000,
               r);
    summarize(seen, spec->n, kill_ms, spec->timeout_ms, r);
out:
    if (!svc && !r->first_error[0])
        snprintf(r->first_error, sizeof(r->first_error),
                 "the workflow service did not start");
    trellis_client_free(c);
    free(seen);
    return r->parked == spec->n && r->succeeded == spec->n ? 0 : -1;
}

void bench_wf_resume_print(const bench_wf_resume_spec_t *spec,
                           const bench_wf_resume_result_t *r)
{
    printf("resume: %d workflows parked in %.0f ms (step 01 recorded, the "
           "run blocked before step 02), timeout_to_fail_ms=%u "
           "retry_interval_ms=%u, service --threads %d\n",
           r->parked, r->park_ms, spec->timeout_ms, spec->retry_ms,
           spec->threads);
    printf("       service killed (-9) at the workflows' age %.0f..%.0f ms, "
           "serving again %.0f ms after the kill\n",
           r->age_min_ms, r->age_max_ms, r->restart_ms);
    printf("       succeeded=%d other=%d; Resume calls per workflow: mean "
           "%.2f, max %u\n",
           r->succeeded, r->other, r->resumes_mean, r->resumes_max);
    if (r->first_error[0])
        printf("       first failure: %s\n", r->first_error);
    printf("       once due (finished - created - timeout): median %.0f ms, "
           "p99 %.0f ms, max %.0f ms\n",
           r->past_due.p50_ms, r->past_due.p99_ms, r->past_due.max_ms);
    printf("resume after timeout: median %.0f ms, p99 %.0f ms (timeout %u ms; "
           "from the kill to SUCCEEDED)\n",
           r->after_kill.p50_ms, r->after_kill.p99_ms, spec->timeout_ms);
    fflush(stdout);
}
