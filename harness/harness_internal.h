/*
 * harness_internal.h: what the harness's own source files share and tests
 * do not use.
 */
#ifndef TRELLIS_HARNESS_INTERNAL_H
#define TRELLIS_HARNESS_INTERNAL_H

#include "harness.h"

/* Hand ptr (malloc'd) to h: harness_free frees it. Returns 0, or -1 (ptr
 * not taken) when h holds too many. */
int harness_own(harness_t *h, void *ptr);

#endif /* TRELLIS_HARNESS_INTERNAL_H */
