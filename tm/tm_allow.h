/*
 * tm_allow: the target allowlist (`allow-targets`). trellisd calls only
 * participants whose "host:port" matches one of these patterns, so it never
 * becomes a proxy into the network for whoever can reach its API.
 *
 * A pattern is "host:port" where host is a name, an IPv4 address or
 * "[IPv6]", and `*` stands for any run of characters (also none) within the
 * host or within the port; it never crosses the ':' between them. Hosts
 * compare without regard to ASCII case; nothing is resolved, so a pattern
 * matches the target's text only (127.0.0.1 does not match 127.1). Examples:
 * "127.0.0.1:*", "*.payments.svc:50051", "[::1]:*", "*:*" (anything).
 *
 * Pure functions, no allocation: a tm_allowlist_t is a plain value that
 * may be copied and read from any thread.
 */
#ifndef TM_ALLOW_H
#define TM_ALLOW_H

#include <stddef.h>

#define TM_ALLOW_MAX 32          /* patterns in one list */
#define TM_ALLOW_PATTERN_MAX 255 /* characters of one pattern */
#define TM_ALLOW_TEXT_MAX 1024   /* characters of the whole setting */

/* The default: loopback only. */
#define TM_ALLOW_DEFAULT "127.0.0.1:*,localhost:*,[::1]:*"

typedef struct {
    size_t n;
    char patterns[TM_ALLOW_MAX][TM_ALLOW_PATTERN_MAX + 1];
    char text[TM_ALLOW_TEXT_MAX + 1]; /* the setting as given, for messages */
} tm_allowlist_t;

/* Parse a comma-separated list of patterns (spaces around commas are
 * ignored) into *a. Returns 0, or -1 with err naming the bad pattern; *a is
 * then unchanged. An empty list is refused: it would refuse every target. */
int tm_allow_parse(tm_allowlist_t *a, const char *spec, char *err,
                   size_t errlen);

/* 1 when host_port ("host:port") matches pattern, else 0. */
int tm_allow_match_pattern(const char *pattern, const char *host_port);

/* 1 when host_port matches any pattern of a, else 0. */
int tm_allow_match(const tm_allowlist_t *a, const char *host_port);

#endif /* TM_ALLOW_H */
