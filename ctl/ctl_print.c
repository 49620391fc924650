/*
 * ctl_print: how trellisctl shows a transaction (see ctl_print.h). Owns the
 * text layout, the JSON field names and the timeline, which is built from
 * the Query reply alone: every attempt start, every op end, the derived
 * decisions, creation and the end, sorted by time.
 */
#include "ctl_print.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trellis/v1/tm.pb-c.h"

/* ---- JSON and time helpers ---------------------------------------------- */

void ctl_json_str(const char *s)
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

void ctl_json_kv_str(const char *key, const char *value, int first)
{
    printf("%s\"%s\":", first ? "" : ",", key);
    ctl_json_str(value);
}

void ctl_json_kv_int(const char *key, int64_t value)
{
    printf(",\"%s\":%" PRId64, key, value);
}

const char *ctl_fmt_time(int64_t ms, char *buf, size_t len)
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

const char *ctl_fmt_age(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, len, "%" PRId64 "ms", ms);
    else if (s < 60)
        snprintf(buf, len, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, len, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRId64 "h%" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%" PRId64 "d%" PRId64 "h", s / 86400,
                 s % 86400 / 3600);
    return buf;
}

/* ---- op sides ----------------------------------------------------------- */

static int is_forward(trellis_op_t op)
{
    return op == TRELLIS_OP_ACTION || op == TRELLIS_OP_TRY ||
           op == TRELLIS_OP_PREPARE;
}

static int is_commit_side(trellis_op_t op)
{
    return op == TRELLIS_OP_CONFIRM || op == TRELLIS_OP_COMMIT;
}

static int is_unfinished(const trellis_op_info_t *op)
{
    return op->attempts > 0 && (op->status == TRELLIS_OP_PENDING ||
                                op->status == TRELLIS_OP_SKIPPED);
}

int ctl_past_commit_decision(const trellis_trans_info_t *info)
{
    for (size_t b = 0; b < info->n_branches; b++)
        for (size_t o = 0; o < info->branches[b].n_ops; o++) {
            const trellis_op_info_t *op = &info->branches[b].ops[o];
            if (is_commit_side(op->op) &&
                (op->attempts > 0 || op->status == TRELLIS_OP_SUCCEEDED))
                return 1;
        }
    return 0;
}

/* ---- timeline
 * ---------------------------------------------------------------- */

typedef enum {
    EV_CREATED,
    EV_ATTEMPT,
    EV_OP_END,
    EV_DECISION,
    EV_FINISHED,
} ev_kind_t;

typedef struct {
    int64_t ms;
    size_t seq; /* insertion order: ties keep it */
    ev_kind_t kind;
    const char *branch;
    const trellis_op_info_t *op;
    uint32_t attempt;     /* EV_ATTEMPT: 1.. */
    const char *decision; /* EV_DECISION: "commit" / "rollback" */
} ev_t;

typedef struct {
    ev_t *v;
    size_t n, cap;
} evs_t;

static void ev_add(evs_t *e, ev_t ev)
{
    if (ev.ms <= 0)
        return;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 32;
        ev_t *v = realloc(e->v, cap * sizeof *v);
        if (!v)
            return; /* a shorter timeline rather than none */
        e->v = v;
        e->cap = cap;
    }
    ev.seq = e->n;
    e->v[e->n++] = ev;
}

