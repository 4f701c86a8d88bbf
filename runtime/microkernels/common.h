/*
 * microkernels/common.h -- what every ISA's micro-kernels share: the
 * reference's activation of one value, the taps of a depthwise output
 * column that land inside the input, the depthwise row driver (which
 * channels go to an ISA's 3x3 kernel and which to its general path), and
 * the 3x3 kernel's parts: balanced column blocks (border columns among
 * them), the sliding window over a block's taps, and the step and row
 * sweep of a channel vector whose weights stay in registers, so that an ISA
 * file holds only its vector operations and its choices.  Not installed.
 */
#ifndef SEPCONV_MICROKERNELS_COMMON_H
#define SEPCONV_MICROKERNELS_COMMON_H

/* Loops over a block's taps, columns and vectors, unrolled (their bounds are
 * constants) before gcc decides what lives in memory. */
#define SEPCONV_UK_UNROLL _Pragma("GCC unroll 32")

/* The activation of one value, as the reference defines it (NaN passes,
 * -0.0 stays -0.0). */
static inline float sepconv_uk_activate(float x, int act)
{
    if (act == 0)
        return x;
    x = x < 0.0f ? 0.0f : x;
    return act == 2 && x > 6.0f ? 6.0f : x;
}

/* The taps kx of output column ox that land inside the input: [*lo, *hi). */
static inline void sepconv_uk_columns(long ox, long k, long stride, long dilation,
                                      long pad_left, long in_w, long *lo, long *hi)
{
    *lo = 0;
    *hi = k;
    while (*lo < k && ox * stride - pad_left + *lo * dilation < 0)
        (*lo)++;
    while (*hi > *lo && ox * stride - pad_left + (*hi - 1) * dilation >= in_w)
        (*hi)--;
}

/* One depthwise row call's arguments (see sepconv_uk_depthwise_row_fn). */
typedef struct sepconv_uk_dw {
    const float *const *rows;
    long in_w, c;
    const float *w;
    long k, stride, dilation, pad_left;
    const float *bias;
    int act;
    float *out;  /* output column `first` (out + (ox - first) * c: column ox) */
    long first;
} sepconv_uk_dw;

/* An ISA's part of a row: output columns [ox0, ox1), channels [ch0, ch1). */
typedef void (*sepconv_uk_dw_part_fn)(const sepconv_uk_dw *d, long ox0, long ox1, long ch0,
                                      long ch1);

/* The output columns [ox0, ox1) of a row.  k != 3 takes `general` (any k,
 * any columns, any channels).  k == 3 takes `fast` over those columns, the
 * border columns included (the 3x3 kernels below drop the taps in the
 * padding): with `tail`, over every channel (it handles the last ones
 * itself); else over the whole vectors of `width` channels, and `general`
 * takes the last c % width. */
static inline void sepconv_uk_dwrow_drive(const sepconv_uk_dw *d, long ox0, long ox1,
                                          long width, int tail, sepconv_uk_dw_part_fn general,
                                          sepconv_uk_dw_part_fn fast)
{
    const long c = d->c;
    if (ox1 <= ox0 || c <= 0)
        return;
    if (d->k != 3) {
        general(d, ox0, ox1, 0, c);
        return;
    }
    const long cv = tail ? c : c / width * width;
    if (cv > 0)
        fast(d, ox0, ox1, 0, cv);
    if (cv < c) /* the last channels */
        general(d, ox0, ox1, cv, c);
}

/* Defines the public row kernel NAME (sepconv_uk_depthwise_row_fn) of an
 * ISA from its parts, through sepconv_uk_dwrow_drive. */
#define SEPCONV_UK_DWROW(NAME, WIDTH, TAIL, GENERAL, FAST)                                 \
    void NAME(const float *const *rows, long in_w, long c, const float *w, long k,         \
              long stride, long dilation, long pad_left, const float *bias, int act,       \
              float *out, long ox0, long ox1)                                              \
    {                                                                                      \
        const sepconv_uk_dw d = {rows, in_w, c, w, k, stride, dilation, pad_left, bias,    \
                                 act, out, ox0};                                           \
        sepconv_uk_dwrow_drive(&d, ox0, ox1, WIDTH, TAIL, GENERAL, FAST);                  \
    }

/* ---------------------------------------------------------- 3x3 kernels */

