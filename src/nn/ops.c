/*
 * ops.c — the op table and the helpers every op's shape inference uses.
 *
 * Design: one row per supported ONNX op: name, shape-inference function,
 * kernel, and the input/output arity the importer checks. Rows are indexed
 * by enum nn_op and a static assert keeps the table and the enum in step
 * (STYLE §3.17). Infer functions validate attributes and shapes and may
 * fail; kernels may not, so every check a kernel relies on lives in its
 * infer function.
 *
 * Trusts: the importer's invariants (value indices in range, ranks capped).
 */
#include "nn_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define R(name, fam, a, b, c, d) {name, nn_infer_##fam, nn_run_##fam, a, b, c, d}
static const struct nn_op_def op_table[] = {
    [NN_OP_ABS] = R("Abs", unary, 1, 1, 1, 1),
    [NN_OP_NEG] = R("Neg", unary, 1, 1, 1, 1),
    [NN_OP_RELU] = R("Relu", unary, 1, 1, 1, 1),
    [NN_OP_LEAKYRELU] = R("LeakyRelu", unary, 1, 1, 1, 1),
    [NN_OP_SIGMOID] = R("Sigmoid", unary, 1, 1, 1, 1),
    [NN_OP_TANH] = R("Tanh", unary, 1, 1, 1, 1),
    [NN_OP_HARDSIGMOID] = R("HardSigmoid", unary, 1, 1, 1, 1),
    [NN_OP_HARDSWISH] = R("HardSwish", unary, 1, 1, 1, 1),
    [NN_OP_ELU] = R("Elu", unary, 1, 1, 1, 1),
    [NN_OP_SELU] = R("Selu", unary, 1, 1, 1, 1),
    [NN_OP_SOFTPLUS] = R("Softplus", unary, 1, 1, 1, 1),
    [NN_OP_SQRT] = R("Sqrt", unary, 1, 1, 1, 1),
    [NN_OP_EXP] = R("Exp", unary, 1, 1, 1, 1),
    [NN_OP_LOG] = R("Log", unary, 1, 1, 1, 1),
    [NN_OP_ERF] = R("Erf", unary, 1, 1, 1, 1),
    [NN_OP_RECIPROCAL] = R("Reciprocal", unary, 1, 1, 1, 1),
    [NN_OP_FLOOR] = R("Floor", unary, 1, 1, 1, 1),
    [NN_OP_CEIL] = R("Ceil", unary, 1, 1, 1, 1),
    [NN_OP_ADD] = R("Add", binary, 2, 2, 1, 1),
    [NN_OP_SUB] = R("Sub", binary, 2, 2, 1, 1),
    [NN_OP_MUL] = R("Mul", binary, 2, 2, 1, 1),
    [NN_OP_DIV] = R("Div", binary, 2, 2, 1, 1),
    [NN_OP_POW] = R("Pow", binary, 2, 2, 1, 1),
    [NN_OP_PRELU] = R("PRelu", binary, 2, 2, 1, 1),
    [NN_OP_EQUAL] = R("Equal", binary, 2, 2, 1, 1),
    [NN_OP_LESS] = R("Less", binary, 2, 2, 1, 1),
    [NN_OP_GREATER] = R("Greater", binary, 2, 2, 1, 1),
    [NN_OP_SUM] = R("Sum", variadic, 1, NN_MAX_IO, 1, 1),
    [NN_OP_MIN] = R("Min", variadic, 1, NN_MAX_IO, 1, 1),
    [NN_OP_MAX] = R("Max", variadic, 1, NN_MAX_IO, 1, 1),
    [NN_OP_MEAN] = R("Mean", variadic, 1, NN_MAX_IO, 1, 1),
    [NN_OP_WHERE] = R("Where", where, 3, 3, 1, 1),
    [NN_OP_NOT] = R("Not", not, 1, 1, 1, 1),
    [NN_OP_CAST] = R("Cast", cast, 1, 1, 1, 1),
    [NN_OP_CLIP] = R("Clip", clip, 1, 3, 1, 1),
    [NN_OP_CONV] = R("Conv", conv, 2, 3, 1, 1),
    [NN_OP_CONVTRANSPOSE] = R("ConvTranspose", convtranspose, 2, 3, 1, 1),
    [NN_OP_MAXPOOL] = R("MaxPool", pool, 1, 1, 1, 2),
    [NN_OP_AVERAGEPOOL] = R("AveragePool", pool, 1, 1, 1, 1),
    [NN_OP_GLOBALAVERAGEPOOL] = R("GlobalAveragePool", gpool, 1, 1, 1, 1),
    [NN_OP_GLOBALMAXPOOL] = R("GlobalMaxPool", gpool, 1, 1, 1, 1),
    [NN_OP_LRN] = R("LRN", lrn, 1, 1, 1, 1),
    [NN_OP_BATCHNORM] = R("BatchNormalization", batchnorm, 5, 5, 1, 5),
    [NN_OP_INSTANCENORM] = R("InstanceNormalization", instnorm, 3, 3, 1, 1),
    [NN_OP_LAYERNORM] = R("LayerNormalization", layernorm, 2, 3, 1, 3),
    [NN_OP_GEMM] = R("Gemm", gemm, 2, 3, 1, 1),
    [NN_OP_MATMUL] = R("MatMul", matmul, 2, 2, 1, 1),
    [NN_OP_FLATTEN] = R("Flatten", flatten, 1, 1, 1, 1),
    [NN_OP_RESHAPE] = R("Reshape", reshape, 2, 2, 1, 1),
    [NN_OP_TRANSPOSE] = R("Transpose", transpose, 1, 1, 1, 1),
    [NN_OP_SQUEEZE] = R("Squeeze", squeeze, 1, 2, 1, 1),
    [NN_OP_UNSQUEEZE] = R("Unsqueeze", unsqueeze, 1, 2, 1, 1),
    [NN_OP_CONCAT] = R("Concat", concat, 1, NN_MAX_IO, 1, 1),
    [NN_OP_SPLIT] = R("Split", split, 1, 2, 1, NN_MAX_IO),
    [NN_OP_SLICE] = R("Slice", slice, 1, 5, 1, 1),
    [NN_OP_GATHER] = R("Gather", gather, 2, 2, 1, 1),
    [NN_OP_SHAPE] = R("Shape", shape, 1, 1, 1, 1),
    [NN_OP_SIZE] = R("Size", size, 1, 1, 1, 1),
    [NN_OP_CONSTANT] = R("Constant", constant, 0, 0, 1, 1),
    [NN_OP_CONSTANTOFSHAPE] = R("ConstantOfShape", constofshape, 1, 1, 1, 1),
    [NN_OP_IDENTITY] = R("Identity", identity, 1, 1, 1, 1),
    [NN_OP_DROPOUT] = R("Dropout", identity, 1, 3, 1, 2),
    [NN_OP_SOFTMAX] = R("Softmax", softmax, 1, 1, 1, 1),
    [NN_OP_LOGSOFTMAX] = R("LogSoftmax", softmax, 1, 1, 1, 1),
    [NN_OP_REDUCEMEAN] = R("ReduceMean", reduce, 1, 2, 1, 1),
    [NN_OP_REDUCESUM] = R("ReduceSum", reduce, 1, 2, 1, 1),
    [NN_OP_REDUCEMAX] = R("ReduceMax", reduce, 1, 2, 1, 1),
    [NN_OP_REDUCEMIN] = R("ReduceMin", reduce, 1, 2, 1, 1),
    [NN_OP_PAD] = R("Pad", pad, 1, 3, 1, 1),
    [NN_OP_RESIZE] = R("Resize", resize, 1, 4, 1, 1),
    [NN_OP_UPSAMPLE] = R("Upsample", resize, 1, 2, 1, 1),
    [NN_OP_EXPAND] = R("Expand", expand, 2, 2, 1, 1),
    [NN_OP_RANGE] = R("Range", range, 3, 3, 1, 1),
    [NN_OP_TILE] = R("Tile", tile, 2, 2, 1, 1),
    [NN_OP_ARGMAX] = R("ArgMax", argmax, 1, 1, 1, 1),
    [NN_OP_TOPK] = R("TopK", topk, 1, 2, 2, 2),
    [NN_OP_SIN] = R("Sin", unary, 1, 1, 1, 1),
    [NN_OP_COS] = R("Cos", unary, 1, 1, 1, 1),
    [NN_OP_TAN] = R("Tan", unary, 1, 1, 1, 1),
    [NN_OP_ASIN] = R("Asin", unary, 1, 1, 1, 1),
    [NN_OP_ACOS] = R("Acos", unary, 1, 1, 1, 1),
    [NN_OP_ATAN] = R("Atan", unary, 1, 1, 1, 1),
    [NN_OP_SINH] = R("Sinh", unary, 1, 1, 1, 1),
    [NN_OP_COSH] = R("Cosh", unary, 1, 1, 1, 1),
    [NN_OP_ASINH] = R("Asinh", unary, 1, 1, 1, 1),
    [NN_OP_ACOSH] = R("Acosh", unary, 1, 1, 1, 1),
    [NN_OP_ATANH] = R("Atanh", unary, 1, 1, 1, 1),
    [NN_OP_SIGN] = R("Sign", unary, 1, 1, 1, 1),
    [NN_OP_SOFTSIGN] = R("Softsign", unary, 1, 1, 1, 1),
    [NN_OP_ROUND] = R("Round", unary, 1, 1, 1, 1),
    [NN_OP_CELU] = R("Celu", unary, 1, 1, 1, 1),
    [NN_OP_THRESHOLDEDRELU] = R("ThresholdedRelu", unary, 1, 1, 1, 1),
    [NN_OP_SHRINK] = R("Shrink", unary, 1, 1, 1, 1),
    [NN_OP_ISNAN] = R("IsNaN", unary, 1, 1, 1, 1),
    [NN_OP_ISINF] = R("IsInf", unary, 1, 1, 1, 1),
    [NN_OP_AND] = R("And", binary, 2, 2, 1, 1),
    [NN_OP_OR] = R("Or", binary, 2, 2, 1, 1),
    [NN_OP_XOR] = R("Xor", binary, 2, 2, 1, 1),
    [NN_OP_ARGMIN] = R("ArgMin", argmax, 1, 1, 1, 1),
    [NN_OP_REDUCESUMSQUARE] = R("ReduceSumSquare", reduce, 1, 2, 1, 1),
    [NN_OP_REDUCEPROD] = R("ReduceProd", reduce, 1, 2, 1, 1),
    [NN_OP_REDUCEL1] = R("ReduceL1", reduce, 1, 2, 1, 1),
    [NN_OP_REDUCEL2] = R("ReduceL2", reduce, 1, 2, 1, 1),
    [NN_OP_REDUCELOGSUM] = R("ReduceLogSum", reduce, 1, 2, 1, 1),
    [NN_OP_REDUCELOGSUMEXP] = R("ReduceLogSumExp", reduce, 1, 2, 1, 1),
    [NN_OP_LESSOREQUAL] = R("LessOrEqual", binary, 2, 2, 1, 1),
    [NN_OP_GREATEROREQUAL] = R("GreaterOrEqual", binary, 2, 2, 1, 1),
    [NN_OP_GATHERELEMENTS] = R("GatherElements", gatherelements, 2, 2, 1, 1),
    [NN_OP_TRILU] = R("Trilu", trilu, 1, 2, 1, 1),
    [NN_OP_HARDMAX] = R("Hardmax", softmax, 1, 1, 1, 1),
    [NN_OP_DEPTHTOSPACE] = R("DepthToSpace", d2s, 1, 1, 1, 1),
    [NN_OP_SPACETODEPTH] = R("SpaceToDepth", d2s, 1, 1, 1, 1),
    [NN_OP_EINSUM] = R("Einsum", einsum, 1, 8, 1, 1),
    [NN_OP_MOD] = R("Mod", binary, 2, 2, 1, 1),
    [NN_OP_SCATTERND] = R("ScatterND", scatternd, 3, 3, 1, 1),
};
_Static_assert(sizeof(op_table) / sizeof(op_table[0]) == NN_OP_COUNT, "op table and enum nn_op out of step");

