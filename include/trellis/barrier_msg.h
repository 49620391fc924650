/*
 * trellis/barrier_msg.h: the barrier of a 2-phase message over
 * MySQL/MariaDB (library trellis_barrier; names trellis_barrier_msg_*,
 * trellis_barrier_query_prepared*, trellis_msg_do_and_submit).
 *
 * A message (trellis/trellis_msg.h) is committed with the initiator's own
 * local transaction. Both sides of that decision meet on one row of the
 * barrier table (trellis/barrier.h): (gid, branch_id "00", op "msg",
 * barrier_id "01"):
 *
 *   - the local transaction (trellis_barrier_msg_run) inserts it with
 *     reason "msg" by a plain INSERT, next to the business SQL, and
 *     commits both or neither;
 *   - the back-check (trellis_barrier_query_prepared), which trellisd
 *     calls when the initiator went silent, INSERT IGNOREs it with reason
 *     "rollback", then reads the reason: "msg" committed, "rollback" not.
 *
 * Whoever inserts first wins, and the other learns it: a back-check that
 * finds no row leaves "rollback" behind, so a late local transaction meets
 * a duplicate key and rolls back (TRELLIS_BARRIER_MSG_TOO_LATE) — the
 * message can never be both dropped and committed. A back-check racing a
 * local transaction that inserted its row but has not committed blocks on
 * InnoDB's row lock until the commit or rollback, then answers from the
 * outcome; it may also end in a lock-wait timeout, an error (trellisd asks
 * again later).
 *
 * Connections: as in trellis/barrier.h — one thread at a time, auto-
 * reconnect off for the local transaction (refused), the connection left
 * in autocommit with no transaction open. Table names: NULL means
 * TRELLIS_BARRIER_DEFAULT_TABLE (created with trellis_barrier_create_table).
 * Gids: 1..128 bytes, no trailing space (the barrier's column rules).
 */
#ifndef TRELLIS_BARRIER_MSG_H
#define TRELLIS_BARRIER_MSG_H

#include <mysql.h>
#include <stddef.h>

#include "trellis/barrier.h"
#include "trellis/trellis_msg.h"
#include "trellis/trellis_participant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the local transaction ----------------------------------------------- */

typedef enum {
    TRELLIS_BARRIER_MSG_COMMITTED = 0,    /* business SQL and row committed */
    TRELLIS_BARRIER_MSG_BUSINESS_FAILURE, /* fn refused; rolled back */
    /* The back-check had already decided "not committed" (its row was
     * there): rolled back, fn never ran; the message is dropped. */
    TRELLIS_BARRIER_MSG_TOO_LATE,
    /* Database or handler error before COMMIT, or a server error on COMMIT:
     * rolled back, nothing committed. */
    TRELLIS_BARRIER_MSG_ERROR,
    /* The connection was lost during COMMIT: it may have committed or
     * not. Only the back-check can tell; do not abort the message. */
    TRELLIS_BARRIER_MSG_COMMIT_UNKNOWN,
} trellis_barrier_msg_outcome_t;

/* "committed", "business failure", "too late", "error", "commit unknown". */
const char *trellis_barrier_msg_outcome_name(trellis_barrier_msg_outcome_t o);

/* The local transaction of message gid on conn: START TRANSACTION, INSERT
 * the message's row (reason "msg"), fn(conn, user) — which must not commit
 * or roll back — then COMMIT; a failure of fn or of any statement rolls
 * back. msg[msglen] explains every outcome but COMMITTED. Run it once per
 * gid: a second run after a commit is an ERROR (the row is there). */
trellis_barrier_msg_outcome_t
trellis_barrier_msg_run(MYSQL *conn, const char *table, const char *gid,
                        trellis_barrier_business_fn fn, void *user, char *msg,
                        size_t msglen);

/* ---- the back-check ------------------------------------------------------ */

typedef enum {
    TRELLIS_BARRIER_CHECK_COMMITTED = 0, /* deliver the message */
    TRELLIS_BARRIER_CHECK_NOT_COMMITTED, /* drop it: it never will commit */
    TRELLIS_BARRIER_CHECK_ERROR, /* database error or lock-wait timeout */
} trellis_barrier_check_t;

