/*
 * kern.h — private to src/nn: the fast-kernel interface (per-ISA micro-
 * kernels), the SGEMM driver, the thread pool and the fast paths of Conv,
 * Gemm and MatMul.
 *
 * Design: the reference kernels in kernels/ref/ are the truth and stay as
 * they are. An ISA (struct nn_isa) is a small table of inner loops compiled
 * with that ISA's flags (kernels/x86/avx2.c, kernels/x86/avx512.c, both from
 * one template, kernels/x86/tmpl.h); it is chosen once per process from the
 * CPU's features, or forced with COFFER_NN_ISA=ref|avx2|avx512. Everything
 * around the inner loops (blocking, packing, im2col, threading, fusion) is
 * portable C shared by all ISAs. With the "ref" ISA the runtime behaves as
 * before this layer existed: reference kernels, no fusion, one thread.
 *
 * GEMM layout: C[M x N] (row stride ldc) = A[M x K] * B[K x N]. A is read
 * from MR-row panels (element (i, k) of a panel at k * MR + i), B from
 * NR-column panels (element (k, j) at k * NR + j); weights are packed into
 * these layouts once per plan (a packed A K block after K block: the KC
 * rows of every panel, then the next KC), activations per K block into per-thread
 * scratch. For a convolution in NCHW, A is the weight [M, C/g * kh * kw],
 * B the (implicit) im2col of one image and C the output planes; for
 * Gemm/MatMul, A is the activation and B the weight.
 */
#ifndef COFFER_NN_KERN_H
#define COFFER_NN_KERN_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum nn_isa_id { NN_ISA_REF = 0, NN_ISA_AVX2 = 1, NN_ISA_AVX512 = 2, NN_ISA_COUNT };

/* Unaligned load LD and store ST of vector type T from and to floats (for
 * the per-ISA files; memcpy compiles to one vector move). */
#define NN_VEC_IO(T, LD, ST)                                                                                     \
    static inline T LD(const float *p)                                                                           \
    {                                                                                                            \
        T v;                                                                                                     \
        memcpy(&v, p, sizeof(v));                                                                                \
        return v;                                                                                                \
    }                                                                                                            \
    static inline void ST(float *p, T v) { memcpy(p, &v, sizeof(v)); }

enum nn_act { NN_ACT_NONE = 0, NN_ACT_RELU = 1, NN_ACT_CLIP = 2 };

/* What a micro-kernel applies after the last K block of its tile. Pointers
 * are already offset to the tile's first row / column; NULL when absent. */
struct nn_epi {
    const float *bias_m; /* one per row */
    const float *bias_n; /* one per column */
    const float *res;    /* residual, added element-wise */
    int64_t ldr;
    int act;             /* enum nn_act */
    float lo, hi;        /* NN_ACT_CLIP */
};

#define NN_UKR_LOAD_C 1u /* add onto C's current values (later K blocks) */
#define NN_UKR_LAST 2u   /* apply the epilogue */

/* C[mv x nv] (+)= A_panel * B over kc; mv <= MR, nv <= NR. Row k of B is
 * at b + k * ldb: ldb = NR for a packed panel, the row stride of the
 * matrix itself when B is read in place (its rows then hold nv floats
 * rounded up to whole vectors). */
typedef void (*nn_ukr_fn)(int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc, int mv,
                          int nv, unsigned flags, const struct nn_epi *e);

/* One row of C over all of K (a Gemm at batch 1): c[0, nv) (+)= a[0, k) *
 * B, where B is vn (1 .. NR / vl) whole vectors of a packed panel's rows
 * (row k at b + k * NR) and nv <= vn * vl of their columns are kept. The
 * epilogue is always applied (flags: NN_UKR_LOAD_C or 0). */
typedef void (*nn_gemv_fn)(int64_t k, const float *a, const float *b, float *c, int vn, int nv, unsigned flags,
                           const struct nn_epi *e);

