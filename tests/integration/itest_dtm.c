/*
 * itest_dtm: the DTM client run against a test's trellisd, and the outcome
 * read back (see itest_dtm.h). TRELLIS_PYTHON, DTM_CLIENT and DTM_STUBS
 * come from tests/CMakeLists.txt: the python3 with grpcio, the client
 * script and the stubs generated at build time.
 */
#include "itest_dtm.h"

#include <stdarg.h>
#include <stdio.h>

#define CLIENT_TIMEOUT_MS 60000
#define MAX_ARGS 32

void idtm_run(itest_t *t, const char *expect, ...)
{
    const char *argv[MAX_ARGS + 1];
    size_t n = 0;
    argv[n++] = TRELLIS_PYTHON;
    argv[n++] = DTM_CLIENT;
    argv[n++] = "--stubs";
    argv[n++] = DTM_STUBS;
    argv[n++] = "--tm";
    argv[n++] = harness_server_addr(t->tm);
    argv[n++] = "--expect";
    argv[n++] = expect;
    size_t first = n;
    va_list ap;
    va_start(ap, expect);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        assert_true(n < MAX_ARGS);
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    int rc = harness_run(t->h, "dtm-client", argv, CLIENT_TIMEOUT_MS);
    if (rc != 0)
        fail_msg("the DTM client's %s ended %d, not with %s (see "
                 "dtm-client.log in %s)",
                 n > first ? argv[first] : "run", rc, expect,
                 harness_dir(t->h));
}

int idtm_count(itest_t *t, const char *gid, const char *branch, const char *op,
               const char *effect)
{
    harness_part_state_t ps;
    assert_int_equal(harness_part_state(harness_server_addr(t->part), gid, &ps),
                     0);
    int n = harness_part_count(&ps, branch, op, effect);
    harness_part_state_free(&ps);
    return n;
}

void idtm_assert_final(itest_t *t, const char *gid, trellis_trans_status_t want)
{
    trellis_trans_info_t *info = itest_wait_final(t, gid);
    if (info->status != want)
        fail_msg("%s ended %s, not %s (%s)", gid,
                 trellis_trans_status_name(info->status),
                 trellis_trans_status_name(want), info->reason);
    trellis_trans_info_free(info);
}
