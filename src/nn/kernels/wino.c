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
 *   tiles    numbered across the images of a batch, so that one pass over
 *            U (4x the size of the weights: at batch 1 already more than
 *            the products cost, for layers with few tiles) serves a block
 *            of tiles from several images;
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

#include <math.h>
#include <string.h>

#define L 8 /* lanes of the transform loops (>= every ISA's MR) */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* V and P of one tile block: within L2 while U is small enough to stay in
 * the cache too (every block reads all of U). With a bigger U each block
 * means one more pass over it from memory, so blocks are bigger: each of
 * the 36 products works on its own slice of V and P (beside one matrix of
 * U), which is what must stay in L2. */
#define BLOCK_BYTES (768 << 10)
#define BLOCK_BYTES_BIG_U (3 << 20)
#define BIG_U (1 << 20)

void nn_wino_geom(const struct nn_isa *isa, int threads, struct nn_wino *w)
{
    int mr = isa->mr, nr = isa->nr;
    w->oth = ceil_div(w->oh, 4);
    w->otw = ceil_div(w->ow, 4);
    w->tpi = w->oth * w->otw;
    w->t = w->tpi * (w->n > 0 ? w->n : 1);
    w->su = (int64_t)(nn_pack_b_size(isa, w->c, w->m) / sizeof(float));
    int64_t mp = ceil_div(w->m, nr) * nr;
    /* tiles per block: a multiple of MR with 36 * tb * (C + M) floats in BLOCK_BYTES */
    int64_t block = 36 * w->su * (int64_t)sizeof(float) > BIG_U ? BLOCK_BYTES_BIG_U : BLOCK_BYTES;
    int64_t tb = block / (int64_t)(36 * sizeof(float)) / (w->c + mp) / mr * mr;
    if (tb < mr)
        tb = mr;
    if (tb > ceil_div(w->t, mr) * mr)
        tb = ceil_div(w->t, mr) * mr;
    w->tb = tb;
    w->tblocks = ceil_div(w->t, tb);
    /* few tile blocks (small maps): split the output channels too */
    int64_t want = threads > 1 ? 2 * (int64_t)threads : 1, mpanels = mp / nr;
    int64_t mblocks = w->tblocks >= want ? 1 : ceil_div(want, w->tblocks);
    if (mblocks > mpanels)
        mblocks = mpanels;
    w->mb = ceil_div(mpanels, mblocks) * nr;
    w->mblocks = ceil_div(mp, w->mb);
    w->sv = tb * w->c;
}

size_t nn_wino_weights_size(const struct nn_isa *isa, int64_t c, int64_t m)
{
    return 36 * nn_pack_b_size(isa, c, m);
}

size_t nn_wino_scratch(const struct nn_wino *w)
{
    return (size_t)(36 * (w->sv + w->tb * w->mb)) * sizeof(float);
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
        float z0 = in[0 * (si) + l], z1 = in[1 * (si) + l], z2 = in[2 * (si) + l];                                \
        float z3 = in[3 * (si) + l], z4 = in[4 * (si) + l], z5 = in[5 * (si) + l];                                \
        float s12 = z1 + z2, d12 = z1 - z2, s34 = z3 + z4, d34 = z3 - z4;                                         \
        out[0 * (so) + l] = z0 + s12 + s34;                                                                        \
        out[1 * (so) + l] = d12 + 2.0f * d34;                                                                      \
        out[2 * (so) + l] = s12 + 4.0f * s34;                                                                      \
        out[3 * (so) + l] = d12 + 8.0f * d34 + z5;                                                                 \
    }

struct wrun {
    const struct nn_isa *isa;
    const struct nn_wino *w;
    const float *u, *x, *bias, *res;
    float *y;
    char *scratch;
    size_t per;
    struct nn_epi e;
};

/* Input transform of tiles [tile0, tile0 + tb) into v: A panels of MR
 * tiles over all channels, zero past the last tile. */
