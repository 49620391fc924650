/*
 * test_multinode_items.c: several trellisd nodes on one MariaDB (the
 * MySQL store, itest_cluster.h), the review's numbered items and what
 * came with them:
 *   - issue 12's ownership races, node A on trellisd-faults (its commits
 *     held or their answers lost on command): ownership A -> B -> A (item
 *     3), a retried Submit racing a takeover (item 4), a lost COMMIT
 *     followed by an outage longer than the lease (item 11);
 *   - a Submit waiting on one node while another drives the transaction;
 *   - a workflow's resume across a takeover;
 *   - the payload bound lowered to what the store's rows carry (item 8).
 * Takeover, races, database restarts, pauses, SIGTERM and random kills
 * are in test_multinode.c.
 */
#include "itest_cluster.h"
#include "itest_fault.h"
#include "trellis/trellis_participant.h"
#include "trellis/trellis_workflow.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- issue 12: ownership races, node A on trellisd-faults ---------------- */

/* gid, a one-step saga, succeeded with its action applied exactly once. */
static void check_one_step_applied(itest_t *t, const char *gid)
{
    trellis_trans_info_t *info = itest_wait_final(t, gid);
    harness_part_state_t ps;
    itest_part_state(t, gid, &ps);
    int applied = itest_count(info, &ps, 0, "action", "applied");
    if (info->status != TRELLIS_TRANS_SUCCEEDED || applied != 1) {
        harness_part_state_dump(&ps);
        fail_msg("%s: %s, action applied %d times", gid,
                 trellis_trans_status_name(info->status), applied);
    }
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
}

/* Hold node A's next commit group, and assert it carries gid. */
static void hold_a_group_of(const char *gid)
{
    char held[1200];
    itest_fault("wait-held 10000", held, sizeof held);
    if (!strstr(held, gid))
        fail_msg("the held group is not %s's: %s", gid, held);
}

typedef struct {
    trellis_client_t *client;
    const trellis_saga_t *saga;
    const char *gid;
    trellis_rc_t rc;
    char err[512];
} call_job_t;

static void *submit_in_thread(void *arg)
{
    call_job_t *j = arg;
    j->rc = trellis_saga_submit(j->client, j->saga, NULL, NULL, 0, j->err,
                                sizeof j->err);
    return NULL;
}

/* Item 3: A's copy of X has a write queued (held: the action done, X
 * SUCCEEDED) when A pauses past its lease. B claims X, finds the action
 * not done, calls it again (it fails now), moves X to ABORTING, starts
 * compensating, and dies; A claims X back. A's queued write from its old
 * copy passes an owner-only fence now and ends X as SUCCEEDED although B
 * undid its action. The generation of A's new claim must refuse it: X
 * ends FAILED. */
static void test_item3_owner_a_b_a_stale_write_fenced(void **state)
{
    itest_t *t = start_faulty_fixture(state, "mn_item3");
    cluster_t c;
    cluster_start(&c, t, 2);
    /* The first action call succeeds, every later one fails. B's
     * compensate hangs 3 s (B is dead by then); the next one succeeds. */
    const char *p[] = {"hang:10:1,fail;compensate=hang:3000:1"};
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_t *saga = itest_saga(t, "item3", p, 1, &o);
    itest_fault("hold", NULL, 0);
    call_job_t job = {c.client[0], saga, "item3", 0, ""};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, submit_in_thread, &job), 0);
    hold_a_group_of("item3:submitted:insert");
    itest_fault("step", NULL, 0); /* the insert; then the action's result */
    hold_a_group_of("item3:succeeded");
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(job.rc, TRELLIS_OK);
    harness_proc_t *a = harness_server_proc(c.node[0]);
    assert_int_equal(harness_proc_signal(a, SIGSTOP), 0);
    wait_status(&c, 1, "item3", TRELLIS_TRANS_ABORTING);
    assert_int_equal(harness_server_kill(c.node[1]), 0);
    assert_int_equal(harness_proc_signal(a, SIGCONT), 0);
    wait_log(c.node[0], "event=takeover", "gid=item3");
    itest_fault("release", NULL, 0);
    query_through(&c, 0);
    trellis_trans_info_t *info = itest_wait_final(t, "item3");
    harness_part_state_t ps;
    itest_part_state(t, "item3", &ps);
    if (info->status != TRELLIS_TRANS_FAILED || ps.n_net != 0) {
        harness_part_state_dump(&ps);
        fail_msg("item3 ended %s with %zu branch(es) applied: the old copy's "
                 "write landed after B rolled it back",
                 trellis_trans_status_name(info->status), ps.n_net);
    }
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
    trellis_saga_free(saga);
    cluster_free_clients(&c);
    itest_pass(state);
}

