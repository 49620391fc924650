/*
 * trellis-msgsvc: an order service for the crash tests of 2-phase messages
 * (tests/integration/test_msg.c). It is a message's initiator over MariaDB:
 * for each order it prepares a message with trellisd, runs its local
 * transaction — an `orders` row for the gid plus the message's barrier
 * row (trellis/barrier_msg.h) — and submits the message (or aborts it when
 * the transaction rolled back). It answers the message's back-check
 * through the barrier. A test holds a run at a point between those steps
 * through a Control method, kills this process (or trellisd) there, and
 * checks after the restart that the message was delivered exactly when
 * its orders row committed. Test-only: built beside trellis-testpart,
 * never installed.
 *
 *   trellis-msgsvc --listen ADDR --port-file FILE --tm HOST:PORT
 *                  --mysql-socket PATH --mysql-database DB
 *                  [--timeout-ms N] [--threads N]
 *
 * At start it creates DB (if missing), its `orders` table (gid primary
 * key) and the default barrier table. It serves:
 *
 *   /trellis.test.Order/QueryPrepared  the back-check:
 *       trellis_barrier_query_prepared_handler on a MariaDB connection of
 *       the worker thread's own (closed when broken);
 *   /trellis.test.Part/Control  trellis-testpart's method, so
 *       harness_part_cmd drives both; one command line in, one reply line
 *       out ("ok ..." or "err ..."):
 *
 *   send GID HOLD_AT COMMIT|ROLLBACK [concurrent] [timeout=MS] STEP...
 *       on a thread of its own: (1) prepare the message (back-check at
 *       this process, timeout_to_fail_ms MS or --timeout-ms), (2) run the
 *       local transaction — INSERT the orders row, (3) then, COMMIT: the
 *       business callback succeeds, ROLLBACK: it fails (rolled back) —
 *       (4) after COMMIT, submit the message (no wait), or abort it after a
 *       rollback, (5) done. With HOLD_AT = K in 1..5 the run blocks before
 *       point K: 1 before the prepare, 2 after it, 3 inside the local
 *       transaction (the barrier and orders rows inserted, not committed:
 *       InnoDB holds their locks), 4 after COMMIT before the submit, 5
 *       after the submit (or abort). STEP is TARGET@SCRIPT (one delivery to
 *       TARGET with the payload SCRIPT, a trellis-testpart script, may be
 *       empty) or topic:NAME@SCRIPT (every subscriber of NAME); "@" since
 *       targets and topic names hold ":". "ok sent";
 *   wait-held GID MS   "ok at=K" once GID's run is held, else "err timeout";
 *   release GID        the held run goes on; "ok released";
 *   wait-done GID MS   "ok prepare=RC local=OUTCOME submit=RC|abort=RC"
 *                      once GID's run ended (OUTCOME
 *                      trellis_barrier_msg_outcome_name, spaces as "-";
 *                      after a failed prepare only "prepare=RC"), else
 *                      "err timeout";
 *   checks GID         "ok arrived=N answered=M": back-checks of GID that
 *                      reached the handler, and that it answered (a check
 *                      waiting on the local transaction's row lock has
 *                      arrived and is not answered).
 *
 * Holds live in memory only (svc_holds.h); a restarted process holds
 * nothing and has no runs, but answers back-checks from the database.
 *
 * Threads: the participant's --threads workers (default 8; a back-check
 * waiting on a row lock holds one) and one thread per send. One mutex
 * guards the back-check counts and the list of connections; SIGTERM
 * releases every hold and waits for the send threads before freeing
 * anything.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "svc_holds.h"
#include "svc_mysql.h"
#include "trellis/barrier_msg.h"
#include "trellis/trellis_msg.h"
#include "trellis/trellis_participant.h"
#include "trellis_portfile.h"

#define CHECK_METHOD "/trellis.test.Order/QueryPrepared"
#define CONTROL_METHOD "/trellis.test.Part/Control"
#define MAX_STEPS 16
#define MAX_CONNS 64
/* Deadline of each call trellisd makes for a message (deliveries, the
 * back-check): longer than a test keeps a delivery held at testpart or a
 * back-check waiting on a held local transaction. */
#define CALL_TIMEOUT_MS 30000
#define TM_CALL_TIMEOUT_MS 30000

