/*
 * bench_hybrid: the hybrid3 workload (see bench_hybrid.h) - the three
 * services, their seed rows, and what one transaction calls. The threads,
 * the counting and the processes' plumbing are bench_ap's and
 * bench_ap_env's.
 */
#include "bench_hybrid.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench_env.h"
#include "harness.h"
#include "trellis/trellis.h"
#include "trellis/trellis_gtx.h"

#define SEED_BALANCE "1000000000000"
#define SLOTS_PER_CARRIER 100
/* Transactions/s no run reaches (each is 9 gRPC calls and 4 MariaDB
 * transactions; a 2-core box does a few hundred to a few thousand), and
 * per thread at least 100/s: the slots are seeded for this, times 2. */
#define TPS_BOUND 20000.0
#define TPS_BOUND_PER_THREAD 100.0

/* ---- processes -------------------------------------------------------- */

enum { SVC_ORDER, SVC_BANK, SVC_SHIP, N_SVC };

static const char *const SVC_NAME[N_SVC] = {"order-service", "bank-service",
                                            "shipping-service"};
static const char *const SVC_GRPC[N_SVC] = {"xaorder.v1.Order", "bank.v1.Bank",
                                            "hybrid.v1.Shipping"};
static const char *const SVC_DB[N_SVC] = {"h3_orders", "h3_bank",
                                          "h3_shipping"};
/* [service][forward, commit, rollback]; the saga step has no commit. */
static const char *const METHOD[N_SVC][3] = {
    {"Prepare", "Commit", "Rollback"},
    {"TransTry", "TransConfirm", "TransCancel"},
    {"Reserve", NULL, "Release"},
};

/* Service i, from its binary next to this one (bank-service also needs a
 * --name). */
static int start_svc(bench_hybrid_env_t *t, harness_t *h, int i,
                     const char *threads)
{
    char bin[PATH_MAX];
    bench_env_binary(i == SVC_BANK ? "TRELLIS_BANK_SERVICE" : NULL, SVC_NAME[i],
                     bin, sizeof(bin));
    const char *args[] = {"--database",     SVC_DB[i],
                          "--mysql-socket", harness_mariadb_socket(t->ap.db),
                          "--threads",      threads,
                          "--quiet",        i == SVC_BANK ? "--name" : NULL,
                          "bank",           NULL};
    return bench_ap_svc_start(&t->ap, h, i, SVC_NAME[i], bin, args);
}

static int exec_seed(bench_hybrid_env_t *t, const char *sql, const char *what)
{
    if (harness_mariadb_exec(t->ap.db, sql) == 0)
        return 0;
    fprintf(stderr, "trellis-bench: seeding %s failed\n", what);
    return -1;
}

/* Accounts a0..a<n-1> and carriers k0..k<K*blocks-1> with slots
 * 0..SLOTS_PER_CARRIER-1, one statement each (the sequence engine makes
 * the rows). */
static int seed(bench_hybrid_env_t *t, int concurrency)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO h3_bank.accounts (id, balance, trading_balance) "
             "SELECT CONCAT('a', seq), " SEED_BALANCE ", 0 FROM "
             "h3_bank.seq_0_to_%d ON DUPLICATE KEY UPDATE balance = "
             "VALUES(balance)",
             t->accounts - 1);
    if (exec_seed(t, sql, "h3_bank") != 0)
        return -1;
    t->slots = (uint64_t)concurrency * (uint64_t)t->blocks * SLOTS_PER_CARRIER;
    snprintf(sql, sizeof(sql),
             "INSERT IGNORE INTO h3_shipping.slots (carrier, slot) SELECT "
             "CONCAT('k', seq DIV %d), seq MOD %d FROM "
             "h3_shipping.seq_0_to_%llu",
             SLOTS_PER_CARRIER, SLOTS_PER_CARRIER,
             (unsigned long long)(t->slots - 1));
    return exec_seed(t, sql, "h3_shipping");
}

static void set_targets(bench_hybrid_env_t *t)
{
    for (int i = 0; i < N_SVC; i++)
        for (int m = 0; m < 3; m++)
            if (METHOD[i][m])
                snprintf(t->target[i][m], sizeof(t->target[i][m]), "%s/%s/%s",
                         t->ap.svc_addr[i], SVC_GRPC[i], METHOD[i][m]);
}

