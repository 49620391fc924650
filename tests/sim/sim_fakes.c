/*
 * sim_fakes: what the engine runs on in the simulator (see sim.h) — a
 * store that commits a queued group when the event loop says so and
 * keeps its rows across crashes (not its queue), branch calls that become
 * events, timers on the virtual clock, and the front that records the
 * engine's answers on the initiators' requests. Nothing here calls the
 * engine back before returning: every callback is a later event. The
 * parts it shares with unit_engine's fakes (the write queue, rows read
 * back into the model, the timer list) are tests/common/fake_kit.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_impl.h"
#include "trellis_fnv.h"

/* ---- randomness, events, trace ------------------------------------------- */

uint64_t sim_rand(sim_t *s)
{
    /* splitmix64 */
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int sim_chance(sim_t *s, unsigned pct)
{
    return sim_rand(s) % 100 < pct;
}

int64_t sim_between(sim_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(sim_rand(s) % (uint64_t)(hi - lo + 1));
}

int64_t sim_now(const sim_t *s)
{
    return s->now;
}

void sim_schedule(sim_t *s, int64_t in_ms, sim_ev_kind_t kind, void *p,
                  uint64_t n)
{
    if (s->n_ev == s->cap_ev) {
        s->cap_ev = s->cap_ev ? s->cap_ev * 2 : 64;
        s->ev = fkit_must(realloc(s->ev, s->cap_ev * sizeof(*s->ev)));
    }
    s->ev[s->n_ev++] =
        (sim_event_t){s->now + (in_ms > 0 ? in_ms : 0), s->seq++, kind, p, n};
}

void sim_trace(sim_t *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    trellis_fnv_t f;
    trellis_fnv_init(&f);
    if (s->res->trace)
        f.h = s->res->trace; /* go on from the trace so far */
    trellis_fnv_add_str(&f, line);
    s->res->trace = trellis_fnv_final(&f);
    if (s->verbose)
        printf("%8lld %s\n", (long long)s->now, line);
}

void sim_fail(sim_t *s, const char *fmt, ...)
{
    if (s->res->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->why, sizeof(s->res->why), fmt, ap);
    va_end(ap);
    s->res->failed = 1;
    sim_trace(s, "VIOLATION %s", s->res->why);
}

void sim_bury(sim_t *s, void *p)
{
    if (s->n_grave == s->cap_grave) {
        s->cap_grave = s->cap_grave ? s->cap_grave * 2 : 64;
        s->graveyard =
            fkit_must(realloc(s->graveyard, s->cap_grave * sizeof(void *)));
    }
    s->graveyard[s->n_grave++] = p;
}

/* ---- the store ---- */

static sim_row_t *row_find(sim_store_t *st, const char *gid)
{
    for (size_t i = 0; i < st->n_rows; i++)
        if (strcmp(st->rows[i].gid, gid) == 0)
            return &st->rows[i];
    return NULL;
}

static sim_row_t *row_add(sim_store_t *st, const char *gid)
{
    if (st->n_rows == st->cap_rows) {
        st->cap_rows = st->cap_rows ? st->cap_rows * 2 : 16;
        st->rows =
            fkit_must(realloc(st->rows, st->cap_rows * sizeof(*st->rows)));
    }
    sim_row_t *r = &st->rows[st->n_rows++];
    memset(r, 0, sizeof(*r));
    snprintf(r->gid, sizeof(r->gid), "%s", gid);
    return r;
}

static void row_keep(sim_row_t *r, tm_write_t *w)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->writes = fkit_must(realloc(r->writes, r->cap * sizeof(*r->writes)));
    }
    r->writes[r->n++] = w;
    r->status = w->status;
    r->submit_hash = w->submit_hash;
}

/* The result one write of node gets, as the MySQL store gives it (and
 * the SQLite one, with a single owner): an insert of a stored gid is
 * refused EXISTS; an update of a missing or final row FINAL; an update
 * of a row another node owns now, or claimed since this copy was loaded
 * (its generation moved), LOST; a copy (gid and generation) refused
 * earlier in the group is refused the same way — a copy loaded under a
 * newer claim is judged on its own. */
