/*
 * onnx.c — the ONNX importer: ModelProto bytes to the graph IR.
 *
 * Design: every message is read with pb_next over a child reader of exactly
 * its bytes. Repeated fields are counted in a first pass and filled in a
 * second, so every array is allocated once, at its final size, in the model
 * arena. Tensor data is referred to in place (raw_data, or packed
 * float_data) when its address is aligned for its element type; otherwise,
 * or when it is stored as varints, it is converted into the arena. Large
 * misaligned float32 weights that only Conv, Gemm and MatMul read as
 * their weights are left in the file for the plan to pack from
 * (NN_DEFER_MIN, defer_settle). Names are copied out NUL-terminated.
 *
 * After parsing, names are resolved to value indices with a hash table: a
 * node may only read values defined before it (initializers, inputs, or
 * outputs of earlier nodes), and each value is defined once. That gives the
 * topological order the planner relies on.
 *
 * Invariants: I1 no value index in a node is out of range; I2 every tensor's
 * data holds exactly count * dtype_size bytes; I3 ranks are at most
 * COFFER_NN_MAX_RANK and element counts at most COFFER_NN_MAX_ELEMS.
 *
 * Trusts: nothing in the bytes. Relies on a little-endian host (raw_data is
 * little-endian by the ONNX spec).
 */
#include "nn_int.h"

#include <string.h>

#define NN_MAX_NODES (1u << 20)
#define NN_MAX_NAME 4096
#define NN_MAX_META 4096            /* metadata_props entries */
#define NN_MAX_META_VALUE (1u << 20) /* bytes of one metadata value (a label list) */

static enum coffer_err str_copy_max(struct coffer_arena *a, const struct pb_field *f, const char *what, size_t max,
                                    const char **out)
{
    size_t n = coffer_rd_left(&f->sub);
    if (f->wire != PB_LEN)
        return COFFER_FAIL(COFFER_E_MALFORMED, "%s: expected a string (wire type %u)", what, f->wire);
    if (n > max)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "%s: string of %zu bytes (cap %zu)", what, n, max);
    const uint8_t *p = f->sub.data + f->sub.pos;
    if (memchr(p, 0, n) != NULL)
        return COFFER_FAIL(COFFER_E_MALFORMED, "%s: string contains a NUL byte", what);
    char *s = coffer_arena_alloc(a, n + 1, 1);
    if (s == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "%s: no memory for a string", what);
    memcpy(s, p, n);
    *out = s;
    return COFFER_OK;
}

static enum coffer_err str_copy(struct coffer_arena *a, const struct pb_field *f, const char *what, const char **out)
{
    return str_copy_max(a, f, what, NN_MAX_NAME, out);
}

static enum coffer_err want_wire(const struct pb_field *f, uint32_t wire, const char *what)
{
    if (f->wire != wire)
        return COFFER_FAIL(COFFER_E_MALFORMED, "%s: field %u has wire type %u, expected %u", what, f->num, f->wire, wire);
    return COFFER_OK;
}

/* ------------------------------------------------------------- tensors */

/* Reads repeated scalars of field f into dst (as int64, float or double),
 * starting at *k. */
static enum coffer_err read_scalars(const struct pb_field *f, uint32_t wire, int kind, void *dst, size_t cap, size_t *k)
{
    struct coffer_rd s;
    bool packed = f->wire == PB_LEN;
    if (packed)
        s = f->sub;
    for (;;) {
        uint64_t v;
        enum coffer_err r = COFFER_OK;
        if (!packed) {
            v = f->v;
        } else {
            if (coffer_rd_left(&s) == 0)
                break;
            if (wire == PB_VARINT)
                r = coffer_rd_varint(&s, &v);
            else if (wire == PB_I32) {
                uint32_t w;
                r = coffer_rd_u32le(&s, &w);
                v = w;
            } else
                r = coffer_rd_u64le(&s, &v);
            if (r != COFFER_OK)
                return r;
        }
        if (*k >= cap)
            return COFFER_FAIL(COFFER_E_INTERNAL, "scalar count changed between passes");
        if (kind == 0)
            ((int64_t *)dst)[*k] = (int64_t)v;
        else if (kind == 1) {
            uint32_t w = (uint32_t)v;
            memcpy((float *)dst + *k, &w, 4);
        } else {
            double d;
            memcpy(&d, &v, 8);
            ((float *)dst)[*k] = (float)d;
        }
        (*k)++;
        if (!packed)
            break;
    }
    return COFFER_OK;
}

