/*
 * test_notify.c: trellisd under a service manager's eyes (systemd's
 * Type=notify, tm_notify.c), with a real trellisd. The test plays
 * systemd: it binds an abstract-namespace datagram socket and hands its
 * name to trellisd in $NOTIFY_SOCKET, as systemd does (to trellisd only:
 * it restarts the fixture's trellisd with the variable set).
 *
 *  - READY=1 arrives, and once it has, trellisd serves: a saga succeeds.
 *  - SIGTERM: STOPPING=1 arrives, and trellisd exits 0.
 *
 * The unit tests (tests/unit/test_notify.c) cover the address forms and
 * the refusals; this one shows trellisd sends the right states.
 */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* A guard against a hang only: each state is expected long before. */
#define NOTIFY_HANG_GUARD_S 60

/* Bind "@name" in the abstract namespace; the fd. */
static int bind_abstract(const char *name)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    assert_true(n < sizeof(addr.sun_path));
    memcpy(addr.sun_path, name, n);
    addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(
        bind(fd, (struct sockaddr *)&addr,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
        0);
    struct timeval guard = {.tv_sec = NOTIFY_HANG_GUARD_S};
    assert_int_equal(
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard), 0);
    return fd;
}

/* The next state trellisd sent, waiting for it. */
static void assert_next_state(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void test_ready_then_stopping(void **state)
{
    char name[64];
    snprintf(name, sizeof name, "@trellis-itest-notify-%d", (int)getpid());
    int fd = bind_abstract(name);
    /* Only trellisd gets the variable, as under systemd: the fixture's
     * other processes (MariaDB on the mysql store) would speak on it too.
     * So trellisd is stopped and started again with it. */
    itest_t *t = itest_start(state, "notify", NULL);
    assert_int_equal(harness_proc_stop(harness_server_proc(t->tm), 30000), 0);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(harness_server_restart(t->tm), 0);
    unsetenv("NOTIFY_SOCKET");
    itest_reconnect(t);

    assert_next_state(fd, "READY=1");
    const char *payloads[] = {"ok", "ok"};
    trellis_saga_t *s = itest_saga(t, "notify-ready", payloads, 2, NULL);
    assert_int_equal(itest_submit(t, s, NULL, 0), TRELLIS_TRANS_SUCCEEDED);
    trellis_saga_free(s);

    /* itest_pass sends SIGTERM and asserts trellisd exited 0. */
    itest_pass(state);
    assert_next_state(fd, "STOPPING=1");
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ready_then_stopping, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
