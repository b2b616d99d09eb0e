/*
 * shape.c — reference kernels that move data without arithmetic, and the
 * shape ops: Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat,
 * Split, Slice, Gather, Shape, Size, Constant, ConstantOfShape, Identity,
 * Dropout (inference), Pad, Expand, Range, Tile, GatherElements, Trilu,
 * DepthToSpace, SpaceToDepth and ScatterND.
 *
 * Design: every kernel here is dtype-agnostic (it copies elements of
 * dtype_size bytes). Inputs that decide an output shape (Reshape's shape,
 * Slice's starts, Pad's pads, ...) must be constants at plan time; the
 * kernels read the same constants again. Gather is the one op whose
 * indices may arrive at run time: infer checks constant indices, and the
 * kernel writes zeros for an out-of-range runtime index instead of reading
 * outside the data.
 *
 * Trusts: the infer functions' checks (every shape, attribute and constant
 * a kernel reads was validated at plan time) and the planner's placement.
 */
#include "../../nn_int.h"

#include <math.h>
#include <string.h>

#define ANY (NN_F | NN_I | NN_B)

static size_t es_of(const struct nn_val *v) { return coffer_nn_dtype_size(v->dtype); }

static void copy_all(struct nn_ctx *c)
{
    if (c->out[0]->size)
        memcpy(c->out[0]->data, c->in[0]->data, c->out[0]->size);
}

/* -------------------------------------------------------- Identity etc. */

enum coffer_err nn_infer_identity(struct nn_ctx *c)
{
    enum coffer_err r = nn_want_dtype(c, 0, ANY);
    if (r != COFFER_OK)
        return r;
    if (c->node->op == NN_OP_DROPOUT && c->n_in > 2 && c->in[2] != NULL) {
        for (int i = 1; i < 3; i++)
            if (c->in[i] != NULL && c->in[i]->pinned && c->in[i]->kind != NN_VAL_CONST) {
                c->m->deferred = true; /* the value comes with the first run */
                return COFFER_E_STATE;
            }
        if (c->in[2]->kind != NN_VAL_INIT && c->in[2]->kind != NN_VAL_CONST)
            return nn_fail_node(c, COFFER_E_UNSUPPORTED, "training_mode must be a constant");
        if (c->in[2]->dtype != COFFER_NN_BOOL || c->in[2]->count != 1)
            return nn_fail_node(c, COFFER_E_MALFORMED, "training_mode must be one bool");
        if (*(const uint8_t *)c->in[2]->data) {
            /* training with ratio 0 keeps everything: an identity (exporters emit it) */
            const struct nn_val *ratio = c->in[1];
            bool zero = ratio != NULL && (ratio->kind == NN_VAL_INIT || ratio->kind == NN_VAL_CONST) &&
                        ratio->dtype == COFFER_NN_FLOAT && ratio->count == 1 && *(const float *)ratio->data == 0.0f;
            if (!zero)
                return nn_fail_node(c, COFFER_E_UNSUPPORTED, "training mode with a nonzero ratio is not supported");
        }
    }
    if ((r = nn_set_out(c, 0, c->in[0]->dtype, c->in[0]->rank, c->in[0]->dims)) != COFFER_OK)
        return r;
    return nn_set_out(c, 1, COFFER_NN_BOOL, c->in[0]->rank, c->in[0]->dims);
}

void nn_run_identity(struct nn_ctx *c)
{
    copy_all(c);
    if (c->n_out > 1 && c->out[1] != NULL)
        memset(c->out[1]->data, 1, c->out[1]->size);
}

/* -------------------------------------------------------------- Flatten */

enum coffer_err nn_infer_flatten(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t axis;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = nn_attr_int(c->node, "axis", 1, &axis)))
        return r;
    const struct nn_val *x = c->in[0];
    if (axis < -(int64_t)x->rank || axis > x->rank)
        return nn_fail_node(c, COFFER_E_SHAPE, "axis %lld outside rank %d", (long long)axis, x->rank);
    if (axis < 0)
        axis += x->rank;
    int64_t d[2] = {1, 1};
    for (int i = 0; i < x->rank; i++)
        d[i < axis ? 0 : 1] *= x->dims[i];
    return nn_set_out(c, 0, x->dtype, 2, d);
}

void nn_run_flatten(struct nn_ctx *c) { copy_all(c); }

/* -------------------------------------------------------------- Reshape */

enum coffer_err nn_infer_reshape(struct nn_ctx *c)
{
    enum coffer_err r;
    const int64_t *shape;
    size_t n;
    int64_t allowzero;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = nn_attr_int(c->node, "allowzero", 0, &allowzero)) ||
        (r = nn_const_ints(c, 1, &shape, &n)))
        return r;
    const struct nn_val *x = c->in[0];
    if (n > COFFER_NN_MAX_RANK)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "rank %zu", n);
    int64_t dims[COFFER_NN_MAX_RANK];
    int infer = -1;
    size_t known = 1;
    for (size_t i = 0; i < n; i++) {
        int64_t d = shape[i];
        if (d == 0 && !allowzero) {
            if ((int)i >= x->rank)
                return nn_fail_node(c, COFFER_E_SHAPE, "0 at position %zu copies a dimension X lacks", i);
            d = x->dims[i];
        }
        if (d == -1) {
            if (infer >= 0)
                return nn_fail_node(c, COFFER_E_SHAPE, "two -1 dimensions");
            infer = (int)i;
            dims[i] = 1;
            continue;
        }
        if (d < 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "dimension %lld", (long long)d);
        dims[i] = d;
        if (!coffer_size_mul(known, (size_t)d, &known))
            return nn_fail_node(c, COFFER_E_TOO_LARGE, "shape product overflows");
    }
    if (infer >= 0) {
        if (known == 0 || x->count % known != 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "cannot infer -1: %zu elements into blocks of %zu", x->count, known);
        dims[infer] = (int64_t)(x->count / known);
        known = x->count;
    }
    if (known != x->count)
        return nn_fail_node(c, COFFER_E_SHAPE, "reshape of %zu elements to %zu", x->count, known);
    return nn_set_out(c, 0, x->dtype, (int)n, dims);
}

void nn_run_reshape(struct nn_ctx *c) { copy_all(c); }

/* ------------------------------------------------------------ Transpose */

