/*
 * space.c -- the schedule space, and a layer's part of it as the tuner
 * draws it: the schedules that the source-size budget refuses are dropped,
 * and so is every schedule that can only repeat another (a knob that has
 * no effect on this layer); then an analytic estimate of each candidate's
 * run time ranks the rest for the guided strategy.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "generate/generate.h"
#include "tune/space.h"

/* ---------------------------------------------------------------- space */

/* The ranges of the knobs an op has, in knob order. */
static int knob_ranges(sepconv_op op, sepconv_target target, sepconv_knob_info *infos,
                       sepconv_knob *knobs)
{
    int count = 0;
    for (int k = 0; k < SEPCONV_KNOB_COUNT; k++)
        if (sepconv_knob_describe(op, target, (sepconv_knob)k, &infos[count], NULL) ==
            SEPCONV_OK)
            knobs[count++] = (sepconv_knob)k;
    return count;
}

/* The product of the knob ranges of an op. */
int64_t sepconv_space_product(sepconv_op op, sepconv_target target)
{
    sepconv_knob_info infos[SEPCONV_KNOB_COUNT];
    sepconv_knob knobs[SEPCONV_KNOB_COUNT];
    int count = knob_ranges(op, target, infos, knobs);
    int64_t product = 1;
    for (int i = 0; i < count; i++)
        product *= infos[i].count;
    return product;
}

/* Whether a schedule is one of the documented invalid combinations. */
static bool schedule_invalid(const sepconv_schedule *s)
{
    if (s->op != SEPCONV_OP_SEP || s->value[SEPCONV_KNOB_FUSE] != 0)
        return false;
    sepconv_knob_info tile;
    sepconv_knob_describe(s->op, s->target, SEPCONV_KNOB_TILE_H, &tile, NULL);
    return s->value[SEPCONV_KNOB_TILE_H] != tile.default_value;
}

/* Schedule number `index` of the product. */
sepconv_status sepconv_space_schedule(sepconv_op op, sepconv_target target, int64_t index,
                                      sepconv_schedule *schedule, sepconv_error *error)
{
    if (index < 0 || index >= sepconv_space_product(op, target))
        return sepconv_fail(error, SEPCONV_INVALID, "schedule %lld is outside the space",
                            (long long)index);
    sepconv_knob_info infos[SEPCONV_KNOB_COUNT];
    sepconv_knob knobs[SEPCONV_KNOB_COUNT];
    int count = knob_ranges(op, target, infos, knobs);
    memset(schedule, 0, sizeof *schedule);
    schedule->op = op;
    schedule->target = target;
    for (int i = count - 1; i >= 0; i--) { /* the first knob varies slowest */
        schedule->value[knobs[i]] = infos[i].values[index % infos[i].count];
        index /= infos[i].count;
    }
    if (schedule_invalid(schedule))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "fuse=0 leaves tile_h unused: only its default is a schedule");
    return SEPCONV_OK;
}

/* The number of valid schedules. */
int64_t sepconv_space_size(sepconv_op op, sepconv_target target)
{
    int64_t product = sepconv_space_product(op, target), valid = 0;
    sepconv_schedule schedule;
    for (int64_t i = 0; i < product; i++)
        valid += sepconv_space_schedule(op, target, i, &schedule, NULL) == SEPCONV_OK;
    return valid;
}

/* The candidates of a sweep: strategy order, trials, shard. */
sepconv_status sepconv_space_candidates(sepconv_op op, sepconv_target target,
                                        sepconv_strategy strategy, uint64_t seed,
                                        int64_t trials, int shard, int shards,
                                        sepconv_schedule **candidates, size_t *count,
                                        sepconv_error *error)
{
    if (shards < 1 || shard < 0 || shard >= shards)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "shard %d/%d is not valid (expected I/N with 0 <= I < N)",
                            shard, shards);
    if (trials < 0)
        return sepconv_fail(error, SEPCONV_INVALID, "trials must be 0 (all) or more");
    int64_t product = sepconv_space_product(op, target);
    sepconv_schedule *all = malloc((size_t)product * sizeof *all);
    if (!all)
        return sepconv_fail(error, SEPCONV_NOMEM, "out of memory for %lld schedules",
                            (long long)product);
    size_t valid = 0;
    for (int64_t i = 0; i < product; i++)
        if (sepconv_space_schedule(op, target, i, &all[valid], NULL) == SEPCONV_OK)
            valid++;
    if (strategy == SEPCONV_STRATEGY_RANDOM) { /* seeded Fisher-Yates */
        uint64_t state = seed;
        for (size_t i = valid; i > 1; i--) {
            size_t j = (size_t)(sepconv_random_next(&state) % i);
            sepconv_schedule swap = all[i - 1];
            all[i - 1] = all[j];
            all[j] = swap;
        }
    }
    size_t take = trials > 0 && (size_t)trials < valid ? (size_t)trials : valid;
    size_t kept = 0;
    for (size_t k = 0; k < take; k++)
        if (k % (size_t)shards == (size_t)shard)
            all[kept++] = all[k];
    *candidates = all;
    *count = kept;
    return SEPCONV_OK;
}

