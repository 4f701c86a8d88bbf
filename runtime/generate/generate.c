/*
 * generate.c -- from a layer and a schedule to C source: picks the template,
 * names the kernel, checks the size budget, hands the layer and schedule to
 * the template as Lua tables and renders the .c and the .h.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "core/core.h"
#include "generate/generate.h"
#include "generate/render.h"

/* What the fill and collect callbacks share. */
typedef struct generation {
    const sepconv_layer *layer;
    const sepconv_schedule *schedule;
    const char *template_name;
    const char *symbol;
    bool microkernels; /* plain C calling the ISA's micro-kernels (tcc), not intrinsics */
    char spec[1024], schedule_text[512], command[2048];
    int64_t scratch_bytes, packed_elements, rows;
} generation;

/* The top template of an op (and, for sep, of its fusion). */
static const char *template_for(const sepconv_layer *layer,
                                const sepconv_schedule *schedule)
{
    if (layer->dtype == SEPCONV_DTYPE_INT8)
        return "convolution_int8.c.in"; /* conv, dw and pw (sep: not yet) */
    switch (layer->op) {
    case SEPCONV_OP_CONV: return "conv.c.in";
    case SEPCONV_OP_DW: return "depthwise.c.in";
    case SEPCONV_OP_PW: return "pointwise.c.in";
    case SEPCONV_OP_SEP:
        return schedule->value[SEPCONV_KNOB_FUSE] ? "separable_fused.c.in"
                                                  : "separable.c.in";
    }
    return "?";
}

/* FNV-1a over a string: a short stable tag for derived kernel names. */
static uint32_t name_hash(const char *text, uint32_t hash)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        hash = (hash ^ *p) * 16777619u;
    return hash;
}

/* Derives a kernel symbol from op, shape and schedule, e.g.
 * sepconv_sep_112x112x32_64_k3s1_1a2b3c4d. */
static void derive_symbol(const generation *g, sepconv_target target,
                          char *out, size_t capacity)
{
    const sepconv_layer *l = g->layer;
    uint32_t hash = name_hash(g->spec, 2166136261u);
    hash = name_hash(g->schedule_text, hash);
    hash = name_hash(sepconv_target_name(target), hash);
    if (g->microkernels)
        hash = name_hash("microkernels", hash);
    snprintf(out, capacity, "sepconv_%s_%lldx%lldx%lld_%lld_k%llds%lld_%08x",
             sepconv_op_name(l->op), (long long)l->in_h, (long long)l->in_w,
             (long long)l->m, (long long)l->out_c, (long long)l->kernel,
             (long long)l->stride, hash);
}

