/*
 * elementwise.c — reference kernels for element-wise ops: unary math and
 * activations, broadcasting binary arithmetic and comparisons, the
 * variadic Sum/Min/Max/Mean, Where, Not, Cast and Clip.
 *
 * Design: broadcasting goes through one N-d walker: the output is visited
 * in row-major order and each input advances by its own strides, which are
 * 0 along broadcast dimensions (nn_bcast_strides). Attributes are read and
 * checked in the infer functions; kernels read them again (cheap) but rely
 * on infer's checks.
 *
 * Invariants: outputs never alias inputs (the planner guarantees it).
 *
 * Trusts: the infer functions' checks (every shape, attribute and constant
 * a kernel reads was validated at plan time) and the planner's placement.
 */
#include "../../nn_int.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- walker */

struct walk {
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK];
    size_t st[3][COFFER_NN_MAX_RANK];
    size_t idx[COFFER_NN_MAX_RANK];
    size_t off[3];
    int n;
};

static void walk_init(struct walk *w, const struct nn_val *out, struct nn_val *const *ins, int n)
{
    w->rank = out->rank;
    memcpy(w->dims, out->dims, sizeof(w->dims));
    w->n = n;
    for (int i = 0; i < n; i++) {
        nn_bcast_strides(ins[i], out->rank, out->dims, w->st[i]);
        w->off[i] = 0;
    }
    memset(w->idx, 0, sizeof(w->idx));
}

/* Advance to the next output element (row-major). */
static void walk_next(struct walk *w)
{
    for (int k = w->rank - 1; k >= 0; k--) {
        w->idx[k]++;
        for (int i = 0; i < w->n; i++)
            w->off[i] += w->st[i][k];
        if ((int64_t)w->idx[k] < w->dims[k])
            return;
        for (int i = 0; i < w->n; i++)
            w->off[i] -= w->st[i][k] * w->idx[k];
        w->idx[k] = 0;
    }
}

/* ----------------------------------------------------------------- unary */

enum coffer_err nn_infer_unary(struct nn_ctx *c)
{
    int op = c->node->op;
    unsigned mask = NN_F;
    if (op == NN_OP_ABS || op == NN_OP_NEG || op == NN_OP_SIGN)
        mask |= NN_I;
    enum coffer_err r = nn_want_dtype(c, 0, mask);
    if (r != COFFER_OK)
        return r;
    float f;
    int64_t i;
    if ((r = nn_attr_float(c->node, "alpha", 0, &f)) != COFFER_OK || (r = nn_attr_float(c->node, "beta", 0, &f)) ||
        (r = nn_attr_float(c->node, "gamma", 0, &f)) || (r = nn_attr_float(c->node, "lambd", 0, &f)) ||
        (r = nn_attr_float(c->node, "bias", 0, &f)) || (r = nn_attr_int(c->node, "detect_negative", 1, &i)) ||
        (r = nn_attr_int(c->node, "detect_positive", 1, &i)))
        return r;
    enum coffer_nn_dtype dt = op == NN_OP_ISNAN || op == NN_OP_ISINF ? COFFER_NN_BOOL : c->in[0]->dtype;
    return nn_set_out(c, 0, dt, c->in[0]->rank, c->in[0]->dims);
}

static float attr_f(const struct nn_node *n, const char *name, float def)
{
    float f = def;
    if (nn_attr_float(n, name, def, &f) != COFFER_OK)
        return def;
    return f;
}

