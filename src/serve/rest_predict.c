/*
 * rest_predict.c — the REST :predict body in and out: row ("instances" ->
 * "predictions") and columnar ("inputs" -> "outputs") formats.
 *
 * Design: the body is parsed with coffer_json_parse (jansson, duplicate keys
 * refused, size capped). JSON cannot spell NaN or Infinity and jansson does
 * not read them, while TF (RapidJSON with kParseNanAndInfFlag) does, so a
 * pre-pass outside string literals rewrites the bare tokens NaN, Infinity
 * and -Infinity into the reserved object {"__coffer_nonfinite__": "<token>"},
 * which the float converter maps back. (A client sending that object by hand
 * gets the same value; to any other dtype it is a type error.)
 * Types come from the signature: for each input, the JSON value (in row
 * format the list of per-instance values) is walked once down its first
 * elements to find the shape, the element count is checked against the
 * limits, the tensor is allocated, and a second walk fills it, refusing
 * ragged lists and values of the wrong type with TF's messages.
 *
 * Invariants: I1 nothing is allocated from a JSON-derived size before the
 * caps are checked. I2 recursion depth is bounded by the rank cap. I3 on
 * failure nothing is left for the caller to free.
 *
 * The common form (one float input as plain nested numbers) takes a fast
 * path without jansson first (rest_fast.c); everything else, errors
 * included, comes here.
 *
 * Trusts: jansson for JSON syntax; the signature (from the model registry).
 */
#include "serve_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONFINITE_KEY "__coffer_nonfinite__"

/* ------------------------------------------------------- NaN/Infinity pass */

static bool ident_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

/* Rewrite bare NaN/Infinity/-Infinity tokens. *out is NULL when the body
 * holds none (use the body as is). */
static enum coffer_err rewrite_nonfinite(const uint8_t *p, size_t n, size_t max, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    struct coffer_buf b;
    coffer_buf_init(&b, max, false);
    bool in_str = false, found = false;
    size_t copied = 0; /* bytes of p already in b */
    enum coffer_err r = COFFER_OK;
    for (size_t i = 0; i < n && r == COFFER_OK; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (c == '\\')
                i++; /* skip the escaped byte */
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            continue;
        }
        static const char *const toks[] = {"-Infinity", "Infinity", "NaN"};
        for (size_t t = 0; t < 3; t++) {
            size_t tl = strlen(toks[t]);
            if (n - i >= tl && memcmp(p + i, toks[t], tl) == 0 && (i == 0 || !ident_char(p[i - 1])) &&
                (i + tl == n || !ident_char(p[i + tl]))) {
                found = true;
                r = coffer_buf_put(&b, p + copied, i - copied);
                if (r == COFFER_OK)
                    r = coffer_buf_printf(&b, "{\"" NONFINITE_KEY "\":\"%s\"}", toks[t]);
                i += tl - 1;
                copied = i + 1;
                break;
            }
        }
    }
    if (r == COFFER_OK && found)
        r = coffer_buf_put(&b, p + copied, n - copied);
    if (r != COFFER_OK || !found) {
        coffer_buf_free(&b);
        return r;
    }
    *out = coffer_buf_steal(&b, out_size);
    return COFFER_OK;
}

/* ------------------------------------------------------------- messages */

static const char *value_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "Object";
    case JSON_ARRAY: return "Array";
    case JSON_STRING: return "String";
    case JSON_INTEGER:
    case JSON_REAL: return "Number";
    case JSON_TRUE: return "True";
    case JSON_FALSE: return "False";
    case JSON_NULL: return "Null";
    }
    return "Unknown";
}

/* Compact text of a value for messages (at most ~200 bytes). */
static void json_text(const json_t *v, char *out, size_t size)
{
    json_t *nf = json_is_object(v) ? json_object_get(v, NONFINITE_KEY) : NULL;
    if (nf != NULL && json_is_string(nf) && json_object_size(v) == 1) {
        snprintf(out, size, "%s", json_string_value(nf));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        snprintf(out, size, "?");
        return;
    }
    snprintf(out, size, "%.200s%s", s, strlen(s) > 200 ? "..." : "");
    free(s);
}

