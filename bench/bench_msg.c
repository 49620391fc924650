/*
 * bench_msg: the msg2 workload (see bench_msg.h) - the bench's MariaDB and
 * its tables, the load threads' connections, the back-check target and
 * its connection pool, and what one message does. The threads, the
 * counting and the MariaDB process are bench_ap's and bench_ap_env's.
 *
 * Connections: every one is opened with auto-reconnect off (the barrier
 * refuses anything else) on database bench_msg. The load threads' are
 * opened here, on the main thread, before the load starts, and each is
 * then used by its thread alone. The back-check's come from a pool that
 * grows on demand and keeps at most BENCH_MSG_POOL idle ones.
 */
#include "bench_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_load.h"
#include "harness.h"
#include "trellis/trellis.h"
#include "trellis/trellis_msg.h"

#define DB_NAME "bench_msg"
#define CHECK_METHOD "/trellis.bench.Msg/QueryPrepared"
#define CHECK_THREADS 4

/* ---- connections ------------------------------------------------------ */

/* A connection to bench_msg on m's MariaDB; NULL with err. */
static MYSQL *db_connect(const bench_msg_env_t *m, char *err, size_t errlen)
{
    MYSQL *c = mysql_init(NULL);
    if (!c) {
        snprintf(err, errlen, "mysql_init: out of memory");
        return NULL;
    }
    if (!mysql_real_connect(c, NULL, "root", NULL, DB_NAME, 0,
                            harness_mariadb_socket(m->ap.db), 0)) {
        snprintf(err, errlen, "connect to MariaDB: %s", mysql_error(c));
        mysql_close(c);
        return NULL;
    }
    return c;
}

/* trellis_barrier_conns_t.borrow: an idle connection, or a new one. */
static MYSQL *pool_borrow(void *user, char *err, size_t errlen)
{
    bench_msg_env_t *m = user;
    MYSQL *c = NULL;
    pthread_mutex_lock(&m->mu);
    if (m->n_idle > 0)
        c = m->idle[--m->n_idle];
    pthread_mutex_unlock(&m->mu);
    return c ? c : db_connect(m, err, errlen);
}

