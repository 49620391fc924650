/*
 * tm_store_codec: stored rows -> the model (tm_trans.h), once for both
 * storage engines. An engine reads a row its own way (sqlite3_column_*,
 * MYSQL_ROW) into an array of tm_store_codec_col_t and hands it here; the
 * codec owns which column holds what (the column lists below, which the
 * engines' SELECTs use), how each value becomes a field (integers, text,
 * blobs, "1,2,3" lists, the options blob) and the checks on what it reads
 * (a gap in the branch indexes, an op of a branch or slot that does not
 * exist).
 *
 * The codec sets what is stored only. Runtime marks of a loaded model
 * (tm_run.h: stored, dirty and the like) are the engine's to keep.
 *
 * No SQL is run here and no engine header is needed: the codec is pure,
 * and safe on any thread (a model is the caller's until handed on).
 */
#ifndef TM_STORE_CODEC_H
#define TM_STORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "tm_trans.h"

/* One value of a row. Any value may come as bytes (p, len: text, a blob,
 * or an integer as decimal text, as MySQL gives them); an integer may come
 * as is_int with i (as SQLite gives them), with or without p. p NULL and
 * is_int 0: SQL NULL. The bytes need not end in NUL; they stay the
 * engine's. */
typedef struct {
    const char *p;
    size_t len;
    int64_t i;
    int is_int;
} tm_store_codec_col_t;

/* The columns of a transaction row, in the order tm_store_codec_trans
 * reads them; a ninth, generation, is read when the row has it (MySQL). */
#define TM_STORE_CODEC_TRANS_COLUMNS                                           \
    "gid, status, created_ms, updated_ms, finished_ms, reason,"                \
    " submit_hash, options"
#define TM_STORE_CODEC_TRANS_NCOLS 8

/* The columns of a branch row (rows ordered by idx; pivot since schema
 * 4 on SQLite, 5 on MySQL). */
#define TM_STORE_CODEC_BRANCH_COLUMNS                                          \
    "idx, branch_id, mode, initiator_driven, payload, depends_on, kind0,"      \
    " target0, kind1, target1, kind2, target2, pivot"
#define TM_STORE_CODEC_BRANCH_NCOLS 13

/* The columns of an op row (result: the bytes a workflow step recorded,
 * or a saga action's compensation log, NULL or empty when none;
 * result_size: the full size of the reply whose first bytes result keeps,
 * since schema 4 on SQLite, 5 on MySQL, for issue 16's compensation
 * log). */
#define TM_STORE_CODEC_OP_COLUMNS                                              \
    "idx, slot, status, attempts, last_error, attempt_ms, finished_ms, late,"  \
    " recorded, result, result_size"
#define TM_STORE_CODEC_OP_NCOLS 11

/* The most columns any row above has. */
#define TM_STORE_CODEC_MAX_COLS 13

/* A transaction without branches from its row c[0..n). Returns 0 with
 * *out (the caller's: tm_trans_free), or -1 with err (too few columns, out
 * of memory). An options blob that does not decode leaves the defaults. */
int tm_store_codec_trans(const tm_store_codec_col_t *c, size_t n,
                         tm_trans_t **out, char *err, size_t errlen);

/* Append the branch of row c[0..n) to tx, its op slots from the row and
 * every op PENDING until its op row says otherwise. Rows must come in idx
 * order from 0: a gap means rows this code did not write. Returns 0 with
 * *out (the new branch, owned by tx, valid until the next append), or -1
 * with err; on -1 tx may hold a partly filled branch (free tx). */
int tm_store_codec_branch(tm_trans_t *tx, const tm_store_codec_col_t *c,
                          size_t n, tm_branch_t **out, char *err,
                          size_t errlen);

/* Apply the op row c[0..n) to tx's branches (load them first). A row for
 * a branch or slot tx does not have is skipped. Returns 0, or -1 with err
 * (too few columns, out of memory). */
int tm_store_codec_op(tm_trans_t *tx, const tm_store_codec_col_t *c, size_t n,
                      char *err, size_t errlen);

/* After the last op row: ops still pending in a finished transaction were
 * never called (the engine does not write them): mark them skipped. */
void tm_store_codec_finish(tm_trans_t *tx);

#endif /* TM_STORE_CODEC_H */
