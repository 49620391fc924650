/*
 * bench_wf: the wf2 workflow, its service, and one workflow as a load
 * thread runs it (see bench_wf.h).
 *
 * A service owns its trellis client, participant and registry; the
 * registry borrows the client and the participant's Resume handler the
 * registry, so they are released in the reverse order: participant
 * stopped, registry freed, participant freed, client freed.
 */
#include "bench_wf.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench_load.h"

/* Deadline of each call of a service's client (the Submit waits for the
 * outcome within it). */
#define CALL_TIMEOUT_MS 30000

/* ---- the workflow ----------------------------------------------------- */

/* Block while s holds, counted once in held. */
static void hold_here(bench_wf_svc_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->held++;
    pthread_cond_broadcast(&s->cv);
    while (atomic_load(&s->holding))
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* bench.wf2: two no-op saga steps, then commit. A failed step rolls back
 * (ABORTED) or asks to retry (anything else: its outcome is unknown). */
static int wf2(trellis_wf_t *wf, const uint8_t *input, size_t len,
               trellis_wf_err_t *e)
{
    (void)input;
    (void)len;
    bench_wf_svc_t *s = trellis_wf_user(wf);
    char err[256] = "";
    trellis_rc_t rc = trellis_wf_saga(wf, s->action, s->compensate, NULL, 0,
                                      NULL, NULL, err, sizeof(err));
    if (rc == TRELLIS_OK && atomic_load(&s->holding))
        hold_here(s);
    if (rc == TRELLIS_OK)
        rc = trellis_wf_saga(wf, s->action, s->compensate, NULL, 0, NULL, NULL,
                             err, sizeof(err));
    if (rc == TRELLIS_OK)
        return TRELLIS_WF_COMMIT;
    snprintf(e->message, sizeof(e->message), "step: rc %d: %s", rc, err);
    return rc == TRELLIS_ABORTED ? TRELLIS_WF_ROLLBACK : TRELLIS_WF_RETRY;
}

/* ---- the service ------------------------------------------------------ */

int bench_wf_svc_new(bench_wf_svc_t *s, const char *tm_addr,
                     const char *part_addr, int n_threads, char *err,
                     size_t errlen)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    snprintf(s->action, sizeof(s->action), "%s/trellis.bench.Noop/Action",
             part_addr);
    snprintf(s->compensate, sizeof(s->compensate),
             "%s/trellis.bench.Noop/Compensate", part_addr);
    if (trellis_client_new(tm_addr, CALL_TIMEOUT_MS, &s->client, err, errlen) !=
            TRELLIS_OK ||
        trellis_participant_new(n_threads, &s->p, err, errlen) != TRELLIS_OK ||
        trellis_workflows_new(s->client, &s->w, err, errlen) != TRELLIS_OK ||
        trellis_workflows_register(s->w, BENCH_WF_NAME, wf2, s, err, errlen) !=
            TRELLIS_OK ||
        trellis_workflows_serve(s->w, s->p, err, errlen) != TRELLIS_OK) {
        bench_wf_svc_free(s);
        return -1;
    }
    return 0;
}

int bench_wf_svc_serve(bench_wf_svc_t *s, const char *listen, int *port,
                       char *err, size_t errlen)
{
    int bound = 0;
    if (trellis_participant_start(s->p, listen, &bound, err, errlen) !=
        TRELLIS_OK)
        return -1;
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", bound);
    if (port)
        *port = bound;
    return trellis_workflows_set_address(s->w, s->addr, err, errlen) ==
                   TRELLIS_OK
               ? 0
               : -1;
}

void bench_wf_svc_free(bench_wf_svc_t *s)
{
    if (s->p)
        trellis_participant_stop(s->p);
    trellis_workflows_free(s->w);
    trellis_participant_free(s->p);
    trellis_client_free(s->client);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
}

trellis_rc_t bench_wf_execute(bench_wf_svc_t *s, const char *gid,
                              const trellis_options_t *o,
                              trellis_trans_status_t *status, char *err,
                              size_t errlen)
{
    char reason[256];
    trellis_rc_t rc =
        trellis_workflow_execute(s->w, BENCH_WF_NAME, gid, NULL, 0, o, status,
                                 reason, sizeof(reason), err, errlen);
    if (rc == TRELLIS_OK && reason[0])
        snprintf(err, errlen, "%s", reason);
    return rc;
}

void bench_wf_svc_hold(bench_wf_svc_t *s, int on)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->holding, on);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int bench_wf_svc_wait_held(bench_wf_svc_t *s, int n, int64_t timeout_ms,
                           int (*stop)(void *arg), void *arg)
{
    int64_t end = bench_mono_ns() + timeout_ms * 1000000;
    int held = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        held = s->held;
        pthread_mutex_unlock(&s->mu);
        if (held >= n || bench_mono_ns() >= end || (stop && stop(arg)))
            return held;
        bench_sleep_until_ns(bench_mono_ns() + 10000000);
    }
}

/* ---- the throughput phase -------------------------------------------- */

int bench_wf_env_start(bench_wf_env_t *e, const bench_env_t *env, int n_threads)
{
    char err[512];
    memset(e, 0, sizeof(*e));
    snprintf(e->gid_prefix, sizeof(e->gid_prefix), "w%d-", (int)getpid());
    for (int i = 0; i < env->n_nodes; i++) {
        bench_wf_svc_t *s = &e->svc[i];
        if (bench_wf_svc_new(s, env->node_addr[i], env->part_addr, n_threads,
                             err, sizeof(err)) != 0)
            goto fail;
        e->n_svc++;
        if (bench_wf_svc_serve(s, "127.0.0.1:0", NULL, err, sizeof(err)) != 0)
            goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "trellis-bench: workflow service: %s\n", err);
    bench_wf_env_stop(e);
    return -1;
}

void bench_wf_env_stop(bench_wf_env_t *e)
{
    for (int i = 0; i < e->n_svc; i++)
        bench_wf_svc_free(&e->svc[i]);
    e->n_svc = 0;
}

int bench_wf_op(bench_ap_worker_t *w, uint64_t n, const void *env)
{
    const bench_wf_env_t *e = env;
    int i = bench_ap_index(w);
    /* The services are only read here; execute is thread safe. */
    bench_wf_svc_t *s = (bench_wf_svc_t *)&e->svc[i % e->n_svc];
    char gid[64], err[512];
    trellis_options_t o = {.wait_result = 1};
    trellis_trans_status_t st = 0;
    snprintf(gid, sizeof(gid), "%s%d-%llu", e->gid_prefix, i,
             (unsigned long long)n);
    trellis_rc_t rc = bench_wf_execute(s, gid, &o, &st, err, sizeof(err));
    if (rc != TRELLIS_OK) {
        bench_ap_note_error(w, "execute %s: rc %d: %s", gid, rc, err);
        return 0;
    }
    if (st != TRELLIS_TRANS_SUCCEEDED) {
        bench_ap_note_error(w, "workflow %s ended %s: %s", gid,
                            trellis_trans_status_name(st), err);
        return 0;
    }
    return 1;
}
