/*
 * norm.c — reference normalisations and reductions: BatchNormalization,
 * InstanceNormalization, LayerNormalization, Softmax, LogSoftmax, Hardmax,
 * ReduceMean/Sum/Max/Min, ArgMax and TopK.
 *
 * Design: each op views its input as [outer, axis, inner] (or a set of
 * reduced axes) computed in infer; sums are accumulated in double so the
 * reference is not the least accurate implementation in a comparison.
 *
 * Trusts: the infer functions' checks (every shape, attribute and constant
 * a kernel reads was validated at plan time) and the planner's placement.
 */
#include "../../nn_int.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ batch norm */

enum coffer_err nn_infer_batchnorm(struct nn_ctx *c)
{
    enum coffer_err r;
    for (int i = 0; i < 5; i++)
        if ((r = nn_want_dtype(c, i, NN_F)) != COFFER_OK)
            return r;
    int64_t spatial, training;
    float eps;
    if ((r = nn_attr_int(c->node, "spatial", 1, &spatial)) || (r = nn_attr_int(c->node, "training_mode", 0, &training)) ||
        (r = nn_attr_float(c->node, "epsilon", 1e-5f, &eps)) || (r = nn_attr_float(c->node, "momentum", 0.9f, &eps)))
        return r;
    if (spatial != 1)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "spatial=0 is not supported");
    if (training != 0)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "training mode is not supported");
    for (int i = 1; i < c->n_out; i++)
        if (c->out[i] != NULL)
            return nn_fail_node(c, COFFER_E_UNSUPPORTED, "training outputs (mean, var) are not supported");
    const struct nn_val *x = c->in[0];
    if (x->rank < 2)
        return nn_fail_node(c, COFFER_E_SHAPE, "input rank %d", x->rank);
    for (int i = 1; i < 5; i++)
        if (c->in[i]->rank != 1 || c->in[i]->dims[0] != x->dims[1])
            return nn_fail_node(c, COFFER_E_SHAPE, "input %d must be [%lld]", i, (long long)x->dims[1]);
    return nn_set_out(c, 0, COFFER_NN_FLOAT, x->rank, x->dims);
}

void nn_run_batchnorm(struct nn_ctx *c)
{
    float eps = 1e-5f;
    eps = nn_af(c->node, "epsilon", 1e-5f);
    const struct nn_val *xv = c->in[0];
    const float *x = xv->data, *sc = c->in[1]->data, *b = c->in[2]->data, *mean = c->in[3]->data,
                *var = c->in[4]->data;
    float *y = c->out[0]->data;
    int64_t n = xv->dims[0], ch = xv->dims[1];
    size_t sp = (n != 0 && ch != 0) ? xv->count / (size_t)(n * ch) : 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < ch; k++) {
            float a = sc[k] / sqrtf(var[k] + eps), bb = b[k] - mean[k] * a;
            const float *xs = x + (size_t)(i * ch + k) * sp;
            float *ys = y + (size_t)(i * ch + k) * sp;
            for (size_t s = 0; s < sp; s++)
                ys[s] = xs[s] * a + bb;
        }
}

/* --------------------------------------------------------- instance norm */

enum coffer_err nn_infer_instnorm(struct nn_ctx *c)
{
    enum coffer_err r;
    float eps;
    for (int i = 0; i < 3; i++)
        if ((r = nn_want_dtype(c, i, NN_F)) != COFFER_OK)
            return r;
    if ((r = nn_attr_float(c->node, "epsilon", 1e-5f, &eps)) != COFFER_OK)
        return r;
    const struct nn_val *x = c->in[0];
    if (x->rank < 3)
        return nn_fail_node(c, COFFER_E_SHAPE, "input rank %d, at least 3", x->rank);
    for (int i = 1; i < 3; i++)
        if (c->in[i]->rank != 1 || c->in[i]->dims[0] != x->dims[1])
            return nn_fail_node(c, COFFER_E_SHAPE, "input %d must be [%lld]", i, (long long)x->dims[1]);
    return nn_set_out(c, 0, COFFER_NN_FLOAT, x->rank, x->dims);
}

