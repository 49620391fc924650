/*
 * tm_engine_calls: the engine's branch calls — start one (the participant
 * protocol's metadata, the transaction's headers, its deadline), fold its
 * result into the model through tm_plan, persist what changed and plan
 * again. A result that arrives after the transaction left this node's
 * control (lost, force-stopped) changes nothing.
 *
 * The compensation log (issue 16): when a forward op that trellisd calls
 * succeeds and its branch has a rollback-side op (a saga action with a
 * compensate), the first max_action_log bytes of its reply are kept in the
 * op (result, result_len) with the reply's full size (result_size), in the
 * same write that stores the success — durable before anything acts on
 * it. A rollback-side op is then called with those bytes as binary
 * metadata, and with the full size when they were cut (tm_call.h), from
 * memory or, after a restart, from the store alike. A workflow step's
 * recorded result (RecordStep) is handed over the same way; it is never
 * overwritten, since the service, not trellisd, calls a step's forward op.
 *
 * A completion listener's notify (a kind with event_payload) is sent the
 * transaction's CompletionEvent (tm_event.c) instead of the branch's
 * payload, packed at call time from the model; a branch listener's event
 * (reports_branch) the BranchEvent of the branch it reports. A batching
 * listener's (TransOptions.listener_batch) goes through tm_batch, which
 * sends it with other transactions' events in one call and completes each
 * op alone. A DTM workflow's resume (a kind with dtm_callback) is sent
 * DTM's WorkflowData with the workflow's name as dtm-op
 * (tm_dtm_workflow.h).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_dtm_workflow.h"
#include "tm_engine_impl.h"
#include "tm_event.h"
#include "tm_exit.h"
#include "tm_kind.h"
#include "tm_log.h"
#include "tm_metrics.h"
#include "tm_trace.h"
#include "tm_validate.h"

typedef struct {
    tm_live_t *live;
    uint32_t branch;
    tm_slot_t slot;
    uint64_t started_us; /* for the latency metric */
} call_ctx_t;

/* Metadata slots of one call: the protocol's four, the trace context's
 * two, the compensation log's two, then the headers. */
#define CALL_MD_MAX (4 + 2 + 2 + 16)

static void on_call_done(void *arg, int status, const char *message,
                         const uint8_t *reply, size_t reply_len);

static void on_op_timer(tm_timer_node_t *node)
{
    tm_live_t *l = node->owner;
    pthread_mutex_lock(&l->mu);
    uint32_t b = node->tag / TM_SLOTS, slot = node->tag % TM_SLOTS;
    if (b < l->tx.n_branches)
        tm_run_op(&l->run, b, (int)slot)->waiting_retry = 0;
    tm_engine_drive(l); /* the op is idle again, so planning includes it */
    pthread_mutex_unlock(&l->mu);
    tm_live_unref(l);
}

/* A workflow whose resume was just refused waits for an operator: say
 * so, and count it. */
static void log_if_stopped(const tm_live_t *l, const tm_op_t *op,
                           tm_effect_t eff)
{
    if (op->kind != TM_KIND_RESUME || op->status != TM_OP_FAILED ||
        !eff.changed)
        return;
    char q[700];
    tm_metrics_workflow_stopped();
    tm_log(TM_LOG_WARN,
           "event=workflow_stopped gid=%s error=\"%s\" msg=\"the workflow "
           "service refused to resume it; trellisctl retry-now, abort or "
           "force-stop\"",
           l->tx.gid, tm_log_quote(op->last_error, q, sizeof(q)));
}

/* A call that could not even be started (bad target, no channel): apply
 * it as an UNKNOWN result. */
static void apply_unsent(tm_live_t *l, uint32_t b, tm_slot_t slot,
                         const char *err)
{
    tm_op_t *op = &l->tx.branches[b].ops[slot];
    tm_retry_policy_t p = tm_engine_policy_of(l);
    tm_tx_status_t before = l->tx.status;
    tm_effect_t eff =
        tm_plan_apply_result(&l->tx, &l->run, b, slot, TM_RESULT_UNKNOWN, err,
                             &p, tm_engine_wall(l->eng));
    if (before != l->tx.status && l->tx.status == TM_TX_ABORTING)
        tm_engine_log_rollback_decision(l);
    else if (before != l->tx.status) /* a message's back-check: committed */
        tm_log(TM_LOG_INFO, "event=msg_checked gid=%s committed=1", l->tx.gid);
    if (op->status == TM_OP_PENDING) /* the attempt is stored, as for any */
        tm_run_op(&l->run, b, slot)->dirty = 1; /* unanswered one */
    tm_engine_persist_change(l);
    if (op->status == TM_OP_PENDING)
        tm_engine_arm_retry(l, b, slot,
                            eff.retry_in_ms >= 0 ? eff.retry_in_ms
                                                 : p.retry_interval_ms);
}

