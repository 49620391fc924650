/*
 * trellis_portfile: the port file, by which a server started with port 0
 * tells whoever started it which port it got. trellisd, trellis-testpart,
 * the example services and trellis-bench-part write one (--port-file); the
 * test harness reads it (harness.c) to know the server is ready.
 *
 * The format: the port in decimal and a newline ("40123\n"). The writer
 * writes PATH.tmp and renames it to PATH, so a reader sees no file or the
 * whole file, never a partial one; the rename is the "ready" signal. No
 * fsync: the file is for processes running now, not for a crash.
 *
 * No global state; any thread. Two writers of one PATH race on PATH.tmp:
 * give each server its own file.
 */
#ifndef TRELLIS_PORTFILE_H
#define TRELLIS_PORTFILE_H

#include <stddef.h>

/* Write port to path (through path.tmp, renamed). Returns 0, or -1 with a
 * message in err (errlen bytes, NUL-terminated) naming the file and the
 * reason; then path is unchanged and path.tmp is removed. */
int trellis_portfile_write(const char *path, int port, char *err,
                           size_t errlen);

/* The port in the file at path: 1..65535, or -1 while there is none (no
 * file yet, or not a port). Meant to be polled; never blocks. */
int trellis_portfile_read(const char *path);

#endif
