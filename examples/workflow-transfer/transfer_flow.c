/*
 * transfer_flow.c: the workflow function of transfer-workflow-service —
 * seed 003's transfer, out of one bank and into another, written as one C
 * function that trellisd can have run again after the service died. For
 * input "from=A to=B amount=N" and gid G it takes four steps:
 *
 *   01 tcc    bank-a  TransTry "account=A amount=-N"  freezes N
 *             (TransConfirm takes it, TransCancel releases it)
 *   02 xa     ledger-service Prepare "transfer=G from=A to=B amount=N":
 *             the audit entry, prepared (Commit / Rollback)
 *   03 local  a row of this service's own "transfers" table, written
 *             behind the barrier; its undo marks the row cancelled, also
 *             behind the barrier
 *   04 tcc    bank-b  TransTry "account=B amount=N"  checks the account
 *             (the money arrives with TransConfirm)
 *
 * and commits: trellisd confirms 01 and 04 and commits 02. A business
 * failure of a step (ABORTED: bank-b has no account B, A has too little)
 * makes the function roll back: trellisd cancels 04 and 01, has this
 * service undo 03 (through its Resume method), rolls 02 back — in reverse
 * order. Anything else (a step whose outcome is unknown) is a retry:
 * trellisd runs the function again later, where the recorded steps return
 * their recorded results and the first unrecorded one runs.
 *
 * Why TCC for the money, not saga steps: the seed's own argument (and
 * DESIGN.md's "TCC with frozen balances") — with a saga, A sees the money
 * gone and tells B, then the credit fails and B never gets it; with TCC A's
 * money is only frozen until the decision.
 *
 * Release 2 (--release 2) is a later version of the function that writes
 * the ledger entry before it debits (02 and 01 swapped). Run on a workflow
 * that release 1 began, its first step is a replay mismatch: the example's
 * picture of a deploy that changed a function with workflows in flight.
 *
 * The function keeps the workflow rules (trellis_workflow.h): its steps
 * depend only on its input and the earlier steps' results, and it has no
 * effect outside its steps. Its log lines (and the hold points, which are
 * no effects: see workflow_service.c) are the only exceptions.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_service.h"
#include "transfer_flow.h"
#include "trellis/barrier.h"

#define TARGET_MAX 200
#define ID_SCAN "%64[A-Za-z0-9_.-]"

/* The targets of the steps: "host:port/package.Service/Method". */
static struct {
    char a_try[TARGET_MAX], a_confirm[TARGET_MAX], a_cancel[TARGET_MAX];
    char b_try[TARGET_MAX], b_confirm[TARGET_MAX], b_cancel[TARGET_MAX];
    char prepare[TARGET_MAX], commit[TARGET_MAX], rollback[TARGET_MAX];
    int release;
} T;

/* One transfer, as the input says. */
typedef struct {
    const char *gid;
    char from[EXAMPLE_SERVICE_ID_MAX + 1], to[EXAMPLE_SERVICE_ID_MAX + 1];
    long long amount;
} transfer_t;

static void set_target(char *buf, const char *addr, const char *method)
{
    snprintf(buf, TARGET_MAX, "%s/%s", addr, method);
}

void flow_configure(const flow_config_t *c)
{
    set_target(T.a_try, c->bank_a, "bank.v1.Bank/TransTry");
    set_target(T.a_confirm, c->bank_a, "bank.v1.Bank/TransConfirm");
    set_target(T.a_cancel, c->bank_a, "bank.v1.Bank/TransCancel");
    set_target(T.b_try, c->bank_b, "bank.v1.Bank/TransTry");
    set_target(T.b_confirm, c->bank_b, "bank.v1.Bank/TransConfirm");
    set_target(T.b_cancel, c->bank_b, "bank.v1.Bank/TransCancel");
    set_target(T.prepare, c->ledger, "ledger.v1.Ledger/Prepare");
    set_target(T.commit, c->ledger, "ledger.v1.Ledger/Commit");
    set_target(T.rollback, c->ledger, "ledger.v1.Ledger/Rollback");
    T.release = c->release;
}

