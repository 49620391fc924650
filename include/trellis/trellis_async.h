/*
 * libtrellis, asynchronous initiator calls: begin, register, submit and
 * abort, the saga submit, plain calls to participants, and the TCC and XA
 * helpers — without a blocking thread per transaction.
 *
 * A service that starts many transactions at once does not need a thread
 * for each: it starts a call and gets its outcome later in a callback.
 * Hundreds of transactions may be in flight from one thread.
 *
 * Setting up. The calls run on one gRPC completion queue per client,
 * created by trellis_async_start(c, mode) and driven either
 *   - by a thread the client owns (TRELLIS_ASYNC_THREAD): every callback
 *     runs on that thread, one at a time, in the order the calls finish;
 *   - or by the application (TRELLIS_ASYNC_POLL): callbacks run only
 *     inside trellis_async_poll, on the thread that calls it (one thread
 *     at a time). A gRPC queue has no file descriptor to wait on, so an
 *     event loop calls trellis_async_poll(c, 0) on each turn (it returns
 *     at once when nothing finished) or from a short timer; a loop with
 *     nothing else to do may block in trellis_async_poll(c, ms). Calls
 *     make no progress while nobody polls.
 * The blocking calls of trellis.h keep working on the same client, from
 * any thread, in either mode.
 *
 * Calls. Every trellis_async_* call below returns at once. It returns
 * TRELLIS_OK when the call was accepted: then its callback runs exactly
 * once, later, on the queue's driver — never inside the call that started
 * it — with the outcome: success, or every failure (bad arguments, out of
 * memory, trellisd or the participant unreachable or answering an error,
 * the deadline, the client freed) as a trellis_rc_t and a message. It
 * returns an error, and the callback never runs, only when there is
 * nowhere to report to: c (or the helper) or cb NULL
 * (TRELLIS_INVALID_ARGUMENT), or no trellis_async_start on the client
 * (TRELLIS_FAILED_PRECONDITION). (One exception to "never inside": when
 * memory runs out for the call's own small record, its callback runs at
 * once, before the call returns, with TRELLIS_RESOURCE_EXHAUSTED — still
 * exactly once.)
 *
 * Threads. trellis_async_* calls may be made from any thread, including
 * from inside a callback: a callback starting the next step of its
 * transaction is the intended use. A callback must not block for long
 * (it holds up every other callback of the client) and must not call
 * trellis_client_free or trellis_async_poll.
 *
 * Ownership. Every argument is borrowed only for the call that takes it:
 * strings, payloads, options and saga builders may be freed as soon as the
 * call returns. The result handed to a callback, and everything it points
 * to, is borrowed for the callback's run: copy what must outlive it. A
 * trellis_tcc_t / trellis_xa_t used with the calls below must outlive its
 * calls' callbacks (free it in the last one, or after), and has at most
 * one call in flight at a time: start its next step from the callback of
 * the previous one.
 *
 * trellis_client_free with calls in flight: it ends them at once; each
 * callback runs exactly once before trellis_client_free returns, with
 * TRELLIS_CANCELLED ("the client was freed ...") unless the call finished
 * first. The callbacks run on the client's thread (TRELLIS_ASYNC_THREAD)
 * or inside trellis_client_free, on the thread that calls it
 * (TRELLIS_ASYNC_POLL). A call started from such a callback fails with
 * TRELLIS_CANCELLED too (its callback also runs before the free returns),
 * so chains end; do not retry on CANCELLED. A transaction cut off this way
 * is neither submitted nor aborted: its timeout rolls it back.
 */
#ifndef TRELLIS_ASYNC_H
#define TRELLIS_ASYNC_H

#include "trellis/trellis.h"
#include "trellis/trellis_tcc.h"
#include "trellis/trellis_xa.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TRELLIS_ASYNC_THREAD = 1, /* the client's own thread runs callbacks */
    TRELLIS_ASYNC_POLL = 2,   /* trellis_async_poll runs them */
} trellis_async_mode_t;

/* The outcome of one asynchronous call. Borrowed for the callback's run. */
typedef struct {
    trellis_rc_t rc;     /* TRELLIS_OK, or the failure's code */
    const char *message; /* "" on success, else what went wrong */
    const char *gid;     /* the transaction's gid (new_gid: the new one);
                            "" for a plain call */
    /* submit, abort and the runners: the status trellisd answered (final
     * with wait_result); TRELLIS_TRANS_UNSPECIFIED when none came. */
    trellis_trans_status_t status;
    const char *reason;   /* submit, runners: why it failed; else "" */
    const uint8_t *reply; /* call_branch, call_unary: the participant's
                             reply bytes on success (NULL when empty) */
    size_t reply_len;
    /* runners: the index of the branch whose register or forward op
     * failed; -1 when none did. */
    int branch;
    /* begin: how many initiator-driven branches the transaction holds
     * (0 from a trellisd that predates the count). */
    uint32_t branches_registered;
} trellis_async_result_t;

typedef void (*trellis_async_cb)(const trellis_async_result_t *r, void *user);

/* Give c its completion queue and the way it is driven. Once per client
 * (a second call is FAILED_PRECONDITION), before its first asynchronous
 * call. TRELLIS_ASYNC_THREAD starts the thread here. */
trellis_rc_t trellis_async_start(trellis_client_t *c, trellis_async_mode_t mode,
                                 char *err, size_t errlen);

/* TRELLIS_ASYNC_POLL: run the callbacks of finished calls, waiting up to
 * timeout_ms for the first one (0: do not wait). Returns how many ran, or
 * -1 when c was not started in poll mode. From one thread at a time, and
 * not from a callback. */
int trellis_async_poll(trellis_client_t *c, uint32_t timeout_ms);

