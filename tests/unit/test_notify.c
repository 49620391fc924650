/*
 * Unit tests of tm_notify (tm/tm_notify.c), trellisd's sd_notify: with
 * NOTIFY_SOCKET unset nothing is sent; a path socket and an abstract '@'
 * socket both receive the state as one datagram, byte for byte; a
 * relative name, an overlong name and a socket nobody listens on are
 * refused with a message naming the problem. Real AF_UNIX sockets, bound
 * by the test as systemd binds its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "tm_notify.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/trellis-notify-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    return rmdir(dir);
}

/* A datagram socket bound where name says ("/path" or "@abstract"), as the
 * service manager's; the fd. */
static int listen_at(const char *name)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    assert_true(n < sizeof(addr.sun_path));
    memcpy(addr.sun_path, name, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (name[0] == '@')
        addr.sun_path[0] = '\0';
    else
        len++;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, len), 0);
    return fd;
}

/* The next datagram on fd, without waiting: it must already be there. */
static void assert_received(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void test_unset_sends_nothing(void **state)
{
    (void)state;
    char err[256] = "";
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(tm_notify_send("READY=1", err, sizeof err), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(tm_notify_send("READY=1", err, sizeof err), 0);
    assert_string_equal(err, "");
}

static void test_path_socket(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = listen_at(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(tm_notify_send("READY=1", err, sizeof err), 1);
    assert_received(fd, "READY=1");
    assert_int_equal(tm_notify_send("STOPPING=1", err, sizeof err), 1);
    assert_received(fd, "STOPPING=1");
    close(fd);
    unlink(path);
}

static void test_abstract_socket(void **state)
{
    (void)state;
    char name[64], err[256] = "";
    snprintf(name, sizeof name, "@trellis-notify-test-%d", (int)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(tm_notify_send("READY=1", err, sizeof err), 1);
    assert_received(fd, "READY=1");
    close(fd);
}

static void test_bad_names_refused(void **state)
{
    (void)state;
    char err[256] = "", longname[200];
    setenv("NOTIFY_SOCKET", "run/notify", 1);
    assert_int_equal(tm_notify_send("READY=1", err, sizeof err), -1);
    assert_non_null(strstr(err, "neither an absolute path"));

    memset(longname, 'x', sizeof longname - 1);
    longname[0] = '/';
    longname[sizeof longname - 1] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(tm_notify_send("READY=1", err, sizeof err), -1);
    assert_non_null(strstr(err, "bytes long"));
}

static void test_nobody_listening(void **state)
{
    (void)state;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/gone", dir);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(tm_notify_send("READY=1", err, sizeof err), -1);
    assert_non_null(strstr(err, "READY=1"));
    assert_non_null(strstr(err, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_sends_nothing),
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_bad_names_refused),
        cmocka_unit_test(test_nobody_listening),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