/* The call's metadata: gid, mode, branch id and op under DTM's keys (so
 * participants written for DTM work unchanged), the W3C trace context of
 * the request that created the transaction (unchanged: trellisd makes no
 * span of its own, tm_trace.h), then the transaction's headers. Returns
 * how many entries. */
static size_t call_metadata(const tm_live_t *l, const tm_branch_t *br,
                            const tm_op_t *op, tm_md_t *md)
{
    size_t n = 0;
    md[n++] = (tm_md_t){"dtm-gid", l->tx.gid, 0};
    md[n++] = (tm_md_t){"dtm-trans_type", tm_kind_trans_type(br->mode), 0};
    md[n++] = (tm_md_t){"dtm-branch_id", br->branch_id, 0};
    md[n++] = (tm_md_t){"dtm-op", tm_op_kind_name(op->kind), 0};
    if (l->tx.opts.traceparent)
        md[n++] = (tm_md_t){TM_TRACEPARENT_KEY, l->tx.opts.traceparent, 0};
    if (l->tx.opts.traceparent && l->tx.opts.tracestate)
        md[n++] = (tm_md_t){TM_TRACESTATE_KEY, l->tx.opts.tracestate, 0};
    for (size_t i = 0; i < l->tx.opts.n_headers && n < CALL_MD_MAX - 2; i++)
        md[n++] = (tm_md_t){l->tx.opts.header_keys[i],
                            l->tx.opts.header_values[i], 0};
    return n;
}

/* A rollback-side op's compensation log: the forward op's kept reply
 * bytes (at most max of them: the setting may have been lowered since they
 * were kept) under TM_ACTION_LOG_KEY, and, when they are fewer than the
 * reply had, its full size under TM_ACTION_LOG_SIZE_KEY, written into
 * size_text. Returns how many entries it added to md[n..]. */
static size_t action_log_metadata(const tm_branch_t *br, tm_slot_t slot,
                                  uint32_t max, tm_md_t *md, size_t n,
                                  char *size_text, size_t size_len)
{
    const tm_op_t *fw = &br->ops[TM_SLOT_FORWARD];
    if (slot != TM_SLOT_ROLLBACK || !fw->result_len || !max)
        return 0;
    size_t sent = fw->result_len < max ? fw->result_len : max;
    uint64_t full =
        fw->result_size > fw->result_len ? fw->result_size : fw->result_len;
    md[n] = (tm_md_t){TM_ACTION_LOG_KEY, (const char *)fw->result, sent};
    if (full <= sent)
        return 1;
    snprintf(size_text, size_len, "%" PRIu64, full);
    md[n + 1] = (tm_md_t){TM_ACTION_LOG_SIZE_KEY, size_text, 0};
    return 2;
}

/* DTM's callback: the name as dtm-op (md[0..n) has one). */
static void name_the_op(tm_md_t *md, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(md[i].key, "dtm-op") == 0)
            md[i].value = name;
}

