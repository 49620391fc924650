/*
 * test_security.c: trellisd's safety settings as a user meets them, with
 * real processes — TLS and mutual TLS on its API (right certificates work,
 * a wrong CA, a missing or foreign client certificate, and plaintext do
 * not; trellisctl over TLS), TLS and mutual TLS on its calls to a
 * participant, the target allowlist (refused PERMISSION_DENIED, naming the
 * target and the setting, nothing stored), every limit with its status
 * code and message, and the config file (applied, overridden by flags in
 * either order, refused with file:line naming the setting).
 *
 * Certificates are made inside the test with the `openssl` command in the
 * scratch dir: a CA, a server certificate for localhost/127.0.0.1 and a
 * client certificate signed by it, and a second, foreign CA with its own
 * client certificate.
 */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/v1/tm.pb-c.h"

#define OPENSSL_TIMEOUT_MS 30000

/* ---- helpers ---------------------------------------------------------- */

/* PEM files in the scratch dir. */
typedef struct {
    char ca[512], server_cert[512], server_key[512];
    char client_cert[512], client_key[512];
    char rogue_ca[512], rogue_cert[512], rogue_key[512];
} pki_t;

static void scratch(itest_t *t, const char *leaf, char *buf, size_t len)
{
    assert_non_null(harness_path(t->h, leaf, buf, len));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void openssl(itest_t *t, const char *const *args)
{
    const char *argv[32] = {"openssl"};
    size_t n = 1;
    for (; *args; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    if (harness_run(t->h, "openssl", argv, OPENSSL_TIMEOUT_MS) != 0)
        fail_msg("openssl %s failed (see openssl.log in the scratch dir)",
                 argv[1]);
}

/* A self-signed CA: <name>.pem, <name>.key. */
static void make_ca(itest_t *t, const char *name, char *pem, char *key)
{
    char leaf[64], subj[96];
    snprintf(leaf, sizeof leaf, "%s.pem", name);
    scratch(t, leaf, pem, 512);
    snprintf(leaf, sizeof leaf, "%s.key", name);
    scratch(t, leaf, key, 512);
    snprintf(subj, sizeof subj, "/CN=trellis test %s", name);
    const char *args[] = {"req",
                          "-x509",
                          "-newkey",
                          "ec",
                          "-pkeyopt",
                          "ec_paramgen_curve:prime256v1",
                          "-nodes",
                          "-days",
                          "2",
                          "-subj",
                          subj,
                          "-addext",
                          "basicConstraints=critical,CA:TRUE",
                          "-addext",
                          "keyUsage=critical,keyCertSign,cRLSign",
                          "-keyout",
                          key,
                          "-out",
                          pem,
                          NULL};
    openssl(t, args);
}

/* A certificate for cn signed by ca: <name>.pem, <name>.key. */
static void make_cert(itest_t *t, const char *name, const char *cn,
                      const char *ca, const char *ca_key, const char *ext,
                      char *pem, char *key)
{
    char leaf[64], csr[512], extfile[512], subj[96];
    snprintf(leaf, sizeof leaf, "%s.pem", name);
    scratch(t, leaf, pem, 512);
    snprintf(leaf, sizeof leaf, "%s.key", name);
    scratch(t, leaf, key, 512);
    snprintf(leaf, sizeof leaf, "%s.csr", name);
    scratch(t, leaf, csr, sizeof csr);
    snprintf(leaf, sizeof leaf, "%s.ext", name);
    scratch(t, leaf, extfile, sizeof extfile);
    write_file(extfile, ext);
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    const char *req[] = {
        "req",    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-subj",   subj, "-keyout",  key,
        "-out",   csr,       NULL};
    openssl(t, req);
    const char *sign[] = {"x509",   "-req", "-in",
                          csr,      "-CA",  ca,
                          "-CAkey", ca_key, "-CAcreateserial",
                          "-days",  "2",    "-extfile",
                          extfile,  "-out", pem,
                          NULL};
    openssl(t, sign);
}

static void make_pki(itest_t *t, pki_t *p)
{
    char ca_key[512], rogue_key[512];
    make_ca(t, "ca", p->ca, ca_key);
    make_cert(t, "server", "localhost", p->ca, ca_key,
              "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
              "extendedKeyUsage=serverAuth,clientAuth\n",
              p->server_cert, p->server_key);
    make_cert(t, "client", "trellis-test-client", p->ca, ca_key,
              "extendedKeyUsage=clientAuth\n", p->client_cert, p->client_key);
    make_ca(t, "rogue-ca", p->rogue_ca, rogue_key);
    make_cert(t, "rogue-client", "trellis-test-client", p->rogue_ca, rogue_key,
              "extendedKeyUsage=clientAuth\n", p->rogue_cert, p->rogue_key);
}

/* A one-step saga on the test participant, submitted through a new client
 * with tls (NULL: plaintext) and waited for. Returns the rc; *status the
 * outcome when OK; err the message otherwise. */
static trellis_rc_t saga_via(itest_t *t, const char *tm_addr,
                             const trellis_tls_t *tls, const char *gid,
                             const char *action, trellis_trans_status_t *status,
                             char *err, size_t errlen)
{
    trellis_client_t *c = NULL;
    trellis_rc_t rc =
        trellis_client_new_tls(tm_addr, 5000, tls, &c, err, errlen);
    if (rc != TRELLIS_OK)
        return rc;
    trellis_saga_t *s = NULL;
    assert_int_equal(trellis_saga_new(gid, &s, err, errlen), TRELLIS_OK);
    assert_int_equal(trellis_saga_add_step(s, action ? action : t->action, NULL,
                                           "", 0, err, errlen),
                     0);
    trellis_options_t o = itest_options();
    trellis_saga_set_options(s, &o);
    *status = TRELLIS_TRANS_UNSPECIFIED;
    rc = trellis_saga_submit(c, s, status, NULL, 0, err, errlen);
    trellis_saga_free(s);
    trellis_client_free(c);
    return rc;
}

static void assert_rc(trellis_rc_t rc, trellis_rc_t want, const char *err,
                      const char *want_text)
{
    if (rc != want)
        fail_msg("rc %d (%s), want %d", rc, err, want);
    if (want_text && !strstr(err, want_text))
        fail_msg("message \"%s\" lacks \"%s\"", err, want_text);
}

/* gid is stored nowhere: trellisd answers NOT_FOUND. */
static void assert_not_stored(trellis_client_t *c, const char *gid)
{
    char err[512];
    trellis_trans_info_t *info = NULL;
    trellis_rc_t rc = trellis_query(c, gid, &info, err, sizeof err);
    trellis_trans_info_free(info);
    if (rc != TRELLIS_NOT_FOUND)
        fail_msg("query %s after a refusal: rc %d (%s), want NOT_FOUND", gid,
                 rc, err);
}

/* ---- TLS on trellisd's API ---------------------------------------------- */

static void test_tls_api(void **state)
{
    itest_t *t = itest_start(state, "sec-tls", NULL);
    pki_t p;
    make_pki(t, &p);
    const char *args[] = {"--tls-cert", p.server_cert, "--tls-key",
                          p.server_key, NULL};
    harness_server_t *tm = harness_tm_start(t->h, "tls-tm", args);
    assert_non_null(tm);
    const char *addr = harness_server_addr(tm);
    char err[1024];
    trellis_trans_status_t st;

    trellis_tls_t good = {.ca_file = p.ca};
    assert_rc(saga_via(t, addr, &good, "tls-ok", NULL, &st, err, sizeof err),
              TRELLIS_OK, err, NULL);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);

    /* The name in the certificate, asked for explicitly. */
    trellis_tls_t named = {.ca_file = p.ca, .server_name = "localhost"};
    assert_rc(
        saga_via(t, addr, &named, "tls-named", NULL, &st, err, sizeof err),
        TRELLIS_OK, err, NULL);
    trellis_tls_t misnamed = {.ca_file = p.ca, .server_name = "other.test"};
    assert_rc(saga_via(t, addr, &misnamed, "tls-misnamed", NULL, &st, err,
                       sizeof err),
              TRELLIS_UNAVAILABLE, err, NULL);

    trellis_tls_t wrong_ca = {.ca_file = p.rogue_ca};
    assert_rc(saga_via(t, addr, &wrong_ca, "tls-wrong-ca", NULL, &st, err,
                       sizeof err),
              TRELLIS_UNAVAILABLE, err, NULL);
    assert_rc(saga_via(t, addr, NULL, "tls-plain", NULL, &st, err, sizeof err),
              TRELLIS_UNAVAILABLE, err, NULL);
    trellis_tls_t missing = {.ca_file = "/nonexistent/ca.pem"};
    assert_rc(
        saga_via(t, addr, &missing, "tls-missing", NULL, &st, err, sizeof err),
        TRELLIS_INVALID_ARGUMENT, err, "/nonexistent/ca.pem");

    trellis_client_t *c = NULL;
    assert_int_equal(
        trellis_client_new_tls(addr, 5000, &good, &c, err, sizeof err), 0);
    assert_not_stored(c, "tls-wrong-ca");
    assert_not_stored(c, "tls-plain");
    assert_not_stored(c, "tls-misnamed");
    trellis_client_free(c);

    /* trellisctl speaks TLS with --tls-ca, and fails without it. */
    char ctl[512];
    snprintf(ctl, sizeof ctl, "%s/bin/trellisctl", harness_build_dir());
    const char *ok[] = {ctl,  "--tm",   addr,     "--tls-ca",
                        p.ca, "status", "tls-ok", NULL};
    assert_int_equal(harness_run(t->h, "ctl-tls", ok, 30000), 0);
    const char *plain[] = {ctl, "--tm", addr, "status", "tls-ok", NULL};
    assert_int_equal(harness_run(t->h, "ctl-plain", plain, 30000), 1);
    itest_pass(state);
}

static void test_mutual_tls_api(void **state)
{
    itest_t *t = itest_start(state, "sec-mtls", NULL);
    pki_t p;
    make_pki(t, &p);
    const char *args[] = {"--tls-cert", p.server_cert,     "--tls-key",
                          p.server_key, "--tls-client-ca", p.ca,
                          NULL};
    harness_server_t *tm = harness_tm_start(t->h, "mtls-tm", args);
    assert_non_null(tm);
    const char *addr = harness_server_addr(tm);
    char err[1024];
    trellis_trans_status_t st;

    trellis_tls_t good = {
        .ca_file = p.ca, .cert_file = p.client_cert, .key_file = p.client_key};
    assert_rc(saga_via(t, addr, &good, "mtls-ok", NULL, &st, err, sizeof err),
              TRELLIS_OK, err, NULL);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);

    trellis_tls_t no_cert = {.ca_file = p.ca};
    assert_rc(
        saga_via(t, addr, &no_cert, "mtls-no-cert", NULL, &st, err, sizeof err),
        TRELLIS_UNAVAILABLE, err, NULL);
    trellis_tls_t foreign = {
        .ca_file = p.ca, .cert_file = p.rogue_cert, .key_file = p.rogue_key};
    assert_rc(
        saga_via(t, addr, &foreign, "mtls-foreign", NULL, &st, err, sizeof err),
        TRELLIS_UNAVAILABLE, err, NULL);
    trellis_tls_t half = {.ca_file = p.ca, .cert_file = p.client_cert};
    assert_rc(saga_via(t, addr, &half, "mtls-half", NULL, &st, err, sizeof err),
              TRELLIS_INVALID_ARGUMENT, err, "go together");

    trellis_client_t *c = NULL;
    assert_int_equal(
        trellis_client_new_tls(addr, 5000, &good, &c, err, sizeof err), 0);
    assert_not_stored(c, "mtls-no-cert");
    assert_not_stored(c, "mtls-foreign");
    trellis_client_free(c);

    char ctl[512];
    snprintf(ctl, sizeof ctl, "%s/bin/trellisctl", harness_build_dir());
    const char *ok[] = {ctl,          "--tm",       addr,          "--tls-ca",
                        p.ca,         "--tls-cert", p.client_cert, "--tls-key",
                        p.client_key, "status",     "mtls-ok",     NULL};
    assert_int_equal(harness_run(t->h, "ctl-mtls", ok, 30000), 0);
    const char *no[] = {ctl,  "--tm",   addr,      "--tls-ca",
                        p.ca, "status", "mtls-ok", NULL};
    assert_int_equal(harness_run(t->h, "ctl-mtls-no-cert", no, 30000), 1);
    itest_pass(state);
}

