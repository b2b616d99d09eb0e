/*
 * avx512bf16.c — the bf16 convolution kernels (kern.h, struct nn_hkern):
 * the blocked direct convolution's tiles with vdpbf16ps, a pair of input
 * channels a step, float sums. Built with the AVX-512 flags plus
 * -mavx512bf16 (src/nn/CMakeLists.txt); nn_hkern_get (isa.c) hands them
 * out only on CPUs that have AVX512_BF16 and the AVX-512 kernels.
 *
 * The main tiles are in assembly as the float ones are (tmpl.h): zmm0-23
 * hold the sums, pixel i's block v in zmm(4 i + v) (br_asm.h), zmm24-27 a
 * step's weights, zmm28-31 the broadcast channel pairs; a tab entry is 8
 * steps of two channels (the float kernel's 16 of one), its weights half
 * the bytes. Other tile shapes run through the intrinsics of hconv_gen.
 *
 * Trusts: the plan (kernels/fast.c) for otab_step 16, tile bounds and the
 * bf16 copies' extents.
 */
#include <immintrin.h>
#include <string.h>

#include "../kern.h"
#include "br_asm.h"
#include "lp_put.h"


#define BH_STEPS "0,1,2,3,4,5,6,7"
#define BH_STEP6x4 BL_STEP6x4("vdpbf16ps")

/* the 6x4 tile's whole reduction, the sums to acc[4 i + v][16] */
static void hconv_red_6x4(const uint16_t *w, const int64_t *tab, int64_t n, const uint16_t *const *xr, float *acc)
{
    __asm__ volatile(BR_LOOP(BH_STEPS, BH_STEP6x4, "2048") BR_SAVE_ALL BR_OPERANDS);
}

/* the same with the epilogue in registers into a blocked output */
static void hconv_out_6x4(const uint16_t *w, const int64_t *tab, int64_t n, const uint16_t *const *xr,
                          const struct br_out *e)
{
    const uint16_t *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    __asm__ volatile(BR_LOOP(BH_STEPS, BH_STEP6x4, "2048") BR_EPI
                     : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n), [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2),
                       [x3] "+r"(x3), [x4] "+r"(x4), [x5] "+r"(x5)
                     : [e] "r"(e)
                     : BR_CLOBBERS);
}

/* 6 pixels x 2 blocks (groups of 32 output channels): zmm0-11, sums to
 * acc[2 i + v][16] */
#define BH_STEP6x2 BL_STEP6x2("vdpbf16ps")
static void hconv_red_6x2(const uint16_t *w, const int64_t *tab, int64_t n, const uint16_t *const *xr, float *acc)
{
    __asm__ volatile(BR_ALL12(BR_ZERO) "1:\n\t"
                                       "movq (%[tab]), %%rax\n\t"
                                       "addq $8, %[tab]\n\t"
                                       ".irp ic," BH_STEPS "\n\t" BH_STEP6x2 ".endr\n\t"
                                       "addq $1024, %[w]\n\t"
                                       "decq %[n]\n\t"
                                       "jnz 1b\n\t" BR_ALL12(BR_SAVE) BR_OPERANDS);
}

/* a section of the 6x4 tile's reduction (kern.h, nn_hconv_sec_fn) */
static void hconv_sec_6x4(const uint16_t *w, const int64_t *tab, int64_t n, const uint16_t *const *xr, float *acc,
                          const char *pf)
{
    __asm__ volatile("movq %[acc], %%rax\n\t" BR_LOOP_SEC_GEN(BH_STEPS, BH_STEP6x4, "2048") BR_SAVE_ALL
                     : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n), [pf] "+r"(pf)
                     : [x0] "r"(xr[0]), [x1] "r"(xr[1]), [x2] "r"(xr[2]), [x3] "r"(xr[3]), [x4] "r"(xr[4]),
                       [x5] "r"(xr[5]), [acc] "r"(acc)
                     : BR_CLOBBERS);
}
static void hconv_secout_6x4(const uint16_t *w, const int64_t *tab, int64_t n, const uint16_t *const *xr,
                             const struct br_out *e, const char *pf)
{
    const uint16_t *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    __asm__ volatile("movq 48(%[e]), %%rax\n\t" BR_LOOP_SEC_GEN(BH_STEPS, BH_STEP6x4, "2048") BR_EPI
                     : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n), [pf] "+r"(pf), [x0] "+r"(x0), [x1] "+r"(x1),
                       [x2] "+r"(x2), [x3] "+r"(x3), [x4] "+r"(x4), [x5] "+r"(x5)
                     : [e] "r"(e)
                     : BR_CLOBBERS);
}

