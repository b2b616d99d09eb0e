/*
 * fast.c — the fast paths of Conv, Gemm and MatMul: planning (weights
 * packed for the ISA's micro-kernel, BatchNorm folded in, scratch sized)
 * and running them on the model's thread pool.
 *
 * Design: at plan time, nn_fast_prepare sizes a plan for every live node
 * that has a fast path, allocates one 64-byte-aligned block for all of them
 * (reused while it is big enough), and fills it: a struct fast per node,
 * then its packed weights. Constant weights are packed once per plan, never
 * per inference; weights that arrive at run time (a graph input) are packed
 * per K block into scratch like activations. Per-thread scratch is part of
 * the node's scratch in the activation arena.
 *
 *   Conv, groups < channels: implicit GEMM per image and group, B packed
 *     from the input by the driver's im2col (1x1 stride-1 convolutions read
 *     the input directly);
 *   Conv, depthwise (2-D or 1-D): per channel plane, the input copied into
 *     a zero-padded plane in scratch, then the ISA's depthwise loop;
 *   Gemm: A the activation, B the weight packed with alpha, C as a
 *     per-column bias or added first;
 *   MatMul with a rank-2 B: all leading dimensions of A as rows.
 *
 * Invariants: I1 a node has a plan only when nn_fast_ok said so at fusion
 * time for the same shapes; I2 the plan's pointers to constants stay valid
 * for the plan's life (constants live in the model bytes, the model arena
 * or the fold arena, reset only by a re-plan, which re-plans this too).
 *
 * Trusts: infer (shapes and attributes were validated) and fuse.c.
 */
#include "../nn_int.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h> /* _mm_clflush (tune) */
#endif

enum {
    FAST_CONV = 1, FAST_DW, FAST_GEMM, FAST_WINO, FAST_POOL,
    /* on the blocked layout */
    FAST_BCONV, FAST_BPOOL, FAST_BGPOOL, FAST_BDW, FAST_BWINO,
};

struct fast {
    int kind;
    int threads;
    size_t per_thread;      /* scratch bytes per thread */
    size_t shared;          /* scratch bytes shared by the threads (B packed once), before theirs */
    struct nn_geom geo;
    struct nn_im2col im;
    struct nn_gemm gm;      /* pointers to run-time values are filled per run */
    const float *w;         /* depthwise weights (BatchNorm folded) or NULL: the input */
    const float *bias;      /* folded bias, or NULL: the input */
    bool a_runtime;         /* conv weights (A) or Gemm/MatMul B come from an input at run time */
    bool prefill;           /* Gemm: C is added before the product */
    float beta;
    int64_t dw_h, dw_w, dw_floats; /* padded plane */
    struct nn_dw dw;
    struct nn_wino wn;
    const float *wu;        /* Winograd: transformed, packed weights */
    /* blocked direct convolution (kern.h) */
    struct nn_bconv bc;
    const float *bw;        /* packed weights */
    /* bf16 (m->hk; a blocked input): the weights packed for nn_hkern
     * (bwh, not bw; round_up(c, 16) input channels an output channel, wch),
     * the input copied to bf16 each run at byte xh_off of the shared
     * scratch */
    bool bf16;
    const uint16_t *bwh;
    size_t xh_off;
    /* int8 (m->qk; a blocked input with a calibrated range): the weights
     * packed for nn_qkern (bwq, as bwh but four channels a step), the
     * input quantized each run at byte xh_off (q = x * qinv + qzp), the
     * sums' scales qs per output channel (the bias then qb, the zero
     * point's share in it) */
    bool i8;
    const int8_t *bwq;
    const float *qs;
    float qinv, qzp;
    bool in_blocked, out_blocked, bpad;
    bool sub;               /* a strided 1x1: the pixels it reads gathered into a compact map first */
    int64_t sy, sx;         /* the strides the kernel reads the (padded or compact) map with */
    bool wide;              /* 1x1, stride 1, whole blocks: nn_isa.bconv_wide for vg <= 2, and for vg 4
                             * (float32, blocked output) runs of whole tiles */
    int64_t ksec;           /* > 0: the reduction in sections of ksec tab entries (nn_isa.bconv_sec) */
    bool spatial;           /* one task a thread, a band of the output's pixels for every group (or plane) */
    bool lin;               /* one task a thread, a run of the (group, tile) pairs in group order */
    bool half_last;         /* the last group packed as two halves of 32 channels (bconv_px, gdw_task) */
    bool pimg;              /* a padded input at batch > 1: a thread's images one at a time (bimg_task) */
    int64_t cdw_rows;       /* > 0: the depthwise convolution after it runs in this run (run_cdw), over
                             * this many of this convolution's output rows at a time */
    bool cdw_grp;           /* or group by group of output channels (run_cdw, gdw_task) */
    int64_t hx, wx;         /* the input map as the kernel reads it (padded when bpad) */
    int64_t row, px;        /* its strides of a row and a pixel */
    int64_t chunks, tiles;  /* per image and group: tasks, R-pixel tiles */
    struct nn_bdw bd;       /* blocked depthwise; its act, lo, hi also Winograd's epilogue */
    /* blocked Winograd: tiles (oth x otw an image, t in all), the most
     * tiles a block (the stride of V and the products; wblock0 places the
     * blocks), blocks, output-group splits per block; bc is the 1x1
     * product's geometry over a block's tiles */
    int64_t oth, otw, wt, wtb, wblocks, wsplit;
    int wm, wa, wp;    /* F(wm x wm, 3x3): 4, 2 or 5; the patch's side wm + 2; its points wa^2 */
    int wstr;          /* 1, or 2: a stride-2 layer in 2x2 tiles (wm 2, wa 5; wino_s2) */
    int64_t wvs, wps;  /* floats from one point to the next in V and in the products */
    bool wall;         /* one block of all tiles, three phases (run_bwino) */
    bool wfly;         /* wall, U made from the weights as the products use it (wfly_task) */
    bool wsec;         /* wall, not wfly: the products through the section kernel (wall_prod_sec) */
    bool win_grp;      /* wall: the input transform a task per 64 input channels, run fixed */
    bool wout_grp;     /* wall: the output transform a task per output group, run fixed */
    size_t wall_bytes; /* its V and products, at the end of the shared scratch */
};

static bool is_const(const struct nn_val *v)
{
    return v->kind == NN_VAL_INIT || v->kind == NN_VAL_CONST;
}

static bool is_dw(const struct nn_geom *g)
{
    return g->group == g->c && g->m == g->c && g->k[0] == 1 && g->in[0] == 1 && g->out[0] == 1 && g->s[0] == 1 &&
           g->pb[0] == 0 && g->k[1] <= 64 && g->k[2] <= 64 && g->s[2] <= 64 && g->d[2] <= 64 && g->d[1] <= 64 &&
           g->s[1] <= 64;
}

bool nn_fast_ok(struct coffer_nn_model *m, size_t i)
{
    if (m->isa == NULL || m->isa->id == NN_ISA_REF)
        return false;
    struct nn_ctx c;
    nn_ctx_init(m, i, &c, false);
    const struct nn_node *n = c.node;
    switch (n->op) {
    case NN_OP_CONV: {
        struct nn_geom g;
        return nn_geom_get(&c, 0, &g) == COFFER_OK;
    }
    case NN_OP_GEMM:
        return is_const(c.in[1]) || nn_af(n, "alpha", 1.0f) == 1.0f;
    case NN_OP_MATMUL:
        return c.in[1]->rank == 2 && c.in[0]->rank >= 1;
    default:
        return false;
    }
}

/* ------------------------------------------------------------- planning */

static size_t align64(size_t s) { return (s + 63) & ~(size_t)63; }

/* Take `size` bytes from the pack being filled (dst NULL: only count). */
struct filler {
    uint8_t *base;
    size_t used;
    bool dry;                     /* a plan to measure (tune): weights not packed, their room zero */
    struct coffer_nn_model *keep; /* the model's own plan: packed weights kept (take_w) */
    bool need_stage;              /* counting: some deferred weight is to be packed (stage_w) */
    enum coffer_err err;          /* no memory for weights to keep */
};

static void *take(struct filler *f, size_t size)
{
    void *p = f->base ? f->base + f->used : NULL;
    f->used += align64(size);
    return p;
}

/* What a weight packing is kept by (take_w's key[0]); the rest of the key
 * says which weights and whatever else the packing's bytes depend on. */
enum {
    KEEP_GEMM = 1, /* nn_pack_b: {B's value, K, N, strides, alpha} */
    KEEP_BCONV,    /* the direct blocked kernel's: {node, weight, half_last} */
    KEEP_BCONV_H,  /* ... in bf16 */
    KEEP_BWINO,    /* Winograd's U on the blocked layout: {node, weight, wm (NN_WINO_S2: stride 2)} */
    KEEP_WFLY,     /* the weights U is made from as it is used: {node, weight} */
    KEEP_BDW,      /* blocked depthwise: {node, weight} */
    KEEP_DW,       /* depthwise: {node, weight} */
    KEEP_WINO,     /* Winograd on NCHW: {node, weight, U's panel stride} */
    KEEP_CONV,     /* im2col's packed A: {node, weight} */
};

static struct nn_wkeep *wkeep_find(struct coffer_nn_model *m, const int64_t key[8], size_t size)
{
    for (size_t i = 0; i < m->n_wkeep; i++)
        if (m->wkeep[i].mem->size == size && memcmp(m->wkeep[i].key, key, sizeof(m->wkeep[i].key)) == 0)
            return &m->wkeep[i];
    return NULL;
}

static void wkeep_drop(struct coffer_nn_model *m, size_t i)
{
    coffer_secret_free(m->wkeep[i].mem); /* (zeroed) */
    m->wkeep[i] = m->wkeep[--m->n_wkeep];
}

/* Memory for weights to be packed as key says, on the counting pass
 * (locked, zeroed when freed, as the pack). Short of it, the weights
 * earlier plans kept and this one has not taken go, and it is tried
 * again. */
static struct nn_wkeep *wkeep_new(struct coffer_nn_model *m, const int64_t key[8], size_t size, enum coffer_err *err)
{
    if (m->n_wkeep == m->wkeep_cap) {
        size_t cap = m->wkeep_cap ? 2 * m->wkeep_cap : 16, bytes;
        struct nn_wkeep *e = coffer_size_mul(cap, sizeof(*e), &bytes) ? coffer_realloc(m->wkeep, bytes) : NULL;
        if (e == NULL) {
            *err = COFFER_FAIL(COFFER_E_NOMEM, "packed weights: %zu entries", cap);
            return NULL;
        }
        m->wkeep = e;
        m->wkeep_cap = cap;
    }
    struct coffer_secret *mem = NULL;
    enum coffer_err r = coffer_secret_new_flags(size, COFFER_SECRET_SMALL_PAGES, &mem);
    if (r != COFFER_OK) {
        bool freed = false;
        for (size_t i = m->n_wkeep; i-- > 0;)
            if (m->wkeep[i].gen != m->plan_gen) {
                wkeep_drop(m, i);
                freed = true;
            }
        if (freed) {
            coffer_err_clear();
            r = coffer_secret_new_flags(size, COFFER_SECRET_SMALL_PAGES, &mem);
        }
    }
    if (r != COFFER_OK) {
        *err = COFFER_FAIL(r, "packed weights: %zu bytes", size);
        return NULL;
    }
    struct nn_wkeep *e = &m->wkeep[m->n_wkeep++];
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, sizeof(e->key));
    e->mem = mem;
    return e;
}

/* take for weights packed as key says (NULL: not kept). A new batch size
 * re-plans, and most packed weights do not depend on it: where the model
 * keeps weights so packed (by this plan or an earlier one), they are
 * taken as they are, *fresh false; else they are to be packed, *fresh
 * true. Kept weights are in memory of their own, not in the pack, so
 * that a plan whose kernels differ (and so its pack's layout) finds them
 * all the same; those under wkeep_min bytes go in the pack, packed every
 * plan. The counting pass makes the memory (fl->err where short), the
 * next one packs into it. */
static void *take_w(struct filler *f, size_t size, const int64_t key[8], bool *fresh)
{
    struct coffer_nn_model *m = f->keep;
    *fresh = true;
    if (m == NULL || key == NULL || size < m->wkeep_min)
        return take(f, size);
    struct nn_wkeep *e = wkeep_find(m, key, size);
    if (f->base == NULL) {
        if (e == NULL && f->err == COFFER_OK)
            e = wkeep_new(m, key, size, &f->err);
        if (e != NULL) {
            e->gen = m->plan_gen;
            *fresh = !e->filled;
        }
        return NULL;
    }
    if (COFFER_NEVER(e == NULL || e->gen != m->plan_gen)) { /* (made by the counting pass) */
        if (f->err == COFFER_OK)
            f->err = COFFER_FAIL(COFFER_E_INTERNAL, "packed weights: not made by the counting pass");
        return NULL;
    }
    *fresh = !e->filled;
    e->filled = true; /* (the caller packs them now) */
    m->packs_kept += !*fresh;
    return e->mem->data;
}

/* After a plan's counting pass: the kept weights it does not take (other
 * batch sizes' kernels packed them) as m->wkeep_other says, the least
 * recently taken dropped first, of those the largest. Returns the bytes
 * of those the plan takes. */
static size_t wkeep_trim(struct coffer_nn_model *m)
{
    size_t now = 0, other = 0;
    for (size_t i = 0; i < m->n_wkeep; i++)
        *(m->wkeep[i].gen == m->plan_gen ? &now : &other) += m->wkeep[i].mem->size;
    size_t budget = m->wkeep_other == NN_WKEEP_ALL ? SIZE_MAX : m->wkeep_other == NN_WKEEP_AUTO ? now : 0;
    while (other > budget) {
        size_t old = SIZE_MAX;
        for (size_t i = 0; i < m->n_wkeep; i++)
            if (m->wkeep[i].gen != m->plan_gen &&
                (old == SIZE_MAX || m->wkeep[i].gen < m->wkeep[old].gen ||
                 (m->wkeep[i].gen == m->wkeep[old].gen && m->wkeep[i].mem->size > m->wkeep[old].mem->size)))
                old = i;
        if (COFFER_NEVER(old == SIZE_MAX))
            break;
        other -= m->wkeep[old].mem->size;
        wkeep_drop(m, old);
    }
    return now;
}

/* BatchNorm folded into per-channel scale a and shift: y = conv * a + b'. */
static void bn_factors(const struct coffer_nn_model *m, const struct nn_node *bn, int64_t ch, float *a, float *b)
{
    float eps = nn_af(bn, "epsilon", 1e-5f);
    const float *sc = m->g.vals[bn->in[1]].data, *bb = m->g.vals[bn->in[2]].data;
    const float *mean = m->g.vals[bn->in[3]].data, *var = m->g.vals[bn->in[4]].data;
    for (int64_t k = 0; k < ch; k++) {
        a[k] = sc[k] / sqrtf(var[k] + eps);
        b[k] = bb[k] - mean[k] * a[k];
    }
}

static int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

/* Whether a convolution runs as Winograd F(4x4, 3x3): 3x3, stride 1,
 * dilation 1, one group, 2-D, constant weights; in "auto" mode only when
 * the estimated work (micro-kernel tiles, padding to MR and NR included,
 * plus the transforms) is under 0.8 of the implicit GEMM's, the
 * transformed weights take at most 16 MiB and a run has at least 32 tiles. */
static bool use_wino(const struct coffer_nn_model *m, const struct nn_geom *g, bool a_runtime)
{
    if (m->wino == NN_WINO_OFF || a_runtime || g->group != 1 || g->k[0] != 1 || g->in[0] != 1 || g->out[0] != 1 ||
        g->pb[0] != 0)
        return false;
    for (int i = 1; i < NN_SP; i++)
        if (g->k[i] != 3 || g->s[i] != 1 || g->d[i] != 1)
            return false;
    if (m->wino >= NN_WINO_ALWAYS)
        return true;
    const struct nn_isa *isa = m->isa;
    /* 4x the weights: above 16 MiB (resnet50's 512-channel layers) they
     * cost more memory (the issue's RSS bound at batch 8) and bandwidth
     * than the products save */
    if (nn_wino_weights_size(isa, g->c, g->m) > ((size_t)16 << 20))
        return false;
    int64_t osp = g->out[1] * g->out[2], t = ((g->out[1] + 3) / 4) * ((g->out[2] + 3) / 4);
    /* fewer than 32 tiles in a whole run: one pass over U (4x the weights,
     * from memory at batch 1) costs more than the products save (resnet50's
     * 14x14 layers at batch 1: 2.5 % faster overall and 40 MB less resident
     * with the implicit GEMM) */
    if (t * g->n < 32)
        return false;
    double direct = 9.0 * (double)g->c * (double)round_up(osp, isa->nr) * (double)round_up(g->m, isa->mr);
    double wino = 36.0 * (double)g->c * (double)round_up(t, isa->mr) * (double)round_up(g->m, isa->nr) +
                  200.0 * (double)t * (double)(g->c + g->m);
    return wino < 0.8 * direct;
}

/* ------------------------------------------------- the blocked layout */

static bool is_pool_op(int op);
static bool pool_ok(struct coffer_nn_model *m, size_t i);

/* Blocks of 16 channels, the last one padded. */
static int64_t blocks16(int64_t c) { return (c + 15) / 16; }

/* Whether a node's bias (input 2) is absent or constant: blocked kernels
 * read it 16 channels at a time from a copy padded at plan time. */
static bool bias_const(const struct nn_ctx *c)
{
    return c->n_in < 3 || c->in[2] == NULL || is_const(c->in[2]);
}

/* The geometry of node i when it is a 2-D convolution with constant
 * weights (and bias) that a blocked kernel of this ISA (has_kernel)
 * could run. */
static bool blocked_conv(struct coffer_nn_model *m, size_t i, bool has_kernel, struct nn_geom *g)
{
    if (m->no_blocked || !has_kernel || m->g.nodes[i].op != NN_OP_CONV || !nn_fast_ok(m, i))
        return false;
    struct nn_ctx c;
    nn_ctx_init(m, i, &c, false);
    return nn_geom_get(&c, 0, g) == COFFER_OK && c.in[0]->rank == 4 && is_const(c.in[1]) && bias_const(&c) &&
           g->m > 0 && g->c > 0 && g->k[0] == 1 && g->in[0] == 1 && g->out[0] == 1 && g->pb[0] == 0;
}

/* The geometry a node's plan is made for: one image for a node of the
 * image-by-image segment (plan_seg). */
static enum coffer_err plan_geom(struct nn_ctx *c, int kind, struct nn_geom *g)
{
    enum coffer_err r = nn_geom_get(c, kind, g);
    if (r == COFFER_OK && c->node->seg)
        g->n = 1;
    return r;
}

/* Whether node i can run the blocked direct convolution (ungrouped).
 * Output channels that are not whole blocks of 16 are written only into
 * a blocked output (padded lanes; plan_layout). */
static bool bconv_ok(struct coffer_nn_model *m, size_t i)
{
    struct nn_geom g;
    return blocked_conv(m, i, m->isa != NULL && m->isa->bconv != NULL, &g) && g.group == 1;
}

/* Whether node i can run the blocked depthwise convolution. */
static bool bdw_ok(struct coffer_nn_model *m, size_t i)
{
    struct nn_geom g;
    return blocked_conv(m, i, m->isa != NULL && m->isa->bdw != NULL, &g) && is_dw(&g);
}

static bool bpool_ok(struct coffer_nn_model *m, size_t i)
{
    return !m->no_blocked && m->isa != NULL && m->isa->bpool != NULL && pool_ok(m, i) &&
           m->g.vals[m->g.nodes[i].in[0]].rank == 4;
}

static bool bgpool_ok(const struct coffer_nn_model *m, const struct nn_node *n)
{
    return (n->op == NN_OP_GLOBALAVERAGEPOOL || n->op == NN_OP_GLOBALMAXPOOL) && m->g.vals[n->in[0]].rank == 4 &&
           m->g.vals[n->in[0]].dtype == COFFER_NN_FLOAT;
}

/* Which values are held blocked: a value is, when the node that writes
 * it can write it blocked (a blocked convolution, depthwise convolution
 * or pool), every node that reads it can read it so (a blocked
 * convolution as its input, or as its residual when its own output is
 * blocked; a depthwise convolution or pool whose output is blocked; a
 * global pool), and it is a 4-D float activation that is not a graph
 * output. Start from every candidate and drop those that break a rule
 * until none does (only drops: it ends). A blocked convolution reads and
 * writes either layout (NCHW out of a blocked input only for whole
 * output blocks and long reductions); a depthwise convolution or pool
 * keeps its input's. */
