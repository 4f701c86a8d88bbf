/*
 * microkernels/microkernels.h -- libsepconv's micro-kernels, one set per
 * instruction set, which the code tcc compiles calls a row at a time (tcc
 * cannot emit vector code, so the tcc backend hands it these).  Generated
 * code declares them itself: this header keeps the library's definitions in
 * step with those declarations.  Not installed.
 *
 * Every kernel of every ISA computes the same thing as the scalar one for
 * every argument (any block, n not a multiple of block, bias NULL or not,
 * act 0 none / 1 relu / 2 relu6, any m, any pixels), with the reference's
 * activations: relu(x) = x < 0 ? 0 : x (NaN passes, -0.0 stays -0.0), relu6
 * then x > 6 ? 6 : x.  Only the order of the sums (and FMA rounding) differs.
 */
#ifndef SEPCONV_MICROKERNELS_H
#define SEPCONV_MICROKERNELS_H

#include <stdint.h>

/* `pixels` outputs (NHWC, steps in floats) of a pointwise stage from packed
 * weights [ceil(n/block)][m][block] (the last block padded to `block`). */
typedef void (*sepconv_uk_pointwise_fn)(const float *in, long in_step, float *out,
                                        long out_step, long pixels, const float *packed,
                                        long m, long n, long block, const float *bias,
                                        int act);
/* The output columns [ox0, ox1) of one row (NHWC) of a depthwise stage with
 * multiplier 1, column ox0 at out (a whole row: 0, out_w; part of one: the
 * pixels a fused kernel's pointwise tile reads next): rows[ky] is the input
 * row under tap row ky, NULL where it falls in the padding; w is [k][k][c]. */
typedef void (*sepconv_uk_depthwise_row_fn)(const float *const *rows, long in_w, long c,
                                            const float *w, long k, long stride,
                                            long dilation, long pad_left, const float *bias,
                                            int act, float *out, long ox0, long ox1);

/* int8 (microkernels/int8.h; their bits are the int8 reference's): the
 * output columns [ox0, ox1) of one depthwise row (NHWC, multiplier 1) as
 * above, requant holding c Q31 significands then c shifts, quant {in_zero,
 * out_zero, act_min, act_max}; and `pixels` pointwise outputs, pixel p
 * reading m channels at in + p * in_step, writing n at out + p * n, from
 * weights and bias packed by the set's qpack (in_zero folded in). */
typedef void (*sepconv_uk_qdwrow_fn)(const int8_t *const *rows, long in_w, long c,
                                     const int8_t *w, long k, long stride, long dilation,
                                     long pad_left, const int32_t *bias,
                                     const int32_t *requant, const int *quant, int8_t *out,
                                     long ox0, long ox1);
typedef void (*sepconv_uk_qpointwise_fn)(const int8_t *in, long in_step, long pixels, long m,
                                         const int32_t *packed, long n,
                                         const int32_t *requant, const int *quant,
                                         int8_t *out);

/* Packs an int8 pointwise stage's weights w [m][n] and bias (NULL: none)
 * for one set's qpointwise, in_zero folded into the bias; the packing takes
 * at most SEPCONV_UK_QPACKED_ELEMENTS(m, n) int32 (microkernels/int8.h). */
typedef void (*sepconv_uk_qpack_fn)(const int8_t *w, long m, long n, const int32_t *bias,
                                    int in_zero, int32_t *packed);

/* The micro-kernels of one instruction set, and the names they are linked
 * under (what generated code declares and tcc_add_symbol is given).  A
 * target may have variants for CPUs with more (avx512 with VNNI). */
typedef struct sepconv_microkernels {
    const char *isa;     /* the target: "portable", "avx2", "avx512", "neon" */
    const char *variant; /* the isa, or the isa and the extension ("avx512vnni") */
    sepconv_uk_pointwise_fn pointwise;
    sepconv_uk_depthwise_row_fn depthwise_row;
    const char *pointwise_name, *depthwise_name;
    sepconv_uk_qdwrow_fn qdwrow;
    sepconv_uk_qpointwise_fn qpointwise;
    sepconv_uk_qpack_fn qpack; /* the packing qpointwise reads */
} sepconv_microkernels;

/* The micro-kernels of a target ("portable", "avx2", "avx512", "neon"), the
 * best variant the CPU has; NULL when this build has none for it (another
 * architecture).  It does not check the target's own ISA: the caller does. */
const sepconv_microkernels *sepconv_microkernels_find(const char *isa);

/* A set by variant ("avx512vnni"), whatever the CPU has (for tests). */
const sepconv_microkernels *sepconv_microkernels_variant(const char *variant);

/* The best set the running CPU has, chosen once per process
 * (SEPCONV_NO_AVX512=1 rules AVX-512 out). */
const sepconv_microkernels *sepconv_microkernels_best(void);

/* Dispatchers to sepconv_microkernels_best(), for code that links libsepconv
 * ahead of time. */