enum coffer_err nn_tensor_parse(struct coffer_arena *a, struct coffer_rd *rd, struct nn_tdata *t, size_t *copied,
                                bool defer)
{
    memset(t, 0, sizeof(*t));
    t->name = "";
    struct pb_field f;
    const uint8_t *raw = NULL;
    size_t raw_size = 0;
    bool has_raw = false;
    size_t n_float = 0, n_i32 = 0, n_i64 = 0, n_dbl = 0, n_f_occ = 0;
    const uint8_t *fpacked = NULL;
    int64_t data_type = 0;
    enum coffer_err r;
    struct coffer_rd rd0 = *rd;

    while (coffer_rd_left(rd) > 0) {
        if ((r = pb_next(rd, &f)) != COFFER_OK)
            return r;
        size_t n;
        switch (f.num) {
        case 1: /* dims */
            if ((r = pb_count(&f, PB_VARINT, &n)) != COFFER_OK)
                return r;
            if (t->rank + n > COFFER_NN_MAX_RANK)
                return COFFER_FAIL(COFFER_E_UNSUPPORTED, "tensor: rank over %d", COFFER_NN_MAX_RANK);
            {
                size_t k = (size_t)t->rank;
                if ((r = read_scalars(&f, PB_VARINT, 0, t->dims, COFFER_NN_MAX_RANK, &k)) != COFFER_OK)
                    return r;
                t->rank = (int)k;
            }
            break;
        case 2:
            if ((r = want_wire(&f, PB_VARINT, "tensor.data_type")) != COFFER_OK)
                return r;
            data_type = (int64_t)f.v;
            break;
        case 3:
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "tensor: segmented tensors are not supported");
        case 4:
            if ((r = pb_count(&f, PB_I32, &n)) != COFFER_OK)
                return r;
            n_float += n;
            n_f_occ++;
            if (f.wire == PB_LEN)
                fpacked = f.sub.data + f.sub.pos;
            break;
        case 5:
            if ((r = pb_count(&f, PB_VARINT, &n)) != COFFER_OK)
                return r;
            n_i32 += n;
            break;
        case 6:
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "tensor: string data is not supported");
        case 7:
            if ((r = pb_count(&f, PB_VARINT, &n)) != COFFER_OK)
                return r;
            n_i64 += n;
            break;
        case 8:
            if ((r = str_copy(a, &f, "tensor.name", &t->name)) != COFFER_OK)
                return r;
            break;
        case 9:
            if ((r = want_wire(&f, PB_LEN, "tensor.raw_data")) != COFFER_OK)
                return r;
            raw = f.sub.data + f.sub.pos;
            raw_size = coffer_rd_left(&f.sub);
            has_raw = true;
            break;
        case 10:
            if ((r = pb_count(&f, PB_I64, &n)) != COFFER_OK)
                return r;
            n_dbl += n;
            break;
        case 11:
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "tensor '%s': uint64_data is not supported", t->name);
        case 13:
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "tensor '%s': external data is not supported "
                               "(the model must carry its weights inside the file)", t->name);
        case 14:
            if ((r = want_wire(&f, PB_VARINT, "tensor.data_location")) != COFFER_OK)
                return r;
            if (f.v != 0)
                return COFFER_FAIL(COFFER_E_UNSUPPORTED, "tensor '%s': external data is not supported "
                                   "(data_location=EXTERNAL)", t->name);
            break;
        default:
            break;
        }
    }
    (void)rd0;
    if (data_type != COFFER_NN_FLOAT && data_type != COFFER_NN_INT64 && data_type != COFFER_NN_BOOL)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "tensor '%s': dtype %s (%lld) is not supported "
                           "(float32, int64 and bool are)", t->name,
                           coffer_nn_dtype_name((enum coffer_nn_dtype)data_type), (long long)data_type);
    t->dtype = (enum coffer_nn_dtype)data_type;
    size_t count = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "tensor '%s': negative dimension %lld", t->name,
                               (long long)t->dims[i]);
        if (!coffer_size_mul(count, (size_t)t->dims[i], &count) || count > COFFER_NN_MAX_ELEMS)
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "tensor '%s': element count over %zu", t->name,
                               (size_t)COFFER_NN_MAX_ELEMS);
    }
    t->count = count;
    size_t es = coffer_nn_dtype_size(t->dtype);
    size_t bytes = count * es;
    size_t typed = n_float + n_i32 + n_i64 + n_dbl;
    if (has_raw) {
        if (typed != 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "tensor '%s': both raw_data and typed data", t->name);
        if (raw_size != bytes)
            return COFFER_FAIL(COFFER_E_MALFORMED, "tensor '%s': raw_data has %zu bytes, shape needs %zu", t->name,
                               raw_size, bytes);
        if (((uintptr_t)raw % es) == 0) {
            t->data = raw;
            return COFFER_OK;
        }
        if (defer && t->dtype == COFFER_NN_FLOAT && bytes >= NN_DEFER_MIN) {
            t->raw = raw; /* copied by defer_settle or the plan */
            return COFFER_OK;
        }
        void *p = coffer_arena_alloc(a, bytes ? bytes : 1, 64);
        if (p == NULL)
            return COFFER_FAIL(COFFER_E_NOMEM, "tensor '%s': no memory for %zu bytes", t->name, bytes);
        memcpy(p, raw, bytes);
        t->data = p;
        t->copied = true;
        *copied += bytes;
        return COFFER_OK;
    }
    size_t have;
    int src_field;
    if (t->dtype == COFFER_NN_FLOAT) {
        if (n_i32 + n_i64 != 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "tensor '%s': float32 data in an integer field", t->name);
        have = n_float + n_dbl;
        src_field = n_dbl ? 10 : 4;
        if (n_float && n_dbl)
            return COFFER_FAIL(COFFER_E_MALFORMED, "tensor '%s': both float_data and double_data", t->name);
    } else if (t->dtype == COFFER_NN_INT64) {
        if (n_float + n_i32 + n_dbl != 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "tensor '%s': int64 data outside int64_data", t->name);
        have = n_i64;
        src_field = 7;
    } else {
        if (n_float + n_i64 + n_dbl != 0)
            return COFFER_FAIL(COFFER_E_MALFORMED, "tensor '%s': bool data outside int32_data", t->name);
        have = n_i32;
        src_field = 5;
    }
    if (have != count)
        return COFFER_FAIL(COFFER_E_MALFORMED, "tensor '%s': %zu data elements, shape needs %zu", t->name, have, count);
    if (count == 0) {
        t->data = "";
        return COFFER_OK;
    }
    if (src_field == 4 && n_f_occ == 1 && fpacked != NULL && ((uintptr_t)fpacked % 4) == 0) {
        t->data = fpacked;
        return COFFER_OK;
    }
    /* second pass: convert into the arena */
    void *dst = coffer_arena_alloc(a, count * (es < 8 ? 8 : es), 64);
    if (dst == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "tensor '%s': no memory for %zu elements", t->name, count);
    struct coffer_rd rd2 = rd0;
    size_t k = 0;
    int64_t *tmp64 = dst; /* int64 or bool-as-int64 staging */
    while (coffer_rd_left(&rd2) > 0) {
        if ((r = pb_next(&rd2, &f)) != COFFER_OK)
            return r;
        if ((int)f.num != src_field)
            continue;
        if (src_field == 4)
            r = read_scalars(&f, PB_I32, 1, dst, count, &k);
        else if (src_field == 10)
            r = read_scalars(&f, PB_I64, 2, dst, count, &k);
        else
            r = read_scalars(&f, PB_VARINT, 0, tmp64, count, &k);
        if (r != COFFER_OK)
            return r;
    }
    if (t->dtype == COFFER_NN_BOOL) {
        uint8_t *b = dst;
        for (size_t i = 0; i < count; i++)
            b[i] = tmp64[i] != 0; /* forward in place: b[i] is at or before tmp64[i] */
    }
    t->data = dst;
    t->copied = true;
    *copied += bytes;
    return COFFER_OK;
}

