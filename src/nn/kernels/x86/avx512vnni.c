/*
 * avx512vnni.c — the int8 convolution kernels (kern.h, struct nn_qkern):
 * the blocked direct convolution's tiles with vpdpbusd, four input
 * channels a step (unsigned 8-bit inputs times signed 8-bit weights,
 * 32-bit integer sums), then each output channel's sum times its scale
 * and on through the float epilogue. Built with the AVX-512 flags plus
 * -mavx512vnni (src/nn/CMakeLists.txt); nn_qkern_get (isa.c) hands them
 * out only on CPUs that have AVX512_VNNI and the AVX-512 kernels.
 *
 * The tiles are the bf16 ones' (br_asm.h, BL_*) with vpdpbusd: zmm0-23 the
 * sums, zmm24-27 a step's weights, zmm28-31 the broadcast channel quads;
 * a tab entry is 4 steps of four channels, 1 KiB of weights for 4 blocks.
 * Other tile shapes run through the intrinsics of qconv_gen.
 *
 * Trusts: the plan (kernels/fast.c) for otab_step 16, tile bounds, the
 * quantized copies' extents and the scales' length (whole blocks).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../kern.h"
#include "br_asm.h"
#include "lp_put.h"


#define BQ_OP "vpdpbusd"
#define BQ_STEPS "0,1,2,3"

static void qconv_red_6x4(const int8_t *w, const int64_t *tab, int64_t n, const uint8_t *const *xr, int32_t *acc)
{
    __asm__ volatile(BR_LOOP(BQ_STEPS, BL_STEP6x4(BQ_OP), "1024") BR_SAVE_ALL BR_OPERANDS);
}

/* the 6x4 tile with the epilogue in registers into a blocked output */
static void qconv_out_6x4(const int8_t *w, const int64_t *tab, int64_t n, const uint8_t *const *xr,
                          const struct br_out *e)
{
    const uint8_t *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    __asm__ volatile(BR_LOOP(BQ_STEPS, BL_STEP6x4(BQ_OP), "1024") BL_DEQ BR_EPI
                     : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n), [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2),
                       [x3] "+r"(x3), [x4] "+r"(x4), [x5] "+r"(x5)
                     : [e] "r"(e)
                     : BR_CLOBBERS);
}

static void qconv_red_6x2(const int8_t *w, const int64_t *tab, int64_t n, const uint8_t *const *xr, int32_t *acc)
{
    __asm__ volatile(BR_ALL12(BR_ZERO) "1:\n\t"
                                       "movq (%[tab]), %%rax\n\t"
                                       "addq $8, %[tab]\n\t"
                                       ".irp ic," BQ_STEPS "\n\t" BL_STEP6x2(BQ_OP) ".endr\n\t"
                                       "addq $512, %[w]\n\t"
                                       "decq %[n]\n\t"
                                       "jnz 1b\n\t" BR_ALL12(BR_SAVE) BR_OPERANDS);
}

/* a section of the 6x4 tile's reduction (kern.h, nn_qconv_sec_fn): the
 * integer sums carried in acc between sections */
static void qconv_sec_6x4(const int8_t *w, const int64_t *tab, int64_t n, const uint8_t *const *xr, int32_t *acc,
                          const char *pf)
{
    __asm__ volatile("movq %[acc], %%rax\n\t" BR_LOOP_SEC_GEN(BQ_STEPS, BL_STEP6x4(BQ_OP), "1024") BR_SAVE_ALL
                     : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n), [pf] "+r"(pf)
                     : [x0] "r"(xr[0]), [x1] "r"(xr[1]), [x2] "r"(xr[2]), [x3] "r"(xr[3]), [x4] "r"(xr[4]),
                       [x5] "r"(xr[5]), [acc] "r"(acc)
                     : BR_CLOBBERS);
}
static void qconv_secout_6x4(const int8_t *w, const int64_t *tab, int64_t n, const uint8_t *const *xr,
                             const struct br_out *e, const char *pf)
{
    const uint8_t *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    __asm__ volatile("movq 48(%[e]), %%rax\n\t" BR_LOOP_SEC_GEN(BQ_STEPS, BL_STEP6x4(BQ_OP), "1024") BL_DEQ BR_EPI
                     : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n), [pf] "+r"(pf), [x0] "+r"(x0), [x1] "+r"(x1),
                       [x2] "+r"(x2), [x3] "+r"(x3), [x4] "+r"(x4), [x5] "+r"(x5)
                     : [e] "r"(e)
                     : BR_CLOBBERS);
}