/* Whether a name is a C identifier that fits. */
static bool valid_symbol(const char *name)
{
    size_t length = strlen(name);
    if (length == 0 || length > 100 || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* A run of output positions along one axis that the same taps reach: one
 * segment of common.segments. */
typedef struct run {
    int64_t count, taps; /* positions; taps landing inside the input (0: none) */
} run;

/* Runs counted one by one: at most 2 * D_K - 1 exist; a kernel with more
 * loops over its taps and merges them, and is left to the renderer. */
#define RUNS_MAX 256

/* An axis cut as the templates cut it. */
typedef struct axis_runs {
    run runs[RUNS_MAX];
    int count;      /* runs */
    int longest;    /* the run of most positions (the first if tied) */
    int64_t widest; /* the most taps of any run */
    bool truncated; /* more than RUNS_MAX runs */
} axis_runs;

/* Cuts output positions 0..out-1 into runs as common.segments does.  Tap k
 * of position o reads o*stride - pad + k*dilation: the first and the last
 * tap inside change at O(kernel) positions, each found in closed form. */
static void cut_axis(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                     int64_t dilation, int64_t pad, axis_runs *a)
{
    a->count = a->longest = 0;
    a->widest = 0;
    a->truncated = false;
    int64_t last_lo = 0, last_hi = 0;
    for (int64_t o = 0; o < out && a->count < RUNS_MAX;) {
        int64_t base = o * stride - pad, end = out, next;
        int64_t lo = base >= 0 ? 0 : (dilation - 1 - base) / dilation;
        int64_t hi = base > in - 1 ? -1 : (in - 1 - base) / dilation;
        if (hi > kernel - 1)
            hi = kernel - 1;
        if (lo > 0 && (next = (pad - (lo - 1) * dilation + stride - 1) / stride) < end)
            end = next; /* where one more tap reaches the top of the input */
        if (hi >= 0 && (next = (in - 1 + pad - hi * dilation) / stride + 1) < end)
            end = next; /* where the last tap passes the bottom */
        if (lo > hi)
            lo = 0, hi = -1; /* no tap lands inside */
        if (a->count > 0 && lo == last_lo && hi == last_hi) {
            a->runs[a->count - 1].count += end - o;
        } else {
            a->runs[a->count++] = (run){end - o, hi - lo + 1};
            last_lo = lo;
            last_hi = hi;
        }
        o = end;
        a->truncated = o < out && a->count == RUNS_MAX;
    }
    for (int i = 0; i < a->count; i++) {
        if (a->runs[i].count > a->runs[a->longest].count)
            a->longest = i;
        if (a->runs[i].taps > a->widest)
            a->widest = a->runs[i].taps;
    }
}

/* A stage as the estimate sees it: its geometry and how its template
 * emits a pixel group. */
typedef struct stage_shape {
    bool reduces;         /* a loop over input channels per tap (conv, pw) */
    int64_t in_h, in_w, out_h, out_w, kernel, stride, dilation, pad_top, pad_left;
    int64_t channels;     /* output channels, in blocks of `block` */
    int64_t block, tile;  /* channel_block (oc_block), tile_w (pixel_block) */
    int64_t vector;       /* floats per vector; 0: portable code */
    bool act;             /* an activation line per stored value */
    int64_t unrolled_taps;/* the most taps a pixel unrolls (common.loops_taps) */
    int unroll;           /* 0 none, 1 row, 2 full */
} stage_shape;

/* Bytes a counted line takes at least: every one is indented 16 to 28
 * columns and most hold an index expression; a line of intrinsics more. */
#define LINE_BYTES 40.0
#define VECTOR_LINE_BYTES 56.0
/* The header comment, preamble and entry points of the smallest kernel
 * (2850 bytes: op=pw df=1 m=1 n=1 --target avx512 --name a, micro-kernels). */
#define FILE_BYTES 2000.0

/* Bytes of one channel block of `width` channels for `pixels` pixels, whose
 * taps are `taps` unrolled ones or (looped) one loop body. */
static double block_bytes(const stage_shape *st, int64_t width, int64_t pixels,
                          int64_t taps, bool looped)
{
    double t = (double)pixels;
    double nv = st->vector && width % st->vector == 0 ? (double)(width / st->vector) : 0;
    double init, tap, store, line = LINE_BYTES;
    if (nv > 0) {
        init = t * nv;
        tap = st->reduces ? 3 + nv + t * (2 + nv) : 2 + nv + t * nv;
        store = t * nv * (st->act ? 2 : 1);
        line = VECTOR_LINE_BYTES;
    } else {
        init = t + 3;
        tap = st->reduces ? 2 * t + 5 : t + 3;
        store = 2 + t * (st->act ? 3 : 2);
    }
    double taps_bytes = looped ? (taps > 0 ? 5 * LINE_BYTES + tap * line : 0)
                               : (double)taps * tap * line;
    return 2 * LINE_BYTES + (init + store) * line + taps_bytes;
}

/* Bytes of one pixel group: every channel block under its taps. */
static double group_bytes(const stage_shape *st, int64_t pixels, int64_t taps,
                          bool looped)
{
    double bytes = 2 * LINE_BYTES;
    if (st->channels >= st->block)
        bytes += block_bytes(st, st->block, pixels, taps, looped);
    if (st->channels % st->block)
        bytes += block_bytes(st, st->channels % st->block, pixels, taps, looped);
    return bytes;
}

/* Whether run i of an axis is merged into a run found at run time: looped
 * taps merge the runs on each side of the longest when a side has two or
 * more (common.merge_borders).  *first says it opens the merged run. */
static bool merged(const axis_runs *a, bool merging, int i, bool *first)
{
    bool before = i < a->longest;
    int side = before ? a->longest : a->count - 1 - a->longest;
    if (!merging || a->count <= 3 || i == a->longest || side < 2)
        return false;
    *first = i == 0 || i == a->longest + 1;
    return true;
}

/* Bytes of one row of a stage whose rows have `row_taps` taps
 * (column_walk.c.in): each column run in groups of tile pixels, a loop and
 * its tail, or one merged loop of single pixels. */
static double row_bytes(const stage_shape *st, const axis_runs *cols, int unroll,
                        bool looped, int64_t row_taps, bool clamped_row)
{
    double bytes = 0;
    for (int i = 0; i < cols->count; i++) {
        const run *r = &cols->runs[i];
        bool first = false;
        if (merged(cols, looped && unroll == 0, i, &first)) {
            if (first)
                bytes += 5 * LINE_BYTES + group_bytes(st, 1, 1, true);
            continue;
        }
        int64_t taps = clamped_row ? 1 : row_taps * r->taps;
        if (unroll != 0 || r->count < 2 * st->tile)
            bytes += (double)(r->count / st->tile) * group_bytes(st, st->tile, taps, looped);
        else
            bytes += group_bytes(st, st->tile, taps, looped);
        if (r->count % st->tile)
            bytes += group_bytes(st, r->count % st->tile, taps, looped);
    }
    return bytes;
}

/* Bytes of a stage: its row runs (merged, or one per row under
 * unroll=full), each times its columns. */
static double stage_bytes(const stage_shape *st)
{
    axis_runs runs[2], *r = &runs[0], *c = &runs[1];
    cut_axis(st->in_h, st->out_h, st->kernel, st->stride, st->dilation, st->pad_top, r);
    cut_axis(st->in_w, st->out_w, st->kernel, st->stride, st->dilation, st->pad_left, c);
    if (r->truncated || c->truncated)
        return 0.0; /* no lower bound worth the work: the renderer's limit */
    int unroll = st->unroll;
    bool looped = r->widest * c->widest > st->unrolled_taps || r->count > 5 ||
                  c->count > 5;
    double bytes = 0;
    for (int i = 0; i < r->count; i++) {
        const run *row = &r->runs[i];
        bool first = false;
        if (unroll != 2 && merged(r, looped, i, &first)) {
            if (first)
                bytes += 3 * LINE_BYTES + row_bytes(st, c, unroll, looped, 1, true);
            continue;
        }
        double rows_of_run = unroll == 2 ? (double)row->count : 1.0;
        bytes += rows_of_run * ((looped ? 0 : (double)row->taps) * LINE_BYTES +
                                row_bytes(st, c, unroll, looped, row->taps, false));
    }
    return bytes;
}

/* A lower bound on the generated source's size, so that a schedule whose
 * source would pass the budget is refused at once instead of rendered (the
 * exact limit is enforced while rendering).  It follows the templates: the
 * border runs of rows and columns, the groups of tile_w (pixel_block)
 * pixels, the channel blocks, and each block's taps, unrolled (unroll=row:
 * every column; full: every pixel) or looped. */
static double minimum_source_bytes(const sepconv_layer *l, const sepconv_schedule *s,
                                   bool microkernels)
{
    sepconv_target target = s->target;
    int64_t vector = microkernels                       ? 0
                     : target == SEPCONV_TARGET_NEON   ? 4
                     : target == SEPCONV_TARGET_AVX2   ? 8
                     : target == SEPCONV_TARGET_AVX512 ? 16 : 0;
    bool nhwc = l->layout == SEPCONV_LAYOUT_NHWC;
    stage_shape spatial = {
        .in_h = l->in_h, .in_w = l->in_w, .out_h = l->out_h, .out_w = l->out_w,
        .kernel = l->kernel, .stride = l->stride, .dilation = l->dilation,
        .pad_top = l->pad_top, .pad_left = l->pad_left,
        .block = s->value[SEPCONV_KNOB_CHANNEL_BLOCK],
        .tile = s->value[SEPCONV_KNOB_TILE_W],
        .unroll = (int)s->value[SEPCONV_KNOB_UNROLL]};
    double bytes = FILE_BYTES;
    if (l->op == SEPCONV_OP_CONV) {
        spatial.reduces = true;
        spatial.channels = l->n;
        spatial.vector = nhwc ? vector : 0;
        spatial.act = l->conv_act != SEPCONV_ACT_NONE;
        spatial.unrolled_taps = 1;
        bytes += stage_bytes(&spatial);
    } else if (l->op != SEPCONV_OP_PW &&
               !(microkernels && nhwc && l->multiplier == 1)) {
        /* (micro-kernel code hands channel-last rows to a micro-kernel) */
        spatial.channels = l->mid_c;
        spatial.vector = nhwc && l->multiplier == 1 ? vector : 0;
        spatial.act = l->dw_act != SEPCONV_ACT_NONE;
        spatial.unrolled_taps = 9;
        bytes += stage_bytes(&spatial);
    }
    bool sep = l->op == SEPCONV_OP_SEP;
    bool pack = s->value[SEPCONV_KNOB_PACK] != 0;
    if ((l->op == SEPCONV_OP_PW || sep) &&
        !(microkernels && pack && nhwc &&
          (sep || (l->pad_top == 0 && l->pad_left == 0)))) {
        /* the pointwise stage: one tap, reduced over its input channels */
        stage_shape pw = {
            .reduces = true, .in_h = sep ? l->out_h : l->in_h,
            .in_w = sep ? l->out_w : l->in_w, .out_h = l->out_h, .out_w = l->out_w,
            .kernel = 1, .stride = sep ? 1 : l->stride, .dilation = 1,
            .pad_top = sep ? 0 : l->pad_top, .pad_left = sep ? 0 : l->pad_left,
            .channels = l->n, .block = s->value[SEPCONV_KNOB_OC_BLOCK],
            .tile = s->value[SEPCONV_KNOB_PIXEL_BLOCK], .vector = nhwc ? vector : 0,
            .act = l->pw_act != SEPCONV_ACT_NONE, .unrolled_taps = INT64_MAX,
            .unroll = (int)sepconv_schedule_pw_unroll(s)};
        bytes += stage_bytes(&pw);
    }
    return bytes;
}

/* Pushes a table of the layer's fields, as the templates see them. */
static void push_layer(lua_State *L, const sepconv_layer *l)
{
    lua_newtable(L);
    const struct { const char *name; int64_t value; } numbers[] = {
        {"batch", l->batch}, {"in_h", l->in_h}, {"in_w", l->in_w}, {"m", l->m},
        {"n", l->n}, {"kernel", l->kernel}, {"stride", l->stride},
        {"dilation", l->dilation}, {"multiplier", l->multiplier},
        {"pad_top", l->pad_top}, {"pad_left", l->pad_left},
        {"pad_bottom", l->pad_bottom}, {"pad_right", l->pad_right},
        {"bias", l->bias}, {"out_h", l->out_h}, {"out_w", l->out_w},
        {"mid_c", l->mid_c}, {"out_c", l->out_c},
        {"input_elements", l->input_elements},
        {"output_elements", l->output_elements},
        {"mid_elements", l->mid_elements},
        {"weight_elements", l->weight_elements},
        {"bias_elements", l->bias_elements},
        {"pw_weight_elements", l->pw_weight_elements},
        {"pw_bias_elements", l->pw_bias_elements}};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        lua_pushinteger(L, (lua_Integer)numbers[i].value);
        lua_setfield(L, -2, numbers[i].name);
    }
    /* int8: the zero points, and the activation's bounds in the quantized
     * domain (of the layer's one stage: int8 generation is conv, dw, pw) */
    if (l->dtype == SEPCONV_DTYPE_INT8) {
        int32_t act_min, act_max;
        sepconv_activation act = l->op == SEPCONV_OP_DW ? l->dw_act
                                 : l->op == SEPCONV_OP_PW ? l->pw_act : l->conv_act;
        sepconv_q_activation_range(act, l->quant.out_scale, l->quant.out_zero, &act_min,
                                   &act_max);
        const struct { const char *name; int32_t value; } quant[] = {
            {"in_zero", l->quant.in_zero}, {"out_zero", l->quant.out_zero},
            {"act_min", act_min}, {"act_max", act_max}};
        for (size_t i = 0; i < sizeof quant / sizeof quant[0]; i++) {
            lua_pushinteger(L, (lua_Integer)quant[i].value);
            lua_setfield(L, -2, quant[i].name);
        }
    }
    lua_pushstring(L, l->dtype == SEPCONV_DTYPE_INT8 ? "int8" : "float32");
    lua_setfield(L, -2, "dtype");
    const struct { const char *name; const char *value; } words[] = {
        {"op", sepconv_op_name(l->op)}, {"name", l->name},
        {"layout", sepconv_layout_name(l->layout)},
        {"dw_act", sepconv_activation_name(l->dw_act)},
        {"pw_act", sepconv_activation_name(l->pw_act)},
        {"conv_act", sepconv_activation_name(l->conv_act)}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        lua_pushstring(L, words[i].value);
        lua_setfield(L, -2, words[i].name);
    }
}

/* Pushes a table of the schedule's knobs (unroll as its name). */
static void push_schedule(lua_State *L, const sepconv_schedule *s)
{
    lua_newtable(L);
    for (int k = 0; k < SEPCONV_KNOB_COUNT; k++) {
        sepconv_knob_info info;
        if (sepconv_knob_describe(s->op, s->target, (sepconv_knob)k, &info, NULL) !=
            SEPCONV_OK)
            continue;
        const char *name = NULL;
        for (int i = 0; i < info.count; i++)
            if (info.values[i] == s->value[k])
                name = info.value_names[i];
        if (name)
            lua_pushstring(L, name);
        else
            lua_pushinteger(L, (lua_Integer)s->value[k]);
        lua_setfield(L, -2, info.name);
    }
}

/* Fills the template environment: layer, schedule, target, symbol,
 * generator, and the plan computed by common.lua. */
static sepconv_status fill(lua_State *L, int env, void *context, sepconv_error *error)
{
    generation *g = context;
    (void)error;
    push_layer(L, g->layer);
    lua_setfield(L, env, "layer");
    push_schedule(L, g->schedule);
    lua_setfield(L, env, "schedule");
    lua_pushstring(L, sepconv_target_name(g->schedule->target));
    lua_setfield(L, env, "target");
    lua_pushboolean(L, g->microkernels);
    lua_setfield(L, env, "microkernels");
    lua_pushinteger(L, g->microkernels ? (lua_Integer)sepconv_microkernel_pixels(
                                             g->schedule->target) : 0);
    lua_setfield(L, env, "microkernel_pixels");
    lua_pushstring(L, g->symbol);
    lua_setfield(L, env, "symbol");
    lua_newtable(L);
    const char *fields[][2] = {{"version", SEPCONV_VERSION},
                               {"template", g->template_name},
                               {"spec", g->spec},
                               {"schedule", g->schedule_text},
                               {"command", g->command}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        lua_pushstring(L, fields[i][1]);
        lua_setfield(L, -2, fields[i][0]);
    }
    lua_setfield(L, env, "generator");
    /* plan = import("common.lua").plan(layer, schedule, target, microkernels) */
    lua_getfield(L, env, "import");
    lua_pushliteral(L, "common.lua");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "plan");
    lua_getfield(L, env, "layer");
    lua_getfield(L, env, "schedule");
    lua_getfield(L, env, "target");
    lua_getfield(L, env, "microkernels");
    lua_getfield(L, env, "microkernel_pixels");
    lua_call(L, 5, 1);
    lua_setfield(L, env, "plan");
    lua_pop(L, 1);
    return SEPCONV_OK;
}

