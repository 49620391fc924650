/*
 * tm_config: trellisd's command line. Every setting has a default, a flag
 * and a line of --help; a bad value fails at start with a message that
 * names the flag.
 */
#ifndef TM_CONFIG_H
#define TM_CONFIG_H

#include <stddef.h>

#include "tm_engine.h"
#include "tm_log.h"

typedef struct {
    char listen[256];
    char data_dir[1024];
    char port_file[1024];
    int threads;
    tm_log_level_t log_level;
    tm_engine_config_t engine;
} tm_config_t;

void tm_config_default(tm_config_t *c);

/* Parse argv. Returns 0 to run, 1 when --help was printed, -1 on a bad
 * flag (err names it). */
int tm_config_parse(tm_config_t *c, int argc, char **argv, char *err,
                    size_t errlen);

/* The --help text. */
void tm_config_usage(FILE *out);

#endif /* TM_CONFIG_H */