static void normalize(const float *x, float *y, size_t n, float eps, const float *scale, const float *bias,
                      size_t sstride, float *mean_out, float *inv_out)
{
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++)
        sum += x[i];
    double mean = n ? sum / (double)n : 0;
    for (size_t i = 0; i < n; i++)
        sq += (x[i] - mean) * (x[i] - mean);
    double var = n ? sq / (double)n : 0;
    float inv = (float)(1.0 / sqrt(var + eps));
    for (size_t i = 0; i < n; i++) {
        float s = scale[i * sstride], b = bias ? bias[i * sstride] : 0.0f;
        y[i] = (float)(x[i] - mean) * inv * s + b;
    }
    if (mean_out)
        *mean_out = (float)mean;
    if (inv_out)
        *inv_out = inv;
}

void nn_run_instnorm(struct nn_ctx *c)
{
    float eps = 1e-5f;
    eps = nn_af(c->node, "epsilon", 1e-5f);
    const struct nn_val *xv = c->in[0];
    const float *x = xv->data, *sc = c->in[1]->data, *b = c->in[2]->data;
    float *y = c->out[0]->data;
    int64_t n = xv->dims[0], ch = xv->dims[1];
    size_t sp = (n != 0 && ch != 0) ? xv->count / (size_t)(n * ch) : 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < ch; k++) {
            size_t off = (size_t)(i * ch + k) * sp;
            float s = sc[k], bb = b[k];
            normalize(x + off, y + off, sp, eps, &s, &bb, 0, NULL, NULL);
        }
}

/* ------------------------------------------------------------ layer norm */

enum coffer_err nn_infer_layernorm(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t axis, stash;
    float eps;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = nn_want_dtype(c, 1, NN_F)) ||
        (r = nn_attr_int(c->node, "axis", -1, &axis)) || (r = nn_attr_float(c->node, "epsilon", 1e-5f, &eps)) ||
        (r = nn_attr_int(c->node, "stash_type", 1, &stash)))
        return r;
    const struct nn_val *x = c->in[0];
    int ax;
    if ((r = nn_axis(c, axis, x->rank, &ax)) != COFFER_OK)
        return r;
    int64_t norm_dims[COFFER_NN_MAX_RANK];
    for (int i = ax; i < x->rank; i++)
        norm_dims[i - ax] = x->dims[i];
    for (int i = 1; i < 3 && i < c->n_in; i++) {
        if (c->in[i] == NULL)
            continue;
        if ((r = nn_want_dtype(c, i, NN_F)) != COFFER_OK)
            return r;
        int rk;
        int64_t bd[COFFER_NN_MAX_RANK];
        if ((r = nn_broadcast(c, x->rank - ax, norm_dims, c->in[i]->rank, c->in[i]->dims, &rk, bd)) != COFFER_OK)
            return r;
        if (rk != x->rank - ax || memcmp(bd, norm_dims, sizeof(int64_t) * (size_t)rk) != 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "input %d does not broadcast to the normalised shape", i);
    }
    int64_t sd[COFFER_NN_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        sd[i] = i < ax ? x->dims[i] : 1;
    if ((r = nn_set_out(c, 0, COFFER_NN_FLOAT, x->rank, x->dims)) || (r = nn_set_out(c, 1, COFFER_NN_FLOAT, x->rank, sd)) ||
        (r = nn_set_out(c, 2, COFFER_NN_FLOAT, x->rank, sd)))
        return r;
    return COFFER_OK;
}

