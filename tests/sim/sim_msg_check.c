/*
 * sim_msg_check: the message workload seen from outside — the notes of
 * what trellisd answered the initiator (sim_msg.c) and of the deliveries
 * that reached a participant — and the checks of what the messages came
 * to.
 *
 * As it happens: PrepareMessage never answers a decision the initiator
 * did not take (delivered before its local transaction ran; dropped
 * unless the back-check's row is there); Submit, sent after the local
 * transaction committed, never answers a dropped message; Abort, sent
 * after it did not, is never refused as already submitted; no delivery
 * reaches a participant before the decision to deliver is stored.
 *
 * Once everything settled (sim_msg_check): a message whose local
 * transaction committed (with submit: one that is stored) ended
 * SUCCEEDED, and each of its deliveries took effect, once behind the
 * participant's barrier; one whose local transaction did not commit is
 * not stored or ended FAILED, and nothing of it reached a participant;
 * a message trellisd acknowledged is stored; a Submit answered OK means
 * SUCCEEDED, an Abort answered OK FAILED; a dropped message was aborted
 * or back-checked ABORTED, a delivered one submitted or back-checked OK;
 * its branches are the back-check head and, step by step, the step's
 * target or exactly the topic's subscribers at the moment it was stored.
 */
#include <stdlib.h>
#include <string.h>

#include "sim_msg_impl.h"

/* ---- what trellisd answered and delivered ------------------------------ */

static int delivered_status(int st)
{
    return st == TM_TX_SUBMITTED || st == TM_TX_SUCCEEDED;
}

static int dropped_status(int st)
{
    return st == TM_TX_ABORTING || st == TM_TX_FAILED;
}

static const char *local_words(const msg_t *m)
{
    return m->submit_now       ? "sent with submit"
           : m->row == ROW_MSG ? "its local transaction committed"
                               : "its local transaction did not commit";
}

static int note_prepared(sim_t *s, msg_t *m, int st)
{
    m->prepare_acked = 1;
    int wrong = m->submit_now
                    ? !delivered_status(st)
                    : delivered_status(st) ||
                          (dropped_status(st) && m->row != ROW_ROLLBACK);
    if (wrong)
        sim_fail(s, "%s: PrepareMessage answered %s (%s)", m->gid,
                 tm_tx_status_name((tm_tx_status_t)st), local_words(m));
    return wrong ? MSG_ANS_WRONG : MSG_ANS_OK;
}

int sim_msg_note_answer(sim_t *s, msg_t *m, const sim_rpc_t *r)
{
    int code = r->code;
    if (code == TM_CODE_UNAVAILABLE || code == TM_CODE_RESOURCE_EXHAUSTED ||
        code == TM_CODE_DEADLINE_EXCEEDED)
        return MSG_ANS_RETRY;
    if (code != TM_CODE_OK) {
        sim_fail(s, "%s: %s refused with code %d (%s)", m->gid,
                 sim_method_name(r->method), code, local_words(m));
        return MSG_ANS_WRONG;
    }
    int st = (int)r->status;
    if (r->method == SIM_M_PREPARE_MESSAGE)
        return note_prepared(s, m, st);
    int submit = r->method == SIM_M_SUBMIT;
    if (submit ? !delivered_status(st) : !dropped_status(st)) {
        sim_fail(s, "%s: %s answered %s (%s)", m->gid,
                 sim_method_name(r->method),
                 tm_tx_status_name((tm_tx_status_t)st), local_words(m));
        return MSG_ANS_WRONG;
    }
    if (submit)
        m->submit_acked = 1;
    else
        m->abort_acked = 1;
    return MSG_ANS_OK;
}

int sim_msg_note_delivery(sim_t *s, sim_call_t *c)
{
    msg_t *m = sim_msg_find(s, c->gid);
    if (!m)
        return 0;
    m->deliveries++;
    int st = sim_store_status(s, c->gid);
    if (!delivered_status(st))
        sim_fail(s, "%s/%s: delivered while it is stored %s (%s)", c->gid,
                 c->branch,
                 st ? tm_tx_status_name((tm_tx_status_t)st) : "nowhere",
                 local_words(m));
    if (!sim_branch_find(s, c->gid, c->branch)) {
        sim_branch_t *b = sim_branch_add(s, c->gid, c->branch);
        if (sim_chance(s, m->buggy)) /* answers ABORTED a few times */
            b->bug_aborts = (unsigned)sim_between(s, 1, 3);
    }
    return 1;
}

/* ---- the checks -------------------------------------------------------- */

/* Which of step k's possible targets target is: 0 for its named
 * target, the subscriber's number for its topic's; -1 none. */
static int target_bit(int t, const char *target)
{
    if (!target)
        return -1;
    if (t < 0)
        return strcmp(target, SIM_TARGET_DELIVER) ? -1 : 0;
    for (int k = 0; k < MSG_SUBSCRIBERS; k++) {
        char name[64];
        msg_sub_target(t, k, name, sizeof(name));
        if (strcmp(target, name) == 0)
            return k;
    }
    return -1;
}

/* Whether the deliveries are, step by step, each step's target or its
 * topic's subscribers in mask (in any order), each once. */