/* -------------------------------------------------------- the templates */

/* Output positions 0..out-1 along one axis grouped as common.segments
 * groups them (by the range of taps that land inside the input): the count
 * of segments, the longest one and the widest tap range. */
typedef struct axis_cut {
    int64_t segments, longest, widest;
} axis_cut;

static axis_cut cut(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                    int64_t dilation, int64_t pad)
{
    axis_cut a = {0, 0, 0};
    int64_t last_lo = -2, last_hi = -2, length = 0;
    for (int64_t o = 0; o < out; o++) {
        int64_t lo = -1, hi = -1;
        for (int64_t k = 0; k < kernel; k++) {
            int64_t i = o * stride - pad + k * dilation;
            if (i >= 0 && i < in) {
                if (lo < 0)
                    lo = k;
                hi = k;
            }
        }
        if (lo < 0)
            lo = 0, hi = -1;
        if (lo == last_lo && hi == last_hi) {
            length++;
        } else {
            a.segments++;
            length = 1;
            last_lo = lo;
            last_hi = hi;
        }
        if (length > a.longest)
            a.longest = length;
        if (hi - lo + 1 > a.widest)
            a.widest = hi - lo + 1;
    }
    return a;
}

/* A stage's column walk and whether its taps are C loops
 * (common.loops_taps: at most `most` taps unrolled, 5 segments a side). */
typedef struct stage_walk {
    axis_cut cols;
    bool looped;
} stage_walk;

static stage_walk spatial_walk(const sepconv_layer *l, int64_t most)
{
    axis_cut rows = cut(l->in_h, l->out_h, l->kernel, l->stride, l->dilation, l->pad_top);
    axis_cut cols = cut(l->in_w, l->out_w, l->kernel, l->stride, l->dilation, l->pad_left);
    stage_walk w = {cols, rows.widest * cols.widest > most || rows.segments > 5 ||
                              cols.segments > 5};
    return w;
}

static stage_walk pointwise_walk(const sepconv_layer *l)
{
    bool sep = l->op == SEPCONV_OP_SEP;
    stage_walk w = {sep ? cut(l->out_w, l->out_w, 1, 1, 1, 0)
                        : cut(l->in_w, l->out_w, 1, l->stride, 1, l->pad_left),
                    false};
    return w;
}

/* Which stages a schedule's code has, and which of them hand their rows to
 * a micro-kernel (tcc with an ISA's micro-kernels: the templates' `uk`),
 * which ignores the stage's register-block knobs and unrolling. */
typedef struct stages {
    bool spatial, pointwise;    /* a conv or dw stage; a pw stage */
    bool spatial_uk, pointwise_uk;
    int64_t spatial_channels;   /* the channels channel_block blocks */
} stages;

static stages stages_of(const sepconv_layer *l, const sepconv_schedule *s,
                        bool microkernels)
{
    bool nhwc = l->layout == SEPCONV_LAYOUT_NHWC, sep = l->op == SEPCONV_OP_SEP;
    stages st = {0};
    st.spatial = l->op != SEPCONV_OP_PW;
    st.pointwise = l->op == SEPCONV_OP_PW || sep;
    st.spatial_uk = microkernels && l->op != SEPCONV_OP_CONV && nhwc && l->multiplier == 1;
    st.pointwise_uk = microkernels && s->value[SEPCONV_KNOB_PACK] != 0 && nhwc &&
                      (sep || (l->pad_top == 0 && l->pad_left == 0));
    st.spatial_channels = l->op == SEPCONV_OP_CONV ? l->n : l->mid_c;
    return st;
}

/* The knob's value among those equivalent to it that stands for them all:
 * the default when it is one of them, else the smallest. */
static int64_t representative(const sepconv_knob_info *info, int64_t value,
                              bool (*same)(int64_t, int64_t, int64_t), int64_t bound)
{
    if (same(info->default_value, value, bound))
        return info->default_value;
    for (int i = 0; i < info->count; i++)
        if (same(info->values[i], value, bound))
            return info->values[i];
    return value;
}

