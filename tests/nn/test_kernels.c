/*
 * test_kernels.c — every fast kernel variant against the reference kernels.
 *
 * For each ISA (AVX2, AVX-512; one test function each, reported as skipped
 * with the reason when this CPU lacks it):
 *   - the SGEMM driver on random shapes (odd sizes, vector and tile tails,
 *     K over one block, N over one block), strided and packed operands,
 *     every epilogue (row and column bias, residual, Relu, Clip,
 *     accumulation), on one thread and on a pool of three, against a plain
 *     double-precision loop;
 *   - Conv through the whole runtime (fusion and planning included) on
 *     random geometries: kernel sizes, strides, dilations, every padding,
 *     groups including depthwise, weights as a graph input, followed by
 *     BatchNormalization, Add of a residual and Relu or Clip, against the
 *     same model run with the reference ISA;
 *   - Gemm (transposes, alpha, beta, bias shapes) + Relu and MatMul
 *     (rank-3 A) the same way.
 * Random cases come from a fixed seed, so a failure names a reproducible
 * case.
 */
#include "testutil.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coffer/nn.h"
#include "nn_writer.h"
#include "../../src/nn/nn_int.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

static int64_t rint_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint32_t)(hi - lo + 1)); }
/* uniform in [-1, 1): rnd() has 31 bits (it was [-1, 0) before, every
 * random tensor negative) */
static float rfloat(void) { return (float)rnd() / 1073741824.0f - 1.0f; }

static float *rbuf(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = rfloat();
    return p;
}

static const struct nn_isa *need(enum nn_isa_id id)
{
    const struct nn_isa *isa = nn_isa_get(id);
    if (isa == NULL) {
        printf("nn kernels: %s skipped: this CPU lacks it\n", nn_isa_name(id));
        skip();
    }
    return isa;
}

/* Each element within tol of (1 + its own magnitude), or with of_max of
 * (1 + the largest finite magnitude in want). */
static void near_to(const float *got, const float *want, size_t n, double tol, bool of_max, const char *what)
{
    double top = 0.0;
    for (size_t i = 0; of_max && i < n; i++)
        if (isfinite(want[i]) && fabs((double)want[i]) > top)
            top = fabs((double)want[i]);
    for (size_t i = 0; i < n; i++) {
        if (got[i] == want[i] || (isnan(got[i]) && isnan(want[i]))) /* infinities, NaN from NaN */
            continue;
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= tol * (1.0 + (of_max ? top : fabs((double)want[i])))))
            fail_msg("%s: element %zu is %.7g, want %.7g%s", what, i, (double)got[i], (double)want[i],
                     of_max ? " (within the largest magnitude's share)" : "");
    }
}

static void near(const float *got, const float *want, size_t n, double tol, const char *what)
{
    near_to(got, want, n, tol, false, what);
}

/* ----------------------------------------------------------------- GEMM */

static void gemm_case(const struct nn_isa *isa, struct nn_pool *pool, int threads, int64_t m, int64_t n, int64_t k,
                      int variant)
{
    bool ta = variant & 1, tb = variant & 2, pack_a = variant & 4, pack_b = variant & 8;
    float *a = rbuf((size_t)(m * k)), *b = rbuf((size_t)(k * n)), *bm = rbuf((size_t)m), *bn = rbuf((size_t)n);
    float *res = rbuf((size_t)(m * n)), *c = rbuf((size_t)(m * n)), *want = malloc((size_t)(m * n + 1) * 4);
    float *c0 = malloc((size_t)(m * n + 1) * 4);
    memcpy(c0, c, (size_t)(m * n) * 4);
    int act = (int)rint_in(0, 2);
    bool load_c = rnd() % 3 == 0, use_res = rnd() % 2, use_bm = rnd() % 2, use_bn = rnd() % 2;
    struct nn_gemm g = {.m = m, .n = n, .k = k, .ldc = n, .load_c = load_c, .nb = {1, 1}};
    g.a_rs = ta ? 1 : k;
    g.a_cs = ta ? m : 1;
    g.b_rs = tb ? 1 : n;
    g.b_cs = tb ? k : 1;
    g.a = a;
    g.b = b;
    g.c = c;
    float *ap = NULL, *bp = NULL;
    if (pack_a) {
        ap = malloc(nn_pack_a_size(isa, m, k) + 4);
        nn_pack_a(isa, a, g.a_rs, g.a_cs, m, k, ap);
        g.ap = ap;
    }
    if (pack_b) {
        bp = malloc(nn_pack_b_size(isa, k, n) + 4);
        nn_pack_b(isa, b, g.b_rs, g.b_cs, k, n, 1.0f, bp);
        g.bp = bp;
    }
    g.epi = (struct nn_epi){.bias_m = use_bm ? bm : NULL, .bias_n = use_bn ? bn : NULL, .res = use_res ? res : NULL,
                            .ldr = n, .act = act, .lo = -0.3f, .hi = 0.4f};
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = load_c ? c0[i * n + j] : 0.0;
            for (int64_t p = 0; p < k; p++)
                s += (double)a[i * g.a_rs + p * g.a_cs] * (double)b[p * g.b_rs + j * g.b_cs];
            if (use_bm)
                s += bm[i];
            if (use_bn)
                s += bn[j];
            if (use_res)
                s += res[i * n + j];
            if (act == NN_ACT_RELU)
                s = s > 0 ? s : 0;
            if (act == NN_ACT_CLIP)
                s = s < -0.3 ? -0.3 : s > 0.4 ? 0.4 : s;
            want[i * n + j] = (float)s;
        }
    size_t per = nn_gemm_scratch(isa, &g), shared = nn_gemm_shared(isa, &g, threads);
    void *scratch = malloc(per * (size_t)threads + 64), *sh = shared ? malloc(shared) : NULL;
    nn_gemm_run(isa, pool, threads, &g, scratch, per, sh);
    free(sh);
    char what[128];
    snprintf(what, sizeof(what), "%s gemm m=%lld n=%lld k=%lld variant %d act %d threads %d", isa->name, (long long)m,
             (long long)n, (long long)k, variant, act, threads);
    near(c, want, (size_t)(m * n), 1e-4, what);
    free(scratch);
    free(ap);
    free(bp);
    free(a);
    free(b);
    free(bm);
    free(bn);
    free(res);
    free(c);
    free(c0);
    free(want);
}

static void gemm_tests(enum nn_isa_id id)
{
    const struct nn_isa *isa = need(id);
    struct nn_pool *pool = nn_pool_new(3);
    assert_non_null(pool);
    rng_state = 1234 + (uint64_t)id;
    /* then: a classifier at batch 1 and a few rows over many columns, big
     * enough to run on the pool (one part of the columns a thread where B
     * is packed); last, single rows from packed B (the GEMV kernel) whose
     * threads' shares of the vectors start and end inside panels, and K
     * not a multiple of its four partial sums */
    static const int64_t fixed[][3] = {{1, 1, 1},      {8, 48, 256},  {9, 49, 257},  {1, 600, 5},
                                       {7, 17, 300},   {300, 3, 2},   {6, 16, 0},    {13, 1000, 3},
                                       {1, 1000, 256}, {4, 2050, 64}, {1, 530, 257}, {1, 77, 301},
                                       {1, 40, 1030},  {1, 9, 3}};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        for (int v = 0; v < 16; v++)
            gemm_case(isa, v % 2 ? pool : NULL, v % 2 ? 3 : 1, fixed[i][0], fixed[i][1], fixed[i][2], v);
    for (int t = 0; t < 60; t++)
        gemm_case(isa, pool, t % 2 ? 3 : 1, rint_in(1, 40), rint_in(1, 120), rint_in(1, 300), (int)rint_in(0, 15));
    nn_pool_free(pool);
}

void test_kernels_gemm_avx2(void **state)
{
    (void)state;
    gemm_tests(NN_ISA_AVX2);
}

void test_kernels_gemm_avx512(void **state)
{
    (void)state;
    gemm_tests(NN_ISA_AVX512);
}

/* ---------------------------------------------- whole models, ISA vs ref */

/* Load bytes, force the ISA and thread count, run once on inputs; the
 * outputs are copied to out (malloc). */
static int wino_mode = NN_WINO_AUTO; /* what run_with sets on the fast runs */
static int ksec_mode = NN_KSEC_AUTO; /* and the sectioned reduction's mode */
static int spatial_mode = NN_SPATIAL_AUTO; /* and the bands' */
static int cdw_mode = NN_CDW_AUTO;         /* and a convolution's with its depthwise reader */
static int lin_mode = NN_LIN_AUTO;         /* and the runs of (group, tile) pairs a thread */
static int pimg_mode = NN_PIMG_AUTO;       /* and a thread's images one at a time */
static int last_pimg;                      /* convolutions run_with's model ran image by image */
static int seg_mode = NN_SEG_AUTO;         /* and the first layers image by image */
static int last_seg;                       /* nodes run_with's model ran in that segment */
static int tune_mode = NN_TUNE_AUTO;       /* and the measured picks' (fast.c, tune) */
static int tune_forced;                    /* > 0: every 3x3 stride-1 layer planned as this pick */
static int last_tuned;                     /* shapes run_with's model measured */
static bool cdw_half;                      /* cdw_case: the shapes that split the last group in halves */
static bool bf16_mode;                     /* the fast runs in bf16 (coffer_nn_options.precision) */
static int last_bf16;                      /* convolutions run_with's model ran on the bf16 kernels */
static int partial_bf16;                   /* hconv_case: cases of a partial last input block on them */
static bool int8_mode;                     /* the fast runs in int8, calibrated on their own input */
static int last_int8;                      /* convolutions run_with's model ran on the int8 kernels */
static double near_tol = 2e-4;             /* compare_direct's tolerance (near) */
static bool near_of_max;                   /* and relative to the output's largest magnitude (bf16) */
static int last_direct;              /* convolutions run_with's model ran on the blocked layout */
static int last_f5;                  /* convolutions run_with's model ran as F(5x5, 3x3) */
static int last_f4;                  /* and as F(4x4, 3x3) with the transformed weights stored */
static int last_s2;                  /* and stride-2 3x3 ones in 2x2 Winograd tiles */
static int last_cdw;                 /* of them, run with the depthwise convolution after them */
static int max_threads = 2;          /* compare_direct's fast runs: on 1 to this many threads */

/* The calibration table of a float32 run on in (coffer_nn_options'
 * calibrate), to be freed with coffer_free; NULL where the run recorded
 * no range. */
static char *calib_table(const uint8_t *bytes, size_t size, const struct coffer_nn_tensor *in, size_t n_in,
                         size_t *tsize)
{
    struct coffer_nn_model *m;
    struct coffer_nn_options o = {.threads = 1, .precision = COFFER_NN_F32, .calibrate = true};
    if (coffer_nn_model_load_opts(bytes, size, &o, &m) != COFFER_OK)
        fail_msg("load to calibrate: %s", coffer_err_detail());
    struct coffer_nn_tensor out;
    char *t = NULL;
    if (coffer_nn_model_run(m, in, n_in, &out, 1) != COFFER_OK)
        fail_msg("calibrate: %s", coffer_err_detail());
    if (coffer_nn_calibration_table(m, &t, tsize) != COFFER_OK) /* (no blocked convolution: no range) */
        t = NULL;
    coffer_nn_model_free(m);
    return t;
}

static float *run_with(const uint8_t *bytes, size_t size, const struct nn_isa *isa, int threads,
                       const struct coffer_nn_tensor *in, size_t n_in, size_t *count)
{
    struct coffer_nn_model *m;
    struct coffer_nn_options o = {.threads = 1};
    char *table = NULL;
    if (int8_mode && isa->id == NN_ISA_AVX512) {
        table = calib_table(bytes, size, in, n_in, &o.calibration_size);
        o.calibration = table;
        o.precision = table != NULL ? COFFER_NN_PREC_INT8 : COFFER_NN_F32;
    }
    if (coffer_nn_model_load_opts(bytes, size, &o, &m) != COFFER_OK)
        fail_msg("load: %s", coffer_err_detail());
    coffer_free(table);
    m->isa = isa;
    m->threads = threads;
    m->wino = wino_mode;
    m->ksec = ksec_mode;
    m->spatial = spatial_mode;
    m->cdw = cdw_mode;
    m->lin = lin_mode;
    m->pimg = pimg_mode;
    m->seg = seg_mode;
    m->tune = tune_mode;
    m->tune_force = tune_forced;
    m->hk = bf16_mode && isa->id == NN_ISA_AVX512 ? nn_hkern_get() : NULL;
    m->qk = int8_mode && isa->id == NN_ISA_AVX512 ? nn_qkern_get() : NULL;
    m->n_tune = 0; /* (what the load measured, on the load's ISA and threads) */
    if (threads > 1)
        assert_non_null(m->pool = nn_pool_new(threads));
    m->planned = false; /* re-plan with this ISA */
    struct coffer_nn_tensor out;
    if (coffer_nn_model_run(m, in, n_in, &out, 1) != COFFER_OK)
        fail_msg("run (%s): %s", isa->name, coffer_err_detail());
    last_direct = 0; /* convolutions (direct or Winograd) on a blocked input or output */
    last_pimg = last_seg = last_f5 = last_f4 = last_s2 = last_bf16 = last_int8 = 0;
    for (size_t i = 0; i < m->g.n_nodes; i++) {
        last_pimg += m->g.nodes[i].live && nn_fast_per_image(&m->g.nodes[i]);
        last_seg += m->g.nodes[i].seg;
        last_f5 += m->g.nodes[i].live && strcmp(nn_fast_kernel(&m->g.nodes[i]), "winograd-f5") == 0;
        last_f4 += m->g.nodes[i].live && strcmp(nn_fast_kernel(&m->g.nodes[i]), "winograd") == 0;
        last_s2 += m->g.nodes[i].live && strcmp(nn_fast_kernel(&m->g.nodes[i]), "winograd-s2") == 0;
        last_bf16 += m->g.nodes[i].live && strncmp(nn_fast_kernel(&m->g.nodes[i]), "direct-bf16", 11) == 0;
        last_int8 += m->g.nodes[i].live && strncmp(nn_fast_kernel(&m->g.nodes[i]), "direct-int8", 11) == 0;
    }
    last_cdw = 0;
    last_tuned = m->n_tune;
    for (int i = 0; i < m->n_tune; i++) {
        /* measured among two candidates or more, the fastest taken */
        const struct nn_tune *tu = &m->tunes[i];
        int cands = 0;
        for (int k = 1; k < 4; k++)
            if (tu->ns[k] > 0) {
                cands++;
                assert_true(tu->ns[tu->pick] <= tu->ns[k]);
            }
        assert_true(cands >= 2);
        /* and the convolution of that shape runs on the pick's kernel
         * (the direct one also as "direct+depthwise", with its reader, or
         * in bf16) */
        const char *want = tu->pick == 1 ? "direct" : tu->pick == 2 ? "winograd" : "winograd-f2";
        bool found = false;
        for (size_t j = 0; j < m->g.n_nodes; j++) {
            const struct nn_node *nd = &m->g.nodes[j];
            const struct nn_val *xv = &m->g.vals[nd->in[0]], *yv = &m->g.vals[nn_node_out(nd, 0)];
            const char *k = nn_fast_kernel(nd);
            found |= nd->live && !nd->skip && nd->op == NN_OP_CONV && yv->rank == 4 && yv->dims[1] == tu->m &&
                     xv->dims[1] == tu->c &&
                     (strcmp(k, want) == 0 || (tu->pick == 1 && strncmp(k, "direct", 6) == 0));
        }
        if (!found)
            fail_msg("no %" PRId64 "-channel convolution runs on %s, the pick", tu->m, want);
    }
    for (size_t i = 0; i < m->g.n_nodes; i++) {
        const struct nn_node *nd = &m->g.nodes[i];
        last_cdw += nd->live && nd->with_next >= 0;
        const char *k = nn_fast_kernel(nd);
        if (nd->live && !nd->skip && nd->op == NN_OP_CONV &&
            (strncmp(k, "direct", 6) == 0 || strncmp(k, "winograd", 8) == 0) &&
            (m->g.vals[nd->in[0]].blocked || m->g.vals[nn_node_out(nd, 0)].blocked))
            last_direct++;
    }
    *count = out.size / sizeof(float);
    float *y = malloc(out.size + 4);
    memcpy(y, out.data, out.size);
    coffer_nn_model_free(m);
    return y;
}

