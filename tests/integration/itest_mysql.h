/*
 * itest_mysql: what the integration tests against a real MariaDB share
 * (test_barrier*.c, test_xa*.c) — one harness and one throwaway MariaDB
 * server per run of a test file, per-test pass tracking for cmocka, and
 * the SQL helpers those tests repeat (connect, run a statement, read a
 * number, a fresh database with the accounts / effects / barrier tables).
 *
 * Use with cmocka: call imy_start(name) from the group setup and
 * imy_finish() from the group teardown; register each test with
 * imy_test_setup / imy_test_teardown and end it with imy_pass(). A test
 * that does not reach imy_pass() keeps the scratch dir for its logs.
 *
 * The helpers assert (cmocka) on failure instead of returning errors,
 * except imy_try_connect. The fixture is one process-wide state: start and
 * finish it from the test's thread; the connect helpers may be called from
 * any thread once it is started (each connection then belongs to its
 * caller, who closes it with mysql_close).
 */
#ifndef TRELLIS_ITEST_MYSQL_H
#define TRELLIS_ITEST_MYSQL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <mysql.h>

#include "harness.h"

/* ---- the fixture ------------------------------------------------------- */

/* mysql_library_init, a harness named name and its MariaDB server "db".
 * Returns 0, or -1 (for a cmocka group setup). */
int imy_start(const char *name);

/* Stop the server and every process the harness started, and free the
 * harness: its scratch dir is removed only if every test passed and no
 * process had died on its own. Returns 0 then, otherwise -1. */
int imy_finish(void);

/* cmocka per-test setup and teardown: a test that did not call imy_pass()
 * marks the run failed. */
int imy_test_setup(void **state);
int imy_test_teardown(void **state);

/* The running test reached its end. */
void imy_pass(void);

/* The harness of imy_start, for starting other processes (trellisd). */
harness_t *imy_harness(void);

/* Shut the server down cleanly and start it again on the same data dir
 * (a prepared XA branch survives it); existing connections are lost.
 * Fails the test if it does not come back. */
void imy_restart_server(void);

/* ---- SQL helpers ------------------------------------------------------- */

/* A connection as root to database db (NULL: none) over the server's
 * socket, or NULL. */
MYSQL *imy_try_connect(const char *db);

/* The same, failing the test when it cannot connect. */
MYSQL *imy_connect(const char *db);

/* Run one statement (printf format, at most 1023 characters), failing the
 * test on an error. */
void imy_exec(MYSQL *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The first column of the first row as an integer (NULL or no row: 0). */
long long imy_int(MYSQL *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A fresh database `name` (dropped first if it exists) with
 *   accounts (id INT PRIMARY KEY, <account_cols>) ENGINE=InnoDB holding
 *     one row VALUES (<row1>),
 *   effects (id, gid, delta): a log the tests count effects in,
 *   and the default barrier table;
 * returns a connection to it. */
MYSQL *imy_setup_db(const char *name, const char *account_cols,
                    const char *row1);

/* The balance of account 1. */
long long imy_balance(MYSQL *c);

/* The connection is in autocommit with no transaction open. */
void imy_assert_clean(MYSQL *c);

/* A server status counter: `SHOW <scope> STATUS LIKE 'name'`, scope
 * "SESSION" or "GLOBAL" (the SHOW itself counts as one question). */
long long imy_status(MYSQL *c, const char *scope, const char *name);

/* A measured cost per op (e.g. statements) is at least 1 (it was counted
 * at all) and at most bound; prints it either way. */
void imy_assert_cost(const char *what, double per_op, double bound);

#endif
