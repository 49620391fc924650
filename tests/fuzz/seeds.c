/*
 * trellis-fuzz-seeds: writes the seed corpus of every fuzz target, small
 * valid inputs from which the fuzzer mutates. Run by hand after a format
 * change (README, "Fuzzing"); its output is checked in under
 * tests/fuzz/corpus/<target>/ and a run overwrites only the files it
 * names, so inputs kept from fuzzing (regressions) stay.
 *
 * Usage: trellis-fuzz-seeds CORPUS_DIR
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtm/dtmgimp.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "trellis/v1/tm.pb-c.h"

/* A generator that exits at once: nothing it allocates needs freeing. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}

/* ---- output ------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static const char *corpus_dir;

static void put(buf_t *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_u8(buf_t *b, uint8_t v)
{
    put(b, &v, 1);
}

static void put_msg(buf_t *b, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *tmp = malloc(n ? n : 1);
    if (!tmp)
        abort();
    protobuf_c_message_pack(m, tmp);
    put(b, tmp, n);
    free(tmp);
}

/* A session record: kind, 2-byte length, message (fuzz_session.h). */
static void put_record(buf_t *b, uint8_t kind, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > 0xffff)
        abort();
    put_u8(b, kind);
    put_u8(b, (uint8_t)(n >> 8));
    put_u8(b, (uint8_t)n);
    put_msg(b, m);
}

static void write_seed(const char *target, const char *name, const buf_t *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", corpus_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", corpus_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->n, f) != b->n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void write_text(const char *target, const char *name, const char *text)
{
    buf_t b = {0};
    put(&b, text, strlen(text));
    write_seed(target, name, &b);
}

/* One message behind a selector byte. */
static void write_msg(const char *target, const char *name, uint8_t sel,
                      const ProtobufCMessage *m)
{
    buf_t b = {0};
    put_u8(&b, sel);
    put_msg(&b, m);
    write_seed(target, name, &b);
}

/* ---- message builders (never freed: the program exits) ------------------ */

static void *alloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        abort();
    return p;
}

static Trellis__V1__TransOptions *options(uint32_t timeout_ms, int wait,
                                          const char *hkey, const char *hval)
{
    Trellis__V1__TransOptions *o = alloc(sizeof(*o));
    trellis__v1__trans_options__init(o);
    o->timeout_to_fail_ms = timeout_ms;
    o->wait_result = wait;
    if (hkey) {
        Trellis__V1__Header *h = alloc(sizeof(*h));
        trellis__v1__header__init(h);
        h->key = (char *)hkey;
        h->value = (char *)hval;
        o->branch_headers = alloc(sizeof(*o->branch_headers));
        o->branch_headers[0] = h;
        o->n_branch_headers = 1;
    }
    return o;
}

static Trellis__V1__SagaStep *step(const char *action, const char *comp,
                                   const char *payload)
{
    Trellis__V1__SagaStep *s = alloc(sizeof(*s));
    trellis__v1__saga_step__init(s);
    s->action = (char *)action;
    s->compensate = (char *)(comp ? comp : "");
    s->payload.data = (uint8_t *)payload;
    s->payload.len = payload ? strlen(payload) : 0;
    return s;
}

static void depends(Trellis__V1__SagaStep *s, size_t n, const uint32_t *deps)
{
    s->depends_on = alloc(n * sizeof(*s->depends_on));
    memcpy(s->depends_on, deps, n * sizeof(*deps));
    s->n_depends_on = n;
}

static Trellis__V1__SubmitRequest *submit(const char *gid, size_t n,
                                          Trellis__V1__SagaStep **steps)
{
    Trellis__V1__SubmitRequest *r = alloc(sizeof(*r));
    trellis__v1__submit_request__init(r);
    r->gid = (char *)gid;
    r->n_steps = n;
    r->steps = steps;
    return r;
}

static Trellis__V1__BeginRequest *begin(const char *gid,
                                        Trellis__V1__TransOptions *o)
{
    Trellis__V1__BeginRequest *r = alloc(sizeof(*r));
    trellis__v1__begin_request__init(r);
    r->gid = (char *)gid;
    r->options = o;
    return r;
}

