/*
 * trellis-bench: how many 2-branch sagas per second Trellis runs, how fast
 * one is, and how that compares with the gRPC ceiling of the same machine.
 *
 * A run: start the no-op participant and (unless --tm) trellisd; measure
 * the ceiling - calls/s of an empty unary call to the participant at the
 * same concurrency; measure sagas (Submit with wait_result, K in flight);
 * in hold mode, submit N sagas that stay ONGOING and measure sagas again
 * with them in memory; print the figures, where the CPU went, and a final
 * RESULT line for scripts. All the saga load comes from bench_load's
 * asynchronous client, so the client is never the thing being waited on.
 *
 * Mode tcc2 measures 2-branch TCC bank transfers instead (bench_tcc.c):
 * it also starts a MariaDB and two bank-service processes, and its load
 * is K transfers kept in flight by one client thread through the
 * asynchronous TCC helper (bench_async.c, trellis_async.h; the processes
 * in bench_ap_env.c); then, in the same run, the baseline: the same tries
 * and confirms called directly, without a TM, by the same client. Mode
 * xa2 is the same shape with 2-branch XA orders (bench_xa.c): MariaDB, the
 * xa-order example's order-service and stock-service, the XA helper, and
 * the prepares and commits called directly for the baseline. Their RESULT
 * ratio is TM/baseline. Mode hybrid3 has K threads making blocking calls
 * (bench_ap.c) with 3-branch hybrid transactions (bench_hybrid.c): an XA
 * order, a TCC debit and a trellisd-run saga shipment step through the
 * hybrid initiator, on the hybrid-order example's three services. A phase
 * with the workload's services is measured by bench_phase.c.
 *
 * With --store mysql trellisd runs on a MariaDB the harness starts (its
 * own, apart from the one of tcc2's, xa2's and hybrid3's services), and
 * --nodes 2 starts a second trellisd on the same database: saga2 then
 * alternates its channels over the two nodes, the other modes give each
 * load thread one node for all its transactions.
 *
 * Mode wf2 measures workflows (trellis_workflow.h) of two saga steps on the
 * no-op participant (bench_wf.c): the bench process hosts the workflow
 * service and runs trellis_workflow_execute on K of bench_ap's threads,
 * after a saga2 phase in the same run for comparison; then a resume phase
 * (bench_wf_resume.c) kills a workflow service process (trellis-bench
 * --wf-service, bench_wfsvc.c) with workflows half done and times how long
 * trellisd takes to have them resumed and finished.
 *
 * Mode msg2 measures 2-phase transactional messages of two steps on the
 * no-op participant (bench_msg.c): each load thread (bench_ap's) runs
 * trellis_msg_do_and_submit with a local transaction on its own connection
 * to a MariaDB of the bench, the back-check served by the bench process;
 * saga2 runs first in the same run for comparison.
 */
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_ap.h"
#include "bench_ap_env.h"
#include "bench_dtm.h"
#include "bench_env.h"
#include "bench_hybrid.h"
#include "bench_load.h"
#include "bench_msg.h"
#include "bench_opts.h"
#include "bench_phase.h"
#include "bench_saga.h"
#include "bench_scale.h"
#include "bench_sys.h"
#include "bench_tcc.h"
#include "bench_wf.h"
#include "bench_wf_resume.h"
#include "bench_wfsvc.h"
#include "bench_xa.h"

/* ---- phases ----------------------------------------------------------- */

static void print_phase(const bench_env_t *env, const char *name,
                        const char *unit, const bench_phase_t *p,
                        const char *op, int threads)
{
    bench_phase_warn(bench_phase_print_cpu(env, name, unit, p, op, threads));
}

/* Run spec by time (or by count), reading CPU at the window's edges. */
static int run_phase(const bench_env_t *env, const bench_load_spec_t *spec,
                     bench_phase_t *p)
{
    char err[256];
    bench_load_t *l = bench_load_start(spec, err, sizeof(err));
    if (!l) {
        fprintf(stderr, "trellis-bench: %s\n", err);
        return -1;
    }
    if (!spec->max_calls)
        bench_sleep_until_ns(bench_load_window_start_ns(l));
    bench_env_snap(env, &p->a);
    if (!spec->max_calls)
        bench_sleep_until_ns(bench_load_window_end_ns(l));
    bench_load_finish(l, &p->r);
    bench_env_snap(env, &p->b);
    return 0;
}

