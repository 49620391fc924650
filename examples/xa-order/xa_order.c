/*
 * example-xa-order: the driver of the xa-order example. Creating an order
 * is one XA transaction with two branches on two services (separate
 * processes, each with its own database on one MariaDB):
 *
 *   trellis_xa_begin
 *   call_branch 01 order-service Prepare "order=O sku=S qty=N"  (insert)
 *   call_branch 02 stock-service Prepare "order=O sku=S qty=N"  (deduct)
 *   submit (trellisd: XA COMMIT both) | abort (trellisd: XA ROLLBACK both)
 *
 *   example-xa-order [--scenario NAME] [--tm ADDR] [--order ADDR]
 *                    [--stock ADDR] [--mysql-socket PATH |
 *                    --mysql-host H --mysql-port P]
 *
 * It owns the scenarios, their checks and every process it starts: with the
 * test harness, a throwaway MariaDB, trellisd and both services (scratch
 * dir ${build}/test-data/example-xa-order-<pid>, with every process's log;
 * removed when all passed, kept otherwise). An address given on the command
 * line is used as is; then only the scenarios that kill nothing run (a
 * crash scenario asked for by name is a usage error). With --order or
 * --stock, MariaDB must be given too: the checks read XA RECOVER there.
 *
 * Scenarios (all by default, or one with --scenario):
 *   order-ok            both branches prepare, submit: trellisd commits both;
 *                       the order row is there and the stock deducted;
 *   out-of-stock        the stock branch refuses (short), the initiator
 *                       aborts, trellisd rolls back the prepared order: no
 *                       order, stock unchanged, nothing left prepared;
 *   stock-killed-after-prepare
 *                       both prepared, stock-service killed (SIGKILL); the
 *                       submit is accepted, the order commits, the stock's
 *                       XA stays prepared in MariaDB (XA RECOVER shows it)
 *                       while trellisd retries its commit; stock-service
 *                       restarts on the same port and the commit goes
 *                       through;
 *   tm-killed-between-prepare-and-commit
 *                       both prepared with fail_commits=3 (each service
 *                       answers its branch's first 3 commits UNAVAILABLE),
 *                       submit acknowledged, trellisd killed (SIGKILL)
 *                       before any commit took effect (both XIDs still
 *                       prepared), restarted on the same data dir: it
 *                       resumes, both commit, exactly once.
 * Every scenario ends by running trellis_myxa_recover (rm-adapters/mysql-xa)
 * against MariaDB, which must find nothing to resolve, and checking XA RECOVER
 * is empty; then exactly one line example=xa-order scenario=<name>
 * result=ok|FAIL Exit status 1 if any failed or a process it started did not
 * exit cleanly when stopped, 2 on a usage error.
 *
 * Threads: one; the harness is used from the main thread only.
 */
#include <limits.h>
#include <mysql.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example_driver.h"
#include "harness.h"
#include "trellis/trellis.h"
#include "trellis/trellis_xa.h"
#include "trellis/mysql_xa.h"

#define EX "xa-order"
#define ADDR_MAX 128
#define TARGET_MAX 256
#define GID_MAX 64
#define RETRY_INTERVAL_MS 50
#define REQUEST_TIMEOUT_MS 2000
#define STR_(x) #x
#define STR(x) STR_(x)
#define CALL_TIMEOUT_MS 20000
#define FINAL_TIMEOUT_MS 30000

enum { SVC_ORDER, SVC_STOCK, N_SVC };

static const struct {
    const char *name;     /* process and binary */
    const char *service;  /* gRPC service */
    const char *database; /* its database */
} SVC[N_SVC] = {
    {"order-service", "xaorder.v1.Order", "xa_orders"},
    {"stock-service", "xaorder.v1.Stock", "xa_stock"},
};

typedef struct {
    example_procs_t procs;     /* what setup started, MariaDB included */
    const char *socket, *host; /* MariaDB, as given or started */
    unsigned port;
    char tm[ADDR_MAX];
    char svc[N_SVC][ADDR_MAX];
    harness_server_t *tm_srv, *svc_srv[N_SVC]; /* NULL: not started here */
    char log[N_SVC][PATH_MAX];                 /* "" when not started here */
    trellis_client_t *client;
    MYSQL *conn; /* the driver's own, for XA RECOVER and trellis_myxa_recover */
    int external; /* an address was given: nothing may be killed */
} env_t;