/* Item 4: B stores X and dies; the client's retried Submit(X) reaches A,
 * whose copy waits for its insert (held) while A claims X from B. The
 * claimed row must be driven, whatever the insert's fate. */
static void test_item4_submit_racing_takeover_is_driven(void **state)
{
    itest_t *t = start_faulty_fixture(state, "mn_item4");
    cluster_t c;
    cluster_start(&c, t, 2);
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    o.retry_interval_ms = 3000; /* B's second try would come after 3 s */
    const char *p[] = {"unavail:1"};
    trellis_saga_t *saga = itest_saga(t, "item4", p, 1, &o);
    call_job_t first = {c.client[1], saga, "item4", 0, ""};
    submit_in_thread(&first);
    if (first.rc != TRELLIS_OK)
        fail_msg("submit to B: %s", first.err);
    assert_int_equal(harness_server_kill(c.node[1]), 0);
    itest_fault("hold", NULL, 0);
    call_job_t retry = {c.client[0], saga, "item4", 0, ""};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, submit_in_thread, &retry), 0);
    hold_a_group_of("item4");
    wait_log(c.node[0], "event=claimed", NULL);
    itest_fault("release", NULL, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (retry.rc != TRELLIS_OK)
        fail_msg("retried submit to A: rc %d: %s", retry.rc, retry.err);
    query_through(&c, 0);
    check_one_step_applied(t, "item4");
    trellis_saga_free(saga);
    cluster_free_clients(&c);
    itest_pass(state);
}

/* A Submit that waits for the result, sent to a node that does not drive
 * the transaction, must not be answered with a status that is not final:
 * it is UNAVAILABLE (the result comes from the node that drives it). */
static void test_waiting_submit_elsewhere_is_unavailable(void **state)
{
    itest_t *t = start_fixture(state, "mn_wait_elsewhere");
    cluster_t c;
    cluster_start(&c, t, 2);
    const char *p[] = {"hold"};
    submit_to(&c, 0, "wait-b", p, 1);
    part_cmd(t, "wait-held wait-b 1 10000"); /* A drives it: its action */
    trellis_options_t o = itest_options();
    o.wait_result = 1;
    trellis_saga_t *saga = itest_saga(t, "wait-b", p, 1, &o);
    trellis_trans_status_t st = 0;
    char reason[256] = "", err[512] = "";
    trellis_rc_t rc = trellis_saga_submit(c.client[1], saga, &st, reason,
                                          sizeof reason, err, sizeof err);
    if (rc != TRELLIS_UNAVAILABLE)
        fail_msg("waiting submit to B answered rc %d status %s (%s): "
                 "expected UNAVAILABLE",
                 rc, trellis_trans_status_name(st), err);
    part_cmd(t, "release wait-b");
    trellis_trans_info_t *info = itest_wait_final(t, "wait-b");
    assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
    trellis_trans_info_free(info);
    trellis_saga_free(saga);
    cluster_free_clients(&c);
    itest_pass(state);
}

/* ---- a workflow's resume across a takeover ------------------------------ */

static atomic_int wf_runs;

/* One saga step on the test participant; the first run then asks to be
 * resumed later, every later run commits. */
