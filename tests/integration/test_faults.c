/*
 * test_faults.c: the races and faults of issue 12, each made deterministic
 * with trellisd-faults (tests/faults/tm_fault.h): a commit group held until
 * the test releases it, commits that fail, a full disk, a shifted wall
 * clock. Every test is named after the item it checks, and runs on either
 * store (TRELLIS_TEST_STORE=mysql) unless it says otherwise.
 */
#include "itest.h"
#include "itest_fault.h"
#include "trellis/trellis_admin.h"
#include "trellis/v1/tm.pb-c.h"

#include <arpa/inet.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The fixture on trellisd-faults (itest_fault.h). */
static itest_t *start_faulty(void **state, const char *name,
                             const char *const *extra_tm_args)
{
    return itest_start_faulty(state, name, extra_tm_args);
}

static void fault(const char *cmd)
{
    itest_fault(cmd, NULL, 0);
}

static long fault_number(const char *cmd)
{
    return itest_fault_number(cmd);
}

static int live_calls_reach(void *arg)
{
    return fault_number("live-calls") >= *(long *)arg;
}

/* Until trellisd holds n incoming calls not yet answered. */
static void wait_live_calls(long n)
{
    assert_true(harness_poll(live_calls_reach, &n, 10000, 5));
}

/* A client whose calls give up after ms (the server keeps going). */
static trellis_client_t *impatient_client(itest_t *t, uint32_t ms)
{
    trellis_client_t *c = NULL;
    char err[256];
    assert_int_equal(
        trellis_client_new(harness_server_addr(t->tm), ms, &c, err, sizeof err),
        TRELLIS_OK);
    return c;
}

static trellis_rc_t query_rc(itest_t *t, const char *gid,
                             trellis_trans_status_t *st)
{
    trellis_trans_info_t *info = NULL;
    char err[512];
    trellis_rc_t rc = trellis_query(t->client, gid, &info, err, sizeof err);
    if (rc == TRELLIS_OK) {
        *st = info->status;
        trellis_trans_info_free(info);
    }
    return rc;
}

/* query_rc, retried while the client reconnects after a restart. */
static trellis_rc_t query_after_restart(itest_t *t, const char *gid,
                                        trellis_trans_status_t *st)
{
    int64_t until = harness_mono_ms() + 10000;
    trellis_rc_t rc;
    while ((rc = query_rc(t, gid, st)) == TRELLIS_UNAVAILABLE &&
           harness_mono_ms() < until)
        harness_sleep_ms(20);
    return rc;
}

/* ---- item 1: Register on a finished gid -------------------------------- */

typedef struct {
    itest_t *t;
    const char *gid;
    trellis_rc_t rc;
    char err[512];
} register_call_t;

static void *register_in_thread(void *arg)
{
    register_call_t *r = arg;
    trellis_branch_op_t ops[] = {{TRELLIS_OP_CONFIRM, r->t->action},
                                 {TRELLIS_OP_CANCEL, r->t->compensate}};
    r->rc =
        trellis_register_branch(r->t->client, r->gid, "late", TRELLIS_MODE_TCC,
                                ops, 2, "ok", 2, r->err, sizeof r->err);
    return NULL;
}

/* Begin(G) for a finished G makes a copy whose insert is refused; a
 * Register that reaches that copy first must be answered from the store
 * (FAILED_PRECONDITION), never as "driven by another node" on one node,
 * and the finished row must stay as it was. */
