/*
 * tm_store_mysql_bulk: a group's statements as server-side prepared
 * statements with array binding (MariaDB's bulk execution), on the writer
 * (store thread only). It owns the four statements it keeps prepared on
 * the writer's session (header insert, fenced header update, branch rows,
 * op rows) and the per-group parameter arrays.
 *
 * Why: sent as SQL text, a group of ~20 writes is ~14 KB of literals that
 * mariadbd lexes and parses on every group (about a third of its CPU).
 * Prepared once per session, each statement is parsed once; a group then
 * sends one parameter array per statement, which the server runs row by
 * row in array order (each header update a primary-key lookup with its
 * own fence). mariadbd's CPU per saga falls by about a fifth (README,
 * "MySQL store"). The price is a round trip per statement (up to four,
 * then the COMMIT) instead of one for all.
 *
 * The bet is the same as tm_store_mysql_batch.c's, checked earlier: the
 * header insert must insert every new transaction and the header update
 * must match every other write (CLIENT_FOUND_ROWS; a bulk execution's row
 * count is the sum over its rows). The inserts run before the updates: an
 * update of a transaction inserted in the same group comes later in the
 * queue, and an insert that follows any write of its gid in the group
 * finds the row and loses the bet however it is ordered. Updates run in
 * queue order, so a transaction's writes still apply in order, as do the
 * branch and op rows (each a later write's row overwriting an earlier
 * one's). When the bet is lost nothing of the group stays (ROLLBACK) and
 * the caller goes write by write, which tells the writes apart.
 *
 * Values keep the text path's mapping (tm_store_mysql_write.c): a NULL
 * payload, deps or options is stored empty, a NULL reason, target, error
 * or result as NULL.
 */
#include "tm_log.h"
#include "tm_store_mysql_impl.h"

#include <mariadb_com.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the statements ---------------------------------------------------- */

static const char *const bulk_sql[MY_BULK_N] = {
    [MY_BULK_INSERT] =
        "INSERT IGNORE INTO trellis_trans (gid, status, created_ms,"
        " updated_ms, finished_ms, reason, submit_hash, options, owner,"
        " lease_ms, origin) VALUES (?,?,?,?,?,?,?,?,?,? + " DB_NOW ",?)",
    [MY_BULK_UPDATE] =
        "UPDATE trellis_trans SET status=?, updated_ms=?, finished_ms=?,"
        " reason=?, submit_hash=?, lease_ms=IF(?, NULL, lease_ms)"
        " WHERE gid=? AND owner=? AND generation=? AND"
        " (" TM_STORE_SQL_UNFINISHED " OR (status=? AND updated_ms=?))",
    [MY_BULK_BRANCH] =
        "INSERT INTO trellis_branch (gid, idx, branch_id, mode,"
        " initiator_driven, payload, depends_on, kind0, target0, kind1,"
        " target1, kind2, target2, pivot) VALUES"
        " (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON DUPLICATE KEY UPDATE branch_id=VALUES(branch_id),"
        " mode=VALUES(mode), initiator_driven=VALUES(initiator_driven),"
        " payload=VALUES(payload), depends_on=VALUES(depends_on),"
        " kind0=VALUES(kind0), target0=VALUES(target0), kind1=VALUES(kind1),"
        " target1=VALUES(target1), kind2=VALUES(kind2),"
        " target2=VALUES(target2), pivot=VALUES(pivot)",
    [MY_BULK_OP] =
        "INSERT INTO trellis_op (gid, idx, slot, status, attempts,"
        " last_error, attempt_ms, finished_ms, late, recorded, result,"
        " result_size) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON DUPLICATE KEY UPDATE status=VALUES(status),"
        " attempts=VALUES(attempts), last_error=VALUES(last_error),"
        " attempt_ms=VALUES(attempt_ms), finished_ms=VALUES(finished_ms),"
        " late=VALUES(late), recorded=VALUES(recorded),"
        " result=VALUES(result), result_size=VALUES(result_size)",
};
static const unsigned bulk_params[MY_BULK_N] = {11, 11, 14, 12};

