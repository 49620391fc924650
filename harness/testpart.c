/*
 * trellis-testpart: a participant whose every answer is scripted by the
 * branch payload, so a test controls each op of each branch, and which
 * records every call so the test can check the order of ops and the
 * participant's final state. Built on the SDK's trellis_participant.h.
 *
 *   trellis-testpart --listen ADDR --port-file FILE [--journal FILE]
 *                    [--threads N] [--no-memory-journal]
 *                    [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
 *
 * With --tls-cert/--tls-key it serves TLS; with --tls-client-ca too, mutual
 * TLS (callers must present a certificate signed by that CA).
 *
 * Methods: /trellis.test.Part/{Action,Compensate,Try,Confirm,Cancel,Prepare,
 * Commit,Rollback} are branch ops (the method names the op),
 * /trellis.test.Part/Notify is a completion listener (below),
 * /trellis.test.Part/QueryPrepared a message's back-check (below),
 * /trellis.test.Part/State reports what happened (below), and
 * /trellis.test.Part/Control takes a command (below).
 *
 * Script grammar (the payload, ASCII; spaces not allowed):
 *
 *   script  = "" | clause *( ";" clause )
 *   clause  = [ opname "=" ] steps | "#" *comment-char
 *   opname  = "action" | "compensate" | "try" | "confirm" | "cancel"
 *           | "prepare" | "commit" | "rollback"
 *   steps   = step *( "," step )
 *   step    = "ok" | "fail" | "fail:" N | "ongoing:" N | "unavail:" N
 *           | "hang:" MS [ ":" N ] | "slow:" MS | "hold"
 *           | "reply:" TEXT | "replyn:" N | "say:" TEXT
 *
 * A clause starting with "#" is a comment (padding for size tests).
 * A clause without an opname applies to the forward op (action, try,
 * prepare); clauses for other ops are ignored by that op. For one op, the
 * counted steps are consumed by its calls in order, counted per (gid,
 * branch_id, op) from 1:
 *   ongoing:N  N calls answer ONGOING (FAILED_PRECONDITION), no effect;
 *   unavail:N  N calls answer ERROR (UNAVAILABLE), no effect;
 *   fail:N     N calls answer FAILURE (ABORTED), no effect;
 *   hang:MS:N  N calls (default 1) sleep MS, then succeed — past the TM's
 *              deadline, the effect still happens, late (after the sleep).
 * Once they are used up, every call answers the terminal step: "fail"
 * (FAILURE, no effect) if present, else "ok" (SUCCESS). "slow:MS" makes every
 * call of the op sleep MS before answering. "hold" makes every call of the
 * op wait, unanswered, until the test releases its gid (Control, below),
 * and then answer as the other steps say (the effect happens after the
 * release); once a gid is released its calls are no longer held.
 * "reply:TEXT" makes every successful call of the op reply with the bytes
 * TEXT (up to the next "," or ";"; a TEXT with "=" needs the clause's
 * opname: "action=reply:booking=42"), "replyn:N" with N bytes of the
 * digits 0123456789 repeated (for size tests). "say:TEXT" makes every
 * answer of the op carry TEXT as its status message instead of
 * "testpart: OP ANSWER", with %XX decoded to the byte XX (so a test can
 * send quotes, markup, control characters or bytes that are not UTF-8 as
 * a participant's error message: "fail;action=say:%3Cb%3Ex"). Examples:
 *   ""                               every op succeeds at once
 *   "fail"                           the action fails for business reasons
 *   "ongoing:3"                      the action is ONGOING 3 times, then ok
 *   "slow:300;compensate=unavail:2"  slow action; compensate UNAVAILABLE twice
 *   "ok;compensate=hold"             the compensation waits for the test
 *   "action=reply:booking=42"        the action replies "booking=42"
 * A payload that does not parse answers ERROR and is journaled as "error".
 *
 * Notify (a completion listener, dtm-op "notify"): its payload is the
 * CompletionEvent trellisd sends, so its script is --notify-script SCRIPT
 * (the steps above, e.g. "unavail:3" or "hold"; default ""), the same for
 * every call. Its barrier is a forward op's (first success "applied",
 * again "dup"), and its journal line adds event_status=SUCCEEDED|FAILED
 * event_finished_ms=T (or event_status=bad when the bytes do not parse).
 * Called as a branch listener (trans_type "branch_event") it reads a
 * BranchEvent instead: event_status=F,P,S — the forward and phase-2
 * statuses (P pending, S succeeded, F failed, K skipped, - no op) and the
 * side (C commit, R rollback). Called by a batching listener's trellisd
 * (dtm-op "notify_batch") it reads a CompletionEventBatch and journals
 * one line per event, under the event's gid and branch id, with its own
 * barrier and batch=N; the script answers the whole call (its count: the
 * most often called event's), and "hold" holds it until every event's gid
 * is released.
 *
 * QueryPrepared (a message's back-check, any dtm-op): its answer is the
 * gid's local transaction, which a test commits with Control "commit GID"
 * (as the initiator's database would): SUCCESS, effect "committed", once
 * committed; otherwise FAILURE, effect "rolledback", and a later commit
 * is refused — the race a real initiator settles with its barrier row.
 * Both live in the barrier of (gid, "00"), which then shows in the net
 * state as a committed local transaction.
 *
 * Barrier (in memory, per (gid, branch_id), like DESIGN's branch barrier):
 * a successful op takes effect at most once:
 *   forward op   first success: "applied"; again: "dup"; after the undo
 *                already ran: "blocked" (a hanging forward op: no effect);
 *   undo op      (compensate/cancel/rollback) first success: "undone" if
 *                the forward op was applied, "empty" if it never was (it
 *                then blocks a late forward op); again: "dup";
 *   confirm op   (confirm/commit) first: "confirmed", or "orphan" if the
 *                forward op had not been applied; again: "dup".
 * Answers other than success have effect "none".
 *
 * Journal: one line per call, written when the call is answered:
 *   call seq=S start_ms=T end_ms=T gid=G branch=B op=O dtm_op=O
 *        trans_type=T n=N len=L answer=ok|fail|ongoing|unavail|error
 *        effect=E
 * A call that carried the compensation log (trellisd's metadata
 * trellis-action-result-bin, read through the SDK's context) adds
 *        log_len=N log=HEX [log_size=M]
 * (HEX: at most its first 256 bytes; log_size: the full size, when
 * trellisd said it cut the log). A call that carried W3C trace context
 * adds traceparent=V (the value as received) and tracestate=HEX (the
 * value's bytes in hex, as it may hold spaces).
 * seq is the arrival order; len the payload's size in bytes; start/end are
 * wall-clock ms at arrival and at the answer; op comes from the method,
 * dtm_op/trans_type from metadata. Lines go to --journal FILE (flushed each
 * line; in answer order) and to memory. State's request payload is a gid (""
 * for all); its reply is the journal lines of that gid in arrival order, then
 * one line per branch in the net state (forward op applied and not undone): net
 * gid=G branch=B confirmed=0|1
 * --no-memory-journal keeps only the barrier in memory (for benchmarks):
 * State then reports just the net state.
 *
 * Control: the request payload is one command line, the reply body one
 * line, "ok ..." or "err ..." (the words of trellisd-faults' control
 * socket, tests/faults/tm_fault.h, where they mean the same):
 *   wait-held GID N MS  wait until N calls of GID are held (answer
 *                       "ok held=K"), or "err timeout held=K" after MS;
 *   release GID         let GID's held calls go on, and hold none of GID
 *                       from now on ("ok released=K": K calls were held);
 *   commit GID          the local transaction of message GID commits
 *                       ("ok committed"), unless GID's back-check already
 *                       answered that it did not ("err rolled-back").
 * A test holds a call to act at a known point (kill the TM while a call is
 * in flight), then releases it.
 *
 * Threads: handlers run on --threads workers (default 16; a hanging or held
 * call, and a wait-held, holds one). One mutex guards the journal,
 * counters, barrier and holds; sleeps happen outside it, held calls wait
 * on a condition variable.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trellis/trellis_participant.h"
#include "trellis_fnv.h"
#include "trellis_portfile.h"
#include "testpart_script.h"

#define N_BUCKETS 65536
#define METHOD_PREFIX "/trellis.test.Part/"

/* The barrier key of a message's local transaction and back-check, the
 * branch id both trellisd and DTM send with the back-check. */