/* ---- processes ------------------------------------------------------- */

static int start_tm(env_t *env)
{
    const char *args[] = {"--retry-interval-ms",
                          STR(RETRY_INTERVAL_MS),
                          "--request-timeout-ms",
                          STR(REQUEST_TIMEOUT_MS),
                          "--max-backoff-ms",
                          "500",
                          NULL};
    env->tm_srv = example_start_tm(&env->procs, args, env->tm, sizeof env->tm);
    return env->tm_srv ? 0 : -1;
}

static int start_service(env_t *env, int i)
{
    const char *args[] = {"--database", SVC[i].database, "--mysql-socket",
                          env->socket,  "--threads",     "4",
                          NULL};
    harness_server_t *s =
        example_start_service(&env->procs, SVC[i].name, SVC[i].name, args);
    if (!s)
        return -1;
    env->svc_srv[i] = s;
    snprintf(env->svc[i], sizeof env->svc[i], "%s", harness_server_addr(s));
    snprintf(env->log[i], sizeof env->log[i], "%s",
             harness_proc_log(harness_server_proc(s)));
    printf("started %s at %s (database %s)\n", SVC[i].name, env->svc[i],
           SVC[i].database);
    return 0;
}

static int start_mariadb(env_t *env)
{
    if (env->socket || env->host)
        return 0;
    env->socket = example_start_mariadb(&env->procs);
    return env->socket ? 0 : -1;
}

static int connect_db(env_t *env)
{
    env->conn = mysql_init(NULL);
    if (env->conn && mysql_real_connect(env->conn, env->host, "root", NULL,
                                        NULL, env->port, env->socket, 0))
        return 0;
    fprintf(stderr, "example-" EX ": connect to MariaDB: %s\n",
            env->conn ? mysql_error(env->conn) : "out of memory");
    return -1;
}

static int setup(env_t *env)
{
    if (example_procs_open(&env->procs, "example-" EX) != 0)
        return -1;
    if (start_mariadb(env) != 0 || connect_db(env) != 0)
        return -1;
    if (!env->tm[0] && start_tm(env) != 0)
        return -1;
    for (int i = 0; i < N_SVC; i++)
        if (!env->svc[i][0] && start_service(env, i) != 0)
            return -1;
    return example_client_new("example-" EX, env->tm, CALL_TIMEOUT_MS,
                              &env->client);
}

/* Stop what setup started (SIGTERM), newest first, MariaDB last; each must
 * exit 0. The driver's own connection is closed first. */
static int stop_started(env_t *env)
{
    if (env->conn)
        mysql_close(env->conn);
    env->conn = NULL;
    return example_procs_stop(&env->procs);
}

/* ---- the services ---------------------------------------------------- */

/* "host:port/xaorder.v1.<Svc>/<method>" */
static const char *target(const env_t *env, int i, const char *method,
                          char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s", env->svc[i], SVC[i].service, method);
    return buf;
}

/* Call /xaorder.v1.<Svc>/<method> with payload; the reply as a malloc'd
 * C string in *text (may be NULL). 0, or -1 with err. */
static int svc_call(const env_t *env, int i, const char *method,
                    const char *payload, char **text, char *err, size_t errlen)
{
    char full[96];
    snprintf(full, sizeof full, "/%s/%s", SVC[i].service, method);
    return example_call_text(env->svc[i], full, payload, text, err, errlen);
}

static int seed_stock(const env_t *env, const char *sku, long long qty,
                      example_check_t *ck)
{
    char payload[128], err[256];
    snprintf(payload, sizeof payload, "sku=%s qty=%lld", sku, qty);
    return example_expect(ck,
                          svc_call(env, SVC_STOCK, "Seed", payload, NULL, err,
                                   sizeof err) == 0,
                          "seed %s: %s", sku, err)
               ? 0
               : -1;
}

