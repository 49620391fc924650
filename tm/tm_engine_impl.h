/*
 * tm_engine_impl: what the files of the engine core share, and nobody
 * else sees. The core is split by concern:
 *
 *   tm_engine.c          writes (tickets, write-ahead, held writes, refused
 *                        writes), planning and acting (drive), timers,
 *                        finishing, lifecycle and graceful stop
 *   tm_engine_calls.c    branch calls: start one, fold its result in
 *   tm_engine_requests.c initiator and operator requests on a live copy or
 *                        on the store
 *   tm_engine_workflow.c StartWorkflow and RecordStep
 *   tm_engine_recover.c  loading at start, takeover, reload, lease lapses
 *   tm_waiters.c         requests waiting for a result or for a write
 *   tm_live.c            the live-transaction table
 *
 * Every function here that takes a tm_live_t expects its lock held unless
 * it says otherwise.
 */
#ifndef TM_ENGINE_IMPL_H
#define TM_ENGINE_IMPL_H

#include <stdatomic.h>

#include "tm_batch.h"
#include "tm_engine.h"
#include "tm_live.h"
#include "tm_plan.h"

struct tm_engine {
    tm_engine_config_t cfg;
    tm_engine_env_t env; /* store, calls, timers, clocks */
    tm_engine_front_t front;
    tm_live_table_t live;
    atomic_uint gid_counter;
    uint32_t node_tag;
    /* Graceful stop: once set, no new transaction is admitted. */
    atomic_int draining;
    atomic_uint n_waiters; /* requests waiting for a result, all lives */
    /* Batching listeners' events (tm_batch.h), sent through env. */
    tm_batch_t *batch;
};

/* The engine's clocks (its env's). */
static inline int64_t tm_engine_wall(const tm_engine_t *e)
{
    return e->env.wall_ms(e->env.clock);
}

static inline int64_t tm_engine_mono(const tm_engine_t *e)
{
    return e->env.mono_ms(e->env.clock);
}

/* ---- answers (tm_engine.c) ---------------------------------------------- */

