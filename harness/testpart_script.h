/*
 * testpart_script: trellis-testpart's ops and the scripts that say how each
 * op answers (the grammar is in testpart.c's top comment). Pure: parsing
 * and picking the answer of the n-th call, no state.
 */
#ifndef TESTPART_SCRIPT_H
#define TESTPART_SCRIPT_H

#include <stddef.h>

#define N_OPS 10
#define MAX_STEPS 16

typedef enum { KIND_FORWARD, KIND_UNDO, KIND_CONFIRM } op_kind_t;

typedef struct {
    const char *method; /* after "/trellis.test.Part/" */
    const char *name;
    op_kind_t kind;
} testpart_op_t;

/* The ops, in the order of their numbers. */
extern const testpart_op_t OPS[N_OPS];

/* The completion listener's method: its payload is trellisd's
 * CompletionEvent (or a batch of them), not a script; --notify-script
 * scripts it instead. */
#define OP_NOTIFY 8
/* A message's back-check: answered from the gid's local transaction
 * (Control "commit"), not from a script. */
#define OP_QUERY_PREPARED 9

typedef enum { ANS_OK, ANS_FAIL, ANS_ONGOING, ANS_UNAVAIL } answer_t;

extern const char *const ANSWER_NAMES[4];

typedef struct {
    answer_t answer;
    int count;
    int sleep_ms; /* hang */
} counted_t;

/* What one op's script says. */
typedef struct {
    counted_t counted[MAX_STEPS];
    int n_counted;
    int terminal_fail;
    int slow_ms;
    int hold;          /* every call waits for the gid's release */
    const char *reply; /* reply:TEXT, into the payload; NULL: none */
    size_t reply_len;  /* TEXT's length, or replyn's N */
    int reply_digits;  /* replyn:N: N digits, not TEXT */
    const char *say;   /* say:TEXT, into the script; NULL: the default */
    size_t say_len;
} plan_t;

/* The plan op follows in script s[len] (its own clause, or the default
 * one). 0, or -1 when the script does not parse. p->reply points into s. */
int testpart_parse_script(const char *s, size_t len, int op, plan_t *p);

/* The answer for the call_n-th call (from 1); *sleep_ms gets the hang. */
answer_t testpart_plan_answer(const plan_t *p, int call_n, int *sleep_ms);

/* say:TEXT with %XX decoded, into out[len] (cut to fit; a decoded NUL
 * ends it). */
void testpart_say_text(const plan_t *p, char *out, size_t len);

#endif /* TESTPART_SCRIPT_H */
