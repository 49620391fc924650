/*
 * bench_ap: the threads of the tcc2, xa2 and hybrid3 load (see bench_ap.h).
 *
 * Each worker owns its counters and its latency array (grown by doubling;
 * a latency that finds no memory is dropped, the count still holds); the
 * results are merged once, after every thread has been joined.
 */
#include "bench_ap.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_async.h"
#include "bench_count.h"
#include "trellis/trellis.h"

struct bench_ap_worker {
    bench_ap_load_t *load;
    trellis_client_t *client; /* one of the run's, index % targets */
    int index;
    pthread_t thread;
    uint64_t rng;
    bench_count_t count;
    char first_error[256];
};

struct bench_ap_load {
    bench_ap_spec_t spec;
    trellis_client_t *clients[BENCH_MAX_TARGETS];
    size_t n_clients;
    int64_t start_ns, win_start_ns, win_end_ns;
    bench_ap_worker_t *workers;
    int n_workers;
};

/* ---- for the op ------------------------------------------------------- */

trellis_client_t *bench_ap_client(const bench_ap_worker_t *w)
{
    return w->client;
}

int bench_ap_index(const bench_ap_worker_t *w)
{
    return w->index;
}

uint64_t bench_ap_rand(bench_ap_worker_t *w)
{
    return bench_rand_next(&w->rng);
}

void bench_ap_note_error(bench_ap_worker_t *w, const char *fmt, ...)
{
    if (w->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
    va_end(ap);
}

/* ---- the threads ------------------------------------------------------ */

static void record(bench_ap_worker_t *w, int ok, int64_t start, int64_t end)
{
    bench_count_add(&w->count, ok, start, end, w->load->win_start_ns,
                    w->load->win_end_ns);
}

static void *worker_main(void *arg)
{
    bench_ap_worker_t *w = arg;
    const bench_ap_spec_t *s = &w->load->spec;
    for (uint64_t n = 0; bench_mono_ns() < w->load->win_end_ns; n++) {
        int64_t t0 = bench_mono_ns();
        int ok = s->op(w, n, s->user);
        record(w, ok, t0, bench_mono_ns());
    }
    return NULL;
}

static void free_load(bench_ap_load_t *l)
{
    for (size_t i = 0; i < l->n_clients; i++)
        trellis_client_free(l->clients[i]);
    free(l->workers);
    free(l);
}

bench_ap_load_t *bench_ap_start(const bench_ap_spec_t *spec, char *err,
                                size_t errlen)
{
    bench_ap_load_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->workers =
                    calloc((size_t)spec->concurrency, sizeof(*l->workers)))) {
        snprintf(err, errlen, "out of memory");
        free(l);
        return NULL;
    }
    l->spec = *spec;
    if (bench_clients_open(spec->tm_addr, spec->call_timeout_ms, 0, l->clients,
                           &l->n_clients, err, errlen) != 0) {
        free_load(l);
        return NULL;
    }
    l->start_ns = bench_mono_ns();
    l->win_start_ns = l->start_ns + (int64_t)(spec->warmup_s * 1e9);
    l->win_end_ns = l->win_start_ns + (int64_t)(spec->duration_s * 1e9);
    for (int i = 0; i < spec->concurrency; i++) {
        bench_ap_worker_t *w = &l->workers[i];
        w->load = l;
        w->index = i;
        w->client = l->clients[(size_t)i % l->n_clients];
        w->rng = (uint64_t)l->start_ns ^ ((uint64_t)i << 40);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            break;
        l->n_workers++;
    }
    return l;
}

int64_t bench_ap_window_start_ns(const bench_ap_load_t *l)
{
    return l->win_start_ns;
}

int64_t bench_ap_window_end_ns(const bench_ap_load_t *l)
{
    return l->win_end_ns;
}

/* ---- results ---------------------------------------------------------- */

/* Add worker w's counters to out and its latencies to all[*at..]. */
static void merge_worker(bench_ap_worker_t *w, bench_load_result_t *out,
                         uint32_t *all, size_t *at)
{
    const bench_count_t *c = &w->count;
    out->ok += c->ok;
    out->failed += c->failed;
    out->total_ok += c->total_ok;
    out->total_failed += c->total_failed;
    if (!out->first_error[0] && w->first_error[0])
        snprintf(out->first_error, sizeof(out->first_error), "%s",
                 w->first_error);
    if (all && c->n_lat)
        memcpy(all + *at, c->lat_us, c->n_lat * sizeof(*all));
    *at += all ? c->n_lat : 0;
    bench_count_clear(&w->count);
}

void bench_ap_finish(bench_ap_load_t *l, bench_load_result_t *out)
{
    size_t n = 0, at = 0;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < l->n_workers; i++) {
        pthread_join(l->workers[i].thread, NULL);
        n += l->workers[i].count.n_lat;
    }
    uint32_t *all = malloc((n ? n : 1) * sizeof(*all));
    for (int i = 0; i < l->n_workers; i++)
        merge_worker(&l->workers[i], out, all, &at);
    out->window_s = (double)(l->win_end_ns - l->win_start_ns) / 1e9;
    out->rate = out->window_s > 0 ? (double)out->ok / out->window_s : 0;
    if (all)
        bench_load_latencies(all, at, out);
    free(all);
    free_load(l);
}