/* ISA against ref; min_direct: convolutions each fast run must have run
 * on the blocked layout. */
static void compare_direct(const struct nn_isa *isa, const uint8_t *bytes, size_t size,
                           const struct coffer_nn_tensor *in, size_t n_in, const char *what, int min_direct)
{
    size_t nr, nf;
    float *want = run_with(bytes, size, nn_isa_get(NN_ISA_REF), 1, in, n_in, &nr);
    for (int threads = 1; threads <= max_threads; threads++) {
        float *got = run_with(bytes, size, isa, threads, in, n_in, &nf);
        assert_int_equal(nr, nf);
        if (last_direct < min_direct)
            fail_msg("%s: %d nodes on the blocked kernel, want %d", what, last_direct, min_direct);
        char w[300];
        snprintf(w, sizeof(w), "%s (%s, %d threads)", what, isa->name, threads);
        near_to(got, want, nr, near_tol, near_of_max, w);
        free(got);
    }
    free(want);
}

static void compare_models(const struct nn_isa *isa, const uint8_t *bytes, size_t size,
                           const struct coffer_nn_tensor *in, size_t n_in, const char *what)
{
    compare_direct(isa, bytes, size, in, n_in, what, 0);
}

static struct coffer_nn_tensor ft(float *data, int rank, const int64_t *dims)
{
    struct coffer_nn_tensor t = {.dtype = COFFER_NN_FLOAT, .rank = rank, .data = data};
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        t.dims[i] = dims[i];
        n *= (size_t)dims[i];
    }
    t.size = n * sizeof(float);
    return t;
}

static size_t prod(const int64_t *d, int r)
{
    size_t n = 1;
    for (int i = 0; i < r; i++)
        n *= (size_t)d[i];
    return n;
}

/* wino: a 3x3, stride-1, dilation-1, ungrouped 2-D convolution (the
 * Winograd path's shapes), more channels; dw3: a 2-D 3x3 depthwise
 * convolution with equal strides 1 or 2 (the depthwise kernel's
 * specialised loops), wider maps; pw (with dw3 false): a 1x1, stride-1,
 * unpadded convolution, plain or grouped (B read in place), wider maps. */
static void conv_case(const struct nn_isa *isa, int t, bool wino, bool dw3, bool pw)
{
    int nsp = t % 7 == 6 && !wino && !dw3 ? 1 : 2;
    int64_t n = rint_in(1, 2), c = wino ? rint_in(1, 40) : rint_in(1, 9), group = 1;
    /* 0 plain, 1 depthwise, 2 grouped, 3 weights as an input */
    int kind = wino ? 0 : dw3 ? 1 : pw ? 2 * (t % 2) : (int)rint_in(0, 3);
    int64_t mo = rint_in(1, 70);
    if (kind == 1) {
        group = c;
        mo = c;
    } else if (kind == 2) {
        group = c > 1 && c % 3 == 0 ? 3 : c;
        mo = group * rint_in(1, 5);
    }
    int64_t k[2], s[2], d[2], pads[4], in[2], out[2];
    for (int i = 0; i < nsp; i++) {
        k[i] = rint_in(1, 4);
        s[i] = rint_in(1, 3);
        d[i] = rint_in(1, 2);
        if (wino)
            k[i] = 3, s[i] = 1, d[i] = 1;
        if (dw3)
            k[i] = 3, s[i] = 1 + t % 2, d[i] = 1;
        if (pw)
            k[i] = 1, s[i] = 1, d[i] = 1;
        pads[i] = pw ? 0 : rint_in(0, 2);
        pads[nsp + i] = pw ? 0 : rint_in(0, 2);
        int64_t ek = d[i] * (k[i] - 1) + 1;
        int64_t wide = dw3 || pw || (wino && t % 2) ? 70 : 19;
        in[i] = rint_in(ek > pads[i] + pads[nsp + i] ? ek - pads[i] - pads[nsp + i] : 1, wide);
        out[i] = (in[i] + pads[i] + pads[nsp + i] - ek) / s[i] + 1;
    }
    int64_t xd[4] = {n, c}, wd[4] = {mo, c / group}, yd[4] = {n, mo};
    for (int i = 0; i < nsp; i++) {
        xd[2 + i] = in[i];
        wd[2 + i] = k[i];
        yd[2 + i] = out[i];
    }
    int rank = 2 + nsp;
    int post = (int)rint_in(0, 7); /* bit 0: BatchNorm, bit 1: residual Add, bit 2: Relu else Clip (or none) */
    bool has_bias = rnd() % 2, act_none = rnd() % 3 == 0;
    float *x = rbuf(prod(xd, rank)), *w = rbuf(prod(wd, rank)), *b = rbuf((size_t)mo), *r = rbuf(prod(yd, rank));
    float *bn[4];
    for (int i = 0; i < 4; i++)
        bn[i] = rbuf((size_t)mo);
    for (int64_t i = 0; i < mo; i++)
        bn[3][i] = fabsf(bn[3][i]) + 0.5f; /* variance */
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec at[5] = {
        {"kernel_shape", 7, 0, 0, k, (size_t)nsp, NULL}, {"strides", 7, 0, 0, s, (size_t)nsp, NULL},
        {"dilations", 7, 0, 0, d, (size_t)nsp, NULL},    {"pads", 7, 0, 0, pads, (size_t)(2 * nsp), NULL},
        {"group", 2, 0, group, NULL, 0, NULL},
    };
    const char *cur = "c0";
    node(&g, "Conv", "conv", (const char *[]){"X", "W", "B"}, has_bias ? 3 : 2, (const char *[]){cur}, 1, at, 5);
    if (post & 1) {
        node(&g, "BatchNormalization", "bn", (const char *[]){cur, "s", "bb", "mean", "var"}, 5, (const char *[]){"c1"},
             1, NULL, 0);
        cur = "c1";
    }
    if (post & 2) {
        node(&g, "Add", "add", (const char *[]){"R", cur}, 2, (const char *[]){"c2"}, 1, NULL, 0);
        cur = "c2";
    }
    if (!act_none) {
        if (post & 4)
            node(&g, "Relu", "relu", (const char *[]){cur}, 1, (const char *[]){"Y"}, 1, NULL, 0);
        else
            node(&g, "Clip", "clip", (const char *[]){cur, "lo", "hi"}, 3, (const char *[]){"Y"}, 1, NULL, 0);
    } else {
        node(&g, "Identity", "id", (const char *[]){cur}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    }
    pb_str(&g, 2, "g");
    float lo = -0.5f, hi = 0.7f;
    int64_t one = 1;
    if (kind != 3)
        tensor(&g, 5, "W", COFFER_NN_FLOAT, rank, wd, w, prod(wd, rank));
    tensor(&g, 5, "B", COFFER_NN_FLOAT, 1, &mo, b, (size_t)mo);
    const char *bnn[4] = {"s", "bb", "mean", "var"};
    for (int i = 0; i < 4; i++)
        tensor(&g, 5, bnn[i], COFFER_NN_FLOAT, 1, &mo, bn[i], (size_t)mo);
    tensor(&g, 5, "lo", COFFER_NN_FLOAT, 0, &one, &lo, 1);
    tensor(&g, 5, "hi", COFFER_NN_FLOAT, 0, &one, &hi, 1);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, rank, xd);
    if (kind == 3)
        value_info(&g, 11, "W", COFFER_NN_FLOAT, rank, wd);
    if (post & 2)
        value_info(&g, 11, "R", COFFER_NN_FLOAT, rank, yd);
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 0, NULL);
    size_t size;
    uint8_t *bytes = model(&g, 13, &size);
    struct coffer_nn_tensor ins[3];
    size_t n_in = 0;
    ins[n_in++] = ft(x, rank, xd);
    if (kind == 3)
        ins[n_in++] = ft(w, rank, wd);
    if (post & 2)
        ins[n_in++] = ft(r, rank, yd);
    char what[300];
    snprintf(what, sizeof(what),
             "case %d: conv x[%lld,%lld,%lld,%lld] w[%lld,%lld,%lld,%lld] strides %lld,%lld dilations %lld,%lld "
             "pads %lld,%lld,%lld,%lld group %lld bias %d post %d act %d",
             t, (long long)xd[0], (long long)xd[1], (long long)xd[2], (long long)(nsp > 1 ? xd[3] : 0),
             (long long)wd[0], (long long)wd[1], (long long)wd[2], (long long)(nsp > 1 ? wd[3] : 0), (long long)s[0],
             (long long)(nsp > 1 ? s[1] : 0), (long long)d[0], (long long)(nsp > 1 ? d[1] : 0), (long long)pads[0],
             (long long)pads[1], (long long)(nsp > 1 ? pads[2] : 0), (long long)(nsp > 1 ? pads[3] : 0),
             (long long)group, has_bias, post, !act_none);
    compare_models(isa, bytes, size, ins, n_in, what);
    coffer_free(bytes);
    free(x);
    free(w);
    free(b);
    free(r);
    for (int i = 0; i < 4; i++)
        free(bn[i]);
}

static void conv_tests(enum nn_isa_id id)
{
    const struct nn_isa *isa = need(id);
    rng_state = 777 + (uint64_t)id;
    coffer_log_set_level(COFFER_LOG_OFF);
    for (int t = 0; t < 120; t++)
        conv_case(isa, t, false, false, false);
    for (int t = 0; t < 30; t++)
        conv_case(isa, t, false, true, false);
    for (int t = 0; t < 30; t++)
        conv_case(isa, t, false, false, true);
    /* Winograd on every convolution it applies to (odd sizes leave partial
     * 4x4 tiles; channel counts are not multiples of MR or NR) */
    wino_mode = NN_WINO_ALWAYS;
    for (int t = 0; t < 40; t++)
        conv_case(isa, t, true, false, false);
    wino_mode = NN_WINO_AUTO;
    coffer_log_set_level(COFFER_LOG_INFO);
}

/* The end of a blocked chain's graph g: the bounds of its Clips (0 and 6,
 * ReLU6 as mobilenet_v2 has it, "lo6" and "hi6"), the input X (xd) and the
 * output Y; the model's bytes (coffer_free). */
static uint8_t *graph_end(struct coffer_buf *g, const int64_t xd[4], size_t *size)
{
    float lo = 0.0f, hi = 6.0f;
    int64_t one = 1;
    tensor(g, 5, "lo6", COFFER_NN_FLOAT, 0, &one, &lo, 1);
    tensor(g, 5, "hi6", COFFER_NN_FLOAT, 0, &one, &hi, 1);
    value_info(g, 11, "X", COFFER_NN_FLOAT, 4, xd);
    value_info(g, 12, "Y", COFFER_NN_FLOAT, 0, NULL);
    return model(g, 13, size);
}

/* A chain that keeps values in the blocked layout (NCHW16c) between
 * nodes: Conv (+Relu) -> [MaxPool | AveragePool | depthwise Conv + Clip] -> Conv (+BatchNorm)
 * [+ residual Add of its input] (+Relu) -> [GlobalAveragePool |
 * GlobalMaxPool | 1x1 Conv | the graph output]. The first Conv reads the
 * plain graph input (any channel count, odd maps, padding, strides,
 * dilations); output channel counts are multiples of 16 (blocked) or
 * not (the chain falls back to NCHW), and the blocked kernel is checked
 * to have run where it can. */
