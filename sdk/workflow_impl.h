/*
 * workflow_impl.h — what the workflow files of libtrellis share; not
 * installed, not API.
 *
 *   workflow.c        the registry, its address, the in-flight set,
 *                     trellis_workflow_execute;
 *   workflow_run.c    the TM calls a workflow makes, one run of a
 *                     function and the decision after it;
 *   workflow_steps.c  the steps inside a run: replay of recorded ones,
 *                     the mismatch check, new ones registered, called and
 *                     recorded; the hooks' registration;
 *   workflow_resume.c the /trellis.v1.Workflow/Resume handler: resume,
 *                     and the phase-2 re-runs for a local step's undo and
 *                     for the hooks.
 *
 * A run (trellis_wf_t) belongs to one thread. It borrows the progress it
 * replays (the Transaction of trellisd's StartWorkflow or Query reply,
 * kept by the caller until the run ends) and owns everything else.
 */
#ifndef TRELLIS_SDK_WORKFLOW_IMPL_H
#define TRELLIS_SDK_WORKFLOW_IMPL_H

#include <pthread.h>

#include "internal.h"
#include "trellis/trellis_workflow.h"
#include "trellis/v1/tm.pb-c.h"

#define WF_HEAD_ID "00"
#define WF_HOOKS_ID "hooks"
#define WF_RESUME_METHOD "/trellis.v1.Workflow/Resume"
/* Longest message trellisd records with a step (its TM_REASON_MAX). */
#define WF_MSG_MAX 1024

typedef struct {
    char *name;
    trellis_wf_fn fn;
    void *user;
} wf_entry_t;

struct trellis_workflows {
    trellis_client_t *client; /* borrowed */
    pthread_mutex_t lock;     /* guards everything below */
    wf_entry_t *entries;
    size_t n_entries, cap_entries;
    char *resume_target; /* "host:port/trellis.v1.Workflow/Resume" or NULL */
    char **running;      /* gids whose function runs forward here now */
    size_t n_running, cap_running;
};

/* How a run treats its steps. */
typedef enum {
    WF_RUN_FORWARD,    /* execute or resume: new steps run and are recorded */
    WF_RUN_COMPENSATE, /* phase 2: replay only; undo the local step undo_id */
    WF_RUN_HOOKS,      /* phase 2: replay only; collect the hooks */
} wf_run_mode_t;

typedef enum { WF_ON_COMMIT, WF_ON_ROLLBACK, WF_ON_FINISH } wf_hook_when_t;

typedef struct {
    wf_hook_when_t when;
    trellis_wf_hook_fn fn;
    void *arg;
} wf_hook_t;

struct trellis_wf {
    trellis_workflows_t *w;
    wf_entry_t entry; /* name borrowed from the caller's copy */
    const char *gid;  /* borrowed from the caller */
    wf_run_mode_t mode;
    const Trellis__V1__Transaction *progress; /* borrowed */
    char *resume_target;                      /* owned */
    uint8_t *resume_req; /* packed ResumeRequest: local and hooks payload */
    size_t resume_req_len;
    tr_ap_t ap;       /* gid, branch headers, deadline of forward calls */
    unsigned n_steps; /* steps asked for so far */
    int unrecorded;   /* a step ended without a recorded result */
    int mismatch;     /* replay mismatch; why[] says which */
    char why[512];
    /* WF_RUN_COMPENSATE */
    const char *undo_id; /* borrowed */
    int undo_reached;
    trellis_rc_t undo_rc;
    char undo_err[256];
    wf_hook_t *hooks;
    size_t n_hooks, cap_hooks;
};

/* ---- workflow.c ------------------------------------------------------ */

/* A copy of the entry registered as name into *out (name borrowed from
 * the registry, which never removes one); 0, or -1 when unknown. */
int tr_wf_lookup(trellis_workflows_t *w, const char *name, wf_entry_t *out);

/* A copy of the resume target (the caller frees it), or NULL: none set,
 * or out of memory. */
char *tr_wf_resume_target(trellis_workflows_t *w);

/* Mark gid as running forward in this process; -1 when it already is. */
int tr_wf_running_add(trellis_workflows_t *w, const char *gid);
void tr_wf_running_remove(trellis_workflows_t *w, const char *gid);

/* ---- workflow_run.c -------------------------------------------------- */

/* Set up *wf (zeroed by the caller) for a run of e on gid over progress
 * (borrowed, as gid is): packs the ResumeRequest, takes the resume target
 * from the head, copies the branch headers. RESOURCE_EXHAUSTED, or
 * INTERNAL for a progress that is no workflow, with err; *wf then holds
 * nothing. */
trellis_rc_t tr_wf_init(trellis_wf_t *wf, trellis_workflows_t *w,
                        const wf_entry_t *e, const char *gid, const void *input,
                        size_t len, const Trellis__V1__Transaction *progress,
                        wf_run_mode_t mode, char *err, size_t errlen);
void tr_wf_clear(trellis_wf_t *wf);

/* Run the function once: its result (TRELLIS_WF_RETRY for an unknown
 * value) and *e. */
trellis_wf_result_t tr_wf_call(trellis_wf_t *wf, const void *input, size_t len,
                               trellis_wf_err_t *e);

/* Execute or resume gid forward (the in-flight mark is the caller's): see
 * trellis_workflow_execute. *stopped is set when FAILED_PRECONDITION
 * means the workflow cannot go on (mismatch, stopped), not "busy". */
trellis_rc_t tr_wf_forward(trellis_workflows_t *w, const wf_entry_t *e,
                           const char *gid, const void *input, size_t len,
                           const trellis_options_t *o, int wait,
                           trellis_trans_status_t *status, char *reason,
                           size_t reasonlen, int *stopped, char *err,
                           size_t errlen);

/* trellis.v1.TM/Query by name: *out is the caller's
 * (protobuf_c_message_free_unpacked). */
trellis_rc_t tr_wf_query(trellis_workflows_t *w, const char *gid,
                         Trellis__V1__QueryReply **out, char *err,
                         size_t errlen);

/* RecordStep(gid, branch_id, code, result, message). */
trellis_rc_t tr_wf_record(trellis_wf_t *wf, const char *branch_id,
                          trellis_rc_t code, const uint8_t *result,
                          size_t result_len, const char *message, char *err,
                          size_t errlen);

/* ---- workflow_steps.c ------------------------------------------------- */

/* The decision needs every recorded step reached: a commit that leaves
 * one out is a mismatch (set on wf, with why). Returns 0 or -1. */
int tr_wf_check_all_reached(trellis_wf_t *wf);

/* Register the hooks branch when the run added any hook. */
trellis_rc_t tr_wf_register_hooks(trellis_wf_t *wf, char *err, size_t errlen);

/* The branch of progress named id, or NULL. */
const Trellis__V1__Branch *tr_wf_branch(const Trellis__V1__Transaction *t,
                                        const char *id);

#endif /* TRELLIS_SDK_WORKFLOW_IMPL_H */
