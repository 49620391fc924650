/*
 * trellis_fnv: Trellis' 64-bit FNV-1a hash, the one definition trellisd and
 * the test participant share.
 *
 * Some of its values are kept or compared across processes and versions —
 * the submit hash is stored with each transaction (tm_request.c), a MySQL
 * store's cluster id is derived from its address (tm_config.c) — so the
 * function must never change: one byte at a time, xor then multiply by the
 * FNV prime 1099511628211, from the start value 1469598103934665603.
 * That start value is NOT the published FNV offset basis
 * (14695981039346656037, one digit longer): every copy this replaced used
 * it, stored hashes depend on it, so it stays; the hash is as good for
 * our uses (tests/unit/test_request.c and test_config.c pin values).
 * Other users only pick a hash bucket (tm_caller.c, harness/testpart.c).
 *
 * Incremental: trellis_fnv_init, any number of trellis_fnv_add /
 * trellis_fnv_add_str, then trellis_fnv_final. Adding "ab" equals adding
 * "a" then "b". The state is the caller's value (no allocation, no global
 * state); any thread, one state per thread at a time.
 */
#ifndef TRELLIS_FNV_H
#define TRELLIS_FNV_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t h;
} trellis_fnv_t;

/* Start a hash: the FNV-1a offset basis. */
void trellis_fnv_init(trellis_fnv_t *f);

/* Add n bytes at p (p may be NULL when n is 0). */
void trellis_fnv_add(trellis_fnv_t *f, const void *p, size_t n);

/* Add the bytes of s, without its terminating NUL. */
void trellis_fnv_add_str(trellis_fnv_t *f, const char *s);

/* The hash of everything added so far (f stays usable: adding more
 * continues from here). */
uint64_t trellis_fnv_final(const trellis_fnv_t *f);

#endif
