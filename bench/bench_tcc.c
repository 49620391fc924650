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
#include "trellis/trellis_tcc.h"

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

/* The two tries of a begun transfer. 0, or -1 with the error noted. */
static int tries(bench_ap_worker_t *w, const bench_tcc_env_t *e,
                 trellis_tcc_t *t)
{
    char pl[64], err[256];
    uint64_t r = bench_ap_rand(w);
    int acct[2] = {(int)(r % (uint64_t)e->accounts),
                   (int)((r >> 32) % (uint64_t)e->accounts)};
    for (int b = 0; b < 2; b++) {
        snprintf(pl, sizeof(pl), "account=u%d amount=%d", acct[b],
                 b == 0 ? -1 : 1);
        trellis_rc_t rc = trellis_tcc_call_branch(
            t, e->target[b][0], e->target[b][1], e->target[b][2], pl,
            strlen(pl), NULL, NULL, err, sizeof(err));
        if (rc != TRELLIS_OK) {
            bench_ap_note_error(w, "try at %s: rc %d: %s", BANK_NAME[b], rc,
                                err);
            return -1;
        }
    }
    return 0;
}

int bench_tcc_transfer(bench_ap_worker_t *w, uint64_t n, const void *env)
{
    const bench_tcc_env_t *e = env;
    char gid[64], err[256], reason[256];
    trellis_tcc_t *t = NULL;
    trellis_trans_status_t st = 0;
    trellis_options_t o = {.wait_result = 1};
    snprintf(gid, sizeof(gid), "c%d-%d-%llu", (int)getpid(), bench_ap_index(w),
             (unsigned long long)n);
    if (trellis_tcc_begin(bench_ap_client(w), gid, &o, &t, err, sizeof(err)) !=
        TRELLIS_OK) {
        bench_ap_note_error(w, "begin: %s", err);
        return 0;
    }
    int ok = 0;
    if (tries(w, e, t) != 0)
        trellis_tcc_abort(t, "a try failed", NULL, err, sizeof(err));
    else if (trellis_tcc_submit(t, &st, reason, sizeof(reason), err,
                                sizeof(err)) != TRELLIS_OK)
        bench_ap_note_error(w, "submit: %s", err);
    else if (!(ok = st == TRELLIS_TRANS_SUCCEEDED))
        bench_ap_note_error(w, "submit answered %s: %s",
                            trellis_trans_status_name(st), reason);
    trellis_tcc_free(t);
    return ok;
}
