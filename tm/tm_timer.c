/*
 * tm_timer: a min-heap of intrusive timer nodes served by one thread.
 * See tm_timer.h for the contract. Invariant: for every armed node n,
 * heap[n->heap_index - 1] == n, and every parent is due no later than its
 * children.
 */
#include "tm_timer.h"

#include "tm_clock.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tm_timers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int stopping;
    tm_timer_node_t **heap;
    size_t n;
    size_t cap;
};

static void heap_place(tm_timers_t *t, size_t i, tm_timer_node_t *node)
{
    t->heap[i] = node;
    node->heap_index = i + 1;
}

/* The heap's invariants around position i: the node there knows its
 * place, its parent is due no later, its children no earlier. Checked in
 * builds with assertions (the sanitize build); free otherwise. */
static void assert_heap_at(const tm_timers_t *t, size_t i)
{
#ifndef NDEBUG
    if (i >= t->n)
        return;
    assert(t->heap[i]->heap_index == i + 1);
    assert(i == 0 || t->heap[(i - 1) / 2]->due_ms <= t->heap[i]->due_ms);
    for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < t->n; c++)
        assert(t->heap[i]->due_ms <= t->heap[c]->due_ms);
#else
    (void)t;
    (void)i;
#endif
}

static void heap_sift_up(tm_timers_t *t, size_t i)
{
    tm_timer_node_t *node = t->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (t->heap[parent]->due_ms <= node->due_ms)
            break;
        heap_place(t, i, t->heap[parent]);
        i = parent;
    }
    heap_place(t, i, node);
}

static void heap_sift_down(tm_timers_t *t, size_t i)
{
    tm_timer_node_t *node = t->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= t->n)
            break;
        if (child + 1 < t->n &&
            t->heap[child + 1]->due_ms < t->heap[child]->due_ms)
            child++;
        if (node->due_ms <= t->heap[child]->due_ms)
            break;
        heap_place(t, i, t->heap[child]);
        i = child;
    }
    heap_place(t, i, node);
}

static void heap_remove_at(tm_timers_t *t, size_t i)
{
    tm_timer_node_t *gone = t->heap[i];
    gone->heap_index = 0;
    t->n--;
    if (i == t->n)
        return;
    tm_timer_node_t *moved = t->heap[t->n];
    heap_place(t, i, moved);
    heap_sift_down(t, i);
    heap_sift_up(t, moved->heap_index - 1);
    assert_heap_at(t, moved->heap_index - 1);
    assert_heap_at(t, i);
}

static int heap_reserve(tm_timers_t *t)
{
    if (t->n < t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 1024;
    tm_timer_node_t **heap = realloc(t->heap, cap * sizeof(*heap));
    if (!heap)
        return -1;
    t->heap = heap;
    t->cap = cap;
    return 0;
}

int tm_timer_arm(tm_timers_t *t, tm_timer_node_t *node, int64_t due_ms)
{
    int fresh = 0;
    pthread_mutex_lock(&t->mu);
    if (node->heap_index) {
        node->due_ms = due_ms;
        size_t i = node->heap_index - 1;
        heap_sift_down(t, i);
        heap_sift_up(t, node->heap_index - 1);
    } else {
        if (heap_reserve(t) != 0) {
            /* Out of memory for the heap: nothing sane to do but stop. */
            fprintf(stderr, "trellisd: out of memory growing timer heap\n");
            abort();
        }
        node->due_ms = due_ms;
        heap_place(t, t->n++, node);
        heap_sift_up(t, t->n - 1);
        fresh = 1;
    }
    assert_heap_at(t, node->heap_index - 1);
    if (t->heap[0] == node)
        pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return fresh;
}

int tm_timer_disarm(tm_timers_t *t, tm_timer_node_t *node)
{
    int removed = 0;
    pthread_mutex_lock(&t->mu);
    if (node->heap_index) {
        assert(t->heap[node->heap_index - 1] == node); /* ours, in place */
        heap_remove_at(t, node->heap_index - 1);
        removed = 1;
    }
    pthread_mutex_unlock(&t->mu);
    return removed;
}

size_t tm_timers_count(tm_timers_t *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static void wait_until_due_or_signalled(tm_timers_t *t, int64_t due_ms)
{
    /* The condition variable runs on CLOCK_MONOTONIC (set at init). */
    struct timespec ts = {.tv_sec = due_ms / 1000,
                          .tv_nsec = (due_ms % 1000) * 1000000};
    pthread_cond_timedwait(&t->cv, &t->mu, &ts);
}

static void *timer_thread_main(void *arg)
{
    tm_timers_t *t = arg;
    pthread_setname_np(pthread_self(), "tm-timer");
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        if (t->n == 0) {
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        tm_timer_node_t *first = t->heap[0];
        int64_t now = tm_mono_ms();
        if (first->due_ms > now) {
            wait_until_due_or_signalled(t, first->due_ms);
            continue;
        }
        heap_remove_at(t, 0);
        pthread_mutex_unlock(&t->mu);
        first->fn(first);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int tm_timers_start(tm_timers_t **out, char *err, size_t errlen)
{
    tm_timers_t *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    tm_cond_init_monotonic(&t->cv);
    pthread_mutex_init(&t->mu, NULL);
    int rc = pthread_create(&t->thread, NULL, timer_thread_main, t);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start timer thread: %s", strerror(rc));
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void tm_timers_stop(tm_timers_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    for (size_t i = 0; i < t->n; i++)
        t->heap[i]->heap_index = 0;
    free(t->heap);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
