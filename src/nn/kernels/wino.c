/*
 * wino.c — Winograd F(4x4, 3x3) for 3x3, stride-1, dilation-1, ungrouped
 * 2-D convolutions: 36 multiplications per 4x4 output tile and channel
 * pair instead of 144.
 *
 * Design (Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2016; points 0, +-1, +-2): per image, the output is cut into
 * T = ceil(oh/4) * ceil(ow/4) tiles, each read from a 6x6 input patch.
 *
 *   weights  U[xi] = (G g G^T)[xi]      [C x M] per xi in 0..35, packed at
 *            plan time as the SGEMM's B panels (NR columns);
 *   input    V[xi] = (B^T d B)[xi]      [T x C] per xi, written straight
 *            into the SGEMM's A panels (MR tiles), zero past T;
 *   product  P[xi] = V[xi] * U[xi]      [T x M], 36 GEMMs in one batched
 *            call of the shared driver (nothing left to pack);
 *   output   y = A^T P A per tile and output channel, then bias, residual
 *            and activation (the fused epilogue), rows and columns past
 *            the output edge dropped.
 *
 * Putting tiles on the GEMM's rows (MR = 6 or 8) rather than its columns
 * (NR = 16..48) keeps small maps efficient: a 7x7 map has 4 tiles.
 * Transforms run in float on 8 lanes (tiles for the input, output channels
 * for the output); the weight transform runs once in double.
 *
 * Invariants: I1 the A panels are zero for tiles T..ceil(T/MR)*MR-1 and the
 * B panels zero past M (the driver's I1); I2 a task writes only its own
 * channels of V (input) or its own tiles of y (output).
 *
 * Trusts: kernels/fast.c for the geometry (3x3, stride 1, dilation 1, pads
 * that give oh = ih + pt + pb - 2) and for scratch of nn_wino_scratch bytes.
 */
#include "kern.h"

#include <string.h>

#define L 8 /* lanes of the transform loops (>= every ISA's MR) */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void nn_wino_geom(const struct nn_isa *isa, struct nn_wino *w)
{
    w->oth = ceil_div(w->oh, 4);
    w->otw = ceil_div(w->ow, 4);
    w->t = w->oth * w->otw;
    w->tp = ceil_div(w->t, isa->mr) * isa->mr;
    w->su = (int64_t)(nn_pack_b_size(isa, w->c, w->m) / sizeof(float));
    w->sv = w->tp * w->c;
}

size_t nn_wino_weights_size(const struct nn_isa *isa, int64_t c, int64_t m)
{
    return 36 * nn_pack_b_size(isa, c, m);
}

size_t nn_wino_scratch(const struct nn_wino *w)
{
    return (size_t)(36 * (w->sv + w->t * w->m)) * sizeof(float);
}

void nn_wino_pack(const struct nn_isa *isa, const struct nn_wino *w, const float *g, const float *scale, float *dst)
{
    int nr = isa->nr;
    int64_t c = w->c, m = w->m;
    memset(dst, 0, (size_t)(36 * w->su) * sizeof(float));
    static const double G[6][3] = {
        {1.0 / 4, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6},
        {0, 0, 1},
    };
    for (int64_t j = 0; j < m; j++) {
        double s = scale ? scale[j] : 1.0;
        for (int64_t k = 0; k < c; k++) {
            const float *gk = g + (j * c + k) * 9;
            double t[6][3];
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 3; b++)
                    t[a][b] = G[a][0] * gk[b] + G[a][1] * gk[3 + b] + G[a][2] * gk[6 + b];
            /* B panel element (k, j) of matrix xi */
            float *p = dst + (j / nr) * nr * c + k * nr + j % nr;
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++)
                    p[(a * 6 + b) * w->su] = (float)(s * (t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2]));
        }
    }
}

/* ------------------------------------------------------------ transforms */

