/*
 * shipping-service: the third party of the hybrid-order example, reserving
 * a shipment slot for an order as a Saga step. It owns the slots of its
 * carriers, in its own database on MariaDB (default hy_shipping):
 *
 *   slots(carrier VARCHAR(64), slot INT, order_id VARCHAR(64) NULL,
 *         PRIMARY KEY (carrier, slot), UNIQUE (order_id))
 *
 * A slot is free while order_id is NULL. Methods, payload "order=ID
 * carrier=C" (ID and C 1..64 of [A-Za-z0-9_.-]):
 *
 *   /hybrid.v1.Shipping/Reserve  (saga action) hold the carrier's first free
 *                                slot for the order; a business failure
 *                                when the carrier is "none" ("no carrier
 *                                for order O") or has no free slot ("carrier
 *                                C has no capacity");
 *   /hybrid.v1.Shipping/Release  (saga compensate) free the order's slot;
 *                                never fails for business reasons.
 *
 * Both run behind the branch barrier (trellis_barrier_run, in the same local
 * transaction as their SQL) and answer with trellis_barrier_fill_reply: a
 * duplicate does nothing, a Release before (or without) its Reserve releases
 * nothing and makes a late Reserve a no-op. The branch comes from the dtm-*
 * metadata; the op from the method (a dtm-op naming another op is refused).
 *
 * Two methods outside any transaction, for setup and checks:
 *
 *   /hybrid.v1.Shipping/Seed   "carrier=C capacity=N": make sure the carrier
 *                              has slots 1..N (N in 0..1000)
 *   /hybrid.v1.Shipping/State  every slot, ordered, one a line:
 *                              "carrier=C slot=N order=ID|-\n"
 *
 * Command line: example_service.h's (--database defaults to hy_shipping).
 *
 * Threads: handlers run on the SDK's worker threads, each with its own
 * MariaDB connection (example_service.h). Every Reserve/Release prints one
 * line (unless --quiet), stamped with the time of day to the microsecond.
 */
#include <errno.h>
#include <mysql.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/barrier.h"
#include "example_service.h"
#include "trellis/trellis_participant.h"

#define ID_MAX EXAMPLE_SERVICE_ID_MAX
#define CAPACITY_MAX 1000

/* ---- payloads -------------------------------------------------------- */

typedef struct {
    char order[ID_MAX + 1];
    char carrier[ID_MAX + 1];
    long long capacity; /* Seed only */
} ship_t;

/* Copy an id field's value into out; 1 if it is a valid id. */
static int take_id(const char *v, char *out, size_t outlen)
{
    if (!example_service_valid_id(v, strlen(v)))
        return 0;
    snprintf(out, outlen, "%s", v);
    return 1;
}

static int take_capacity(const char *v, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(v, &end, 10);
    return !errno && end != v && !*end && *out >= 0 && *out <= CAPACITY_MAX;
}

/* One "key=value" field into s; bit of the field taken, or 0 if bad. */
static int take_field(char *f, ship_t *s)
{
    if (!strncmp(f, "order=", 6))
        return take_id(f + 6, s->order, sizeof s->order) ? 1 : 0;
    if (!strncmp(f, "carrier=", 8))
        return take_id(f + 8, s->carrier, sizeof s->carrier) ? 2 : 0;
    if (!strncmp(f, "capacity=", 9))
        return take_capacity(f + 9, &s->capacity) ? 4 : 0;
    return 0;
}

/* Parse the payload; `want` are the fields needed (1 order, 2 carrier,
 * 4 capacity), nothing else allowed. 0, or -1 with err. */
static int parse_ship(const uint8_t *p, size_t len, int want, ship_t *s,
                      char *err, size_t errlen)
{
    char text[256], *save = NULL;
    int have = 0, bad = len >= sizeof text;
    memset(s, 0, sizeof *s);
    if (!bad) {
        memcpy(text, p, len);
        text[len] = '\0';
        for (char *f = strtok_r(text, " \n", &save); f && !bad;
             f = strtok_r(NULL, " \n", &save)) {
            int bit = take_field(f, s);
            bad = !bit || !(bit & want);
            have |= bit;
        }
    }
    if (!bad && have == want)
        return 0;
    snprintf(err, errlen, "bad payload: want \"%s\"",
             want == 3 ? "order=ID carrier=C" : "carrier=C capacity=N");
    return -1;
}

