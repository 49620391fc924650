/*
 * itest_xa.c: the database, business SQL and adapter calls the XA
 * adapter's tests share (see itest_xa.h).
 */
#include "itest_xa.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- the database of a test ---------------------------------------------- */

/* A fresh database `name` with accounts (id 1: balance 100), an effects
 * log and the default barrier table; returns a connection to it. */
MYSQL *ixa_setup_db(const char *name)
{
    return imy_setup_db(name, "balance BIGINT NOT NULL", "1, 100");
}

long long ixa_effects(MYSQL *c, const char *gid)
{
    return imy_int(c, "SELECT COUNT(*) FROM effects WHERE gid = '%s'", gid);
}

/* XA RECOVER rows whose gtrid is gtrid, whatever their bqual and format
 * (the adapter's legacy form, or its cluster form with the TM cluster's
 * id in the bqual). */
int ixa_recovered(MYSQL *c, const char *gtrid)
{
    if (mysql_query(c, "XA RECOVER") != 0)
        fail_msg("XA RECOVER: %s", mysql_error(c));
    MYSQL_RES *r = mysql_store_result(c);
    assert_non_null(r);
    int n = 0;
    size_t len = strlen(gtrid);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r)))
        n += row[1] && row[3] && strtoul(row[1], NULL, 10) == len &&
             strncmp(row[3], gtrid, len) == 0;
    mysql_free_result(r);
    return n;
}

long long ixa_count(MYSQL *c)
{
    if (mysql_query(c, "XA RECOVER") != 0)
        fail_msg("XA RECOVER: %s", mysql_error(c));
    MYSQL_RES *r = mysql_store_result(c);
    assert_non_null(r);
    long long n = (long long)mysql_num_rows(r);
    mysql_free_result(r);
    return n;
}

/* Every adapter call leaves the connection in autocommit, no transaction
 * open, and usable. */
void ixa_assert_clean(MYSQL *c)
{
    imy_assert_clean(c);
    assert_int_equal(imy_int(c, "SELECT 1"), 1);
}

/* ---- the business SQL ---------------------------------------------------- */

trellis_barrier_business_rc_t ixa_add_fn(MYSQL *c, void *u, char *msg,
                                         size_t msglen)
{
    ixa_add_t *a = u;
    char sql[256];
    atomic_fetch_add(&a->calls, 1);
    snprintf(sql, sizeof sql,
             "UPDATE accounts SET balance = balance + %lld WHERE id = 1",
             a->amount);
    if (!a->log_only && mysql_query(c, sql) != 0)
        goto err;
    snprintf(sql, sizeof sql,
             "INSERT INTO effects (gid, delta) VALUES ('%s', %lld)", a->gid,
             a->amount);
    if (mysql_query(c, sql) != 0)
        goto err;
    if (a->killer) {
        snprintf(sql, sizeof sql, "KILL CONNECTION %lu", mysql_thread_id(c));
        if (mysql_query(a->killer, sql) != 0)
            goto err;
    }
    if (a->sleep_ms) {
        atomic_store(&a->inside, 1);
        harness_sleep_ms(a->sleep_ms);
    }
    if (a->after != TRELLIS_BARRIER_BUSINESS_OK)
        snprintf(msg, msglen, "injected %s",
                 a->after == TRELLIS_BARRIER_BUSINESS_FAIL ? "failure"
                                                           : "error");
    return a->after;
err:
    snprintf(msg, msglen, "%s", mysql_error(c));
    return TRELLIS_BARRIER_BUSINESS_ERROR;
}

trellis_barrier_branch_t ixa_branch(const char *gid, const char *op)
{
    trellis_barrier_branch_t b = {.trans_type = "xa",
                                  .gid = gid,
                                  .branch_id = "01",
                                  .op = op,
                                  .barrier_id = NULL};
    return b;
}

trellis_myxa_outcome_t ixa_prepare(MYSQL *c, ixa_add_t *a, char *msg,
                                   size_t msglen)
{
    trellis_barrier_branch_t b = ixa_branch(a->gid, "prepare");
    return trellis_myxa_prepare_branch(c, NULL, &b, ixa_add_fn, a, msg, msglen);
}

int ixa_commit(MYSQL *c, const char *gid, char *msg, size_t msglen)
{
    trellis_barrier_branch_t b = ixa_branch(gid, "commit");
    int rc = trellis_myxa_commit_branch(c, NULL, &b, msg, msglen);
    ixa_assert_clean(c);
    return rc;
}

int ixa_rollback(MYSQL *c, const char *gid, char *msg, size_t msglen)
{
    trellis_barrier_branch_t b = ixa_branch(gid, "rollback");
    int rc = trellis_myxa_rollback_branch(c, NULL, &b, msg, msglen);
    ixa_assert_clean(c);
    return rc;
}