/* Did message gid's local transaction commit? INSERT IGNORE the row with
 * reason "rollback" (its own autocommit statement; committed at once even
 * when autocommit is off), then read the row's reason. Waits on an
 * uncommitted local transaction's row lock (see the top of this file).
 * The same answer however often it is asked. A transaction open on conn
 * is refused (ERROR). msg[msglen] explains the answer. */
trellis_barrier_check_t
trellis_barrier_query_prepared(MYSQL *conn, const char *table, const char *gid,
                               char *msg, size_t msglen);

/* The back-check's reply: COMMITTED -> SUCCESS (OK), NOT_COMMITTED ->
 * FAILURE (ABORTED), ERROR -> ERROR (UNAVAILABLE: trellisd asks again).
 * Fills reply->code and reply->message (msg, or a fallback when empty). */
void trellis_barrier_query_prepared_reply(trellis_barrier_check_t answer,
                                          const char *msg,
                                          trellis_reply_t *reply);

/* Where the ready-made handler gets a connection for one call. borrow
 * returns a connection for this call (NULL with err: the reply is ERROR);
 * give_back (may be NULL) gets it back after the call, with broken set
 * when the connection itself failed (a client-side error: close it rather
 * than reuse it). A per-thread connection fits (borrow returns the
 * worker's own, give_back drops it when broken), as does a pool. Both are
 * called on the participant's worker threads, several at once. */
typedef struct {
    MYSQL *(*borrow)(void *user, char *err, size_t errlen);
    void (*give_back)(void *user, MYSQL *conn, int broken);
    void *user;
    const char *table; /* NULL: TRELLIS_BARRIER_DEFAULT_TABLE */
} trellis_barrier_conns_t;

/* A trellis_handler_fn for the back-check method: register it with
 * trellis_participant_handle(p, method, trellis_barrier_query_prepared_handler,
 * conns, ...), where conns is a trellis_barrier_conns_t that outlives the
 * participant. A call that is not a back-check (dtm-trans_type "msg",
 * dtm-op "query_prepared", a dtm-gid) gets ERROR, never ABORTED: only the
 * barrier may drop a message. */
void trellis_barrier_query_prepared_handler(const trellis_branch_ctx_t *ctx,
                                            const uint8_t *payload,
                                            size_t payload_len,
                                            trellis_reply_t *reply, void *user);

/* ---- the whole outbox in one call ---------------------------------------- */

/* Prepare m with trellisd (back-check target query_prepared), run its
 * local transaction on conn (trellis_barrier_msg_run with fn, user), and
 * submit it (wait as in trellis_msg_submit, *status its answer). *local
 * (may be NULL) gets the local transaction's outcome, ERROR when it never
 * ran. Returns TRELLIS_OK only when the local transaction committed and
 * the submit was accepted. Otherwise, with msg[msglen] saying which:
 *
 *   - the prepare failed: its rc; nothing ran (*local ERROR);
 *   - the local transaction rolled back (a business failure: ABORTED;
 *     an error before or a server error on COMMIT: UNAVAILABLE; too late:
 *     FAILED_PRECONDITION): the message is aborted, best effort — if the
 *     abort does not reach trellisd, the back-check drops the message,
 *     as it finds no committed row;
 *   - the COMMIT's outcome is unknown (the connection was lost during it):
 *     UNKNOWN; the message is not aborted, the back-check decides: it is
 *     delivered exactly when the local transaction did commit;
 *   - the submit failed after the commit: the submit's rc with *local
 *     COMMITTED; the message will still be delivered, as the back-check
 *     finds the commit once the message's timeout passes.
 *
 * conn follows trellis_barrier_msg_run's rules; m is only read. */
trellis_rc_t trellis_msg_do_and_submit(
    trellis_client_t *c, const trellis_msg_t *m, const char *query_prepared,
    MYSQL *conn, const char *table, trellis_barrier_business_fn fn, void *user,
    int wait, trellis_barrier_msg_outcome_t *local,
    trellis_trans_status_t *status, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_BARRIER_MSG_H */
