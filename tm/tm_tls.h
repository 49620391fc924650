/*
 * tm_tls: trellisd's TLS credentials, built from PEM files named in its
 * settings — the server side of its API (tls-cert, tls-key, and with
 * tls-client-ca mutual TLS: clients must present a certificate signed by
 * that CA) and the client side of its calls to participants
 * (participant-tls-ca, and participant-tls-cert/-key for mutual TLS).
 *
 * Files are read once, at start; a missing or unreadable file, or one that
 * holds no PEM block of the expected kind, is an error naming the setting
 * and the path. Not thread-safe, not meant to be: call from main.
 */
#ifndef TM_TLS_H
#define TM_TLS_H

#include <grpc/grpc_security.h>
#include <stddef.h>

/* Read the PEM file at path (the value of `setting`, named in messages)
 * into *out, NUL-terminated; *out is the caller's (free). kind is the text
 * the file must contain ("CERTIFICATE", "PRIVATE KEY"). */
int tm_tls_read_pem(const char *path, const char *setting, const char *kind,
                    char **out, char *err, size_t errlen);

/* Server credentials for cert and key (PEM files); with client_ca (NULL or
 * "" for none) every client must present a certificate that chains to it
 * (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY). *out is the
 * caller's: grpc_server_credentials_release. */
int tm_tls_server_creds(const char *cert, const char *key,
                        const char *client_ca, grpc_server_credentials **out,
                        char *err, size_t errlen);

/* Channel credentials that verify the peer against ca (PEM file) and, with
 * cert and key (both or neither; NULL or ""), present that certificate for
 * mutual TLS. *out is the caller's: grpc_channel_credentials_release. */
int tm_tls_channel_creds(const char *ca, const char *cert, const char *key,
                         grpc_channel_credentials **out, char *err,
                         size_t errlen);

#endif /* TM_TLS_H */
