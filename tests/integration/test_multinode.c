/*
 * test_multinode.c: several trellisd nodes on one MariaDB (the MySQL
 * store) — what running more than one TM must guarantee:
 *   - a node killed with kill -9 under load: the others take over every one
 *     of its unfinished transactions and finish them, each business effect
 *     exactly once;
 *   - two nodes racing to claim the same expired transactions: each is
 *     taken over by exactly one of them;
 *   - the database killed and restarted under load: trellisd reconnects,
 *     loses nothing and finishes everything;
 *   - a node paused (SIGSTOP) past its lease: another node takes its work
 *     over, and when the paused node resumes it does not act on any of it;
 *   - issue 12's ownership races, node A on trellisd-faults (its commits
 *     held or their answers lost on command): ownership A -> B -> A (item
 *     3), a retried Submit racing a takeover (item 4), a lost COMMIT
 *     followed by an outage longer than the lease (item 11).
 *
 * The fixture's own trellisd ("trellisd", node id trellisd) is node A; the
 * test adds nodes on the same database. Effects are counted by
 * trellis-testpart, whose in-memory barrier journals each call's effect.
 */
#include "itest.h"
#include "itest_fault.h"
#include "trellis/trellis_participant.h"
#include "trellis/trellis_workflow.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define LEASE_MS "1500"

typedef struct {
    itest_t *t;
    harness_server_t *node[3]; /* [0] is the fixture's trellisd */
    trellis_client_t *client[3];
} cluster_t;

static itest_t *start_fixture(void **state, const char *name)
{
    setenv("TRELLIS_TEST_STORE", "mysql", 1);
    const char *args[] = {"--lease-ms", LEASE_MS, NULL};
    return itest_start(state, name, args);
}

