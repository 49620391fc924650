/*
 * bench_async: the asynchronous load of tcc2 and xa2 (see bench_async.h).
 *
 * Each slot is one transaction in flight at a time: when its transaction
 * ends (bench_async_done, in a callback) the slot records it and, while
 * the window is open, starts the next one right there, from the callback.
 * The counters and latencies are the run's, under one mutex: the clients'
 * threads record concurrently when there are several targets, and the
 * mutex is uncontended otherwise. The run ends when every slot is idle.
 */
#include "bench_async.h"

#include "bench_count.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis_async.h"

#define DEFAULT_TIMEOUT_MS 30000

struct bench_async_slot {
    bench_async_load_t *load;
    trellis_client_t *client;
    int64_t start_ns;
    uint64_t rng;
};

struct bench_async_load {
    bench_async_spec_t spec;
    trellis_client_t *clients[BENCH_MAX_TARGETS];
    size_t n_clients;
    int64_t start_ns, win_start_ns, win_end_ns;
    bench_async_slot_t *slots;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t idle;  /* in_flight reached 0 */
    int in_flight;
    uint64_t next_n;
    bench_count_t count;
    char first_error[256];
};

/* ---- for the op ------------------------------------------------------- */

trellis_client_t *bench_async_client(const bench_async_slot_t *s)
{
    return s->client;
}

uint64_t bench_async_rand(bench_async_slot_t *s)
{
    return bench_rand_next(&s->rng);
}

/* Start the slot's next transaction. */
static void slot_start(bench_async_slot_t *s, uint64_t n)
{
    s->start_ns = bench_mono_ns();
    s->load->spec.op(s, n, s->load->spec.user);
}

void bench_async_done(bench_async_slot_t *s, int ok, const char *fmt, ...)
{
    bench_async_load_t *l = s->load;
    int64_t now = bench_mono_ns();
    pthread_mutex_lock(&l->lock);
    bench_count_add(&l->count, ok, s->start_ns, now, l->win_start_ns,
                    l->win_end_ns);
    if (!ok && !l->first_error[0] && fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->first_error, sizeof(l->first_error), fmt, ap);
        va_end(ap);
    }
    int again = now < l->win_end_ns;
    uint64_t n = again ? l->next_n++ : 0;
    if (!again && --l->in_flight == 0)
        pthread_cond_broadcast(&l->idle);
    pthread_mutex_unlock(&l->lock);
    if (again)
        slot_start(s, n);
}

void bench_async_end_run(bench_async_slot_t *s, const trellis_async_result_t *r,
                         const char *const names[2], const char *forward_op)
{
    if (r->rc != TRELLIS_OK && r->branch >= 0 && r->branch < 2)
        bench_async_done(s, 0, "%s at %s: rc %d: %s", forward_op,
                         names[r->branch], r->rc, r->message);
    else if (r->rc != TRELLIS_OK)
        bench_async_done(s, 0, "begin or submit: rc %d: %s", r->rc, r->message);
    else if (r->status != TRELLIS_TRANS_SUCCEEDED)
        bench_async_done(s, 0, "submit answered %s: %s",
                         trellis_trans_status_name(r->status), r->reason);
    else
        bench_async_done(s, 1, NULL);
}

/* ---- the run ---------------------------------------------------------- */

static void free_load(bench_async_load_t *l)
{
    for (size_t i = 0; i < l->n_clients; i++)
        trellis_client_free(l->clients[i]);
    pthread_cond_destroy(&l->idle);
    pthread_mutex_destroy(&l->lock);
    bench_count_clear(&l->count);
    free(l->slots);
    free(l);
}

int bench_clients_open(const char *tm_addr, uint32_t timeout_ms, int async,
                       trellis_client_t **clients, size_t *n, char *err,
                       size_t errlen)
{
    char t[BENCH_MAX_TARGETS][BENCH_TARGET_LEN];
    size_t want = bench_split_targets(tm_addr, t, BENCH_MAX_TARGETS);
    *n = 0;
    if (want == 0) {
        snprintf(err, errlen, "bad target list \"%s\"", tm_addr);
        return -1;
    }
    uint32_t tmo = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
    for (; *n < want; (*n)++) {
        if (trellis_client_new(t[*n], tmo, &clients[*n], err, errlen) !=
            TRELLIS_OK)
            return -1;
        if (async && trellis_async_start(clients[*n], TRELLIS_ASYNC_THREAD, err,
                                         errlen) != TRELLIS_OK) {
            (*n)++; /* freed with the others */
            return -1;
        }
    }
    return 0;
}

