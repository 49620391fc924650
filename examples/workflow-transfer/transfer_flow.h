/*
 * transfer_flow.h: what the two files of transfer-workflow-service share —
 * the workflow function "transfer" (transfer_flow.c) and the service that
 * registers, runs and holds it (workflow_service.c). Names are flow_*.
 *
 * Threads: flow_transfer runs on a thread of the service's own (a run
 * the driver started) or on one of the participant's workers (trellisd's
 * Resume); flow_configure runs once, before either.
 */
#ifndef TRANSFER_FLOW_H
#define TRANSFER_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "trellis/trellis_workflow.h"

#define FLOW_INPUT_MAX 256
#define FLOW_AMOUNT_MAX 1000000000000LL /* 10^12, bank-service's bound */
/* Hold points: before step 1..4, and 5 before the decision. */
#define FLOW_HOLD_MAX 5

/* Where the steps go ("host:port" each, copied), and which release of the
 * function runs (1, or 2: the ledger entry before the debit). */
typedef struct {
    const char *bank_a, *bank_b, *ledger;
    int release;
} flow_config_t;

void flow_configure(const flow_config_t *c);

/* The workflow function (trellis_wf_fn), registered as "transfer". */
int flow_transfer(trellis_wf_t *wf, const uint8_t *in, size_t len,
                  trellis_wf_err_t *e);

/* Parse an input "from=A to=B amount=N" (A, B 1..64 of [A-Za-z0-9_.-], N
 * 1..FLOW_AMOUNT_MAX); from and to hold 65 bytes. 0 or -1. */
int flow_parse_input(const char *text, char *from, char *to, long long *amount);

/* A time-stamped "workflow-service: ..." line on stdout. */
void flow_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The service's: wait here, before step k of workflow gid (k ==
 * FLOW_HOLD_MAX: before the decision), when the driver asked this run to
 * hold there; return at once otherwise. */
void flow_hold_point(const char *gid, int k);

#endif /* TRANSFER_FLOW_H */