#define MSG_BRANCH "00"

/* ---- state: counters, barrier, journal ------------------------------- */

typedef struct branch_state {
    struct branch_state *next;
    char *gid, *branch;
    int calls[N_OPS]; /* calls received per op */
    int held;         /* calls of it waiting for a release now */
    int forward_row, forward_applied, undo_row, undone, confirm_row;
} branch_state_t;

#define LOG_HEX_MAX 256      /* bytes of a received log the journal shows */
#define TRACE_PARENT_MAX 256 /* a traceparent's bytes the journal shows */
#define TRACE_STATE_MAX 512  /* a tracestate's bytes the journal shows */

typedef struct {
    int64_t seq, start_ms, end_ms;
    char gid[72], branch[40], dtm_op[16], trans_type[16];
    int op, n;
    size_t len; /* payload bytes received */
    const char *answer, *effect;
    int has_log;       /* the call carried a compensation log */
    size_t log_len;    /* its length */
    uint64_t log_size; /* the full size trellisd said */
    char log_hex[2 * LOG_HEX_MAX + 1];
    const char *event_status; /* Notify: the event's status, else NULL */
    char event_text[8];       /* a branch event's status, event_status */
    int64_t event_finished_ms;
    int batch; /* a batch's events, each with a record; 0: no batch */
    char traceparent[TRACE_PARENT_MAX + 1]; /* "" when the call had none */
    char tracestate_hex[2 * TRACE_STATE_MAX + 1];
} record_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t hold_cv; /* a call was held, or a gid released */
    char **released;        /* gids whose calls are no longer held */
    size_t n_released;
    branch_state_t *buckets[N_BUCKETS];
    record_t *records;
    size_t n_records, cap_records;
    int64_t next_seq;
    FILE *journal;
    int keep_records;
    const char *notify_script; /* --notify-script */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .hold_cv = PTHREAD_COND_INITIALIZER,
       .keep_records = 1,
       .notify_script = ""};

