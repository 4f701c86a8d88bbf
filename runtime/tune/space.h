/*
 * tune/space.h -- the schedule space a sweep draws its candidates from.
 * Not installed: the tuner and its tests use it.
 */
#ifndef SEPCONV_SPACE_H
#define SEPCONV_SPACE_H

#include "layer/schedule.h"

/* The schedule space of an op and target is the product of its knobs'
 * ranges, less one documented invalid combination: with fuse=0, tile_h is
 * unused, so only its default value is a distinct schedule. */
int64_t sepconv_space_product(sepconv_op op, sepconv_target target);
int64_t sepconv_space_size(sepconv_op op, sepconv_target target);

/* Schedule number `index` of the full product (mixed radix over the knobs
 * in knob order); INVALID for an invalid combination. */
sepconv_status sepconv_space_schedule(sepconv_op op, sepconv_target target, int64_t index,
                                      sepconv_schedule *schedule, sepconv_error *error);

/* The candidates of a sweep: the strategy's order, cut to `trials` (0: all),
 * then shard `shard` of `shards` (candidate k belongs to shard k mod
 * shards), so the shards partition the sweep exactly. */
sepconv_status sepconv_space_candidates(sepconv_op op, sepconv_target target,
                                        sepconv_strategy strategy, uint64_t seed,
                                        int64_t trials, int shard, int shards,
                                        sepconv_schedule **candidates, size_t *count,
                                        sepconv_error *error);
#endif /* SEPCONV_SPACE_H */