/* Reads what the caller must provide back out of the plan. */
static sepconv_status collect(lua_State *L, int env, void *context,
                              sepconv_error *error)
{
    generation *g = context;
    lua_getfield(L, env, "plan");
    const char *names[] = {"scratch_bytes", "packed_elements", "rows"};
    int64_t *targets[] = {&g->scratch_bytes, &g->packed_elements, &g->rows};
    for (int i = 0; i < 3; i++) {
        int isnum = 0;
        lua_getfield(L, -1, names[i]);
        lua_Integer value = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum || value < 0)
            return sepconv_fail(error, SEPCONV_TEMPLATE,
                                "%s: plan.%s is not a whole number >= 0",
                                g->template_name, names[i]);
        *targets[i] = (int64_t)value;
    }
    lua_pop(L, 1);
    return SEPCONV_OK;
}

/* Quotes a spec for the reproduction command when it holds no quote.  gen
 * writes intrinsics unless --backend tcc asks for micro-kernel calls (and
 * with the larger budget, so the command reproduces what cc accepted too). */
static void build_command(generation *g, const sepconv_schedule *schedule)
{
    snprintf(g->command, sizeof g->command,
             "sepconv gen '%s' --schedule %s%s --target %s --name %s", g->spec,
             g->schedule_text, g->microkernels ? " --backend tcc" : "",
             sepconv_target_name(schedule->target), g->symbol);
}

