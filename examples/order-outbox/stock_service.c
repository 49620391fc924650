/*
 * outbox-stock-service: the stock of the order-outbox example (run as
 * process "stock-service"). It owns the warehouse's stock and the
 * quantity reserved for orders, in its own database on MariaDB (default
 * oo_stock):
 *
 *   stock(item VARCHAR(64) PRIMARY KEY, quantity BIGINT, reserved BIGINT)
 *
 *   /stock.Stock/Reserve  a step of an order's message, payload "order=ID
 *                         item=SKU qty=N": move N of the item from
 *                         quantity to reserved, behind the barrier
 * (outbox_order.h): once per order however often it is delivered. A message
 *                         step cannot be refused — the order is already
 *                         committed — so an unknown item or too little
 *                         stock is an error, retried by trellisd until
 *                         someone restocks.
 *
 * The driver seeds the stock table straight in MariaDB.
 *
 * Command line: example_service.h's (--database defaults to oo_stock).
 *
 * Threads: handlers run on the SDK's worker threads, each with its own
 * MariaDB connection (example_service.h).
 */
#include <stdio.h>

#include "outbox_order.h"

/* Move o's quantity of its item from quantity to reserved. */
static trellis_barrier_business_rc_t biz_reserve(MYSQL *conn, void *user,
                                                 char *msg, size_t msglen)
{
    const outbox_order_t *o = user;
    if (example_service_exec(conn, msg, msglen,
                             "UPDATE stock SET quantity = quantity - %lld, "
                             "reserved = reserved + %lld WHERE item = '%s' "
                             "AND quantity >= %lld",
                             o->qty, o->qty, o->item, o->qty) != 0)
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    if (mysql_affected_rows(conn) != 1) {
        snprintf(msg, msglen,
                 "not enough %s in stock for order %s (retried until "
                 "restocked)",
                 o->item, o->order);
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    }
    snprintf(msg, msglen, "reserved %lld %s", o->qty, o->item);
    return TRELLIS_BARRIER_BUSINESS_OK;
}

static const outbox_delivery_t DELIVERIES[] = {
    {"/stock.Stock/Reserve", "Reserve", biz_reserve},
};

static int add_handlers(trellis_participant_t *p, char *err, size_t errlen)
{
    return outbox_delivery_add(
        p, DELIVERIES, sizeof DELIVERIES / sizeof DELIVERIES[0], err, errlen);
}

static void ready(int port)
{
    printf("stock-service ready database=%s port=%d\n",
           example_service_opts()->database, port);
}

static const example_service_def_t STOCK = {
    .program = "stock-service",
    .usage_head = "outbox-stock-service [--database DB]",
    .usage_tail = "[--threads N] [--quiet]",
    .default_db = "oo_stock",
    .table_ddl = "CREATE TABLE IF NOT EXISTS stock ("
                 "item VARCHAR(64) NOT NULL PRIMARY KEY, "
                 "quantity BIGINT NOT NULL, reserved BIGINT NOT NULL "
                 "DEFAULT 0) ENGINE=InnoDB",
    .add_handlers = add_handlers,
    .ready = ready,
};

int main(int argc, char **argv)
{
    return example_service_main(argc, argv, &STOCK);
}