static void chain_case(const struct nn_isa *isa, int t, int force_mid)
{
    int64_t n = rint_in(1, 2), c = rint_in(1, 20), h = rint_in(3, 17), w = rint_in(3, 17);
    bool blocks = t % 5 != 4;
    int64_t m1 = blocks ? 16 * rint_in(1, 5) : rint_in(1, 40);
    int mid = (int)rint_in(0, 3), tail = (int)rint_in(0, 3);
    if (force_mid >= 0)
        mid = force_mid, tail = (int)rint_in(0, 1); /* a global pool: conv2 writes blocked */
    int64_t k1[2] = {rint_in(1, 3), rint_in(1, 3)}, s1[2] = {rint_in(1, 2), rint_in(1, 2)};
    /* force_mid -2: a 1x1 conv2 over a map of 36 or more pixels with 16 or
     * 32 channels in its last group of 64 (the wide kernels) */
    bool proj = force_mid == -2;
    /* force_mid -3: a conv2 of 64 or more output channels (a whole group
     * of 4 blocks, in sections under NN_KSEC_ALWAYS) from whole blocks,
     * writing blocked (a global pool after it) */
    bool sec = force_mid == -3 || force_mid == -5;
    if (sec) {
        mid = 0;
        tail = (int)rint_in(0, 1);
        blocks = true;
    }
    /* force_mid -4: maps of 20 to 40 pixels a side (a thread's band of
     * pixels in several blocks of tiles) */
    if (force_mid == -4) {
        h = rint_in(20, 40);
        w = rint_in(20, 40);
        mid = (int)rint_in(0, 1) ? 3 : 0;
        tail = (int)rint_in(0, 1);
        blocks = true;
    }
    if (proj) {
        static const int64_t ms[4] = {16, 32, 80, 96};
        mid = 0;
        h = rint_in(6, 17);
        w = rint_in(6, 17);
        blocks = true;
        m1 = ms[rint_in(0, 3)];
        s1[0] = s1[1] = 1;
    }
    int64_t d1[2] = {rint_in(1, 2), 1}, p1[4] = {rint_in(0, 1), rint_in(0, 1), rint_in(0, 2), rint_in(0, 1)};
    /* conv2 keeps the map and channels when the residual is added */
    bool resid = t % 3 != 0;
    if (sec && resid && m1 < 64)
        m1 = 16 * rint_in(4, 6);
    /* force_mid -5: a residual 3x3 conv2 of 128, 192 or 256 channels (two
     * to four whole groups: Winograd's transforms a task per group of 64
     * channels where the groups share out evenly over the threads) */
    if (force_mid == -5) {
        resid = true;
        m1 = 64 * rint_in(2, 4);
    }
    /* force_mid -6: as -5 with 320 channels (F(4x4)'s transformed weights
     * 14.1 MiB) on one image of 22-24 pixels a side, stride 1 (at least 25
     * tiles of 4x4 after conv1's window) */
    if (force_mid == -6) {
        sec = true;
        mid = 0;
        tail = (int)rint_in(0, 1);
        blocks = true;
        resid = true;
        m1 = 320;
        n = 1;
        h = rint_in(22, 24);
        w = rint_in(22, 24);
        s1[0] = s1[1] = 1;
    }
    /* force_mid -7: a stride-2 3x3 conv2 (both sides, pads of 0 or 1 each)
     * over maps of 6 to 40 pixels a side, 16 to 320 channels in, 1 to 320
     * out (in one case of four 128 to 320 in and 256 or 320 out: over all
     * tiles at once past 4 MiB of transformed weights) */
    bool str2 = force_mid == -7;
    if (str2) {
        mid = 0;
        tail = (int)rint_in(0, 1);
        blocks = true;
        resid = false;
        h = rint_in(6, 40);
        w = rint_in(6, 40);
        m1 = t % 4 == 3 ? 64 * rint_in(2, 5) : 16 * rint_in(1, 6);
    }
    int64_t m2 = resid ? m1 : sec ? 16 * rint_in(4, 9) : (blocks ? 16 * rint_in(1, 5) : rint_in(1, 40));
    if (str2)
        m2 = t % 4 == 3 ? 64 * rint_in(4, 5) : t % 2 ? 16 * rint_in(1, 9) : rint_in(1, 40);
    int64_t k2v = proj ? 1 : force_mid == -5 || force_mid == -6 || str2 ? 3 : resid ? (t % 2 ? 3 : 1) : rint_in(1, 3);
    int64_t k2[2] = {k2v, k2v}, s2[2] = {1, 1}, d2[2] = {1, 1}, p2[4] = {k2v / 2, k2v / 2, k2v / 2, k2v / 2};
    if (!resid && !proj) {
        s2[0] = rint_in(1, 2);
        p2[2] = rint_in(0, 1);
    }
    if (str2) {
        s2[0] = s2[1] = 2;
        for (int i = 0; i < 4; i++)
            p2[i] = rint_in(0, 1);
    }
    int64_t kp[2] = {rint_in(2, 3), rint_in(1, 3)}, sp[2] = {rint_in(1, 2), rint_in(1, 2)};
    int64_t pp[4] = {rint_in(0, 1), 0, rint_in(0, 1), 0}, cip = rint_in(0, 1);
    /* sizes */
    int64_t h1 = (h + p1[0] + p1[2] - (d1[0] * (k1[0] - 1) + 1)) / s1[0] + 1;
    int64_t w1 = (w + p1[1] + p1[3] - (d1[1] * (k1[1] - 1) + 1)) / s1[1] + 1;
    /* (a window longer than the padded map: C's division would round the
     * negative quotient up to 0, h1 1) */
    if (h + p1[0] + p1[2] < d1[0] * (k1[0] - 1) + 1 || w + p1[1] + p1[3] < d1[1] * (k1[1] - 1) + 1) {
        p1[0] = p1[2] = 2;
        k1[0] = 1;
        h1 = (h + 4 - 1) / s1[0] + 1;
        w1 = (w + p1[1] + p1[3] - k1[1]) / s1[1] + 1;
    }
    if (mid) {
        pp[1] = pp[0] < kp[0] ? pp[0] : 0;
        pp[3] = pp[2] < kp[1] ? pp[2] : 0;
        pp[0] = pp[1];
        pp[2] = pp[3];
        if (h1 + pp[0] + pp[1] < kp[0] || w1 + pp[2] + pp[3] < kp[1])
            mid = 0;
    }
    /* mid 3: a depthwise convolution (group = channels), 3x3 or 1x3,
     * any pads of 0 to 2 and dilations 1 or 2 (pads 1, dilation 1 where
     * the window would not fit) */
    int64_t kd[2] = {rint_in(0, 1) ? 3 : 1, 3}, sd[2] = {rint_in(1, 2), rint_in(1, 2)};
    int64_t dd[2] = {rint_in(1, 2), rint_in(1, 2)};
    int64_t pd[4] = {rint_in(0, 2), rint_in(0, 2), rint_in(0, 2), rint_in(0, 2)};
    if (h1 + pd[0] + pd[2] < (kd[0] - 1) * dd[0] + 1 || w1 + pd[1] + pd[3] < (kd[1] - 1) * dd[1] + 1) {
        dd[0] = dd[1] = 1;
        pd[0] = pd[2] = kd[0] / 2;
        pd[1] = pd[3] = 1;
    }
    int64_t h2 = mid ? (h1 + pp[0] + pp[1] - kp[0]) / sp[0] + 1 : h1;
    int64_t w2 = mid ? (w1 + pp[2] + pp[3] - kp[1]) / sp[1] + 1 : w1;
    if (mid == 3) {
        h2 = (h1 + pd[0] + pd[2] - (kd[0] - 1) * dd[0] - 1) / sd[0] + 1;
        w2 = (w1 + pd[1] + pd[3] - (kd[1] - 1) * dd[1] - 1) / sd[1] + 1;
    }
    if (h2 + p2[0] + p2[2] < k2v || w2 + p2[1] + p2[3] < k2v)
        k2v = k2[0] = k2[1] = 1;
    int64_t xd[4] = {n, c, h, w}, w1d[4] = {m1, c, k1[0], k1[1]}, w2d[4] = {m2, m1, k2[0], k2[1]};
    int64_t w3d[4] = {rint_in(1, 20), m2, 1, 1};
    float *x = rbuf(prod(xd, 4)), *wa = rbuf(prod(w1d, 4)), *wb = rbuf(prod(w2d, 4)), *wc = rbuf(prod(w3d, 4));
    if (t % 7 == 3) /* a NaN through conv1 and its fused Relu (0, as the reference has it) */
        x[rnd() % prod(xd, 4)] = NAN;
    float *b1 = rbuf((size_t)m1), *bn[4];
    for (int i = 0; i < 4; i++)
        bn[i] = rbuf((size_t)m2);
    for (int64_t i = 0; i < m2; i++)
        bn[3][i] = fabsf(bn[3][i]) + 0.5f;
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec a1[4] = {{"kernel_shape", 7, 0, 0, k1, 2, NULL}, {"strides", 7, 0, 0, s1, 2, NULL},
                              {"dilations", 7, 0, 0, d1, 2, NULL}, {"pads", 7, 0, 0, p1, 4, NULL}};
    struct attr_spec a2[4] = {{"kernel_shape", 7, 0, 0, k2, 2, NULL}, {"strides", 7, 0, 0, s2, 2, NULL},
                              {"dilations", 7, 0, 0, d2, 2, NULL}, {"pads", 7, 0, 0, p2, 4, NULL}};
    int64_t pads_p[4] = {pp[0], pp[2], pp[1], pp[3]};
    struct attr_spec ap[4] = {{"kernel_shape", 7, 0, 0, kp, 2, NULL}, {"strides", 7, 0, 0, sp, 2, NULL},
                              {"pads", 7, 0, 0, pads_p, 4, NULL}, {"count_include_pad", 2, 0, cip, NULL, 0, NULL}};
    node(&g, "Conv", "c1", (const char *[]){"X", "W1", "B1"}, 3, (const char *[]){"a"}, 1, a1, 4);
    node(&g, "Relu", "r1", (const char *[]){"a"}, 1, (const char *[]){"b"}, 1, NULL, 0);
    const char *cur = "b";
    struct attr_spec ad[5] = {{"kernel_shape", 7, 0, 0, kd, 2, NULL}, {"strides", 7, 0, 0, sd, 2, NULL},
                              {"pads", 7, 0, 0, pd, 4, NULL}, {"group", 2, 0, m1, NULL, 0, NULL},
                              {"dilations", 7, 0, 0, dd, 2, NULL}};
    int64_t wdd[4] = {m1, 1, kd[0], kd[1]};
    float *wdw = rbuf(prod(wdd, 4));
    if (mid == 3) {
        node(&g, "Conv", "dw", (const char *[]){"b", "WD", "B1"}, 3, (const char *[]){"p0"}, 1, ad, 5);
        node(&g, "Clip", "clip", (const char *[]){"p0", "lo6", "hi6"}, 3, (const char *[]){"p"}, 1, NULL, 0);
        cur = "p";
    } else if (mid) {
        node(&g, mid == 1 ? "MaxPool" : "AveragePool", "pool", (const char *[]){"b"}, 1, (const char *[]){"p"}, 1,
             ap, mid == 1 ? 3 : 4);
        cur = "p";
    }
    node(&g, "Conv", "c2", (const char *[]){cur, "W2"}, 2, (const char *[]){"e"}, 1, a2, 4);
    node(&g, "BatchNormalization", "bn", (const char *[]){"e", "s", "bb", "mean", "var"}, 5, (const char *[]){"f"}, 1,
         NULL, 0);
    const char *last = "f";
    if (resid) {
        node(&g, "Add", "add", (const char *[]){"f", cur}, 2, (const char *[]){"q"}, 1, NULL, 0);
        last = "q";
    }
    const char *fin = tail == 3 ? "Y" : "z";
    /* conv2's activation: a Relu; for the projections also ReLU6, or none
     * where a node reads conv2's output (the wide kernels' epilogue has a
     * loop for each) */
    int act2 = proj ? (int)rint_in(tail == 3 ? 1 : 0, 2) : 1;
    if (act2 == 1)
        node(&g, "Relu", "r2", (const char *[]){last}, 1, (const char *[]){fin}, 1, NULL, 0);
    else if (act2 == 2)
        node(&g, "Clip", "r2", (const char *[]){last, "lo6", "hi6"}, 3, (const char *[]){fin}, 1, NULL, 0);
    else
        fin = last;
    if (tail == 0 || tail == 1)
        node(&g, tail == 0 ? "GlobalAveragePool" : "GlobalMaxPool", "gp", (const char *[]){fin}, 1,
             (const char *[]){"Y"}, 1, NULL, 0);
    else if (tail == 2)
        node(&g, "Conv", "c3", (const char *[]){fin, "W3"}, 2, (const char *[]){"Y"}, 1, NULL, 0);
    pb_str(&g, 2, "g");
    tensor(&g, 5, "W1", COFFER_NN_FLOAT, 4, w1d, wa, prod(w1d, 4));
    tensor(&g, 5, "B1", COFFER_NN_FLOAT, 1, &m1, b1, (size_t)m1);
    tensor(&g, 5, "W2", COFFER_NN_FLOAT, 4, w2d, wb, prod(w2d, 4));
    tensor(&g, 5, "W3", COFFER_NN_FLOAT, 4, w3d, wc, prod(w3d, 4));
    tensor(&g, 5, "WD", COFFER_NN_FLOAT, 4, wdd, wdw, prod(wdd, 4));
    const char *bnn[4] = {"s", "bb", "mean", "var"};
    for (int i = 0; i < 4; i++)
        tensor(&g, 5, bnn[i], COFFER_NN_FLOAT, 1, &m2, bn[i], (size_t)m2);
    size_t size;
    uint8_t *bytes = graph_end(&g, xd, &size);
    struct coffer_nn_tensor in_t = ft(x, 4, xd);
    char what[400];
    snprintf(what, sizeof(what),
             "chain %d: x[%lld,%lld,%lld,%lld] conv1 m %lld k %lldx%lld s %lld,%lld d %lld pads %lld,%lld,%lld,%lld "
             "mid %d (k %lldx%lld s %lld,%lld) conv2 m %lld k %lld s %lld resid %d act %d tail %d",
             t, (long long)n, (long long)c, (long long)h, (long long)w, (long long)m1, (long long)k1[0],
             (long long)k1[1], (long long)s1[0], (long long)s1[1], (long long)d1[0], (long long)p1[0],
             (long long)p1[1], (long long)p1[2], (long long)p1[3], mid, (long long)kp[0], (long long)kp[1],
             (long long)sp[0], (long long)sp[1], (long long)m2, (long long)k2v, (long long)s2[0], resid, act2, tail);
    /* conv1's output is blocked (channels that are not whole blocks of
     * 16 padded) whenever every reader can read it so: the pool or
     * depthwise convolution when it writes blocked, conv2 when it does or
     * may write NCHW, conv2's residual when conv2 writes blocked */
    /* the 1x1 tail's reduction (m2 <= 80) is too short to read a blocked input for a plain output */
    bool out2_blocked = m2 % 16 == 0 && tail <= 1;
    /* fast.c, plan_layout: a blocked input for an NCHW output needs whole
     * output blocks and a reduction of 256 or more */
    bool reads_blocked = out2_blocked || (!resid && m2 % 16 == 0 && m1 * k2v * k2v >= 256);
    compare_direct(isa, bytes, size, &in_t, 1, what, isa->bconv != NULL && reads_blocked ? 2 : 0);
    coffer_free(bytes);
    free(x);
    free(wa);
    free(wb);
    free(wc);
    free(wdw);
    free(b1);
    for (int i = 0; i < 4; i++)
        free(bn[i]);
}

/* A convolution and the depthwise convolution reading its output, run
 * as one (fast.c, run_cdw): X -> 1x1 Conv (blocked, an activation that
 * dies at the next node, where the depthwise output could be placed if
 * the plan did not place it first) -> Conv (any kernel, stride, padding)
 * + Relu -> depthwise Conv (3x3, 1x3 or 3x1, strides, pads, dilations) +
 * Clip -> 1x1 Conv -> GlobalAveragePool -> Y (all of it blocked), on 1 to 3 threads (two band boundaries), one to
 * three of the first Conv's rows at a time. Returns whether the fast runs
 * took the fused path. */