/* The bucket of (gid, branch): both hashed, a 0x1f between them. */
static size_t branch_bucket(const char *gid, const char *branch)
{
    static const unsigned char sep = 0x1f;
    trellis_fnv_t f;
    trellis_fnv_init(&f);
    trellis_fnv_add_str(&f, gid);
    trellis_fnv_add(&f, &sep, 1);
    trellis_fnv_add_str(&f, branch);
    return (size_t)(trellis_fnv_final(&f) % N_BUCKETS);
}

/* Find or add (gid, branch); caller holds S.mu. NULL when out of memory. */
static branch_state_t *branch_get(const char *gid, const char *branch)
{
    branch_state_t **slot = &S.buckets[branch_bucket(gid, branch)];
    for (branch_state_t *b = *slot; b; b = b->next)
        if (!strcmp(b->gid, gid) && !strcmp(b->branch, branch))
            return b;
    branch_state_t *b = calloc(1, sizeof *b);
    if (!b || !(b->gid = strdup(gid)) || !(b->branch = strdup(branch))) {
        if (b)
            free(b->gid);
        free(b);
        return NULL;
    }
    b->next = *slot;
    *slot = b;
    return b;
}

/* Apply a successful op to the barrier; returns the effect's name. */
static const char *barrier_apply(branch_state_t *b, op_kind_t kind)
{
    switch (kind) {
    case KIND_FORWARD:
        if (b->forward_row)
            return b->forward_applied ? "dup" : "blocked";
        b->forward_row = b->forward_applied = 1;
        return "applied";
    case KIND_UNDO:
        if (b->undo_row)
            return "dup";
        b->undo_row = 1;
        if (!b->forward_row) {
            b->forward_row = 1;
            return "empty";
        }
        b->undone = b->forward_applied;
        return b->undone ? "undone" : "empty";
    case KIND_CONFIRM:
        if (b->confirm_row)
            return "dup";
        b->confirm_row = 1;
        return b->forward_applied && !b->undone ? "confirmed" : "orphan";
    }
    return "none";
}

/* One journal line (with its newline) into buf[len]. */
static void record_format(const record_t *r, char *buf, size_t len)
{
    int n = snprintf(
        buf, len,
        "call seq=%lld start_ms=%lld end_ms=%lld gid=%s branch=%s op=%s "
        "dtm_op=%s trans_type=%s n=%d len=%zu answer=%s effect=%s",
        (long long)r->seq, (long long)r->start_ms, (long long)r->end_ms, r->gid,
        r->branch, OPS[r->op].name, r->dtm_op, r->trans_type, r->n, r->len,
        r->answer, r->effect);
    if (n < 0 || (size_t)n >= len)
        return;
    if (r->has_log && r->log_size > r->log_len)
        n += snprintf(buf + n, len - (size_t)n,
                      " log_len=%zu log=%s log_size=%llu", r->log_len,
                      r->log_hex, (unsigned long long)r->log_size);
    else if (r->has_log)
        n += snprintf(buf + n, len - (size_t)n, " log_len=%zu log=%s",
                      r->log_len, r->log_hex);
    if (r->event_status && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n,
                      " event_status=%s event_finished_ms=%lld",
                      r->event_status, (long long)r->event_finished_ms);
    if (r->batch && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " batch=%d", r->batch);
    if (r->traceparent[0] && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " traceparent=%s",
                      r->traceparent);
    if (r->tracestate_hex[0] && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " tracestate=%s",
                      r->tracestate_hex);
    if (n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "\n");
}

