/*
 * tm_console: trellisd's web console at --http-listen — the HTTP server
 * (tm_http) that serves the page (tm_console_assets: "/" lists
 * transactions, "/tx?gid=GID" shows one) and the JSON API under /api/
 * (tm_http_api) it reads its data from, and the operator's credential
 * (--http-token-file) that unlocks the API's writes.
 *
 * A request whose Host header names something other than an IP address,
 * localhost or a name of --http-allow-hosts is refused 403
 * (tm_console_host_allowed).
 *
 * A console of its own address, not the metrics port: the metrics port is
 * often open to a scraper's network, and the console shows payloads and
 * errors and may act on transactions.
 *
 * Threads: start from trellisd's main, after the gRPC server was started
 * (the API calls its methods in process); requests then run on the HTTP
 * server's threads. No stop: it lives until the process exits.
 */
#ifndef TM_CONSOLE_H
#define TM_CONSOLE_H

#include <stddef.h>

#include "tm_server.h"

/* A token shorter than this is refused at start. */
#define TM_CONSOLE_TOKEN_MIN 16
#define TM_CONSOLE_TOKEN_MAX 1024

typedef struct tm_console tm_console_t;

/* The bearer token in the file at path: its content without trailing
 * white space, at least TM_CONSOLE_TOKEN_MIN and at most
 * TM_CONSOLE_TOKEN_MAX characters, each printable ASCII and no space.
 * *token (malloc'd) is the caller's. Returns 0, or -1 with err (cannot
 * read it, empty, too short or long, a character a header cannot carry). */
int tm_console_read_token(const char *path, char **token, char *err,
                          size_t errlen);

/* Serve the console on addr (tm_http_start's form) with srv's methods;
 * token_file "" leaves it read-only. allow_hosts: host names
 * (comma-separated; "" none) a request's Host header may name besides IP
 * literals and "localhost" (below). *out lives until the process exits;
 * *port gets the bound port. Returns 0, or -1 with err (an unusable token
 * file, a bad host name, the address). */
int tm_console_start(const char *addr, const char *token_file,
                     const char *allow_hosts, tm_server_t *srv,
                     tm_console_t **out, int *port, char *err, size_t errlen);

/* 1 when a request naming host (a Host header: "name[:port]",
 * "[v6]:port"; NULL when the request has none) may be answered: no Host,
 * an IP literal, "localhost", or one of allow (comma-separated names, case
 * ignored). Reads need no token, so without this a web page whose name
 * its owner re-points at the console's address (DNS rebinding) could read
 * the console in a victim's browser; a browser always names the page's
 * host. */
int tm_console_host_allowed(const char *host, const char *allow);

#endif /* TM_CONSOLE_H */
