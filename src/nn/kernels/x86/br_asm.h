/*
 * br_asm.h — pieces of the blocked convolution's assembly shared by the
 * float kernels (tmpl.h, AVX-512) and the bf16 ones (avx512bf16.c): the 24
 * accumulators zmm0-23 (pixel i's block v in zmm(4 i + v)), zeroed, saved
 * or loaded; the reduction loop over the tab entries; and the epilogue
 * into a blocked output (struct br_out). Only for files built for AVX-512.
 */
#ifndef COFFER_NN_BR_ASM_H
#define COFFER_NN_BR_ASM_H

#include <stddef.h>
#include <stdint.h>

#define BR_ZERO(a) "vpxord %%zmm" a ", %%zmm" a ", %%zmm" a "\n\t"
#define BR_SAVE(a) "vmovups %%zmm" a ", " a "*64(%[acc])\n\t"
/* M for each of the 24 accumulators */
#define BR_ALL(M)                                                                                                      \
    M("0") M("1") M("2") M("3") M("4") M("5") M("6") M("7") M("8") M("9") M("10") M("11") M("12") M("13") M("14")    \
        M("15") M("16") M("17") M("18") M("19") M("20") M("21") M("22") M("23")
#define BR_ZERO_ALL BR_ALL(BR_ZERO)
#define BR_SAVE_ALL BR_ALL(BR_SAVE)
#define BR_OPERANDS                                                                                                    \
    : [w] "+r"(w), [tab] "+r"(tab), [n] "+r"(n)                                                                       \
    : [x0] "r"(xr[0]), [x1] "r"(xr[1]), [x2] "r"(xr[2]), [x3] "r"(xr[3]), [x4] "r"(xr[4]), [x5] "r"(xr[5]),           \
      [acc] "r"(acc)                                                                                                   \
    : BR_CLOBBERS
#define BR_CLOBBERS                                                                                                    \
    "rax", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",   \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",      \
      "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31"
/* the reduction loop: for each of the n offsets in tab (into rax), the
 * steps of .irp over `body`, then wbytes on to the next weights */
#define BR_LOOP(steps, body, wbytes)                                                                                   \
    BR_ZERO_ALL "1:\n\t"                                                                                              \
                "movq (%[tab]), %%rax\n\t"                                                                          \
                "addq $8, %[tab]\n\t"                                                                               \
                ".irp ic," steps "\n\t" body ".endr\n\t"                                                            \
                "addq $" wbytes ", %[w]\n\t"                                                                        \
                "decq %[n]\n\t"                                                                                     \
                "jnz 1b\n\t"
/* one function: the offsets list of .irp (the steps of a tab entry), the
 * weights' offset of a step and the bytes of weights a tab entry */
#define BR_ALL12(M) M("0") M("1") M("2") M("3") M("4") M("5") M("6") M("7") M("8") M("9") M("10") M("11")
/* The same with the epilogue in registers, for a blocked output (struct
 * br_out): bias (never NULL: zeros), the residual where there is one and
 * the activation, in bconv_gen's order and with vact's operand order, then
 * pixel i's block v stored at y + v * ycb + 64 i bytes. */
