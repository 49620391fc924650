/*
 * trellis-dtm-xasvc: an XA participant written the way DTM's gRPC XA
 * participants work (DTM's XaLocalTransaction), over MariaDB and the MySQL
 * XA adapter (rm-adapters/mysql-xa), for the tests of trellisd's DTM
 * service (tests/integration/test_dtm_xa.c). Test-only: built beside
 * trellis-testpart, never installed.
 *
 *   trellis-dtm-xasvc --listen ADDR --port-file FILE --tm HOST:PORT
 *                     --mysql-socket PATH --mysql-database DB [--threads N]
 *
 * At start it creates DB (if missing), its `effects` table (one row per
 * (gid, branch): what a branch did) and the default barrier table. It
 * serves /trellis.test.XaBank/Transfer, whose dtm-op says what to do:
 *
 *   action    the branch's local transaction, as DTM runs it: XA START,
 *             the business SQL (INSERT the effects row; a request payload
 *             "fail" refuses it: a business failure), the branch
 *             registered with the TM inside it (dtmgimp.Dtm/RegisterBranch,
 *             trans type xa, Data {"url": this method}: DTM's order, so a
 *             branch is never prepared unknown to the TM), XA END, XA
 *             PREPARE (trellis_myxa_prepare_branch);
 *   commit,   phase 2 at the url registered: trellis_myxa_commit_branch or
 *   rollback  _rollback_branch (idempotent), after hold point 1 of the gid.
 *
 * and /trellis.test.Part/Control (trellis-testpart's method, so
 * harness_part_cmd drives it): "hold GID" holds GID's next phase-2 op at
 * point 1; "wait-held GID MS" and "release GID" as svc_holds.h says.
 *
 * Threads: the participant's --threads workers (default 8); each call
 * opens its own MariaDB connection and closes it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "dtm/dtmgimp.pb-c.h"
#include "svc_holds.h"
#include "svc_mysql.h"
#include "trellis/mysql_xa.h"
#include "trellis/trellis_participant.h"
#include "trellis_portfile.h"

#define XA_METHOD "/trellis.test.XaBank/Transfer"
#define CONTROL_METHOD "/trellis.test.Part/Control"
#define REGISTER_METHOD "/dtmgimp.Dtm/RegisterBranch"
#define TM_CALL_TIMEOUT_MS 30000

typedef struct {
    const char *listen, *port_file, *tm, *socket, *database;
    int threads;
    char self[128]; /* 127.0.0.1:PORT/trellis.test.XaBank/Transfer */
} svc_t;

static MYSQL *db_connect(const svc_t *s, char *err, size_t errlen)
{
    return svc_mysql_connect(s->socket, s->database, err, errlen);
}

/* ---- the local transaction ------------------------------------------- */

typedef struct {
    const svc_t *s;
    const trellis_branch_ctx_t *ctx;
    int fail; /* the payload says "fail" */
} local_t;

/* Register the branch with the TM through DTM's own RegisterBranch, as
 * DTM's XA participant does. 0, or -1 with msg. */
static int register_branch(const local_t *l, char *msg, size_t msglen)
{
    Dtmgimp__DtmBranchRequest r = DTMGIMP__DTM_BRANCH_REQUEST__INIT;
    Dtmgimp__DtmBranchRequest__DataEntry url =
        DTMGIMP__DTM_BRANCH_REQUEST__DATA_ENTRY__INIT;
    Dtmgimp__DtmBranchRequest__DataEntry *data[] = {&url};
    r.gid = (char *)l->ctx->gid;
    r.transtype = "xa";
    r.branchid = (char *)l->ctx->branch_id;
    url.key = "url";
    url.value = (char *)l->s->self;
    r.data = data;
    r.n_data = 1;
    uint8_t buf[1024], *reply = NULL;
    size_t n = dtmgimp__dtm_branch_request__get_packed_size(&r), reply_len = 0;
    if (n > sizeof buf) {
        snprintf(msg, msglen, "RegisterBranch request too large");
        return -1;
    }
    dtmgimp__dtm_branch_request__pack(&r, buf);
    char err[256];
    trellis_rc_t rc = trellis_call_unary(l->s->tm, REGISTER_METHOD, buf, n,
                                         NULL, NULL, 0, TM_CALL_TIMEOUT_MS,
                                         &reply, &reply_len, err, sizeof err);
    free(reply);
    if (rc != TRELLIS_OK) {
        snprintf(msg, msglen, "RegisterBranch: rc %d: %s", rc, err);
        return -1;
    }
    return 0;
}

