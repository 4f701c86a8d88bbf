/*
 * layer/schedule.h -- schedules as values: the knobs of each op, their
 * ranges per target, defaults, parsing and the canonical text.  Not
 * installed: the API takes a schedule as its text ("knob=value,...", see
 * `sepconv schedules SPEC`).
 */
#ifndef SEPCONV_SCHEDULE_H
#define SEPCONV_SCHEDULE_H

#include "sepconv.h"

/* The knobs of a schedule; each op has some, with target-dependent ranges. */
typedef enum sepconv_knob {
    SEPCONV_KNOB_CHANNEL_BLOCK, /* dw, conv, sep: channels per block */
    SEPCONV_KNOB_TILE_W,        /* dw, conv, sep: output pixels per step */
    SEPCONV_KNOB_PIXEL_BLOCK,   /* pw, sep: pixels per register block */
    SEPCONV_KNOB_OC_BLOCK,      /* pw, sep: output channels per block */
    SEPCONV_KNOB_PACK,          /* pw, sep: pointwise weights packed once */
    SEPCONV_KNOB_UNROLL,        /* all: 0 none, 1 row, 2 full (sep: its dw stage) */
    SEPCONV_KNOB_FUSE,          /* sep: 0 full intermediate, 1 row tiles, 2 pixel tiles */
    SEPCONV_KNOB_TILE_H,        /* sep, fuse=1: rows per tile; fuse=2: pixel tiles' size */
    SEPCONV_KNOB_PW_UNROLL,     /* sep: its pw stage's unroll */
    SEPCONV_KNOB_COUNT
} sepconv_knob;
#define SEPCONV_KNOB_VALUES_MAX 8

/* One knob's name, meaning, allowed values and default for an op/target. */
typedef struct sepconv_knob_info {
    const char *name, *help;
    int count;
    int64_t values[SEPCONV_KNOB_VALUES_MAX];
    const char *value_names[SEPCONV_KNOB_VALUES_MAX]; /* NULL: a number */
    int64_t default_value;
} sepconv_knob_info;

/* A value for every knob of an op, for one target. */
typedef struct sepconv_schedule {
    sepconv_op op;
    sepconv_target target;
    int64_t value[SEPCONV_KNOB_COUNT]; /* 0 for knobs the op does not have */
} sepconv_schedule;

/* The unroll value of a schedule's pointwise stage (sep: pw_unroll). */
int64_t sepconv_schedule_pw_unroll(const sepconv_schedule *schedule);
/* The pixels of the pointwise micro-kernel's register tile on an ISA
 * (microkernels/ISA.c): a fused kernel's pixel tile (fuse=2) is tile_h of
 * them. */
int64_t sepconv_microkernel_pixels(sepconv_target target);
/* Whether `op` has `knob`. */
int sepconv_schedule_has_knob(sepconv_op op, sepconv_knob knob);
/* Describes a knob for an op and target (its range and default). */
sepconv_status sepconv_knob_describe(sepconv_op op, sepconv_target target, sepconv_knob knob,
                                     sepconv_knob_info *info, sepconv_error *error);
/* The default schedule of a layer for a target. */
sepconv_status sepconv_schedule_default(const sepconv_layer *layer, sepconv_target target,
                                        sepconv_schedule *schedule, sepconv_error *error);
/* Applies "knob=value,..." (each in range) over the defaults; "" keeps them. */
sepconv_status sepconv_schedule_parse(const char *text, const sepconv_layer *layer,
                                      sepconv_target target, sepconv_schedule *schedule,
                                      sepconv_error *error);
/* Writes the canonical "knob=value,..." form (every knob of the op). */
sepconv_status sepconv_schedule_format(const sepconv_schedule *schedule, char *out,
                                       size_t capacity, sepconv_error *error);

#endif /* SEPCONV_SCHEDULE_H */