static void test_item1_register_on_finished_gid(void **state)
{
    itest_t *t = start_faulty(state, "f_item1", NULL);
    const char *payloads[] = {"ok"};
    trellis_saga_t *s = itest_saga(t, "fin1", payloads, 1, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);

    fault("hold");
    trellis_client_t *quick = impatient_client(t, 300);
    char err[512];
    trellis_options_t o = itest_options();
    trellis_rc_t rc = trellis_begin(quick, "fin1", &o, err, sizeof err);
    assert_int_equal(rc, TRELLIS_DEADLINE_EXCEEDED); /* its insert is held */
    fault("wait-held 5000");

    register_call_t r = {t, "fin1", -1, ""};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, register_in_thread, &r), 0);
    wait_live_calls(2); /* the held Begin and this Register */
    fault("release");
    pthread_join(th, NULL);
    if (r.rc != TRELLIS_FAILED_PRECONDITION)
        fail_msg("Register on a finished gid: rc %d (%s), want "
                 "FAILED_PRECONDITION",
                 r.rc, r.err);

    assert_int_equal(harness_server_crash_restart(t->tm), 0);
    trellis_trans_info_t *info = itest_wait_final(t, "fin1");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    assert_int_equal(info->n_branches, 1);
    trellis_trans_info_free(info);
    trellis_client_free(quick);
    itest_pass(state);
}

/* ---- item 2: a retried request answered before the write is durable ---- */

/* Submit(G) times out with its insert held; the client's retry must not be
 * told OK before that insert commits: after a crash, whatever was
 * acknowledged exists. */
static void test_item2_retry_waits_for_durable_write(void **state)
{
    itest_t *t = start_faulty(state, "f_item2", NULL);
    trellis_client_t *quick = impatient_client(t, 300);
    const char *payloads[] = {"ok"};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_t *s = itest_saga(t, "dup2", payloads, 1, &o);
    fault("hold");
    trellis_trans_status_t st = 0;
    char err[512];
    trellis_rc_t first =
        trellis_saga_submit(quick, s, &st, NULL, 0, err, sizeof err);
    assert_int_equal(first, TRELLIS_DEADLINE_EXCEEDED);
    fault("wait-held 5000");
    trellis_rc_t retry =
        trellis_saga_submit(quick, s, &st, NULL, 0, err, sizeof err);
    assert_int_equal(harness_server_kill(t->tm), 0); /* the held write dies */
    assert_int_equal(harness_server_restart(t->tm), 0);
    trellis_rc_t q = query_after_restart(t, "dup2", &st);
    if (retry == TRELLIS_OK && q == TRELLIS_NOT_FOUND)
        fail_msg("the retried Submit was acknowledged, and after the crash "
                 "the transaction does not exist");
    assert_int_equal(retry, TRELLIS_DEADLINE_EXCEEDED);
    assert_int_equal(q, TRELLIS_NOT_FOUND);
    trellis_saga_free(s);
    trellis_client_free(quick);
    itest_pass(state);
}

/* ---- item 6: Query answers durable state only ---------------------------- */

/* A ForceStop whose write is held must not show as FAILED yet: an XA
 * sweep would roll branches back on that answer. */
static void test_item6_query_durable_only(void **state)
{
    itest_t *t = start_faulty(state, "f_item6", NULL);
    trellis_options_t o = itest_options();
    char err[512];
    assert_int_equal(trellis_begin(t->client, "q6", &o, err, sizeof err),
                     TRELLIS_OK);
    fault("hold");
    trellis_client_t *quick = impatient_client(t, 300);
    trellis_trans_status_t st = 0;
    char reason[256];
    trellis_rc_t rc = trellis_force_stop(quick, "q6", "test", &st, reason,
                                         sizeof reason, err, sizeof err);
    assert_int_equal(rc, TRELLIS_DEADLINE_EXCEEDED);
    fault("wait-held 5000");
    assert_int_equal(query_rc(t, "q6", &st), TRELLIS_OK);
    if (st != TRELLIS_TRANS_PREPARED)
        fail_msg("Query says status %d while the ForceStop is not durable; "
                 "want PREPARED (%d)",
                 st, TRELLIS_TRANS_PREPARED);
    fault("release");
    trellis_trans_info_t *info = itest_wait_final(t, "q6");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    trellis_trans_info_free(info);
    trellis_client_free(quick);
    itest_pass(state);
}

/* ---- item 9: failing commits --------------------------------------------- */

