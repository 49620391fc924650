/*
 * outbox-order-service: the order service of the order-outbox example (run
 * as process "order-service"), the initiator of a 2-phase message (seed
 * 004, the outbox without a broker). It owns the orders, in its own
 * database on MariaDB (default oo_orders):
 *
 *   orders(order_id VARCHAR(64) PRIMARY KEY, item VARCHAR(64), qty BIGINT,
 *          created TIMESTAMP(6))
 *
 * and places each order with trellis_msg_do_and_submit: trellisd stores
 * the order's message PREPARED, the local transaction inserts the order
 * row and the message's barrier row and commits, then the message is
 * submitted. Its gid is the order id; its steps, one after the other:
 *
 *   01  --stock ADDR /stock.Stock/Reserve   "order=ID item=SKU qty=N"
 *   02+ topic "order.created"               the same payload, to every
 *                                           subscriber (shipping-service)
 *
 * If this process dies before the submit, trellisd asks the back-check
 * once the message's timeout (--timeout-ms, 2000) has passed:
 *
 *   /order.Orders/QueryPrepared  trellis_barrier_query_prepared_handler:
 *                                committed (deliver) or not (drop; the
 *                                barrier row it leaves makes a late commit
 *                                impossible)
 *
 * at --advertise-host (127.0.0.1) and the port this process serves on:
 * restart it on the same port, as the driver does.
 *
 * The driver's control methods, outside any transaction:
 *
 *   /order.Orders/Place    "order=ID item=SKU qty=N [hold=P]": place the
 *                          order on a thread of its own; answers at once.
 *                          qty=0 is refused by the local transaction (a
 *                          business failure: rolled back, the message
 *                          aborted). hold=before-commit stops the run
 *                          inside the local transaction (the order row
 *                          inserted, not committed), hold=after-commit
 *                          after its COMMIT and before the submit; either
 *                          until Release or the driver's kill -9.
 *   /order.Orders/Status   "order=ID": "state=none", "state=running",
 *                          "state=held at=P", or "state=done rc=R
 *                          local=L status=S msg=M" (R the rc of the
 *                          placement, L the local transaction's outcome,
 *                          S the message's status as the submit left it);
 *   /order.Orders/Release  "order=ID": let a held run go on;
 *   /order.Orders/CommitAgain  "order=ID item=SKU qty=N": run the order's
 *                          local transaction once more for its gid (what
 *                          a late commit after a back-check would do),
 *                          synchronously; the reply body is
 *                          "local=L msg=M".
 *
 * Why hold=after-commit does not call trellis_msg_do_and_submit:
 * do_and_submit has no point between its COMMIT and its submit, so that
 * run spells out the same three calls (trellis_msg_prepare,
 * trellis_barrier_msg_run, trellis_msg_submit) with the hold between the
 * last two. Every other run uses do_and_submit.
 *
 * Threads: the participant's workers (--threads, 4) serve the methods;
 * each placement has a thread of its own. Every thread that touches
 * MariaDB has its own connection (example_service.h). At the stop signal
 * the holds are released and the placement threads joined.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox_order.h"
#include "trellis/barrier_msg.h"
#include "trellis/trellis_msg.h"

#define MAX_RUNS 64
#define ADDR_MAX 160
#define TM_CALL_TIMEOUT_MS 30000
#define RETRY_INTERVAL_MS 50

/* ---- command line: the service's own flags --------------------------- */

static struct {
    const char *tm, *stock, *advertise_host;
    unsigned timeout_ms;
} A = {.advertise_host = "127.0.0.1", .timeout_ms = 2000};

static trellis_client_t *CLIENT;

static int set_flag(const char *k, const char *v)
{
    if (!strcmp(k, "--tm"))
        A.tm = v;
    else if (!strcmp(k, "--stock"))
        A.stock = v;
    else if (!strcmp(k, "--advertise-host"))
        A.advertise_host = v;
    else if (!strcmp(k, "--timeout-ms"))
        return (A.timeout_ms = (unsigned)atoi(v)) > 0 ? 0 : -1;
    else
        return -1;
    return 0;
}

