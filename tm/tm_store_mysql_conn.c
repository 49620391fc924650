/*
 * tm_store_mysql_conn: the MySQL engine's sessions and schema — the SQL
 * text buffer every statement is built in, opening a session and running
 * SQL on it, creating and upgrading the schema, the node lock (GET_LOCK:
 * two live processes cannot share a node id) and the server's packet
 * limit. Nothing here knows transactions; the other files of the engine
 * build on it.
 */
#include "tm_exit.h"
#include "tm_log.h"
#include "tm_store_mysql_impl.h"

#include <errno.h>
#include <mysqld_error.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION "6"

/* The subscriptions every node shares (schema version 4; topics in
 * tm_store_mysql_topics.c). Binary columns, as the other tables: topics
 * and targets compare and order byte for byte, as in SQLite. The widths
 * are tm_store.h's TM_STORE_*_MAX. */
#define SUBSCRIPTION_TABLE_SQL                                                 \
    "CREATE TABLE IF NOT EXISTS trellis_subscription ("                        \
    " topic VARBINARY(64) NOT NULL, target VARBINARY(510) NOT NULL,"           \
    " remark VARBINARY(256) NOT NULL, created_ms BIGINT NOT NULL,"             \
    " PRIMARY KEY (topic, target)"                                             \
    ") ENGINE=InnoDB"
_Static_assert(TM_STORE_TOPIC_MAX == 64 && TM_STORE_TARGET_MAX == 510 &&
                   TM_STORE_REMARK_MAX == 256,
               "trellis_subscription's columns must fit tm_store.h's limits");

/* ---- SQL text buffer -------------------------------------------------- */

static void sql_reserve(my_sql_t *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        tm_exit_oom("building SQL");
    b->p = p;
    b->cap = cap;
}

