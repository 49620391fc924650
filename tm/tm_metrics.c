/*
 * tm_metrics: the process-wide metric cells (C11 atomics) and their
 * Prometheus text exposition (see tm_metrics.h for the rules).
 *
 * Owns: every trellis_* metric's storage, bucket layout, names and HELP
 * text. Serving the text over HTTP is tm_metrics_http.c's job; this file
 * does no I/O, so it is unit-testable without a socket.
 *
 * Relaxed atomics everywhere: a metric orders nothing, it only counts.
 */
#include "tm_metrics.h"

#include "tm_kind.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- cells --------------------------------------------------------------- */

#define HIST_MAX_BOUNDS 16

/* A fixed-bucket histogram: counts[i] holds observations <= bounds[i] (and
 * > bounds[i-1]); counts[n_bounds] the rest (+Inf). */
typedef struct {
    const uint64_t *bounds; /* ascending, in the observed unit */
    size_t n_bounds;
    atomic_uint_fast64_t counts[HIST_MAX_BOUNDS + 1];
    atomic_uint_fast64_t sum;
} hist_t;

/* The mode label of a finished transaction: the kind of all its branches
 * (the index of the kind in tm_kind.h's table), "hybrid" when they are of
 * several kinds, "none" without branches; a workflow is "workflow" and a
 * message "msg", after its head (the head kind's trans_type, else name). */
enum { MODE_HYBRID = TM_KINDS_MAX, MODE_NONE, N_MODES };

static const char *mode_label(int i)
{
    if (i == MODE_HYBRID)
        return "hybrid";
    if (i == MODE_NONE)
        return "none";
    const tm_kind_t *k = tm_kind_at((size_t)i);
    return k->trans_type ? k->trans_type : k->name;
}

/* A message step's kind is never a transaction's mode (a message is
 * labelled by its head, "msg"), nor a completion or branch listener's
 * (they ride along any transaction), so they get no series of their own. */
static int mode_shown(int i)
{
    if (i >= MODE_HYBRID)
        return 1;
    if ((size_t)i >= tm_kind_count())
        return 0;
    const tm_kind_t *k = tm_kind_at((size_t)i);
    return k->place != TM_PLACE_MESSAGE && !k->after_outcome;
}

/* A listener's branch says nothing about the transaction's mode. */
static int counts_for_mode(const tm_branch_t *b)
{
    const tm_kind_t *k = tm_kind_find(b->mode);
    return !k || !k->after_outcome;
}

enum { OUTCOME_SUCCEEDED, OUTCOME_FAILED, N_OUTCOMES };
static const char *const outcome_names[N_OUTCOMES] = {"succeeded", "failed"};

static const char *const result_names[TM_METRICS_CALL_RESULTS] = {
    "ok", "failure", "ongoing", "unknown"};

/* Op kinds are 1..TM_OP_KINDS-1 (tm_op_kind_t); index 0 is unused. */
#define N_KINDS TM_OP_KINDS
_Static_assert(N_KINDS == 12, "one CALL_HIST per op kind below");

