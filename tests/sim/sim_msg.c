/*
 * sim_msg: the simulator's message workload (see sim.h) — an initiator
 * service that sends 2-phase messages the way docs/architecture.md
 * ("Messages") asks of one, with its own database, and the topics its
 * messages may name.
 *
 * Each message of a seed is chosen at setup: up to MSG_MAX_STEPS steps,
 * each to a target or to a topic's subscribers, in order or concurrent;
 * a local transaction that commits or rolls back, that begins at once or
 * late (the back-check may come first), and holds its barrier row for a
 * moment or for longer than the message's timeout; or sent
 * with submit (decided at once: no local transaction, no back-check).
 * A run is PrepareMessage → (only after its OK) the local transaction:
 * insert the barrier row (gid, 00, msg, 01) with reason "msg" — it fails
 * when the back-check's row is there, and the transaction rolls back —
 * and the business effect, then COMMIT (or ROLLBACK) → Submit (or Abort).
 * Every request is sent again until it is answered OK.
 *
 * The service is one process: before any step after a run's first it
 * may die (kill -9, at the seed's rate), every run with it, and stays
 * down a while. Its database does not die: an open local transaction is
 * rolled back (its row never existed), a committed one stays. Nothing
 * resumes a run; the back-check decides what the initiator left
 * undecided. The back-check (dtm-op query_prepared) is the service's: it
 * answers UNAVAILABLE while the service is down; otherwise it inserts the
 * row with reason "rollback" unless one is there and reads it back: "msg"
 * OK (committed), "rollback" ABORTED (not committed, and now it never
 * will). While a local transaction holds the row the check's insert waits
 * for its COMMIT or ROLLBACK (polled: SIM_EV_MSG_WAIT), or the check
 * answers FAILED_PRECONDITION at once; trellisd's deadline may pass
 * first. So a check never answers "not committed" for a transaction
 * that commits afterwards.
 *
 * Topics: each seed subscribes one to three of MSG_SUBSCRIBERS targets
 * to each topic at the start, through the env's store_subscribe, and
 * adds or removes subscribers while messages are being stored
 * (SIM_EV_TOPIC; a topic always keeps one). Every state of the topics is
 * kept with its time, so the checks know whom a message stored at a
 * given moment must reach.
 *
 * The notes of what trellisd answered and the delivered, and the checks
 * of what it all came to, are in sim_msg_check.c; the state both files
 * share is in sim_msg_impl.h.
 */
#include <stdlib.h>
#include <string.h>

#include "sim_msg_impl.h"

#define MSG_PATIENCE_MS 300

/* ---- the seed's messages and topics ------------------------------------ */

static void msg_define(sim_t *s, msg_t *m, int id)
{
    m->id = id;
    snprintf(m->gid, sizeof(m->gid), "m%d", id);
    m->n_steps = (int)sim_between(s, 1, MSG_MAX_STEPS);
    for (int k = 0; k < m->n_steps; k++)
        m->topic[k] = sim_chance(s, 40) ? (int)(sim_rand(s) % MSG_TOPICS) : -1;
    m->concurrent = sim_chance(s, 30);
    m->submit_now = sim_chance(s, 20);
    m->commit = sim_chance(s, 65);
    m->wait = sim_chance(s, 30);
    m->buggy = sim_chance(s, 30) ? (unsigned)sim_between(s, 10, 60) : 0;
    int t = (int)(sim_rand(s) % 4); /* trellisd's 400 ms, short, long */
    m->timeout_ms = t == 0   ? 0
                    : t == 1 ? (uint32_t)sim_between(s, 50, 200)
                             : (uint32_t)sim_between(s, 600, 1200);
    m->begin_ms = sim_chance(s, 15) ? sim_between(s, 50, 900) : 0;
    m->hold_ms =
        sim_chance(s, 30) ? sim_between(s, 50, 700) : sim_between(s, 0, 10);
    m->patience_ms =
        sim_chance(s, 20) ? sim_between(s, 1, 20) : MSG_PATIENCE_MS;
    sim_schedule(s, sim_between(s, 0, 600), SIM_EV_MSG, m, 0);
}