/* trellis_barrier_conns_t.give_back: keep it unless broken or too many. */
static void pool_give_back(void *user, MYSQL *c, int broken)
{
    bench_msg_env_t *m = user;
    pthread_mutex_lock(&m->mu);
    if (!broken && m->n_idle < BENCH_MSG_POOL) {
        m->idle[m->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    if (c)
        mysql_close(c);
}

/* ---- the back-check target -------------------------------------------- */

/* The barrier's handler, counted: a healthy run never gets here. */
static void on_check(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                     size_t payload_len, trellis_reply_t *reply, void *user)
{
    bench_msg_env_t *m = user;
    atomic_fetch_add(&m->checks, 1);
    trellis_barrier_query_prepared_handler(ctx, payload, payload_len, reply,
                                           &m->check_conns);
}

static int serve_checks(bench_msg_env_t *m, char *err, size_t errlen)
{
    int port = 0;
    m->check_conns = (trellis_barrier_conns_t){.borrow = pool_borrow,
                                               .give_back = pool_give_back,
                                               .user = m,
                                               .table = NULL};
    if (trellis_participant_new(CHECK_THREADS, &m->p, err, errlen) !=
            TRELLIS_OK ||
        trellis_participant_handle(m->p, CHECK_METHOD, on_check, m, err,
                                   errlen) != TRELLIS_OK ||
        trellis_participant_start(m->p, "127.0.0.1:0", &port, err, errlen) !=
            TRELLIS_OK)
        return -1;
    snprintf(m->query_prepared, sizeof(m->query_prepared), "127.0.0.1:%d%s",
             port, CHECK_METHOD);
    return 0;
}

/* ---- the database ----------------------------------------------------- */

/* The database, the business table and the barrier table. */
static int make_tables(bench_msg_env_t *m, char *err, size_t errlen)
{
    if (harness_mariadb_exec(m->ap.db, "CREATE DATABASE " DB_NAME) != 0) {
        snprintf(err, errlen, "CREATE DATABASE " DB_NAME " failed");
        return -1;
    }
    MYSQL *c = db_connect(m, err, errlen);
    if (!c)
        return -1;
    int rc = 0;
    if (mysql_query(c, "CREATE TABLE orders (gid VARCHAR(64) PRIMARY KEY, "
                       "amount INT NOT NULL, created TIMESTAMP(6) NOT NULL "
                       "DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB") != 0) {
        snprintf(err, errlen, "create orders: %s", mysql_error(c));
        rc = -1;
    } else if (trellis_barrier_create_table(c, TRELLIS_BARRIER_DEFAULT_TABLE,
                                            err, errlen) != 0)
        rc = -1;
    mysql_close(c);
    return rc;
}

static int open_conns(bench_msg_env_t *m, int n, char *err, size_t errlen)
{
    if (!(m->conns = calloc((size_t)n, sizeof(*m->conns)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (; m->n_conns < n; m->n_conns++)
        if (!(m->conns[m->n_conns] = db_connect(m, err, errlen)))
            return -1;
    return 0;
}

int bench_msg_env_start(bench_msg_env_t *m, const bench_env_t *env, int n_conns,
                        int wait, int db_flush)
{
    char err[512] = "";
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    m->wait = wait;
    snprintf(m->action, sizeof(m->action), "%s/trellis.bench.Noop/Action",
             env->part_addr);
    snprintf(m->gid_prefix, sizeof(m->gid_prefix), "m%d-", (int)getpid());
    if (bench_ap_db_start(&m->ap, env->h, db_flush) != 0) {
        snprintf(err, sizeof(err), "MariaDB did not start");
        goto fail;
    }
    if (make_tables(m, err, sizeof(err)) != 0 ||
        open_conns(m, n_conns, err, sizeof(err)) != 0 ||
        serve_checks(m, err, sizeof(err)) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "trellis-bench: msg2: %s\n", err);
    bench_msg_env_stop(m);
    return -1;
}

void bench_msg_env_stop(bench_msg_env_t *m)
{
    if (m->p) {
        trellis_participant_stop(m->p);
        trellis_participant_free(m->p);
        m->p = NULL;
    }
    for (int i = 0; i < m->n_conns; i++)
        mysql_close(m->conns[i]);
    free(m->conns);
    m->conns = NULL;
    m->n_conns = 0;
    while (m->n_idle > 0)
        mysql_close(m->idle[--m->n_idle]);
    pthread_mutex_destroy(&m->mu);
}

/* ---- one message ------------------------------------------------------ */

/* The business SQL of the local transaction: one order row (user: gid,
 * letters, digits and '-' only, so it needs no escaping). */
static trellis_barrier_business_rc_t insert_order(MYSQL *conn, void *user,
                                                  char *msg, size_t msglen)
{
    char sql[160];
    int n = snprintf(sql, sizeof(sql),
                     "INSERT INTO orders (gid, amount) VALUES ('%s', 1)",
                     (const char *)user);
    if (mysql_real_query(conn, sql, (unsigned long)n) == 0)
        return TRELLIS_BARRIER_BUSINESS_OK;
    snprintf(msg, msglen, "insert order: %s", mysql_error(conn));
    return TRELLIS_BARRIER_BUSINESS_ERROR;
}

/* The message: two steps to the participant's Action, in order. */
static trellis_msg_t *build(bench_ap_worker_t *w, const bench_msg_env_t *m,
                            const char *gid)
{
    char err[256];
    trellis_msg_t *msg = NULL;
    if (trellis_msg_new(gid, &msg, err, sizeof(err)) != TRELLIS_OK) {
        bench_ap_note_error(w, "msg_new: %s", err);
        return NULL;
    }
    for (int i = 0; i < 2; i++)
        if (trellis_msg_add_step(msg, m->action, NULL, 0, err, sizeof(err)) <
            0) {
            bench_ap_note_error(w, "add_step: %s", err);
            trellis_msg_free(msg);
            return NULL;
        }
    return msg;
}

int bench_msg_op(bench_ap_worker_t *w, uint64_t n, const void *env)
{
    const bench_msg_env_t *m = env;
    int i = bench_ap_index(w);
    char gid[64], err[512] = "";
    snprintf(gid, sizeof(gid), "%s%d-%llu", m->gid_prefix, i,
             (unsigned long long)n);
    trellis_msg_t *msg = build(w, m, gid);
    if (!msg)
        return 0;
    trellis_barrier_msg_outcome_t local;
    trellis_trans_status_t st = 0;
    trellis_rc_t rc = trellis_msg_do_and_submit(
        bench_ap_client(w), msg, m->query_prepared, m->conns[i], NULL,
        insert_order, gid, m->wait, &local, &st, err, sizeof(err));
    trellis_msg_free(msg);
    if (rc != TRELLIS_OK) {
        bench_ap_note_error(w, "message %s: rc %d (local transaction %s): %s",
                            gid, rc, trellis_barrier_msg_outcome_name(local),
                            err);
        return 0;
    }
    trellis_trans_status_t want =
        m->wait ? TRELLIS_TRANS_SUCCEEDED : TRELLIS_TRANS_SUBMITTED;
    if (st == want || (!m->wait && st == TRELLIS_TRANS_SUCCEEDED))
        return 1;
    bench_ap_note_error(w, "message %s ended %s", gid,
                        trellis_trans_status_name(st));
    return 0;
}

/* ---- readings --------------------------------------------------------- */

double bench_msg_drain(const bench_env_t *env, unsigned long long actions,
                       double timeout_s)
{
    unsigned long long c[4] = {0};
    int64_t t0 = bench_mono_ns();
    int64_t give_up = t0 + (int64_t)(timeout_s * 1e9);
    while (bench_mono_ns() < give_up) {
        if (bench_env_part_stats(env, c) == 0 && c[0] >= actions)
            return (double)(bench_mono_ns() - t0) / 1e9;
        bench_sleep_until_ns(bench_mono_ns() + 10000000);
    }
    return -1;
}

long long bench_msg_rows(bench_msg_env_t *m)
{
    long long n = -1;
    MYSQL *c = m->n_conns > 0 ? m->conns[0] : NULL;
    if (!c || mysql_query(c, "SELECT COUNT(*) FROM orders") != 0)
        return -1;
    MYSQL_RES *res = mysql_store_result(c);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[0])
        n = strtoll(row[0], NULL, 10);
    mysql_free_result(res);
    return n;
}

unsigned long long bench_msg_checks(bench_msg_env_t *m)
{
    return atomic_load(&m->checks);
}