static enum coffer_err type_error(struct coffer_serve_status *st, const json_t *v, enum coffer_serve_dtype dt)
{
    char t[256];
    json_text(v, t, sizeof(t));
    return SERVE_INVALID(st, "JSON Value: %s Type: %s is not of expected type: %s", t, value_type_name(v),
                         coffer_serve_dtype_name(dt));
}

/* {"b64": "..."}: an object with exactly that one key. */
static bool is_b64(const json_t *v)
{
    return json_is_object(v) && json_object_size(v) == 1 && json_object_get(v, "b64") != NULL;
}

static bool is_nonfinite(const json_t *v, double *out)
{
    json_t *t;
    if (!json_is_object(v) || json_object_size(v) != 1 || (t = json_object_get(v, NONFINITE_KEY)) == NULL ||
        !json_is_string(t))
        return false;
    const char *s = json_string_value(t);
    *out = strcmp(s, "NaN") == 0 ? NAN : strcmp(s, "Infinity") == 0 ? INFINITY : -INFINITY;
    return true;
}

/* A value that stands for one element (not a list to descend into). */
static bool is_leaf(const json_t *v)
{
    return !json_is_array(v);
}

/* ------------------------------------------------------------- conversion */

static enum coffer_err put_int(const json_t *v, enum coffer_serve_dtype dt, uint8_t *dst, struct coffer_serve_status *st)
{
    if (!json_is_integer(v))
        return type_error(st, v, dt);
    json_int_t x = json_integer_value(v);
    switch (dt) {
    case COFFER_SERVE_DT_INT8:
        if (x < INT8_MIN || x > INT8_MAX) return type_error(st, v, dt);
        { int8_t y = (int8_t)x; memcpy(dst, &y, 1); }
        return COFFER_OK;
    case COFFER_SERVE_DT_UINT8:
        if (x < 0 || x > UINT8_MAX) return type_error(st, v, dt);
        *dst = (uint8_t)x;
        return COFFER_OK;
    case COFFER_SERVE_DT_INT16:
        if (x < INT16_MIN || x > INT16_MAX) return type_error(st, v, dt);
        { int16_t y = (int16_t)x; memcpy(dst, &y, 2); }
        return COFFER_OK;
    case COFFER_SERVE_DT_UINT16:
        if (x < 0 || x > UINT16_MAX) return type_error(st, v, dt);
        { uint16_t y = (uint16_t)x; memcpy(dst, &y, 2); }
        return COFFER_OK;
    case COFFER_SERVE_DT_INT32:
        if (x < INT32_MIN || x > INT32_MAX) return type_error(st, v, dt);
        { int32_t y = (int32_t)x; memcpy(dst, &y, 4); }
        return COFFER_OK;
    case COFFER_SERVE_DT_UINT32:
        if (x < 0 || x > (json_int_t)UINT32_MAX) return type_error(st, v, dt);
        { uint32_t y = (uint32_t)x; memcpy(dst, &y, 4); }
        return COFFER_OK;
    case COFFER_SERVE_DT_INT64:
        { int64_t y = (int64_t)x; memcpy(dst, &y, 8); }
        return COFFER_OK;
    case COFFER_SERVE_DT_UINT64:
        if (x < 0) return type_error(st, v, dt);
        { uint64_t y = (uint64_t)x; memcpy(dst, &y, 8); }
        return COFFER_OK;
    default:
        return type_error(st, v, dt);
    }
}

