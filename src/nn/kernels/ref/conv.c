/*
 * conv.c — reference kernels for windowed ops: Conv, ConvTranspose,
 * MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool and LRN.
 *
 * Design: one geometry helper (struct nn_geom) turns a node's attributes and
 * its input shapes into kernel sizes, strides, dilations and begin pads for
 * up to three spatial dimensions, validating every value; infer and run
 * both call it, so the kernel uses exactly what infer checked. Spatial
 * ranks 1 and 2 are treated as 3 with leading dimensions of 1. Loops are
 * direct (no im2col): the reference favours obviousness over speed.
 *
 * Invariants: every input index a kernel computes is checked against the
 * input extent before it is read.
 *
 * Trusts: the infer functions' checks (every shape, attribute and constant
 * a kernel reads was validated at plan time) and the planner's placement.
 */
#include "../../nn_int.h"

#include <math.h>
#include <string.h>

#define SP NN_SP

static enum coffer_err ints_attr(struct nn_ctx *c, const char *name, int nsp, int64_t def, int64_t *dst, int mult)
{
    const int64_t *v;
    size_t n;
    enum coffer_err r = nn_attr_ints(c->node, name, &v, &n);
    if (r != COFFER_OK)
        return r;
    for (int i = 0; i < nsp * mult; i++)
        dst[i] = def;
    if (v == NULL)
        return COFFER_OK;
    if (n != (size_t)(nsp * mult))
        return nn_fail_node(c, COFFER_E_MALFORMED, "attribute %s has %zu values, expected %d", name, n, nsp * mult);
    for (int i = 0; i < nsp * mult; i++)
        dst[i] = v[i];
    return COFFER_OK;
}

