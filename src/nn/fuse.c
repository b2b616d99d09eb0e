/*
 * fuse.c — the fusion pass: epilogues folded into the node before them.
 *
 * Design: after shapes are inferred and constants folded, each node that
 * runs a fast kernel (Conv, Gemm, MatMul; nn_fast_ok) absorbs the chain of
 * single-consumer nodes after it, in this order:
 *   BatchNormalization (Conv only, all parameters constant): folded into
 *     the packed weights and bias at plan time;
 *   Add of a same-shaped value computed earlier: added in the epilogue
 *     (the residual of a ResNet block);
 *   Relu, or Clip with constant bounds (ReLU6): applied last.
 * The absorbed nodes are marked skip and the head node writes the chain's
 * last value (f_out); the intermediate values are never allocated. The IR
 * arrays are not changed, so a re-plan (a new batch size) starts from the
 * graph as imported. With the reference ISA nothing is fused.
 *
 * Invariants: I1 an absorbed node's output had exactly one reader and was
 * not a graph output; I2 a residual is produced before the head node, so it
 * is ready when the head runs, and has the head's shape; I3 the epilogue
 * order (bias, residual, activation) is the graph's order.
 *
 * Trusts: infer (shapes known for every value) and nn_fast_ok.
 */
#include "nn_int.h"

#include <math.h>
#include <string.h>

int nn_node_n_in(const struct nn_node *n)
{
    return n->n_in + (n->f_res >= 0 ? 1 : 0);
}

int nn_node_in(const struct nn_node *n, int k)
{
    return k < n->n_in ? n->in[k] : n->f_res;
}

int nn_node_out(const struct nn_node *n, int k)
{
    return k == 0 && n->f_out >= 0 ? n->f_out : n->out[k];
}

static bool is_const(const struct nn_val *v)
{
    return v->kind == NN_VAL_INIT || v->kind == NN_VAL_CONST;
}

static bool same_shape(const struct nn_val *a, const struct nn_val *b)
{
    return a->rank == b->rank && memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank) == 0;
}

/* Clip's bounds when they are known at plan time. */
static bool clip_bounds(const struct coffer_nn_model *m, const struct nn_node *n, float *lo, float *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    if (n->opset < 11) {
        *lo = nn_af(n, "min", -3.402823e38f);
        *hi = nn_af(n, "max", 3.402823e38f);
        return true;
    }
    for (int k = 1; k < n->n_in; k++) {
        if (n->in[k] < 0)
            continue;
        const struct nn_val *v = &m->g.vals[n->in[k]];
        if (!is_const(v) || v->dtype != COFFER_NN_FLOAT || v->count != 1)
            return false;
        *(k == 1 ? lo : hi) = *(const float *)v->data;
    }
    return !isnan(*lo) && !isnan(*hi);
}

static bool bn_foldable(const struct coffer_nn_model *m, const struct nn_node *conv, const struct nn_node *bn)
{
    if (conv->op != NN_OP_CONV || !is_const(&m->g.vals[conv->in[1]]))
        return false;
    if (conv->n_in > 2 && conv->in[2] >= 0 && !is_const(&m->g.vals[conv->in[2]]))
        return false;
    for (int k = 1; k < 5; k++)
        if (!is_const(&m->g.vals[bn->in[k]]))
            return false;
    for (int k = 1; k < bn->n_out; k++)
        if (bn->out[k] >= 0)
            return false;
    return true;
}

enum coffer_err nn_fuse(struct coffer_nn_model *m)
{
    struct nn_graph *g = &m->g;
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct nn_node *n = &g->nodes[i];
        n->skip = false;
        n->f_out = n->f_res = n->f_bn = -1;
        n->f_act = NN_ACT_NONE;
        n->f_lo = -INFINITY;
        n->f_hi = INFINITY;
        n->fast = NULL;
    }
    if (m->isa == NULL || m->isa->id == NN_ISA_REF)
        return COFFER_OK;
    /* readers of each value among the nodes that will run, and the last one */
    int *uses = coffer_calloc(g->n_vals + 1, sizeof(int));
    int *reader = coffer_calloc(g->n_vals + 1, sizeof(int));
    if (uses == NULL || reader == NULL) {
        coffer_free(uses);
        coffer_free(reader);
        return COFFER_FAIL(COFFER_E_NOMEM, "fusion pass");
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        const struct nn_node *n = &g->nodes[i];
        if (n->folded)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) {
                uses[n->in[k]]++;
                reader[n->in[k]] = (int)i;
            }
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct nn_node *h = &g->nodes[i];
        if (h->folded || h->skip || (h->op != NN_OP_CONV && h->op != NN_OP_GEMM && h->op != NN_OP_MATMUL) ||
            !nn_fast_ok(m, i))
            continue;
        int cur = h->out[0];
        for (;;) {
            const struct nn_val *cv = &g->vals[cur];
            if (cv->is_output || uses[cur] != 1 || cv->dtype != COFFER_NN_FLOAT)
                break;
            struct nn_node *y = &g->nodes[reader[cur]];
            if (y->folded || y->in[0] < 0 || y->out[0] < 0)
                break;
            if (y->op == NN_OP_BATCHNORM && y->in[0] == cur && h->f_bn < 0 && h->f_res < 0 &&
                h->f_act == NN_ACT_NONE && bn_foldable(m, h, y)) {
                h->f_bn = reader[cur];
            } else if (y->op == NN_OP_RELU && h->f_act == NN_ACT_NONE) {
                h->f_act = NN_ACT_RELU;
            } else if (y->op == NN_OP_CLIP && h->f_act == NN_ACT_NONE && y->in[0] == cur &&
                       clip_bounds(m, y, &h->f_lo, &h->f_hi)) {
                h->f_act = NN_ACT_CLIP;
            } else if (y->op == NN_OP_ADD && h->f_act == NN_ACT_NONE && h->f_res < 0) {
                int other = y->in[0] == cur ? y->in[1] : y->in[0];
                if (other == cur || other < 0)
                    break;
                const struct nn_val *ov = &g->vals[other];
                if (ov->dtype != COFFER_NN_FLOAT || !same_shape(ov, cv) || !same_shape(&g->vals[y->out[0]], cv) ||
                    ov->producer >= (int)i)
                    break;
                h->f_res = other;
            } else {
                break;
            }
            y->skip = true;
            cur = y->out[0];
        }
        if (cur != h->out[0])
            h->f_out = cur;
    }
    coffer_free(uses);
    coffer_free(reader);
    return COFFER_OK;
}
