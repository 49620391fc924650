/*
 * oo_env.c: the processes example-order-outbox starts (a throwaway
 * MariaDB, trellisd, outbox-stock-service, outbox-shipping-service — the
 * subscriber, stopped and started again — and outbox-order-service,
 * killed and started again), the topic subscription, and the order
 * service's control methods. See order_outbox.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "order_outbox.h"
#include "trellis/trellis_msg.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define SVC_ARGS 16

const oo_svc_t OO_SVC[N_SVC] = {
    [SVC_STOCK] = {"stock-service", "outbox-stock-service", "oo_stock"},
    [SVC_SHIPPING] = {"shipping-service", "outbox-shipping-service",
                      "oo_shipping"},
    [SVC_ORDER] = {"order-service", "outbox-order-service", "oo_orders"},
};

/* ---- processes ----------------------------------------------------------- */

static int start_tm(oo_env_t *env)
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

static int start_service(oo_env_t *env, int i)
{
    const char *args[SVC_ARGS] = {
        "--database", OO_SVC[i].database, "--mysql-socket",
        env->socket,  "--threads",        "4",
        NULL};
    if (i == SVC_ORDER) {
        const char *more[] = {"--tm",
                              env->tm,
                              "--stock",
                              env->svc[SVC_STOCK],
                              "--timeout-ms",
                              STR(MSG_TIMEOUT_MS),
                              NULL};
        memcpy(args + 6, more, sizeof more);
    }
    harness_server_t *s =
        example_start_service(&env->procs, OO_SVC[i].name, OO_SVC[i].bin, args);
    if (!s)
        return -1;
    env->svc_srv[i] = s;
    snprintf(env->svc[i], sizeof env->svc[i], "%s", harness_server_addr(s));
    snprintf(env->log[i], sizeof env->log[i], "%s",
             harness_proc_log(harness_server_proc(s)));
    printf("started %s at %s (database %s)\n", OO_SVC[i].name, env->svc[i],
           OO_SVC[i].database);
    return 0;
}

/* START_STOCK of ITEM, straight into stock-service's table. */
static int seed_stock(oo_env_t *env)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO %s.stock (item, quantity) VALUES ('%s', %d)",
             OO_SVC[SVC_STOCK].database, ITEM, START_STOCK);
    if (mysql_query(env->conn, sql) == 0)
        return 0;
    fprintf(stderr, "example-" EX ": seed: %s\n", mysql_error(env->conn));
    return -1;
}

/* shipping-service's Ship gets every message step naming TOPIC. */
static int subscribe_shipping(oo_env_t *env)
{
    char target[ADDR_MAX + 64], err[256];
    int created = 0;
    snprintf(target, sizeof target, "%s/shipping.Shipping/Ship",
             env->svc[SVC_SHIPPING]);
    if (trellis_subscribe(env->client, TOPIC, target,
                          "shipping-service: ship each order", &created, err,
                          sizeof err) != TRELLIS_OK) {
        fprintf(stderr, "example-" EX ": subscribe: %s\n", err);
        return -1;
    }
    printf("subscribed %s to topic %s (%s)\n", target, TOPIC,
           created ? "new" : "already there");
    return 0;
}

int oo_setup(oo_env_t *env)
{
    if (example_procs_open(&env->procs, "example-" EX) != 0 ||
        !(env->socket = example_start_mariadb(&env->procs)) ||
        !(env->conn = example_connect_mariadb("example-" EX, env->socket)) ||
        start_tm(env) != 0)
        return -1;
    for (int i = 0; i < N_SVC; i++)
        if (start_service(env, i) != 0)
            return -1;
    if (seed_stock(env) != 0 ||
        example_client_new("example-" EX, env->tm, CALL_TIMEOUT_MS,
                           &env->client) != 0)
        return -1;
    return subscribe_shipping(env);
}

int oo_stop_started(oo_env_t *env)
{
    if (env->conn)
        mysql_close(env->conn);
    env->conn = NULL;
    return example_procs_stop(&env->procs);
}

int oo_kill_and_restart(oo_env_t *env, int i)
{
    return harness_server_kill(env->svc_srv[i]) == 0 &&
                   harness_server_restart(env->svc_srv[i]) == 0
               ? 0
               : -1;
}

int oo_stop_service(oo_env_t *env, int i)
{
    harness_proc_t *p = harness_server_proc(env->svc_srv[i]);
    int st = harness_proc_stop(p, 5000);
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    printf("   %s did not exit 0 (wait status %d)\n", OO_SVC[i].name, st);
    harness_proc_log_tail(p, 30);
    return -1;
}

int oo_start_again(oo_env_t *env, int i)
{
    return harness_server_restart(env->svc_srv[i]);
}

/* ---- control methods ----------------------------------------------------- */

int oo_order_call(const oo_env_t *env, const char *method, char **text,
                  char *err, size_t errlen, const char *fmt, ...)
{
    char full[96], payload[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(payload, sizeof payload, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "/order.Orders/%s", method);
    return example_call_text(env->svc[SVC_ORDER], full, payload, text, err,
                             errlen);
}
