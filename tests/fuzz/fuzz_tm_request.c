/*
 * fuzz_tm_request: libFuzzer target for the request messages of service
 * trellis.v1.TM (and grpc.health.v1.Health/Check), decoded the way
 * trellisd decodes them.
 *
 * Input: byte 0 picks a family (byte % the number of families, table at
 * the bottom: the seven transaction RPCs, Health/Check, a session, the
 * operator RPCs RetryNow, ForceStop and SetLogLevel, the workflow RPCs,
 * PrepareMessage and the topic RPCs); the rest is the
 * request message as a gRPC frame carries it.
 *
 * Before any family runs, the request passes the check tm_server makes
 * before every handler (trellis_wire.h): one with a NUL byte inside a
 * string field, or bytes the check cannot walk, is refused there (a NUL
 * refusal names its field) and goes no further; a request the check
 * accepts and protobuf-c decodes must pack back into bytes the check
 * accepts (a framing protobuf-c reads otherwise than the check would let
 * a NUL through).
 *
 * Each family runs what tm_api.c's handler runs before it touches the
 * gid map, the store or the wire: protobuf-c unpack, the tm_validate_*
 * check, the tm_request_* / tm_trans conversion into the model, the
 * model's invariants (fuzz_model.h), the reply's conversion and packing,
 * and every free. The last family, "session", feeds several requests to
 * one transaction and drives it through tm_plan (fuzz_session.c).
 *
 * One target that dispatches rather than one per message: the families
 * share the model code a bug would be in, a mutation can carry an input
 * from one message to another (the same bytes decode as either), and CI
 * spends its FUZZ_SECONDS on one binary instead of a dozen.
 *
 * List: its page_token parsing and filter checks are static in
 * tm_api.c, out of reach of a target; List requests are decoded and
 * freed only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "fuzz_model.h"
#include "fuzz_session.h"
#include "grpc/health/v1/health.pb-c.h"
#include "tm_log.h"
#include "tm_plan.h"
#include "tm_request.h"
#include "trellis_wire.h"

typedef void (*family_fn)(const uint8_t *req, size_t len);

/* A refusal must say why: trellisd sends err with INVALID_ARGUMENT. */
static int refused(int rc, const char *err)
{
    if (rc != 0)
        fz_require(err[0] != '\0', "a refusal without a message");
    return rc != 0;
}

static void new_gid(const uint8_t *req, size_t len)
{
    Trellis__V1__NewGidRequest *r =
        trellis__v1__new_gid_request__unpack(NULL, len, req);
    trellis__v1__new_gid_request__free_unpacked(r, NULL);
}

static void health(const uint8_t *req, size_t len)
{
    Grpc__Health__V1__HealthCheckRequest *r =
        grpc__health__v1__health_check_request__unpack(NULL, len, req);
    grpc__health__v1__health_check_request__free_unpacked(r, NULL);
}

static void begin(const uint8_t *req, size_t len)
{
    tm_limits_t lim = fz_default_limits();
    char err[512] = "";
    Trellis__V1__BeginRequest *r =
        trellis__v1__begin_request__unpack(NULL, len, req);
    if (!r || refused(tm_validate_begin(r, &lim, err, sizeof(err)), err))
        goto out;
    tm_trans_t *tx = tm_trans_new(r->gid, TM_TX_PREPARED, FZ_NOW_MS);
    fz_require(tx && tm_options_from_proto(&tx->opts, r->options) == 0,
               "out of memory building a begun transaction");
    tm_options_t again;
    fz_require(tm_options_from_proto(&again, r->options) == 0, "out of memory");
    fz_require(tm_request_same_options(&tx->opts, &again),
               "the same Begin twice is not idempotent");
    tm_options_clear(&again);
    fz_model_check(tx, &lim);
    fz_model_reply(tx);
    tm_trans_free(tx);
out:
    trellis__v1__begin_request__free_unpacked(r, NULL);
}

static void register_branch(const uint8_t *req, size_t len)
{
    tm_limits_t lim = fz_default_limits();
    char err[512] = "";
    Trellis__V1__RegisterBranchRequest *r =
        trellis__v1__register_branch_request__unpack(NULL, len, req);
    if (!r || refused(tm_validate_register(r, &lim, err, sizeof(err)), err))
        goto out;
    tm_trans_t *tx = tm_trans_new(r->gid, TM_TX_PREPARED, FZ_NOW_MS);
    fz_require(tx && tm_request_add_registered(tx, r) == 0,
               "out of memory registering a branch");
    fz_require(tm_request_find_branch(tx, r->branch_id) == 0,
               "the registered branch is not found by its id");
    fz_require(tm_request_same_registration(&tx->branches[0], r),
               "the same RegisterBranch twice is not idempotent");
    fz_model_check(tx, &lim);
    fz_model_reply(tx);
    tm_trans_free(tx);
out:
    trellis__v1__register_branch_request__free_unpacked(r, NULL);
}