static int check_flags(void)
{
    return A.tm && A.stock ? 0 : -1;
}

/* ---- runs started by the driver -------------------------------------- */

typedef struct {
    outbox_order_t order;
    int held, released, done;
    trellis_rc_t rc;
    trellis_barrier_msg_outcome_t local;
    trellis_trans_status_t status;
    char msg[TRELLIS_MSG_TEXT_MAX + 256];
    pthread_t th;
} run_t;

static struct {
    pthread_mutex_t mu; /* guards everything below and every run_t */
    pthread_cond_t cv;  /* a hold released */
    run_t runs[MAX_RUNS];
    int n;
    char query_prepared[ADDR_MAX]; /* this service's back-check target */
} RUNS = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* The run of order; NULL if none. RUNS.mu held. */
static run_t *find_run(const char *order)
{
    for (int i = 0; i < RUNS.n; i++)
        if (!strcmp(RUNS.runs[i].order.order, order))
            return &RUNS.runs[i];
    return NULL;
}

/* Wait here while r holds at point (if that is its hold). */
static void hold_point(run_t *r, outbox_hold_t point)
{
    if (!r || r->order.hold != point)
        return;
    pthread_mutex_lock(&RUNS.mu);
    r->held = !r->released;
    if (r->held)
        outbox_say("held %s gid=%s (until Release)", outbox_hold_name(point),
                   r->order.order);
    while (!r->released)
        pthread_cond_wait(&RUNS.cv, &RUNS.mu);
    r->held = 0;
    pthread_mutex_unlock(&RUNS.mu);
}

/* ---- the local transaction ------------------------------------------- */

/* The order row, inside the message's local transaction; a quantity
 * below 1 is refused (a business failure: everything rolls back). */
static trellis_barrier_business_rc_t
insert_order(MYSQL *conn, const outbox_order_t *o, char *msg, size_t msglen)
{
    if (o->qty < 1) {
        snprintf(msg, msglen, "order %s: quantity must be at least 1",
                 o->order);
        return TRELLIS_BARRIER_BUSINESS_FAIL;
    }
    if (example_service_exec(conn, msg, msglen,
                             "INSERT INTO orders (order_id, item, qty) "
                             "VALUES ('%s', '%s', %lld)",
                             o->order, o->item, o->qty) != 0)
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    return TRELLIS_BARRIER_BUSINESS_OK;
}

/* A placement's business SQL (user: its run_t), then its hold inside the
 * transaction, if it has that one. */
static trellis_barrier_business_rc_t biz_place(MYSQL *conn, void *user,
                                               char *msg, size_t msglen)
{
    run_t *r = user;
    trellis_barrier_business_rc_t rc =
        insert_order(conn, &r->order, msg, msglen);
    if (rc == TRELLIS_BARRIER_BUSINESS_OK)
        hold_point(r, OUTBOX_HOLD_BEFORE_COMMIT);
    return rc;
}

/* CommitAgain's business SQL (user: the outbox_order_t). */
static trellis_barrier_business_rc_t biz_again(MYSQL *conn, void *user,
                                               char *msg, size_t msglen)
{
    return insert_order(conn, user, msg, msglen);
}

/* ---- placing an order ------------------------------------------------- */

/* The order's message: Reserve at stock, then the topic. NULL with err. */
static trellis_msg_t *order_message(const outbox_order_t *o, char *err,
                                    size_t errlen)
{
    char payload[256], target[ADDR_MAX];
    trellis_msg_t *m = NULL;
    trellis_options_t opts = {.timeout_to_fail_ms = A.timeout_ms,
                              .retry_interval_ms = RETRY_INTERVAL_MS};
    outbox_order_format(o, payload, sizeof payload);
    snprintf(target, sizeof target, "%s/stock.Stock/Reserve", A.stock);
    if (trellis_msg_new(o->order, &m, err, errlen) != TRELLIS_OK)
        return NULL;
    trellis_msg_set_options(m, &opts);
    if (trellis_msg_add_step(m, target, payload, strlen(payload), err, errlen) <
            0 ||
        trellis_msg_add_topic_step(m, OUTBOX_TOPIC, payload, strlen(payload),
                                   err, errlen) < 0) {
        trellis_msg_free(m);
        return NULL;
    }
    return m;
}

