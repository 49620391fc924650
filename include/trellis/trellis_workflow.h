/*
 * libtrellis, workflows: a global transaction written as a C function in
 * the service that runs it (DTM's workflow mode). Each step the function
 * takes — a saga action, a TCC try, an XA prepare, or a local piece of
 * code with an undo — is registered with trellisd before it runs and its
 * result recorded after, before the function goes on. The function's
 * return decides: commit (trellisd confirms and commits what needs it),
 * rollback (trellisd undoes every step in reverse order), or retry.
 *
 *   trellis_workflows_new       a registry of functions by name
 *   trellis_workflows_register  name -> function
 *   trellis_workflows_serve     its Resume service on a participant server
 *   trellis_workflows_set_address  where trellisd reaches that service
 *   trellis_workflow_execute    run one workflow (gid) of a function
 *
 * Replay. A function runs again from the top whenever its workflow is not
 * decided: execute called again with the same gid, or trellisd resuming it
 * (it calls trellis.v1.Workflow/Resume on this service once the workflow's
 * timeout_to_fail_ms passed undecided, and again with backoff). In a
 * re-run, every step that has a recorded result returns that result, byte
 * for byte, without calling anything; the first step without one runs.
 * So the function must take the same steps in the same order on every
 * run, given the same input and the same step results, and must have no
 * effects outside its steps. A step asked for at a position where another
 * one was recorded (another mode, other targets or another payload) is a
 * replay mismatch; so is a commit that leaves a recorded step out. Then
 * that step and every later one return TRELLIS_FAILED_PRECONDITION, the
 * function's return is ignored, execute returns FAILED_PRECONDITION with
 * the message, and trellisd, told so by Resume, stops resuming the
 * workflow: its status shows "workflow stopped: <message>" until an
 * operator calls RetryNow (after fixing the service) or ForceStop.
 *
 * Steps get branch ids "01", "02", ... in the order the function asks for
 * them; the hooks (below) the branch id "hooks".
 *
 * Every step call returns the forward op's status: TRELLIS_OK (with its
 * reply), TRELLIS_ABORTED (a business failure, with the participant's
 * message in err; the step is rolled back whatever the decision), or any
 * other code: the outcome is unknown and nothing was recorded — the
 * function should then return TRELLIS_WF_RETRY (a commit after such a
 * step is taken as a retry anyway). A step whose registration or record
 * failed returns that call's error.
 *
 * Threads. The registry is thread safe: execute may run on many threads
 * at once, for different gids; a gid already running in this process
 * (execute, or a resume from trellisd) makes a second execute return
 * FAILED_PRECONDITION. A workflow function runs on the thread that called
 * execute, or on one of the participant's worker threads (trellisd's
 * Resume), and may run for the same gid in another process after a
 * crash. A trellis_wf_t is valid only during the function's call and only
 * on its thread.
 *
 * Ownership: the registry borrows its client, which must outlive it;
 * strings and buffers passed in are copied or borrowed for the call; every
 * reply returned through uint8_t ** is malloc'd and the caller's (free).
 */
#ifndef TRELLIS_WORKFLOW_H
#define TRELLIS_WORKFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "trellis/trellis.h"
#include "trellis/trellis_participant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trellis_workflows trellis_workflows_t;
typedef struct trellis_wf trellis_wf_t;

/* What a workflow function returns. */
typedef enum {
    TRELLIS_WF_COMMIT = 0,   /* every step done: commit */
    TRELLIS_WF_ROLLBACK = 1, /* undo every step; e->message is the reason */
    TRELLIS_WF_RETRY = 2,    /* not now (a step's outcome is unknown): run
                                again later; e->message says why */
} trellis_wf_result_t;

/* Why the function rolls back or retries; zeroed before each run. */
typedef struct {
    char message[512];
} trellis_wf_err_t;

/* A workflow function: input[len] is the workflow's input, the same on
 * every run (borrowed for the call). Returns a trellis_wf_result_t; any
 * other value counts as TRELLIS_WF_RETRY. */
typedef int (*trellis_wf_fn)(trellis_wf_t *wf, const uint8_t *input, size_t len,
                             trellis_wf_err_t *e);

/* ---- the registry and its service ------------------------------------ */

/* An empty registry over client c (borrowed; it must outlive the
 * registry). *out is the caller's: trellis_workflows_free. */