const struct nn_op_def *nn_op_find(const char *name, int *op)
{
    for (int i = 0; i < NN_OP_COUNT; i++)
        if (strcmp(op_table[i].name, name) == 0) {
            *op = i;
            return &op_table[i];
        }
    return NULL;
}

const struct nn_op_def *nn_op_get(int op)
{
    return &op_table[op];
}

bool nn_op_shape_slot(int op, int opset, int k)
{
    switch (op) {
    case NN_OP_RESHAPE: case NN_OP_EXPAND: case NN_OP_TILE: case NN_OP_PAD: case NN_OP_TOPK:
    case NN_OP_SQUEEZE: case NN_OP_UNSQUEEZE: case NN_OP_SPLIT: case NN_OP_UPSAMPLE:
    case NN_OP_REDUCEMEAN: case NN_OP_REDUCESUM: case NN_OP_REDUCEMAX: case NN_OP_REDUCEMIN:
    case NN_OP_REDUCESUMSQUARE: case NN_OP_REDUCEPROD: case NN_OP_REDUCEL1: case NN_OP_REDUCEL2:
    case NN_OP_REDUCELOGSUM: case NN_OP_REDUCELOGSUMEXP:
        return k == 1;
    case NN_OP_SLICE: return k >= 1;
    case NN_OP_DROPOUT: return k >= 1; /* ratio and training_mode decide what the op is */
    case NN_OP_RANGE: return true;
    case NN_OP_CONSTANTOFSHAPE: return k == 0;
    case NN_OP_RESIZE: return opset < 11 ? k == 1 : k >= 2;
    default: return false;
    }
}

