/*
 * tmpl.h — the inner loops of one ISA, written once with GCC/clang vector
 * extensions and compiled once per ISA (avx2.c, avx512.c) with that ISA's
 * flags, so each file becomes native code for its vector width.
 *
 * The including file defines VL (floats per vector), MR (rows of the GEMM
 * micro-tile), NV (vectors per row of the tile: NR = VL * NV), ISA_SYM,
 * ISA_NAME and ISA_ID.
 *
 * Micro-kernel: MR x NR accumulators stay in registers over the whole K
 * block; each k step loads NV vectors of the B panel and broadcasts MR
 * values of the A panel. One instantiation per row count 1..MR and vector
 * count 1..NV, so a tile with fewer rows (a Gemm at batch 1) or columns
 * (the last tile of a small map) does little wasted work. Columns past nv
 * within the last vector are computed (the packed B is zero there) and not
 * stored.
 *
 * Depthwise: one output plane, VL outputs at a time, over an input plane
 * the caller padded; stride 2 de-interleaves two vector loads.
 *
 * Trusts: the driver (kernels/gemm.c, kernels/fast.c) for panel sizes,
 * tile bounds and the padded plane's slack.
 */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../kern.h"

#define NR (VL * NV)

typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));

NN_VEC_IO(vf, vld, vst)

/* The first n lanes (0 < n <= VL) from p, the rest 0; nothing past p[n - 1]
 * is read. */
static inline vf vld_n(const float *p, int n)
{
    if (n == VL)
        return vld(p);
#if VL == 16
    return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), p);
#else
    vi idx = {0, 1, 2, 3, 4, 5, 6, 7}, m = idx < n;
    return (vf)_mm256_maskload_ps(p, (__m256i)m);
#endif
}

/* The first n lanes of v to p; nothing past p[n - 1] is written. */
static inline void vst_n(float *p, vf v, int n)
{
    if (n == VL) {
        vst(p, v);
        return;
    }
#if VL == 16
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1u), (__m512)v);
#else
    vi idx = {0, 1, 2, 3, 4, 5, 6, 7}, m = idx < n;
    _mm256_maskstore_ps(p, (__m256i)m, (__m256)v);
#endif
}

static inline vf vset(float s)
{
    /* splat as one broadcast, from memory when s is loaded: (vf){0} + s
     * cannot be folded (0 + -0.0 is +0.0), so it cost a vaddss and a
     * register broadcast on the FMA port per use in the micro-kernel */
#if VL == 16
    return (vf)_mm512_set1_ps(s);
#else
    return (vf)_mm256_set1_ps(s);
#endif
}


/* max and min as the instructions have them: the second operand when the
 * two compare equal or either is NaN. With the operands in this order they
 * are exactly sact's selects: Relu of NaN is 0 (max(v, 0)), Clip keeps
 * NaN (max(lo, v), then min(hi, .)), and signed zeros come out as sact's. */
static inline vf vmax2(vf a, vf b)
{
#if VL == 16
    return (vf)_mm512_max_ps((__m512)a, (__m512)b);
#else
    return (vf)_mm256_max_ps((__m256)a, (__m256)b);
#endif
}

static inline vf vmin2(vf a, vf b)
{
#if VL == 16
    return (vf)_mm512_min_ps((__m512)a, (__m512)b);
#else
    return (vf)_mm256_min_ps((__m256)a, (__m256)b);
#endif
}

static inline vf vact(vf v, int act, vf lo, vf hi)
{
    if (act == NN_ACT_RELU)
        return vmax2(v, vset(0.0f));
    if (act == NN_ACT_CLIP)
        return vmin2(hi, vmax2(lo, v));
    return v;
}

static inline float sact(float v, int act, float lo, float hi)
{
    if (act == NN_ACT_RELU)
        return v > 0.0f ? v : 0.0f;
    if (act == NN_ACT_CLIP) {
        v = v < lo ? lo : v;
        return v > hi ? hi : v;
    }
    return v;
}

static inline __attribute__((always_inline)) void ukr_gen(const int mr, const int vn, int64_t kc, const float *a,
                                                         const float *b, int64_t ldb, float *c, int64_t ldc, int mv,
                                                         int nv, unsigned flags, const struct nn_epi *e)
{
    vf acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < vn; j++)
            acc[i][j] = vset(0.0f);
    for (int64_t k = 0; k < kc; k++) {
        vf bv[NV];
#pragma GCC unroll 4
        for (int j = 0; j < vn; j++)
            bv[j] = vld(b + k * ldb + j * VL);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            vf av = vset(a[k * MR + i]);
#pragma GCC unroll 4
            for (int j = 0; j < vn; j++)
                acc[i][j] += av * bv[j];
        }
    }
    bool last = (flags & NN_UKR_LAST) != 0, load = (flags & NN_UKR_LOAD_C) != 0;
    int act = last ? e->act : NN_ACT_NONE;
    if (nv == vn * VL && mv == mr) {
        vf lo = vset(e->lo), hi = vset(e->hi);
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            float *cr = c + i * ldc;
#pragma GCC unroll 4
            for (int j = 0; j < vn; j++) {
                vf v = acc[i][j];
                if (load)
                    v += vld(cr + j * VL);
                if (last) {
                    if (e->bias_m)
                        v += vset(e->bias_m[i]);
                    if (e->bias_n)
                        v += vld(e->bias_n + j * VL);
                    if (e->res)
                        v += vld(e->res + i * e->ldr + j * VL);
                }
                vst(cr + j * VL, vact(v, act, lo, hi));
            }
        }
        return;
    }
    /* an edge tile: the rows it has, the last vector's lanes masked (masked
     * loads and stores touch only the lanes inside the tile) */
    vf lo = vset(e->lo), hi = vset(e->hi);
    for (int i = 0; i < mv; i++) {
        float *cr = c + i * ldc;
        for (int j = 0; j < vn; j++) {
            int n = nv - j * VL < VL ? nv - j * VL : VL;
            vf v = acc[i][j];
            if (load)
                v += vld_n(cr + j * VL, n);
            if (last) {
                if (e->bias_m)
                    v += vset(e->bias_m[i]);
                if (e->bias_n)
                    v += vld_n(e->bias_n + j * VL, n);
                if (e->res)
                    v += vld_n(e->res + i * e->ldr + j * VL, n);
            }
            vst_n(cr + j * VL, vact(v, act, lo, hi), n);
        }
    }
}

/* One function per row count R and vector count V (columns computed:
 * V * VL; a tile of nv columns uses the smallest V that covers them, so
 * a narrow last tile, a 7x7 map's 49th column, costs one vector, not NV). */
#define UKR_INST(R, V)                                                                                           \
    static void ukr_##R##_##V(int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc,    \
                              int mv, int nv, unsigned flags, const struct nn_epi *e)                            \
    {                                                                                                            \
        ukr_gen(R, V, kc, a, b, ldb, c, ldc, mv, nv, flags, e);                                                  \
    }
#if NV == 3
#define UKR_ROW(R) UKR_INST(R, 1) UKR_INST(R, 2) UKR_INST(R, 3)
#define UKR_FNS(R) {ukr_##R##_1, ukr_##R##_2, ukr_##R##_3}
#elif NV == 2
#define UKR_ROW(R) UKR_INST(R, 1) UKR_INST(R, 2)
#define UKR_FNS(R) {ukr_##R##_1, ukr_##R##_2}
#else
#error "NV must be 2 or 3"
#endif
UKR_ROW(1)
UKR_ROW(2)
UKR_ROW(3)
UKR_ROW(4)
#if MR > 4
UKR_ROW(5)
UKR_ROW(6)
#endif
#if MR > 6
UKR_ROW(7)
UKR_ROW(8)
#endif

#if MR == 8
/* A tile of at most COLS_MAX columns (the last of a 7x7 map's 49, of a
 * 14x14 map's 196): the 8 rows of the A panel are one 8-lane vector, so a
 * k step is one load of A, a broadcast and an FMA per column, where the
 * row-broadcasting kernel would load eight A values for a vector of B that
 * is mostly padding. */
#define COLS_MAX 4
typedef float vr __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) void ukr_cols_gen(const int nc, int64_t kc, const float *a,
                                                              const float *b, int64_t ldb, float *c, int64_t ldc,
                                                              int mv, unsigned flags, const struct nn_epi *e)
{
    /* four partial sums per column over k mod 4: one chain would wait an
     * FMA latency per k step */
    vr acc[4][COLS_MAX];
    for (int u = 0; u < 4; u++)
        for (int j = 0; j < nc; j++)
            acc[u][j] = (vr){0};
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4)
        for (int u = 0; u < 4; u++) {
            vr av;
            memcpy(&av, a + (k + u) * MR, sizeof(av));
            for (int j = 0; j < nc; j++)
                acc[u][j] += av * b[(k + u) * ldb + j];
        }
    for (; k < kc; k++) {
        vr av;
        memcpy(&av, a + k * MR, sizeof(av));
        for (int j = 0; j < nc; j++)
            acc[0][j] += av * b[k * ldb + j];
    }
    for (int j = 0; j < nc; j++)
        acc[0][j] += acc[1][j] + acc[2][j] + acc[3][j];
    bool last = (flags & NN_UKR_LAST) != 0, load = (flags & NN_UKR_LOAD_C) != 0;
    int act = last ? e->act : NN_ACT_NONE;
    for (int j = 0; j < nc; j++)
        for (int i = 0; i < mv; i++) {
            float v = acc[0][j][i];
            if (load)
                v += c[i * ldc + j];
            if (last) {
                if (e->bias_m)
                    v += e->bias_m[i];
                if (e->bias_n)
                    v += e->bias_n[j];
                if (e->res)
                    v += e->res[i * e->ldr + j];
            }
            c[i * ldc + j] = sact(v, act, e->lo, e->hi);
        }
}