static bench_load_spec_t base_spec(const bench_opts_t *o,
                                   const bench_conns_t *c)
{
    return (bench_load_spec_t){.conns = c,
                               .concurrency = o->concurrency,
                               .cq_threads = o->client_threads,
                               .warmup_s = o->warmup_s,
                               .duration_s = o->duration_s};
}

static int run_echo(const bench_opts_t *o, const bench_env_t *env,
                    bench_phase_t *p)
{
    bench_conns_t c;
    if (bench_conns_open(&c, env->part_addr, (size_t)o->channels,
                         BENCH_ECHO_METHOD) != 0)
        return -1;
    bench_load_spec_t s = base_spec(o, &c);
    s.make_request = bench_echo_make;
    int rc = run_phase(env, &s, p);
    bench_conns_close(&c);
    if (rc == 0)
        print_phase(env, "echo", "calls/s", p, "call", 0);
    return rc;
}

/* A timed phase of one Submit method (hold == 0), or exactly hold calls
 * of it. Returns the run's result; p gets its figures. */
static int run_submits(const bench_opts_t *o, const bench_env_t *env,
                       const char *method, bench_make_fn make,
                       bench_check_fn check, void *user, uint64_t hold,
                       bench_phase_t *p)
{
    bench_conns_t c;
    if (bench_conns_open(&c, env->tm_addr, (size_t)o->channels, method) != 0)
        return -1;
    bench_load_spec_t s = base_spec(o, &c);
    s.make_request = make;
    s.check_reply = check;
    s.user = user;
    if (hold) {
        s.max_calls = hold;
        s.warmup_s = s.duration_s = 0;
        s.call_timeout_ms = 60000;
    }
    int rc = run_phase(env, &s, p);
    bench_conns_close(&c);
    return rc;
}

/* Timed saga run (hold == 0) or the parking of o->hold held sagas. */
static int run_sagas(const bench_opts_t *o, const bench_env_t *env,
                     bench_saga_t *saga, uint64_t hold, bench_phase_t *p)
{
    int rc = run_submits(o, env, BENCH_SUBMIT_METHOD, bench_saga_make,
                         bench_saga_check, saga, hold, p);
    saga->gid_base += p->r.total_ok + p->r.total_failed;
    return rc;
}

/* Wait until the participant has seen n Hold calls: only then do all held
 * sagas sit idle in trellisd, waiting for their retry. */
static void wait_for_holds(const bench_env_t *env, uint64_t n)
{
    unsigned long long c[4] = {0};
    int64_t give_up = bench_mono_ns() + 300 * (int64_t)1000000000;
    while (bench_mono_ns() < give_up) {
        if (bench_env_part_stats(env, c) == 0 && c[2] >= n)
            break;
        bench_sleep_until_ns(bench_mono_ns() + 100000000);
    }
    printf("       participant has answered %llu Hold calls (of %llu)\n", c[2],
           (unsigned long long)n);
}

/* trellisd's RSS, summed over the nodes; -1 when one is unknown. */
static double rss_mb(const bench_env_t *env)
{
    long sum = 0;
    for (int i = 0; i < env->n_nodes; i++) {
        long kb = env->tm_pid[i] > 0 ? bench_sys_rss_kb(env->tm_pid[i]) : -1;
        if (kb < 0)
            return -1;
        sum += kb;
    }
    return (double)sum / 1024.0;
}

/* "trellisd at ADDR (pid N), ", and the same for the second node. */
static void print_nodes(const bench_env_t *env)
{
    for (int i = 0; i < env->n_nodes; i++)
        printf("%s at %s (pid %d), ", i ? "trellisd-2" : "trellisd",
               env->node_addr[i], env->tm_pid[i]);
}