static bool cdw_case(const struct nn_isa *isa, int t)
{
    int64_t n = rint_in(1, 2), c = rint_in(1, 12), h = rint_in(2, 30), w = rint_in(2, 30);
    int64_t m0 = 16 * rint_in(2, 4), m1 = t % 6 == 5 ? rint_in(1, 40) : 16 * rint_in(1, 3), m2 = 16 * rint_in(1, 2);
    if (cdw_mode == NN_CDW_GROUPS) /* several groups of 64, the last one partial in most */
        m1 = t % 6 == 5 ? rint_in(65, 200) : 16 * rint_in(4, 12);
    int64_t k1 = rint_in(1, 3), s1 = k1 > 1 ? rint_in(1, 2) : 1, p1 = k1 > 1 ? rint_in(0, 1) : 0;
    if (cdw_half) { /* an odd number of whole groups from a 1x1 (the last one in halves on 2 threads) */
        m1 = 64 * (2 * rint_in(1, 2) + 1);
        k1 = s1 = 1;
        p1 = 0;
        h = rint_in(2, 14);
        w = rint_in(2, 14);
    }
    int64_t kd[2] = {rint_in(0, 2) ? 3 : 1, rint_in(0, 2) ? 3 : 1}, sd[2] = {rint_in(1, 2), rint_in(1, 2)};
    int64_t dd[2] = {rint_in(1, 2), rint_in(1, 2)};
    int64_t pd[4] = {rint_in(0, 2), rint_in(0, 2), rint_in(0, 2), rint_in(0, 2)};
    if (h + 2 * p1 < k1 || w + 2 * p1 < k1)
        k1 = 1, s1 = 1, p1 = 0;
    int64_t h1 = (h + 2 * p1 - k1) / s1 + 1, w1 = (w + 2 * p1 - k1) / s1 + 1;
    if (h1 + pd[0] + pd[2] < (kd[0] - 1) * dd[0] + 1 || w1 + pd[1] + pd[3] < (kd[1] - 1) * dd[1] + 1) {
        dd[0] = dd[1] = 1;
        pd[0] = pd[1] = pd[2] = pd[3] = 1;
    }
    int64_t xd[4] = {n, c, h, w}, w0d[4] = {m0, c, 1, 1}, w1d[4] = {m1, m0, k1, k1}, wdd[4] = {m1, 1, kd[0], kd[1]};
    int64_t w2d[4] = {m2, m1, 1, 1}, k1v[2] = {k1, k1}, s1v[2] = {s1, s1}, p1v[4] = {p1, p1, p1, p1};
    float *x = rbuf(prod(xd, 4)), *w0 = rbuf(prod(w0d, 4)), *wa = rbuf(prod(w1d, 4)), *wd = rbuf(prod(wdd, 4));
    float *wb = rbuf(prod(w2d, 4)), *b1 = rbuf((size_t)m1), *bd = rbuf((size_t)m1);
    for (size_t i = 0; i < prod(w1d, 4); i++) /* (so that the Relu and Clip let most values through) */
        wa[i] = fabsf(wa[i]) * 0.5f;
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec a1[3] = {{"kernel_shape", 7, 0, 0, k1v, 2, NULL}, {"strides", 7, 0, 0, s1v, 2, NULL},
                              {"pads", 7, 0, 0, p1v, 4, NULL}};
    struct attr_spec ad[5] = {{"kernel_shape", 7, 0, 0, kd, 2, NULL}, {"strides", 7, 0, 0, sd, 2, NULL},
                              {"pads", 7, 0, 0, pd, 4, NULL}, {"group", 2, 0, m1, NULL, 0, NULL},
                              {"dilations", 7, 0, 0, dd, 2, NULL}};
    node(&g, "Conv", "c0", (const char *[]){"X", "W0"}, 2, (const char *[]){"a"}, 1, NULL, 0);
    node(&g, "Conv", "c1", (const char *[]){"a", "W1", "B1"}, 3, (const char *[]){"b0"}, 1, a1, 3);
    node(&g, "Relu", "r1", (const char *[]){"b0"}, 1, (const char *[]){"b"}, 1, NULL, 0);
    node(&g, "Conv", "dw", (const char *[]){"b", "WD", "BD"}, 3, (const char *[]){"p0"}, 1, ad, 5);
    node(&g, "Clip", "clip", (const char *[]){"p0", "lo6", "hi6"}, 3, (const char *[]){"p"}, 1, NULL, 0);
    node(&g, "Conv", "c2", (const char *[]){"p", "W2"}, 2, (const char *[]){"e"}, 1, NULL, 0);
    node(&g, "GlobalAveragePool", "gp", (const char *[]){"e"}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    pb_str(&g, 2, "g");
    tensor(&g, 5, "W0", COFFER_NN_FLOAT, 4, w0d, w0, prod(w0d, 4));
    tensor(&g, 5, "W1", COFFER_NN_FLOAT, 4, w1d, wa, prod(w1d, 4));
    tensor(&g, 5, "B1", COFFER_NN_FLOAT, 1, &m1, b1, (size_t)m1);
    tensor(&g, 5, "WD", COFFER_NN_FLOAT, 4, wdd, wd, prod(wdd, 4));
    tensor(&g, 5, "BD", COFFER_NN_FLOAT, 1, &m1, bd, (size_t)m1);
    tensor(&g, 5, "W2", COFFER_NN_FLOAT, 4, w2d, wb, prod(w2d, 4));
    size_t size;
    uint8_t *bytes = graph_end(&g, xd, &size);
    struct coffer_nn_tensor in_t = ft(x, 4, xd);
    /* the case, named */
    const int64_t v[20] = {n, c, h, w, m0, m1, k1, s1, p1, kd[0], kd[1], sd[0], sd[1], dd[0], dd[1], pd[0], pd[1],
                           pd[2], pd[3], m2};
    static const char *const names[20] = {"n", "c", "h", "w", "m0", "| conv m", "k", "s", "p", "| dw kh", "kw",
                                          "sh", "sw", "dh", "dw", "pt", "pl", "pb", "pr", "| m2"};
    char what[300];
    size_t len = (size_t)snprintf(what, sizeof(what), "conv+dw %d:", t);
    for (int i = 0; i < 20 && len < sizeof(what); i++)
        len += (size_t)snprintf(what + len, sizeof(what) - len, " %s %lld", names[i], (long long)v[i]);
    max_threads = 3;
    compare_direct(isa, bytes, size, &in_t, 1, what, isa->bconv != NULL && m1 % 16 == 0 ? 2 : 0);
    max_threads = 2;
    bool fused = last_cdw > 0;
    coffer_free(bytes);
    free(x);
    free(w0);
    free(wa);
    free(wd);
    free(wb);
    free(b1);
    free(bd);
    return fused;
}

/* cdw_case t0 .. t1 - 1 in cdw mode `mode`; at least min of them must
 * have run fused. */
static void cdw_cases(const struct nn_isa *isa, int mode, int t0, int t1, int min)
{
    cdw_mode = mode;
    int fused = 0;
    for (int t = t0; t < t1; t++)
        fused += cdw_case(isa, t);
    cdw_mode = NN_CDW_AUTO;
    if (fused < min)
        fail_msg("conv+dw (mode %d): %d of %d cases ran fused, want %d or more", mode, fused, t1 - t0, min);
}

void test_kernels_blocked_avx512(void **state)
{
    (void)state;
    const struct nn_isa *isa = need(NN_ISA_AVX512);
    rng_state = 5151;
    coffer_log_set_level(COFFER_LOG_OFF);
    for (int t = 0; t < 60; t++) {
        /* every other case with Winograd wherever it applies (blocked 3x3
         * stride-1 convolutions in the chain), one in eight as F(2x2, 3x3) */
        wino_mode = t % 8 == 3 ? NN_WINO_F2 : t % 4 == 1 ? NN_WINO_ALL : t % 2 ? NN_WINO_ALWAYS : NN_WINO_AUTO;
        /* a third in bands of pixels a thread wherever they apply */
        spatial_mode = t % 3 == 2 ? NN_SPATIAL_ALWAYS : NN_SPATIAL_AUTO;
        chain_case(isa, t, -1);
    }
    /* and the depthwise middle on the blocked layout, many shapes, half
     * of them in bands of rows a thread */
    for (int t = 60; t < 100; t++) {
        spatial_mode = t % 2 ? NN_SPATIAL_ALWAYS : NN_SPATIAL_AUTO;
        chain_case(isa, t, 3);
    }
    spatial_mode = NN_SPATIAL_AUTO;
    /* and 1x1 projections to 16 or 32 channels a group */
    for (int t = 100; t < 130; t++)
        chain_case(isa, t, -2);
    /* and the reduction in sections of two tab entries (any number of
     * sections, a short last one, partial tiles after them) */
    ksec_mode = NN_KSEC_ALWAYS;
    for (int t = 130; t < 170; t++)
        chain_case(isa, t, -3);
    ksec_mode = NN_KSEC_AUTO;
    /* and few groups as one run of (group, tile) pairs a thread wherever
     * there are fewer groups than tasks, splitting a group's tiles
     * between the threads anywhere, also in sections */
    lin_mode = NN_LIN_ALWAYS;
    for (int t = 330; t < 350; t++)
        chain_case(isa, t, t % 2 ? -1 : -3);
    ksec_mode = NN_KSEC_ALWAYS;
    for (int t = 350; t < 370; t++)
        chain_case(isa, t, -3);
    ksec_mode = NN_KSEC_AUTO;
    lin_mode = NN_LIN_AUTO;
    /* and a thread's images one at a time, each padded into its own
     * buffer, wherever a convolution's input is padded (batch 1 or 2, on
     * 1 and 2 threads: a thread with no image, one, or both) */
    pimg_mode = NN_PIMG_ALWAYS;
    int per_image = 0;
    for (int t = 370; t < 400; t++) {
        chain_case(isa, t, t % 2 ? -1 : -4);
        per_image += last_pimg > 0;
    }
    pimg_mode = NN_PIMG_AUTO;
    if (per_image < 10)
        fail_msg("image by image: %d of 30 cases ran so, want 10 or more", per_image);
    /* and the chain's layers image by image, each planned for one image
     * (at batch 2) */
    seg_mode = NN_SEG_ALWAYS;
    int in_seg = 0;
    for (int t = 400; t < 440; t++) {
        chain_case(isa, t, t % 3 == 0 ? -4 : -1);
        in_seg += last_seg > 0;
    }
    seg_mode = NN_SEG_AUTO;
    if (in_seg < 8)
        fail_msg("segment: %d of 40 cases ran one, want 8 or more", in_seg);
    /* and Winograd with U made as it is used, wherever it applies (3x3
     * stride-1 conv2s from whole blocks to 64 or 128 channels) */
    wino_mode = NN_WINO_FLY;
    for (int t = 180; t < 220; t++)
        chain_case(isa, t, -3);
    wino_mode = NN_WINO_AUTO;
    /* and F(2x2, 3x3) on the same shapes and the 20-40 pixel maps */
    wino_mode = NN_WINO_F2;
    for (int t = 220; t < 240; t++)
        chain_case(isa, t, t % 2 ? -3 : -4);
    wino_mode = NN_WINO_AUTO;
    /* and F(5x5, 3x3) wherever U is stored: 64 to 144 channels (blocks of
     * tiles), 20-40 pixel maps, and 128 to 256 channels (over all tiles
     * at once from 256) */
    wino_mode = NN_WINO_F5;
    int f5 = 0;
    for (int t = 255; t < 285; t++) {
        chain_case(isa, t, t % 3 == 0 ? -3 : t % 3 == 1 ? -4 : -5);
        f5 += last_f5 > 0;
    }
    wino_mode = NN_WINO_AUTO;
    if (f5 < 12)
        fail_msg("F(5x5, 3x3): %d of 30 cases ran it, want 12 or more", f5);
    /* and the fixed rule's pick of it, on the maps it covers with fewer
     * points than F(4x4) (25x25: 25 tiles of 49 points against 49 of 36) */
    f5 = 0;
    for (int t = 285; t < 315; t++) {
        chain_case(isa, t, -4);
        f5 += last_f5 > 0;
    }
    if (f5 < 1)
        fail_msg("F(5x5, 3x3) in \"auto\": %d of 30 cases ran it, want 1 or more", f5);
    /* and the fixed rules' Winograd with more than 10 MiB of transformed
     * weights stored, over 24 tiles or more (resnet50's 512-channel layers
     * from batch 6; F(5x5) where its tiles cover these maps with fewer
     * points) */
    for (int t = 315; t < 318; t++) {
        chain_case(isa, t, -6);
        if (last_f4 + last_f5 < 1)
            fail_msg("case %d: the 320-channel conv2 did not run Winograd with its U stored", t);
    }
    /* and stride-2 3x3 layers in 2x2 tiles: the fixed rule's pick (maps
     * whose tiles take fewer points than the direct products), everywhere
     * (odd maps, partial blocks), and over all tiles at once */
    int s2n = 0;
    for (int t = 500; t < 548; t++) {
        wino_mode = t % 3 == 0 ? NN_WINO_AUTO : t % 3 == 1 ? NN_WINO_ALWAYS : NN_WINO_ALL;
        chain_case(isa, t, -7);
        s2n += last_s2 > 0;
    }
    wino_mode = NN_WINO_AUTO;
    if (s2n < 30)
        fail_msg("stride-2 Winograd: %d of 48 cases ran it, want 30 or more", s2n);
    /* and wider layers, over all tiles at once (F(2x2), F(4x4), and F(4x4)
     * with U made as it is used) */
    for (int t = 240; t < 255; t++) {
        wino_mode = t % 3 == 0 ? NN_WINO_F2 : t % 3 == 1 ? NN_WINO_ALL : NN_WINO_FLY;
        chain_case(isa, t, -5);
    }
    wino_mode = NN_WINO_AUTO;
    /* and larger maps in bands of pixels a thread */
    spatial_mode = NN_SPATIAL_ALWAYS;
    for (int t = 170; t < 180; t++)
        chain_case(isa, t, -4);
    spatial_mode = NN_SPATIAL_AUTO;
    /* and convolutions run with the depthwise convolution reading them
     * (on 3 threads the last run of each case; whole blocks in 5 of 6) */
    cdw_cases(isa, NN_CDW_ALWAYS, 240, 300, 40);
    /* and group by group of output channels (gdw_task) */
    cdw_cases(isa, NN_CDW_GROUPS, 300, 330, 20);
    /* and with the last of an odd number of groups in halves */
    cdw_half = true;
    cdw_cases(isa, NN_CDW_GROUPS, 330, 345, 15);
    cdw_half = false;
    /* and such pairs inside the image-by-image segment (at batch 2) */
    seg_mode = NN_SEG_ALWAYS;
    int seg_cdw = 0;
    for (int t = 345; t < 375; t++) {
        cdw_mode = t % 2 ? NN_CDW_ALWAYS : NN_CDW_GROUPS;
        bool fused = cdw_case(isa, t);
        seg_cdw += fused && last_seg > 0;
    }
    cdw_mode = NN_CDW_AUTO;
    seg_mode = NN_SEG_AUTO;
    if (seg_cdw < 5)
        fail_msg("conv+dw in the segment: %d of 30 cases ran so, want 5 or more", seg_cdw);
    wino_mode = NN_WINO_AUTO;
    coffer_log_set_level(COFFER_LOG_INFO);
}

/* x rounded to the nearest bf16 (kern.h, nn_bf16) */
static void to_bf16_values(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = nn_bf16_float(nn_bf16(x[i]));
}

/* The bf16 kernels' arithmetic, exactly: X (values that are bf16 already)
 * -> 3x3 Conv with identity weights at the window's centre (its output X
 * itself, blocked) -> Conv2 (bf16 weights: any kernel up to 3x3, strides,
 * pads, dilations, 1 to 10 blocks of 16 output channels, bias) [+
 * residual] [+ Relu] -> [GlobalAveragePool (conv2 writes blocked) | the
 * output (plain; a reduction of 256 or more, as the planner reads a
 * blocked input for a plain output only then)]. Every product of bf16
 * values is exact in float, so conv2 on the bf16 kernels must agree with
 * the float reference as closely as float kernels do. With int8_mode the
 * values are on the int8 grid instead (test_kernels_int8_avx512). Returns
 * whether conv2 ran on the bf16 (or int8) kernels. */
static bool hconv_case(const struct nn_isa *isa, int t)
{
    /* every fourth case a last partial block of input channels (its lanes
     * past them zeroed in the bf16 copy) */
    int64_t n = rint_in(1, 2), c = t % 4 == 3 ? 8 * rint_in(1, 11) + rint_in(0, 7) : 16 * rint_in(1, 6);
    int64_t h = rint_in(1, 19), w = rint_in(1, 19);
    bool one = t % 3 != 2; /* 1x1 (the wide kernels where stride 1) or up to 3x3 */
    int64_t k = one ? 1 : rint_in(2, 3), s = rint_in(1, 2), d = one ? 1 : rint_in(1, 2), p = one ? 0 : rint_in(0, 1);
    int64_t m = 16 * rint_in(1, 10);
    int tail = (int)rint_in(0, 1); /* 0: GlobalAveragePool, 1: the output */
    if (h + 2 * p < d * (k - 1) + 1 || w + 2 * p < d * (k - 1) + 1)
        k = 1, d = 1, p = 0;
    if (tail == 1 && c * k * k < 256) { /* the least c for the reduction, and up to 32 more */
        c = (256 + k * k - 1) / (k * k) + rint_in(0, 32);
        if (t % 4 != 3)
            c = (c + 15) / 16 * 16;
    }
    int64_t oh = (h + 2 * p - d * (k - 1) - 1) / s + 1, ow = (w + 2 * p - d * (k - 1) - 1) / s + 1;
    bool resid = m == c && s == 1 && oh == h && ow == w && t % 2;
    bool relu = t % 4 != 3;
    int64_t xd[4] = {n, c, h, w}, w1d[4] = {c, c, 3, 3}, w2d[4] = {m, c, k, k};
    float *x = rbuf(prod(xd, 4)), *w1 = calloc(prod(w1d, 4), sizeof(float)), *w2 = rbuf(prod(w2d, 4));
    float *b2 = rbuf((size_t)m);
    assert_non_null(w1);
    for (size_t i = 0; i < prod(xd, 4); i++)
        x[i] = fabsf(x[i]) * (float)(1 + i % 5); /* (through conv1's Relu unchanged) */
    to_bf16_values(x, prod(xd, 4));
    to_bf16_values(w2, prod(w2d, 4));
    if (int8_mode) { /* int8: whole steps of 1/16 up to 255/16 (so the calibrated scale is 1/16, and x exact) */
        for (size_t i = 0; i < prod(xd, 4); i++)
            x[i] = (float)rint_in(0, 255) / 16.0f;
        x[rint_in(0, (int64_t)prod(xd, 4) - 1)] = 255.0f / 16.0f;
        /* and weights in steps of 1/128, each output channel's largest
         * magnitude 127/128 (its scale 1/128) */
        for (size_t i = 0; i < prod(w2d, 4); i++)
            w2[i] = (float)rint_in(-127, 127) / 128.0f;
        for (int64_t j = 0; j < m; j++)
            w2[j * c * k * k + rint_in(0, c * k * k - 1)] = (j % 2 ? 127.0f : -127.0f) / 128.0f;
    }
    for (int64_t i = 0; i < c; i++)
        w1[(i * c + i) * 9 + 4] = 1.0f;
    int64_t k3[2] = {3, 3}, p1[4] = {1, 1, 1, 1};
    struct attr_spec a1[2] = {{"kernel_shape", 7, 0, 0, k3, 2, NULL}, {"pads", 7, 0, 0, p1, 4, NULL}};
    int64_t kk[2] = {k, k}, ss[2] = {s, s}, dd[2] = {d, d}, pp[4] = {p, p, p, p};
    struct attr_spec a2[4] = {{"kernel_shape", 7, 0, 0, kk, 2, NULL}, {"strides", 7, 0, 0, ss, 2, NULL},
                              {"dilations", 7, 0, 0, dd, 2, NULL}, {"pads", 7, 0, 0, pp, 4, NULL}};
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    node(&g, "Conv", "c1", (const char *[]){"X", "W1"}, 2, (const char *[]){"a"}, 1, a1, 2);
    node(&g, "Relu", "r1", (const char *[]){"a"}, 1, (const char *[]){"b"}, 1, NULL, 0);
    node(&g, "Conv", "c2", (const char *[]){"b", "W2", "B2"}, 3, (const char *[]){"e"}, 1, a2, 4);
    const char *cur = "e";
    if (resid) {
        node(&g, "Add", "add", (const char *[]){"e", "b"}, 2, (const char *[]){"q"}, 1, NULL, 0);
        cur = "q";
    }
    const char *fin = tail == 1 ? "Y" : "z";
    if (relu)
        node(&g, "Relu", "r2", (const char *[]){cur}, 1, (const char *[]){fin}, 1, NULL, 0);
    else
        node(&g, "Identity", "id", (const char *[]){cur}, 1, (const char *[]){fin}, 1, NULL, 0);
    if (tail == 0)
        node(&g, "GlobalAveragePool", "gp", (const char *[]){fin}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    pb_str(&g, 2, "g");
    tensor(&g, 5, "W1", COFFER_NN_FLOAT, 4, w1d, w1, prod(w1d, 4));
    tensor(&g, 5, "W2", COFFER_NN_FLOAT, 4, w2d, w2, prod(w2d, 4));
    tensor(&g, 5, "B2", COFFER_NN_FLOAT, 1, &m, b2, (size_t)m);
    size_t size;
    uint8_t *bytes = graph_end(&g, xd, &size);
    struct coffer_nn_tensor in_t = ft(x, 4, xd);
    char what[300];
    snprintf(what, sizeof(what),
             "%s %d: x[%lld,%lld,%lld,%lld] conv2 m %lld k %lld s %lld d %lld p %lld resid %d relu %d tail %d",
             int8_mode ? "int8" : "bf16", t,
             (long long)n, (long long)c, (long long)h, (long long)w, (long long)m, (long long)k, (long long)s,
             (long long)d, (long long)p, resid, relu, tail);
    compare_direct(isa, bytes, size, &in_t, 1, what, 0);
    bool ran = (int8_mode ? last_int8 : last_bf16) > 0;
    if (t % 4 == 3)
        partial_bf16 += ran;
    coffer_free(bytes);
    free(x);
    free(w1);
    free(w2);
    free(b2);
    return ran;
}

/* The low-precision kernels' cases (bf16_mode or int8_mode set): the
 * exact ones of hconv_case, then the blocked chains and convolution +
 * depthwise pairs of test_kernels_blocked_avx512 on float data within tol
 * of the largest output; *last: run_with's count of layers on the kernels
 * under test (last_bf16 or last_int8). */
static void lp_cases(const struct nn_isa *isa, const char *name, const int *last, double tol)
{
    coffer_log_set_level(COFFER_LOG_OFF);
    partial_bf16 = 0;
    int ran = 0, cases = 0;
    for (int t = 0; t < 120; t++, cases++) {
        ksec_mode = t % 5 == 1 ? NN_KSEC_ALWAYS : NN_KSEC_AUTO;
        spatial_mode = t % 5 == 2 ? NN_SPATIAL_ALWAYS : NN_SPATIAL_AUTO;
        lin_mode = t % 5 == 3 ? NN_LIN_ALWAYS : NN_LIN_AUTO;
        ran += hconv_case(isa, t);
    }
    ksec_mode = NN_KSEC_AUTO;
    spatial_mode = NN_SPATIAL_AUTO;
    lin_mode = NN_LIN_AUTO;
    if (ran < cases * 3 / 4)
        fail_msg("%s: conv2 ran on the %s kernels in %d of %d cases, want %d or more", name, name, ran, cases,
                 cases * 3 / 4);
    if (partial_bf16 < 15)
        fail_msg("%s: %d of 30 cases with a partial last input block ran on the %s kernels, want 15 or more", name,
                 partial_bf16, name);
    near_tol = tol;
    near_of_max = true;
    ran = 0;
    for (int t = 0; t < 40; t++) {
        chain_case(isa, t, t % 4 == 0 ? -2 : t % 4 == 1 ? -3 : t % 4 == 2 ? -4 : -1);
        ran += *last > 0;
    }
    ksec_mode = NN_KSEC_ALWAYS;
    for (int t = 40; t < 50; t++) {
        chain_case(isa, t, -3);
        ran += *last > 0;
    }
    ksec_mode = NN_KSEC_AUTO;
    if (ran < 25)
        fail_msg("%s chains: %d of 50 ran a %s kernel, want 25 or more", name, ran, name);
    cdw_cases(isa, NN_CDW_ALWAYS, 500, 520, 12);
    cdw_cases(isa, NN_CDW_GROUPS, 520, 535, 10);
    near_tol = 2e-4;
    near_of_max = false;
    coffer_log_set_level(COFFER_LOG_INFO);
}

/* The bf16 kernels (coffer_nn_options.precision, kern.h nn_hkern), skipped
 * where the CPU lacks AVX512_BF16: exactly on bf16 values (hconv_case),
 * in every way a run can take them (tiles R x V of every size, the wide
 * 1x1 kernels, sections, bands, runs of (group, tile) pairs, gathered
 * strided 1x1s, padded maps, plain and blocked outputs, 1 and 2
 * threads); then the blocked chains and convolution + depthwise pairs of
 * test_kernels_blocked_avx512 on float data, within bf16's rounding (8
 * bits of a value's mantissa: a relative rounding of 2^-9 for each input
 * and weight; 1e-2 of the largest output). */
void test_kernels_bf16_avx512(void **state)
{
    (void)state;
    const struct nn_isa *isa = need(NN_ISA_AVX512);
    if (nn_hkern_get() == NULL) {
        printf("nn kernels: bf16 skipped: this CPU lacks AVX512_BF16\n");
        skip();
    }
    rng_state = 7171;
    bf16_mode = true;
    lp_cases(isa, "bf16", &last_bf16, 1e-2);
    bf16_mode = false;
}

/* The int8 kernels (coffer_nn_options.precision, kern.h nn_qkern), each
 * fast run calibrated on its own input first (coffer_nn_options'
 * calibrate), skipped where the CPU lacks AVX512_VNNI: exactly on values
 * that quantize without rounding (hconv_case: inputs in steps of the
 * calibrated scale, weights in steps of each channel's), the integer sums
 * then exact, in every way a run can take them (as the bf16 cases, 3x3
 * stride-1 layers on the direct int8 kernel instead of Winograd); then
 * the blocked chains and convolution + depthwise pairs on float data,
 * within 8-bit quantization's error (a step of 1/255 of each input's
 * range and 1/127 of each channel's largest weight; 3e-2 of the largest
 * output). */
void test_kernels_int8_avx512(void **state)
{
    (void)state;
    const struct nn_isa *isa = need(NN_ISA_AVX512);
    if (nn_qkern_get() == NULL) {
        printf("nn kernels: int8 skipped: this CPU lacks AVX512_VNNI\n");
        skip();
    }
    rng_state = 8181;
    int8_mode = true;
    lp_cases(isa, "int8", &last_int8, 3e-2);
    int8_mode = false;
}

/* Picks measured at plan time (fast.c, tune) on residual 3x3 conv2s of
 * 128 to 256 channels over small maps (few tiles: the direct kernel,
 * F(4x4) and F(2x2) are its candidates), layers of any size measured;
 * then each pick planned wherever a 3x3 stride-1 layer is. */
void test_kernels_tune_avx512(void **state)
{
    (void)state;
    const struct nn_isa *isa = need(NN_ISA_AVX512);
    rng_state = 6161;
    coffer_log_set_level(COFFER_LOG_OFF);
    tune_mode = NN_TUNE_ALWAYS;
    int tuned = 0;
    for (int t = 400; t < 420; t++) {
        chain_case(isa, t, -5);
        tuned += last_tuned > 0;
    }
    if (tuned < 15)
        fail_msg("%d of 20 cases measured their conv2", tuned);
    tune_mode = NN_TUNE_AUTO;
    for (tune_forced = 1; tune_forced <= 3; tune_forced++)
        for (int t = 420; t < 430; t++)
            chain_case(isa, t, -5);
    tune_forced = 0;
    coffer_log_set_level(COFFER_LOG_INFO);
}

void test_kernels_conv_avx2(void **state)
{
    (void)state;
    conv_tests(NN_ISA_AVX2);
}

void test_kernels_conv_avx512(void **state)
{
    (void)state;
    conv_tests(NN_ISA_AVX512);
}

static void gemm_op_case(const struct nn_isa *isa, int t)
{
    int64_t m = rint_in(1, 20), k = rint_in(1, 70), n = rint_in(1, 130);
    bool matmul = t % 3 == 2;
    int64_t ta = matmul ? 0 : rint_in(0, 1), tb = matmul ? 0 : rint_in(0, 1);
    int cshape = (int)rint_in(0, 3); /* none, [n], [1, n], [m, n] */
    int b_input = rnd() % 4 == 0;    /* B as a graph input */
    float alpha = b_input ? 1.0f : 0.5f + rfloat(), beta = 0.5f + rfloat();
    int64_t batch = rint_in(1, 3);
    int64_t ad[3], bd[2] = {tb ? n : k, tb ? k : n}, cd[2];
    int arank;
    if (matmul) {
        ad[0] = batch;
        ad[1] = m;
        ad[2] = k;
        arank = 3;
    } else {
        ad[0] = ta ? k : m;
        ad[1] = ta ? m : k;
        arank = 2;
    }
    float *a = rbuf(prod(ad, arank)), *b = rbuf((size_t)(k * n)), *cv = rbuf((size_t)(m * n));
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec at[4] = {{"transA", 2, 0, ta, NULL, 0, NULL}, {"transB", 2, 0, tb, NULL, 0, NULL},
                              {"alpha", 1, alpha, 0, NULL, 0, NULL}, {"beta", 1, beta, 0, NULL, 0, NULL}};
    if (matmul)
        node(&g, "MatMul", "mm", (const char *[]){"A", "Bw"}, 2, (const char *[]){"h"}, 1, NULL, 0);
    else
        node(&g, "Gemm", "gemm", (const char *[]){"A", "Bw", "C"}, cshape ? 3 : 2, (const char *[]){"h"}, 1, at, 4);
    node(&g, "Relu", "relu", (const char *[]){"h"}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    pb_str(&g, 2, "g");
    if (!b_input)
        tensor(&g, 5, "Bw", COFFER_NN_FLOAT, 2, bd, b, (size_t)(k * n));
    int crank = cshape == 1 ? 1 : 2;
    cd[0] = cshape == 1 ? n : cshape == 2 ? 1 : m;
    cd[1] = n;
    if (cshape)
        tensor(&g, 5, "C", COFFER_NN_FLOAT, crank, cd, cv, prod(cd, crank));
    value_info(&g, 11, "A", COFFER_NN_FLOAT, arank, ad);
    if (b_input)
        value_info(&g, 11, "Bw", COFFER_NN_FLOAT, 2, bd);
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 0, NULL);
    size_t size;
    uint8_t *bytes = model(&g, 13, &size);
    struct coffer_nn_tensor ins[2] = {ft(a, arank, ad), ft(b, 2, bd)};
    char what[200];
    snprintf(what, sizeof(what), "case %d: %s m=%lld k=%lld n=%lld transA %lld transB %lld C shape %d B input %d", t,
             matmul ? "MatMul" : "Gemm", (long long)m, (long long)k, (long long)n, (long long)ta, (long long)tb,
             cshape, b_input);
    compare_models(isa, bytes, size, ins, b_input ? 2 : 1, what);
    coffer_free(bytes);
    free(a);
    free(b);
    free(cv);
}

static void gemm_op_tests(enum nn_isa_id id)
{
    const struct nn_isa *isa = need(id);
    rng_state = 99 + (uint64_t)id;
    for (int t = 0; t < 60; t++)
        gemm_op_case(isa, t);
}

void test_kernels_gemm_ops_avx2(void **state)
{
    (void)state;
    gemm_op_tests(NN_ISA_AVX2);
}

void test_kernels_gemm_ops_avx512(void **state)
{
    (void)state;
    gemm_op_tests(NN_ISA_AVX512);
}

/* MaxPool and AveragePool over 1 or 2 spatial axes: every padding,
 * stride, dilation (MaxPool), ceil_mode and count_include_pad, windows
 * that fall wholly in the padding, and NaN inputs to MaxPool. */
static void pool_case(const struct nn_isa *isa, int t)
{
    bool is_max = t % 2 == 0;
    int nsp = t % 5 == 4 ? 1 : 2;
    int64_t n = rint_in(1, 2), c = rint_in(1, 9), ceil_mode = rint_in(0, 1), cip = rint_in(0, 1);
    int64_t k[2], s[2], d[2] = {1, 1}, pads[4], in[2];
    for (int i = 0; i < nsp; i++) {
        k[i] = rint_in(1, 4);
        s[i] = rint_in(1, 3);
        if (is_max)
            d[i] = rint_in(1, 2);
        pads[i] = rint_in(0, k[i] - 1);       /* ONNX: pads smaller than the kernel */
        pads[nsp + i] = rint_in(0, k[i] - 1);
        int64_t ek = d[i] * (k[i] - 1) + 1;
        in[i] = rint_in(ek > pads[i] + pads[nsp + i] ? ek - pads[i] - pads[nsp + i] : 1, 40);
    }
    int64_t xd[4] = {n, c};
    for (int i = 0; i < nsp; i++)
        xd[2 + i] = in[i];
    int rank = 2 + nsp;
    size_t cnt = prod(xd, rank);
    float *x = rbuf(cnt);
    if (is_max && t % 4 == 0)
        for (size_t i = 0; i < cnt; i += 17)
            x[i] = NAN;
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec at[5] = {
        {"kernel_shape", 7, 0, 0, k, (size_t)nsp, NULL}, {"strides", 7, 0, 0, s, (size_t)nsp, NULL},
        {"pads", 7, 0, 0, pads, (size_t)(2 * nsp), NULL}, {"ceil_mode", 2, 0, ceil_mode, NULL, 0, NULL},
        {is_max ? "dilations" : "count_include_pad", is_max ? 7 : 2, 0, cip, d, is_max ? (size_t)nsp : 0, NULL},
    };
    node(&g, is_max ? "MaxPool" : "AveragePool", "pool", (const char *[]){"X"}, 1, (const char *[]){"Y"}, 1, at, 5);
    pb_str(&g, 2, "g");
    value_info(&g, 11, "X", COFFER_NN_FLOAT, rank, xd);
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 0, NULL);
    size_t size;
    uint8_t *bytes = model(&g, 13, &size);
    struct coffer_nn_tensor in_t = ft(x, rank, xd);
    char what[300];
    snprintf(what, sizeof(what),
             "case %d: %s x[%lld,%lld,%lld,%lld] k %lld,%lld s %lld,%lld d %lld,%lld pads %lld,%lld,%lld,%lld "
             "ceil %lld include_pad %lld",
             t, is_max ? "MaxPool" : "AveragePool", (long long)xd[0], (long long)xd[1], (long long)xd[2],
             (long long)(nsp > 1 ? xd[3] : 0), (long long)k[0], (long long)(nsp > 1 ? k[1] : 0), (long long)s[0],
             (long long)(nsp > 1 ? s[1] : 0), (long long)d[0], (long long)(nsp > 1 ? d[1] : 0), (long long)pads[0],
             (long long)pads[1], (long long)(nsp > 1 ? pads[2] : 0), (long long)(nsp > 1 ? pads[3] : 0),
             (long long)ceil_mode, (long long)cip);
    compare_models(isa, bytes, size, &in_t, 1, what);
    coffer_free(bytes);
    free(x);
}

static void pool_tests(enum nn_isa_id id)
{
    const struct nn_isa *isa = need(id);
    rng_state = 4242 + (uint64_t)id;
    for (int t = 0; t < 80; t++)
        pool_case(isa, t);
}

void test_kernels_pool_avx2(void **state)
{
    (void)state;
    pool_tests(NN_ISA_AVX2);
}

void test_kernels_pool_avx512(void **state)
{
    (void)state;
    pool_tests(NN_ISA_AVX512);
}

/* The thread pool goes on alone after waiting long for a worker the OS
 * did not run (kern.h, NN_POOL_SOLO_RUNS), then takes the worker again.
 * The stalled worker is simulated: the caller's task returns once the
 * worker has started its own, and the worker's task then sleeps, from
 * the moment the caller's returned, 5 ms or four times as long as the
 * caller's took, whichever is longer (so however the two are scheduled,
 * the caller waits over 1 ms and over twice its own share). */
struct solo_arg {
    atomic_int worker_tasks, worker_started;
    atomic_llong caller_done;
    int64_t start_ns;
    bool stall;
};

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec d = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    nanosleep(&d, NULL);
}

