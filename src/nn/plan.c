/*
 * plan.c — shape inference, constant folding, dead-node removal, the static
 * memory plan, and the executor.
 *
 * Design: nn_prepare walks the nodes in their (checked) topological order
 * for one set of input shapes. Each node's infer function validates it and
 * sets its outputs' shapes. A node whose inputs are all constant (or that
 * only looks at shapes: Shape, Size) is run right away into the fold arena
 * and its outputs become constants, so shape arithmetic (Shape → Gather →
 * Concat → Reshape) disappears before execution. A backward pass then keeps
 * only nodes some graph output needs. Last, a forward pass gives each
 * activation an offset in one arena: outputs and scratch of a node are
 * placed before its dead inputs are freed (so no kernel sees its output
 * overlap an input), freed blocks are reused best-fit and merged, and graph
 * outputs are never freed. The arena is (re)allocated only when a plan
 * needs more than the current capacity; nn_execute allocates nothing.
 *
 * Small graph inputs (int64 of rank <= 1, or any input read directly where
 * a value decides a shape; at most 64 elements) are "pinned":
 * their values are part of the plan, because shape logic may depend on them
 * (a Reshape's target shape fed as an input); a run with other values
 * re-plans.
 *
 * At batch > 1, a run of nodes may form an image-by-image segment
 * (kernels/fast.c, plan_seg): planned for one image and executed for one
 * image after another, with the values only it makes and reads held as
 * one image (docs/design-nn.md).
 *
 * Invariants: I1 after a successful prepare every live node's inputs and
 * outputs have known shapes and data pointers inside the arena, the fold
 * arena, the model bytes or the caller's inputs; I2 no two activations that
 * are alive at the same node overlap (in the segment, in the order it
 * runs); I3 act_size <= COFFER_NN_MAX_ARENA.
 *
 * Trusts: the importer's invariants (value indices in range, ranks capped,
 * topological order) and each op's infer function.
 */
#include "nn_int.h"

#include <string.h>

#define NN_ALIGN 64
#define NN_PIN_MAX 64

/* fused: outputs as fusion redirected them (for running), else as imported */
void nn_ctx_init(struct coffer_nn_model *m, size_t i, struct nn_ctx *c, bool fused)
{
    struct nn_node *n = &m->g.nodes[i];
    c->m = m;
    c->node = n;
    c->n_in = n->n_in;
    c->n_out = n->n_out;
    for (int k = 0; k < n->n_in; k++)
        c->in[k] = n->in[k] >= 0 ? &m->g.vals[n->in[k]] : NULL;
    for (int k = 0; k < n->n_out; k++) {
        int o = fused ? nn_node_out(n, k) : n->out[k];
        c->out[k] = o >= 0 ? &m->g.vals[o] : NULL;
    }
    c->scratch = NULL;
}

static bool is_const(const struct nn_val *v)
{
    return v->kind == NN_VAL_INIT || v->kind == NN_VAL_CONST;
}

/* ------------------------------------------------------------ allocator */

struct blk {
    size_t off, size;
};

struct alloc {
    struct blk *free;
    size_t n, cap;
    size_t top;
};

static size_t round_up(size_t s)
{
    if (s == 0)
        s = 1;
    return (s + NN_ALIGN - 1) & ~(size_t)(NN_ALIGN - 1);
}

static enum coffer_err alloc_take(struct alloc *a, size_t size, size_t *off)
{
    size = round_up(size);
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < a->n; i++)
        if (a->free[i].size >= size && (best == SIZE_MAX || a->free[i].size < a->free[best].size))
            best = i;
    if (best != SIZE_MAX) {
        *off = a->free[best].off;
        a->free[best].off += size;
        a->free[best].size -= size;
        if (a->free[best].size == 0) {
            memmove(&a->free[best], &a->free[best + 1], (a->n - best - 1) * sizeof(struct blk));
            a->n--;
        }
        return COFFER_OK;
    }
    /* grow the top, absorbing a free block that touches it */
    size_t base = a->top;
    if (a->n > 0 && a->free[a->n - 1].off + a->free[a->n - 1].size == a->top) {
        base = a->free[a->n - 1].off;
        a->n--;
    }
    size_t end;
    if (!coffer_size_add(base, size, &end) || end > COFFER_NN_MAX_ARENA)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "activation arena over %zu bytes", (size_t)COFFER_NN_MAX_ARENA);
    *off = base;
    a->top = end;
    return COFFER_OK;
}

