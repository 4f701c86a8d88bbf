/*
 * microkernels/avx512vnni.c -- the int8 micro-kernels for CPUs with
 * AVX512-VNNI (and BW and VL, which every such CPU has: Zen 4, Ice Lake
 * and later; x86-64 only, built with those flags): the avx512 set's int8
 * kernels where the CPU has them.
 *
 * Depthwise: 16 channels a vector as int32 lanes, the weights widened once
 * a row with their high halves 0, so that vpdpwssd's pair (x - in_zero,
 * its sign) x (w, 0) is one product added; 3x3 windows inside the input
 * at stride 1 or 2 go 4 columns at a time, each input vector loaded once
 * for the taps that read it.
 *
 * Pointwise, over its own weight packing (sepconv_uk_qpack_quads):
 * vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes and adds the four
 * products to an int32 lane: 64 multiply-adds an instruction, 4x what
 * vpmaddwd + vpaddd does on a ymm.  The inputs are made unsigned by
 * flipping their sign bit (x + 128), and the packing folds the correction
 * into the bias with the zero point: the folded bias is
 * bias - (in_zero + 128) x (the sum of the channel's weights), and a sum
 * is that plus the sum of (x + 128) x w.  Every step wraps modulo 2^32
 * (vpdpbusd's adds and vpaddd do), and the whole sum fits int32 (the
 * weights' bound check), so it is exact.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "microkernels/int8.h"
#include "microkernels/microkernels.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define EACH _Pragma("GCC unroll 8") for

static inline __mmask16 lanes_mask(long lanes)
{
    return (__mmask16)(lanes >= 16 ? 0xffff : lanes > 0 ? (1u << lanes) - 1 : 0);
}

/* 16 channels' requantization, prepared once for the tile's pixels. */
typedef struct qrequant16 {
    __m512i significand, odd_significand, shift, right, mask, half_mask;
    __m512i out_zero, low, high; /* the clamp: the activation's bounds less out_zero */
    __mmask16 general;           /* lanes that shift left or have an INT32_MIN significand */
} qrequant16;

/* The requantization of the lanes `lanes` of 16 channels (the others 0). */
static ALWAYS_INLINE qrequant16 qprepare16(const int32_t *significand, const int32_t *shift,
                                           const int *quant, __mmask16 lanes)
{
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    qrequant16 r;
    r.out_zero = _mm512_set1_epi32(quant[1]);
    r.low = _mm512_set1_epi32(quant[2] - quant[1]);
    r.high = _mm512_set1_epi32(quant[3] - quant[1]);
    r.significand = _mm512_maskz_loadu_epi32(lanes, significand);
    r.shift = _mm512_maskz_loadu_epi32(lanes, shift);
    r.odd_significand = _mm512_srli_epi64(r.significand, 32);
    r.right = _mm512_max_epi32(_mm512_sub_epi32(zero, r.shift), zero);
    r.mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, r.right), one);
    r.half_mask = _mm512_srai_epi32(r.mask, 1);
    r.general = _mm512_cmpgt_epi32_mask(r.shift, zero) |
                _mm512_cmpeq_epi32_mask(r.significand, _mm512_set1_epi32(INT32_MIN));
    return r;
}

/* 16 sums requantized as sepconv_uk_qrescale does, lane for lane, clamped
 * to [r->low, r->high], + r->out_zero (avx2.c's qapply8 with masks: the
 * general path only for lanes that shift left or square INT32_MIN). */
