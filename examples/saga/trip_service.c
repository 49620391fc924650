/*
 * trip-service: the participant of the Saga example. One binary plays the
 * airline, the hotel, the payment provider, the car rental company or the
 * mailer, chosen by --name; the example runs it five times, as five
 * processes:
 *
 *   trip-service --name flight|hotel|payment|car|email [--listen ADDR]
 *                [--port-file FILE] [--threads N]
 *
 * It owns one thing: the bookings it holds, in memory, and the barrier that
 * makes each of its ops take effect at most once. A payment or an email is
 * "booked" like a seat: Book charges the card or sends the mail, Cancel
 * refunds (an email is never taken back: the example gives it no Cancel).
 * Methods (<Name> is Flight, Hotel, Payment, Car or Email):
 *
 *   /trip.v1.<Name>/Book     the saga action: book
 *   /trip.v1.<Name>/Cancel   the saga compensation: cancel that booking
 *   /trip.v1.<Name>/State    what it holds, as text (for the example driver)
 *   /trip.v1.<Name>/Release  the payload is a gid: let its held Book go on
 *                            (see "hold" below; for the example driver)
 *
 * Book and Cancel read the branch from the metadata trellisd sends (dtm-gid,
 * dtm-branch_id, dtm-op) and get the saga step's payload, a line of
 * space-separated fields:
 *
 *   payload = field *( " " field )
 *   field   = key "=" value      e.g. trip=T42 who=alice seats=2
 *           | "fail"             Book refuses: a business failure (ABORTED)
 *           | "refuse=" N        Book refuses its first N calls, then books
 *           | "hold"             Book waits for Release before it books
 *
 * "trip" and "who" are required by Book; other keys (seats, rooms, nights,
 * cars, days, ...) are kept as they are. Values hold no spaces. With the
 * "fail" marker Book answers FAILURE with "no seats left" (flight), "no rooms
 * left" (hotel), "card declined" (payment), "no cars left" (car) or "mailbox
 * unavailable" (email), and books nothing; "refuse=N" answers the same N
 * times (a refusal leaves no barrier row, so the next call may book).
 *
 * "hold": the first Book of that (gid, branch) records the event "held" and
 * waits, off the ledger's lock, until Release names its gid; then it goes on
 * as any Book. While one waits, another Book of the same branch (a retry by
 * trellisd) answers ERROR "busy: a Book of this step is held" at once
 * (event "busy"; trellisd retries it) rather than take a second worker
 * thread. The driver uses it to kill trellisd while a call is in flight.
 *
 * The booking number (the compensation log, trellisd --max-action-log):
 * Book answers a success with its booking number as the reply's bytes
 * ("FL-1", "HT-1", "CR-1": the company's prefix and a counter; a duplicate
 * Book answers the same number). trellisd keeps those bytes with the step
 * and hands them to the step's Cancel as metadata; Cancel reads them with
 * trellis_branch_ctx_action_result and names the booking it cancels by
 * them, as a real service would look it up, instead of from the gid and
 * branch id.
 *
 * The barrier (DESIGN.md, "The branch barrier"), kept in memory: one row per
 * (gid, branch_id, op) that took effect.
 *   Book    inserts its row; already there: "duplicate" (or "hanging" when a
 *           Cancel put it there), success and no effect. Else it books
 *           ("booked"), or refuses ("refused") and, like a rolled-back local
 *           transaction, leaves no row behind.
 *   Cancel  inserts its row; already there: "duplicate". Else it inserts
 *           Book's row too: if that succeeds Book never took effect, so there
 *           is nothing to undo ("empty") and a late Book will find its row
 *           and do nothing; if Book's row was there, it undoes the booking
 *           ("cancelled").
 * Every call prints one line to stdout saying what it did, stamped with the
 * time of day to the microsecond.
 *
 * State: the request payload is a gid ("" for all); the reply is one line per
 * Book/Cancel call in arrival order, then one line per booking held:
 *   event gid=G branch=B call=Book|Cancel effect=E [number=N]
 *   booking gid=G branch=B <the Book payload>
 * number: the booking number Book gave, or the one Cancel was handed by
 * trellisd (absent when it was handed none).
 *
 * Threads: handlers run on the SDK's worker threads; one mutex guards the
 * ledger, and a call's line is printed under it, so the output reads in the
 * order the ledger changed.
 */
