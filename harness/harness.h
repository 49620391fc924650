/*
 * harness: what every Trellis integration test, example and benchmark
 * needs to run real processes on one machine — a scratch directory per
 * test, child processes (trellisd, participants, MariaDB) that never outlive
 * the test, and a reader for the scripted test participant's state.
 *
 * Invariants the harness keeps:
 *   - every child runs in its own process group, with stdout and stderr
 *     appended to a log file in the scratch directory;
 *   - every live child is in one process-wide registry; at exit (normal
 *     exit, SIGINT/SIGTERM/SIGHUP, or the death of the spawning thread via
 *     PR_SET_PDEATHSIG) every registered process group gets SIGKILL, so a
 *     failing test never leaves servers running;
 *   - a scratch directory is removed only when its test passed (or never,
 *     with TRELLIS_KEEP_SCRATCH=1 in the environment), so the logs of a
 *     failure stay for reading; its path is printed.
 *
 * Errors: functions that can fail return NULL or -1 and print what went
 * wrong (with the tail of the child's log when a child is involved) to
 * stderr, so a test only has to assert the return value.
 *
 * Threads: not thread-safe. Spawn, signal, wait and free from one thread,
 * and from a thread that lives as long as the children: children get SIGKILL
 * when the thread that forked them exits (PR_SET_PDEATHSIG). The time helpers
 * and harness_part_state may be called from any thread.
 *
 * Environment: TRELLIS_BUILD_DIR overrides the build tree compiled in;
 * TRELLIS_TRELLISD and TRELLIS_TESTPART override the binaries' paths;
 * TRELLIS_KEEP_SCRATCH=1 keeps every scratch directory.
 */
#ifndef TRELLIS_HARNESS_H
#define TRELLIS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- time ------------------------------------------------------------ */

/* Wall-clock milliseconds since the epoch: the clock trellisd stamps
 * attempt_ms with and trellis-testpart stamps its journal with. */
int64_t harness_now_ms(void);
/* Monotonic milliseconds, for measuring timeouts. */
int64_t harness_mono_ms(void);
void harness_sleep_ms(int64_t ms);

/* Call pred(arg) every interval_ms (0: 10) until it returns non-zero or
 * timeout_ms passed. Returns 1 if pred became true, 0 on timeout. */
int harness_poll(int (*pred)(void *arg), void *arg, int64_t timeout_ms,
                 int64_t interval_ms);

/* ---- scratch directory ----------------------------------------------- */

typedef struct harness harness_t;

/* Create ${build}/test-data/<name>-<pid> (removing a stale one of the same
 * name) and an empty process list. name: [A-Za-z0-9_.-]. The result is the
 * caller's: harness_free. */
harness_t *harness_new(const char *name);

/* Stop every process of h that still runs (SIGTERM, then SIGKILL after
 * 5 s) and return how many ended badly: did not exit 0 on SIGTERM, or
 * exited on their own with a non-zero code or a signal the harness did not
 * send (a server that crashed, or a sanitizer report). Each is printed with
 * its log tail. Tests call it before deciding they passed. */
int harness_stop_all(harness_t *h);

/* harness_stop_all, free everything, and remove the scratch directory when
 * passed is non-zero; otherwise keep it and print its path. */
void harness_free(harness_t *h, int passed);

/* The scratch directory; owned by h. */
const char *harness_dir(const harness_t *h);

/* Write "<scratch>/<leaf>" into buf[len]. Returns buf, or NULL (with a
 * message) if it does not fit. */
char *harness_path(const harness_t *h, const char *leaf, char *buf, size_t len);

/* The build tree: TRELLIS_BUILD_DIR from the environment, else the one
 * compiled in. Static storage. */
const char *harness_build_dir(void);

/* ---- processes ------------------------------------------------------- */

typedef struct harness_proc harness_proc_t;

/* Start argv (NULL-terminated; argv[0] a path, or a name looked up in PATH)
 * in its own process group, stdin from /dev/null, stdout and stderr appended
 * to <scratch>/<name>.log. argv is copied. The process belongs to h (freed
 * by harness_free) and is registered for the kill at exit. */
harness_proc_t *harness_spawn(harness_t *h, const char *name,
                              const char *const *argv);