static void in_block(const struct wrun *r, int64_t tile0, float *v)
{
    const struct nn_wino *w = r->w;
    int mr = r->isa->mr;
    float d[36 * L], u[36 * L];
    int64_t isp = w->ih * w->iw;
    for (int64_t ch = 0; ch < w->c; ch++) {
        for (int64_t t0 = tile0; t0 < tile0 + w->tb; t0 += mr) {
            if (t0 + mr > w->t)
                memset(d, 0, sizeof(d));
            for (int l = 0; l < mr && t0 + l < w->t; l++) {
                int64_t img = (t0 + l) / w->tpi, it = (t0 + l) % w->tpi;
                const float *xc = r->x + (img * w->c + ch) * isp;
                int64_t ty = it / w->otw, tx = it % w->otw;
                int64_t iy0 = ty * 4 - w->pt, ix0 = tx * 4 - w->pl;
                if (iy0 >= 0 && ix0 >= 0 && iy0 + 6 <= w->ih && ix0 + 6 <= w->iw) { /* inside: no checks */
                    const float *row = xc + iy0 * w->iw + ix0;
                    for (int a = 0; a < 6; a++, row += w->iw)
                        for (int b = 0; b < 6; b++)
                            d[(a * 6 + b) * L + l] = row[b];
                    continue;
                }
                for (int a = 0; a < 6; a++) {
                    int64_t iy = iy0 + a;
                    const float *row = xc + iy * w->iw;
                    for (int b = 0; b < 6; b++) {
                        int64_t ix = ix0 + b;
                        d[(a * 6 + b) * L + l] = iy >= 0 && iy < w->ih && ix >= 0 && ix < w->iw ? row[ix] : 0.0f;
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
            float *dst = v + ((t0 - tile0) / mr) * mr * w->c + ch * mr;
            if (mr == 8) /* fixed sizes: inlined copies */
                for (int xi = 0; xi < 36; xi++)
                    memcpy(dst + xi * w->sv, d + xi * L, 8 * sizeof(float));
            else
                for (int xi = 0; xi < 36; xi++)
                    for (int l = 0; l < mr; l++)
                        dst[xi * w->sv + l] = d[xi * L + l];
        }
    }
}

/* Output transform of tiles [tile0, tile1) and channels [m0, m1) from p
 * (per transform point: tb rows of ldp), 8 output channels at a time. */
static void out_block(const struct wrun *r, int64_t tile0, int64_t tile1, int64_t m0, int64_t m1, const float *p,
                      int64_t ldp)
{
    const struct nn_wino *w = r->w;
    int64_t osp = w->oh * w->ow, tm = w->tb * ldp;
    const struct nn_epi *e = &r->e;
    float q[36 * L], h[24 * L], o[16 * L];
    /* the activation as a clamp: Relu [0, inf), none (-inf, inf) */
    float lo = e->act == NN_ACT_NONE ? -INFINITY : e->act == NN_ACT_RELU ? 0.0f : e->lo;
    float hi = e->act == NN_ACT_CLIP ? e->hi : INFINITY;
    for (int64_t tile = tile0; tile < tile1; tile++) {
        int64_t img = tile / w->tpi, it = tile % w->tpi;
        int64_t ty = it / w->otw, tx = it % w->otw;
        int64_t ioff = img * w->m * osp;
        int rows = (int)(w->oh - ty * 4 < 4 ? w->oh - ty * 4 : 4), cols = (int)(w->ow - tx * 4 < 4 ? w->ow - tx * 4 : 4);
        const float *src = p + (tile - tile0) * ldp - m0;
        for (int64_t j0 = m0; j0 < m1; j0 += L) {
            int n = (int)(m1 - j0 < L ? m1 - j0 : L);
            if (n == L) {
                for (int xi = 0; xi < 36; xi++)
                    memcpy(q + xi * L, src + xi * tm + j0, L * sizeof(float));
            } else {
                memset(q, 0, sizeof(q));
                for (int xi = 0; xi < 36; xi++)
                    memcpy(q + xi * L, src + xi * tm + j0, (size_t)n * sizeof(float));
            }
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
                float *yj = r->y + ioff + j * osp + ty * 4 * w->ow + tx * 4;
                const float *rj = r->res ? r->res + ioff + j * osp + ty * 4 * w->ow + tx * 4 : NULL;
                for (int a = 0; a < rows; a++)
                    for (int b = 0; b < cols; b++) {
                        float v = o[(a * 4 + b) * L + l] + bias;
                        if (rj)
                            v += rj[a * w->ow + b];
                        yj[a * w->ow + b] = v < lo ? lo : v > hi ? hi : v;
                    }
            }
        }
    }
}

/* One block of tiles and output channels: transform in, 36 products, transform out. */
static void block_task(void *arg, int64_t t, int tid)
{
    const struct wrun *r = arg;
    const struct nn_wino *w = r->w;
    const struct nn_isa *isa = r->isa;
    int mr = isa->mr, nr = isa->nr;
    int64_t tile0 = (t / w->mblocks) * w->tb, tile1 = tile0 + w->tb < w->t ? tile0 + w->tb : w->t;
    int64_t m0 = (t % w->mblocks) * w->mb, m1 = m0 + w->mb < w->m ? m0 + w->mb : w->m;
    float *v = (float *)(r->scratch + (size_t)tid * r->per), *p = v + 36 * w->sv;
    in_block(r, tile0, v);
    struct nn_epi none = {0};
    int64_t ldp = w->mb, rows = ceil_div(tile1 - tile0, mr) * mr;
    for (int xi = 0; xi < 36; xi++) {
        const float *a = v + xi * w->sv, *b = r->u + xi * w->su + m0 * w->c;
        float *c = p + xi * w->tb * ldp;
        /* whole MR-row tiles, columns rounded up to whole vectors: P has
         * room, U is zero past M */
        for (int64_t i = 0; i < rows; i += mr)
            for (int64_t j = 0; j < m1 - m0; j += nr) {
                int64_t nv = m1 - m0 - j < nr ? ceil_div(m1 - m0 - j, isa->vl) * isa->vl : nr;
                isa->ukr(w->c, a + i * w->c, b + j * w->c, nr, c + i * ldp + j, ldp, mr, (int)nv, NN_UKR_LAST,
                         &none);
            }
    }
    out_block(r, tile0, tile1, m0, m1, p, ldp);
}

void nn_wino_run(const struct nn_isa *isa, struct nn_pool *pool, int threads, const struct nn_wino *w,
                 const float *u, const float *x, float *y, const float *bias, const float *res, const struct nn_epi *e,
                 void *scratch, size_t per_thread)
{
    struct wrun r = {.isa = isa, .w = w, .u = u, .x = x, .bias = bias, .res = res, .y = y,
                     .scratch = scratch, .per = per_thread, .e = *e};
    nn_pool_run(pool, threads, w->tblocks * w->mblocks, block_task, &r);
}