/* A branch with up to two phase-2 ops (kind 0: none). */
static Trellis__V1__RegisterBranchRequest *
reg(const char *gid, const char *id, Trellis__V1__BranchMode mode,
    Trellis__V1__OpKind k1, const char *t1, Trellis__V1__OpKind k2,
    const char *t2, const char *payload)
{
    Trellis__V1__RegisterBranchRequest *r = alloc(sizeof(*r));
    trellis__v1__register_branch_request__init(r);
    r->gid = (char *)gid;
    r->branch_id = (char *)id;
    r->mode = mode;
    r->ops = alloc(2 * sizeof(*r->ops));
    Trellis__V1__OpKind kinds[2] = {k1, k2};
    const char *targets[2] = {t1, t2};
    for (int i = 0; i < 2; i++) {
        if (!kinds[i])
            continue;
        Trellis__V1__BranchOp *op = alloc(sizeof(*op));
        trellis__v1__branch_op__init(op);
        op->op = kinds[i];
        op->target = (char *)targets[i];
        r->ops[r->n_ops++] = op;
    }
    r->payload.data = (uint8_t *)payload;
    r->payload.len = strlen(payload);
    return r;
}

static Trellis__V1__AbortRequest *abort_req(const char *gid, const char *why)
{
    Trellis__V1__AbortRequest *r = alloc(sizeof(*r));
    trellis__v1__abort_request__init(r);
    r->gid = (char *)gid;
    r->reason = (char *)why;
    return r;
}

/* ---- tm_request ---------------------------------------------------------- */

/* Family bytes of fuzz_tm_request.c and record kinds of fuzz_session.h. */
enum {
    F_NEW_GID,
    F_BEGIN,
    F_REGISTER,
    F_SUBMIT,
    F_ABORT,
    F_QUERY,
    F_LIST,
    F_HEALTH,
    F_SESSION,
    F_RETRY_NOW,
    F_FORCE_STOP,
    F_SET_LOG_LEVEL,
    F_START_WORKFLOW,
    F_RECORD_STEP,
    F_PREPARE_MESSAGE,
    F_SUBSCRIBE,
    F_UNSUBSCRIBE,
    F_LIST_SUBSCRIPTIONS
};
enum { R_BEGIN, R_REGISTER, R_SUBMIT, R_ABORT, R_STOP };
/* Participant results in a session's drive bytes. */
enum {
    A_OK = 0,
    A_FAIL = 1,
    A_ONGOING = 2,
    A_UNKNOWN = 3,
    A_TIMEOUT = 0x40,
    A_SLOW = 0x80
};

#define FLIGHT "127.0.0.1:7401/trip.v1.Flight/"
#define HOTEL "[::1]:7402/trip.v1.Hotel/"
#define CAR "localhost:65535/trip.v1.Car/"
#define BANK_A "127.0.0.1:7501/bank.v1.Bank/"
#define ORDERS "127.0.0.1:7601/xa.v1.Orders/"

static Trellis__V1__SubmitRequest *trip(const char *gid)
{
    Trellis__V1__SagaStep **s = alloc(3 * sizeof(*s));
    s[0] = step(FLIGHT "Book", FLIGHT "Cancel", "trip=T42 who=alice seats=2");
    s[1] = step(HOTEL "Book", HOTEL "Cancel", "trip=T42 rooms=1 nights=3");
    s[2] = step(CAR "Book", CAR "Cancel", "trip=T42 cars=1 days=3");
    return submit(gid, 3, s);
}

/* Four steps: 0 and 1 start at once, 2 after 0, 3 after 1 and 2. */
static Trellis__V1__SubmitRequest *diamond(const char *gid)
{
    Trellis__V1__SagaStep **s = alloc(4 * sizeof(*s));
    for (int i = 0; i < 4; i++)
        s[i] = step(FLIGHT "Book", i % 2 ? NULL : FLIGHT "Cancel", "x");
    depends(s[2], 1, (const uint32_t[]){0});
    depends(s[3], 2, (const uint32_t[]){1, 2});
    Trellis__V1__SubmitRequest *r = submit(gid, 4, s);
    r->concurrent = 1;
    r->options = options(0, 1, NULL, NULL);
    return r;
}

