/*
 * tm_metrics_http: serves tm_metrics' Prometheus exposition over HTTP
 * (GET /metrics) on tm_http (libmicrohttpd), on an address of its own so a
 * scraper never shares the TM API's port nor sees the console's data.
 *
 * The server runs on libmicrohttpd's own threads; every scrape renders the
 * metrics afresh (tm_metrics_render reads atomics and takes no lock the
 * engine holds), so a slow scraper cannot slow transactions down.
 *
 * Threads: start from trellisd's main. The server runs until the process
 * exits (trellisd leaves with _exit), so there is no stop.
 */
#ifndef TM_METRICS_HTTP_H
#define TM_METRICS_HTTP_H

#include <stddef.h>

#include "tm_http.h"

typedef tm_http_t tm_metrics_http_t;

/* Listen on addr ("host:port", host an IPv4 or IPv6 address in brackets,
 * or a name; port 0 picks a free one) and serve until the process exits.
 * *out names the server (it lives as long). *port gets the bound port.
 * Returns 0, or -1 with err filled (bad address, port in use). */
int tm_metrics_http_start(const char *addr, tm_metrics_http_t **out, int *port,
                          char *err, size_t errlen);

#endif /* TM_METRICS_HTTP_H */
