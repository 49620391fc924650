/*
 * tm_store_mysql: the storage engine many trellisd nodes share, on
 * MySQL/MariaDB through libmariadb (see tm_store.h for the contract and
 * docs/architecture.md for the schema and the lease rules).
 *
 * Connections:
 *  - the writer, used only by the store thread. A group of writes costs two
 *    round trips: (1) the inserts and the fenced header updates, whose
 *    per-statement row counts say which transactions this node still owns;
 *    (2) the branch and op rows of the owned ones, and COMMIT. If the
 *    connection fails the group is applied again on a new connection; every
 *    statement is idempotent, so a commit whose answer was lost is harmless.
 *  - a few readers (peek, get, list), each under its own mutex;
 *  - the lease connection, used only by the lease thread: it holds the node
 *    lock (GET_LOCK, so two live processes cannot share a node id), renews
 *    this node's leases, claims expired ones from other nodes and deletes
 *    old finished transactions.
 *
 * Times that decide ownership (lease_ms) come from the database's clock, so
 * nodes never compare their own clocks. Values go into SQL as hex literals:
 * no escaping, no character-set surprises.
 */
#include "tm_store_impl.h"
#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_timer.h"

#include <errno.h>
#include <inttypes.h>
#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION "2"
#define N_READERS 4
/* Send what a group has built once its SQL passes this size (or a quarter
 * of the server's max_allowed_packet, if that is smaller). */
#define FLUSH_BYTES (4u << 20)
/* Room a statement keeps below max_allowed_packet for its SQL around the
 * row values, and what a branch payload may take of the rest (it goes in
 * hex: two bytes a byte) — the bound tm_store_max_payload reports. */
#define PACKET_SLACK (64u << 10)
#define MEDIUMBLOB_MAX 16777215u
/* Transactions claimed per statement, and finished ones purged. */
#define CLAIM_BATCH 32
#define CLAIM_ROUNDS 16
#define PURGE_BATCH 500
/* Time a purge may take per second, so retention never starves writes. */
#define PURGE_BUDGET_MS 300

#define DB_NOW "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"

/* ---- SQL text buffer -------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} sql_buf_t;

static void sb_reserve(sql_buf_t *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "trellisd: out of memory building SQL\n");
        _exit(71);
    }
    b->p = p;
    b->cap = cap;
}

static void sb_printf(sql_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(sql_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* X'...' for bytes, NULL for a NULL pointer. */
static void sb_hex(sql_buf_t *b, const void *data, size_t len)
{
    if (!data) {
        sb_printf(b, "NULL");
        return;
    }
    static const char digits[] = "0123456789abcdef";
    sb_reserve(b, 3 + 2 * len);
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

static void sb_str(sql_buf_t *b, const char *s)
{
    sb_hex(b, s, s ? strlen(s) : 0);
}

static void sb_reset(sql_buf_t *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

/* ---- the engine's state ----------------------------------------------- */

typedef struct {
    MYSQL *db;
    pthread_mutex_t mu;
} reader_t;

typedef struct {
    tm_store_t *store;
    char host[256], socket[1024], user[128], password[256], database[128];
    char node_id[64];
    unsigned port;
    int64_t lease_ms;

    MYSQL *wdb; /* store thread only */
    sql_buf_t wsql;
    size_t flush_bytes;  /* see FLUSH_BYTES */
    size_t packet_bytes; /* the server's max_allowed_packet (writer) */
    size_t oversize;     /* a statement this large was not sent (0: none) */
    reader_t readers[N_READERS];
    atomic_uint next_reader;
    MYSQL *ldb;                 /* lease thread (and open) only */
    unsigned long lock_session; /* server session that took the node lock */

    /* Monotonic ms until which every lease of this node is surely valid. */
    _Atomic int64_t valid_until;
    atomic_int released;

    pthread_mutex_t lmu;
    pthread_cond_t lcv;
    int stopping;      /* under lmu */
    int hooks_set;     /* under lmu */
    int lapse_pending; /* under lmu: a lapse before the hooks were set */
    tm_store_owner_hooks_t hooks;
    int lease_thread_started;
    pthread_t lease_thread;
} my_store_t;

/* ---- connections ------------------------------------------------------ */

static void my_error(MYSQL *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "mysql store: %s: %s (%u)", what,
             db ? mysql_error(db) : "no connection", db ? mysql_errno(db) : 0);
}

/* A new session: READ COMMITTED (no gap locks between nodes), autocommit
 * as given, multi-statements and found-rows (an UPDATE that matches a row
 * counts it even when nothing changed). */
static MYSQL *my_connect(my_store_t *m, int autocommit, char *err,
                         size_t errlen)
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
    return db;
}

/* Run sql (one or more statements), discarding results; affected rows of
 * each statement go into counts[0..max) when counts is not NULL. Returns
 * the number of statement results read, or -1 (the connection's error
 * tells why). */
static int my_run(MYSQL *db, const char *sql, size_t len, uint64_t *counts,
                  int max)
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

static int my_exec(MYSQL *db, const char *sql)
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
    " PRIMARY KEY (gid, idx)"
    ") ENGINE=InnoDB;"
    "CREATE TABLE IF NOT EXISTS trellis_op ("
    " gid VARBINARY(64) NOT NULL, idx INT NOT NULL, slot TINYINT NOT NULL,"
    " status TINYINT NOT NULL, attempts INT UNSIGNED NOT NULL,"
    " last_error BLOB NULL, attempt_ms BLOB NULL,"
    " finished_ms BIGINT NOT NULL, late TINYINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (gid, idx, slot)"
    ") ENGINE=InnoDB;"
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

static int ensure_database(my_store_t *m, char *err, size_t errlen)
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

/* Schema 1 -> 2: the fencing token (generation, bumped by every claim)
 * and the inserting node (origin). Two nodes upgrading at once: the
 * second one's ALTER finds the columns there, and it reads again. */
static int upgrade_schema_1(MYSQL *db, char *version, size_t len, char *err,
                            size_t errlen)
{
    if (my_exec(db, "ALTER TABLE trellis_trans ADD COLUMN generation"
                    " BIGINT UNSIGNED NOT NULL DEFAULT 0, ADD COLUMN origin"
                    " VARBINARY(64) NULL") != 0 &&
        mysql_errno(db) != ER_DUP_FIELDNAME) {
        my_error(db, "upgrading the schema from version 1", err, errlen);
        return -1;
    }
    if (my_exec(db, "UPDATE trellis_meta SET v = '2' WHERE k = 'schema'") !=
        0) {
        my_error(db, "upgrading the schema from version 1", err, errlen);
        return -1;
    }
    tm_log(TM_LOG_INFO, "event=store_schema_upgraded from=1 to=2");
    return read_schema_version(db, version, len, err, errlen);
}

