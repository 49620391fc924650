/*
 * transfer-workflow-service: the workflow service of the workflow-transfer
 * example. It registers the workflow function "transfer"
 * (transfer_flow.c: debit at bank-a, ledger entry, a row of its own,
 * credit at bank-b), serves its Resume method so trellisd can have the
 * function run again here after this process died, and owns its database
 * on MariaDB (default wf_transfer): the barrier table and
 *
 *   transfers(id BIGINT AUTO_INCREMENT PRIMARY KEY, transfer VARCHAR(64),
 *             from_account, to_account, amount BIGINT,
 *             state 'booked'|'cancelled', created TIMESTAMP)
 *
 * (the local step's row; `transfer` is deliberately not unique: the
 * barrier keeps it to one row, which the example checks).
 *
 *   transfer-workflow-service --tm ADDR --bank-a ADDR --bank-b ADDR
 *       --ledger ADDR [--release 1|2] [--timeout-ms N] [--advertise-host H]
 *       [--database DB] (--mysql-socket PATH | --mysql-host H
 *       [--mysql-port P]) [--mysql-user U] [--listen ADDR]
 *       [--port-file FILE] [--threads N] [--quiet]
 *
 * --timeout-ms (1000) is each workflow's timeout_to_fail_ms: how long
 * trellisd waits for the decision before it resumes the workflow here.
 * The address trellisd keeps for the resume is --advertise-host
 * (127.0.0.1) with the port this process serves on: restart it on the same
 * port (--listen 127.0.0.1:PORT), as the driver does.
 *
 * The driver's control methods, outside any transaction:
 *
 *   /wftransfer.v1.Control/Start    "gid=G from=A to=B amount=N
 *                                    [hold_before=K]": run workflow G with
 *                                    input "from=A to=B amount=N" on a
 *                                    thread of its own
 *                                    (trellis_workflow_execute, waiting for
 *                                    the outcome); answers at once. With
 *                                    hold_before=K (1..5) that run stops
 *                                    before step K (5: before the
 *                                    decision) until Release;
 *   /wftransfer.v1.Control/Status   "gid=G": "state=none", "state=running",
 *                                    "state=held step=K", or "state=done
 *                                    rc=R status=S reason=..." (S as
 *                                    execute left it);
 *   /wftransfer.v1.Control/Release  "gid=G": let a held run go on.
 *
 * A hold belongs to the run Start began, in this process: the runs
 * trellisd's Resume starts never hold, so a service killed while holding
 * and started again finishes the workflow. Holding is no effect of the
 * function's: it only waits.
 *
 * Threads: the participant's workers (--threads, 4) serve the control
 * methods and Resume (which runs the function again, or a local step's
 * undo); each run Start began has a thread of its own. Every thread that
 * touches MariaDB has its own connection (example_service.h). At the stop
 * signal the holds are released and those threads joined before the
 * participant, the registry and the client go.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_service.h"
#include "transfer_flow.h"
#include "trellis/trellis_workflow.h"

#define MAX_RUNS 64
#define GID_MAX 64
#define ADDR_MAX 128
#define TM_CALL_TIMEOUT_MS 30000
#define ID_SCAN "%64[A-Za-z0-9_.-]"

/* ---- command line: the service's own flags --------------------------- */

static struct {
    const char *tm, *bank_a, *bank_b, *ledger;
    const char *advertise_host;
    int release;
    unsigned timeout_ms;
} A = {.advertise_host = "127.0.0.1", .release = 1, .timeout_ms = 1000};

static trellis_client_t *CLIENT;
static trellis_workflows_t *WORKFLOWS;