/* ---- the service's settings ------------------------------------------ */

typedef struct {
    const char *listen, *port_file, *tm, *socket, *database;
    int threads;
    unsigned timeout_ms;
} args_t;

typedef struct {
    args_t a;
    trellis_client_t *client;
    trellis_participant_t *p;
    trellis_barrier_conns_t conns;
    char check_target[128]; /* 127.0.0.1:PORT/trellis.test.Order/... */
} svc_t;

/* ---- MariaDB connections --------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    MYSQL *open[MAX_CONNS]; /* the workers' back-check connections */
    size_t n_open;
} C = {.mu = PTHREAD_MUTEX_INITIALIZER};

static MYSQL *db_connect(const svc_t *s, const char *database, char *err,
                         size_t errlen)
{
    return svc_mysql_connect(s->a.socket, database, err, errlen);
}

/* The worker's back-check connection; NULL while it has none. */
static _Thread_local MYSQL *tl_conn;

static MYSQL *conn_borrow(void *user, char *err, size_t errlen)
{
    if (tl_conn)
        return tl_conn;
    MYSQL *c = db_connect(user, ((svc_t *)user)->a.database, err, errlen);
    if (!c)
        return NULL;
    pthread_mutex_lock(&C.mu);
    int kept = C.n_open < MAX_CONNS;
    if (kept)
        C.open[C.n_open++] = c;
    pthread_mutex_unlock(&C.mu);
    if (!kept) {
        mysql_close(c);
        snprintf(err, errlen, "more than %d worker connections", MAX_CONNS);
        return NULL;
    }
    return tl_conn = c;
}

static void conn_forget(MYSQL *c)
{
    pthread_mutex_lock(&C.mu);
    for (size_t i = 0; i < C.n_open; i++)
        if (C.open[i] == c) {
            C.open[i] = C.open[--C.n_open];
            break;
        }
    pthread_mutex_unlock(&C.mu);
    mysql_close(c);
}

static void conn_give_back(void *user, MYSQL *conn, int broken)
{
    (void)user;
    if (!broken)
        return;
    conn_forget(conn);
    tl_conn = NULL;
}

static void conns_close_all(void)
{
    pthread_mutex_lock(&C.mu);
    for (size_t i = 0; i < C.n_open; i++)
        mysql_close(C.open[i]);
    C.n_open = 0;
    pthread_mutex_unlock(&C.mu);
}

/* The database, its orders table and the barrier table. */
static int schema_create(const svc_t *s, char *err, size_t errlen)
{
    return svc_mysql_schema(s->a.socket, s->a.database,
                            "CREATE TABLE IF NOT EXISTS orders ("
                            "gid VARBINARY(128) PRIMARY KEY) ENGINE=InnoDB",
                            err, errlen);
}

/* ---- the back-check and its counts ------------------------------------ */

typedef struct {
    char gid[SVC_GID_MAX];
    int arrived, answered;
} check_count_t;

static struct {
    pthread_mutex_t mu;
    check_count_t counts[256];
    size_t n;
} K = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Count a back-check of gid that arrived (answered 0) or was answered. */
static void check_note(const char *gid, int answered)
{
    pthread_mutex_lock(&K.mu);
    check_count_t *c = NULL;
    for (size_t i = 0; i < K.n && !c; i++)
        if (!strcmp(K.counts[i].gid, gid))
            c = &K.counts[i];
    if (!c && K.n < sizeof K.counts / sizeof K.counts[0]) {
        c = &K.counts[K.n++];
        snprintf(c->gid, sizeof c->gid, "%s", gid);
    }
    if (c) {
        c->arrived += !answered;
        c->answered += answered;
    }
    pthread_mutex_unlock(&K.mu);
}

static void control_checks(const char *gid, char *out, size_t len)
{
    int arrived = 0, answered = 0;
    pthread_mutex_lock(&K.mu);
    for (size_t i = 0; i < K.n; i++)
        if (!strcmp(K.counts[i].gid, gid)) {
            arrived = K.counts[i].arrived;
            answered = K.counts[i].answered;
        }
    pthread_mutex_unlock(&K.mu);
    snprintf(out, len, "ok arrived=%d answered=%d\n", arrived, answered);
}

