/*
 * fake_env: the engine core (tm_engine.h) on a fake environment stepped by
 * hand, one event at a time, for its unit tests (tests/unit/test_engine.c,
 * unit_engine). Kept apart from the tests so that they read as orderings
 * of events, and so that the parts it shares with the simulator's fakes
 * (fake_kit.h) have one home.
 *
 * The fakes (no threads, nothing happens unless the test says so):
 *  - the store keeps queued writes until the test commits the oldest with
 *    the result it chooses (fenv_commit_next); a DONE write joins its gid's
 *    stored row, which store_get/peek read back as the real stores do;
 *    its subscriptions are in memory (fake_kit's), with the stores'
 *    semantics, until the test makes its topics calls fail;
 *  - the caller records started calls until the test answers one;
 *  - the timers record armed nodes until the test fires one (the clock
 *    moves to its due time first);
 *  - the clock is a variable (monotonic and wall alike);
 *  - the front records the answers of each request (fenv_rpc_t).
 *
 * Ownership: every write, call context and request is freed by
 * fenv_close, which first checks that nothing is left queued, on the wire
 * or armed, and that every request was answered exactly once, so the
 * sanitizer build's LeakSanitizer stays clean.
 *
 * For cmocka tests: the helpers assert, failing the running test. One
 * world per process, opened and closed by each test's fixture.
 */
#ifndef FAKE_ENV_H
#define FAKE_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "engine_call.h"
#include "tm_engine.h"
#include "tm_store_impl.h"

/* The branches a Query (or StartWorkflow) answer records. */
#define FENV_MAX_BR 6

/* One request and everything the front was told about it. */
typedef struct fenv_rpc {
    struct fenv_rpc *next_all; /* every request of the test */
    engine_call_method_t method;
    uint8_t *bytes;
    size_t len;
    int answers; /* answered or dropped, counted: must end at 1 */
    tm_code_t code;
    tm_tx_status_t status; /* the answer's, or the queried transaction's */
    char message[1024];
    char reason[512];
    int created; /* StartWorkflow: 1 for a new workflow */
    /* Query, StartWorkflow: the transaction's branches, per slot. */
    size_t n_branches;
    uint32_t attempts[FENV_MAX_BR][TM_SLOTS];
    tm_op_status_t op_status[FENV_MAX_BR][TM_SLOTS];
} fenv_rpc_t;

/* ---- the world ---- */

/* A fresh world, the clock at 1,000,000 ms, and an engine on it with
 * cfg. */
void fenv_open(const tm_engine_config_t *cfg);

/* Check that nothing is in flight — no write queued, no call on the wire,
 * no timer armed, no transaction in memory, every request answered
 * exactly once — then free everything. */
void fenv_close(void);

tm_engine_t *fenv_engine(void);

/* The clock (monotonic and wall alike). */
int64_t fenv_now(void);

/* ---- the store ---- */

/* Writes queued, not committed. */
size_t fenv_queued(void);

/* The oldest queued write (for a look before it commits). */
const tm_write_t *fenv_next_write(void);

/* Commit the oldest queued write with result, then run its callback (as
 * the store thread does); writes the callback queues wait their turn. */
void fenv_commit_next(tm_write_result_t result);

/* Commit every queued write DONE, including those their callbacks queue. */
void fenv_commit_all(void);

/* Store w as committed (a row another node wrote); the store's now. */
void fenv_store_write(tm_write_t *w);

/* The store's lease_ok answers ok (1 at open; 0: this node's leases ran
 * out, as after a pause, until its lease thread re-confirms them). */
void fenv_set_lease_ok(int ok);

/* The next n topics calls of the store (subscribe, unsubscribe,
 * subscriptions) fail with an error, changing nothing. */
void fenv_refuse_topics(unsigned n);

/* The env the engine runs on (a test may call its store_* entries to set
 * up or read back what the engine sees). */
const tm_engine_env_t *fenv_env(void);

/* ---- calls ---- */

/* Calls started so far (answered or not), and those not answered yet. */
size_t fenv_calls_started(void);
size_t fenv_calls_open(void);

/* Answer call i (in start order) with a gRPC status. */
void fenv_answer_call(size_t i, int status);

/* The same, with the reply's bytes reply[len] (borrowed for the call). */
void fenv_answer_call_with(size_t i, int status, const void *reply, size_t len);

/* The compensation log call i was sent (metadata trellis-action-result-bin:
 * its bytes, *len; NULL with 0 when none), and in *full_size (when not
 * NULL) the trellis-action-result-size it was sent, "" when none. Borrowed
 * until the fixture's teardown. */
const uint8_t *fenv_call_action_log(size_t i, size_t *len,
                                    const char **full_size);

/* The request bytes call i was sent, *len (NULL with 0 when none).
 * Borrowed until the fixture's teardown. */
const uint8_t *fenv_call_payload(size_t i, size_t *len);
/* Call i went to gid's branch with op ("action", "confirm", ...). */
void fenv_assert_call(size_t i, const char *gid, const char *branch,
                      const char *op);

/* The next n calls cannot be started (no channel). */
void fenv_refuse_calls(unsigned n);

/* ---- timers ---- */

size_t fenv_timers_armed(void);

/* The due time of armed timer i. */
int64_t fenv_timer_due(size_t i);

/* The armed timer due at due_ms, or -1. */
int fenv_timer_at(int64_t due_ms);

/* Move the clock to timer i's due time and fire it. */
void fenv_fire_timer(int i);

/* The index of the armed timer due first (a retry, say) or last (the
 * timeout of the only transaction); asserts one is armed. */
int fenv_timer_first(void);
int fenv_timer_last(void);

/* cmocka fixtures: a world whose engine retries at 100 ms with a 1 s
 * backoff cap and calls 127.0.0.1:* targets (fenv_open), and its close
 * (fenv_close). */
int fenv_setup_local(void **state);
int fenv_teardown(void **state);

/* ---- requests, as tm_api hands them to the engine ---- */

/* Pack m and hand it to the engine as method (running it again while the
 * engine says TM_ENGINE_AGAIN). */
fenv_rpc_t *fenv_send(engine_call_method_t method, const ProtobufCMessage *m);

/* A Query of gid. */
fenv_rpc_t *fenv_send_query(const char *gid);

/* Answered exactly once, with code (and, for OK, status). */
void fenv_assert_answer(const fenv_rpc_t *r, tm_code_t code,
                        tm_tx_status_t status);

/* Not answered yet. */
void fenv_assert_unanswered(const fenv_rpc_t *r);

#endif /* FAKE_ENV_H */