static int create_schema(my_store_t *m, MYSQL *db, char *err, size_t errlen)
{
    char version[64];
    if (read_schema_version(db, version, sizeof(version), err, errlen) != 0)
        return -1;
    if (strcmp(version, "1") == 0 &&
        upgrade_schema_1(db, version, sizeof(version), err, errlen) != 0)
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

static void node_lock_name(const my_store_t *m, sql_buf_t *b)
{
    sb_printf(b, "CONCAT('trellis-', SHA1(CONCAT(DATABASE(), '/', ");
    sb_str(b, m->node_id);
    sb_printf(b, ")))");
}

/* Take the node lock on db, waiting up to wait_s for a dead predecessor's
 * session to go away. Returns 0, or -1 with err. */
static int take_node_lock(my_store_t *m, MYSQL *db, int wait_s, char *err,
                          size_t errlen)
{
    sql_buf_t b = {0};
    sb_printf(&b, "SELECT GET_LOCK(");
    node_lock_name(m, &b);
    sb_printf(&b, ", %d)", wait_s);
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

/* ---- writing a group (store thread) ----------------------------------- */

/* my_run on the writer, unless the statements are larger than the server
 * takes: it would answer by closing the connection ("gone away", which
 * looks like an outage), so they are not sent and m->oversize says so. */
static int writer_run(my_store_t *m, const sql_buf_t *b, uint64_t *counts,
                      int max)
{
    if (b->len > m->packet_bytes) {
        m->oversize = b->len;
        return -1;
    }
    return my_run(m->wdb, b->p, b->len, counts, max);
}

static void append_insert_values(sql_buf_t *b, const my_store_t *m,
                                 const tm_write_t *w)
{
    sb_printf(b, "(");
    sb_str(b, w->gid);
    sb_printf(b, ",%d,%" PRId64 ",%" PRId64 ",%" PRId64 ",", w->status,
              w->created_ms, w->updated_ms, w->finished_ms);
    sb_str(b, w->reason);
    sb_printf(b, ",%" PRIu64 ",", w->submit_hash);
    sb_hex(b, w->options ? w->options : (const uint8_t *)"", w->options_len);
    sb_printf(b, ",");
    sb_str(b, m->node_id);
    if (tm_store_status_is_final(w->status))
        sb_printf(b, ",NULL,");
    else
        sb_printf(b, ",@now+%" PRId64 ",", m->lease_ms);
    sb_str(b, m->node_id);
    sb_printf(b, ")");
}

static void append_header_update(sql_buf_t *b, const my_store_t *m,
                                 const tm_write_t *w)
{
    sb_printf(b,
              "UPDATE trellis_trans SET status=%d, updated_ms=%" PRId64
              ", finished_ms=%" PRId64 ", reason=",
              w->status, w->updated_ms, w->finished_ms);
    sb_str(b, w->reason);
    sb_printf(b, ", submit_hash=%" PRIu64, w->submit_hash);
    if (tm_store_status_is_final(w->status))
        sb_printf(b, ", lease_ms=NULL");
    sb_printf(b, " WHERE gid=");
    sb_str(b, w->gid);
    sb_printf(b, " AND owner=");
    sb_str(b, m->node_id);
    /* The fence: this node owns the row under the same claim its copy was
     * loaded under (ownership that went A -> B -> A leaves A's old copy
     * with an older generation). */
    sb_printf(b, " AND generation=%" PRIu64, w->generation);
    /* A final row is never rewritten (a stale copy gets LOST); the same
     * write applied again after a lost COMMIT still matches. */
    sb_printf(
        b, " AND (status < %d OR (status = %d AND updated_ms = %" PRId64 "));",
        TM_TX_SUCCEEDED, w->status, w->updated_ms);
}

/* After a retried group: an insert that found its gid stored is this
 * node's own insert from the earlier attempt (whose answer was lost) when
 * the row matches it exactly; otherwise the gid was stored before. The
 * row is matched by the node that inserted it, not by its owner: after an
 * outage longer than the lease another node may own it by now (this
 * node's copy then finds out with its next write, fenced by generation). */
static int own_earlier_insert(my_store_t *m, const tm_write_t *w)
{
    sql_buf_t b = {0};
    sb_printf(&b, "SELECT COUNT(*) FROM trellis_trans WHERE gid=");
    sb_str(&b, w->gid);
    sb_printf(&b, " AND origin=");
    sb_str(&b, m->node_id);
    sb_printf(&b, " AND created_ms=%" PRId64 " AND submit_hash=%" PRIu64,
              w->created_ms, w->submit_hash);
    int rc = mysql_real_query(m->wdb, b.p, (unsigned long)b.len);
    free(b.p);
    MYSQL_RES *res = rc == 0 ? mysql_store_result(m->wdb) : NULL;
    if (!res)
        return -1;
    MYSQL_ROW row = mysql_fetch_row(res);
    int own = row && row[0] && strcmp(row[0], "1") == 0;
    mysql_free_result(res);
    return own;
}

static void append_insert(sql_buf_t *b, const my_store_t *m,
                          const tm_write_t *w)
{
    sb_printf(b, "INSERT IGNORE INTO trellis_trans (gid, status, created_ms,"
                 " updated_ms, finished_ms, reason, submit_hash, options,"
                 " owner, lease_ms, origin) VALUES ");
    append_insert_values(b, m, w);
    sb_printf(b, ";");
}

/* Run the header statements built in wsql (a SET @now, then one statement
 * per write of [first, end), count of them) and turn each one's row count
 * into its write's result. */
static int run_header_chunk(my_store_t *m, tm_write_t *first,
                            const tm_write_t *end, size_t count, int retried)
{
    sql_buf_t *b = &m->wsql;
    uint64_t *counts = calloc(count + 1, sizeof(*counts));
    if (!counts)
        return -1;
    int rc =
        writer_run(m, b, counts, (int)count + 1) == (int)count + 1 ? 0 : -1;
    size_t i = 1;
    for (tm_write_t *w = first; rc == 0 && w != end; w = w->next, i++) {
        w->result = TM_WRITE_DONE;
        if (counts[i] != 0)
            continue;
        if (!w->insert) {
            w->result = TM_WRITE_LOST;
            continue;
        }
        int own = retried ? own_earlier_insert(m, w) : 0;
        if (own < 0)
            rc = -1;
        else if (!own)
            w->result = TM_WRITE_EXISTS;
    }
    free(counts);
    return rc;
}

/* Round trip 1 (more when the group's SQL outgrows the server's packet
 * limit): SET @now, then per write in queue order an INSERT IGNORE (a new
 * transaction) or an UPDATE fenced by owner. Each statement's row count
 * gives the write's result: an insert that inserted nothing found its gid
 * stored (EXISTS), an update that matched nothing found the transaction
 * owned by another node, or already final (LOST either way). retried: an
 * earlier attempt of this group may have committed. */
static int apply_headers(my_store_t *m, tm_write_t *group, int retried)
{
    sql_buf_t *b = &m->wsql;
    tm_write_t *w = group;
    while (w) {
        sb_reset(b);
        sb_printf(b, "SET @now = " DB_NOW ";");
        tm_write_t *first = w;
        size_t count = 0;
        while (w && (count == 0 || b->len < m->flush_bytes)) {
            if (w->insert)
                append_insert(b, m, w);
            else
                append_header_update(b, m, w);
            count++;
            w = w->next;
        }
        if (run_header_chunk(m, first, w, count, retried) != 0)
            return -1;
    }
    return 0;
}

static int refused(const tm_write_t *w)
{
    return w->result != TM_WRITE_DONE;
}

/* A gid whose header some write of this group could not apply: none of
 * the group's rows for it may be stored. */
static int gid_refused(const tm_write_t *group, const char *gid)
{
    for (const tm_write_t *w = group; w; w = w->next)
        if (refused(w) && strcmp(w->gid, gid) == 0)
            return 1;
    return 0;
}

static void append_branch_values(sql_buf_t *b, const char *gid,
                                 const tm_w_branch_t *br)
{
    sb_printf(b, "(");
    sb_str(b, gid);
    sb_printf(b, ",%u,", br->idx);
    sb_str(b, br->branch_id);
    sb_printf(b, ",%d,%d,", br->mode, br->initiator_driven);
    sb_hex(b, br->payload ? br->payload : (const uint8_t *)"", br->payload_len);
    sb_printf(b, ",");
    sb_str(b, br->deps ? br->deps : "");
    for (int k = 0; k < TM_SLOTS; k++) {
        sb_printf(b, ",%d,", br->kind[k]);
        sb_str(b, br->target[k]);
    }
    sb_printf(b, ")");
}

static void append_op_values(sql_buf_t *b, const char *gid, const tm_w_op_t *o)
{
    sb_printf(b, "(");
    sb_str(b, gid);
    sb_printf(b, ",%u,%d,%d,%u,", o->branch, o->slot, o->status, o->attempts);
    sb_str(b, o->last_error);
    sb_printf(b, ",");
    sb_str(b, o->attempt_ms);
    sb_printf(b, ",%" PRId64 ",%d)", o->finished_ms, o->late);
}

static const char *branch_insert_head =
    "INSERT INTO trellis_branch (gid, idx, branch_id, mode,"
    " initiator_driven, payload, depends_on, kind0, target0, kind1, target1,"
    " kind2, target2) VALUES ";
static const char *branch_insert_tail =
    " ON DUPLICATE KEY UPDATE branch_id=VALUES(branch_id),"
    " mode=VALUES(mode), initiator_driven=VALUES(initiator_driven),"
    " payload=VALUES(payload), depends_on=VALUES(depends_on),"
    " kind0=VALUES(kind0), target0=VALUES(target0), kind1=VALUES(kind1),"
    " target1=VALUES(target1), kind2=VALUES(kind2), target2=VALUES(target2);";
static const char *op_insert_head =
    "INSERT INTO trellis_op (gid, idx, slot, status, attempts, last_error,"
    " attempt_ms, finished_ms, late) VALUES ";
static const char *op_insert_tail =
    " ON DUPLICATE KEY UPDATE status=VALUES(status),"
    " attempts=VALUES(attempts), last_error=VALUES(last_error),"
    " attempt_ms=VALUES(attempt_ms), finished_ms=VALUES(finished_ms),"
    " late=VALUES(late);";

/* Send the statements built so far (closing an open multi-row one). */
static int send_built(my_store_t *m, sql_buf_t *b, int *open_rows,
                      const char *tail)
{
    if (*open_rows) {
        sb_printf(b, "%s", tail);
        *open_rows = 0;
    }
    int rc = writer_run(m, b, NULL, 0) < 0 ? -1 : 0;
    sb_reset(b);
    return rc;
}

/* Send the statements built so far when they grew large. */
static int flush_if_large(my_store_t *m, sql_buf_t *b, int *open_rows,
                          const char *tail)
{
    return b->len < m->flush_bytes ? 0 : send_built(m, b, open_rows, tail);
}

static size_t str_len(const char *s)
{
    return s ? strlen(s) : 0;
}

/* About how many bytes of SQL a branch row takes (hex doubles each). */
static size_t branch_row_bytes(const char *gid, const tm_w_branch_t *br)
{
    size_t text = strlen(gid) + br->payload_len + str_len(br->branch_id) +
                  str_len(br->deps);
    for (int k = 0; k < TM_SLOTS; k++)
        text += str_len(br->target[k]);
    return 2 * text + 256;
}

/* Before a row of row_bytes: when it would carry what is built past the
 * server's packet limit, send that first, so a large row goes in a
 * statement of its own. */
static int make_room(my_store_t *m, sql_buf_t *b, int *open_rows,
                     const char *tail, size_t row_bytes)
{
    if (b->len == 0 || b->len + row_bytes + PACKET_SLACK < m->packet_bytes)
        return 0;
    return send_built(m, b, open_rows, tail);
}

/* Round trip 2 (more for very large groups): branch and op rows of the
 * writes whose headers applied, then COMMIT. */
static int apply_rows_and_commit(my_store_t *m, tm_write_t *group)
{
    sql_buf_t *b = &m->wsql;
    sb_reset(b);
    int open_rows = 0;
    int any_refused = 0;
    for (tm_write_t *w = group; w && !any_refused; w = w->next)
        any_refused = refused(w);
    for (tm_write_t *w = group; w; w = w->next) {
        if (any_refused && gid_refused(group, w->gid))
            continue;
        for (size_t i = 0; i < w->n_branches; i++) {
            size_t row = branch_row_bytes(w->gid, &w->branches[i]);
            if (make_room(m, b, &open_rows, branch_insert_tail, row) != 0)
                return -1;
            sb_printf(b, open_rows ? "," : "%s", branch_insert_head);
            open_rows = 1;
            append_branch_values(b, w->gid, &w->branches[i]);
            if (flush_if_large(m, b, &open_rows, branch_insert_tail) != 0)
                return -1;
        }
    }
    if (open_rows)
        sb_printf(b, "%s", branch_insert_tail);
    open_rows = 0;
    for (tm_write_t *w = group; w; w = w->next) {
        if (any_refused && gid_refused(group, w->gid))
            continue;
        for (size_t i = 0; i < w->n_ops; i++) {
            sb_printf(b, open_rows ? "," : "%s", op_insert_head);
            open_rows = 1;
            append_op_values(b, w->gid, &w->ops[i]);
            if (flush_if_large(m, b, &open_rows, op_insert_tail) != 0)
                return -1;
        }
    }
    if (open_rows)
        sb_printf(b, "%s", op_insert_tail);
    sb_printf(b, "COMMIT");
    return writer_run(m, b, NULL, 0) < 0 ? -1 : 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Size the writer's statements to the server's packet limit. */
static void read_packet_limit(my_store_t *m)
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

/* Replace the writer connection, waiting as long as it takes. */
static void reconnect_writer(my_store_t *m)
{
    char q[512];
    int64_t backoff = 50;
    for (;;) {
        char err[512];
        if (m->wdb)
            mysql_close(m->wdb);
        m->wdb = my_connect(m, 0, err, sizeof(err));
        if (m->wdb) {
            read_packet_limit(m);
            tm_store_count(m->store, TM_STAT_RECONNECTS, 1);
            tm_log(TM_LOG_INFO, "event=store_reconnected conn=writer");
            return;
        }
        tm_log(TM_LOG_ERROR, "event=store_unavailable conn=writer err=\"%s\"",
               tm_log_quote(err, q, sizeof(q)));
        tm_store_note_failure(m->store, err);
        sleep_ms(backoff);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
}

/* Errors the same statements meet again however often they are sent: a
 * statement larger than the server takes, or a value the schema cannot
 * hold. Retrying such a group would jam every later write of the node. */
static int error_is_permanent(unsigned code)
{
    switch (code) {
    case ER_NET_PACKET_TOO_LARGE:
    case CR_NET_PACKET_TOO_LARGE:
    case ER_DATA_TOO_LONG:
    case ER_TOO_BIG_ROWSIZE:
    case ER_WARN_DATA_OUT_OF_RANGE:
        return 1;
    default:
        return 0;
    }
}

/* Apply group until it commits (0), retrying on a fresh session with
 * backoff; or until it fails with a permanent error: then nothing of it
 * is stored, and its code is returned with why[len] filled. retried: an
 * earlier attempt may have committed. */
static unsigned commit_until_done(my_store_t *m, tm_write_t *group, size_t n,
                                  int retried, char *why, size_t len)
{
    char q[512];
    for (int attempt = 0;; attempt++) {
        if (!m->wdb)
            reconnect_writer(m);
        if (apply_headers(m, group, attempt > 0 || retried) == 0 &&
            apply_rows_and_commit(m, group) == 0)
            return 0;
        unsigned code = mysql_errno(m->wdb);
        snprintf(why, len, "%s (%u)", mysql_error(m->wdb), code);
        if (m->oversize) {
            code = CR_NET_PACKET_TOO_LARGE;
            snprintf(why, len,
                     "a statement of %zu bytes is larger than the server's "
                     "max_allowed_packet (%zu)",
                     m->oversize, m->packet_bytes);
            m->oversize = 0;
        }
        tm_log(TM_LOG_WARN,
               "event=store_commit_retry attempt=%d writes=%zu err=\"%s\"",
               attempt + 1, n, tm_log_quote(why, q, sizeof(q)));
        tm_store_note_failure(m->store, why);
        /* Whatever the failure (lost connection, deadlock, lock timeout),
         * start over on a fresh session: the statements are idempotent. */
        mysql_close(m->wdb);
        m->wdb = NULL;
        if (error_is_permanent(code))
            return code;
        if (attempt > 0)
            sleep_ms(attempt < 5 ? 20 * attempt : 500);
    }
}

static void refuse_write(tm_write_t *w, const char *why)
{
    char q[512];
    w->result = TM_WRITE_FAILED;
    tm_log(TM_LOG_ERROR,
           "event=store_write_refused gid=%s err=\"%s\" msg=\"the database "
           "cannot store this change; it is not retried\"",
           w->gid, tm_log_quote(why, q, sizeof(q)));
}

/* A write of w's transaction earlier in group was refused for good. */
static int refused_before(const tm_write_t *group, const tm_write_t *w)
{
    for (const tm_write_t *x = group; x && x != w; x = x->next)
        if (x->result == TM_WRITE_FAILED && strcmp(x->gid, w->gid) == 0)
            return 1;
    return 0;
}

/* The group failed for good: apply each write alone, so only a write the
 * database cannot take fails (TM_WRITE_FAILED), with the later writes of
 * its transaction in the group (they build on it). */
static void commit_each_alone(my_store_t *m, tm_write_t *group)
{
    char why[512];
    for (tm_write_t *w = group; w;) {
        tm_write_t *next = w->next;
        w->next = NULL;
        if (refused_before(group, w))
            refuse_write(w, "an earlier change of it was refused");
        else if (commit_until_done(m, w, 1, 1, why, sizeof(why)) != 0)
            refuse_write(w, why);
        w->next = next;
        w = next;
    }
}

static int my_commit_group(tm_store_t *store, tm_write_t *group, int retry,
                           char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    my_store_t *m = store->impl;
    size_t n = 0;
    for (tm_write_t *w = group; w; w = w->next)
        n++;
    uint64_t t0 = tm_metrics_now_us();
    char why[512];
    /* retry: the store core runs this group again after a failure reported
     * above this engine; it may have committed too. */
    if (commit_until_done(m, group, n, retry > 0, why, sizeof(why)) != 0) {
        if (n > 1)
            commit_each_alone(m, group);
        else
            refuse_write(group, why);
    }
    tm_metrics_store_commit(tm_metrics_now_us() - t0, n);
    uint64_t lost = 0;
    for (tm_write_t *w = group; w; w = w->next)
        lost += w->result == TM_WRITE_LOST;
    if (lost)
        tm_store_count(store, TM_STAT_LOST, lost);
    return 0;
}

/* The largest branch payload one row statement can carry under the
 * server's max_allowed_packet (hex: two bytes a byte), and the column's
 * own bound. */
static uint32_t my_max_payload(tm_store_t *store, char *why, size_t len)
{
    const my_store_t *m = store->impl;
    size_t fits = m->packet_bytes > 2 * PACKET_SLACK
                      ? (m->packet_bytes - PACKET_SLACK) / 2
                      : 0;
    uint32_t max = fits < MEDIUMBLOB_MAX ? (uint32_t)fits : MEDIUMBLOB_MAX;
    snprintf(why, len,
             "the mysql store holds at most %u bytes (server "
             "max_allowed_packet %zu)",
             max, m->packet_bytes);
    return max;
}

/* ---- reading ---------------------------------------------------------- */

static reader_t *reader_take(my_store_t *m)
{
    unsigned start = atomic_fetch_add(&m->next_reader, 1);
    for (unsigned i = 0; i < N_READERS; i++) {
        reader_t *r = &m->readers[(start + i) % N_READERS];
        if (pthread_mutex_trylock(&r->mu) == 0)
            return r;
    }
    reader_t *r = &m->readers[start % N_READERS];
    pthread_mutex_lock(&r->mu);
    return r;
}

static void reader_give(reader_t *r)
{
    pthread_mutex_unlock(&r->mu);
}

/* Send sql on the reader, connecting (again) if needed; one retry on a
 * fresh session covers a database restart. Returns 0, or -1 with err. */
static int reader_send(my_store_t *m, reader_t *r, const char *sql, size_t len,
                       char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!r->db)
            r->db = my_connect(m, 1, err, errlen);
        if (!r->db)
            continue;
        if (mysql_real_query(r->db, sql, (unsigned long)len) == 0)
            return 0;
        my_error(r->db, "read", err, errlen);
        mysql_close(r->db);
        r->db = NULL;
    }
    return -1;
}

static char *field_dup(MYSQL_ROW row, const unsigned long *len, int i)
{
    if (!row[i])
        return NULL;
    char *s = malloc(len[i] + 1);
    if (s) {
        memcpy(s, row[i], len[i]);
        s[len[i]] = '\0';
    }
    return s;
}

static int64_t field_i64(MYSQL_ROW row, int i)
{
    return row[i] ? strtoll(row[i], NULL, 10) : 0;
}

static const char *trans_columns =
    "SELECT gid, status, created_ms, updated_ms, finished_ms, reason,"
    " submit_hash, options, generation FROM trellis_trans";

static tm_trans_t *row_to_trans(MYSQL_ROW row, const unsigned long *len)
{
    char gid[TM_GID_MAX + 1];
    snprintf(gid, sizeof(gid), "%.*s",
             (int)(len[0] < TM_GID_MAX ? len[0] : TM_GID_MAX), row[0]);
    tm_trans_t *tx =
        tm_trans_new(gid, (tm_tx_status_t)field_i64(row, 1), field_i64(row, 2));
    if (!tx)
        return NULL;
    tx->updated_ms = field_i64(row, 3);
    tx->finished_ms = field_i64(row, 4);
    tx->reason = field_dup(row, len, 5);
    tx->submit_hash = row[6] ? strtoull(row[6], NULL, 10) : 0;
    if (row[7])
        tm_store_decode_options(tx, row[7], len[7]);
    tx->generation = row[8] ? strtoull(row[8], NULL, 10) : 0;
    return tx;
}

static int rows_to_branches(MYSQL_RES *res, tm_trans_t *tx)
{
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        unsigned long *len = mysql_fetch_lengths(res);
        if ((size_t)field_i64(row, 0) != tx->n_branches)
            return -1; /* a gap: not rows this code wrote */
        tm_branch_t *b = tm_trans_add_branch(tx);
        if (!b)
            return -1;
        b->stored = 1;
        b->branch_id = field_dup(row, len, 1);
        b->mode = (tm_mode_t)field_i64(row, 2);
        b->initiator_driven = (int)field_i64(row, 3);
        b->payload_len = row[4] ? len[4] : 0;
        if (b->payload_len) {
            b->payload = malloc(b->payload_len);
            if (!b->payload)
                return -1;
            memcpy(b->payload, row[4], b->payload_len);
        }
        char *deps = field_dup(row, len, 5);
        b->deps = tm_store_split_u32(deps, &b->n_deps);
        free(deps);
        for (int k = 0; k < TM_SLOTS; k++) {
            b->ops[k].kind = (tm_op_kind_t)field_i64(row, 6 + 2 * k);
            b->ops[k].target = field_dup(row, len, 7 + 2 * k);
            b->ops[k].status = TM_OP_PENDING;
        }
    }
    return 0;
}

static void rows_to_ops(MYSQL_RES *res, tm_trans_t *tx)
{
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        unsigned long *len = mysql_fetch_lengths(res);
        size_t idx = (size_t)field_i64(row, 0);
        int slot = (int)field_i64(row, 1);
        if (idx >= tx->n_branches || slot < 0 || slot >= TM_SLOTS)
            continue;
        tm_op_t *op = &tx->branches[idx].ops[slot];
        op->status = (tm_op_status_t)field_i64(row, 2);
        op->attempts = (uint32_t)field_i64(row, 3);
        free(op->last_error);
        op->last_error = field_dup(row, len, 4);
        char *times = field_dup(row, len, 5);
        free(op->attempt_ms);
        op->attempt_ms = tm_store_split_i64(times, &op->n_attempt_ms);
        free(times);
        op->finished_ms = field_i64(row, 6);
        op->late = (int)field_i64(row, 7);
    }
}

