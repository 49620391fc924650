/*
 * tm_exit: the exit codes of trellisd, in one place, and the one way it
 * leaves when it cannot go on. Every state change is durable before it is
 * acted on, so leaving at once and recovering from storage at the next
 * start is always safe; a supervisor (systemd) restarts on any non-zero.
 *
 *   0   stopped on SIGTERM/SIGINT after the drain
 *   1   bad command line or configuration, or the start failed (the
 *       message says why)
 *   71  out of memory, or a thread could not be started (sysexits'
 *       EX_OSERR)
 *   75  the node lock of --node-id was lost to another process while the
 *       database was away (EX_TEMPFAIL): two processes must never drive
 *       one node's transactions
 */
#ifndef TM_EXIT_H
#define TM_EXIT_H

typedef enum {
    TM_EXIT_OK = 0,
    TM_EXIT_START_FAILED = 1,
    TM_EXIT_OS_ERROR = 71,
    TM_EXIT_NODE_LOCK_LOST = 75,
} tm_exit_code_t;

/* Log "event=oom what=<what>" and leave with TM_EXIT_OS_ERROR, at once
 * (no atexit handlers: other threads may hold any lock). Any thread. */
_Noreturn void tm_exit_oom(const char *what);

/* The same for a resource of the system other than memory ("event=
 * os_error what=<what>"), e.g. a thread that cannot be started in a
 * process that already runs others. */
_Noreturn void tm_exit_os_error(const char *what);

#endif /* TM_EXIT_H */
