/*
 * fuzz_config_check: what the configuration targets (fuzz_config,
 * fuzz_config_text) require of a tm_config_t that parsing accepted: every
 * string setting NUL-terminated in its buffer, every number within its
 * flag's bounds, and the storage settings convertible by tm_config_store
 * (or refused with a message), as trellisd converts them next.
 */
#ifndef FUZZ_CONFIG_CHECK_H
#define FUZZ_CONFIG_CHECK_H

#include <stdio.h> /* tm_config.h uses FILE */

#include "tm_config.h"

void fz_config_check(const tm_config_t *c);

#endif /* FUZZ_CONFIG_CHECK_H */
