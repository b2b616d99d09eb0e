/*
 * rest_url.c — TF Serving's REST URL grammar.
 *
 * Design: TF Serving matches three case-insensitive regexes, as full
 * matches, in this order:
 *   POST  /v1/models/NAME(/versions/DIGITS|/labels/LABEL)?:(classify|regress|predict)
 *   GET   /v1/models(/NAME)?(/versions/DIGITS|/labels/LABEL)?
 *   GET   /v1/models/NAME(/versions/DIGITS|/labels/LABEL)?/metadata
 * with NAME and LABEL = [^/:]+. Because NAME and LABEL cannot hold '/' or
 * ':', each pattern is matched deterministically segment by segment; the one
 * ambiguity (the optional NAME of the status pattern, "/v1/models/versions/3")
 * is handled by trying with and then without NAME, as the regex would.
 * NAME and LABEL are percent-decoded after matching. The path is read
 * through struct coffer_rd; a query string is cut off first.
 *
 * Invariants: I1 no byte outside the target is read. I2 any /v1/ path that
 * matches nothing gives "Malformed request: METHOD PATH".
 *
 * Trusts: nothing in the target.
 */
#include "serve_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct span {
    const uint8_t *p;
    size_t n;
};

/* Case-insensitive literal at the cursor; advances only on a match. */
static bool lit(struct coffer_rd *rd, const char *s)
{
    size_t n = strlen(s);
    if (coffer_rd_left(rd) < n || strncasecmp((const char *)rd->data + rd->pos, s, n) != 0)
        return false;
    rd->pos += n;
    return true;
}

/* [^/:]+ */
static bool segment(struct coffer_rd *rd, struct span *out)
{
    size_t start = rd->pos;
    while (rd->pos < rd->size && rd->data[rd->pos] != '/' && rd->data[rd->pos] != ':')
        rd->pos++;
    out->p = rd->data + start;
    out->n = rd->pos - start;
    return out->n > 0;
}

/* \d+ */
static bool digits(struct coffer_rd *rd, struct span *out)
{
    size_t start = rd->pos;
    while (rd->pos < rd->size && isdigit(rd->data[rd->pos]))
        rd->pos++;
    out->p = rd->data + start;
    out->n = rd->pos - start;
    return out->n > 0;
}

struct match {
    struct span name, version, label, verb;
};

/* (/versions/\d+|/labels/[^/:]+)? — optional; never fails, may match nothing. */
static void version_part(struct coffer_rd *rd, struct match *m)
{
    size_t save = rd->pos;
    if (lit(rd, "/versions/") && digits(rd, &m->version))
        return;
    rd->pos = save;
    memset(&m->version, 0, sizeof(m->version));
    if (lit(rd, "/labels/") && segment(rd, &m->label))
        return;
    rd->pos = save;
    memset(&m->label, 0, sizeof(m->label));
}

static bool match_predict(const uint8_t *p, size_t n, struct match *m)
{
    struct coffer_rd rd;
    coffer_rd_init(&rd, p, n);
    memset(m, 0, sizeof(*m));
    if (!lit(&rd, "/v1/models/") || !segment(&rd, &m->name))
        return false;
    version_part(&rd, m);
    if (!lit(&rd, ":"))
        return false;
    m->verb.p = rd.data + rd.pos;
    m->verb.n = coffer_rd_left(&rd);
    return lit(&rd, "classify") || lit(&rd, "regress") || lit(&rd, "predict") ? coffer_rd_left(&rd) == 0 : false;
}

static bool match_status(const uint8_t *p, size_t n, struct match *m)
{
    for (int with_name = 1; with_name >= 0; with_name--) {
        struct coffer_rd rd;
        coffer_rd_init(&rd, p, n);
        memset(m, 0, sizeof(*m));
        if (!lit(&rd, "/v1/models"))
            return false;
        if (with_name && !(lit(&rd, "/") && segment(&rd, &m->name)))
            continue;
        version_part(&rd, m);
        if (coffer_rd_left(&rd) == 0)
            return true;
        /* The regex could also have matched the optional part as nothing;
         * that only helps if the rest is empty, which it is not. */
    }
    return false;
}

