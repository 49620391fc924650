/*
 * example-saga: the Saga example's driver. A trip is a flight, a hotel, the
 * payment, a rental car and a confirmation email, at five services
 * (trip-service, run five times); trellisd runs the saga
 *
 *   flight -> hotel -> payment (the pivot) -> car -> email
 *
 * The payment is the saga's pivot, its point of no return: until it
 * succeeded a business failure cancels what was booked, in reverse order,
 * using the booking numbers the Books replied (trellisd's compensation
 * log); once the card is charged the trip only goes forward: the car and
 * the email have no compensation and are retried until they succeed.
 * Every trip names trip-listener (trip_listener.c) as its completion
 * listener (trellis_options_t.listeners): once the outcome is durable
 * trellisd tells it, and the listener records the event once per (gid,
 * event branch), counting duplicate deliveries.
 *
 *   example-saga [--scenario NAME] [--tm HOST:PORT] [--flight HOST:PORT]
 *                [--hotel HOST:PORT] [--payment HOST:PORT] [--car HOST:PORT]
 *                [--email HOST:PORT] [--listener HOST:PORT]
 *
 * It owns the scenarios, their checks and the processes it started. By
 * default it starts trellisd, the five services and the listener itself,
 * with the test harness (scratch dir ${build}/test-data/example-saga-<pid>,
 * holding the TM's data dir and every process's log; removed when all
 * scenarios passed, kept and printed otherwise), and stops them at the end.
 * An address given on the command line is used instead of starting that
 * process.
 *
 * Scenarios (all by default, or one with --scenario):
 *   booking-ok        every step succeeds: each service holds its booking;
 *   hotel-fails       the hotel has no rooms left, before the pivot: the
 *                     flight is cancelled (and the hotel, a no-op), the TM
 *                     ends FAILED with that reason, the payment, car and
 *                     email are never called, and nothing is held;
 *   payment-fails     the card is declined, the pivot's own failure: the
 *                     hotel and the flight are cancelled (the payment's
 *                     Cancel is a no-op), car and email never called. In
 *                     both, each Cancel named the booking number its Book
 *                     replied (the compensation log), a refused Book's
 *                     Cancel was handed none;
 *   car-after-pivot   the car company answers "no cars left" twice, after
 *                     the pivot: the TM retries it until it books, the
 *                     saga ends SUCCEEDED, nothing is cancelled, and Query
 *                     shows the car's attempts, its error text and the
 *                     pivot passed;
 *   crash-after-pivot the car's Book is held at the service once trellisd
 *                     called it; trellisd is killed (kill -9) and
 *                     restarted on the same data dir and port, then the
 *                     Book is released: the saga ends SUCCEEDED, the car
 *                     booked exactly once, nothing cancelled. Needs the
 *                     TM, the car and the services' logs started here;
 *   listener-down     the listener is stopped before the trip: Submit with
 *                     wait_result still answers SUCCEEDED at once (events
 *                     do not delay the outcome) and Query shows the trip
 *                     SUBMITTED, its notify pending (still telling its
 *                     listener); the listener is started again on its
 *                     port and the trip ends SUCCEEDED, the event
 *                     recorded once. Needs the listener started here.
 * Every scenario also checks the listener: exactly one event recorded for
 * the trip (after crash-after-pivot's restart too), with the TM's final
 * status and reason, and the TM's notify succeeded.
 * Each scenario prints its steps, the TM's outcome and per-step report, the
 * services' and the listener's own log lines about it merged in time order
 * (when it started them), each service's final state from State and what
 * the listener recorded, then exactly one line
 *   example=saga scenario=<name> result=ok|FAIL
 * The exit status is 1 if any scenario failed or a process it started did
 * not exit cleanly when stopped (a sanitizer report, a crash), 2 on a usage
 * error.
 */
#include <sys/wait.h>

#include "trip_booking.h"

const trip_leg_t LEGS[N_LEGS] = {
    {"flight", "Flight", "trip=T42 who=alice seats=2"},
    {"hotel", "Hotel", "trip=T42 who=alice rooms=1 nights=3"},
    {"payment", "Payment", "trip=T42 who=alice amount=1240 currency=EUR"},
    {"car", "Car", "trip=T42 who=alice cars=1 days=3"},
    {"email", "Email", "trip=T42 who=alice to=alice@example.com"},
};

/* ---- starting the processes ------------------------------------------ */

