/*
 * itest_fault.c: the trellisd-faults fixture and its control commands
 * (itest_fault.h).
 */
#include "itest_fault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char fault_socket[160];

itest_t *itest_start_faulty(void **state, const char *name,
                            const char *const *extra_tm_args)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s/bin/trellisd-faults", harness_build_dir());
    setenv("TRELLIS_TRELLISD", bin, 1);
    harness_fault_socket_path(name, fault_socket, sizeof fault_socket);
    setenv("TRELLIS_FAULT_SOCKET", fault_socket, 1);
    return itest_start(state, name, extra_tm_args);
}

void itest_fault_env_clear(void)
{
    unsetenv("TRELLIS_TRELLISD");
    unsetenv("TRELLIS_FAULT_SOCKET");
}

void itest_fault(const char *cmd, char *reply, size_t len)
{
    char got[1200];
    if (harness_fault_cmd(fault_socket, cmd, got, sizeof got) != 0)
        fail_msg("fault command '%s' failed: %s", cmd, got);
    if (reply)
        snprintf(reply, len, "%s", strncmp(got, "ok ", 3) == 0 ? got + 3 : "");
}

long itest_fault_number(const char *cmd)
{
    char reply[64];
    itest_fault(cmd, reply, sizeof reply);
    return strtol(reply, NULL, 10);
}

static int live_calls_are(void *arg)
{
    return itest_fault_number("live-calls") == *(const long *)arg;
}

void itest_fault_wait_live_calls(long n)
{
    if (!harness_poll(live_calls_are, &n, 20000, 5))
        fail_msg("trellisd holds %ld unanswered calls; want %ld",
                 itest_fault_number("live-calls"), n);
}

void itest_fault_hold_nth(const char *gid, int n, char *report, size_t len)
{
    char want[96];
    for (int i = 1;; i++) {
        itest_fault("wait-held 20000", report, len);
        snprintf(want, sizeof want, "%s:%s", gid,
                 i == 1 ? "prepared:insert" : "");
        if (!strstr(report, want))
            fail_msg("%s: group %d is \"%s\"", gid, i, report);
        if (i == n)
            return;
        itest_fault("step", NULL, 0);
    }
}

void itest_fault_commit_unanswered(const char *gid, const char *want)
{
    char report[1200];
    long before = itest_fault_number("commits");
    itest_fault("lose-answer 1", NULL, 0);
    itest_fault("step", NULL, 0);
    itest_fault("wait-held 20000", report, sizeof report);
    if (strcmp(report, want) != 0)
        fail_msg("%s: the unanswered group is \"%s\", want \"%s\"", gid, report,
                 want);
    assert_int_equal(itest_fault_number("commits"), before + 1);
}