static void solo_task(void *arg, int64_t t, int tid)
{
    struct solo_arg *a = arg;
    if (tid != 0) {
        atomic_fetch_add(&a->worker_tasks, 1);
        atomic_store(&a->worker_started, 1);
        if (a->stall) {
            int64_t done = 0;
            for (int i = 0; i < 5000 && (done = atomic_load(&a->caller_done)) == 0; i++)
                sleep_ns(1000000);
            int64_t ns = 4 * (done - a->start_ns);
            ns = ns > 5000000 ? ns : 5000000;
            ns -= mono_ns() - done;
            if (ns > 0)
                sleep_ns(ns);
        }
        return;
    }
    if (t == 0) { /* the caller's own task: until the worker is inside its own (at most 5 s) */
        for (int i = 0; i < 5000 && atomic_load(&a->worker_started) == 0; i++)
            sleep_ns(1000000);
        atomic_store(&a->caller_done, mono_ns());
    }
}

static int solo_run(struct nn_pool *p, bool stall)
{
    struct solo_arg a = {.start_ns = mono_ns(), .stall = stall};
    atomic_init(&a.worker_tasks, 0);
    atomic_init(&a.worker_started, 0);
    atomic_init(&a.caller_done, 0);
    nn_pool_run_fixed(p, 2, 2, solo_task, &a);
    return atomic_load(&a.worker_tasks);
}