/* One depthwise plane: y[oh x ow] = sum over the window of w * xp, where xp
 * is the input plane already padded (row stride xw, enough zero slack after
 * it for whole-vector reads), then bias and activation. */
struct nn_dw {
    int64_t oh, ow, xw;
    int kh, kw, sh, sw, dh, dw;
};
typedef void (*nn_dw_fn)(const struct nn_dw *d, const float *xp, const float *w, float bias, int act, float lo,
                         float hi, float *y);

/* The blocked channel layout (NCHW16c): a 4-D float tensor [N, C, H, W]
 * with C a multiple of 16 held as [N][C / 16][H][W][16], so the 16
 * channels of one pixel are one AVX-512 vector. Chosen per value by the
 * planner (kernels/fast.c) where producer and every reader handle it.
 *
 * A direct convolution on it (struct nn_bconv): one call computes r <= 6
 * output pixels (of one image, in output order) for vg <= 4 blocks of 16
 * output channels, the whole reduction in registers. The input is read at
 * x + xoff[i] + cb * x_cb + ic * x_c + ky * x_ky + kx * x_kx for pixel i,
 * input channel block cb and channel ic within it, window row ky and
 * column kx: the same call reads a blocked input (x_c 1) or a plain NCHW
 * one (x_c a plane), already zero-padded by the caller where the window
 * leaves the map. Weights w are packed [cb][ky][kx][ic][vg * 16]. The
 * output (and the residual, in the same layout) is at y: blocked when
 * y_px is 16 (pixel i, block v at y + v * y_cb + 16 i), plain when y_px is
 * 1 (channel j of pixel i at y + j * y_c + i). */
#define NN_BCONV_R 6
#define NN_BCONV_V 4
struct nn_bconv {
    int64_t c; /* input channels */
    int kh, kw;
    int64_t x_cb, x_c, x_ky, x_kx;
    int64_t y_cb, y_c; /* blocked: floats per channel block; plain: per channel */
    int y_px;          /* 16: blocked output, 1: plain */
    int act;
    float lo, hi;
    /* the input's byte offsets the kernel steps through, in the order the
     * weights are packed (or NULL): with whole blocked channel blocks (x_c
     * 1, c % 16 == 0; otab_step 16) cb * x_cb + ky * x_ky + kx * x_kx, 16
     * channels from each; otherwise (otab_step 1) that plus ic * x_c, one
     * channel each */
    const int64_t *otab;
    int64_t ntab;
    int otab_step;
};
typedef void (*nn_bconv_fn)(const struct nn_bconv *p, const float *x, const int64_t *xoff, int r, const float *w,
                            int vg, const float *bias, const float *res, float *y);
/* The same for npx consecutive pixels of a 1x1, stride-1 convolution over
 * whole blocked channel blocks (otab_step 16, unpadded input: pixel i at
 * x + 16 i), 12 of them for vg 2 or 24 for vg 1; output (and residual)
 * pixel i where nn_bconv_fn puts it. For vg 4, npx / 6 whole tiles of 6
 * pixels one after the other into a blocked output (y_px 16): a run of
 * tiles in one call, where a call a tile cost short reductions (16 to 32
 * input channels) about a tenth of their time. */
#define NN_BCONV_WIDE 24
typedef void (*nn_bconv_wide_fn)(const struct nn_bconv *p, const float *x, int npx, const float *w, int vg,
                                 const float *bias, const float *res, float *y);
/* One section of the reduction of a whole 6-pixel tile for 4 output
 * blocks (vg 4) over whole blocked channel blocks (otab_step 16) into a
 * blocked output: the tab entries [e0, e1) of p->otab, w at entry e0's
 * weights (4 KiB an entry), the sums carried in acc[24][16]
 * (pixel i's block v at 4 i + v), loaded first and saved after, or, when
 * y is not NULL (the last section), bias, the residual and the activation
 * applied and the tile stored as nn_bconv_fn stores it. Each tab entry
 * also prefetches 512 bytes from pf on (into L2), so that the next
 * section's weights arrive while this one's are read from the cache. */