static enum coffer_err get_perm(struct nn_ctx *c, int *perm)
{
    const int64_t *p;
    size_t n;
    int rank = c->in[0]->rank;
    enum coffer_err r = nn_attr_ints(c->node, "perm", &p, &n);
    if (r != COFFER_OK)
        return r;
    if (p == NULL) {
        for (int i = 0; i < rank; i++)
            perm[i] = rank - 1 - i;
        return COFFER_OK;
    }
    if ((int)n != rank)
        return nn_fail_node(c, COFFER_E_SHAPE, "perm has %zu entries for rank %d", n, rank);
    unsigned seen = 0;
    for (int i = 0; i < rank; i++) {
        if (p[i] < 0 || p[i] >= rank || (seen & (1u << p[i])))
            return nn_fail_node(c, COFFER_E_MALFORMED, "perm is not a permutation");
        seen |= 1u << p[i];
        perm[i] = (int)p[i];
    }
    return COFFER_OK;
}

enum coffer_err nn_infer_transpose(struct nn_ctx *c)
{
    enum coffer_err r;
    int perm[COFFER_NN_MAX_RANK];
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = get_perm(c, perm)))
        return r;
    int64_t dims[COFFER_NN_MAX_RANK];
    for (int i = 0; i < c->in[0]->rank; i++)
        dims[i] = c->in[0]->dims[perm[i]];
    return nn_set_out(c, 0, c->in[0]->dtype, c->in[0]->rank, dims);
}

/* Copy with an arbitrary input stride per output dimension. */
static void strided_copy(uint8_t *dst, const uint8_t *src, size_t es, int rank, const int64_t *odims,
                         const int64_t *istride, int64_t base)
{
    size_t total = 1;
    for (int i = 0; i < rank; i++)
        total *= (size_t)odims[i];
    int64_t idx[COFFER_NN_MAX_RANK] = {0};
    int64_t off = base;
    for (size_t i = 0; i < total; i++) {
        memcpy(dst + i * es, src + (size_t)off * es, es);
        for (int k = rank - 1; k >= 0; k--) {
            idx[k]++;
            off += istride[k];
            if (idx[k] < odims[k])
                break;
            off -= istride[k] * idx[k];
            idx[k] = 0;
        }
    }
}

static void contiguous_strides(const struct nn_val *v, int64_t *st)
{
    int64_t s = 1;
    for (int k = v->rank - 1; k >= 0; k--) {
        st[k] = s;
        s *= v->dims[k];
    }
}

void nn_run_transpose(struct nn_ctx *c)
{
    int perm[COFFER_NN_MAX_RANK];
    if (get_perm(c, perm) != COFFER_OK)
        return;
    int64_t st[COFFER_NN_MAX_RANK], ist[COFFER_NN_MAX_RANK];
    contiguous_strides(c->in[0], st);
    for (int i = 0; i < c->in[0]->rank; i++)
        ist[i] = st[perm[i]];
    strided_copy(c->out[0]->data, c->in[0]->data, es_of(c->in[0]), c->out[0]->rank, c->out[0]->dims, ist, 0);
}

/* ---------------------------------------------------- Squeeze, Unsqueeze */

static enum coffer_err get_axes(struct nn_ctx *c, const int64_t **axes, size_t *n)
{
    if (c->node->opset >= 13) {
        *axes = NULL;
        *n = 0;
        if (c->n_in > 1 && c->in[1] != NULL)
            return nn_const_ints(c, 1, axes, n);
        return COFFER_OK;
    }
    return nn_attr_ints(c->node, "axes", axes, n);
}

enum coffer_err nn_infer_squeeze(struct nn_ctx *c)
{
    enum coffer_err r;
    const int64_t *axes;
    size_t n;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = get_axes(c, &axes, &n)))
        return r;
    const struct nn_val *x = c->in[0];
    unsigned mask = 0;
    for (size_t i = 0; i < n; i++) {
        int ax;
        if ((r = nn_axis(c, axes[i], x->rank, &ax)) != COFFER_OK)
            return r;
        if (x->dims[ax] != 1)
            return nn_fail_node(c, COFFER_E_SHAPE, "cannot squeeze axis %d of size %lld", ax, (long long)x->dims[ax]);
        mask |= 1u << ax;
    }
    int64_t dims[COFFER_NN_MAX_RANK];
    int q = 0;
    for (int i = 0; i < x->rank; i++)
        if (!(n == 0 ? x->dims[i] == 1 : (mask & (1u << i))))
            dims[q++] = x->dims[i];
    return nn_set_out(c, 0, x->dtype, q, dims);
}

void nn_run_squeeze(struct nn_ctx *c) { copy_all(c); }

enum coffer_err nn_infer_unsqueeze(struct nn_ctx *c)
{
    enum coffer_err r;
    const int64_t *axes;
    size_t n;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = get_axes(c, &axes, &n)))
        return r;
    const struct nn_val *x = c->in[0];
    int rank = x->rank + (int)n;
    if (n == 0 || rank > COFFER_NN_MAX_RANK)
        return nn_fail_node(c, COFFER_E_SHAPE, "%zu axes on rank %d", n, x->rank);
    unsigned mask = 0;
    for (size_t i = 0; i < n; i++) {
        int ax;
        if ((r = nn_axis(c, axes[i], rank, &ax)) != COFFER_OK)
            return r;
        if (mask & (1u << ax))
            return nn_fail_node(c, COFFER_E_MALFORMED, "axis %d given twice", ax);
        mask |= 1u << ax;
    }
    int64_t dims[COFFER_NN_MAX_RANK];
    for (int i = 0, q = 0; i < rank; i++)
        dims[i] = (mask & (1u << i)) ? 1 : x->dims[q++];
    return nn_set_out(c, 0, x->dtype, rank, dims);
}

void nn_run_unsqueeze(struct nn_ctx *c) { copy_all(c); }

/* --------------------------------------------------------------- Concat */

