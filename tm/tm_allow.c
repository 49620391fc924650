/*
 * tm_allow: parsing and matching of the target allowlist (see tm_allow.h).
 * Matching is a glob with `*` only, applied separately to the host and to
 * the port, so a wildcard in the host can never swallow the port.
 */
#include "tm_allow.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Glob match of pattern p[pn] against s[sn]; `*` matches any run. The
 * classic one-star backtracking: O(pn * sn) at worst, both short here. */
static int glob_match(const char *p, size_t pn, const char *s, size_t sn,
                      int fold)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pn && (fold ? tolower((unsigned char)p[pi]) ==
                                          tolower((unsigned char)s[si])
                                    : p[pi] == s[si])) {
            pi++;
            si++;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            si = ++mark;
        } else {
            return 0;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

/* The ':' between host and port: the last one ("[::1]:80"). */
static const char *port_colon(const char *s, size_t n)
{
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == ':')
            return s + i - 1;
    return NULL;
}

int tm_allow_match_pattern(const char *pattern, const char *host_port)
{
    if (!pattern || !host_port)
        return 0;
    size_t pn = strlen(pattern), sn = strlen(host_port);
    const char *pc = port_colon(pattern, pn);
    const char *sc = port_colon(host_port, sn);
    if (!pc || !sc)
        return 0;
    size_t ph = (size_t)(pc - pattern), sh = (size_t)(sc - host_port);
    return glob_match(pattern, ph, host_port, sh, 1) &&
           glob_match(pc + 1, pn - ph - 1, sc + 1, sn - sh - 1, 0);
}

int tm_allow_match(const tm_allowlist_t *a, const char *host_port)
{
    for (size_t i = 0; i < a->n; i++)
        if (tm_allow_match_pattern(a->patterns[i], host_port))
            return 1;
    return 0;
}

static int is_host_pattern(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']')
            return 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (!isxdigit((unsigned char)s[i]) && !strchr(":.*", s[i]))
                return 0;
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '*')
            return 0;
    }
    return 1;
}

static int is_port_pattern(const char *s, size_t n)
{
    if (n == 0 || n > 5 + 4)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && s[i] != '*')
            return 0;
    return 1;
}

/* Check one pattern p[n] (trimmed) and store it as entry k of a. */
static int add_pattern(tm_allowlist_t *a, const char *p, size_t n, char *err,
                       size_t errlen)
{
    const char *colon = port_colon(p, n);
    size_t hn = colon ? (size_t)(colon - p) : 0;
    if (n == 0 || n > TM_ALLOW_PATTERN_MAX || !colon ||
        !is_host_pattern(p, hn) || !is_port_pattern(colon + 1, n - hn - 1)) {
        snprintf(err, errlen,
                 "\"%.*s\" is not a host:port pattern (host a name, IPv4 or "
                 "[IPv6], port digits; * for any run of characters)",
                 (int)(n > 200 ? 200 : n), p);
        return -1;
    }
    if (a->n == TM_ALLOW_MAX) {
        snprintf(err, errlen, "more than %d patterns", TM_ALLOW_MAX);
        return -1;
    }
    memcpy(a->patterns[a->n], p, n);
    a->patterns[a->n][n] = '\0';
    a->n++;
    return 0;
}

int tm_allow_parse(tm_allowlist_t *a, const char *spec, char *err,
                   size_t errlen)
{
    tm_allowlist_t next; /* about 9 KiB: parsed aside, copied on success */
    tm_allowlist_t *out = &next;
    if (!spec || strlen(spec) > TM_ALLOW_TEXT_MAX) {
        snprintf(err, errlen, "the list is longer than %d characters",
                 TM_ALLOW_TEXT_MAX);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && isspace((unsigned char)*p))
            p++;
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        if (add_pattern(out, p, (size_t)(end - p), err, errlen) != 0)
            return -1;
        if (!comma)
            break;
        p = comma + 1;
    }
    snprintf(out->text, sizeof(out->text), "%s", spec);
    *a = *out;
    return 0;
}
