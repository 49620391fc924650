/*
 * bench_load: the asynchronous load generator (see bench_load.h).
 *
 * Each worker thread owns one completion queue and the slots bound to it.
 * A slot is one call in flight: the six unary ops go out as a single batch
 * whose tag is the slot; when the tag comes back the worker records the
 * outcome, releases the call and, unless the run is over, starts the next
 * call in the same slot before it looks at the queue again. Invariant: a
 * worker's `inflight` equals the number of its slots with a started batch,
 * and it leaves its loop only when that reaches zero, so every call gets
 * its one grpc_call_unref and every queue is empty when it is shut down.
 *
 * Latencies are kept per worker (microseconds, uint32) and merged, sorted
 * and read off after the threads are joined: nothing is shared on the hot
 * path but the atomic sequence number.
 */
#include "bench_load.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TIMEOUT_MS 30000

typedef struct worker worker_t;

typedef struct {
    worker_t *w;
    grpc_channel *channel;
    void *method;
    grpc_call *call;
    grpc_op ops[6];
    grpc_metadata_array initial_md, trailing_md;
    grpc_byte_buffer *send, *recv;
    grpc_status_code status;
    grpc_slice details;
    int64_t start_ns;
} slot_t;

struct worker {
    bench_load_t *load;
    grpc_completion_queue *cq;
    pthread_t thread;
    slot_t *slots;
    size_t n_slots;
    size_t inflight;
    uint32_t *lat_us; /* latencies of counted successes */
    size_t n_lat, cap_lat;
    uint64_t ok, failed, total_ok, total_failed;
    int64_t last_done_ns;
    char first_error[256];
};

struct bench_load {
    bench_load_spec_t spec;
    int64_t start_ns, win_start_ns, win_end_ns;
    atomic_uint_fast64_t seq; /* calls started */
    atomic_int halt;          /* make_request asked to stop */
    worker_t *workers;
    size_t n_workers;
};

int64_t bench_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_until_ns(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

/* ---- connections ------------------------------------------------------ */

size_t bench_split_targets(const char *list, char out[][BENCH_TARGET_LEN],
                           size_t max)
{
    size_t n = 0;
    for (const char *p = list; p && *p && n < max;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= BENCH_TARGET_LEN)
            return 0;
        memcpy(out[n], p, len);
        out[n++][len] = 0;
        p += len + (p[len] == ',');
    }
    return n;
}

int bench_conns_open(bench_conns_t *c, const char *targets, size_t n,
                     const char *method)
{
    char t[BENCH_MAX_TARGETS][BENCH_TARGET_LEN];
    size_t nt = bench_split_targets(targets, t, BENCH_MAX_TARGETS);
    memset(c, 0, sizeof(*c));
    if (nt == 0) {
        fprintf(stderr, "trellis-bench: bad target list \"%s\"\n", targets);
        return -1;
    }
    n = (n + nt - 1) / nt * nt;
    c->channels = calloc(n, sizeof(*c->channels));
    c->methods = calloc(n, sizeof(*c->methods));
    if (!c->channels || !c->methods) {
        bench_conns_close(c);
        return -1;
    }
    grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                    .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
                    .value.integer = 1};
    grpc_channel_args args = {.num_args = n > 1 ? 1 : 0, .args = &arg};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    for (size_t i = 0; i < n; i++) {
        c->channels[i] = grpc_channel_create(t[i % nt], creds, &args);
        c->methods[i] =
            grpc_channel_register_call(c->channels[i], method, NULL, NULL);
        c->n = i + 1;
    }
    grpc_channel_credentials_release(creds);
    return 0;
}

void bench_conns_close(bench_conns_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        grpc_channel_destroy(c->channels[i]);
    free(c->channels);
    free(c->methods);
    memset(c, 0, sizeof(*c));
}

/* ---- one call --------------------------------------------------------- */

static int run_is_over(bench_load_t *l, int64_t now)
{
    if (atomic_load(&l->halt))
        return 1;
    if (l->spec.max_calls)
        return atomic_load(&l->seq) >= l->spec.max_calls;
    return now >= l->win_end_ns;
}