struct br_out {
    const float *bias;
    const float *res;
    float *y;
    int64_t ycb; /* bytes from one output block to the next */
    int64_t act; /* enum nn_act */
    float lo, hi;
    const float *acc; /* at byte 48: the sums so far (bconv_secout_6x4) */
    const float *qs;  /* at byte 56: int8 only, the sums' scales (BL_DEQ) */
};
#define BR_EPI \
    "movq (%[e]), %%rax\n\t" \
    "vaddps 0(%%rax), %%zmm0, %%zmm0\n\t" \
    "vaddps 64(%%rax), %%zmm1, %%zmm1\n\t" \
    "vaddps 128(%%rax), %%zmm2, %%zmm2\n\t" \
    "vaddps 192(%%rax), %%zmm3, %%zmm3\n\t" \
    "vaddps 0(%%rax), %%zmm4, %%zmm4\n\t" \
    "vaddps 64(%%rax), %%zmm5, %%zmm5\n\t" \
    "vaddps 128(%%rax), %%zmm6, %%zmm6\n\t" \
    "vaddps 192(%%rax), %%zmm7, %%zmm7\n\t" \
    "vaddps 0(%%rax), %%zmm8, %%zmm8\n\t" \
    "vaddps 64(%%rax), %%zmm9, %%zmm9\n\t" \
    "vaddps 128(%%rax), %%zmm10, %%zmm10\n\t" \
    "vaddps 192(%%rax), %%zmm11, %%zmm11\n\t" \
    "vaddps 0(%%rax), %%zmm12, %%zmm12\n\t" \
    "vaddps 64(%%rax), %%zmm13, %%zmm13\n\t" \
    "vaddps 128(%%rax), %%zmm14, %%zmm14\n\t" \
    "vaddps 192(%%rax), %%zmm15, %%zmm15\n\t" \
    "vaddps 0(%%rax), %%zmm16, %%zmm16\n\t" \
    "vaddps 64(%%rax), %%zmm17, %%zmm17\n\t" \
    "vaddps 128(%%rax), %%zmm18, %%zmm18\n\t" \
    "vaddps 192(%%rax), %%zmm19, %%zmm19\n\t" \
    "vaddps 0(%%rax), %%zmm20, %%zmm20\n\t" \
    "vaddps 64(%%rax), %%zmm21, %%zmm21\n\t" \
    "vaddps 128(%%rax), %%zmm22, %%zmm22\n\t" \
    "vaddps 192(%%rax), %%zmm23, %%zmm23\n\t" \
    "movq 8(%[e]), %%rax\n\t" \
    "testq %%rax, %%rax\n\t" \
    "jz 4f\n\t" \
    "movq 24(%[e]), %[x1]\n\t" \
    "leaq (%[x1],%[x1],2), %[x2]\n\t" \
    "vaddps 0(%%rax), %%zmm0, %%zmm0\n\t" \
    "vaddps 0(%%rax,%[x1],1), %%zmm1, %%zmm1\n\t" \
    "vaddps 0(%%rax,%[x1],2), %%zmm2, %%zmm2\n\t" \
    "vaddps 0(%%rax,%[x2],1), %%zmm3, %%zmm3\n\t" \
    "vaddps 64(%%rax), %%zmm4, %%zmm4\n\t" \
    "vaddps 64(%%rax,%[x1],1), %%zmm5, %%zmm5\n\t" \
    "vaddps 64(%%rax,%[x1],2), %%zmm6, %%zmm6\n\t" \
    "vaddps 64(%%rax,%[x2],1), %%zmm7, %%zmm7\n\t" \
    "vaddps 128(%%rax), %%zmm8, %%zmm8\n\t" \
    "vaddps 128(%%rax,%[x1],1), %%zmm9, %%zmm9\n\t" \
    "vaddps 128(%%rax,%[x1],2), %%zmm10, %%zmm10\n\t" \
    "vaddps 128(%%rax,%[x2],1), %%zmm11, %%zmm11\n\t" \
    "vaddps 192(%%rax), %%zmm12, %%zmm12\n\t" \
    "vaddps 192(%%rax,%[x1],1), %%zmm13, %%zmm13\n\t" \
    "vaddps 192(%%rax,%[x1],2), %%zmm14, %%zmm14\n\t" \
    "vaddps 192(%%rax,%[x2],1), %%zmm15, %%zmm15\n\t" \
    "vaddps 256(%%rax), %%zmm16, %%zmm16\n\t" \
    "vaddps 256(%%rax,%[x1],1), %%zmm17, %%zmm17\n\t" \
    "vaddps 256(%%rax,%[x1],2), %%zmm18, %%zmm18\n\t" \
    "vaddps 256(%%rax,%[x2],1), %%zmm19, %%zmm19\n\t" \
    "vaddps 320(%%rax), %%zmm20, %%zmm20\n\t" \
    "vaddps 320(%%rax,%[x1],1), %%zmm21, %%zmm21\n\t" \
    "vaddps 320(%%rax,%[x1],2), %%zmm22, %%zmm22\n\t" \
    "vaddps 320(%%rax,%[x2],1), %%zmm23, %%zmm23\n\t" \
    "4:\n\t" \
    "movq 32(%[e]), %%rax\n\t" \
    "cmpq $1, %%rax\n\t" \
    "jne 5f\n\t" \
    "vpxord %%zmm24, %%zmm24, %%zmm24\n\t" \
    "vmaxps %%zmm24, %%zmm0, %%zmm0\n\t" \
    "vmaxps %%zmm24, %%zmm1, %%zmm1\n\t" \
    "vmaxps %%zmm24, %%zmm2, %%zmm2\n\t" \
    "vmaxps %%zmm24, %%zmm3, %%zmm3\n\t" \
    "vmaxps %%zmm24, %%zmm4, %%zmm4\n\t" \
    "vmaxps %%zmm24, %%zmm5, %%zmm5\n\t" \
    "vmaxps %%zmm24, %%zmm6, %%zmm6\n\t" \
    "vmaxps %%zmm24, %%zmm7, %%zmm7\n\t" \
    "vmaxps %%zmm24, %%zmm8, %%zmm8\n\t" \
    "vmaxps %%zmm24, %%zmm9, %%zmm9\n\t" \
    "vmaxps %%zmm24, %%zmm10, %%zmm10\n\t" \
    "vmaxps %%zmm24, %%zmm11, %%zmm11\n\t" \
    "vmaxps %%zmm24, %%zmm12, %%zmm12\n\t" \
    "vmaxps %%zmm24, %%zmm13, %%zmm13\n\t" \
    "vmaxps %%zmm24, %%zmm14, %%zmm14\n\t" \
    "vmaxps %%zmm24, %%zmm15, %%zmm15\n\t" \
    "vmaxps %%zmm24, %%zmm16, %%zmm16\n\t" \
    "vmaxps %%zmm24, %%zmm17, %%zmm17\n\t" \
    "vmaxps %%zmm24, %%zmm18, %%zmm18\n\t" \
    "vmaxps %%zmm24, %%zmm19, %%zmm19\n\t" \
    "vmaxps %%zmm24, %%zmm20, %%zmm20\n\t" \
    "vmaxps %%zmm24, %%zmm21, %%zmm21\n\t" \
    "vmaxps %%zmm24, %%zmm22, %%zmm22\n\t" \
    "vmaxps %%zmm24, %%zmm23, %%zmm23\n\t" \
    "jmp 6f\n\t" \
    "5:\n\t" \
    "cmpq $2, %%rax\n\t" \
    "jne 6f\n\t" \
    "vbroadcastss 40(%[e]), %%zmm24\n\t" \
    "vbroadcastss 44(%[e]), %%zmm25\n\t" \
    "vmaxps %%zmm0, %%zmm24, %%zmm0\n\t" \
    "vminps %%zmm0, %%zmm25, %%zmm0\n\t" \
    "vmaxps %%zmm1, %%zmm24, %%zmm1\n\t" \
    "vminps %%zmm1, %%zmm25, %%zmm1\n\t" \
    "vmaxps %%zmm2, %%zmm24, %%zmm2\n\t" \
    "vminps %%zmm2, %%zmm25, %%zmm2\n\t" \
    "vmaxps %%zmm3, %%zmm24, %%zmm3\n\t" \
    "vminps %%zmm3, %%zmm25, %%zmm3\n\t" \
    "vmaxps %%zmm4, %%zmm24, %%zmm4\n\t" \
    "vminps %%zmm4, %%zmm25, %%zmm4\n\t" \
    "vmaxps %%zmm5, %%zmm24, %%zmm5\n\t" \
    "vminps %%zmm5, %%zmm25, %%zmm5\n\t" \
    "vmaxps %%zmm6, %%zmm24, %%zmm6\n\t" \
    "vminps %%zmm6, %%zmm25, %%zmm6\n\t" \
    "vmaxps %%zmm7, %%zmm24, %%zmm7\n\t" \
    "vminps %%zmm7, %%zmm25, %%zmm7\n\t" \
    "vmaxps %%zmm8, %%zmm24, %%zmm8\n\t" \
    "vminps %%zmm8, %%zmm25, %%zmm8\n\t" \
    "vmaxps %%zmm9, %%zmm24, %%zmm9\n\t" \
    "vminps %%zmm9, %%zmm25, %%zmm9\n\t" \
    "vmaxps %%zmm10, %%zmm24, %%zmm10\n\t" \
    "vminps %%zmm10, %%zmm25, %%zmm10\n\t" \
    "vmaxps %%zmm11, %%zmm24, %%zmm11\n\t" \
    "vminps %%zmm11, %%zmm25, %%zmm11\n\t" \
    "vmaxps %%zmm12, %%zmm24, %%zmm12\n\t" \
    "vminps %%zmm12, %%zmm25, %%zmm12\n\t" \
    "vmaxps %%zmm13, %%zmm24, %%zmm13\n\t" \
    "vminps %%zmm13, %%zmm25, %%zmm13\n\t" \
    "vmaxps %%zmm14, %%zmm24, %%zmm14\n\t" \
    "vminps %%zmm14, %%zmm25, %%zmm14\n\t" \
    "vmaxps %%zmm15, %%zmm24, %%zmm15\n\t" \
    "vminps %%zmm15, %%zmm25, %%zmm15\n\t" \
    "vmaxps %%zmm16, %%zmm24, %%zmm16\n\t" \
    "vminps %%zmm16, %%zmm25, %%zmm16\n\t" \
    "vmaxps %%zmm17, %%zmm24, %%zmm17\n\t" \
    "vminps %%zmm17, %%zmm25, %%zmm17\n\t" \
    "vmaxps %%zmm18, %%zmm24, %%zmm18\n\t" \
    "vminps %%zmm18, %%zmm25, %%zmm18\n\t" \
    "vmaxps %%zmm19, %%zmm24, %%zmm19\n\t" \
    "vminps %%zmm19, %%zmm25, %%zmm19\n\t" \
    "vmaxps %%zmm20, %%zmm24, %%zmm20\n\t" \
    "vminps %%zmm20, %%zmm25, %%zmm20\n\t" \
    "vmaxps %%zmm21, %%zmm24, %%zmm21\n\t" \
    "vminps %%zmm21, %%zmm25, %%zmm21\n\t" \
    "vmaxps %%zmm22, %%zmm24, %%zmm22\n\t" \
    "vminps %%zmm22, %%zmm25, %%zmm22\n\t" \
    "vmaxps %%zmm23, %%zmm24, %%zmm23\n\t" \
    "vminps %%zmm23, %%zmm25, %%zmm23\n\t" \
    "6:\n\t" \
    "movq 16(%[e]), %%rax\n\t" \
    "movq 24(%[e]), %[x1]\n\t" \
    "leaq (%[x1],%[x1],2), %[x2]\n\t" \
    "vmovups %%zmm0, 0(%%rax)\n\t" \
    "vmovups %%zmm1, 0(%%rax,%[x1],1)\n\t" \
    "vmovups %%zmm2, 0(%%rax,%[x1],2)\n\t" \
    "vmovups %%zmm3, 0(%%rax,%[x2],1)\n\t" \
    "vmovups %%zmm4, 64(%%rax)\n\t" \
    "vmovups %%zmm5, 64(%%rax,%[x1],1)\n\t" \
    "vmovups %%zmm6, 64(%%rax,%[x1],2)\n\t" \
    "vmovups %%zmm7, 64(%%rax,%[x2],1)\n\t" \
    "vmovups %%zmm8, 128(%%rax)\n\t" \
    "vmovups %%zmm9, 128(%%rax,%[x1],1)\n\t" \
    "vmovups %%zmm10, 128(%%rax,%[x1],2)\n\t" \
    "vmovups %%zmm11, 128(%%rax,%[x2],1)\n\t" \
    "vmovups %%zmm12, 192(%%rax)\n\t" \
    "vmovups %%zmm13, 192(%%rax,%[x1],1)\n\t" \
    "vmovups %%zmm14, 192(%%rax,%[x1],2)\n\t" \
    "vmovups %%zmm15, 192(%%rax,%[x2],1)\n\t" \
    "vmovups %%zmm16, 256(%%rax)\n\t" \
    "vmovups %%zmm17, 256(%%rax,%[x1],1)\n\t" \
    "vmovups %%zmm18, 256(%%rax,%[x1],2)\n\t" \
    "vmovups %%zmm19, 256(%%rax,%[x2],1)\n\t" \
    "vmovups %%zmm20, 320(%%rax)\n\t" \
    "vmovups %%zmm21, 320(%%rax,%[x1],1)\n\t" \
    "vmovups %%zmm22, 320(%%rax,%[x1],2)\n\t" \
    "vmovups %%zmm23, 320(%%rax,%[x2],1)\n\t"