/* Subscribe (on) or unsubscribe target k of topic t, through the env the
 * engine has. */
static void topic_set(sim_t *s, int t, int k, int on)
{
    tm_engine_env_t env;
    tm_engine_front_t front;
    sim_env(&s->nodes[0], &env, &front);
    char topic[32], target[64], err[128];
    msg_topic_name(t, topic, sizeof(topic));
    msg_sub_target(t, k, target, sizeof(target));
    int rc =
        on ? env.store_subscribe(env.store, topic, target, "sim", s->now, err,
                                 sizeof(err))
           : env.store_unsubscribe(env.store, topic, target, err, sizeof(err));
    if (rc != 1)
        sim_fail(s, "topic %s: %s of %s answered %d", topic,
                 on ? "subscribe" : "unsubscribe", target, rc);
    sim_trace(s, "topic %s: %s %s", topic, on ? "subscribe" : "unsubscribe",
              target);
}

/* The topics' state now becomes one more entry of their history. */
static void history_push(sim_t *s, const unsigned *mask)
{
    sim_msgs_t *v = s->msgs;
    msg_subs_t *h = &v->hist[v->n_hist++];
    h->at = s->now;
    memcpy(h->mask, mask, sizeof(h->mask));
}

/* A subscriber comes or goes (never the last one: a message naming a
 * topic nobody subscribes to is refused, and that is not what this
 * workload is about). */
static void topic_change(sim_t *s, int t)
{
    sim_msgs_t *v = s->msgs;
    unsigned mask[MSG_TOPICS];
    memcpy(mask, v->hist[v->n_hist - 1].mask, sizeof(mask));
    int k = (int)(sim_rand(s) % MSG_SUBSCRIBERS);
    int on = !(mask[t] & (1u << k));
    if (!on && msg_popcount(mask[t]) == 1)
        return;
    topic_set(s, t, k, on);
    mask[t] ^= 1u << k;
    history_push(s, mask);
}

static void topics_setup(sim_t *s)
{
    unsigned mask[MSG_TOPICS];
    for (int t = 0; t < MSG_TOPICS; t++) {
        mask[t] = 0;
        int n = (int)sim_between(s, 1, 3);
        for (int k = 0; k < n; k++)
            mask[t] |= 1u << k;
        for (int k = 0; k < n; k++)
            topic_set(s, t, k, 1);
    }
    history_push(s, mask);
    int changes = (int)sim_between(s, 0, MSG_HISTORY_MAX - 1);
    for (int i = 0; i < changes; i++)
        sim_schedule(s, sim_between(s, 0, 1500), SIM_EV_TOPIC, NULL,
                     sim_rand(s) % MSG_TOPICS);
}

void sim_msg_setup(sim_t *s)
{
    sim_msgs_t *v = fkit_must(calloc(1, sizeof(*v)));
    s->msgs = v;
    v->n = sim_chance(s, 60) ? (size_t)sim_between(s, 1, MSG_MAX) : 0;
    v->deathly = (unsigned)sim_between(s, 0, 8);
    v->m = fkit_must(calloc(v->n ? v->n : 1, sizeof(*v->m)));
    if (!v->n)
        return;
    topics_setup(s);
    for (size_t i = 0; i < v->n; i++)
        msg_define(s, &v->m[i], (int)i);
}

size_t sim_msg_count(const sim_t *s)
{
    return s->msgs ? s->msgs->n : 0;
}

const char *sim_msg_gid(const sim_t *s, int idx)
{
    if (idx < 0 || (size_t)idx >= sim_msg_count(s))
        return "?";
    return s->msgs->m[idx].gid;
}

msg_t *sim_msg_find(sim_t *s, const char *gid)
{
    for (size_t i = 0; i < sim_msg_count(s); i++)
        if (strcmp(s->msgs->m[i].gid, gid) == 0)
            return &s->msgs->m[i];
    return NULL;
}

