/*
 * tensor_proto.c — TensorProto <-> coffer_serve_tensor, as TF's
 * Tensor::FromProto / AsProtoField / AsProtoTensorContent do.
 *
 * Design: protobuf-c unpacks the bytes (it is the wire decoder); this file
 * then judges the unpacked message: dtype, shape, element count and byte
 * size are checked against the limits before the tensor is allocated, then
 * the data comes from tensor_content (raw little-endian, exact size) or from
 * the typed field of the dtype with TF's fill rule (§3.3: k == n take them,
 * 0 < k < n repeat the last, k == 0 zeros; k > n is refused, a safe
 * tightening of TF, which would silently drop the extra values).
 *
 * Invariants: I1 nothing is allocated from a count or size before it passed
 * the caps. I2 narrow integer types are range-checked rather than truncated.
 * I3 encoding never copies numeric data that can be pointed at.
 *
 * Trusts: protobuf-c's unpack to give consistent (n_x, x) pairs.
 */
#include "serve_int.h"

#include <string.h>

static void *pb_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return coffer_malloc(size ? size : 1);
}
static void pb_free(void *ctx, void *p)
{
    (void)ctx;
    coffer_free(p);
}
ProtobufCAllocator coffer_serve__pb_alloc = {pb_alloc, pb_free, NULL};