int harness_proc_pid(const harness_proc_t *p); /* -1 when not running */
const char *harness_proc_log(const harness_proc_t *p);
/* 1 while the process has not been reaped (a zombie is reaped here). */
int harness_proc_running(harness_proc_t *p);

/* Send sig to the process group. Returns 0, or -1 if it is not running. */
int harness_proc_signal(harness_proc_t *p, int sig);

/* Wait up to timeout_ms for the process to exit. Returns 0 and its wait
 * status in *status (may be NULL) once reaped, -1 on timeout. */
int harness_proc_wait(harness_proc_t *p, int64_t timeout_ms, int *status);

/* SIGKILL the group and reap: a crash. Returns 0, -1 if not running. */
int harness_proc_kill(harness_proc_t *p);

/* SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the wait status of
 * the exit, or -1 if it was not running. */
int harness_proc_stop(harness_proc_t *p, int64_t timeout_ms);

/* Start the process again (it must have exited) with its last argv, or
 * with argv when not NULL (copied, and remembered for the next restart). */
int harness_proc_restart(harness_proc_t *p, const char *const *argv);

/* Print the last nlines lines of the process's log to stderr. */
void harness_proc_log_tail(const harness_proc_t *p, int nlines);

/* Run argv to completion (same conventions as harness_spawn, log at
 * <scratch>/<name>.log), killing it after timeout_ms. Returns its exit code
 * (0..255), or -1 if it could not start, was killed or timed out. */
int harness_run(harness_t *h, const char *name, const char *const *argv,
                int64_t timeout_ms);

/* ---- servers that announce their port in a port file ------------------ */

/* A server started as `BIN --listen 127.0.0.1:0 --port-file FILE ...` that
 * writes its port (decimal, newline) to FILE when it serves; trellisd and
 * participants follow this convention. */
typedef struct harness_server harness_server_t;

/* How long to wait for a port file by default (ms). */
#define HARNESS_READY_TIMEOUT_MS 15000

/* Start `bin --listen 127.0.0.1:0 --port-file <scratch>/<name>.port
 * extra_args...` (extra_args NULL-terminated, may be NULL) and wait for the
 * port file. Returns NULL (after killing it and printing its log tail) if it
 * exits first or is not ready within HARNESS_READY_TIMEOUT_MS. Owned by h. */
harness_server_t *harness_server_start(harness_t *h, const char *name,
                                       const char *bin,
                                       const char *const *extra_args);

/* Start trellisd (${build}/bin/trellisd, or $TRELLIS_TRELLISD) with
 * --data-dir <scratch>/<name>.data --shutdown-grace-ms 0 plus extra_args
 * (so SIGTERM stops it at once; pass --shutdown-grace-ms N to test the
 * graceful stop). With
 * TRELLIS_TEST_STORE=mysql in the environment (and no --store among
 * extra_args) it runs on the MySQL store instead: the harness starts one
 * MariaDB per test process on first use, and each trellisd gets its own
 * database (harness_tm_store_database), --node-id <name> and a 2 s lease,
 * so the whole suite runs on either engine unchanged. */
harness_server_t *harness_tm_start(harness_t *h, const char *name,
                                   const char *const *extra_args);

/* Start trellis-testpart (${build}/bin/trellis-testpart, or
 * $TRELLIS_TESTPART) with --journal <scratch>/<name>.journal plus
 * extra_args. */
harness_server_t *harness_testpart_start(harness_t *h, const char *name,
                                         const char *const *extra_args);

/* The MariaDB behind TRELLIS_TEST_STORE=mysql trellisd processes of h, or
 * NULL when none was started. Shared by the process; not to be freed. */
typedef struct harness_mariadb harness_mariadb_t;
harness_mariadb_t *harness_tm_store_db(harness_t *h);
/* The database the harness gives trellisd tm_name of h in that mode, into
 * buf[len] (unique per scratch dir, so tests sharing the server never see
 * each other's rows). Returns buf. */
char *harness_tm_store_database(const harness_t *h, const char *tm_name,
                                char *buf, size_t len);