void sim_msg_free(sim_t *s)
{
    if (!s->msgs)
        return;
    for (size_t i = 0; i < s->msgs->n; i++)
        free(s->msgs->m[i].bytes);
    free(s->msgs->m);
    free(s->msgs);
    s->msgs = NULL;
}

/* ---- the service: up, down, dead --------------------------------------- */

static int svc_down(const sim_t *s)
{
    return s->now < s->msgs->down_until;
}

static void run_trace(sim_t *s, const msg_t *m, const char *what)
{
    sim_trace(s, "msg %s: %s", m->gid, what);
}

static void run_end(sim_t *s, msg_t *m, const char *why)
{
    run_trace(s, m, why);
    m->serial = 0;
    m->rpc = NULL;
}

/* kill -9 (at the seed's rate, while faults are on): every run stops
 * where it is, and the database rolls back the local transactions the
 * process had open. 1 when it died. */
static int svc_dies(sim_t *s)
{
    sim_msgs_t *v = s->msgs;
    if (s->quiet || !sim_chance(s, v->deathly))
        return 0;
    v->down_until = s->now + sim_between(s, 5, 300);
    v->life++;
    sim_trace(s, "msg service dies, down until %lld", (long long)v->down_until);
    for (size_t i = 0; i < v->n; i++) {
        msg_t *m = &v->m[i];
        if (!m->serial)
            continue;
        if (m->locked)
            run_trace(s, m, "its open local transaction is rolled back");
        m->locked = 0;
        run_end(s, m, "the service died");
    }
    return 1;
}

/* The service lives on to take the run's next step: 0 when it died
 * first (never before the run's first request). */
static int run_lives(sim_t *s, msg_t *m)
{
    if (m->sent > 0 && svc_dies(s))
        return 0;
    m->sent++;
    return 1;
}

static void poll_in(sim_t *s, msg_t *m, int64_t lo, int64_t hi)
{
    sim_schedule(s, sim_between(s, lo, hi), SIM_EV_MSG, m, m->serial);
}

/* ---- a run's requests -------------------------------------------------- */

static void run_send(sim_t *s, msg_t *m)
{
    if (!run_lives(s, m))
        return;
    if (m->method == SIM_M_SUBMIT)
        m->submit_sent = 1;
    else if (m->method == SIM_M_ABORT)
        m->abort_sent = 1;
    m->rpc = sim_send(s, msg_client(s, m), m->method, m->node, m->patience_ms,
                      m->bytes, m->len);
    poll_in(s, m, 1, 20);
}

static void pack_prepare(msg_t *m)
{
    Trellis__V1__MessageStep steps[MSG_MAX_STEPS], *sp[MSG_MAX_STEPS];
    char topics[MSG_MAX_STEPS][32];
    for (int k = 0; k < m->n_steps; k++) {
        trellis__v1__message_step__init(&steps[k]);
        if (m->topic[k] < 0) {
            steps[k].target = SIM_TARGET_DELIVER;
        } else {
            msg_topic_name(m->topic[k], topics[k], sizeof(topics[k]));
            steps[k].topic = topics[k];
        }
        steps[k].payload.data = (uint8_t *)m->gid;
        steps[k].payload.len = strlen(m->gid);
        sp[k] = &steps[k];
    }
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.timeout_to_fail_ms = m->timeout_ms;
    o.wait_result = m->submit_now && m->wait;
    Trellis__V1__PrepareMessageRequest r =
        TRELLIS__V1__PREPARE_MESSAGE_REQUEST__INIT;
    r.gid = m->gid;
    r.steps = sp;
    r.n_steps = (size_t)m->n_steps;
    r.query_prepared = m->submit_now ? "" : SIM_TARGET_CHECK;
    r.options = &o;
    r.concurrent = m->concurrent;
    r.submit = m->submit_now;
    sim_pack(&r.base, &m->bytes, &m->len);
    m->method = SIM_M_PREPARE_MESSAGE;
}

/* Submit (the local transaction committed) or Abort (it did not). */
static void send_decision(sim_t *s, msg_t *m, int commit)
{
    m->phase = MSG_DECIDE;
    m->rpc = NULL;
    m->method = sim_pack_decision(m->gid, commit, m->wait,
                                  "the local transaction rolled back",
                                  &m->bytes, &m->len);
    run_send(s, m);
}

