/*
 * tm_json: a strict recursive-descent JSON reader (see tm_json.h). The
 * parser owns the tree it builds until it hands it over; on any error the
 * partial tree is freed on the one way out of tm_json_parse.
 */
#include "tm_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t len;
    size_t pos;
    int depth;
    char *err;
    size_t errlen;
} parser_t;

static int fail(parser_t *p, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s at byte %zu", what, p->pos);
    return -1;
}

static void skip_space(parser_t *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int peek(const parser_t *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static int expect_word(parser_t *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "unexpected character");
    p->pos += n;
    return 0;
}

/* ---- strings ------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len;
    size_t cap;
} sbuf_t;

static int sbuf_put(sbuf_t *b, const char *bytes, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb)
            return -1;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, bytes, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

static int put_utf8(sbuf_t *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return sbuf_put(b, out, n);
}

static int read_hex4(parser_t *p, uint32_t *out)
{
    uint32_t v = 0;
    if (p->len - p->pos < 4)
        return fail(p, "\\u escape cut short");
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return fail(p, "\\u escape with a non-hex digit");
    }
    p->pos += 4;
    *out = v;
    return 0;
}

/* After "\u": one code point, a surrogate pair joined. */
static int read_code_point(parser_t *p, uint32_t *cp)
{
    if (read_hex4(p, cp) != 0)
        return -1;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF)
        return fail(p, "\\u escape starts with a low surrogate");
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        uint32_t lo;
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' ||
            p->s[p->pos + 1] != 'u')
            return fail(p, "high surrogate without its low half");
        p->pos += 2;
        if (read_hex4(p, &lo) != 0)
            return -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail(p, "high surrogate without its low half");
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (*cp == 0)
        return fail(p, "string holds a NUL character (\\u0000)");
    return 0;
}

static int read_escape(parser_t *p, sbuf_t *b)
{
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    int c = peek(p);
    if (c < 0)
        return fail(p, "string not closed");
    p->pos++;
    const char *hit = c ? strchr(from, c) : NULL;
    if (hit)
        return sbuf_put(b, &to[hit - from], 1) != 0 ? fail(p, "out of memory")
                                                    : 0;
    if (c != 'u')
        return fail(p, "unknown escape \\%c", c);
    uint32_t cp;
    if (read_code_point(p, &cp) != 0)
        return -1;
    return put_utf8(b, cp) != 0 ? fail(p, "out of memory") : 0;
}

/* At the opening quote; *out the decoded string (the caller's). */
static int read_string(parser_t *p, char **out)
{
    sbuf_t b = {0};
    p->pos++; /* the quote */
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            free(b.buf);
            return fail(p, "string not closed");
        }
        if (c == '"')
            break;
        int rc;
        if (c == '\\') {
            p->pos++;
            rc = read_escape(p, &b);
        } else if (c < 0x20) {
            rc = fail(p, "raw control character 0x%02x in a string", c);
        } else {
            rc = sbuf_put(&b, &p->s[p->pos], 1) != 0 ? fail(p, "out of memory")
                                                     : 0;
            p->pos++;
        }
        if (rc != 0) {
            free(b.buf);
            return -1;
        }
    }
    p->pos++; /* the closing quote */
    if (!b.buf && !(b.buf = calloc(1, 1)))
        return fail(p, "out of memory");
    *out = b.buf;
    return 0;
}

/* ---- numbers ------------------------------------------------------------- */

static size_t digits(parser_t *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++;
    return p->pos - start;
}

static int read_number(parser_t *p, tm_json_t *j)
{
    size_t start = p->pos;
    int integer = 1;
    if (peek(p) == '-')
        p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (digits(p) == 0) {
        return fail(p, "unexpected character");
    }
    if (peek(p) == '.') {
        p->pos++;
        integer = 0;
        if (digits(p) == 0)
            return fail(p, "number with no digit after '.'");
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        integer = 0;
        if (peek(p) == '+' || peek(p) == '-')
            p->pos++;
        if (digits(p) == 0)
            return fail(p, "number with no digit in its exponent");
    }
    j->type = TM_JSON_NUMBER;
    if (integer) {
        char buf[32];
        size_t n = p->pos - start;
        if (n < sizeof(buf)) {
            memcpy(buf, p->s + start, n);
            buf[n] = '\0';
            errno = 0;
            long long v = strtoll(buf, NULL, 10);
            j->is_integer = errno == 0;
            j->integer = v;
        }
    }
    return 0;
}

