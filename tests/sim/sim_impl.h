/*
 * sim_impl: the simulator's shared state (see sim.h), seen by its files
 * only.
 */
#ifndef SIM_IMPL_H
#define SIM_IMPL_H

#include "fake_kit.h"
#include "sim.h"
#include "tm_store_impl.h"

/* ---- the fake store: rows survive crashes, queues do not ---- */

typedef struct {
    char gid[TM_GID_MAX + 1];
    tm_write_t **writes; /* every write applied to the row, in order */
    size_t n, cap;
    int status;
    uint64_t submit_hash;
    int owner;           /* the node that drives it */
    uint64_t generation; /* moved by every claim: the fencing token */
} sim_row_t;

typedef struct {
    sim_row_t *rows;
    size_t n_rows, cap_rows;
    int healthy;
    unsigned fail_commits; /* the next n commits fail (nothing stored) */
    fkit_topics_t topics;  /* subscriptions, shared by the nodes */
} sim_store_t;

/* ---- nodes: trellisd processes sharing the store ---- */

#define SIM_MAX_NODES 2

typedef struct sim_node {
    struct sim *sim;
    int id;
    tm_engine_t *engine; /* NULL while down */
    uint64_t gen;        /* its incarnation, moved by every crash */
    fkit_queue_t queue;  /* its queued writes, not committed */
    int commit_scheduled;
    int64_t lease_until;  /* its leases hold until then */
    int64_t paused_until; /* stopped (SIGSTOP) until then */
    int lapse_pending;    /* its leases ran out: re-confirm before acting */
    int ticking;          /* its lease thread is scheduled */
    tm_store_owner_hooks_t hooks;
    int has_hooks;
} sim_node_t;

/* gRPC status codes the participants and the workflow service answer. */
enum {
    ST_OK = 0,
    ST_DEADLINE = 4,
    ST_FAILED_PRECONDITION = 9,
    ST_ABORTED = 10,
    ST_UNAVAILABLE = 14
};

/* The participants' targets, and the workflow service's Resume. */
#define SIM_TARGET_ACTION "127.0.0.1:1/sim.P/Action"
#define SIM_TARGET_COMPENSATE "127.0.0.1:1/sim.P/Compensate"
#define SIM_TARGET_CONFIRM "127.0.0.1:1/sim.P/Confirm"
#define SIM_TARGET_CANCEL "127.0.0.1:1/sim.P/Cancel"
#define SIM_TARGET_TRY "127.0.0.1:1/sim.P/Try"
#define SIM_TARGET_RESUME "127.0.0.1:2/trellis.v1.Workflow/Resume"
/* The message workload's: a delivery to a named target, and the
 * initiator service's back-check (topic subscribers are sim_msg.c's). */
#define SIM_TARGET_DELIVER "127.0.0.1:1/sim.P/Deliver"
#define SIM_TARGET_CHECK "127.0.0.1:3/sim.Order/QueryPrepared"

/* ---- branch calls ---- */

typedef struct {
    int node;     /* the node that started it */
    uint64_t gen; /* and its incarnation */
    char gid[TM_GID_MAX + 1];
    char branch[40];
    char op[16];
    tm_call_done_fn done;
    void *arg;
    uint32_t timeout_ms;
    int status;  /* the answer, once the participant decided */
    int service; /* a call of the workflow service's Resume method */
    /* The compensation log it was sent (metadata
     * trellis-action-result-bin): log_len bytes, -1 none (longer than
     * log is itself a failure). */
    char log[128];
    int log_len;
} sim_call_t;

/* ---- requests the initiators send, and their answers ---- */

/* A workflow's steps (branches 01, 02, ...) at the most. */
#define SIM_WF_MAX_STEPS 5

/* What became of a workflow's step, as a StartWorkflow answer shows it
 * (or as the service saw it answered). */
enum { SIM_SEEN_NONE, SIM_SEEN_REGISTERED, SIM_SEEN_OK, SIM_SEEN_ABORTED };

/* What the workflow service had seen acknowledged of a workflow. */
typedef struct {
    int started;                           /* StartWorkflow */
    unsigned char steps[SIM_WF_MAX_STEPS]; /* SIM_SEEN_* */
} sim_acked_t;

