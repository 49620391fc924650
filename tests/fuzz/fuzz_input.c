/*
 * fuzz_input: the input cursor of the fuzz targets (see fuzz_input.h).
 */
#include "fuzz_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "trellis_wire.h"

fz_in_t fz_in(const uint8_t *data, size_t size)
{
    fz_in_t in = {data, size};
    return in;
}

uint8_t fz_u8(fz_in_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

uint16_t fz_u16(fz_in_t *in)
{
    uint16_t hi = fz_u8(in);
    return (uint16_t)(hi << 8 | fz_u8(in));
}

size_t fz_take(fz_in_t *in, size_t want, const uint8_t **out)
{
    size_t n = want < in->n ? want : in->n;
    *out = in->p;
    in->p += n;
    in->n -= n;
    return n;
}

size_t fz_chunk(fz_in_t *in, const uint8_t **out)
{
    return fz_take(in, fz_u16(in), out);
}

int fz_line(fz_in_t *in, const uint8_t **out, size_t *len)
{
    if (in->n == 0)
        return 0;
    const uint8_t *nl = memchr(in->p, '\n', in->n);
    size_t n = nl ? (size_t)(nl - in->p) : in->n;
    *out = in->p;
    *len = n;
    in->p += nl ? n + 1 : n;
    in->n -= nl ? n + 1 : n;
    return 1;
}

char *fz_strndup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void fz_require(int cond, const char *what)
{
    if (cond)
        return;
    fprintf(stderr, "fuzz invariant broken: %s\n", what);
    abort();
}

void fz_require_repack_checks(const ProtobufCMessage *m)
{
    char why[256];
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *back = malloc(n ? n : 1);
    fz_require(back != NULL, "out of memory");
    protobuf_c_message_pack(m, back);
    fz_require(trellis_wire_check_strings(m->descriptor, back, n, why,
                                          sizeof(why)) == TRELLIS_WIRE_OK,
               "protobuf-c's own packing fails the wire check");
    free(back);
}