/* Convert one leaf into element i of t. */
static enum coffer_err put_leaf(const json_t *v, struct coffer_serve_tensor *t, size_t i, struct coffer_serve_status *st)
{
    enum coffer_serve_dtype dt = t->dtype;
    uint8_t *d = t->data;
    switch (dt) {
    case COFFER_SERVE_DT_FLOAT:
    case COFFER_SERVE_DT_DOUBLE: {
        double x;
        if (json_is_integer(v))
            x = (double)json_integer_value(v);
        else if (json_is_real(v))
            x = json_real_value(v);
        else if (!is_nonfinite(v, &x))
            return type_error(st, v, dt);
        if (dt == COFFER_SERVE_DT_FLOAT) {
            float f = (float)x;
            memcpy(d + 4 * i, &f, 4);
        } else {
            memcpy(d + 8 * i, &x, 8);
        }
        return COFFER_OK;
    }
    case COFFER_SERVE_DT_BOOL:
        if (!json_is_boolean(v))
            return type_error(st, v, dt);
        d[i] = json_is_true(v) ? 1 : 0;
        return COFFER_OK;
    case COFFER_SERVE_DT_STRING: {
        if (json_is_string(v))
            return coffer_serve_tensor_set_string(t, i, json_string_value(v), json_string_length(v)) == COFFER_OK
                       ? COFFER_OK
                       : coffer_serve__nomem(st);
        if (!is_b64(v))
            return type_error(st, v, dt);
        json_t *s = json_object_get(v, "b64");
        if (!json_is_string(s))
            return type_error(st, v, dt);
        uint8_t *raw;
        size_t rn;
        enum coffer_err r = coffer_base64_decode(json_string_value(s), json_string_length(s), &raw, &rn);
        if (r == COFFER_E_NOMEM)
            return coffer_serve__nomem(st);
        if (r != COFFER_OK) {
            char tx[256];
            json_text(s, tx, sizeof(tx));
            return SERVE_INVALID(st, "Unable to base64 decode: %s", tx);
        }
        struct coffer_serve_bytes *e = (struct coffer_serve_bytes *)t->data + i;
        coffer_free(e->data);
        e->data = raw;
        e->size = rn;
        return COFFER_OK;
    }
    default:
        return put_int(v, dt, d + coffer_serve_dtype_size(dt) * i, st);
    }
}

struct fill {
    struct coffer_serve_tensor *t;
    size_t next; /* next element index */
    const char *input;
    struct coffer_serve_status *st;
};

static enum coffer_err ragged(struct fill *f, size_t depth, size_t want, const json_t *v)
{
    char tx[256];
    json_text(v, tx, sizeof(tx));
    if (json_is_array(v))
        return SERVE_INVALID(f->st,
                             "Failed to process input: %s. Error: expecting tensors in list to have the same shape: "
                             "a list at depth %zu has %zu elements, expecting %zu: %s",
                             f->input, depth, json_array_size(v), want, tx);
    return SERVE_INVALID(f->st,
                         "Failed to process input: %s. Error: expecting tensors in list to have the same shape: "
                         "expected a list of %zu elements at depth %zu, got: %s",
                         f->input, want, depth, tx);
}

static enum coffer_err fill_rec(struct fill *f, const json_t *v, size_t depth)
{
    struct coffer_serve_tensor *t = f->t;
    if (depth == t->rank) {
        if (!is_leaf(v)) {
            char tx[256];
            json_text(v, tx, sizeof(tx));
            return SERVE_INVALID(f->st,
                                 "Failed to process input: %s. Error: expecting tensors in list to have the same "
                                 "shape: unexpected list at depth %zu: %s",
                                 f->input, depth, tx);
        }
        if (COFFER_NEVER(f->next >= t->count))
            return COFFER_FAIL(COFFER_E_INTERNAL, "rest: element index past the tensor");
        return put_leaf(v, t, f->next++, f->st);
    }
    if (!json_is_array(v) || json_array_size(v) != (size_t)t->dims[depth])
        return ragged(f, depth, (size_t)t->dims[depth], v);
    for (size_t i = 0; i < json_array_size(v); i++) {
        enum coffer_err r = fill_rec(f, json_array_get(v, i), depth + 1);
        if (r != COFFER_OK)
            return r;
    }
    return COFFER_OK;
}

