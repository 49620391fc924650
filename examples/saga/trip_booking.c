/*
 * example-saga: the Saga example's driver. A trip is a flight, a hotel and a
 * car, booked at three services (trip-service, run three times); trellisd
 * runs the saga flight -> hotel -> car and, when a step fails for a business
 * reason, cancels what was booked, in reverse order.
 *
 *   example-saga [--scenario NAME] [--tm HOST:PORT] [--flight HOST:PORT]
 *                [--hotel HOST:PORT] [--car HOST:PORT]
 *
 * It owns the scenarios, their checks and the processes it started. By
 * default it starts trellisd and the three services itself, with the test
 * harness (scratch dir ${build}/test-data/example-saga-<pid>, holding the
 * TM's data dir and every process's log; removed when all scenarios passed,
 * kept and printed otherwise), and stops them at the end. An address given
 * on the command line is used instead of starting that process.
 *
 * Scenarios (all by default, or one with --scenario):
 *   booking-ok  every step succeeds: each service holds the booking;
 *   car-fails   the car step answers "no cars left": the TM cancels hotel
 *               and flight (and the car, a no-op), ends FAILED with that
 *               reason, and no service holds anything; each Cancel named
 *               the booking number its Book replied (trellisd's
 *               compensation log), and the car's Cancel was handed none.
 * Each scenario prints its steps, the TM's outcome and per-step report, the
 * services' own log lines about it merged in time order (when it started
 * them), and each service's final state from State, then exactly one line
 *   example=saga scenario=<name> result=ok|FAIL
 * The exit status is 1 if any scenario failed or a process it started did
 * not exit cleanly when stopped (a sanitizer report, a crash), 2 on a usage
 * error.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_driver.h"
#include "harness.h"
#include "trellis/trellis.h"

#define N_LEGS 3
#define ADDR_MAX 128
/* Quick retries, for trellisd when started here and for every saga. */
#define RETRY_INTERVAL_MS 100
#define REQUEST_TIMEOUT_MS 2000
#define STR_(x) #x
#define STR(x) STR_(x)
#define CALL_TIMEOUT_MS 20000
#define FINAL_TIMEOUT_MS 20000

/* The saga's steps, in order. */
static const struct {
    const char *name;    /* trip-service --name */
    const char *service; /* trip.v1.<service> */
    const char *payload; /* see trip_service.c for the format */
} LEGS[N_LEGS] = {
    {"flight", "Flight", "trip=T42 who=alice seats=2"},
    {"hotel", "Hotel", "trip=T42 who=alice rooms=1 nights=3"},
    {"car", "Car", "trip=T42 who=alice cars=1 days=3"},
};

typedef struct {
    example_procs_t procs;      /* procs.h NULL: nothing started here */
    char tm[ADDR_MAX];          /* trellisd, host:port */
    char svc[N_LEGS][ADDR_MAX]; /* the services, host:port */
    char log[N_LEGS][PATH_MAX]; /* a service's log when started here */
    trellis_client_t *client;
} env_t;

/* ---- starting the processes ------------------------------------------ */