#define NN_BCONV_SEC_PF 512
typedef void (*nn_bconv_sec_fn)(const struct nn_bconv *p, const float *x, const int64_t *xoff, int64_t e0, int64_t e1,
                                const float *w, float *acc, const float *bias, const float *res, float *y,
                                const void *pf);
/* bf16 (AVX512_BF16; a model loaded with COFFER_NN_BF16): the same three
 * kernels with bf16 inputs and weights and float sums (vdpbf16ps: a pair
 * of input channels a step, twice the float FMA's products an
 * instruction), for convolutions on a blocked input, read by whole channel
 * blocks (otab_step 16; a last partial block's lanes past the channels
 * are zero in the copy and in the weights). The input x is a bf16 copy of the float map the float
 * kernel would read, element for element (a pixel's 16 channels in 32
 * bytes), xoff in elements as there, and p->otab holds byte offsets into
 * the copy. The weights are packed as the float kernel's, element for
 * element, except that each tab entry's 16 x (vg * 16) values are
 * [ic / 2][vg * 16][ic % 2] (a channel pair's two weights adjacent).
 * Bias, residual, activation and output as the float kernels have them;
 * nn_hconv_sec_fn's pf prefetches as nn_bconv_sec_fn's. to_bf16 rounds
 * n floats to nearest even (NaN stays NaN). */
typedef void (*nn_hconv_fn)(const struct nn_bconv *p, const uint16_t *x, const int64_t *xoff, int r,
                            const uint16_t *w, int vg, const float *bias, const float *res, float *y);
typedef void (*nn_hconv_wide_fn)(const struct nn_bconv *p, const uint16_t *x, int npx, const uint16_t *w, int vg,
                                 const float *bias, const float *res, float *y);
typedef void (*nn_hconv_sec_fn)(const struct nn_bconv *p, const uint16_t *x, const int64_t *xoff, int64_t e0,
                                int64_t e1, const uint16_t *w, float *acc, const float *bias, const float *res,
                                float *y, const void *pf);
struct nn_hkern {
    nn_hconv_fn conv;
    nn_hconv_wide_fn wide;
    nn_hconv_sec_fn sec;
    void (*to_bf16)(uint16_t *dst, const float *src, int64_t n);
};
/* The bf16 kernels, or NULL when this CPU (or build) lacks AVX512_BF16 or
 * the AVX-512 kernels. */
const struct nn_hkern *nn_hkern_get(void);
extern const struct nn_hkern nn_hkern_avx512bf16;
/* int8 (AVX512_VNNI; a model loaded with COFFER_NN_PREC_INT8 and a calibration
 * table): the same three kernels with unsigned 8-bit inputs and signed
 * 8-bit weights (vpdpbusd: four input channels a step, 32-bit integer
 * sums), for the convolutions the bf16 kernels take. The input x is the
 * float map the float kernel would read quantized element for element
 * (a pixel's 16 channels in 16 bytes; q = x / s + z rounded, clamped to
 * [0, 255], by quant with inv = 1 / s), xoff in elements, p->otab in
 * bytes of the copy. Each tab entry's 16 x (vg * 16) weights are
 * [ic / 4][vg * 16][ic % 4], zero past the channels. Output channel j's
 * integer sum times qs[j] (the input's scale times the channel's weight
 * scale), plus bias (which carries the zero point's share, -z qs[j] times
 * the channel's weights' sum), then the float kernels' residual,
 * activation and output. nn_qconv_sec_fn carries integer sums in acc. */
typedef void (*nn_qconv_fn)(const struct nn_bconv *p, const uint8_t *x, const int64_t *xoff, int r, const int8_t *w,
                            int vg, const float *qs, const float *bias, const float *res, float *y);