/* The State line of service i that starts with `key=value ` (or is it),
 * copied into line; 1 found, 0 not, -1 on error. */
static int state_line(const env_t *env, int i, const char *key,
                      const char *value, char *line, size_t len,
                      example_check_t *ck)
{
    char *text = NULL, *save = NULL, want[128], err[256];
    if (!example_expect(
            ck, svc_call(env, i, "State", "", &text, err, sizeof err) == 0,
            "State of %s: %s", SVC[i].name, err))
        return -1;
    int n = snprintf(want, sizeof want, "%s=%s", key, value), found = 0;
    for (char *l = strtok_r(text, "\n", &save); l && !found;
         l = strtok_r(NULL, "\n", &save))
        if (!strncmp(l, want, (size_t)n) && (l[n] == ' ' || l[n] == '\0')) {
            snprintf(line, len, "%s", l);
            found = 1;
        }
    free(text);
    return found;
}

/* Check the order row: present with qty, or absent (qty 0). */
static void check_order(const env_t *env, const char *order, long long qty,
                        example_check_t *ck)
{
    char line[256], want[160];
    int f = state_line(env, SVC_ORDER, "order", order, line, sizeof line, ck);
    if (f < 0)
        return;
    printf("   order-service: %s\n", f ? line : "no such order");
    if (qty == 0) {
        example_expect(ck, f == 0, "order %s should not exist", order);
        return;
    }
    snprintf(want, sizeof want, " qty=%lld", qty);
    example_expect(ck, f == 1 && strstr(line, want),
                   "order %s should exist with%s", order, want);
}

static void check_stock(const env_t *env, const char *sku, long long qty,
                        example_check_t *ck)
{
    char line[256], want[160];
    int f = state_line(env, SVC_STOCK, "sku", sku, line, sizeof line, ck);
    if (f < 0)
        return;
    printf("   stock-service: %s\n", f ? line : "no such sku");
    snprintf(want, sizeof want, "sku=%s qty=%lld", sku, qty);
    example_expect(ck, f == 1 && !strcmp(line, want), "stock should be \"%s\"",
                   want);
}

/* ---- MariaDB: XA RECOVER --------------------------------------------- */

/* The prepared XIDs of the server, one a line (their gtrid: the adapter's
 * "gid-branch_id"; the bqual holds the TM cluster's id), into buf; their
 * count, or -1 with a failed check. */
static int xa_prepared(const env_t *env, char *buf, size_t len,
                       example_check_t *ck)
{
    MYSQL_RES *r = NULL;
    if (!example_expect(ck,
                        mysql_query(env->conn, "XA RECOVER") == 0 &&
                            (r = mysql_store_result(env->conn)) != NULL,
                        "XA RECOVER: %s", mysql_error(env->conn)))
        return -1;
    int n = 0;
    size_t at = 0;
    MYSQL_ROW row;
    buf[0] = '\0';
    while ((row = mysql_fetch_row(r))) {
        unsigned long *l = mysql_fetch_lengths(r);
        unsigned long g = row[1] ? strtoul(row[1], NULL, 10) : l[3];
        if (at < len)
            at += (size_t)snprintf(buf + at, len - at, "%.*s\n",
                                   (int)(g < l[3] ? g : l[3]),
                                   row[3] ? row[3] : "");
        n++;
    }
    mysql_free_result(r);
    return n;
}

/* 1 if the XID of (gid, branch) is among the prepared ones. */
static int xid_prepared(const env_t *env, const char *gid, const char *branch,
                        example_check_t *ck)
{
    char xid[TRELLIS_MYXA_XID_MAX + 2], line[TRELLIS_MYXA_XID_MAX + 8],
        list[4096], err[256];
    if (!example_expect(ck,
                        trellis_myxa_make_xid(gid, branch, xid, sizeof xid, err,
                                              sizeof err) == 0,
                        "trellis_myxa_make_xid: %s", err) ||
        xa_prepared(env, list, sizeof list, ck) < 0)
        return 0;
    snprintf(line, sizeof line, "\n%s\n", xid);
    return !strncmp(list, line + 1, strlen(line + 1)) ||
           strstr(list, line) != NULL;
}