static int start_tm(env_t *env)
{
    const char *args[] = {"--retry-interval-ms", STR(RETRY_INTERVAL_MS),
                          "--request-timeout-ms", STR(REQUEST_TIMEOUT_MS),
                          NULL};
    env->tm_proc = example_start_tm(&env->procs, args, env->tm, sizeof env->tm);
    return env->tm_proc ? 0 : -1;
}

static int start_service(env_t *env, int leg)
{
    const char *args[] = {"--name", LEGS[leg].name, NULL};
    harness_server_t *s = example_start_service(&env->procs, LEGS[leg].name,
                                                "trip-service", args);
    if (!s)
        return -1;
    snprintf(env->svc[leg], sizeof env->svc[leg], "%s", harness_server_addr(s));
    snprintf(env->log[leg], sizeof env->log[leg], "%s",
             harness_proc_log(harness_server_proc(s)));
    printf("started trip-service --name %s at %s\n", LEGS[leg].name,
           env->svc[leg]);
    return 0;
}

static int start_listener(env_t *env)
{
    harness_server_t *s =
        example_start_service(&env->procs, "listener", "trip-listener", NULL);
    if (!s)
        return -1;
    env->listener_proc = s;
    snprintf(env->listener, sizeof env->listener, "%s", harness_server_addr(s));
    snprintf(env->log[LISTENER], sizeof env->log[LISTENER], "%s",
             harness_proc_log(harness_server_proc(s)));
    printf("started trip-listener at %s\n", env->listener);
    return 0;
}

/* Start what has no address yet, then connect to the TM. */
static int setup(env_t *env)
{
    int missing = !env->tm[0] || !env->listener[0];
    for (int i = 0; i < N_LEGS; i++)
        missing |= !env->svc[i][0];
    if (missing) {
        if (example_procs_open(&env->procs, "example-saga") != 0)
            return -1;
        if (!env->tm[0] && start_tm(env) != 0)
            return -1;
        for (int i = 0; i < N_LEGS; i++)
            if (!env->svc[i][0] && start_service(env, i) != 0)
                return -1;
        if (!env->listener[0] && start_listener(env) != 0)
            return -1;
    }
    return example_client_new("example-saga", env->tm, CALL_TIMEOUT_MS,
                              &env->client);
}

/* ---- the saga -------------------------------------------------------- */

/* "host:port/trip.v1.<Service>/<method>" into buf. */
static const char *target(const env_t *env, int leg, const char *method,
                          char *buf, size_t len)
{
    snprintf(buf, len, "%s/trip.v1.%s/%s", env->svc[leg], LEGS[leg].service,
             method);
    return buf;
}

/* The saga for gid, the payment its pivot; the step mark_leg (-1: none)
 * gets the marker mark appended to its payload. */
static trellis_saga_t *build_saga(const env_t *env, const char *gid,
                                  int mark_leg, const char *mark, int wait)
{
    char err[256], book[300], cancel[300], payload[256];
    trellis_saga_t *s = NULL;
    if (trellis_saga_new(gid, &s, err, sizeof err) != TRELLIS_OK) {
        printf("   saga_new: %s\n", err);
        return NULL;
    }
    for (int i = 0; i < N_LEGS; i++) {
        snprintf(payload, sizeof payload, "%s%s%s", LEGS[i].payload,
                 i == mark_leg ? " " : "", i == mark_leg ? mark : "");
        target(env, i, "Book", book, sizeof book);
        target(env, i, "Cancel", cancel, sizeof cancel);
        printf("   step %d  %-7s  %s/trip.v1.%s/%s  \"%s\"%s\n", i + 1,
               LEGS[i].name, env->svc[i], LEGS[i].service,
               i > PIVOT ? "Book" : "{Book,Cancel}", payload,
               i == PIVOT ? "  (pivot)" : "");
        if (trellis_saga_add_step(s, book, i > PIVOT ? NULL : cancel, payload,
                                  strlen(payload), err, sizeof err) < 0) {
            printf("   saga_add_step: %s\n", err);
            trellis_saga_free(s);
            return NULL;
        }
    }
    if (trellis_saga_set_pivot(s, PIVOT, err, sizeof err) != TRELLIS_OK) {
        printf("   saga_set_pivot: %s\n", err);
        trellis_saga_free(s);
        return NULL;
    }
    /* The listener, told how the trip ended once that is durable. */
    char notify[ADDR_MAX + 32];
    snprintf(notify, sizeof notify, "%s/trip.v1.Listener/Notify",
             env->listener);
    const char *listeners[] = {notify};
    printf("   listener       %s\n", notify);
    trellis_options_t o = {.wait_result = wait,
                           .retry_interval_ms = RETRY_INTERVAL_MS,
                           .request_timeout_ms = REQUEST_TIMEOUT_MS,
                           .n_listeners = 1,
                           .listeners = listeners};
    trellis_saga_set_options(s, &o);
    return s;
}

