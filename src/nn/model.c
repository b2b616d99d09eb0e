/*
 * model.c — the public model handle: load, describe, run, free.
 *
 * Design: load = parse (onnx.c) + prepare for the declared input shapes
 * (plan.c). Everything the model file says is checked before the first
 * activation byte is allocated. run compares the caller's inputs with the
 * plan; only a different shape (or pinned value) re-plans, and that reuses
 * the parsed graph and the arena when it is big enough.
 *
 * Invariants: I1 a model whose last prepare failed has planned == false and
 * run re-plans before executing; I2 outputs handed out point into memory
 * the model owns until the next run or free.
 *
 * Trusts: the caller keeps the model bytes alive and unchanged.
 */
#include "nn_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const dtype_names[] = {
    "undefined", "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "string", "bool",
    "float16", "float64", "uint32", "uint64", "complex64", "complex128", "bfloat16",
};

const char *coffer_nn_dtype_name(enum coffer_nn_dtype dtype)
{
    if ((unsigned)dtype < sizeof(dtype_names) / sizeof(dtype_names[0]))
        return dtype_names[dtype];
    return "unknown";
}

size_t coffer_nn_dtype_size(enum coffer_nn_dtype dtype)
{
    switch (dtype) {
    case COFFER_NN_FLOAT: return 4;
    case COFFER_NN_INT64: return 8;
    case COFFER_NN_BOOL: return 1;
    default: return 0;
    }
}

size_t coffer_nn_tensor_count(const struct coffer_nn_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->rank && i < COFFER_NN_MAX_RANK; i++) {
        if (t->dims[i] < 0 || !coffer_size_mul(n, (size_t)t->dims[i], &n))
            return SIZE_MAX;
    }
    return n;
}

/* A kernel mode from the environment (COFFER_NN_WINOGRAD and the like):
 * the variable's value when it is one of the digits in allowed, else def. */
static int env_mode(const char *name, int def, const char *allowed)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0' || v[1] != '\0' || strchr(allowed, v[0]) == NULL)
        return def;
    return v[0] - '0';
}

enum coffer_err coffer_nn_model_load(const void *bytes, size_t size, struct coffer_nn_model **out)
{
    return coffer_nn_model_load_opts(bytes, size, NULL, out);
}

