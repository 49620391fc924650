/*
 * trellis-bench-part main: flags, the method table and counters shared by
 * both servers (see part.h), the port file, and waiting for SIGTERM.
 *
 *   trellis-bench-part --listen 127.0.0.1:0 --port-file FILE
 *                      [--threads N] [--impl core|sdk]
 */
#include "part.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trellis_portfile.h"

const part_method_info_t part_methods[PART_N_METHODS] = {
    [PART_ACTION] = {"/trellis.bench.Noop/Action", GRPC_STATUS_OK, ""},
    [PART_COMPENSATE] = {"/trellis.bench.Noop/Compensate", GRPC_STATUS_OK, ""},
    [PART_HOLD] = {"/trellis.bench.Noop/Hold", GRPC_STATUS_FAILED_PRECONDITION,
                   "ongoing"},
    [PART_ECHO] = {"/trellis.bench.Noop/Echo", GRPC_STATUS_OK, ""},
    [PART_STATS] = {"/trellis.bench.Noop/Stats", GRPC_STATUS_OK, ""},
};

atomic_ullong part_calls[PART_N_METHODS];

size_t part_stats_text(char *buf, size_t len)
{
    int n =
        snprintf(buf, len, "action=%llu compensate=%llu hold=%llu echo=%llu",
                 atomic_load(&part_calls[PART_ACTION]),
                 atomic_load(&part_calls[PART_COMPENSATE]),
                 atomic_load(&part_calls[PART_HOLD]),
                 atomic_load(&part_calls[PART_ECHO]));
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

typedef struct {
    const char *listen, *port_file, *impl;
    int threads;
} part_opts_t;

static int usage(void)
{
    fprintf(stderr, "usage: trellis-bench-part --listen ADDR --port-file FILE "
                    "[--threads N] [--impl core|sdk]\n");
    return 2;
}

static int parse(int argc, char **argv, part_opts_t *o)
{
    *o = (part_opts_t){"127.0.0.1:0", NULL, "core", 1};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--listen") == 0)
            o->listen = v;
        else if (strcmp(k, "--port-file") == 0)
            o->port_file = v;
        else if (strcmp(k, "--impl") == 0)
            o->impl = v;
        else if (strcmp(k, "--threads") == 0)
            o->threads = atoi(v);
        else
            return -1;
    }
    if (argc % 2 == 0 || o->threads < 1 || o->threads > 64 ||
        (strcmp(o->impl, "core") != 0 && strcmp(o->impl, "sdk") != 0))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    part_opts_t o;
    if (parse(argc, argv, &o) != 0)
        return usage();
    /* gRPC's threads inherit the mask, so only sigwait sees the signal. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    grpc_init();
    int port = 0;
    int rc = strcmp(o.impl, "sdk") == 0
                 ? part_sdk_serve(o.listen, o.threads, &port)
                 : part_core_serve(o.listen, o.threads, &port);
    if (rc != 0)
        return 1;
    char err[1024];
    if (o.port_file &&
        trellis_portfile_write(o.port_file, port, err, sizeof err) != 0) {
        fprintf(stderr, "trellis-bench-part: %s\n", err);
        return 1;
    }
    printf("trellis-bench-part ready port=%d impl=%s threads=%d\n", port,
           o.impl, o.threads);
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    /* Nothing to flush: the calls served are not state anyone reads after
     * the bench ends, so skip tearing down live gRPC calls. */
    _exit(0);
}
