/*
 * outbox-shipping-service: the shipping of the order-outbox example (run
 * as process "shipping-service"), a subscriber of the topic
 * "order.created". It owns the shipments, in its own database on MariaDB
 * (default oo_shipping):
 *
 *   shipments(id BIGINT AUTO_INCREMENT, order_id VARCHAR(64), item
 *             VARCHAR(64), qty BIGINT, created TIMESTAMP(6))
 *
 * (order_id is deliberately not unique: the barrier keeps it to one row
 * per order, which the example checks, the "subscriber down" scenario
 * included, where trellisd delivers many times before one call gets
 * through.)
 *
 *   /shipping.Shipping/Ship  a delivery of the topic's step, payload
 *                            "order=ID item=SKU qty=N": insert the order's
 *                            shipment, behind the barrier (outbox_order.h).
 *
 * The driver subscribes this method to the topic at start (through the
 * SDK, trellis_subscribe), and stops and restarts this process on its
 * port to play a subscriber that is down for a while.
 *
 * Command line: example_service.h's (--database defaults to oo_shipping).
 *
 * Threads: handlers run on the SDK's worker threads, each with its own
 * MariaDB connection (example_service.h).
 */
#include <stdio.h>

#include "outbox_order.h"

/* Record o's shipment. */
static trellis_barrier_business_rc_t biz_ship(MYSQL *conn, void *user,
                                              char *msg, size_t msglen)
{
    const outbox_order_t *o = user;
    if (example_service_exec(conn, msg, msglen,
                             "INSERT INTO shipments (order_id, item, qty) "
                             "VALUES ('%s', '%s', %lld)",
                             o->order, o->item, o->qty) != 0)
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    snprintf(msg, msglen, "shipment %llu for order %s",
             (unsigned long long)mysql_insert_id(conn), o->order);
    return TRELLIS_BARRIER_BUSINESS_OK;
}

static const outbox_delivery_t DELIVERIES[] = {
    {"/shipping.Shipping/Ship", "Ship", biz_ship},
};

static int add_handlers(trellis_participant_t *p, char *err, size_t errlen)
{
    return outbox_delivery_add(
        p, DELIVERIES, sizeof DELIVERIES / sizeof DELIVERIES[0], err, errlen);
}

static void ready(int port)
{
    printf("shipping-service ready database=%s port=%d\n",
           example_service_opts()->database, port);
}

static const example_service_def_t SHIPPING = {
    .program = "shipping-service",
    .usage_head = "outbox-shipping-service [--database DB]",
    .usage_tail = "[--threads N] [--quiet]",
    .default_db = "oo_shipping",
    .table_ddl = "CREATE TABLE IF NOT EXISTS shipments ("
                 "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                 "order_id VARCHAR(64) NOT NULL, item VARCHAR(64) NOT NULL, "
                 "qty BIGINT NOT NULL, "
                 "created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
                 "KEY (order_id)) ENGINE=InnoDB",
    .add_handlers = add_handlers,
    .ready = ready,
};

int main(int argc, char **argv)
{
    return example_service_main(argc, argv, &SHIPPING);
}
