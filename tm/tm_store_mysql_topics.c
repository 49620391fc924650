/*
 * tm_store_mysql_topics: the MySQL engine's subscriptions (see tm_store.h,
 * "topics") in trellis_subscription, shared by every node of the
 * database. They run on the readers (any thread, each reader under its
 * own mutex, reconnecting as reads do): a reader is in autocommit, so a
 * subscribe or unsubscribe is one statement committed before its answer
 * comes back. They never touch the writer or the lease connection, so
 * they cannot wait on the store thread, nor it on them (InnoDB row locks
 * on a table the writer never uses).
 *
 * A reader resends a statement once on a fresh session when the first
 * attempt failed; INSERT IGNORE and DELETE are idempotent, so the only
 * effect of a commit whose answer was lost is that the resent statement
 * answers 0 (existed, or none) where the first would have said 1.
 */
#include "tm_store_mysql_impl.h"

#include <stdio.h>
#include <stdlib.h>

/* Run the statement in b on a reader. Returns the rows it changed, or -1
 * with err. */
static int change_rows(my_store_t *m, const my_sql_t *b, char *err,
                       size_t errlen)
{
    my_reader_t *r = my_reader_take(m);
    int rc = my_reader_send(m, r, b->p, b->len, err, errlen);
    if (rc == 0)
        rc = mysql_affected_rows(r->db) > 0 ? 1 : 0;
    my_reader_give(r);
    return rc;
}

int my_subscribe(tm_store_t *store, const char *topic, const char *target,
                 const char *remark, int64_t now_ms, char *err, size_t errlen)
{
    my_sql_t b = {0};
    my_sql_printf(&b, "INSERT IGNORE INTO trellis_subscription"
                      " (topic, target, remark, created_ms) VALUES (");
    my_sql_str(&b, topic);
    my_sql_printf(&b, ", ");
    my_sql_str(&b, target);
    my_sql_printf(&b, ", ");
    my_sql_str(&b, remark);
    my_sql_printf(&b, ", %lld)", (long long)now_ms);
    int rc = change_rows(store->impl, &b, err, errlen);
    free(b.p);
    return rc;
}

int my_unsubscribe(tm_store_t *store, const char *topic, const char *target,
                   char *err, size_t errlen)
{
    my_sql_t b = {0};
    my_sql_printf(&b, "DELETE FROM trellis_subscription WHERE topic = ");
    my_sql_str(&b, topic);
    my_sql_printf(&b, " AND target = ");
    my_sql_str(&b, target);
    int rc = change_rows(store->impl, &b, err, errlen);
    free(b.p);
    return rc;
}

/* Every row of res into *out, *n. Returns 0, or -1 out of memory (the
 * rows read so far stay in *out for the caller to free). */
static int collect(MYSQL_RES *res, tm_subscription_t **out, size_t *n)
{
    size_t cap = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)))
        if (tm_store_subscription_add(out, n, &cap, row[0], row[1], row[2],
                                      row[3] ? strtoll(row[3], NULL, 10) : 0) !=
            0)
            return -1;
    return 0;
}

int my_subscriptions(tm_store_t *store, const char *topic,
                     tm_subscription_t **out, size_t *n, char *err,
                     size_t errlen)
{
    my_store_t *m = store->impl;
    my_sql_t b = {0};
    my_sql_printf(&b, "SELECT topic, target, remark, created_ms"
                      " FROM trellis_subscription");
    if (topic) {
        my_sql_printf(&b, " WHERE topic = ");
        my_sql_str(&b, topic);
    }
    my_sql_printf(&b, " ORDER BY topic, created_ms, target");
    my_reader_t *r = my_reader_take(m);
    int rc = my_reader_send(m, r, b.p, b.len, err, errlen);
    MYSQL_RES *res = rc == 0 ? mysql_store_result(r->db) : NULL;
    if (rc == 0 && !res) {
        my_error(r->db, "subscriptions", err, errlen);
        rc = -1;
    }
    if (rc == 0 && collect(res, out, n) != 0) {
        snprintf(err, errlen, "out of memory listing subscriptions");
        rc = -1;
    }
    mysql_free_result(res);
    my_reader_give(r);
    free(b.p);
    if (rc != 0) {
        tm_subscriptions_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
