/*
 * trellisctl: an operator's command line for a running trellisd — show one
 * transaction with its branches, ops and timeline, list transactions,
 * abort a prepared one, call waiting retries now, force-stop a transaction
 * that can never finish, read or change trellisd's log level, subscribe
 * targets to message topics and list them. A thin shell over libtrellis
 * (trellis.h, trellis_admin.h, trellis_msg.h): every command is one SDK
 * call (force-stop adds a Query to show what was left unfinished) whose
 * result is printed readable (ctl_print.c) or, with --json, as one JSON
 * object on stdout.
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

#include "ctl_print.h"
#include "trellis/trellis.h"
#include "trellis/trellis_admin.h"
#include "trellis/trellis_msg.h"

#define CTL_DEFAULT_TM "127.0.0.1:7400"
#define CTL_CALL_TIMEOUT_MS 15000
#define CTL_EXIT_ERROR 1
#define CTL_EXIT_USAGE 2

/* The parsed command line; strings borrow argv. */
typedef struct {
    const char *tm;
    int json;
    int help;
    int version;
    const char *command;
    const char *gid;
    const char *reason;
    trellis_trans_status_t status;
    uint32_t limit;
    const char *page_token;
    int all;               /* list: follow next_page_token to the end */
    int64_t older_than_ms; /* list: created at least this long ago; -1 */
    int64_t newer_than_ms; /* list: created at most this long ago; -1 */
    const char *level;     /* log-level: the new level, or NULL */
    const char *topic;     /* subscribe, unsubscribe, topics */
    const char *target;    /* subscribe, unsubscribe */
    const char *remark;    /* subscribe --remark */
    trellis_tls_t tls;     /* --tls-*: used when use_tls */
    int use_tls;
} ctl_args_t;

static const char usage_text[] =
    "usage: trellisctl [--tm HOST:PORT] [--json] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  status GID                  the transaction: branches, ops, attempts,\n"
    "                              last errors, timeline of attempts and\n"
    "                              decisions\n"
    "  list [--status S] [--older-than D] [--newer-than D]\n"
    "       [--limit N] [--page-token T] [--all]\n"
    "                              transactions, oldest first, N (1..1000,\n"
    "                              default 100) a page, --all every page;\n"
    "                              S is prepared|submitted|aborting|\n"
    "                              succeeded|failed; D a duration like 500ms,\n"
    "                              30s, 10m, 2h, 1d (by this machine's clock)\n"
    "  abort GID [--reason TEXT]   abort a prepared transaction\n"
    "  retry-now GID               call every op waiting for a retry now,\n"
    "                              its backoff reset\n"
    "  force-stop GID --reason TEXT\n"
    "                              end a transaction that can never finish:\n"
    "                              it becomes failed (\"force-stopped by\n"
    "                              operator: TEXT\"), nothing is called or\n"
    "                              rolled back any more; prints the ops left\n"
    "                              unfinished, to resolve by hand\n"
    "  log-level [LEVEL]           show trellisd's log level, or set it:\n"
    "                              debug|info|warn|error\n"
    "  subscribe TOPIC TARGET [--remark TEXT]\n"
    "                              deliver message steps naming TOPIC to\n"
    "                              TARGET (host:port/package.Service/Method)\n"
    "                              too; TEXT is a note for operators\n"
    "  unsubscribe TOPIC TARGET    stop delivering TOPIC to TARGET\n"
    "  topics [TOPIC]              the subscriptions (of TOPIC), by topic\n"
    "                              then age\n"
    "\n"
    "flags:\n"
    "  --tm HOST:PORT   trellisd's address (default " CTL_DEFAULT_TM ")\n"
    "  --json           print one JSON object instead of text\n"
    "  --tls-ca PEM     talk TLS to trellisd, verifying it against this CA\n"
    "  --tls-cert PEM   mutual TLS: present this certificate (with --tls-key)\n"
    "  --tls-key PEM    the private key of --tls-cert\n"
    "  --tls-server-name NAME  name trellisd's certificate must carry, when\n"
    "                   not the host of --tm\n"
    "  --help           this text\n"
    "  --version        print trellisctl's version and exit\n"
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
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v > 1000)
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

/* "500ms", "30s", "10m", "2h", "1d" (a bare number is seconds) as ms.
 * Returns 0, or -1 when it is not such a duration. */
