/*
 * tm_store_mysql_write: group commit on the writer connection (store
 * thread only). A group first goes as one round trip of multi-row
 * statements that bets every header applies (tm_store_mysql_batch.c),
 * then COMMIT. When the bet is lost (an insert finds its gid stored, an
 * update finds the transaction owned by another node or final), and on
 * every retry, it goes write by write, also in two round trips: (1) the
 * inserts and the fenced header updates, whose per-statement row counts
 * say which transactions this node still owns; (2) the branch and op rows
 * of the owned ones, and COMMIT. If the connection fails the group is
 * applied again on a new connection; every statement is idempotent, so a
 * commit whose answer was lost is harmless. A group the database refuses
 * for good is applied write by write, so only the write it cannot take
 * fails.
 */
#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_store_mysql_impl.h"

#include <errmsg.h>
#include <inttypes.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEDIUMBLOB_MAX 16777215u

/* ---- writing a group (store thread) ----------------------------------- */

/* my_run on the writer, unless the statements are larger than the server
 * takes: it would answer by closing the connection ("gone away", which
 * looks like an outage), so they are not sent and m->oversize says so. */
int my_writer_run(my_store_t *m, const my_sql_t *b, uint64_t *counts, int max)
{
    if (b->len > m->packet_bytes) {
        m->oversize = b->len;
        return -1;
    }
    return my_run(m->wdb, b->p, b->len, counts, max);
}

void my_append_insert_values(my_sql_t *b, const my_store_t *m,
                             const tm_write_t *w)
{
    my_sql_printf(b, "(");
    my_sql_str(b, w->gid);
    my_sql_printf(b, ",%d,%" PRId64 ",%" PRId64 ",%" PRId64 ",", w->status,
                  w->created_ms, w->updated_ms, w->finished_ms);
    my_sql_str(b, w->reason);
    my_sql_printf(b, ",%" PRIu64 ",", w->submit_hash);
    my_sql_hex(b, w->options ? w->options : (const uint8_t *)"",
               w->options_len);
    my_sql_printf(b, ",");
    my_sql_str(b, m->node_id);
    if (tm_tx_is_final((tm_tx_status_t)w->status))
        my_sql_printf(b, ",NULL,");
    else
        my_sql_printf(b, ",@now+%" PRId64 ",", m->lease_ms);
    my_sql_str(b, m->node_id);
    my_sql_printf(b, ")");
}

static void append_header_update(my_sql_t *b, const my_store_t *m,
                                 const tm_write_t *w)
{
    my_sql_printf(b,
                  "UPDATE trellis_trans SET status=%d, updated_ms=%" PRId64
                  ", finished_ms=%" PRId64 ", reason=",
                  w->status, w->updated_ms, w->finished_ms);
    my_sql_str(b, w->reason);
    my_sql_printf(b, ", submit_hash=%" PRIu64, w->submit_hash);
    if (tm_tx_is_final((tm_tx_status_t)w->status))
        my_sql_printf(b, ", lease_ms=NULL");
    my_sql_printf(b, " WHERE gid=");
    my_sql_str(b, w->gid);
    my_sql_printf(b, " AND owner=");
    my_sql_str(b, m->node_id);
    /* The fence: this node owns the row under the same claim its copy was
     * loaded under (ownership that went A -> B -> A leaves A's old copy
     * with an older generation). */
    my_sql_printf(b, " AND generation=%" PRIu64, w->generation);
    /* A final row is never rewritten (a stale copy gets LOST); the same
     * write applied again after a lost COMMIT still matches. */
    my_sql_printf(b,
                  " AND (" TM_STORE_SQL_UNFINISHED
                  " OR (status = %d AND updated_ms = %" PRId64 "));",
                  w->status, w->updated_ms);
}

/* After a retried group: an insert that found its gid stored is this
 * node's own insert from the earlier attempt (whose answer was lost) when
 * the row matches it exactly; otherwise the gid was stored before. The
 * row is matched by the node that inserted it, not by its owner: after an
 * outage longer than the lease another node may own it by now (this
 * node's copy then finds out with its next write, fenced by generation). */