static int start_tm(env_t *env)
{
    const char *args[] = {"--retry-interval-ms", STR(RETRY_INTERVAL_MS),
                          "--request-timeout-ms", STR(REQUEST_TIMEOUT_MS),
                          NULL};
    return example_start_tm(&env->procs, args, env->tm, sizeof env->tm) ? 0
                                                                        : -1;
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

/* Start what has no address yet, then connect to the TM. */
static int setup(env_t *env)
{
    int missing = !env->tm[0];
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

/* The saga for gid; the step fail_leg (-1: none) gets the "fail" marker. */
static trellis_saga_t *build_saga(const env_t *env, const char *gid,
                                  int fail_leg)
{
    char err[256], book[300], cancel[300], payload[256];
    trellis_saga_t *s = NULL;
    if (trellis_saga_new(gid, &s, err, sizeof err) != TRELLIS_OK) {
        printf("   saga_new: %s\n", err);
        return NULL;
    }
    for (int i = 0; i < N_LEGS; i++) {
        snprintf(payload, sizeof payload, "%s%s", LEGS[i].payload,
                 i == fail_leg ? " fail" : "");
        target(env, i, "Book", book, sizeof book);
        target(env, i, "Cancel", cancel, sizeof cancel);
        printf("   step %d  %-6s  %s/trip.v1.%s/{Book,Cancel}  \"%s\"\n", i + 1,
               LEGS[i].name, env->svc[i], LEGS[i].service, payload);
        if (trellis_saga_add_step(s, book, cancel, payload, strlen(payload),
                                  err, sizeof err) < 0) {
            printf("   saga_add_step: %s\n", err);
            trellis_saga_free(s);
            return NULL;
        }
    }
    trellis_options_t o = {.wait_result = 1,
                           .retry_interval_ms = RETRY_INTERVAL_MS,
                           .request_timeout_ms = REQUEST_TIMEOUT_MS};
    trellis_saga_set_options(s, &o);
    return s;
}

/* Query until the transaction is final (submit waited already, so this
 * normally returns at once). NULL on error or timeout. */
static trellis_trans_info_t *query_final(env_t *env, const char *gid)
{
    int64_t deadline = harness_mono_ms() + FINAL_TIMEOUT_MS;
    char err[256];
    for (;;) {
        trellis_trans_info_t *info = NULL;
        trellis_rc_t rc =
            trellis_query(env->client, gid, &info, err, sizeof err);
        if (rc != TRELLIS_OK) {
            printf("   query %s: rc %d: %s\n", gid, rc, err);
            return NULL;
        }
        if (example_is_final(info->status) || harness_mono_ms() >= deadline)
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

static void print_tm_report(const trellis_trans_info_t *info)
{
    example_print_tm_status(info);
    for (size_t i = 0; i < info->n_branches; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        char a[400], c[400];
        printf(
            "   TM: step %zu %-6s branch %s: action %s; compensate %s\n", i + 1,
            i < N_LEGS ? LEGS[i].name : "?", b->branch_id,
            op_summary(example_find_op(b, TRELLIS_OP_ACTION), a, sizeof a),
            op_summary(example_find_op(b, TRELLIS_OP_COMPENSATE), c, sizeof c));
    }
}

/* ---- the services' state --------------------------------------------- */

typedef struct {
    int ok; /* State answered */
    int n_bookings;
    char booking[256];  /* the last booking's text */
    char history[256];  /* "Book booked, Cancel cancelled" */
    char booked[32];    /* the number Book gave ("" none) */
    char cancelled[32]; /* the number Cancel was handed ("" none) */
} svc_state_t;

/* The value of " key=" in line up to the next space, into out. */
static void field(const char *line, const char *key, char *out, size_t len)
{
    char want[32];
    snprintf(want, sizeof want, " %s=", key);
    const char *p = strstr(line, want);
    out[0] = '\0';
    if (p) {
        p += strlen(want);
        snprintf(out, len, "%.*s", (int)strcspn(p, " \n"), p);
    }
}

static void parse_state_line(const char *line, svc_state_t *st)
{
    char call[16], effect[16];
    if (strncmp(line, "event ", 6) == 0) {
        size_t used = strlen(st->history);
        field(line, "call", call, sizeof call);
        field(line, "effect", effect, sizeof effect);
        snprintf(st->history + used, sizeof st->history - used, "%s%s %s",
                 used ? ", " : "", call, effect);
        if (!strcmp(call, "Book") && !strcmp(effect, "booked"))
            field(line, "number", st->booked, sizeof st->booked);
        else if (!strcmp(call, "Cancel"))
            field(line, "number", st->cancelled, sizeof st->cancelled);
    } else if (strncmp(line, "booking ", 8) == 0) {
        /* "booking gid=G branch=B <text>": the text after branch= */
        const char *p = strstr(line, " branch=");
        p = p ? strchr(p + 1, ' ') : NULL;
        st->n_bookings++;
        snprintf(st->booking, sizeof st->booking, "%s", p ? p + 1 : "");
    }
}

/* Ask leg's service what it holds for gid. */
static svc_state_t read_state(const env_t *env, int leg, const char *gid)
{
    svc_state_t st = {0};
    char method[64], err[256];
    uint8_t *reply = NULL;
    size_t len = 0;
    snprintf(method, sizeof method, "/trip.v1.%s/State", LEGS[leg].service);
    trellis_rc_t rc =
        trellis_call_unary(env->svc[leg], method, gid, strlen(gid), NULL, NULL,
                           0, 5000, &reply, &len, err, sizeof err);
    if (rc != TRELLIS_OK) {
        printf("   %s: State failed: rc %d: %s\n", LEGS[leg].name, rc, err);
        return st;
    }
    st.ok = 1;
    char *text = malloc(len + 1);
    if (!text) {
        free(reply);
        st.ok = 0;
        return st;
    }
    memcpy(text, reply ? (const char *)reply : "", len);
    text[len] = '\0';
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save))
        parse_state_line(l, &st);
    free(text);
    free(reply);
    return st;
}

/* ---- what the services printed -------------------------------------- */

/* The services' own lines about gid, merged in time order. Only for
 * services started here: their logs are ours to read. */
static void print_said(const env_t *env, const char *gid)
{
    example_print_said(env->log, N_LEGS, gid, "services");
}

static void read_states(const env_t *env, const char *gid,
                        svc_state_t st[N_LEGS])
{
    for (int i = 0; i < N_LEGS; i++) {
        st[i] = read_state(env, i, gid);
        if (!st[i].ok)
            continue;
        printf("   %-6s holds %s%s%s  (calls: %s)\n", LEGS[i].name,
               st[i].n_bookings ? "booking [" : "nothing",
               st[i].n_bookings ? st[i].booking : "",
               st[i].n_bookings ? "]" : "",
               st[i].history[0] ? st[i].history : "none");
    }
}

/* ---- scenarios ------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *story;
    int fail_leg; /* the step that fails, -1 for none */
    void (*check)(const trellis_trans_info_t *info,
                  const svc_state_t st[N_LEGS], example_check_t *ck);
} scenario_t;

static int op_is(const trellis_branch_info_t *b, trellis_op_t op,
                 trellis_op_status_t want, uint32_t attempts)
{
    const trellis_op_info_t *o = example_find_op(b, op);
    return o && o->status == want && o->attempts == attempts;
}

static void check_booking_ok(const trellis_trans_info_t *info,
                             const svc_state_t st[N_LEGS], example_check_t *ck)
{
    example_expect(ck, info->status == TRELLIS_TRANS_SUCCEEDED,
                   "TM status is %s, want succeeded",
                   trellis_trans_status_name(info->status));
    if (!example_expect(ck, info->n_branches == N_LEGS,
                        "TM has %zu steps, want %d", info->n_branches, N_LEGS))
        return;
    for (int i = 0; i < N_LEGS; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        example_expect(ck, op_is(b, TRELLIS_OP_ACTION, TRELLIS_OP_SUCCEEDED, 1),
                       "%s: action should have succeeded at once",
                       LEGS[i].name);
        const trellis_op_info_t *c = example_find_op(b, TRELLIS_OP_COMPENSATE);
        example_expect(ck, c && c->attempts == 0,
                       "%s: compensate should not run", LEGS[i].name);
        example_expect(ck, st[i].ok && st[i].n_bookings == 1,
                       "%s should hold exactly one booking, holds %d",
                       LEGS[i].name, st[i].n_bookings);
        example_expect(ck, strcmp(st[i].booking, LEGS[i].payload) == 0,
                       "%s holds [%s], want [%s]", LEGS[i].name, st[i].booking,
                       LEGS[i].payload);
        example_expect(ck, strcmp(st[i].history, "Book booked") == 0,
                       "%s saw calls \"%s\", want \"Book booked\"",
                       LEGS[i].name, st[i].history);
    }
}

/* Compensations ran car, then hotel, then flight: each started after the
 * one before it finished. */
static void check_reverse_order(const trellis_trans_info_t *info,
                                example_check_t *ck)
{
    for (int i = 0; i + 1 < N_LEGS; i++) {
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

static void check_car_fails(const trellis_trans_info_t *info,
                            const svc_state_t st[N_LEGS], example_check_t *ck)
{
    static const char *const want_history[N_LEGS] = {
        "Book booked, Cancel cancelled", "Book booked, Cancel cancelled",
        "Book refused, Cancel empty"};
    example_expect(ck, info->status == TRELLIS_TRANS_FAILED,
                   "TM status is %s, want failed",
                   trellis_trans_status_name(info->status));
    example_expect(ck, info->reason && strstr(info->reason, "no cars left"),
                   "TM reason \"%s\" should say \"no cars left\"",
                   info->reason ? info->reason : "");
    if (!example_expect(ck, info->n_branches == N_LEGS,
                        "TM has %zu steps, want %d", info->n_branches, N_LEGS))
        return;
    for (int i = 0; i < N_LEGS; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        trellis_op_status_t want =
            i == N_LEGS - 1 ? TRELLIS_OP_FAILED : TRELLIS_OP_SUCCEEDED;
        example_expect(ck, op_is(b, TRELLIS_OP_ACTION, want, 1),
                       "%s: action should have %s at once", LEGS[i].name,
                       trellis_op_status_name(want));
        example_expect(
            ck, op_is(b, TRELLIS_OP_COMPENSATE, TRELLIS_OP_SUCCEEDED, 1),
            "%s: compensate should have succeeded at once", LEGS[i].name);
        example_expect(ck, st[i].ok && st[i].n_bookings == 0,
                       "%s should hold nothing, holds %d booking(s)",
                       LEGS[i].name, st[i].n_bookings);
        example_expect(ck, strcmp(st[i].history, want_history[i]) == 0,
                       "%s saw calls \"%s\", want \"%s\"", LEGS[i].name,
                       st[i].history, want_history[i]);
        /* The compensation log: Cancel named what Book created. */
        example_expect(ck, strcmp(st[i].cancelled, st[i].booked) == 0,
                       "%s: Cancel was handed booking \"%s\", Book gave "
                       "\"%s\"",
                       LEGS[i].name, st[i].cancelled, st[i].booked);
        example_expect(ck, (i == N_LEGS - 1) == !*st[i].booked,
                       "%s: Book %s a booking number", LEGS[i].name,
                       *st[i].booked ? "gave" : "gave no");
    }
    check_reverse_order(info, ck);
}

static const scenario_t SCENARIOS[] = {
    {"booking-ok", "flight -> hotel -> car, every step succeeds", -1,
     check_booking_ok},
    {"car-fails",
     "flight -> hotel -> car, the car company has no cars left: "
     "the booked steps are cancelled",
     N_LEGS - 1, check_car_fails},
};
#define N_SCENARIOS (sizeof SCENARIOS / sizeof SCENARIOS[0])

/* Submit the saga and wait for the outcome. When submit fails (a service
 * that never answers keeps the saga going past the call's deadline), the
 * TM's view as it stands, for the report; NULL if there is none. */
static trellis_trans_info_t *submit(env_t *env, const scenario_t *sc,
                                    const char *gid)
{
    char err[256], reason[1100] = "";
    trellis_trans_status_t status = TRELLIS_TRANS_UNSPECIFIED;
    trellis_saga_t *s = build_saga(env, gid, sc->fail_leg);
    if (!s)
        return NULL;
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
    trellis_trans_info_t *info = ck.failed ? NULL : submit(env, sc, gid);
    if (info) {
        svc_state_t st[N_LEGS];
        print_tm_report(info);
        print_said(env, gid);
        read_states(env, gid, st);
        sc->check(info, st, &ck);
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
    fprintf(stderr, "usage: example-saga [--scenario booking-ok|car-fails] "
                    "[--tm HOST:PORT] [--flight HOST:PORT] "
                    "[--hotel HOST:PORT] [--car HOST:PORT]\n");
    return 2;
}

/* The address that option opt sets, or NULL if opt is not one. */
static char *addr_option(env_t *env, const char *opt)
{
    if (!strcmp(opt, "--tm"))
        return env->tm;
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