/* Statements before the three reads, and after them: the reads share one
 * consistent snapshot, so a group committed between two of them is seen
 * whole or not at all (not a header from before it with ops from after). */
#define GET_SNAPSHOT_BEGIN                                                     \
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;"                         \
    " START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY; "
#define GET_SNAPSHOT_STATEMENTS 2
#define GET_SNAPSHOT_END "; COMMIT"

/* The three reads of one transaction, in one round trip and one snapshot. */
static void build_get_sql(sql_buf_t *b, const char *gid)
{
    sb_printf(b, GET_SNAPSHOT_BEGIN "%s WHERE gid=", trans_columns);
    sb_str(b, gid);
    sb_printf(b, "; SELECT idx, branch_id, mode, initiator_driven, payload,"
                 " depends_on, kind0, target0, kind1, target1, kind2, target2"
                 " FROM trellis_branch WHERE gid=");
    sb_str(b, gid);
    sb_printf(b, " ORDER BY idx; SELECT idx, slot, status, attempts,"
                 " last_error, attempt_ms, finished_ms, late FROM trellis_op"
                 " WHERE gid=");
    sb_str(b, gid);
    sb_printf(b, GET_SNAPSHOT_END);
}

static int in_transaction(MYSQL *db)
{
    unsigned st = 0;
    if (mariadb_get_infov(db, MARIADB_CONNECTION_SERVER_STATUS, &st) != 0)
        return 0;
    return (st & SERVER_STATUS_IN_TRANS) != 0;
}

