/*
 * grid.h -- the seeded grid of test layers and their schedules.
 */
#ifndef SEPCONV_GRID_H
#define SEPCONV_GRID_H

#include <stdbool.h>

#include "sepconv.h"
#include "core/core.h"
#include "layer/schedule.h"

typedef struct grid_case {
    char spec[256];
} grid_case;

#define GRID_SIZE 220
#define GRID_SEED 20261125

/* Fills `cases` with the edge cases and then seeded random valid layers. */
size_t grid_build(grid_case *cases, size_t capacity, uint64_t seed);

/* The schedule of case `index`: every knob cycles through its values. */
sepconv_status grid_schedule(const sepconv_layer *layer, sepconv_target target,
                             size_t index, sepconv_schedule *schedule,
                             sepconv_error *error);

#endif /* SEPCONV_GRID_H */