/* The compensation log the call carried, into r. */
static void record_log(record_t *r, const trellis_branch_ctx_t *ctx)
{
    size_t len;
    const uint8_t *log = trellis_branch_ctx_action_result(ctx, &len);
    if (!log)
        return;
    r->has_log = 1;
    r->log_len = len;
    trellis_branch_ctx_action_result_cut(ctx, &r->log_size);
    size_t shown = len < LOG_HEX_MAX ? len : LOG_HEX_MAX;
    for (size_t i = 0; i < shown; i++)
        snprintf(r->log_hex + 2 * i, 3, "%02x", log[i]);
}

static void copy_token(char *dst, size_t len, const char *src);

/* The W3C trace context the call carried (trellisd forwards the
 * initiator's), into r: the traceparent as a token, the tracestate in
 * hex (it may hold spaces). */
static void record_trace(record_t *r, const trellis_branch_ctx_t *ctx)
{
    const char *parent =
        trellis_branch_ctx_header(ctx, TRELLIS_TRACEPARENT_HEADER);
    const char *state =
        trellis_branch_ctx_header(ctx, TRELLIS_TRACESTATE_HEADER);
    if (parent)
        copy_token(r->traceparent, sizeof r->traceparent, parent);
    for (size_t i = 0; state && state[i] && i < TRACE_STATE_MAX; i++)
        snprintf(r->tracestate_hex + 2 * i, 3, "%02x", (unsigned char)state[i]);
}

/* Keep and write the record; caller holds S.mu. */
static void record_add(const record_t *r)
{
    if (S.journal) {
        char line[4096];
        record_format(r, line, sizeof line);
        fputs(line, S.journal);
        fflush(S.journal);
    }
    if (!S.keep_records)
        return;
    if (S.n_records == S.cap_records) {
        size_t cap = S.cap_records ? S.cap_records * 2 : 1024;
        record_t *p = realloc(S.records, cap * sizeof *p);
        if (!p)
            return;
        S.records = p;
        S.cap_records = cap;
    }
    record_t *kept = &S.records[S.n_records++];
    *kept = *r;
    if (r->event_status == r->event_text) /* it points into the record */
        kept->event_status = kept->event_text;
}

/* ---- holds ----------------------------------------------------------- */

/* Caller holds S.mu. */
static int gid_released(const char *gid)
{
    for (size_t i = 0; i < S.n_released; i++)
        if (!strcmp(S.released[i], gid))
            return 1;
    return 0;
}

/* Calls of gid held now; caller holds S.mu. */
static int held_calls(const char *gid)
{
    int n = 0;
    for (size_t i = 0; i < N_BUCKETS; i++)
        for (branch_state_t *b = S.buckets[i]; b; b = b->next)
            if (!strcmp(b->gid, gid))
                n += b->held;
    return n;
}

/* Wait, unanswered, until b's gid is released. */
static void hold_call(branch_state_t *b)
{
    pthread_mutex_lock(&S.mu);
    b->held++;
    pthread_cond_broadcast(&S.hold_cv);
    while (!gid_released(b->gid))
        pthread_cond_wait(&S.hold_cv, &S.mu);
    b->held--;
    pthread_mutex_unlock(&S.mu);
}

/* "wait-held GID N MS" into reply[len]. */
static void control_wait_held(const char *gid, int n, int ms, char *reply,
                              size_t len)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&S.mu);
    int rc = 0;
    while (held_calls(gid) < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&S.hold_cv, &S.mu, &until);
    int held = held_calls(gid);
    pthread_mutex_unlock(&S.mu);
    snprintf(reply, len, "%s held=%d\n", held >= n ? "ok" : "err timeout",
             held);
}

/* Remember gid as released; caller holds S.mu. 0, or -1 out of memory. */
static int add_released(const char *gid)
{
    char **p = realloc(S.released, (S.n_released + 1) * sizeof *p);
    if (!p)
        return -1;
    S.released = p;
    if (!(S.released[S.n_released] = strdup(gid)))
        return -1;
    S.n_released++;
    return 0;
}

