/*
 * xa_service: the participant scaffold of the examples' XA services
 * (order-service and stock-service of xa-order, ledger-service of
 * workflow-transfer). A service is its database, one table, and the
 * business SQL of its Prepare; everything else is here:
 *
 *   /<Svc>/Prepare   the business SQL as an XA branch, prepared
 *                    (trellis_myxa_prepare_branch: XA START, barrier row,
 *                    SQL, XA END, XA PREPARE; xid gid-branch_id)
 *   /<Svc>/Commit    XA COMMIT (trellis_myxa_commit_branch)
 *   /<Svc>/Rollback  XA ROLLBACK (trellis_myxa_rollback_branch)
 *   /<Svc>/State     the table, one row a line: "col=value ..."
 *
 * (<Svc> e.g. xaorder.v1.Order) and whatever extra handlers a service
 * adds. The branch comes from the dtm-* metadata; the op from the method
 * (a dtm-op naming another op is a business failure). The payload of the
 * three XA ops is one line, by default an order line:
 *
 *   order=ID sku=SKU qty=N [fail_commits=K]
 *
 * ID and SKU 1..64 of [A-Za-z0-9_.-], N in 1..1000000. fail_commits=K is a
 * fault for tests: the first K Commit calls of this branch (counted in
 * memory, per gid and branch) answer UNAVAILABLE without doing anything,
 * so a test can hold the commit back while it crashes trellisd. A service
 * whose rows are no order lines brings its own payload (xa_payload_t).
 *
 * Command line (every service; example_service.h parses it):
 *   --database DB (--mysql-socket PATH | --mysql-host H [--mysql-port P])
 *   [--mysql-user U] [--listen ADDR] [--port-file FILE] [--threads N]
 *   [--quiet]
 *
 * Threads: handlers run on the SDK's worker threads (--threads, 4); each
 * worker has its own MariaDB connection, opened on first use and again
 * after it broke (XA needs one connection per branch in flight, and a
 * connection is used by one thread at a time). Every XA call prints one
 * line (unless --quiet), stamped with the time of day to the microsecond
 * so the lines of several services merge into the order the calls happened.
 */
#ifndef XA_SERVICE_H
#define XA_SERVICE_H

#include <mysql.h>
#include <stddef.h>
#include <stdint.h>

#include "trellis/barrier.h"
#include "example_service.h"
#include "trellis/trellis_participant.h"

#define XA_SERVICE_ID_MAX EXAMPLE_SERVICE_ID_MAX

/* One parsed payload. */
typedef struct {
    char order[XA_SERVICE_ID_MAX + 1];
    char sku[XA_SERVICE_ID_MAX + 1];
    long long qty;
    int fail_commits;
} xa_item_t;

/* The payload of the three XA ops as a service reads it, when it is not
 * an order line: the service's own struct, at most XA_SERVICE_ITEM_MAX
 * bytes, handed to its prepare_sql as user. Static, borrowed. */
#define XA_SERVICE_ITEM_MAX 512

typedef struct {
    /* Parse payload[len] into item (XA_SERVICE_ITEM_MAX bytes, aligned
     * for any type). 0, or -1 with err. */
    int (*parse)(const uint8_t *payload, size_t len, void *item, char *err,
                 size_t errlen);
    /* The item for a log line ("order=o1 sku=book qty=1"); item is NULL
     * when the payload did not parse. */
    void (*describe)(const void *item, char *buf, size_t len);
    /* How many of the branch's first Commit calls the fail_commits fault
     * fails; NULL: the payload has no such fault. */
    int (*fail_commits)(const void *item);
} xa_payload_t;

/* What makes a service itself. Static, borrowed for the process. */
typedef struct {
    const char *name;        /* "order-service": in its log lines */
    const char *service;     /* "xaorder.v1.Order" */
    const char *default_db;  /* --database default */
    const char *table_ddl;   /* CREATE TABLE IF NOT EXISTS ... */
    const char *state_query; /* SELECT for /State */
    /* Prepare's business SQL; user is the parsed payload (a const
     * xa_item_t *, or the item of `payload`). */
    trellis_barrier_business_fn prepare_sql;
    /* The payload's shape; NULL: an order line (xa_item_t). */
    const xa_payload_t *payload;
    /* Register more handlers (may be NULL). 0, or -1 with err. */
    int (*add_handlers)(trellis_participant_t *p, char *err, size_t errlen);
} xa_service_def_t;

/* Parse the command line, create the database, the table and the barrier
 * table, serve until SIGINT/SIGTERM (example_service_main). The process's
 * exit code. Handlers use example_service.h's connection and reply
 * helpers. */
int xa_service_main(int argc, char **argv, const xa_service_def_t *def);

#endif /* XA_SERVICE_H */