int bench_hybrid_env_start(bench_hybrid_env_t *t, harness_t *h, int svc_threads,
                           int accounts, int concurrency, double run_s,
                           int db_flush)
{
    char threads[16];
    memset(t, 0, sizeof(*t));
    t->accounts = accounts;
    double per_thread = TPS_BOUND / concurrency;
    if (per_thread < TPS_BOUND_PER_THREAD)
        per_thread = TPS_BOUND_PER_THREAD;
    t->blocks = (int)(2 * per_thread * run_s / SLOTS_PER_CARRIER) + 1;
    snprintf(threads, sizeof(threads), "%d", svc_threads);
    if (bench_ap_db_start(&t->ap, h, db_flush) != 0)
        return -1;
    for (int i = 0; i < N_SVC; i++)
        if (start_svc(t, h, i, threads) != 0)
            return -1;
    set_targets(t);
    return seed(t, concurrency);
}

/* ---- one transaction -------------------------------------------------- */

/* The three branches of a begun transaction. 0, or -1 with the error
 * noted. */
static int branches(bench_ap_worker_t *w, const bench_hybrid_env_t *e,
                    trellis_gtx_t *g, const char *gid, uint64_t n)
{
    char pl[160], err[256];
    trellis_rc_t rc;
    snprintf(pl, sizeof(pl), "order=%s sku=book qty=1", gid);
    rc = trellis_gtx_call_xa(g, e->target[SVC_ORDER][0],
                             e->target[SVC_ORDER][1], e->target[SVC_ORDER][2],
                             pl, strlen(pl), NULL, NULL, err, sizeof(err));
    if (rc != TRELLIS_OK) {
        bench_ap_note_error(w, "prepare at order-service: rc %d: %s", rc, err);
        return -1;
    }
    snprintf(pl, sizeof(pl), "account=a%d amount=-1",
             (int)(bench_ap_rand(w) % (uint64_t)e->accounts));
    rc = trellis_gtx_call_tcc(g, e->target[SVC_BANK][0], e->target[SVC_BANK][1],
                              e->target[SVC_BANK][2], pl, strlen(pl), NULL,
                              NULL, err, sizeof(err));
    if (rc != TRELLIS_OK) {
        bench_ap_note_error(w, "try at bank-service: rc %d: %s", rc, err);
        return -1;
    }
    snprintf(
        pl, sizeof(pl), "order=%s carrier=k%llu", gid,
        (unsigned long long)((uint64_t)bench_ap_index(w) * (uint64_t)e->blocks +
                             n / SLOTS_PER_CARRIER));
    rc = trellis_gtx_add_step(g, e->target[SVC_SHIP][0], e->target[SVC_SHIP][2],
                              pl, strlen(pl), err, sizeof(err));
    if (rc != TRELLIS_OK) {
        bench_ap_note_error(w, "add_step: rc %d: %s", rc, err);
        return -1;
    }
    return 0;
}

int bench_hybrid_txn(bench_ap_worker_t *w, uint64_t n, const void *env)
{
    const bench_hybrid_env_t *e = env;
    char gid[64], err[256], reason[256];
    trellis_gtx_t *g = NULL;
    trellis_trans_status_t st = 0;
    trellis_options_t o = {.wait_result = 1};
    snprintf(gid, sizeof(gid), "y%d-%d-%llu", (int)getpid(), bench_ap_index(w),
             (unsigned long long)n);
    if (trellis_gtx_begin(bench_ap_client(w), gid, &o, &g, err, sizeof(err)) !=
        TRELLIS_OK) {
        bench_ap_note_error(w, "begin: %s", err);
        return 0;
    }
    int ok = 0;
    if (branches(w, e, g, gid, n) != 0)
        trellis_gtx_abort(g, "a branch failed", NULL, err, sizeof(err));
    else if (trellis_gtx_submit(g, &st, reason, sizeof(reason), err,
                                sizeof(err)) != TRELLIS_OK)
        bench_ap_note_error(w, "submit: %s", err);
    else if (!(ok = st == TRELLIS_TRANS_SUCCEEDED))
        bench_ap_note_error(w, "submit answered %s: %s",
                            trellis_trans_status_name(st), reason);
    trellis_gtx_free(g);
    return ok;
}