/* The source-size budget that applies: the caller's, else the default of
 * the backend the source is for.  tcc compiles megabytes of C in
 * milliseconds (SEPCONV_SOURCE_BUDGET_DEFAULT, 4 MiB), but gcc -O3 takes
 * seconds per hundred KiB of unrolled kernel (measured: 140 KiB 5 s,
 * 400 KiB 20-35 s on a Zen 4), so source for the cc backend gets a budget
 * (SEPCONV_CC_SOURCE_BUDGET_DEFAULT, 128 KiB) that stays well inside its
 * compile limit. */
static size_t source_budget(const sepconv_generate_options *options)
{
    if (options && options->source_budget)
        return options->source_budget;
    return options && options->for_cc ? SEPCONV_CC_SOURCE_BUDGET_DEFAULT
                                       : SEPCONV_SOURCE_BUDGET_DEFAULT;
}

/* Writes a size for people: "512.0 KiB", "4.0 MiB", "900 bytes". */
static void format_size(double bytes, char *out, size_t capacity)
{
    if (bytes >= 1048576.0)
        snprintf(out, capacity, "%.1f MiB", bytes / 1048576.0);
    else if (bytes >= 1024.0)
        snprintf(out, capacity, "%.1f KiB", bytes / 1024.0);
    else
        snprintf(out, capacity, "%.0f bytes", bytes);
}

