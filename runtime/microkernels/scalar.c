/*
 * microkernels/scalar.c -- the plain-C micro-kernels: the definition every
 * other ISA's kernels match, and their fallback.  Built everywhere, with the
 * library's ordinary flags.
 */
#include <stddef.h>

#include "microkernels/common.h"
#include "microkernels/int8.h"
#include "microkernels/microkernels.h"

/* `pixels` outputs of n channels from packed [ceil(n/block)][m][block]. */
void sepconv_uk_pointwise__scalar(const float *in, long in_step, float *out, long out_step,
                                  long pixels, const float *packed, long m, long n,
                                  long block, const float *bias, int act)
{
    for (long p = 0; p < pixels; p++)
        for (long co = 0; co < n; co++) {
            const float *w = packed + (co / block) * m * block + co % block;
            float sum = bias ? bias[co] : 0.0f;
            for (long k = 0; k < m; k++)
                sum += in[p * in_step + k] * w[k * block];
            out[p * out_step + co] = sepconv_uk_activate(sum, act);
        }
}

/* Output columns [ox0, ox1) of a row of a depthwise stage (multiplier 1),
 * column ox0 at out. */
void sepconv_uk_dwrow__scalar(const float *const *rows, long in_w, long c, const float *w,
                              long k, long stride, long dilation, long pad_left,
                              const float *bias, int act, float *out, long ox0, long ox1)
{
    for (long ox = ox0; ox < ox1; ox++) {
        long lo, hi;
        sepconv_uk_columns(ox, k, stride, dilation, pad_left, in_w, &lo, &hi);
        for (long ch = 0; ch < c; ch++) {
            float sum = bias ? bias[ch] : 0.0f;
            for (long ky = 0; ky < k; ky++)
                for (long kx = lo; rows[ky] && kx < hi; kx++)
                    sum += rows[ky][(ox * stride - pad_left + kx * dilation) * c + ch] *
                           w[(ky * k + kx) * c + ch];
            out[(ox - ox0) * c + ch] = sepconv_uk_activate(sum, act);
        }
    }
}

/* the int8 kernels (microkernels/int8.h), vectorized with this file's flags */
SEPCONV_UK_INT8(scalar)
