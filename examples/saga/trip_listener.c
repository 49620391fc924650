/*
 * trip-listener: the completion listener of the Saga example. The driver
 * names it as a listener of every trip saga (trellis_options_t.listeners);
 * once a trip's outcome is durable trellisd tells it how the trip ended,
 * and it records that.
 *
 *   trip-listener [--listen ADDR] [--port-file FILE] [--threads N]
 *
 * Methods:
 *
 *   /trip.v1.Listener/Notify  a trellis.v1.CompletionEvent (trellisd's call:
 *                             dtm-trans_type "event", dtm-op "notify",
 *                             dtm-branch_id "ev1", ...): record it
 *   /trip.v1.Listener/State   the payload is a gid ("" for all): the events
 *                             recorded, as text (for the example driver)
 *
 * It owns one thing: the table of recorded events, in memory, keyed by
 * (gid, event branch). trellisd retries a notify until it is answered OK,
 * after a restart of trellisd too, with the same bytes every time, so the
 * same event may arrive more than once: the first delivery of a (gid,
 * branch) records it ("recorded"), a later one only counts a delivery
 * ("duplicate") and answers OK again. That is exactly once in effect, for as
 * long as this process lives. A real listener would record the event behind
 * the branch barrier (trellis/barrier.h), in the same local transaction as
 * what it does with it, so that the effect survives its own restart too;
 * the example keeps it in memory because the driver reads it back through
 * State, and stopping the listener (scenario listener-down) happens before
 * the event arrives.
 *
 * Every Notify prints one line to stdout, stamped with the time of day to
 * the microsecond (the driver merges it with the trip services' lines):
 *   HH:MM:SS.uuuuuu listener: Notify gid=G branch=B status=S -> recorded
 *
 * State: one line per recorded event, in the order first recorded:
 *   event gid=G branch=B status=succeeded|failed deliveries=N reason=R
 * deliveries: the Notify calls of that (gid, branch) seen, duplicates
 * included; reason (the rest of the line) is "" when the trip succeeded.
 *
 * Threads: handlers run on the SDK's worker threads; one mutex guards the
 * table, and a call's line is printed under it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trellis/trellis_participant.h"
#include "trellis_portfile.h"

#define GID_MAX 72
#define BRANCH_MAX 40
#define REASON_MAX 1025

/* One recorded event: what the first delivery of (gid, branch) said. */
typedef struct {
    char gid[GID_MAX];
    char branch[BRANCH_MAX];
    trellis_trans_status_t status;
    char reason[REASON_MAX];
    int deliveries; /* Notify calls of it seen, the first included */
} recorded_t;

/* A plain array searched linearly: an example records a handful of trips.
 * It only grows. */
static struct {
    pthread_mutex_t mu;
    recorded_t *rows;
    size_t n, cap;
} T = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- the table ------------------------------------------------------- */

/* The row of (gid, branch), or NULL. Caller holds T.mu. */
static recorded_t *row_find(const char *gid, const char *branch)
{
    for (size_t i = 0; i < T.n; i++)
        if (!strcmp(T.rows[i].gid, gid) && !strcmp(T.rows[i].branch, branch))
            return &T.rows[i];
    return NULL;
}

/* Append a row for ev at (gid, branch), its newlines made spaces (State is
 * one line per row). NULL if out of memory. Caller holds T.mu. */