/* 1x1, stride 1: 12 or 24 consecutive pixels (16 bytes apart in the
 * copy) through one pointer, for vg 2 or 1; sums to acc[vg i + v][16] */
#define BQ_FN_WIDE(name, step, wbytes)                                                                                 \
    static void name(const int8_t *w, const int64_t *tab, int64_t n, const uint8_t *x, int32_t *acc)                   \
    {                                                                                                                  \
        __asm__ volatile(BR_LOOP(BQ_STEPS, step, wbytes) BR_SAVE_ALL                                                   \
                         : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n)                                                  \
                         : [x] "r"(x), [acc] "r"(acc)                                                                  \
                         : BR_CLOBBERS);                                                                               \
    }
BQ_FN_WIDE(qconv_red_12x2, BL_WIDE_12x2(BQ_OP, "16"), "512")
BQ_FN_WIDE(qconv_red_24x1, BL_WIDE_24x1(BQ_OP, "16"), "256")


static inline vf deq(__m512i s, const float *qs) { return (vf)_mm512_cvtepi32_ps(s) * vld(qs); }

/* the epilogue of npx pixels x vg blocks of integer sums (pixel i's block
 * v at sums[vg i + v]) */
static void qput_sums(const struct nn_bconv *p, const int32_t *sums, int npx, int vg, const float *qs,
                      const float *bias, const float *res, float *y)
{
    vf lo = vset(p->lo), hi = vset(p->hi);
    for (int v = 0; v < vg; v++) {
        vf bv = bias ? vld(bias + v * 16) : vset(0.0f);
        for (int i = 0; i < npx; i++)
            lp_put(p, deq(_mm512_loadu_si512((const void *)(sums + (i * vg + v) * 16)), qs + v * 16) + bv, v, i, res,
                 y, lo, hi);
    }
}

/* Any R x V tile (R <= 6, V <= 4) with intrinsics. */
static inline __attribute__((always_inline)) void qconv_gen(const int R, const int V, const struct nn_bconv *p,
                                                           const uint8_t *x, const int64_t *xoff, const int8_t *w,
                                                           const float *qs, const float *bias, const float *res,
                                                           float *y)
{
    __m512i acc[NN_BCONV_R][NN_BCONV_V];
    const uint8_t *xr[NN_BCONV_R];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        xr[i] = x + xoff[i];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            acc[i][v] = _mm512_setzero_si512();
    }
    for (int64_t e = 0; e < p->ntab; e++) {
        int64_t o = p->otab[e];
#pragma GCC unroll 4
        for (int iq = 0; iq < 4; iq++) {
            __m512i wv[NN_BCONV_V];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                wv[v] = _mm512_loadu_si512((const void *)(w + (iq * V + v) * 64));
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                int32_t quad;
                memcpy(&quad, xr[i] + o + 4 * iq, sizeof(quad));
                __m512i b = _mm512_set1_epi32(quad);
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], b, wv[v]);
            }
        }
        w += 4 * V * 64;
    }
    vf lo = vset(p->lo), hi = vset(p->hi);
#pragma GCC unroll 4
    for (int v = 0; v < V; v++) {
        vf bv = bias ? vld(bias + v * 16) : vset(0.0f);
#pragma GCC unroll 8
        for (int i = 0; i < R; i++)
            lp_put(p, deq(acc[i][v], qs + v * 16) + bv, v, i, res, y, lo, hi);
    }
}

#define QCONV_INST(R, V)                                                                                         \
    static void qconv_##R##_##V(const struct nn_bconv *p, const uint8_t *x, const int64_t *xoff, const int8_t *w, \
                                const float *qs, const float *bias, const float *res, float *y)                 \
    {                                                                                                            \
        qconv_gen(R, V, p, x, xoff, w, qs, bias, res, y);                                                        \
    }