void nn_run_layernorm(struct nn_ctx *c)
{
    int64_t axis = -1;
    float eps = 1e-5f;
    axis = nn_ai(c->node, "axis", -1);
    eps = nn_af(c->node, "epsilon", 1e-5f);
    const struct nn_val *xv = c->in[0];
    int ax = (int)(axis < 0 ? axis + xv->rank : axis);
    size_t inner = 1;
    for (int i = ax; i < xv->rank; i++)
        inner *= (size_t)xv->dims[i];
    size_t outer = inner ? xv->count / inner : 0;
    const float *x = xv->data;
    float *y = c->out[0]->data;
    /* scale and bias broadcast to the normalised shape: expand their index */
    const struct nn_val *sv = c->in[1], *bv = c->n_in > 2 ? c->in[2] : NULL;
    size_t sst[COFFER_NN_MAX_RANK], bst[COFFER_NN_MAX_RANK];
    int nr = xv->rank - ax;
    nn_bcast_strides(sv, nr, xv->dims + ax, sst);
    if (bv)
        nn_bcast_strides(bv, nr, xv->dims + ax, bst);
    for (size_t o = 0; o < outer; o++) {
        const float *xs = x + o * inner;
        float *ys = y + o * inner;
        double sum = 0, sq = 0;
        for (size_t i = 0; i < inner; i++)
            sum += xs[i];
        double mean = inner ? sum / (double)inner : 0;
        for (size_t i = 0; i < inner; i++)
            sq += (xs[i] - mean) * (xs[i] - mean);
        double var = inner ? sq / (double)inner : 0;
        float inv = (float)(1.0 / sqrt(var + eps));
        for (size_t i = 0; i < inner; i++) {
            size_t rem = i, so = 0, bo = 0;
            for (int k = nr - 1; k >= 0; k--) {
                size_t coord = rem % (size_t)xv->dims[ax + k];
                rem /= (size_t)xv->dims[ax + k];
                so += coord * sst[k];
                bo += coord * (bv ? bst[k] : 0);
            }
            float s = ((const float *)sv->data)[so], b = bv ? ((const float *)bv->data)[bo] : 0.0f;
            ys[i] = (float)(xs[i] - mean) * inv * s + b;
        }
        if (c->n_out > 1 && c->out[1])
            ((float *)c->out[1]->data)[o] = (float)mean;
        if (c->n_out > 2 && c->out[2])
            ((float *)c->out[2]->data)[o] = inv;
    }
}

/* --------------------------------------------------------------- softmax */

static void softmax_view(const struct nn_ctx *c, int ax, size_t *outer, size_t *len, size_t *inner)
{
    const struct nn_val *x = c->in[0];
    *outer = 1;
    *len = 1;
    *inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < ax)
            *outer *= (size_t)x->dims[i];
        else if (i == ax || c->node->opset < 13)
            *len *= (size_t)x->dims[i];
        else
            *inner *= (size_t)x->dims[i];
    }
}

enum coffer_err nn_infer_softmax(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t axis;
    if ((r = nn_want_dtype(c, 0, NN_F)) ||
        (r = nn_attr_int(c->node, "axis", c->node->opset < 13 ? 1 : -1, &axis)))
        return r;
    int ax;
    if (c->in[0]->rank == 0)
        return nn_fail_node(c, COFFER_E_SHAPE, "scalar input");
    if ((r = nn_axis(c, axis, c->in[0]->rank, &ax)) != COFFER_OK)
        return r;
    return nn_set_out(c, 0, COFFER_NN_FLOAT, c->in[0]->rank, c->in[0]->dims);
}

