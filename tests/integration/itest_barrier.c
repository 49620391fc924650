/*
 * itest_barrier.c: the database, business handlers and barrier calls the
 * branch barrier's tests share (see itest_barrier.h).
 */
#include "itest_barrier.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

/* ---- the database of a test ---------------------------------------------- */

/* A fresh database `name` with accounts (id 1: balance 100, nothing
 * frozen), an effects log and the default barrier table; returns a
 * connection to it. */
MYSQL *ibr_setup_db(const char *name)
{
    return imy_setup_db(name,
                        "balance BIGINT NOT NULL, trading_balance BIGINT "
                        "NOT NULL",
                        "1, 100, 0");
}

long long ibr_frozen(MYSQL *c)
{
    return imy_int(c, "SELECT trading_balance FROM accounts WHERE id = 1");
}

long long ibr_barrier_rows(MYSQL *c, const char *gid)
{
    return imy_int(c, "SELECT COUNT(*) FROM trellis_barrier WHERE gid = '%s'",
                   gid);
}

/* ---- business handlers --------------------------------------------------- */

/* Count the call, run the UPDATE (printf format), and answer: an error
 * if it failed, a refusal if it matched no row, otherwise a->after. */
__attribute__((format(printf, 5, 6))) static trellis_barrier_business_rc_t
update(MYSQL *c, ibr_acct_t *a, char *msg, size_t msglen, const char *fmt, ...)
{
    char sql[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    a->calls++;
    if (mysql_query(c, sql) != 0) {
        snprintf(msg, msglen, "%s", mysql_error(c));
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    }
    if (mysql_affected_rows(c) == 0) {
        snprintf(msg, msglen, "no funds");
        return TRELLIS_BARRIER_BUSINESS_FAIL;
    }
    if (a->after != TRELLIS_BARRIER_BUSINESS_OK)
        snprintf(msg, msglen, "injected %s after the update",
                 a->after == TRELLIS_BARRIER_BUSINESS_FAIL ? "failure"
                                                           : "error");
    return a->after;
}

/* TCC try: freeze amount while the account can bear it. */
trellis_barrier_business_rc_t ibr_tcc_try(MYSQL *c, void *u, char *msg,
                                          size_t msglen)
{
    long long v = ((ibr_acct_t *)u)->amount;
    return update(c, u, msg, msglen,
                  "UPDATE accounts SET trading_balance = trading_balance + "
                  "%lld WHERE id = 1 AND balance + trading_balance + %lld >= 0",
                  v, v);
}

trellis_barrier_business_rc_t ibr_tcc_confirm(MYSQL *c, void *u, char *msg,
                                              size_t msglen)
{
    long long v = ((ibr_acct_t *)u)->amount;
    return update(c, u, msg, msglen,
                  "UPDATE accounts SET balance = balance + %lld, "
                  "trading_balance = trading_balance - %lld WHERE id = 1",
                  v, v);
}

trellis_barrier_business_rc_t ibr_tcc_cancel(MYSQL *c, void *u, char *msg,
                                             size_t msglen)
{
    return update(c, u, msg, msglen,
                  "UPDATE accounts SET trading_balance = trading_balance - "
                  "%lld WHERE id = 1",
                  ((ibr_acct_t *)u)->amount);
}

/* Saga action / compensate: move the balance directly. */
trellis_barrier_business_rc_t ibr_saga_action(MYSQL *c, void *u, char *msg,
                                              size_t msglen)
{
    long long v = ((ibr_acct_t *)u)->amount;
    return update(c, u, msg, msglen,
                  "UPDATE accounts SET balance = balance + %lld WHERE id = 1 "
                  "AND balance + %lld >= 0",
                  v, v);
}

trellis_barrier_business_rc_t ibr_saga_compensate(MYSQL *c, void *u, char *msg,
                                                  size_t msglen)
{
    return update(c, u, msg, msglen,
                  "UPDATE accounts SET balance = balance - %lld WHERE id = 1",
                  ((ibr_acct_t *)u)->amount);
}

trellis_barrier_branch_t ibr_branch(const char *type, const char *gid,
                                    const char *op)
{
    trellis_barrier_branch_t b = {.trans_type = type,
                                  .gid = gid,
                                  .branch_id = "01",
                                  .op = op,
                                  .barrier_id = NULL};
    return b;
}

/* trellis_barrier_run on the default table; asserts it left the connection
 * clean (autocommit, no transaction open). */
trellis_barrier_outcome_t ibr_run(MYSQL *c, const char *type, const char *gid,
                                  const char *op,
                                  trellis_barrier_business_fn fn, void *u,
                                  char *msg, size_t msglen)
{
    trellis_barrier_branch_t b = ibr_branch(type, gid, op);
    trellis_barrier_outcome_t o = trellis_barrier_run(
        c, TRELLIS_BARRIER_DEFAULT_TABLE, &b, fn, u, msg, msglen);
    imy_assert_clean(c);
    return o;
}