void *coffer_serve__scratch_alloc(struct coffer_serve__scratch *s, size_t count, size_t size)
{
    size_t n, off = (s->used + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
    if (!coffer_size_mul(count ? count : 1, size ? size : 1, &n))
        return NULL;
    if (off <= sizeof(s->inline_mem) && n <= sizeof(s->inline_mem) - off) {
        s->used = off + n;
        return memset(s->inline_mem + off, 0, n);
    }
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        void **p = coffer_realloc(s->ptrs, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        s->ptrs = p;
        s->cap = cap;
    }
    void *m = coffer_calloc(count ? count : 1, size ? size : 1);
    if (m != NULL)
        s->ptrs[s->count++] = m;
    return m;
}

void coffer_serve__scratch_free(struct coffer_serve__scratch *s)
{
    for (size_t i = 0; i < s->count; i++)
        coffer_free(s->ptrs[i]);
    coffer_free(s->ptrs);
    s->ptrs = NULL;
    s->count = s->cap = s->used = 0;
}

/* ---------------------------------------------------------------- decoding */

#define PARSE_ERR(st, name, ...) tensor_err(st, name, __VA_ARGS__)

static enum coffer_err tensor_err(struct coffer_serve_status *st, const char *name, const char *fmt, ...)
    COFFER_PRINTF(3, 4);
static enum coffer_err tensor_err(struct coffer_serve_status *st, const char *name, const char *fmt, ...)
{
    char detail[COFFER_SERVE_MSG_SIZE / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return SERVE_INVALID(st, "tensor parsing error: %.512s: %s", name, detail);
}

/* The typed field of a dtype: how many values it holds. */
static size_t typed_count(const Tensorflow__TensorProto *tp, enum coffer_serve_dtype dt)
{
    switch (dt) {
    case COFFER_SERVE_DT_FLOAT: return tp->n_float_val;
    case COFFER_SERVE_DT_DOUBLE: return tp->n_double_val;
    case COFFER_SERVE_DT_INT32:
    case COFFER_SERVE_DT_INT16:
    case COFFER_SERVE_DT_INT8:
    case COFFER_SERVE_DT_UINT8:
    case COFFER_SERVE_DT_UINT16: return tp->n_int_val;
    case COFFER_SERVE_DT_INT64: return tp->n_int64_val;
    case COFFER_SERVE_DT_BOOL: return tp->n_bool_val;
    case COFFER_SERVE_DT_HALF:
    case COFFER_SERVE_DT_BFLOAT16: return tp->n_half_val;
    case COFFER_SERVE_DT_UINT32: return tp->n_uint32_val;
    case COFFER_SERVE_DT_UINT64: return tp->n_uint64_val;
    case COFFER_SERVE_DT_STRING: return tp->n_string_val;
    default: return 0;
    }
}

static const char *typed_field(enum coffer_serve_dtype dt)
{
    switch (dt) {
    case COFFER_SERVE_DT_FLOAT: return "float_val";
    case COFFER_SERVE_DT_DOUBLE: return "double_val";
    case COFFER_SERVE_DT_INT64: return "int64_val";
    case COFFER_SERVE_DT_BOOL: return "bool_val";
    case COFFER_SERVE_DT_HALF:
    case COFFER_SERVE_DT_BFLOAT16: return "half_val";
    case COFFER_SERVE_DT_UINT32: return "uint32_val";
    case COFFER_SERVE_DT_UINT64: return "uint64_val";
    case COFFER_SERVE_DT_STRING: return "string_val";
    default: return "int_val";
    }
}

/* Store value j of the typed field as element i (numeric types). Returns
 * false when a narrow integer is out of its range. */
static bool store_typed(const Tensorflow__TensorProto *tp, enum coffer_serve_dtype dt, size_t j, uint8_t *dst)
{
    switch (dt) {
    case COFFER_SERVE_DT_FLOAT: memcpy(dst, &tp->float_val[j], 4); return true;
    case COFFER_SERVE_DT_DOUBLE: memcpy(dst, &tp->double_val[j], 8); return true;
    case COFFER_SERVE_DT_INT32: memcpy(dst, &tp->int_val[j], 4); return true;
    case COFFER_SERVE_DT_INT16: {
        int32_t v = tp->int_val[j];
        if (v < INT16_MIN || v > INT16_MAX)
            return false;
        int16_t x = (int16_t)v;
        memcpy(dst, &x, 2);
        return true;
    }
    case COFFER_SERVE_DT_UINT16: {
        int32_t v = tp->int_val[j];
        if (v < 0 || v > UINT16_MAX)
            return false;
        uint16_t x = (uint16_t)v;
        memcpy(dst, &x, 2);
        return true;
    }
    case COFFER_SERVE_DT_INT8: {
        int32_t v = tp->int_val[j];
        if (v < INT8_MIN || v > INT8_MAX)
            return false;
        int8_t x = (int8_t)v;
        memcpy(dst, &x, 1);
        return true;
    }
    case COFFER_SERVE_DT_UINT8: {
        int32_t v = tp->int_val[j];
        if (v < 0 || v > UINT8_MAX)
            return false;
        *dst = (uint8_t)v;
        return true;
    }
    case COFFER_SERVE_DT_INT64: memcpy(dst, &tp->int64_val[j], 8); return true;
    case COFFER_SERVE_DT_BOOL: *dst = tp->bool_val[j] ? 1 : 0; return true;
    case COFFER_SERVE_DT_HALF:
    case COFFER_SERVE_DT_BFLOAT16: {
        /* TF keeps the low 16 bits of each int32. */
        uint16_t x = (uint16_t)((uint32_t)tp->half_val[j] & 0xffffu);
        memcpy(dst, &x, 2);
        return true;
    }
    case COFFER_SERVE_DT_UINT32: memcpy(dst, &tp->uint32_val[j], 4); return true;
    case COFFER_SERVE_DT_UINT64: memcpy(dst, &tp->uint64_val[j], 8); return true;
    default: return false;
    }
}

enum coffer_err coffer_serve__tensor_from_proto(const Tensorflow__TensorProto *tp, const char *name,
                                                const struct coffer_serve_limits *lim, size_t *budget,
                                                struct coffer_serve_tensor *out, struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    int dtn = (int)tp->dtype;
    if (!coffer_serve_dtype_supported(dtn))
        return PARSE_ERR(st, name, "unsupported dtype %d", dtn);
    enum coffer_serve_dtype dt = (enum coffer_serve_dtype)dtn;

    /* Shape first: rank cap, dims >= 0, no overflow. */
    int64_t dims[COFFER_SERVE_MAX_RANK];
    size_t rank = 0;
    const Tensorflow__TensorShapeProto *sh = tp->tensor_shape;
    if (sh != NULL) {
        if (sh->unknown_rank)
            return PARSE_ERR(st, name, "tensor_shape has unknown_rank set");
        size_t max_rank = lim->max_rank < COFFER_SERVE_MAX_RANK ? lim->max_rank : COFFER_SERVE_MAX_RANK;
        if (sh->n_dim > max_rank)
            return PARSE_ERR(st, name, "rank %zu is over the limit of %zu", sh->n_dim, max_rank);
        for (size_t i = 0; i < sh->n_dim; i++) {
            int64_t d = sh->dim[i] != NULL ? sh->dim[i]->size : 0;
            if (d < 0)
                return PARSE_ERR(st, name, "dimension %zu has negative size %lld", i, (long long)d);
            dims[i] = d;
        }
        rank = sh->n_dim;
    }
    size_t count;
    if (!coffer_serve__dims_count(dims, rank, &count))
        return PARSE_ERR(st, name, "element count overflows");
    size_t esize = coffer_serve_dtype_size(dt);

    /* Bytes the tensor will hold, checked before allocating. */
    size_t bytes = 0;
    const ProtobufCBinaryData *content = &tp->tensor_content;
    size_t k = typed_count(tp, dt);
    if (dt == COFFER_SERVE_DT_STRING) {
        if (content->len > 0)
            return PARSE_ERR(st, name, "DT_STRING in tensor_content is not supported; use string_val");
        if (k > count)
            return PARSE_ERR(st, name, "%zu values in string_val for %zu elements", k, count);
        /* sum of the k given lengths, plus the last one repeated (fill) */
        for (size_t i = 0; i < k; i++)
            if (!coffer_size_add(bytes, tp->string_val[i].len, &bytes))
                return PARSE_ERR(st, name, "string sizes overflow");
        size_t fill = 0;
        if (k > 0 && !coffer_size_mul(count - k, tp->string_val[k - 1].len, &fill))
            return PARSE_ERR(st, name, "string sizes overflow");
        if (!coffer_size_add(bytes, fill, &bytes))
            return PARSE_ERR(st, name, "string sizes overflow");
        size_t arr;
        if (!coffer_size_mul(count, sizeof(struct coffer_serve_bytes), &arr) || !coffer_size_add(bytes, arr, &bytes))
            return PARSE_ERR(st, name, "element count overflows");
    } else if (!coffer_size_mul(count, esize, &bytes)) {
        return PARSE_ERR(st, name, "byte size overflows");
    }
    if (bytes > lim->max_tensor_size)
        return PARSE_ERR(st, name, "%zu bytes are over the limit of %zu", bytes, lim->max_tensor_size);
    if (bytes > *budget)
        return PARSE_ERR(st, name, "request tensors are over the limit of %zu bytes in all", lim->max_total_size);

    if (dt != COFFER_SERVE_DT_STRING && content->len > 0) {
        if (content->len != count * esize)
            return PARSE_ERR(st, name, "tensor_content is %zu bytes, expected %zu for %zu %s elements",
                             content->len, count * esize, count, coffer_serve_dtype_name(dt));
    } else if (k > count) {
        return PARSE_ERR(st, name, "%zu values in %s for %zu elements", k, typed_field(dt), count);
    }

    struct coffer_serve_tensor t;
    /* tensor_content fills it all: no need to zero it first */
    bool filled = dt != COFFER_SERVE_DT_STRING && content->len > 0;
    enum coffer_err r = coffer_serve__tensor_alloc(&t, name, dt, rank, dims, !filled);
    if (r != COFFER_OK)
        return r == COFFER_E_NOMEM ? coffer_serve__nomem(st) : PARSE_ERR(st, name, "%s", coffer_strerror(r));

    if (dt == COFFER_SERVE_DT_STRING) {
        for (size_t i = 0; i < count && k > 0; i++) {
            const ProtobufCBinaryData *s = &tp->string_val[i < k ? i : k - 1];
            if ((r = coffer_serve_tensor_set_string(&t, i, s->data, s->len)) != COFFER_OK) {
                coffer_serve_tensor_free(&t);
                return coffer_serve__nomem(st);
            }
        }
    } else if (content->len > 0) {
        memcpy(t.data, content->data, content->len);
        if (dt == COFFER_SERVE_DT_BOOL) {
            uint8_t *b = t.data;
            for (size_t i = 0; i < count; i++) {
                if (b[i] > 1) {
                    unsigned bad = b[i];
                    coffer_serve_tensor_free(&t);
                    return PARSE_ERR(st, name, "bool element %zu in tensor_content is %u, not 0 or 1", i, bad);
                }
            }
        }
    } else if (k > 0) {
        uint8_t *d = t.data;
        for (size_t i = 0; i < count; i++) {
            size_t j = i < k ? i : k - 1;
            if (i >= k && i > 0) {
                memcpy(d + i * esize, d + (i - 1) * esize, esize);
                continue;
            }
            if (!store_typed(tp, dt, j, d + i * esize)) {
                coffer_serve_tensor_free(&t);
                return PARSE_ERR(st, name, "value %d at %s[%zu] is out of range for %s", tp->int_val[j],
                                 typed_field(dt), j, coffer_serve_dtype_name(dt));
            }
        }
    }
    *budget -= bytes;
    *out = t;
    return COFFER_OK;
}

/* ---------------------------------------------------------------- encoding */

enum coffer_err coffer_serve__tensor_to_proto(const struct coffer_serve_tensor *t, bool tensor_content,
                                              struct coffer_serve__scratch *s, Tensorflow__TensorProto *tp)
{
    tensorflow__tensor_proto__init(tp);
    tp->dtype = (Tensorflow__DataType)t->dtype;
    Tensorflow__TensorShapeProto *sh = coffer_serve__scratch_alloc(s, 1, sizeof(*sh));
    Tensorflow__TensorShapeProto__Dim **dp = coffer_serve__scratch_alloc(s, t->rank, sizeof(*dp));
    Tensorflow__TensorShapeProto__Dim *dv = coffer_serve__scratch_alloc(s, t->rank, sizeof(*dv));
    if (sh == NULL || dp == NULL || dv == NULL)
        return COFFER_E_NOMEM;
    tensorflow__tensor_shape_proto__init(sh);
    for (size_t i = 0; i < t->rank; i++) {
        tensorflow__tensor_shape_proto__dim__init(&dv[i]);
        dv[i].size = t->dims[i];
        dp[i] = &dv[i];
    }
    sh->n_dim = t->rank;
    sh->dim = dp;
    tp->tensor_shape = sh;

    size_t n = t->count;
    if (t->dtype == COFFER_SERVE_DT_STRING) {
        ProtobufCBinaryData *sv = coffer_serve__scratch_alloc(s, n, sizeof(*sv));
        if (sv == NULL)
            return COFFER_E_NOMEM;
        const struct coffer_serve_bytes *e = t->data;
        for (size_t i = 0; i < n; i++) {
            sv[i].data = e[i].data;
            sv[i].len = e[i].size;
        }
        tp->n_string_val = n;
        tp->string_val = sv;
        return COFFER_OK;
    }
    if (tensor_content) {
        tp->tensor_content.data = t->data;
        tp->tensor_content.len = t->size;
        return COFFER_OK;
    }
    const uint8_t *d = t->data;
    switch (t->dtype) {
    case COFFER_SERVE_DT_FLOAT: tp->n_float_val = n; tp->float_val = t->data; break;
    case COFFER_SERVE_DT_DOUBLE: tp->n_double_val = n; tp->double_val = t->data; break;
    case COFFER_SERVE_DT_INT32: tp->n_int_val = n; tp->int_val = t->data; break;
    case COFFER_SERVE_DT_INT64: tp->n_int64_val = n; tp->int64_val = t->data; break;
    case COFFER_SERVE_DT_UINT32: tp->n_uint32_val = n; tp->uint32_val = t->data; break;
    case COFFER_SERVE_DT_UINT64: tp->n_uint64_val = n; tp->uint64_val = t->data; break;
    case COFFER_SERVE_DT_INT16:
    case COFFER_SERVE_DT_UINT16:
    case COFFER_SERVE_DT_INT8:
    case COFFER_SERVE_DT_UINT8:
    case COFFER_SERVE_DT_HALF:
    case COFFER_SERVE_DT_BFLOAT16: {
        int32_t *v = coffer_serve__scratch_alloc(s, n, sizeof(*v));
        if (v == NULL)
            return COFFER_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
            switch (t->dtype) {
            case COFFER_SERVE_DT_INT16: { int16_t x; memcpy(&x, d + 2 * i, 2); v[i] = x; break; }
            case COFFER_SERVE_DT_INT8: { int8_t x; memcpy(&x, d + i, 1); v[i] = x; break; }
            case COFFER_SERVE_DT_UINT8: v[i] = d[i]; break;
            default: { uint16_t x; memcpy(&x, d + 2 * i, 2); v[i] = x; break; }
            }
        }
        if (t->dtype == COFFER_SERVE_DT_HALF || t->dtype == COFFER_SERVE_DT_BFLOAT16) {
            tp->n_half_val = n;
            tp->half_val = v;
        } else {
            tp->n_int_val = n;
            tp->int_val = v;
        }
        break;
    }
    case COFFER_SERVE_DT_BOOL: {
        protobuf_c_boolean *v = coffer_serve__scratch_alloc(s, n, sizeof(*v));
        if (v == NULL)
            return COFFER_E_NOMEM;
        for (size_t i = 0; i < n; i++)
            v[i] = d[i] != 0;
        tp->n_bool_val = n;
        tp->bool_val = v;
        break;
    }
    default:
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "tensor: cannot encode dtype %d", (int)t->dtype);
    }
    return COFFER_OK;
}

