/*
 * path.c — Gramine's path normalisation, for binding and checking paths.
 *
 * Design: split on '/', drop empty and "." parts, let ".." remove the part
 * before it, keep leading ".." in relative paths and drop it after the root
 * of an absolute one, join again. The result is never longer than the input.
 */
#include <string.h>

#include "pf_int.h"

/* see coffer/pf.h */
enum coffer_err coffer_pf_normalize_path(const char *in, char *out, size_t out_size)
{
    size_t len = strlen(in);
    if (out_size < len + 1)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "path buffer of %zu bytes is too small", out_size);
    bool absolute = in[0] == '/';
    size_t o = 0;    /* bytes written after the leading '/' (if any) */
    size_t base = 0; /* start of the part of out that ".." may not remove */
    char *w = out;
    if (absolute)
        *w++ = '/';
    size_t i = 0;
    while (i < len) {
        while (i < len && in[i] == '/')
            i++;
        size_t s = i;
        while (i < len && in[i] != '/')
            i++;
        size_t n = i - s;
        if (n == 0 || (n == 1 && in[s] == '.'))
            continue;
        if (n == 2 && in[s] == '.' && in[s + 1] == '.') {
            if (o > base) {
                /* remove the last part */
                size_t k = o;
                while (k > base && w[k - 1] != '/')
                    k--;
                o = k > base ? k - 1 : base;
                continue;
            }
            if (absolute)
                continue; /* "/.." is "/" */
            /* a leading ".." of a relative path stays, and cannot be removed */
            if (o > 0)
                w[o++] = '/';
            w[o++] = '.';
            w[o++] = '.';
            base = o;
            continue;
        }
        if (o > 0)
            w[o++] = '/';
        memcpy(w + o, in + s, n);
        o += n;
    }
    w[o] = '\0';
    return COFFER_OK;
}
