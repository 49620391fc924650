/*
 * fuzz_allow: libFuzzer target for the target allowlist (tm_allow.c):
 * the allow-targets setting as trellisd parses it from its flags or
 * config file, and the host:port of a request's targets matched against
 * it — the check that keeps trellisd from calling into the network for
 * whoever reaches its API.
 *
 * Input: the first line is the setting; each further line (up to 8) is a
 * host:port to match. Invariants: a refusal says why and leaves the list
 * as it was; an accepted list holds at most TM_ALLOW_MAX NUL-terminated
 * patterns, each matching itself; tm_allow_match is the OR of
 * tm_allow_match_pattern over the patterns.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "tm_allow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_list(const tm_allowlist_t *a)
{
    fz_require(a->n >= 1 && a->n <= TM_ALLOW_MAX, "pattern count");
    for (size_t i = 0; i < a->n; i++) {
        const char *p = a->patterns[i];
        fz_require(memchr(p, 0, TM_ALLOW_PATTERN_MAX + 1) != NULL,
                   "a pattern without its NUL");
        fz_require(tm_allow_match_pattern(p, p), "a pattern misses itself");
    }
}

static void check_match(const tm_allowlist_t *a, const char *host_port)
{
    int any = 0;
    for (size_t i = 0; i < a->n && !any; i++)
        any = tm_allow_match_pattern(a->patterns[i], host_port);
    fz_require(tm_allow_match(a, host_port) == any,
               "the list disagrees with its patterns");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t in = fz_in(data, size);
    const uint8_t *line;
    size_t len;
    if (!fz_line(&in, &line, &len))
        return 0;
    char *spec = fz_strndup(line, len);
    static tm_allowlist_t a, before;
    memset(&a, 0, sizeof(a));
    before = a;
    char err[512] = "";
    if (tm_allow_parse(&a, spec, err, sizeof(err)) != 0) {
        fz_require(err[0] != '\0', "a refusal without a message");
        fz_require(memcmp(&a, &before, sizeof(a)) == 0,
                   "a refused setting changed the list");
    } else {
        check_list(&a);
        for (int i = 0; i < 8 && fz_line(&in, &line, &len); i++) {
            char *hp = fz_strndup(line, len);
            check_match(&a, hp);
            free(hp);
        }
    }
    free(spec);
    return 0;
}
