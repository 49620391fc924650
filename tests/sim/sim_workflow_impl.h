/*
 * sim_workflow_impl: the workflow service's state (see sim_workflow.c),
 * shared by the service's runs (sim_workflow.c) and the checks on what
 * they came to (sim_workflow_check.c), and by no other file.
 */
#ifndef SIM_WORKFLOW_IMPL_H
#define SIM_WORKFLOW_IMPL_H

#include <stdio.h>

#include "sim_impl.h"

/* The branch id of a workflow's hooks. */
#define WF_HOOKS_ID "hooks"
/* How long a run waits for trellisd's answer before it sends again. */
#define RUN_PATIENCE_MS 300

typedef enum { STEP_TCC, STEP_SAGA, STEP_LOCAL } step_kind_t;

typedef struct {
    step_kind_t kind;
    int fails; /* its forward op answers ABORTED */
    int stops; /* and then the function rolls back there */
} wf_step_t;

typedef enum {
    RUN_START,    /* StartWorkflow */
    RUN_REGISTER, /* RegisterBranch of the step */
    RUN_FORWARD,  /* the step's forward op */
    RUN_RECORD,   /* RecordStep of the step */
    RUN_HOOKS,    /* RegisterBranch of the hooks */
    RUN_DECIDE,   /* Submit or Abort */
} run_phase_t;

/* A run of the function: one at a time per workflow. */
typedef struct {
    uint64_t serial; /* 0: none; events of other serials are stale */
    unsigned number; /* the workflow's runs so far, this one included */
    run_phase_t phase;
    int step;     /* the step the function is at */
    int result;   /* its forward op answered: ST_OK or ST_ABORTED */
    int rollback; /* the function returned rollback */
    int node;     /* the trellisd node it sends to */
    int sent;     /* requests and calls so far */
    int tries;    /* of the current request or call */
    int method;   /* the current request */
    uint8_t *bytes;
    size_t len;
    sim_rpc_t *rpc;  /* NULL: send it (again) on the next step */
    uint64_t call;   /* the forward call in flight (0: none) */
    int call_status; /* -1: no answer yet */
    int64_t call_deadline;
    sim_progress_t seen; /* what StartWorkflow handed back */
    sim_call_t *resume;  /* trellisd's Resume this run answers */
    int64_t resume_deadline;
} wf_run_t;

typedef struct {
    int id;
    char gid[16];
    int n_steps;
    wf_step_t steps[SIM_WF_MAX_STEPS];
    int commit;          /* the function ends in commit (else rollback) */
    int hooks;           /* it adds hooks */
    uint32_t timeout_ms; /* its timeout_to_fail_ms (0: trellisd's) */
    int wait;            /* Submit and Abort with wait_result */
    int unknown_rolls;   /* a step of unknown outcome: rollback, not retry */
    int rolled_unknown;  /* it did: the outcome is the Abort's, if stored */
    int64_t patience_ms;
    int launched;      /* the service was asked to run it */
    unsigned runs;     /* runs started */
    sim_acked_t acked; /* what the service saw answered OK */
    int decided;       /* and of the decision: 1 Submit, 2 Abort */
    int force_stopped, queried_final;      /* the operator's */
    unsigned hook_commits, hook_rollbacks; /* the hooks' runs */
    uint64_t first_hook;                   /* stamp of the first */
    int watched;      /* the operator watches it: it was stopped */
    sim_rpc_t *retry; /* the operator's RetryNow in flight */
    uint8_t *retry_bytes;
    size_t retry_len;
    wf_run_t run;
} wf_t;

struct sim_svc {
    wf_t *wfs;
    size_t n;
    unsigned deathly;   /* percent: it dies before a request */
    int64_t down_until; /* down (dead, not yet restarted) until then */
    uint64_t serials;   /* runs started */
    uint64_t calls;     /* forward calls made */
};

static inline const char *kind_name(step_kind_t k)
{
    return k == STEP_TCC ? "tcc" : k == STEP_SAGA ? "saga" : "local";
}

/* Step k's branch id: "01" for the first. */
static inline void step_id(int k, char *out, size_t len)
{
    snprintf(out, len, "%02d", k + 1);
}

/* The index of w's client (workflows after the initiators). */
static inline int client_of(const sim_t *s, const wf_t *w)
{
    return (int)s->n_clients + w->id;
}

/* sim_workflow_check.c: the operator looks at a stopped workflow now and
 * then and sends RetryNow (look: one look, on SIM_EV_STOPPED; watch: start
 * looking, once). */
void sim_wf_operator_look(sim_t *s, wf_t *w);
void sim_wf_operator_watch(sim_t *s, wf_t *w);

#endif