#define BR_LOAD(a) "vmovups " a "*64(%%rax), %%zmm" a "\n\t"
#define BR_LOAD_ALL BR_ALL(BR_LOAD)
#define BR_PF(o) "prefetcht1 " o "(%[pf])\n\t"
/* A section's loop (kern.h, nn_bconv_sec_fn): the 24 sums loaded from acc
 * (rax) first, and each tab entry prefetching NN_BCONV_SEC_PF bytes from
 * pf into L2 before its steps (.irp over `steps`, `body` each), then
 * wbytes on to the next weights. */
#define BR_LOOP_SEC_GEN(steps, body, wbytes)                                                                           \
    BR_LOAD_ALL "1:\n\t"                                                                                              \
                "movq (%[tab]), %%rax\n\t"                                                                          \
                "addq $8, %[tab]\n\t" BR_PF("0") BR_PF("64") BR_PF("128") BR_PF("192") BR_PF("256") BR_PF("320")   \
                    BR_PF("384") BR_PF("448") "addq $512, %[pf]\n\t"                                                \
                ".irp ic," steps "\n\t" body ".endr\n\t"                                                            \
                "addq $" wbytes ", %[w]\n\t"                                                                        \
                "decq %[n]\n\t"                                                                                     \
                "jnz 1b\n\t"
