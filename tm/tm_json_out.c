/*
 * tm_json_out: the JSON writer of the console's API (see tm_json_out.h). Owns
 * the output buffer, the comma state per nesting level and the string escaping,
 * which is the one place participant bytes become JSON text.
 */
#include "tm_json_out.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tm_json_out_init(tm_json_out_t *j)
{
    memset(j, 0, sizeof *j);
}

void tm_json_out_free(tm_json_out_t *j)
{
    free(j->buf);
    tm_json_out_init(j);
}

/* Room for n more bytes and a NUL; 0, or -1 with failed set. */
static int reserve(tm_json_out_t *j, size_t n)
{
    if (j->failed)
        return -1;
    if (j->len + n + 1 <= j->cap)
        return 0;
    size_t cap = j->cap ? j->cap : 256;
    while (cap < j->len + n + 1)
        cap *= 2;
    char *b = realloc(j->buf, cap);
    if (!b) {
        j->failed = 1;
        return -1;
    }
    j->buf = b;
    j->cap = cap;
    return 0;
}

static void put(tm_json_out_t *j, const char *s, size_t n)
{
    if (reserve(j, n) != 0)
        return;
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void put_c(tm_json_out_t *j, char c)
{
    put(j, &c, 1);
}

/* Before a value: a comma unless it is the first of its level or follows
 * its key. */
static void value_start(tm_json_out_t *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->has_item[j->depth])
        put_c(j, ',');
    j->has_item[j->depth] = 1;
}

static void open_level(tm_json_out_t *j, char c)
{
    value_start(j);
    if (j->depth == TM_JSON_OUT_MAX_DEPTH) {
        j->failed = 1;
        return;
    }
    put_c(j, c);
    j->has_item[++j->depth] = 0;
}

static void close_level(tm_json_out_t *j, char c)
{
    if (j->depth == 0 || j->after_key) {
        j->failed = 1;
        return;
    }
    j->depth--;
    put_c(j, c);
}

void tm_json_out_obj_begin(tm_json_out_t *j)
{
    open_level(j, '{');
}

void tm_json_out_obj_end(tm_json_out_t *j)
{
    close_level(j, '}');
}

void tm_json_out_arr_begin(tm_json_out_t *j)
{
    open_level(j, '[');
}

void tm_json_out_arr_end(tm_json_out_t *j)
{
    close_level(j, ']');
}

/* The length of the well-formed UTF-8 sequence at s[0..n) (2 to 4), with
 * its code point in *cp; 0 when s[0] does not start one. */
static size_t utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t b = s[0];
    size_t len;
    uint32_t v, min;
    if (b >= 0xc2 && b <= 0xdf)
        len = 2, v = b & 0x1f, min = 0x80;
    else if (b >= 0xe0 && b <= 0xef)
        len = 3, v = b & 0x0f, min = 0x800;
    else if (b >= 0xf0 && b <= 0xf4)
        len = 4, v = b & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

static void put_u_escape(tm_json_out_t *j, uint32_t cp)
{
    char e[8];
    snprintf(e, sizeof e, "\\u%04x", (unsigned)cp);
    put(j, e, 6);
}

/* One ASCII byte, escaped when JSON or HTML would give it a meaning. */
static void put_ascii(tm_json_out_t *j, uint8_t c)
{
    switch (c) {
    case '"':
        put(j, "\\\"", 2);
        return;
    case '\\':
        put(j, "\\\\", 2);
        return;
    case '\n':
        put(j, "\\n", 2);
        return;
    case '\r':
        put(j, "\\r", 2);
        return;
    case '\t':
        put(j, "\\t", 2);
        return;
    case '<':
    case '>':
    case '&':
    case '\'':
        put_u_escape(j, c);
        return;
    }
    if (c < 0x20 || c == 0x7f)
        put_u_escape(j, c);
    else
        put_c(j, (char)c);
}

/* A code point past ASCII as \u escapes (a surrogate pair above the BMP),
 * so the output stays ASCII. */
static void put_code_point(tm_json_out_t *j, uint32_t cp)
{
    if (cp < 0x10000) {
        put_u_escape(j, cp);
        return;
    }
    cp -= 0x10000;
    put_u_escape(j, 0xd800 + (cp >> 10));
    put_u_escape(j, 0xdc00 + (cp & 0x3ff));
}

void tm_json_out_bytes(tm_json_out_t *j, const uint8_t *s, size_t len)
{
    value_start(j);
    put_c(j, '"');
    for (size_t i = 0; i < len && !j->failed;) {
        if (s[i] < 0x80) {
            put_ascii(j, s[i++]);
            continue;
        }
        uint32_t cp = 0;
        size_t n = utf8_seq(s + i, len - i, &cp);
        if (n == 0) { /* not UTF-8: one replacement per bad byte */
            put_code_point(j, 0xfffd);
            i++;
        } else {
            put_code_point(j, cp);
            i += n;
        }
    }
    put_c(j, '"');
}

void tm_json_out_str(tm_json_out_t *j, const char *s)
{
    s = s ? s : "";
    tm_json_out_bytes(j, (const uint8_t *)s, strlen(s));
}

void tm_json_out_key(tm_json_out_t *j, const char *key)
{
    if (j->after_key || j->depth == 0) {
        j->failed = 1;
        return;
    }
    tm_json_out_str(j, key);
    put_c(j, ':');
    j->after_key = 1;
}

void tm_json_out_int(tm_json_out_t *j, int64_t v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    value_start(j);
    put(j, b, (size_t)n);
}

void tm_json_out_uint(tm_json_out_t *j, uint64_t v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%" PRIu64, v);
    value_start(j);
    put(j, b, (size_t)n);
}

void tm_json_out_bool(tm_json_out_t *j, int v)
{
    value_start(j);
    if (v)
        put(j, "true", 4);
    else
        put(j, "false", 5);
}

void tm_json_out_kv_str(tm_json_out_t *j, const char *key, const char *s)
{
    tm_json_out_key(j, key);
    tm_json_out_str(j, s);
}

void tm_json_out_kv_int(tm_json_out_t *j, const char *key, int64_t v)
{
    tm_json_out_key(j, key);
    tm_json_out_int(j, v);
}

void tm_json_out_kv_bool(tm_json_out_t *j, const char *key, int v)
{
    tm_json_out_key(j, key);
    tm_json_out_bool(j, v);
}

char *tm_json_out_take(tm_json_out_t *j, size_t *len)
{
    if (j->failed || j->depth != 0 || j->after_key || !j->buf) {
        tm_json_out_free(j);
        return NULL;
    }
    char *out = j->buf;
    if (len)
        *len = j->len;
    tm_json_out_init(j);
    return out;
}