static int set_flag(const char *k, const char *v)
{
    const struct {
        const char *flag;
        const char **dst;
    } str[] = {{"--tm", &A.tm},
               {"--bank-a", &A.bank_a},
               {"--bank-b", &A.bank_b},
               {"--ledger", &A.ledger},
               {"--advertise-host", &A.advertise_host}};
    for (size_t i = 0; i < sizeof str / sizeof str[0]; i++)
        if (!strcmp(k, str[i].flag)) {
            *str[i].dst = v;
            return 0;
        }
    if (!strcmp(k, "--release"))
        return (A.release = atoi(v)) == 1 || A.release == 2 ? 0 : -1;
    if (!strcmp(k, "--timeout-ms"))
        return (A.timeout_ms = (unsigned)atoi(v)) > 0 ? 0 : -1;
    return -1;
}

static int check_flags(void)
{
    if (!A.tm || !A.bank_a || !A.bank_b || !A.ledger)
        return -1;
    flow_configure(&(flow_config_t){A.bank_a, A.bank_b, A.ledger, A.release});
    return 0;
}

/* ---- runs started by the driver -------------------------------------- */

typedef struct {
    char gid[GID_MAX + 1];
    char input[FLOW_INPUT_MAX];
    int hold_before; /* 0: none */
    int held, released, done;
    trellis_rc_t rc;
    trellis_trans_status_t status;
    char reason[256], err[256];
    pthread_t th;
} run_t;

static struct {
    pthread_mutex_t mu; /* guards everything below and every run_t */
    pthread_cond_t cv;  /* a hold released */
    run_t runs[MAX_RUNS];
    int n;
} RUNS = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* The run this thread executes, if Start began it. */
static _Thread_local run_t *self;

/* The run of gid; NULL if none. RUNS.mu held. */
static run_t *find_run(const char *gid)
{
    for (int i = 0; i < RUNS.n; i++)
        if (!strcmp(RUNS.runs[i].gid, gid))
            return &RUNS.runs[i];
    return NULL;
}

void flow_hold_point(const char *gid, int k)
{
    run_t *r = self;
    if (!r || r->hold_before != k || strcmp(r->gid, gid) != 0)
        return;
    pthread_mutex_lock(&RUNS.mu);
    r->held = !r->released;
    if (r->held)
        flow_say("held before step %d gid=%s (until Release)", k, gid);
    while (!r->released)
        pthread_cond_wait(&RUNS.cv, &RUNS.mu);
    r->held = 0;
    pthread_mutex_unlock(&RUNS.mu);
}

static void *run_main(void *arg)
{
    run_t *r = self = arg;
    trellis_options_t o = {.wait_result = 1,
                           .timeout_to_fail_ms = A.timeout_ms,
                           .retry_interval_ms = 50};
    trellis_trans_status_t st = TRELLIS_TRANS_PREPARED;
    char reason[256] = "", err[256] = "";
    trellis_rc_t rc = trellis_workflow_execute(
        WORKFLOWS, "transfer", r->gid, r->input, strlen(r->input), &o, &st,
        reason, sizeof reason, err, sizeof err);
    flow_say("execute gid=%s -> rc %d, %s%s%s", r->gid, rc,
             trellis_trans_status_name(st), *reason || *err ? ": " : "",
             *reason ? reason : err);
    pthread_mutex_lock(&RUNS.mu);
    r->rc = rc;
    r->status = st;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    snprintf(r->err, sizeof r->err, "%s", err);
    r->done = 1;
    pthread_mutex_unlock(&RUNS.mu);
    example_service_conn_close();
    return NULL;
}

