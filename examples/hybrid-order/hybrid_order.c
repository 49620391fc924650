/*
 * example-hybrid-order: the driver of the hybrid-order example. Creating an
 * order is one global transaction whose branches are of three kinds
 * (trellis_gtx, trellis/trellis_gtx.h), on three services (separate processes,
 * each with its own database on one MariaDB):
 *
 *   trellis_gtx_begin
 *   01 call_xa   order-service  Prepare "order=O sku=book qty=1"   (XA row)
 *   02 call_tcc  bank-service   TransTry "account=C amount=-30"   (freeze)
 *   03 call_tcc  bank-service   TransTry "account=shop amount=30" (credit)
 *   04 call_saga shipping-service Reserve "order=O carrier=K"  (initiator-run)
 *      or add_step (the same step, run by trellisd after submit)
 *   submit, waiting for the outcome | abort on the first refusal
 *
 *   example-hybrid-order [--scenario NAME] [--seed N] [--count N]
 *
 * It owns every process it starts (test harness: a throwaway MariaDB,
 * trellisd, order-service and bank-service reused from the other examples,
 * shipping-service from here; scratch dir
 * ${build}/test-data/example-hybrid-order-<pid>, removed when all passed).
 *
 * Scenarios (all by default, or one with --scenario):
 *   order-ok                       every branch commits: the order row, the
 *                                  money moved, the slot reserved;
 *   payment-refused                the TCC try finds too little money;
 *   order-refused                  the XA prepare finds the order id taken;
 *   shipping-refused-initiator-run call_saga's Reserve is refused;
 *   shipping-refused-tm-run        add_step's Reserve (run by trellisd after
 *                                  submit) is refused: submit's wait says
 *                                  FAILED with the reason;
 *     each refusal must leave every service's full state exactly as before;
 *   random                         --count (60) transactions with random
 *                                  refusals, duplicate deliveries and kill -9
 *                                  of trellisd and the services (each
 *                                  restarted on its port) from a second
 *                                  thread; then every transaction must be
 *                                  final and every invariant hold.
 * Every scenario ends with trellis_myxa_recover and an empty XA RECOVER, then
 * exactly one line "example=hybrid-order scenario=<s> result=ok|FAIL". Exit
 * status 1 if any failed, 2 on a usage error.
 *
 * Threads: the main thread, plus the chaos thread from `random` on: while
 * it kills and restarts it is the only user of the harness (the main
 * thread only reads the servers' stable addresses and the clock); then it
 * stays parked until every process was stopped, because the harness makes
 * a child die with the thread that forked it (PR_SET_PDEATHSIG).
 */
#include <limits.h>
#include <mysql.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example_driver.h"
#include "harness.h"
#include "trellis/trellis.h"
#include "trellis/trellis_gtx.h"
#include "trellis/mysql_xa.h"

#define EX "hybrid-order"
#define ADDR_MAX 128
#define TARGET_MAX 256
#define GID_MAX 64
#define TEXT_MAX 320
#define STR_(x) #x
#define STR(x) STR_(x)
#define RETRY_INTERVAL_MS 50
#define REQUEST_TIMEOUT_MS 2000
#define CALL_TIMEOUT_MS 20000
#define FAIL_TIMEOUT_MS 4000
#define FINAL_TIMEOUT_MS 30000
#define PRICE 30
#define RICH 100000
#define POOR 10
#define EXISTING_ORDER "o-existing"
#define RANDOM_MAX 500
#define BEGIN_RETRY_MS 3000

enum { SVC_ORDER, SVC_BANK, SVC_SHIP, N_SVC };
/* Branch ids in call order (trellis_gtx numbers them). */
enum { BR_ORDER, BR_DEBIT, BR_CREDIT, BR_SHIP, N_BR };
/* Where a transaction stopped: the branch refused, or submit. */
enum { AT_NONE = -1, AT_SUBMIT = N_BR };

static const struct {
    const char *name, *service, *database, *state;
} SVC[N_SVC] = {
    {"order-service", "xaorder.v1.Order", "hy_orders", "State"},
    {"bank-service", "bank.v1.Bank", "hy_bank", "Accounts"},
    {"shipping-service", "hybrid.v1.Shipping", "hy_shipping", "State"},
};

/* Per branch: service, forward/commit/rollback methods (commit NULL:
 * none), dtm trans_type and ops. */
