/*
 * order_outbox.h: what the files of example-order-outbox (the driver of
 * the order-outbox example; order_outbox.c says what it does) share.
 * Names are oo_*; the constants are the example's own.
 *
 * The files, a concern each:
 *   order_outbox.c  — the scenario table, the command line, main;
 *   oo_env.c        — the processes it starts (and the order service's
 *                     kill and restart, the shipping service's stop and
 *                     start) and the order service's control methods;
 *   oo_scenarios.c  — the scenarios and their checks (reading MariaDB
 *                     with example_sql_number).
 *
 * Threads: everything runs on the driver's main thread.
 */
#ifndef ORDER_OUTBOX_H
#define ORDER_OUTBOX_H

#include <limits.h>
#include <mysql.h>
#include <stddef.h>

#include "example_driver.h"
#include "harness.h"
#include "trellis/trellis.h"

#define EX "order-outbox"
#define ADDR_MAX 128
#define TEXT_MAX 1600
#define CALL_TIMEOUT_MS 20000
#define FINAL_TIMEOUT_MS 30000
/* Each message's timeout: then trellisd back-checks it. Long enough for
 * the driver to kill a held order service first. */
#define MSG_TIMEOUT_MS 2000
#define ITEM "widget"
#define START_STOCK 100
#define TOPIC "order.created"

/* The services, in start order. */
enum { SVC_STOCK, SVC_SHIPPING, SVC_ORDER, N_SVC };

/* Per service: process name, binary, database. */
typedef struct {
    const char *name, *bin, *database;
} oo_svc_t;

extern const oo_svc_t OO_SVC[N_SVC];

typedef struct {
    example_procs_t procs; /* what setup started, MariaDB included */
    const char *socket;    /* MariaDB's */
    char tm[ADDR_MAX], svc[N_SVC][ADDR_MAX];
    char log[N_SVC][PATH_MAX]; /* each service's log */
    harness_server_t *svc_srv[N_SVC];
    trellis_client_t *client;
    MYSQL *conn; /* the driver's own: reads the services' tables */
} oo_env_t;

/* ---- processes (oo_env.c) ------------------------------------------------ */

/* Start MariaDB, trellisd, stock, shipping and the order service, connect,
 * seed START_STOCK of ITEM, make the client, subscribe shipping's Ship to
 * TOPIC. 0 or -1. */
int oo_setup(oo_env_t *env);

/* Close the driver's connection and stop what setup started. 0 or -1. */
int oo_stop_started(oo_env_t *env);

/* kill -9 service i, then start it again on its port. 0 or -1. */
int oo_kill_and_restart(oo_env_t *env, int i);

/* Stop service i (SIGTERM); 0 if it exited 0, else -1 (printed). */
int oo_stop_service(oo_env_t *env, int i);

/* Start a stopped service i again on its port. 0 or -1. */
int oo_start_again(oo_env_t *env, int i);

/* ---- the order service's control methods (oo_env.c) ---------------------- */

/* Call /order.Orders/<method> with a printf-formatted payload; the reply
 * as a malloc'd string in *text (may be NULL). 0, or -1 with err. */
int oo_order_call(const oo_env_t *env, const char *method, char **text,
                  char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* ---- scenarios (oo_scenarios.c; env: an oo_env_t) ------------------------ */

void oo_scenario_success(void *env, example_check_t *ck);
void oo_scenario_rollback(void *env, example_check_t *ck);
void oo_scenario_killed_after_commit(void *env, example_check_t *ck);
void oo_scenario_killed_before_commit(void *env, example_check_t *ck);
void oo_scenario_subscriber_down(void *env, example_check_t *ck);

#endif /* ORDER_OUTBOX_H */