void nn_run_unary(struct nn_ctx *c)
{
    const struct nn_val *x = c->in[0];
    struct nn_val *y = c->out[0];
    size_t n = x->count;
    int op = c->node->op;
    if (x->dtype == COFFER_NN_INT64) {
        const int64_t *a = x->data;
        int64_t *o = y->data;
        for (size_t i = 0; i < n; i++)
            o[i] = op == NN_OP_SIGN ? (a[i] > 0) - (a[i] < 0)
                   : op == NN_OP_ABS ? (a[i] < 0 ? (int64_t)(0 - (uint64_t)a[i]) : a[i]) : (int64_t)(0 - (uint64_t)a[i]);
        return;
    }
    const float *a = x->data;
    float *o = y->data;
    float alpha, beta, gamma;
    switch (op) {
    case NN_OP_ABS: for (size_t i = 0; i < n; i++) o[i] = fabsf(a[i]); break;
    case NN_OP_NEG: for (size_t i = 0; i < n; i++) o[i] = -a[i]; break;
    case NN_OP_RELU: for (size_t i = 0; i < n; i++) o[i] = a[i] > 0 ? a[i] : 0; break;
    case NN_OP_LEAKYRELU:
        alpha = attr_f(c->node, "alpha", 0.01f);
        for (size_t i = 0; i < n; i++) o[i] = a[i] >= 0 ? a[i] : alpha * a[i];
        break;
    case NN_OP_SIGMOID:
        for (size_t i = 0; i < n; i++)
            o[i] = a[i] >= 0 ? 1.0f / (1.0f + expf(-a[i])) : expf(a[i]) / (1.0f + expf(a[i]));
        break;
    case NN_OP_TANH: for (size_t i = 0; i < n; i++) o[i] = tanhf(a[i]); break;
    case NN_OP_HARDSIGMOID:
        alpha = attr_f(c->node, "alpha", 0.2f);
        beta = attr_f(c->node, "beta", 0.5f);
        for (size_t i = 0; i < n; i++) o[i] = fmaxf(0.0f, fminf(1.0f, alpha * a[i] + beta));
        break;
    case NN_OP_HARDSWISH:
        for (size_t i = 0; i < n; i++) o[i] = a[i] * fmaxf(0.0f, fminf(1.0f, a[i] / 6.0f + 0.5f));
        break;
    case NN_OP_ELU:
        alpha = attr_f(c->node, "alpha", 1.0f);
        for (size_t i = 0; i < n; i++) o[i] = a[i] >= 0 ? a[i] : alpha * (expf(a[i]) - 1.0f);
        break;
    case NN_OP_SELU:
        alpha = attr_f(c->node, "alpha", 1.67326319217681884765625f);
        gamma = attr_f(c->node, "gamma", 1.05070102214813232421875f);
        for (size_t i = 0; i < n; i++) o[i] = gamma * (a[i] > 0 ? a[i] : alpha * (expf(a[i]) - 1.0f));
        break;
    case NN_OP_SOFTPLUS:
        for (size_t i = 0; i < n; i++) o[i] = a[i] > 0 ? a[i] + log1pf(expf(-a[i])) : log1pf(expf(a[i]));
        break;
    case NN_OP_SQRT: for (size_t i = 0; i < n; i++) o[i] = sqrtf(a[i]); break;
    case NN_OP_EXP: for (size_t i = 0; i < n; i++) o[i] = expf(a[i]); break;
    case NN_OP_LOG: for (size_t i = 0; i < n; i++) o[i] = logf(a[i]); break;
    case NN_OP_ERF: for (size_t i = 0; i < n; i++) o[i] = erff(a[i]); break;
    case NN_OP_RECIPROCAL: for (size_t i = 0; i < n; i++) o[i] = 1.0f / a[i]; break;
    case NN_OP_FLOOR: for (size_t i = 0; i < n; i++) o[i] = floorf(a[i]); break;
    case NN_OP_CEIL: for (size_t i = 0; i < n; i++) o[i] = ceilf(a[i]); break;
    case NN_OP_SIN: for (size_t i = 0; i < n; i++) o[i] = sinf(a[i]); break;
    case NN_OP_COS: for (size_t i = 0; i < n; i++) o[i] = cosf(a[i]); break;
    case NN_OP_TAN: for (size_t i = 0; i < n; i++) o[i] = tanf(a[i]); break;
    case NN_OP_ASIN: for (size_t i = 0; i < n; i++) o[i] = asinf(a[i]); break;
    case NN_OP_ACOS: for (size_t i = 0; i < n; i++) o[i] = acosf(a[i]); break;
    case NN_OP_ATAN: for (size_t i = 0; i < n; i++) o[i] = atanf(a[i]); break;
    case NN_OP_SINH: for (size_t i = 0; i < n; i++) o[i] = sinhf(a[i]); break;
    case NN_OP_COSH: for (size_t i = 0; i < n; i++) o[i] = coshf(a[i]); break;
    case NN_OP_ASINH: for (size_t i = 0; i < n; i++) o[i] = asinhf(a[i]); break;
    case NN_OP_ACOSH: for (size_t i = 0; i < n; i++) o[i] = acoshf(a[i]); break;
    case NN_OP_ATANH: for (size_t i = 0; i < n; i++) o[i] = atanhf(a[i]); break;
    case NN_OP_SIGN: for (size_t i = 0; i < n; i++) o[i] = (float)((a[i] > 0) - (a[i] < 0)); break;
    case NN_OP_SOFTSIGN: for (size_t i = 0; i < n; i++) o[i] = a[i] / (1.0f + fabsf(a[i])); break;
    case NN_OP_ROUND: for (size_t i = 0; i < n; i++) o[i] = nearbyintf(a[i]); break; /* half to even */
    case NN_OP_CELU:
        alpha = attr_f(c->node, "alpha", 1.0f);
        for (size_t i = 0; i < n; i++) o[i] = fmaxf(0.0f, a[i]) + fminf(0.0f, alpha * (expf(a[i] / alpha) - 1.0f));
        break;
    case NN_OP_THRESHOLDEDRELU:
        alpha = attr_f(c->node, "alpha", 1.0f);
        for (size_t i = 0; i < n; i++) o[i] = a[i] > alpha ? a[i] : 0.0f;
        break;
    case NN_OP_SHRINK:
        alpha = attr_f(c->node, "lambd", 0.5f);
        beta = attr_f(c->node, "bias", 0.0f);
        for (size_t i = 0; i < n; i++) o[i] = a[i] < -alpha ? a[i] + beta : a[i] > alpha ? a[i] - beta : 0.0f;
        break;
    case NN_OP_ISNAN: {
        uint8_t *ob = y->data;
        for (size_t i = 0; i < n; i++) ob[i] = isnan(a[i]) != 0;
        break;
    }
    case NN_OP_ISINF: {
        uint8_t *ob = y->data;
        bool neg = nn_ai(c->node, "detect_negative", 1) != 0, pos = nn_ai(c->node, "detect_positive", 1) != 0;
        for (size_t i = 0; i < n; i++) ob[i] = isinf(a[i]) && ((a[i] > 0 && pos) || (a[i] < 0 && neg));
        break;
    }
    default: break;
    }
}

