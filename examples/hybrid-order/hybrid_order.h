/*
 * hybrid_order.h: what the files of example-hybrid-order (the driver of
 * the hybrid-order example; hybrid_order.c says what it does) share.
 * Names are hyb_*; the constants are the example's own.
 *
 * The files, a concern each:
 *   hybrid_order.c     — the scenario table, the command line, main;
 *   hybrid_env.c       — the processes it starts, the three services'
 *                        own methods (Seed, State) and their state, and
 *                        XA RECOVER after each scenario;
 *   hybrid_gtx.c       — one hybrid order through trellis_gtx, and the
 *                        TM's view of it;
 *   hybrid_scenarios.c — the scenarios of one order each;
 *   hybrid_random.c    — the random scenario and its chaos thread.
 */
#ifndef HYBRID_ORDER_H
#define HYBRID_ORDER_H

#include <limits.h>
#include <mysql.h>
#include <stddef.h>
#include <stdint.h>

#include "example_driver.h"
#include "harness.h"
#include "trellis/trellis.h"

#define EX "hybrid-order"
#define ADDR_MAX 128
#define GID_MAX 64
#define TEXT_MAX 320
#define RETRY_INTERVAL_MS 50
#define REQUEST_TIMEOUT_MS 2000
#define CALL_TIMEOUT_MS 20000
#define FINAL_TIMEOUT_MS 30000
#define PRICE 30
#define RICH 100000
#define POOR 10
#define EXISTING_ORDER "o-existing"
#define RANDOM_MAX 500

enum { SVC_ORDER, SVC_BANK, SVC_SHIP, N_SVC };
/* Branch ids in call order (trellis_gtx numbers them). */
enum { BR_ORDER, BR_DEBIT, BR_CREDIT, BR_SHIP, N_BR };
/* Where a transaction stopped: the branch refused, or submit. */
enum { AT_NONE = -1, AT_SUBMIT = N_BR };

/* Per service: process name, gRPC service, database, state method. */
typedef struct {
    const char *name, *service, *database, *state;
} hyb_svc_t;

extern const hyb_svc_t HYB_SVC[N_SVC];

/* Per branch: service, forward/commit/rollback methods (commit NULL:
 * none), dtm trans_type and ops. */
typedef struct {
    int svc;
    const char *fwd, *commit, *rollback, *type, *fwd_op, *commit_op, *rb_op;
} hyb_branch_t;

extern const hyb_branch_t HYB_BR[N_BR];

typedef struct {
    example_procs_t procs;
    const char *socket;
    char tm[ADDR_MAX], svc[N_SVC][ADDR_MAX];
    harness_server_t *tm_srv, *svc_srv[N_SVC];
    char log[N_SVC][PATH_MAX];
    trellis_client_t *client;
    MYSQL *conn; /* the driver's own: XA RECOVER, trellis_myxa_recover, setup */
    char seed_token[40];            /* bank-service's Seed token */
    char seed_token_file[PATH_MAX]; /* and the file it reads it from */
    unsigned seed;
    int count;
} hyb_env_t;

/* One order as the initiator means it. */
typedef struct {
    char order[64];
    const char *customer, *carrier;
    int tm_run; /* shipping as add_step */
} hyb_order_t;

/* What happened to it. */
typedef struct {
    char gid[GID_MAX];
    int begun, at;    /* begin OK; the branch that refused (AT_*) */
    int fwd_ok[N_BR]; /* the forward op answered OK (add_step: added) */
    trellis_rc_t rc;  /* of the call that stopped it */
    char err[TEXT_MAX], reason[TEXT_MAX];
    trellis_trans_status_t st; /* from submit/abort (0: unknown) */
    int kind;                  /* random: what was meant to fail */
} hyb_outcome_t;

/* ---- processes and the services (hybrid_env.c) --------------------------- */

/* Start MariaDB, trellisd and the three services, connect, seed the
 * existing order, make the client. 0 or -1. */
int hyb_setup(hyb_env_t *env);

/* Close the driver's connection and stop what setup started. 0 or -1. */
int hyb_stop_started(hyb_env_t *env);

/* The accounts and carriers every scenario starts from. 0 or -1 (a failed
 * check). */
int hyb_seed_all(const hyb_env_t *env, example_check_t *ck);

/* Every service's full state, one malloc'd text ("== svc\n" + its lines);
 * NULL with a failed check. */
char *hyb_snapshot(const hyb_env_t *env, example_check_t *ck);

/* 1 if text has a line that is exactly `line`. */
int hyb_has_line(const char *text, const char *line);

/* 1 if text has a line ending with `tail`. */
int hyb_has_line_ending(const char *text, const char *tail);

/* How many lines of text contain needle. */
int hyb_count_lines(const char *text, const char *needle);

/* trellis_myxa_recover resolves what it may (expected nothing, unless
 * `may_find`), then nothing at all must be left prepared. */
void hyb_check_nothing_prepared(const hyb_env_t *env, int may_find,
                                example_check_t *ck);

/* ---- one hybrid order (hybrid_gtx.c) ------------------------------------- */

/* Phase 1, then submit (all OK) or abort (the first refusal). dup: send
 * each OK'd TCC try and initiator-run Reserve a second time at once. */
void hyb_run_order(const hyb_env_t *env, const hyb_order_t *o, int dup,
                   hyb_outcome_t *out);

/* Send branch br's op (a method of its service) again, with the metadata
 * of the first delivery. The rc. */
trellis_rc_t hyb_redeliver(const hyb_env_t *env, const hyb_order_t *o,
                           const char *gid, int br, const char *method,
                           const char *op);

/* Query until final or the deadline; the last answer, or NULL (with
 * *notfound set when trellisd never heard of gid). */
trellis_trans_info_t *hyb_query_final(const hyb_env_t *env, const char *gid,
                                      int64_t timeout_ms, int *notfound);

/* Print the TM's view of a transaction and the services' lines on it. */
void hyb_print_report(const hyb_env_t *env, const trellis_trans_info_t *info);

/* The final state of the transaction, which must be want; the TM's view
 * and the services' lines printed. The info (caller frees) or NULL. */
trellis_trans_info_t *hyb_expect_final(const hyb_env_t *env, const char *gid,
                                       trellis_trans_status_t want,
                                       example_check_t *ck);

/* Every branch before `upto` rolled back (op succeeded) in info. */
void hyb_expect_rolled_back(const trellis_trans_info_t *info, int upto,
                            example_check_t *ck);

/* ---- scenarios (hybrid_scenarios.c, hybrid_random.c) --------------------- */

void hyb_scenario_order_ok(hyb_env_t *env, example_check_t *ck);
void hyb_scenario_payment_refused(hyb_env_t *env, example_check_t *ck);
void hyb_scenario_order_refused(hyb_env_t *env, example_check_t *ck);
void hyb_scenario_ship_initiator(hyb_env_t *env, example_check_t *ck);
void hyb_scenario_ship_tm(hyb_env_t *env, example_check_t *ck);
void hyb_scenario_random(hyb_env_t *env, example_check_t *ck);

/* After every process was stopped: let the chaos thread of `random` end
 * (it forked what it restarted; see hybrid_random.c). */
void hyb_chaos_quit(void);

#endif /* HYBRID_ORDER_H */
