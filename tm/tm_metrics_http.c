/*
 * tm_metrics_http: the /metrics endpoint on libmicrohttpd (see
 * tm_metrics_http.h). Owns the daemon and the address parsing; the text
 * comes from tm_metrics_render.
 *
 * GET or HEAD /metrics answers 200 with the exposition; other paths 404,
 * other methods 405. libmicrohttpd's own messages go to tm_log.
 */
#include "tm_metrics_http.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tm_log.h"
#include "tm_metrics.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_MAX_CONNECTIONS 32
#define METRICS_CONNECTION_TIMEOUT_S 10

struct tm_metrics_http {
    struct MHD_Daemon *daemon;
};

static enum MHD_Result answer_text(struct MHD_Connection *conn,
                                   unsigned int code, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result answer_metrics(struct MHD_Connection *conn)
{
    size_t len = 0;
    char *body = tm_metrics_render(&len);
    if (!body)
        return answer_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory\n");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            METRICS_CONTENT_TYPE);
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_len, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)con_cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                           "only GET /metrics\n");
    if (strcmp(url, "/metrics") != 0)
        return answer_text(conn, MHD_HTTP_NOT_FOUND,
                           "not found; metrics are at /metrics\n");
    return answer_metrics(conn);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512], quoted[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    tm_log(TM_LOG_WARN, "event=metrics_http_error msg=\"%s\"",
           tm_log_quote(msg, quoted, sizeof quoted));
}

/* addr as host and port strings; "[v6]:port" loses its brackets. */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port,
                      size_t portlen)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1] || strlen(colon + 1) >= portlen)
        return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')
        h++, hl -= 2;
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    return 0;
}

static int resolve(const char *addr, struct addrinfo **out, char *err,
                   size_t errlen)
{
    char host[256], port[16];
    if (split_addr(addr, host, sizeof host, port, sizeof port) != 0) {
        snprintf(err, errlen,
                 "metrics address \"%s\" is not host:port (IPv6 as "
                 "[addr]:port)",
                 addr);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int rc = getaddrinfo(host, port, &hints, out);
    if (rc != 0) {
        snprintf(err, errlen, "metrics address \"%s\": %s", addr,
                 gai_strerror(rc));
        return -1;
    }
    return 0;
}

int tm_metrics_http_start(const char *addr, tm_metrics_http_t **out, int *port,
                          char *err, size_t errlen)
{
    struct addrinfo *ai = NULL;
    if (resolve(addr, &ai, err, errlen) != 0)
        return -1;
    tm_metrics_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger first: options before it would log the MHD way. */
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)METRICS_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->daemon) {
        free(h);
        snprintf(err, errlen,
                 "cannot serve metrics on %s (address in use or not "
                 "local?)",
                 addr);
        return -1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? (int)info->port : 0;
    *out = h;
    return 0;
}