static ALWAYS_INLINE __m512i qapply16(__m512i sum, const qrequant16 *r)
{
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __m512i max = _mm512_set1_epi32(INT32_MAX), min = _mm512_set1_epi32(INT32_MIN);
    __m512i x = sum;
    if (r->general) { /* a left shift, saturating */
        const __m512i left = _mm512_max_epi32(r->shift, zero);
        const __m512i most = _mm512_srlv_epi32(max, left);
        const __m512i least = _mm512_sub_epi32(_mm512_sub_epi32(zero, most), one);
        x = _mm512_sllv_epi32(sum, left);
        x = _mm512_mask_mov_epi32(x, _mm512_cmpgt_epi32_mask(sum, most), max);
        x = _mm512_mask_mov_epi32(x, _mm512_cmplt_epi32_mask(sum, least), min);
    }
    /* round(x * significand / 2^31), ties up: bits 31-62 of the even and
     * odd lanes' 64-bit products */
    const __m512i half = _mm512_set1_epi64(INT64_C(1) << 30);
    const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, r->significand), half);
    const __m512i odd =
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), r->odd_significand), half);
    __m512i y = _mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64(even, 31),
                                        _mm512_slli_epi64(odd, 1));
    if (r->general) /* INT32_MIN squared */
        y = _mm512_mask_mov_epi32(y, _mm512_cmpeq_epi32_mask(x, min) &
                                         _mm512_cmpeq_epi32_mask(r->significand, min),
                                  max);
    /* divided by 2^right to nearest, ties away from zero */
    const __m512i remainder = _mm512_and_si512(y, r->mask);
    const __m512i threshold = _mm512_mask_add_epi32(
        r->half_mask, _mm512_cmplt_epi32_mask(y, zero), r->half_mask, one);
    __m512i q = _mm512_srav_epi32(y, r->right);
    q = _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(remainder, threshold), q, one);
    return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, r->low), r->high),
                            r->out_zero);
}

/* ------------------------------------------------------------ depthwise */

/* 16 inputs (those of `lanes`) less the zero point, as int32. */
static ALWAYS_INLINE __m512i qdw_input(const int8_t *x, __mmask16 lanes, __m512i in_zero)
{
    return _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(lanes, x)), in_zero);
}

/* 16 weights as int32 lanes whose high int16 is 0 (see above). */
static ALWAYS_INLINE __m512i qdw_weight(const int8_t *w, __mmask16 lanes)
{
    return _mm512_and_si512(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(lanes, w)),
                            _mm512_set1_epi32(0xffff));
}

enum { QDW_COLUMNS = 4 };

/* QDW_COLUMNS columns of a 3x3 window inside the input at stride S (a
 * constant, 1 or 2), the first reading input column x0, their sums
 * independent chains from b, the bias with in_zero x the weights folded
 * in: each raw input vector of a tap row is loaded and widened once and
 * fed to every tap that reads it (a sliding window: stride 1, 6 loads for
 * 12 taps; stride 2, 9). */
static ALWAYS_INLINE void qdw_columns(const int S, const int8_t *const *rows, long c, long c0,
                                      long x0, __mmask16 lanes, const __m512i *t, __m512i b,
                                      const qrequant16 *r, int8_t *out)
{
    enum { MOST = (QDW_COLUMNS - 1) * 2 + 3 };
    const int inputs = (QDW_COLUMNS - 1) * S + 3;
    __m512i acc[QDW_COLUMNS];
    EACH (int p = 0; p < QDW_COLUMNS; p++)
        acc[p] = b;
    EACH (int ky = 0; ky < 3; ky++) {
        const int8_t *x = rows[ky] + x0 * c + c0;
        __m512i v[MOST];
        EACH (int i = 0; i < inputs; i++)
            v[i] = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(lanes, x + i * c));
        EACH (int p = 0; p < QDW_COLUMNS; p++)
            EACH (int kx = 0; kx < 3; kx++)
                acc[p] = _mm512_dpwssd_epi32(acc[p], v[p * S + kx], t[3 * ky + kx]);
    }
    EACH (int p = 0; p < QDW_COLUMNS; p++)
        _mm512_mask_cvtsepi32_storeu_epi8(out + p * c, lanes, qapply16(acc[p], r));
}

/* int8 depthwise row: blocks of 16 channels outer (the last masked), the
 * row's columns inner, so a block's requantization is prepared once a row;
 * for 3x3 with dilation 1 its 9 weight vectors stay in registers and the
 * columns whose window lies inside the input go 4 at a time. */
