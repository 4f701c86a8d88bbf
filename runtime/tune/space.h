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

/* What pruning a layer's space found: the product, the valid schedules,
 * those repeating another's kernel, those the source-size budget refuses
 * (judged from the layer: the generator's lower bound on the source), and
 * the distinct ones left. */
typedef struct sepconv_space_counts {
    int64_t product, valid, repeats, refused, distinct;
} sepconv_space_counts;

/* Whether kernels of these options call the ISA's micro-kernels (tcc, not portable). */
bool sepconv_space_microkernels(const sepconv_kernel_options *kernel);

/* Maps a schedule to the one standing for every schedule whose kernel for
 * this layer is the same (see prune.c for the rules and their templates). */
void sepconv_space_canonical(const sepconv_layer *layer, bool microkernels,
                             sepconv_schedule *schedule);

/* The distinct, unrefused schedules of a layer for kernel options whose
 * target is an ISA, in space order (malloc'd; counts may be NULL). */
sepconv_status sepconv_space_distinct(const sepconv_layer *layer,
                                      const sepconv_kernel_options *kernel,
                                      sepconv_schedule **list, size_t *count,
                                      sepconv_space_counts *counts, sepconv_error *error);

/* An analytic estimate of a schedule's run time on this layer, in cycles
 * (register-tile fill and spills, loads per FMA, working sets against L1
 * and L2, the share of pixels outside full groups, the intermediate's
 * traffic): only its order matters, lower is faster. */
double sepconv_space_estimate(const sepconv_layer *layer, const sepconv_schedule *schedule,
                              sepconv_backend backend);

/* The candidates of a layer's sweep: its distinct schedules in the
 * strategy's order (guided: `seeds` first, those of them in the space),
 * cut to options->trials, then options->shard of options->shards. */
sepconv_status sepconv_space_sweep(const sepconv_layer *layer,
                                   const sepconv_tune_options *options,
                                   const sepconv_schedule *seeds, size_t seed_count,
                                   sepconv_schedule **candidates, size_t *count,
                                   sepconv_space_counts *counts, sepconv_error *error);
#endif /* SEPCONV_SPACE_H */
