/*
 * tm_http: the HTTP server trellisd's metrics and console share (see
 * tm_http.h). Owns the libmicrohttpd daemon, the per-request state (the
 * body of a POST, read whole before the handler runs), the headers every
 * answer carries and the parsing of the listen address.
 *
 * libmicrohttpd calls the access handler several times per request: first
 * with the headers only (the request's state is made), then once per
 * piece of the body, then once more with nothing left, when the handler
 * runs. The state is freed when the request completes.
 */
#include "tm_http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tm_log.h"

#define CONNECTION_TIMEOUT_S 10

/* Scripts, styles, images and fetches from this server only; nothing
 * inline, no plugins, no framing, no form posts, no <base>. */
#define CSP                                                                    \
    "default-src 'none'; script-src 'self'; style-src 'self'; "                \
    "img-src 'self'; connect-src 'self'; base-uri 'none'; "                    \
    "form-action 'none'; frame-ancestors 'none'"

struct tm_http {
    struct MHD_Daemon *daemon;
    tm_http_handler_fn fn;
    void *user;
    char what[16];
};

struct tm_http_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    uint8_t *body;
    size_t len;
    int too_big;
};

/* ---- the request, for handlers ------------------------------------------ */

const char *tm_http_method(const tm_http_req_t *req)
{
    return req->method;
}

const char *tm_http_path(const tm_http_req_t *req)
{
    return req->path;
}

const char *tm_http_header(const tm_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *tm_http_query(const tm_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct {
    const char *const *known;
    const char *unknown;
} unknown_scan_t;

static enum MHD_Result scan_arg(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value)
{
    (void)kind;
    (void)value;
    unknown_scan_t *s = cls;
    for (const char *const *k = s->known; *k; k++)
        if (strcmp(*k, key) == 0)
            return MHD_YES;
    s->unknown = key;
    return MHD_NO;
}

const char *tm_http_unknown_query(const tm_http_req_t *req,
                                  const char *const *known)
{
    unknown_scan_t s = {known, NULL};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, scan_arg, &s);
    return s.unknown;
}

const uint8_t *tm_http_body(const tm_http_req_t *req, size_t *len)
{
    *len = req->len;
    return req->body ? req->body : (const uint8_t *)"";
}

void tm_http_answer_static(tm_http_answer_t *ans, unsigned code,
                           const char *type, const char *text)
{
    *ans = (tm_http_answer_t){.code = code,
                              .type = type,
                              .body = (char *)text,
                              .len = strlen(text),
                              .body_static = 1};
}

void tm_http_answer_take(tm_http_answer_t *ans, unsigned code, const char *type,
                         char *body, size_t len)
{
    if (!body) {
        tm_http_answer_static(ans, 500, "text/plain; charset=utf-8",
                              "out of memory\n");
        return;
    }
    *ans = (tm_http_answer_t){
        .code = code, .type = type, .body = body, .len = len};
}

/* ---- the daemon --------------------------------------------------------- */

static enum MHD_Result send_answer(struct MHD_Connection *conn,
                                   tm_http_answer_t *ans)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        ans->len, ans->body,
        ans->body_static ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    if (!r) {
        if (!ans->body_static)
            free(ans->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ans->type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (ans->hdr_name)
        MHD_add_response_header(r, ans->hdr_name, ans->hdr_value);
    enum MHD_Result rc = MHD_queue_response(conn, ans->code, r);
    MHD_destroy_response(r);
    return rc;
}

/* Keep a piece of the body; past TM_HTTP_MAX_BODY only remember that. */
static void take_body(tm_http_req_t *r, const char *data, size_t n)
{
    if (r->too_big || r->len + n > TM_HTTP_MAX_BODY) {
        r->too_big = 1;
        return;
    }
    uint8_t *b = realloc(r->body, r->len + n);
    if (!b) {
        r->too_big = 1;
        return;
    }
    memcpy(b + r->len, data, n);
    r->body = b;
    r->len += n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_len, void **con_cls)
{
    (void)version;
    tm_http_t *h = cls;
    tm_http_req_t *r = *con_cls;
    if (!r) { /* the headers: make the request's state */
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->conn = conn;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_len) {
        take_body(r, upload, *upload_len);
        *upload_len = 0;
        return MHD_YES;
    }
    r->method = method;
    r->path = url;
    tm_http_answer_t ans;
    if (r->too_big)
        tm_http_answer_static(&ans, 413, "text/plain; charset=utf-8",
                              "request body too large\n");
    else
        h->fn(h->user, r, &ans);
    return send_answer(conn, &ans);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    tm_http_req_t *r = *con_cls;
    if (!r)
        return;
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decoding of the path and of query arguments in place
 * (libmicrohttpd's unescape hook), except "%00", which stays as typed: no
 * decoded string then holds a NUL that a C string would silently cut, and
 * the checks refuse the literal text whole. */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    char *w = s;
    for (const char *r = s; *r;) {
        int hi = r[0] == '%' ? hex_value(r[1]) : -1;
        int lo = hi >= 0 ? hex_value(r[2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    const tm_http_t *h = cls;
    char msg[512], quoted[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    tm_log(TM_LOG_WARN, "event=%s_http_error msg=\"%s\"", h->what,
           tm_log_quote(msg, quoted, sizeof quoted));
}

/* addr as host and port strings; "[v6]:port" loses its brackets. */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port,
                      size_t portlen)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1] || strlen(colon + 1) >= portlen)
        return -1;
    const char *hs = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && hs[0] == '[' && hs[hl - 1] == ']')
        hs++, hl -= 2;
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    return 0;
}

static int resolve(const char *addr, const char *what, struct addrinfo **out,
                   char *err, size_t errlen)
{
    char host[256], port[16];
    if (split_addr(addr, host, sizeof host, port, sizeof port) != 0) {
        snprintf(err, errlen,
                 "%s address \"%s\" is not host:port (IPv6 as [addr]:port)",
                 what, addr);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int rc = getaddrinfo(host, port, &hints, out);
    if (rc != 0) {
        snprintf(err, errlen, "%s address \"%s\": %s", what, addr,
                 gai_strerror(rc));
        return -1;
    }
    return 0;
}

int tm_http_start(const char *addr, const char *what, tm_http_handler_fn fn,
                  void *user, tm_http_t **out, int *port, char *err,
                  size_t errlen)
{
    struct addrinfo *ai = NULL;
    if (resolve(addr, what, &ai, err, errlen) != 0)
        return -1;
    tm_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->fn = fn;
    h->user = user;
    snprintf(h->what, sizeof h->what, "%s", what);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger first: options before it would log the MHD way. */
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_keep_nul, NULL,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)TM_HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        free(h);
        snprintf(err, errlen,
                 "cannot serve %s on %s (address in use or not local?)", what,
                 addr);
        return -1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? (int)info->port : 0;
    *out = h;
    return 0;
}
