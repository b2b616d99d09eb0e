/*
 * linalg.c — reference Gemm and MatMul.
 *
 * Design: one plain triple loop (i, k, j order, so the innermost loop runs
 * along rows of B and C) shared by both ops. MatMul follows numpy: rank-1
 * operands are promoted and the added dimension dropped again, and leading
 * batch dimensions broadcast.
 *
 * Trusts: the infer functions' checks (every shape, attribute and constant
 * a kernel reads was validated at plan time) and the planner's placement.
 */
#include "../../nn_int.h"

#include <string.h>

/* C[M,N] += A[M,K] * B[K,N] with element strides for A and B (transposes). */
static void mm(const float *a, size_t a_rs, size_t a_cs, const float *b, size_t b_rs, size_t b_cs, float *cm,
               int64_t m, int64_t k, int64_t n, float alpha)
{
    for (int64_t i = 0; i < m; i++) {
        float *crow = cm + i * n;
        for (int64_t p = 0; p < k; p++) {
            float av = alpha * a[(size_t)i * a_rs + (size_t)p * a_cs];
            const float *brow = b + (size_t)p * b_rs;
            if (b_cs == 1)
                for (int64_t j = 0; j < n; j++)
                    crow[j] += av * brow[j];
            else
                for (int64_t j = 0; j < n; j++)
                    crow[j] += av * brow[(size_t)j * b_cs];
        }
    }
}

enum coffer_err nn_infer_gemm(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t ta, tb;
    float f;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = nn_want_dtype(c, 1, NN_F)) ||
        (r = nn_attr_int(c->node, "transA", 0, &ta)) || (r = nn_attr_int(c->node, "transB", 0, &tb)) ||
        (r = nn_attr_float(c->node, "alpha", 1, &f)) || (r = nn_attr_float(c->node, "beta", 1, &f)))
        return r;
    const struct nn_val *a = c->in[0], *b = c->in[1];
    if (a->rank != 2 || b->rank != 2)
        return nn_fail_node(c, COFFER_E_SHAPE, "A and B must be matrices (ranks %d, %d)", a->rank, b->rank);
    int64_t m = ta ? a->dims[1] : a->dims[0], k = ta ? a->dims[0] : a->dims[1];
    int64_t kb = tb ? b->dims[1] : b->dims[0], n = tb ? b->dims[0] : b->dims[1];
    if (k != kb)
        return nn_fail_node(c, COFFER_E_SHAPE, "inner dimensions %lld and %lld differ", (long long)k, (long long)kb);
    int64_t dims[2] = {m, n};
    if (c->n_in > 2 && c->in[2] != NULL) {
        if ((r = nn_want_dtype(c, 2, NN_F)) != COFFER_OK)
            return r;
        int rank;
        int64_t bd[COFFER_NN_MAX_RANK];
        if ((r = nn_broadcast(c, 2, dims, c->in[2]->rank, c->in[2]->dims, &rank, bd)) != COFFER_OK)
            return r;
        if (rank != 2 || bd[0] != m || bd[1] != n)
            return nn_fail_node(c, COFFER_E_SHAPE, "C does not broadcast to [%lld, %lld]", (long long)m, (long long)n);
    }
    if ((r = nn_set_work(c, (double)m * (double)n * ((double)k + 1))) != COFFER_OK)
        return r;
    return nn_set_out(c, 0, COFFER_NN_FLOAT, 2, dims);
}

void nn_run_gemm(struct nn_ctx *c)
{
    int64_t ta = 0, tb = 0;
    float alpha = 1, beta = 1;
    ta = nn_ai(c->node, "transA", 0);
    tb = nn_ai(c->node, "transB", 0);
    alpha = nn_af(c->node, "alpha", 1);
    beta = nn_af(c->node, "beta", 1);
    const struct nn_val *a = c->in[0], *b = c->in[1];
    struct nn_val *y = c->out[0];
    int64_t m = y->dims[0], n = y->dims[1], k = ta ? a->dims[0] : a->dims[1];
    float *o = y->data;
    if (c->n_in > 2 && c->in[2] != NULL) {
        size_t st[COFFER_NN_MAX_RANK];
        nn_bcast_strides(c->in[2], 2, y->dims, st);
        const float *cv = c->in[2]->data;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                o[i * n + j] = beta * cv[(size_t)i * st[0] + (size_t)j * st[1]];
    } else {
        memset(o, 0, y->size);
    }
    size_t a_rs = ta ? 1 : (size_t)a->dims[1], a_cs = ta ? (size_t)a->dims[1] : 1;
    size_t b_rs = tb ? 1 : (size_t)b->dims[1], b_cs = tb ? (size_t)b->dims[1] : 1;
    mm(a->data, a_rs, a_cs, b->data, b_rs, b_cs, o, m, k, n, alpha);
}