/* A read that failed half way left its snapshot open (the statements
 * after the failing one did not run): say why, then end it, so the next
 * read on this connection does not see the old snapshot. */
static void fail_get(MYSQL *db, char *err, size_t errlen)
{
    my_error(db, "reading a transaction", err, errlen);
    if (in_transaction(db))
        mysql_query(db, "ROLLBACK");
}

/* Read the results of build_get_sql already sent on db. Returns 1 with
 * *out, 0 when not found, -1 with err. */
static int read_get_results(MYSQL *db, tm_trans_t **out, char *err,
                            size_t errlen)
{
    tm_trans_t *tx = NULL;
    int rc = 0;
    for (int i = 0; i < GET_SNAPSHOT_STATEMENTS && rc == 0; i++)
        rc = mysql_next_result(db) == 0 ? 0 : -1;
    for (int i = 0; i < 3 && rc >= 0; i++) {
        if (i > 0 && mysql_next_result(db) != 0) {
            rc = -1;
            break;
        }
        MYSQL_RES *res = mysql_store_result(db);
        if (!res) {
            rc = -1;
            break;
        }
        if (i == 0) {
            MYSQL_ROW row = mysql_fetch_row(res);
            if (row) {
                tx = row_to_trans(row, mysql_fetch_lengths(res));
                rc = tx ? 1 : -1;
            }
        } else if (tx && i == 1 && rows_to_branches(res, tx) != 0) {
            rc = -1;
        } else if (tx && i == 2) {
            rows_to_ops(res, tx);
        }
        mysql_free_result(res);
    }
    while (mysql_more_results(db)) {
        if (mysql_next_result(db) != 0) {
            rc = -1;
            break;
        }
        mysql_free_result(mysql_store_result(db));
    }
    if (rc < 0)
        fail_get(db, err, errlen);
    if (rc != 1) {
        tm_trans_free(tx);
        return rc;
    }
    tm_store_mark_skipped_if_finished(tx);
    *out = tx;
    return 1;
}

