/*
 * tm_engine_config: the engine's settings, apart from the engine itself, so
 * that the command line (tm_config) can fill them without depending on the
 * engine, and the engine can be built and tested without the command line.
 */
#ifndef TM_ENGINE_CONFIG_H
#define TM_ENGINE_CONFIG_H

#include <stdint.h>

#include "tm_validate.h"

/* --max-action-log: the default, and the most it may be. The bound is the
 * participant's: the log travels as a binary metadata value (base64 on
 * the wire, 4/3 its size), and gRPC servers refuse requests whose headers
 * pass 8 KiB by default, 16 KiB at most; 4 KiB leaves room for the rest
 * of the metadata. A larger setting needs participants whose servers
 * accept larger headers (libtrellis's accept 64 KiB). */
#define TM_ACTION_LOG_DEFAULT 4096u
#define TM_ACTION_LOG_MAX 32768u

typedef struct {
    tm_limits_t limits;
    uint32_t retry_interval_ms;   /* default ONGOING interval, backoff base */
    uint32_t request_timeout_ms;  /* default deadline of a branch call */
    uint32_t resume_timeout_ms;   /* deadline of a call of a workflow
                                     service (a resume, a local undo, the
                                     hooks): it runs the function again */
    uint32_t max_backoff_ms;      /* cap of exponential backoff */
    uint32_t prepared_timeout_ms; /* default timeout of a begun transaction */
    uint32_t retry_limit;         /* default; 0: unlimited */
    uint32_t max_inflight;   /* unfinished transactions in memory; a new one
                                beyond it is refused RESOURCE_EXHAUSTED */
    uint32_t max_waiters;    /* requests waiting for a result (wait_result),
                                over all transactions; more are refused
                                RESOURCE_EXHAUSTED (64 per transaction) */
    uint32_t max_action_log; /* the compensation log: most bytes of a
                                forward op's reply kept with the op and
                                handed to its branch's rollback-side op
                                (longer ones are cut, the full size kept);
                                0: keep none */
} tm_engine_config_t;

/* Every field at its default (the values --help prints). */
void tm_engine_config_default(tm_engine_config_t *c);

#endif /* TM_ENGINE_CONFIG_H */