static int own_earlier_insert(my_store_t *m, const tm_write_t *w)
{
    my_sql_t b = {0};
    my_sql_printf(&b, "SELECT COUNT(*) FROM trellis_trans WHERE gid=");
    my_sql_str(&b, w->gid);
    my_sql_printf(&b, " AND origin=");
    my_sql_str(&b, m->node_id);
    my_sql_printf(&b, " AND created_ms=%" PRId64 " AND submit_hash=%" PRIu64,
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

const char *const my_trans_insert_head =
    "INSERT IGNORE INTO trellis_trans (gid, status, created_ms,"
    " updated_ms, finished_ms, reason, submit_hash, options,"
    " owner, lease_ms, origin) VALUES ";

static void append_insert(my_sql_t *b, const my_store_t *m, const tm_write_t *w)
{
    my_sql_printf(b, "%s", my_trans_insert_head);
    my_append_insert_values(b, m, w);
    my_sql_printf(b, ";");
}

/* Run the header statements built in wsql (a SET @now, then one statement
 * per write of [first, end), count of them) and turn each one's row count
 * into its write's result. */
static int run_header_chunk(my_store_t *m, tm_write_t *first,
                            const tm_write_t *end, size_t count, int retried)
{
    my_sql_t *b = &m->wsql;
    uint64_t *counts = calloc(count + 1, sizeof(*counts));
    if (!counts)
        return -1;
    int rc =
        my_writer_run(m, b, counts, (int)count + 1) == (int)count + 1 ? 0 : -1;
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
    my_sql_t *b = &m->wsql;
    tm_write_t *w = group;
    while (w) {
        my_sql_reset(b);
        my_sql_printf(b, "SET @now = " DB_NOW ";");
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

/* w's header, or that of an earlier write of the same copy in this group
 * (same gid and generation), could not be applied: w's rows may not be
 * stored. A write of a copy loaded under a newer claim (another
 * generation) is judged by its own header: a fresh copy's refused insert
 * in the same group must not drop the claimed copy's rows. */
static int copy_refused(const tm_write_t *group, const tm_write_t *w)
{
    for (const tm_write_t *x = group; x; x = x->next) {
        if (refused(x) && x->generation == w->generation &&
            strcmp(x->gid, w->gid) == 0)
            return 1;
        if (x == w)
            break;
    }
    return 0;
}

static void append_branch_values(my_sql_t *b, const char *gid,
                                 const tm_w_branch_t *br)
{
    my_sql_printf(b, "(");
    my_sql_str(b, gid);
    my_sql_printf(b, ",%u,", br->idx);
    my_sql_str(b, br->branch_id);
    my_sql_printf(b, ",%d,%d,", br->mode, br->initiator_driven);
    my_sql_hex(b, br->payload ? br->payload : (const uint8_t *)"",
               br->payload_len);
    my_sql_printf(b, ",");
    my_sql_str(b, br->deps ? br->deps : "");
    for (int k = 0; k < TM_SLOTS; k++) {
        my_sql_printf(b, ",%d,", br->kind[k]);
        my_sql_str(b, br->target[k]);
    }
    my_sql_printf(b, ",%d)", br->pivot);
}

static void append_op_values(my_sql_t *b, const char *gid, const tm_w_op_t *o)
{
    my_sql_printf(b, "(");
    my_sql_str(b, gid);
    my_sql_printf(b, ",%u,%d,%d,%u,", o->branch, o->slot, o->status,
                  o->attempts);
    my_sql_str(b, o->last_error);
    my_sql_printf(b, ",");
    my_sql_str(b, o->attempt_ms);
    my_sql_printf(b, ",%" PRId64 ",%d,%d,", o->finished_ms, o->late,
                  o->recorded);
    my_sql_hex(b, o->result, o->result_len);
    my_sql_printf(b, ",%" PRIu64 ")", o->result_size);
}

static const char *branch_insert_head =
    "INSERT INTO trellis_branch (gid, idx, branch_id, mode,"
    " initiator_driven, payload, depends_on, kind0, target0, kind1, target1,"
    " kind2, target2, pivot) VALUES ";
static const char *branch_insert_tail =
    " ON DUPLICATE KEY UPDATE branch_id=VALUES(branch_id),"
    " mode=VALUES(mode), initiator_driven=VALUES(initiator_driven),"
    " payload=VALUES(payload), depends_on=VALUES(depends_on),"
    " kind0=VALUES(kind0), target0=VALUES(target0), kind1=VALUES(kind1),"
    " target1=VALUES(target1), kind2=VALUES(kind2), target2=VALUES(target2),"
    " pivot=VALUES(pivot);";
static const char *op_insert_head =
    "INSERT INTO trellis_op (gid, idx, slot, status, attempts, last_error,"
    " attempt_ms, finished_ms, late, recorded, result, result_size) VALUES ";
static const char *op_insert_tail =
    " ON DUPLICATE KEY UPDATE status=VALUES(status),"
    " attempts=VALUES(attempts), last_error=VALUES(last_error),"
    " attempt_ms=VALUES(attempt_ms), finished_ms=VALUES(finished_ms),"
    " late=VALUES(late), recorded=VALUES(recorded), result=VALUES(result),"
    " result_size=VALUES(result_size);";

/* Send the statements built so far (closing an open multi-row one). */
static int send_built(my_store_t *m, my_sql_t *b, int *open_rows,
                      const char *tail)
{
    if (*open_rows) {
        my_sql_printf(b, "%s", tail);
        *open_rows = 0;
    }
    int rc = my_writer_run(m, b, NULL, 0) < 0 ? -1 : 0;
    my_sql_reset(b);
    return rc;
}

/* Send the statements built so far when they grew large (may_send). */
static int flush_if_large(my_store_t *m, my_sql_t *b, int *open_rows,
                          const char *tail, int may_send)
{
    if (!may_send || b->len < m->flush_bytes)
        return 0;
    return send_built(m, b, open_rows, tail);
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

/* The same for an op row (a recorded result may be large). */
static size_t op_row_bytes(const char *gid, const tm_w_op_t *o)
{
    size_t text = strlen(gid) + str_len(o->last_error) +
                  str_len(o->attempt_ms) + o->result_len;
    return 2 * text + 256;
}

/* Before a row of row_bytes: when it would carry what is built past the
 * server's packet limit, send that first (may_send), so a large row goes
 * in a statement of its own. */
static int make_room(my_store_t *m, my_sql_t *b, int *open_rows,
                     const char *tail, size_t row_bytes, int may_send)
{
    if (!may_send || b->len == 0 ||
        b->len + row_bytes + PACKET_SLACK < m->packet_bytes)
        return 0;
    return send_built(m, b, open_rows, tail);
}

/* Append the branch rows of the writes whose headers applied. */
static int append_branch_rows(my_store_t *m, my_sql_t *b, tm_write_t *group,
                              int any_refused, int may_send)
{
    int open_rows = 0;
    for (tm_write_t *w = group; w; w = w->next) {
        if (any_refused && copy_refused(group, w))
            continue;
        for (size_t i = 0; i < w->n_branches; i++) {
            size_t row = branch_row_bytes(w->gid, &w->branches[i]);
            if (make_room(m, b, &open_rows, branch_insert_tail, row,
                          may_send) != 0)
                return -1;
            my_sql_printf(b, open_rows ? "," : "%s", branch_insert_head);
            open_rows = 1;
            append_branch_values(b, w->gid, &w->branches[i]);
            if (flush_if_large(m, b, &open_rows, branch_insert_tail,
                               may_send) != 0)
                return -1;
        }
    }
    if (open_rows)
        my_sql_printf(b, "%s", branch_insert_tail);
    return 0;
}

/* Append the op rows of the writes whose headers applied. */
static int append_op_rows(my_store_t *m, my_sql_t *b, tm_write_t *group,
                          int any_refused, int may_send)
{
    int open_rows = 0;
    for (tm_write_t *w = group; w; w = w->next) {
        if (any_refused && copy_refused(group, w))
            continue;
        for (size_t i = 0; i < w->n_ops; i++) {
            size_t row = op_row_bytes(w->gid, &w->ops[i]);
            if (make_room(m, b, &open_rows, op_insert_tail, row, may_send) != 0)
                return -1;
            my_sql_printf(b, open_rows ? "," : "%s", op_insert_head);
            open_rows = 1;
            append_op_values(b, w->gid, &w->ops[i]);
            if (flush_if_large(m, b, &open_rows, op_insert_tail, may_send) != 0)
                return -1;
        }
    }
    if (open_rows)
        my_sql_printf(b, "%s", op_insert_tail);
    return 0;
}

int my_append_rows(my_store_t *m, my_sql_t *b, tm_write_t *group, int may_send)
{
    int any_refused = 0;
    for (tm_write_t *w = group; w && !any_refused; w = w->next)
        any_refused = refused(w);
    if (append_branch_rows(m, b, group, any_refused, may_send) != 0 ||
        append_op_rows(m, b, group, any_refused, may_send) != 0)
        return -1;
    return 0;
}

/* Round trip 2 (more for very large groups): branch and op rows of the
 * writes whose headers applied, then COMMIT. */
static int apply_rows_and_commit(my_store_t *m, tm_write_t *group)
{
    my_sql_t *b = &m->wsql;
    my_sql_reset(b);
    if (my_append_rows(m, b, group, 1) != 0)
        return -1;
    my_sql_printf(b, "COMMIT");
    return my_writer_run(m, b, NULL, 0) < 0 ? -1 : 0;
}

static void reconnect_writer(my_store_t *m)
{
    char q[512];
    int64_t backoff = 50;
    for (;;) {
        char err[512];
        if (m->wdb)
            mysql_close(m->wdb);
        my_bulk_drop(m);
        m->wdb = my_connect(m, 0, err, sizeof(err));
        if (m->wdb) {
            my_read_packet_limit(m);
            tm_store_count(m->store, TM_STAT_RECONNECTS, 1);
            tm_log(TM_LOG_INFO, "event=store_reconnected conn=writer");
            return;
        }
        tm_log(TM_LOG_ERROR, "event=store_unavailable conn=writer err=\"%s\"",
               tm_log_quote(err, q, sizeof(q)));
        tm_store_note_failure(m->store, err);
        my_sleep_ms(backoff);
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
        /* Nearly always one round trip and a COMMIT; write by write when
         * a write is refused, and after a failure (an earlier attempt may
         * have committed: its inserts find their rows). */
        int at_once =
            attempt == 0 && !retried ? my_apply_group_at_once(m, group, n) : 1;
        if (at_once == 0 && my_exec(m->wdb, "COMMIT") == 0)
            return 0;
        if (at_once == 1 &&
            apply_headers(m, group, attempt > 0 || retried) == 0 &&
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
        my_bulk_drop(m);
        if (error_is_permanent(code))
            return code;
        if (attempt > 0)
            my_sleep_ms(attempt < 5 ? 20 * attempt : 500);
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

int my_commit_group(tm_store_t *store, tm_write_t *group, int retry, char *err,
                    size_t errlen)
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
uint32_t my_max_payload(tm_store_t *store, char *why, size_t len)
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
