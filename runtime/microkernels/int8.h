/*
 * microkernels/int8.h -- the int8 micro-kernels (TensorFlow Lite's integer
 * depthwise and pointwise convolution, per-channel requantization) as
 * plain C over blocks of channels, channels innermost: every ISA file
 * instantiates them (SEPCONV_UK_INT8) and the compiler vectorizes them with
 * that file's flags.  Their bits are the int8 reference's: int32 sums of
 * (q_in - in_zero) * q_w, rescaled as TFLite's MultiplyByQuantizedMultiplier.
 * Not installed.
 */
#ifndef SEPCONV_MICROKERNELS_INT8_H
#define SEPCONV_MICROKERNELS_INT8_H

#include <stdint.h>

#include "microkernels/common.h"

/* Channels summed at a time: 16 int32 sums stay in registers on every ISA. */
#define SEPCONV_UK_QBLOCK 16

/* round(a * b / 2^31), ties toward +infinity; a = b = INT32_MIN saturates
 * (SaturatingRoundingDoublingHighMul: its nudged division toward zero is
 * this floor, and only that case reaches 2^31). */
static inline int32_t sepconv_uk_qhigh_mul(int32_t a, int32_t b)
{
    const int64_t floor = ((int64_t)a * b + (INT64_C(1) << 30)) >> 31;
    return floor > INT32_MAX ? INT32_MAX : (int32_t)floor;
}

/* sum times significand * 2^(shift - 31): a saturating left shift, the
 * high multiply, then a division by 2^-shift to nearest, ties away from
 * zero (RoundingDivideByPOT). */
static inline int32_t sepconv_uk_qrescale(int32_t sum, int32_t significand, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int32_t most = INT32_MAX >> left; /* the largest sum 2^left keeps in int32 */
    const int32_t x = sum > most ? INT32_MAX : sum < -most - 1 ? INT32_MIN : sum * (1 << left);
    const int32_t y = sepconv_uk_qhigh_mul(x, significand);
    const int32_t mask = (int32_t)((UINT32_C(1) << right) - 1u);
    const int32_t remainder = y & mask, threshold = (mask >> 1) + (y < 0);
    const int32_t floor = y < 0 ? ~(~y >> right) : y >> right;
    return floor + (remainder > threshold);
}

/* Stores count requantized sums: + out_zero, clamped to the activation's
 * [quant[2], quant[3]], the clamp done first so that a sum near an int32
 * bound cannot overflow (restrict and the bounds in locals: an int8 store
 * may alias anything, and gcc would not vectorize the loop otherwise). */
static inline __attribute__((always_inline)) void
sepconv_uk_qstore(const int32_t *restrict sum, long count, const int32_t *restrict significand,
                  const int32_t *restrict shift, const int *restrict quant,
                  int8_t *restrict out)
{
    const int32_t out_zero = quant[1], low = quant[2] - out_zero, high = quant[3] - out_zero;
    for (long i = 0; i < count; i++) {
        int32_t q = sepconv_uk_qrescale(sum[i], significand[i], shift[i]);
        q = q < low ? low : q > high ? high : q;
        out[i] = (int8_t)(q + out_zero);
    }
}

/* How an ISA stores requantized sums (sepconv_uk_qstore's contract). */
typedef void (*sepconv_uk_qstore_fn)(const int32_t *restrict sum, long count,
                                     const int32_t *restrict significand,
                                     const int32_t *restrict shift, const int *restrict quant,
                                     int8_t *restrict out);

/* Output columns [ox0, ox1) of one int8 depthwise row (NHWC, multiplier 1),
 * column ox0 at out, channels [first, c) (an ISA's kernel passes the tail
 * its vectors leave); rows[ky] is the input row under tap row ky, NULL in
 * the padding; w is [k][k][c]; requant is c significands then c shifts;
 * quant is {in_zero, out_zero, act_min, act_max}. */
static inline __attribute__((always_inline)) void
sepconv_uk_qdwrow_body(const int8_t *const *rows, long in_w, long c, const int8_t *w, long k,
                       long stride, long dilation, long pad_left, const int32_t *bias,
                       const int32_t *requant, const int *quant, int8_t *out, long ox0,
                       long ox1, long first, sepconv_uk_qstore_fn store)
{
    const int32_t in_zero = quant[0];
    for (long ox = ox0; ox < ox1; ox++) {
        long lo, hi;
        sepconv_uk_columns(ox, k, stride, dilation, pad_left, in_w, &lo, &hi);
        for (long c0 = first; c0 < c; c0 += SEPCONV_UK_QBLOCK) {
            const long count = c - c0 < SEPCONV_UK_QBLOCK ? c - c0 : SEPCONV_UK_QBLOCK;
            int32_t sum[SEPCONV_UK_QBLOCK];
            for (long i = 0; i < count; i++)
                sum[i] = bias ? bias[c0 + i] : 0;
            for (long ky = 0; ky < k; ky++)
                for (long kx = lo; rows[ky] && kx < hi; kx++) {
                    const int8_t *x = rows[ky] + (ox * stride - pad_left + kx * dilation) * c + c0;
                    const int8_t *tap = w + (ky * k + kx) * c + c0;
                    for (long i = 0; i < count; i++)
                        sum[i] += (x[i] - in_zero) * tap[i];
                }
            store(sum, count, requant + c0, requant + c + c0, quant, out + (ox - ox0) * c + c0);
        }
    }
}