static int health_is(itest_t *t, int want)
{
    int status = -1;
    return itest_health(t, "", &status) == TRELLIS_OK && status == want;
}

typedef struct {
    itest_t *t;
    int want;
} health_wait_t;

static int health_reached(void *arg)
{
    health_wait_t *w = arg;
    return health_is(w->t, w->want);
}

static void wait_health(itest_t *t, int want)
{
    health_wait_t w = {t, want};
    if (!harness_poll(health_reached, &w, 15000, 20))
        fail_msg("health did not become %d", want);
}

/* Check the whole failure rule once the store fails: trellisd keeps
 * running, health says NOT_SERVING, new work is refused at once with
 * UNAVAILABLE naming the store, and once commits succeed again everything
 * continues — the acknowledged saga finishes. */
static void check_failure_rule(itest_t *t, const char *release_cmd)
{
    const char *payloads[] = {"ok", "ok"};
    trellis_saga_t *first = itest_saga(t, "acked9", payloads, 2, NULL);
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_set_options(first, &o);
    trellis_trans_status_t st = 0;
    char err[512];
    /* The next write (the insert) fails: it is retried, not answered. */
    trellis_client_t *quick = impatient_client(t, 1000);
    trellis_rc_t rc =
        trellis_saga_submit(quick, first, &st, NULL, 0, err, sizeof err);
    assert_int_equal(rc, TRELLIS_DEADLINE_EXCEEDED);
    wait_health(t, 2);
    assert_true(harness_proc_running(harness_server_proc(t->tm)));

    trellis_saga_t *later = itest_saga(t, "refused9", payloads, 2, &o);
    rc = trellis_saga_submit(quick, later, &st, NULL, 0, err, sizeof err);
    if (rc != TRELLIS_UNAVAILABLE || !strstr(err, "store"))
        fail_msg("Submit while the store fails: rc %d (%s), want "
                 "UNAVAILABLE naming the store",
                 rc, err);

    fault(release_cmd);
    wait_health(t, 1);
    trellis_trans_info_t *info = itest_wait_final(t, "acked9");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_free(info);
    assert_int_equal(query_rc(t, "refused9", &st), TRELLIS_NOT_FOUND);
    trellis_saga_free(first);
    trellis_saga_free(later);
    trellis_client_free(quick);
}

/* Commits fail (as when the database is away) until released. */
static void test_item9_failing_commits_refuse_new_work(void **state)
{
    itest_t *t = start_faulty(state, "f_item9", NULL);
    fault("fail-transient 1000000");
    check_failure_rule(t, "fail-transient 0");
    itest_pass(state);
}

/* SQLite only: the disk fills up (every write answers SQLITE_FULL). */
static void test_item9_sqlite_disk_full(void **state)
{
    const char *store = getenv("TRELLIS_TEST_STORE");
    if (store && strcmp(store, "mysql") == 0)
        skip();
    itest_t *t = start_faulty(state, "f_item9_full", NULL);
    fault("disk-full on");
    check_failure_rule(t, "disk-full off");
    assert_int_equal(harness_server_crash_restart(t->tm), 0);
    trellis_trans_info_t *info = itest_wait_final(t, "acked9");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_free(info);
    itest_pass(state);
}

/* ---- item 5: waiters are bounded --------------------------------------- */

typedef struct {
    itest_t *t;
    trellis_saga_t *saga;
    trellis_rc_t rc;
} wait_call_t;

static void *wait_in_thread(void *arg)
{
    wait_call_t *w = arg;
    trellis_client_t *c = impatient_client(w->t, 3000);
    trellis_trans_status_t st;
    char err[512];
    w->rc = trellis_saga_submit(c, w->saga, &st, NULL, 0, err, sizeof err);
    trellis_client_free(c);
    return NULL;
}

/* A saga retried for ever and clients waiting for its result: past
 * --max-waiters a waiter is refused RESOURCE_EXHAUSTED, and waiters whose
 * deadline passed are dropped, so polling does not grow memory. */