static void submit(const uint8_t *req, size_t len)
{
    tm_limits_t lim = fz_default_limits();
    char err[512] = "";
    Trellis__V1__SubmitRequest *r =
        trellis__v1__submit_request__unpack(NULL, len, req);
    if (!r || refused(tm_validate_submit(r, &lim, err, sizeof(err)), err))
        goto out;
    uint64_t h = tm_request_submit_hash(r);
    fz_require(h != 0 && h == tm_request_submit_hash(r),
               "submit hash is 0 or not deterministic");
    if (r->n_steps == 0) /* NOT_FOUND unless begun: no model */
        goto out;
    tm_trans_t *tx = tm_trans_new(r->gid, TM_TX_SUBMITTED, FZ_NOW_MS);
    fz_require(tx && tm_options_from_proto(&tx->opts, r->options) == 0,
               "out of memory building a submitted transaction");
    tx->submit_hash = h;
    if (!refused(tm_request_add_steps(tx, r, &lim, err, sizeof(err)), err)) {
        fz_model_check_steps(tx, r, 0);
        fz_model_check(tx, &lim);
        fz_model_reply(tx);
    }
    tm_trans_free(tx);
out:
    trellis__v1__submit_request__free_unpacked(r, NULL);
}

static void abort_request(const uint8_t *req, size_t len)
{
    char err[512] = "";
    Trellis__V1__AbortRequest *r =
        trellis__v1__abort_request__unpack(NULL, len, req);
    if (!r || refused(tm_validate_abort(r, err, sizeof(err)), err))
        goto out;
    tm_trans_t *tx = tm_trans_new(r->gid, TM_TX_PREPARED, FZ_NOW_MS);
    fz_require(tx != NULL, "out of memory");
    fz_session_abort_reason(tx, r);
    fz_require(tx->status == TM_TX_ABORTING, "abort did not roll back");
    fz_model_reply(tx);
    tm_trans_free(tx);
out:
    trellis__v1__abort_request__free_unpacked(r, NULL);
}

static void query(const uint8_t *req, size_t len)
{
    char err[512] = "";
    Trellis__V1__QueryRequest *r =
        trellis__v1__query_request__unpack(NULL, len, req);
    if (r)
        refused(tm_validate_gid(r->gid, err, sizeof(err)), err);
    trellis__v1__query_request__free_unpacked(r, NULL);
}

static void list(const uint8_t *req, size_t len)
{
    Trellis__V1__ListRequest *r =
        trellis__v1__list_request__unpack(NULL, len, req);
    trellis__v1__list_request__free_unpacked(r, NULL);
}

static void retry_now(const uint8_t *req, size_t len)
{
    char err[512] = "";
    Trellis__V1__RetryNowRequest *r =
        trellis__v1__retry_now_request__unpack(NULL, len, req);
    if (r)
        refused(tm_validate_gid(r->gid, err, sizeof(err)), err);
    trellis__v1__retry_now_request__free_unpacked(r, NULL);
}

/* ForceStop's checks (tm_validate_force_stop, as tm_admin runs them), then
 * the model change of force_stop_live. */
static void force_stop(const uint8_t *req, size_t len)
{
    char err[512] = "";
    Trellis__V1__ForceStopRequest *r =
        trellis__v1__force_stop_request__unpack(NULL, len, req);
    if (!r || refused(tm_validate_force_stop(r, err, sizeof(err)), err))
        goto out;
    char reason[TM_REASON_MAX + 64];
    snprintf(reason, sizeof(reason), "force-stopped by operator: %s",
             r->reason);
    tm_trans_t *tx = tm_trans_new(r->gid, TM_TX_SUBMITTED, FZ_NOW_MS);
    fz_require(tx && tm_set_string(&tx->reason, reason) == 0, "out of memory");
    tm_plan_finish(tx, TM_TX_FAILED, FZ_NOW_MS);
    fz_model_reply(tx);
    tm_trans_free(tx);
out:
    trellis__v1__force_stop_request__free_unpacked(r, NULL);
}

static void set_log_level(const uint8_t *req, size_t len)
{
    Trellis__V1__SetLogLevelRequest *r =
        trellis__v1__set_log_level_request__unpack(NULL, len, req);
    tm_log_level_t level;
    if (r && *r->level && tm_log_parse_level(r->level, &level) == 0)
        fz_require(level >= TM_LOG_DEBUG && level <= TM_LOG_ERROR,
                   "a log level out of range");
    trellis__v1__set_log_level_request__free_unpacked(r, NULL);
}