void sepconv_uk_qdwrow__avx512vnni(const int8_t *const *rows, long in_w, long c,
                                   const int8_t *w, long k, long stride, long dilation,
                                   long pad_left, const int32_t *bias,
                                   const int32_t *requant, const int *quant, int8_t *out,
                                   long ox0, long ox1)
{
    const __m512i in_zero = _mm512_set1_epi32(quant[0]);
    const int all_rows = k == 3 && dilation == 1 && rows[0] && rows[1] && rows[2];
    for (long c0 = 0; c0 < c; c0 += 16) {
        const __mmask16 lanes = lanes_mask(c - c0);
        const qrequant16 r = qprepare16(requant + c0, requant + c + c0, quant, lanes);
        const __m512i b = bias ? _mm512_maskz_loadu_epi32(lanes, bias + c0)
                               : _mm512_setzero_si512();
        __m512i t[9], weight_sum = _mm512_setzero_si512();
        for (int i = 0; i < 9; i++) {
            const int8_t *tap = w + i * c + c0;
            t[i] = all_rows ? qdw_weight(tap, lanes) : _mm512_setzero_si512();
            if (all_rows)
                weight_sum = _mm512_add_epi32(
                    weight_sum, _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(lanes, tap)));
        }
        /* a window inside the input: the raw inputs' products, less
         * in_zero x the 9 weights (exact: at most 9 x 128 x 128 apart) */
        const __m512i folded = _mm512_sub_epi32(b, _mm512_mullo_epi32(in_zero, weight_sum));
        for (long ox = ox0; ox < ox1;) {
            long lo, hi, last_lo, last_hi;
            sepconv_uk_columns(ox, k, stride, dilation, pad_left, in_w, &lo, &hi);
            const long x0 = ox * stride - pad_left;
            if (all_rows && stride <= 2 && lo == 0 && hi == 3 && ox + QDW_COLUMNS <= ox1) {
                sepconv_uk_columns(ox + QDW_COLUMNS - 1, k, stride, dilation, pad_left, in_w,
                                   &last_lo, &last_hi);
                if (last_lo == 0 && last_hi == 3) { /* the columns are inside */
                    if (stride == 1)
                        qdw_columns(1, rows, c, c0, x0, lanes, t, folded, &r,
                                    out + (ox - ox0) * c + c0);
                    else
                        qdw_columns(2, rows, c, c0, x0, lanes, t, folded, &r,
                                    out + (ox - ox0) * c + c0);
                    ox += QDW_COLUMNS;
                    continue;
                }
            }
            __m512i acc = b;
            for (long ky = 0; ky < k; ky++)
                for (long kx = lo; rows[ky] && kx < hi; kx++) {
                    const __m512i tap = all_rows ? t[3 * ky + kx]
                                                 : qdw_weight(w + (ky * k + kx) * c + c0, lanes);
                    acc = _mm512_dpwssd_epi32(
                        acc, qdw_input(rows[ky] + (x0 + kx * dilation) * c + c0, lanes, in_zero),
                        tap);
                }
            _mm512_mask_cvtsepi32_storeu_epi8(out + (ox - ox0) * c + c0, lanes,
                                              qapply16(acc, &r));
            ox++;
        }
    }
}

/* ------------------------------------------------------------ pointwise */

/* Tiles of up to 8 pixels x 2 vectors of 16 channels (16 accumulators, 2
 * weight vectors, the broadcasts); a call's inputs are flipped to unsigned
 * quads once, into at most QPW_MOST_QUADS int32 of stack.  MobileNet v1's
 * 13 pointwise stages (tcc + avx512, one thread, Sapphire Rapids VM,
 * medians of 3 runs of bench-int8): 6 x 4 4.14 ms, 7 x 4 4.78, 4 x 4 3.79,
 * 8 x 3 3.77, 4 x 3 3.40, 12 x 2 3.24, 10 x 2 3.05, 6 x 2 2.95, 8 x 1 3.11,
 * 8 x 2 2.85 (14 x 14 x 512 -> 512 at ~220 G multiply-adds/s). */
