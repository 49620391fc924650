/*
 * test_config.c: trellisd's config file and command line (tm/tm_config.c)
 * — `key = value` lines with comments, flags overriding the file in any
 * order, refusals that name the file, the line and the setting, settings
 * that must come together, and a parser that survives arbitrary bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tm_config.h"

static char err[2048];

static tm_config_t fresh(void)
{
    tm_config_t c;
    tm_config_default(&c);
    return c;
}

static int parse_str(tm_config_t *c, const char *text)
{
    err[0] = '\0';
    return tm_config_parse_text(c, text, strlen(text), "t.conf", err,
                                sizeof(err));
}

static void assert_err_has(const char *want)
{
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_file_sets_values(void **state)
{
    (void)state;
    tm_config_t c = fresh();
    const char *text = "# trellisd settings\n"
                       "\n"
                       "listen = 0.0.0.0:7500\r\n"
                       "  retry-interval-ms=250   # fast\n"
                       "log-level = debug\n"
                       "allow-targets = 127.0.0.1:*, *.svc:50051\n"
                       "max-inflight = 10\n"
                       "data-dir = /var/lib/trellis#1\n"
                       "\t# indented comment";
    assert_int_equal(parse_str(&c, text), 0);
    assert_string_equal(c.listen, "0.0.0.0:7500");
    assert_int_equal(c.engine.retry_interval_ms, 250);
    assert_int_equal(c.log_level, TM_LOG_DEBUG);
    assert_int_equal(c.engine.limits.allow.n, 2);
    assert_string_equal(c.engine.limits.allow.patterns[1], "*.svc:50051");
    assert_int_equal(c.engine.max_inflight, 10);
    /* '#' inside a value (not after a blank) is part of it. */
    assert_string_equal(c.data_dir, "/var/lib/trellis#1");
    assert_int_equal(parse_str(&c, ""), 0);
    assert_int_equal(tm_config_parse_text(&c, NULL, 0, NULL, err, 64), 0);
}

static void test_file_refusals_name_file_line_setting(void **state)
{
    (void)state;
    const struct {
        const char *text, *want;
    } cases[] = {
        {"listen = a:1\nbogus = 3\n", "t.conf:2: bogus: unknown setting"},
        {"\n\nretry-interval-ms = soon\n",
         "t.conf:3: retry-interval-ms: \"soon\" is not a whole number"},
        {"max-steps = 0\n", "t.conf:1: max-steps: \"0\" is not a whole"},
        {"log-level = loud\n", "t.conf:1: log-level: \"loud\" is not debug"},
        {"listen\n", "t.conf:1: expected `name = value`"},
        {"listen =\n", "t.conf:1: listen: value is empty"},
        {"= 5\n", "t.conf:1: (empty name): unknown setting"},
        {"listen = a:1\nlisten = b:2\n",
         "t.conf:2: listen: set twice (first at line 1)"},
        {"config = other.conf\n", "t.conf:1: config: unknown setting"},
        {"--listen = a:1\n", "t.conf:1: --listen: unknown setting"},
        {"allow-targets = *.svc\n", "t.conf:1: allow-targets: \"*.svc\""},
        {"threads = 1e3\n", "t.conf:1: threads:"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tm_config_t c = fresh();
        if (parse_str(&c, cases[i].text) != -1)
            fail_msg("accepted: %s", cases[i].text);
        assert_err_has(cases[i].want);
    }
    tm_config_t c = fresh();
    const char nul[] = "listen = a:1\nthreads = 2\0 3\n";
    assert_int_equal(tm_config_parse_text(&c, nul, sizeof(nul) - 1, "n.conf",
                                          err, sizeof(err)),
                     -1);
    assert_err_has("n.conf:2: the line holds a NUL byte");
}

static void test_long_lines_and_random_bytes(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    memcpy(big, "listen = ", 9);
    tm_config_t c = fresh();
    assert_int_equal(
        tm_config_parse_text(&c, big, n, "big.conf", err, sizeof(err)), -1);
    assert_err_has("big.conf:1: listen: value is too long");
    memset(big, 'k', n);
    big[n - 3] = '=';
    assert_int_equal(
        tm_config_parse_text(&c, big, n, "big.conf", err, sizeof(err)), -1);
    assert_err_has("unknown setting");
    /* Arbitrary bytes: never a crash, always an answer. */
    srand(7);
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand() % 200);
        for (size_t i = 0; i < len; i++) {
            static const char alphabet[] = "=#\n\r\t :,*-a1lsten";
            big[i] = rand() % 4 ? alphabet[rand() % (sizeof(alphabet) - 1)]
                                : (char)(rand() % 256);
        }
        c = fresh();
        int rc = tm_config_parse_text(&c, big, len, "r", err, sizeof(err));
        assert_true(rc == 0 || rc == -1);
    }
    free(big);
}