/* "release GID" into reply[len]. */
static void control_release(const char *gid, char *reply, size_t len)
{
    pthread_mutex_lock(&S.mu);
    int held = held_calls(gid);
    int ok = gid_released(gid) || add_released(gid) == 0;
    pthread_cond_broadcast(&S.hold_cv);
    pthread_mutex_unlock(&S.mu);
    if (ok)
        snprintf(reply, len, "ok released=%d\n", held);
    else
        snprintf(reply, len, "err out of memory\n");
}

/* "commit GID": the local transaction of message GID commits — unless its
 * back-check came first and found none, which makes the commit fail, as
 * the barrier row does in a real initiator's database. */
static void control_commit(const char *gid, char *reply, size_t len)
{
    pthread_mutex_lock(&S.mu);
    branch_state_t *b = branch_get(gid, MSG_BRANCH);
    int refused = b && b->undo_row;
    if (b && !refused)
        b->forward_row = b->forward_applied = 1;
    pthread_mutex_unlock(&S.mu);
    snprintf(reply, len, "%s\n",
             !b        ? "err out of memory"
             : refused ? "err rolled-back: the back-check came first"
                       : "ok committed");
}

static void handle_control(const trellis_branch_ctx_t *ctx,
                           const uint8_t *payload, size_t payload_len,
                           trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)user;
    char cmd[160], gid[80], out[128];
    int n, ms;
    snprintf(cmd, sizeof cmd, "%.*s", (int)payload_len, (const char *)payload);
    if (sscanf(cmd, "wait-held %79s %d %d", gid, &n, &ms) == 3)
        control_wait_held(gid, n, ms, out, sizeof out);
    else if (sscanf(cmd, "release %79s", gid) == 1)
        control_release(gid, out, sizeof out);
    else if (sscanf(cmd, "commit %79s", gid) == 1)
        control_commit(gid, out, sizeof out);
    else
        snprintf(out, sizeof out, "err unknown command\n");
    reply->body = (uint8_t *)strdup(out);
    reply->body_len = reply->body ? strlen(out) : 0;
}

/* ---- handlers -------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Safe for one token of a space-separated line: no spaces, '=' or '\n'. */
static void copy_token(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < len; i++)
        dst[i] =
            (src[i] == ' ' || src[i] == '\n' || src[i] == '=') ? '?' : src[i];
    dst[i] = '\0';
}

static const trellis_reply_code_t REPLY_CODES[] = {
    [ANS_OK] = TRELLIS_REPLY_SUCCESS,
    [ANS_FAIL] = TRELLIS_REPLY_FAILURE,
    [ANS_ONGOING] = TRELLIS_REPLY_ONGOING,
    [ANS_UNAVAIL] = TRELLIS_REPLY_ERROR,
};

/* The body a successful call answers with (reply: or replyn:). Out of
 * memory answers none. */
static void reply_with(trellis_reply_t *reply, const plan_t *p)
{
    uint8_t *body = malloc(p->reply_len);
    if (!body)
        return;
    for (size_t i = 0; i < p->reply_len; i++)
        body[i] =
            p->reply_digits ? (uint8_t)('0' + i % 10) : (uint8_t)p->reply[i];
    reply->body = body;
    reply->body_len = p->reply_len;
}

/* A CompletionEvent's status as the journal says it. */
static const char *status_name(trellis_trans_status_t st)
{
    return st == TRELLIS_TRANS_SUCCEEDED ? "SUCCEEDED"
           : st == TRELLIS_TRANS_FAILED  ? "FAILED"
                                         : "other";
}

/* One letter per op status of a BranchEvent: Pending, Succeeded, Failed,
 * sKipped, '-' no such op. */
static char status_letter(int s)
{
    return s == 1 ? 'P' : s == 2 ? 'S' : s == 3 ? 'F' : s == 4 ? 'K' : '-';
}

/* Notify of a branch listener: "F,P,C" into r — the forward status, the
 * phase-2 status (status_letter) and the side (C commit, R rollback). */
static void record_branch_event(record_t *r, const uint8_t *payload, size_t len)
{
    trellis_branch_event_t ev;
    char err[128];
    if (trellis_branch_event_parse(payload, len, &ev, err, sizeof err) !=
        TRELLIS_OK) {
        r->event_status = "bad";
        return;
    }
    snprintf(r->event_text, sizeof r->event_text, "%c,%c,%c",
             status_letter(ev.forward_status), status_letter(ev.phase2_status),
             ev.committed ? 'C' : 'R');
    r->event_status = r->event_text;
    r->event_finished_ms = ev.finished_ms;
}

