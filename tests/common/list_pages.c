/*
 * list_pages: see list_pages.h. Owns nothing past a call.
 */
#include "list_pages.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

const char *tcheck_list_pages(tm_store_t *s, tm_store_filter_t f, char *out,
                              size_t len)
{
    char err[256], cursor[TM_GID_MAX + 1];
    size_t at = 0;
    out[0] = '\0';
    for (;;) {
        tm_trans_t **items;
        size_t n;
        if (tm_store_list(s, &f, &items, &n, err, sizeof(err)) != 0)
            fail_msg("list: %s", err);
        for (size_t i = 0; i < n; i++) {
            if (at < len)
                at += (size_t)snprintf(out + at, len - at, "%s%s",
                                       at ? " " : "", items[i]->gid);
            f.after_created_ms = items[i]->created_ms;
            snprintf(cursor, sizeof(cursor), "%s", items[i]->gid);
            f.after_gid = cursor;
            tm_trans_free(items[i]);
        }
        free(items);
        if (n < f.limit)
            return out;
    }
}
