/*
 * tm_store_codec: stored rows -> the model, for both storage engines (see
 * tm_store_codec.h). The column-value helpers it builds on (lists as
 * "1,2,3" text, the options blob, skipped ops of a finished transaction)
 * are tm_store_write.c's, shared with the capture of writes.
 */
#include "tm_store_codec.h"
#include "tm_store_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int too_few(size_t n, int want, const char *what, char *err,
                   size_t errlen)
{
    snprintf(err, errlen, "store codec: a %s row of %zu columns (%d needed)",
             what, n, want);
    return -1;
}

static int out_of_memory(const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "store codec: out of memory decoding %s", what);
    return -1;
}

/* The decimal text of a value, NUL-terminated in text[32] (at most 31
 * characters: more is not an integer this code wrote). */
static const char *col_digits(const tm_store_codec_col_t *c, char *text)
{
    size_t len = c->len < 31 ? c->len : 31;
    memcpy(text, c->p, len);
    text[len] = '\0';
    return text;
}

/* An integer value: as read, or parsed from its decimal text. */
static int64_t col_i64(const tm_store_codec_col_t *c)
{
    char text[32];
    if (c->is_int)
        return c->i;
    return c->p ? strtoll(col_digits(c, text), NULL, 10) : 0;
}

/* The same for an unsigned 64-bit column (submit_hash, generation): SQLite
 * keeps it as the signed integer of the same bits, MySQL as decimal. */
static uint64_t col_u64(const tm_store_codec_col_t *c)
{
    char text[32];
    if (c->is_int)
        return (uint64_t)c->i;
    return c->p ? strtoull(col_digits(c, text), NULL, 10) : 0;
}

/* The value as an owned NUL-terminated string in *out (NULL for SQL
 * NULL). Returns 0, or -1 out of memory. */
static int col_dup(const tm_store_codec_col_t *c, char **out)
{
    *out = NULL;
    if (!c->p)
        return 0;
    *out = malloc(c->len + 1);
    if (!*out)
        return -1;
    memcpy(*out, c->p, c->len);
    (*out)[c->len] = '\0';
    return 0;
}

int tm_store_codec_trans(const tm_store_codec_col_t *c, size_t n,
                         tm_trans_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (n < TM_STORE_CODEC_TRANS_NCOLS)
        return too_few(n, TM_STORE_CODEC_TRANS_NCOLS, "transaction", err,
                       errlen);
    char gid[TM_GID_MAX + 1];
    size_t gid_len = c[0].p ? c[0].len : 0;
    snprintf(gid, sizeof(gid), "%.*s",
             (int)(gid_len < TM_GID_MAX ? gid_len : TM_GID_MAX),
             c[0].p ? c[0].p : "");
    tm_trans_t *tx =
        tm_trans_new(gid, (tm_tx_status_t)col_i64(&c[1]), col_i64(&c[2]));
    if (!tx)
        return out_of_memory("a transaction", err, errlen);
    tx->updated_ms = col_i64(&c[3]);
    tx->finished_ms = col_i64(&c[4]);
    if (col_dup(&c[5], &tx->reason) != 0) {
        tm_trans_free(tx);
        return out_of_memory("a transaction", err, errlen);
    }
    tx->submit_hash = col_u64(&c[6]);
    if (c[7].p)
        tm_store_decode_options(tx, c[7].p, c[7].len);
    if (n > TM_STORE_CODEC_TRANS_NCOLS)
        tx->generation = col_u64(&c[TM_STORE_CODEC_TRANS_NCOLS]);
    *out = tx;
    return 0;
}

