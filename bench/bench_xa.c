/*
 * bench_xa: the xa2 workload (see bench_xa.h) - the order and stock
 * services, the SKU seed rows, and what one order calls. The threads, the
 * counting and the processes' plumbing are bench_ap's and bench_ap_env's.
 */
#include "bench_xa.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench_env.h"
#include "harness.h"
#include "trellis/trellis.h"
#include "trellis/trellis_xa.h"

#define SEED_STOCK "1000000000000"

/* ---- processes -------------------------------------------------------- */

static const char *const SVC_NAME[2] = {"order-service", "stock-service"};
static const char *const SVC_GRPC[2] = {"xaorder.v1.Order", "xaorder.v1.Stock"};
static const char *const SVC_DB[2] = {"xa_orders", "xa_stock"};

/* Service i, from its binary next to this one. */
static int start_svc(bench_xa_env_t *t, harness_t *h, int i,
                     const char *threads)
{
    char bin[PATH_MAX];
    bench_env_binary(NULL, SVC_NAME[i], bin, sizeof(bin));
    const char *args[] = {"--database",     SVC_DB[i],
                          "--mysql-socket", harness_mariadb_socket(t->ap.db),
                          "--threads",      threads,
                          "--quiet",        NULL};
    return bench_ap_svc_start(&t->ap, h, i, SVC_NAME[i], bin, args);
}

/* SKUs s0..s<n-1> in one statement (the sequence engine makes the rows). */
static int seed_skus(bench_xa_env_t *t)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO xa_stock.stock (sku, qty) SELECT CONCAT('s', "
             "seq), " SEED_STOCK
             " FROM xa_stock.seq_0_to_%d ON DUPLICATE KEY UPDATE "
             "qty = VALUES(qty)",
             t->skus - 1);
    if (harness_mariadb_exec(t->ap.db, sql) != 0) {
        fprintf(stderr, "trellis-bench: seeding xa_stock failed\n");
        return -1;
    }
    return 0;
}

static void set_targets(bench_xa_env_t *t)
{
    static const char *const method[3] = {"Prepare", "Commit", "Rollback"};
    for (int i = 0; i < 2; i++)
        for (int m = 0; m < 3; m++)
            snprintf(t->target[i][m], sizeof(t->target[i][m]), "%s/%s/%s",
                     t->ap.svc_addr[i], SVC_GRPC[i], method[m]);
}

int bench_xa_env_start(bench_xa_env_t *t, harness_t *h, int svc_threads,
                       int skus, int db_flush)
{
    char threads[16];
    memset(t, 0, sizeof(*t));
    t->skus = skus;
    snprintf(threads, sizeof(threads), "%d", svc_threads);
    if (bench_ap_db_start(&t->ap, h, db_flush) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (start_svc(t, h, i, threads) != 0)
            return -1;
    set_targets(t);
    return seed_skus(t);
}

/* ---- one order -------------------------------------------------------- */

/* Both prepares of a begun order. 0, or -1 with the error noted. */
static int prepares(bench_ap_worker_t *w, const bench_xa_env_t *e,
                    trellis_xa_t *x, const char *gid)
{
    char pl[128], err[256];
    uint64_t r = bench_ap_rand(w);
    snprintf(pl, sizeof(pl), "order=%s sku=s%d qty=1", gid,
             (int)(r % (uint64_t)e->skus));
    for (int i = 0; i < 2; i++) {
        trellis_rc_t rc = trellis_xa_call_branch(
            x, e->target[i][0], e->target[i][1], e->target[i][2], pl,
            strlen(pl), NULL, NULL, err, sizeof(err));
        if (rc != TRELLIS_OK) {
            bench_ap_note_error(w, "prepare at %s: rc %d: %s", SVC_NAME[i], rc,
                                err);
            return -1;
        }
    }
    return 0;
}

int bench_xa_order(bench_ap_worker_t *w, uint64_t n, const void *env)
{
    const bench_xa_env_t *e = env;
    char gid[64], err[256], reason[256];
    trellis_xa_t *x = NULL;
    trellis_trans_status_t st = 0;
    trellis_options_t o = {.wait_result = 1};
    snprintf(gid, sizeof(gid), "x%d-%d-%llu", (int)getpid(), bench_ap_index(w),
             (unsigned long long)n);
    if (trellis_xa_begin(bench_ap_client(w), gid, &o, &x, err, sizeof(err)) !=
        TRELLIS_OK) {
        bench_ap_note_error(w, "begin: %s", err);
        return 0;
    }
    int ok = 0;
    if (prepares(w, e, x, gid) != 0)
        trellis_xa_abort(x, "a prepare failed", NULL, err, sizeof(err));
    else if (trellis_xa_submit(x, &st, reason, sizeof(reason), err,
                               sizeof(err)) != TRELLIS_OK)
        bench_ap_note_error(w, "submit: %s", err);
    else if (!(ok = st == TRELLIS_TRANS_SUCCEEDED))
        bench_ap_note_error(w, "submit answered %s: %s",
                            trellis_trans_status_name(st), reason);
    trellis_xa_free(x);
    return ok;
}
