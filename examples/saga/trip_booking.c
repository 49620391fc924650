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
 *               reason, and no service holds anything.
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
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "trellis.h"

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
    harness_t *h;               /* NULL when nothing was started here */
    char tm[ADDR_MAX];          /* trellisd, host:port */
    char svc[N_LEGS][ADDR_MAX]; /* the services, host:port */
    char log[N_LEGS][PATH_MAX]; /* a service's log when started here */
    harness_server_t *started[N_LEGS + 1]; /* what setup started */
    const char *started_name[N_LEGS + 1];
    int n_started;
    trellis_client_t *client;
} env_t;

/* ---- checks ---------------------------------------------------------- */

typedef struct {
    int failed;
} check_t;

/* Count a failed expectation and say which. Returns cond. */
static int expect(check_t *ck, int cond, const char *fmt, ...)
{
    if (cond)
        return 1;
    va_list ap;
    printf("   CHECK FAILED: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    ck->failed++;
    return 0;
}

/* ---- starting the processes ------------------------------------------ */

/* trip-service next to this binary, else in ${build}/bin. */
static void service_bin(char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if (snprintf(buf, len, "%s/trip-service", self) < (int)len &&
                access(buf, X_OK) == 0)
                return;
        }
    }
    snprintf(buf, len, "%s/bin/trip-service", harness_build_dir());
}

static int start_tm(env_t *env)
{
    const char *args[] = {"--retry-interval-ms", STR(RETRY_INTERVAL_MS),
                          "--request-timeout-ms", STR(REQUEST_TIMEOUT_MS),
                          NULL};
    harness_server_t *s = harness_tm_start(env->h, "trellisd", args);
    if (!s)
        return -1;
    env->started_name[env->n_started] = "trellisd";
    env->started[env->n_started++] = s;
    snprintf(env->tm, sizeof env->tm, "%s", harness_server_addr(s));
    printf("started trellisd at %s (data dir %s)\n", env->tm,
           harness_server_data_dir(s));
    return 0;
}

static int start_service(env_t *env, int leg)
{
    char bin[PATH_MAX];
    const char *args[] = {"--name", LEGS[leg].name, NULL};
    service_bin(bin, sizeof bin);
    harness_server_t *s =
        harness_server_start(env->h, LEGS[leg].name, bin, args);
    if (!s)
        return -1;
    env->started_name[env->n_started] = LEGS[leg].name;
    env->started[env->n_started++] = s;
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
        if (!(env->h = harness_new("example-saga")))
            return -1;
        printf("scratch dir %s (logs of every process)\n", harness_dir(env->h));
        if (!env->tm[0] && start_tm(env) != 0)
            return -1;
        for (int i = 0; i < N_LEGS; i++)
            if (!env->svc[i][0] && start_service(env, i) != 0)
                return -1;
    }
    char err[256];
    if (trellis_client_new(env->tm, CALL_TIMEOUT_MS, &env->client, err,
                           sizeof err) != TRELLIS_OK) {
        fprintf(stderr, "example-saga: client for %s: %s\n", env->tm, err);
        return -1;
    }
    return 0;
}

/* Stop what setup started (SIGTERM), services first. Each must exit 0: a
 * crash or a sanitizer report at exit fails the example. 0 or -1. */
static int stop_started(env_t *env)
{
    int rc = 0;
    for (int i = env->n_started - 1; i >= 0; i--) {
        harness_proc_t *p = harness_server_proc(env->started[i]);
        int st = harness_proc_stop(p, 5000);
        if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            continue;
        if (st != -1 && WIFEXITED(st))
            printf("example-saga: %s exited with status %d\n",
                   env->started_name[i], WEXITSTATUS(st));
        else if (st != -1 && WIFSIGNALED(st))
            printf("example-saga: %s was killed by signal %d\n",
                   env->started_name[i], WTERMSIG(st));
        else
            printf("example-saga: %s had already exited\n",
                   env->started_name[i]);
        harness_proc_log_tail(p, 30);
        rc = -1;
    }
    return rc;
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

static int is_final(trellis_trans_status_t st)
{
    return st == TRELLIS_TRANS_SUCCEEDED || st == TRELLIS_TRANS_FAILED;
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
        if (is_final(info->status) || harness_mono_ms() >= deadline)
            return info;
        trellis_trans_info_free(info);
        harness_sleep_ms(50);
    }
}

