/*
 * trellis/barrier.h: the branch barrier over MySQL/MariaDB (libmariadb;
 * library trellis_barrier, names trellis_barrier_* and TRELLIS_BARRIER_*).
 *
 * A participant cannot trust delivery: an op may arrive twice (a retry), a
 * cancel may arrive for a try that never arrived (empty compensation), and
 * a try may arrive after its cancel (hanging). trellis_barrier_run makes each
 * op exactly-once in effect by running the handler's business SQL inside the
 * participant's own local transaction together with a row in the barrier
 * table, unique on (gid, branch_id, op, barrier_id):
 *
 *   - the op inserts its own row (INSERT IGNORE); none inserted: it already
 *     ran — success without running the business SQL;
 *   - cancel/compensate first insert their origin op's row (try/action); if
 *     that insert succeeds, the forward op never ran: success without
 *     running (empty compensation), and the row left behind makes a late
 *     try do nothing (hanging: reported as TRELLIS_BARRIER_SKIPPED_HANGING);
 *   - a business failure rolls the barrier rows back with the business SQL.
 *
 * Threads: a MYSQL connection is used by one thread at a time;
 * trellis_barrier_run leaves it in autocommit mode with no transaction open.
 *
 * Connections: auto-reconnect (MYSQL_OPT_RECONNECT) must be off;
 * trellis_barrier_run refuses a connection that has it on
 * (TRELLIS_BARRIER_ERROR), and reports a session that changed under the handler
 * (mysql_thread_id), as a reconnect in the middle of the local transaction
 * would commit the business SQL without its barrier row.
 */
#ifndef TRELLIS_BARRIER_H
#define TRELLIS_BARRIER_H

#include <mysql.h>
#include <stddef.h>

#include "trellis/trellis_participant.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRELLIS_BARRIER_DEFAULT_TABLE "trellis_barrier"
/* The barrier_id of a branch that gives none. */
#define TRELLIS_BARRIER_DEFAULT_ID "01"

typedef struct {
    const char *trans_type; /* "saga", "tcc", "xa" */
    const char *gid;
    const char *branch_id;
    const char *op; /* "try", "confirm", "cancel", "action", "compensate" */
    const char *barrier_id; /* NULL: "01" */
    /* The TM cluster the call came from (its trellis-cluster-id header),
     * NULL or "": none. The barrier ignores it; the XA adapter puts it
     * into the XID (trellis/mysql_xa.h). */
    const char *cluster_id;
} trellis_barrier_branch_t;

/* The branch of a participant call, borrowed from ctx (valid as long as
 * ctx is), its cluster_id from the header TRELLIS_CLUSTER_ID_HEADER. */
trellis_barrier_branch_t
trellis_barrier_branch_from_ctx(const trellis_branch_ctx_t *ctx);

typedef enum {
    TRELLIS_BARRIER_DONE = 0,          /* business SQL ran and committed */
    TRELLIS_BARRIER_SKIPPED_DUPLICATE, /* this op already ran: nothing done */
    TRELLIS_BARRIER_SKIPPED_EMPTY,    /* cancel/compensate with no forward op */
    TRELLIS_BARRIER_SKIPPED_HANGING,  /* forward op after its cancel/compensate
                                       */
    TRELLIS_BARRIER_BUSINESS_FAILURE, /* handler refused; rolled back */
    TRELLIS_BARRIER_ERROR, /* database or handler error; rolled back */
} trellis_barrier_outcome_t;

typedef enum {
    TRELLIS_BARRIER_BUSINESS_OK = 0,
    TRELLIS_BARRIER_BUSINESS_FAIL = 1,  /* a business refusal (e.g. no funds) */
    TRELLIS_BARRIER_BUSINESS_ERROR = 2, /* anything else; retried by the TM */
} trellis_barrier_business_rc_t;

/* The handler's business SQL, run on conn inside the open transaction; it
 * must not commit or roll back. msg[msglen] explains a failure. */
typedef trellis_barrier_business_rc_t (*trellis_barrier_business_fn)(
    MYSQL *conn, void *user, char *msg, size_t msglen);

/* Table names: 1..64 of [A-Za-z0-9_]; wherever a table is taken, NULL
 * means TRELLIS_BARRIER_DEFAULT_TABLE. Returns 0, or -1 with err. */
int trellis_barrier_check_table_name(const char *table, char *err,
                                     size_t errlen);

/* CREATE TABLE IF NOT EXISTS for the barrier table. 0, or -1 with err. */
int trellis_barrier_create_table(MYSQL *conn, const char *table, char *err,
                                 size_t errlen);

/* Run fn behind the barrier (see the top of this file). msg explains
 * failures and errors. A connection with auto-reconnect on is refused
 * before anything runs. */
trellis_barrier_outcome_t trellis_barrier_run(MYSQL *conn, const char *table,
                                              const trellis_barrier_branch_t *b,
                                              trellis_barrier_business_fn fn,
                                              void *user, char *msg,
                                              size_t msglen);

/* What a participant answers for an outcome: DONE and the SKIPPED ones are
 * success except HANGING (a business failure: the transaction was already
 * rolled back), BUSINESS_FAILURE a business failure, ERROR an error (the TM
 * retries). Fills reply->code and reply->message. */
void trellis_barrier_fill_reply(trellis_barrier_outcome_t outcome,
                                const char *msg, trellis_reply_t *reply);

/* Retention: delete rows older than `days` days, `batch` rows per
 * statement (each its own short transaction), until none are left; the
 * count goes to *deleted. 0, or -1 with err. */
int trellis_barrier_purge(MYSQL *conn, const char *table, unsigned days,
                          unsigned batch, unsigned long long *deleted,
                          char *err, size_t errlen);

/* ---- building blocks ---------------------------------------------------
 * The steps trellis_barrier_run is made of, for adapters that must run them
 * inside a transaction of their own (the XA adapter: inside XA START ... XA
 * END, where trellis_barrier_run's START TRANSACTION / COMMIT are not allowed).
 * Each is one statement on conn and neither starts nor ends a transaction.
 * table must have passed trellis_barrier_check_table_name and b
 * trellis_barrier_check_branch. */

/* Lengths, emptiness and trailing spaces of b's values. 0, or -1 with msg. */
int trellis_barrier_check_branch(const trellis_barrier_branch_t *b, char *msg,
                                 size_t msglen);

/* INSERT IGNORE the row (b's key, op, barrier_id) with reason b->op; the
 * rows inserted (0: it was there), or -1 (error in conn). */
long long trellis_barrier_insert_row(MYSQL *conn, const char *table,
                                     const trellis_barrier_branch_t *b,
                                     const char *op, const char *barrier_id);

/* The reason of the row (b's key, b->op, barrier_id) into out[outlen],
 * read with a shared lock (the latest committed row). 1 found, 0 none, -1
 * error (in conn). */
int trellis_barrier_read_reason(MYSQL *conn, const char *table,
                                const trellis_barrier_branch_t *b,
                                const char *barrier_id, char *out,
                                size_t outlen);

/* Read and drop results a handler left unread (a SELECT not stored, the
 * rest of a multi-statement), so that the next statement is not "out of
 * sync"; no round trip when there are none. -1 (error in conn) if one of
 * them was a failed statement the handler never saw. */
int trellis_barrier_drain_results(MYSQL *conn);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_BARRIER_H */