#include <assert.h>
#include <limits.h>
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
#define DETAIL_MAX 256
#define NUMBER_MAX 32

/* ---- the three companies --------------------------------------------- */

typedef struct {
    const char *name;    /* --name */
    const char *service; /* in /trip.v1.<service>/... */
    const char *refusal; /* Book's answer to the "fail" marker */
    const char *prefix;  /* of its booking numbers */
} company_t;

static const company_t COMPANIES[] = {
    {"flight", "Flight", "no seats left", "FL"},
    {"hotel", "Hotel", "no rooms left", "HT"},
    {"payment", "Payment", "card declined", "PM"},
    {"car", "Car", "no cars left", "CR"},
    {"email", "Email", "mailbox unavailable", "EM"},
};

static const company_t *company_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof COMPANIES / sizeof COMPANIES[0]; i++)
        if (strcmp(COMPANIES[i].name, name) == 0)
            return &COMPANIES[i];
    return NULL;
}

/* ---- the ledger: barrier rows, bookings, and the call history --------- */

/* One (gid, branch): its two barrier rows and the booking, if held.
 * Invariants (entry_assert): a booking is held only while Book's row is
 * there and Cancel's is not; a blocked entry has both rows and no booking. */
typedef struct {
    char gid[GID_MAX];
    char branch[BRANCH_MAX];
    int book_row;   /* barrier row (gid, branch, action) */
    int cancel_row; /* barrier row (gid, branch, compensate) */
    int booked;     /* holds a booking: Book took effect, no Cancel yet */
    int blocked;    /* Cancel came first: a late Book must do nothing */
    int refusals;   /* Books refused so far (for "refuse=N") */
    int holding;    /* a Book is waiting for Release ("hold") */
    int hold_done;  /* that Book was held once: never again */
    int released;   /* Release named this gid while a Book was held */
    char detail[DETAIL_MAX];
    char number[NUMBER_MAX]; /* the booking number Book gave, or "" */
} entry_t;

typedef struct {
    char gid[GID_MAX];
    char branch[BRANCH_MAX];
    const char *call;        /* "Book", "Cancel" */
    const char *effect;      /* booked, refused, duplicate, hanging, cancelled,
                                empty, held, busy */
    char number[NUMBER_MAX]; /* Book: the number given; Cancel: the one
                                trellisd handed it; "" when none */
} event_t;

/* Plain arrays searched linearly: an example holds a handful of bookings.
 * A real service keeps the barrier as a table with a unique key, in the same
 * local transaction as its bookings. The ledger only grows. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t released; /* signalled by Release */
    const company_t *company;
    entry_t *entries;
    size_t n_entries, cap_entries;
    event_t *events;
    size_t n_events, cap_events;
    unsigned next_number; /* the last booking number given */
} L = {.mu = PTHREAD_MUTEX_INITIALIZER, .released = PTHREAD_COND_INITIALIZER};

/* Grow *arr (of elem-sized items) so it holds one more. 0 or -1. */
static int reserve(void **arr, size_t *cap, size_t n, size_t elem)
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

/* The entry of (gid, branch), created empty if new; NULL if out of memory.
 * Caller holds L.mu. */
static entry_t *entry_get(const char *gid, const char *branch)
{
    for (size_t i = 0; i < L.n_entries; i++)
        if (!strcmp(L.entries[i].gid, gid) &&
            !strcmp(L.entries[i].branch, branch))
            return &L.entries[i];
    if (reserve((void **)&L.entries, &L.cap_entries, L.n_entries,
                sizeof *L.entries) != 0)
        return NULL;
    entry_t *e = &L.entries[L.n_entries++];
    memset(e, 0, sizeof *e);
    snprintf(e->gid, sizeof e->gid, "%s", gid);
    snprintf(e->branch, sizeof e->branch, "%s", branch);
    return e;
}

