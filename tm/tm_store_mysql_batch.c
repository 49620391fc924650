/*
 * tm_store_mysql_batch: a whole group in one round trip on the writer
 * (store thread only). The per-write path (tm_store_mysql_write.c) sends
 * one header statement per write and reads each one's row count before it
 * sends the rows, because a refused header (EXISTS, LOST) must keep its
 * write's rows out. Nearly always nothing is refused, so this path bets on
 * it: the headers of all the writes go as a few multi-row statements — one
 * INSERT IGNORE for the new transactions and one fenced UPDATE (a CASE per
 * column) for the others, per level — and the branch and op rows follow in
 * the same round trip, without COMMIT. A write's level is the number of
 * writes of its transaction before it in the group, so a transaction's
 * writes still apply in queue order. The bet is then checked: each header
 * statement's row count must equal its number of writes (every insert
 * inserted, every fenced update matched, CLIENT_FOUND_ROWS). If so, every
 * write is DONE and the caller commits; if not, the transaction is rolled
 * back and the caller takes the per-write path, which tells the writes
 * apart. The answers are the same either way. Where the server runs bulk
 * executions (MariaDB), the group goes as prepared statements instead
 * (tm_store_mysql_bulk.c); this SQL text serves the others (MySQL).
 */
#include "tm_store_mysql_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The header columns an update sets, each as a CASE on gid. */
enum { COL_STATUS, COL_UPDATED, COL_FINISHED, COL_REASON, COL_HASH, N_COLS };
static const char *const col_name[N_COLS] = {
    "status", "updated_ms", "finished_ms", "reason", "submit_hash"};

static void append_value(my_sql_t *b, const tm_write_t *w, int col)
{
    switch (col) {
    case COL_STATUS:
        my_sql_printf(b, "%d", w->status);
        break;
    case COL_UPDATED:
        my_sql_printf(b, "%" PRId64, w->updated_ms);
        break;
    case COL_FINISHED:
        my_sql_printf(b, "%" PRId64, w->finished_ms);
        break;
    case COL_REASON:
        my_sql_str(b, w->reason);
        break;
    default:
        my_sql_printf(b, "%" PRIu64, w->submit_hash);
        break;
    }
}

/* Each write's level (writes of its transaction before it in the group)
 * into level[n]; returns the highest level. */
static size_t find_levels(const tm_write_t *group, size_t *level)
{
    size_t top = 0, i = 0;
    for (const tm_write_t *w = group; w; w = w->next, i++) {
        level[i] = 0;
        size_t j = 0;
        for (const tm_write_t *x = group; x != w; x = x->next, j++)
            if (level[j] + 1 > level[i] && strcmp(x->gid, w->gid) == 0)
                level[i] = level[j] + 1;
        if (level[i] > top)
            top = level[i];
    }
    return top;
}

/* One INSERT IGNORE for the new transactions at level lv; returns how
 * many rows it carries (0: no statement). */
static size_t append_inserts(my_sql_t *b, const my_store_t *m,
                             const tm_write_t *group, const size_t *level,
                             size_t lv)
{
    size_t rows = 0, i = 0;
    for (const tm_write_t *w = group; w; w = w->next, i++) {
        if (!w->insert || level[i] != lv)
            continue;
        my_sql_printf(b, rows ? "," : "%s", my_trans_insert_head);
        my_append_insert_values(b, m, w);
        rows++;
    }
    if (rows)
        my_sql_printf(b, ";");
    return rows;
}

static int is_update_at(const tm_write_t *w, const size_t *level, size_t i,
                        size_t lv)
{
    return !w->insert && level[i] == lv;
}

/* col = CASE gid WHEN ... THEN ... END over the updates at level lv. */
static void append_case(my_sql_t *b, const tm_write_t *group,
                        const size_t *level, size_t lv, int col)
{
    my_sql_printf(b, "%s%s=CASE gid", col ? "," : "", col_name[col]);
    size_t i = 0;
    for (const tm_write_t *w = group; w; w = w->next, i++) {
        if (!is_update_at(w, level, i, lv))
            continue;
        my_sql_printf(b, " WHEN ");
        my_sql_str(b, w->gid);
        my_sql_printf(b, " THEN ");
        append_value(b, w, col);
    }
    my_sql_printf(b, " END");
}

/* lease_ms=NULL for the final ones among the updates at level lv (none:
 * nothing appended). */
static void append_final_leases(my_sql_t *b, const tm_write_t *group,
                                const size_t *level, size_t lv)
{
    int any = 0;
    size_t i = 0;
    for (const tm_write_t *w = group; w; w = w->next, i++) {
        if (!is_update_at(w, level, i, lv) ||
            !tm_tx_is_final((tm_tx_status_t)w->status))
            continue;
        my_sql_printf(b, any ? " WHEN " : ",lease_ms=CASE gid WHEN ");
        my_sql_str(b, w->gid);
        my_sql_printf(b, " THEN NULL");
        any = 1;
    }
    if (any)
        my_sql_printf(b, " ELSE lease_ms END");
}