/* Build the tensor for one input from its JSON value. */
static enum coffer_err convert_input(const json_t *v, const struct coffer_serve_tensor_info *info,
                                     const struct coffer_serve_limits *lim, size_t *budget,
                                     struct coffer_serve_tensor *out, struct coffer_serve_status *st)
{
    enum coffer_serve_dtype dt = info->dtype;
    switch (dt) {
    case COFFER_SERVE_DT_FLOAT: case COFFER_SERVE_DT_DOUBLE: case COFFER_SERVE_DT_INT8: case COFFER_SERVE_DT_UINT8:
    case COFFER_SERVE_DT_INT16: case COFFER_SERVE_DT_UINT16: case COFFER_SERVE_DT_INT32: case COFFER_SERVE_DT_UINT32:
    case COFFER_SERVE_DT_INT64: case COFFER_SERVE_DT_UINT64: case COFFER_SERVE_DT_BOOL: case COFFER_SERVE_DT_STRING:
        break;
    default:
        return coffer_serve_status_set(st, COFFER_SERVE_UNIMPLEMENTED,
                                       "Conversion of JSON Value to type: %s is not supported (input: %s)",
                                       coffer_serve_dtype_name(dt), info->alias);
    }
    /* Shape from the first elements. */
    size_t max_rank = lim->max_rank < COFFER_SERVE_MAX_RANK ? lim->max_rank : COFFER_SERVE_MAX_RANK;
    int64_t dims[COFFER_SERVE_MAX_RANK];
    size_t rank = 0;
    const json_t *cur = v;
    while (json_is_array(cur)) {
        if (rank == max_rank)
            return SERVE_INVALID(st, "Failed to process input: %s. Error: lists nested deeper than %zu", info->alias,
                                 max_rank);
        dims[rank++] = (int64_t)json_array_size(cur);
        if (json_array_size(cur) == 0)
            break;
        cur = json_array_get(cur, 0);
    }
    size_t count, bytes;
    if (!coffer_serve__dims_count(dims, rank, &count))
        return SERVE_INVALID(st, "Failed to process input: %s. Error: element count overflows", info->alias);
    size_t esize = dt == COFFER_SERVE_DT_STRING ? sizeof(struct coffer_serve_bytes) : coffer_serve_dtype_size(dt);
    if (!coffer_size_mul(count, esize, &bytes) || bytes > lim->max_tensor_size || bytes > *budget)
        return SERVE_INVALID(st, "Failed to process input: %s. Error: %zu elements are over the size limit",
                             info->alias, count);
    struct coffer_serve_tensor t;
    enum coffer_err r = coffer_serve_tensor_init(&t, info->alias, dt, rank, dims);
    if (r != COFFER_OK)
        return coffer_serve__nomem(st);
    struct fill f = {.t = &t, .input = info->alias, .st = st};
    r = fill_rec(&f, v, 0);
    if (r == COFFER_OK && dt == COFFER_SERVE_DT_STRING) {
        /* the decoded strings count against the limits too */
        const struct coffer_serve_bytes *e = t.data;
        for (size_t i = 0; i < t.count && r == COFFER_OK; i++)
            if (!coffer_size_add(bytes, e[i].size, &bytes) || bytes > lim->max_tensor_size || bytes > *budget)
                r = SERVE_INVALID(st, "Failed to process input: %s. Error: strings are over the size limit",
                                  info->alias);
    }
    if (r != COFFER_OK) {
        coffer_serve_tensor_free(&t);
        return r;
    }
    *budget -= bytes;
    *out = t;
    return COFFER_OK;
}

/* ------------------------------------------------------------------ parse */

void coffer_serve_rest_predict_free(struct coffer_serve_rest_predict *p)
{
    if (p == NULL)
        return;
    coffer_serve_tensors_free(p->inputs, p->input_count);
    coffer_free(p->signature_name);
    memset(p, 0, sizeof(*p));
}