/* ---- TLS on trellisd's calls to participants ------------------------------
 */

/* Forward op of gid's only step: poll until it was attempted at least
 * twice, then assert it never succeeded and says why. */
static void assert_action_keeps_failing(itest_t *t, trellis_client_t *c,
                                        const char *gid)
{
    char err[512];
    int64_t deadline = harness_mono_ms() + ITEST_FINAL_TIMEOUT_MS;
    for (;;) {
        trellis_trans_info_t *info = NULL;
        assert_int_equal(trellis_query(c, gid, &info, err, sizeof err), 0);
        const trellis_op_info_t *op =
            itest_op(&info->branches[0], TRELLIS_OP_ACTION);
        uint32_t attempts = op->attempts;
        int pending = op->status == TRELLIS_OP_PENDING;
        int has_error = op->last_error && op->last_error[0];
        trellis_trans_status_t st = info->status;
        trellis_trans_info_free(info);
        if (attempts >= 2) {
            assert_true(pending);
            assert_true(has_error);
            assert_int_equal(st, TRELLIS_TRANS_SUBMITTED);
            break;
        }
        if (harness_mono_ms() > deadline)
            fail_msg("%s: action attempted %u times", gid, attempts);
        harness_sleep_ms(20);
    }
    (void)t;
}

static void test_tls_to_participants(void **state)
{
    itest_t *t = itest_start(state, "sec-ptls", NULL);
    pki_t p;
    make_pki(t, &p);
    const char *part_args[] = {"--tls-cert", p.server_cert,     "--tls-key",
                               p.server_key, "--tls-client-ca", p.ca,
                               NULL};
    harness_server_t *part =
        harness_testpart_start(t->h, "tls-part", part_args);
    assert_non_null(part);
    char action[160];
    snprintf(action, sizeof action, "%s/trellis.test.Part/Action",
             harness_server_addr(part));

    const char *good_args[] = {"--participant-tls-ca",
                               p.ca,
                               "--participant-tls-cert",
                               p.client_cert,
                               "--participant-tls-key",
                               p.client_key,
                               "--participant-tls-server-name",
                               "localhost",
                               NULL};
    harness_server_t *tm = harness_tm_start(t->h, "ptls-tm", good_args);
    assert_non_null(tm);
    char err[1024];
    trellis_trans_status_t st;
    assert_rc(saga_via(t, harness_server_addr(tm), NULL, "ptls-ok", action, &st,
                       err, sizeof err),
              TRELLIS_OK, err, NULL);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);

    /* The participant saw it, over mutual TLS too. */
    trellis_tls_t tls = {
        .ca_file = p.ca, .cert_file = p.client_cert, .key_file = p.client_key};
    assert_int_equal(trellis_call_unary_set_tls(&tls, err, sizeof err), 0);
    harness_part_state_t s;
    int state_rc = harness_part_state(harness_server_addr(part), "ptls-ok", &s);
    assert_int_equal(trellis_call_unary_set_tls(NULL, err, sizeof err), 0);
    assert_int_equal(state_rc, 0);
    assert_int_equal(harness_part_count(&s, NULL, "action", "applied"), 1);
    harness_part_state_free(&s);

    /* Without a client certificate, and with a CA that did not sign the
     * participant's certificate, no call gets through: retried, pending. */
    const char *no_cert_args[] = {"--participant-tls-ca", p.ca, NULL};
    const char *wrong_ca_args[] = {"--participant-tls-ca",
                                   p.rogue_ca,
                                   "--participant-tls-cert",
                                   p.client_cert,
                                   "--participant-tls-key",
                                   p.client_key,
                                   NULL};
    const struct {
        const char *name, *gid;
        const char *const *args;
    } bad[] = {{"ptls-no-cert", "ptls-no-cert", no_cert_args},
               {"ptls-wrong-ca", "ptls-wrong-ca", wrong_ca_args}};
    for (size_t i = 0; i < 2; i++) {
        harness_server_t *b = harness_tm_start(t->h, bad[i].name, bad[i].args);
        assert_non_null(b);
        trellis_client_t *c = NULL;
        assert_int_equal(trellis_client_new(harness_server_addr(b), 5000, &c,
                                            err, sizeof err),
                         0);
        trellis_saga_t *sg = NULL;
        assert_int_equal(trellis_saga_new(bad[i].gid, &sg, err, sizeof err), 0);
        assert_int_equal(
            trellis_saga_add_step(sg, action, NULL, "", 0, err, sizeof err), 0);
        trellis_options_t o = itest_options();
        o.wait_result = 0;
        trellis_saga_set_options(sg, &o);
        assert_int_equal(
            trellis_saga_submit(c, sg, &st, NULL, 0, err, sizeof err), 0);
        trellis_saga_free(sg);
        assert_action_keeps_failing(t, c, bad[i].gid);
        trellis_client_free(c);
    }
    assert_int_equal(trellis_call_unary_set_tls(&tls, err, sizeof err), 0);
    state_rc = harness_part_state(harness_server_addr(part), "", &s);
    assert_int_equal(trellis_call_unary_set_tls(NULL, err, sizeof err), 0);
    assert_int_equal(state_rc, 0);
    assert_int_equal(s.n_calls, 1); /* only ptls-ok's action */
    harness_part_state_free(&s);
    itest_pass(state);
}