/* B^T applied to six rows of lanes: out[i] = sum_j B^T[i][j] in[j]. */
#define BT6(in, out, s)                                                                                            \
    for (int l = 0; l < L; l++) {                                                                                  \
        float d0 = in[0 * (s) + l], d1 = in[1 * (s) + l], d2 = in[2 * (s) + l];                                   \
        float d3 = in[3 * (s) + l], d4 = in[4 * (s) + l], d5 = in[5 * (s) + l];                                   \
        out[0 * (s) + l] = 4.0f * d0 - 5.0f * d2 + d4;                                                             \
        out[1 * (s) + l] = -4.0f * (d1 + d2) + d3 + d4;                                                            \
        out[2 * (s) + l] = 4.0f * (d1 - d2) - d3 + d4;                                                             \
        out[3 * (s) + l] = 2.0f * (d3 - d1) - d2 + d4;                                                             \
        out[4 * (s) + l] = 2.0f * (d1 - d3) - d2 + d4;                                                             \
        out[5 * (s) + l] = 4.0f * d1 - 5.0f * d3 + d5;                                                             \
    }

/* A^T applied to six rows of lanes: four outputs. */
#define AT6(in, out, si, so)                                                                                       \
    for (int l = 0; l < L; l++) {                                                                                  \
        float m0 = in[0 * (si) + l], m1 = in[1 * (si) + l], m2 = in[2 * (si) + l];                                \
        float m3 = in[3 * (si) + l], m4 = in[4 * (si) + l], m5 = in[5 * (si) + l];                                \
        float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;                                         \
        out[0 * (so) + l] = m0 + s12 + s34;                                                                        \
        out[1 * (so) + l] = d12 + 2.0f * d34;                                                                      \
        out[2 * (so) + l] = s12 + 4.0f * s34;                                                                      \
        out[3 * (so) + l] = d12 + 8.0f * d34 + m5;                                                                 \
    }

struct wrun {
    const struct nn_isa *isa;
    const struct nn_wino *w;
    const float *x, *bias, *res;
    float *y, *v, *p;
    struct nn_epi e;
    int64_t chunk; /* channels (input) or tiles (output) per task */
};

/* Input transform of channels [c0, c0 + chunk): every MR-tile panel. */
static void in_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct wrun *r = arg;
    const struct nn_wino *w = r->w;
    int mr = r->isa->mr;
    int64_t c0 = t * r->chunk, c1 = c0 + r->chunk < w->c ? c0 + r->chunk : w->c;
    float d[36 * L], u[36 * L];
    for (int64_t ch = c0; ch < c1; ch++) {
        const float *xc = r->x + ch * w->ih * w->iw;
        for (int64_t t0 = 0; t0 < w->tp; t0 += mr) {
            memset(d, 0, sizeof(d));
            for (int l = 0; l < mr && t0 + l < w->t; l++) {
                int64_t ty = (t0 + l) / w->otw, tx = (t0 + l) % w->otw;
                int64_t iy0 = ty * 4 - w->pt, ix0 = tx * 4 - w->pl;
                for (int a = 0; a < 6; a++) {
                    int64_t iy = iy0 + a;
                    if (iy < 0 || iy >= w->ih)
                        continue;
                    const float *row = xc + iy * w->iw;
                    for (int b = 0; b < 6; b++) {
                        int64_t ix = ix0 + b;
                        if (ix >= 0 && ix < w->iw)
                            d[(a * 6 + b) * L + l] = row[ix];
                    }
                }
            }
            /* columns of each row (stride L), then rows (stride 6 L) */
            for (int a = 0; a < 6; a++) {
                const float *in = d + a * 6 * L;
                float *out = u + a * 6 * L;
                BT6(in, out, L)
            }
            for (int b = 0; b < 6; b++) {
                const float *in = u + b * L;
                float *out = d + b * L;
                BT6(in, out, 6 * L)
            }
            float *dst = r->v + (t0 / mr) * mr * w->c + ch * mr;
            for (int xi = 0; xi < 36; xi++)
                memcpy(dst + xi * w->sv, d + xi * L, (size_t)mr * sizeof(float));
        }
    }
}

