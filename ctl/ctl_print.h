/*
 * ctl_print: trellisctl's output. One transaction as an operator reads it
 * — header, every branch and op with attempts and last error, and a
 * timeline of attempts, op outcomes and decisions — as text or as JSON,
 * plus the small JSON and time helpers every trellisctl command shares.
 *
 * Everything is written to stdout. The decisions in the timeline are
 * derived from op times (trellisd stores no separate decision record): a
 * rollback decided by a failed forward op is shown at that op's end; a
 * commit decision at the end of the last forward op, once a commit-side op
 * was called. A rollback decided by abort or timeout shows only in the
 * transaction's reason. A message (branch 0 its back-check, mode
 * msg_check) is decided "deliver" or "drop" when its back-check op ends
 * (answered, or settled by the initiator's submit or abort); its steps'
 * failures decide nothing, as they are never rolled back.
 *
 * Single-threaded, like trellisctl.
 */
#ifndef CTL_PRINT_H
#define CTL_PRINT_H

#include <stddef.h>
#include <stdint.h>

#include "trellis/trellis.h"

/* s as a JSON string literal (NULL as ""). */
void ctl_json_str(const char *s);
/* "key":"value", with a leading comma unless first. */
void ctl_json_kv_str(const char *key, const char *value, int first);
/* ,"key":value */
void ctl_json_kv_int(const char *key, int64_t value);

/* ms since the epoch as "2026-01-02T03:04:05.678Z" into buf; "-" for 0.
 * Returns buf. */
const char *ctl_fmt_time(int64_t ms, char *buf, size_t len);
/* A duration as "850ms", "12s", "3m20s", "5h2m", "2d3h". Returns buf. */
const char *ctl_fmt_age(int64_t ms, char *buf, size_t len);

void ctl_print_trans_text(const trellis_trans_info_t *info);
/* One JSON object and a newline. */
void ctl_print_trans_json(const trellis_trans_info_t *info);

/* Ops that were called but never finished (attempts > 0, status pending
 * or skipped): after a force-stop, what an operator resolves by hand. */
size_t ctl_unfinished_count(const trellis_trans_info_t *info);
/* Them as indented text lines; nothing when there are none. */
void ctl_print_unfinished_text(const trellis_trans_info_t *info);
/* ,"unfinished":[{...},...] */
void ctl_print_unfinished_json(const trellis_trans_info_t *info);

/* A commit-side op (confirm, commit) was called or succeeded: the commit
 * decision had been made, and branches that committed stay committed. */
int ctl_past_commit_decision(const trellis_trans_info_t *info);

#endif /* CTL_PRINT_H */