/* Latency in microseconds: 0.25 ms .. 10 s. */
static const uint64_t call_bounds_us[] = {
    250,    500,    1000,   2500,    5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
/* Group-commit latency in microseconds: 0.1 ms .. 1 s. */
static const uint64_t commit_bounds_us[] = {100,   250,    500,    1000,
                                            2500,  5000,   10000,  25000,
                                            50000, 100000, 250000, 1000000};
/* Writes per group commit. */
static const uint64_t batch_bounds[] = {1,  2,   4,   8,   16,  32,
                                        64, 128, 256, 512, 1024};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct {
    atomic_uint_fast64_t finished[N_MODES][N_OUTCOMES];
    atomic_int_fast64_t in_flight;
    atomic_int_fast64_t waiters;
    hist_t call_latency[N_KINDS];
    atomic_uint_fast64_t calls[N_KINDS][TM_METRICS_CALL_RESULTS];
    atomic_uint_fast64_t retries[N_KINDS];
    atomic_uint_fast64_t alerts[N_KINDS];
    atomic_uint_fast64_t listener_batches;
    atomic_uint_fast64_t listener_batch_events;
    atomic_uint_fast64_t trace_dropped[2]; /* tracestate, traceparent */
    hist_t commit_latency;
    hist_t commit_batch;
    atomic_uint_fast64_t recovered;
    atomic_uint_fast64_t takeovers;
    atomic_uint_fast64_t purged;
    atomic_uint_fast64_t retry_now;
    atomic_uint_fast64_t force_stopped;
    atomic_uint_fast64_t workflows_stopped;
    atomic_uint_fast64_t store_failures;
    atomic_int_fast64_t store_unhealthy; /* 0 healthy, 1 not */
    atomic_uint_fast64_t refused_unhealthy;
} m = {
    .call_latency =
        {
#define CALL_HIST                                                              \
    {                                                                          \
        call_bounds_us, N_OF(call_bounds_us), {0}, 0                           \
    }
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
            CALL_HIST,
#undef CALL_HIST
        },
    .commit_latency = {commit_bounds_us, N_OF(commit_bounds_us), {0}, 0},
    .commit_batch = {batch_bounds, N_OF(batch_bounds), {0}, 0},
};

_Static_assert(N_OF(call_bounds_us) <= HIST_MAX_BOUNDS, "too many buckets");
_Static_assert(N_OF(commit_bounds_us) <= HIST_MAX_BOUNDS, "too many buckets");
_Static_assert(N_OF(batch_bounds) <= HIST_MAX_BOUNDS, "too many buckets");

static void add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void hist_observe(hist_t *h, uint64_t v)
{
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    add(&h->counts[i], 1);
    add(&h->sum, v);
}

static int kind_ok(tm_op_kind_t k)
{
    return (int)k > 0 && (int)k < N_KINDS;
}

/* ---- recording ----------------------------------------------------------- */

uint64_t tm_metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int mode_index(const tm_trans_t *tx)
{
    size_t n = tx->n_branches, f = 0;
    while (n > 0 && !counts_for_mode(&tx->branches[n - 1]))
        n--; /* listeners are appended last, branch events anywhere */
    while (f < n && !counts_for_mode(&tx->branches[f]))
        f++; /* a Begin's listeners come first */
    if (f == n)
        return MODE_NONE;
    tm_mode_t first = tx->branches[f].mode;
    const tm_kind_t *head = tm_kind_find(first);
    for (size_t k = 0;
         head && head->place == TM_PLACE_HEAD && k < tm_kind_count(); k++)
        if (tm_kind_at(k) == head) /* a workflow, whatever its steps */
            return (int)k;
    for (size_t i = f + 1; i < n; i++)
        if (tx->branches[i].mode != first && counts_for_mode(&tx->branches[i]))
            return MODE_HYBRID;
    for (size_t k = 0; k < tm_kind_count(); k++)
        if (tm_kind_at(k)->mode == first)
            return (int)k;
    return MODE_NONE;
}

void tm_metrics_trans_finished(const tm_trans_t *tx)
{
    int outcome =
        tx->status == TM_TX_SUCCEEDED ? OUTCOME_SUCCEEDED : OUTCOME_FAILED;
    add(&m.finished[mode_index(tx)][outcome], 1);
}

void tm_metrics_in_flight_add(int64_t delta)
{
    atomic_fetch_add_explicit(&m.in_flight, delta, memory_order_relaxed);
}

void tm_metrics_waiters_add(int64_t delta)
{
    atomic_fetch_add_explicit(&m.waiters, delta, memory_order_relaxed);
}

void tm_metrics_branch_call(tm_op_kind_t kind, tm_metrics_call_result_t result,
                            uint64_t micros)
{
    if (!kind_ok(kind) || (int)result < 0 || result >= TM_METRICS_CALL_RESULTS)
        return;
    hist_observe(&m.call_latency[kind], micros);
    add(&m.calls[kind][result], 1);
}

void tm_metrics_retry(tm_op_kind_t kind)
{
    if (kind_ok(kind))
        add(&m.retries[kind], 1);
}

void tm_metrics_store_commit(uint64_t micros, uint64_t batch)
{
    hist_observe(&m.commit_latency, micros);
    hist_observe(&m.commit_batch, batch);
}

void tm_metrics_recovered_add(uint64_t n)
{
    add(&m.recovered, n);
}

void tm_metrics_takeovers_add(uint64_t n)
{
    add(&m.takeovers, n);
}

void tm_metrics_purged_add(uint64_t n)
{
    add(&m.purged, n);
}

void tm_metrics_retry_now(void)
{
    add(&m.retry_now, 1);
}

void tm_metrics_op_alert(int op_kind)
{
    if (op_kind > 0 && op_kind < N_KINDS)
        add(&m.alerts[op_kind], 1);
}

void tm_metrics_listener_batch(size_t events)
{
    add(&m.listener_batches, 1);
    add(&m.listener_batch_events, events);
}

void tm_metrics_trace_dropped(int parent)
{
    add(&m.trace_dropped[parent ? 1 : 0], 1);
}

void tm_metrics_workflow_stopped(void)
{
    add(&m.workflows_stopped, 1);
}

void tm_metrics_force_stopped(void)
{
    add(&m.force_stopped, 1);
}

void tm_metrics_store_failure(void)
{
    add(&m.store_failures, 1);
}

void tm_metrics_store_healthy(int healthy)
{
    atomic_store_explicit(&m.store_unhealthy, healthy ? 0 : 1,
                          memory_order_relaxed);
}

void tm_metrics_refused_unhealthy(void)
{
    add(&m.refused_unhealthy, 1);
}

static void hist_reset(hist_t *h)
{
    for (size_t i = 0; i <= h->n_bounds; i++)
        atomic_store(&h->counts[i], 0);
    atomic_store(&h->sum, 0);
}

void tm_metrics_reset(void)
{
    for (int i = 0; i < N_MODES; i++)
        for (int o = 0; o < N_OUTCOMES; o++)
            atomic_store(&m.finished[i][o], 0);
    atomic_store(&m.in_flight, 0);
    atomic_store(&m.waiters, 0);
    for (int k = 0; k < N_KINDS; k++) {
        hist_reset(&m.call_latency[k]);
        atomic_store(&m.retries[k], 0);
        atomic_store(&m.alerts[k], 0);
        for (int r = 0; r < TM_METRICS_CALL_RESULTS; r++)
            atomic_store(&m.calls[k][r], 0);
    }
    atomic_store(&m.listener_batches, 0);
    atomic_store(&m.listener_batch_events, 0);
    atomic_store(&m.trace_dropped[0], 0);
    atomic_store(&m.trace_dropped[1], 0);
    hist_reset(&m.commit_latency);
    hist_reset(&m.commit_batch);
    atomic_store(&m.recovered, 0);
    atomic_store(&m.takeovers, 0);
    atomic_store(&m.purged, 0);
    atomic_store(&m.retry_now, 0);
    atomic_store(&m.force_stopped, 0);
    atomic_store(&m.workflows_stopped, 0);
    atomic_store(&m.store_failures, 0);
    atomic_store(&m.store_unhealthy, 0);
    atomic_store(&m.refused_unhealthy, 0);
}

/* ---- exposition ---------------------------------------------------------- */

static void header(FILE *f, const char *name, const char *type,
                   const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A value in the observed unit, scaled for output (micros -> seconds):
 * whole numbers as they are, scaled ones as short as exact ("0.00025"),
 * or with six decimals for sums. */
static void put_scaled(FILE *f, uint64_t v, double scale, int is_sum)
{
    if (scale == 1.0)
        fprintf(f, "%llu", (unsigned long long)v);
    else
        fprintf(f, is_sum ? "%.6f" : "%g", (double)v * scale);
}

/* One histogram's series; labels is "" or `op="action",` (with the comma). */
static void hist_write(FILE *f, const char *name, const char *labels, hist_t *h,
                       double scale)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += get(&h->counts[i]);
        fprintf(f, "%s_bucket{%sle=\"", name, labels);
        if (i < h->n_bounds)
            put_scaled(f, h->bounds[i], scale, 0);
        else
            fputs("+Inf", f);
        fprintf(f, "\"} %llu\n", (unsigned long long)cum);
    }
    size_t ll = strlen(labels);
    /* labels without the trailing comma, for _sum and _count */
    fprintf(f, "%s_sum%s%.*s%s ", name, ll ? "{" : "", ll ? (int)ll - 1 : 0,
            labels, ll ? "}" : "");
    put_scaled(f, get(&h->sum), scale, 1);
    fprintf(f, "\n%s_count%s%.*s%s %llu\n", name, ll ? "{" : "",
            ll ? (int)ll - 1 : 0, labels, ll ? "}" : "",
            (unsigned long long)cum);
}

