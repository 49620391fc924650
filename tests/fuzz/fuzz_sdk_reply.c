/*
 * fuzz_sdk_reply: libFuzzer target for what libtrellis decodes from
 * trellisd's replies: Query's Transaction and List's page are unpacked and
 * deep-copied into the caller's info structs (sdk/info.c,
 * tr_trans_info_copy), the other replies are unpacked and read. A client
 * talks to whatever answers at the address it was given, so these bytes
 * are input like any other.
 *
 * Input: byte 0 picks the reply (% 3: QueryReply, ListReply, SubmitReply);
 * the rest is the message. Invariants: a copy has the message's counts and
 * strings, and clearing it frees everything (LeakSanitizer checks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "internal.h"
#include "trellis/v1/tm.pb-c.h"

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

static void query_reply(const uint8_t *p, size_t n)
{
    Trellis__V1__QueryReply *r = trellis__v1__query_reply__unpack(NULL, n, p);
    if (r && r->trans)
        copy_and_check(r->trans);
    trellis__v1__query_reply__free_unpacked(r, NULL);
}

static void list_reply(const uint8_t *p, size_t n)
{
    Trellis__V1__ListReply *r = trellis__v1__list_reply__unpack(NULL, n, p);
    for (size_t i = 0; r && i < r->n_transactions; i++)
        copy_and_check(r->transactions[i]);
    trellis__v1__list_reply__free_unpacked(r, NULL);
}

static void submit_reply(const uint8_t *p, size_t n)
{
    Trellis__V1__SubmitReply *r = trellis__v1__submit_reply__unpack(NULL, n, p);
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
