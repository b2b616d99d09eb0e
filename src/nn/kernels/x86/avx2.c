/*
 * avx2.c — the AVX2 + FMA kernels: tmpl.h with 8-float vectors and a
 * 6 x 16 GEMM micro-tile (12 accumulators of the 16 registers). Built with
 * -mavx2 -mfma (src/nn/CMakeLists.txt); chosen at run time only on CPUs
 * that have both (isa.c).
 */
#define VL 8
#define MR 6
#define NV 2
#define ISA_SYM nn_isa_avx2
#define ISA_NAME "avx2"
#define ISA_ID NN_ISA_AVX2
#include "tmpl.h"
