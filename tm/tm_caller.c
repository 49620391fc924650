/*
 * tm_caller: asynchronous branch calls (see tm_caller.h). Owns the channel
 * cache and the lifetime of each outgoing call.
 */
#include "tm_caller.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis_fnv.h"

#define MAX_CALL_MD 24
#define TARGET_BUCKETS 1024

typedef struct target_entry {
    struct target_entry *next;
    char *key; /* "host:port" + method */
    grpc_channel *channel;
    void *registered;
} target_entry_t;

typedef struct channel_entry {
    struct channel_entry *next;
    char *host_port;
    grpc_channel *channel;
} channel_entry_t;

struct tm_caller {
    tm_server_t *server;
    size_t max_message;
    pthread_mutex_t mu;
    target_entry_t *targets[TARGET_BUCKETS];
    channel_entry_t *channels;
    atomic_long inflight;
    grpc_channel_credentials *creds; /* NULL: plaintext */
    char *server_name;               /* TLS name override, or NULL */
    char *cluster_id;                /* sent with every call, or NULL */
    tm_caller_gate_fn gate;          /* NULL: every start goes ahead */
    void *gate_user;
};

typedef struct {
    tm_tag_t tag;
    tm_caller_t *caller;
    grpc_call *call;
    grpc_metadata md[MAX_CALL_MD + 1]; /* + the cluster id */
    size_t n_md;
    grpc_byte_buffer *send;
    grpc_metadata_array recv_initial;
    grpc_metadata_array recv_trailing;
    grpc_byte_buffer *recv;
    grpc_status_code status;
    grpc_slice details;
    tm_call_done_fn done;
    void *arg;
} call_t;

/* The bucket of a target: the hash of host_port then method (the key is
 * the two texts back to back, as target_entry_t keeps it). */
static size_t target_bucket(const char *host_port, const char *method)
{
    trellis_fnv_t f;
    trellis_fnv_init(&f);
    trellis_fnv_add_str(&f, host_port);
    trellis_fnv_add_str(&f, method);
    return (size_t)(trellis_fnv_final(&f) % TARGET_BUCKETS);
}

static grpc_channel *channel_for(tm_caller_t *c, const char *host_port)
{
    for (channel_entry_t *e = c->channels; e; e = e->next)
        if (strcmp(e->host_port, host_port) == 0)
            return e->channel;
    channel_entry_t *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    grpc_arg args[3];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)c->max_message;
    /* Reconnect quickly after a participant restarts. */
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[1].value.integer = 1000;
    args[2].type = GRPC_ARG_STRING;
    args[2].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[2].value.string = c->server_name;
    grpc_channel_args cargs = {c->creds && c->server_name ? 3 : 2, args};
    grpc_channel_credentials *creds =
        c->creds ? c->creds : grpc_insecure_credentials_create();
    e->channel = grpc_channel_create(host_port, creds, &cargs);
    if (!c->creds)
        grpc_channel_credentials_release(creds);
    e->host_port = strdup(host_port);
    if (!e->channel || !e->host_port) {
        free(e->host_port);
        free(e);
        return NULL;
    }
    e->next = c->channels;
    c->channels = e;
    return e->channel;
}

/* Under c->mu: the channel and registered-method handle for a target. */
static target_entry_t *target_for(tm_caller_t *c, const char *host_port,
                                  const char *method)
{
    size_t b = target_bucket(host_port, method);
    size_t hl = strlen(host_port);
    for (target_entry_t *e = c->targets[b]; e; e = e->next)
        if (strncmp(e->key, host_port, hl) == 0 &&
            strcmp(e->key + hl, method) == 0)
            return e;
    grpc_channel *ch = channel_for(c, host_port);
    if (!ch)
        return NULL;
    target_entry_t *e = calloc(1, sizeof(*e));
    size_t ml = strlen(method);
    char *key = malloc(hl + ml + 1);
    if (!e || !key) {
        free(e);
        free(key);
        return NULL;
    }
    memcpy(key, host_port, hl);
    memcpy(key + hl, method, ml + 1);
    e->key = key;
    e->channel = ch;
    e->registered = grpc_channel_register_call(ch, method, NULL, NULL);
    e->next = c->targets[b];
    c->targets[b] = e;
    return e;
}

static void call_free(call_t *k)
{
    for (size_t i = 0; i < k->n_md; i++) {
        grpc_slice_unref(k->md[i].key);
        grpc_slice_unref(k->md[i].value);
    }
    if (k->send)
        grpc_byte_buffer_destroy(k->send);
    if (k->recv)
        grpc_byte_buffer_destroy(k->recv);
    grpc_metadata_array_destroy(&k->recv_initial);
    grpc_metadata_array_destroy(&k->recv_trailing);
    grpc_slice_unref(k->details);
    if (k->call)
        grpc_call_unref(k->call);
    free(k);
}

/* The response message's bytes as one slice (empty when none came, or
 * it cannot be read); the caller unrefs it. */
