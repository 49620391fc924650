/*
 * tm_store_mysql_read: the MySQL engine's reads — peek, get, list and the
 * load of this node's unfinished transactions at start — on a few reader
 * connections, each under its own mutex. A get reads the transaction's
 * three tables in one round trip and one snapshot; the rows become the
 * model through tm_store_codec (shared with SQLite).
 */
#include "tm_store_codec.h"
#include "tm_store_mysql_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ------------------------------------------------------------ */

my_reader_t *my_reader_take(my_store_t *m)
{
    unsigned start = atomic_fetch_add(&m->next_reader, 1);
    for (unsigned i = 0; i < N_READERS; i++) {
        my_reader_t *r = &m->readers[(start + i) % N_READERS];
        if (pthread_mutex_trylock(&r->mu) == 0)
            return r;
    }
    my_reader_t *r = &m->readers[start % N_READERS];
    pthread_mutex_lock(&r->mu);
    return r;
}

void my_reader_give(my_reader_t *r)
{
    pthread_mutex_unlock(&r->mu);
}

/* Send sql on the reader, connecting (again) if needed; one retry on a
 * fresh session covers a database restart. Returns 0, or -1 with err. */
int my_reader_send(my_store_t *m, my_reader_t *r, const char *sql, size_t len,
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
    "SELECT " TM_STORE_CODEC_TRANS_COLUMNS ", generation FROM trellis_trans";

/* The current row of res as the codec's columns (the values stay res's);
 * returns how many. */
static size_t row_cols(MYSQL_RES *res, MYSQL_ROW row, tm_store_codec_col_t *c)
{
    const unsigned long *len = mysql_fetch_lengths(res);
    size_t n = mysql_num_fields(res);
    if (n > TM_STORE_CODEC_MAX_COLS)
        n = TM_STORE_CODEC_MAX_COLS;
    for (size_t i = 0; i < n; i++)
        c[i] = (tm_store_codec_col_t){.p = row[i], .len = row[i] ? len[i] : 0};
    return n;
}

static int row_to_trans(MYSQL_RES *res, MYSQL_ROW row, tm_trans_t **tx,
                        char *err, size_t errlen)
{
    tm_store_codec_col_t c[TM_STORE_CODEC_MAX_COLS];
    return tm_store_codec_trans(c, row_cols(res, row, c), tx, err, errlen);
}

static int rows_to_branches(MYSQL_RES *res, tm_trans_t *tx, char *err,
                            size_t errlen)
{
    tm_store_codec_col_t c[TM_STORE_CODEC_MAX_COLS];
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        tm_branch_t *b;
        if (tm_store_codec_branch(tx, c, row_cols(res, row, c), &b, err,
                                  errlen) != 0)
            return -1;
    }
    return 0;
}

static int rows_to_ops(MYSQL_RES *res, tm_trans_t *tx, char *err, size_t errlen)
{
    tm_store_codec_col_t c[TM_STORE_CODEC_MAX_COLS];
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)))
        if (tm_store_codec_op(tx, c, row_cols(res, row, c), err, errlen) != 0)
            return -1;
    return 0;
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
void my_build_get_sql(my_sql_t *b, const char *gid)
{
    my_sql_printf(b, GET_SNAPSHOT_BEGIN "%s WHERE gid=", trans_columns);
    my_sql_str(b, gid);
    my_sql_printf(b, "; SELECT " TM_STORE_CODEC_BRANCH_COLUMNS
                     " FROM trellis_branch WHERE gid=");
    my_sql_str(b, gid);
    my_sql_printf(b, " ORDER BY idx; SELECT " TM_STORE_CODEC_OP_COLUMNS
                     " FROM trellis_op WHERE gid=");
    my_sql_str(b, gid);
    my_sql_printf(b, GET_SNAPSHOT_END);
}

static int in_transaction(MYSQL *db)
{
    unsigned st = 0;
    if (mariadb_get_infov(db, MARIADB_CONNECTION_SERVER_STATUS, &st) != 0)
        return 0;
    return (st & SERVER_STATUS_IN_TRANS) != 0;
}

/* A read that failed half way left its snapshot open (the statements
 * after the failing one did not run): say why (unless err says already:
 * rows that did not decode), then end it, so the next read on this
 * connection does not see the old snapshot. */
