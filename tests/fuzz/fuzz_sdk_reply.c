/*
 * fuzz_sdk_reply: libFuzzer target for what libtrellis decodes from
 * trellisd's replies: Query's Transaction and List's page are unpacked and
 * deep-copied into the caller's info structs (sdk/info.c,
 * tr_trans_info_copy), the other replies are unpacked and read. A client
 * talks to whatever answers at the address it was given, so these bytes
 * are input like any other.
 *
 * Input: byte 0 picks the reply (% 3: QueryReply, ListReply, SubmitReply);
 * the rest is the message, decoded by tr_reply_unpack as the client does
 * (the NUL check of trellis_wire.h, then protobuf-c). Invariants: a reply
 * whose wire strings hold a NUL, or that the check cannot walk, is
 * refused (a NUL refusal names its field); a decoded reply packs back
 * into bytes the check accepts; a copy
 * has the message's counts and strings, and clearing it frees everything
 * (LeakSanitizer checks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "internal.h"
#include "trellis/v1/tm.pb-c.h"
#include "trellis_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void copy_and_check(const Trellis__V1__Transaction *t)
{
    trellis_trans_info_t info;
    char err[256];
    fz_require(tr_trans_info_copy(t, &info, err, sizeof(err)) == TRELLIS_OK,
               "tr_trans_info_copy failed");
    fz_require(strcmp(info.gid, t->gid) == 0 &&
                   strcmp(info.reason, t->reason) == 0,
               "copied strings differ");
    fz_require(info.n_branches == t->n_branches, "branches went missing");
    for (size_t i = 0; i < info.n_branches; i++) {
        const trellis_branch_info_t *b = &info.branches[i];
        const Trellis__V1__Branch *m = t->branches[i];
        fz_require(b->n_ops == m->n_ops && b->n_depends_on == m->n_depends_on &&
                       b->payload_len == m->payload.len,
                   "a branch copy differs in its counts");
        for (size_t j = 0; j < b->n_ops; j++)
            fz_require(b->ops[j].n_attempt_ms == m->ops[j]->n_attempt_ms,
                       "an op copy lost attempt times");
    }
    tr_trans_info_clear(&info);
}

/* p[0..n) as the client decodes a reply of type d: NULL when refused.
 * Checks the NUL rule both ways (see the top of this file). */
static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d,
                                const uint8_t *p, size_t n)
{
    char err[256], why[256];
    ProtobufCMessage *m = NULL;
    int wire = trellis_wire_check_strings(d, p, n, why, sizeof(why));
    trellis_rc_t rc = tr_reply_unpack(d, p, n, "/fuzz", &m, err, sizeof(err));
    if (wire == TRELLIS_WIRE_NUL)
        fz_require(rc != TRELLIS_OK && strstr(err, "contains a NUL byte"),
                   "a reply with a NUL in a string was decoded");
    fz_require(wire == TRELLIS_WIRE_OK || rc != TRELLIS_OK,
               "a reply the wire check refuses was decoded");
    if (rc != TRELLIS_OK)
        return NULL;
    fz_require_repack_checks(m);
    return m;
}

static void query_reply(const uint8_t *p, size_t n)
{
    Trellis__V1__QueryReply *r = (Trellis__V1__QueryReply *)decode(
        &trellis__v1__query_reply__descriptor, p, n);
    if (r && r->trans)
        copy_and_check(r->trans);
    trellis__v1__query_reply__free_unpacked(r, NULL);
}

static void list_reply(const uint8_t *p, size_t n)
{
    Trellis__V1__ListReply *r = (Trellis__V1__ListReply *)decode(
        &trellis__v1__list_reply__descriptor, p, n);
    for (size_t i = 0; r && i < r->n_transactions; i++)
        copy_and_check(r->transactions[i]);
    trellis__v1__list_reply__free_unpacked(r, NULL);
}

static void submit_reply(const uint8_t *p, size_t n)
{
    Trellis__V1__SubmitReply *r = (Trellis__V1__SubmitReply *)decode(
        &trellis__v1__submit_reply__descriptor, p, n);
    if (r) {
        char *reason = tr_strdup0(r->reason);
        fz_require(reason && strcmp(reason, r->reason) == 0,
                   "reason copy differs");
        free(reason);
    }
    trellis__v1__submit_reply__free_unpacked(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void (*const replies[])(const uint8_t *, size_t) = {
        query_reply, list_reply, submit_reply};
    if (size == 0)
        return 0;
    replies[data[0] % 3](data + 1, size - 1);
    return 0;
}
