/*
 * tm_engine_env: the real environment of the engine (see tm_engine_env.h):
 * thin adapters from the engine's table to tm_store, tm_caller, tm_timer
 * and tm_clock.
 */
#include "tm_engine_env.h"

static void store_queue(void *s, tm_write_t *w, tm_store_done_fn done,
                        void *arg)
{
    tm_store_queue(s, w, done, arg);
}

static int store_get(void *s, const char *gid, tm_trans_t **out, char *err,
                     size_t errlen)
{
    return tm_store_get(s, gid, out, err, errlen);
}

static int store_peek(void *s, const char *gid, tm_tx_status_t *status,
                      uint64_t *submit_hash, char *err, size_t errlen)
{
    return tm_store_peek(s, gid, status, submit_hash, err, errlen);
}

static int store_list(void *s, const tm_store_filter_t *f, tm_trans_t ***out,
                      size_t *n, char *err, size_t errlen)
{
    return tm_store_list(s, f, out, n, err, errlen);
}

static long store_load_unfinished(void *s, tm_store_each_fn fn, void *arg,
                                  char *err, size_t errlen)
{
    return tm_store_load_unfinished(s, fn, arg, err, errlen);
}

static int store_healthy(void *s, char *why, size_t len)
{
    return tm_store_healthy(s, why, len);
}

static int store_subscribe(void *s, const char *topic, const char *target,
                           const char *remark, int64_t now_ms, char *err,
                           size_t errlen)
{
    return tm_store_subscribe(s, topic, target, remark, now_ms, err, errlen);
}

static int store_unsubscribe(void *s, const char *topic, const char *target,
                             char *err, size_t errlen)
{
    return tm_store_unsubscribe(s, topic, target, err, errlen);
}

static int store_subscriptions(void *s, const char *topic,
                               tm_subscription_t **out, size_t *n, char *err,
                               size_t errlen)
{
    return tm_store_subscriptions(s, topic, out, n, err, errlen);
}

static int store_lease_ok(void *s)
{
    return tm_store_lease_ok(s);
}

static const char *store_kind_name(void *s)
{
    return tm_store_kind_name(s);
}

static void store_start_ownership(void *s, const tm_store_owner_hooks_t *h)
{
    tm_store_start_ownership(s, h);
}

static int call_start(void *c, const char *host_port, const char *method,
                      const uint8_t *payload, size_t len, const tm_md_t *md,
                      size_t n_md, uint32_t timeout_ms, tm_call_done_fn done,
                      void *arg, char *err, size_t errlen)
{
    return tm_caller_start(c, host_port, method, payload, len, md, n_md,
                           timeout_ms, done, arg, err, errlen);
}

static int timer_arm(void *t, tm_timer_node_t *node, int64_t due_ms)
{
    return tm_timer_arm(t, node, due_ms);
}

static int timer_disarm(void *t, tm_timer_node_t *node)
{
    return tm_timer_disarm(t, node);
}

static int64_t mono_ms(void *clock)
{
    (void)clock;
    return tm_mono_ms();
}

static int64_t wall_ms(void *clock)
{
    (void)clock;
    return tm_wall_ms();
}

void tm_engine_env_real(tm_engine_env_t *env, tm_store_t *store,
                        tm_caller_t *caller, tm_timers_t *timers)
{
    *env = (tm_engine_env_t){
        .store = store,
        .store_queue = store_queue,
        .store_get = store_get,
        .store_peek = store_peek,
        .store_list = store_list,
        .store_load_unfinished = store_load_unfinished,
        .store_healthy = store_healthy,
        .store_subscribe = store_subscribe,
        .store_unsubscribe = store_unsubscribe,
        .store_subscriptions = store_subscriptions,
        .store_lease_ok = store_lease_ok,
        .store_kind_name = store_kind_name,
        .store_start_ownership = store_start_ownership,
        .caller = caller,
        .call_start = call_start,
        .timers = timers,
        .timer_arm = timer_arm,
        .timer_disarm = timer_disarm,
        .clock = NULL,
        .mono_ms = mono_ms,
        .wall_ms = wall_ms,
    };
}
