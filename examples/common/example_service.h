/*
 * example_service: the scaffold of the examples' participant services on
 * MariaDB (bank-service, order-service, stock-service) — the command line
 * they share, one MariaDB connection per worker thread, the schema at
 * start, the port file, and serving until SIGINT/SIGTERM.
 *
 * Shared command line:
 *   --database DB (--mysql-socket PATH | --mysql-host H [--mysql-port P])
 *   [--mysql-user U] [--listen ADDR] [--port-file FILE] [--threads N]
 *   [--quiet]
 * plus whatever flags a service adds (example_service_def_t.set_flag).
 *
 * Connections: handlers run on the SDK's worker threads; each worker has
 * its own MariaDB connection, READ COMMITTED and CLIENT_FOUND_ROWS
 * (affected rows = matched rows), opened on first use and again after it
 * broke, so a connection is only ever used by one thread at a time (XA
 * also needs one connection per branch in flight). The isolation level is
 * an init command, so a session the client library reconnects in place
 * (the XA adapter does after every XA PREPARE) gets it again.
 *
 * What is deliberately not here: any business rule, payload or method;
 * a service registers its handlers in add_handlers.
 */
#ifndef EXAMPLE_SERVICE_H
#define EXAMPLE_SERVICE_H

#include <mysql.h>
#include <stddef.h>

#include "trellis/barrier.h"
#include "trellis/trellis_participant.h"

#define EXAMPLE_SERVICE_ID_MAX 64

/* The shared command line, as parsed. Valid once example_service_main has
 * parsed it; read-only afterwards, from any thread. */
typedef struct {
    const char *listen, *port_file;
    const char *socket, *host, *user, *database;
    unsigned port;
    int threads, quiet;
} example_service_opts_t;

/* What makes a service itself. Static, borrowed for the process. */
typedef struct {
    const char *program;    /* "bank-service": in messages */
    const char *usage_head; /* after "usage: ", up to the MariaDB flags */
    const char *usage_tail; /* the last usage line: "[--threads N] ..." */
    const char *default_db; /* --database default; NULL: required */
    int max_threads;        /* --threads at most; 0: no limit */
    const char *table_ddl;  /* CREATE TABLE IF NOT EXISTS ... */
    /* A flag of the service's own, "--flag value": 0 taken, -1 unknown or
     * bad. May be NULL. */
    int (*set_flag)(const char *flag, const char *value);
    /* After parsing: 0 if the command line is complete, else -1. May be
     * NULL. */
    int (*check_flags)(void);
    /* Register the service's handlers. 0, or -1 with err. */
    int (*add_handlers)(trellis_participant_t *p, char *err, size_t errlen);
    /* Print the ready line, listening on port. */
    void (*ready)(int port);
    /* After the stop signal, before the participant and the connections
     * are closed: end the threads the service started itself. May be
     * NULL. */
    void (*stopping)(void);
} example_service_def_t;

/* Parse the command line, create the database, the service's table and
 * the barrier table, serve until SIGINT/SIGTERM. The process's exit code
 * (2 on a usage error). */
int example_service_main(int argc, char **argv,
                         const example_service_def_t *def);

/* The parsed shared command line. */
const example_service_opts_t *example_service_opts(void);

/* The name messages start with ("bank-service bank-a"); def->program
 * until a service sets another. The string is copied. Main thread, before
 * serving. */
void example_service_set_log_name(const char *name);
const char *example_service_log_name(void);

/* This worker thread's connection, opened on first use; NULL with err. */
MYSQL *example_service_conn(char *err, size_t errlen);

/* After an error on the worker's connection: if the connection itself
 * broke (a client-side error), close it so the next call opens a new
 * one. */
void example_service_conn_check(void);

/* Close this thread's connection, if it has one: for a thread the service
 * started itself, before it ends (the workers' are closed at exit). */
void example_service_conn_close(void);

/* Run one printf-formatted statement on conn; 0, or -1 with its error in
 * msg. */
int example_service_exec(MYSQL *conn, char *msg, size_t msglen, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

/* 1 if s[0..n) is a valid id (1..64 of [A-Za-z0-9_.-]): safe to quote into
 * SQL as it is. */
int example_service_valid_id(const char *s, size_t n);

/* Fill reply with code and a printf-formatted message. */
void example_service_answer(trellis_reply_t *reply, trellis_reply_code_t code,
                            const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The branch a call to method is about, from its dtm-* metadata, as the
 * barrier op `op` (a dtm-op naming another op is refused) and trans_type
 * when the caller sent none. The strings in *b are borrowed from ctx, op
 * and trans_type. 0, or -1 with reply filled as a business failure. */
int example_service_branch(const trellis_branch_ctx_t *ctx, const char *method,
                           const char *op, const char *trans_type,
                           trellis_barrier_branch_t *b, trellis_reply_t *reply);

/* Append s to a malloc'd buffer. 0 or -1. */
int example_service_buf_add(char **buf, size_t *len, size_t *cap,
                            const char *s);

/* The time of day to the microsecond, "HH:MM:SS.uuuuuu", into buf: log
 * lines of several services merge into the order things happened. */
void example_service_stamp(char *buf, size_t len);

#endif /* EXAMPLE_SERVICE_H */