bool nn_op_old_ok(int op)
{
    switch (op) {
    case NN_OP_ABS: case NN_OP_NEG: case NN_OP_RELU: case NN_OP_SIGMOID: case NN_OP_TANH: case NN_OP_SQRT:
    case NN_OP_EXP: case NN_OP_LOG: case NN_OP_RECIPROCAL: case NN_OP_FLOOR: case NN_OP_CEIL: case NN_OP_SOFTPLUS:
    case NN_OP_NOT: case NN_OP_GLOBALAVERAGEPOOL: case NN_OP_GLOBALMAXPOOL: case NN_OP_IDENTITY:
    case NN_OP_LEAKYRELU: case NN_OP_ELU: case NN_OP_SELU: case NN_OP_HARDSIGMOID: case NN_OP_SOFTSIGN:
    case NN_OP_SIN: case NN_OP_COS: case NN_OP_TAN: case NN_OP_ASIN: case NN_OP_ACOS: case NN_OP_ATAN:
        return true;
    default:
        return false;
    }
}

/* ---------------------------------------------------------- attributes */

const struct nn_attr *nn_attr_find(const struct nn_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

static enum coffer_err attr_type(const struct nn_node *n, const struct nn_attr *a, enum nn_attr_type t)
{
    if (a->type != t)
        return COFFER_FAIL(COFFER_E_MALFORMED, "node '%s' (%s): attribute '%s' has type %d, expected %d", n->name,
                           n->op_type, a->name, a->type, t);
    return COFFER_OK;
}

enum coffer_err nn_attr_int(const struct nn_node *n, const char *name, int64_t def, int64_t *out)
{
    const struct nn_attr *a = nn_attr_find(n, name);
    *out = def;
    if (a == NULL)
        return COFFER_OK;
    enum coffer_err r = attr_type(n, a, NN_ATTR_INT);
    if (r == COFFER_OK)
        *out = a->i;
    return r;
}

enum coffer_err nn_attr_float(const struct nn_node *n, const char *name, float def, float *out)
{
    const struct nn_attr *a = nn_attr_find(n, name);
    *out = def;
    if (a == NULL)
        return COFFER_OK;
    enum coffer_err r = attr_type(n, a, NN_ATTR_FLOAT);
    if (r == COFFER_OK)
        *out = a->f;
    return r;
}

enum coffer_err nn_attr_ints(const struct nn_node *n, const char *name, const int64_t **out, size_t *count)
{
    const struct nn_attr *a = nn_attr_find(n, name);
    *out = NULL;
    *count = 0;
    if (a == NULL)
        return COFFER_OK;
    enum coffer_err r = attr_type(n, a, NN_ATTR_INTS);
    if (r == COFFER_OK) {
        *out = a->ints;
        *count = a->n;
    }
    return r;
}

enum coffer_err nn_attr_floats(const struct nn_node *n, const char *name, const float **out, size_t *count)
{
    const struct nn_attr *a = nn_attr_find(n, name);
    *out = NULL;
    *count = 0;
    if (a == NULL)
        return COFFER_OK;
    enum coffer_err r = attr_type(n, a, NN_ATTR_FLOATS);
    if (r == COFFER_OK) {
        *out = a->floats;
        *count = a->n;
    }
    return r;
}

enum coffer_err nn_attr_string(const struct nn_node *n, const char *name, const char *def, const char **out)
{
    const struct nn_attr *a = nn_attr_find(n, name);
    *out = def;
    if (a == NULL)
        return COFFER_OK;
    enum coffer_err r = attr_type(n, a, NN_ATTR_STRING);
    if (r == COFFER_OK)
        *out = a->s ? a->s : "";
    return r;
}

int64_t nn_ai(const struct nn_node *n, const char *name, int64_t def)
{
    int64_t v;
    return nn_attr_int(n, name, def, &v) == COFFER_OK ? v : def;
}

float nn_af(const struct nn_node *n, const char *name, float def)
{
    float v;
    return nn_attr_float(n, name, def, &v) == COFFER_OK ? v : def;
}

/* ------------------------------------------------------- infer helpers */

enum coffer_err nn_fail_node(struct nn_ctx *c, enum coffer_err e, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return COFFER_FAIL(e, "node '%s' (%s, opset %d): %s", c->node->name, c->node->op_type, c->node->opset, buf);
}

enum coffer_err nn_set_out(struct nn_ctx *c, int i, enum coffer_nn_dtype dt, int rank, const int64_t *dims)
{
    if (i >= c->n_out || c->out[i] == NULL)
        return COFFER_OK; /* an omitted optional output */
    struct nn_val *v = c->out[i];
    if (rank < 0 || rank > COFFER_NN_MAX_RANK)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "output rank %d (at most %d)", rank, COFFER_NN_MAX_RANK);
    size_t es = coffer_nn_dtype_size(dt);
    if (es == 0)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "output dtype %s is not supported", coffer_nn_dtype_name(dt));
    size_t n = 1;
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "output %d has negative dimension %lld", i, (long long)dims[k]);
        if (!coffer_size_mul(n, (size_t)dims[k], &n) || n > COFFER_NN_MAX_ELEMS)
            return nn_fail_node(c, COFFER_E_TOO_LARGE, "output %d has more than %zu elements", i,
                                (size_t)COFFER_NN_MAX_ELEMS);
        v->dims[k] = dims[k];
    }
    v->dtype = dt;
    v->rank = rank;
    v->count = n;
    v->size = n * es;
    v->known = true;
    return COFFER_OK;
}

