/*
 * hybrid_env.c: the processes example-hybrid-order starts (a throwaway
 * MariaDB, trellisd, order-service, bank-service, shipping-service) and
 * what it asks of them outside a transaction: seeding, each service's
 * full state (to compare before and after), and XA RECOVER after each
 * scenario. See hybrid_order.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hybrid_order.h"
#include "trellis/mysql_xa.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const hyb_svc_t HYB_SVC[N_SVC] = {
    {"order-service", "xaorder.v1.Order", "hy_orders", "State"},
    {"bank-service", "bank.v1.Bank", "hy_bank", "Accounts"},
    {"shipping-service", "hybrid.v1.Shipping", "hy_shipping", "State"},
};

const hyb_branch_t HYB_BR[N_BR] = {
    {SVC_ORDER, "Prepare", "Commit", "Rollback", "xa", "prepare", "commit",
     "rollback"},
    {SVC_BANK, "TransTry", "TransConfirm", "TransCancel", "tcc", "try",
     "confirm", "cancel"},
    {SVC_BANK, "TransTry", "TransConfirm", "TransCancel", "tcc", "try",
     "confirm", "cancel"},
    {SVC_SHIP, "Reserve", NULL, "Release", "saga", "action", NULL,
     "compensate"},
};

/* ---- processes ----------------------------------------------------------- */

static int start_tm(hyb_env_t *env)
{
    const char *args[] = {"--retry-interval-ms",
                          STR(RETRY_INTERVAL_MS),
                          "--request-timeout-ms",
                          STR(REQUEST_TIMEOUT_MS),
                          "--max-backoff-ms",
                          "300",
                          NULL};
    env->tm_srv = example_start_tm(&env->procs, args, env->tm, sizeof env->tm);
    return env->tm_srv ? 0 : -1;
}

static int start_service(hyb_env_t *env, int i)
{
    const char *args[] = {"--database",
                          HYB_SVC[i].database,
                          "--mysql-socket",
                          env->socket,
                          "--threads",
                          "4",
                          i == SVC_BANK ? "--name" : NULL,
                          "bank",
                          "--seed-token-file",
                          env->seed_token_file,
                          NULL};
    harness_server_t *s = example_start_service(&env->procs, HYB_SVC[i].name,
                                                HYB_SVC[i].name, args);
    if (!s)
        return -1;
    env->svc_srv[i] = s;
    snprintf(env->svc[i], sizeof env->svc[i], "%s", harness_server_addr(s));
    snprintf(env->log[i], sizeof env->log[i], "%s",
             harness_proc_log(harness_server_proc(s)));
    printf("started %s at %s (database %s)\n", HYB_SVC[i].name, env->svc[i],
           HYB_SVC[i].database);
    return 0;
}

static int connect_db(hyb_env_t *env)
{
    env->conn = mysql_init(NULL);
    if (env->conn && mysql_real_connect(env->conn, NULL, "root", NULL, NULL, 0,
                                        env->socket, 0))
        return 0;
    fprintf(stderr, "example-" EX ": connect to MariaDB: %s\n",
            env->conn ? mysql_error(env->conn) : "out of memory");
    return -1;
}

/* An order that exists before any transaction: order-refused reuses its
 * id. Straight into order-service's table (its schema exists once it runs). */
static int seed_existing_order(hyb_env_t *env)
{
    if (mysql_query(env->conn,
                    "INSERT IGNORE INTO hy_orders.orders (id, sku, "
                    "qty) VALUES ('" EXISTING_ORDER "', 'book', 1)") == 0)
        return 0;
    fprintf(stderr, "example-" EX ": seed order: %s\n", mysql_error(env->conn));
    return -1;
}

int hyb_setup(hyb_env_t *env)
{
    if (example_procs_open(&env->procs, "example-" EX) != 0 ||
        example_seed_token(&env->procs, env->seed_token, sizeof env->seed_token,
                           env->seed_token_file,
                           sizeof env->seed_token_file) != 0 ||
        !(env->socket = example_start_mariadb(&env->procs)) ||
        connect_db(env) != 0 || start_tm(env) != 0)
        return -1;
    for (int i = 0; i < N_SVC; i++)
        if (start_service(env, i) != 0)
            return -1;
    if (seed_existing_order(env) != 0)
        return -1;
    return example_client_new("example-" EX, env->tm, CALL_TIMEOUT_MS,
                              &env->client);
}

int hyb_stop_started(hyb_env_t *env)
{
    if (env->conn)
        mysql_close(env->conn);
    env->conn = NULL;
    return example_procs_stop(&env->procs);
}

