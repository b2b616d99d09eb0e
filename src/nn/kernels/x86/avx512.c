/*
 * avx512.c — the AVX-512 kernels: tmpl.h with 16-float vectors and an
 * 8 x 48 GEMM micro-tile (24 accumulators of the 32 registers). Built with
 * -mavx512f -mavx512vl -mavx512dq -mavx512bw -mfma (src/nn/CMakeLists.txt);
 * chosen at run time only on CPUs that have all of them (isa.c).
 */
#define VL 16
#define MR 8
#define NV 3
#define ISA_SYM nn_isa_avx512
#define ISA_NAME "avx512"
#define ISA_ID NN_ISA_AVX512
#include "tmpl.h"