static trellis_barrier_business_rc_t local_sql(MYSQL *c, void *user, char *msg,
                                               size_t msglen)
{
    const local_t *l = user;
    if (l->fail) {
        snprintf(msg, msglen, "xasvc: the business refused");
        return TRELLIS_BARRIER_BUSINESS_FAIL;
    }
    char gid[160], branch[80], sql[400];
    mysql_real_escape_string(c, gid, l->ctx->gid, strlen(l->ctx->gid));
    mysql_real_escape_string(c, branch, l->ctx->branch_id,
                             strlen(l->ctx->branch_id));
    snprintf(sql, sizeof sql,
             "INSERT INTO effects (gid, branch) VALUES ('%s', '%s')", gid,
             branch);
    if (mysql_query(c, sql) != 0) {
        snprintf(msg, msglen, "xasvc: %s", mysql_error(c));
        return TRELLIS_BARRIER_BUSINESS_ERROR;
    }
    return register_branch(l, msg, msglen) == 0
               ? TRELLIS_BARRIER_BUSINESS_OK
               : TRELLIS_BARRIER_BUSINESS_ERROR;
}

static void run_local(const svc_t *s, MYSQL *c, const trellis_branch_ctx_t *ctx,
                      const uint8_t *payload, size_t len,
                      trellis_reply_t *reply)
{
    trellis_barrier_branch_t b = trellis_barrier_branch_from_ctx(ctx);
    b.op = "prepare"; /* DTM calls the XA branch's local transaction "action" */
    local_t l = {s, ctx, len == 4 && memcmp(payload, "fail", 4) == 0};
    char msg[256] = "";
    trellis_myxa_outcome_t o = trellis_myxa_prepare_branch(
        c, NULL, &b, local_sql, &l, msg, sizeof msg);
    trellis_myxa_fill_reply(o, msg, reply);
}

static void run_phase2(MYSQL *c, const trellis_branch_ctx_t *ctx,
                       trellis_reply_t *reply)
{
    trellis_barrier_branch_t b = trellis_barrier_branch_from_ctx(ctx);
    char msg[256] = "";
    svc_hold_point(ctx->gid, 1);
    int rc = strcmp(ctx->op, "commit") == 0
                 ? trellis_myxa_commit_branch(c, NULL, &b, msg, sizeof msg)
                 : trellis_myxa_rollback_branch(c, NULL, &b, msg, sizeof msg);
    reply->code = rc == 0 ? TRELLIS_REPLY_SUCCESS : TRELLIS_REPLY_ERROR;
    snprintf(reply->message, sizeof reply->message, "xasvc: %s %s", ctx->op,
             rc == 0 ? "done" : msg);
}

static void handle_xa(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t len, trellis_reply_t *reply, void *user)
{
    const svc_t *s = user;
    char err[256];
    MYSQL *c = db_connect(s, err, sizeof err);
    if (!c) {
        reply->code = TRELLIS_REPLY_ERROR;
        snprintf(reply->message, sizeof reply->message, "xasvc: %s", err);
        return;
    }
    if (strcmp(ctx->op, "action") == 0) {
        run_local(s, c, ctx, payload, len, reply);
    } else if (strcmp(ctx->op, "commit") == 0 ||
               strcmp(ctx->op, "rollback") == 0) {
        run_phase2(c, ctx, reply);
    } else {
        reply->code = TRELLIS_REPLY_FAILURE;
        snprintf(reply->message, sizeof reply->message,
                 "xasvc: dtm-op %s is not an XA op", ctx->op);
    }
    mysql_close(c);
}