enum coffer_err nn_geom_get(struct nn_ctx *c, int kind, struct nn_geom *g)
{
    memset(g, 0, sizeof(*g));
    const struct nn_val *x = c->in[0];
    enum coffer_err r;
    if (x->rank < 3 || x->rank > 2 + SP)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "input rank %d (3 to %d are supported)", x->rank, 2 + SP);
    g->nsp = x->rank - 2;
    g->n = x->dims[0];
    g->c = x->dims[1];
    int nsp = g->nsp;
    int64_t kk[SP], pads[2 * SP], outpad[SP], outshape[SP];
    if ((r = ints_attr(c, "kernel_shape", nsp, -1, kk, 1)) || (r = ints_attr(c, "strides", nsp, 1, g->s, 1)) ||
        (r = ints_attr(c, "dilations", nsp, 1, g->d, 1)) || (r = ints_attr(c, "pads", nsp, 0, pads, 2)))
        return r;
    if ((r = nn_attr_int(c->node, "group", 1, &g->group)) != COFFER_OK)
        return r;
    int64_t cm = 0, cip = 0;
    if ((r = nn_attr_int(c->node, "ceil_mode", 0, &cm)) || (r = nn_attr_int(c->node, "count_include_pad", 0, &cip)))
        return r;
    g->ceil_mode = cm != 0;
    g->include_pad = cip != 0;
    int64_t so = 0;
    if ((r = nn_attr_int(c->node, "storage_order", 0, &so)) != COFFER_OK)
        return r;
    const char *ap;
    if ((r = nn_attr_string(c->node, "auto_pad", "NOTSET", &ap)) != COFFER_OK)
        return r;
    int mode = strcmp(ap, "NOTSET") == 0 ? 0 : strcmp(ap, "SAME_UPPER") == 0 ? 1 : strcmp(ap, "SAME_LOWER") == 0 ? 2
               : strcmp(ap, "VALID") == 0 ? 3 : -1;
    if (mode < 0)
        return nn_fail_node(c, COFFER_E_MALFORMED, "auto_pad '%s'", ap);
    if (kind != 1) {
        const struct nn_val *w = c->in[1];
        if (w->rank != x->rank)
            return nn_fail_node(c, COFFER_E_SHAPE, "weight rank %d, input rank %d", w->rank, x->rank);
        if (g->group < 1 || g->c % g->group != 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "group %lld does not divide %lld channels", (long long)g->group,
                                (long long)g->c);
        if (kind == 0) {
            g->m = w->dims[0];
            int64_t cin;
            if (__builtin_mul_overflow(w->dims[1], g->group, &cin) || cin != g->c || g->m % g->group != 0)
                return nn_fail_node(c, COFFER_E_SHAPE, "weight [%lld, %lld, ...] does not fit %lld channels in %lld groups",
                                    (long long)w->dims[0], (long long)w->dims[1], (long long)g->c, (long long)g->group);
        } else {
            if (w->dims[0] != g->c)
                return nn_fail_node(c, COFFER_E_SHAPE, "weight has %lld input channels, X has %lld",
                                    (long long)w->dims[0], (long long)g->c);
            if (__builtin_mul_overflow(w->dims[1], g->group, &g->m))
                return nn_fail_node(c, COFFER_E_TOO_LARGE, "output channels overflow");
        }
        for (int i = 0; i < nsp; i++) {
            if (kk[i] >= 0 && kk[i] != w->dims[2 + i])
                return nn_fail_node(c, COFFER_E_SHAPE, "kernel_shape disagrees with the weight");
            kk[i] = w->dims[2 + i];
        }
        if (c->n_in > 2 && c->in[2] != NULL && (c->in[2]->rank != 1 || c->in[2]->dims[0] != g->m))
            return nn_fail_node(c, COFFER_E_SHAPE, "bias must be [%lld]", (long long)g->m);
    } else {
        g->m = g->c;
        g->group = 1;
        for (int i = 0; i < nsp; i++)
            if (kk[i] < 0)
                return nn_fail_node(c, COFFER_E_MALFORMED, "kernel_shape is required");
    }
    if ((r = ints_attr(c, "output_padding", nsp, 0, outpad, 1)) || (r = ints_attr(c, "output_shape", nsp, -1, outshape, 1)))
        return r;
    for (int i = 0; i < nsp; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = kk[i];
        if (kk[i] < 1 || g->s[i] < 1 || g->d[i] < 1 || kk[i] > (1 << 20) || g->s[i] > (1 << 20) || g->d[i] > (1 << 20))
            return nn_fail_node(c, COFFER_E_MALFORMED, "kernel %lld, stride %lld, dilation %lld", (long long)kk[i],
                                (long long)g->s[i], (long long)g->d[i]);
        if (pads[i] < 0 || pads[nsp + i] < 0 || pads[i] > (1 << 20) || pads[nsp + i] > (1 << 20) ||
            outpad[i] < 0 || outpad[i] > (1 << 20))
            return nn_fail_node(c, COFFER_E_MALFORMED, "pads must be between 0 and 2^20");
        int64_t ek = g->d[i] * (kk[i] - 1) + 1, pb = pads[i], pe = pads[nsp + i];
        if (kind == 2) {
            int64_t base = g->s[i] * (g->in[i] - 1) + outpad[i] + ek;
            if (outshape[i] >= 0 || mode == 1 || mode == 2) {
                int64_t want = outshape[i] >= 0 ? outshape[i] : g->in[i] * g->s[i];
                int64_t total = base - want; /* may be negative: extra output at the end */
                if (want < 0 || want > (int64_t)COFFER_NN_MAX_ELEMS || total < -(int64_t)(1 << 20))
                    return nn_fail_node(c, COFFER_E_SHAPE, "output_shape %lld", (long long)want);
                int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2); /* floor(total / 2) */
                pb = mode == 1 ? half : total - half;
                pe = total - pb;
            } else if (mode == 3) {
                pb = pe = 0;
            }
            g->pb[i] = pb;
            g->out[i] = base - pb - pe;
        } else {
            int64_t out;
            if (mode == 0) {
                int64_t span = g->in[i] + pb + pe - ek;
                if (span < 0)
                    return nn_fail_node(c, COFFER_E_SHAPE, "kernel larger than padded input");
                out = (g->ceil_mode ? (span + g->s[i] - 1) / g->s[i] : span / g->s[i]) + 1;
                if (g->ceil_mode && (out - 1) * g->s[i] >= g->in[i] + pb)
                    out--;
            } else if (mode == 3) {
                int64_t span = g->in[i] - ek;
                if (span < 0)
                    return nn_fail_node(c, COFFER_E_SHAPE, "kernel larger than input");
                out = span / g->s[i] + 1;
                pb = 0;
            } else {
                out = (g->in[i] + g->s[i] - 1) / g->s[i];
                int64_t total = (out - 1) * g->s[i] + ek - g->in[i];
                if (total < 0)
                    total = 0;
                pb = mode == 1 ? total / 2 : total - total / 2;
            }
            g->pb[i] = pb;
            g->out[i] = out;
        }
        if (g->out[i] < 0)
            return nn_fail_node(c, COFFER_E_SHAPE, "negative output size");
    }
    for (int i = nsp; i < SP; i++) { /* unused dimensions */
        g->in[i] = g->k[i] = g->s[i] = g->d[i] = g->out[i] = 1;
        g->pb[i] = 0;
    }
    if (nsp < SP) { /* shift so the used dimensions are the last ones */
        int sh = SP - nsp;
        for (int i = SP - 1; i >= 0; i--) {
            int j = i - sh;
            int64_t *arrs[] = {g->in, g->k, g->s, g->d, g->pb, g->out};
            for (int a = 0; a < 6; a++)
                arrs[a][i] = j >= 0 ? arrs[a][j] : (a == 4 ? 0 : 1);
        }
    }
    return COFFER_OK;
}