/* ---------------------------------------------------------------- binary */

enum coffer_err nn_infer_binary(struct nn_ctx *c)
{
    int op = c->node->op;
    enum coffer_err r;
    unsigned mask = op == NN_OP_PRELU || op == NN_OP_POW ? NN_F : NN_F | NN_I;
    if (op == NN_OP_EQUAL)
        mask |= NN_B;
    if (op == NN_OP_AND || op == NN_OP_OR || op == NN_OP_XOR)
        mask = NN_B;
    if (op == NN_OP_MOD) {
        int64_t fm;
        if ((r = nn_attr_int(c->node, "fmod", 0, &fm)) != COFFER_OK)
            return r;
    }
    if ((r = nn_want_dtype(c, 0, mask)) != COFFER_OK || (r = nn_want_dtype(c, 1, mask)) != COFFER_OK)
        return r;
    if (c->in[0]->dtype != c->in[1]->dtype)
        return nn_fail_node(c, COFFER_E_MALFORMED, "inputs have dtypes %s and %s",
                            coffer_nn_dtype_name(c->in[0]->dtype), coffer_nn_dtype_name(c->in[1]->dtype));
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK];
    if (op == NN_OP_PRELU && c->node->opset < 7 && c->in[1]->rank == 1 && c->in[0]->rank >= 2 &&
        c->in[1]->dims[0] == c->in[0]->dims[1] && c->in[1]->count > 1) /* PRelu-6: one slope per channel */
        return nn_set_out(c, 0, COFFER_NN_FLOAT, c->in[0]->rank, c->in[0]->dims);
    if (c->node->opset < 7 && op != NN_OP_PRELU) { /* legacy broadcast: B aligned to A at axis (numpy when suffix-aligned) */
        int64_t bc, axis;
        if ((r = nn_attr_int(c->node, "broadcast", 0, &bc)) || (r = nn_attr_int(c->node, "axis", -1, &axis)))
            return r;
        if (!bc && (c->in[0]->rank != c->in[1]->rank ||
                    memcmp(c->in[0]->dims, c->in[1]->dims, sizeof(int64_t) * (size_t)c->in[0]->rank) != 0))
            return nn_fail_node(c, COFFER_E_SHAPE, "shapes differ and broadcast is 0");
        if (bc && axis >= 0 && axis + c->in[1]->rank != c->in[0]->rank)
            return nn_fail_node(c, COFFER_E_UNSUPPORTED, "legacy broadcast with axis %lld", (long long)axis);
    }
    if (op == NN_OP_PRELU) {
        /* slope broadcasts to X (unidirectionally) */
        if ((r = nn_broadcast(c, c->in[0]->rank, c->in[0]->dims, c->in[1]->rank, c->in[1]->dims, &rank, dims)))
            return r;
        if (rank != c->in[0]->rank || memcmp(dims, c->in[0]->dims, sizeof(int64_t) * (size_t)rank) != 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "slope does not broadcast to X");
    } else if ((r = nn_broadcast(c, c->in[0]->rank, c->in[0]->dims, c->in[1]->rank, c->in[1]->dims, &rank, dims)))
        return r;
    enum coffer_nn_dtype dt = c->in[0]->dtype;
    if (op == NN_OP_EQUAL || op == NN_OP_LESS || op == NN_OP_GREATER || op == NN_OP_LESSOREQUAL ||
        op == NN_OP_GREATEROREQUAL)
        dt = COFFER_NN_BOOL;
    return nn_set_out(c, 0, dt, rank, dims);
}

