/*
 * bench_dtm: dtm-saga2's requests (see bench_dtm.h). A bench_dtm_t is
 * filled before a run and only read during it, so the load's threads
 * share it without a lock.
 */
#include "bench_dtm.h"

#include <grpc/byte_buffer.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dtm/dtmgimp.pb-c.h"

void bench_dtm_init(bench_dtm_t *d, const char *part_addr)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->steps, sizeof(d->steps),
             "[{\"action\":\"%s/trellis.bench.Noop/Action\","
             "\"compensate\":\"%s/trellis.bench.Noop/Compensate\"},"
             "{\"action\":\"%s/trellis.bench.Noop/Action\","
             "\"compensate\":\"%s/trellis.bench.Noop/Compensate\"}]",
             part_addr, part_addr, part_addr, part_addr);
    snprintf(d->gid_prefix, sizeof(d->gid_prefix), "d-%d-", (int)getpid());
}

int bench_dtm_make(uint64_t seq, grpc_byte_buffer **out, void *dtm)
{
    const bench_dtm_t *d = dtm;
    char gid[64];
    snprintf(gid, sizeof(gid), "%s%llu", d->gid_prefix,
             (unsigned long long)(d->gid_base + seq));
    ProtobufCBinaryData payloads[2] = {{0, NULL}, {0, NULL}};
    Dtmgimp__DtmTransOptions o = DTMGIMP__DTM_TRANS_OPTIONS__INIT;
    o.waitresult = 1;
    Dtmgimp__DtmRequest r = DTMGIMP__DTM_REQUEST__INIT;
    r.gid = gid;
    r.transtype = "saga";
    r.transoptions = &o;
    r.steps = (char *)d->steps;
    r.binpayloads = payloads;
    r.n_binpayloads = 2;
    size_t n = dtmgimp__dtm_request__get_packed_size(&r);
    grpc_slice sl = grpc_slice_malloc(n);
    dtmgimp__dtm_request__pack(&r, GRPC_SLICE_START_PTR(sl));
    *out = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return *out ? 0 : -1;
}

int bench_dtm_check(const uint8_t *bytes, size_t len, char *err, size_t errlen,
                    void *dtm)
{
    (void)bytes;
    (void)dtm;
    if (len == 0)
        return 0;
    snprintf(err, errlen, "%zu bytes where DTM's Submit replies Empty", len);
    return -1;
}