/* ---- the services -------------------------------------------------------- */

static int svc_call(const hyb_env_t *env, int i, const char *method,
                    const char *payload, char **text, char *err, size_t errlen)
{
    char full[96];
    snprintf(full, sizeof full, "/%s/%s", HYB_SVC[i].service, method);
    return example_call_text(env->svc[i], full, payload, text, err, errlen);
}

/* Seed with a printf-formatted payload; 0 or -1 (a failed check). */
static int seed(const hyb_env_t *env, int svc, example_check_t *ck,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int seed(const hyb_env_t *env, int svc, example_check_t *ck,
                const char *fmt, ...)
{
    char payload[160], err[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(payload, sizeof payload, fmt, ap);
    va_end(ap);
    if (svc == SVC_BANK && n >= 0 && (size_t)n < sizeof payload)
        snprintf(payload + n, sizeof payload - (size_t)n, " token=%s",
                 env->seed_token);
    return example_expect(
               ck,
               svc_call(env, svc, "Seed", payload, NULL, err, sizeof err) == 0,
               "seed %s: %s", payload, err)
               ? 0
               : -1;
}

/* The accounts and carriers every scenario starts from. */
int hyb_seed_all(const hyb_env_t *env, example_check_t *ck)
{
    return seed(env, SVC_BANK, ck, "account=alice balance=%d", RICH) ||
                   seed(env, SVC_BANK, ck, "account=bob balance=%d", POOR) ||
                   seed(env, SVC_BANK, ck, "account=shop balance=0") ||
                   seed(env, SVC_SHIP, ck, "carrier=post capacity=%d",
                        RANDOM_MAX) ||
                   seed(env, SVC_SHIP, ck, "carrier=full capacity=0")
               ? -1
               : 0;
}

/* Append s to a malloc'd text (on no memory the text stays short: the
 * comparison that follows fails). */
static void buf_add(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t ncap = (*len + n + 1) * 2;
        char *p = realloc(*buf, ncap);
        if (!p)
            return;
        *buf = p, *cap = ncap;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* Every service's full state, one malloc'd text ("== svc\n" + its lines);
 * NULL with a failed check. */
char *hyb_snapshot(const hyb_env_t *env, example_check_t *ck)
{
    char *all = NULL, err[256];
    size_t len = 0, cap = 0;
    for (int i = 0; i < N_SVC; i++) {
        char *text = NULL, head[64];
        if (!example_expect(ck,
                            svc_call(env, i, HYB_SVC[i].state, "", &text, err,
                                     sizeof err) == 0,
                            "state of %s: %s", HYB_SVC[i].name, err)) {
            free(all);
            return NULL;
        }
        snprintf(head, sizeof head, "== %s\n", HYB_SVC[i].name);
        buf_add(&all, &len, &cap, head);
        buf_add(&all, &len, &cap, text);
        free(text);
    }
    return all;
}

/* 1 if text has a line that is exactly `line`. */
int hyb_has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (!strncmp(p, line, n) && (p[n] == '\n' || !p[n]))
            return 1;
    return 0;
}

/* 1 if text has a line ending with `tail`. */
int hyb_has_line_ending(const char *text, const char *tail)
{
    char want[192];
    snprintf(want, sizeof want, "%s\n", tail);
    return strstr(text, want) != NULL;
}

/* How many lines of text contain needle. */
int hyb_count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ---- XA RECOVER ---------------------------------------------------------- */

static int xa_prepared_count(const hyb_env_t *env, example_check_t *ck)
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

/* trellis_myxa_recover resolves what it may (expected nothing, unless
 * `may_find`), then nothing at all must be left prepared. */
void hyb_check_nothing_prepared(const hyb_env_t *env, int may_find,
                                example_check_t *ck)
{
    char err[256];
    unsigned committed = 0, rolled_back = 0;
    int rc = trellis_myxa_recover(env->conn, env->client, &committed,
                                  &rolled_back, err, sizeof err);
    printf("   trellis_myxa_recover: rc %d, committed %u, rolled back %u%s%s\n",
           rc, committed, rolled_back, rc ? ": " : "", rc ? err : "");
    example_expect(ck, rc == 0, "trellis_myxa_recover failed");
    example_expect(ck, may_find || (committed == 0 && rolled_back == 0),
                   "trellis_myxa_recover should find nothing left to resolve");
    int n = xa_prepared_count(env, ck);
    printf("   XA RECOVER: %d prepared XID(s)\n", n);
    example_expect(ck, n == 0, "nothing should be left prepared");
}