static void alloc_give(struct alloc *a, size_t off, size_t size)
{
    size = round_up(size);
    size_t i = 0;
    while (i < a->n && a->free[i].off < off)
        i++;
    /* merge with the previous and the next block */
    if (i > 0 && a->free[i - 1].off + a->free[i - 1].size == off) {
        a->free[i - 1].size += size;
        if (i < a->n && a->free[i - 1].off + a->free[i - 1].size == a->free[i].off) {
            a->free[i - 1].size += a->free[i].size;
            memmove(&a->free[i], &a->free[i + 1], (a->n - i - 1) * sizeof(struct blk));
            a->n--;
        }
        return;
    }
    if (i < a->n && off + size == a->free[i].off) {
        a->free[i].off = off;
        a->free[i].size += size;
        return;
    }
    memmove(&a->free[i + 1], &a->free[i], (a->n - i) * sizeof(struct blk));
    a->free[i].off = off;
    a->free[i].size = size;
    a->n++;
}

/* Bytes of the arena value v takes: one image of a value made and read
 * only inside the image-by-image segment (nn_seg_mode). */
static size_t act_bytes(const struct coffer_nn_model *m, const struct nn_val *v)
{
    return v->seg == NN_SEG_IMG ? v->size / (size_t)m->seg_n : v->size;
}

/* Place node n's outputs (those the segment reads or writes whole were
 * placed before it). */
static enum coffer_err take_outputs(struct alloc *al, struct coffer_nn_model *m, const struct nn_node *n)
{
    for (int k = 0; k < n->n_out; k++) {
        if (nn_node_out(n, k) < 0)
            continue;
        struct nn_val *v = &m->g.vals[nn_node_out(n, k)];
        if (v->seg == NN_SEG_OUT)
            continue;
        enum coffer_err r = alloc_take(al, act_bytes(m, v), &v->offset);
        if (r != COFFER_OK)
            return r;
    }
    return COFFER_OK;
}

/* -------------------------------------------------------------- prepare */

static enum coffer_err set_inputs(struct coffer_nn_model *m, const struct coffer_nn_tensor *inputs)
{
    for (size_t i = 0; i < m->g.n_inputs; i++) {
        struct nn_val *v = &m->g.vals[m->g.inputs[i]];
        v->kind = NN_VAL_INPUT;
        v->pinned = false;
        v->data = NULL;
        if (inputs != NULL) {
            const struct coffer_nn_tensor *t = &inputs[i];
            v->dtype = t->dtype;
            v->rank = t->rank;
            memcpy(v->dims, t->dims, sizeof(v->dims));
            v->count = coffer_nn_tensor_count(t);
            v->size = t->size;
            v->known = true;
            if (((t->dtype == COFFER_NN_INT64 && t->rank <= 1) || v->shape_input) && v->count <= NN_PIN_MAX) {
                void *p = coffer_arena_alloc(m->fold, t->size + 8, NN_ALIGN);
                if (p == NULL)
                    return COFFER_FAIL(COFFER_E_NOMEM, "pinned input");
                memcpy(p, t->data, t->size);
                v->data = p;
                v->kind = NN_VAL_CONST;
                v->pinned = true;
            }
            continue;
        }
        v->dtype = v->decl_dtype;
        if (v->decl_rank < 0) {
            m->deferred = true; /* no declared shape: wait for the first run */
            return COFFER_OK;
        }
        v->rank = v->decl_rank;
        size_t n = 1;
        for (int k = 0; k < v->rank; k++) {
            v->dims[k] = v->decl_dims[k] < 0 ? 1 : v->decl_dims[k];
            if (!coffer_size_mul(n, (size_t)v->dims[k], &n) || n > COFFER_NN_MAX_ELEMS)
                return COFFER_FAIL(COFFER_E_TOO_LARGE, "input '%s': too many elements", v->name);
        }
        v->count = n;
        v->size = n * coffer_nn_dtype_size(v->dtype);
        v->known = true;
        if ((v->dtype == COFFER_NN_INT64 && v->rank <= 1) || v->shape_input)
            v->pinned = true; /* value unknown until the first run */
    }
    return COFFER_OK;
}

/* A deferred weight (onnx.c, defer_settle) copied, aligned, into the fold
 * arena, for a reader that does not pack it. */
