/*
 * tm_trans: the in-memory model of one global transaction.
 *
 * A transaction is a gid, a status, options and an array of branches. Each
 * branch has up to three op slots: the forward op (saga action, tcc try, xa
 * prepare), the commit-side op (confirm, commit) and the rollback-side op
 * (compensate, cancel, rollback). Dependencies between branches are indexes
 * into the branch array and always point to earlier branches, so the graph
 * is acyclic by construction.
 *
 * This file owns construction, copying and freeing of the model and its
 * conversion to and from the protobuf messages. The model is what is
 * stored, and only that: it knows nothing of locks, storage or calls.
 * What a process knows of a transaction only while it drives it (calls on
 * the wire, retry timers, backoff streaks, what changed since the last
 * write) is tm_run.h's, kept by the engine beside the model; the pure
 * decision rules live in tm_plan.c.
 */
#ifndef TM_TRANS_H
#define TM_TRANS_H

#include <stddef.h>
#include <stdint.h>

#include "trellis/v1/tm.pb-c.h"

/* Numbered as trellis.v1.TransStatus. */
typedef enum {
    TM_TX_PREPARED = 1,
    TM_TX_SUBMITTED = 2,
    TM_TX_ABORTING = 3,
    TM_TX_SUCCEEDED = 4,
    TM_TX_FAILED = 5,
} tm_tx_status_t;

/* Numbered as trellis.v1.OpStatus. */
typedef enum {
    TM_OP_PENDING = 1,
    TM_OP_SUCCEEDED = 2,
    TM_OP_FAILED = 3,
    TM_OP_SKIPPED = 4,
} tm_op_status_t;

/* Numbered as trellis.v1.BranchMode. */
typedef enum {
    TM_MODE_SAGA = 1,
    TM_MODE_TCC = 2,
    TM_MODE_XA = 3,
    TM_MODE_WORKFLOW = 4,
    TM_MODE_LOCAL = 5,
    TM_MODE_HOOKS = 6,
    TM_MODE_MSG = 7,
    TM_MODE_MSG_CHECK = 8,
    TM_MODE_EVENT = 9,
    TM_MODE_BRANCH_EVENT = 10,
    TM_MODE_DTM_WORKFLOW = 11,
} tm_mode_t;

/* Numbered as trellis.v1.OpKind; 0 marks an unused slot. */
typedef enum {
    TM_KIND_NONE = 0,
    TM_KIND_ACTION = 1,
    TM_KIND_COMPENSATE = 2,
    TM_KIND_TRY = 3,
    TM_KIND_CONFIRM = 4,
    TM_KIND_CANCEL = 5,
    TM_KIND_PREPARE = 6,
    TM_KIND_COMMIT = 7,
    TM_KIND_ROLLBACK = 8,
    TM_KIND_RESUME = 9,
    TM_KIND_QUERY_PREPARED = 10,
    TM_KIND_NOTIFY = 11,
} tm_op_kind_t;

/* One past the largest op kind (per-kind arrays). */
#define TM_OP_KINDS 12

typedef enum {
    TM_SLOT_FORWARD = 0,
    TM_SLOT_COMMIT = 1,
    TM_SLOT_ROLLBACK = 2,
    TM_SLOTS = 3,
} tm_slot_t;

/* How many attempt start times an op keeps (for query and diagnosis). */
#define TM_ATTEMPT_TIMES_KEPT 32

typedef struct {
    tm_op_kind_t kind; /* TM_KIND_NONE: slot unused */
    char *target;      /* owned; NULL when the initiator calls this op */
    tm_op_status_t status;
    uint32_t attempts;
    char *last_error;    /* owned; NULL when none */
    int64_t *attempt_ms; /* owned; n_attempt_ms entries */
    uint32_t n_attempt_ms;
    int64_t finished_ms;
    /* Forward op that succeeded only after the rollback decision: nothing
     * that depends on it can have been called. Stored. */
    int late;
    /* Workflow: the initiator recorded this forward op's result
     * (RecordStep): status SUCCEEDED with the reply bytes, or FAILED with
     * the message in last_error. Stored. */
    int recorded;
    /* Owned; NULL when empty. The recorded reply (above), or the
     * compensation log (issue 16): the first --max-action-log bytes of
     * the reply of a forward op trellisd called whose branch has a
     * rollback-side op, handed to that op (tm_engine_calls.c). Stored. */
    uint8_t *result;
    size_t result_len;
    /* The compensation log's full reply size: > result_len when it was
     * cut, 0 when no log was kept (and for a recorded result). Stored. */
    uint64_t result_size;
} tm_op_t;

