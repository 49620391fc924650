/*
 * sim_impl: the simulator's shared state (see sim.h), seen by its three
 * files only.
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
    int status; /* the answer, once the participant decided */
} sim_call_t;

/* ---- requests the initiators send, and their answers ---- */

typedef struct sim_rpc sim_rpc_t;
struct sim_rpc {
    int node;            /* the node it was sent to */
    uint64_t gen;        /* and its incarnation */
    int64_t deadline_ms; /* virtual */
    int answered;        /* answered or dropped */
    int code;
    tm_answer_kind_t kind;
    tm_tx_status_t status;
    int client; /* index of the initiator */
    int method; /* sim_method_t */
};

/* Numbered as engine_call_method_t (tests/common/engine_call.h). */
typedef enum {
    SIM_M_BEGIN,
    SIM_M_REGISTER,
    SIM_M_SUBMIT,
    SIM_M_ABORT,
    SIM_M_QUERY,      /* the operator's */
    SIM_M_FORCE_STOP, /* the operator's */
} sim_method_t;

/* ---- participants' barrier (one state per gid and branch) ---- */

typedef struct {
    char gid[TM_GID_MAX + 1];
    char branch[40];
    int fwd_row, fwd_effect;  /* forward op's barrier row; its effect */
    int rb_row, rb_undo;      /* rollback op's row; it undid a forward op */
    int cm_row, cm_effect;    /* commit-side op's row; its effect */
    int business_failure;     /* the forward op fails for business reasons */
    unsigned unknown_forward; /* forward calls the TM got no answer to */
    unsigned forward_starts;  /* forward calls the TM started or tried */
    unsigned crash_slack; /* crashes while it could have an attempt unstored */
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
void sim_operator(sim_t *s, sim_client_t *c, int force_stop);
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
/* The TM starts (or tries to start) a call of op. */
void sim_note_start(sim_t *s, const char *gid, const char *branch,
                    const char *op);
/* A call of op that the TM will count as unanswered. */
void sim_note_unknown(sim_t *s, const char *gid, const char *branch,
                      const char *op);

#endif /* SIM_IMPL_H */
