/*
 * tls.c — the SDK's TLS: PEM files named in a trellis_tls_t or
 * trellis_participant_tls_t turned into gRPC credentials, and the
 * process-wide TLS setting of trellis_call_unary.
 *
 * Files are read when the settings are given (client creation,
 * trellis_participant_set_tls, trellis_call_unary_set_tls) and their text
 * handed to gRPC, which copies it; nothing here outlives the call except
 * the credentials, whose owner is the caller named in internal.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "internal.h"
#include "trellis/trellis_participant.h"

/* PEM files are small; anything larger is not one. */
#define PEM_MAX (1u << 20)

static int is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Read the PEM file path (named `what` in messages) holding `kind`
 * ("CERTIFICATE", "PRIVATE KEY") into *out (malloc'd, NUL-terminated). */
static trellis_rc_t read_pem(const char *path, const char *what,
                             const char *kind, char **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s: cannot read %s: %s", what, path, strerror(errno));
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || n > PEM_MAX;
    fclose(f);
    if (bad) {
        free(buf);
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s: cannot read %s (unreadable, too large or out of "
                       "memory)",
                       what, path);
    }
    buf[n] = '\0';
    char marker[64];
    snprintf(marker, sizeof marker, "%s-----", kind);
    if (strlen(buf) != n || strstr(buf, "-----BEGIN ") == NULL ||
        strstr(buf, marker) == NULL) {
        free(buf);
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "%s: %s holds no PEM %s", what, path, kind);
    }
    *out = buf;
    return TRELLIS_OK;
}

trellis_rc_t tr_tls_channel_creds(const trellis_tls_t *tls,
                                  grpc_channel_credentials **out, char *err,
                                  size_t errlen)
{
    *out = NULL;
    if (is_set(tls->cert_file) != is_set(tls->key_file))
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "TLS: cert_file and key_file go together");
    char *ca = NULL, *cert = NULL, *key = NULL;
    trellis_rc_t rc = TRELLIS_OK;
    if (is_set(tls->ca_file))
        rc = read_pem(tls->ca_file, "TLS ca_file", "CERTIFICATE", &ca, err,
                      errlen);
    if (rc == TRELLIS_OK && is_set(tls->cert_file))
        rc = read_pem(tls->cert_file, "TLS cert_file", "CERTIFICATE", &cert,
                      err, errlen);
    if (rc == TRELLIS_OK && is_set(tls->key_file))
        rc = read_pem(tls->key_file, "TLS key_file", "PRIVATE KEY", &key, err,
                      errlen);
    if (rc == TRELLIS_OK) {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        *out = grpc_ssl_credentials_create(ca, cert != NULL ? &pair : NULL,
                                           NULL, NULL);
        if (*out == NULL)
            rc = tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                         "TLS: gRPC refused the certificates");
    }
    free(ca);
    free(cert);
    free(key);
    return rc;
}

trellis_rc_t tr_tls_server_creds(const trellis_participant_tls_t *tls,
                                 grpc_server_credentials **out, char *err,
                                 size_t errlen)
{
    *out = NULL;
    if (!is_set(tls->cert_file) || !is_set(tls->key_file))
        return tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                       "TLS: a server needs cert_file and key_file");
    char *cert = NULL, *key = NULL, *ca = NULL;
    trellis_rc_t rc = read_pem(tls->cert_file, "TLS cert_file", "CERTIFICATE",
                               &cert, err, errlen);
    if (rc == TRELLIS_OK)
        rc = read_pem(tls->key_file, "TLS key_file", "PRIVATE KEY", &key, err,
                      errlen);
    if (rc == TRELLIS_OK && is_set(tls->client_ca_file))
        rc = read_pem(tls->client_ca_file, "TLS client_ca_file", "CERTIFICATE",
                      &ca, err, errlen);
    if (rc == TRELLIS_OK) {
        grpc_ssl_pem_key_cert_pair pair = {key, cert};
        *out = grpc_ssl_server_credentials_create_ex(
            ca, &pair, 1,
            ca != NULL
                ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
            NULL);
        if (*out == NULL)
            rc = tr_errf(TRELLIS_INVALID_ARGUMENT, err, errlen,
                         "TLS: gRPC refused the server certificate or key");
    }
    free(cert);
    free(key);
    free(ca);
    return rc;
}

/* ---- trellis_call_unary's TLS ---------------------------------------- */

/* A setting replaced by a later one: kept (reachable) for the life of the
 * process, since channels made with it may still borrow its credentials. */
typedef struct retired_creds {
    struct retired_creds *next;
    grpc_channel_credentials *creds;
} retired_creds_t;

static struct {
    pthread_mutex_t lock;
    grpc_channel_credentials *creds; /* NULL: plaintext */
    char *server_name;
    retired_creds_t *retired;
} call_tls = {.lock = PTHREAD_MUTEX_INITIALIZER};

trellis_rc_t trellis_call_unary_set_tls(const trellis_tls_t *tls, char *err,
                                        size_t errlen)
{
    tr_err_clear(err, errlen);
    tr_grpc_init_once();
    grpc_channel_credentials *creds = NULL;
    char *name = NULL;
    if (tls != NULL) {
        trellis_rc_t rc = tr_tls_channel_creds(tls, &creds, err, errlen);
        if (rc != TRELLIS_OK)
            return rc;
        if (is_set(tls->server_name) &&
            (name = strdup(tls->server_name)) == NULL) {
            grpc_channel_credentials_release(creds);
            return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                           "out of memory");
        }
    }
    /* The previous credentials stay alive: channels made with them may
     * still borrow them (see tr_tls_apply_call_settings). */
    retired_creds_t *retired = calloc(1, sizeof(*retired));
    if (!retired) {
        if (creds)
            grpc_channel_credentials_release(creds);
        free(name);
        return tr_errf(TRELLIS_RESOURCE_EXHAUSTED, err, errlen,
                       "out of memory");
    }
    pthread_mutex_lock(&call_tls.lock);
    char *old_name = call_tls.server_name;
    retired->creds = call_tls.creds;
    retired->next = call_tls.retired;
    call_tls.retired = retired;
    call_tls.creds = creds;
    call_tls.server_name = name;
    pthread_mutex_unlock(&call_tls.lock);
    free(old_name);
    return TRELLIS_OK;
}

void tr_tls_apply_call_settings(tr_chan_slot_t *s)
{
    pthread_mutex_lock(&call_tls.lock);
    /* The C API has no way to take a reference on credentials: the slot
     * borrows them, and trellis_call_unary_set_tls keeps a setting it
     * replaces until exit (a few bytes, once per setting). */
    s->creds = call_tls.creds;
    s->creds_owned = 0;
    s->server_name =
        call_tls.server_name != NULL ? strdup(call_tls.server_name) : NULL;
    pthread_mutex_unlock(&call_tls.lock);
}