typedef void (*nn_qconv_wide_fn)(const struct nn_bconv *p, const uint8_t *x, int npx, const int8_t *w, int vg,
                                 const float *qs, const float *bias, const float *res, float *y);
typedef void (*nn_qconv_sec_fn)(const struct nn_bconv *p, const uint8_t *x, const int64_t *xoff, int64_t e0,
                                int64_t e1, const int8_t *w, int32_t *acc, const float *qs, const float *bias,
                                const float *res, float *y, const void *pf);
struct nn_qkern {
    nn_qconv_fn conv;
    nn_qconv_wide_fn wide;
    nn_qconv_sec_fn sec;
    void (*quant)(uint8_t *dst, const float *src, int64_t n, float inv, float zp);
};
/* The int8 kernels, or NULL when this CPU (or build) lacks AVX512_VNNI or
 * the AVX-512 kernels. */
const struct nn_qkern *nn_qkern_get(void);
extern const struct nn_qkern nn_qkern_avx512vnni;
/* x quantized as quant does it: x * inv + zp rounded to nearest even,
 * clamped to [0, 255], NaN to 0. */
static inline uint8_t nn_quant_u8(float x, float inv, float zp)
{
    float v = fmaf(x, inv, zp);
    if (!(v > 0.0f))
        return 0;
    if (v >= 255.0f)
        return 255;
    return (uint8_t)lrintf(v);
}
/* A float rounded to the nearest bf16, ties to even (as vcvtneps2bf16;
 * a NaN made quiet). */
static inline uint16_t nn_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline float nn_bf16_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}
/* A depthwise convolution of one blocked channel block: output rows
 * [oy0, oy1) of y (ow pixels of 16 floats a row) from the input plane x
 * (ih x iw pixels, xw = iw; the window starts pt rows above and pl
 * columns left of it, outside is zero), weights w [kh * kw][16], then
 * bias, the residual (same layout as y) and the activation. */
struct nn_bdw {
    struct nn_dw d; /* the window (oh, ow, kh .. dw; xw: the input's width) */
    int64_t ih, pt, pl;
    int act;
    float lo, hi;
};
typedef void (*nn_bdw_fn)(const struct nn_bdw *p, const float *x, const float *w, const float *bias,
                          const float *res, float *y, int64_t oy0, int64_t oy1);
/* Winograd F(4x4, 3x3) on the blocked layout (kernels/fast.c): the input
 * transform of one 6x6 patch of one channel block (x at its first pixel,
 * xrow floats a row) into v, its 36 points vs floats apart; the output
 * transform of one tile of one output block from m (36 points ms floats
 * apart) into y (yrow floats a row), rows x cols outputs kept, with bias
 * (16 floats or NULL), the residual at res (y's layout or NULL) and the
 * activation. */
typedef void (*nn_bwin_in_fn)(const float *x, int64_t xrow, float *v, int64_t vs);
typedef void (*nn_bwin_out_fn)(const float *m, int64_t ms, const float *bias, const float *res, float *y, int64_t yrow,
                               int rows, int cols, int act, float lo, float hi);
/* The same for F(2x2, 3x3) (nn_isa.bwin_in2, bwin_out2): a 4x4 patch
 * into 16 points; 16 points into a 2x2 tile. And for F(5x5, 3x3)
 * (bwin_in5, bwin_out5): a 7x7 patch into 49 points; 49 points into a
 * 5x5 tile. And for stride-2 3x3 layers in 2x2 output tiles
 * (bwin_in_s2, bwin_out_s2; kernels/wino.c, nn_wino_gs2): a 5x5 patch
 * (its origin 4 input pixels from the next tile's) into 25 points; 25
 * points into a 2x2 tile. */