/* ---------------------------------------------------------- attributes */

static enum coffer_err attr_parse(struct coffer_arena *a, struct coffer_rd *rd, struct nn_attr *at, size_t *copied)
{
    struct coffer_rd rd0 = *rd;
    struct pb_field f;
    enum coffer_err r;
    size_t n_f = 0, n_i = 0;
    bool has[22] = {0};
    int64_t type = 0;
    at->name = "";
    while (coffer_rd_left(rd) > 0) {
        if ((r = pb_next(rd, &f)) != COFFER_OK)
            return r;
        size_t n;
        if (f.num < 22)
            has[f.num] = true;
        switch (f.num) {
        case 1:
            if ((r = str_copy(a, &f, "attribute.name", &at->name)) != COFFER_OK)
                return r;
            break;
        case 2:
            if ((r = want_wire(&f, PB_I32, "attribute.f")) != COFFER_OK)
                return r;
            {
                uint32_t w = (uint32_t)f.v;
                memcpy(&at->f, &w, 4);
            }
            break;
        case 3:
            if ((r = want_wire(&f, PB_VARINT, "attribute.i")) != COFFER_OK)
                return r;
            at->i = (int64_t)f.v;
            break;
        case 4:
            if (f.wire != PB_LEN)
                return COFFER_FAIL(COFFER_E_MALFORMED, "attribute.s: not bytes");
            if ((r = str_copy(a, &f, "attribute.s", &at->s)) != COFFER_OK)
                return r;
            break;
        case 5:
            if ((r = want_wire(&f, PB_LEN, "attribute.t")) != COFFER_OK)
                return r;
            if ((r = nn_tensor_parse(a, &f.sub, &at->t, copied, false)) != COFFER_OK) {
                coffer_err_context("attribute '%s'", at->name);
                return r;
            }
            break;
        case 7:
            if ((r = pb_count(&f, PB_I32, &n)) != COFFER_OK)
                return r;
            n_f += n;
            break;
        case 8:
            if ((r = pb_count(&f, PB_VARINT, &n)) != COFFER_OK)
                return r;
            n_i += n;
            break;
        case 20:
            if ((r = want_wire(&f, PB_VARINT, "attribute.type")) != COFFER_OK)
                return r;
            type = (int64_t)f.v;
            break;
        case 21:
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "attribute '%s': references to function attributes are not supported",
                               at->name);
        default:
            break;
        }
    }
    if (type == 0) { /* old writers leave type out */
        if (has[2]) type = NN_ATTR_FLOAT;
        else if (has[3]) type = NN_ATTR_INT;
        else if (has[4]) type = NN_ATTR_STRING;
        else if (has[5]) type = NN_ATTR_TENSOR;
        else if (has[6]) type = NN_ATTR_GRAPH;
        else if (has[7]) type = NN_ATTR_FLOATS;
        else if (has[8]) type = NN_ATTR_INTS;
        else if (has[9]) type = NN_ATTR_STRINGS;
    }
    if (type < 1 || type > NN_ATTR_STRINGS)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "attribute '%s': type %lld is not supported", at->name, (long long)type);
    at->type = (enum nn_attr_type)type;
    if (at->type == NN_ATTR_TENSOR && !has[5])
        return COFFER_FAIL(COFFER_E_MALFORMED, "attribute '%s': tensor attribute without a tensor", at->name);
    if (at->type == NN_ATTR_FLOATS || at->type == NN_ATTR_INTS) {
        size_t cnt = at->type == NN_ATTR_FLOATS ? n_f : n_i;
        if (cnt > (1u << 24))
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "attribute '%s': %zu values", at->name, cnt);
        void *dst = coffer_arena_alloc(a, (cnt ? cnt : 1) * 8, 8);
        if (dst == NULL)
            return COFFER_FAIL(COFFER_E_NOMEM, "attribute '%s'", at->name);
        size_t k = 0;
        struct coffer_rd rd2 = rd0;
        while (coffer_rd_left(&rd2) > 0) {
            if ((r = pb_next(&rd2, &f)) != COFFER_OK)
                return r;
            if (at->type == NN_ATTR_FLOATS && f.num == 7)
                r = read_scalars(&f, PB_I32, 1, dst, cnt, &k);
            else if (at->type == NN_ATTR_INTS && f.num == 8)
                r = read_scalars(&f, PB_VARINT, 0, dst, cnt, &k);
            if (r != COFFER_OK)
                return r;
        }
        at->n = cnt;
        if (at->type == NN_ATTR_FLOATS)
            at->floats = dst;
        else
            at->ints = dst;
    }
    return COFFER_OK;
}