static void plan_layout(struct coffer_nn_model *m, uint8_t *cap)
{
    struct nn_graph *g = &m->g;
    for (size_t i = 0; i < g->n_vals; i++)
        g->vals[i].blocked = false;
    if (m->no_blocked || m->isa == NULL || m->isa->bconv == NULL)
        return;
    /* cap[i]: node i is a blocked-capable convolution (1), pool (2),
     * global pool (3), depthwise convolution (4) */
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct nn_node *n = &g->nodes[i];
        cap[i] = 0;
        if (!n->live || n->skip)
            continue;
        if (bconv_ok(m, i))
            cap[i] = 1;
        else if (bdw_ok(m, i))
            cap[i] = 4;
        else if (is_pool_op(n->op) && bpool_ok(m, i))
            cap[i] = 2;
        else if (bgpool_ok(m, n))
            cap[i] = 3;
        if (cap[i] == 1 || cap[i] == 2 || cap[i] == 4) {
            struct nn_val *v = &g->vals[nn_node_out(n, 0)];
            v->blocked = v->kind == NN_VAL_ACT && v->dtype == COFFER_NN_FLOAT && v->rank == 4 && v->dims[1] > 0 &&
                         !v->is_output;
        }
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < g->n_nodes; i++) {
            struct nn_node *n = &g->nodes[i];
            if (!n->live || n->skip)
                continue;
            struct nn_val *out = nn_node_out(n, 0) >= 0 ? &g->vals[nn_node_out(n, 0)] : NULL;
            for (int k = 0; k < nn_node_n_in(n); k++) {
                if (nn_node_in(n, k) < 0)
                    continue;
                struct nn_val *v = &g->vals[nn_node_in(n, k)];
                if (!v->blocked)
                    continue;
                bool out_b = out && out->blocked;
                bool ok = (cap[i] == 1 && k == 0) || (cap[i] == 1 && k == n->n_in && out_b) ||
                          (cap[i] == 2 && k == 0 && out_b) || (cap[i] == 3 && k == 0) ||
                          (cap[i] == 4 && (k == 0 || k == n->n_in) && out_b);
                if (!ok) {
                    v->blocked = false;
                    changed = true;
                }
            }
            /* a convolution reading a blocked input writes a plain output
             * (its channels one by one) only when its reduction is long
             * enough to hide that: at most ~10 % of a tile at 256 steps
             * (mobilenet_v2's short 1x1 expansions ran 1.5x slower so) */
            if (cap[i] == 1 && out && !out->blocked && g->vals[n->in[0]].blocked) {
                const struct nn_val *wv = &g->vals[n->in[1]];
                /* (and only for whole blocks of output channels) */
                if (wv->dims[0] <= 0 || wv->dims[0] % 16 != 0 || (int64_t)wv->count / wv->dims[0] < 256) {
                    g->vals[n->in[0]].blocked = false;
                    changed = true;
                }
            }
            if (out == NULL || !out->blocked)
                continue;
            /* a pool or depthwise convolution keeps its input's layout; a
             * residual has its output's */
            if (((cap[i] == 2 || cap[i] == 4) && !g->vals[n->in[0]].blocked) ||
                ((cap[i] == 1 || cap[i] == 4) && n->f_res >= 0 && !g->vals[n->f_res].blocked)) {
                out->blocked = false;
                changed = true;
            }
        }
    }
    /* a blocked value's last block is padded to 16 lanes (never read as
     * channels: reductions stop at the real ones, other ops are lane-wise) */
    for (size_t i = 0; i < g->n_vals; i++) {
        struct nn_val *v = &g->vals[i];
        if (v->blocked)
            v->size = (size_t)(v->dims[0] * blocks16(v->dims[1]) * 16 * v->dims[2] * v->dims[3]) * sizeof(float);
    }
}

/* The segment runs up to the last node whose output at the whole batch
 * is at least SEG_MAP_MIN (several times L2, a good part of L3) and whose
 * weights, read again for every image, are at most SEG_W_MAX. Run layer by
 * layer over the batch, resnet50's first two stages at batch 8 (maps of
 * 6-26 MB a layer) were 11.8 ms slower than 8 runs at batch 1: each
 * layer read its input back from memory. Image by image through layer2
 * (where this rule ends it at batch 8): 6 alternating rounds, medians
 * 253.8 -> 243.7 ms (layer1's 1x1s 5.4-5.6 -> 4.3 ms, the max pool 1.5 ->
 * 0.7 ms); peak RSS 325.7 -> 291.7 MiB, as the maps made and read inside
 * hold one image. Through layer3.0's first 1x1 or all of layer3.0: no
 * faster. Batch 4 (through layer1) and 16 (through layer3): the same
 * times, at 16 peak RSS 392 -> 296 MiB. mobilenet_v2 at batch 8 (through
 * features.4's depthwise convolution): 4 alternating rounds, medians
 * 27.5-28.7 -> 25.9-26.1 ms, peak RSS 95.6 -> 55.7 MiB; batch 4 (through
 * features.2's): the same time, 67.4 -> 59.1 MiB. */
#define SEG_MAP_MIN (8u << 20)
#define SEG_W_MAX (1u << 20)

/* Whether live node i can run in the image-by-image segment over nimg
 * images: a blocked-capable convolution, depthwise convolution or pool
 * (cap, plan_layout) whose activations are 4-D with nimg images, image
 * after image in memory. A convolution and the depthwise convolution run
 * inside its run (plan_cdw) are both in the segment or both out. */
static bool seg_node_ok(const struct coffer_nn_model *m, size_t i, const uint8_t *cap, int64_t nimg)
{
    const struct nn_node *n = &m->g.nodes[i];
    if (cap[i] != 1 && cap[i] != 2 && cap[i] != 4)
        return false;
    for (int k = 0; k <= nn_node_n_in(n); k++) {
        int vi = k < nn_node_n_in(n) ? nn_node_in(n, k) : nn_node_out(n, 0);
        if (vi < 0)
            continue;
        const struct nn_val *v = &m->g.vals[vi];
        bool act = k == 0 || k == n->n_in || k == nn_node_n_in(n);
        if (act && (is_const(v) || v->rank != 4 || v->dims[0] != nimg))
            return false;
        if (!act && !is_const(v))
            return false;
    }
    return true;
}

/* Whether node i's output map at the whole batch is large and its weights
 * small enough for the segment to be worth running up to it. */
static bool seg_worth(const struct coffer_nn_model *m, size_t i)
{
    const struct nn_node *n = &m->g.nodes[i];
    size_t wbytes = n->op == NN_OP_CONV ? m->g.vals[n->in[1]].size : 0;
    return m->g.vals[nn_node_out(n, 0)].size >= SEG_MAP_MIN && wbytes <= SEG_W_MAX;
}

/* The image-by-image segment (nn_seg_mode): from the first live node that
 * can run in it, the longest run of nodes that can, cut after the last
 * one worth it. Marks its nodes and the values it reads and writes, and
 * lists the values it reads or writes whole. */
static enum coffer_err plan_seg(struct coffer_nn_model *m, const uint8_t *cap)
{
    struct nn_graph *g = &m->g;
    if (m->seg == NN_SEG_OFF || m->no_blocked)
        return COFFER_OK;
    size_t lo = SIZE_MAX, hi = 0;
    int64_t nimg = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct nn_node *n = &g->nodes[i];
        if (!n->live || n->skip)
            continue;
        if (lo == SIZE_MAX) {
            if (cap[i] != 1 && cap[i] != 2 && cap[i] != 4) /* (a convolution or pool: it has an input 0) */
                continue;
            const struct nn_val *x = &g->vals[nn_node_in(n, 0)];
            if (x->rank != 4 || x->dims[0] < 2 || !seg_node_ok(m, i, cap, x->dims[0]))
                continue;
            lo = i;
            nimg = x->dims[0];
        } else if (!seg_node_ok(m, i, cap, nimg))
            break;
        if (m->seg == NN_SEG_ALWAYS || seg_worth(m, i))
            hi = i + 1;
    }
    if (lo == SIZE_MAX || hi <= lo)
        return COFFER_OK;
    /* and on over nodes that are the last readers of a large map made
     * inside (mobilenet_v2's depthwise convolution after an expansion: cut
     * between them, the expanded map, 38 MB at batch 8, went to memory
     * whole and the pair no longer ran as one) */
    for (size_t j = hi; j < g->n_nodes; j++) {
        const struct nn_node *n = &g->nodes[j];
        if (!n->live || n->skip)
            continue;
        if (!seg_node_ok(m, j, cap, nimg))
            break;
        const struct nn_val *x = &g->vals[nn_node_in(n, 0)];
        size_t wbytes = n->op == NN_OP_CONV ? g->vals[n->in[1]].size : 0;
        if (x->last_use != (int)j || x->size < SEG_MAP_MIN || wbytes > SEG_W_MAX)
            break;
        hi = j + 1;
    }
    size_t nodes = 0;
    for (size_t i = lo; i < hi; i++)
        nodes += g->nodes[i].live && !g->nodes[i].skip;
    if (nodes < 2)
        return COFFER_OK;
    /* the values: made inside (read only inside: one image), or read inside */
    for (size_t i = lo; i < hi; i++) {
        struct nn_node *n = &g->nodes[i];
        if (!n->live || n->skip)
            continue;
        n->seg = true;
        for (int k = 0; k < n->n_out; k++) {
            if (nn_node_out(n, k) < 0)
                continue;
            struct nn_val *v = &g->vals[nn_node_out(n, k)];
            v->seg = v->last_use < (int)hi && !v->is_output ? NN_SEG_IMG : NN_SEG_OUT;
        }
    }
    size_t nv = 0;
    for (size_t i = lo; i < hi; i++) {
        struct nn_node *n = &g->nodes[i];
        if (!n->seg)
            continue;
        for (int k = 0; k < nn_node_n_in(n); k++) {
            struct nn_val *v = nn_node_in(n, k) >= 0 ? &g->vals[nn_node_in(n, k)] : NULL;
            if (v != NULL && !is_const(v) && v->seg == NN_SEG_NONE) {
                v->seg = NN_SEG_IN;
                nv++;
            }
        }
        for (int k = 0; k < n->n_out; k++)
            nv += nn_node_out(n, k) >= 0 && g->vals[nn_node_out(n, k)].seg == NN_SEG_OUT;
    }
    m->seg_vals = coffer_arena_alloc(m->fold, (nv ? nv : 1) * sizeof(int), 64);
    m->seg_base = coffer_arena_alloc(m->fold, (nv ? nv : 1) * sizeof(void *), 64);
    if (m->seg_vals == NULL || m->seg_base == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "image-by-image segment: %zu values", nv);
    for (size_t i = 0; i < g->n_vals; i++)
        if (g->vals[i].seg == NN_SEG_IN || g->vals[i].seg == NN_SEG_OUT)
            m->seg_vals[m->n_seg_vals++] = (int)i;
    if (COFFER_NEVER(m->n_seg_vals != nv))
        return COFFER_FAIL(COFFER_E_INTERNAL, "image-by-image segment: %zu values listed, %zu counted",
                           m->n_seg_vals, nv);
    m->seg_lo = lo;
    m->seg_hi = hi;
    m->seg_n = nimg;
    return COFFER_OK;
}

/* The packing of output channels [j0, j0 + vg * 16) (one part of a
 * group; see bconv_pack) into dst, the part's own place; or, where dsth
 * is not NULL, into dsth in bf16 (kern.h, nn_hconv_fn: whole blocks of 16
 * input channels, zero past c, each channel pair's weights adjacent). */
static void bconv_pack_part(const struct nn_geom *g, const float *w, const float *scale, int64_t j0, int64_t vg,
                            float *dst, uint16_t *dsth)
{
    if (dsth != NULL) {
        int64_t kv = g->k[1] * g->k[2], nj = vg * 16;
        for (int64_t cb = 0; cb * 16 < g->c; cb++, dsth += kv * 16 * nj)
            for (int64_t j = 0; j < nj; j++) {
                int64_t oc = j0 + j;
                bool pad = oc >= g->m; /* the padded lanes of the last block */
                float sc = !pad && scale ? scale[oc] : 1.0f;
                const float *src = pad ? NULL : w + (oc * g->c + cb * 16) * kv;
                int64_t cbl = pad ? 0 : g->c - cb * 16 < 16 ? g->c - cb * 16 : 16; /* the rest zero */
                for (int64_t ic = 0; ic < 16; ic++)
                    for (int64_t t = 0; t < kv; t++)
                        dsth[(t * 16 + (ic & ~(int64_t)1)) * nj + 2 * j + (ic & 1)] =
                            ic < cbl ? nn_bf16(src[ic * kv + t] * sc) : 0;
            }
        return;
    }
    int64_t c = g->c, kv = g->k[1] * g->k[2];
    int64_t og = j0 / 64, part0 = j0 - og * 64;
    for (int64_t cb = 0; cb * 16 < c; cb++) {
        int64_t cbl = c - cb * 16 < 16 ? c - cb * 16 : 16;
        /* source rows read in order, the block (at most 16 KiB x kv)
         * written where the kernel reads it: [kyx][ic][j] */
        for (int64_t j = 0; j < vg * 16; j++) {
            int64_t oc = og * 64 + part0 + j;
            if (oc >= g->m) { /* the padded lanes of the last block */
                for (int64_t q = 0; q < cbl * kv; q++)
                    dst[q * vg * 16 + j] = 0.0f;
                continue;
            }
            float sc = scale ? scale[oc] : 1.0f;
            const float *src = w + (oc * c + cb * 16) * kv;
            for (int64_t ic = 0; ic < cbl; ic++)
                for (int64_t t = 0; t < kv; t++)
                    dst[(t * cbl + ic) * vg * 16 + j] = src[ic * kv + t] * sc;
        }
        dst += kv * cbl * vg * 16;
    }
}

/* The same into dstq in int8 (kern.h, nn_qconv_fn: each channel quad's
 * weights adjacent), output channel j's weights scaled to [-127, 127] by
 * its largest magnitude; qs[j] the sums' scale (sx times the weights'),
 * qb[j] the bias less the input's zero point zp times qs[j] times the
 * channel's quantized weights' sum. */
static void bconv_pack_part_q(const struct nn_geom *g, const float *w, const float *scale, int64_t j0, int64_t vg,
                              int8_t *dstq, float *qs, float *qb, const float *bias, float sx, float zp)
{
    int64_t kv = g->k[1] * g->k[2], nj = vg * 16, per = g->c * kv;
    for (int64_t j = 0; j < nj; j++) {
        int64_t oc = j0 + j;
        bool pad = oc >= g->m; /* the padded lanes of the last block */
        float sc = !pad && scale ? scale[oc] : 1.0f, amax = 0.0f;
        const float *src = pad ? NULL : w + oc * per;
        for (int64_t q = 0; !pad && q < per; q++)
            amax = fmaxf(amax, fabsf(src[q] * sc));
        float sw = amax > 0.0f ? amax / 127.0f : 1.0f;
        int64_t sum = 0;
        int8_t *d = dstq;
        for (int64_t cb = 0; cb * 16 < g->c; cb++, d += kv * 16 * nj) {
            int64_t cbl = pad ? 0 : g->c - cb * 16 < 16 ? g->c - cb * 16 : 16; /* the rest zero */
            for (int64_t ic = 0; ic < 16; ic++)
                for (int64_t t = 0; t < kv; t++) {
                    float v = ic < cbl ? src[(cb * 16 + ic) * kv + t] * sc / sw : 0.0f;
                    int q = (int)lrintf(v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v);
                    d[(t * 16 + (ic & ~(int64_t)3)) * nj + 4 * j + (ic & 3)] = (int8_t)q;
                    sum += q;
                }
        }
        qs[oc] = pad ? 0.0f : sx * sw;
        qb[oc] = pad ? 0.0f : (bias ? bias[oc] : 0.0f) - zp * qs[oc] * (float)sum;
    }
}

struct bconv_pack_run {
    const struct nn_geom *g;
    const float *w, *scale;
    float *dst;
    uint16_t *dsth; /* or bf16 */
    int8_t *dstq;   /* or int8, with: */
    float *qs, *qb;
    const float *bias;
    float sx, zp;
    bool half_last;
    int64_t parts;
};

/* Every parts-th part from part t: parts of up to 4 blocks of 16 output
 * channels (the last one fewer), or with half_last the last group as two
 * parts of 2; a part that starts at channel j0 (a multiple of 16) starts
 * at float j0 * C * kv of the packing. */
static void bconv_pack_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bconv_pack_run *r = arg;
    int64_t kv = r->g->k[1] * r->g->k[2], p = 0;
    for (int64_t j0 = 0; j0 < r->g->m; p++) {
        int64_t left = blocks16(r->g->m - j0), vg = left < NN_BCONV_V ? left : NN_BCONV_V;
        if (r->half_last && j0 + 64 >= r->g->m)
            vg = 2;
        if (p % r->parts == t && r->dstq != NULL)
            bconv_pack_part_q(r->g, r->w, r->scale, j0, vg, r->dstq + j0 * round_up(r->g->c, 16) * kv, r->qs,
                              r->qb, r->bias, r->sx, r->zp);
        else if (p % r->parts == t)
            bconv_pack_part(r->g, r->w, r->scale, j0, vg, r->dsth ? NULL : r->dst + j0 * r->g->c * kv,
                            r->dsth ? r->dsth + j0 * round_up(r->g->c, 16) * kv : NULL);
        j0 += vg * 16;
    }
}

/* Pack the weights w [m][c][kh][kw] (row j scaled by scale[j] unless
 * NULL) for the blocked kernel: per part of up to 4 output blocks,
 * [cb][ky][kx][ic][vg * 16]; the parts shared out over the pool (a
 * fixed share a thread: the pages each writes are first touched there
 * too). resnet50's load on 2 threads: ~200 -> ~175 ms. */
static void bconv_pack(struct coffer_nn_model *m, const struct nn_geom *g, struct bconv_pack_run *r)
{
    double bytes = (double)g->m * (double)g->c * (double)(g->k[1] * g->k[2]) * sizeof(float);
    r->g = g;
    r->parts = bytes < (double)(256 << 10) || g->m <= 64 ? 1 : m->threads;
    nn_pool_run_fixed(m->pool, (int)r->parts, r->parts, bconv_pack_task, r);
}

/* A constant bias copied into whole blocks of 16 (zero padding), unless
 * folding BatchNorm made one already or the channels are whole blocks. */
static void pad_bias(struct nn_ctx *c, struct fast *f, struct filler *fl, int64_t ch)
{
    if (f->bias != NULL || ch % 16 == 0 || c->n_in < 3 || c->in[2] == NULL)
        return;
    float *pb = take(fl, (size_t)round_up(ch, 16) * sizeof(float));
    if (pb != NULL) {
        memset(pb, 0, (size_t)round_up(ch, 16) * sizeof(float));
        memcpy(pb, c->in[2]->data, (size_t)ch * sizeof(float));
    }
    f->bias = pb;
}

/* The kernel's step offsets (kern.h, nn_bconv.otab), taken from the pack;
 * es: the bytes of an input element (4, or 2 and 1 for the bf16 and int8
 * kernels). */
static void bconv_otab(struct nn_bconv *b, struct filler *fl, int64_t es)
{
    /* (the bf16 and int8 kernels read a last partial block whole: its
     * copy's lanes past the channels are zero, bconv_begin, or meet zero
     * weights) */
    b->otab_step = b->x_c == 1 && (b->c % 16 == 0 || es < 4) ? 16 : 1;
    b->ntab = (b->otab_step == 16 ? blocks16(b->c) : b->c) * b->kh * b->kw;
    int64_t *t = b->ntab > 0 ? take(fl, (size_t)b->ntab * sizeof(int64_t)) : NULL;
    b->otab = t;
    if (t == NULL)
        return;
    for (int64_t cb = 0, i = 0; cb * 16 < b->c; cb++) {
        int64_t cbl = b->c - cb * 16 < 16 ? b->c - cb * 16 : 16;
        for (int ky = 0; ky < b->kh; ky++)
            for (int kx = 0; kx < b->kw; kx++)
                for (int64_t ic = 0; ic < (b->otab_step == 16 ? 1 : cbl); ic++)
                    t[i++] = (cb * b->x_cb + ky * b->x_ky + kx * b->x_kx + ic * b->x_c) * es;
    }
}

/* A blocked convolution whose output only the depthwise convolution run
 * right after it reads runs that one inside its own run, band of rows by
 * band of rows (run_cdw), where the output is CDW_MIN bytes an image or
 * more: mobilenet_v2's expansions to 96 and 144 channels at 112x112 and
 * 56x56 wrote 4.8 and 1.8 MiB that the depthwise layer then read back
 * from memory. Measured (mobilenet_v2): the 112x112 pair 0.59 -> 0.51 ms
 * on one thread, 0.285 -> 0.25 ms on two; the model 2-4 % faster on one
 * thread and 3 % at batch 8 on two, within noise at batch 1 on two.
 * CDW_ROWS: bytes of A's output made before B reads them (96-512 KiB
 * measured alike; 1 MiB slower). */
#define CDW_MIN (512 << 10)
#define CDW_ROWS (256 << 10)

static bool stage_w(struct coffer_nn_model *m, struct nn_val *v, struct filler *fl);

/* The key (take_w) of convolution c's weights packed as tag says, with
 * a and b what else the packing depends on; NULL where they are not kept:
 * where the weights or the parameters of a BatchNorm folded into them are
 * not initializers (folded constants may change with pinned inputs). The
 * node stands for the BatchNorm folded into it, if any. */
static const int64_t *conv_key(const struct coffer_nn_model *m, const struct nn_ctx *c, int64_t tag, int64_t a,
                               int64_t b, int64_t key[8])
{
    const struct nn_node *n = c->node;
    if (c->n_in < 2 || c->in[1] == NULL || c->in[1]->kind != NN_VAL_INIT)
        return NULL;
    if (n->f_bn >= 0)
        for (int k = 1; k <= 4; k++)
            if (m->g.vals[m->g.nodes[n->f_bn].in[k]].kind != NN_VAL_INIT)
                return NULL;
    int64_t v[8] = {tag, m->isa->id, (int64_t)(n - m->g.nodes), n->in[1], a, b, 0, 0};
    memcpy(key, v, sizeof(v));
    return key;
}

/* The convolution's weights for a packer that is to pack them: a deferred
 * weight staged (stage_w; plan_conv unsets it after); NULL on the
 * counting pass. */
static const float *conv_w(struct coffer_nn_model *m, struct nn_ctx *c, struct filler *fl)
{
    stage_w(m, c->in[1], fl);
    return c->in[1]->data;
}

/* Whether the convolution c runs on the int8 kernels where its input is
 * blocked: the model runs in int8 and the input's range is calibrated. */
static bool q8_ok(const struct coffer_nn_model *m, const struct nn_ctx *c)
{
    return m->qk != NULL && m->isa->id == NN_ISA_AVX512 && m->qr != NULL && !m->calibrating &&
           m->qr[c->node->in[0]].set;
}

/* The input's scale s and zero point z (q = x / s + z) for a calibrated
 * range: [0, hi] on [0, 255] where the range holds no negative value
 * (a Relu's output), else [lo, hi] on [0, 255], z where 0 falls (so the
 * padding's zeros are exact). */
static void q8_params(const struct nn_qrange *r, float *s, float *z)
{
    float lo = r->lo < 0.0f ? r->lo : 0.0f, hi = r->hi > 0.0f ? r->hi : 0.0f;
    *s = (hi - lo) / 255.0f;
    if (!(*s > 1e-30f) || !isfinite(*s))
        *s = 1.0f;
    float zz = rintf(-lo / *s);
    *z = zz < 0.0f ? 0.0f : zz > 255.0f ? 255.0f : zz;
}