static int parse_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},    {"s", 1000},    {"", 1000},
                 {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || s[0] == '-' || v > 100LL * 365 * 86400000)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0) {
            *out = (int64_t)v * units[i].ms;
            return 0;
        }
    return -1;
}

/* list's own flags; 0, 1 when f is not one of them, or the usage exit
 * code. */
static int parse_list_flag(ctl_args_t *a, int argc, char **argv, int *i)
{
    const char *f = argv[*i];
    const char *v = NULL;
    if (strcmp(f, "--all") == 0) {
        a->all = 1;
    } else if (strcmp(f, "--older-than") == 0) {
        if (!(v = flag_value(argc, argv, i)) ||
            parse_duration(v, &a->older_than_ms))
            return usage_error("--older-than needs a duration (10m, 2h...)", v);
    } else if (strcmp(f, "--newer-than") == 0) {
        if (!(v = flag_value(argc, argv, i)) ||
            parse_duration(v, &a->newer_than_ms))
            return usage_error("--newer-than needs a duration (10m, 2h...)", v);
    } else {
        return 1;
    }
    return 0;
}

/* Command-specific flags; 0, or the usage exit code. */
static int parse_command_flag(ctl_args_t *a, int argc, char **argv, int *i)
{
    const char *f = argv[*i];
    int is_list = a->command && strcmp(a->command, "list") == 0;
    int is_abort = a->command && (strcmp(a->command, "abort") == 0 ||
                                  strcmp(a->command, "force-stop") == 0);
    int is_subscribe = a->command && strcmp(a->command, "subscribe") == 0;
    const char *v = NULL;
    int rc = is_list ? parse_list_flag(a, argc, argv, i) : 1;
    if (rc != 1)
        return rc;
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
    } else if (is_subscribe && strcmp(f, "--remark") == 0) {
        if (!(a->remark = flag_value(argc, argv, i)))
            return usage_error("--remark needs a value", NULL);
    } else {
        return usage_error("unknown flag", f);
    }
    return 0;
}

/* Put w into an empty *slot: 0, or -1 when it was taken. */
static int take_word(const char **slot, const char *w)
{
    if (*slot)
        return -1;
    *slot = w;
    return 0;
}

static int is_topic_command(const char *cmd)
{
    return strcmp(cmd, "subscribe") == 0 || strcmp(cmd, "unsubscribe") == 0 ||
           strcmp(cmd, "topics") == 0;
}

/* A word that is not a flag: the command, then the command's GID (or
 * log-level's LEVEL, or the topic commands' TOPIC and TARGET). */
static int parse_word(ctl_args_t *a, const char *w)
{
    int ok;
    if (take_word(&a->command, w) == 0)
        return 0;
    if (is_topic_command(a->command))
        ok = take_word(&a->topic, w) == 0 ||
             (strcmp(a->command, "topics") != 0 &&
              take_word(&a->target, w) == 0);
    else if (strcmp(a->command, "log-level") == 0)
        ok = take_word(&a->level, w) == 0;
    else
        ok = strcmp(a->command, "list") != 0 && take_word(&a->gid, w) == 0;
    return ok ? 0 : usage_error("unexpected argument", w);
}

/* --tls-ca/-cert/-key/-server-name; 0, or the usage exit code. */
static int parse_tls_flag(ctl_args_t *a, int argc, char **argv, int *i)
{
    const char *f = argv[*i];
    const char *v = flag_value(argc, argv, i);
    if (!v)
        return usage_error("missing value for", f);
    if (strcmp(f, "--tls-ca") == 0)
        a->tls.ca_file = v;
    else if (strcmp(f, "--tls-cert") == 0)
        a->tls.cert_file = v;
    else if (strcmp(f, "--tls-key") == 0)
        a->tls.key_file = v;
    else if (strcmp(f, "--tls-server-name") == 0)
        a->tls.server_name = v;
    else
        return usage_error("unknown flag", f);
    a->use_tls = 1;
    return 0;
}