static void fail_get(MYSQL *db, int have_err, char *err, size_t errlen)
{
    if (!have_err)
        my_error(db, "reading a transaction", err, errlen);
    if (in_transaction(db))
        mysql_query(db, "ROLLBACK");
}

/* Read the results of my_build_get_sql already sent on db. Returns 1 with
 * *out, 0 when not found, -1 with err. */
int my_read_get_results(MYSQL *db, tm_trans_t **out, char *err, size_t errlen)
{
    tm_trans_t *tx = NULL;
    int rc = 0, decode_failed = 0;
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
            if (row)
                rc = row_to_trans(res, row, &tx, err, errlen) == 0 ? 1 : -1;
        } else if (tx && i == 1) {
            rc = rows_to_branches(res, tx, err, errlen) == 0 ? rc : -1;
        } else if (tx && i == 2) {
            rc = rows_to_ops(res, tx, err, errlen) == 0 ? rc : -1;
        }
        decode_failed = rc < 0;
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
        fail_get(db, decode_failed, err, errlen);
    if (rc != 1) {
        tm_trans_free(tx);
        return rc;
    }
    tm_store_codec_finish(tx);
    *out = tx;
    return 1;
}

static int get_on_reader(my_store_t *m, my_reader_t *r, const char *gid,
                         tm_trans_t **out, char *err, size_t errlen)
{
    my_sql_t b = {0};
    my_build_get_sql(&b, gid);
    int rc = my_reader_send(m, r, b.p, b.len, err, errlen);
    free(b.p);
    if (rc != 0)
        return -1;
    return my_read_get_results(r->db, out, err, errlen);
}

int my_get(tm_store_t *store, const char *gid, tm_trans_t **out, char *err,
           size_t errlen)
{
    my_store_t *m = store->impl;
    my_reader_t *r = my_reader_take(m);
    int rc = get_on_reader(m, r, gid, out, err, errlen);
    my_reader_give(r);
    return rc;
}

