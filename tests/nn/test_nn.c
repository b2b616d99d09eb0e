/*
 * test_nn.c — the inference runtime through its public header: models
 * built here byte by byte (a small protobuf writer), known answers for the
 * kernels, dynamic batch, constant folding, malformed and unsupported
 * models with the errors they must give, mutation of a good model, tensor
 * files, allocation faults. The conformance run over the ONNX backend test
 * data lives in test_conformance.c, the fast kernels against the reference
 * ones in test_kernels.c; main is here. COFFER_NN_TEST_FILTER runs only the
 * tests whose names match (CTest runs the conformance once per ISA).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/nn.h"
#include "nn_writer.h"

/* ------------------------------------------------------- protobuf writer */

void pb_key(struct coffer_buf *b, unsigned f, unsigned w)
{
    assert_int_equal(coffer_buf_put_varint(b, (uint64_t)f << 3 | w), COFFER_OK);
}

void pb_int(struct coffer_buf *b, unsigned f, int64_t v)
{
    pb_key(b, f, 0);
    assert_int_equal(coffer_buf_put_varint(b, (uint64_t)v), COFFER_OK);
}

void pb_bytes(struct coffer_buf *b, unsigned f, const void *p, size_t n)
{
    pb_key(b, f, 2);
    assert_int_equal(coffer_buf_put_varint(b, n), COFFER_OK);
    assert_int_equal(coffer_buf_put(b, p, n), COFFER_OK);
}

void pb_str(struct coffer_buf *b, unsigned f, const char *s) { pb_bytes(b, f, s, strlen(s)); }

void pb_msg(struct coffer_buf *b, unsigned f, struct coffer_buf *sub)
{
    pb_bytes(b, f, sub->data, sub->size);
    coffer_buf_free(sub);
}

void pb_float(struct coffer_buf *b, unsigned f, float v)
{
    uint32_t w;
    memcpy(&w, &v, 4);
    pb_key(b, f, 5);
    assert_int_equal(coffer_buf_put_u32le(b, w), COFFER_OK);
}

/* A TensorProto: float data as raw_data, int64 data as int64_data. */
void tensor(struct coffer_buf *out, unsigned field, const char *name, int dtype, int rank, const int64_t *dims,
                   const void *data, size_t count)
{
    struct coffer_buf t;
    coffer_buf_init(&t, 0, false);
    for (int i = 0; i < rank; i++)
        pb_int(&t, 1, dims[i]);
    pb_int(&t, 2, dtype);
    if (name)
        pb_str(&t, 8, name);
    if (dtype == COFFER_NN_INT64) {
        for (size_t i = 0; i < count; i++)
            pb_int(&t, 7, ((const int64_t *)data)[i]);
    } else {
        pb_bytes(&t, 9, data, count * coffer_nn_dtype_size(dtype));
    }
    pb_msg(out, field, &t);
}

/* A ValueInfoProto; dims < 0 are written as dim_param "N". */
void value_info(struct coffer_buf *g, unsigned field, const char *name, int dtype, int rank, const int64_t *dims)
{
    struct coffer_buf vi, tp, tt, sh;
    coffer_buf_init(&vi, 0, false);
    coffer_buf_init(&tp, 0, false);
    coffer_buf_init(&tt, 0, false);
    coffer_buf_init(&sh, 0, false);
    for (int i = 0; i < rank; i++) {
        struct coffer_buf d;
        coffer_buf_init(&d, 0, false);
        if (dims[i] < 0)
            pb_str(&d, 2, "N");
        else
            pb_int(&d, 1, dims[i]);
        pb_msg(&sh, 1, &d);
    }
    pb_int(&tt, 1, dtype);
    pb_msg(&tt, 2, &sh);
    pb_msg(&tp, 1, &tt);
    pb_str(&vi, 1, name);
    pb_msg(&vi, 2, &tp);
    pb_msg(g, field, &vi);
}

void node(struct coffer_buf *g, const char *op, const char *name, const char *const *ins, int nin,
                 const char *const *outs, int nout, const struct attr_spec *attrs, int nattr)
{
    struct coffer_buf n;
    coffer_buf_init(&n, 0, false);
    for (int i = 0; i < nin; i++)
        pb_str(&n, 1, ins[i]);
    for (int i = 0; i < nout; i++)
        pb_str(&n, 2, outs[i]);
    if (name)
        pb_str(&n, 3, name);
    pb_str(&n, 4, op);
    for (int i = 0; i < nattr; i++) {
        struct coffer_buf a;
        coffer_buf_init(&a, 0, false);
        pb_str(&a, 1, attrs[i].name);
        if (attrs[i].type == 1)
            pb_float(&a, 2, attrs[i].f);
        else if (attrs[i].type == 2)
            pb_int(&a, 3, attrs[i].i);
        else if (attrs[i].type == 3)
            pb_str(&a, 4, attrs[i].s);
        else
            for (size_t k = 0; k < attrs[i].n; k++)
                pb_int(&a, 8, attrs[i].ints[k]);
        pb_int(&a, 20, attrs[i].type);
        pb_msg(&n, 5, &a);
    }
    pb_msg(g, 1, &n);
}