/* ---- report ----------------------------------------------------------- */

static void print_header(const bench_opts_t *o)
{
    char model[256];
    bench_sys_cpu_model(model, sizeof(model));
    printf("trellis-bench: machine nproc=%d cpu=\"%s\"\n", bench_sys_nproc(),
           model);
    printf("parameters: mode=%s store=%s nodes=%d concurrency=%d duration=%gs "
           "warmup=%gs hold=%llu tm=%s tm_threads=%s participant=%s/%d "
           "client_threads=%d channels=%d\n",
           o->mode, o->store, o->nodes, o->concurrency, o->duration_s,
           o->warmup_s, (unsigned long long)o->hold, o->tm ? o->tm : "started",
           o->tm_threads ? "set" : "default", o->part_impl, o->part_threads,
           o->client_threads, o->channels);
    if (o->tm_threads)
        printf("            trellisd --threads %d\n", o->tm_threads);
    if (o->listeners)
        printf("            listeners=%d listener_batch=%d\n", o->listeners,
               o->listener_batch);
    if (strcmp(o->mode, "wf2") == 0)
        printf("            wf_threads=%d wf_park=%d wf_timeout_ms=%u "
               "wf_retry_ms=%u\n",
               o->wf_threads, o->wf_park, o->wf_timeout_ms, o->wf_retry_ms);
    if (strcmp(o->mode, "msg2") == 0)
        printf("            msg_wait=%d db_flush=%d\n", o->msg_wait,
               o->db_flush);
    fflush(stdout);
}

static void print_participant(const bench_env_t *env)
{
    unsigned long long c[4];
    if (bench_env_part_stats(env, c) == 0)
        printf("participant calls: action=%llu compensate=%llu hold=%llu "
               "echo=%llu\n",
               c[0], c[1], c[2], c[3]);
}

typedef struct {
    bench_phase_t echo, peak, park, held;
    bench_phase_t saga; /* wf2, msg2: saga2 in the same run */
    bench_phase_t base; /* tcc2, xa2: the same work without a TM */
    double rss_held_mb, rss_end_mb;
    int resumed; /* wf2: the resume phase ran and every workflow succeeded */
    bench_wf_resume_result_t resume;
} run_t;

/* gRPC calls per unit of work: a saga2 is Submit + 2 actions; a tcc2
 * transfer is Begin, 2 x RegisterBranch, 2 x Try, Submit, 2 x Confirm; an
 * xa2 order the same with Prepare and Commit; a hybrid3 transaction is
 * Begin, 2 x RegisterBranch, Prepare, TransTry, Submit (with the saga
 * step), then Reserve, Commit, TransConfirm; a wf2 workflow is
 * StartWorkflow, 2 x (RegisterBranch, Action, RecordStep), Submit; a msg2
 * message is PrepareMessage, Submit and 2 x Action. */
static int calls_per_op(const bench_opts_t *o)
{
    if (strcmp(o->mode, "hybrid3") == 0)
        return 9;
    if (strcmp(o->mode, "msg2") == 0)
        return 4;
    return strcmp(o->mode, "saga2") != 0 && strcmp(o->mode, "dtm-saga2") != 0
               ? 8
               : 3;
}

/* What the ratio line calls a unit of work. */
static const char *unit_name(const bench_opts_t *o)
{
    return strcmp(o->mode, "xa2") == 0       ? "orders"
           : strcmp(o->mode, "tcc2") == 0    ? "transfers"
           : strcmp(o->mode, "hybrid3") == 0 ? "transactions"
           : strcmp(o->mode, "wf2") == 0     ? "workflows"
           : strcmp(o->mode, "msg2") == 0    ? "messages"
                                             : "sagas";
}

/* tcc2 and xa2 measure the same work without a TM in the same run: their
 * RESULT ratio is tm/baseline (the echo ratio is echo_ratio). */
static int has_baseline(const bench_opts_t *o)
{
    return strcmp(o->mode, "tcc2") == 0 || strcmp(o->mode, "xa2") == 0;
}