void nn_run_softmax(struct nn_ctx *c)
{
    int64_t axis = c->node->opset < 13 ? 1 : -1;
    axis = nn_ai(c->node, "axis", axis);
    int ax = (int)(axis < 0 ? axis + c->in[0]->rank : axis);
    size_t outer, len, inner;
    softmax_view(c, ax, &outer, &len, &inner);
    bool lg = c->node->op == NN_OP_LOGSOFTMAX;
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    for (size_t o = 0; o < outer; o++)
        for (size_t in = 0; in < inner; in++) {
            const float *xs = x + o * len * inner + in;
            float *ys = y + o * len * inner + in;
            if (c->node->op == NN_OP_HARDMAX) { /* one-hot of the first maximum */
                size_t best = 0;
                for (size_t i = 1; i < len; i++)
                    if (xs[i * inner] > xs[best * inner])
                        best = i;
                for (size_t i = 0; i < len; i++)
                    ys[i * inner] = i == best ? 1.0f : 0.0f;
                continue;
            }
            float mx = -INFINITY;
            for (size_t i = 0; i < len; i++)
                mx = xs[i * inner] > mx ? xs[i * inner] : mx;
            double sum = 0;
            for (size_t i = 0; i < len; i++)
                sum += exp((double)xs[i * inner] - mx);
            for (size_t i = 0; i < len; i++)
                ys[i * inner] = lg ? (float)((double)xs[i * inner] - mx - log(sum))
                                   : (float)(exp((double)xs[i * inner] - mx) / sum);
        }
}

/* ---------------------------------------------------------------- reduce */

/* Which axes are reduced (mask), honouring the opset's axes source. */
static enum coffer_err reduce_axes(struct nn_ctx *c, unsigned *mask, bool *keep)
{
    const int64_t *axes = NULL;
    size_t n = 0;
    int64_t kd, noop;
    enum coffer_err r;
    if ((r = nn_attr_int(c->node, "keepdims", 1, &kd)) || (r = nn_attr_int(c->node, "noop_with_empty_axes", 0, &noop)))
        return r;
    *keep = kd != 0;
    if (c->n_in > 1 && c->in[1] != NULL) {
        if ((r = nn_const_ints(c, 1, &axes, &n)) != COFFER_OK)
            return r;
    } else if ((r = nn_attr_ints(c->node, "axes", &axes, &n)) != COFFER_OK) {
        return r;
    }
    int rank = c->in[0]->rank;
    *mask = 0;
    if (n == 0) {
        if (!noop)
            *mask = (1u << rank) - 1;
        return COFFER_OK;
    }
    for (size_t i = 0; i < n; i++) {
        int ax;
        if ((r = nn_axis(c, axes[i], rank, &ax)) != COFFER_OK)
            return r;
        *mask |= 1u << ax;
    }
    return COFFER_OK;
}

enum coffer_err nn_infer_reduce(struct nn_ctx *c)
{
    enum coffer_err r;
    unsigned mask;
    bool keep;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = reduce_axes(c, &mask, &keep)))
        return r;
    const struct nn_val *x = c->in[0];
    int64_t dims[COFFER_NN_MAX_RANK];
    int q = 0;
    for (int i = 0; i < x->rank; i++) {
        if (mask & (1u << i)) {
            if ((c->node->op == NN_OP_REDUCEMAX || c->node->op == NN_OP_REDUCEMIN) && x->dims[i] == 0)
                return nn_fail_node(c, COFFER_E_SHAPE, "reducing an empty axis");
            if (keep)
                dims[q++] = 1;
        } else {
            dims[q++] = x->dims[i];
        }
    }
    return nn_set_out(c, 0, COFFER_NN_FLOAT, q, dims);
}