/* do_and_submit's sequence with the hold after the COMMIT (see the top
 * of this file). */
static trellis_rc_t place_held_after_commit(run_t *r, const trellis_msg_t *m,
                                            const char *qp, MYSQL *conn)
{
    trellis_rc_t rc = trellis_msg_prepare(CLIENT, m, qp, r->msg, sizeof r->msg);
    if (rc != TRELLIS_OK)
        return rc;
    r->local = trellis_barrier_msg_run(conn, NULL, r->order.order, biz_place, r,
                                       r->msg, sizeof r->msg);
    if (r->local != TRELLIS_BARRIER_MSG_COMMITTED)
        return TRELLIS_UNAVAILABLE; /* not this run's story: the back-check
                                       drops it */
    hold_point(r, OUTBOX_HOLD_AFTER_COMMIT);
    return trellis_msg_submit(CLIENT, m, 0, &r->status, NULL, 0, r->msg,
                              sizeof r->msg);
}

/* Place r's order; its outcome into r (RUNS.mu not held: only this thread
 * writes them until done is set). */
static trellis_rc_t place(run_t *r, const char *qp)
{
    char err[256] = "";
    MYSQL *conn = example_service_conn(err, sizeof err);
    trellis_msg_t *m = conn ? order_message(&r->order, err, sizeof err) : NULL;
    trellis_rc_t rc = TRELLIS_UNAVAILABLE;
    if (!m)
        snprintf(r->msg, sizeof r->msg, "%s", err);
    else if (r->order.hold == OUTBOX_HOLD_AFTER_COMMIT)
        rc = place_held_after_commit(r, m, qp, conn);
    else
        rc = trellis_msg_do_and_submit(CLIENT, m, qp, conn, NULL, biz_place, r,
                                       0, &r->local, &r->status, r->msg,
                                       sizeof r->msg);
    trellis_msg_free(m);
    return rc;
}

static void *place_main(void *arg)
{
    run_t *r = arg;
    char qp[ADDR_MAX];
    pthread_mutex_lock(&RUNS.mu);
    snprintf(qp, sizeof qp, "%s", RUNS.query_prepared);
    pthread_mutex_unlock(&RUNS.mu);
    r->local = TRELLIS_BARRIER_MSG_ERROR;
    r->status = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc = place(r, qp);
    outbox_say("place gid=%s -> rc %d, local transaction %s, message %s%s%s",
               r->order.order, rc, trellis_barrier_msg_outcome_name(r->local),
               trellis_trans_status_name(r->status), *r->msg ? ": " : "",
               r->msg);
    pthread_mutex_lock(&RUNS.mu);
    r->rc = rc;
    r->done = 1;
    pthread_mutex_unlock(&RUNS.mu);
    example_service_conn_close();
    return NULL;
}

/* Take a slot for o and start its thread. 0, or -1 with err. */
static int start_run(const outbox_order_t *o, char *err, size_t errlen)
{
    int rc = -1;
    pthread_mutex_lock(&RUNS.mu);
    if (!*RUNS.query_prepared)
        snprintf(err, errlen, "not serving yet");
    else if (find_run(o->order))
        snprintf(err, errlen, "order %s was placed here before", o->order);
    else if (RUNS.n == MAX_RUNS)
        snprintf(err, errlen, "%d orders placed already", MAX_RUNS);
    else {
        run_t *r = &RUNS.runs[RUNS.n];
        memset(r, 0, sizeof *r);
        r->order = *o;
        if (pthread_create(&r->th, NULL, place_main, r) == 0) {
            RUNS.n++;
            rc = 0;
        } else {
            snprintf(err, errlen, "pthread_create failed");
        }
    }
    pthread_mutex_unlock(&RUNS.mu);
    return rc;
}

