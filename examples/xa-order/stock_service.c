/*
 * stock-service: the stock side of the xa-order example. It owns the stock
 * levels, in its own database on MariaDB (default xa_stock):
 *
 *   stock(sku VARCHAR(64) PRIMARY KEY, qty BIGINT)
 *
 * Its Prepare deducts the ordered quantity as an XA branch and prepares it
 * (the row stays locked until trellisd calls Commit or Rollback, so no
 * other order can take the same units meanwhile); when the stock is short
 * it refuses with a business failure ("out of stock: SKU has N, wanted M")
 * and nothing stays prepared. Methods /xaorder.v1.Stock/{Prepare,Commit,
 * Rollback,State} (xa_service.h), and outside any transaction:
 *
 *   /xaorder.v1.Stock/Seed   "sku=SKU qty=N": set the stock level of SKU
 *                            (creating it)
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xa_service.h"

/* The stock level of it->sku into *have; 1 found, 0 not, -1 error. */
static int stock_level(MYSQL *conn, const xa_item_t *it, long long *have,
                       char *msg, size_t msglen)
{
    if (example_service_exec(conn, msg, msglen,
                             "SELECT qty FROM stock WHERE sku = '%s'",
                             it->sku) != 0)
        return -1;
    MYSQL_RES *r = mysql_store_result(conn);
    if (!r) {
        snprintf(msg, msglen, "%s", mysql_error(conn));
        return -1;
    }
    MYSQL_ROW row = mysql_fetch_row(r);
    int found = row != NULL && row[0] != NULL;
    if (found)
        *have = atoll(row[0]);
    mysql_free_result(r);
    return found;
}

/* Take qty units, only while that many are there. */
static trellis_barrier_business_rc_t deduct_stock(MYSQL *conn, void *user,
                                                  char *msg, size_t msglen)
{
    const xa_item_t *it = user;
    long long have = 0;
    if (example_service_exec(
            conn, msg, msglen,
            "UPDATE stock SET qty = qty - %lld WHERE sku = '%s' "
            "AND qty >= %lld",
            it->qty, it->sku, it->qty) != 0)
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    if (mysql_affected_rows(conn) == 1)
        return TRELLIS_BARRIER_BUSINESS_OK;
    int found = stock_level(conn, it, &have, msg, msglen);
    if (found < 0)
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    if (found)
        snprintf(msg, msglen, "out of stock: %s has %lld, wanted %lld", it->sku,
                 have, it->qty);
    else
        snprintf(msg, msglen, "no such sku %s", it->sku);
    return TRELLIS_BARRIER_BUSINESS_FAIL;
}

/* Parse "sku=SKU qty=N" (N >= 0). 0 or -1. */
static int parse_seed(const uint8_t *p, size_t len, char *sku, size_t skulen,
                      long long *qty)
{
    char text[200], s[XA_SERVICE_ID_MAX + 2] = "", tail;
    if (len >= sizeof text)
        return -1;
    memcpy(text, p, len);
    text[len] = '\0';
    if (sscanf(text, "sku=%65s qty=%lld %c", s, qty, &tail) != 2 ||
        !example_service_valid_id(s, strlen(s)) || *qty < 0 ||
        strlen(s) >= skulen)
        return -1;
    memcpy(sku, s, strlen(s) + 1);
    return 0;
}

static void handle_seed(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                        size_t payload_len, trellis_reply_t *reply, void *user)
{
    (void)ctx, (void)user;
    char sku[XA_SERVICE_ID_MAX + 1], err[256] = "";
    long long qty = 0;
    MYSQL *conn;
    if (parse_seed(payload, payload_len, sku, sizeof sku, &qty) != 0) {
        example_service_answer(reply, TRELLIS_REPLY_FAILURE,
                               "bad payload: want \"sku=SKU qty=N\"");
        return;
    }
    if (!(conn = example_service_conn(err, sizeof err)) ||
        example_service_exec(conn, err, sizeof err,
                             "INSERT INTO stock (sku, qty) VALUES ('%s', %lld) "
                             "ON DUPLICATE KEY UPDATE qty = %lld",
                             sku, qty, qty) != 0) {
        example_service_conn_check();
        example_service_answer(reply, TRELLIS_REPLY_ERROR, "%s", err);
        return;
    }
    printf("stock-service: Seed sku=%s qty=%lld\n", sku, qty);
}

static int add_seed(trellis_participant_t *p, char *err, size_t errlen)
{
    return trellis_participant_handle(p, "/xaorder.v1.Stock/Seed", handle_seed,
                                      NULL, err, errlen) == TRELLIS_OK
               ? 0
               : -1;
}

static const xa_service_def_t STOCK = {
    .name = "stock-service",
    .service = "xaorder.v1.Stock",
    .default_db = "xa_stock",
    .table_ddl = "CREATE TABLE IF NOT EXISTS stock ("
                 "sku VARCHAR(64) NOT NULL PRIMARY KEY, "
                 "qty BIGINT NOT NULL) ENGINE=InnoDB",
    .state_query = "SELECT sku, qty FROM stock ORDER BY sku",
    .prepare_sql = deduct_stock,
    .add_handlers = add_seed,
};

int main(int argc, char **argv)
{
    return xa_service_main(argc, argv, &STOCK);
}
