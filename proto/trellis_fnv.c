/*
 * trellis_fnv.c: 64-bit FNV-1a (see trellis_fnv.h, on the start value).
 * Changing anything here changes stored submit hashes and derived cluster
 * ids.
 */
#include "trellis_fnv.h"

/* Not the published basis; see trellis_fnv.h. */
#define FNV_START 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

void trellis_fnv_init(trellis_fnv_t *f)
{
    f->h = FNV_START;
}

void trellis_fnv_add(trellis_fnv_t *f, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = f->h;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * FNV_PRIME;
    f->h = h;
}

void trellis_fnv_add_str(trellis_fnv_t *f, const char *s)
{
    uint64_t h = f->h;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * FNV_PRIME;
    f->h = h;
}

uint64_t trellis_fnv_final(const trellis_fnv_t *f)
{
    return f->h;
}