static void write_transactions(FILE *f)
{
    header(f, "trellis_transactions_finished_total", "counter",
           "Transactions that reached a final status, by mode of their "
           "branches and outcome.");
    for (int i = 0; i < N_MODES; i++)
        for (int o = 0; mode_shown(i) && o < N_OUTCOMES; o++)
            fprintf(f,
                    "trellis_transactions_finished_total{mode=\"%s\","
                    "outcome=\"%s\"} %llu\n",
                    mode_label(i), outcome_names[o],
                    (unsigned long long)get(&m.finished[i][o]));
    header(f, "trellis_transactions_in_flight", "gauge",
           "Unfinished transactions held in memory.");
    fprintf(
        f, "trellis_transactions_in_flight %lld\n",
        (long long)atomic_load_explicit(&m.in_flight, memory_order_relaxed));
    header(f, "trellis_waiters", "gauge",
           "Requests (Submit or Abort with wait_result) waiting for a "
           "transaction's result.");
    fprintf(f, "trellis_waiters %lld\n",
            (long long)atomic_load_explicit(&m.waiters, memory_order_relaxed));
}

static void write_branch_calls(FILE *f)
{
    char labels[64];
    header(f, "trellis_branch_call_duration_seconds", "histogram",
           "Duration of the TM's calls of participant ops, by op kind.");
    for (int k = 1; k < N_KINDS; k++) {
        snprintf(labels, sizeof labels, "op=\"%s\",",
                 tm_op_kind_name((tm_op_kind_t)k));
        hist_write(f, "trellis_branch_call_duration_seconds", labels,
                   &m.call_latency[k], 1e-6);
    }
    header(f, "trellis_branch_calls_total", "counter",
           "Calls of participant ops that ended, by op kind and result.");
    for (int k = 1; k < N_KINDS; k++)
        for (int r = 0; r < TM_METRICS_CALL_RESULTS; r++)
            fprintf(f,
                    "trellis_branch_calls_total{op=\"%s\",result=\"%s\"} "
                    "%llu\n",
                    tm_op_kind_name((tm_op_kind_t)k), result_names[r],
                    (unsigned long long)get(&m.calls[k][r]));
    header(f, "trellis_branch_retries_total", "counter",
           "Calls of an op started again after an attempt that gave no "
           "final answer, by op kind.");
    for (int k = 1; k < N_KINDS; k++)
        fprintf(f, "trellis_branch_retries_total{op=\"%s\"} %llu\n",
                tm_op_kind_name((tm_op_kind_t)k),
                (unsigned long long)get(&m.retries[k]));
    header(f, "trellis_branch_alerts_total", "counter",
           "Answers that need an operator's eye, by op kind: ABORTED to an "
           "op that must not fail (a phase-2 op, a message's delivery), or "
           "an op still unanswered past the retry limit. Each is retried.");
    for (int k = 1; k < N_KINDS; k++)
        fprintf(f, "trellis_branch_alerts_total{op=\"%s\"} %llu\n",
                tm_op_kind_name((tm_op_kind_t)k),
                (unsigned long long)get(&m.alerts[k]));
    header(f, "trellis_listener_batches_total", "counter",
           "Calls started to batching completion listeners "
           "(TransOptions.listener_batch).");
    fprintf(f, "trellis_listener_batches_total %llu\n",
            (unsigned long long)get(&m.listener_batches));
    header(f, "trellis_listener_batch_events_total", "counter",
           "Completion events those calls carried.");
    fprintf(f, "trellis_listener_batch_events_total %llu\n",
            (unsigned long long)get(&m.listener_batch_events));
}