enum coffer_err coffer_nn_model_load_opts(const void *bytes, size_t size, const struct coffer_nn_options *opts,
                                          struct coffer_nn_model **out)
{
    *out = NULL;
    const char *why = NULL;
    const struct nn_isa *isa = nn_isa_default(&why);
    if (isa == NULL)
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "%s", why);
    int threads = opts != NULL ? opts->threads : 0;
    if (threads < 0 || threads > COFFER_NN_MAX_THREADS)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "threads: %d (0 to %d)", threads, COFFER_NN_MAX_THREADS);
    if (threads == 0)
        threads = nn_cpu_count();
    if (isa->id == NN_ISA_REF)
        threads = 1; /* the reference kernels are single-threaded */
    enum coffer_nn_precision prec = opts != NULL ? opts->precision : COFFER_NN_DEFAULT;
    if (prec == COFFER_NN_DEFAULT) {
        const char *pe = getenv("COFFER_NN_PRECISION");
        if (pe == NULL || pe[0] == '\0' || strcmp(pe, "f32") == 0)
            prec = COFFER_NN_F32;
        else if (strcmp(pe, "bf16") == 0)
            prec = COFFER_NN_BF16;
        else if (strcmp(pe, "int8") == 0)
            prec = COFFER_NN_PREC_INT8;
        else
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "COFFER_NN_PRECISION=%.40s: expected f32, bf16 or int8", pe);
    }
    if (prec != COFFER_NN_F32 && prec != COFFER_NN_BF16 && prec != COFFER_NN_PREC_INT8)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "precision: %d", (int)prec);
    bool calibrate = opts != NULL && opts->calibrate;
    if (calibrate && prec != COFFER_NN_F32)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "calibrate: records float32 ranges, not with precision %s",
                           prec == COFFER_NN_BF16 ? "bf16" : "int8");
    const struct nn_hkern *hk = NULL;
    if (prec == COFFER_NN_BF16 && (isa->id != NN_ISA_AVX512 || (hk = nn_hkern_get()) == NULL))
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "bf16: needs the avx512 kernels and AVX512_BF16 (kernels: %s%s)",
                           isa->name, isa->id == NN_ISA_AVX512 ? ", no AVX512_BF16 on this CPU" : "");
    const struct nn_qkern *qk = NULL;
    if (prec == COFFER_NN_PREC_INT8 && (isa->id != NN_ISA_AVX512 || (qk = nn_qkern_get()) == NULL))
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "int8: needs the avx512 kernels and AVX512_VNNI (kernels: %s%s)",
                           isa->name, isa->id == NN_ISA_AVX512 ? ", no AVX512_VNNI on this CPU" : "");
    const char *calib = opts != NULL ? opts->calibration : NULL;
    size_t calib_size = calib != NULL ? opts->calibration_size : 0;
    const char *calib_path = NULL; /* else COFFER_NN_CALIBRATION's file, read after the model */
    if (calib != NULL && prec != COFFER_NN_PREC_INT8)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "calibration table: only int8 reads one (precision %s)",
                           prec == COFFER_NN_BF16 ? "bf16" : "f32");
    if (prec == COFFER_NN_PREC_INT8 && calib == NULL) {
        calib_path = getenv("COFFER_NN_CALIBRATION");
        if (calib_path == NULL || calib_path[0] == '\0')
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "int8: no calibration table (coffer calibrate writes one; "
                                                     "COFFER_NN_CALIBRATION names its file)");
    }
    if (bytes == NULL && size > 0)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "model: NULL bytes");
    if (size > COFFER_NN_MAX_MODEL_SIZE)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "model: %zu bytes (cap %zu)", size, COFFER_NN_MAX_MODEL_SIZE);
    struct coffer_nn_model *m = coffer_calloc(1, sizeof(*m));
    if (m == NULL)
        return COFFER_FAIL(COFFER_E_NOMEM, "model handle");
    m->isa = isa;
    m->hk = hk;
    m->qk = qk;
    m->calibrating = calibrate;
    m->threads = threads;
    m->wino = env_mode("COFFER_NN_WINOGRAD", NN_WINO_AUTO, "023456");
    m->ksec = env_mode("COFFER_NN_KSEC", NN_KSEC_AUTO, "02");
    m->spatial = env_mode("COFFER_NN_SPATIAL", NN_SPATIAL_AUTO, "02");
    m->lin = env_mode("COFFER_NN_LIN", NN_LIN_AUTO, "02");
    m->pimg = env_mode("COFFER_NN_PIMG", NN_PIMG_AUTO, "02");
    m->seg = env_mode("COFFER_NN_SEG", NN_SEG_AUTO, "02");
    if (calibrate) /* (q8_note reads whole batches; the segment holds one image at a time) */
        m->seg = NN_SEG_OFF;
    m->cdw = env_mode("COFFER_NN_CDW", NN_CDW_AUTO, "023");
    m->tune = env_mode("COFFER_NN_TUNE", NN_TUNE_AUTO, "02");
    m->wkeep_other = opts != NULL && opts->keep_packs ? NN_WKEEP_AUTO : NN_WKEEP_OFF;
    m->wkeep_min = 16 << 10;
    const char *benv = getenv("COFFER_NN_BLOCKED");
    m->no_blocked = benv != NULL && strcmp(benv, "0") == 0;
    enum coffer_err r = coffer_arena_new_secret(64 << 10, &m->arena);
    if (r == COFFER_OK && threads > 1 && (m->pool = nn_pool_new(threads)) == NULL)
        r = COFFER_FAIL(COFFER_E_NOMEM, "thread pool of %d", threads);
    if (r == COFFER_OK)
        r = coffer_arena_new_secret(16 << 10, &m->fold);
    if (r == COFFER_OK)
        r = nn_onnx_parse(m, bytes, size);
    uint8_t *calib_file = NULL;
    if (r == COFFER_OK && calib_path != NULL) {
        if ((r = coffer_file_read_all(calib_path, 16 << 20, &calib_file, &calib_size)) != COFFER_OK)
            coffer_err_context("COFFER_NN_CALIBRATION");
        calib = (const char *)calib_file;
    }
    if (r == COFFER_OK && qk != NULL)
        r = nn_calib_parse(m, calib, calib_size);
    coffer_free(calib_file);
    if (r == COFFER_OK && calibrate && (m->qr = coffer_calloc(m->g.n_vals ? m->g.n_vals : 1, sizeof(*m->qr))) == NULL)
        r = COFFER_FAIL(COFFER_E_NOMEM, "calibration: %zu ranges", m->g.n_vals);
    if (r == COFFER_OK)
        r = nn_prepare(m, NULL);
    if (r != COFFER_OK) {
        coffer_err_context("loading ONNX model");
        coffer_nn_model_free(m);
        return r;
    }
    *out = m;
    return COFFER_OK;
}