/* Fills the message of a source that passes the budget: sizes readable,
 * whose budget it is and where it is raised (the CLI appends its flag to
 * a message that ends in "raise the budget"). */
static sepconv_status over_budget(const sepconv_generate_options *options,
                                  const sepconv_schedule *schedule, double minimum,
                                  sepconv_error *error)
{
    static const char *const advice[] = {"smaller blocks (tile_w, pixel_block)",
                                         "unroll=none", "unroll=none or row"};
    int64_t unroll = schedule->value[SEPCONV_KNOB_UNROLL];
    if (sepconv_schedule_pw_unroll(schedule) > unroll)
        unroll = sepconv_schedule_pw_unroll(schedule);
    const char *use = advice[unroll >= 0 && unroll < 3 ? unroll : 0];
    size_t budget = source_budget(options);
    char size[32], limit[32];
    format_size(minimum, size, sizeof size);
    format_size((double)budget, limit, sizeof limit);
    const char *whose = options && options->source_budget ? "as given"
                        : options && options->for_cc      ? "the cc backend's default"
                                                          : "the default";
    if (minimum > 0)
        return sepconv_fail(error, SEPCONV_LIMIT,
                            "the kernel's source would be at least %.0f bytes (%s), "
                            "over the source-size budget of %zu bytes (%s), %s "
                            "(options.generate.source_budget); use %s, or raise the "
                            "budget", minimum, size, budget, limit, whose, use);
    return sepconv_fail(error, SEPCONV_LIMIT,
                        "the kernel's source passed the source-size budget of %zu "
                        "bytes (%s), %s (options.generate.source_budget), while it "
                        "was rendered; use %s, or raise the budget", budget, limit,
                        whose, use);
}