static tm_write_result_t write_result(sim_store_t *st, int node,
                                      const tm_write_t *group,
                                      const tm_write_t *w)
{
    for (const tm_write_t *e = group; e != w; e = e->next)
        if (e->result != TM_WRITE_DONE && e->generation == w->generation &&
            strcmp(e->gid, w->gid) == 0)
            return e->result;
    sim_row_t *r = row_find(st, w->gid);
    if (w->insert)
        return r ? TM_WRITE_EXISTS : TM_WRITE_DONE;
    if (!r || tm_tx_is_final((tm_tx_status_t)r->status))
        return TM_WRITE_FINAL;
    if (r->owner != node || r->generation != w->generation)
        return TM_WRITE_LOST;
    return TM_WRITE_DONE;
}

void sim_store_commit(sim_t *s, sim_node_t *n)
{
    sim_store_t *st = &s->store;
    n->commit_scheduled = 0;
    if (!n->queue.head)
        return;
    if (!s->quiet && sim_chance(s, s->crashy)) { /* it dies right here */
        sim_schedule(s, 0, SIM_EV_CRASH, NULL, (uint64_t)n->id);
        sim_schedule(s, sim_between(s, 1, 50), SIM_EV_RESTART, NULL,
                     (uint64_t)n->id);
        n->commit_scheduled = 1; /* nothing commits before the crash */
        return;
    }
    if (st->fail_commits > 0) { /* nothing stored; retried with backoff */
        st->fail_commits--;
        st->healthy = 0;
        sim_trace(s, "node %d: store commit fails", n->id);
        n->commit_scheduled = 1;
        sim_schedule(s, 20, SIM_EV_COMMIT, NULL, (uint64_t)n->id);
        return;
    }
    st->healthy = 1;
    tm_write_t *group = fkit_queue_take_all(&n->queue);
    for (tm_write_t *w = group; w; w = w->next)
        w->result = write_result(st, n->id, group, w);
    /* Durable now: keep what applied, then run callbacks in queue order
     * (writes they queue go to the next group). */
    tm_write_t *w = group;
    while (w) {
        tm_write_t *next = w->next;
        sim_trace(s, "node %d: commit %s%s status=%d gen=%llu -> %d", n->id,
                  w->gid, w->insert ? " insert" : "", w->status,
                  (unsigned long long)w->generation, (int)w->result);
        tm_store_done_fn done = w->done;
        void *arg = w->arg;
        tm_write_result_t result = w->result;
        if (result == TM_WRITE_DONE) {
            sim_row_t *r = row_find(st, w->gid);
            if (!r) {
                r = row_add(st, w->gid);
                r->owner = n->id;
            }
            row_keep(r, w);
        } else {
            tm_write_free(w);
        }
        if (done)
            done(arg, result);
        w = next;
    }
}

/* The queue dies with the process: its writes were never committed. */
void sim_store_crash(sim_t *s, sim_node_t *n)
{
    tm_write_t *w;
    while ((w = fkit_queue_pop(&n->queue))) {
        sim_bury(s, w->arg); /* the engine's ticket */
        tm_write_free(w);
    }
    n->commit_scheduled = 0; /* a commit event still due finds nothing */
    s->store.healthy = 1;
    s->store.fail_commits = 0;
}

void sim_store_free(sim_t *s)
{
    sim_store_t *st = &s->store;
    for (size_t i = 0; i < st->n_rows; i++) {
        for (size_t k = 0; k < st->rows[i].n; k++)
            tm_write_free(st->rows[i].writes[k]);
        free(st->rows[i].writes);
    }
    free(st->rows);
    fkit_topics_free(&st->topics);
    memset(st, 0, sizeof(*st));
}

int sim_store_status(sim_t *s, const char *gid)
{
    sim_row_t *r = row_find(&s->store, gid);
    return r ? r->status : 0;
}

/* ---- rows back into the model (as a store's read decodes them) ----------- */

tm_trans_t *sim_store_read(sim_t *s, const char *gid)
{
    sim_row_t *r = row_find(&s->store, gid);
    if (!r)
        return NULL;
    tm_trans_t *tx = fkit_row_read(gid, r->writes, r->n);
    tx->generation = r->generation;
    return tx;
}

/* ---- the store as a node's env ---- */