/* wf2's fields of the RESULT line: saga2 of the same run, and the resume
 * phase's (0 when it did not run). */
static void print_wf_result(const bench_opts_t *o, const run_t *run)
{
    double saga = run->saga.r.rate;
    printf(" saga2_tps=%.0f vs_saga2=%.3f resume_p50_ms=%.0f "
           "resume_p99_ms=%.0f resume_timeout_ms=%u",
           saga, saga > 0 ? run->peak.r.rate / saga : 0,
           run->resumed ? run->resume.after_kill.p50_ms : 0,
           run->resumed ? run->resume.after_kill.p99_ms : 0, o->wf_timeout_ms);
}

static void print_result(const bench_opts_t *o, const run_t *run)
{
    const bench_phase_t *saga = o->hold ? &run->held : &run->peak;
    double echo = run->echo.r.rate, base = run->base.r.rate;
    int k = calls_per_op(o);
    double ratio = echo > 0 ? k * saga->r.rate / echo : 0;
    printf("%s %d x %s/s / echo calls/s = %d x %.0f / %.0f = %.3f\n",
           has_baseline(o) ? "echo_ratio" : "ratio", k, unit_name(o), k,
           saga->r.rate, echo, ratio);
    if (has_baseline(o))
        printf("ratio %s/s with trellisd / without = %.0f / %.0f = %.3f\n",
               unit_name(o), saga->r.rate, base,
               base > 0 ? saga->r.rate / base : 0);
    if (run->rss_end_mb >= 0)
        printf("trellisd RSS at end: %.1f MB\n", run->rss_end_mb);
    else
        printf("trellisd RSS at end: n/a (pass --tm-pid)\n");
    printf("RESULT mode=%s store=%s nodes=%d tps=%.0f p50_ms=%.3f "
           "p99_ms=%.3f echo_cps=%.0f",
           o->mode, o->store, o->nodes, saga->r.rate, saga->r.p50_ms,
           saga->r.p99_ms, echo);
    if (has_baseline(o))
        printf(" ratio=%.3f baseline_tps=%.0f echo_ratio=%.3f",
               base > 0 ? saga->r.rate / base : 0, base, ratio);
    else
        printf(" ratio=%.3f", ratio);
    if (o->hold)
        printf(" hold=%llu rss_mb=%.0f peak_tps=%.0f hold_vs_peak=%.3f",
               (unsigned long long)o->hold, run->rss_end_mb, run->peak.r.rate,
               run->peak.r.rate > 0 ? run->held.r.rate / run->peak.r.rate : 0);
    if (strcmp(o->mode, "wf2") == 0)
        print_wf_result(o, run);
    if (strcmp(o->mode, "msg2") == 0)
        printf(" wait_result=%d", o->msg_wait);
    if (strcmp(o->mode, "msg2") == 0 || strcmp(o->mode, "dtm-saga2") == 0)
        printf(" saga2_tps=%.0f vs_saga2=%.3f", run->saga.r.rate,
               run->saga.r.rate > 0 ? run->peak.r.rate / run->saga.r.rate : 0);
    printf("\n");
    fflush(stdout);
}

/* ---- main ------------------------------------------------------------- */

static int run_hold(const bench_opts_t *o, const bench_env_t *env, run_t *run)
{
    bench_saga_t held;
    bench_saga_init(&held, env->part_addr, "h");
    bench_saga_hold(&held, o->hold_retry_ms);
    if (run_sagas(o, env, &held, o->hold, &run->park) != 0)
        return -1;
    print_phase(env, "park", "sagas/s submitted", &run->park, "saga", 1);
    wait_for_holds(env, run->park.r.total_ok);
    run->rss_held_mb = rss_mb(env);
    printf("       trellisd RSS with %llu sagas held: %.1f MB\n",
           (unsigned long long)o->hold, run->rss_held_mb);
    return 0;
}

static const bench_labels_t TCC_LABELS = {"tcc2", "transfers/s", "transfer",
                                          "the banks"};
static const bench_labels_t TCC_BASE_LABELS = {"direct", "transfers/s",
                                               "transfer", "the banks"};
