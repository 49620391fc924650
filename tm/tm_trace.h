/*
 * tm_trace: W3C trace context (https://www.w3.org/TR/trace-context/) as
 * trellisd takes it from an initiator's request and hands it on to every
 * branch call of the transaction that request created.
 *
 * This file owns the checks of the two header values and nothing else:
 * pure functions over bytes, no gRPC, no model. trellisd reads the
 * request's metadata (tm_api.c), keeps what passes these checks in the
 * transaction's options (tm_options_t.traceparent/.tracestate, stored in
 * the options blob, so it survives a restart and a takeover) and sends it
 * unchanged with each call (tm_engine_calls.c). trellisd makes no span of
 * its own: it forwards the initiator's parent-id, so the participants'
 * spans are children of the initiator's span (see docs/architecture.md,
 * "Trace context").
 *
 * The rules:
 *  - traceparent: version "-" trace-id "-" parent-id "-" flags, all in
 *    lower-case hex: version 2 digits and not "ff"; trace-id 32 digits,
 *    not all zero; parent-id 16 digits, not all zero; flags 2 digits.
 *    Version 00 is exactly 55 characters; a later version may be longer
 *    (its first 55 characters read as version 00's, then "-" and more
 *    printable ASCII), up to TM_TRACEPARENT_MAX. Sent more than once in a
 *    request: invalid.
 *  - tracestate: at most 32 list members "key=value", separated by ","
 *    with optional spaces or tabs around it (empty members are allowed
 *    and count for nothing); keys as W3C's (simple "a-z0-9_-*\/" starting
 *    with a-z, at most 256; or tenant@system), no key twice; values 1..256
 *    printable ASCII without "," or "=", not ending in a space; the whole
 *    at most TM_TRACESTATE_MAX characters. Sent in several entries, they
 *    are joined with "," as W3C joins repeated headers. Kept only with a
 *    valid traceparent.
 *  - Anything else (a NUL byte, a byte outside printable ASCII, upper-case
 *    hex, too long) makes the value invalid. An invalid value is not an
 *    error for the request: it is dropped, and the caller counts it.
 */
#ifndef TM_TRACE_H
#define TM_TRACE_H

#include <stddef.h>

/* The request metadata keys (lower case, as gRPC delivers them). */
#define TM_TRACEPARENT_KEY "traceparent"
#define TM_TRACESTATE_KEY "tracestate"

/* Longest traceparent kept (version 00 is 55; later versions may add). */
#define TM_TRACEPARENT_MAX 256
/* Longest tracestate kept (W3C: propagate at least 512). */
#define TM_TRACESTATE_MAX 512
/* Most list members in a tracestate (W3C). */
#define TM_TRACESTATE_MEMBERS_MAX 32
/* Length of a trace id in hex. */
#define TM_TRACE_ID_LEN 32

/* One metadata value as received: len bytes, not NUL-terminated. */
typedef struct {
    const char *value;
    size_t len;
} tm_trace_value_t;

/* A request's trace context: C strings, "" when absent or dropped. */
typedef struct {
    char traceparent[TM_TRACEPARENT_MAX + 1];
    char tracestate[TM_TRACESTATE_MAX + 1];
} tm_trace_t;

/* What tm_trace_take dropped. */
#define TM_TRACE_DROPPED_PARENT 1u /* a traceparent was sent, invalid */
#define TM_TRACE_DROPPED_STATE 2u  /* a tracestate was sent and not kept */

/* 1 when value[len] is a valid traceparent (the rules above), else 0. */
int tm_trace_parent_valid(const char *value, size_t len);

/* 1 when value[len] is a valid tracestate (the rules above), else 0. */
int tm_trace_state_valid(const char *value, size_t len);

/* The trace context of a request whose metadata carried parents[0..np)
 * under TM_TRACEPARENT_KEY and states[0..ns) under TM_TRACESTATE_KEY, into
 * *out (always filled). Returns the TM_TRACE_DROPPED_* bits of what was
 * sent and not kept (0: everything sent was kept, or nothing was sent). */
unsigned tm_trace_take(tm_trace_t *out, const tm_trace_value_t *parents,
                       size_t np, const tm_trace_value_t *states, size_t ns);

/* " trace_id=<32 hex>" for a log line carrying gid=, from a traceparent
 * kept by tm_trace_take (NULL or "": no trace context), into buf[len]
 * (at least 48 bytes); "" when there is none. Returns buf. */
const char *tm_trace_log_field(const char *traceparent, char *buf, size_t len);

#endif /* TM_TRACE_H */