static grpc_slice reply_bytes(grpc_byte_buffer *recv)
{
    grpc_byte_buffer_reader reader;
    if (!recv || !grpc_byte_buffer_reader_init(&reader, recv))
        return grpc_empty_slice();
    grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    return s;
}

static void call_on_done(tm_tag_t *tag, int ok)
{
    call_t *k = (call_t *)tag;
    int status = ok ? (int)k->status : GRPC_STATUS_UNAVAILABLE;
    char msg[512];
    size_t n = GRPC_SLICE_LENGTH(k->details);
    if (n >= sizeof(msg))
        n = sizeof(msg) - 1;
    memcpy(msg, GRPC_SLICE_START_PTR(k->details), n);
    msg[n] = '\0';
    if (!ok && !n)
        snprintf(msg, sizeof(msg), "call failed before a status arrived");
    tm_caller_t *c = k->caller;
    grpc_slice reply = reply_bytes(ok ? k->recv : NULL);
    size_t reply_len = GRPC_SLICE_LENGTH(reply);
    k->done(k->arg, status, msg, reply_len ? GRPC_SLICE_START_PTR(reply) : NULL,
            reply_len);
    grpc_slice_unref(reply);
    call_free(k);
    atomic_fetch_sub(&c->inflight, 1);
}

static int start_batch(call_t *k)
{
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = k->n_md;
    ops[0].data.send_initial_metadata.metadata = k->md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = k->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &k->recv_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &k->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &k->recv_trailing;
    ops[5].data.recv_status_on_client.status = &k->status;
    ops[5].data.recv_status_on_client.status_details = &k->details;
    return grpc_call_start_batch(k->call, ops, 6, &k->tag, NULL) == GRPC_CALL_OK
               ? 0
               : -1;
}

int tm_caller_start(tm_caller_t *c, const char *host_port, const char *method,
                    const uint8_t *payload, size_t len, const tm_md_t *md,
                    size_t n_md, uint32_t timeout_ms, tm_call_done_fn done,
                    void *arg, char *err, size_t errlen)
{
    if (n_md > MAX_CALL_MD) {
        snprintf(err, errlen, "too much metadata (%zu entries)", n_md);
        return -1;
    }
    if (c->gate && c->gate(c->gate_user, host_port, method, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&c->mu);
    target_entry_t *t = target_for(c, host_port, method);
    pthread_mutex_unlock(&c->mu);
    if (!t || !t->registered) {
        snprintf(err, errlen, "cannot open a channel to %s", host_port);
        return -1;
    }
    call_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    k->tag.on_done = call_on_done;
    k->caller = c;
    k->done = done;
    k->arg = arg;
    k->details = grpc_empty_slice();
    grpc_metadata_array_init(&k->recv_initial);
    grpc_metadata_array_init(&k->recv_trailing);
    for (size_t i = 0; i < n_md; i++) {
        k->md[i].key = grpc_slice_from_copied_string(md[i].key);
        k->md[i].value =
            md[i].value_len
                ? grpc_slice_from_copied_buffer(md[i].value, md[i].value_len)
                : grpc_slice_from_copied_string(md[i].value);
    }
    k->n_md = n_md;
    if (c->cluster_id) {
        k->md[k->n_md].key = grpc_slice_from_static_string(TM_CLUSTER_ID_KEY);
        k->md[k->n_md++].value = grpc_slice_from_copied_string(c->cluster_id);
    }
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)payload, len);
    k->send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
    k->call = grpc_channel_create_registered_call(
        t->channel, NULL, GRPC_PROPAGATE_DEFAULTS, tm_server_next_cq(c->server),
        t->registered, deadline, NULL);
    if (!k->call || start_batch(k) != 0) {
        snprintf(err, errlen, "cannot start a call to %s%s", host_port, method);
        call_free(k);
        return -1;
    }
    atomic_fetch_add(&c->inflight, 1);
    return 0;
}

long tm_caller_inflight(tm_caller_t *c)
{
    return atomic_load(&c->inflight);
}

int tm_caller_new(tm_server_t *server, size_t max_message, tm_caller_t **out,
                  char *err, size_t errlen)
{
    tm_caller_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->server = server;
    c->max_message = max_message;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

void tm_caller_set_credentials(tm_caller_t *c, grpc_channel_credentials *creds,
                               const char *server_name)
{
    if (c->creds)
        grpc_channel_credentials_release(c->creds);
    free(c->server_name);
    c->creds = creds;
    c->server_name = server_name && *server_name ? strdup(server_name) : NULL;
}

void tm_caller_set_start_gate(tm_caller_t *c, tm_caller_gate_fn fn, void *user)
{
    c->gate = fn;
    c->gate_user = user;
}

void tm_caller_set_cluster_id(tm_caller_t *c, const char *id)
{
    free(c->cluster_id);
    c->cluster_id = id && *id ? strdup(id) : NULL;
}