static void store_queue(void *self, tm_write_t *w, tm_store_done_fn done,
                        void *arg)
{
    sim_node_t *n = self;
    sim_t *s = n->sim;
    sim_lease_wake(s, n);
    fkit_queue_push(&n->queue, w, done, arg);
    if (!n->commit_scheduled) {
        n->commit_scheduled = 1;
        int slow = !s->quiet && sim_chance(s, 20); /* a slow disk */
        sim_schedule(s, slow ? sim_between(s, 5, 60) : sim_between(s, 0, 3),
                     SIM_EV_COMMIT, NULL, (uint64_t)n->id);
    }
}

static int store_get(void *self, const char *gid, tm_trans_t **out, char *err,
                     size_t errlen)
{
    (void)err;
    (void)errlen;
    *out = sim_store_read(((sim_node_t *)self)->sim, gid);
    return *out ? 1 : 0;
}

static int store_peek(void *self, const char *gid, tm_tx_status_t *status,
                      uint64_t *submit_hash, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    sim_row_t *r = row_find(&((sim_node_t *)self)->sim->store, gid);
    if (!r)
        return 0;
    *status = (tm_tx_status_t)r->status;
    *submit_hash = r->submit_hash;
    return 1;
}

/* Claim the row for node: the generation moves, so every write of a copy
 * loaded before is refused (the fencing rule). */
static tm_trans_t *claim(sim_t *s, sim_row_t *r, int node)
{
    r->owner = node;
    r->generation++;
    sim_trace(s, "node %d: claims %s gen=%llu", node, r->gid,
              (unsigned long long)r->generation);
    for (size_t i = 0; i < s->n_branches; i++) /* its attempt in flight */
        if (!strcmp(s->branches[i].gid, r->gid) &&
            s->branches[i].forward_starts)
            s->branches[i].crash_slack++;
    return sim_store_read(s, r->gid);
}

/* At start a node takes back its own unfinished rows (a claim each). */
static long store_load_unfinished(void *self, tm_store_each_fn fn, void *arg,
                                  char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    sim_node_t *n = self;
    sim_t *s = n->sim;
    long count = 0;
    for (size_t i = 0; i < s->store.n_rows; i++) {
        sim_row_t *r = &s->store.rows[i];
        if (tm_tx_is_final((tm_tx_status_t)r->status) || r->owner != n->id)
            continue;
        fn(claim(s, r, n->id), arg);
        count++;
    }
    return count;
}

static int store_healthy(void *self, char *why, size_t len)
{
    sim_t *s = ((sim_node_t *)self)->sim;
    if (!s->store.healthy && why)
        snprintf(why, len, "simulated commit failure");
    return s->store.healthy;
}

static int store_lease_ok(void *self)
{
    sim_node_t *n = self;
    sim_lease_wake(n->sim, n);
    return !n->lapse_pending && n->sim->now < n->lease_until;
}

void sim_lease_wake(sim_t *s, sim_node_t *n)
{
    if (n->ticking || !n->engine)
        return;
    n->ticking = 1;
    sim_schedule(s, 0, SIM_EV_TICK, n, n->gen);
}

int sim_lease_busy(const sim_t *s, const sim_node_t *n)
{
    if (!s->quiet || n->queue.head)
        return 1;
    for (size_t i = 0; i < s->store.n_rows; i++)
        if (!tm_tx_is_final((tm_tx_status_t)s->store.rows[i].status))
            return 1;
    return 0;
}

/* Topics: the store's subscriptions (fake_kit's), shared by the nodes and
 * kept across crashes like the rows. No workload of the simulator uses
 * them yet; they never fail. */
static int store_subscribe(void *self, const char *topic, const char *target,
                           const char *remark, int64_t now_ms, char *err,
                           size_t errlen)
{
    (void)err;
    (void)errlen;
    sim_store_t *st = &((sim_node_t *)self)->sim->store;
    return fkit_topics_subscribe(&st->topics, topic, target, remark, now_ms);
}

static int store_unsubscribe(void *self, const char *topic, const char *target,
                             char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    sim_store_t *st = &((sim_node_t *)self)->sim->store;
    return fkit_topics_unsubscribe(&st->topics, topic, target);
}