enum coffer_err nn_infer_concat(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t axis;
    if ((r = nn_attr_int(c->node, "axis", INT64_MIN, &axis)) != COFFER_OK)
        return r;
    if (axis == INT64_MIN)
        return nn_fail_node(c, COFFER_E_MALFORMED, "axis is required");
    const struct nn_val *x = c->in[0];
    int ax;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = nn_axis(c, axis, x->rank, &ax)))
        return r;
    int64_t dims[COFFER_NN_MAX_RANK];
    memcpy(dims, x->dims, sizeof(dims));
    dims[ax] = 0;
    for (int i = 0; i < c->n_in; i++) {
        const struct nn_val *v = c->in[i];
        if ((r = nn_want_dtype(c, i, ANY)) != COFFER_OK)
            return r;
        if (v->dtype != x->dtype || v->rank != x->rank)
            return nn_fail_node(c, COFFER_E_SHAPE, "input %d differs in dtype or rank", i);
        for (int k = 0; k < x->rank; k++)
            if (k != ax && v->dims[k] != x->dims[k])
                return nn_fail_node(c, COFFER_E_SHAPE, "input %d differs in dimension %d", i, k);
        dims[ax] += v->dims[ax];
    }
    return nn_set_out(c, 0, x->dtype, x->rank, dims);
}

void nn_run_concat(struct nn_ctx *c)
{
    int64_t axis = 0;
    axis = nn_ai(c->node, "axis", 0);
    struct nn_val *y = c->out[0];
    int ax = (int)(axis < 0 ? axis + y->rank : axis);
    size_t es = es_of(y), outer = 1, inner = 1;
    for (int i = 0; i < y->rank; i++)
        if (i < ax)
            outer *= (size_t)y->dims[i];
        else if (i > ax)
            inner *= (size_t)y->dims[i];
    size_t row = (size_t)y->dims[ax] * inner * es, at = 0;
    for (int k = 0; k < c->n_in; k++) {
        size_t chunk = (size_t)c->in[k]->dims[ax] * inner * es;
        for (size_t o = 0; o < outer; o++)
            memcpy((uint8_t *)y->data + o * row + at, (const uint8_t *)c->in[k]->data + o * chunk, chunk);
        at += chunk;
    }
}

/* ---------------------------------------------------------------- Split */

static enum coffer_err split_sizes(struct nn_ctx *c, int *ax, int64_t *sizes)
{
    enum coffer_err r;
    int64_t axis;
    const int64_t *sp = NULL;
    size_t n = 0;
    if ((r = nn_attr_int(c->node, "axis", 0, &axis)) || (r = nn_axis(c, axis, c->in[0]->rank, ax)))
        return r;
    if (c->node->opset >= 13) {
        if (c->n_in > 1 && c->in[1] != NULL && (r = nn_const_ints(c, 1, &sp, &n)))
            return r;
    } else if ((r = nn_attr_ints(c->node, "split", &sp, &n)) != COFFER_OK) {
        return r;
    }
    int64_t dim = c->in[0]->dims[*ax];
    if (sp == NULL) {
        if (dim % c->n_out != 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "%lld does not split evenly into %d", (long long)dim, c->n_out);
        for (int i = 0; i < c->n_out; i++)
            sizes[i] = dim / c->n_out;
        return COFFER_OK;
    }
    if ((int)n != c->n_out)
        return nn_fail_node(c, COFFER_E_SHAPE, "split has %zu entries for %d outputs", n, c->n_out);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (sp[i] < 0 || sp[i] > dim)
            return nn_fail_node(c, COFFER_E_SHAPE, "split entry %lld", (long long)sp[i]);
        sum += sp[i];
        sizes[i] = sp[i];
    }
    if (sum != dim)
        return nn_fail_node(c, COFFER_E_SHAPE, "split sums to %lld, axis is %lld", (long long)sum, (long long)dim);
    return COFFER_OK;
}

enum coffer_err nn_infer_split(struct nn_ctx *c)
{
    enum coffer_err r;
    int ax;
    int64_t sizes[NN_MAX_IO];
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = split_sizes(c, &ax, sizes)))
        return r;
    for (int i = 0; i < c->n_out; i++) {
        int64_t dims[COFFER_NN_MAX_RANK];
        memcpy(dims, c->in[0]->dims, sizeof(dims));
        dims[ax] = sizes[i];
        if ((r = nn_set_out(c, i, c->in[0]->dtype, c->in[0]->rank, dims)) != COFFER_OK)
            return r;
    }
    return COFFER_OK;
}

void nn_run_split(struct nn_ctx *c)
{
    int ax;
    int64_t sizes[NN_MAX_IO];
    if (split_sizes(c, &ax, sizes) != COFFER_OK)
        return;
    const struct nn_val *x = c->in[0];
    size_t es = es_of(x), outer = 1, inner = 1;
    for (int i = 0; i < x->rank; i++)
        if (i < ax)
            outer *= (size_t)x->dims[i];
        else if (i > ax)
            inner *= (size_t)x->dims[i];
    size_t row = (size_t)x->dims[ax] * inner * es, at = 0;
    for (int k = 0; k < c->n_out; k++) {
        size_t chunk = (size_t)sizes[k] * inner * es;
        if (c->out[k] != NULL)
            for (size_t o = 0; o < outer; o++)
                memcpy((uint8_t *)c->out[k]->data + o * chunk, (const uint8_t *)x->data + o * row + at, chunk);
        at += chunk;
    }
}

/* ---------------------------------------------------------------- Slice */

struct slice {
    int64_t start[COFFER_NN_MAX_RANK], step[COFFER_NN_MAX_RANK], len[COFFER_NN_MAX_RANK];
};