/* Channel blocks wider than the channels: one block of them all. */
static bool both_above(int64_t a, int64_t b, int64_t bound)
{
    return a == b || (a > bound && b > bound);
}

/* Blocks at least the channels (groups at least the longest segment, tiles
 * at least the rows): one of them all. */
static bool both_at_least(int64_t a, int64_t b, int64_t bound)
{
    return a == b || (a >= bound && b >= bound);
}

/* Maps a schedule to the one that stands for every schedule generating the
 * same kernel for this layer (knobs the code never reads at their default;
 * equivalent values at one of them).  Each rule follows a template:
 *   - a stage calling a micro-kernel (tcc, an ISA: depthwise_stage.c.in and
 *     pointwise_stage.c.in's `uk`) reads neither its register-block knobs
 *     (channel_block and tile_w; pixel_block) nor unroll;
 *   - channel blocks at least as wide as the channels are all one block
 *     of them (common.blocks; for conv only those wider than them); not in
 *     vector depthwise code, which fits the weights it keeps in registers
 *     to channel_block and tile_w and walks border columns in groups
 *     (depthwise_stage.c.in, register_block.c.in);
 *   - unpacked, output-channel blocks at least as wide as the outputs are
 *     one block of them all (packed, the block sets the packed layout);
 *   - groups of tile_w (pixel_block) pixels at least as long as the longest
 *     column segment make one group of each (column_walk.c.in; not in
 *     vector depthwise code either);
 *   - unroll=row is unroll=none when no stage loops over its taps and every
 *     segment is shorter than two groups (column_walk.c.in unrolls those;
 *     not with vector depthwise code);
 *   - fused tiles of at least every row are one tile (common.plan);
 *   - pixel tiles (fuse=2) where a stage is not a micro-kernel call are
 *     one-row tiles (fuse=1, tile_h=1); pixel tiles of at least a row's
 *     pixels are one tile (common.plan). */
/* int8 kernels take one knob, the channel block of their plain C code
 * (channel_block for dw and conv, oc_block for pw), where that code blocks
 * channels (channel-last; a depthwise of multiplier 1) and tcc's code does
 * not call the micro-kernels instead: every other knob stands at its int8
 * default, and blocks of at least every channel are one block. */
static void int8_canonical(const sepconv_layer *l, bool microkernels, sepconv_schedule *s)
{
    sepconv_schedule d;
    if (sepconv_schedule_default(l, s->target, &d, NULL) != SEPCONV_OK)
        return;
    const bool dw = l->op == SEPCONV_OP_DW, pw = l->op == SEPCONV_OP_PW;
    const bool blocked = l->op != SEPCONV_OP_SEP && l->layout == SEPCONV_LAYOUT_NHWC &&
                         (!dw || l->multiplier == 1);
    const bool calls = microkernels && (dw || (pw && l->pad_top == 0 && l->pad_left == 0));
    const int kept = blocked && !calls ? (pw ? SEPCONV_KNOB_OC_BLOCK
                                             : SEPCONV_KNOB_CHANNEL_BLOCK) : -1;
    for (int k = 0; k < SEPCONV_KNOB_COUNT; k++)
        if (k != kept)
            s->value[k] = d.value[k];
    sepconv_knob_info info;
    if (kept < 0 || sepconv_knob_describe(s->op, s->target, (sepconv_knob)kept, &info,
                                          NULL) != SEPCONV_OK)
        return;
    if (both_at_least(d.value[kept], s->value[kept], l->out_c))
        s->value[kept] = d.value[kept];
    else
        s->value[kept] = representative(&info, s->value[kept], both_at_least, l->out_c);
}

