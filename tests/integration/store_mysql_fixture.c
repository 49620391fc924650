/*
 * store_mysql_fixture: what the MySQL store's tests share
 * (test_store_mysql.c, test_store_mysql_schema.c) — one harness with one
 * throwaway MariaDB per test program, stores opened as nodes of it, a
 * two-step saga to write, a write waited for, root SQL, and recorded
 * results to compare byte for byte.
 */
#include "store_mysql_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static harness_t *h;
static harness_mariadb_t *server;

int smy_start(const char *name)
{
    h = harness_new(name);
    server = h ? harness_mariadb_start(h, "db") : NULL;
    return server ? 0 : -1;
}

int smy_stop(void)
{
    harness_free(h, 1);
    return 0;
}

harness_mariadb_t *smy_db(void)
{
    return server;
}

tm_store_t *smy_open_node(const char *database, const char *node,
                          uint32_t lease_ms, char *err, size_t errlen)
{
    tm_store_config_t cfg;
    tm_store_config_default(&cfg);
    cfg.kind = TM_STORE_MYSQL;
    cfg.mysql_socket = harness_mariadb_socket(server);
    cfg.mysql_database = database;
    cfg.node_id = node;
    cfg.lease_ms = lease_ms;
    cfg.retention_ms = 0;
    tm_store_t *s = NULL;
    if (tm_store_open(&cfg, &s, err, errlen) != 0)
        return NULL;
    return s;
}

tm_store_t *smy_must_open(const char *database, const char *node,
                          uint32_t lease_ms)
{
    char err[512];
    tm_store_t *s = smy_open_node(database, node, lease_ms, err, sizeof err);
    if (!s)
        fail_msg("open %s/%s: %s", database, node, err);
    return s;
}

tm_trans_t *smy_saga(const char *gid, int64_t created)
{
    tm_trans_t *tx = tm_trans_new(gid, TM_TX_SUBMITTED, created);
    tx->submit_hash = 7;
    for (int i = 0; i < 2; i++) {
        tm_branch_t *b = tm_trans_add_branch(tx);
        b->branch_id = tm_strdup(i ? "02" : "01");
        b->mode = TM_MODE_SAGA;
        b->payload = (uint8_t *)tm_strdup("p\001y");
        b->payload_len = 3;
        b->ops[TM_SLOT_FORWARD].kind = TM_KIND_ACTION;
        b->ops[TM_SLOT_FORWARD].target = tm_strdup("h:1/p.S/A");
        b->ops[TM_SLOT_ROLLBACK].kind = TM_KIND_COMPENSATE;
        b->ops[TM_SLOT_ROLLBACK].target = tm_strdup("h:1/p.S/C");
    }
    return tx;
}

static tm_write_result_t last_result;
static int n_done;

void smy_note(void *arg, tm_write_result_t r)
{
    (void)arg;
    last_result = r;
    n_done++;
}

/* Queue one write and wait for its commit; returns its result. */
tm_write_result_t smy_write_now(tm_store_t *s, tm_trans_t *tx, int insert)
{
    tm_write_t *w = tm_write_capture_all(tx, insert);
    assert_non_null(w);
    int before = n_done;
    tm_store_queue(s, w, smy_note, NULL);
    tm_store_flush(s);
    assert_int_equal(n_done, before + 1);
    return last_result;
}

MYSQL *smy_root_session(void)
{
    MYSQL *c = mysql_init(NULL);
    if (!mysql_real_connect(c, NULL, "root", NULL, NULL, 0,
                            harness_mariadb_socket(server), 0))
        fail_msg("connect: %s", mysql_error(c));
    return c;
}

void smy_run_sql(MYSQL *c, const char *sql)
{
    if (mysql_query(c, sql) != 0)
        fail_msg("%s: %s", sql, mysql_error(c));
}

/* The schema version stored in database, in out[32]. */
const char *smy_schema_version(MYSQL *c, const char *database, char *out)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT v FROM %s.trellis_meta WHERE k='schema'",
             database);
    smy_run_sql(c, sql);
    MYSQL_RES *res = mysql_store_result(c);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    assert_non_null(row);
    snprintf(out, 32, "%s", row[0] ? row[0] : "");
    mysql_free_result(res);
    return out;
}

/* n bytes that hold every byte value, NUL and 0xff first (the caller's). */
uint8_t *smy_pattern(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i % 2 ? 0xff - i / 2 : i / 2);
    return p;
}

/* The op's result becomes a copy of bytes[len], recorded. */

void smy_record(tm_op_t *op, const uint8_t *bytes, size_t len)
{
    op->status = TM_OP_SUCCEEDED;
    op->recorded = 1;
    op->result = malloc(len);
    assert_non_null(op->result);
    memcpy(op->result, bytes, len);
    op->result_len = len;
}

void smy_assert_result(const tm_op_t *op, const uint8_t *bytes, size_t len)
{
    assert_int_equal(op->recorded, 1);
    assert_int_equal(op->result_len, len);
    assert_memory_equal(op->result, bytes, len);
}

void smy_assert_no_result(const tm_op_t *op)
{
    assert_int_equal(op->recorded, 0);
    assert_null(op->result);
    assert_int_equal(op->result_len, 0);
}

int smy_writes_done(void)
{
    return n_done;
}

tm_write_result_t smy_last_result(void)
{
    return last_result;
}
