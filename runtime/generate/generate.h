/*
 * generate/generate.h -- a layer and a schedule in, C source out, through
 * the templates.  Not installed: users generate with `sepconv gen`, or make
 * kernels with sepconv_kernel_create, which generates for them.
 */
#ifndef SEPCONV_GENERATE_H
#define SEPCONV_GENERATE_H

#include "layer/schedule.h"

/* Generated source: a .c defining sepconv_kernel_fn SYMBOL (and SYMBOL_pack) and its
 * .h; sepconv_source_free frees it. */
typedef struct sepconv_source {
    char *code, *header;
    size_t code_length, header_length;
    char symbol[SEPCONV_SYMBOL_MAX];
    char template_name[64];
    int64_t scratch_bytes, packed_elements, rows;
} sepconv_source;

/* Generates the kernel of a layer under a schedule. */
sepconv_status sepconv_generate(const sepconv_layer *layer, const sepconv_schedule *schedule,
                                const sepconv_generate_options *options, sepconv_source *source,
                                sepconv_error *error);
void sepconv_source_free(sepconv_source *source);
/* 1 when the source-size budget refuses the schedule before rendering (its
 * lower bound on the source passes the budget); no rendering. */
int sepconv_generate_refuses(const sepconv_layer *layer, const sepconv_schedule *schedule,
                             const sepconv_generate_options *options);

#endif /* SEPCONV_GENERATE_H */
