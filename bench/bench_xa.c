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
#include "trellis/trellis_async.h"

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

/* The payload of order gid: one of a random SKU. */
static void order_payload(bench_async_slot_t *s, const bench_xa_env_t *e,
                          const char *gid, char *pl, size_t len)
{
    uint64_t r = bench_async_rand(s);
    snprintf(pl, len, "order=%s sku=s%d qty=1", gid,
             (int)(r % (uint64_t)e->skus));
}

static void order_done(const trellis_async_result_t *r, void *user)
{
    bench_async_end_run(user, r, SVC_NAME, "prepare");
}

void bench_xa_order(bench_async_slot_t *s, uint64_t n, const void *env)
{
    const bench_xa_env_t *e = env;
    char gid[64], pl[128];
    snprintf(gid, sizeof(gid), "x%d-%llu", (int)getpid(),
             (unsigned long long)n);
    order_payload(s, e, gid, pl, sizeof(pl));
    trellis_async_branch_t b[2];
    for (int i = 0; i < 2; i++)
        b[i] = (trellis_async_branch_t){e->target[i][0], e->target[i][1],
                                        e->target[i][2], pl, strlen(pl)};
    trellis_options_t o = {.wait_result = 1};
    trellis_rc_t rc = trellis_async_xa_run(bench_async_client(s), gid, &o, b, 2,
                                           order_done, s);
    if (rc != TRELLIS_OK)
        bench_async_done(s, 0, "trellis_async_xa_run refused: rc %d", rc);
}

void bench_xa_direct(bench_async_slot_t *s, uint64_t n, const void *env)
{
    const bench_xa_env_t *e = env;
    char gid[64], pl[128], m[4][64];
    snprintf(gid, sizeof(gid), "y%d-%llu", (int)getpid(),
             (unsigned long long)n);
    order_payload(s, e, gid, pl, sizeof(pl));
    for (int i = 0; i < 2; i++) {
        snprintf(m[i], sizeof(m[i]), "/%s/Prepare", SVC_GRPC[i]);
        snprintf(m[2 + i], sizeof(m[2 + i]), "/%s/Commit", SVC_GRPC[i]);
    }
    const char *o = e->ap.svc_addr[0], *st = e->ap.svc_addr[1];
    const bench_direct_call_t calls[4] = {
        {o, m[0], "01", "prepare", pl},
        {st, m[1], "02", "prepare", pl},
        {o, m[2], "01", "commit", pl},
        {st, m[3], "02", "commit", pl},
    };
    bench_async_direct(s, gid, "xa", calls, 4);
}