static void write_store(FILE *f)
{
    header(f, "trellis_store_commit_duration_seconds", "histogram",
           "Duration of one group commit of the store.");
    hist_write(f, "trellis_store_commit_duration_seconds", "",
               &m.commit_latency, 1e-6);
    header(f, "trellis_store_commit_batch_size", "histogram",
           "Writes applied by one group commit of the store.");
    hist_write(f, "trellis_store_commit_batch_size", "", &m.commit_batch, 1.0);
}

static void write_counter(FILE *f, const char *name, const char *help,
                          atomic_uint_fast64_t *c)
{
    header(f, name, "counter", help);
    fprintf(f, "%s %llu\n", name, (unsigned long long)get(c));
}

static void write_others(FILE *f)
{
    write_counter(f, "trellis_recovered_transactions_total",
                  "Unfinished transactions loaded from storage at start.",
                  &m.recovered);
    write_counter(f, "trellis_takeovers_total",
                  "Transactions claimed from another node.", &m.takeovers);
    write_counter(f, "trellis_store_purged_total",
                  "Finished transactions deleted by retention.", &m.purged);
    header(f, "trellis_operator_actions_total", "counter",
           "Operator actions taken through trellisctl, by action.");
    fprintf(f, "trellis_operator_actions_total{action=\"retry_now\"} %llu\n",
            (unsigned long long)get(&m.retry_now));
    fprintf(f, "trellis_operator_actions_total{action=\"force_stop\"} %llu\n",
            (unsigned long long)get(&m.force_stopped));
    write_counter(f, "trellis_workflows_stopped_total",
                  "Workflows whose resume was refused (ABORTED: a replay "
                  "mismatch, an unknown name); each waits for an operator.",
                  &m.workflows_stopped);
    write_counter(f, "trellis_store_commit_failures_total",
                  "Group commits that failed and were retried.",
                  &m.store_failures);
    header(f, "trellis_store_healthy", "gauge",
           "1 while storage commits succeed, 0 while they fail.");
    fprintf(f, "trellis_store_healthy %d\n",
            atomic_load_explicit(&m.store_unhealthy, memory_order_relaxed) ? 0
                                                                           : 1);
    write_counter(f, "trellis_requests_refused_store_unhealthy_total",
                  "Requests refused at once because storage was failing.",
                  &m.refused_unhealthy);
    header(f, "trellis_trace_context_dropped_total", "counter",
           "Trace context headers of requests that were malformed and not "
           "forwarded, by header.");
    fprintf(f,
            "trellis_trace_context_dropped_total{header=\"traceparent\"} "
            "%llu\n",
            (unsigned long long)get(&m.trace_dropped[1]));
    fprintf(f,
            "trellis_trace_context_dropped_total{header=\"tracestate\"} "
            "%llu\n",
            (unsigned long long)get(&m.trace_dropped[0]));
}

char *tm_metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    write_transactions(f);
    write_branch_calls(f);
    write_store(f);
    write_others(f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