/* 1x1, stride 1: 12 or 24 consecutive pixels (32 bytes apart in the
 * copy) through one pointer, for vg 2 or 1; sums to acc[vg i + v][16] */
#define BH_WIDE_12x2 BL_WIDE_12x2("vdpbf16ps", "32")
#define BH_WIDE_24x1 BL_WIDE_24x1("vdpbf16ps", "32")
#define BH_FN_WIDE(name, step, wbytes)                                                                                 \
    static void name(const uint16_t *w, const int64_t *tab, int64_t n, const uint16_t *x, float *acc)                  \
    {                                                                                                                  \
        __asm__ volatile(BR_LOOP(BH_STEPS, step, wbytes) BR_SAVE_ALL                                                   \
                         : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n)                                                  \
                         : [x] "r"(x), [acc] "r"(acc)                                                                  \
                         : BR_CLOBBERS);                                                                               \
    }
BH_FN_WIDE(hconv_red_12x2, BH_WIDE_12x2, "1024")
BH_FN_WIDE(hconv_red_24x1, BH_WIDE_24x1, "512")


/* the epilogue of npx pixels x vg blocks of sums (pixel i's block v at
 * sums[vg i + v]) */
static void hput_sums(const struct nn_bconv *p, const float *sums, int npx, int vg, const float *bias,
                      const float *res, float *y)
{
    vf lo = vset(p->lo), hi = vset(p->hi);
    for (int v = 0; v < vg; v++) {
        vf bv = bias ? vld(bias + v * 16) : vset(0.0f);
        for (int i = 0; i < npx; i++)
            lp_put(p, vld(sums + (i * vg + v) * 16) + bv, v, i, res, y, lo, hi);
    }
}

/* Any R x V tile (R <= 6, V <= 4) with intrinsics. */
static inline __attribute__((always_inline)) void hconv_gen(const int R, const int V, const struct nn_bconv *p,
                                                           const uint16_t *x, const int64_t *xoff, const uint16_t *w,
                                                           const float *bias, const float *res, float *y)
{
    __m512 acc[NN_BCONV_R][NN_BCONV_V];
    const char *xr[NN_BCONV_R];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        xr[i] = (const char *)(x + xoff[i]);
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            acc[i][v] = _mm512_setzero_ps();
    }
    for (int64_t e = 0; e < p->ntab; e++) {
        int64_t o = p->otab[e];
#pragma GCC unroll 8
        for (int ip = 0; ip < 8; ip++) {
            __m512bh wv[NN_BCONV_V];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                wv[v] = (__m512bh)_mm512_loadu_si512((const void *)(w + (ip * V + v) * 32));
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                int32_t pair;
                memcpy(&pair, xr[i] + o + 4 * ip, sizeof(pair));
                __m512bh b = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    acc[i][v] = _mm512_dpbf16_ps(acc[i][v], b, wv[v]);
            }
        }
        w += 8 * V * 32;
    }
    vf lo = vset(p->lo), hi = vset(p->hi);
#pragma GCC unroll 4
    for (int v = 0; v < V; v++) {
        vf bv = bias ? vld(bias + v * 16) : vset(0.0f);
#pragma GCC unroll 8
        for (int i = 0; i < R; i++)
            lp_put(p, (vf)acc[i][v] + bv, v, i, res, y, lo, hi);
    }
}

#define HCONV_INST(R, V)                                                                                         \
    static void hconv_##R##_##V(const struct nn_bconv *p, const uint16_t *x, const int64_t *xoff,               \
                                const uint16_t *w, const float *bias, const float *res, float *y)               \
    {                                                                                                            \
        hconv_gen(R, V, p, x, xoff, w, bias, res, y);                                                            \
    }
