/*
 * tm_log: leveled key=value logging to stderr (see tm_log.h). One write(2)
 * per line so lines from different threads never interleave.
 */
#include "tm_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tm_timer.h"

static atomic_int current_level = TM_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

int tm_log_parse_level(const char *name, tm_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (tm_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void tm_log_set_level(tm_log_level_t level)
{
    atomic_store(&current_level, (int)level);
}

int tm_log_enabled(tm_log_level_t level)
{
    return (int)level >= atomic_load(&current_level);
}

void tm_log(tm_log_level_t level, const char *fmt, ...)
{
    if (!tm_log_enabled(level))
        return;
    char line[2048];
    int n = snprintf(line, sizeof(line), "ts=%lld level=%s ",
                     (long long)tm_wall_ms(), level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