struct mmshape {
    int batch_rank;
    int64_t bdims[COFFER_NN_MAX_RANK];
    int64_t m, k, n;
};

static enum coffer_err matmul_shape(struct nn_ctx *c, struct mmshape *s, int *rank, int64_t *dims)
{
    const struct nn_val *a = c->in[0], *b = c->in[1];
    if (a->rank < 1 || b->rank < 1)
        return nn_fail_node(c, COFFER_E_SHAPE, "scalar operand");
    s->m = a->rank == 1 ? 1 : a->dims[a->rank - 2];
    s->k = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    s->n = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (s->k != kb)
        return nn_fail_node(c, COFFER_E_SHAPE, "inner dimensions %lld and %lld differ", (long long)s->k, (long long)kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    enum coffer_err r = nn_broadcast(c, ra, a->dims, rb, b->dims, &s->batch_rank, s->bdims);
    if (r != COFFER_OK)
        return r;
    int q = 0;
    for (int i = 0; i < s->batch_rank; i++)
        dims[q++] = s->bdims[i];
    if (a->rank > 1)
        dims[q++] = s->m;
    if (b->rank > 1)
        dims[q++] = s->n;
    *rank = q;
    return COFFER_OK;
}

enum coffer_err nn_infer_matmul(struct nn_ctx *c)
{
    enum coffer_err r;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = nn_want_dtype(c, 1, NN_F)))
        return r;
    struct mmshape s;
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK + 2];
    if ((r = matmul_shape(c, &s, &rank, dims)) != COFFER_OK)
        return r;
    double batch = 1;
    for (int i = 0; i < s.batch_rank; i++)
        batch *= (double)s.bdims[i];
    if ((r = nn_set_work(c, batch * (double)s.m * (double)s.n * ((double)s.k + 1))) != COFFER_OK)
        return r;
    return nn_set_out(c, 0, COFFER_NN_FLOAT, rank, dims);
}

/* The offset of the matrix for batch index idx in v (broadcast over the
 * leading dimensions). */
static size_t batch_off(const struct nn_val *v, const struct mmshape *s, size_t idx)
{
    int vr = v->rank > 2 ? v->rank - 2 : 0;
    size_t off = 0, stride = 1;
    for (int i = s->batch_rank - 1; i >= 0; i--) {
        size_t coord = idx % (size_t)s->bdims[i];
        idx /= (size_t)s->bdims[i];
        int vi = i - (s->batch_rank - vr);
        if (vi >= 0) {
            if (v->dims[vi] != 1)
                off += coord * stride;
            stride *= (size_t)v->dims[vi];
        }
    }
    return off;
}

void nn_run_matmul(struct nn_ctx *c)
{
    struct mmshape s;
    int rank;
    int64_t dims[COFFER_NN_MAX_RANK + 2];
    if (matmul_shape(c, &s, &rank, dims) != COFFER_OK)
        return;
    size_t nb = 1;
    for (int i = 0; i < s.batch_rank; i++)
        nb *= (size_t)s.bdims[i];
    const float *a = c->in[0]->data, *b = c->in[1]->data;
    float *y = c->out[0]->data;
    memset(y, 0, c->out[0]->size);
    size_t as = (size_t)(s.m * s.k), bs = (size_t)(s.k * s.n), ys = (size_t)(s.m * s.n);
    for (size_t i = 0; i < nb; i++)
        mm(a + batch_off(c->in[0], &s, i) * as, (size_t)s.k, 1, b + batch_off(c->in[1], &s, i) * bs, (size_t)s.n, 1,
           y + i * ys, s.m, s.k, s.n, 1.0f);
}