enum { QPW_PIXELS = 8, QPW_VECTORS = 2, QPW_MOST_QUADS = 16384 /* 64 KB */ };

/* What the tiles of one chunk of up to 32 output channels share. */
typedef struct qpw_chunk {
    const int32_t *packed;  /* the folded biases */
    const int8_t *weights;  /* the chunk's first block of quads */
    const int32_t *requant; /* n significands, then n shifts */
    const int *quant;
    long n, c0, quads;
    __mmask16 last; /* the lanes of the chunk's last vector */
} qpw_chunk;

/* P pixels (pixel p's quads at quad + p * quads) x Q vectors of the chunk:
 * the sums, requantized, stored (the last vector under k->last). */
static ALWAYS_INLINE void qpw_tile(const int P, const int Q, const qpw_chunk *k,
                                   const int32_t *quad, int8_t *out)
{
    const long quads = k->quads, n = k->n, c0 = k->c0;
    const long block = quads * 64; /* bytes of one block of 16 channels */
    __m512i acc[QPW_PIXELS][QPW_VECTORS];
    EACH (int q = 0; q < Q; q++) {
        const __m512i b = _mm512_loadu_si512((const void *)(k->packed + c0 + 16 * q));
        EACH (int p = 0; p < P; p++)
            acc[p][q] = b;
    }
    const int8_t *w = k->weights;
    for (long j = 0; j < quads; j++, w += 64) {
        __m512i wv[QPW_VECTORS];
        EACH (int q = 0; q < Q; q++)
            wv[q] = _mm512_loadu_si512((const void *)(w + q * block));
        EACH (int p = 0; p < P; p++) {
            const __m512i x = _mm512_set1_epi32(quad[p * quads + j]);
            EACH (int q = 0; q < Q; q++)
                acc[p][q] = _mm512_dpbusd_epi32(acc[p][q], x, wv[q]);
        }
    }
    EACH (int q = 0; q < Q; q++) {
        const __mmask16 lanes = q == Q - 1 ? k->last : 0xffff;
        const long c = c0 + 16 * q;
        const qrequant16 r = qprepare16(k->requant + c, k->requant + n + c, k->quant, lanes);
        EACH (int p = 0; p < P; p++)
            _mm512_mask_cvtsepi32_storeu_epi8(out + p * n + c, lanes, qapply16(acc[p][q], &r));
    }
}

typedef void (*qpw_tile_fn)(const qpw_chunk *k, const int32_t *quad, int8_t *out);

#define QPW_TILE(P, Q)                                                                     \
    static void qpw_tile_##P##x##Q(const qpw_chunk *k, const int32_t *quad, int8_t *out)  \
    {                                                                                      \
        qpw_tile(P, Q, k, quad, out);                                                      \
    }
#define QPW_TILES(P) QPW_TILE(P, 1) QPW_TILE(P, 2)
QPW_TILES(1) QPW_TILES(2) QPW_TILES(3) QPW_TILES(4)
QPW_TILES(5) QPW_TILES(6) QPW_TILES(7) QPW_TILES(8)
#define QPW_ROW(P) {qpw_tile_##P##x1, qpw_tile_##P##x2}
/* [P - 1][Q - 1] */
static const qpw_tile_fn qpw_tiles[QPW_PIXELS][QPW_VECTORS] = {
    QPW_ROW(1), QPW_ROW(2), QPW_ROW(3), QPW_ROW(4),
    QPW_ROW(5), QPW_ROW(6), QPW_ROW(7), QPW_ROW(8)};

/* A pixel's m inputs + 128 (their sign bits flipped) as ceil(m / 4) quads,
 * 64 at a time, the last quad's missing bytes 0. */