static void plan_bconv(struct coffer_nn_model *m, struct nn_ctx *c, struct fast *f, struct filler *fl,
                       const float *bn_a)
{
    struct nn_geom *g = &f->geo;
    f->kind = FAST_BCONV;
    pad_bias(c, f, fl, g->m);
    f->in_blocked = c->in[0]->blocked;
    f->out_blocked = m->g.vals[nn_node_out(c->node, 0)].blocked;
    /* bf16 where the model runs so and the input is blocked (otab_step
     * 16: the kernels' channel pairs over whole blocks); int8 likewise
     * where the input's range is calibrated */
    f->i8 = q8_ok(m, c) && f->in_blocked;
    f->bf16 = m->hk != NULL && m->isa->id == NN_ISA_AVX512 && f->in_blocked;
    int64_t es = f->i8 ? 1 : f->bf16 ? (int64_t)sizeof(uint16_t) : (int64_t)sizeof(float);
    bool lp = f->i8 || f->bf16;
    int64_t wbytes = round_up(g->m, 16) * (lp ? round_up(g->c, 16) : g->c) * g->k[1] * g->k[2] * es;
    /* (float32 and bf16 weights taken at the end, where half_last is known;
     * int8's are not kept) */
    void *bw = f->i8 ? take(fl, (size_t)wbytes) : NULL;
    struct bconv_pack_run pk = {.scale = bn_a};
    if (f->i8) { /* packed at the end, once the split is known */
        f->bf16 = false;
        f->bwq = pk.dstq = bw;
        float *qs = pk.qs = take(fl, (size_t)round_up(g->m, 16) * sizeof(float));
        pk.qb = take(fl, (size_t)round_up(g->m, 16) * sizeof(float));
        f->qs = qs;
        pk.bias = f->bias ? f->bias : c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
        q8_params(&m->qr[c->node->in[0]], &pk.sx, &pk.zp);
        f->qinv = 1.0f / pk.sx;
        f->qzp = pk.zp;
        f->bias = pk.qb;
    }
    int64_t h = g->in[1], w = g->in[2];
    int64_t hp = g->out[1] > 0 ? (g->out[1] - 1) * g->s[1] + (g->k[1] - 1) * g->d[1] + 1 : 0;
    int64_t wp = g->out[2] > 0 ? (g->out[2] - 1) * g->s[2] + (g->k[2] - 1) * g->d[2] + 1 : 0;
    /* read in place unless the window leaves the map somewhere */
    f->bpad = g->pb[1] > 0 || g->pb[2] > 0 || hp > h || wp > w;
    f->hx = f->bpad ? hp : h;
    f->wx = f->bpad ? wp : w;
    f->sy = g->s[1];
    f->sx = g->s[2];
    /* A strided 1x1 (resnet50's downsampling) read in place takes every
     * group's pixels from a map several times its L2 share (56x56x256 at
     * stride 2: 3.2 MiB, a quarter of it used); gathered first into a
     * compact map (0.8 MiB), the groups read that from L2, through the
     * stride-1 kernels. */
    f->sub = !f->bpad && f->in_blocked && g->k[1] == 1 && g->k[2] == 1 && (g->s[1] > 1 || g->s[2] > 1);
    if (f->sub) {
        f->hx = g->out[1];
        f->wx = g->out[2];
        f->sy = f->sx = 1;
    }
    f->px = f->in_blocked ? 16 : 1;
    f->row = f->wx * f->px;
    struct nn_bconv *b = &f->bc;
    b->c = g->c;
    b->kh = (int)g->k[1];
    b->kw = (int)g->k[2];
    b->x_cb = 16 * f->hx * f->wx;
    b->x_c = f->in_blocked ? 1 : f->hx * f->wx;
    b->x_ky = g->d[1] * f->row;
    b->x_kx = g->d[2] * f->px;
    int64_t osp = g->out[1] * g->out[2];
    b->y_px = f->out_blocked ? 16 : 1;
    b->y_cb = osp * 16;
    b->y_c = osp;
    b->act = c->node->f_act;
    b->lo = c->node->f_lo;
    b->hi = c->node->f_hi;
    bconv_otab(b, fl, es);
    f->wide = m->isa->bconv_wide != NULL && b->otab_step == 16 && b->kh == 1 && b->kw == 1 && f->sy == 1 &&
              f->sx == 1 && !f->bpad;
    /* tasks: every group's tiles in chunks, about four tasks a thread */
    int64_t groups = (g->m + 63) / 64;
    /* the tiles of all images in one pass, so a task's weights serve
     * every image (batch 8: a group's weights are read once, not 8 times) */
    f->tiles = g->n * ((osp + NN_BCONV_R - 1) / NN_BCONV_R);
    int64_t want = 4 * (int64_t)m->threads; /* measured: fewer, longer tasks keep a 7x7 layer's group in L2 */
    f->chunks = (want + groups - 1) / groups;
    if (f->chunks > f->tiles)
        f->chunks = f->tiles;
    if (f->chunks < 1)
        f->chunks = 1;
    f->threads = m->threads;
    f->shared = f->bpad || f->sub ? align64((size_t)(g->n * (f->in_blocked ? round_up(g->c, 16) : g->c) * f->hx * f->wx) *
                                  sizeof(float))
                        : 0;
    f->xh_off = f->shared;
    if (lp) /* the bf16 or int8 copy of the map the kernel reads */
        f->shared += align64((size_t)(g->n * round_up(g->c, 16) * f->hx * f->wx * es));
    f->per_thread = 0;
    /* Where a layer's weights (1 MiB or more) stream from memory for a
     * few tiles a task (batch 1, resnet50's 7x7 layers and the 14x14
     * ones with 17 tiles a task), the first tile waited for its group's
     * weights (128 KiB to 1.2 MiB) and the others then ran from L2; in
     * sections of 4 to 32 tab entries (16-128 KiB) over all of the task's
     * tiles, each section prefetching the next (the last one the first
     * section of the thread's next task), the stream overlaps the
     * arithmetic: resnet50's 512-channel 3x3 layers 1.02 -> 0.79 ms, its
     * 7x7 1x1 layers 0.43-0.45 -> 0.35-0.38 ms at batch 1, 2 threads. The
     * sums of a task's tiles are carried in per-thread scratch between
     * sections (1.5 KiB a tile). With many tiles a task the weights'
     * stream is a small part of the time, and sections (even of L1-sized
     * 16 KiB, for the weights' reuse) measured slower: resnet50 at
     * batch 8 192 -> 196-216 ms. From 1 MiB (was 2) the 14x14 layers'
     * 1x1s (1 MiB, 17 tiles a task at batch 1) take it too: together
     * 4.16-4.22 -> 4.01-4.17 ms on 2 threads, 7.74-8.01 -> 7.58-7.76 on 1. */
    int64_t per = (f->tiles + f->chunks - 1) / f->chunks;
    bool streams = b->ntab >= 16 && per <= 20 && wbytes >= (1 << 20);
    /* (ntab, not otab: the counting pass, which has no step table, plans
     * the same, as the weights' key follows half_last, which follows this) */
    if (m->ksec != NN_KSEC_OFF && m->isa->bconv_sec != NULL && f->out_blocked && b->otab_step == 16 &&
        b->ntab > 0 && g->m >= 64 && (m->ksec == NN_KSEC_ALWAYS || streams)) {
        int64_t q = b->ntab / 4;
        f->ksec = m->ksec == NN_KSEC_ALWAYS ? 2 : q < 4 ? 4 : q > 32 ? 32 : q;
    }
    /* Small weights (mobilenet_v2's layers, resnet50's first stages): one
     * task a thread, the same band of output pixels for every group, so
     * a thread reads the pixels it wrote in the layer before (the
     * depthwise and pooling layers split their rows the same way) instead
     * of half of them from the other core's cache: mobilenet_v2 b1
     * 3.11-3.12 -> 2.88-2.91 ms on 2 threads; at batch 8 a thread keeps to
     * its images. */
    f->spatial = f->ksec == 0 && m->threads > 1 && m->spatial != NN_SPATIAL_OFF &&
                 (m->spatial == NN_SPATIAL_ALWAYS || (wbytes <= (512 << 10) && f->tiles >= 2 * m->threads));
    /* Few groups (chunks of one group's tiles on several threads) whose
     * weights outweigh the input they read (mobilenet_v2's 7x7
     * projections: 960 -> 160 or 320 channels, 0.6-1.2 MiB of weights
     * against 188 KiB of input): a thread's chunks each read all of a
     * group's weights, so both threads read all of them from memory; as
     * one run of (group, tile) pairs a thread, in group order, a thread
     * reads about half of the weights and all of the input. Sectioned
     * runs keep a thread's sums in scratch, so only up to 20 tiles a
     * group (the sums in L1; resnet50's 14x14 1x1s with 33 measured 8-12 %
     * slower). The runs are even in blocks x tiles (lin_bound).
     * features.17's 960 -> 320: 0.107 -> 0.089-0.092 ms, features.15/16's
     * 0.058-0.060 -> 0.049-0.053 ms on 2 threads; where the input
     * outweighs the weights (resnet50's stride-2 3x3s, 0.6 MiB of weights
     * and 1.6 MiB of input) it measured 12-17 % slower. */
    int64_t xbytes = g->n * (f->in_blocked ? round_up(g->c, 16) : g->c) * f->hx * f->wx * es;
    f->lin = m->threads > 1 && f->chunks > 1 && m->lin != NN_LIN_OFF &&
             (m->lin == NN_LIN_ALWAYS || (!f->spatial && wbytes > xbytes && (f->ksec == 0 || f->tiles <= 20)));
    if (f->lin)
        f->spatial = false;
    /* A padded input at batch > 1 (resnet50's stride-2 3x3s at batch 8:
     * 13 MiB for the 56x56 one) made for all images at once and then read
     * by every group's tasks came back from memory; a thread's images one
     * at a time, each padded into the thread's own buffer (1.7 MiB) and
     * convolved from there block of tiles by block, read it from L2.
     * layer2.0 and layer3.0's conv2 at batch 8: 11.0-11.7 -> 8.7-9.0 ms;
     * resnet50 b8 over 5 alternating rounds, medians 255.1 -> 250.3 ms.
     * Not with larger weights (layer4.0's 9.4 MiB: the same), which every
     * image then reads again, nor for the strided 1x1s' gathered inputs
     * (no gain measured). */
    int64_t ximg = (f->in_blocked ? round_up(g->c, 16) : g->c) * f->hx * f->wx * (int64_t)sizeof(float);
    f->pimg = f->bpad && f->ksec == 0 && m->pimg != NN_PIMG_OFF && !lp &&
              (m->pimg == NN_PIMG_ALWAYS || (m->threads > 1 && g->n >= m->threads && g->n % m->threads == 0 &&
                                             wbytes <= (4 << 20)));
    if (f->pimg) {
        f->spatial = f->lin = false;
        f->shared = 0;
        f->per_thread = align64((size_t)ximg);
    }
    /* An odd number of whole groups on 2 threads: a group-by-group run
     * (gdw_task, mobilenet_v2's 576- and 960-channel expansions, 9 and 15
     * groups) gives one thread a group more; with the last group as two
     * halves of 32 channels (the 12-pixel wide kernel for each) the
     * threads get the same share: features.12/13's pair 0.079-0.084 ->
     * 0.074-0.075 ms, features.14's 0.068-0.072 -> 0.064 ms. Only on maps
     * small enough for the group-by-group run (plan_cdw). */
    f->half_last = m->threads == 2 && groups >= 3 && groups % 2 == 1 && g->m % 64 == 0 && f->wide && f->ksec == 0 &&
                   !f->lin && g->m * osp * (int64_t)sizeof(float) < CDW_MIN;
    bool fresh = true;
    if (!f->i8) {
        int64_t key[8];
        bw = take_w(fl, (size_t)wbytes, conv_key(m, c, f->bf16 ? KEEP_BCONV_H : KEEP_BCONV, f->half_last, 0, key),
                    &fresh);
        if (f->bf16)
            f->bwh = pk.dsth = bw;
        else
            f->bw = pk.dst = bw;
    }
    if (bw != NULL && fl->dry) {
        memset(bw, 0, (size_t)wbytes);
        if (pk.qs != NULL && pk.qb != NULL) {
            memset(pk.qs, 0, (size_t)round_up(g->m, 16) * sizeof(float));
            memset(pk.qb, 0, (size_t)round_up(g->m, 16) * sizeof(float));
        }
    } else if (fresh && !fl->dry) {
        pk.w = conv_w(m, c, fl);
        if (bw != NULL && (!f->i8 || (pk.qs != NULL && pk.qb != NULL))) {
            pk.half_last = f->half_last;
            bconv_pack(m, g, &pk);
        }
    }
    if (f->ksec > 0) /* the sums of a task's tiles (a thread's most in one group with lin) */
        f->per_thread = align64((size_t)((f->lin ? f->tiles : per) * NN_BCONV_R * NN_BCONV_V * 16) * sizeof(float));
}

/* Winograd F(4x4, 3x3) on the blocked layout: for 3x3, stride-1,
 * dilation-1 convolutions whose input and output are both blocked, in
 * "auto" mode only with at least 16 tiles a run (a 7x7 map at batch 1 has
 * 4: one pass over the 4x larger transformed weights costs more than the
 * products save) and transformed weights of at most 4 MiB. Per block of
 * tiles: the input transform into V (36 points x channel blocks x tiles x
 * 16), the 36 products as 1x1 blocked convolutions of V with U (the
 * transformed weights, packed as the direct kernel's), then the output
 * transform with the fused epilogue. */
/* F(4x4) with U larger than the fixed rules keep for few tiles (10 MiB,
 * use_bwino) where there are tiles enough to pay for reading it a run:
 * resnet50's 512-channel 7x7 layers (37.7 MiB of U each) at batch 6 and
 * up. At batch 8 (32 tiles) the two layers took 3.4-3.6 ms each with U
 * stored, 5.2-5.7 with U made as it is used (wfly_task) and 7.5-8.0 with
 * the direct kernel; at batch 16, 6.6-7.5 against 8.5-8.7 made as used.
 * The cost is memory: resnet50's peak RSS at batch 8 293 -> 347 MiB
 * (ONNX Runtime's: 421). At batch 1 (4 tiles) reading U would cost more
 * than the direct kernel takes; below WBIG_TILES the measured picks
 * decide (tune_cands). Past WSTORE_MAX a layer's U is made as it is used
 * instead (wfly_ok), over a bounded range of tiles. */
#define WBIG_TILES 24 /* at least this many F(4x4) tiles a run */
#define WSTORE_MAX (64 << 20) /* bytes of U stored for one layer */
#define WFLY_TILES_MAX 96
#define WFLY_CB 4 /* channel blocks a chunk of U */
static int64_t wino_u4_bytes(const struct nn_geom *g)
{
    return 36 * g->c * round_up(g->m, 16) * (int64_t)sizeof(float);
}

static bool wino_ubig(const struct coffer_nn_model *m, const struct nn_geom *g)
{
    int64_t t = g->n * ((g->out[1] + 3) / 4) * ((g->out[2] + 3) / 4), u = wino_u4_bytes(g);
    return m->wino != NN_WINO_OFF && m->wino != NN_WINO_FLY && u > (10 << 20) && u <= WSTORE_MAX &&
           t >= WBIG_TILES;
}

static bool wfly_ok(const struct coffer_nn_model *m, const struct nn_geom *g)
{
    int64_t t = g->n * ((g->out[1] + 3) / 4) * ((g->out[2] + 3) / 4);
    return m->wino != NN_WINO_OFF && m->isa->bwin_u != NULL && m->isa->bconv_sec != NULL && g->c % 16 == 0 &&
           g->m % 64 == 0 &&
           (m->wino == NN_WINO_FLY ||
            (wino_u4_bytes(g) > WSTORE_MAX && t >= WBIG_TILES && t <= WFLY_TILES_MAX));
}

/* Kernels measured at plan time (tune) for 3x3 stride-1 layers with few
 * tiles a run (at most WINO2_TILES of F(4x4)), where the fixed rules
 * proved to depend on the machine: there the products are few and the
 * transformed weights, read once a run from memory, weigh as much as
 * the arithmetic, and which of the direct kernel, F(4x4) and F(2x2) wins
 * follows the memory's speed against the cores'. On the machine these
 * rules were measured on (resnet50 b1, its 14x14 256-channel layers)
 * F(2x2) took 0.64 ms against F(4x4)'s 0.68 and the direct kernel's
 * 0.76; on an AMD EPYC (Zen 4, 33 GB/s a stream) F(4x4) took 0.46
 * against F(2x2)'s 0.55, and on the 7x7 512-channel layers F(2x2), with
 * 16.8 MiB of U, 0.77-0.83 against the direct kernel's 1.11, where the
 * fixed rules kept F(4x4)'s 37.7 MiB out and with it Winograd. */
#define WINO2_TILES 32 /* at most this many F(4x4) tiles a run (wino_f2, tune_cands) */
enum { TUNE_NONE = 0, TUNE_DIRECT, TUNE_F4, TUNE_F2, TUNE_PICKS };
#define TUNE_U4_MAX (10 << 20) /* bytes of U a candidate keeps (the fixed rule's bound for F(4x4)) */
#define TUNE_U2_MAX (20 << 20)
/* the direct kernel's work below which the fixed rules decide (runs of
 * a few microseconds tell the candidates apart less well than the rules) */
#define TUNE_MIN_FLOP 20000000

static int64_t wino_tiles4(const struct nn_geom *g)
{
    return g->n * ((g->out[1] + 3) / 4) * ((g->out[2] + 3) / 4);
}

static bool is_3x3s(const struct nn_geom *g, int64_t s)
{
    for (int i = 1; i < NN_SP; i++)
        if (g->k[i] != 3 || g->s[i] != s || g->d[i] != 1)
            return false;
    return true;
}

static bool is_3x3s1(const struct nn_geom *g)
{
    return is_3x3s(g, 1);
}

/* The picks a blocked 3x3 stride-1 layer is measured among (bit k: pick
 * k), 0 where it is not measured. */
static unsigned tune_cands(const struct coffer_nn_model *m, const struct nn_geom *g)
{
    if (m->tune == NN_TUNE_OFF || m->wino != NN_WINO_AUTO || m->isa->bwin_in == NULL || m->isa->bconv_sec == NULL ||
        !is_3x3s1(g) || wfly_ok(m, g) || wino_ubig(m, g) || wino_tiles4(g) > WINO2_TILES ||
        (m->tune == NN_TUNE_AUTO && 18 * g->n * g->c * g->m * g->out[1] * g->out[2] < TUNE_MIN_FLOP))
        return 0;
    int64_t mmp = round_up(g->m, 16), u4 = 36 * g->c * mmp * (int64_t)sizeof(float), u2 = u4 / 36 * 16;
    unsigned s = 1u << TUNE_DIRECT;
    if (u4 <= TUNE_U4_MAX)
        s |= 1u << TUNE_F4;
    if (m->isa->bwin_in2 != NULL && u2 <= TUNE_U2_MAX)
        s |= 1u << TUNE_F2;
    return s == 1u << TUNE_DIRECT ? 0 : s;
}

static bool tune_same(const struct nn_tune *t, const struct nn_geom *g)
{
    return t->n == g->n && t->c == g->c && t->m == g->m && t->in[0] == g->in[1] && t->in[1] == g->in[2] &&
           t->pb[0] == g->pb[1] && t->pb[1] == g->pb[2] && t->out[0] == g->out[1] && t->out[1] == g->out[2];
}

/* The measured pick for the layer (or the one being measured), TUNE_NONE
 * where there is none: the fixed rules decide. */
static int tune_pick(const struct coffer_nn_model *m, const struct nn_geom *g)
{
    if (m->tune_force != TUNE_NONE)
        return m->tune_force;
    if (tune_cands(m, g) == 0)
        return TUNE_NONE;
    for (int i = 0; i < m->n_tune; i++)
        if (tune_same(&m->tunes[i], g))
            return m->tunes[i].pick;
    return TUNE_NONE;
}

/* Stride-2 3x3 layers in 2x2 output tiles (kernels/wino.c, nn_wino_gs2):
 * 25 products a tile where the direct kernel takes 36, for U 16/9 of the
 * weights; float32 only (bf16 and int8 keep their direct kernels). */
static bool wino_s2(const struct coffer_nn_model *m, const struct nn_geom *g)
{
    return m->wino != NN_WINO_OFF && m->isa->bwin_in_s2 != NULL && m->hk == NULL && is_3x3s(g, 2);
}

static int64_t wino_s2_ubytes(const struct nn_geom *g)
{
    return 16 * g->c * round_up(g->m, 16) * (int64_t)sizeof(float);
}

static bool use_bwino(const struct coffer_nn_model *m, const struct nn_geom *g, bool in_b, bool out_b)
{
    if (in_b && out_b && wino_s2(m, g)) {
        /* the points its tiles take against the direct kernel's products:
         * a map of odd side wastes a row and a column of tiles (7x7:
         * 400 points against 441 products; 14x14 and 28x28: 0.69) */
        int64_t pts = 25 * ((g->out[1] + 1) / 2) * ((g->out[2] + 1) / 2), dir = 9 * g->out[1] * g->out[2];
        return m->wino >= NN_WINO_ALWAYS || 10 * pts < 8 * dir;
    }
    if (m->wino == NN_WINO_OFF || !in_b || !out_b || m->isa->bwin_in == NULL || !is_3x3s1(g))
        return false;
    int p = tune_pick(m, g);
    if (p != TUNE_NONE)
        return p != TUNE_DIRECT;
    int64_t t = wino_tiles4(g);
    /* U is 4x the weights and every block of tiles reads all of it: past
     * a few MiB (resnet50's 256-channel layers: 9.4 MiB) U goes over all
     * tiles at once (wino_all), so it is read once a run: those layers
     * then take 0.68 ms against the direct kernel's 0.76 at batch 1 (16
     * tiles; when each block of tiles read U they took 0.97-1.1). More
     * than 10 MiB would outgrow the direct kernel's weights in memory and
     * in time over few tiles (resnet50's 512-channel layers: 37.7 MiB, 1.7
     * against 1.07 ms at batch 1), not over many (wino_ubig). */
    return m->wino >= NN_WINO_ALWAYS || (t >= 16 && wino_u4_bytes(g) <= (10 << 20)) || wino_ubig(m, g) ||
           wfly_ok(m, g);
}