#define UKR_COLS(N)                                                                                              \
    static void ukr_cols_##N(int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc,     \
                             int mv, unsigned flags, const struct nn_epi *e)                                     \
    {                                                                                                            \
        ukr_cols_gen(N, kc, a, b, ldb, c, ldc, mv, flags, e);                                                    \
    }
UKR_COLS(1)
UKR_COLS(2)
UKR_COLS(3)
UKR_COLS(4)
#endif

static void ukr(int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc, int mv, int nv,
                unsigned flags, const struct nn_epi *e)
{
#if MR == 8
    typedef void (*cols_fn)(int64_t, const float *, const float *, int64_t, float *, int64_t, int, unsigned,
                            const struct nn_epi *);
    static const cols_fn by_cols[COLS_MAX + 1] = {ukr_cols_1, ukr_cols_1, ukr_cols_2, ukr_cols_3, ukr_cols_4};
    if (nv <= COLS_MAX) {
        by_cols[nv](kc, a, b, ldb, c, ldc, mv, flags, e);
        return;
    }
#endif
    static const nn_ukr_fn by_rows[][NV] = {
        UKR_FNS(1), UKR_FNS(1), UKR_FNS(2), UKR_FNS(3), UKR_FNS(4),
#if MR > 4
        UKR_FNS(5), UKR_FNS(6),
#endif
#if MR > 6
        UKR_FNS(7), UKR_FNS(8),
#endif
    };
    int vn = (nv + VL - 1) / VL;
    by_rows[mv][vn > 0 ? vn - 1 : 0](kc, a, b, ldb, c, ldc, mv, nv, flags, e);
}

/* A row of C at batch 1 (nn_gemv_fn): the product is a stream of the
 * packed weights with one FMA per vector loaded, so it is bound by how
 * fast the panels come in from L2 or L3, not by the FMA units. The generic
 * tile (ukr_gen with one row) keeps one accumulator per vector, each FMA
 * waiting on the last (4 cycles), and leaves the loads too little to
 * overlap; four partial sums over k mod 4 do not wait. */
static inline __attribute__((always_inline)) void gemv_gen(const int vn, int64_t k, const float *a, const float *b,
                                                          float *c, int nv, unsigned flags, const struct nn_epi *e)
{
    vf s[4][NV];
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++)
#pragma GCC unroll 4
        for (int j = 0; j < vn; j++)
            s[u][j] = vset(0.0f);
    int64_t i = 0;
    for (; i + 4 <= k; i += 4)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            vf av = vset(a[i + u]);
#pragma GCC unroll 4
            for (int j = 0; j < vn; j++)
                s[u][j] += av * vld(b + (i + u) * NR + j * VL);
        }
    for (; i < k; i++) {
        vf av = vset(a[i]);
#pragma GCC unroll 4
        for (int j = 0; j < vn; j++)
            s[0][j] += av * vld(b + i * NR + j * VL);
    }
    vf lo = vset(e->lo), hi = vset(e->hi);
#pragma GCC unroll 4
    for (int j = 0; j < vn; j++) {
        int n = nv - j * VL < VL ? nv - j * VL : VL;
        if (n <= 0)
            break;
        vf v = (s[0][j] + s[1][j]) + (s[2][j] + s[3][j]);
        if (flags & NN_UKR_LOAD_C)
            v += vld_n(c + j * VL, n);
        if (e->bias_m)
            v += vset(e->bias_m[0]);
        if (e->bias_n)
            v += vld_n(e->bias_n + j * VL, n);
        if (e->res)
            v += vld_n(e->res + j * VL, n);
        vst_n(c + j * VL, vact(v, e->act, lo, hi), n);
    }
}

#define GEMV_INST(V)                                                                                             \
    static void gemv_##V(int64_t k, const float *a, const float *b, float *c, int nv, unsigned flags,             \
                         const struct nn_epi *e)                                                                 \
    {                                                                                                            \
        gemv_gen(V, k, a, b, c, nv, flags, e);                                                                   \
    }
GEMV_INST(1)
GEMV_INST(2)
#if NV == 3
GEMV_INST(3)
#endif

static void gemv(int64_t k, const float *a, const float *b, float *c, int vn, int nv, unsigned flags,
                 const struct nn_epi *e)
{
    typedef void (*fn)(int64_t, const float *, const float *, float *, int, unsigned, const struct nn_epi *);
#if NV == 3
    static const fn by_vn[] = {gemv_1, gemv_1, gemv_2, gemv_3};
#else
    static const fn by_vn[] = {gemv_1, gemv_1, gemv_2};
#endif
    by_vn[vn](k, a, b, c, nv, flags, e);
}

/* Lanes 0, 2, 4, ... of the 2 * VL floats at p. */
static inline vf vld_even(const float *p)
{
    vf a = vld(p), b = vld(p + VL);
#if VL == 16
#define EVEN_IDX 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#else
#define EVEN_IDX 0, 2, 4, 6, 8, 10, 12, 14
#endif
#ifdef __clang__
    return __builtin_shufflevector(a, b, EVEN_IDX);
#else
    return __builtin_shuffle(a, b, (vi){EVEN_IDX});
#endif
}

/* 3x3, dilation 1, stride S (1 or 2): the nine weights stay in registers,
 * the three input rows of an output row are walked together. */
static inline __attribute__((always_inline)) void dw3(const int S, const struct nn_dw *d, const float *xp,
                                                     const float *w, vf vb, int act, vf vlo, vf vhi, float *y)
{
    vf k[9];
    for (int i = 0; i < 9; i++)
        k[i] = vset(w[i]);
    for (int64_t oy = 0; oy < d->oh; oy++) {
        float *yr = y + oy * d->ow;
        const float *r0 = xp + oy * S * d->xw, *r1 = r0 + d->xw, *r2 = r1 + d->xw;
        for (int64_t ox = 0; ox < d->ow; ox += VL) {
            const float *p0 = r0 + ox * S, *p1 = r1 + ox * S, *p2 = r2 + ox * S;
            vf acc = vb;
            if (S == 1) {
                acc += k[0] * vld(p0) + k[1] * vld(p0 + 1) + k[2] * vld(p0 + 2);
                acc += k[3] * vld(p1) + k[4] * vld(p1 + 1) + k[5] * vld(p1 + 2);
                acc += k[6] * vld(p2) + k[7] * vld(p2 + 1) + k[8] * vld(p2 + 2);
            } else {
                acc += k[0] * vld_even(p0) + k[1] * vld_even(p0 + 1) + k[2] * vld_even(p0 + 2);
                acc += k[3] * vld_even(p1) + k[4] * vld_even(p1 + 1) + k[5] * vld_even(p1 + 2);
                acc += k[6] * vld_even(p2) + k[7] * vld_even(p2 + 1) + k[8] * vld_even(p2 + 2);
            }
            vst_n(yr + ox, vact(acc, act, vlo, vhi), d->ow - ox < VL ? (int)(d->ow - ox) : VL);
        }
    }
}

static void dw(const struct nn_dw *d, const float *xp, const float *w, float bias, int act, float lo, float hi,
               float *y)
{
    vf vlo = vset(lo), vhi = vset(hi), vb = vset(bias);
    if (d->kh == 3 && d->kw == 3 && d->dh == 1 && d->dw == 1 && d->sh == d->sw && (d->sw == 1 || d->sw == 2)) {
        if (d->sw == 1)
            dw3(1, d, xp, w, vb, act, vlo, vhi, y);
        else
            dw3(2, d, xp, w, vb, act, vlo, vhi, y);
        return;
    }
    for (int64_t oy = 0; oy < d->oh; oy++) {
        float *yr = y + oy * d->ow;
        for (int64_t ox = 0; ox < d->ow; ox += VL) {
            vf acc = vb;
            for (int ky = 0; ky < d->kh; ky++) {
                const float *row = xp + (oy * d->sh + ky * d->dh) * d->xw + ox * d->sw;
                for (int kx = 0; kx < d->kw; kx++) {
                    const float *p = row + kx * d->dw;
                    vf xv;
                    if (d->sw == 1) {
                        xv = vld(p);
                    } else if (d->sw == 2) {
                        xv = vld_even(p);
                    } else {
                        for (int l = 0; l < VL; l++)
                            xv[l] = p[l * d->sw];
                    }
                    acc += vset(w[ky * d->kw + kx]) * xv;
                }
            }
            vst_n(yr + ox, vact(acc, act, vlo, vhi), d->ow - ox < VL ? (int)(d->ow - ox) : VL);
        }
    }
}

/* dst[i] = src[i * stride]: stride 2 (the im2col of stride-2
 * convolutions) de-interleaves two vectors at a time; the last vector's
 * worth is copied one by one, so nothing past src[(n - 1) * 2] is read. */
static void gather(float *dst, const float *src, int64_t stride, int64_t n)
{
    int64_t i = 0;
    if (stride == 2)
        for (; i + VL < n; i += VL)
            vst(dst + i, vld_even(src + 2 * i));
    for (; i < n; i++)
        dst[i] = src[i * stride];
}

#if MR == 8 || MR == 6
/* isa->pack_a (an 8- or 6-row tile): eight columns at a time, the rows'
 * 256-bit pieces transposed (unpack, shuffle, lane permute; the rows a
 * 6-row tile lacks are zero), so the panel is written a column at a
 * time; the last columns one by one. In place of the driver's strided
 * scalar loop (and its per-column memset of the missing rows): a batched
 * MLP's activations were packed at ~1 float a cycle. */
static void pack_a_rows(float *dst, const float *a, int64_t rs, int mv, int64_t kb)
{
    int64_t k = 0;
    for (; k + 8 <= kb; k += 8) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            r[i] = i < mv ? _mm256_loadu_ps(a + i * rs + k) : _mm256_setzero_ps();
        __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
        __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
        __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
        /* column j of the eight: rows 0-7 of a[.][k + j] */
        __m256 col[8] = {
            _mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
            _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
            _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
            _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31),
        };
        float *d = dst + k * MR;
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
#if MR == 8
            _mm256_storeu_ps(d + j * 8, col[j]);