static enum coffer_err slice_get(struct nn_ctx *c, struct slice *s)
{
    const struct nn_val *x = c->in[0];
    const int64_t *st, *en, *ax = NULL, *sp = NULL;
    size_t ns, ne, na = 0, np = 0;
    enum coffer_err r;
    if (c->node->opset < 10) {
        if ((r = nn_attr_ints(c->node, "starts", &st, &ns)) || (r = nn_attr_ints(c->node, "ends", &en, &ne)) ||
            (r = nn_attr_ints(c->node, "axes", &ax, &na)))
            return r;
        if (st == NULL || en == NULL)
            return nn_fail_node(c, COFFER_E_MALFORMED, "starts and ends are required");
    } else {
        if (c->n_in < 3)
            return nn_fail_node(c, COFFER_E_MALFORMED, "starts and ends are required");
        if ((r = nn_const_ints(c, 1, &st, &ns)) || (r = nn_const_ints(c, 2, &en, &ne)))
            return r;
        if (c->n_in > 3 && c->in[3] && (r = nn_const_ints(c, 3, &ax, &na)))
            return r;
        if (c->n_in > 4 && c->in[4] && (r = nn_const_ints(c, 4, &sp, &np)))
            return r;
    }
    if (ns != ne || (ax && na != ns) || (sp && np != ns) || ns > (size_t)x->rank)
        return nn_fail_node(c, COFFER_E_SHAPE, "starts, ends, axes and steps differ in length");
    for (int i = 0; i < x->rank; i++) {
        s->start[i] = 0;
        s->step[i] = 1;
        s->len[i] = x->dims[i];
    }
    unsigned seen = 0;
    for (size_t i = 0; i < ns; i++) {
        int a;
        if ((r = nn_axis(c, ax ? ax[i] : (int64_t)i, x->rank, &a)) != COFFER_OK)
            return r;
        if (seen & (1u << a))
            return nn_fail_node(c, COFFER_E_MALFORMED, "axis %d repeated", a);
        seen |= 1u << a;
        int64_t dim = x->dims[a], step = sp ? sp[i] : 1, b = st[i], e = en[i];
        if (step == 0 || step < -((int64_t)1 << 40) || step > ((int64_t)1 << 40))
            return nn_fail_node(c, COFFER_E_MALFORMED, "step %lld", (long long)step);
        if (b < 0)
            b = b < -dim ? 0 : b + dim; /* careful with INT64_MIN */
        if (e < 0)
            e = e < -dim ? -1 : e + dim;
        if (step > 0) {
            b = b < 0 ? 0 : b > dim ? dim : b;
            e = e < 0 ? 0 : e > dim ? dim : e;
            s->len[a] = e > b ? (e - b + step - 1) / step : 0;
        } else {
            b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            s->len[a] = b > e ? (b - e + (-step) - 1) / (-step) : 0;
        }
        s->start[a] = b;
        s->step[a] = step;
    }
    return COFFER_OK;
}

enum coffer_err nn_infer_slice(struct nn_ctx *c)
{
    enum coffer_err r;
    struct slice s;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = slice_get(c, &s)))
        return r;
    return nn_set_out(c, 0, c->in[0]->dtype, c->in[0]->rank, s.len);
}

void nn_run_slice(struct nn_ctx *c)
{
    struct slice s;
    if (slice_get(c, &s) != COFFER_OK || c->out[0]->count == 0)
        return;
    int64_t st[COFFER_NN_MAX_RANK], ist[COFFER_NN_MAX_RANK], base = 0;
    contiguous_strides(c->in[0], st);
    for (int i = 0; i < c->in[0]->rank; i++) {
        ist[i] = st[i] * s.step[i];
        base += st[i] * s.start[i];
    }
    strided_copy(c->out[0]->data, c->in[0]->data, es_of(c->in[0]), c->out[0]->rank, c->out[0]->dims, ist, base);
}

/* --------------------------------------------------------------- Gather */

enum coffer_err nn_infer_gather(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t axis;
    int ax;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = nn_want_dtype(c, 1, NN_I)) ||
        (r = nn_attr_int(c->node, "axis", 0, &axis)) || (r = nn_axis(c, axis, c->in[0]->rank, &ax)))
        return r;
    const struct nn_val *x = c->in[0], *ind = c->in[1];
    if (x->rank + ind->rank - 1 > COFFER_NN_MAX_RANK)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "output rank over %d", COFFER_NN_MAX_RANK);
    if (ind->kind == NN_VAL_INIT || ind->kind == NN_VAL_CONST) {
        const int64_t *iv = ind->data;
        for (size_t i = 0; i < ind->count; i++)
            if (iv[i] < -x->dims[ax] || iv[i] >= x->dims[ax])
                return nn_fail_node(c, COFFER_E_RANGE, "index %lld outside [%lld, %lld)", (long long)iv[i],
                                    (long long)-x->dims[ax], (long long)x->dims[ax]);
    }
    int64_t dims[COFFER_NN_MAX_RANK];
    int q = 0;
    for (int i = 0; i < ax; i++)
        dims[q++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++)
        dims[q++] = ind->dims[i];
    for (int i = ax + 1; i < x->rank; i++)
        dims[q++] = x->dims[i];
    return nn_set_out(c, 0, x->dtype, q, dims);
}

void nn_run_gather(struct nn_ctx *c)
{
    int64_t axis = 0;
    axis = nn_ai(c->node, "axis", 0);
    const struct nn_val *x = c->in[0], *ind = c->in[1];
    int ax = (int)(axis < 0 ? axis + x->rank : axis);
    size_t es = es_of(x), outer = 1, inner = 1;
    for (int i = 0; i < x->rank; i++)
        if (i < ax)
            outer *= (size_t)x->dims[i];
        else if (i > ax)
            inner *= (size_t)x->dims[i];
    int64_t dim = x->dims[ax];
    const int64_t *iv = ind->data;
    uint8_t *y = c->out[0]->data;
    size_t chunk = inner * es;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < ind->count; i++) {
            int64_t k = iv[i] < 0 ? iv[i] + dim : iv[i];
            uint8_t *dst = y + (o * ind->count + i) * chunk;
            if (k < 0 || k >= dim)
                memset(dst, 0, chunk); /* a runtime index out of range reads nothing */
            else
                memcpy(dst, (const uint8_t *)x->data + (o * (size_t)dim + (size_t)k) * chunk, chunk);
        }
}

/* ----------------------------------------------------------- Shape, Size */

static void shape_range(struct nn_ctx *c, int64_t *b, int64_t *e)
{
    int64_t rank = c->in[0]->rank;
    int64_t s = 0, t = rank;
    s = nn_ai(c->node, "start", 0);
    t = nn_ai(c->node, "end", rank);
    if (s < 0) s += rank;
    if (t < 0) t += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    t = t < 0 ? 0 : t > rank ? rank : t;
    *b = s;
    *e = t > s ? t : s;
}

enum coffer_err nn_infer_shape(struct nn_ctx *c)
{
    int64_t b, e, t;
    enum coffer_err r;
    if ((r = nn_attr_int(c->node, "start", 0, &t)) || (r = nn_attr_int(c->node, "end", 0, &t)))
        return r;
    shape_range(c, &b, &e);
    int64_t d = e - b;
    return nn_set_out(c, 0, COFFER_NN_INT64, 1, &d);
}

