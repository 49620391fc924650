/*
 * fuzz_target: libFuzzer target for the participant protocol's target
 * syntax, "host:port/package.Service/Method", as trellisd and libtrellis
 * parse it from requests (trellis_target_parse, tm_parse_target,
 * tr_ap_check_target).
 *
 * Input: the target string's bytes (a NUL ends it early, as it would a
 * protobuf string handed to C). Invariants: the three entry points agree;
 * an accepted target splits into two halves that join back into the
 * input, a host:port and a method starting with '/', both within their
 * buffers; a refusal says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "internal.h"
#include "tm_validate.h"
#include "trellis_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_halves(const char *s, const trellis_target_t *t)
{
    size_t hp = strnlen(t->host_port, sizeof(t->host_port));
    size_t m = strnlen(t->method, sizeof(t->method));
    fz_require(hp < sizeof(t->host_port) && m < sizeof(t->method),
               "a half fills its buffer without a NUL");
    fz_require(hp > 0 && strchr(t->host_port, ':') != NULL,
               "host_port without a colon");
    fz_require(t->method[0] == '/' && strchr(t->method + 1, '/') != NULL,
               "method is not /package.Service/Method");
    fz_require(strncmp(s, t->host_port, hp) == 0 &&
                   strcmp(s + hp, t->method) == 0,
               "the halves do not join back into the target");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fz_strndup(data, size);
    trellis_target_t t;
    memset(&t, 0x5a, sizeof(t)); /* no help from a zeroed buffer */
    trellis_target_rc_t rc = trellis_target_parse(s, &t);
    fz_require(trellis_target_parse(s, NULL) == rc,
               "the result depends on whether out is given");
    char err[512] = "";
    int tm = tm_parse_target(s, "steps[0].action", NULL, err, sizeof(err));
    fz_require((tm == 0) == (rc == TRELLIS_TARGET_OK),
               "trellisd and trellis_target_parse disagree");
    fz_require(tm == 0 || err[0] != '\0', "a refusal without a message");
    char sdk_err[512] = "";
    trellis_rc_t sdk =
        tr_ap_check_target(s, "action", sdk_err, sizeof(sdk_err));
    fz_require((sdk == TRELLIS_OK) == (rc == TRELLIS_TARGET_OK),
               "libtrellis and trellisd disagree on a target");
    if (rc == TRELLIS_TARGET_OK)
        check_halves(s, &t);
    free(s);
    return 0;
}