#else
            /* six floats: four, then two (nothing past the column) */
            _mm_storeu_ps(d + j * 6, _mm256_castps256_ps128(col[j]));
            _mm_storel_epi64((__m128i *)(void *)(d + j * 6 + 4), _mm_castps_si128(_mm256_extractf128_ps(col[j], 1)));
#endif
        }
    }
    for (; k < kb; k++)
        for (int i = 0; i < MR; i++)
            dst[k * MR + i] = i < mv ? a[i * rs + k] : 0.0f;
}
#define ISA_PACK_A pack_a_rows
#else
#define ISA_PACK_A NULL
#endif

#if VL == 16
/* The reduction of bconv_6_4 over whole blocked channel blocks (x_c 1,
 * c % 16 == 0), in assembly: compiled from C, the 24 accumulators, 4
 * weight vectors and the broadcasts did not stay put (register moves and
 * stack spills on the FMA ports inside the 16-step loop). zmm0-23 hold
 * pixel i's block v in zmm(4 i + v), zmm24-27 the step's weights, zmm28-31
 * the broadcasts. For each of the n byte offsets in tab (one per channel
 * block and window position, in the order the weights are packed), 16
 * steps; the sums go to acc[4 i + v][16]. */
#define BR_PX(x, b, a0, a1, a2, a3)                                                                                    \
    "vbroadcastss \\ic*4(%[" x "],%%rax), %%zmm" b "\n\t"                                                             \
    "vfmadd231ps %%zmm24, %%zmm" b ", %%zmm" a0 "\n\t"                                                                \
    "vfmadd231ps %%zmm25, %%zmm" b ", %%zmm" a1 "\n\t"                                                                \
    "vfmadd231ps %%zmm26, %%zmm" b ", %%zmm" a2 "\n\t"                                                                \
    "vfmadd231ps %%zmm27, %%zmm" b ", %%zmm" a3 "\n\t"
#include "br_asm.h"
/* one step: 4 weight vectors at the given offset from w, 6 broadcasts */
#define BR_STEP6x4(wo)                                                                                                 \
    "vmovups " wo "(%[w]), %%zmm24\n\t"                                                                             \
    "vmovups " wo "+64(%[w]), %%zmm25\n\t"                                                                          \
    "vmovups " wo "+128(%[w]), %%zmm26\n\t"                                                                         \
    "vmovups " wo "+192(%[w]), %%zmm27\n\t"                                                                         \
    BR_PX("x0", "28", "0", "1", "2", "3") BR_PX("x1", "29", "4", "5", "6", "7") BR_PX("x2", "30", "8", "9", "10", "11") \
        BR_PX("x3", "31", "12", "13", "14", "15") BR_PX("x4", "28", "16", "17", "18", "19")                            \
            BR_PX("x5", "29", "20", "21", "22", "23")
#define BR_FN(name, steps, wo, wbytes)                                                                                 \
    static void name(const float *w, const int64_t *tab, int64_t n, const float *const *xr, float *acc)              \
    {                                                                                                                  \
        __asm__ volatile(BR_LOOP(steps, BR_STEP6x4(wo), wbytes) BR_SAVE_ALL BR_OPERANDS);                                            \
    }
BR_FN(bconv_red_6x4, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15", "\\ic*256", "4096")
/* The same for any other input (a plain NCHW one, or a partial last
 * channel block): one step per offset in tab, each an input channel at
 * one window position, in the order the weights are packed. */
BR_FN(bconv_red1_6x4, "0", "0", "256")

/* The same for 6 pixels x 2 blocks (groups of 32 channels, mobilenet_v2's
 * 3-channel first layer and its other 32-channel groups not read as 1x1
 * wide tiles): zmm0-11 hold pixel i's block v in zmm(2 i + v), zmm24-25
 * the step's weights, zmm28-31 the broadcasts; sums to acc[2 i + v][16].
 * Compiled from C, a plain input's one-step tab entries (27 for a 3x3
 * window over 3 channels) each went through the C loops' bookkeeping. */
#define BR_PX2(x, b, a0, a1)                                                                                           \
    "vbroadcastss \\ic*4(%[" x "],%%rax), %%zmm" b "\n\t"                                                             \
    "vfmadd231ps %%zmm24, %%zmm" b ", %%zmm" a0 "\n\t"                                                                \
    "vfmadd231ps %%zmm25, %%zmm" b ", %%zmm" a1 "\n\t"
#define BR_STEP6x2(wo)                                                                                                 \
    "vmovups " wo "(%[w]), %%zmm24\n\t"                                                                             \
    "vmovups " wo "+64(%[w]), %%zmm25\n\t"                                                                          \
    BR_PX2("x0", "28", "0", "1") BR_PX2("x1", "29", "2", "3") BR_PX2("x2", "30", "4", "5")                            \
        BR_PX2("x3", "31", "6", "7") BR_PX2("x4", "28", "8", "9") BR_PX2("x5", "29", "10", "11")
#define BR_FN12(name, steps, wo, wbytes)                                                                               \
    static void name(const float *w, const int64_t *tab, int64_t n, const float *const *xr, float *acc)              \
    {                                                                                                                  \
        __asm__ volatile(BR_ALL12(BR_ZERO) "1:\n\t"                                                                  \
                         "movq (%[tab]), %%rax\n\t"                                                                 \
                         "addq $8, %[tab]\n\t"                                                                      \
                         ".irp ic," steps "\n\t" BR_STEP6x2(wo) ".endr\n\t"                                         \
                         "addq $" wbytes ", %[w]\n\t"                                                               \
                         "decq %[n]\n\t"                                                                            \
                         "jnz 1b\n\t" BR_ALL12(BR_SAVE) BR_OPERANDS);                                               \
    }
BR_FN12(bconv_red_6x2, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15", "\\ic*128", "2048")
BR_FN12(bconv_red1_6x2, "0", "0", "128")

#define BR_FN_OUT(name, steps, wo, wbytes)                                                                             \
    static void name(const float *w, const int64_t *tab, int64_t n, const float *const *xr, const struct br_out *e)  \
    {                                                                                                                  \
        const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];                    \
        __asm__ volatile(BR_LOOP(steps, BR_STEP6x4(wo), wbytes) BR_EPI                                                             \
                         : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n), [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2),   \
                           [x3] "+r"(x3), [x4] "+r"(x4), [x5] "+r"(x5)                                                 \
                         : [e] "r"(e)                                                                                  \
                         : BR_CLOBBERS);                                                                               \
    }
BR_FN_OUT(bconv_out_6x4, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15", "\\ic*256", "4096")
BR_FN_OUT(bconv_out1_6x4, "0", "0", "256")
/* A section of the reduction (kern.h, nn_bconv_sec_fn): BR_LOOP_SEC_GEN
 * with 16 steps a tab entry. */
#define BR_LOOP_SEC BR_LOOP_SEC_GEN("0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15", BR_STEP6x4("\\ic*256"), "4096")
static void bconv_sec_6x4(const float *w, const int64_t *tab, int64_t n, const float *const *xr, float *acc,
                          const char *pf)
{
    __asm__ volatile("movq %[acc], %%rax\n\t" BR_LOOP_SEC BR_SAVE_ALL
                     : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n), [pf] "+r"(pf)
                     : [x0] "r"(xr[0]), [x1] "r"(xr[1]), [x2] "r"(xr[2]), [x3] "r"(xr[3]), [x4] "r"(xr[4]),
                       [x5] "r"(xr[5]), [acc] "r"(acc)
                     : BR_CLOBBERS);
}
static void bconv_secout_6x4(const float *w, const int64_t *tab, int64_t n, const float *const *xr,
                             const struct br_out *e, const char *pf)
{
    const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    __asm__ volatile("movq 48(%[e]), %%rax\n\t" BR_LOOP_SEC BR_EPI
                     : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n), [pf] "+r"(pf), [x0] "+r"(x0), [x1] "+r"(x1),
                       [x2] "+r"(x2), [x3] "+r"(x3), [x4] "+r"(x4), [x5] "+r"(x5)
                     : [e] "r"(e)
                     : BR_CLOBBERS);
}

/* 1x1, stride-1 convolutions over whole blocked channel blocks, for the
 * groups of 32 or 16 output channels (vg 2 or 1), whose 6-pixel tiles
 * would feed 12 or 6 FMAs a step from 6 broadcasts: 12 or 24 consecutive
 * pixels, which are contiguous in the input (x + 16 i floats for pixel i),
 * read through one pointer. Sums to acc[V i + v][16] as above. */
/* one function: the 16 steps of a tab entry and the bytes of weights they read */
#define BR_FN_WIDE(name, step, wbytes)                                                                                 \
    static void name(const float *w, const int64_t *tab, int64_t n, const float *x, float *acc)                        \
    {                                                                                                                  \
        __asm__ volatile(BR_LOOP("0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15", step, wbytes) BR_SAVE_ALL                   \
                         : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n)                                                  \
                         : [x] "r"(x), [acc] "r"(acc)                                                                  \
                         : BR_CLOBBERS);                                                                               \
    }
