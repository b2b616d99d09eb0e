/*
 * lp_put.h — the float epilogue of the low-precision tiles (bf16,
 * avx512bf16.c; int8, avx512vnni.c) where it runs in C, not in registers
 * (br_asm.h, BR_EPI): a block of 16 output channels' float sums plus bias
 * through the residual and the activation into a blocked or plain output,
 * as tmpl.h's bconv_put. Only for files built for AVX-512.
 */
#ifndef COFFER_NN_LP_PUT_H
#define COFFER_NN_LP_PUT_H

#include <immintrin.h>

#include "../kern.h"

typedef float vf __attribute__((vector_size(64)));
NN_VEC_IO(vf, vld, vst)

static inline vf vset(float s) { return (vf)_mm512_set1_ps(s); }

static inline vf vact(vf v, int act, vf lo, vf hi)
{
    if (act == NN_ACT_RELU)
        return (vf)_mm512_max_ps((__m512)v, _mm512_setzero_ps());
    if (act == NN_ACT_CLIP)
        return (vf)_mm512_min_ps(_mm512_max_ps((__m512)v, (__m512)lo), (__m512)hi);
    return v;
}

static inline float sact(float v, int act, float lo, float hi)
{
    if (act == NN_ACT_RELU)
        return v > 0.0f ? v : 0.0f; /* (NaN -> 0, as vmaxps with 0 second) */
    if (act == NN_ACT_CLIP)
        return v < lo ? lo : v > hi ? hi : v;
    return v;
}

/* Block v of output pixel i (sums plus bias in t): the residual, the
 * activation, stored blocked or plain. */
static inline __attribute__((always_inline)) void lp_put(const struct nn_bconv *p, vf t, int v, int i,
                                                        const float *res, float *y, vf lo, vf hi)
{
    if (p->y_px == 16) {
        int64_t off = v * p->y_cb + i * 16;
        if (res)
            t += vld(res + off);
        vst(y + off, vact(t, p->act, lo, hi));
        return;
    }
    int64_t off = v * 16 * p->y_c + i;
    for (int j = 0; j < 16; j++) {
        float s = t[j];
        if (res)
            s += res[off + j * p->y_c];
        y[off + j * p->y_c] = sact(s, p->act, p->lo, p->hi);
    }
}

/* the zero bias (br_out's bias is never NULL) */
static const float lp_zeros[4 * 16] __attribute__((aligned(64)));

#endif
