/*
 * selftest.c: the harness checked on its own — process control, port-file
 * servers (a shell-script stand-in), cleanup and a throwaway MariaDB —
 * so a failure of an integration test is never the harness's.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static int teardown(void **state)
{
    harness_free(*state, 0); /* only reached with a test that failed */
    *state = NULL;
    return 0;
}

static void pass(void **state)
{
    harness_free(*state, 1);
    *state = NULL;
}

static harness_t *begin(void **state, const char *name)
{
    harness_t *h = harness_new(name);
    assert_non_null(h);
    *state = h;
    return h;
}

static void test_spawn_kill_restart(void **state)
{
    harness_t *h = begin(state, "selftest_spawn");
    const char *argv[] = {"sleep", "30", NULL};
    harness_proc_t *p = harness_spawn(h, "sleep", argv);
    assert_non_null(p);
    int pid = harness_proc_pid(p);
    assert_true(pid > 0);
    assert_int_equal(getpgid(pid), pid); /* its own process group */
    assert_true(harness_proc_running(p));
    assert_int_equal(harness_proc_wait(p, 100, NULL), -1); /* times out */

    int st = 0;
    assert_int_equal(harness_proc_signal(p, SIGKILL), 0);
    assert_int_equal(harness_proc_wait(p, 5000, &st), 0);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_false(harness_proc_running(p));
    assert_int_equal(kill(pid, 0), -1); /* reaped */

    assert_int_equal(harness_proc_restart(p, NULL), 0);
    assert_true(harness_proc_running(p));
    assert_int_not_equal(harness_proc_pid(p), pid);
    st = harness_proc_stop(p, 3000);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    pass(state);
}

static void test_run_exit_code_and_log(void **state)
{
    harness_t *h = begin(state, "selftest_run");
    const char *ok[] = {"sh", "-c", "echo hello-from-child; exit 0", NULL};
    const char *three[] = {"sh", "-c", "exit 3", NULL};
    assert_int_equal(harness_run(h, "ok", ok, 5000), 0);
    assert_int_equal(harness_run(h, "three", three, 5000), 3);
    const char *slow[] = {"sleep", "10", NULL};
    int64_t t0 = harness_mono_ms();
    assert_int_equal(harness_run(h, "slow", slow, 200), -1);
    assert_true(harness_mono_ms() - t0 < 3000);

    char path[4096], line[256] = "";
    assert_non_null(harness_path(h, "ok.log", path, sizeof path));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) && !strstr(line, "hello"))
        ;
    fclose(f);
    assert_non_null(strstr(line, "hello-from-child"));
    pass(state);
}

/* A stand-in server: writes a port file (9 + the --listen port, or 40000
 * when asked for port 0) and sleeps; prints its argv to its log. */
static const char *write_fake_server(harness_t *h, char *path, size_t len)
{
    static const char script[] =
        "#!/bin/sh\n"
        "echo \"fake $*\"\n"
        "listen=; pf=\n"
        "while [ $# -gt 0 ]; do case $1 in\n"
        "  --listen) listen=$2; shift;; --port-file) pf=$2; shift;;\n"
        "  --die) exit 3;; esac; shift; done\n"
        "port=${listen##*:}; [ \"$port\" = 0 ] && port=40000\n"
        "echo $port > $pf.tmp && mv $pf.tmp $pf\n"
        "exec sleep 30\n";
    assert_non_null(harness_path(h, "fake-server.sh", path, len));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(script, f);
    fclose(f);
    chmod(path, 0755);
    return path;
}

static void test_server_port_file_and_restart(void **state)
{
    harness_t *h = begin(state, "selftest_server");
    char bin[4096];
    write_fake_server(h, bin, sizeof bin);
    const char *extra[] = {"--data-dir-like", "x", NULL};
    harness_server_t *s = harness_server_start(h, "fake", bin, extra);
    assert_non_null(s);
    assert_int_equal(harness_server_port(s), 40000);
    assert_string_equal(harness_server_addr(s), "127.0.0.1:40000");

    assert_int_equal(harness_server_crash_restart(s), 0);
    assert_int_equal(harness_server_port(s), 40000);
    /* The restart asked for the same port and kept the extra args. */
    char log[8192] = "";
    FILE *f = fopen(harness_proc_log(harness_server_proc(s)), "r");
    assert_non_null(f);
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    assert_non_null(strstr(log, "--listen 127.0.0.1:40000 --port-file"));
    assert_non_null(strstr(log, "--data-dir-like x"));

    const char *die[] = {"--die", NULL};
    int64_t t0 = harness_mono_ms();
    assert_null(harness_server_start(h, "dies", bin, die));
    assert_true(harness_mono_ms() - t0 < 5000); /* early exit noticed */
    pass(state);
}

