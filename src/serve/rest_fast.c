/*
 * rest_fast.c — a fast path for the common REST :predict body: one float
 * (or double) input given as a dense nested list of plain JSON numbers,
 *   {"instances": [[0.1, 0.2, ...], ...]}  or  {"inputs": [[...], ...]}
 * optionally with a plain "signature_name".
 *
 * Design: the general parser (rest_predict.c) builds a jansson tree, one
 * allocated node per number, and converts it; for a 784-float image that is
 * most of a request's cost. This path reads the bytes once through
 * struct coffer_rd, checking the shape (every list at a depth has the length
 * of the first one there, numbers only at the deepest level) and collecting
 * the numbers as doubles (a buffer bounded by the body's size), which go into
 * the tensor once the signature is known. Anything else
 * (other keys, objects, strings with escapes, NaN/Infinity, empty lists,
 * numbers that jansson would refuse, bodies over the limits, several inputs,
 * other dtypes) returns COFFER_E_UNSUPPORTED and the caller runs the general
 * parser, so every error message and every unusual form keeps exactly one
 * implementation.
 *
 * Numbers: the result must equal jansson's (strtod, then (float) for float
 * inputs). A decimal with at most 19 significant digits whose mantissa is at
 * most 2^53 and whose power of ten is within ±22 is converted exactly as
 * mantissa × 10^e or mantissa / 10^-e (both exact operands, one correctly
 * rounded operation: Clinger's fast path, the same double strtod gives);
 * other numbers go through strtod itself. Integers are converted as jansson
 * does, through int64 (integers outside int64 fall back: jansson refuses them).
 * The innermost lists' numbers (scan_numbers) skip the division where only
 * the float matters: m × RN(10^-e) is within 2 ulps of m / 10^e, and rounds
 * to the same float unless a float rounding boundary is that close, where
 * they divide; a double input has its numbers read again, dividing.
 *
 * Invariants: I1 nothing is allocated before the shape is known and checked
 * against the limits. I2 nesting is bounded by the rank cap. I3 on any
 * return but COFFER_OK the caller owns nothing.
 * Trusts: nothing in the body.
 */
#include "serve_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FALLBACK COFFER_E_UNSUPPORTED

static bool peek(const struct coffer_rd *rd, uint8_t *c)
{
    if (coffer_rd_left(rd) == 0)
        return false;
    *c = rd->data[rd->pos];
    return true;
}

static void skip_ws(struct coffer_rd *rd)
{
    uint8_t c;
    while (peek(rd, &c) && (c == ' ' || c == '\t' || c == '\n' || c == '\r'))
        rd->pos++;
}

static bool eat(struct coffer_rd *rd, uint8_t want)
{
    uint8_t c;
    skip_ws(rd);
    if (!peek(rd, &c) || c != want)
        return false;
    rd->pos++;
    return true;
}

