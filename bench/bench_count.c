/*
 * bench_count: the counting of bench_ap and bench_async (bench_count.h).
 */
#include "bench_count.h"

#include <stdlib.h>
#include <string.h>

void bench_count_add(bench_count_t *c, int ok, int64_t start, int64_t end,
                     int64_t win_start, int64_t win_end)
{
    c->total_ok += ok;
    c->total_failed += !ok;
    if (end < win_start || end >= win_end)
        return;
    if (!ok) {
        c->failed++;
        return;
    }
    c->ok++;
    if (c->n_lat == c->cap_lat) {
        size_t cap = c->cap_lat ? c->cap_lat * 2 : 4096;
        uint32_t *p = realloc(c->lat_us, cap * sizeof(*p));
        if (!p)
            return;
        c->lat_us = p;
        c->cap_lat = cap;
    }
    c->lat_us[c->n_lat++] = (uint32_t)((end - start) / 1000);
}

void bench_count_clear(bench_count_t *c)
{
    free(c->lat_us);
    memset(c, 0, sizeof(*c));
}

uint64_t bench_rand_next(uint64_t *state)
{
    uint64_t x = (*state += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
