/*
 * sim_msg_impl: the message workload's state (see sim_msg.c), shared by
 * the initiator service and its database (sim_msg.c) and the notes and
 * checks on what they came to (sim_msg_check.c), and by no other file.
 */
#ifndef SIM_MSG_IMPL_H
#define SIM_MSG_IMPL_H

#include <stdio.h>

#include "sim_impl.h"

/* Messages per seed, steps per message, topics and the targets that may
 * subscribe to each, subscription changes per seed, at the most. */
#define MSG_MAX 3
#define MSG_MAX_STEPS 3
#define MSG_TOPICS 2
#define MSG_SUBSCRIBERS 4
#define MSG_HISTORY_MAX 16

/* The message's barrier row in the initiator's database: (gid, 00, msg,
 * 01), with the reason of whoever inserted it first. */
typedef enum { ROW_NONE, ROW_MSG, ROW_ROLLBACK } msg_row_t;

typedef enum {
    MSG_PREPARE, /* PrepareMessage, until answered OK */
    MSG_LOCAL,   /* begin the local transaction: insert the barrier row */
    MSG_HOLD,    /* it holds the row; commit (or roll back) next */
    MSG_DECIDE,  /* Submit or Abort, until answered OK */
} msg_phase_t;

typedef struct {
    int id;
    char gid[16];
    int n_steps;
    int topic[MSG_MAX_STEPS]; /* per step: its topic, or -1: a target */
    int concurrent;
    int submit_now;      /* PrepareMessage with submit: no local transaction */
    int commit;          /* its local transaction commits (else rolls back) */
    int wait;            /* wait_result on the decision */
    unsigned buggy;      /* percent of its deliveries with a participant bug */
    uint32_t timeout_ms; /* timeout_to_fail_ms (0: trellisd's) */
    int64_t begin_ms;    /* from the prepare's answer to its BEGIN */
    int64_t hold_ms;     /* how long the local transaction holds the row */
    int64_t patience_ms;
    /* its run (one; a death of the service ends it for good) */
    uint64_t serial; /* 0: none; events of other serials are stale */
    msg_phase_t phase;
    int launched;
    int node;
    int sent; /* requests and local steps so far */
    int method;
    uint8_t *bytes;
    size_t len;
    sim_rpc_t *rpc; /* NULL: send it (again) on the next step */
    /* the initiator's database (it outlives the service's deaths) */
    msg_row_t row;
    int locked; /* a local transaction in progress holds the row */
    int effect; /* the business effect, committed with the msg row */
    /* what happened */
    int prepare_acked;           /* PrepareMessage answered OK */
    int submit_sent, abort_sent; /* the decision went out (maybe lost) */
    int submit_acked, abort_acked;
    unsigned checks_ok, checks_aborted; /* back-check answers given */
    unsigned deliveries; /* delivery calls that reached a participant */
} msg_t;

/* The subscribers of every topic (a bit per target) from at on. */
typedef struct {
    int64_t at;
    unsigned mask[MSG_TOPICS];
} msg_subs_t;

struct sim_msgs {
    msg_t *m;
    size_t n;
    unsigned deathly;   /* percent: the service dies before a step */
    int64_t down_until; /* down (dead, not yet restarted) until then */
    uint64_t life;      /* its incarnation: moved by every death */
    uint64_t serials;
    msg_subs_t hist[MSG_HISTORY_MAX]; /* every state of the topics */
    size_t n_hist;
};

static inline void msg_topic_name(int t, char *out, size_t len)
{
    snprintf(out, len, "sim.topic%d", t);
}

/* Subscriber k of topic t. */
static inline void msg_sub_target(int t, int k, char *out, size_t len)
{
    snprintf(out, len, "127.0.0.1:4/sim.T%dS%d/Notify", t, k);
}

static inline unsigned msg_popcount(unsigned x)
{
    unsigned n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

/* m's index as a client (messages after the workflows). */
static inline int msg_client(const sim_t *s, const msg_t *m)
{
    return (int)(s->n_clients + sim_wf_count(s)) + m->id;
}

/* sim_msg.c: the message of gid (NULL: none). */
msg_t *sim_msg_find(sim_t *s, const char *gid);

/* What the run makes of an answer. */
enum { MSG_ANS_OK, MSG_ANS_RETRY, MSG_ANS_WRONG };

/* sim_msg_check.c: what trellisd answered m's request r, noted and
 * checked when the run reads it: OK (go on), RETRY (a refusal trellisd
 * may give: send it again), WRONG (a violation, recorded). */
int sim_msg_note_answer(sim_t *s, msg_t *m, const sim_rpc_t *r);

#endif