/* --------------------------------------------------------------- nodes */

struct node_raw {
    const char **in_names;
    const char **out_names;
};

static enum coffer_err node_parse(struct coffer_nn_model *m, struct coffer_rd *rd, struct nn_node *n,
                                  struct node_raw *raw)
{
    struct coffer_arena *a = m->arena;
    struct coffer_rd rd0 = *rd;
    struct pb_field f;
    enum coffer_err r;
    size_t ni = 0, no = 0, na = 0;
    n->name = "";
    n->op_type = "";
    n->domain = "";
    while (coffer_rd_left(rd) > 0) {
        if ((r = pb_next(rd, &f)) != COFFER_OK)
            return r;
        switch (f.num) {
        case 1: ni++; break;
        case 2: no++; break;
        case 3:
            if ((r = str_copy(a, &f, "node.name", &n->name)) != COFFER_OK)
                return r;
            break;
        case 4:
            if ((r = str_copy(a, &f, "node.op_type", &n->op_type)) != COFFER_OK)
                return r;
            break;
        case 5: na++; break;
        case 7:
            if ((r = str_copy(a, &f, "node.domain", &n->domain)) != COFFER_OK)
                return r;
            break;
        default: break;
        }
    }
    if (ni > NN_MAX_IO || no > NN_MAX_IO)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "node '%s' (%s): %zu inputs, %zu outputs (cap %d)", n->name,
                           n->op_type, ni, no, NN_MAX_IO);
    if (na > 256)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "node '%s' (%s): %zu attributes", n->name, n->op_type, na);
    raw->in_names = coffer_arena_alloc(a, (ni + 1) * sizeof(char *), 8);
    raw->out_names = coffer_arena_alloc(a, (no + 1) * sizeof(char *), 8);
    n->in = coffer_arena_alloc(a, (ni + 1) * sizeof(int), 8);
    n->out = coffer_arena_alloc(a, (no + 1) * sizeof(int), 8);
    n->attrs = coffer_arena_alloc(a, (na + 1) * sizeof(struct nn_attr), 8);
    if (!raw->in_names || !raw->out_names || !n->in || !n->out || !n->attrs)
        return COFFER_FAIL(COFFER_E_NOMEM, "node '%s'", n->name);
    struct coffer_rd rd2 = rd0;
    while (coffer_rd_left(&rd2) > 0) {
        if ((r = pb_next(&rd2, &f)) != COFFER_OK)
            return r;
        if (f.num == 1) {
            if ((r = str_copy(a, &f, "node.input", &raw->in_names[n->n_in++])) != COFFER_OK)
                return r;
        } else if (f.num == 2) {
            if ((r = str_copy(a, &f, "node.output", &raw->out_names[n->n_out++])) != COFFER_OK)
                return r;
        } else if (f.num == 5) {
            if ((r = want_wire(&f, PB_LEN, "node.attribute")) != COFFER_OK)
                return r;
            if ((r = attr_parse(a, &f.sub, &n->attrs[n->n_attrs], &m->weights_copied)) != COFFER_OK)
                return r;
            for (int k = 0; k < n->n_attrs; k++)
                if (strcmp(n->attrs[k].name, n->attrs[n->n_attrs].name) == 0)
                    return COFFER_FAIL(COFFER_E_MALFORMED, "attribute '%s' given twice", n->attrs[k].name);
            n->n_attrs++;
        }
    }
    return COFFER_OK;
}