/* The end of every scenario: the recovery sweep finds nothing to resolve
 * and nothing at all is left prepared. */
static void check_nothing_prepared(const env_t *env, example_check_t *ck)
{
    char err[256], list[4096];
    unsigned committed = 0, rolled_back = 0;
    int rc = trellis_myxa_recover(env->conn, env->client, &committed,
                                  &rolled_back, err, sizeof err);
    printf("   trellis_myxa_recover: rc %d, committed %u, rolled back %u%s%s\n",
           rc, committed, rolled_back, rc ? ": " : "", rc ? err : "");
    example_expect(ck, rc == 0 && committed == 0 && rolled_back == 0,
                   "trellis_myxa_recover should find nothing left to resolve");
    int n = xa_prepared(env, list, sizeof list, ck);
    printf("   XA RECOVER: %d prepared XID(s)%s%s", n, n > 0 ? ":\n" : "\n",
           n > 0 ? list : "");
    example_expect(ck, n == 0, "nothing should be left prepared");
}

/* ---- the TM ---------------------------------------------------------- */

/* Query until final or the deadline; the last answer (NULL on error). */
static trellis_trans_info_t *query_final(const env_t *env, const char *gid,
                                         int64_t timeout_ms)
{
    int64_t deadline = harness_mono_ms() + timeout_ms;
    char err[256];
    for (;;) {
        trellis_trans_info_t *info = NULL;
        trellis_rc_t rc =
            trellis_query(env->client, gid, &info, err, sizeof err);
        if (rc == TRELLIS_OK &&
            (example_is_final(info->status) || harness_mono_ms() >= deadline))
            return info;
        trellis_trans_info_free(info);
        if (rc != TRELLIS_OK && rc != TRELLIS_UNAVAILABLE) {
            printf("   query %s: %s\n", gid, err);
            return NULL;
        }
        if (harness_mono_ms() >= deadline)
            return NULL;
        harness_sleep_ms(20);
    }
}

static const trellis_op_info_t *branch_op(const trellis_trans_info_t *info,
                                          size_t i, trellis_op_t op)
{
    if (!info || i >= info->n_branches)
        return NULL;
    return example_find_op(&info->branches[i], op);
}

static void print_tm_report(const trellis_trans_info_t *info)
{
    example_print_tm_status(info);
    for (size_t i = 0; i < info->n_branches; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        printf("   TM: branch %s (%s):", b->branch_id,
               i < N_SVC ? SVC[i].name : "?");
        example_print_ops(b);
    }
}

/* The services' lines about gid, merged in time order. */
static void print_said(const env_t *env, const char *gid)
{
    example_print_said(env->log, N_SVC, gid, "services");
}

/* How many of the services' lines about gid contain needle. */
static int count_said(const env_t *env, const char *gid, const char *needle)
{
    return example_count_said(env->log, N_SVC, gid, needle);
}

/* Wait for the final state; print the TM's view and the services' lines. */
static trellis_trans_info_t *report(const env_t *env, const char *gid)
{
    trellis_trans_info_t *info = query_final(env, gid, FINAL_TIMEOUT_MS);
    if (info)
        print_tm_report(info);
    print_said(env, gid);
    return info;
}

/* ---- one order ------------------------------------------------------- */

/* Begin a new XA transaction; NULL with a message printed. */
static trellis_xa_t *begin(const env_t *env, int wait, char *gid, size_t len)
{
    char err[256];
    trellis_xa_t *x = NULL;
    trellis_options_t o = {.wait_result = wait,
                           .retry_interval_ms = RETRY_INTERVAL_MS,
                           .request_timeout_ms = REQUEST_TIMEOUT_MS,
                           .timeout_to_fail_ms = FINAL_TIMEOUT_MS};
    if (trellis_new_gid(env->client, gid, len, err, sizeof err) != TRELLIS_OK ||
        trellis_xa_begin(env->client, gid, &o, &x, err, sizeof err) !=
            TRELLIS_OK) {
        printf("   begin: %s\n", err);
        return NULL;
    }
    return x;
}