/* Query until the transaction is final (submit waited already, so this
 * normally returns at once; after a restart of trellisd the first Queries
 * may fail while the client reconnects). NULL on error or timeout. */
static trellis_trans_info_t *query_final(env_t *env, const char *gid)
{
    int64_t deadline = harness_mono_ms() + FINAL_TIMEOUT_MS;
    char err[256];
    for (;;) {
        trellis_trans_info_t *info = NULL;
        trellis_rc_t rc =
            trellis_query(env->client, gid, &info, err, sizeof err);
        if (rc != TRELLIS_OK && harness_mono_ms() >= deadline) {
            printf("   query %s: rc %d: %s\n", gid, rc, err);
            return NULL;
        }
        if (rc == TRELLIS_OK &&
            (example_is_final(info->status) || harness_mono_ms() >= deadline))
            return info;
        trellis_trans_info_free(info);
        harness_sleep_ms(50);
    }
}

/* "succeeded (1 attempt)", "not called", "failed (1 attempt: ...)". */
static const char *op_summary(const trellis_op_info_t *op, char *buf,
                              size_t len)
{
    if (!op || op->attempts == 0)
        return "not called";
    snprintf(buf, len, "%s (%u attempt%s%s%s)",
             trellis_op_status_name(op->status), op->attempts,
             op->attempts == 1 ? "" : "s",
             op->last_error && *op->last_error ? ": " : "",
             op->last_error ? op->last_error : "");
    return buf;
}

/* The notify of event branch b (may be NULL): it has two, the commit
 * side's (the trip SUCCEEDED) and the rollback side's (FAILED), and only
 * one is ever called. The one called, else the first; NULL if none. */
static const trellis_op_info_t *notify_op(const trellis_branch_info_t *b)
{
    const trellis_op_info_t *first = NULL;
    for (size_t i = 0; b && i < b->n_ops; i++) {
        if (b->ops[i].op != TRELLIS_OP_NOTIFY)
            continue;
        if (b->ops[i].attempts > 0)
            return &b->ops[i];
        if (!first)
            first = &b->ops[i];
    }
    return first;
}

/* The pivot's action succeeded: the saga only goes forward. */
static int past_pivot(const trellis_branch_info_t *b)
{
    const trellis_op_info_t *a = example_find_op(b, TRELLIS_OP_ACTION);
    return b->pivot && a && a->status == TRELLIS_OP_SUCCEEDED;
}

static void print_tm_report(const trellis_trans_info_t *info)
{
    size_t pivot = info->n_branches;
    example_print_tm_status(info);
    for (size_t i = 0; i < info->n_branches; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        char a[400], c[400];
        if (b->mode == TRELLIS_MODE_EVENT) {
            printf("   TM: listener branch %s: notify %s\n", b->branch_id,
                   op_summary(notify_op(b), a, sizeof a));
            continue;
        }
        printf("   TM: step %zu %-7s branch %s%s: action %s; compensate %s\n",
               i + 1, i < N_LEGS ? LEGS[i].name : "?", b->branch_id,
               b->pivot ? " (pivot)" : "",
               op_summary(example_find_op(b, TRELLIS_OP_ACTION), a, sizeof a),
               example_find_op(b, TRELLIS_OP_COMPENSATE)
                   ? op_summary(example_find_op(b, TRELLIS_OP_COMPENSATE), c,
                                sizeof c)
                   : "none");
        if (b->pivot)
            pivot = i;
    }
    if (pivot < info->n_branches)
        printf("   TM: pivot step %zu: %s\n", pivot + 1,
               past_pivot(&info->branches[pivot])
                   ? "passed, the saga only goes forward"
                   : "not passed");
}

/* ---- scenarios ------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *story;
    int mark_leg;     /* the step whose payload gets mark, -1 for none */
    const char *mark; /* "fail", "refuse=2", "hold" (see trip_service.c) */
    /* Run before the saga is submitted; NULL: none. */
    void (*before)(env_t *env, example_check_t *ck);
    /* Submit waits for the outcome (wait_result) unless no_wait. */
    int no_wait;
    /* Run once submit answered *status (before the transaction is final:
     * while the saga runs when no_wait, while the listener is told when
     * not); NULL: none. */
    void (*during)(env_t *env, const char *gid, trellis_trans_status_t status,
                   example_check_t *ck);
    void (*check)(const trellis_trans_info_t *info,
                  const svc_state_t st[N_LEGS], example_check_t *ck);
} scenario_t;