/* Global flags may stand anywhere; 0, or the usage exit code. */
static int parse_args(int argc, char **argv, ctl_args_t *a)
{
    *a = (ctl_args_t){
        .tm = CTL_DEFAULT_TM, .older_than_ms = -1, .newer_than_ms = -1};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int rc = 0;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            a->help = 1;
        else if (strcmp(arg, "--version") == 0)
            a->version = 1;
        else if (strcmp(arg, "--json") == 0)
            a->json = 1;
        else if (strcmp(arg, "--tm") == 0) {
            if (!(a->tm = flag_value(argc, argv, &i)))
                return usage_error("--tm needs HOST:PORT", NULL);
        } else if (strncmp(arg, "--tls-", 6) == 0)
            rc = parse_tls_flag(a, argc, argv, &i);
        else if (strncmp(arg, "--", 2) == 0)
            rc = parse_command_flag(a, argc, argv, &i);
        else
            rc = parse_word(a, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* Every failed call ends here: trellisd's message, exit 1. */
static int call_failed(const char *what, trellis_rc_t rc, const char *err)
{
    fprintf(stderr, "trellisctl: %s: %s (rc %d)\n", what, err, rc);
    return CTL_EXIT_ERROR;
}

/* ---- status ------------------------------------------------------------ */

static int cmd_status(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512];
    trellis_trans_info_t *info = NULL;
    trellis_rc_t rc = trellis_query(c, a->gid, &info, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed(a->gid, rc, err);
    if (a->json)
        ctl_print_trans_json(info);
    else
        ctl_print_trans_text(info);
    trellis_trans_info_free(info);
    return 0;
}

/* ---- list -------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_items_text(const trellis_list_page_t *p, int64_t now)
{
    char t[40], age[32];
    for (size_t i = 0; i < p->n; i++)
        printf("%-40s %-10s %s  %s ago\n", p->items[i].gid,
               trellis_trans_status_name(p->items[i].status),
               ctl_fmt_time(p->items[i].created_ms, t, sizeof t),
               ctl_fmt_age(now - p->items[i].created_ms, age, sizeof age));
}

/* The page's transactions as JSON objects; *first tracks the comma. */
static void print_items_json(const trellis_list_page_t *p, int *first)
{
    for (size_t i = 0; i < p->n; i++) {
        fputs(*first ? "{" : ",{", stdout);
        *first = 0;
        ctl_json_kv_str("gid", p->items[i].gid, 1);
        ctl_json_kv_str("status", trellis_trans_status_name(p->items[i].status),
                        0);
        ctl_json_kv_int("created_ms", p->items[i].created_ms);
        ctl_json_kv_int("finished_ms", p->items[i].finished_ms);
        ctl_json_kv_str("reason", p->items[i].reason, 0);
        putchar('}');
    }
}

/* One page, or with --all every page from the first (or --page-token) on.
 * The JSON form is one object either way; its next_page_token is "" after
 * --all. Trade-off of --all: pages are printed as they come, so an error
 * halfway leaves the earlier pages printed and exits 1. */
static int cmd_list(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512], token[256];
    int64_t now = now_ms();
    trellis_list_filter_t f = {0};
    f.status = a->status;
    f.page_size = a->limit;
    f.page_token = a->page_token;
    if (a->older_than_ms >= 0)
        f.created_before_ms = now - a->older_than_ms;
    if (a->newer_than_ms >= 0)
        f.created_after_ms = now - a->newer_than_ms;
    int first = 1;
    if (a->json)
        fputs("{\"transactions\":[", stdout);
    for (;;) {
        trellis_list_page_t *p = NULL;
        trellis_rc_t rc = trellis_list(c, &f, &p, err, sizeof err);
        if (rc != TRELLIS_OK)
            return call_failed("list", rc, err);
        if (a->json)
            print_items_json(p, &first);
        else
            print_items_text(p, now);
        snprintf(token, sizeof token, "%s",
                 p->next_page_token ? p->next_page_token : "");
        trellis_list_page_free(p);
        if (!a->all || !token[0])
            break;
        f.page_token = token;
    }
    if (a->json) {
        putchar(']');
        ctl_json_kv_str("next_page_token", token, 0);
        fputs("}\n", stdout);
    } else if (token[0]) {
        printf("next page: --page-token %s\n", token);
    }
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
        ctl_json_kv_str("gid", a->gid, 1);
        ctl_json_kv_str("status", trellis_trans_status_name(st), 0);
        fputs("}\n", stdout);
    } else {
        printf("%s %s\n", a->gid, trellis_trans_status_name(st));
    }
    return 0;
}

