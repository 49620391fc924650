/*
 * topics_check: the topics contract of tm_store.h ("topics") checked
 * through an engine env's three store_* topic entries, so that one list
 * of expectations holds every implementation alike: the SQLite store
 * (unit_store), the MySQL store (integration_store_mysql), both through
 * tm_engine_env_real, and unit_engine's fake env.
 *
 * For cmocka tests: the functions assert, failing the running test.
 */
#ifndef TOPICS_CHECK_H
#define TOPICS_CHECK_H

#include <stddef.h>

#include "tm_engine.h"

/* The subscriptions of topic (NULL: every topic) as env lists them, one
 * "topic target remark created_ms\n" line each, in out[len]; returns out. */
const char *tcheck_text(const tm_engine_env_t *env, const char *topic,
                        char *out, size_t len);

/* Run the contract on env's store, which must hold no subscriptions yet:
 * created once (a repeat answers 0 and keeps the first remark and age),
 * listed by topic, then age, then target, byte for byte (so "B" before
 * "a"), by one topic or all ("" is all), removed once, exact match only.
 * The store is left holding subscriptions (their text is
 * tcheck_text(env, NULL, ...)), for a caller to check they survive. */
void tcheck_contract(const tm_engine_env_t *env);

/* The bounds of tm_store.h (TM_STORE_*_MAX), on a real store's env: an
 * empty or too long topic or target and a too long remark are refused
 * with err naming which; the longest of each is kept (and removed again:
 * the store is left as it was). */
void tcheck_limits(const tm_engine_env_t *env);

#endif /* TOPICS_CHECK_H */
