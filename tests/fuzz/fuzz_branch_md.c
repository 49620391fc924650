/*
 * fuzz_branch_md: libFuzzer target for what a participant reads from a
 * branch call's metadata: the dtm-gid, dtm-trans_type, dtm-branch_id and
 * dtm-op fields and the branch headers (sdk/participant.c, ctx_build and
 * trellis_branch_ctx_header), and what the barrier and the XA adapter
 * make of them (trellis_barrier_branch_from_ctx, trellis_barrier_check_branch,
 * trellis_myxa_make_xid) before any SQL.
 *
 * Input, as text: the first line is the called method; every further line
 * is one metadata entry, "key=value" (split at the first '='; no '=' is a
 * key with an empty value). Entries gRPC would refuse to deliver (a key
 * outside [a-z0-9-_.], a non-binary value outside printable ASCII) are
 * dropped, as gRPC drops them: the parser is held to what can arrive.
 *
 * ctx_build is static in participant.c, so this file includes the source
 * (it then stands in for participant.o of libtrellis, which the linker
 * leaves out). That tests the code as it is, without a test-only API;
 * the cost is that a rename of server_call_t's fields there breaks this
 * build, which is where it should break.
 *
 * Invariants: the four fields come from the last entry of their key (or
 * are ""); the headers are exactly the entries that are not dtm-, grpc-,
 * pseudo (':') or binary ("-bin"), in order; every listed header is found
 * by trellis_branch_ctx_header and no dtm-* key is; an xid the adapter
 * builds fits TRELLIS_MYXA_XID_MAX and splits back into gid and branch id at
 * its last '-'; the compensation log is the last trellis-action-result-bin
 * entry's bytes, byte for byte (NULs too), and its full size never less
 * than its length.
 */
#include "participant.c"

#include "trellis/barrier.h"
#include "fuzz_input.h"
#include "trellis/mysql_xa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *key, *value;
    size_t key_len, value_len;
} entry_t;

/* What gRPC would deliver: a legal key, and a legal value unless the key
 * says binary (gRPC refuses the rest before any handler sees them). */
static int deliverable(const entry_t *e)
{
    grpc_slice k =
        grpc_slice_from_copied_buffer((const char *)e->key, e->key_len);
    grpc_slice v =
        grpc_slice_from_copied_buffer((const char *)e->value, e->value_len);
    int ok = grpc_header_key_is_legal(k) &&
             (grpc_is_binary_header(k) || grpc_header_nonbin_value_is_legal(v));
    grpc_slice_unref(k);
    grpc_slice_unref(v);
    return ok;
}

static size_t split_entries(fz_in_t *in, entry_t *out, size_t max)
{
    const uint8_t *line;
    size_t len, n = 0;
    while (n < max && fz_line(in, &line, &len)) {
        const uint8_t *eq = memchr(line, '=', len);
        size_t k = eq ? (size_t)(eq - line) : len;
        out[n].key = line;
        out[n].key_len = k;
        out[n].value = eq ? eq + 1 : line + len;
        out[n].value_len = eq ? len - k - 1 : 0;
        if (deliverable(&out[n]))
            n++;
    }
    return n;
}

static int key_is(const entry_t *e, const char *s)
{
    return e->key_len == strlen(s) && memcmp(e->key, s, e->key_len) == 0;
}

static int listed(const entry_t *e)
{
    grpc_slice k =
        grpc_slice_from_copied_buffer((const char *)e->key, e->key_len);
    int user = is_user_header(k);
    grpc_slice_unref(k);
    return user;
}

/* The value ctx_build should have taken for key: the last entry's, as a C
 * string (up to a NUL in it). */
static void check_field(const char *got, const entry_t *e, size_t n,
                        const char *key)
{
    const entry_t *last = NULL;
    for (size_t i = 0; i < n; i++)
        if (key_is(&e[i], key))
            last = &e[i];
    if (!last) {
        fz_require(got[0] == '\0', "a dtm field without its entry");
        return;
    }
    size_t c = strnlen((const char *)last->value, last->value_len);
    fz_require(strlen(got) == c && memcmp(got, last->value, c) == 0,
               "a dtm field is not its last entry's value");
}

