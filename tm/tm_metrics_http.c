/*
 * tm_metrics_http: the /metrics endpoint (see tm_metrics_http.h). Owns
 * only what the path means; the server is tm_http's, the text comes from
 * tm_metrics_render.
 *
 * GET or HEAD /metrics answers 200 with the exposition; other paths 404,
 * other methods 405.
 */
#include "tm_metrics_http.h"

#include <string.h>

#include "tm_http.h"
#include "tm_metrics.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT "text/plain; charset=utf-8"

static void on_request(void *user, const tm_http_req_t *req,
                       tm_http_answer_t *ans)
{
    (void)user;
    const char *method = tm_http_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        tm_http_answer_static(ans, 405, TEXT, "only GET /metrics\n");
        ans->hdr_name = "Allow";
        ans->hdr_value = "GET, HEAD";
        return;
    }
    if (strcmp(tm_http_path(req), "/metrics") != 0) {
        tm_http_answer_static(ans, 404, TEXT,
                              "not found; metrics are at /metrics\n");
        return;
    }
    size_t len = 0;
    char *body = tm_metrics_render(&len);
    tm_http_answer_take(ans, 200, METRICS_CONTENT_TYPE, body, len);
}

int tm_metrics_http_start(const char *addr, tm_metrics_http_t **out, int *port,
                          char *err, size_t errlen)
{
    return tm_http_start(addr, "metrics", on_request, NULL, out, port, err,
                         errlen);
}
