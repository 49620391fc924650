/*
 * tm_http: trellisd's small HTTP server on libmicrohttpd, shared by the
 * metrics endpoint (tm_metrics_http.c, --metrics-listen) and the web
 * console (tm_console.c, --http-listen). It owns the daemon, the
 * address parsing, the request body of a POST and the headers every
 * answer carries; what a path means is the handler's.
 *
 * Every answer carries X-Content-Type-Options: nosniff, a
 * Content-Security-Policy that allows scripts, styles and fetches from the
 * server itself only (no inline script, no framing, no forms), and
 * Cache-Control: no-store.
 *
 * Threads: libmicrohttpd runs one thread per connection (at most
 * TM_HTTP_MAX_CONNECTIONS), so a handler may block, e.g. until the engine
 * answered. Start from trellisd's main; the server runs until the process
 * exits (trellisd leaves with _exit), so there is no stop.
 */
#ifndef TM_HTTP_H
#define TM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define TM_HTTP_MAX_CONNECTIONS 32
/* A request body larger than this is refused 413. */
#define TM_HTTP_MAX_BODY 8192

typedef struct tm_http tm_http_t;
typedef struct tm_http_req tm_http_req_t;

/* What a handler answers. body is the handler's malloc'd text, which the
 * server frees, unless body_static (then it must live forever). */
typedef struct {
    unsigned code;
    const char *type; /* Content-Type (static) */
    char *body;
    size_t len;
    int body_static;
    const char *hdr_name;  /* one more header (static; NULL: none): */
    const char *hdr_value; /* Allow with a 405, WWW-Authenticate with 401 */
} tm_http_answer_t;

/* Called once per request with the whole body read; fills *ans. */
typedef void (*tm_http_handler_fn)(void *user, const tm_http_req_t *req,
                                   tm_http_answer_t *ans);

/* The request line's method ("GET", ...) and path (decoded, without the
 * query string). Borrowed for the handler's call. */
const char *tm_http_method(const tm_http_req_t *req);
const char *tm_http_path(const tm_http_req_t *req);
/* A header's or a query argument's value (decoded), or NULL. */
const char *tm_http_header(const tm_http_req_t *req, const char *name);
const char *tm_http_query(const tm_http_req_t *req, const char *name);
/* The first query argument whose name is not in known (NULL-terminated),
 * or NULL when every one is. */
const char *tm_http_unknown_query(const tm_http_req_t *req,
                                  const char *const *known);
/* The request body (may hold any bytes; not NUL-terminated). */
const uint8_t *tm_http_body(const tm_http_req_t *req, size_t *len);

/* Answer helpers: text (static or copied) with a status code. */
void tm_http_answer_static(tm_http_answer_t *ans, unsigned code,
                           const char *type, const char *text);
/* The answer takes body (malloc'd; NULL: 500 out of memory). */
void tm_http_answer_take(tm_http_answer_t *ans, unsigned code, const char *type,
                         char *body, size_t len);

/* Listen on addr ("host:port", IPv6 as "[addr]:port", port 0 picks a free
 * one) and serve every request with fn(user, ...) until the process exits.
 * what names the server in errors and logs ("metrics", "console"). *out
 * names the server (it lives as long); *port gets the bound port. Returns
 * 0, or -1 with err filled (bad address, port in use). */
int tm_http_start(const char *addr, const char *what, tm_http_handler_fn fn,
                  void *user, tm_http_t **out, int *port, char *err,
                  size_t errlen);

#endif /* TM_HTTP_H */