static const trellis_op_info_t *find_op(const trellis_branch_info_t *b,
                                        trellis_op_t op)
{
    for (size_t i = 0; i < b->n_ops; i++)
        if (b->ops[i].op == op)
            return &b->ops[i];
    return NULL;
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
    printf("   TM: gid %s is %s%s%s\n", info->gid,
           trellis_trans_status_name(info->status),
           info->reason && *info->reason ? ", reason: " : "",
           info->reason ? info->reason : "");
    for (size_t i = 0; i < info->n_branches; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        char a[400], c[400];
        printf("   TM: step %zu %-6s branch %s: action %s; compensate %s\n",
               i + 1, i < N_LEGS ? LEGS[i].name : "?", b->branch_id,
               op_summary(find_op(b, TRELLIS_OP_ACTION), a, sizeof a),
               op_summary(find_op(b, TRELLIS_OP_COMPENSATE), c, sizeof c));
    }
}

/* ---- the services' state --------------------------------------------- */

typedef struct {
    int ok; /* State answered */
    int n_bookings;
    char booking[256]; /* the last booking's text */
    char history[256]; /* "Book booked, Cancel cancelled" */
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

#define MAX_SAID 64

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append the lines of log that mention "gid=<gid> " to lines[*n]. */
static void collect_said(const char *log, const char *gid, char **lines,
                         size_t *n)
{
    char want[96], buf[1024];
    FILE *f = fopen(log, "r");
    if (!f)
        return;
    snprintf(want, sizeof want, "gid=%s ", gid);
    while (*n < MAX_SAID && fgets(buf, sizeof buf, f))
        if (strstr(buf, want) && (lines[*n] = strdup(buf)))
            (*n)++;
    fclose(f);
}

/* The services' own lines about gid, merged in time order (each starts
 * with the time of day to the microsecond; a run across midnight would
 * print out of order, nothing worse). Only for services started here:
 * their logs are ours to read. */
static void print_said(const env_t *env, const char *gid)
{
    char *lines[MAX_SAID];
    size_t n = 0;
    for (int i = 0; i < N_LEGS; i++)
        if (env->log[i][0])
            collect_said(env->log[i], gid, lines, &n);
    if (n == 0)
        return;
    qsort(lines, n, sizeof lines[0], cmp_lines);
    printf("   the services said, in time order:\n");
    for (size_t i = 0; i < n; i++) {
        printf("     %s", lines[i]);
        free(lines[i]);
    }
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
                  const svc_state_t st[N_LEGS], check_t *ck);
} scenario_t;

static int op_is(const trellis_branch_info_t *b, trellis_op_t op,
                 trellis_op_status_t want, uint32_t attempts)
{
    const trellis_op_info_t *o = find_op(b, op);
    return o && o->status == want && o->attempts == attempts;
}

