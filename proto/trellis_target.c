/*
 * trellis_target: the participant protocol's target syntax (see
 * trellis_target.h).
 */
#include "trellis_target.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int is_identifier(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

/* "package.Service": at least two identifiers joined by dots. */
static int is_qualified_service(const char *s, size_t n)
{
    size_t start = 0, parts = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (!is_identifier(s + start, i - start))
                return 0;
            parts++;
            start = i + 1;
        }
    }
    return parts >= 2;
}

/* A host name, an IPv4 address or "[IPv6]". */
static int is_host(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] == '[')
        return n > 2 && s[n - 1] == ']' &&
               strspn(s + 1, "0123456789abcdefABCDEF:.") == n - 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '.'))
            return 0;
    }
    return s[0] != '-' && s[0] != '.';
}

static int is_port(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return 0;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

trellis_target_rc_t trellis_target_parse(const char *target,
                                         trellis_target_t *out)
{
    if (!target || !*target)
        return TRELLIS_TARGET_EMPTY;
    size_t len = strlen(target);
    if (len > TRELLIS_TARGET_HOSTPORT_MAX + TRELLIS_TARGET_METHOD_MAX)
        return TRELLIS_TARGET_TOO_LONG;
    const char *slash = strchr(target, '/');
    const char *last = strrchr(target, '/');
    if (!slash || slash == last)
        return TRELLIS_TARGET_BAD_SHAPE;
    const char *colon = NULL;
    for (const char *p = slash; p > target && !colon; p--)
        if (p[-1] == ':')
            colon = p - 1;
    if (!colon || !is_host(target, (size_t)(colon - target)) ||
        !is_port(colon + 1, (size_t)(slash - colon - 1)) ||
        !is_qualified_service(slash + 1, (size_t)(last - slash - 1)) ||
        !is_identifier(last + 1, strlen(last + 1)))
        return TRELLIS_TARGET_BAD_SHAPE;
    if ((size_t)(slash - target) > TRELLIS_TARGET_HOSTPORT_MAX ||
        strlen(slash) > TRELLIS_TARGET_METHOD_MAX)
        return TRELLIS_TARGET_TOO_LONG;
    if (out) {
        snprintf(out->host_port, sizeof(out->host_port), "%.*s",
                 (int)(slash - target), target);
        snprintf(out->method, sizeof(out->method), "%s", slash);
    }
    return TRELLIS_TARGET_OK;
}