/* Renders one template into a malloc'd string. */
static sepconv_status render(generation *g, const char *template_name,
                             const sepconv_generate_options *options,
                             char **text, size_t *length, sepconv_error *error)
{
    render_request request = {.template_name = template_name,
                              .limits = render_default_limits(),
                              .fill = fill, .collect = collect, .context = g};
    request.template_dir = options ? options->template_dir : NULL;
    request.template_dir_origin = "the template_dir option, --templates";
    if (!request.template_dir) {
        const char *dir = getenv("SEPCONV_TEMPLATE_DIR");
        if (dir && dir[0])
            request.template_dir = dir;
        request.template_dir_origin = "the environment variable SEPCONV_TEMPLATE_DIR";
    }
    request.limits.output_bytes = source_budget(options);
    if (options && options->instruction_budget)
        request.limits.instructions = options->instruction_budget;
    if (options && options->memory_budget)
        request.limits.memory_bytes = options->memory_budget;
    bool over_size_budget = false;
    request.over_size_budget = &over_size_budget;
    sepconv_status status = render_template(&request, text, length, error);
    /* the renderer's own message knows only bytes; say whose budget it is */
    if (over_size_budget)
        status = over_budget(options, g->schedule, 0.0, error);
    return status;
}

/* Generates the .c and .h of a layer's kernel under a schedule: a
 * self-contained .c and the .h for its callers.  The kernel is
 *   void SYMBOL(const float *input, const float *weights, const float *bias,
 *               const float *pw_weights, const float *pw_bias,
 *               const float *packed, float *output, void *scratch,
 *               long row_begin, long row_end);
 * (a sepconv_kernel_fn) computing output rows [row_begin, row_end) of
 * batch*out_h; when packed_elements > 0, SYMBOL_pack(weights, pw_weights,
 * packed) must have filled `packed` first, and `scratch` must hold
 * scratch_bytes per call. */