void nn_run_shape(struct nn_ctx *c)
{
    int64_t b, e;
    shape_range(c, &b, &e);
    int64_t *y = c->out[0]->data;
    for (int64_t i = b; i < e; i++)
        y[i - b] = c->in[0]->dims[i];
}

enum coffer_err nn_infer_size(struct nn_ctx *c)
{
    return nn_set_out(c, 0, COFFER_NN_INT64, 0, NULL);
}

void nn_run_size(struct nn_ctx *c)
{
    *(int64_t *)c->out[0]->data = (int64_t)c->in[0]->count;
}

/* ------------------------------------------------------------- Constant */

enum coffer_err nn_infer_constant(struct nn_ctx *c)
{
    const struct nn_node *n = c->node;
    if (n->n_attrs != 1)
        return nn_fail_node(c, COFFER_E_MALFORMED, "needs exactly one value attribute");
    const struct nn_attr *a = &n->attrs[0];
    int64_t one = 0, cnt = (int64_t)a->n;
    if (strcmp(a->name, "value") == 0 && a->type == NN_ATTR_TENSOR)
        return nn_set_out(c, 0, a->t.dtype, a->t.rank, a->t.dims);
    if (strcmp(a->name, "value_float") == 0 && a->type == NN_ATTR_FLOAT)
        return nn_set_out(c, 0, COFFER_NN_FLOAT, 0, &one);
    if (strcmp(a->name, "value_int") == 0 && a->type == NN_ATTR_INT)
        return nn_set_out(c, 0, COFFER_NN_INT64, 0, &one);
    if (strcmp(a->name, "value_floats") == 0 && a->type == NN_ATTR_FLOATS)
        return nn_set_out(c, 0, COFFER_NN_FLOAT, 1, &cnt);
    if (strcmp(a->name, "value_ints") == 0 && a->type == NN_ATTR_INTS)
        return nn_set_out(c, 0, COFFER_NN_INT64, 1, &cnt);
    return nn_fail_node(c, COFFER_E_UNSUPPORTED, "attribute '%s' is not supported", a->name);
}

void nn_run_constant(struct nn_ctx *c)
{
    const struct nn_attr *a = &c->node->attrs[0];
    void *y = c->out[0]->data;
    size_t sz = c->out[0]->size;
    if (a->type == NN_ATTR_TENSOR)
        memcpy(y, a->t.data, sz);
    else if (a->type == NN_ATTR_FLOAT)
        memcpy(y, &a->f, 4);
    else if (a->type == NN_ATTR_INT)
        memcpy(y, &a->i, 8);
    else if (a->type == NN_ATTR_FLOATS && sz)
        memcpy(y, a->floats, sz);
    else if (a->type == NN_ATTR_INTS && sz)
        memcpy(y, a->ints, sz);
}

/* ------------------------------------------------------ ConstantOfShape */

enum coffer_err nn_infer_constofshape(struct nn_ctx *c)
{
    const int64_t *shape;
    size_t n;
    enum coffer_err r = nn_const_ints(c, 0, &shape, &n);
    if (r != COFFER_OK)
        return r;
    if (n > COFFER_NN_MAX_RANK)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "rank %zu", n);
    const struct nn_attr *a = nn_attr_find(c->node, "value");
    enum coffer_nn_dtype dt = COFFER_NN_FLOAT;
    if (a != NULL) {
        if (a->type != NN_ATTR_TENSOR || a->t.count != 1)
            return nn_fail_node(c, COFFER_E_MALFORMED, "value must be a one-element tensor");
        dt = a->t.dtype;
    }
    return nn_set_out(c, 0, dt, (int)n, shape);
}

void nn_run_constofshape(struct nn_ctx *c)
{
    const struct nn_attr *a = nn_attr_find(c->node, "value");
    struct nn_val *y = c->out[0];
    size_t es = es_of(y);
    uint8_t zero[8] = {0};
    const void *v = a ? a->t.data : zero;
    for (size_t i = 0; i < y->count; i++)
        memcpy((uint8_t *)y->data + i * es, v, es);
}

/* ------------------------------------------------------------------ Pad */

struct padspec {
    int64_t pb[COFFER_NN_MAX_RANK];
    int mode; /* 0 constant, 1 reflect, 2 edge */
};

static enum coffer_err pad_get(struct nn_ctx *c, struct padspec *p)
{
    const struct nn_val *x = c->in[0];
    const int64_t *pads;
    size_t n;
    enum coffer_err r;
    const char *mode;
    if ((r = nn_attr_string(c->node, "mode", "constant", &mode)) != COFFER_OK)
        return r;
    p->mode = strcmp(mode, "constant") == 0 ? 0 : strcmp(mode, "reflect") == 0 ? 1 : strcmp(mode, "edge") == 0 ? 2 : -1;
    if (p->mode < 0)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "mode '%s'", mode);
    if (c->node->opset < 11)
        r = nn_attr_ints(c->node, "pads", &pads, &n);
    else
        r = nn_const_ints(c, 1, &pads, &n);
    if (r != COFFER_OK)
        return r;
    if (n != 2 * (size_t)x->rank)
        return nn_fail_node(c, COFFER_E_SHAPE, "pads has %zu entries for rank %d", n, x->rank);
    int64_t dims[COFFER_NN_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        int64_t b = pads[i], e = pads[x->rank + i];
        if (b < -x->dims[i] || e < -x->dims[i] || b > (1 << 24) || e > (1 << 24))
            return nn_fail_node(c, COFFER_E_SHAPE, "pads %lld, %lld on dimension %lld", (long long)b, (long long)e,
                                (long long)x->dims[i]);
        dims[i] = x->dims[i] + b + e;
        if (dims[i] < 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "negative padded size");
        if (p->mode != 0 && dims[i] > 0 && x->dims[i] == 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "cannot reflect or extend an empty dimension");
        if (p->mode == 1 && (b >= x->dims[i] || e >= x->dims[i]) && (b > 0 || e > 0))
            return nn_fail_node(c, COFFER_E_SHAPE, "reflect pad of %lld/%lld on size %lld", (long long)b,
                                (long long)e, (long long)x->dims[i]);
        p->pb[i] = b;
    }
    return nn_set_out(c, 0, x->dtype, x->rank, dims);
}

