/*
 * outbox_order.c: the order payload of the order-outbox example and the
 * delivery handler its stock and shipping services share (see
 * outbox_order.h).
 *
 * A delivery is a message step trellisd calls with dtm-trans_type "msg"
 * and dtm-op "action"; it retries it until it answers OK, so the handler
 * leans on the barrier for "once": the first call that commits its
 * barrier row runs the business SQL, every later one is a duplicate that
 * does nothing and answers OK.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox_order.h"

/* ---- the order payload ---------------------------------------------- */

const char *outbox_hold_name(outbox_hold_t h)
{
    switch (h) {
    case OUTBOX_HOLD_BEFORE_COMMIT:
        return "before-commit";
    case OUTBOX_HOLD_AFTER_COMMIT:
        return "after-commit";
    case OUTBOX_HOLD_NONE:
        break;
    }
    return "none";
}

static int take_id(const char *v, char *out, size_t outlen)
{
    if (!example_service_valid_id(v, strlen(v)))
        return 0;
    snprintf(out, outlen, "%s", v);
    return 1;
}

static int take_qty(const char *v, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(v, &end, 10);
    return !errno && end != v && !*end && *out >= 0 && *out <= OUTBOX_QTY_MAX;
}

static int take_hold(const char *v, outbox_hold_t *out)
{
    if (!strcmp(v, "before-commit"))
        *out = OUTBOX_HOLD_BEFORE_COMMIT;
    else if (!strcmp(v, "after-commit"))
        *out = OUTBOX_HOLD_AFTER_COMMIT;
    else
        return 0;
    return 1;
}

/* One "key=value" field into o: the field's bit, or 0 when bad. */
static int take_field(const char *f, outbox_order_t *o)
{
    if (!strncmp(f, "order=", 6))
        return take_id(f + 6, o->order, sizeof o->order) ? 1 : 0;
    if (!strncmp(f, "item=", 5))
        return take_id(f + 5, o->item, sizeof o->item) ? 2 : 0;
    if (!strncmp(f, "qty=", 4))
        return take_qty(f + 4, &o->qty) ? 4 : 0;
    if (!strncmp(f, "hold=", 5))
        return take_hold(f + 5, &o->hold) ? 8 : 0;
    return 0;
}

int outbox_order_parse(const uint8_t *payload, size_t len, int with_hold,
                       outbox_order_t *o, char *err, size_t errlen)
{
    char text[320], *save = NULL;
    int have = 0, bad = len >= sizeof text;
    int allowed = with_hold ? 15 : 7;
    memset(o, 0, sizeof *o);
    if (!bad) {
        memcpy(text, payload, len);
        text[len] = '\0';
        for (char *f = strtok_r(text, " \n", &save); f && !bad;
             f = strtok_r(NULL, " \n", &save)) {
            int bit = take_field(f, o);
            bad = !bit || !(bit & allowed) || (have & bit);
            have |= bit;
        }
    }
    if (!bad && (have & 7) == 7)
        return 0;
    snprintf(err, errlen, "bad payload: want \"order=ID item=SKU qty=N%s\"",
             with_hold ? " [hold=before-commit|after-commit]" : "");
    return -1;
}

void outbox_order_format(const outbox_order_t *o, char *buf, size_t len)
{
    snprintf(buf, len, "order=%s item=%s qty=%lld", o->order, o->item, o->qty);
}

void outbox_say(const char *fmt, ...)
{
    if (example_service_opts()->quiet)
        return;
    char what[700], stamp[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    example_service_stamp(stamp, sizeof stamp);
    printf("%s %s: %s\n", stamp, example_service_log_name(), what);
}

/* ---- a delivery behind the barrier ------------------------------------ */

static const char *outcome_name(trellis_barrier_outcome_t o)
{
    static const char *const names[] = {
        [TRELLIS_BARRIER_DONE] = "done",
        [TRELLIS_BARRIER_SKIPPED_DUPLICATE] = "duplicate: nothing to do",
        [TRELLIS_BARRIER_SKIPPED_EMPTY] = "empty",
        [TRELLIS_BARRIER_SKIPPED_HANGING] = "hanging",
        [TRELLIS_BARRIER_BUSINESS_FAILURE] = "refused",
        [TRELLIS_BARRIER_ERROR] = "error",
    };
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "?";
}

/* The order's business SQL behind the barrier; its outcome, msg filled. */
static trellis_barrier_outcome_t
run_behind_barrier(const trellis_barrier_branch_t *b,
                   const outbox_delivery_t *d, outbox_order_t *o, char *msg,
                   size_t msglen)
{
    MYSQL *conn = example_service_conn(msg, msglen);
    if (!conn)
        return TRELLIS_BARRIER_ERROR;
    trellis_barrier_outcome_t out = trellis_barrier_run(
        conn, TRELLIS_BARRIER_DEFAULT_TABLE, b, d->fn, o, msg, msglen);
    if (out == TRELLIS_BARRIER_ERROR)
        example_service_conn_check();
    return out;
}

void outbox_delivery_handler(const trellis_branch_ctx_t *ctx,
                             const uint8_t *payload, size_t payload_len,
                             trellis_reply_t *reply, void *user)
{
    const outbox_delivery_t *d = user;
    outbox_order_t o;
    trellis_barrier_branch_t b;
    char msg[256] = "";
    if (outbox_order_parse(payload, payload_len, 0, &o, msg, sizeof msg) != 0) {
        /* Not a refusal: a bad payload is a bug to fix, then retried. */
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", msg);
        outbox_say("%s gid=%s branch=%s -> error: %s", d->name, ctx->gid,
                   ctx->branch_id, msg);
        return;
    }
    if (example_service_branch(ctx, d->method, "action", "msg", &b, reply) !=
        0) {
        outbox_say("%s gid=%s branch=%s order=%s -> rejected: %s", d->name,
                   ctx->gid, ctx->branch_id, o.order, reply->message);
        return;
    }
    trellis_barrier_outcome_t out =
        run_behind_barrier(&b, d, &o, msg, sizeof msg);
    trellis_barrier_fill_reply(out, msg, reply);
    outbox_say("%s gid=%s branch=%s order=%s item=%s qty=%lld -> %s%s%s",
               d->name, ctx->gid, ctx->branch_id, o.order, o.item, o.qty,
               outcome_name(out), *msg ? ": " : "", msg);
}

int outbox_delivery_add(trellis_participant_t *p,
                        const outbox_delivery_t *deliveries, size_t n,
                        char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (trellis_participant_handle(
                p, deliveries[i].method, outbox_delivery_handler,
                (void *)&deliveries[i], err, errlen) != TRELLIS_OK)
            return -1;
    return 0;
}
