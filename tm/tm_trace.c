/*
 * tm_trace: the checks of W3C trace context values (see tm_trace.h for the
 * rules and why trellisd keeps them). Pure: bytes in, verdicts out.
 *
 * Values come from the wire, with a length: every byte is checked, so a
 * NUL inside or a byte outside printable ASCII makes the value invalid
 * rather than cutting it short. A tab, which W3C allows around a
 * tracestate's commas, is refused too: gRPC sends only printable ASCII in
 * a text header, so such a value could not be forwarded unchanged.
 */
#include "tm_trace.h"

#include <stdio.h>
#include <string.h>

#define TRACEPARENT_V0_LEN 55
#define TRACESTATE_KEY_MAX 256
#define TRACESTATE_TENANT_MAX 241
#define TRACESTATE_SYSTEM_MAX 14
#define TRACESTATE_VALUE_MAX 256

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* n lower-case hex digits at s; with nonzero, not all of them '0'. */
static int hex_run(const char *s, size_t n, int nonzero)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_lower_hex(s[i]))
            return 0;
        any |= s[i] != '0';
    }
    return !nonzero || any;
}

static int is_visible(char c)
{
    return c >= 0x21 && c <= 0x7e;
}

int tm_trace_parent_valid(const char *v, size_t len)
{
    if (!v || len < TRACEPARENT_V0_LEN || len > TM_TRACEPARENT_MAX)
        return 0;
    if (!hex_run(v, 2, 0) || memcmp(v, "ff", 2) == 0)
        return 0;
    if (v[2] != '-' || !hex_run(v + 3, TM_TRACE_ID_LEN, 1) || v[35] != '-' ||
        !hex_run(v + 36, 16, 1) || v[52] != '-' || !hex_run(v + 53, 2, 0))
        return 0;
    if (memcmp(v, "00", 2) == 0)
        return len == TRACEPARENT_V0_LEN;
    /* A later version: what follows version 00's fields starts with "-". */
    if (len == TRACEPARENT_V0_LEN)
        return 1;
    if (v[TRACEPARENT_V0_LEN] != '-')
        return 0;
    for (size_t i = TRACEPARENT_V0_LEN + 1; i < len; i++)
        if (!is_visible(v[i]))
            return 0;
    return 1;
}

/* A character of a key after its first: a-z 0-9 _ - * / */
static int is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '*' || c == '/';
}

/* k[n] is a simple key (first a-z) or a tenant id (first a-z or 0-9) of
 * at most max characters. */
static int key_part_valid(const char *k, size_t n, size_t max, int digit_first)
{
    if (n == 0 || n > max)
        return 0;
    int first_ok = (k[0] >= 'a' && k[0] <= 'z') ||
                   (digit_first && k[0] >= '0' && k[0] <= '9');
    if (!first_ok)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!is_key_char(k[i]))
            return 0;
    return 1;
}

static int key_valid(const char *k, size_t n)
{
    const char *at = memchr(k, '@', n);
    if (!at)
        return key_part_valid(k, n, TRACESTATE_KEY_MAX, 0);
    size_t tenant = (size_t)(at - k);
    return key_part_valid(k, tenant, TRACESTATE_TENANT_MAX, 1) &&
           key_part_valid(at + 1, n - tenant - 1, TRACESTATE_SYSTEM_MAX, 0);
}

/* 1..256 of 0x20-0x7e but "," and "=", not ending in a space. */
static int value_valid(const char *v, size_t n)
{
    if (n == 0 || n > TRACESTATE_VALUE_MAX || v[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=')
            return 0;
    return 1;
}

typedef struct {
    const char *key;
    size_t len;
} key_ref_t;

/* One member m[n] without its surrounding spaces: "" (counts for
 * nothing), or key=value with a key not seen before (added to keys). */
static int member_valid(const char *m, size_t n, key_ref_t *keys,
                        size_t *n_keys)
{
    while (n && m[0] == ' ')
        m++, n--;
    while (n && m[n - 1] == ' ')
        n--;
    if (n == 0)
        return 1;
    const char *eq = memchr(m, '=', n);
    if (!eq || *n_keys == TM_TRACESTATE_MEMBERS_MAX)
        return 0;
    size_t kn = (size_t)(eq - m);
    if (!key_valid(m, kn) || !value_valid(eq + 1, n - kn - 1))
        return 0;
    for (size_t i = 0; i < *n_keys; i++)
        if (keys[i].len == kn && memcmp(keys[i].key, m, kn) == 0)
            return 0;
    keys[(*n_keys)++] = (key_ref_t){m, kn};
    return 1;
}

/* Checks v[len]; *members gets how many non-empty members it has. */
static int state_check(const char *v, size_t len, size_t *members)
{
    key_ref_t keys[TM_TRACESTATE_MEMBERS_MAX];
    *members = 0;
    if (!v || len > TM_TRACESTATE_MAX)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && v[i] != ',')
            continue;
        if (!member_valid(v + start, i - start, keys, members))
            return 0;
        start = i + 1;
    }
    return 1;
}

int tm_trace_state_valid(const char *v, size_t len)
{
    size_t members;
    return state_check(v, len, &members);
}

/* The states joined with "," into out[TM_TRACESTATE_MAX + 1]; -1 when
 * they do not fit. */
static int join_states(const tm_trace_value_t *s, size_t ns, char *out,
                       size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < ns; i++) {
        size_t need = s[i].len + (i ? 1 : 0);
        if (n + need > TM_TRACESTATE_MAX)
            return -1;
        if (i)
            out[n++] = ',';
        memcpy(out + n, s[i].value, s[i].len);
        n += s[i].len;
    }
    out[n] = '\0';
    *len = n;
    return 0;
}

unsigned tm_trace_take(tm_trace_t *out, const tm_trace_value_t *parents,
                       size_t np, const tm_trace_value_t *states, size_t ns)
{
    out->traceparent[0] = out->tracestate[0] = '\0';
    unsigned state_sent = ns ? TM_TRACE_DROPPED_STATE : 0;
    if (np == 0)
        return state_sent;
    if (np > 1 || !tm_trace_parent_valid(parents[0].value, parents[0].len))
        return TM_TRACE_DROPPED_PARENT | state_sent;
    memcpy(out->traceparent, parents[0].value, parents[0].len);
    out->traceparent[parents[0].len] = '\0';
    if (ns == 0)
        return 0;
    size_t len, members;
    if (join_states(states, ns, out->tracestate, &len) != 0 ||
        !state_check(out->tracestate, len, &members)) {
        out->tracestate[0] = '\0';
        return TM_TRACE_DROPPED_STATE;
    }
    if (members == 0) /* only empty members: nothing to hand on */
        out->tracestate[0] = '\0';
    return 0;
}

const char *tm_trace_log_field(const char *traceparent, char *buf, size_t len)
{
    if (!traceparent || strlen(traceparent) < 3 + TM_TRACE_ID_LEN)
        snprintf(buf, len, "%s", "");
    else
        snprintf(buf, len, " trace_id=%.*s", TM_TRACE_ID_LEN, traceparent + 3);
    return buf;
}