static int64_t ipow(int64_t b, int64_t e)
{
    uint64_t r = 1, x = (uint64_t)b;
    if (e < 0)
        return b == 1 ? 1 : 0;
    while (e) {
        if (e & 1) r *= x;
        x *= x;
        e >>= 1;
    }
    return (int64_t)r;
}

void nn_run_binary(struct nn_ctx *c)
{
    struct nn_val *y = c->out[0];
    if (c->node->op == NN_OP_PRELU && c->node->opset < 7 && c->in[1]->rank == 1 && c->in[0]->rank >= 2 &&
        c->in[1]->dims[0] == c->in[0]->dims[1] && c->in[1]->count > 1) {
        const float *x = c->in[0]->data, *sl = c->in[1]->data;
        float *o = y->data;
        if (y->count == 0)
            return;
        size_t ch = (size_t)y->dims[1], inner = y->count / ((size_t)y->dims[0] * ch);
        for (size_t i = 0; i < y->count; i++)
            o[i] = x[i] >= 0 ? x[i] : x[i] * sl[(i / inner) % ch];
        return;
    }
    struct walk w;
    walk_init(&w, y, c->in, 2);
    size_t n = y->count;
    int op = c->node->op;
    bool fm = op == NN_OP_MOD && nn_ai(c->node, "fmod", 0) != 0;
    if (c->in[0]->dtype == COFFER_NN_FLOAT) {
        const float *a = c->in[0]->data, *b = c->in[1]->data;
        float *o = y->data;
        uint8_t *ob = y->data;
        for (size_t i = 0; i < n; i++, walk_next(&w)) {
            float x = a[w.off[0]], z = b[w.off[1]];
            switch (op) {
            case NN_OP_ADD: o[i] = x + z; break;
            case NN_OP_SUB: o[i] = x - z; break;
            case NN_OP_MUL: o[i] = x * z; break;
            case NN_OP_DIV: o[i] = x / z; break;
            case NN_OP_POW: o[i] = powf(x, z); break;
            case NN_OP_PRELU: o[i] = x >= 0 ? x : x * z; break;
            case NN_OP_MOD: {
                float r = fmodf(x, z); /* fmod=0: the result takes the divisor's sign */
                o[i] = !fm && r != 0 && ((r < 0) != (z < 0)) ? r + z : r;
                break;
            }
            case NN_OP_EQUAL: ob[i] = x == z; break;
            case NN_OP_LESS: ob[i] = x < z; break;
            case NN_OP_GREATER: ob[i] = x > z; break;
            case NN_OP_LESSOREQUAL: ob[i] = x <= z; break;
            case NN_OP_GREATEROREQUAL: ob[i] = x >= z; break;
            default: break;
            }
        }
    } else if (c->in[0]->dtype == COFFER_NN_INT64) {
        const int64_t *a = c->in[0]->data, *b = c->in[1]->data;
        int64_t *o = y->data;
        uint8_t *ob = y->data;
        for (size_t i = 0; i < n; i++, walk_next(&w)) {
            int64_t x = a[w.off[0]], z = b[w.off[1]];
            switch (op) {
            case NN_OP_ADD: o[i] = (int64_t)((uint64_t)x + (uint64_t)z); break;
            case NN_OP_SUB: o[i] = (int64_t)((uint64_t)x - (uint64_t)z); break;
            case NN_OP_MUL: o[i] = (int64_t)((uint64_t)x * (uint64_t)z); break;
            case NN_OP_DIV: o[i] = z == 0 ? 0 : (x == INT64_MIN && z == -1) ? INT64_MIN : x / z; break;
            case NN_OP_POW: o[i] = ipow(x, z); break;
            case NN_OP_MOD: {
                int64_t r = z == 0 || (x == INT64_MIN && z == -1) ? 0 : x % z;
                o[i] = !fm && r != 0 && ((r < 0) != (z < 0)) ? r + z : r;
                break;
            }
            case NN_OP_EQUAL: ob[i] = x == z; break;
            case NN_OP_LESS: ob[i] = x < z; break;
            case NN_OP_GREATER: ob[i] = x > z; break;
            case NN_OP_LESSOREQUAL: ob[i] = x <= z; break;
            case NN_OP_GREATEROREQUAL: ob[i] = x >= z; break;
            default: break;
            }
        }
    } else {
        const uint8_t *a = c->in[0]->data, *b = c->in[1]->data;
        uint8_t *ob = y->data;
        for (size_t i = 0; i < n; i++, walk_next(&w)) {
            bool x = a[w.off[0]] != 0, z = b[w.off[1]] != 0;
            ob[i] = op == NN_OP_AND ? (x && z) : op == NN_OP_OR ? (x || z) : op == NN_OP_XOR ? (x != z) : (x == z);
        }
    }
}

