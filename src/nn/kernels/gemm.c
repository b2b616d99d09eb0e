/*
 * gemm.c — the blocked SGEMM driver shared by every ISA: packing (also the
 * implicit im2col of a convolution), cache blocking and the split into
 * tasks for the thread pool.
 *
 * Design (the BLIS loop order, kern.h for the layouts): a task owns a block
 * of rows [m0, m1) and columns [n0, n1) of one C matrix (one image and
 * group of a batched job). For each K block of at most KC it packs its
 * columns of B (KC x NC floats, sized to stay in L2) unless B was packed at
 * load, packs its rows of A unless A was packed at load, and runs the
 * micro-kernel over every MR x NR tile, column tiles outer: one B panel
 * (KC x NR) stays in L1 while the A micro-panels (MR x KC, a sixth of its
 * size) stream from L2 (measured 5-10 % faster on 1x1 and 3x3 layers than
 * rows outer). The first K block overwrites C (unless the
 * job accumulates), the last applies the fused epilogue. Tasks are sized so
 * that there are about four per thread; a job with few columns (a 7x7
 * layer) is split over its rows instead. A single row of C from B packed
 * at load (a Gemm at batch 1) goes to the GEMV kernel instead (gemv_task).
 *
 * Invariants: I1 every packed panel is zero past the matrix edge, so tiles
 * over the edge compute finite values that are never stored; I2 a task
 * writes only its own C block and its own thread's scratch.
 *
 * Trusts: the caller (kernels/fast.c) for consistent sizes and strides and
 * scratch of nn_gemm_scratch bytes per thread.
 */
#include "kern.h"

#include <string.h>

#define KC 256
#define NC_FLOATS 512 /* columns per B block, rounded to NR */
#define MC_MAX 256    /* rows per A block packed at run time */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int64_t nc_of(const struct nn_isa *isa, int64_t n)
{
    int64_t nc = NC_FLOATS / isa->nr * isa->nr;
    if (nc < isa->nr)
        nc = isa->nr;
    return min64(nc, ceil_div(n, isa->nr) * isa->nr);
}

static int64_t mc_cap(const struct nn_isa *isa, int64_t m)
{
    return min64(ceil_div(m, isa->mr) * isa->mr, MC_MAX / isa->mr * isa->mr);
}

size_t nn_gemm_scratch(const struct nn_isa *isa, const struct nn_gemm *g)
{
    size_t f = 0;
    if (g->bp == NULL)
        f += (size_t)(KC * nc_of(isa, g->n));
    if (g->ap == NULL)
        f += (size_t)(KC * mc_cap(isa, g->m));
    return (f * sizeof(float) + 63) & ~(size_t)63;
}

/* ------------------------------------------------------------- packing */

/* Writes a stream of column values into NR-wide panels of kb rows. */
struct pw {
    float *p;      /* next element */
    int lane;
    int64_t jump;  /* from the end of one panel's row to the next panel's row */
    int nr;
    const struct nn_isa *isa; /* its strided copy */
};

/* After t values written: on to the next panel when this one's row is full. */
static void pw_advance(struct pw *w, int64_t t)
{
    w->p += t;
    w->lane += (int)t;
    if (w->lane == w->nr) {
        w->lane = 0;
        w->p += w->jump;
    }
}

static void pw_zero(struct pw *w, int64_t n)
{
    while (n > 0) {
        int64_t t = min64(n, w->nr - w->lane);
        memset(w->p, 0, (size_t)t * sizeof(float));
        pw_advance(w, t);
        n -= t;
    }
}

static void pw_copy(struct pw *w, const float *src, int64_t stride, int64_t n)
{
    while (n > 0) {
        int64_t t = min64(n, w->nr - w->lane);
        if (stride == 1) {
            memcpy(w->p, src, (size_t)t * sizeof(float));
            src += t;
        } else {
            w->isa->gather(w->p, src, stride, t);
            src += t * stride;
        }
        pw_advance(w, t);
        n -= t;
    }
}