_Static_assert(offsetof(struct br_out, acc) == 48, "BR_LOOP_SEC reads acc at 48(e)");
_Static_assert(offsetof(struct br_out, qs) == 56, "BL_DEQ reads qs at 56(e)");
_Static_assert(NN_BCONV_SEC_PF == 512, "BR_LOOP_SEC prefetches 512 bytes an entry");

/* The low-precision tiles (bf16, avx512bf16.c; int8, avx512vnni.c): a
 * step takes 4 bytes of a pixel's input channels (a bf16 pair or an int8
 * quad), broadcast, against vectors of 16 output channels' weights for
 * those channels, with the dot-product instruction op (vdpbf16ps,
 * vpdpbusd: zmm24-27 the weights, the broadcast the other source). The
 * sums' registers are the float kernels' (pixel i's block v in
 * zmm(4 i + v)). */
#define BL_PX(op, x, b, a0, a1, a2, a3) \
    "vbroadcastss \\ic*4(%[" x "],%%rax), %%zmm" b "\n\t" \
    op " %%zmm24, %%zmm" b ", %%zmm" a0 "\n\t" \
    op " %%zmm25, %%zmm" b ", %%zmm" a1 "\n\t" \
    op " %%zmm26, %%zmm" b ", %%zmm" a2 "\n\t" \
    op " %%zmm27, %%zmm" b ", %%zmm" a3 "\n\t"