/* ------------------------------------------------------ value infos */

struct vinfo {
    const char *name;
    bool has_type;
    enum coffer_nn_dtype dtype;
    int rank; /* -1: no shape */
    int64_t dims[COFFER_NN_MAX_RANK];
};

static enum coffer_err vinfo_parse(struct coffer_arena *a, struct coffer_rd *rd, struct vinfo *v)
{
    struct pb_field f, g, h, d, e;
    enum coffer_err r;
    v->name = "";
    v->rank = -1;
    while (coffer_rd_left(rd) > 0) {
        if ((r = pb_next(rd, &f)) != COFFER_OK)
            return r;
        if (f.num == 1) {
            if ((r = str_copy(a, &f, "value_info.name", &v->name)) != COFFER_OK)
                return r;
        } else if (f.num == 2) {
            if ((r = want_wire(&f, PB_LEN, "value_info.type")) != COFFER_OK)
                return r;
            while (coffer_rd_left(&f.sub) > 0) {
                if ((r = pb_next(&f.sub, &g)) != COFFER_OK)
                    return r;
                if (g.num == 6)
                    continue; /* denotation */
                if (g.num != 1)
                    return COFFER_FAIL(COFFER_E_UNSUPPORTED, "value '%s': only tensor types are supported "
                                       "(type field %u)", v->name, g.num);
                if ((r = want_wire(&g, PB_LEN, "type.tensor_type")) != COFFER_OK)
                    return r;
                v->has_type = true;
                while (coffer_rd_left(&g.sub) > 0) {
                    if ((r = pb_next(&g.sub, &h)) != COFFER_OK)
                        return r;
                    if (h.num == 1) {
                        if ((r = want_wire(&h, PB_VARINT, "tensor_type.elem_type")) != COFFER_OK)
                            return r;
                        v->dtype = (enum coffer_nn_dtype)(h.v > 64 ? 64 : h.v);
                    } else if (h.num == 2) {
                        if ((r = want_wire(&h, PB_LEN, "tensor_type.shape")) != COFFER_OK)
                            return r;
                        v->rank = 0;
                        while (coffer_rd_left(&h.sub) > 0) {
                            if ((r = pb_next(&h.sub, &d)) != COFFER_OK)
                                return r;
                            if (d.num != 1)
                                continue;
                            if ((r = want_wire(&d, PB_LEN, "shape.dim")) != COFFER_OK)
                                return r;
                            if (v->rank >= COFFER_NN_MAX_RANK)
                                return COFFER_FAIL(COFFER_E_UNSUPPORTED, "value '%s': rank over %d", v->name,
                                                   COFFER_NN_MAX_RANK);
                            int64_t dv = -1;
                            while (coffer_rd_left(&d.sub) > 0) {
                                if ((r = pb_next(&d.sub, &e)) != COFFER_OK)
                                    return r;
                                if (e.num == 1) {
                                    if ((r = want_wire(&e, PB_VARINT, "dim.dim_value")) != COFFER_OK)
                                        return r;
                                    dv = (int64_t)e.v;
                                    if (dv < 0)
                                        return COFFER_FAIL(COFFER_E_MALFORMED, "value '%s': negative dimension",
                                                           v->name);
                                } else if (e.num == 2) {
                                    dv = -1;
                                }
                            }
                            v->dims[v->rank++] = dv;
                        }
                    }
                }
            }
        }
    }
    return COFFER_OK;
}

/* ----------------------------------------------------------- name map */