static trellis_client_t *client_for(harness_server_t *node)
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
static harness_server_t *add_node_with(itest_t *t, const char *node_id,
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

static harness_server_t *add_node(itest_t *t, const char *node_id)
{
    return add_node_with(t, node_id, NULL);
}

static void cluster_start(cluster_t *c, itest_t *t, int n)
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
static void query_through(cluster_t *c, int i)
{
    c->t->client = c->client[i];
}

static void cluster_free_clients(cluster_t *c)
{
    for (int i = 1; i < 3; i++)
        if (c->client[i])
            trellis_client_free(c->client[i]);
    c->t->client = c->client[0];
}

/* Submit without waiting, retrying while the node is unreachable. */
static void submit_to(cluster_t *c, int node, const char *gid,
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
static void submit_saga(cluster_t *c, int node, const char *gid, int failing,
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
static void check_exactly_once(itest_t *t, const char *gid, int failing)
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
static int log_count(harness_server_t *node, const char *needle,
                     const char *needle2)
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
static void wait_log_grows(harness_server_t *const *nodes, const int *before,
                           int n, const char *needle, const char *what)
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
static void part_cmd(itest_t *t, const char *cmd)
{
    char reply[256];
    if (harness_part_cmd(harness_server_addr(t->part), cmd, reply,
                         sizeof reply) != 0)
        fail_msg("participant: %s: %s", cmd, reply);
}

/* 1 when the participant has had a call of every gid in args (a
 * NULL-terminated array: [0] the itest_t *, then gids). */
static int each_gid_called(void *arg)
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

/* ---- kill -9 under load ------------------------------------------------- */

#define N_LOAD 45

static void test_killed_node_work_is_finished_by_the_others(void **state)
{
    itest_t *t = start_fixture(state, "mn_kill");
    cluster_t c;
    cluster_start(&c, t, 3);
    char gid[32];
    for (int i = 0; i < N_LOAD; i++) {
        snprintf(gid, sizeof gid, "kill-%d", i);
        submit_saga(&c, i % 3, gid, i % 5 == 4, "slow:60");
    }
    /* Node A dies with work on the wire: one saga of its own is held at
     * the participant (step 0 in flight), and every saga submitted to it
     * has had a call, so it has taken its share up. */
    const char *held[] = {"hold", "slow:20", "slow:20"};
    submit_to(&c, 0, "kill-held", held, 3);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "wait-held kill-held 1 %d",
             ITEST_FINAL_TIMEOUT_MS);
    part_cmd(t, cmd);
    static char gids_a[N_LOAD][32];
    void *on_a[2 + N_LOAD] = {t};
    size_t n_a = 1;
    for (int i = 0; i < N_LOAD; i += 3) {
        snprintf(gids_a[i], sizeof gids_a[i], "kill-%d", i);
        on_a[n_a++] = gids_a[i];
    }
    on_a[n_a] = NULL;
    if (!harness_poll(each_gid_called, on_a, ITEST_FINAL_TIMEOUT_MS, 20))
        fail_msg("node A never called every saga submitted to it");
    assert_int_equal(harness_server_kill(c.node[0]), 0);
    part_cmd(t, "release kill-held"); /* its effect happens; A is gone */
    /* More load on the survivors while they take node A's work over. */
    for (int i = N_LOAD; i < N_LOAD + 15; i++) {
        snprintf(gid, sizeof gid, "kill-%d", i);
        submit_saga(&c, 1 + i % 2, gid, i % 5 == 4, "slow:20");
    }
    query_through(&c, 1);
    for (int i = 0; i < N_LOAD + 15; i++) {
        snprintf(gid, sizeof gid, "kill-%d", i);
        check_exactly_once(t, gid, i % 5 == 4);
    }
    check_exactly_once(t, "kill-held", 0);
    if (log_count(c.node[1], "event=takeover", "gid=kill-held ") +
            log_count(c.node[2], "event=takeover", "gid=kill-held ") !=
        1)
        fail_msg("kill-held, on the wire when node A died, was not taken "
                 "over once");
    int taken = log_count(c.node[1], "event=takeover", NULL) +
                log_count(c.node[2], "event=takeover", NULL);
    printf("transactions taken over from the killed node: %d\n", taken);
    assert_true(taken > 0);
    cluster_free_clients(&c);
    itest_pass(state);
}

/* Wait (10 s at most) until no transaction whose gid starts with prefix
 * holds a lease that is still running by the database's clock — the clock
 * the store's claims compare lease_ms with. */
static void wait_leases_expired(itest_t *t, const char *prefix)
{
    harness_mariadb_t *db = harness_tm_store_db(t->h);
    assert_non_null(db);
    char database[128], sql[1024];
    harness_tm_store_database(t->h, "trellisd", database, sizeof database);
    /* The client exits non-zero while a row matches: the scalar subquery
     * then returns two rows, an error. */
    snprintf(sql, sizeof sql,
             "SELECT (SELECT 1 UNION ALL SELECT 2) FROM `%s`.trellis_trans"
             " WHERE gid LIKE '%s%%' AND lease_ms IS NOT NULL AND lease_ms >="
             " CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) LIMIT 1",
             database, prefix);
    int64_t deadline = harness_mono_ms() + 10000;
    while (harness_mariadb_exec(db, sql) != 0) {
        if (harness_mono_ms() > deadline)
            fail_msg("the leases of %s* never ran out", prefix);
        harness_sleep_ms(100); /* each "not yet" prints the client's error */
    }
}

/* ---- two nodes racing for the same expired transactions ----------------- */

#define N_RACE 150

static void test_racing_claims_take_each_transaction_once(void **state)
{
    itest_t *t = start_fixture(state, "mn_race");
    cluster_t c;
    cluster_start(&c, t, 3);
    char gid[32];
    /* Long enough in flight that node A holds all of them when it dies. */
    for (int i = 0; i < N_RACE; i++) {
        snprintf(gid, sizeof gid, "race-%d", i);
        submit_saga(&c, 0, gid, 0, "ongoing:40");
    }
    assert_int_equal(harness_server_kill(c.node[0]), 0);
    /* Hold B and C until A's leases ran out, then let both go at once:
     * their first look finds the same expired transactions. */
    harness_proc_t *b = harness_server_proc(c.node[1]);
    harness_proc_t *cc = harness_server_proc(c.node[2]);
    assert_int_equal(harness_proc_signal(b, SIGSTOP), 0);
    assert_int_equal(harness_proc_signal(cc, SIGSTOP), 0);
    wait_leases_expired(t, "race-");
    assert_int_equal(harness_proc_signal(b, SIGCONT), 0);
    assert_int_equal(harness_proc_signal(cc, SIGCONT), 0);
    query_through(&c, 1);
    for (int i = 0; i < N_RACE; i++) {
        snprintf(gid, sizeof gid, "race-%d", i);
        check_exactly_once(t, gid, 0);
        char needle[48];
        snprintf(needle, sizeof needle, "gid=%s ", gid);
        int nb = log_count(c.node[1], "event=takeover", needle);
        int nc = log_count(c.node[2], "event=takeover", needle);
        if (nb + nc != 1)
            fail_msg("%s taken over %d times (node-b %d, node-c %d)", gid,
                     nb + nc, nb, nc);
    }
    printf("node-b took %d, node-c took %d\n",
           log_count(c.node[1], "event=takeover", NULL),
           log_count(c.node[2], "event=takeover", NULL));
    cluster_free_clients(&c);
    itest_pass(state);
}

/* ---- the database restarted under load ---------------------------------- */

#define N_DB 40

static void test_database_restart_loses_nothing(void **state)
{
    itest_t *t = start_fixture(state, "mn_dbrestart");
    cluster_t c;
    cluster_start(&c, t, 2);
    char gid[32];
    for (int i = 0; i < N_DB; i++) {
        snprintf(gid, sizeof gid, "db-%d", i);
        submit_saga(&c, i % 2, gid, i % 4 == 3, "slow:50");
    }
    harness_mariadb_t *db = harness_tm_store_db(t->h);
    /* The database comes back only once both nodes met the outage (a
     * store error logged: a commit, a lease renewal or a connect failed). */
    int before[2] = {log_count(c.node[0], "event=store_", NULL),
                     log_count(c.node[1], "event=store_", NULL)};
    harness_mariadb_kill(db);
    wait_log_grows(c.node, before, 2, "event=store_",
                   "the database was killed");
    assert_int_equal(harness_mariadb_restart(db), 0);
    for (int i = N_DB; i < N_DB + 10; i++) {
        snprintf(gid, sizeof gid, "db-%d", i);
        submit_saga(&c, i % 2, gid, i % 4 == 3, "slow:20");
    }
    for (int i = 0; i < N_DB + 10; i++) {
        snprintf(gid, sizeof gid, "db-%d", i);
        check_exactly_once(t, gid, i % 4 == 3);
    }
    /* Both nodes lived through it. */
    assert_true(harness_proc_running(harness_server_proc(c.node[0])));
    assert_true(harness_proc_running(harness_server_proc(c.node[1])));
    cluster_free_clients(&c);
    itest_pass(state);
}

/* Wait (10 s at most) until node logged event=lease_lapsed and as many
 * event=lost_ownership lines as the transactions=N that line names. */
static void wait_rechecked(harness_server_t *node)
{
    int64_t deadline = harness_mono_ms() + 10000;
    long n = -1;
    for (;;) {
        if (n < 0) {
            FILE *f = fopen(harness_proc_log(harness_server_proc(node)), "r");
            char line[2048];
            while (f && n < 0 && fgets(line, sizeof line, f)) {
                static const char key[] = "event=lease_lapsed transactions=";
                const char *p = strstr(line, key);
                if (p)
                    n = strtol(p + strlen(key), NULL, 10);
            }
            if (f)
                fclose(f);
        }
        if (n >= 0 && log_count(node, "event=lost_ownership", NULL) >= n)
            return;
        if (harness_mono_ms() > deadline)
            fail_msg("the resumed node did not re-check its transactions "
                     "(lease_lapsed transactions=%ld, lost_ownership %d)",
                     n, log_count(node, "event=lost_ownership", NULL));
        harness_sleep_ms(20);
    }
}

/* ---- a node paused past its lease ---------------------------------------- */

#define N_PAUSE 20

static void test_paused_node_does_not_act_on_taken_work(void **state)
{
    itest_t *t = start_fixture(state, "mn_pause");
    cluster_t c;
    cluster_start(&c, t, 2);
    char gid[32];
    /* Node A is retrying every one of these when it stops. */
    for (int i = 0; i < N_PAUSE; i++) {
        snprintf(gid, sizeof gid, "pause-%d", i);
        submit_saga(&c, 0, gid, 0, "unavail:4");
    }
    /* ... which it is once each has had its first call: four
     * UNAVAILABLE answers with backoff take ~750 ms more. */
    static char gids[N_PAUSE][32];
    void *all[2 + N_PAUSE] = {t};
    for (int i = 0; i < N_PAUSE; i++) {
        snprintf(gids[i], sizeof gids[i], "pause-%d", i);
        all[1 + i] = gids[i];
    }
    all[1 + N_PAUSE] = NULL;
    if (!harness_poll(each_gid_called, all, ITEST_FINAL_TIMEOUT_MS, 10))
        fail_msg("node A never called every saga submitted to it");
    harness_proc_t *a = harness_server_proc(c.node[0]);
    assert_int_equal(harness_proc_signal(a, SIGSTOP), 0);
    /* Node B takes over once A's leases run out and finishes them. */
    query_through(&c, 1);
    int64_t finished_max = 0;
    for (int i = 0; i < N_PAUSE; i++) {
        snprintf(gid, sizeof gid, "pause-%d", i);
        trellis_trans_info_t *info = itest_wait_final(t, gid);
        assert_int_equal(info->status, TRELLIS_TRANS_SUCCEEDED);
        if (info->finished_ms > finished_max)
            finished_max = info->finished_ms;
        trellis_trans_info_free(info);
    }
    int64_t resumed_ms = harness_now_ms();
    assert_int_equal(harness_proc_signal(a, SIGCONT), 0);
    /* A's timers fire; it must re-check first. Wait until it has: its
     * lease_lapsed line names how many transactions it re-confirms, and
     * each write is refused (B owns them) with a lost_ownership line,
     * after which A forgets that transaction — no more calls. A call it
     * started before is answered at once (UNAVAILABLE), well within the
     * refused write's round trip to the database, so the journal read
     * below holds it. */
    wait_rechecked(c.node[0]);
    int stale = 0;
    for (int i = 0; i < N_PAUSE; i++) {
        snprintf(gid, sizeof gid, "pause-%d", i);
        check_exactly_once(t, gid, 0);
        harness_part_state_t ps;
        itest_part_state(t, gid, &ps);
        for (size_t k = 0; k < ps.n_calls; k++)
            if (ps.calls[k].start_ms >= resumed_ms) {
                fprintf(stderr, "%s: call after resume: branch %s op %s\n", gid,
                        ps.calls[k].branch, ps.calls[k].op);
                stale++;
            }
        harness_part_state_free(&ps);
    }
    assert_int_equal(stale, 0);
    assert_true(log_count(c.node[0], "event=lease_lapsed", NULL) >= 1);
    assert_true(log_count(c.node[1], "event=takeover", NULL) >= 1);
    (void)finished_max;
    /* A still works: a new saga submitted to it finishes. */
    query_through(&c, 0);
    submit_saga(&c, 0, "pause-after", 0, "ok");
    check_exactly_once(t, "pause-after", 0);
    cluster_free_clients(&c);
    itest_pass(state);
}

/* ---- SIGTERM hands the rest over at once -------------------------------- */

#define N_HANDOVER 30

static void test_sigterm_hands_unfinished_work_over(void **state)
{
    /* A long lease: a takeover that waited for it would take 20 s. */
    setenv("TRELLIS_TEST_STORE", "mysql", 1);
    const char *args[] = {"--lease-ms", "20000", "--shutdown-grace-ms", "0",
                          NULL};
    itest_t *t = itest_start(state, "mn_handover", args);
    cluster_t c;
    cluster_start(&c, t, 2);
    char gid[32];
    for (int i = 0; i < N_HANDOVER; i++) {
        snprintf(gid, sizeof gid, "handover-%d", i);
        submit_saga(&c, 0, gid, i % 3 == 2, "ongoing:20");
    }
    int64_t stopped = harness_mono_ms();
    int status = harness_proc_stop(harness_server_proc(c.node[0]), 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    query_through(&c, 1);
    for (int i = 0; i < N_HANDOVER; i++) {
        snprintf(gid, sizeof gid, "handover-%d", i);
        check_exactly_once(t, gid, i % 3 == 2);
    }
    int64_t took = harness_mono_ms() - stopped;
    printf("node B finished node A's work %lld ms after SIGTERM\n",
           (long long)took);
    assert_true(took < 10000);
    assert_true(log_count(c.node[0], "event=leases_released", NULL) == 1);
    assert_true(log_count(c.node[1], "event=takeover", NULL) >= 1);
    cluster_free_clients(&c);
    itest_pass(state);
}

/* ---- random kills and pauses of random nodes ----------------------------- */

#define N_CHAOS 90
#define CHAOS_ROUNDS 6
#define CHAOS_MAX_STEPS 4

typedef struct {
    char gid[32];
    int n_steps;
    int fail_at; /* -1: none */
    char payloads[CHAOS_MAX_STEPS][48];
} mn_saga_t;

/* A deterministic generator, so a failing seed can be replayed. */
static unsigned mn_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static void make_chaos_saga(mn_saga_t *m, int i, unsigned *seed)
{
    snprintf(m->gid, sizeof m->gid, "mnchaos-%d", i);
    m->n_steps = 2 + (int)(mn_rand(seed) % (CHAOS_MAX_STEPS - 1));
    m->fail_at =
        mn_rand(seed) % 3 == 0 ? (int)(mn_rand(seed) % m->n_steps) : -1;
    for (int s = 0; s < m->n_steps; s++) {
        const char *fwd = s == m->fail_at     ? "fail"
                          : mn_rand(seed) % 2 ? "slow:40"
                                              : "unavail:1";
        const char *comp = mn_rand(seed) % 2 ? "unavail:2" : "ok";
        snprintf(m->payloads[s], sizeof m->payloads[s], "%s;compensate=%s", fwd,
                 comp);
    }
}

/* Submit to the first running, unpaused node from `node` on, retrying on
 * the others while nodes die and come back. */
static void submit_anywhere(cluster_t *c, const int *paused, int node,
                            const mn_saga_t *m)
{
    const char *p[CHAOS_MAX_STEPS];
    for (int s = 0; s < m->n_steps; s++)
        p[s] = m->payloads[s];
    trellis_options_t o = itest_options();
    o.wait_result = 0;
    trellis_saga_t *saga = itest_saga(c->t, m->gid, p, (size_t)m->n_steps, &o);
    char err[512] = "";
    trellis_rc_t rc = TRELLIS_UNAVAILABLE;
    for (int attempt = 0; attempt < 400 && rc != TRELLIS_OK; attempt++) {
        int k = (node + attempt) % 3;
        if (paused[k]) {
            continue;
        }
        rc = trellis_saga_submit(c->client[k], saga, NULL, NULL, 0, err,
                                 sizeof err);
        if (rc == TRELLIS_UNAVAILABLE || rc == TRELLIS_DEADLINE_EXCEEDED)
            harness_sleep_ms(30);
        else if (rc != TRELLIS_OK)
            fail_msg("submit %s: rc %d: %s", m->gid, rc, err);
    }
    trellis_saga_free(saga);
    if (rc != TRELLIS_OK)
        fail_msg("submit %s never accepted: %s", m->gid, err);
}

static void check_chaos_saga(itest_t *t, const mn_saga_t *m)
{
    trellis_trans_info_t *info = itest_wait_final(t, m->gid);
    harness_part_state_t ps;
    itest_part_state(t, m->gid, &ps);
    int ok = info->status ==
             (m->fail_at < 0 ? TRELLIS_TRANS_SUCCEEDED : TRELLIS_TRANS_FAILED);
    for (int s = 0; ok && s < m->n_steps; s++) {
        int applied = itest_count(info, &ps, s, "action", "applied");
        ok = m->fail_at < 0 ? applied == 1 : applied <= 1;
    }
    ok = ok && (int)ps.n_net == (m->fail_at < 0 ? m->n_steps : 0);
    if (!ok) {
        harness_part_state_dump(&ps);
        fail_msg("%s: %s (%s), fail_at %d", m->gid,
                 trellis_trans_status_name(info->status), info->reason,
                 m->fail_at);
    }
    harness_part_state_free(&ps);
    trellis_trans_info_free(info);
}

/* One disruption of a random node: kill -9 and restart it (its node id
 * takes its work back, or another node got there first), or pause it past
 * its lease and let it go. */
static void disrupt(cluster_t *c, int *paused, unsigned *seed)
{
    int k = (int)(mn_rand(seed) % 3);
    harness_proc_t *p = harness_server_proc(c->node[k]);
    if (mn_rand(seed) % 2) {
        printf("kill -9 and restart node %d\n", k);
        assert_int_equal(harness_server_crash_restart(c->node[k]), 0);
    } else {
        printf("pause node %d\n", k);
        paused[k] = 1;
        assert_int_equal(harness_proc_signal(p, SIGSTOP), 0);
        harness_sleep_ms(2200);
        assert_int_equal(harness_proc_signal(p, SIGCONT), 0);
        paused[k] = 0;
    }
}

static void test_random_node_kills_and_pauses(void **state)
{
    itest_t *t = start_fixture(state, "mn_chaos");
    cluster_t c;
    cluster_start(&c, t, 3);
    unsigned seed = 20261121u;
    const char *env = getenv("TRELLIS_CHAOS_SEED");
    if (env)
        seed = (unsigned)strtoul(env, NULL, 10);
    printf("multinode chaos seed %u\n", seed);
    static mn_saga_t sagas[N_CHAOS];
    for (int i = 0; i < N_CHAOS; i++)
        make_chaos_saga(&sagas[i], i, &seed);
    int paused[3] = {0};
    int per_round = N_CHAOS / CHAOS_ROUNDS;
    for (int round = 0; round < CHAOS_ROUNDS; round++) {
        for (int i = round * per_round; i < (round + 1) * per_round; i++)
            submit_anywhere(&c, paused, i % 3, &sagas[i]);
        harness_sleep_ms((int)(mn_rand(&seed) % 150));
        disrupt(&c, paused, &seed);
    }
    for (int i = 0; i < N_CHAOS; i++)
        check_chaos_saga(t, &sagas[i]);
    cluster_free_clients(&c);
    itest_pass(state);
}

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

static itest_t *start_faulty_fixture(void **state, const char *name)
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
static void wait_status(cluster_t *c, int node, const char *gid,
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
static void wait_log(harness_server_t *node, const char *needle,
                     const char *needle2)
{
    log_wait_t w = {node, needle, needle2};
    if (!harness_poll(log_has, &w, 15000, 20))
        fail_msg("no log line with %s %s", needle, needle2 ? needle2 : "");
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
        cmocka_unit_test_teardown(
            test_killed_node_work_is_finished_by_the_others, itest_teardown),
        cmocka_unit_test_teardown(test_racing_claims_take_each_transaction_once,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_database_restart_loses_nothing,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_paused_node_does_not_act_on_taken_work,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_sigterm_hands_unfinished_work_over,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_random_node_kills_and_pauses,
                                  itest_teardown),
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