static int op_is(const trellis_branch_info_t *b, trellis_op_t op,
                 trellis_op_status_t want, uint32_t attempts)
{
    const trellis_op_info_t *o = example_find_op(b, op);
    return o && o->status == want && o->attempts == attempts;
}

/* The TM's status is want and it has a branch per step, then the
 * listener's event branch. */
static int check_tm(const trellis_trans_info_t *info,
                    trellis_trans_status_t want, example_check_t *ck)
{
    example_expect(ck, info->status == want, "TM status is %s, want %s",
                   trellis_trans_status_name(info->status),
                   trellis_trans_status_name(want));
    return example_expect(ck,
                          info->n_branches == N_LEGS + 1 &&
                              info->branches[N_LEGS].mode == TRELLIS_MODE_EVENT,
                          "TM has %zu branches, want %d steps and the "
                          "listener's",
                          info->n_branches, N_LEGS);
}

/* Every scenario: the listener recorded exactly one event for the trip,
 * with the TM's final status and reason, and the TM says it was told. */
static void check_listener(const trellis_trans_info_t *info,
                           const listener_state_t *ls, example_check_t *ck)
{
    const char *want = trellis_trans_status_name(info->status);
    const char *reason = info->reason ? info->reason : "";
    if (!example_expect(ck, ls->ok && ls->n_events == 1,
                        "listener recorded %d event(s) for the trip, want 1",
                        ls->n_events))
        return;
    example_expect(ck,
                   example_is_final(info->status) && !strcmp(ls->status, want),
                   "listener recorded status %s, want %s", ls->status, want);
    example_expect(ck, !strcmp(ls->reason, reason),
                   "listener recorded reason \"%s\", want \"%s\"", ls->reason,
                   reason);
    example_expect(ck, info->status != TRELLIS_TRANS_FAILED || *ls->reason,
                   "listener recorded a failure without its reason");
    example_expect(ck, ls->deliveries >= 1, "listener counted %d deliveries",
                   ls->deliveries);
    const trellis_branch_info_t *ev =
        info->n_branches > N_LEGS ? &info->branches[N_LEGS] : NULL;
    const trellis_op_info_t *n = notify_op(ev);
    example_expect(ck, n && n->status == TRELLIS_OP_SUCCEEDED,
                   "TM: the listener's notify did not succeed");
    example_expect(ck, !ev || !strcmp(ev->branch_id, ls->branch),
                   "listener recorded branch %s, TM's event branch is %s",
                   ls->branch, ev ? ev->branch_id : "none");
}

/* The saga went past its pivot and only forward: SUCCEEDED, the payment
 * marked the pivot and charged, no compensation run or called, and each
 * service booked exactly once and holds it. */
static int check_forward_only(const trellis_trans_info_t *info,
                              const svc_state_t st[N_LEGS], example_check_t *ck)
{
    if (!check_tm(info, TRELLIS_TRANS_SUCCEEDED, ck))
        return 0;
    const trellis_op_info_t *pay =
        example_find_op(&info->branches[PIVOT], TRELLIS_OP_ACTION);
    example_expect(ck, info->branches[PIVOT].pivot,
                   "TM: the payment step is not marked the pivot");
    example_expect(ck, pay && pay->status == TRELLIS_OP_SUCCEEDED,
                   "TM: the pivot's action did not succeed: not past it");
    for (int i = 0; i < N_LEGS; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        const trellis_op_info_t *a = example_find_op(b, TRELLIS_OP_ACTION);
        const trellis_op_info_t *c = example_find_op(b, TRELLIS_OP_COMPENSATE);
        example_expect(ck, a && a->status == TRELLIS_OP_SUCCEEDED,
                       "%s: action should have succeeded", LEGS[i].name);
        example_expect(ck, (i > PIVOT) == !c, "%s: should %s a compensate",
                       LEGS[i].name, i > PIVOT ? "not have" : "have");
        example_expect(ck, !c || c->attempts == 0,
                       "%s: compensate should not run", LEGS[i].name);
        example_expect(ck, st[i].ok && st[i].n_bookings == 1,
                       "%s should hold exactly one booking, holds %d",
                       LEGS[i].name, st[i].n_bookings);
        example_expect(ck, st[i].n_booked == 1, "%s booked %d times, want once",
                       LEGS[i].name, st[i].n_booked);
        example_expect(ck, st[i].n_cancels == 0,
                       "%s got %d Cancel call(s), want none", LEGS[i].name,
                       st[i].n_cancels);
        example_expect(ck, strcmp(st[i].booking, LEGS[i].payload) == 0,
                       "%s holds [%s], want [%s]", LEGS[i].name, st[i].booking,
                       LEGS[i].payload);
    }
    return 1;
}