/* ---- trellisd's calls (as their blocking twins in trellis.h) ---------- */

trellis_rc_t trellis_async_new_gid(trellis_client_t *c, trellis_async_cb cb,
                                   void *user);

trellis_rc_t trellis_async_begin(trellis_client_t *c, const char *gid,
                                 const trellis_options_t *o,
                                 trellis_async_cb cb, void *user);

trellis_rc_t trellis_async_register_branch(
    trellis_client_t *c, const char *gid, const char *branch_id,
    trellis_mode_t mode, const trellis_branch_op_t *ops, size_t n_ops,
    const void *payload, size_t payload_len, trellis_async_cb cb, void *user);

/* result->status and ->reason as trellis_submit's. */
trellis_rc_t trellis_async_submit(trellis_client_t *c, const char *gid,
                                  int wait, trellis_async_cb cb, void *user);

trellis_rc_t trellis_async_abort(trellis_client_t *c, const char *gid,
                                 const char *reason, int wait,
                                 trellis_async_cb cb, void *user);

/* Submit a saga built with trellis_saga_new ...; s is read during the call
 * only (free it whenever). As trellis_saga_submit otherwise. */
trellis_rc_t trellis_async_saga_submit(trellis_client_t *c,
                                       const trellis_saga_t *s,
                                       trellis_async_cb cb, void *user);

/* trellis_call_unary through c's queue: method at target with the request
 * bytes and metadata pairs; result->reply holds the reply. */
trellis_rc_t trellis_async_call_unary(trellis_client_t *c, const char *target,
                                      const char *method, const void *req,
                                      size_t req_len,
                                      const char *const *md_keys,
                                      const char *const *md_values, size_t n_md,
                                      uint32_t timeout_ms, trellis_async_cb cb,
                                      void *user);

/* ---- the TCC and XA helpers, step by step ------------------------------
 * The same steps as trellis_tcc.h / trellis_xa.h. begin makes *out at once
 * (the caller's: trellis_tcc_free / trellis_xa_free, after the last
 * callback) and sends Begin; *out is NULL, and the callback says why, when
 * it cannot be made (out NULL is INVALID_ARGUMENT: nothing runs). call_branch
 * registers the branch with trellisd and, once registered, calls its try
 * (prepare) itself: one callback, with the try's outcome and reply (or the
 * register's failure). Then submit, or abort. One call at a time per helper. */

trellis_rc_t trellis_async_tcc_begin(trellis_client_t *c, const char *gid,
                                     const trellis_options_t *o,
                                     trellis_tcc_t **out, trellis_async_cb cb,
                                     void *user);
trellis_rc_t trellis_async_tcc_call_branch(
    trellis_tcc_t *t, const char *try_target, const char *confirm_target,
    const char *cancel_target, const void *payload, size_t payload_len,
    trellis_async_cb cb, void *user);
trellis_rc_t trellis_async_tcc_submit(trellis_tcc_t *t, trellis_async_cb cb,
                                      void *user);
trellis_rc_t trellis_async_tcc_abort(trellis_tcc_t *t, const char *reason,
                                     trellis_async_cb cb, void *user);

trellis_rc_t trellis_async_xa_begin(trellis_client_t *c, const char *gid,
                                    const trellis_options_t *o,
                                    trellis_xa_t **out, trellis_async_cb cb,
                                    void *user);
trellis_rc_t trellis_async_xa_call_branch(
    trellis_xa_t *x, const char *prepare_target, const char *commit_target,
    const char *rollback_target, const void *payload, size_t payload_len,
    trellis_async_cb cb, void *user);
trellis_rc_t trellis_async_xa_submit(trellis_xa_t *x, trellis_async_cb cb,
                                     void *user);
trellis_rc_t trellis_async_xa_abort(trellis_xa_t *x, const char *reason,
                                    trellis_async_cb cb, void *user);

/* ---- whole TCC and XA transactions ------------------------------------
 * One call runs a transaction through: every target is checked, then one
 * Begin registers every branch (BeginRequest.branches: one call and one
 * durable write in trellisd); then each branch's forward op (TCC try, XA
 * prepare) in order; Submit when every forward op succeeded. On the first
 * failure it sends Abort (trellisd rolls back every registered branch now,
 * not at the timeout; a branch whose forward op never ran gets a rollback
 * its barrier turns into a no-op) and stops. Against a trellisd that
 * predates the Begin's branches, each branch is registered just before
 * its forward op instead. One callback at the end:
 *   rc OK          Submit answered: status SUCCEEDED or FAILED with
 *                  o->wait_result, else SUBMITTED; reason as Submit's;
 *   rc not OK      what failed first (a malformed target — nothing sent —,
 *                  Begin, a register, a forward op — ABORTED for a
 *                  business refusal — or Submit), its message, branch its
 *                  index (-1 for Begin, Submit), and status what the Abort
 *                  answered (UNSPECIFIED when no Abort was sent or it
 *                  failed too).
 * Branch ids are "01", "02", ... in order. Everything is copied. */

typedef struct {
    const char *forward_target;  /* try / prepare */
    const char *commit_target;   /* confirm / commit */
    const char *rollback_target; /* cancel / rollback */
    const void *payload;
    size_t payload_len;
} trellis_async_branch_t;

trellis_rc_t trellis_async_tcc_run(trellis_client_t *c, const char *gid,
                                   const trellis_options_t *o,
                                   const trellis_async_branch_t *branches,
                                   size_t n, trellis_async_cb cb, void *user);
trellis_rc_t trellis_async_xa_run(trellis_client_t *c, const char *gid,
                                  const trellis_options_t *o,
                                  const trellis_async_branch_t *branches,
                                  size_t n, trellis_async_cb cb, void *user);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_ASYNC_H */