/* Keep the first failure's description of this worker. */
__attribute__((format(printf, 2, 3))) static void
fail_slot(worker_t *w, const char *fmt, ...)
{
    if (w->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
    va_end(ap);
}

/* Start the next call in slot s. Returns 0 if a batch is now in flight. */
static int start_call(slot_t *s)
{
    worker_t *w = s->w;
    bench_load_t *l = w->load;
    uint64_t seq = atomic_fetch_add(&l->seq, 1);
    if (l->spec.max_calls && seq >= l->spec.max_calls)
        return -1;
    if (l->spec.make_request(seq, &s->send, l->spec.user) != 0) {
        atomic_store(&l->halt, 1);
        fail_slot(w, "request %llu could not be built",
                  (unsigned long long)seq);
        return -1;
    }
    uint32_t tmo =
        l->spec.call_timeout_ms ? l->spec.call_timeout_ms : DEFAULT_TIMEOUT_MS;
    gpr_timespec deadline = gpr_time_add(
        gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(tmo, GPR_TIMESPAN));
    s->call = grpc_channel_create_registered_call(
        s->channel, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq, s->method, deadline,
        NULL);
    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);
    s->recv = NULL;
    s->details = grpc_empty_slice();
    memset(s->ops, 0, sizeof(s->ops));
    grpc_op *op = s->ops;
    /* No wait-for-ready: a server that is not there fails calls at once
     * (reported as the first failure) instead of after every deadline. */
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    op++;
    op->op = GRPC_OP_SEND_MESSAGE;
    op->data.send_message.send_message = s->send;
    op++;
    op->op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    op++;
    op->op = GRPC_OP_RECV_INITIAL_METADATA;
    op->data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    op++;
    op->op = GRPC_OP_RECV_MESSAGE;
    op->data.recv_message.recv_message = &s->recv;
    op++;
    op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op->data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    op->data.recv_status_on_client.status = &s->status;
    op->data.recv_status_on_client.status_details = &s->details;
    op++;
    s->start_ns = bench_mono_ns();
    grpc_call_error rc =
        grpc_call_start_batch(s->call, s->ops, (size_t)(op - s->ops), s, NULL);
    if (rc != GRPC_CALL_OK) {
        /* Nothing was queued: release here, and stop the run, since the
         * next attempt would fail the same way. */
        fail_slot(w, "grpc_call_start_batch: error %d", (int)rc);
        atomic_store(&l->halt, 1);
        grpc_call_unref(s->call);
        grpc_byte_buffer_destroy(s->send);
        grpc_metadata_array_destroy(&s->initial_md);
        grpc_metadata_array_destroy(&s->trailing_md);
        return -1;
    }
    return 0;
}