static double kvol(const struct nn_geom *g) { return (double)g->k[0] * (double)g->k[1] * (double)g->k[2]; }

static enum coffer_err set_geom_out(struct nn_ctx *c, const struct nn_geom *g)
{
    double out = (double)g->n * (double)g->m * (double)g->out[0] * (double)g->out[1] * (double)g->out[2];
    double in = (double)g->n * (double)g->c * (double)g->in[0] * (double)g->in[1] * (double)g->in[2];
    double per = c->node->op == NN_OP_CONV ? out * (double)(g->c / g->group)
                 : c->node->op == NN_OP_CONVTRANSPOSE ? in * (double)(g->m / g->group) : out;
    enum coffer_err r = nn_set_work(c, per * kvol(g) + out);
    if (r != COFFER_OK)
        return r;
    int64_t dims[2 + SP];
    dims[0] = g->n;
    dims[1] = g->m;
    for (int i = 0; i < g->nsp; i++)
        dims[2 + i] = g->out[SP - g->nsp + i];
    return nn_set_out(c, 0, COFFER_NN_FLOAT, 2 + g->nsp, dims);
}

/* ------------------------------------------------------------------ Conv */

enum coffer_err nn_infer_conv(struct nn_ctx *c)
{
    enum coffer_err r;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = nn_want_dtype(c, 1, NN_F)))
        return r;
    if (c->n_in > 2 && c->in[2] && (r = nn_want_dtype(c, 2, NN_F)))
        return r;
    struct nn_geom g;
    if ((r = nn_geom_get(c, 0, &g)) != COFFER_OK)
        return r;
    return set_geom_out(c, &g);
}

void nn_run_conv(struct nn_ctx *c)
{
    struct nn_geom g;
    if (nn_geom_get(c, 0, &g) != COFFER_OK)
        return;
    const float *x = c->in[0]->data, *w = c->in[1]->data;
    const float *b = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
    float *y = c->out[0]->data;
    int64_t cg = g.c / g.group, mg = g.m / g.group;
    int64_t isz = g.in[0] * g.in[1] * g.in[2], osz = g.out[0] * g.out[1] * g.out[2];
    int64_t ksz = g.k[0] * g.k[1] * g.k[2];
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t m = 0; m < g.m; m++) {
            float *yo = y + (n * g.m + m) * osz;
            float bias = b ? b[m] : 0.0f;
            for (int64_t o = 0; o < osz; o++)
                yo[o] = bias;
            int64_t grp = m / mg;
            for (int64_t ci = 0; ci < cg; ci++) {
                const float *xi = x + (n * g.c + grp * cg + ci) * isz;
                const float *wk = w + (m * cg + ci) * ksz;
                for (int64_t kz = 0; kz < g.k[0]; kz++)
                    for (int64_t ky = 0; ky < g.k[1]; ky++)
                        for (int64_t kx = 0; kx < g.k[2]; kx++) {
                            float wv = wk[(kz * g.k[1] + ky) * g.k[2] + kx];
                            for (int64_t oz = 0; oz < g.out[0]; oz++) {
                                int64_t iz = oz * g.s[0] - g.pb[0] + kz * g.d[0];
                                if (iz < 0 || iz >= g.in[0])
                                    continue;
                                for (int64_t oy = 0; oy < g.out[1]; oy++) {
                                    int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
                                    if (iy < 0 || iy >= g.in[1])
                                        continue;
                                    const float *xr = xi + (iz * g.in[1] + iy) * g.in[2];
                                    float *yr = yo + (oz * g.out[1] + oy) * g.out[2];
                                    for (int64_t ox = 0; ox < g.out[2]; ox++) {
                                        int64_t ix = ox * g.s[2] - g.pb[2] + kx * g.d[2];
                                        if (ix >= 0 && ix < g.in[2])
                                            yr[ox] += wv * xr[ix];
                                    }
                                }
                            }
                        }
            }
        }
}

/* --------------------------------------------------------- ConvTranspose */