/* That same MariaDB for other uses (a test's business database beside its
 * trellisd): one per test process, started on first use whatever the store,
 * killed at exit. Name databases in it after the scratch dir
 * (harness_tm_store_database does) so tests sharing it never meet. NULL
 * (printed) when it cannot start. Not to be freed or stopped. */
harness_mariadb_t *harness_shared_mariadb(void);

/* "127.0.0.1:PORT"; owned by s, stable across restarts. */
const char *harness_server_addr(const harness_server_t *s);
int harness_server_port(const harness_server_t *s);
harness_proc_t *harness_server_proc(harness_server_t *s);
/* The data dir given to harness_tm_start, or NULL. */
const char *harness_server_data_dir(const harness_server_t *s);

/* kill -9: a crash. Returns 0, or -1 if it was not running. */
int harness_server_kill(harness_server_t *s);

/* Start it again on the same port, data dir and arguments
 * (--listen 127.0.0.1:PORT) and wait for its new port file. It must not be
 * running. Returns 0, or -1 (with its log tail printed). */
int harness_server_restart(harness_server_t *s);
/* The same, waiting up to timeout_ms for the port file (a start that
 * recovers many transactions may take longer than the default). */
int harness_server_restart_within(harness_server_t *s, int64_t timeout_ms);

/* kill -9, then restart: a crash and recovery. */
int harness_server_crash_restart(harness_server_t *s);

/* ---- trellisd-faults (tests/faults/tm_fault.h) ------------------------ */

/* A path for the control socket of a trellisd-faults named name (short,
 * under $TMPDIR or /tmp: a unix socket path has ~100 bytes). Returns buf. */
char *harness_fault_socket_path(const char *name, char *buf, size_t len);

/* Send one command ("hold", "release", "wait-held 5000", ...) and read the
 * reply line into reply[len]. Returns 0 for an "ok" reply, -1 otherwise
 * (printed). */
int harness_fault_cmd(const char *socket_path, const char *cmd, char *reply,
                      size_t len);

/* ---- MariaDB --------------------------------------------------------- */

/* A throwaway MariaDB server: data dir <scratch>/<name>.mariadb, listening
 * on a unix socket and on 127.0.0.1:PORT (a free port), user root with no
 * password (from the socket or TCP). */
typedef struct harness_mariadb harness_mariadb_t;

/* mariadb-install-db, then mariadbd; returns once it accepts connections
 * (or NULL with its log tail printed). Owned by h until harness_mariadb_stop
 * or harness_free. */
harness_mariadb_t *harness_mariadb_start(harness_t *h, const char *name);
const char *harness_mariadb_socket(const harness_mariadb_t *m);
int harness_mariadb_port(const harness_mariadb_t *m);

/* Run SQL with the `mariadb` client as root over the socket (batch mode;
 * output goes to <scratch>/<name>-sql.log). Returns the client's exit code,
 * or -1. */
int harness_mariadb_exec(harness_mariadb_t *m, const char *sql);

/* Shut it down cleanly (SIGTERM, then SIGKILL after 20 s); the data dir
 * stays in the scratch directory. */
void harness_mariadb_stop(harness_mariadb_t *m);
/* kill -9 the server: a crash (InnoDB recovers at the next start). */
void harness_mariadb_kill(harness_mariadb_t *m);
/* Start a stopped or killed server again on the same data dir, socket
 * and port. Returns 0 once it accepts connections, or -1. */
int harness_mariadb_restart(harness_mariadb_t *m);

/* ---- trellis-testpart state ------------------------------------------ */