void coffer_nn_model_free(struct coffer_nn_model *m)
{
    if (m == NULL)
        return;
    nn_pool_free(m->pool);
    coffer_free(m->prof_ns);
    coffer_free(m->qr);
    coffer_secret_free(m->act_mem);
    coffer_secret_free(m->pack_mem);
    for (size_t i = 0; i < m->n_wkeep; i++)
        coffer_secret_free(m->wkeep[i].mem);
    coffer_free(m->wkeep);
    coffer_secret_free_used(m->wstage, m->wstage_used);
    if (m->fold)
        coffer_arena_free(m->fold);
    if (m->arena)
        coffer_arena_free(m->arena);
    coffer_free(m);
}

size_t coffer_nn_model_input_count(const struct coffer_nn_model *m) { return m->g.n_inputs; }
size_t coffer_nn_model_output_count(const struct coffer_nn_model *m) { return m->g.n_outputs; }

static void fill_info(const struct nn_val *v, struct coffer_nn_value_info *out)
{
    out->name = v->name;
    out->dtype = v->decl_dtype != COFFER_NN_UNDEFINED ? v->decl_dtype : v->dtype;
    out->rank = v->decl_rank >= 0 ? v->decl_rank : (v->known ? v->rank : -1);
    for (int k = 0; k < COFFER_NN_MAX_RANK; k++)
        out->dims[k] = v->decl_rank >= 0 ? v->decl_dims[k] : (v->known ? v->dims[k] : -1);
}

enum coffer_err coffer_nn_model_input(const struct coffer_nn_model *m, size_t i, struct coffer_nn_value_info *out)
{
    memset(out, 0, sizeof(*out));
    if (i >= m->g.n_inputs)
        return COFFER_FAIL(COFFER_E_RANGE, "input %zu of %zu", i, m->g.n_inputs);
    fill_info(&m->g.vals[m->g.inputs[i]], out);
    return COFFER_OK;
}

enum coffer_err coffer_nn_model_output(const struct coffer_nn_model *m, size_t i, struct coffer_nn_value_info *out)
{
    memset(out, 0, sizeof(*out));
    if (i >= m->g.n_outputs)
        return COFFER_FAIL(COFFER_E_RANGE, "output %zu of %zu", i, m->g.n_outputs);
    fill_info(&m->g.vals[m->g.outputs[i]], out);
    return COFFER_OK;
}

/* Whether the inputs fit the current plan. Checks them against the
 * declaration first. */