static int get_on_reader(my_store_t *m, reader_t *r, const char *gid,
                         tm_trans_t **out, char *err, size_t errlen)
{
    sql_buf_t b = {0};
    build_get_sql(&b, gid);
    int rc = reader_send(m, r, b.p, b.len, err, errlen);
    free(b.p);
    if (rc != 0)
        return -1;
    return read_get_results(r->db, out, err, errlen);
}

static int my_get(tm_store_t *store, const char *gid, tm_trans_t **out,
                  char *err, size_t errlen)
{
    my_store_t *m = store->impl;
    reader_t *r = reader_take(m);
    int rc = get_on_reader(m, r, gid, out, err, errlen);
    reader_give(r);
    return rc;
}

static int my_peek(tm_store_t *store, const char *gid, tm_tx_status_t *status,
                   uint64_t *submit_hash, char *err, size_t errlen)
{
    my_store_t *m = store->impl;
    sql_buf_t b = {0};
    sb_printf(&b, "SELECT status, submit_hash FROM trellis_trans WHERE gid=");
    sb_str(&b, gid);
    reader_t *r = reader_take(m);
    int found = -1;
    if (reader_send(m, r, b.p, b.len, err, errlen) == 0) {
        MYSQL_RES *res = mysql_store_result(r->db);
        MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
        if (row) {
            *status = (tm_tx_status_t)field_i64(row, 0);
            *submit_hash = row[1] ? strtoull(row[1], NULL, 10) : 0;
            found = 1;
        } else if (res) {
            found = 0;
        } else {
            my_error(r->db, "peek", err, errlen);
        }
        mysql_free_result(res);
    }
    reader_give(r);
    free(b.p);
    return found;
}

/* Collect the first column of every row of the result on db. */
static char **collect_gids(MYSQL *db, size_t *n)
{
    *n = 0;
    MYSQL_RES *res = mysql_store_result(db);
    if (!res)
        return NULL;
    size_t cap = mysql_num_rows(res) + 1;
    char **gids = calloc(cap, sizeof(*gids));
    MYSQL_ROW row;
    while (gids && (row = mysql_fetch_row(res)))
        gids[(*n)++] = field_dup(row, mysql_fetch_lengths(res), 0);
    mysql_free_result(res);
    return gids;
}

static void free_gids(char **gids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(gids[i]);
    free(gids);
}

/* This node's unfinished transactions left by its previous run (same node
 * id): renew their leases first, so no other node claims one between our
 * read and our first act. */