/* The keys of a named object, checked against the signature's inputs. */
static enum coffer_err check_keys(const json_t *obj, const struct coffer_serve_signature *sig,
                                  const struct coffer_serve_limits *lim, struct coffer_serve_status *st)
{
    size_t n = json_object_size(obj);
    if (n > lim->max_tensors)
        return SERVE_INVALID(st, "%zu inputs are over the limit of %zu", n, lim->max_tensors);
    const char **names = coffer_calloc(n ? n : 1, sizeof(*names));
    if (names == NULL)
        return coffer_serve__nomem(st);
    size_t i = 0;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)obj, k, val) names[i++] = k;
    enum coffer_err r = coffer_serve_signature_check_inputs(sig, names, n, st);
    coffer_free(names);
    return r;
}

static enum coffer_err parse_row(const json_t *inst, const struct coffer_serve_signature *sig,
                                 const struct coffer_serve_limits *lim, struct coffer_serve_tensor *ts,
                                 struct coffer_serve_status *st)
{
    if (!json_is_array(inst))
        return SERVE_INVALID(st, "Expecting 'instances' to be an list/array");
    size_t n = json_array_size(inst);
    if (n == 0)
        return SERVE_INVALID(st, "Expecting 'instances' to be a non-empty list/array");
    const json_t *first = json_array_get(inst, 0);
    bool named = json_is_object(first) && !is_b64(first) && !is_nonfinite(first, &(double){0});
    size_t budget = lim->max_total_size;
    enum coffer_err r;
    if (!named) {
        if (sig->input_count != 1)
            return SERVE_INVALID(st,
                                 "Expecting object with %zu keys (one per signature input) at item 0 of 'instances' "
                                 "list",
                                 sig->input_count);
        for (size_t i = 0; i < n; i++) {
            const json_t *it = json_array_get(inst, i);
            if (json_is_object(it) && !is_b64(it) && !is_nonfinite(it, &(double){0}))
                return SERVE_INVALID(st, "Expecting value/list but got object at item %zu of 'instances' list", i);
        }
        return convert_input(inst, &sig->inputs[0], lim, &budget, &ts[0], st);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *it = json_array_get(inst, i);
        if (!json_is_object(it) || is_b64(it))
            return SERVE_INVALID(st, "Expecting object but got %s at item %zu of 'instances' list",
                                 json_is_array(it) ? "list" : "value", i);
        if ((r = check_keys(it, sig, lim, st)) != COFFER_OK)
            return r;
    }
    /* Per input: the list of its per-instance values, stacked. */
    for (size_t k = 0; k < sig->input_count; k++) {
        json_t *col = json_array();
        if (col == NULL)
            return coffer_serve__nomem(st);
        r = COFFER_OK;
        for (size_t i = 0; i < n && r == COFFER_OK; i++)
            if (json_array_append(col, json_object_get(json_array_get(inst, i), sig->inputs[k].alias)) != 0)
                r = coffer_serve__nomem(st);
        if (r == COFFER_OK)
            r = convert_input(col, &sig->inputs[k], lim, &budget, &ts[k], st);
        json_decref(col);
        if (r != COFFER_OK)
            return r;
    }
    return COFFER_OK;
}

static enum coffer_err parse_columnar(const json_t *in, const struct coffer_serve_signature *sig,
                                      const struct coffer_serve_limits *lim, struct coffer_serve_tensor *ts,
                                      struct coffer_serve_status *st)
{
    size_t budget = lim->max_total_size;
    if (json_is_object(in) && !is_b64(in) && !is_nonfinite(in, &(double){0})) {
        enum coffer_err r = check_keys(in, sig, lim, st);
        for (size_t k = 0; k < sig->input_count && r == COFFER_OK; k++)
            r = convert_input(json_object_get(in, sig->inputs[k].alias), &sig->inputs[k], lim, &budget, &ts[k], st);
        return r;
    }
    if (sig->input_count != 1)
        return SERVE_INVALID(st, "Expecting 'inputs' to be an object with one key per signature input (%zu inputs)",
                             sig->input_count);
    return convert_input(in, &sig->inputs[0], lim, &budget, &ts[0], st);
}