/* Wrap a graph into a ModelProto with one default-domain opset. */
uint8_t *model(struct coffer_buf *g, int opset, size_t *size)
{
    struct coffer_buf m, os;
    coffer_buf_init(&m, 0, false);
    coffer_buf_init(&os, 0, false);
    pb_int(&m, 1, 8);
    pb_str(&m, 2, "coffer-test");
    pb_str(&os, 1, "");
    pb_int(&os, 2, opset);
    pb_msg(&m, 8, &os);
    pb_msg(&m, 7, g);
    return coffer_buf_steal(&m, size);
}

/* Y = Relu(X @ W + B), X [N, 3] with a symbolic batch. */
static uint8_t *mlp_model(size_t *size)
{
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    static const float w[6] = {1, -1, 2, 0.5f, -3, 1};
    static const float b[2] = {0.5f, -1};
    node(&g, "MatMul", "mm", (const char *[]){"X", "W"}, 2, (const char *[]){"XW"}, 1, NULL, 0);
    node(&g, "Add", "add", (const char *[]){"XW", "B"}, 2, (const char *[]){"Z"}, 1, NULL, 0);
    node(&g, "Relu", "relu", (const char *[]){"Z"}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    pb_str(&g, 2, "mlp");
    tensor(&g, 5, "W", COFFER_NN_FLOAT, 2, (int64_t[]){3, 2}, w, 6);
    tensor(&g, 5, "B", COFFER_NN_FLOAT, 1, (int64_t[]){2}, b, 2);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 2, (int64_t[]){-1, 3});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 2, (int64_t[]){-1, 2});
    return model(&g, 13, size);
}

static void mlp_ref(const float *x, float *y)
{
    static const float w[6] = {1, -1, 2, 0.5f, -3, 1};
    static const float b[2] = {0.5f, -1};
    for (int j = 0; j < 2; j++) {
        float s = b[j];
        for (int k = 0; k < 3; k++)
            s += x[k] * w[k * 2 + j];
        y[j] = s > 0 ? s : 0;
    }
}

static struct coffer_nn_tensor ftensor(float *data, int rank, const int64_t *dims)
{
    struct coffer_nn_tensor t = {.dtype = COFFER_NN_FLOAT, .rank = rank, .data = data};
    memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
    t.size = coffer_nn_tensor_count(&t) * 4;
    return t;
}

/* ------------------------------------------------------------------ tests */

static void meta_collect(const char *key, const char *value, void *arg)
{
    struct coffer_buf *b = arg;
    assert_int_equal(coffer_buf_printf(b, "%s=%s;", key, value), COFFER_OK);
}

/* ModelProto.metadata_props (field 14, key 1 / value 2): looked up by key
 * (a key given twice: the last), listed in file order; a value may be long
 * (a label list); a wrong wire type or a NUL in a string is refused. */
static void test_metadata_props(void **state)
{
    (void)state;
    size_t size;
    uint8_t *base = mlp_model(&size);
    struct coffer_buf m, e;
    coffer_buf_init(&m, 0, false);
    coffer_buf_init(&e, 0, false);
    assert_int_equal(coffer_buf_put(&m, base, size), COFFER_OK);
    const char *kv[][2] = {{"a", "1"}, {"labels", NULL}, {"a", "2"}, {"", "empty key"}};
    char *long_value = malloc(100001);
    assert_non_null(long_value);
    memset(long_value, 'x', 100000);
    long_value[100000] = '\0';
    kv[1][1] = long_value;
    for (size_t i = 0; i < 4; i++) {
        coffer_buf_reset(&e);
        pb_str(&e, 1, kv[i][0]);
        pb_str(&e, 2, kv[i][1]);
        pb_msg(&m, 14, &e);
    }
    struct coffer_nn_model *nn;
    assert_int_equal(coffer_nn_model_load(m.data, m.size, &nn), COFFER_OK);
    assert_string_equal(coffer_nn_model_metadata(nn, "a"), "2");
    assert_string_equal(coffer_nn_model_metadata(nn, "labels"), long_value);
    assert_string_equal(coffer_nn_model_metadata(nn, ""), "empty key");
    assert_null(coffer_nn_model_metadata(nn, "b"));
    struct coffer_buf seen;
    coffer_buf_init(&seen, 0, false);
    assert_int_equal(coffer_nn_model_metadata_each(nn, meta_collect, &seen), COFFER_OK);
    assert_int_equal(coffer_buf_put_u8(&seen, 0), COFFER_OK);
    assert_non_null(strstr((const char *)seen.data, "a=1;labels=xxx"));
    assert_non_null(strstr((const char *)seen.data, ";a=2;=empty key;"));
    coffer_buf_free(&seen);
    coffer_nn_model_free(nn);
    /* no metadata: nothing found, nothing listed */
    assert_int_equal(coffer_nn_model_load(base, size, &nn), COFFER_OK);
    assert_null(coffer_nn_model_metadata(nn, "a"));
    coffer_nn_model_free(nn);
    /* an entry that is not a message, and a value with a NUL */
    size_t at = m.size;
    pb_int(&m, 14, 5);
    assert_int_equal(coffer_nn_model_load(m.data, m.size, &nn), COFFER_E_MALFORMED);
    m.size = at;
    coffer_buf_reset(&e);
    pb_str(&e, 1, "k");
    pb_bytes(&e, 2, "a\0b", 3);
    pb_msg(&m, 14, &e);
    assert_int_equal(coffer_nn_model_load(m.data, m.size, &nn), COFFER_E_MALFORMED);
    assert_non_null(strstr(coffer_err_detail(), "metadata_props.value"));
    free(long_value);
    coffer_buf_free(&e);
    coffer_buf_free(&m);
    coffer_free(base);
}

