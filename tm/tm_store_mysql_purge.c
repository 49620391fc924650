/*
 * tm_store_mysql_purge: retention on the MySQL engine - the purge thread,
 * on a connection of its own, deletes finished transactions older than
 * --retention-s in batches, each batch one committed database transaction
 * (durable like every other: the server's own flush setting).
 *
 * Why a thread of its own: on the lease thread a purge had to stay short
 * so renewals kept their time, which capped retention at a few batches
 * every lease/5 - slower than saga2 creates transactions, so a store
 * under load kept growing. Here batches run back to back while a backlog
 * lasts, pausing a quarter of each slice's time (so the purge connection
 * is busy at most four fifths of the time and the writer gets its turn),
 * and look again once a second when there is nothing to delete. Rows
 * another node is deleting or writing are skipped (SKIP LOCKED), so nodes
 * purging at once share the work.
 */
#include "tm_log.h"
#include "tm_store_mysql_impl.h"
#include "tm_timer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finished transactions deleted per batch (one commit). */
#define PURGE_BATCH 500
/* Batches back to back for at most this long; then a pause of a quarter
 * of the slice's time (PURGE_PAUSE_DIV). With half, retention deleted
 * 1,800 transactions/s beside saga2's 3,960 on the 2-core box. */
#define PURGE_SLICE_MS 200
#define PURGE_PAUSE_DIV 4
/* Nothing (more) to delete: look again after this long. */
#define PURGE_IDLE_MS 1000

/* The gids of the SELECT just run on pdb, and the created_ms (second
 * column) of the last row into *last. NULL with *n = 0 on an error. */
static char **collect_batch(MYSQL *db, size_t *n, int64_t *last)
{
    *n = 0;
    MYSQL_RES *res = mysql_store_result(db);
    if (!res)
        return NULL;
    size_t rows = (size_t)mysql_num_rows(res);
    char **gids = calloc(rows ? rows : 1, sizeof(*gids));
    MYSQL_ROW row;
    while (gids && (row = mysql_fetch_row(res))) {
        unsigned long *len = mysql_fetch_lengths(res);
        gids[*n] = calloc(1, len[0] + 1);
        if (!gids[*n])
            break;
        memcpy(gids[(*n)++], row[0], len[0]);
        *last = row[1] ? strtoll(row[1], NULL, 10) : *last;
    }
    mysql_free_result(res);
    return gids;
}

/* Delete one batch of finished transactions older than cutoff on pdb,
 * from created_ms *from on (moved past the batch). Returns how many, or
 * -1. */
static long purge_batch(my_store_t *m, int64_t cutoff, int64_t *from)
{
    if (my_exec(m->pdb, "START TRANSACTION") != 0)
        return -1;
    my_sql_t b = {0};
    /* created_ms <= finished_ms, so the created index bounds the scan;
     * unfinished rows in that range are skipped, not deleted. The scan
     * starts where the last batch ended: the index entries of the rows
     * just deleted stay (delete-marked) until InnoDB's own purge removes
     * them, and every batch walking them again from the oldest made
     * retention slower the more it had deleted. */
    my_sql_printf(&b,
                  "SELECT gid, created_ms FROM trellis_trans"
                  " WHERE created_ms >= %" PRId64 " AND created_ms < %" PRId64
                  " AND finished_ms > 0 AND finished_ms < %" PRId64
                  " AND lease_ms IS NULL ORDER BY created_ms LIMIT %d"
                  " FOR UPDATE SKIP LOCKED",
                  *from, cutoff, cutoff, PURGE_BATCH);
    size_t n = 0;
    char **gids = mysql_real_query(m->pdb, b.p, (unsigned long)b.len) == 0
                      ? collect_batch(m->pdb, &n, from)
                      : NULL;
    my_sql_reset(&b);
    int rc = gids ? 0 : -1;
    if (rc == 0 && n > 0) {
        static const char *tables[] = {"trellis_op", "trellis_branch",
                                       "trellis_trans"};
        for (int t = 0; t < 3; t++) {
            my_sql_printf(&b, "DELETE FROM %s WHERE gid IN ", tables[t]);
            my_sql_gid_list(&b, gids, n);
            my_sql_printf(&b, ";");
        }
        my_sql_printf(&b, "COMMIT");
        rc = my_run(m->pdb, b.p, b.len, NULL, 0) < 0 ? -1 : 0;
    } else if (rc == 0) {
        rc = my_exec(m->pdb, "COMMIT");
    }
    free(b.p);
    my_free_gids(gids, n);
    return rc == 0 ? (long)n : -1;
}

static void purge_drop_connection(my_store_t *m)
{
    char q[512];
    tm_log(TM_LOG_WARN, "event=store_purge_error err=\"%s (%u)\"",
           tm_log_quote(mysql_error(m->pdb), q, sizeof(q)),
           mysql_errno(m->pdb));
    mysql_close(m->pdb);
    m->pdb = NULL;
}

/* Batches while they come back full, for up to PURGE_SLICE_MS, from
 * created_ms *from on (0 after a slice that caught up, or failed: rows
 * skipped on the way - unfinished then, or locked - are looked at again).
 * Returns 1 when the last one was full (a backlog), 0 when caught up, -1
 * on an error (the connection dropped: the next slice opens a new one). */
static int purge_slice(my_store_t *m, int64_t *from)
{
    char err[512], q[512];
    if (!m->pdb && !(m->pdb = my_connect(m, 1, err, sizeof(err)))) {
        tm_log(TM_LOG_ERROR, "event=store_unavailable conn=purge err=\"%s\"",
               tm_log_quote(err, q, sizeof(q)));
        return -1;
    }
    int64_t cutoff = tm_wall_ms() - (int64_t)m->store->retention_ms;
    int64_t started = tm_mono_ms();
    long n;
    do {
        n = purge_batch(m, cutoff, from);
        if (n < 0) {
            purge_drop_connection(m);
            *from = 0;
            return -1;
        }
        if (n > 0)
            tm_store_count(m->store, TM_STAT_PURGED, (uint64_t)n);
    } while (n == PURGE_BATCH && tm_mono_ms() - started < PURGE_SLICE_MS);
    if (n < PURGE_BATCH)
        *from = 0;
    return n == PURGE_BATCH;
}

void *my_purge_thread_main(void *arg)
{
    my_store_t *m = arg;
    pthread_setname_np(pthread_self(), "tm-purge");
    int64_t pause = PURGE_IDLE_MS, from = 0;
    while (!my_wait_stopping(m, pause)) {
        int64_t t0 = tm_mono_ms();
        int more = purge_slice(m, &from);
        int64_t spent = tm_mono_ms() - t0;
        spent /= PURGE_PAUSE_DIV;
        pause = more > 0 ? (spent > 5 ? spent : 5) : PURGE_IDLE_MS;
    }
    return NULL;
}