static const struct {
    int svc;
    const char *fwd, *commit, *rollback, *type, *fwd_op, *commit_op, *rb_op;
} BR[N_BR] = {
    {SVC_ORDER, "Prepare", "Commit", "Rollback", "xa", "prepare", "commit",
     "rollback"},
    {SVC_BANK, "TransTry", "TransConfirm", "TransCancel", "tcc", "try",
     "confirm", "cancel"},
    {SVC_BANK, "TransTry", "TransConfirm", "TransCancel", "tcc", "try",
     "confirm", "cancel"},
    {SVC_SHIP, "Reserve", NULL, "Release", "saga", "action", NULL,
     "compensate"},
};

typedef struct {
    example_procs_t procs;
    const char *socket;
    char tm[ADDR_MAX], svc[N_SVC][ADDR_MAX];
    harness_server_t *tm_srv, *svc_srv[N_SVC];
    char log[N_SVC][PATH_MAX];
    trellis_client_t *client;
    MYSQL *conn; /* the driver's own: XA RECOVER, trellis_myxa_recover, setup */
    char seed_token[40];            /* bank-service's Seed token */
    char seed_token_file[PATH_MAX]; /* and the file it reads it from */
    unsigned seed;
    int count;
} env_t;

/* One order as the initiator means it. */
typedef struct {
    char order[64];
    const char *customer, *carrier;
    int tm_run; /* shipping as add_step */
} order_t;

/* What happened to it. */
typedef struct {
    char gid[GID_MAX];
    int begun, at;    /* begin OK; the branch that refused (AT_*) */
    int fwd_ok[N_BR]; /* the forward op answered OK (add_step: added) */
    trellis_rc_t rc;  /* of the call that stopped it */
    char err[TEXT_MAX], reason[TEXT_MAX];
    trellis_trans_status_t st; /* from submit/abort (0: unknown) */
    int kind;                  /* random: what was meant to fail */
} outcome_t;

/* ---- processes ------------------------------------------------------- */

static int start_tm(env_t *env)
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