enum coffer_err coffer_serve_rest_predict_parse(const void *body, size_t size, const struct coffer_serve_signature *sigs,
                                                size_t sig_count, const struct coffer_serve_limits *lim,
                                                struct coffer_serve_rest_predict *out, struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    coffer_serve_status_clear(st);
    struct coffer_serve_limits dl;
    lim = coffer_serve__limits(lim, &dl);
    if (size > lim->max_message_size)
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                       "JSON body of %zu bytes is over the limit of %zu", size, lim->max_message_size);
    const uint8_t *p = body;
    size_t ws = 0;
    while (ws < size && (p[ws] == ' ' || p[ws] == '\t' || p[ws] == '\n' || p[ws] == '\r'))
        ws++;
    if (ws == size)
        return SERVE_INVALID(st, "JSON Parse error: The document is empty");
    enum coffer_err fr = coffer_serve__rest_predict_fast(body, size, sigs, sig_count, lim, out);
    if (fr == COFFER_OK)
        return COFFER_OK;
    if (fr == COFFER_E_NOMEM)
        return coffer_serve__nomem(st);

    uint8_t *rewritten = NULL;
    size_t rsize = 0, max = size;
    if (!coffer_size_mul(size, 10, &max) || !coffer_size_add(max, 64, &max))
        max = SIZE_MAX;
    if (rewrite_nonfinite(p, size, max, &rewritten, &rsize) != COFFER_OK)
        return coffer_serve__nomem(st);
    json_t *root = NULL;
    enum coffer_err r = coffer_json_parse(rewritten ? rewritten : p, rewritten ? rsize : size, max, &root);
    coffer_free(rewritten);
    if (r != COFFER_OK)
        return SERVE_INVALID(st, "JSON Parse error: %s", coffer_err_detail());

    struct coffer_serve_rest_predict res = {0};
    json_t *sn, *inst, *in;
    if (!json_is_object(root)) {
        r = SERVE_INVALID(st, "JSON Parse error: expecting a JSON object at the top level");
        goto out;
    }
    sn = json_object_get(root, "signature_name");
    if (sn != NULL && !json_is_string(sn)) {
        r = SERVE_INVALID(st, "'signature_name' key must be a string value.");
        goto out;
    }
    res.signature_name = coffer_strdup(sn != NULL ? json_string_value(sn) : "");
    if (res.signature_name == NULL) {
        r = coffer_serve__nomem(st);
        goto out;
    }
    if ((r = coffer_serve_signature_find(sigs, sig_count, res.signature_name, &res.signature, st)) != COFFER_OK)
        goto out;
    inst = json_object_get(root, "instances");
    in = json_object_get(root, "inputs");
    if (inst != NULL && in != NULL) {
        r = SERVE_INVALID(st, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist");
        goto out;
    }
    if (inst == NULL && in == NULL) {
        r = SERVE_INVALID(st, "Missing 'inputs' or 'instances' key");
        goto out;
    }
    const struct coffer_serve_signature *sig = res.signature;
    if (sig->input_count > lim->max_tensors) {
        r = SERVE_INVALID(st, "signature has %zu inputs, over the limit of %zu", sig->input_count, lim->max_tensors);
        goto out;
    }
    res.inputs = coffer_calloc(sig->input_count ? sig->input_count : 1, sizeof(*res.inputs));
    if (res.inputs == NULL) {
        r = coffer_serve__nomem(st);
        goto out;
    }
    res.input_count = sig->input_count;
    res.format = inst != NULL ? COFFER_SERVE_REST_ROW : COFFER_SERVE_REST_COLUMNAR;
    r = inst != NULL ? parse_row(inst, sig, lim, res.inputs, st) : parse_columnar(in, sig, lim, res.inputs, st);
out:
    json_decref(root);
    if (r != COFFER_OK) {
        coffer_serve_rest_predict_free(&res);
        return r;
    }
    *out = res;
    return COFFER_OK;
}