/* Both prepares, the order first. The first non-OK rc (err says why),
 * after which no further branch is sent. */
static trellis_rc_t prepare_both(const env_t *env, trellis_xa_t *x,
                                 const char *payload, char *err, size_t errlen)
{
    char p[TARGET_MAX], c[TARGET_MAX], r[TARGET_MAX];
    trellis_rc_t rc = TRELLIS_OK;
    for (int i = 0; i < N_SVC && rc == TRELLIS_OK; i++)
        rc = trellis_xa_call_branch(x, target(env, i, "Prepare", p, sizeof p),
                                    target(env, i, "Commit", c, sizeof c),
                                    target(env, i, "Rollback", r, sizeof r),
                                    payload, strlen(payload), NULL, NULL, err,
                                    errlen);
    return rc;
}

/* Check the transaction ended `want`, print the report; the info. */
static trellis_trans_info_t *expect_final(const env_t *env, const char *gid,
                                          trellis_trans_status_t want,
                                          example_check_t *ck)
{
    trellis_trans_info_t *info = report(env, gid);
    example_expect(ck, info && info->status == want, "TM status should be %s",
                   trellis_trans_status_name(want));
    return info;
}

/* ---- scenarios ------------------------------------------------------- */

/* The payload of order `base` (made unique per run, so the example can run
 * again against the same running services) into buf; its id into id. */
static const char *order_payload(const char *base, const char *rest, char *id,
                                 size_t idlen, char *buf, size_t len)
{
    snprintf(id, idlen, "%s-%d", base, (int)getpid());
    snprintf(buf, len, "order=%s %s", id, rest);
    return buf;
}

static void scenario_order_ok(env_t *env, example_check_t *ck)
{
    char id[64], pl[160];
    const char *payload = order_payload("o-100", "sku=widget qty=3", id,
                                        sizeof id, pl, sizeof pl);
    char gid[GID_MAX], err[256], reason[256] = "";
    trellis_trans_status_t st = 0;
    if (seed_stock(env, "widget", 10, ck) != 0)
        return;
    printf("   stock: widget 10; order %s takes 3\n", id);
    trellis_xa_t *x = begin(env, 1, gid, sizeof gid);
    if (!example_expect(ck, x != NULL, "begin failed"))
        return;
    trellis_rc_t rc = prepare_both(env, x, payload, err, sizeof err);
    if (example_expect(ck, rc == TRELLIS_OK, "a prepare failed: rc %d: %s", rc,
                       err)) {
        rc = trellis_xa_submit(x, &st, reason, sizeof reason, err, sizeof err);
        printf("   both prepared; submitted: %s\n",
               rc ? err : trellis_trans_status_name(st));
    } else {
        trellis_xa_abort(x, "a prepare failed", NULL, err, sizeof err);
    }
    trellis_xa_free(x);
    trellis_trans_info_free(
        expect_final(env, gid, TRELLIS_TRANS_SUCCEEDED, ck));
    check_order(env, id, 3, ck);
    check_stock(env, "widget", 7, ck);
}

static void scenario_out_of_stock(env_t *env, example_check_t *ck)
{
    char id[64], pl[160];
    const char *payload = order_payload("o-200", "sku=gadget qty=5", id,
                                        sizeof id, pl, sizeof pl);
    char gid[GID_MAX], err[256], why[320];
    trellis_trans_status_t st = 0;
    if (seed_stock(env, "gadget", 2, ck) != 0)
        return;
    printf("   stock: gadget 2; order %s wants 5\n", id);
    trellis_xa_t *x = begin(env, 1, gid, sizeof gid);
    if (!example_expect(ck, x != NULL, "begin failed"))
        return;
    trellis_rc_t rc = prepare_both(env, x, payload, err, sizeof err);
    printf("   the stock's prepare answered rc %d: %s\n", rc, rc ? err : "ok");
    example_expect(ck, rc == TRELLIS_ABORTED && strstr(err, "out of stock"),
                   "stock-service should refuse with \"out of stock\"");
    snprintf(why, sizeof why, "order refused: %s", err);
    rc = trellis_xa_abort(x, why, &st, err, sizeof err);
    printf("   aborted: %s\n", rc ? err : trellis_trans_status_name(st));
    trellis_xa_free(x);
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_FAILED, ck);
    const trellis_op_info_t *rb =
        branch_op(info, SVC_ORDER, TRELLIS_OP_ROLLBACK);
    example_expect(ck, rb && rb->status == TRELLIS_OP_SUCCEEDED,
                   "the order's rollback should have succeeded");
    example_expect(ck,
                   info && info->reason && strstr(info->reason, "out of stock"),
                   "TM reason should name the refusal");
    trellis_trans_info_free(info);
    check_order(env, id, 0, ck);
    check_stock(env, "gadget", 2, ck);
}

