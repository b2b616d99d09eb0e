/*
 * model_dir.c — TF Serving's model base-path layout and version policies.
 *
 * Design: BASE/<version>/model.onnx, where <version> is a folder whose name
 * is a decimal int64 (TF Serving's file-system storage path source). The
 * scan lists BASE once, keeps folders with all-digit names that fit int64,
 * ignores everything else (files, "tmp", "1a", hidden entries), and sorts
 * newest first. The policy then picks: latest N (default 1), all, or the
 * listed specific versions that exist.
 *
 * coffer_serve_version_resolve picks the version a request gets from the
 * registry's view (states, labels), with TF's NOT_FOUND / label messages.
 *
 * Invariants: I1 results are sorted newest first, without duplicates.
 * I2 the number of entries kept is capped (COFFER_SERVE_MAX_VERSIONS).
 *
 * Trusts: the file system only for names and types; it reads no model.
 */
#include "serve_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COFFER_SERVE_MAX_VERSIONS 65536

static bool parse_version(const char *s, int64_t *out)
{
    if (s[0] == '\0')
        return false;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

enum coffer_err coffer_serve_model_versions_scan(const char *base, int64_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    int dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return COFFER_FAIL(COFFER_E_NOT_FOUND, "model base path %s: %s", base, strerror(e));
        return COFFER_FAIL(e == EACCES ? COFFER_E_PERM : COFFER_E_IO, "model base path %s: %s", base, strerror(e));
    }
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return COFFER_FAIL(COFFER_E_IO, "model base path %s: %s", base, strerror(errno));
    }
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    enum coffer_err r = COFFER_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t ver;
        if (!parse_version(de->d_name, &ver))
            continue;
        struct stat sb;
        if (fstatat(dfd, de->d_name, &sb, 0) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (n == COFFER_SERVE_MAX_VERSIONS) {
            r = COFFER_FAIL(COFFER_E_TOO_LARGE, "model base path %s: more than %d versions", base,
                            COFFER_SERVE_MAX_VERSIONS);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            int64_t *nv = coffer_realloc(v, nc * sizeof(*nv));
            if (nv == NULL) {
                r = COFFER_E_NOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        v[n++] = ver;
    }
    closedir(d);
    if (r != COFFER_OK) {
        coffer_free(v);
        return r;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_desc);
    /* "007" and "7" are the same version: keep one. */
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (w == 0 || v[w - 1] != v[i])
            v[w++] = v[i];
    if (w == 0) {
        coffer_free(v);
        v = NULL;
    }
    *out = v;
    *count = w;
    return COFFER_OK;
}

enum coffer_err coffer_serve_version_policy_apply(const struct coffer_serve_version_policy *p, const int64_t *available,
                                                  size_t count, int64_t **out, size_t *out_count)
{
    *out = NULL;
    *out_count = 0;
    if (count == 0)
        return COFFER_OK;
    int64_t *v = coffer_mallocarray(count, sizeof(*v));
    if (v == NULL)
        return COFFER_E_NOMEM;
    size_t n = 0;
    switch (p->kind) {
    case COFFER_SERVE_POLICY_LATEST: {
        size_t keep = p->num_versions ? p->num_versions : 1;
        for (size_t i = 0; i < count && n < keep; i++)
            v[n++] = available[i];
        break;
    }
    case COFFER_SERVE_POLICY_ALL:
        for (size_t i = 0; i < count; i++)
            v[n++] = available[i];
        break;
    case COFFER_SERVE_POLICY_SPECIFIC:
        for (size_t i = 0; i < count; i++)
            for (size_t k = 0; k < p->version_count; k++)
                if (p->versions[k] == available[i]) {
                    v[n++] = available[i];
                    break;
                }
        break;
    default:
        coffer_free(v);
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "version policy kind %d", (int)p->kind);
    }
    if (n == 0) {
        coffer_free(v);
        return COFFER_OK;
    }
    *out = v;
    *out_count = n;
    return COFFER_OK;
}

enum coffer_err coffer_serve_version_resolve(const char *model, const struct coffer_serve_version_status *versions,
                                             size_t count, const struct coffer_serve_version_label *labels,
                                             size_t label_count, bool has_version, int64_t version, const char *label,
                                             int64_t *out, struct coffer_serve_status *st)
{
    *out = 0;
    coffer_serve_status_clear(st);
    if (label != NULL) {
        size_t i = 0;
        while (i < label_count && strcmp(labels[i].label, label) != 0)
            i++;
        if (i == label_count)
            return SERVE_INVALID(st, "Unrecognized servable version label: %.512s", label);
        has_version = true;
        version = labels[i].version;
    }
    if (has_version) {
        for (size_t i = 0; i < count; i++) {
            if (versions[i].version == version && versions[i].state == COFFER_SERVE_STATE_AVAILABLE) {
                *out = version;
                return COFFER_OK;
            }
        }
        return coffer_serve_status_set(st, COFFER_SERVE_NOT_FOUND, "Servable not found for request: Specific(%.512s, %lld)",
                                       model, (long long)version);
    }
    bool found = false;
    int64_t best = 0;
    for (size_t i = 0; i < count; i++) {
        if (versions[i].state == COFFER_SERVE_STATE_AVAILABLE && (!found || versions[i].version > best)) {
            best = versions[i].version;
            found = true;
        }
    }
    if (!found)
        return coffer_serve_status_set(st, COFFER_SERVE_NOT_FOUND, "Servable not found for request: Latest(%.512s)",
                                       model);
    *out = best;
    return COFFER_OK;
}
