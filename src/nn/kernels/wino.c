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
 * for the output), compiled per ISA (wino_run.h, included by each ISA's
 * file, so they become that ISA's vector code); the weight transform runs
 * once in double, here.
 *
 * Invariants: I1 the A panels are zero for tiles T..ceil(T/MR)*MR-1 and the
 * B panels zero past M (the driver's I1); I2 a task writes only its own
 * channels of V (input) or its own tiles of y (output).
 *
 * Also here: F(2x2, 3x3)'s G and weight transform (nn_wino_u_lanes), which the
 * blocked layout's Winograd (kernels/fast.c) uses where F(4x4)'s
 * transformed weights would be streamed for few tiles.
 *
 * Trusts: kernels/fast.c for the geometry (3x3, stride 1, dilation 1, pads
 * that give oh = ih + pt + pb - 2) and for scratch of nn_wino_scratch bytes.
 */
#include "kern.h"

#include <math.h>
#include <string.h>

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min_tb(int64_t a, int64_t b) { return a < b ? a : b; }

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
    bool big_u = 36 * w->su * (int64_t)sizeof(float) > BIG_U;
    int64_t tb = (big_u ? BLOCK_BYTES_BIG_U : BLOCK_BYTES) / (int64_t)(36 * sizeof(float)) / (w->c + mp) / mr * mr;
    int64_t want = threads > 1 ? 2 * (int64_t)threads : 1, mpanels = mp / nr;
    /* share-out over the threads: with U in the cache, blocks small enough
     * for about four per thread (each block transforms its own tiles, so
     * this costs nothing twice); with a big U, whose every block is one
     * more pass over it, only when the channels cannot be split enough
     * (at batch 1 a 28x28 map is one block of 49 tiles and 128 channels
     * three panels: three tasks for two threads) */
    if (threads > 1 && !big_u)
        tb = min_tb(tb, ceil_div(ceil_div(w->t, 4 * (int64_t)threads), mr) * mr);
    else if (threads > 1 && mpanels < want)
        tb = min_tb(tb, ceil_div(ceil_div(w->t, threads), mr) * mr);
    if (tb < mr)
        tb = mr;
    if (tb > ceil_div(w->t, mr) * mr)
        tb = ceil_div(w->t, mr) * mr;
    w->tb = tb;
    w->tblocks = ceil_div(w->t, tb);
    /* few tile blocks (small maps): split the output channels too */
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

const double nn_wino_g[6][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
};

/* F(2x2, 3x3), points 0, +-1 */
const double nn_wino_g2[4][3] = {
    {1, 0, 0},
    {0.5, 0.5, 0.5},
    {0.5, -0.5, 0.5},
    {0, 0, 1},
};

/* F(5x5, 3x3), points 0, 1, -1, 2, -2, 1/2 and infinity (Toom-Cook: row j
 * p_j^k / prod_{l != j} (p_j - p_l), the last row picks the top tap),
 * each row divided by the factor that makes the same row of B^T integer
 * (tmpl.h, bt7v): 2 for every row but the sixth (1/2's) */
const double nn_wino_g5[7][3] = {
    {-1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {1.0 / 18, -1.0 / 18, 1.0 / 18},
    {1.0 / 72, 1.0 / 36, 1.0 / 18},
    {-1.0 / 120, 1.0 / 60, -1.0 / 30},
    {32.0 / 45, 16.0 / 45, 8.0 / 45},
    {0, 0, 1.0 / 2},
};

/* Stride-2 3x3 in 2x2 output tiles: the outputs y0 = w0 d0 + w1 d1 +
 * w2 d2 and y1 = w0 d2 + w1 d3 + w2 d4 of a 5-sample patch as the
 * products z0 = (d0 - d2) w0, z1 = d2 (w0 + w2), z2 = (d4 - d2) w2 (F(2,
 * 2) over the odd samples d0, d2, d4 with the outer taps), z3 = d1 w1
 * and z4 = d3 w1 (the even ones with the middle tap): y0 = z0 + z1 + z3,
 * y1 = z1 + z2 + z4 (tmpl.h, bt5sv and bwin_out_s2). 25 products a 2x2
 * tile in 2-D where the direct convolution takes 36; its G's fifth row
 * is its fourth, so only these four are stored. */
const double nn_wino_gs2[4][3] = {
    {1, 0, 0},
    {1, 0, 1},
    {0, 0, 1},
    {0, 1, 0},
};

/* U = G g G^T (G with n rows: n points a side), in double, for up to 16
 * output channels at once (lanes l < nl: kernel g + l * gs, times
 * scale[l], or 1 without scale; point xi of lane l at u[xi * stride +
 * l]), on lanes the compiler vectorises, each point's lanes written as one
 * line. (One kernel at a time, writing its 36 points to 36 matrices, took
 * ~60 ms of CPU in resnet50's load.) */
#define U_LANES 16
static void wino_u_lanes(const double (*G)[3], int n, const float *g, int64_t gs, int nl, const float *scale,
                         float *u, int64_t stride)
{
    double w[9][U_LANES], s[U_LANES], t[7][3][U_LANES];
    float o[U_LANES];
    for (int l = 0; l < U_LANES; l++) {
        for (int q = 0; q < 9; q++)
            w[q][l] = l < nl ? g[l * gs + q] : 0.0;
        s[l] = scale && l < nl ? scale[l] : 1.0;
    }
    for (int a = 0; a < n; a++)
        for (int b = 0; b < 3; b++)
            for (int l = 0; l < U_LANES; l++)
                t[a][b][l] = G[a][0] * w[b][l] + G[a][1] * w[3 + b][l] + G[a][2] * w[6 + b][l];
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            for (int l = 0; l < U_LANES; l++)
                o[l] = (float)(s[l] * (t[a][0][l] * G[b][0] + t[a][1][l] * G[b][1] + t[a][2][l] * G[b][2]));
            memcpy(u + (a * n + b) * stride, o, (size_t)nl * sizeof(float));
        }
}

void nn_wino_u_lanes(int wm, const float *g, int64_t gs, int nl, const float *scale, float *u, int64_t stride)
{
    if (wm == 2)
        wino_u_lanes(nn_wino_g2, 4, g, gs, nl, scale, u, stride);
    else if (wm == NN_WINO_S2)
        wino_u_lanes(nn_wino_gs2, 4, g, gs, nl, scale, u, stride);
    else if (wm == 5)
        wino_u_lanes(nn_wino_g5, 7, g, gs, nl, scale, u, stride);
    else
        wino_u_lanes(nn_wino_g, 6, g, gs, nl, scale, u, stride);
}

void nn_wino_pack(const struct nn_isa *isa, const struct nn_wino *w, const float *g, const float *scale, float *dst)
{
    int nr = isa->nr;
    int64_t c = w->c, m = w->m;
    memset(dst, 0, (size_t)(36 * w->su) * sizeof(float));
    /* B panel element (k, j) of matrix xi, in runs of channels within a panel */
    for (int64_t j = 0; j < m;) {
        int64_t end = (j / nr + 1) * nr < m ? (j / nr + 1) * nr : m;
        int nl = end - j < 16 ? (int)(end - j) : 16;
        for (int64_t k = 0; k < c; k++)
            nn_wino_u_lanes(4, g + (j * c + k) * 9, c * 9, nl, scale ? scale + j : NULL,
                            dst + (j / nr) * nr * c + k * nr + j % nr, w->su);
        j += nl;
    }
}

void nn_wino_run(const struct nn_isa *isa, struct nn_pool *pool, int threads, const struct nn_wino *w,
                 const float *u, const float *x, float *y, const float *bias, const float *res, const struct nn_epi *e,
                 void *scratch, size_t per_thread)
{
    struct nn_wrun r = {.w = w, .u = u, .x = x, .bias = bias, .res = res, .y = y,
                        .scratch = scratch, .per = per_thread, .e = *e};
    nn_pool_run(pool, threads, w->tblocks * w->mblocks, isa->wino_task, &r);
}