/* --------------------------------------------------------------- response */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static enum coffer_err write_elem(struct coffer_buf *b, const struct coffer_serve_tensor *t, size_t i, bool b64)
{
    const uint8_t *d = t->data;
    switch (t->dtype) {
    case COFFER_SERVE_DT_FLOAT: { float x; memcpy(&x, d + 4 * i, 4); return coffer_serve__json_real(b, x, true); }
    case COFFER_SERVE_DT_DOUBLE: { double x; memcpy(&x, d + 8 * i, 8); return coffer_serve__json_real(b, x, false); }
    case COFFER_SERVE_DT_INT8: { int8_t x; memcpy(&x, d + i, 1); return coffer_buf_printf(b, "%d", x); }
    case COFFER_SERVE_DT_UINT8: return coffer_buf_printf(b, "%u", d[i]);
    case COFFER_SERVE_DT_INT16: { int16_t x; memcpy(&x, d + 2 * i, 2); return coffer_buf_printf(b, "%d", x); }
    case COFFER_SERVE_DT_UINT16: { uint16_t x; memcpy(&x, d + 2 * i, 2); return coffer_buf_printf(b, "%u", x); }
    case COFFER_SERVE_DT_INT32: { int32_t x; memcpy(&x, d + 4 * i, 4); return coffer_buf_printf(b, "%d", x); }
    case COFFER_SERVE_DT_UINT32: { uint32_t x; memcpy(&x, d + 4 * i, 4); return coffer_buf_printf(b, "%u", x); }
    case COFFER_SERVE_DT_INT64: { int64_t x; memcpy(&x, d + 8 * i, 8); return coffer_buf_printf(b, "%lld", (long long)x); }
    case COFFER_SERVE_DT_UINT64: { uint64_t x; memcpy(&x, d + 8 * i, 8); return coffer_buf_printf(b, "%llu", (unsigned long long)x); }
    case COFFER_SERVE_DT_BOOL: return d[i] ? coffer_buf_put(b, "true", 4) : coffer_buf_put(b, "false", 5);
    case COFFER_SERVE_DT_STRING: {
        const struct coffer_serve_bytes *e = (const struct coffer_serve_bytes *)t->data + i;
        if (!b64)
            return coffer_serve__json_string(b, e->data, e->size);
        size_t n = coffer_base64_encoded_len(e->size);
        char *enc = coffer_malloc(n + 1);
        if (enc == NULL)
            return COFFER_E_NOMEM;
        coffer_base64_encode(e->data, e->size, enc);
        enum coffer_err r = coffer_buf_printf(b, "{\"b64\": \"%s\"}", enc);
        coffer_free(enc);
        return r;
    }
    default:
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "rest: dtype %d has no JSON form", (int)t->dtype);
    }
}

/* Write the sub-tensor of dims [depth..rank) starting at element *next. */
static enum coffer_err write_rec(struct coffer_buf *b, const struct coffer_serve_tensor *t, size_t depth, size_t *next,
                                 bool b64)
{
    if (depth == t->rank)
        return write_elem(b, t, (*next)++, b64);
    enum coffer_err r = coffer_buf_put_u8(b, '[');
    for (int64_t i = 0; i < t->dims[depth] && r == COFFER_OK; i++) {
        if (i > 0)
            r = coffer_buf_put(b, ", ", 2);
        if (r == COFFER_OK)
            r = write_rec(b, t, depth + 1, next, b64);
    }
    if (r == COFFER_OK)
        r = coffer_buf_put_u8(b, ']');
    return r;
}