static void test_mlp_dynamic_batch(void **state)
{
    (void)state;
    size_t size;
    uint8_t *bytes = mlp_model(&size);
    struct coffer_nn_model *m;
    assert_int_equal(coffer_nn_model_load(bytes, size, &m), COFFER_OK);
    struct coffer_nn_value_info vi;
    assert_int_equal(coffer_nn_model_input(m, 0, &vi), COFFER_OK);
    assert_string_equal(vi.name, "X");
    assert_int_equal(vi.rank, 2);
    assert_int_equal(vi.dims[0], -1);
    assert_int_equal(coffer_nn_model_input(m, 1, &vi), COFFER_E_RANGE);
    struct coffer_nn_info info;
    assert_int_equal(coffer_nn_model_info(m, &info), COFFER_OK);
    assert_int_equal(info.param_count, 8);
    assert_int_equal(info.opset, 13);
    size_t arena1 = info.arena_size;
    assert_true(arena1 > 0);
    assert_float_equal(info.work, 1 * 2 * (3 + 1) + 2 + 2, 0); /* MatMul, Add, Relu at batch 1 */

    for (int batch = 1; batch <= 5; batch += 2) {
        float x[15], want[10];
        for (int i = 0; i < batch * 3; i++)
            x[i] = (float)((i * 7) % 5) - 2.0f + 0.25f * (float)i;
        for (int r = 0; r < batch; r++)
            mlp_ref(x + 3 * r, want + 2 * r);
        struct coffer_nn_tensor in = ftensor(x, 2, (int64_t[]){batch, 3}), out;
        assert_int_equal(coffer_nn_model_run(m, &in, 1, &out, 1), COFFER_OK);
        assert_int_equal(out.rank, 2);
        assert_int_equal(out.dims[0], batch);
        assert_int_equal(out.dims[1], 2);
        for (int i = 0; i < batch * 2; i++)
            assert_float_equal(((float *)out.data)[i], want[i], 1e-5);
    }
    /* a batch of 64 needs a bigger arena: the plan follows the shapes */
    float *xb = calloc(64 * 3, sizeof(float));
    struct coffer_nn_tensor inb = ftensor(xb, 2, (int64_t[]){64, 3}), outb;
    assert_int_equal(coffer_nn_model_run(m, &inb, 1, &outb, 1), COFFER_OK);
    assert_int_equal(outb.dims[0], 64);
    free(xb);
    assert_int_equal(coffer_nn_model_info(m, &info), COFFER_OK);
    assert_true(info.arena_size > arena1);

    /* wrong dtype, rank, fixed dimension, size */
    int64_t xi[3] = {0};
    struct coffer_nn_tensor bad = {.dtype = COFFER_NN_INT64, .rank = 2, .dims = {1, 3}, .data = xi, .size = 24};
    struct coffer_nn_tensor out;
    assert_int_equal(coffer_nn_model_run(m, &bad, 1, &out, 1), COFFER_E_INVALID_ARG);
    float xf[6] = {0};
    bad = ftensor(xf, 1, (int64_t[]){3});
    assert_int_equal(coffer_nn_model_run(m, &bad, 1, &out, 1), COFFER_E_SHAPE);
    bad = ftensor(xf, 2, (int64_t[]){1, 4});
    assert_int_equal(coffer_nn_model_run(m, &bad, 1, &out, 1), COFFER_E_SHAPE);
    bad = ftensor(xf, 2, (int64_t[]){2, 3});
    bad.size = 8;
    assert_int_equal(coffer_nn_model_run(m, &bad, 1, &out, 1), COFFER_E_INVALID_ARG);
    assert_int_equal(coffer_nn_model_run(m, &bad, 2, &out, 1), COFFER_E_INVALID_ARG);
    coffer_nn_model_free(m);
    coffer_free(bytes);
}