enum coffer_err nn_set_work(struct nn_ctx *c, double work)
{
    if (!(work <= COFFER_NN_MAX_NODE_WORK))
        return nn_fail_node(c, COFFER_E_TOO_LARGE, "%.3g operations per run (cap %.3g)", work, COFFER_NN_MAX_NODE_WORK);
    c->node->work = work;
    return COFFER_OK;
}

enum coffer_err nn_want_dtype(struct nn_ctx *c, int i, unsigned mask)
{
    if (i >= c->n_in || c->in[i] == NULL)
        return nn_fail_node(c, COFFER_E_MALFORMED, "input %d is missing", i);
    enum coffer_nn_dtype dt = c->in[i]->dtype;
    if ((unsigned)dt >= 32 || !(mask & NN_DT(dt)))
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "input %d ('%s') has dtype %s, which this op does not take",
                            i, c->in[i]->name, coffer_nn_dtype_name(dt));
    return COFFER_OK;
}

enum coffer_err nn_axis(struct nn_ctx *c, int64_t axis, int rank, int *out)
{
    if (axis < -(int64_t)rank || axis >= rank)
        return nn_fail_node(c, COFFER_E_SHAPE, "axis %lld outside rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return COFFER_OK;
}

enum coffer_err nn_broadcast(struct nn_ctx *c, int ra, const int64_t *da, int rb, const int64_t *db, int *rank,
                             int64_t *dims)
{
    int r = ra > rb ? ra : rb;
    for (int k = 0; k < r; k++) {
        int64_t a = k - (r - ra) >= 0 ? da[k - (r - ra)] : 1;
        int64_t b = k - (r - rb) >= 0 ? db[k - (r - rb)] : 1;
        if (a == b || b == 1)
            dims[k] = a;
        else if (a == 1)
            dims[k] = b;
        else
            return nn_fail_node(c, COFFER_E_SHAPE, "cannot broadcast dimension %d: %lld against %lld", k,
                                (long long)a, (long long)b);
    }
    *rank = r;
    return COFFER_OK;
}

void nn_bcast_strides(const struct nn_val *v, int rank, const int64_t *dims, size_t *strides)
{
    size_t s = 1;
    for (int k = rank - 1; k >= 0; k--) {
        int vk = k - (rank - v->rank);
        if (vk < 0 || v->dims[vk] == 1) {
            strides[k] = 0;
        } else {
            strides[k] = s;
        }
        if (vk >= 0)
            s *= (size_t)v->dims[vk];
        (void)dims;
    }
}

static enum coffer_err need_const(struct nn_ctx *c, int i)
{
    if (i >= c->n_in || c->in[i] == NULL)
        return nn_fail_node(c, COFFER_E_MALFORMED, "input %d is missing", i);
    struct nn_val *v = c->in[i];
    if (v->kind != NN_VAL_INIT && v->kind != NN_VAL_CONST) {
        if (v->pinned) {
            c->m->deferred = true; /* the value comes with the first run */
            return COFFER_E_STATE;
        }
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "input %d ('%s') decides the output shape and must be "
                            "a constant; computed values are not supported there", i, v->name);
    }
    return COFFER_OK;
}

enum coffer_err nn_const_ints(struct nn_ctx *c, int i, const int64_t **out, size_t *count)
{
    enum coffer_err r = need_const(c, i);
    if (r != COFFER_OK)
        return r;
    if (c->in[i]->dtype != COFFER_NN_INT64)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "input %d must be int64, not %s", i,
                            coffer_nn_dtype_name(c->in[i]->dtype));
    *out = c->in[i]->data;
    *count = c->in[i]->count;
    return COFFER_OK;
}

enum coffer_err nn_const_floats(struct nn_ctx *c, int i, const float **out, size_t *count)
{
    enum coffer_err r = need_const(c, i);
    if (r != COFFER_OK)
        return r;
    if (c->in[i]->dtype != COFFER_NN_FLOAT)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "input %d must be float32, not %s", i,
                            coffer_nn_dtype_name(c->in[i]->dtype));
    *out = c->in[i]->data;
    *count = c->in[i]->count;
    return COFFER_OK;
}