void tm_engine_answer(tm_engine_t *e, tm_rpc_t *rpc, const tm_answer_t *a);
void tm_engine_fail(tm_engine_t *e, tm_rpc_t *rpc, tm_code_t code,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void tm_engine_answer_status(tm_engine_t *e, tm_rpc_t *rpc,
                             tm_answer_kind_t kind, const char *gid,
                             tm_tx_status_t status, const char *reason);
/* Begin's answer: tx's gid and status, and how many initiator-driven
 * branches it holds (BeginReply.branches_registered). */
void tm_engine_answer_begin(tm_engine_t *e, tm_rpc_t *rpc,
                            const tm_trans_t *tx);
/* UNAVAILABLE: another node drives gid. */
void tm_engine_fail_moved(tm_engine_t *e, tm_rpc_t *rpc, const char *gid);
/* UNAVAILABLE: a read of the store failed. */
void tm_engine_fail_storage(tm_engine_t *e, tm_rpc_t *rpc, const char *err);
/* INTERNAL: the store refused a write for good. */
void tm_engine_fail_write(tm_engine_t *e, tm_rpc_t *rpc, const char *gid);
/* Answer UNAVAILABLE and return 1 while the store fails to commit. */
int tm_engine_refuse_if_store_failing(tm_engine_t *e, tm_rpc_t *rpc);

/* ---- writes and acting (tm_engine.c) ------------------------------------ */

/* Queue the live's unsaved changes; when they commit, answer rpc (if any)
 * with an answer of kind ack carrying the status of now, and plan again.
 * insert: this write creates the row. ack_none: no answer. */
#define TM_ACK_NONE ((tm_answer_kind_t)-1)
void tm_engine_persist(tm_live_t *l, int insert, tm_rpc_t *rpc,
                       tm_answer_kind_t ack);
/* Persist a change; when it also ends the transaction, the final status
 * goes into the same write. */
void tm_engine_persist_change(tm_live_t *l);
/* Plan on durable state and act: start ready calls, or finish. */
void tm_engine_drive(tm_live_t *l);

void tm_engine_arm_timer(tm_live_t *l, tm_timer_node_t *node, int64_t in_ms);
void tm_engine_disarm_timer(tm_live_t *l, tm_timer_node_t *node);
/* Call op (branch b, slot s) again after in_ms; the plan leaves it alone
 * until then. */
void tm_engine_arm_retry(tm_live_t *l, uint32_t b, tm_slot_t s, int64_t in_ms);
/* Its retry timer off (it waits no more). */
void tm_engine_disarm_retry(tm_live_t *l, uint32_t b, tm_slot_t s);

/* l's runtime marks fitted to its model after branches were added (exits
 * on out of memory). */
void tm_engine_fit(tm_live_t *l);
void tm_engine_disarm_all_timers(tm_live_t *l);
/* Arm the transaction's timeout (its options), if it has one. */
void tm_engine_arm_timeout(tm_live_t *l);

tm_retry_policy_t tm_engine_policy_of(const tm_live_t *l);
/* The deadline of a call of br's ops: the transaction's request timeout
 * (or the default), at least --resume-timeout-ms for a workflow's own
 * kinds (head, local steps, hooks). */
uint32_t tm_engine_request_timeout_of(const tm_live_t *l,
                                      const tm_branch_t *br);
void tm_engine_log_rollback_decision(const tm_live_t *l);
/* The trace context of rpc's request (the front's), kept in the options
 * of tx, which that request creates. */
void tm_engine_take_trace(tm_engine_t *e, const tm_rpc_t *rpc, tm_trans_t *tx);
/* event=created at debug: l's transaction entered this node by a request
 * (not a load), with its trace id. */
void tm_engine_log_created(const tm_live_t *l);

/* ---- branch calls (tm_engine_calls.c) ----------------------------------- */

/* Call the op (branch b, slot) now. */
void tm_engine_start_call(tm_live_t *l, uint32_t b, tm_slot_t slot);

/* ---- requests (tm_engine_requests.c) ------------------------------------ */

/* Where a gid was found. ELSEWHERE: stored and unfinished, but not in this
 * node's memory: another node drives it (MySQL store only). FULL / CLOSED:
 * a new gid that was not admitted (max-inflight reached / shutting down). */
typedef enum {
    FOUND_LIVE,
    FOUND_STORED,
    FOUND_ELSEWHERE,
    FOUND_NONE,
    FOUND_ERROR,
    FOUND_FULL,
    FOUND_CLOSED
} tm_found_t;

typedef void (*tm_on_live_fn)(tm_live_t *l, const tm_engine_req_t *rq,
                              const void *r);

/* Look gid up in memory. With create != NULL and the gid not in memory,
 * insert create (tm_engine_requests.c says why). Without create, look in
 * the store too (outside the table's lock). *live holds a reference when
 * FOUND_LIVE. */
tm_found_t tm_engine_find_or_insert(tm_engine_t *e, const char *gid,
                                    tm_live_t **live, tm_live_t *create,
                                    char *err, size_t errlen);
/* Run act on l once it is settled; returns TM_ENGINE_AGAIN when l left
 * memory meanwhile. Drops the caller's reference to l. */
int tm_engine_act_on_live(tm_live_t *l, const tm_engine_req_t *rq,
                          tm_on_live_fn act, const void *r);
/* Refuse while the store fails (refuse_failing), find gid and act on its
 * live copy: 0 or TM_ENGINE_AGAIN when handled; -1 when gid is not in
 * memory (*f and err say where it is; the caller answers). */
int tm_engine_act_if_live(tm_engine_t *e, const tm_engine_req_t *rq,
                          const char *gid, int refuse_failing,
                          tm_on_live_fn act, const void *arg, tm_found_t *f,
                          char *err, size_t errlen);
/* Answer a request that needs gid in memory when it is not (f). */
void tm_engine_fail_not_live(tm_engine_t *e, tm_rpc_t *rpc, tm_found_t f,
                             const char *gid, const char *err,
                             const char *what);
/* Answer a request for a new gid that was not admitted (FULL, CLOSED). */
void tm_engine_fail_not_admitted(tm_engine_t *e, tm_rpc_t *rpc, tm_found_t f);
/* gid from the store for an answer; NULL when that failed (answered). The
 * caller frees it. No lock held. */
tm_trans_t *tm_engine_read_stored(tm_engine_t *e, tm_rpc_t *rpc,
                                  const char *gid);

/* Answer a Submit for gid from the store (its insert found it stored). A
 * Submit that waits for the result (wait) of a transaction another node
 * drives is answered UNAVAILABLE, never with a status that is not final.
 * No lock held. */
void tm_engine_submit_stored(tm_engine_t *e, tm_rpc_t *rpc, const char *gid,
                             uint64_t submit_hash, int wait);

/* Answer a PrepareMessage whose insert found the gid stored, from the
 * store; h is the request's content hash. No lock held. */
void tm_engine_prepare_message_stored(tm_engine_t *e, tm_rpc_t *rpc,
                                      const char *gid, uint64_t h);

/* Submit on a live message (tm_engine_msg.c): decide a prepared one,
 * answer the status of one decided already, refuse steps. Returns 0 when
 * l is not a message (the caller handles the Submit), 1 when answered. */
int tm_engine_submit_message(tm_live_t *l, tm_rpc_t *rpc,
                             const Trellis__V1__SubmitRequest *r, int wait);

/* Answer a StartWorkflow whose insert found the gid stored, from the
 * store; fresh is the workflow the request describes. No lock held. */
void tm_engine_start_workflow_stored(tm_engine_t *e, tm_rpc_t *rpc,
                                     const tm_trans_t *fresh);

/* ---- recovery (tm_engine_recover.c) ------------------------------------- */

/* Drive old's transaction on from its stored row (a change to it was
 * refused for good; old is forgotten, out of the table). Its waiters move
 * to the reloaded copy, or hear the stored outcome. No lock held. */
void tm_engine_reload_from_store(tm_engine_t *e, tm_live_t *old);

/* ---- waiters and parked requests (tm_waiters.c) ------------------------- */

typedef enum {
    TM_WAIT_SUBMIT,
    TM_WAIT_ABORT,
    TM_WAIT_PREPARE_MESSAGE /* PrepareMessage with submit and wait_result */
} tm_wait_kind_t;

struct tm_waiter {
    tm_waiter_t *next;
    tm_rpc_t *rpc;
    tm_wait_kind_t kind;
};

/* Keep rpc to answer when the transaction ends (bounded: past a bound it
 * is refused RESOURCE_EXHAUSTED at once). */
void tm_wait_add(tm_live_t *l, tm_rpc_t *rpc, tm_wait_kind_t kind);
/* Take every waiter off l (the caller answers and frees them). */
tm_waiter_t *tm_wait_take(tm_live_t *l);
/* Answer every waiter with l's final state. */
void tm_wait_answer_final(tm_live_t *l);
/* Answer every waiter once l's outcome is known from durable state (no
 * write pending; tm_plan_outcome_known), though listeners may still be
 * told before l is final; else leave them waiting. */
void tm_wait_answer_known(tm_live_t *l);
/* A repeated request that waits for the outcome: answered at once when
 * it is known from durable state, else kept as tm_wait_add does. */
void tm_wait_add_or_answer(tm_live_t *l, tm_rpc_t *rpc, tm_wait_kind_t kind);
/* Move every waiter of from to to (a fresher copy replaces from). Both
 * locks held, or to not yet visible to anyone. */
void tm_wait_move(tm_live_t *from, tm_live_t *to);
/* Answer the waiters w (taken off their copy) from tx as stored, or, with
 * tx NULL, that the store could not say (err); frees the list. No lock
 * needed. */
void tm_wait_answer_stored(tm_engine_t *e, tm_waiter_t *w, const char *gid,
                           const tm_trans_t *tx, const char *err);

typedef enum { TM_LIVE_SETTLED, TM_LIVE_PARKED, TM_LIVE_GONE } tm_settle_t;

/* May rq act on l's state now? Not while a write of l is pending (its
 * change may still be refused, or lost with a crash): rq is parked and
 * handled again after the commit. Not once l left memory: the caller
 * handles rq again from the top. */
tm_settle_t tm_wait_settle(tm_live_t *l, const tm_engine_req_t *rq);
/* The parked requests, once they may run (no write pending, or the copy
 * left memory); NULL otherwise. */
tm_parked_t *tm_wait_take_parked_if_settled(tm_live_t *l);
/* Handle each parked request again, in arrival order. No lock held. */
void tm_wait_run_parked(tm_parked_t *p);

#endif /* TM_ENGINE_IMPL_H */
