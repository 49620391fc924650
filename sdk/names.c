/*
 * names.c — the lower-case names of Trellis's enums ("prepared", "saga",
 * "compensate", "pending"), as they appear in logs, in trellisctl output and
 * in the dtm-trans_type / dtm-op metadata values participants receive.
 *
 * Every function returns a static string and never NULL: a value outside
 * the enum (a newer trellisd, a corrupt reply) reads "unknown".
 */
#include "trellis/trellis.h"

const char *trellis_trans_status_name(trellis_trans_status_t s)
{
    switch (s) {
    case TRELLIS_TRANS_UNSPECIFIED:
        return "unspecified";
    case TRELLIS_TRANS_PREPARED:
        return "prepared";
    case TRELLIS_TRANS_SUBMITTED:
        return "submitted";
    case TRELLIS_TRANS_ABORTING:
        return "aborting";
    case TRELLIS_TRANS_SUCCEEDED:
        return "succeeded";
    case TRELLIS_TRANS_FAILED:
        return "failed";
    }
    return "unknown";
}

const char *trellis_mode_name(trellis_mode_t m)
{
    switch (m) {
    case TRELLIS_MODE_SAGA:
        return "saga";
    case TRELLIS_MODE_TCC:
        return "tcc";
    case TRELLIS_MODE_XA:
        return "xa";
    case TRELLIS_MODE_WORKFLOW:
        return "workflow";
    case TRELLIS_MODE_LOCAL:
        return "local";
    case TRELLIS_MODE_HOOKS:
        return "hooks";
    case TRELLIS_MODE_MSG:
        return "msg";
    case TRELLIS_MODE_MSG_CHECK:
        return "msg_check";
    case TRELLIS_MODE_EVENT:
        return "event";
    case TRELLIS_MODE_BRANCH_EVENT:
        return "branch_event";
    case TRELLIS_MODE_DTM_WORKFLOW:
        return "dtm_workflow";
    }
    return "unknown";
}

const char *trellis_op_name(trellis_op_t op)
{
    switch (op) {
    case TRELLIS_OP_ACTION:
        return "action";
    case TRELLIS_OP_COMPENSATE:
        return "compensate";
    case TRELLIS_OP_TRY:
        return "try";
    case TRELLIS_OP_CONFIRM:
        return "confirm";
    case TRELLIS_OP_CANCEL:
        return "cancel";
    case TRELLIS_OP_PREPARE:
        return "prepare";
    case TRELLIS_OP_COMMIT:
        return "commit";
    case TRELLIS_OP_ROLLBACK:
        return "rollback";
    case TRELLIS_OP_RESUME:
        return "resume";
    case TRELLIS_OP_QUERY_PREPARED:
        return "query_prepared";
    case TRELLIS_OP_NOTIFY:
        return "notify";
    }
    return "unknown";
}

const char *trellis_op_status_name(trellis_op_status_t s)
{
    switch (s) {
    case TRELLIS_OP_PENDING:
        return "pending";
    case TRELLIS_OP_SUCCEEDED:
        return "succeeded";
    case TRELLIS_OP_FAILED:
        return "failed";
    case TRELLIS_OP_SKIPPED:
        return "skipped";
    }
    return "unknown";
}