/* One-node model with float input X of shape xd and output Y. */
static uint8_t *one_node(const char *op, int xrank, const int64_t *xd, const struct attr_spec *attrs, int nattr,
                         const char *extra_name, int extra_rank, const int64_t *extra_dims, const float *extra,
                         size_t *size)
{
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    int nin = extra_name ? 2 : 1;
    node(&g, op, "the_node", (const char *[]){"X", extra_name ? extra_name : ""}, nin, (const char *[]){"Y"}, 1,
         attrs, nattr);
    pb_str(&g, 2, "g");
    if (extra_name) {
        size_t n = 1;
        for (int i = 0; i < extra_rank; i++)
            n *= (size_t)extra_dims[i];
        tensor(&g, 5, extra_name, COFFER_NN_FLOAT, extra_rank, extra_dims, extra, n);
    }
    value_info(&g, 11, "X", COFFER_NN_FLOAT, xrank, xd);
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 0, NULL);
    return model(&g, 13, size);
}

static void run1(const uint8_t *bytes, size_t size, float *x, int xrank, const int64_t *xd,
                 struct coffer_nn_model **m, struct coffer_nn_tensor *out)
{
    enum coffer_err r = coffer_nn_model_load(bytes, size, m);
    if (r != COFFER_OK)
        fail_msg("load: %s", coffer_err_detail());
    struct coffer_nn_tensor in = ftensor(x, xrank, xd);
    assert_int_equal(coffer_nn_model_run(*m, &in, 1, out, 1), COFFER_OK);
}

static void test_kernels_known_answers(void **state)
{
    (void)state;
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int64_t xd[4] = {1, 1, 3, 3};
    float w[4] = {1, 1, 1, 1};
    size_t size;
    struct coffer_nn_model *m;
    struct coffer_nn_tensor out;

    /* Conv 2x2 of ones, no padding: window sums */
    uint8_t *b = one_node("Conv", 4, xd, NULL, 0, "W", 4, (int64_t[]){1, 1, 2, 2}, w, &size);
    run1(b, size, x, 4, xd, &m, &out);
    assert_int_equal(out.dims[2], 2);
    float conv[4] = {12, 16, 24, 28};
    for (int i = 0; i < 4; i++)
        assert_float_equal(((float *)out.data)[i], conv[i], 1e-6);
    coffer_nn_model_free(m);
    coffer_free(b);

    /* Conv with pads 1 and stride 2: corners see one 2x2 window each */
    struct attr_spec pads[] = {{"pads", 7, 0, 0, (int64_t[]){1, 1, 1, 1}, 4}, {"strides", 7, 0, 0, (int64_t[]){2, 2}, 2}};
    b = one_node("Conv", 4, xd, pads, 2, "W", 4, (int64_t[]){1, 1, 2, 2}, w, &size);
    run1(b, size, x, 4, xd, &m, &out);
    assert_int_equal(out.dims[2], 2);
    float convp[4] = {1, 5, 11, 28};
    for (int i = 0; i < 4; i++)
        assert_float_equal(((float *)out.data)[i], convp[i], 1e-6);
    coffer_nn_model_free(m);
    coffer_free(b);

    /* MaxPool 2x2 stride 1 and AveragePool with count_include_pad */
    struct attr_spec k2[] = {{"kernel_shape", 7, 0, 0, (int64_t[]){2, 2}, 2}};
    b = one_node("MaxPool", 4, xd, k2, 1, NULL, 0, NULL, NULL, &size);
    run1(b, size, x, 4, xd, &m, &out);
    float mp[4] = {5, 6, 8, 9};
    for (int i = 0; i < 4; i++)
        assert_float_equal(((float *)out.data)[i], mp[i], 0);
    coffer_nn_model_free(m);
    coffer_free(b);
    struct attr_spec ap[] = {{"kernel_shape", 7, 0, 0, (int64_t[]){2, 2}, 2}, {"pads", 7, 0, 0, (int64_t[]){1, 1, 0, 0}, 4},
                             {"count_include_pad", 2, 0, 1, NULL, 0}};
    b = one_node("AveragePool", 4, xd, ap, 3, NULL, 0, NULL, NULL, &size);
    run1(b, size, x, 4, xd, &m, &out);
    assert_int_equal(out.dims[3], 3);
    assert_float_equal(((float *)out.data)[0], 0.25f, 1e-6);      /* (0+0+0+1)/4 */
    assert_float_equal(((float *)out.data)[4], 3.0f, 1e-6);       /* (1+2+4+5)/4 */
    coffer_nn_model_free(m);
    coffer_free(b);

    /* Softmax over the last axis sums to one and keeps order */
    float s[6] = {1, 2, 3, -1, 0, 1000};
    int64_t sd[2] = {2, 3};
    b = one_node("Softmax", 2, sd, NULL, 0, NULL, 0, NULL, NULL, &size);
    run1(b, size, s, 2, sd, &m, &out);
    const float *o = out.data;
    assert_float_equal(o[0] + o[1] + o[2], 1.0f, 1e-6);
    assert_float_equal(o[2], expf(1) / (expf(-2) + expf(-1) + expf(0)) / expf(1), 1e-6);
    assert_float_equal(o[5], 1.0f, 1e-6); /* no overflow for large inputs */
    coffer_nn_model_free(m);
    coffer_free(b);

    /* Transpose, Gemm with transB and broadcast C */
    b = one_node("Transpose", 2, sd, NULL, 0, NULL, 0, NULL, NULL, &size);
    run1(b, size, s, 2, sd, &m, &out);
    assert_int_equal(out.dims[0], 3);
    assert_float_equal(((float *)out.data)[1], -1.0f, 0);
    assert_float_equal(((float *)out.data)[2], 2.0f, 0);
    coffer_nn_model_free(m);
    coffer_free(b);
    float bm[6] = {1, 0, 0, 0, 1, 1}; /* B [2, 3]; transB: Y = X @ B^T */
    struct attr_spec tb[] = {{"transB", 2, 0, 1, NULL, 0}, {"alpha", 1, 2.0f, 0, NULL, 0}};
    b = one_node("Gemm", 2, sd, tb, 2, "Bm", 2, (int64_t[]){2, 3}, bm, &size);
    run1(b, size, s, 2, sd, &m, &out);
    assert_int_equal(out.dims[1], 2);
    float gm[4] = {2, 10, -2, 2000};
    for (int i = 0; i < 4; i++)
        assert_float_equal(((float *)out.data)[i], gm[i], 1e-4);
    coffer_nn_model_free(m);
    coffer_free(b);
}

