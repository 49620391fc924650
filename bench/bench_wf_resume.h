/*
 * bench_wf_resume: wf2's resume phase - how long after its workflow
 * service is killed a workflow is resumed and done.
 *
 * The phase: start `trellis-bench --wf-service` (bench_wfsvc.h) through
 * the harness, against trellisd's first node and the no-op participant;
 * have it park n workflows (each PREPARED with step 01 recorded, its run
 * blocked before step 02; timeout_to_fail_ms and retry_interval_ms from
 * the spec); kill -9 it the moment they are parked and restart it at once
 * on the same port (its resume target); then Query each workflow until it
 * is final. trellisd resumes each at its creation + timeout_ms; the
 * restarted service replays step 01, runs step 02 and commits. Per
 * workflow the figures are trellisd's own stamps: finished_ms - the kill
 * (wall clock, the same machine's), and finished_ms - (created_ms +
 * timeout_ms), the time it took once due. So the first is bounded below by
 * the timeout minus the workflow's age at the kill, which is printed too.
 *
 * Threads: the main thread only (the harness is not thread-safe).
 */
#ifndef BENCH_WF_RESUME_H
#define BENCH_WF_RESUME_H

#include <stdint.h>

#include "bench_env.h"
#include "bench_load.h"

typedef struct {
    int n;               /* workflows parked */
    uint32_t timeout_ms; /* their timeout_to_fail_ms */
    uint32_t retry_ms;   /* their retry_interval_ms */
    int threads;         /* the service's worker threads */
} bench_wf_resume_spec_t;

typedef struct {
    int parked, succeeded, other;  /* other: final but not SUCCEEDED, or
                                      never final */
    double park_ms;                /* the Park call, sent to answered */
    double restart_ms;             /* the kill to the service serving again */
    double age_min_ms, age_max_ms; /* the workflows' age at the kill */
    double resumes_mean;           /* Resume calls per workflow (trellisd's
                                      attempts of the head's op) */
    uint32_t resumes_max;
    bench_load_result_t after_kill; /* finished - kill (p50, p99, max) */
    bench_load_result_t past_due;   /* finished - (created + timeout) */
    char first_error[256];
} bench_wf_resume_result_t;

/* Run the phase on env (its harness, trellisd node 0, the participant).
 * Returns 0 when every parked workflow SUCCEEDED, else -1 (*r says how
 * far it got; first_error why). */
int bench_wf_resume_run(const bench_env_t *env,
                        const bench_wf_resume_spec_t *spec,
                        bench_wf_resume_result_t *r);

/* The phase's lines, ending with "resume after timeout: median X ms, p99
 * Y ms (timeout T ms)". */
void bench_wf_resume_print(const bench_wf_resume_spec_t *spec,
                           const bench_wf_resume_result_t *r);

#endif /* BENCH_WF_RESUME_H */