static int wf_step_then_commit(trellis_wf_t *wf, const uint8_t *in, size_t len,
                               trellis_wf_err_t *e)
{
    (void)in, (void)len;
    itest_t *t = trellis_wf_user(wf);
    char err[256];
    trellis_rc_t rc = trellis_wf_saga(wf, t->action, t->compensate, "", 0, NULL,
                                      NULL, err, sizeof err);
    if (rc != TRELLIS_OK) {
        snprintf(e->message, sizeof e->message, "step: %s", err);
        return TRELLIS_WF_RETRY;
    }
    if (atomic_fetch_add(&wf_runs, 1) == 0) {
        snprintf(e->message, sizeof e->message, "first run: resume me");
        return TRELLIS_WF_RETRY;
    }
    return TRELLIS_WF_COMMIT;
}

typedef struct {
    trellis_client_t *client;
    trellis_participant_t *part;
    trellis_workflows_t *wfs;
} wf_service_t;

/* This process serves the workflow, reaching the cluster through every
 * node's address (the first that answers). */
static void wf_service_start(wf_service_t *s, cluster_t *c, int n)
{
    char target[256], err[256], addr[64];
    int len = snprintf(target, sizeof target, "ipv4:");
    for (int i = 0; i < n; i++)
        len += snprintf(target + len, sizeof target - (size_t)len, "%s%s",
                        i ? "," : "", harness_server_addr(c->node[i]));
    int port = 0;
    if (trellis_client_new(target, 30000, &s->client, err, sizeof err) ||
        trellis_participant_new(2, &s->part, err, sizeof err) ||
        trellis_workflows_new(s->client, &s->wfs, err, sizeof err) ||
        trellis_workflows_register(s->wfs, "step-then-commit",
                                   wf_step_then_commit, c->t, err,
                                   sizeof err) ||
        trellis_workflows_serve(s->wfs, s->part, err, sizeof err) ||
        trellis_participant_start(s->part, "127.0.0.1:0", &port, err,
                                  sizeof err))
        fail_msg("workflow service: %s", err);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    if (trellis_workflows_set_address(s->wfs, addr, err, sizeof err))
        fail_msg("workflow service: %s", err);
}

static void wf_service_stop(wf_service_t *s)
{
    trellis_participant_stop(s->part);
    trellis_workflows_free(s->wfs);
    trellis_participant_free(s->part);
    trellis_client_free(s->client);
}

/* Node A drives an undecided workflow and dies; B claims it and, its
 * timeout passed, resumes it through the service, which finishes it:
 * its step ran once. */
static void test_workflow_resumed_after_takeover(void **state)
{
    itest_t *t = start_fixture(state, "mn_wf_takeover");
    cluster_t c;
    cluster_start(&c, t, 2);
    wf_service_t s;
    wf_service_start(&s, &c, 2);
    atomic_store(&wf_runs, 0);
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    o.timeout_to_fail_ms = 2000;
    trellis_trans_status_t st;
    char reason[256], err[512];
    trellis_rc_t rc = trellis_workflow_execute(
        s.wfs, "step-then-commit", "wf-take", "", 0, &o, &st, reason,
        sizeof reason, err, sizeof err);
    if (rc != TRELLIS_UNAVAILABLE)
        fail_msg("first run: rc %d: %s", rc, err);
    assert_int_equal(harness_server_kill(c.node[0]), 0);
    query_through(&c, 1);
    trellis_trans_info_t *info = itest_wait_final(t, "wf-take");
    if (info->status != TRELLIS_TRANS_SUCCEEDED)
        fail_msg("wf-take ended %s (%s)",
                 trellis_trans_status_name(info->status), info->reason);
    trellis_trans_info_free(info);
    assert_int_equal(log_count(c.node[1], "event=takeover", "gid=wf-take "), 1);
    assert_true(atomic_load(&wf_runs) >= 2);
    harness_part_state_t ps;
    itest_part_state(t, "wf-take", &ps);
    assert_int_equal(harness_part_count(&ps, NULL, "action", "applied"), 1);
    harness_part_state_free(&ps);
    wf_service_stop(&s);
    cluster_free_clients(&c);
    itest_pass(state);
}