static long my_load_unfinished(tm_store_t *store, tm_store_each_fn fn,
                               void *arg, char *err, size_t errlen)
{
    my_store_t *m = store->impl;
    sql_buf_t b = {0};
    sb_printf(&b,
              "SET @now = " DB_NOW "; UPDATE trellis_trans SET"
              " lease_ms=@now+%" PRId64
              ", generation=generation+1 WHERE owner=",
              m->lease_ms);
    sb_str(&b, m->node_id);
    sb_printf(&b, " AND lease_ms IS NOT NULL; SELECT gid FROM trellis_trans"
                  " WHERE owner=");
    sb_str(&b, m->node_id);
    sb_printf(&b, " AND lease_ms IS NOT NULL ORDER BY created_ms, gid");
    reader_t *r = reader_take(m);
    long count = -1;
    if (reader_send(m, r, b.p, b.len, err, errlen) == 0 &&
        mysql_next_result(r->db) == 0 && mysql_next_result(r->db) == 0) {
        size_t n;
        char **gids = collect_gids(r->db, &n);
        count = 0;
        for (size_t i = 0; i < n && count >= 0; i++) {
            tm_trans_t *tx = NULL;
            int rc = get_on_reader(m, r, gids[i], &tx, err, errlen);
            if (rc == 1) {
                fn(tx, arg);
                count++;
            } else if (rc < 0) {
                count = -1;
            }
        }
        free_gids(gids, n);
    } else if (r->db) {
        my_error(r->db, "loading this node's transactions", err, errlen);
    }
    reader_give(r);
    free(b.p);
    return count;
}

static void build_list_sql(sql_buf_t *b, const tm_store_filter_t *f)
{
    sb_printf(b, "%s WHERE 1=1", trans_columns);
    if (f->status)
        sb_printf(b, " AND status=%d", (int)f->status);
    if (f->created_after_ms)
        sb_printf(b, " AND created_ms > %" PRId64, f->created_after_ms);
    if (f->created_before_ms)
        sb_printf(b, " AND created_ms < %" PRId64, f->created_before_ms);
    if (f->after_gid) {
        sb_printf(b,
                  " AND (created_ms > %" PRId64 " OR (created_ms = %" PRId64
                  " AND gid > ",
                  f->after_created_ms, f->after_created_ms);
        sb_str(b, f->after_gid);
        sb_printf(b, "))");
    }
    sb_printf(b, " ORDER BY created_ms, gid LIMIT %u", f->limit);
}

static int my_list(tm_store_t *store, const tm_store_filter_t *f,
                   tm_trans_t ***out, size_t *n, char *err, size_t errlen)
{
    my_store_t *m = store->impl;
    *out = NULL;
    *n = 0;
    sql_buf_t b = {0};
    build_list_sql(&b, f);
    reader_t *r = reader_take(m);
    int rc = reader_send(m, r, b.p, b.len, err, errlen);
    free(b.p);
    MYSQL_RES *res = rc == 0 ? mysql_store_result(r->db) : NULL;
    if (rc == 0 && !res) {
        my_error(r->db, "list", err, errlen);
        rc = -1;
    }
    tm_trans_t **items =
        rc == 0 ? calloc(f->limit ? f->limit : 1, sizeof(*items)) : NULL;
    MYSQL_ROW row;
    while (items && *n < f->limit && (row = mysql_fetch_row(res))) {
        items[*n] = row_to_trans(row, mysql_fetch_lengths(res));
        if (!items[*n])
            break;
        (*n)++;
    }
    mysql_free_result(res);
    reader_give(r);
    if (rc == 0 && !items) {
        snprintf(err, errlen, "out of memory listing transactions");
        rc = -1;
    }
    *out = items;
    return rc;
}

/* ---- leases, claims, retention (lease thread) ------------------------- */

/* The node lock is held by a session: if it is our own earlier one (a
 * connection we lost but the server kept), end it. Returns 0 when it was
 * ours, -1 when another process holds the lock. */
static int end_own_old_session(my_store_t *m)
{
    sql_buf_t b = {0};
    sb_printf(&b, "SELECT IS_USED_LOCK(");
    node_lock_name(m, &b);
    sb_printf(&b, ")");
    int rc = mysql_real_query(m->ldb, b.p, (unsigned long)b.len);
    free(b.p);
    MYSQL_RES *res = rc == 0 ? mysql_store_result(m->ldb) : NULL;
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    unsigned long holder = row && row[0] ? strtoul(row[0], NULL, 10) : 0;
    mysql_free_result(res);
    if (!holder) /* free by now */
        return 0;
    if (holder != m->lock_session)
        return -1;
    char sql[64];
    snprintf(sql, sizeof(sql), "KILL %lu", holder);
    mysql_query(m->ldb, sql);
    tm_log(TM_LOG_INFO, "event=old_session_ended session=%lu", holder);
    return 0;
}

static int lease_connect(my_store_t *m)
{
    char q[512];
    if (m->ldb)
        return 0;
    char err[512];
    m->ldb = my_connect(m, 1, err, sizeof(err));
    if (!m->ldb) {
        tm_log(TM_LOG_ERROR, "event=store_unavailable conn=lease err=\"%s\"",
               tm_log_quote(err, q, sizeof(q)));
        return -1;
    }
    /* A restarted database dropped our node lock with the old session; a
     * server that has not noticed our old session died still holds it. */
    if (take_node_lock(m, m->ldb, 0, err, sizeof(err)) != 0 &&
        (end_own_old_session(m) != 0 ||
         take_node_lock(m, m->ldb, 5, err, sizeof(err)) != 0)) {
        tm_log(TM_LOG_ERROR,
               "event=node_lock_lost err=\"%s\" msg=\"another process took "
               "this node id while the database was away; exiting\"",
               tm_log_quote(err, q, sizeof(q)));
        _exit(75);
    }
    tm_store_count(m->store, TM_STAT_RECONNECTS, 1);
    return 0;
}

static void lease_drop_connection(my_store_t *m, const char *what)
{
    char q[512];
    tm_log(TM_LOG_WARN, "event=store_lease_error what=%s err=\"%s (%u)\"", what,
           tm_log_quote(mysql_error(m->ldb), q, sizeof(q)),
           mysql_errno(m->ldb));
    mysql_close(m->ldb);
    m->ldb = NULL;
}

/* Every lease of this node that ends within half a lease is extended to a
 * full one, so after this statement all of them last at least half a lease
 * (less a safety margin) from when it was sent: *valid_until. Does not
 * publish it: the caller first deals with a lapse. Returns 0 or -1. */
static int renew_leases(my_store_t *m, int64_t *valid_until)
{
    if (atomic_load(&m->released) || lease_connect(m) != 0)
        return -1;
    sql_buf_t b = {0};
    sb_printf(&b,
              "SET @now = " DB_NOW "; UPDATE trellis_trans SET"
              " lease_ms=@now+%" PRId64 " WHERE owner=",
              m->lease_ms);
    sb_str(&b, m->node_id);
    sb_printf(&b, " AND lease_ms IS NOT NULL AND lease_ms < @now+%" PRId64,
              m->lease_ms / 2);
    int64_t sent = tm_mono_ms();
    int rc = my_run(m->ldb, b.p, b.len, NULL, 0) < 0 ? -1 : 0;
    free(b.p);
    if (rc != 0) {
        lease_drop_connection(m, "renew");
        return -1;
    }
    *valid_until = sent + m->lease_ms / 2 - m->lease_ms / 10;
    return 0;
}

