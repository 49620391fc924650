/*
 * tm_tls: PEM files to gRPC credentials (see tm_tls.h). Owns nothing past
 * a call: the PEM text is copied by gRPC and freed here.
 */
#include "tm_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PEM files are small; anything larger is not one. */
#define PEM_MAX (1u << 20)

static int is_set(const char *s)
{
    return s && *s;
}

int tm_tls_read_pem(const char *path, const char *setting, const char *kind,
                    char **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read %s: %s", setting, path,
                 strerror(errno));
        return -1;
    }
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    int read_err = ferror(f);
    fclose(f);
    if (!buf || read_err || n > PEM_MAX) {
        snprintf(err, errlen, "%s: cannot read %s (%s)", setting, path,
                 !buf       ? "out of memory"
                 : read_err ? "read error"
                            : "too large");
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    char marker[64];
    snprintf(marker, sizeof(marker), "%s-----", kind);
    if (strlen(buf) != n || !strstr(buf, "-----BEGIN ") ||
        !strstr(buf, marker)) {
        snprintf(err, errlen, "%s: %s holds no PEM %s", setting, path, kind);
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

int tm_tls_server_creds(const char *cert, const char *key,
                        const char *client_ca, grpc_server_credentials **out,
                        char *err, size_t errlen)
{
    char *cert_pem = NULL, *key_pem = NULL, *ca_pem = NULL;
    *out = NULL;
    if (tm_tls_read_pem(cert, "tls-cert", "CERTIFICATE", &cert_pem, err,
                        errlen) != 0 ||
        tm_tls_read_pem(key, "tls-key", "PRIVATE KEY", &key_pem, err, errlen) !=
            0 ||
        (is_set(client_ca) &&
         tm_tls_read_pem(client_ca, "tls-client-ca", "CERTIFICATE", &ca_pem,
                         err, errlen) != 0))
        goto done;
    grpc_ssl_pem_key_cert_pair pair = {key_pem, cert_pem};
    *out = grpc_ssl_server_credentials_create_ex(
        ca_pem, &pair, 1,
        ca_pem ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
    if (!*out)
        snprintf(err, errlen, "tls-cert/tls-key: gRPC refused %s and %s", cert,
                 key);
done:
    free(cert_pem);
    free(key_pem);
    free(ca_pem);
    return *out ? 0 : -1;
}

int tm_tls_channel_creds(const char *ca, const char *cert, const char *key,
                         grpc_channel_credentials **out, char *err,
                         size_t errlen)
{
    char *ca_pem = NULL, *cert_pem = NULL, *key_pem = NULL;
    *out = NULL;
    if (is_set(cert) != is_set(key)) {
        snprintf(err, errlen,
                 "participant-tls-cert and participant-tls-key go together");
        return -1;
    }
    if (tm_tls_read_pem(ca, "participant-tls-ca", "CERTIFICATE", &ca_pem, err,
                        errlen) != 0 ||
        (is_set(cert) &&
         (tm_tls_read_pem(cert, "participant-tls-cert", "CERTIFICATE",
                          &cert_pem, err, errlen) != 0 ||
          tm_tls_read_pem(key, "participant-tls-key", "PRIVATE KEY", &key_pem,
                          err, errlen) != 0)))
        goto done;
    grpc_ssl_pem_key_cert_pair pair = {key_pem, cert_pem};
    *out = grpc_ssl_credentials_create(ca_pem, cert_pem ? &pair : NULL, NULL,
                                       NULL);
    if (!*out)
        snprintf(err, errlen, "participant-tls-ca: gRPC refused %s", ca);
done:
    free(ca_pem);
    free(cert_pem);
    free(key_pem);
    return *out ? 0 : -1;
}