int my_peek(tm_store_t *store, const char *gid, tm_tx_status_t *status,
            uint64_t *submit_hash, char *err, size_t errlen)
{
    my_store_t *m = store->impl;
    my_sql_t b = {0};
    my_sql_printf(&b,
                  "SELECT status, submit_hash FROM trellis_trans WHERE gid=");
    my_sql_str(&b, gid);
    my_reader_t *r = my_reader_take(m);
    int found = -1;
    if (my_reader_send(m, r, b.p, b.len, err, errlen) == 0) {
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
    my_reader_give(r);
    free(b.p);
    return found;
}

/* Collect the first column of every row of the result on db. */
char **my_collect_gids(MYSQL *db, size_t *n)
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

void my_free_gids(char **gids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(gids[i]);
    free(gids);
}

/* ---- the load at start: many transactions per round trip --------------
 *
 * One get per transaction costs a round trip and a snapshot each: 100,000
 * unfinished transactions took 26 s to load on the 2-core box. The load
 * reads them LOAD_CHUNK at a time instead - the three tables' rows of the
 * whole chunk in one round trip and one snapshot, ordered by gid - and
 * hands them on in the order the chunk's gids came (creation order). */
#define LOAD_CHUNK 500

typedef struct {
    tm_trans_t **txs; /* sorted by gid (the result's order) */
    size_t n;
} my_chunk_t;

static int by_gid(const void *a, const void *b)
{
    const char *g = a;
    const tm_trans_t *const *t = b;
    return strcmp(g, (*t)->gid);
}

static int by_trans_gid(const void *a, const void *b)
{
    const tm_trans_t *const *x = a, *const *y = b;
    return strcmp((*x)->gid, (*y)->gid);
}

static tm_trans_t *chunk_find(const my_chunk_t *c, const char *gid)
{
    tm_trans_t **t = bsearch(gid, c->txs, c->n, sizeof(*c->txs), by_gid);
    return t ? *t : NULL;
}

/* The three reads of gids[0..n) in one snapshot: transactions, then their
 * branches (by gid, idx) and ops, each row with its gid last. */
static void build_chunk_sql(my_sql_t *b, char **gids, size_t n)
{
    my_sql_printf(b, GET_SNAPSHOT_BEGIN "%s WHERE gid IN ", trans_columns);
    my_sql_gid_list(b, gids, n);
    my_sql_printf(b, " ORDER BY gid; SELECT " TM_STORE_CODEC_BRANCH_COLUMNS
                     ", gid FROM trellis_branch WHERE gid IN ");
    my_sql_gid_list(b, gids, n);
    my_sql_printf(b, " ORDER BY gid, idx; SELECT " TM_STORE_CODEC_OP_COLUMNS
                     ", gid FROM trellis_op WHERE gid IN ");
    my_sql_gid_list(b, gids, n);
    my_sql_printf(b, GET_SNAPSHOT_END);
}

/* The transaction a branch or op row belongs to (its last column), or
 * NULL. */
static tm_trans_t *row_owner(const my_chunk_t *c, MYSQL_RES *res, MYSQL_ROW row)
{
    unsigned last = mysql_num_fields(res) - 1;
    const unsigned long *len = mysql_fetch_lengths(res);
    char gid[TM_GID_MAX + 1];
    if (!row[last] || len[last] > TM_GID_MAX)
        return NULL;
    memcpy(gid, row[last], len[last]);
    gid[len[last]] = '\0';
    return chunk_find(c, gid);
}

/* Decode result i (0 transactions, 1 branches, 2 ops) into c. Returns 0,
 * or -1 with err. */
static int chunk_rows(my_chunk_t *c, MYSQL_RES *res, int i, char *err,
                      size_t errlen)
{
    tm_store_codec_col_t col[TM_STORE_CODEC_MAX_COLS];
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        size_t ncol = row_cols(res, row, col);
        tm_trans_t *tx = i ? row_owner(c, res, row) : NULL;
        tm_branch_t *b;
        int rc = 0;
        if (i == 0 && c->n == LOAD_CHUNK) {
            snprintf(err, errlen, "more transactions than gids asked for");
            rc = -1;
        } else if (i == 0 && (rc = tm_store_codec_trans(col, ncol, &tx, err,
                                                        errlen)) == 0) {
            c->txs[c->n++] = tx;
        } else if (i == 1 && tx)
            rc = tm_store_codec_branch(tx, col, ncol, &b, err, errlen);
        else if (i == 2 && tx)
            rc = tm_store_codec_op(tx, col, ncol, err, errlen);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Read the results of build_chunk_sql on db into c (room for n). Returns
 * 0, or -1 with err. */
static int read_chunk(MYSQL *db, my_chunk_t *c, char *err, size_t errlen)
{
    int rc = 0, decode_failed = 0;
    for (int i = 0; i < GET_SNAPSHOT_STATEMENTS && rc == 0; i++)
        rc = mysql_next_result(db) == 0 ? 0 : -1;
    for (int i = 0; i < 3 && rc == 0; i++) {
        MYSQL_RES *res =
            i > 0 && mysql_next_result(db) != 0 ? NULL : mysql_store_result(db);
        if (!res) {
            rc = -1;
            break;
        }
        rc = chunk_rows(c, res, i, err, errlen);
        decode_failed = rc != 0;
        mysql_free_result(res);
        if (i == 0) /* the server's byte order; sorted again for bsearch */
            qsort(c->txs, c->n, sizeof(*c->txs), by_trans_gid);
    }
    while (mysql_more_results(db)) {
        if (mysql_next_result(db) != 0) {
            rc = -1;
            break;
        }
        mysql_free_result(mysql_store_result(db));
    }
    if (rc != 0)
        fail_get(db, decode_failed, err, errlen);
    return rc;
}

/* Load gids[0..n) (n <= LOAD_CHUNK) and hand each found one to fn, in
 * gids' order. Returns how many, or -1 with err. */
static long load_chunk(my_store_t *m, my_reader_t *r, char **gids, size_t n,
                       tm_store_each_fn fn, void *arg, char *err, size_t errlen)
{
    tm_trans_t *txs[LOAD_CHUNK];
    my_chunk_t c = {.txs = txs, .n = 0};
    my_sql_t b = {0};
    build_chunk_sql(&b, gids, n);
    int rc = my_reader_send(m, r, b.p, b.len, err, errlen);
    free(b.p);
    if (rc == 0)
        rc = read_chunk(r->db, &c, err, errlen);
    /* Found first, handed on after: fn may free a transaction while the
     * search still compares gids. */
    tm_trans_t *in_order[LOAD_CHUNK];
    for (size_t i = 0; rc == 0 && i < n; i++)
        in_order[i] = chunk_find(&c, gids[i]); /* NULL: purged meanwhile */
    long count = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!in_order[i])
            continue;
        tm_store_codec_finish(in_order[i]);
        fn(in_order[i], arg);
        count++;
    }
    if (rc != 0) /* none handed on */
        for (size_t i = 0; i < c.n; i++)
            tm_trans_free(c.txs[i]);
    return rc == 0 ? count : -1;
}

