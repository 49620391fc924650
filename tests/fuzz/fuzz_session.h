/*
 * fuzz_session: one transaction's life from untrusted requests, for the
 * "session" family of fuzz_tm_request.
 *
 * Input (after the family byte): one byte picks the limits (trellisd's
 * defaults, tight ones, or --max-steps 300 with allow-targets "*:*"); then
 * up to 16 records, each a kind byte (% 5: Begin, RegisterBranch, Submit,
 * Abort, or 4 = stop) and a 2-byte big-endian length with that many bytes
 * of the message.
 * The records are applied to one transaction model as tm_engine.c's
 * handlers apply them (same checks, same order, same refusals). Then the
 * transaction is driven through tm_plan: every ready op is put on the
 * wire, and each gets the participant result the next input byte names
 * (low 2 bits: OK, ABORTED, ONGOING, unknown; bit 6: the transaction's
 * timeout fires first; bit 7: no answer yet, the call stays on the wire
 * for another round). A transaction still prepared takes one byte first:
 * odd, its timeout fires (the initiator vanished). Bytes run out as 0,
 * i.e. OK, so a plain request sequence drives to the end.
 *
 * Invariants beyond fuzz_model's: an op is never handed out while on the
 * wire, and planning never stalls (nothing ready, nothing on the wire, no
 * outcome), which in trellisd would leave the transaction hanging.
 */
#ifndef FUZZ_SESSION_H
#define FUZZ_SESSION_H

#include "fuzz_input.h"
#include "tm_trans.h"

void fz_session_run(fz_in_t *in);

/* What an Abort of a prepared transaction does to it (abort_live). */
void fz_session_abort_reason(tm_trans_t *tx,
                             const Trellis__V1__AbortRequest *r);

#endif /* FUZZ_SESSION_H */