/* The barrier's handler, counted and logged. */
static void handle_check(const trellis_branch_ctx_t *ctx,
                         const uint8_t *payload, size_t payload_len,
                         trellis_reply_t *reply, void *user)
{
    const char *gid = ctx->gid ? ctx->gid : "";
    check_note(gid, 0);
    trellis_barrier_query_prepared_handler(ctx, payload, payload_len, reply,
                                           user);
    check_note(gid, 1);
    printf("msgsvc: back-check gid=%s code=%d message=\"%s\"\n", gid,
           (int)reply->code, reply->message);
    fflush(stdout);
}

/* ---- one order: prepare, local transaction, submit -------------------- */

typedef struct {
    svc_t *s;
    char gid[SVC_GID_MAX];
    int commit;     /* COMMIT: the business callback succeeds */
    int concurrent; /* deliver steps with no dependency at once */
    unsigned timeout_ms;
    char *steps[MAX_STEPS]; /* TARGET@SCRIPT or topic:NAME@SCRIPT */
    int n_steps;
} order_t;

static void order_free(order_t *o)
{
    for (int i = 0; i < o->n_steps; i++)
        free(o->steps[i]);
    free(o);
}

/* The business SQL: the order's row, then point 3, then the verdict. */
static trellis_barrier_business_rc_t place_order(MYSQL *conn, void *user,
                                                 char *msg, size_t msglen)
{
    const order_t *o = user;
    char esc[2 * SVC_GID_MAX + 1], sql[256];
    mysql_real_escape_string(conn, esc, o->gid, (unsigned long)strlen(o->gid));
    snprintf(sql, sizeof sql, "INSERT INTO orders (gid) VALUES ('%s')", esc);
    if (mysql_query(conn, sql) != 0) {
        snprintf(msg, msglen, "orders: %s", mysql_error(conn));
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    }
    svc_hold_point(o->gid, 3);
    if (o->commit)
        return TRELLIS_BARRIER_BUSINESS_OK;
    snprintf(msg, msglen, "the order was refused (ROLLBACK)");
    return TRELLIS_BARRIER_BUSINESS_FAIL;
}

/* One STEP (TARGET@SCRIPT or topic:NAME@SCRIPT) onto m. */
static int add_step(trellis_msg_t *m, char *step, char *err, size_t errlen)
{
    char *at = strchr(step, '@');
    if (!at) {
        snprintf(err, errlen, "step %s has no @SCRIPT", step);
        return -1;
    }
    *at = '\0';
    const char *script = at + 1;
    int idx = !strncmp(step, "topic:", 6)
                  ? trellis_msg_add_topic_step(m, step + 6, script,
                                               strlen(script), err, errlen)
                  : trellis_msg_add_step(m, step, script, strlen(script), err,
                                         errlen);
    *at = '@';
    return idx < 0 ? -1 : 0;
}

/* The order's message. NULL with err. */
static trellis_msg_t *order_message(order_t *o, char *err, size_t errlen)
{
    trellis_msg_t *m = NULL;
    if (trellis_msg_new(o->gid, &m, err, errlen) != TRELLIS_OK)
        return NULL;
    for (int i = 0; i < o->n_steps; i++)
        if (add_step(m, o->steps[i], err, errlen) != 0) {
            trellis_msg_free(m);
            return NULL;
        }
    trellis_options_t opt;
    memset(&opt, 0, sizeof opt);
    opt.timeout_to_fail_ms = o->timeout_ms;
    opt.request_timeout_ms = CALL_TIMEOUT_MS;
    trellis_msg_set_options(m, &opt);
    trellis_msg_set_concurrent(m, o->concurrent);
    return m;
}

/* "committed", "business-failure", ...: one word. */
static void outcome_word(trellis_barrier_msg_outcome_t local, char *buf,
                         size_t len)
{
    snprintf(buf, len, "%s", trellis_barrier_msg_outcome_name(local));
    for (char *c = buf; *c; c++)
        if (*c == ' ')
            *c = '-';
}

/* Points 2..5 once the message is prepared; the result words into
 * result[len]. */