enum coffer_err nn_infer_pad(struct nn_ctx *c)
{
    struct padspec p;
    enum coffer_err r = nn_want_dtype(c, 0, ANY);
    if (r != COFFER_OK)
        return r;
    if (c->n_in > 2 && c->in[2] != NULL && (c->in[2]->dtype != c->in[0]->dtype || c->in[2]->count != 1))
        return nn_fail_node(c, COFFER_E_SHAPE, "constant_value must be a scalar of X's dtype");
    float f;
    if ((r = nn_attr_float(c->node, "value", 0, &f)) != COFFER_OK)
        return r;
    return pad_get(c, &p);
}

void nn_run_pad(struct nn_ctx *c)
{
    struct padspec p;
    if (pad_get(c, &p) != COFFER_OK)
        return;
    const struct nn_val *x = c->in[0];
    struct nn_val *y = c->out[0];
    size_t es = es_of(x);
    uint8_t cv[8] = {0};
    if (c->node->opset < 11) {
        float f = 0;
        f = nn_af(c->node, "value", 0);
        if (x->dtype == COFFER_NN_FLOAT)
            memcpy(cv, &f, 4);
    } else if (c->n_in > 2 && c->in[2] != NULL) {
        memcpy(cv, c->in[2]->data, es);
    }
    int64_t st[COFFER_NN_MAX_RANK], idx[COFFER_NN_MAX_RANK] = {0};
    contiguous_strides(x, st);
    for (size_t i = 0; i < y->count; i++) {
        int64_t off = 0;
        bool outside = false;
        for (int k = 0; k < x->rank; k++) {
            int64_t j = idx[k] - p.pb[k], d = x->dims[k];
            if (j < 0 || j >= d) {
                if (p.mode == 0) {
                    outside = true;
                    break;
                } else if (p.mode == 2) {
                    j = j < 0 ? 0 : d - 1;
                } else {
                    int64_t period = d > 1 ? 2 * (d - 1) : 1;
                    j = j < 0 ? -j : j;
                    j %= period;
                    if (j >= d)
                        j = period - j;
                }
            }
            off += j * st[k];
        }
        memcpy((uint8_t *)y->data + i * es, outside ? cv : (const uint8_t *)x->data + (size_t)off * es, es);
        for (int k = y->rank - 1; k >= 0; k--) {
            if (++idx[k] < y->dims[k])
                break;
            idx[k] = 0;
        }
    }
}

/* --------------------------------------------------------------- Expand */

enum coffer_err nn_infer_expand(struct nn_ctx *c)
{
    enum coffer_err r;
    const int64_t *shape;
    size_t n;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = nn_const_ints(c, 1, &shape, &n)))
        return r;
    if (n > COFFER_NN_MAX_RANK)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "rank %zu", n);
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK];
    if ((r = nn_broadcast(c, c->in[0]->rank, c->in[0]->dims, (int)n, shape, &rank, dims)) != COFFER_OK)
        return r;
    return nn_set_out(c, 0, c->in[0]->dtype, rank, dims);
}

void nn_run_expand(struct nn_ctx *c)
{
    struct nn_val *y = c->out[0];
    size_t st[COFFER_NN_MAX_RANK];
    int64_t ist[COFFER_NN_MAX_RANK];
    nn_bcast_strides(c->in[0], y->rank, y->dims, st);
    for (int i = 0; i < y->rank; i++)
        ist[i] = (int64_t)st[i];
    if (y->count)
        strided_copy(y->data, c->in[0]->data, es_of(y), y->rank, y->dims, ist, 0);
}

/* ---------------------------------------------------------------- Range */

enum coffer_err nn_infer_range(struct nn_ctx *c)
{
    enum coffer_err r;
    for (int i = 0; i < 3; i++) {
        if ((r = nn_want_dtype(c, i, NN_F | NN_I)) != COFFER_OK)
            return r;
        if (c->in[i]->dtype != c->in[0]->dtype || c->in[i]->count != 1)
            return nn_fail_node(c, COFFER_E_SHAPE, "start, limit and delta must be scalars of one dtype");
        if (c->in[i]->kind != NN_VAL_INIT && c->in[i]->kind != NN_VAL_CONST) {
            if (c->in[i]->pinned) {
                c->m->deferred = true; /* the value comes with the first run */
                return COFFER_E_STATE;
            }
            return nn_fail_node(c, COFFER_E_UNSUPPORTED, "input %d decides the output shape and must be a constant", i);
        }
    }
    double n;
    if (c->in[0]->dtype == COFFER_NN_FLOAT) {
        float s = *(const float *)c->in[0]->data, l = *(const float *)c->in[1]->data, d = *(const float *)c->in[2]->data;
        n = ceil(((double)l - s) / d);
    } else {
        int64_t s = *(const int64_t *)c->in[0]->data, l = *(const int64_t *)c->in[1]->data,
                d = *(const int64_t *)c->in[2]->data;
        if (d == 0)
            return nn_fail_node(c, COFFER_E_MALFORMED, "delta 0");
        n = ceil(((double)l - (double)s) / (double)d);
    }
    if (!(n >= 0))
        n = 0;
    if (n > (double)COFFER_NN_MAX_ELEMS)
        return nn_fail_node(c, COFFER_E_TOO_LARGE, "range of %g elements", n);
    int64_t d = (int64_t)n;
    return nn_set_out(c, 0, c->in[0]->dtype, 1, &d);
}

void nn_run_range(struct nn_ctx *c)
{
    struct nn_val *y = c->out[0];
    if (y->dtype == COFFER_NN_FLOAT) {
        float s = *(const float *)c->in[0]->data, d = *(const float *)c->in[2]->data;
        for (size_t i = 0; i < y->count; i++)
            ((float *)y->data)[i] = s + (float)i * d;
    } else {
        int64_t s = *(const int64_t *)c->in[0]->data, d = *(const int64_t *)c->in[2]->data;
        for (size_t i = 0; i < y->count; i++)
            ((int64_t *)y->data)[i] = (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d);
    }
}

/* ----------------------------------------------------------------- Tile */