void sepconv_space_canonical(const sepconv_layer *l, bool microkernels,
                             sepconv_schedule *s)
{
    if (l->dtype == SEPCONV_DTYPE_INT8) {
        int8_canonical(l, microkernels, s);
        return;
    }
    sepconv_knob_info info[SEPCONV_KNOB_COUNT];
    bool has[SEPCONV_KNOB_COUNT];
    for (int k = 0; k < SEPCONV_KNOB_COUNT; k++)
        has[k] = sepconv_knob_describe(s->op, s->target, (sepconv_knob)k, &info[k], NULL) ==
                 SEPCONV_OK;
    stages st = stages_of(l, s, microkernels);
    bool spatial = st.spatial && !st.spatial_uk, pointwise = st.pointwise && !st.pointwise_uk;
    int64_t *v = s->value;
    if (has[SEPCONV_KNOB_CHANNEL_BLOCK] && !spatial) {
        v[SEPCONV_KNOB_CHANNEL_BLOCK] = info[SEPCONV_KNOB_CHANNEL_BLOCK].default_value;
        v[SEPCONV_KNOB_TILE_W] = info[SEPCONV_KNOB_TILE_W].default_value;
    }
    if (has[SEPCONV_KNOB_PIXEL_BLOCK] && !pointwise)
        v[SEPCONV_KNOB_PIXEL_BLOCK] = info[SEPCONV_KNOB_PIXEL_BLOCK].default_value;
    /* (a sep's unroll is its depthwise stage's, pw_unroll its pointwise's) */
    bool sep = s->op == SEPCONV_OP_SEP;
    if (has[SEPCONV_KNOB_UNROLL] && !spatial && (sep || !pointwise))
        v[SEPCONV_KNOB_UNROLL] = info[SEPCONV_KNOB_UNROLL].default_value;
    if (has[SEPCONV_KNOB_PW_UNROLL] && !pointwise)
        v[SEPCONV_KNOB_PW_UNROLL] = info[SEPCONV_KNOB_PW_UNROLL].default_value;
    stage_walk sw = {{0, 0, 0}, false}, pw = sw;
    bool vectors = false;
    if (spatial) {
        sw = spatial_walk(l, l->op == SEPCONV_OP_CONV ? 1 : 9);
        /* vector depthwise code (intrinsics: cc and an ISA) fits the
         * weights it keeps in registers to channel_block and tile_w: no
         * rule there; conv blocks its outputs (a block of exactly them may
         * differ from wider ones) */
        vectors = l->op != SEPCONV_OP_CONV && !microkernels &&
                       s->target != SEPCONV_TARGET_PORTABLE &&
                       l->layout == SEPCONV_LAYOUT_NHWC && l->multiplier == 1 && !sw.looped;
        if (!vectors)
            v[SEPCONV_KNOB_CHANNEL_BLOCK] = representative(
                &info[SEPCONV_KNOB_CHANNEL_BLOCK], v[SEPCONV_KNOB_CHANNEL_BLOCK],
                l->op == SEPCONV_OP_CONV ? both_above : both_at_least, st.spatial_channels);
        if (!vectors)
            v[SEPCONV_KNOB_TILE_W] = representative(&info[SEPCONV_KNOB_TILE_W],
                                                    v[SEPCONV_KNOB_TILE_W], both_at_least,
                                                    sw.cols.longest);
    }
    if (pointwise) {
        pw = pointwise_walk(l);
        if (!v[SEPCONV_KNOB_PACK]) /* (packed, the block sets the weights' layout) */
            v[SEPCONV_KNOB_OC_BLOCK] = representative(&info[SEPCONV_KNOB_OC_BLOCK],
                                                      v[SEPCONV_KNOB_OC_BLOCK],
                                                      both_at_least, l->n);
        v[SEPCONV_KNOB_PIXEL_BLOCK] = representative(&info[SEPCONV_KNOB_PIXEL_BLOCK],
                                                     v[SEPCONV_KNOB_PIXEL_BLOCK],
                                                     both_at_least, pw.cols.longest);
    }
    bool spatial_rows_plain = !spatial || (!vectors && !sw.looped &&
                                           sw.cols.longest < 2 * v[SEPCONV_KNOB_TILE_W]);
    bool pointwise_rows_plain = !pointwise ||
                                pw.cols.longest < 2 * v[SEPCONV_KNOB_PIXEL_BLOCK];
    if (sep) {
        if (spatial && v[SEPCONV_KNOB_UNROLL] == 1 && spatial_rows_plain)
            v[SEPCONV_KNOB_UNROLL] = 0;
        if (pointwise && v[SEPCONV_KNOB_PW_UNROLL] == 1 && pointwise_rows_plain)
            v[SEPCONV_KNOB_PW_UNROLL] = 0;
    } else if ((spatial || pointwise) && v[SEPCONV_KNOB_UNROLL] == 1 &&
               spatial_rows_plain && pointwise_rows_plain) {
        v[SEPCONV_KNOB_UNROLL] = 0;
    }
    if (has[SEPCONV_KNOB_TILE_H] && v[SEPCONV_KNOB_FUSE] == 2) {
        if (!(st.spatial_uk && st.pointwise_uk)) {
            v[SEPCONV_KNOB_FUSE] = 1;
            v[SEPCONV_KNOB_TILE_H] = 1;
        } else {
            int64_t tile = sepconv_microkernel_pixels(s->target);
            v[SEPCONV_KNOB_TILE_H] = representative(&info[SEPCONV_KNOB_TILE_H],
                                                    v[SEPCONV_KNOB_TILE_H], both_at_least,
                                                    (l->out_w + tile - 1) / tile);
        }
    }
    if (has[SEPCONV_KNOB_TILE_H] && v[SEPCONV_KNOB_FUSE] == 1)
        v[SEPCONV_KNOB_TILE_H] = representative(&info[SEPCONV_KNOB_TILE_H],
                                                v[SEPCONV_KNOB_TILE_H], both_at_least,
                                                l->batch * l->out_h);
}