/* a 6x4 tile's step: 4 weight vectors (256 bytes), 6 pixels */
#define BL_STEP6x4(op) \
    "vmovups \\ic*256(%[w]), %%zmm24\n\t" \
    "vmovups \\ic*256+64(%[w]), %%zmm25\n\t" \
    "vmovups \\ic*256+128(%[w]), %%zmm26\n\t" \
    "vmovups \\ic*256+192(%[w]), %%zmm27\n\t" \
    BL_PX(op, "x0", "28", "0", "1", "2", "3") BL_PX(op, "x1", "29", "4", "5", "6", "7") \
    BL_PX(op, "x2", "30", "8", "9", "10", "11") BL_PX(op, "x3", "31", "12", "13", "14", "15") \
    BL_PX(op, "x4", "28", "16", "17", "18", "19") BL_PX(op, "x5", "29", "20", "21", "22", "23")
/* 6 pixels x 2 blocks: zmm0-11, pixel i's block v in zmm(2 i + v) */
#define BL_PX2(op, x, b, a0, a1) \
    "vbroadcastss \\ic*4(%[" x "],%%rax), %%zmm" b "\n\t" \
    op " %%zmm24, %%zmm" b ", %%zmm" a0 "\n\t" \
    op " %%zmm25, %%zmm" b ", %%zmm" a1 "\n\t"
#define BL_STEP6x2(op) \
    "vmovups \\ic*128(%[w]), %%zmm24\n\t" \
    "vmovups \\ic*128+64(%[w]), %%zmm25\n\t" \
    BL_PX2(op, "x0", "28", "0", "1") BL_PX2(op, "x1", "29", "2", "3") BL_PX2(op, "x2", "30", "4", "5") \
    BL_PX2(op, "x3", "31", "6", "7") BL_PX2(op, "x4", "28", "8", "9") BL_PX2(op, "x5", "29", "10", "11")
