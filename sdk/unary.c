/*
 * unary.c — the SDK's only way to make an outgoing gRPC call: one unary
 * call on the gRPC C core (tr_call_t: start it on a completion queue, read
 * its outcome once the queue says it completed), the blocking call built
 * on it, plus the process-wide pieces they need (grpc_init once, and the
 * per-target channel cache of trellis_call_unary).
 *
 * A call is one batch of the six client ops. The blocking call runs it on
 * a completion queue of its own (a pluck queue created and destroyed per
 * call). That costs a queue per call but keeps calls independent: any
 * thread may call at any time, sharing only the channel, which gRPC makes
 * thread safe. The call's deadline guarantees that the batch completes, so
 * the pluck waits without a timeout of its own. The asynchronous calls
 * (async.c) start the same batch on their client's shared queue and read
 * it with the same tr_call_result, so both paths see one set of facts.
 *
 * The channel cache maps a target to a channel slot (channel.c) kept for
 * the life of the process, so repeated trellis_call_unary calls to a
 * participant reuse its connection. It is a fixed array searched linearly
 * under a mutex: an initiator talks to a handful of participants, and a
 * lookup costs a string compare per entry. When it is full, calls to
 * further targets get a channel of their own that dies with the call
 * (correct, just slower).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "internal.h"

#define CHANNEL_CACHE_SIZE 64

static pthread_once_t grpc_once = PTHREAD_ONCE_INIT;

static void grpc_init_for_process(void)
{
    /* grpc_shutdown() is deliberately never called: other libraries in the
     * process may use gRPC too, and cached channels live until exit. */
    grpc_init();
}

void tr_grpc_init_once(void)
{
    pthread_once(&grpc_once, grpc_init_for_process);
}

/* ---- channel cache --------------------------------------------------- */

static struct {
    pthread_mutex_t lock;
    size_t n;
    tr_chan_slot_t *slots[CHANNEL_CACHE_SIZE];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The cached slot for target, created on first use; NULL when the cache is
 * full or memory is out. Slots live until the process exits. */
static tr_chan_slot_t *cache_slot(const char *target)
{
    tr_chan_slot_t *slot = NULL;
    pthread_mutex_lock(&cache.lock);
    for (size_t i = 0; i < cache.n && slot == NULL; i++)
        if (strcmp(cache.slots[i]->target, target) == 0)
            slot = cache.slots[i];
    if (slot == NULL && cache.n < CHANNEL_CACHE_SIZE &&
        (slot = malloc(sizeof *slot)) != NULL) {
        if (tr_chan_slot_init(slot, target, NULL, 0) == TRELLIS_OK) {
            tr_tls_apply_call_settings(slot);
            cache.slots[cache.n++] = slot;
        } else {
            free(slot);
            slot = NULL;
        }
    }
    pthread_mutex_unlock(&cache.lock);
    return slot;
}

/* ---- one unary call -------------------------------------------------- */

void tr_call_init(tr_call_t *st)
{
    memset(st, 0, sizeof *st);
    grpc_metadata_array_init(&st->recv_initial_md);
    grpc_metadata_array_init(&st->recv_trailing_md);
    st->details = grpc_empty_slice();
}

void tr_call_clear(tr_call_t *st)
{
    if (st->call != NULL)
        grpc_call_unref(st->call);
    for (size_t i = 0; i < st->n_send_md; i++) {
        grpc_slice_unref(st->send_md[i].key);
        grpc_slice_unref(st->send_md[i].value);
    }
    free(st->send_md);
    if (st->send_buf != NULL)
        grpc_byte_buffer_destroy(st->send_buf);
    if (st->recv_buf != NULL)
        grpc_byte_buffer_destroy(st->recv_buf);
    grpc_metadata_array_destroy(&st->recv_initial_md);
    grpc_metadata_array_destroy(&st->recv_trailing_md);
    grpc_slice_unref(st->details);
    tr_call_init(st);
}

/* Copy the caller's metadata pairs into slices, refusing keys gRPC would
 * reject (upper case, spaces, ...) with a message that names the key. */
static trellis_rc_t unary_build_metadata(tr_call_t *st, const tr_unary_t *u,
                                         char *err, size_t errlen)
{
    if (u->n_md == 0)
        return TRELLIS_OK;
    if (u->md_keys == NULL || u->md_values == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%zu metadata pairs given but keys or values is NULL",
                       u->n_md);
    st->send_md = calloc(u->n_md, sizeof *st->send_md);
    if (st->send_md == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for %zu metadata pairs", u->n_md);
    for (size_t i = 0; i < u->n_md; i++) {
        const char *k = u->md_keys[i], *v = u->md_values[i];
        if (k == NULL || v == NULL)
            return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                           "metadata pair %zu has a NULL key or value", i);
        grpc_slice key = grpc_slice_from_copied_string(k);
        grpc_slice value = grpc_slice_from_copied_string(v);
        st->send_md[i].key = key;
        st->send_md[i].value = value;
        st->n_send_md++;
        if (!grpc_header_key_is_legal(key))
            return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                           "metadata key \"%s\" is not a legal gRPC header "
                           "key (lower-case letters, digits, -_.)",
                           k);
        if (!grpc_is_binary_header(key) &&
            !grpc_header_nonbin_value_is_legal(value))
            return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                           "metadata value for \"%s\" has characters a "
                           "text header cannot carry",
                           k);
    }
    return TRELLIS_OK;
}