/* ---- the local transaction --------------------------------------------- */

/* BEGIN; INSERT the barrier row with reason "msg": a duplicate key when
 * the back-check's row is there, and the transaction rolls back. */
static void local_begin(sim_t *s, msg_t *m)
{
    if (!run_lives(s, m))
        return;
    if (m->row != ROW_NONE) {
        run_trace(s, m,
                  "local transaction: the back-check's row is there, "
                  "its insert fails: rollback");
        send_decision(s, m, 0);
        return;
    }
    m->locked = 1;
    m->phase = MSG_HOLD;
    sim_trace(s, "msg %s: local transaction holds the row for %lld ms", m->gid,
              (long long)m->hold_ms);
    sim_schedule(s, m->hold_ms, SIM_EV_MSG, m, m->serial);
}

/* Its business effect, then COMMIT (or ROLLBACK, as the seed says). */
static void local_end(sim_t *s, msg_t *m)
{
    if (!run_lives(s, m))
        return;
    m->locked = 0;
    if (m->commit) {
        if (m->row != ROW_NONE)
            sim_fail(s,
                     "%s: the local transaction commits over the "
                     "back-check's row",
                     m->gid);
        m->row = ROW_MSG;
        m->effect = 1;
    }
    run_trace(s, m,
              m->commit ? "local transaction commits"
                        : "local transaction rolls back");
    send_decision(s, m, m->commit);
}

/* ---- answers ----------------------------------------------------------- */

static void advance(sim_t *s, msg_t *m)
{
    if (m->phase == MSG_DECIDE) {
        run_end(s, m, m->method == SIM_M_SUBMIT ? "submitted" : "aborted");
    } else if (m->submit_now) {
        run_end(s, m, "sent");
    } else {
        m->phase = MSG_LOCAL; /* only now: the prepare is durable */
        m->rpc = NULL;
        poll_in(s, m, m->begin_ms, m->begin_ms + 5);
    }
}

static void run_poll(sim_t *s, msg_t *m)
{
    if (m->phase == MSG_LOCAL) {
        local_begin(s, m);
        return;
    }
    if (m->phase == MSG_HOLD) {
        local_end(s, m);
        return;
    }
    sim_rpc_t *q = m->rpc;
    if (!q) {
        run_send(s, m);
    } else if (!q->answered) {
        if (s->now < q->deadline_ms && q->gen == s->nodes[q->node].gen) {
            poll_in(s, m, 5, 30);
            return;
        }
        m->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
        run_send(s, m); /* gave up waiting: send it again */
    } else {
        int a = sim_msg_note_answer(s, m, q);
        if (a == MSG_ANS_OK) {
            advance(s, m);
        } else if (a == MSG_ANS_RETRY) {
            m->rpc = NULL;
            if (q->code == TM_CODE_UNAVAILABLE) /* maybe another node */
                m->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
            poll_in(s, m, 5, 30);
        } else {
            run_end(s, m, "stops: a wrong answer");
        }
    }
}

/* The user's request reaches the service: the message's one run. */
static void launch(sim_t *s, msg_t *m)
{
    sim_msgs_t *v = s->msgs;
    if (m->launched)
        return;
    if (svc_down(s)) { /* the user tries again later */
        sim_schedule(s, v->down_until - s->now + sim_between(s, 0, 50),
                     SIM_EV_MSG, m, 0);
        return;
    }
    m->launched = 1;
    m->serial = ++v->serials;
    m->phase = MSG_PREPARE;
    m->node = (int)(sim_rand(s) % (uint64_t)s->n_nodes);
    sim_trace(s, "msg %s: %d steps%s, %s%s", m->gid, m->n_steps,
              m->concurrent ? " (concurrent)" : "",
              m->submit_now ? "submit at once"
              : m->commit   ? "local transaction commits"
                            : "local transaction rolls back",
              m->hold_ms > 20 ? " (holds its row long)" : "");
    pack_prepare(m);
    run_send(s, m);
}

