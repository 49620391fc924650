/*
 * trellis_target: the target syntax of the participant protocol,
 * "host:port/package.Service/Method", parsed in one place so that trellisd
 * and libtrellis accept exactly the same targets. host is a name, an IPv4
 * address or "[IPv6]"; port 1..65535; the service has a package (at least
 * two dotted identifiers); the method is an identifier.
 *
 * Pure and thread safe.
 */
#ifndef TRELLIS_TARGET_H
#define TRELLIS_TARGET_H

#define TRELLIS_TARGET_HOSTPORT_MAX 255
#define TRELLIS_TARGET_METHOD_MAX 255

typedef struct {
    char host_port[TRELLIS_TARGET_HOSTPORT_MAX + 1]; /* "host:port" */
    char method[TRELLIS_TARGET_METHOD_MAX + 1]; /* "/package.Service/Method" */
} trellis_target_t;

typedef enum {
    TRELLIS_TARGET_OK = 0,
    TRELLIS_TARGET_EMPTY = 1,
    TRELLIS_TARGET_BAD_SHAPE = 2,
    TRELLIS_TARGET_TOO_LONG = 3,
} trellis_target_rc_t;

/* Parse target; out (may be NULL) gets its two halves. */
trellis_target_rc_t trellis_target_parse(const char *target,
                                         trellis_target_t *out);

#endif /* TRELLIS_TARGET_H */
