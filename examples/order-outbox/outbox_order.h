/*
 * outbox_order.h: what the three services of the order-outbox example
 * (outbox-order-service, outbox-stock-service, outbox-shipping-service)
 * share — the order they pass around, as one line of text, and the way
 * stock and shipping take a delivery of the order's message: behind the
 * branch barrier, once per order however often trellisd delivers it.
 *
 * The order, a payload of one line (every field once, in any order):
 *
 *   order=ID item=SKU qty=N     ID, SKU: 1..64 of [A-Za-z0-9_.-];
 *                               N: 0..OUTBOX_QTY_MAX (0 is read here, so
 *                               the order service can refuse it itself)
 *
 * The order service may also take "hold=before-commit|after-commit"
 * (outbox_order_parse's with_hold).
 *
 * Threads: every function may be called from any thread; a delivery
 * handler uses the calling worker's MariaDB connection
 * (example_service.h).
 */
#ifndef OUTBOX_ORDER_H
#define OUTBOX_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include "example_service.h"

#define OUTBOX_QTY_MAX 1000000
#define OUTBOX_TOPIC "order.created"

/* Where the order service holds a placement until the driver releases it
 * (or kills the service). */
typedef enum {
    OUTBOX_HOLD_NONE = 0,
    OUTBOX_HOLD_BEFORE_COMMIT, /* inside the local transaction, row inserted */
    OUTBOX_HOLD_AFTER_COMMIT,  /* committed, the message not yet submitted */
} outbox_hold_t;

typedef struct {
    char order[EXAMPLE_SERVICE_ID_MAX + 1];
    char item[EXAMPLE_SERVICE_ID_MAX + 1];
    long long qty;
    outbox_hold_t hold;
} outbox_order_t;

/* "before-commit", "after-commit", or "none". */
const char *outbox_hold_name(outbox_hold_t h);

/* Parse payload[len] into o; with_hold allows the hold field. 0, or -1
 * with err saying what is wanted. */
int outbox_order_parse(const uint8_t *payload, size_t len, int with_hold,
                       outbox_order_t *o, char *err, size_t errlen);

/* o as a delivery payload, "order=ID item=SKU qty=N", into buf[len]. */
void outbox_order_format(const outbox_order_t *o, char *buf, size_t len);

/* One delivery method of a participant. Static, borrowed. */
typedef struct {
    const char *method; /* "/stock.Stock/Reserve" */
    const char *name;   /* "Reserve": in log lines */
    /* The business SQL, run behind the barrier with the parsed
     * outbox_order_t as user. A delivery of a message must not be refused
     * (trellisd would retry it for ever): answer BUSINESS_ERROR for
     * "not now". */
    trellis_barrier_business_fn fn;
} outbox_delivery_t;

/* A trellis_handler_fn for a delivery (user: its outbox_delivery_t): the
 * branch from the dtm-* metadata (op "action", trans_type "msg"), the
 * order from the payload, fn behind trellis_barrier_run, the reply from
 * its outcome, and one line on stdout (unless --quiet):
 *   "<time> <log name>: <name> gid=G branch=B order=ID -> <outcome>". */
void outbox_delivery_handler(const trellis_branch_ctx_t *ctx,
                             const uint8_t *payload, size_t payload_len,
                             trellis_reply_t *reply, void *user);

/* Register each of deliveries[0..n) on p. 0, or -1 with err. */
int outbox_delivery_add(trellis_participant_t *p,
                        const outbox_delivery_t *deliveries, size_t n,
                        char *err, size_t errlen);

/* Print "<time> <log name>: <printf-formatted text>" unless --quiet. */
void outbox_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* OUTBOX_ORDER_H */
