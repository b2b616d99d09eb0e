/*
 * rest_json.c — JSON that the REST API writes: the error body, the model
 * status and model metadata documents, and the string and number writers
 * that the predict response shares.
 *
 * Design: written by hand into a capped coffer_buf rather than through
 * jansson, for three reasons: TF's number format (NaN/Infinity tokens,
 * ".0" on whole numbers, shortest round-tripping precision) is not
 * jansson's; names that came from a URL may be any bytes, and are written
 * as valid JSON whatever they are; and field order follows the proto, as
 * TF's printer does. Status and metadata follow the proto3 JSON mapping:
 * int64 as strings, enums by name, default values printed.
 *
 * Invariants: I1 every document written is valid JSON and valid UTF-8
 * (except the NaN/Infinity tokens, which TF clients expect). I2 no output
 * exceeds SERVE_JSON_MAX.
 *
 * Trusts: the caller's structs (signatures and statuses come from the
 * model registry, not from clients).
 */
#include "serve_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    uint32_t cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

enum coffer_err coffer_serve__json_string(struct coffer_buf *b, const void *s, size_t n)
{
    const uint8_t *p = s;
    enum coffer_err r = coffer_buf_put_u8(b, '"');
    size_t i = 0;
    while (r == COFFER_OK && i < n) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            r = coffer_buf_put(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            r = named ? coffer_buf_put(b, named, 2) : coffer_buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t len = utf8_seq(p + i, n - i);
            if (len == 0) {
                r = coffer_buf_put(b, "\\ufffd", 6);
                i++;
            } else {
                r = coffer_buf_put(b, p + i, len);
                i += len;
            }
        }
    }
    if (r == COFFER_OK)
        r = coffer_buf_put_u8(b, '"');
    return r;
}

/* ---- floats without printf
 *
 * A float is M × 2^E (M < 2^24). For E >= 0, and for -44 <= E < 0 (|f| >=
 * 2^-21), f × 10^k is the integer N = M << E (k = 0) or M × 5^k (k = -E),
 * below 2^127: N's decimal digits are f's exact digits, so rounding them to
 * P significant digits (half to even, as glibc's printf rounds the exact
 * value) gives printf's "%.Pg" digits with integer arithmetic only. Other
 * floats (tiny, subnormal, zero) take the printf path. */

typedef unsigned __int128 u128;

static const uint64_t pow10_64[20] = {1ull,
                                      10ull,
                                      100ull,
                                      1000ull,
                                      10000ull,
                                      100000ull,
                                      1000000ull,
                                      10000000ull,
                                      100000000ull,
                                      1000000000ull,
                                      10000000000ull,
                                      100000000000ull,
                                      1000000000000ull,
                                      10000000000000ull,
                                      100000000000000ull,
                                      1000000000000000ull,
                                      10000000000000000ull,
                                      100000000000000000ull,
                                      1000000000000000000ull,
                                      10000000000000000000ull};

/* 10^n for n <= 38 */
static u128 pow10_u128(int n) { return n <= 19 ? pow10_64[n] : (u128)pow10_64[19] * pow10_64[n - 19]; }

/* 5^n for n <= 44 */
static u128 pow5_u128(int n)
{
    u128 p = 1;
    for (; n >= 27; n -= 27)
        p *= 7450580596923828125ull; /* 5^27 */
    uint64_t q = 1;
    while (n-- > 0)
        q *= 5;
    return p * q;
}

/* N rounded to p significant digits (half to even): the digits in *q
 * (exactly p of them, trailing zeros included) and N's digit count in *nd
 * (one more when rounding carried into a new digit); *dn is q scaled back to
 * N's magnitude (q × 10^(nd - p), or N itself when nd <= p). N > 0. */
static void round_digits(u128 n, int p, u128 *q, int *nd, u128 *dn)
{
    uint64_t hi = (uint64_t)(n >> 64);
    int bits = hi != 0 ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll((uint64_t)n);
    int d = ((bits * 1233) >> 12) + 1; /* digits of 2^bits - 1, give or take one */
    if (d > 39)
        d = 39;
    if (d > 1 && n < pow10_u128(d - 1))
        d--;
    if (d <= p) {
        *q = n * pow10_u128(p - d);
        *nd = d;
        *dn = n;
        return;
    }
    u128 scale = pow10_u128(d - p);
    *q = n / scale;
    u128 r = n - *q * scale, half = scale / 2; /* scale is even */
    if (r > half || (r == half && (*q & 1) != 0))
        (*q)++;
    *dn = *q * scale;
    if (*q == pow10_u128(p)) { /* 9.99.. rounded up to 10.0.. */
        *q /= 10;
        d++;
    }
    *nd = d;
}

/* The p digits of q (with decimal exponent x: the value is d1.d2... × 10^x)
 * written as printf's "%.<p>g" writes them. */