/* -------------------------------------------------------------- variadic */

enum coffer_err nn_infer_variadic(struct nn_ctx *c)
{
    int rank = 0;
    int64_t dims[COFFER_NN_MAX_RANK];
    enum coffer_err r;
    unsigned mask = c->node->op == NN_OP_MIN || c->node->op == NN_OP_MAX ? NN_F | NN_I : NN_F;
    for (int i = 0; i < c->n_in; i++) {
        if ((r = nn_want_dtype(c, i, mask)) != COFFER_OK)
            return r;
        if (c->in[i]->dtype != c->in[0]->dtype)
            return nn_fail_node(c, COFFER_E_MALFORMED, "inputs of different dtypes");
        if ((r = nn_broadcast(c, rank, dims, c->in[i]->rank, c->in[i]->dims, &rank, dims)) != COFFER_OK)
            return r;
    }
    return nn_set_out(c, 0, c->in[0]->dtype, rank, dims);
}

void nn_run_variadic(struct nn_ctx *c)
{
    struct nn_val *y = c->out[0];
    int op = c->node->op;
    size_t n = y->count;
    for (int k = 0; k < c->n_in; k++) {
        struct walk w;
        walk_init(&w, y, &c->in[k], 1);
        if (y->dtype == COFFER_NN_FLOAT) {
            const float *a = c->in[k]->data;
            float *o = y->data;
            for (size_t i = 0; i < n; i++, walk_next(&w)) {
                float x = a[w.off[0]];
                if (k == 0)
                    o[i] = x;
                else if (op == NN_OP_SUM || op == NN_OP_MEAN)
                    o[i] += x;
                else if (op == NN_OP_MIN)
                    o[i] = (x < o[i] || isnan(x)) ? x : o[i];
                else
                    o[i] = (x > o[i] || isnan(x)) ? x : o[i];
            }
            if (op == NN_OP_MEAN && k == c->n_in - 1)
                for (size_t i = 0; i < n; i++)
                    o[i] /= (float)c->n_in;
        } else {
            const int64_t *a = c->in[k]->data;
            int64_t *o = y->data;
            for (size_t i = 0; i < n; i++, walk_next(&w)) {
                int64_t x = a[w.off[0]];
                if (k == 0)
                    o[i] = x;
                else if (op == NN_OP_MIN)
                    o[i] = x < o[i] ? x : o[i];
                else
                    o[i] = x > o[i] ? x : o[i];
            }
        }
    }
}