static void *begin_in_thread(void *arg)
{
    call_job_t *j = arg;
    trellis_options_t o = itest_options();
    j->rc = trellis_begin(j->client, j->gid, &o, j->err, sizeof j->err);
    return NULL;
}

/* Item 11: A's Begin(X) commits but the answer is lost; before A applies
 * the group again, A is away longer than its lease and B claims X. The
 * second attempt finds X stored, by A itself: Begin is answered OK, not
 * ALREADY_EXISTS. */
static void test_item11_lost_commit_then_outage_begin_ok(void **state)
{
    itest_t *t = start_faulty_fixture(state, "mn_item11");
    cluster_t c;
    cluster_start(&c, t, 2);
    itest_fault("lose-answer 1", NULL, 0);
    call_job_t job = {c.client[0], NULL, "item11", 0, ""};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, begin_in_thread, &job), 0);
    hold_a_group_of("item11");
    harness_proc_t *a = harness_server_proc(c.node[0]);
    assert_int_equal(harness_proc_signal(a, SIGSTOP), 0);
    wait_log(c.node[1], "event=takeover", "gid=item11");
    assert_int_equal(harness_proc_signal(a, SIGCONT), 0);
    itest_fault("release", NULL, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (job.rc != TRELLIS_OK)
        fail_msg("Begin after a lost COMMIT: rc %d: %s", job.rc, job.err);
    wait_status(&c, 1, "item11", TRELLIS_TRANS_PREPARED);
    cluster_free_clients(&c);
    itest_pass(state);
}

/* Item 8: on a server whose max_allowed_packet is 1 MiB, a node started
 * with --max-payload 16 MiB lowers it to what one row can carry, and a
 * larger payload is refused at Submit, naming the bound — nothing queued
 * that would jam the store. */
static void test_item8_payload_bound_from_store(void **state)
{
    itest_t *t = start_fixture(state, "mn_item8");
    harness_mariadb_t *db = harness_tm_store_db(t->h);
    assert_int_equal(
        harness_mariadb_exec(db, "SET GLOBAL max_allowed_packet = 1048576"), 0);
    const char *extra[] = {"--max-payload", "16777216", NULL};
    harness_server_t *b = add_node_with(t, "node-b", extra);
    assert_int_equal(
        harness_mariadb_exec(db, "SET GLOBAL max_allowed_packet = 16777216"),
        0);
    assert_true(log_count(b, "event=max_payload_lowered", "store_max=491520"));
    trellis_client_t *cb = client_for(b);
    char err[512];
    trellis_saga_t *saga = NULL;
    assert_int_equal(trellis_saga_new("item8-big", &saga, err, sizeof err),
                     TRELLIS_OK);
    size_t len = 600 * 1024;
    char *payload = calloc(1, len);
    assert_true(trellis_saga_add_step(saga, t->action, t->compensate, payload,
                                      len, err, sizeof err) >= 0);
    trellis_rc_t rc =
        trellis_saga_submit(cb, saga, NULL, NULL, 0, err, sizeof err);
    printf("[ item8 ] 600 KiB payload: rc %d: %s\n", rc, err);
    assert_int_equal(rc, TRELLIS_INVALID_ARGUMENT);
    assert_non_null(strstr(err, "max_allowed_packet 1048576"));
    trellis_saga_free(saga);
    free(payload);
    /* a payload that fits goes through on that node */
    trellis_client_t *mine = t->client;
    t->client = cb;
    const char *p[] = {"ok"};
    trellis_saga_t *ok = itest_saga(t, "item8-ok", p, 1, NULL);
    assert_int_equal(itest_submit(t, ok, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(ok);
    t->client = mine;
    trellis_client_free(cb);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_item3_owner_a_b_a_stale_write_fenced,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item4_submit_racing_takeover_is_driven,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item11_lost_commit_then_outage_begin_ok,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_waiting_submit_elsewhere_is_unavailable,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_workflow_resumed_after_takeover,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_item8_payload_bound_from_store,
                                  itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
