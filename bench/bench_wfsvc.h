/*
 * bench_wfsvc: `trellis-bench --wf-service`, the workflow service process
 * of wf2's resume phase - bench.wf2's service (bench_wf.h) on a port of
 * its own, started (and killed, and restarted on the same port) by the
 * bench through the test harness:
 *
 *   trellis-bench --wf-service --listen ADDR --port-file FILE
 *                 --tm HOST:PORT --part HOST:PORT [--threads N]
 *
 * Besides Resume it serves one control method, BENCH_WFSVC_PARK: the
 * request "n=N timeout_ms=T retry_ms=R prefix=P" makes the service hold
 * (bench_wf_svc_hold) and start N workflows, gids P0 .. P<N-1>, with
 * timeout_to_fail_ms T and retry_interval_ms R, each on a thread of its
 * own; it answers "parked=N failed=F" once every one is blocked after its
 * step 01 or has failed (with the first failure after " error="). A
 * process that was never asked to park only serves Resume.
 *
 * The process runs until SIGTERM (exit 0) or SIGKILL; it never tears the
 * service down, since parked runs block in it for good.
 */
#ifndef BENCH_WFSVC_H
#define BENCH_WFSVC_H

#define BENCH_WFSVC_FLAG "--wf-service"
#define BENCH_WFSVC_PARK "/trellis.bench.WfService/Park"

/* Whether argv asks for the service (BENCH_WFSVC_FLAG anywhere: the
 * harness puts --listen and --port-file first). */
int bench_wfsvc_wanted(int argc, char **argv);

/* The service's main; returns the exit code. */
int bench_wfsvc_main(int argc, char **argv);

#endif /* BENCH_WFSVC_H */
