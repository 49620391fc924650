/*
 * svc_holds.c: the hold table and run threads of the test services (see
 * svc_holds.h). A fixed table of 256 gids: a test holds a handful.
 */
#include "svc_holds.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESULT_MAX 256

typedef struct {
    char gid[SVC_GID_MAX];
    int hold_at;  /* the point to hold at, 0: none */
    int held_at;  /* the point held now, 0: not held */
    int released; /* the test let it go */
    int done;     /* the run ended: result is set */
    char result[RESULT_MAX];
} hold_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a hold changed, a run ended, or a thread ended */
    hold_t holds[256];
    size_t n_holds;
    int stopping; /* SIGTERM: hold nothing more */
    int threads;  /* run threads going */
} H = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Caller holds H.mu. */
static hold_t *hold_find(const char *gid)
{
    for (size_t i = 0; i < H.n_holds; i++)
        if (!strcmp(H.holds[i].gid, gid))
            return &H.holds[i];
    return NULL;
}

int svc_hold_set(const char *gid, int hold_at)
{
    pthread_mutex_lock(&H.mu);
    hold_t *h = hold_find(gid);
    if (!h && H.n_holds < sizeof H.holds / sizeof H.holds[0])
        h = &H.holds[H.n_holds++];
    if (h) {
        *h = (hold_t){.hold_at = hold_at};
        snprintf(h->gid, sizeof h->gid, "%s", gid);
    }
    pthread_mutex_unlock(&H.mu);
    return h ? 0 : -1;
}

void svc_hold_point(const char *gid, int k)
{
    pthread_mutex_lock(&H.mu);
    hold_t *h = hold_find(gid);
    if (h && h->hold_at == k && !h->released && !H.stopping) {
        h->held_at = k;
        printf("held gid=%s at=%d\n", gid, k);
        fflush(stdout);
        pthread_cond_broadcast(&H.cv);
        while (!h->released && !H.stopping)
            pthread_cond_wait(&H.cv, &H.mu);
        h->held_at = 0;
    }
    pthread_mutex_unlock(&H.mu);
}

static void deadline_in(int ms, struct timespec *until)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += ms / 1000;
    until->tv_nsec += (long)(ms % 1000) * 1000000;
    if (until->tv_nsec >= 1000000000) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000;
    }
}

/* Wait up to ms until gid's entry is held (want_done 0) or done (1);
 * copies what was found into out[len] as the reply. */
static void wait_for(const char *gid, int want_done, int ms, char *out,
                     size_t len)
{
    struct timespec until;
    deadline_in(ms, &until);
    pthread_mutex_lock(&H.mu);
    int rc = 0;
    hold_t *h = NULL;
    for (;;) {
        h = hold_find(gid);
        int ready = h && (want_done ? h->done : h->held_at != 0);
        if (ready || rc == ETIMEDOUT)
            break;
        rc = pthread_cond_timedwait(&H.cv, &H.mu, &until);
    }
    if (h && want_done && h->done)
        snprintf(out, len, "ok %s\n", h->result);
    else if (h && !want_done && h->held_at)
        snprintf(out, len, "ok at=%d\n", h->held_at);
    else
        snprintf(out, len, "err timeout\n");
    pthread_mutex_unlock(&H.mu);
}

void svc_hold_wait(const char *gid, int ms, char *out, size_t len)
{
    wait_for(gid, 0, ms, out, len);
}

void svc_hold_wait_done(const char *gid, int ms, char *out, size_t len)
{
    wait_for(gid, 1, ms, out, len);
}

void svc_hold_release(const char *gid, char *out, size_t len)
{
    pthread_mutex_lock(&H.mu);
    hold_t *h = hold_find(gid);
    if (h)
        h->released = 1;
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
    snprintf(out, len, h ? "ok released\n" : "err no such gid\n");
}

void svc_hold_done(const char *gid, const char *result)
{
    pthread_mutex_lock(&H.mu);
    hold_t *h = hold_find(gid);
    if (h) {
        h->done = 1;
        snprintf(h->result, sizeof h->result, "%s", result);
    }
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
}

int svc_hold_control(const char *cmd, char *out, size_t len)
{
    char gid[SVC_GID_MAX];
    int ms;
    if (sscanf(cmd, "wait-held %79s %d", gid, &ms) == 2)
        svc_hold_wait(gid, ms, out, len);
    else if (sscanf(cmd, "wait-done %79s %d", gid, &ms) == 2)
        svc_hold_wait_done(gid, ms, out, len);
    else if (sscanf(cmd, "release %79s", gid) == 1)
        svc_hold_release(gid, out, len);
    else
        return 0;
    return 1;
}

typedef struct {
    void *(*fn)(void *);
    void *arg;
} run_t;

static void *run_main(void *p)
{
    run_t r = *(run_t *)p;
    free(p);
    r.fn(r.arg);
    pthread_mutex_lock(&H.mu);
    H.threads--;
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
    return NULL;
}

int svc_run_spawn(void *(*fn)(void *), void *arg)
{
    run_t *r = malloc(sizeof *r);
    if (!r)
        return -1;
    *r = (run_t){fn, arg};
    pthread_t th;
    pthread_mutex_lock(&H.mu);
    int ok = pthread_create(&th, NULL, run_main, r) == 0;
    H.threads += ok;
    pthread_mutex_unlock(&H.mu);
    if (!ok) {
        free(r);
        return -1;
    }
    pthread_detach(th);
    return 0;
}

void svc_holds_drain(void)
{
    pthread_mutex_lock(&H.mu);
    H.stopping = 1;
    pthread_cond_broadcast(&H.cv);
    while (H.threads > 0)
        pthread_cond_wait(&H.cv, &H.mu);
    pthread_mutex_unlock(&H.mu);
}