static bool match_metadata(const uint8_t *p, size_t n, struct match *m)
{
    struct coffer_rd rd;
    coffer_rd_init(&rd, p, n);
    memset(m, 0, sizeof(*m));
    if (!lit(&rd, "/v1/models/") || !segment(&rd, &m->name))
        return false;
    version_part(&rd, m);
    return lit(&rd, "/metadata") && coffer_rd_left(&rd) == 0;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (uint8_t)tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode a span into a new string; *bad on a bad escape or a NUL
 * (raw or escaped). */
static enum coffer_err pct_decode(struct span s, char **out, bool *bad)
{
    *out = NULL;
    *bad = false;
    char *o = coffer_malloc(s.n + 1);
    if (o == NULL)
        return COFFER_E_NOMEM;
    struct coffer_rd rd;
    coffer_rd_init(&rd, s.p, s.n);
    size_t w = 0;
    uint8_t c;
    /* the end of the span is the loop's end, not a failed read (a failure
     * formats its message: a cost on every REST request) */
    while (coffer_rd_left(&rd) > 0 && coffer_rd_u8(&rd, &c) == COFFER_OK) {
        if (c == 0) {
            *bad = true; /* a raw NUL would cut the name short */
            break;
        }
        if (c == '%') {
            uint8_t h, l;
            if (coffer_rd_u8(&rd, &h) != COFFER_OK || coffer_rd_u8(&rd, &l) != COFFER_OK || hexval(h) < 0 ||
                hexval(l) < 0) {
                *bad = true;
                break;
            }
            c = (uint8_t)(hexval(h) << 4 | hexval(l));
            if (c == 0) {
                *bad = true;
                break;
            }
        }
        o[w++] = (char)c;
    }
    coffer_err_clear(); /* a %XX cut short failed a read: *bad is the answer, not that detail */
    if (*bad) {
        coffer_free(o);
        return COFFER_OK;
    }
    o[w] = '\0';
    *out = o;
    return COFFER_OK;
}

void coffer_serve_rest_route_free(struct coffer_serve_rest_route *r)
{
    if (r == NULL)
        return;
    coffer_free(r->name);
    coffer_free(r->label);
    memset(r, 0, sizeof(*r));
}

enum coffer_err coffer_serve_rest_route_parse(const char *method, const char *target, size_t target_len,
                                              struct coffer_serve_rest_route *out, struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    coffer_serve_status_clear(st);
    if (method == NULL)
        method = "";
    /* The path: up to '?' or '#'. */
    size_t n = 0;
    while (n < target_len && target[n] != '?' && target[n] != '#')
        n++;
    const uint8_t *p = (const uint8_t *)target;
    if (n < 4 || strncasecmp(target, "/v1/", 4) != 0)
        return COFFER_OK; /* kind NONE: not ours, the HTTP layer's 404 */

    struct match m;
    enum coffer_serve_rest_kind kind = COFFER_SERVE_REST_NONE;
    if (strcmp(method, "POST") == 0 && match_predict(p, n, &m)) {
        kind = strncasecmp((const char *)m.verb.p, "predict", 7) == 0  ? COFFER_SERVE_REST_PREDICT
               : strncasecmp((const char *)m.verb.p, "classify", 8) == 0 ? COFFER_SERVE_REST_CLASSIFY
                                                                          : COFFER_SERVE_REST_REGRESS;
    } else if (strcmp(method, "GET") == 0 && match_status(p, n, &m)) {
        kind = COFFER_SERVE_REST_STATUS;
    } else if (strcmp(method, "GET") == 0 && match_metadata(p, n, &m)) {
        kind = COFFER_SERVE_REST_METADATA;
    }
    if (kind == COFFER_SERVE_REST_NONE)
        return SERVE_INVALID(st, "Malformed request: %.64s %.*s", method, (int)(n > 1024 ? 1024 : n), target);
    if (kind == COFFER_SERVE_REST_STATUS && m.name.n == 0)
        return SERVE_INVALID(st, "Missing model name in request.");

    struct coffer_serve_rest_route r = {.kind = kind};
    if (m.version.n > 0) {
        /* \d+ that must fit int64 */
        int64_t v = 0;
        bool ok = true;
        for (size_t i = 0; i < m.version.n && ok; i++) {
            int d = m.version.p[i] - '0';
            ok = v <= (INT64_MAX - d) / 10;
            if (ok)
                v = v * 10 + d;
        }
        if (!ok)
            return SERVE_INVALID(st, "Failed to convert version: %.*s to numeric.", (int)(m.version.n > 64 ? 64 : m.version.n),
                                 (const char *)m.version.p);
        r.has_version = true;
        r.version = v;
    }
    bool bad = false;
    enum coffer_err e = pct_decode(m.name, &r.name, &bad);
    if (e == COFFER_OK && !bad && m.label.n > 0)
        e = pct_decode(m.label, &r.label, &bad);
    if (e != COFFER_OK) {
        coffer_serve_rest_route_free(&r);
        return coffer_serve__nomem(st);
    }
    if (bad) {
        coffer_serve_rest_route_free(&r);
        return SERVE_INVALID(st, "Malformed request: %.64s %.*s", method, (int)(n > 1024 ? 1024 : n), target);
    }
    *out = r;
    return COFFER_OK;
}
