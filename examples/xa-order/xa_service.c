/*
 * xa_service.c — the XA part of the examples' XA participant scaffold
 * (see xa_service.h): the Prepare/Commit/Rollback handlers over the XA
 * adapter, the State method, the default payload (an order line) with
 * its fail_commits fault, and the log lines. The command line, the
 * per-worker MariaDB connections, the schema and serving are
 * example_service.h's, shared with the bank example.
 *
 * What is deliberately not here: any business rule. A service supplies its
 * table and the SQL its Prepare runs (order_service.c, stock_service.c,
 * ledger_service.c), and its payload when it is no order line; the
 * adapter (rm-adapters/mysql-xa) owns XA START ... XA PREPARE, the barrier
 * row, and the idempotent phase 2.
 */
#include "xa_service.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_service.h"
#include "trellis/mysql_xa.h"

#define MAX_FAULTS 1024 /* (gid, branch) pairs with a fail_commits fault */
#define MAX_THREADS 256 /* one connection each */

static const xa_service_def_t *DEF;

/* ---- payloads -------------------------------------------------------- */

/* A decimal in [min, max] into *out; 0 or -1. */
static int parse_num(const char *s, long long min, long long max,
                     long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* One "key=value" field into it; 0, or -1 for an unknown or bad field. */
static int parse_field(const char *f, xa_item_t *it, int *seen)
{
    const char *eq = strchr(f, '=');
    long long n;
    if (!eq)
        return -1;
    size_t klen = (size_t)(eq - f);
    const char *v = eq + 1;
    if (klen == 5 && !strncmp(f, "order", 5) &&
        example_service_valid_id(v, strlen(v))) {
        snprintf(it->order, sizeof it->order, "%s", v);
        *seen |= 1;
    } else if (klen == 3 && !strncmp(f, "sku", 3) &&
               example_service_valid_id(v, strlen(v))) {
        snprintf(it->sku, sizeof it->sku, "%s", v);
        *seen |= 2;
    } else if (klen == 3 && !strncmp(f, "qty", 3) &&
               parse_num(v, 1, 1000000, &n) == 0) {
        it->qty = n;
        *seen |= 4;
    } else if (klen == 12 && !strncmp(f, "fail_commits", 12) &&
               parse_num(v, 0, 1000, &n) == 0) {
        it->fail_commits = (int)n;
    } else {
        return -1;
    }
    return 0;
}

/* Parse "order=ID sku=SKU qty=N [fail_commits=K]" (any order). The id
 * charset keeps it safe to quote ids into SQL as they are. 0 or -1. */
static int parse_item(const uint8_t *p, size_t len, void *item, char *err,
                      size_t errlen)
{
    xa_item_t *it = item;
    char text[512], *save = NULL;
    int seen = 0, bad = len >= sizeof text;
    memset(it, 0, sizeof *it);
    if (!bad) {
        memcpy(text, p, len);
        text[len] = '\0';
        for (char *f = strtok_r(text, " \n", &save); f && !bad;
             f = strtok_r(NULL, " \n", &save))
            bad = parse_field(f, it, &seen) != 0;
    }
    if (!bad && seen == 7)
        return 0;
    snprintf(err, errlen,
             "bad payload: want \"order=ID sku=SKU qty=N "
             "[fail_commits=K]\" (ID, SKU 1..64 of [A-Za-z0-9_.-], N "
             "1..1000000)");
    return -1;
}

static void describe_item(const void *item, char *buf, size_t len)
{
    const xa_item_t *it = item;
    snprintf(buf, len, "order=%s sku=%s qty=%lld", it ? it->order : "-",
             it ? it->sku : "-", it ? it->qty : 0);
}

static int item_fail_commits(const void *item)
{
    return ((const xa_item_t *)item)->fail_commits;
}

static const xa_payload_t ORDER_LINE = {parse_item, describe_item,
                                        item_fail_commits};
_Static_assert(sizeof(xa_item_t) <= XA_SERVICE_ITEM_MAX,
               "an order line fits an item");

/* The service's payload: DEF->payload, or ORDER_LINE. */
static const xa_payload_t *PAYLOAD;

/* ---- the fail_commits fault ------------------------------------------ */

static struct {
    pthread_mutex_t mu;
    struct {
        char key[160]; /* "gid/branch" */
        int seen;      /* Commit calls so far */
    } slot[MAX_FAULTS];
    int n;
} FAULTS = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* 1 if this Commit call of (gid, branch) is one of the first `limit`:
 * answer UNAVAILABLE without doing anything. */
static int commit_fault(const trellis_branch_ctx_t *ctx, int limit)
{
    char key[160];
    int hit = 0, i;
    if (limit <= 0)
        return 0;
    snprintf(key, sizeof key, "%s/%s", ctx->gid, ctx->branch_id);
    pthread_mutex_lock(&FAULTS.mu);
    for (i = 0; i < FAULTS.n && strcmp(FAULTS.slot[i].key, key); i++)
        ;
    if (i == FAULTS.n && FAULTS.n < MAX_FAULTS)
        snprintf(FAULTS.slot[FAULTS.n++].key, sizeof FAULTS.slot[0].key, "%s",
                 key);
    if (i < FAULTS.n)
        hit = ++FAULTS.slot[i].seen <= limit;
    pthread_mutex_unlock(&FAULTS.mu);
    return hit;
}

/* ---- XA handlers ----------------------------------------------------- */

typedef enum { OP_PREPARE, OP_COMMIT, OP_ROLLBACK } xa_op_t;

typedef struct {
    const char *method; /* last part of the method name */
    const char *op;     /* dtm-op / barrier op */
    xa_op_t kind;
} op_def_t;

static const op_def_t OPS[] = {
    {"Prepare", "prepare", OP_PREPARE},
    {"Commit", "commit", OP_COMMIT},
    {"Rollback", "rollback", OP_ROLLBACK},
};

static const char *outcome_name(trellis_myxa_outcome_t o)
{
    switch (o) {
    case TRELLIS_MYXA_PREPARED:
        return "prepared";
    case TRELLIS_MYXA_SKIPPED_DUPLICATE:
        return "duplicate: nothing to do";
    case TRELLIS_MYXA_SKIPPED_ROLLED_BACK:
        return "rolled back before it came: nothing prepared";
    case TRELLIS_MYXA_BUSINESS_FAILURE:
        return "refused";
    case TRELLIS_MYXA_ERROR:
        return "error";
    }
    return "?";
}

static void say(const trellis_branch_ctx_t *ctx, const op_def_t *op,
                const void *item, const char *fmt, ...)
{
    if (example_service_opts()->quiet)
        return;
    char what[400], stamp[32], about[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    example_service_stamp(stamp, sizeof stamp);
    PAYLOAD->describe(item, about, sizeof about);
    printf("%s %s: %s gid=%s branch=%s %s -> %s\n", stamp, DEF->name,
           op->method, ctx->gid, ctx->branch_id, about, what);
}

/* The branch this call is about, or -1 with reply filled. */
static int branch_of(const trellis_branch_ctx_t *ctx, const op_def_t *op,
                     trellis_barrier_branch_t *b, trellis_reply_t *reply)
{
    return example_service_branch(ctx, op->method, op->op, "xa", b, reply);
}

static void run_prepare(MYSQL *conn, const trellis_branch_ctx_t *ctx,
                        const op_def_t *op, const trellis_barrier_branch_t *b,
                        void *it, trellis_reply_t *reply)
{
    char msg[256] = "";
    trellis_myxa_outcome_t out =
        trellis_myxa_prepare_branch(conn, TRELLIS_BARRIER_DEFAULT_TABLE, b,
                                    DEF->prepare_sql, it, msg, sizeof msg);
    if (out == TRELLIS_MYXA_ERROR)
        example_service_conn_check();
    trellis_myxa_fill_reply(out, msg, reply);
    int show = *msg && (out == TRELLIS_MYXA_ERROR ||
                        out == TRELLIS_MYXA_BUSINESS_FAILURE);
    say(ctx, op, it, "%s%s%s", outcome_name(out), show ? ": " : "",
        show ? msg : "");
}

static void run_phase2(MYSQL *conn, const trellis_branch_ctx_t *ctx,
                       const op_def_t *op, const trellis_barrier_branch_t *b,
                       const void *it, trellis_reply_t *reply)
{
    char msg[256] = "";
    int fail_commits = PAYLOAD->fail_commits ? PAYLOAD->fail_commits(it) : 0;
    if (op->kind == OP_COMMIT && commit_fault(ctx, fail_commits)) {
        example_service_answer(reply, TRELLIS_REPLY_ERROR,
                               "fault: unavailable (fail_commits=%d)",
                               fail_commits);
        say(ctx, op, it, "fault: UNAVAILABLE before doing anything");
        return;
    }
    int rc = op->kind == OP_COMMIT
                 ? trellis_myxa_commit_branch(
                       conn, TRELLIS_BARRIER_DEFAULT_TABLE, b, msg, sizeof msg)
                 : trellis_myxa_rollback_branch(
                       conn, TRELLIS_BARRIER_DEFAULT_TABLE, b, msg, sizeof msg);
    if (rc == 0) {
        say(ctx, op, it, "%s%s%s",
            op->kind == OP_COMMIT ? "committed" : "rolled back",
            *msg ? ": " : "", msg);
        return;
    }
    example_service_conn_check();
    example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", msg);
    say(ctx, op, it, "error: %s", msg);
}

static void handle_xa(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t payload_len, trellis_reply_t *reply, void *user)
{
    const op_def_t *op = user;
    _Alignas(max_align_t) unsigned char it[XA_SERVICE_ITEM_MAX];
    trellis_barrier_branch_t b;
    char err[256] = "";
    memset(it, 0, sizeof it);
    if (PAYLOAD->parse(payload, payload_len, it, err, sizeof err) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        say(ctx, op, NULL, "rejected: %s", err);
        return;
    }
    if (branch_of(ctx, op, &b, reply) != 0) {
        say(ctx, op, it, "rejected: %s", reply->message);
        return;
    }
    MYSQL *conn = example_service_conn(err, sizeof err);
    if (!conn) {
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        say(ctx, op, it, "error: %s", err);
    } else if (op->kind == OP_PREPARE) {
        run_prepare(conn, ctx, op, &b, it, reply);
    } else {
        run_phase2(conn, ctx, op, &b, it, reply);
    }
}

/* ---- State ----------------------------------------------------------- */

/* Every row of r as "col=value col=value\n" into a malloc'd buffer. */
static char *rows_text(MYSQL_RES *r, size_t *len)
{
    char *buf = NULL, field[160];
    size_t cap = 0;
    unsigned n = mysql_num_fields(r);
    MYSQL_FIELD *f = mysql_fetch_fields(r);
    MYSQL_ROW row;
    *len = 0;
    while ((row = mysql_fetch_row(r))) {
        for (unsigned i = 0; i < n; i++) {
            snprintf(field, sizeof field, "%s%s=%s", i ? " " : "", f[i].name,
                     row[i] ? row[i] : "NULL");
            if (example_service_buf_add(&buf, len, &cap, field) != 0)
                return buf;
        }
        if (example_service_buf_add(&buf, len, &cap, "\n") != 0)
            return buf;
    }
    return buf;
}

static void handle_state(const trellis_branch_ctx_t *ctx,
                         const uint8_t *payload, size_t payload_len,
                         trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)payload, (void)payload_len, (void)user;
    char err[256] = "";
    MYSQL *conn = example_service_conn(err, sizeof err);
    MYSQL_RES *r = NULL;
    if (!conn ||
        example_service_exec(conn, err, sizeof err, "%s", DEF->state_query) !=
            0 ||
        !(r = mysql_store_result(conn))) {
        if (conn && !*err)
            snprintf(err, sizeof err, "%s", mysql_error(conn));
        example_service_conn_check();
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        return;
    }
    reply->body = (uint8_t *)rows_text(r, &reply->body_len);
    mysql_free_result(r);
}

/* ---- start ----------------------------------------------------------- */

static int add_handlers(trellis_participant_t *p, char *err, size_t errlen)
{
    char method[128];
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
        snprintf(method, sizeof method, "/%s/%s", DEF->service, OPS[i].method);
        if (trellis_participant_handle(p, method, handle_xa, (void *)&OPS[i],
                                       err, errlen) != TRELLIS_OK)
            return -1;
    }
    snprintf(method, sizeof method, "/%s/State", DEF->service);
    if (trellis_participant_handle(p, method, handle_state, NULL, err,
                                   errlen) != TRELLIS_OK)
        return -1;
    return DEF->add_handlers ? DEF->add_handlers(p, err, errlen) : 0;
}

static void ready(int port)
{
    const example_service_opts_t *o = example_service_opts();
    printf("%s ready database=%s port=%d threads=%d\n", DEF->name, o->database,
           port, o->threads);
}

int xa_service_main(int argc, char **argv, const xa_service_def_t *def)
{
    static char usage_head[128];
    static example_service_def_t svc = {
        .usage_tail = "[--threads N] [--quiet]",
        .max_threads = MAX_THREADS,
        .add_handlers = add_handlers,
        .ready = ready,
    };
    DEF = def;
    PAYLOAD = def->payload ? def->payload : &ORDER_LINE;
    snprintf(usage_head, sizeof usage_head, "%s [--database DB]", def->name);
    svc.program = def->name;
    svc.usage_head = usage_head;
    svc.default_db = def->default_db;
    svc.table_ddl = def->table_ddl;
    return example_service_main(argc, argv, &svc);
}
