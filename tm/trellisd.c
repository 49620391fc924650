/*
 * trellisd: the Trellis transaction manager's main. Wires the pipeline
 * together — gRPC front (tm_server) -> engine (tm_engine) -> store
 * (tm_store) / branch caller (tm_caller) -> timers (tm_timer) — recovers
 * unfinished transactions, serves, and stops on SIGINT/SIGTERM.
 *
 * Stopping (SIGTERM/SIGINT): refuse new transactions, keep driving the
 * live ones for up to --shutdown-grace-ms (a second signal cuts it short),
 * then stop accepting calls, commit everything queued, exit 0. Every state
 * change was durable before it was acted on, so whatever is still
 * unfinished resumes on the next start exactly as after a crash.
 */
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_exit.h"
#include "tm_absl.h"
#include "tm_api.h"
#include "tm_caller.h"
#include "tm_engine_env.h"
#include "tm_config.h"
#include "tm_engine.h"
#include "tm_log.h"
#include "tm_console.h"
#include "tm_metrics_http.h"
#include "tm_notify.h"
#include "tm_server.h"
#include "tm_tls.h"
#include "trellis_portfile.h"
#ifdef TM_WITH_FAULTS
#include "tm_fault.h"
#endif

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
    if (cfg->max_message_bytes)
        return cfg->max_message_bytes;
    size_t body = (size_t)cfg->engine.limits.max_branches *
                  ((size_t)cfg->engine.limits.max_payload + 1024);
    return body + (1u << 20);
}

/* --max-payload, lowered to what the store can hold (the MySQL server's
 * max_allowed_packet bounds one row), so a payload too large for it is
 * refused at the request with a message saying why, never queued to jam
 * the store; --max-result and --max-action-log too. */
static void fit_payload_to_store(tm_engine_config_t *c, tm_store_t *store)
{
    tm_limits_t *l = &c->limits;
    char why[sizeof(l->payload_bound)];
    uint32_t cap = tm_store_max_payload(store, why, sizeof(why));
    if (l->max_result > cap)
        l->max_result = cap;
    if (c->max_action_log > cap)
        c->max_action_log = cap;
    if (l->max_payload <= cap)
        return;
    tm_log(TM_LOG_WARN,
           "event=max_payload_lowered configured=%u store_max=%u msg=\"%s\"",
           l->max_payload, cap, why);
    l->max_payload = cap;
    snprintf(l->payload_bound, sizeof(l->payload_bound), "%s", why);
}

/* TLS credentials of the API (tls-*) and of calls to participants
 * (participant-tls-*), as configured; NULL where plaintext. Built before
 * anything else starts, so an unusable file stops trellisd at once. */
static int load_tls(const tm_config_t *cfg, grpc_server_credentials **sc,
                    grpc_channel_credentials **cc, char *err, size_t errlen)
{
    *sc = NULL;
    *cc = NULL;
    if (cfg->tls_cert[0] &&
        tm_tls_server_creds(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, sc,
                            err, errlen) != 0)
        return -1;
    if (cfg->part_tls_ca[0] &&
        tm_tls_channel_creds(cfg->part_tls_ca, cfg->part_tls_cert,
                             cfg->part_tls_key, cc, err, errlen) != 0)
        return -1;
    return 0;
}

/* The graceful part of a stop: no new transactions, and up to grace_ms
 * for the live ones to finish. A second stop signal ends the wait. */
static void drain(tm_engine_t *eng, const sigset_t *stop, int sig,
                  uint32_t grace_ms)
{
    tm_engine_drain(eng);
    tm_log(TM_LOG_INFO, "event=draining signal=%d live=%zu grace_ms=%u", sig,
           tm_engine_live_count(eng), grace_ms);
    const struct timespec no_wait = {0, 0};
    uint32_t waited = 0, slice = 100;
    size_t left = tm_engine_live_count(eng);
    while (left > 0 && waited < grace_ms) {
        uint32_t step = grace_ms - waited < slice ? grace_ms - waited : slice;
        left = tm_engine_wait_idle(eng, step);
        waited += step;
        if (left > 0 && sigtimedwait(stop, NULL, &no_wait) > 0) {
            tm_log(TM_LOG_WARN, "event=drain_cut_short msg=\"second stop "
                                "signal\"");
            break;
        }
    }
    tm_log(TM_LOG_INFO,
           "event=drained unfinished=%zu msg=\"unfinished transactions stay "
           "in storage and resume at the next start\"",
           left);
}