static void order_decide(order_t *o, const trellis_msg_t *m, MYSQL *conn,
                         char *result, size_t len)
{
    char err[512], msg[512], word[32];
    svc_hold_point(o->gid, 2);
    trellis_barrier_msg_outcome_t local = trellis_barrier_msg_run(
        conn, NULL, o->gid, place_order, o, msg, sizeof msg);
    outcome_word(local, word, sizeof word);
    printf("msgsvc: local gid=%s outcome=%s msg=\"%s\"\n", o->gid, word,
           local == TRELLIS_BARRIER_MSG_COMMITTED ? "" : msg);
    fflush(stdout);
    trellis_rc_t rc = TRELLIS_OK;
    const char *decide = "submit";
    if (local == TRELLIS_BARRIER_MSG_COMMITTED) {
        svc_hold_point(o->gid, 4);
        rc = trellis_msg_submit(o->s->client, m, 0, NULL, NULL, 0, err,
                                sizeof err);
    } else if (local == TRELLIS_BARRIER_MSG_COMMIT_UNKNOWN) {
        decide = "none"; /* only the back-check can tell */
    } else {
        decide = "abort";
        rc = trellis_msg_abort(o->s->client, m, msg, err, sizeof err);
    }
    if (rc != TRELLIS_OK)
        printf("msgsvc: %s gid=%s rc=%d err=\"%s\"\n", decide, o->gid, rc, err);
    svc_hold_point(o->gid, 5);
    snprintf(result, len, "prepare=0 local=%s %s=%d", word, decide, rc);
}

static void *order_main(void *arg)
{
    order_t *o = arg;
    char err[512] = "", result[256];
    MYSQL *conn = NULL;
    svc_hold_point(o->gid, 1);
    trellis_msg_t *m = order_message(o, err, sizeof err);
    trellis_rc_t rc =
        !m ? TRELLIS_INVALID_ARGUMENT
           : trellis_msg_prepare(o->s->client, m, o->s->check_target, err,
                                 sizeof err);
    if (rc == TRELLIS_OK &&
        !(conn = db_connect(o->s, o->s->a.database, err, sizeof err)))
        rc = TRELLIS_UNAVAILABLE;
    if (rc == TRELLIS_OK)
        order_decide(o, m, conn, result, sizeof result);
    else
        snprintf(result, sizeof result, "prepare=%d", rc);
    printf("msgsvc: send gid=%s %s err=\"%s\"\n", o->gid, result, err);
    fflush(stdout);
    if (conn)
        mysql_close(conn);
    trellis_msg_free(m);
    svc_hold_done(o->gid, result);
    order_free(o);
    mysql_thread_end();
    return NULL;
}

/* "send GID HOLD_AT COMMIT|ROLLBACK [concurrent] [timeout=MS] STEP..."
 * (args after "send "). */
static void control_send(svc_t *s, char *args, char *out, size_t len)
{
    char *save = NULL, *gid = strtok_r(args, " ", &save);
    char *hold = strtok_r(NULL, " ", &save),
         *verdict = strtok_r(NULL, " ", &save);
    order_t *o = calloc(1, sizeof *o);
    if (!o || !gid || !hold || !verdict ||
        (strcmp(verdict, "COMMIT") && strcmp(verdict, "ROLLBACK"))) {
        free(o);
        snprintf(out, len,
                 "err usage: send GID HOLD_AT COMMIT|ROLLBACK "
                 "[concurrent] [timeout=MS] STEP...\n");
        return;
    }
    *o = (order_t){.s = s,
                   .commit = !strcmp(verdict, "COMMIT"),
                   .timeout_ms = s->a.timeout_ms};
    snprintf(o->gid, sizeof o->gid, "%s", gid);
    for (char *w; (w = strtok_r(NULL, " ", &save));) {
        if (!strcmp(w, "concurrent"))
            o->concurrent = 1;
        else if (!strncmp(w, "timeout=", 8))
            o->timeout_ms = (unsigned)strtoul(w + 8, NULL, 10);
        else if (o->n_steps < MAX_STEPS && (o->steps[o->n_steps] = strdup(w)))
            o->n_steps++;
    }
    if (svc_hold_set(o->gid, atoi(hold)) != 0 ||
        svc_run_spawn(order_main, o) != 0) {
        order_free(o);
        snprintf(out, len, "err no room for another send\n");
        return;
    }
    snprintf(out, len, "ok sent\n");
}

