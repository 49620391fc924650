/*
 * store_mysql_fixture: the MySQL store's tests' shared fixture (see
 * store_mysql_fixture.c). For cmocka: the helpers fail the running test
 * instead of returning errors, except smy_open_node. One fixture per
 * process, started from the group setup and stopped from its teardown.
 */
#ifndef STORE_MYSQL_FIXTURE_H
#define STORE_MYSQL_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <mysql.h>

#include "harness.h"
#include "tm_store.h"

/* A harness named name with its MariaDB "db"; 0, or -1. */
int smy_start(const char *name);
/* Stop it all and free the harness; 0. */
int smy_stop(void);
/* The MariaDB server. */
harness_mariadb_t *smy_db(void);

/* The store of database as node, or NULL with err (the caller closes
 * it: tm_store_close). */
tm_store_t *smy_open_node(const char *database, const char *node,
                          uint32_t lease_ms, char *err, size_t errlen);
/* The same; the test fails when it cannot be opened. */
tm_store_t *smy_must_open(const char *database, const char *node,
                          uint32_t lease_ms);
/* A submitted two-step saga created at created (the caller's:
 * tm_trans_free). */
tm_trans_t *smy_saga(const char *gid, int64_t created);
/* A write's done callback that counts writes and keeps the last result;
 * the count and that result. */
void smy_note(void *arg, tm_write_result_t r);
int smy_writes_done(void);
tm_write_result_t smy_last_result(void);
/* Queue one write of tx and wait for its commit; returns its result. */
tm_write_result_t smy_write_now(tm_store_t *s, tm_trans_t *tx, int insert);

/* A root session on the server (the caller closes it), and one statement
 * on it that must succeed. */
MYSQL *smy_root_session(void);
void smy_run_sql(MYSQL *c, const char *sql);
/* The schema version stored in database, in out[32]; returns out. */
const char *smy_schema_version(MYSQL *c, const char *database, char *out);

/* n bytes holding every byte value, NUL and 0xff first (the caller's:
 * free). */
uint8_t *smy_pattern(size_t n);
/* op as a workflow step's recorded result of bytes[len]. */
void smy_record(tm_op_t *op, const uint8_t *bytes, size_t len);
void smy_assert_result(const tm_op_t *op, const uint8_t *bytes, size_t len);
void smy_assert_no_result(const tm_op_t *op);

#endif /* STORE_MYSQL_FIXTURE_H */
