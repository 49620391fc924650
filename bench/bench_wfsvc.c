/*
 * bench_wfsvc: the workflow service process of wf2's resume phase (see
 * bench_wfsvc.h) - flags, the Park control method, the port file, and
 * waiting for SIGTERM.
 *
 * Park runs on one of the service's workers and blocks it until the
 * parked runs are blocked (at most PARK_WAIT_MS); the runs themselves get
 * threads of their own, detached, since they never return while the
 * service holds.
 */
#include "bench_wfsvc.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_wf.h"
#include "trellis_portfile.h"

#define PARK_WAIT_MS 60000
#define PARK_MAX 100000

typedef struct {
    const char *listen, *port_file, *tm, *part;
    int threads;
} svc_opts_t;

static bench_wf_svc_t svc; /* the process's one service */

/* What the parked runs report back; guarded by park_mu. */
static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static int park_failed;
static char park_error[256];

/* ---- flags ------------------------------------------------------------ */

int bench_wfsvc_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], BENCH_WFSVC_FLAG) == 0)
            return 1;
    return 0;
}

static int parse(int argc, char **argv, svc_opts_t *o)
{
    *o = (svc_opts_t){.listen = "127.0.0.1:0", .threads = 16};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (strcmp(k, BENCH_WFSVC_FLAG) == 0)
            continue;
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[++i];
        if (strcmp(k, "--listen") == 0)
            o->listen = v;
        else if (strcmp(k, "--port-file") == 0)
            o->port_file = v;
        else if (strcmp(k, "--tm") == 0)
            o->tm = v;
        else if (strcmp(k, "--part") == 0)
            o->part = v;
        else if (strcmp(k, "--threads") == 0)
            o->threads = atoi(v);
        else
            return -1;
    }
    return o->tm && o->part && o->threads >= 1 && o->threads <= 256 ? 0 : -1;
}

/* ---- Park ------------------------------------------------------------- */

typedef struct {
    char gid[96];
    trellis_options_t o;
} park_run_t;

/* One parked workflow: blocks in the hold, or returns with its failure. */
static void *park_run(void *arg)
{
    park_run_t *r = arg;
    char err[512] = "";
    trellis_trans_status_t st = 0;
    trellis_rc_t rc =
        bench_wf_execute(&svc, r->gid, &r->o, &st, err, sizeof(err));
    pthread_mutex_lock(&park_mu);
    if (park_failed++ == 0)
        snprintf(park_error, sizeof(park_error), "%.64s: rc %d %s: %.120s",
                 r->gid, rc, trellis_trans_status_name(st), err);
    pthread_mutex_unlock(&park_mu);
    free(r);
    return NULL;
}

static int parked_failed(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&park_mu);
    int f = park_failed;
    pthread_mutex_unlock(&park_mu);
    return f > 0;
}

/* Start run i of a park; 0, or -1 (counted as failed). */
static int start_run(const char *prefix, int i, const trellis_options_t *o)
{
    park_run_t *r = calloc(1, sizeof(*r));
    pthread_t t;
    pthread_attr_t a;
    if (!r)
        return -1;
    snprintf(r->gid, sizeof(r->gid), "%s%d", prefix, i);
    r->o = *o;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 1024 * 1024);
    int rc = pthread_create(&t, &a, park_run, r);
    pthread_attr_destroy(&a);
    if (rc != 0)
        free(r);
    return rc == 0 ? 0 : -1;
}

static void park(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                 size_t len, trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)user;
    char text[256], prefix[64];
    int n = 0;
    trellis_options_t o = {0};
    snprintf(text, sizeof(text), "%.*s", (int)len, (const char *)payload);
    if (sscanf(text, "n=%d timeout_ms=%u retry_ms=%u prefix=%63s", &n,
               &o.timeout_to_fail_ms, &o.retry_interval_ms, prefix) != 4 ||
        n < 1 || n > PARK_MAX) {
        reply->code = TRELLIS_REPLY_FAILURE;
        snprintf(reply->message, sizeof(reply->message), "bad park: %.200s",
                 text);
        return;
    }
    bench_wf_svc_hold(&svc, 1);
    int started = 0;
    while (started < n && start_run(prefix, started, &o) == 0)
        started++;
    int held = bench_wf_svc_wait_held(&svc, started, PARK_WAIT_MS,
                                      parked_failed, NULL);
    pthread_mutex_lock(&park_mu);
    int failed = park_failed + (n - started);
    int m = snprintf(text, sizeof(text), "parked=%d failed=%d%s%s", held,
                     failed, park_error[0] ? " error=" : "", park_error);
    pthread_mutex_unlock(&park_mu);
    if ((reply->body = malloc((size_t)m)) != NULL) {
        memcpy(reply->body, text, (size_t)m);
        reply->body_len = (size_t)m;
    }
}

/* ---- main ------------------------------------------------------------- */

static int serve(const svc_opts_t *o)
{
    char err[512];
    int port = 0;
    if (bench_wf_svc_new(&svc, o->tm, o->part, o->threads, err, sizeof(err)) !=
            0 ||
        trellis_participant_handle(svc.p, BENCH_WFSVC_PARK, park, NULL, err,
                                   sizeof(err)) != TRELLIS_OK ||
        bench_wf_svc_serve(&svc, o->listen, &port, err, sizeof(err)) != 0 ||
        (o->port_file &&
         trellis_portfile_write(o->port_file, port, err, sizeof(err)) != 0)) {
        fprintf(stderr, "trellis-bench --wf-service: %s\n", err);
        return -1;
    }
    printf("trellis-bench --wf-service ready at %s threads=%d tm=%s\n",
           svc.addr, o->threads, o->tm);
    fflush(stdout);
    return 0;
}

int bench_wfsvc_main(int argc, char **argv)
{
    svc_opts_t o;
    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: trellis-bench " BENCH_WFSVC_FLAG
                        " --listen ADDR --port-file FILE --tm HOST:PORT "
                        "--part HOST:PORT [--threads N]\n");
        return 2;
    }
    /* gRPC's threads inherit the mask, so only sigwait sees the signal. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    grpc_init();
    if (serve(&o) != 0)
        return 1;
    int sig = 0;
    sigwait(&stop, &sig);
    /* Parked runs block in the service for good: no teardown. */
    _exit(0);
}
