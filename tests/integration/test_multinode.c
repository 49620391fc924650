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
 *   - SIGTERM hands a node's unfinished work over at once;
 *   - random kills and pauses of random nodes under random sagas.
 * Issue 12's ownership races and the other review items are in
 * test_multinode_items.c; the cluster (nodes, clients, waits, the
 * exactly-once check) in itest_cluster.h.
 *
 * The fixture's own trellisd ("trellisd", node id trellisd) is node A; the
 * test adds nodes on the same database. Effects are counted by
 * trellis-testpart, whose in-memory barrier journals each call's effect.
 */
#include "itest_cluster.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