/* The window a 3x3 row slides: its stride S (1 or 2, dilation 1), or 0 for
 * other strides and dilations (a load per tap). */
static inline int sepconv_uk_dw3_window(const sepconv_uk_dw *d)
{
    return d->dilation == 1 && d->stride <= 2 ? (int)d->stride : 0;
}

/* A copy of the row call d in *local, its 3 row pointers in rows: an
 * ISA's 3x3 kernel works on the copy, its caller's local, which no vector
 * store can alias (a vector store may alias anything), so that its loops
 * need not read d again after each store. */
static inline void sepconv_uk_dw3_localize(const sepconv_uk_dw *d, sepconv_uk_dw *local,
                                           const float *rows[3])
{
    *local = *d;
    for (int ky = 0; ky < 3; ky++)
        rows[ky] = d->rows[ky];
    local->rows = rows;
}

/* CALL(S, ...) with the row's window S (sepconv_uk_dw3_window) a constant,
 * so that its loops unroll. */
#define SEPCONV_UK_DW3_WINDOWS(D, CALL, ...)                                               \
    switch (sepconv_uk_dw3_window(D)) {                                                    \
    case 1:                                                                                \
        CALL(1, __VA_ARGS__);                                                              \
        break;                                                                             \
    case 2:                                                                                \
        CALL(2, __VA_ARGS__);                                                              \
        break;                                                                             \
    default:                                                                               \
        CALL(0, __VA_ARGS__);                                                              \
        break;                                                                             \
    }

/* The most columns of a block with window S whose step walks the channels
 * innermost: a block's step reads 3 span input lines (span = S (P - 1) +
 * 3), and a pixel's channels are 4 c bytes apart: they fall in few L1 sets
 * (c = 512: 2 sets of 8 ways; 1024: 1), so a step reads at most 30 lines
 * (P <= 8 at stride 1, 4 at stride 2), 18 once c >= 1024 (4, 2): measured
 * on Zen 4 with AVX-512, wider blocks lost there (7 x 7 x 1024: 0.0225
 * against 0.0208 ms; 14 x 14 x 512 at stride 2: 0.0130 against 0.0115).
 * Other strides and dilations: 4 columns. */
static inline long sepconv_uk_dw3_most(const sepconv_uk_dw *d, int S)
{
    const long lines = d->c >= 1024 ? 18 : 30;
    return S ? (lines / 3 - 3) / S + 1 : 4;
}

/* Block t of `count` balanced blocks of [ox0, ox0 + width): its first
 * column *ox, its P (returned) and the input columns it reads, [*ilo, *ihi)
 * of its span; *border when that is not the whole span (a border block:
 * its window crosses the padding). */
static inline long sepconv_uk_dw3_plan(const sepconv_uk_dw *d, long ox0, long width,
                                       long count, long t, long *ox, long *ilo, long *ihi,
                                       int *border)
{
    const long P = width / count + (t < width % count);
    *ox = ox0 + t * (width / count) + (t < width % count ? t : width % count);
    const long first = *ox * d->stride - d->pad_left;
    const long span = (P - 1) * d->stride + 2 * d->dilation + 1; /* from first */
    *ilo = first < 0 ? -first : 0;
    *ihi = first + span > d->in_w ? d->in_w - first : span;
    *border = *ilo > 0 || *ihi < span;
    return P;
}

/* ACC[v][j] += the 3x3 taps of column j (0..P-1) of the block of output
 * columns from OX, for V vectors of WIDTH channels from CH (D the row
 * call; D->rows[ky] NULL: a padding row).  S = 1 or 2 (dilation 1) slides
 * a window along each input row: the block's S (P - 1) + 3 input vectors
 * of a row are loaded once each and fed to every tap that reads them (S =
 * 1, P = 8: 10 loads for 24 FMAs a row; S = 2, P = 4: 9 for 12, none that
 * no tap reads).  S = 0 stands for D's stride and dilation, a load per
 * tap.  With BORDER, the input columns outside [ILO, IHI) (offsets from the
 * block's first) are padding: never loaded, their taps dropped, so border
 * columns run in the same blocks as the interior.  LOAD(p) loads a vector,
 * FMA(x, w, acc) is x w + acc, WEIGHT(t, v) is the weight vector of tap t
 * = 3 ky + kx for vector v.  V, P, S and BORDER are constants where this
 * is expanded: the loops unroll into straight code (a border block compares
 * each input column with ILO and IHI). */