static const bench_labels_t XA_LABELS = {"xa2", "orders/s", "order",
                                         "the services"};
static const bench_labels_t XA_BASE_LABELS = {"direct", "orders/s", "order",
                                              "the services"};
static const bench_labels_t HYBRID_LABELS = {"hybrid3", "transactions/s",
                                             "transaction", "the services"};
static const bench_labels_t WF_LABELS = {"wf2", "workflows/s", "workflow",
                                         NULL};
static const bench_labels_t MSG_LABELS = {"msg2", "messages/s", "message",
                                          NULL};

/* A timed hybrid3, wf2 or msg2 run of op on bench_ap's threads over svcs
 * (NULL for wf2, whose service is this process; user: the workload's
 * env). */
static int run_ap_phase(const bench_opts_t *o, const bench_env_t *env,
                        const bench_ap_env_t *svcs, bench_ap_op_fn op,
                        const void *user, const bench_labels_t *lb,
                        bench_phase_t *p)
{
    bench_ap_spec_t s = {.tm_addr = env->tm_addr,
                         .concurrency = o->concurrency,
                         .warmup_s = o->warmup_s,
                         .duration_s = o->duration_s,
                         .op = op,
                         .user = user};
    return bench_phase_ap(env, &s, svcs, lb, p);
}

/* tcc2 and xa2: a timed run of op through bench_async's callbacks: first
 * op through trellisd into tm, then direct (the same work without a TM)
 * into base, in the same run. */
static int run_async_phases(const bench_opts_t *o, const bench_env_t *env,
                            const bench_ap_env_t *svcs,
                            const bench_async_op_fn ops[2], const void *user,
                            const bench_labels_t *const lbs[2], run_t *run)
{
    bench_async_spec_t s = {.tm_addr = env->tm_addr,
                            .concurrency = o->concurrency,
                            .warmup_s = o->warmup_s,
                            .duration_s = o->duration_s,
                            .op = ops[0],
                            .user = user};
    if (bench_phase_async(env, &s, svcs, lbs[0], &run->peak) != 0)
        return -1;
    s.op = ops[1];
    if (bench_phase_async(env, &s, svcs, lbs[1], &run->base) != 0)
        return -1;
    printf("       %s/direct = %.0f / %.0f = %.3f (the same work without "
           "a TM, same client, same run)\n",
           lbs[0]->name, run->peak.r.rate, run->base.r.rate,
           run->base.r.rate > 0 ? run->peak.r.rate / run->base.r.rate : 0);
    return 0;
}

/* What tcc2, xa2 and hybrid3 do before starting their services: name trellisd
 * and the echo participant, and measure the gRPC ceiling. */
static int run_ap_echo(const bench_opts_t *o, const bench_env_t *env,
                       run_t *run)
{
    print_nodes(env);
    printf("echo participant at %s (pid %d)\n", env->part_addr, env->part_pid);
    return run_echo(o, env, &run->echo);
}

static int run_tcc(const bench_opts_t *o, const bench_env_t *env, run_t *run)
{
    bench_tcc_env_t banks;
    if (run_ap_echo(o, env, run) != 0)
        return -1;
    if (bench_tcc_env_start(&banks, env->h, o->bank_threads, o->accounts,
                            o->db_flush) != 0)
        return -1;
    printf("MariaDB (pid %d, innodb_flush_log_at_trx_commit=%d), bank-a at "
           "%s, bank-b at %s, %d accounts each, bank-service --threads %d\n",
           banks.ap.db_pid, o->db_flush, banks.ap.svc_addr[0],
           banks.ap.svc_addr[1], o->accounts, o->bank_threads);
    fflush(stdout);
    const bench_async_op_fn ops[2] = {bench_tcc_transfer, bench_tcc_direct};
    const bench_labels_t *const lbs[2] = {&TCC_LABELS, &TCC_BASE_LABELS};
    if (run_async_phases(o, env, &banks.ap, ops, &banks, lbs, run) != 0)
        return -1;
    run->rss_end_mb = rss_mb(env);
    return 0;
}

