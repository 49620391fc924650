/*
 * barrier_impl.h: what barrier.c lends barrier_msg.c — messages into the
 * caller's buffer, single statements, the start and the business part of
 * a barrier transaction. Private to barrier/; not installed, not API.
 *
 * Names start with `tb_`. Every function takes a connection that one
 * thread uses at a time, and follows the rules of trellis/barrier.h.
 */
#ifndef TRELLIS_BARRIER_IMPL_H
#define TRELLIS_BARRIER_IMPL_H

#include <mysql.h>
#include <stddef.h>

#include "trellis/barrier.h"

/* printf into msg[msglen] (NULL or 0: ignored). */
void tb_say(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The message buffer a public call writes into: msg[*msglen], or
 * scratch[scratchlen] when the caller gave none (*msglen updated); it is
 * cleared to "". */
char *tb_msg_buf(char *msg, size_t *msglen, char *scratch, size_t scratchlen);

/* "what: <mysql error> (<errno>)" into msg. */
void tb_say_db(char *msg, size_t msglen, MYSQL *conn, const char *what);

/* One statement of fixed text; 0, or -1 (error in conn). */
int tb_run_text(MYSQL *conn, const char *text);

/* The server status flags of the last reply (SERVER_STATUS_IN_TRANS...). */
unsigned tb_server_status(MYSQL *conn);

/* ROLLBACK, ignoring failure (a lost connection has rolled back). */
void tb_rollback_quietly(MYSQL *conn);

/* Refuse auto-reconnect and an open transaction, then START TRANSACTION.
 * 0, or -1 with msg (nothing open). */
int tb_begin(MYSQL *conn, char *msg, size_t msglen);

/* INSERT (ignore: INSERT IGNORE) the row (b's gid and branch_id, op,
 * barrier_id) with reason b->op; the rows inserted, or -1 (error in conn:
 * ER_DUP_ENTRY for a plain INSERT that met the row). table and b checked. */
long long tb_insert_row(MYSQL *conn, const char *table,
                        const trellis_barrier_branch_t *b, const char *op,
                        const char *barrier_id, int ignore);

/* Run fn in the transaction begun on session, drain what it left unread
 * and check the session and the transaction survived it. DONE: it
 * succeeded and the transaction is still open (the caller commits); any
 * other outcome: rolled back, msg says why. */
trellis_barrier_outcome_t tb_business(MYSQL *conn,
                                      trellis_barrier_business_fn fn,
                                      void *user, char *msg, size_t msglen,
                                      unsigned long session);

/* reply->code = code, reply->message = msg, or fallback when msg is
 * NULL or empty. */
void tb_reply(trellis_reply_t *reply, trellis_reply_code_t code,
              const char *msg, const char *fallback);

#endif /* TRELLIS_BARRIER_IMPL_H */