static recorded_t *row_add(const char *branch,
                           const trellis_completion_event_t *ev)
{
    if (T.n == T.cap) {
        size_t cap = T.cap ? T.cap * 2 : 16;
        recorded_t *p = realloc(T.rows, cap * sizeof *p);
        if (!p)
            return NULL;
        T.rows = p;
        T.cap = cap;
    }
    recorded_t *r = &T.rows[T.n++];
    memset(r, 0, sizeof *r);
    snprintf(r->gid, sizeof r->gid, "%s", ev->gid);
    snprintf(r->branch, sizeof r->branch, "%s", branch);
    r->status = ev->status;
    snprintf(r->reason, sizeof r->reason, "%s", ev->reason);
    for (char *c = r->reason; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    return r;
}

/* ---- Notify ---------------------------------------------------------- */

/* Print "HH:MM:SS.uuuuuu listener: ", as trip-service stamps its lines. */
static void stamp(void)
{
    struct timespec ts;
    struct tm tm;
    char hms[16];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    printf("%s.%06ld listener: ", hms, ts.tv_nsec / 1000);
}

static void refuse(trellis_reply_t *reply, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A notify this listener cannot take: FAILURE with why (trellisd keeps
 * retrying it, as it does every answer but OK). */
static void refuse(trellis_reply_t *reply, const char *fmt, ...)
{
    va_list ap;
    reply->code = TRELLIS_REPLY_FAILURE;
    va_start(ap, fmt);
    vsnprintf(reply->message, sizeof reply->message, fmt, ap);
    va_end(ap);
    stamp();
    printf("Notify refused: %s\n", reply->message);
}

/* Record ev for branch once; a later delivery only counts. Caller holds
 * T.mu. Returns what it did, or NULL when out of memory. */
static const char *record(const char *branch,
                          const trellis_completion_event_t *ev)
{
    recorded_t *r = row_find(ev->gid, branch);
    if (r) {
        r->deliveries++;
        return "duplicate: already recorded, nothing to do";
    }
    if (!(r = row_add(branch, ev)))
        return NULL;
    r->deliveries = 1;
    return "recorded";
}

/* Decode the notify into *ev and check it against the call's metadata;
 * 0, or -1 with reply refused. */
static int read_event(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t payload_len, trellis_completion_event_t *ev,
                      trellis_reply_t *reply)
{
    char err[256];
    if (!*ctx->branch_id || strlen(ctx->branch_id) >= BRANCH_MAX) {
        refuse(reply, "missing or too long dtm-branch_id metadata");
        return -1;
    }
    if (trellis_completion_event_parse(payload, payload_len, ev, err,
                                       sizeof err) != TRELLIS_OK) {
        refuse(reply, "not a CompletionEvent: %s", err);
        return -1;
    }
    if (strlen(ev->gid) >= GID_MAX || strcmp(ev->gid, ctx->gid) != 0) {
        refuse(reply, "event gid %s is not dtm-gid %s", ev->gid, ctx->gid);
        return -1;
    }
    return 0;
}

static void handle_notify(const trellis_branch_ctx_t *ctx,
                          const uint8_t *payload, size_t payload_len,
                          trellis_reply_t *reply, void *user)
{
    (void)user;
    trellis_completion_event_t ev;
    if (read_event(ctx, payload, payload_len, &ev, reply) != 0)
        return;
    pthread_mutex_lock(&T.mu);
    const char *what = record(ctx->branch_id, &ev);
    if (what) {
        stamp();
        printf("Notify gid=%s branch=%s status=%s%s%s -> %s\n", ev.gid,
               ctx->branch_id, trellis_trans_status_name(ev.status),
               *ev.reason ? " reason=" : "", ev.reason, what);
    } else {
        reply->code = TRELLIS_REPLY_ERROR; /* retried */
        snprintf(reply->message, sizeof reply->message, "out of memory");
    }
    pthread_mutex_unlock(&T.mu);
}

/* ---- State ----------------------------------------------------------- */

/* Append one row's line to *buf (of *len bytes); -1 if out of memory. */
static int state_line(const recorded_t *r, char **buf, size_t *len)
{
    char line[GID_MAX + BRANCH_MAX + REASON_MAX + 96];
    int n = snprintf(line, sizeof line,
                     "event gid=%s branch=%s status=%s deliveries=%d "
                     "reason=%s\n",
                     r->gid, r->branch, trellis_trans_status_name(r->status),
                     r->deliveries, r->reason);
    if (n < 0 || (size_t)n >= sizeof line)
        return -1;
    char *p = realloc(*buf, *len + (size_t)n);
    if (!p)
        return -1;
    memcpy(p + *len, line, (size_t)n);
    *buf = p;
    *len += (size_t)n;
    return 0;
}

static void handle_state(const trellis_branch_ctx_t *ctx,
                         const uint8_t *payload, size_t payload_len,
                         trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)user;
    char gid[GID_MAX], *buf = NULL;
    size_t len = 0;
    snprintf(gid, sizeof gid, "%.*s", (int)payload_len, (const char *)payload);
    pthread_mutex_lock(&T.mu);
    for (size_t i = 0; i < T.n; i++)
        if ((!*gid || !strcmp(T.rows[i].gid, gid)) &&
            state_line(&T.rows[i], &buf, &len) != 0)
            break;
    pthread_mutex_unlock(&T.mu);
    reply->body = (uint8_t *)buf;
    reply->body_len = len;
}

/* ---- main ------------------------------------------------------------ */

typedef struct {
    const char *listen, *port_file;
    int threads;
} args_t;

static int usage(void)
{
    fprintf(stderr, "usage: trip-listener [--listen ADDR] [--port-file FILE] "
                    "[--threads N]\n");
    return 2;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.listen = "127.0.0.1:0", .threads = 2};
    if (argc % 2 == 0)
        return -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *v = argv[i + 1];
        if (!strcmp(argv[i], "--listen"))
            a->listen = v;
        else if (!strcmp(argv[i], "--port-file"))
            a->port_file = v;
        else if (!strcmp(argv[i], "--threads"))
            a->threads = atoi(v);
        else
            return -1;
    }
    return a->threads > 0 ? 0 : -1;
}

static int serve(trellis_participant_t *p, const args_t *a)
{
    char err[256];
    int port = 0;
    if (trellis_participant_handle(p, "/trip.v1.Listener/Notify", handle_notify,
                                   NULL, err, sizeof err) != TRELLIS_OK ||
        trellis_participant_handle(p, "/trip.v1.Listener/State", handle_state,
                                   NULL, err, sizeof err) != TRELLIS_OK ||
        trellis_participant_start(p, a->listen, &port, err, sizeof err) !=
            TRELLIS_OK)
        goto fail;
    if (a->port_file &&
        trellis_portfile_write(a->port_file, port, err, sizeof err) != 0)
        goto fail;
    const char *colon = strrchr(a->listen, ':');
    int host_len = colon ? (int)(colon - a->listen) : 0;
    printf("trip-listener ready service=trip.v1.Listener listen=%.*s:%d\n",
           host_len, a->listen, port);
    return 0;
fail:
    fprintf(stderr, "trip-listener: %s\n", err);
    return -1;
}

int main(int argc, char **argv)
{
    args_t a;
    if (parse_args(argc, argv, &a) != 0)
        return usage();
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per call, even to a log */
    /* Block the stop signals before gRPC starts threads; wait for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    trellis_participant_t *p = NULL;
    char err[256];
    if (trellis_participant_new(a.threads, &p, err, sizeof err) != TRELLIS_OK) {
        fprintf(stderr, "trip-listener: %s\n", err);
        return 1;
    }
    int rc = serve(p, &a);
    if (rc == 0) {
        int sig;
        sigwait(&stop, &sig);
        printf("trip-listener stopping (signal %d)\n", sig);
    }
    trellis_participant_free(p);
    free(T.rows);
    return rc == 0 ? 0 : 1;
}
