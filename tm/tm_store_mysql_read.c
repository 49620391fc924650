/*
 * tm_store_mysql_read: the MySQL engine's reads — peek, get, list and the
 * load of this node's unfinished transactions at start — on a few reader
 * connections, each under its own mutex. A get reads the transaction's
 * three tables in one round trip and one snapshot.
 */
#include "tm_store_mysql_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading ---------------------------------------------------------- */

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
void my_build_get_sql(my_sql_t *b, const char *gid)
{
    my_sql_printf(b, GET_SNAPSHOT_BEGIN "%s WHERE gid=", trans_columns);
    my_sql_str(b, gid);
    my_sql_printf(b,
                  "; SELECT idx, branch_id, mode, initiator_driven, payload,"
                  " depends_on, kind0, target0, kind1, target1, kind2, target2"
                  " FROM trellis_branch WHERE gid=");
    my_sql_str(b, gid);
    my_sql_printf(b,
                  " ORDER BY idx; SELECT idx, slot, status, attempts,"
                  " last_error, attempt_ms, finished_ms, late FROM trellis_op"
                  " WHERE gid=");
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
 * after the failing one did not run): say why, then end it, so the next
 * read on this connection does not see the old snapshot. */
static void fail_get(MYSQL *db, char *err, size_t errlen)
{
    my_error(db, "reading a transaction", err, errlen);
    if (in_transaction(db))
        mysql_query(db, "ROLLBACK");
}

/* Read the results of my_build_get_sql already sent on db. Returns 1 with
 * *out, 0 when not found, -1 with err. */
int my_read_get_results(MYSQL *db, tm_trans_t **out, char *err, size_t errlen)
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
        items[*n] = row_to_trans(row, mysql_fetch_lengths(res));
        if (!items[*n])
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