/* Whether two schedules are the same values. */
static bool same_schedule(const sepconv_schedule *a, const sepconv_schedule *b)
{
    return a->op == b->op && a->target == b->target &&
           memcmp(a->value, b->value, sizeof a->value) == 0;
}

/* The generate options a backend's kernels are made with. */
static sepconv_generate_options generate_for(const sepconv_kernel_options *kernel)
{
    sepconv_generate_options generate = kernel->generate;
    generate.for_cc = kernel->backend == SEPCONV_BACKEND_CC;
    generate.intrinsics = 0;
    return generate;
}

bool sepconv_space_microkernels(const sepconv_kernel_options *kernel)
{
    return kernel->backend == SEPCONV_BACKEND_TCC && kernel->target != SEPCONV_TARGET_PORTABLE;
}

/* The distinct schedules of a layer's space that the budget does not
 * refuse, in space order. */
sepconv_status sepconv_space_distinct(const sepconv_layer *layer,
                                      const sepconv_kernel_options *kernel,
                                      sepconv_schedule **list, size_t *count,
                                      sepconv_space_counts *counts, sepconv_error *error)
{
    *list = NULL;
    *count = 0;
    sepconv_space_counts c = {0};
    if (!layer || !kernel || (unsigned)kernel->target >= SEPCONV_TARGET_ISA_COUNT)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "space: a layer and an instruction set are needed");
    c.product = sepconv_space_product(layer->op, kernel->target);
    sepconv_schedule *all = malloc((size_t)c.product * sizeof *all);
    if (!all)
        return sepconv_fail(error, SEPCONV_NOMEM, "out of memory for %lld schedules",
                            (long long)c.product);
    bool microkernels = sepconv_space_microkernels(kernel);
    sepconv_generate_options generate = generate_for(kernel);
    size_t kept = 0;
    for (int64_t i = 0; i < c.product; i++) {
        sepconv_schedule s;
        if (sepconv_space_schedule(layer->op, kernel->target, i, &s, NULL) != SEPCONV_OK)
            continue;
        c.valid++;
        sepconv_schedule canonical = s;
        sepconv_space_canonical(layer, microkernels, &canonical);
        if (!same_schedule(&canonical, &s)) {
            c.repeats++;
            continue;
        }
        if (sepconv_generate_refuses(layer, &s, &generate)) {
            c.refused++;
            continue;
        }
        all[kept++] = s;
    }
    c.distinct = (int64_t)kept;
    if (counts)
        *counts = c;
    *list = all;
    *count = kept;
    return SEPCONV_OK;
}

/* ------------------------------------------------------------ estimate */

/* The machine the estimate assumes: the data cache sizes (sysconf, else a
 * Zen 4's), two vector FMAs and two vector loads a cycle, and bytes a
 * cycle from L2 and from memory. */
typedef struct machine {
    double l1, l2, l2_bytes_per_cycle, memory_bytes_per_cycle;
} machine;

static machine machine_get(void)
{
    machine m = {32768, 1048576, 32, 10};
#ifdef _SC_LEVEL1_DCACHE_SIZE
    long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l1 > 4096)
        m.l1 = (double)l1;
    if (l2 > 65536)
        m.l2 = (double)l2;
#endif
    return m;
}

/* Floats per vector and vector registers of the code a target gets. */
static void vector_of(sepconv_target target, bool microkernels, bool for_tcc, double *width,
                      double *registers)
{
    *width = target == SEPCONV_TARGET_AVX512 ? 16 : target == SEPCONV_TARGET_AVX2 ? 8
             : target == SEPCONV_TARGET_NEON ? 4 : 8; /* portable: what cc vectorizes */
    *registers = target == SEPCONV_TARGET_AVX2 ? 16 : 32;
    if (for_tcc && !microkernels) { /* tcc's plain C: scalar, few registers */
        *width = 1;
        *registers = 8;
    }
}

