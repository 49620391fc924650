/*
 * tm_engine_env: the engine's real environment — trellisd's store, branch
 * caller and timer thread, and the system clocks — as the table the engine
 * runs on (tm_engine_env_t, tm_engine.h). Kept apart from the engine so
 * that the engine links without gRPC or SQL; tests and the simulator fill
 * the table with fakes instead.
 */
#ifndef TM_ENGINE_ENV_H
#define TM_ENGINE_ENV_H

#include "tm_caller.h"
#include "tm_engine.h"

/* Fill env with store, caller and timers (borrowed: they must outlive every
 * engine made with env) and the system clocks. */
void tm_engine_env_real(tm_engine_env_t *env, tm_store_t *store,
                        tm_caller_t *caller, tm_timers_t *timers);

#endif /* TM_ENGINE_ENV_H */