static grpc_call *unary_create_call(const tr_unary_t *u,
                                    grpc_completion_queue *cq)
{
    uint32_t ms = u->timeout_ms != 0 ? u->timeout_ms : TR_DEFAULT_TIMEOUT_MS;
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                     gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
    if (u->registered != NULL)
        return grpc_channel_create_registered_call(
            u->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, u->registered,
            deadline, NULL);
    /* The method slice need only live through grpc_channel_create_call. */
    return grpc_channel_create_call(
        u->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
        grpc_slice_from_static_string(u->method), NULL, deadline, NULL);
}

/* Start the six-op batch; its completion comes to the call's queue with
 * tag. */
static trellis_rc_t unary_start_batch(tr_call_t *st, void *tag, char *err,
                                      size_t errlen)
{
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = st->n_send_md;
    ops[0].data.send_initial_metadata.metadata = st->send_md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = st->send_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata =
        &st->recv_initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &st->recv_buf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &st->recv_trailing_md;
    ops[5].data.recv_status_on_client.status = &st->status;
    ops[5].data.recv_status_on_client.status_details = &st->details;

    grpc_call_error ce = grpc_call_start_batch(st->call, ops, 6, tag, NULL);
    if (ce != GRPC_CALL_OK)
        return tr_errf(TRELLIS_INTERNAL, err, errlen,
                       "grpc_call_start_batch failed: %s",
                       grpc_call_error_to_string(ce));
    return TRELLIS_OK;
}

/* The reply message as one malloc'd buffer; NULL/0 for an empty reply. */
static trellis_rc_t unary_take_reply(tr_call_t *st, uint8_t **reply,
                                     size_t *reply_len, char *err,
                                     size_t errlen)
{
    *reply = NULL;
    *reply_len = 0;
    if (st->recv_buf == NULL)
        return TRELLIS_OK;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, st->recv_buf))
        return tr_errf(TRELLIS_INTERNAL, err, errlen,
                       "cannot read the reply message (decompression "
                       "failed)");
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    size_t len = GRPC_SLICE_LENGTH(all);
    trellis_rc_t rc = TRELLIS_OK;
    if (len > 0) {
        uint8_t *copy = malloc(len);
        if (copy == NULL) {
            rc = tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                         "out of memory for a %zu-byte reply", len);
        } else {
            memcpy(copy, GRPC_SLICE_START_PTR(all), len);
            *reply = copy;
            *reply_len = len;
        }
    }
    grpc_slice_unref(all);
    return rc;
}

/* A non-OK status: the peer's details verbatim, or a description when it
 * sent none. */
static trellis_rc_t unary_status_error(const tr_unary_t *u, const tr_call_t *st,
                                       char *err, size_t errlen)
{
    size_t n = GRPC_SLICE_LENGTH(st->details);
    if (n > 0)
        return tr_errf((trellis_rc_t)st->status, err, errlen, "%.*s", (int)n,
                       (const char *)GRPC_SLICE_START_PTR(st->details));
    return tr_errf((trellis_rc_t)st->status, err, errlen,
                   "%s from %s%s (no details)", tr_status_name(st->status),
                   u->target != NULL ? u->target : "",
                   u->method != NULL ? u->method : "");
}

/* The reply's cluster id, for a caller that asked (tr_unary_t). */
static void unary_cluster_id(const tr_unary_t *u, const tr_call_t *st)
{
    u->cluster_id[0] = '\0';
    *u->cluster_id_got = st->status == GRPC_STATUS_OK;
    for (size_t i = 0; i < st->recv_initial_md.count; i++) {
        const grpc_metadata *m = &st->recv_initial_md.metadata[i];
        if (grpc_slice_str_cmp(m->key, TRELLIS_CLUSTER_ID_HEADER) != 0)
            continue;
        size_t n = GRPC_SLICE_LENGTH(m->value);
        if (n > TRELLIS_CLUSTER_ID_MAX)
            n = TRELLIS_CLUSTER_ID_MAX;
        memcpy(u->cluster_id, GRPC_SLICE_START_PTR(m->value), n);
        u->cluster_id[n] = '\0';
        *u->cluster_id_got = 1;
    }
}

trellis_rc_t tr_call_start(tr_call_t *st, const tr_unary_t *u,
                           grpc_completion_queue *cq, void *tag, char *err,
                           size_t errlen)
{
    trellis_rc_t rc = unary_build_metadata(st, u, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    grpc_slice body = grpc_slice_from_copied_buffer(
        u->req_len > 0 ? (const char *)u->req : "", u->req_len);
    st->send_buf = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body); /* the buffer took its own reference */

    st->call = unary_create_call(u, cq);
    if (st->call == NULL)
        return tr_errf(TRELLIS_INTERNAL, err, errlen,
                       "cannot create a call to %s%s", u->target, u->method);
    return unary_start_batch(st, tag, err, errlen);
}