/* The progress a StartWorkflow answer handed back. */
typedef struct {
    int created; /* 0: a re-run */
    int stopped; /* its resume op failed: stopped for the operator */
    int hooks;   /* the hooks branch is registered */
    unsigned char steps[SIM_WF_MAX_STEPS]; /* SIM_SEEN_* */
} sim_progress_t;

typedef struct sim_rpc sim_rpc_t;
struct sim_rpc {
    int node;            /* the node it was sent to */
    uint64_t gen;        /* and its incarnation */
    int64_t deadline_ms; /* virtual */
    int answered;        /* answered or dropped */
    int code;
    tm_answer_kind_t kind;
    tm_tx_status_t status;
    int client; /* index of the initiator (workflows after the clients) */
    int method; /* sim_method_t */
    sim_progress_t progress; /* START_WORKFLOW answered OK */
    sim_acked_t acked;       /* START_WORKFLOW: as it reached trellisd */
};

/* Numbered as engine_call_method_t (tests/common/engine_call.h). */
typedef enum {
    SIM_M_BEGIN,
    SIM_M_REGISTER,
    SIM_M_SUBMIT,
    SIM_M_ABORT,
    SIM_M_QUERY,      /* the operator's */
    SIM_M_FORCE_STOP, /* the operator's */
    SIM_M_RETRY_NOW,  /* the operator's */
    SIM_M_START_WORKFLOW,
    SIM_M_RECORD_STEP,
    SIM_M_PREPARE_MESSAGE,
} sim_method_t;

/* The method's name, for the trace. */
const char *sim_method_name(int method);
/* The gid of a client or workflow (an index: workflows after the
 * clients). */
const char *sim_gid_of(const sim_t *s, int idx);

/* ---- participants' barrier (one state per gid and branch) ---- */

typedef struct {
    char gid[TM_GID_MAX + 1];
    char branch[40];
    int fwd_row, fwd_effect;  /* forward op's barrier row; its effect */
    int rb_row, rb_undo;      /* rollback op's row; it undid a forward op */
    int cm_row, cm_effect;    /* commit-side op's row; its effect */
    int business_failure;     /* the forward op fails for business reasons */
    unsigned bug_aborts;      /* a buggy participant: its next n forward calls
                                 answer ABORTED without effect */
    unsigned unknown_forward; /* forward calls the TM got no answer to */
    unsigned forward_starts;  /* forward calls the TM started or tried */
    unsigned crash_slack; /* crashes while it could have an attempt unstored */
    uint64_t p2_stamp;    /* when its first phase-2 row went in (sim_t) */
} sim_branch_t;

/* ---- initiators ---- */

#define SIM_MAX_BRANCHES 4

typedef struct {
    int id;
    char gid[TM_GID_MAX + 1];
    int tcc; /* 0: a saga of TM-driven steps; 1: TCC, initiator-run */
    int n_branches;
    int concurrent;    /* saga: steps all at once */
    int wait;          /* Submit with wait_result */
    int vanish_at;     /* TCC: the initiator dies before this step (-1 never) */
    int step;          /* next step of its script */
    int registered;    /* TCC: branches registered so far */
    int aborting;      /* TCC: a try failed, it sends Abort */
    int node;          /* the node it sends to */
    int done;          /* got its final answer, or vanished */
    int acked;         /* Begin or Submit answered OK */
    int committed;     /* TCC: its Submit (the commit decision) answered OK */
    int force_stopped; /* an operator's ForceStop was answered OK */
    int queried_final; /* a Query answered a final status: this one */
    uint32_t retry_limit; /* saga: the option it sent (0: none) */
    int64_t patience_ms;  /* how long it waits for an answer */
    sim_rpc_t *rpc;       /* the request in flight */
    uint8_t *bytes;       /* and its bytes, to send again */
    size_t len;
    int method;
} sim_client_t;

/* ---- the workflow service (sim_workflow.c) ---- */

typedef struct sim_svc sim_svc_t;

/* ---- the message workload (sim_msg.c) ---- */

typedef struct sim_msgs sim_msgs_t;

/* ---- the world ---- */