static enum coffer_err materialize(struct coffer_nn_model *m, struct nn_val *v)
{
    if (v == NULL || v->data != NULL || v->kind != NN_VAL_INIT || v->init->raw == NULL)
        return COFFER_OK;
    void *p = coffer_arena_alloc(m->fold, v->size ? v->size : 1, NN_ALIGN);
    if (p == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "weights '%s': %zu bytes", v->name, v->size);
    memcpy(p, v->init->raw, v->size);
    v->data = p;
    m->weights_late += v->size;
    return COFFER_OK;
}

static enum coffer_err fold_node(struct coffer_nn_model *m, struct nn_ctx *c)
{
    for (int k = 0; k < c->n_in; k++) {
        enum coffer_err r = materialize(m, c->in[k]);
        if (r != COFFER_OK)
            return r;
    }
    for (int k = 0; k < c->n_out; k++) {
        struct nn_val *v = c->out[k];
        if (v == NULL)
            continue;
        v->data = coffer_arena_alloc(m->fold, v->size ? v->size : 1, NN_ALIGN);
        if (v->data == NULL)
            return COFFER_FAIL(COFFER_E_NOMEM, "folding node '%s': %zu bytes", c->node->name, v->size);
        v->kind = NN_VAL_CONST;
    }
    void *scratch = NULL;
    if (c->node->scratch > 0) {
        scratch = coffer_malloc(c->node->scratch);
        if (scratch == NULL)
            return COFFER_FAIL(COFFER_E_NOMEM, "folding node '%s': scratch", c->node->name);
    }
    c->scratch = scratch;
    nn_op_get(c->node->op)->run(c);
    coffer_free(scratch);
    c->node->folded = true;
    return COFFER_OK;
}

enum coffer_err nn_prepare(struct coffer_nn_model *m, const struct coffer_nn_tensor *inputs)
{
    struct nn_graph *g = &m->g;
    enum coffer_err r;
    m->planned = false;
    m->deferred = false;
    coffer_arena_reset(m->fold);
    m->weights_late = 0;
    m->seg_lo = m->seg_hi = 0;
    m->seg_n = 0;
    m->seg_vals = NULL;
    m->seg_base = NULL;
    m->n_seg_vals = 0;
    for (size_t i = 0; i < g->n_vals; i++) {
        struct nn_val *v = &g->vals[i];
        if (v->kind == NN_VAL_INIT) {
            v->dtype = v->init->dtype;
            v->rank = v->init->rank;
            memcpy(v->dims, v->init->dims, sizeof(v->dims));
            v->count = v->init->count;
            v->size = v->count * coffer_nn_dtype_size(v->dtype);
            v->data = (void *)v->init->data; /* kernels never write constants; NULL: deferred */
            v->known = true;
        } else if (v->producer >= 0) {
            v->kind = NN_VAL_ACT;
            v->known = false;
            v->pinned = false;
            v->data = NULL;
        }
        v->last_use = -1;
        v->blocked = false;
        v->seg = NN_SEG_NONE;
    }
    if ((r = set_inputs(m, inputs)) != COFFER_OK || m->deferred)
        return r;