static void test_item5_waiters_bounded(void **state)
{
    const char *args[] = {"--max-waiters", "2", NULL};
    itest_t *t = start_faulty(state, "f_item5", args);
    const char *payloads[] = {"unavail:1000000"};
    trellis_saga_t *s = itest_saga(t, "wait5", payloads, 1, NULL);
    /* Expired waiters are pruned: many short polls never hit the bound. */
    trellis_client_t *quick = impatient_client(t, 200);
    trellis_trans_status_t st;
    char err[512];
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            trellis_saga_submit(quick, s, &st, NULL, 0, err, sizeof err),
            TRELLIS_DEADLINE_EXCEEDED);
    trellis_client_free(quick);
    /* Three at once with the bound at two: one is refused. */
    wait_call_t w[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (wait_call_t){t, s, -1};
        assert_int_equal(pthread_create(&th[i], NULL, wait_in_thread, &w[i]),
                         0);
    }
    int refused = 0, timed_out = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        refused += w[i].rc == TRELLIS_RESOURCE_EXHAUSTED;
        timed_out += w[i].rc == TRELLIS_DEADLINE_EXCEEDED;
    }
    if (refused != 1 || timed_out != 2)
        fail_msg("3 waiters with --max-waiters 2: %d refused, %d timed out; "
                 "want 1 and 2",
                 refused, timed_out);
    trellis_saga_free(s);
    itest_pass(state);
}

/* ---- item 5: waiters whose clients cancelled --------------------------- */

/* A client making one Submit on the gRPC core itself: unlike the SDK's
 * calls, it can be cancelled, or lose its connection, while trellisd holds
 * it as a waiter. Each has a TCP connection of its own, made here and
 * handed to gRPC (so the test can shut it down), and a thread that waits
 * for the call's end on its queue (gRPC makes progress on a call while its
 * queue is polled). */
typedef struct {
    int fd; /* the connection (gRPC's: it closes it) */
    grpc_channel *channel;
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_byte_buffer *send;
    grpc_byte_buffer *recv;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code status;
    grpc_slice details;
    pthread_t waiter;
} raw_call_t;

/* A channel over a connection of its own to t's trellisd; *fd gets it. */
static grpc_channel *own_channel(itest_t *t, int *fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_port = htons((uint16_t)harness_server_port(t->tm));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*fd >= 0);
    assert_int_equal(connect(*fd, (struct sockaddr *)&a, sizeof a), 0);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create_from_fd(harness_server_addr(t->tm),
                                                   *fd, creds, NULL);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* The client's thread: until the call ends (its deadline bounds that). */
static void *raw_call_wait(void *arg)
{
    raw_call_t *c = arg;
    grpc_event ev = grpc_completion_queue_pluck(
        c->cq, c, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
        c->status = GRPC_STATUS_UNKNOWN;
    return NULL;
}

static void raw_call_batch(raw_call_t *c)
{
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = c->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &c->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &c->trailing_md;
    ops[5].data.recv_status_on_client.status = &c->status;
    ops[5].data.recv_status_on_client.status_details = &c->details;
    assert_int_equal(grpc_call_start_batch(c->call, ops, 6, c, NULL),
                     GRPC_CALL_OK);
}

/* Start Submit(req) on trellisd, due in timeout_ms. */
static void raw_submit_start(raw_call_t *c, itest_t *t, const uint8_t *req,
                             size_t len, int64_t timeout_ms)
{
    memset(c, 0, sizeof *c);
    grpc_init();
    c->channel = own_channel(t, &c->fd);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    c->call = grpc_channel_create_call(
        c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
        grpc_slice_from_static_string("/trellis.v1.TM/Submit"), NULL, deadline,
        NULL);
    assert_non_null(c->call);
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)req, len);
    c->send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_metadata_array_init(&c->initial_md);
    grpc_metadata_array_init(&c->trailing_md);
    c->details = grpc_empty_slice();
    raw_call_batch(c);
    assert_int_equal(pthread_create(&c->waiter, NULL, raw_call_wait, c), 0);
}

