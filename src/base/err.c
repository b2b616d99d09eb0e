/*
 * err.c — error codes, their messages, and the detail of where a failure
 * started.
 *
 * Design: a failure is recorded once, where it starts (COFFER_FAIL), as a
 * per-thread detail string naming what was wrong; callers up the stack may
 * add context in front. Messages come from a designated-initializer table
 * checked against the enum by a static assertion.
 *
 * Invariants: I1 every code in enum coffer_err has a message and a name.
 * I2 the detail never holds secret values (callers' duty; reviewed).
 * Threading: detail is thread-local; the tables are constant.
 */
#include "coffer/base.h"

#include <stdio.h>
#include <string.h>

struct err_info {
    const char *name;
    const char *msg;
};

static const struct err_info err_table[COFFER_ERR_COUNT] = {
    [0] = {"OK", "success"},
    [-COFFER_E_UNKNOWN] = {"E_UNKNOWN", "unknown error"},
    [-COFFER_E_INVALID_ARG] = {"E_INVALID_ARG", "invalid argument"},
    [-COFFER_E_NOMEM] = {"E_NOMEM", "out of memory"},
    [-COFFER_E_TRUNCATED] = {"E_TRUNCATED", "input is truncated"},
    [-COFFER_E_TRAILING] = {"E_TRAILING", "unexpected trailing data"},
    [-COFFER_E_TOO_LARGE] = {"E_TOO_LARGE", "too large"},
    [-COFFER_E_MALFORMED] = {"E_MALFORMED", "malformed input"},
    [-COFFER_E_UNSUPPORTED] = {"E_UNSUPPORTED", "not supported"},
    [-COFFER_E_IO] = {"E_IO", "input/output error"},
    [-COFFER_E_NOT_FOUND] = {"E_NOT_FOUND", "not found"},
    [-COFFER_E_EXISTS] = {"E_EXISTS", "already exists"},
    [-COFFER_E_PERM] = {"E_PERM", "permission denied"},
    [-COFFER_E_CRYPTO] = {"E_CRYPTO", "crypto library error"},
    [-COFFER_E_AUTH] = {"E_AUTH", "MAC mismatch (wrong key or tampered data)"},
    [-COFFER_E_BAD_HEADER] = {"E_BAD_HEADER", "invalid header"},
    [-COFFER_E_BAD_VERSION] = {"E_BAD_VERSION", "invalid version"},
    [-COFFER_E_BAD_PATH] = {"E_BAD_PATH", "invalid path"},
    [-COFFER_E_CORRUPTED] = {"E_CORRUPTED", "file is corrupted"},
    [-COFFER_E_PATH_TOO_LONG] = {"E_PATH_TOO_LONG", "path is too long"},
    [-COFFER_E_JSON] = {"E_JSON", "invalid JSON"},
    [-COFFER_E_SIGNATURE] = {"E_SIGNATURE", "signature verification failed"},
    [-COFFER_E_CERT] = {"E_CERT", "certificate verification failed"},
    [-COFFER_E_POLICY] = {"E_POLICY", "rejected by policy"},
    [-COFFER_E_EXPIRED] = {"E_EXPIRED", "outside validity period"},
    [-COFFER_E_REVOKED] = {"E_REVOKED", "revoked"},
    [-COFFER_E_STATE] = {"E_STATE", "not allowed in the current state"},
    [-COFFER_E_TIMEOUT] = {"E_TIMEOUT", "timed out"},
    [-COFFER_E_NET] = {"E_NET", "network error"},
    [-COFFER_E_DENIED] = {"E_DENIED", "access denied"},
    [-COFFER_E_INTERNAL] = {"E_INTERNAL", "internal error"},
    [-COFFER_E_SHAPE] = {"E_SHAPE", "shape mismatch"},
    [-COFFER_E_RANGE] = {"E_RANGE", "out of range"},
};
_Static_assert(-COFFER_E_RANGE == COFFER_ERR_COUNT - 1, "err_table must cover every code");

static const struct err_info *err_lookup(enum coffer_err err)
{
    int idx = -(int)err;
    if (idx < 0 || idx >= COFFER_ERR_COUNT || err_table[idx].msg == NULL)
        return &err_table[-COFFER_E_UNKNOWN];
    return &err_table[idx];
}

const char *coffer_strerror(enum coffer_err err) { return err_lookup(err)->msg; }
const char *coffer_err_name(enum coffer_err err) { return err_lookup(err)->name; }

#define DETAIL_SIZE 512
static _Thread_local char detail[DETAIL_SIZE];

enum coffer_err coffer_fail_at(enum coffer_err err, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (coffer_log_get_level() <= COFFER_LOG_DEBUG) {
        const char *base = strrchr(file, '/');
        coffer_debug("%s at %s:%d: %s", coffer_err_name(err), base ? base + 1 : file, line, detail);
    }
    return err;
}

const char *coffer_err_detail(void) { return detail; }
void coffer_err_clear(void) { detail[0] = '\0'; }

void coffer_err_context(const char *fmt, ...)
{
    char prefix[DETAIL_SIZE];
    char old[DETAIL_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, detail, sizeof(old));
    int n;
    if (old[0] != '\0')
        n = snprintf(detail, sizeof(detail), "%s: %s", prefix, old);
    else
        n = snprintf(detail, sizeof(detail), "%s", prefix);
    (void)n; /* a detail longer than the buffer is cut, by design */
}

const char *coffer_err_format(enum coffer_err err, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    int n;
    if (detail[0] != '\0')
        n = snprintf(buf, size, "%s: %s", coffer_strerror(err), detail);
    else
        n = snprintf(buf, size, "%s", coffer_strerror(err));
    (void)n; /* cut to the caller's buffer, by design */
    return buf;
}
