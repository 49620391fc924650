/*
 * sim_main: trellis-sim — runs the simulator (see sim.h) over a range of
 * seeds, or one seed with its trace, and says which seed broke what.
 *
 *   trellis-sim [--seeds N] [--from S]   N seeds from S (default 5000 from 1)
 *   trellis-sim --seed S [-v]            one seed; -v prints its trace
 *
 * Every seed is run twice and its two traces must agree (a seed that does
 * not replay the same is a defect of its own). A failing seed prints the
 * one command that replays it. The closing line is "N passed, N failed".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_impl.h"
#include "tm_log.h"

static void free_world(sim_t *s)
{
    sim_store_free(s);
    for (size_t i = 0; i < s->n_clients; i++)
        free(s->clients[i].bytes);
    free(s->clients);
    sim_wf_free(s);
    sim_msg_free(s);
    free(s->branches);
    free(s->ev);
    fkit_timers_free(&s->timers);
    /* What crashed engines left and the requests' records: the engine of
     * the last incarnation still references them, so they stay with it
     * (a crashed process's memory is not ours to free). */
}

/* The next event: the earlier of the queue's first and the first timer
 * (ties: queue first, then by sequence). 0 when nothing is left. */
static int next_event(sim_t *s, sim_event_t *out, int *is_timer)
{
    size_t best = s->n_ev;
    for (size_t i = 0; i < s->n_ev; i++)
        if (best == s->n_ev || s->ev[i].due < s->ev[best].due ||
            (s->ev[i].due == s->ev[best].due && s->ev[i].seq < s->ev[best].seq))
            best = i;
    int64_t tdue;
    uint64_t tseq;
    int timer = sim_timers_next(s, &tdue, &tseq);
    if (best == s->n_ev && !timer)
        return 0;
    if (timer && (best == s->n_ev || tdue < s->ev[best].due ||
                  (tdue == s->ev[best].due && tseq < s->ev[best].seq))) {
        *is_timer = 1;
        out->due = tdue;
        return 1;
    }
    *is_timer = 0;
    *out = s->ev[best];
    s->ev[best] = s->ev[--s->n_ev];
    return 1;
}

/* An event of a stopped node waits until the node runs again, and then
 * a little more at random: after SIGCONT its threads (the lease thread,
 * the store's, the requests') run in any order. */
static int deferred(sim_t *s, const sim_event_t *e, int node)
{
    if (!sim_node_paused(s, node))
        return 0;
    sim_schedule(s, s->nodes[node].paused_until - s->now + sim_between(s, 0, 3),
                 e->kind, e->p, e->n);
    return 1;
}

static void handle(sim_t *s, const sim_event_t *e)
{
    sim_node_t *node = e->n < SIM_MAX_NODES ? &s->nodes[e->n] : NULL;
    switch (e->kind) {
    case SIM_EV_COMMIT:
        if (!deferred(s, e, (int)e->n))
            sim_store_commit(s, node);
        break;
    case SIM_EV_TICK: { /* p: the node; n: its incarnation */
        sim_node_t *n = e->p;
        if (!n->engine || e->n != n->gen || deferred(s, e, n->id))
            break;
        sim_lease_tick(s, n);
        if (sim_lease_busy(s, n))
            sim_schedule(s, SIM_TICK_MS, SIM_EV_TICK, n, n->gen);
        else
            n->ticking = 0; /* idle: woken by the next write or lease check */
        break;
    }
    case SIM_EV_ARRIVE:
        sim_call_arrive(s, e->p);
        break;
    case SIM_EV_REPLY:
        sim_call_reply(s, e->p);
        break;
    case SIM_EV_CLIENT:
        sim_client_step(s, e->p);
        break;
    case SIM_EV_CRASH:
        if (!s->quiet)
            sim_crash(s, node);
        break;
    case SIM_EV_RESTART:
        sim_restart(s, node);
        break;
    case SIM_EV_PAUSE: { /* n: node | ms << 8 */
        sim_node_t *n = &s->nodes[e->n & 0xff];
        if (!s->quiet && n->engine) {
            n->paused_until = s->now + (int64_t)(e->n >> 8);
            sim_trace(s, "node %d: stopped until %lld", n->id,
                      (long long)n->paused_until);
        }
        break;
    }
    case SIM_EV_FAULT:
        if (!s->quiet) {
            s->store.fail_commits = (unsigned)e->n;
            sim_trace(s, "fault: %u commits fail", (unsigned)e->n);
        }
        break;
    case SIM_EV_OPERATOR:
        if (!s->quiet)
            sim_operator(s, (int)(e->n >> 1), (int)(e->n & 1));
        break;
    case SIM_EV_STRAY:
    case SIM_EV_DELIVER:
        sim_stray_arrive(s, e->p);
        break;
    case SIM_EV_SERVICE:
    case SIM_EV_SVC_CALL:
    case SIM_EV_SVC_ANS:
    case SIM_EV_STOPPED:
        sim_wf_event(s, e->kind, e->p, e->n);
        break;
    case SIM_EV_MSG:
    case SIM_EV_MSG_WAIT:
    case SIM_EV_TOPIC:
        sim_msg_event(s, e->kind, e->p, e->n);
        break;
    case SIM_EV_QUIET:
        s->quiet = 1;
        sim_trace(s, "quiet");
        for (int i = 0; i < s->n_nodes; i++)
            sim_restart(s, &s->nodes[i]);
        break;
    }
}

