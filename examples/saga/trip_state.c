/*
 * trip_state.c: what the Saga example's services and listener report
 * about a trip — each one's State method read and parsed (what was booked,
 * cancelled, held; the completion events recorded), and their own log
 * lines merged in time order. See trip_booking.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trip_booking.h"

/* The value of " key=" in line up to the next space, into out. */
static void field(const char *line, const char *key, char *out, size_t len)
{
    char want[32];
    snprintf(want, sizeof want, " %s=", key);
    const char *p = strstr(line, want);
    out[0] = '\0';
    if (p) {
        p += strlen(want);
        snprintf(out, len, "%.*s", (int)strcspn(p, " \n"), p);
    }
}

static void parse_state_line(const char *line, svc_state_t *st)
{
    char call[16], effect[16];
    if (strncmp(line, "event ", 6) == 0) {
        size_t used = strlen(st->history);
        field(line, "call", call, sizeof call);
        field(line, "effect", effect, sizeof effect);
        snprintf(st->history + used, sizeof st->history - used, "%s%s %s",
                 used ? ", " : "", call, effect);
        if (!strcmp(call, "Book") && !strcmp(effect, "booked")) {
            st->n_booked++;
            field(line, "number", st->booked, sizeof st->booked);
        } else if (!strcmp(call, "Cancel")) {
            st->n_cancels++;
            field(line, "number", st->cancelled, sizeof st->cancelled);
        }
    } else if (strncmp(line, "booking ", 8) == 0) {
        /* "booking gid=G branch=B <text>": the text after branch= */
        const char *p = strstr(line, " branch=");
        p = p ? strchr(p + 1, ' ') : NULL;
        st->n_bookings++;
        snprintf(st->booking, sizeof st->booking, "%s", p ? p + 1 : "");
    }
}

/* Ask leg's service what it holds for gid. */
svc_state_t trip_read_state(const env_t *env, int leg, const char *gid)
{
    svc_state_t st = {0};
    char method[64], err[256];
    uint8_t *reply = NULL;
    size_t len = 0;
    snprintf(method, sizeof method, "/trip.v1.%s/State", LEGS[leg].service);
    trellis_rc_t rc =
        trellis_call_unary(env->svc[leg], method, gid, strlen(gid), NULL, NULL,
                           0, 5000, &reply, &len, err, sizeof err);
    if (rc != TRELLIS_OK) {
        printf("   %s: State failed: rc %d: %s\n", LEGS[leg].name, rc, err);
        return st;
    }
    st.ok = 1;
    char *text = malloc(len + 1);
    if (!text) {
        free(reply);
        st.ok = 0;
        return st;
    }
    memcpy(text, reply ? (const char *)reply : "", len);
    text[len] = '\0';
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save))
        parse_state_line(l, &st);
    free(text);
    free(reply);
    return st;
}

/* ---- what the services printed -------------------------------------- */

/* The services' and the listener's own lines about gid, merged in time
 * order. Only for those started here: their logs are ours to read. */
void trip_print_said(const env_t *env, const char *gid)
{
    example_print_said(env->log, N_LEGS + 1, gid, "services");
}

void trip_read_states(const env_t *env, const char *gid, svc_state_t st[N_LEGS])
{
    for (int i = 0; i < N_LEGS; i++) {
        st[i] = trip_read_state(env, i, gid);
        if (!st[i].ok)
            continue;
        printf("   %-7s holds %s%s%s  (calls: %s)\n", LEGS[i].name,
               st[i].n_bookings ? "booking [" : "nothing",
               st[i].n_bookings ? st[i].booking : "",
               st[i].n_bookings ? "]" : "",
               st[i].history[0] ? st[i].history : "none");
    }
}

/* ---- what the listener recorded --------------------------------------- */

/* Ask the listener what it recorded for gid (the last event, and how
 * many). */
listener_state_t trip_read_listener(const env_t *env, const char *gid)
{
    listener_state_t ls = {0};
    char err[256], n[16], *text = NULL, *save = NULL;
    if (example_call_text(env->listener, "/trip.v1.Listener/State", gid, &text,
                          err, sizeof err) != 0) {
        printf("   listener: State failed: %s\n", err);
        return ls;
    }
    ls.ok = 1;
    for (char *l = strtok_r(text, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        const char *reason = strstr(l, " reason=");
        ls.n_events++;
        field(l, "branch", ls.branch, sizeof ls.branch);
        field(l, "status", ls.status, sizeof ls.status);
        field(l, "deliveries", n, sizeof n);
        ls.deliveries = atoi(n);
        snprintf(ls.reason, sizeof ls.reason, "%s", reason ? reason + 8 : "");
    }
    free(text);
    printf("   listener recorded %d event(s)", ls.n_events);
    if (ls.n_events)
        printf(": %s %s, %d deliver%s%s%s", ls.branch, ls.status, ls.deliveries,
               ls.deliveries == 1 ? "y" : "ies", *ls.reason ? ", reason: " : "",
               ls.reason);
    printf("\n");
    return ls;
}
