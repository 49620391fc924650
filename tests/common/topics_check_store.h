/*
 * topics_check_store: topics_check on a real store (tm_store_t), through
 * tm_engine_env_real — for unit_store and integration_store_mysql. Apart
 * from topics_check so that unit_engine links the engine core alone.
 */
#ifndef TOPICS_CHECK_STORE_H
#define TOPICS_CHECK_STORE_H

#include "topics_check.h"

/* The env whose store_* entries are s's (the rest: the real ones, with no
 * caller and no timers). */
tm_engine_env_t tcheck_store_env(tm_store_t *s);

/* tcheck_text of every topic of s. */
const char *tcheck_store_text(tm_store_t *s, char *out, size_t len);

#endif /* TOPICS_CHECK_STORE_H */