void my_bulk_drop(my_store_t *m)
{
    for (int i = 0; i < MY_BULK_N; i++) {
        if (m->bulk_stmt[i])
            mysql_stmt_close(m->bulk_stmt[i]);
        m->bulk_stmt[i] = NULL;
    }
    m->bulk_state = 0;
}

static void log_stmt_error(MYSQL_STMT *st, const char *what)
{
    char q[512];
    tm_log(TM_LOG_WARN, "event=store_bulk_failed what=%s err=\"%s\" code=%u",
           what, tm_log_quote(mysql_stmt_error(st), q, sizeof(q)),
           mysql_stmt_errno(st));
}

/* 1 when the writer's server runs bulk executions and the statements are
 * prepared on it; 0 when not, or when one would not prepare (the text
 * path serves this session). Prepares them on the first group of each
 * session. -1 when out of memory. */
static int bulk_ready(my_store_t *m)
{
    if (m->bulk_state)
        return m->bulk_state > 0;
    unsigned long caps = 0;
    if (mariadb_get_infov(m->wdb,
                          MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES,
                          &caps) != 0 ||
        !(caps & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32))) {
        m->bulk_state = -1;
        return 0;
    }
    for (int i = 0; i < MY_BULK_N; i++) {
        MYSQL_STMT *st = mysql_stmt_init(m->wdb);
        if (!st)
            return -1;
        m->bulk_stmt[i] = st;
        if (mysql_stmt_prepare(st, bulk_sql[i], strlen(bulk_sql[i])) != 0 ||
            mysql_stmt_param_count(st) != bulk_params[i]) {
            log_stmt_error(st, "prepare");
            my_bulk_drop(m);
            m->bulk_state = -1; /* this session keeps to the text path */
            return 0;
        }
    }
    m->bulk_state = 1;
    return 1;
}

/* ---- parameter arrays (column-wise) ------------------------------------ */

/* One statement's parameters for rows rows: per column an array of
 * 8-byte values (int64, or a pointer for bytes), of lengths and of
 * indicators. Owns bind and mem; the bytes pointed to are the group's. */
typedef struct {
    MYSQL_BIND *bind;
    unsigned char *mem;
    size_t rows;
} bulk_cols_t;

static int cols_init(bulk_cols_t *c, unsigned ncols, size_t rows)
{
    /* Each column's block starts 8-aligned: its values are int64s. */
    size_t per = (rows * (8 + sizeof(unsigned long) + 1) + 7) & ~(size_t)7;
    c->rows = rows;
    c->bind = calloc(ncols, sizeof(*c->bind));
    c->mem = calloc(ncols, per);
    if (!c->bind || !c->mem)
        return -1;
    for (unsigned k = 0; k < ncols; k++) {
        unsigned char *p = c->mem + k * per;
        c->bind[k].buffer = p;
        c->bind[k].length = (unsigned long *)(void *)(p + rows * 8);
        c->bind[k].u.indicator = (char *)(p + rows * (8 + sizeof(long)));
    }
    return 0;
}

static void cols_free(bulk_cols_t *c)
{
    free(c->bind);
    free(c->mem);
}

static void set_i64(bulk_cols_t *c, unsigned k, size_t r, int64_t v)
{
    c->bind[k].buffer_type = MYSQL_TYPE_LONGLONG;
    ((int64_t *)c->bind[k].buffer)[r] = v;
}

static void set_u64(bulk_cols_t *c, unsigned k, size_t r, uint64_t v)
{
    c->bind[k].buffer_type = MYSQL_TYPE_LONGLONG;
    c->bind[k].is_unsigned = 1;
    ((uint64_t *)c->bind[k].buffer)[r] = v;
}

static void set_null(bulk_cols_t *c, unsigned k, size_t r)
{
    c->bind[k].u.indicator[r] = STMT_INDICATOR_NULL;
}