#define BR_WIDE_12x2 \
    "vmovups \\ic*128+0(%[w]), %%zmm24\n\t" \
    "vmovups \\ic*128+64(%[w]), %%zmm25\n\t" \
    "vbroadcastss \\ic*4+0(%[x],%%rax), %%zmm26\n\t" \
    "vfmadd231ps %%zmm24, %%zmm26, %%zmm0\n\t" \
    "vfmadd231ps %%zmm25, %%zmm26, %%zmm1\n\t" \
    "vbroadcastss \\ic*4+64(%[x],%%rax), %%zmm27\n\t" \
    "vfmadd231ps %%zmm24, %%zmm27, %%zmm2\n\t" \
    "vfmadd231ps %%zmm25, %%zmm27, %%zmm3\n\t" \
    "vbroadcastss \\ic*4+128(%[x],%%rax), %%zmm28\n\t" \
    "vfmadd231ps %%zmm24, %%zmm28, %%zmm4\n\t" \
    "vfmadd231ps %%zmm25, %%zmm28, %%zmm5\n\t" \
    "vbroadcastss \\ic*4+192(%[x],%%rax), %%zmm29\n\t" \
    "vfmadd231ps %%zmm24, %%zmm29, %%zmm6\n\t" \
    "vfmadd231ps %%zmm25, %%zmm29, %%zmm7\n\t" \
    "vbroadcastss \\ic*4+256(%[x],%%rax), %%zmm30\n\t" \
    "vfmadd231ps %%zmm24, %%zmm30, %%zmm8\n\t" \
    "vfmadd231ps %%zmm25, %%zmm30, %%zmm9\n\t" \
    "vbroadcastss \\ic*4+320(%[x],%%rax), %%zmm31\n\t" \
    "vfmadd231ps %%zmm24, %%zmm31, %%zmm10\n\t" \
    "vfmadd231ps %%zmm25, %%zmm31, %%zmm11\n\t" \
    "vbroadcastss \\ic*4+384(%[x],%%rax), %%zmm26\n\t" \
    "vfmadd231ps %%zmm24, %%zmm26, %%zmm12\n\t" \
    "vfmadd231ps %%zmm25, %%zmm26, %%zmm13\n\t" \
    "vbroadcastss \\ic*4+448(%[x],%%rax), %%zmm27\n\t" \
    "vfmadd231ps %%zmm24, %%zmm27, %%zmm14\n\t" \
    "vfmadd231ps %%zmm25, %%zmm27, %%zmm15\n\t" \
    "vbroadcastss \\ic*4+512(%[x],%%rax), %%zmm28\n\t" \
    "vfmadd231ps %%zmm24, %%zmm28, %%zmm16\n\t" \
    "vfmadd231ps %%zmm25, %%zmm28, %%zmm17\n\t" \
    "vbroadcastss \\ic*4+576(%[x],%%rax), %%zmm29\n\t" \
    "vfmadd231ps %%zmm24, %%zmm29, %%zmm18\n\t" \
    "vfmadd231ps %%zmm25, %%zmm29, %%zmm19\n\t" \
    "vbroadcastss \\ic*4+640(%[x],%%rax), %%zmm30\n\t" \
    "vfmadd231ps %%zmm24, %%zmm30, %%zmm20\n\t" \
    "vfmadd231ps %%zmm25, %%zmm30, %%zmm21\n\t" \
    "vbroadcastss \\ic*4+704(%[x],%%rax), %%zmm31\n\t" \
    "vfmadd231ps %%zmm24, %%zmm31, %%zmm22\n\t" \
    "vfmadd231ps %%zmm25, %%zmm31, %%zmm23\n\t"
BR_FN_WIDE(bconv_red_12x2, BR_WIDE_12x2, "2048")

#define BR_WIDE_24x1 \
    "vmovups \\ic*64+0(%[w]), %%zmm24\n\t" \
    "vbroadcastss \\ic*4+0(%[x],%%rax), %%zmm25\n\t" \
    "vfmadd231ps %%zmm24, %%zmm25, %%zmm0\n\t" \
    "vbroadcastss \\ic*4+64(%[x],%%rax), %%zmm26\n\t" \
    "vfmadd231ps %%zmm24, %%zmm26, %%zmm1\n\t" \
    "vbroadcastss \\ic*4+128(%[x],%%rax), %%zmm27\n\t" \
    "vfmadd231ps %%zmm24, %%zmm27, %%zmm2\n\t" \
    "vbroadcastss \\ic*4+192(%[x],%%rax), %%zmm28\n\t" \
    "vfmadd231ps %%zmm24, %%zmm28, %%zmm3\n\t" \
    "vbroadcastss \\ic*4+256(%[x],%%rax), %%zmm29\n\t" \
    "vfmadd231ps %%zmm24, %%zmm29, %%zmm4\n\t" \
    "vbroadcastss \\ic*4+320(%[x],%%rax), %%zmm30\n\t" \
    "vfmadd231ps %%zmm24, %%zmm30, %%zmm5\n\t" \
    "vbroadcastss \\ic*4+384(%[x],%%rax), %%zmm31\n\t" \
    "vfmadd231ps %%zmm24, %%zmm31, %%zmm6\n\t" \
    "vbroadcastss \\ic*4+448(%[x],%%rax), %%zmm25\n\t" \
    "vfmadd231ps %%zmm24, %%zmm25, %%zmm7\n\t" \
    "vbroadcastss \\ic*4+512(%[x],%%rax), %%zmm26\n\t" \
    "vfmadd231ps %%zmm24, %%zmm26, %%zmm8\n\t" \
    "vbroadcastss \\ic*4+576(%[x],%%rax), %%zmm27\n\t" \
    "vfmadd231ps %%zmm24, %%zmm27, %%zmm9\n\t" \
    "vbroadcastss \\ic*4+640(%[x],%%rax), %%zmm28\n\t" \
    "vfmadd231ps %%zmm24, %%zmm28, %%zmm10\n\t" \
    "vbroadcastss \\ic*4+704(%[x],%%rax), %%zmm29\n\t" \
    "vfmadd231ps %%zmm24, %%zmm29, %%zmm11\n\t" \
    "vbroadcastss \\ic*4+768(%[x],%%rax), %%zmm30\n\t" \
    "vfmadd231ps %%zmm24, %%zmm30, %%zmm12\n\t" \
    "vbroadcastss \\ic*4+832(%[x],%%rax), %%zmm31\n\t" \
    "vfmadd231ps %%zmm24, %%zmm31, %%zmm13\n\t" \
    "vbroadcastss \\ic*4+896(%[x],%%rax), %%zmm25\n\t" \
    "vfmadd231ps %%zmm24, %%zmm25, %%zmm14\n\t" \
    "vbroadcastss \\ic*4+960(%[x],%%rax), %%zmm26\n\t" \
    "vfmadd231ps %%zmm24, %%zmm26, %%zmm15\n\t" \
    "vbroadcastss \\ic*4+1024(%[x],%%rax), %%zmm27\n\t" \
    "vfmadd231ps %%zmm24, %%zmm27, %%zmm16\n\t" \
    "vbroadcastss \\ic*4+1088(%[x],%%rax), %%zmm28\n\t" \
    "vfmadd231ps %%zmm24, %%zmm28, %%zmm17\n\t" \
    "vbroadcastss \\ic*4+1152(%[x],%%rax), %%zmm29\n\t" \
    "vfmadd231ps %%zmm24, %%zmm29, %%zmm18\n\t" \
    "vbroadcastss \\ic*4+1216(%[x],%%rax), %%zmm30\n\t" \
    "vfmadd231ps %%zmm24, %%zmm30, %%zmm19\n\t" \
    "vbroadcastss \\ic*4+1280(%[x],%%rax), %%zmm31\n\t" \
    "vfmadd231ps %%zmm24, %%zmm31, %%zmm20\n\t" \
    "vbroadcastss \\ic*4+1344(%[x],%%rax), %%zmm25\n\t" \
    "vfmadd231ps %%zmm24, %%zmm25, %%zmm21\n\t" \
    "vbroadcastss \\ic*4+1408(%[x],%%rax), %%zmm26\n\t" \
    "vfmadd231ps %%zmm24, %%zmm26, %%zmm22\n\t" \
    "vbroadcastss \\ic*4+1472(%[x],%%rax), %%zmm27\n\t" \
    "vfmadd231ps %%zmm24, %%zmm27, %%zmm23\n\t"
BR_FN_WIDE(bconv_red_24x1, BR_WIDE_24x1, "1024")

/* Block v of output pixel i (sums plus bias in t): the residual, the
 * activation, stored blocked or plain. */
static inline __attribute__((always_inline)) void bconv_put(const struct nn_bconv *p, vf t, int v, int i,
                                                           const float *res, float *y, vf lo, vf hi)
{
    if (p->y_px == VL) {
        int64_t off = v * p->y_cb + i * VL;
        if (res)
            t += vld(res + off);
        vst(y + off, vact(t, p->act, lo, hi));
        return;
    }
    /* a plain output: lane j is channel v * 16 + j of pixel i */
    int64_t off = v * VL * p->y_c + i;
    for (int j = 0; j < VL; j++) {
        float s = t[j];
        if (res)
            s += res[off + j * p->y_c];
        y[off + j * p->y_c] = sact(s, p->act, p->lo, p->hi);
    }
}

/* bconv_gen's epilogue into a blocked output (bconv_put's blocked branch),
 * the activation known at compile time and the residual tested once. */
static inline __attribute__((always_inline)) void bconv_gen_out(const int R, const int V, const int ACT,
                                                               const struct nn_bconv *p,
                                                               vf acc[NN_BCONV_R][NN_BCONV_V], const float *bias,
                                                               const float *res, float *y, vf lo, vf hi)
{
    vf bv[NN_BCONV_V];
#pragma GCC unroll 4
    for (int v = 0; v < V; v++)
        bv[v] = bias ? vld(bias + v * VL) : vset(0.0f);
    if (res) {
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
#pragma GCC unroll 8
            for (int i = 0; i < R; i++)
                vst(y + v * p->y_cb + i * VL, vact(acc[i][v] + bv[v] + vld(res + v * p->y_cb + i * VL), ACT, lo, hi));
        return;
    }
#pragma GCC unroll 4
    for (int v = 0; v < V; v++)
#pragma GCC unroll 8
        for (int i = 0; i < R; i++)
            vst(y + v * p->y_cb + i * VL, vact(acc[i][v] + bv[v], ACT, lo, hi));
}

/* The blocked direct convolution (kern.h, struct nn_bconv): R pixels x V
 * channel blocks of accumulators (at most 6 x 4 = 24 registers, with V
 * weight vectors and a broadcast: 29 of the 32), one pass over the whole
 * reduction; per step V weight loads and R broadcasts feed R * V FMAs;
 * bconv_6_4 runs in assembly (bconv_out_6x4 and the others above) where
 * the plan made the offsets (otab). */