static Trellis__V1__RegisterBranchRequest *tcc_branch(const char *gid,
                                                      const char *id)
{
    return reg(gid, id, TRELLIS__V1__BRANCH_MODE__MODE_TCC,
               TRELLIS__V1__OP_KIND__OP_CONFIRM, BANK_A "TransConfirm",
               TRELLIS__V1__OP_KIND__OP_CANCEL, BANK_A "TransCancel",
               "account=alice amount=-30");
}

static Trellis__V1__RegisterBranchRequest *xa_branch(const char *gid,
                                                     const char *id)
{
    return reg(gid, id, TRELLIS__V1__BRANCH_MODE__MODE_XA,
               TRELLIS__V1__OP_KIND__OP_COMMIT, ORDERS "Commit",
               TRELLIS__V1__OP_KIND__OP_ROLLBACK, ORDERS "Rollback",
               "order=7 sku=A1 qty=2");
}

static void single_requests(void)
{
    const char *t = "tm_request";
    Trellis__V1__NewGidRequest ng = TRELLIS__V1__NEW_GID_REQUEST__INIT;
    write_msg(t, "new-gid", F_NEW_GID, &ng.base);
    write_msg(t, "begin", F_BEGIN,
              &begin("tcc-1", options(5000, 0, "x-tenant", "acme"))->base);
    write_msg(t, "register-tcc", F_REGISTER, &tcc_branch("tcc-1", "01")->base);
    write_msg(t, "register-xa", F_REGISTER, &xa_branch("xa-1", "b1")->base);
    write_msg(t, "register-saga", F_REGISTER,
              &reg("gtx-1", "s.1", TRELLIS__V1__BRANCH_MODE__MODE_SAGA,
                   TRELLIS__V1__OP_KIND__OP_COMPENSATE, FLIGHT "Cancel", 0,
                   NULL, "seats=1")
                   ->base);
    write_msg(t, "submit-chain", F_SUBMIT, &trip("saga-1")->base);
    write_msg(t, "submit-diamond", F_SUBMIT, &diamond("saga-2")->base);
    write_msg(t, "abort", F_ABORT, &abort_req("tcc-1", "user left")->base);
    Trellis__V1__QueryRequest q = TRELLIS__V1__QUERY_REQUEST__INIT;
    q.gid = "1a1fd37ef85-37db76-0";
    write_msg(t, "query", F_QUERY, &q.base);
    Trellis__V1__ListRequest l = TRELLIS__V1__LIST_REQUEST__INIT;
    l.status = TRELLIS__V1__TRANS_STATUS__TRANS_SUBMITTED;
    l.page_size = 10;
    l.page_token = "1700000000000:saga-1";
    write_msg(t, "list", F_LIST, &l.base);
    Grpc__Health__V1__HealthCheckRequest h =
        GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    h.service = "trellis.v1.TM";
    write_msg(t, "health", F_HEALTH, &h.base);
    Trellis__V1__RetryNowRequest rn = TRELLIS__V1__RETRY_NOW_REQUEST__INIT;
    rn.gid = "saga-1";
    write_msg(t, "retry-now", F_RETRY_NOW, &rn.base);
    Trellis__V1__ForceStopRequest fs = TRELLIS__V1__FORCE_STOP_REQUEST__INIT;
    fs.gid = "saga-1";
    fs.reason = "participant retired";
    write_msg(t, "force-stop", F_FORCE_STOP, &fs.base);
    Trellis__V1__SetLogLevelRequest ll =
        TRELLIS__V1__SET_LOG_LEVEL_REQUEST__INIT;
    ll.level = "debug";
    write_msg(t, "set-log-level", F_SET_LOG_LEVEL, &ll.base);
    Trellis__V1__StartWorkflowRequest sw =
        TRELLIS__V1__START_WORKFLOW_REQUEST__INIT;
    sw.gid = "wf-1";
    sw.name = "transfer";
    sw.input.data = (uint8_t *)"from=a to=b amount=30";
    sw.input.len = strlen((const char *)sw.input.data);
    sw.resume_target = "127.0.0.1:7405/trellis.v1.Workflow/Resume";
    sw.options = options(5000, 0, "x-tenant", "acme");
    write_msg(t, "start-workflow", F_START_WORKFLOW, &sw.base);
    Trellis__V1__RecordStepRequest rs = TRELLIS__V1__RECORD_STEP_REQUEST__INIT;
    rs.gid = "wf-1";
    rs.branch_id = "01";
    rs.code = 10;
    rs.result.data = (uint8_t *)"\x00booking=42";
    rs.result.len = 11;
    rs.message = "insufficient funds";
    write_msg(t, "record-step", F_RECORD_STEP, &rs.base);
    Trellis__V1__MessageStep ms[2] = {TRELLIS__V1__MESSAGE_STEP__INIT,
                                      TRELLIS__V1__MESSAGE_STEP__INIT};
    Trellis__V1__MessageStep *msp[2] = {&ms[0], &ms[1]};
    ms[0].target = "127.0.0.1:7601/stock.v1.Stock/Reserve";
    ms[0].payload.data = (uint8_t *)"order=7";
    ms[0].payload.len = 7;
    ms[1].topic = "order.created"; /* 13 characters: one subscriber */
    ms[1].payload = ms[0].payload;
    Trellis__V1__PrepareMessageRequest pm =
        TRELLIS__V1__PREPARE_MESSAGE_REQUEST__INIT;
    pm.gid = "msg-1";
    pm.steps = msp;
    pm.n_steps = 2;
    pm.query_prepared = "127.0.0.1:7600/order.v1.Order/QueryPrepared";
    pm.options = options(3000, 0, "x-tenant", "acme");
    write_msg(t, "prepare-message", F_PREPARE_MESSAGE, &pm.base);
    Trellis__V1__SubscribeRequest sb = TRELLIS__V1__SUBSCRIBE_REQUEST__INIT;
    sb.topic = "order.created";
    sb.target = "127.0.0.1:7602/ship.v1.Shipping/OnOrder";
    sb.remark = "shipping";
    write_msg(t, "subscribe", F_SUBSCRIBE, &sb.base);
    Trellis__V1__UnsubscribeRequest us = TRELLIS__V1__UNSUBSCRIBE_REQUEST__INIT;
    us.topic = sb.topic;
    us.target = sb.target;
    write_msg(t, "unsubscribe", F_UNSUBSCRIBE, &us.base);
    Trellis__V1__ListSubscriptionsRequest ls =
        TRELLIS__V1__LIST_SUBSCRIPTIONS_REQUEST__INIT;
    ls.topic = "order.created";
    write_msg(t, "list-subscriptions", F_LIST_SUBSCRIPTIONS, &ls.base);
}

