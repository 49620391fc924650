/*
 * topics_check: the topics contract every store keeps (see
 * topics_check.h), through an engine env.
 */
#include "topics_check.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

const char *tcheck_text(const tm_engine_env_t *env, const char *topic,
                        char *out, size_t len)
{
    char err[256];
    tm_subscription_t *v = NULL;
    size_t n = 0;
    if (env->store_subscriptions(env->store, topic, &v, &n, err, sizeof(err)) !=
        0)
        fail_msg("subscriptions of %s: %s", topic ? topic : "(all)", err);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s %s %s %lld\n",
                                 v[i].topic, v[i].target, v[i].remark,
                                 (long long)v[i].created_ms);
    tm_subscriptions_free(v, n);
    return out;
}

static int subscribe(const tm_engine_env_t *env, const char *topic,
                     const char *target, const char *remark, int64_t now)
{
    char err[256];
    int rc = env->store_subscribe(env->store, topic, target, remark, now, err,
                                  sizeof(err));
    if (rc < 0)
        fail_msg("subscribe %s %s: %s", topic, target, err);
    return rc;
}

static int unsubscribe(const tm_engine_env_t *env, const char *topic,
                       const char *target)
{
    char err[256];
    int rc =
        env->store_unsubscribe(env->store, topic, target, err, sizeof(err));
    if (rc < 0)
        fail_msg("unsubscribe %s %s: %s", topic, target, err);
    return rc;
}

void tcheck_contract(const tm_engine_env_t *env)
{
    char got[1024], all[1024];
    assert_string_equal(tcheck_text(env, NULL, got, sizeof(got)), "");
    assert_int_equal(subscribe(env, "orders", "h:2/p.S/B", "second", 200), 1);
    assert_int_equal(subscribe(env, "orders", "h:1/p.S/A", "first", 100), 1);
    assert_int_equal(subscribe(env, "bills", "h:9/p.S/Z", "", 300), 1);
    /* the same created_ms: the target breaks the tie */
    assert_int_equal(subscribe(env, "orders", "h:0/p.S/Y", NULL, 200), 1);
    /* byte order: upper case before lower */
    assert_int_equal(subscribe(env, "a", "h:1/p.S/A", "", 50), 1);
    assert_int_equal(subscribe(env, "B", "h:1/p.S/A", "", 60), 1);
    /* a repeat is not created again and keeps its remark and age */
    assert_int_equal(subscribe(env, "orders", "h:1/p.S/A", "changed", 999), 0);
    assert_string_equal(tcheck_text(env, NULL, all, sizeof(all)),
                        "B h:1/p.S/A  60\n"
                        "a h:1/p.S/A  50\n"
                        "bills h:9/p.S/Z  300\n"
                        "orders h:1/p.S/A first 100\n"
                        "orders h:0/p.S/Y  200\n"
                        "orders h:2/p.S/B second 200\n");
    assert_string_equal(tcheck_text(env, "", got, sizeof(got)), all);
    assert_string_equal(tcheck_text(env, "bills", got, sizeof(got)),
                        "bills h:9/p.S/Z  300\n");
    assert_string_equal(tcheck_text(env, "nobody", got, sizeof(got)), "");
    /* topics and targets match exactly */
    assert_int_equal(unsubscribe(env, "Orders", "h:1/p.S/A"), 0);
    assert_int_equal(unsubscribe(env, "orders", "h:1/p.s/A"), 0);
    assert_int_equal(unsubscribe(env, "orders", "h:1/p.S/A"), 1);
    assert_int_equal(unsubscribe(env, "orders", "h:1/p.S/A"), 0);
    assert_int_equal(unsubscribe(env, "a", "h:1/p.S/A"), 1);
    /* unsubscribed, a pair can be subscribed again, as new */
    assert_int_equal(subscribe(env, "a", "h:1/p.S/A", "again", 70), 1);
    assert_string_equal(tcheck_text(env, NULL, got, sizeof(got)),
                        "B h:1/p.S/A  60\n"
                        "a h:1/p.S/A again 70\n"
                        "bills h:9/p.S/Z  300\n"
                        "orders h:0/p.S/Y  200\n"
                        "orders h:2/p.S/B second 200\n");
}

/* A text of n copies of c in buf[n + 1]. */
static const char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* subscribe refuses (topic, target, remark), err naming what. */
static void refused(const tm_engine_env_t *env, const char *topic,
                    const char *target, const char *remark, const char *what)
{
    char err[256];
    assert_int_equal(env->store_subscribe(env->store, topic, target, remark, 1,
                                          err, sizeof(err)),
                     -1);
    if (!strstr(err, what))
        fail_msg("refusal of a bad %s says: %s", what, err);
}

void tcheck_limits(const tm_engine_env_t *env)
{
    char before[1024], after[1024];
    char topic[TM_STORE_TOPIC_MAX + 2], target[TM_STORE_TARGET_MAX + 2];
    char remark[TM_STORE_REMARK_MAX + 2];
    tcheck_text(env, NULL, before, sizeof(before));
    refused(env, "", "h:1/p.S/A", "", "topic");
    refused(env, repeat(topic, 't', TM_STORE_TOPIC_MAX + 1), "h:1/p.S/A", "",
            "topic");
    refused(env, "t", "", "", "target");
    refused(env, "t", repeat(target, 'h', TM_STORE_TARGET_MAX + 1), "",
            "target");
    refused(env, "t", "h:1/p.S/A", repeat(remark, 'r', TM_STORE_REMARK_MAX + 1),
            "remark");
    assert_string_equal(tcheck_text(env, NULL, after, sizeof(after)), before);
    /* the longest of each is kept whole */
    repeat(topic, 't', TM_STORE_TOPIC_MAX);
    repeat(target, 'h', TM_STORE_TARGET_MAX);
    repeat(remark, '\xff', TM_STORE_REMARK_MAX); /* any bytes */
    assert_int_equal(subscribe(env, topic, target, remark, 7), 1);
    tm_subscription_t *v = NULL;
    size_t n = 0;
    char err[256];
    assert_int_equal(
        env->store_subscriptions(env->store, topic, &v, &n, err, sizeof(err)),
        0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].topic, topic);
    assert_string_equal(v[0].target, target);
    assert_string_equal(v[0].remark, remark);
    assert_int_equal(v[0].created_ms, 7);
    tm_subscriptions_free(v, n);
    assert_int_equal(unsubscribe(env, topic, target), 1);
    assert_string_equal(tcheck_text(env, NULL, after, sizeof(after)), before);
}
