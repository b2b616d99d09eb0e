/*
 * isa.c — which kernel set this process uses.
 *
 * Design: chosen once (pthread_once) from the CPU's features as the
 * compiler's runtime (__builtin_cpu_supports, which also checks that the
 * OS saves the vector registers) reports them: AVX-512 (F, VL, DQ, BW) if
 * present, else AVX2 with FMA, else the reference kernels. COFFER_NN_ISA=
 * ref|avx2|avx512 forces one; naming one this CPU lacks is an error at
 * model load, never a silent fallback. No JIT, no -march=native: each ISA
 * file is compiled with its own flags (src/nn/CMakeLists.txt) and only
 * called after this check.
 */
#include "kern.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[NN_ISA_COUNT] = {"ref", "avx2", "avx512"};

const char *nn_isa_name(enum nn_isa_id id)
{
    return (unsigned)id < NN_ISA_COUNT ? names[id] : "unknown";
}

static const struct nn_isa isa_ref = {.name = "ref", .id = NN_ISA_REF};

const struct nn_isa *nn_isa_get(enum nn_isa_id id)
{
    switch (id) {
    case NN_ISA_REF:
        return &isa_ref;
#if defined(COFFER_NN_X86)
    case NN_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &nn_isa_avx2 : NULL;
    case NN_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("fma")
                   ? &nn_isa_avx512
                   : NULL;
#endif
    default:
        return NULL;
    }
}

const struct nn_hkern *nn_hkern_get(void)
{
#if defined(COFFER_NN_X86)
    if (nn_isa_get(NN_ISA_AVX512) == NULL)
        return NULL;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") ? &nn_hkern_avx512bf16 : NULL;
#else
    return NULL;
#endif
}

const struct nn_qkern *nn_qkern_get(void)
{
#if defined(COFFER_NN_X86)
    if (nn_isa_get(NN_ISA_AVX512) == NULL)
        return NULL;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") ? &nn_qkern_avx512vnni : NULL;
#else
    return NULL;
#endif
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const struct nn_isa *chosen;
static char chosen_why[160];

static void choose(void)
{
    const char *env = getenv("COFFER_NN_ISA");
    if (env != NULL && env[0] != '\0') {
        for (int i = 0; i < NN_ISA_COUNT; i++)
            if (strcmp(env, names[i]) == 0) {
                chosen = nn_isa_get((enum nn_isa_id)i);
                if (chosen == NULL)
                    snprintf(chosen_why, sizeof(chosen_why), "COFFER_NN_ISA=%s: this CPU (or build) has no %s",
                             env, env);
                return;
            }
        snprintf(chosen_why, sizeof(chosen_why), "COFFER_NN_ISA=%.40s: expected ref, avx2 or avx512", env);
        return;
    }
    for (int i = NN_ISA_COUNT - 1; i >= 0 && chosen == NULL; i--)
        chosen = nn_isa_get((enum nn_isa_id)i);
}

const struct nn_isa *nn_isa_default(const char **why)
{
    pthread_once(&once, choose);
    if (why != NULL)
        *why = chosen_why;
    return chosen;
}
