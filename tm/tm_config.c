/*
 * tm_config: parsing of trellisd's flags (see tm_config.h). A table of
 * flags drives both parsing and --help, so the two never disagree.
 */
#include <stdio.h>

#include "tm_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef enum { F_STRING, F_U32, F_INT, F_LEVEL } flag_kind_t;

typedef struct {
    const char *name;
    flag_kind_t kind;
    size_t offset; /* into tm_config_t */
    size_t size;   /* for strings */
    unsigned long min, max;
    const char *help;
} flag_t;

#define CFG_OFF(field) offsetof(tm_config_t, field)

static const flag_t flags[] = {
    {"--listen", F_STRING, CFG_OFF(listen), 256, 0, 0,
     "address to serve the TM API on (default 127.0.0.1:7400; port 0 picks "
     "a free one)"},
    {"--data-dir", F_STRING, CFG_OFF(data_dir), 1024, 0, 0,
     "directory of the embedded store, created if missing (default "
     "./trellis-data)"},
    {"--port-file", F_STRING, CFG_OFF(port_file), 1024, 0, 0,
     "write the bound port here once serving (for scripts and tests)"},
    {"--threads", F_INT, CFG_OFF(threads), 0, 0, 256,
     "completion-queue threads (default: one per core)"},
    {"--retry-interval-ms", F_U32, CFG_OFF(engine.retry_interval_ms), 0, 1,
     3600000, "default retry interval after ONGOING; backoff base (1000)"},
    {"--request-timeout-ms", F_U32, CFG_OFF(engine.request_timeout_ms), 0, 1,
     3600000, "default deadline of each branch call (3000)"},
    {"--max-backoff-ms", F_U32, CFG_OFF(engine.max_backoff_ms), 0, 1, 86400000,
     "cap of the exponential backoff after unknown results (60000)"},
    {"--timeout-ms", F_U32, CFG_OFF(engine.prepared_timeout_ms), 0, 1, 86400000,
     "default timeout of a begun (prepared) transaction before it is rolled "
     "back (60000)"},
    {"--retry-limit", F_U32, CFG_OFF(engine.retry_limit), 0, 0, 1000000,
     "default unknown results of a forward op before rollback (0: no limit)"},
    {"--max-steps", F_U32, CFG_OFF(engine.limits.max_branches), 0, 1, 10000,
     "most branches (steps and registered) per transaction (100)"},
    {"--max-payload", F_U32, CFG_OFF(engine.limits.max_payload), 0, 0,
     16u << 20, "most bytes of one branch payload (65536)"},
    {"--log-level", F_LEVEL, CFG_OFF(log_level), 0, 0, 0,
     "debug, info, warn or error (info)"},
};

#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

void tm_config_default(tm_config_t *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "127.0.0.1:7400");
    snprintf(c->data_dir, sizeof(c->data_dir), "./trellis-data");
    c->log_level = TM_LOG_INFO;
    tm_engine_config_default(&c->engine);
}

void tm_config_usage(FILE *out)
{
    fprintf(out, "usage: trellisd [flags]\n\n"
                 "Trellis transaction manager: runs Saga, TCC and XA global "
                 "transactions over gRPC\nwith durable state in an embedded "
                 "store.\n\nflags:\n");
    for (size_t i = 0; i < N_FLAGS; i++)
        fprintf(out, "  %-22s %s\n", flags[i].name, flags[i].help);
    fprintf(out, "  %-22s %s\n", "--help", "print this and exit");
}

static int set_number(const flag_t *f, void *field, const char *v, char *err,
                      size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || n < f->min || n > f->max) {
        snprintf(err, errlen,
                 "%s: \"%s\" is not a whole number from %lu to %lu", f->name, v,
                 f->min, f->max);
        return -1;
    }
    if (f->kind == F_U32)
        *(uint32_t *)field = (uint32_t)n;
    else
        *(int *)field = (int)n;
    return 0;
}

static int set_flag(tm_config_t *c, const flag_t *f, const char *v, char *err,
                    size_t errlen)
{
    void *field = (char *)c + f->offset;
    switch (f->kind) {
    case F_STRING:
        if (strlen(v) >= f->size || !*v) {
            snprintf(err, errlen, "%s: value is empty or too long", f->name);
            return -1;
        }
        snprintf(field, f->size, "%s", v);
        return 0;
    case F_U32:
    case F_INT:
        return set_number(f, field, v, err, errlen);
    case F_LEVEL:
        if (tm_log_parse_level(v, field) != 0) {
            snprintf(err, errlen,
                     "%s: \"%s\" is not debug, info, warn or error", f->name,
                     v);
            return -1;
        }
        return 0;
    }
    return -1;
}

int tm_config_parse(tm_config_t *c, int argc, char **argv, char *err,
                    size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            tm_config_usage(stdout);
            return 1;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const flag_t *f = NULL;
        for (size_t k = 0; k < N_FLAGS && !f; k++)
            if (strlen(flags[k].name) == name_len &&
                strncmp(flags[k].name, arg, name_len) == 0)
                f = &flags[k];
        if (!f) {
            snprintf(err, errlen, "unknown flag %s (see --help)", arg);
            return -1;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            snprintf(err, errlen, "%s needs a value", f->name);
            return -1;
        }
        if (set_flag(c, f, v, err, errlen) != 0)
            return -1;
    }
    return 0;
}