struct namemap {
    int *slots;
    size_t mask;
    struct nn_val *vals;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int map_find(const struct namemap *nm, const char *name)
{
    for (size_t i = hash_str(name) & nm->mask;; i = (i + 1) & nm->mask) {
        int v = nm->slots[i];
        if (v < 0)
            return -1;
        if (strcmp(nm->vals[v].name, name) == 0)
            return v;
    }
}

static void map_put(struct namemap *nm, const char *name, int idx)
{
    size_t i = hash_str(name) & nm->mask;
    while (nm->slots[i] >= 0)
        i = (i + 1) & nm->mask;
    nm->slots[i] = idx;
}

/* --------------------------------------------------------------- graph */

static enum coffer_err graph_parse(struct coffer_nn_model *m, struct coffer_rd *rd)
{
    struct coffer_arena *a = m->arena;
    struct coffer_rd rd0 = *rd;
    struct pb_field f;
    enum coffer_err r;
    size_t nn = 0, ninit = 0, nin = 0, nout = 0;
    while (coffer_rd_left(rd) > 0) {
        if ((r = pb_next(rd, &f)) != COFFER_OK)
            return r;
        switch (f.num) {
        case 1: nn++; break;
        case 5: ninit++; break;
        case 11: nin++; break;
        case 12: nout++; break;
        case 15:
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "graph: sparse initializers are not supported");
        default: break;
        }
    }
    if (nn > NN_MAX_NODES || ninit > NN_MAX_NODES || nin > 4096 || nout > 4096)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "graph: %zu nodes, %zu initializers, %zu inputs, %zu outputs", nn,
                           ninit, nin, nout);
    if (nout == 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "graph: no outputs");
    struct nn_node *nodes = coffer_arena_alloc(a, (nn + 1) * sizeof(*nodes), 8);
    struct node_raw *raws = coffer_mallocarray(nn + 1, sizeof(*raws));
    struct nn_tdata *inits = coffer_arena_alloc(a, (ninit + 1) * sizeof(*inits), 8);
    struct vinfo *ins = coffer_arena_alloc(a, (nin + 1) * sizeof(*ins), 8);
    struct vinfo *outs = coffer_arena_alloc(a, (nout + 1) * sizeof(*outs), 8);
    int *slots = NULL;
    if (!nodes || !raws || !inits || !ins || !outs) {
        r = COFFER_FAIL(COFFER_E_NOMEM, "graph arrays");
        goto out;
    }
    size_t in_, ii = 0, ki = 0, ko = 0;
    in_ = 0;
    while (coffer_rd_left(&rd0) > 0) {
        if ((r = pb_next(&rd0, &f)) != COFFER_OK)
            goto out;
        if (f.num == 1 || f.num == 5 || f.num == 11 || f.num == 12) {
            if ((r = want_wire(&f, PB_LEN, "graph")) != COFFER_OK)
                goto out;
        }
        if (f.num == 1) {
            if ((r = node_parse(m, &f.sub, &nodes[in_], &raws[in_])) != COFFER_OK) {
                coffer_err_context("node %zu", in_);
                goto out;
            }
            in_++;
        } else if (f.num == 5) {
            if ((r = nn_tensor_parse(a, &f.sub, &inits[ii], &m->weights_copied, true)) != COFFER_OK) {
                coffer_err_context("initializer %zu", ii);
                goto out;
            }
            m->param_count += inits[ii].count;
            m->param_size += inits[ii].count * coffer_nn_dtype_size(inits[ii].dtype);
            ii++;
        } else if (f.num == 11 || f.num == 12) {
            struct vinfo *v = f.num == 11 ? &ins[ki++] : &outs[ko++];
            if ((r = vinfo_parse(a, &f.sub, v)) != COFFER_OK)
                goto out;
        }
    }
    /* values */
    size_t maxv = ninit + nin;
    for (size_t i = 0; i < nn; i++)
        maxv += (size_t)nodes[i].n_out;
    struct nn_val *vals = coffer_arena_alloc(a, (maxv + 1) * sizeof(*vals), 8);
    size_t cap = 16;
    while (cap < maxv * 2)
        cap *= 2;
    slots = coffer_mallocarray(cap, sizeof(int));
    m->g.inputs = coffer_arena_alloc(a, (nin + 1) * sizeof(int), 8);
    m->g.outputs = coffer_arena_alloc(a, (nout + 1) * sizeof(int), 8);
    if (!vals || !slots || !m->g.inputs || !m->g.outputs) {
        r = COFFER_FAIL(COFFER_E_NOMEM, "graph values");
        goto out;
    }
    memset(slots, 0xff, cap * sizeof(int));
    struct namemap nm = {slots, cap - 1, vals};
    size_t nv = 0;
    for (size_t i = 0; i < ninit; i++) {
        if (inits[i].name[0] == '\0') {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "initializer %zu has no name", i);
            goto out;
        }
        if (map_find(&nm, inits[i].name) >= 0) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "initializer '%s' defined twice", inits[i].name);
            goto out;
        }
        struct nn_val *v = &vals[nv];
        v->name = inits[i].name;
        v->kind = NN_VAL_INIT;
        v->init = &inits[i];
        v->producer = -1;
        map_put(&nm, v->name, (int)nv++);
    }
    for (size_t i = 0; i < nin; i++) {
        int k = map_find(&nm, ins[i].name);
        if (k >= 0 && vals[k].kind == NN_VAL_INIT)
            continue; /* an initializer listed as input (IR < 4): a constant here */
        if (k >= 0 || ins[i].name[0] == '\0') {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "graph input '%s' is empty or given twice", ins[i].name);
            goto out;
        }
        if (!ins[i].has_type) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "graph input '%s' has no tensor type", ins[i].name);
            goto out;
        }
        if (coffer_nn_dtype_size(ins[i].dtype) == 0) {
            r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "graph input '%s': dtype %s is not supported", ins[i].name,
                            coffer_nn_dtype_name(ins[i].dtype));
            goto out;
        }
        struct nn_val *v = &vals[nv];
        v->name = ins[i].name;
        v->kind = NN_VAL_INPUT;
        v->producer = -1;
        v->decl_dtype = ins[i].dtype;
        v->decl_rank = ins[i].rank;
        memcpy(v->decl_dims, ins[i].dims, sizeof(v->decl_dims));
        m->g.inputs[m->g.n_inputs++] = (int)nv;
        map_put(&nm, v->name, (int)nv++);
    }
    for (size_t i = 0; i < nn; i++) {
        struct nn_node *n = &nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            const char *s = raws[i].in_names[k];
            if (s[0] == '\0') {
                n->in[k] = -1;
                continue;
            }
            int v = map_find(&nm, s);
            if (v < 0) {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "node '%s' (%s): input '%s' is not defined before it "
                                "(missing, or the graph is not topologically sorted)", n->name, n->op_type, s);
                goto out;
            }
            n->in[k] = v;
        }
        for (int k = 0; k < n->n_out; k++) {
            const char *s = raws[i].out_names[k];
            if (s[0] == '\0') {
                n->out[k] = -1;
                continue;
            }
            if (map_find(&nm, s) >= 0) {
                r = COFFER_FAIL(COFFER_E_MALFORMED, "node '%s' (%s): output '%s' is defined twice", n->name,
                                n->op_type, s);
                goto out;
            }
            struct nn_val *v = &vals[nv];
            v->name = s;
            v->kind = NN_VAL_ACT;
            v->producer = (int)i;
            n->out[k] = (int)nv;
            map_put(&nm, s, (int)nv++);
        }
    }
    for (size_t i = 0; i < nout; i++) {
        int v = map_find(&nm, outs[i].name);
        if (v < 0) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "graph output '%s' is not produced by any node", outs[i].name);
            goto out;
        }
        vals[v].is_output = true;
        vals[v].decl_dtype = outs[i].has_type ? outs[i].dtype : COFFER_NN_UNDEFINED;
        vals[v].decl_rank = outs[i].rank;
        memcpy(vals[v].decl_dims, outs[i].dims, sizeof(vals[v].decl_dims));
        m->g.outputs[m->g.n_outputs++] = v;
    }
    m->g.vals = vals;
    m->g.n_vals = nv;
    m->g.nodes = nodes;
    m->g.n_nodes = nn;
    r = COFFER_OK;
