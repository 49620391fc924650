/*
 * itest_barrier: what the tests of the branch barrier (barrier/) share —
 * test_barrier.c (the barrier's rules, cost) and test_barrier_sql.c (its
 * table and the connection it runs on): the database of a test, the
 * business handlers (the TCC frozen-balance scheme of DESIGN.md and saga
 * ops, on account row 1), and trellis_barrier_run on branch 01 of a gid.
 * Over itest_mysql (one MariaDB per run of a test file).
 *
 * The helpers assert (cmocka) on failure, like itest_mysql's.
 */
#ifndef TRELLIS_ITEST_BARRIER_H
#define TRELLIS_ITEST_BARRIER_H

#include <stddef.h>

#include "itest_mysql.h"
#include "trellis/barrier.h"

/* ---- the database of a test ---------------------------------------------- */

/* A fresh database `name` with accounts (id 1: balance 100, nothing
 * frozen), an effects log and the default barrier table; returns a
 * connection to it. */
MYSQL *ibr_setup_db(const char *name);

/* Account 1's trading_balance (what tries froze). */
long long ibr_frozen(MYSQL *c);

/* The default barrier table's rows for gid. */
long long ibr_barrier_rows(MYSQL *c, const char *gid);

/* ---- business handlers --------------------------------------------------- */

/* One account op: amount, how many times the handler ran, and what it
 * returns after its SQL (OK by default). */
typedef struct {
    long long amount;
    int calls;
    trellis_barrier_business_rc_t after;
    int account; /* noop_update's row; 0: 1 */
} ibr_acct_t;

/* TCC try: freeze amount while the account can bear it; confirm: move
 * it; cancel: unfreeze it. u is an ibr_acct_t. A matched-no-row UPDATE
 * is a refusal ("no funds"). */
trellis_barrier_business_rc_t ibr_tcc_try(MYSQL *c, void *u, char *msg,
                                          size_t msglen);
trellis_barrier_business_rc_t ibr_tcc_confirm(MYSQL *c, void *u, char *msg,
                                              size_t msglen);
trellis_barrier_business_rc_t ibr_tcc_cancel(MYSQL *c, void *u, char *msg,
                                             size_t msglen);

/* Saga action / compensate: move the balance directly. */
trellis_barrier_business_rc_t ibr_saga_action(MYSQL *c, void *u, char *msg,
                                              size_t msglen);
trellis_barrier_business_rc_t ibr_saga_compensate(MYSQL *c, void *u, char *msg,
                                                  size_t msglen);

/* ---- the barrier on branch 01 -------------------------------------------- */

/* Branch 01 of gid, of trans type type, for op. */
trellis_barrier_branch_t ibr_branch(const char *type, const char *gid,
                                    const char *op);

/* trellis_barrier_run on the default table; asserts it left the connection
 * clean (autocommit, no transaction open). */
trellis_barrier_outcome_t ibr_run(MYSQL *c, const char *type, const char *gid,
                                  const char *op,
                                  trellis_barrier_business_fn fn, void *u,
                                  char *msg, size_t msglen);

/* The same, into the caller's `char msg[256]`. */
#define IBR_RUN(c, type, gid, op, fn, u)                                       \
    ibr_run((c), (type), (gid), (op), (fn), (u), msg, sizeof msg)

#endif /* TRELLIS_ITEST_BARRIER_H */