/* Output transform of tiles [t0, t0 + chunk): 8 output channels at a time. */
static void out_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct wrun *r = arg;
    const struct nn_wino *w = r->w;
    int64_t tile0 = t * r->chunk, tile1 = tile0 + r->chunk < w->t ? tile0 + r->chunk : w->t;
    int64_t osp = w->oh * w->ow, tm = w->t * w->m;
    const struct nn_epi *e = &r->e;
    float q[36 * L], h[24 * L], o[16 * L];
    for (int64_t tile = tile0; tile < tile1; tile++) {
        int64_t ty = tile / w->otw, tx = tile % w->otw;
        int rows = (int)(w->oh - ty * 4 < 4 ? w->oh - ty * 4 : 4), cols = (int)(w->ow - tx * 4 < 4 ? w->ow - tx * 4 : 4);
        const float *src = r->p + tile * w->m;
        for (int64_t j0 = 0; j0 < w->m; j0 += L) {
            int n = (int)(w->m - j0 < L ? w->m - j0 : L);
            if (n < L)
                memset(q, 0, sizeof(q));
            for (int xi = 0; xi < 36; xi++)
                memcpy(q + xi * L, src + xi * tm + j0, (size_t)n * sizeof(float));
            /* rows a of the 6x6: A^T over columns -> h[a][4]; then over rows -> o[4][4] */
            for (int a = 0; a < 6; a++) {
                const float *in = q + a * 6 * L;
                float *out = h + a * 4 * L;
                AT6(in, out, L, L)
            }
            for (int b = 0; b < 4; b++) {
                const float *in = h + b * L;
                float *out = o + b * L;
                AT6(in, out, 4 * L, 4 * L)
            }
            for (int l = 0; l < n; l++) {
                int64_t j = j0 + l;
                float bias = r->bias ? r->bias[j] : 0.0f;
                float *yj = r->y + j * osp + ty * 4 * w->ow + tx * 4;
                const float *rj = r->res ? r->res + j * osp + ty * 4 * w->ow + tx * 4 : NULL;
                for (int a = 0; a < rows; a++)
                    for (int b = 0; b < cols; b++) {
                        float v = o[(a * 4 + b) * L + l] + bias;
                        if (rj)
                            v += rj[a * w->ow + b];
                        if (e->act == NN_ACT_RELU)
                            v = v > 0.0f ? v : 0.0f;
                        else if (e->act == NN_ACT_CLIP)
                            v = v < e->lo ? e->lo : v > e->hi ? e->hi : v;
                        yj[a * w->ow + b] = v;
                    }
            }
        }
    }
}

void nn_wino_run(const struct nn_isa *isa, struct nn_pool *pool, int threads, const struct nn_wino *w,
                 const float *u, const float *x, float *y, const float *bias, const float *res, const struct nn_epi *e,
                 void *scratch)
{
    float *v = scratch, *p = v + 36 * w->sv;
    int64_t want = threads > 1 ? 4 * (int64_t)threads : 1;
    struct wrun r = {.isa = isa, .w = w, .x = x, .bias = bias, .res = res, .y = y, .v = v, .p = p, .e = *e};
    r.chunk = ceil_div(w->c, want);
    nn_pool_run(pool, threads, ceil_div(w->c, r.chunk), in_task, &r);
    struct nn_gemm g = {
        .m = w->t, .n = w->m, .k = w->c, .ap = v, .bp = u, .c = p, .ldc = w->m,
        .nb = {36, 1}, .sa = {w->sv, 0}, .sb = {w->su, 0}, .sc = {w->t * w->m, 0},
    };
    nn_gemm_run(isa, pool, threads, &g, scratch, 0);
    r.chunk = ceil_div(w->t, want);
    nn_pool_run(pool, threads, ceil_div(w->t, r.chunk), out_task, &r);
}