out:
    coffer_free(raws);
    coffer_free(slots);
    return r;
}

/* Deferred weights (nn_tensor_parse) stay in the file only where every
 * reader is a Conv, Gemm or MatMul taking them as input 1, the weights
 * its fast kernels pack at plan time; the others are copied now, as any
 * misaligned tensor is. A weight is copied at most once per plan: into a
 * reused staging buffer for the packers (fast.c), or into the fold arena
 * for a reader that runs on it unpacked (plan.c). That spares resnet50's
 * load 80 MB of copies into fresh memory, and its runs the 80 MB. */
static enum coffer_err defer_settle(struct coffer_nn_model *m)
{
    struct nn_graph *g = &m->g;
    uint8_t *other = coffer_calloc(g->n_vals + 1, 1); /* read other than as weights */
    if (other == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "graph values");
    for (size_t j = 0; j < g->n_nodes; j++) {
        const struct nn_node *n = &g->nodes[j];
        bool w = n->op == NN_OP_CONV || n->op == NN_OP_GEMM || n->op == NN_OP_MATMUL;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && (k != 1 || !w))
                other[n->in[k]] = 1;
    }
    enum coffer_err r = COFFER_OK;
    for (size_t i = 0; i < g->n_vals && r == COFFER_OK; i++) {
        struct nn_val *v = &g->vals[i];
        if (v->kind != NN_VAL_INIT || v->init->raw == NULL)
            continue;
        struct nn_tdata *t = (struct nn_tdata *)v->init; /* the graph's own, in the arena */
        size_t bytes = t->count * sizeof(float);
        if (!other[i] && !v->is_output) {
            if (bytes > m->defer_max)
                m->defer_max = bytes;
            continue;
        }
        void *p = coffer_arena_alloc(m->arena, bytes, 64);
        if (p == NULL) {
            r = COFFER_FAIL(COFFER_E_NOMEM, "tensor '%s': no memory for %zu bytes", t->name, bytes);
            break;
        }
        memcpy(p, t->raw, bytes);
        t->data = p;
        t->raw = NULL;
        t->copied = true;
        m->weights_copied += bytes;
    }
    coffer_free(other);
    return r;
}

/* --------------------------------------------------------------- model */

/* One ModelProto.metadata_props entry (StringStringEntryProto: key 1,
 * value 2). */
static enum coffer_err meta_parse(struct coffer_nn_model *m, struct pb_field *f)
{
    enum coffer_err r;
    if ((r = want_wire(f, PB_LEN, "model.metadata_props")) != COFFER_OK)
        return r;
    if (m->n_meta == NN_MAX_META)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "model: more than %d metadata_props", NN_MAX_META);
    struct nn_meta *e = coffer_arena_alloc(m->arena, sizeof(*e), _Alignof(struct nn_meta));
    if (e == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "model.metadata_props: no memory");
    *e = (struct nn_meta){.key = "", .value = "", .next = m->meta};
    struct pb_field g;
    while (coffer_rd_left(&f->sub) > 0) {
        if ((r = pb_next(&f->sub, &g)) != COFFER_OK)
            return r;
        if (g.num == 1 && (r = str_copy(m->arena, &g, "metadata_props.key", &e->key)) != COFFER_OK)
            return r;
        if (g.num == 2 &&
            (r = str_copy_max(m->arena, &g, "metadata_props.value", NN_MAX_META_VALUE, &e->value)) != COFFER_OK)
            return r;
    }
    m->meta = e;
    m->n_meta++;
    return COFFER_OK;
}

