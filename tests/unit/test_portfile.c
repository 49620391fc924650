/*
 * Unit tests of trellis_portfile (portfile/): the file holds "PORT\n",
 * appears whole under its name with no PATH.tmp left behind, a failed
 * write says why and leaves nothing, and the reader takes only a port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "trellis_portfile.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/trellis-portfile-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/port", dir);
    unlink(path);
    return rmdir(dir);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_write_then_read(void **state)
{
    (void)state;
    char path[128], tmp[140], text[16] = "", err[256] = "";
    snprintf(path, sizeof path, "%s/port", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(trellis_portfile_read(path), -1); /* not there yet */
    assert_int_equal(trellis_portfile_write(path, 40123, err, sizeof err), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    assert_string_equal(text, "40123\n");
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(trellis_portfile_read(path), 40123);
    /* A restarted server replaces the file. */
    assert_int_equal(trellis_portfile_write(path, 5, err, sizeof err), 0);
    assert_int_equal(trellis_portfile_read(path), 5);
}

static void test_failed_write_says_why(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/no-such-dir/port", dir);
    assert_int_equal(trellis_portfile_write(path, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "no-such-dir/port.tmp"));
    assert_non_null(strstr(err, "No such file"));
}

static void test_reader_takes_only_a_port(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/port", dir);
    put(path, "");
    assert_int_equal(trellis_portfile_read(path), -1);
    put(path, "0\n");
    assert_int_equal(trellis_portfile_read(path), -1);
    put(path, "65536\n");
    assert_int_equal(trellis_portfile_read(path), -1);
    put(path, "x\n");
    assert_int_equal(trellis_portfile_read(path), -1);
    put(path, "65535\n");
    assert_int_equal(trellis_portfile_read(path), 65535);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_then_read),
        cmocka_unit_test(test_failed_write_says_why),
        cmocka_unit_test(test_reader_takes_only_a_port),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