/* The branch fields of row c (a branch appended to its transaction). */
static int fill_branch(tm_branch_t *b, const tm_store_codec_col_t *c)
{
    char *deps = NULL;
    if (col_dup(&c[1], &b->branch_id) != 0 || col_dup(&c[5], &deps) != 0)
        return -1;
    b->mode = (tm_mode_t)col_i64(&c[2]);
    b->initiator_driven = (int)col_i64(&c[3]);
    b->payload_len = c[4].p ? c[4].len : 0;
    if (b->payload_len) {
        b->payload = malloc(b->payload_len);
        if (!b->payload) {
            free(deps);
            return -1;
        }
        memcpy(b->payload, c[4].p, b->payload_len);
    }
    b->deps = tm_store_split_u32(deps, &b->n_deps);
    free(deps);
    for (int k = 0; k < TM_SLOTS; k++) {
        b->ops[k].kind = (tm_op_kind_t)col_i64(&c[6 + 2 * k]);
        if (col_dup(&c[7 + 2 * k], &b->ops[k].target) != 0)
            return -1;
        b->ops[k].status = TM_OP_PENDING;
    }
    b->pivot = (int)col_i64(&c[12]);
    return 0;
}

int tm_store_codec_branch(tm_trans_t *tx, const tm_store_codec_col_t *c,
                          size_t n, tm_branch_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (n < TM_STORE_CODEC_BRANCH_NCOLS)
        return too_few(n, TM_STORE_CODEC_BRANCH_NCOLS, "branch", err, errlen);
    int64_t idx = col_i64(&c[0]);
    if (idx < 0 || (size_t)idx != tx->n_branches) {
        snprintf(err, errlen,
                 "store codec: transaction %s has branch row %" PRId64
                 " where %zu was next (rows this code did not write)",
                 tx->gid, idx, tx->n_branches);
        return -1;
    }
    tm_branch_t *b = tm_trans_add_branch(tx);
    if (!b || fill_branch(b, c) != 0)
        return out_of_memory("a branch", err, errlen);
    *out = b;
    return 0;
}

/* The value as owned bytes in *out, *len (NULL and 0 for SQL NULL and for
 * an empty value). Returns 0, or -1 out of memory. */
static int col_bytes(const tm_store_codec_col_t *c, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!c->p || !c->len)
        return 0;
    *out = malloc(c->len);
    if (!*out)
        return -1;
    memcpy(*out, c->p, c->len);
    *len = c->len;
    return 0;
}

int tm_store_codec_op(tm_trans_t *tx, const tm_store_codec_col_t *c, size_t n,
                      char *err, size_t errlen)
{
    if (n < TM_STORE_CODEC_OP_NCOLS)
        return too_few(n, TM_STORE_CODEC_OP_NCOLS, "op", err, errlen);
    int64_t idx = col_i64(&c[0]);
    int64_t slot = col_i64(&c[1]);
    if (idx < 0 || (size_t)idx >= tx->n_branches || slot < 0 ||
        slot >= TM_SLOTS)
        return 0;
    tm_op_t *op = &tx->branches[idx].ops[slot];
    op->status = (tm_op_status_t)col_i64(&c[2]);
    op->attempts = (uint32_t)col_i64(&c[3]);
    op->finished_ms = col_i64(&c[6]);
    op->late = (int)col_i64(&c[7]);
    op->recorded = (int)col_i64(&c[8]);
    op->result_size = col_u64(&c[10]);
    free(op->last_error);
    free(op->attempt_ms);
    free(op->result);
    op->attempt_ms = NULL;
    op->n_attempt_ms = 0;
    op->result = NULL;
    op->result_len = 0;
    char *times = NULL;
    if (col_dup(&c[4], &op->last_error) != 0 || col_dup(&c[5], &times) != 0 ||
        col_bytes(&c[9], &op->result, &op->result_len) != 0) {
        free(times);
        return out_of_memory("an op", err, errlen);
    }
    op->attempt_ms = tm_store_split_i64(times, &op->n_attempt_ms);
    free(times);
    return 0;
}

void tm_store_codec_finish(tm_trans_t *tx)
{
    tm_store_mark_skipped_if_finished(tx);
}
