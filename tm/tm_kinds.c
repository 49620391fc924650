/*
 * tm_kinds: the table of branch kinds (see tm_kind.h) and the lookups over
 * it. Registering a kind is one line in `kinds` below.
 */
#include <stdio.h>

#include "tm_kind.h"

extern const tm_kind_t tm_kind_saga;
extern const tm_kind_t tm_kind_tcc;
extern const tm_kind_t tm_kind_xa;
extern const tm_kind_t tm_kind_workflow;
extern const tm_kind_t tm_kind_local;
extern const tm_kind_t tm_kind_hooks;
extern const tm_kind_t tm_kind_msg;
extern const tm_kind_t tm_kind_msg_check;
extern const tm_kind_t tm_kind_event;
extern const tm_kind_t tm_kind_branch_event;
extern const tm_kind_t tm_kind_dtm_workflow;

static const tm_kind_t *const kinds[] = {
    &tm_kind_saga,         &tm_kind_tcc,          &tm_kind_xa,
    &tm_kind_workflow,     &tm_kind_local,        &tm_kind_hooks,
    &tm_kind_msg,          &tm_kind_msg_check,    &tm_kind_event,
    &tm_kind_branch_event, &tm_kind_dtm_workflow,
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

_Static_assert(N_KINDS <= TM_KINDS_MAX, "raise TM_KINDS_MAX");

const tm_kind_t *tm_kind_find(tm_mode_t mode)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i]->mode == mode)
            return kinds[i];
    return NULL;
}

const char *tm_kind_name(tm_mode_t mode)
{
    const tm_kind_t *k = tm_kind_find(mode);
    return k ? k->name : "unknown";
}

const char *tm_kind_trans_type(tm_mode_t mode)
{
    const tm_kind_t *k = tm_kind_find(mode);
    if (!k)
        return "unknown";
    return k->trans_type ? k->trans_type : k->name;
}

int tm_kind_slot_of(const tm_kind_t *k, tm_op_kind_t op, tm_slot_t *slot)
{
    if (op == TM_KIND_NONE)
        return -1;
    for (int s = 0; s < TM_SLOTS; s++)
        if (k->ops[s] == op) {
            *slot = (tm_slot_t)s;
            return 0;
        }
    return -1;
}

size_t tm_kind_count(void)
{
    return N_KINDS;
}

const tm_kind_t *tm_kind_at(size_t i)
{
    return i < N_KINDS ? kinds[i] : NULL;
}

const char *tm_kind_list_text(void)
{
    /* Built once; the table never changes. Racing first callers write
     * the same bytes. */
    static char text[256];
    if (text[0])
        return text;
    char buf[sizeof(text)];
    size_t n = 0;
    for (size_t i = 0; i < N_KINDS && n < sizeof(buf); i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s (%d)",
                              i == 0             ? ""
                              : i + 1 == N_KINDS ? " or "
                                                 : ", ",
                              kinds[i]->name, (int)kinds[i]->mode);
    snprintf(text, sizeof(text), "%s", buf);
    return text;
}