/* Its weight transform U = G g G^T at one point (a, b), for weights
 * transformed as they are used: for nk input channels and 64 output
 * channels, u[k][64] = sum over taps t of coef[t] g[k][t][64] with coef[t]
 * = G[a][t / 3] G[b][t % 3] (g: [k][9][64]; the coefficients rounded once
 * from double, the sums in float, where the plan's nn_wino_u_lanes works in
 * double). Taps whose coefficient is zero are skipped: the 36 points have
 * 196 taps in all, not 324 (resnet50 b8's two 512-channel layers 4.7 ->
 * 4.4-4.6 ms each). */
typedef void (*nn_bwin_u_fn)(const float *g, int64_t nk, const float coef[9], float *u);
/* One output row of a MaxPool / AveragePool over a blocked input plane
 * (16 channels): y[ox] for ox < ow, input rows [ky0, ky1) of the window
 * in range (rows), x the plane (ih x iw pixels of 16 floats) at the
 * window's first row; semantics as the reference kernel. */
struct nn_bpool {
    int64_t iw, ow, kw, sw, dw, pl, kh_all, dh;
    bool is_max, include_pad;
};
typedef void (*nn_bpool_fn)(const struct nn_bpool *p, const float *x, int64_t ky0, int64_t ky1, float *y);
/* A GlobalAveragePool's sum / GlobalMaxPool's max of one blocked channel
 * block (sp pixels of 16 floats) into y[16], per lane in the reference
 * kernel's order (pixel by pixel), a NaN never taken by the max. */
typedef void (*nn_bgpool_fn)(const float *x, int64_t sp, bool is_max, float *y);

/* A pool task function (kernels/pool.c). */
typedef void (*nn_task_fn)(void *arg, int64_t task, int tid);

struct nn_isa {
    const char *name;
    enum nn_isa_id id;
    int mr, nr;
    nn_ukr_fn ukr;
    nn_gemv_fn gemv;
    nn_dw_fn dw;
    int vl; /* floats per vector: the depthwise kernel's slack */
    nn_task_fn wino_task; /* one Winograd block (wino_run.h), arg a struct nn_wrun */
    /* dst[i] = src[i * stride] for i < n (reads no further than src[(n - 1) * stride]) */
    void (*gather)(float *dst, const float *src, int64_t stride, int64_t n);
    /* One MR panel from rows [0, mv) of a row-major block (row stride rs)
     * over columns [0, kb): dst[k * MR + i] = a[i * rs + k], rows mv .. MR - 1
     * zero; reads only a[i * rs + k] for i < mv, k < kb. NULL: the driver's
     * loop (gemm.c, pack_a_block). */
    void (*pack_a)(float *dst, const float *a, int64_t rs, int mv, int64_t kb);
    nn_bconv_fn bconv; /* NULL: this ISA has no blocked layout */
    nn_bconv_wide_fn bconv_wide;
    nn_bconv_sec_fn bconv_sec;
    nn_bpool_fn bpool;
    nn_bgpool_fn bgpool;
    nn_bdw_fn bdw;
    nn_bwin_in_fn bwin_in;
    nn_bwin_out_fn bwin_out;
    nn_bwin_in_fn bwin_in2;
    nn_bwin_out_fn bwin_out2;
    nn_bwin_in_fn bwin_in5;
    nn_bwin_out_fn bwin_out5;
    nn_bwin_in_fn bwin_in_s2;
    nn_bwin_out_fn bwin_out_s2;
    nn_bwin_u_fn bwin_u;
};

/* The ISA chosen for this process (COFFER_NN_ISA or the best the CPU has),
 * or NULL with the reason in *why when COFFER_NN_ISA names one this CPU or
 * build lacks. */
const struct nn_isa *nn_isa_default(const char **why);
/* A given ISA, or NULL when this CPU or build lacks it. */
const struct nn_isa *nn_isa_get(enum nn_isa_id id);
const char *nn_isa_name(enum nn_isa_id id);

/* Per-ISA tables (defined only when the build has the file). */
extern const struct nn_isa nn_isa_avx2;
extern const struct nn_isa nn_isa_avx512;

/* ---------------------------------------------------------- thread pool */

struct nn_pool;

