/*
 * tm_log: one line per event on stderr, with a level and a format that can
 * be changed at run time (trellisctl log-level, the SetLogLevel RPC).
 *
 * Callers write the event as key=value pairs: `event=<name>` first, then
 * `gid=` and `branch=` whenever the event concerns a transaction or a
 * branch, then the rest. A value with spaces or quotes is written
 * `key="%s"` with the text passed through tm_log_quote. The line on stderr
 * is either that text after `ts=<ms> level=<lvl>` (the default, "kv"), or
 * the same pairs as one JSON object ("json"): quoted values and the values
 * of gid and branch become JSON strings, bare values that are JSON numbers
 * become numbers.
 *
 * Threads: every function may be called from any thread; a line is written
 * with one write(2), so lines from different threads never interleave.
 */
#ifndef TM_LOG_H
#define TM_LOG_H

#include <stddef.h>

typedef enum {
    TM_LOG_DEBUG = 0,
    TM_LOG_INFO = 1,
    TM_LOG_WARN = 2,
    TM_LOG_ERROR = 3,
} tm_log_level_t;

typedef enum {
    TM_LOG_KV = 0,
    TM_LOG_JSON = 1,
} tm_log_format_t;

/* Parse "debug", "info", "warn", "error". Returns 0, or -1 if unknown. */
int tm_log_parse_level(const char *name, tm_log_level_t *out);
/* The level's name (static). */
const char *tm_log_level_name(tm_log_level_t level);
void tm_log_set_level(tm_log_level_t level);
tm_log_level_t tm_log_get_level(void);
int tm_log_enabled(tm_log_level_t level);

/* Parse "kv" or "json". Returns 0, or -1 if unknown. */
int tm_log_parse_format(const char *name, tm_log_format_t *out);
void tm_log_set_format(tm_log_format_t format);

/* s escaped for a quoted value (`"` and `\` escaped, newlines as \n,
 * other control characters as spaces), truncated to fit buf[len]. Returns
 * buf; NULL s gives "". */
const char *tm_log_quote(const char *s, char *buf, size_t len);

/* Write one line: "ts=<ms> level=<lvl> <formatted message>", or its JSON
 * form. Lines longer than 2 KiB are cut. */
void tm_log(tm_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* TM_LOG_H */