static void pw_start(struct pw *w, const struct nn_isa *isa, float *dst, int64_t kb, int64_t row)
{
    w->p = dst + row * isa->nr;
    w->lane = 0;
    w->nr = isa->nr;
    w->jump = (kb - 1) * isa->nr;
    w->isa = isa;
}

/* Row k (of kb, starting at matrix row kr) of B columns [n0, n1) from an
 * implicit im2col of image x. */
static void im2col_row(const struct nn_im2col *im, const float *x, int64_t kr, int64_t n0, int64_t n1, struct pw *w)
{
    int64_t isz = im->in[0] * im->in[1] * im->in[2];
    if (im->direct) {
        pw_copy(w, x + kr * isz + n0, 1, n1 - n0);
        return;
    }
    int64_t kx = kr % im->k[2], t = kr / im->k[2];
    int64_t ky = t % im->k[1];
    t /= im->k[1];
    int64_t kz = t % im->k[0], ci = t / im->k[0];
    const float *xc = x + ci * isz;
    int64_t ow = im->out[2], oplane = im->out[1] * ow;
    int64_t oz = n0 / oplane, oy = (n0 % oplane) / ow, ox = n0 % ow;
    /* valid ox range for this kx: 0 <= ox*s - pb + kx*d < in */
    int64_t off = kx * im->d[2] - im->pb[2];
    int64_t lo = off >= 0 ? 0 : ceil_div(-off, im->s[2]);
    int64_t hi = im->in[2] - 1 - off < 0 ? -1 : (im->in[2] - 1 - off) / im->s[2]; /* inclusive */
    if (hi > ow - 1)
        hi = ow - 1;
    int64_t n = n0;
    while (n < n1) {
        int64_t seg = min64(ow - ox, n1 - n);
        int64_t iz = oz * im->s[0] - im->pb[0] + kz * im->d[0];
        int64_t iy = oy * im->s[1] - im->pb[1] + ky * im->d[1];
        if (iz < 0 || iz >= im->in[0] || iy < 0 || iy >= im->in[1] || lo > hi) {
            pw_zero(w, seg);
        } else {
            const float *row = xc + (iz * im->in[1] + iy) * im->in[2];
            int64_t a = ox, e = ox + seg; /* [a, e) */
            int64_t z1 = min64(e, lo) - a;
            if (z1 > 0) {
                pw_zero(w, z1);
                a += z1;
            }
            int64_t cend = min64(e, hi + 1);
            if (cend > a) {
                pw_copy(w, row + a * im->s[2] + off, im->s[2], cend - a);
                a = cend;
            }
            if (e > a)
                pw_zero(w, e - a);
        }
        n += seg;
        ox += seg;
        if (ox == ow) {
            ox = 0;
            if (++oy == im->out[1]) {
                oy = 0;
                oz++;
            }
        }
    }
}

/* Pack rows [k0, k0 + kb) and columns [n0, n1) of B into NR panels of
 * prows rows each (kb for a block, the whole K for a full packing; dst
 * then points at row k0 of the first panel). */
static void pack_b_block(const struct nn_isa *isa, const struct nn_gemm *g, const float *b, int64_t k0, int64_t kb,
                         int64_t n0, int64_t n1, int64_t prows, float *dst)
{
    int nr = isa->nr;
    int64_t tail = (n1 - n0) % nr ? nr - (n1 - n0) % nr : 0;
    for (int64_t k = 0; k < kb; k++) {
        struct pw w;
        pw_start(&w, isa, dst, prows, k);
        if (g->im != NULL)
            im2col_row(g->im, b, k0 + k, n0, n1, &w);
        else
            pw_copy(&w, b + (k0 + k) * g->b_rs + n0 * g->b_cs, g->b_cs, n1 - n0);
        if (tail)
            pw_zero(&w, tail);
    }
}

/* Pack rows [m0, m1) and columns [k0, k0 + kb) of strided A into MR panels
 * (a row-major A on the ISA's pack_a when it has one). */