static int flag_after(void *arg)
{
    return harness_mono_ms() >= *(int64_t *)arg;
}

static void test_poll(void **state)
{
    (void)state;
    int64_t at = harness_mono_ms() + 100;
    assert_true(harness_poll(flag_after, &at, 2000, 5));
    at = harness_mono_ms() + 10000;
    int64_t t0 = harness_mono_ms();
    assert_false(harness_poll(flag_after, &at, 150, 10));
    assert_true(harness_mono_ms() - t0 >= 150);
    assert_true(harness_now_ms() > 1700000000000LL);
}

/* 1 if pid is gone or a zombie (this machine's init may not reap). */
static int dead(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] == 'Z';
}

static void test_free_kills_leftovers(void **state)
{
    harness_t *h = begin(state, "selftest_leftover");
    char pidfile[4096];
    assert_non_null(harness_path(h, "bg.pid", pidfile, sizeof pidfile));
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "sleep 30 & echo $! > %s; wait", pidfile);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    harness_proc_t *p = harness_spawn(h, "group", argv);
    assert_non_null(p);
    int leader = harness_proc_pid(p), bg = 0;
    for (int i = 0; i < 300 && bg <= 0; i++) {
        FILE *f = fopen(pidfile, "r");
        if (f && fscanf(f, "%d", &bg) != 1)
            bg = 0;
        if (f)
            fclose(f);
        harness_sleep_ms(10);
    }
    assert_true(bg > 0);
    assert_false(dead(bg));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", harness_dir(h));
    pass(state);
    assert_true(dead(leader));
    for (int i = 0; i < 100 && !dead(bg); i++)
        harness_sleep_ms(10);
    assert_true(dead(bg)); /* the whole group got the signal */
    struct stat st;
    assert_int_equal(stat(dir, &st), -1); /* scratch removed on success */
}

static void test_stop_all_reports_bad_exits(void **state)
{
    harness_t *h = begin(state, "selftest_stop_all");
    const char *clean[] = {"sh", "-c", "trap 'exit 0' TERM; sleep 30 & wait",
                           NULL};
    const char *dies[] = {"sh", "-c", "exit 3", NULL};
    const char *killed[] = {"sleep", "30", NULL};
    assert_non_null(harness_spawn(h, "clean", clean));
    harness_proc_t *k = harness_spawn(h, "killed", killed);
    assert_non_null(k);
    assert_int_equal(harness_proc_kill(k), 0); /* the harness did it: ok */
    harness_sleep_ms(100);
    assert_int_equal(harness_stop_all(h), 0);
    harness_proc_t *d = harness_spawn(h, "dies", dies);
    assert_non_null(d);
    assert_int_equal(harness_proc_wait(d, 5000, NULL), 0);
    assert_int_equal(harness_stop_all(h), 1); /* exit 3 on its own */
    pass(state);
}

static void test_mariadb(void **state)
{
    harness_t *h = begin(state, "selftest_mariadb");
    harness_mariadb_t *m = harness_mariadb_start(h, "db");
    assert_non_null(m);
    assert_true(harness_mariadb_port(m) > 0);
    assert_int_equal(harness_mariadb_exec(m, "CREATE DATABASE t; "
                                             "CREATE TABLE t.x (a INT); "
                                             "INSERT INTO t.x VALUES (1)"),
                     0);
    assert_int_not_equal(harness_mariadb_exec(m, "SELECT * FROM t.nope"), 0);
    /* Over TCP too, as root without a password. */
    char port[32];
    snprintf(port, sizeof port, "--port=%d", harness_mariadb_port(m));
    const char *tcp[] = {"mariadb",           "--no-defaults",
                         "--host=127.0.0.1",  port,
                         "--user=root",       "-e",
                         "SELECT a FROM t.x", NULL};
    assert_int_equal(harness_run(h, "tcp", tcp, 20000), 0);
    harness_mariadb_stop(m);
    assert_int_not_equal(harness_mariadb_exec(m, "SELECT 1"), 0);
    pass(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_spawn_kill_restart, teardown),
        cmocka_unit_test_teardown(test_run_exit_code_and_log, teardown),
        cmocka_unit_test_teardown(test_server_port_file_and_restart, teardown),
        cmocka_unit_test(test_poll),
        cmocka_unit_test_teardown(test_free_kills_leftovers, teardown),
        cmocka_unit_test_teardown(test_stop_all_reports_bad_exits, teardown),
        cmocka_unit_test_teardown(test_mariadb, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