/* ---- retry-now ----------------------------------------------------------- */

static int cmd_retry_now(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512];
    uint32_t n = 0;
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc = trellis_retry_now(c, a->gid, &n, &st, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed(a->gid, rc, err);
    if (a->json) {
        putchar('{');
        ctl_json_kv_str("gid", a->gid, 1);
        ctl_json_kv_str("status", trellis_trans_status_name(st), 0);
        ctl_json_kv_int("ops_called", n);
        fputs("}\n", stdout);
    } else {
        printf("%s %s: %u op(s) were waiting for a retry and were called "
               "now\n",
               a->gid, trellis_trans_status_name(st), n);
    }
    return 0;
}

/* ---- force-stop -----------------------------------------------------------
 */

static void print_stopped_text(const char *gid, trellis_trans_status_t st,
                               const char *reason,
                               const trellis_trans_info_t *info)
{
    printf("%s %s: %s\n", gid, trellis_trans_status_name(st), reason);
    if (!info)
        return;
    if (ctl_unfinished_count(info)) {
        printf("left unfinished (trellisd will not call these again; "
               "resolve them by hand):\n");
        ctl_print_unfinished_text(info);
    }
    if (ctl_past_commit_decision(info))
        printf("warning: the commit decision had been made; branches whose "
               "confirm/commit succeeded stay committed\n");
}

static void print_stopped_json(const char *gid, trellis_trans_status_t st,
                               const char *reason,
                               const trellis_trans_info_t *info)
{
    putchar('{');
    ctl_json_kv_str("gid", gid, 1);
    ctl_json_kv_str("status", trellis_trans_status_name(st), 0);
    ctl_json_kv_str("reason", reason, 0);
    if (info) {
        printf(",\"past_commit_decision\":%s",
               ctl_past_commit_decision(info) ? "true" : "false");
        ctl_print_unfinished_json(info);
    }
    fputs("}\n", stdout);
}

/* ForceStop, then a Query to show what the operator is left with. The stop
 * is done once ForceStop answers; a failed Query only shortens the output. */
static int cmd_force_stop(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512], reason[1200];
    trellis_trans_status_t st = TRELLIS_TRANS_UNSPECIFIED;
    trellis_rc_t rc = trellis_force_stop(c, a->gid, a->reason, &st, reason,
                                         sizeof reason, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed(a->gid, rc, err);
    trellis_trans_info_t *info = NULL;
    if (trellis_query(c, a->gid, &info, err, sizeof err) != TRELLIS_OK) {
        fprintf(stderr,
                "trellisctl: %s: stopped, but the query after it "
                "failed: %s\n",
                a->gid, err);
        info = NULL;
    }
    if (a->json)
        print_stopped_json(a->gid, st, reason, info);
    else
        print_stopped_text(a->gid, st, reason, info);
    trellis_trans_info_free(info);
    return 0;
}

/* ---- log-level ------------------------------------------------------------
 */

static int cmd_log_level(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512], now[16], before[16];
    trellis_rc_t rc = trellis_set_log_level(
        c, a->level, now, sizeof now, before, sizeof before, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed("log-level", rc, err);
    if (a->json) {
        putchar('{');
        ctl_json_kv_str("level", now, 1);
        ctl_json_kv_str("previous", before, 0);
        fputs("}\n", stdout);
    } else if (a->level && strcmp(now, before) != 0) {
        printf("log level %s (was %s)\n", now, before);
    } else {
        printf("log level %s\n", now);
    }
    return 0;
}

/* ---- topics ------------------------------------------------------------ */

/* {"topic":...,"target":...,"<key>":true|false} and a newline. */
static void print_pair_json(const ctl_args_t *a, const char *key, int value)
{
    putchar('{');
    ctl_json_kv_str("topic", a->topic, 1);
    ctl_json_kv_str("target", a->target, 0);
    printf(",\"%s\":%s}\n", key, value ? "true" : "false");
}