void sepconv_uk_pointwise(const float *in, long in_step, float *out, long out_step,
                          long pixels, const float *packed, long m, long n, long block,
                          const float *bias, int act);
void sepconv_uk_depthwise_row(const float *const *rows, long in_w, long c, const float *w,
                              long k, long stride, long dilation, long pad_left,
                              const float *bias, int act, float *out, long ox0, long ox1);

void sepconv_uk_qdwrow(const int8_t *const *rows, long in_w, long c, const int8_t *w, long k,
                       long stride, long dilation, long pad_left, const int32_t *bias,
                       const int32_t *requant, const int *quant, int8_t *out, long ox0,
                       long ox1);
void sepconv_uk_qpointwise(const int8_t *in, long in_step, long pixels, long m,
                           const int32_t *packed, long n, const int32_t *requant,
                           const int *quant, int8_t *out);

/* Packs for sepconv_uk_qpointwise, the best set's packing (qpack above):
 * packed holds SEPCONV_UK_QPACKED_ELEMENTS(m, n) int32. */
void sepconv_uk_qpack(const int8_t *w, long m, long n, const int32_t *bias, int in_zero,
                      int32_t *packed);
/* The packings: int16 pairs (microkernels/int8.h; each folded bias must
 * fit int32, which the weights' bound check makes so), and VNNI's byte
 * quads (microkernels/avx512vnni.c; folded biases modulo 2^32). */
void sepconv_uk_qpack_pairs(const int8_t *w, long m, long n, const int32_t *bias, int in_zero,
                            int32_t *packed);
void sepconv_uk_qpack_quads(const int8_t *w, long m, long n, const int32_t *bias, int in_zero,
                            int32_t *packed);

/* The kernels themselves, named by what they compute and their ISA. */
#define SEPCONV_UK_INT8_DECLARE(ISA)                                                        \
    void sepconv_uk_qdwrow__##ISA(const int8_t *const *rows, long in_w, long c,            \
                                  const int8_t *w, long k, long stride, long dilation,     \
                                  long pad_left, const int32_t *bias,                      \
                                  const int32_t *requant, const int *quant, int8_t *out,   \
                                  long ox0, long ox1);                                     \
    void sepconv_uk_qpointwise__##ISA(const int8_t *in, long in_step, long pixels, long m, \
                                      const int32_t *packed, long n,                       \
                                      const int32_t *requant, const int *quant,            \
                                      int8_t *out);
SEPCONV_UK_INT8_DECLARE(scalar)
void sepconv_uk_pointwise__scalar(const float *in, long in_step, float *out, long out_step,
                                  long pixels, const float *packed, long m, long n,
                                  long block, const float *bias, int act);
void sepconv_uk_dwrow__scalar(const float *const *rows, long in_w, long c, const float *w,
                              long k, long stride, long dilation, long pad_left,
                              const float *bias, int act, float *out, long ox0, long ox1);
#if defined(__x86_64__)
SEPCONV_UK_INT8_DECLARE(avx2)
void sepconv_uk_qdwrow__avx512vnni(const int8_t *const *rows, long in_w, long c,
                                   const int8_t *w, long k, long stride, long dilation,
                                   long pad_left, const int32_t *bias,
                                   const int32_t *requant, const int *quant, int8_t *out,
                                   long ox0, long ox1);
void sepconv_uk_qpointwise__avx512vnni(const int8_t *in, long in_step, long pixels, long m,
                                       const int32_t *packed, long n,
                                       const int32_t *requant, const int *quant, int8_t *out);
void sepconv_uk_pointwise_6x16__avx2(const float *in, long in_step, float *out,
                                     long out_step, long pixels, const float *packed, long m,
                                     long n, long block, const float *bias, int act);
void sepconv_uk_dwrow__avx2(const float *const *rows, long in_w, long c, const float *w,
                            long k, long stride, long dilation, long pad_left,
                            const float *bias, int act, float *out, long ox0, long ox1);
void sepconv_uk_pointwise_7x64__avx512(const float *in, long in_step, float *out,
                                       long out_step, long pixels, const float *packed,
                                       long m, long n, long block, const float *bias,
                                       int act);
void sepconv_uk_dwrow__avx512(const float *const *rows, long in_w, long c, const float *w,
                              long k, long stride, long dilation, long pad_left,
                              const float *bias, int act, float *out, long ox0, long ox1);
#endif
#if defined(__aarch64__)
SEPCONV_UK_INT8_DECLARE(neon)
void sepconv_uk_pointwise_6x16__neon(const float *in, long in_step, float *out,
                                     long out_step, long pixels, const float *packed, long m,
                                     long n, long block, const float *bias, int act);
void sepconv_uk_dwrow__neon(const float *const *rows, long in_w, long c, const float *w,
                            long k, long stride, long dilation, long pad_left,
                            const float *bias, int act, float *out, long ox0, long ox1);
#endif
#endif /* SEPCONV_MICROKERNELS_H */
