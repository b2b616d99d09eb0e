/*
 * wino_run.h — the run-time half of Winograd F(4x4, 3x3) (kernels/wino.c
 * has the design, the geometry and the weight transform): the input and
 * output transforms and the 36 products of one block of tiles and output
 * channels, as a pool task. Included by kernels/x86/tmpl.h after its
 * micro-kernel, so each ISA's file compiles these loops with its own
 * flags (the 8-lane loops become single vector operations) and calls its
 * micro-kernel directly.
 *
 * Needs from the includer: MR, NR, VL and ukr().
 */
#include <math.h>

#define L 8 /* lanes of the transform loops (>= every ISA's MR) */

static inline int64_t wceil(int64_t a, int64_t b) { return (a + b - 1) / b; }

typedef float v4 __attribute__((vector_size(16)));

NN_VEC_IO(v4, ld4, st4)

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

NN_VEC_IO(v8f, ld8, st8)

#ifdef __clang__
#define SH2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SH2(a, b, ...) __builtin_shuffle(a, b, (v8i){__VA_ARGS__})
#endif

/* out[b] lane l = p[4 l + b] for b = 0..3, l = 0..7 (reads p[0..31]) */
static inline void deint4(const float *p, v8f out[4])
{
    v8f r0 = ld8(p), r1 = ld8(p + 8), r2 = ld8(p + 16), r3 = ld8(p + 24);
    v8f a01 = SH2(r0, r1, 0, 4, 8, 12, 1, 5, 9, 13), b01 = SH2(r0, r1, 2, 6, 10, 14, 3, 7, 11, 15);
    v8f a23 = SH2(r2, r3, 0, 4, 8, 12, 1, 5, 9, 13), b23 = SH2(r2, r3, 2, 6, 10, 14, 3, 7, 11, 15);
    out[0] = SH2(a01, a23, 0, 1, 2, 3, 8, 9, 10, 11);
    out[1] = SH2(a01, a23, 4, 5, 6, 7, 12, 13, 14, 15);
    out[2] = SH2(b01, b23, 0, 1, 2, 3, 8, 9, 10, 11);
    out[3] = SH2(b01, b23, 4, 5, 6, 7, 12, 13, 14, 15);
}

typedef int32_t v4i __attribute__((vector_size(16)));

/* v < lo ? lo : v > hi ? hi : v, lane-wise (NaN stays NaN) */
static inline v4 clamp4(v4 v, v4 lo, v4 hi)
{
    v4i m = v < lo;
    v = (v4)(((v4i)lo & m) | ((v4i)v & ~m));
    m = v > hi;
    return (v4)(((v4i)hi & m) | ((v4i)v & ~m));
}


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

/* Input transform of tiles [tile0, tile0 + tb) into v: A panels of MR
 * tiles over all channels, zero past the last tile. */