/* X [N,2,3] -> Shape -> Gather(0) -> Unsqueeze -> Concat([-1]... ) -> Reshape: [N, 6].
 * Everything but the Reshape folds away for a known batch. */
static uint8_t *reshape_chain_model(size_t *size)
{
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    int64_t zero = 0, minus1[1] = {-1}, ax0[1] = {0};
    node(&g, "Shape", "s", (const char *[]){"X"}, 1, (const char *[]){"sh"}, 1, NULL, 0);
    node(&g, "Gather", "g", (const char *[]){"sh", "i0"}, 2, (const char *[]){"n"}, 1, NULL, 0);
    node(&g, "Unsqueeze", "u", (const char *[]){"n", "ax"}, 2, (const char *[]){"n1"}, 1, NULL, 0);
    struct attr_spec cat[] = {{"axis", 2, 0, 0, NULL, 0}};
    node(&g, "Concat", "c", (const char *[]){"n1", "m1"}, 2, (const char *[]){"shape"}, 1, cat, 1);
    node(&g, "Reshape", "r", (const char *[]){"X", "shape"}, 2, (const char *[]){"Y"}, 1, NULL, 0);
    node(&g, "Relu", "dead", (const char *[]){"X"}, 1, (const char *[]){"unused"}, 1, NULL, 0);
    pb_str(&g, 2, "chain");
    tensor(&g, 5, "i0", COFFER_NN_INT64, 0, NULL, &zero, 1);
    tensor(&g, 5, "ax", COFFER_NN_INT64, 1, (int64_t[]){1}, ax0, 1);
    tensor(&g, 5, "m1", COFFER_NN_INT64, 1, (int64_t[]){1}, minus1, 1);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 3, (int64_t[]){-1, 2, 3});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 2, (int64_t[]){-1, 6});
    return model(&g, 13, size);
}

static void test_folding_and_dead_nodes(void **state)
{
    (void)state;
    size_t size;
    uint8_t *b = reshape_chain_model(&size);
    struct coffer_nn_model *m;
    assert_int_equal(coffer_nn_model_load(b, size, &m), COFFER_OK);
    struct coffer_nn_info info;
    assert_int_equal(coffer_nn_model_info(m, &info), COFFER_OK);
    assert_int_equal(info.node_count, 6);
    assert_int_equal(info.live_node_count, 1);
    float x[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)i;
    struct coffer_nn_tensor in = ftensor(x, 3, (int64_t[]){4, 2, 3}), out;
    assert_int_equal(coffer_nn_model_run(m, &in, 1, &out, 1), COFFER_OK);
    assert_int_equal(out.rank, 2);
    assert_int_equal(out.dims[0], 4);
    assert_int_equal(out.dims[1], 6);
    assert_memory_equal(out.data, x, sizeof(x));
    coffer_nn_model_free(m);
    coffer_free(b);
}

static void expect_load(const uint8_t *b, size_t size, enum coffer_err want, const char *const *needles)
{
    struct coffer_nn_model *m = (void *)1;
    enum coffer_err r = coffer_nn_model_load(b, size, &m);
    if (r == COFFER_OK && want == COFFER_OK) {
        coffer_nn_model_free(m);
        return;
    }
    if (r != want)
        fail_msg("load gave %s (%s), expected %s", coffer_err_name(r), coffer_err_detail(), coffer_err_name(want));
    assert_null(m);
    for (; needles && *needles; needles++)
        if (strstr(coffer_err_detail(), *needles) == NULL)
            fail_msg("detail '%s' lacks '%s'", coffer_err_detail(), *needles);
}