enum coffer_err nn_infer_tile(struct nn_ctx *c)
{
    enum coffer_err r;
    const int64_t *rep;
    size_t n;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = nn_const_ints(c, 1, &rep, &n)))
        return r;
    const struct nn_val *x = c->in[0];
    if ((int)n != x->rank)
        return nn_fail_node(c, COFFER_E_SHAPE, "repeats has %zu entries for rank %d", n, x->rank);
    int64_t dims[COFFER_NN_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        if (rep[i] < 0 || rep[i] > (int64_t)COFFER_NN_MAX_ELEMS)
            return nn_fail_node(c, COFFER_E_SHAPE, "repeat %lld", (long long)rep[i]);
        if (__builtin_mul_overflow(x->dims[i], rep[i], &dims[i]))
            return nn_fail_node(c, COFFER_E_TOO_LARGE, "tiled dimension overflows");
    }
    return nn_set_out(c, 0, x->dtype, x->rank, dims);
}

void nn_run_tile(struct nn_ctx *c)
{
    const struct nn_val *x = c->in[0];
    struct nn_val *y = c->out[0];
    size_t es = es_of(x);
    int64_t st[COFFER_NN_MAX_RANK], idx[COFFER_NN_MAX_RANK] = {0};
    contiguous_strides(x, st);
    for (size_t i = 0; i < y->count; i++) {
        int64_t off = 0;
        for (int k = 0; k < x->rank; k++)
            off += (idx[k] % x->dims[k]) * st[k];
        memcpy((uint8_t *)y->data + i * es, (const uint8_t *)x->data + (size_t)off * es, es);
        for (int k = y->rank - 1; k >= 0; k--) {
            if (++idx[k] < y->dims[k])
                break;
            idx[k] = 0;
        }
    }
}

/* -------------------------------------------------------- GatherElements */

enum coffer_err nn_infer_gatherelements(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t axis;
    int ax;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = nn_want_dtype(c, 1, NN_I)) ||
        (r = nn_attr_int(c->node, "axis", 0, &axis)) || (r = nn_axis(c, axis, c->in[0]->rank, &ax)))
        return r;
    const struct nn_val *x = c->in[0], *ind = c->in[1];
    if (ind->rank != x->rank)
        return nn_fail_node(c, COFFER_E_SHAPE, "indices rank %d, data rank %d", ind->rank, x->rank);
    for (int i = 0; i < x->rank; i++)
        if (i != ax && ind->dims[i] > x->dims[i])
            return nn_fail_node(c, COFFER_E_SHAPE, "indices dimension %d exceeds the data's", i);
    return nn_set_out(c, 0, x->dtype, ind->rank, ind->dims);
}

void nn_run_gatherelements(struct nn_ctx *c)
{
    int64_t axis = nn_ai(c->node, "axis", 0);
    const struct nn_val *x = c->in[0], *ind = c->in[1];
    struct nn_val *y = c->out[0];
    int ax = (int)(axis < 0 ? axis + x->rank : axis);
    size_t es = es_of(x);
    int64_t st[COFFER_NN_MAX_RANK], idx[COFFER_NN_MAX_RANK] = {0};
    contiguous_strides(x, st);
    const int64_t *iv = ind->data;
    for (size_t i = 0; i < y->count; i++) {
        int64_t k = iv[i] < 0 ? iv[i] + x->dims[ax] : iv[i], off = 0;
        uint8_t *dst = (uint8_t *)y->data + i * es;
        if (k < 0 || k >= x->dims[ax]) {
            memset(dst, 0, es); /* a runtime index out of range reads nothing */
        } else {
            for (int d = 0; d < x->rank; d++)
                off += (d == ax ? k : idx[d]) * st[d];
            memcpy(dst, (const uint8_t *)x->data + (size_t)off * es, es);
        }
        for (int d = y->rank - 1; d >= 0; d--) {
            if (++idx[d] < y->dims[d])
                break;
            idx[d] = 0;
        }
    }
}

/* ----------------------------------------------------------------- Trilu */

enum coffer_err nn_infer_trilu(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t upper;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = nn_attr_int(c->node, "upper", 1, &upper)))
        return r;
    if (c->in[0]->rank < 2)
        return nn_fail_node(c, COFFER_E_SHAPE, "input rank %d, at least 2", c->in[0]->rank);
    if (c->n_in > 1 && c->in[1] != NULL) {
        if ((r = nn_want_dtype(c, 1, NN_I)) != COFFER_OK)
            return r;
        if (c->in[1]->count != 1)
            return nn_fail_node(c, COFFER_E_SHAPE, "k must be a scalar");
    }
    return nn_set_out(c, 0, c->in[0]->dtype, c->in[0]->rank, c->in[0]->dims);
}

void nn_run_trilu(struct nn_ctx *c)
{
    bool upper = nn_ai(c->node, "upper", 1) != 0;
    int64_t k = c->n_in > 1 && c->in[1] != NULL ? *(const int64_t *)c->in[1]->data : 0;
    const struct nn_val *x = c->in[0];
    size_t es = es_of(x);
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1];
    copy_all(c);
    if (rows == 0 || cols == 0)
        return;
    size_t mats = x->count / (size_t)(rows * cols);
    uint8_t *y = c->out[0]->data;
    for (size_t mt = 0; mt < mats; mt++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) {
                bool keep = upper ? j - i >= k : j - i <= k; /* |j - i| < 2^34: no overflow */
                if (!keep)
                    memset(y + ((mt * (size_t)rows + (size_t)i) * (size_t)cols + (size_t)j) * es, 0, es);
            }
}

/* ------------------------------------------ DepthToSpace, SpaceToDepth */

/* Both are one 6-d transpose: the input viewed as 6-d (vd), permuted by
 * perm into the output order. */