/* Kill stock-service, submit, watch trellisd retry, restart it. */
static void stock_down_phase2(env_t *env, trellis_xa_t *x, const char *gid,
                              example_check_t *ck)
{
    char err[256], reason[256];
    trellis_trans_status_t st = 0;
    harness_server_kill(env->svc_srv[SVC_STOCK]);
    printf("   stock-service killed (SIGKILL) after both prepares\n");
    example_expect(ck, xid_prepared(env, gid, "02", ck),
                   "the stock's XID should survive its process, prepared");
    trellis_rc_t rc =
        trellis_xa_submit(x, &st, reason, sizeof reason, err, sizeof err);
    printf("   submitted (no wait): %s\n",
           rc ? err : trellis_trans_status_name(st));
    example_expect(ck, rc == TRELLIS_OK, "submit should be accepted");
    harness_sleep_ms(1500);
    trellis_trans_info_t *info = query_final(env, gid, 0);
    const trellis_op_info_t *cs = branch_op(info, SVC_STOCK, TRELLIS_OP_COMMIT);
    printf("   1.5 s later the TM says %s; the stock's commit: %u attempt(s), "
           "last error: %s\n",
           info ? trellis_trans_status_name(info->status) : "?",
           cs ? cs->attempts : 0, cs && cs->last_error ? cs->last_error : "");
    example_expect(ck, info && info->status == TRELLIS_TRANS_SUBMITTED,
                   "while stock-service is down the transaction should stay "
                   "submitted");
    example_expect(ck, cs && cs->status == TRELLIS_OP_PENDING,
                   "the stock's commit should still be pending");
    trellis_trans_info_free(info);
    int prepared = xid_prepared(env, gid, "02", ck);
    printf("   XA RECOVER still shows the stock's XID: %s\n",
           prepared ? "yes" : "no");
    example_expect(ck, prepared, "the stock's XID should still be prepared");
    example_expect(ck, !xid_prepared(env, gid, "01", ck),
                   "the order's XID should be committed already");
    example_expect(ck, harness_server_restart(env->svc_srv[SVC_STOCK]) == 0,
                   "stock-service did not restart");
    printf("   stock-service restarted on the same port %s\n",
           env->svc[SVC_STOCK]);
}

static void scenario_stock_killed(env_t *env, example_check_t *ck)
{
    char id[64], pl[160];
    const char *payload =
        order_payload("o-300", "sku=gizmo qty=4", id, sizeof id, pl, sizeof pl);
    char gid[GID_MAX], err[256];
    if (seed_stock(env, "gizmo", 10, ck) != 0)
        return;
    printf("   stock: gizmo 10; order %s takes 4\n", id);
    trellis_xa_t *x = begin(env, 0, gid, sizeof gid);
    if (!example_expect(ck, x != NULL, "begin failed"))
        return;
    trellis_rc_t rc = prepare_both(env, x, payload, err, sizeof err);
    if (example_expect(ck, rc == TRELLIS_OK, "a prepare failed: rc %d: %s", rc,
                       err))
        stock_down_phase2(env, x, gid, ck);
    else
        trellis_xa_abort(x, "a prepare failed", NULL, err, sizeof err);
    trellis_xa_free(x);
    trellis_trans_info_t *info =
        expect_final(env, gid, TRELLIS_TRANS_SUCCEEDED, ck);
    const trellis_op_info_t *cs = branch_op(info, SVC_STOCK, TRELLIS_OP_COMMIT);
    example_expect(ck,
                   cs && cs->status == TRELLIS_OP_SUCCEEDED && cs->attempts > 1,
                   "the stock's commit should have succeeded after retries");
    trellis_trans_info_free(info);
    check_order(env, id, 4, ck);
    check_stock(env, "gizmo", 6, ck);
}

