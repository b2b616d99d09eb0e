/*
 * resize.c — reference Resize (opsets 10 to 17) and Upsample (7 to 9),
 * modes nearest and (n-)linear.
 *
 * Design: infer and run share resize_get, which reads the mode, the
 * coordinate transformation and the per-axis scales (from scales, or from
 * sizes as out/in) and computes the output shape. Each output coordinate
 * is mapped back per axis; linear interpolation visits the 2^k corners of
 * the axes that actually interpolate. Cubic and tf_crop_and_resize are
 * reported as unsupported.
 *
 * Trusts: the infer functions' checks (every shape, attribute and constant
 * a kernel reads was validated at plan time) and the planner's placement.
 */
#include "../../nn_int.h"

#include <math.h>
#include <string.h>

enum { CT_HALF, CT_PYTORCH, CT_ALIGN, CT_ASYM, CT_TFNEAREST };
enum { NR_PREFER_FLOOR, NR_PREFER_CEIL, NR_FLOOR, NR_CEIL };

struct rs {
    bool linear;
    int ct, nr;
    float scale[COFFER_NN_MAX_RANK];
    double outf[COFFER_NN_MAX_RANK]; /* resized length before flooring (in * scale), as the spec uses it */
    int64_t out[COFFER_NN_MAX_RANK];
};

static enum coffer_err resize_get(struct nn_ctx *c, struct rs *s)
{
    const struct nn_val *x = c->in[0];
    enum coffer_err r;
    const char *mode, *ctm = "asymmetric", *nrm = "floor";
    if ((r = nn_attr_string(c->node, "mode", "nearest", &mode)) != COFFER_OK)
        return r;
    if (strcmp(mode, "nearest") == 0)
        s->linear = false;
    else if (strcmp(mode, "linear") == 0 || strcmp(mode, "bilinear") == 0)
        s->linear = true;
    else
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "mode '%s' (nearest and linear are supported)", mode);
    bool v11 = c->node->op == NN_OP_RESIZE && c->node->opset >= 11;
    if (v11) {
        if ((r = nn_attr_string(c->node, "coordinate_transformation_mode", "half_pixel", &ctm)) ||
            (r = nn_attr_string(c->node, "nearest_mode", "round_prefer_floor", &nrm)))
            return r;
        int64_t excl;
        if ((r = nn_attr_int(c->node, "exclude_outside", 0, &excl)) != COFFER_OK)
            return r;
    }
    s->ct = strcmp(ctm, "half_pixel") == 0 ? CT_HALF : strcmp(ctm, "pytorch_half_pixel") == 0 ? CT_PYTORCH
            : strcmp(ctm, "align_corners") == 0 ? CT_ALIGN : strcmp(ctm, "asymmetric") == 0 ? CT_ASYM
            : strcmp(ctm, "tf_half_pixel_for_nearest") == 0 ? CT_TFNEAREST : -1;
    if (s->ct < 0)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "coordinate_transformation_mode '%s'", ctm);
    s->nr = strcmp(nrm, "round_prefer_floor") == 0 ? NR_PREFER_FLOOR : strcmp(nrm, "round_prefer_ceil") == 0
            ? NR_PREFER_CEIL : strcmp(nrm, "floor") == 0 ? NR_FLOOR : strcmp(nrm, "ceil") == 0 ? NR_CEIL : -1;
    if (s->nr < 0)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "nearest_mode '%s'", nrm);

    const float *sc = NULL;
    size_t ns = 0;
    const int64_t *sizes = NULL;
    size_t nz = 0;
    if (c->node->op == NN_OP_UPSAMPLE && c->node->opset < 9) {
        if ((r = nn_attr_floats(c->node, "scales", &sc, &ns)) != COFFER_OK)
            return r;
    } else if (c->node->op == NN_OP_UPSAMPLE || c->node->opset < 11) {
        if (c->n_in < 2 || c->in[1] == NULL)
            return nn_fail_node(c, COFFER_E_MALFORMED, "scales input is required");
        if ((r = nn_const_floats(c, 1, &sc, &ns)) != COFFER_OK)
            return r;
    } else {
        if (c->n_in > 2 && c->in[2] != NULL && c->in[2]->count > 0 && (r = nn_const_floats(c, 2, &sc, &ns)))
            return r;
        if (c->n_in > 3 && c->in[3] != NULL && c->in[3]->count > 0 && (r = nn_const_ints(c, 3, &sizes, &nz)))
            return r;
        if ((sc == NULL) == (sizes == NULL))
            return nn_fail_node(c, COFFER_E_MALFORMED, "exactly one of scales and sizes must be given");
    }
    if (sizes != NULL) {
        if ((int)nz != x->rank)
            return nn_fail_node(c, COFFER_E_SHAPE, "sizes has %zu entries for rank %d", nz, x->rank);
        for (int i = 0; i < x->rank; i++) {
            if (sizes[i] < 0 || sizes[i] > (int64_t)COFFER_NN_MAX_ELEMS)
                return nn_fail_node(c, COFFER_E_SHAPE, "size %lld", (long long)sizes[i]);
            s->out[i] = sizes[i];
            s->outf[i] = (double)sizes[i];
            s->scale[i] = x->dims[i] ? (float)sizes[i] / (float)x->dims[i] : 1.0f;
        }
    } else {
        if (sc == NULL || (int)ns != x->rank)
            return nn_fail_node(c, COFFER_E_SHAPE, "scales has %zu entries for rank %d", ns, x->rank);
        for (int i = 0; i < x->rank; i++) {
            if (!(sc[i] > 0) || sc[i] > 1e6f)
                return nn_fail_node(c, COFFER_E_MALFORMED, "scale %g", (double)sc[i]);
            double o = floor((double)x->dims[i] * sc[i]);
            if (o > (double)COFFER_NN_MAX_ELEMS)
                return nn_fail_node(c, COFFER_E_TOO_LARGE, "output dimension");
            s->out[i] = (int64_t)o;
            s->outf[i] = (double)x->dims[i] * sc[i];
            s->scale[i] = sc[i];
        }
    }
    for (int i = 0; i < x->rank; i++)
        if (s->out[i] > 0 && x->dims[i] == 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "resizing an empty dimension");
    return COFFER_OK;
}