static void flip_quads(const int8_t *x, long m, int32_t *quad)
{
    const __m512i sign = _mm512_set1_epi8((char)0x80);
    long i = 0;
    for (; i + 64 <= m; i += 64)
        _mm512_storeu_si512((void *)(quad + i / 4),
                            _mm512_xor_si512(_mm512_loadu_si512((const void *)(x + i)), sign));
    if (i < m) { /* 1-63 bytes, written up to the end of their last quad */
        const long bytes = m - i, written = (bytes + 3) / 4 * 4;
        const __mmask64 lanes = ((__mmask64)1 << bytes) - 1;
        const __m512i flipped =
            _mm512_xor_si512(_mm512_maskz_loadu_epi8(lanes, x + i), sign);
        _mm512_mask_storeu_epi8((void *)(quad + i / 4),
                                written >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << written) - 1,
                                _mm512_maskz_mov_epi8(lanes, flipped));
    }
}

/* The same as plain C, reading the inputs where they are. */
static void qpointwise_plain(const int8_t *in, long in_step, long pixels, long m,
                             const int32_t *packed, long n, const int32_t *requant,
                             const int *quant, int8_t *out)
{
    const long n16 = SEPCONV_UK_QPACKED_CHANNELS(n), quads = (m + 3) / 4;
    const int8_t *weights = (const int8_t *)(const void *)(packed + n16);
    for (long p = 0; p < pixels; p++)
        for (long c = 0; c < n; c++) {
            const int8_t *w = weights + (c / 16 * quads * 16 + c % 16) * 4;
            uint32_t wrapped = (uint32_t)packed[c];
            for (long ic = 0; ic < m; ic++)
                wrapped += (uint32_t)((in[p * in_step + ic] + 128) * w[ic / 4 * 64 + ic % 4]);
            const int32_t sum = (int32_t)wrapped;
            sepconv_uk_qstore(&sum, 1, requant + c, requant + n + c, quant, out + p * n + c);
        }
}

/* pixels x n outputs from sepconv_uk_qpack_quads's packing: as many
 * pixels at a time as their quads fit the stack buffer; chunks of 32
 * output channels outer, balanced tiles of up to 8 pixels inner, so that a
 * chunk's weights (m x 32 bytes) are read from L1 by every tile. */
void sepconv_uk_qpointwise__avx512vnni(const int8_t *in, long in_step, long pixels, long m,
                                       const int32_t *packed, long n,
                                       const int32_t *requant, const int *quant, int8_t *out)
{
    const long n16 = SEPCONV_UK_QPACKED_CHANNELS(n), quads = (m + 3) / 4;
    const int8_t *weights = (const int8_t *)(const void *)(packed + n16);
    if (quads * QPW_PIXELS > QPW_MOST_QUADS) { /* m past 8 K: not one tile's quads fit */
        qpointwise_plain(in, in_step, pixels, m, packed, n, requant, quant, out);
        return;
    }
    int32_t quad[QPW_MOST_QUADS];
    const long most = QPW_MOST_QUADS / quads; /* pixels a chunk, at least 8 */
    for (long q0 = 0; q0 < pixels; q0 += most) {
        const long chunk = pixels - q0 < most ? pixels - q0 : most;
        const int8_t *x = in + q0 * in_step;
        int8_t *y = out + q0 * n;
        for (long p = 0; p < chunk; p++)
            flip_quads(x + p * in_step, m, quad + p * quads);
        const long tiles = (chunk + QPW_PIXELS - 1) / QPW_PIXELS;
        for (long c0 = 0; c0 < n; c0 += 16 * QPW_VECTORS) {
            const long vectors = (n - c0 + 15) / 16 < QPW_VECTORS ? (n - c0 + 15) / 16
                                                                  : QPW_VECTORS;
            const long tail = n - c0 - 16 * (vectors - 1); /* the last vector's lanes */
            const qpw_chunk k = {packed, weights + c0 * quads * 4, requant, quant, n, c0,
                                 quads, lanes_mask(tail)};
            for (long t = 0, p0 = 0; t < tiles; t++) {
                const long size = chunk / tiles + (t < chunk % tiles);
                qpw_tiles[size - 1][vectors - 1](&k, quad + p0 * quads, y + p0 * n);
                p0 += size;
            }
        }
    }
}