static void pack_a_block(const struct nn_isa *isa, const float *a, int64_t rs, int64_t cs, int64_t m0, int64_t m1,
                         int64_t k0, int64_t kb, float *dst)
{
    int64_t mr = isa->mr;
    for (int64_t i0 = m0; i0 < m1; i0 += mr) {
        int64_t mv = min64(mr, m1 - i0);
        if (cs == 1 && isa->pack_a != NULL) {
            isa->pack_a(dst, a + i0 * rs + k0, rs, (int)mv, kb);
            dst += mr * kb;
            continue;
        }
        for (int64_t k = 0; k < kb; k++) {
            float *d = dst + k * mr;
            const float *s = a + i0 * rs + (k0 + k) * cs;
            int64_t i = 0;
            for (; i < mv; i++)
                d[i] = s[i * rs];
            for (; i < mr; i++)
                d[i] = 0.0f;
        }
        dst += mr * kb;
    }
}

size_t nn_pack_a_size(const struct nn_isa *isa, int64_t m, int64_t k)
{
    return (size_t)(ceil_div(m, isa->mr) * isa->mr * k) * sizeof(float);
}

void nn_pack_a_scale(const struct nn_isa *isa, float *dst, int64_t m, int64_t k, const float *scale)
{
    int64_t mr = isa->mr, mpad = ceil_div(m, mr) * mr;
    for (int64_t k0 = 0; k0 < k; k0 += KC) {
        int64_t kb = min64(KC, k - k0);
        float *blk = dst + k0 * mpad;
        for (int64_t r0 = 0; r0 < m; r0 += mr)
            for (int64_t kk = 0; kk < kb; kk++)
                for (int64_t i = 0; i < mr && r0 + i < m; i++)
                    blk[r0 * kb + kk * mr + i] *= scale[r0 + i];
    }
}

size_t nn_pack_b_size(const struct nn_isa *isa, int64_t k, int64_t n)
{
    return (size_t)(ceil_div(n, isa->nr) * isa->nr * k) * sizeof(float);
}

/* K block after K block (KC rows of every panel, then the next KC), so a
 * task's A block of one K block is one contiguous run of memory: the
 * hardware prefetchers follow it across pages, where panels over the
 * whole K put each task's 8 KiB micro-panels a panel of K apart. */
void nn_pack_a(const struct nn_isa *isa, const float *src, int64_t rs, int64_t cs, int64_t m, int64_t k, float *dst)
{
    int64_t mpad = ceil_div(m, isa->mr) * isa->mr;
    for (int64_t k0 = 0; k0 < k; k0 += KC)
        pack_a_block(isa, src, rs, cs, 0, m, k0, min64(KC, k - k0), dst + k0 * mpad);
}

void nn_pack_b(const struct nn_isa *isa, const float *src, int64_t rs, int64_t cs, int64_t k, int64_t n, float scale,
               float *dst)
{
    struct nn_gemm g = {.b_rs = rs, .b_cs = cs};
    pack_b_block(isa, &g, src, 0, k, 0, n, k, dst);
    if (scale != 1.0f) {
        size_t cnt = nn_pack_b_size(isa, k, n) / sizeof(float);
        for (size_t i = 0; i < cnt; i++)
            dst[i] *= scale;
    }
}

/* --------------------------------------------------------------- driver */

/* The row stride of B when its rows can be read in place (a 1x1, stride-1
 * convolution without padding reads the input planes; a row-major B), or
 * 0 when B must be packed. Only for matrices of at most NC_FLOATS columns
 * or at most 64 rows of C: there the packing pass costs most for what it
 * saves (measured: 5 % faster for a 1024 x 196 B; mobilenet_v2's 144 ->
 * 24 projection at 56x56 0.22 -> 0.16 ms on one thread, 0.15 -> 0.10 on
 * two), while a B of 64 x 3136 under 256 rows of C ran 4 % slower read in
 * place than from the packed panels. */
static int64_t b_in_place(const struct nn_gemm *g)
{
    if (g->bp != NULL || (g->n > NC_FLOATS && g->m > 64))
        return 0;
    if (g->im != NULL)
        return g->im->direct ? g->im->in[0] * g->im->in[1] * g->im->in[2] : 0;
    return g->b_cs == 1 ? g->b_rs : 0;
}