static void start_session(buf_t *b, uint8_t limits)
{
    memset(b, 0, sizeof(*b));
    put_u8(b, F_SESSION);
    put_u8(b, limits);
}

static void put_bytes(buf_t *b, size_t n, const uint8_t *v)
{
    put(b, v, n);
}

static void sessions(void)
{
    const char *t = "tm_request";
    buf_t b;
    start_session(&b, 0); /* saga, every step succeeds */
    put_record(&b, R_SUBMIT, &trip("saga-1")->base);
    write_seed(t, "session-saga-ok", &b);

    start_session(&b, 0); /* the car step fails: compensate backwards */
    put_record(&b, R_SUBMIT, &trip("saga-2")->base);
    put_u8(&b, R_STOP);
    put_bytes(&b, 3, (const uint8_t[]){A_OK, A_ONGOING, A_OK});
    put_bytes(&b, 1, (const uint8_t[]){A_FAIL});
    write_seed(t, "session-saga-fail", &b);

    start_session(&b, 0); /* diamond; 0 is slow while 1 fails: 0 is late */
    put_record(&b, R_SUBMIT, &diamond("saga-3")->base);
    put_u8(&b, R_STOP);
    put_bytes(&b, 2, (const uint8_t[]){A_SLOW, A_FAIL});
    put_bytes(&b, 1, (const uint8_t[]){A_OK});
    write_seed(t, "session-saga-late", &b);

    start_session(&b, 0); /* TCC: begin, two branches, submit */
    put_record(&b, R_BEGIN, &begin("tcc-1", NULL)->base);
    put_record(&b, R_REGISTER, &tcc_branch("tcc-1", "01")->base);
    put_record(&b, R_REGISTER, &tcc_branch("tcc-1", "02")->base);
    put_record(&b, R_SUBMIT, &submit("tcc-1", 0, NULL)->base);
    put_u8(&b, R_STOP);
    put_bytes(&b, 2, (const uint8_t[]){A_UNKNOWN, A_OK});
    write_seed(t, "session-tcc-ok", &b);

    start_session(&b, 0); /* TCC aborted by the initiator */
    put_record(&b, R_BEGIN, &begin("tcc-2", options(0, 0, "x-a", "1"))->base);
    put_record(&b, R_REGISTER, &tcc_branch("tcc-2", "01")->base);
    put_record(&b, R_REGISTER, &tcc_branch("tcc-2", "01")->base);
    put_record(&b, R_ABORT, &abort_req("tcc-2", "no funds")->base);
    write_seed(t, "session-tcc-abort", &b);

    start_session(&b, 0); /* XA whose initiator vanished: timeout */
    put_record(&b, R_BEGIN, &begin("xa-1", options(1000, 0, NULL, NULL))->base);
    put_record(&b, R_REGISTER, &xa_branch("xa-1", "b1")->base);
    put_u8(&b, R_STOP);
    put_bytes(&b, 2, (const uint8_t[]){1, A_OK});
    write_seed(t, "session-xa-timeout", &b);

    start_session(&b, 0); /* hybrid: TCC, XA, then two TM-run steps */
    put_record(&b, R_BEGIN, &begin("gtx-1", NULL)->base);
    put_record(&b, R_REGISTER, &tcc_branch("gtx-1", "01")->base);
    put_record(&b, R_REGISTER, &xa_branch("gtx-1", "02")->base);
    put_record(&b, R_SUBMIT, &trip("gtx-1")->base);
    put_u8(&b, R_STOP);
    put_bytes(&b, 3, (const uint8_t[]){A_OK, A_TIMEOUT | A_OK, A_FAIL});
    write_seed(t, "session-hybrid", &b);

    start_session(&b, 1); /* tight limits: four steps fill the transaction */
    put_record(&b, R_SUBMIT, &diamond("saga-4")->base);
    put_record(&b, R_SUBMIT, &trip("saga-4")->base);
    write_seed(t, "session-tight", &b);
}