void nn_run_reduce(struct nn_ctx *c)
{
    unsigned mask = 0;
    bool keep;
    if (reduce_axes(c, &mask, &keep) != COFFER_OK)
        return;
    const struct nn_val *xv = c->in[0];
    struct nn_val *yv = c->out[0];
    int op = c->node->op;
    float *y = yv->data;
    const float *x = xv->data;
    float init = op == NN_OP_REDUCEMAX ? -INFINITY : op == NN_OP_REDUCEMIN ? INFINITY : op == NN_OP_REDUCEPROD ? 1.0f
                 : 0.0f;
    for (size_t i = 0; i < yv->count; i++)
        y[i] = init;
    /* output strides over the input's dimensions (0 along reduced axes) */
    size_t ost[COFFER_NN_MAX_RANK], s = 1;
    for (int k = xv->rank - 1; k >= 0; k--) {
        ost[k] = (mask & (1u << k)) ? 0 : s;
        if (!(mask & (1u << k)))
            s *= (size_t)xv->dims[k];
    }
    size_t idx[COFFER_NN_MAX_RANK] = {0}, off = 0;
    for (size_t i = 0; i < xv->count; i++) {
        float v = x[i];
        if (op == NN_OP_REDUCEMAX)
            y[off] = v > y[off] || isnan(v) ? v : y[off];
        else if (op == NN_OP_REDUCEMIN)
            y[off] = v < y[off] || isnan(v) ? v : y[off];
        else if (op == NN_OP_REDUCEPROD)
            y[off] *= v;
        else if (op == NN_OP_REDUCESUMSQUARE || op == NN_OP_REDUCEL2)
            y[off] += v * v;
        else if (op == NN_OP_REDUCEL1)
            y[off] += fabsf(v);
        else if (op == NN_OP_REDUCELOGSUMEXP)
            y[off] += expf(v);
        else
            y[off] += v;
        for (int k = xv->rank - 1; k >= 0; k--) {
            idx[k]++;
            off += ost[k];
            if ((int64_t)idx[k] < xv->dims[k])
                break;
            off -= ost[k] * idx[k];
            idx[k] = 0;
        }
    }
    if (op == NN_OP_REDUCEL2)
        for (size_t i = 0; i < yv->count; i++)
            y[i] = sqrtf(y[i]);
    if (op == NN_OP_REDUCELOGSUM || op == NN_OP_REDUCELOGSUMEXP)
        for (size_t i = 0; i < yv->count; i++)
            y[i] = logf(y[i]);
    if (op == NN_OP_REDUCEMEAN && yv->count > 0) {
        size_t per = xv->count / yv->count;
        for (size_t i = 0; i < yv->count; i++)
            y[i] = per ? y[i] / (float)per : NAN;
    }
}

/* ---------------------------------------------------------------- ArgMax */

enum coffer_err nn_infer_argmax(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t axis, kd, last;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = nn_attr_int(c->node, "axis", 0, &axis)) ||
        (r = nn_attr_int(c->node, "keepdims", 1, &kd)) || (r = nn_attr_int(c->node, "select_last_index", 0, &last)))
        return r;
    const struct nn_val *x = c->in[0];
    int ax;
    if ((r = nn_axis(c, axis, x->rank, &ax)) != COFFER_OK)
        return r;
    if (x->dims[ax] == 0)
        return nn_fail_node(c, COFFER_E_SHAPE, "empty axis");
    int64_t dims[COFFER_NN_MAX_RANK];
    int q = 0;
    for (int i = 0; i < x->rank; i++)
        if (i != ax)
            dims[q++] = x->dims[i];
        else if (kd)
            dims[q++] = 1;
    return nn_set_out(c, 0, COFFER_NN_INT64, q, dims);
}

void nn_run_argmax(struct nn_ctx *c)
{
    int64_t axis = 0, last = 0;
    axis = nn_ai(c->node, "axis", 0);
    last = nn_ai(c->node, "select_last_index", 0);
    const struct nn_val *xv = c->in[0];
    int ax = (int)(axis < 0 ? axis + xv->rank : axis);
    size_t outer = 1, len = (size_t)xv->dims[ax], inner = 1;
    for (int i = 0; i < xv->rank; i++)
        if (i < ax)
            outer *= (size_t)xv->dims[i];
        else if (i > ax)
            inner *= (size_t)xv->dims[i];
    const float *x = xv->data;
    int64_t *y = c->out[0]->data;
    for (size_t o = 0; o < outer; o++)
        for (size_t in = 0; in < inner; in++) {
            const float *xs = x + o * len * inner + in;
            size_t best = 0;
            for (size_t i = 1; i < len; i++)
                if ((c->node->op == NN_OP_ARGMIN ? xs[i * inner] < xs[best * inner] : xs[i * inner] > xs[best * inner]) ||
                    (last && xs[i * inner] == xs[best * inner]))
                    best = i;
            y[o * inner + in] = (int64_t)best;
        }
}

