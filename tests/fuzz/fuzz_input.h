/*
 * fuzz_input: a cursor over one fuzzer input, so that every target reads
 * its bytes the same way: single bytes, big-endian lengths, chunks and
 * lines. Reading past the end is not an error: bytes read as 0 and chunks
 * come back short, so every input, however cut, is a valid sequence of
 * fields and the fuzzer never wastes runs on framing.
 *
 * Also fz_require, the targets' way to fail on a broken invariant.
 *
 * Shared by the targets of tests/fuzz only; single-threaded like libFuzzer.
 */
#ifndef FUZZ_INPUT_H
#define FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *p; /* borrowed from the fuzzer */
    size_t n;         /* bytes left */
} fz_in_t;

fz_in_t fz_in(const uint8_t *data, size_t size);

/* The next byte; 0 once the input is exhausted. */
uint8_t fz_u8(fz_in_t *in);

/* The next two bytes, big-endian; missing bytes read as 0. */
uint16_t fz_u16(fz_in_t *in);

/* Up to want bytes: *out points into the input (borrowed); returns how
 * many there were. */
size_t fz_take(fz_in_t *in, size_t want, const uint8_t **out);

/* A chunk framed by a 2-byte length (fz_u16) then that many bytes. */
size_t fz_chunk(fz_in_t *in, const uint8_t **out);

/* The bytes up to the next '\n' (not included; the '\n' is consumed).
 * Returns 0 once the input is exhausted, else 1. */
int fz_line(fz_in_t *in, const uint8_t **out, size_t *len);

/* A NUL-terminated copy of n bytes (which may contain NULs: C code then
 * sees the prefix, as it would from a wire string). The caller frees it.
 * Aborts when out of memory: the fuzzer's own malloc limit is the test. */
char *fz_strndup(const uint8_t *p, size_t n);

/* An invariant of the code under test: when cond is false, print what
 * broke to stderr and abort, which libFuzzer reports as a crash (and keeps
 * the input). */
void fz_require(int cond, const char *what);

struct ProtobufCMessage;

/* m, decoded from bytes trellis_wire_check_strings accepted, packs back
 * into bytes it accepts too (fz_require): the walk and protobuf-c frame a
 * message alike, so no NUL can hide behind framing only one of them
 * reads. */
void fz_require_repack_checks(const struct ProtobufCMessage *m);

#endif /* FUZZ_INPUT_H */
