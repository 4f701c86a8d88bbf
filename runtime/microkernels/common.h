/*
 * microkernels/common.h -- what every ISA's micro-kernels share: the
 * reference's activation of one value and the taps of a depthwise output
 * column that land inside the input.  Not installed.
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
#endif /* SEPCONV_MICROKERNELS_COMMON_H */