/* ---- the business SQL, run by trellis_barrier_run
 * ---------------------------- */

/* Hold the carrier's first free slot for the order. */
static trellis_barrier_business_rc_t biz_reserve(MYSQL *conn, void *user,
                                                 char *msg, size_t msglen)
{
    const ship_t *s = user;
    if (!strcmp(s->carrier, "none")) {
        snprintf(msg, msglen, "no carrier for order %s", s->order);
        return TRELLIS_BARRIER_BUSINESS_FAIL;
    }
    if (example_service_exec(conn, msg, msglen,
                             "UPDATE slots SET order_id = '%s' WHERE carrier = "
                             "'%s' AND order_id IS NULL ORDER BY slot LIMIT 1",
                             s->order, s->carrier) != 0)
        return mysql_errno(conn) == 1062 ? TRELLIS_BARRIER_BUSINESS_FAIL
                                         : TRELLIS_BARRIER_BUSINESS_ERROR;
    if (mysql_affected_rows(conn) == 1)
        return TRELLIS_BARRIER_BUSINESS_OK;
    snprintf(msg, msglen, "carrier %s has no capacity", s->carrier);
    return TRELLIS_BARRIER_BUSINESS_FAIL;
}

/* Free the order's slot; none held is fine (the barrier already skips a
 * Release whose Reserve never ran). */
static trellis_barrier_business_rc_t biz_release(MYSQL *conn, void *user,
                                                 char *msg, size_t msglen)
{
    const ship_t *s = user;
    if (example_service_exec(conn, msg, msglen,
                             "UPDATE slots SET order_id = NULL WHERE "
                             "order_id = '%s'",
                             s->order) != 0)
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    return TRELLIS_BARRIER_BUSINESS_OK;
}

/* ---- Reserve / Release ------------------------------------------------ */

typedef struct {
    const char *method; /* last part of the method name */
    const char *op;     /* the barrier op */
    trellis_barrier_business_fn fn;
} ship_op_t;

static const ship_op_t OPS[] = {
    {"Reserve", "action", biz_reserve},
    {"Release", "compensate", biz_release},
};

static const char *outcome_name(trellis_barrier_outcome_t o)
{
    static const char *const names[] = {
        [TRELLIS_BARRIER_DONE] = "done",
        [TRELLIS_BARRIER_SKIPPED_DUPLICATE] = "duplicate: nothing to do",
        [TRELLIS_BARRIER_SKIPPED_EMPTY] = "empty: its Reserve never ran",
        [TRELLIS_BARRIER_SKIPPED_HANGING] = "hanging: released before it came",
        [TRELLIS_BARRIER_BUSINESS_FAILURE] = "refused",
        [TRELLIS_BARRIER_ERROR] = "error",
    };
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "?";
}