/* 1x1, stride 1: 12 (vg 2) or 24 (vg 1) consecutive pixels ps bytes apart
 * through one pointer; pixel i's block v in zmm(vg i + v) */
#define BL_WIDE_12x2(op, ps) \
    "vmovups \\ic*128+0(%[w]), %%zmm24\n\t" \
    "vmovups \\ic*128+64(%[w]), %%zmm25\n\t" \
    "vbroadcastss \\ic*4+0*" ps "(%[x],%%rax), %%zmm26\n\t" \
    op " %%zmm24, %%zmm26, %%zmm0\n\t" \
    op " %%zmm25, %%zmm26, %%zmm1\n\t" \
    "vbroadcastss \\ic*4+1*" ps "(%[x],%%rax), %%zmm27\n\t" \
    op " %%zmm24, %%zmm27, %%zmm2\n\t" \
    op " %%zmm25, %%zmm27, %%zmm3\n\t" \
    "vbroadcastss \\ic*4+2*" ps "(%[x],%%rax), %%zmm28\n\t" \
    op " %%zmm24, %%zmm28, %%zmm4\n\t" \
    op " %%zmm25, %%zmm28, %%zmm5\n\t" \
    "vbroadcastss \\ic*4+3*" ps "(%[x],%%rax), %%zmm29\n\t" \
    op " %%zmm24, %%zmm29, %%zmm6\n\t" \
    op " %%zmm25, %%zmm29, %%zmm7\n\t" \
    "vbroadcastss \\ic*4+4*" ps "(%[x],%%rax), %%zmm30\n\t" \
    op " %%zmm24, %%zmm30, %%zmm8\n\t" \
    op " %%zmm25, %%zmm30, %%zmm9\n\t" \
    "vbroadcastss \\ic*4+5*" ps "(%[x],%%rax), %%zmm31\n\t" \
    op " %%zmm24, %%zmm31, %%zmm10\n\t" \
    op " %%zmm25, %%zmm31, %%zmm11\n\t" \
    "vbroadcastss \\ic*4+6*" ps "(%[x],%%rax), %%zmm26\n\t" \
    op " %%zmm24, %%zmm26, %%zmm12\n\t" \
    op " %%zmm25, %%zmm26, %%zmm13\n\t" \
    "vbroadcastss \\ic*4+7*" ps "(%[x],%%rax), %%zmm27\n\t" \
    op " %%zmm24, %%zmm27, %%zmm14\n\t" \
    op " %%zmm25, %%zmm27, %%zmm15\n\t" \
    "vbroadcastss \\ic*4+8*" ps "(%[x],%%rax), %%zmm28\n\t" \
    op " %%zmm24, %%zmm28, %%zmm16\n\t" \
    op " %%zmm25, %%zmm28, %%zmm17\n\t" \
    "vbroadcastss \\ic*4+9*" ps "(%[x],%%rax), %%zmm29\n\t" \
    op " %%zmm24, %%zmm29, %%zmm18\n\t" \
    op " %%zmm25, %%zmm29, %%zmm19\n\t" \
    "vbroadcastss \\ic*4+10*" ps "(%[x],%%rax), %%zmm30\n\t" \
    op " %%zmm24, %%zmm30, %%zmm20\n\t" \
    op " %%zmm25, %%zmm30, %%zmm21\n\t" \
    "vbroadcastss \\ic*4+11*" ps "(%[x],%%rax), %%zmm31\n\t" \
    op " %%zmm24, %%zmm31, %%zmm22\n\t" \
    op " %%zmm25, %%zmm31, %%zmm23\n\t"