/* The cost of spilling: accumulators and operands beyond the registers. */
static double spill(double need, double registers)
{
    return need <= registers ? 1.0 : 1.0 + 2.0 * (need - registers) / registers;
}

/* Cycles per vector FMA of a register tile of `accumulators` vectors:
 * two FMAs a cycle while each accumulator's chain waits out the FMA's
 * latency (4 cycles), plus the loads (two a cycle), which overlap the FMAs
 * only in part, times the spill. */
#define FMA_LATENCY 4.0
static double tile_cycles(double loads_per_fma, double accumulators, double need,
                          double registers)
{
    double issue = fmax(0.5, FMA_LATENCY / fmax(accumulators, 1.0));
    return (issue + 0.25 * loads_per_fma) * spill(need, registers);
}

/* The share of pixels of a row in full groups of `tile`, the rest in
 * groups as slow as single pixels. */
static double grouped(double per_fma_tile, double per_fma_one, int64_t width, int64_t tile)
{
    double full = (double)(width / tile * tile) / (double)width;
    return full * per_fma_tile + (1 - full) * per_fma_one;
}

/* Unrolled code: a little faster while it fits the instruction cache,
 * slower past it (a full unroll of a large layer). */
static double unroll_factor(int64_t unroll, int64_t pixels, int64_t width)
{
    if (unroll == 2)
        return pixels <= 196 ? 0.95 : 1.0 + 0.1 * log2((double)pixels / 196.0);
    if (unroll == 1)
        return width <= 14 ? 0.97 : 1.0 + 0.02 * log2((double)width / 14.0);
    return 1.0;
}

/* Cycles of the depthwise (or conv) stage. */
static double spatial_cycles(const sepconv_layer *l, const sepconv_schedule *s, double width,
                             double registers, const machine *m)
{
    double K = (double)l->kernel, S = (double)l->stride;
    int64_t channels = l->op == SEPCONV_OP_CONV ? l->n : l->mid_c;
    double macs = (double)(l->batch * l->out_h * l->out_w) * (double)channels * K * K *
                  (l->op == SEPCONV_OP_CONV ? (double)l->m : 1.0);
    int64_t cb = s->value[SEPCONV_KNOB_CHANNEL_BLOCK], tile = s->value[SEPCONV_KNOB_TILE_W];
    if (cb > channels)
        cb = channels;
    double nv = ceil((double)cb / width);
    /* channels in blocks of cb: a rest that is not whole vectors runs as arrays */
    double rest = (double)(channels % cb), waste = 1.0;
    if (rest > 0 && fmod(rest, width) != 0)
        waste += rest / (double)channels;
    double per[2];
    for (int i = 0; i < 2; i++) {
        double t = i == 0 ? (double)tile : 1.0;
        /* a sliding window: a row of the group reads (t-1)*S + K input
         * vectors and K weights for K*t FMAs */
        double loads = ((t - 1) * S + K + K) / (K * t);
        double need = t * nv + nv * fmin((t - 1) * S + K, 4.0) + nv;
        per[i] = tile_cycles(loads, t * nv, need, registers);
    }
    double cycles = grouped(per[0], per[1], l->out_w, tile) * macs / width * waste;
    /* a block's working set: K rows of cb channels across the tile */
    double set = K * ((double)(tile - 1) * S + K) * (double)cb * 4;
    if (set > m->l1)
        cycles *= 1.1;
    return cycles * unroll_factor(s->value[SEPCONV_KNOB_UNROLL], l->out_h * l->out_w, l->out_w);
}

/* Cycles of the pointwise stage. */
static double pointwise_cycles(const sepconv_layer *l, const sepconv_schedule *s,
                               double width, double registers, const machine *m)
{
    bool sep = l->op == SEPCONV_OP_SEP;
    double M = (double)(sep ? l->mid_c : l->m), N = (double)l->n;
    double pixels = (double)(l->batch * l->out_h * l->out_w);
    double macs = pixels * M * N;
    int64_t pb = s->value[SEPCONV_KNOB_PIXEL_BLOCK], ob = s->value[SEPCONV_KNOB_OC_BLOCK];
    double nv = ceil((double)ob / width);
    double rest = fmod(N, (double)ob), waste = 1.0;
    if (rest > 0 && fmod(rest, width) != 0)
        waste += rest / N * 2; /* arrays, not vectors */
    double per[2];
    for (int i = 0; i < 2; i++) {
        double t = i == 0 ? (double)pb : 1.0;
        per[i] = tile_cycles((nv + t) / (t * nv), t * nv, t * nv + nv + 1, registers);
    }
    double cycles = grouped(per[0], per[1], l->out_w, pb) * macs / width * waste;
    double block = (double)ob * M * 4; /* the weights a block streams */
    if (!s->value[SEPCONV_KNOB_PACK])
        cycles *= 1.08; /* strided weight rows */
    if (block > m->l2 / 2)
        cycles *= 1.15;
    else if (block > m->l1)
        cycles *= 1.03;
    return cycles * unroll_factor(sepconv_schedule_pw_unroll(s), l->out_h * l->out_w, l->out_w);
}