static void handle_control(const trellis_branch_ctx_t *ctx,
                           const uint8_t *payload, size_t payload_len,
                           trellis_reply_t *reply, void *user)
{
    (void)ctx;
    char cmd[4096], gid[SVC_GID_MAX], out[320];
    snprintf(cmd, sizeof cmd, "%.*s", (int)payload_len, (const char *)payload);
    cmd[strcspn(cmd, "\n")] = '\0';
    if (!strncmp(cmd, "send ", 5))
        control_send(user, cmd + 5, out, sizeof out);
    else if (sscanf(cmd, "checks %79s", gid) == 1)
        control_checks(gid, out, sizeof out);
    else if (!svc_hold_control(cmd, out, sizeof out))
        snprintf(out, sizeof out, "err unknown command\n");
    reply->body = (uint8_t *)strdup(out);
    reply->body_len = reply->body ? strlen(out) : 0;
}

/* ---- main ------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr, "usage: trellis-msgsvc --listen ADDR --port-file FILE "
                    "--tm HOST:PORT --mysql-socket PATH --mysql-database DB "
                    "[--timeout-ms N] [--threads N]\n");
    return 2;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.listen = "127.0.0.1:0", .threads = 8, .timeout_ms = 400};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--listen"))
            a->listen = v;
        else if (!strcmp(k, "--port-file"))
            a->port_file = v;
        else if (!strcmp(k, "--tm"))
            a->tm = v;
        else if (!strcmp(k, "--mysql-socket"))
            a->socket = v;
        else if (!strcmp(k, "--mysql-database"))
            a->database = v;
        else if (!strcmp(k, "--threads"))
            a->threads = atoi(v);
        else if (!strcmp(k, "--timeout-ms"))
            a->timeout_ms = (unsigned)strtoul(v, NULL, 10);
        else
            return -1;
    }
    return argc % 2 == 1 && a->tm && a->socket && a->database && a->threads > 0
               ? 0
               : -1;
}

/* The schema, the client, the handlers; then serve and write the port. */
static int setup_and_serve(svc_t *s, char *err, size_t errlen)
{
    int port = 0;
    s->conns = (trellis_barrier_conns_t){conn_borrow, conn_give_back, s, NULL};
    if (schema_create(s, err, errlen) != 0 ||
        trellis_client_new(s->a.tm, TM_CALL_TIMEOUT_MS, &s->client, err,
                           errlen) != TRELLIS_OK ||
        trellis_participant_new(s->a.threads, &s->p, err, errlen) !=
            TRELLIS_OK ||
        trellis_participant_handle(s->p, CHECK_METHOD, handle_check, &s->conns,
                                   err, errlen) != TRELLIS_OK ||
        trellis_participant_handle(s->p, CONTROL_METHOD, handle_control, s, err,
                                   errlen) != TRELLIS_OK ||
        trellis_participant_start(s->p, s->a.listen, &port, err, errlen) !=
            TRELLIS_OK)
        return -1;
    snprintf(s->check_target, sizeof s->check_target, "127.0.0.1:%d%s", port,
             CHECK_METHOD);
    if (s->a.port_file &&
        trellis_portfile_write(s->a.port_file, port, err, errlen) != 0)
        return -1;
    printf("trellis-msgsvc ready listen=127.0.0.1:%d\n", port);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    svc_t s;
    memset(&s, 0, sizeof s);
    if (parse_args(argc, argv, &s.a) != 0)
        return usage();
    if (mysql_library_init(0, NULL, NULL) != 0) {
        fprintf(stderr, "trellis-msgsvc: mysql_library_init failed\n");
        return 1;
    }
    /* Block the stop signals before gRPC starts threads; wait for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    char err[512] = "";
    int rc = setup_and_serve(&s, err, sizeof err) == 0 ? 0 : 1;
    if (rc != 0) {
        fprintf(stderr, "trellis-msgsvc: %s\n", err);
    } else {
        int sig;
        sigwait(&stop, &sig);
    }
    svc_holds_drain();
    trellis_participant_free(s.p);
    conns_close_all();
    trellis_client_free(s.client);
    mysql_library_end();
    return rc;
}
