/*
 * itest_cluster: the multinode tests' cluster (see itest_cluster.h) — its
 * nodes and clients, submits that ride out a dead node, the waits on logs
 * and statuses, the exactly-once check.
 */
#include "itest_cluster.h"

#include "itest_fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

itest_t *start_fixture(void **state, const char *name)
{
    setenv("TRELLIS_TEST_STORE", "mysql", 1);
    const char *args[] = {"--lease-ms", LEASE_MS, NULL};
    return itest_start(state, name, args);
}

trellis_client_t *client_for(harness_server_t *node)
{
    char err[256];
    trellis_client_t *c = NULL;
    if (trellis_client_new(harness_server_addr(node), 30000, &c, err,
                           sizeof err) != TRELLIS_OK)
        fail_msg("trellis_client_new: %s", err);
    return c;
}

/* Another node on the fixture's database, extra (NULL-terminated, may be
 * NULL) added to its flags. */
harness_server_t *add_node_with(itest_t *t, const char *node_id,
                                const char *const *extra)
{
    harness_mariadb_t *db = harness_tm_store_db(t->h);
    assert_non_null(db);
    char database[128];
    harness_tm_store_database(t->h, "trellisd", database, sizeof database);
    const char *args[] = {"--store",
                          "mysql",
                          "--mysql-socket",
                          harness_mariadb_socket(db),
                          "--mysql-database",
                          database,
                          "--node-id",
                          node_id,
                          "--lease-ms",
                          LEASE_MS,
                          "--retry-interval-ms",
                          "50",
                          "--request-timeout-ms",
                          "500",
                          NULL,
                          NULL,
                          NULL};
    size_t n = sizeof args / sizeof *args - 3;
    for (size_t i = 0; extra && extra[i] && i < 2; i++)
        args[n++] = extra[i];
    harness_server_t *s = harness_tm_start(t->h, node_id, args);
    assert_non_null(s);
    return s;
}

harness_server_t *add_node(itest_t *t, const char *node_id)
{
    return add_node_with(t, node_id, NULL);
}

void cluster_start(cluster_t *c, itest_t *t, int n)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    c->node[0] = t->tm;
    c->client[0] = t->client;
    static const char *ids[] = {"trellisd", "node-b", "node-c"};
    for (int i = 1; i < n; i++) {
        c->node[i] = add_node(t, ids[i]);
        c->client[i] = client_for(c->node[i]);
    }
}

/* Queries go to node i from now on (the fixture's client is node 0's). */
void query_through(cluster_t *c, int i)
{
    c->t->client = c->client[i];
}

void cluster_free_clients(cluster_t *c)
{
    for (int i = 1; i < 3; i++)
        if (c->client[i])
            trellis_client_free(c->client[i]);
    c->t->client = c->client[0];
}

/* Submit without waiting, retrying while the node is unreachable. */
void submit_to(cluster_t *c, int node, const char *gid,
               const char *const *payloads, size_t n)
{
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_t *saga = itest_saga(c->t, gid, payloads, n, &o);
    char err[512];
    trellis_rc_t rc = TRELLIS_UNAVAILABLE;
    for (int attempt = 0; attempt < 300 && rc != TRELLIS_OK; attempt++) {
        rc = trellis_saga_submit(c->client[node], saga, NULL, NULL, 0, err,
                                 sizeof err);
        if (rc == TRELLIS_UNAVAILABLE || rc == TRELLIS_DEADLINE_EXCEEDED)
            harness_sleep_ms(50);
        else if (rc != TRELLIS_OK)
            fail_msg("submit %s: rc %d: %s", gid, rc, err);
    }
    trellis_saga_free(saga);
    if (rc != TRELLIS_OK)
        fail_msg("submit %s never accepted: %s", gid, err);
}

/* A saga that ends with `fail` at its last step when failing, else
 * succeeds; every step is slow so work is in flight when a node dies. */
void submit_saga(cluster_t *c, int node, const char *gid, int failing,
                 const char *slow)
{
    char last[64];
    snprintf(last, sizeof last, "%s;compensate=unavail:1",
             failing ? "fail" : slow);
    const char *p[3] = {slow, slow, last};
    submit_to(c, node, gid, p, 3);
}

/* gid is final with the expected outcome, and every effect happened
 * exactly once: a succeeded saga holds each step applied once and nothing
 * compensated; a failed one holds nothing. */