    /* shapes and folding */
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct nn_node *n = &g->nodes[i];
        struct nn_ctx c;
        n->f_out = n->f_res = -1;
        n->skip = false;
        n->fast = NULL;
        n->with_next = -1;
        n->by_prev = false;
        n->seg = false;
        nn_ctx_init(m, i, &c, false);
        n->folded = false;
        n->live = false;
        n->scratch = 0;
        n->work = 0;
        bool all_const = true, pin = false;
        for (int k = 0; k < c.n_in; k++) {
            if (c.in[k] == NULL)
                continue;
            if (!c.in[k]->known)
                return COFFER_FAIL(COFFER_E_INTERNAL, "node '%s': input '%s' has no shape", n->name, c.in[k]->name);
            if (!is_const(c.in[k]))
                all_const = false;
            if (c.in[k]->pinned)
                pin = true;
        }
        r = nn_op_get(n->op)->infer(&c);
        if (r != COFFER_OK) {
            if (m->deferred && inputs == NULL)
                return COFFER_OK;
            return r;
        }
        if (n->work == 0)
            for (int k = 0; k < c.n_out; k++)
                n->work += c.out[k] ? (double)c.out[k]->count : 0.0;
        for (int k = 0; k < c.n_out; k++)
            if (c.out[k] != NULL) {
                if (!c.out[k]->known)
                    return COFFER_FAIL(COFFER_E_INTERNAL, "node '%s': output %d has no shape", n->name, k);
                c.out[k]->pinned = pin;
            }
        if (all_const || n->op == NN_OP_SHAPE || n->op == NN_OP_SIZE) {
            if ((r = fold_node(m, &c)) != COFFER_OK)
                return r;
        }
    }

    if ((r = nn_fuse(m)) != COFFER_OK)
        return r;

    /* dead-node removal */
    bool *needed = coffer_calloc(g->n_vals + 1, sizeof(bool));
    struct alloc al = {0};
    al.cap = g->n_vals + g->n_nodes + 2;
    al.free = coffer_mallocarray(al.cap, sizeof(struct blk));
    if (needed == NULL || al.free == NULL) {
        r = COFFER_FAIL(COFFER_E_NOMEM, "planning");
        goto out;
    }
    for (size_t i = 0; i < g->n_outputs; i++)
        needed[g->outputs[i]] = true;
    m->live_nodes = 0;
    m->work = 0;
    for (size_t j = g->n_nodes; j-- > 0;) {
        struct nn_node *n = &g->nodes[j];
        if (n->folded || n->skip)
            continue;
        for (int k = 0; k < n->n_out; k++)
            if (nn_node_out(n, k) >= 0 && needed[nn_node_out(n, k)])
                n->live = true;
        if (!n->live)
            continue;
        m->live_nodes++;
        m->work += n->work;
        for (int k = 0; k < nn_node_n_in(n); k++)
            if (nn_node_in(n, k) >= 0)
                needed[nn_node_in(n, k)] = true;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct nn_node *n = &g->nodes[i];
        if (!n->live)
            continue;
        for (int k = 0; k < nn_node_n_in(n); k++)
            if (nn_node_in(n, k) >= 0)
                g->vals[nn_node_in(n, k)].last_use = (int)i;
    }
    if ((r = nn_fast_prepare(m)) != COFFER_OK)
        goto out;
    /* deferred weights that a node reads other than from its packed copy */
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct nn_node *n = &g->nodes[i];
        if (!n->live)
            continue;
        for (int k = 0; k < nn_node_n_in(n); k++)
            if (nn_node_in(n, k) >= 0 && (k != 1 || !nn_fast_packs_w(n)) &&
                (r = materialize(m, &g->vals[nn_node_in(n, k)])) != COFFER_OK)
                goto out;
    }

    /* memory plan. The image-by-image segment runs its nodes for one
     * image after another: what it writes whole is placed before it
     * starts, and what it reads whole is kept to its end, while the values
     * it makes and reads itself hold one image, placed node by node as
     * anywhere else. */
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct nn_node *n = &g->nodes[i];
        if (!n->live)
            continue;
        if (m->seg_hi > 0 && i == m->seg_lo)
            for (size_t k = 0; k < m->n_seg_vals; k++) {
                struct nn_val *v = &g->vals[m->seg_vals[k]];
                if (v->seg == NN_SEG_OUT && (r = alloc_take(&al, v->size, &v->offset)) != COFFER_OK)
                    goto out;
            }
        /* a node run inside this one's run writes its outputs while this
         * one still reads its inputs: they are placed first */
        if ((!n->by_prev && (r = take_outputs(&al, m, n)) != COFFER_OK) ||
            (n->with_next >= 0 && (r = take_outputs(&al, m, &g->nodes[n->with_next])) != COFFER_OK))
            goto out;
        if (n->scratch > 0 && (r = alloc_take(&al, n->scratch, &n->scratch_off)) != COFFER_OK)
            goto out;
        if (n->scratch > 0)
            alloc_give(&al, n->scratch_off, n->scratch);
        for (int k = 0; k < nn_node_n_in(n); k++) {
            if (nn_node_in(n, k) < 0)
                continue;
            struct nn_val *v = &g->vals[nn_node_in(n, k)];
            bool dup = false;
            for (int q = 0; q < k; q++)
                dup |= nn_node_in(n, q) == nn_node_in(n, k);
            if (!dup && v->kind == NN_VAL_ACT && v->last_use == (int)i && !v->is_output &&
                (v->seg != NN_SEG_IN || i + 1 >= m->seg_hi))
                alloc_give(&al, v->offset, act_bytes(m, v));
        }
        for (int k = 0; k < n->n_out; k++) {
            if (nn_node_out(n, k) < 0)
                continue;
            struct nn_val *v = &g->vals[nn_node_out(n, k)];
            if (v->last_use < 0 && !v->is_output)
                alloc_give(&al, v->offset, act_bytes(m, v));
        }
        if (m->seg_hi > 0 && i + 1 == m->seg_hi) /* what the segment read whole and no later node reads */
            for (size_t k = 0; k < m->n_seg_vals; k++) {
                struct nn_val *v = &g->vals[m->seg_vals[k]];
                if (v->seg == NN_SEG_IN && v->kind == NN_VAL_ACT && v->last_use < (int)i && !v->is_output)
                    alloc_give(&al, v->offset, v->size);
            }
    }
    m->act_size = al.top;
    if (m->act_size > m->act_cap) {
        /* user data: locked, wiped when freed, and (from 2 MiB) on 2 MiB
         * pages: on 4 KiB pages the kernels, which touch many pages at
         * once (the Winograd transforms' 36 points, the channel blocks of
         * the blocked maps), missed the TLB: resnet50 b1 ~7 % and
         * mobilenet_v2 ~8 % slower with this and the packed weights on
         * small pages (docs/benchmarks.md) */
        coffer_secret_free(m->act_mem);
        m->act_mem = NULL;
        m->act = NULL;
        m->act_cap = 0;
        if ((r = coffer_secret_new(m->act_size, &m->act_mem)) != COFFER_OK) {
            r = COFFER_FAIL(r, "activation arena of %zu bytes", m->act_size);
            goto out;
        }
        m->act = m->act_mem->data;
        m->act_cap = m->act_size;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct nn_node *n = &g->nodes[i];
        if (!n->live)
            continue;
        for (int k = 0; k < n->n_out; k++)
            if (nn_node_out(n, k) >= 0)
                g->vals[nn_node_out(n, k)].data = m->act + g->vals[nn_node_out(n, k)].offset;
    }
    m->planned = true;
    r = COFFER_OK;