static void check_booking_ok(const trellis_trans_info_t *info,
                             const svc_state_t st[N_LEGS], example_check_t *ck)
{
    if (!check_forward_only(info, st, ck))
        return;
    for (int i = 0; i < N_LEGS; i++) {
        example_expect(ck,
                       op_is(&info->branches[i], TRELLIS_OP_ACTION,
                             TRELLIS_OP_SUCCEEDED, 1),
                       "%s: action should have succeeded at once",
                       LEGS[i].name);
        example_expect(ck, strcmp(st[i].history, "Book booked") == 0,
                       "%s saw calls \"%s\", want \"Book booked\"",
                       LEGS[i].name, st[i].history);
    }
}

/* Compensations ran from step last down to the flight: each started after
 * the one after it finished. */
static void check_reverse_order(const trellis_trans_info_t *info, int last,
                                example_check_t *ck)
{
    for (int i = 0; i < last; i++) {
        const trellis_op_info_t *early =
            example_find_op(&info->branches[i], TRELLIS_OP_COMPENSATE);
        const trellis_op_info_t *late =
            example_find_op(&info->branches[i + 1], TRELLIS_OP_COMPENSATE);
        if (!early || !late || early->n_attempt_ms == 0)
            continue; /* reported by the per-step checks */
        example_expect(ck, late->finished_ms <= early->attempt_ms[0],
                       "%s was compensated before %s finished compensating",
                       LEGS[i].name, LEGS[i + 1].name);
    }
}

/* Step f (at or before the pivot) refused with reason: the steps before
 * it were cancelled by the numbers their Books gave, its Cancel found
 * nothing (and was handed no number), the steps after it never called. */
static void check_fails_before_pivot(const trellis_trans_info_t *info,
                                     const svc_state_t st[N_LEGS], int f,
                                     const char *reason, example_check_t *ck)
{
    example_expect(ck, info->reason && strstr(info->reason, reason),
                   "TM reason \"%s\" should say \"%s\"",
                   info->reason ? info->reason : "", reason);
    if (!check_tm(info, TRELLIS_TRANS_FAILED, ck))
        return;
    for (int i = 0; i < N_LEGS; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        const char *want_history = i < f    ? "Book booked, Cancel cancelled"
                                   : i == f ? "Book refused, Cancel empty"
                                            : "";
        example_expect(ck, st[i].ok && st[i].n_bookings == 0,
                       "%s should hold nothing, holds %d booking(s)",
                       LEGS[i].name, st[i].n_bookings);
        example_expect(ck, strcmp(st[i].history, want_history) == 0,
                       "%s saw calls \"%s\", want \"%s\"", LEGS[i].name,
                       st[i].history, want_history);
        if (i > f) {
            const trellis_op_info_t *a = example_find_op(b, TRELLIS_OP_ACTION);
            example_expect(ck, !a || a->attempts == 0,
                           "%s: action should not be called", LEGS[i].name);
            continue;
        }
        example_expect(ck,
                       op_is(b, TRELLIS_OP_ACTION,
                             i == f ? TRELLIS_OP_FAILED : TRELLIS_OP_SUCCEEDED,
                             1),
                       "%s: action should have %s at once", LEGS[i].name,
                       i == f ? "failed" : "succeeded");
        example_expect(
            ck, op_is(b, TRELLIS_OP_COMPENSATE, TRELLIS_OP_SUCCEEDED, 1),
            "%s: compensate should have succeeded at once", LEGS[i].name);
        /* The compensation log: Cancel named what Book created. */
        example_expect(ck, strcmp(st[i].cancelled, st[i].booked) == 0,
                       "%s: Cancel was handed booking \"%s\", Book gave "
                       "\"%s\"",
                       LEGS[i].name, st[i].cancelled, st[i].booked);
        example_expect(ck, (i == f) == !*st[i].booked,
                       "%s: Book %s a booking number", LEGS[i].name,
                       *st[i].booked ? "gave" : "gave no");
    }
    check_reverse_order(info, f, ck);
}

