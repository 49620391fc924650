/*
 * fuzz_config: libFuzzer target for trellisd's command line
 * (tm_config_parse): the flags, their values and the checks of settings
 * that only make sense together, before anything else runs.
 *
 * Input: one argument per line (argv[0] is "trellisd"). An input naming
 * --config is skipped: that flag reads a file, and a fuzzer must not open
 * whatever path it makes up; the file's text has its own target
 * (fuzz_config_text). Invariants: a refusal says why; an accepted command
 * line passes fz_config_check; parsing is deterministic.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_config_check.h"
#include "fuzz_input.h"

#define MAX_ARGS 32

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --help prints the usage on stdout on every such input. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!freopen("/dev/null", "w", stdout))
        abort();
    return 0;
}

static int names_config(char **argv, int argc)
{
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--config", 8) == 0)
            return 1;
    return 0;
}

static int parse(int argc, char **argv)
{
    static tm_config_t c; /* large: off the stack */
    char err[1024] = "";
    tm_config_default(&c);
    int rc = tm_config_parse(&c, argc, argv, err, sizeof(err));
    fz_require(rc != -1 || err[0] != '\0', "a refusal without a message");
    if (rc == 0)
        fz_config_check(&c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = fz_strndup((const uint8_t *)"trellisd", 8);
    fz_in_t in = fz_in(data, size);
    const uint8_t *line;
    size_t len;
    while (argc < MAX_ARGS && fz_line(&in, &line, &len))
        argv[argc++] = fz_strndup(line, len);
    argv[argc] = NULL;
    if (!names_config(argv, argc)) {
        int first = parse(argc, argv);
        fz_require(parse(argc, argv) == first, "parsing is not deterministic");
    }
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return 0;
}