out:
    coffer_free(needed);
    coffer_free(al.free);
    return r;
}

static void run_node(struct coffer_nn_model *m, size_t i)
{
    struct nn_node *n = &m->g.nodes[i];
    struct nn_ctx c;
    nn_ctx_init(m, i, &c, true);
    c.scratch = n->scratch ? m->act + n->scratch_off : NULL;
    uint64_t t0 = m->prof_ns ? coffer_now_ns() : 0;
    if (n->fast != NULL)
        nn_fast_run(&c);
    else
        nn_op_get(n->op)->run(&c);
    if (m->prof_ns)
        m->prof_ns[i] += coffer_now_ns() - t0;
}

/* The image-by-image segment: its nodes (each planned for one image) over
 * image j with the values it reads or writes whole pointed at image j. */
static void run_seg(struct coffer_nn_model *m)
{
    struct nn_graph *g = &m->g;
    for (size_t k = 0; k < m->n_seg_vals; k++)
        m->seg_base[k] = g->vals[m->seg_vals[k]].data;
    for (int64_t j = 0; j < m->seg_n; j++) {
        for (size_t k = 0; k < m->n_seg_vals; k++) {
            struct nn_val *v = &g->vals[m->seg_vals[k]];
            v->data = (uint8_t *)m->seg_base[k] + (size_t)j * (v->size / (size_t)m->seg_n);
        }
        for (size_t i = m->seg_lo; i < m->seg_hi; i++)
            if (g->nodes[i].live && !g->nodes[i].by_prev)
                run_node(m, i);
    }
    for (size_t k = 0; k < m->n_seg_vals; k++)
        g->vals[m->seg_vals[k]].data = m->seg_base[k];
}

enum coffer_err nn_execute(struct coffer_nn_model *m)
{
    if (COFFER_NEVER(!m->planned))
        return COFFER_FAIL(COFFER_E_STATE, "model not planned");
    for (size_t i = 0; i < m->g.n_nodes; i++) {
        struct nn_node *n = &m->g.nodes[i];
        if (m->seg_hi > 0 && i == m->seg_lo) {
            run_seg(m);
            i = m->seg_hi - 1;
            continue;
        }
        if (!n->live || n->by_prev)
            continue;
        run_node(m, i);
    }
    if (m->prof_ns)
        m->prof_runs++;
    return COFFER_OK;
}