/* Threads in this process's CPU affinity mask (at least 1). */
int nn_cpu_count(void);
/* A pool of n threads counting the caller (n - 1 workers); NULL on failure. */
struct nn_pool *nn_pool_new(int n);
void nn_pool_free(struct nn_pool *p);
int nn_pool_size(const struct nn_pool *p);
/* Run fn(arg, t, tid) for t in [0, ntasks) on up to `width` threads (the
 * caller is tid 0) and return when all are done. p may be NULL (inline). */
void nn_pool_run(struct nn_pool *p, int width, int64_t ntasks, nn_task_fn fn, void *arg);
/* After a run in which the caller, out of tasks, waited over 1 ms and over
 * twice its own share for a worker (one the OS did not run: CPUs shared
 * with other work), the next NN_POOL_SOLO_RUNS runs are the caller's
 * alone. */
#define NN_POOL_SOLO_RUNS 64
/* The same with task t always on thread t % width (of those that run), so
 * a thread meets the same data on every run: for jobs whose data stays in
 * a core's cache between runs (a small model's weights). Runs of more than
 * NN_POOL_FIXED_MAX tasks are taken as nn_pool_run takes them. */
#define NN_POOL_FIXED_MAX 64
void nn_pool_run_fixed(struct nn_pool *p, int width, int64_t ntasks, nn_task_fn fn, void *arg);

/* ---------------------------------------------------------- SGEMM driver */

/* Implicit im2col of one image (and group): row k = (ci, kz, ky, kx),
 * column n = (oz, oy, ox). */
struct nn_im2col {
    int64_t c;             /* channels of the group */
    int64_t in[3], k[3], s[3], d[3], pb[3], out[3];
    bool direct;           /* 1x1, stride 1, no padding: B is the input itself */
};

struct nn_gemm {
    int64_t m, n, k;
    /* A: prepacked MR panels, K block after K block (ap, nn_pack_a), or a strided matrix */
    const float *ap;
    const float *a;
    int64_t a_rs, a_cs;
    /* B: prepacked NR panels over the whole K (bp), an implicit im2col of
     * b (im), or a strided matrix */
    const float *bp;
    const float *b;
    int64_t b_rs, b_cs;
    const struct nn_im2col *im;
    float *c;
    int64_t ldc;
    bool load_c; /* accumulate onto C instead of overwriting it */
    struct nn_epi epi; /* bias_m / bias_n / res relative to C's origin */
    /* up to two batch levels (images, groups): counts and element strides */
    int64_t nb[2];
    int64_t sa[2], sb[2], sc[2], sbias[2];
};

/* Bytes of per-thread scratch the driver needs for g (0 when it packs nothing). */
size_t nn_gemm_scratch(const struct nn_isa *isa, const struct nn_gemm *g);
/* Bytes of scratch shared by the threads that nn_gemm_run can use to pack
 * B once for all of them (0: it would not). */
size_t nn_gemm_shared(const struct nn_isa *isa, const struct nn_gemm *g, int threads);
/* Run g on the pool; scratch holds `threads` blocks of nn_gemm_scratch
 * bytes; shared is NULL or nn_gemm_shared bytes, given only when
 * nn_gemm_shared said so for the same g (its data pointers aside) and
 * threads. */
void nn_gemm_run(const struct nn_isa *isa, struct nn_pool *p, int threads, const struct nn_gemm *g, void *scratch,
                 size_t scratch_per_thread, void *shared);
/* Bytes of a packed A (m x k) or B (k x n) and the packing itself; src is
 * strided (rs, cs), scale multiplies every element. */