enum coffer_err nn_infer_convtranspose(struct nn_ctx *c)
{
    enum coffer_err r;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = nn_want_dtype(c, 1, NN_F)))
        return r;
    if (c->n_in > 2 && c->in[2] && (r = nn_want_dtype(c, 2, NN_F)))
        return r;
    struct nn_geom g;
    if ((r = nn_geom_get(c, 2, &g)) != COFFER_OK)
        return r;
    return set_geom_out(c, &g);
}

void nn_run_convtranspose(struct nn_ctx *c)
{
    struct nn_geom g;
    if (nn_geom_get(c, 2, &g) != COFFER_OK)
        return;
    const float *x = c->in[0]->data, *w = c->in[1]->data;
    const float *b = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
    float *y = c->out[0]->data;
    int64_t cg = g.c / g.group, mg = g.m / g.group;
    int64_t isz = g.in[0] * g.in[1] * g.in[2], osz = g.out[0] * g.out[1] * g.out[2];
    int64_t ksz = g.k[0] * g.k[1] * g.k[2];
    for (int64_t n = 0; n < g.n; n++) {
        for (int64_t m = 0; m < g.m; m++)
            for (int64_t o = 0; o < osz; o++)
                y[(n * g.m + m) * osz + o] = b ? b[m] : 0.0f;
        for (int64_t ci = 0; ci < g.c; ci++) {
            int64_t grp = ci / cg;
            const float *xi = x + (n * g.c + ci) * isz;
            for (int64_t ml = 0; ml < mg; ml++) {
                int64_t m = grp * mg + ml;
                float *yo = y + (n * g.m + m) * osz;
                const float *wk = w + (ci * mg + ml) * ksz;
                for (int64_t iz = 0; iz < g.in[0]; iz++)
                    for (int64_t iy = 0; iy < g.in[1]; iy++)
                        for (int64_t ix = 0; ix < g.in[2]; ix++) {
                            float xv = xi[(iz * g.in[1] + iy) * g.in[2] + ix];
                            for (int64_t kz = 0; kz < g.k[0]; kz++) {
                                int64_t oz = iz * g.s[0] - g.pb[0] + kz * g.d[0];
                                if (oz < 0 || oz >= g.out[0])
                                    continue;
                                for (int64_t ky = 0; ky < g.k[1]; ky++) {
                                    int64_t oy = iy * g.s[1] - g.pb[1] + ky * g.d[1];
                                    if (oy < 0 || oy >= g.out[1])
                                        continue;
                                    for (int64_t kx = 0; kx < g.k[2]; kx++) {
                                        int64_t ox = ix * g.s[2] - g.pb[2] + kx * g.d[2];
                                        if (ox < 0 || ox >= g.out[2])
                                            continue;
                                        yo[(oz * g.out[1] + oy) * g.out[2] + ox] +=
                                            xv * wk[(kz * g.k[1] + ky) * g.k[2] + kx];
                                    }
                                }
                            }
                        }
            }
        }
    }
}

/* ----------------------------------------------------------------- pools */

enum coffer_err nn_infer_pool(struct nn_ctx *c)
{
    enum coffer_err r;
    if ((r = nn_want_dtype(c, 0, NN_F)) != COFFER_OK)
        return r;
    if (c->n_out > 1 && c->out[1] != NULL)
        return nn_fail_node(c, COFFER_E_UNSUPPORTED, "the Indices output of MaxPool is not supported");
    struct nn_geom g;
    if ((r = nn_geom_get(c, 1, &g)) != COFFER_OK)
        return r;
    return set_geom_out(c, &g);
}

void nn_run_pool(struct nn_ctx *c)
{
    struct nn_geom g;
    if (nn_geom_get(c, 1, &g) != COFFER_OK)
        return;
    bool is_max = c->node->op == NN_OP_MAXPOOL;
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    int64_t isz = g.in[0] * g.in[1] * g.in[2], osz = g.out[0] * g.out[1] * g.out[2];
    for (int64_t nc = 0; nc < g.n * g.c; nc++) {
        const float *xi = x + nc * isz;
        float *yo = y + nc * osz;
        for (int64_t oz = 0; oz < g.out[0]; oz++)
            for (int64_t oy = 0; oy < g.out[1]; oy++)
                for (int64_t ox = 0; ox < g.out[2]; ox++) {
                    float acc = is_max ? -INFINITY : 0.0f;
                    int64_t cnt = 0, cnt_pad = 0;
                    for (int64_t kz = 0; kz < g.k[0]; kz++) {
                        int64_t iz = oz * g.s[0] - g.pb[0] + kz * g.d[0];
                        for (int64_t ky = 0; ky < g.k[1]; ky++) {
                            int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
                            for (int64_t kx = 0; kx < g.k[2]; kx++) {
                                int64_t ix = ox * g.s[2] - g.pb[2] + kx * g.d[2];
                                bool inside = iz >= 0 && iz < g.in[0] && iy >= 0 && iy < g.in[1] && ix >= 0 &&
                                              ix < g.in[2];
                                cnt_pad++; /* count_include_pad: every window position */
                                if (!inside)
                                    continue;
                                float v = xi[(iz * g.in[1] + iy) * g.in[2] + ix];
                                if (is_max)
                                    acc = v > acc || isnan(v) ? v : acc;
                                else
                                    acc += v;
                                cnt++;
                            }
                        }
                    }
                    if (!is_max)
                        acc = g.include_pad ? acc / (float)cnt_pad : (cnt ? acc / (float)cnt : 0.0f);
                    yo[(oz * g.out[1] + oy) * g.out[2] + ox] = acc;
                }
    }
}