static void entry_assert(const entry_t *e)
{
    assert(!e->booked || (e->book_row && !e->cancel_row));
    assert(!e->blocked || (e->book_row && e->cancel_row && !e->booked));
    (void)e;
}

/* Record a call in the history, with the booking number it gave or was
 * handed ("" none). Caller holds L.mu. */
static void event_add(const entry_t *e, const char *call, const char *effect,
                      const char *number)
{
    if (reserve((void **)&L.events, &L.cap_events, L.n_events,
                sizeof *L.events) != 0)
        return; /* the history is for show; the barrier is what counts */
    event_t *ev = &L.events[L.n_events++];
    snprintf(ev->gid, sizeof ev->gid, "%s", e->gid);
    snprintf(ev->branch, sizeof ev->branch, "%s", e->branch);
    ev->call = call;
    ev->effect = effect;
    snprintf(ev->number, sizeof ev->number, "%s", number);
}

/* ---- payloads -------------------------------------------------------- */

/* 1 if the space-separated payload has the bare field `word`. */
static int has_field(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; (p = strstr(p, word)) != NULL; p += n)
        if ((p == text || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* The value of the payload's field "key=..." (up to the next space), or
 * NULL if it has none or an empty one. */
static const char *key_value(const char *text, const char *key)
{
    char want[32];
    snprintf(want, sizeof want, "%s=", key);
    size_t n = strlen(want);
    for (const char *p = text; (p = strstr(p, want)) != NULL; p += n)
        if ((p == text || p[-1] == ' ') && p[n] != ' ' && p[n] != '\0')
            return p + n;
    return NULL;
}

static int has_key(const char *text, const char *key)
{
    return key_value(text, key) != NULL;
}

/* Book must refuse this call: "fail", or "refuse=N" with fewer than N
 * refused so far. */
static int must_refuse(const char *text, const entry_t *e)
{
    const char *n = key_value(text, "refuse");
    return has_field(text, "fail") || (n && e->refusals < atoi(n));
}

/* The payload as a C string without the markers "fail", "refuse=N" and
 * "hold" (what a booking holds), in out[len]. */
static void booking_detail(const char *text, char *out, size_t len)
{
    char copy[DETAIL_MAX];
    size_t used = 0;
    char *save = NULL;
    snprintf(copy, sizeof copy, "%s", text);
    out[0] = '\0';
    for (char *f = strtok_r(copy, " ", &save); f;
         f = strtok_r(NULL, " ", &save)) {
        if (!strcmp(f, "fail") || !strcmp(f, "hold") ||
            !strncmp(f, "refuse=", 7) || used >= len)
            continue;
        used += (size_t)snprintf(out + used, len - used, "%s%s",
                                 used ? " " : "", f);
    }
}

/* ---- handlers -------------------------------------------------------- */

typedef enum { CALL_BOOK, CALL_CANCEL } call_kind_t;

/* Check the branch metadata; fills reply and returns -1 when missing. */
static int check_ctx(const trellis_branch_ctx_t *ctx, trellis_reply_t *reply)
{
    if (*ctx->gid && *ctx->branch_id && strlen(ctx->gid) < GID_MAX &&
        strlen(ctx->branch_id) < BRANCH_MAX)
        return 0;
    reply->code = TRELLIS_REPLY_FAILURE;
    snprintf(reply->message, sizeof reply->message,
             "missing or too long dtm-gid / dtm-branch_id metadata");
    return -1;
}

/* Print "HH:MM:SS.uuuuuu <company>: ": the time has microseconds so that
 * lines from the three services sort into the order the calls happened. */
static void stamp(void)
{
    struct timespec ts;
    struct tm tm;
    char hms[16];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(hms, sizeof hms, "%H:%M:%S", &tm);
    printf("%s.%06ld %s: ", hms, ts.tv_nsec / 1000, L.company->name);
}

/* Print "<stamp><Call> gid=G branch=B op=O [payload] -> what". Caller holds
 * L.mu. */
static void say(const trellis_branch_ctx_t *ctx, call_kind_t kind,
                const char *payload, const char *fmt, ...)
{
    va_list ap;
    stamp();
    printf("%s gid=%s branch=%s op=%s [%s] -> ",
           kind == CALL_BOOK ? "Book" : "Cancel", ctx->gid, ctx->branch_id,
           *ctx->op ? ctx->op : "-", payload);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* A successful Book's reply: the booking number, as the reply's bytes
 * (trellisd hands them to Cancel). Out of memory answers none. */
static void reply_number(trellis_reply_t *reply, const char *number)
{
    size_t n = strlen(number);
    if (!n || !(reply->body = malloc(n)))
        return;
    memcpy(reply->body, number, n);
    reply->body_len = n;
}

/* "hold": wait for Release, under L.mu (released while waiting). The entry
 * array may grow meanwhile, so the entry comes back looked up again; NULL
 * when the call must not book now (it answered "busy"). */
static entry_t *hold(const trellis_branch_ctx_t *ctx, const char *payload,
                     entry_t *e, trellis_reply_t *reply)
{
    if (e->holding) {
        reply->code = TRELLIS_REPLY_ERROR; /* retried by the TM */
        snprintf(reply->message, sizeof reply->message,
                 "busy: a Book of this step is held");
        event_add(e, "Book", "busy", "");
        say(ctx, CALL_BOOK, payload, "busy: another Book of it is held");
        return NULL;
    }
    e->holding = 1;
    event_add(e, "Book", "held", "");
    say(ctx, CALL_BOOK, payload, "held until Release");
    while (!e->released) {
        pthread_cond_wait(&L.released, &L.mu);
        e = entry_get(ctx->gid, ctx->branch_id); /* exists: never removed */
    }
    e->holding = 0;
    e->hold_done = 1;
    stamp();
    printf("Book gid=%s branch=%s released\n", ctx->gid, ctx->branch_id);
    return e;
}

/* Book, under L.mu. Returns the entry (it may move while held). */
static entry_t *book(const trellis_branch_ctx_t *ctx, const char *payload,
                     entry_t *e, trellis_reply_t *reply)
{
    if (!e->book_row && has_field(payload, "hold") && !e->hold_done &&
        !(e = hold(ctx, payload, e, reply)))
        return NULL;
    if (e->book_row) {
        event_add(e, "Book", e->blocked ? "hanging" : "duplicate", e->number);
        reply_number(reply, e->number); /* the same answer again */
        say(ctx, CALL_BOOK, payload, "%s",
            e->blocked  ? "ignored: cancelled before it arrived (hanging)"
            : e->booked ? "duplicate: already booked, nothing to do"
                        : "duplicate: booked and cancelled already, nothing "
                          "to do");
        return e;
    }
    int refuse = must_refuse(payload, e);
    if (refuse || !has_key(payload, "trip") || !has_key(payload, "who")) {
        reply->code = TRELLIS_REPLY_FAILURE;
        snprintf(reply->message, sizeof reply->message, "%s",
                 refuse ? L.company->refusal
                        : "bad booking: trip= and who= are required");
        e->refusals++;
        event_add(e, "Book", "refused", "");
        say(ctx, CALL_BOOK, payload, "refused: %s", reply->message);
        return e;
    }
    e->book_row = 1;
    e->booked = 1;
    booking_detail(payload, e->detail, sizeof e->detail);
    snprintf(e->number, sizeof e->number, "%s-%u", L.company->prefix,
             ++L.next_number);
    event_add(e, "Book", "booked", e->number);
    reply_number(reply, e->number);
    say(ctx, CALL_BOOK, payload, "booked %s", e->number);
    return e;
}

/* The booking number trellisd handed this Cancel (the reply of the
 * step's Book), into out[len]; "" when it handed none (Book never
 * succeeded, or trellisd keeps no log: --max-action-log 0). */
static void handed_number(const trellis_branch_ctx_t *ctx, char *out,
                          size_t len)
{
    size_t n;
    const uint8_t *log = trellis_branch_ctx_action_result(ctx, &n);
    snprintf(out, len, "%.*s", log ? (int)n : 0, log ? (const char *)log : "");
}

/* Cancel, under L.mu. */
static void cancel(const trellis_branch_ctx_t *ctx, const char *payload,
                   entry_t *e)
{
    char number[NUMBER_MAX];
    handed_number(ctx, number, sizeof number);
    if (e->cancel_row) {
        event_add(e, "Cancel", "duplicate", number);
        say(ctx, CALL_CANCEL, payload,
            "duplicate: already cancelled, nothing to do");
        return;
    }
    e->cancel_row = 1;
    if (!e->book_row) {
        e->book_row = 1; /* blocks a Book that arrives late */
        e->blocked = 1;
        event_add(e, "Cancel", "empty", number);
        say(ctx, CALL_CANCEL, payload,
            "nothing to cancel: Book never took effect");
        return;
    }
    e->booked = 0;
    event_add(e, "Cancel", "cancelled", number);
    say(ctx, CALL_CANCEL, payload, "cancelled booking %s [%s]",
        *number ? number : "(trellisd handed no booking number)", e->detail);
}

static void handle_op(const trellis_branch_ctx_t *ctx, const uint8_t *payload,
                      size_t payload_len, trellis_reply_t *reply, void *user)
{
    call_kind_t kind = (call_kind_t)(intptr_t)user;
    char text[DETAIL_MAX];
    snprintf(text, sizeof text, "%.*s", (int)payload_len,
             (const char *)payload);
    if (check_ctx(ctx, reply) != 0) {
        stamp();
        printf("%s rejected: %s\n", kind == CALL_BOOK ? "Book" : "Cancel",
               reply->message);
        return;
    }
    pthread_mutex_lock(&L.mu);
    entry_t *e = entry_get(ctx->gid, ctx->branch_id);
    if (!e) {
        reply->code = TRELLIS_REPLY_ERROR; /* retried by the TM */
        snprintf(reply->message, sizeof reply->message, "out of memory");
    } else if (kind == CALL_BOOK) {
        e = book(ctx, text, e, reply);
    } else {
        cancel(ctx, text, e);
    }
    if (e)
        entry_assert(e);
    pthread_mutex_unlock(&L.mu);
}

/* ---- State ----------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} text_t;

static void text_printf(text_t *t, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t add = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (t->len + add > t->cap) {
        size_t cap = (t->len + add) * 2;
        char *p = realloc(t->buf, cap);
        if (!p)
            return;
        t->buf = p;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, line, add);
    t->len += add;
}

/* Caller holds L.mu. */
static void state_text(const char *gid, text_t *t)
{
    for (size_t i = 0; i < L.n_events; i++) {
        const event_t *ev = &L.events[i];
        if (!*gid || !strcmp(ev->gid, gid))
            text_printf(t, "event gid=%s branch=%s call=%s effect=%s%s%s\n",
                        ev->gid, ev->branch, ev->call, ev->effect,
                        *ev->number ? " number=" : "", ev->number);
    }
    for (size_t i = 0; i < L.n_entries; i++) {
        const entry_t *e = &L.entries[i];
        if (e->booked && (!*gid || !strcmp(e->gid, gid)))
            text_printf(t, "booking gid=%s branch=%s %s\n", e->gid, e->branch,
                        e->detail);
    }
}

static void handle_state(const trellis_branch_ctx_t *ctx,
                         const uint8_t *payload, size_t payload_len,
                         trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)user;
    char gid[GID_MAX];
    text_t t = {0};
    snprintf(gid, sizeof gid, "%.*s", (int)payload_len, (const char *)payload);
    pthread_mutex_lock(&L.mu);
    state_text(gid, &t);
    pthread_mutex_unlock(&L.mu);
    reply->body = (uint8_t *)t.buf;
    reply->body_len = t.len;
}

/* ---- Release --------------------------------------------------------- */

/* Let the Book held for gid (the payload) go on; the reply says how many
 * were held ("released 1"). */
static void handle_release(const trellis_branch_ctx_t *ctx,
                           const uint8_t *payload, size_t payload_len,
                           trellis_reply_t *reply, void *user)
{
    (void)ctx;
    (void)user;
    char gid[GID_MAX], text[32];
    int n = 0;
    snprintf(gid, sizeof gid, "%.*s", (int)payload_len, (const char *)payload);
    pthread_mutex_lock(&L.mu);
    for (size_t i = 0; i < L.n_entries; i++)
        if (!strcmp(L.entries[i].gid, gid) && L.entries[i].holding) {
            L.entries[i].released = 1;
            n++;
        }
    pthread_cond_broadcast(&L.released);
    pthread_mutex_unlock(&L.mu);
    snprintf(text, sizeof text, "released %d", n);
    reply_number(reply, text);
}

/* ---- main ------------------------------------------------------------ */

typedef struct {
    const char *name, *listen, *port_file;
    int threads;
} args_t;

static int usage(void)
{
    fprintf(stderr, "usage: trip-service --name "
                    "flight|hotel|payment|car|email "
                    "[--listen ADDR] [--port-file FILE] [--threads N]\n");
    return 2;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.listen = "127.0.0.1:0", .threads = 4};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *v = argv[i + 1];
        if (!strcmp(argv[i], "--name"))
            a->name = v;
        else if (!strcmp(argv[i], "--listen"))
            a->listen = v;
        else if (!strcmp(argv[i], "--port-file"))
            a->port_file = v;
        else if (!strcmp(argv[i], "--threads"))
            a->threads = atoi(v);
        else
            return -1;
    }
    if (argc % 2 == 0 || !a->name || a->threads <= 0)
        return -1;
    return (L.company = company_by_name(a->name)) ? 0 : -1;
}

