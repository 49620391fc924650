/*
 * Unit tests of tm_timer: nodes fire once, in due order, and a disarmed
 * node never fires; re-arming moves a node.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

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

static void test_many_nodes_keep_heap_order(void **state)
{
    (void)state;
    char err[128];
    tm_timers_t *t;
    assert_int_equal(tm_timers_start(&t, err, sizeof(err)), 0);
    enum { N = 5000 };
    static tm_timer_node_t nodes[N];
    int64_t far = tm_mono_ms() + 3600000;
    for (int i = 0; i < N; i++) {
        nodes[i].fn = record;
        tm_timer_arm(t, &nodes[i], far + (i * 7919) % N);
    }
    for (int i = 0; i < N; i += 2)
        assert_int_equal(tm_timer_disarm(t, &nodes[i]), 1);
    assert_int_equal(tm_timers_count(t), N / 2);
    tm_timers_stop(t); /* armed nodes are dropped, not fired */
    for (int i = 0; i < N; i++)
        assert_int_equal(nodes[i].heap_index, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_in_due_order_and_disarm_cancels),
        cmocka_unit_test(test_many_nodes_keep_heap_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
