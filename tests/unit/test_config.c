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

/* Every row of the flag table has a line of --help. */
static void test_help_explains_every_setting(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    tm_config_usage(out);
    fclose(out);
    size_t n = tm_config_flag_count();
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        tm_config_flag_t f;
        tm_config_flag(i, &f);
        char line[96];
        snprintf(line, sizeof(line), "\n  %s\n", f.name);
        if (!strstr(text, line))
            fail_msg("--help has no entry for %s", f.name);
        if (strncmp(f.name, "--", 2) != 0 || strlen(f.help) < 10)
            fail_msg("%s: malformed row", f.name);
    }
    if (!strstr(text, TM_ALLOW_DEFAULT))
        fail_msg("--help does not give the default %s", TM_ALLOW_DEFAULT);
    free(text);
}

/* Apply "key = value" (key: the flag without "--") as a one-line file. */
static int set_in_file(tm_config_t *c, const tm_config_flag_t *f,
                       const char *value)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    fprintf(out, "%s = %s\n", f->name + 2, value);
    fclose(out);
    int rc = parse_str(c, text);
    free(text);
    return rc;
}

static unsigned long number_at(const tm_config_t *c, const tm_config_flag_t *f)
{
    const char *field = (const char *)c + f->offset;
    uint32_t u;
    int i;
    if (f->kind == TM_CONFIG_U32) {
        memcpy(&u, field, sizeof(u));
        return u;
    }
    memcpy(&i, field, sizeof(i));
    return (unsigned long)i;
}

/* A number flag: its default is in range (a config file may write it back),
 * min and max are taken and stored in its field, one past either end is
 * refused with a message that names the setting and the range. */
static void check_number(const tm_config_flag_t *f)
{
    tm_config_t c = fresh();
    unsigned long dflt = number_at(&c, f);
    if (dflt < f->min || dflt > f->max)
        fail_msg("%s: default %lu is outside %lu..%lu", f->name, dflt, f->min,
                 f->max);
    unsigned long ends[] = {f->min, f->max};
    char value[32], want[160];
    for (int k = 0; k < 2; k++) {
        snprintf(value, sizeof(value), "%lu", ends[k]);
        if (set_in_file(&c, f, value) != 0)
            fail_msg("%s = %s refused: %s", f->name, value, err);
        assert_int_equal(number_at(&c, f), ends[k]);
    }
    snprintf(want, sizeof(want), "t.conf:1: %s: ", f->name + 2);
    unsigned long outside[] = {f->max + 1, f->min - 1};
    for (int k = 0; k < (f->min > 0 ? 2 : 1); k++) {
        snprintf(value, sizeof(value), "%lu", outside[k]);
        c = fresh();
        if (set_in_file(&c, f, value) != -1)
            fail_msg("%s = %s accepted", f->name, value);
        assert_err_has(want);
        assert_err_has("is not a whole number from");
    }
}

/* A string flag: the longest value that fits its field is taken whole,
 * one byte more is refused. */
static void check_string(const tm_config_flag_t *f)
{
    tm_config_t c = fresh();
    const char *field = (const char *)&c + f->offset;
    if (strnlen(field, f->size) >= f->size)
        fail_msg("%s: default does not fit", f->name);
    char value[2048];
    assert_true(f->size < sizeof(value));
    memset(value, 'a', f->size - 1);
    value[f->size - 1] = '\0';
    if (set_in_file(&c, f, value) != 0)
        fail_msg("%s: %zu bytes refused: %s", f->name, f->size - 1, err);
    assert_string_equal(field, value);
    memset(value, 'a', f->size);
    value[f->size] = '\0';
    assert_int_equal(set_in_file(&c, f, value), -1);
    assert_err_has(f->name + 2);
    assert_err_has("longer than");
}

/* Every flag of the table can be set from a config file (except --config
 * itself) and is known on the command line, with the limits its row
 * states, so a new flag cannot be left half wired. */
static void test_every_setting_from_file_and_flag(void **state)
{
    (void)state;
    for (size_t i = 0; i < tm_config_flag_count(); i++) {
        tm_config_flag_t row;
        tm_config_flag(i, &row);
        const tm_config_flag_t *f = &row;
        tm_config_t c = fresh();
        const char *bad = "";
        switch (f->kind) {
        case TM_CONFIG_U32:
        case TM_CONFIG_INT:
            check_number(f);
            bad = "x";
            break;
        case TM_CONFIG_STRING:
            check_string(f);
            break;
        case TM_CONFIG_LEVEL:
            assert_int_equal(set_in_file(&c, f, "warn"), 0);
            assert_int_equal(c.log_level, TM_LOG_WARN);
            bad = "loud";
            break;
        case TM_CONFIG_ALLOW:
            assert_int_equal(set_in_file(&c, f, "10.1.2.*:*"), 0);
            assert_int_equal(
                ((const tm_allowlist_t *)((char *)&c + f->offset))->n, 1);
            bad = "*.svc";
            break;
        case TM_CONFIG_FILE:
            assert_int_equal(set_in_file(&c, f, "x.conf"), -1);
            assert_err_has("unknown setting");
            break;
        }
        /* The command line knows the flag: a bad value is refused by
         * name, not as an unknown flag. */
        char arg[128];
        snprintf(arg, sizeof(arg), "%s=%s", f->name, bad);
        const char *args[] = {arg, NULL};
        c = fresh();
        assert_int_equal(parse_argv(&c, args), -1);
        if (strncmp(err, f->name, strlen(f->name)) != 0 ||
            err[strlen(f->name)] != ':')
            fail_msg("%s: refusal \"%s\" does not start with the flag", arg,
                     err);
    }
}

/* A MySQL store's cluster id is derived from where the store is, so that
 * every node on it derives the same id; XA XIDs carry it. Its value must
 * not change between versions: these were computed before the FNV-1a
 * copies became trellis_fnv (proto/trellis_fnv.c). */
static void test_mysql_cluster_id_is_pinned(void **state)
{
    (void)state;
    tm_config_t c = fresh();
    char id[TM_CLUSTER_ID_MAX + 1];
    const char *how = "";
    snprintf(c.store, sizeof c.store, "mysql");
    snprintf(c.mysql_host, sizeof c.mysql_host, "db.example");
    c.mysql_port = 3306;
    snprintf(c.mysql_database, sizeof c.mysql_database, "trellis");
    assert_int_equal(
        tm_config_cluster_id(&c, id, sizeof id, &how, err, sizeof err), 0);
    assert_string_equal(id, "mysql-08fc91916f53959e");
    assert_string_equal(how, "store");
    snprintf(c.mysql_socket, sizeof c.mysql_socket, "/run/mysqld.sock");
    assert_int_equal(
        tm_config_cluster_id(&c, id, sizeof id, &how, err, sizeof err), 0);
    assert_string_equal(id, "mysql-e6f0d424ced7e7ad");
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
        cmocka_unit_test(test_every_setting_from_file_and_flag),
        cmocka_unit_test(test_mysql_cluster_id_is_pinned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
