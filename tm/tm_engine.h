/*
 * tm_engine: the live transaction engine of trellisd — its core, without
 * the wire. The gRPC half (tm_api.c, tm_admin.c) decodes and validates a
 * request and calls one of the entry points below; the engine answers
 * through the front given at creation (tm_engine_front_t), so it knows
 * requests only as opaque rpc pointers and answers only as tm_answer_t.
 *
 * It keeps every unfinished transaction in memory (tm_live.h), each with
 * its own lock, and moves it along on four kinds of event: a request from
 * an initiator, the result of a branch call, a timer (retry or timeout),
 * and the commit of a storage write. The decisions themselves are
 * tm_plan's; the engine adds what makes them safe to act on:
 *
 *  - Write-ahead: every change is captured and queued to the store, and
 *    nothing is called or answered on its strength until the write's
 *    commit callback runs. While any write of a transaction is in flight,
 *    the engine does not plan new calls for it; the last commit callback
 *    plans, so planning only ever sees durable state.
 *  - Durable answers only: a request for a transaction with a write
 *    pending waits (parked) behind it and is handled again from the top
 *    once it committed, so a duplicate never answers before the write of
 *    the request it repeats.
 *  - Reference counts: the table, each call on the wire, each armed timer
 *    and each queued write hold a reference to the transaction, so none of
 *    them can see it freed.
 *  - Finished transactions leave memory once their final state committed;
 *    queries then read them from the store.
 *
 * Threads: every entry point may be called from any thread and does not
 * block on I/O (a read of the store for a gid not in memory excepted);
 * answers may come on any thread (queue, store or timer threads).
 */
#ifndef TM_ENGINE_H
#define TM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "tm_call.h"
#include "tm_engine_config.h"
#include "tm_store.h"
#include "tm_timer.h"
#include "tm_trace.h"
#include "trellis/v1/tm.pb-c.h"

typedef struct tm_engine tm_engine_t;

/* A request the front holds; opaque to the engine. */
typedef struct tm_rpc tm_rpc_t;

/* The status codes the engine answers with, numbered as gRPC's. */
typedef enum {
    TM_CODE_OK = 0,
    TM_CODE_INVALID_ARGUMENT = 3,
    TM_CODE_DEADLINE_EXCEEDED = 4,
    TM_CODE_NOT_FOUND = 5,
    TM_CODE_ALREADY_EXISTS = 6,
    TM_CODE_PERMISSION_DENIED = 7,
    TM_CODE_RESOURCE_EXHAUSTED = 8,
    TM_CODE_FAILED_PRECONDITION = 9,
    TM_CODE_UNIMPLEMENTED = 12,
    TM_CODE_INTERNAL = 13,
    TM_CODE_UNAVAILABLE = 14,
} tm_code_t;

/* Which request an answer is for (what the front builds from it). */
typedef enum {
    TM_ANSWER_BEGIN,
    TM_ANSWER_REGISTER,
    TM_ANSWER_SUBMIT,
    TM_ANSWER_ABORT,
    TM_ANSWER_QUERY,
    TM_ANSWER_LIST,
    TM_ANSWER_RETRY_NOW,
    TM_ANSWER_FORCE_STOP,
    TM_ANSWER_START_WORKFLOW,
    TM_ANSWER_RECORD_STEP,
    TM_ANSWER_PREPARE_MESSAGE,
    TM_ANSWER_SUBSCRIBE,
    TM_ANSWER_UNSUBSCRIBE,
    TM_ANSWER_SUBSCRIPTIONS,
} tm_answer_kind_t;

/* One answer. With code != TM_CODE_OK only message is meaningful (it says
 * what is wrong); with TM_CODE_OK, the fields of kind. Every pointer is
 * borrowed for the duration of the answer call. */