/* A plain string (printable ASCII, no escapes) into buf. */
static bool plain_string(struct coffer_rd *rd, char *buf, size_t size)
{
    if (!eat(rd, '"'))
        return false;
    size_t n = 0;
    uint8_t c;
    while (coffer_rd_u8(rd, &c) == COFFER_OK) {
        if (c == '"') {
            buf[n] = '\0';
            return true;
        }
        if (c < 0x20 || c > 0x7e || c == '\\' || n + 1 >= size)
            return false;
        buf[n++] = (char)c;
    }
    return false;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* 10^-k rounded to nearest (the compiler's conversion of the literal) */
static const double pow10_neg[] = {1e0,   1e-1,  1e-2,  1e-3,  1e-4,  1e-5,  1e-6,  1e-7,  1e-8, 1e-9,
                                   1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15, 1e-16, 1e-17, 1e-18};

static bool is_digit(uint8_t c) { return (unsigned)(c - '0') <= 9; }

/* One JSON number (strict grammar) as jansson would give it. The bytes are
 * walked with a pointer bounded by the reader's end (this loop is most of a
 * REST predict's parsing), and rd moves past the number. */
static bool number(struct coffer_rd *rd, double *out)
{
    skip_ws(rd);
    const uint8_t *p = rd->data + rd->pos, *end = rd->data + rd->size, *start = p;
    bool neg = false, frac_or_exp = false;
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p == end || !is_digit(*p))
        return false;
    if (*p == '0') {
        p++;
    } else {
        /* the first digit is not 0: every digit here is significant */
        for (; p < end && is_digit(*p); p++) {
            if (digits < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                digits++;
            } else {
                exp10++;
                digits = 20; /* too many significant digits for the fast path */
            }
        }
    }
    if (p < end && *p == '.') {
        frac_or_exp = true;
        p++;
        if (p == end || !is_digit(*p))
            return false;
        for (; p < end && is_digit(*p); p++) {
            if (digits < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                exp10--;
                if (m != 0)
                    digits++;
            } else {
                digits = 20;
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        frac_or_exp = true;
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p == end || !is_digit(*p))
            return false;
        int e = 0;
        for (; p < end && is_digit(*p); p++)
            if (e < 100000)
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    rd->pos = (size_t)(p - rd->data);
    size_t len = (size_t)(p - start);
    if (!frac_or_exp) {
        /* jansson: an integer, through json_int_t (int64); outside it, an error */
        if (digits > 18 || exp10 != 0) {
            char buf[32];
            if (len >= sizeof(buf))
                return false;
            memcpy(buf, start, len);
            buf[len] = '\0';
            errno = 0;
            long long v = strtoll(buf, NULL, 10);
            if (errno == ERANGE)
                return false;
            *out = (double)v;
            return true;
        }
        int64_t iv = neg ? -(int64_t)m : (int64_t)m; /* "-0" is the integer 0, so +0.0, as in jansson */
        *out = (double)iv;
        return true;
    }
    if (digits <= 19 && m <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m;
        v = exp10 >= 0 ? v * pow10_exact[exp10] : v / pow10_exact[-exp10];
        *out = neg ? -v : v;
        return true;
    }
    /* strtod, as jansson does (the C locale: '.' is the decimal point) */
    char buf[128];
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, start, len);
    buf[len] = '\0';
    errno = 0;
    double v = strtod(buf, NULL);
    if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
        return false; /* jansson: "real number overflow" */
    *out = v;
    return true;
}

struct shape {
    size_t rank;      /* 0 until the first number is seen */
    bool rank_known;
    int64_t dims[COFFER_SERVE_MAX_RANK];
    bool dim_known[COFFER_SERVE_MAX_RANK];
    size_t max_rank;
    struct coffer_buf values; /* the numbers as doubles, in order */
    bool exact;  /* every value exactly strtod's (a double input needs it) */
    bool approx; /* some value within 2 ulps of strtod's, same float (scan_numbers) */
};

/* Append one number to the shape's values. */
static bool put_value(struct shape *s, double v)
{
    if (s->values.size + sizeof(v) <= s->values.cap) { /* the common case, without a call */
        memcpy(s->values.data + s->values.size, &v, sizeof(v));
        s->values.size += sizeof(v);
        return true;
    }
    return coffer_buf_put(&s->values, &v, sizeof(v)) == COFFER_OK;
}

/* The numbers of a list at the deepest depth, from its first element (rd
 * there, after any whitespace) through its ']', counted in *count. This is
 * most of a large body's parse, so the common form is read inline with a
 * pointer bounded by the body's end: an optional '-', at most 18 digits in
 * all (no leading zero), an optional fraction, no exponent, ", " or ","
 * between. Its value is number()'s: an integer through int64, a fraction
 * whose digits fit 2^53 as m / 10^digits (Clinger's fast path; at most 18
 * digits, so every digit is counted as number() counts the significant ones,
 * and m is the same). Any other number goes through number(), any other
 * spacing through skip_ws. */
static bool scan_numbers(struct coffer_rd *rd, struct shape *s, int64_t *count)
{
    const uint8_t *p = rd->data + rd->pos, *end = rd->data + rd->size;
    int64_t n = 0;
    for (;;) {
        const uint8_t *q = p, *ds;
        bool neg = q < end && *q == '-';
        q += neg;
        ds = q;
        uint64_t m = 0; /* wraps past 20 digits, which are not taken here */
        unsigned d;
        while (q < end && (d = (unsigned)(*q - '0')) <= 9) {
            m = m * 10 + d;
            q++;
        }
        size_t ni = (size_t)(q - ds), nf = 0;
        bool ok = ni == 1 || (ni > 1 && *ds != '0'), frac = false;
        if (ok && q < end && *q == '.') {
            const uint8_t *fs = ++q;
            while (q < end && (d = (unsigned)(*q - '0')) <= 9) {
                m = m * 10 + d;
                q++;
            }
            nf = (size_t)(q - fs);
            frac = true;
            ok = nf > 0 && m <= (1ull << 53);
        }
        ok = ok && ni + nf <= 18 && !(q < end && (*q == 'e' || *q == 'E'));
        double v;
        if (ok) {
            if (frac) {
                /* m / 10^nf correctly rounded takes a division, which was a
                 * third of this loop's time; m × RN(10^-nf) is within 2 ulps
                 * of it (two roundings, each half an ulp, and RN(10^-nf)'s
                 * half). Two doubles that close round to different floats
                 * only when a float rounding boundary (the bits below a
                 * float's 24, 0x10000000 of 29) lies between them: there
                 * and where the double input needs strtod's value, divide. */
                double a = (double)m * pow10_neg[nf];
                uint64_t bits;
                memcpy(&bits, &a, sizeof(bits));
                uint64_t below = bits & ((UINT64_C(1) << 29) - 1);
                if (s->exact || below - ((UINT64_C(1) << 28) - 4) <= 8)
                    a = (double)m / pow10_exact[nf];
                else
                    s->approx = true;
                v = neg ? -a : a;
            } else {
                v = (double)(neg ? -(int64_t)m : (int64_t)m); /* "-0" is the integer 0, as in number() */
            }
            p = q;
        } else {
            rd->pos = (size_t)(p - rd->data);
            if (!number(rd, &v))
                return false;
            p = rd->data + rd->pos;
        }
        if (!put_value(s, v))
            return false;
        n++;
        if (p < end && *p == ',') {
            p++;
            if (p < end && *p == ' ')
                p++;
            if (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
                rd->pos = (size_t)(p - rd->data);
                skip_ws(rd);
                p = rd->data + rd->pos;
            }
            continue;
        }
        rd->pos = (size_t)(p - rd->data);
        uint8_t c;
        skip_ws(rd);
        if (!peek(rd, &c))
            return false;
        rd->pos++;
        if (c == ']') {
            *count = n;
            return true;
        }
        if (c != ',')
            return false;
        skip_ws(rd);
        p = rd->data + rd->pos;
    }
}

/* Check a list at depth (its '[' not yet read) against the shape. */
static bool scan_list(struct coffer_rd *rd, struct shape *s, size_t depth)
{
    if (depth >= s->max_rank || !eat(rd, '['))
        return false;
    int64_t n = 0;
    uint8_t c;
    for (;;) {
        skip_ws(rd);
        if (!peek(rd, &c))
            return false;
        if (c == '[') {
            if (s->rank_known && depth + 1 >= s->rank)
                return false; /* a list where numbers belong */
            if (!scan_list(rd, s, depth + 1))
                return false;
        } else {
            /* numbers: this is the deepest depth (a first number sets it) */
            if (s->rank_known && s->rank != depth + 1)
                return false;
            s->rank = depth + 1;
            s->rank_known = true;
            if (!scan_numbers(rd, s, &n))
                return false;
            break; /* its ']' read */
        }
        n++;
        skip_ws(rd);
        if (!peek(rd, &c))
            return false;
        rd->pos++;
        if (c == ']')
            break;
        if (c != ',')
            return false;
    }
    if (!s->dim_known[depth]) {
        s->dims[depth] = n;
        s->dim_known[depth] = true;
    }
    return s->dims[depth] == n;
}

/* The top-level object: its keys, the value's shape and numbers. */
static enum coffer_err scan(struct coffer_rd *rd, struct shape *s, char *key, size_t key_size, char *sig_name,
                            size_t sig_size, enum coffer_serve_rest_format *format)
{
    bool have_sig = false;
    *format = 0;
    if (!eat(rd, '{'))
        return FALLBACK;
    for (;;) {
        if (!plain_string(rd, key, key_size) || !eat(rd, ':'))
            return FALLBACK;
        if (strcmp(key, "signature_name") == 0 && !have_sig) {
            if (!plain_string(rd, sig_name, sig_size))
                return FALLBACK;
            have_sig = true;
        } else if ((strcmp(key, "instances") == 0 || strcmp(key, "inputs") == 0) && *format == 0) {
            *format = key[2] == 's' ? COFFER_SERVE_REST_ROW : COFFER_SERVE_REST_COLUMNAR;
            if (!scan_list(rd, s, 0) || !s->rank_known)
                return FALLBACK;
        } else {
            return FALLBACK; /* other keys, duplicates: the general parser judges */
        }
        if (eat(rd, '}'))
            break;
        if (!eat(rd, ','))
            return FALLBACK;
    }
    skip_ws(rd);
    if (*format == 0 || coffer_rd_expect_end(rd) != COFFER_OK)
        return FALLBACK;
    return COFFER_OK;
}

/* The request from a scanned body, if the signature is the simple kind. */
static enum coffer_err build(const struct shape *s, const struct coffer_serve_signature *sigs, size_t sig_count,
                             const struct coffer_serve_limits *lim, const char *sig_name,
                             enum coffer_serve_rest_format format, struct coffer_serve_rest_predict *out)
{
    const struct coffer_serve_signature *sig;
    struct coffer_serve_status st;
    if (coffer_serve_signature_find(sigs, sig_count, sig_name, &sig, &st) != COFFER_OK || sig->input_count != 1 ||
        (sig->inputs[0].dtype != COFFER_SERVE_DT_FLOAT && sig->inputs[0].dtype != COFFER_SERVE_DT_DOUBLE))
        return FALLBACK;
    size_t count, bytes;
    if (!coffer_serve__dims_count(s->dims, s->rank, &count) || count * sizeof(double) != s->values.size ||
        !coffer_size_mul(count, coffer_serve_dtype_size(sig->inputs[0].dtype), &bytes) ||
        bytes > lim->max_tensor_size || bytes > lim->max_total_size || lim->max_tensors < 1)
        return FALLBACK;
    struct coffer_serve_rest_predict res = {.format = format, .signature = sig};
    res.signature_name = coffer_strdup(sig_name);
    res.inputs = coffer_calloc(1, sizeof(*res.inputs));
    if (res.signature_name == NULL || res.inputs == NULL ||
        coffer_serve_tensor_init(&res.inputs[0], sig->inputs[0].alias, sig->inputs[0].dtype, s->rank, s->dims) !=
            COFFER_OK) {
        coffer_free(res.signature_name);
        coffer_free(res.inputs);
        return COFFER_E_NOMEM;
    }
    res.input_count = 1;
    struct coffer_serve_tensor *t = &res.inputs[0];
    if (t->dtype == COFFER_SERVE_DT_DOUBLE) {
        memcpy(t->data, s->values.data, bytes);
    } else {
        for (size_t i = 0; i < count; i++) {
            double v;
            memcpy(&v, s->values.data + 8 * i, 8);
            float f = (float)v;
            memcpy((uint8_t *)t->data + 4 * i, &f, 4);
        }
    }
    *out = res;
    return COFFER_OK;
}

/* Whether the signature sig_name takes one double input (which takes the
 * exact values). */
static bool double_input(const struct coffer_serve_signature *sigs, size_t sig_count, const char *sig_name)
{
    const struct coffer_serve_signature *sig;
    struct coffer_serve_status st;
    return coffer_serve_signature_find(sigs, sig_count, sig_name, &sig, &st) == COFFER_OK && sig->input_count == 1 &&
           sig->inputs[0].dtype == COFFER_SERVE_DT_DOUBLE;
}

/* see serve_int.h */
enum coffer_err coffer_serve__rest_predict_fast(const void *body, size_t size,
                                                const struct coffer_serve_signature *sigs, size_t sig_count,
                                                const struct coffer_serve_limits *lim,
                                                struct coffer_serve_rest_predict *out)
{
    memset(out, 0, sizeof(*out));
    if (size > lim->max_message_size)
        return FALLBACK;
    struct coffer_rd rd;
    coffer_rd_init(&rd, body, size);
    char key[32], sig_name[256] = "";
    enum coffer_serve_rest_format format;
    struct shape s = {.max_rank = lim->max_rank < COFFER_SERVE_MAX_RANK ? lim->max_rank : COFFER_SERVE_MAX_RANK};
    /* every number takes two bytes of the body at least ("1,"): 4 × size
     * bounds the doubles */
    coffer_buf_init(&s.values, size * 4 + 8, false);
    /* room for a small body's numbers at once (not doubled up from 64
     * bytes: eight reallocations for a 784-float image); a big body's
     * grow as they are found */
    size_t first = size * 4 + 8 < ((size_t)1 << 20) ? size * 4 + 8 : (size_t)1 << 20;
    if (coffer_buf_reserve(&s.values, first) != COFFER_OK)
        return COFFER_E_NOMEM;
    enum coffer_err r = scan(&rd, &s, key, sizeof(key), sig_name, sizeof(sig_name), &format);
    if (r == COFFER_OK && s.approx && double_input(sigs, sig_count, sig_name)) {
        /* a double input takes strtod's values: read the numbers again,
         * dividing (the shape is the same) */
        struct coffer_buf kept = s.values;
        s = (struct shape){.max_rank = s.max_rank, .values = kept, .exact = true};
        s.values.size = 0;
        coffer_rd_init(&rd, body, size);
        r = scan(&rd, &s, key, sizeof(key), sig_name, sizeof(sig_name), &format);
    }
    if (r == COFFER_OK)
        r = build(&s, sigs, sig_count, lim, sig_name, format, out);
    coffer_buf_free(&s.values);
    return r;
}