static void test_malformed_and_unsupported(void **state)
{
    (void)state;
    size_t size;
    struct coffer_buf g;
    uint8_t *b;

    /* unsupported op: op, domain, opset and node named */
    coffer_buf_init(&g, 0, false);
    node(&g, "FancyOp", "node7", (const char *[]){"X"}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 1, (int64_t[]){2});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 1, (int64_t[]){2});
    b = model(&g, 13, &size);
    expect_load(b, size, COFFER_E_UNSUPPORTED, (const char *[]){"FancyOp", "ai.onnx", "opset 13", "node7", NULL});
    coffer_free(b);

    /* opset out of range */
    b = mlp_model(&size);
    expect_load(b, size, COFFER_OK, NULL);
    coffer_free(b);
    coffer_buf_init(&g, 0, false);
    node(&g, "Relu", "r", (const char *[]){"X"}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 1, (int64_t[]){2});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 1, (int64_t[]){2});
    b = model(&g, 18, &size);
    expect_load(b, size, COFFER_E_UNSUPPORTED, (const char *[]){"opset 18", NULL});
    coffer_free(b);

    /* an input read before it is defined */
    coffer_buf_init(&g, 0, false);
    node(&g, "Relu", "r2", (const char *[]){"T"}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    node(&g, "Relu", "r1", (const char *[]){"X"}, 1, (const char *[]){"T"}, 1, NULL, 0);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 1, (int64_t[]){2});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 1, (int64_t[]){2});
    b = model(&g, 13, &size);
    expect_load(b, size, COFFER_E_MALFORMED, (const char *[]){"r2", "'T'", NULL});
    coffer_free(b);

    /* external data */
    coffer_buf_init(&g, 0, false);
    node(&g, "Add", "a", (const char *[]){"X", "W"}, 2, (const char *[]){"Y"}, 1, NULL, 0);
    {
        struct coffer_buf t;
        coffer_buf_init(&t, 0, false);
        pb_int(&t, 1, 2);
        pb_int(&t, 2, COFFER_NN_FLOAT);
        pb_str(&t, 8, "W");
        pb_int(&t, 14, 1);
        pb_msg(&g, 5, &t);
    }
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 1, (int64_t[]){2});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 1, (int64_t[]){2});
    b = model(&g, 13, &size);
    expect_load(b, size, COFFER_E_UNSUPPORTED, (const char *[]){"external", NULL});
    coffer_free(b);

    /* unsupported dtype, shapes that do not fit, element count caps, raw_data size */
    coffer_buf_init(&g, 0, false);
    node(&g, "Relu", "r", (const char *[]){"X"}, 1, (const char *[]){"Y"}, 1, NULL, 0);
    value_info(&g, 11, "X", COFFER_NN_DOUBLE, 1, (int64_t[]){2});
    value_info(&g, 12, "Y", COFFER_NN_DOUBLE, 1, (int64_t[]){2});
    b = model(&g, 13, &size);
    expect_load(b, size, COFFER_E_UNSUPPORTED, (const char *[]){"float64", NULL});
    coffer_free(b);

    float w[6] = {0};
    coffer_buf_init(&g, 0, false);
    node(&g, "MatMul", "mm", (const char *[]){"X", "W"}, 2, (const char *[]){"Y"}, 1, NULL, 0);
    tensor(&g, 5, "W", COFFER_NN_FLOAT, 2, (int64_t[]){2, 3}, w, 6);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 2, (int64_t[]){1, 3});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 0, NULL);
    b = model(&g, 13, &size);
    expect_load(b, size, COFFER_E_SHAPE, (const char *[]){"mm", "MatMul", NULL});
    coffer_free(b);

    coffer_buf_init(&g, 0, false);
    node(&g, "Add", "a", (const char *[]){"X", "W"}, 2, (const char *[]){"Y"}, 1, NULL, 0);
    tensor(&g, 5, "W", COFFER_NN_FLOAT, 3, (int64_t[]){1 << 20, 1 << 20, 1 << 20}, w, 0);
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 1, (int64_t[]){2});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 0, NULL);
    b = model(&g, 13, &size);
    expect_load(b, size, COFFER_E_TOO_LARGE, (const char *[]){"'W'", NULL});
    coffer_free(b);

    coffer_buf_init(&g, 0, false);
    node(&g, "Add", "a", (const char *[]){"X", "W"}, 2, (const char *[]){"Y"}, 1, NULL, 0);
    tensor(&g, 5, "W", COFFER_NN_FLOAT, 1, (int64_t[]){3}, w, 2); /* 8 bytes for 3 floats */
    value_info(&g, 11, "X", COFFER_NN_FLOAT, 1, (int64_t[]){3});
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 0, NULL);
    b = model(&g, 13, &size);
    expect_load(b, size, COFFER_E_MALFORMED, (const char *[]){"raw_data", NULL});
    coffer_free(b);

    /* not protobuf at all; empty */
    expect_load((const uint8_t *)"\xff\xff\xff", 3, COFFER_E_TRUNCATED, NULL);
    expect_load((const uint8_t *)"\x0f\x00", 2, COFFER_E_MALFORMED, (const char *[]){"wire type 7", NULL});
    expect_load((const uint8_t *)"\x3a\x05\x0a", 3, COFFER_E_TRUNCATED, NULL); /* graph claims 5 bytes */
    expect_load((const uint8_t *)"", 0, COFFER_E_MALFORMED, (const char *[]){"no graph", NULL});
}