/* Notify: what the CompletionEvent (or BranchEvent) says, into r. */
static void record_event(record_t *r, const uint8_t *payload, size_t len)
{
    trellis_completion_event_t ev;
    char err[128];
    if (strcmp(r->trans_type, "branch_event") == 0) {
        record_branch_event(r, payload, len);
        return;
    }
    if (trellis_completion_event_parse(payload, len, &ev, err, sizeof err) !=
        TRELLIS_OK) {
        r->event_status = "bad";
        return;
    }
    r->event_status = status_name(ev.status);
    r->event_finished_ms = ev.finished_ms;
}

/* QueryPrepared: SUCCESS once the gid's local transaction committed
 * (effect "committed"); otherwise FAILURE, and the check's row makes a
 * later commit impossible (effect "rolledback"). */
static void answer_back_check(record_t *r, trellis_reply_t *reply)
{
    pthread_mutex_lock(&S.mu);
    branch_state_t *b = branch_get(r->gid, MSG_BRANCH);
    int committed = b && b->forward_applied;
    if (b && !committed)
        b->undo_row = 1;
    r->seq = ++S.next_seq;
    r->n = b ? ++b->calls[OP_QUERY_PREPARED] : 0;
    r->end_ms = now_ms();
    r->answer = committed ? "ok" : "fail";
    r->effect = committed ? "committed" : "rolledback";
    record_add(r);
    pthread_mutex_unlock(&S.mu);
    reply->code = committed ? TRELLIS_REPLY_SUCCESS : TRELLIS_REPLY_FAILURE;
    snprintf(reply->message, sizeof reply->message,
             "testpart: the local transaction of %s %s", r->gid,
             committed ? "committed" : "did not commit");
}

/* The events of a batch: each one's (gid, branch) state, counting this
 * call; NULL entries out of memory. Returns the highest count, the call's
 * number for the script. */
static int count_batch(const trellis_completion_event_t *ev, size_t n,
                       branch_state_t **bs)
{
    int call_n = 0;
    pthread_mutex_lock(&S.mu);
    for (size_t i = 0; i < n; i++) {
        bs[i] = branch_get(ev[i].gid, ev[i].branch_id);
        int c = bs[i] ? ++bs[i]->calls[OP_NOTIFY] : 0;
        call_n = c > call_n ? c : call_n;
    }
    pthread_mutex_unlock(&S.mu);
    return call_n;
}

/* A batching listener's call (dtm-op "notify_batch"): one record per
 * event, under the event's own gid and branch id, each behind the
 * barrier. --notify-script answers the whole call, counting by its most
 * often called event; "hold" holds it until every event's gid is
 * released. */
static void handle_notify_batch(const trellis_branch_ctx_t *ctx,
                                const uint8_t *payload, size_t len,
                                trellis_reply_t *reply)
{
    trellis_completion_event_t *ev = NULL;
    size_t n = 0;
    char err[128];
    plan_t plan;
    int64_t start = now_ms();
    if (trellis_completion_event_batch_parse(payload, len, &ev, &n, err,
                                             sizeof err) != TRELLIS_OK ||
        testpart_parse_script(S.notify_script, strlen(S.notify_script),
                              OP_NOTIFY, &plan) != 0) {
        reply->code = TRELLIS_REPLY_ERROR;
        snprintf(reply->message, sizeof reply->message, "testpart: %s", err);
        return;
    }
    branch_state_t **bs = calloc(n, sizeof *bs);
    int pause = 0, call_n = bs ? count_batch(ev, n, bs) : 0;
    answer_t a = bs ? testpart_plan_answer(&plan, call_n, &pause) : ANS_UNAVAIL;
    for (size_t i = 0; bs && plan.hold && i < n; i++)
        if (bs[i])
            hold_call(bs[i]);
    sleep_ms(pause);
    pthread_mutex_lock(&S.mu);
    for (size_t i = 0; bs && i < n; i++) {
        record_t r = {.op = OP_NOTIFY,
                      .start_ms = start,
                      .end_ms = now_ms(),
                      .len = len,
                      .answer = ANSWER_NAMES[a],
                      .effect = "none",
                      .event_status = status_name(ev[i].status),
                      .event_finished_ms = ev[i].finished_ms,
                      .batch = (int)n,
                      .seq = ++S.next_seq,
                      .n = bs[i] ? bs[i]->calls[OP_NOTIFY] : 0};
        copy_token(r.gid, sizeof r.gid, ev[i].gid);
        copy_token(r.branch, sizeof r.branch, ev[i].branch_id);
        copy_token(r.dtm_op, sizeof r.dtm_op, ctx->op);
        copy_token(r.trans_type, sizeof r.trans_type, ctx->trans_type);
        if (a == ANS_OK && bs[i])
            r.effect = barrier_apply(bs[i], KIND_FORWARD);
        record_add(&r);
    }
    pthread_mutex_unlock(&S.mu);
    free(bs);
    free(ev);
    reply->code = REPLY_CODES[a];
    snprintf(reply->message, sizeof reply->message, "testpart: %zu events %s",
             n, ANSWER_NAMES[a]);
}

