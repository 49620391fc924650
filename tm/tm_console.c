/*
 * tm_console: the console's server (see tm_console.h). Owns the routes
 * between the page's files and the API, and the token read from
 * --http-token-file (kept for the process's life).
 */
#include "tm_console.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tm_console_assets.h"
#include "tm_http.h"
#include "tm_http_api.h"

#define TEXT "text/plain; charset=utf-8"

#define HOST_NAME_MAX_LEN 253

struct tm_console {
    tm_http_api_t api;
    char *token;
    char *allow_hosts; /* --http-allow-hosts, checked */
    tm_http_t *http;
};

static int token_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* Check the token read (trailing white space already cut). */
static int check_token(const char *path, const char *t, size_t n, char *err,
                       size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "--http-token-file %s is empty", path);
        return -1;
    }
    if (n < TM_CONSOLE_TOKEN_MIN) {
        snprintf(err, errlen,
                 "--http-token-file %s: the token has %zu characters; use at "
                 "least %d (e.g. openssl rand -hex 32)",
                 path, n, TM_CONSOLE_TOKEN_MIN);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!token_char_ok((unsigned char)t[i])) {
            snprintf(err, errlen,
                     "--http-token-file %s: character 0x%02x at offset %zu; "
                     "a token is printable ASCII without spaces",
                     path, (unsigned char)t[i], i);
            return -1;
        }
    return 0;
}

int tm_console_read_token(const char *path, char **token, char *err,
                          size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read --http-token-file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    char buf[TM_CONSOLE_TOKEN_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf, f);
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    if (failed) {
        snprintf(err, errlen, "cannot read --http-token-file %s: %s", path,
                 strerror(failed));
        return -1;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                 buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    if (n > TM_CONSOLE_TOKEN_MAX) {
        snprintf(err, errlen,
                 "--http-token-file %s: the token is longer than %d "
                 "characters",
                 path, TM_CONSOLE_TOKEN_MAX);
        return -1;
    }
    if (check_token(path, buf, n, err, errlen) != 0)
        return -1;
    *token = strndup(buf, n);
    if (!*token) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The name part of a Host header into out: "[v6]:port" -> "[v6]",
 * "name:port" -> "name". */
static void host_name_of(const char *host, char *out, size_t len)
{
    size_t n = strlen(host);
    const char *close = host[0] == '[' ? strchr(host, ']') : NULL;
    if (close)
        n = (size_t)(close - host) + 1;
    else if (strchr(host, ':'))
        n = (size_t)(strchr(host, ':') - host);
    snprintf(out, len, "%.*s", (int)n, host);
}

static int is_ip_literal(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];
    char inner[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(name);
    if (inet_pton(AF_INET, name, buf) == 1)
        return 1;
    if (n < 3 || n - 2 >= sizeof inner || name[0] != '[' || name[n - 1] != ']')
        return 0;
    memcpy(inner, name + 1, n - 2);
    inner[n - 2] = '\0';
    return inet_pton(AF_INET6, inner, buf) == 1;
}

/* 1 when name is one of the comma-separated names of allow. */
static int in_list(const char *name, const char *allow)
{
    size_t n = strlen(name);
    for (const char *p = allow; p && *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && strncasecmp(p, name, n) == 0)
            return 1;
        p += k + (p[k] == ',');
    }
    return 0;
}

int tm_console_host_allowed(const char *host, const char *allow)
{
    char name[HOST_NAME_MAX_LEN + 3];
    if (!host)
        return 1;
    if (strlen(host) > HOST_NAME_MAX_LEN + 8)
        return 0;
    host_name_of(host, name, sizeof name);
    return is_ip_literal(name) || strcasecmp(name, "localhost") == 0 ||
           in_list(name, allow);
}

/* --http-allow-hosts: names of letters, digits, '-' and '.', comma
 * separated, none empty. */
static int check_allow_hosts(const char *allow, char *err, size_t errlen)
{
    for (const char *p = allow; *p;) {
        size_t k = strcspn(p, ",");
        size_t ok = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                              "VWXYZ0123456789-.");
        if (k == 0 || k > HOST_NAME_MAX_LEN || ok < k) {
            snprintf(err, errlen,
                     "--http-allow-hosts \"%s\": give host names (letters, "
                     "digits, '-' and '.') separated by commas",
                     allow);
            return -1;
        }
        p += k + (p[k] == ',');
    }
    return 0;
}

static const tm_console_asset_t *asset_of(const char *path)
{
    /* The page is one file for both views; its script reads the path. */
    if (strcmp(path, "/") == 0 || strcmp(path, "/tx") == 0)
        path = "/index.html";
    for (size_t i = 0; i < tm_console_n_assets; i++)
        if (strcmp(tm_console_assets[i].path, path) == 0)
            return &tm_console_assets[i];
    return NULL;
}

static void on_request(void *user, const tm_http_req_t *req,
                       tm_http_answer_t *ans)
{
    const tm_console_t *c = user;
    const char *path = tm_http_path(req);
    if (!tm_console_host_allowed(tm_http_header(req, "Host"), c->allow_hosts)) {
        tm_http_answer_static(ans, 403, TEXT,
                              "this console does not answer to that Host; "
                              "name it in --http-allow-hosts (a guard "
                              "against DNS rebinding)\n");
        return;
    }
    if (strncmp(path, "/api/", 5) == 0) {
        tm_http_api_answer(&c->api, req, ans);
        return;
    }
    const char *method = tm_http_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        tm_http_answer_static(ans, 405, TEXT, "the page takes GET only\n");
        ans->hdr_name = "Allow";
        ans->hdr_value = "GET, HEAD";
        return;
    }
    const tm_console_asset_t *a = asset_of(path);
    if (!a) {
        tm_http_answer_static(ans, 404, TEXT,
                              "not found; the console is at /\n");
        return;
    }
    *ans = (tm_http_answer_t){.code = 200,
                              .type = a->type,
                              .body = (char *)a->bytes,
                              .len = a->len,
                              .body_static = 1};
}

static void console_free(tm_console_t *c)
{
    free(c->token);
    free(c->allow_hosts);
    free(c);
}

int tm_console_start(const char *addr, const char *token_file,
                     const char *allow_hosts, tm_server_t *srv,
                     tm_console_t **out, int *port, char *err, size_t errlen)
{
    if (check_allow_hosts(allow_hosts, err, errlen) != 0)
        return -1;
    tm_console_t *c = calloc(1, sizeof *c);
    if (!c || !(c->allow_hosts = strdup(allow_hosts))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (token_file[0] &&
        tm_console_read_token(token_file, &c->token, err, errlen) != 0) {
        console_free(c);
        return -1;
    }
    c->api.srv = srv;
    c->api.token = c->token;
    c->api.token_len = c->token ? strlen(c->token) : 0;
    if (tm_http_start(addr, "console", on_request, c, &c->http, port, err,
                      errlen) != 0) {
        console_free(c);
        return -1;
    }
    *out = c;
    return 0;
}
