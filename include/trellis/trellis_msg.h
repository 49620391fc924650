/*
 * trellis/trellis_msg.h — libtrellis, 2-phase transactional messages (the
 * outbox without a broker) and the topics they may be sent to.
 *
 * A message is a list of steps, each delivered to a target (or to every
 * target subscribed to a topic) until it succeeds; trellisd never rolls a
 * step back. The initiator ties a message to a local database transaction
 * of its own:
 *
 *   trellis_msg_prepare   trellisd stores the message PREPARED, with the
 *                         back-check target (query_prepared);
 *   local transaction     the business SQL plus the message's barrier row
 *                         (trellis/barrier_msg.h), committed or not;
 *   trellis_msg_submit    it committed: deliver the message; or
 *   trellis_msg_abort     it rolled back: drop the message.
 *
 * If the initiator dies between prepare and submit, trellisd asks the
 * back-check once the message's timeout (options.timeout_to_fail_ms, 0:
 * trellisd's default) has passed: OK means committed (delivered), ABORTED
 * not committed (dropped), anything else is asked again later. The barrier
 * (trellis_barrier_query_prepared) answers it so that a message is never
 * both dropped and committed. trellis_msg_do_and_submit
 * (trellis/barrier_msg.h) runs the whole sequence on a MariaDB connection.
 * trellis_msg_send skips the local transaction: the message is decided at
 * once.
 *
 * Topics: trellis_subscribe makes every later message step that names the
 * topic go to the target as well (trellisd expands topics when it stores a
 * message; subscribing later changes no stored message).
 *
 * Errors, ownership and threads as in trellis.h: a trellis_rc_t (0 = OK,
 * else the gRPC status code) with a message in err[errlen]; a builder is
 * used by one thread at a time; calls on a client may run from many
 * threads. Strings are checked whole before anything is sent:
 *   gid     1..TRELLIS_MSG_GID_MAX of [A-Za-z0-9_.:-] (trellisd's rule);
 *   target  host:port/package.Service/Method (trellisd's parser);
 *   topic   1..TRELLIS_TOPIC_MAX of [A-Za-z0-9_.:-] (trellisd's rule);
 *   remark  at most TRELLIS_REMARK_MAX bytes;
 *   reason  at most TRELLIS_MSG_TEXT_MAX bytes.
 * A bad string is INVALID_ARGUMENT (or -1 from an add_* call) naming it.
 */
#ifndef TRELLIS_MSG_H
#define TRELLIS_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "trellis/trellis.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRELLIS_MSG_GID_MAX 64
#define TRELLIS_TOPIC_MAX 64
#define TRELLIS_MSG_TEXT_MAX 1024
#define TRELLIS_REMARK_MAX 256

/* ---- the message builder ------------------------------------------------ */

typedef struct trellis_msg trellis_msg_t;

/* A message for gid (copied). *out is the caller's: trellis_msg_free. */
trellis_rc_t trellis_msg_new(const char *gid, trellis_msg_t **out, char *err,
                             size_t errlen);
void trellis_msg_free(trellis_msg_t *m);

/* The message's gid, borrowed from m (valid until trellis_msg_free). */
const char *trellis_msg_gid(const trellis_msg_t *m);

/* Append a step delivering payload (copied; may be NULL when len is 0) to
 * target, or to every target subscribed to topic. Returns the step's
 * index (>= 0), or -1 with err filled. */
int trellis_msg_add_step(trellis_msg_t *m, const char *target,
                         const void *payload, size_t payload_len, char *err,
                         size_t errlen);
int trellis_msg_add_topic_step(trellis_msg_t *m, const char *topic,
                               const void *payload, size_t payload_len,
                               char *err, size_t errlen);

/* Step `step` is delivered only after step `prerequisite` (an earlier
 * index) was. Declaring any dependency makes the message concurrent. */
trellis_rc_t trellis_msg_add_dependency(trellis_msg_t *m, int step,
                                        int prerequisite, char *err,
                                        size_t errlen);
/* Deliver steps with no declared prerequisites at once (default: each
 * step after the one before it). */
void trellis_msg_set_concurrent(trellis_msg_t *m, int concurrent);
/* Options are copied. timeout_to_fail_ms is how long a prepared message
 * waits for submit or abort before trellisd back-checks it. */
void trellis_msg_set_options(trellis_msg_t *m, const trellis_options_t *o);

/* ---- the two phases ----------------------------------------------------- */

/* PrepareMessage: trellisd stores m PREPARED with its back-check target
 * query_prepared ("host:port/package.Service/Method", a unary method that
 * gets an empty request and the metadata dtm-gid, dtm-trans_type "msg",
 * dtm-branch_id "00", dtm-op "query_prepared"). Repeating the same
 * request is OK. m needs at least one step. */
trellis_rc_t trellis_msg_prepare(trellis_client_t *c, const trellis_msg_t *m,
                                 const char *query_prepared, char *err,
                                 size_t errlen);

/* Submit the prepared message (only its gid and wait): its local
 * transaction committed. With wait, *status is the final outcome once
 * every step was delivered, else SUBMITTED; reason[reasonlen] says why it
 * failed. status and reason may be NULL. trellis_submit(c, gid, ...) does
 * the same when only the gid is at hand. */
trellis_rc_t trellis_msg_submit(trellis_client_t *c, const trellis_msg_t *m,
                                int wait, trellis_trans_status_t *status,
                                char *reason, size_t reasonlen, char *err,
                                size_t errlen);

/* Abort the prepared message (its local transaction rolled back): it is
 * dropped, nothing is delivered. reason may be NULL. trellis_abort with
 * the gid does the same. */
trellis_rc_t trellis_msg_abort(trellis_client_t *c, const trellis_msg_t *m,
                               const char *reason, char *err, size_t errlen);

/* PrepareMessage with submit: a message with no local transaction,
 * decided at once (no back-check target). wait, status, reason as in
 * trellis_msg_submit. */
trellis_rc_t trellis_msg_send(trellis_client_t *c, const trellis_msg_t *m,
                              int wait, trellis_trans_status_t *status,
                              char *reason, size_t reasonlen, char *err,
                              size_t errlen);

/* ---- topics ------------------------------------------------------------- */

/* Subscribe target to topic (stored durably by trellisd; the target must
 * pass its allowlist). remark (may be NULL) is free text for operators.
 * *created (may be NULL) is 1 when the subscription is new, 0 when it
 * existed (its remark unchanged). */
trellis_rc_t trellis_subscribe(trellis_client_t *c, const char *topic,
                               const char *target, const char *remark,
                               int *created, char *err, size_t errlen);

/* Remove the subscription; unknown pairs are trellisd's answer to give
 * (it may say OK or NOT_FOUND). */
trellis_rc_t trellis_unsubscribe(trellis_client_t *c, const char *topic,
                                 const char *target, char *err, size_t errlen);

typedef struct {
    char *topic;
    char *target;
    char *remark; /* "" when none */
    int64_t created_ms;
} trellis_subscription_t;

typedef struct {
    size_t n;
    trellis_subscription_t *items; /* by topic, then age */
} trellis_subscription_list_t;

/* The subscriptions of topic (NULL or "": every topic). *out is the
 * caller's: trellis_subscription_list_free. */
trellis_rc_t trellis_list_subscriptions(trellis_client_t *c, const char *topic,
                                        trellis_subscription_list_t **out,
                                        char *err, size_t errlen);
void trellis_subscription_list_free(trellis_subscription_list_t *l);

#ifdef __cplusplus
}
#endif

#endif /* TRELLIS_MSG_H */