static int layout_matches(const msg_t *m, const tm_trans_t *tx,
                          const unsigned *mask)
{
    size_t at = 1;
    for (int k = 0; k < m->n_steps; k++) {
        int t = m->topic[k];
        unsigned want = t < 0 ? 1u : mask[t], got = 0;
        for (unsigned i = 0; i < msg_popcount(want); i++, at++) {
            if (at >= tx->n_branches)
                return 0;
            int bit =
                target_bit(t, tx->branches[at].ops[TM_SLOT_FORWARD].target);
            if (bit < 0 || (got & (1u << bit)))
                return 0;
            got |= 1u << bit;
        }
        if (got != want)
            return 0;
    }
    return at == tx->n_branches;
}

/* The branches: the head, then each step's target or its topic's
 * subscribers as they were when the message was stored (the last state
 * before that moment, or one set at that very ms). */
static void check_layout(sim_t *s, const msg_t *m, const tm_trans_t *tx)
{
    const sim_msgs_t *v = s->msgs;
    int64_t at = tx->created_ms;
    if (tx->n_branches < 2 || tx->branches[0].mode != TM_MODE_MSG_CHECK ||
        strcmp(tx->branches[0].branch_id, "00") != 0) {
        sim_fail(s, "%s: stored without its back-check head", m->gid);
        return;
    }
    for (size_t i = 0; i < v->n_hist; i++)
        if (v->hist[i].at <= at &&
            (i + 1 == v->n_hist || v->hist[i + 1].at >= at) &&
            layout_matches(m, tx, v->hist[i].mask))
            return;
    sim_fail(s,
             "%s (stored at %lld) has %zu deliveries, not its steps' "
             "targets and the subscribers of that moment",
             m->gid, (long long)at, tx->n_branches - 1);
}

/* Every delivery took effect (delivered), or none reached anyone. */
static void check_effects(sim_t *s, const msg_t *m, const tm_trans_t *tx,
                          int delivered)
{
    for (size_t i = 1; i < tx->n_branches; i++) {
        const tm_branch_t *b = &tx->branches[i];
        const sim_branch_t *p = sim_branch_find(s, m->gid, b->branch_id);
        int effect = p && p->fwd_effect;
        int done = b->ops[TM_SLOT_FORWARD].status == TM_OP_SUCCEEDED;
        if (b->mode != TM_MODE_MSG || effect != delivered || done != delivered)
            sim_fail(s,
                     "%s %s (%s), yet delivery %s has effect=%d, op "
                     "succeeded=%d",
                     m->gid, tm_tx_status_name(tx->status), local_words(m),
                     b->branch_id, effect, done);
    }
    if (!delivered && m->deliveries)
        sim_fail(s, "%s %s (%s), yet %u deliveries reached a participant",
                 m->gid, tm_tx_status_name(tx->status), local_words(m),
                 m->deliveries);
}

/* Who decided it: a dropped message was aborted or back-checked ABORTED,
 * a delivered one submitted or back-checked OK. */
static void check_decider(sim_t *s, const msg_t *m, const tm_trans_t *tx)
{
    int ok = tx->status == TM_TX_SUCCEEDED
                 ? m->submit_now || m->submit_sent || m->checks_ok
                 : m->abort_sent || m->checks_aborted;
    if (!ok)
        sim_fail(s,
                 "%s %s, yet the initiator sent %s and the back-check "
                 "answered OK %u, ABORTED %u times",
                 m->gid, tm_tx_status_name(tx->status),
                 m->submit_sent  ? "Submit"
                 : m->abort_sent ? "Abort"
                                 : "no decision",
                 m->checks_ok, m->checks_aborted);
}

static void check_stored(sim_t *s, const msg_t *m, const tm_trans_t *tx)
{
    int committed = m->submit_now || m->row == ROW_MSG;
    tm_tx_status_t want = committed ? TM_TX_SUCCEEDED : TM_TX_FAILED;
    if (tx->status != want) {
        sim_fail(s, "%s ended %s (%s: %s)", m->gid,
                 tm_tx_status_name(tx->status), local_words(m),
                 tx->reason ? tx->reason : "");
        return;
    }
    if ((m->submit_acked && !committed) || (m->abort_acked && committed))
        sim_fail(s, "%s: %s was answered OK, yet it ended %s", m->gid,
                 m->submit_acked ? "Submit" : "Abort",
                 tm_tx_status_name(tx->status));
    check_decider(s, m, tx);
    check_layout(s, m, tx);
    check_effects(s, m, tx, committed);
}

static void check_one(sim_t *s, const msg_t *m)
{
    if (m->effect != (m->row == ROW_MSG) || m->locked)
        sim_fail(s, "%s: the initiator's database is inconsistent", m->gid);
    tm_trans_t *tx = sim_store_read(s, m->gid);
    if (!tx) {
        if (m->prepare_acked || m->row == ROW_MSG)
            sim_fail(s, "%s is not stored (%s; PrepareMessage answered %s)",
                     m->gid, local_words(m), m->prepare_acked ? "OK" : "not");
        else if (m->deliveries)
            sim_fail(s, "%s is not stored, yet it was delivered", m->gid);
        return;
    }
    s->res->acked += (unsigned)m->prepare_acked;
    if (!tm_tx_is_final(tx->status))
        sim_fail(s, "message %s did not end: %s (%s)", m->gid,
                 tm_tx_status_name(tx->status), local_words(m));
    else
        check_stored(s, m, tx);
    tm_trans_free(tx);
}

void sim_msg_check(sim_t *s)
{
    for (size_t i = 0; i < sim_msg_count(s); i++)
        check_one(s, &s->msgs->m[i]);
}
