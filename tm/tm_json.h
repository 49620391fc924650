/*
 * tm_json: a small, strict JSON reader for the JSON that DTM's clients put
 * inside their gRPC requests (a saga's Steps, its CustomedData). It owns
 * nothing but the tree it builds; it is not a general JSON library: no
 * writer, numbers only as integers, a depth limit, and any text that is not
 * exactly one JSON value (RFC 8259) is refused with a message saying where.
 *
 * Strings are decoded (escapes, \u with surrogate pairs, to UTF-8); a
 * string that would hold a NUL byte (a "\u0000" escape) is refused, since
 * every string read here becomes a C string (a target, a key), and a
 * raw control character inside a string is refused as JSON demands.
 *
 * Pure: no global state; any thread.
 */
#ifndef TM_JSON_H
#define TM_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TM_JSON_NULL,
    TM_JSON_BOOL,
    TM_JSON_NUMBER,
    TM_JSON_STRING,
    TM_JSON_ARRAY,
    TM_JSON_OBJECT,
} tm_json_type_t;

/* Arrays and objects deeper than this are refused. */
#define TM_JSON_MAX_DEPTH 16

typedef struct tm_json tm_json_t;
struct tm_json {
    tm_json_type_t type;
    int boolean;      /* BOOL */
    int64_t integer;  /* NUMBER, when is_integer */
    int is_integer;   /* NUMBER: 1 for an integer that fits int64_t */
    char *str;        /* STRING: decoded, NUL-terminated, no NUL inside */
    char *key;        /* a member of an object: its name (decoded); else NULL */
    tm_json_t *items; /* ARRAY elements, OBJECT members, in text order */
    size_t n_items;
};

/* Parse text[0..len) (need not be NUL-terminated) as one JSON value with
 * optional whitespace around it. On success *out is the caller's
 * (tm_json_free) and 0 is returned; otherwise -1 with err saying what is
 * wrong and at which byte, and *out NULL. */
int tm_json_parse(const char *text, size_t len, tm_json_t **out, char *err,
                  size_t errlen);

/* Free a tree from tm_json_parse (NULL is fine). */
void tm_json_free(tm_json_t *j);

/* The first member of object obj named key, or NULL (also when obj is not
 * an object). Borrowed from obj. */
const tm_json_t *tm_json_get(const tm_json_t *obj, const char *key);

/* "null", "a boolean", "a number", "a string", "an array", "an object". */
const char *tm_json_type_name(tm_json_type_t t);

#endif /* TM_JSON_H */