static int ev_cmp(const void *a, const void *b)
{
    const ev_t *x = a, *y = b;
    if (x->ms != y->ms)
        return x->ms < y->ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A message's head (branch 0, msg_check: its back-check), or NULL. */
static const trellis_op_info_t *message_check(const trellis_trans_info_t *info)
{
    if (info->n_branches == 0 ||
        info->branches[0].mode != TRELLIS_MODE_MSG_CHECK ||
        info->branches[0].n_ops == 0)
        return NULL;
    return &info->branches[0].ops[0];
}

/* A message is decided once: delivered (the initiator's submit, or the
 * back-check answered committed) or dropped (abort, or the back-check
 * answered not committed). Its steps are never rolled back, so a step's
 * failure decides nothing. */
static void add_message_decision(evs_t *e, const trellis_op_info_t *check)
{
    if (check->status == TRELLIS_OP_SUCCEEDED)
        ev_add(e, (ev_t){.ms = check->finished_ms,
                         .kind = EV_DECISION,
                         .decision = "deliver"});
    else if (check->status == TRELLIS_OP_FAILED)
        ev_add(e, (ev_t){.ms = check->finished_ms,
                         .kind = EV_DECISION,
                         .decision = "drop"});
}

/* Derived decisions: see ctl_print.h. */
static void add_decisions(evs_t *e, const trellis_trans_info_t *info)
{
    const trellis_op_info_t *check = message_check(info);
    if (check) {
        add_message_decision(e, check);
        return;
    }
    int64_t first_fail = 0, last_forward = 0;
    int all_forward_ok = 1, any_forward = 0;
    for (size_t b = 0; b < info->n_branches; b++)
        for (size_t o = 0; o < info->branches[b].n_ops; o++) {
            const trellis_op_info_t *op = &info->branches[b].ops[o];
            if (!is_forward(op->op))
                continue;
            any_forward = 1;
            if (op->status == TRELLIS_OP_FAILED &&
                (!first_fail || op->finished_ms < first_fail))
                first_fail = op->finished_ms;
            if (op->status != TRELLIS_OP_SUCCEEDED)
                all_forward_ok = 0;
            else if (op->finished_ms > last_forward)
                last_forward = op->finished_ms;
        }
    if (first_fail)
        ev_add(e, (ev_t){.ms = first_fail,
                         .kind = EV_DECISION,
                         .decision = "rollback"});
    else if (any_forward && all_forward_ok &&
             (ctl_past_commit_decision(info) ||
              info->status == TRELLIS_TRANS_SUCCEEDED))
        ev_add(e, (ev_t){.ms = last_forward,
                         .kind = EV_DECISION,
                         .decision = "commit"});
}

static void add_op_events(evs_t *e, const char *branch,
                          const trellis_op_info_t *op)
{
    for (size_t i = 0; i < op->n_attempt_ms; i++)
        ev_add(e, (ev_t){.ms = op->attempt_ms[i],
                         .kind = EV_ATTEMPT,
                         .branch = branch,
                         .op = op,
                         .attempt = (uint32_t)i + 1});
    if (op->status == TRELLIS_OP_SUCCEEDED || op->status == TRELLIS_OP_FAILED)
        ev_add(e, (ev_t){.ms = op->finished_ms,
                         .kind = EV_OP_END,
                         .branch = branch,
                         .op = op});
}

/* The sorted timeline; free(e->v) after use. */
static void build_timeline(evs_t *e, const trellis_trans_info_t *info)
{
    *e = (evs_t){0};
    ev_add(e, (ev_t){.ms = info->created_ms, .kind = EV_CREATED});
    for (size_t b = 0; b < info->n_branches; b++)
        for (size_t o = 0; o < info->branches[b].n_ops; o++)
            add_op_events(e, info->branches[b].branch_id,
                          &info->branches[b].ops[o]);
    add_decisions(e, info);
    ev_add(e, (ev_t){.ms = info->finished_ms, .kind = EV_FINISHED});
    if (e->n)
        qsort(e->v, e->n, sizeof *e->v, ev_cmp);
}

/* What happened, in words, for the text form. */
static void ev_describe(const ev_t *ev, const trellis_trans_info_t *info,
                        char *buf, size_t len)
{
    switch (ev->kind) {
    case EV_CREATED:
        snprintf(buf, len, "created");
        break;
    case EV_ATTEMPT:
        snprintf(buf, len, "branch %s %s: attempt %u", ev->branch,
                 trellis_op_name(ev->op->op), ev->attempt);
        break;
    case EV_OP_END:
        snprintf(buf, len, "branch %s %s: %s", ev->branch,
                 trellis_op_name(ev->op->op),
                 trellis_op_status_name(ev->op->status));
        break;
    case EV_DECISION:
        snprintf(buf, len, "decision: %s", ev->decision);
        break;
    case EV_FINISHED:
        snprintf(buf, len, "finished: %s",
                 trellis_trans_status_name(info->status));
        break;
    }
}

static void print_timeline_text(const trellis_trans_info_t *info)
{
    evs_t e;
    build_timeline(&e, info);
    printf("timeline\n");
    for (size_t i = 0; i < e.n; i++) {
        char t[40], what[200];
        ev_describe(&e.v[i], info, what, sizeof what);
        printf("  %s  +%-8" PRId64 " %s\n",
               ctl_fmt_time(e.v[i].ms, t, sizeof t),
               e.v[i].ms - info->created_ms, what);
    }
    free(e.v);
}

static const char *const ev_names[] = {"created", "attempt", "op_end",
                                       "decision", "finished"};

static void print_event_json(const ev_t *ev, const trellis_trans_info_t *info)
{
    printf("{\"ms\":%" PRId64, ev->ms);
    ctl_json_kv_str("event", ev_names[ev->kind], 0);
    if (ev->op) {
        ctl_json_kv_str("branch", ev->branch, 0);
        ctl_json_kv_str("op", trellis_op_name(ev->op->op), 0);
    }
    if (ev->kind == EV_ATTEMPT)
        ctl_json_kv_int("attempt", ev->attempt);
    else if (ev->kind == EV_OP_END)
        ctl_json_kv_str("status", trellis_op_status_name(ev->op->status), 0);
    else if (ev->kind == EV_DECISION)
        ctl_json_kv_str("decision", ev->decision, 0);
    else if (ev->kind == EV_FINISHED)
        ctl_json_kv_str("status", trellis_trans_status_name(info->status), 0);
    putchar('}');
}

static void print_timeline_json(const trellis_trans_info_t *info)
{
    evs_t e;
    build_timeline(&e, info);
    fputs(",\"timeline\":[", stdout);
    for (size_t i = 0; i < e.n; i++) {
        if (i)
            putchar(',');
        print_event_json(&e.v[i], info);
    }
    putchar(']');
    free(e.v);
}

/* ---- one transaction ---------------------------------------------------- */

static void print_op_text(const trellis_op_info_t *op)
{
    char t[40];
    printf("    %-10s %-9s attempts %" PRIu32 "  %s\n", trellis_op_name(op->op),
           trellis_op_status_name(op->status), op->attempts,
           op->target ? op->target : "");
    if (op->recorded)
        printf("      recorded result: %s, %zu bytes\n",
               op->status == TRELLIS_OP_FAILED ? "business failure" : "ok",
               op->result_len);
    if (!op->recorded && op->result_size > op->result_len)
        printf("      log %zu bytes, cut from %" PRIu64 "\n", op->result_len,
               op->result_size);
    else if (!op->recorded && op->result_len)
        printf("      log %zu bytes\n", op->result_len);
    if (op->last_error && op->last_error[0])
        printf("      %s: %s\n", op->recorded ? "message" : "last error",
               op->last_error);
    if (op->finished_ms > 0)
        printf("      finished at %s\n",
               ctl_fmt_time(op->finished_ms, t, sizeof t));
}

/* A workflow's head (branch 0): its name and input size from the
 * ResumeRequest it carries, and what an operator can do when trellisd
 * stopped resuming it. */
static void print_workflow_text(const trellis_trans_info_t *info)
{
    if (info->n_branches == 0 ||
        info->branches[0].mode != TRELLIS_MODE_WORKFLOW)
        return;
    const trellis_branch_info_t *head = &info->branches[0];
    Trellis__V1__ResumeRequest *r = trellis__v1__resume_request__unpack(
        NULL, head->payload_len, head->payload);
    if (r)
        printf("workflow  %s (input %zu bytes)\n", r->name, r->input.len);
    trellis__v1__resume_request__free_unpacked(r, NULL);
    const trellis_op_info_t *resume = head->n_ops ? &head->ops[0] : NULL;
    if (info->status == TRELLIS_TRANS_PREPARED && resume &&
        resume->status == TRELLIS_OP_FAILED)
        printf("          stopped: the workflow service refused to resume it;"
               " fix the service, then `trellisctl retry-now %s`, or abort or"
               " force-stop it\n",
               info->gid);
}

/* A message's head: how its back-check went, in an operator's words. */
static void print_message_text(const trellis_trans_info_t *info)
{
    const trellis_op_info_t *check = message_check(info);
    if (!check)
        return;
    const char *what = "waiting for the initiator's submit or abort";
    if (check->status == TRELLIS_OP_SUCCEEDED)
        what = check->attempts ? "committed (the back-check answered): "
                                 "delivering its steps"
                               : "submitted by the initiator: delivering "
                                 "its steps";
    else if (check->status == TRELLIS_OP_FAILED)
        what = check->attempts ? "dropped: the back-check answered that the "
                                 "local transaction did not commit"
                               : "dropped: aborted by the initiator";
    else if (info->status == TRELLIS_TRANS_FAILED) {
        /* Aborted by the initiator (the head op was never called, and is
         * SKIPPED), or force-stopped: the reason says which. */
        printf("message   dropped: %s\n",
               info->reason && *info->reason ? info->reason : "aborted");
        return;
    } else if (check->attempts)
        what = "back-checking: the initiator went silent, asking its "
               "back-check until it answers";
    printf("message   %s\n", what);
}

/* The pivot branch of a saga (trellis_saga_set_pivot), or NULL. */
static const trellis_branch_info_t *
pivot_branch(const trellis_trans_info_t *info)
{
    for (size_t b = 0; b < info->n_branches; b++)
        if (info->branches[b].pivot)
            return &info->branches[b];
    return NULL;
}

/* The pivot's action succeeded: the saga only goes forward. */
static int past_pivot(const trellis_branch_info_t *br)
{
    for (size_t o = 0; o < br->n_ops; o++)
        if (br->ops[o].op == TRELLIS_OP_ACTION)
            return br->ops[o].status == TRELLIS_OP_SUCCEEDED;
    return 0;
}

/* Where a saga with a pivot stands: before it a failure rolls back; past
 * it every later step is retried until it succeeds. */
static void print_pivot_text(const trellis_trans_info_t *info)
{
    const trellis_branch_info_t *br = pivot_branch(info);
    if (!br)
        return;
    printf("pivot     step %s: %s\n", br->branch_id,
           past_pivot(br) ? "past the pivot: forward only (later steps are "
                            "retried until they succeed; no rollback)"
                          : "not passed yet: a failure still rolls back");
}

/* A completion or branch listener's notify for the side the transaction
 * took: its ops are listed in slot order, commit-side then
 * rollback-side. */
static const trellis_op_info_t *
any_listener_op(const trellis_trans_info_t *info,
                const trellis_branch_info_t *br)
{
    if ((br->mode != TRELLIS_MODE_EVENT &&
         br->mode != TRELLIS_MODE_BRANCH_EVENT) ||
        br->n_ops < 2)
        return NULL;
    int failing = info->status == TRELLIS_TRANS_ABORTING ||
                  info->status == TRELLIS_TRANS_FAILED;
    return &br->ops[failing ? 1 : 0];
}

/* A completion listener's notify only (told once the outcome is known). */
static const trellis_op_info_t *listener_op(const trellis_trans_info_t *info,
                                            const trellis_branch_info_t *br)
{
    return br->mode == TRELLIS_MODE_EVENT ? any_listener_op(info, br) : NULL;
}

/* " about branch 01" for a branch listener's event "ev-01-2", else "". */
static void reported_text(const trellis_branch_info_t *br, char *out,
                          size_t len)
{
    const char *id = br->branch_id ? br->branch_id : "";
    const char *dash = strrchr(id, '-');
    out[0] = '\0';
    if (br->mode == TRELLIS_MODE_BRANCH_EVENT && dash && dash - id > 3)
        snprintf(out, len, " about branch %.*s", (int)(dash - id - 3), id + 3);
}

/* Listeners are called only once the outcome is reached: a call made or
 * done says the transaction is past it, telling them. */
static int telling_listeners(const trellis_trans_info_t *info)
{
    if (info->status != TRELLIS_TRANS_SUBMITTED &&
        info->status != TRELLIS_TRANS_ABORTING)
        return 0;
    for (size_t b = 0; b < info->n_branches; b++) {
        const trellis_op_info_t *op = listener_op(info, &info->branches[b]);
        if (op && (op->attempts > 0 || op->status == TRELLIS_OP_SUCCEEDED))
            return 1;
    }
    return 0;
}

/* Completion and branch listeners: one line per event, told or
 * pending. */
static void print_listeners_text(const trellis_trans_info_t *info)
{
    if (telling_listeners(info))
        printf("outcome   %s; telling listeners\n",
               info->status == TRELLIS_TRANS_SUBMITTED ? "succeeded"
                                                       : "failed");
    for (size_t b = 0; b < info->n_branches; b++) {
        const trellis_op_info_t *op = any_listener_op(info, &info->branches[b]);
        char about[48];
        if (!op)
            continue;
        reported_text(&info->branches[b], about, sizeof(about));
        printf("listener  %s%s: %s (%" PRIu32 " attempts)\n",
               op->target ? op->target : "", about,
               op->status == TRELLIS_OP_SUCCEEDED ? "told"
               : op->status == TRELLIS_OP_SKIPPED ? "not told (stopped)"
                                                  : "pending",
               op->attempts);
    }
}

void ctl_print_trans_text(const trellis_trans_info_t *info)
{
    char t[40];
    printf("gid       %s\n", info->gid);
    printf("status    %s\n", trellis_trans_status_name(info->status));
    if (info->reason && info->reason[0])
        printf("reason    %s\n", info->reason);
    print_workflow_text(info);
    print_message_text(info);
    print_pivot_text(info);
    print_listeners_text(info);
    printf("created   %s\n", ctl_fmt_time(info->created_ms, t, sizeof t));
    printf("updated   %s\n", ctl_fmt_time(info->updated_ms, t, sizeof t));
    printf("finished  %s\n", ctl_fmt_time(info->finished_ms, t, sizeof t));
    printf("branches  %zu\n", info->n_branches);
    for (size_t b = 0; b < info->n_branches; b++) {
        const trellis_branch_info_t *br = &info->branches[b];
        printf("  branch %s (%s%s%s)\n", br->branch_id,
               trellis_mode_name(br->mode),
               br->initiator_driven ? ", initiator-driven" : "",
               br->pivot ? ", pivot" : "");
        for (size_t o = 0; o < br->n_ops; o++)
            print_op_text(&br->ops[o]);
    }
    print_timeline_text(info);
}

static void print_op_json(const trellis_op_info_t *op)
{
    ctl_json_kv_str("kind", trellis_op_name(op->op), 1);
    ctl_json_kv_str("target", op->target, 0);
    ctl_json_kv_str("status", trellis_op_status_name(op->status), 0);
    ctl_json_kv_int("attempts", op->attempts);
    ctl_json_kv_str("last_error", op->last_error, 0);
    fputs(",\"attempt_ms\":[", stdout);
    for (size_t i = 0; i < op->n_attempt_ms; i++)
        printf("%s%" PRId64, i ? "," : "", op->attempt_ms[i]);
    putchar(']');
    ctl_json_kv_int("finished_ms", op->finished_ms);
    if (op->recorded) {
        fputs(",\"recorded\":true", stdout);
        ctl_json_kv_int("result_bytes", (int64_t)op->result_len);
    } else if (op->result_len) { /* the compensation log */
        ctl_json_kv_int("log_bytes", (int64_t)op->result_len);
        ctl_json_kv_int("log_full_bytes", (int64_t)op->result_size);
    }
}

static void print_branch_json(const trellis_branch_info_t *br)
{
    ctl_json_kv_str("branch_id", br->branch_id, 1);
    ctl_json_kv_str("mode", trellis_mode_name(br->mode), 0);
    printf(",\"initiator_driven\":%s", br->initiator_driven ? "true" : "false");
    if (br->pivot)
        printf(",\"pivot\":true,\"past_pivot\":%s",
               past_pivot(br) ? "true" : "false");
    fputs(",\"ops\":[", stdout);
    for (size_t o = 0; o < br->n_ops; o++) {
        fputs(o ? ",{" : "{", stdout);
        print_op_json(&br->ops[o]);
        putchar('}');
    }
    putchar(']');
}

void ctl_print_trans_json(const trellis_trans_info_t *info)
{
    putchar('{');
    ctl_json_kv_str("gid", info->gid, 1);
    ctl_json_kv_str("status", trellis_trans_status_name(info->status), 0);
    ctl_json_kv_str("reason", info->reason, 0);
    ctl_json_kv_int("created_ms", info->created_ms);
    ctl_json_kv_int("updated_ms", info->updated_ms);
    ctl_json_kv_int("finished_ms", info->finished_ms);
    fputs(",\"branches\":[", stdout);
    for (size_t b = 0; b < info->n_branches; b++) {
        fputs(b ? ",{" : "{", stdout);
        print_branch_json(&info->branches[b]);
        putchar('}');
    }
    putchar(']');
    print_timeline_json(info);
    fputs("}\n", stdout);
}

/* ---- what a force-stop left unfinished ---------------------------------- */

size_t ctl_unfinished_count(const trellis_trans_info_t *info)
{
    size_t n = 0;
    for (size_t b = 0; b < info->n_branches; b++)
        for (size_t o = 0; o < info->branches[b].n_ops; o++)
            n += is_unfinished(&info->branches[b].ops[o]) ? 1 : 0;
    return n;
}

void ctl_print_unfinished_text(const trellis_trans_info_t *info)
{
    for (size_t b = 0; b < info->n_branches; b++)
        for (size_t o = 0; o < info->branches[b].n_ops; o++) {
            const trellis_op_info_t *op = &info->branches[b].ops[o];
            if (!is_unfinished(op))
                continue;
            printf("  branch %s %s (%" PRIu32 " attempts) %s\n",
                   info->branches[b].branch_id, trellis_op_name(op->op),
                   op->attempts, op->target ? op->target : "");
            if (op->last_error && op->last_error[0])
                printf("    last error: %s\n", op->last_error);
        }
}

void ctl_print_unfinished_json(const trellis_trans_info_t *info)
{
    fputs(",\"unfinished\":[", stdout);
    int first = 1;
    for (size_t b = 0; b < info->n_branches; b++)
        for (size_t o = 0; o < info->branches[b].n_ops; o++) {
            const trellis_op_info_t *op = &info->branches[b].ops[o];
            if (!is_unfinished(op))
                continue;
            fputs(first ? "{" : ",{", stdout);
            first = 0;
            ctl_json_kv_str("branch", info->branches[b].branch_id, 1);
            ctl_json_kv_str("op", trellis_op_name(op->op), 0);
            ctl_json_kv_str("target", op->target, 0);
            ctl_json_kv_int("attempts", op->attempts);
            ctl_json_kv_str("last_error", op->last_error, 0);
            putchar('}');
        }
    putchar(']');
}