static int fail(const char *what, const char *err)
{
    fprintf(stderr, "trellisd: %s: %s\n", what, err);
    return TM_EXIT_START_FAILED;
}

/* --log-format: "" or kv, or json. Returns 0, or -1 with err. */
static int setup_log_format(const tm_config_t *cfg, char *err, size_t errlen)
{
    tm_log_format_t f = TM_LOG_KV;
    if (cfg->log_format[0] && tm_log_parse_format(cfg->log_format, &f) != 0) {
        snprintf(err, errlen, "--log-format: \"%s\" is not kv or json",
                 cfg->log_format);
        return -1;
    }
    tm_log_set_format(f);
    return 0;
}

/* " NAME=HOST:PORT" of an address flag's host and the port bound. */
static void print_address(const char *name, const char *flag, int port)
{
    const char *colon = strrchr(flag, ':');
    printf(" %s=%.*s:%d", name, colon ? (int)(colon - flag) : 0, flag, port);
}

/* The ready line on stdout: the API's address, and the metrics endpoint's
 * and the console's when they are served (scripts and tests read the ports
 * from it). */
static void print_ready(const tm_config_t *cfg, int port, int metrics_port,
                        int console_port)
{
    printf("trellisd ready");
    print_address("listen", cfg->listen, port);
    if (cfg->metrics_listen[0])
        print_address("metrics", cfg->metrics_listen, metrics_port);
    if (cfg->http_listen[0])
        print_address("console", cfg->http_listen, console_port);
    printf("\n");
    fflush(stdout);
}

/* Tell systemd (Type=notify, $NOTIFY_SOCKET) what trellisd is doing:
 * READY=1 once it serves, STOPPING=1 when a stop begins. Without a service
 * manager nothing is sent; a failure is logged, never fatal (systemd then
 * reports the start as timed out, with this line in the journal). */
static void tell_service_manager(const char *state)
{
    char err[512];
    if (tm_notify_send(state, err, sizeof(err)) < 0)
        tm_log(TM_LOG_WARN, "event=notify_failed state=%s msg=\"%s\"", state,
               err);
}