static inline __attribute__((always_inline)) void bconv_gen(const int R, const int V, const struct nn_bconv *p,
                                                           const float *x, const int64_t *xoff, const float *w,
                                                           const float *bias, const float *res, float *y)
{
    vf acc[NN_BCONV_R][NN_BCONV_V];
    const float *xr[NN_BCONV_R];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        xr[i] = x + xoff[i];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            acc[i][v] = vset(0.0f);
    }
    if (R == 6 && V == 4 && p->otab != NULL && p->y_px == VL) {
        static const float zeros[4 * VL] __attribute__((aligned(64)));
        struct br_out e = {.bias = bias ? bias : zeros, .res = res, .y = y, .ycb = p->y_cb * (int64_t)sizeof(float),
                           .act = p->act, .lo = p->lo, .hi = p->hi};
        if (p->otab_step == 16)
            bconv_out_6x4(w, p->otab, p->ntab, xr, &e);
        else
            bconv_out1_6x4(w, p->otab, p->ntab, xr, &e);
        return;
    }
    if (R == 6 && (V == 4 || V == 2) && p->otab != NULL) { /* the reduction in assembly, sums[V i + v] */
        float sums[6 * 4 * VL] __attribute__((aligned(64)));
        if (V == 4 && p->otab_step == 16)
            bconv_red_6x4(w, p->otab, p->ntab, xr, sums);
        else if (V == 4)
            bconv_red1_6x4(w, p->otab, p->ntab, xr, sums);
        else if (p->otab_step == 16)
            bconv_red_6x2(w, p->otab, p->ntab, xr, sums);
        else
            bconv_red1_6x2(w, p->otab, p->ntab, xr, sums);
        for (int i = 0; i < R; i++)
            for (int v = 0; v < V; v++)
                acc[i][v] = vld(sums + (i * V + v) * VL);
        goto epilogue;
    }
    int64_t ncb = (p->c + 15) / 16;
    for (int64_t cb = 0; cb < ncb; cb++) {
        int cbl = p->c - cb * 16 < 16 ? (int)(p->c - cb * 16) : 16;
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                int64_t o = cb * p->x_cb + ky * p->x_ky + kx * p->x_kx;
                if (p->x_c == 1 && cbl == 16) {
                    /* the blocked input: 16 channels a pixel, contiguous */
#pragma GCC unroll 16
                    for (int ic = 0; ic < 16; ic++) {
                        vf wv[NN_BCONV_V];
#pragma GCC unroll 4
                        for (int v = 0; v < V; v++)
                            wv[v] = vld(w + v * VL);
#pragma GCC unroll 8
                        for (int i = 0; i < R; i++) {
                            vf b = vset(xr[i][o + ic]);
#pragma GCC unroll 4
                            for (int v = 0; v < V; v++)
                                acc[i][v] += b * wv[v];
                        }
                        w += V * VL;
                    }
                    continue;
                }
                for (int ic = 0; ic < cbl; ic++) {
                    vf wv[NN_BCONV_V];
#pragma GCC unroll 4
                    for (int v = 0; v < V; v++)
                        wv[v] = vld(w + v * VL);
                    int64_t oc = o + ic * p->x_c;
#pragma GCC unroll 8
                    for (int i = 0; i < R; i++) {
                        vf b = vset(xr[i][oc]);
#pragma GCC unroll 4
                        for (int v = 0; v < V; v++)
                            acc[i][v] += b * wv[v];
                    }
                    w += V * VL;
                }
            }
    }
epilogue:;
    vf lo = vset(p->lo), hi = vset(p->hi);
    if (p->y_px == VL) { /* blocked: the activation and residual tested once, not per vector */
        if (p->act == NN_ACT_RELU)
            bconv_gen_out(R, V, NN_ACT_RELU, p, acc, bias, res, y, lo, hi);
        else if (p->act == NN_ACT_CLIP)
            bconv_gen_out(R, V, NN_ACT_CLIP, p, acc, bias, res, y, lo, hi);
        else
            bconv_gen_out(R, V, NN_ACT_NONE, p, acc, bias, res, y, lo, hi);
        return;
    }
#pragma GCC unroll 4
    for (int v = 0; v < V; v++) {
        vf bv = bias ? vld(bias + v * VL) : vset(0.0f);
#pragma GCC unroll 8
        for (int i = 0; i < R; i++)
            bconv_put(p, acc[i][v] + bv, v, i, res, y, lo, hi);
    }
}

/* bconv_wide's epilogue into a blocked output, its NN_BCONV_WIDE / VG
 * pixels and VG blocks known at compile time, the activation (ACT) and
 * whether there is a residual taken out of the loop: as bconv_put's
 * blocked branch, which tested both, and the layout, for every vector
 * (mobilenet_v2's projections to 16-32 channels, whose reductions are
 * short, spent a tenth of their time there). */
static inline __attribute__((always_inline)) void wide_out(const int VG, const int ACT, const bool RES,
                                                          const struct nn_bconv *p, const float *sums,
                                                          const float *bias, const float *res, float *y, vf lo,
                                                          vf hi)
{
    const int npx = NN_BCONV_WIDE / VG;
#pragma GCC unroll 2
    for (int v = 0; v < VG; v++) {
        vf bv = bias ? vld(bias + v * VL) : vset(0.0f);
        float *yv = y + v * p->y_cb;
        const float *rv = RES ? res + v * p->y_cb : NULL;
#pragma GCC unroll 24
        for (int i = 0; i < npx; i++) {
            vf t = vld(sums + (i * VG + v) * VL) + bv;
            if (RES)
                t += vld(rv + i * VL);
            vst(yv + i * VL, vact(t, ACT, lo, hi));
        }
    }
}
static inline __attribute__((always_inline)) void wide_out_act(const int VG, const struct nn_bconv *p,
                                                              const float *sums, const float *bias,
                                                              const float *res, float *y, vf lo, vf hi)
{
    if (p->act == NN_ACT_RELU) {
        if (res)
            wide_out(VG, NN_ACT_RELU, true, p, sums, bias, res, y, lo, hi);
        else
            wide_out(VG, NN_ACT_RELU, false, p, sums, bias, res, y, lo, hi);
    } else if (p->act == NN_ACT_CLIP) {
        if (res)
            wide_out(VG, NN_ACT_CLIP, true, p, sums, bias, res, y, lo, hi);
        else
            wide_out(VG, NN_ACT_CLIP, false, p, sums, bias, res, y, lo, hi);
    } else {
        if (res)
            wide_out(VG, NN_ACT_NONE, true, p, sums, bias, res, y, lo, hi);
        else
            wide_out(VG, NN_ACT_NONE, false, p, sums, bias, res, y, lo, hi);
    }
}

/* kern.h, nn_bconv_wide_fn */
static void bconv_wide(const struct nn_bconv *p, const float *x, int npx, const float *w, int vg, const float *bias,
                       const float *res, float *y)
{
    if (vg == NN_BCONV_V) { /* whole 6x4 tiles, pixel after pixel */
        static const float zeros[4 * VL] __attribute__((aligned(64)));
        struct br_out e = {.bias = bias ? bias : zeros, .res = res, .y = y, .ycb = p->y_cb * (int64_t)sizeof(float),
                           .act = p->act, .lo = p->lo, .hi = p->hi};
        for (int t = 0; t + NN_BCONV_R <= npx; t += NN_BCONV_R) {
            const float *xr[NN_BCONV_R];
            for (int i = 0; i < NN_BCONV_R; i++)
                xr[i] = x + (t + i) * VL;
            bconv_out_6x4(w, p->otab, p->ntab, xr, &e);
            e.y += NN_BCONV_R * VL;
            if (e.res != NULL)
                e.res += NN_BCONV_R * VL;
        }
        return;
    }
    float sums[24 * VL] __attribute__((aligned(64)));
    if (vg == 2)
        bconv_red_12x2(w, p->otab, p->ntab, x, sums);
    else
        bconv_red_24x1(w, p->otab, p->ntab, x, sums);
    vf lo = vset(p->lo), hi = vset(p->hi);
    if (p->y_px == VL && npx * vg == NN_BCONV_WIDE) {
        if (vg == 2)
            wide_out_act(2, p, sums, bias, res, y, lo, hi);
        else
            wide_out_act(1, p, sums, bias, res, y, lo, hi);
        return;
    }
    for (int v = 0; v < vg; v++) {
        vf bv = bias ? vld(bias + v * VL) : vset(0.0f);
        for (int i = 0; i < npx; i++)
            bconv_put(p, vld(sums + (i * vg + v) * VL) + bv, v, i, res, y, lo, hi);
    }
}

/* kern.h, nn_bconv_sec_fn */
static void bconv_sec(const struct nn_bconv *p, const float *x, const int64_t *xoff, int64_t e0, int64_t e1,
                      const float *w, float *acc, const float *bias, const float *res, float *y, const void *pf)
{
    const float *xr[NN_BCONV_R];
    for (int i = 0; i < NN_BCONV_R; i++)
        xr[i] = x + xoff[i];
    if (y == NULL) {
        bconv_sec_6x4(w, p->otab + e0, e1 - e0, xr, acc, pf);
        return;
    }
    static const float zeros[4 * VL] __attribute__((aligned(64)));
    struct br_out e = {.bias = bias ? bias : zeros, .res = res, .y = y, .ycb = p->y_cb * (int64_t)sizeof(float),
                       .act = p->act, .lo = p->lo, .hi = p->hi, .acc = acc};
    bconv_secout_6x4(w, p->otab + e0, e1 - e0, xr, &e, pf);
}

#define BCONV_INST(R, V)                                                                                         \
    static void bconv_##R##_##V(const struct nn_bconv *p, const float *x, const int64_t *xoff, int r,           \
                                const float *w, int vg, const float *bias, const float *res, float *y)          \
    {                                                                                                            \
        (void)r;                                                                                                 \
        (void)vg;                                                                                                \
        bconv_gen(R, V, p, x, xoff, w, bias, res, y);                                                            \
    }