struct run {
    const struct nn_isa *isa;
    const struct nn_gemm *g;
    bool fixed; /* tasks pinned to threads (plan_blocks' even column split) */
    int64_t mc, nc, mblocks, nblocks;
    char *scratch;
    size_t per;
};

static void task(void *arg, int64_t t, int tid)
{
    const struct run *r = arg;
    const struct nn_gemm *g = r->g;
    const struct nn_isa *isa = r->isa;
    int mr = isa->mr, nr = isa->nr;
    int64_t per_batch = r->mblocks * r->nblocks;
    int64_t bi = t / per_batch, rest = t % per_batch;
    int64_t i0 = bi / g->nb[1], i1 = bi % g->nb[1];
    int64_t m0 = (rest / r->nblocks) * r->mc, n0 = (rest % r->nblocks) * r->nc;
    int64_t m1 = min64(m0 + r->mc, g->m), n1 = min64(n0 + r->nc, g->n);
    int64_t aoff = i0 * g->sa[0] + i1 * g->sa[1], boff = i0 * g->sb[0] + i1 * g->sb[1];
    int64_t coff = i0 * g->sc[0] + i1 * g->sc[1], bmoff = i0 * g->sbias[0] + i1 * g->sbias[1];
    float *c = g->c + coff;
    float *bufb = (float *)(r->scratch + (size_t)tid * r->per);
    float *bufa = bufb + (g->bp == NULL ? KC * r->nc : 0);
    int64_t ldb_in = b_in_place(g);
    /* B read in place: whole NR tiles straight from the matrix, only the
     * last, narrower tile packed */
    int64_t n_full = ldb_in ? n0 + (n1 - n0) / nr * nr : n0;
    for (int64_t k0 = 0;;) {
        int64_t kb = min64(KC, g->k - k0);
        const float *bpan, *apan;
        int64_t bstep, astep;
        if (g->bp != NULL) {
            bpan = g->bp + boff + (n0 / nr) * nr * g->k + k0 * nr;
            bstep = nr * g->k;
        } else {
            if (n_full < n1)
                pack_b_block(isa, g, g->b + boff, k0, kb, n_full, n1, kb, bufb);
            bpan = bufb; /* the tiles from n_full on */
            bstep = nr * kb;
        }
        if (g->ap != NULL) {
            apan = g->ap + aoff + k0 * (ceil_div(g->m, mr) * mr) + (m0 / mr) * mr * kb;
            astep = mr * kb;
        } else {
            pack_a_block(isa, g->a + aoff, g->a_rs, g->a_cs, m0, m1, k0, kb, bufa);
            apan = bufa;
            astep = mr * kb;
        }
        unsigned flags = (k0 > 0 || g->load_c ? NN_UKR_LOAD_C : 0) | (k0 + kb >= g->k ? NN_UKR_LAST : 0);
        for (int64_t j = n0; j < n1; j += nr) {
            for (int64_t i = m0; i < m1; i += mr) {
                const float *ap = apan + ((i - m0) / mr) * astep;
                struct nn_epi e = g->epi;
                if (e.bias_m)
                    e.bias_m += bmoff + i;
                if (e.bias_n)
                    e.bias_n += j;
                if (e.res)
                    e.res += coff + i * e.ldr + j;
                const float *bt;
                int64_t ldb = nr;
                if (j < n_full) {
                    bt = g->b + boff + k0 * ldb_in + j;
                    ldb = ldb_in;
                } else {
                    bt = bpan + ((j - n_full) / nr) * bstep;
                }
                isa->ukr(kb, ap, bt, ldb, c + i * g->ldc + j, g->ldc, (int)min64(mr, m1 - i), (int)min64(nr, n1 - j),
                         flags, &e);
            }
        }
        k0 += kb;
        if (k0 >= g->k)
            break;
    }
}

/* The split of g into tasks for `threads` threads (r->mc, nc, mblocks,
 * nblocks) and the threads worth using. */