/* ---- the back-check ---------------------------------------------------- */

/* A back-check in the service: waiting for the row, perhaps. */
typedef struct {
    sim_call_t *c;
    msg_t *m;
    uint64_t life;    /* the service's incarnation it arrived in */
    int64_t deadline; /* trellisd's */
    int lost;         /* done, but the answer is lost */
    int waited;
} check_t;

static void reply(sim_t *s, sim_call_t *c, int status, int64_t in_ms)
{
    c->status = status;
    sim_schedule(s, in_ms, SIM_EV_REPLY, c, 0);
}

/* INSERT IGNORE the row with reason "rollback", then read it back. */
static int barrier_check(sim_t *s, msg_t *m)
{
    if (m->row == ROW_NONE) {
        m->row = ROW_ROLLBACK;
        run_trace(s, m, "the back-check inserts its rollback row");
    }
    if (m->row == ROW_MSG) {
        m->checks_ok++;
        return ST_OK;
    }
    m->checks_aborted++;
    return ST_ABORTED;
}

static void check_try(sim_t *s, check_t *w)
{
    msg_t *m = w->m;
    const char *how;
    if (w->life != s->msgs->life) { /* the service died meanwhile */
        reply(s, w->c, ST_UNAVAILABLE, 0);
        how = "the service died";
    } else if (m->locked && s->now >= w->deadline) {
        reply(s, w->c, ST_DEADLINE, 0);
        how = "still waits for the row at trellisd's deadline";
    } else if (m->locked && !w->waited && sim_chance(s, 30)) {
        reply(s, w->c, ST_FAILED_PRECONDITION, sim_between(s, 0, 5));
        how = "the row is held: FAILED_PRECONDITION";
    } else if (m->locked) {
        w->waited = 1;
        sim_schedule(s, sim_between(s, 1, 10), SIM_EV_MSG_WAIT, w, 0);
        return;
    } else {
        int st = barrier_check(s, m);
        how = st == ST_OK ? "OK (committed)" : "ABORTED (not committed)";
        if (w->lost)
            reply(s, w->c, ST_DEADLINE,
                  w->deadline > s->now ? w->deadline - s->now : 0);
        else
            reply(s, w->c, st, sim_between(s, 0, 5));
    }
    sim_trace(s, "msg %s: back-check%s: %s", m->gid,
              w->lost ? " (answer lost)" : "", how);
    free(w);
}

void sim_msg_serve(sim_t *s, sim_call_t *c)
{
    msg_t *m = sim_msg_find(s, c->gid);
    if (!m || m->submit_now) {
        sim_fail(s, "%s: a back-check, yet it was sent without one", c->gid);
        reply(s, c, ST_ABORTED, 0);
        return;
    }
    if (svc_down(s)) {
        run_trace(s, m, "back-check: the service is down");
        reply(s, c, ST_UNAVAILABLE, sim_between(s, 0, 5));
        return;
    }
    sim_fate_t fate = sim_call_fate(s);
    if (fate == SIM_FATE_UNAVAILABLE || fate == SIM_FATE_ONGOING) {
        run_trace(s, m, "back-check: not done");
        reply(s, c,
              fate == SIM_FATE_ONGOING ? ST_FAILED_PRECONDITION
                                       : ST_UNAVAILABLE,
              sim_between(s, 0, 5));
        return;
    }
    check_t *w = fkit_must(calloc(1, sizeof(*w)));
    w->c = c;
    w->m = m;
    w->life = s->msgs->life;
    w->deadline = s->now + c->timeout_ms;
    w->lost = fate == SIM_FATE_LOST;
    check_try(s, w);
}

void sim_msg_event(sim_t *s, sim_ev_kind_t kind, void *p, uint64_t n)
{
    if (kind == SIM_EV_TOPIC)
        topic_change(s, (int)n);
    else if (kind == SIM_EV_MSG_WAIT)
        check_try(s, p);
    else if (n == 0)
        launch(s, p);
    else if (n == ((msg_t *)p)->serial)
        run_poll(s, p);
}
