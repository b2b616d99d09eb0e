/*
 * status.c — canonical codes, their HTTP mapping, gRPC message truncation,
 * request limits, dtype tables and the signature checks TF applies to a
 * Predict request before it runs.
 *
 * Design: one status struct carries TF's canonical code and message beside
 * coffer's own error code, so the transport can answer exactly as TF
 * Serving does (gRPC status or REST {"error": ...}) while coffer's logs keep
 * the usual COFFER_FAIL detail. Tables are indexed by enum value and kept in
 * sync with static asserts.
 *
 * Invariants: I1 status messages are always NUL-terminated and never
 * overflow their buffer. I2 a gRPC message is at most 1024 bytes plus
 * "...TRUNCATED".
 *
 * Trusts: nothing from outside; names passed in are printed with %s only.
 */
#include "serve_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const code_names[COFFER_SERVE_CODE_COUNT] = {
    [COFFER_SERVE_OK] = "OK",
    [COFFER_SERVE_CANCELLED] = "CANCELLED",
    [COFFER_SERVE_UNKNOWN] = "UNKNOWN",
    [COFFER_SERVE_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
    [COFFER_SERVE_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
    [COFFER_SERVE_NOT_FOUND] = "NOT_FOUND",
    [COFFER_SERVE_ALREADY_EXISTS] = "ALREADY_EXISTS",
    [COFFER_SERVE_PERMISSION_DENIED] = "PERMISSION_DENIED",
    [COFFER_SERVE_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
    [COFFER_SERVE_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
    [COFFER_SERVE_ABORTED] = "ABORTED",
    [COFFER_SERVE_OUT_OF_RANGE] = "OUT_OF_RANGE",
    [COFFER_SERVE_UNIMPLEMENTED] = "UNIMPLEMENTED",
    [COFFER_SERVE_INTERNAL] = "INTERNAL",
    [COFFER_SERVE_UNAVAILABLE] = "UNAVAILABLE",
    [COFFER_SERVE_DATA_LOSS] = "DATA_LOSS",
    [COFFER_SERVE_UNAUTHENTICATED] = "UNAUTHENTICATED",
};
_Static_assert(COFFER_SERVE_UNAUTHENTICATED + 1 == COFFER_SERVE_CODE_COUNT, "code table");

const char *coffer_serve_code_name(enum coffer_serve_code code)
{
    if ((unsigned)code >= COFFER_SERVE_CODE_COUNT)
        return "UNKNOWN";
    return code_names[code];
}

int coffer_serve_code_http(enum coffer_serve_code code)
{
    switch (code) {
    case COFFER_SERVE_OK: return 200;
    case COFFER_SERVE_CANCELLED: return 499;
    case COFFER_SERVE_INVALID_ARGUMENT:
    case COFFER_SERVE_FAILED_PRECONDITION:
    case COFFER_SERVE_OUT_OF_RANGE: return 400;
    case COFFER_SERVE_DEADLINE_EXCEEDED: return 504;
    case COFFER_SERVE_NOT_FOUND: return 404;
    case COFFER_SERVE_ALREADY_EXISTS:
    case COFFER_SERVE_ABORTED: return 409;
    case COFFER_SERVE_PERMISSION_DENIED: return 403;
    case COFFER_SERVE_UNAUTHENTICATED: return 401;
    case COFFER_SERVE_RESOURCE_EXHAUSTED: return 429;
    case COFFER_SERVE_UNIMPLEMENTED: return 501;
    case COFFER_SERVE_UNAVAILABLE: return 503;
    case COFFER_SERVE_UNKNOWN:
    case COFFER_SERVE_INTERNAL:
    case COFFER_SERVE_DATA_LOSS: return 500;
    }
    return 500;
}

static enum coffer_err err_for_code(enum coffer_serve_code code)
{
    switch (code) {
    case COFFER_SERVE_OK: return COFFER_OK;
    case COFFER_SERVE_INVALID_ARGUMENT:
    case COFFER_SERVE_OUT_OF_RANGE: return COFFER_E_MALFORMED;
    case COFFER_SERVE_NOT_FOUND: return COFFER_E_NOT_FOUND;
    case COFFER_SERVE_ALREADY_EXISTS: return COFFER_E_EXISTS;
    case COFFER_SERVE_PERMISSION_DENIED:
    case COFFER_SERVE_UNAUTHENTICATED: return COFFER_E_DENIED;
    case COFFER_SERVE_RESOURCE_EXHAUSTED: return COFFER_E_TOO_LARGE;
    case COFFER_SERVE_FAILED_PRECONDITION: return COFFER_E_STATE;
    case COFFER_SERVE_UNIMPLEMENTED: return COFFER_E_UNSUPPORTED;
    case COFFER_SERVE_DEADLINE_EXCEEDED: return COFFER_E_TIMEOUT;
    case COFFER_SERVE_INTERNAL: return COFFER_E_INTERNAL;
    default: return COFFER_E_UNKNOWN;
    }
}

enum coffer_err coffer_serve_status_set(struct coffer_serve_status *st, enum coffer_serve_code code,
                                        const char *fmt, ...)
{
    char msg[COFFER_SERVE_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (st != NULL) {
        st->code = code;
        memcpy(st->message, msg, sizeof(msg));
    }
    enum coffer_err e = err_for_code(code);
    if (e == COFFER_OK)
        return COFFER_OK;
    return COFFER_FAIL(e, "%s: %s", coffer_serve_code_name(code), msg);
}

void coffer_serve_status_clear(struct coffer_serve_status *st)
{
    if (st != NULL) {
        st->code = COFFER_SERVE_OK;
        st->message[0] = '\0';
    }
}

enum coffer_err coffer_serve__nomem(struct coffer_serve_status *st)
{
    coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED, "out of memory");
    return COFFER_FAIL(COFFER_E_NOMEM, "serve: out of memory");
}

const char *coffer_serve_grpc_message(const char *msg, char *out, size_t out_size)
{
    if (out_size == 0)
        return out;
    size_t n = strlen(msg);
    if (n <= COFFER_SERVE_GRPC_MSG_MAX) {
        snprintf(out, out_size, "%s", msg);
        return out;
    }
    snprintf(out, out_size, "%.*s%s", COFFER_SERVE_GRPC_MSG_MAX, msg, COFFER_SERVE_GRPC_TRUNCATED);
    return out;
}

void coffer_serve_limits_default(struct coffer_serve_limits *lim)
{
    lim->max_message_size = (size_t)1 << 30;
    lim->max_tensor_size = (size_t)1 << 30;
    lim->max_total_size = (size_t)2 << 30;
    lim->max_tensors = 1024;
    lim->max_rank = COFFER_SERVE_MAX_RANK;
}

const struct coffer_serve_limits *coffer_serve__limits(const struct coffer_serve_limits *lim,
                                                       struct coffer_serve_limits *storage)
{
    if (lim != NULL)
        return lim;
    coffer_serve_limits_default(storage);
    return storage;
}

bool coffer_serve__dims_count(const int64_t *dims, size_t rank, size_t *count)
{
    size_t n = 1;
    for (size_t i = 0; i < rank; i++) {
        if (dims[i] < 0 || (uint64_t)dims[i] > SIZE_MAX || !coffer_size_mul(n, (size_t)dims[i], &n))
            return false;
    }
    *count = n;
    return true;
}

/* ------------------------------------------------------------------ dtypes */

struct dtype_row {
    const char *name;
    const char *enum_name;
    size_t size;
};

static const struct dtype_row dtypes[] = {
    [COFFER_SERVE_DT_FLOAT] = {"float", "DT_FLOAT", 4},
    [COFFER_SERVE_DT_DOUBLE] = {"double", "DT_DOUBLE", 8},
    [COFFER_SERVE_DT_INT32] = {"int32", "DT_INT32", 4},
    [COFFER_SERVE_DT_UINT8] = {"uint8", "DT_UINT8", 1},
    [COFFER_SERVE_DT_INT16] = {"int16", "DT_INT16", 2},
    [COFFER_SERVE_DT_INT8] = {"int8", "DT_INT8", 1},
    [COFFER_SERVE_DT_STRING] = {"string", "DT_STRING", 0},
    [COFFER_SERVE_DT_INT64] = {"int64", "DT_INT64", 8},
    [COFFER_SERVE_DT_BOOL] = {"bool", "DT_BOOL", 1},
    [COFFER_SERVE_DT_BFLOAT16] = {"bfloat16", "DT_BFLOAT16", 2},
    [COFFER_SERVE_DT_UINT16] = {"uint16", "DT_UINT16", 2},
    [COFFER_SERVE_DT_HALF] = {"half", "DT_HALF", 2},
    [COFFER_SERVE_DT_UINT32] = {"uint32", "DT_UINT32", 4},
    [COFFER_SERVE_DT_UINT64] = {"uint64", "DT_UINT64", 8},
};
#define DTYPE_ROWS (sizeof(dtypes) / sizeof(dtypes[0]))
_Static_assert(DTYPE_ROWS == COFFER_SERVE_DT_UINT64 + 1, "dtype table");

bool coffer_serve_dtype_supported(int dtype)
{
    return dtype > 0 && (size_t)dtype < DTYPE_ROWS && dtypes[dtype].name != NULL;
}

size_t coffer_serve_dtype_size(enum coffer_serve_dtype dt)
{
    return coffer_serve_dtype_supported((int)dt) ? dtypes[dt].size : 0;
}

const char *coffer_serve_dtype_name(enum coffer_serve_dtype dt)
{
    return coffer_serve_dtype_supported((int)dt) ? dtypes[dt].name : "invalid";
}

const char *coffer_serve_dtype_enum_name(enum coffer_serve_dtype dt)
{
    return coffer_serve_dtype_supported((int)dt) ? dtypes[dt].enum_name : "DT_INVALID";
}

const char *coffer_serve_model_state_name(enum coffer_serve_model_state s)
{
    switch (s) {
    case COFFER_SERVE_STATE_UNKNOWN: return "UNKNOWN";
    case COFFER_SERVE_STATE_START: return "START";
    case COFFER_SERVE_STATE_LOADING: return "LOADING";
    case COFFER_SERVE_STATE_AVAILABLE: return "AVAILABLE";
    case COFFER_SERVE_STATE_UNLOADING: return "UNLOADING";
    case COFFER_SERVE_STATE_END: return "END";
    }
    return "UNKNOWN";
}

/* -------------------------------------------------------------- signatures */

enum coffer_err coffer_serve_signature_find(const struct coffer_serve_signature *sigs, size_t count,
                                            const char *name, const struct coffer_serve_signature **out,
                                            struct coffer_serve_status *st)
{
    *out = NULL;
    if (name == NULL || name[0] == '\0')
        name = COFFER_SERVE_DEFAULT_SIGNATURE;
    for (size_t i = 0; i < count; i++) {
        if (sigs[i].key != NULL && strcmp(sigs[i].key, name) == 0) {
            *out = &sigs[i];
            return COFFER_OK;
        }
    }
    return coffer_serve_status_set(st, COFFER_SERVE_FAILED_PRECONDITION, "Serving signature key \"%s\" not found.",
                                   name);
}

bool coffer_serve_signature_takes_examples(const struct coffer_serve_signature *sig)
{
    const char *m = sig->method_name;
    return m != NULL && (strcmp(m, COFFER_SERVE_CLASSIFY_METHOD) == 0 || strcmp(m, COFFER_SERVE_REGRESS_METHOD) == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Append "{a,b}" of the sorted names to buf (cut at the buffer's end). */
static void put_set(char *buf, size_t size, const char **names, size_t n)
{
    size_t len = strlen(buf);
    len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "{");
    for (size_t i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "," : "", names[i]);
    if (len < size)
        snprintf(buf + len, size - len, "}");
}

enum coffer_err coffer_serve_signature_check_inputs(const struct coffer_serve_signature *sig,
                                                    const char *const *names, size_t count,
                                                    struct coffer_serve_status *st)
{
    size_t total = count + sig->input_count;
    const char **all = coffer_mallocarray(total ? total : 1, sizeof(*all));
    if (all == NULL)
        return coffer_serve__nomem(st);
    const char **sent = all, **want = all + count;
    for (size_t i = 0; i < count; i++)
        sent[i] = names[i];
    for (size_t i = 0; i < sig->input_count; i++)
        want[i] = sig->inputs[i].alias;
    qsort(sent, count, sizeof(*sent), cmp_str);
    qsort(want, sig->input_count, sizeof(*want), cmp_str);
    bool same = count == sig->input_count;
    for (size_t i = 0; same && i < count; i++)
        same = strcmp(sent[i], want[i]) == 0;
    if (same) {
        coffer_free(all);
        return COFFER_OK;
    }
    /* extra = sent - want, missing = want - sent (both sorted: merge). */
    const char **extra = coffer_mallocarray(total ? total : 1, sizeof(*extra));
    if (extra == NULL) {
        coffer_free(all);
        return coffer_serve__nomem(st);
    }
    size_t ne = 0, nm = 0, i = 0, j = 0;
    const char **missing = extra + count;
    while (i < count || j < sig->input_count) {
        int c = i >= count ? 1 : j >= sig->input_count ? -1 : strcmp(sent[i], want[j]);
        if (c < 0)
            extra[ne++] = sent[i++];
        else if (c > 0)
            missing[nm++] = want[j++];
        else
            i++, j++;
    }
    char msg[COFFER_SERVE_MSG_SIZE];
    snprintf(msg, sizeof(msg), "input size does not match signature: %zu!=%zu len(", count, sig->input_count);
    put_set(msg, sizeof(msg), sent, count);
    snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ") != len(");
    put_set(msg, sizeof(msg), want, sig->input_count);
    snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "). Sent extra: ");
    put_set(msg, sizeof(msg), extra, ne);
    snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ". Missing but required: ");
    put_set(msg, sizeof(msg), missing, nm);
    snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ".");
    coffer_free(extra);
    coffer_free(all);
    return SERVE_INVALID(st, "%s", msg);
}

enum coffer_err coffer_serve_signature_check_filter(const struct coffer_serve_signature *sig,
                                                    char *const *filter, size_t count,
                                                    struct coffer_serve_status *st)
{
    for (size_t i = 0; i < count; i++) {
        bool found = false;
        for (size_t k = 0; k < sig->output_count && !found; k++)
            found = strcmp(sig->outputs[k].alias, filter[i]) == 0;
        if (!found)
            return SERVE_INVALID(st, "output tensor alias not found in signature: %s", filter[i]);
        for (size_t k = 0; k < i; k++)
            if (strcmp(filter[k], filter[i]) == 0)
                return SERVE_INVALID(st, "duplicate output tensor alias: %s", filter[i]);
    }
    return COFFER_OK;
}