static void say(const trellis_branch_ctx_t *ctx, const ship_op_t *op,
                const ship_t *s, const char *fmt, ...)
{
    if (example_service_opts()->quiet)
        return;
    char what[400], stamp[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    example_service_stamp(stamp, sizeof stamp);
    printf("%s shipping-service: %s gid=%s branch=%s order=%s carrier=%s -> "
           "%s\n",
           stamp, op->method, ctx->gid, ctx->branch_id, s ? s->order : "-",
           s ? s->carrier : "-", what);
}

static void run_op(const trellis_branch_ctx_t *ctx, const ship_op_t *op,
                   ship_t *s, trellis_reply_t *reply)
{
    char msg[256] = "";
    trellis_barrier_branch_t b;
    if (example_service_branch(ctx, op->method, op->op, "saga", &b, reply) !=
        0) {
        say(ctx, op, s, "rejected: %s", reply->message);
        return;
    }
    MYSQL *conn = example_service_conn(msg, sizeof msg);
    if (!conn) {
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", msg);
        say(ctx, op, s, "error: %s", msg);
        return;
    }
    trellis_barrier_outcome_t out = trellis_barrier_run(
        conn, TRELLIS_BARRIER_DEFAULT_TABLE, &b, op->fn, s, msg, sizeof msg);
    if (out == TRELLIS_BARRIER_ERROR)
        example_service_conn_check();
    trellis_barrier_fill_reply(out, msg, reply);
    int show =
        *msg && (out == TRELLIS_BARRIER_DONE || out == TRELLIS_BARRIER_ERROR ||
                 out == TRELLIS_BARRIER_BUSINESS_FAILURE);
    say(ctx, op, s, "%s%s%s", outcome_name(out), show ? ": " : "",
        show ? msg : "");
}

static void handle_op(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t payload_len, trellis_reply_t *reply, void *user)
{
    const ship_op_t *op = user;
    ship_t s;
    char err[200];
    if (parse_ship(payload, payload_len, 3, &s, err, sizeof err) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        say(ctx, op, NULL, "rejected: %s", err);
        return;
    }
    run_op(ctx, op, &s, reply);
}

/* ---- Seed and State --------------------------------------------------- */

static int seed_slots(MYSQL *conn, const ship_t *s, char *err, size_t errlen)
{
    for (long long i = 1; i <= s->capacity; i++)
        if (example_service_exec(conn, err, errlen,
                                 "INSERT IGNORE INTO slots (carrier, slot) "
                                 "VALUES ('%s', %lld)",
                                 s->carrier, i) != 0)
            return -1;
    return 0;
}

static void handle_seed(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                        size_t payload_len, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)user;
    ship_t s;
    char err[256];
    MYSQL *conn;
    if (parse_ship(payload, payload_len, 6, &s, err, sizeof err) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        return;
    }
    if (!(conn = example_service_conn(err, sizeof err)) ||
        seed_slots(conn, &s, err, sizeof err) != 0) {
        example_service_conn_check();
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        return;
    }
    if (!example_service_opts()->quiet)
        printf("shipping-service: Seed carrier=%s capacity=%lld\n", s.carrier,
               s.capacity);
}

/* The slots as State lines into a malloc'd buffer; -1 on no memory. */
static int state_lines(MYSQL_RES *r, char **buf, size_t *len)
{
    size_t cap = 0;
    char line[200];
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r))) {
        snprintf(line, sizeof line, "carrier=%s slot=%s order=%s\n", row[0],
                 row[1], row[2] ? row[2] : "-");
        if (example_service_buf_add(buf, len, &cap, line) != 0)
            return -1;
    }
    return 0;
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
        example_service_exec(conn, err, sizeof err,
                             "SELECT carrier, slot, order_id FROM slots "
                             "ORDER BY carrier, slot") != 0 ||
        !(r = mysql_store_result(conn))) {
        if (conn && !*err)
            snprintf(err, sizeof err, "%s", mysql_error(conn));
        example_service_conn_check();
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    int rc = state_lines(r, &buf, &len);
    mysql_free_result(r);
    if (rc != 0) {
        free(buf);
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "out of memory");
        return;
    }
    reply->body = (uint8_t *)buf;
    reply->body_len = len;
}

/* ---- start ----------------------------------------------------------- */

static int add_handlers(trellis_participant_t *p, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
        char method[64];
        snprintf(method, sizeof method, "/hybrid.v1.Shipping/%s",
                 OPS[i].method);
        if (trellis_participant_handle(p, method, handle_op, (void *)&OPS[i],
                                       err, errlen) != TRELLIS_OK)
            return -1;
    }
    if (trellis_participant_handle(p, "/hybrid.v1.Shipping/Seed", handle_seed,
                                   NULL, err, errlen) != TRELLIS_OK ||
        trellis_participant_handle(p, "/hybrid.v1.Shipping/State", handle_state,
                                   NULL, err, errlen) != TRELLIS_OK)
        return -1;
    return 0;
}

static void ready(int port)
{
    printf("shipping-service ready database=%s port=%d\n",
           example_service_opts()->database, port);
}

static const example_service_def_t SHIPPING = {
    .program = "shipping-service",
    .usage_head = "shipping-service [--database DB]",
    .usage_tail = "[--threads N] [--quiet]",
    .default_db = "hy_shipping",
    .table_ddl = "CREATE TABLE IF NOT EXISTS slots ("
                 "carrier VARCHAR(64) NOT NULL, slot INT NOT NULL, "
                 "order_id VARCHAR(64) NULL, PRIMARY KEY (carrier, slot), "
                 "UNIQUE KEY (order_id)) ENGINE=InnoDB",
    .add_handlers = add_handlers,
    .ready = ready,
};

int main(int argc, char **argv)
{
    return example_service_main(argc, argv, &SHIPPING);
}