/* At the stop signal: release every hold, wait for every run. */
static void stopping(void)
{
    pthread_mutex_lock(&RUNS.mu);
    int n = RUNS.n;
    for (int i = 0; i < n; i++)
        RUNS.runs[i].released = 1;
    pthread_cond_broadcast(&RUNS.cv);
    pthread_mutex_unlock(&RUNS.mu);
    for (int i = 0; i < n; i++)
        pthread_join(RUNS.runs[i].th, NULL);
}

/* ---- control methods ------------------------------------------------- */

/* Set reply's body to a copy of text (nothing when out of memory). */
static void reply_text(trellis_reply_t *reply, const char *text)
{
    reply->body = (uint8_t *)strdup(text);
    reply->body_len = reply->body ? strlen(text) : 0;
}

static void handle_place(const trellis_branch_ctx_t *ctx, const uint8_t *p,
                         size_t n, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)user;
    outbox_order_t o;
    char err[256];
    if (outbox_order_parse(p, n, 1, &o, err, sizeof err) != 0 ||
        start_run(&o, err, sizeof err) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        return;
    }
    outbox_say("place gid=%s item=%s qty=%lld hold=%s", o.order, o.item, o.qty,
               outbox_hold_name(o.hold));
}

/* The "order=ID" of a Status or Release call, or -1 with reply filled. */
static int order_of(const uint8_t *p, size_t n, char *order,
                    trellis_reply_t *reply)
{
    char text[128], tail;
    if (n < sizeof text) {
        memcpy(text, p, n);
        text[n] = '\0';
        if (sscanf(text, "order=%64[A-Za-z0-9_.-] %c", order, &tail) == 1)
            return 0;
    }
    example_service_answer(reply, TRELLIS_REPLY_FAILURE,
                           "bad payload: want \"order=ID\"");
    return -1;
}

/* What Status says about r. RUNS.mu held. */
static void describe_run(const run_t *r, char *buf, size_t len)
{
    if (!r)
        snprintf(buf, len, "state=none");
    else if (r->done)
        snprintf(buf, len, "state=done rc=%d local=%s status=%s msg=%s", r->rc,
                 trellis_barrier_msg_outcome_name(r->local),
                 trellis_trans_status_name(r->status), r->msg);
    else if (r->held)
        snprintf(buf, len, "state=held at=%s", outbox_hold_name(r->order.hold));
    else
        snprintf(buf, len, "state=running");
}

static void handle_status(const trellis_branch_ctx_t *ctx, const uint8_t *p,
                          size_t n, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)user;
    char order[EXAMPLE_SERVICE_ID_MAX + 1], text[TRELLIS_MSG_TEXT_MAX + 512];
    if (order_of(p, n, order, reply) != 0)
        return;
    pthread_mutex_lock(&RUNS.mu);
    describe_run(find_run(order), text, sizeof text);
    pthread_mutex_unlock(&RUNS.mu);
    reply_text(reply, text);
}

static void handle_release(const trellis_branch_ctx_t *ctx, const uint8_t *p,
                           size_t n, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)user;
    char order[EXAMPLE_SERVICE_ID_MAX + 1];
    if (order_of(p, n, order, reply) != 0)
        return;
    pthread_mutex_lock(&RUNS.mu);
    run_t *r = find_run(order);
    if (r)
        r->released = 1;
    pthread_cond_broadcast(&RUNS.cv);
    pthread_mutex_unlock(&RUNS.mu);
    if (!r)
        example_service_answer(reply, TRELLIS_REPLY_FAILURE,
                               "order %s was not placed here", order);
    else
        outbox_say("release gid=%s", order);
}

static void handle_commit_again(const trellis_branch_ctx_t *ctx,
                                const uint8_t *p, size_t n,
                                trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)user;
    outbox_order_t o;
    char msg[512] = "", text[640];
    if (outbox_order_parse(p, n, 0, &o, msg, sizeof msg) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE, "%s", msg);
        return;
    }
    MYSQL *conn = example_service_conn(msg, sizeof msg);
    trellis_barrier_msg_outcome_t local = TRELLIS_BARRIER_MSG_ERROR;
    if (conn)
        local = trellis_barrier_msg_run(conn, NULL, o.order, biz_again, &o, msg,
                                        sizeof msg);
    if (local != TRELLIS_BARRIER_MSG_COMMITTED)
        example_service_conn_check();
    snprintf(text, sizeof text, "local=%s msg=%s",
             trellis_barrier_msg_outcome_name(local), msg);
    outbox_say("commit again gid=%s -> %s", o.order, text);
    reply_text(reply, text);
}

