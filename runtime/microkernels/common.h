/*
 * microkernels/common.h -- what every ISA's micro-kernels share: the
 * reference's activation of one value, the taps of a depthwise output
 * column that land inside the input, and the depthwise row driver (which
 * columns and channels go to an ISA's fast 3x3 kernel and which to its
 * general path), so that an ISA file holds only its vector code.  Not
 * installed.
 */
#ifndef SEPCONV_MICROKERNELS_COMMON_H
#define SEPCONV_MICROKERNELS_COMMON_H

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

/* The output columns [*begin, *end) whose every tap lands inside the input. */
static inline void sepconv_uk_interior(long k, long stride, long dilation, long pad_left,
                                       long in_w, long out_w, long *begin, long *end)
{
    long b = 0, e = out_w;
    while (b < out_w && b * stride - pad_left < 0)
        b++;
    while (e > b && (e - 1) * stride - pad_left + (k - 1) * dilation >= in_w)
        e--;
    *begin = b;
    *end = e;
}

/* One depthwise row call's arguments (see sepconv_uk_depthwise_row_fn). */
typedef struct sepconv_uk_dw {
    const float *const *rows;
    long in_w, c;
    const float *w;
    long k, stride, dilation, pad_left;
    const float *bias;
    int act;
    float *out;
} sepconv_uk_dw;

/* An ISA's part of a row: output columns [ox0, ox1), channels [ch0, ch1). */
typedef void (*sepconv_uk_dw_part_fn)(const sepconv_uk_dw *d, long ox0, long ox1, long ch0,
                                      long ch1);

/* One output row.  k != 3 takes `general` (any k, any columns, any
 * channels).  k == 3: with `whole_row`, `fast` takes every column and
 * channel (it handles the borders and the last channels itself); else
 * `fast` takes the interior columns' whole vectors of `width` channels and
 * `general` the border columns and the last c % width channels. */
static inline void sepconv_uk_dwrow_drive(const sepconv_uk_dw *d, long out_w, long width,
                                          int whole_row, sepconv_uk_dw_part_fn general,
                                          sepconv_uk_dw_part_fn fast)
{
    long c = d->c;
    if (out_w <= 0 || c <= 0)
        return;
    if (d->k != 3) {
        general(d, 0, out_w, 0, c);
        return;
    }
    if (whole_row) {
        fast(d, 0, out_w, 0, c);
        return;
    }
    long begin, end, cv = c / width * width;
    sepconv_uk_interior(3, d->stride, d->dilation, d->pad_left, d->in_w, out_w, &begin, &end);
    general(d, 0, begin, 0, c);
    if (cv > 0 && begin < end)
        fast(d, begin, end, 0, cv);
    if (cv < c) /* the last channels of the interior columns */
        general(d, begin, end, cv, c);
    general(d, end, out_w, 0, c);
}

/* Defines the public row kernel NAME (sepconv_uk_depthwise_row_fn) of an
 * ISA from its parts, through sepconv_uk_dwrow_drive. */
#define SEPCONV_UK_DWROW(NAME, WIDTH, WHOLE_ROW, GENERAL, FAST)                           \
    void NAME(const float *const *rows, long in_w, long c, const float *w, long k,        \
              long stride, long dilation, long pad_left, const float *bias, int act,      \
              float *out, long out_w)                                                     \
    {                                                                                     \
        const sepconv_uk_dw d = {rows, in_w, c, w, k, stride, dilation, pad_left, bias,   \
                                 act, out};                                               \
        sepconv_uk_dwrow_drive(&d, out_w, WIDTH, WHOLE_ROW, GENERAL, FAST);               \
    }

/* ACC[j] += the 3x3 taps of output column j (0..J-1) of a run whose first
 * input column is IX, STRIDE apart (every tap inside the input; ROWS[ky]
 * NULL: a padding row), channels at CH of C, with dilation DIL and the 9
 * weight vectors WT of these channels: the column step of an ISA's 3x3
 * kernel, given its LOAD(pointer) and FMA(x, weight, acc). */
#define SEPCONV_UK_DW3_COLUMNS(ACC, J, ROWS, IX, STRIDE, DIL, C, CH, WT, LOAD, FMA)     \
    for (int ky_ = 0; ky_ < 3; ky_++) {                                                   \
        const float *r_ = (ROWS)[ky_];                                                    \
        if (!r_)                                                                          \
            continue;                                                                     \
        for (int kx_ = 0; kx_ < 3; kx_++)                                                 \
            for (int j_ = 0; j_ < (J); j_++)                                              \
                (ACC)[j_] = FMA(LOAD(r_ + ((IX) + j_ * (STRIDE) + kx_ * (DIL)) * (C) + (CH)), \
                                (WT)[ky_ * 3 + kx_], (ACC)[j_]);                          \
    }

/* Defines NAME, a sepconv_uk_dw_part_fn for the 3x3 interior columns
 * [ox0, ox1) of whole vectors of channels [ch0, cv), any stride and
 * dilation: a vector's 9 weights stay in registers over 4 columns at a
 * time, then one.  VEC is the ISA's vector of WIDTH floats, LOAD(p),
 * STORE(p, v), ZERO(), FMA(x, weight, acc) and ACTIVATE(v, act) its
 * operations. */
#define SEPCONV_UK_DW3_INTERIOR(NAME, VEC, WIDTH, LOAD, STORE, ZERO, FMA, ACTIVATE)      \
    static void NAME(const sepconv_uk_dw *d, long ox0, long ox1, long ch0, long cv)     \
    {                                                                                   \
        const long c = d->c, S = d->stride, D = d->dilation, pad = d->pad_left;         \
        for (long ch = ch0; ch < cv; ch += (WIDTH)) {                                   \
            VEC wt[9];                                                                  \
            for (int t = 0; t < 9; t++)                                                 \
                wt[t] = LOAD(d->w + t * c + ch);                                        \
            const VEC b = d->bias ? LOAD(d->bias + ch) : ZERO();                        \
            long ox = ox0;                                                              \
            for (; ox + 4 <= ox1; ox += 4) {                                            \
                VEC acc[4] = {b, b, b, b};                                              \
                SEPCONV_UK_DW3_COLUMNS(acc, 4, d->rows, ox * S - pad, S, D, c, ch, wt,  \
                                       LOAD, FMA)                                       \
                for (int j = 0; j < 4; j++)                                             \
                    STORE(d->out + (ox + j) * c + ch, ACTIVATE(acc[j], d->act));        \
            }                                                                           \
            for (; ox < ox1; ox++) {                                                    \
                VEC acc[1] = {b};                                                       \
                SEPCONV_UK_DW3_COLUMNS(acc, 1, d->rows, ox * S - pad, S, D, c, ch, wt,  \
                                       LOAD, FMA)                                       \
                STORE(d->out + ox * c + ch, ACTIVATE(acc[0], d->act));                  \
            }                                                                           \
        }                                                                               \
    }
#endif /* SEPCONV_MICROKERNELS_COMMON_H */
