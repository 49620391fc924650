/*
 * trellis_wire.c: the wire-format walk behind trellis_wire_check_strings
 * (see trellis_wire.h).
 *
 * The walk reads the protobuf encoding itself — tag varint, then by wire
 * type a varint, 8 or 4 bytes, or a length and that many bytes — and looks
 * each field number up in the descriptor. Only length-delimited fields of
 * a known string or message type are looked into; everything else (bytes,
 * packed scalars, unknown fields) is skipped by its length. It allocates
 * nothing: the path of the field being read lives in a fixed buffer, and
 * the index of a repeated field is counted per message level on the stack
 * (TRELLIS_WIRE_MAX_DEPTH levels at most).
 *
 * Invariants: every read is bounds-checked against the current message's
 * end, and a sub-message's end never passes its parent's; so no input,
 * however malformed, reads outside buf.
 */
#include "trellis_wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PATH_MAX_LEN 256
/* Fields of one message whose repeats are counted for the path; a field
 * past this index is named without its index (the TM's messages have at
 * most 9 fields). */
#define COUNTED_FIELDS 32

typedef struct {
    char *err;
    size_t errlen;
    char path[PATH_MAX_LEN];
    size_t plen;
} walk_t;

static void say(walk_t *w, const char *fmt, ...)
{
    if (!w->err || w->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
}

/* Append ".name" (or "name" at the top) and "[index]" when index >= 0;
 * returns the length to restore. A path that does not fit is cut. */
static size_t path_push(walk_t *w, const char *name, long index)
{
    size_t before = w->plen;
    int n;
    if (index >= 0)
        n = snprintf(w->path + w->plen, sizeof w->path - w->plen, "%s%s[%ld]",
                     w->plen ? "." : "", name, index);
    else
        n = snprintf(w->path + w->plen, sizeof w->path - w->plen, "%s%s",
                     w->plen ? "." : "", name);
    if (n > 0)
        w->plen += (size_t)n < sizeof w->path - w->plen
                       ? (size_t)n
                       : sizeof w->path - w->plen - 1;
    return before;
}

static void path_pop(walk_t *w, size_t to)
{
    w->plen = to;
    w->path[to] = '\0';
}

/* A varint at buf[*pos], below end. 0, or -1 if it runs past end or past
 * ten bytes. */
static int read_varint(const uint8_t *buf, size_t end, size_t *pos,
                       uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70 && *pos < end; shift += 7) {
        uint8_t b = buf[(*pos)++];
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int is_looked_into(const ProtobufCFieldDescriptor *f)
{
    return f && (f->type == PROTOBUF_C_TYPE_STRING ||
                 f->type == PROTOBUF_C_TYPE_MESSAGE);
}

static int walk(walk_t *w, const ProtobufCMessageDescriptor *d,
                const uint8_t *buf, size_t start, size_t end, int depth);

/* One length-delimited field of a string or message type, at
 * buf[start..end). */
static int walk_field(walk_t *w, const ProtobufCFieldDescriptor *f, long index,
                      const uint8_t *buf, size_t start, size_t end, int depth)
{
    size_t mark = path_push(w, f->name, index);
    int rc = TRELLIS_WIRE_OK;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const uint8_t *nul = memchr(buf + start, 0, end - start);
        if (nul) {
            say(w, "field %s contains a NUL byte (at byte %zu of %zu)", w->path,
                (size_t)(nul - (buf + start)), end - start);
            rc = TRELLIS_WIRE_NUL;
        }
    } else {
        rc = walk(w, f->descriptor, buf, start, end, depth + 1);
    }
    path_pop(w, mark);
    return rc;
}

static int walk(walk_t *w, const ProtobufCMessageDescriptor *d,
                const uint8_t *buf, size_t start, size_t end, int depth)
{
    unsigned seen[COUNTED_FIELDS] = {0};
    size_t pos = start, at = start;
    if (!d || depth > TRELLIS_WIRE_MAX_DEPTH) {
        say(w, "%s nested deeper than %d messages", d ? d->name : "message",
            TRELLIS_WIRE_MAX_DEPTH);
        return TRELLIS_WIRE_MALFORMED;
    }
    while (pos < end) {
        uint64_t tag, n;
        at = pos;
        if (read_varint(buf, end, &pos, &tag) != 0 || (tag >> 3) == 0 ||
            (tag >> 3) > 0x1fffffff) {
            say(w, "%s: bad tag at byte %zu", d->name, at);
            return TRELLIS_WIRE_MALFORMED;
        }
        unsigned wire = (unsigned)(tag & 7);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
        if (is_looked_into(f) && wire != 2) {
            say(w, "%s: field %s has wire type %u at byte %zu", d->name,
                f->name, wire, at);
            return TRELLIS_WIRE_MALFORMED;
        }
        switch (wire) {
        case 0:
            if (read_varint(buf, end, &pos, &n) != 0)
                goto truncated;
            break;
        case 1:
        case 5: {
            size_t width = wire == 1 ? 8 : 4;
            if (end - pos < width)
                goto truncated;
            pos += width;
            break;
        }
        case 2: {
            if (read_varint(buf, end, &pos, &n) != 0 || n > end - pos)
                goto truncated;
            size_t from = pos;
            pos += (size_t)n;
            if (!is_looked_into(f))
                break;
            long index = -1;
            if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                size_t i = (size_t)(f - d->fields);
                if (i < COUNTED_FIELDS)
                    index = (long)seen[i]++;
            }
            int rc = walk_field(w, f, index, buf, from, pos, depth);
            if (rc != TRELLIS_WIRE_OK)
                return rc;
            break;
        }
        default: /* groups (3, 4) and 6, 7: not in proto3 */
            say(w, "%s: wire type %u at byte %zu", d->name, wire, at);
            return TRELLIS_WIRE_MALFORMED;
        }
    }
    return TRELLIS_WIRE_OK;
truncated:
    say(w, "%s: the field at byte %zu runs past the end", d->name, at);
    return TRELLIS_WIRE_MALFORMED;
}

int trellis_wire_check_strings(const ProtobufCMessageDescriptor *d,
                               const uint8_t *buf, size_t len, char *err,
                               size_t errlen)
{
    walk_t w = {.err = err, .errlen = errlen, .plen = 0};
    w.path[0] = '\0';
    if (err && errlen)
        err[0] = '\0';
    if (len == 0)
        return TRELLIS_WIRE_OK;
    if (!buf) {
        say(&w, "no bytes");
        return TRELLIS_WIRE_MALFORMED;
    }
    return walk(&w, d, buf, 0, len, 0);
}