static char conf_path[256];

static void write_conf(const char *text)
{
    snprintf(conf_path, sizeof(conf_path), "%s/unit-config-%d.conf",
             TRELLIS_BUILD_DIR, (int)getpid());
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int parse_argv(tm_config_t *c, const char **args)
{
    char *argv[16] = {"trellisd"};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    err[0] = '\0';
    return tm_config_parse(c, argc, argv, err, sizeof(err));
}

static void test_flags_override_file_in_any_order(void **state)
{
    (void)state;
    write_conf("listen = 127.0.0.1:7600\nretry-interval-ms = 500\n"
               "max-payload = 100\n");
    tm_config_t c = fresh();
    const char *before[] = {"--retry-interval-ms", "70", "--config", conf_path,
                            NULL};
    assert_int_equal(parse_argv(&c, before), 0);
    assert_int_equal(c.engine.retry_interval_ms, 70);
    assert_string_equal(c.listen, "127.0.0.1:7600");
    assert_int_equal(c.engine.limits.max_payload, 100);
    c = fresh();
    const char *after2[] = {"--config", conf_path, "--retry-interval-ms=80",
                            NULL};
    assert_int_equal(parse_argv(&c, after2), 0);
    assert_int_equal(c.engine.retry_interval_ms, 80);
    assert_string_equal(c.config_file, conf_path);

    write_conf("listen = 127.0.0.1:7600\nretry-interval-ms = often\n");
    c = fresh();
    const char *bad[] = {"--config", conf_path, NULL};
    assert_int_equal(parse_argv(&c, bad), -1);
    char want[320];
    snprintf(want, sizeof(want), "%s:2: retry-interval-ms", conf_path);
    assert_err_has(want);
    unlink(conf_path);

    c = fresh();
    assert_int_equal(parse_argv(&c, bad), -1);
    assert_err_has(conf_path);
    assert_err_has("No such file");
}

static void test_settings_that_go_together(void **state)
{
    (void)state;
    const char *cases[][5] = {
        {"--tls-cert", "c.pem", NULL},
        {"--tls-key", "k.pem", NULL},
        {"--tls-client-ca", "ca.pem", NULL},
        {"--participant-tls-cert", "c.pem", "--participant-tls-key", "k.pem",
         NULL},
        {"--participant-tls-ca", "ca.pem", "--participant-tls-key", "k.pem",
         NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tm_config_t c = fresh();
        if (parse_argv(&c, cases[i]) != -1)
            fail_msg("accepted %s", cases[i][0]);
        assert_err_has("--");
    }
    tm_config_t c = fresh();
    const char *ok[] = {"--tls-cert",      "c.pem",  "--tls-key", "k.pem",
                        "--tls-client-ca", "ca.pem", NULL};
    assert_int_equal(parse_argv(&c, ok), 0);
    assert_string_equal(c.tls_client_ca, "ca.pem");
}

static void test_help_explains_every_setting(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    tm_config_usage(out);
    fclose(out);
    const char *names[] = {"--config",
                           "--allow-targets",
                           "--max-message-bytes",
                           "--max-inflight",
                           "--shutdown-grace-ms",
                           "--tls-cert",
                           "--tls-key",
                           "--tls-client-ca",
                           "--participant-tls-ca",
                           "--participant-tls-cert",
                           "--participant-tls-key",
                           "--participant-tls-server-name",
                           "--max-steps",
                           "--max-payload",
                           "127.0.0.1:*,localhost:*,[::1]:*"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strstr(text, names[i]))
            fail_msg("--help does not mention %s", names[i]);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_sets_values),
        cmocka_unit_test(test_file_refusals_name_file_line_setting),
        cmocka_unit_test(test_long_lines_and_random_bytes),
        cmocka_unit_test(test_flags_override_file_in_any_order),
        cmocka_unit_test(test_settings_that_go_together),
        cmocka_unit_test(test_help_explains_every_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