static void check_hotel_fails(const trellis_trans_info_t *info,
                              const svc_state_t st[N_LEGS], example_check_t *ck)
{
    check_fails_before_pivot(info, st, 1, "no rooms left", ck);
}

static void check_payment_fails(const trellis_trans_info_t *info,
                                const svc_state_t st[N_LEGS],
                                example_check_t *ck)
{
    check_fails_before_pivot(info, st, PIVOT, "card declined", ck);
}

static void check_car_after_pivot(const trellis_trans_info_t *info,
                                  const svc_state_t st[N_LEGS],
                                  example_check_t *ck)
{
    static const char want[] = "Book refused, Book refused, Book booked";
    if (!check_forward_only(info, st, ck))
        return;
    const trellis_op_info_t *car =
        example_find_op(&info->branches[CAR], TRELLIS_OP_ACTION);
    /* 3: two refusals and the booking (more only if a call timed out). */
    example_expect(ck, car && car->attempts >= 3,
                   "TM: the car's action took %u attempt(s), want 3",
                   car ? car->attempts : 0);
    example_expect(
        ck, car && car->last_error && strstr(car->last_error, "no cars left"),
        "TM: the car's last error \"%s\" should say \"no cars "
        "left\"",
        car && car->last_error ? car->last_error : "");
    example_expect(ck, strncmp(st[CAR].history, want, strlen(want)) == 0,
                   "car saw calls \"%s\", want \"%s\"", st[CAR].history, want);
}

static void check_crash_after_pivot(const trellis_trans_info_t *info,
                                    const svc_state_t st[N_LEGS],
                                    example_check_t *ck)
{
    if (!check_forward_only(info, st, ck))
        return;
    /* The held call's answer went to the trellisd that was killed: the
     * restarted one must have called Book again to learn it. */
    example_expect(ck,
                   !strncmp(st[CAR].history, "Book held", 9) &&
                       strstr(st[CAR].history + 9, "Book"),
                   "car saw calls \"%s\", want \"Book held\" and then at "
                   "least one more Book",
                   st[CAR].history);
}

/* ---- crash-after-pivot ----------------------------------------------- */

/* 1 once the car service says its Book of gid is held (within 10 s). */
static int wait_car_held(const env_t *env, const char *gid)
{
    int64_t deadline = harness_mono_ms() + 10000;
    char err[256];
    while (harness_mono_ms() < deadline) {
        char *text = NULL;
        int held = example_call_text(env->svc[CAR], "/trip.v1.Car/State", gid,
                                     &text, err, sizeof err) == 0 &&
                   strstr(text, "effect=held");
        free(text);
        if (held)
            return 1;
        harness_sleep_ms(20);
    }
    return 0;
}

/* Kill -9 trellisd while the car's Book (after the pivot) is held at the
 * service, restart it on the same data dir and port, release the Book. */
static void crash_tm(env_t *env, const char *gid, trellis_trans_status_t status,
                     example_check_t *ck)
{
    char err[256], *text = NULL;
    (void)status;
    if (!example_expect(ck, env->tm_proc != NULL,
                        "crash-after-pivot needs trellisd started here"))
        return;
    if (example_expect(ck, wait_car_held(env, gid),
                       "the car's Book was never held")) {
        printf("   the car's Book is held at the service, the pivot "
               "passed: kill -9 trellisd\n");
        example_expect(ck, harness_server_kill(env->tm_proc) == 0,
                       "trellisd was not running");
        example_expect(ck, harness_server_restart(env->tm_proc) == 0,
                       "trellisd did not restart");
        printf("   trellisd restarted at %s (same data dir); release the "
               "car's Book\n",
               env->tm);
    }
    example_expect(ck,
                   example_call_text(env->svc[CAR], "/trip.v1.Car/Release", gid,
                                     &text, err, sizeof err) == 0,
                   "Release: %s", err);
    free(text);
}

/* ---- listener-down --------------------------------------------------- */

/* Stop the listener (SIGTERM) before the trip is submitted. */
static void stop_listener(env_t *env, example_check_t *ck)
{
    if (!example_expect(ck, env->listener_proc != NULL,
                        "listener-down needs trip-listener started here"))
        return;
    int st = harness_proc_stop(harness_server_proc(env->listener_proc), 5000);
    example_expect(ck, st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                   "trip-listener did not stop cleanly");
    printf("   trip-listener stopped (SIGTERM)\n");
}