static int cmd_subscribe(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512];
    int created = 0;
    trellis_rc_t rc = trellis_subscribe(c, a->topic, a->target, a->remark,
                                        &created, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed(a->topic, rc, err);
    if (a->json) {
        print_pair_json(a, "created", created);
    } else {
        printf("%s %s to %s\n", created ? "subscribed" : "already subscribed",
               a->target, a->topic);
    }
    return 0;
}

static int cmd_unsubscribe(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512];
    trellis_rc_t rc =
        trellis_unsubscribe(c, a->topic, a->target, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed(a->topic, rc, err);
    if (a->json) {
        print_pair_json(a, "unsubscribed", 1);
    } else {
        printf("unsubscribed %s from %s\n", a->target, a->topic);
    }
    return 0;
}

static void print_subscriptions_json(const trellis_subscription_list_t *l)
{
    fputs("{\"subscriptions\":[", stdout);
    for (size_t i = 0; i < l->n; i++) {
        const trellis_subscription_t *s = &l->items[i];
        fputs(i ? ",{" : "{", stdout);
        ctl_json_kv_str("topic", s->topic, 1);
        ctl_json_kv_str("target", s->target, 0);
        ctl_json_kv_str("remark", s->remark, 0);
        ctl_json_kv_int("created_ms", s->created_ms);
        putchar('}');
    }
    fputs("]}\n", stdout);
}

static void print_subscriptions_text(const trellis_subscription_list_t *l,
                                     const char *topic)
{
    char t[40];
    if (l->n == 0) {
        printf("no subscriptions%s%s\n", topic ? " to " : "",
               topic ? topic : "");
        return;
    }
    printf("%-24s %-24s %-44s %s\n", "TOPIC", "SUBSCRIBED", "TARGET", "REMARK");
    for (size_t i = 0; i < l->n; i++) {
        const trellis_subscription_t *s = &l->items[i];
        printf("%-24s %-24s %-44s %s\n", s->topic,
               ctl_fmt_time(s->created_ms, t, sizeof t), s->target, s->remark);
    }
}

static int cmd_topics(trellis_client_t *c, const ctl_args_t *a)
{
    char err[512];
    trellis_subscription_list_t *l = NULL;
    trellis_rc_t rc =
        trellis_list_subscriptions(c, a->topic, &l, err, sizeof err);
    if (rc != TRELLIS_OK)
        return call_failed(a->topic ? a->topic : "topics", rc, err);
    if (a->json)
        print_subscriptions_json(l);
    else
        print_subscriptions_text(l, a->topic);
    trellis_subscription_list_free(l);
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
    else if (strcmp(a->command, "retry-now") == 0)
        fn = cmd_retry_now;
    else if (strcmp(a->command, "force-stop") == 0)
        fn = cmd_force_stop;
    else if (strcmp(a->command, "log-level") == 0)
        fn = cmd_log_level, needs_gid = 0;
    else if (strcmp(a->command, "subscribe") == 0)
        fn = cmd_subscribe, needs_gid = 0;
    else if (strcmp(a->command, "unsubscribe") == 0)
        fn = cmd_unsubscribe, needs_gid = 0;
    else if (strcmp(a->command, "topics") == 0)
        fn = cmd_topics, needs_gid = 0;
    if (!fn) {
        usage_error("unknown command", a->command);
        return NULL;
    }
    if (needs_gid && !a->gid) {
        usage_error("missing GID for", a->command);
        return NULL;
    }
    if ((fn == cmd_subscribe || fn == cmd_unsubscribe) && !a->target) {
        usage_error("missing TOPIC and TARGET for", a->command);
        return NULL;
    }
    if (fn == cmd_force_stop && !a->reason) {
        usage_error("force-stop needs --reason TEXT (it is stored with the "
                    "transaction)",
                    NULL);
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
    if (a.version) {
        printf("trellisctl %s\n", trellis_version());
        return 0;
    }
    ctl_cmd_fn fn = pick_command(&a);
    if (!fn)
        return CTL_EXIT_USAGE;

    char err[512];
    trellis_client_t *c = NULL;
    trellis_rc_t crc =
        trellis_client_new_tls(a.tm, CTL_CALL_TIMEOUT_MS,
                               a.use_tls ? &a.tls : NULL, &c, err, sizeof err);
    if (crc != TRELLIS_OK)
        return call_failed(a.tm, crc, err);
    rc = fn(c, &a);
    trellis_client_free(c);
    return rc;
}