/* ---- the back-check -------------------------------------------------- */

static MYSQL *borrow_conn(void *user, char *err, size_t errlen)
{
    (void)user;
    return example_service_conn(err, errlen);
}

static void give_back_conn(void *user, MYSQL *conn, int broken)
{
    (void)user, (void)conn;
    if (broken)
        example_service_conn_check();
}

static const trellis_barrier_conns_t CONNS = {.borrow = borrow_conn,
                                              .give_back = give_back_conn};

/* The SDK's back-check handler, and a line saying what it answered. */
static void handle_query_prepared(const trellis_branch_ctx_t *ctx,
                                  const uint8_t *p, size_t n,
                                  trellis_reply_t *reply, void *user)
{
    trellis_barrier_query_prepared_handler(ctx, p, n, reply, user);
    outbox_say("QueryPrepared gid=%s -> %s: %s", ctx->gid,
               reply->code == TRELLIS_REPLY_SUCCESS   ? "OK"
               : reply->code == TRELLIS_REPLY_FAILURE ? "ABORTED"
                                                      : "error",
               reply->message);
}

/* ---- start ----------------------------------------------------------- */

static int add_handlers(trellis_participant_t *p, char *err, size_t errlen)
{
    static const struct {
        const char *method;
        trellis_handler_fn fn;
    } methods[] = {{"/order.Orders/Place", handle_place},
                   {"/order.Orders/Status", handle_status},
                   {"/order.Orders/Release", handle_release},
                   {"/order.Orders/CommitAgain", handle_commit_again},
                   {"/order.Orders/QueryPrepared", handle_query_prepared}};
    if (trellis_client_new(A.tm, TM_CALL_TIMEOUT_MS, &CLIENT, err, errlen) !=
        TRELLIS_OK)
        return -1;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (trellis_participant_handle(p, methods[i].method, methods[i].fn,
                                       (void *)&CONNS, err,
                                       errlen) != TRELLIS_OK)
            return -1;
    return 0;
}

/* Serving: the back-check target names this port. */
static void ready(int port)
{
    pthread_mutex_lock(&RUNS.mu);
    snprintf(RUNS.query_prepared, sizeof RUNS.query_prepared,
             "%s:%d/order.Orders/QueryPrepared", A.advertise_host, port);
    pthread_mutex_unlock(&RUNS.mu);
    printf("order-service ready database=%s port=%d query_prepared=%s:%d "
           "timeout_ms=%u\n",
           example_service_opts()->database, port, A.advertise_host, port,
           A.timeout_ms);
}

static const example_service_def_t SERVICE = {
    .program = "order-service",
    .usage_head = "outbox-order-service --tm ADDR --stock ADDR "
                  "[--timeout-ms N] [--advertise-host H]\n"
                  "         [--database DB]",
    .usage_tail = "[--threads N] [--quiet]",
    .default_db = "oo_orders",
    .table_ddl = "CREATE TABLE IF NOT EXISTS orders ("
                 "order_id VARCHAR(64) NOT NULL PRIMARY KEY, "
                 "item VARCHAR(64) NOT NULL, qty BIGINT NOT NULL, "
                 "created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) "
                 "ENGINE=InnoDB",
    .set_flag = set_flag,
    .check_flags = check_flags,
    .add_handlers = add_handlers,
    .ready = ready,
    .stopping = stopping,
};

/* The participant is freed inside example_service_main; the client, which
 * the placement threads use, only after it (they are joined by then). */
int main(int argc, char **argv)
{
    int rc = example_service_main(argc, argv, &SERVICE);
    trellis_client_free(CLIENT);
    return rc;
}