#define BCONV_ROW(R) BCONV_INST(R, 1) BCONV_INST(R, 2) BCONV_INST(R, 3) BCONV_INST(R, 4)
#define BCONV_FNS(R) {bconv_##R##_1, bconv_##R##_2, bconv_##R##_3, bconv_##R##_4}
BCONV_ROW(1)
BCONV_ROW(2)
BCONV_ROW(3)
BCONV_ROW(4)
BCONV_ROW(5)
BCONV_ROW(6)

static void bconv(const struct nn_bconv *p, const float *x, const int64_t *xoff, int r, const float *w, int vg,
                  const float *bias, const float *res, float *y)
{
    static const nn_bconv_fn fns[NN_BCONV_R][NN_BCONV_V] = {BCONV_FNS(1), BCONV_FNS(2), BCONV_FNS(3),
                                                              BCONV_FNS(4), BCONV_FNS(5), BCONV_FNS(6)};
    fns[r - 1][vg - 1](p, x, xoff, r, w, vg, bias, res, y);
}

/* max as the reference pool has it: NaN wins */
static inline vf vmax_nan(vf acc, vf v)
{
    __mmask16 take = _mm512_cmp_ps_mask((__m512)v, (__m512)acc, _CMP_GT_OQ) |
                     _mm512_cmp_ps_mask((__m512)v, (__m512)v, _CMP_UNORD_Q);
    return (vf)_mm512_mask_blend_ps(take, (__m512)acc, (__m512)v);
}

/* One output row of a blocked MaxPool / AveragePool: per window, the
 * column sums over its rows first, then across the columns, the reference
 * kernel's order (kernels/fast.c, pool_task). */
static void bpool(const struct nn_bpool *p, const float *x, int64_t ky0, int64_t ky1, float *y)
{
    int64_t rows = ky1 - ky0;
    for (int64_t ox = 0; ox < p->ow; ox++) {
        vf acc = vset(p->is_max ? -INFINITY : 0.0f);
        int64_t cnt = 0;
        for (int64_t kx = 0; kx < p->kw; kx++) {
            int64_t ix = ox * p->sw - p->pl + kx * p->dw;
            if (ix < 0 || ix >= p->iw)
                continue;
            const float *c = x + ix * VL;
            vf col = vld(c);
            for (int64_t ky = 1; ky < rows; ky++) {
                vf v = vld(c + ky * p->dh * p->iw * VL);
                col = p->is_max ? vmax_nan(col, v) : col + v;
            }
            acc = p->is_max ? vmax_nan(acc, col) : acc + col;
            cnt++;
        }
        if (rows == 0)
            acc = vset(p->is_max ? -INFINITY : 0.0f);
        else if (!p->is_max)
            acc = acc / vset(p->include_pad ? (float)p->kh_all : (cnt ? (float)(cnt * rows) : 1.0f));
        if (!p->is_max && rows > 0 && cnt == 0 && !p->include_pad)
            acc = vset(0.0f);
        vst(y + ox * VL, acc);
    }
}
/* A global pool of one blocked channel block (sp pixels of 16 floats)
 * into y[16]: each lane summed (or maxed) pixel by pixel from 0 (or
 * -inf), the reference kernel's order; max as the reference has it, a
 * NaN never taken (v > acc). */
static void bgpool(const float *x, int64_t sp, bool is_max, float *y)
{
    vf acc = vset(is_max ? -INFINITY : 0.0f);
    if (is_max)
        for (int64_t i = 0; i < sp; i++)
            acc = (vf)_mm512_max_ps((__m512)vld(x + i * VL), (__m512)acc);
    else
        for (int64_t i = 0; i < sp; i++)
            acc += vld(x + i * VL);
    vst(y, acc);
}
/* A blocked depthwise convolution: straight from the input plane, four
 * output pixels at a time (four independent FMA chains) where the whole
 * window lies inside it, one pixel with the window clipped at the edges
 * (no padded copy: for the large maps the copy cost as much as the
 * products). */
static inline vf bdw_edge(const struct nn_bdw *p, const float *x, const float *w, vf acc, int64_t oy, int64_t ox)
{
    for (int ky = 0; ky < p->d.kh; ky++) {
        int64_t iy = oy * p->d.sh - p->pt + (int64_t)ky * p->d.dh;
        if (iy < 0 || iy >= p->ih)
            continue;
        for (int kx = 0; kx < p->d.kw; kx++) {
            int64_t ix = ox * p->d.sw - p->pl + (int64_t)kx * p->d.dw;
            if (ix >= 0 && ix < p->d.xw)
                acc += vld(w + (ky * p->d.kw + kx) * VL) * vld(x + (iy * p->d.xw + ix) * VL);
        }
    }
    return acc;
}

/* Outputs [ox, b) of one row of a 3x3, dilation-1 depthwise window with
 * stride S whose columns are inside the plane, NP at a time (xr: input
 * row iy0 + ky0 at column -pl; window rows [ky0, ky0 + nky) inside the
 * plane, the others zero padding: FULL means all three, the weights then
 * in registers); taps summed in the reference's order. Returns where it
 * stopped (fewer than NP left). */
static inline __attribute__((always_inline)) int64_t bdw3(const int S, const int NP, const bool FULL,
                                                         const struct nn_bdw *p, const float *xr, const vf *wv,
                                                         int ky0, int nky, vf bv, const float *rr, float *yr,
                                                         int64_t ox, int64_t b, vf lo, vf hi)
{
    int64_t xw = p->d.xw * VL;
    if (FULL)
        ky0 = 0, nky = 3;
    for (; ox + NP <= b; ox += NP) {
        vf a[8];
#pragma GCC unroll 8
        for (int j = 0; j < NP; j++)
            a[j] = bv;
        const float *q = xr + (ox * S - p->pl) * VL;
#pragma GCC unroll 3
        for (int ky = 0; ky < 3; ky++) {
            if (ky >= nky)
                break;
            const float *row = q + ky * xw; /* one pointer a row: constant offsets from it */
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) {
                vf wk = wv[(ky0 + ky) * 3 + kx];
#pragma GCC unroll 8
                for (int j = 0; j < NP; j++)
                    a[j] += wk * vld(row + (j * S + kx) * VL);
            }
        }
#pragma GCC unroll 8
        for (int j = 0; j < NP; j++) {
            if (rr)
                a[j] += vld(rr + (ox + j) * VL);
            vst(yr + (ox + j) * VL, vact(a[j], p->act, lo, hi));
        }
    }
    return ox;
}

/* bdw3's last n < 8 outputs of a run, as one group of n sums. */
static inline __attribute__((always_inline)) void bdw3_tail(const int S, int n, const struct nn_bdw *p,
                                                           const float *xr, const vf *wv, vf bv, const float *rr,
                                                           float *yr, int64_t ox, vf lo, vf hi)
{
    switch (n) {
    case 7: bdw3(S, 7, true, p, xr, wv, 0, 3, bv, rr, yr, ox, ox + 7, lo, hi); break;
    case 6: bdw3(S, 6, true, p, xr, wv, 0, 3, bv, rr, yr, ox, ox + 6, lo, hi); break;
    case 5: bdw3(S, 5, true, p, xr, wv, 0, 3, bv, rr, yr, ox, ox + 5, lo, hi); break;
    case 4: bdw3(S, 4, true, p, xr, wv, 0, 3, bv, rr, yr, ox, ox + 4, lo, hi); break;
    case 3: bdw3(S, 3, true, p, xr, wv, 0, 3, bv, rr, yr, ox, ox + 3, lo, hi); break;
    case 2: bdw3(S, 2, true, p, xr, wv, 0, 3, bv, rr, yr, ox, ox + 2, lo, hi); break;
    case 1: bdw3(S, 1, true, p, xr, wv, 0, 3, bv, rr, yr, ox, ox + 1, lo, hi); break;
    default: break;
    }
}

/* A small plane (mobilenet's 14x14 and 7x7 maps) is mostly edges, which
 * bdw_edge takes one output at a time: 7x7 planes ran at a quarter of the
 * FMA peak. Such a plane at stride 1 is copied with its zero padding into
 * a buffer on the stack (at most BDW_PAD_MAX pixels), and every output
 * row is then one run of whole windows. */
#define BDW_PAD_MAX 400
static inline __attribute__((always_inline)) void bdw3_small(const int S, const struct nn_bdw *p, const float *x,
                                                            const vf w3[9], vf bv, const float *res, float *y,
                                                            int64_t oy0, int64_t oy1, int64_t pw, vf lo, vf hi)
{
    float buf[BDW_PAD_MAX * VL] __attribute__((aligned(64)));
    /* rows [r0, r1) of the padded plane hold input rows r - pt */
    int64_t r0 = oy0 * p->d.sh, r1 = (oy1 - 1) * p->d.sh + 3;
    for (int64_t r = r0; r < r1; r++) {
        float *b = buf + r * pw * VL;
        int64_t iy = r - p->pt, c = 0;
        /* columns [pl, c1) hold the input row's [0, c1 - pl) */
        int64_t c1 = iy >= 0 && iy < p->ih ? (p->pl + p->d.xw < pw ? p->pl + p->d.xw : pw) : 0;
        for (; c < p->pl && c < pw; c++)
            vst(b + c * VL, vset(0.0f));
        for (; c < c1; c++)
            vst(b + c * VL, vld(x + (iy * p->d.xw + c - p->pl) * VL));
        for (; c < pw; c++)
            vst(b + c * VL, vset(0.0f));
    }
    struct nn_bdw q = *p;
    q.d.xw = pw;
    q.pl = 0;
    int64_t ow = q.d.ow;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        const float *xr = buf + oy * q.d.sh * pw * VL;
        float *yr = y + oy * ow * VL;
        const float *rr = res ? res + oy * ow * VL : NULL;
        int64_t ox = bdw3(S, 8, true, &q, xr, w3, 0, 3, bv, rr, yr, 0, ow, lo, hi);
        bdw3_tail(S, (int)(ow - ox), &q, xr, w3, bv, rr, yr, ox, lo, hi);
    }
}