/* This node's unfinished transactions left by its previous run (same node
 * id): renew their leases first, so no other node claims one between our
 * read and our first act. */
long my_load_unfinished(tm_store_t *store, tm_store_each_fn fn, void *arg,
                        char *err, size_t errlen)
{
    my_store_t *m = store->impl;
    my_sql_t b = {0};
    my_sql_printf(&b,
                  "SET @now = " DB_NOW "; UPDATE trellis_trans SET"
                  " lease_ms=@now+%" PRId64
                  ", generation=generation+1 WHERE owner=",
                  m->lease_ms);
    my_sql_str(&b, m->node_id);
    my_sql_printf(&b, " AND lease_ms IS NOT NULL; SELECT gid FROM trellis_trans"
                      " WHERE owner=");
    my_sql_str(&b, m->node_id);
    my_sql_printf(&b, " AND lease_ms IS NOT NULL ORDER BY created_ms, gid");
    my_reader_t *r = my_reader_take(m);
    long count = -1;
    if (my_reader_send(m, r, b.p, b.len, err, errlen) == 0 &&
        mysql_next_result(r->db) == 0 && mysql_next_result(r->db) == 0) {
        size_t n;
        char **gids = my_collect_gids(r->db, &n);
        count = 0;
        for (size_t at = 0; at < n && count >= 0; at += LOAD_CHUNK) {
            long got = load_chunk(m, r, gids + at,
                                  n - at < LOAD_CHUNK ? n - at : LOAD_CHUNK, fn,
                                  arg, err, errlen);
            count = got < 0 ? -1 : count + got;
        }
        my_free_gids(gids, n);
    } else if (r->db) {
        my_error(r->db, "loading this node's transactions", err, errlen);
    }
    my_reader_give(r);
    free(b.p);
    return count;
}

static void build_list_sql(my_sql_t *b, const tm_store_filter_t *f)
{
    my_sql_printf(b, "%s WHERE 1=1", trans_columns);
    if (f->status)
        my_sql_printf(b, " AND status=%d", (int)f->status);
    if (f->created_after_ms)
        my_sql_printf(b, " AND created_ms > %" PRId64, f->created_after_ms);
    if (f->created_before_ms)
        my_sql_printf(b, " AND created_ms < %" PRId64, f->created_before_ms);
    if (f->after_gid) {
        my_sql_printf(b,
                      " AND (created_ms > %" PRId64 " OR (created_ms = %" PRId64
                      " AND gid > ",
                      f->after_created_ms, f->after_created_ms);
        my_sql_str(b, f->after_gid);
        my_sql_printf(b, "))");
    }
    my_sql_printf(b, " ORDER BY created_ms, gid LIMIT %u", f->limit);
}

int my_list(tm_store_t *store, const tm_store_filter_t *f, tm_trans_t ***out,
            size_t *n, char *err, size_t errlen)
{
    my_store_t *m = store->impl;
    *out = NULL;
    *n = 0;
    my_sql_t b = {0};
    build_list_sql(&b, f);
    my_reader_t *r = my_reader_take(m);
    int rc = my_reader_send(m, r, b.p, b.len, err, errlen);
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
        if (row_to_trans(res, row, &items[*n], err, errlen) != 0)
            break;
        (*n)++;
    }
    mysql_free_result(res);
    my_reader_give(r);
    if (rc == 0 && !items) {
        snprintf(err, errlen, "out of memory listing transactions");
        rc = -1;
    }
    *out = items;
    return rc;
}
