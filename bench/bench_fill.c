/*
 * bench_fill: the scale mode's loader (see bench_fill.h). It owns the
 * store it opens for the length of one call, and the transactions it
 * builds until their writes are captured.
 */
#include "bench_fill.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_trans.h"

/* Writes queued before waiting for them: many group commits (the store
 * takes up to 1024 writes per commit) without holding the whole fill in
 * memory. */
#define FILL_CHUNK 20000

typedef struct {
    pthread_mutex_t mu;
    uint64_t refused;
    int first_result;
} fill_tally_t;

static void on_written(void *arg, tm_write_result_t result)
{
    fill_tally_t *t = arg;
    if (result == TM_WRITE_DONE)
        return;
    pthread_mutex_lock(&t->mu);
    if (!t->refused++)
        t->first_result = (int)result;
    pthread_mutex_unlock(&t->mu);
}

void bench_fill_gid(const bench_fill_spec_t *spec, uint64_t i, char *buf,
                    size_t len)
{
    snprintf(buf, len, "%s%llu", spec->gid_prefix,
             (unsigned long long)(spec->first + i));
}

/* Step k (0 or 1) of the saga: action and compensation, step 1 after
 * step 0. Returns 0, or -1 out of memory. */
static int add_step(tm_trans_t *tx, const bench_fill_spec_t *spec, int k)
{
    tm_branch_t *b = tm_trans_add_branch(tx);
    if (!b)
        return -1;
    b->branch_id = tm_strdup(k ? "02" : "01");
    b->mode = TM_MODE_SAGA;
    b->payload = (uint8_t *)tm_strdup("");
    b->payload_len = 0;
    if (k) {
        b->deps = malloc(sizeof(uint32_t));
        if (b->deps) {
            b->deps[0] = 0;
            b->n_deps = 1;
        }
    }
    const char *action =
        !k && spec->first_action ? spec->first_action : spec->action;
    b->ops[TM_SLOT_FORWARD] = (tm_op_t){.kind = TM_KIND_ACTION,
                                        .status = TM_OP_PENDING,
                                        .target = tm_strdup(action)};
    b->ops[TM_SLOT_ROLLBACK] = (tm_op_t){.kind = TM_KIND_COMPENSATE,
                                         .status = TM_OP_PENDING,
                                         .target = tm_strdup(spec->compensate)};
    return b->branch_id && b->payload && (!k || b->deps) &&
                   b->ops[TM_SLOT_FORWARD].target &&
                   b->ops[TM_SLOT_ROLLBACK].target
               ? 0
               : -1;
}

/* An op called once at t that ended as status. */
static void op_done(tm_op_t *op, tm_op_status_t status, int64_t t)
{
    op->status = status;
    op->attempts = 1;
    op->finished_ms = t;
    tm_op_note_attempt(op, t);
    if (status == TM_OP_FAILED)
        op->last_error = tm_strdup("refused");
}

/* Transaction i of spec, as a finished saga2 or one not yet driven. NULL
 * out of memory. The caller's: tm_trans_free. */
static tm_trans_t *build_trans(const bench_fill_spec_t *spec, uint64_t i)
{
    char gid[TM_GID_MAX + 1];
    bench_fill_gid(spec, i, gid, sizeof(gid));
    int64_t t = spec->created_ms + (int64_t)i;
    tm_trans_t *tx = tm_trans_new(gid, TM_TX_SUBMITTED, t);
    if (!tx)
        return NULL;
    tx->submit_hash = spec->first + i + 1;
    tx->opts.retry_interval_ms = spec->retry_interval_ms;
    if (add_step(tx, spec, 0) != 0 || add_step(tx, spec, 1) != 0) {
        tm_trans_free(tx);
        return NULL;
    }
    tx->updated_ms = t;
    if (!spec->finished)
        return tx;
    if ((spec->first + i) % 100 == 99) {
        op_done(&tx->branches[0].ops[TM_SLOT_FORWARD], TM_OP_FAILED, t);
        tx->status = TM_TX_FAILED;
        tx->reason = tm_strdup("step 01 refused");
    } else {
        op_done(&tx->branches[0].ops[TM_SLOT_FORWARD], TM_OP_SUCCEEDED, t);
        op_done(&tx->branches[1].ops[TM_SLOT_FORWARD], TM_OP_SUCCEEDED, t);
        tx->status = TM_TX_SUCCEEDED;
    }
    tx->finished_ms = tx->updated_ms = t + 1;
    return tx;
}

/* Queue transactions [from, to) of spec. Returns 0, or -1 out of memory. */
static int queue_range(tm_store_t *s, const bench_fill_spec_t *spec,
                       uint64_t from, uint64_t to, fill_tally_t *tally)
{
    for (uint64_t i = from; i < to; i++) {
        tm_trans_t *tx = build_trans(spec, i);
        tm_write_t *w = tx ? tm_write_capture_all(tx, 1) : NULL;
        tm_trans_free(tx);
        if (!w)
            return -1;
        tm_store_queue(s, w, on_written, tally);
    }
    return 0;
}

int bench_fill(const tm_store_config_t *cfg, const bench_fill_spec_t *spec,
               char *err, size_t errlen)
{
    tm_store_t *s;
    if (tm_store_open(cfg, &s, err, errlen) != 0)
        return -1;
    fill_tally_t tally = {.first_result = 0};
    pthread_mutex_init(&tally.mu, NULL);
    uint64_t step = spec->n / 10 > FILL_CHUNK ? spec->n / 10 : 0, shown = 0;
    int rc = 0;
    for (uint64_t at = 0; rc == 0 && at < spec->n; at += FILL_CHUNK) {
        uint64_t to = at + FILL_CHUNK < spec->n ? at + FILL_CHUNK : spec->n;
        rc = queue_range(s, spec, at, to, &tally);
        tm_store_flush(s);
        if (step && to - shown >= step) {
            printf("       ... %llu of %llu written\n", (unsigned long long)to,
                   (unsigned long long)spec->n);
            fflush(stdout);
            shown = to;
        }
    }
    if (rc != 0)
        snprintf(err, errlen, "out of memory building transactions");
    tm_store_flush(s);
    tm_store_close(s);
    if (rc == 0 && tally.refused) {
        snprintf(err, errlen, "the store refused %llu writes (first: %d)",
                 (unsigned long long)tally.refused, tally.first_result);
        rc = -1;
    }
    pthread_mutex_destroy(&tally.mu);
    return rc;
}