static void handle_op(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t payload_len, trellis_reply_t *reply, void *user)
{
    int op = (int)(intptr_t)user;
    if (op == OP_NOTIFY && strcmp(ctx->op, "notify_batch") == 0) {
        handle_notify_batch(ctx, payload, payload_len, reply);
        return;
    }
    record_t r = {
        .op = op, .start_ms = now_ms(), .len = payload_len, .effect = "none"};
    copy_token(r.gid, sizeof r.gid, ctx->gid);
    copy_token(r.branch, sizeof r.branch, ctx->branch_id);
    copy_token(r.dtm_op, sizeof r.dtm_op, ctx->op);
    copy_token(r.trans_type, sizeof r.trans_type, ctx->trans_type);
    record_log(&r, ctx);
    record_trace(&r, ctx);
    if (op == OP_QUERY_PREPARED) {
        answer_back_check(&r, reply);
        return;
    }

    plan_t plan;
    int bad;
    if (op == OP_NOTIFY) {
        record_event(&r, payload, payload_len);
        bad = testpart_parse_script(S.notify_script, strlen(S.notify_script),
                                    op, &plan);
    } else {
        bad = testpart_parse_script((const char *)payload, payload_len, op,
                                    &plan);
    }
    pthread_mutex_lock(&S.mu);
    branch_state_t *b = branch_get(r.gid, r.branch);
    r.seq = ++S.next_seq;
    r.n = b ? ++b->calls[op] : 0;
    pthread_mutex_unlock(&S.mu);

    int pause = 0;
    answer_t a =
        bad || !b ? ANS_UNAVAIL : testpart_plan_answer(&plan, r.n, &pause);
    if (!bad && b && plan.hold)
        hold_call(b);
    sleep_ms(pause);

    pthread_mutex_lock(&S.mu);
    r.end_ms = now_ms();
    r.answer = bad || !b ? "error" : ANSWER_NAMES[a];
    if (a == ANS_OK)
        r.effect = barrier_apply(b, OPS[op].kind);
    record_add(&r);
    pthread_mutex_unlock(&S.mu);

    reply->code = REPLY_CODES[a];
    if (a == ANS_OK && !bad && plan.reply_len)
        reply_with(reply, &plan);
    if (!bad && b && plan.say)
        testpart_say_text(&plan, reply->message, sizeof reply->message);
    else
        snprintf(reply->message, sizeof reply->message, "testpart: %s %s",
                 OPS[op].name,
                 bad  ? "bad script"
                 : !b ? "out of memory"
                      : r.answer);
    if (bad)
        fprintf(stderr, "testpart: bad script %.*s\n", (int)payload_len,
                (const char *)payload);
}

typedef struct {
    char *buf;
    size_t len, cap;
} text_t;

static void text_printf(text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void text_printf(text_t *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL,
                          t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *p = realloc(t->buf, cap);
        if (!p)
            return;
        t->buf = p;
        t->cap = cap;
    }
}

/* Caller holds S.mu. */
static void state_text(const char *gid, text_t *t)
{
    for (size_t i = 0; i < S.n_records; i++) {
        if (*gid && strcmp(S.records[i].gid, gid))
            continue;
        char line[4096];
        record_format(&S.records[i], line, sizeof line);
        text_printf(t, "%s", line);
    }
    for (size_t i = 0; i < N_BUCKETS; i++)
        for (branch_state_t *b = S.buckets[i]; b; b = b->next)
            if ((!*gid || !strcmp(b->gid, gid)) && b->forward_applied &&
                !b->undone)
                text_printf(t, "net gid=%s branch=%s confirmed=%d\n", b->gid,
                            b->branch, b->confirm_row);
}

