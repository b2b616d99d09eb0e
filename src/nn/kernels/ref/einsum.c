/*
 * einsum.c — reference Einsum over float32 operands.
 *
 * Design: the equation is parsed once per call into, for every operand and
 * the output, the list of letters indexing its dimensions. Each letter gets
 * one extent (checked equal wherever it appears). The kernel visits every
 * combination of all letters (output letters outermost), multiplies the
 * operands' elements and adds into the output element: one loop nest for
 * contractions, transposes, diagonals (a letter repeated in one operand),
 * traces and sums. Without "->" the output is the letters that appear once,
 * in alphabetical order (the numpy rule). Ellipses ("...") are reported as
 * unsupported.
 *
 * Invariants: every index computed is a product of per-letter coordinates
 * below checked extents with the operand's own strides.
 *
 * Trusts: the infer function's checks (every shape, attribute and constant
 * a kernel reads was validated at plan time) and the planner's placement.
 */
#include "../../nn_int.h"

#include <string.h>

#define NL 52 /* letters a-z, A-Z */

struct eq {
    int n_ops;
    int rank[NN_MAX_IO + 1];            /* last one is the output */
    int lt[NN_MAX_IO + 1][COFFER_NN_MAX_RANK];
    int64_t ext[NL];
    int order[NL], n_order, n_out;     /* letters: output ones first, then summed ones */
};

static int letter(char ch)
{
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a';
    if (ch >= 'A' && ch <= 'Z')
        return 26 + ch - 'A';
    return -1;
}

static enum coffer_err parse(struct nn_ctx *c, struct eq *e)
{
    const char *eqn;
    enum coffer_err r = nn_attr_string(c->node, "equation", NULL, &eqn);
    if (r != COFFER_OK)
        return r;
    if (eqn == NULL)
        return nn_fail_node(c, COFFER_E_MALFORMED, "equation is required");
    if (strstr(eqn, "...") != NULL)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "ellipsis in equation '%s' is not supported", eqn);
    memset(e, 0, sizeof(*e));
    for (int i = 0; i < NL; i++)
        e->ext[i] = -1;
    int count[NL] = {0};
    int op = 0;
    bool arrow = false;
    const char *p = eqn;
    for (; *p; p++) {
        if (*p == ' ')
            continue;
        if (*p == ',' || (*p == '-' && p[1] == '>')) {
            if (arrow)
                return nn_fail_node(c, COFFER_E_MALFORMED, "equation '%s'", eqn);
            op++;
            if (*p == '-') {
                p++;
                arrow = true;
                if (op != c->n_in)
                    return nn_fail_node(c, COFFER_E_MALFORMED, "equation names %d operands, node has %d", op, c->n_in);
                op = NN_MAX_IO; /* the output's slot */
            } else if (op >= c->n_in) {
                return nn_fail_node(c, COFFER_E_MALFORMED, "equation names more operands than the node has");
            }
            continue;
        }
        int l = letter(*p);
        if (l < 0)
            return nn_fail_node(c, COFFER_E_MALFORMED, "character '%c' in equation", *p);
        if (e->rank[op] >= COFFER_NN_MAX_RANK)
            return nn_fail_node(c, COFFER_E_UNSUPPORTED, "rank over %d", COFFER_NN_MAX_RANK);
        e->lt[op][e->rank[op]++] = l;
        if (!arrow)
            count[l]++;
    }
    if (!arrow && op + 1 != c->n_in)
        return nn_fail_node(c, COFFER_E_MALFORMED, "equation names %d operands, node has %d", op + 1, c->n_in);
    e->n_ops = c->n_in;
    for (int i = 0; i < e->n_ops; i++) {
        const struct nn_val *v = c->in[i];
        if (v->rank != e->rank[i])
            return nn_fail_node(c, COFFER_E_SHAPE, "operand %d has rank %d, equation says %d", i, v->rank, e->rank[i]);
        for (int k = 0; k < v->rank; k++) {
            int l = e->lt[i][k];
            if (e->ext[l] >= 0 && e->ext[l] != v->dims[k])
                return nn_fail_node(c, COFFER_E_SHAPE, "letter '%c' has extents %lld and %lld", "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[l], (long long)e->ext[l], (long long)v->dims[k]);
            e->ext[l] = v->dims[k];
        }
    }
    if (!arrow) /* implicit output: letters seen once, alphabetical */
        for (int l = 0; l < NL; l++)
            if (count[l] == 1)
                e->lt[NN_MAX_IO][e->rank[NN_MAX_IO]++] = l;
    bool used[NL] = {false};
    for (int k = 0; k < e->rank[NN_MAX_IO]; k++) {
        int l = e->lt[NN_MAX_IO][k];
        if (e->ext[l] < 0 || used[l])
            return nn_fail_node(c, COFFER_E_MALFORMED, "output letter not in any operand, or repeated");
        used[l] = true;
        e->order[e->n_order++] = l;
    }
    e->n_out = e->n_order;
    for (int l = 0; l < NL; l++)
        if (e->ext[l] >= 0 && !used[l])
            e->order[e->n_order++] = l;
    return COFFER_OK;
}

enum coffer_err nn_infer_einsum(struct nn_ctx *c)
{
    enum coffer_err r;
    for (int i = 0; i < c->n_in; i++)
        if ((r = nn_want_dtype(c, i, NN_F)) != COFFER_OK)
            return r;
    struct eq e;
    if ((r = parse(c, &e)) != COFFER_OK)
        return r;
    double work = 1;
    for (int i = 0; i < e.n_order; i++)
        work *= (double)e.ext[e.order[i]];
    if ((r = nn_set_work(c, work * (double)e.n_ops)) != COFFER_OK)
        return r;
    int64_t dims[COFFER_NN_MAX_RANK];
    for (int k = 0; k < e.rank[NN_MAX_IO]; k++)
        dims[k] = e.ext[e.lt[NN_MAX_IO][k]];
    return nn_set_out(c, 0, COFFER_NN_FLOAT, e.rank[NN_MAX_IO], dims);
}

void nn_run_einsum(struct nn_ctx *c)
{
    struct eq e;
    if (parse(c, &e) != COFFER_OK)
        return;
    struct nn_val *y = c->out[0];
    float *out = y->data;
    memset(out, 0, y->size);
    /* per operand (and output), the stride each letter adds */
    int64_t st[NN_MAX_IO + 1][NL];
    memset(st, 0, sizeof(st));
    for (int i = 0; i <= e.n_ops; i++) {
        int slot = i == e.n_ops ? NN_MAX_IO : i;
        int64_t s = 1;
        for (int k = e.rank[slot] - 1; k >= 0; k--) {
            st[i][e.lt[slot][k]] += s;
            s *= e.ext[e.lt[slot][k]];
        }
    }
    for (int l = 0; l < e.n_order; l++)
        if (e.ext[e.order[l]] == 0)
            return;
    int64_t idx[NL] = {0}, off[NN_MAX_IO + 1] = {0};
    for (;;) {
        float prod = 1.0f;
        for (int i = 0; i < e.n_ops; i++)
            prod *= ((const float *)c->in[i]->data)[off[i]];
        out[off[e.n_ops]] += prod;
        int k = e.n_order - 1;
        for (; k >= 0; k--) {
            int l = e.order[k];
            idx[k]++;
            for (int i = 0; i <= e.n_ops; i++)
                off[i] += st[i][l];
            if (idx[k] < e.ext[l])
                break;
            for (int i = 0; i <= e.n_ops; i++)
                off[i] -= st[i][l] * idx[k];
            idx[k] = 0;
        }
        if (k < 0)
            break;
    }
}