/* Simulated time after which a transaction that has not ended is a
 * failure (every retry and timeout is far shorter). */
#define MAX_SIM_MS (10 * 60 * 1000)

void sim_run(uint64_t seed, int verbose, sim_result_t *out)
{
    memset(out, 0, sizeof(*out));
    sim_t *s = calloc(1, sizeof(*s));
    if (!s)
        exit(2);
    s->seed = s->rng = seed;
    s->verbose = verbose;
    s->res = out;
    sim_world_setup(s);
    sim_event_t e;
    int is_timer;
    while (!out->failed && next_event(s, &e, &is_timer)) {
        if (e.due > MAX_SIM_MS)
            break;
        s->now = e.due;
        out->events++;
        if (!is_timer) {
            handle(s, &e);
            continue;
        }
        int owner = sim_timers_first_owner(s);
        if (sim_node_paused(s, owner))
            sim_timers_defer_first(s, s->nodes[owner].paused_until);
        else
            sim_timers_fire_first(s);
    }
    if (!out->failed)
        sim_world_check(s);
    for (int i = 0; i < s->n_nodes; i++) {
        tm_engine_t *e = s->nodes[i].engine;
        if (e && !out->failed && tm_engine_live_count(e) == 0)
            tm_engine_free(e); /* idle: nothing refers to it now */
        else if (e)
            sim_bury(s, e);
    }
    free_world(s);
    /* s itself stays reachable from nowhere: its graveyard is the dead
     * engines' memory, left as a crashed process leaves it. */
    free(s->graveyard);
    free(s);
}

static int run_seed(uint64_t seed, int verbose)
{
    sim_result_t a, b;
    sim_run(seed, verbose, &a);
    if (!a.failed) {
        sim_run(seed, 0, &b);
        if (b.trace != a.trace || b.events != a.events) {
            a.failed = 1;
            snprintf(a.why, sizeof(a.why),
                     "the same seed gave two traces (%016" PRIx64
                     " / %016" PRIx64 ")",
                     a.trace, b.trace);
        }
    }
    if (a.failed) {
        printf("seed %" PRIu64 " FAILED: %s\n", seed, a.why);
        printf("  replay: trellis-sim --seed %" PRIu64 " -v\n", seed);
    } else if (verbose) {
        printf("seed %" PRIu64 ": %" PRIu64 " events, %u transactions (%u "
               "acknowledged), %u crashes, trace %016" PRIx64 "\n",
               seed, a.events, a.transactions, a.acked, a.crashes, a.trace);
    }
    return a.failed;
}

int main(int argc, char **argv)
{
    uint64_t from = 1, n = 5000;
    int verbose = 0, one = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--from") && i + 1 < argc)
            from = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            from = strtoull(argv[++i], NULL, 10);
            n = 1;
            one = 1;
        } else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else {
            fprintf(stderr,
                    "usage: trellis-sim [--seeds N] [--from S] | --seed S "
                    "[-v]\n");
            return 2;
        }
    }
    tm_log_set_level(verbose ? TM_LOG_INFO : TM_LOG_ERROR);
    unsigned failed = 0;
    for (uint64_t seed = from; seed < from + n; seed++)
        failed += (unsigned)run_seed(seed, verbose && one);
    printf("%" PRIu64 " passed, %u failed\n", n - failed, failed);
    return failed ? 1 : 0;
}