/* One output row oy of a 3x3, dilation-1, stride-S depthwise window:
 * the edge columns (before in0, from in1 on) through bdw_edge, the rest
 * in bdw3 (rows partly outside the plane: only the taps inside). */
static inline __attribute__((always_inline)) void bdw3_row(const int S, const struct nn_bdw *p, const float *x,
                                                          const float *w, const vf w3[9], vf bv, const float *rr,
                                                          float *yr, int64_t oy, int64_t in0, int64_t in1, vf lo,
                                                          vf hi)
{
    int64_t iy0 = oy * p->d.sh - p->pt;
    int ky0 = iy0 < 0 ? (int)-iy0 : 0, ky1 = p->ih - iy0 < 3 ? (int)(p->ih - iy0) : 3;
    if (ky0 >= ky1)
        in0 = in1 = p->d.ow; /* no row of the window inside: edges (bias only) */
    for (int64_t ox = 0; ox < p->d.ow; ox++) {
        if (ox == in0) {
            const float *xr = x + (iy0 + ky0) * p->d.xw * VL;
            if (ky0 == 0 && ky1 == 3) {
                ox = bdw3(S, 8, true, p, xr, w3, 0, 3, bv, rr, yr, ox, in1, lo, hi);
                bdw3_tail(S, (int)(in1 - ox), p, xr, w3, bv, rr, yr, ox, lo, hi);
                ox = in1;
            } else {
                ox = bdw3(S, 4, false, p, xr, w3, ky0, ky1 - ky0, bv, rr, yr, ox, in1, lo, hi);
                ox = bdw3(S, 1, false, p, xr, w3, ky0, ky1 - ky0, bv, rr, yr, ox, in1, lo, hi);
            }
            if (ox >= p->d.ow)
                break;
        }
        vf t = bdw_edge(p, x, w, bv, oy, ox);
        if (rr)
            t += vld(rr + ox * VL);
        vst(yr + ox * VL, vact(t, p->act, lo, hi));
    }
}

static void bdw(const struct nn_bdw *p, const float *x, const float *w, const float *bias, const float *res, float *y,
                int64_t oy0, int64_t oy1)
{
    bool k3 = p->d.kh == 3 && p->d.kw == 3 && p->d.dh == 1 && p->d.dw == 1 && (p->d.sw == 1 || p->d.sw == 2);
    vf w3[9];
    for (int q = 0; q < 9; q++)
        w3[q] = k3 ? vld(w + q * VL) : vset(0.0f);
    vf bv = bias ? vld(bias) : vset(0.0f), lo = vset(p->lo), hi = vset(p->hi);
    int64_t sx = (int64_t)p->d.sw * VL;
    /* ox in [in0, in1): the window's columns all inside the row */
    int64_t in0 = p->pl > 0 ? (p->pl + p->d.sw - 1) / p->d.sw : 0;
    int64_t lastx = p->d.xw - 1 + p->pl - (int64_t)(p->d.kw - 1) * p->d.dw;
    int64_t in1 = lastx < 0 ? 0 : lastx / p->d.sw + 1;
    if (in1 > p->d.ow)
        in1 = p->d.ow;
    if (in0 > in1)
        in0 = in1;
    /* (at stride 2 the copy, 15x15 for 7x7 outputs, cost more than the
     * edges: 14x14 planes 15.5-21.8 against 14.1 us) */
    int64_t ph = (p->d.oh - 1) * p->d.sh + 3, pw = p->d.ow + 2;
    if (k3 && p->d.sw == 1 && oy0 < oy1 && ph * pw <= BDW_PAD_MAX) {
        bdw3_small(1, p, x, w3, bv, res, y, oy0, oy1, pw, lo, hi);
        return;
    }
    for (int64_t oy = oy0; oy < oy1; oy++) {
        float *yr = y + oy * p->d.ow * VL;
        const float *rr = res ? res + oy * p->d.ow * VL : NULL;
        if (k3) {
            if (p->d.sw == 1)
                bdw3_row(1, p, x, w, w3, bv, rr, yr, oy, in0, in1, lo, hi);
            else
                bdw3_row(2, p, x, w, w3, bv, rr, yr, oy, in0, in1, lo, hi);
            continue;
        }
        int64_t iy0 = oy * p->d.sh - p->pt;
        bool rows_in = iy0 >= 0 && iy0 + (int64_t)(p->d.kh - 1) * p->d.dh < p->ih;
        int64_t a = rows_in ? in0 : p->d.ow, b = rows_in ? in1 : p->d.ow;
        for (int64_t ox = 0; ox < a; ox++) {
            vf t = bdw_edge(p, x, w, bv, oy, ox);
            if (rr)
                t += vld(rr + ox * VL);
            vst(yr + ox * VL, vact(t, p->act, lo, hi));
        }
        const float *xr = x + iy0 * p->d.xw * VL;
        int64_t ox = a;
        for (; ox + 4 <= b; ox += 4) {
            vf a0 = bv, a1 = bv, a2 = bv, a3 = bv;
            for (int ky = 0; ky < p->d.kh; ky++)
                for (int kx = 0; kx < p->d.kw; kx++) {
                    const float *q = xr + (ky * p->d.dh * p->d.xw + ox * p->d.sw - p->pl + kx * p->d.dw) * VL;
                    vf wv = vld(w + (ky * p->d.kw + kx) * VL);
                    a0 += wv * vld(q);
                    a1 += wv * vld(q + sx);
                    a2 += wv * vld(q + 2 * sx);
                    a3 += wv * vld(q + 3 * sx);
                }
            if (rr) {
                a0 += vld(rr + ox * VL);
                a1 += vld(rr + (ox + 1) * VL);
                a2 += vld(rr + (ox + 2) * VL);
                a3 += vld(rr + (ox + 3) * VL);
            }
            vst(yr + ox * VL, vact(a0, p->act, lo, hi));
            vst(yr + (ox + 1) * VL, vact(a1, p->act, lo, hi));
            vst(yr + (ox + 2) * VL, vact(a2, p->act, lo, hi));
            vst(yr + (ox + 3) * VL, vact(a3, p->act, lo, hi));
        }
        for (; ox < p->d.ow; ox++) { /* the interior's last few, then the right edge */
            vf t = ox < b ? bv : bdw_edge(p, x, w, bv, oy, ox);
            if (ox < b)
                for (int ky = 0; ky < p->d.kh; ky++)
                    for (int kx = 0; kx < p->d.kw; kx++) {
                        int64_t col = ox * p->d.sw - p->pl + kx * p->d.dw;
                        t += vld(w + (ky * p->d.kw + kx) * VL) * vld(xr + (ky * p->d.dh * p->d.xw + col) * VL);
                    }
            if (rr)
                t += vld(rr + ox * VL);
            vst(yr + ox * VL, vact(t, p->act, lo, hi));
        }
    }
}

/* Winograd F(4x4, 3x3), points 0, +-1, +-2 (kernels/wino.c has the
 * matrices): B^T on six vectors, A^T on six vectors to four. */
static inline void bt6v(const vf d[6], vf o[6])
{
    o[0] = vset(4.0f) * d[0] - vset(5.0f) * d[2] + d[4];
    o[1] = vset(-4.0f) * (d[1] + d[2]) + d[3] + d[4];
    o[2] = vset(4.0f) * (d[1] - d[2]) - d[3] + d[4];
    o[3] = vset(2.0f) * (d[3] - d[1]) - d[2] + d[4];
    o[4] = vset(2.0f) * (d[1] - d[3]) - d[2] + d[4];
    o[5] = vset(4.0f) * d[1] - vset(5.0f) * d[3] + d[5];
}

static inline void at6v(const vf z[6], vf o[4])
{
    vf s12 = z[1] + z[2], d12 = z[1] - z[2], s34 = z[3] + z[4], d34 = z[3] - z[4];
    o[0] = z[0] + s12 + s34;
    o[1] = d12 + vset(2.0f) * d34;
    o[2] = s12 + vset(4.0f) * s34;
    o[3] = d12 + vset(8.0f) * d34 + z[5];
}

/* Winograd F(2x2, 3x3), points 0, +-1: B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0;
 * 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1] (kernels/wino.c has G). */
static inline void bt4v(const vf d[4], vf o[4])
{
    o[0] = d[0] - d[2];
    o[1] = d[1] + d[2];
    o[2] = d[2] - d[1];
    o[3] = d[1] - d[3];
}

static inline void at4v(const vf z[4], vf o[2])
{
    o[0] = z[0] + z[1] + z[2];
    o[1] = z[1] - z[2] - z[3];
}

/* Winograd F(5x5, 3x3), points 0, 1, -1, 2, -2, 1/2 and infinity
 * (kernels/wino.c has G, its rows divided by the factors that made these
 * rows of B^T integers): B^T on seven vectors, A^T on seven to five. */
static inline void bt7v(const vf d[7], vf o[7])
{
    vf d15 = d[1] - d[5], d24 = d[2] - d[4];
    o[0] = vset(-4.0f) * d[0] + vset(8.0f) * d[1] + vset(5.0f) * d[2] - vset(10.0f) * d[3] - d[4] + vset(2.0f) * d[5];
    o[1] = vset(4.0f) * d[1] - vset(4.0f) * d[2] - vset(9.0f) * d[3] + d[4] + vset(2.0f) * d[5];
    o[2] = vset(-4.0f) * d[1] + vset(12.0f) * d[2] - vset(7.0f) * d[3] - vset(3.0f) * d[4] + vset(2.0f) * d[5];
    o[3] = vset(2.0f) * d[1] - vset(3.0f) * d[2] - vset(4.0f) * d[3] + vset(3.0f) * d[4] + vset(2.0f) * d[5];
    o[4] = vset(-2.0f) * d15 + vset(5.0f) * d24;
    o[5] = vset(4.0f) * d[1] - vset(5.0f) * d[3] + d[5];
    o[6] = vset(-4.0f) * d[1] + vset(8.0f) * d[2] + vset(5.0f) * d[3] - vset(10.0f) * d[4] - d[5] + vset(2.0f) * d[6];
}