static size_t format_g(char *s, bool neg, uint64_t q, int p, int x)
{
    char dig[20];
    for (int i = p - 1; i >= 0; i--) {
        dig[i] = (char)('0' + (int)(q % 10));
        q /= 10;
    }
    int last = p; /* digits kept: trailing zeros go */
    while (last > 1 && dig[last - 1] == '0')
        last--;
    size_t n = 0;
    if (neg)
        s[n++] = '-';
    if (x < -4 || x >= p) {
        s[n++] = dig[0];
        if (last > 1) {
            s[n++] = '.';
            for (int i = 1; i < last; i++)
                s[n++] = dig[i];
        }
        s[n++] = 'e';
        s[n++] = x < 0 ? '-' : '+';
        int ax = x < 0 ? -x : x;
        if (ax >= 100)
            s[n++] = (char)('0' + ax / 100);
        s[n++] = (char)('0' + ax / 10 % 10);
        s[n++] = (char)('0' + ax % 10);
    } else if (x < 0) {
        s[n++] = '0';
        s[n++] = '.';
        for (int i = 0; i < -x - 1; i++)
            s[n++] = '0';
        for (int i = 0; i < last; i++)
            s[n++] = dig[i];
    } else {
        for (int i = 0; i <= x; i++)
            s[n++] = dig[i];
        if (last > x + 1) {
            s[n++] = '.';
            for (int i = x + 1; i < last; i++)
                s[n++] = dig[i];
        }
    }
    s[n] = '\0';
    return n;
}

/* TF's float text (6 digits when they read back as f, else 9) into s
 * (at least 32 bytes); false for the floats left to printf. */
static bool float_text(float f, char *s, size_t *len)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bool neg = (bits >> 31) != 0;
    int ef = (int)((bits >> 23) & 0xff);
    if (ef == 0 || ef == 0xff)
        return false; /* zero, subnormal, NaN, infinity */
    uint64_t m = (bits & 0x7fffffu) | 0x800000u;
    int e = ef - 150, k;
    u128 n, ulp; /* f × 10^k and f's spacing × 10^k */
    if (e >= 0) {
        n = (u128)m << e;
        ulp = (u128)1 << e;
        k = 0;
    } else if (e >= -44) {
        k = -e;
        ulp = pow5_u128(k);
        n = m * ulp;
    } else {
        return false;
    }
    u128 q, dn;
    int nd;
    round_digits(n, 6, &q, &nd, &dn);
    /* does the 6-digit decimal read back as f? Inside f's rounding
     * interval, or on its edge with M even (strtof rounds half to even);
     * below a power of two the lower neighbour is half as far. */
    u128 diff = dn >= n ? dn - n : n - dn;
    u128 twice = dn < n && m == 0x800000u ? 4 * diff : 2 * diff;
    bool exact = twice < ulp || (twice == ulp && (m & 1) == 0);
    int p = 6;
    if (!exact) {
        round_digits(n, 9, &q, &nd, &dn);
        p = 9;
    }
    *len = format_g(s, neg, (uint64_t)q, p, nd - 1 - k);
    return true;
}

enum coffer_err coffer_serve__json_real(struct coffer_buf *b, double v, bool single)
{
    if (isnan(v))
        return coffer_buf_put(b, "NaN", 3);
    if (isinf(v))
        return v > 0 ? coffer_buf_put(b, "Infinity", 8) : coffer_buf_put(b, "-Infinity", 9);
    char s[40];
    size_t len;
    if (single && float_text((float)v, s, &len)) {
        if (memchr(s, '.', len) == NULL && memchr(s, 'e', len) == NULL) { /* a whole number: "3" -> "3.0" */
            memcpy(s + len, ".0", 3);
            len += 2;
        }
        return coffer_buf_put(b, s, len);
    }
    snprintf(s, sizeof(s), "%.6g", v);
    bool exact = single ? strtof(s, NULL) == (float)v : strtod(s, NULL) == v;
    if (!exact)
        snprintf(s, sizeof(s), single ? "%.9g" : "%.17g", v);
    if (strpbrk(s, ".eEn") == NULL) /* a whole number: "3" -> "3.0" */
        strcat(s, ".0");
    return coffer_buf_put(b, s, strlen(s));
}

enum coffer_err coffer_serve__buf_finish(struct coffer_buf *b, char **out, size_t *out_size)
{
    enum coffer_err r = coffer_buf_put_u8(b, '\0');
    if (r != COFFER_OK) {
        coffer_buf_free(b);
        return r;
    }
    size_t n;
    *out = (char *)coffer_buf_steal(b, &n);
    if (out_size != NULL)
        *out_size = n - 1;
    return COFFER_OK;
}

#define P(...)                                       \
    do {                                             \
        if (r == COFFER_OK)                          \
            r = coffer_buf_printf(&b, __VA_ARGS__);  \
    } while (0)
