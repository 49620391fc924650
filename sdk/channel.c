/*
 * channel.c — the SDK's channels to one target: created lazily, shared by
 * every thread that calls that target, and replaced when they get stuck.
 *
 * Why replace: once a connect attempt fails (the peer is down), a gRPC
 * channel sits in TRANSIENT_FAILURE and fails every call at once until a
 * later reconnect succeeds. So after trellisd or a participant restarts,
 * the first calls through the old channel fail with UNAVAILABLE even
 * though the peer is back. A fresh channel instead starts IDLE, and its
 * first call waits for the outcome of its own connect attempt: it reaches
 * a restarted peer at once and still fails fast (connection refused) when
 * the peer is down. So a call that ended UNAVAILABLE while its channel is
 * in TRANSIENT_FAILURE retires that channel, and the next call gets a new
 * one. A server that answers UNAVAILABLE itself leaves its channel READY,
 * so the connection is kept.
 *
 * Channels use a local subchannel pool: with gRPC's global pool a fresh
 * channel would share the failed channel's subchannel and inherit its
 * state.
 *
 * Ownership: a slot holds one reference on its current channel; every call
 * holds one from tr_chan_acquire to tr_chan_release. A retired channel is
 * destroyed when its last call releases it. The slot's mutex guards the
 * current pointer and all reference counts of its channels.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "internal.h"

/* Reconnect quickly when a connection drops: gRPC's default backoff grows
 * to 120 s. */
#define INITIAL_RECONNECT_BACKOFF_MS 100
#define MAX_RECONNECT_BACKOFF_MS 1000

static grpc_channel *channel_create(const tr_chan_slot_t *s)
{
    grpc_arg args[4];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[0].value.integer = INITIAL_RECONNECT_BACKOFF_MS;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[1].value.integer = MAX_RECONNECT_BACKOFF_MS;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[2].value.integer = 1;
    /* TLS: the name the server's certificate must carry, when not the
     * target's host. */
    args[3].type = GRPC_ARG_STRING;
    args[3].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[3].value.string = s->server_name;
    grpc_channel_args chargs = {s->creds && s->server_name ? 4 : 3, args};

    grpc_channel_credentials *creds =
        s->creds != NULL ? s->creds : grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(s->target, creds, &chargs);
    if (s->creds == NULL)
        grpc_channel_credentials_release(creds);
    return ch;
}

trellis_rc_t tr_chan_slot_init(tr_chan_slot_t *s, const char *target,
                               const char *const *methods, size_t n_methods)
{
    memset(s, 0, sizeof *s);
    if (n_methods > TR_CHAN_MAX_METHODS)
        return TRELLIS_INVALID_ARGUMENT;
    s->target = strdup(target);
    if (s->target == NULL)
        return TRELLIS_RESOURCE_EXHAUSTED;
    pthread_mutex_init(&s->lock, NULL);
    s->methods = methods;
    s->n_methods = n_methods;
    return TRELLIS_OK;
}

static tr_chan_t *chan_new(const tr_chan_slot_t *s)
{
    tr_chan_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->channel = channel_create(s);
    for (size_t i = 0; i < s->n_methods; i++)
        c->registered[i] =
            grpc_channel_register_call(c->channel, s->methods[i], NULL, NULL);
    c->refs = 1; /* the slot's */
    return c;
}

tr_chan_t *tr_chan_acquire(tr_chan_slot_t *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->current == NULL)
        s->current = chan_new(s);
    tr_chan_t *c = s->current;
    if (c != NULL)
        c->refs++;
    pthread_mutex_unlock(&s->lock);
    return c;
}

/* Drop one reference (slot lock held); returns the channel to destroy. */
static tr_chan_t *chan_unref_locked(tr_chan_t *c)
{
    return --c->refs == 0 ? c : NULL;
}

static void chan_destroy(tr_chan_t *c)
{
    if (c == NULL)
        return;
    grpc_channel_destroy(c->channel);
    free(c);
}

void tr_chan_release(tr_chan_slot_t *s, tr_chan_t *c, trellis_rc_t rc)
{
    /* Asked before taking the lock: it concerns the channel, not the slot. */
    int stuck = rc == TRELLIS_UNAVAILABLE &&
                grpc_channel_check_connectivity_state(c->channel, 0) ==
                    GRPC_CHANNEL_TRANSIENT_FAILURE;
    pthread_mutex_lock(&s->lock);
    if (stuck && s->current == c) {
        s->current = NULL;
        c->refs--; /* the slot's reference; ours keeps c alive */
    }
    tr_chan_t *dead = chan_unref_locked(c);
    pthread_mutex_unlock(&s->lock);
    chan_destroy(dead);
}

void tr_chan_slot_destroy(tr_chan_slot_t *s)
{
    if (s->target == NULL)
        return; /* init failed */
    pthread_mutex_lock(&s->lock);
    tr_chan_t *dead = s->current != NULL ? chan_unref_locked(s->current) : NULL;
    s->current = NULL;
    pthread_mutex_unlock(&s->lock);
    chan_destroy(dead);
    pthread_mutex_destroy(&s->lock);
    free(s->target);
    s->target = NULL;
    if (s->creds != NULL && s->creds_owned)
        grpc_channel_credentials_release(s->creds);
    s->creds = NULL;
    free(s->server_name);
    s->server_name = NULL;
}

void tr_chan_slot_set_tls(tr_chan_slot_t *s, grpc_channel_credentials *creds,
                          char *server_name)
{
    s->creds = creds;
    s->creds_owned = 1;
    s->server_name = server_name;
}