/* With --max-steps 300, a step may depend on more than 256 others. */
static void deps_over_256(void)
{
    enum { N = 258 };
    Trellis__V1__SagaStep **s = alloc(N * sizeof(*s));
    for (int i = 0; i < N; i++)
        s[i] = step("h:1/a.B/C", NULL, NULL);
    uint32_t deps[N - 1];
    for (uint32_t i = 0; i < N - 1; i++)
        deps[i] = i;
    depends(s[N - 1], N - 1, deps);
    buf_t b;
    start_session(&b, 2);
    put_record(&b, R_SUBMIT, &submit("deps-1", N, s)->base);
    write_seed("tm_request", "regress-deps-over-256", &b);
}

/* ---- text targets ----------------------------------------------------------
 */

static void targets(void)
{
    write_text("target", "ipv4", FLIGHT "Book");
    write_text("target", "ipv6", "[::1]:7400/trellis.v1.TM/Submit");
    write_text("target", "name", CAR "Book");
    write_text("target", "bad-port", "host:0/a.B/C");
    write_text("target", "no-package", "127.0.0.1:7401/Flight/Book");
}

static void branch_metadata(void)
{
    const char *t = "branch_md";
    write_text(t, "tcc-try",
               "/bank.v1.Bank/TransTry\n"
               "dtm-gid=1a1fd37ef85-37db76-0\n"
               "dtm-trans_type=tcc\n"
               "dtm-branch_id=01\n"
               "dtm-op=try\n"
               "user-agent=grpc-c/29.0.0 (linux; chttp2)\n");
    write_text(t, "saga-headers",
               "/trip.v1.Flight/Cancel\n"
               "dtm-gid=saga-1\n"
               "dtm-trans_type=saga\n"
               "dtm-branch_id=02\n"
               "dtm-op=compensate\n"
               "x-tenant=acme\n"
               "x-request-id=42\n"
               "grpc-accept-encoding=identity\n"
               "trace-bin=AAEC\n");
    write_text(t, "xa-prepare",
               "/xa.v1.Orders/Prepare\n"
               "dtm-gid=xa-1\n"
               "dtm-trans_type=xa\n"
               "dtm-branch_id=b1\n"
               "dtm-op=prepare\n");
    write_text(t, "twice-and-missing",
               "/a.B/C\n"
               "dtm-gid=first\n"
               "dtm-gid=second \n"
               "dtm-op=cancel\n"
               "x-a\n"
               "x-a=2\n");
}