#define BL_WIDE_24x1(op, ps) \
    "vmovups \\ic*64(%[w]), %%zmm24\n\t" \
    "vbroadcastss \\ic*4+0*" ps "(%[x],%%rax), %%zmm25\n\t" \
    op " %%zmm24, %%zmm25, %%zmm0\n\t" \
    "vbroadcastss \\ic*4+1*" ps "(%[x],%%rax), %%zmm26\n\t" \
    op " %%zmm24, %%zmm26, %%zmm1\n\t" \
    "vbroadcastss \\ic*4+2*" ps "(%[x],%%rax), %%zmm27\n\t" \
    op " %%zmm24, %%zmm27, %%zmm2\n\t" \
    "vbroadcastss \\ic*4+3*" ps "(%[x],%%rax), %%zmm28\n\t" \
    op " %%zmm24, %%zmm28, %%zmm3\n\t" \
    "vbroadcastss \\ic*4+4*" ps "(%[x],%%rax), %%zmm29\n\t" \
    op " %%zmm24, %%zmm29, %%zmm4\n\t" \
    "vbroadcastss \\ic*4+5*" ps "(%[x],%%rax), %%zmm30\n\t" \
    op " %%zmm24, %%zmm30, %%zmm5\n\t" \
    "vbroadcastss \\ic*4+6*" ps "(%[x],%%rax), %%zmm31\n\t" \
    op " %%zmm24, %%zmm31, %%zmm6\n\t" \
    "vbroadcastss \\ic*4+7*" ps "(%[x],%%rax), %%zmm25\n\t" \
    op " %%zmm24, %%zmm25, %%zmm7\n\t" \
    "vbroadcastss \\ic*4+8*" ps "(%[x],%%rax), %%zmm26\n\t" \
    op " %%zmm24, %%zmm26, %%zmm8\n\t" \
    "vbroadcastss \\ic*4+9*" ps "(%[x],%%rax), %%zmm27\n\t" \
    op " %%zmm24, %%zmm27, %%zmm9\n\t" \
    "vbroadcastss \\ic*4+10*" ps "(%[x],%%rax), %%zmm28\n\t" \
    op " %%zmm24, %%zmm28, %%zmm10\n\t" \
    "vbroadcastss \\ic*4+11*" ps "(%[x],%%rax), %%zmm29\n\t" \
    op " %%zmm24, %%zmm29, %%zmm11\n\t" \
    "vbroadcastss \\ic*4+12*" ps "(%[x],%%rax), %%zmm30\n\t" \
    op " %%zmm24, %%zmm30, %%zmm12\n\t" \
    "vbroadcastss \\ic*4+13*" ps "(%[x],%%rax), %%zmm31\n\t" \
    op " %%zmm24, %%zmm31, %%zmm13\n\t" \
    "vbroadcastss \\ic*4+14*" ps "(%[x],%%rax), %%zmm25\n\t" \
    op " %%zmm24, %%zmm25, %%zmm14\n\t" \
    "vbroadcastss \\ic*4+15*" ps "(%[x],%%rax), %%zmm26\n\t" \
    op " %%zmm24, %%zmm26, %%zmm15\n\t" \
    "vbroadcastss \\ic*4+16*" ps "(%[x],%%rax), %%zmm27\n\t" \
    op " %%zmm24, %%zmm27, %%zmm16\n\t" \
    "vbroadcastss \\ic*4+17*" ps "(%[x],%%rax), %%zmm28\n\t" \
    op " %%zmm24, %%zmm28, %%zmm17\n\t" \
    "vbroadcastss \\ic*4+18*" ps "(%[x],%%rax), %%zmm29\n\t" \
    op " %%zmm24, %%zmm29, %%zmm18\n\t" \
    "vbroadcastss \\ic*4+19*" ps "(%[x],%%rax), %%zmm30\n\t" \
    op " %%zmm24, %%zmm30, %%zmm19\n\t" \
    "vbroadcastss \\ic*4+20*" ps "(%[x],%%rax), %%zmm31\n\t" \
    op " %%zmm24, %%zmm31, %%zmm20\n\t" \
    "vbroadcastss \\ic*4+21*" ps "(%[x],%%rax), %%zmm25\n\t" \
    op " %%zmm24, %%zmm25, %%zmm21\n\t" \
    "vbroadcastss \\ic*4+22*" ps "(%[x],%%rax), %%zmm26\n\t" \
    op " %%zmm24, %%zmm26, %%zmm22\n\t" \
    "vbroadcastss \\ic*4+23*" ps "(%[x],%%rax), %%zmm27\n\t" \
    op " %%zmm24, %%zmm27, %%zmm23\n\t"
/* int8: the 24 sums from int32 to float, pixel i's block v times the 16
 * scales at qs + 16 v (struct br_out's qs), before BR_EPI */