void flow_say(const char *fmt, ...)
{
    char what[600], stamp[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    example_service_stamp(stamp, sizeof stamp);
    printf("%s workflow-service: %s\n", stamp, what);
}

int flow_parse_input(const char *text, char *from, char *to, long long *amount)
{
    char tail;
    return sscanf(text, "from=" ID_SCAN " to=" ID_SCAN " amount=%lld %c", from,
                  to, amount, &tail) == 3 &&
                   *amount > 0 && *amount <= FLOW_AMOUNT_MAX
               ? 0
               : -1;
}

/* ---- step 03: the local step ----------------------------------------- */

static trellis_barrier_business_rc_t book_sql(MYSQL *conn, void *user,
                                              char *msg, size_t msglen)
{
    const transfer_t *t = user;
    return example_service_exec(conn, msg, msglen,
                                "INSERT INTO transfers (transfer, "
                                "from_account, to_account, amount, state) "
                                "VALUES ('%s', '%s', '%s', %lld, 'booked')",
                                t->gid, t->from, t->to, t->amount) == 0
               ? TRELLIS_BARRIER_BUSINESS_OK
               : TRELLIS_BARRIER_BUSINESS_ERROR;
}

static trellis_barrier_business_rc_t unbook_sql(MYSQL *conn, void *user,
                                                char *msg, size_t msglen)
{
    const transfer_t *t = user;
    return example_service_exec(conn, msg, msglen,
                                "UPDATE transfers SET state = 'cancelled' "
                                "WHERE transfer = '%s'",
                                t->gid) == 0
               ? TRELLIS_BARRIER_BUSINESS_OK
               : TRELLIS_BARRIER_BUSINESS_ERROR;
}

static const char *outcome_name(trellis_barrier_outcome_t o)
{
    static const char *const names[] = {
        [TRELLIS_BARRIER_DONE] = "done",
        [TRELLIS_BARRIER_SKIPPED_DUPLICATE] = "duplicate: nothing to do",
        [TRELLIS_BARRIER_SKIPPED_EMPTY] = "empty: the action never ran",
        [TRELLIS_BARRIER_SKIPPED_HANGING] = "hanging: undone before it came",
        [TRELLIS_BARRIER_BUSINESS_FAILURE] = "refused",
        [TRELLIS_BARRIER_ERROR] = "error",
    };
    return o <= TRELLIS_BARRIER_ERROR ? names[o] : "?";
}

/* Run fn behind the barrier of the local step ctx, on this thread's
 * connection to the service's database, and say how it went. */
static trellis_barrier_outcome_t
behind_barrier(const trellis_wf_step_ctx_t *ctx, trellis_barrier_business_fn fn,
               const transfer_t *t, char *msg, size_t msglen)
{
    trellis_branch_ctx_t bctx;
    trellis_wf_step_branch_ctx(ctx, &bctx);
    trellis_barrier_branch_t b = trellis_barrier_branch_from_ctx(&bctx);
    trellis_barrier_outcome_t o = TRELLIS_BARRIER_ERROR;
    MYSQL *conn = example_service_conn(msg, msglen);
    if (conn) {
        o = trellis_barrier_run(conn, TRELLIS_BARRIER_DEFAULT_TABLE, &b, fn,
                                (void *)t, msg, msglen);
        if (o == TRELLIS_BARRIER_ERROR)
            example_service_conn_check();
    }
    flow_say("local %s gid=%s branch=%s -> %s%s%s",
             strcmp(ctx->op, "action") ? "unbook" : "book", ctx->gid,
             ctx->branch_id, outcome_name(o),
             o == TRELLIS_BARRIER_ERROR ? ": " : "",
             o == TRELLIS_BARRIER_ERROR ? msg : "");
    return o;
}

/* The action: the row, once. Its recorded result is "booked". */
static trellis_rc_t book(const trellis_wf_step_ctx_t *ctx, void *arg,
                         uint8_t **out, size_t *out_len, char *err,
                         size_t errlen)
{
    switch (behind_barrier(ctx, book_sql, arg, err, errlen)) {
    case TRELLIS_BARRIER_DONE:
    case TRELLIS_BARRIER_SKIPPED_DUPLICATE:
        if (!(*out = (uint8_t *)strdup("booked")))
            return TRELLIS_RESOURCE_EXHAUSTED;
        *out_len = strlen("booked");
        return TRELLIS_OK;
    case TRELLIS_BARRIER_ERROR:
        return TRELLIS_UNAVAILABLE; /* unknown: the next run tries again */
    default:
        return TRELLIS_ABORTED;
    }
}

/* The undo: mark the row cancelled, once (nothing when the action never
 * ran). trellisd calls it until it answers OK. */
static trellis_rc_t unbook(const trellis_wf_step_ctx_t *ctx, void *arg,
                           const uint8_t *result, size_t result_len, char *err,
                           size_t errlen)
{
    (void)result, (void)result_len;
    trellis_barrier_outcome_t o =
        behind_barrier(ctx, unbook_sql, arg, err, errlen);
    return o == TRELLIS_BARRIER_ERROR ? TRELLIS_UNAVAILABLE : TRELLIS_OK;
}

/* ---- the steps ------------------------------------------------------- */

static trellis_rc_t step_debit(trellis_wf_t *wf, const transfer_t *t, char *err,
                               size_t errlen)
{
    char pl[128];
    snprintf(pl, sizeof pl, "account=%s amount=%lld", t->from, -t->amount);
    return trellis_wf_tcc(wf, T.a_try, T.a_confirm, T.a_cancel, pl, strlen(pl),
                          NULL, NULL, err, errlen);
}

static trellis_rc_t step_ledger(trellis_wf_t *wf, const transfer_t *t,
                                char *err, size_t errlen)
{
    char pl[320];
    snprintf(pl, sizeof pl, "transfer=%s from=%s to=%s amount=%lld", t->gid,
             t->from, t->to, t->amount);
    return trellis_wf_xa(wf, T.prepare, T.commit, T.rollback, pl, strlen(pl),
                         NULL, NULL, err, errlen);
}

static trellis_rc_t step_book(trellis_wf_t *wf, const transfer_t *t, char *err,
                              size_t errlen)
{
    uint8_t *result = NULL;
    size_t len = 0;
    trellis_rc_t rc = trellis_wf_local(wf, book, unbook, (void *)t, &result,
                                       &len, err, errlen);
    free(result);
    return rc;
}

static trellis_rc_t step_credit(trellis_wf_t *wf, const transfer_t *t,
                                char *err, size_t errlen)
{
    char pl[128];
    snprintf(pl, sizeof pl, "account=%s amount=%lld", t->to, t->amount);
    return trellis_wf_tcc(wf, T.b_try, T.b_confirm, T.b_cancel, pl, strlen(pl),
                          NULL, NULL, err, errlen);
}

typedef struct {
    const char *name;
    trellis_rc_t (*run)(trellis_wf_t *wf, const transfer_t *t, char *err,
                        size_t errlen);
} step_t;

enum { DEBIT, LEDGER, BOOK, CREDIT, N_STEPS };

static const step_t STEPS[N_STEPS] = {
    [DEBIT] = {"debit", step_debit},
    [LEDGER] = {"ledger", step_ledger},
    [BOOK] = {"book", step_book},
    [CREDIT] = {"credit", step_credit},
};

_Static_assert(N_STEPS + 1 == FLOW_HOLD_MAX, "a hold point per step, and one "
                                             "before the decision");

/* The order of the steps in each release of the function. */
static const int RELEASE_1[N_STEPS] = {DEBIT, LEDGER, BOOK, CREDIT};
static const int RELEASE_2[N_STEPS] = {LEDGER, DEBIT, BOOK, CREDIT};

/* ---- the function ---------------------------------------------------- */

/* A step's rc as the function's answer: ABORTED rolls back, anything
 * else retries (trellisd runs the function again later). */
static int give_up(const char *step, trellis_rc_t rc, const char *err,
                   trellis_wf_err_t *e)
{
    snprintf(e->message, sizeof e->message, "%s: %.400s", step, err);
    return rc == TRELLIS_ABORTED ? TRELLIS_WF_ROLLBACK : TRELLIS_WF_RETRY;
}

int flow_transfer(trellis_wf_t *wf, const uint8_t *in, size_t len,
                  trellis_wf_err_t *e)
{
    transfer_t t = {.gid = trellis_wf_gid(wf)};
    char text[FLOW_INPUT_MAX], err[512];
    snprintf(text, sizeof text, "%.*s", (int)len, (const char *)in);
    if (len >= sizeof text ||
        flow_parse_input(text, t.from, t.to, &t.amount) != 0) {
        snprintf(e->message, sizeof e->message, "bad input: %s", text);
        return TRELLIS_WF_ROLLBACK; /* no step taken: nothing to undo */
    }
    flow_say("run gid=%s release=%d: %s", t.gid, T.release, text);
    const int *order = T.release == 2 ? RELEASE_2 : RELEASE_1;
    for (int k = 0; k < N_STEPS; k++) {
        const step_t *s = &STEPS[order[k]];
        flow_hold_point(t.gid, k + 1);
        trellis_rc_t rc = s->run(wf, &t, err, sizeof err);
        if (rc == TRELLIS_OK)
            flow_say("step %02d %s gid=%s -> ok", k + 1, s->name, t.gid);
        else
            flow_say("step %02d %s gid=%s -> rc %d: %s", k + 1, s->name, t.gid,
                     rc, err);
        if (rc != TRELLIS_OK)
            return give_up(s->name, rc, err, e);
    }
    flow_hold_point(t.gid, FLOW_HOLD_MAX);
    return TRELLIS_WF_COMMIT;
}
