/*
 * tm_absl: the one setting trellisd makes in Abseil, the C++ library under
 * gRPC core. Debian builds Abseil with mutex deadlock detection on, a
 * debugging aid that keeps a graph of lock order and looks a lock up in it
 * at every acquire of every gRPC mutex; trellisd turns it off at start.
 * Nothing here can fail.
 */
#ifndef TM_ABSL_H
#define TM_ABSL_H

#ifdef __cplusplus
extern "C" {
#endif

/* Turn off Abseil's mutex deadlock detection for the whole process. Call
 * once, before any thread starts. */
void tm_absl_no_deadlock_detection(void);

#ifdef __cplusplus
}
#endif

#endif