/* Bytes, as a binary string; NULL data: SQL NULL. */
static void set_bytes(bulk_cols_t *c, unsigned k, size_t r, const void *data,
                      size_t len)
{
    c->bind[k].buffer_type = MYSQL_TYPE_BLOB;
    ((const void **)c->bind[k].buffer)[r] = data ? data : "";
    c->bind[k].length[r] = (unsigned long)len;
    if (!data)
        set_null(c, k, r);
}

static void set_str(bulk_cols_t *c, unsigned k, size_t r, const char *s)
{
    set_bytes(c, k, r, s, s ? strlen(s) : 0);
}

/* Run statement i over c's rows; *rows_out: its row count (the sum over
 * the rows). 0, or -1 (logged here; a server's error is the session's
 * too, which the caller reports). */
static int run_bulk(my_store_t *m, int i, bulk_cols_t *c, uint64_t *rows_out)
{
    MYSQL_STMT *st = m->bulk_stmt[i];
    unsigned int size = (unsigned int)c->rows;
    if (mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &size) != 0 ||
        mysql_stmt_bind_param(st, c->bind) != 0 ||
        mysql_stmt_execute(st) != 0) {
        log_stmt_error(st, "execute");
        return -1;
    }
    if (rows_out)
        *rows_out = (uint64_t)mysql_stmt_affected_rows(st);
    return 0;
}

/* ---- the group's rows -------------------------------------------------- */

static void fill_insert(bulk_cols_t *c, size_t r, const my_store_t *m,
                        const tm_write_t *w)
{
    set_str(c, 0, r, w->gid);
    set_i64(c, 1, r, w->status);
    set_i64(c, 2, r, w->created_ms);
    set_i64(c, 3, r, w->updated_ms);
    set_i64(c, 4, r, w->finished_ms);
    set_str(c, 5, r, w->reason);
    set_u64(c, 6, r, w->submit_hash);
    set_bytes(c, 7, r, w->options ? w->options : (const uint8_t *)"",
              w->options_len);
    set_str(c, 8, r, m->node_id);
    set_i64(c, 9, r, m->lease_ms);
    if (tm_tx_is_final((tm_tx_status_t)w->status))
        set_null(c, 9, r);
    set_str(c, 10, r, m->node_id);
}

static void fill_update(bulk_cols_t *c, size_t r, const my_store_t *m,
                        const tm_write_t *w)
{
    set_i64(c, 0, r, w->status);
    set_i64(c, 1, r, w->updated_ms);
    set_i64(c, 2, r, w->finished_ms);
    set_str(c, 3, r, w->reason);
    set_u64(c, 4, r, w->submit_hash);
    set_i64(c, 5, r, tm_tx_is_final((tm_tx_status_t)w->status));
    set_str(c, 6, r, w->gid);
    set_str(c, 7, r, m->node_id);
    set_u64(c, 8, r, w->generation);
    set_i64(c, 9, r, w->status);
    set_i64(c, 10, r, w->updated_ms);
}

static void fill_branch(bulk_cols_t *c, size_t r, const char *gid,
                        const tm_w_branch_t *br)
{
    set_str(c, 0, r, gid);
    set_i64(c, 1, r, br->idx);
    set_str(c, 2, r, br->branch_id);
    set_i64(c, 3, r, br->mode);
    set_i64(c, 4, r, br->initiator_driven);
    set_bytes(c, 5, r, br->payload ? br->payload : (const uint8_t *)"",
              br->payload_len);
    set_str(c, 6, r, br->deps ? br->deps : "");
    for (unsigned k = 0; k < TM_SLOTS; k++) {
        set_i64(c, 7 + 2 * k, r, br->kind[k]);
        set_str(c, 8 + 2 * k, r, br->target[k]);
    }
    set_i64(c, 13, r, br->pivot);
}