enum coffer_err nn_onnx_parse(struct coffer_nn_model *m, const uint8_t *bytes, size_t size)
{
    struct coffer_rd rd;
    coffer_rd_init(&rd, bytes, size);
    struct pb_field f;
    enum coffer_err r;
    struct coffer_rd graph;
    bool has_graph = false;
    const char *other = NULL;
    m->opset = -1;
    m->producer = "";
    while (coffer_rd_left(&rd) > 0) {
        if ((r = pb_next(&rd, &f)) != COFFER_OK)
            return r;
        if (f.num == 1) {
            if ((r = want_wire(&f, PB_VARINT, "model.ir_version")) != COFFER_OK)
                return r;
            m->ir_version = (int64_t)f.v;
        } else if (f.num == 2) {
            if ((r = str_copy(m->arena, &f, "model.producer_name", &m->producer)) != COFFER_OK)
                return r;
        } else if (f.num == 14) {
            if ((r = meta_parse(m, &f)) != COFFER_OK)
                return r;
        } else if (f.num == 7) {
            if ((r = want_wire(&f, PB_LEN, "model.graph")) != COFFER_OK)
                return r;
            if (has_graph)
                return COFFER_FAIL(COFFER_E_MALFORMED, "model: two graphs");
            graph = f.sub;
            has_graph = true;
        } else if (f.num == 8) {
            if ((r = want_wire(&f, PB_LEN, "model.opset_import")) != COFFER_OK)
                return r;
            const char *domain = "";
            int64_t version = 0;
            struct pb_field g;
            while (coffer_rd_left(&f.sub) > 0) {
                if ((r = pb_next(&f.sub, &g)) != COFFER_OK)
                    return r;
                if (g.num == 1) {
                    if ((r = str_copy(m->arena, &g, "opset_import.domain", &domain)) != COFFER_OK)
                        return r;
                } else if (g.num == 2) {
                    if ((r = want_wire(&g, PB_VARINT, "opset_import.version")) != COFFER_OK)
                        return r;
                    version = (int64_t)g.v;
                }
            }
            if (domain[0] == '\0' || strcmp(domain, "ai.onnx") == 0)
                m->opset = version;
            else if (other == NULL)
                other = domain;
        }
    }
    if (!has_graph)
        return COFFER_FAIL(COFFER_E_MALFORMED, "model: no graph (not an ONNX model?)");
    if (m->opset < 0 && other != NULL)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "model: imports only domain '%s', not ai.onnx", other);
    if (m->opset < 0)
        return COFFER_FAIL(COFFER_E_MALFORMED, "model: no opset_import for the default domain");
    if (m->opset < 1 || m->opset > 17)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "model: opset %lld of domain ai.onnx is not supported (1 to 17 are)",
                           (long long)m->opset);
    if ((r = graph_parse(m, &graph)) != COFFER_OK)
        return r;
    for (size_t i = 0; i < m->g.n_nodes; i++) {
        struct nn_node *n = &m->g.nodes[i];
        n->opset = (int)m->opset;
        const struct nn_op_def *d = NULL;
        if (n->domain[0] == '\0' || strcmp(n->domain, "ai.onnx") == 0)
            d = nn_op_find(n->op_type, &n->op);
        if (d == NULL)
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "op %s (domain '%s', opset %d) of node '%s' is not supported",
                               n->op_type, n->domain[0] ? n->domain : "ai.onnx", n->opset, n->name);
        if (n->opset < 6 && !nn_op_old_ok(n->op))
            return COFFER_FAIL(COFFER_E_UNSUPPORTED, "op %s (domain 'ai.onnx', opset %d) of node '%s' is not supported "
                               "below opset 6", n->op_type, n->opset, n->name);
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && m->g.vals[n->in[k]].kind == NN_VAL_INPUT && nn_op_shape_slot(n->op, n->opset, k))
                m->g.vals[n->in[k]].shape_input = true;
        if (n->n_in < d->min_in || n->n_in > d->max_in || n->n_out < d->min_out || n->n_out > d->max_out)
            return COFFER_FAIL(COFFER_E_MALFORMED, "node '%s' (%s): %d inputs and %d outputs (expected %d-%d and %d-%d)",
                               n->name, n->op_type, n->n_in, n->n_out, d->min_in, d->max_in, d->min_out, d->max_out);
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] < 0 && k == 0)
                return COFFER_FAIL(COFFER_E_MALFORMED, "node '%s' (%s): first output has no name", n->name, n->op_type);
    }
    return defer_settle(m);
}
