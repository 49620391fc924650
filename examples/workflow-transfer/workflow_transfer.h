/*
 * workflow_transfer.h: what the files of example-workflow-transfer (the
 * driver of the workflow-transfer example; workflow_transfer.c says what
 * it does) share. Names are wft_*; the constants are the example's own.
 *
 * The files, a concern each:
 *   workflow_transfer.c — the scenario table, the command line, main;
 *   wft_env.c           — the processes it starts (and the workflow
 *                         service's kill, restart and release 2), the
 *                         control methods of the workflow service, and
 *                         what it reads straight from MariaDB;
 *   wft_scenarios.c     — the scenarios and their checks.
 *
 * Threads: everything runs on the driver's main thread.
 */
#ifndef WORKFLOW_TRANSFER_H
#define WORKFLOW_TRANSFER_H

#include <limits.h>
#include <mysql.h>
#include <stddef.h>
#include <stdint.h>

#include "example_driver.h"
#include "harness.h"
#include "trellis/trellis.h"

#define EX "workflow-transfer"
#define ADDR_MAX 128
#define TEXT_MAX 640
#define CALL_TIMEOUT_MS 20000
#define FINAL_TIMEOUT_MS 30000
#define WF_TIMEOUT_MS                                                          \
    1000 /* each workflow's timeout: then trellisd resumes                     \
          */
#define START_BALANCE 1000
#define AMOUNT 30

/* The services, in start order. */
enum { SVC_BANK_A, SVC_BANK_B, SVC_LEDGER, SVC_WORKFLOW, N_SVC };

/* Per service: process name, binary, database. */
typedef struct {
    const char *name, *bin, *database;
} wft_svc_t;

extern const wft_svc_t WFT_SVC[N_SVC];

typedef struct {
    example_procs_t procs; /* what setup started, MariaDB included */
    const char *socket;    /* MariaDB's */
    char tm[ADDR_MAX], svc[N_SVC][ADDR_MAX];
    char log[N_SVC][PATH_MAX]; /* each service's log */
    harness_server_t *svc_srv[N_SVC];
    trellis_client_t *client;
    MYSQL *conn; /* the driver's own: reads the services' tables */
} wft_env_t;

/* ---- processes (wft_env.c) ----------------------------------------------- */

/* Start MariaDB, trellisd, the banks, the ledger and the workflow service
 * (release 1), connect, seed alice@bank-a and bob@bank-b, make the client.
 * 0 or -1. */
int wft_setup(wft_env_t *env);

/* Close the driver's connection and stop what setup started. 0 or -1. */
int wft_stop_started(wft_env_t *env);

/* kill -9 the workflow service. 0 or -1. */
int wft_kill_workflow_service(wft_env_t *env);

/* Start the workflow service again, release 1, on its port. 0 or -1. */
int wft_restart_workflow_service(wft_env_t *env);

/* Start release 2 of the workflow service on the killed one's port, as
 * process "transfer-workflow-service-r2". The server, or NULL. */
harness_server_t *wft_start_release_2(wft_env_t *env);

/* Stop a release 2 started above; 0 if it exited 0, else -1 (printed). */
int wft_stop_release_2(harness_server_t *s);

/* ---- the workflow service's control methods (wft_env.c) ------------------ */

/* Call /wftransfer.v1.Control/<method> with a printf-formatted payload;
 * the reply as a malloc'd string in *text (may be NULL). 0, or -1 with
 * err. */
int wft_control(const wft_env_t *env, const char *method, char **text,
                char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* ---- MariaDB (wft_env.c) ------------------------------------------------- */

/* How many XIDs XA RECOVER lists; -1 with a failed check. */
int wft_xa_prepared(const wft_env_t *env, example_check_t *ck);

/* ---- scenarios (wft_scenarios.c; env: a wft_env_t) ----------------------- */

void wft_scenario_success(void *env, example_check_t *ck);
void wft_scenario_failure_last(void *env, example_check_t *ck);
void wft_scenario_killed_1(void *env, example_check_t *ck);
void wft_scenario_killed_2(void *env, example_check_t *ck);
void wft_scenario_killed_3(void *env, example_check_t *ck);
void wft_scenario_killed_4(void *env, example_check_t *ck);
void wft_scenario_mismatch(void *env, example_check_t *ck);

#endif /* WORKFLOW_TRANSFER_H */