/* Submit, kill trellisd at once (the commits are held back by the fault),
 * check both XIDs are still prepared, restart trellisd. */
static void tm_down_phase2(env_t *env, trellis_xa_t *x, const char *gid,
                           const char *id, example_check_t *ck)
{
    char err[256], reason[256];
    trellis_trans_status_t st = 0;
    trellis_rc_t rc =
        trellis_xa_submit(x, &st, reason, sizeof reason, err, sizeof err);
    harness_server_kill(env->tm_srv);
    printf("   submitted (no wait): %s; trellisd killed (SIGKILL) at once\n",
           rc ? err : trellis_trans_status_name(st));
    example_expect(ck, rc == TRELLIS_OK && st == TRELLIS_TRANS_SUBMITTED,
                   "submit should be acknowledged");
    int p1 = xid_prepared(env, gid, "01", ck);
    int p2 = xid_prepared(env, gid, "02", ck);
    printf("   XA RECOVER with trellisd dead: order's XID %s, stock's %s\n",
           p1 ? "prepared" : "gone", p2 ? "prepared" : "gone");
    example_expect(ck, p1 && p2, "no commit should have taken effect yet");
    check_order(env, id, 0, ck);
    int64_t t0 = harness_mono_ms();
    example_expect(ck, harness_server_restart(env->tm_srv) == 0,
                   "trellisd did not restart");
    printf("   trellisd restarted on the same data dir after %lld ms\n",
           (long long)(harness_mono_ms() - t0));
}

static void scenario_tm_killed(env_t *env, example_check_t *ck)
{
    char id[64], pl[160];
    const char *payload =
        order_payload("o-400", "sku=doohickey qty=2 fail_commits=3", id,
                      sizeof id, pl, sizeof pl);
    char gid[GID_MAX], err[256];
    if (seed_stock(env, "doohickey", 10, ck) != 0)
        return;
    printf("   stock: doohickey 10; order %s takes 2; each service "
           "answers its first 3 commits UNAVAILABLE\n",
           id);
    trellis_xa_t *x = begin(env, 0, gid, sizeof gid);
    if (!example_expect(ck, x != NULL, "begin failed"))
        return;
    trellis_rc_t rc = prepare_both(env, x, payload, err, sizeof err);
    if (example_expect(ck, rc == TRELLIS_OK, "a prepare failed: rc %d: %s", rc,
                       err))
        tm_down_phase2(env, x, gid, id, ck);
    else
        trellis_xa_abort(x, "a prepare failed", NULL, err, sizeof err);
    trellis_xa_free(x);
    trellis_trans_info_free(
        expect_final(env, gid, TRELLIS_TRANS_SUCCEEDED, ck));
    int n = count_said(env, gid, "Commit");
    int done = count_said(env, gid, "-> committed");
    printf("   commit calls seen by the services: %d, committed: %d\n", n,
           done);
    example_expect(ck, done >= 2, "both services should report their commit");
    check_order(env, id, 2, ck);
    check_stock(env, "doohickey", 8, ck);
}

/* ---- running scenarios ----------------------------------------------- */

typedef struct {
    const char *name, *story;
    void (*run)(env_t *env, example_check_t *ck);
    int kills; /* needs processes started here */
} scenario_t;