static int store_subscriptions(void *self, const char *topic,
                               tm_subscription_t **out, size_t *n, char *err,
                               size_t errlen)
{
    (void)err;
    (void)errlen;
    sim_store_t *st = &((sim_node_t *)self)->sim->store;
    fkit_topics_list(&st->topics, topic, out, n);
    return 0;
}

static const char *store_kind_name(void *self)
{
    (void)self;
    return "sim";
}

static void store_start_ownership(void *self,
                                  const tm_store_owner_hooks_t *hooks)
{
    sim_node_t *n = self;
    n->hooks = *hooks;
    n->has_hooks = 1;
}

/* A node's lease thread, every SIM_TICK_MS while it runs: renew its
 * leases; after a lapse (it was stopped longer than its lease) have the
 * engine re-confirm what it holds before acting; claim the unfinished
 * rows of a node whose leases ran out. */
void sim_lease_tick(sim_t *s, sim_node_t *n)
{
    if (n->lease_until <= s->now)
        n->lapse_pending = 1;
    n->lease_until = s->now + SIM_LEASE_MS;
    if (!n->has_hooks)
        return;
    if (n->lapse_pending) {
        sim_trace(s, "node %d: lease lapsed", n->id);
        n->hooks.lapsed(n->hooks.arg);
        n->lapse_pending = 0;
    }
    int claims = 0;
    for (size_t i = 0; i < s->store.n_rows && claims < 8; i++) {
        sim_row_t *r = &s->store.rows[i];
        if (tm_tx_is_final((tm_tx_status_t)r->status) || r->owner == n->id ||
            s->nodes[r->owner].lease_until > s->now)
            continue;
        n->hooks.adopt(claim(s, r, n->id), n->hooks.arg);
        claims++;
    }
}

/* ---- branch calls ---- */

static int call_start(void *self, const char *host_port, const char *method,
                      const uint8_t *payload, size_t len, const tm_md_t *md,
                      size_t n_md, uint32_t timeout_ms, tm_call_done_fn done,
                      void *arg, char *err, size_t errlen)
{
    (void)host_port;
    (void)payload;
    (void)len;
    sim_node_t *n = self;
    sim_t *s = n->sim;
    sim_call_t *c = fkit_must(calloc(1, sizeof(*c)));
    c->node = n->id;
    c->gen = n->gen;
    snprintf(c->gid, sizeof(c->gid), "%s", fkit_md_value(md, n_md, "dtm-gid"));
    snprintf(c->branch, sizeof(c->branch), "%s",
             fkit_md_value(md, n_md, "dtm-branch_id"));
    snprintf(c->op, sizeof(c->op), "%s", fkit_md_value(md, n_md, "dtm-op"));
    const tm_md_t *log = fkit_md_find(md, n_md, TM_ACTION_LOG_KEY);
    c->log_len = -1;
    if (log && log->value_len < sizeof(c->log)) {
        memcpy(c->log, log->value, log->value_len);
        c->log_len = (int)log->value_len;
    } else if (log) {
        sim_fail(s, "%s/%s: %s sent a log of %zu bytes", c->gid, c->branch,
                 c->op, log->value_len);
    }
    c->done = done;
    c->arg = arg;
    c->timeout_ms = timeout_ms;
    c->service = strstr(method, "Workflow/Resume") != NULL;
    if (!s->quiet && sim_chance(s, 2)) { /* gRPC could not even start it */
        snprintf(err, errlen, "simulated: no channel");
        sim_note_start(s, c->gid, c->branch, c->op);
        sim_note_unknown(s, c->gid, c->branch, c->op);
        sim_trace(s, "node %d: call %s/%s/%s not started", n->id, c->gid,
                  c->branch, c->op);
        free(c);
        return -1;
    }
    sim_trace(s, "node %d: call %s/%s/%s", n->id, c->gid, c->branch, c->op);
    sim_note_start(s, c->gid, c->branch, c->op);
    sim_schedule(s, sim_between(s, 0, 5), SIM_EV_ARRIVE, c, 0);
    return 0;
}

/* ---- timers on the virtual clock ---- */

static int timer_arm(void *self, tm_timer_node_t *node, int64_t due_ms)
{
    sim_node_t *n = self;
    sim_t *s = n->sim;
    return fkit_timers_arm(&s->timers, node, due_ms, s->seq++, n->id);
}