/* ------------------------------------------------------------ Where, Not */

enum coffer_err nn_infer_where(struct nn_ctx *c)
{
    enum coffer_err r;
    if ((r = nn_want_dtype(c, 0, NN_B)) || (r = nn_want_dtype(c, 1, NN_F | NN_I | NN_B)) ||
        (r = nn_want_dtype(c, 2, NN_F | NN_I | NN_B)))
        return r;
    if (c->in[1]->dtype != c->in[2]->dtype)
        return nn_fail_node(c, COFFER_E_MALFORMED, "X and Y have different dtypes");
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK];
    if ((r = nn_broadcast(c, c->in[0]->rank, c->in[0]->dims, c->in[1]->rank, c->in[1]->dims, &rank, dims)) ||
        (r = nn_broadcast(c, rank, dims, c->in[2]->rank, c->in[2]->dims, &rank, dims)))
        return r;
    return nn_set_out(c, 0, c->in[1]->dtype, rank, dims);
}

void nn_run_where(struct nn_ctx *c)
{
    struct nn_val *y = c->out[0];
    struct walk w;
    walk_init(&w, y, c->in, 3);
    size_t es = coffer_nn_dtype_size(y->dtype);
    const uint8_t *cond = c->in[0]->data, *a = c->in[1]->data, *b = c->in[2]->data;
    uint8_t *o = y->data;
    for (size_t i = 0; i < y->count; i++, walk_next(&w)) {
        if (cond[w.off[0]])
            memcpy(o + i * es, a + w.off[1] * es, es);
        else
            memcpy(o + i * es, b + w.off[2] * es, es);
    }
}

enum coffer_err nn_infer_not(struct nn_ctx *c)
{
    enum coffer_err r = nn_want_dtype(c, 0, NN_B);
    if (r != COFFER_OK)
        return r;
    return nn_set_out(c, 0, COFFER_NN_BOOL, c->in[0]->rank, c->in[0]->dims);
}