typedef struct {
    tm_code_t code;
    const char *message;
    tm_answer_kind_t kind;
    const char *gid;         /* BEGIN, SUBMIT, PREPARE_MESSAGE */
    tm_tx_status_t status;   /* BEGIN, SUBMIT, ABORT, RETRY_NOW, FORCE_STOP,
                                PREPARE_MESSAGE */
    const char *reason;      /* SUBMIT, FORCE_STOP, PREPARE_MESSAGE */
    uint32_t ops_called;     /* RETRY_NOW */
    uint32_t registered;     /* BEGIN: initiator-driven branches held */
    const tm_trans_t *trans; /* QUERY, START_WORKFLOW: with its branches */
    int created;             /* START_WORKFLOW: 0 for a re-run; SUBSCRIBE */
    const tm_subscription_t *subs; /* SUBSCRIPTIONS */
    size_t n_subs;
    tm_trans_t *const *items; /* LIST: one page, oldest first */
    size_t n_items;
    int more; /* LIST: the page is full */
} tm_answer_t;

/* Told that the client of a kept rpc went away (cancel, lost connection,
 * deadline), with the key given when watching. */
typedef void (*tm_engine_cancel_fn)(tm_rpc_t *rpc, void *user, const char *key);

#define TM_FRONT_CALL_CLOSED 1

/* What the engine needs of whoever serves its requests (tm_api.c over
 * tm_server; a test's fake). Each rpc is answered or dropped exactly once.
 *  answer: send a.
 *  drop: finish rpc without an answer (its client is gone).
 *  watch_cancel: run fn(rpc, fn_user, key) once if rpc's client goes away
 *    before it is answered; 0 watching, TM_FRONT_CALL_CLOSED when it is
 *    gone already, -1 with err. May be called under the engine's locks.
 *  expired: 1 once rpc's client deadline passed.
 *  trace: the W3C trace context rpc's request carried, as tm_trace_take
 *    keeps it, into *out (always filled; "" when none). Asked once by the
 *    request that creates a transaction, which keeps it. May be NULL: no
 *    request carries one. */
typedef struct {
    void (*answer)(void *user, tm_rpc_t *rpc, const tm_answer_t *a);
    void (*drop)(void *user, tm_rpc_t *rpc);
    int (*watch_cancel)(void *user, tm_rpc_t *rpc, tm_engine_cancel_fn fn,
                        void *fn_user, const char *key, char *err,
                        size_t errlen);
    int (*expired)(void *user, const tm_rpc_t *rpc);
    void *user; /* must outlive the engine */
    void (*trace)(void *user, const tm_rpc_t *rpc, tm_trace_t *out);
} tm_engine_front_t;

/* What the engine runs on: storage, branch calls, timers and clocks,
 * reached only through this table, so trellisd wires the real ones
 * (tm_engine_env_real, tm_engine_env.c) and a test or the simulator wires
 * fakes. Each function means what its namesake in tm_store.h, tm_caller.h,
 * tm_timer.h or tm_clock.h says; self is the object given with it. The
 * engine calls them under a transaction's lock, so none may call the
 * engine back before it returns: a write's, a call's or a timer's callback
 * comes later, from another thread (or the simulator's loop). */
typedef struct {
    void *store;
    void (*store_queue)(void *store, tm_write_t *w, tm_store_done_fn done,
                        void *arg);
    int (*store_get)(void *store, const char *gid, tm_trans_t **out, char *err,
                     size_t errlen);
    int (*store_peek)(void *store, const char *gid, tm_tx_status_t *status,
                      uint64_t *submit_hash, char *err, size_t errlen);
    int (*store_list)(void *store, const tm_store_filter_t *f,
                      tm_trans_t ***out, size_t *n, char *err, size_t errlen);
    long (*store_load_unfinished)(void *store, tm_store_each_fn fn, void *arg,
                                  char *err, size_t errlen);
    int (*store_healthy)(void *store, char *why, size_t len);
    int (*store_subscribe)(void *store, const char *topic, const char *target,
                           const char *remark, int64_t now_ms, char *err,
                           size_t errlen);
    int (*store_unsubscribe)(void *store, const char *topic, const char *target,
                             char *err, size_t errlen);
    int (*store_subscriptions)(void *store, const char *topic,
                               tm_subscription_t **out, size_t *n, char *err,
                               size_t errlen);
    int (*store_lease_ok)(void *store);
    const char *(*store_kind_name)(void *store);
    void (*store_start_ownership)(void *store,
                                  const tm_store_owner_hooks_t *hooks);
    /* call_start copies payload and md before it returns. */
    void *caller;
    int (*call_start)(void *caller, const char *host_port, const char *method,
                      const uint8_t *payload, size_t len, const tm_md_t *md,
                      size_t n_md, uint32_t timeout_ms, tm_call_done_fn done,
                      void *arg, char *err, size_t errlen);
    void *timers;
    int (*timer_arm)(void *timers, tm_timer_node_t *node, int64_t due_ms);
    int (*timer_disarm)(void *timers, tm_timer_node_t *node);
    void *clock;
    int64_t (*mono_ms)(void *clock);
    int64_t (*wall_ms)(void *clock);
} tm_engine_env_t;

