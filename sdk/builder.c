/*
 * builder.c — what the saga builder (saga.c) and the message builder
 * (msg.c) share: owned copies of trellis_options_t, step arrays that grow,
 * and dependency lists that only point backwards.
 *
 * Plain data, no locking: a builder is used by one thread at a time.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void tr_options_clear(trellis_options_t *o)
{
    for (size_t i = 0; i < o->n_headers; i++) {
        free((char *)o->header_keys[i]);
        free((char *)o->header_values[i]);
    }
    free((void *)o->header_keys);
    free((void *)o->header_values);
    for (size_t i = 0; i < o->n_listeners; i++)
        free((char *)o->listeners[i]);
    free((void *)o->listeners);
    for (size_t i = 0; i < o->n_branch_listeners; i++)
        free((char *)o->branch_listeners[i]);
    free((void *)o->branch_listeners);
    free((char *)o->traceparent);
    free((char *)o->tracestate);
    memset(o, 0, sizeof *o);
}

/* Deep copy of o's header pairs into dst; -1 when out of memory (dst then
 * holds what was copied, for tr_options_clear). */
static int copy_headers(trellis_options_t *dst, const trellis_options_t *o)
{
    if (o->n_headers == 0 || o->header_keys == NULL || o->header_values == NULL)
        return 0;
    char **keys = calloc(o->n_headers, sizeof *keys);
    char **values = calloc(o->n_headers, sizeof *values);
    dst->header_keys = (const char *const *)keys;
    dst->header_values = (const char *const *)values;
    if (keys == NULL || values == NULL)
        return -1;
    for (size_t i = 0; i < o->n_headers; i++) {
        dst->n_headers = i + 1;
        keys[i] = tr_strdup0(o->header_keys[i]);
        values[i] = tr_strdup0(o->header_values[i]);
        if (keys[i] == NULL || values[i] == NULL)
            return -1;
    }
    return 0;
}

/* Deep copy of a list of n targets into *dst (*dst_n counting what was
 * copied), as copy_headers. */
static int copy_targets(const char *const **dst, size_t *dst_n,
                        const char *const *src, size_t n)
{
    if (n == 0 || src == NULL)
        return 0;
    char **l = calloc(n, sizeof *l);
    *dst = (const char *const *)l;
    if (l == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        *dst_n = i + 1;
        if ((l[i] = tr_strdup0(src[i])) == NULL)
            return -1;
    }
    return 0;
}

/* Deep copy of o's completion and branch listeners into dst. */
static int copy_listeners(trellis_options_t *dst, const trellis_options_t *o)
{
    if (copy_targets(&dst->listeners, &dst->n_listeners, o->listeners,
                     o->n_listeners) != 0)
        return -1;
    return copy_targets(&dst->branch_listeners, &dst->n_branch_listeners,
                        o->branch_listeners, o->n_branch_listeners);
}

int tr_options_copy(trellis_options_t *dst, const trellis_options_t *o)
{
    *dst = *o;
    dst->n_headers = 0;
    dst->header_keys = NULL;
    dst->header_values = NULL;
    dst->n_listeners = 0;
    dst->listeners = NULL;
    dst->n_branch_listeners = 0;
    dst->branch_listeners = NULL;
    dst->traceparent = o->traceparent ? strdup(o->traceparent) : NULL;
    dst->tracestate = o->tracestate ? strdup(o->tracestate) : NULL;
    if ((o->traceparent && !dst->traceparent) ||
        (o->tracestate && !dst->tracestate) || copy_headers(dst, o) != 0 ||
        copy_listeners(dst, o) != 0) {
        tr_options_clear(dst);
        return -1;
    }
    return 0;
}

void tr_owned_options_set(tr_owned_options_t *x, const trellis_options_t *o)
{
    tr_options_clear(&x->o);
    x->has = 0;
    x->oom = 0;
    if (o == NULL)
        return;
    if (tr_options_copy(&x->o, o) != 0) {
        x->oom = 1;
        return;
    }
    x->has = 1;
}

int tr_reserve_one(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t grown_cap = *cap != 0 ? *cap * 2 : 8;
    void *grown = realloc(*items, grown_cap * size);
    if (grown == NULL)
        return -1;
    *items = grown;
    *cap = grown_cap;
    return 0;
}

trellis_rc_t tr_deps_check(int step, int prerequisite, size_t n_steps,
                           const char *what, char *err, size_t errlen)
{
    if (step < 0 || (size_t)step >= n_steps)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "step %d does not exist (the %s has %zu steps)", step,
                       what, n_steps);
    if (prerequisite < 0 || prerequisite >= step)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "prerequisite %d of step %d must be an earlier step "
                       "(0..%d)",
                       prerequisite, step, step - 1);
    return TRELLIS_OK;
}

trellis_rc_t tr_deps_add(uint32_t **deps, size_t *n_deps, int step,
                         int prerequisite, char *err, size_t errlen)
{
    for (size_t i = 0; i < *n_deps; i++)
        if ((*deps)[i] == (uint32_t)prerequisite)
            return TRELLIS_OK; /* declared twice: once is enough */
    uint32_t *grown = realloc(*deps, (*n_deps + 1) * sizeof *grown);
    if (grown == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory adding a dependency to step %d", step);
    grown[(*n_deps)++] = (uint32_t)prerequisite;
    *deps = grown;
    return TRELLIS_OK;
}
