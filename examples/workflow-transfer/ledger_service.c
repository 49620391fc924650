/*
 * ledger-service: the XA participant of the workflow-transfer example. It
 * owns the bank's audit ledger, in its own database on MariaDB (default
 * wf_ledger):
 *
 *   ledger(id BIGINT AUTO_INCREMENT PRIMARY KEY, transfer VARCHAR(64),
 *          from_account VARCHAR(64), to_account VARCHAR(64), amount BIGINT,
 *          created TIMESTAMP)
 *
 * Its Prepare writes one entry for a transfer as an XA branch and prepares
 * it: the entry exists, invisible to others, until trellisd calls Commit
 * or Rollback. `transfer` is deliberately not unique: what keeps a
 * transfer to one entry is the XA branch and its barrier row (a Prepare
 * delivered twice prepares once), which is what the example checks.
 * Methods /ledger.v1.Ledger/{Prepare,Commit,Rollback,State}; the command
 * line and threads are xa_service.h's (the xa-order example's scaffold),
 * the payload this service's own, one line:
 *
 *   transfer=ID from=ACCOUNT to=ACCOUNT amount=N
 *
 * ID and the accounts 1..64 of [A-Za-z0-9_.-], N in 1..10^12.
 */
#include <mysql.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "xa_service.h"

#define ID_SCAN "%64[A-Za-z0-9_.-]"
#define AMOUNT_MAX 1000000000000LL

typedef struct {
    char transfer[XA_SERVICE_ID_MAX + 1];
    char from[XA_SERVICE_ID_MAX + 1];
    char to[XA_SERVICE_ID_MAX + 1];
    long long amount;
} entry_t;

_Static_assert(sizeof(entry_t) <= XA_SERVICE_ITEM_MAX, "an entry fits");

/* Parse "transfer=ID from=A to=B amount=N", in that order. The charset of
 * the ids keeps them safe to quote into SQL as they are. */
static int parse_entry(const uint8_t *p, size_t len, void *item, char *err,
                       size_t errlen)
{
    entry_t *e = item;
    char text[320], tail;
    if (len < sizeof text) {
        memcpy(text, p, len);
        text[len] = '\0';
        if (sscanf(text,
                   "transfer=" ID_SCAN " from=" ID_SCAN " to=" ID_SCAN
                   " amount=%lld %c",
                   e->transfer, e->from, e->to, &e->amount, &tail) == 4 &&
            e->amount > 0 && e->amount <= AMOUNT_MAX)
            return 0;
    }
    snprintf(err, errlen,
             "bad payload: want \"transfer=ID from=A to=B amount=N\" (ids "
             "1..64 of [A-Za-z0-9_.-], N 1..%lld)",
             AMOUNT_MAX);
    return -1;
}

static void describe_entry(const void *item, char *buf, size_t len)
{
    const entry_t *e = item;
    if (e)
        snprintf(buf, len, "transfer=%s from=%s to=%s amount=%lld", e->transfer,
                 e->from, e->to, e->amount);
    else
        snprintf(buf, len, "transfer=-");
}

static const xa_payload_t ENTRY = {parse_entry, describe_entry, NULL};

/* The entry as one row. */
static trellis_barrier_business_rc_t insert_entry(MYSQL *conn, void *user,
                                                  char *msg, size_t msglen)
{
    const entry_t *e = user;
    return example_service_exec(conn, msg, msglen,
                                "INSERT INTO ledger (transfer, from_account, "
                                "to_account, amount) VALUES ('%s', '%s', "
                                "'%s', %lld)",
                                e->transfer, e->from, e->to, e->amount) == 0
               ? TRELLIS_BARRIER_BUSINESS_OK
               : TRELLIS_BARRIER_BUSINESS_ERROR;
}

static const xa_service_def_t LEDGER = {
    .name = "ledger-service",
    .service = "ledger.v1.Ledger",
    .default_db = "wf_ledger",
    .table_ddl = "CREATE TABLE IF NOT EXISTS ledger ("
                 "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                 "transfer VARCHAR(64) NOT NULL, "
                 "from_account VARCHAR(64) NOT NULL, "
                 "to_account VARCHAR(64) NOT NULL, amount BIGINT NOT NULL, "
                 "created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
                 "KEY (transfer)) ENGINE=InnoDB",
    .state_query = "SELECT transfer, from_account AS `from`, to_account AS "
                   "`to`, amount FROM ledger ORDER BY id",
    .prepare_sql = insert_entry,
    .payload = &ENTRY,
};

int main(int argc, char **argv)
{
    return xa_service_main(argc, argv, &LEDGER);
}
