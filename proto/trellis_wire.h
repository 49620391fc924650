/*
 * trellis_wire: checks on the serialized bytes of a protobuf message that
 * cannot be made once protobuf-c has unpacked it.
 *
 * protobuf-c unpacks a string field into a NUL-terminated C string, so a
 * string that carries a 0 byte on the wire ("a\0b") reads as its prefix
 * ("a") everywhere after: two gids the client kept apart would become one
 * transaction. trellis_wire_check_strings walks the wire bytes with the
 * message's descriptor — into sub-messages, repeated fields and map
 * entries — and reports the first string field whose bytes hold a 0, by
 * its path ("gid", "steps[2].action", "options.branch_headers[0].value").
 *
 * Shared by trellisd (every request, before its handler runs) and
 * libtrellis (every reply from trellisd, before it is used); it needs
 * protobuf-c only. Pure: no allocation, no global state, any thread.
 */
#ifndef TRELLIS_WIRE_H
#define TRELLIS_WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* What trellis_wire_check_strings found. */
enum {
    TRELLIS_WIRE_OK = 0,        /* well-formed, no string holds a 0 byte */
    TRELLIS_WIRE_NUL = 1,       /* a string holds a 0 byte: err names it */
    TRELLIS_WIRE_MALFORMED = -1 /* not a message of type d (err says
                                   where): refuse it too. What cannot be
                                   walked cannot be checked, and protobuf-c
                                   accepts some framing the walk does not
                                   (a tag of field 0 written in two bytes),
                                   behind which a NUL would pass. */
};

/* Sub-messages nested deeper than this are TRELLIS_WIRE_MALFORMED (the
 * TM's messages nest four deep). */
#define TRELLIS_WIRE_MAX_DEPTH 16

/* Walk buf[0..len) as a message of type d. TRELLIS_WIRE_NUL fills
 * err[errlen] with "field <path> contains a NUL byte (at byte <i> of
 * <n>)"; TRELLIS_WIRE_MALFORMED with what could not be read. Unknown
 * fields are skipped; every occurrence of a field is checked, even one a
 * later occurrence would override. buf may be NULL when len is 0. */
int trellis_wire_check_strings(const ProtobufCMessageDescriptor *d,
                               const uint8_t *buf, size_t len, char *err,
                               size_t errlen);

#endif /* TRELLIS_WIRE_H */
