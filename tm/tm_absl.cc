/*
 * tm_absl: trellisd's one call into Abseil (see tm_absl.h). C++ only
 * because Abseil's setting has no C interface.
 */
#include "tm_absl.h"

#include <absl/synchronization/mutex.h>

void tm_absl_no_deadlock_detection(void)
{
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
