/*
 * example_driver: what the example drivers (example-saga,
 * example-bank-transfer-tcc, example-xa-order, ...) share — starting and
 * stopping their processes with the test harness, counting failed checks,
 * running a table of scenarios, reading MariaDB and what the services
 * printed, the TM's view of a transaction, and the
 * "example=<name> scenario=<s> result=ok|FAIL" lines.
 *
 * What is deliberately not here: any scenario, payload or service method;
 * each driver owns those. Output formats are the drivers' own, kept as
 * they were when each driver had its copy.
 *
 * Threads: everything but example_expect is for the driver's main thread
 * (the harness is not thread-safe); example_expect may be called from any
 * thread.
 */
#ifndef EXAMPLE_DRIVER_H
#define EXAMPLE_DRIVER_H

#include <limits.h>
#include <mysql.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "trellis/trellis.h"

#define EXAMPLE_MAX_STARTED 8

/* ---- checks ---------------------------------------------------------- */

/* The failed expectations of one scenario. */
typedef struct {
    atomic_int failed;
} example_check_t;

/* Count a failed expectation and print "   CHECK FAILED: <what>". Returns
 * cond. Thread-safe. */
int example_expect(example_check_t *ck, int cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Print "example=<ex> scenario=<scenario> result=ok|FAIL" and flush. */
void example_result(const char *ex, const char *scenario, int failed);

/* ---- scenarios ------------------------------------------------------- */

/* One scenario of a driver: run gets the driver's env. Static, borrowed. */
typedef struct {
    const char *name, *story;
    void (*run)(void *env, example_check_t *ck);
} example_scenario_t;

/* The command line "[--scenario NAME]" of a driver with scenarios
 * sc[0..n): the one named into *only ("" for all). 0, or -1 after
 * printing program's usage (exit 2). */
int example_scenario_arg(const char *program, int argc, char **argv,
                         const example_scenario_t *sc, size_t n,
                         const char **only);

/* Run sc[0..n) (only the one named only, unless it is "") on env, each
 * between "== scenario NAME: STORY" and its result line for ex. When the
 * driver is not ready (its setup failed), say so and print a FAIL line
 * for each instead. 1 if any failed, else 0. */
int example_run_scenarios(const char *ex, const example_scenario_t *sc,
                          size_t n, const char *only, void *env, int ready);

/* ---- processes ------------------------------------------------------- */

/* What a driver started, stopped newest first at the end. Owned by the
 * driver's env; zero-initialise, then example_procs_open. */
typedef struct {
    const char *program;   /* "example-saga": names the scratch dir, prefixes
                              messages */
    harness_t *h;          /* NULL until opened */
    harness_mariadb_t *db; /* NULL unless example_start_mariadb ran */
    harness_server_t *started[EXAMPLE_MAX_STARTED];
    const char *started_name[EXAMPLE_MAX_STARTED]; /* borrowed */
    int n_started;
} example_procs_t;

/* Create the scratch dir for program and say where it is. 0 or -1. */
int example_procs_open(example_procs_t *p, const char *program);

/* Start a throwaway MariaDB; its socket (owned by the harness) or NULL. */
const char *example_start_mariadb(example_procs_t *p);

/* Start trellisd with args (NULL-terminated) and say where; its address
 * is copied into addr. The server (owned by the harness) or NULL. */
harness_server_t *example_start_tm(example_procs_t *p, const char *const *args,
                                   char *addr, size_t addrlen);

/* The path of the binary bin: next to this one, else ${build}/bin. */
void example_service_bin(const char *bin, char *buf, size_t len);

/* Start the binary bin (next to this one, else ${build}/bin) as process
 * name with args. The server (owned by the harness) or NULL. name is
 * borrowed for as long as p lives. */
harness_server_t *example_start_service(example_procs_t *p, const char *name,
                                        const char *bin,
                                        const char *const *args);

/* Stop what was started (SIGTERM), newest first, then MariaDB; each must
 * exit 0 — a crash or a sanitizer report at exit fails the example.
 * 0 or -1. */
int example_procs_stop(example_procs_t *p);

/* A fresh random token (32 hex digits) into token[toklen] (at least 33),
 * written as one line to <scratch>/seed-token (mode 0600), whose path goes
 * into path[pathlen]: what a service started with --seed-token-file path
 * requires in its Seed calls. 0, or -1 with the reason on stderr. */
int example_seed_token(example_procs_t *p, char *token, size_t toklen,
                       char *path, size_t pathlen);

/* A client for the TM at tm; 0, or -1 with the reason on stderr. */
int example_client_new(const char *program, const char *tm, int timeout_ms,
                       trellis_client_t **out);

/* Call method (a full "/pkg.Svc/Method") at addr with payload; the reply
 * as a malloc'd C string in *text (may be NULL: reply dropped). 0, or -1
 * with err. */
int example_call_text(const char *addr, const char *method, const char *payload,
                      char **text, char *err, size_t errlen);

/* ---- MariaDB --------------------------------------------------------- */

/* A connection as root over socket (no database selected), or NULL with
 * the reason on stderr. The caller's: mysql_close. */
MYSQL *example_connect_mariadb(const char *program, const char *socket);

/* The first column of the first row of a printf-formatted query on conn,
 * as a number, into *out (0 when there is no row or it is NULL). 0, or -1
 * with a failed check. */
int example_sql_number(MYSQL *conn, long long *out, example_check_t *ck,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- what the services printed --------------------------------------- */

#define EXAMPLE_MAX_SAID 64

/* Print the lines of logs[0..n) ("" entries skipped) that mention
 * "gid=<gid> ", merged in time order (each starts with the time of day to
 * the microsecond; a run across midnight would print out of order, nothing
 * worse), under "   the <who> said, in time order:". Nothing if none. */
void example_print_said(const char (*logs)[PATH_MAX], size_t n, const char *gid,
                        const char *who);

/* How many of those lines contain needle. */
int example_count_said(const char (*logs)[PATH_MAX], size_t n, const char *gid,
                       const char *needle);

/* ---- the TM's view --------------------------------------------------- */

/* 1 if st is SUCCEEDED or FAILED. */
int example_is_final(trellis_trans_status_t st);

/* Query gid every 20 ms until it is final or timeout_ms passed; the last
 * answer (the caller's: trellis_trans_info_free), or NULL when no Query
 * answered OK by then (why printed). */
trellis_trans_info_t *example_query_final(trellis_client_t *c, const char *gid,
                                          int64_t timeout_ms);

/* The op of branch b, or NULL. */
const trellis_op_info_t *example_find_op(const trellis_branch_info_t *b,
                                         trellis_op_t op);

/* "   TM: gid G is STATUS[, reason: R]". */
void example_print_tm_status(const trellis_trans_info_t *info);

/* " op status (N attempts); ..." for each op of b, then a newline. */
void example_print_ops(const trellis_branch_info_t *b);

/* example_print_tm_status, then "   TM: branch ID (MODE, NAME): ops" for
 * each branch, NAME from names[0..n) by position ("?" past them). */
void example_print_branches(const trellis_trans_info_t *info,
                            const char *const *names, size_t n);

/* What a driver shows of its transactions: the branches' names by
 * position and the logs of the services they call. Borrowed. */
typedef struct {
    trellis_client_t *client;
    const char *const *branch_names;
    size_t n_branch_names;
    const char (*logs)[PATH_MAX];
    size_t n_logs;
} example_view_t;

/* The final state of gid (example_query_final within timeout_ms), which
 * must be want: the branches (example_print_branches) and the services'
 * lines about gid (example_print_said) printed. The info (the caller's:
 * trellis_trans_info_free) or NULL. */
trellis_trans_info_t *example_expect_final(const example_view_t *v,
                                           const char *gid,
                                           trellis_trans_status_t want,
                                           int64_t timeout_ms,
                                           example_check_t *ck);

#endif /* EXAMPLE_DRIVER_H */