enum coffer_err coffer_serve_rest_predict_response(enum coffer_serve_rest_format format,
                                                   const struct coffer_serve_tensor *outputs, size_t count, char **out,
                                                   size_t *out_size, struct coffer_serve_status *st)
{
    *out = NULL;
    if (out_size != NULL)
        *out_size = 0;
    coffer_serve_status_clear(st);
    for (size_t k = 0; k < count; k++) {
        const struct coffer_serve_tensor *t = &outputs[k];
        switch (t->dtype) {
        case COFFER_SERVE_DT_HALF:
        case COFFER_SERVE_DT_BFLOAT16:
        case COFFER_SERVE_DT_INVALID:
            return coffer_serve_status_set(st, COFFER_SERVE_UNIMPLEMENTED,
                                           "Tensor name: %s has type %s, which cannot be written as JSON",
                                           t->name ? t->name : "", coffer_serve_dtype_name(t->dtype));
        default:
            break;
        }
    }
    int64_t batch = -1;
    if (format == COFFER_SERVE_REST_ROW) {
        for (size_t k = 0; k < count; k++) {
            const struct coffer_serve_tensor *t = &outputs[k];
            if (t->rank == 0)
                return SERVE_INVALID(st, "Tensor name: %s has no shape information", t->name ? t->name : "");
            if (batch >= 0 && t->dims[0] != batch)
                return SERVE_INVALID(st, "Tensor name: %s has inconsistent batch size: %lld expecting: %lld",
                                     t->name ? t->name : "", (long long)t->dims[0], (long long)batch);
            batch = t->dims[0];
        }
    }
    struct coffer_buf b;
    coffer_buf_init(&b, SERVE_JSON_MAX, false);
    enum coffer_err r;
    if (format == COFFER_SERVE_REST_COLUMNAR) {
        r = coffer_buf_printf(&b, "{\n    \"outputs\": ");
        if (r == COFFER_OK && count != 1)
            r = coffer_buf_put(&b, "{\n        ", 10);
        for (size_t k = 0; k < count && r == COFFER_OK; k++) {
            const struct coffer_serve_tensor *t = &outputs[k];
            const char *name = t->name ? t->name : "";
            if (count != 1) {
                if (k > 0)
                    r = coffer_buf_put(&b, ",\n        ", 10);
                if (r == COFFER_OK)
                    r = coffer_serve__json_string(&b, name, strlen(name));
                if (r == COFFER_OK)
                    r = coffer_buf_put(&b, ": ", 2);
            }
            size_t next = 0;
            if (r == COFFER_OK)
                r = write_rec(&b, t, 0, &next, ends_with(name, "_bytes"));
        }
        if (r == COFFER_OK && count != 1)
            r = coffer_buf_put(&b, "\n    }", 6);
    } else {
        r = coffer_buf_printf(&b, "{\n    \"predictions\": [");
        for (int64_t i = 0; i < batch && r == COFFER_OK; i++) {
            r = coffer_buf_put(&b, i ? ",\n        " : "\n        ", i ? 10 : 9);
            if (r == COFFER_OK && count != 1)
                r = coffer_buf_put_u8(&b, '{');
            for (size_t k = 0; k < count && r == COFFER_OK; k++) {
                const struct coffer_serve_tensor *t = &outputs[k];
                const char *name = t->name ? t->name : "";
                size_t per = t->count / (size_t)batch, next = per * (size_t)i;
                if (count != 1) {
                    if (k > 0)
                        r = coffer_buf_put(&b, ", ", 2);
                    if (r == COFFER_OK)
                        r = coffer_serve__json_string(&b, name, strlen(name));
                    if (r == COFFER_OK)
                        r = coffer_buf_put(&b, ": ", 2);
                }
                if (r == COFFER_OK)
                    r = write_rec(&b, t, 1, &next, ends_with(name, "_bytes"));
            }
            if (r == COFFER_OK && count != 1)
                r = coffer_buf_put_u8(&b, '}');
        }
        if (r == COFFER_OK)
            r = coffer_buf_put(&b, "\n    ]", 6);
    }
    if (r == COFFER_OK)
        r = coffer_buf_put(&b, "\n}\n", 3);
    if (r != COFFER_OK) {
        coffer_buf_free(&b);
        return r == COFFER_E_NOMEM ? coffer_serve__nomem(st) : coffer_serve_status_set(st, COFFER_SERVE_INTERNAL, "%s", coffer_err_detail());
    }
    return coffer_serve__buf_finish(&b, out, out_size);
}