/* ---- the target allowlist --------------------------------------------------
 */

static void test_allowlist_default_loopback(void **state)
{
    itest_t *t = itest_start(state, "sec-allow", NULL);
    char err[1024];
    trellis_trans_status_t st;
    const char *outside = "10.255.0.1:7400/trellis.test.Part/Action";
    assert_rc(saga_via(t, harness_server_addr(t->tm), NULL, "allow-action",
                       outside, &st, err, sizeof err),
              TRELLIS_PERMISSION_DENIED, err, "10.255.0.1:7400");
    assert_true(strstr(err, "allow-targets") != NULL);
    assert_true(strstr(err, "steps[0].action") != NULL);
    assert_not_stored(t->client, "allow-action");

    /* A compensation outside the list is refused the same way. */
    trellis_saga_t *s = NULL;
    assert_int_equal(trellis_saga_new("allow-comp", &s, err, sizeof err), 0);
    assert_int_equal(trellis_saga_add_step(s, t->action,
                                           "evil.example:80/x.Y/Undo", "", 0,
                                           err, sizeof err),
                     0);
    assert_rc(trellis_saga_submit(t->client, s, &st, NULL, 0, err, sizeof err),
              TRELLIS_PERMISSION_DENIED, err, "evil.example:80");
    trellis_saga_free(s);
    assert_not_stored(t->client, "allow-comp");

    /* RegisterBranch: refused, and the begun transaction has no branch. */
    trellis_options_t o = itest_options();
    assert_int_equal(trellis_begin(t->client, "allow-reg", &o, err, sizeof err),
                     0);
    trellis_branch_op_t ops[] = {
        {TRELLIS_OP_CONFIRM, "127.0.0.1:1/bank.v1.Bank/Confirm"},
        {TRELLIS_OP_CANCEL, "10.1.2.3:443/bank.v1.Bank/Cancel"}};
    assert_rc(trellis_register_branch(t->client, "allow-reg", "01",
                                      TRELLIS_MODE_TCC, ops, 2, "", 0, err,
                                      sizeof err),
              TRELLIS_PERMISSION_DENIED, err, "10.1.2.3:443");
    trellis_trans_info_t *info = itest_query(t, "allow-reg");
    assert_int_equal(info->status, TRELLIS_TRANS_PREPARED);
    assert_int_equal(info->n_branches, 0);
    trellis_trans_info_free(info);
    assert_int_equal(
        trellis_abort(t->client, "allow-reg", "done", 1, &st, err, sizeof err),
        0);

    /* Loopback is allowed by default: the fixture's saga runs. */
    const char *ok[] = {""};
    trellis_saga_t *good = itest_saga(t, "allow-ok", ok, 1, NULL);
    assert_int_equal(itest_submit(t, good, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(good);
    itest_pass(state);
}

static void test_allowlist_configured(void **state)
{
    const char *args[] = {"--allow-targets", "127.0.0.1:*, *.svc.test:50051",
                          NULL};
    itest_t *t = itest_start(state, "sec-allow2", args);
    char err[1024];
    trellis_trans_status_t st;
    const char *addr = harness_server_addr(t->tm);
    /* Matching names are accepted (stored; not waited for: nobody there). */
    trellis_client_t *c = t->client;
    trellis_saga_t *s = NULL;
    assert_int_equal(trellis_saga_new("allow-svc", &s, err, sizeof err), 0);
    assert_int_equal(trellis_saga_add_step(s, "pay.svc.test:50051/p.S/Act",
                                           NULL, "", 0, err, sizeof err),
                     0);
    assert_int_equal(trellis_saga_submit(c, s, &st, NULL, 0, err, sizeof err),
                     0);
    assert_int_equal(st, TRELLIS_TRANS_SUBMITTED);
    trellis_saga_free(s);
    trellis_trans_info_t *info = itest_query(t, "allow-svc");
    assert_int_equal(info->n_branches, 1);
    trellis_trans_info_free(info);

    const char *refused[] = {"pay.svc.test:50052/p.S/Act",
                             "svc.test:50051/p.S/Act",
                             "localhost:7400/p.S/Act"};
    for (size_t i = 0; i < 3; i++) {
        char gid[32];
        snprintf(gid, sizeof gid, "allow-no-%zu", i);
        assert_rc(
            saga_via(t, addr, NULL, gid, refused[i], &st, err, sizeof err),
            TRELLIS_PERMISSION_DENIED, err, "127.0.0.1:*, *.svc.test:50051");
        assert_not_stored(c, gid);
    }
    assert_rc(saga_via(t, addr, NULL, "allow-ok2", NULL, &st, err, sizeof err),
              TRELLIS_OK, err, NULL);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    itest_pass(state);
}

/* ---- limits
 * ------------------------------------------------------------------ */

static trellis_rc_t raw_call(itest_t *t, const char *method,
                             const ProtobufCMessage *m, char *err,
                             size_t errlen)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    trellis_rc_t rc =
        trellis_call_unary(harness_server_addr(t->tm), method, buf, len, NULL,
                           NULL, 0, 10000, &reply, &reply_len, err, errlen);
    free(reply);
    free(buf);
    return rc;
}

/* A raw Submit of n steps whose payloads are payload_len bytes. */
static trellis_rc_t raw_submit(itest_t *t, const char *gid, size_t n,
                               size_t payload_len, char *err, size_t errlen)
{
    Trellis__V1__SagaStep steps[8], *ptrs[8];
    assert_true(n <= 8);
    uint8_t *payload = calloc(1, payload_len + 1);
    assert_non_null(payload);
    memset(payload, '#', payload_len);
    for (size_t i = 0; i < n; i++) {
        trellis__v1__saga_step__init(&steps[i]);
        steps[i].action = t->action;
        steps[i].payload.data = payload;
        steps[i].payload.len = payload_len;
        ptrs[i] = &steps[i];
    }
    Trellis__V1__SubmitRequest r = TRELLIS__V1__SUBMIT_REQUEST__INIT;
    r.gid = (char *)gid;
    r.n_steps = n;
    r.steps = ptrs;
    trellis_rc_t rc =
        raw_call(t, "/trellis.v1.TM/Submit", &r.base, err, errlen);
    free(payload);
    return rc;
}

static trellis_rc_t begin(itest_t *t, const char *gid, char *err, size_t errlen)
{
    trellis_options_t o = itest_options();
    return trellis_begin(t->client, gid, &o, err, errlen);
}

typedef struct {
    itest_t *t;
    const char *gid;
} begin_probe_t;

static int begin_admitted(void *arg)
{
    begin_probe_t *b = arg;
    char err[512];
    return begin(b->t, b->gid, err, sizeof err) == TRELLIS_OK;
}

static void test_limits(void **state)
{
    const char *args[] = {"--max-steps",
                          "4",
                          "--max-payload",
                          "512",
                          "--max-message-bytes",
                          "8192",
                          "--max-inflight",
                          "3",
                          NULL};
    itest_t *t = itest_start(state, "sec-limits", args);
    char err[1024];

    /* gid length and charset */
    char long_gid[80];
    memset(long_gid, 'g', 65);
    long_gid[65] = '\0';
    assert_rc(raw_submit(t, long_gid, 1, 1, err, sizeof err),
              TRELLIS_INVALID_ARGUMENT, err, "gid is 65 characters long");
    assert_rc(raw_submit(t, "bad gid", 1, 1, err, sizeof err),
              TRELLIS_INVALID_ARGUMENT, err, "gid has character 0x20");
    /* payload bytes, branches per transaction */
    assert_rc(raw_submit(t, "lim-payload", 1, 513, err, sizeof err),
              TRELLIS_INVALID_ARGUMENT, err,
              "steps[0].payload is 513 bytes; at most 512");
    assert_rc(raw_submit(t, "lim-steps", 5, 1, err, sizeof err),
              TRELLIS_INVALID_ARGUMENT, err, "steps has 5 entries; at most 4");
    /* gRPC message size: refused by gRPC before trellisd reads it (the
     * payload check would have said INVALID_ARGUMENT). */
    assert_rc(raw_submit(t, "lim-msg", 1, 9000, err, sizeof err),
              TRELLIS_RESOURCE_EXHAUSTED, err, NULL);
    assert_true(strlen(err) > 0);
    assert_not_stored(t->client, "lim-payload");
    assert_not_stored(t->client, "lim-steps");
    assert_not_stored(t->client, "lim-msg");

    /* Registered branches count against max-steps too. */
    assert_int_equal(begin(t, "lim-b1", err, sizeof err), 0);
    for (int i = 1; i <= 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "%02d", i);
        trellis_branch_op_t op = {TRELLIS_OP_COMPENSATE, t->compensate};
        trellis_rc_t rc =
            trellis_register_branch(t->client, "lim-b1", id, TRELLIS_MODE_SAGA,
                                    &op, 1, "", 0, err, sizeof err);
        if (i <= 4)
            assert_rc(rc, TRELLIS_OK, err, NULL);
        else
            assert_rc(rc, TRELLIS_INVALID_ARGUMENT, err,
                      "already has 4 branches, the limit");
    }

    /* max-inflight 3: lim-b1 and two more begun transactions fill it. */
    assert_int_equal(begin(t, "lim-b2", err, sizeof err), 0);
    assert_int_equal(begin(t, "lim-b3", err, sizeof err), 0);
    assert_rc(begin(t, "lim-b4", err, sizeof err), TRELLIS_RESOURCE_EXHAUSTED,
              err, "max-inflight");
    assert_rc(raw_submit(t, "lim-s1", 1, 1, err, sizeof err),
              TRELLIS_RESOURCE_EXHAUSTED, err, "max-inflight");
    assert_not_stored(t->client, "lim-b4");
    assert_not_stored(t->client, "lim-s1");
    /* Requests for the live ones are still served. */
    assert_int_equal(begin(t, "lim-b2", err, sizeof err), 0); /* idempotent */
    trellis_trans_info_t *info = itest_query(t, "lim-b1");
    assert_int_equal(info->n_branches, 4);
    trellis_trans_info_free(info);
    trellis_trans_status_t st;
    assert_int_equal(
        trellis_submit(t->client, "lim-b1", 1, &st, NULL, 0, err, sizeof err),
        0);
    assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
    /* Once one finished and left memory, a new one is admitted. */
    begin_probe_t probe = {t, "lim-b4"};
    assert_true(harness_poll(begin_admitted, &probe, 10000, 20));
    itest_pass(state);
}