static void in_block(const struct nn_wrun *r, int64_t tile0, float *v)
{
    const struct nn_wino *w = r->w;
    int mr = MR;
    float d[36 * L], u[36 * L];
    int64_t isp = w->ih * w->iw;
    for (int64_t ch = 0; ch < w->c; ch++) {
        for (int64_t t0 = tile0; t0 < tile0 + w->tb; t0 += mr) {
            if (t0 + mr > w->t)
                memset(d, 0, sizeof(d));
            /* the group's tiles side by side in one tile row, all inside
             * the image: each patch row of all eight lanes comes from 36
             * consecutive floats, de-interleaved by 4 */
            int64_t g_it = t0 % w->tpi, g_ty = g_it / w->otw, g_iy = g_ty * 4 - w->pt;
            int64_t g_ix = (g_it % w->otw) * 4 - w->pl;
            if (t0 + mr <= w->t && (g_it + mr - 1) / w->otw == g_ty && g_it + mr - 1 < w->tpi && g_iy >= 0 &&
                g_iy + 6 <= w->ih && g_ix >= 0 && g_ix + 36 <= w->iw) {
                const float *row = r->x + ((t0 / w->tpi) * w->c + ch) * isp + g_iy * w->iw + g_ix;
                for (int a = 0; a < 6; a++, row += w->iw) {
                    v8f c[4], e[4];
                    deint4(row, c);
                    deint4(row + 4, e);
                    for (int b = 0; b < 4; b++)
                        st8(d + (a * 6 + b) * L, c[b]);
                    st8(d + (a * 6 + 4) * L, e[0]);
                    st8(d + (a * 6 + 5) * L, e[1]);
                }
            } else {
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
static void out_block(const struct nn_wrun *r, int64_t tile0, int64_t tile1, int64_t m0, int64_t m1, const float *p,
                      int64_t ldp)
{
    const struct nn_wino *w = r->w;
    int64_t ow = w->ow, osp = w->oh * ow, tm = w->tb * ldp;
    const struct nn_epi *e = &r->e;
    float q[36 * L], h[24 * L], o[16 * L];
    /* the activation as a clamp: Relu [0, inf), none (-inf, inf) */
    float lo = e->act == NN_ACT_NONE ? -INFINITY : e->act == NN_ACT_RELU ? 0.0f : e->lo;
    float hi = e->act == NN_ACT_CLIP ? e->hi : INFINITY;
    v4 vlo = {lo, lo, lo, lo}, vhi = {hi, hi, hi, hi};
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
            /* bias on all lanes at once, then per output channel one row
             * of up to 4 outputs at a time: residual, clamp, store */
            float bl[L] = {0}, ot[L][16];
            if (r->bias)
                memcpy(bl, r->bias + j0, (size_t)n * sizeof(float));
            for (int xy = 0; xy < 16; xy++)
                for (int l = 0; l < L; l++)
                    ot[l][xy] = o[xy * L + l] + bl[l];
            for (int l = 0; l < n; l++) {
                int64_t off = ioff + (j0 + l) * osp + ty * 4 * ow + tx * 4;
                float *yj = r->y + off;
                const float *rj = r->res ? r->res + off : NULL;
                for (int a = 0; a < rows; a++) {
                    v4 v = ld4(ot[l] + a * 4);
                    if (rj) {
                        if (cols == 4) {
                            v += ld4(rj + a * ow);
                        } else {
                            for (int b = 0; b < cols; b++)
                                v[b] += rj[a * ow + b];
                        }
                    }
                    v = clamp4(v, vlo, vhi);
                    if (cols == 4)
                        st4(yj + a * ow, v);
                    else
                        for (int b = 0; b < cols; b++)
                            yj[a * ow + b] = v[b];
                }
            }
        }
    }
}

static void wino_task(void *arg, int64_t t, int tid)
{
    const struct nn_wrun *r = arg;
    const struct nn_wino *w = r->w;
    const int mr = MR, nr = NR;
    int64_t tile0 = (t / w->mblocks) * w->tb, tile1 = tile0 + w->tb < w->t ? tile0 + w->tb : w->t;
    int64_t m0 = (t % w->mblocks) * w->mb, m1 = m0 + w->mb < w->m ? m0 + w->mb : w->m;
    float *v = (float *)(r->scratch + (size_t)tid * r->per), *p = v + 36 * w->sv;
    in_block(r, tile0, v);
    struct nn_epi none = {0};
    int64_t ldp = w->mb, rows = wceil(tile1 - tile0, mr) * mr;
    for (int xi = 0; xi < 36; xi++) {
        const float *a = v + xi * w->sv, *b = r->u + xi * w->su + m0 * w->c;
        float *c = p + xi * w->tb * ldp;
        /* whole MR-row tiles, columns rounded up to whole vectors: P has
         * room, U is zero past M */
        for (int64_t i = 0; i < rows; i += mr)
            for (int64_t j = 0; j < m1 - m0; j += nr) {
                int64_t nv = m1 - m0 - j < nr ? wceil(m1 - m0 - j, VL) * VL : nr;
                ukr(w->c, a + i * w->c, b + j * w->c, nr, c + i * ldp + j, ldp, mr, (int)nv, NN_UKR_LAST, &none);
            }
    }
    out_block(r, tile0, tile1, m0, m1, p, ldp);
}

