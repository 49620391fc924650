/*
 * trellisd: the Trellis transaction manager's main. Wires the pipeline
 * together — gRPC front (tm_server) -> engine (tm_engine) -> store
 * (tm_store) / branch caller (tm_caller) -> timers (tm_timer) — recovers
 * unfinished transactions, serves, and stops on SIGINT/SIGTERM.
 *
 * Stopping: stop accepting calls, commit everything queued, exit. Every
 * state change was durable before it was acted on, so whatever was in
 * flight resumes on the next start exactly as after a crash.
 */
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "tm_config.h"
#include "tm_engine.h"
#include "tm_log.h"
#include "tm_server.h"

static void handle_health_check(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                                void *user)
{
    (void)user;
    Grpc__Health__V1__HealthCheckRequest *r =
        grpc__health__v1__health_check_request__unpack(NULL, len, req);
    if (!r) {
        tm_server_reply(rpc, GRPC_STATUS_INVALID_ARGUMENT,
                        "malformed grpc.health.v1.HealthCheckRequest", NULL);
        return;
    }
    int known = !*r->service || strcmp(r->service, "trellis.v1.TM") == 0;
    grpc__health__v1__health_check_request__free_unpacked(r, NULL);
    if (!known) {
        tm_server_reply(rpc, GRPC_STATUS_NOT_FOUND, "unknown service", NULL);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse out =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    out.status =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    tm_server_reply(rpc, GRPC_STATUS_OK, NULL, &out.base);
}

static int add_methods(tm_server_t *srv, tm_engine_t *eng, char *err,
                       size_t errlen)
{
    const struct {
        const char *name;
        tm_method_fn fn;
    } m[] = {
        {"/trellis.v1.TM/NewGid", tm_engine_handle_new_gid},
        {"/trellis.v1.TM/Begin", tm_engine_handle_begin},
        {"/trellis.v1.TM/RegisterBranch", tm_engine_handle_register},
        {"/trellis.v1.TM/Submit", tm_engine_handle_submit},
        {"/trellis.v1.TM/Abort", tm_engine_handle_abort},
        {"/trellis.v1.TM/Query", tm_engine_handle_query},
        {"/trellis.v1.TM/List", tm_engine_handle_list},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (tm_server_add_method(srv, m[i].name, m[i].fn, eng, err, errlen))
            return -1;
    return tm_server_add_method(srv, "/grpc.health.v1.Health/Check",
                                handle_health_check, NULL, err, errlen);
}

static int write_port_file(const char *path, int port)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

static void block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static size_t max_message_of(const tm_config_t *cfg)
{
    size_t body = (size_t)cfg->engine.limits.max_branches *
                  ((size_t)cfg->engine.limits.max_payload + 1024);
    return body + (1u << 20);
}

static int fail(const char *what, const char *err)
{
    fprintf(stderr, "trellisd: %s: %s\n", what, err);
    return 1;
}

int main(int argc, char **argv)
{
    tm_config_t cfg;
    char err[1024];
    tm_config_default(&cfg);
    int pr = tm_config_parse(&cfg, argc, argv, err, sizeof(err));
    if (pr != 0)
        return pr > 0 ? 0 : fail("bad flag", err);
    tm_log_set_level(cfg.log_level);

    sigset_t stop;
    block_stop_signals(&stop);
    grpc_init();

    tm_store_t *store;
    tm_timers_t *timers;
    tm_server_t *srv;
    tm_caller_t *caller;
    tm_engine_t *eng;
    size_t max_msg = max_message_of(&cfg);
    if (tm_store_open(cfg.data_dir, &store, err, sizeof(err)) != 0)
        return fail("store", err);
    if (tm_timers_start(&timers, err, sizeof(err)) != 0)
        return fail("timers", err);
    if (tm_server_new(cfg.threads, max_msg, &srv, err, sizeof(err)) != 0 ||
        tm_caller_new(srv, max_msg, &caller, err, sizeof(err)) != 0)
        return fail("server", err);
    if (tm_engine_new(&cfg.engine, store, timers, caller, &eng, err,
                      sizeof(err)) != 0 ||
        add_methods(srv, eng, err, sizeof(err)) != 0)
        return fail("engine", err);
    long loaded = tm_engine_load(eng, err, sizeof(err));
    if (loaded < 0)
        return fail("recovery", err);

    int port = 0;
    if (tm_server_start(srv, cfg.listen, &port, err, sizeof(err)) != 0)
        return fail("listen", err);
    tm_engine_resume_all(eng);
    if (cfg.port_file[0] && write_port_file(cfg.port_file, port) != 0)
        return fail("port file", cfg.port_file);
    const char *colon = strrchr(cfg.listen, ':');
    printf("trellisd ready listen=%.*s:%d\n",
           colon ? (int)(colon - cfg.listen) : 0, cfg.listen, port);
    fflush(stdout);
    tm_log(TM_LOG_INFO, "event=ready port=%d data_dir=\"%s\" recovered=%ld",
           port, cfg.data_dir, loaded);

    int sig = 0;
    sigwait(&stop, &sig);
    tm_log(TM_LOG_INFO, "event=stopping signal=%d", sig);
    tm_server_stop_accepting(srv);
    tm_store_flush(store);
    tm_log(TM_LOG_INFO, "event=stopped");
    /* In-flight branch calls and waiting transactions resume on restart;
     * tearing down live gRPC calls would only risk a crash on the way out. */
    _exit(0);
}