void tr_call_cancel(tr_call_t *st, const char *why)
{
    if (st->call != NULL)
        grpc_call_cancel_with_status(st->call, GRPC_STATUS_CANCELLED, why,
                                     NULL);
}

trellis_rc_t tr_call_result(tr_call_t *st, const tr_unary_t *u, uint8_t **reply,
                            size_t *reply_len, char *err, size_t errlen)
{
    *reply = NULL;
    *reply_len = 0;
    tr_err_clear(err, errlen);
    if (u->cluster_id != NULL)
        unary_cluster_id(u, st);
    /* With RECV_STATUS_ON_CLIENT in the batch, the batch always succeeds
     * and the outcome is in st->status. */
    if (st->status == GRPC_STATUS_OK)
        return unary_take_reply(st, reply, reply_len, err, errlen);
    return unary_status_error(u, st, err, errlen);
}

/* Wait on the call's own queue for the batch started with tag. */
static trellis_rc_t unary_wait(grpc_completion_queue *cq, void *tag, char *err,
                               size_t errlen)
{
    grpc_event ev = grpc_completion_queue_pluck(
        cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
        return tr_errf(TRELLIS_INTERNAL, err, errlen,
                       "completion queue returned event type %d instead of "
                       "the call's completion",
                       (int)ev.type);
    return TRELLIS_OK;
}

static void unary_queue_destroy(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
               .type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
}

trellis_rc_t tr_unary_call(const tr_unary_t *u, uint8_t **reply,
                           size_t *reply_len, char *err, size_t errlen)
{
    *reply = NULL;
    *reply_len = 0;
    tr_err_clear(err, errlen);

    tr_call_t st;
    tr_call_init(&st);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    void *tag = &st; /* any unique pointer; the queue is ours alone */
    trellis_rc_t rc = tr_call_start(&st, u, cq, tag, err, errlen);
    if (rc == TRELLIS_OK)
        rc = unary_wait(cq, tag, err, errlen);
    if (rc == TRELLIS_OK)
        rc = tr_call_result(&st, u, reply, reply_len, err, errlen);
    tr_call_clear(&st); /* unrefs the call before its queue goes */
    unary_queue_destroy(cq);
    return rc;
}

tr_chan_slot_t *tr_unary_slot(const char *target, int *own)
{
    tr_chan_slot_t *slot = cache_slot(target);
    *own = slot == NULL;
    if (slot != NULL)
        return slot;
    /* A full cache still works: the call gets a slot of its own. */
    slot = malloc(sizeof *slot);
    if (slot == NULL)
        return NULL;
    if (tr_chan_slot_init(slot, target, NULL, 0) != TRELLIS_OK) {
        free(slot);
        return NULL;
    }
    tr_tls_apply_call_settings(slot);
    return slot;
}

void tr_unary_slot_done(tr_chan_slot_t *slot, int own)
{
    if (!own || slot == NULL)
        return;
    tr_chan_slot_destroy(slot);
    free(slot);
}

/* ---- public: trellis_call_unary -------------------------------------- */

trellis_rc_t tr_unary_args_check(const char *target, const char *method,
                                 const void *req, size_t req_len, char *err,
                                 size_t errlen)
{
    if (target == NULL || target[0] == '\0')
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "target is empty; expected host:port");
    if (method == NULL || method[0] != '/')
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "method \"%s\" must be a full method name "
                       "/package.Service/Method",
                       method != NULL ? method : "(null)");
    if (req == NULL && req_len > 0)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "req is NULL but req_len is %zu", req_len);
    return TRELLIS_OK;
}

trellis_rc_t trellis_call_unary(const char *target, const char *method,
                                const void *req, size_t req_len,
                                const char *const *md_keys,
                                const char *const *md_values, size_t n_md,
                                uint32_t timeout_ms, uint8_t **reply,
                                size_t *reply_len, char *err, size_t errlen)
{
    if (reply == NULL || reply_len == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "reply and reply_len must not be NULL");
    *reply = NULL;
    *reply_len = 0;
    trellis_rc_t rc =
        tr_unary_args_check(target, method, req, req_len, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    tr_grpc_init_once();

    int own = 0;
    tr_chan_slot_t *slot = tr_unary_slot(target, &own);
    if (slot == NULL)
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory for a channel to %s", target);
    tr_chan_t *chan = tr_chan_acquire(slot);
    if (chan == NULL) {
        rc = tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                     "out of memory for a channel to %s", target);
    } else {
        tr_unary_t u = {
            .channel = chan->channel,
            .method = method,
            .target = target,
            .req = req,
            .req_len = req_len,
            .md_keys = md_keys,
            .md_values = md_values,
            .n_md = n_md,
            .timeout_ms = timeout_ms,
        };
        rc = tr_unary_call(&u, reply, reply_len, err, errlen);
        tr_chan_release(slot, chan, rc);
    }
    tr_unary_slot_done(slot, own);
    return rc;
}