trellis_rc_t trellis_workflows_new(trellis_client_t *c,
                                   trellis_workflows_t **out, char *err,
                                   size_t errlen);

/* Register fn under name (copied; 1..128 of letters, digits, _ . : -),
 * with user passed to its steps and hooks (trellis_wf_user). The name is
 * what trellisd keeps and resumes by: every process serving this workflow
 * must register the same function under it. ALREADY_EXISTS for a name
 * registered before. Thread safe. */
trellis_rc_t trellis_workflows_register(trellis_workflows_t *w,
                                        const char *name, trellis_wf_fn fn,
                                        void *user, char *err, size_t errlen);

/* Add the /trellis.v1.Workflow/Resume handler to participant p, before
 * trellis_participant_start. p is borrowed: stop it (or free it) before
 * freeing the registry, since its handler uses the registry. A Resume
 * holds one of p's worker threads while the function runs again, its
 * steps' calls included: when those steps call handlers of p itself, give
 * p threads enough for both. */
trellis_rc_t trellis_workflows_serve(trellis_workflows_t *w,
                                     trellis_participant_t *p, char *err,
                                     size_t errlen);

/* Where trellisd reaches this service ("host:port", copied), once p
 * serves: the workflows this process starts from now on name it as their
 * resume target. It must stay the same across restarts of the service,
 * since trellisd keeps it with every workflow (a re-run with another
 * address is refused ALREADY_EXISTS). Thread safe. */
trellis_rc_t trellis_workflows_set_address(trellis_workflows_t *w,
                                           const char *host_port, char *err,
                                           size_t errlen);

/* Free the registry. No execute may be running, and its participant must
 * be stopped. */
void trellis_workflows_free(trellis_workflows_t *w);

/* Run workflow gid (copied; trellisd's gid rules) of the function
 * registered as name with input[len] (copied into trellisd; may be NULL
 * when len is 0) and options o (may be NULL; o->timeout_to_fail_ms is how
 * long trellisd waits for the decision before it resumes the workflow,
 * o->wait_result makes the decision wait for the final outcome; the
 * options of the first execute of a gid stay with it).
 *
 * Returns TRELLIS_OK once the workflow is decided: *status is SUCCEEDED
 * or FAILED with wait_result, else SUBMITTED or ABORTING (or SUCCEEDED
 * already, when the commit left trellisd nothing to call), and reason[]
 * says why it failed (the function's rollback message, or trellisd's
 * reason). That holds also for a gid decided before (nothing runs again).
 * TRELLIS_UNAVAILABLE: the function asked to retry (or took a step with an
 * unknown outcome and committed); err says "will be resumed by trellisd:
 * <message>", and trellisd will. TRELLIS_FAILED_PRECONDITION: a replay
 * mismatch or a workflow stopped for the operator (err says which), or
 * the gid is running in this process now. Any other code is a call that
 * failed (err): execute may be called again. *status (may be NULL) is
 * PREPARED unless decided. Blocks for the function's run, and with
 * wait_result for the outcome. */
trellis_rc_t trellis_workflow_execute(trellis_workflows_t *w, const char *name,
                                      const char *gid, const void *input,
                                      size_t len, const trellis_options_t *o,
                                      trellis_trans_status_t *status,
                                      char *reason, size_t reasonlen, char *err,
                                      size_t errlen);

/* ---- steps, inside the function -------------------------------------- */

/* A saga step: register compensate (NULL or "": the action needs no
 * undo), then call action with payload[len] (dtm-trans_type saga, dtm-op
 * action, the workflow's branch headers). Targets are
 * "host:port/package.Service/Method". On TRELLIS_OK *reply (may be NULL
 * when empty) and *reply_len hold the reply; reply and reply_len may be
 * NULL when unwanted. */
trellis_rc_t trellis_wf_saga(trellis_wf_t *wf, const char *action,
                             const char *compensate, const void *payload,
                             size_t len, uint8_t **reply, size_t *reply_len,
                             char *err, size_t errlen);

/* A TCC step: register confirm and cancel, then call try_target. */
trellis_rc_t trellis_wf_tcc(trellis_wf_t *wf, const char *try_target,
                            const char *confirm, const char *cancel,
                            const void *payload, size_t len, uint8_t **reply,
                            size_t *reply_len, char *err, size_t errlen);