static bool wino_all(const struct coffer_nn_model *m, const struct nn_geom *g)
{
    return (m->wino >= NN_WINO_ALL && m->wino != NN_WINO_F5) || tune_pick(m, g) == TUNE_F2 ||
           wino_u4_bytes(g) > (4 << 20);
}

/* F(2x2, 3x3) instead of F(4x4, 3x3) where U is stored and read once a
 * run (wino_all) over few tiles: there the products are bound by U's
 * stream, and F(2x2)'s U is 16/36 of F(4x4)'s for 2.25x the products
 * (resnet50's 256-channel 14x14 layers at batch 1: 16 tiles of 4x4, or
 * 49 of 2x2 that cover the map without waste). */
static bool wino_f2(const struct coffer_nn_model *m, const struct nn_geom *g)
{
    if (m->isa->bwin_in2 == NULL || wfly_ok(m, g) || !wino_all(m, g))
        return false;
    int p = tune_pick(m, g);
    if (p != TUNE_NONE)
        return p == TUNE_F2;
    int64_t t = wino_tiles4(g);
    return m->wino == NN_WINO_F2 || (m->wino == NN_WINO_AUTO && t <= WINO2_TILES && !wino_ubig(m, g));
}

/* F(5x5, 3x3) instead of F(4x4, 3x3) where its tiles cover the map with
 * fewer points (resnet50's 14x14 maps: 9 tiles of 5x5, 441 points, where
 * F(4x4) takes 16 tiles of 4x4 over 16x16, 576 points; at 56x56 and 28x28
 * the two are even, at 7x7 F(4x4) has fewer), U is stored and more tiles
 * run than the measured picks cover (tune_cands, WINO2_TILES: there U's
 * stream weighs as much as the products, and F(5x5)'s U is 49/36 of
 * F(4x4)'s). Its products are 23 % fewer at 14x14, its transforms about
 * as costly an output by operation count (measured only as the whole
 * layer: 3.7-3.9 -> 2.9 ms each at batch 8). In fp32 its error is ~1.5x F(4x4)'s (2.8e-6
 * against 1.9e-6 of the largest output, the median of random 64-channel
 * tiles; of four sets of points, 0, +-1, +-2 and 1/2 had the lowest). */
static bool wino_f5(const struct coffer_nn_model *m, const struct nn_geom *g)
{
    if (m->isa->bwin_in5 == NULL || wfly_ok(m, g) || wino_f2(m, g) || tune_pick(m, g) != TUNE_NONE)
        return false;
    if (m->wino == NN_WINO_F5)
        return true;
    int64_t p4 = 36 * ((g->out[1] + 3) / 4) * ((g->out[2] + 3) / 4);
    int64_t p5 = 49 * ((g->out[1] + 4) / 5) * ((g->out[2] + 4) / 5);
    return m->wino == NN_WINO_AUTO && wino_tiles4(g) > WINO2_TILES && 100 * p5 < 85 * p4;
}

/* Whether the wall products take wall_prod_sec: whole 64-channel groups
 * over whole channel blocks, and few enough tasks that the pool runs them
 * fixed (nn_pool_run_fixed), so a thread knows its next task. */
static bool wall_sec(const struct coffer_nn_model *m, const struct fast *f)
{
    return m->isa->bconv_sec != NULL && f->bc.otab_step == 16 && f->geo.m % 64 == 0 &&
           f->wp * (f->geo.m / 64) <= NN_POOL_FIXED_MAX;
}

#define WPAD 16 /* floats: one line */
/* U[xi] = (G g G^T)[xi] of output group og (a task), packed per point as
 * a 1x1 blocked convolution's weights ([og][cb][ic][vg * 16]). */
struct upack {
    const float *w, *bn_a;
    float *u;
    int64_t cc, mm, mmp;
    int wm;
};

static void upack_task(void *arg, int64_t og, int tid)
{
    (void)tid;
    const struct upack *a = arg;
    int64_t vg = blocks16(a->mm - og * 64) < NN_BCONV_V ? blocks16(a->mm - og * 64) : NN_BCONV_V;
    int64_t j1 = a->mm < og * 64 + 64 ? a->mm : og * 64 + 64;
    /* k outer: each point's row of the group (vg * 16 floats) written whole */
    for (int64_t k = 0; k < a->cc; k++)
        for (int64_t j = og * 64; j < j1; j += 16)
            nn_wino_u_lanes(a->wm, a->w + (j * a->cc + k) * 9, a->cc * 9, j1 - j < 16 ? (int)(j1 - j) : 16,
                            a->bn_a ? a->bn_a + j : NULL, a->u + og * 64 * a->cc + k * vg * 16 + (j - og * 64),
                            a->cc * a->mmp);
}

static void plan_bwino(struct coffer_nn_model *m, struct nn_ctx *c, struct fast *f, struct filler *fl,
                       const float *bn_a)
{
    struct nn_geom *g = &f->geo;
    f->kind = FAST_BWINO;
    pad_bias(c, f, fl, g->m);
    f->in_blocked = f->out_blocked = true;
    int64_t cc = g->c, mm = g->m, mmp = round_up(mm, 16);
    bool s2 = is_3x3s(g, 2);
    f->wstr = s2 ? 2 : 1;
    f->wfly = !s2 && wfly_ok(m, g);
    f->wm = s2 ? 2 : wino_f2(m, g) ? 2 : wino_f5(m, g) ? 5 : 4;
    f->wa = s2 ? 5 : f->wm + 2;
    f->wp = f->wa * f->wa;
    int pts = s2 ? 16 : f->wp; /* U's matrices (wino_uix) */
    int64_t key[8];
    bool fresh;
    if (f->wfly) {
        /* the weights (BatchNorm folded) as [og][cb][ic][9][64] */
        float *wp = take_w(fl, (size_t)(9 * cc * mm) * sizeof(float), conv_key(m, c, KEEP_WFLY, 0, 0, key), &fresh);
        const float *w = fresh ? conv_w(m, c, fl) : NULL;
        if (wp != NULL && fresh)
            for (int64_t j = 0; j < mm; j++)
                for (int64_t k = 0; k < cc; k++)
                    for (int t = 0; t < 9; t++)
                        wp[(j / 64) * 64 * cc * 9 + k * 9 * 64 + t * 64 + j % 64] =
                            w[(j * cc + k) * 9 + t] * (bn_a ? bn_a[j] : 1.0f);
        f->bw = wp;
    }
    float *u = NULL;
    if (!f->wfly) {
        int wm = s2 ? NN_WINO_S2 : f->wm;
        u = take_w(fl, (size_t)(pts * cc * mmp) * sizeof(float), conv_key(m, c, KEEP_BWINO, wm, 0, key), &fresh);
        /* (dry: resnet50 b1's 47 + 34 MiB of U not made, the plan's passes 150 -> 120 ms on 2 threads) */
        const float *w = fresh && !fl->dry ? conv_w(m, c, fl) : NULL;
        if (u != NULL && fresh) {
            memset(u, 0, (size_t)(pts * cc * mmp) * sizeof(float)); /* padded output lanes */
            struct upack a = {.w = w, .bn_a = bn_a, .u = u, .cc = cc, .mm = mm, .mmp = mmp, .wm = wm};
            if (!fl->dry)
                nn_pool_run(m->pool, m->threads, (mm + 63) / 64, upack_task, &a);
        }
    }
    if (!f->wfly)
        f->bw = u;
    f->oth = (g->out[1] + f->wm - 1) / f->wm;
    f->otw = (g->out[2] + f->wm - 1) / f->wm;
    f->wt = g->n * f->oth * f->otw;
    /* the patches of the tiles (hx x wx with the padding) */
    f->hx = f->oth * f->wm * f->wstr + f->wa - f->wm * f->wstr;
    f->wx = f->otw * f->wm * f->wstr + f->wa - f->wm * f->wstr;
    f->px = 16;
    f->row = f->wx * 16;
    /* tiles per block: V and the products of a block (points x (C + M) x
     * 16 floats a tile) within ~1.5 MiB of L2, a multiple of 6 (the kernel's
     * pixels), about two blocks a thread where there are tiles enough */
    int64_t per_tile = f->wp * (round_up(cc, 16) + mmp) * (int64_t)sizeof(float);
    int64_t tb = ((int64_t)(3 << 19) / per_tile) / NN_BCONV_R * NN_BCONV_R;
    int64_t share = (f->wt + 2 * m->threads - 1) / (2 * m->threads);
    share = (share + NN_BCONV_R - 1) / NN_BCONV_R * NN_BCONV_R;
    if (tb > share)
        tb = share;
    if (tb < NN_BCONV_R)
        tb = NN_BCONV_R;
    f->wall = s2 ? m->wino >= NN_WINO_ALL || wino_s2_ubytes(g) > (4 << 20) : wino_all(m, g) || f->wfly;
    if (f->wall) /* (wfly: whole calls of the kernel; the last tiles' products go unused) */
        tb = f->wfly ? (f->wt + NN_BCONV_R - 1) / NN_BCONV_R * NN_BCONV_R : f->wt;
    f->wtb = tb;
    f->wblocks = (f->wt + tb - 1) / tb;
    /* blocks enough for a split-free run: as many a thread (19 blocks on
     * 2 threads gave one thread a block more; wblock0 evens them out) */
    if (!f->wall && f->wblocks >= 2 * (int64_t)m->threads && round_up(f->wblocks, m->threads) * NN_BCONV_R <= f->wt)
        f->wblocks = round_up(f->wblocks, m->threads);
    /* few blocks: split the output groups of a block over several tasks */
    int64_t groups = (mm + 63) / 64, want = 2 * (int64_t)m->threads;
    f->wsplit = f->wblocks >= want || f->wblocks == 0 ? 1 : (want + f->wblocks - 1) / f->wblocks;
    if (f->wsplit > groups)
        f->wsplit = groups;
    struct nn_bconv *b = &f->bc;
    b->c = cc;
    b->kh = b->kw = 1;
    b->x_cb = tb * 16;
    b->x_c = 1;
    b->x_ky = b->x_kx = 0;
    b->y_px = 16;
    b->y_cb = tb * 16;
    b->y_c = tb;
    b->act = NN_ACT_NONE;
    bconv_otab(b, fl, (int64_t)sizeof(float));
    f->wsec = f->wall && !f->wfly && wall_sec(m, f);
    /* The products of output group og run on thread og % threads (run
     * fixed), so the output transform goes by output group and reads only
     * the products its thread made (split by tiles, half of each tile's
     * products came from the other core's cache). The input transform
     * goes by 64 input channels, each task every tile of 4 whole planes,
     * two tasks a thread, run fixed, instead of dynamic tasks of 8 tiles
     * over every plane. (The 1x1 layers feeding resnet50's split their
     * tiles in halves between the threads, so about half of the input
     * comes from the other core either way; the gain is presumably the
     * planes read in order and the even share, not measured apart.)
     * resnet50 b1's 14x14 layers (F(2x2), 49 tiles, 256 channels): input
     * transform 35-37 -> 22-23 us, output 22-23 -> 17-18 us. */
    f->wout_grp = f->wall && (f->wsec || f->wfly) && m->threads > 1 && g->m % 64 == 0 &&
                  (g->m / 64) % m->threads == 0 && g->m / 64 <= NN_POOL_FIXED_MAX;
    f->win_grp = f->wsec && m->threads > 1 && g->c % 64 == 0 && (g->c / 64) % m->threads == 0 &&
                 g->c / 64 <= NN_POOL_FIXED_MAX;
    f->bd.act = c->node->f_act;
    f->bd.lo = c->node->f_lo;
    f->bd.hi = c->node->f_hi;
    f->threads = m->threads;
    f->shared = 0; /* (wino_in reads the input in place) */
    /* a point's V and products one line past a multiple of tb * 16: with
     * strides of whole KiB the transforms' 36 loads or stores per tile
     * fell into 4 to 8 of L1's 64 sets (resnet50 b8, 3 alternating
     * rounds: its Winograd layers 43.4-44.2 -> 42.9 ms, the 256-channel
     * ones 2.9-3.2 -> 2.7-3.0 ms each) */
    f->wvs = round_up(cc, 16) * tb + WPAD;
    f->wps = mmp * tb + WPAD;
    f->per_thread = align64((size_t)(f->wp * (f->wvs + f->wps)) * sizeof(float));
    if (f->wall) { /* V and the products shared */
        f->wall_bytes = f->per_thread;
        f->shared += f->wall_bytes;
        f->per_thread = 0;
    }
    if (f->wfly) /* a point's U for a chunk, and every point's sums */
        f->per_thread = align64((size_t)(WFLY_CB * 16 * 64 + 36 * tb * 64) * sizeof(float));
}

/* A depthwise convolution's window and output size. */
static void dw_window(const struct nn_geom *g, struct nn_dw *d)
{
    d->oh = g->out[1];
    d->ow = g->out[2];
    d->kh = (int)g->k[1];
    d->kw = (int)g->k[2];
    d->sh = (int)g->s[1];
    d->sw = (int)g->s[2];
    d->dh = (int)g->d[1];
    d->dw = (int)g->d[2];
}

static void plan_conv_w(struct coffer_nn_model *m, struct nn_ctx *c, struct fast *f, struct filler *fl)
{
    const struct nn_isa *isa = m->isa;
    struct nn_node *n = c->node;
    struct nn_geom *g = &f->geo;
    if (plan_geom(c, 0, g) != COFFER_OK) /* checked by nn_fast_ok */
        return;
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    int64_t kv = g->k[0] * g->k[1] * g->k[2], kk = cg * kv;
    int64_t isp = g->in[0] * g->in[1] * g->in[2], osp = g->out[0] * g->out[1] * g->out[2];
    const float *b = c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL;
    f->a_runtime = !is_const(c->in[1]);
    int64_t key[8];
    bool fresh;
    /* BatchNorm folding: per output channel scale and shift */
    float *bn_a = NULL, *fbias = NULL;
    if (n->f_bn >= 0) {
        /* whole blocks of 16 for the blocked kernels, the padding zero */
        fbias = take(fl, (size_t)round_up(g->m, 16) * sizeof(float));
        bn_a = take(fl, (size_t)g->m * sizeof(float));
        f->bias = fbias;
        if (fbias != NULL) {
            memset(fbias + g->m, 0, (size_t)(round_up(g->m, 16) - g->m) * sizeof(float));
            bn_factors(m, &m->g.nodes[n->f_bn], g->m, bn_a, fbias);
            for (int64_t k = 0; k < g->m; k++)
                fbias[k] += (b ? b[k] : 0.0f) * bn_a[k];
        }
    }
    f->gm.epi.act = n->f_act;
    f->gm.epi.lo = n->f_lo;
    f->gm.epi.hi = n->f_hi;
    f->threads = m->threads;
    if (c->in[0]->blocked && bdw_ok(m, (size_t)(n - m->g.nodes))) {
        f->kind = FAST_BDW;
        pad_bias(c, f, fl, g->c);
        float *bw = take_w(fl, (size_t)(round_up(g->c, 16) * kv) * sizeof(float), conv_key(m, c, KEEP_BDW, 0, 0, key),
                           &fresh);
        const float *w = fresh ? conv_w(m, c, fl) : NULL;
        if (bw != NULL && fresh) /* [cb][kv][16], the padded lanes zero */
            memset(bw, 0, (size_t)(round_up(g->c, 16) * kv) * sizeof(float));
        if (bw != NULL && fresh)
            for (int64_t ch = 0; ch < g->c; ch++)
                for (int64_t t = 0; t < kv; t++)
                    bw[((ch / 16) * kv + t) * 16 + ch % 16] = w[ch * kv + t] * (bn_a ? bn_a[ch] : 1.0f);
        f->bw = bw;
        struct nn_bdw *d = &f->bd;
        dw_window(g, &d->d);
        d->d.xw = g->in[2];
        d->act = n->f_act;
        d->lo = n->f_lo;
        d->hi = n->f_hi;
        d->ih = g->in[1];
        d->pt = g->pb[1];
        d->pl = g->pb[2];
        f->in_blocked = f->out_blocked = true;
        f->per_thread = 0;
        f->shared = 0;
        /* a band of rows of every plane a thread, as plan_bconv's bands
         * (where the bands keep 14 rows or more: on 14x14 and 7x7 maps
         * the bands measured slower than whole planes a task) */
        f->spatial = m->threads > 1 && m->spatial != NN_SPATIAL_OFF &&
                     (m->spatial == NN_SPATIAL_ALWAYS || g->out[1] >= 14 * (int64_t)m->threads);
        return;
    }
    /* (int8: the direct int8 kernel, not Winograd in float, where the
     * input's range is calibrated) */
    if ((c->in[0]->blocked || m->g.vals[nn_node_out(n, 0)].blocked) && bconv_ok(m, (size_t)(n - m->g.nodes)) &&
        !(q8_ok(m, c) && c->in[0]->blocked) &&
        use_bwino(m, g, c->in[0]->blocked, m->g.vals[nn_node_out(n, 0)].blocked)) {
        plan_bwino(m, c, f, fl, bn_a);
        return;
    }
    if ((c->in[0]->blocked || m->g.vals[nn_node_out(n, 0)].blocked) && bconv_ok(m, (size_t)(n - m->g.nodes))) {
        plan_bconv(m, c, f, fl, bn_a);
        return;
    }
    if (is_dw(g) && !f->a_runtime) {
        f->kind = FAST_DW;
        float *dww = take_w(fl, (size_t)(g->m * kv) * sizeof(float), conv_key(m, c, KEEP_DW, 0, 0, key), &fresh);
        const float *w = fresh ? conv_w(m, c, fl) : NULL;
        if (dww != NULL && w != NULL)
            for (int64_t k = 0; k < g->m * kv; k++)
                dww[k] = w[k] * (bn_a ? bn_a[k / kv] : 1.0f);
        f->w = dww;
        struct nn_dw *d = &f->dw;
        dw_window(g, d);
        f->dw_h = d->oh > 0 ? (d->oh - 1) * d->sh + (d->kh - 1) * d->dh + 1 : 0;
        f->dw_w = d->ow > 0 ? (d->ow - 1) * d->sw + (d->kw - 1) * d->dw + 1 : 0;
        d->xw = f->dw_w;
        int64_t slack = (int64_t)isa->vl * (d->sw > 2 ? d->sw : 2) + 16;
        f->dw_floats = f->dw_h * f->dw_w + slack;
        f->per_thread = align64((size_t)f->dw_floats * sizeof(float));
        return;
    }
    if (use_wino(m, g, f->a_runtime)) {
        f->kind = FAST_WINO;
        struct nn_wino *wn = &f->wn;
        wn->n = g->n;
        wn->c = g->c;
        wn->m = g->m;
        wn->ih = g->in[1];
        wn->iw = g->in[2];
        wn->oh = g->out[1];
        wn->ow = g->out[2];
        wn->pt = g->pb[1];
        wn->pl = g->pb[2];
        nn_wino_geom(isa, m->threads, wn);
        float *u = take_w(fl, nn_wino_weights_size(isa, g->c, g->m), conv_key(m, c, KEEP_WINO, wn->su, 0, key), &fresh);
        const float *w = fresh ? conv_w(m, c, fl) : NULL;
        if (u != NULL && fresh)
            nn_wino_pack(isa, wn, w, bn_a, u);
        f->wu = u;
        f->per_thread = align64(nn_wino_scratch(wn));
        return;
    }
    f->kind = FAST_CONV;
    struct nn_im2col *im = &f->im;
    im->c = cg;
    for (int i = 0; i < NN_SP; i++) {
        im->in[i] = g->in[i];
        im->k[i] = g->k[i];
        im->s[i] = g->s[i];
        im->d[i] = g->d[i];
        im->pb[i] = g->pb[i];
        im->out[i] = g->out[i];
    }
    im->direct = kv == 1;
    for (int i = 0; i < NN_SP; i++)
        im->direct &= g->s[i] == 1 && g->pb[i] == 0 && g->out[i] == g->in[i];
    struct nn_gemm *gm = &f->gm;
    gm->m = mg;
    gm->n = osp;
    gm->k = kk;
    gm->im = im;
    gm->ldc = osp;
    gm->nb[0] = g->n;
    gm->nb[1] = g->group;
    gm->sb[0] = g->c * isp;
    gm->sb[1] = cg * isp;
    gm->sc[0] = g->m * osp;
    gm->sc[1] = mg * osp;
    gm->sbias[1] = mg;
    gm->epi.ldr = osp;
    if (f->a_runtime) {
        gm->a_rs = kk;
        gm->a_cs = 1;
        gm->sa[1] = mg * kk;
    } else {
        size_t per_group = nn_pack_a_size(isa, mg, kk);
        float *ap = take_w(fl, per_group * (size_t)g->group, conv_key(m, c, KEEP_CONV, 0, 0, key), &fresh);
        const float *w = fresh ? conv_w(m, c, fl) : NULL;
        gm->ap = ap; /* NULL while counting; nn_gemm_scratch only asks whether A is packed */
        gm->sa[1] = (int64_t)(per_group / sizeof(float));
        if (ap != NULL && fresh) {
            for (int64_t gi = 0; gi < g->group; gi++) {
                float *dst = ap + gi * gm->sa[1];
                nn_pack_a(isa, w + gi * mg * kk, kk, 1, mg, kk, dst);
                if (bn_a != NULL)
                    nn_pack_a_scale(isa, dst, mg, kk, bn_a + gi * mg);
            }
        }
    }
    struct nn_gemm probe = *gm;
    probe.ap = f->a_runtime ? NULL : (const float *)f; /* any non-NULL: packed */
    f->per_thread = nn_gemm_scratch(isa, &probe);
    f->shared = nn_gemm_shared(isa, &probe, f->threads);
}

/* Free the staging buffer, zeroing only the bytes weights were copied
 * into (the rest of a buffer made for the largest deferred weight may be
 * untouched, and zeroing it would fault its pages in: mobilenet_v2
 * re-planned at a new batch size, ~4 % of the time). */