void nn_run_not(struct nn_ctx *c)
{
    const uint8_t *a = c->in[0]->data;
    uint8_t *o = c->out[0]->data;
    for (size_t i = 0; i < c->out[0]->count; i++)
        o[i] = !a[i];
}

/* ------------------------------------------------------------------ Cast */

enum coffer_err nn_infer_cast(struct nn_ctx *c)
{
    int64_t to;
    enum coffer_err r;
    if ((r = nn_want_dtype(c, 0, NN_F | NN_I | NN_B)) || (r = nn_attr_int(c->node, "to", -1, &to)))
        return r;
    if (to != COFFER_NN_FLOAT && to != COFFER_NN_INT64 && to != COFFER_NN_BOOL)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "cast to dtype %s (%lld) is not supported",
                            coffer_nn_dtype_name((enum coffer_nn_dtype)(to < 0 || to > 64 ? 64 : to)), (long long)to);
    return nn_set_out(c, 0, (enum coffer_nn_dtype)to, c->in[0]->rank, c->in[0]->dims);
}

void nn_run_cast(struct nn_ctx *c)
{
    const struct nn_val *x = c->in[0];
    struct nn_val *y = c->out[0];
    for (size_t i = 0; i < x->count; i++) {
        double v;
        int64_t iv = 0;
        bool is_int = false;
        if (x->dtype == COFFER_NN_FLOAT)
            v = ((const float *)x->data)[i];
        else if (x->dtype == COFFER_NN_INT64) {
            iv = ((const int64_t *)x->data)[i];
            v = (double)iv;
            is_int = true;
        } else {
            iv = ((const uint8_t *)x->data)[i];
            v = (double)iv;
            is_int = true;
        }
        if (y->dtype == COFFER_NN_FLOAT)
            ((float *)y->data)[i] = (float)v;
        else if (y->dtype == COFFER_NN_BOOL)
            ((uint8_t *)y->data)[i] = v != 0;
        else if (is_int)
            ((int64_t *)y->data)[i] = iv;
        else /* float to int64: truncate, saturate, NaN to 0 (C leaves these undefined) */
            ((int64_t *)y->data)[i] = isnan(v) ? 0 : v >= 9.2233720368547758e18 ? INT64_MAX
                                      : v <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)v;
    }
}

/* ------------------------------------------------------------------ Clip */

enum coffer_err nn_infer_clip(struct nn_ctx *c)
{
    enum coffer_err r;
    if ((r = nn_want_dtype(c, 0, NN_F)) != COFFER_OK)
        return r;
    for (int i = 1; i < c->n_in; i++) {
        if (c->in[i] == NULL)
            continue;
        if ((r = nn_want_dtype(c, i, NN_F)) != COFFER_OK)
            return r;
        if (c->in[i]->count != 1)
            return nn_fail_node(c, COFFER_E_SHAPE, "min/max must be scalars");
    }
    float f;
    if ((r = nn_attr_float(c->node, "min", 0, &f)) || (r = nn_attr_float(c->node, "max", 0, &f)))
        return r;
    return nn_set_out(c, 0, COFFER_NN_FLOAT, c->in[0]->rank, c->in[0]->dims);
}

void nn_run_clip(struct nn_ctx *c)
{
    float lo = -INFINITY, hi = INFINITY;
    if (c->node->opset < 11) {
        lo = attr_f(c->node, "min", -3.402823e38f);
        hi = attr_f(c->node, "max", 3.402823e38f);
    } else {
        if (c->n_in > 1 && c->in[1] != NULL)
            lo = *(const float *)c->in[1]->data;
        if (c->n_in > 2 && c->in[2] != NULL)
            hi = *(const float *)c->in[2]->data;
    }
    const float *a = c->in[0]->data;
    float *o = c->out[0]->data;
    for (size_t i = 0; i < c->out[0]->count; i++) {
        float v = a[i] < lo ? lo : a[i];
        o[i] = v > hi ? hi : v;
    }
}