/* Renew, and if the previous validity ran out before this renewal ended
 * (a pause, a slow or absent database), have the engine re-confirm what it
 * holds before the lease counts as valid again. */
static void renew_and_publish(my_store_t *m)
{
    int64_t next;
    if (renew_leases(m, &next) != 0)
        return;
    int64_t before = atomic_load(&m->valid_until);
    if (before != 0 && tm_mono_ms() >= before) {
        pthread_mutex_lock(&m->lmu);
        int hooks_set = m->hooks_set;
        if (!hooks_set)
            m->lapse_pending = 1;
        pthread_mutex_unlock(&m->lmu);
        if (hooks_set)
            m->hooks.lapsed(m->hooks.arg);
    }
    atomic_store(&m->valid_until, next);
}

static int my_lease_ok(tm_store_t *store)
{
    const my_store_t *m = store->impl;
    return !atomic_load(&m->released) &&
           tm_mono_ms() < atomic_load(&m->valid_until);
}

/* Send a query on the lease connection and collect its gids. */
static char **lease_select_gids(my_store_t *m, const sql_buf_t *b, size_t *n)
{
    *n = 0;
    if (mysql_real_query(m->ldb, b->p, (unsigned long)b->len) != 0)
        return NULL;
    return collect_gids(m->ldb, n);
}

static void append_gid_list(sql_buf_t *b, char **gids, size_t n)
{
    sb_printf(b, "(");
    for (size_t i = 0; i < n; i++) {
        sb_printf(b, i ? "," : "");
        sb_str(b, gids[i]);
    }
    sb_printf(b, ")");
}

/* Claim up to CLAIM_BATCH transactions whose lease ran out (rows another
 * node is writing are skipped, not waited for). Returns how many, or -1. */
static long claim_batch(my_store_t *m, char ***claimed)
{
    *claimed = NULL;
    if (my_exec(m->ldb, "START TRANSACTION; SET @now = " DB_NOW) != 0)
        return -1;
    sql_buf_t b = {0};
    sb_printf(&b,
              "SELECT gid FROM trellis_trans WHERE lease_ms < @now"
              " ORDER BY lease_ms LIMIT %d FOR UPDATE SKIP LOCKED",
              CLAIM_BATCH);
    size_t n;
    char **gids = lease_select_gids(m, &b, &n);
    sb_reset(&b);
    int rc = gids ? 0 : -1;
    if (rc == 0 && n > 0) {
        sb_printf(&b, "UPDATE trellis_trans SET owner=");
        sb_str(&b, m->node_id);
        sb_printf(&b,
                  ", lease_ms=@now+%" PRId64
                  ", generation=generation+1 WHERE gid IN ",
                  m->lease_ms);
        append_gid_list(&b, gids, n);
        rc = my_run(m->ldb, b.p, b.len, NULL, 0) < 0 ? -1 : 0;
    }
    free(b.p);
    if (rc == 0)
        rc = my_exec(m->ldb, "COMMIT");
    if (rc != 0) {
        free_gids(gids, n);
        return -1;
    }
    *claimed = gids;
    return (long)n;
}

/* Load each claimed transaction and hand it to the engine. */
static void adopt_claimed(my_store_t *m, char **gids, size_t n)
{
    char q[512];
    for (size_t i = 0; i < n; i++) {
        sql_buf_t b = {0};
        build_get_sql(&b, gids[i]);
        tm_trans_t *tx = NULL;
        char err[512] = "";
        int rc = mysql_real_query(m->ldb, b.p, (unsigned long)b.len) == 0
                     ? read_get_results(m->ldb, &tx, err, sizeof(err))
                     : -1;
        if (rc < 0 && !err[0])
            my_error(m->ldb, "reading a claimed transaction", err, sizeof(err));
        free(b.p);
        if (rc == 1)
            m->hooks.adopt(tx, m->hooks.arg);
        else /* its lease runs out again and some node claims it then */
            tm_log(TM_LOG_WARN, "event=takeover_load_failed gid=%s err=\"%s\"",
                   gids[i], tm_log_quote(err, q, sizeof(q)));
    }
}

/* Claim batch after batch while batches come back full, pausing between
 * them so that other nodes claiming at the same time get their share. */
static void claim_expired(my_store_t *m)
{
    for (int round = 0; round < CLAIM_ROUNDS; round++) {
        if (round > 0)
            sleep_ms(5);
        char **gids;
        long n = claim_batch(m, &gids);
        if (n < 0) {
            lease_drop_connection(m, "claim");
            return;
        }
        if (n > 0) {
            tm_log(TM_LOG_INFO, "event=claimed transactions=%ld", n);
            tm_store_count(m->store, TM_STAT_CLAIMED, (uint64_t)n);
            tm_metrics_takeovers_add((uint64_t)n);
            adopt_claimed(m, gids, (size_t)n);
        }
        free_gids(gids, (size_t)n);
        if (n < CLAIM_BATCH)
            return;
    }
}

/* Delete one batch of finished transactions older than the retention.
 * Returns how many, or -1. */
static long purge_batch(my_store_t *m, int64_t cutoff)
{
    if (my_exec(m->ldb, "START TRANSACTION") != 0)
        return -1;
    sql_buf_t b = {0};
    /* created_ms <= finished_ms, so the created index bounds the scan;
     * unfinished rows in that range are skipped, not deleted. */
    sb_printf(&b,
              "SELECT gid FROM trellis_trans WHERE created_ms < %" PRId64
              " AND finished_ms > 0 AND finished_ms < %" PRId64
              " AND lease_ms IS NULL ORDER BY created_ms LIMIT %d"
              " FOR UPDATE SKIP LOCKED",
              cutoff, cutoff, PURGE_BATCH);
    size_t n;
    char **gids = lease_select_gids(m, &b, &n);
    sb_reset(&b);
    int rc = gids ? 0 : -1;
    if (rc == 0 && n > 0) {
        static const char *tables[] = {"trellis_op", "trellis_branch",
                                       "trellis_trans"};
        for (int t = 0; t < 3; t++) {
            sb_printf(&b, "DELETE FROM %s WHERE gid IN ", tables[t]);
            append_gid_list(&b, gids, n);
            sb_printf(&b, ";");
        }
        sb_printf(&b, "COMMIT");
        rc = my_run(m->ldb, b.p, b.len, NULL, 0) < 0 ? -1 : 0;
    } else if (rc == 0) {
        rc = my_exec(m->ldb, "COMMIT");
    }
    free(b.p);
    free_gids(gids, n);
    return rc == 0 ? (long)n : -1;
}

static void purge_finished(my_store_t *m)
{
    tm_store_t *store = m->store;
    if (!store->retention_ms || !m->ldb)
        return;
    int64_t cutoff = tm_wall_ms() - (int64_t)store->retention_ms;
    int64_t started = tm_mono_ms();
    /* Short enough that the renewals on this thread stay on time. */
    int64_t budget =
        m->lease_ms / 10 < PURGE_BUDGET_MS ? m->lease_ms / 10 : PURGE_BUDGET_MS;
    while (tm_mono_ms() - started < budget) {
        long n = purge_batch(m, cutoff);
        if (n < 0) {
            lease_drop_connection(m, "retention");
            return;
        }
        if (n > 0)
            tm_store_count(store, TM_STAT_PURGED, (uint64_t)n);
        if (n < PURGE_BATCH)
            return;
        sleep_ms(5);
    }
}