typedef struct {
    int64_t due;
    uint64_t seq;
    sim_ev_kind_t kind;
    void *p;
    uint64_t n;
} sim_event_t;

struct sim {
    uint64_t seed, rng;
    int verbose;
    int64_t now;
    uint64_t seq;
    sim_event_t *ev;
    size_t n_ev, cap_ev;
    fkit_timers_t timers; /* owners: the sim node whose engine armed it */
    sim_store_t store;
    sim_node_t nodes[SIM_MAX_NODES];
    int n_nodes;
    tm_engine_config_t cfg;
    int quiet;       /* no more faults: let everything finish */
    unsigned flaky;  /* percent of branch calls that go wrong */
    unsigned crashy; /* percent of commits the process dies before */
    sim_branch_t *branches;
    size_t n_branches, cap_branches;
    sim_client_t *clients;
    size_t n_clients;
    sim_svc_t *svc;   /* the workflow service and its workflows */
    sim_msgs_t *msgs; /* the message initiator service and its messages */
    uint64_t stamps;  /* orders effects: the last stamp given */
    void **graveyard; /* what crashed incarnations left (kept reachable) */
    size_t n_grave, cap_grave;
    sim_result_t *res;
};

/* The lease every node holds and renews (store clock), and how often its
 * lease thread runs. */
#define SIM_LEASE_MS 300
#define SIM_TICK_MS 50

/* sim_fakes.c */
void sim_env(sim_node_t *n, tm_engine_env_t *env, tm_engine_front_t *front);
void sim_store_commit(sim_t *s, sim_node_t *n);
void sim_store_crash(sim_t *s, sim_node_t *n);
void sim_store_free(sim_t *s);
void sim_lease_tick(sim_t *s, sim_node_t *n);
/* Keep the lease thread of n running (it stops once nothing is left). */
void sim_lease_wake(sim_t *s, sim_node_t *n);
/* 1 while the lease thread of n has work: faults on, or unfinished rows. */
int sim_lease_busy(const sim_t *s, const sim_node_t *n);
tm_trans_t *sim_store_read(sim_t *s, const char *gid); /* NULL: none */
int sim_timers_next(const sim_t *s, int64_t *due, uint64_t *seq);
int sim_timers_first_owner(const sim_t *s);
void sim_timers_defer_first(sim_t *s, int64_t until);
void sim_timers_fire_first(sim_t *s);
void sim_timers_crash(sim_t *s, int node);
void sim_bury(sim_t *s, void *p);

/* A request on its way: sent again by the network later (a stray, whose
 * answer nobody reads), or held until a stopped node reads again. Its own
 * copy of the bytes. */
typedef struct {
    sim_rpc_t *rpc; /* NULL: a stray */
    int client;
    int method;
    int node;
    size_t len;
    uint8_t bytes[];
} sim_stray_t;

/* sim_world.c */
void sim_stray_arrive(sim_t *s, sim_stray_t *d);
/* Send bytes as method to node for client (an index: workflows after the
 * clients); the network may repeat it later. The record stays the run's:
 * its answer is read from it. */
sim_rpc_t *sim_send(sim_t *s, int client, int method, int node,
                    int64_t patience_ms, const uint8_t *bytes, size_t len);
/* The operator's Query or ForceStop of target (an index, as for
 * sim_send). */
void sim_operator(sim_t *s, int target, int force_stop);
void sim_operator_answer(sim_t *s, const sim_rpc_t *r);
void sim_call_arrive(sim_t *s, sim_call_t *c);
void sim_call_reply(sim_t *s, sim_call_t *c);
void sim_client_step(sim_t *s, sim_client_t *c);
void sim_crash(sim_t *s, sim_node_t *n);
void sim_restart(sim_t *s, sim_node_t *n);
int sim_node_paused(const sim_t *s, int node);
void sim_world_setup(sim_t *s);
void sim_world_check(sim_t *s);
sim_branch_t *sim_branch_find(sim_t *s, const char *gid, const char *branch);
sim_branch_t *sim_branch_add(sim_t *s, const char *gid, const char *branch);
/* Op ("action", "try", "compensate", "cancel", "confirm") behind b's
 * barrier; returns the status its participant answers. */