/* One call trellis-testpart received (see harness/testpart.c). */
typedef struct {
    int64_t seq;      /* arrival order, from 1 */
    int64_t start_ms; /* wall clock at arrival */
    int64_t end_ms;   /* wall clock when answered */
    char gid[72];
    char branch[40];
    char op[16];     /* from the method: action, compensate, try, ... */
    char dtm_op[16]; /* dtm-op metadata as received ("" if none) */
    char trans_type[16];
    int n;           /* the n-th call of (gid, branch, op), from 1 */
    size_t len;      /* bytes of payload received */
    char answer[16]; /* ok, fail, ongoing, unavail, error */
    char effect[16]; /* applied, undone, confirmed, dup, empty, blocked,
                        none */
    /* The compensation log the call carried (trellisd's metadata
     * trellis-action-result-bin): its length (-1: none), its first 256
     * bytes in lower-case hex, and the full size trellisd said when it cut
     * the log (-1: not cut). */
    int64_t log_len;
    char log_hex[2 * 256 + 1];
    int64_t log_size;
    /* A Notify (completion listener): the CompletionEvent's status
     * ("SUCCEEDED", "FAILED", "bad"; "" for other ops); of a branch
     * listener, "F,P,S" (testpart.c: forward, phase-2 status, side). */
    char event_status[16];
    /* A batching listener's call (dtm-op "notify_batch"): the events it
     * carried (each has its own record); 0 for any other call. */
    int batch;
    /* The W3C trace context the call carried ("" when none): traceparent
     * and tracestate as received. */
    char traceparent[257];
    char tracestate[513];
} harness_part_call_t;

/* A (gid, branch) whose forward op took effect and was not undone. */
typedef struct {
    char gid[72];
    char branch[40];
    int confirmed; /* a confirm/commit took effect too */
} harness_part_net_t;

typedef struct {
    size_t n_calls;
    harness_part_call_t *calls; /* sorted by seq */
    size_t n_net;
    harness_part_net_t *net;
} harness_part_state_t;

/* Ask the participant at target ("host:port") for its journal and net state
 * restricted to gid ("" or NULL: all). Fills *out (release with
 * harness_part_state_free). Returns 0 or -1. Uses the SDK's
 * trellis_call_unary; safe from any thread. */
int harness_part_state(const char *target, const char *gid,
                       harness_part_state_t *out);
void harness_part_state_free(harness_part_state_t *s);

/* The nth (from 0) call of (branch, op) in arrival order, or NULL. */
const harness_part_call_t *harness_part_find(const harness_part_state_t *s,
                                             const char *branch, const char *op,
                                             int nth);

/* Calls matching branch, op and effect; NULL matches anything. */
int harness_part_count(const harness_part_state_t *s, const char *branch,
                       const char *op, const char *effect);

/* 1 if branch is in the net state. */
int harness_part_net_has(const harness_part_state_t *s, const char *branch);

/* Print the journal and net state to stderr (for failure diagnostics). */
void harness_part_state_dump(const harness_part_state_t *s);

/* Send the participant at target one Control command ("wait-held GID N MS",
 * "release GID": see harness/testpart.c, script step "hold") and put
 * its reply line into reply[len]. Returns 0 for an "ok" reply, -1
 * otherwise (printed). A wait-held blocks up to its MS (at most 60 s). */
int harness_part_cmd(const char *target, const char *cmd, char *reply,
                     size_t len);

/* ---- HTTP and a headless browser (harness_http.c) --------------------- */

/* The port of "NAME=HOST:PORT" on the last ready line trellisd wrote to
 * p's log (name "metrics" or "console"), or -1 when there is none. */
int harness_ready_port(const harness_proc_t *p, const char *name);

/* Send request[len] (a whole HTTP/1.0 request) to 127.0.0.1:port and read
 * the answer to EOF. Returns the status code, with *head (the status line
 * and headers) and *body (NUL-terminated) malloc'd, the caller's (either
 * may be NULL: not wanted); or -1 (printed) when there is no answer. */
int harness_http(int port, const char *request, size_t len, char **head,
                 char **body);

/* The headless browser the console tests drive: $TRELLIS_CHROMIUM, or
 * chromium in PATH (Debian's package: /usr/bin/chromium); NULL when there
 * is none. */
const char *harness_browser(void);

/* Load url in the headless browser, let its scripts run (up to 5 s of
 * virtual time), and return the DOM as serialized HTML in *dom
 * (malloc'd, the caller's); its log is <scratch>/<name>.log. Returns 0, or
 * -1 (printed). */
int harness_browser_dom(harness_t *h, const char *name, const char *url,
                        char **dom);

/* The same page as a PNG screenshot of width x height pixels into path.
 * Returns 0, or -1 (printed). */
int harness_browser_screenshot(harness_t *h, const char *name, const char *url,
                               const char *path, int width, int height);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_HARNESS_H */
