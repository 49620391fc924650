/*
 * tm_trans_json: a transaction as the console's JSON API shows it, written
 * from the Transaction message that Query and List reply with (the same
 * message trellisctl reads), with the names trellisctl --json uses:
 * statuses, modes and op kinds as lower-case words, times in ms since the
 * epoch (0: not yet).
 *
 * Payloads and op results are bytes: shown as text (tm_json replaces what
 * is not UTF-8), cut at TM_TRANS_JSON_BYTES_SHOWN with "_bytes" giving the
 * full size. Branch headers (options.branch_headers) are left out: they
 * may carry credentials for the participants.
 *
 * Pure; any thread.
 */
#ifndef TM_TRANS_JSON_H
#define TM_TRANS_JSON_H

#include "tm_json_out.h"
#include "trellis/v1/tm.pb-c.h"

#define TM_TRANS_JSON_BYTES_SHOWN 4096

/* t as one JSON object into j; with_branches 0 writes the summary a list
 * shows (gid, status, reason, times, branch count). */
void tm_trans_json(tm_json_out_t *j, const Trellis__V1__Transaction *t,
                   int with_branches);

#endif /* TM_TRANS_JSON_H */