/* The fence of each update at level lv, as the per-write path's (see
 * append_header_update in tm_store_mysql_write.c), OR-ed. */
static void append_fences(my_sql_t *b, const my_store_t *m,
                          const tm_write_t *group, const size_t *level,
                          size_t lv)
{
    my_sql_printf(b, " WHERE owner=");
    my_sql_str(b, m->node_id);
    my_sql_printf(b, " AND (");
    size_t i = 0, k = 0;
    for (const tm_write_t *w = group; w; w = w->next, i++) {
        if (!is_update_at(w, level, i, lv))
            continue;
        my_sql_printf(b, "%s(gid=", k++ ? " OR " : "");
        my_sql_str(b, w->gid);
        my_sql_printf(b,
                      " AND generation=%" PRIu64
                      " AND (" TM_STORE_SQL_UNFINISHED
                      " OR (status=%d AND updated_ms=%" PRId64 ")))",
                      w->generation, w->status, w->updated_ms);
    }
    my_sql_printf(b, ");");
}

/* One fenced UPDATE for the other writes at level lv; returns how many
 * rows it must match (0: no statement). */
static size_t append_updates(my_sql_t *b, const my_store_t *m,
                             const tm_write_t *group, const size_t *level,
                             size_t lv)
{
    size_t rows = 0, i = 0;
    for (const tm_write_t *w = group; w; w = w->next, i++)
        rows += (size_t)is_update_at(w, level, i, lv);
    if (!rows)
        return 0;
    my_sql_printf(b, "UPDATE trellis_trans SET ");
    for (int col = 0; col < N_COLS; col++)
        append_case(b, group, level, lv, col);
    append_final_leases(b, group, level, lv);
    append_fences(b, m, group, level, lv);
    return rows;
}

/* Build the group's header statements after SET @now into b; expect[]
 * (room for 2 * (top + 1)) gets each statement's row count. Returns the
 * number of header statements. */
static size_t build_headers(my_sql_t *b, const my_store_t *m,
                            const tm_write_t *group, const size_t *level,
                            size_t top, uint64_t *expect)
{
    size_t stmts = 0;
    my_sql_printf(b, "SET @now = " DB_NOW ";");
    for (size_t lv = 0; lv <= top; lv++) {
        size_t rows = append_inserts(b, m, group, level, lv);
        if (rows)
            expect[stmts++] = rows;
        rows = append_updates(b, m, group, level, lv);
        if (rows)
            expect[stmts++] = rows;
    }
    return stmts;
}

/* Run what b holds: 1 when each header statement (after the SET) matched
 * its expected row count, 0 when one did not, -1 on an error. */
static int run_and_check(my_store_t *m, const my_sql_t *b,
                         const uint64_t *expect, size_t stmts)
{
    int max = (int)stmts + 3; /* SET, the headers, branch and op rows */
    uint64_t *counts = calloc((size_t)max, sizeof(*counts));
    if (!counts)
        return -1;
    int got = my_writer_run(m, b, counts, max);
    int rc = got < (int)stmts + 1 ? -1 : 1;
    for (size_t i = 0; rc == 1 && i < stmts; i++)
        if (counts[i + 1] != expect[i])
            rc = 0;
    free(counts);
    return rc;
}

int my_apply_group_at_once(my_store_t *m, tm_write_t *group, size_t n)
{
    int bulk = my_apply_group_bulk(m, group);
    if (bulk != 2)
        return bulk;
    my_sql_t *b = &m->wsql;
    size_t *level = malloc(n * sizeof(*level));
    uint64_t *expect = malloc(2 * n * sizeof(*expect));
    int rc = 1;
    if (!level || !expect)
        goto out;
    my_sql_reset(b);
    for (tm_write_t *w = group; w; w = w->next)
        w->result = TM_WRITE_DONE;
    size_t top = find_levels(group, level);
    size_t stmts = build_headers(b, m, group, level, top, expect);
    /* Rows are built without sending: a group whose SQL outgrows one
     * statement's share of the packet limit goes write by write. */
    if (my_append_rows(m, b, group, 0) != 0 || b->len > m->flush_bytes)
        goto out;
    int won = run_and_check(m, b, expect, stmts);
    if (won < 0)
        rc = -1;
    else if (won == 1)
        rc = 0;
    else
        rc = my_exec(m->wdb, "ROLLBACK") == 0 ? 1 : -1;
out:
    free(level);
    free(expect);
    my_sql_reset(b);
    return rc;
}