#define SEPCONV_UK_DW3_TAPS(ACC, V, P, S, BORDER, ILO, IHI, D, OX, CH, WIDTH, VEC, LOAD,   \
                            FMA, WEIGHT)                                                   \
    do {                                                                                   \
        const long c_ = (D)->c, stride_ = (S) ? (S) : (D)->stride, dil_ = (D)->dilation;   \
        const long first_ = (OX) * stride_ - (D)->pad_left;                                \
        SEPCONV_UK_UNROLL for (int ky_ = 0; ky_ < 3; ky_++) {                              \
            const float *const r_ = (D)->rows[ky_];                                        \
            if (!r_)                                                                       \
                continue;                                                                  \
            if (S) {                                                                       \
                SEPCONV_UK_UNROLL for (int i_ = 0; i_ < (S) * ((P) - 1) + 3; i_++) {       \
                    if ((BORDER) && (i_ < (ILO) || i_ >= (IHI)))                           \
                        continue;                                                          \
                    SEPCONV_UK_UNROLL for (int v_ = 0; v_ < (V); v_++) {                   \
                        const VEC x_ =                                                     \
                            LOAD(r_ + (first_ + i_) * c_ + (CH) + v_ * (WIDTH));           \
                        SEPCONV_UK_UNROLL for (int j_ = 0; j_ < (P); j_++) {               \
                            const int kx_ = i_ - j_ * (S);                                 \
                            if (kx_ >= 0 && kx_ < 3)                                       \
                                (ACC)[v_][j_] = FMA(x_, WEIGHT(ky_ * 3 + kx_, v_),         \
                                                    (ACC)[v_][j_]);                        \
                        }                                                                  \
                    }                                                                      \
                }                                                                          \
            } else {                                                                       \
                SEPCONV_UK_UNROLL for (int kx_ = 0; kx_ < 3; kx_++)                        \
                    SEPCONV_UK_UNROLL for (int j_ = 0; j_ < (P); j_++) {                   \
                        const long i_ = j_ * stride_ + kx_ * dil_;                         \
                        if ((BORDER) && (i_ < (ILO) || i_ >= (IHI)))                       \
                            continue;                                                      \
                        SEPCONV_UK_UNROLL for (int v_ = 0; v_ < (V); v_++)                 \
                            (ACC)[v_][j_] = FMA(                                           \
                                LOAD(r_ + (first_ + i_) * c_ + (CH) + v_ * (WIDTH)),       \
                                WEIGHT(ky_ * 3 + kx_, v_), (ACC)[v_][j_]);                 \
                    }                                                                      \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* STEP(P, BORDER, ox, ilo, ihi, ...) for each of the `count` balanced
 * blocks of at most MOST (1-UPTO, UPTO 4 or 8) output columns that cover
 * [OX0, OX1) (sepconv_uk_dw3_plan's P, ox, ilo, ihi and border), with P and
 * BORDER constants; the arguments after STEP follow them. */
#define SEPCONV_UK_DW3_BLOCKS(D, OX0, OX1, MOST, UPTO, STEP, ...)                          \
    SEPCONV_UK_DW3_EACH((D), (OX0), (OX1), (MOST), p_ * 2 + border_,                       \
                        SEPCONV_UK_DW3_CASES_##UPTO(STEP, ox_, ilo_, ihi_, __VA_ARGS__))
/* Plans each balanced block of [OX0, OX1) (at most MOST columns; p_, ox_,
 * ilo_, ihi_ and border_ as sepconv_uk_dw3_plan gives them) and switches
 * on SELECT, an expression of them, over CASES. */
#define SEPCONV_UK_DW3_EACH(D, OX0, OX1, MOST, SELECT, CASES)                              \
    do {                                                                                   \
        const long width_ = (OX1) - (OX0), count_ = (width_ + (MOST) - 1) / (MOST);        \
        for (long t_ = 0; t_ < count_; t_++) {                                             \
            long ox_, ilo_, ihi_;                                                          \
            int border_;                                                                   \
            const long p_ = sepconv_uk_dw3_plan((D), (OX0), width_, count_, t_, &ox_,      \
                                                &ilo_, &ihi_, &border_);                   \
            switch (SELECT) {                                                              \
                CASES                                                                      \
            default:                                                                       \
                break;                                                                     \
            }                                                                              \
        }                                                                                  \
    } while (0)
#define SEPCONV_UK_DW3_CASE(Q, STEP, ...)                                                  \
    case 2 * (Q):                                                                          \
        STEP(Q, 0, __VA_ARGS__);                                                           \
        break;                                                                             \
    case 2 * (Q) + 1:                                                                      \
        STEP(Q, 1, __VA_ARGS__);                                                           \
        break;
#define SEPCONV_UK_DW3_CASES_4(STEP, ...)                                                  \
    SEPCONV_UK_DW3_CASE(1, STEP, __VA_ARGS__) SEPCONV_UK_DW3_CASE(2, STEP, __VA_ARGS__)    \
    SEPCONV_UK_DW3_CASE(3, STEP, __VA_ARGS__) SEPCONV_UK_DW3_CASE(4, STEP, __VA_ARGS__)
#define SEPCONV_UK_DW3_CASES_8(STEP, ...)                                                  \
    SEPCONV_UK_DW3_CASES_4(STEP, __VA_ARGS__)                                              \
    SEPCONV_UK_DW3_CASE(5, STEP, __VA_ARGS__) SEPCONV_UK_DW3_CASE(6, STEP, __VA_ARGS__)    \
    SEPCONV_UK_DW3_CASE(7, STEP, __VA_ARGS__) SEPCONV_UK_DW3_CASE(8, STEP, __VA_ARGS__)

/* The border kind of a window block (S 1 or 2, P columns) whose input
 * columns are [ilo, ihi) of its span: 0 none, 1 only the first in the
 * padding, 2 only the last, 3 another (a row narrower than a block with
 * padding both sides, or padding of 2). */
static inline int sepconv_uk_dw3_kind(int S, long P, long ilo, long ihi, int border)
{
    const long span = S * (P - 1) + 3;
    if (!border)
        return 0;
    return ilo == 1 && ihi == span ? 1 : ilo == 0 && ihi == span - 1 ? 2 : 3;
}

/* SEPCONV_UK_DW3_BLOCKS for a window S (1 or 2, a constant): the border
 * kinds 1 and 2 (sepconv_uk_dw3_kind: MobileNet's paddings) pass STEP
 * constant ILO and IHI, so that its loops compile to straight code like
 * the interior's (a runtime test per input column there made gcc reload
 * its pointers and fold the weights into the FMAs: 2.5 loads a FMA on
 * AVX2); kind 3 passes them as the plan computed them. */
#define SEPCONV_UK_DW3_SPANS(D, S, OX0, OX1, MOST, UPTO, STEP, ...)                       \
    SEPCONV_UK_DW3_EACH((D), (OX0), (OX1), (MOST),                                         \
                        p_ * 4 + sepconv_uk_dw3_kind((S), p_, ilo_, ihi_, border_),        \
                        SEPCONV_UK_DW3_KINDS_##UPTO(S, STEP, ox_, ilo_, ihi_, __VA_ARGS__))
#define SEPCONV_UK_DW3_KIND(S, Q, STEP, OX, ILO, IHI, ...)                                 \
    case 4 * (Q):                                                                          \
        STEP(Q, 0, OX, 0, (S) * ((Q) - 1) + 3, __VA_ARGS__);                              \
        break;                                                                             \
    case 4 * (Q) + 1:                                                                      \
        STEP(Q, 1, OX, 1, (S) * ((Q) - 1) + 3, __VA_ARGS__);                              \
        break;                                                                             \
    case 4 * (Q) + 2:                                                                      \
        STEP(Q, 1, OX, 0, (S) * ((Q) - 1) + 2, __VA_ARGS__);                              \
        break;                                                                             \
    case 4 * (Q) + 3:                                                                      \
        STEP(Q, 1, OX, ILO, IHI, __VA_ARGS__);                                             \
        break;
#define SEPCONV_UK_DW3_KINDS_4(S, ...)                                                     \
    SEPCONV_UK_DW3_KIND(S, 1, __VA_ARGS__) SEPCONV_UK_DW3_KIND(S, 2, __VA_ARGS__)          \
    SEPCONV_UK_DW3_KIND(S, 3, __VA_ARGS__) SEPCONV_UK_DW3_KIND(S, 4, __VA_ARGS__)
#define SEPCONV_UK_DW3_KINDS_8(S, ...)                                                     \
    SEPCONV_UK_DW3_KINDS_4(S, __VA_ARGS__)                                                 \
    SEPCONV_UK_DW3_KIND(S, 5, __VA_ARGS__) SEPCONV_UK_DW3_KIND(S, 6, __VA_ARGS__)          \
    SEPCONV_UK_DW3_KIND(S, 7, __VA_ARGS__) SEPCONV_UK_DW3_KIND(S, 8, __VA_ARGS__)

/* Defines, for an ISA whose vector VEC holds WIDTH floats (LOAD(p),
 * STORE(p, v), ZERO(), FMA(x, w, acc) = x w + acc, ACTIVATE(v, act)), the
 * 3x3 parts of one channel vector whose 9 weights are registers:
 *  - PREFIX##_weights(d, ch, wt): loads the 9 weight vectors of channels
 *    [ch, ch + WIDTH) into wt and returns their bias;
 *  - PREFIX##_step(P, BORDER, ox, ilo, ihi, d, S, ch, wt, b): the block of
 *    P (1-UPTO) output columns from ox of that vector (SEPCONV_UK_DW3_TAPS:
 *    S 1 or 2 a sliding window, 0 any stride and dilation; BORDER, only
 *    the input columns [ilo, ihi) of its span);
 *  - PREFIX##_sweep(d, S, ox0, ox1, ch0, ch1, most): the channel vectors
 *    [ch0, ch1) outermost, each one's weights loaded once a row and kept in
 *    registers over its balanced blocks of at most `most` (1-UPTO) columns
 *    of [ox0, ox1).
 * UPTO (4 or 8) is what the registers hold: UPTO accumulators, 9 weights,
 * the bias and an input.  All inline: S, P and BORDER are constants where
 * they are called. */
#define SEPCONV_UK_DW3_KERNEL(PREFIX, VEC, WIDTH, UPTO, LOAD, STORE, ZERO, FMA, ACTIVATE)  \
    static inline __attribute__((always_inline)) VEC PREFIX##_weights(                     \
        const sepconv_uk_dw *d, long ch, VEC wt[9])                                        \
    {                                                                                      \
        SEPCONV_UK_UNROLL for (int t = 0; t < 9; t++)                                      \
            wt[t] = LOAD(d->w + t * d->c + ch);                                            \
        return d->bias ? LOAD(d->bias + ch) : ZERO();                                      \
    }                                                                                      \
    static inline __attribute__((always_inline)) void PREFIX##_step(                       \
        const int P, const int BORDER, long ox, long ilo, long ihi,                        \
        const sepconv_uk_dw *d, const int S, long ch, const VEC wt[9], VEC b)              \
    {                                                                                      \
        const long c = d->c;                                                               \
        const int act = d->act; /* read once: a vector store may alias anything */        \
        float *const out = d->out + (ox - d->first) * c + ch;                              \
        VEC acc[1][UPTO];                                                                  \
        SEPCONV_UK_UNROLL for (int j = 0; j < P; j++)                                      \
            acc[0][j] = b;                                                                 \
        SEPCONV_UK_DW3_TAPS(acc, 1, P, S, BORDER, ilo, ihi, d, ox, ch, WIDTH, VEC, LOAD,   \
                            FMA, SEPCONV_UK_DW3_REGISTERS);                                \
        SEPCONV_UK_UNROLL for (int j = 0; j < P; j++)                                      \
            STORE(out + j * c, ACTIVATE(acc[0][j], act));                                  \
    }                                                                                      \
    static inline __attribute__((always_inline)) void PREFIX##_sweep(                      \
        const sepconv_uk_dw *d, const int S, long ox0, long ox1, long ch0, long ch1,       \
        long most)                                                                         \
    {                                                                                      \
        for (long ch = ch0; ch < ch1; ch += (WIDTH)) {                                     \
            VEC wt[9];                                                                     \
            const VEC b = PREFIX##_weights(d, ch, wt);                                     \
            SEPCONV_UK_DW3_BLOCKS(d, ox0, ox1, most, UPTO, PREFIX##_step, d, S, ch, wt,    \
                                  b);                                                      \
        }                                                                                  \
    }
/* The weights of SEPCONV_UK_DW3_KERNEL's step: its registers wt. */
#define SEPCONV_UK_DW3_REGISTERS(T, V) wt[T]
#endif /* SEPCONV_MICROKERNELS_COMMON_H */