static void wstage_free(struct coffer_nn_model *m)
{
    coffer_secret_free_used(m->wstage, m->wstage_used);
    m->wstage = NULL;
    m->wstage_used = 0;
}

/* The staging buffer for stage_w, as large as the largest deferred weight. */
static enum coffer_err wstage_make(struct coffer_nn_model *m)
{
    if (m->wstage != NULL || m->defer_max == 0)
        return COFFER_OK;
    enum coffer_err r = coffer_secret_new_flags(m->defer_max, COFFER_SECRET_SMALL_PAGES, &m->wstage);
    return r == COFFER_OK ? r : COFFER_FAIL(r, "staging buffer for weights: %zu bytes", m->defer_max);
}

/* A deferred weight (onnx.c, defer_settle) is in the file, misaligned:
 * while its node is planned it is copied into the staging buffer, one
 * buffer for all of them, and the packers read it there. Not on the
 * counting pass (no room to pack into: nothing reads it; it notes that the
 * buffer is needed); on a plan to measure (tune) the buffer is taken as it
 * is, without the copy, as the weights it packs are not used. */
static bool stage_w(struct coffer_nn_model *m, struct nn_val *v, struct filler *fl)
{
    if (v == NULL || v->data != NULL || v->kind != NN_VAL_INIT || v->init->raw == NULL)
        return false;
    if (fl->base == NULL) { /* (the counting pass: the buffer is made only if a weight is to be packed) */
        fl->need_stage = true;
        return false;
    }
    if (COFFER_NEVER(m->wstage == NULL || m->wstage->size < v->size))
        return false;
    if (!fl->dry) {
        memcpy(m->wstage->data, v->init->raw, v->size);
        if (v->size > m->wstage_used)
            m->wstage_used = v->size;
    }
    v->data = m->wstage->data;
    return true;
}

static void plan_gemm(struct coffer_nn_model *m, struct nn_ctx *c, struct fast *f, struct filler *fl)
{
    const struct nn_isa *isa = m->isa;
    struct nn_node *n = c->node;
    struct nn_gemm *gm = &f->gm;
    const struct nn_val *a = c->in[0], *b = c->in[1], *y = c->out[0];
    bool is_gemm = n->op == NN_OP_GEMM;
    int64_t ta = is_gemm ? nn_ai(n, "transA", 0) : 0, tb = is_gemm ? nn_ai(n, "transB", 0) : 0;
    float alpha = is_gemm ? nn_af(n, "alpha", 1.0f) : 1.0f;
    f->beta = is_gemm ? nn_af(n, "beta", 1.0f) : 1.0f;
    f->kind = FAST_GEMM;
    f->threads = m->threads;
    if (is_gemm) {
        gm->m = y->dims[0];
        gm->n = y->dims[1];
        gm->k = ta ? a->dims[0] : a->dims[1];
        gm->a_rs = ta ? 1 : a->dims[1];
        gm->a_cs = ta ? a->dims[1] : 1;
        gm->b_rs = tb ? 1 : b->dims[1];
        gm->b_cs = tb ? b->dims[1] : 1;
    } else {
        gm->k = b->dims[0];
        gm->n = b->dims[1];
        gm->m = gm->n > 0 ? (int64_t)(y->count / (size_t)gm->n) : 0;
        gm->a_rs = gm->k;
        gm->a_cs = 1;
        gm->b_rs = gm->n;
        gm->b_cs = 1;
    }
    gm->ldc = gm->n;
    gm->nb[0] = gm->nb[1] = 1;
    gm->epi.ldr = gm->n;
    gm->epi.act = n->f_act;
    gm->epi.lo = n->f_lo;
    gm->epi.hi = n->f_hi;
    f->a_runtime = !is_const(b);
    if (!f->a_runtime) {
        /* an initializer's packing is kept over re-plans (take_w); a
         * folded constant's may change with pinned inputs */
        uint32_t ab;
        memcpy(&ab, &alpha, sizeof(ab));
        int64_t key[8] = {KEEP_GEMM, isa->id, n->in[1], gm->k, gm->n, gm->b_rs, gm->b_cs, ab};
        bool fresh;
        float *bp = take_w(fl, nn_pack_b_size(isa, gm->k, gm->n), b->kind == NN_VAL_INIT ? key : NULL, &fresh);
        if (fresh) {
            bool staged = stage_w(m, c->in[1], fl);
            if (bp != NULL)
                nn_pack_b(isa, b->data, gm->b_rs, gm->b_cs, gm->k, gm->n, alpha, bp);
            if (staged)
                c->in[1]->data = NULL;
        }
        gm->bp = bp;
    }
    const struct nn_val *cv = is_gemm && c->n_in > 2 ? c->in[2] : NULL;
    if (cv != NULL) {
        bool row = (cv->rank == 1 && cv->dims[0] == gm->n) || (cv->rank == 2 && cv->dims[0] == 1 && cv->dims[1] == gm->n);
        if (row && (f->beta == 1.0f || is_const(cv))) {
            if (f->beta != 1.0f) {
                float *sb = take(fl, (size_t)gm->n * sizeof(float));
                if (sb != NULL)
                    for (int64_t j = 0; j < gm->n; j++)
                        sb[j] = f->beta * ((const float *)cv->data)[j];
                f->bias = sb;
            }
        } else {
            f->prefill = true;
        }
    }
    struct nn_gemm probe = *gm;
    probe.bp = f->a_runtime ? NULL : (const float *)f;
    f->per_thread = nn_gemm_scratch(isa, &probe);
    f->shared = nn_gemm_shared(isa, &probe, f->threads);
}

static void plan_conv(struct coffer_nn_model *m, struct nn_ctx *c, struct fast *f, struct filler *fl)
{
    /* (a deferred weight is staged only where it is to be packed: conv_w) */
    struct nn_val *w = c->n_in > 1 ? c->in[1] : NULL;
    bool deferred = w != NULL && w->data == NULL && w->kind == NN_VAL_INIT && w->init->raw != NULL;
    plan_conv_w(m, c, f, fl);
    if (deferred)
        w->data = NULL;
}

bool nn_fast_per_image(const struct nn_node *n)
{
    const struct fast *f = n->fast;
    return f != NULL && f->kind == FAST_BCONV && f->pimg;
}

bool nn_fast_packs_w(const struct nn_node *n)
{
    const struct fast *f = n->fast;
    if (f == NULL || f->a_runtime)
        return false;
    switch (f->kind) {
    case FAST_CONV:
    case FAST_DW:
    case FAST_GEMM:
    case FAST_WINO:
    case FAST_BCONV:
    case FAST_BDW:
    case FAST_BWINO:
        return true;
    default:
        return false;
    }
}

static bool is_pool_op(int op)
{
    return op == NN_OP_MAXPOOL || op == NN_OP_AVERAGEPOOL;
}

/* MaxPool (without Indices) and AveragePool over one or two spatial axes
 * of float32 run on the pool's threads, one plane per task. */
static bool pool_ok(struct coffer_nn_model *m, size_t i)
{
    struct nn_ctx c;
    nn_ctx_init(m, i, &c, false);
    struct nn_geom g;
    if (!is_pool_op(c.node->op) || (c.n_out > 1 && c.out[1] != NULL) || c.in[0]->dtype != COFFER_NN_FLOAT ||
        nn_geom_get(&c, 1, &g) != COFFER_OK)
        return false;
    return g.in[0] == 1 && g.k[0] == 1 && g.out[0] == 1 && g.pb[0] == 0;
}

static void plan_node(struct coffer_nn_model *m, size_t i, struct filler *fl)
{
    struct nn_ctx c;
    nn_ctx_init(m, i, &c, false);
    struct fast *f = take(fl, sizeof(struct fast));
    struct fast tmp;
    if (f == NULL)
        f = &tmp;
    memset(f, 0, sizeof(*f));
    if (c.node->op == NN_OP_CONV) {
        plan_conv(m, &c, f, fl);
    } else if (is_pool_op(c.node->op)) {
        f->kind = c.in[0]->blocked ? FAST_BPOOL : FAST_POOL;
        f->threads = m->threads;
        if (plan_geom(&c, 1, &f->geo) != COFFER_OK) /* checked by pool_ok */
            f->kind = 0;
        else if (f->kind == FAST_POOL)
            f->per_thread = 2 * align64((size_t)f->geo.in[2] * sizeof(float));
        else /* bands of rows a thread, as the depthwise convolutions have them (resnet50's
              * MaxPool after the first convolution at batch 1: 0.117-0.128 -> 0.094-0.106 ms) */
            f->spatial = m->threads > 1 && m->spatial != NN_SPATIAL_OFF &&
                         (m->spatial == NN_SPATIAL_ALWAYS || f->geo.out[1] >= 14 * (int64_t)m->threads);
    } else if (c.node->op == NN_OP_GLOBALAVERAGEPOOL || c.node->op == NN_OP_GLOBALMAXPOOL) {
        f->kind = FAST_BGPOOL; /* only for a blocked input */
        f->threads = m->threads;
    } else {
        plan_gemm(m, &c, f, fl);
    }
    c.node->fast = f == &tmp || f->kind == 0 ? NULL : f; /* kind 0: geometry refused (nn_fast_ok, pool_ok checked it) */
    size_t s = align64(f->shared) + align64(f->per_thread) * (size_t)(f->threads > 0 ? f->threads : 1);
    if (s > c.node->scratch)
        c.node->scratch = s;
}

/* Smaller maps (mobilenet_v2's 14x14 and 7x7 expansions to 384-960
 * channels) run the pair group by group of 64 output channels instead
 * (gdw_task): a task makes its group's 4 planes of A's output, every pixel,
 * and at once the depthwise convolution of those planes, from L1/L2 of
 * the same core. Run as two layers, the depthwise layer read about half
 * of its planes from the other core's cache (A's tasks split by group or
 * by band of pixels, B's by plane) and took longer on two threads than
 * on one. Where there are at least 2 groups a thread. */
static void plan_cdw(struct coffer_nn_model *m)
{
    struct nn_graph *g = &m->g;
    for (size_t i = 0; i < g->n_nodes && m->cdw != NN_CDW_OFF; i++) {
        struct nn_node *na = &g->nodes[i];
        struct fast *fa = na->fast;
        if (!na->live || na->skip || fa == NULL || fa->kind != FAST_BCONV || fa->ksec > 0 || fa->pimg ||
            !fa->out_blocked)
            continue;
        size_t j = i + 1;
        while (j < g->n_nodes && (!g->nodes[j].live || g->nodes[j].skip))
            j++;
        if (j == g->n_nodes)
            break;
        struct nn_node *nb = &g->nodes[j];
        const struct fast *fb = nb->fast;
        if (fb == NULL || fb->kind != FAST_BDW || fb->threads != fa->threads || na->seg != nb->seg)
            continue;
        struct nn_ctx ca, cb;
        nn_ctx_init(m, i, &ca, true);
        nn_ctx_init(m, j, &cb, true);
        const struct nn_val *v = ca.out[0];
        int64_t row = round_up(fa->geo.m, 16) * fa->geo.out[2] * (int64_t)sizeof(float);
        if (v == NULL || cb.in[0] != v || v->is_output || v->last_use != (int)j || nb->f_res == (int)(v - g->vals))
            continue;
        bool rows = m->cdw == NN_CDW_ALWAYS || (m->cdw == NN_CDW_AUTO && row * fa->geo.out[1] >= CDW_MIN);
        bool grp = m->cdw == NN_CDW_GROUPS ||
                   (m->cdw == NN_CDW_AUTO && !rows && !fb->spatial && (fa->geo.m + 63) / 64 >= 2 * fa->threads);
        if (!rows && !grp)
            continue;
        /* (tests: one to three rows at a time, so that small maps take several) */
        if (rows)
            fa->cdw_rows = m->cdw == NN_CDW_ALWAYS ? 1 + (int64_t)i % 3 : CDW_ROWS / row > 1 ? CDW_ROWS / row : 1;
        fa->cdw_grp = grp;
        na->with_next = (int)j;
        nb->by_prev = true;
    }
}

static void tune(struct coffer_nn_model *m);

enum coffer_err nn_fast_prepare(struct coffer_nn_model *m)
{
    struct nn_graph *g = &m->g;
    if (m->isa == NULL || m->isa->id == NN_ISA_REF)
        return COFFER_OK;
    uint8_t *cap = coffer_calloc(g->n_nodes + 1, 1);
    if (cap == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "layout pass");
    plan_layout(m, cap);
    enum coffer_err sr = plan_seg(m, cap);
    coffer_free(cap);
    if (sr != COFFER_OK)
        return sr;
    tune(m);
    m->plan_gen++;
    for (int pass = 0; pass < 2; pass++) {
        struct filler fl = {.base = pass ? m->pack : NULL, .keep = m};
        for (size_t i = 0; i < g->n_nodes; i++) {
            struct nn_node *n = &g->nodes[i];
            bool gemm_like = n->op == NN_OP_CONV || n->op == NN_OP_GEMM || n->op == NN_OP_MATMUL;
            bool ok = gemm_like ? nn_fast_ok(m, i) : pool_ok(m, i);
            if (!gemm_like && bgpool_ok(m, n) && g->vals[n->in[0]].blocked)
                ok = true;
            if (!n->live || n->skip || !ok)
                continue;
            plan_node(m, i, &fl);
        }
        if (fl.err != COFFER_OK) {
            wstage_free(m);
            return fl.err;
        }
        if (pass == 0) {
            /* (the kept weights the plan does not take go before it packs
             * any: their pages are freed before the new ones are touched) */
            m->pack_size = fl.used + wkeep_trim(m);
            if (fl.used > m->pack_cap) {
                /* the model in plaintext: locked, zeroed when freed
                 * (page-aligned, so 64-aligned). On 4 KiB pages: read in
                 * order, they gain nothing measurable from 2 MiB ones
                 * (resnet50 b1 within 0.5 %), and on a VM whose host takes
                 * freed memory back, each fresh 2 MiB page cost the load
                 * several times more (resnet50's load after a pause
                 * 280-500 -> 190-250 ms). The activations keep 2 MiB pages. */
                coffer_secret_free(m->pack_mem);
                m->pack_mem = NULL;
                m->pack = NULL;
                m->pack_cap = 0;
                enum coffer_err r = coffer_secret_new_flags(fl.used, COFFER_SECRET_SMALL_PAGES, &m->pack_mem);
                if (r != COFFER_OK) {
                    wstage_free(m);
                    return COFFER_FAIL(r, "packed weights: %zu bytes", fl.used);
                }
                m->pack_cap = fl.used;
                m->pack = m->pack_mem->data;
            }
            /* the staging buffer (4 KiB pages: 9 MiB at most for resnet50),
             * made once a plan where a deferred weight is to be packed: not
             * where every such weight's packing is kept already (take_w) */
            enum coffer_err r = fl.need_stage ? wstage_make(m) : COFFER_OK;
            if (r != COFFER_OK)
                return r;
        }
    }
    wstage_free(m);
    plan_cdw(m);
    return COFFER_OK;
}

const char *nn_fast_kernel(const struct nn_node *n)
{
    const struct fast *f = n->fast;
    if (f == NULL)
        return "ref";
    switch (f->kind) {
    case FAST_DW:
    case FAST_BDW:
        return "depthwise";
    case FAST_WINO:
        return "winograd";
    case FAST_BWINO:
        return f->wstr == 2 ? "winograd-s2"
               : f->wm == 2 ? "winograd-f2"
               : f->wm == 5 ? "winograd-f5"
               : f->wfly    ? "winograd-fly"
                            : "winograd";
    case FAST_POOL:
    case FAST_BPOOL:
        return "pool";
    case FAST_BCONV:
        if (f->bf16)
            return f->cdw_rows > 0 || f->cdw_grp ? "direct-bf16+depthwise" : "direct-bf16";
        if (f->i8)
            return f->cdw_rows > 0 || f->cdw_grp ? "direct-int8+depthwise" : "direct-int8";
        return f->cdw_rows > 0 || f->cdw_grp ? "direct+depthwise" : "direct";
    case FAST_BGPOOL:
        return "gpool";
    default:
        return "gemm";
    }
}

/* -------------------------------------------------------------- running */

struct dw_run {
    const struct nn_isa *isa;
    const struct fast *f;
    const float *x, *res, *bias;
    float *y;
    uint8_t *scratch;
};

static void dw_task(void *arg, int64_t t, int tid)
{
    const struct dw_run *r = arg;
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    int64_t ch = t % g->c;
    int64_t ih = g->in[1], iw = g->in[2], isp = ih * iw, osp = f->dw.oh * f->dw.ow;
    float *plane = (float *)(r->scratch + (size_t)tid * f->per_thread);
    int64_t pt = g->pb[1], pl = g->pb[2];
    int64_t cols = iw < f->dw_w - pl ? iw : f->dw_w - pl;
    if (cols < 0)
        cols = 0;
    const float *x = r->x + t * isp;
    /* the input rows with zero padding around them: a small plane (a 7x7
     * or 14x14 map) is cleared whole first (one call, not three a row); in
     * a big one only the padding and the slack after it are cleared */
    bool small = f->dw_floats <= 4096;
    if (small)
        memset(plane, 0, (size_t)f->dw_floats * sizeof(float));
    for (int64_t py = 0; py < f->dw_h; py++) {
        float *row = plane + py * f->dw_w;
        int64_t iy = py - pt;
        if (iy < 0 || iy >= ih || cols == 0) {
            if (!small)
                memset(row, 0, (size_t)f->dw_w * sizeof(float));
            continue;
        }
        if (!small)
            memset(row, 0, (size_t)pl * sizeof(float));
        memcpy(row + pl, x + iy * iw, (size_t)cols * sizeof(float));
        if (!small)
            memset(row + pl + cols, 0, (size_t)(f->dw_w - pl - cols) * sizeof(float));
    }
    if (!small)
        memset(plane + f->dw_h * f->dw_w, 0, (size_t)(f->dw_floats - f->dw_h * f->dw_w) * sizeof(float));
    float bias = r->bias ? r->bias[ch] : 0.0f;
    int64_t kv = (int64_t)f->dw.kh * f->dw.kw;
    float *y = r->y + t * osp;
    struct nn_epi e = f->gm.epi;
    int act = r->res ? NN_ACT_NONE : e.act;
    r->isa->dw(&f->dw, plane, f->w + ch * kv, bias, act, e.lo, e.hi, y);
    if (r->res != NULL) {
        const float *rs = r->res + t * osp;
        for (int64_t j = 0; j < osp; j++) {
            float v = y[j] + rs[j];
            if (e.act == NN_ACT_RELU)
                v = v > 0.0f ? v : 0.0f;
            else if (e.act == NN_ACT_CLIP)
                v = v < e.lo ? e.lo : v > e.hi ? e.hi : v;
            y[j] = v;
        }
    }
}

/* One plane of a 1-D or 2-D MaxPool / AveragePool, with the semantics of
 * the reference kernel (nn_run_pool): NaN wins a max, count_include_pad
 * counts every window position. Both reductions are separable: per output
 * row, the window's input rows are first combined element-wise into a row
 * of per-thread scratch, then the kw columns of every window of that row
 * into a second row (long independent runs the compiler vectorises), from
 * which each output whose window lies inside the row takes its value; the
 * edge columns are reduced one by one with bounds checks. */
struct pool_run {
    const struct nn_geom *g;
    const float *x;
    float *y;
    bool is_max;
    uint8_t *scratch;
    size_t per_thread;
};

static inline float max_nan(float acc, float v)
{
    return v > acc || v != v ? v : acc;
}

/* dst[i] = max_nan(dst[i], src[i]) or dst[i] + src[i], for i < n */
static void pool_combine(float *dst, const float *src, int64_t n, bool is_max)
{
    if (is_max)
        for (int64_t i = 0; i < n; i++)
            dst[i] = max_nan(dst[i], src[i]);
    else
        for (int64_t i = 0; i < n; i++)
            dst[i] += src[i];
}

static void pool_task(void *arg, int64_t t, int tid)
{
    const struct pool_run *r = arg;
    const struct nn_geom *g = r->g;
    int64_t ih = g->in[1], iw = g->in[2], oh = g->out[1], ow = g->out[2];
    int64_t kh = g->k[1], kw = g->k[2], sh = g->s[1], sw = g->s[2], dh = g->d[1], dwd = g->d[2];
    int64_t pt = g->pb[1], pl = g->pb[2];
    const float *x = r->x + t * ih * iw;
    float *y = r->y + t * oh * ow;
    float *row = (float *)(r->scratch + (size_t)tid * r->per_thread);
    float *h = row + ((g->in[2] + 15) & ~(int64_t)15);
    /* ox in [ox0, ox1): every kx lands inside the row */
    int64_t ox0 = pl > 0 ? (pl + sw - 1) / sw : 0;
    int64_t last = iw - 1 + pl - (kw - 1) * dwd; /* ox * sw <= last */
    int64_t ox1 = last < 0 ? 0 : last / sw + 1;
    if (ox1 > ow)
        ox1 = ow;
    if (ox0 > ox1)
        ox0 = ox1;
    for (int64_t oy = 0; oy < oh; oy++) {
        float *yr = y + oy * ow;
        int64_t ky0 = 0, ky1 = kh; /* rows of the window inside the plane */
        while (ky0 < kh && oy * sh - pt + ky0 * dh < 0)
            ky0++;
        while (ky1 > ky0 && oy * sh - pt + (ky1 - 1) * dh >= ih)
            ky1--;
        int64_t rows = ky1 - ky0;
        if (rows == 0) {
            for (int64_t i = 0; i < iw; i++)
                row[i] = r->is_max ? -INFINITY : 0.0f;
        } else {
            memcpy(row, x + (oy * sh - pt + ky0 * dh) * iw, (size_t)iw * sizeof(float));
            for (int64_t ky = ky0 + 1; ky < ky1; ky++)
                pool_combine(row, x + (oy * sh - pt + ky * dh) * iw, iw, r->is_max);
        }
        /* h[j]: the reduction of the window starting at column j */
        int64_t hn = iw - (kw - 1) * dwd;
        if (hn > 0 && ox1 > ox0) {
            memcpy(h, row, (size_t)hn * sizeof(float));
            for (int64_t kx = 1; kx < kw; kx++)
                pool_combine(h, row + kx * dwd, hn, r->is_max);
        }
        for (int64_t ox = 0; ox < ow; ox++) {
            float acc = r->is_max ? -INFINITY : 0.0f;
            int64_t cnt = 0;
            if (ox >= ox0 && ox < ox1) {
                acc = h[ox * sw - pl];
                cnt = kw;
            } else {
                for (int64_t kx = 0; kx < kw; kx++) {
                    int64_t ix = ox * sw - pl + kx * dwd;
                    if (ix < 0 || ix >= iw)
                        continue;
                    acc = r->is_max ? max_nan(acc, row[ix]) : acc + row[ix];
                    cnt++;
                }
            }
            if (!r->is_max)
                acc = g->include_pad ? acc / (float)(kh * kw) : (cnt ? acc / (float)(cnt * rows) : 0.0f);
            yr[ox] = rows ? acc : (r->is_max ? -INFINITY : 0.0f);
        }
    }
}