static enum coffer_err d2s_view(struct nn_ctx *c, int64_t *vd, int *perm, int64_t *od)
{
    enum coffer_err r;
    int64_t bs;
    const char *mode;
    if ((r = nn_attr_int(c->node, "blocksize", 0, &bs)) || (r = nn_attr_string(c->node, "mode", "DCR", &mode)))
        return r;
    const struct nn_val *x = c->in[0];
    if (x->rank != 4)
        return nn_fail_node(c, COFFER_E_SHAPE, "input rank %d, expected 4", x->rank);
    if (bs < 1 || bs > (1 << 16))
        return nn_fail_node(c, COFFER_E_MALFORMED, "blocksize %lld", (long long)bs);
    int64_t n = x->dims[0], ch = x->dims[1], h = x->dims[2], w = x->dims[3];
    if (c->node->op == NN_OP_DEPTHTOSPACE) {
        if (ch % (bs * bs) != 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "%lld channels not divisible by blocksize^2", (long long)ch);
        int64_t oc = ch / (bs * bs);
        if (strcmp(mode, "DCR") == 0) {
            int64_t v[6] = {n, bs, bs, oc, h, w};
            int p[6] = {0, 3, 4, 1, 5, 2};
            memcpy(vd, v, sizeof(v));
            memcpy(perm, p, sizeof(p));
        } else if (strcmp(mode, "CRD") == 0) {
            int64_t v[6] = {n, oc, bs, bs, h, w};
            int p[6] = {0, 1, 4, 2, 5, 3};
            memcpy(vd, v, sizeof(v));
            memcpy(perm, p, sizeof(p));
        } else {
            return nn_fail_node(c, COFFER_E_MALFORMED, "mode '%s'", mode);
        }
        od[0] = n, od[1] = oc, od[2] = h * bs, od[3] = w * bs;
    } else {
        if (h % bs != 0 || w % bs != 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "spatial size not divisible by blocksize");
        int64_t v[6] = {n, ch, h / bs, bs, w / bs, bs};
        int p[6] = {0, 3, 5, 1, 2, 4};
        memcpy(vd, v, sizeof(v));
        memcpy(perm, p, sizeof(p));
        od[0] = n, od[1] = ch * bs * bs, od[2] = h / bs, od[3] = w / bs;
    }
    return COFFER_OK;
}

enum coffer_err nn_infer_d2s(struct nn_ctx *c)
{
    int64_t vd[6], od[4];
    int perm[6];
    enum coffer_err r;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = d2s_view(c, vd, perm, od)))
        return r;
    return nn_set_out(c, 0, c->in[0]->dtype, 4, od);
}

void nn_run_d2s(struct nn_ctx *c)
{
    /* zeroed: GCC -O3 cannot see that d2s_view fills them on success */
    int64_t vd[6] = {0}, od[4] = {0}, st[6], ist[6], pd[6];
    int perm[6] = {0};
    if (d2s_view(c, vd, perm, od) != COFFER_OK)
        return;
    int64_t s = 1;
    for (int k = 5; k >= 0; k--) {
        st[k] = s;
        s *= vd[k];
    }
    for (int k = 0; k < 6; k++) {
        ist[k] = st[perm[k]];
        pd[k] = vd[perm[k]];
    }
    strided_copy(c->out[0]->data, c->in[0]->data, es_of(c->in[0]), 6, pd, ist, 0);
}

/* ------------------------------------------------------------- ScatterND */

enum coffer_err nn_infer_scatternd(struct nn_ctx *c)
{
    enum coffer_err r;
    const char *red;
    if ((r = nn_want_dtype(c, 0, ANY)) || (r = nn_want_dtype(c, 1, NN_I)) || (r = nn_want_dtype(c, 2, ANY)) ||
        (r = nn_attr_string(c->node, "reduction", "none", &red)))
        return r;
    const struct nn_val *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    bool none = strcmp(red, "none") == 0;
    if (!none && strcmp(red, "add") != 0 && strcmp(red, "mul") != 0)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "reduction '%s'", red);
    if (!none && x->dtype == COFFER_NN_BOOL)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "reduction on bool");
    if (upd->dtype != x->dtype)
        return nn_fail_node(c, COFFER_E_MALFORMED, "updates and data differ in dtype");
    if (ind->rank < 1 || x->rank < 1)
        return nn_fail_node(c, COFFER_E_SHAPE, "indices and data need rank >= 1");
    int64_t k = ind->dims[ind->rank - 1];
    if (k < 1 || k > x->rank)
        return nn_fail_node(c, COFFER_E_SHAPE, "index depth %lld for data rank %d", (long long)k, x->rank);
    int want = ind->rank - 1 + x->rank - (int)k;
    if (upd->rank != want)
        return nn_fail_node(c, COFFER_E_SHAPE, "updates rank %d, expected %d", upd->rank, want);
    for (int i = 0; i < want; i++) {
        int64_t d = i < ind->rank - 1 ? ind->dims[i] : x->dims[k + i - (ind->rank - 1)];
        if (upd->dims[i] != d)
            return nn_fail_node(c, COFFER_E_SHAPE, "updates dimension %d is %lld, expected %lld", i,
                                (long long)upd->dims[i], (long long)d);
    }
    return nn_set_out(c, 0, x->dtype, x->rank, x->dims);
}

void nn_run_scatternd(struct nn_ctx *c)
{
    const char *red = "none";
    if (nn_attr_string(c->node, "reduction", "none", &red) != COFFER_OK)
        return;
    const struct nn_val *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    int mode = strcmp(red, "add") == 0 ? 1 : strcmp(red, "mul") == 0 ? 2 : 0;
    copy_all(c);
    size_t es = es_of(x);
    int k = (int)ind->dims[ind->rank - 1];
    int64_t st[COFFER_NN_MAX_RANK];
    contiguous_strides(x, st);
    size_t slice = 1;
    for (int i = k; i < x->rank; i++)
        slice *= (size_t)x->dims[i];
    size_t n = (size_t)k ? ind->count / (size_t)k : 0;
    const int64_t *iv = ind->data;
    uint8_t *y = c->out[0]->data;
    for (size_t t = 0; t < n; t++) {
        int64_t off = 0;
        bool ok = true;
        for (int j = 0; j < k; j++) {
            int64_t v = iv[t * (size_t)k + (size_t)j], d = x->dims[j];
            if (v < 0)
                v += d;
            if (v < 0 || v >= d) {
                ok = false; /* a runtime index out of range writes nothing */
                break;
            }
            off += v * st[j];
        }
        if (!ok)
            continue;
        uint8_t *dst = y + (size_t)off * es;
        const uint8_t *src = (const uint8_t *)upd->data + t * slice * es;
        if (mode == 0) {
            memcpy(dst, src, slice * es);
        } else if (x->dtype == COFFER_NN_FLOAT) {
            for (size_t i = 0; i < slice; i++)
                ((float *)dst)[i] = mode == 1 ? ((float *)dst)[i] + ((const float *)src)[i]
                                              : ((float *)dst)[i] * ((const float *)src)[i];
        } else {
            for (size_t i = 0; i < slice; i++) {
                uint64_t a = (uint64_t)((int64_t *)dst)[i], b = (uint64_t)((const int64_t *)src)[i];
                ((int64_t *)dst)[i] = (int64_t)(mode == 1 ? a + b : a * b);
            }
        }
    }
}