int main(int argc, char **argv)
{
    tm_absl_no_deadlock_detection();
    tm_config_t cfg;
    char err[1024];
    tm_config_default(&cfg);
    int pr = tm_config_parse(&cfg, argc, argv, err, sizeof(err));
    if (pr != 0)
        return pr > 0 ? 0 : fail("bad setting", err);
    tm_log_set_level(cfg.log_level);
    if (setup_log_format(&cfg, err, sizeof(err)) != 0)
        return fail("bad flag", err);

    sigset_t stop;
    block_stop_signals(&stop);
    grpc_init();
    grpc_server_credentials *server_creds;
    grpc_channel_credentials *part_creds;
    if (load_tls(&cfg, &server_creds, &part_creds, err, sizeof(err)) != 0)
        return fail("tls", err);

    tm_store_t *store;
    tm_timers_t *timers;
    tm_server_t *srv;
    tm_caller_t *caller;
    tm_engine_t *eng;
    size_t max_msg = max_message_of(&cfg);
    tm_store_config_t store_cfg;
    if (tm_config_store(&cfg, &store_cfg, err, sizeof(err)) != 0)
        return fail("bad flag", err);
#ifdef TM_WITH_FAULTS /* trellisd-faults, the test build (tests/faults) */
    if (tm_fault_vfs_register(err, sizeof(err)) != 0)
        return fail("faults", err);
#endif
    if (tm_store_open(&store_cfg, &store, err, sizeof(err)) != 0)
        return fail("store", err);
#ifdef TM_WITH_FAULTS
    if (tm_fault_install(store, getenv("TRELLIS_FAULT_SOCKET"), err,
                         sizeof(err)) != 0)
        return fail("faults", err);
#endif
    fit_payload_to_store(&cfg.engine, store);
    if (tm_timers_start(&timers, err, sizeof(err)) != 0)
        return fail("timers", err);
    if (tm_server_new(cfg.threads, max_msg, &srv, err, sizeof(err)) != 0 ||
        tm_caller_new(srv, max_msg, &caller, err, sizeof(err)) != 0)
        return fail("server", err);
#ifdef TM_WITH_FAULTS
    tm_fault_set_server(srv);
#endif
    /* The cluster's identity goes to participants on every call and to
     * clients on every reply: XA XIDs carry it (docs/architecture.md). */
    char cluster_id[TM_CLUSTER_ID_MAX + 1];
    const char *cluster_how = "";
    if (tm_config_cluster_id(&cfg, cluster_id, sizeof(cluster_id), &cluster_how,
                             err, sizeof(err)) != 0)
        return fail("cluster id", err);
    tm_server_set_cluster_id(srv, cluster_id);
    tm_caller_set_cluster_id(caller, cluster_id);
    if (server_creds)
        tm_server_set_credentials(srv, server_creds);
    if (part_creds)
        tm_caller_set_credentials(caller, part_creds, cfg.part_tls_server_name);
    tm_engine_front_t front;
    tm_engine_env_t env;
    tm_api_front(&front);
    tm_engine_env_real(&env, store, caller, timers);
    if (tm_engine_new(&cfg.engine, &env, &front, &eng, err, sizeof(err)) != 0 ||
        tm_api_add_methods(srv, eng, err, sizeof(err)) != 0)
        return fail("engine", err);
#ifdef TM_WITH_FAULTS
    tm_fault_set_engine(eng);
    tm_fault_set_caller(caller);
#endif
    long loaded = tm_engine_load(eng, err, sizeof(err));
    if (loaded < 0)
        return fail("recovery", err);

    int port = 0;
    if (tm_server_start(srv, cfg.listen, &port, err, sizeof(err)) != 0)
        return fail("listen", err);
    tm_metrics_http_t *metrics = NULL;
    int metrics_port = 0;
    if (cfg.metrics_listen[0] &&
        tm_metrics_http_start(cfg.metrics_listen, &metrics, &metrics_port, err,
                              sizeof(err)) != 0)
        return fail("metrics", err);
    tm_console_t *console = NULL;
    int console_port = 0;
    if (cfg.http_listen[0] &&
        tm_console_start(cfg.http_listen, cfg.http_token_file,
                         cfg.http_allow_hosts, srv, &console, &console_port,
                         err, sizeof(err)) != 0)
        return fail("console", err);
    tm_engine_resume_all(eng);
    if (cfg.port_file[0] &&
        trellis_portfile_write(cfg.port_file, port, err, sizeof(err)) != 0)
        return fail("port file", err);
    print_ready(&cfg, port, metrics_port, console_port);
    tm_log(TM_LOG_INFO,
           "event=ready port=%d store=%s data_dir=\"%s\" recovered=%ld "
           "cluster_id=%s cluster_id_from=%s",
           port, tm_store_kind_name(store), cfg.data_dir, loaded, cluster_id,
           cluster_how);
    tm_log(TM_LOG_INFO,
           "event=security config=\"%s\" tls=%s participant_tls=%s "
           "allow_targets=\"%s\" max_message_bytes=%zu max_inflight=%u",
           cfg.config_file,
           cfg.tls_client_ca[0] ? "mutual"
           : cfg.tls_cert[0]    ? "on"
                                : "off",
           cfg.part_tls_cert[0] ? "mutual"
           : cfg.part_tls_ca[0] ? "on"
                                : "off",
           cfg.engine.limits.allow.text, max_msg, cfg.engine.max_inflight);
    tell_service_manager("READY=1");

    int sig = 0;
    sigwait(&stop, &sig);
    tell_service_manager("STOPPING=1");
    drain(eng, &stop, sig, cfg.shutdown_grace_ms);
    tm_log(TM_LOG_INFO, "event=stopping signal=%d", sig);
    tm_server_stop_accepting(srv);
    /* Release what this node still owns here: with a shared (mysql) store,
     * the leases of the transactions still unfinished, so another node can
     * take them over at once instead of after the lease runs out. (Hook for
     * the multi-node store; see tm_store.h.) */
    tm_store_flush(store);
    tm_store_release_leases(store);
    tm_log(TM_LOG_INFO, "event=stopped");
    /* In-flight branch calls and waiting transactions resume on restart;
     * tearing down live gRPC calls would only risk a crash on the way out. */
    _exit(TM_EXIT_OK);
}
