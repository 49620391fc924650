/*
 * testpart_script: trellis-testpart's ops and its scripts (see
 * testpart_script.h; the grammar is in testpart.c's top comment).
 */
#include "testpart_script.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- ops ------------------------------------------------------------- */

const testpart_op_t OPS[N_OPS] = {
    {"Action", "action", KIND_FORWARD},
    {"Compensate", "compensate", KIND_UNDO},
    {"Try", "try", KIND_FORWARD},
    {"Confirm", "confirm", KIND_CONFIRM},
    {"Cancel", "cancel", KIND_UNDO},
    {"Prepare", "prepare", KIND_FORWARD},
    {"Commit", "commit", KIND_CONFIRM},
    {"Rollback", "rollback", KIND_UNDO},
    {"Notify", "notify", KIND_FORWARD},
    {"QueryPrepared", "query_prepared", KIND_FORWARD},
};

static int op_by_name(const char *s, size_t len)
{
    for (int i = 0; i < N_OPS; i++)
        if (strlen(OPS[i].name) == len && !strncmp(OPS[i].name, s, len))
            return i;
    return -1;
}

/* ---- scripts --------------------------------------------------------- */

const char *const ANSWER_NAMES[4] = {"ok", "fail", "ongoing", "unavail"};

static int parse_int(const char *s, size_t len, int *out)
{
    char buf[16];
    char *end;
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    long v = strtol(buf, &end, 10);
    if (*end || v < 0 || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

static int add_counted(plan_t *p, answer_t a, int count, int sleep_ms)
{
    if (p->n_counted == MAX_STEPS)
        return -1;
    p->counted[p->n_counted++] = (counted_t){a, count, sleep_ms};
    return 0;
}

/* "hang:MS" or "hang:MS:N" (args points after "hang:"). */
static int parse_hang(plan_t *p, const char *args, size_t len)
{
    const char *colon = memchr(args, ':', len);
    int ms, n = 1;
    if (!colon)
        return parse_int(args, len, &ms) ? -1 : add_counted(p, ANS_OK, 1, ms);
    if (parse_int(args, (size_t)(colon - args), &ms) ||
        parse_int(colon + 1, len - (size_t)(colon - args) - 1, &n))
        return -1;
    return add_counted(p, ANS_OK, n, ms);
}

static int word_is(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && !strncmp(s, word, len);
}

static int parse_step(plan_t *p, const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    size_t head = colon ? (size_t)(colon - s) : len;
    const char *args = colon ? colon + 1 : NULL;
    size_t alen = colon ? len - head - 1 : 0;
    int n;
    if (!colon) {
        if (word_is(s, head, "fail"))
            p->terminal_fail = 1;
        else if (word_is(s, head, "hold"))
            p->hold = 1;
        else if (!word_is(s, head, "ok"))
            return -1;
        return 0;
    }
    if (word_is(s, head, "slow"))
        return parse_int(args, alen, &p->slow_ms);
    if (word_is(s, head, "reply")) {
        p->reply = args;
        p->reply_len = alen;
        p->reply_digits = 0;
        return 0;
    }
    if (word_is(s, head, "say")) {
        p->say = args;
        p->say_len = alen;
        return 0;
    }
    if (word_is(s, head, "replyn")) {
        p->reply_digits = 1;
        return parse_int(args, alen, &n) ? -1 : (p->reply_len = (size_t)n, 0);
    }
    if (word_is(s, head, "hang"))
        return parse_hang(p, args, alen);
    if (parse_int(args, alen, &n) != 0)
        return -1;
    if (word_is(s, head, "fail"))
        return add_counted(p, ANS_FAIL, n, 0);
    if (word_is(s, head, "ongoing"))
        return add_counted(p, ANS_ONGOING, n, 0);
    if (word_is(s, head, "unavail"))
        return add_counted(p, ANS_UNAVAIL, n, 0);
    return -1;
}

static int parse_steps(plan_t *p, const char *s, size_t len)
{
    while (len > 0) {
        const char *comma = memchr(s, ',', len);
        size_t n = comma ? (size_t)(comma - s) : len;
        if (parse_step(p, s, n) != 0)
            return -1;
        if (!comma)
            break;
        s += n + 1;
        len -= n + 1;
    }
    return 0;
}

/* One clause: add its steps to *p if it applies to op; check it anyway. */
static int parse_clause(const char *s, size_t n, int op, plan_t *p)
{
    if (n > 0 && s[0] == '#')
        return 0;
    const char *eq = memchr(s, '=', n);
    if (!eq)
        return OPS[op].kind == KIND_FORWARD ? parse_steps(p, s, n)
                                            : parse_steps(&(plan_t){0}, s, n);
    int named = op_by_name(s, (size_t)(eq - s));
    size_t skip = (size_t)(eq - s) + 1;
    if (named < 0)
        return -1;
    return parse_steps(named == op ? p : &(plan_t){0}, eq + 1, n - skip);
}

/* Fill *p with the steps of the clauses that apply to op. */
int testpart_parse_script(const char *s, size_t len, int op, plan_t *p)
{
    memset(p, 0, sizeof *p);
    while (len > 0) {
        const char *semi = memchr(s, ';', len);
        size_t n = semi ? (size_t)(semi - s) : len;
        if (parse_clause(s, n, op, p) != 0)
            return -1;
        if (!semi)
            break;
        s += n + 1;
        len -= n + 1;
    }
    return 0;
}

answer_t testpart_plan_answer(const plan_t *p, int call_n, int *sleep_ms)
{
    int seen = 0;
    *sleep_ms = p->slow_ms;
    for (int i = 0; i < p->n_counted; i++) {
        seen += p->counted[i].count;
        if (call_n <= seen) {
            *sleep_ms += p->counted[i].sleep_ms;
            return p->counted[i].answer;
        }
    }
    return p->terminal_fail ? ANS_FAIL : ANS_OK;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void testpart_say_text(const plan_t *p, char *out, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < p->say_len && n + 1 < len; i++) {
        int hi = -1, lo = -1;
        if (p->say[i] == '%' && i + 2 < p->say_len &&
            (hi = hex_digit(p->say[i + 1])) >= 0 &&
            (lo = hex_digit(p->say[i + 2])) >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = p->say[i];
        }
    }
    out[n] = '\0';
}