static int plan_blocks(const struct nn_isa *isa, int threads, const struct nn_gemm *g, struct run *r)
{
    int64_t batches = g->nb[0] * g->nb[1];
    r->fixed = false;
    r->nc = nc_of(isa, g->n);
    r->nblocks = ceil_div(g->n, r->nc);
    int64_t mpanels = ceil_div(g->m, isa->mr);
    int64_t mblocks = 1, want = threads > 1 ? 4 * (int64_t)threads : 1;
    /* tiny jobs are not worth waking threads for */
    double work = (double)g->m * (double)g->n * (double)g->k * (double)batches;
    if (work < 2e5)
        threads = 1, want = 1;
    /* few rows and B packed at load (a Gemm at a small batch): one even
     * share of the columns per thread, so each thread streams its own part
     * of the weights, the same part on every run (it stays in that core's
     * cache); NC blocks would leave one thread most of the work, and
     * more parts than threads left one thread 2 of 4 uneven parts
     * (mobilenet_v2's 1280 -> 1000 classifier: 576 against 424 columns,
     * 94 against 72 us; one part a thread: 82 and 81 us) */
    if (threads > 1 && g->bp != NULL && mpanels < threads && batches == 1) {
        int64_t npanels = ceil_div(g->n, isa->nr);
        int64_t parts = min64(npanels, threads);
        r->nc = ceil_div(npanels, parts) * isa->nr;
        r->nblocks = ceil_div(g->n, r->nc);
        r->fixed = true;
    }
    if (batches * r->nblocks < want && batches > 0) /* no images (batch 0): nothing to split */
        mblocks = min64(mpanels, ceil_div(want, batches * r->nblocks));
    int64_t cap_panels = MC_MAX / isa->mr; /* mc_cap */
    if (g->ap == NULL && mblocks < ceil_div(mpanels, cap_panels))
        mblocks = ceil_div(mpanels, cap_panels);
    r->mc = ceil_div(mpanels, mblocks) * isa->mr;
    r->mblocks = ceil_div(g->m, r->mc);
    return threads;
}

/* Whether B (not packed at load) is packed once per matrix into shared
 * scratch before the products: when several tasks would otherwise each
 * pack the same columns (row blocks of a layer with few columns, the
 * usual case at batch 1 on several threads) and the packed matrix is not
 * too big to stay near the cache. */
#define SHARED_B_MAX ((size_t)12 << 20)

size_t nn_gemm_shared(const struct nn_isa *isa, const struct nn_gemm *g, int threads)
{
    struct run r;
    if (g->bp != NULL || g->m <= 0 || g->n <= 0 || plan_blocks(isa, threads, g, &r) <= 1 || r.mblocks <= 1)
        return 0;
    if (b_in_place(g) != 0)
        return 0;
    size_t bytes = nn_pack_b_size(isa, g->k, g->n);
    return bytes <= SHARED_B_MAX ? (bytes + 63) & ~(size_t)63 : 0;
}

struct bpack {
    const struct nn_isa *isa;
    const struct nn_gemm *g;
    const float *b;
    float *dst;
    int64_t nc, nblocks;
};

static void bpack_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bpack *p = arg;
    const struct nn_gemm *g = p->g;
    int64_t k0 = (t / p->nblocks) * KC, n0 = (t % p->nblocks) * p->nc;
    int64_t kb = min64(KC, g->k - k0), n1 = min64(n0 + p->nc, g->n);
    int64_t nr = p->isa->nr;
    pack_b_block(p->isa, g, p->b, k0, kb, n0, n1, g->k, p->dst + (n0 / nr) * nr * g->k + k0 * nr);
}

/* Weights (floats) below which one thread streams them alone: a run on
 * two threads costs ~0.3 us of handshake, the time to read ~30 KB. */
#define GEMV_SOLO 16384.0

/* A single row of C from packed B (a Gemm or MatMul at batch 1), on the
 * ISA's GEMV kernel rather than the MR-row tiles: the columns, in whole
 * vectors, split evenly between the threads (a panel may be shared by
 * two), each thread the same share on every run (fixed tasks: that share
 * of the weights stays in its core's cache when it fits), all of K at once
 * with A read in place. The MLP's 784 -> 512 layer: 16 -> 10 us on two
 * threads, its 512 -> 256 layer (now on both threads) 9 -> 4 us. */
