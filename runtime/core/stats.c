/*
 * stats.c -- quantiles of timing samples: the one definition of the median
 * and the spread that the tuner, the CLI, the benchmark and the examples
 * report.
 */
#include <math.h>
#include <stdlib.h>

#include "sepconv.h"

/* Orders doubles for qsort, NaN after every number (a total order, which
 * qsort needs: a NaN compared with < would make the order inconsistent). */
static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x) || isnan(y))
        return (isnan(x) != 0) - (isnan(y) != 0);
    return (x > y) - (x < y);
}

/* The q-quantile (0 <= q <= 1) of count samples, which it sorts in place
 * (NaN last): linear interpolation between the closest ranks, at position
 * q * (count - 1) from 0 (numpy's default; of 1 2 3 4 the 0.5-quantile is
 * 2.5, the 0.25-quantile 1.75).  NaN if count is 0, samples NULL or q
 * outside [0, 1]. */
double sepconv_quantile(double *samples, size_t count, double q)
{
    if (!samples || count == 0 || !(q >= 0 && q <= 1))
        return NAN;
    qsort(samples, count, sizeof *samples, by_value);
    double position = q * (double)(count - 1);
    size_t below = (size_t)position;
    if (below >= count - 1)
        return samples[count - 1];
    double fraction = position - (double)below;
    double low = samples[below], high = samples[below + 1];
    /* exact ranks and equal neighbours return the sample itself, so an
     * infinite sample does not turn into inf - inf = NaN */
    if (fraction == 0 || low == high)
        return low;
    return low + fraction * (high - low);
}

/* The median: the quantile at 0.5. */
double sepconv_median(double *samples, size_t count)
{
    return sepconv_quantile(samples, count, 0.5);
}