/* StartWorkflow's checks, then the head as the engine builds it: a
 * workflow of one branch that the same request describes again. */
static void start_workflow(const uint8_t *req, size_t len)
{
    tm_limits_t lim = fz_default_limits();
    char err[512] = "";
    Trellis__V1__StartWorkflowRequest *r =
        trellis__v1__start_workflow_request__unpack(NULL, len, req);
    if (!r ||
        refused(tm_validate_start_workflow(r, &lim, err, sizeof(err)), err))
        goto out;
    tm_trans_t *tx = tm_trans_new(r->gid, TM_TX_PREPARED, FZ_NOW_MS);
    tm_trans_t *again = tm_trans_new(r->gid, TM_TX_PREPARED, FZ_NOW_MS);
    fz_require(tx && again &&
                   tm_request_add_workflow_head(tx, r, TM_MODE_WORKFLOW) == 0 &&
                   tm_request_add_workflow_head(again, r, TM_MODE_WORKFLOW) ==
                       0,
               "out of memory building a workflow");
    fz_require(tm_plan_is_workflow(tx), "a started workflow is not one");
    fz_require(tm_request_same_head(&tx->branches[0], &again->branches[0]),
               "the same StartWorkflow twice is not the same workflow");
    fz_model_check(tx, &lim);
    fz_model_reply(tx);
    tm_trans_free(tx);
    tm_trans_free(again);
out:
    trellis__v1__start_workflow_request__free_unpacked(r, NULL);
}

/* RecordStep's checks: only OK and ABORTED within the limits pass. */
static void record_step(const uint8_t *req, size_t len)
{
    tm_limits_t lim = fz_default_limits();
    char err[512] = "";
    Trellis__V1__RecordStepRequest *r =
        trellis__v1__record_step_request__unpack(NULL, len, req);
    if (r && !refused(tm_validate_record_step(r, &lim, err, sizeof(err)), err))
        fz_require((r->code == 0 || r->code == 10) &&
                       r->result.len <= lim.max_result,
                   "a RecordStep outside its rules was accepted");
    trellis__v1__record_step_request__free_unpacked(r, NULL);
}

/* A topic's subscribers, made up from the topic's length: none for a
 * length divisible by 4 (a topic nobody subscribes to), else 1..3. */
static const char *const fake_subscribers[] = {"127.0.0.1:7701/t.T/One",
                                               "127.0.0.1:7702/t.T/Two",
                                               "127.0.0.1:7703/t.T/Three"};

static size_t subscribers_of(const char *topic)
{
    return strlen(topic) % 4 ? strlen(topic) % 4 : 0;
}

/* PrepareMessage: the checks, the layout (head, one delivery per target
 * or subscriber, within the limits or refused with a reason), the
 * content hash (never 0, the same for the same request), the plan's
 * view of a message. */
static void prepare_message(const uint8_t *req, size_t len)
{
    tm_limits_t lim = fz_default_limits();
    char err[512] = "";
    Trellis__V1__PrepareMessageRequest *r =
        trellis__v1__prepare_message_request__unpack(NULL, len, req);
    if (!r ||
        refused(tm_validate_prepare_message(r, &lim, err, sizeof(err)), err))
        goto out;
    tm_step_targets_t *subs = calloc(r->n_steps, sizeof(*subs));
    fz_require(subs != NULL, "out of memory");
    size_t want = 1;
    int no_subscriber = 0;
    for (size_t i = 0; i < r->n_steps; i++) {
        const char *topic = r->steps[i]->topic;
        if (topic && *topic) {
            subs[i] =
                (tm_step_targets_t){fake_subscribers, subscribers_of(topic)};
            no_subscriber |= subs[i].n == 0;
        }
        want += topic && *topic ? subs[i].n : 1;
    }
    tm_trans_t *tx = tm_trans_new(r->gid, TM_TX_PREPARED, FZ_NOW_MS);
    fz_require(tx != NULL, "out of memory");
    int rc = tm_request_add_message(tx, r, subs, &lim, err, sizeof(err));
    if (no_subscriber || want > lim.max_branches) {
        fz_require(rc != 0 && err[0] && tx->n_branches == 0,
                   "a message that cannot be laid out was accepted");
    } else {
        fz_require(rc == 0 && tx->n_branches == want,
                   "a message got another number of deliveries");
        fz_require(tm_plan_is_message(tx) && !tm_plan_is_workflow(tx),
                   "a message is not one");
        uint64_t h = tm_request_message_hash(r);
        fz_require(h != 0 && h == tm_request_message_hash(r),
                   "a message's hash is 0 or not stable");
        fz_model_check(tx, &lim);
        fz_model_reply(tx);
    }
    tm_trans_free(tx);
    free(subs);
out:
    trellis__v1__prepare_message_request__free_unpacked(r, NULL);
}