static int timer_disarm(void *self, tm_timer_node_t *node)
{
    return fkit_timers_disarm(&((sim_node_t *)self)->sim->timers, node);
}

int sim_timers_next(const sim_t *s, int64_t *due, uint64_t *seq)
{
    size_t i = fkit_timers_first(&s->timers);
    if (i == s->timers.n)
        return 0;
    *due = s->timers.nodes[i]->due_ms;
    *seq = s->timers.seqs[i];
    return 1;
}

int sim_timers_first_owner(const sim_t *s)
{
    size_t i = fkit_timers_first(&s->timers);
    return i == s->timers.n ? -1 : s->timers.owners[i];
}

/* The first timer's node is stopped: it fires once the node runs again. */
void sim_timers_defer_first(sim_t *s, int64_t until)
{
    size_t i = fkit_timers_first(&s->timers);
    if (i == s->timers.n)
        return;
    s->timers.nodes[i]->due_ms = until;
    s->timers.seqs[i] = s->seq++;
}

void sim_timers_fire_first(sim_t *s)
{
    fkit_timers_t *t = &s->timers;
    size_t i = fkit_timers_first(t);
    if (i == t->n)
        return;
    tm_timer_node_t *node = t->nodes[i];
    int owner = t->owners[i];
    fkit_timers_remove_at(t, i);
    sim_trace(s, "node %d: timer tag=%u", owner, node->tag);
    node->fn(node);
}

/* The timer thread dies with the process; the nodes stay the dead
 * engine's. */
void sim_timers_crash(sim_t *s, int node)
{
    fkit_timers_t *t = &s->timers;
    for (size_t i = t->n; i-- > 0;)
        if (t->owners[i] == node)
            fkit_timers_remove_at(t, i);
}

static int64_t clock_ms(void *self)
{
    return ((sim_node_t *)self)->sim->now;
}

/* ---- the front: the engine's answers to the initiators ---- */

static void front_answer(void *user, tm_rpc_t *rpc, const tm_answer_t *a)
{
    sim_t *s = ((sim_node_t *)user)->sim;
    sim_rpc_t *r = (sim_rpc_t *)rpc;
    if (r->answered)
        sim_fail(s, "a request was answered twice (client %d)", r->client);
    r->answered = 1;
    r->code = a->code;
    r->kind = a->kind;
    r->status =
        a->kind == TM_ANSWER_QUERY && !a->code ? a->trans->status : a->status;
    if (a->kind == TM_ANSWER_START_WORKFLOW && !a->code)
        sim_wf_note_progress(s, r, a->trans, a->created);
    sim_trace(s, "answer %s %s code=%d status=%d", sim_method_name(r->method),
              sim_gid_of(s, r->client), (int)a->code,
              a->code ? 0 : (int)r->status);
    sim_operator_answer(s, r);
}

static void front_drop(void *user, tm_rpc_t *rpc)
{
    (void)user;
    ((sim_rpc_t *)rpc)->answered = 1;
}

static int front_expired(void *user, const tm_rpc_t *rpc)
{
    sim_t *s = ((sim_node_t *)user)->sim;
    return ((const sim_rpc_t *)rpc)->deadline_ms <= s->now;
}

void sim_env(sim_node_t *n, tm_engine_env_t *env, tm_engine_front_t *front)
{
    *env = (tm_engine_env_t){
        .store = n,
        .store_queue = store_queue,
        .store_get = store_get,
        .store_peek = store_peek,
        .store_list = fkit_store_list_none,
        .store_load_unfinished = store_load_unfinished,
        .store_healthy = store_healthy,
        .store_subscribe = store_subscribe,
        .store_unsubscribe = store_unsubscribe,
        .store_subscriptions = store_subscriptions,
        .store_lease_ok = store_lease_ok,
        .store_kind_name = store_kind_name,
        .store_start_ownership = store_start_ownership,
        .caller = n,
        .call_start = call_start,
        .timers = n,
        .timer_arm = timer_arm,
        .timer_disarm = timer_disarm,
        .clock = n,
        .mono_ms = clock_ms,
        .wall_ms = clock_ms,
    };
    *front =
        (tm_engine_front_t){front_answer,  front_drop, fkit_front_watch_none,
                            front_expired, n,          NULL};
}