typedef struct {
    char *branch_id; /* owned */
    tm_mode_t mode;
    int initiator_driven; /* registered: the initiator calls the forward op */
    uint8_t *payload;     /* owned */
    size_t payload_len;
    uint32_t *deps; /* owned; indexes of earlier branches */
    size_t n_deps;
    /* The saga's pivot (SagaStep.pivot; at most one per transaction):
     * once its forward op succeeded the transaction only goes forward
     * (tm_plan.h, "Pivot"). Stored. */
    int pivot;
    tm_op_t ops[TM_SLOTS];
} tm_branch_t;

typedef struct {
    uint32_t timeout_to_fail_ms;
    uint32_t retry_interval_ms;
    uint32_t request_timeout_ms;
    uint32_t retry_limit;
    size_t n_headers;
    char **header_keys;   /* owned */
    char **header_values; /* owned */
    /* TransOptions.branch_listeners: kept (in the options blob) because
     * a branch registered later gets its events then. */
    size_t n_branch_listeners;
    char **branch_listeners; /* owned */
    /* TransOptions.listener_batch: 2 and more, completion listeners take
     * CompletionEventBatch calls of up to this many events (tm_batch.h). */
    uint32_t listener_batch;
    /* W3C trace context of the request that created the transaction
     * (tm_trace.h), sent with every branch call; owned, NULL when none
     * (tracestate only with a traceparent). Set by the engine from the
     * request's metadata, never from the message. */
    char *traceparent;
    char *tracestate;
} tm_options_t;

#define TM_GID_MAX 64

typedef struct tm_trans tm_trans_t;
struct tm_trans {
    char gid[TM_GID_MAX + 1];
    tm_tx_status_t status;
    int64_t created_ms;
    int64_t updated_ms;
    int64_t finished_ms;
    char *reason; /* owned; NULL when none */
    tm_options_t opts;
    uint64_t submit_hash; /* 0: never submitted */
    /* MySQL: the claim this copy was loaded under (the fencing token; 0
     * for a row this node inserted and nobody has claimed since). Every
     * write carries it and the store applies it only while the row's
     * generation is the same. Unused by SQLite. */
    uint64_t generation;
    tm_branch_t *branches; /* owned */
    size_t n_branches;
    size_t cap_branches;
};

/* A new transaction with no branches. Returns NULL on out of memory. The
 * caller owns it: tm_trans_free. */
tm_trans_t *tm_trans_new(const char *gid, tm_tx_status_t status,
                         int64_t now_ms);
/* Frees the model's fields and the struct itself. */
void tm_trans_free(tm_trans_t *tx);
/* Frees the model's fields only (for a tm_trans_t embedded elsewhere). */
void tm_trans_clear(tm_trans_t *tx);

/* Append a zeroed branch; returns it, or NULL on out of memory. The pointer
 * is valid until the next append. */
tm_branch_t *tm_trans_add_branch(tm_trans_t *tx);

/* Drop branches from index n on (undoing appends that failed halfway). */
void tm_trans_truncate(tm_trans_t *tx, size_t n);

/* Duplicate a string into owned memory; NULL in gives NULL out. */
char *tm_strdup(const char *s);
/* Replace *slot (freed) with a copy of s. Returns 0, or -1 on out of memory. */
int tm_set_string(char **slot, const char *s);

/* Record one attempt starting at now_ms on op. */
void tm_op_note_attempt(tm_op_t *op, int64_t now_ms);

/* Options from the protobuf message (which may be NULL: all defaults).
 * Returns 0, or -1 on out of memory. */
int tm_options_from_proto(tm_options_t *o, const Trellis__V1__TransOptions *m);
void tm_options_clear(tm_options_t *o);
int tm_options_copy(tm_options_t *dst, const tm_options_t *src);
/* Set the trace context (copied; NULL or "" clears). Returns 0, or -1 on
 * out of memory. */
int tm_options_set_trace(tm_options_t *o, const char *traceparent,
                         const char *tracestate);

/* The transaction as a protobuf message; with_branches 0 leaves them out.
 * The returned tree is the caller's: tm_trans_proto_free. */
Trellis__V1__Transaction *tm_trans_to_proto(const tm_trans_t *tx,
                                            int with_branches);
void tm_trans_proto_free(Trellis__V1__Transaction *m);

/* The options as a protobuf message, owned by the caller: free with
 * tm_options_proto_free. Used for storage. */
Trellis__V1__TransOptions *tm_options_to_proto(const tm_options_t *o);
void tm_options_proto_free(Trellis__V1__TransOptions *m);

/* 1 for SUCCEEDED and FAILED: the one definition of a finished
 * transaction (the stores' SQL says the same with TM_STORE_SQL_FINAL and
 * TM_STORE_SQL_UNFINISHED, tm_store_impl.h). */
int tm_tx_is_final(tm_tx_status_t s);

/* Static lower-case names ("submitted", "compensate", ...); a branch
 * mode's name is its kind's (tm_kind_name). */
const char *tm_tx_status_name(tm_tx_status_t s);
const char *tm_op_kind_name(tm_op_kind_t k);

#endif /* TM_TRANS_H */
