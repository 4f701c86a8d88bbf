/*
 * microkernels/microkernels.c -- the micro-kernel sets this build has (one
 * per instruction set its architecture offers), found by target name, and
 * the dispatchers that send each call to the best set the running CPU has,
 * chosen once per process.  Built with the library's ordinary flags: the
 * ISA files (avx2.c, avx512.c, neon.c) carry their own.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "microkernels/int8.h"
#include "microkernels/microkernels.h"

/* Each target's sets, the first whose variant the CPU runs found for it. */
static const sepconv_microkernels sets[] = {
    {"portable", "portable", sepconv_uk_pointwise__scalar, sepconv_uk_dwrow__scalar,
     "sepconv_uk_pointwise__scalar", "sepconv_uk_dwrow__scalar", sepconv_uk_qdwrow__scalar,
     sepconv_uk_qpointwise__scalar, sepconv_uk_qpack_pairs},
#if defined(__x86_64__)
    {"avx2", "avx2", sepconv_uk_pointwise_6x16__avx2, sepconv_uk_dwrow__avx2,
     "sepconv_uk_pointwise_6x16__avx2", "sepconv_uk_dwrow__avx2", sepconv_uk_qdwrow__avx2,
     sepconv_uk_qpointwise__avx2, sepconv_uk_qpack_pairs},
    {"avx512", "avx512vnni", sepconv_uk_pointwise_7x64__avx512, sepconv_uk_dwrow__avx512,
     "sepconv_uk_pointwise_7x64__avx512", "sepconv_uk_dwrow__avx512",
     sepconv_uk_qdwrow__avx512vnni, sepconv_uk_qpointwise__avx512vnni, sepconv_uk_qpack_quads},
    /* without VNNI (Skylake-X), avx2's int8 kernels: AVX-512F alone has no
     * int16 arithmetic, and its plain C was 6x slower than them */
    {"avx512", "avx512", sepconv_uk_pointwise_7x64__avx512, sepconv_uk_dwrow__avx512,
     "sepconv_uk_pointwise_7x64__avx512", "sepconv_uk_dwrow__avx512",
     sepconv_uk_qdwrow__avx2, sepconv_uk_qpointwise__avx2, sepconv_uk_qpack_pairs},
#endif
#if defined(__aarch64__)
    {"neon", "neon", sepconv_uk_pointwise_6x16__neon, sepconv_uk_dwrow__neon,
     "sepconv_uk_pointwise_6x16__neon", "sepconv_uk_dwrow__neon", sepconv_uk_qdwrow__neon,
     sepconv_uk_qpointwise__neon, sepconv_uk_qpack_pairs},
#endif
};

/* Whether the CPU has what a variant needs beyond its target's own ISA. */
static bool variant_runs(const sepconv_microkernels *set)
{
#if defined(__x86_64__)
    if (strcmp(set->variant, "avx512vnni") == 0) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    }
#endif
    (void)set;
    return true;
}

/* The set of a target; NULL when this build lacks it. */
const sepconv_microkernels *sepconv_microkernels_find(const char *isa)
{
    for (size_t i = 0; isa && i < sizeof sets / sizeof sets[0]; i++)
        if (strcmp(sets[i].isa, isa) == 0 && variant_runs(&sets[i]))
            return &sets[i];
    return NULL;
}

/* A set by its variant's name, whatever the CPU has; NULL when this build
 * lacks it. */
const sepconv_microkernels *sepconv_microkernels_variant(const char *variant)
{
    for (size_t i = 0; variant && i < sizeof sets / sizeof sets[0]; i++)
        if (strcmp(sets[i].variant, variant) == 0)
            return &sets[i];
    return NULL;
}

static pthread_once_t choose_once = PTHREAD_ONCE_INIT;
static const sepconv_microkernels *best;

/* The best set the running CPU supports (SEPCONV_NO_AVX512=1: not AVX-512,
 * which valgrind's CPU lacks). */
static void choose(void)
{
    const char *name = "portable";
#if defined(__x86_64__)
    const char *off = getenv("SEPCONV_NO_AVX512");
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && !(off && off[0] == '1'))
        name = "avx512";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        name = "avx2";
#elif defined(__aarch64__)
    name = "neon";
#endif
    best = sepconv_microkernels_find(name);
}

const sepconv_microkernels *sepconv_microkernels_best(void)
{
    pthread_once(&choose_once, choose);
    return best;
}

void sepconv_uk_pointwise(const float *in, long in_step, float *out, long out_step,
                          long pixels, const float *packed, long m, long n, long block,
                          const float *bias, int act)
{
    sepconv_microkernels_best()->pointwise(in, in_step, out, out_step, pixels, packed, m, n,
                                           block, bias, act);
}