void check_exactly_once(itest_t *t, const char *gid, int failing)
{
    trellis_trans_info_t *info = itest_wait_final(t, gid);
    harness_part_state_t ps;
    itest_part_state(t, gid, &ps);
    if (info->status !=
        (failing ? TRELLIS_TRANS_FAILED : TRELLIS_TRANS_SUCCEEDED)) {
        harness_part_state_dump(&ps);
        fail_msg("%s: %s (%s)", gid, trellis_trans_status_name(info->status),
                 info->reason);
    }
    for (int s = 0; s < 3; s++) {
        int applied = itest_count(info, &ps, s, "action", "applied");
        if (applied > 1 || (!failing && applied != 1)) {
            harness_part_state_dump(&ps);
            fail_msg("%s: step %d applied %d times", gid, s, applied);
        }
    }
    if (!failing) {
        assert_int_equal(ps.n_net, 3);
        assert_int_equal(itest_count(info, &ps, 0, "compensate", NULL), 0);
    } else {
        assert_int_equal(ps.n_net, 0);
    }
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
}

/* How many lines of node's log contain both needles (needle2 may be
 * NULL). */
int log_count(harness_server_t *node, const char *needle, const char *needle2)
{
    FILE *f = fopen(harness_proc_log(harness_server_proc(node)), "r");
    if (!f)
        return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle) && (!needle2 || strstr(line, needle2)))
            n++;
    fclose(f);
    return n;
}

/* Wait up to 10 s until every node in nodes[n] logged more lines with
 * needle than before[i]; fail naming what was awaited otherwise. */
void wait_log_grows(harness_server_t *const *nodes, const int *before, int n,
                    const char *needle, const char *what)
{
    int64_t deadline = harness_mono_ms() + 10000;
    for (int i = 0; i < n; i++)
        while (log_count(nodes[i], needle, NULL) <= before[i]) {
            if (harness_mono_ms() > deadline)
                fail_msg("node %d never logged %s: %s", i, needle, what);
            harness_sleep_ms(20);
        }
}

/* One Control command to trellis-testpart (see harness/testpart.c). */
void part_cmd(itest_t *t, const char *cmd)
{
    char reply[256];
    if (harness_part_cmd(harness_server_addr(t->part), cmd, reply,
                         sizeof reply) != 0)
        fail_msg("participant: %s: %s", cmd, reply);
}

/* 1 when the participant has had a call of every gid in args (a
 * NULL-terminated array: [0] the itest_t *, then gids). */
int each_gid_called(void *arg)
{
    void **a = arg;
    itest_t *t = a[0];
    for (size_t i = 1; a[i]; i++) {
        harness_part_state_t ps;
        if (harness_part_state(harness_server_addr(t->part), a[i], &ps) != 0)
            return 0;
        size_t n = ps.n_calls;
        harness_part_state_free(&ps);
        if (n == 0)
            return 0;
    }
    return 1;
}

itest_t *start_faulty_fixture(void **state, const char *name)
{
    setenv("TRELLIS_TEST_STORE", "mysql", 1);
    const char *args[] = {"--lease-ms", LEASE_MS, NULL};
    itest_t *t = itest_start_faulty(state, name, args);
    itest_fault_env_clear(); /* the nodes added next are plain trellisd */
    return t;
}

typedef struct {
    trellis_client_t *client;
    const char *gid;
    trellis_trans_status_t want;
} status_wait_t;

static int status_reached(void *arg)
{
    status_wait_t *w = arg;
    trellis_trans_info_t *info = NULL;
    char err[256];
    if (trellis_query(w->client, w->gid, &info, err, sizeof err) != TRELLIS_OK)
        return 0;
    int reached = info->status == w->want;
    trellis_trans_info_free(info);
    return reached;
}

/* Until node's durable state of gid says want. */
void wait_status(cluster_t *c, int node, const char *gid,
                 trellis_trans_status_t want)
{
    status_wait_t w = {c->client[node], gid, want};
    if (!harness_poll(status_reached, &w, 15000, 20))
        fail_msg("%s never reached %s on node %d", gid,
                 trellis_trans_status_name(want), node);
}

typedef struct {
    harness_server_t *node;
    const char *needle, *needle2;
} log_wait_t;

static int log_has(void *arg)
{
    log_wait_t *w = arg;
    return log_count(w->node, w->needle, w->needle2) > 0;
}

/* Until a line of node's log holds both needles. */
void wait_log(harness_server_t *node, const char *needle, const char *needle2)
{
    log_wait_t w = {node, needle, needle2};
    if (!harness_poll(log_has, &w, 15000, 20))
        fail_msg("no log line with %s %s", needle, needle2 ? needle2 : "");
}