/* An XA step: register commit and rollback, then call prepare. */
trellis_rc_t trellis_wf_xa(trellis_wf_t *wf, const char *prepare,
                           const char *commit, const char *rollback,
                           const void *payload, size_t len, uint8_t **reply,
                           size_t *reply_len, char *err, size_t errlen);

/* What a local step's functions get; borrowed for their call. op is
 * "action" when the step runs, "compensate" when it is undone. */
typedef struct {
    const char *gid;
    const char *branch_id;
    const char *op;
    void *user; /* the registered function's user */
} trellis_wf_step_ctx_t;

/* A local step's action. Returns TRELLIS_OK with *out (malloc'd, handed
 * to the library; NULL when empty) as its result, TRELLIS_ABORTED for a
 * business failure (err is recorded as its message), or another code for
 * an unknown outcome (nothing recorded; it runs again on the next run). */
typedef trellis_rc_t (*trellis_wf_local_fn)(const trellis_wf_step_ctx_t *ctx,
                                            void *arg, uint8_t **out,
                                            size_t *out_len, char *err,
                                            size_t errlen);

/* A local step's undo, with the action's recorded result (NULL, 0 when
 * it has none: it failed, or its outcome was never recorded). TRELLIS_OK
 * when undone; anything else and trellisd calls again later. It runs
 * (inside a re-run of the function, when the step is reached) each time
 * trellisd asks, so it must be idempotent: keep it behind the barrier
 * (trellis_wf_step_branch_ctx). */
typedef trellis_rc_t (*trellis_wf_undo_fn)(const trellis_wf_step_ctx_t *ctx,
                                           void *arg, const uint8_t *result,
                                           size_t result_len, char *err,
                                           size_t errlen);

/* A local step: run (ctx.op "action") once, record its result, and on
 * rollback (or when its action failed and the workflow commits) undo
 * (may be NULL: nothing to undo) through this service's Resume. arg is
 * passed to both, borrowed for this call only (the undo runs in a later
 * run of the function, with that run's arg). */
trellis_rc_t trellis_wf_local(trellis_wf_t *wf, trellis_wf_local_fn run,
                              trellis_wf_undo_fn undo, void *arg,
                              uint8_t **reply, size_t *reply_len, char *err,
                              size_t errlen);

/* A branch context for a local step's ctx (trans_type "local", no
 * headers), so the barrier works on local steps as on remote ones:
 * trellis_barrier_branch_from_ctx(out), then trellis_barrier_run. The
 * strings are borrowed from ctx. */
void trellis_wf_step_branch_ctx(const trellis_wf_step_ctx_t *ctx,
                                trellis_branch_ctx_t *out);

/* ---- hooks ----------------------------------------------------------- */

/* outcome: SUCCEEDED for a commit, FAILED for a rollback (the workflow's
 * status says SUBMITTED or ABORTING until the hooks answered). Return
 * TRELLIS_OK, else trellisd calls the hooks again later. */
typedef trellis_rc_t (*trellis_wf_hook_fn)(const char *gid,
                                           trellis_trans_status_t outcome,
                                           void *arg, char *err, size_t errlen);

/* Run fn once the workflow committed (on_commit), rolled back
 * (on_rollback), or either (on_finish, after the others), after every
 * step's phase 2 is done. Hooks run in the order added, at least once:
 * they must be idempotent. They run after the function returned, in a
 * later run of it (trellisd calls Resume with dtm-op "commit" or
 * "rollback"), so arg must outlive the function's call: the registry's
 * user, static data — never the function's locals. Add them on every
 * run, like the steps. RESOURCE_EXHAUSTED when out of memory. */
trellis_rc_t trellis_wf_on_commit(trellis_wf_t *wf, trellis_wf_hook_fn fn,
                                  void *arg);
trellis_rc_t trellis_wf_on_rollback(trellis_wf_t *wf, trellis_wf_hook_fn fn,
                                    void *arg);
trellis_rc_t trellis_wf_on_finish(trellis_wf_t *wf, trellis_wf_hook_fn fn,
                                  void *arg);

/* The workflow's gid and the registered function's user; borrowed from
 * wf. */
const char *trellis_wf_gid(const trellis_wf_t *wf);
void *trellis_wf_user(const trellis_wf_t *wf);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_WORKFLOW_H */
