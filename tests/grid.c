/*
 * grid.c -- the seeded grid of layers that every generated kernel is tested
 * on: random small layers across every spec option, plus edge cases, each
 * with a schedule that cycles through every value of every knob.
 */
#include <stdio.h>
#include <string.h>

#include "grid.h"

/* Edge cases named by the generator issue, always in the grid. */
static const char *const edge_cases[] = {
    "op=sep df=1 m=3 n=2 dk=3",                       /* 1x1 input */
    "op=dw df=1 m=5 dk=1",
    "op=pw df=1 m=1024 n=10 bias=1",                  /* a classifier */
    "op=dw df=2 m=3 dk=5",                            /* D_K > D_F, padded */
    "op=sep df=3 m=4 n=5 dk=7 bias=1 act=relu",
    "op=dw df=9 m=3 dk=2 stride=3 pad=valid",         /* stride > D_K */
    "op=conv df=10 m=2 n=3 dk=1 stride=4",
    "op=sep df=6 m=1 n=1 dk=3",                       /* M = N = 1 */
    "op=pw df=5 m=1 n=9 act=relu6",
    "op=dw df=7 m=37 dk=3 bias=1",                    /* not multiples of 8, 16 */
    "op=sep df=5 m=17 n=33 dk=3 act=relu6",
    "op=sep df=6 m=3 n=4 dk=3 batch=3 bias=1",        /* batch > 1 */
    "op=conv df=5 m=3 n=5 dk=3 batch=2 layout=nchw",
    "op=dw df=3 m=1 dk=1 stride=2 pad=1",             /* pixels no tap reaches */
    "op=pw df=3 m=2 n=2 stride=2 pad=1",
    "op=sep h=3 w=11 m=2 n=3 dk=2 stride=3 pad=0:1:2:0 batch=2 layout=nchw",
    "op=sep df=8 m=4 n=6 dk=3 mult=3 dilation=2 bias=1 dw_act=relu6 pw_act=none",
};

/* A uniform choice among `count` options. */
static int pick(uint64_t *state, int count)
{
    return (int)(sepconv_random_next(state) % (uint64_t)count);
}

/* Writes the i-th random layer spec of the grid. */
static void random_spec(uint64_t *state, char *out, size_t capacity)
{
    static const char *const ops[] = {"conv", "dw", "pw", "sep", "sep", "dw"};
    static const int channels[] = {1, 2, 3, 5, 8, 13, 16, 17, 24, 32, 33};
    static const int outputs[] = {1, 2, 3, 7, 16, 24, 33, 48};
    static const int kernels[] = {1, 2, 3, 3, 3, 5, 7};
    static const char *const acts[] = {"none", "relu", "relu6"};
    const char *op = ops[pick(state, 6)];
    bool dw = strcmp(op, "dw") == 0, pw = strcmp(op, "pw") == 0;
    bool sep = strcmp(op, "sep") == 0;
    int h = 1 + pick(state, 12), w = 1 + pick(state, 12);
    size_t used = (size_t)snprintf(out, capacity, "op=%s h=%d w=%d m=%d", op, h, w,
                                   channels[pick(state, 11)]);
    if (!dw)
        used += (size_t)snprintf(out + used, capacity - used, " n=%d",
                                 outputs[pick(state, 8)]);
    if (!pw)
        used += (size_t)snprintf(out + used, capacity - used, " dk=%d dilation=%d",
                                 kernels[pick(state, 7)], 1 + pick(state, 2));
    if (dw || sep)
        used += (size_t)snprintf(out + used, capacity - used, " mult=%d",
                                 1 + (pick(state, 4) == 0) * (1 + pick(state, 2)));
    const char *pads[] = {"same", "valid", "0", "1", "2", "1:0:2:1", "0:2:1:0"};
    used += (size_t)snprintf(out + used, capacity - used,
                             " stride=%d pad=%s batch=%d layout=%s bias=%d",
                             1 + pick(state, 3), pads[pick(state, 7)],
                             1 + (pick(state, 4) == 0), pick(state, 2) ? "nhwc" : "nchw",
                             pick(state, 2));
    if (sep)
        snprintf(out + used, capacity - used, " dw_act=%s pw_act=%s",
                 acts[pick(state, 3)], acts[pick(state, 3)]);
    else
        snprintf(out + used, capacity - used, " act=%s", acts[pick(state, 3)]);
}

/* Builds the grid: the edge cases, then valid random layers. */
size_t grid_build(grid_case *cases, size_t capacity, uint64_t seed)
{
    size_t count = 0;
    for (size_t i = 0; i < sizeof edge_cases / sizeof edge_cases[0] && count < capacity;
         i++) {
        snprintf(cases[count].spec, sizeof cases[count].spec, "%s", edge_cases[i]);
        count++;
    }
    uint64_t state = seed;
    while (count < capacity) {
        random_spec(&state, cases[count].spec, sizeof cases[count].spec);
        sepconv_layer layer;
        if (sepconv_layer_parse(cases[count].spec, &layer, NULL) == SEPCONV_OK)
            count++; /* invalid draws (kernel over the padded input) are redrawn */
    }
    return count;
}

/* The schedule of grid case `index`: knob k takes value (index + k) modulo
 * its range, so over the grid every value of every knob comes up. */
sepconv_status grid_schedule(const sepconv_layer *layer, sepconv_target target,
                             size_t index, sepconv_schedule *schedule,
                             sepconv_error *error)
{
    sepconv_status status = sepconv_schedule_default(layer, target, schedule, error);
    for (int k = 0; k < SEPCONV_KNOB_COUNT && status == SEPCONV_OK; k++) {
        sepconv_knob_info info;
        if (sepconv_knob_describe(layer->op, target, (sepconv_knob)k, &info, NULL) !=
            SEPCONV_OK)
            continue;
        schedule->value[k] = info.values[(index + (size_t)k) % (size_t)info.count];
    }
    return status;
}
