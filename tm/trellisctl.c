/*
 * trellisctl: an operator's command line for a running trellisd — show one
 * transaction with its branches and ops, list transactions, abort a
 * prepared one. A thin shell over libtrellis (trellis.h): every command is
 * one SDK call whose result is printed readable or, with --json, as one
 * JSON object on stdout.
 *
 * Exit codes: 0 done, 1 trellisd (or the connection) refused the call —
 * its message on stderr, 2 a bad command line — the usage on stderr.
 *
 * Single-threaded; every call blocks until trellisd answers or
 * CTL_CALL_TIMEOUT_MS passes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trellis.h"

#define CTL_DEFAULT_TM "127.0.0.1:7400"
#define CTL_CALL_TIMEOUT_MS 15000
#define CTL_EXIT_ERROR 1
#define CTL_EXIT_USAGE 2

/* The parsed command line; strings borrow argv. */
typedef struct {
    const char *tm;
    int json;
    int help;
    const char *command;
    const char *gid;
    const char *reason;
    trellis_trans_status_t status;
    uint32_t limit;
    const char *page_token;
} ctl_args_t;

static const char usage_text[] =
    "usage: trellisctl [--tm HOST:PORT] [--json] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  status GID                  the transaction, its branches and ops\n"
    "  list [--status S] [--limit N] [--page-token T]\n"
    "                              transactions, oldest first; S is one of\n"
    "                              prepared|submitted|aborting|succeeded|"
    "failed\n"
    "  abort GID [--reason TEXT]   abort a prepared transaction\n"
    "  retry-now GID               (coming: needs a new trellisd RPC)\n"
    "  force-stop GID              (coming: needs a new trellisd RPC)\n"
    "\n"
    "flags:\n"
    "  --tm HOST:PORT   trellisd's address (default " CTL_DEFAULT_TM ")\n"
    "  --json           print one JSON object instead of text\n"
    "  --help           this text\n"
    "\n"
    "exit: 0 ok, 1 trellisd refused or could not be reached, 2 bad usage\n";

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "trellisctl: %s%s%s\n\n%s", what, arg ? ": " : "",
            arg ? arg : "", usage_text);
    return CTL_EXIT_USAGE;
}

/* ---- parsing ---------------------------------------------------------- */

static int parse_status(const char *s, trellis_trans_status_t *out)
{
    for (int i = TRELLIS_TRANS_PREPARED; i <= TRELLIS_TRANS_FAILED; i++) {
        if (strcmp(s, trellis_trans_status_name(i)) == 0) {
            *out = (trellis_trans_status_t)i;
            return 0;
        }
    }
    return -1;
}

static int parse_limit(const char *s, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v > 100000)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* A flag that takes a value: the value, or NULL when argv ran out. */
static const char *flag_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

/* Command-specific flags; 0, or the usage exit code. */
static int parse_command_flag(ctl_args_t *a, int argc, char **argv, int *i)
{
    const char *f = argv[*i];
    int is_list = a->command && strcmp(a->command, "list") == 0;
    int is_abort = a->command && strcmp(a->command, "abort") == 0;
    const char *v = NULL;
    if (is_list && strcmp(f, "--status") == 0) {
        if (!(v = flag_value(argc, argv, i)) || parse_status(v, &a->status))
            return usage_error("--status needs a status name", v);
    } else if (is_list && strcmp(f, "--limit") == 0) {
        if (!(v = flag_value(argc, argv, i)) || parse_limit(v, &a->limit))
            return usage_error("--limit needs a positive number", v);
    } else if (is_list && strcmp(f, "--page-token") == 0) {
        if (!(a->page_token = flag_value(argc, argv, i)))
            return usage_error("--page-token needs a value", NULL);
    } else if (is_abort && strcmp(f, "--reason") == 0) {
        if (!(a->reason = flag_value(argc, argv, i)))
            return usage_error("--reason needs a value", NULL);
    } else {
        return usage_error("unknown flag", f);
    }
    return 0;
}

/* A word that is not a flag: the command, then the command's GID. */
static int parse_word(ctl_args_t *a, const char *w)
{
    if (!a->command) {
        a->command = w;
        return 0;
    }
    if (!a->gid && strcmp(a->command, "list") != 0) {
        a->gid = w;
        return 0;
    }
    return usage_error("unexpected argument", w);
}