enum coffer_err nn_infer_gpool(struct nn_ctx *c)
{
    enum coffer_err r;
    if ((r = nn_want_dtype(c, 0, NN_F)) != COFFER_OK)
        return r;
    if (c->in[0]->rank < 2)
        return nn_fail_node(c, COFFER_E_SHAPE, "input rank %d, at least 2", c->in[0]->rank);
    int64_t dims[COFFER_NN_MAX_RANK];
    for (int i = 0; i < c->in[0]->rank; i++)
        dims[i] = i < 2 ? c->in[0]->dims[i] : 1;
    return nn_set_out(c, 0, COFFER_NN_FLOAT, c->in[0]->rank, dims);
}

void nn_run_gpool(struct nn_ctx *c)
{
    const struct nn_val *xv = c->in[0];
    size_t nc = (size_t)(xv->dims[0] * xv->dims[1]);
    size_t sp = nc ? xv->count / nc : 0;
    const float *x = xv->data;
    float *y = c->out[0]->data;
    bool is_max = c->node->op == NN_OP_GLOBALMAXPOOL;
    for (size_t i = 0; i < nc; i++) {
        float acc = is_max ? -INFINITY : 0.0f;
        for (size_t j = 0; j < sp; j++) {
            float v = x[i * sp + j];
            if (is_max)
                acc = v > acc ? v : acc;
            else
                acc += v;
        }
        y[i] = is_max ? acc : acc / (float)sp;
    }
}

/* ------------------------------------------------------------------- LRN */

enum coffer_err nn_infer_lrn(struct nn_ctx *c)
{
    enum coffer_err r;
    int64_t size;
    float f;
    if ((r = nn_want_dtype(c, 0, NN_F)) || (r = nn_attr_int(c->node, "size", -1, &size)) ||
        (r = nn_attr_float(c->node, "alpha", 0, &f)) || (r = nn_attr_float(c->node, "beta", 0, &f)) ||
        (r = nn_attr_float(c->node, "bias", 0, &f)))
        return r;
    if (size < 1 || size > 1 << 20)
        return nn_fail_node(c, COFFER_E_MALFORMED, "size %lld", (long long)size);
    if (c->in[0]->rank < 3)
        return nn_fail_node(c, COFFER_E_SHAPE, "input rank %d, at least 3", c->in[0]->rank);
    if ((r = nn_set_work(c, (double)c->in[0]->count * (double)size)) != COFFER_OK)
        return r;
    return nn_set_out(c, 0, COFFER_NN_FLOAT, c->in[0]->rank, c->in[0]->dims);
}

void nn_run_lrn(struct nn_ctx *c)
{
    int64_t size = 1;
    float alpha = 1e-4f, beta = 0.75f, bias = 1.0f;
    size = nn_ai(c->node, "size", 1);
    alpha = nn_af(c->node, "alpha", 1e-4f);
    beta = nn_af(c->node, "beta", 0.75f);
    bias = nn_af(c->node, "bias", 1.0f);
    const struct nn_val *xv = c->in[0];
    int64_t n = xv->dims[0], ch = xv->dims[1];
    int64_t sp = (n != 0 && ch != 0) ? (int64_t)xv->count / (n * ch) : 0;
    const float *x = xv->data;
    float *y = c->out[0]->data;
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < ch; k++)
            for (int64_t s = 0; s < sp; s++) {
                float sum = 0;
                for (int64_t q = k - lo; q <= k + hi; q++)
                    if (q >= 0 && q < ch) {
                        float v = x[(b * ch + q) * sp + s];
                        sum += v * v;
                    }
                int64_t i = (b * ch + k) * sp + s;
                y[i] = x[i] / powf(bias + alpha / (float)size * sum, beta);
            }
}