size_t nn_pack_a_size(const struct nn_isa *isa, int64_t m, int64_t k);
size_t nn_pack_b_size(const struct nn_isa *isa, int64_t k, int64_t n);
void nn_pack_a(const struct nn_isa *isa, const float *src, int64_t rs, int64_t cs, int64_t m, int64_t k, float *dst);
/* Multiply row i of a packed A (m x k) by scale[i]. */
void nn_pack_a_scale(const struct nn_isa *isa, float *dst, int64_t m, int64_t k, const float *scale);
void nn_pack_b(const struct nn_isa *isa, const float *src, int64_t rs, int64_t cs, int64_t k, int64_t n, float scale,
               float *dst);

/* ---------------------------------------------------- Winograd F(4x4, 3x3) */

/* One image of a 3x3, stride-1, dilation-1, ungrouped 2-D convolution
 * (kernels/wino.c). Fill c, m, ih, iw, oh, ow, pt, pl, then nn_wino_geom. */
struct nn_wino {
    int64_t n, c, m, ih, iw, oh, ow, pt, pl; /* n: images of one run */
    int64_t oth, otw, tpi, t; /* tile rows and columns, tiles per image, tiles of all images */
    int64_t tb, tblocks;     /* tiles per block (a multiple of MR), blocks */
    int64_t mb, mblocks;     /* output channels per block (a multiple of NR), blocks */
    int64_t su, sv;          /* floats per transform point of U (packed B) and of a block's V (packed A) */
};
void nn_wino_geom(const struct nn_isa *isa, int threads, struct nn_wino *w);
/* One Winograd run, shared by the tasks of an ISA's wino_task. */
struct nn_wrun {
    const struct nn_wino *w;
    const float *u, *x, *bias, *res;
    float *y;
    char *scratch;
    size_t per;
    struct nn_epi e;
};
/* Bytes of the transformed, packed weights and of the scratch per thread. */
size_t nn_wino_weights_size(const struct nn_isa *isa, int64_t c, int64_t m);
size_t nn_wino_scratch(const struct nn_wino *w);
/* F(4x4, 3x3)'s weight transform matrix G (6 x 3) */
extern const double nn_wino_g[6][3];
/* The same for F(2x2, 3x3) (points 0, +-1): 16 points, G 4 x 3. */
extern const double nn_wino_g2[4][3];
/* And for F(5x5, 3x3) (points 0, 1, -1, 2, -2, 1/2): 49 points, G 7 x 3
 * (each row divided by the factor its row of B^T was scaled by to make
 * B^T's entries integers). */
extern const double nn_wino_g5[7][3];
/* And for stride-2 3x3 layers in 2x2 output tiles: the four distinct
 * rows of its 5 points' G (points 3 and 4 both take the middle tap), so
 * 16 distinct U of its 25 points (point (a, b) takes U (min(a, 3),
 * min(b, 3))). */
extern const double nn_wino_gs2[4][3];
#define NN_WINO_S2 (-2) /* nn_wino_u_lanes' wm for nn_wino_gs2 */
/* U = G g G^T (in double) of F(4x4, 3x3) (wm 4), F(2x2, 3x3) (wm 2),
 * F(5x5, 3x3) (wm 5) or the stride-2 tiles' 16 (wm NN_WINO_S2)
 * for nl <= 16 output channels at once: 3x3 kernel l at g + l * gs,
 * times scale[l] (1 where scale is NULL), point xi of channel l at
 * u[xi * stride + l]. */
void nn_wino_u_lanes(int wm, const float *g, int64_t gs, int nl, const float *scale, float *u, int64_t stride);
/* Transform weights g [m][c][3][3] (row j scaled by scale[j] unless NULL). */
void nn_wino_pack(const struct nn_isa *isa, const struct nn_wino *w, const float *g, const float *scale, float *dst);
/* y (n images, [n][m][oh][ow]) = conv(x) + bias + res, then e->act; the
 * tiles of all images share the passes over the weights. */
void nn_wino_run(const struct nn_isa *isa, struct nn_pool *pool, int threads, const struct nn_wino *w,
                 const float *u, const float *x, float *y, const float *bias, const float *res, const struct nn_epi *e,
                 void *scratch, size_t per_thread);

#endif