/* Wait up to ms or until stopping; returns 1 when stopping. */
static int lease_wait(my_store_t *m, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->lmu);
    while (!m->stopping &&
           pthread_cond_timedwait(&m->lcv, &m->lmu, &until) != ETIMEDOUT)
        ;
    int stopping = m->stopping;
    pthread_mutex_unlock(&m->lmu);
    return stopping;
}

static void *lease_thread_main(void *arg)
{
    my_store_t *m = arg;
    pthread_setname_np(pthread_self(), "tm-lease");
    int64_t tick = m->lease_ms / 5;
    int64_t last_purge = 0;
    while (!lease_wait(m, tick)) {
        if (atomic_load(&m->released))
            continue;
        renew_and_publish(m);
        pthread_mutex_lock(&m->lmu);
        int hooks_set = m->hooks_set;
        pthread_mutex_unlock(&m->lmu);
        if (hooks_set && m->ldb && my_lease_ok(m->store))
            claim_expired(m);
        if (tm_mono_ms() - last_purge >= 1000) {
            purge_finished(m);
            last_purge = tm_mono_ms();
        }
    }
    return NULL;
}

static void my_start_ownership(tm_store_t *store,
                               const tm_store_owner_hooks_t *h)
{
    my_store_t *m = store->impl;
    pthread_mutex_lock(&m->lmu);
    m->hooks = *h;
    m->hooks_set = 1;
    int pending = m->lapse_pending;
    m->lapse_pending = 0;
    pthread_mutex_unlock(&m->lmu);
    if (pending)
        h->lapsed(h->arg);
}

/* Graceful shutdown: expire every lease of this node now, so other nodes
 * claim its unfinished transactions at their next look. This node acts on
 * nothing afterwards (tm_store_lease_ok stays 0). */
static void my_release_leases(tm_store_t *store)
{
    char q[512];
    my_store_t *m = store->impl;
    atomic_store(&m->released, 1);
    sql_buf_t b = {0};
    sb_printf(&b, "UPDATE trellis_trans SET lease_ms=0 WHERE owner=");
    sb_str(&b, m->node_id);
    sb_printf(&b, " AND lease_ms IS NOT NULL");
    char err[512];
    reader_t *r = reader_take(m);
    if (reader_send(m, r, b.p, b.len, err, sizeof(err)) != 0)
        tm_log(TM_LOG_WARN, "event=release_leases_failed err=\"%s\"",
               tm_log_quote(err, q, sizeof(q)));
    else
        tm_log(TM_LOG_INFO, "event=leases_released transactions=%llu",
               (unsigned long long)mysql_affected_rows(r->db));
    reader_give(r);
    free(b.p);
}

/* ---- open / close ----------------------------------------------------- */

static const tm_store_ops_t my_ops;

static void free_store(my_store_t *m)
{
    if (m->wdb)
        mysql_close(m->wdb);
    if (m->ldb)
        mysql_close(m->ldb);
    for (int i = 0; i < N_READERS; i++) {
        if (m->readers[i].db)
            mysql_close(m->readers[i].db);
        pthread_mutex_destroy(&m->readers[i].mu);
    }
    pthread_mutex_destroy(&m->lmu);
    pthread_cond_destroy(&m->lcv);
    free(m->wsql.p);
    free(m);
}

static int copy_setting(char *dst, size_t cap, const char *src,
                        const char *name, char *err, size_t errlen)
{
    if (!src)
        src = "";
    if (strlen(src) >= cap) {
        snprintf(err, errlen, "mysql store: %s is too long", name);
        return -1;
    }
    snprintf(dst, cap, "%s", src);
    return 0;
}

static int copy_settings(my_store_t *m, const tm_store_config_t *c, char *err,
                         size_t errlen)
{
    if (copy_setting(m->host, sizeof(m->host), c->mysql_host, "--mysql-host",
                     err, errlen) != 0 ||
        copy_setting(m->socket, sizeof(m->socket), c->mysql_socket,
                     "--mysql-socket", err, errlen) != 0 ||
        copy_setting(m->user, sizeof(m->user), c->mysql_user, "--mysql-user",
                     err, errlen) != 0 ||
        copy_setting(m->password, sizeof(m->password), c->mysql_password,
                     "--mysql-password", err, errlen) != 0 ||
        copy_setting(m->database, sizeof(m->database), c->mysql_database,
                     "--mysql-database", err, errlen) != 0 ||
        copy_setting(m->node_id, sizeof(m->node_id), c->node_id, "--node-id",
                     err, errlen) != 0)
        return -1;
    if (!m->node_id[0] || !m->database[0] || strchr(m->database, '`')) {
        snprintf(err, errlen,
                 "mysql store: --node-id and --mysql-database must be "
                 "non-empty (and the database name without backquotes)");
        return -1;
    }
    if (c->lease_ms < 500) {
        snprintf(err, errlen, "mysql store: --lease-ms must be at least 500");
        return -1;
    }
    m->port = c->mysql_port;
    m->lease_ms = c->lease_ms;
    return 0;
}

int tm_store_mysql_open(tm_store_t *store, const tm_store_config_t *cfg,
                        char *err, size_t errlen)
{
    my_store_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->store = store;
    pthread_mutex_init(&m->lmu, NULL);
    pthread_cond_init(&m->lcv, NULL);
    for (int i = 0; i < N_READERS; i++)
        pthread_mutex_init(&m->readers[i].mu, NULL);
    int64_t next;
    if (copy_settings(m, cfg, err, errlen) != 0 ||
        ensure_database(m, err, errlen) != 0 ||
        !(m->ldb = my_connect(m, 1, err, errlen)) ||
        take_node_lock(m, m->ldb, 10, err, errlen) != 0 ||
        create_schema(m, m->ldb, err, errlen) != 0 ||
        !(m->wdb = my_connect(m, 0, err, errlen)))
        goto fail;
    read_packet_limit(m);
    if (renew_leases(m, &next) != 0) {
        snprintf(err, errlen, "mysql store: cannot renew this node's leases");
        goto fail;
    }
    atomic_store(&m->valid_until, next);
    if (pthread_create(&m->lease_thread, NULL, lease_thread_main, m) != 0) {
        snprintf(err, errlen, "cannot start the lease thread");
        goto fail;
    }
    m->lease_thread_started = 1;
    store->ops = &my_ops;
    store->kind_name = "mysql";
    store->impl = m;
    tm_log(
        TM_LOG_INFO,
        "event=store_open engine=mysql database=%s node=%s lease_ms=%" PRId64,
        m->database, m->node_id, m->lease_ms);
    return 0;
fail:
    free_store(m);
    return -1;
}

static void my_close(tm_store_t *store)
{
    my_store_t *m = store->impl;
    pthread_mutex_lock(&m->lmu);
    m->stopping = 1;
    pthread_cond_signal(&m->lcv);
    pthread_mutex_unlock(&m->lmu);
    if (m->lease_thread_started)
        pthread_join(m->lease_thread, NULL);
    free_store(m);
}

static const tm_store_ops_t my_ops = {
    .commit_group = my_commit_group,
    .maintain = NULL,
    .peek = my_peek,
    .get = my_get,
    .load_unfinished = my_load_unfinished,
    .list = my_list,
    .start_ownership = my_start_ownership,
    .lease_ok = my_lease_ok,
    .max_payload = my_max_payload,
    .release_leases = my_release_leases,
    .close = my_close,
    .callbacks_on_own_thread = 1,
};