static void allowlists(void)
{
    write_text("allow", "default",
               "127.0.0.1:*,localhost:*,[::1]:*\n127.0.0.1:7401\n"
               "LOCALHOST:80\n10.0.0.1:80\n[::1]:1\n");
    write_text("allow", "wildcards",
               "*.payments.svc:50051 , 10.0.*.*:5*\n"
               "a.payments.svc:50051\n10.0.1.2:5001\n10.0.1.2:6001\n");
    write_text("allow", "anything", "*:*\nhost:1\n");
    write_text("allow", "empty", " , \n");
}

static void config(void)
{
    write_text("config", "listen-threads",
               "--listen\n127.0.0.1:0\n--threads=4\n--data-dir\n./d\n"
               "--log-level=debug\n--port-file=./port\n");
    write_text("config", "limits",
               "--max-steps=300\n--max-payload=65536\n--retry-limit=5\n"
               "--timeout-ms=60000\n--retry-interval-ms=10\n"
               "--request-timeout-ms=3000\n--max-backoff-ms=60000\n");
    write_text("config", "help", "--threads\n2\n--help\n");
    write_text("config", "bad-number", "--threads=-1\n");
    write_text("config", "store-tls",
               "--store=mysql\n--mysql-host\n127.0.0.1\n--mysql-port=3306\n"
               "--node-id=n1\n--lease-ms=5000\n--tls-cert=c.pem\n"
               "--tls-key=k.pem\n--allow-targets=127.0.0.1:*, *.svc:50051\n");
    write_text("config_text", "full",
               "# trellisd.conf\n"
               "listen = 0.0.0.0:7400\n"
               "data-dir = /var/lib/trellis   # the store\n"
               "threads = 4\n"
               "log-level = warn\n"
               "max-steps = 300\n"
               "allow-targets = 127.0.0.1:*, *.payments.svc:50051\n"
               "\n"
               "store = mysql\r\n"
               "mysql-host = db\n"
               "mysql-port = 3306\n"
               "retention-s = 86400\n");
    write_text("config_text", "tls",
               "tls-cert = /etc/trellis/cert.pem\n"
               "tls-key = /etc/trellis/key.pem\n"
               "tls-client-ca = /etc/trellis/ca.pem\n"
               "participant-tls-ca = /etc/trellis/ca.pem\n");
    write_text("config_text", "twice", "threads = 2\nthreads = 3\n");
    write_text("config_text", "bad-line", "listen 127.0.0.1:1\n");
}

/* ---- sdk_reply -------------------------------------------------------------
 */

static Trellis__V1__Transaction *transaction(const char *gid, int branches)
{
    Trellis__V1__Transaction *t = alloc(sizeof(*t));
    trellis__v1__transaction__init(t);
    t->gid = (char *)gid;
    t->status = TRELLIS__V1__TRANS_STATUS__TRANS_FAILED;
    t->created_ms = 1700000000000;
    t->reason = "branch 02 action failed: no rooms left";
    for (int i = 0; i < branches; i++) {
        Trellis__V1__Branch *b = alloc(sizeof(*b));
        trellis__v1__branch__init(b);
        b->branch_id = i ? "02" : "01";
        b->mode = TRELLIS__V1__BRANCH_MODE__MODE_SAGA;
        b->payload.data = (uint8_t *)"seats=2";
        b->payload.len = 7;
        if (i) {
            b->depends_on = alloc(sizeof(*b->depends_on));
            b->n_depends_on = 1;
        }
        Trellis__V1__Op *op = alloc(sizeof(*op));
        trellis__v1__op__init(op);
        op->op = TRELLIS__V1__OP_KIND__OP_ACTION;
        op->target = FLIGHT "Book";
        op->status = TRELLIS__V1__OP_STATUS__OP_SUCCEEDED;
        op->attempts = 2;
        op->attempt_ms = alloc(2 * sizeof(*op->attempt_ms));
        op->attempt_ms[0] = 1700000000001;
        op->attempt_ms[1] = 1700000001001;
        op->n_attempt_ms = 2;
        b->ops = alloc(sizeof(*b->ops));
        b->ops[0] = op;
        b->n_ops = 1;
        t->branches = realloc(t->branches, (size_t)(i + 1) * sizeof(b));
        t->branches[t->n_branches++] = b;
    }
    return t;
}