/* ---- the config file ------------------------------------------------------
 */

/* Run trellisd to completion with args; its exit code, log in out. */
static int tm_run(itest_t *t, const char *name, const char *const *args,
                  char **out)
{
    char bin[512], leaf[96], path[1024];
    snprintf(bin, sizeof bin, "%s/bin/trellisd", harness_build_dir());
    const char *argv[16] = {bin};
    size_t n = 1;
    for (; *args; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    int code = harness_run(t->h, name, argv, 30000);
    snprintf(leaf, sizeof leaf, "%s.log", name);
    scratch(t, leaf, path, sizeof path);
    *out = read_file(path);
    return code;
}

static void test_config_file(void **state)
{
    itest_t *t = itest_start(state, "sec-config", NULL);
    char conf[512], bad[512], err[1024];
    scratch(t, "trellisd.conf", conf, sizeof conf);
    write_file(conf, "# trellisd for the config test\n"
                     "\n"
                     "max-steps = 2      # small on purpose\n"
                     "retry-interval-ms = 50\n"
                     "allow-targets = 127.0.0.1:*\n");
    const char *three[] = {"", "", ""};
    trellis_trans_status_t st;

    /* From the file: 3 steps are over max-steps = 2. */
    const char *file_only[] = {"--config", conf, NULL};
    harness_server_t *a = harness_tm_start(t->h, "conf-a", file_only);
    assert_non_null(a);
    trellis_client_t *c = NULL;
    assert_int_equal(
        trellis_client_new(harness_server_addr(a), 10000, &c, err, sizeof err),
        0);
    trellis_saga_t *s = itest_saga(t, "conf-3", three, 3, NULL);
    assert_rc(trellis_saga_submit(c, s, &st, NULL, 0, err, sizeof err),
              TRELLIS_INVALID_ARGUMENT, err, "at most 2");
    trellis_client_free(c);

    /* A flag overrides the file, before or after --config. */
    const char *before[] = {"--max-steps", "5", "--config", conf, NULL};
    const char *after[] = {"--config", conf, "--max-steps", "5", NULL};
    const char *const *variants[] = {before, after};
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "conf-b%d", i);
        harness_server_t *b = harness_tm_start(t->h, name, variants[i]);
        assert_non_null(b);
        assert_int_equal(trellis_client_new(harness_server_addr(b), 10000, &c,
                                            err, sizeof err),
                         0);
        assert_rc(trellis_saga_submit(c, s, &st, NULL, 0, err, sizeof err),
                  TRELLIS_OK, err, NULL);
        assert_int_equal(st, TRELLIS_TRANS_SUCCEEDED);
        trellis_client_free(c);
    }
    trellis_saga_free(s);

    /* Refused at start, naming the file, the line and the setting. */
    scratch(t, "bad.conf", bad, sizeof bad);
    write_file(bad, "listen = 127.0.0.1:0\nmax-steps = lots\n");
    const char *bad_args[] = {"--config", bad, NULL};
    char *out = NULL;
    assert_int_equal(tm_run(t, "conf-bad", bad_args, &out), 1);
    char want[640];
    snprintf(want, sizeof want, "%s:2: max-steps: \"lots\"", bad);
    if (!strstr(out, want))
        fail_msg("log lacks \"%s\":\n%s", want, out);

    write_file(bad, "listen = 127.0.0.1:0\n\n\nretry-every = 5\n");
    assert_int_equal(tm_run(t, "conf-unknown", bad_args, &out), 1);
    snprintf(want, sizeof want, "%s:4: retry-every: unknown setting", bad);
    if (!strstr(out, want))
        fail_msg("log lacks \"%s\":\n%s", want, out);

    char missing[512];
    scratch(t, "missing.conf", missing, sizeof missing);
    const char *missing_args[] = {"--config", missing, NULL};
    assert_int_equal(tm_run(t, "conf-missing", missing_args, &out), 1);
    if (!strstr(out, missing) || !strstr(out, "No such file"))
        fail_msg("log does not name %s:\n%s", missing, out);

    /* TLS files that cannot be used stop the start too. */
    const char *tls_args[] = {"--listen",  "127.0.0.1:0", "--tls-cert", conf,
                              "--tls-key", conf,          NULL};
    assert_int_equal(tm_run(t, "conf-tls", tls_args, &out), 1);
    if (!strstr(out, "tls-cert") || !strstr(out, "holds no PEM CERTIFICATE"))
        fail_msg("log does not name tls-cert:\n%s", out);
    itest_pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tls_api, itest_teardown),
        cmocka_unit_test_teardown(test_mutual_tls_api, itest_teardown),
        cmocka_unit_test_teardown(test_tls_to_participants, itest_teardown),
        cmocka_unit_test_teardown(test_allowlist_default_loopback,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_allowlist_configured, itest_teardown),
        cmocka_unit_test_teardown(test_limits, itest_teardown),
        cmocka_unit_test_teardown(test_config_file, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
