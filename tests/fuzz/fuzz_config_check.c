/*
 * fuzz_config_check: invariants of an accepted configuration (see
 * fuzz_config_check.h).
 */
#include "fuzz_config_check.h"

#include <string.h>

#include "fuzz_input.h"

#define TERMINATED(field) (memchr((field), 0, sizeof(field)) != NULL)

static void check_strings(const tm_config_t *c)
{
    fz_require(TERMINATED(c->listen) && TERMINATED(c->data_dir) &&
                   TERMINATED(c->port_file) && TERMINATED(c->store) &&
                   TERMINATED(c->mysql_host) && TERMINATED(c->node_id) &&
                   TERMINATED(c->cluster_id) && TERMINATED(c->tls_cert) &&
                   TERMINATED(c->tls_key),
               "a string setting without its NUL");
    const tm_allowlist_t *a = &c->engine.limits.allow;
    fz_require(a->n >= 1 && a->n <= TM_ALLOW_MAX && TERMINATED(a->text),
               "allow-targets out of shape");
}

static void check_numbers(const tm_config_t *c)
{
    const tm_engine_config_t *e = &c->engine;
    fz_require(c->threads >= 0 && c->threads <= 256, "threads out of bounds");
    fz_require(e->limits.max_branches >= 1 && e->limits.max_branches <= 10000,
               "max-steps out of bounds");
    fz_require(e->retry_interval_ms >= 1 && e->request_timeout_ms >= 1 &&
                   e->max_backoff_ms >= 1 && e->prepared_timeout_ms >= 1,
               "a zero interval was accepted");
    fz_require(c->log_level >= TM_LOG_DEBUG && c->log_level <= TM_LOG_ERROR,
               "log level out of range");
}

static void check_store(const tm_config_t *c)
{
    tm_store_config_t sc;
    char err[512] = "";
    if (tm_config_store(c, &sc, err, sizeof(err)) != 0)
        fz_require(err[0] != '\0', "a store refusal without a message");
    else
        fz_require(sc.data_dir == c->data_dir && sc.node_id && sc.node_id[0],
                   "store settings out of shape");
}

void fz_config_check(const tm_config_t *c)
{
    check_strings(c);
    check_numbers(c);
    check_store(c);
}