void test_nn_pool_solo(void **state)
{
    (void)state;
    struct nn_pool *p = nn_pool_new(2);
    assert_non_null(p);
    if (nn_pool_size(p) < 2) {
        nn_pool_free(p);
        skip();
    }
    assert_int_equal(solo_run(p, true), 1); /* the worker took task 1 and stalled */
    /* the next runs are the caller's alone: no task reaches the worker */
    for (int i = 0; i < NN_POOL_SOLO_RUNS; i++) {
        struct solo_arg a = {.start_ns = mono_ns()};
        atomic_init(&a.worker_tasks, 0);
        atomic_init(&a.worker_started, 1);
        atomic_init(&a.caller_done, 0);
        nn_pool_run_fixed(p, 2, 2, solo_task, &a);
        assert_int_equal(atomic_load(&a.worker_tasks), 0);
    }
    /* and then the worker again (its task returns at once, so it may also
     * take the caller's before the caller gets to it: 1 or 2) */
    assert_true(solo_run(p, false) >= 1);
    nn_pool_free(p);
}

/* Every task of every run runs exactly once, whichever threads take it:
 * runs of 0 to 100 tasks (fixed mode up to NN_POOL_FIXED_MAX, taken as
 * a plain run past it) on 1 to 5 of a pool of 3, tasks of uneven length
 * (so that threads done with their own take others'), now and then after
 * a pause long enough for the workers to go to sleep. */
struct once_arg {
    atomic_int count[100];
    atomic_int wrong_tid; /* a thread past the run's width took a task */
    int width;
};

static void once_task(void *arg, int64_t t, int tid)
{
    struct once_arg *a = arg;
    atomic_fetch_add(&a->count[t], 1);
    if (tid < 0 || tid >= a->width)
        atomic_store(&a->wrong_tid, 1);
    volatile float x = (float)t;
    for (int i = 0; i < (int)(t % 7) * 200; i++)
        x = x * 0.999f + 1.0f;
}

void test_nn_pool_once(void **state)
{
    (void)state;
    struct nn_pool *p = nn_pool_new(3);
    assert_non_null(p);
    srand(41);
    for (int run = 0; run < 3000; run++) {
        struct once_arg a = {.width = 1 + rand() % 5};
        int64_t ntasks = rand() % 101;
        bool fixed = rand() % 2;
        for (int t = 0; t < 100; t++)
            atomic_init(&a.count[t], 0);
        atomic_init(&a.wrong_tid, 0);
        if (run % 500 == 499)
            sleep_ns(20000000); /* the workers asleep on the condition variable */
        (fixed ? nn_pool_run_fixed : nn_pool_run)(p, a.width, ntasks, once_task, &a);
        for (int64_t t = 0; t < ntasks; t++)
            assert_int_equal(atomic_load(&a.count[t]), 1);
        for (int64_t t = ntasks; t < 100; t++)
            assert_int_equal(atomic_load(&a.count[t]), 0);
        assert_int_equal(atomic_load(&a.wrong_tid), 0);
    }
    nn_pool_free(p);
}

/* The process's choice is one the CPU has, and reported by info. */
void test_kernels_isa_choice(void **state)
{
    (void)state;
    const char *why;
    const struct nn_isa *isa = nn_isa_default(&why);
    if (isa == NULL) {
        printf("nn kernels: isa choice skipped: %s\n", why);
        skip();
    }
    assert_ptr_equal(nn_isa_get(isa->id), isa);
    const char *env = getenv("COFFER_NN_ISA");
    if (env == NULL || env[0] == '\0') /* the best this CPU has */
        for (int i = isa->id + 1; i < NN_ISA_COUNT; i++)
            assert_null(nn_isa_get((enum nn_isa_id)i));
    else
        assert_string_equal(env, isa->name);
    assert_true(nn_cpu_count() >= 1);
}

/* ------------------------------------------- weights left in the file */

/* Large misaligned float32 weights read only as Conv/Gemm/MatMul weights
 * are not copied at parse (onnx.c, defer_settle): the packers read them
 * from a staging buffer, a node that reads them unpacked from a copy made
 * by the plan. The model: a convolution of the input by W1 (packed), one
 * of the constant C0 by W4 (folded at plan time: W4 copied), their sum
 * through Relu and Flatten into MatMul by W2 (packed), and W3 also a
 * graph output (copied at parse). Loaded at each of the four byte offsets
 * mod 4, so each of them is misaligned in three: the outputs are the same
 * bits at every offset, and exactly the bytes that must be copied are. */
static uint8_t *defer_model(const float *w1, const float *w4, const float *w2, const float *w3, const float *c0,
                            size_t *size)
{
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec pads[] = {{"pads", 7, 0, 0, (int64_t[]){1, 1, 1, 1}, 4, NULL}};
    node(&g, "Conv", "ca", (const char *[]){"X", "W1"}, 2, (const char *[]){"A"}, 1, pads, 1);
    node(&g, "Conv", "cb", (const char *[]){"C0", "W4"}, 2, (const char *[]){"B"}, 1, pads, 1);
    node(&g, "Add", "s", (const char *[]){"A", "B"}, 2, (const char *[]){"S"}, 1, NULL, 0);
    node(&g, "Relu", "r", (const char *[]){"S"}, 1, (const char *[]){"R"}, 1, NULL, 0);
    node(&g, "Flatten", "f", (const char *[]){"R"}, 1, (const char *[]){"F"}, 1, NULL, 0);
    node(&g, "MatMul", "mm", (const char *[]){"F", "W2"}, 2, (const char *[]){"Y"}, 1, NULL, 0);
    pb_str(&g, 2, "defer");
    tensor(&g, 5, "W1", COFFER_NN_FLOAT, 4, (int64_t[]){16, 8, 3, 3}, w1, 1152);
    tensor(&g, 5, "W4", COFFER_NN_FLOAT, 4, (int64_t[]){16, 8, 3, 3}, w4, 1152);
    tensor(&g, 5, "W2", COFFER_NN_FLOAT, 2, (int64_t[]){576, 8}, w2, 4608);
    tensor(&g, 5, "W3", COFFER_NN_FLOAT, 2, (int64_t[]){32, 32}, w3, 1024);
    tensor(&g, 5, "C0", COFFER_NN_FLOAT, 4, (int64_t[]){1, 8, 6, 6}, c0, 288);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 4, (int64_t[]){-1, 8, 6, 6});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 2, (int64_t[]){-1, 8});
    value_info(&g, 12, "W3", COFFER_NN_FLOAT, 2, (int64_t[]){32, 32});
    return model(&g, 13, size);
}

/* Whether the float data p (n of them) lies misaligned in the model at b. */
static bool mis(const uint8_t *b, size_t size, const float *p, size_t n)
{
    for (size_t o = 0; o + n * 4 <= size; o++)
        if (memcmp(b + o, p, n * 4) == 0)
            return (uintptr_t)(b + o) % 4 != 0;
    fail_msg("tensor data not found in the model");
    return false;
}

static enum coffer_err defer_fault_body(void *arg)
{
    const struct coffer_buf *mb = arg;
    struct coffer_nn_model *m;
    enum coffer_err r = coffer_nn_model_load(mb->data, mb->size, &m);
    if (r != COFFER_OK)
        return r;
    float x[2 * 288] = {0};
    struct coffer_nn_tensor in = ft(x, 4, (int64_t[]){2, 8, 6, 6}), out[2];
    r = coffer_nn_model_run(m, &in, 1, out, 2); /* re-plans for batch 2 */
    coffer_nn_model_free(m);
    return r;
}

void test_kernels_deferred_weights(void **state)
{
    (void)state;
    rng_state = 77;
    float *w1 = rbuf(1152), *w4 = rbuf(1152), *w2 = rbuf(4608), *w3 = rbuf(1024), *c0 = rbuf(288), *x = rbuf(288);
    size_t size;
    uint8_t *bytes = defer_model(w1, w4, w2, w3, c0, &size);
    uint8_t *buf = malloc(size + 64);
    assert_non_null(buf);
    struct coffer_nn_tensor in = ft(x, 4, (int64_t[]){1, 8, 6, 6});
    float want_ref[8];
    for (int id = NN_ISA_REF; id < NN_ISA_COUNT; id++) {
        const struct nn_isa *isa = nn_isa_get((enum nn_isa_id)id);
        if (isa == NULL) {
            printf("nn kernels: deferred weights on %s skipped: this CPU lacks it\n", nn_isa_name((enum nn_isa_id)id));
            continue;
        }
        float first[8];
        int n_defer = 0;
        for (int s = 0; s < 4; s++) {
            uint8_t *b = buf + 16 + s; /* (malloc: 16-aligned) */
            memcpy(b, bytes, size);
            bool m1 = mis(b, size, w1, 1152), m4 = mis(b, size, w4, 1152), m2 = mis(b, size, w2, 4608);
            bool m3 = mis(b, size, w3, 1024), mc = mis(b, size, c0, 288);
            n_defer += m1 + m2;
            struct coffer_nn_model *m;
            assert_int_equal(coffer_nn_model_load(b, size, &m), COFFER_OK);
            m->isa = isa;
            m->threads = 1;
            m->planned = false;
            struct coffer_nn_tensor out[2];
            for (int twice = 0; twice < 2; twice++) { /* and again, re-planned: staged again */
                m->planned = false;
                assert_int_equal(coffer_nn_model_run(m, &in, 1, out, 2), COFFER_OK);
                assert_int_equal(out[0].size, 8 * sizeof(float));
                assert_memory_equal(out[1].data, w3, sizeof(float) * 1024);
                if (s == 0 && twice == 0)
                    memcpy(first, out[0].data, sizeof(first));
                else
                    assert_memory_equal(out[0].data, first, sizeof(first));
            }
            struct coffer_nn_info info;
            assert_int_equal(coffer_nn_model_info(m, &info), COFFER_OK);
            /* copied: the small C0 as always; W3 (an output) at parse; W4 for
             * the folding; W1 and W2 only where the kernels read them unpacked */
            size_t want = (mc ? 1152u : 0) + (m3 ? 4096u : 0) + (m4 ? 4608u : 0);
            if (id == NN_ISA_REF)
                want += (m1 ? 4608u : 0) + (m2 ? 18432u : 0);
            assert_int_equal(info.weights_copied, want);
            coffer_nn_model_free(m);
        }
        assert_int_equal(n_defer, 6); /* (each misaligned at three offsets of four) */
        if (id == NN_ISA_REF)
            memcpy(want_ref, first, sizeof(first));
        else
            near(first, want_ref, 8, 2e-4, "deferred weights");
    }
    struct coffer_buf mb = {.data = bytes, .size = size};
    tu_fault_loop(defer_fault_body, &mb);
    free(buf);
    coffer_free(bytes);
    free(w1), free(w4), free(w2), free(w3), free(c0), free(x);
}