/* ---- values -------------------------------------------------------------- */

static int read_value(parser_t *p, tm_json_t *j);

static tm_json_t *add_item(tm_json_t *j, size_t *cap)
{
    if (j->n_items == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        tm_json_t *ni = realloc(j->items, nc * sizeof(*ni));
        if (!ni)
            return NULL;
        j->items = ni;
        *cap = nc;
    }
    tm_json_t *it = &j->items[j->n_items++];
    memset(it, 0, sizeof(*it));
    return it;
}

/* At '[' or '{': the elements or members up to the closing bracket. */
static int read_container(parser_t *p, tm_json_t *j, int object)
{
    char close = object ? '}' : ']';
    size_t cap = 0;
    j->type = object ? TM_JSON_OBJECT : TM_JSON_ARRAY;
    if (++p->depth > TM_JSON_MAX_DEPTH)
        return fail(p, "nested deeper than %d levels", TM_JSON_MAX_DEPTH);
    p->pos++;
    skip_space(p);
    if (peek(p) == close) {
        p->pos++;
        p->depth--;
        return 0;
    }
    for (;;) {
        tm_json_t *it = add_item(j, &cap);
        if (!it)
            return fail(p, "out of memory");
        skip_space(p);
        if (object) {
            if (peek(p) != '"')
                return fail(p, "expected a member name (a string)");
            if (read_string(p, &it->key) != 0)
                return -1;
            skip_space(p);
            if (peek(p) != ':')
                return fail(p, "expected ':' after a member name");
            p->pos++;
        }
        if (read_value(p, it) != 0)
            return -1;
        skip_space(p);
        int c = peek(p);
        p->pos++;
        if (c == close)
            break;
        if (c != ',') {
            p->pos--;
            return fail(p, "expected ',' or '%c'", close);
        }
    }
    p->depth--;
    return 0;
}

static int read_value(parser_t *p, tm_json_t *j)
{
    skip_space(p);
    switch (peek(p)) {
    case '{':
        return read_container(p, j, 1);
    case '[':
        return read_container(p, j, 0);
    case '"':
        j->type = TM_JSON_STRING;
        return read_string(p, &j->str);
    case 't':
        j->type = TM_JSON_BOOL;
        j->boolean = 1;
        return expect_word(p, "true");
    case 'f':
        j->type = TM_JSON_BOOL;
        return expect_word(p, "false");
    case 'n':
        j->type = TM_JSON_NULL;
        return expect_word(p, "null");
    case -1:
        return fail(p, "unexpected end of text");
    default:
        return read_number(p, j);
    }
}

static void free_contents(tm_json_t *j)
{
    for (size_t i = 0; i < j->n_items; i++)
        free_contents(&j->items[i]);
    free(j->items);
    free(j->str);
    free(j->key);
}

void tm_json_free(tm_json_t *j)
{
    if (!j)
        return;
    free_contents(j);
    free(j);
}

int tm_json_parse(const char *text, size_t len, tm_json_t **out, char *err,
                  size_t errlen)
{
    parser_t p = {text, len, 0, 0, err, errlen};
    tm_json_t *j = calloc(1, sizeof(*j));
    *out = NULL;
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = read_value(&p, j);
    if (rc == 0) {
        skip_space(&p);
        if (p.pos != len)
            rc = fail(&p, "text goes on after the value");
    }
    if (rc != 0) {
        tm_json_free(j);
        return -1;
    }
    *out = j;
    return 0;
}

const tm_json_t *tm_json_get(const tm_json_t *obj, const char *key)
{
    if (!obj || obj->type != TM_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n_items; i++)
        if (strcmp(obj->items[i].key, key) == 0)
            return &obj->items[i];
    return NULL;
}

const char *tm_json_type_name(tm_json_type_t t)
{
    static const char *names[] = {"null",     "a boolean", "a number",
                                  "a string", "an array",  "an object"};
    return (size_t)t < sizeof(names) / sizeof(*names) ? names[t] : "unknown";
}