enum coffer_err nn_infer_resize(struct nn_ctx *c)
{
    enum coffer_err r;
    struct rs s;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = resize_get(c, &s)))
        return r;
    double out = 1;
    for (int i = 0; i < c->in[0]->rank; i++)
        out *= (double)s.out[i];
    if ((r = nn_set_work(c, out * (s.linear ? (double)(1u << c->in[0]->rank) : 1.0) * c->in[0]->rank)) != COFFER_OK)
        return r;
    return nn_set_out(c, 0, COFFER_NN_FLOAT, c->in[0]->rank, s.out);
}

static double to_orig(const struct rs *s, int k, int64_t xo, int64_t in)
{
    double x = (double)xo, sc = s->scale[k];
    switch (s->ct) {
    case CT_HALF: return (x + 0.5) / sc - 0.5;
    case CT_PYTORCH: return s->outf[k] > 1 ? (x + 0.5) / sc - 0.5 : 0.0;
    case CT_ALIGN: return s->outf[k] == 1 ? 0.0 : x * (double)(in - 1) / (s->outf[k] - 1);
    case CT_TFNEAREST: return (x + 0.5) / sc;
    default: return x / sc;
    }
}

void nn_run_resize(struct nn_ctx *c)
{
    struct rs s;
    if (resize_get(c, &s) != COFFER_OK)
        return;
    const struct nn_val *xv = c->in[0];
    struct nn_val *yv = c->out[0];
    int rank = xv->rank;
    const float *x = xv->data;
    float *y = yv->data;
    int64_t st[COFFER_NN_MAX_RANK], idx[COFFER_NN_MAX_RANK] = {0};
    int64_t sacc = 1;
    for (int k = rank - 1; k >= 0; k--) {
        st[k] = sacc;
        sacc *= xv->dims[k];
    }
    for (size_t i = 0; i < yv->count; i++) {
        int64_t i0[COFFER_NN_MAX_RANK], i1[COFFER_NN_MAX_RANK];
        double w[COFFER_NN_MAX_RANK];
        int interp[COFFER_NN_MAX_RANK], ni = 0;
        int64_t base = 0;
        for (int k = 0; k < rank; k++) {
            int64_t in = xv->dims[k];
            double xo = to_orig(&s, k, idx[k], in);
            if (!s.linear) {
                double f = floor(xo), v;
                switch (s.nr) {
                case NR_PREFER_FLOOR: v = (xo - f == 0.5) ? f : floor(xo + 0.5); break;
                case NR_PREFER_CEIL: v = (xo - f == 0.5) ? f + 1 : floor(xo + 0.5); break;
                case NR_FLOOR: v = f; break;
                default: v = ceil(xo); break;
                }
                int64_t j = v < 0 ? 0 : v > (double)(in - 1) ? in - 1 : (int64_t)v;
                base += j * st[k];
                continue;
            }
            if (xo < 0)
                xo = 0;
            if (xo > (double)(in - 1))
                xo = (double)(in - 1);
            i0[k] = (int64_t)floor(xo);
            i1[k] = i0[k] + 1 < in ? i0[k] + 1 : in - 1;
            w[k] = xo - (double)i0[k];
            base += i0[k] * st[k];
            if (w[k] > 0 && i1[k] != i0[k])
                interp[ni++] = k;
        }
        double acc = 0;
        for (unsigned m = 0; m < (1u << ni); m++) {
            double wt = 1;
            int64_t off = base;
            for (int q = 0; q < ni; q++) {
                int k = interp[q];
                if (m & (1u << q)) {
                    wt *= w[k];
                    off += (i1[k] - i0[k]) * st[k];
                } else {
                    wt *= 1 - w[k];
                }
            }
            acc += wt * x[off];
        }
        y[i] = (float)acc;
        for (int k = rank - 1; k >= 0; k--) {
            if (++idx[k] < yv->dims[k])
                break;
            idx[k] = 0;
        }
    }
}