/* Global flags may stand anywhere; 0, or the usage exit code. */
static int parse_args(int argc, char **argv, ctl_args_t *a)
{
    *a = (ctl_args_t){.tm = CTL_DEFAULT_TM};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int rc = 0;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            a->help = 1;
        else if (strcmp(arg, "--json") == 0)
            a->json = 1;
        else if (strcmp(arg, "--tm") == 0) {
            if (!(a->tm = flag_value(argc, argv, &i)))
                return usage_error("--tm needs HOST:PORT", NULL);
        } else if (strncmp(arg, "--", 2) == 0)
            rc = parse_command_flag(a, argc, argv, &i);
        else
            rc = parse_word(a, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- output helpers ---------------------------------------------------- */

/* ms since the epoch as "2026-01-02T03:04:05.678Z" into buf; "-" for 0. */
static const char *fmt_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
    return buf;
}

/* s as a JSON string literal (NULL as ""). */
static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;
         p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* "key":"value" with a leading comma unless first. */
static void json_kv_str(const char *key, const char *value, int first)
{
    printf("%s\"%s\":", first ? "" : ",", key);
    json_str(value);
}

static void json_kv_int(const char *key, int64_t value)
{
    printf(",\"%s\":%" PRId64, key, value);
}

/* ---- status ------------------------------------------------------------ */

static void print_op_text(const trellis_op_info_t *op)
{
    char t[40];
    printf("    %-10s %-9s attempts %" PRIu32 "  %s\n", trellis_op_name(op->op),
           trellis_op_status_name(op->status), op->attempts,
           op->target ? op->target : "");
    if (op->last_error && op->last_error[0])
        printf("      last error: %s\n", op->last_error);
    for (size_t i = 0; i < op->n_attempt_ms; i++)
        printf("      attempt %zu at %s\n", i + 1,
               fmt_time(op->attempt_ms[i], t, sizeof t));
    if (op->finished_ms > 0)
        printf("      finished at %s\n",
               fmt_time(op->finished_ms, t, sizeof t));
}

static void print_trans_text(const trellis_trans_info_t *info)
{
    char t[40];
    printf("gid       %s\n", info->gid);
    printf("status    %s\n", trellis_trans_status_name(info->status));
    if (info->reason && info->reason[0])
        printf("reason    %s\n", info->reason);
    printf("created   %s\n", fmt_time(info->created_ms, t, sizeof t));
    printf("updated   %s\n", fmt_time(info->updated_ms, t, sizeof t));
    printf("finished  %s\n", fmt_time(info->finished_ms, t, sizeof t));
    printf("branches  %zu\n", info->n_branches);
    for (size_t b = 0; b < info->n_branches; b++) {
        const trellis_branch_info_t *br = &info->branches[b];
        printf("  branch %s (%s%s)\n", br->branch_id,
               trellis_mode_name(br->mode),
               br->initiator_driven ? ", initiator-driven" : "");
        for (size_t o = 0; o < br->n_ops; o++)
            print_op_text(&br->ops[o]);
    }
}

static void print_op_json(const trellis_op_info_t *op)
{
    json_kv_str("kind", trellis_op_name(op->op), 1);
    json_kv_str("target", op->target, 0);
    json_kv_str("status", trellis_op_status_name(op->status), 0);
    json_kv_int("attempts", op->attempts);
    json_kv_str("last_error", op->last_error, 0);
    fputs(",\"attempt_ms\":[", stdout);
    for (size_t i = 0; i < op->n_attempt_ms; i++)
        printf("%s%" PRId64, i ? "," : "", op->attempt_ms[i]);
    putchar(']');
    json_kv_int("finished_ms", op->finished_ms);
}

static void print_branch_json(const trellis_branch_info_t *br)
{
    json_kv_str("branch_id", br->branch_id, 1);
    json_kv_str("mode", trellis_mode_name(br->mode), 0);
    printf(",\"initiator_driven\":%s", br->initiator_driven ? "true" : "false");
    fputs(",\"ops\":[", stdout);
    for (size_t o = 0; o < br->n_ops; o++) {
        fputs(o ? ",{" : "{", stdout);
        print_op_json(&br->ops[o]);
        putchar('}');
    }
    putchar(']');
}

static void print_trans_json(const trellis_trans_info_t *info)
{
    putchar('{');
    json_kv_str("gid", info->gid, 1);
    json_kv_str("status", trellis_trans_status_name(info->status), 0);
    json_kv_str("reason", info->reason, 0);
    json_kv_int("created_ms", info->created_ms);
    json_kv_int("updated_ms", info->updated_ms);
    json_kv_int("finished_ms", info->finished_ms);
    fputs(",\"branches\":[", stdout);
    for (size_t b = 0; b < info->n_branches; b++) {
        fputs(b ? ",{" : "{", stdout);
        print_branch_json(&info->branches[b]);
        putchar('}');
    }
    fputs("]}\n", stdout);
}

/* Every failed call ends here: trellisd's message, exit 1. */
static int call_failed(const char *what, trellis_rc_t rc, const char *err)
{
    fprintf(stderr, "trellisctl: %s: %s (rc %d)\n", what, err, rc);
    return CTL_EXIT_ERROR;
}

static int cmd_status(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512];
    trellis_trans_info_t *info = NULL;
    trellis_rc_t rc = trellis_query(c, a->gid, &info, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed(a->gid, rc, err);
    if (a->json)
        print_trans_json(info);
    else
        print_trans_text(info);
    trellis_trans_info_free(info);
    return 0;
}

/* ---- list -------------------------------------------------------------- */

static void print_page_text(const trellis_list_page_t *p)
{
    char t[40];
    for (size_t i = 0; i < p->n; i++)
        printf("%-40s %-10s %s\n", p->items[i].gid,
               trellis_trans_status_name(p->items[i].status),
               fmt_time(p->items[i].created_ms, t, sizeof t));
    if (p->next_page_token && p->next_page_token[0])
        printf("next page: --page-token %s\n", p->next_page_token);
}

static void print_page_json(const trellis_list_page_t *p)
{
    fputs("{\"transactions\":[", stdout);
    for (size_t i = 0; i < p->n; i++) {
        fputs(i ? ",{" : "{", stdout);
        json_kv_str("gid", p->items[i].gid, 1);
        json_kv_str("status", trellis_trans_status_name(p->items[i].status), 0);
        json_kv_int("created_ms", p->items[i].created_ms);
        putchar('}');
    }
    putchar(']');
    json_kv_str("next_page_token", p->next_page_token, 0);
    fputs("}\n", stdout);
}

static int cmd_list(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512];
    trellis_list_filter_t f = {0};
    f.status = a->status;
    f.page_size = a->limit;
    f.page_token = a->page_token;
    trellis_list_page_t *p = NULL;
    trellis_rc_t rc = trellis_list(c, &f, &p, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed("list", rc, err);
    if (a->json)
        print_page_json(p);
    else
        print_page_text(p);
    trellis_list_page_free(p);
    return 0;
}

/* ---- abort ------------------------------------------------------------- */

/* Asks trellisd to wait for the outcome, so the status printed is usually
 * final ("failed"); it is "aborting" when trellisd answers before the
 * rollback has finished. Trade-off: a hanging compensation makes this wait
 * up to CTL_CALL_TIMEOUT_MS. */
static int cmd_abort(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512];
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    const char *reason = a->reason ? a->reason : "aborted by trellisctl";
    trellis_rc_t rc = trellis_abort(c, a->gid, reason, 1, &st, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed(a->gid, rc, err);
    if (a->json) {
        putchar('{');
        json_kv_str("gid", a->gid, 1);
        json_kv_str("status", trellis_trans_status_name(st), 0);
        fputs("}\n", stdout);
    } else {
        printf("%s %s\n", a->gid, trellis_trans_status_name(st));
    }
    return 0;
}

/* ---- main -------------------------------------------------------------- */

typedef int (*ctl_cmd_fn)(trellis_client_t *, const ctl_args_t *);

/* The command's function after checking its arguments; NULL with the usage
 * printed when the command line is wrong. */
static ctl_cmd_fn pick_command(const ctl_args_t *a)
{
    if (!a->command) {
        usage_error("no command", NULL);
        return NULL;
    }
    int needs_gid = 1;
    ctl_cmd_fn fn = NULL;
    if (strcmp(a->command, "status") == 0)
        fn = cmd_status;
    else if (strcmp(a->command, "abort") == 0)
        fn = cmd_abort;
    else if (strcmp(a->command, "list") == 0)
        fn = cmd_list, needs_gid = 0;
    if (!fn) {
        usage_error("unknown command", a->command);
        return NULL;
    }
    if (needs_gid && !a->gid) {
        usage_error("missing GID for", a->command);
        return NULL;
    }
    return fn;
}

int main(int argc, char **argv)
{
    ctl_args_t a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.help) {
        fputs(usage_text, stdout);
        return 0;
    }
    ctl_cmd_fn fn = pick_command(&a);
    if (!fn)
        return CTL_EXIT_USAGE;

    char err[512];
    trellis_client_t *c = NULL;
    trellis_rc_t crc =
        trellis_client_new(a.tm, CTL_CALL_TIMEOUT_MS, &c, err, sizeof err);
    if (crc != TRELLIS_OK)
        return call_failed(a.tm, crc, err);
    rc = fn(c, &a);
    trellis_client_free(c);
    return rc;
}