/* The int8 pointwise weights every set's kernel but VNNI's reads (that
 * one's are in microkernels/avx512vnni.c, no larger), packed once when
 * they are set (sepconv_uk_qpack_pairs): int32 `packed`, first the output
 * channels' biases with the input zero point folded in, bias[c] - in_zero
 * x (the sum of channel c's weights), for ceil(n / 16) x 16 channels (0
 * past n); then, as int16, blocks of 16 output channels, each
 * ceil(m / 2) pairs of input channels, each pair 16 channels x the two
 * weights (2j, 2j + 1) (0 past m or n).  A sum is then the folded bias
 * plus the raw inputs' products, and a pair of inputs against a pair of
 * weights is one int16 multiply-add (vpmaddwd). */
/* n output channels rounded up to whole blocks (of SEPCONV_UK_QBLOCK, 16,
 * the blocks the kernels sum). */
#define SEPCONV_UK_QPACKED_CHANNELS(n) \
    (((n) + SEPCONV_UK_QBLOCK - 1) / SEPCONV_UK_QBLOCK * SEPCONV_UK_QBLOCK)
/* The int32 elements of that packing for m inputs and n outputs. */
#define SEPCONV_UK_QPACKED_ELEMENTS(m, n) \
    (SEPCONV_UK_QPACKED_CHANNELS(n) * (1 + ((m) + 1) / 2))

/* The int16 weight pairs of a packing (after its rounded-up biases). */
static inline const int16_t *sepconv_uk_qpacked_pairs(const int32_t *packed, long n)
{
    return (const int16_t *)(const void *)(packed + SEPCONV_UK_QPACKED_CHANNELS(n));
}

/* `pixels` outputs of an int8 pointwise stage, output channels [first, n)
 * (first a multiple of 16): pixel p reads m channels at in + p * in_step
 * and writes at out + p * n; packed is sepconv_uk_qpack_pairs'.  Sums wrap as
 * uint32: with the zero point folded into the bias a partial sum can pass
 * int32 where the whole one (within int32: the weights' bound check) does
 * not, and the wrapped whole is exact. */
static inline __attribute__((always_inline)) void
sepconv_uk_qpointwise_body(const int8_t *in, long in_step, long pixels, long m,
                           const int32_t *packed, long n, const int32_t *requant,
                           const int *quant, int8_t *out, long first, sepconv_uk_qstore_fn store)
{
    const long pairs = (m + 1) / 2;
    const int16_t *weights = sepconv_uk_qpacked_pairs(packed, n);
    for (long p = 0; p < pixels; p++)
        for (long c0 = first; c0 < n; c0 += SEPCONV_UK_QBLOCK) {
            const long count = n - c0 < SEPCONV_UK_QBLOCK ? n - c0 : SEPCONV_UK_QBLOCK;
            const int8_t *x = in + p * in_step;
            const int16_t *block = weights + c0 * pairs * 2;
            uint32_t wrapped[SEPCONV_UK_QBLOCK];
            for (long i = 0; i < SEPCONV_UK_QBLOCK; i++)
                wrapped[i] = (uint32_t)packed[c0 + i];
            for (long j = 0; j < pairs; j++) {
                const int32_t x0 = x[2 * j], x1 = 2 * j + 1 < m ? x[2 * j + 1] : 0;
                const int16_t *pair = block + j * 2 * SEPCONV_UK_QBLOCK;
                for (long i = 0; i < SEPCONV_UK_QBLOCK; i++)
                    wrapped[i] += (uint32_t)(x0 * pair[2 * i] + x1 * pair[2 * i + 1]);
            }
            int32_t sum[SEPCONV_UK_QBLOCK];
            for (long i = 0; i < SEPCONV_UK_QBLOCK; i++)
                sum[i] = (int32_t)wrapped[i]; /* (modulo 2^32, as gcc, clang and tcc do) */
            store(sum, count, requant + c0, requant + n + c0, quant, out + p * n + c0);
        }
}

/* Defines an ISA's int8 depthwise row kernel, sepconv_uk_qdwrow__ISA, built
 * with that ISA file's flags, storing through STORE. */
#define SEPCONV_UK_INT8_DWROW(ISA, STORE)                                                   \
    void sepconv_uk_qdwrow__##ISA(const int8_t *const *rows, long in_w, long c,            \
                                  const int8_t *w, long k, long stride, long dilation,     \
                                  long pad_left, const int32_t *bias,                      \
                                  const int32_t *requant, const int *quant, int8_t *out,   \
                                  long ox0, long ox1)                                      \
    {                                                                                      \
        sepconv_uk_qdwrow_body(rows, in_w, c, w, k, stride, dilation, pad_left, bias,      \
                               requant, quant, out, ox0, ox1, 0, STORE);                   \
    }

/* Defines an ISA's int8 pointwise kernel, sepconv_uk_qpointwise__ISA, the
 * plain C one vectorized with that ISA file's flags. */
#define SEPCONV_UK_INT8_POINTWISE(ISA)                                                      \
    void sepconv_uk_qpointwise__##ISA(const int8_t *in, long in_step, long pixels, long m, \
                                      const int32_t *packed, long n,                       \
                                      const int32_t *requant, const int *quant,            \
                                      int8_t *out)                                         \
    {                                                                                      \
        sepconv_uk_qpointwise_body(in, in_step, pixels, m, packed, n, requant, quant, out, \
                                   0, sepconv_uk_qstore);                                  \
    }

/* Both int8 kernels of an ISA from the plain C above. */
#define SEPCONV_UK_INT8(ISA)                                                                \
    SEPCONV_UK_INT8_DWROW(ISA, sepconv_uk_qstore)                                           \
    SEPCONV_UK_INT8_POINTWISE(ISA)

#endif /* SEPCONV_MICROKERNELS_INT8_H */
