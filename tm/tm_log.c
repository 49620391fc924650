/*
 * tm_log: leveled logging to stderr, key=value or JSON (see tm_log.h).
 *
 * Owns the level and format (atomics, so the SetLogLevel RPC changes them
 * while other threads log) and the conversion of a key=value message into
 * a JSON object. Call sites keep one printf-style shape for both formats;
 * the price is that the JSON form is parsed back out of the text, which is
 * cheap next to the write(2) and only happens for lines that are written.
 */
#include "tm_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tm_clock.h"

#define LOG_LINE_MAX 2048

static atomic_int current_level = TM_LOG_INFO;
static atomic_int current_format = TM_LOG_KV;
static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const format_names[] = {"kv", "json"};

int tm_log_parse_level(const char *name, tm_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (tm_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

const char *tm_log_level_name(tm_log_level_t level)
{
    if ((int)level < 0 || (int)level > TM_LOG_ERROR)
        return "unknown";
    return level_names[level];
}

void tm_log_set_level(tm_log_level_t level)
{
    atomic_store(&current_level, (int)level);
}

tm_log_level_t tm_log_get_level(void)
{
    return (tm_log_level_t)atomic_load(&current_level);
}

int tm_log_enabled(tm_log_level_t level)
{
    return (int)level >= atomic_load(&current_level);
}

int tm_log_parse_format(const char *name, tm_log_format_t *out)
{
    for (int i = 0; i < 2; i++) {
        if (strcmp(name, format_names[i]) == 0) {
            *out = (tm_log_format_t)i;
            return 0;
        }
    }
    return -1;
}

void tm_log_set_format(tm_log_format_t format)
{
    atomic_store(&current_format, (int)format);
}

const char *tm_log_quote(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    if (len == 0)
        return buf;
    for (const unsigned char *p = (const unsigned char *)(s ? s : "");
         *p && o + 3 < len; p++) {
        if (*p == '"' || *p == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)*p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *p < 0x20 ? ' ' : (char)*p;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* ---- JSON form ----------------------------------------------------------- */

/* An output buffer that silently stops at its end (one byte kept for the
 * newline). */
typedef struct {
    char *buf;
    size_t cap, len;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len + n + 1 >= o->cap)
        n = o->cap > o->len + 1 ? o->cap - o->len - 1 : 0;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_str(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

/* s[0..n) as the inside of a JSON string. */
static void put_json_chars(out_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c == '\n') {
            put(o, "\\n", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
}

/* A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)? */
static int is_json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
        return 0;
    if (s[i] == '0' && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9')
        return 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i == n;
}

/* A quoted value starting after its opening quote: unescape \" \\ \n into
 * val[vlen]; returns the position after the closing quote. */
static const char *read_quoted(const char *p, char *val, size_t vlen, size_t *n)
{
    size_t o = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\' && *p) {
            c = *p++;
            if (c == 'n')
                c = '\n';
        }
        if (o + 1 < vlen)
            val[o++] = c;
    }
    *n = o;
    return *p == '"' ? p + 1 : p;
}

static int always_string(const char *key, size_t klen)
{
    return (klen == 3 && memcmp(key, "gid", 3) == 0) ||
           (klen == 6 && memcmp(key, "branch", 6) == 0);
}

static void put_pair(out_t *o, const char *key, size_t klen, const char *val,
                     size_t vlen, int quoted)
{
    put_str(o, ",\"");
    put_json_chars(o, key, klen);
    put_str(o, "\":");
    if (!quoted && !always_string(key, klen) && is_json_number(val, vlen)) {
        put(o, val, vlen);
        return;
    }
    put_str(o, "\"");
    put_json_chars(o, val, vlen);
    put_str(o, "\"");
}

/* Convert "k=v k2=\"v 2\" word" into JSON pairs; words without '=' are
 * collected into one "text" pair at the end. */
static void put_pairs(out_t *o, const char *msg)
{
    char val[LOG_LINE_MAX], text[LOG_LINE_MAX];
    size_t tlen = 0;
    const char *p = msg;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '=')
            p++;
        if (p == start)
            break;
        if (*p != '=') { /* a bare word */
            size_t wl = (size_t)(p - start);
            if (tlen + wl + 2 < sizeof text) {
                if (tlen)
                    text[tlen++] = ' ';
                memcpy(text + tlen, start, wl);
                tlen += wl;
            }
            continue;
        }
        size_t klen = (size_t)(p - start), vlen;
        p++;
        int quoted = *p == '"';
        if (quoted) {
            p = read_quoted(p + 1, val, sizeof val, &vlen);
        } else {
            const char *v = p;
            while (*p && *p != ' ')
                p++;
            vlen = (size_t)(p - v);
            memcpy(val, v, vlen);
        }
        put_pair(o, start, klen, val, vlen, quoted);
    }
    if (tlen)
        put_pair(o, "text", 4, text, tlen, 1);
}

static size_t format_json(char *line, size_t cap, tm_log_level_t level,
                          const char *msg)
{
    out_t o = {line, cap, 0};
    char head[64];
    snprintf(head, sizeof head, "{\"ts\":%lld,\"level\":\"%s\"",
             (long long)tm_wall_ms(), level_names[level]);
    put_str(&o, head);
    put_pairs(&o, msg);
    /* Always close the object, even when the line was cut. */
    if (o.len + 2 > cap)
        o.len = cap - 2;
    line[o.len++] = '}';
    return o.len;
}

static size_t format_kv(char *line, size_t cap, tm_log_level_t level,
                        const char *msg)
{
    int n = snprintf(line, cap, "ts=%lld level=%s %s", (long long)tm_wall_ms(),
                     level_names[level], msg);
    size_t len = n < 0 ? 0 : (size_t)n;
    return len > cap - 2 ? cap - 2 : len;
}

void tm_log(tm_log_level_t level, const char *fmt, ...)
{
    if (!tm_log_enabled(level))
        return;
    char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = atomic_load(&current_format) == TM_LOG_JSON
                     ? format_json(line, sizeof line, level, msg)
                     : format_kv(line, sizeof line, level, msg);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