static void check_headers(const trellis_branch_ctx_t *ctx, const entry_t *e,
                          size_t n)
{
    size_t h = 0;
    for (size_t i = 0; i < n; i++) {
        if (!listed(&e[i]))
            continue;
        fz_require(h < ctx->n_headers, "a header went missing");
        fz_require(memcmp(ctx->header_keys[h], e[i].key,
                          strlen(ctx->header_keys[h])) == 0,
                   "headers out of order");
        fz_require(trellis_branch_ctx_header(ctx, ctx->header_keys[h]) != NULL,
                   "a listed header is not found by its key");
        h++;
    }
    fz_require(h == ctx->n_headers, "more headers than entries");
    fz_require(trellis_branch_ctx_header(ctx, "dtm-gid") == NULL,
               "a dtm-* key listed as a header");
}

static void check_xid(const trellis_branch_ctx_t *ctx)
{
    char xid[256], err[256];
    if (trellis_myxa_make_xid(ctx->gid, ctx->branch_id, xid, sizeof(xid), err,
                              sizeof(err)) != 0) {
        fz_require(err[0] != '\0', "an xid refusal without a message");
        return;
    }
    size_t n = strlen(xid), g = strlen(ctx->gid);
    fz_require(n <= TRELLIS_MYXA_XID_MAX,
               "an xid longer than TRELLIS_MYXA_XID_MAX");
    const char *dash = strrchr(xid, '-');
    fz_require(dash && (size_t)(dash - xid) == g &&
                   strncmp(xid, ctx->gid, g) == 0 &&
                   strcmp(dash + 1, ctx->branch_id) == 0,
               "an xid does not split back at its last '-'");
}

static void check_barrier(const trellis_branch_ctx_t *ctx)
{
    char msg[256] = "";
    trellis_barrier_branch_t b = trellis_barrier_branch_from_ctx(ctx);
    if (trellis_barrier_check_branch(&b, msg, sizeof(msg)) != 0)
        fz_require(msg[0] != '\0', "a barrier refusal without a message");
}

/* The compensation log is the last trellis-action-result-bin entry's
 * bytes as they are; the full size is at least their length, and "cut"
 * means more. */
static void check_action_result(const trellis_branch_ctx_t *ctx,
                                const entry_t *e, size_t n)
{
    const entry_t *last = NULL;
    for (size_t i = 0; i < n; i++)
        if (key_is(&e[i], TRELLIS_ACTION_RESULT_HEADER))
            last = &e[i];
    size_t len;
    const uint8_t *log = trellis_branch_ctx_action_result(ctx, &len);
    size_t want = last ? last->value_len : 0;
    fz_require(len == want && (!want || memcmp(log, last->value, len) == 0),
               "the action result is not its last entry's bytes");
    uint64_t full;
    int cut = trellis_branch_ctx_action_result_cut(ctx, &full);
    fz_require(full >= len && cut == (full > len),
               "the action result's full size is less than its length");
}

static void run(server_call_t *sc, const entry_t *e, size_t n)
{
    ctx_storage_t cs;
    ctx_build(&cs, sc);
    const trellis_branch_ctx_t *ctx = &cs.ctx;
    check_field(ctx->gid, e, n, "dtm-gid");
    check_field(ctx->trans_type, e, n, "dtm-trans_type");
    check_field(ctx->branch_id, e, n, "dtm-branch_id");
    check_field(ctx->op, e, n, "dtm-op");
    check_headers(ctx, e, n);
    check_action_result(ctx, e, n);
    check_barrier(ctx);
    check_xid(ctx);
    ctx_release(&cs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { MAX_ENTRIES = 64 };
    fz_in_t in = fz_in(data, size);
    const uint8_t *method;
    size_t method_len;
    if (!fz_line(&in, &method, &method_len))
        return 0;
    entry_t e[MAX_ENTRIES];
    size_t n = split_entries(&in, e, MAX_ENTRIES);
    server_call_t sc;
    memset(&sc, 0, sizeof(sc));
    sc.details.method =
        grpc_slice_from_copied_buffer((const char *)method, method_len);
    grpc_metadata md[MAX_ENTRIES];
    memset(md, 0, sizeof(md));
    sc.request_md.count = n;
    sc.request_md.capacity = MAX_ENTRIES;
    sc.request_md.metadata = md;
    for (size_t i = 0; i < n; i++) {
        md[i].key =
            grpc_slice_from_copied_buffer((const char *)e[i].key, e[i].key_len);
        md[i].value = grpc_slice_from_copied_buffer((const char *)e[i].value,
                                                    e[i].value_len);
    }
    run(&sc, e, n);
    for (size_t i = 0; i < n; i++) {
        grpc_slice_unref(md[i].key);
        grpc_slice_unref(md[i].value);
    }
    grpc_slice_unref(sc.details.method);
    return 0;
}
