/*
 * wft_env.c: the processes example-workflow-transfer starts (a throwaway
 * MariaDB, trellisd, bank-service twice, ledger-service, and
 * transfer-workflow-service — killed, restarted, and replaced by its
 * release 2 on the same port), the workflow service's control methods,
 * and XA RECOVER (the scenarios read the tables with
 * example_sql_number). See workflow_transfer.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "workflow_transfer.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define WF_ARGS 32

const wft_svc_t WFT_SVC[N_SVC] = {
    [SVC_BANK_A] = {"bank-a", "bank-service", "wf_bank_a"},
    [SVC_BANK_B] = {"bank-b", "bank-service", "wf_bank_b"},
    [SVC_LEDGER] = {"ledger-service", "ledger-service", "wf_ledger"},
    [SVC_WORKFLOW] = {"transfer-workflow-service", "transfer-workflow-service",
                      "wf_transfer"},
};

/* ---- processes ----------------------------------------------------------- */

static int start_tm(wft_env_t *env)
{
    const char *args[] = {"--retry-interval-ms",
                          "50",
                          "--request-timeout-ms",
                          "2000",
                          "--max-backoff-ms",
                          "300",
                          NULL};
    return example_start_tm(&env->procs, args, env->tm, sizeof env->tm) ? 0
                                                                        : -1;
}

/* The workflow service's flags, release 1 or 2; listen NULL: the
 * harness's own --listen. argv has WF_ARGS slots. */
static void workflow_args(const wft_env_t *env, const char *listen, int release,
                          const char **argv)
{
    const char *common[] = {
        "--database",     WFT_SVC[SVC_WORKFLOW].database,
        "--mysql-socket", env->socket,
        "--tm",           env->tm,
        "--bank-a",       env->svc[SVC_BANK_A],
        "--bank-b",       env->svc[SVC_BANK_B],
        "--ledger",       env->svc[SVC_LEDGER],
        "--timeout-ms",   STR(WF_TIMEOUT_MS),
        "--threads",      "8",
        "--release",      release == 2 ? "2" : "1",
    };
    int n = 0;
    if (listen) {
        argv[n++] = "--listen";
        argv[n++] = listen;
    }
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        argv[n++] = common[i];
    argv[n] = NULL;
}

static int start_service(wft_env_t *env, int i)
{
    const char *args[WF_ARGS] = {"--database",
                                 WFT_SVC[i].database,
                                 "--mysql-socket",
                                 env->socket,
                                 "--threads",
                                 "4",
                                 i <= SVC_BANK_B ? "--name" : NULL,
                                 WFT_SVC[i].name,
                                 NULL};
    if (i == SVC_WORKFLOW)
        workflow_args(env, NULL, 1, args);
    harness_server_t *s = example_start_service(&env->procs, WFT_SVC[i].name,
                                                WFT_SVC[i].bin, args);
    if (!s)
        return -1;
    env->svc_srv[i] = s;
    snprintf(env->svc[i], sizeof env->svc[i], "%s", harness_server_addr(s));
    snprintf(env->log[i], sizeof env->log[i], "%s",
             harness_proc_log(harness_server_proc(s)));
    printf("started %s at %s (database %s)\n", WFT_SVC[i].name, env->svc[i],
           WFT_SVC[i].database);
    return 0;
}

/* alice@bank-a has START_BALANCE, bob@bank-b nothing; nobody@bank-b does
 * not exist. Straight into the banks' tables, before any transfer. */
static int seed_accounts(wft_env_t *env)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s.accounts (id, balance) VALUES ('alice', %d)",
             WFT_SVC[SVC_BANK_A].database, START_BALANCE);
    if (mysql_query(env->conn, sql) == 0) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO %s.accounts (id, balance) VALUES ('bob', 0)",
                 WFT_SVC[SVC_BANK_B].database);
        if (mysql_query(env->conn, sql) == 0)
            return 0;
    }
    fprintf(stderr, "example-" EX ": seed: %s\n", mysql_error(env->conn));
    return -1;
}

int wft_setup(wft_env_t *env)
{
    if (example_procs_open(&env->procs, "example-" EX) != 0 ||
        !(env->socket = example_start_mariadb(&env->procs)) ||
        !(env->conn = example_connect_mariadb("example-" EX, env->socket)) ||
        start_tm(env) != 0)
        return -1;
    for (int i = 0; i < N_SVC; i++)
        if (start_service(env, i) != 0)
            return -1;
    if (seed_accounts(env) != 0)
        return -1;
    return example_client_new("example-" EX, env->tm, CALL_TIMEOUT_MS,
                              &env->client);
}

int wft_stop_started(wft_env_t *env)
{
    if (env->conn)
        mysql_close(env->conn);
    env->conn = NULL;
    return example_procs_stop(&env->procs);
}

int wft_kill_workflow_service(wft_env_t *env)
{
    return harness_server_kill(env->svc_srv[SVC_WORKFLOW]);
}

int wft_restart_workflow_service(wft_env_t *env)
{
    return harness_server_restart(env->svc_srv[SVC_WORKFLOW]);
}

harness_server_t *wft_start_release_2(wft_env_t *env)
{
    char path[PATH_MAX];
    const char *args[WF_ARGS];
    example_service_bin(WFT_SVC[SVC_WORKFLOW].bin, path, sizeof path);
    /* A later --listen wins over the harness's 127.0.0.1:0. */
    workflow_args(env, env->svc[SVC_WORKFLOW], 2, args);
    return harness_server_start(env->procs.h, "transfer-workflow-service-r2",
                                path, args);
}

int wft_stop_release_2(harness_server_t *s)
{
    int st = harness_proc_stop(harness_server_proc(s), 5000);
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    printf("   transfer-workflow-service-r2 did not exit 0 (wait status %d)\n",
           st);
    harness_proc_log_tail(harness_server_proc(s), 30);
    return -1;
}

/* ---- control methods ----------------------------------------------------- */

int wft_control(const wft_env_t *env, const char *method, char **text,
                char *err, size_t errlen, const char *fmt, ...)
{
    char full[96], payload[TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(payload, sizeof payload, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "/wftransfer.v1.Control/%s", method);
    return example_call_text(env->svc[SVC_WORKFLOW], full, payload, text, err,
                             errlen);
}

/* ---- MariaDB ------------------------------------------------------------- */

int wft_xa_prepared(const wft_env_t *env, example_check_t *ck)
{
    MYSQL_RES *r = NULL;
    if (!example_expect(ck,
                        mysql_query(env->conn, "XA RECOVER") == 0 &&
                            (r = mysql_store_result(env->conn)) != NULL,
                        "XA RECOVER: %s", mysql_error(env->conn)))
        return -1;
    int n = (int)mysql_num_rows(r);
    mysql_free_result(r);
    return n;
}
