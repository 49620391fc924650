/*
 * tm_console_assets: the console's static files (tm/console/: the page,
 * its script and its style sheet), built into trellisd as byte arrays by
 * tm/console/embed.cmake, so the console needs no files at run time and
 * no JavaScript build: what is in tm/console/ is what the browser gets.
 *
 * Read-only data; any thread.
 */
#ifndef TM_CONSOLE_ASSETS_H
#define TM_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path; /* as requested, e.g. "/console.js" */
    const char *type; /* Content-Type */
    const unsigned char *bytes;
    size_t len;
} tm_console_asset_t;

/* The table (in the generated tm_console_assets.c). */
extern const tm_console_asset_t tm_console_assets[];
extern const size_t tm_console_n_assets;

#endif /* TM_CONSOLE_ASSETS_H */