static int run_xa(const bench_opts_t *o, const bench_env_t *env, run_t *run)
{
    bench_xa_env_t svcs;
    if (run_ap_echo(o, env, run) != 0)
        return -1;
    if (bench_xa_env_start(&svcs, env->h, o->bank_threads, o->accounts,
                           o->db_flush) != 0)
        return -1;
    printf("MariaDB (pid %d, innodb_flush_log_at_trx_commit=%d), "
           "order-service at %s, stock-service at %s, %d SKUs, --threads "
           "%d\n",
           svcs.ap.db_pid, o->db_flush, svcs.ap.svc_addr[0],
           svcs.ap.svc_addr[1], o->accounts, o->bank_threads);
    fflush(stdout);
    const bench_async_op_fn ops[2] = {bench_xa_order, bench_xa_direct};
    const bench_labels_t *const lbs[2] = {&XA_LABELS, &XA_BASE_LABELS};
    if (run_async_phases(o, env, &svcs.ap, ops, &svcs, lbs, run) != 0)
        return -1;
    run->rss_end_mb = rss_mb(env);
    return 0;
}

static int run_hybrid(const bench_opts_t *o, const bench_env_t *env, run_t *run)
{
    bench_hybrid_env_t svcs;
    if (run_ap_echo(o, env, run) != 0)
        return -1;
    if (bench_hybrid_env_start(&svcs, env->h, o->bank_threads, o->accounts,
                               o->concurrency, o->warmup_s + o->duration_s,
                               o->db_flush) != 0)
        return -1;
    printf("MariaDB (pid %d, innodb_flush_log_at_trx_commit=%d), "
           "order-service at %s, bank-service at %s, shipping-service at %s, "
           "%d accounts, %llu shipping slots, --threads %d\n",
           svcs.ap.db_pid, o->db_flush, svcs.ap.svc_addr[0],
           svcs.ap.svc_addr[1], svcs.ap.svc_addr[2], o->accounts,
           (unsigned long long)svcs.slots, o->bank_threads);
    fflush(stdout);
    if (run_ap_phase(o, env, &svcs.ap, bench_hybrid_txn, &svcs, &HYBRID_LABELS,
                     &run->peak) != 0)
        return -1;
    run->rss_end_mb = rss_mb(env);
    return 0;
}

/* wf2's resume phase, unless --wf-park 0. */
static int run_wf_resume(const bench_opts_t *o, const bench_env_t *env,
                         run_t *run)
{
    bench_wf_resume_spec_t s = {.n = o->wf_park,
                                .timeout_ms = o->wf_timeout_ms,
                                .retry_ms = o->wf_retry_ms,
                                .threads = o->wf_threads};
    if (o->wf_park == 0)
        return 0;
    int rc = bench_wf_resume_run(env, &s, &run->resume);
    bench_wf_resume_print(&s, &run->resume);
    run->resumed = rc == 0;
    return rc;
}

/* wf2: the ceiling, saga2, then workflows with the service in this
 * process, then the resume phase. */
static int run_wf(const bench_opts_t *o, const bench_env_t *env, run_t *run)
{
    bench_wf_env_t wf;
    bench_saga_t saga;
    bench_saga_init(&saga, env->part_addr, "b");
    if (run_ap_echo(o, env, run) != 0 ||
        run_sagas(o, env, &saga, 0, &run->saga) != 0)
        return -1;
    print_phase(env, "saga2", "sagas/s", &run->saga, "saga", 1);
    if (bench_wf_env_start(&wf, env, o->wf_threads) != 0)
        return -1;
    printf("workflow service in this process at %s (--wf-threads %d); a "
           "workflow is 8 gRPC calls (StartWorkflow, 2 x (RegisterBranch, "
           "Action, RecordStep), Submit with wait_result)\n",
           wf.svc[0].addr, o->wf_threads);
    fflush(stdout);
    int rc =
        run_ap_phase(o, env, NULL, bench_wf_op, &wf, &WF_LABELS, &run->peak);
    bench_wf_env_stop(&wf);
    if (rc != 0)
        return -1;
    printf("       wf2/saga2 = %.0f / %.0f = %.3f\n", run->peak.r.rate,
           run->saga.r.rate,
           run->saga.r.rate > 0 ? run->peak.r.rate / run->saga.r.rate : 0);
    print_participant(env);
    rc = run_wf_resume(o, env, run);
    run->rss_end_mb = rss_mb(env);
    return rc;
}