/* ------------------------------------ packed weights kept over re-plans */

/* A new batch size re-plans, and weights packed by an earlier plan are
 * kept for it where it packs them the same way (fast.c, take_w), in
 * memory of their own, whatever the rest of the plan's pack looks like.
 * Two models, each planned again and again at changing batch sizes and
 * Winograd modes (so that the convolutions' kernels, and with them how
 * their weights are packed, change between plans), with the weights in
 * place and misaligned (staged to be packed), every output against the
 * reference kernels'.
 * "dense": X0 [N, 64] by W0 (MatMul), reshaped to [N, 32, 4, 4]; a 3x3
 * convolution by W1 on NCHW (im2col, or Winograd); Relu, Flatten, MatMul
 * by W2, Gemm by W3 (transB, alpha, a bias).
 * "blocked": X [N, 16, 8, 8]; a 3x3 convolution by WA (NCHW in, blocked
 * out) with a BatchNorm folded into it and Relu; a 3x3 convolution by WB
 * on the blocked layout (direct, or Winograd F(4x4), F(2x2), F(5x5), or
 * with U made as it is used), Relu; a 3x3 stride-2 convolution by WC
 * (direct, or in 2x2 Winograd tiles), Relu; GlobalAveragePool. */
static uint8_t *dense_model(const float *w0, const float *w1, const float *w2, const float *w3, const float *b3,
                            size_t *size)
{
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec pads[] = {{"pads", 7, 0, 0, (int64_t[]){1, 1, 1, 1}, 4, NULL}};
    struct attr_spec gm[] = {{"transB", 2, 0, 1, NULL, 0, NULL}, {"alpha", 1, 0.5f, 0, NULL, 0, NULL}};
    node(&g, "MatMul", "m0", (const char *[]){"X0", "W0"}, 2, (const char *[]){"P"}, 1, NULL, 0);
    node(&g, "Reshape", "rs", (const char *[]){"P", "shape"}, 2, (const char *[]){"X"}, 1, NULL, 0);
    node(&g, "Conv", "c", (const char *[]){"X", "W1"}, 2, (const char *[]){"A"}, 1, pads, 1);
    node(&g, "Relu", "r", (const char *[]){"A"}, 1, (const char *[]){"R"}, 1, NULL, 0);
    node(&g, "Flatten", "f", (const char *[]){"R"}, 1, (const char *[]){"F"}, 1, NULL, 0);
    node(&g, "MatMul", "m2", (const char *[]){"F", "W2"}, 2, (const char *[]){"M"}, 1, NULL, 0);
    node(&g, "Gemm", "gm", (const char *[]){"M", "W3", "B3"}, 3, (const char *[]){"Y"}, 1, gm, 2);
    pb_str(&g, 2, "dense");
    tensor(&g, 5, "W0", COFFER_NN_FLOAT, 2, (int64_t[]){64, 512}, w0, 32768);
    tensor(&g, 5, "shape", COFFER_NN_INT64, 1, (int64_t[]){4}, (int64_t[]){-1, 32, 4, 4}, 4);
    tensor(&g, 5, "W1", COFFER_NN_FLOAT, 4, (int64_t[]){32, 32, 3, 3}, w1, 9216);
    tensor(&g, 5, "W2", COFFER_NN_FLOAT, 2, (int64_t[]){512, 8}, w2, 4096);
    tensor(&g, 5, "W3", COFFER_NN_FLOAT, 2, (int64_t[]){24, 8}, w3, 192);
    tensor(&g, 5, "B3", COFFER_NN_FLOAT, 1, (int64_t[]){24}, b3, 24);
    value_info(&g, 11, "X0", COFFER_NN_FLOAT, 2, (int64_t[]){-1, 64});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 2, (int64_t[]){-1, 24});
    return model(&g, 13, size);
}

static uint8_t *blocked_model(float *const t[8], size_t *size)
{
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec pads[] = {{"pads", 7, 0, 0, (int64_t[]){1, 1, 1, 1}, 4, NULL}};
    struct attr_spec s2[] = {{"pads", 7, 0, 0, (int64_t[]){1, 1, 1, 1}, 4, NULL},
                             {"strides", 7, 0, 0, (int64_t[]){2, 2}, 2, NULL}};
    node(&g, "Conv", "ca", (const char *[]){"X", "WA"}, 2, (const char *[]){"a"}, 1, pads, 1);
    node(&g, "BatchNormalization", "bn", (const char *[]){"a", "s", "bb", "mean", "var"}, 5, (const char *[]){"b"}, 1,
         NULL, 0);
    node(&g, "Relu", "ra", (const char *[]){"b"}, 1, (const char *[]){"c"}, 1, NULL, 0);
    node(&g, "Conv", "cb", (const char *[]){"c", "WB"}, 2, (const char *[]){"d"}, 1, pads, 1);
    node(&g, "Relu", "rb", (const char *[]){"d"}, 1, (const char *[]){"e"}, 1, NULL, 0);
    node(&g, "Conv", "cc", (const char *[]){"e", "WC"}, 2, (const char *[]){"f"}, 1, s2, 2);
    node(&g, "Relu", "rc", (const char *[]){"f"}, 1, (const char *[]){"h"}, 1, NULL, 0);
    node(&g, "GlobalAveragePool", "gp", (const char *[]){"h"}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    pb_str(&g, 2, "blocked");
    tensor(&g, 5, "WA", COFFER_NN_FLOAT, 4, (int64_t[]){32, 16, 3, 3}, t[0], 4608);
    tensor(&g, 5, "s", COFFER_NN_FLOAT, 1, (int64_t[]){32}, t[1], 32);
    tensor(&g, 5, "bb", COFFER_NN_FLOAT, 1, (int64_t[]){32}, t[2], 32);
    tensor(&g, 5, "mean", COFFER_NN_FLOAT, 1, (int64_t[]){32}, t[3], 32);
    tensor(&g, 5, "var", COFFER_NN_FLOAT, 1, (int64_t[]){32}, t[4], 32);
    tensor(&g, 5, "WB", COFFER_NN_FLOAT, 4, (int64_t[]){64, 32, 3, 3}, t[5], 18432);
    tensor(&g, 5, "WC", COFFER_NN_FLOAT, 4, (int64_t[]){64, 64, 3, 3}, t[6], 36864);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 4, (int64_t[]){-1, 16, 8, 8});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 4, (int64_t[]){-1, 64, 1, 1});
    return model(&g, 13, size);
}

static uint8_t *wide_model(const float *wa, const float *wb, size_t *size)
{
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec pads[] = {{"pads", 7, 0, 0, (int64_t[]){1, 1, 1, 1}, 4, NULL}};
    node(&g, "Conv", "ca", (const char *[]){"X", "WA"}, 2, (const char *[]){"a"}, 1, pads, 1);
    node(&g, "Relu", "ra", (const char *[]){"a"}, 1, (const char *[]){"b"}, 1, NULL, 0);
    node(&g, "Conv", "cb", (const char *[]){"b", "WB"}, 2, (const char *[]){"c"}, 1, NULL, 0);
    node(&g, "Relu", "rb", (const char *[]){"c"}, 1, (const char *[]){"d"}, 1, NULL, 0);
    node(&g, "GlobalAveragePool", "gp", (const char *[]){"d"}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    pb_str(&g, 2, "wide");
    tensor(&g, 5, "WA", COFFER_NN_FLOAT, 4, (int64_t[]){32, 16, 3, 3}, wa, 4608);
    tensor(&g, 5, "WB", COFFER_NN_FLOAT, 4, (int64_t[]){192, 32, 1, 1}, wb, 6144);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 4, (int64_t[]){-1, 16, 4, 4});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 4, (int64_t[]){-1, 192, 1, 1});
    return model(&g, 13, size);
}

struct keep_plan {
    int64_t n;
    int wino;
    int lin, ksec; /* (where keep_case.modes) */
};

struct keep_case {
    const char *name;
    const uint8_t *bytes;
    size_t size;
    const float *x;
    int64_t item;              /* input floats an item */
    int64_t dims[4];           /* the input's, dims[0] set per plan */
    int rank;
    int64_t out_item;          /* output floats an item */
    const struct keep_plan *plans;
    size_t n_plans;
    int threads;
    bool modes;                /* plans set m->lin and m->ksec */
    const float *want[6];      /* the reference kernels' output per batch size */
};

/* Load c's model (at byte offset s in buf) on isa and plan it per
 * c->plans, keeping earlier plans' packed weights as mode says; every
 * output against the reference. The weights' packings kept after the
 * first plan and the
 * model's kept ones for isa after the last plan in *kept and *held. */
static void keep_run(const struct keep_case *c, uint8_t *buf, int s, const struct nn_isa *isa, int mode,
                     size_t *kept, size_t *held)
{
    uint8_t *b = buf + 16 + s;
    memcpy(b, c->bytes, c->size);
    struct coffer_nn_model *m;
    struct coffer_nn_options o = {.threads = c->threads, .keep_packs = mode == NN_WKEEP_AUTO};
    assert_int_equal(coffer_nn_model_load_opts(b, c->size, &o, &m), COFFER_OK);
    assert_int_equal(m->wkeep_other, mode == NN_WKEEP_AUTO ? NN_WKEEP_AUTO : NN_WKEEP_OFF);
    m->isa = isa;
    m->wkeep_other = mode;
    m->wkeep_min = 0;
    m->tune = NN_TUNE_OFF; /* (the kernels as the Winograd mode says) */
    size_t kept0 = 0;
    for (size_t p = 0; p < c->n_plans; p++) {
        m->wino = c->plans[p].wino;
        if (c->modes) {
            m->lin = c->plans[p].lin;
            m->ksec = c->plans[p].ksec;
        }
        m->planned = false;
        int64_t n = c->plans[p].n, dims[4];
        memcpy(dims, c->dims, sizeof(dims));
        dims[0] = n;
        struct coffer_nn_tensor in = ft((float *)c->x, c->rank, dims), out;
        assert_int_equal(coffer_nn_model_run(m, &in, 1, &out, 1), COFFER_OK);
        assert_int_equal(out.size, (size_t)(n * c->out_item) * sizeof(float));
        char what[96];
        snprintf(what, sizeof(what), "%s, %s, offset %d, keep mode %d, plan %zu", c->name, isa->name, s, mode, p);
        near(out.data, c->want[n], (size_t)(n * c->out_item), 2e-4, what);
        if (p == 0) /* (the load planned on the default ISA, not always isa) */
            kept0 = m->packs_kept;
        /* what earlier plans packed and this one does not take: at most
         * as many bytes as this one's (keep_packs) */
        size_t now = 0, other = 0;
        for (size_t i = 0; i < m->n_wkeep; i++)
            *(m->wkeep[i].gen == m->plan_gen ? &now : &other) += m->wkeep[i].mem->size;
        if (mode == NN_WKEEP_AUTO)
            assert_true(other <= now);
        if (mode == NN_WKEEP_OFF)
            assert_int_equal(other, 0);
    }
    *kept = m->packs_kept - kept0;
    *held = 0; /* (on this ISA: the load planned on the default one) */
    for (size_t i = 0; i < m->n_wkeep; i++)
        *held += m->wkeep[i].key[1] == isa->id;
    coffer_nn_model_free(m);
}

static void keep_want(struct keep_case *c, float *want)
{
    struct coffer_nn_model *ref;
    assert_int_equal(coffer_nn_model_load(c->bytes, c->size, &ref), COFFER_OK);
    ref->isa = nn_isa_get(NN_ISA_REF);
    ref->planned = false;
    for (int64_t n = 1; n <= 5; n++) {
        int64_t dims[4];
        memcpy(dims, c->dims, sizeof(dims));
        dims[0] = n;
        struct coffer_nn_tensor in = ft((float *)c->x, c->rank, dims), out;
        assert_int_equal(coffer_nn_model_run(ref, &in, 1, &out, 1), COFFER_OK);
        assert_int_equal(out.size, (size_t)(n * c->out_item) * sizeof(float));
        memcpy(want + (n - 1) * 5 * c->out_item, out.data, out.size);
        c->want[n] = want + (n - 1) * 5 * c->out_item;
    }
    coffer_nn_model_free(ref);
}