static int add_handlers(trellis_participant_t *p, char *err, size_t errlen)
{
    static const struct {
        const char *method;
        trellis_handler_fn fn;
        call_kind_t kind;
    } routes[] = {
        {"Book", handle_op, CALL_BOOK},
        {"Cancel", handle_op, CALL_CANCEL},
        {"State", handle_state, 0},
        {"Release", handle_release, 0},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char method[64];
        snprintf(method, sizeof method, "/trip.v1.%s/%s", L.company->service,
                 routes[i].method);
        if (trellis_participant_handle(p, method, routes[i].fn,
                                       (void *)(intptr_t)routes[i].kind, err,
                                       errlen) != TRELLIS_OK)
            return -1;
    }
    return 0;
}

static int serve(trellis_participant_t *p, const args_t *a)
{
    char err[256];
    int port = 0;
    if (add_handlers(p, err, sizeof err) != 0 ||
        trellis_participant_start(p, a->listen, &port, err, sizeof err) !=
            TRELLIS_OK)
        goto fail;
    if (a->port_file &&
        trellis_portfile_write(a->port_file, port, err, sizeof err) != 0)
        goto fail;
    const char *colon = strrchr(a->listen, ':');
    int host_len = colon ? (int)(colon - a->listen) : 0;
    printf("trip-service ready name=%s service=trip.v1.%s listen=%.*s:%d\n",
           L.company->name, L.company->service, host_len, a->listen, port);
    return 0;
fail:
    fprintf(stderr, "trip-service %s: %s\n", a->name, err);
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
        fprintf(stderr, "trip-service %s: %s\n", a.name, err);
        return 1;
    }
    int rc = serve(p, &a);
    if (rc == 0) {
        int sig;
        sigwait(&stop, &sig);
        printf("trip-service %s stopping (signal %d)\n", a.name, sig);
    }
    trellis_participant_free(p);
    free(L.entries);
    free(L.events);
    return rc == 0 ? 0 : 1;
}
