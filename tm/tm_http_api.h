/*
 * tm_http_api: the web console's JSON API under /api/ (README, "Web
 * console"). It has no facts of its own: every answer comes from calling
 * trellisd's gRPC methods in process (tm_server_call_local) — Query, List,
 * RetryNow, ForceStop — so the console sees exactly what trellisctl sees,
 * checked by the same validation and read by the same engine code; this
 * file only turns HTTP requests into those requests and their replies
 * into JSON (tm_json, which escapes every string).
 *
 *   GET  /api/info                          {"writes_enabled":bool,...}
 *   GET  /api/transactions?status=S&older_than=D&newer_than=D&limit=N
 *                         &page_token=T     one page, oldest first
 *   GET  /api/transactions/GID              one transaction, whole
 *   POST /api/transactions/GID/retry-now    RetryNow
 *   POST /api/transactions/GID/force-stop   ForceStop; the body (text) is
 *                                           the reason
 *
 * Writes (POST) need the operator's bearer token: without a configured
 * token every write is refused 403, with one a request without
 * "Authorization: Bearer <token>" (compared in constant time) gets 401.
 * Reads need no token. Errors are {"error":"what is wrong"} with 400 (bad
 * parameters, as the gRPC checks say), 404 (no such gid or path), 405
 * (wrong method), 409 (the transaction's state does not allow it), 503
 * (the store fails or trellisd is stopping), 500 otherwise.
 *
 * Threads: runs on the HTTP server's connection threads and blocks each
 * until the engine answered (a ForceStop once its write committed; at
 * most TM_HTTP_API_WAIT_MS, then 504).
 */
#ifndef TM_HTTP_API_H
#define TM_HTTP_API_H

#include <stddef.h>

#include "tm_http.h"
#include "tm_server.h"

#define TM_HTTP_API_WAIT_MS 30000

typedef struct {
    tm_server_t *srv;  /* whose methods it calls (outlives the API) */
    const char *token; /* the bearer token for writes (borrowed for the
                          process's life); NULL: read-only */
    size_t token_len;
} tm_http_api_t;

/* Answer one request whose path starts with /api/. */
void tm_http_api_answer(const tm_http_api_t *api, const tm_http_req_t *req,
                        tm_http_answer_t *ans);

#endif /* TM_HTTP_API_H */
