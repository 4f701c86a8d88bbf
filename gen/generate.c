/*
 * generate.c -- from a layer and a schedule to C source: picks the template,
 * names the kernel, checks the size budget, hands the layer and schedule to
 * the template as Lua tables and renders the .c and the .h.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "internal.h"
#include "render.h"

#define DEFAULT_SOURCE_BUDGET ((size_t)4 << 20)

/* What the fill and collect callbacks share. */
typedef struct generation {
    const sepconv_layer *layer;
    const sepconv_schedule *schedule;
    const char *template_name;
    const char *symbol;
    char spec[1024], schedule_text[512], command[2048];
    int64_t scratch_bytes, packed_elements, rows;
} generation;

/* The top template of an op (and, for sep, of its fusion). */
static const char *template_for(const sepconv_layer *layer,
                                const sepconv_schedule *schedule)
{
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

/* How many (output position, tap) pairs along one axis read inside the
 * input: for tap k, the o in [0, out) with 0 <= o*stride - pad + k*dilation
 * < in.  O(kernel), so it is cheap for any size. */
static double taps_inside(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                          int64_t dilation, int64_t pad)
{
    double total = 0.0;
    for (int64_t k = 0; k < kernel; k++) {
        int64_t shift = pad - k * dilation; /* o*stride >= shift, < in + shift */
        int64_t first = shift <= 0 ? 0 : (shift + stride - 1) / stride;
        int64_t last = in - 1 + shift < 0 ? -1 : (in - 1 + shift) / stride;
        if (last > out - 1)
            last = out - 1;
        if (last >= first)
            total += (double)(last - first + 1);
    }
    return total;
}

/* A lower bound on the generated source's size, so that a schedule that
 * would unroll far past the budget is refused at once instead of rendered
 * (the exact limit is enforced while rendering).  Only unrolling makes the
 * source grow with the layer: unroll=full emits every output pixel, each
 * with at least a line per tap that reads inside the input (shared by the
 * tile_w pixels of a step), and unroll=row every column of a row. */
static double minimum_source_bytes(const sepconv_layer *l, const sepconv_schedule *s)
{
    int64_t unroll = s->value[SEPCONV_KNOB_UNROLL];
    if (unroll == 0)
        return 0.0;
    double rows = unroll == 2 ? (double)l->out_h : 1.0;
    double bytes = rows * (double)l->out_w * 40.0;
    if (l->op != SEPCONV_OP_PW && unroll == 2) {
        double taps = taps_inside(l->in_h, l->out_h, l->kernel, l->stride,
                                  l->dilation, l->pad_top) *
                      taps_inside(l->in_w, l->out_w, l->kernel, l->stride,
                                  l->dilation, l->pad_left);
        bytes += taps * (50.0 + 150.0 / (double)s->value[SEPCONV_KNOB_TILE_W]);
    }
    if (l->op == SEPCONV_OP_PW || l->op == SEPCONV_OP_SEP)
        bytes += rows * (double)l->out_w *
                 (100.0 + 300.0 / (double)s->value[SEPCONV_KNOB_PIXEL_BLOCK]);
    return bytes / 2.0;
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
    /* plan = import("common.lua").plan(layer, schedule, target) */
    lua_getfield(L, env, "import");
    lua_pushliteral(L, "common.lua");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "plan");
    lua_getfield(L, env, "layer");
    lua_getfield(L, env, "schedule");
    lua_getfield(L, env, "target");
    lua_call(L, 3, 1);
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

/* Quotes a spec for the reproduction command when it holds no quote. */
static void build_command(generation *g, const sepconv_schedule *schedule)
{
    snprintf(g->command, sizeof g->command,
             "sepconv gen '%s' --schedule %s --target %s --name %s", g->spec,
             g->schedule_text, sepconv_target_name(schedule->target), g->symbol);
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
    if (!request.template_dir) {
        const char *dir = getenv("SEPCONV_TEMPLATE_DIR");
        if (dir && dir[0])
            request.template_dir = dir;
    }
    if (options && options->source_budget)
        request.limits.output_bytes = options->source_budget;
    if (options && options->instruction_budget)
        request.limits.instructions = options->instruction_budget;
    if (options && options->memory_budget)
        request.limits.memory_bytes = options->memory_budget;
    return render_template(&request, text, length, error);
}

/* Generates the .c and .h of a layer's kernel under a schedule. */
sepconv_status sepconv_generate(const sepconv_layer *layer,
                                const sepconv_schedule *schedule,
                                const sepconv_generate_options *options,
                                sepconv_source *source, sepconv_error *error)
{
    if (!layer || !schedule || !source)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "generate needs a layer, a schedule and a source");
    memset(source, 0, sizeof *source);
    if (schedule->op != layer->op)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "the schedule is for op=%s but the layer is op=%s",
                            sepconv_op_name(schedule->op), sepconv_op_name(layer->op));
    generation g = {.layer = layer, .schedule = schedule,
                    .template_name = template_for(layer, schedule)};
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
    size_t budget = options && options->source_budget ? options->source_budget
                                                      : DEFAULT_SOURCE_BUDGET;
    double minimum = minimum_source_bytes(layer, schedule);
    if (minimum > (double)budget)
        return sepconv_fail(error, SEPCONV_LIMIT,
                            "the kernel's source would be at least %.0f bytes "
                            "(%.1f MiB), over the source-size budget of %zu "
                            "bytes (%.1f MiB); use unroll=none or row, or raise "
                            "the budget", minimum, minimum / 1048576.0, budget,
                            (double)budget / 1048576.0);
    status = render(&g, g.template_name, options, &source->code,
                    &source->code_length, error);
    if (status == SEPCONV_OK)
        status = render(&g, "kernel.h.in", options, &source->header,
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
