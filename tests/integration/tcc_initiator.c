/*
 * tcc-initiator: a TCC initiator in a process of its own, so a test can
 * kill it at a chosen point (kill -9) and watch trellisd finish the
 * transaction without it.
 *
 *   tcc-initiator --tm ADDR --gid G --try T --confirm C --cancel X
 *                 [--payload SCRIPT]... [--branches N] [--timeout-ms MS]
 *                 [--then sleep|submit|abort]
 *
 * Begins G (wait_result set; timeout_to_fail_ms MS when given), then calls
 * N branches (default 2) through trellis_tcc_call_branch with the same
 * targets; branch i gets the i-th --payload (the last one when fewer are
 * given, "" when none). After the tries it prints "tries done" and then:
 * sleep: waits forever (to be killed); submit / abort: finishes the
 * transaction and prints "status NAME". Exit 0, or 1 on any SDK error
 * (printed to stderr), 2 on bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trellis/trellis_tcc.h"

#define MAX_PAYLOADS 16

typedef struct {
    const char *tm, *gid, *try_target, *confirm, *cancel, *then;
    const char *payloads[MAX_PAYLOADS];
    int n_payloads, branches;
    uint32_t timeout_ms;
} args_t;

static int usage(void)
{
    fprintf(stderr,
            "usage: tcc-initiator --tm ADDR --gid G --try T --confirm C "
            "--cancel X [--payload SCRIPT]... [--branches N] "
            "[--timeout-ms MS] [--then sleep|submit|abort]\n");
    return 2;
}

/* One "--flag value" pair; -1 for an unknown flag. */
static int parse_flag(args_t *a, const char *flag, const char *v)
{
    if (!strcmp(flag, "--tm"))
        a->tm = v;
    else if (!strcmp(flag, "--gid"))
        a->gid = v;
    else if (!strcmp(flag, "--try"))
        a->try_target = v;
    else if (!strcmp(flag, "--confirm"))
        a->confirm = v;
    else if (!strcmp(flag, "--cancel"))
        a->cancel = v;
    else if (!strcmp(flag, "--then"))
        a->then = v;
    else if (!strcmp(flag, "--branches"))
        a->branches = atoi(v);
    else if (!strcmp(flag, "--timeout-ms"))
        a->timeout_ms = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(flag, "--payload") && a->n_payloads < MAX_PAYLOADS)
        a->payloads[a->n_payloads++] = v;
    else
        return -1;
    return 0;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.branches = 2, .then = "sleep"};
    for (int i = 1; i < argc; i += 2)
        if (i + 1 >= argc || parse_flag(a, argv[i], argv[i + 1]) != 0)
            return -1;
    if (!a->tm || !a->gid || !a->try_target || !a->confirm || !a->cancel ||
        a->branches < 1)
        return -1;
    return strcmp(a->then, "sleep") && strcmp(a->then, "submit") &&
                   strcmp(a->then, "abort")
               ? -1
               : 0;
}

static const char *payload_of(const args_t *a, int i)
{
    if (a->n_payloads == 0)
        return "";
    return a->payloads[i < a->n_payloads ? i : a->n_payloads - 1];
}

static int call_branches(trellis_tcc_t *t, const args_t *a)
{
    char err[512];
    for (int i = 0; i < a->branches; i++) {
        const char *p = payload_of(a, i);
        trellis_rc_t rc =
            trellis_tcc_call_branch(t, a->try_target, a->confirm, a->cancel, p,
                                    strlen(p), NULL, NULL, err, sizeof err);
        if (rc != TRELLIS_OK) {
            fprintf(stderr, "tcc-initiator: branch %d: rc %d: %s\n", i + 1, rc,
                    err);
            return -1;
        }
    }
    printf("tries done\n");
    fflush(stdout);
    return 0;
}

static int finish(trellis_tcc_t *t, const char *then)
{
    char err[512], reason[512] = "";
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc =
        !strcmp(then, "submit")
            ? trellis_tcc_submit(t, &st, reason, sizeof reason, err, sizeof err)
            : trellis_tcc_abort(t, "tcc-initiator aborts", &st, err,
                                sizeof err);
    if (rc != TRELLIS_OK) {
        fprintf(stderr, "tcc-initiator: %s: rc %d: %s\n", then, rc, err);
        return -1;
    }
    printf("status %s %s\n", trellis_trans_status_name(st), reason);
    return 0;
}

static int run(trellis_client_t *c, const args_t *a)
{
    char err[512];
    trellis_options_t o;
    memset(&o, 0, sizeof o);
    o.wait_result = 1;
    o.timeout_to_fail_ms = a->timeout_ms;
    trellis_tcc_t *t = NULL;
    trellis_rc_t rc = trellis_tcc_begin(c, a->gid, &o, &t, err, sizeof err);
    if (rc != TRELLIS_OK) {
        fprintf(stderr, "tcc-initiator: begin %s: rc %d: %s\n", a->gid, rc,
                err);
        return -1;
    }
    int ret = call_branches(t, a);
    if (ret == 0 && !strcmp(a->then, "sleep"))
        for (;;)
            pause();
    if (ret == 0)
        ret = finish(t, a->then);
    trellis_tcc_free(t);
    return ret;
}

int main(int argc, char **argv)
{
    args_t a;
    if (parse_args(argc, argv, &a) != 0)
        return usage();
    char err[512];
    trellis_client_t *c = NULL;
    if (trellis_client_new(a.tm, 10000, &c, err, sizeof err) != TRELLIS_OK) {
        fprintf(stderr, "tcc-initiator: %s\n", err);
        return 1;
    }
    int ret = run(c, &a);
    trellis_client_free(c);
    return ret == 0 ? 0 : 1;
}