/* Every truncation and every single-bit flip of a good model either loads
 * (and then runs) or fails with an error: never a crash, leak or hang. */
static void test_mutations(void **state)
{
    (void)state;
    size_t size;
    uint8_t *good = reshape_chain_model(&size);
    uint8_t *b = malloc(size);
    float x[24] = {0};
    int loaded = 0, failed = 0;
    for (size_t cut = 0; cut < size; cut++) {
        struct coffer_nn_model *m;
        if (coffer_nn_model_load(good, cut, &m) == COFFER_OK) {
            coffer_nn_model_free(m);
            loaded++;
        } else {
            failed++;
        }
    }
    for (size_t i = 0; i < size * 8; i++) {
        memcpy(b, good, size);
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
        struct coffer_nn_model *m;
        if (coffer_nn_model_load(b, size, &m) != COFFER_OK) {
            failed++;
            continue;
        }
        loaded++;
        struct coffer_nn_tensor in = ftensor(x, 3, (int64_t[]){4, 2, 3}), out[4];
        size_t nout = coffer_nn_model_output_count(m);
        if (coffer_nn_model_input_count(m) == 1 && nout <= 4) {
            enum coffer_err r = coffer_nn_model_run(m, &in, 1, out, nout);
            assert_true(r <= 0); /* success or an error code, never a crash */
        }
        coffer_nn_model_free(m);
    }
    assert_true(failed > 0);
    assert_true(loaded > 0);
    free(b);
    coffer_free(good);
}

static void test_tensor_files(void **state)
{
    (void)state;
    float v[6] = {1.5f, -2, 3, 4, 5, 6};
    struct coffer_nn_tensor t = ftensor(v, 2, (int64_t[]){2, 3}), back;
    struct coffer_buf b;
    coffer_buf_init(&b, 0, false);
    assert_int_equal(coffer_nn_tensor_write_pb(&t, "x", &b), COFFER_OK);
    char *name;
    assert_int_equal(coffer_nn_tensor_read_pb(b.data, b.size, &back, &name), COFFER_OK);
    assert_string_equal(name, "x");
    coffer_free(name);
    assert_int_equal(back.rank, 2);
    assert_int_equal(back.dims[1], 3);
    assert_memory_equal(back.data, v, sizeof(v));
    coffer_nn_tensor_release(&back);
    coffer_buf_reset(&b);
    assert_int_equal(coffer_nn_tensor_write_npy(&t, &b), COFFER_OK);
    assert_int_equal(b.size % 64, 24 % 64); /* header padded to 64, then 24 data bytes */
    assert_int_equal(coffer_nn_tensor_read_any(b.data, b.size, &back), COFFER_OK);
    assert_int_equal(back.dtype, COFFER_NN_FLOAT);
    assert_int_equal(back.dims[0], 2);
    assert_memory_equal(back.data, v, sizeof(v));
    coffer_nn_tensor_release(&back);
    /* every truncation of the .npy fails cleanly */
    for (size_t cut = 0; cut < b.size; cut++)
        assert_int_not_equal(coffer_nn_tensor_read_npy(b.data, cut, &back), COFFER_OK);
    coffer_buf_free(&b);
    const char bad[] = "\x93NUMPY\x01\x00\x30\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }    \n";
    assert_int_equal(coffer_nn_tensor_read_npy(bad, sizeof(bad) - 1, &back), COFFER_E_UNSUPPORTED);
}