static inline void at7v(const vf z[7], vf o[5])
{
    vf s12 = z[1] + z[2], d12 = z[1] - z[2], s34 = z[3] + z[4], d34 = z[3] - z[4];
    o[0] = z[0] + s12 + s34 + z[5];
    o[1] = d12 + vset(2.0f) * d34 + vset(0.5f) * z[5];
    o[2] = s12 + vset(4.0f) * s34 + vset(0.25f) * z[5];
    o[3] = d12 + vset(8.0f) * d34 + vset(0.125f) * z[5];
    o[4] = s12 + vset(16.0f) * s34 + vset(0.0625f) * z[5] + z[6];
}

/* Stride-2 3x3 in 2x2 output tiles (kernels/wino.c, nn_wino_gs2): a
 * 5-sample patch d[0..4] (the tile's outputs read d[0..2] and d[2..4]),
 * its even samples d[1], d[3] (the middle tap's, once each) and its odd
 * ones through F(2, 2) for the outer taps: 5 points where the direct
 * convolution takes 6 products, adds only. */
static inline void bt5sv(const vf d[5], vf o[5])
{
    o[0] = d[0] - d[2];
    o[1] = d[2];
    o[2] = d[4] - d[2];
    o[3] = d[1];
    o[4] = d[3];
}

/* (its A^T: y0 = z0 + z1 + z3, y1 = z1 + z2 + z4) */
static inline void at5sv(const vf z[5], vf o[2])
{
    o[0] = z[0] + z[1] + z[3];
    o[1] = z[1] + z[2] + z[4];
}

/* The input transform of an n x n patch (n 6: F(4x4), 4: F(2x2), 7:
 * F(5x5), 5: stride-2 2x2): B^T over the rows of the patch (column by
 * column), then over columns. */
static inline __attribute__((always_inline)) void bwin_in_n(const int n, const float *x, int64_t xrow, float *v,
                                                           int64_t vs)
{
    vf t[7][7];
    for (int b = 0; b < n; b++) {
        vf d[7], o[7];
        for (int a = 0; a < n; a++)
            d[a] = vld(x + a * xrow + b * VL);
        if (n == 7)
            bt7v(d, o);
        else if (n == 6)
            bt6v(d, o);
        else if (n == 5)
            bt5sv(d, o);
        else
            bt4v(d, o);
        for (int a = 0; a < n; a++)
            t[a][b] = o[a];
    }
    for (int a = 0; a < n; a++) {
        vf o[7];
        if (n == 7)
            bt7v(t[a], o);
        else if (n == 6)
            bt6v(t[a], o);
        else if (n == 5)
            bt5sv(t[a], o);
        else
            bt4v(t[a], o);
        for (int b = 0; b < n; b++)
            vst(v + (a * n + b) * vs, o[b]);
    }
}

static void bwin_in(const float *x, int64_t xrow, float *v, int64_t vs)
{
    bwin_in_n(6, x, xrow, v, vs);
}

/* The output transform of n x n points into a k x k tile (n 6, k 4:
 * F(4x4); n 7, k 5: F(5x5); n 4, k 2: F(2x2); n 5, k 2: stride-2 2x2):
 * A^T over the rows, then over the columns, with the epilogue; rows x
 * cols of the tile kept. */
static inline __attribute__((always_inline)) void bwin_out_n(const int n, const int k, const float *m, int64_t ms,
                                                            const float *bias, const float *res, float *y,
                                                            int64_t yrow, int rows, int cols, int act, float lo,
                                                            float hi)
{
    vf h[7][5];
    for (int a = 0; a < n; a++) {
        vf z[7];
        for (int b = 0; b < n; b++)
            z[b] = vld(m + (a * n + b) * ms);
        if (n == 7)
            at7v(z, h[a]);
        else if (n == 6)
            at6v(z, h[a]);
        else if (n == 5)
            at5sv(z, h[a]);
        else
            at4v(z, h[a]);
    }
    vf bv = bias ? vld(bias) : vset(0.0f), vlo = vset(lo), vhi = vset(hi);
    for (int b = 0; b < cols && b < k; b++) {
        vf z[7], o[5];
        for (int a = 0; a < n; a++)
            z[a] = h[a][b];
        if (n == 7)
            at7v(z, o);
        else if (n == 6)
            at6v(z, o);
        else if (n == 5)
            at5sv(z, o);
        else
            at4v(z, o);
        for (int a = 0; a < rows && a < k; a++) {
            vf t = o[a] + bv;
            if (res)
                t += vld(res + a * yrow + b * VL);
            vst(y + a * yrow + b * VL, vact(t, act, vlo, vhi));
        }
    }
}

static void bwin_out(const float *m, int64_t ms, const float *bias, const float *res, float *y, int64_t yrow, int rows,
                     int cols, int act, float lo, float hi)
{
    bwin_out_n(6, 4, m, ms, bias, res, y, yrow, rows, cols, act, lo, hi);
}

static void bwin_in2(const float *x, int64_t xrow, float *v, int64_t vs)
{
    bwin_in_n(4, x, xrow, v, vs);
}

static void bwin_out2(const float *m, int64_t ms, const float *bias, const float *res, float *y, int64_t yrow,
                      int rows, int cols, int act, float lo, float hi)
{
    bwin_out_n(4, 2, m, ms, bias, res, y, yrow, rows, cols, act, lo, hi);
}

static void bwin_in5(const float *x, int64_t xrow, float *v, int64_t vs)
{
    bwin_in_n(7, x, xrow, v, vs);
}

static void bwin_out5(const float *m, int64_t ms, const float *bias, const float *res, float *y, int64_t yrow,
                      int rows, int cols, int act, float lo, float hi)
{
    bwin_out_n(7, 5, m, ms, bias, res, y, yrow, rows, cols, act, lo, hi);
}

static void bwin_in_s2(const float *x, int64_t xrow, float *v, int64_t vs)
{
    bwin_in_n(5, x, xrow, v, vs);
}

static void bwin_out_s2(const float *m, int64_t ms, const float *bias, const float *res, float *y, int64_t yrow,
                        int rows, int cols, int act, float lo, float hi)
{
    bwin_out_n(5, 2, m, ms, bias, res, y, yrow, rows, cols, act, lo, hi);
}

/* kern.h, nn_bwin_u_fn */
static void bwin_u(const float *g, int64_t nk, const float coef[9], float *u)
{
    vf c[9];
    int tap[9], nt = 0;
    for (int t = 0; t < 9; t++)
        if (coef[t] != 0.0f) {
            c[nt] = vset(coef[t]);
            tap[nt++] = t * 64;
        }
    if (nt == 0) {
        memset(u, 0, (size_t)(nk * 64) * sizeof(float));
        return;
    }
    for (int64_t k = 0; k < nk; k++)
        for (int q = 0; q < 4; q++) {
            const float *p = g + k * 9 * 64 + q * VL;
            vf s = c[0] * vld(p + tap[0]);
            for (int t = 1; t < nt; t++)
                s += c[t] * vld(p + tap[t]);
            vst(u + k * 64 + q * VL, s);
        }
}
#define ISA_BCONV bconv
#define ISA_BCONV_WIDE bconv_wide
#define ISA_BCONV_SEC bconv_sec
#define ISA_BPOOL bpool
#define ISA_BGPOOL bgpool
#define ISA_BDW bdw
#define ISA_BWIN_IN bwin_in
#define ISA_BWIN_OUT bwin_out
#define ISA_BWIN_IN2 bwin_in2
#define ISA_BWIN_OUT2 bwin_out2
#define ISA_BWIN_IN5 bwin_in5
#define ISA_BWIN_OUT5 bwin_out5
#define ISA_BWIN_IN_S2 bwin_in_s2
#define ISA_BWIN_OUT_S2 bwin_out_s2
#define ISA_BWIN_U bwin_u
#else
#define ISA_BCONV NULL
#define ISA_BCONV_WIDE NULL
#define ISA_BCONV_SEC NULL
#define ISA_BPOOL NULL
#define ISA_BGPOOL NULL
#define ISA_BDW NULL
#define ISA_BWIN_IN NULL
#define ISA_BWIN_OUT NULL
#define ISA_BWIN_IN2 NULL
#define ISA_BWIN_OUT2 NULL
#define ISA_BWIN_IN5 NULL
#define ISA_BWIN_OUT5 NULL
#define ISA_BWIN_IN_S2 NULL
#define ISA_BWIN_OUT_S2 NULL
#define ISA_BWIN_U NULL
#endif

#include "../wino_run.h"

const struct nn_isa ISA_SYM = {
    .name = ISA_NAME, .id = ISA_ID, .mr = MR, .nr = NR, .ukr = ukr, .gemv = gemv, .dw = dw, .vl = VL, .wino_task = wino_task,
    .gather = gather, .pack_a = ISA_PACK_A, .bconv = ISA_BCONV, .bconv_wide = ISA_BCONV_WIDE, .bconv_sec = ISA_BCONV_SEC, .bpool = ISA_BPOOL, .bgpool = ISA_BGPOOL, .bdw = ISA_BDW, .bwin_in = ISA_BWIN_IN,
    .bwin_out = ISA_BWIN_OUT, .bwin_in2 = ISA_BWIN_IN2, .bwin_out2 = ISA_BWIN_OUT2,
    .bwin_in5 = ISA_BWIN_IN5, .bwin_out5 = ISA_BWIN_OUT5, .bwin_in_s2 = ISA_BWIN_IN_S2,
    .bwin_out_s2 = ISA_BWIN_OUT_S2, .bwin_u = ISA_BWIN_U,
};