static void record_latency(worker_t *w, int64_t ns)
{
    if (w->n_lat == w->cap_lat) {
        size_t cap = w->cap_lat ? w->cap_lat * 2 : 65536;
        uint32_t *p = realloc(w->lat_us, cap * sizeof(*p));
        if (!p)
            return; /* keep counting; lose this sample */
        w->lat_us = p;
        w->cap_lat = cap;
    }
    int64_t us = ns / 1000;
    w->lat_us[w->n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* 0 if the finished call in s is a success, else -1 (first error kept). */
static int judge_call(slot_t *s, int success)
{
    worker_t *w = s->w;
    const bench_load_spec_t *spec = &w->load->spec;
    if (!success) {
        fail_slot(w, "batch failed");
        return -1;
    }
    if (s->status != GRPC_STATUS_OK) {
        char *msg = grpc_slice_to_c_string(s->details);
        fail_slot(w, "gRPC status %d: %s", (int)s->status, msg);
        gpr_free(msg);
        return -1;
    }
    if (!spec->check_reply)
        return 0;
    grpc_slice all = grpc_empty_slice();
    if (s->recv) {
        grpc_byte_buffer_reader r;
        grpc_byte_buffer_reader_init(&r, s->recv);
        all = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
    }
    char err[200] = "";
    int rc =
        spec->check_reply(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all),
                          err, sizeof(err), spec->user);
    grpc_slice_unref(all);
    if (rc != 0)
        fail_slot(w, "bad reply: %s", err);
    return rc;
}

static void finish_call(slot_t *s, int success)
{
    worker_t *w = s->w;
    bench_load_t *l = w->load;
    int64_t now = bench_mono_ns();
    int ok = judge_call(s, success) == 0;
    int counted =
        l->spec.max_calls || (now >= l->win_start_ns && now < l->win_end_ns);
    if (ok) {
        w->total_ok++;
        if (counted) {
            w->ok++;
            record_latency(w, now - s->start_ns);
        }
    } else {
        w->total_failed++;
        w->failed += counted;
    }
    w->last_done_ns = now;
    grpc_call_unref(s->call);
    s->call = NULL;
    grpc_byte_buffer_destroy(s->send);
    if (s->recv)
        grpc_byte_buffer_destroy(s->recv);
    grpc_slice_unref(s->details);
    grpc_metadata_array_destroy(&s->initial_md);
    grpc_metadata_array_destroy(&s->trailing_md);
}

/* ---- workers ---------------------------------------------------------- */

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    bench_load_t *l = w->load;
    for (size_t i = 0; i < w->n_slots; i++)
        if (!run_is_over(l, bench_mono_ns()) && start_call(&w->slots[i]) == 0)
            w->inflight++;
    while (w->inflight > 0) {
        grpc_event ev = grpc_completion_queue_next(
            w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break; /* cannot happen: the queue is shut down after us */
        slot_t *s = ev.tag;
        finish_call(s, ev.success);
        w->inflight--;
        if (!run_is_over(l, w->last_done_ns) && start_call(s) == 0)
            w->inflight++;
    }
    return NULL;
}

static int setup_workers(bench_load_t *l)
{
    const bench_load_spec_t *sp = &l->spec;
    size_t k = (size_t)sp->concurrency;
    size_t nw = sp->cq_threads > 0 ? (size_t)sp->cq_threads : 1;
    if (nw > k)
        nw = k;
    l->workers = calloc(nw, sizeof(*l->workers));
    if (!l->workers)
        return -1;
    l->n_workers = nw;
    for (size_t i = 0; i < nw; i++) {
        worker_t *w = &l->workers[i];
        w->load = l;
        w->n_slots = k / nw + (i < k % nw);
        w->slots = calloc(w->n_slots, sizeof(*w->slots));
        w->cq = grpc_completion_queue_create_for_next(NULL);
        if (!w->slots)
            return -1;
    }
    /* Slot j of the run: worker j % nw, channel j % n_channels. */
    for (size_t j = 0; j < k; j++) {
        worker_t *w = &l->workers[j % nw];
        slot_t *s = &w->slots[j / nw];
        s->w = w;
        s->channel = sp->conns->channels[j % sp->conns->n];
        s->method = sp->conns->methods[j % sp->conns->n];
    }
    return 0;
}

static void free_workers(bench_load_t *l)
{
    for (size_t i = 0; i < l->n_workers; i++) {
        worker_t *w = &l->workers[i];
        if (w->cq) {
            grpc_completion_queue_shutdown(w->cq);
            while (grpc_completion_queue_next(
                       w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                       .type != GRPC_QUEUE_SHUTDOWN)
                ;
            grpc_completion_queue_destroy(w->cq);
        }
        free(w->slots);
        free(w->lat_us);
    }
    free(l->workers);
    free(l);
}

bench_load_t *bench_load_start(const bench_load_spec_t *spec, char *err,
                               size_t errlen)
{
    if (spec->concurrency < 1 || !spec->conns || !spec->conns->n ||
        !spec->make_request) {
        snprintf(err, errlen, "bad load spec");
        return NULL;
    }
    bench_load_t *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->spec = *spec;
    atomic_init(&l->seq, 0);
    atomic_init(&l->halt, 0);
    l->start_ns = bench_mono_ns();
    l->win_start_ns = l->start_ns + (int64_t)(spec->warmup_s * 1e9);
    l->win_end_ns = l->win_start_ns + (int64_t)(spec->duration_s * 1e9);
    if (setup_workers(l) != 0) {
        snprintf(err, errlen, "out of memory");
        free_workers(l);
        return NULL;
    }
    for (size_t i = 0; i < l->n_workers; i++)
        if (pthread_create(&l->workers[i].thread, NULL, worker_main,
                           &l->workers[i]) != 0) {
            /* Threads already started run to the end of the window. */
            atomic_store(&l->halt, 1);
            for (size_t j = 0; j < i; j++)
                pthread_join(l->workers[j].thread, NULL);
            snprintf(err, errlen, "pthread_create failed");
            free_workers(l);
            return NULL;
        }
    return l;
}

int64_t bench_load_window_start_ns(const bench_load_t *l)
{
    return l->win_start_ns;
}

int64_t bench_load_window_end_ns(const bench_load_t *l)
{
    return l->win_end_ns;
}

/* ---- results ---------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n], in ms. */
static double percentile_ms(const uint32_t *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)(q * (double)n + 0.999999);
    i = i ? i - 1 : 0;
    return v[i < n ? i : n - 1] / 1000.0;
}

void bench_load_latencies(uint32_t *lat_us, size_t n, bench_load_result_t *out)
{
    qsort(lat_us, n, sizeof(*lat_us), cmp_u32);
    out->p50_ms = percentile_ms(lat_us, n, 0.50);
    out->p99_ms = percentile_ms(lat_us, n, 0.99);
    out->max_ms = n ? lat_us[n - 1] / 1000.0 : 0;
}

static void summarize(bench_load_t *l, bench_load_result_t *out)
{
    size_t n = 0;
    int64_t last = l->start_ns;
    for (size_t i = 0; i < l->n_workers; i++)
        n += l->workers[i].n_lat;
    uint32_t *all = malloc((n ? n : 1) * sizeof(*all));
    size_t at = 0;
    for (size_t i = 0; i < l->n_workers; i++) {
        worker_t *w = &l->workers[i];
        out->ok += w->ok;
        out->failed += w->failed;
        out->total_ok += w->total_ok;
        out->total_failed += w->total_failed;
        if (w->last_done_ns > last)
            last = w->last_done_ns;
        if (!out->first_error[0] && w->first_error[0])
            snprintf(out->first_error, sizeof(out->first_error), "%s",
                     w->first_error);
        if (all && w->n_lat) {
            memcpy(all + at, w->lat_us, w->n_lat * sizeof(*all));
            at += w->n_lat;
        }
    }
    out->window_s = l->spec.max_calls
                        ? (double)(last - l->start_ns) / 1e9
                        : (double)(l->win_end_ns - l->win_start_ns) / 1e9;
    out->rate = out->window_s > 0 ? (double)out->ok / out->window_s : 0;
    if (all)
        bench_load_latencies(all, at, out);
    free(all);
}

void bench_load_finish(bench_load_t *l, bench_load_result_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < l->n_workers; i++)
        pthread_join(l->workers[i].thread, NULL);
    summarize(l, out);
    free_workers(l);
}