/* *out is the caller's: tm_engine_free. env and front are copied; what
 * they point to must outlive the engine. */
int tm_engine_new(const tm_engine_config_t *cfg, const tm_engine_env_t *env,
                  const tm_engine_front_t *front, tm_engine_t **out, char *err,
                  size_t errlen);
void tm_engine_free(tm_engine_t *e);

/* The settings in force (borrowed for the engine's life). */
const tm_engine_config_t *tm_engine_config(const tm_engine_t *e);

/* Load every unfinished transaction from the store into memory (before
 * serving). Returns how many, or -1 with err. */
long tm_engine_load(tm_engine_t *e, char *err, size_t errlen);
/* Drive every loaded transaction on (once the queues run), and start
 * taking over the transactions of nodes whose leases ran out. */
void tm_engine_resume_all(tm_engine_t *e);

/* ---- requests ------------------------------------------------------------
 * Each gets a request already decoded and validated (tm_validate), answers
 * it through the front — at once, or once a write committed — and returns
 * 0; or returns TM_ENGINE_AGAIN without answering: the copy it found left
 * memory meanwhile, and the caller handles the request again from the top
 * (it then finds the next copy, or the store). A request that must wait
 * for a pending write is kept (its bytes copied) and handled again later
 * by calling rq->redo. */

#define TM_ENGINE_AGAIN 1

typedef void (*tm_engine_redo_fn)(tm_rpc_t *rpc, const uint8_t *req, size_t len,
                                  void *user);

typedef struct {
    tm_rpc_t *rpc;
    const uint8_t *bytes; /* the request as received (borrowed) */
    size_t len;
    tm_engine_redo_fn redo; /* redo(rpc, bytes, len, redo_user) handles */
    void *redo_user;        /* the request again from the top */
} tm_engine_req_t;

int tm_engine_begin(tm_engine_t *e, const tm_engine_req_t *rq,
                    const Trellis__V1__BeginRequest *r);
int tm_engine_register(tm_engine_t *e, const tm_engine_req_t *rq,
                       const Trellis__V1__RegisterBranchRequest *r);
int tm_engine_submit(tm_engine_t *e, const tm_engine_req_t *rq,
                     const Trellis__V1__SubmitRequest *r);
int tm_engine_abort(tm_engine_t *e, const tm_engine_req_t *rq,
                    const Trellis__V1__AbortRequest *r);
/* Workflows (tm_engine_workflow.c). StartWorkflow: open a workflow, or
 * answer a re-run with its durable progress. RecordStep: store a step's
 * result, answered once durable. */
int tm_engine_start_workflow(tm_engine_t *e, const tm_engine_req_t *rq,
                             const Trellis__V1__StartWorkflowRequest *r);
/* StartWorkflow with a head of head_mode: TM_MODE_WORKFLOW (trellis.v1's
 * own, as tm_engine_start_workflow) or TM_MODE_DTM_WORKFLOW (DTM's
 * PrepareWorkflow: resumed by DTM's callback). A re-run must name the
 * same mode. */
int tm_engine_start_workflow_as(tm_engine_t *e, const tm_engine_req_t *rq,
                                const Trellis__V1__StartWorkflowRequest *r,
                                tm_mode_t head_mode);
/* One progress of a DTM workflow (its RegisterBranch): register reg (a
 * step with no op for trellisd to call) and record rec as its forward
 * op's result, in one write; a repeat with the same content is OK, other
 * content ALREADY_EXISTS; only while the DTM workflow is prepared.
 * Answers TM_ANSWER_REGISTER. */