static int start_service(env_t *env, int i)
{
    const char *args[] = {"--database",
                          SVC[i].database,
                          "--mysql-socket",
                          env->socket,
                          "--threads",
                          "4",
                          i == SVC_BANK ? "--name" : NULL,
                          "bank",
                          "--seed-token-file",
                          env->seed_token_file,
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

static int connect_db(env_t *env)
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
static int seed_existing_order(env_t *env)
{
    if (mysql_query(env->conn,
                    "INSERT IGNORE INTO hy_orders.orders (id, sku, "
                    "qty) VALUES ('" EXISTING_ORDER "', 'book', 1)") == 0)
        return 0;
    fprintf(stderr, "example-" EX ": seed order: %s\n", mysql_error(env->conn));
    return -1;
}

static int setup(env_t *env)
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

static int stop_started(env_t *env)
{
    if (env->conn)
        mysql_close(env->conn);
    env->conn = NULL;
    return example_procs_stop(&env->procs);
}

/* ---- the services ---------------------------------------------------- */

static const char *target(const env_t *env, int svc, const char *method,
                          char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s", env->svc[svc], SVC[svc].service, method);
    return buf;
}

static int svc_call(const env_t *env, int i, const char *method,
                    const char *payload, char **text, char *err, size_t errlen)
{
    char full[96];
    snprintf(full, sizeof full, "/%s/%s", SVC[i].service, method);
    return example_call_text(env->svc[i], full, payload, text, err, errlen);
}

/* Seed with a printf-formatted payload; 0 or -1 (a failed check). */
static int seed(const env_t *env, int svc, example_check_t *ck, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
static int seed(const env_t *env, int svc, example_check_t *ck, const char *fmt,
                ...)
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
static int seed_all(const env_t *env, example_check_t *ck)
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
static char *snapshot(const env_t *env, example_check_t *ck)
{
    char *all = NULL, err[256];
    size_t len = 0, cap = 0;
    for (int i = 0; i < N_SVC; i++) {
        char *text = NULL, head[64];
        if (!example_expect(
                ck,
                svc_call(env, i, SVC[i].state, "", &text, err, sizeof err) == 0,
                "state of %s: %s", SVC[i].name, err)) {
            free(all);
            return NULL;
        }
        snprintf(head, sizeof head, "== %s\n", SVC[i].name);
        buf_add(&all, &len, &cap, head);
        buf_add(&all, &len, &cap, text);
        free(text);
    }
    return all;
}

/* 1 if text has a line that is exactly `line`. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (!strncmp(p, line, n) && (p[n] == '\n' || !p[n]))
            return 1;
    return 0;
}

/* 1 if text has a line ending with `tail`. */
static int has_line_ending(const char *text, const char *tail)
{
    char want[192];
    snprintf(want, sizeof want, "%s\n", tail);
    return strstr(text, want) != NULL;
}

/* How many lines of text contain needle. */
static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ---- XA RECOVER -------------------------------------------------------- */

static int xa_prepared_count(const env_t *env, example_check_t *ck)
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
static void check_nothing_prepared(const env_t *env, int may_find,
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

/* ---- one hybrid order ------------------------------------------------ */

static void payload_of(const order_t *o, int br, char *buf, size_t len)
{
    switch (br) {
    case BR_ORDER:
        snprintf(buf, len, "order=%s sku=book qty=1", o->order);
        break;
    case BR_DEBIT:
        snprintf(buf, len, "account=%s amount=-%d", o->customer, PRICE);
        break;
    case BR_CREDIT:
        snprintf(buf, len, "account=shop amount=%d", PRICE);
        break;
    default:
        snprintf(buf, len, "order=%s carrier=%s", o->order, o->carrier);
    }
}

/* Branch br's forward op through the gtx (add_step for a TM-run step). */
static trellis_rc_t call_branch(const env_t *env, trellis_gtx_t *g,
                                const order_t *o, int br, char *err,
                                size_t errlen)
{
    char f[TARGET_MAX], c[TARGET_MAX], r[TARGET_MAX], pl[160];
    int s = BR[br].svc;
    payload_of(o, br, pl, sizeof pl);
    target(env, s, BR[br].fwd, f, sizeof f);
    target(env, s, BR[br].rollback, r, sizeof r);
    if (BR[br].commit)
        target(env, s, BR[br].commit, c, sizeof c);
    if (br == BR_ORDER)
        return trellis_gtx_call_xa(g, f, c, r, pl, strlen(pl), NULL, NULL, err,
                                   errlen);
    if (br != BR_SHIP)
        return trellis_gtx_call_tcc(g, f, c, r, pl, strlen(pl), NULL, NULL, err,
                                    errlen);
    if (o->tm_run)
        return trellis_gtx_add_step(g, f, r, pl, strlen(pl), err, errlen);
    return trellis_gtx_call_saga(g, f, r, pl, strlen(pl), NULL, NULL, err,
                                 errlen);
}

/* Send branch br's op (a method of its service) again, with the metadata
 * of the first delivery. The rc. */
static trellis_rc_t redeliver(const env_t *env, const order_t *o,
                              const char *gid, int br, const char *method,
                              const char *op)
{
    static const char *const keys[] = {"dtm-gid", "dtm-trans_type",
                                       "dtm-branch_id", "dtm-op"};
    char bid[16], pl[160], full[96], err[256];
    uint8_t *reply = NULL;
    size_t len = 0;
    snprintf(bid, sizeof bid, "%02d", br + 1);
    const char *vals[] = {gid, BR[br].type, bid, op};
    payload_of(o, br, pl, sizeof pl);
    snprintf(full, sizeof full, "/%s/%s", SVC[BR[br].svc].service, method);
    trellis_rc_t rc =
        trellis_call_unary(env->svc[BR[br].svc], full, pl, strlen(pl), keys,
                           vals, 4, 5000, &reply, &len, err, sizeof err);
    free(reply);
    return rc;
}

static trellis_gtx_t *begin(const env_t *env, outcome_t *out)
{
    trellis_gtx_t *g = NULL;
    trellis_options_t opt = {.wait_result = 1,
                             .retry_interval_ms = RETRY_INTERVAL_MS,
                             .request_timeout_ms = REQUEST_TIMEOUT_MS,
                             .timeout_to_fail_ms = FAIL_TIMEOUT_MS};
    int64_t deadline = harness_mono_ms() + BEGIN_RETRY_MS;
    do { /* trellisd may be restarting: a while, like a patient initiator */
        out->rc = trellis_new_gid(env->client, out->gid, sizeof out->gid,
                                  out->err, sizeof out->err);
        if (out->rc != TRELLIS_OK)
            harness_sleep_ms(20);
    } while (out->rc == TRELLIS_UNAVAILABLE && harness_mono_ms() < deadline);
    if (out->rc == TRELLIS_OK)
        out->rc = trellis_gtx_begin(env->client, out->gid, &opt, &g, out->err,
                                    sizeof out->err);
    out->begun = out->rc == TRELLIS_OK;
    return g;
}

/* Phase 1, then submit (all OK) or abort (the first refusal). dup: send
 * each OK'd TCC try and initiator-run Reserve a second time at once. */
static void run_order(const env_t *env, const order_t *o, int dup,
                      outcome_t *out)
{
    memset(out->fwd_ok, 0, sizeof out->fwd_ok);
    out->at = AT_NONE, out->st = 0, out->reason[0] = out->err[0] = '\0';
    trellis_gtx_t *g = begin(env, out);
    if (!g) {
        out->at = BR_ORDER;
        return;
    }
    for (int br = 0; br < N_BR && out->at == AT_NONE; br++) {
        out->rc = call_branch(env, g, o, br, out->err, sizeof out->err);
        if (out->rc != TRELLIS_OK)
            out->at = br;
        out->fwd_ok[br] = out->rc == TRELLIS_OK;
        if (dup && out->rc == TRELLIS_OK && br != BR_ORDER &&
            !(br == BR_SHIP && o->tm_run))
            redeliver(env, o, out->gid, br, BR[br].fwd, BR[br].fwd_op);
    }
    char why[TEXT_MAX + 32];
    if (out->at == AT_NONE) {
        out->rc =
            trellis_gtx_submit(g, &out->st, out->reason, sizeof out->reason,
                               out->err, sizeof out->err);
        if (out->rc != TRELLIS_OK)
            out->at = AT_SUBMIT;
    } else {
        char err[256];
        snprintf(why, sizeof why, "branch %02d refused: %s", out->at + 1,
                 out->err);
        if (trellis_gtx_abort(g, why, &out->st, err, sizeof err) != TRELLIS_OK)
            out->st = 0;
    }
    trellis_gtx_free(g);
}

/* ---- the TM's view --------------------------------------------------- */

/* Query until final or the deadline; the last answer, or NULL (with
 * *notfound set when trellisd never heard of gid). */
static trellis_trans_info_t *query_final(const env_t *env, const char *gid,
                                         int64_t timeout_ms, int *notfound)
{
    int64_t deadline = harness_mono_ms() + timeout_ms;
    char err[256];
    *notfound = 0;
    for (;;) {
        trellis_trans_info_t *info = NULL;
        trellis_rc_t rc =
            trellis_query(env->client, gid, &info, err, sizeof err);
        if (rc == TRELLIS_OK &&
            (example_is_final(info->status) || harness_mono_ms() >= deadline))
            return info;
        trellis_trans_info_free(info);
        *notfound = rc == TRELLIS_NOT_FOUND;
        if (harness_mono_ms() >= deadline) {
            printf("   query %s: %s\n", gid, rc ? err : "not final");
            return NULL;
        }
        harness_sleep_ms(20);
    }
}

static void print_report(const env_t *env, const trellis_trans_info_t *info)
{
    static const char *const names[N_BR] = {"order XA", "debit TCC",
                                            "credit TCC", "shipping saga"};
    example_print_tm_status(info);
    for (size_t i = 0; i < info->n_branches; i++) {
        printf("   TM: branch %s (%s):", info->branches[i].branch_id,
               i < N_BR ? names[i] : "?");
        example_print_ops(&info->branches[i]);
    }
    example_print_said(env->log, N_SVC, info->gid, "services");
}

/* The final state of the transaction, which must be want; the TM's view
 * and the services' lines printed. The info (caller frees) or NULL. */
static trellis_trans_info_t *expect_final(const env_t *env, const char *gid,
                                          trellis_trans_status_t want,
                                          example_check_t *ck)
{
    int nf;
    trellis_trans_info_t *info = query_final(env, gid, FINAL_TIMEOUT_MS, &nf);
    if (info)
        print_report(env, info);
    example_expect(ck, info && info->status == want, "TM status should be %s",
                   trellis_trans_status_name(want));
    return info;
}

/* Every branch before `upto` rolled back (op succeeded) in info. */
static void expect_rolled_back(const trellis_trans_info_t *info, int upto,
                               example_check_t *ck)
{
    for (int br = 0; br < upto; br++) {
        trellis_op_t op = br == BR_ORDER  ? TRELLIS_OP_ROLLBACK
                          : br == BR_SHIP ? TRELLIS_OP_COMPENSATE
                                          : TRELLIS_OP_CANCEL;
        const trellis_op_info_t *oi =
            info && (size_t)br < info->n_branches
                ? example_find_op(&info->branches[br], op)
                : NULL;
        example_expect(ck, oi && oi->status == TRELLIS_OP_SUCCEEDED,
                       "branch %02d's %s should have succeeded", br + 1,
                       trellis_op_name(op));
    }
}

/* ---- scenarios ------------------------------------------------------- */

static void order_id(const char *base, char *id, size_t len)
{
    snprintf(id, len, "%s-%d", base, (int)getpid());
}

static void scenario_order_ok(env_t *env, example_check_t *ck)
{
    order_t o = {.customer = "alice", .carrier = "post"};
    outcome_t out = {0};
    char line[160];
    order_id("o-100", o.order, sizeof o.order);
    if (seed_all(env, ck) != 0)
        return;
    printf("   order %s: alice pays %d to shop, carrier post (initiator-run)\n",
           o.order, PRICE);
    run_order(env, &o, 0, &out);
    printf("   submit: rc %d %s %s\n", out.rc,
           out.rc ? out.err : trellis_trans_status_name(out.st), out.reason);
    example_expect(ck, out.at == AT_NONE && out.st == TRELLIS_TRANS_SUCCEEDED,
                   "every branch should succeed and submit say SUCCEEDED");
    trellis_trans_info_free(
        expect_final(env, out.gid, TRELLIS_TRANS_SUCCEEDED, ck));
    char *after = snapshot(env, ck);
    if (!after)
        return;
    printf("   state after:\n%s", after);
    snprintf(line, sizeof line, "order=%s sku=book qty=1", o.order);
    example_expect(ck, has_line(after, line), "the order row should exist");
    snprintf(line, sizeof line, "account=alice balance=%d trading_balance=0",
             RICH - PRICE);
    example_expect(ck, has_line(after, line), "alice should have paid");
    snprintf(line, sizeof line, "account=shop balance=%d trading_balance=0",
             PRICE);
    example_expect(ck, has_line(after, line), "the shop should have been paid");
    snprintf(line, sizeof line, " order=%s", o.order);
    example_expect(ck, has_line_ending(after, line),
                   "a post slot should be held for the order");
    free(after);
}

/* A refusal scenario: o is run; branch `at` must refuse (rc ABORTED with
 * `why` in its message; at == AT_SUBMIT: submit says FAILED with `why` as
 * the reason); then the TM says FAILED, every branch called before is
 * rolled back and every service's state is exactly as before. */
static void expect_refused(env_t *env, const order_t *o, int at,
                           const char *why, example_check_t *ck)
{
    outcome_t out = {0};
    if (seed_all(env, ck) != 0)
        return;
    char *before = snapshot(env, ck);
    if (!before)
        return;
    run_order(env, o, 0, &out);
    printf("   stopped at %s: rc %d: %s; %s %s%s\n",
           out.at == AT_SUBMIT ? "submit"
           : out.at >= 0       ? BR[out.at].fwd
                               : "nothing",
           out.rc, out.err, trellis_trans_status_name(out.st),
           *out.reason ? "reason: " : "", out.reason);
    if (at == AT_SUBMIT)
        example_expect(ck,
                       out.at == AT_NONE && out.st == TRELLIS_TRANS_FAILED &&
                           strstr(out.reason, why),
                       "submit's wait should say FAILED because \"%s\"", why);
    else
        example_expect(ck,
                       out.at == at && out.rc == TRELLIS_ABORTED &&
                           strstr(out.err, why),
                       "branch %02d should refuse with \"%s\"", at + 1, why);
    trellis_trans_info_t *info =
        expect_final(env, out.gid, TRELLIS_TRANS_FAILED, ck);
    expect_rolled_back(info, at == AT_SUBMIT ? N_BR : at + 1, ck);
    trellis_trans_info_free(info);
    char *after = snapshot(env, ck);
    example_expect(ck, after && !strcmp(before, after),
                   "every service's state should be exactly as before");
    if (after && strcmp(before, after))
        printf("   before:\n%s   after:\n%s", before, after);
    free(before);
    free(after);
}

static void scenario_payment_refused(env_t *env, example_check_t *ck)
{
    order_t o = {.customer = "bob", .carrier = "post"};
    order_id("o-200", o.order, sizeof o.order);
    printf("   order %s: bob has %d, the order costs %d\n", o.order, POOR,
           PRICE);
    expect_refused(env, &o, BR_DEBIT, "insufficient funds", ck);
}

static void scenario_order_refused(env_t *env, example_check_t *ck)
{
    order_t o = {.customer = "alice", .carrier = "post"};
    snprintf(o.order, sizeof o.order, "%s", EXISTING_ORDER);
    printf("   order %s already exists\n", o.order);
    expect_refused(env, &o, BR_ORDER, "exists", ck);
}

static void scenario_ship_initiator(env_t *env, example_check_t *ck)
{
    order_t o = {.customer = "alice", .carrier = "none"};
    order_id("o-300", o.order, sizeof o.order);
    printf("   order %s: carrier=none, Reserve called by the initiator\n",
           o.order);
    expect_refused(env, &o, BR_SHIP, "no carrier", ck);
}

static void scenario_ship_tm(env_t *env, example_check_t *ck)
{
    order_t o = {.customer = "alice", .carrier = "full", .tm_run = 1};
    order_id("o-400", o.order, sizeof o.order);
    printf("   order %s: carrier full (no capacity), Reserve run by trellisd "
           "after submit\n",
           o.order);
    expect_refused(env, &o, AT_SUBMIT, "has no capacity", ck);
}

/* ---- random ----------------------------------------------------------- */

enum { K_OK, K_PAYMENT, K_ORDER, K_SHIP_INIT, K_SHIP_TM, N_KINDS };

/* The chaos thread forks the processes it restarts, and the harness makes
 * each child die with the thread that forked it (PR_SET_PDEATHSIG): so the
 * thread lives, parked, until main has stopped every process. */
typedef struct {
    env_t *env;
    pthread_t th;
    int running;
    atomic_int stop, parked, quit;
    unsigned seed;
    int kills[N_SVC + 1]; /* [N_SVC]: trellisd */
    int failed_restarts;
} chaos_t;

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

/* Kill -9 one process (trellisd or a service) at a random moment, bring it
 * back on its port 50..250 ms later; again until told to stop. */
static void *chaos_main(void *arg)
{
    chaos_t *c = arg;
    while (!atomic_load(&c->stop)) {
        harness_sleep_ms(100 + rnd(&c->seed) % 300);
        if (atomic_load(&c->stop))
            break;
        int v = (int)(rnd(&c->seed) % (N_SVC + 2));
        v = v > N_SVC ? N_SVC : v; /* trellisd twice as often */
        harness_server_t *s = v == N_SVC ? c->env->tm_srv : c->env->svc_srv[v];
        harness_server_kill(s);
        c->kills[v]++;
        harness_sleep_ms(50 + rnd(&c->seed) % 200);
        if (harness_server_restart(s) != 0)
            c->failed_restarts++;
    }
    atomic_store(&c->parked, 1);
    while (!atomic_load(&c->quit))
        harness_sleep_ms(10);
    return NULL;
}

static chaos_t CHAOS;

/* After every process was stopped: let the chaos thread end. */
static void chaos_quit(void)
{
    if (!CHAOS.running)
        return;
    atomic_store(&CHAOS.quit, 1);
    pthread_join(CHAOS.th, NULL);
    CHAOS.running = 0;
}

static void random_order(int i, int kind, unsigned *s, order_t *o)
{
    snprintf(o->order, sizeof o->order, "r%d-%03d", (int)getpid(), i);
    o->customer = kind == K_PAYMENT ? "bob" : "alice";
    o->carrier = kind == K_SHIP_INIT || kind == K_SHIP_TM ? "none" : "post";
    o->tm_run = kind == K_SHIP_TM || (kind == K_OK && rnd(s) % 2);
    if (kind == K_ORDER)
        snprintf(o->order, sizeof o->order, "%s", EXISTING_ORDER);
}

/* After the end: deliver each finished branch's ops again (the forward op,
 * then the phase-2 op of the outcome). */
static void redeliver_final(const env_t *env, const order_t *o,
                            const outcome_t *out, int succeeded)
{
    for (int br = 0; br < N_BR; br++) {
        if (!out->fwd_ok[br] || (br == BR_SHIP && o->tm_run))
            continue;
        redeliver(env, o, out->gid, br, BR[br].fwd, BR[br].fwd_op);
        if (succeeded && BR[br].commit)
            redeliver(env, o, out->gid, br, BR[br].commit, BR[br].commit_op);
        else if (!succeeded)
            redeliver(env, o, out->gid, br, BR[br].rollback, BR[br].rb_op);
    }
}

/* The outcome of out per the TM: 1 succeeded, 0 failed or never begun, -1
 * not final (a failed check). */
static int final_of(const env_t *env, const outcome_t *out, example_check_t *ck)
{
    int nf;
    if (!out->gid[0])
        return 0; /* no gid: nothing was ever sent */
    trellis_trans_info_t *info =
        query_final(env, out->gid, FINAL_TIMEOUT_MS, &nf);
    int r = info ? info->status == TRELLIS_TRANS_SUCCEEDED : -1;
    if (info && !example_is_final(info->status))
        r = -1;
    if (!info && nf && !out->begun)
        r = 0; /* begin never reached trellisd */
    if (r < 0 && info)
        print_report(env, info);
    trellis_trans_info_free(info);
    example_expect(ck, r >= 0, "%s should be succeeded or failed", out->gid);
    return r;
}

/* Per order: the row and the slot exist iff it succeeded; a refusal that
 * was meant never succeeds. */
static void check_order_effects(const char *state, const order_t *o,
                                const outcome_t *out, int ok,
                                example_check_t *ck)
{
    char line[160];
    example_expect(ck, out->kind == K_OK || !ok,
                   "%s (meant to be refused, kind %d) succeeded", out->gid,
                   out->kind);
    if (out->kind == K_ORDER)
        return; /* the order id is the existing order's */
    snprintf(line, sizeof line, "order=%.63s sku=book qty=1", o->order);
    example_expect(ck, has_line(state, line) == ok,
                   "%s: the order row should %sexist", out->gid,
                   ok ? "" : "not ");
    snprintf(line, sizeof line, " order=%.63s", o->order);
    example_expect(ck, has_line_ending(state, line) == ok,
                   "%s: the slot should %sbe held", out->gid, ok ? "" : "not ");
}

static void check_money(const char *state, int n_ok, example_check_t *ck)
{
    char line[3][96];
    snprintf(line[0], sizeof line[0],
             "account=alice balance=%d trading_balance=0", RICH - PRICE * n_ok);
    snprintf(line[1], sizeof line[1],
             "account=bob balance=%d trading_balance=0", POOR);
    snprintf(line[2], sizeof line[2],
             "account=shop balance=%d trading_balance=0", PRICE * n_ok);
    for (int i = 0; i < 3; i++)
        example_expect(ck, has_line(state, line[i]),
                       "bank should say \"%s\" (money conserved, nothing "
                       "frozen)",
                       line[i]);
}

static void print_random(int i, const order_t *o, const outcome_t *out)
{
    static const char *const kinds[N_KINDS] = {
        "ok", "payment-refused", "order-refused", "ship-refused-initiator",
        "ship-refused-tm"};
    printf("   #%02d %-22s %s gid=%s %s%s: rc %d %s -> %s\n", i,
           kinds[out->kind], o->tm_run ? "tm-run" : "initiator-run",
           out->gid[0] ? out->gid : "-",
           out->at == AT_NONE     ? "submitted"
           : out->at == AT_SUBMIT ? "stopped at submit"
                                  : "stopped at ",
           out->at >= 0 && out->at < N_BR ? BR[out->at].fwd : "", out->rc,
           out->rc ? out->err : "",
           out->st ? trellis_trans_status_name(out->st) : "unknown");
}

/* How many lines of the services' logs contain needle. */
static int count_logged(const env_t *env, const char *needle)
{
    char line[1024];
    int n = 0;
    for (int i = 0; i < N_SVC; i++) {
        FILE *f = fopen(env->log[i], "r");
        while (f && fgets(line, sizeof line, f))
            n += strstr(line, needle) != NULL;
        if (f)
            fclose(f);
    }
    return n;
}

static void run_random(env_t *env, order_t *orders, outcome_t *outs, int *n_dup)
{
    unsigned s = env->seed;
    for (int i = 0; i < env->count; i++) {
        int r = (int)(rnd(&s) % 10);
        int kind = r < 5 ? K_OK : r - 5 < N_KINDS - 1 ? 1 + r - 5 : K_OK;
        random_order(i, kind, &s, &orders[i]);
        int dup = rnd(&s) % 3 == 0;
        *n_dup += dup;
        outs[i].kind = kind;
        run_order(env, &orders[i], dup, &outs[i]);
        print_random(i, &orders[i], &outs[i]);
    }
}

static void scenario_random(env_t *env, example_check_t *ck)
{
    static order_t orders[RANDOM_MAX];
    static outcome_t outs[RANDOM_MAX];
    chaos_t *c = &CHAOS;
    int n_dup = 0, n_ok = 0, n_final = 0;
    if (seed_all(env, ck) != 0)
        return;
    printf("   %d orders, seed %u; kill -9 of trellisd and the services from "
           "a second thread\n",
           env->count, env->seed);
    c->env = env, c->seed = env->seed ^ 0x5bd1e995u;
    if (!example_expect(ck, pthread_create(&c->th, NULL, chaos_main, c) == 0,
                        "pthread_create"))
        return;
    c->running = 1;
    run_random(env, orders, outs, &n_dup);
    atomic_store(&c->stop, 1);
    while (!atomic_load(&c->parked))
        harness_sleep_ms(10);
    printf("   kills: trellisd %d, order %d, bank %d, shipping %d; failed "
           "restarts %d; immediate duplicates in %d orders\n",
           c->kills[N_SVC], c->kills[0], c->kills[1], c->kills[2],
           c->failed_restarts, n_dup);
    example_expect(ck, c->failed_restarts == 0, "a restart failed");
    int ok[RANDOM_MAX];
    for (int i = 0; i < env->count; i++) {
        ok[i] = final_of(env, &outs[i], ck);
        n_final += ok[i] >= 0;
        n_ok += ok[i] == 1;
    }
    for (int i = 0; i < env->count; i++)
        if (ok[i] >= 0 && rnd(&env->seed) % 3 == 0)
            redeliver_final(env, &orders[i], &outs[i], ok[i]);
    char *state = snapshot(env, ck);
    int dups = count_logged(env, "duplicate: nothing to do");
    printf("   %d/%d final, %d succeeded; the services recognised %d "
           "duplicate deliveries and %d late ones (after the rollback)\n",
           n_final, env->count, n_ok, dups,
           count_logged(env, "before it came"));
    example_expect(ck, dups > 0, "duplicates should have reached the services");
    if (!state)
        return;
    for (int i = 0; i < env->count; i++)
        if (ok[i] >= 0)
            check_order_effects(state, &orders[i], &outs[i], ok[i], ck);
    check_money(state, n_ok, ck);
    example_expect(ck, count_lines(state, " order=r") == n_ok,
                   "slots held should be %d", n_ok);
    free(state);
}

/* ---- running scenarios ----------------------------------------------- */

typedef struct {
    const char *name, *story;
    void (*run)(env_t *env, example_check_t *ck);
    int may_recover; /* trellis_myxa_recover may legitimately resolve XIDs */
} scenario_t;

static const scenario_t SCENARIOS[] = {
    {"order-ok", "XA order row, TCC payment, saga shipment: all commit",
     scenario_order_ok, 0},
    {"payment-refused", "the TCC try finds too little money: all roll back",
     scenario_payment_refused, 0},
    {"order-refused", "the XA prepare finds the order id taken: all roll back",
     scenario_order_refused, 0},
    {"shipping-refused-initiator-run",
     "call_saga's Reserve is refused: the initiator aborts, all roll back",
     scenario_ship_initiator, 0},
    {"shipping-refused-tm-run",
     "the Reserve trellisd runs after submit is refused: trellisd rolls "
     "everything back",
     scenario_ship_tm, 0},
    {"random",
     "many orders, random refusals, duplicate deliveries, kill -9 of "
     "trellisd and the services",
     scenario_random, 1},
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])

static int run_scenario(env_t *env, const scenario_t *sc)
{
    example_check_t ck = {0};
    printf("\n== scenario %s: %s\n", sc->name, sc->story);
    int64_t t0 = harness_mono_ms();
    sc->run(env, &ck);
    check_nothing_prepared(env, sc->may_recover, &ck);
    printf("   (%lld ms)\n", (long long)(harness_mono_ms() - t0));
    example_result(EX, sc->name, ck.failed);
    return ck.failed ? -1 : 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: example-hybrid-order [--scenario order-ok|"
            "payment-refused|order-refused|\n"
            "         shipping-refused-initiator-run|"
            "shipping-refused-tm-run|random]\n"
            "         [--seed N] [--count N (1..%d)]\n",
            RANDOM_MAX);
    return 2;
}

static int parse_args(int argc, char **argv, env_t *env, const char **only)
{
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return -1;
        if (!strcmp(argv[i], "--scenario"))
            *only = argv[i + 1];
        else if (!strcmp(argv[i], "--seed"))
            env->seed = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--count"))
            env->count = atoi(argv[i + 1]);
        else
            return -1;
    }
    if (env->count < 1 || env->count > RANDOM_MAX)
        return -1;
    if (!**only)
        return 0;
    for (size_t s = 0; s < N_SCENARIOS; s++)
        if (!strcmp(*only, SCENARIOS[s].name))
            return 0;
    return -1;
}

int main(int argc, char **argv)
{
    env_t env = {.seed = (unsigned)getpid(), .count = 60};
    const char *only = "";
    if (parse_args(argc, argv, &env, &only) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (mysql_library_init(0, NULL, NULL) != 0)
        return 1;
    int failed = 0;
    int ready = setup(&env) == 0;
    if (!ready)
        printf("example-" EX ": could not start; no scenario ran\n");
    for (size_t s = 0; s < N_SCENARIOS; s++) {
        if (*only && strcmp(only, SCENARIOS[s].name))
            continue;
        if (!ready)
            example_result(EX, SCENARIOS[s].name, 1);
        failed |= !ready || run_scenario(&env, &SCENARIOS[s]) != 0;
    }
    trellis_client_free(env.client);
    if (env.procs.h) {
        failed |= stop_started(&env) != 0;
        chaos_quit();
        harness_free(env.procs.h, !failed);
    }
    mysql_library_end();
    return failed ? 1 : 0;
}