#define HCONV_ROW(R) HCONV_INST(R, 1) HCONV_INST(R, 2) HCONV_INST(R, 3) HCONV_INST(R, 4)
#define HCONV_FNS(R) {hconv_##R##_1, hconv_##R##_2, hconv_##R##_3, hconv_##R##_4}
HCONV_ROW(1)
HCONV_ROW(2)
HCONV_ROW(3)
HCONV_ROW(4)
HCONV_ROW(5)
HCONV_ROW(6)
typedef void (*hconv_rv_fn)(const struct nn_bconv *p, const uint16_t *x, const int64_t *xoff, const uint16_t *w,
                            const float *bias, const float *res, float *y);

/* kern.h, nn_hconv_fn */
static void hconv(const struct nn_bconv *p, const uint16_t *x, const int64_t *xoff, int r, const uint16_t *w, int vg,
                  const float *bias, const float *res, float *y)
{
    static const hconv_rv_fn fns[NN_BCONV_R][NN_BCONV_V] = {HCONV_FNS(1), HCONV_FNS(2), HCONV_FNS(3),
                                                             HCONV_FNS(4), HCONV_FNS(5), HCONV_FNS(6)};
    if (r == NN_BCONV_R && (vg == 4 || vg == 2)) {
        const uint16_t *xr[NN_BCONV_R];
        for (int i = 0; i < NN_BCONV_R; i++)
            xr[i] = x + xoff[i];
        if (vg == 4 && p->y_px == 16) {
            struct br_out e = {.bias = bias ? bias : lp_zeros, .res = res, .y = y,
                               .ycb = p->y_cb * (int64_t)sizeof(float), .act = p->act, .lo = p->lo, .hi = p->hi};
            hconv_out_6x4(w, p->otab, p->ntab, xr, &e);
            return;
        }
        float sums[NN_BCONV_R * NN_BCONV_V * 16] __attribute__((aligned(64)));
        (vg == 4 ? hconv_red_6x4 : hconv_red_6x2)(w, p->otab, p->ntab, xr, sums);
        hput_sums(p, sums, NN_BCONV_R, vg, bias, res, y);
        return;
    }
    fns[r - 1][vg - 1](p, x, xoff, w, bias, res, y);
}

/* kern.h, nn_hconv_wide_fn */
static void hconv_wide(const struct nn_bconv *p, const uint16_t *x, int npx, const uint16_t *w, int vg,
                       const float *bias, const float *res, float *y)
{
    float sums[NN_BCONV_WIDE * 16] __attribute__((aligned(64)));
    (vg == 2 ? hconv_red_12x2 : hconv_red_24x1)(w, p->otab, p->ntab, x, sums);
    hput_sums(p, sums, npx, vg, bias, res, y);
}

/* kern.h, nn_hconv_sec_fn */
static void hconv_sec(const struct nn_bconv *p, const uint16_t *x, const int64_t *xoff, int64_t e0, int64_t e1,
                      const uint16_t *w, float *acc, const float *bias, const float *res, float *y, const void *pf)
{
    const uint16_t *xr[NN_BCONV_R];
    for (int i = 0; i < NN_BCONV_R; i++)
        xr[i] = x + xoff[i];
    if (y == NULL) {
        hconv_sec_6x4(w, p->otab + e0, e1 - e0, xr, acc, pf);
        return;
    }
    struct br_out e = {.bias = bias ? bias : lp_zeros, .res = res, .y = y, .ycb = p->y_cb * (int64_t)sizeof(float),
                       .act = p->act, .lo = p->lo, .hi = p->hi, .acc = acc};
    hconv_secout_6x4(w, p->otab + e0, e1 - e0, xr, &e, pf);
}

/* kern.h, struct nn_hkern's to_bf16 */
static void to_bf16(uint16_t *dst, const float *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512((void *)(dst + i), (__m512i)h);
    }
    for (; i < n; i++)
        dst[i] = nn_bf16(src[i]);
}

const struct nn_hkern nn_hkern_avx512bf16 = {.conv = hconv, .wide = hconv_wide, .sec = hconv_sec, .to_bf16 = to_bf16};
