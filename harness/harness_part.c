/*
 * harness_part.c: the reader of trellis-testpart's State reply, so tests
 * can assert the order of the ops a participant saw and its final state.
 *
 * The reply is text, one record a line (format owned by testpart.c):
 *   call seq=S start_ms=T end_ms=T gid=G branch=B op=O dtm_op=O
 *        trans_type=T n=N len=L answer=A effect=E
 *        [log_len=N log=HEX [log_size=M]]
 *        [event_status=S event_finished_ms=T] [batch=N]
 *        [traceparent=V] [tracestate=HEX]
 *   net gid=G branch=B confirmed=0|1
 * Unknown keys and line kinds are ignored, so the participant may add
 * fields without breaking older readers.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trellis/trellis.h"

#define STATE_METHOD "/trellis.test.Part/State"
#define CONTROL_METHOD "/trellis.test.Part/Control"

static void copy_field(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src);
}

/* Hex text into the bytes it spells, as a C string in dst[len]. */
static void unhex(char *dst, size_t len, const char *hex)
{
    size_t n = 0;
    for (; hex[0] && hex[1] && n + 1 < len; hex += 2) {
        unsigned byte;
        if (sscanf(hex, "%2x", &byte) != 1)
            break;
        dst[n++] = (char)byte;
    }
    dst[n] = '\0';
}

static void parse_call_kv(harness_part_call_t *c, const char *k, const char *v)
{
    if (!strcmp(k, "seq"))
        c->seq = strtoll(v, NULL, 10);
    else if (!strcmp(k, "start_ms"))
        c->start_ms = strtoll(v, NULL, 10);
    else if (!strcmp(k, "end_ms"))
        c->end_ms = strtoll(v, NULL, 10);
    else if (!strcmp(k, "gid"))
        copy_field(c->gid, sizeof c->gid, v);
    else if (!strcmp(k, "branch"))
        copy_field(c->branch, sizeof c->branch, v);
    else if (!strcmp(k, "op"))
        copy_field(c->op, sizeof c->op, v);
    else if (!strcmp(k, "dtm_op"))
        copy_field(c->dtm_op, sizeof c->dtm_op, v);
    else if (!strcmp(k, "trans_type"))
        copy_field(c->trans_type, sizeof c->trans_type, v);
    else if (!strcmp(k, "n"))
        c->n = atoi(v);
    else if (!strcmp(k, "len"))
        c->len = (size_t)strtoull(v, NULL, 10);
    else if (!strcmp(k, "answer"))
        copy_field(c->answer, sizeof c->answer, v);
    else if (!strcmp(k, "effect"))
        copy_field(c->effect, sizeof c->effect, v);
    else if (!strcmp(k, "log_len"))
        c->log_len = strtoll(v, NULL, 10);
    else if (!strcmp(k, "log"))
        copy_field(c->log_hex, sizeof c->log_hex, v);
    else if (!strcmp(k, "log_size"))
        c->log_size = strtoll(v, NULL, 10);
    else if (!strcmp(k, "event_status"))
        copy_field(c->event_status, sizeof c->event_status, v);
    else if (!strcmp(k, "batch"))
        c->batch = atoi(v);
    else if (!strcmp(k, "traceparent"))
        copy_field(c->traceparent, sizeof c->traceparent, v);
    else if (!strcmp(k, "tracestate"))
        unhex(c->tracestate, sizeof c->tracestate, v);
}

static void parse_net_kv(harness_part_net_t *n, const char *k, const char *v)
{
    if (!strcmp(k, "gid"))
        copy_field(n->gid, sizeof n->gid, v);
    else if (!strcmp(k, "branch"))
        copy_field(n->branch, sizeof n->branch, v);
    else if (!strcmp(k, "confirmed"))
        n->confirmed = atoi(v);
}

