/*
 * tm_trans_json: the Transaction message as JSON for the console (see
 * tm_trans_json.h). Owns the field names; the escaping is tm_json_out's.
 */
#include "tm_trans_json.h"

#include "tm_kind.h"
#include "tm_trans.h"

static const char *op_status_name(Trellis__V1__OpStatus s)
{
    switch (s) {
    case TRELLIS__V1__OP_STATUS__OP_PENDING:
        return "pending";
    case TRELLIS__V1__OP_STATUS__OP_SUCCEEDED:
        return "succeeded";
    case TRELLIS__V1__OP_STATUS__OP_FAILED:
        return "failed";
    case TRELLIS__V1__OP_STATUS__OP_SKIPPED:
        return "skipped";
    default:
        return "unknown";
    }
}

/* "key": the bytes as text (cut), "key_bytes": their full size. */
static void kv_bytes(tm_json_out_t *j, const char *key, const char *size_key,
                     ProtobufCBinaryData b)
{
    size_t shown =
        b.len < TM_TRANS_JSON_BYTES_SHOWN ? b.len : TM_TRANS_JSON_BYTES_SHOWN;
    tm_json_out_key(j, key);
    tm_json_out_bytes(j, b.data, shown);
    tm_json_out_key(j, size_key);
    tm_json_out_uint(j, b.len);
}

static void write_op(tm_json_out_t *j, const Trellis__V1__Op *op)
{
    tm_json_out_obj_begin(j);
    tm_json_out_kv_str(j, "kind", tm_op_kind_name((tm_op_kind_t)op->op));
    tm_json_out_kv_str(j, "target", op->target);
    tm_json_out_kv_str(j, "status", op_status_name(op->status));
    tm_json_out_kv_int(j, "attempts", op->attempts);
    tm_json_out_kv_str(j, "last_error", op->last_error);
    tm_json_out_key(j, "attempt_ms");
    tm_json_out_arr_begin(j);
    for (size_t i = 0; i < op->n_attempt_ms; i++)
        tm_json_out_int(j, op->attempt_ms[i]);
    tm_json_out_arr_end(j);
    tm_json_out_kv_int(j, "finished_ms", op->finished_ms);
    tm_json_out_kv_bool(j, "recorded", op->recorded);
    kv_bytes(j, "result", "result_bytes", op->result);
    tm_json_out_key(j, "result_size");
    tm_json_out_uint(j, op->result_size);
    tm_json_out_obj_end(j);
}

static void write_branch(tm_json_out_t *j, const Trellis__V1__Branch *b)
{
    tm_json_out_obj_begin(j);
    tm_json_out_kv_str(j, "branch_id", b->branch_id);
    tm_json_out_kv_str(j, "mode", tm_kind_name((tm_mode_t)b->mode));
    tm_json_out_kv_bool(j, "initiator_driven", b->initiator_driven);
    tm_json_out_kv_bool(j, "pivot", b->pivot);
    tm_json_out_key(j, "depends_on");
    tm_json_out_arr_begin(j);
    for (size_t i = 0; i < b->n_depends_on; i++)
        tm_json_out_uint(j, b->depends_on[i]);
    tm_json_out_arr_end(j);
    kv_bytes(j, "payload", "payload_bytes", b->payload);
    tm_json_out_key(j, "ops");
    tm_json_out_arr_begin(j);
    for (size_t i = 0; i < b->n_ops; i++)
        write_op(j, b->ops[i]);
    tm_json_out_arr_end(j);
    tm_json_out_obj_end(j);
}

static void write_strings(tm_json_out_t *j, const char *key, char **v, size_t n)
{
    tm_json_out_key(j, key);
    tm_json_out_arr_begin(j);
    for (size_t i = 0; i < n; i++)
        tm_json_out_str(j, v[i]);
    tm_json_out_arr_end(j);
}

static void write_options(tm_json_out_t *j, const Trellis__V1__TransOptions *o)
{
    tm_json_out_key(j, "options");
    tm_json_out_obj_begin(j);
    if (o) {
        tm_json_out_kv_bool(j, "wait_result", o->wait_result);
        tm_json_out_kv_int(j, "timeout_to_fail_ms", o->timeout_to_fail_ms);
        tm_json_out_kv_int(j, "retry_interval_ms", o->retry_interval_ms);
        tm_json_out_kv_int(j, "request_timeout_ms", o->request_timeout_ms);
        tm_json_out_kv_int(j, "retry_limit", o->retry_limit);
        write_strings(j, "listeners", o->listeners, o->n_listeners);
        write_strings(j, "branch_listeners", o->branch_listeners,
                      o->n_branch_listeners);
    }
    tm_json_out_obj_end(j);
}

void tm_trans_json(tm_json_out_t *j, const Trellis__V1__Transaction *t,
                   int with_branches)
{
    tm_json_out_obj_begin(j);
    tm_json_out_kv_str(j, "gid", t->gid);
    tm_json_out_kv_str(j, "status",
                       tm_tx_status_name((tm_tx_status_t)t->status));
    tm_json_out_kv_str(j, "reason", t->reason);
    tm_json_out_kv_int(j, "created_ms", t->created_ms);
    tm_json_out_kv_int(j, "updated_ms", t->updated_ms);
    tm_json_out_kv_int(j, "finished_ms", t->finished_ms);
    if (with_branches) {
        write_options(j, t->options);
        tm_json_out_key(j, "branches");
        tm_json_out_arr_begin(j);
        for (size_t i = 0; i < t->n_branches; i++)
            write_branch(j, t->branches[i]);
        tm_json_out_arr_end(j);
    }
    tm_json_out_obj_end(j);
}
