/*
 * tm_log: one line per event on stderr, key=value, with a level that can
 * be changed at run time. Callers put gid= and branch= in the message.
 */
#ifndef TM_LOG_H
#define TM_LOG_H

typedef enum {
    TM_LOG_DEBUG = 0,
    TM_LOG_INFO = 1,
    TM_LOG_WARN = 2,
    TM_LOG_ERROR = 3,
} tm_log_level_t;

/* Parse "debug", "info", "warn", "error". Returns 0, or -1 if unknown. */
int tm_log_parse_level(const char *name, tm_log_level_t *out);
void tm_log_set_level(tm_log_level_t level);
int tm_log_enabled(tm_log_level_t level);

/* Writes "ts=<ms> level=<lvl> <formatted message>\n" atomically. */
void tm_log(tm_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* TM_LOG_H */
