/*
 * nn_writer.h — the small protobuf writer the nn tests build models with
 * (defined in test_nn.c), and the test functions the other files of the
 * nn test binary define.
 */
#ifndef COFFER_TEST_NN_WRITER_H
#define COFFER_TEST_NN_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "coffer/base.h"

struct attr_spec {
    const char *name;
    int type; /* 1 float, 2 int, 3 string, 7 ints */
    float f;
    int64_t i;
    const int64_t *ints;
    size_t n;
    const char *s;
};

void pb_key(struct coffer_buf *b, unsigned f, unsigned w);
void pb_int(struct coffer_buf *b, unsigned f, int64_t v);
void pb_bytes(struct coffer_buf *b, unsigned f, const void *p, size_t n);
void pb_str(struct coffer_buf *b, unsigned f, const char *s);
void pb_msg(struct coffer_buf *b, unsigned f, struct coffer_buf *sub);
void pb_float(struct coffer_buf *b, unsigned f, float v);
/* A TensorProto: float data as raw_data, int64 data as int64_data. */
void tensor(struct coffer_buf *out, unsigned field, const char *name, int dtype, int rank, const int64_t *dims,
            const void *data, size_t count);
/* A ValueInfoProto; dims < 0 are written as dim_param "N". */
void value_info(struct coffer_buf *g, unsigned field, const char *name, int dtype, int rank, const int64_t *dims);
void node(struct coffer_buf *g, const char *op, const char *name, const char *const *ins, int nin,
          const char *const *outs, int nout, const struct attr_spec *attrs, int nattr);
/* Wrap a graph into a ModelProto with one default-domain opset. */
uint8_t *model(struct coffer_buf *g, int opset, size_t *size);

void test_nn_conformance(void **state);
void test_kernels_gemm_avx2(void **state);
void test_kernels_gemm_avx512(void **state);
void test_kernels_conv_avx2(void **state);
void test_kernels_conv_avx512(void **state);
void test_kernels_blocked_avx512(void **state);
void test_kernels_tune_avx512(void **state);
void test_kernels_bf16_avx512(void **state);
void test_kernels_int8_avx512(void **state);
void test_kernels_gemm_ops_avx2(void **state);
void test_kernels_gemm_ops_avx512(void **state);
void test_kernels_pool_avx2(void **state);
void test_kernels_pool_avx512(void **state);
void test_kernels_isa_choice(void **state);
void test_kernels_deferred_weights(void **state);
void test_kernels_packs_kept(void **state);
void test_kernels_segment(void **state);
void test_nn_pool_solo(void **state);
void test_nn_pool_once(void **state);

#endif