/* The blocked convolution: the input copied into a zero-padded map first
 * when the window leaves it (one task per image and channel block or
 * plain channel), then tiles of NN_BCONV_R output pixels (of one image)
 * per group of output blocks, each task a run of tiles of one group over
 * all images (its weights stay in the core's cache across the run). */
struct bconv_run {
    const struct nn_isa *isa;
    const struct fast *f;
    const float *x, *res, *bias;
    const uint16_t *xh; /* bf16 (struct fast): x copied, element for element */
    const struct nn_hkern *hk;
    const uint8_t *xq; /* int8: x quantized, element for element */
    const struct nn_qkern *qk;
    float *y, *pad;
    uint8_t *scratch; /* per-thread blocks (Winograd) */
    uint8_t *thr;     /* per-thread blocks where scratch holds the shared ones (wfly) */
    int64_t bands;    /* bpad_task: bands of rows a plane */
};

static void bpad_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bconv_run *r = arg;
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    int64_t h = g->in[1], w = g->in[2], pt = g->pb[1], pl = g->pb[2], px = f->px;
    /* t: band t % bands of a channel block (blocked) or a channel (plain) */
    int64_t plane = t / r->bands, band = t % r->bands;
    const float *src = r->x + plane * h * w * px;
    float *dst = r->pad + plane * f->hx * f->wx * px;
    int64_t cols = w < f->wx - pl ? w : f->wx - pl;
    if (cols < 0)
        cols = 0;
    for (int64_t py = band * f->hx / r->bands; py < (band + 1) * f->hx / r->bands; py++) {
        float *row = dst + py * f->wx * px;
        int64_t iy = py - pt;
        if (iy < 0 || iy >= h || cols == 0) {
            memset(row, 0, (size_t)(f->wx * px) * sizeof(float));
            continue;
        }
        memset(row, 0, (size_t)(pl * px) * sizeof(float));
        memcpy(row + pl * px, src + iy * w * px, (size_t)(cols * px) * sizeof(float));
        memset(row + (pl + cols) * px, 0, (size_t)((f->wx - pl - cols) * px) * sizeof(float));
    }
}

/* The kernels of a blocked convolution's run, float, bf16 or int8
 * (struct fast) alike: the input at element xo of the run's map (r->x, or
 * its copy r->xh or r->xq), the weights at element wo of the packing; the
 * int8 sums' scales where the bias is (bias - r->bias channels on). */
static void k_conv(const struct bconv_run *r, int64_t xo, const int64_t *xoff, int rr, int64_t wo, int vg,
                   const float *bias, const float *res, float *y)
{
    const struct fast *f = r->f;
    if (f->i8)
        r->qk->conv(&f->bc, r->xq + xo, xoff, rr, f->bwq + wo, vg, f->qs + (bias - r->bias), bias, res, y);
    else if (f->bf16)
        r->hk->conv(&f->bc, r->xh + xo, xoff, rr, f->bwh + wo, vg, bias, res, y);
    else
        r->isa->bconv(&f->bc, r->x + xo, xoff, rr, f->bw + wo, vg, bias, res, y);
}
static void k_wide(const struct bconv_run *r, int64_t xo, int npx, int64_t wo, int vg, const float *bias,
                   const float *res, float *y)
{
    const struct fast *f = r->f;
    if (f->i8)
        r->qk->wide(&f->bc, r->xq + xo, npx, f->bwq + wo, vg, f->qs + (bias - r->bias), bias, res, y);
    else if (f->bf16)
        r->hk->wide(&f->bc, r->xh + xo, npx, f->bwh + wo, vg, bias, res, y);
    else
        r->isa->bconv_wide(&f->bc, r->x + xo, npx, f->bw + wo, vg, bias, res, y);
}
static void k_sec(const struct bconv_run *r, int64_t xo, const int64_t *xoff, int64_t e0, int64_t e1, int64_t wo,
                  float *acc, const float *bias, const float *res, float *y, const void *pf)
{
    const struct fast *f = r->f;
    if (f->i8)
        r->qk->sec(&f->bc, r->xq + xo, xoff, e0, e1, f->bwq + wo, (int32_t *)(void *)acc, f->qs + (bias - r->bias),
                   bias, res, y, pf);
    else if (f->bf16)
        r->hk->sec(&f->bc, r->xh + xo, xoff, e0, e1, f->bwh + wo, acc, bias, res, y, pf);
    else
        r->isa->bconv_sec(&f->bc, r->x + xo, xoff, e0, e1, f->bw + wo, acc, bias, res, y, pf);
}
/* Input channels an output channel's packed weights cover (the bf16 and
 * int8 packings' last block whole). */
static int64_t wch(const struct fast *f)
{
    return f->bf16 || f->i8 ? round_up(f->geo.c, 16) : f->geo.c;
}

/* The address of element wo of the packed weights (for prefetches). */
static const char *k_wat(const struct fast *f, int64_t wo)
{
    return f->i8 ? (const char *)(f->bwq + wo) : f->bf16 ? (const char *)(f->bwh + wo) : (const char *)(f->bw + wo);
}

/* The input offsets of output pixels [p0, p0 + rr) of an image: one
 * division, not one a pixel (six a tile cost as much as the products of
 * mobilenet_v2's 3-channel first layer). */
static void tile_xoff(const struct fast *f, int64_t p0, int rr, int64_t *xoff)
{
    int64_t ow = f->geo.out[2], oy = p0 / ow, ox = p0 % ow;
    for (int i = 0; i < rr; i++) {
        xoff[i] = oy * f->sy * f->row + ox * f->sx * f->px;
        if (++ox == ow) {
            ox = 0;
            oy++;
        }
    }
}

/* bconv_task's tiles [t0, t1) of group og (4 blocks) in sections
 * (struct fast, ksec): the whole tiles section by section, their sums in
 * acc, then any partial tile in one pass as bconv_task has it. */
static void bconv_sec_tiles(const struct bconv_run *r, int tid, int64_t og, int64_t t0, int64_t t1,
                            const char *after)
{
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    const struct nn_bconv *b = &f->bc;
    int64_t ow = g->out[2], osp = g->out[1] * ow, tpi = (osp + NN_BCONV_R - 1) / NN_BCONV_R;
    int64_t ximg = (f->in_blocked ? round_up(g->c, 16) : g->c) * f->hx * f->wx;
    int64_t yimg = round_up(g->m, 16) * osp;
    int64_t w = og * 64 * wch(f) * g->k[1] * g->k[2], es = f->i8 ? 1 : f->bf16 ? 2 : 4;
    const float *bias = r->bias ? r->bias + og * 64 : NULL;
    int64_t yo = og * 4 * b->y_cb;
    float *acc = (float *)(r->scratch + (size_t)tid * f->per_thread);
    const int64_t tile_floats = NN_BCONV_R * NN_BCONV_V * 16, entry_floats = 16 * NN_BCONV_V * 16;
    int64_t whole = 0;
    for (int64_t tile = t0; tile < t1; tile++)
        whole += osp - (tile % tpi) * NN_BCONV_R >= NN_BCONV_R;
    memset(acc, 0, (size_t)(whole * tile_floats) * sizeof(float));
    for (int64_t e0 = 0; e0 < b->ntab && whole > 0; e0 += f->ksec) {
        int64_t e1 = e0 + f->ksec < b->ntab ? e0 + f->ksec : b->ntab;
        int64_t ws = w + e0 * entry_floats;
        /* the next section, a stretch of it per tile; past its end (or
         * in the last section) lines of this one, already cached */
        const char *next = k_wat(f, w + e1 * entry_floats);
        int64_t n_next = (e1 + f->ksec < b->ntab ? f->ksec : b->ntab - e1) * entry_floats * es;
        if (e1 == b->ntab && after != NULL) { /* the first section of this thread's next task */
            next = after;
            n_next = (f->ksec < b->ntab ? f->ksec : b->ntab) * entry_floats * es;
        }
        int64_t stretch = (e1 - e0) * NN_BCONV_SEC_PF;
        int64_t j = 0;
        for (int64_t tile = t0; tile < t1; tile++) {
            int64_t n = tile / tpi, p0 = (tile % tpi) * NN_BCONV_R;
            if (osp - p0 < NN_BCONV_R)
                continue;
            int64_t xoff[NN_BCONV_R];
            tile_xoff(f, p0, NN_BCONV_R, xoff);
            const void *pf = j * stretch < n_next ? (const void *)(next + j * stretch) : (const void *)k_wat(f, ws);
            int64_t o = n * yimg + yo + p0 * 16;
            bool last = e1 == b->ntab;
            k_sec(r, n * ximg, xoff, e0, e1, ws, acc + j * tile_floats, bias, last && r->res ? r->res + o : NULL,
                  last ? r->y + o : NULL, pf);
            j++;
        }
    }
    for (int64_t tile = t0; tile < t1; tile++) {
        int64_t n = tile / tpi, p0 = (tile % tpi) * NN_BCONV_R;
        if (osp - p0 >= NN_BCONV_R)
            continue;
        int rr = (int)(osp - p0);
        int64_t xoff[NN_BCONV_R];
        tile_xoff(f, p0, rr, xoff);
        int64_t o = n * yimg + yo + p0 * 16;
        k_conv(r, n * ximg, xoff, rr, w, NN_BCONV_V, bias, r->res ? r->res + o : NULL, r->y + o);
    }
}

/* One image's channel block of a strided 1x1's input gathered into the
 * compact map (struct fast, sub). */
static void bsub_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bconv_run *r = arg;
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    int64_t w = g->in[2], sy = g->s[1], sx = g->s[2];
    const float *src = r->x + t * g->in[1] * w * 16;
    float *dst = r->pad + t * f->hx * f->wx * 16;
    for (int64_t oy = 0; oy < f->hx; oy++)
        for (int64_t ox = 0; ox < f->wx; ox++)
            memcpy(dst + (oy * f->wx + ox) * 16, src + (oy * sy * w + ox * sx) * 16, 16 * sizeof(float));
}

static void bconv_tiles(const struct bconv_run *r, int tid, int64_t og, int64_t t0, int64_t t1, const char *after);
static void bconv_px(const struct bconv_run *r, int64_t og, int64_t n, int64_t p0, int64_t p1);
static void bconv_px_part(const struct bconv_run *r, int64_t og, int half, int64_t n, int64_t p0, int64_t p1);
/* A thread's band in blocks of this many tiles, every group over one block
 * before the next, so the block's pixels (at most 192 x the input
 * channels) are read from L1/L2 by every group, not from memory once a
 * group: resnet50 b8's layer1/2 1x1 layers 47.5 -> 45.6 ms */
#define SPATIAL_TB 32

/* Where thread t's run of (group, tile) pairs starts (struct fast, lin):
 * pair og * tiles + tile, the threads' shares even in blocks x tiles (a
 * last group of fewer than 4 blocks costs less a tile). */
static int64_t lin_bound(const struct fast *f, int64_t t)
{
    int64_t blocks = blocks16(f->geo.m), target = blocks * f->tiles * t / f->threads, og = 0;
    for (; og * 4 < blocks; og++) {
        int64_t vg = blocks - og * 4 < 4 ? blocks - og * 4 : 4;
        if (target < vg * f->tiles)
            return og * f->tiles + (target + vg / 2) / vg;
        target -= vg * f->tiles;
    }
    return og * f->tiles;
}

static void bconv_task(void *arg, int64_t t, int tid)
{
    const struct bconv_run *r = arg;
    const struct fast *f = r->f;
    if (f->spatial) {
        int64_t groups = (f->geo.m + 63) / 64, w = f->threads, t0 = f->tiles * t / w, t1 = f->tiles * (t + 1) / w;
        for (int64_t b0 = t0; b0 < t1; b0 += SPATIAL_TB)
            for (int64_t og = 0; og < groups; og++)
                bconv_tiles(r, tid, og, b0, b0 + SPATIAL_TB < t1 ? b0 + SPATIAL_TB : t1, NULL);
        return;
    }
    const struct nn_geom *g = &f->geo;
    int64_t groups = (g->m + 63) / 64, gw = 64 * wch(f) * g->k[1] * g->k[2];
    if (f->lin) { /* pairs [u0, u1) of groups x tiles, group by group */
        int64_t u0 = lin_bound(f, t), u1 = lin_bound(f, t + 1);
        for (int64_t og = u0 / f->tiles; og * f->tiles < u1; og++) {
            int64_t a = u0 - og * f->tiles, b = u1 - og * f->tiles;
            bool more = (og + 1) * f->tiles < u1;
            bconv_tiles(r, tid, og, a > 0 ? a : 0, b < f->tiles ? b : f->tiles, more ? k_wat(f, (og + 1) * gw) : NULL);
        }
        return;
    }
    int64_t og = t / f->chunks, ch = t % f->chunks;
    int64_t per = (f->tiles + f->chunks - 1) / f->chunks;
    int64_t t0 = ch * per, t1 = t0 + per < f->tiles ? t0 + per : f->tiles;
    /* run_bconv runs sectioned tasks fixed: task t + threads is likely this thread's next */
    int64_t nt = t + f->threads;
    bconv_tiles(r, tid, og, t0, t1, nt < groups * f->chunks ? k_wat(f, nt / f->chunks * gw) : NULL);
}

static void bconv_tiles(const struct bconv_run *r, int tid, int64_t og, int64_t t0, int64_t t1, const char *after)
{
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    int64_t osp = g->out[1] * g->out[2], tpi = (osp + NN_BCONV_R - 1) / NN_BCONV_R;
    if (f->ksec > 0 && blocks16(g->m - og * 64) >= NN_BCONV_V) {
        bconv_sec_tiles(r, tid, og, t0, t1, after);
        return;
    }
    for (int64_t n = t0 / tpi; n * tpi < t1; n++) {
        int64_t a = t0 > n * tpi ? t0 - n * tpi : 0, b = t1 - n * tpi < tpi ? t1 - n * tpi : tpi;
        bconv_px(r, og, n, a * NN_BCONV_R, b * NN_BCONV_R < osp ? b * NN_BCONV_R : osp);
    }
}

/* Group og's output pixels [p0, p1) of image n, R at a time (wider where
 * bconv_tiles would take them wide). */
static void bconv_px(const struct bconv_run *r, int64_t og, int64_t n, int64_t p0, int64_t p1)
{
    if (r->f->half_last && (og + 1) * 64 >= r->f->geo.m) {
        bconv_px_part(r, og, 0, n, p0, p1);
        bconv_px_part(r, og, 1, n, p0, p1);
    } else {
        bconv_px_part(r, og, -1, n, p0, p1);
    }
}

/* bconv_px for the whole group (half -1) or a half of it (half_last). */
static void bconv_px_part(const struct bconv_run *r, int64_t og, int half, int64_t n, int64_t p0, int64_t p1)
{
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    int64_t ow = g->out[2], osp = g->out[1] * ow;
    int64_t ximg = (f->in_blocked ? round_up(g->c, 16) : g->c) * f->hx * f->wx;
    int64_t yimg = (f->out_blocked ? round_up(g->m, 16) : g->m) * osp;
    int64_t j0 = og * 64 + (half > 0 ? 32 : 0);
    int vg = half >= 0 ? 2 : (int)(blocks16(g->m - og * 64) < NN_BCONV_V ? blocks16(g->m - og * 64) : NN_BCONV_V);
    int64_t w = j0 * wch(f) * g->k[1] * g->k[2];
    const float *bias = r->bias ? r->bias + j0 : NULL;
    int64_t yo = f->out_blocked ? j0 / 16 * f->bc.y_cb : j0 * f->bc.y_c;
    /* groups of 32 or 16 channels: 2 or 4 tiles at a time where they can */
    int span = f->wide && vg <= 2 ? NN_BCONV_WIDE / NN_BCONV_R / vg : 1;
    /* whole groups: every whole tile in one call */
    bool run = f->wide && vg == NN_BCONV_V && f->out_blocked && !f->i8 && !f->bf16;
    while (p0 < p1) {
        int64_t o = n * yimg + yo + p0 * f->bc.y_px;
        if (run && p1 - p0 >= NN_BCONV_R) {
            int npx = (int)((p1 - p0) / NN_BCONV_R * NN_BCONV_R);
            k_wide(r, n * ximg + p0 * 16, npx, w, vg, bias, r->res ? r->res + o : NULL, r->y + o);
            p0 += npx;
            continue;
        }
        if (span > 1 && p0 + span * NN_BCONV_R <= p1) {
            k_wide(r, n * ximg + p0 * 16, span * NN_BCONV_R, w, vg, bias, r->res ? r->res + o : NULL, r->y + o);
            p0 += span * NN_BCONV_R;
            continue;
        }
        int rr = (int)(p1 - p0 < NN_BCONV_R ? p1 - p0 : NN_BCONV_R);
        int64_t xoff[NN_BCONV_R];
        tile_xoff(f, p0, rr, xoff);
        k_conv(r, n * ximg, xoff, rr, w, vg, bias, r->res ? r->res + o : NULL, r->y + o);
        p0 += rr;
    }
}

/* The pointers a convolution's run takes: the node's values (nn_fast_run)
 * or buffers of the plan's sizes (tune). */
struct conv_io {
    const float *x, *bias, *res;
    float *y;
    uint8_t *scratch;
};

static struct conv_io node_io(const struct nn_ctx *c, const float *res, float *y)
{
    const struct fast *f = c->node->fast;
    struct conv_io io = {.x = c->in[0]->data, .res = res, .y = y, .scratch = c->scratch};
    io.bias = f->bias ? f->bias : (c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL);
    return io;
}

/* n floats from src to bf16 (hk) or int8 (qk, quantized with inv and zp)
 * at dst, in parts equal shares (task t the t-th). */
struct cvt_run {
    const struct nn_hkern *hk;
    const struct nn_qkern *qk;
    const float *src;
    void *dst;
    float inv, zp;
    int64_t n, parts;
};
static void cvt_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct cvt_run *c = arg;
    int64_t a = c->n * t / c->parts / 32 * 32, b = t + 1 == c->parts ? c->n : c->n * (t + 1) / c->parts / 32 * 32;
    if (b > a && c->qk != NULL)
        c->qk->quant((uint8_t *)c->dst + a, c->src + a, b - a, c->inv, c->zp);
    else if (b > a)
        c->hk->to_bf16((uint16_t *)c->dst + a, c->src + a, b - a);
}

/* A blocked convolution's run, its padded or gathered input made (and
 * copied to bf16 or quantized for the bf16 and int8 kernels). */
static struct bconv_run bconv_begin(struct coffer_nn_model *m, const struct fast *f, const struct conv_io *io)
{
    const struct nn_geom *g = &f->geo;
    struct bconv_run r = {.isa = m->isa, .f = f, .pad = (float *)io->scratch};
    r.bias = io->bias;
    r.x = io->x;
    if (f->bpad) { /* every image's channel blocks (or plain channels) */
        /* Few planes (a model's 3-channel first layer: 3 tasks on 2
         * threads, the worker's plane read from the caller's cache): each
         * thread pads its band of rows of every plane (task t on thread
         * t % threads), the rows its share of the output mostly reads.
         * resnet50 b1 (instrumented pool, 2 threads): the caller waited
         * 100 us a run for conv1's worker, which read two of its three
         * planes from the caller's cache; now 4-5 us. */
        int64_t planes = g->n * (f->in_blocked ? blocks16(g->c) : g->c);
        r.bands = planes < 4 * f->threads && planes * f->threads <= NN_POOL_FIXED_MAX ? f->threads : 1;
        (r.bands > 1 ? nn_pool_run_fixed : nn_pool_run)(m->pool, f->threads, planes * r.bands, bpad_task, &r);
        r.x = r.pad;
    } else if (f->sub) {
        nn_pool_run(m->pool, f->threads, g->n * blocks16(g->c), bsub_task, &r);
        r.x = r.pad;
    }
    if (f->bf16) { /* the map the kernels read, in bf16 */
        uint16_t *xh = (uint16_t *)(io->scratch + f->xh_off);
        struct cvt_run cr = {.hk = m->hk, .src = r.x, .dst = xh,
                             .n = g->n * round_up(g->c, 16) * f->hx * f->wx, .parts = f->threads};
        nn_pool_run_fixed(m->pool, f->threads, f->threads, cvt_task, &cr);
        int64_t cl = g->c % 16, sp = f->hx * f->wx;
        for (int64_t n = 0; cl > 0 && n < g->n; n++) { /* the last block's lanes past the channels: zero */
            uint16_t *lb = xh + ((n + 1) * blocks16(g->c) - 1) * sp * 16;
            for (int64_t p = 0; p < sp; p++)
                memset(lb + p * 16 + cl, 0, (size_t)(16 - cl) * sizeof(uint16_t));
        }
        r.xh = xh;
        r.hk = m->hk;
    }
    if (f->i8) { /* quantized (the last block's lanes past the channels meet zero weights) */
        uint8_t *xq = io->scratch + f->xh_off;
        struct cvt_run cr = {.qk = m->qk, .src = r.x, .dst = xq, .inv = f->qinv, .zp = f->qzp,
                             .n = g->n * round_up(g->c, 16) * f->hx * f->wx, .parts = f->threads};
        nn_pool_run_fixed(m->pool, f->threads, f->threads, cvt_task, &cr);
        r.xq = xq;
        r.qk = m->qk;
    }
    r.y = io->y;
    r.res = io->res;
    r.scratch = io->scratch != NULL ? io->scratch + f->shared : NULL; /* a plan may need none */
    return r;
}