static void sdk_replies(void)
{
    Trellis__V1__QueryReply q = TRELLIS__V1__QUERY_REPLY__INIT;
    q.trans = transaction("saga-2", 2);
    write_msg("sdk_reply", "query", 0, &q.base);
    Trellis__V1__ListReply l = TRELLIS__V1__LIST_REPLY__INIT;
    Trellis__V1__Transaction *items[2] = {transaction("a", 0),
                                          transaction("b", 0)};
    l.transactions = items;
    l.n_transactions = 2;
    l.next_page_token = "1700000000000:b";
    write_msg("sdk_reply", "list", 1, &l.base);
    Trellis__V1__SubmitReply s = TRELLIS__V1__SUBMIT_REPLY__INIT;
    s.gid = "saga-2";
    s.status = TRELLIS__V1__TRANS_STATUS__TRANS_FAILED;
    s.reason = "branch 02 action failed: no rooms left";
    write_msg("sdk_reply", "submit", 2, &s.base);
}

/* JSON text behind fuzz_dtm's selector 0. */
static void write_dtm_json(const char *name, const char *text)
{
    buf_t b = {0};
    put_u8(&b, 0);
    put(&b, text, strlen(text));
    write_seed("dtm", name, &b);
}

/* A DTM workflow as its workflow SDK sends it: PrepareWorkflow, one
 * progress, the closing Submit. */
static void dtm_workflow_requests(void)
{
    Dtmgimp__DtmRequest r = DTMGIMP__DTM_REQUEST__INIT;
    Dtmgimp__DtmRequest__ReqExtraEntry x[2] = {
        DTMGIMP__DTM_REQUEST__REQ_EXTRA_ENTRY__INIT,
        DTMGIMP__DTM_REQUEST__REQ_EXTRA_ENTRY__INIT};
    Dtmgimp__DtmRequest__ReqExtraEntry *xp[] = {&x[0], &x[1]};
    r.gid = "wf-1";
    r.transtype = "workflow";
    r.steps = "null";
    r.customeddata = "{\"data\":\"aGVsbG8=\",\"name\":\"transfer\"}";
    r.queryprepared = "127.0.0.1:7002/workflow.Workflow/Execute";
    write_msg("dtm", "prepare-workflow", 6, &r.base);
    x[0].key = "status";
    x[0].value = "failed";
    x[1].key = "rollback_reason";
    x[1].value = "no money";
    r.reqextra = xp;
    r.n_reqextra = 2;
    write_msg("dtm", "submit-workflow", 1, &r.base);
    Dtmgimp__DtmBranchRequest b = DTMGIMP__DTM_BRANCH_REQUEST__INIT;
    Dtmgimp__DtmBranchRequest__DataEntry d[2] = {
        DTMGIMP__DTM_BRANCH_REQUEST__DATA_ENTRY__INIT,
        DTMGIMP__DTM_BRANCH_REQUEST__DATA_ENTRY__INIT};
    Dtmgimp__DtmBranchRequest__DataEntry *dp[] = {&d[0], &d[1]};
    d[0].key = "status";
    d[0].value = "succeed";
    d[1].key = "op";
    d[1].value = "action";
    b.gid = "wf-1";
    b.transtype = "workflow";
    b.branchid = "01";
    b.busipayload.data = (uint8_t *)"reply";
    b.busipayload.len = 5;
    b.data = dp;
    b.n_data = 2;
    write_msg("dtm", "register-workflow", 4, &b.base);
}