struct gemv_run {
    const struct nn_isa *isa;
    const struct nn_gemm *g;
    int64_t parts;
};

static void gemv_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct gemv_run *r = arg;
    const struct nn_gemm *g = r->g;
    const struct nn_isa *isa = r->isa;
    int64_t vl = isa->vl, nr = isa->nr, per_panel = nr / vl;
    int64_t vecs = ceil_div(g->n, vl);
    int64_t v0 = vecs * t / r->parts, v1 = vecs * (t + 1) / r->parts;
    unsigned flags = g->load_c ? NN_UKR_LOAD_C : 0;
    while (v0 < v1) {
        int64_t p = v0 / per_panel, in = v0 % per_panel;
        int64_t vn = min64(per_panel - in, v1 - v0), col = v0 * vl;
        struct nn_epi e = g->epi;
        if (e.bias_n)
            e.bias_n += col;
        if (e.res)
            e.res += col;
        isa->gemv(g->k, g->a, g->bp + p * nr * g->k + in * vl, g->c + col, (int)vn, (int)min64(vn * vl, g->n - col),
                  flags, &e);
        v0 += vn;
    }
}

static bool gemv_ok(const struct nn_isa *isa, const struct nn_gemm *g)
{
    return isa->gemv != NULL && g->m == 1 && g->nb[0] * g->nb[1] == 1 && g->bp != NULL && g->a != NULL &&
           g->a_cs == 1;
}

void nn_gemm_run(const struct nn_isa *isa, struct nn_pool *p, int threads, const struct nn_gemm *g, void *scratch,
                 size_t scratch_per_thread, void *shared)
{
    if (g->m <= 0 || g->n <= 0 || g->nb[0] * g->nb[1] <= 0)
        return;
    if (gemv_ok(isa, g)) {
        double work = (double)g->n * (double)g->k;
        struct gemv_run gr = {.isa = isa, .g = g, .parts = 1};
        if (work >= GEMV_SOLO)
            gr.parts = min64(threads, ceil_div(g->n, isa->vl));
        nn_pool_run_fixed(p, (int)gr.parts, gr.parts, gemv_task, &gr);
        return;
    }
    struct run r = {.isa = isa, .g = g, .scratch = scratch, .per = scratch_per_thread};
    threads = plan_blocks(isa, threads, g, &r);
    int64_t batches = g->nb[0] * g->nb[1];
    if (shared == NULL) {
        (r.fixed ? nn_pool_run_fixed : nn_pool_run)(p, threads, batches * r.mblocks * r.nblocks, task, &r);
        return;
    }
    /* one matrix at a time: pack its B on all threads, then the products
     * reading the packed B as if it had been packed at load */
    struct nn_gemm one = *g;
    one.nb[0] = one.nb[1] = 1;
    one.bp = shared;
    r.g = &one;
    struct bpack bp = {.isa = isa, .g = g, .dst = shared, .nc = r.nc, .nblocks = r.nblocks};
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t i0 = bi / g->nb[1], i1 = bi % g->nb[1];
        int64_t coff = i0 * g->sc[0] + i1 * g->sc[1];
        bp.b = g->b + i0 * g->sb[0] + i1 * g->sb[1];
        nn_pool_run(p, threads, ceil_div(g->k, KC) * r.nblocks, bpack_task, &bp);
        if (g->ap != NULL)
            one.ap = g->ap + i0 * g->sa[0] + i1 * g->sa[1];
        if (g->a != NULL)
            one.a = g->a + i0 * g->sa[0] + i1 * g->sa[1];
        one.c = g->c + coff;
        if (g->epi.bias_m != NULL)
            one.epi.bias_m = g->epi.bias_m + i0 * g->sbias[0] + i1 * g->sbias[1];
        if (g->epi.res != NULL)
            one.epi.res = g->epi.res + coff;
        nn_pool_run(p, threads, r.mblocks * r.nblocks, task, &r);
    }
}
