/*
 * itest_dtm: the DTM client run against a test's trellisd, and the outcome
 * read back (see itest_dtm.h). TRELLIS_PYTHON, DTM_CLIENT and DTM_STUBS
 * come from tests/CMakeLists.txt: the python3 with grpcio, the client
 * script and the stubs generated at build time; DTM_WFSVC the script's
 * serve mode as one program.
 */
#include "itest_dtm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CLIENT_TIMEOUT_MS 60000
#define MAX_ARGS 32

/* The client's argv: the interpreter, the script, --stubs, --tm,
 * --expect, then the caller's arguments up to a NULL. Returns the index
 * of the first caller argument. */
static size_t client_argv(itest_t *t, const char *expect, va_list ap,
                          const char **argv)
{
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
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        assert_true(n < MAX_ARGS);
        argv[n++] = a;
    }
    argv[n] = NULL;
    return first;
}

void idtm_run(itest_t *t, const char *expect, ...)
{
    const char *argv[MAX_ARGS + 1];
    va_list ap;
    va_start(ap, expect);
    size_t first = client_argv(t, expect, ap, argv);
    va_end(ap);
    int want = strcmp(expect, IDTM_DIED) == 0 ? IDTM_DIED_EXIT : 0;
    int rc = harness_run(t->h, "dtm-client", argv, CLIENT_TIMEOUT_MS);
    if (rc != want)
        fail_msg("the DTM client's %s ended %d, not with %s (see "
                 "dtm-client.log in %s)",
                 argv[first] ? argv[first] : "run", rc, expect,
                 harness_dir(t->h));
}

harness_proc_t *idtm_spawn(itest_t *t, const char *expect, ...)
{
    const char *argv[MAX_ARGS + 1];
    va_list ap;
    va_start(ap, expect);
    client_argv(t, expect, ap, argv);
    va_end(ap);
    harness_proc_t *p = harness_spawn(t->h, "dtm-client-bg", argv);
    assert_non_null(p);
    return p;
}

harness_server_t *idtm_workflow_service_start(itest_t *t, char *journal,
                                              size_t len)
{
    assert_non_null(harness_path(t->h, "dtm-wfsvc.journal", journal, len));
    const char *extra[] = {
        "--stubs",   DTM_STUBS, "--tm", harness_server_addr(t->tm),
        "--journal", journal,   NULL};
    harness_server_t *s =
        harness_server_start(t->h, "dtm-wfsvc", DTM_WFSVC, extra);
    assert_non_null(s);
    return s;
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
