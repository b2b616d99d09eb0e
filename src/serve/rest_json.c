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

enum coffer_err coffer_serve__json_real(struct coffer_buf *b, double v, bool single)
{
    if (isnan(v))
        return coffer_buf_put(b, "NaN", 3);
    if (isinf(v))
        return v > 0 ? coffer_buf_put(b, "Infinity", 8) : coffer_buf_put(b, "-Infinity", 9);
    char s[40];
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
