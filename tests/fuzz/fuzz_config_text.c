/*
 * fuzz_config_text: libFuzzer target for trellisd's config file
 * (tm_config_parse_text, the text tm_config_load_file reads), which an
 * operator writes by hand and a deployment tool may template.
 *
 * Input: the file's bytes, NULs and all. Invariants: a refusal names the
 * file and line ("fuzz.conf:N: ..."); an accepted file leaves a
 * configuration that fz_config_check accepts; parsing is deterministic
 * (the same text gives the same answer on a fresh configuration).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_config_check.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(const uint8_t *data, size_t size)
{
    static tm_config_t c; /* large: off the stack */
    char err[1024] = "";
    tm_config_default(&c);
    int rc = tm_config_parse_text(&c, (const char *)data, size, "fuzz.conf",
                                  err, sizeof(err));
    if (rc != 0)
        fz_require(strncmp(err, "fuzz.conf:", 10) == 0,
                   "a refusal that does not name the file and line");
    else
        fz_config_check(&c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int first = parse(data, size);
    fz_require(parse(data, size) == first, "parsing is not deterministic");
    return 0;
}