/* msg2 without wait: wait for the deliveries behind the counted submits
 * (2 Actions each, on top of the participant's count before the phase). */
static void drain_msgs(const bench_env_t *env, unsigned long long before,
                       const bench_phase_t *p)
{
    unsigned long long want = before + 2 * p->r.total_ok;
    double s = bench_msg_drain(env, want, 60);
    if (s >= 0)
        printf("       every step delivered %.3f s after the load ended\n", s);
    else
        printf("       WARNING: steps still undelivered 60 s after the load "
               "ended\n");
}

/* msg2: the ceiling, saga2, then messages with local transactions on the
 * bench's MariaDB. */
static int run_msg(const bench_opts_t *o, const bench_env_t *env, run_t *run)
{
    bench_msg_env_t m;
    bench_saga_t saga;
    unsigned long long c[4] = {0};
    bench_saga_init(&saga, env->part_addr, "b");
    if (run_ap_echo(o, env, run) != 0 ||
        run_sagas(o, env, &saga, 0, &run->saga) != 0)
        return -1;
    print_phase(env, "saga2", "sagas/s", &run->saga, "saga", 1);
    if (bench_msg_env_start(&m, env, o->concurrency, o->msg_wait,
                            o->db_flush) != 0)
        return -1;
    printf("MariaDB (pid %d, innodb_flush_log_at_trx_commit=%d) with a "
           "connection per load thread; back-check at %s (this process); a "
           "message is 4 gRPC calls (PrepareMessage, Submit%s, 2 x Action) "
           "and a local transaction of 4 round trips\n",
           m.ap.db_pid, o->db_flush, m.query_prepared,
           o->msg_wait ? " with wait" : "");
    fflush(stdout);
    bench_env_part_stats(env, c);
    int rc =
        run_ap_phase(o, env, &m.ap, bench_msg_op, &m, &MSG_LABELS, &run->peak);
    if (rc == 0 && !o->msg_wait)
        drain_msgs(env, c[0], &run->peak);
    if (rc == 0)
        printf("       msg2/saga2 = %.0f / %.0f = %.3f; business rows %lld, "
               "messages counted %llu (warm-up included), back-check calls "
               "%llu\n",
               run->peak.r.rate, run->saga.r.rate,
               run->saga.r.rate > 0 ? run->peak.r.rate / run->saga.r.rate : 0,
               bench_msg_rows(&m), (unsigned long long)run->peak.r.total_ok,
               bench_msg_checks(&m));
    bench_msg_env_stop(&m);
    print_participant(env);
    run->rss_end_mb = rss_mb(env);
    return rc;
}

/* dtm-saga2: the ceiling, saga2 through trellis.v1.TM, then the same
 * sagas through DTM's Submit, alternated once more so that a drift of the
 * shared machine shows (the figures are the second pair). */
static int run_dtm(const bench_opts_t *o, const bench_env_t *env, run_t *run)
{
    bench_saga_t saga;
    bench_dtm_t dtm;
    bench_saga_init(&saga, env->part_addr, "b");
    bench_dtm_init(&dtm, env->part_addr);
    printf("participant at %s (pid %d); dtm-saga2 sends saga2's sagas as "
           "DTM's Go SDK packs them to %s (WaitResult)\n",
           env->part_addr, env->part_pid, BENCH_DTM_SUBMIT_METHOD);
    fflush(stdout);
    if (run_echo(o, env, &run->echo) != 0)
        return -1;
    for (int round = 0; round < 2; round++) {
        if (run_sagas(o, env, &saga, 0, &run->saga) != 0)
            return -1;
        print_phase(env, "saga2", "sagas/s", &run->saga, "saga", 1);
        int rc = run_submits(o, env, BENCH_DTM_SUBMIT_METHOD, bench_dtm_make,
                             bench_dtm_check, &dtm, 0, &run->peak);
        dtm.gid_base += run->peak.r.total_ok + run->peak.r.total_failed;
        if (rc != 0)
            return -1;
        print_phase(env, "dtm-saga2", "sagas/s", &run->peak, "saga", 1);
        printf("       dtm-saga2/saga2 = %.0f / %.0f = %.3f\n",
               run->peak.r.rate, run->saga.r.rate,
               run->saga.r.rate > 0 ? run->peak.r.rate / run->saga.r.rate : 0);
    }
    run->rss_end_mb = rss_mb(env);
    print_participant(env);
    return 0;
}