void my_sql_printf(my_sql_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sql_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* X'...' for bytes, NULL for a NULL pointer. */
void my_sql_hex(my_sql_t *b, const void *data, size_t len)
{
    if (!data) {
        my_sql_printf(b, "NULL");
        return;
    }
    static const char digits[] = "0123456789abcdef";
    sql_reserve(b, 3 + 2 * len);
    char *o = b->p + b->len;
    *o++ = 'X';
    *o++ = '\'';
    const unsigned char *d = data;
    for (size_t i = 0; i < len; i++) {
        *o++ = digits[d[i] >> 4];
        *o++ = digits[d[i] & 15];
    }
    *o++ = '\'';
    *o = '\0';
    b->len = (size_t)(o - b->p);
}

void my_sql_str(my_sql_t *b, const char *s)
{
    my_sql_hex(b, s, s ? strlen(s) : 0);
}

void my_sql_reset(my_sql_t *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

/* ---- connections ------------------------------------------------------ */

void my_error(MYSQL *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "mysql store: %s: %s (%u)", what,
             db ? mysql_error(db) : "no connection", db ? mysql_errno(db) : 0);
}

/* A writing session whose process stops in the middle of a transaction
 * (SIGSTOP, a VM paused, a thread starved) would keep its row locks, and
 * the other nodes' claims skip locked rows (SKIP LOCKED): what it was
 * writing could not be taken over until it woke. MariaDB's
 * idle_write_transaction_timeout ends such a transaction once it has
 * been idle for a lease: its locks go, and its commit fails when the
 * process wakes (the group is retried; ownership fences the rest). MySQL
 * has no such variable: the statement fails there and is ignored. */
static void bound_idle_transactions(MYSQL *db, int64_t lease_ms)
{
    char sql[96];
    long secs = (long)((lease_ms + 999) / 1000);
    snprintf(sql, sizeof(sql), "SET SESSION idle_write_transaction_timeout=%ld",
             secs > 0 ? secs : 1);
    if (mysql_query(db, sql) != 0)
        return; /* not MariaDB: nothing bounds it, as before */
}

/* A new session: READ COMMITTED (no gap locks between nodes), autocommit
 * as given, multi-statements and found-rows (an UPDATE that matches a row
 * counts it even when nothing changed). */
MYSQL *my_connect(my_store_t *m, int autocommit, char *err, size_t errlen)
{
    MYSQL *db = mysql_init(NULL);
    if (!db) {
        snprintf(err, errlen, "mysql store: out of memory");
        return NULL;
    }
    unsigned connect_timeout = 5, io_timeout = 30;
    mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    mysql_options(db, MYSQL_INIT_COMMAND,
                  "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    const char *sock = m->socket[0] ? m->socket : NULL;
    if (!mysql_real_connect(db, sock ? NULL : m->host, m->user,
                            m->password[0] ? m->password : NULL, NULL, m->port,
                            sock,
                            CLIENT_MULTI_STATEMENTS | CLIENT_FOUND_ROWS)) {
        snprintf(err, errlen, "mysql store: cannot connect to %s%s%u as %s: %s",
                 sock ? sock : m->host, sock ? "" : ":", sock ? 0 : m->port,
                 m->user, mysql_error(db));
        mysql_close(db);
        return NULL;
    }
    if (mysql_select_db(db, m->database) != 0 ||
        mysql_autocommit(db, autocommit ? 1 : 0) != 0) {
        my_error(db, "session setup", err, errlen);
        mysql_close(db);
        return NULL;
    }
    if (!autocommit)
        bound_idle_transactions(db, m->lease_ms);
    return db;
}

/* Run sql (one or more statements), discarding results; affected rows of
 * each statement go into counts[0..max) when counts is not NULL. Returns
 * the number of statement results read, or -1 (the connection's error
 * tells why). */
int my_run(MYSQL *db, const char *sql, size_t len, uint64_t *counts, int max)
{
    if (mysql_real_query(db, sql, (unsigned long)len) != 0)
        return -1;
    int n = 0;
    for (;;) {
        MYSQL_RES *res = mysql_store_result(db);
        if (res) {
            mysql_free_result(res);
        } else if (mysql_field_count(db) != 0) {
            return -1;
        } else if (counts && n < max) {
            counts[n] = mysql_affected_rows(db);
        }
        n++;
        int more = mysql_next_result(db);
        if (more > 0)
            return -1;
        if (more < 0)
            return n;
    }
}

int my_exec(MYSQL *db, const char *sql)
{
    return my_run(db, sql, strlen(sql), NULL, 0) < 0 ? -1 : 0;
}

/* ---- schema ----------------------------------------------------------- */

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS trellis_meta ("
    " k VARCHAR(64) NOT NULL PRIMARY KEY, v VARCHAR(255) NOT NULL"
    ") ENGINE=InnoDB;"
    "CREATE TABLE IF NOT EXISTS trellis_trans ("
    " gid VARBINARY(64) NOT NULL PRIMARY KEY,"
    " status TINYINT NOT NULL,"
    " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
    " finished_ms BIGINT NOT NULL DEFAULT 0,"
    " reason BLOB NULL,"
    " submit_hash BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " options BLOB NULL,"
    " owner VARBINARY(64) NULL,"
    " lease_ms BIGINT NULL,"
    " generation BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " origin VARBINARY(64) NULL,"
    " KEY trans_by_created (created_ms, gid),"
    " KEY trans_by_status (status, created_ms, gid),"
    " KEY trans_by_lease (lease_ms)"
    ") ENGINE=InnoDB;"
    "CREATE TABLE IF NOT EXISTS trellis_branch ("
    " gid VARBINARY(64) NOT NULL, idx INT NOT NULL,"
    " branch_id VARBINARY(64) NOT NULL,"
    " mode TINYINT NOT NULL, initiator_driven TINYINT NOT NULL,"
    " payload MEDIUMBLOB NULL, depends_on BLOB NOT NULL,"
    " kind0 TINYINT NOT NULL, target0 BLOB NULL,"
    " kind1 TINYINT NOT NULL, target1 BLOB NULL,"
    " kind2 TINYINT NOT NULL, target2 BLOB NULL,"
    " pivot TINYINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (gid, idx)"
    ") ENGINE=InnoDB;"
    "CREATE TABLE IF NOT EXISTS trellis_op ("
    " gid VARBINARY(64) NOT NULL, idx INT NOT NULL, slot TINYINT NOT NULL,"
    " status TINYINT NOT NULL, attempts INT UNSIGNED NOT NULL,"
    " last_error BLOB NULL, attempt_ms BLOB NULL,"
    " finished_ms BIGINT NOT NULL, late TINYINT NOT NULL DEFAULT 0,"
    " recorded TINYINT NOT NULL DEFAULT 0, result MEDIUMBLOB NULL,"
    " result_size BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " PRIMARY KEY (gid, idx, slot)"
    ") ENGINE=InnoDB;" SUBSCRIPTION_TABLE_SQL ";"
    "INSERT IGNORE INTO trellis_meta (k, v) VALUES ('schema', "
    "'" SCHEMA_VERSION "');";

/* The database's schema version: "" when it has none yet. */
static int read_schema_version(MYSQL *db, char *out, size_t outlen, char *err,
                               size_t errlen)
{
    out[0] = '\0';
    if (mysql_query(db, "SELECT COUNT(*) FROM information_schema.tables"
                        " WHERE table_schema = DATABASE()"
                        " AND table_name = 'trellis_meta'") != 0)
        goto fail;
    MYSQL_RES *res = mysql_store_result(db);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    int has_meta = row && row[0] && atoi(row[0]) > 0;
    mysql_free_result(res);
    if (!has_meta)
        return 0;
    if (mysql_query(db, "SELECT v FROM trellis_meta WHERE k = 'schema'") != 0)
        goto fail;
    res = mysql_store_result(db);
    row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[0])
        snprintf(out, outlen, "%s", row[0]);
    mysql_free_result(res);
    return 0;
fail:
    my_error(db, "reading the schema version", err, errlen);
    return -1;
}

int my_ensure_database(my_store_t *m, char *err, size_t errlen)
{
    MYSQL *db = mysql_init(NULL);
    unsigned connect_timeout = 5;
    mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    const char *sock = m->socket[0] ? m->socket : NULL;
    if (!mysql_real_connect(db, sock ? NULL : m->host, m->user,
                            m->password[0] ? m->password : NULL, NULL, m->port,
                            sock, 0)) {
        snprintf(err, errlen, "mysql store: cannot connect to %s%s%u as %s: %s",
                 sock ? sock : m->host, sock ? "" : ":", sock ? 0 : m->port,
                 m->user, mysql_error(db));
        mysql_close(db);
        return -1;
    }
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE IF NOT EXISTS `%s`",
             m->database);
    int rc = mysql_query(db, sql);
    if (rc != 0)
        my_error(db, "creating the database", err, errlen);
    mysql_close(db);
    return rc ? -1 : 0;
}

/* The statement that upgrades schema version v to v + 1 (index v - 1).
 * 1 -> 2: the fencing token (generation, bumped by every claim) and the
 * inserting node (origin). 2 -> 3: an op's recorded result (workflow
 * steps: recorded, result). 3 -> 4: the subscription table (topics).
 * 4 -> 5: a branch's pivot flag and an op's result_size (the full size
 * of a reply whose first bytes result keeps: issue 16's compensation
 * log); IF NOT EXISTS, so a node that meets another node's upgrade
 * halfway (two tables, two statements) completes it. 5 -> 6: the index a
 * List by status pages through (trans_by_status: a page costs the same
 * however many transactions of other statuses there are); IF NOT EXISTS
 * for the same reason. */
static const char *const upgrade_sql[] = {
    "ALTER TABLE trellis_trans ADD COLUMN generation BIGINT UNSIGNED NOT NULL"
    " DEFAULT 0, ADD COLUMN origin VARBINARY(64) NULL",
    "ALTER TABLE trellis_op ADD COLUMN recorded TINYINT NOT NULL DEFAULT 0,"
    " ADD COLUMN result MEDIUMBLOB NULL",
    SUBSCRIPTION_TABLE_SQL,
    "ALTER TABLE trellis_branch ADD COLUMN IF NOT EXISTS pivot TINYINT NOT"
    " NULL DEFAULT 0;"
    "ALTER TABLE trellis_op ADD COLUMN IF NOT EXISTS result_size BIGINT"
    " UNSIGNED NOT NULL DEFAULT 0",
    "ALTER TABLE trellis_trans ADD INDEX IF NOT EXISTS trans_by_status"
    " (status, created_ms, gid)",
};

/* Upgrade schema version from to from + 1, then read the version again
 * into version[len]. Two nodes upgrading at once: the second one's ALTER
 * finds the columns there (one ALTER adds all of them or none), or its
 * CREATE TABLE IF NOT EXISTS the table, and it reads again. */
static int upgrade_schema(MYSQL *db, int from, char *version, size_t len,
                          char *err, size_t errlen)
{
    char what[64], sql[128];
    snprintf(what, sizeof(what), "upgrading the schema from version %d", from);
    snprintf(sql, sizeof(sql),
             "UPDATE trellis_meta SET v = '%d' WHERE k = 'schema'"
             " AND v = '%d'",
             from + 1, from);
    if ((my_exec(db, upgrade_sql[from - 1]) != 0 &&
         mysql_errno(db) != ER_DUP_FIELDNAME) ||
        my_exec(db, sql) != 0) {
        my_error(db, what, err, errlen);
        return -1;
    }
    tm_log(TM_LOG_INFO, "event=store_schema_upgraded from=%d to=%d", from,
           from + 1);
    return read_schema_version(db, version, len, err, errlen);
}

int my_create_schema(my_store_t *m, MYSQL *db, char *err, size_t errlen)
{
    char version[64];
    if (read_schema_version(db, version, sizeof(version), err, errlen) != 0)
        return -1;
    for (int from = 1; from < atoi(SCHEMA_VERSION); from++)
        if (tm_store_schema_is(version, from) &&
            upgrade_schema(db, from, version, sizeof(version), err, errlen))
            return -1;
    if (version[0] && strcmp(version, SCHEMA_VERSION) != 0) {
        snprintf(err, errlen,
                 "mysql store: database %s has schema version %s; this "
                 "trellisd knows version " SCHEMA_VERSION " only",
                 m->database, version);
        return -1;
    }
    if (my_exec(db, schema_sql) != 0) {
        my_error(db, "creating the schema", err, errlen);
        return -1;
    }
    return 0;
}

/* ---- the node lock ---------------------------------------------------- */

void my_node_lock_name(const my_store_t *m, my_sql_t *b)
{
    my_sql_printf(b, "CONCAT('trellis-', SHA1(CONCAT(DATABASE(), '/', ");
    my_sql_str(b, m->node_id);
    my_sql_printf(b, ")))");
}

/* Take the node lock on db, waiting up to wait_s for a dead predecessor's
 * session to go away. Returns 0, or -1 with err. */
int my_take_node_lock(my_store_t *m, MYSQL *db, int wait_s, char *err,
                      size_t errlen)
{
    my_sql_t b = {0};
    my_sql_printf(&b, "SELECT GET_LOCK(");
    my_node_lock_name(m, &b);
    my_sql_printf(&b, ", %d)", wait_s);
    int rc = mysql_real_query(db, b.p, (unsigned long)b.len);
    free(b.p);
    if (rc != 0) {
        my_error(db, "taking the node lock", err, errlen);
        return -1;
    }
    MYSQL_RES *res = mysql_store_result(db);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    int got = row && row[0] && strcmp(row[0], "1") == 0;
    mysql_free_result(res);
    if (got)
        m->lock_session = mysql_thread_id(db);
    else {
        snprintf(err, errlen,
                 "mysql store: node id \"%s\" is in use by another live "
                 "trellisd on database %s; give each node its own --node-id",
                 m->node_id, m->database);
        return -1;
    }
    return 0;
}

void my_sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Size the writer's statements to the server's packet limit. */
void my_read_packet_limit(my_store_t *m)
{
    m->flush_bytes = FLUSH_BYTES;
    if (!m->packet_bytes)
        m->packet_bytes = 16u << 20; /* the servers' default */
    if (mysql_query(m->wdb, "SELECT @@max_allowed_packet") != 0)
        return;
    MYSQL_RES *res = mysql_store_result(m->wdb);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    size_t limit = row && row[0] ? strtoull(row[0], NULL, 10) : 0;
    mysql_free_result(res);
    if (limit > 2 * PACKET_SLACK)
        m->packet_bytes = limit;
    if (limit / 4 > 0 && limit / 4 < m->flush_bytes)
        m->flush_bytes = limit / 4;
}