/* Pack a built message into coffer_malloc memory. */
enum coffer_err coffer_serve__pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_size)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = coffer_malloc(n ? n : 1);
    if (b == NULL)
        return COFFER_E_NOMEM;
    size_t w = protobuf_c_message_pack(m, b);
    if (COFFER_NEVER(w != n)) {
        coffer_free(b);
        return COFFER_FAIL(COFFER_E_INTERNAL, "protobuf pack wrote %zu of %zu bytes", w, n);
    }
    *out = b;
    *out_size = n;
    return COFFER_OK;
}

enum coffer_err coffer_serve_tensor_encode(const struct coffer_serve_tensor *t, bool tensor_content, uint8_t **out,
                                           size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    struct coffer_serve__scratch s = {0};
    Tensorflow__TensorProto tp;
    enum coffer_err r = coffer_serve__tensor_to_proto(t, tensor_content, &s, &tp);
    if (r == COFFER_OK)
        r = coffer_serve__pack(&tp.base, out, out_size);
    coffer_serve__scratch_free(&s);
    return r;
}

enum coffer_err coffer_serve_tensor_decode(const uint8_t *data, size_t size, const char *name,
                                           const struct coffer_serve_limits *lim, struct coffer_serve_tensor *out,
                                           struct coffer_serve_status *st)
{
    memset(out, 0, sizeof(*out));
    coffer_serve_status_clear(st);
    struct coffer_serve_limits dl;
    lim = coffer_serve__limits(lim, &dl);
    if (name == NULL)
        name = "";
    if (size > lim->max_message_size)
        return coffer_serve_status_set(st, COFFER_SERVE_RESOURCE_EXHAUSTED,
                                       "Received message larger than max (%zu vs. %zu)", size, lim->max_message_size);
    Tensorflow__TensorProto *tp = tensorflow__tensor_proto__unpack(&coffer_serve__pb_alloc, size, data);
    if (tp == NULL)
        return PARSE_ERR(st, name, "not a valid TensorProto message");
    size_t budget = lim->max_total_size;
    enum coffer_err r = coffer_serve__tensor_from_proto(tp, name, lim, &budget, out, st);
    tensorflow__tensor_proto__free_unpacked(tp, &coffer_serve__pb_alloc);
    return r;
}