/* The topic requests: what passes names a valid topic (and an allowed
 * target, to subscribe). */
static void subscribe(const uint8_t *req, size_t len)
{
    tm_limits_t lim = fz_default_limits();
    char err[512] = "";
    Trellis__V1__SubscribeRequest *r =
        trellis__v1__subscribe_request__unpack(NULL, len, req);
    if (r && !refused(tm_validate_subscribe(r, &lim, err, sizeof(err)), err))
        fz_require(tm_validate_topic(r->topic, err, sizeof(err)) == 0,
                   "a subscription to a bad topic was accepted");
    trellis__v1__subscribe_request__free_unpacked(r, NULL);
}

static void unsubscribe(const uint8_t *req, size_t len)
{
    char err[512] = "";
    Trellis__V1__UnsubscribeRequest *r =
        trellis__v1__unsubscribe_request__unpack(NULL, len, req);
    if (r)
        refused(tm_validate_unsubscribe(r, err, sizeof(err)), err);
    trellis__v1__unsubscribe_request__free_unpacked(r, NULL);
}

static void list_subscriptions(const uint8_t *req, size_t len)
{
    char err[512] = "";
    Trellis__V1__ListSubscriptionsRequest *r =
        trellis__v1__list_subscriptions_request__unpack(NULL, len, req);
    if (r)
        refused(tm_validate_list_subscriptions(r, err, sizeof(err)), err);
    trellis__v1__list_subscriptions_request__free_unpacked(r, NULL);
}

static void session(const uint8_t *req, size_t len)
{
    fz_in_t in = fz_in(req, len);
    fz_session_run(&in);
}

/* The first byte of an input picks the family by its index here: append
 * new families at the end so the checked-in seeds keep their meaning. */
static const family_fn families[] = {
    new_gid,            /* 0 */
    begin,              /* 1 */
    register_branch,    /* 2 */
    submit,             /* 3 */
    abort_request,      /* 4 */
    query,              /* 5 */
    list,               /* 6 */
    health,             /* 7 */
    session,            /* 8 */
    retry_now,          /* 9 */
    force_stop,         /* 10 */
    set_log_level,      /* 11 */
    start_workflow,     /* 12 */
    record_step,        /* 13 */
    prepare_message,    /* 14 */
    subscribe,          /* 15 */
    unsubscribe,        /* 16 */
    list_subscriptions, /* 17 */
};

/* The request type of each family, as trellisd registers it with
 * tm_server_add_method; NULL for the session, several requests in one. */
static const ProtobufCMessageDescriptor *const request_types[] = {
    &trellis__v1__new_gid_request__descriptor,
    &trellis__v1__begin_request__descriptor,
    &trellis__v1__register_branch_request__descriptor,
    &trellis__v1__submit_request__descriptor,
    &trellis__v1__abort_request__descriptor,
    &trellis__v1__query_request__descriptor,
    &trellis__v1__list_request__descriptor,
    &grpc__health__v1__health_check_request__descriptor,
    NULL,
    &trellis__v1__retry_now_request__descriptor,
    &trellis__v1__force_stop_request__descriptor,
    &trellis__v1__set_log_level_request__descriptor,
    &trellis__v1__start_workflow_request__descriptor,
    &trellis__v1__record_step_request__descriptor,
    &trellis__v1__prepare_message_request__descriptor,
    &trellis__v1__subscribe_request__descriptor,
    &trellis__v1__unsubscribe_request__descriptor,
    &trellis__v1__list_subscriptions_request__descriptor,
};

/* tm_server's check before the handler: 1 if the request is refused
 * there. */
static int refused_on_the_wire(const ProtobufCMessageDescriptor *d,
                               const uint8_t *req, size_t len)
{
    char err[320] = "";
    int rc = trellis_wire_check_strings(d, req, len, err, sizeof(err));
    if (rc == TRELLIS_WIRE_NUL)
        fz_require(strstr(err, "field ") && strstr(err, "contains a NUL byte"),
                   "a NUL refusal that names no field");
    if (rc != TRELLIS_WIRE_OK)
        return 1;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, req);
    if (m) {
        fz_require_repack_checks(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t n = sizeof(families) / sizeof(families[0]);
    _Static_assert(sizeof(families) / sizeof(families[0]) ==
                       sizeof(request_types) / sizeof(request_types[0]),
                   "a request type for every family");
    size_t f = data[0] % n;
    if (request_types[f] &&
        refused_on_the_wire(request_types[f], data + 1, size - 1))
        return 0;
    families[f](data + 1, size - 1);
    return 0;
}