static void fill_op(bulk_cols_t *c, size_t r, const char *gid,
                    const tm_w_op_t *o)
{
    set_str(c, 0, r, gid);
    set_i64(c, 1, r, o->branch);
    set_i64(c, 2, r, o->slot);
    set_i64(c, 3, r, o->status);
    set_i64(c, 4, r, o->attempts);
    set_str(c, 5, r, o->last_error);
    set_str(c, 6, r, o->attempt_ms);
    set_i64(c, 7, r, o->finished_ms);
    set_i64(c, 8, r, o->late);
    set_i64(c, 9, r, o->recorded);
    set_bytes(c, 10, r, o->result, o->result_len);
    set_u64(c, 11, r, o->result_size);
}

/* How many rows each statement gets from group, and about how many bytes
 * the group's variable-length values take. */
typedef struct {
    size_t n[MY_BULK_N];
    size_t bytes;
} bulk_count_t;

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

static void count_group(const tm_write_t *group, bulk_count_t *k)
{
    memset(k, 0, sizeof(*k));
    for (const tm_write_t *w = group; w; w = w->next) {
        k->n[w->insert ? MY_BULK_INSERT : MY_BULK_UPDATE]++;
        k->n[MY_BULK_BRANCH] += w->n_branches;
        k->n[MY_BULK_OP] += w->n_ops;
        k->bytes += 256 + w->options_len + slen(w->reason);
        for (size_t i = 0; i < w->n_branches; i++) {
            const tm_w_branch_t *br = &w->branches[i];
            k->bytes += 256 + br->payload_len + slen(br->deps);
            for (int s = 0; s < TM_SLOTS; s++)
                k->bytes += slen(br->target[s]);
        }
        for (size_t i = 0; i < w->n_ops; i++)
            k->bytes += 256 + w->ops[i].result_len +
                        slen(w->ops[i].last_error) + slen(w->ops[i].attempt_ms);
    }
}

/* Fill statement i's rows from group, in queue order. */
static void fill_rows(int i, bulk_cols_t *c, const my_store_t *m,
                      const tm_write_t *group)
{
    size_t r = 0;
    for (const tm_write_t *w = group; w; w = w->next) {
        if (i == MY_BULK_INSERT && w->insert)
            fill_insert(c, r++, m, w);
        else if (i == MY_BULK_UPDATE && !w->insert)
            fill_update(c, r++, m, w);
        for (size_t b = 0; i == MY_BULK_BRANCH && b < w->n_branches; b++)
            fill_branch(c, r++, w->gid, &w->branches[b]);
        for (size_t o = 0; i == MY_BULK_OP && o < w->n_ops; o++)
            fill_op(c, r++, w->gid, &w->ops[o]);
    }
}

/* Run statement i over the group's rows for it (none: nothing sent). 1
 * when its row count is what the bet needs (headers: one per row; rows:
 * not checked), 0 when not, -1 on an error. */
static int run_part(my_store_t *m, int i, const tm_write_t *group,
                    const bulk_count_t *k)
{
    if (k->n[i] == 0)
        return 1;
    bulk_cols_t c;
    int rc = -1;
    uint64_t got = 0;
    if (cols_init(&c, bulk_params[i], k->n[i]) == 0) {
        fill_rows(i, &c, m, group);
        rc = run_bulk(m, i, &c, &got) == 0 ? 1 : -1;
    }
    cols_free(&c);
    if (rc == 1 && (i == MY_BULK_INSERT || i == MY_BULK_UPDATE) &&
        got != k->n[i])
        rc = 0;
    return rc;
}

int my_apply_group_bulk(my_store_t *m, tm_write_t *group)
{
    bulk_count_t k;
    count_group(group, &k);
    /* A group too large for one packet per statement goes write by
     * write, which splits its SQL by size. */
    if (k.bytes > m->flush_bytes)
        return 1;
    int ready = bulk_ready(m);
    if (ready <= 0)
        return ready < 0 ? -1 : 2;
    for (tm_write_t *w = group; w; w = w->next)
        w->result = TM_WRITE_DONE;
    for (int i = 0; i < MY_BULK_N; i++) {
        int rc = run_part(m, i, group, &k);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return my_exec(m->wdb, "ROLLBACK") == 0 ? 1 : -1;
    }
    return 0;
}