static int run_all(const bench_opts_t *o, const bench_env_t *env, run_t *run)
{
    if (strcmp(o->mode, "dtm-saga2") == 0)
        return run_dtm(o, env, run);
    if (strcmp(o->mode, "msg2") == 0)
        return run_msg(o, env, run);
    if (strcmp(o->mode, "wf2") == 0)
        return run_wf(o, env, run);
    if (strcmp(o->mode, "tcc2") == 0)
        return run_tcc(o, env, run);
    if (strcmp(o->mode, "xa2") == 0)
        return run_xa(o, env, run);
    if (strcmp(o->mode, "hybrid3") == 0)
        return run_hybrid(o, env, run);
    bench_saga_t saga;
    bench_saga_init(&saga, env->part_addr, "b");
    bench_saga_listen(&saga, o->listeners, (uint32_t)o->listener_batch);
    print_nodes(env);
    printf("participant at %s (pid %d)\n", env->part_addr, env->part_pid);
    if (run_echo(o, env, &run->echo) != 0 ||
        run_sagas(o, env, &saga, 0, &run->peak) != 0)
        return -1;
    print_phase(env, o->hold ? "peak" : "saga2", "sagas/s", &run->peak, "saga",
                1);
    if (o->hold) {
        if (run_hold(o, env, run) != 0 ||
            run_sagas(o, env, &saga, 0, &run->held) != 0)
            return -1;
        print_phase(env, "held", "sagas/s (with held sagas)", &run->held,
                    "saga", 1);
    }
    run->rss_end_mb = rss_mb(env);
    print_participant(env);
    return 0;
}

/* Mode scale's options: its own flags and the saga2 load's. */
static const bench_scale_opts_t *scale_opts(bench_opts_t *o)
{
    o->scale.store = o->store;
    o->scale.concurrency = o->concurrency;
    o->scale.channels = o->channels;
    o->scale.client_threads = o->client_threads;
    o->scale.duration_s = o->duration_s;
    o->scale.warmup_s = o->warmup_s;
    return &o->scale;
}

int main(int argc, char **argv)
{
    bench_env_locate();
    if (bench_wfsvc_wanted(argc, argv))
        return bench_wfsvc_main(argc, argv);
    bench_opts_t o;
    int pr = bench_opts_parse(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    print_header(&o);
    grpc_init();
    bench_env_t env;
    bench_env_opts_t eo = {.tm = o.tm,
                           .tm_pid = o.tm_pid,
                           .tm_threads = o.tm_threads,
                           .part_impl = o.part_impl,
                           .part_threads = o.part_threads,
                           .nodes = o.nodes};
    if (strcmp(o.mode, "scale") == 0)
        return bench_scale_main(scale_opts(&o), &eo);
    if (bench_env_start(&env, &eo) != 0)
        return 1;
    run_t run;
    memset(&run, 0, sizeof(run));
    int ok = run_all(&o, &env, &run) == 0;
    if (ok)
        print_result(&o, &run);
    const bench_phase_t *saga = o.hold ? &run.held : &run.peak;
    ok = ok && saga->r.ok > 0;
    bench_env_stop(&env, ok);
    /* No grpc_shutdown: the SDK's cached Stats channel is still alive, and
     * the process ends here anyway. */
    return ok ? 0 : 1;
}