/* Take a slot for gid and start its thread. 0, or -1 with err. */
static int start_run(const char *gid, const char *input, int hold_before,
                     char *err, size_t errlen)
{
    int rc = -1;
    pthread_mutex_lock(&RUNS.mu);
    if (find_run(gid))
        snprintf(err, errlen, "workflow %s was started here before", gid);
    else if (RUNS.n == MAX_RUNS)
        snprintf(err, errlen, "%d runs started already", MAX_RUNS);
    else {
        run_t *r = &RUNS.runs[RUNS.n];
        memset(r, 0, sizeof *r);
        snprintf(r->gid, sizeof r->gid, "%s", gid);
        snprintf(r->input, sizeof r->input, "%s", input);
        r->hold_before = hold_before;
        if (pthread_create(&r->th, NULL, run_main, r) == 0) {
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

/* The payload as a C string in text[len]; 0, or -1 (too long). */
static int payload_text(const uint8_t *p, size_t n, char *text, size_t len)
{
    if (n >= len)
        return -1;
    memcpy(text, p, n);
    text[n] = '\0';
    return 0;
}

/* "gid=G [hold_before=K] from=A to=B amount=N" into gid, *hold and the
 * workflow's input, "from=A to=B amount=N". 0 or -1. */
static int parse_start(const char *text, char *gid, int *hold, char *input,
                       size_t inputlen)
{
    char from[EXAMPLE_SERVICE_ID_MAX + 1], to[EXAMPLE_SERVICE_ID_MAX + 1];
    long long amount;
    int used = 0;
    *hold = 0;
    if (sscanf(text, "gid=" ID_SCAN " %n", gid, &used) != 1 || used == 0)
        return -1;
    const char *rest = text + used;
    if (!strncmp(rest, "hold_before=", 12) &&
        (sscanf(rest, "hold_before=%d %n", hold, &used) != 1 || *hold < 1 ||
         *hold > FLOW_HOLD_MAX))
        return -1;
    if (*hold)
        rest += used;
    if (flow_parse_input(rest, from, to, &amount) != 0)
        return -1;
    snprintf(input, inputlen, "from=%s to=%s amount=%lld", from, to, amount);
    return 0;
}

static void handle_start(const trellis_branch_ctx_t *ctx, const uint8_t *p,
                         size_t n, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)user;
    char text[FLOW_INPUT_MAX + 128], gid[GID_MAX + 1], input[FLOW_INPUT_MAX];
    char err[256];
    int hold = 0;
    if (payload_text(p, n, text, sizeof text) != 0 ||
        parse_start(text, gid, &hold, input, sizeof input) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE,
                               "bad payload: want \"gid=G [hold_before=1..%d] "
                               "from=A to=B amount=N\"",
                               FLOW_HOLD_MAX);
        return;
    }
    if (start_run(gid, input, hold, err, sizeof err) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE, "%s", err);
        return;
    }
    flow_say("start gid=%s hold_before=%d: %s", gid, hold, input);
}

/* The "gid=G" of a Status or Release call, or -1 with reply filled. */
static int gid_of(const uint8_t *p, size_t n, char *gid, trellis_reply_t *reply)
{
    char text[128], tail;
    if (payload_text(p, n, text, sizeof text) == 0 &&
        sscanf(text, "gid=" ID_SCAN " %c", gid, &tail) == 1)
        return 0;
    example_service_answer(reply, TRELLIS_REPLY_FAILURE,
                           "bad payload: want \"gid=G\"");
    return -1;
}

/* What Status says about r. RUNS.mu held. */
static void describe_run(const run_t *r, char *buf, size_t len)
{
    if (!r)
        snprintf(buf, len, "state=none");
    else if (r->done)
        snprintf(buf, len, "state=done rc=%d status=%s reason=%s", r->rc,
                 trellis_trans_status_name(r->status),
                 *r->reason ? r->reason : r->err);
    else if (r->held)
        snprintf(buf, len, "state=held step=%d", r->hold_before);
    else
        snprintf(buf, len, "state=running");
}

static void handle_status(const trellis_branch_ctx_t *ctx, const uint8_t *p,
                          size_t n, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)user;
    char gid[GID_MAX + 1], text[600];
    if (gid_of(p, n, gid, reply) != 0)
        return;
    pthread_mutex_lock(&RUNS.mu);
    describe_run(find_run(gid), text, sizeof text);
    pthread_mutex_unlock(&RUNS.mu);
    reply->body = (uint8_t *)strdup(text);
    reply->body_len = reply->body ? strlen(text) : 0;
}