static enum coffer_err check_inputs(struct coffer_nn_model *m, const struct coffer_nn_tensor *in, bool *same)
{
    *same = m->planned;
    for (size_t i = 0; i < m->g.n_inputs; i++) {
        const struct nn_val *v = &m->g.vals[m->g.inputs[i]];
        const struct coffer_nn_tensor *t = &in[i];
        if (t->dtype != v->decl_dtype)
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "input %zu ('%s'): dtype %s, model wants %s", i, v->name,
                               coffer_nn_dtype_name(t->dtype), coffer_nn_dtype_name(v->decl_dtype));
        if (t->rank < 0 || t->rank > COFFER_NN_MAX_RANK)
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "input %zu ('%s'): rank %d", i, v->name, t->rank);
        if (v->decl_rank >= 0 && t->rank != v->decl_rank)
            return COFFER_FAIL(COFFER_E_SHAPE, "input %zu ('%s'): rank %d, model wants %d", i, v->name, t->rank,
                               v->decl_rank);
        for (int k = 0; k < t->rank; k++) {
            if (t->dims[k] < 0)
                return COFFER_FAIL(COFFER_E_INVALID_ARG, "input %zu ('%s'): negative dimension", i, v->name);
            if (v->decl_rank >= 0 && v->decl_dims[k] >= 0 && v->decl_dims[k] != t->dims[k])
                return COFFER_FAIL(COFFER_E_SHAPE, "input %zu ('%s'): dimension %d is %lld, model wants %lld", i,
                                   v->name, k, (long long)t->dims[k], (long long)v->decl_dims[k]);
        }
        size_t n = coffer_nn_tensor_count(t), bytes;
        if (n == SIZE_MAX || n > COFFER_NN_MAX_ELEMS || !coffer_size_mul(n, coffer_nn_dtype_size(t->dtype), &bytes))
            return COFFER_FAIL(COFFER_E_TOO_LARGE, "input %zu ('%s'): too many elements", i, v->name);
        if (bytes != t->size || (t->data == NULL && bytes > 0))
            return COFFER_FAIL(COFFER_E_INVALID_ARG, "input %zu ('%s'): %zu bytes of data, shape needs %zu", i,
                               v->name, t->size, bytes);
        if (!*same)
            continue;
        if (t->rank != v->rank || memcmp(t->dims, v->dims, sizeof(int64_t) * (size_t)t->rank) != 0)
            *same = false;
        else if (v->kind == NN_VAL_CONST && memcmp(v->data, t->data, bytes) != 0)
            *same = false;
    }
    return COFFER_OK;
}

enum coffer_err coffer_nn_model_run(struct coffer_nn_model *m, const struct coffer_nn_tensor *inputs, size_t n_inputs,
                                    struct coffer_nn_tensor *outputs, size_t n_outputs)
{
    if (m == NULL || (inputs == NULL && n_inputs > 0) || (outputs == NULL && n_outputs > 0))
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "run: NULL argument");
    if (n_inputs != m->g.n_inputs)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "run: %zu inputs given, the model has %zu", n_inputs, m->g.n_inputs);
    if (n_outputs > m->g.n_outputs)
        return COFFER_FAIL(COFFER_E_INVALID_ARG, "run: %zu outputs asked, the model has %zu", n_outputs,
                           m->g.n_outputs);
    bool same;
    enum coffer_err r = check_inputs(m, inputs, &same);
    if (r != COFFER_OK)
        return r;
    if (!same) {
        r = nn_prepare(m, inputs);
        if (r == COFFER_OK && !m->planned)
            r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "the model's shapes cannot be planned from its inputs");
        if (r != COFFER_OK) {
            m->planned = false;
            coffer_err_context("planning for new input shapes");
            return r;
        }
    }
    for (size_t i = 0; i < m->g.n_inputs; i++) {
        struct nn_val *v = &m->g.vals[m->g.inputs[i]];
        if (v->kind == NN_VAL_INPUT)
            v->data = inputs[i].data; /* borrowed; kernels only read inputs */
    }
    if ((r = nn_execute(m)) != COFFER_OK)
        return r;
    for (size_t i = 0; i < n_outputs; i++) {
        const struct nn_val *v = &m->g.vals[m->g.outputs[i]];
        struct coffer_nn_tensor *t = &outputs[i];
        memset(t, 0, sizeof(*t));
        t->dtype = v->dtype;
        t->rank = v->rank;
        memcpy(t->dims, v->dims, sizeof(t->dims));
        t->data = v->data;
        t->size = v->size;
    }
    return COFFER_OK;
}

