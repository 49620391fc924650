/*
 * bench_wf: the wf2 workload of trellis-bench - a workflow of two saga
 * steps against trellis-bench-part's no-op Action (compensate: Compensate),
 * registered as "bench.wf2" in a workflow service (a trellis_participant
 * serving /trellis.v1.Workflow/Resume, trellis_workflow.h).
 *
 * One workflow is 8 gRPC calls: StartWorkflow, then per step
 * RegisterBranch, the Action and RecordStep, then Submit (wait_result, as
 * saga2's Submit); trellisd calls nothing after it (a saga step has no
 * commit-side op). The throughput phase hosts one service per trellisd
 * node in the bench process itself (bench_wf_env_t) and runs
 * trellis_workflow_execute on bench_ap's threads (bench_wf_op); the resume
 * phase runs a service in a process of its own (trellis-bench
 * --wf-service, bench_wfsvc.c; bench_wf_resume.c) so it can be killed.
 *
 * Hold. A service told to hold (bench_wf_svc_hold) stops every run of the
 * function after step 01 is recorded and blocks it there until the hold
 * is lifted or the process dies: its workflow stays PREPARED with one step
 * recorded. A service that does not hold (the restarted one) runs the
 * function through: trellisd's Resume replays step 01 and runs step 02.
 *
 * Threads: new/serve/free from one thread; execute, hold and wait_held
 * from any. The function runs on the executing thread or on one of the
 * service's workers (a Resume).
 */
#ifndef BENCH_WF_H
#define BENCH_WF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_ap.h"
#include "bench_env.h"
#include "trellis/trellis_workflow.h"

#define BENCH_WF_NAME "bench.wf2"

typedef struct {
    trellis_client_t *client; /* to its trellisd; the registry's */
    trellis_participant_t *p;
    trellis_workflows_t *w;
    char addr[64]; /* "127.0.0.1:PORT", the resume target's host:port */
    char action[192], compensate[192];
    atomic_int holding; /* runs block after step 01 */
    pthread_mutex_t mu; /* guards held, with cv */
    pthread_cond_t cv;
    int held; /* runs blocked after step 01 so far */
} bench_wf_svc_t;

/* A service over trellisd at tm_addr ("host:port") with n_threads
 * workers, its function calling the no-op participant at part_addr; not
 * serving yet (the caller may add handlers to s->p). Returns 0, or -1 with
 * err; *s then holds nothing. */
int bench_wf_svc_new(bench_wf_svc_t *s, const char *tm_addr,
                     const char *part_addr, int n_threads, char *err,
                     size_t errlen);

/* Serve on listen ("127.0.0.1:0", or a fixed port) and make "127.0.0.1:
 * <bound port>" the resume target; the port into *port (may be NULL).
 * Returns 0, or -1 with err. */
int bench_wf_svc_serve(bench_wf_svc_t *s, const char *listen, int *port,
                       char *err, size_t errlen);

/* Stop serving and release everything; no execute may be running. */
void bench_wf_svc_free(bench_wf_svc_t *s);

/* One workflow gid of bench.wf2 with options o (trellis_workflow_execute:
 * TRELLIS_OK once decided, *status the outcome). */
trellis_rc_t bench_wf_execute(bench_wf_svc_t *s, const char *gid,
                              const trellis_options_t *o,
                              trellis_trans_status_t *status, char *err,
                              size_t errlen);

/* Hold (on) or let go (off; blocked runs go on to step 02). */
void bench_wf_svc_hold(bench_wf_svc_t *s, int on);

/* Wait until n runs are blocked, or timeout_ms passed, or stop() says
 * so (may be NULL; polled every 10 ms). Returns the number blocked. */
int bench_wf_svc_wait_held(bench_wf_svc_t *s, int n, int64_t timeout_ms,
                           int (*stop)(void *arg), void *arg);

/* ---- the throughput phase -------------------------------------------- */

/* One service per trellisd node, in this process. Load thread i runs its
 * workflows on svc[i % n_svc], whose client goes to node i % n_svc (a
 * node answers RegisterBranch and RecordStep only for its own). */
typedef struct {
    bench_wf_svc_t svc[BENCH_MAX_NODES];
    int n_svc;
    char gid_prefix[32]; /* "w<pid>-" */
} bench_wf_env_t;

/* Start a service for each node of env (n_threads workers each). Returns
 * 0, or -1 after printing why (what started is stopped). */
int bench_wf_env_start(bench_wf_env_t *e, const bench_env_t *env,
                       int n_threads);
void bench_wf_env_stop(bench_wf_env_t *e);

/* One workflow, a bench_ap_op_fn; env is the bench_wf_env_t. Counts as a
 * success when execute answers SUCCEEDED. */
int bench_wf_op(bench_ap_worker_t *w, uint64_t n, const void *env);

#endif /* BENCH_WF_H */