#define QCONV_ROW(R) QCONV_INST(R, 1) QCONV_INST(R, 2) QCONV_INST(R, 3) QCONV_INST(R, 4)
#define QCONV_FNS(R) {qconv_##R##_1, qconv_##R##_2, qconv_##R##_3, qconv_##R##_4}
QCONV_ROW(1)
QCONV_ROW(2)
QCONV_ROW(3)
QCONV_ROW(4)
QCONV_ROW(5)
QCONV_ROW(6)
typedef void (*qconv_rv_fn)(const struct nn_bconv *p, const uint8_t *x, const int64_t *xoff, const int8_t *w,
                            const float *qs, const float *bias, const float *res, float *y);

/* kern.h, nn_qconv_fn */
static void qconv(const struct nn_bconv *p, const uint8_t *x, const int64_t *xoff, int r, const int8_t *w, int vg,
                  const float *qs, const float *bias, const float *res, float *y)
{
    static const qconv_rv_fn fns[NN_BCONV_R][NN_BCONV_V] = {QCONV_FNS(1), QCONV_FNS(2), QCONV_FNS(3),
                                                             QCONV_FNS(4), QCONV_FNS(5), QCONV_FNS(6)};
    if (r == NN_BCONV_R && (vg == 4 || vg == 2)) {
        const uint8_t *xr[NN_BCONV_R];
        for (int i = 0; i < NN_BCONV_R; i++)
            xr[i] = x + xoff[i];
        if (vg == 4 && p->y_px == 16) {
            struct br_out e = {.bias = bias ? bias : lp_zeros, .res = res, .y = y,
                               .ycb = p->y_cb * (int64_t)sizeof(float), .act = p->act, .lo = p->lo, .hi = p->hi,
                               .qs = qs};
            qconv_out_6x4(w, p->otab, p->ntab, xr, &e);
            return;
        }
        int32_t sums[NN_BCONV_R * NN_BCONV_V * 16] __attribute__((aligned(64)));
        (vg == 4 ? qconv_red_6x4 : qconv_red_6x2)(w, p->otab, p->ntab, xr, sums);
        qput_sums(p, sums, NN_BCONV_R, vg, qs, bias, res, y);
        return;
    }
    fns[r - 1][vg - 1](p, x, xoff, w, qs, bias, res, y);
}

/* kern.h, nn_qconv_wide_fn */
static void qconv_wide(const struct nn_bconv *p, const uint8_t *x, int npx, const int8_t *w, int vg,
                       const float *qs, const float *bias, const float *res, float *y)
{
    int32_t sums[NN_BCONV_WIDE * 16] __attribute__((aligned(64)));
    (vg == 2 ? qconv_red_12x2 : qconv_red_24x1)(w, p->otab, p->ntab, x, sums);
    qput_sums(p, sums, npx, vg, qs, bias, res, y);
}

/* kern.h, nn_qconv_sec_fn */
static void qconv_sec(const struct nn_bconv *p, const uint8_t *x, const int64_t *xoff, int64_t e0, int64_t e1,
                      const int8_t *w, int32_t *acc, const float *qs, const float *bias, const float *res, float *y,
                      const void *pf)
{
    const uint8_t *xr[NN_BCONV_R];
    for (int i = 0; i < NN_BCONV_R; i++)
        xr[i] = x + xoff[i];
    if (y == NULL) {
        qconv_sec_6x4(w, p->otab + e0, e1 - e0, xr, acc, pf);
        return;
    }
    struct br_out e = {.bias = bias ? bias : lp_zeros, .res = res, .y = y, .ycb = p->y_cb * (int64_t)sizeof(float),
                       .act = p->act, .lo = p->lo, .hi = p->hi, .acc = (const float *)acc, .qs = qs};
    qconv_secout_6x4(w, p->otab + e0, e1 - e0, xr, &e, pf);
}

/* kern.h, struct nn_qkern's quant */
static void quant(uint8_t *dst, const float *src, int64_t n, float inv, float zp)
{
    __m512 vi = _mm512_set1_ps(inv), vz = _mm512_set1_ps(zp), top = _mm512_set1_ps(255.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(src + i), vi, vz);
        v = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), top); /* (NaN -> 0: max's second operand) */
        _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    for (; i < n; i++)
        dst[i] = nn_quant_u8(src[i], inv, zp);
}

const struct nn_qkern nn_qkern_avx512vnni = {.conv = qconv, .wide = qconv_wide, .sec = qconv_sec, .quant = quant};
