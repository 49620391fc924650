/*
 * Unit tests of tm_timer: nodes fire once, in due order, and a disarmed
 * node never fires; re-arming moves a node. And of the timed waits of
 * tm_clock: a deadline from tm_clock_deadline_in on a condition variable
 * from tm_cond_init_monotonic is measured by the same clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "tm_clock.h"
#include "tm_timer.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t fired[16];
static int n_fired;

static void record(tm_timer_node_t *node)
{
    pthread_mutex_lock(&mu);
    fired[n_fired++] = node->tag;
    pthread_mutex_unlock(&mu);
}

static int fired_count(void)
{
    pthread_mutex_lock(&mu);
    int n = n_fired;
    pthread_mutex_unlock(&mu);
    return n;
}

static void wait_for(int n)
{
    for (int i = 0; i < 400 && fired_count() < n; i++)
        usleep(5000);
}

static void test_fires_in_due_order_and_disarm_cancels(void **state)
{
    (void)state;
    char err[128];
    tm_timers_t *t;
    assert_int_equal(tm_timers_start(&t, err, sizeof(err)), 0);
    tm_timer_node_t nodes[5] = {0};
    int64_t now = tm_mono_ms();
    int64_t delays[] = {60, 20, 40, 30, 50};
    for (uint32_t i = 0; i < 5; i++) {
        nodes[i].fn = record;
        nodes[i].tag = i;
        assert_int_equal(tm_timer_arm(t, &nodes[i], now + delays[i]), 1);
    }
    assert_int_equal(tm_timers_count(t), 5);
    assert_int_equal(tm_timer_disarm(t, &nodes[3]), 1); /* 30 ms: never */
    assert_int_equal(tm_timer_disarm(t, &nodes[3]), 0);
    assert_int_equal(tm_timer_arm(t, &nodes[0], now + 10), 0); /* moved */
    wait_for(4);
    usleep(30000);
    assert_int_equal(fired_count(), 4);
    uint32_t expect[] = {0, 1, 2, 4};
    for (int i = 0; i < 4; i++)
        assert_int_equal(fired[i], expect[i]);
    assert_int_equal(tm_timers_count(t), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(nodes[i].heap_index, 0);
    tm_timers_stop(t);
}

/* What the heap test's callback saw: each node once, in firing order. */
enum { MANY = 5000 };
typedef struct {
    uint32_t tag;
    int64_t due_ms, fired_ms;
} firing_t;
static firing_t many_log[MANY];
static int n_many;

static void record_many(tm_timer_node_t *node)
{
    int64_t now = tm_mono_ms();
    pthread_mutex_lock(&mu);
    if (n_many < MANY)
        many_log[n_many] = (firing_t){node->tag, node->due_ms, now};
    n_many++;
    pthread_mutex_unlock(&mu);
}

static int many_count(void)
{
    pthread_mutex_lock(&mu);
    int n = n_many;
    pthread_mutex_unlock(&mu);
    return n;
}

/* Thousands of nodes due at scattered times within a quarter second, some
 * moved and half disarmed, must fire in due order: the timer thread only
 * ever takes the heap's root, so any broken sift shows up as a node
 * firing before one due earlier. */
static void test_many_nodes_keep_heap_order(void **state)
{
    (void)state;
    char err[128];
    tm_timers_t *t;
    assert_int_equal(tm_timers_start(&t, err, sizeof(err)), 0);
    static tm_timer_node_t nodes[MANY];
    /* Arming all of them takes a few ms; none may be due before then, or
     * an early one could fire before a still earlier one is armed. */
    int64_t base = tm_mono_ms() + 300;
    for (int i = 0; i < MANY; i++) {
        nodes[i].fn = record_many;
        nodes[i].tag = (uint32_t)i;
        assert_int_equal(
            tm_timer_arm(t, &nodes[i], base + (i * 7919) % MANY / 20), 1);
    }
    for (int i = 1; i < MANY; i += 10) /* moved, some earlier, some later */
        assert_int_equal(
            tm_timer_arm(t, &nodes[i], base + (i * 104729) % MANY / 20), 0);
    for (int i = 0; i < MANY; i += 2)
        assert_int_equal(tm_timer_disarm(t, &nodes[i]), 1);
    assert_int_equal(tm_timers_count(t), MANY / 2);
    if (tm_mono_ms() >= base)
        fail_msg("arming took over 300 ms; the order check would be void");
    assert_int_equal(many_count(), 0);

    int64_t last_due = base + (MANY - 1) / 20;
    for (int i = 0; i < 400 && many_count() < MANY / 2; i++)
        usleep(5000);
    while (tm_mono_ms() < last_due + 30) /* time for a stray disarmed one */
        usleep(5000);
    assert_int_equal(many_count(), MANY / 2);
    for (int i = 0; i < MANY / 2; i++) {
        if (many_log[i].tag % 2 == 0)
            fail_msg("disarmed node %u fired", many_log[i].tag);
        assert_int_equal(many_log[i].due_ms, nodes[many_log[i].tag].due_ms);
        if (many_log[i].fired_ms < many_log[i].due_ms)
            fail_msg("node %u fired at %lld, before its due %lld",
                     many_log[i].tag, (long long)many_log[i].fired_ms,
                     (long long)many_log[i].due_ms);
        if (i > 0 && many_log[i].due_ms < many_log[i - 1].due_ms)
            fail_msg("firing %d: node %u due %lld after node %u due %lld", i,
                     many_log[i].tag, (long long)many_log[i].due_ms,
                     many_log[i - 1].tag, (long long)many_log[i - 1].due_ms);
    }
    assert_int_equal(tm_timers_count(t), 0);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(nodes[i].heap_index, 0);
    tm_timers_stop(t);
}

/* Stopping drops armed nodes without firing them. */
static void test_stop_drops_armed_nodes(void **state)
{
    (void)state;
    char err[128];
    tm_timers_t *t;
    assert_int_equal(tm_timers_start(&t, err, sizeof(err)), 0);
    tm_timer_node_t nodes[3] = {0};
    int64_t far = tm_mono_ms() + 3600000;
    for (int i = 0; i < 3; i++) {
        nodes[i].fn = record_many;
        assert_int_equal(tm_timer_arm(t, &nodes[i], far + i), 1);
    }
    int before = many_count();
    tm_timers_stop(t);
    assert_int_equal(many_count(), before);
    for (int i = 0; i < 3; i++)
        assert_int_equal(nodes[i].heap_index, 0);
}

/* A wait with no signal ends at its deadline: not before it (a deadline
 * read from another clock than the condition variable's would end at once)
 * and not long after (or decades later: the test would hang). */
static void test_timed_wait_uses_one_clock(void **state)
{
    (void)state;
    pthread_cond_t cv;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    assert_int_equal(tm_cond_init_monotonic(&cv), 0);
    pthread_mutex_lock(&m);
    int64_t start = tm_mono_ms();
    struct timespec until = tm_clock_deadline_in(60);
    int rc;
    do
        rc = pthread_cond_timedwait(&cv, &m, &until);
    while (rc == 0); /* a spurious wake-up: wait on */
    int64_t took = tm_mono_ms() - start;
    pthread_mutex_unlock(&m);
    pthread_cond_destroy(&cv);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(took >= 59);
    assert_true(took < 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_in_due_order_and_disarm_cancels),
        cmocka_unit_test(test_many_nodes_keep_heap_order),
        cmocka_unit_test(test_stop_drops_armed_nodes),
        cmocka_unit_test(test_timed_wait_uses_one_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
