/*
 * info.c — the info structs of trellis.h (trellis_trans_info_t and what it
 * points to) as deep copies of trellis.v1.Transaction, and their release.
 *
 * Invariant: every pointer in an info struct is either NULL or malloc'd by
 * this file, and every count says how many array elements were fully
 * copied. So a copy that runs out of memory halfway is released by the same
 * clear functions as a complete one, and the free functions never need to
 * know how far a copy got.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trellis/v1/tm.pb-c.h"

/* malloc(n * size) that is NULL for n == 0 and on overflow. */
static void *array_dup(const void *src, size_t n, size_t size)
{
    if (n == 0 || src == NULL || n > SIZE_MAX / size)
        return NULL;
    void *dst = malloc(n * size);
    if (dst != NULL)
        memcpy(dst, src, n * size);
    return dst;
}

/* ---- release --------------------------------------------------------- */

static void op_info_clear(trellis_op_info_t *o)
{
    free(o->target);
    free(o->last_error);
    free(o->attempt_ms);
    free(o->result);
}

static void branch_info_clear(trellis_branch_info_t *b)
{
    free(b->branch_id);
    free(b->depends_on);
    free(b->payload);
    for (size_t i = 0; i < b->n_ops; i++)
        op_info_clear(&b->ops[i]);
    free(b->ops);
}

void tr_trans_info_clear(trellis_trans_info_t *t)
{
    free(t->gid);
    free(t->reason);
    for (size_t i = 0; i < t->n_branches; i++)
        branch_info_clear(&t->branches[i]);
    free(t->branches);
    memset(t, 0, sizeof *t);
}

void trellis_trans_info_free(trellis_trans_info_t *t)
{
    if (t == NULL)
        return;
    tr_trans_info_clear(t);
    free(t);
}

/* ---- copy ------------------------------------------------------------ */

/* Each returns 0 on success, -1 when out of memory (what was copied so far
 * stays reachable from *out for the clear functions). */

static int op_info_copy(const Trellis__V1__Op *src, trellis_op_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->op = (trellis_op_t)src->op;
    out->status = (trellis_op_status_t)src->status;
    out->attempts = src->attempts;
    out->finished_ms = src->finished_ms;
    out->target = tr_strdup0(src->target);
    out->last_error = tr_strdup0(src->last_error);
    if (out->target == NULL || out->last_error == NULL)
        return -1;
    if (src->n_attempt_ms > 0) {
        out->attempt_ms = array_dup(src->attempt_ms, src->n_attempt_ms,
                                    sizeof *src->attempt_ms);
        if (out->attempt_ms == NULL)
            return -1;
        out->n_attempt_ms = src->n_attempt_ms;
    }
    out->recorded = src->recorded != 0;
    if (src->result.len > 0) {
        out->result = array_dup(src->result.data, src->result.len, 1);
        if (out->result == NULL)
            return -1;
        out->result_len = src->result.len;
    }
    out->result_size = src->result_size;
    return 0;
}

static int branch_info_copy(const Trellis__V1__Branch *src,
                            trellis_branch_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->mode = (trellis_mode_t)src->mode;
    out->initiator_driven = src->initiator_driven != 0;
    out->pivot = src->pivot != 0;
    out->branch_id = tr_strdup0(src->branch_id);
    if (out->branch_id == NULL)
        return -1;
    if (src->n_depends_on > 0) {
        out->depends_on = array_dup(src->depends_on, src->n_depends_on,
                                    sizeof *src->depends_on);
        if (out->depends_on == NULL)
            return -1;
        out->n_depends_on = src->n_depends_on;
    }
    if (src->payload.len > 0) {
        out->payload = array_dup(src->payload.data, src->payload.len, 1);
        if (out->payload == NULL)
            return -1;
        out->payload_len = src->payload.len;
    }
    if (src->n_ops > 0) {
        out->ops = calloc(src->n_ops, sizeof *out->ops);
        if (out->ops == NULL)
            return -1;
        for (size_t i = 0; i < src->n_ops; i++) {
            /* Count the op before copying: a half-copied op holds memory. */
            out->n_ops = i + 1;
            if (op_info_copy(src->ops[i], &out->ops[i]) != 0)
                return -1;
        }
    }
    return 0;
}

static int trans_info_copy(const Trellis__V1__Transaction *src,
                           trellis_trans_info_t *out)
{
    out->status = (trellis_trans_status_t)src->status;
    out->created_ms = src->created_ms;
    out->updated_ms = src->updated_ms;
    out->finished_ms = src->finished_ms;
    out->gid = tr_strdup0(src->gid);
    out->reason = tr_strdup0(src->reason);
    if (out->gid == NULL || out->reason == NULL)
        return -1;
    if (src->n_branches > 0) {
        out->branches = calloc(src->n_branches, sizeof *out->branches);
        if (out->branches == NULL)
            return -1;
        for (size_t i = 0; i < src->n_branches; i++) {
            out->n_branches = i + 1;
            if (branch_info_copy(src->branches[i], &out->branches[i]) != 0)
                return -1;
        }
    }
    return 0;
}

trellis_rc_t tr_trans_info_copy(const Trellis__V1__Transaction *t,
                                trellis_trans_info_t *out, char *err,
                                size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (trans_info_copy(t, out) != 0) {
        tr_trans_info_clear(out);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory copying transaction %s", t->gid);
    }
    return TRELLIS_OK;
}
