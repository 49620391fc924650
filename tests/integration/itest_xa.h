/*
 * itest_xa: what the tests of the MySQL XA adapter (rm-adapters/mysql-xa)
 * share — test_xa.c (prepare, phase 2, xids, cost), test_xa_crash.c
 * (participants gone after the prepare) and test_xa_recovery.c (the
 * recovery sweep against trellisd): the database of a test, the business
 * SQL the branches run, and the adapter's calls on branch 01 of a gid.
 * Over itest_mysql (one MariaDB per run of a test file).
 *
 * Business SQL: add to accounts row 1 and log the change in effects(gid);
 * tests count effects by reading those tables.
 *
 * The helpers assert (cmocka) on failure, like itest_mysql's.
 */
#ifndef TRELLIS_ITEST_XA_H
#define TRELLIS_ITEST_XA_H

#include <stdatomic.h>
#include <stddef.h>

#include "itest_mysql.h"
#include "trellis/mysql_xa.h"

/* ---- the database of a test ---------------------------------------------- */

/* A fresh database `name` with accounts (id 1: balance 100), an effects
 * log and the default barrier table; returns a connection to it. */
MYSQL *ixa_setup_db(const char *name);

/* The effects logged for gid. */
long long ixa_effects(MYSQL *c, const char *gid);

/* XA RECOVER rows whose gtrid is gtrid, whatever their bqual and format
 * (the adapter's legacy form, or its cluster form with the TM cluster's
 * id in the bqual). */
int ixa_recovered(MYSQL *c, const char *gtrid);

/* Every XA RECOVER row. */
long long ixa_count(MYSQL *c);

/* Every adapter call leaves the connection in autocommit, no transaction
 * open, and usable. */
void ixa_assert_clean(MYSQL *c);

/* ---- the business SQL ---------------------------------------------------- */

typedef struct {
    const char *gid;
    long long amount;
    atomic_int calls;
    atomic_int inside; /* set while the handler sleeps */
    int sleep_ms;      /* after its SQL */
    MYSQL *killer;     /* KILL CONNECTION the handler's own connection */
    trellis_barrier_business_rc_t after; /* answered after the SQL */
    int log_only; /* only the effects row: branches do not queue on the
                     account row's lock */
} ixa_add_t;

/* The handler: add a->amount to account 1 and log it (u is an ixa_add_t). */
trellis_barrier_business_rc_t ixa_add_fn(MYSQL *c, void *u, char *msg,
                                         size_t msglen);

/* ---- the adapter on branch 01 -------------------------------------------- */

/* Branch 01 of gid (trans type "xa") for op. */
trellis_barrier_branch_t ixa_branch(const char *gid, const char *op);

/* Prepare a's branch with ixa_add_fn. */
trellis_myxa_outcome_t ixa_prepare(MYSQL *c, ixa_add_t *a, char *msg,
                                   size_t msglen);

/* Commit or roll back gid's branch; the connection is then checked clean. */
int ixa_commit(MYSQL *c, const char *gid, char *msg, size_t msglen);
int ixa_rollback(MYSQL *c, const char *gid, char *msg, size_t msglen);

/* The same, into the caller's `char msg[256]`. */
#define IXA_PREPARE(c, a) ixa_prepare((c), (a), msg, sizeof msg)
#define IXA_COMMIT(c, gid) ixa_commit((c), (gid), msg, sizeof msg)
#define IXA_ROLLBACK(c, gid) ixa_rollback((c), (gid), msg, sizeof msg)

#endif /* TRELLIS_ITEST_XA_H */
