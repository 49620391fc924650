/*
 * errors.c — how the SDK tells its caller what went wrong: a gRPC status
 * code as the return value and a human sentence in the caller's err buffer.
 *
 * Messages are truncated to the buffer, always NUL-terminated, and never
 * written when err is NULL or errlen is 0, so callers that only look at the
 * rc may pass NULL, 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

trellis_rc_t tr_errf(trellis_rc_t rc, char *err, size_t errlen, const char *fmt,
                     ...)
{
    if (err == NULL || errlen == 0)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

void tr_err_clear(char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
}

const char *tr_status_name(int code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    static _Thread_local char other[32];
    if (code >= 0 && (size_t)code < sizeof names / sizeof names[0])
        return names[code];
    snprintf(other, sizeof other, "status %d", code);
    return other;
}

char *tr_strdup0(const char *s)
{
    return strdup(s != NULL ? s : "");
}

void tr_copy_out(char *dst, size_t dstlen, const char *src)
{
    if (dst != NULL && dstlen > 0)
        snprintf(dst, dstlen, "%s", src != NULL ? src : "");
}
