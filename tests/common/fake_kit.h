/*
 * fake_kit: the parts of a fake engine environment (tm_engine_env_t) that
 * the engine's unit tests (fake_env.c, stepped by hand) and the simulator
 * (tests/sim/sim_fakes.c, stepped by its event loop) share: the store's
 * queue of writes, a stored row read back into the model, the store's
 * subscriptions, the list of armed timers, the metadata lookup of a call,
 * and the env entries both leave empty. Each of those was written twice before;
 * one copy keeps the two fakes reading rows and ordering timers alike.
 *
 * No test framework and no global state here: the simulator links it
 * without cmocka. Out of memory ends the process (fkit_must): a test
 * environment has nothing better to do.
 */
#ifndef FAKE_KIT_H
#define FAKE_KIT_H

#include <stddef.h>
#include <stdint.h>

#include "tm_engine.h"
#include "tm_store_impl.h"

/* p, or the process ends with "out of memory" (exit status 2). */
void *fkit_must(void *p);

/* ---- the store's queue: writes queued, not committed ---- */

typedef struct {
    tm_write_t *head, *tail;
    size_t n;
} fkit_queue_t;

/* Append w with its callback, as a store's queue does. */
void fkit_queue_push(fkit_queue_t *q, tm_write_t *w, tm_store_done_fn done,
                     void *arg);

/* Take the oldest write off the queue (w->next cleared); NULL if empty. */
tm_write_t *fkit_queue_pop(fkit_queue_t *q);

/* Take every write off the queue at once: the list, oldest first, linked
 * by next; NULL if empty. */
tm_write_t *fkit_queue_take_all(fkit_queue_t *q);

/* ---- stored rows ---- */

/* A stored row read back into the model as a store's read decodes it:
 * writes[0..n) applied in order onto a new transaction gid, finished ops
 * marked skipped. The caller's: tm_trans_free. */
tm_trans_t *fkit_row_read(const char *gid, tm_write_t *const *writes, size_t n);

/* ---- subscriptions (topics) ----
 * In memory, with the stores' semantics (tm_store.h, "topics"): a pair is
 * created once (a repeat keeps the first remark and age), lists come by
 * topic, then created_ms, then target, byte for byte. The array is kept in
 * that order. Unlike tm_store_subscribe no length is checked. */

typedef struct {
    tm_subscription_t *v;
    size_t n, cap;
} fkit_topics_t;

/* 1 created, 0 the pair was there (remark NULL: ""). */
int fkit_topics_subscribe(fkit_topics_t *t, const char *topic,
                          const char *target, const char *remark,
                          int64_t now_ms);
/* 1 removed, 0 no such pair. */
int fkit_topics_unsubscribe(fkit_topics_t *t, const char *topic,
                            const char *target);
/* Copies of the subscriptions of topic (NULL or "": all) into *out, *n,
 * the caller's: tm_subscriptions_free. */
void fkit_topics_list(const fkit_topics_t *t, const char *topic,
                      tm_subscription_t **out, size_t *n);
void fkit_topics_free(fkit_topics_t *t);

/* ---- armed timers ----
 * A plain list (a few hundred nodes at most): node->heap_index is its
 * position + 1, as in tm_timer.c; a removal moves the last node into the
 * hole. seqs order timers due at the same time; owners say whose engine
 * armed each (the simulator's nodes; 0 elsewhere). */

typedef struct {
    tm_timer_node_t **nodes;
    uint64_t *seqs;
    int *owners;
    size_t n, cap;
} fkit_timers_t;

/* Arm node at due_ms with seq and owner, or re-arm it (it keeps its place
 * and owner, takes seq). 1 when newly armed, 0 when re-armed (the
 * engine's timer_arm contract). */
int fkit_timers_arm(fkit_timers_t *t, tm_timer_node_t *node, int64_t due_ms,
                    uint64_t seq, int owner);

/* 1 if node was armed and is now disarmed, 0 otherwise. */
int fkit_timers_disarm(fkit_timers_t *t, tm_timer_node_t *node);

/* Disarm the node at position i. */
void fkit_timers_remove_at(fkit_timers_t *t, size_t i);

/* The position of the earliest armed node (ties: the lower seq), or t->n
 * when none is armed. */
size_t fkit_timers_first(const fkit_timers_t *t);

/* Free the list (the nodes are their engines'). */
void fkit_timers_free(fkit_timers_t *t);

/* ---- calls ---- */

/* The call's metadata entry of key (a binary one too), or NULL. */
const tm_md_t *fkit_md_find(const tm_md_t *md, size_t n, const char *key);

/* The text value of the call's metadata key (dtm-gid, dtm-branch_id,
 * dtm-op), or "" (also for a binary value). */
const char *fkit_md_value(const tm_md_t *md, size_t n, const char *key);

/* ---- env and front entries both fakes leave empty ---- */

/* store_list: nothing listed (neither fake runs the admin List). */
int fkit_store_list_none(void *self, const tm_store_filter_t *f,
                         tm_trans_t ***out, size_t *n, char *err,
                         size_t errlen);

/* front watch_cancel: no client goes away, so nothing is watched. */
int fkit_front_watch_none(void *user, tm_rpc_t *rpc, tm_engine_cancel_fn fn,
                          void *fn_user, const char *key, char *err,
                          size_t errlen);

#endif /* FAKE_KIT_H */