static void handle_release(const trellis_branch_ctx_t *ctx, const uint8_t *p,
                           size_t n, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)user;
    char gid[GID_MAX + 1];
    if (gid_of(p, n, gid, reply) != 0)
        return;
    pthread_mutex_lock(&RUNS.mu);
    run_t *r = find_run(gid);
    if (r)
        r->released = 1;
    pthread_cond_broadcast(&RUNS.cv);
    pthread_mutex_unlock(&RUNS.mu);
    if (!r)
        example_service_answer(reply, TRELLIS_REPLY_FAILURE,
                               "workflow %s was not started here", gid);
    else
        flow_say("release gid=%s", gid);
}

/* ---- start ----------------------------------------------------------- */

/* The client, the registry with "transfer", its Resume method, and the
 * control methods. 0, or -1 with err. */
static int add_handlers(trellis_participant_t *p, char *err, size_t errlen)
{
    static const struct {
        const char *method;
        trellis_handler_fn fn;
    } control[] = {{"/wftransfer.v1.Control/Start", handle_start},
                   {"/wftransfer.v1.Control/Status", handle_status},
                   {"/wftransfer.v1.Control/Release", handle_release}};
    if (trellis_client_new(A.tm, TM_CALL_TIMEOUT_MS, &CLIENT, err, errlen) ||
        trellis_workflows_new(CLIENT, &WORKFLOWS, err, errlen) ||
        trellis_workflows_register(WORKFLOWS, "transfer", flow_transfer, NULL,
                                   err, errlen) ||
        trellis_workflows_serve(WORKFLOWS, p, err, errlen))
        return -1;
    for (size_t i = 0; i < sizeof control / sizeof control[0]; i++)
        if (trellis_participant_handle(p, control[i].method, control[i].fn,
                                       NULL, err, errlen) != TRELLIS_OK)
            return -1;
    return 0;
}

/* Serving: name this service's address to trellisd's resumes. */
static void ready(int port)
{
    char addr[ADDR_MAX], err[256];
    snprintf(addr, sizeof addr, "%s:%d", A.advertise_host, port);
    if (trellis_workflows_set_address(WORKFLOWS, addr, err, sizeof err) !=
        TRELLIS_OK)
        fprintf(stderr, "transfer-workflow-service: address %s: %s\n", addr,
                err);
    printf("transfer-workflow-service ready database=%s port=%d "
           "address=%s release=%d timeout_ms=%u\n",
           example_service_opts()->database, port, addr, A.release,
           A.timeout_ms);
}

static const example_service_def_t SERVICE = {
    .program = "transfer-workflow-service",
    .usage_head = "transfer-workflow-service --tm ADDR --bank-a ADDR "
                  "--bank-b ADDR --ledger ADDR\n"
                  "         [--release 1|2] [--timeout-ms N] "
                  "[--advertise-host H] [--database DB]",
    .usage_tail = "[--threads N] [--quiet]",
    .default_db = "wf_transfer",
    .table_ddl = "CREATE TABLE IF NOT EXISTS transfers ("
                 "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                 "transfer VARCHAR(64) NOT NULL, "
                 "from_account VARCHAR(64) NOT NULL, "
                 "to_account VARCHAR(64) NOT NULL, amount BIGINT NOT NULL, "
                 "state VARCHAR(16) NOT NULL, "
                 "created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
                 "KEY (transfer)) ENGINE=InnoDB",
    .set_flag = set_flag,
    .check_flags = check_flags,
    .add_handlers = add_handlers,
    .ready = ready,
    .stopping = stopping,
};

/* The participant is freed inside example_service_main; the registry and
 * the client, which its Resume handler uses, only after it. */
int main(int argc, char **argv)
{
    int rc = example_service_main(argc, argv, &SERVICE);
    trellis_workflows_free(WORKFLOWS);
    trellis_client_free(CLIENT);
    return rc;
}