/* Query gid until trellisd has tried to tell the listener (within 10 s);
 * the answer (the caller's), or NULL. */
static trellis_trans_info_t *query_telling(env_t *env, const char *gid)
{
    int64_t deadline = harness_mono_ms() + 10000;
    char err[256];
    for (;;) {
        trellis_trans_info_t *info = NULL;
        if (trellis_query(env->client, gid, &info, err, sizeof err) !=
            TRELLIS_OK) {
            printf("   query %s: %s\n", gid, err);
            return NULL;
        }
        const trellis_op_info_t *n = info->n_branches > N_LEGS
                                         ? notify_op(&info->branches[N_LEGS])
                                         : NULL;
        if ((n && n->attempts > 0) || harness_mono_ms() >= deadline)
            return info;
        trellis_trans_info_free(info);
        harness_sleep_ms(50);
    }
}

/* The outcome came while the listener was down: submit answered SUCCEEDED,
 * Query shows the transaction still telling its listener. Then start the
 * listener again on its port; query_final waits for it to be told. */
static void listener_back(env_t *env, const char *gid,
                          trellis_trans_status_t status, example_check_t *ck)
{
    char buf[400];
    example_expect(ck, status == TRELLIS_TRANS_SUCCEEDED,
                   "submit answered %s while the listener was down, want "
                   "succeeded",
                   trellis_trans_status_name(status));
    trellis_trans_info_t *info = query_telling(env, gid);
    if (info) {
        const trellis_op_info_t *n = info->n_branches > N_LEGS
                                         ? notify_op(&info->branches[N_LEGS])
                                         : NULL;
        printf("   TM while the listener is down: %s; listener branch %s: "
               "notify %s\n",
               trellis_trans_status_name(info->status),
               info->n_branches > N_LEGS ? info->branches[N_LEGS].branch_id
                                         : "none",
               op_summary(n, buf, sizeof buf));
        example_expect(ck, info->status == TRELLIS_TRANS_SUBMITTED,
                       "TM status %s while the listener is down, want "
                       "submitted (telling its listener)",
                       trellis_trans_status_name(info->status));
        example_expect(ck,
                       n && n->status == TRELLIS_OP_PENDING && n->attempts > 0,
                       "TM: the notify should be pending and tried");
        trellis_trans_info_free(info);
    } else {
        example_expect(ck, 0, "Query failed while the listener was down");
    }
    if (example_expect(ck, harness_server_restart(env->listener_proc) == 0,
                       "trip-listener did not restart"))
        printf("   trip-listener started again at %s (same port)\n",
               env->listener);
}

static const scenario_t SCENARIOS[] = {
    {"booking-ok", "every step succeeds", -1, "", NULL, 0, NULL,
     check_booking_ok},
    {"hotel-fails",
     "the hotel has no rooms left, before the pivot: the flight is "
     "cancelled",
     1, "fail", NULL, 0, NULL, check_hotel_fails},
    {"payment-fails",
     "the card is declined, the pivot fails: hotel and flight are "
     "cancelled",
     PIVOT, "fail", NULL, 0, NULL, check_payment_fails},
    {"car-after-pivot",
     "the car company has no cars left twice, after the pivot: retried "
     "until it books, nothing cancelled",
     CAR, "refuse=2", NULL, 0, NULL, check_car_after_pivot},
    {"crash-after-pivot",
     "trellisd is killed while the car's Book (after the pivot) is in "
     "flight, then restarted: booked once, nothing cancelled",
     CAR, "hold", NULL, 1, crash_tm, check_crash_after_pivot},
    {"listener-down",
     "the listener is down: the trip still succeeds at once, and the "
     "listener is told once it is back",
     -1, "", stop_listener, 0, listener_back, check_booking_ok},
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])

/* Submit the saga and wait for the outcome (with sc->during run between,
 * when it has one). When submit fails (a service that never answers keeps
 * the saga going past the call's deadline), the TM's view as it stands,
 * for the report; NULL if there is none. */
