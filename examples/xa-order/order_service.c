/*
 * order-service: the order side of the xa-order example. It owns the
 * orders of the shop, in its own database on MariaDB (default xa_orders):
 *
 *   orders(id VARCHAR(64) PRIMARY KEY, sku VARCHAR(64), qty INT,
 *          created TIMESTAMP)
 *
 * Its Prepare inserts the order as an XA branch and prepares it (the row
 * exists, locked and invisible to others, until trellisd calls Commit or
 * Rollback); an order id that already exists is a business failure
 * ("order exists"). Methods /xaorder.v1.Order/{Prepare,Commit,Rollback,
 * State}; the payload, command line and threads are xa_service.h's.
 */
#include <mysql.h>
#include <mysqld_error.h>
#include <stdio.h>

#include "xa_service.h"

/* The order as one row. */
static trellis_barrier_business_rc_t insert_order(MYSQL *conn, void *user,
                                                  char *msg, size_t msglen)
{
    const xa_item_t *it = user;
    if (example_service_exec(conn, msg, msglen,
                             "INSERT INTO orders (id, sku, qty) VALUES "
                             "('%s', '%s', %lld)",
                             it->order, it->sku, it->qty) == 0)
        return TRELLIS_BARRIER_BUSINESS_OK;
    if (mysql_errno(conn) != ER_DUP_ENTRY)
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    snprintf(msg, msglen, "order %s exists", it->order);
    return TRELLIS_BARRIER_BUSINESS_FAIL;
}

static const xa_service_def_t ORDER = {
    .name = "order-service",
    .service = "xaorder.v1.Order",
    .default_db = "xa_orders",
    .table_ddl = "CREATE TABLE IF NOT EXISTS orders ("
                 "id VARCHAR(64) NOT NULL PRIMARY KEY, "
                 "sku VARCHAR(64) NOT NULL, qty INT NOT NULL, "
                 "created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
                 ") ENGINE=InnoDB",
    .state_query = "SELECT id AS `order`, sku, qty FROM orders ORDER BY id",
    .prepare_sql = insert_order,
};

int main(int argc, char **argv)
{
    return xa_service_main(argc, argv, &ORDER);
}
