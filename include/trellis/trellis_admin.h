/*
 * trellis_admin.h — libtrellis for operators: the trellisd RPCs that act
 * on a running TM rather than run a transaction. trellisctl is built on
 * these; any tool may use them.
 *
 *   trellis_retry_now     call now every op of a transaction that waits
 *                         for a retry, with its backoff reset;
 *   trellis_force_stop    end a transaction that can never finish: it
 *                         becomes FAILED with the reason "force-stopped by
 *                         operator: <reason>", committed before the reply;
 *                         trellisd calls none of its ops again and ignores
 *                         late results; nothing is rolled back;
 *   trellis_set_log_level read or change trellisd's log level.
 *
 * Errors as in trellis.h: a trellis_rc_t (the gRPC status code, 0 = OK)
 * and a message in err. NOT_FOUND for an unknown gid, FAILED_PRECONDITION
 * for a transaction that is already finished (force-stop of one that was
 * force-stopped before answers OK again). Thread safe as the client is.
 */
#ifndef TRELLIS_ADMIN_H
#define TRELLIS_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "trellis/trellis.h"

#ifdef __cplusplus
extern "C" {
#endif

/* *ops_called gets how many ops were waiting and were called now; *status
 * the transaction's status. Either out pointer may be NULL. */
trellis_rc_t trellis_retry_now(trellis_client_t *c, const char *gid,
                               uint32_t *ops_called,
                               trellis_trans_status_t *status, char *err,
                               size_t errlen);

/* reason (required, at most 1024 bytes) says why. *status (may be NULL)
 * gets TRELLIS_TRANS_FAILED; stored_reason[reasonlen] (may be NULL) the
 * reason as stored. */
trellis_rc_t trellis_force_stop(trellis_client_t *c, const char *gid,
                                const char *reason,
                                trellis_trans_status_t *status,
                                char *stored_reason, size_t reasonlen,
                                char *err, size_t errlen);

/* level: "debug", "info", "warn", "error", or NULL/"" to only read it.
 * now[nowlen] and before[beforelen] (either may be NULL) get the level in
 * force after the call and the one before it. */
trellis_rc_t trellis_set_log_level(trellis_client_t *c, const char *level,
                                   char *now, size_t nowlen, char *before,
                                   size_t beforelen, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_ADMIN_H */