static const scenario_t SCENARIOS[] = {
    {"order-ok", "order o-100: insert the order, deduct the stock, commit",
     scenario_order_ok, 0},
    {"out-of-stock",
     "order o-200 wants more than there is: the stock refuses, both roll back",
     scenario_out_of_stock, 0},
    {"stock-killed-after-prepare",
     "stock-service dies after both prepares; its XA survives in MariaDB and "
     "trellisd commits it once the service is back",
     scenario_stock_killed, 1},
    {"tm-killed-between-prepare-and-commit",
     "trellisd dies after acknowledging the submit, before the commits; "
     "restarted, it commits both",
     scenario_tm_killed, 1},
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])

static int run_scenario(env_t *env, const scenario_t *sc)
{
    example_check_t ck = {0};
    printf("\n== scenario %s: %s\n", sc->name, sc->story);
    int64_t t0 = harness_mono_ms();
    sc->run(env, &ck);
    check_nothing_prepared(env, &ck);
    printf("   (%lld ms)\n", (long long)(harness_mono_ms() - t0));
    example_result(EX, sc->name, ck.failed);
    return ck.failed ? -1 : 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: example-xa-order [--scenario order-ok|out-of-stock|"
            "stock-killed-after-prepare|"
            "tm-killed-between-prepare-and-commit]\n"
            "         [--tm ADDR] [--order ADDR] [--stock ADDR]\n"
            "         [--mysql-socket PATH | --mysql-host H --mysql-port P]\n");
    return 2;
}

/* 1 if scenario sc runs with this command line. */
static int runs(const env_t *env, const char *only, const scenario_t *sc)
{
    if (*only)
        return !strcmp(only, sc->name);
    return !(sc->kills && env->external);
}

static int set_arg(env_t *env, const char *k, const char *v, const char **only)
{
    if (!strcmp(k, "--scenario"))
        *only = v;
    else if (!strcmp(k, "--tm"))
        snprintf(env->tm, sizeof env->tm, "%s", v);
    else if (!strcmp(k, "--order"))
        snprintf(env->svc[SVC_ORDER], sizeof env->svc[0], "%s", v);
    else if (!strcmp(k, "--stock"))
        snprintf(env->svc[SVC_STOCK], sizeof env->svc[0], "%s", v);
    else if (!strcmp(k, "--mysql-socket"))
        env->socket = v;
    else if (!strcmp(k, "--mysql-host"))
        env->host = v;
    else if (!strcmp(k, "--mysql-port"))
        env->port = (unsigned)atoi(v);
    else
        return -1;
    return 0;
}

static int parse_args(int argc, char **argv, env_t *env, const char **only)
{
    for (int i = 1; i < argc; i += 2)
        if (i + 1 >= argc || set_arg(env, argv[i], argv[i + 1], only) != 0)
            return -1;
    if ((env->svc[0][0] || env->svc[1][0]) && !env->socket && !env->host)
        return -1; /* the services' MariaDB is needed for the checks */
    if (env->host && !env->port)
        env->port = 3306;
    env->external = env->tm[0] || env->svc[0][0] || env->svc[1][0];
    if (!**only)
        return 0;
    for (size_t s = 0; s < N_SCENARIOS; s++)
        if (!strcmp(*only, SCENARIOS[s].name))
            return SCENARIOS[s].kills && env->external ? -1 : 0;
    return -1;
}

int main(int argc, char **argv)
{
    env_t env = {0};
    const char *only = "";
    if (parse_args(argc, argv, &env, &only) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (mysql_library_init(0, NULL, NULL) != 0)
        return 1;
    int failed = 0;
    if (setup(&env) != 0) {
        printf("example-" EX ": could not start; no scenario ran\n");
        for (size_t s = 0; s < N_SCENARIOS; s++)
            if (runs(&env, only, &SCENARIOS[s]))
                example_result(EX, SCENARIOS[s].name, 1);
        failed = 1;
    } else {
        for (size_t s = 0; s < N_SCENARIOS; s++)
            if (runs(&env, only, &SCENARIOS[s]))
                failed |= run_scenario(&env, &SCENARIOS[s]) != 0;
    }
    trellis_client_free(env.client);
    if (env.procs.h) {
        failed |= stop_started(&env) != 0;
        harness_free(env.procs.h, !failed);
    }
    mysql_library_end();
    return failed ? 1 : 0;
}
