/*
 * bench_tcc: the tcc2 workload (see bench_tcc.h) - the banks, their seed
 * rows, and what one transfer calls. The threads, the counting and the
 * processes' plumbing are bench_ap's and bench_ap_env's.
 */
#include "bench_tcc.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench_env.h"
#include "harness.h"
#include "trellis/trellis.h"
#include "trellis/trellis_async.h"

#define SEED_BALANCE "1000000000000"

/* ---- processes -------------------------------------------------------- */

static const char *const BANK_NAME[2] = {"bank-a", "bank-b"};
static const char *const BANK_DB[2] = {"bank_a", "bank_b"};

/* Bank b, from bank-service next to this binary unless
 * TRELLIS_BANK_SERVICE names another. */
static int start_bank(bench_tcc_env_t *t, harness_t *h, int b,
                      const char *threads)
{
    char bin[PATH_MAX];
    bench_env_binary("TRELLIS_BANK_SERVICE", "bank-service", bin, sizeof(bin));
    const char *args[] = {"--name",         BANK_NAME[b],
                          "--database",     BANK_DB[b],
                          "--mysql-socket", harness_mariadb_socket(t->ap.db),
                          "--threads",      threads,
                          "--quiet",        NULL};
    return bench_ap_svc_start(&t->ap, h, b, BANK_NAME[b], bin, args);
}

/* The accounts u0..u<n-1> in both banks, in one statement each (the
 * sequence engine makes the rows). */
static int seed_accounts(bench_tcc_env_t *t)
{
    char sql[512];
    for (int b = 0; b < 2; b++) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO %s.accounts (id, balance, trading_balance) "
                 "SELECT CONCAT('u', seq), " SEED_BALANCE ", 0 FROM "
                 "%s.seq_0_to_%d ON DUPLICATE KEY UPDATE balance = "
                 "VALUES(balance)",
                 BANK_DB[b], BANK_DB[b], t->accounts - 1);
        if (harness_mariadb_exec(t->ap.db, sql) != 0) {
            fprintf(stderr, "trellis-bench: seeding %s failed\n", BANK_DB[b]);
            return -1;
        }
    }
    return 0;
}

static void set_targets(bench_tcc_env_t *t)
{
    static const char *const method[3] = {"TransTry", "TransConfirm",
                                          "TransCancel"};
    for (int b = 0; b < 2; b++)
        for (int m = 0; m < 3; m++)
            snprintf(t->target[b][m], sizeof(t->target[b][m]),
                     "%s/bank.v1.Bank/%s", t->ap.svc_addr[b], method[m]);
}

int bench_tcc_env_start(bench_tcc_env_t *t, harness_t *h, int bank_threads,
                        int accounts, int db_flush)
{
    char threads[16];
    memset(t, 0, sizeof(*t));
    t->accounts = accounts;
    snprintf(threads, sizeof(threads), "%d", bank_threads);
    if (bench_ap_db_start(&t->ap, h, db_flush) != 0)
        return -1;
    for (int b = 0; b < 2; b++)
        if (start_bank(t, h, b, threads) != 0)
            return -1;
    set_targets(t);
    return seed_accounts(t);
}

/* ---- one transfer ----------------------------------------------------- */

/* The payloads of one transfer: -1 from a random account of bank-a, +1 to
 * one of bank-b. */
static void transfer_payloads(bench_async_slot_t *s, const bench_tcc_env_t *e,
                              char pl[2][64])
{
    uint64_t r = bench_async_rand(s);
    snprintf(pl[0], 64, "account=u%d amount=-1",
             (int)(r % (uint64_t)e->accounts));
    snprintf(pl[1], 64, "account=u%d amount=1",
             (int)((r >> 32) % (uint64_t)e->accounts));
}

static void transfer_done(const trellis_async_result_t *r, void *user)
{
    bench_async_end_run(user, r, BANK_NAME, "try");
}

void bench_tcc_transfer(bench_async_slot_t *s, uint64_t n, const void *env)
{
    const bench_tcc_env_t *e = env;
    char gid[64], pl[2][64];
    transfer_payloads(s, e, pl);
    snprintf(gid, sizeof(gid), "c%d-%llu", (int)getpid(),
             (unsigned long long)n);
    trellis_async_branch_t b[2];
    for (int i = 0; i < 2; i++)
        b[i] = (trellis_async_branch_t){e->target[i][0], e->target[i][1],
                                        e->target[i][2], pl[i], strlen(pl[i])};
    trellis_options_t o = {.wait_result = 1};
    trellis_rc_t rc = trellis_async_tcc_run(bench_async_client(s), gid, &o, b,
                                            2, transfer_done, s);
    if (rc != TRELLIS_OK)
        bench_async_done(s, 0, "trellis_async_tcc_run refused: rc %d", rc);
}

void bench_tcc_direct(bench_async_slot_t *s, uint64_t n, const void *env)
{
    const bench_tcc_env_t *e = env;
    char gid[64], pl[2][64];
    transfer_payloads(s, e, pl);
    snprintf(gid, sizeof(gid), "d%d-%llu", (int)getpid(),
             (unsigned long long)n);
    const char *a = e->ap.svc_addr[0], *b = e->ap.svc_addr[1];
    const bench_direct_call_t calls[4] = {
        {a, "/bank.v1.Bank/TransTry", "01", "try", pl[0]},
        {b, "/bank.v1.Bank/TransTry", "02", "try", pl[1]},
        {a, "/bank.v1.Bank/TransConfirm", "01", "confirm", pl[0]},
        {b, "/bank.v1.Bank/TransConfirm", "02", "confirm", pl[1]},
    };
    bench_async_direct(s, gid, "tcc", calls, 4);
}
