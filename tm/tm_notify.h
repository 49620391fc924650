/*
 * tm_notify: trellisd's readiness and stop signals to its service manager
 * (systemd's Type=notify), written here in a few lines instead of linking
 * libsystemd. The protocol: one datagram of "KEY=VALUE" lines to the
 * AF_UNIX socket named by $NOTIFY_SOCKET — a filesystem path ("/run/...")
 * or, when it starts with '@', a name in the abstract namespace.
 *
 * Owns nothing between calls: each send opens a socket, sends, closes it.
 * Thread safety: safe from any thread; reads the environment only.
 */
#ifndef TM_NOTIFY_H
#define TM_NOTIFY_H

#include <stddef.h>

/* Send state (e.g. "READY=1", "STOPPING=1"; copied into one datagram) to
 * $NOTIFY_SOCKET. Returns 1 when sent, 0 when NOTIFY_SOCKET is unset or
 * empty (not run by a service manager that listens: nothing to do), -1
 * with err filled when the variable names no usable socket (relative
 * path, name too long) or the send failed. */
int tm_notify_send(const char *state, char *err, size_t errlen);

#endif /* TM_NOTIFY_H */