void sepconv_uk_depthwise_row(const float *const *rows, long in_w, long c, const float *w,
                              long k, long stride, long dilation, long pad_left,
                              const float *bias, int act, float *out, long ox0, long ox1)
{
    sepconv_microkernels_best()->depthwise_row(rows, in_w, c, w, k, stride, dilation,
                                               pad_left, bias, act, out, ox0, ox1);
}

void sepconv_uk_qdwrow(const int8_t *const *rows, long in_w, long c, const int8_t *w, long k,
                       long stride, long dilation, long pad_left, const int32_t *bias,
                       const int32_t *requant, const int *quant, int8_t *out, long ox0,
                       long ox1)
{
    sepconv_microkernels_best()->qdwrow(rows, in_w, c, w, k, stride, dilation, pad_left, bias,
                                        requant, quant, out, ox0, ox1);
}

void sepconv_uk_qpointwise(const int8_t *in, long in_step, long pixels, long m,
                           const int32_t *packed, long n, const int32_t *requant,
                           const int *quant, int8_t *out)
{
    sepconv_microkernels_best()->qpointwise(in, in_step, pixels, m, packed, n, requant, quant,
                                            out);
}

/* The best set's packing, the one sepconv_uk_qpointwise reads. */
void sepconv_uk_qpack(const int8_t *w, long m, long n, const int32_t *bias, int in_zero,
                      int32_t *packed)
{
    sepconv_microkernels_best()->qpack(w, m, n, bias, in_zero, packed);
}

/* The int8 pointwise packing of every set but VNNI's (microkernels/int8.h). */
void sepconv_uk_qpack_pairs(const int8_t *w, long m, long n, const int32_t *bias, int in_zero,
                            int32_t *packed)
{
    const long n16 = SEPCONV_UK_QPACKED_CHANNELS(n), pairs = (m + 1) / 2;
    int16_t *weights = (int16_t *)(void *)(packed + n16);
    for (long c = 0; c < n16; c++) {
        int64_t sum = 0;
        for (long ic = 0; c < n && ic < m; ic++)
            sum += w[ic * n + c];
        packed[c] = c < n ? (int32_t)((bias ? bias[c] : 0) - (int64_t)in_zero * sum) : 0;
    }
    for (long c0 = 0; c0 < n16; c0 += SEPCONV_UK_QBLOCK)
        for (long j = 0; j < pairs; j++)
            for (long i = 0; i < SEPCONV_UK_QBLOCK; i++) {
                const long c = c0 + i;
                *weights++ = c < n ? w[2 * j * n + c] : 0;
                *weights++ = c < n && 2 * j + 1 < m ? w[(2 * j + 1) * n + c] : 0;
            }
}

/* The packing of sepconv_uk_qpointwise__avx512vnni (VNNI's unsigned x
 * signed bytes, the inputs + 128): n16 = ceil(n / 16) x 16 int32 folded
 * biases, bias - (in_zero + 128) x (the sum of the channel's weights)
 * modulo 2^32 (0 past n), then blocks of 16 output channels, each
 * ceil(m / 4) quads of input channels, each quad 16 channels x the 4
 * weights (4j .. 4j + 3) as bytes (0 past m or n): n16 x (1 + ceil(m / 4))
 * int32, within SEPCONV_UK_QPACKED_ELEMENTS. */
void sepconv_uk_qpack_quads(const int8_t *w, long m, long n, const int32_t *bias, int in_zero,
                            int32_t *packed)
{
    const long n16 = SEPCONV_UK_QPACKED_CHANNELS(n), quads = (m + 3) / 4;
    int8_t *weights = (int8_t *)(void *)(packed + n16);
    for (long c = 0; c < n16; c++) {
        int64_t sum = 0; /* (the kernel's file explains the + 128) */
        for (long ic = 0; c < n && ic < m; ic++)
            sum += w[ic * n + c];
        const int64_t folded = (bias && c < n ? bias[c] : 0) - (int64_t)(in_zero + 128) * sum;
        packed[c] = (int32_t)(uint32_t)folded; /* modulo 2^32: see above */
    }
    for (long c0 = 0; c0 < n16; c0 += SEPCONV_UK_QBLOCK)
        for (long j = 0; j < quads; j++)
            for (long i = 0; i < SEPCONV_UK_QBLOCK; i++)
                for (long t = 0; t < 4; t++) {
                    const long c = c0 + i, ic = 4 * j + t;
                    *weights++ = c < n && ic < m ? w[ic * n + c] : 0;
                }
}
