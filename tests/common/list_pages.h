/*
 * list_pages: a List of a real store read to its end, page after page
 * through the keyset cursor, for the store tests of both engines
 * (unit_store, integration_store_mysql*).
 */
#ifndef LIST_PAGES_H
#define LIST_PAGES_H

#include <stddef.h>

#include "tm_store.h"

/* The gids of every page of f (f.limit per page), joined by spaces into
 * out[len] (cut when it does not fit); fails the test on a List error.
 * Returns out. */
const char *tcheck_list_pages(tm_store_t *s, tm_store_filter_t f, char *out,
                              size_t len);

#endif /* LIST_PAGES_H */