/* Thread t's images, each padded or gathered into the thread's buffer,
 * then convolved block of tiles by block, every group over a block before
 * the next (as spatial's bands). */
static void bimg_task(void *arg, int64_t t, int tid)
{
    const struct bconv_run *r0 = arg;
    const struct fast *f = r0->f;
    const struct nn_geom *g = &f->geo;
    int64_t groups = (g->m + 63) / 64, osp = g->out[1] * g->out[2];
    int64_t tpi = (osp + NN_BCONV_R - 1) / NN_BCONV_R;
    int64_t planes = f->in_blocked ? blocks16(g->c) : g->c;
    int64_t xin = planes * g->in[1] * g->in[2] * f->px;
    int64_t yimg = (f->out_blocked ? round_up(g->m, 16) : g->m) * osp;
    struct bconv_run r = *r0;
    r.pad = (float *)(r0->scratch + (size_t)tid * f->per_thread);
    r.bands = 1;
    for (int64_t i = g->n * t / f->threads; i < g->n * (t + 1) / f->threads; i++) {
        r.x = r0->x + i * xin;
        for (int64_t p = 0; p < planes; p++)
            (f->bpad ? bpad_task : bsub_task)(&r, p, tid);
        struct bconv_run ri = r;
        ri.x = r.pad;
        ri.y = r0->y + i * yimg;
        ri.res = r0->res ? r0->res + i * yimg : NULL;
        for (int64_t b0 = 0; b0 < tpi; b0 += SPATIAL_TB)
            for (int64_t og = 0; og < groups; og++)
                bconv_tiles(&ri, tid, og, b0, b0 + SPATIAL_TB < tpi ? b0 + SPATIAL_TB : tpi, NULL);
    }
}

static void run_bconv(struct coffer_nn_model *m, const struct fast *f, const struct conv_io *io)
{
    int64_t groups = (f->geo.m + 63) / 64;
    if (f->pimg) {
        struct bconv_run r = {.isa = m->isa, .f = f, .x = io->x, .res = io->res, .bias = io->bias, .y = io->y,
                              .scratch = io->scratch};
        nn_pool_run_fixed(m->pool, f->threads, f->threads, bimg_task, &r);
        return;
    }
    struct bconv_run r = bconv_begin(m, f, io);
    if (f->spatial || f->lin)
        nn_pool_run_fixed(m->pool, f->threads, f->threads, bconv_task, &r);
    else
        (f->ksec > 0 ? nn_pool_run_fixed : nn_pool_run)(m->pool, f->threads, groups * f->chunks, bconv_task, &r);
}

/* The matrix of U that point xi multiplies by: its own, but for the
 * stride-2 tiles, whose points 3 and 4 a side share one (nn_wino_gs2). */
static int64_t wino_uix(const struct fast *f, int xi)
{
    if (f->wstr != 2)
        return xi;
    int a = xi / 5 < 3 ? xi / 5 : 3, b = xi % 5 < 3 ? xi % 5 : 3;
    return a * 4 + b;
}

/* Blocked Winograd, in three phases over a block's tiles [tile0, tile0 +
 * nt) with V ([36][cb][wtb][16]) and the products pm ([36][ob][wtb][16]):
 * the input transform of tiles [i0, i1) of the block, ... */
static void wino_in_cb(const struct bconv_run *r, float *v, int64_t tile0, int64_t i0, int64_t i1, int64_t cb0,
                       int64_t cb1)
{
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    int64_t cbs = blocks16(g->c), vs = f->wvs, tpi = f->oth * f->otw;
    if (cb1 > cbs)
        cb1 = cbs;
    int64_t h = g->in[1], w = g->in[2], plane = h * w * 16;
    float patch[49 * 16] __attribute__((aligned(64)));
    int wm = f->wm, wa = f->wa;
    nn_bwin_in_fn tr = f->wstr == 2 ? r->isa->bwin_in_s2
                       : wm == 2     ? r->isa->bwin_in2
                       : wm == 5     ? r->isa->bwin_in5
                                     : r->isa->bwin_in;
    for (int64_t i = i0; i < i1; i++) {
        int64_t tile = tile0 + i, n = tile / tpi, ty = (tile % tpi) / f->otw, tx = (tile % tpi) % f->otw;
        /* the tile's wa x wa patch, read in place where it lies inside
         * the map, else through a zero-padded copy of just the patch (a
         * padded copy of the whole map cost a pass over it every run) */
        int64_t y0 = ty * wm * f->wstr - g->pb[1], x0 = tx * wm * f->wstr - g->pb[2];
        const float *xp = r->x + n * cbs * plane;
        if (y0 >= 0 && x0 >= 0 && y0 + wa <= h && x0 + wa <= w) {
            for (int64_t cb = cb0; cb < cb1; cb++)
                tr(xp + cb * plane + (y0 * w + x0) * 16, w * 16, v + (cb * f->wtb + i) * 16, vs);
            continue;
        }
        for (int64_t cb = cb0; cb < cb1; cb++) {
            for (int a = 0; a < wa; a++)
                for (int b = 0; b < wa; b++) {
                    int64_t iy = y0 + a, ix = x0 + b;
                    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                        memcpy(patch + (a * wa + b) * 16, xp + cb * plane + (iy * w + ix) * 16, 16 * sizeof(float));
                    else
                        memset(patch + (a * wa + b) * 16, 0, 16 * sizeof(float));
                }
            tr(patch, wa * 16, v + (cb * f->wtb + i) * 16, vs);
        }
    }
}

static void wino_in(const struct bconv_run *r, float *v, int64_t tile0, int64_t i0, int64_t i1)
{
    wino_in_cb(r, v, tile0, i0, i1, 0, blocks16(r->f->geo.c));
}

/* ... the products of points [xi0, xi1) for output groups [og0, og1), each
 * a 1x1 blocked convolution over the block's nt tiles, ... */
static void wino_prod(const struct bconv_run *r, const float *v, float *pm, int64_t nt, int xi0, int xi1,
                      int64_t og0, int64_t og1)
{
    const struct fast *f = r->f;
    int64_t cc = f->geo.c, mm = f->geo.m, mmp = round_up(mm, 16);
    int64_t vs = f->wvs, ps = f->wps;
    for (int xi = xi0; xi < xi1; xi++)
        for (int64_t og = og0; og < og1; og++) {
            int vg = (int)(blocks16(mm - og * 64) < NN_BCONV_V ? blocks16(mm - og * 64) : NN_BCONV_V);
            const float *w = f->bw + wino_uix(f, xi) * cc * mmp + og * 64 * cc;
            for (int64_t i = 0; i < nt; i += NN_BCONV_R) {
                int rr = (int)(nt - i < NN_BCONV_R ? nt - i : NN_BCONV_R);
                int64_t xoff[NN_BCONV_R];
                for (int q = 0; q < rr; q++)
                    xoff[q] = q * 16;
                r->isa->bconv(&f->bc, v + xi * vs + i * 16, xoff, rr, w, vg, NULL, NULL,
                              pm + xi * ps + (og * 4 * f->wtb + i) * 16);
            }
        }
}

/* ... and the output transform with the epilogue of tiles [i0, i1) of the
 * block, output groups [og0, og1), into the blocked output. */
static void wino_out(const struct bconv_run *r, const float *pm, int64_t tile0, int64_t i0, int64_t i1, int64_t og0,
                     int64_t og1)
{
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    int64_t mmp = round_up(g->m, 16), ps = f->wps, tpi = f->oth * f->otw;
    int64_t oh = g->out[1], ow = g->out[2], osz = mmp * oh * ow, wm = f->wm;
    nn_bwin_out_fn tr = f->wstr == 2 ? r->isa->bwin_out_s2
                        : wm == 2     ? r->isa->bwin_out2
                        : wm == 5     ? r->isa->bwin_out5
                                      : r->isa->bwin_out;
    for (int64_t i = i0; i < i1; i++) {
        int64_t tile = tile0 + i, n = tile / tpi, ty = (tile % tpi) / f->otw, tx = (tile % tpi) % f->otw;
        int rows = (int)(oh - ty * wm < wm ? oh - ty * wm : wm), cols = (int)(ow - tx * wm < wm ? ow - tx * wm : wm);
        for (int64_t ob = og0 * 4; ob < og1 * 4 && ob < mmp / 16; ob++) {
            int64_t o = n * osz + ob * oh * ow * 16 + (ty * wm * ow + tx * wm) * 16;
            tr(pm + (ob * f->wtb + i) * 16, ps, r->bias ? r->bias + ob * 16 : NULL, r->res ? r->res + o : NULL,
               r->y + o, ow * 16, rows, cols, f->bd.act, f->bd.lo, f->bd.hi);
        }
    }
}

/* Block k's first tile (k = wblocks: the end). The blocks are as even as
 * whole kernel calls (NN_BCONV_R tiles) allow, none over wtb: blocks of
 * wtb and a short last one (196 tiles as 54, 54, 54 and 34) left one of
 * 2 threads 108 tiles and the other 88 (48, 48, 48, 52: 96 and 100). */
static int64_t wblock0(const struct fast *f, int64_t k)
{
    if (k >= f->wblocks)
        return f->wt;
    int64_t even = k * f->wt / f->wblocks / NN_BCONV_R * NN_BCONV_R, fit = f->wt - (f->wblocks - k) * f->wtb;
    return even > fit ? even : fit;
}

/* Blocked Winograd: task = (block of tiles, share of the output groups),
 * V and the products in the thread's scratch. */
static void bwino_task(void *arg, int64_t t, int tid)
{
    const struct bconv_run *r = arg;
    const struct fast *f = r->f;
    int64_t blk = t / f->wsplit, part = t % f->wsplit;
    int64_t tile0 = wblock0(f, blk), nt = wblock0(f, blk + 1) - tile0;
    int64_t groups = (f->geo.m + 63) / 64;
    int64_t per = (groups + f->wsplit - 1) / f->wsplit, og0 = part * per, og1 = og0 + per < groups ? og0 + per : groups;
    if (og0 >= og1)
        return;
    float *v = (float *)(r->scratch + (size_t)tid * f->per_thread);
    float *pm = v + f->wp * f->wvs;
    wino_in(r, v, tile0, 0, nt);
    wino_prod(r, v, pm, nt, 0, f->wp, og0, og1);
    wino_out(r, pm, tile0, 0, nt, og0, og1);
}

/* Blocked Winograd over all tiles at once (f->wall: transformed weights
 * too large to read again for every block of tiles), each phase a pool
 * run, V and the products in shared scratch: tasks of WALL_TILES tiles
 * for the transforms, one per point and output group for the products,
 * whose weights (at most 256 x 64 floats) are then read once a run. */
#define WALL_TILES 8
static float *wall_v(const struct bconv_run *r)
{
    return (float *)r->scratch;
}

static float *wall_pm(const struct bconv_run *r)
{
    return wall_v(r) + r->f->wp * r->f->wvs;
}

static void wall_in_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bconv_run *r = arg;
    int64_t i1 = (t + 1) * WALL_TILES < r->f->wt ? (t + 1) * WALL_TILES : r->f->wt;
    wino_in(r, wall_v(r), 0, t * WALL_TILES, i1);
}

/* wall_prod_task's point and group (task t) with each whole tile through
 * the section kernel as one section, prefetching a stretch of the
 * thread's next task's U (t + threads, run fixed) a tile, as bconv_sec_tiles
 * does for the direct layers: at batch 1 (resnet50's 256-channel 14x14
 * layers, F(2x2): 49 tiles, 8 whole tile calls a task) each task's 64 KiB
 * of U came from memory as its first tile asked for it. */
static void wall_prod_sec(const struct bconv_run *r, int64_t t)
{
    const struct fast *f = r->f;
    int64_t groups = f->geo.m / 64, og = t % groups, xi = t / groups;
    int64_t cc = f->geo.c, mmp = round_up(f->geo.m, 16), nt = f->wt;
    const float *w = f->bw + wino_uix(f, (int)xi) * cc * mmp + og * 64 * cc;
    int64_t nx = t + f->threads, n_next = 64 * cc * (int64_t)sizeof(float);
    const char *next = nx < f->wp * groups ? (const char *)(f->bw + wino_uix(f, (int)(nx / groups)) * cc * mmp +
                                                            nx % groups * 64 * cc)
                                            : NULL;
    int64_t stretch = f->bc.ntab * NN_BCONV_SEC_PF;
    const float *v = wall_v(r) + xi * f->wvs;
    float *pm = wall_pm(r) + xi * f->wps + og * 4 * f->wtb * 16;
    float acc[NN_BCONV_R * NN_BCONV_V * 16] __attribute__((aligned(64)));
    int64_t xoff[NN_BCONV_R];
    for (int q = 0; q < NN_BCONV_R; q++)
        xoff[q] = q * 16;
    int64_t i = 0;
    for (int64_t j = 0; i + NN_BCONV_R <= nt; i += NN_BCONV_R, j++) {
        memset(acc, 0, sizeof(acc));
        const void *pf = next != NULL && j * stretch < n_next ? (const void *)(next + j * stretch) : (const void *)w;
        r->isa->bconv_sec(&f->bc, v + i * 16, xoff, 0, f->bc.ntab, w, acc, NULL, NULL, pm + i * 16, pf);
    }
    if (i < nt)
        r->isa->bconv(&f->bc, v + i * 16, xoff, (int)(nt - i), w, NN_BCONV_V, NULL, NULL, pm + i * 16);
}

static void wall_prod_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bconv_run *r = arg;
    int64_t groups = (r->f->geo.m + 63) / 64, og = t % groups;
    if (r->f->wsec) {
        wall_prod_sec(r, t);
        return;
    }
    wino_prod(r, wall_v(r), wall_pm(r), r->f->wt, (int)(t / groups), (int)(t / groups) + 1, og, og + 1);
}

/* The products over all tiles for output group t with U made as it is
 * used (struct fast, wfly): per chunk of WFLY_CB input channel blocks and
 * per point, the point's U for the chunk ([cb][ic][64], 16 KiB, in L1)
 * from the chunk's weights (in L2), then the point's whole-tile calls
 * over the chunk's entries, the sums carried between chunks, the last
 * chunk storing the products. (All 36 points of a chunk made at once, as
 * G g G^T per weight, stored 36 lines a weight vector into 576 KiB: every
 * store missed L1, and making U took twice as long as the products.) */
static void wfly_task(void *arg, int64_t t, int tid)
{
    const struct bconv_run *r = arg;
    const struct fast *f = r->f;
    const struct nn_bconv *b = &f->bc;
    int64_t cc = f->geo.c, cbs = cc / 16, calls = f->wtb / NN_BCONV_R;
    int64_t vs = f->wvs, ps = f->wps;
    float *uc = (float *)(r->thr + (size_t)tid * f->per_thread);
    float *acc = uc + WFLY_CB * 16 * 64;
    const float *v = wall_v(r);
    float *pm = wall_pm(r);
    const float *w = f->bw + t * 64 * cc * 9;
    /* run fixed: task t + threads is likely this thread's next */
    const float *after = t + f->threads < f->geo.m / 64 ? w + f->threads * 64 * cc * 9 : NULL;
    memset(acc, 0, (size_t)(36 * calls * NN_BCONV_R * 64) * sizeof(float));
    for (int64_t c0 = 0; c0 < cbs; c0 += WFLY_CB) {
        int64_t n = cbs - c0 < WFLY_CB ? cbs - c0 : WFLY_CB;
        bool last = c0 + n == cbs;
        /* the weights of the next chunk (or the next task's first) fetched
         * while this chunk's products run, NN_BCONV_SEC_PF bytes a step */
        const char *next = (const char *)(last ? after : w + (c0 + n) * 16 * 9 * 64);
        int64_t n_next = next == NULL ? 0 : WFLY_CB * 16 * 9 * 64 * (int64_t)sizeof(float), k = 0;
        for (int xi = 0; xi < 36; xi++) {
            const float *ux = uc;
            float coef[9];
            for (int q = 0; q < 9; q++)
                coef[q] = (float)(nn_wino_g[xi / 6][q / 3] * nn_wino_g[xi % 6][q % 3]);
            r->isa->bwin_u(w + c0 * 16 * 9 * 64, n * 16, coef, uc);
            for (int64_t j = 0; j < calls; j++, k++) {
                int64_t xoff[NN_BCONV_R];
                for (int q = 0; q < NN_BCONV_R; q++)
                    xoff[q] = q * 16;
                const void *pf = k * n * NN_BCONV_SEC_PF < n_next ? (const void *)(next + k * n * NN_BCONV_SEC_PF)
                                                                  : (const void *)ux;
                float *y = last ? pm + xi * ps + (t * 4 * f->wtb + j * NN_BCONV_R) * 16 : NULL;
                r->isa->bconv_sec(b, v + xi * vs + j * NN_BCONV_R * 16, xoff, c0, c0 + n, ux,
                                  acc + (xi * calls + j) * NN_BCONV_R * 64, NULL, NULL, y, pf);
            }
        }
    }
}

static void wall_out_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bconv_run *r = arg;
    int64_t i1 = (t + 1) * WALL_TILES < r->f->wt ? (t + 1) * WALL_TILES : r->f->wt;
    wino_out(r, wall_pm(r), 0, t * WALL_TILES, i1, 0, (r->f->geo.m + 63) / 64);
}

static void wall_in_grp_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bconv_run *r = arg;
    wino_in_cb(r, wall_v(r), 0, 0, r->f->wt, t * 4, t * 4 + 4);
}

static void wall_out_grp_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bconv_run *r = arg;
    wino_out(r, wall_pm(r), 0, 0, r->f->wt, t, t + 1);
}

/* A blocked depthwise convolution: one task per image and channel block,
 * every row, read straight from the input (the kernel clips the window at
 * the edges). */
struct bdw_run {
    const struct nn_isa *isa;
    const struct fast *f;
    const float *x, *res, *bias;
    float *y;
};

/* Output rows [oy0, oy1) of planes [p0, p1) (image x channel blocks + block). */
static void bdw_planes(const struct bdw_run *r, int64_t p0, int64_t p1, int64_t oy0, int64_t oy1)
{
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    int64_t cbs = blocks16(g->c), isz = g->in[1] * g->in[2] * 16, osz = g->out[1] * g->out[2] * 16;
    for (int64_t p = p0; p < p1; p++) {
        int64_t cb = p % cbs;
        const float *res = r->res ? r->res + p * osz : NULL;
        const float *w = f->bw + cb * f->bd.d.kh * f->bd.d.kw * 16;
        r->isa->bdw(&f->bd, r->x + p * isz, w, r->bias ? r->bias + cb * 16 : NULL, res, r->y + p * osz, oy0, oy1);
    }
}

static void bdw_task(void *arg, int64_t t, int tid)
{
    const struct bdw_run *r = arg;
    const struct fast *f = r->f;
    const struct nn_geom *g = &f->geo;
    (void)tid;
    if (f->spatial) /* every plane's band t of rows */
        bdw_planes(r, 0, g->n * blocks16(g->c), g->out[1] * t / f->threads, g->out[1] * (t + 1) / f->threads);
    else
        bdw_planes(r, t, t + 1, 0, g->out[1]);
}

/* ------------------------ a convolution and the depthwise one reading it */

/* A blocked convolution (A) and the depthwise convolution (B) that alone
 * reads its output, run as one (plan_cdw): thread t takes B's output rows
 * [oy0, oy1) (bdw_task's band) and A's output rows [r0, r1), from the
 * first that its first B row reads to the first that the next thread's
 * does; it makes cdw_rows of A's rows at a time (every group, in blocks
 * of tiles as bconv_task's bands) and then the B rows they complete, so
 * that B reads them from L2, not memory. The B rows that also read the
 * next thread's A rows are left to the caller, after the run. */
struct cdw_run {
    struct bconv_run a;
    struct bdw_run b;
};

/* The rows of A's output that B's output row oy reads: [lo, hi). */
static void cdw_need(const struct fast *fb, int64_t oy, int64_t *lo, int64_t *hi)
{
    const struct nn_bdw *d = &fb->bd;
    int64_t a = oy * d->d.sh - d->pt, b = a + (int64_t)(d->d.kh - 1) * d->d.dh + 1;
    *lo = a < 0 ? 0 : a > d->ih ? d->ih : a;
    *hi = b < 0 ? 0 : b > d->ih ? d->ih : b;
}

/* Thread t's rows of B's output [oy0, oy1) and of A's [r0, r1). */
static void cdw_band(const struct fast *fb, int threads, int64_t t, int64_t band[4])
{
    int64_t oh = fb->geo.out[1], hi;
    band[0] = oh * t / threads;
    band[1] = oh * (t + 1) / threads;
    band[2] = 0;
    band[3] = fb->bd.ih;
    if (t > 0)
        cdw_need(fb, band[0], &band[2], &hi);
    if (t + 1 < threads)
        cdw_need(fb, band[1], &band[3], &hi);
}

/* The first B row from oy on (up to oy1) that reads A rows at or past y. */
static int64_t cdw_ready(const struct fast *fb, int64_t oy, int64_t oy1, int64_t y)
{
    int64_t lo, hi;
    for (; oy < oy1; oy++) {
        cdw_need(fb, oy, &lo, &hi);
        if (hi > y)
            break;
    }
    return oy;
}

static void cdw_task(void *arg, int64_t t, int tid)
{
    const struct cdw_run *r = arg;
    const struct fast *fa = r->a.f, *fb = r->b.f;
    int64_t band[4], w = fa->geo.out[2], groups = (fa->geo.m + 63) / 64, cbs = blocks16(fb->geo.c);
    const int64_t blk = SPATIAL_TB * NN_BCONV_R;
    (void)tid;
    cdw_band(fb, fa->threads, t, band);
    for (int64_t n = 0; n < fa->geo.n; n++) {
        int64_t oy = band[0];
        for (int64_t y = band[2];;) {
            int64_t e = cdw_ready(fb, oy, band[1], y);
            if (e > oy)
                bdw_planes(&r->b, n * cbs, (n + 1) * cbs, oy, e);
            oy = e;
            if (y >= band[3])
                break;
            int64_t y1 = y + fa->cdw_rows < band[3] ? y + fa->cdw_rows : band[3];
            for (int64_t p = y * w; p < y1 * w; p += blk)
                for (int64_t og = 0; og < groups; og++)
                    bconv_px(&r->a, og, n, p, p + blk < y1 * w ? p + blk : y1 * w);
            y = y1;
        }
    }
}