void test_kernels_packs_kept(void **state)
{
    (void)state;
    rng_state = 91;
    float *w0 = rbuf(32768), *w1 = rbuf(9216), *w2 = rbuf(4096), *w3 = rbuf(192), *b3 = rbuf(24), *x0 = rbuf(5 * 64);
    float *t[8] = {rbuf(4608), rbuf(32), rbuf(32), rbuf(32), rbuf(32), rbuf(18432), rbuf(36864), NULL};
    for (int k = 0; k < 32; k++)
        t[4][k] = fabsf(t[4][k]) + 0.5f; /* (variances) */
    float *x = rbuf(5 * 1024);
    /* (batch, Winograd mode) of each plan in turn */
    static const struct keep_plan dplans[] = {{1, NN_WINO_OFF}, {3, NN_WINO_ALWAYS}, {3, NN_WINO_OFF},
                                              {1, NN_WINO_ALWAYS}, {2, NN_WINO_ALWAYS}, {2, NN_WINO_OFF},
                                              {5, NN_WINO_OFF}, {5, NN_WINO_ALWAYS}, {1, NN_WINO_OFF}};
    static const struct keep_plan bplans[] = {{1, NN_WINO_OFF}, {2, NN_WINO_ALWAYS}, {1, NN_WINO_F2}, {3, NN_WINO_F5},
                                              {2, NN_WINO_OFF}, {1, NN_WINO_FLY}, {3, NN_WINO_ALWAYS}, {2, NN_WINO_F2},
                                              {1, NN_WINO_F5}, {2, NN_WINO_FLY}, {4, NN_WINO_OFF}};
    /* (wide: on 2 threads, WB's 192 output channels in 3 groups of 64,
     * the last one packed in halves where the direct kernel's tiles are
     * neither split by runs of (group, tile) nor reduced in sections:
     * half_last, in the key; the plans' two passes must agree on it) */
    static const struct keep_plan wplans[] = {
        {1, NN_WINO_AUTO, NN_LIN_OFF, NN_KSEC_AUTO},    {2, NN_WINO_AUTO, NN_LIN_ALWAYS, NN_KSEC_AUTO},
        {2, NN_WINO_AUTO, NN_LIN_OFF, NN_KSEC_AUTO},    {1, NN_WINO_AUTO, NN_LIN_ALWAYS, NN_KSEC_AUTO},
        {3, NN_WINO_AUTO, NN_LIN_ALWAYS, NN_KSEC_AUTO}, {3, NN_WINO_AUTO, NN_LIN_OFF, NN_KSEC_ALWAYS},
        {2, NN_WINO_AUTO, NN_LIN_OFF, NN_KSEC_AUTO}};
    struct keep_case cases[3] = {
        {.name = "dense", .x = x0, .item = 64, .dims = {0, 64}, .rank = 2, .out_item = 24, .plans = dplans,
         .n_plans = sizeof(dplans) / sizeof(dplans[0]), .threads = 1},
        {.name = "blocked", .x = x, .item = 1024, .dims = {0, 16, 8, 8}, .rank = 4, .out_item = 64, .plans = bplans,
         .n_plans = sizeof(bplans) / sizeof(bplans[0]), .threads = 1},
        {.name = "wide", .x = x, .item = 256, .dims = {0, 16, 4, 4}, .rank = 4, .out_item = 192, .plans = wplans,
         .n_plans = sizeof(wplans) / sizeof(wplans[0]), .threads = 2, .modes = true},
    };
    uint8_t *bytes[3] = {dense_model(w0, w1, w2, w3, b3, &cases[0].size), blocked_model(t, &cases[1].size),
                         wide_model(t[0], t[6], &cases[2].size)};
    float *want[3];
    for (int k = 0; k < 3; k++) {
        cases[k].bytes = bytes[k];
        want[k] = malloc((size_t)(25 * cases[k].out_item) * sizeof(float));
        assert_non_null(want[k]);
        keep_want(&cases[k], want[k]);
    }
    uint8_t *buf = malloc(cases[0].size + cases[1].size + cases[2].size + 64);
    assert_non_null(buf);
    for (int id = NN_ISA_AVX2; id < NN_ISA_COUNT; id++) {
        const struct nn_isa *isa = nn_isa_get((enum nn_isa_id)id);
        if (isa == NULL) {
            printf("nn kernels: packed weights kept on %s skipped: this CPU lacks it\n",
                   nn_isa_name((enum nn_isa_id)id));
            continue;
        }
        for (int s = 0; s < 2; s++) { /* the weights in place, and misaligned (staged to be packed) */
            size_t kept, held;
            /* dense: W0, W2 and W3 packed once, kept by the 8 plans after
             * the first; W1 im2col's and Winograd's, each packed once (plans
             * 0 and 1) and kept by the 7 plans after plan 1 */
            keep_run(&cases[0], buf, s, isa, NN_WKEEP_ALL, &kept, &held);
            assert_int_equal(kept, 3 * 8 + 7);
            assert_int_equal(held, 5);
            /* only the current plan's: W1's kept only by plans 4 and 6 (the
             * same mode as the plan before) */
            keep_run(&cases[0], buf, s, isa, NN_WKEEP_OFF, &kept, &held);
            assert_int_equal(kept, 3 * 8 + 2);
            assert_int_equal(held, 4);
            /* the default: W1's other packing (36 or 147 KiB) within the
             * current plan's bytes (over 180 KiB), so all kept */
            keep_run(&cases[0], buf, s, isa, NN_WKEEP_AUTO, &kept, &held);
            assert_int_equal(kept, 3 * 8 + 7);
            assert_int_equal(held, 5);
            /* blocked, on AVX-512 (the blocked layout): WA's packing kept by
             * the 10 plans after the first; WB's five (direct, F(4x4),
             * F(2x2), F(5x5), made as used) each kept by its second plan
             * (6 in all: the direct one also by the last); WC's two (direct,
             * 2x2 tiles) by all 10 (the 2x2 tiles' from the load's plan).
             * Only the current plan's: WB's never (no two plans in a row
             * alike), WC's 2x2 tiles' by plans 2, 3 and 6-9. On AVX2 (NCHW):
             * WA's and WB's two each (im2col, Winograd) kept by 9 plans,
             * WC's (im2col) by 10; only the current plan's: WA's and WB's
             * by plans 2, 3 and 6-9. */
            bool b16 = id == NN_ISA_AVX512;
            keep_run(&cases[1], buf, s, isa, NN_WKEEP_ALL, &kept, &held);
            assert_int_equal(kept, b16 ? 10 + 6 + 10 : 10 + 9 + 9);
            assert_int_equal(held, b16 ? 8 : 5);
            keep_run(&cases[1], buf, s, isa, NN_WKEEP_OFF, &kept, &held);
            assert_int_equal(kept, b16 ? 10 + 0 + 6 : 10 + 6 + 6);
            assert_int_equal(held, 3);
            /* keep_packs: the packings of WB and WC a plan does not take
             * weigh more than those it takes, so some go, the least
             * recently taken first, of those the largest. On AVX-512 (KiB:
             * WA 18; WB direct 72, F(4x4) 288, F(2x2) 128, F(5x5) 392, as
             * used 72; WC direct 144, 2x2 tiles 256): plan 2 drops WC's
             * direct one (plan 0's), plan 4 all but WB's direct one, plan 7
             * WC's and WB's direct ones, plan 9 WB's Winograd U's, plan 10
             * WC's tiles': kept by plans 1-10 1, 2, 2, 2, 1, 2, 2, 2, 3, 1
             * times. On AVX2 (im2col's and Winograd's of WA and WB, WC's
             * im2col), only plan 4 drops one, WB's Winograd U, and the load's
             * AVX-512 packings go: kept 1, 3, 3, 3, 2, 3, 3, 3, 3, 3 times.
             * Each time WA's, WB's direct one and WC's direct one stay, and
             * one more: WB's made as used, on AVX2 WA's Winograd U. */
            keep_run(&cases[1], buf, s, isa, NN_WKEEP_AUTO, &kept, &held);
            assert_int_equal(kept, b16 ? 18 : 27);
            assert_int_equal(held, 4);
            /* wide: WA's kept by the 6 plans after the first, and WB's:
             * on AVX-512 its two (half_last and not, the second from the
             * load's plan), on AVX2 its one */
            keep_run(&cases[2], buf, s, isa, NN_WKEEP_ALL, &kept, &held);
            assert_int_equal(kept, 6 + 6);
            assert_int_equal(held, b16 ? 3 : 2);
        }
    }
    free(buf);
    for (int k = 0; k < 3; k++) {
        coffer_free(bytes[k]);
        free(want[k]);
    }
    for (int k = 0; k < 7; k++)
        free(t[k]);
    free(w0), free(w1), free(w2), free(w3), free(b3), free(x0), free(x);
}

/* ------------------------------------------ the image-by-image segment */

/* X -> Relu -> X2 and X -> Sigmoid -> X3 (before the segment: ref kernels);
 * Conv(X2) + X3 -> Relu -> MaxPool (3x3, stride 1) -> P; 1x1 Conv(P) to
 * twice the channels -> Relu -> E2; Conv(E2) + P -> Relu -> Y1 (a graph
 * output); 1x1 Conv(Y1) -> R (the segment); GlobalAveragePool(R) -> Y2 and
 * GlobalAveragePool(X2) -> Y3 after it. So the segment reads values made
 * before it that die inside it (X3) and that later nodes read (X2), writes
 * a graph output (Y1) and a value read after it (R), and makes values only
 * it reads (P, E2 and the first Conv's output), E2 an image of it twice the
 * size of an image of X3. */
static uint8_t *seg_model(const float *w1, const float *w2, const float *w2b, const float *w3, int64_t c, int64_t hw,
                          size_t *size)
{
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec pads[] = {{"pads", 7, 0, 0, (int64_t[]){1, 1, 1, 1}, 4, NULL}};
    struct attr_spec pool[] = {{"kernel_shape", 7, 0, 0, (int64_t[]){3, 3}, 2, NULL},
                               {"pads", 7, 0, 0, (int64_t[]){1, 1, 1, 1}, 4, NULL}};
    node(&g, "Relu", "x2", (const char *[]){"X"}, 1, (const char *[]){"X2"}, 1, NULL, 0);
    node(&g, "Sigmoid", "x3", (const char *[]){"X"}, 1, (const char *[]){"X3"}, 1, NULL, 0);
    node(&g, "Conv", "c1", (const char *[]){"X2", "W1"}, 2, (const char *[]){"A"}, 1, pads, 1);
    node(&g, "Add", "a1", (const char *[]){"A", "X3"}, 2, (const char *[]){"A2"}, 1, NULL, 0);
    node(&g, "Relu", "r1", (const char *[]){"A2"}, 1, (const char *[]){"B"}, 1, NULL, 0);
    node(&g, "MaxPool", "p", (const char *[]){"B"}, 1, (const char *[]){"P"}, 1, pool, 2);
    node(&g, "Conv", "c2", (const char *[]){"P", "W2"}, 2, (const char *[]){"E"}, 1, NULL, 0);
    node(&g, "Relu", "r2", (const char *[]){"E"}, 1, (const char *[]){"E2"}, 1, NULL, 0);
    node(&g, "Conv", "c2b", (const char *[]){"E2", "W2b"}, 2, (const char *[]){"F"}, 1, pads, 1);
    node(&g, "Add", "a2", (const char *[]){"F", "P"}, 2, (const char *[]){"Q"}, 1, NULL, 0);
    node(&g, "Relu", "r3", (const char *[]){"Q"}, 1, (const char *[]){"Y1"}, 1, NULL, 0);
    node(&g, "Conv", "c3", (const char *[]){"Y1", "W3"}, 2, (const char *[]){"R"}, 1, NULL, 0);
    node(&g, "GlobalAveragePool", "g2", (const char *[]){"R"}, 1, (const char *[]){"Y2"}, 1, NULL, 0);
    node(&g, "GlobalAveragePool", "g3", (const char *[]){"X2"}, 1, (const char *[]){"Y3"}, 1, NULL, 0);
    pb_str(&g, 2, "seg");
    tensor(&g, 5, "W1", COFFER_NN_FLOAT, 4, (int64_t[]){c, c, 3, 3}, w1, (size_t)(c * c * 9));
    tensor(&g, 5, "W2", COFFER_NN_FLOAT, 4, (int64_t[]){2 * c, c, 1, 1}, w2, (size_t)(2 * c * c));
    tensor(&g, 5, "W2b", COFFER_NN_FLOAT, 4, (int64_t[]){c, 2 * c, 3, 3}, w2b, (size_t)(c * 2 * c * 9));
    tensor(&g, 5, "W3", COFFER_NN_FLOAT, 4, (int64_t[]){2 * c, c, 1, 1}, w3, (size_t)(2 * c * c));
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 4, (int64_t[]){-1, c, hw, hw});
    value_info(&g, 12, "Y1", COFFER_NN_FLOAT, 0, NULL);
    value_info(&g, 12, "Y2", COFFER_NN_FLOAT, 0, NULL);
    value_info(&g, 12, "Y3", COFFER_NN_FLOAT, 0, NULL);
    return model(&g, 13, size);
}

/* Run seg_model on isa (seg: the mode) twice; the three outputs of the
 * first run into out (malloc), the second run's checked to equal them;
 * kinds[0]: the nodes in the segment, kinds[k]: the values whose
 * enum nn_seg_val is k. */
static void seg_run(const uint8_t *bytes, size_t size, const struct nn_isa *isa, int threads, int seg,
                    const struct coffer_nn_tensor *in, float *out[3], size_t cnt[3], int *kinds)
{
    struct coffer_nn_model *m;
    struct coffer_nn_options o = {.threads = 1};
    assert_int_equal(coffer_nn_model_load_opts(bytes, size, &o, &m), COFFER_OK);
    m->isa = isa;
    m->threads = threads;
    m->seg = seg;
    if (threads > 1)
        assert_non_null(m->pool = nn_pool_new(threads));
    m->planned = false;
    struct coffer_nn_tensor y[3];
    for (int run = 0; run < 2; run++) {
        assert_int_equal(coffer_nn_model_run(m, in, 1, y, 3), COFFER_OK);
        for (int k = 0; k < 3; k++) {
            if (run == 0) {
                cnt[k] = y[k].size / sizeof(float);
                out[k] = malloc(y[k].size + 4);
                memcpy(out[k], y[k].data, y[k].size);
            } else {
                assert_int_equal(cnt[k], y[k].size / sizeof(float));
                assert_memory_equal(out[k], y[k].data, y[k].size);
            }
        }
    }
    for (int k = 0; k < 4; k++)
        kinds[k] = 0;
    for (size_t i = 0; i < m->g.n_vals; i++)
        kinds[m->g.vals[i].seg]++;
    kinds[0] = 0; /* (nodes in the segment) */
    for (size_t i = 0; i < m->g.n_nodes; i++)
        kinds[0] += m->g.nodes[i].seg;
    coffer_nn_model_free(m);
}

void test_kernels_segment(void **state)
{
    (void)state;
    rng_state = 4242;
    coffer_log_set_level(COFFER_LOG_OFF);
    for (int t = 0; t < 6; t++) {
        int64_t c = t % 2 ? 16 : 32, hw = 6 + 2 * t, n = 2 + t % 3; /* 2 to 4 images */
        float *w1 = rbuf((size_t)(c * c * 9)), *w2 = rbuf((size_t)(2 * c * c)), *w2b = rbuf((size_t)(2 * c * c * 9));
        float *w3 = rbuf((size_t)(2 * c * c));
        /* (weights of about 1 / sqrt(fan-in): sums of the inputs' size, so
         * that Winograd's rounding stays within the bound) */
        for (int64_t i = 0; i < 2 * c * c * 9; i++) {
            if (i < c * c * 9)
                w1[i] /= sqrtf((float)(c * 9));
            if (i < 2 * c * c) {
                w2[i] /= sqrtf((float)c);
                w3[i] /= sqrtf((float)c);
            }
            w2b[i] /= sqrtf((float)(2 * c * 9));
        }
        float *x = rbuf((size_t)(n * c * hw * hw));
        size_t size;
        uint8_t *bytes = seg_model(w1, w2, w2b, w3, c, hw, &size);
        struct coffer_nn_tensor in = ft(x, 4, (int64_t[]){n, c, hw, hw});
        float *want[3], *got[3], *off[3];
        size_t nw[3], ng[3], no[3];
        int kinds[4], koff[4];
        seg_run(bytes, size, nn_isa_get(NN_ISA_REF), 1, NN_SEG_ALWAYS, &in, want, nw, kinds);
        assert_int_equal(kinds[0], 0); /* (the reference kernels: none) */
        for (int id = NN_ISA_AVX2; id < NN_ISA_COUNT; id++) {
            const struct nn_isa *isa = nn_isa_get((enum nn_isa_id)id);
            if (isa == NULL)
                continue;
            for (int threads = 1; threads <= 2; threads++) {
                seg_run(bytes, size, isa, threads, NN_SEG_ALWAYS, &in, got, ng, kinds);
                seg_run(bytes, size, isa, threads, NN_SEG_OFF, &in, off, no, koff);
                /* the four convolutions and the pool; values made and read
                 * inside (the first Conv's output, P, E2), made inside and
                 * read after (Y1, R), made before and read inside (X2, X3) */
                assert_int_equal(koff[0] + koff[NN_SEG_IMG] + koff[NN_SEG_OUT] + koff[NN_SEG_IN], 0);
                if (isa->bconv == NULL) { /* (no blocked kernels: no segment) */
                    assert_int_equal(kinds[0] + kinds[NN_SEG_IMG] + kinds[NN_SEG_OUT] + kinds[NN_SEG_IN], 0);
                } else {
                    assert_int_equal(kinds[0], 5);
                    assert_int_equal(kinds[NN_SEG_IMG], 3);
                    assert_int_equal(kinds[NN_SEG_OUT], 2);
                    assert_int_equal(kinds[NN_SEG_IN], 2);
                }
                char what[120];
                for (int k = 0; k < 3; k++) {
                    assert_int_equal(ng[k], nw[k]);
                    snprintf(what, sizeof(what), "segment case %d output %d (%s, %d threads)", t, k, isa->name,
                             threads);
                    near(off[k], want[k], nw[k], 2e-4, what);
                    near(got[k], want[k], nw[k], 2e-4, what);
                    free(got[k]);
                    free(off[k]);
                }
            }
        }
        for (int k = 0; k < 3; k++)
            free(want[k]);
        coffer_free(bytes);
        free(w1), free(w2), free(w2b), free(w3), free(x);
    }
}