/* DTM's requests as its Go SDK sends them (fuzz_dtm: selector byte 0
 * JSON, 1 Submit, 2 Prepare, 3 Abort, 4 RegisterBranch, 5 topics, 6
 * PrepareWorkflow). */
static void dtm_requests(void)
{
    const char *steps =
        "[{\"action\":\"127.0.0.1:7001/p.S/Action\",\"compensate\":"
        "\"127.0.0.1:7001/p.S/Compensate\"},{\"action\":"
        "\"127.0.0.1:7001/p.S/Action\",\"compensate\":\"\"}]";
    write_dtm_json("json-steps", steps);
    write_dtm_json("json-custom", "{\"concurrent\":true,\"orders\":{\"1\":"
                                  "[0]},\"s\":\"\\u00e9\\ud83d\\ude00\"}");
    ProtobufCBinaryData pay[2] = {{2, (uint8_t *)"ok"}, {0, NULL}};
    Dtmgimp__DtmTransOptions o = DTMGIMP__DTM_TRANS_OPTIONS__INIT;
    Dtmgimp__DtmTransOptions__BranchHeadersEntry h =
        DTMGIMP__DTM_TRANS_OPTIONS__BRANCH_HEADERS_ENTRY__INIT;
    Dtmgimp__DtmTransOptions__BranchHeadersEntry *hp[] = {&h};
    h.key = "x-tenant";
    h.value = "blue";
    o.branchheaders = hp;
    o.n_branchheaders = 1;
    o.waitresult = 1;
    o.timeouttofail = 30;
    Dtmgimp__DtmRequest r = DTMGIMP__DTM_REQUEST__INIT;
    r.gid = "dtm-1";
    r.transtype = "saga";
    r.transoptions = &o;
    r.steps = (char *)steps;
    r.binpayloads = pay;
    r.n_binpayloads = 2;
    write_msg("dtm", "submit-saga", 1, &r.base);
    r.customeddata = "{\"concurrent\":true,\"orders\":{\"1\":[0]}}";
    write_msg("dtm", "submit-concurrent", 1, &r.base);
    r.customeddata = "";
    r.transtype = "msg";
    r.steps = "[{\"action\":\"topic://orders\"}]";
    r.n_binpayloads = 1;
    r.queryprepared = "127.0.0.1:7001/p.S/QueryPrepared";
    write_msg("dtm", "prepare-msg", 2, &r.base);
    Dtmgimp__DtmRequest a = DTMGIMP__DTM_REQUEST__INIT;
    a.gid = "dtm-2";
    a.transtype = "tcc";
    a.steps = "null";
    a.rollbackreason = "try failed";
    write_msg("dtm", "abort-tcc", 3, &a.base);
    Dtmgimp__DtmBranchRequest b = DTMGIMP__DTM_BRANCH_REQUEST__INIT;
    Dtmgimp__DtmBranchRequest__DataEntry d[2] = {
        DTMGIMP__DTM_BRANCH_REQUEST__DATA_ENTRY__INIT,
        DTMGIMP__DTM_BRANCH_REQUEST__DATA_ENTRY__INIT};
    Dtmgimp__DtmBranchRequest__DataEntry *dp[] = {&d[0], &d[1]};
    d[0].key = "confirm";
    d[0].value = "127.0.0.1:7001/p.S/Confirm";
    d[1].key = "cancel";
    d[1].value = "127.0.0.1:7001/p.S/Cancel";
    b.gid = "dtm-2";
    b.transtype = "tcc";
    b.branchid = "01";
    b.data = dp;
    b.n_data = 2;
    write_msg("dtm", "register-tcc", 4, &b.base);
    Dtmgimp__DtmTopicRequest t = DTMGIMP__DTM_TOPIC_REQUEST__INIT;
    t.topic = "orders";
    t.url = "127.0.0.1:7001/p.S/Action";
    t.remark = "stock";
    write_msg("dtm", "subscribe", 5, &t.base);
    dtm_workflow_requests();
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    corpus_dir = argv[1];
    single_requests();
    sessions();
    deps_over_256();
    targets();
    branch_metadata();
    allowlists();
    config();
    sdk_replies();
    dtm_requests();
    return 0;
}