/* Cycles of a pointwise stage that calls the ISA's micro-kernel (7 pixels
 * by up to 64 channels): oc_block sizes the weight block it streams. */
static double pointwise_uk_cycles(const sepconv_layer *l, const sepconv_schedule *s,
                                  double width, const machine *m)
{
    double M = (double)(l->op == SEPCONV_OP_SEP ? l->mid_c : l->m), N = (double)l->n;
    double macs = (double)(l->batch * l->out_h * l->out_w) * M * N;
    double ob = (double)s->value[SEPCONV_KNOB_OC_BLOCK];
    double vectors = fmin(ceil(ob / width), 64 / width);
    double cycles = macs / width * 0.5 * (1 + 0.25 * (4 - fmin(vectors, 4)) / 4);
    if (ob * M * 4 > m->l2 / 2)
        cycles *= 1.15;
    else if (ob * M * 4 > m->l1)
        cycles *= 1.03;
    return cycles;
}

double sepconv_space_estimate(const sepconv_layer *l, const sepconv_schedule *s,
                              sepconv_backend backend)
{
    machine m = machine_get();
    bool microkernels = backend == SEPCONV_BACKEND_TCC && s->target != SEPCONV_TARGET_PORTABLE;
    bool for_tcc = backend == SEPCONV_BACKEND_TCC;
    stages st = stages_of(l, s, microkernels);
    double width, registers, cycles = 0;
    vector_of(s->target, microkernels, for_tcc, &width, &registers);
    double plain_width = for_tcc ? 1 : width, plain_registers = for_tcc ? 8 : registers;
    if (st.spatial && st.spatial_uk) {
        double macs = (double)(l->batch * l->out_h * l->out_w * l->mid_c * l->kernel *
                               l->kernel);
        cycles += macs / width * 0.75; /* fixed: the micro-kernel's own tile */
    } else if (st.spatial) {
        cycles += spatial_cycles(l, s, microkernels ? plain_width : width,
                                 microkernels ? plain_registers : registers, &m);
    }
    if (st.pointwise && st.pointwise_uk)
        cycles += pointwise_uk_cycles(l, s, width, &m);
    else if (st.pointwise) /* with micro-kernels: plain C for tcc */
        cycles += pointwise_cycles(l, s, microkernels ? plain_width : width,
                                   microkernels ? plain_registers : registers, &m);
    if (l->op == SEPCONV_OP_SEP) {
        /* the intermediate: written once and read back, from L2 while its
         * tile fits there, else from memory; each tile streams the
         * pointwise weights again */
        double rows = (double)(l->batch * l->out_h);
        int64_t fuse = s->value[SEPCONV_KNOB_FUSE];
        double tile_rows = fuse == 0 ? rows
                           : fuse == 2 ? 1 : fmin((double)s->value[SEPCONV_KNOB_TILE_H], rows);
        double row_bytes = (double)(l->out_w * l->mid_c) * 4;
        double tile_bytes = tile_rows * row_bytes;
        if (fuse == 2 && st.spatial_uk && st.pointwise_uk) /* a tile of pixels */
            tile_bytes = fmin((double)(s->value[SEPCONV_KNOB_TILE_H] *
                                       sepconv_microkernel_pixels(s->target)),
                              (double)l->out_w) * (double)l->mid_c * 4;
        double traffic = 2 * rows * row_bytes;
        cycles += traffic / (tile_bytes <= m.l2 / 2 ? m.l2_bytes_per_cycle
                                                   : m.memory_bytes_per_cycle);
        double weights = (double)(l->mid_c * l->n) * 4;
        cycles += rows / tile_rows * weights /
                  (weights <= m.l2 / 2 ? m.l2_bytes_per_cycle : m.memory_bytes_per_cycle);
    }
    return cycles;
}

/* -------------------------------------------------------------- sweeps */

typedef struct ranked {
    double estimate;
    size_t index;
} ranked;

static int by_estimate(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->estimate != y->estimate)
        return x->estimate < y->estimate ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Puts the list in guided order: the seeds first (those in the list), then
 * by estimate, every EXPLORE-th candidate instead a seeded random one of
 * those left, and the default schedule (the baseline, measured anyway)
 * last. */