#define BL_DEQ \
    "movq 56(%[e]), %%rax\n\t" \
    "vmovups 0(%%rax), %%zmm24\n\t" \
    "vmovups 64(%%rax), %%zmm25\n\t" \
    "vmovups 128(%%rax), %%zmm26\n\t" \
    "vmovups 192(%%rax), %%zmm27\n\t" \
    "vcvtdq2ps %%zmm0, %%zmm0\n\t" \
    "vmulps %%zmm24, %%zmm0, %%zmm0\n\t" \
    "vcvtdq2ps %%zmm1, %%zmm1\n\t" \
    "vmulps %%zmm25, %%zmm1, %%zmm1\n\t" \
    "vcvtdq2ps %%zmm2, %%zmm2\n\t" \
    "vmulps %%zmm26, %%zmm2, %%zmm2\n\t" \
    "vcvtdq2ps %%zmm3, %%zmm3\n\t" \
    "vmulps %%zmm27, %%zmm3, %%zmm3\n\t" \
    "vcvtdq2ps %%zmm4, %%zmm4\n\t" \
    "vmulps %%zmm24, %%zmm4, %%zmm4\n\t" \
    "vcvtdq2ps %%zmm5, %%zmm5\n\t" \
    "vmulps %%zmm25, %%zmm5, %%zmm5\n\t" \
    "vcvtdq2ps %%zmm6, %%zmm6\n\t" \
    "vmulps %%zmm26, %%zmm6, %%zmm6\n\t" \
    "vcvtdq2ps %%zmm7, %%zmm7\n\t" \
    "vmulps %%zmm27, %%zmm7, %%zmm7\n\t" \
    "vcvtdq2ps %%zmm8, %%zmm8\n\t" \
    "vmulps %%zmm24, %%zmm8, %%zmm8\n\t" \
    "vcvtdq2ps %%zmm9, %%zmm9\n\t" \
    "vmulps %%zmm25, %%zmm9, %%zmm9\n\t" \
    "vcvtdq2ps %%zmm10, %%zmm10\n\t" \
    "vmulps %%zmm26, %%zmm10, %%zmm10\n\t" \
    "vcvtdq2ps %%zmm11, %%zmm11\n\t" \
    "vmulps %%zmm27, %%zmm11, %%zmm11\n\t" \
    "vcvtdq2ps %%zmm12, %%zmm12\n\t" \
    "vmulps %%zmm24, %%zmm12, %%zmm12\n\t" \
    "vcvtdq2ps %%zmm13, %%zmm13\n\t" \
    "vmulps %%zmm25, %%zmm13, %%zmm13\n\t" \
    "vcvtdq2ps %%zmm14, %%zmm14\n\t" \
    "vmulps %%zmm26, %%zmm14, %%zmm14\n\t" \
    "vcvtdq2ps %%zmm15, %%zmm15\n\t" \
    "vmulps %%zmm27, %%zmm15, %%zmm15\n\t" \
    "vcvtdq2ps %%zmm16, %%zmm16\n\t" \
    "vmulps %%zmm24, %%zmm16, %%zmm16\n\t" \
    "vcvtdq2ps %%zmm17, %%zmm17\n\t" \
    "vmulps %%zmm25, %%zmm17, %%zmm17\n\t" \
    "vcvtdq2ps %%zmm18, %%zmm18\n\t" \
    "vmulps %%zmm26, %%zmm18, %%zmm18\n\t" \
    "vcvtdq2ps %%zmm19, %%zmm19\n\t" \
    "vmulps %%zmm27, %%zmm19, %%zmm19\n\t" \
    "vcvtdq2ps %%zmm20, %%zmm20\n\t" \
    "vmulps %%zmm24, %%zmm20, %%zmm20\n\t" \
    "vcvtdq2ps %%zmm21, %%zmm21\n\t" \
    "vmulps %%zmm25, %%zmm21, %%zmm21\n\t" \
    "vcvtdq2ps %%zmm22, %%zmm22\n\t" \
    "vmulps %%zmm26, %%zmm22, %%zmm22\n\t" \
    "vcvtdq2ps %%zmm23, %%zmm23\n\t" \
    "vmulps %%zmm27, %%zmm23, %%zmm23\n\t"

#endif