/* Split line (modified) into its kind and key=value tokens. */
static void parse_line(char *line, harness_part_call_t *call,
                       harness_part_net_t *net, int *kind)
{
    char *save = NULL;
    char *tok = strtok_r(line, " ", &save);
    *kind = 0;
    if (!tok)
        return;
    if (!strcmp(tok, "call"))
        *kind = 1;
    else if (!strcmp(tok, "net"))
        *kind = 2;
    else
        return;
    while ((tok = strtok_r(NULL, " ", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        if (*kind == 1)
            parse_call_kv(call, tok, eq + 1);
        else
            parse_net_kv(net, tok, eq + 1);
    }
}

static int by_seq(const void *a, const void *b)
{
    const harness_part_call_t *x = a, *y = b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int grow(void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int parse_state(char *text, harness_part_state_t *out)
{
    size_t cap_calls = 0, cap_net = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        harness_part_call_t call;
        harness_part_net_t net;
        int kind;
        memset(&call, 0, sizeof call);
        call.log_len = call.log_size = -1;
        memset(&net, 0, sizeof net);
        parse_line(line, &call, &net, &kind);
        if (kind == 1) {
            if (grow((void **)&out->calls, out->n_calls, &cap_calls,
                     sizeof call) != 0)
                return -1;
            out->calls[out->n_calls++] = call;
        } else if (kind == 2) {
            if (grow((void **)&out->net, out->n_net, &cap_net, sizeof net) != 0)
                return -1;
            out->net[out->n_net++] = net;
        }
    }
    if (out->n_calls)
        qsort(out->calls, out->n_calls, sizeof *out->calls, by_seq);
    return 0;
}

int harness_part_state(const char *target, const char *gid,
                       harness_part_state_t *out)
{
    uint8_t *reply = NULL;
    size_t reply_len = 0;
    char err[256];
    memset(out, 0, sizeof *out);
    if (!gid)
        gid = "";
    trellis_rc_t rc =
        trellis_call_unary(target, STATE_METHOD, gid, strlen(gid), NULL, NULL,
                           0, 10000, &reply, &reply_len, err, sizeof err);
    if (rc != TRELLIS_OK) {
        fprintf(stderr, "harness: %s%s: rc %d: %s\n", target, STATE_METHOD, rc,
                err);
        return -1;
    }
    char *text = malloc(reply_len + 1);
    if (!text) {
        free(reply);
        return -1;
    }
    if (reply_len)
        memcpy(text, reply, reply_len);
    text[reply_len] = '\0';
    free(reply);
    int r = parse_state(text, out);
    free(text);
    if (r != 0)
        harness_part_state_free(out);
    return r;
}

int harness_part_cmd(const char *target, const char *cmd, char *reply,
                     size_t len)
{
    uint8_t *body = NULL;
    size_t body_len = 0;
    char err[256];
    trellis_rc_t rc =
        trellis_call_unary(target, CONTROL_METHOD, cmd, strlen(cmd), NULL, NULL,
                           0, 60000, &body, &body_len, err, sizeof err);
    if (rc != TRELLIS_OK) {
        fprintf(stderr, "harness: %s%s: rc %d: %s\n", target, CONTROL_METHOD,
                rc, err);
        return -1;
    }
    snprintf(reply, len, "%.*s", (int)body_len, (const char *)body);
    free(body);
    reply[strcspn(reply, "\n")] = '\0';
    if (strncmp(reply, "ok", 2) != 0) {
        fprintf(stderr, "harness: participant command '%s' answered '%s'\n",
                cmd, reply);
        return -1;
    }
    return 0;
}

void harness_part_state_free(harness_part_state_t *s)
{
    free(s->calls);
    free(s->net);
    memset(s, 0, sizeof *s);
}

static int matches(const char *want, const char *have)
{
    return !want || !strcmp(want, have);
}

const harness_part_call_t *harness_part_find(const harness_part_state_t *s,
                                             const char *branch, const char *op,
                                             int nth)
{
    for (size_t i = 0; i < s->n_calls; i++) {
        const harness_part_call_t *c = &s->calls[i];
        if (matches(branch, c->branch) && matches(op, c->op) && nth-- == 0)
            return c;
    }
    return NULL;
}

int harness_part_count(const harness_part_state_t *s, const char *branch,
                       const char *op, const char *effect)
{
    int n = 0;
    for (size_t i = 0; i < s->n_calls; i++) {
        const harness_part_call_t *c = &s->calls[i];
        n += matches(branch, c->branch) && matches(op, c->op) &&
             matches(effect, c->effect);
    }
    return n;
}

int harness_part_net_has(const harness_part_state_t *s, const char *branch)
{
    for (size_t i = 0; i < s->n_net; i++)
        if (!strcmp(s->net[i].branch, branch))
            return 1;
    return 0;
}

void harness_part_state_dump(const harness_part_state_t *s)
{
    fprintf(stderr, "---- participant journal (%zu calls) ----\n", s->n_calls);
    for (size_t i = 0; i < s->n_calls; i++) {
        const harness_part_call_t *c = &s->calls[i];
        fprintf(stderr,
                "#%lld %lld..%lld gid=%s branch=%s op=%s dtm_op=%s n=%d "
                "answer=%s effect=%s\n",
                (long long)c->seq, (long long)c->start_ms, (long long)c->end_ms,
                c->gid, c->branch, c->op, c->dtm_op, c->n, c->answer,
                c->effect);
    }
    for (size_t i = 0; i < s->n_net; i++)
        fprintf(stderr, "net gid=%s branch=%s confirmed=%d\n", s->net[i].gid,
                s->net[i].branch, s->net[i].confirmed);
    fprintf(stderr, "---- end of journal ----\n");
}
