/*
 * tm_json_out: a small JSON writer for the web console's API (tm_http_api.c).
 * It owns one growing buffer and the commas between values, and it makes
 * every string safe whatever it holds: participant data (payloads, error
 * messages, results) may carry quotes, control characters or bytes that
 * are not UTF-8.
 *
 * Strings: '"' and '\' are escaped, control characters and DEL become
 * \n, \r, \t or \u00XX, each byte that is not part of a well-formed UTF-8
 * sequence (stray continuation bytes, overlong forms, surrogates, code
 * points past U+10FFFF, cut sequences) becomes U+FFFD, and '<', '>', '&',
 * '\'' and U+2028/U+2029 are written as \u escapes as well, so the text
 * stays inert even if a client ever placed it inside HTML or a script.
 * The output is therefore pure ASCII.
 *
 * Memory: a failed allocation is remembered and reported once by
 * tm_json_out_take; the writer never aborts. Nesting is bounded by
 * TM_JSON_OUT_MAX_DEPTH (deeper begins are an error, also reported there).
 *
 * Threads: one writer per thread; no shared state.
 */
#ifndef TM_JSON_OUT_H
#define TM_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

#define TM_JSON_OUT_MAX_DEPTH 16

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;    /* out of memory, or nesting misuse */
    int depth;     /* open objects and arrays */
    int after_key; /* a key was written: the next value takes no comma */
    unsigned char
        has_item[TM_JSON_OUT_MAX_DEPTH + 1]; /* per level: need comma */
} tm_json_out_t;

/* An empty writer (nothing allocated yet). */
void tm_json_out_init(tm_json_out_t *j);
/* Free what the writer holds (after tm_json_out_take: nothing). */
void tm_json_out_free(tm_json_out_t *j);

void tm_json_out_obj_begin(tm_json_out_t *j);
void tm_json_out_obj_end(tm_json_out_t *j);
void tm_json_out_arr_begin(tm_json_out_t *j);
void tm_json_out_arr_end(tm_json_out_t *j);
/* An object key; the next call writes its value. */
void tm_json_out_key(tm_json_out_t *j, const char *key);

/* A NUL-terminated string (NULL writes ""). */
void tm_json_out_str(tm_json_out_t *j, const char *s);
/* len bytes of any content, as a string (see above for what is escaped or
 * replaced). */
void tm_json_out_bytes(tm_json_out_t *j, const uint8_t *s, size_t len);
void tm_json_out_int(tm_json_out_t *j, int64_t v);
void tm_json_out_uint(tm_json_out_t *j, uint64_t v);
void tm_json_out_bool(tm_json_out_t *j, int v);

/* Shorthands: key then value. */
void tm_json_out_kv_str(tm_json_out_t *j, const char *key, const char *s);
void tm_json_out_kv_int(tm_json_out_t *j, const char *key, int64_t v);
void tm_json_out_kv_bool(tm_json_out_t *j, const char *key, int v);

/* The finished text (NUL-terminated; *len without the NUL), now the
 * caller's (free); the writer is empty again. Returns NULL when
 * something failed (out of memory, unbalanced or too deep nesting); the
 * writer's memory is then freed. */
char *tm_json_out_take(tm_json_out_t *j, size_t *len);

#endif /* TM_JSON_OUT_H */