/* ------------------------------------------------------------------ TopK */

static enum coffer_err topk_k(struct nn_ctx *c, int64_t *k)
{
    if (c->node->opset < 10)
        return nn_attr_int(c->node, "k", -1, k);
    const int64_t *v;
    size_t n;
    enum coffer_err r = nn_const_ints(c, 1, &v, &n);
    if (r != COFFER_OK)
        return r;
    if (n != 1)
        return nn_fail_node(c, COFFER_E_SHAPE, "K must hold one value");
    *k = v[0];
    return COFFER_OK;
}

enum coffer_err nn_infer_topk(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t axis, k, lg, so;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = nn_attr_int(c->node, "axis", -1, &axis)) ||
        (r = nn_attr_int(c->node, "largest", 1, &lg)) || (r = nn_attr_int(c->node, "sorted", 1, &so)) ||
        (r = topk_k(c, &k)))
        return r;
    const struct nn_val *x = c->in[0];
    int ax;
    if ((r = nn_axis(c, axis, x->rank, &ax)) != COFFER_OK)
        return r;
    if (k < 0 || k > x->dims[ax])
        return nn_fail_node(c, COFFER_E_SHAPE, "k %lld outside [0, %lld]", (long long)k, (long long)x->dims[ax]);
    int64_t dims[COFFER_NN_MAX_RANK];
    memcpy(dims, x->dims, sizeof(dims));
    dims[ax] = k;
    c->node->scratch = (size_t)x->dims[ax] + 1;
    if ((r = nn_set_work(c, (double)x->count * (double)(k + 1))) != COFFER_OK)
        return r;
    if ((r = nn_set_out(c, 0, COFFER_NN_FLOAT, x->rank, dims)) != COFFER_OK)
        return r;
    return nn_set_out(c, 1, COFFER_NN_INT64, x->rank, dims);
}

void nn_run_topk(struct nn_ctx *c)
{
    int64_t axis = -1, k = 0, lg = 1;
    axis = nn_ai(c->node, "axis", -1);
    lg = nn_ai(c->node, "largest", 1);
    if (topk_k(c, &k) != COFFER_OK)
        return;
    const struct nn_val *xv = c->in[0];
    int ax = (int)(axis < 0 ? axis + xv->rank : axis);
    size_t outer = 1, len = (size_t)xv->dims[ax], inner = 1;
    for (int i = 0; i < xv->rank; i++)
        if (i < ax)
            outer *= (size_t)xv->dims[i];
        else if (i > ax)
            inner *= (size_t)xv->dims[i];
    uint8_t *taken = c->scratch;
    const float *x = xv->data;
    float *yv = c->out[0]->data;
    int64_t *yi = c->n_out > 1 && c->out[1] ? c->out[1]->data : NULL;
    for (size_t o = 0; o < outer; o++)
        for (size_t in = 0; in < inner; in++) {
            const float *xs = x + o * len * inner + in;
            memset(taken, 0, len);
            for (int64_t j = 0; j < k; j++) {
                size_t best = SIZE_MAX;
                for (size_t i = 0; i < len; i++) {
                    if (taken[i])
                        continue;
                    if (best == SIZE_MAX || (lg ? xs[i * inner] > xs[best * inner] : xs[i * inner] < xs[best * inner]))
                        best = i;
                }
                taken[best] = 1;
                size_t oi = o * (size_t)k * inner + (size_t)j * inner + in;
                yv[oi] = xs[best * inner];
                if (yi)
                    yi[oi] = (int64_t)best;
            }
        }
}
