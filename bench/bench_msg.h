/*
 * bench_msg: the msg2 workload of trellis-bench - 2-phase transactional
 * messages (trellis/trellis_msg.h) of two steps, each tied to a local
 * MariaDB transaction by trellis_msg_do_and_submit (trellis/barrier_msg.h).
 *
 * One message: PrepareMessage (two steps, both the no-op participant's
 * Action, the second after the first, as saga2's two steps), the local
 * transaction on the load thread's own connection to the bench's MariaDB
 * (START TRANSACTION, the message's barrier row, one business row in
 * `orders`, COMMIT), then Submit; trellisd then delivers the two steps.
 * That is 4 gRPC calls (PrepareMessage, Submit, 2 x Action) and one
 * MariaDB transaction of 4 round trips.
 *
 * What counts. With wait (the default) the Submit waits for the outcome, as
 * saga2's Submit with wait_result: a message counts once trellisd answers
 * SUCCEEDED, i.e. both steps were delivered - the figure is end-to-end.
 * Without wait it counts when the Submit is accepted (SUBMITTED: the
 * message is durably decided and will be delivered); deliveries then run
 * behind the load and bench_msg_drain waits for them afterwards.
 *
 * The back-check. Every message names a back-check target (query_prepared):
 * a participant in the bench process serving trellis_barrier_query_prepared
 * _handler on the same MariaDB (a small connection pool). A healthy run
 * never calls it; bench_msg_checks says how often it was called.
 *
 * The load is bench_ap's (`concurrency` threads, one message after the
 * other) with bench_msg_op as its op and the bench_msg_env_t as its user;
 * load thread i uses connection i and bench_ap's client i % nodes for both
 * its PrepareMessage and its Submit.
 *
 * Threads: start, stop, drain and the readings from the main thread (the
 * harness is not thread-safe); bench_msg_op from any load thread, each on
 * its own connection; the back-check handler on the participant's workers.
 */
#ifndef BENCH_MSG_H
#define BENCH_MSG_H

#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bench_ap.h"
#include "bench_ap_env.h"
#include "bench_env.h"
#include "trellis/barrier_msg.h"

#define BENCH_MSG_POOL 8 /* idle back-check connections kept */

typedef struct {
    bench_ap_env_t ap; /* the bench's MariaDB; no services */
    MYSQL **conns;     /* one per load thread */
    int n_conns;
    int wait;                 /* Submit waits for SUCCEEDED */
    trellis_participant_t *p; /* the back-check target */
    trellis_barrier_conns_t check_conns;
    pthread_mutex_t mu; /* guards idle, n_idle */
    MYSQL *idle[BENCH_MSG_POOL];
    int n_idle;
    atomic_ullong checks; /* back-check calls so far */
    char query_prepared[192], action[192];
    char gid_prefix[32]; /* "m<pid>-" */
} bench_msg_env_t;

/* Start the bench's MariaDB in env's scratch dir (innodb_flush_log_at_trx
 * _commit = db_flush) with the database bench_msg (tables orders and the
 * barrier's), open n_conns connections for the load threads, and serve the
 * back-check. Returns 0, or -1 after printing why (what started is
 * stopped; the MariaDB stops with the harness). */
int bench_msg_env_start(bench_msg_env_t *m, const bench_env_t *env, int n_conns,
                        int wait, int db_flush);
void bench_msg_env_stop(bench_msg_env_t *m);

/* One message, a bench_ap_op_fn; env is the bench_msg_env_t. Gids are made
 * here ("m<pid>-<thread>-<n>"). */
int bench_msg_op(bench_ap_worker_t *w, uint64_t n, const void *env);

/* Wait (up to timeout_s) until the participant has answered `actions`
 * Action calls, i.e. every step of the messages so far was delivered.
 * Returns the seconds it took, or -1 when it did not happen in time. */
double bench_msg_drain(const bench_env_t *env, unsigned long long actions,
                       double timeout_s);

/* The business rows committed so far (-1 on error), and the back-check
 * calls served. */
long long bench_msg_rows(bench_msg_env_t *m);
unsigned long long bench_msg_checks(bench_msg_env_t *m);

#endif /* BENCH_MSG_H */