bench_async_load_t *bench_async_start(const bench_async_spec_t *spec, char *err,
                                      size_t errlen)
{
    bench_async_load_t *l = calloc(1, sizeof(*l));
    if (!l ||
        !(l->slots = calloc((size_t)spec->concurrency, sizeof(*l->slots)))) {
        snprintf(err, errlen, "out of memory");
        free(l);
        return NULL;
    }
    l->spec = *spec;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->idle, NULL);
    if (bench_clients_open(spec->tm_addr, spec->call_timeout_ms, 1, l->clients,
                           &l->n_clients, err, errlen) != 0) {
        free_load(l);
        return NULL;
    }
    l->start_ns = bench_mono_ns();
    l->win_start_ns = l->start_ns + (int64_t)(spec->warmup_s * 1e9);
    l->win_end_ns = l->win_start_ns + (int64_t)(spec->duration_s * 1e9);
    /* Count them all in flight first: a callback may end one at once. */
    l->in_flight = spec->concurrency;
    l->next_n = (uint64_t)spec->concurrency;
    for (int i = 0; i < spec->concurrency; i++) {
        bench_async_slot_t *s = &l->slots[i];
        s->load = l;
        s->client = l->clients[(size_t)i % l->n_clients];
        s->rng = (uint64_t)l->start_ns ^ ((uint64_t)i << 40);
    }
    for (int i = 0; i < spec->concurrency; i++)
        slot_start(&l->slots[i], (uint64_t)i);
    return l;
}

int64_t bench_async_window_start_ns(const bench_async_load_t *l)
{
    return l->win_start_ns;
}

int64_t bench_async_window_end_ns(const bench_async_load_t *l)
{
    return l->win_end_ns;
}

void bench_async_finish(bench_async_load_t *l, bench_load_result_t *out)
{
    pthread_mutex_lock(&l->lock);
    while (l->in_flight > 0)
        pthread_cond_wait(&l->idle, &l->lock);
    pthread_mutex_unlock(&l->lock);
    memset(out, 0, sizeof(*out));
    out->ok = l->count.ok;
    out->failed = l->count.failed;
    out->total_ok = l->count.total_ok;
    out->total_failed = l->count.total_failed;
    snprintf(out->first_error, sizeof(out->first_error), "%s", l->first_error);
    out->window_s = (double)(l->win_end_ns - l->win_start_ns) / 1e9;
    out->rate = out->window_s > 0 ? (double)out->ok / out->window_s : 0;
    bench_load_latencies(l->count.lat_us, l->count.n_lat, out);
    free_load(l);
}

/* ---- direct transactions ---------------------------------------------- */

/* A direct transaction in flight: its calls, copied, and the next one. */
typedef struct {
    bench_async_slot_t *slot;
    char gid[64], trans_type[8];
    bench_direct_call_t calls[BENCH_DIRECT_MAX];
    char strs[BENCH_DIRECT_MAX][5][160];
    size_t n, next;
} direct_t;

static void direct_next(direct_t *d);

static void direct_cb(const trellis_async_result_t *r, void *user)
{
    direct_t *d = user;
    if (r->rc != TRELLIS_OK) {
        const bench_direct_call_t *c = &d->calls[d->next - 1];
        bench_async_slot_t *s = d->slot;
        char why[256];
        snprintf(why, sizeof(why), "%s at %s: rc %d: %s", c->op, c->host_port,
                 r->rc, r->message);
        free(d);
        bench_async_done(s, 0, "%s", why);
        return;
    }
    direct_next(d);
}

static void direct_next(direct_t *d)
{
    if (d->next == d->n) {
        bench_async_slot_t *s = d->slot;
        free(d);
        bench_async_done(s, 1, NULL);
        return;
    }
    const bench_direct_call_t *c = &d->calls[d->next++];
    const char *keys[4] = {"dtm-gid", "dtm-trans_type", "dtm-branch_id",
                           "dtm-op"};
    const char *values[4] = {d->gid, d->trans_type, c->branch_id, c->op};
    trellis_rc_t rc = trellis_async_call_unary(
        d->slot->client, c->host_port, c->method, c->payload,
        strlen(c->payload), keys, values, 4, 0, direct_cb, d);
    if (rc != TRELLIS_OK) {
        bench_async_slot_t *s = d->slot;
        free(d);
        bench_async_done(s, 0, "call_unary refused: rc %d", rc);
    }
}

/* dst = a copy of src in d's string room for call i. */
static const char *direct_copy(direct_t *d, size_t i, int k, const char *src)
{
    snprintf(d->strs[i][k], sizeof(d->strs[i][k]), "%s", src);
    return d->strs[i][k];
}

void bench_async_direct(bench_async_slot_t *s, const char *gid,
                        const char *trans_type,
                        const bench_direct_call_t *calls, size_t n)
{
    direct_t *d = calloc(1, sizeof(*d));
    if (!d || n > BENCH_DIRECT_MAX) {
        free(d);
        bench_async_done(s, 0, "out of memory or too many calls");
        return;
    }
    d->slot = s;
    d->n = n;
    snprintf(d->gid, sizeof(d->gid), "%s", gid);
    snprintf(d->trans_type, sizeof(d->trans_type), "%s", trans_type);
    for (size_t i = 0; i < n; i++) {
        d->calls[i].host_port = direct_copy(d, i, 0, calls[i].host_port);
        d->calls[i].method = direct_copy(d, i, 1, calls[i].method);
        d->calls[i].branch_id = direct_copy(d, i, 2, calls[i].branch_id);
        d->calls[i].op = direct_copy(d, i, 3, calls[i].op);
        d->calls[i].payload = direct_copy(d, i, 4, calls[i].payload);
    }
    direct_next(d);
}
