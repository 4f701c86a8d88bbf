/*
 * backend/microkernels.h -- libsepconv's SIMD micro-kernels, which the code
 * of target "native" calls a row at a time (tcc cannot emit vector code, so
 * the tcc backend hands it these).  Generated code declares them itself:
 * this header keeps the library's definitions in step with those
 * declarations.  Not installed.
 */
#ifndef SEPCONV_MICROKERNELS_H
#define SEPCONV_MICROKERNELS_H

/* The micro-kernels target "native" calls (NHWC rows; act 0 none, 1 relu,
 * 2 relu6).  `pixels` outputs of a pointwise stage, packed weights
 * [ceil(n/block)][m][block]; one output row of a depthwise stage with
 * multiplier 1, rows[ky] NULL where the tap row is padding. */
void sepconv_uk_pointwise(const float *in, long in_step, float *out, long out_step,
                          long pixels, const float *packed, long m, long n, long block,
                          const float *bias, int act);
void sepconv_uk_depthwise_row(const float *const *rows, long in_w, long c, const float *w,
                              long k, long stride, long dilation, long pad_left,
                              const float *bias, int act, float *out, long out_w);
#endif /* SEPCONV_MICROKERNELS_H */