void tm_engine_start_call(tm_live_t *l, uint32_t b, tm_slot_t slot)
{
    tm_branch_t *br = &l->tx.branches[b];
    tm_op_t *op = &br->ops[slot];
    char err[256];
    tm_target_t target;
    tm_timer_node_t *timer = &l->retry_timers[b][slot];
    timer->fn = on_op_timer;
    timer->owner = l;
    timer->tag = b * TM_SLOTS + (uint32_t)slot;
    if (op->attempts > 0)
        tm_metrics_retry(op->kind);
    tm_op_note_attempt(op, tm_engine_wall(l->eng));
    if (tm_parse_target(op->target, "target", &target, err, sizeof(err)) != 0) {
        /* Checked at submit; only a corrupted store gets here. */
        tm_set_string(&op->last_error, err);
        tm_engine_arm_retry(l, b, slot, tm_engine_policy_of(l).max_backoff_ms);
        return;
    }
    tm_md_t md[CALL_MD_MAX];
    char log_size[24];
    size_t n = call_metadata(l, br, op, md);
    n += action_log_metadata(br, slot, l->eng->cfg.max_action_log, md, n,
                             log_size, sizeof(log_size));
    const uint8_t *payload = br->payload;
    size_t payload_len = br->payload_len;
    uint8_t *event = NULL;
    const tm_kind_t *kind = tm_kind_find(br->mode);
    int batched = kind && kind->event_payload && !kind->reports_branch &&
                  l->tx.opts.listener_batch >= 2;
    if (kind && kind->event_payload) {
        event = kind->reports_branch
                    ? tm_event_branch_pack(&l->tx, b, slot, &payload_len)
                    : tm_event_pack(&l->tx, b, slot, &payload_len);
        if (!event)
            tm_exit_oom("completion event");
        payload = event;
    }
    char *dtm_op = NULL; /* a DTM workflow's name */
    if (kind && kind->dtm_callback) {
        event = tm_dtm_callback_pack(br->payload, br->payload_len, &dtm_op,
                                     &payload_len);
        if (!event) { /* only a corrupted store gets here */
            apply_unsent(l, b, slot,
                         "the workflow's stored head does not "
                         "parse as a ResumeRequest");
            return;
        }
        payload = event;
        name_the_op(md, n, dtm_op);
    }
    call_ctx_t *ctx = malloc(sizeof(*ctx));
    if (!ctx)
        tm_exit_oom("call context");
    ctx->live = l;
    ctx->branch = b;
    ctx->slot = slot;
    ctx->started_us = tm_metrics_now_us();
    tm_op_run_t *mark = tm_run_op(&l->run, b, slot);
    mark->inflight = 1;
    tm_live_ref(l);
    uint32_t timeout_ms = tm_engine_request_timeout_of(l, br);
    int rc =
        batched ? tm_batch_send(l->eng->batch, target.host_port, target.method,
                                l->tx.opts.listener_batch, payload, payload_len,
                                timeout_ms, on_call_done, ctx, err, sizeof(err))
                : l->eng->env.call_start(l->eng->env.caller, target.host_port,
                                         target.method, payload, payload_len,
                                         md, n, timeout_ms, on_call_done, ctx,
                                         err, sizeof(err));
    if (rc != 0) {
        /* Not sent: an attempt without an answer, like a call that timed
         * out, so it counts toward retry_limit. */
        mark->inflight = 0;
        tm_live_unref(l);
        free(ctx);
        apply_unsent(l, b, slot, err);
    }
    free(event); /* call_start copied it */
    free(dtm_op);
}

/* One line per branch call at debug level. */
static void log_call_result(const tm_live_t *l, const tm_branch_t *br,
                            const tm_op_t *op, int status, const char *msg,
                            uint64_t micros)
{
    if (!tm_log_enabled(TM_LOG_DEBUG))
        return;
    char q[700];
    tm_log(TM_LOG_DEBUG,
           "event=call_result gid=%s branch=%s op=%s attempt=%u "
           "grpc_status=%d us=%" PRIu64 " op_status=%s error=\"%s\"",
           l->tx.gid, br->branch_id, tm_op_kind_name(op->kind), op->attempts,
           status, micros,
           op->status == TM_OP_SUCCEEDED ? "succeeded"
           : op->status == TM_OP_FAILED  ? "failed"
                                         : "pending",
           tm_log_quote(msg, q, sizeof(q)));
}

/* A call ended after the transaction was force-stopped: its result
 * changes nothing. */
static void log_late_result(const tm_live_t *l, const tm_branch_t *br,
                            const tm_op_t *op, int status)
{
    tm_log(TM_LOG_INFO,
           "event=late_result_ignored gid=%s branch=%s op=%s grpc_status=%d "
           "status=%s",
           l->tx.gid, br->branch_id, tm_op_kind_name(op->kind), status,
           tm_tx_status_name(l->tx.status));
}

/* The pivot's forward op has just succeeded: from here the saga only
 * goes forward (tm_plan.h, "Pivot"). */
static void log_if_pivot_passed(const tm_live_t *l, const tm_branch_t *br,
                                const tm_op_t *op, tm_slot_t slot)
{
    if (br->pivot && slot == TM_SLOT_FORWARD && op->status == TM_OP_SUCCEEDED &&
        tm_plan_past_pivot(&l->tx))
        tm_log(TM_LOG_INFO, "event=pivot_passed gid=%s branch=%s", l->tx.gid,
               br->branch_id);
}

/* What the op's last_error says of this result: the participant's own
 * words for a business failure, the status and its message otherwise. */
static void describe_result(tm_result_t result, int status, const char *message,
                            char *msg, size_t len)
{
    if (result == TM_RESULT_FAILURE)
        snprintf(msg, len, "%s", message && *message ? message : "ABORTED");
    else if (status != TM_CODE_OK)
        snprintf(msg, len, "grpc status %d: %s", status,
                 message && *message ? message : "(no message)");
    else
        msg[0] = '\0';
}

/* Keep the compensation log of a forward op that has just succeeded
 * (before: its status until this result), when its branch has a
 * rollback-side op to hand it to: the reply's first max bytes and its full
 * size, stored with the success. An empty reply, or max 0, keeps none. */