static trellis_trans_info_t *submit(env_t *env, const scenario_t *sc,
                                    const char *gid, example_check_t *ck)
{
    char err[256], reason[1100] = "";
    trellis_trans_status_t status = TRELLIS_TRANS_UNSPECIFIED;
    trellis_saga_t *s =
        build_saga(env, gid, sc->mark_leg, sc->mark, !sc->no_wait);
    if (!s)
        return NULL;
    if (sc->before)
        sc->before(env, ck);
    int64_t t0 = harness_mono_ms();
    trellis_rc_t rc = trellis_saga_submit(env->client, s, &status, reason,
                                          sizeof reason, err, sizeof err);
    trellis_saga_free(s);
    if (rc != TRELLIS_OK) {
        trellis_trans_info_t *info = NULL;
        printf("   submit: rc %d: %s\n", rc, err);
        trellis_query(env->client, gid, &info, err, sizeof err);
        return info;
    }
    printf("   submitted; the TM answered %s after %lld ms%s%s\n",
           trellis_trans_status_name(status),
           (long long)(harness_mono_ms() - t0), reason[0] ? ": " : "", reason);
    if (sc->during)
        sc->during(env, gid, status, ck);
    return query_final(env, gid);
}

static int run_scenario(env_t *env, const scenario_t *sc)
{
    char gid[64], err[256];
    example_check_t ck = {0};
    printf("\n== scenario %s: %s\n", sc->name, sc->story);
    if (trellis_new_gid(env->client, gid, sizeof gid, err, sizeof err) !=
        TRELLIS_OK) {
        printf("   new gid: %s\n", err);
        ck.failed++;
    }
    trellis_trans_info_t *info = ck.failed ? NULL : submit(env, sc, gid, &ck);
    /* A scenario that stopped the listener and failed before starting it
     * again: start it for the next ones. */
    if (env->listener_proc &&
        !harness_proc_running(harness_server_proc(env->listener_proc)) &&
        harness_server_restart(env->listener_proc) != 0)
        ck.failed++;
    if (info) {
        svc_state_t st[N_LEGS];
        print_tm_report(info);
        trip_print_said(env, gid);
        trip_read_states(env, gid, st);
        listener_state_t ls = trip_read_listener(env, gid);
        sc->check(info, st, &ck);
        check_listener(info, &ls, &ck);
        trellis_trans_info_free(info);
    } else {
        ck.failed++;
    }
    example_result("saga", sc->name, ck.failed);
    return ck.failed ? -1 : 0;
}

/* ---- main ------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr, "usage: example-saga [--scenario NAME] [--tm HOST:PORT] "
                    "[--flight|--hotel|--payment|--car|--email|--listener "
                    "HOST:PORT]\n"
                    "scenarios:");
    for (size_t s = 0; s < N_SCENARIOS; s++)
        fprintf(stderr, " %s", SCENARIOS[s].name);
    fprintf(stderr, "\n");
    return 2;
}

/* The address that option opt sets, or NULL if opt is not one. */
static char *addr_option(env_t *env, const char *opt)
{
    if (!strcmp(opt, "--tm"))
        return env->tm;
    if (!strcmp(opt, "--listener"))
        return env->listener;
    for (int l = 0; l < N_LEGS; l++)
        if (!strncmp(opt, "--", 2) && !strcmp(opt + 2, LEGS[l].name))
            return env->svc[l];
    return NULL;
}

static int parse_args(int argc, char **argv, env_t *env, const char **only)
{
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *dst = addr_option(env, argv[i]);
        if (!v)
            return -1;
        if (!strcmp(argv[i], "--scenario"))
            *only = v;
        else if (dst)
            snprintf(dst, ADDR_MAX, "%s", v);
        else
            return -1;
    }
    if (!**only)
        return 0; /* all of them */
    for (size_t s = 0; s < N_SCENARIOS; s++)
        if (!strcmp(*only, SCENARIOS[s].name))
            return 0;
    return -1;
}

static void report_not_run(const char *only)
{
    for (size_t s = 0; s < N_SCENARIOS; s++)
        if (!*only || !strcmp(only, SCENARIOS[s].name))
            example_result("saga", SCENARIOS[s].name, 1);
}

int main(int argc, char **argv)
{
    env_t env = {0};
    const char *only = "";
    if (parse_args(argc, argv, &env, &only) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    int failed = 0;
    if (setup(&env) != 0) {
        printf("example-saga: could not start; no scenario ran\n");
        report_not_run(only);
        failed = 1;
    } else {
        for (size_t s = 0; s < N_SCENARIOS; s++)
            if (!*only || !strcmp(only, SCENARIOS[s].name))
                failed |= run_scenario(&env, &SCENARIOS[s]) != 0;
    }
    trellis_client_free(env.client);
    if (env.procs.h) {
        failed |= example_procs_stop(&env.procs) != 0;
        harness_free(env.procs.h, !failed);
    }
    return failed ? 1 : 0;
}
