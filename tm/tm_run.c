/*
 * tm_run: the runtime marks beside a transaction's model (see tm_run.h).
 */
#include "tm_run.h"

#include <stdlib.h>
#include <string.h>

int tm_run_fit(tm_run_t *r, size_t n)
{
    if (n <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 4;
    while (cap < n)
        cap *= 2;
    tm_branch_run_t *b = realloc(r->branches, cap * sizeof(*b));
    if (!b)
        return -1;
    memset(b + r->cap, 0, (cap - r->cap) * sizeof(*b));
    r->branches = b;
    r->cap = cap;
    return 0;
}

void tm_run_mark_stored(tm_run_t *r, size_t n)
{
    for (size_t i = 0; i < n && i < r->cap; i++)
        r->branches[i].stored = 1;
}

void tm_run_clear(tm_run_t *r)
{
    free(r->branches);
    r->branches = NULL;
    r->cap = 0;
}