#define S(str, len)                                          \
    do {                                                     \
        if (r == COFFER_OK)                                  \
            r = coffer_serve__json_string(&b, (str), (len)); \
    } while (0)
#define SZ(str) S((str) != NULL ? (str) : "", (str) != NULL ? strlen(str) : 0)

static enum coffer_err finish(struct coffer_buf *b, enum coffer_err r, char **out, size_t *out_size)
{
    if (r != COFFER_OK) {
        coffer_buf_free(b);
        return r;
    }
    return coffer_serve__buf_finish(b, out, out_size);
}

enum coffer_err coffer_serve_rest_error_json(const char *message, char **out, size_t *out_size)
{
    *out = NULL;
    if (out_size != NULL)
        *out_size = 0;
    struct coffer_buf b;
    coffer_buf_init(&b, SERVE_JSON_MAX, false);
    enum coffer_err r = COFFER_OK;
    P("{ \"error\": ");
    SZ(message);
    P(" }");
    return finish(&b, r, out, out_size);
}

enum coffer_err coffer_serve_rest_status_json(const struct coffer_serve_version_status *v, size_t count, char **out,
                                              size_t *out_size)
{
    *out = NULL;
    if (out_size != NULL)
        *out_size = 0;
    struct coffer_buf b;
    coffer_buf_init(&b, SERVE_JSON_MAX, false);
    enum coffer_err r = COFFER_OK;
    P("{\n \"model_version_status\": [");
    for (size_t i = 0; i < count; i++) {
        P("%s\n  {\n   \"version\": \"%lld\",\n   \"state\": \"%s\",\n   \"status\": {\n    \"error_code\": \"%s\",\n"
          "    \"error_message\": ",
          i ? "," : "", (long long)v[i].version, coffer_serve_model_state_name(v[i].state),
          coffer_serve_code_name(v[i].error_code));
        SZ(v[i].error_message);
        P("\n   }\n  }");
    }
    P("\n ]\n}\n");
    return finish(&b, r, out, out_size);
}

static enum coffer_err infos_json(struct coffer_buf *bp, const struct coffer_serve_tensor_info *in, size_t n)
{
    struct coffer_buf b = *bp;
    enum coffer_err r = COFFER_OK;
    P("{");
    for (size_t i = 0; i < n; i++) {
        P("%s\n     ", i ? "," : "");
        SZ(in[i].alias);
        P(": {\n      \"dtype\": \"%s\",\n      \"tensor_shape\": {\n       \"dim\": [",
          coffer_serve_dtype_enum_name(in[i].dtype));
        size_t rank = in[i].unknown_rank ? 0 : in[i].rank > COFFER_SERVE_MAX_RANK ? COFFER_SERVE_MAX_RANK : in[i].rank;
        for (size_t d = 0; d < rank; d++)
            P("%s\n        { \"size\": \"%lld\", \"name\": \"\" }", d ? "," : "", (long long)in[i].dims[d]);
        P("%s],\n       \"unknown_rank\": %s\n      },\n      \"name\": ", rank ? "\n       " : "",
          in[i].unknown_rank ? "true" : "false");
        SZ(in[i].tensor_name != NULL ? in[i].tensor_name : in[i].alias);
        P("\n     }");
    }
    P("%s}", n ? "\n    " : "");
    *bp = b;
    return r;
}

enum coffer_err coffer_serve_rest_metadata_json(const struct coffer_serve_model_spec *resolved,
                                                const struct coffer_serve_signature *sigs, size_t count, char **out,
                                                size_t *out_size)
{
    *out = NULL;
    if (out_size != NULL)
        *out_size = 0;
    struct coffer_buf b;
    coffer_buf_init(&b, SERVE_JSON_MAX, false);
    enum coffer_err r = COFFER_OK;
    P("{\n\"model_spec\": {\n \"name\": ");
    SZ(resolved->name);
    P(",\n \"signature_name\": ");
    SZ(resolved->signature_name);
    if (resolved->has_version)
        P(",\n \"version\": \"%lld\"", (long long)resolved->version);
    P("\n},\n\"metadata\": {\"signature_def\": {\n \"signature_def\": {");
    for (size_t i = 0; i < count; i++) {
        P("%s\n  ", i ? "," : "");
        SZ(sigs[i].key);
        P(": {\n   \"inputs\": ");
        if (r == COFFER_OK)
            r = infos_json(&b, sigs[i].inputs, sigs[i].input_count);
        P(",\n   \"outputs\": ");
        if (r == COFFER_OK)
            r = infos_json(&b, sigs[i].outputs, sigs[i].output_count);
        P(",\n   \"method_name\": ");
        SZ(sigs[i].method_name != NULL ? sigs[i].method_name : COFFER_SERVE_PREDICT_METHOD);
        P(",\n   \"defaults\": {}\n  }");
    }
    P("\n }\n}\n}\n}\n");
    return finish(&b, r, out, out_size);
}