sepconv_status sepconv_generate(const sepconv_layer *layer,
                                const sepconv_schedule *schedule,
                                const sepconv_generate_options *options,
                                sepconv_source *source, sepconv_error *error)
{
    if (!layer || !schedule || !source)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "generate needs a layer, a schedule and a source");
    memset(source, 0, sizeof *source);
    bool int8 = layer->dtype == SEPCONV_DTYPE_INT8;
    if (int8 && layer->op == SEPCONV_OP_SEP)
        return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                            "generate: dtype=int8 templates exist for op=conv, dw and pw, "
                            "not op=sep: an int8 sep is its two stages, op=dw and op=pw "
                            "(sepconv_kernel_create composes their kernels)");
    if (schedule->op != layer->op)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "the schedule is for op=%s but the layer is op=%s",
                            sepconv_op_name(schedule->op), sepconv_op_name(layer->op));
    if ((unsigned)schedule->target >= SEPCONV_TARGET_ISA_COUNT)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "generate needs an instruction set, not target %s: resolve "
                            "it first (sepconv_target_resolve)",
                            sepconv_target_name(schedule->target));
    /* int8 code is plain C for cc on every target (gcc vectorizes it), and
     * for tcc calls the target's int8 micro-kernels */
    const bool microkernels = !(options && (options->for_cc || options->intrinsics)) &&
                              schedule->target != SEPCONV_TARGET_PORTABLE;
    sepconv_schedule plain = *schedule;
    if (int8 && !microkernels)
        plain.target = SEPCONV_TARGET_PORTABLE;
    schedule = &plain;
    generation g = {.layer = layer, .schedule = schedule,
                    .template_name = template_for(layer, schedule),
                    .microkernels = microkernels};
    sepconv_status status = sepconv_layer_format(layer, g.spec, sizeof g.spec, error);
    if (status == SEPCONV_OK)
        status = sepconv_schedule_format(schedule, g.schedule_text,
                                         sizeof g.schedule_text, error);
    if (status != SEPCONV_OK)
        return status;
    if (options && options->name) {
        if (!valid_symbol(options->name))
            return sepconv_fail(error, SEPCONV_INVALID,
                                "kernel name '%s' is not a C identifier of at "
                                "most 100 characters", options->name);
        snprintf(source->symbol, sizeof source->symbol, "%s", options->name);
    } else {
        derive_symbol(&g, schedule->target, source->symbol, sizeof source->symbol);
    }
    g.symbol = source->symbol;
    build_command(&g, schedule);
    /* (the estimate is the float templates'; the int8 one loops) */
    double minimum = int8 ? 0 : minimum_source_bytes(layer, schedule, g.microkernels);
    if (minimum > (double)source_budget(options))
        return over_budget(options, schedule, minimum, error);
    status = render(&g, g.template_name, options, &source->code,
                    &source->code_length, error);
    if (status == SEPCONV_OK)
        status = render(&g, int8 ? "kernel_int8.h.in" : "kernel.h.in", options,
                        &source->header,
                        &source->header_length, error);
    if (status != SEPCONV_OK) {
        sepconv_source_free(source);
        return status;
    }
    snprintf(source->template_name, sizeof source->template_name, "%s",
             g.template_name);
    source->scratch_bytes = g.scratch_bytes;
    source->packed_elements = g.packed_elements;
    source->rows = g.rows;
    return SEPCONV_OK;
}

/* Frees generated source. */
void sepconv_source_free(sepconv_source *source)
{
    if (!source)
        return;
    free(source->code);
    free(source->header);
    source->code = source->header = NULL;
    source->code_length = source->header_length = 0;
}

/* Whether the source-size budget refuses a schedule at once, from the
 * layer alone (the lower bound sepconv_generate checks before it renders):
 * the tuner drops such candidates before it draws any. */
int sepconv_generate_refuses(const sepconv_layer *layer, const sepconv_schedule *schedule,
                             const sepconv_generate_options *options)
{
    if (!layer || !schedule || schedule->op != layer->op ||
        (unsigned)schedule->target >= SEPCONV_TARGET_ISA_COUNT ||
        layer->dtype == SEPCONV_DTYPE_INT8) /* (int8 code loops: no size to refuse) */
        return 0;
    bool microkernels = !(options && (options->for_cc || options->intrinsics)) &&
                        schedule->target != SEPCONV_TARGET_PORTABLE;
    return minimum_source_bytes(layer, schedule, microkernels) >
           (double)source_budget(options);
}