int tm_engine_record_progress(tm_engine_t *e, const tm_engine_req_t *rq,
                              const Trellis__V1__RegisterBranchRequest *reg,
                              const Trellis__V1__RecordStepRequest *rec);
int tm_engine_prepare_message(tm_engine_t *e, const tm_engine_req_t *rq,
                              const Trellis__V1__PrepareMessageRequest *r);
void tm_engine_subscribe(tm_engine_t *e, tm_rpc_t *rpc,
                         const Trellis__V1__SubscribeRequest *r);
void tm_engine_unsubscribe(tm_engine_t *e, tm_rpc_t *rpc,
                           const Trellis__V1__UnsubscribeRequest *r);
void tm_engine_list_subscriptions(tm_engine_t *e, tm_rpc_t *rpc,
                                  const char *topic);
/* Remove every subscription of topic (DTM's DeleteTopic): answers
 * TM_ANSWER_UNSUBSCRIBE, or NOT_FOUND when the topic has no subscriber.
 * Each removal is its own store transaction, as Unsubscribe's. */
void tm_engine_delete_topic(tm_engine_t *e, tm_rpc_t *rpc, const char *topic);
int tm_engine_record_step(tm_engine_t *e, const tm_engine_req_t *rq,
                          const Trellis__V1__RecordStepRequest *r);
/* Operator requests. RetryNow: call every op that waits for a retry now,
 * backoff reset. ForceStop: mark an unfinished transaction FAILED
 * ("force-stopped by operator: <reason>"), answer once committed, call
 * nothing more and ignore late results. */
int tm_engine_retry_now(tm_engine_t *e, const tm_engine_req_t *rq,
                        const char *gid);
int tm_engine_force_stop(tm_engine_t *e, const tm_engine_req_t *rq,
                         const char *gid, const char *reason);

/* Durable state of gid: the copy in memory when no write of it is
 * pending, the store otherwise. Answers TM_ANSWER_QUERY. */
void tm_engine_query(tm_engine_t *e, tm_rpc_t *rpc, const char *gid);
/* One page of stored transactions. Answers TM_ANSWER_LIST. */
void tm_engine_list(tm_engine_t *e, tm_rpc_t *rpc,
                    const tm_store_filter_t *filter);
/* A fresh gid, unique to this process and time, into out (at least
 * TM_GID_MAX + 1 bytes). */
void tm_engine_new_gid(tm_engine_t *e, char *out, size_t outlen);

/* The "force-stopped by operator: " prefix of a ForceStop's reason. */
#define TM_FORCE_STOP_PREFIX "force-stopped by operator: "

/* ---- state and graceful stop -------------------------------------------- */

/* Unfinished transactions in memory. */
size_t tm_engine_live_count(tm_engine_t *e);

/* Requests waiting (Submit or Abort with wait_result) for a result, on
 * every transaction. A waiter leaves when it is answered, when its client
 * cancels the call or goes away (at once: the front's watch_cancel), or
 * once its deadline passed. Any thread. */
unsigned tm_engine_waiters(tm_engine_t *e);

/* Graceful stop. After tm_engine_drain, a Begin or Submit that would create
 * a transaction is refused UNAVAILABLE ("shutting down"); requests for
 * transactions already known are served as before, and live ones keep
 * being driven. Any thread; there is no way back. */
void tm_engine_drain(tm_engine_t *e);
int tm_engine_draining(tm_engine_t *e);

/* 1 while new work is taken: not draining, and the store commits (while
 * it fails, Begin, Submit, RegisterBranch, Abort and ForceStop are refused
 * UNAVAILABLE at once, naming the store and its error). */
int tm_engine_serving(tm_engine_t *e);

/* Block up to timeout_ms until no unfinished transaction is left in
 * memory; returns how many are still there (0: idle). Any thread but a
 * completion-queue or store thread (they finish the transactions). */
size_t tm_engine_wait_idle(tm_engine_t *e, uint32_t timeout_ms);

#endif /* TM_ENGINE_H */