static enum coffer_err fault_body(void *arg)
{
    const struct coffer_buf *mb = arg;
    struct coffer_nn_model *m;
    enum coffer_err r = coffer_nn_model_load(mb->data, mb->size, &m);
    if (r != COFFER_OK)
        return r;
    float x[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    struct coffer_nn_tensor in = ftensor(x, 2, (int64_t[]){4, 3}), out;
    r = coffer_nn_model_run(m, &in, 1, &out, 1); /* re-plans for batch 4 */
    coffer_nn_model_free(m);
    return r;
}

static void test_alloc_faults(void **state)
{
    (void)state;
    struct coffer_buf mb;
    coffer_buf_init(&mb, 0, false);
    mb.data = mlp_model(&mb.size);
    tu_fault_loop(fault_body, &mb);
    coffer_free(mb.data);
}

/* Einsum: Y = einsum(eq, X, W) with W an initializer. */
static void einsum_case(const char *eq, float *x, int xr, const int64_t *xd, const float *w, int wr, const int64_t *wd,
                        const float *want, size_t nwant)
{
    struct coffer_buf g;
    coffer_buf_init(&g, 0, false);
    struct attr_spec a[] = {{"equation", 3, 0, 0, NULL, 0, eq}};
    int nin = w ? 2 : 1;
    node(&g, "Einsum", "e", (const char *[]){"X", "W"}, nin, (const char *[]){"Y"}, 1, a, 1);
    if (w) {
        size_t n = 1;
        for (int i = 0; i < wr; i++)
            n *= (size_t)wd[i];
        tensor(&g, 5, "W", COFFER_NN_FLOAT, wr, wd, w, n);
    }
    value_info(&g, 11, "X", COFFER_NN_FLOAT, xr, xd);
    value_info(&g, 12, "Y", COFFER_NN_FLOAT, 0, NULL);
    size_t size;
    uint8_t *b = model(&g, 13, &size);
    struct coffer_nn_model *m;
    struct coffer_nn_tensor out;
    run1(b, size, x, xr, xd, &m, &out);
    assert_int_equal(coffer_nn_tensor_count(&out), nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_float_equal(((float *)out.data)[i], want[i], 1e-5);
    coffer_nn_model_free(m);
    coffer_free(b);
}

static void test_einsum(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6}; /* [2, 3] */
    float w[6] = {1, 0, 0, 1, 1, 1}; /* [3, 2] */
    int64_t xd[2] = {2, 3}, wd[2] = {3, 2};
    float mm[4] = {1 + 3, 2 + 3, 4 + 6, 5 + 6};
    einsum_case("ij,jk->ik", x, 2, xd, w, 2, wd, mm, 4);
    einsum_case("ij,jk", x, 2, xd, w, 2, wd, mm, 4); /* implicit output */
    float tr[6] = {1, 4, 2, 5, 3, 6};
    einsum_case("ij->ji", x, 2, xd, NULL, 0, NULL, tr, 6);
    float sum[1] = {21};
    einsum_case("ij->", x, 2, xd, NULL, 0, NULL, sum, 1);
    float sq[4] = {1, 2, 3, 4};
    float trace[1] = {5};
    einsum_case("ii->", sq, 2, (int64_t[]){2, 2}, NULL, 0, NULL, trace, 1);
    float diag[2] = {1, 4};
    einsum_case("ii->i", sq, 2, (int64_t[]){2, 2}, NULL, 0, NULL, diag, 2);
    /* batched: b=2 of [1,2]x[2,1] */
    float bx[4] = {1, 2, 3, 4}, bw[4] = {5, 6, 7, 8};
    float bm[2] = {1 * 5 + 2 * 6, 3 * 7 + 4 * 8};
    einsum_case("bij,bjk->bik", bx, 3, (int64_t[]){2, 1, 2}, bw, 3, (int64_t[]){2, 2, 1}, bm, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_dynamic_batch),
        cmocka_unit_test(test_metadata_props),
        cmocka_unit_test(test_kernels_known_answers),
        cmocka_unit_test(test_folding_and_dead_nodes),
        cmocka_unit_test(test_malformed_and_unsupported),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_tensor_files),
        cmocka_unit_test(test_alloc_faults),
        cmocka_unit_test(test_einsum),
        cmocka_unit_test(test_nn_conformance),
        cmocka_unit_test(test_kernels_gemm_avx2),
        cmocka_unit_test(test_kernels_gemm_avx512),
        cmocka_unit_test(test_kernels_conv_avx2),
        cmocka_unit_test(test_kernels_conv_avx512),
        cmocka_unit_test(test_kernels_blocked_avx512),
        cmocka_unit_test(test_kernels_tune_avx512),
        cmocka_unit_test(test_kernels_bf16_avx512),
        cmocka_unit_test(test_kernels_int8_avx512),
        cmocka_unit_test(test_kernels_gemm_ops_avx2),
        cmocka_unit_test(test_kernels_gemm_ops_avx512),
        cmocka_unit_test(test_kernels_pool_avx2),
        cmocka_unit_test(test_kernels_pool_avx512),
        cmocka_unit_test(test_kernels_isa_choice),
        cmocka_unit_test(test_kernels_deferred_weights),
        cmocka_unit_test(test_kernels_packs_kept),
        cmocka_unit_test(test_kernels_segment),
        cmocka_unit_test(test_nn_pool_solo),
        cmocka_unit_test(test_nn_pool_once),
    };
    if (getenv("COFFER_NN_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("COFFER_NN_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