static void check_booking_ok(const trellis_trans_info_t *info,
                             const svc_state_t st[N_LEGS], check_t *ck)
{
    expect(ck, info->status == TRELLIS_TRANS_SUCCEEDED,
           "TM status is %s, want succeeded",
           trellis_trans_status_name(info->status));
    if (!expect(ck, info->n_branches == N_LEGS, "TM has %zu steps, want %d",
                info->n_branches, N_LEGS))
        return;
    for (int i = 0; i < N_LEGS; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        expect(ck, op_is(b, TRELLIS_OP_ACTION, TRELLIS_OP_SUCCEEDED, 1),
               "%s: action should have succeeded at once", LEGS[i].name);
        const trellis_op_info_t *c = find_op(b, TRELLIS_OP_COMPENSATE);
        expect(ck, c && c->attempts == 0, "%s: compensate should not run",
               LEGS[i].name);
        expect(ck, st[i].ok && st[i].n_bookings == 1,
               "%s should hold exactly one booking, holds %d", LEGS[i].name,
               st[i].n_bookings);
        expect(ck, strcmp(st[i].booking, LEGS[i].payload) == 0,
               "%s holds [%s], want [%s]", LEGS[i].name, st[i].booking,
               LEGS[i].payload);
        expect(ck, strcmp(st[i].history, "Book booked") == 0,
               "%s saw calls \"%s\", want \"Book booked\"", LEGS[i].name,
               st[i].history);
    }
}

/* Compensations ran car, then hotel, then flight: each started after the
 * one before it finished. */
static void check_reverse_order(const trellis_trans_info_t *info, check_t *ck)
{
    for (int i = 0; i + 1 < N_LEGS; i++) {
        const trellis_op_info_t *early =
            find_op(&info->branches[i], TRELLIS_OP_COMPENSATE);
        const trellis_op_info_t *late =
            find_op(&info->branches[i + 1], TRELLIS_OP_COMPENSATE);
        if (!early || !late || early->n_attempt_ms == 0)
            continue; /* reported by the per-step checks */
        expect(ck, late->finished_ms <= early->attempt_ms[0],
               "%s was compensated before %s finished compensating",
               LEGS[i].name, LEGS[i + 1].name);
    }
}

static void check_car_fails(const trellis_trans_info_t *info,
                            const svc_state_t st[N_LEGS], check_t *ck)
{
    static const char *const want_history[N_LEGS] = {
        "Book booked, Cancel cancelled", "Book booked, Cancel cancelled",
        "Book refused, Cancel empty"};
    expect(ck, info->status == TRELLIS_TRANS_FAILED,
           "TM status is %s, want failed",
           trellis_trans_status_name(info->status));
    expect(ck, info->reason && strstr(info->reason, "no cars left"),
           "TM reason \"%s\" should say \"no cars left\"",
           info->reason ? info->reason : "");
    if (!expect(ck, info->n_branches == N_LEGS, "TM has %zu steps, want %d",
                info->n_branches, N_LEGS))
        return;
    for (int i = 0; i < N_LEGS; i++) {
        const trellis_branch_info_t *b = &info->branches[i];
        trellis_op_status_t want =
            i == N_LEGS - 1 ? TRELLIS_OP_FAILED : TRELLIS_OP_SUCCEEDED;
        expect(ck, op_is(b, TRELLIS_OP_ACTION, want, 1),
               "%s: action should have %s at once", LEGS[i].name,
               trellis_op_status_name(want));
        expect(ck, op_is(b, TRELLIS_OP_COMPENSATE, TRELLIS_OP_SUCCEEDED, 1),
               "%s: compensate should have succeeded at once", LEGS[i].name);
        expect(ck, st[i].ok && st[i].n_bookings == 0,
               "%s should hold nothing, holds %d booking(s)", LEGS[i].name,
               st[i].n_bookings);
        expect(ck, strcmp(st[i].history, want_history[i]) == 0,
               "%s saw calls \"%s\", want \"%s\"", LEGS[i].name, st[i].history,
               want_history[i]);
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
    check_t ck = {0};
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
    printf("example=saga scenario=%s result=%s\n", sc->name,
           ck.failed ? "FAIL" : "ok");
    fflush(stdout);
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
            printf("example=saga scenario=%s result=FAIL\n", SCENARIOS[s].name);
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
    if (env.h) {
        failed |= stop_started(&env) != 0;
        harness_free(env.h, !failed);
    }
    return failed ? 1 : 0;
}
