/*
 * svc_holds: numbered hold points in the runs of a test service
 * (trellis-wfsvc, trellis-msgsvc), keyed by gid, and the threads those runs
 * go on. A test starts a run held at point K, waits until it is held there
 * (the service's Control "wait-held"), kills the process or trellisd at that
 * known point, or lets the run go on ("release"). Test-only.
 *
 * One table per process; every function may be called from any thread
 * (one mutex guards the table and the count of run threads). Holds live in
 * memory only: a restarted service holds nothing.
 *
 * Replies ("ok ..." or "err ...", one line with its newline) use the words
 * of trellis-testpart's Control method, so harness_part_cmd drives them.
 */
#ifndef TRELLIS_SVC_HOLDS_H
#define TRELLIS_SVC_HOLDS_H

#include <stddef.h>

#define SVC_GID_MAX 80

/* Hold gid's run at point hold_at (0: never), replacing an older hold of
 * gid and forgetting its result. 0, or -1 when the table is full. */
int svc_hold_set(const char *gid, int hold_at);

/* Point k of gid's run: block while the test holds it there (until
 * released, or until svc_holds_drain). Logs "held gid=G at=K" to stdout. */
void svc_hold_point(const char *gid, int k);

/* "wait-held GID MS": "ok at=K" once gid's run is held, or "err timeout"
 * after ms, into out[len]. */
void svc_hold_wait(const char *gid, int ms, char *out, size_t len);

/* "release GID": the held run goes on ("ok released", or "err no such
 * gid"). */
void svc_hold_release(const char *gid, char *out, size_t len);

/* gid's run ended with result (one line of words, copied). */
void svc_hold_done(const char *gid, const char *result);

/* "wait-done GID MS": "ok RESULT" once gid's run ended, or "err timeout"
 * after ms, into out[len]. */
void svc_hold_wait_done(const char *gid, int ms, char *out, size_t len);

/* The hold commands of a Control line — "wait-held GID MS", "wait-done GID
 * MS", "release GID" — answered into out[len]. Returns 1 when cmd was one
 * of them, 0 otherwise (out untouched). */
int svc_hold_control(const char *cmd, char *out, size_t len);

/* Run fn(arg) on a detached thread of its own, counted until it returns.
 * 0, or -1 when no thread could be started (fn is not called). */
int svc_run_spawn(void *(*fn)(void *), void *arg);

/* SIGTERM: hold nothing more, release every hold, and wait until every
 * thread of svc_run_spawn returned. */
void svc_holds_drain(void);

#endif /* TRELLIS_SVC_HOLDS_H */