int sim_barrier_apply(sim_t *s, sim_branch_t *b, const char *op);

/* How a call goes, as the seed says (only while faults are on). */
typedef enum {
    SIM_FATE_UNAVAILABLE, /* nothing done */
    SIM_FATE_ONGOING,     /* nothing done: FAILED_PRECONDITION */
    SIM_FATE_LOST,        /* done, but the answer is lost */
    SIM_FATE_ANSWERED,    /* done and answered */
} sim_fate_t;
sim_fate_t sim_call_fate(sim_t *s);
/* The status a call of op on b answers with, given its fate (the barrier
 * applies op unless nothing is done). */
int sim_call_op(sim_t *s, sim_fate_t fate, sim_branch_t *b, const char *op);
/* m packed into *bytes (freed first, malloc'd) and *len. */
void sim_pack(const ProtobufCMessage *m, uint8_t **bytes, size_t *len);
/* The decision of a begun transaction packed as sim_pack does: Submit
 * (commit, with wait_result wait) or Abort (with reason and wait). Returns
 * the method. */
int sim_pack_decision(const char *gid, int commit, int wait, const char *reason,
                      uint8_t **bytes, size_t *len);
/* The TM starts (or tries to start) a call of op. */
void sim_note_start(sim_t *s, const char *gid, const char *branch,
                    const char *op);
/* A call of op that the TM will count as unanswered. */
void sim_note_unknown(sim_t *s, const char *gid, const char *branch,
                      const char *op);

/* sim_fakes.c: the stored status of gid (0: no row). */
int sim_store_status(sim_t *s, const char *gid);

/* sim_workflow.c (the service and its runs), sim_workflow_check.c (the
 * notes and the checks): the workflow service. Setup makes the seed's
 * workflows and schedules their first runs; event takes the service's
 * events (SIM_EV_SERVICE, SIM_EV_SVC_CALL, SIM_EV_SVC_ANS,
 * SIM_EV_STOPPED); serve answers a call trellisd made of the service
 * (resume, a local step's compensate, the hooks); note_sent keeps what the
 * service had seen acknowledged when a StartWorkflow reaches trellisd,
 * note_progress what its answer said, and checks that it shows all of
 * that; check runs the workflow checks once everything settled. */
void sim_wf_setup(sim_t *s);
void sim_wf_event(sim_t *s, sim_ev_kind_t kind, void *p, uint64_t n);
void sim_wf_serve(sim_t *s, sim_call_t *c);
void sim_wf_note_sent(sim_t *s, sim_rpc_t *r);
void sim_wf_note_progress(sim_t *s, sim_rpc_t *r, const tm_trans_t *tx,
                          int created);
void sim_wf_operator_answer(sim_t *s, int wf, const sim_rpc_t *r);
size_t sim_wf_count(const sim_t *s);
const char *sim_wf_gid(const sim_t *s, int wf);
void sim_wf_check(sim_t *s);
void sim_wf_free(sim_t *s);

/* sim_msg.c (the initiator service, its database and the topics),
 * sim_msg_check.c (the notes and the checks): the message workload.
 * Setup makes the seed's messages and subscriptions and schedules their
 * sends; event takes its events (SIM_EV_MSG, SIM_EV_MSG_WAIT,
 * SIM_EV_TOPIC); serve answers trellisd's back-check (dtm-op
 * query_prepared); note_delivery sees a delivery reach its participant
 * (before the barrier: it checks the decision is stored); check runs the
 * message checks once everything settled. Message idx is client
 * n_clients + sim_wf_count(s) + idx: after the workflows. */
void sim_msg_setup(sim_t *s);
void sim_msg_event(sim_t *s, sim_ev_kind_t kind, void *p, uint64_t n);
void sim_msg_serve(sim_t *s, sim_call_t *c);
/* 1 when c is a delivery of a message (then noted). */
int sim_msg_note_delivery(sim_t *s, sim_call_t *c);
size_t sim_msg_count(const sim_t *s);
const char *sim_msg_gid(const sim_t *s, int idx);
void sim_msg_check(sim_t *s);
void sim_msg_free(sim_t *s);

#endif /* SIM_IMPL_H */