#define EXPLORE 4
static sepconv_status guided_order(const sepconv_layer *layer, sepconv_backend backend,
                                   uint64_t seed, const sepconv_schedule *seeds,
                                   size_t seed_count, sepconv_schedule *list, size_t count,
                                   sepconv_error *error)
{
    ranked *order = malloc((count ? count : 1) * sizeof *order);
    sepconv_schedule *copy = malloc((count ? count : 1) * sizeof *copy);
    bool *taken = calloc(count ? count : 1, sizeof *taken);
    if (!order || !copy || !taken) {
        free(order);
        free(copy);
        free(taken);
        return sepconv_fail(error, SEPCONV_NOMEM, "out of memory for the guided order");
    }
    for (size_t i = 0; i < count; i++)
        order[i] = (ranked){sepconv_space_estimate(layer, &list[i], backend), i};
    qsort(order, count, sizeof *order, by_estimate);
    memcpy(copy, list, count * sizeof *copy);
    size_t out = 0, next = 0, left = count;
    for (size_t s = 0; s < seed_count; s++)
        for (size_t i = 0; i < count; i++)
            if (!taken[i] && same_schedule(&copy[i], &seeds[s])) {
                taken[i] = true;
                list[out++] = copy[i];
                left--;
            }
    /* the default schedule is measured as the baseline anyway: last */
    sepconv_schedule defaults;
    bool has_default = sepconv_schedule_default(layer, count ? list[0].target
                                                             : SEPCONV_TARGET_PORTABLE,
                                                &defaults, NULL) == SEPCONV_OK;
    size_t default_at = count;
    for (size_t i = 0; has_default && i < count; i++)
        if (!taken[i] && same_schedule(&copy[i], &defaults)) {
            default_at = i;
            taken[i] = true;
            left--;
        }
    uint64_t state = seed;
    while (left > 0) {
        size_t pick = count;
        if (out % EXPLORE == EXPLORE - 1) { /* explore: the j-th of those left */
            size_t j = (size_t)(sepconv_random_next(&state) % left);
            for (size_t i = 0; i < count && pick == count; i++)
                if (!taken[order[i].index] && j-- == 0)
                    pick = order[i].index;
        } else {
            while (taken[order[next].index])
                next++;
            pick = order[next].index;
        }
        taken[pick] = true;
        list[out++] = copy[pick];
        left--;
    }
    if (default_at < count)
        list[out++] = copy[default_at];
    free(order);
    free(copy);
    free(taken);
    return SEPCONV_OK;
}

sepconv_status sepconv_space_sweep(const sepconv_layer *layer,
                                   const sepconv_tune_options *options,
                                   const sepconv_schedule *seeds, size_t seed_count,
                                   sepconv_schedule **candidates, size_t *count,
                                   sepconv_space_counts *counts, sepconv_error *error)
{
    *candidates = NULL;
    *count = 0;
    if (options->shards < 1 || options->shard < 0 || options->shard >= options->shards)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "shard %d/%d is not valid (expected I/N with 0 <= I < N)",
                            options->shard, options->shards);
    if (options->trials < 0)
        return sepconv_fail(error, SEPCONV_INVALID, "trials must be 0 (all) or more");
    sepconv_schedule *all = NULL;
    size_t valid = 0;
    sepconv_status status = sepconv_space_distinct(layer, &options->kernel, &all, &valid,
                                                   counts, error);
    if (status != SEPCONV_OK)
        return status;
    if (options->strategy == SEPCONV_STRATEGY_RANDOM) { /* seeded Fisher-Yates */
        uint64_t state = options->seed;
        for (size_t i = valid; i > 1; i--) {
            size_t j = (size_t)(sepconv_random_next(&state) % i);
            sepconv_schedule swap = all[i - 1];
            all[i - 1] = all[j];
            all[j] = swap;
        }
    } else if (options->strategy == SEPCONV_STRATEGY_GUIDED) {
        status = guided_order(layer, options->kernel.backend, options->seed, seeds,
                              seed_count, all, valid, error);
        if (status != SEPCONV_OK) {
            free(all);
            return status;
        }
    }
    size_t take = options->trials > 0 && (size_t)options->trials < valid
                      ? (size_t)options->trials : valid;
    size_t kept = 0;
    for (size_t k = 0; k < take; k++)
        if (k % (size_t)options->shards == (size_t)options->shard)
            all[kept++] = all[k];
    *candidates = all;
    *count = kept;
    return SEPCONV_OK;
}
