/*
 * sim: a deterministic simulator for trellisd's engine core, in the manner
 * of FoundationDB's and TigerBeetle's: one seeded, single-threaded program
 * runs the real engine (trellis_tm_core) against fake storage, fake branch
 * calls, fake timers and a virtual clock, drives it with initiators and
 * participants whose every choice comes from the seed, crashes and
 * restarts it, and checks afterwards what a user relies on:
 *
 *  - an acknowledged transaction (Begin or Submit answered OK) is never
 *    lost, and every transaction ends;
 *  - an effect is applied at most once behind the barrier, a confirm never
 *    follows a cancel of the same branch, and the final status agrees with
 *    the effects (succeeded: every forward op and confirm applied, nothing
 *    undone; failed: nothing confirmed, every forward op that ran undone);
 *  - a registered branch whose try ran is never forgotten;
 *  - a workflow ends, decided as its function decided; its recorded
 *    steps are what the function saw, committed or undone once each,
 *    and its hooks run after every other phase-2 op;
 *  - a 2-phase message is delivered, once in effect to each target and
 *    each subscriber it was stored with, exactly when its initiator's
 *    local transaction committed, and dropped otherwise;
 *  - the same seed gives the same trace.
 *
 * The files: sim_fakes.c (store, calls, timers, clock, the front that
 * takes the engine's answers, the event queue), sim_world.c (participants,
 * initiators, crashes, the checks), sim_workflow.c (the workflow service
 * and its runs), sim_workflow_check.c (its operator and checks),
 * sim_msg.c (the message initiator service, its database, the topics),
 * sim_msg_check.c (its notes and checks), sim_main.c (seeds, replay,
 * output).
 */
#ifndef SIM_H
#define SIM_H

#include <stddef.h>
#include <stdint.h>

#include "tm_engine.h"

/* ---- the world's knobs and state ----------------------------------------- */

typedef struct sim sim_t;

/* What a seed run found: 0 and an empty why, or 1 and why. */
typedef struct {
    int failed;
    char why[512];
    uint64_t trace; /* hash of every event in order */
    uint64_t events;
    unsigned transactions, crashes, acked;
} sim_result_t;

/* Run one seed; verbose: print the trace as it goes. */
void sim_run(uint64_t seed, int verbose, sim_result_t *out);

/* ---- deterministic randomness -------------------------------------------- */

uint64_t sim_rand(sim_t *s);
/* 1 with probability pct percent. */
int sim_chance(sim_t *s, unsigned pct);
/* Uniform in [lo, hi]. */
int64_t sim_between(sim_t *s, int64_t lo, int64_t hi);

/* ---- events (sim_fakes.c) ------------------------------------------------ */

typedef enum {
    SIM_EV_COMMIT,   /* the store commits its queued group */
    SIM_EV_ARRIVE,   /* a branch call reaches its participant */
    SIM_EV_REPLY,    /* a participant's answer reaches the engine */
    SIM_EV_CLIENT,   /* an initiator takes its next step */
    SIM_EV_CRASH,    /* the engine process dies */
    SIM_EV_RESTART,  /* a new engine process starts on the store */
    SIM_EV_FAULT,    /* the store's next commits fail */
    SIM_EV_QUIET,    /* faults end: everything may finish now */
    SIM_EV_STRAY,    /* a copy of an earlier request arrives late */
    SIM_EV_OPERATOR, /* trellisctl: a Query or a ForceStop */
    SIM_EV_TICK,     /* a node's lease thread: renew, lapse, claim */
    SIM_EV_PAUSE,    /* a node is stopped (SIGSTOP) for n ms */
    SIM_EV_DELIVER,  /* a request reaches a node that was stopped */
    SIM_EV_SERVICE,  /* the workflow service: a run's next step */
    SIM_EV_SVC_CALL, /* its forward call reaches the participant */
    SIM_EV_SVC_ANS,  /* and the answer reaches the service */
    SIM_EV_STOPPED,  /* the operator looks at a stopped workflow */
    SIM_EV_MSG,      /* the message initiator: a run's next step */
    SIM_EV_MSG_WAIT, /* a back-check waiting on a local transaction's row */
    SIM_EV_TOPIC,    /* a target subscribes to or leaves a topic */
} sim_ev_kind_t;

/* Schedule an event at now + in_ms; p and n are the kind's. */
void sim_schedule(sim_t *s, int64_t in_ms, sim_ev_kind_t kind, void *p,
                  uint64_t n);

/* Fold a fact into the trace (and print it when verbose). */
void sim_trace(sim_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record an invariant violation (the first one wins). */
void sim_fail(sim_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int64_t sim_now(const sim_t *s);

#endif /* SIM_H */