static void keep_action_log(tm_branch_t *br, tm_slot_t slot,
                            tm_op_status_t before, uint32_t max,
                            const uint8_t *reply, size_t reply_len)
{
    tm_op_t *op = &br->ops[slot];
    if (slot != TM_SLOT_FORWARD || before == TM_OP_SUCCEEDED ||
        op->status != TM_OP_SUCCEEDED || op->recorded ||
        br->ops[TM_SLOT_ROLLBACK].kind == TM_KIND_NONE || !max || !reply_len)
        return;
    size_t keep = reply_len < max ? reply_len : max;
    free(op->result);
    op->result = malloc(keep);
    if (!op->result)
        tm_exit_oom("action log");
    memcpy(op->result, reply, keep);
    op->result_len = keep;
    op->result_size = reply_len;
}

/* Fold one result into the model, persist and plan. */
static void apply_result(tm_live_t *l, const call_ctx_t *ctx, int status,
                         tm_result_t result, const char *msg, uint64_t micros,
                         const uint8_t *reply, size_t reply_len)
{
    tm_branch_t *br = &l->tx.branches[ctx->branch];
    tm_op_t *op = &br->ops[ctx->slot];
    if (status == TM_CODE_UNIMPLEMENTED && op->attempts == 1)
        tm_log(TM_LOG_WARN,
               "event=target_unimplemented gid=%s branch=%s op=%s target=%s "
               "msg=\"the participant has no such method; retrying\"",
               l->tx.gid, br->branch_id, tm_op_kind_name(op->kind),
               op->target ? op->target : "");
    tm_tx_status_t before = l->tx.status;
    tm_op_status_t op_before = op->status;
    tm_retry_policy_t p = tm_engine_policy_of(l);
    tm_effect_t eff = tm_plan_apply_result(
        &l->tx, &l->run, ctx->branch, ctx->slot, result,
        status == TM_CODE_OK ? NULL : msg, &p, tm_engine_wall(l->eng));
    keep_action_log(br, ctx->slot, op_before, l->eng->cfg.max_action_log, reply,
                    reply_len);
    log_call_result(l, br, op, status, msg, micros);
    char q[700];
    if (eff.alert)
        tm_metrics_op_alert(op->kind);
    if (eff.alert)
        tm_log(TM_LOG_WARN,
               "event=phase2_not_succeeding gid=%s branch=%s op=%s "
               "attempts=%u error=\"%s\"",
               l->tx.gid, br->branch_id, tm_op_kind_name(op->kind),
               op->attempts, tm_log_quote(op->last_error, q, sizeof(q)));
    if (before != l->tx.status)
        tm_engine_log_rollback_decision(l);
    log_if_pivot_passed(l, br, op, ctx->slot);
    log_if_stopped(l, op, eff);
    if (!eff.changed && op->status == TM_OP_PENDING) {
        /* No answer yet: store the attempt anyway, so retry_limit counts
         * on from here after a restart or a takeover. */
        tm_run_op(&l->run, ctx->branch, ctx->slot)->dirty = 1;
        eff.changed = 1;
    }
    if (eff.changed)
        tm_engine_persist_change(l);
    if (eff.retry_in_ms >= 0)
        tm_engine_arm_retry(l, ctx->branch, ctx->slot, eff.retry_in_ms);
    tm_engine_drive(l);
}

static void on_call_done(void *arg, int status, const char *message,
                         const uint8_t *reply, size_t reply_len)
{
    call_ctx_t *ctx = arg;
    tm_live_t *l = ctx->live;
    pthread_mutex_lock(&l->mu);
    if (l->lost) /* the node that owns it now calls again if needed */
        goto out;
    tm_branch_t *br = &l->tx.branches[ctx->branch];
    tm_op_t *op = &br->ops[ctx->slot];
    tm_op_run_t *mark = tm_run_op(&l->run, ctx->branch, ctx->slot);
    assert(mark->inflight);
    mark->inflight = 0;
    tm_result_t result = tm_plan_classify(status);
    uint64_t micros = tm_metrics_now_us() - ctx->started_us;
    tm_metrics_branch_call(op->kind, (tm_metrics_call_result_t)result, micros);
    if (tm_tx_is_final(l->tx.status)) { /* force-stopped while on the wire */
        log_late_result(l, br, op, status);
        goto out;
    }
    char msg[TM_REASON_MAX + 64];
    describe_result(result, status, message, msg, sizeof(msg));
    apply_result(l, ctx, status, result, msg, micros, reply, reply_len);
out:
    pthread_mutex_unlock(&l->mu);
    tm_live_unref(l);
    free(ctx);
}
