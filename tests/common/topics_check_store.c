/*
 * topics_check_store: topics_check on a real store (see
 * topics_check_store.h).
 */
#include "topics_check_store.h"

#include "tm_engine_env.h"

tm_engine_env_t tcheck_store_env(tm_store_t *s)
{
    tm_engine_env_t env;
    tm_engine_env_real(&env, s, NULL, NULL);
    return env;
}

const char *tcheck_store_text(tm_store_t *s, char *out, size_t len)
{
    tm_engine_env_t env = tcheck_store_env(s);
    return tcheck_text(&env, NULL, out, len);
}