/* The same pair group by group (plan_cdw, cdw_grp): task og makes group
 * og's output planes of every image, then B's planes from them (with
 * half_last, the last two tasks a half of the last group each). */
static void gdw_task(void *arg, int64_t t, int tid)
{
    const struct cdw_run *r = arg;
    const struct fast *fa = r->a.f, *fb = r->b.f;
    int64_t osp = fa->geo.out[1] * fa->geo.out[2], cbs = blocks16(fb->geo.c), last = (fa->geo.m + 63) / 64 - 1;
    int64_t og = t < last ? t : last;
    int half = fa->half_last && t >= last ? (int)(t - last) : -1;
    int64_t cb0 = og * NN_BCONV_V + (half > 0 ? 2 : 0);
    int64_t cb1 = half >= 0 ? cb0 + 2 : cb0 + NN_BCONV_V < cbs ? cb0 + NN_BCONV_V : cbs;
    (void)tid;
    for (int64_t n = 0; n < fa->geo.n; n++) {
        bconv_px_part(&r->a, og, half, n, 0, osp);
        bdw_planes(&r->b, n * cbs + cb0, n * cbs + cb1, 0, fb->geo.out[1]);
    }
}

/* The pair by bands of rows (cdw_task) or by groups (gdw_task). */
static void run_cdw(struct coffer_nn_model *m, struct nn_ctx *c, const float *res, float *y)
{
    const struct fast *fa = c->node->fast;
    const struct nn_node *nb = &m->g.nodes[c->node->with_next];
    const struct fast *fb = nb->fast;
    struct nn_ctx cb;
    nn_ctx_init(m, (size_t)c->node->with_next, &cb, true);
    struct conv_io io = node_io(c, res, y);
    struct cdw_run r = {.a = bconv_begin(m, fa, &io),
                        .b = {.isa = m->isa, .f = fb, .x = y, .y = cb.out[0]->data,
                              .res = nb->f_res >= 0 ? m->g.vals[nb->f_res].data : NULL}};
    r.b.bias = fb->bias ? fb->bias : (cb.n_in > 2 && cb.in[2] ? cb.in[2]->data : NULL);
    if (fa->cdw_grp) {
        nn_pool_run_fixed(m->pool, fa->threads, (fa->geo.m + 63) / 64 + fa->half_last, gdw_task, &r);
        return;
    }
    nn_pool_run_fixed(m->pool, fa->threads, fa->threads, cdw_task, &r);
    for (int64_t t = 0; t + 1 < fa->threads; t++) {
        int64_t band[4];
        cdw_band(fb, fa->threads, t, band);
        int64_t oy = cdw_ready(fb, band[0], band[1], band[3]);
        if (oy < band[1])
            bdw_planes(&r.b, 0, fb->geo.n * blocks16(fb->geo.c), oy, band[1]);
    }
}

/* A MaxPool / AveragePool on a blocked input: one task per image and
 * channel block. */
struct bpool_run {
    const struct nn_isa *isa;
    const struct nn_geom *g;
    const float *x;
    float *y;
    bool is_max;
    int bands; /* > 0: one task a thread, a band of rows of every plane (as the convolutions' bands) */
};

static void bpool_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bpool_run *r = arg;
    const struct nn_geom *g = r->g;
    int64_t ih = g->in[1], iw = g->in[2], oh = g->out[1], ow = g->out[2];
    int64_t kh = g->k[1], sh = g->s[1], dh = g->d[1], pt = g->pb[1];
    struct nn_bpool p = {.iw = iw, .ow = ow, .kw = g->k[2], .sw = g->s[2], .dw = g->d[2], .pl = g->pb[2],
                         .kh_all = kh * g->k[2], .dh = dh, .is_max = r->is_max, .include_pad = g->include_pad};
    /* t: a plane (image and channel block), or with bands every plane's
     * band t of rows */
    int64_t p0 = t, p1 = t + 1, oy0 = 0, oy1 = oh;
    if (r->bands > 0) {
        p0 = 0;
        p1 = g->n * blocks16(g->c);
        oy0 = oh * t / r->bands;
        oy1 = oh * (t + 1) / r->bands;
    }
    for (int64_t pl = p0; pl < p1; pl++) {
        const float *x = r->x + pl * ih * iw * 16;
        float *y = r->y + pl * oh * ow * 16;
        for (int64_t oy = oy0; oy < oy1; oy++) {
            int64_t ky0 = 0, ky1 = kh;
            while (ky0 < kh && oy * sh - pt + ky0 * dh < 0)
                ky0++;
            while (ky1 > ky0 && oy * sh - pt + (ky1 - 1) * dh >= ih)
                ky1--;
            const float *xr = ky1 > ky0 ? x + (oy * sh - pt + ky0 * dh) * iw * 16 : x;
            r->isa->bpool(&p, xr, ky0, ky1, y + oy * ow * 16);
        }
    }
}

/* GlobalAveragePool / GlobalMaxPool of a blocked input into the plain
 * [N, C, 1, 1] (the reference kernel's order of the sum, per lane): task
 * t takes its share of the (image, block) planes, one contiguous run a
 * thread, run fixed. (One dynamic task a plane, summed lane by lane in
 * scalar code: mobilenet_v2's 1280 x 7 x 7 took 24 us, resnet50's 2048 x
 * 7 x 7 34 us.) */
struct bgpool_run {
    const struct nn_isa *isa;
    const float *x;
    float *y;
    int64_t sp, c, planes, tasks; /* pixels a plane, channels, (image, block) planes, tasks */
    bool is_max;
};

static void bgpool_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const struct bgpool_run *r = arg;
    int64_t cbs = blocks16(r->c);
    for (int64_t pl = t * r->planes / r->tasks; pl < (t + 1) * r->planes / r->tasks; pl++) {
        const float *x = r->x + pl * r->sp * 16;
        float acc[16];
        if (r->isa != NULL && r->isa->bgpool != NULL)
            r->isa->bgpool(x, r->sp, r->is_max, acc);
        else {
            for (int j = 0; j < 16; j++)
                acc[j] = r->is_max ? -INFINITY : 0.0f;
            for (int64_t i = 0; i < r->sp; i++)
                for (int j = 0; j < 16; j++) {
                    float v = x[i * 16 + j];
                    if (r->is_max)
                        acc[j] = v > acc[j] ? v : acc[j];
                    else
                        acc[j] += v;
                }
        }
        /* plane pl: image pl / blocks, block pl % blocks; the padded lanes are dropped */
        int64_t img = pl / cbs, c0 = (pl % cbs) * 16;
        for (int j = 0; j < 16 && c0 + j < r->c; j++)
            r->y[img * r->c + c0 + j] = r->is_max ? acc[j] : acc[j] / (float)r->sp;
    }
}

/* A blocked Winograd convolution's run. */
static void run_bwino(struct coffer_nn_model *m, const struct fast *f, const struct conv_io *io)
{
    struct bconv_run r = {.isa = m->isa, .f = f, .pad = (float *)io->scratch, .x = io->x, .y = io->y,
                          .res = io->res, .bias = io->bias, .scratch = io->scratch + f->shared};
    if (f->wall) {
        r.scratch = io->scratch + f->shared - f->wall_bytes;
        int64_t chunks = (f->wt + WALL_TILES - 1) / WALL_TILES;
        if (f->win_grp)
            nn_pool_run_fixed(m->pool, f->threads, f->geo.c / 64, wall_in_grp_task, &r);
        else
            nn_pool_run(m->pool, f->threads, chunks, wall_in_task, &r);
        if (f->wfly) {
            /* the tiles past the last, whose products go unused: zeros, not
             * whatever an earlier layer left there (denormals are slow) */
            float *v = wall_v(&r);
            for (int64_t k = 0; k < 36 * blocks16(f->geo.c); k++)
                memset(v + (k / blocks16(f->geo.c)) * f->wvs + (k % blocks16(f->geo.c) * f->wtb + f->wt) * 16, 0,
                       (size_t)((f->wtb - f->wt) * 16) * sizeof(float));
            r.thr = io->scratch + f->shared;
            nn_pool_run_fixed(m->pool, f->threads, f->geo.m / 64, wfly_task, &r);
        } else {
            (f->wsec ? nn_pool_run_fixed : nn_pool_run)(m->pool, f->threads, f->wp * ((f->geo.m + 63) / 64),
                                                wall_prod_task, &r);
        }
        if (f->wout_grp)
            nn_pool_run_fixed(m->pool, f->threads, f->geo.m / 64, wall_out_grp_task, &r);
        else
            nn_pool_run(m->pool, f->threads, chunks, wall_out_task, &r);
        return;
    }
    nn_pool_run(m->pool, f->threads, f->wblocks * f->wsplit, bwino_task, &r);
}

/* ------------------------------------------------------ measured picks */

/* A layer's candidates (tune_cands) are planned apart from the model, on
 * zero weights, inputs and outputs of the layer's size, and run in turn
 * over TUNE_ROUNDS rounds, the first a warm-up. Before each run the
 * candidate's packed weights are flushed from the caches (in a model's
 * run they come from memory: resnet50's 100 MiB do not stay in any cache
 * from one run to the next) and the input is left in them (the layer
 * before has just written it). A candidate's time is its fastest run;
 * the fastest candidate wins (a tie to the direct kernel, then to
 * F(4x4)). Every layer of that shape takes the pick,
 * and picks last as long as the model, over re-plans. resnet50 at batch
 * 1 on 2 threads measures two shapes in about 30 ms of its load. */
#define TUNE_ROUNDS 4

struct tune_cand {
    struct fast f;
    struct coffer_secret *pack, *scratch;
    size_t pack_bytes;
    uint64_t best;
};

static void flush_lines(const void *p, size_t n)
{
#if defined(__x86_64__) || defined(__i386__)
    for (size_t i = 0; i < n; i += 64)
        _mm_clflush((const uint8_t *)p + i);
    _mm_mfence();
#else
    (void)p;
    (void)n;
#endif
}

/* Plan pick k of node c apart (tc->f, tc->mem); false where it cannot. */
static bool tune_plan(struct coffer_nn_model *m, struct nn_ctx *c, int k, struct tune_cand *tc)
{
    m->tune_force = k;
    struct filler size = {0};
    struct fast f0;
    memset(&f0, 0, sizeof(f0));
    plan_conv(m, c, &f0, &size);
    bool ok = f0.kind == (k == TUNE_DIRECT ? FAST_BCONV : FAST_BWINO) &&
              (k == TUNE_DIRECT || f0.wm == (k == TUNE_F2 ? 2 : 4));
    if (ok && coffer_secret_new_flags(size.used, COFFER_SECRET_SMALL_PAGES, &tc->pack) == COFFER_OK) { /* as the model's */
        struct filler fl = {.base = tc->pack->data, .dry = true};
        memset(&tc->f, 0, sizeof(tc->f));
        plan_conv(m, c, &tc->f, &fl);
        tc->pack_bytes = fl.used;
        /* (the scratch from this plan, the one with the step table) */
        const struct fast *f = &tc->f;
        size_t scratch = align64(f->shared) + align64(f->per_thread) * (size_t)(f->threads > 0 ? f->threads : 1);
        if (coffer_secret_new(scratch > 0 ? scratch : 64, &tc->scratch) == COFFER_OK)
            memset(tc->scratch->data, 0, tc->scratch->size); /* the pages in before any run is timed */
    }
    m->tune_force = TUNE_NONE;
    if (tc->scratch == NULL) {
        coffer_secret_free(tc->pack);
        tc->pack = NULL;
    }
    return tc->pack != NULL;
}

static void tune_node(struct coffer_nn_model *m, size_t i)
{
    struct nn_ctx c;
    nn_ctx_init(m, i, &c, false);
    struct nn_geom g;
    if (plan_geom(&c, 0, &g) != COFFER_OK || !c.in[0]->blocked || !m->g.vals[nn_node_out(c.node, 0)].blocked)
        return;
    unsigned cands = tune_cands(m, &g);
    if (cands == 0 || m->n_tune >= NN_TUNE_MAX)
        return;
    for (int k = 0; k < m->n_tune; k++)
        if (tune_same(&m->tunes[k], &g))
            return;
    /* the input, the output and (for a fused residual) what is added */
    size_t xn = (size_t)(g.n * round_up(g.c, 16) * g.in[1] * g.in[2]);
    size_t yn = (size_t)(g.n * round_up(g.m, 16) * g.out[1] * g.out[2]);
    bool has_res = c.node->f_res >= 0;
    struct coffer_secret *io = NULL;
    if (wstage_make(m) != COFFER_OK) { /* (the candidates' plans stage their weights; without: the fixed rules) */
        coffer_err_clear();
        return;
    }
    if (coffer_secret_new((xn + yn * (has_res ? 2 : 1)) * sizeof(float), &io) != COFFER_OK)
        return;
    memset(io->data, 0, io->size);
    struct tune_cand tc[TUNE_PICKS];
    memset(tc, 0, sizeof(tc));
    int planned = 0;
    for (int k = TUNE_DIRECT; k < TUNE_PICKS; k++)
        if ((cands >> k & 1u) && tune_plan(m, &c, k, &tc[k]))
            planned++;
    float *x = (float *)io->data, *y = x + xn;
    for (int r = 0; r < TUNE_ROUNDS && planned > 1; r++)
        for (int k = TUNE_DIRECT; k < TUNE_PICKS; k++) {
            struct tune_cand *t = &tc[k];
            if (t->pack == NULL)
                continue;
            struct conv_io cio = {.x = x, .y = y, .res = has_res ? y + yn : NULL, .scratch = t->scratch->data};
            cio.bias = t->f.bias ? t->f.bias : (c.n_in > 2 && c.in[2] ? c.in[2]->data : NULL);
            flush_lines(t->pack->data, t->pack_bytes);
            uint64_t t0 = coffer_now_ns();
            (t->f.kind == FAST_BCONV ? run_bconv : run_bwino)(m, &t->f, &cio);
            uint64_t dt = coffer_now_ns() - t0;
            if (r > 0 && (t->best == 0 || dt < t->best))
                t->best = dt > 0 ? dt : 1;
        }
    int pick = TUNE_NONE;
    for (int k = TUNE_DIRECT; k < TUNE_PICKS; k++)
        if (tc[k].best > 0 && (pick == TUNE_NONE || tc[k].best < tc[pick].best))
            pick = k;
    if (pick != TUNE_NONE) {
        struct nn_tune *t = &m->tunes[m->n_tune++];
        *t = (struct nn_tune){.n = g.n, .c = g.c, .m = g.m, .in = {g.in[1], g.in[2]}, .pb = {g.pb[1], g.pb[2]},
                              .out = {g.out[1], g.out[2]}, .pick = pick};
        for (int k = TUNE_DIRECT; k < TUNE_PICKS; k++)
            t->ns[k] = tc[k].best;
    }
    for (int k = TUNE_DIRECT; k < TUNE_PICKS; k++) {
        coffer_secret_free(tc[k].pack);
        coffer_secret_free(tc[k].scratch);
    }
    coffer_secret_free(io);
}

static void tune(struct coffer_nn_model *m)
{
    if (m->tune == NN_TUNE_OFF || m->wino != NN_WINO_AUTO || m->tune_force != TUNE_NONE)
        return;
    for (size_t i = 0; i < m->g.n_nodes; i++) {
        struct nn_node *n = &m->g.nodes[i];
        if (n->live && !n->skip && n->op == NN_OP_CONV && nn_fast_ok(m, i) && bconv_ok(m, i))
            tune_node(m, i);
    }
}

/* Calibration (m->calibrating): the range of a blocked convolution's
 * input over its channels (not a last block's lanes past them), merged
 * into the value's. */
static void q8_note(struct coffer_nn_model *m, const struct nn_ctx *c)
{
    const struct nn_val *v = c->in[0];
    int64_t ch = v->dims[1], cbs = blocks16(ch), sp = v->dims[2] * v->dims[3];
    const float *x = v->data;
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < v->dims[0] * cbs; i++) {
        int64_t lanes = ch - (i % cbs) * 16 < 16 ? ch - (i % cbs) * 16 : 16;
        for (int64_t p = 0; p < sp; p++)
            for (int64_t l = 0; l < lanes; l++) {
                lo = fminf(lo, x[(i * sp + p) * 16 + l]);
                hi = fmaxf(hi, x[(i * sp + p) * 16 + l]);
            }
    }
    struct nn_qrange *q = &m->qr[c->node->in[0]];
    if (!(lo <= hi)) /* nothing seen (or NaN only) */
        return;
    q->lo = q->set && q->lo < lo ? q->lo : lo;
    q->hi = q->set && q->hi > hi ? q->hi : hi;
    q->set = true;
}

void nn_fast_run(struct nn_ctx *c)
{
    struct coffer_nn_model *m = c->m;
    const struct fast *f = c->node->fast;
    struct nn_node *n = c->node;
    const float *res = n->f_res >= 0 ? m->g.vals[n->f_res].data : NULL;
    float *y = c->out[0]->data;
    if (m->calibrating && m->qr != NULL && (f->kind == FAST_BCONV || f->kind == FAST_BWINO) && f->in_blocked)
        q8_note(m, c);
    if (f->kind == FAST_BCONV && (f->cdw_rows > 0 || f->cdw_grp)) {
        run_cdw(m, c, res, y);
        return;
    }
    if (f->kind == FAST_BCONV || f->kind == FAST_BWINO) {
        struct conv_io io = node_io(c, res, y);
        (f->kind == FAST_BCONV ? run_bconv : run_bwino)(m, f, &io);
        return;
    }
    if (f->kind == FAST_BDW) {
        struct bdw_run r = {.isa = m->isa, .f = f, .x = c->in[0]->data, .res = res, .y = y};
        r.bias = f->bias ? f->bias : (c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL);
        if (f->spatial)
            nn_pool_run_fixed(m->pool, f->threads, f->threads, bdw_task, &r);
        else
            nn_pool_run(m->pool, f->threads, f->geo.n * blocks16(f->geo.c), bdw_task, &r);
        return;
    }
    if (f->kind == FAST_BPOOL) {
        struct bpool_run r = {.isa = m->isa, .g = &f->geo, .x = c->in[0]->data, .y = y,
                              .is_max = n->op == NN_OP_MAXPOOL};
        if (f->spatial) {
            r.bands = f->threads;
            nn_pool_run_fixed(m->pool, f->threads, f->threads, bpool_task, &r);
        } else
            nn_pool_run(m->pool, f->threads, f->geo.n * blocks16(f->geo.c), bpool_task, &r);
        return;
    }
    if (f->kind == FAST_BGPOOL) {
        const struct nn_val *xv = c->in[0];
        struct bgpool_run r = {.isa = m->isa, .x = xv->data, .y = y, .sp = xv->dims[2] * xv->dims[3],
                               .c = xv->dims[1], .planes = xv->dims[0] * blocks16(xv->dims[1]),
                               .is_max = n->op == NN_OP_GLOBALMAXPOOL};
        int threads = r.sp * xv->dims[1] >= 4096 ? f->threads : 1;
        r.tasks = r.planes < threads ? r.planes : threads;
        if (r.tasks > 0)
            nn_pool_run_fixed(m->pool, threads, r.tasks, bgpool_task, &r);
        return;
    }
    if (f->kind == FAST_POOL) {
        struct pool_run r = {.g = &f->geo, .x = c->in[0]->data, .y = y, .is_max = n->op == NN_OP_MAXPOOL,
                             .scratch = c->scratch, .per_thread = f->per_thread};
        nn_pool_run(m->pool, f->threads, f->geo.n * f->geo.c, pool_task, &r);
        return;
    }
    if (f->kind == FAST_DW) {
        struct dw_run r = {.isa = m->isa, .f = f, .x = c->in[0]->data, .res = res, .y = y, .scratch = c->scratch};
        r.bias = f->bias ? f->bias : (c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL);
        nn_pool_run(m->pool, f->threads, f->geo.n * f->geo.c, dw_task, &r);
        return;
    }
    if (f->kind == FAST_WINO) {
        const float *bias = f->bias ? f->bias : (c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL);
        nn_wino_run(m->isa, m->pool, f->threads, &f->wn, f->wu, c->in[0]->data, y, bias, res, &f->gm.epi,
                    c->scratch, f->per_thread);
        return;
    }
    struct nn_gemm gm = f->gm;
    gm.c = y;
    gm.epi.res = res;
    if (f->kind == FAST_CONV) {
        gm.b = c->in[0]->data;
        if (f->a_runtime)
            gm.a = c->in[1]->data;
        gm.epi.bias_m = f->bias ? f->bias : (c->n_in > 2 && c->in[2] ? c->in[2]->data : NULL);
    } else {
        gm.a = c->in[0]->data;
        if (f->a_runtime)
            gm.b = c->in[1]->data;
        const struct nn_val *cv = n->op == NN_OP_GEMM && c->n_in > 2 ? c->in[2] : NULL;
        if (cv != NULL && !f->prefill)
            gm.epi.bias_n = f->bias ? f->bias : cv->data;
        if (cv != NULL && f->prefill) {
            size_t st[COFFER_NN_MAX_RANK];
            nn_bcast_strides(cv, 2, c->out[0]->dims, st);
            const float *cd = cv->data;
            for (int64_t i = 0; i < gm.m; i++)
                for (int64_t j = 0; j < gm.n; j++)
                    y[i * gm.n + j] = f->beta * cd[(size_t)i * st[0] + (size_t)j * st[1]];
            gm.load_c = true;
        }
    }
    uint8_t *sc = c->scratch;
    nn_gemm_run(m->isa, m->pool, f->threads, &gm, sc + align64(f->shared), f->per_thread, f->shared ? sc : NULL);
}