static void handle_state(const trellis_branch_ctx_t *ctx,
                         const uint8_t *payload, size_t payload_len,
                         trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)user;
    char gid[72];
    text_t t = {0};
    snprintf(gid, sizeof gid, "%.*s", (int)payload_len, (const char *)payload);
    pthread_mutex_lock(&S.mu);
    state_text(gid, &t);
    pthread_mutex_unlock(&S.mu);
    reply->body = (uint8_t *)t.buf;
    reply->body_len = t.len;
}

/* ---- main ------------------------------------------------------------ */

typedef struct {
    const char *listen, *port_file, *journal;
    const char *tls_cert, *tls_key, *tls_client_ca;
    int threads;
} args_t;

static int usage(void)
{
    fprintf(stderr, "usage: trellis-testpart --listen ADDR --port-file FILE "
                    "[--journal FILE] [--threads N] "
                    "[--no-memory-journal] [--notify-script SCRIPT] "
                    "[--tls-cert PEM --tls-key PEM "
                    "[--tls-client-ca PEM]]\n");
    return 2;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.listen = "127.0.0.1:0", .threads = 16};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--no-memory-journal")) {
            S.keep_records = 0;
            continue;
        }
        if (!v)
            return -1;
        if (!strcmp(argv[i], "--listen"))
            a->listen = v;
        else if (!strcmp(argv[i], "--port-file"))
            a->port_file = v;
        else if (!strcmp(argv[i], "--journal"))
            a->journal = v;
        else if (!strcmp(argv[i], "--threads"))
            a->threads = atoi(v);
        else if (!strcmp(argv[i], "--notify-script"))
            S.notify_script = v;
        else if (!strcmp(argv[i], "--tls-cert"))
            a->tls_cert = v;
        else if (!strcmp(argv[i], "--tls-key"))
            a->tls_key = v;
        else if (!strcmp(argv[i], "--tls-client-ca"))
            a->tls_client_ca = v;
        else
            return -1;
        i++;
    }
    return a->threads > 0 ? 0 : -1;
}

static int serve(trellis_participant_t *p, const args_t *a)
{
    char err[256];
    for (int i = 0; i < N_OPS; i++) {
        char method[64];
        snprintf(method, sizeof method, METHOD_PREFIX "%s", OPS[i].method);
        if (trellis_participant_handle(p, method, handle_op,
                                       (void *)(intptr_t)i, err,
                                       sizeof err) != TRELLIS_OK)
            goto fail;
    }
    int port = 0;
    trellis_participant_tls_t tls = {a->tls_cert, a->tls_key, a->tls_client_ca};
    if (a->tls_cert &&
        trellis_participant_set_tls(p, &tls, err, sizeof err) != TRELLIS_OK)
        goto fail;
    if (trellis_participant_handle(p, METHOD_PREFIX "State", handle_state, NULL,
                                   err, sizeof err) != TRELLIS_OK ||
        trellis_participant_handle(p, METHOD_PREFIX "Control", handle_control,
                                   NULL, err, sizeof err) != TRELLIS_OK ||
        trellis_participant_start(p, a->listen, &port, err, sizeof err) !=
            TRELLIS_OK)
        goto fail;
    if (a->port_file &&
        trellis_portfile_write(a->port_file, port, err, sizeof err) != 0)
        goto fail;
    printf("trellis-testpart ready listen=127.0.0.1:%d\n", port);
    fflush(stdout);
    return 0;
fail:
    fprintf(stderr, "trellis-testpart: %s\n", err);
    return -1;
}

int main(int argc, char **argv)
{
    args_t a;
    if (parse_args(argc, argv, &a) != 0)
        return usage();
    if (a.journal && !(S.journal = fopen(a.journal, "a"))) {
        perror(a.journal);
        return 1;
    }
    /* Block the stop signals before gRPC starts threads; wait for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    trellis_participant_t *p = NULL;
    char err[256];
    if (trellis_participant_new(a.threads, &p, err, sizeof err) != TRELLIS_OK) {
        fprintf(stderr, "trellis-testpart: %s\n", err);
        return 1;
    }
    int rc = serve(p, &a);
    if (rc == 0) {
        int sig;
        sigwait(&stop, &sig);
    }
    trellis_participant_free(p);
    if (S.journal)
        fclose(S.journal);
    return rc == 0 ? 0 : 1;
}