enum coffer_err coffer_nn_model_info(const struct coffer_nn_model *m, struct coffer_nn_info *out)
{
    memset(out, 0, sizeof(*out));
    out->ir_version = m->ir_version;
    out->opset = m->opset;
    out->producer = m->producer;
    out->node_count = m->g.n_nodes;
    out->live_node_count = m->planned ? m->live_nodes : m->g.n_nodes;
    out->param_count = m->param_count;
    out->param_size = m->param_size;
    out->weights_copied = m->weights_copied + m->weights_late;
    out->arena_size = m->planned ? m->act_size : 0;
    out->work = m->planned ? m->work : 0;
    out->isa = m->isa->name;
    out->precision = m->qk != NULL ? "int8" : m->hk != NULL ? "bf16" : "f32";
    out->threads = m->threads;
    out->packed_size = m->planned ? m->pack_size : 0;
    return COFFER_OK;
}

const char *coffer_nn_model_metadata(const struct coffer_nn_model *m, const char *key)
{
    for (const struct nn_meta *e = m->meta; e != NULL; e = e->next) /* last first */
        if (strcmp(e->key, key) == 0)
            return e->value;
    return NULL;
}

enum coffer_err coffer_nn_model_metadata_each(const struct coffer_nn_model *m,
                                              void (*fn)(const char *key, const char *value, void *arg), void *arg)
{
    /* the list is last-first: an array of it, walked backwards */
    const struct nn_meta **v = coffer_calloc(m->n_meta ? m->n_meta : 1, sizeof(*v));
    if (v == NULL)
        return COFFER_E_NOMEM;
    size_t n = 0;
    for (const struct nn_meta *e = m->meta; e != NULL && n < m->n_meta; e = e->next)
        v[n++] = e;
    while (n > 0) {
        n--;
        fn(v[n]->key, v[n]->value, arg);
    }
    coffer_free(v);
    return COFFER_OK;
}

void coffer_nn_model_ops(const struct coffer_nn_model *m, void (*fn)(const char *op_type, size_t count, void *arg),
                         void *arg)
{
    size_t counts[NN_OP_COUNT] = {0};
    int order[NN_OP_COUNT];
    int n_order = 0;
    for (size_t i = 0; i < m->g.n_nodes; i++) {
        int op = m->g.nodes[i].op;
        if (counts[op]++ == 0)
            order[n_order++] = op;
    }
    for (int i = 0; i < n_order; i++)
        fn(nn_op_get(order[i])->name, counts[order[i]], arg);
}

void coffer_nn_model_set_profiling(struct coffer_nn_model *m, bool on)
{
    coffer_free(m->prof_ns);
    m->prof_ns = on ? coffer_calloc(m->g.n_nodes + 1, sizeof(uint64_t)) : NULL;
    m->prof_runs = 0;
}

void coffer_nn_model_profile(const struct coffer_nn_model *m,
                             void (*fn)(const struct coffer_nn_node_time *t, void *arg), void *arg)
{
    if (m->prof_ns == NULL || m->prof_runs == 0)
        return;
    for (size_t i = 0; i < m->g.n_nodes; i++) {
        const struct nn_node *n = &m->g.nodes[i];
        if (!n->live || n->skip || n->by_prev) /* (by_prev: timed with the node before it) */
            continue;
        struct coffer_nn_node_time t = {
            .name = n->name ? n->name : "",
            .index = i,
            .op_type = n->op_type ? n->op_type : nn_op_get(n->op)->name,
            .kernel = nn_fast_kernel(n),
            .ms = (double)m->prof_ns[i] / 1e6 / (double)m->prof_runs,
            .work = n->work + (n->with_next >= 0 ? m->g.nodes[n->with_next].work : 0.0),
            .runs = m->prof_runs,
        };
        fn(&t, arg);
    }
}
