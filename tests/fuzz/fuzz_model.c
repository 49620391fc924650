/*
 * fuzz_model: invariants of a transaction model built from requests (see
 * fuzz_model.h).
 */
#include "fuzz_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_config.h"
#include "tm_kind.h"
#include "tm_request.h"

tm_limits_t fz_default_limits(void)
{
    tm_config_t c;
    tm_config_default(&c);
    return c.engine.limits;
}

static void check_op(const tm_op_t *op, const tm_limits_t *lim)
{
    char err[256];
    tm_target_t t;
    if (!op->target)
        return;
    fz_require(tm_parse_target(op->target, "target", &t, err, sizeof(err)) == 0,
               "a stored op target does not parse");
    fz_require(tm_allow_match(&lim->allow, t.host_port),
               "a stored op target is not allowed");
}

static void check_branch(const tm_trans_t *tx, size_t i, const tm_limits_t *lim)
{
    const tm_branch_t *b = &tx->branches[i];
    char err[256];
    fz_require(b->branch_id != NULL, "branch without an id");
    fz_require(tm_validate_branch_id(b->branch_id, err, sizeof(err)) == 0,
               "branch id that validation would refuse");
    fz_require(tm_request_find_branch(tx, b->branch_id) == (int)i,
               "two branches with one id");
    const tm_kind_t *k = tm_kind_find(b->mode);
    fz_require(k != NULL, "branch of a mode no kind has");
    fz_require(k->place != TM_PLACE_HEAD || i == 0,
               "a workflow head that is not branch 0");
    fz_require(b->payload_len <= lim->max_payload, "payload over the limit");
    fz_require(b->payload_len == 0 || b->payload != NULL,
               "payload length without bytes");
    for (size_t d = 0; d < b->n_deps; d++)
        fz_require(b->deps[d] < i, "dependency on a later branch");
    fz_require(b->ops[TM_SLOT_FORWARD].kind == k->ops[TM_SLOT_FORWARD],
               "a forward op that is not its kind's");
    for (int s = 0; s < TM_SLOTS; s++)
        check_op(&b->ops[s], lim);
}

void fz_model_check(const tm_trans_t *tx, const tm_limits_t *lim)
{
    char err[256];
    fz_require(tm_validate_gid(tx->gid, err, sizeof(err)) == 0,
               "transaction gid that validation would refuse");
    fz_require(tx->n_branches <= lim->max_branches, "too many branches");
    fz_require(tx->opts.n_headers <= lim->max_headers, "too many headers");
    for (size_t i = 0; i < tx->n_branches; i++)
        check_branch(tx, i, lim);
}

static void check_deps(const tm_branch_t *b, const uint32_t *want, size_t n)
{
    fz_require(b->n_deps == n, "a step has other prerequisites than it asked");
    for (size_t d = 0; d < n; d++)
        fz_require(b->deps[d] == want[d],
                   "a step depends on another branch than it asked");
}

void fz_model_check_steps(const tm_trans_t *tx,
                          const Trellis__V1__SubmitRequest *r, size_t base)
{
    fz_require(tx->n_branches == base + r->n_steps,
               "steps went missing or were added");
    for (size_t i = 0; i < r->n_steps; i++) {
        const Trellis__V1__SagaStep *s = r->steps[i];
        const tm_branch_t *b = &tx->branches[base + i];
        uint32_t one =
            (uint32_t)(i > 0 && !r->concurrent ? base + i - 1 : base - 1);
        if (s->n_depends_on) {
            fz_require(b->n_deps == s->n_depends_on,
                       "a step lost some of its depends_on");
            for (size_t d = 0; d < b->n_deps; d++)
                fz_require(b->deps[d] == base + s->depends_on[d],
                           "a step depends on another step than it asked");
        } else {
            check_deps(b, &one, (i > 0 && !r->concurrent) || base > 0);
        }
    }
}

static void pack_and_compare(const tm_trans_t *tx, int with_branches)
{
    Trellis__V1__QueryReply q = TRELLIS__V1__QUERY_REPLY__INIT;
    q.trans = tm_trans_to_proto(tx, with_branches);
    fz_require(q.trans != NULL, "tm_trans_to_proto failed");
    size_t n = trellis__v1__query_reply__get_packed_size(&q);
    uint8_t *buf = malloc(n ? n : 1);
    fz_require(buf != NULL, "out of memory");
    fz_require(trellis__v1__query_reply__pack(&q, buf) == n,
               "packed size differs from the size computed");
    Trellis__V1__QueryReply *back =
        trellis__v1__query_reply__unpack(NULL, n, buf);
    fz_require(back && back->trans, "a reply that does not unpack");
    fz_require(strcmp(back->trans->gid, tx->gid) == 0, "reply gid differs");
    fz_require(back->trans->n_branches == (with_branches ? tx->n_branches : 0),
               "reply branch count differs");
    trellis__v1__query_reply__free_unpacked(back, NULL);
    tm_trans_proto_free(q.trans);
    free(buf);
}

void fz_model_reply(const tm_trans_t *tx)
{
    pack_and_compare(tx, 1); /* Query */
    pack_and_compare(tx, 0); /* an item of List */
}
