/*
 * bench_saga: request builders and reply judges of trellis-bench (see
 * bench_saga.h). A bench_saga_t is filled before a run and only read
 * during it, so the load's threads share it without a lock.
 */
#include "bench_saga.h"

#include <grpc/byte_buffer.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trellis/v1/tm.pb-c.h"

void bench_saga_init(bench_saga_t *s, const char *part_addr, const char *tag)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->action, sizeof(s->action), "%s/trellis.bench.Noop/Action",
             part_addr);
    snprintf(s->compensate, sizeof(s->compensate),
             "%s/trellis.bench.Noop/Compensate", part_addr);
    snprintf(s->first, sizeof(s->first), "%s", s->action);
    snprintf(s->gid_prefix, sizeof(s->gid_prefix), "%s-%d-", tag,
             (int)getpid());
    s->wait_result = 1;
}

void bench_saga_listen(bench_saga_t *s, int n, uint32_t batch)
{
    s->listener_batch = batch;
    const char *slash = strchr(s->action, '/');
    snprintf(s->listener, sizeof(s->listener), "%.*s%s",
             (int)(slash - s->action), s->action, BENCH_ECHO_METHOD);
    s->n_listeners = n;
}

void bench_saga_hold(bench_saga_t *s, uint32_t retry_ms)
{
    const char *slash = strchr(s->action, '/');
    snprintf(s->first, sizeof(s->first), "%.*s/trellis.bench.Noop/Hold",
             (int)(slash - s->action), s->action);
    s->wait_result = 0;
    s->retry_interval_ms = retry_ms;
}

static grpc_byte_buffer *buffer_of(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    grpc_slice sl = grpc_slice_malloc(n);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(sl));
    grpc_byte_buffer *b = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return b;
}

int bench_saga_make(uint64_t seq, grpc_byte_buffer **out, void *saga)
{
    const bench_saga_t *s = saga;
    char gid[64];
    snprintf(gid, sizeof(gid), "%s%llu", s->gid_prefix,
             (unsigned long long)(s->gid_base + seq));
    Trellis__V1__SagaStep st[2] = {TRELLIS__V1__SAGA_STEP__INIT,
                                   TRELLIS__V1__SAGA_STEP__INIT};
    st[0].action = (char *)s->first;
    st[0].compensate = (char *)s->compensate;
    st[1].action = (char *)s->action;
    st[1].compensate = (char *)s->compensate;
    Trellis__V1__SagaStep *steps[2] = {&st[0], &st[1]};
    Trellis__V1__TransOptions o = TRELLIS__V1__TRANS_OPTIONS__INIT;
    o.wait_result = s->wait_result;
    o.retry_interval_ms = s->retry_interval_ms;
    char *listeners[8];
    for (int i = 0; i < s->n_listeners && i < 8; i++)
        listeners[i] = (char *)s->listener;
    o.n_listeners = (size_t)(s->n_listeners < 8 ? s->n_listeners : 8);
    o.listeners = listeners;
    o.listener_batch = s->listener_batch;
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = gid;
    r.n_steps = 2;
    r.steps = steps;
    r.options = &o;
    *out = buffer_of(&r.base);
    return *out ? 0 : -1;
}

int bench_saga_check(const uint8_t *bytes, size_t len, char *err, size_t errlen,
                     void *saga)
{
    const bench_saga_t *s = saga;
    Trellis__V1__SubmitReply *r =
        trellis__v1__submit_reply__unpack(NULL, len, bytes);
    if (!r) {
        snprintf(err, errlen, "%zu bytes that are no SubmitReply", len);
        return -1;
    }
    int st = r->status;
    int ok = s->wait_result
                 ? st == TRELLIS__V1__TRANS_STATUS__TRANS_SUCCEEDED
                 : st != TRELLIS__V1__TRANS_STATUS__TRANS_FAILED && st != 0;
    if (!ok)
        snprintf(err, errlen, "gid %s status %d reason \"%s\"", r->gid, st,
                 r->reason);
    trellis__v1__submit_reply__free_unpacked(r, NULL);
    return ok ? 0 : -1;
}

int bench_echo_make(uint64_t seq, grpc_byte_buffer **out, void *unused)
{
    (void)seq;
    (void)unused;
    grpc_slice sl = grpc_empty_slice();
    *out = grpc_raw_byte_buffer_create(&sl, 1);
    return 0;
}
