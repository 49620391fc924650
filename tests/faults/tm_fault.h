/*
 * tm_fault: fault injection inside trellisd, for tests only.
 *
 * It is compiled into trellisd-faults (tm/trellisd.c built with
 * TM_WITH_FAULTS, in the test tree) and never into trellisd, so no flag or
 * environment of a release binary can switch it on. Tests pick the binary
 * with TRELLIS_TRELLISD (see harness/harness.h).
 *
 * It wraps the store's ops table, so it works on either engine:
 *   - hold commit groups before they are applied, until released;
 *   - fail the next N commits as transient (nothing stored; the store
 *     retries with backoff) or refuse every write of the next N groups for
 *     good (TM_WRITE_FAILED);
 *   - lose the answer of the next N groups: each commits, is then held
 *     (wait-held sees it) until released, and is reported failed, so the
 *     store applies it a second time — a COMMIT whose reply never came;
 *   - stall reads (peek, get, list) while set;
 * and adds, for SQLite, a shim VFS over the default one that answers
 * SQLITE_FULL to every write while "disk-full on" (the way SQLite's own
 * tests fake a full disk), and an offset added to the wall clock trellisd
 * reads (TRELLIS_FAULT_WALL_OFFSET_MS at start, or the command). Through
 * the caller's start gate (tm_caller_set_start_gate) it refuses to start
 * the branch calls of one method, the way a call gRPC cannot start is
 * refused; and it reports the engine's waiters.
 *
 * Control: a Unix stream socket at $TRELLIS_FAULT_SOCKET. A client sends
 * one command line and reads one reply line ("ok ..." or "err ..."):
 *   hold | release | step (the held group goes on, the next one is held) |
 *   wait-held MS | fail-transient N | fail-permanent N | lose-answer N |
 *   disk-full on|off | stall-reads on|off | wall-offset MS | commits |
 *   live-calls (incoming calls accepted and not yet answered) |
 *   waiters (requests waiting with wait_result, tm_engine_waiters) |
 *   fail-call-start METHOD|off (refuse to start every branch call of
 *   METHOD, "/package.Service/Method") | call-starts-refused (how many)
 * wait-held answers "ok <write> ..." once a group is held — each of its
 * writes as gid:status (the status it writes, e.g. item3:submitted),
 * ":insert" appended for a new row — or "err timeout" after MS.
 */
#ifndef TM_FAULT_H
#define TM_FAULT_H

#include <stddef.h>

#include "tm_caller.h"
#include "tm_engine.h"
#include "tm_server.h"
#include "tm_store.h"

/* Register the shim VFS as SQLite's default (before the store opens).
 * Returns 0, or -1 with err. */
int tm_fault_vfs_register(char *err, size_t errlen);

/* Wrap store's ops and start the control socket at socket_path (NULL: no
 * socket, only the start-up settings from the environment). Returns 0, or
 * -1 with err. */
int tm_fault_install(tm_store_t *store, const char *socket_path, char *err,
                     size_t errlen);

/* The server whose calls live-calls counts (borrowed; set once it runs). */
void tm_fault_set_server(tm_server_t *srv);

/* The engine whose waiters "waiters" reports (borrowed; set once). */
void tm_fault_set_engine(tm_engine_t *eng);

/* Gate caller's starts for fail-call-start (borrowed; set before it
 * starts any call). */
void tm_fault_set_caller(tm_caller_t *caller);

#endif /* TM_FAULT_H */
