/*
 * tm_admin: trellisd's operator RPCs that concern the process rather than a
 * transaction (the transaction ones, RetryNow and ForceStop, live in
 * tm_engine.c next to the state they change). Today: SetLogLevel.
 *
 * Threads: handlers run on completion-queue threads and do not block.
 */
#ifndef TM_ADMIN_H
#define TM_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "tm_server.h"

/* trellis.v1.TM/SetLogLevel: an empty level only reads it; otherwise the
 * new level applies to every line logged after the reply. user: unused. */
void tm_admin_handle_set_log_level(tm_rpc_t *rpc, const uint8_t *req,
                                   size_t len, void *user);

#endif /* TM_ADMIN_H */