static void handle_control(const trellis_branch_ctx_t *ctx,
                           const uint8_t *payload, size_t len,
                           trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)user;
    char cmd[160], gid[SVC_GID_MAX], out[160];
    snprintf(cmd, sizeof cmd, "%.*s", (int)len, (const char *)payload);
    if (sscanf(cmd, "hold %79s", gid) == 1)
        snprintf(out, sizeof out, "%s\n",
                 svc_hold_set(gid, 1) == 0 ? "ok holding" : "err table full");
    else if (!svc_hold_control(cmd, out, sizeof out))
        snprintf(out, sizeof out, "err unknown command\n");
    reply->body = (uint8_t *)strdup(out);
    reply->body_len = reply->body ? strlen(out) : 0;
}

/* ---- start ------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr, "usage: trellis-dtm-xasvc --listen ADDR --port-file FILE "
                    "--tm HOST:PORT --mysql-socket PATH --mysql-database DB "
                    "[--threads N]\n");
    return 2;
}

static int parse_args(int argc, char **argv, svc_t *s)
{
    s->threads = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--listen"))
            s->listen = v;
        else if (!strcmp(k, "--port-file"))
            s->port_file = v;
        else if (!strcmp(k, "--tm"))
            s->tm = v;
        else if (!strcmp(k, "--mysql-socket"))
            s->socket = v;
        else if (!strcmp(k, "--mysql-database"))
            s->database = v;
        else if (!strcmp(k, "--threads"))
            s->threads = atoi(v);
        else
            return -1;
    }
    return argc % 2 == 1 && s->listen && s->tm && s->socket && s->database &&
                   s->threads > 0
               ? 0
               : -1;
}

static int serve(svc_t *s, trellis_participant_t **p, char *err, size_t errlen)
{
    int port = 0;
    if (svc_mysql_schema(s->socket, s->database,
                         "CREATE TABLE IF NOT EXISTS effects ("
                         "gid VARBINARY(128), branch VARBINARY(40),"
                         " PRIMARY KEY (gid, branch)) ENGINE=InnoDB",
                         err, errlen) != 0 ||
        trellis_participant_new(s->threads, p, err, errlen) != TRELLIS_OK ||
        trellis_participant_handle(*p, XA_METHOD, handle_xa, s, err, errlen) !=
            TRELLIS_OK ||
        trellis_participant_handle(*p, CONTROL_METHOD, handle_control, s, err,
                                   errlen) != TRELLIS_OK ||
        trellis_participant_start(*p, s->listen, &port, err, errlen) !=
            TRELLIS_OK)
        return -1;
    snprintf(s->self, sizeof s->self, "127.0.0.1:%d%s", port, XA_METHOD);
    if (s->port_file &&
        trellis_portfile_write(s->port_file, port, err, errlen) != 0)
        return -1;
    printf("trellis-dtm-xasvc ready listen=127.0.0.1:%d\n", port);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    svc_t s;
    memset(&s, 0, sizeof s);
    if (parse_args(argc, argv, &s) != 0)
        return usage();
    if (mysql_library_init(0, NULL, NULL) != 0) {
        fprintf(stderr, "trellis-dtm-xasvc: mysql_library_init failed\n");
        return 1;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    trellis_participant_t *p = NULL;
    char err[512] = "";
    int rc = serve(&s, &p, err, sizeof err) == 0 ? 0 : 1;
    if (rc != 0) {
        fprintf(stderr, "trellis-dtm-xasvc: %s\n", err);
    } else {
        int sig;
        sigwait(&stop, &sig);
    }
    svc_holds_drain();
    trellis_participant_free(p);
    mysql_library_end();
    return rc;
}