/* The client goes away: its connection is shut down (FIN both ways), as
 * when its process dies. */
static void raw_call_disconnect(raw_call_t *c)
{
    assert_int_equal(shutdown(c->fd, SHUT_RDWR), 0);
}

/* Wait for c's end and free what it holds; its status. */
static grpc_status_code raw_call_finish(raw_call_t *c)
{
    pthread_join(c->waiter, NULL);
    grpc_status_code status = c->status;
    grpc_call_unref(c->call);
    grpc_completion_queue_shutdown(c->cq);
    while (grpc_completion_queue_pluck(c->cq, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(c->cq);
    grpc_channel_destroy(c->channel);
    grpc_byte_buffer_destroy(c->send);
    if (c->recv)
        grpc_byte_buffer_destroy(c->recv);
    grpc_metadata_array_destroy(&c->initial_md);
    grpc_metadata_array_destroy(&c->trailing_md);
    grpc_slice_unref(c->details);
    grpc_shutdown();
    return status;
}

/* Submit(gid) of one step whose action answers UNAVAILABLE for ever (the
 * transaction never finishes by itself), packed into buf[cap]; wait sets
 * wait_result (not part of the submit's identity). Returns its length. */
static size_t pack_endless_submit(itest_t *t, const char *gid, int wait,
                                  uint8_t *buf, size_t cap)
{
    static const char script[] = "unavail:1000000";
    Trellis__V1__SagaStep step = TRELLIS__V1__SAGA_STEP__INIT;
    step.action = t->action;
    step.compensate = t->compensate;
    step.payload.data = (uint8_t *)script;
    step.payload.len = sizeof script - 1;
    Trellis__V1__SagaStep *steps[] = {&step};
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.wait_result = wait;
    o.retry_interval_ms = ITEST_RETRY_INTERVAL_MS;
    o.request_timeout_ms = ITEST_REQUEST_TIMEOUT_MS;
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = (char *)gid;
    r.n_steps = 1;
    r.steps = steps;
    r.options = &o;
    assert_true(trellis__v1__submit_request__get_packed_size(&r) <= cap);
    return trellis__v1__submit_request__pack(&r, buf);
}

static int live_calls_are(void *arg)
{
    return fault_number("live-calls") == *(long *)arg;
}

static int waiters_are(void *arg)
{
    return fault_number("waiters") == *(long *)arg;
}

/* Until trellisd holds exactly n waiters. */
static void wait_waiters(long n)
{
    if (!harness_poll(waiters_are, &n, 10000, 5))
        fail_msg("trellisd holds %ld waiters; want %ld",
                 fault_number("waiters"), n);
}

#define N_WAITERS 4

/* Fill the bound (--max-waiters N_WAITERS) with waiting Submits of req,
 * each due in a minute, and check that one more is refused. */
static void fill_waiters(itest_t *t, raw_call_t *calls, const uint8_t *req,
                         size_t len)
{
    for (int i = 0; i < N_WAITERS; i++)
        raw_submit_start(&calls[i], t, req, len, 60000);
    wait_waiters(N_WAITERS);
    static raw_call_t extra;
    raw_submit_start(&extra, t, req, len, 10000);
    assert_int_equal(raw_call_finish(&extra), GRPC_STATUS_RESOURCE_EXHAUSTED);
}

/* Clients waiting for a transaction that never finishes cancel their
 * calls, or lose their connections: their waiters leave trellisd at once,
 * not when their deadlines (a minute away) pass, so the bound counts only
 * clients that still listen: new waiters fit again, and past the bound
 * they are still refused RESOURCE_EXHAUSTED. */
static void test_item5_cancelled_waiters_pruned(void **state)
{
    const char *args[] = {"--max-waiters", "4", NULL};
    itest_t *t = start_faulty(state, "f_item5_cancel", args);
    uint8_t plain[1024], waiting[1024];
    size_t plain_len =
        pack_endless_submit(t, "cancel5", 0, plain, sizeof plain);
    size_t wait_len =
        pack_endless_submit(t, "cancel5", 1, waiting, sizeof waiting);
    /* Static: if the test fails, gRPC still completes calls left behind. */
    static raw_call_t calls[N_WAITERS], first;
    raw_submit_start(&first, t, plain, plain_len, 10000);
    assert_int_equal(raw_call_finish(&first), GRPC_STATUS_OK);

    fill_waiters(t, calls, waiting, wait_len);
    grpc_call_cancel(calls[0].call, NULL);
    grpc_call_cancel(calls[1].call, NULL);
    raw_call_disconnect(&calls[2]);
    raw_call_disconnect(&calls[3]);
    long zero = 0;
    if (!harness_poll(waiters_are, &zero, 5000, 5))
        fail_msg("trellisd still holds %ld waiters 5 s after their clients "
                 "cancelled or went away (their deadlines are a minute "
                 "away); want 0",
                 fault_number("waiters"));
    long none = 0; /* finished (dropped, no reply sent), not just unlisted */
    if (!harness_poll(live_calls_are, &none, 5000, 5))
        fail_msg("trellisd still holds %ld calls of clients that left",
                 fault_number("live-calls"));
    for (int i = 0; i < N_WAITERS; i++) {
        grpc_status_code st = raw_call_finish(&calls[i]);
        if (st == GRPC_STATUS_OK)
            fail_msg("waiter %d was answered after its client left", i);
    }

    fill_waiters(t, calls, waiting, wait_len);
    trellis_trans_status_t st;
    char reason[256], err[512];
    assert_int_equal(trellis_force_stop(t->client, "cancel5", "test over", &st,
                                        reason, sizeof reason, err, sizeof err),
                     TRELLIS_OK);
    for (int i = 0; i < N_WAITERS; i++)
        assert_int_equal(raw_call_finish(&calls[i]), GRPC_STATUS_OK);
    assert_int_equal(fault_number("waiters"), 0);
    itest_pass(state);
}

/* ---- item 7: time and counts ------------------------------------------- */

static int attempts_stored(void *arg)
{
    itest_t *t = ((void **)arg)[0];
    uint32_t want = *(uint32_t *)((void **)arg)[1];
    trellis_trans_info_t *info = NULL;
    char err[256];
    if (trellis_query(t->client, "lim7", &info, err, sizeof err) != TRELLIS_OK)
        return 0;
    const trellis_op_info_t *op =
        itest_op(&info->branches[0], TRELLIS_OP_ACTION);
    int ok = op->attempts >= want;
    trellis_trans_info_free(info);
    return ok;
}

/* retry_limit counts attempts across a restart: with a limit of 4 and 2
 * attempts durable before kill -9, the participant sees at most 4 calls
 * in all (one more if an attempt's result died with the process). */
static void test_item7_retry_limit_survives_restart(void **state)
{
    itest_t *t = start_faulty(state, "f_item7", NULL);
    const char *payloads[] = {"unavail:1000000"};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    o.retry_limit = 4;
    o.retry_interval_ms = 300;
    trellis_saga_t *s = itest_saga(t, "lim7", payloads, 1, &o);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUBMITTED);
    uint32_t two = 2;
    void *arg[2] = {t, &two};
    assert_true(harness_poll(attempts_stored, arg, 10000, 5));
    assert_int_equal(harness_server_crash_restart(t->tm), 0);
    trellis_trans_info_t *info = itest_wait_final(t, "lim7");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    harness_part_state_t ps;
    itest_part_state(t, "lim7", &ps);
    int calls = itest_count(info, &ps, 0, "action", NULL);
    if (calls > 5)
        fail_msg("retry_limit 4, 2 attempts stored before the crash: the "
                 "participant saw %d calls",
                 calls);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    trellis_saga_free(s);
    itest_pass(state);
}

/* A begun transaction with a 1 s timeout, loaded by a node whose wall
 * clock is an hour behind: it times out about 1 s after the load, not an
 * hour later. */
static void test_item7_timeout_under_clock_skew(void **state)
{
    itest_t *t = start_faulty(state, "f_item7_skew", NULL);
    trellis_options_t o = itest_options();
    o.timeout_to_fail_ms = 1000;
    char err[512];
    assert_int_equal(trellis_begin(t->client, "skew7", &o, err, sizeof err),
                     TRELLIS_OK);
    assert_int_equal(harness_server_kill(t->tm), 0);
    setenv("TRELLIS_FAULT_WALL_OFFSET_MS", "-3600000", 1);
    int rc = harness_server_restart(t->tm);
    unsetenv("TRELLIS_FAULT_WALL_OFFSET_MS");
    assert_int_equal(rc, 0);
    trellis_trans_info_t *info = itest_wait_final(t, "skew7");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    trellis_trans_info_free(info);
    itest_pass(state);
}

static int start7_final(void *arg)
{
    trellis_trans_status_t st = 0;
    return query_rc(arg, "start7", &st) == TRELLIS_OK &&
           (st == TRELLIS_TRANS_SUCCEEDED || st == TRELLIS_TRANS_FAILED);
}

/* A branch call that cannot even be started counts toward retry_limit
 * like an attempt that got no answer: with retry_limit 3 and every start
 * of the action refused (trellisd-faults' start gate: no real target makes
 * gRPC refuse a start), the action is tried exactly 3 times and fails, the
 * saga is rolled back (its compensation is sent), and the stored attempt
 * count says 3. */
static void test_item7_failed_call_start_counts(void **state)
{
    itest_t *t = start_faulty(state, "f_item7_start", NULL);
    fault("fail-call-start /trellis.test.Part/Action");
    const char *payloads[] = {"ok"};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    o.retry_limit = 3;
    trellis_saga_t *s = itest_saga(t, "start7", payloads, 1, &o);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUBMITTED);
    if (!harness_poll(start7_final, t, ITEST_FINAL_TIMEOUT_MS, 20)) {
        trellis_trans_info_t *now = itest_query(t, "start7");
        fail_msg("start7 still %s after %d ms, retry_limit 3: %u attempts "
                 "stored, %ld starts refused",
                 trellis_trans_status_name(now->status), ITEST_FINAL_TIMEOUT_MS,
                 itest_op(&now->branches[0], TRELLIS_OP_ACTION)->attempts,
                 fault_number("call-starts-refused"));
    }
    trellis_trans_info_t *info = itest_query(t, "start7");
    assert_int_equal(info->status, TRELLIS_TRANS_FAILED);
    const trellis_op_info_t *action =
        itest_op(&info->branches[0], TRELLIS_OP_ACTION);
    if (action->attempts != 3 || fault_number("call-starts-refused") != 3)
        fail_msg("retry_limit 3, every start refused: %u attempts stored, %ld "
                 "starts tried; want 3 and 3",
                 action->attempts, fault_number("call-starts-refused"));
    assert_int_equal(action->status, TRELLIS_OP_FAILED);
    assert_non_null(strstr(action->last_error, "cannot start a call"));
    harness_part_state_t ps;
    itest_part_state(t, "start7", &ps);
    assert_int_equal(itest_count(info, &ps, 0, "action", NULL), 0);
    assert_int_equal(itest_count(info, &ps, 0, "compensate", NULL), 1);
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    trellis_saga_free(s);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_item1_register_on_finished_gid,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item2_retry_waits_for_durable_write,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item6_query_durable_only,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item9_failing_commits_refuse_new_work,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item9_sqlite_disk_full, itest_teardown),
        cmocka_unit_test_teardown(test_item5_waiters_bounded, itest_teardown),
        cmocka_unit_test_teardown(test_item5_cancelled_waiters_pruned,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item7_retry_limit_survives_restart,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item7_timeout_under_clock_skew,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item7_failed_call_start_counts,
                                  itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
